#include "io/model_file.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>

#include "io/hdf5_handle.h"
#include "io/preparation_json.h"
#include "io/temporary_file.h"
#include "kernels/prepare_formulas.h"  // mix64
#include "runtime/error.h"
#include "runtime/shortest_text.h"

namespace lathe {

namespace {

using h5::H5Handle;

const char* kind_name(ModelKind k) { return k == ModelKind::linear ? "linear" : "fm"; }

std::string schema_json(const std::vector<ColumnInfo>& columns) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& c : columns) {
    j.push_back({{"name", c.name}, {"type", column_type_name(c.type)}, {"categories", c.categories}});
  }
  return j.dump();
}

using h5::link_exists;
using h5::read_checksummed;

// The most text (all of one attribute's strings together) a model file keeps in an attribute: one
// attribute message must stay under HDF5's 64 KiB to stay in the checksummed object header.
constexpr std::size_t kLongestTextAttribute = 32 * 1024;

// The format a file without text datasets is marked with: format 3 readers (older lathe binaries)
// read its fixed-length strings as they read format 3's variable-length ones.
constexpr int kModelFormatWithoutTextDatasets = 3;
constexpr int kModelFormatWithTextDatasets = 4;
constexpr int kModelFormatWithTargetTransform = 5;  // model_file.h: format 5

// Writes a model file's strings where HDF5 checksums them (see model_file.h, format 4): a
// fixed-length string attribute of `object` in its object header, or, when longer than
// kLongestTextAttribute, a Fletcher32 dataset of the same name under `object`.
class TextWriter {
 public:
  explicit TextWriter(std::string context) : context_(std::move(context)) {}

  void write(hid_t object, const char* name, std::string value) {
    if (value.size() > kLongestTextAttribute) {
      // Moved, not copied: a profile's text may be tens of megabytes (stored from its own buffer).
      h5::write_checksummed_strings(object, name, std::move(value), context_);
      stored_a_dataset_ = true;
    } else {
      h5::write_fixed_string_attribute(object, name, value, context_);
    }
  }

  void write(hid_t object, const char* name, const std::vector<std::string>& values) {
    std::size_t longest = 0;
    for (const std::string& v : values) longest = std::max(longest, v.size());
    if (values.size() * longest > kLongestTextAttribute) {
      h5::write_checksummed_strings(object, name, values, context_);
      stored_a_dataset_ = true;
    } else {
      h5::write_fixed_string_attribute(object, name, values, context_);
    }
  }

  // Whether some text went to a dataset: a reader must know format 4.
  bool stored_a_dataset() const { return stored_a_dataset_; }

 private:
  std::string context_;
  bool stored_a_dataset_ = false;
};

// Whether `object` holds the text `name`: an attribute, or (format 4) a dataset.
bool text_exists(hid_t object, const char* name, const std::string& context) {
  return h5::attribute_exists(object, name, context) || link_exists(object, name);
}

// The strings TextWriter::write stored; InputError when there are none.
std::vector<std::string> read_strings(hid_t object, const char* name, const std::string& context) {
  if (h5::attribute_exists(object, name, context)) return h5::read_string_attribute(object, name, context);
  if (link_exists(object, name)) return h5::read_checksummed_strings(object, name, context);
  throw InputError(context + ": attribute '" + name + "' is missing");
}

std::string read_string(hid_t object, const char* name, const std::string& context) {
  auto v = read_strings(object, name, context);
  if (v.size() != 1) throw InputError(context + ": attribute '" + name + "' should be one string");
  return std::move(v[0]);  // not copied: a profile's text may be tens of megabytes
}

std::string read_json_number_attribute(hid_t file, const char* name, const std::string& context) {
  return read_string(file, name, context);
}

long long read_int(hid_t object, const char* name, const std::string& context) {
  if (!h5::attribute_exists(object, name, context)) throw InputError(context + ": attribute '" + name + "' is missing");
  long long v = 0;
  H5Handle attr = h5::attribute_handle(LATHE_H5_CHECK(H5Aopen(object, name, H5P_DEFAULT), context));
  LATHE_H5_CHECK(H5Aread(attr.get(), H5T_NATIVE_LLONG, &v), context);
  return v;
}

// h5::write_checksummed, except that an empty array is not written (it reads back as empty).
template <typename T>
void write_checksummed(hid_t file, const char* name, const std::vector<T>& values, const std::vector<hsize_t>& shape,
                       const std::string& context) {
  if (!values.empty()) h5::write_checksummed(file, name, values, shape, context);
}

// The stored chunk of `values` (h5::checksummed_chunk), made on a thread of its own when the table
// is large enough to be deflated (tens of megabytes take a good part of a second), else when asked
// for. `values` must outlive the future.
template <typename T>
std::future<h5::ChecksummedChunk> chunk_of(const std::vector<T>& values) {
  const std::launch policy = values.size() * sizeof(T) >= h5::kCompressedDatasetBytes
                                 ? std::launch::async
                                 : std::launch::deferred;
  return std::async(policy, [&values] { return h5::checksummed_chunk(values); });
}

// Files written before the strings became fixed-length keep them in variable-length attributes, whose
// text HDF5 keeps in its global heap, which has no checksum: a flipped bit in the preparation's text
// would change predictions unnoticed. (Fixed-length attributes and text datasets are checksummed by
// HDF5 itself; the digest is still written, so that older lathe binaries check it too.) So every
// attribute of the root and of the profile and predictions groups (names and values, strings and integers, in name order) is
// folded into one 64-bit digest (FNV-1a, then mix64), stored in the Fletcher32 dataset
// "attribute_digest" and checked before anything is parsed.
std::uint64_t attribute_digest(hid_t f, const std::string& context) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  const auto add = [&h](const std::string& text) {
    for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ULL;
    h = (h ^ 0xffu) * 0x100000001b3ULL;  // a separator no text byte sequence can fake
  };
  for (const char* object_name : {".", "profile", "predictions"}) {
    if (std::string(object_name) != "." && !link_exists(f, object_name)) continue;
    add(object_name);
    H5Handle object = h5::object_handle(LATHE_H5_CHECK(H5Oopen(f, object_name, H5P_DEFAULT), context));
    H5O_info_t info;
    LATHE_H5_CHECK(H5Oget_info2(object.get(), &info, H5O_INFO_NUM_ATTRS), context);
    for (hsize_t i = 0; i < info.num_attrs; ++i) {
      H5Handle attr = h5::attribute_handle(LATHE_H5_CHECK(
          H5Aopen_by_idx(object.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT), context));
      const ssize_t length = H5Aget_name(attr.get(), 0, nullptr);
      if (length < 0) throw InputError(context + ": an attribute name cannot be read");
      std::string name(static_cast<std::size_t>(length), '\0');
      H5Aget_name(attr.get(), name.size() + 1, name.data());
      add(name);
      H5Handle type = h5::datatype_handle(LATHE_H5_CHECK(H5Aget_type(attr.get()), context));
      const H5T_class_t kind = H5Tget_class(type.get());
      if (kind == H5T_STRING) {
        for (const std::string& v : h5::read_string_attribute(object.get(), name.c_str(), context)) add(v);
      } else if (kind == H5T_INTEGER) {
        long long v = 0;
        LATHE_H5_CHECK(H5Aread(attr.get(), H5T_NATIVE_LLONG, &v), context);
        add(std::to_string(v));
      } else {
        add("?");
      }
    }
  }
  return mix64(h);
}

// A sketch from stored points and weights; InputError when they are not a valid summary.
QuantileSketch sketch_from(std::span<const float> points, std::span<const double> weights, int capacity,
                           const std::string& where) {
  if (capacity < 2 || points.size() > static_cast<std::size_t>(capacity)) {
    throw InputError(where + ": a quantile sketch of " + std::to_string(points.size()) + " points for capacity " +
                     std::to_string(capacity));
  }
  QuantileSketch sketch(capacity);
  try {
    sketch.add_summary(points, weights);
  } catch (const Error& e) {
    throw InputError(where + ": damaged quantile sketch: " + e.what());
  }
  return sketch;
}

// A group whose attributes stay in its checksummed object header (h5::keep_attributes_compact).
H5Handle create_group(hid_t f, const char* name, const std::string& context) {
  H5Handle gcpl = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_GROUP_CREATE), context));
  h5::keep_attributes_compact(gcpl.get(), context);
  return h5::group_handle(LATHE_H5_CHECK(H5Gcreate2(f, name, H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), context));
}

// A label as nlohmann::json's dump() writes a string: quoted, with '"', '\\' and control characters
// escaped (and text that is not UTF-8 refused). Printable ASCII without either is written as it is.
void append_json_string(std::string& out, const std::string& label) {
  const bool plain = std::all_of(label.begin(), label.end(), [](char ch) {
    const auto u = static_cast<unsigned char>(ch);
    return u >= 0x20 && u < 0x80 && ch != '"' && ch != '\\';
  });
  if (!plain) {
    out += nlohmann::json(label).dump();
    return;
  }
  out += '"';
  out += label;
  out += '"';
}

// One column of the profile's "columns" text, exactly as dump() writes {"labels": [...], "name": ...,
// "type": ...} (keys in order), with the labels appended one at a time: a json array of them held a
// json value and a string object per label (about 80 bytes each), beside the profile's own copy,
// which on data of millions of ids was the largest thing a `lathe train` held while saving.
void append_profile_column(std::string& out, const ColumnProfile& c, nlohmann::json column) {
  if (c.type != ColumnType::categorical) {
    out += column.dump();
    return;
  }
  column["labels"] = nlohmann::json::array();
  const std::string rest = column.dump();
  const std::string empty_labels = "{\"labels\":[]";
  if (rest.compare(0, empty_labels.size(), empty_labels) != 0) {
    throw Error("write_profile: column '" + c.name + "' does not dump with its labels first");
  }
  out += "{\"labels\":[";
  for (std::size_t k = 0; k < c.categorical.labels.size(); ++k) {
    if (k > 0) out += ',';
    append_json_string(out, c.categorical.labels[k]);
  }
  out += ']';
  out.append(rest, empty_labels.size());
}

}  // namespace

// The profile as write_profile stores it, built without a call to HDF5 (which is not
// thread-safe): on a thread of its own while save_model writes the rest, or ahead
// (ProfileTablesAhead).
struct ProfileTables {
  std::int64_t rows = 0;
  int sketch_capacity = ProfileOptions{}.sketch_capacity;
  std::string columns;  // the "columns" text
  std::vector<double> stats;
  std::vector<std::int64_t> sketch_sizes, category_counts;
  // How many counts category_counts_chunk holds: category_counts is let go once the chunk is made
  // (on a little-endian host, where the chunk is all HDF5 stores), 40 MB for 5M labels held no
  // longer while the epochs run (ProfileTablesAhead).
  std::size_t category_count = 0;
  std::vector<float> sketch_points;
  std::vector<double> sketch_weights;
  h5::ChecksummedChunk category_counts_chunk;
};

namespace {

ProfileTables build_profile_tables(const DataProfile& p, const std::string& context) {
  ProfileTables t;
  t.rows = p.rows;
  for (const ColumnProfile& c : p.columns) {
    if (c.type == ColumnType::categorical) {
      if (c.categorical.counts.size() != c.categorical.labels.size()) {
        throw Error(context + ": profile of column '" + c.name + "' has " + std::to_string(c.categorical.counts.size()) +
                    " counts for " + std::to_string(c.categorical.labels.size()) + " labels");
      }
      t.category_counts.insert(t.category_counts.end(), c.categorical.counts.begin(),
                               c.categorical.counts.end());
      t.category_counts.push_back(c.categorical.missing);
    } else {
      const ColumnStats& s = c.numeric.stats;
      const bool any = s.count > 0;
      t.stats.insert(t.stats.end(), {static_cast<double>(s.count), static_cast<double>(s.missing),
                                     s.mean, any ? s.m2 / static_cast<double>(s.count) : 0.0,
                                     any ? s.min : NAN, any ? s.max : NAN});
      const std::vector<float> pts = c.numeric.sketch.points();
      const std::vector<double> wts = c.numeric.sketch.weights();
      t.sketch_sizes.push_back(static_cast<std::int64_t>(pts.size()));
      t.sketch_points.insert(t.sketch_points.end(), pts.begin(), pts.end());
      t.sketch_weights.insert(t.sketch_weights.end(), wts.begin(), wts.end());
      t.sketch_capacity = c.numeric.sketch.capacity();
    }
  }
  // The counts (one per label: tens of megabytes for millions of ids) are deflated while the text
  // is built.
  std::future<h5::ChecksummedChunk> counts_chunk = chunk_of(t.category_counts);
  // The "columns" text: a json array of one object per column, dumped column by column, with room
  // for the checksum its stored chunk appends (write_checksummed_strings).
  std::size_t label_bytes = 0;
  for (const ColumnProfile& c : p.columns) {
    for (const std::string& label : c.categorical.labels) label_bytes += label.size() + 3;
  }
  t.columns = "[";
  t.columns.reserve(label_bytes + 128 * p.columns.size() + 2 + 4);
  for (const ColumnProfile& c : p.columns) {
    nlohmann::json j = {{"name", c.name}, {"type", column_type_name(c.type)}};
    if (t.columns.size() > 1) t.columns += ',';
    append_profile_column(t.columns, c, std::move(j));
  }
  t.columns += ']';
  t.category_counts_chunk = counts_chunk.get();
  t.category_count = t.category_counts.size();
  if constexpr (std::endian::native == std::endian::little) std::vector<std::int64_t>().swap(t.category_counts);
  return t;
}

void write_profile(hid_t f, ProfileTables& t, TextWriter& texts, const std::string& context) {
  H5Handle group = create_group(f, "profile", context);
  const hid_t g = group.get();
  h5::write_int_attribute(g, "rows", t.rows, context);
  h5::write_int_attribute(g, "sketch_capacity", t.sketch_capacity, context);
  texts.write(g, "columns", std::move(t.columns));
  write_checksummed(f, "profile/numeric_stats", t.stats, {t.sketch_sizes.size(), 6}, context);
  write_checksummed(f, "profile/sketch_sizes", t.sketch_sizes, {t.sketch_sizes.size()}, context);
  if (!t.sketch_points.empty()) {
    h5::write_checksummed_floats(f, "profile/sketch_points", t.sketch_points,
                                 {t.sketch_points.size()}, context);
  }
  write_checksummed(f, "profile/sketch_weights", t.sketch_weights, {t.sketch_weights.size()},
                    context);
  if (t.category_count > 0 && t.category_counts.empty()) {
    h5::write_checksummed_chunk<std::int64_t>(f, "profile/category_counts", t.category_count, {t.category_count},
                                              context, t.category_counts_chunk);
  } else if (t.category_count > 0) {
    h5::write_checksummed(f, "profile/category_counts", t.category_counts, {t.category_count}, context,
                          &t.category_counts_chunk);
  }
}

// The profile's "columns" text without the contents of the columns' "labels" arrays (the key of an
// object in the top-level array), whose strings are counted into `counts` in order: what loading a
// model without its profile's labels (ModelLoadOptions::profile_labels false, as scoring does)
// parses, where lexing millions of labels took a third of scoring a 400K-row file. Only labels of
// printable ASCII without escapes are counted here (any such text is a valid JSON string, so the
// checks stay the lexer's); nullopt when a label is anything else or the text is not as expected
// around them, and the text is then parsed whole.
std::optional<std::string> without_label_arrays(std::string_view text, std::vector<std::size_t>& counts) {
  std::string out;
  counts.clear();
  int depth = 0;  // arrays and objects open at i
  std::size_t i = 0, copied = 0;
  const auto skip_space = [&](std::size_t at) {
    while (at < text.size() && (text[at] == ' ' || text[at] == '\n' || text[at] == '\r' || text[at] == '\t')) ++at;
    return at;
  };
  // The index just past the string whose opening quote is at `at`, or npos.
  const auto string_end = [&](std::size_t at) -> std::size_t {
    for (std::size_t q = at + 1;; ++q) {
      q = text.find('"', q);
      if (q == std::string_view::npos) return q;
      std::size_t backslashes = 0;
      while (q - backslashes > at + 1 && text[q - backslashes - 1] == '\\') ++backslashes;
      if (backslashes % 2 == 0) return q + 1;
    }
  };
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"') {
      const std::size_t end = string_end(i);
      if (end == std::string_view::npos) return std::nullopt;
      const std::size_t colon = skip_space(end);
      const bool key = depth == 2 && colon < text.size() && text[colon] == ':';
      // A column's key with an escape may spell "labels" (\u006c...): only the lexer can tell.
      if (key && text.substr(i, end - i).find('\\') != std::string_view::npos) return std::nullopt;
      const bool labels_key = key && text.substr(i, end - i) == "\"labels\"";
      if (!labels_key) {
        i = end;
        continue;
      }
      const std::size_t open = skip_space(colon + 1);
      if (open >= text.size() || text[open] != '[') {  // not an array: the parser says what is wrong
        i = end;
        continue;
      }
      std::size_t count = 0;
      std::size_t at = skip_space(open + 1);
      if (at < text.size() && text[at] != ']') {
        for (;;) {
          if (at >= text.size() || text[at] != '"') return std::nullopt;
          for (++at;; ++at) {  // to the closing quote, through plain characters only
            if (at >= text.size()) return std::nullopt;
            const auto b = static_cast<unsigned char>(text[at]);
            if (b == '"') break;
            if (b < 0x20 || b >= 0x7f || b == '\\') return std::nullopt;
          }
          ++at;
          ++count;
          at = skip_space(at);
          if (at < text.size() && text[at] == ',') {
            at = skip_space(at + 1);
            continue;
          }
          break;
        }
      }
      if (at >= text.size() || text[at] != ']') return std::nullopt;
      out.append(text.substr(copied, open + 1 - copied));  // up to and with the '['
      copied = at;                                         // from the ']' on
      counts.push_back(count);
      i = at + 1;
      continue;
    }
    if (c == '[' || c == '{') ++depth;
    if (c == ']' || c == '}') --depth;
    ++i;
  }
  out.append(text.substr(copied));
  return out;
}

// The profile's "columns" text (write_profile: [{"labels": [...], "name": ..., "type": ...}, ...])
// read into columns through nlohmann's SAX interface: the same lexer (and so the same checks: JSON
// syntax, UTF-8, escapes) as parsing it into a json tree, without a json value and a string object
// per label, which for a model trained on millions of ids held several times the text's size.
// Each column's labels go to chunks of a fixed size first, moved into a vector of exactly their
// count at the column's end (a growing vector would hold up to three times its labels while it
// moves them). With `keep_labels` false the labels are counted and dropped (load_model's
// profile_labels option). Keys other than these three are skipped, whatever their value, as
// parsing the tree and reading those three did. InputError on anything else.
class ProfileColumnsReader final : public nlohmann::json::json_sax_t {
 public:
  ProfileColumnsReader(bool keep_labels, std::string where) : keep_labels_(keep_labels), where_(std::move(where)) {}

  // The columns of `text`, each with its name, type and (categorical) labels; `label_counts` gets
  // each categorical column's number of labels (whether kept or not), 0 for a numeric one.
  // Without keep_labels, the labels arrays' contents are counted without the lexer
  // (without_label_arrays) where the text allows it.
  std::vector<ColumnProfile> read(const std::string& text, std::vector<std::size_t>& label_counts) {
    std::optional<std::string> stripped;
    if (!keep_labels_ && !stripped_disabled_) stripped = without_label_arrays(text, stripped_counts_);
    if (!stripped) stripped_counts_.clear();  // the whole text is lexed: nothing was counted
    try {
      // Stops at the first error (parse_error throws).
      nlohmann::json::sax_parse(stripped ? *stripped : text, this);
    } catch (const nlohmann::json::exception& e) {
      throw InputError(where_ + ": damaged 'columns' attribute: " + e.what());
    } catch (const InputError&) {
      // Damage found in the shortened text is reported as the whole text's lexer reports it (its
      // place in the stored text, not in the shortened one).
      if (!stripped) throw;
      ProfileColumnsReader whole(keep_labels_, where_);
      whole.stripped_disabled_ = true;
      return whole.read(text, label_counts);
    }
    label_counts = std::move(label_counts_);
    return std::move(columns_);
  }

  bool null() override { return value("null"); }
  bool boolean(bool) override { return value("a boolean"); }
  bool number_integer(number_integer_t) override { return value("a number"); }
  bool number_unsigned(number_unsigned_t) override { return value("a number"); }
  bool number_float(number_float_t, const string_t&) override { return value("a number"); }
  bool binary(binary_t&) override { return value("binary data"); }

  bool string(string_t& s) override {
    if (skipping_ > 0) return true;
    switch (place_) {
      case Place::labels:
        ++labels_;
        if (keep_labels_) {
          if (chunks_.empty() || chunks_.back().size() == kChunk) {
            chunks_.emplace_back();
            chunks_.back().reserve(kChunk);
          }
          chunks_.back().push_back(std::move(s));
        }
        return true;
      case Place::column:
        if (key_ == "name") {
          name_ = std::move(s);
          has_name_ = true;
        } else if (key_ == "type") {
          type_ = std::move(s);
          has_type_ = true;
        } else if (key_ == "labels") {
          return damaged("type must be array, but is string");
        }
        return true;  // another key's string: skipped
      default:
        return damaged("expected an array of column objects, found a string");
    }
  }

  bool start_object(std::size_t) override {
    if (skipping_ > 0 || (place_ == Place::column && !known_key())) return skip();
    if (place_ == Place::column || place_ == Place::labels) {
      return damaged(std::string("type must be ") + (place_ == Place::column && key_ == "labels" ? "array" : "string") +
                     ", but is object");
    }
    if (place_ == Place::top) return damaged("expected an array of column objects, found an object");
    place_ = Place::column;
    name_.clear();
    type_.clear();
    has_name_ = has_type_ = has_labels_ = false;
    chunks_.clear();
    labels_ = 0;
    return true;
  }

  bool key(string_t& k) override {
    if (skipping_ == 0) key_ = std::move(k);
    return true;
  }

  bool end_object() override {
    if (skipping_ > 0) {
      --skipping_;
      return true;
    }
    // place_ == Place::column (the parser balances objects and arrays)
    if (!has_name_) return damaged("key 'name' not found");
    if (!has_type_) return damaged("key 'type' not found");
    if (type_ != "numeric" && type_ != "categorical") {
      throw InputError(where_ + ": column '" + name_ + "' has type '" + type_ + "'");
    }
    ColumnProfile c;
    c.name = std::move(name_);
    c.type = type_ == "categorical" ? ColumnType::categorical : ColumnType::numeric;
    std::size_t count = 0;
    if (c.type == ColumnType::categorical) {
      if (!has_labels_) return damaged("key 'labels' not found");
      count = labels_;
      if (keep_labels_) {
        c.categorical.labels.reserve(labels_);
        for (auto& chunk : chunks_) {
          for (std::string& label : chunk) c.categorical.labels.push_back(std::move(label));
          std::vector<std::string>().swap(chunk);
        }
      }
    }
    chunks_.clear();
    columns_.push_back(std::move(c));
    label_counts_.push_back(count);
    place_ = Place::columns;
    return true;
  }

  bool start_array(std::size_t) override {
    if (skipping_ > 0) return skip();
    if (place_ == Place::top) {
      place_ = Place::columns;
      return true;
    }
    if (place_ == Place::column) {
      if (!known_key()) return skip();
      if (key_ != "labels") return damaged("type must be string, but is array");
      // A repeated key: the last one counts, as in a json tree.
      chunks_.clear();
      labels_ = 0;
      if (next_stripped_ < stripped_counts_.size()) labels_ = stripped_counts_[next_stripped_++];
      has_labels_ = true;
      place_ = Place::labels;
      return true;
    }
    return damaged(place_ == Place::labels ? "type must be string, but is array" : "a column is not an object");
  }

  bool end_array() override {
    if (skipping_ > 0) {
      --skipping_;
      return true;
    }
    place_ = place_ == Place::labels ? Place::column : Place::top;
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception& e) override {
    throw InputError(where_ + ": damaged 'columns' attribute: " + e.what());
  }

 private:
  enum class Place { top, columns, column, labels };
  static constexpr std::size_t kChunk = 1 << 16;

  bool known_key() const { return key_ == "name" || key_ == "type" || key_ == "labels"; }

  // Enters a value of a key that is not read (or one nested in it).
  bool skip() {
    ++skipping_;
    return true;
  }

  // A value that is not a string: skipped under another key, else the text is damaged.
  bool value(const char* what) {
    if (skipping_ > 0 || (place_ == Place::column && !known_key())) return true;
    if (place_ == Place::top || place_ == Place::columns) return damaged("a column is not an object");
    return damaged(std::string("type must be ") + (place_ == Place::column && key_ == "labels" ? "array" : "string") +
                   ", but is " + what);
  }

  [[noreturn]] bool damaged(const std::string& what) {
    throw InputError(where_ + ": damaged 'columns' attribute: " + what);
  }

  bool keep_labels_;
  std::string where_;
  Place place_ = Place::top;
  int skipping_ = 0;
  std::string key_, name_, type_;
  bool has_name_ = false, has_type_ = false, has_labels_ = false;
  std::vector<std::vector<std::string>> chunks_;
  std::size_t labels_ = 0;
  // The labels of each array that without_label_arrays emptied, in order, and the next one's;
  // true: the whole text is lexed (after damage was found in the shortened one).
  bool stripped_disabled_ = false;
  std::vector<std::size_t> stripped_counts_;
  std::size_t next_stripped_ = 0;
  std::vector<ColumnProfile> columns_;
  std::vector<std::size_t> label_counts_;
};

DataProfile read_profile(hid_t f, bool keep_labels, const std::string& context) {
  H5Handle group = h5::group_handle(LATHE_H5_CHECK(H5Gopen2(f, "profile", H5P_DEFAULT), context));
  const hid_t g = group.get();
  const std::string where = context + ": profile";
  DataProfile p;
  p.rows = read_int(g, "rows", where);
  const long long capacity = read_int(g, "sketch_capacity", where);
  if (p.rows < 0 || capacity < 2 || capacity > (1 << 24)) throw InputError(where + ": rows or sketch_capacity out of range");
  std::vector<std::size_t> label_counts;  // per column, its labels (kept or not)
  p.columns = ProfileColumnsReader(keep_labels, where).read(read_string(g, "columns", where), label_counts);
  std::size_t numeric = 0, category_slots = 0;
  for (std::size_t i = 0; i < p.columns.size(); ++i) {
    if (p.columns[i].type == ColumnType::categorical) {
      category_slots += label_counts[i] + 1;
    } else {
      ++numeric;
    }
  }
  const auto stats = read_checksummed<double>(f, "profile/numeric_stats", numeric * 6, context);
  const auto sizes = read_checksummed<std::int64_t>(f, "profile/sketch_sizes", numeric, context);
  std::size_t total = 0;
  for (std::int64_t n : sizes) {
    if (n < 0 || n > capacity) throw InputError(where + ": a sketch size is out of range");
    total += static_cast<std::size_t>(n);
  }
  const auto points = read_checksummed<float>(f, "profile/sketch_points", total, context);
  const auto weights = read_checksummed<double>(f, "profile/sketch_weights", total, context);
  const auto counts = read_checksummed<std::int64_t>(f, "profile/category_counts", category_slots, context);
  std::size_t n = 0, at = 0, slot = 0;
  constexpr std::int64_t kMaxCount = std::int64_t{1} << 53;  // rows a double counts exactly
  const auto count_of = [&](double v, const std::string& column) {
    if (!(v >= 0 && v <= static_cast<double>(kMaxCount) && v == std::floor(v))) {
      throw InputError(where + ": column '" + column + "' has a count that is not a non-negative integer");
    }
    return static_cast<std::int64_t>(v);
  };
  for (std::size_t column = 0; column < p.columns.size(); ++column) {
    ColumnProfile& c = p.columns[column];
    if (c.type == ColumnType::categorical) {
      const std::size_t k = label_counts[column];
      if (keep_labels) {
        c.categorical.counts.assign(counts.begin() + static_cast<std::ptrdiff_t>(slot),
                                    counts.begin() + static_cast<std::ptrdiff_t>(slot + k));
      }
      c.categorical.missing = counts[slot + k];
      // Drift and the report add a column's counts up in 64-bit integers: their total, like a
      // numeric column's counts, must stay within 2^53 rows (a damaged count would overflow it).
      std::int64_t total = 0;
      for (std::size_t i = 0; i <= k; ++i) {
        const std::int64_t n = counts[slot + i];
        if (n < 0) throw InputError(where + ": column '" + c.name + "' has a negative count");
        if (n > kMaxCount - total) {
          throw InputError(where + ": column '" + c.name + "' has counts that add up to more than 2^53 rows");
        }
        total += n;
      }
      slot += k + 1;
      continue;
    }
    const double* s = stats.data() + 6 * n;
    ColumnStats& st = c.numeric.stats;
    st.count = count_of(s[0], c.name);
    st.missing = count_of(s[1], c.name);
    st.mean = s[2];
    st.m2 = s[3] * static_cast<double>(st.count);
    st.min = st.count > 0 ? static_cast<float>(s[4]) : INFINITY;
    st.max = st.count > 0 ? static_cast<float>(s[5]) : -INFINITY;
    const auto size = static_cast<std::size_t>(sizes[n]);
    c.numeric.sketch = sketch_from(std::span(points).subspan(at, size), std::span(weights).subspan(at, size),
                                   static_cast<int>(capacity), where + " column '" + c.name + "'");
    at += size;
    ++n;
  }
  return p;
}

void write_predictions(hid_t f, const PredictionSummary& s, TextWriter& texts, const std::string& context) {
  H5Handle group = create_group(f, "predictions", context);
  texts.write(group.get(), "source", s.source);
  h5::write_int_attribute(group.get(), "rows", s.rows, context);
  h5::write_int_attribute(group.get(), "sketch_capacity", s.sketch.capacity(), context);
  const std::vector<float> points = s.sketch.points();
  const std::vector<double> weights = s.sketch.weights();
  if (!points.empty()) h5::write_checksummed_floats(f, "predictions/points", points, {points.size()}, context);
  write_checksummed(f, "predictions/weights", weights, {weights.size()}, context);
  write_checksummed(f, "predictions/class_shares", s.class_shares, {s.class_shares.size()}, context);
}

PredictionSummary read_predictions(hid_t f, const ModelFile& m, const std::string& context) {
  H5Handle group = h5::group_handle(LATHE_H5_CHECK(H5Gopen2(f, "predictions", H5P_DEFAULT), context));
  const std::string where = context + ": predictions";
  PredictionSummary s;
  s.source = read_string(group.get(), "source", where);
  s.rows = read_int(group.get(), "rows", where);
  const long long capacity = read_int(group.get(), "sketch_capacity", where);
  if (s.rows < 0 || capacity < 2 || capacity > (1 << 24)) throw InputError(where + ": rows or sketch_capacity out of range");
  const auto size_of = [&](const char* name) -> std::size_t {
    if (!link_exists(f, name)) return 0;
    H5Handle ds = h5::dataset_handle(LATHE_H5_CHECK(H5Dopen2(f, name, H5P_DEFAULT), where));
    H5Handle space = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(ds.get()), where));
    return static_cast<std::size_t>(std::max<hssize_t>(H5Sget_simple_extent_npoints(space.get()), 0));
  };
  const std::size_t n = size_of("predictions/points");
  const auto points = read_checksummed<float>(f, "predictions/points", n, context);
  const auto weights = read_checksummed<double>(f, "predictions/weights", n, context);
  s.sketch = sketch_from(points, weights, static_cast<int>(capacity), where);
  const std::size_t classes = m.task == Task::multiclass && s.rows > 0 ? m.classes.size() : 0;
  s.class_shares = read_checksummed<double>(f, "predictions/class_shares", classes, context);
  for (double v : s.class_shares) {
    if (!(v >= 0 && v <= 1)) throw InputError(where + ": a class share is not in [0, 1]");
  }
  return s;
}

}  // namespace

ProfileTablesAhead::ProfileTablesAhead(const DataProfile& profile, std::string context)
    : profile_(&profile), context_(std::move(context)) {
  try {
    tables_ = std::async(std::launch::async, [this] {
      return std::make_unique<ProfileTables>(build_profile_tables(*profile_, context_));
    });
  } catch (const std::system_error&) {  // no thread to be had: save_model builds them
  }
}

ProfileTablesAhead::~ProfileTablesAhead() {
  if (tables_.valid()) tables_.wait();
}

std::unique_ptr<ProfileTables> ProfileTablesAhead::take(const DataProfile& profile) {
  if (&profile != profile_ || !tables_.valid()) return nullptr;
  return tables_.get();
}

void save_model(const std::filesystem::path& path, const ModelFile& m, const CheckpointExtras* extras,
                ProfileTablesAhead* ahead, std::future<PredictionSummary>* predictions_later) {
  const std::int64_t features = m.preparation.expanded_features();
  const auto shape_matches = [&](const ModelParameters& p) {
    return static_cast<std::int64_t>(p.weights.size()) == m.outputs * features &&
           static_cast<std::int32_t>(p.bias.size()) == m.outputs &&
           (m.kind != ModelKind::fm ||
            static_cast<std::int64_t>(p.factors.size()) == m.outputs * features * m.factors);
  };
  if (!shape_matches(m.parameters) || (extras && !shape_matches(extras->resume))) {
    throw Error(path.string() + ": model parameters do not match the model's shape");
  }
  if (m.profile && !m.profile_labels) {
    throw Error(path.string() + ": refusing to save a model loaded without its profile's labels");
  }
  for (const auto* v : {&m.parameters.weights, &m.parameters.bias, &m.parameters.factors}) {
    for (float x : *v) {
      if (!std::isfinite(x)) throw Error(path.string() + ": refusing to save a model with non-finite weights");
    }
  }
  TemporaryOutput output(path);
  const std::string context = path.string();
  // What takes long to build is built on threads of their own while this one writes the rest
  // (HDF5 is called from this thread only): the large tables' chunks (deflated: most of the time
  // saving a large model took) and the profile's tables (its text, tens of megabytes for millions
  // of ids). Declared after `context`, which they use: destroyed first, they wait for their
  // threads when an exception leaves early.
  std::unique_ptr<ProfileTables> built = m.profile && ahead ? ahead->take(*m.profile) : nullptr;
  std::future<ProfileTables> profile;
  if (m.profile && !built) {
    profile = std::async(std::launch::async,
                         [&m, &context] { return build_profile_tables(*m.profile, context); });
  }
  std::future<h5::ChecksummedChunk> weights = chunk_of(m.parameters.weights);
  std::future<h5::ChecksummedChunk> factors, resume_weights, resume_factors;
  if (m.kind == ModelKind::fm) factors = chunk_of(m.parameters.factors);
  if (extras) {
    resume_weights = chunk_of(extras->resume.weights);
    if (m.kind == ModelKind::fm) resume_factors = chunk_of(extras->resume.factors);
  }
  {
    H5Handle fapl = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), context));
    // The 1.10 file format at least: every piece of metadata has a checksum. (With the 1.8 format
    // each chunked dataset's one chunk is indexed by a version 1 B-tree, which has none: a changed
    // byte there could move the chunk away, and the dataset would read as zeros.) A file reopened
    // to add datasets (io/checkpoint.cpp) keeps this format: HDF5 raises its lower bound to the
    // superblock's.
    LATHE_H5_CHECK(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_LATEST), context);
    // The root group's attributes stay in its checksummed object header too.
    H5Handle fcpl = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_FILE_CREATE), context));
    h5::keep_attributes_compact(fcpl.get(), context);
    H5Handle file = h5::file_handle(
        LATHE_H5_CHECK(H5Fcreate(output.path().c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), context));
    const hid_t f = file.get();
    TextWriter texts(context);
    texts.write(f, "task", std::string(task_name(m.task)));
    texts.write(f, "model_kind", std::string(kind_name(m.kind)));
    texts.write(f, "loss", std::string(loss_name(m.loss)));
    texts.write(f, "label", m.label);
    texts.write(f, "classes", m.classes);
    h5::write_int_attribute(f, "outputs", m.outputs, context);
    h5::write_int_attribute(f, "factors", m.factors, context);
    // Doubles as JSON text keep every bit and stay readable with h5dump.
    texts.write(f, "huber_delta", nlohmann::json(m.huber_delta).dump());
    texts.write(f, "target_mean", nlohmann::json(m.target_mean).dump());
    texts.write(f, "target_std", nlohmann::json(m.target_std).dump());
    texts.write(f, "target_transform", std::string(target_transform_name(m.target_transform)));
    texts.write(f, "preparation", preparation_to_json(m.preparation));
    texts.write(f, "input_schema", schema_json(m.input_schema));
    texts.write(f, "metrics", m.metrics_json);
    texts.write(f, "options", m.options_json);
    const auto o = static_cast<hsize_t>(m.outputs);
    const auto d = static_cast<hsize_t>(features);
    const auto write_table = [&](const char* name, const std::vector<float>& values,
                                 const std::vector<hsize_t>& shape,
                                 std::future<h5::ChecksummedChunk>& chunk) {
      const h5::ChecksummedChunk made = chunk.get();
      h5::write_checksummed_floats(f, name, values, shape, context, &made);
    };
    write_table("weights", m.parameters.weights, {o, d}, weights);
    h5::write_checksummed_floats(f, "bias", m.parameters.bias, {o}, context);
    if (m.kind == ModelKind::fm) {
      write_table("factors", m.parameters.factors, {o, d, static_cast<hsize_t>(m.factors)},
                  factors);
    }
    if (!m.parent.empty()) texts.write(f, "parent", m.parent);
    if (!m.history_json.empty()) texts.write(f, "history", m.history_json);
    if (m.trained_on_prepared) {
      const PreparedSource& p = *m.trained_on_prepared;
      nlohmann::json record{{"source", p.source}, {"fingerprint", p.fingerprint}, {"preparation", p.preparation}};
      if (!p.passthrough.empty()) record["passthrough"] = p.passthrough;
      texts.write(f, "trained_on_prepared", record.dump());
    }
    if (m.profile) {
      ProfileTables tables = built ? std::move(*built) : profile.get();
      write_profile(f, tables, texts, context);
    }
    if (predictions_later && predictions_later->valid()) {
      const PredictionSummary predictions = predictions_later->get();
      if (!predictions.empty()) write_predictions(f, predictions, texts, context);
    } else if (!m.predictions.empty()) {
      write_predictions(f, m.predictions, texts, context);
    }
    if (extras) {
      texts.write(f, "checkpoint", extras->state_json);
      write_table("resume_weights", extras->resume.weights, {o, d}, resume_weights);
      h5::write_checksummed_floats(f, "resume_bias", extras->resume.bias, {o}, context);
      if (m.kind == ModelKind::fm) {
        write_table("resume_factors", extras->resume.factors,
                    {o, d, static_cast<hsize_t>(m.factors)}, resume_factors);
      }
    }
    const int format = m.target_transform != TargetTransform::none ? kModelFormatWithTargetTransform
                       : texts.stored_a_dataset()                   ? kModelFormatWithTextDatasets
                                                                     : kModelFormatWithoutTextDatasets;
    h5::write_int_attribute(f, "lathe_model_format_version", format, context);
    const std::vector<long long> digest = {static_cast<long long>(attribute_digest(f, context))};
    h5::write_checksummed(f, "attribute_digest", digest, {1}, context);
    LATHE_H5_CHECK(H5Fflush(f, H5F_SCOPE_GLOBAL), context);
    LATHE_H5_CHECK(H5Fclose(file.release()), context);
  }
  output.commit();
}

std::string preparation_fingerprint(const std::string& preparation_json) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : preparation_json) h = (h ^ c) * 0x100000001b3ULL;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(mix64(h)));
  return hex;
}

std::string epoch_history_json(const std::vector<EpochRecord>& history) {
  const auto number = [](double v) {
    return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
  };
  nlohmann::json out = nlohmann::json::array();
  for (const EpochRecord& r : history) {
    nlohmann::json valid = nlohmann::json::object();
    for (const auto& [k, v] : r.valid.values) valid[k] = number(v);
    out.push_back({{"epoch", r.epoch},
                   {"train_loss", number(r.train_loss)},
                   {"lr", shortest_double(r.learning_rate)},
                   {"valid", valid},
                   {"seconds", r.seconds}});
  }
  return out.dump();
}

ModelShape model_shape(const ModelFile& model) {
  ModelShape s;
  s.task = model.task;
  s.kind = model.kind;
  s.loss = model.loss;
  s.huber_delta = model.huber_delta;
  s.outputs = model.outputs;
  s.group_offsets = model.preparation.group_offsets();
  s.layout.dense_features = model.preparation.dense_features();
  s.layout.groups = static_cast<std::int32_t>(model.preparation.sparse.size());
  s.layout.group_offset = s.group_offsets.data();
  s.features = model.preparation.expanded_features();
  s.factors = model.kind == ModelKind::fm ? model.factors : 0;
  return s;
}

ModelFile load_model(const std::filesystem::path& path, CheckpointExtras* extras, const ModelLoadOptions& options) {
  const std::string context = path.string();
  H5Handle file = h5::open_file_for_reading(path, true);
  const hid_t f = file.get();
  if (!h5::attribute_exists(f, "lathe_model_format_version", context)) {
    // The arguments swapped (`lathe score DATA.h5 MODEL.h5`) or a scores file taken for its model:
    // say what the file is and what goes where, as a model given in place of data is told.
    if (h5::attribute_exists(f, "lathe_model", context)) {
      const std::vector<std::string> model = h5::read_string_attribute(f, "lathe_model", context);
      throw InputError(context + ": holds the scores `lathe score` wrote" +
                       (model.empty() ? std::string() : " with the model " + model.front()) +
                       ", not a model file written by `lathe train`");
    }
    if (h5::attribute_exists(f, "lathe_columns", context)) {
      throw InputError(
          context +
          ": is a table of data, not a model file written by `lathe train` (the "
          "commands that take both name the model first: `lathe score MODEL.h5 DATA.h5`)");
    }
    throw InputError(
        context +
        ": not a Lathe model file (no lathe_model_format_version); a model is the --out "
        "of `lathe train`");
  }
  long long version = 0;
  {
    H5Handle attr = h5::attribute_handle(LATHE_H5_CHECK(H5Aopen(f, "lathe_model_format_version", H5P_DEFAULT), context));
    LATHE_H5_CHECK(H5Aread(attr.get(), H5T_NATIVE_LLONG, &version), context);
  }
  if (version > kModelFormatVersion) {
    throw InputError(context + ": written by a newer Lathe (model format " + std::to_string(version) +
                     "; this lathe reads up to " + std::to_string(kModelFormatVersion) + "): upgrade lathe");
  }
  // Format 3 on: the attributes' digest must be there and match; an earlier file is checked when
  // it has one.
  if (version >= 3 || link_exists(f, "attribute_digest")) {
    const std::vector<long long> stored = read_checksummed<long long>(f, "attribute_digest", 1, context);
    if (static_cast<std::uint64_t>(stored[0]) != attribute_digest(f, context)) {
      throw InputError(context + ": the model's attributes are damaged (their digest does not match)");
    }
  }
  ModelFile m;
  m.path = path;
  const std::string task = read_string(f, "task", context);
  m.task = task == "regression" ? Task::regression : task == "binary" ? Task::binary : task == "multiclass" ? Task::multiclass
           : throw InputError(context + ": unknown task '" + task + "'");
  const std::string kind = read_string(f, "model_kind", context);
  if (kind != "linear" && kind != "fm") throw InputError(context + ": unknown model kind '" + kind + "'");
  m.kind = kind == "linear" ? ModelKind::linear : ModelKind::fm;
  const std::string loss = read_string(f, "loss", context);
  m.loss = loss == "squared" ? LossKind::squared : loss == "huber" ? LossKind::huber : loss == "logistic" ? LossKind::logistic
           : loss == "softmax" ? LossKind::softmax : throw InputError(context + ": unknown loss '" + loss + "'");
  m.label = read_string(f, "label", context);
  m.classes = read_strings(f, "classes", context);
  for (const char* name : {"outputs", "factors"}) {
    long long v = 0;
    H5Handle attr = h5::attribute_handle(LATHE_H5_CHECK(H5Aopen(f, name, H5P_DEFAULT), context));
    LATHE_H5_CHECK(H5Aread(attr.get(), H5T_NATIVE_LLONG, &v), context);
    if (v < 0 || v > (1 << 20)) throw InputError(context + ": attribute '" + name + "' out of range");
    (std::string(name) == "outputs" ? m.outputs : m.factors) = static_cast<std::int32_t>(v);
  }
  try {
    m.huber_delta = nlohmann::json::parse(read_json_number_attribute(f, "huber_delta", context)).get<float>();
    m.target_mean = nlohmann::json::parse(read_json_number_attribute(f, "target_mean", context)).get<double>();
    m.target_std = nlohmann::json::parse(read_json_number_attribute(f, "target_std", context)).get<double>();
    for (const auto& c : nlohmann::json::parse(read_string(f, "input_schema", context))) {
      ColumnInfo info;
      info.name = c.at("name").get<std::string>();
      info.type = c.at("type").get<std::string>() == "categorical" ? ColumnType::categorical : ColumnType::numeric;
      info.categories = c.at("categories").get<std::vector<std::string>>();
      m.input_schema.push_back(info);
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(context + ": damaged model attributes: " + e.what());
  }
  m.preparation = preparation_from_json(read_string(f, "preparation", context), context);
  m.metrics_json = read_string(f, "metrics", context);
  m.options_json = read_string(f, "options", context);
  const std::int64_t features = m.preparation.expanded_features();
  const std::int32_t expected_outputs = m.task == Task::multiclass ? static_cast<std::int32_t>(m.classes.size()) : 1;
  if (m.outputs != expected_outputs) {
    throw InputError(context + ": has " + std::to_string(m.outputs) + " outputs for a " + task + " task with " +
                     std::to_string(m.classes.size()) + " classes");
  }
  if (m.task == Task::binary && m.classes.size() != 2) throw InputError(context + ": a binary model needs 2 classes");
  if (!(std::isfinite(m.target_std) && m.target_std > 0 && std::isfinite(m.target_mean))) {
    throw InputError(context + ": target scaling is not finite");
  }
  // Files written before --target-transform have no such attribute: none.
  if (text_exists(f, "target_transform", context)) {
    const std::string transform = read_string(f, "target_transform", context);
    const std::optional<TargetTransform> parsed = parse_target_transform(transform);
    if (!parsed) throw InputError(context + ": unknown target transform '" + transform + "'");
    if (*parsed != TargetTransform::none && m.task != Task::regression) {
      throw InputError(context + ": a " + task + " model with target transform '" + transform + "'");
    }
    m.target_transform = *parsed;
  }
  m.parameters.weights = h5::read_finite_floats(f, "weights", static_cast<std::size_t>(m.outputs * features), context);
  m.parameters.bias = h5::read_finite_floats(f, "bias", static_cast<std::size_t>(m.outputs), context);
  if (m.kind == ModelKind::fm) {
    m.parameters.factors = h5::read_finite_floats(f, "factors", static_cast<std::size_t>(m.outputs * features * m.factors), context);
  }
  // Format 2's additions; a format 1 file has none of them.
  if (text_exists(f, "parent", context)) m.parent = read_string(f, "parent", context);
  if (text_exists(f, "history", context)) m.history_json = read_string(f, "history", context);
  if (text_exists(f, "trained_on_prepared", context)) {
    PreparedSource p;
    try {
      const nlohmann::json j = nlohmann::json::parse(read_string(f, "trained_on_prepared", context));
      p.source = j.at("source").get<std::string>();
      p.fingerprint = j.at("fingerprint").get<std::string>();
      p.preparation = j.at("preparation").get<std::string>();
      if (j.contains("passthrough")) p.passthrough = j.at("passthrough").get<std::vector<std::string>>();
    } catch (const nlohmann::json::exception& e) {
      throw InputError(context + ": damaged 'trained_on_prepared' attribute: " + e.what());
    }
    if (p.fingerprint != preparation_fingerprint(p.preparation)) {
      throw InputError(context + ": damaged 'trained_on_prepared' attribute: the preparation does not match its fingerprint");
    }
    m.trained_on_prepared = std::move(p);
  }
  if (link_exists(f, "profile")) m.profile = read_profile(f, options.profile_labels, context);
  m.profile_labels = options.profile_labels || !m.profile;
  if (link_exists(f, "predictions")) m.predictions = read_predictions(f, m, context);
  if (extras) {
    if (!text_exists(f, "checkpoint", context)) {
      throw InputError(context + ": not a checkpoint (a model file without the 'checkpoint' attribute)");
    }
    extras->state_json = read_string(f, "checkpoint", context);
    extras->resume.weights = h5::read_finite_floats(f, "resume_weights", static_cast<std::size_t>(m.outputs * features), context);
    extras->resume.bias = h5::read_finite_floats(f, "resume_bias", static_cast<std::size_t>(m.outputs), context);
    extras->resume.factors.clear();
    if (m.kind == ModelKind::fm) {
      extras->resume.factors =
          h5::read_finite_floats(f, "resume_factors", static_cast<std::size_t>(m.outputs * features * m.factors), context);
    }
  }
  return m;
}

}  // namespace lathe
