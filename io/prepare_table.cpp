#include "io/prepare_table.h"

#include <chrono>
#include <cmath>
#include <iostream>

#include "io/columnar_writer.h"
#include "io/preparation_json.h"
#include "io/temporary_file.h"
#include "runtime/dedup.h"
#include "runtime/error.h"
#include "runtime/profile.h"

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
  } else {
    for (std::uint32_t b = 0; b < g.slots; ++b) labels.push_back("bucket_" + std::to_string(b));
  }
  return labels;
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

FittedPreparation fit_preparation_of(TableReader& reader, const DataProfile& profile, const PreparationOptions& prep,
                                     const RowMask* rows, std::vector<std::string>* notes) {
  try {
    return fit_preparation(profile, prep, notes);
  } catch (const InputError& e) {
    std::string message = reader.path().string() + ": " + e.what();
    std::vector<std::int64_t> infinite;
    for (std::size_t c = 0; c < profile.columns.size(); ++c) {
      const ColumnProfile& col = profile.columns[c];
      if (col.type == ColumnType::numeric &&
          (!std::isfinite(col.numeric.stats.min) || !std::isfinite(col.numeric.stats.max))) {
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
  TableReader reader(in, options.read);
  report.rows_in = reader.rows();
  const auto& input_columns = reader.columns();

  DedupResult dedup;
  const RowMask* keep = nullptr;
  if (options.dedup) {
    dedup = find_duplicates(ctx, reader);
    keep = &dedup.keep;
    report.duplicates = dedup.duplicates;
    report.hash_collisions = dedup.hash_collisions;
  }

  const DataProfile profile = profile_table(ctx, reader, keep);
  const FittedPreparation fitted = fit_preparation_of(reader, profile, options.preparation, keep, &report.notes);
  const BoundPreparation bound = bind_preparation(fitted, input_columns);

  // The output columns: dense features, sparse groups, then the label.
  std::vector<ColumnSpec> specs;
  for (const auto& name : fitted.dense_names()) specs.push_back({name, StoredType::float32});
  for (const auto& g : fitted.sparse) {
    specs.push_back({g.name, g.kind == SparseKind::slope ? StoredType::float32 : StoredType::categorical_codes});
  }
  const bool has_label = bound.label_input >= 0;
  const bool label_categorical =
      has_label && input_columns[bound.label_input].type == ColumnType::categorical;
  if (has_label) {
    specs.push_back({input_columns[bound.label_input].name,
                     label_categorical ? StoredType::categorical_codes : StoredType::float32});
  }
  report.columns_out = static_cast<std::int64_t>(specs.size());

  TemporaryOutput output(out);
  ColumnarWriteOptions write_options;
  write_options.deflate_level = options.deflate_level;
  ColumnarWriter writer(output.path(), specs, write_options);
  const std::size_t dense = static_cast<std::size_t>(fitted.dense_features());
  for (std::size_t g = 0; g < fitted.sparse.size(); ++g) {
    if (fitted.sparse[g].kind != SparseKind::slope) {
      writer.set_categories(dense + g, slot_labels(fitted, fitted.sparse[g]));
    }
  }
  if (label_categorical) writer.set_categories(specs.size() - 1, input_columns[bound.label_input].categories);

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
    if (has_label) {
      const float* src = prepared.label.data();
      if (label_categorical) {
        for (std::size_t i = 0; i < k; ++i) {
          const float v = src[kept[i]];
          codes[i] = std::isnan(v) ? -1 : static_cast<std::int32_t>(v);
        }
        writer.append_codes(specs.size() - 1, codes);
      } else {
        for (std::size_t i = 0; i < k; ++i) floats[i] = src[kept[i]];
        writer.append_numeric(specs.size() - 1, std::span<const float>(floats));
      }
    }
    report.rows_out += static_cast<std::int64_t>(k);
    progress.update("transform", first + n);
  }
  writer.set_attribute("lathe_preparation", preparation_to_json(fitted));
  writer.set_attribute("lathe_source", in.filename().string());
  writer.close();
  output.commit();
  return report;
}

}  // namespace lathe
