#include "io/prepared_data.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/hdf5_handle.h"
#include "io/preparation_json.h"
#include "runtime/error.h"
#include "runtime/name_lists.h"

namespace lathe {

namespace {

// The `--drop` columns of a model trained on raw data, from the options it stores (`{"drop":
// ["id, when"]}`: each value as given, comma separated); none when it has none or they do not parse.
std::vector<std::string> dropped_columns(const ModelFile& model) {
  std::vector<std::string> names;
  const nlohmann::json options = nlohmann::json::parse(model.options_json, nullptr, false);
  if (!options.is_object() || !options.contains("drop") || !options["drop"].is_array()) return names;
  for (const nlohmann::json& value : options["drop"]) {
    if (!value.is_string()) continue;
    for (const std::string& name :
         split_name_list(value.get<std::string>())) {  // as the command line's --drop
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  }
  return names;
}

std::optional<PreparedSource> tag_of(hid_t file, const std::filesystem::path& path) {
  const std::string context = path.string();
  if (!h5::attribute_exists(file, "lathe_preparation", context)) return std::nullopt;
  const std::vector<std::string> text = h5::read_string_attribute(file, "lathe_preparation", context);
  if (text.size() != 1) throw InputError(context + ": attribute 'lathe_preparation' should be one string");
  PreparedSource tag;
  tag.source = path.filename().string();
  tag.fingerprint = preparation_fingerprint(text[0]);
  tag.preparation = text[0];
  if (h5::attribute_exists(file, kPassthroughAttribute, context)) {
    tag.passthrough = h5::read_string_attribute(file, kPassthroughAttribute, context);
  }
  return tag;
}

}  // namespace

std::optional<PreparedSource> read_prepared_tag(const std::filesystem::path& data) {
  const h5::H5Handle file = h5::open_file_for_reading(data);
  return tag_of(file.get(), data);
}

std::string prepared_from(const std::filesystem::path& data) {
  const h5::H5Handle file = h5::open_file_for_reading(data);
  const std::string context = data.string();
  if (!h5::attribute_exists(file.get(), "lathe_source", context)) return {};
  const std::vector<std::string> text = h5::read_string_attribute(file.get(), "lathe_source", context);
  return text.size() == 1 ? text[0] : std::string();
}

StoredPreparation read_stored_preparation(const std::filesystem::path& path) {
  const std::string context = path.string();
  StoredPreparation out;
  bool model = false;
  {
    const h5::H5Handle file = h5::open_file_for_reading(path);
    if (const std::optional<PreparedSource> tag = tag_of(file.get(), path)) {
      out.text = tag->preparation;
      out.passthrough = tag->passthrough;
      out.description = "the preparation of " + context;
      out.origin = context;
    } else if (h5::attribute_exists(file.get(), "lathe_model_format_version", context)) {
      model = true;
    } else {
      throw InputError(context + ": holds no fitted preparation: neither a file written by `lathe prepare` (no "
                                 "lathe_preparation attribute) nor a model file written by `lathe train`");
    }
  }
  if (model) {
    // Its preparation and options only: not the training profile's labels.
    ModelLoadOptions load;
    load.profile_labels = false;
    const ModelFile m = load_model(path, nullptr, load);
    if (m.trained_on_prepared) {
      out.text = m.trained_on_prepared->preparation;
      out.origin = m.trained_on_prepared->source + " (stored in the model " + context + ")";
      out.description = "the preparation of " + out.origin;
      out.passthrough = m.trained_on_prepared->passthrough;
    } else {
      out.text = preparation_to_json(m.preparation);
      out.passthrough = dropped_columns(m);
      out.origin = context;
      out.description = "the preparation of the model " + context;
    }
  }
  out.fitted = preparation_from_json(out.text, context);
  return out;
}

namespace {

// "raw data" or "data prepared by `lathe prepare` (p.h5, preparation fingerprint 0123...)".
std::string preparation_text(const std::optional<PreparedSource>& tag, bool with_source) {
  if (!tag) return "raw data (not written by `lathe prepare`)";
  return "data prepared by `lathe prepare` (" + (with_source ? tag->source + ", " : std::string()) +
         "preparation fingerprint " + tag->fingerprint + ")";
}

bool same_preparation(const std::optional<PreparedSource>& a, const std::optional<PreparedSource>& b) {
  return a.has_value() == b.has_value() && (!a || a->fingerprint == b->fingerprint);
}

}  // namespace

void check_valid_preparation(const std::optional<PreparedSource>& training, const std::filesystem::path& data,
                             const std::filesystem::path& valid) {
  const std::optional<PreparedSource> tag = read_prepared_tag(valid);
  if (same_preparation(training, tag)) return;
  std::string message = "--valid " + valid.string() + " is " + preparation_text(tag, false) + ", but the training file " +
                        data.string() + " is " + preparation_text(training, false) + ": ";
  message += training ? "prepare the raw validation rows with `lathe prepare " + (tag ? std::string("RAW.h5") : valid.string()) +
                            " VALID_PREPARED.h5 --from " + data.string() + "` and give that as --valid"
                      : "give the raw validation file";
  throw InputError(message);
}

void check_retraining_preparation(const ModelFile& init, const std::optional<PreparedSource>& training,
                                  const std::filesystem::path& data, bool refit) {
  if (same_preparation(init.trained_on_prepared, training)) return;
  const std::string old = init.path.empty() ? "the --init-model" : init.path.string();
  // --refit-prep converts OLD's weights from its preparation's units to the refitted one's, both
  // fitted on the columns of the files they trained on: across raw and prepared data (or two
  // `lathe prepare` preparations) those columns hold other values, and no conversion is right.
  std::string message = "--init-model " + old + " was trained on " + preparation_text(init.trained_on_prepared, true) +
                        ", but " + data.string() + " is " + preparation_text(training, false) + ": " +
                        (refit ? "--refit-prep cannot carry its weights to features of other values; "
                               : "the kept preparation of " + old + " would see values in other units; ");
  message += init.trained_on_prepared ? "prepare the raw data with `lathe prepare RAW.h5 PREPARED.h5 --from " + old + "`"
                                      : "train on the raw data";
  message += ", or train without --init-model";
  throw InputError(message);
}

}  // namespace lathe
