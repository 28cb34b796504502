#include "io/prepare_table.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <map>
#include <sstream>
#include <unordered_set>

#include "io/columnar_writer.h"
#include "io/hdf5_handle.h"
#include "io/model_inputs.h"
#include "io/prepared_data.h"
#include "io/preparation_json.h"
#include "io/temporary_file.h"
#include "runtime/dedup.h"
#include "runtime/error.h"
#include "runtime/profile.h"
#include "runtime/team_threshold.h"
#include "runtime/warm_start.h"

#include <unistd.h>

namespace lathe {

namespace {


// The labels written for a categorical group's slots.
std::vector<std::string> slot_labels(const FittedPreparation& fitted, const SparseGroup& g) {
  std::vector<std::string> labels;
  if (g.kind == SparseKind::one_hot) {
    const CategoricalEncoding& enc = fitted.categorical[g.a];
    if (enc.hashed) {
      for (std::uint32_t b = 0; b < enc.buckets; ++b) labels.push_back("bucket_" + std::to_string(b));
    } else {
      labels = enc.vocabulary;
    }
    labels.push_back("(missing)");
    labels.push_back("(unknown)");
  } else if (g.kind == SparseKind::bins) {
    // Their raw values' ranges, readable in the file and unique (an edge per shortest decimal).
    const std::vector<float>& edges = fitted.numeric.at(static_cast<std::size_t>(g.a)).bin_edges;
    for (std::size_t b = 0; b <= edges.size(); ++b)
      labels.push_back(bin_name(edges, static_cast<std::int32_t>(b)));
    labels.push_back("(missing)");
  } else {
    for (std::uint32_t b = 0; b < g.slots; ++b) labels.push_back("bucket_" + std::to_string(b));
  }
  return labels;
}

// A column copied from IN to the output with its values exactly: the label, and each passthrough
// column (`--drop`). The float32 block would round a float64 value (156057767.25 to 156057760) or a
// 64-bit integer, so such a column is read again in its stored type, in any layout
// (TableReader::read_column_as): float64 stays float64, int64 and uint64 stay so, narrower integers
// become int64 (exactly); float32 and float16 columns, bools and enums take the float32 block's
// values (exact). A categorical column keeps its codes (read as int32 where they are stored as
// integers, any negative code written as -1, missing; a column of strings from the block) and its
// labels, except a passthrough column of strings (an id), which is copied as text (block by block,
// "" for a missing value): it needs no labels, and codes past 2^24 would not survive the float32
// block.
class ExactColumn {
 public:
  ExactColumn(TableReader& reader, std::int32_t column, bool is_label)
      : reader_(&reader), column_(column), exact_(reader.exact_type(column)) {
    const ColumnInfo& info = reader.columns()[static_cast<std::size_t>(column)];
    name_ = info.name;
    if (info.type == ColumnType::categorical && info.dtype == "string" && !is_label) {
      stored_ = StoredType::text;
    } else if (info.type == ColumnType::categorical) {
      stored_ = StoredType::categorical_codes;
      categories_ = info.categories;
    } else if (exact_ == ExactType::float64) {
      stored_ = StoredType::float64;
    } else if (exact_ == ExactType::uint64) {
      stored_ = StoredType::uint64;
    } else if (exact_ == ExactType::int64) {
      stored_ = StoredType::int64;
    }
  }

  const std::string& name() const { return name_; }
  std::int32_t input_column() const { return column_; }
  // How the output stores the column (see above).
  StoredType stored() const { return stored_; }
  // A categorical column's labels (the label of code i).
  const std::vector<std::string>& categories() const { return categories_; }

  // Appends the rows `kept` (indices into the block of `count` rows at `first`, whose values of this
  // column, as TableReader::read_block gives them, are `block`) to the output's column `column`.
  void append(std::int64_t first, std::int64_t count, const float* block, const std::vector<std::int64_t>& kept,
              ColumnarWriter& writer, std::size_t column) {
    const std::size_t k = kept.size();
    if (stored_ == StoredType::text) {
      reader_->read_text(column_, first, count, text_);
      for (std::size_t i = 0; i < k; ++i) {
        if (static_cast<std::int64_t>(i) != kept[i]) text_[i] = std::move(text_[static_cast<std::size_t>(kept[i])]);
      }
      writer.append_text(column, std::span<const std::string>(text_.data(), k));
    } else if (stored_ == StoredType::categorical_codes) {
      codes_.resize(static_cast<std::size_t>(count));
      if (exact_) {
        reader_->read_column_as(column_, first, count, ExactType::int32, codes_.data());
        for (std::size_t i = 0; i < k; ++i) codes_[i] = std::max(codes_[static_cast<std::size_t>(kept[i])], -1);
      } else {
        for (std::size_t i = 0; i < k; ++i) {
          const float v = block[kept[i]];
          codes_[i] = std::isnan(v) ? -1 : static_cast<std::int32_t>(v);
        }
      }
      writer.append_codes(column, std::span<const std::int32_t>(codes_.data(), k));
    } else if (stored_ == StoredType::float64) {
      doubles_.resize(static_cast<std::size_t>(count));
      reader_->read_column_as(column_, first, count, ExactType::float64, doubles_.data());
      for (std::size_t i = 0; i < k; ++i) doubles_[i] = doubles_[static_cast<std::size_t>(kept[i])];
      writer.append_numeric(column, std::span<const double>(doubles_.data(), k));
    } else if (stored_ == StoredType::uint64) {
      unsigned_.resize(static_cast<std::size_t>(count));
      reader_->read_column_as(column_, first, count, ExactType::uint64, unsigned_.data());
      for (std::size_t i = 0; i < k; ++i) unsigned_[i] = unsigned_[static_cast<std::size_t>(kept[i])];
      writer.append_integers(column, std::span<const std::uint64_t>(unsigned_.data(), k));
    } else if (stored_ == StoredType::int64) {
      signed_.resize(static_cast<std::size_t>(count));
      reader_->read_column_as(column_, first, count, ExactType::int64, signed_.data());
      for (std::size_t i = 0; i < k; ++i) signed_[i] = signed_[static_cast<std::size_t>(kept[i])];
      writer.append_integers(column, std::span<const std::int64_t>(signed_.data(), k));
    } else {
      floats_.resize(k);
      for (std::size_t i = 0; i < k; ++i) floats_[i] = block[kept[i]];
      writer.append_numeric(column, std::span<const float>(floats_));
    }
  }

 private:
  TableReader* reader_;
  std::string name_;
  std::int32_t column_ = -1;
  std::optional<ExactType> exact_;  // how the reader gives the column's values exactly
  std::vector<std::string> categories_;
  StoredType stored_ = StoredType::float32;
  std::vector<double> doubles_;
  std::vector<float> floats_;
  std::vector<std::int32_t> codes_;
  std::vector<std::int64_t> signed_;
  std::vector<std::uint64_t> unsigned_;
  std::vector<std::string> text_;
};

// The input column of each name in `names` (the first of that name, as fit_preparation takes it),
// in IN's column order; names IN lacks are left out.
std::vector<std::int32_t> columns_named(const std::vector<ColumnInfo>& columns, const std::vector<std::string>& names) {
  std::vector<std::int32_t> found;
  std::unordered_set<std::string> seen;
  for (std::size_t c = 0; c < columns.size(); ++c) {
    const std::string& name = columns[c].name;
    if (std::find(names.begin(), names.end(), name) != names.end() && seen.insert(name).second) {
      found.push_back(static_cast<std::int32_t>(c));
    }
  }
  return found;
}

class Progress {
 public:
  Progress(bool enabled, std::int64_t total) : enabled_(enabled), total_(total) {}
  void update(const char* stage, std::int64_t done) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::seconds(1)) return;
    last_ = now;
    std::cerr << "prepare: " << stage << " " << (100 * done / std::max<std::int64_t>(1, total_)) << "%\n";
  }

 private:
  bool enabled_;
  std::int64_t total_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace

void keep_prepared_bins(const FittedPreparation& source, const std::vector<ColumnInfo>& columns,
                        const std::string& file, PreparationOptions& options,
                        std::vector<std::string>& notes) {
  const auto has_column = [&](const std::string& name) {
    return std::any_of(columns.begin(), columns.end(),
                       [&](const ColumnInfo& c) { return c.name == name; });
  };
  std::string kept;  // the columns left unbinned, quoted
  int count = 0;
  for (const SparseGroup& g : source.sparse) {
    if (g.kind != SparseKind::bins || !has_column(g.name)) continue;
    const std::string& column = source.numeric.at(static_cast<std::size_t>(g.a)).name;
    if (options.per_column.count(g.name)) {
      throw InputError(file + ": preparation option for column '" + g.name +
                       "': it holds the quantile bins of column '" + column +
                       "' as categories (lathe prepare --bins); --impute, --scale, --clip and "
                       "--bins apply to numeric columns such as '" + column + "'");
    }
    if (!has_column(column) || column == options.label ||
        std::find(options.exclude.begin(), options.exclude.end(), column) !=
            options.exclude.end()) {
      continue;
    }
    if (options.column(column).bins == 0) continue;
    // The defaults but for the bins (set after every change to the defaults: a copy of them).
    if (!options.per_column.count(column)) options.per_column.emplace(column, options.defaults);
    options.per_column[column].bins = 0;
    kept += (kept.empty() ? "'" : ", '") + column + "'";
    ++count;
  }
  if (count > 0) {
    notes.push_back("--bins: " + kept + (count == 1 ? " is" : " are") + " binned already in " +
                    file + " (the categories of its '#bins' columns) and not binned again; "
                    "prepare the raw data with other --bins for other bins");
  }
}

double physical_memory_bytes() {
  return static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGE_SIZE));
}

void check_fits_in_memory(const FittedPreparation& fitted, double prepared_bytes, const ModelMemory& model,
                          double label_bytes) {
  const double physical = physical_memory_bytes();
  const double model_bytes = model.parameters * model.bytes_per_parameter;
  const double needed = model_bytes + prepared_bytes + label_bytes;
  if (!(physical > 0) || needed <= physical) return;
  std::ostringstream why;
  why.precision(3);
  why << "this run needs about " << needed / 1e9 << " GB of memory, more than this machine's " << physical / 1e9
      << " GB: ";
  if (model.parameters > 0) {
    why << static_cast<long long>(model.parameters) << " model parameters (" << model_bytes / 1e9 << " GB) over "
        << fitted.expanded_features() << " features, and ";
  }
  why << prepared_bytes / 1e9 << " GB of prepared rows of " << fitted.dense_features() << " dense features";
  if (label_bytes > 0) why << ", and " << label_bytes / 1e9 << " GB of the prepared file's slot labels (one a slot)";
  if (!fitted.numeric_crosses.empty()) {
    why << ", " << fitted.numeric_crosses.size() << " of them numeric crosses (name fewer pairs, as --cross a*b,c*d, "
        << "or train --model fm, which learns pairwise interactions itself)";
  }
  std::int64_t buckets = 0;
  for (const SparseGroup& g : fitted.sparse) {
    if (g.kind == SparseKind::categorical_cross) buckets += g.slots;
  }
  if (buckets > 0) why << "; the categorical crosses hold " << buckets << " hashed buckets (--hash-buckets)";
  std::int64_t column_buckets = 0, hashed_columns = 0;
  for (const CategoricalEncoding& c : fitted.categorical) {
    if (!c.hashed) continue;
    column_buckets += c.buckets;
    ++hashed_columns;
  }
  if (column_buckets > 0) {
    why << "; " << hashed_columns << " categorical columns with more labels than --max-categories are hashed into "
        << column_buckets << " buckets (by default each into the power of two at or above twice its labels; "
        << "--category-buckets N sets fewer for every column)";
  }
  if (model.outputs > 1) why << "; each of the " << model.outputs << " classes has its own weights";
  if (model.factors > 0) why << "; --factors " << model.factors << " multiplies the parameters";
  throw InputError(why.str());
}

std::map<std::string, ClippedMoments> measure_clipped_moments(TableReader& reader, const RowMask* rows,
                                                             const std::map<std::string, ClipBounds>& bounds) {
  const auto& columns = reader.columns();
  std::vector<std::int64_t> wanted;  // input column of each measured name, the first of that name
  std::vector<ClipBounds> clip;
  std::vector<std::string> names;
  for (const auto& [name, b] : bounds) {
    const auto it = std::find_if(columns.begin(), columns.end(), [&](const ColumnInfo& c) { return c.name == name; });
    if (it == columns.end()) throw Error("measure_clipped_moments: no column '" + name + "' in " + reader.path().string());
    wanted.push_back(it - columns.begin());
    clip.push_back(b);
    names.push_back(name);
  }
  // Four runs of rows (r mod 4) per column, merged in a fixed order, block after block: the same
  // sums whatever the thread count, as the profile's (runtime/profile.cpp).
  constexpr int kRuns = 4;
  const std::size_t measured = wanted.size();
  std::vector<ColumnStats> stats(measured);
  const auto ncols = static_cast<std::int64_t>(columns.size());
  std::vector<float> block;
  std::vector<std::uint8_t> keep;
  for (std::int64_t first = 0; first < reader.rows(); first += reader.block_rows()) {
    const std::int64_t n = std::min(reader.block_rows(), reader.rows() - first);
    block.resize(static_cast<std::size_t>(n * ncols));
    reader.read_block_columns(first, n, wanted, block);
    keep.assign(static_cast<std::size_t>(n), 1);
    if (rows) {
      for (std::int64_t r = 0; r < n; ++r) keep[static_cast<std::size_t>(r)] = rows->test(first + r) ? 1 : 0;
    }
#pragma omp parallel for schedule(dynamic, 1) if (n * static_cast<std::int64_t>(measured) >= kTeamMinItems)
    for (std::size_t k = 0; k < measured; ++k) {
      const float* v = block.data() + wanted[k] * n;
      const ClipBounds b = clip[k];
      ColumnAccumulator runs[kRuns];
      for (std::int64_t r = 0; r < n; ++r) {
        if (keep[static_cast<std::size_t>(r)] != 0) add_value(runs[r % kRuns], clip_value(v[r], b.lo, b.hi));
      }
      ColumnStats s = finish(runs[0]);
      for (int j = 1; j < kRuns; ++j) s = merge_stats(s, finish(runs[j]));
      stats[k] = merge_stats(stats[k], s);
    }
  }
  std::map<std::string, ClippedMoments> out;
  for (std::size_t k = 0; k < measured; ++k) out.emplace(names[k], ClippedMoments{stats[k].mean, variance(stats[k])});
  return out;
}

FittedPreparation fit_preparation_of(TableReader& reader, const DataProfile& profile, const PreparationOptions& prep,
                                     const RowMask* rows, std::vector<std::string>* notes) {
  try {
    // The clip bounds come from the profile; the moments of the clipped values (the mean fill, the
    // standard scaler) from one more pass over the clipped columns only, so that they are exact
    // (np.clip, then SimpleImputer and StandardScaler), not the quantile sketch's estimate.
    const std::size_t notes_before = notes ? notes->size() : 0;
    FittedPreparation fitted = fit_preparation(profile, prep, notes);
    const std::map<std::string, ClipBounds> bounds = clipping_columns(fitted, profile);
    if (bounds.empty()) return fitted;
    const std::map<std::string, ClippedMoments> moments = measure_clipped_moments(reader, rows, bounds);
    if (notes) notes->resize(notes_before);  // the refit says them again, with the measured moments
    return fit_preparation(profile, prep, notes, &moments);
  } catch (const InputError& e) {
    std::string message = reader.path().string() + ": " + e.what();
    // The columns with infinite values that the error is about (it names its column as 'NAME'); the
    // others, clipped or unused, are fine and not worth a pass.
    const std::string what = e.what();
    std::vector<std::int64_t> infinite;
    for (std::size_t c = 0; c < profile.columns.size(); ++c) {
      const ColumnProfile& col = profile.columns[c];
      if (col.type == ColumnType::numeric &&
          (!std::isfinite(col.numeric.stats.min) || !std::isfinite(col.numeric.stats.max)) &&
          what.find("column '" + col.name + "'") != std::string::npos) {
        infinite.push_back(static_cast<std::int64_t>(c));
      }
    }
    const auto ncols = static_cast<std::int64_t>(reader.columns().size());
    std::vector<std::int64_t> first(infinite.size(), -1);
    std::vector<float> block;
    for (std::int64_t start = 0; start < reader.rows() && !infinite.empty(); start += reader.block_rows()) {
      const std::int64_t n = std::min(reader.block_rows(), reader.rows() - start);
      block.resize(static_cast<std::size_t>(n * ncols));
      reader.read_block_columns(start, n, infinite, block);
      bool all_found = true;
      for (std::size_t k = 0; k < infinite.size(); ++k) {
        const float* v = block.data() + infinite[k] * n;
        for (std::int64_t r = 0; r < n && first[k] < 0; ++r) {
          if (std::isinf(v[r]) && (!rows || rows->test(start + r))) first[k] = start + r;
        }
        all_found = all_found && first[k] >= 0;
      }
      if (all_found) break;
    }
    for (std::size_t k = 0; k < infinite.size(); ++k) {
      if (first[k] < 0) continue;
      message += "; column '" + reader.columns()[static_cast<std::size_t>(infinite[k])].name + "': the first infinite value is at " +
                 "row " + std::to_string(first[k] + 1);
    }
    throw InputError(message);
  }
}


PrepareTableReport prepare_table(const DeviceContext& ctx, const std::filesystem::path& in,
                                 const std::filesystem::path& out, const PrepareTableOptions& options) {
  PrepareTableReport report;
  const bool apply_stored = !options.from.empty();
  StoredPreparation stored;
  if (apply_stored) {
    try {
      stored = read_stored_preparation(options.from);
    } catch (const InputError& e) {
      throw InputError(std::string("--from ") + e.what());
    }
  }
  // Columns of strings that are never categories here are read only as text: the passthrough ones
  // (--drop, IN's own passthrough columns; with --from, any column the stored preparation does not
  // read). Unless --dedup compares whole rows.
  TableReadOptions read = options.read;
  if (!options.preparation.label.empty()) read.label_dataset = options.preparation.label;  // a matrix file's
  if (!options.dedup) {
    std::unordered_set<std::string> used, passed;
    std::string label = options.preparation.label;
    if (apply_stored) {
      for (const ModelInput& input : preparation_inputs(stored.fitted)) used.insert(input.name);
      label = stored.fitted.label;
    } else {
      passed.insert(options.preparation.exclude.begin(), options.preparation.exclude.end());
      if (const std::optional<PreparedSource> tag = read_prepared_tag(in)) passed.insert(tag->passthrough.begin(), tag->passthrough.end());
    }
    read.read_as_text = [apply_stored, used, passed, label](const std::string& name) {
      if (name == label) return false;
      return apply_stored ? used.count(name) == 0 : passed.count(name) > 0;
    };
  }
  // An empty partition of a batch gets an empty prepared file with --from (as `lathe score` gives
  // it an empty output); a preparation cannot be fitted on no rows.
  read.allow_empty = apply_stored;
  if (apply_stored)
    read = reading_bools_as_inputs(preparation_inputs(stored.fitted), std::move(read));
  TableReader reader(in, read);
  report.rows_in = reader.rows();
  // An empty partition holds no value that could contradict the stored preparation's column types,
  // and a header-only CSV imports every column as numeric: take the preparation's types (as `lathe
  // score` does).
  std::vector<ColumnInfo> retyped;
  const bool empty_partition = apply_stored && reader.rows() == 0;
  if (empty_partition) retyped = typed_as_inputs(reader.columns(), preparation_inputs(stored.fitted));
  const std::vector<ColumnInfo>& input_columns = empty_partition ? retyped : reader.columns();

  // --from: the stored fitted preparation, checked against IN before any pass over its rows.
  if (apply_stored) {
    const std::string& label = options.preparation.label;
    if (!label.empty() && label != stored.fitted.label) {
      throw UsageError("--label " + label + ": " + stored.description +
                       (stored.fitted.label.empty() ? " has no label" : " names the label '" + stored.fitted.label + "'") +
                       "; with --from the label is the stored preparation's (leave --label out)");
    }
    const std::optional<PreparedSource> tag = read_prepared_tag(in);
    if (tag && tag->fingerprint == preparation_fingerprint(stored.text)) {
      throw InputError(in.string() + ": is already prepared with " + stored.description +
                       " (the same fitted preparation): give the raw data");
    }
    check_inputs(preparation_inputs(stored.fitted), stored.description, "fitted", input_columns, in.string());
    std::unordered_set<std::string> used;
    for (const ModelInput& input : preparation_inputs(stored.fitted)) used.insert(input.name);
    std::string dropped;
    for (const auto& c : input_columns) {
      const bool passed = std::find(stored.passthrough.begin(), stored.passthrough.end(), c.name) != stored.passthrough.end();
      if (!used.count(c.name) && c.name != stored.fitted.label && !passed) {
        dropped += (dropped.empty() ? "'" : ", '") + c.name + "'";
      }
    }
    if (!dropped.empty()) report.notes.push_back("columns not used by " + stored.description + ", not written: " + dropped);
    report.applied = stored.description;
  }

  DedupResult dedup;
  const RowMask* keep = nullptr;
  if (options.dedup) {
    dedup = find_duplicates(ctx, reader);
    keep = &dedup.keep;
    report.duplicates = dedup.duplicates;
    report.hash_collisions = dedup.hash_collisions;
  }

  // The passthrough columns, copied unchanged after the prepared ones (io/prepared_data.h): those
  // --drop names and, when IN is itself a prepared file, its own passthrough columns (never features
  // either); with --from, those the stored preparation dropped that IN has. Never the label.
  PreparationOptions preparation = options.preparation;
  std::vector<std::string> passthrough_names = apply_stored ? stored.passthrough : preparation.exclude;
  if (!apply_stored) {
    if (const std::optional<PreparedSource> tag = read_prepared_tag(in)) {
      for (const std::string& name : tag->passthrough) {
        const bool present = std::any_of(input_columns.begin(), input_columns.end(),
                                         [&](const ColumnInfo& c) { return c.name == name; });
        if (!present || name == preparation.label) continue;
        passthrough_names.push_back(name);
        if (std::find(preparation.exclude.begin(), preparation.exclude.end(), name) == preparation.exclude.end()) {
          preparation.exclude.push_back(name);
        }
      }
      keep_prepared_bins(preparation_from_json(tag->preparation, in.string()), input_columns,
                         in.string(), preparation, report.notes);
    }
  }
  const std::string label_name = apply_stored ? stored.fitted.label : preparation.label;
  std::erase(passthrough_names, label_name);

  // Columns that are not features are not profiled (nor read there): they are passed through.
  ProfileOptions profile_options;
  profile_options.skip_columns = preparation.exclude;
  const FittedPreparation fitted = [&] {
    if (apply_stored) return std::move(stored.fitted);
    const DataProfile profile = profile_table(ctx, reader, keep, profile_options);
    FittedPreparation fit = fit_preparation_of(reader, profile, preparation, keep, &report.notes);
    // Gross outliers in an unclipped column, as `lathe train` says them.
    for (std::string note : {missing_code_note(profile, fit), extreme_values_note(profile, fit)}) {
      if (!note.empty()) report.notes.push_back(std::move(note));
    }
    return fit;
  }();
  // Each slot label written (slot_labels), as a std::string and in HDF5's copy: about 64 bytes.
  double label_bytes = 0;
  for (const SparseGroup& g : fitted.sparse) {
    if (g.kind != SparseKind::slope) label_bytes += 64.0 * static_cast<double>(g.slots);
  }
  check_fits_in_memory(fitted, static_cast<double>(fitted.prepared_row_bytes()) *
                                   static_cast<double>(std::min(reader.rows(), reader.block_rows())),
                       {}, label_bytes);
  const BoundPreparation bound = bind_preparation(fitted, input_columns);
  // Numeric columns the preparation does not clip to finite bounds: an infinite value there has no
  // prepared value (a fitted preparation refuses such columns; a stored one meets new rows).
  std::vector<std::size_t> unclipped;
  for (std::size_t j = 0; apply_stored && j < fitted.numeric.size(); ++j) {
    const NumericTransform& t = fitted.numeric[j].transform;
    if (!(std::isfinite(t.clip_lo) && std::isfinite(t.clip_hi))) unclipped.push_back(j);
  }

  // The output columns: dense features, sparse groups, then the label and the passthrough columns.
  std::vector<ColumnSpec> specs;
  for (const auto& name : fitted.dense_names()) specs.push_back({name, StoredType::float32});
  for (const auto& g : fitted.sparse) {
    specs.push_back({g.name, g.kind == SparseKind::slope ? StoredType::float32 : StoredType::categorical_codes});
  }
  // An input column named like another column's feature (a categorical "x#bins" beside x's bins)
  // would be two output columns of one name: the features so far are the fitted preparation's.
  if (const std::optional<SharedFeatureName> shared = shared_feature_name(fitted)) {
    throw InputError(in.string() + ": the prepared output would have two columns named '" +
                     shared->name +
                     "' (a column of IN named like a feature the preparation "
                     "makes: a missing indicator, a cross or bins): rename the column");
  }
  const bool has_label = bound.label_input >= 0;
  // The label, then the passthrough columns, each copied exactly: output columns exact_first on.
  const std::size_t exact_first = specs.size();
  std::vector<ExactColumn> exact;
  if (has_label) exact.emplace_back(reader, bound.label_input, true);
  std::vector<std::string> passthrough;  // as written, in IN's column order
  for (const std::int32_t c : columns_named(input_columns, passthrough_names)) {
    exact.emplace_back(reader, c, false);
    passthrough.push_back(input_columns[static_cast<std::size_t>(c)].name);
  }
  for (const ExactColumn& column : exact) {
    for (const ColumnSpec& spec : specs) {
      if (spec.name != column.name()) continue;
      throw InputError(in.string() + ": column '" + column.name() +
                       "' is copied unchanged (" + (exact.data() == &column && has_label ? "the label" : "--drop") +
                       "), but the prepared output has a feature of that name (a missing indicator or a cross): "
                       "rename the column");
    }
    specs.push_back({column.name(), column.stored()});
  }
  report.columns_out = static_cast<std::int64_t>(specs.size());

  TemporaryOutput output(out);
  ColumnarWriteOptions write_options;
  write_options.deflate_level = options.deflate_level;
  write_options.expected_rows = reader.rows();
  ColumnarWriter writer(output.path(), specs, write_options);
  const std::size_t dense = static_cast<std::size_t>(fitted.dense_features());
  for (std::size_t g = 0; g < fitted.sparse.size(); ++g) {
    if (fitted.sparse[g].kind != SparseKind::slope) {
      writer.set_categories(dense + g, slot_labels(fitted, fitted.sparse[g]));
    }
  }
  for (std::size_t e = 0; e < exact.size(); ++e) {
    if (exact[e].stored() == StoredType::categorical_codes) writer.set_categories(exact_first + e, exact[e].categories());
  }

  const std::int64_t ncols = static_cast<std::int64_t>(input_columns.size());
  const std::int64_t block_rows = reader.block_rows();
  std::vector<float> block;
  PreparedBlock prepared;
  std::vector<std::int64_t> kept;  // rows of the block that are kept
  std::vector<float> floats;
  std::vector<std::int32_t> codes;
  Progress progress(options.progress && reader.rows() > 4 * block_rows, reader.rows());
  for (std::int64_t first = 0; first < reader.rows(); first += block_rows) {
    const std::int64_t n = std::min(block_rows, reader.rows() - first);
    block.resize(static_cast<std::size_t>(n * ncols));
    reader.read_block(first, n, block);
    apply_preparation(ctx, bound, ColumnBlockView{block.data(), n, ncols}, prepared);
    kept.clear();
    for (std::int64_t r = 0; r < n; ++r) {
      if (!keep || keep->test(first + r)) kept.push_back(r);
    }
    for (const std::size_t j : unclipped) {
      const float* v = block.data() + static_cast<std::int64_t>(bound.numeric_input[j]) * n;
      for (const std::int64_t r : kept) {
        if (!std::isinf(v[r])) continue;
        throw InputError(in.string() + ": column '" + fitted.numeric[j].name + "': row " + std::to_string(first + r + 1) +
                         " has an infinite value (" + (v[r] > 0 ? "inf" : "-inf") + "), which " + report.applied +
                         " has no prepared value for (it does not clip the column to finite bounds)");
      }
    }
    const std::size_t k = kept.size();
    floats.resize(k);
    codes.resize(k);
    for (std::size_t f = 0; f < dense; ++f) {
      const float* src = prepared.dense.data() + f * n;
      for (std::size_t i = 0; i < k; ++i) floats[i] = src[kept[i]];
      writer.append_numeric(f, std::span<const float>(floats));
    }
    for (std::size_t g = 0; g < fitted.sparse.size(); ++g) {
      if (fitted.sparse[g].kind == SparseKind::slope) {
        const float* src = prepared.value.data() + g * n;
        for (std::size_t i = 0; i < k; ++i) floats[i] = src[kept[i]];
        writer.append_numeric(dense + g, std::span<const float>(floats));
      } else {
        const std::int32_t* src = prepared.slot.data() + g * n;
        for (std::size_t i = 0; i < k; ++i) codes[i] = src[kept[i]];
        writer.append_codes(dense + g, codes);
      }
    }
    for (std::size_t e = 0; e < exact.size(); ++e) {
      exact[e].append(first, n, block.data() + static_cast<std::int64_t>(exact[e].input_column()) * n, kept, writer,
                      exact_first + e);
    }
    report.rows_out += static_cast<std::int64_t>(k);
    progress.update("transform", first + n);
  }
  // With --from, the stored text verbatim: the output carries the same fingerprint as FROM.
  writer.set_attribute("lathe_preparation", apply_stored ? stored.text : preparation_to_json(fitted));
  writer.set_attribute("lathe_source", in.filename().string());
  if (apply_stored) writer.set_attribute("lathe_prepared_from", options.from.filename().string());
  writer.close();
  if (!passthrough.empty()) {
    // An array of names, as lathe_columns is (ColumnarWriter's attributes are single strings).
    const std::string context = out.string();
    h5::H5Handle file = h5::file_handle(LATHE_H5_CHECK(H5Fopen(output.path().c_str(), H5F_ACC_RDWR, H5P_DEFAULT), context));
    h5::write_string_attribute(file.get(), kPassthroughAttribute, passthrough, context);
    LATHE_H5_CHECK(H5Fclose(file.release()), context);  // explicitly, to see the error (a full disk)
  }
  output.commit();
  return report;
}

}  // namespace lathe
