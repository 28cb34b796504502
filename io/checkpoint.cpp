#include "io/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>

#include "io/hdf5_handle.h"
#include "io/temporary_file.h"
#include "models/model_formulas.h"
#include "runtime/error.h"
#include "runtime/shortest_text.h"

namespace lathe {

namespace {

using h5::H5Handle;

// 2: the optimizer's state (resume_optimizer_*) and optimizer_step_origin. A format 1 checkpoint
// has neither: its run resumes with the moments at zero and the step count restarted.
// 3: the sparse features' last steps (resume_optimizer_last_step), from which lazy updates catch
// up skipped penalties. A format 2 checkpoint predates the catch-up: its features resume as if
// updated at its last step, so no penalty of the steps before the checkpoint is applied twice. So
// do those of a format 3 checkpoint without last steps, whose run caught up nothing (no --l2 or
// --l1, or dense updates): a resume that adds penalties (a note says the options changed) owes
// none of the steps before the checkpoint, and catching them up from step 0 pulled every weight
// of a categorical column toward zero at its first update.
constexpr int kCheckpointFormatVersion = 3;
constexpr const char* kFirstName = "resume_optimizer_first";
constexpr const char* kSecondName = "resume_optimizer_second";
constexpr const char* kLastStepName = "resume_optimizer_last_step";

// True when every value's bits are zero (+0.0f): such an array is stored as no dataset at all.
bool all_zero_bits(const std::vector<float>& v) {
  for (float x : v) {
    std::uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    if (bits != 0) return false;
  }
  return true;
}

// The dataset's values (expected of them), or none when the file has no such dataset.
std::vector<float> read_state_array(hid_t file, const char* name, std::size_t expected, const std::string& context) {
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return {};
  }
  return h5::read_finite_floats(file, name, expected, context);
}

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

double number_or_nan(const nlohmann::json& j) { return j.is_null() ? NAN : j.get<double>(); }

}  // namespace

void save_checkpoint(const std::filesystem::path& path, ModelFile model, const TrainerState& state) {
  nlohmann::json history = nlohmann::json::array();
  for (const EpochRecord& r : state.history) {
    nlohmann::json valid = nlohmann::json::object();
    for (const auto& [k, v] : r.valid.values) valid[k] = number_or_null(v);
    history.push_back({{"epoch", r.epoch},
                       {"train_loss", number_or_null(r.train_loss)},
                       {"lr", shortest_double(r.learning_rate)},
                       {"valid", valid},
                       {"classes", r.valid.classes},
                       {"confusion", r.valid.confusion},
                       {"seconds", r.seconds},
                       {"rows_per_second", r.rows_per_second}});
    if (!std::isnan(r.selection)) history.back()["selection"] = r.selection;
  }
  const nlohmann::json j = {{"checkpoint_format_version", kCheckpointFormatVersion},
                            {"next_epoch", state.next_epoch},
                            {"best_epoch", state.best_epoch},
                            {"best_value", number_or_null(state.best_value)},
                            {"epochs_since_best", state.epochs_since_best},
                            {"cooldown_after_epoch", state.cooldown_after_epoch},
                            {"step", state.step},
                            {"optimizer_step_origin", state.optimizer_step_origin},
                            {"history", history}};
  model.parameters = state.best_epoch > 0 ? state.best : state.last;
  CheckpointExtras extras;
  extras.state_json = j.dump();
  extras.resume = state.last;
  const std::size_t size = state.last.weights.size() + state.last.bias.size() + state.last.factors.size();
  for (const std::vector<float>* v : {&state.optimizer.first, &state.optimizer.second}) {
    if (!v->empty() && v->size() != size) {
      throw Error(path.string() + ": the optimizer's state does not match the model's parameters");
    }
    for (float x : *v) {
      if (!std::isfinite(x)) throw Error(path.string() + ": refusing to save a non-finite optimizer state");
    }
  }
  // The model file under a temporary name, the optimizer's state added to it, then the rename: a
  // reader never sees a checkpoint without its state. save_model writes into this temporary in
  // place (io/temporary_file.h), so a kill leaves one temporary name, which the next run removes.
  TemporaryOutput output(path);
  save_model(output.path(), model, &extras);
  const std::string context = path.string();
  {
    h5::silence_errors_in_this_thread();
    H5Handle file = h5::file_handle(LATHE_H5_CHECK(H5Fopen(output.path().c_str(), H5F_ACC_RDWR, H5P_DEFAULT), context));
    if (!all_zero_bits(state.optimizer.first)) h5::write_checksummed_floats(file.get(), kFirstName, state.optimizer.first, {static_cast<hsize_t>((state.optimizer.first).size())}, context);
    if (!all_zero_bits(state.optimizer.second)) {
      h5::write_checksummed_floats(file.get(), kSecondName, state.optimizer.second, {static_cast<hsize_t>((state.optimizer.second).size())}, context);
    }
    if (!state.optimizer.last_step.empty()) {
      h5::write_checksummed(file.get(), kLastStepName, state.optimizer.last_step,
                            {static_cast<hsize_t>(state.optimizer.last_step.size())}, context);
    }
    LATHE_H5_CHECK(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), context);
    LATHE_H5_CHECK(H5Fclose(file.release()), context);
  }
  output.commit();
}

LoadedCheckpoint load_checkpoint(const std::filesystem::path& path) {
  LoadedCheckpoint out;
  CheckpointExtras extras;
  out.model = load_model(path, &extras);
  const std::string context = path.string();
  TrainerState& s = out.state;
  int version = 0;
  try {
    const nlohmann::json j = nlohmann::json::parse(extras.state_json);
    version = j.at("checkpoint_format_version").get<int>();
    if (version > kCheckpointFormatVersion) {
      throw InputError(context + ": written by a newer Lathe (checkpoint format " + std::to_string(version) +
                       "): upgrade lathe");
    }
    s.next_epoch = j.at("next_epoch").get<std::int32_t>();
    s.best_epoch = j.at("best_epoch").get<std::int32_t>();
    s.best_value = number_or_nan(j.at("best_value"));
    s.epochs_since_best = j.at("epochs_since_best").get<std::int32_t>();
    // Absent from a checkpoint written before --cooldown: no cooldown had begun.
    s.cooldown_after_epoch = j.value("cooldown_after_epoch", 0);
    s.step = j.at("step").get<std::int64_t>();
    // Format 1 stored no optimizer state: its moments restart at zero, and the step count with them.
    s.optimizer_step_origin = version >= 2 ? j.at("optimizer_step_origin").get<std::int64_t>() : s.step;
    for (const auto& h : j.at("history")) {
      EpochRecord r;
      r.epoch = h.at("epoch").get<std::int32_t>();
      r.train_loss = number_or_nan(h.at("train_loss"));
      if (h.contains("lr"))
        r.learning_rate = h.at("lr").get<float>();  // absent from older checkpoints
      for (const auto& [k, v] : h.at("valid").items()) r.valid.values[k] = number_or_nan(v);
      r.valid.classes = h.at("classes").get<std::int32_t>();
      r.valid.confusion = h.at("confusion").get<std::vector<std::int64_t>>();
      r.seconds = h.at("seconds").get<double>();
      r.rows_per_second = h.at("rows_per_second").get<double>();
      if (h.contains("selection")) r.selection = number_or_nan(h.at("selection"));
      s.history.push_back(std::move(r));
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(context + ": damaged checkpoint state: " + e.what());
  }
  if (s.next_epoch < 1 || s.best_epoch < 0 || s.best_epoch >= s.next_epoch || s.step < 0 ||
      static_cast<std::int32_t>(s.history.size()) != s.next_epoch - 1 || s.optimizer_step_origin < 0 ||
      s.optimizer_step_origin > s.step) {
    throw InputError(context + ": damaged checkpoint state (inconsistent epochs)");
  }
  s.last = std::move(extras.resume);
  {
    // The optimizer's state; a dataset that is not there is all zero (or a format 1 checkpoint).
    const std::size_t size = s.last.weights.size() + s.last.bias.size() + s.last.factors.size();
    const H5Handle file = h5::open_file_for_reading(path);
    s.optimizer.first = read_state_array(file.get(), kFirstName, size, context);
    s.optimizer.second = read_state_array(file.get(), kSecondName, size, context);
    const std::int64_t sparse = sparse_feature_count(model_shape(out.model));
    if (h5::link_exists(file.get(), kLastStepName)) {
      s.optimizer.last_step =
          h5::read_checksummed<std::uint32_t>(file.get(), kLastStepName, static_cast<std::size_t>(sparse), context);
    } else if (version >= 2 && sparse > 0) {
      s.optimizer.last_step = std::vector<std::uint32_t>(static_cast<std::size_t>(sparse),
                                                         static_cast<std::uint32_t>(s.step - s.optimizer_step_origin));
    }
  }
  s.best = out.model.parameters;
  return out;
}

}  // namespace lathe
