#include "io/train_table.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <span>
#include <sstream>
#include <unordered_map>

#include "io/checkpoint_resume.h"
#include "io/column_values.h"
#include "io/drift.h"
#include "io/label_map.h"
#include "io/model_inputs.h"
#include "io/preparation_json.h"
#include "io/prepare_table.h"
#include "io/prepared_data.h"
#include "io/retraining.h"
#include "io/run_options.h"
#include "io/validation_split.h"
#include "kernels/prepare_formulas.h"
#include "models/cpu_model.h"
#include "models/row_major_rows.h"
#include "runtime/dedup.h"
#include "runtime/error.h"
#include "runtime/message_names.h"
#include "runtime/name_lists.h"
#include "runtime/profile.h"
#include "runtime/shortest_text.h"
#include "runtime/warm_start.h"

namespace lathe {

namespace {

// A regression label under a target transform (--target-transform): t(y) in double (log y or
// log(1 + y)); the identity without one.
double transformed_label(TargetTransform transform, double y) {
  switch (transform) {
    case TargetTransform::log:
      return std::log(y);
    case TargetTransform::log1p:
      return std::log1p(y);
    default:
      return y;
  }
}

// Throws InputError naming `file`, the row and the value when a label of a row in `rows` (every
// row when null) lies outside the transform's domain (log: y > 0; log1p: y > -1), where t(y) would
// be infinite or NaN and the fit would fail epochs later with nothing to say why.
void check_transformable_labels(TargetTransform transform, const std::vector<float>& raw, const RowMask* rows,
                                const std::string& file, const std::string& label) {
  if (transform == TargetTransform::none) return;
  const double least = transform == TargetTransform::log ? 0.0 : -1.0;
  for (std::size_t r = 0; r < raw.size(); ++r) {
    if (rows && !rows->test(static_cast<std::int64_t>(r))) continue;
    const float v = raw[r];
    if (v > least || std::isnan(v)) continue;  // NaN: reported as a missing label elsewhere
    throw InputError(file + ": label '" + label + "': " + row_text(static_cast<std::int64_t>(r)) +
                     " has label " + shortest_text(v) +
                     ", outside the domain of --target-transform " +
                     target_transform_name(transform) + " (labels must be above " +
                     number_label(static_cast<float>(least)) +
                     (transform == TargetTransform::log
                          ? "; log1p takes labels above -1, such as counts with zeros)"
                          : ")"));
  }
}

// The bounds of the optimizer's options, named by their flags (make_model checks them again, by
// field name, for callers that do not come from the command line).
void check_optimizer_options(const OptimizerConfig& c) {
  for (const auto& [flag, value] : {std::pair{"--l1", c.l1}, std::pair{"--l2", c.l2}, std::pair{"--clip-grad", c.clip_norm}}) {
    if (!(value >= 0.0f) || !std::isfinite(value)) {
      throw UsageError(std::string(flag) + " must be a finite number of at least 0 (got " + number_label(value) + ")");
    }
  }
  if (!(c.momentum >= 0.0f && c.momentum < 1.0f)) {
    throw UsageError("--momentum must be at least 0 and below 1 (got " + number_label(c.momentum) + ")");
  }
}

// Prepared rows of a table held in memory, for the rows `select` keeps: in PreparedBlock layout, or
// row-major only (the CPU model's training rows: TrainingSet::dense_by_row ...; it reads nothing
// else, so the column-major copy is never made; block.rows still counts the rows). Row-major
// values are kept only where they vary (FittedPreparation::sparse_values_vary; else empty, all 1).
struct PreparedRows {
  PreparedBlock block;
  std::vector<std::int64_t> source_row;  // file row of each prepared row
  bool row_major = false;
  HostArray<float> dense_by_row{HostMemory::huge_pages}, value_by_row{HostMemory::huge_pages};
  HostArray<std::int32_t> slot_by_row{HostMemory::huge_pages};
  PreparedRowsView view() const {
    if (row_major) return {nullptr, nullptr, nullptr, block.rows};
    return {block.dense.data(), block.slot.data(), block.value.data(), block.rows};
  }
  TrainingSet set(const float* targets, const float* weights) const {
    TrainingSet t;
    t.rows = view();
    t.labels = targets;
    t.weights = weights;
    if (row_major) {
      t.dense_by_row = dense_by_row.data();
      t.slot_by_row = slot_by_row.data();
      t.value_by_row = values_by_row();
    }
    return t;
  }
  const float* values_by_row() const { return value_by_row.empty() ? nullptr : value_by_row.data(); }
  // The memory the row-major arrays are allocated in from now on (cpu_training_rows_memory).
  void set_memory(HostMemory kind) {
    dense_by_row.set_memory(kind);
    value_by_row.set_memory(kind);
    slot_by_row.set_memory(kind);
  }
};

// A prepared block of m rows as the models' view of it.
PreparedRowsView block_view(const PreparedBlock& b, std::int64_t m) {
  return {b.dense.data(), b.slot.data(), b.value.data(), m};
}

// Copies the rows `selected` of a prepared block of m rows (all of them when selected.size() == m)
// into column-major arrays of n rows from row `at` on, column by column on all cores: sequential
// reads and writes, where a row at a time would write to every column's stream at once.
void copy_selected_rows(const PreparedBlock& from, std::int64_t m, const std::vector<std::int64_t>& selected,
                        std::int64_t dense, std::int64_t groups, float* dense_to, std::int32_t* slot_to,
                        float* value_to, std::int64_t n, std::int64_t at) {
  const auto k = static_cast<std::int64_t>(selected.size());
  const auto gather = [&](const auto* column, auto* to) {
    if (k == m) {
      std::copy(column, column + m, to);
    } else {
      for (std::int64_t i = 0; i < k; ++i) to[i] = column[selected[static_cast<std::size_t>(i)]];
    }
  };
#pragma omp parallel for schedule(static) if ((dense + groups) * k >= (std::int64_t{1} << 18))
  for (std::int64_t c = 0; c < dense + groups; ++c) {
    if (c < dense) {
      gather(from.dense.data() + c * m, dense_to + c * n + at);
    } else {
      const std::int64_t g = c - dense;
      gather(from.slot.data() + g * m, slot_to + g * n + at);
      gather(from.value.data() + g * m, value_to + g * n + at);
    }
  }
}

// predict() of row-major rows (PreparedRows::row_major), a tile at a time: the tile transposed into
// the column-major layout the models predict from, the tiles on all cores (a CPU model's predict
// runs on the calling thread inside a parallel region).
void predict_row_major(Model& model, const PredictionLink& link, const PreparedRows& rows, const ModelShape& shape,
                       std::vector<float>& predictions) {
  const std::int64_t n = rows.block.rows, dense = shape.layout.dense_features, groups = shape.layout.groups;
  const std::int64_t stored = row_major_dense_features(shape);  // the rest: products, multiplied out
  const std::int64_t outputs = link.outputs;
  predictions.resize(static_cast<std::size_t>(n * outputs));
  constexpr std::int64_t kTile = 512;
  const std::int64_t tiles = (n + kTile - 1) / kTile;
  std::exception_ptr error;
#pragma omp parallel
  {
    PreparedBlock tile;
#pragma omp for schedule(static)
    for (std::int64_t t = 0; t < tiles; ++t) {
      const std::int64_t begin = t * kTile, m = std::min(n, begin + kTile) - begin;
      tile.dense.resize(static_cast<std::size_t>(dense * m));
      tile.slot.resize(static_cast<std::size_t>(groups * m));
      tile.value.resize(static_cast<std::size_t>(groups * m));
      copy_rows_by_column(rows.dense_by_row.data(), rows.slot_by_row.data(), rows.values_by_row(), begin, m, stored,
                          groups, tile.dense.data(), tile.slot.data(), tile.value.data());
      multiply_out_product_columns(shape.products.data(), dense - stored, stored, m, tile.dense.data());
      try {
        predict(model, link, PreparedRowsView{tile.dense.data(), tile.slot.data(), tile.value.data(), m},
                std::span<float>(predictions.data() + begin * outputs, static_cast<std::size_t>(m * outputs)));
      } catch (...) {
#pragma omp critical
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

// Whether v[0, n) holds an infinite value: one branch-free pass (vectorized), as cheap as reading it.
bool has_infinite_value(const float* v, std::int64_t n) {
  std::uint32_t found = 0;
  for (std::int64_t r = 0; r < n; ++r) {
    std::uint32_t bits;
    std::memcpy(&bits, v + r, sizeof bits);
    found |= (bits & 0x7fffffffu) == 0x7f800000u ? 1u : 0u;
  }
  return found != 0;
}

// Throws throw_infinite_value for the first row holding an infinite value the model cannot score
// in a block of n read rows (column-major, file rows from `first`), among the rows one of
// `selects` keeps (nullptr: every row); in that row, the first such numeric input, as
// lathe::Scorer names it.
void refuse_infinite_values(const std::string& source, const BoundPreparation& bound, const FittedPreparation& fitted,
                            const std::vector<const RowMask*>& selects, const float* block, std::int64_t n,
                            std::int64_t first) {
  std::int64_t row = -1;
  std::size_t column = 0;
  for (std::size_t j = 0; j < fitted.numeric.size(); ++j) {
    if (scores_infinite_values(fitted.numeric[j].transform)) continue;
    const float* v = block + static_cast<std::int64_t>(bound.numeric_input[j]) * n;
    if (!has_infinite_value(v, n)) continue;
    for (std::int64_t r = 0; r < (row < 0 ? n : row); ++r) {
      if (!std::isinf(v[r])) continue;
      if (std::any_of(selects.begin(), selects.end(), [&](const RowMask* s) { return !s || s->test(first + r); })) {
        row = r;
        column = j;
        break;
      }
    }
  }
  if (row >= 0) {
    const float value = block[static_cast<std::int64_t>(bound.numeric_input[column]) * n + row];
    throw_infinite_value(source, fitted.numeric[column].name, first + row, value);
  }
}

// Reads, prepares and keeps the rows each mask selects (nullptr: every row) into outs, in file
// order: column-major, or row-major for an output marked row_major. With `scored_source` (the rows
// are scored by a model, not trained on), an infinite value the model cannot score in a kept row
// is refused naming it (throw_infinite_value), found in each block as it is read.
void gather_prepared(const DeviceContext& ctx, TableReader& reader, const BoundPreparation& bound,
                     const FittedPreparation& fitted, const std::vector<const RowMask*>& selects,
                     std::vector<PreparedRows*> outs, const std::string& scored_source = {}) {
  const std::int64_t dense = fitted.dense_features();
  const std::int64_t dense_by_row = fitted.row_major_dense_features();  // without the products
  const std::int64_t groups = static_cast<std::int64_t>(fitted.sparse.size());
  for (std::size_t k = 0; k < outs.size(); ++k) {
    const std::int64_t n = selects[k] ? selects[k]->count() : reader.rows();
    PreparedBlock& b = outs[k]->block;
    const bool by_row = outs[k]->row_major;
    b.rows = n;
    b.dense.assign(by_row ? 0 : static_cast<std::size_t>(dense * n), 0.0f);
    b.slot.assign(by_row ? 0 : static_cast<std::size_t>(groups * n), 0);
    b.value.assign(by_row ? 0 : static_cast<std::size_t>(groups * n), 0.0f);
    outs[k]->dense_by_row.resize(by_row ? static_cast<std::size_t>(dense_by_row * n) : 0);
    outs[k]->slot_by_row.resize(by_row ? static_cast<std::size_t>(groups * n) : 0);
    outs[k]->value_by_row.resize(by_row && fitted.sparse_values_vary() ? static_cast<std::size_t>(groups * n) : 0);
    outs[k]->source_row.clear();
    outs[k]->source_row.reserve(static_cast<std::size_t>(n));
  }
  const std::int64_t ncols = static_cast<std::int64_t>(reader.columns().size());
  // Only the columns the preparation reads (a weight, an id or an excluded column is not).
  std::vector<std::int64_t> wanted(bound.numeric_input.begin(), bound.numeric_input.end());
  wanted.insert(wanted.end(), bound.categorical_input.begin(), bound.categorical_input.end());
  if (bound.label_input >= 0) wanted.push_back(bound.label_input);
  std::vector<float> block;
  PreparedBlock prepared;
  std::vector<std::int64_t> position(outs.size(), 0);
  std::vector<std::int64_t> selected;
  for (std::int64_t first = 0; first < reader.rows(); first += reader.block_rows()) {
    const std::int64_t n = std::min(reader.block_rows(), reader.rows() - first);
    block.resize(static_cast<std::size_t>(n * ncols));
    reader.read_block_columns(first, n, wanted, block);
    if (!scored_source.empty()) refuse_infinite_values(scored_source, bound, fitted, selects, block.data(), n, first);
    apply_preparation(ctx, bound, ColumnBlockView{block.data(), n, ncols}, prepared);
    for (std::size_t k = 0; k < outs.size(); ++k) {
      PreparedBlock& b = outs[k]->block;
      selected.clear();
      for (std::int64_t r = 0; r < n; ++r) {
        if (!selects[k] || selects[k]->test(first + r)) selected.push_back(r);
      }
      if (position[k] + static_cast<std::int64_t>(selected.size()) > b.rows) {
        throw Error("gather_prepared: more selected rows than the mask counts");
      }
      if (outs[k]->row_major) {
        copy_rows_by_row(block_view(prepared, n), selected.size() == static_cast<std::size_t>(n) ? nullptr : selected.data(),
                         static_cast<std::int64_t>(selected.size()), dense_by_row, groups, outs[k]->dense_by_row.data(),
                         outs[k]->slot_by_row.data(),
                         outs[k]->value_by_row.empty() ? nullptr : outs[k]->value_by_row.data(), position[k]);
      } else {
        copy_selected_rows(prepared, n, selected, dense, groups, b.dense.data(), b.slot.data(), b.value.data(),
                           b.rows, position[k]);
      }
      for (const std::int64_t r : selected) outs[k]->source_row.push_back(first + r);
      position[k] += static_cast<std::int64_t>(selected.size());
    }
  }
}

}  // namespace

ModelShape shape_for(const FittedPreparation& fitted, Task task, ModelKind kind, std::int32_t classes,
                     bool huber, float huber_delta, std::int32_t factors) {
  ModelShape s;
  s.task = task;
  s.kind = kind;
  s.loss = task == Task::regression ? (huber ? LossKind::huber : LossKind::squared)
           : task == Task::binary   ? LossKind::logistic
                                    : LossKind::softmax;
  s.huber_delta = huber_delta;
  s.outputs = task == Task::multiclass ? classes : 1;
  s.group_offsets = fitted.group_offsets();
  s.layout.dense_features = fitted.dense_features();
  s.layout.groups = static_cast<std::int32_t>(fitted.sparse.size());
  s.layout.group_offset = s.group_offsets.data();
  s.features = fitted.expanded_features();
  s.factors = kind == ModelKind::fm ? factors : 0;
  for (const auto& [a, b] : fitted.numeric_crosses) {  // numeric indices: their dense features
    s.products.push_back(a);
    s.products.push_back(b);
  }
  return s;
}

namespace {

nlohmann::json metrics_to_json(const MetricSet& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m.values) j[k] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
  if (!m.confusion.empty()) j["confusion"] = m.confusion;
  return j;
}

// The training rows of a file as windows of consecutive file rows (streamed training): each
// window's blocks are read, prepared on the CPU (the loader runs beside the training, which may
// hold the GPU's stream) and the rows of the training mask kept, with their targets and weights.
class FileWindows final : public TrainingWindows {
 public:
  // A window's file rows: window_rows rounded up to whole read blocks, without overflow: a
  // --window-rows near 2^63 (window_rows + block_rows - 1 overflowed, and the windows were one
  // block each) is the most whole blocks an int64 holds, one window for any file.
  static std::int64_t span_for(std::int64_t block_rows, std::int64_t window_rows) {
    const std::int64_t blocks = window_rows / block_rows + (window_rows % block_rows != 0 ? 1 : 0);
    return std::clamp<std::int64_t>(blocks, 1,
                                    std::numeric_limits<std::int64_t>::max() / block_rows) *
           block_rows;
  }

  FileWindows(TableReader& reader, const BoundPreparation& bound, const FittedPreparation& fitted,
              const RowMask& train_mask, std::int64_t window_rows,
              std::function<float(std::int64_t)> target_of, std::function<float(std::int64_t)> weight_of,
              bool weighted, bool row_major)
      : reader_(reader), bound_(bound), fitted_(fitted), mask_(train_mask), target_of_(std::move(target_of)),
        weight_of_(std::move(weight_of)), weighted_(weighted), row_major_(row_major) {
    span_ = span_for(reader.block_rows(), window_rows);
    const std::int64_t span = span_;
    for (std::int64_t first = 0; first < reader.rows(); first += span) {
      const std::int64_t end = std::min(reader.rows(), first + span);
      std::int64_t n = 0;
      for (std::int64_t r = first; r < end; ++r) n += mask_.test(r) ? 1 : 0;
      if (n > 0) windows_.push_back({first, end, n});
    }
    for (std::int64_t r = 0; r < reader.rows(); ++r) {
      if (mask_.test(r)) total_weight_ += weighted_ ? static_cast<double>(weight_of_(r)) : 1.0;
    }
  }
  // Known from the weight column read whole before training (the trainer's mean weight).
  double total_weight() const override { return total_weight_; }
  std::int64_t count() const override { return static_cast<std::int64_t>(windows_.size()); }
  std::int64_t rows_in(std::int64_t w) const override { return windows_.at(static_cast<std::size_t>(w)).rows; }
  // File rows per window: --window-rows rounded up to whole read blocks.
  std::int64_t span() const { return span_; }
  void reserve(TrainingWindow& out, std::int64_t rows) const override { size_for(out, rows); }
  void load(std::int64_t w, TrainingWindow& out) const override {
    const Window& win = windows_.at(static_cast<std::size_t>(w));
    const std::int64_t dense = fitted_.dense_features();
    const std::int64_t dense_by_row = fitted_.row_major_dense_features();  // without the products
    const std::int64_t groups = static_cast<std::int64_t>(fitted_.sparse.size());
    const std::int64_t n = win.rows;
    size_for(out, n);
    const std::int64_t ncols = static_cast<std::int64_t>(reader_.columns().size());
    const DeviceContext cpu = DeviceContext::cpu();
    std::int64_t p = 0;
    for (std::int64_t first = win.first; first < win.end; first += reader_.block_rows()) {
      const std::int64_t m = std::min(reader_.block_rows(), win.end - first);
      block_.resize(static_cast<std::size_t>(m * ncols));
      reader_.read_block(first, m, block_);
      apply_preparation(cpu, bound_, ColumnBlockView{block_.data(), m, ncols}, prepared_);
      // The block's training rows, then each column copied on its own.
      selected_.clear();
      for (std::int64_t r = 0; r < m; ++r) {
        if (mask_.test(first + r)) selected_.push_back(r);
      }
      const auto k = static_cast<std::int64_t>(selected_.size());
      if (p + k > n) break;  // reported below
      if (row_major_) {
        copy_rows_by_row(block_view(prepared_, m), k == m ? nullptr : selected_.data(), k, dense_by_row, groups,
                         out.dense_by_row.data(), out.slot_by_row.data(),
                         out.value_by_row.empty() ? nullptr : out.value_by_row.data(), p);
      } else {
        copy_selected_rows(prepared_, m, selected_, dense, groups, out.dense.data(), out.slot.data(),
                           out.value.data(), n, p);
      }
      for (std::int64_t i = 0; i < k; ++i) {
        const std::int64_t row = first + selected_[static_cast<std::size_t>(i)];
        out.targets[static_cast<std::size_t>(p + i)] = target_of_(row);
        if (weighted_) out.weights[static_cast<std::size_t>(p + i)] = weight_of_(row);
      }
      p += k;
    }
    if (p != n) throw Error("streamed training: window " + std::to_string(w) + " has " + std::to_string(p) +
                            " training rows, expected " + std::to_string(n));
  }

 private:
  struct Window {
    std::int64_t first, end, rows;
  };
  TableReader& reader_;
  const BoundPreparation& bound_;
  const FittedPreparation& fitted_;
  const RowMask& mask_;
  std::function<float(std::int64_t)> target_of_, weight_of_;
  bool weighted_;
  bool row_major_;  // fill the windows' row-major copies instead (for the CPU model)
  double total_weight_ = 0.0;  // the training rows' weights (their count without weights)
  // Sizes `out`'s arrays for n rows (growing them only when a window has more rows than before).
  // The CPU model reads the row-major copy only: the window holds nothing else.
  void size_for(TrainingWindow& out, std::int64_t n) const {
    const std::int64_t dense = fitted_.dense_features();
    const std::int64_t groups = static_cast<std::int64_t>(fitted_.sparse.size());
    out.rows = n;
    out.dense.resize(row_major_ ? 0 : static_cast<std::size_t>(dense * n));
    out.slot.resize(row_major_ ? 0 : static_cast<std::size_t>(groups * n));
    out.value.resize(row_major_ ? 0 : static_cast<std::size_t>(groups * n));
    out.targets.resize(static_cast<std::size_t>(n));
    out.weights.resize(weighted_ ? static_cast<std::size_t>(n) : 0);
    out.row_major = row_major_;
    out.dense_by_row.resize(row_major_ ? static_cast<std::size_t>(fitted_.row_major_dense_features() * n) : 0);
    out.slot_by_row.resize(row_major_ ? static_cast<std::size_t>(groups * n) : 0);
    out.value_by_row.resize(row_major_ && fitted_.sparse_values_vary() ? static_cast<std::size_t>(groups * n) : 0);
  }

  std::vector<Window> windows_;
  std::int64_t span_ = 0;  // file rows per window
  mutable std::vector<float> block_;  // the loader's scratch (one load at a time)
  mutable PreparedBlock prepared_;
  mutable std::vector<std::int64_t> selected_;  // the block's training rows
};

// Bytes of host (and, on the GPU, device) memory that prepared training rows may take before
// training streams them: a quarter of the physical memory, and on the GPU half its free memory.
double default_memory_budget(const DeviceContext& ctx) {
  double budget = 0.25 * physical_memory_bytes();
  if (ctx.is_cuda()) {
    for (const CudaDeviceInfo& d : query_system().devices) {
      if (d.index == ctx.cuda_device()) budget = std::min(budget, 0.5 * static_cast<double>(d.free_memory_bytes));
    }
  }
  return budget;
}

constexpr float kFmHashedLearningRate = 0.003f;
// Wide dense data, on which the default optimizer is plain SGD (train_table): at least
// kWideDenseMinFeatures dense features, and at most kWideDenseRowsPerFeature training rows each
// (a linear model) or kWideDenseRowsPerFeatureFm (an fm), the rows left after the holdout.
// Measured again in session 35, after the refit came to end with the cooldown (efb470a), which
// helped adam most: bench/peers/wide_dense_peers.py --shapes ROWSxFEATURES --seeds 2 or 3 (N(0, 1)
// features, 30 of them in the label; ROWS the training file's), adam against sgd at the defaults
// otherwise, means of test RMSE; binary log-loss; 4-class log-loss, by training rows a feature:
//   linear  1.3 (2400 x 1500): 3.2827 adam, 2.8741 sgd; 1.1725, 0.6236; 2.5101, 1.2107.
//           4 (2000 x 400): 2.2186, 2.2210; 0.6277, 0.5458; 1.2058, 0.9713.
//           8 (2000 x 200): 2.1099, 2.1026; 0.4921, 0.4788; 0.9480, 0.8653.
//           16 (4000 x 200): 2.0598, 2.0568; 0.4622, 0.4582; 0.8125, 0.7922.
//           26.7 (10000 x 300): 2.0536, 2.0527; 0.4453, 0.4447; 0.8055, 0.7966.
//           But level from 32 (10000 x 250): 2.0196, 2.0180; 0.4403, 0.4404; 0.7455, 0.7427.
//           40 (5000 x 100): 2.0343, 2.0324; 0.4463, 0.4487; 0.7820, 0.7813.
//           80 (10000 x 100): 2.0388, 2.0383; 0.4731, 0.4728; 0.7587, 0.7664.
//           Split at the feature count too: 1600 x 64 (20): 2.0346, 2.0114; 0.4464, 0.4497;
//           0.8227, 0.8029; 1600 x 48 (26.7, adam's by the count): 2.0490, 2.0479; 0.4154,
//           0.4203; 0.7966, 0.7838.
//   fm      on such a linear label sgd is far the better at every shape, 80 included (2.1451,
//           2.0424; 0.5183, 0.4751; 0.8877, 0.7750). Where the label also has 15 products of
//           feature pairs (--pairs 15), what an fm is for, adam's regression is the better from
//           26.7 (10000 x 300: 2.7686, 3.5034; 40, 5000 x 100: 2.3594, 2.8600; 80: 2.1679, 2.6964;
//           sgd best at its last epoch, 125), its classifiers only at 80 (0.4874, 0.5136; 0.9442,
//           0.9747; at 40: 0.5803, 0.5442; 1.0898, 1.0181; at 26.7: 0.6102, 0.4785; 1.4338,
//           1.0931); at 8 (2000 x 200) sgd stays far ahead (6.3300, 5.2027; 0.7279, 0.5654;
//           1.5250, 1.0690). The fm's tasks and labels disagree from 26.7 to 80, the linear
//           model's optimizers are level from 32: session 27's thresholds stand. Since a refit's
//           cooldown is no longer than its chosen epochs (adam's classifiers chose 3 to 6 here),
//           adam's linear figures at 8: 2.1099, 0.4859, 0.9182; 16: 2.0598, 0.4614, 0.8072;
//           26.7: 2.0536, 0.4450, 0.8057: sgd's still the better.
constexpr std::int64_t kWideDenseMinFeatures = 64;
constexpr std::int64_t kWideDenseRowsPerFeature = 30;
constexpr std::int64_t kWideDenseRowsPerFeatureFm = 48;

}  // namespace

void check_init_model_kind(const ModelFile& init, const TrainTableOptions& options) {
  const std::string where = "--init-model " + options.init_model.string() + ": ";
  if (init.task != options.task) {
    throw InputError(where + "it is a " + task_name(init.task) + " model, this run trains " + task_name(options.task));
  }
  if (init.label != options.preparation.label) {
    throw InputError(where + "it predicts '" + init.label + "', this run's label is '" + options.preparation.label +
                     "'");
  }
  if (init.kind != options.kind || (options.kind == ModelKind::fm && init.factors != options.factors)) {
    // "an fm model with 4 factors", "a linear model": a linear model has no factors to name.
    const auto kind_text = [](ModelKind kind, std::int32_t factors) {
      return kind == ModelKind::fm ? "an fm model with " + std::to_string(factors) + " factors"
                                   : std::string("a linear model");
    };
    throw InputError(options.init_model.string() + " (--init-model) is " + kind_text(init.kind, init.factors) +
                     "; this run trains " + kind_text(options.kind, options.factors) +
                     " (--init-model needs the same --model and --factors)");
  }
  // Its weights are carried by feature name (--refit-prep), or kept for features that would be
  // refused such names now (fit_preparation): either way one of the two would take the other's.
  if (const std::optional<SharedFeatureName> shared = shared_feature_name(init.preparation)) {
    throw InputError(where + "two of its features are named '" + shared->name + "' (" +
                     shared->first + " and " + shared->second +
                     "), which a retraining cannot tell apart (it carries weights by name): "
                     "train a new model without --init-model, on data where the column is renamed");
  }
}

namespace {

// Balanced class weights n / (K n_c) from each of the K classes' row counts n_c (n their sum); 0
// for a class without rows.
std::vector<double> balanced_class_weights(const std::vector<double>& count) {
  double n = 0.0;
  for (const double c : count) n += c;
  const double classes = static_cast<double>(count.size());
  std::vector<double> weights(count.size(), 0.0);
  for (std::size_t c = 0; c < count.size(); ++c) {
    if (count[c] > 0) weights[c] = n / (classes * count[c]);
  }
  return weights;
}

// Where a run of train_table is: its device, its data and options, and the report its stages fill
// (their notes in the order they are made).
struct TrainRun {
  const DeviceContext& ctx;
  const std::filesystem::path& data;
  const TrainTableOptions& options;
  TrainReport& report;
};

// The seconds of train_table's stages (TrainReport::stage_seconds), each from the end of the one
// before, and of the whole run.
class StageClock {
 public:
  explicit StageClock(TrainReport& report) : report_(report) {}
  void done(const char* name) {
    const auto now = std::chrono::steady_clock::now();
    report_.stage_seconds.emplace_back(name,
                                       std::chrono::duration<double>(now - stage_start_).count());
    stage_start_ = now;
  }
  double total_seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  TrainReport& report_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point stage_start_ = start_;
};

// What the options and the files they name settle before a row is read: the options' bounds, the
// metric that chooses the epoch, whether the data was written by `lathe prepare`, and, retraining
// (--init-model), the earlier model, the target transform and the preparation kept.
struct RunSetup {
  // The validation metric that chooses the epoch (the trainer checks that it is one of the task's).
  std::string stopping_metric_name;
  // A training file written by `lathe prepare`: the model records its preparation, and a --valid
  // file must carry the same one (io/prepared_data.h).
  std::optional<PreparedSource> prepared;
  // Retraining from an earlier model: the same problem, its preparation kept unless refitted.
  bool warm = false;
  ModelFile init;
  TargetTransform transform = TargetTransform::none;
  // A kept preparation reads its own inputs only.
  bool keep_preparation = false;
  std::vector<std::string> kept_inputs;

  bool kept_input(const std::string& name) const {
    return std::find(kept_inputs.begin(), kept_inputs.end(), name) != kept_inputs.end();
  }
};

RunSetup settle_run(const TrainRun& run) {
  const TrainTableOptions& options = run.options;
  RunSetup setup;
  if (options.preparation.label.empty()) throw UsageError("--label is required");
  if (!(options.valid_fraction < 0) &&
      !(options.valid_fraction >= 0 && options.valid_fraction < 1)) {
    throw UsageError("--valid-fraction must be at least 0 and below 1 (got " +
                     number_label(static_cast<float>(options.valid_fraction)) + ")");
  }
  check_optimizer_options(options.optimizer);
  setup.stopping_metric_name = stopping_metric(options.task, options.trainer.metric);
  setup.prepared = read_prepared_tag(run.data);
  setup.warm = !options.init_model.empty();
  const bool warm = setup.warm;
  ModelFile& init = setup.init;
  if (warm) init = load_model(options.init_model);
  // The target transform: the given one, else a retrained model's own (its weights predict t(y)).
  if (options.task != Task::regression &&
      options.target_transform.value_or(TargetTransform::none) != TargetTransform::none) {
    throw UsageError("--target-transform needs --task regression (this run's task is " +
                     std::string(task_name(options.task)) + ")");
  }
  setup.transform = options.target_transform.value_or(
      warm && init.task == Task::regression ? init.target_transform : TargetTransform::none);
  if (warm && init.task == Task::regression && setup.transform != init.target_transform) {
    throw InputError(
        "--init-model " + options.init_model.string() + " was trained with --target-transform " +
        target_transform_name(init.target_transform) + "; this run's is " +
        target_transform_name(setup.transform) +
        " (its weights predict the label under its transform: give --target-transform " +
        target_transform_name(init.target_transform) + " or leave it out)");
  }
  setup.keep_preparation = warm && !options.refit_prep;
  if (setup.keep_preparation) {
    for (const ModelInput& in : preparation_inputs(init.preparation))
      setup.kept_inputs.push_back(in.name);
  }
  return setup;
}

// The training file open and what is read of it whole before its features: the label (and weight)
// column, the rows --dedup keeps, and the labels mapped to the classes the model trains on
// (make_label_map), checked.
struct TrainingTable {
  Task task = Task::binary;
  TableReadOptions read;  // the training file's, and a --valid file's
  // Held in an optional so that it can be closed once its rows are prepared (below): its category
  // labels (a string and a code map entry per label of every column) are gigabytes on data of
  // millions of ids, and training rows held in memory need none of them.
  std::optional<TableReader> open_reader;
  std::int32_t label_col = -1;
  std::int32_t weight_col = -1;            // --weight's column; -1 without
  std::vector<std::vector<float>> values;  // every row's label, then its weight
  RowMask keep;                            // the rows --dedup keeps (every row without it)
  LabelMap labels;
  std::vector<float> class_of;  // every row's class index (0 for a regression)

  TableReader& reader() { return *open_reader; }
  const TableReader& reader() const { return *open_reader; }
  const std::vector<float>& raw_labels() const { return values[0]; }
  // A file row's label as the metrics take it: its value (regression) or its class index.
  float label_of(std::int64_t file_row) const {
    return task == Task::regression ? values[0][static_cast<std::size_t>(file_row)]
                                    : class_of[static_cast<std::size_t>(file_row)];
  }
};

void read_training_labels(const TrainRun& run, const RunSetup& setup, TrainingTable& table) {
  const TrainTableOptions& options = run.options;
  const std::filesystem::path& data = run.data;
  TrainReport& report = run.report;
  const bool warm = setup.warm;
  const ModelFile& init = setup.init;
  const std::optional<PreparedSource>& prepared = setup.prepared;
  const DeviceContext& ctx = run.ctx;
  table.task = options.task;
  // A `--drop`ped column of strings, a prepared file's passthrough one, or one a kept preparation
  // does not read, is never read as categories (an id with a label per row would cost a pass at open
  // and memory that grows with the rows), unless --dedup compares whole rows.
  TableReadOptions& read = table.read;
  read = options.read;
  // A matrix file's label and weight may be 1-D datasets beside its matrix, named as the options do.
  if (!options.preparation.label.empty()) read.label_dataset = options.preparation.label;
  if (!options.weight_column.empty()) read.vector_datasets.push_back(options.weight_column);
  if (!options.dedup) {
    std::vector<std::string> unused = options.preparation.exclude;
    if (prepared) unused.insert(unused.end(), prepared->passthrough.begin(), prepared->passthrough.end());
    read.read_as_text = [&options, unused, &setup](const std::string& name) {
      return name != options.preparation.label && name != options.weight_column &&
             (std::find(unused.begin(), unused.end(), name) != unused.end() ||
              (setup.keep_preparation && !setup.kept_input(name)));
    };
  }
  table.open_reader.emplace(data, read);
  TableReader& reader = table.reader();
  if (!options.valid_path.empty()) check_valid_preparation(prepared, data, options.valid_path);
  table.label_col = column_index(reader, options.preparation.label, "--label");
  std::vector<std::int32_t> wanted = {table.label_col};
  if (!options.weight_column.empty()) {
    table.weight_col =
        weight_column_index(reader, options.weight_column, options.preparation.label);
    wanted.push_back(table.weight_col);
  }
  if (!options.positive.empty() && options.task != Task::binary) {
    throw UsageError("--positive names the positive class of a binary task; this run's task is " +
                     std::string(task_name(options.task)));
  }
  table.values = read_columns(reader, wanted);
  const std::vector<float>& raw_labels = table.raw_labels();

  RowMask& keep = table.keep;
  keep = RowMask(reader.rows(), true);
  if (options.dedup) {
    DedupResult d = find_duplicates(ctx, reader);
    keep = std::move(d.keep);
    report.duplicates = d.duplicates;
    // As `lathe prepare --dedup` says it.
    report.notes.push_back("--dedup: " + std::to_string(d.duplicates) + " duplicate rows removed");
  }
  table.labels = make_label_map(
      options.task, reader.columns()[table.label_col], raw_labels, keep, options.positive,
      data.string(), warm ? "--init-model " + options.init_model.string() : "", init.classes);
  LabelMap& labels = table.labels;
  check_transformable_labels(setup.transform, raw_labels, &keep, data.string(),
                             options.preparation.label);
  // A multiclass retraining on data that lacks some of its parent's classes (a month without one
  // species) keeps the parent's classes, in its order: their outputs carry over and go on.
  if (warm && options.task == Task::multiclass && labels.classes != init.classes &&
      std::all_of(labels.classes.begin(), labels.classes.end(), [&](const std::string& c) {
        return std::find(init.classes.begin(), init.classes.end(), c) != init.classes.end();
      })) {
    std::string absent;
    std::size_t absent_count = 0;  // counted: a class name may hold a comma
    for (const std::string& c : init.classes) {
      if (std::find(labels.classes.begin(), labels.classes.end(), c) == labels.classes.end()) {
        absent += (absent.empty() ? "'" : ", '") + c + "'";
        ++absent_count;
      }
    }
    report.notes.push_back(data.string() + " has no training rows of class" + (absent_count == 1 ? " " : "es ") +
                           absent + " of --init-model " + options.init_model.string() +
                           ": the model keeps its classes (these rows only make " +
                           (absent_count == 1 ? "it" : "them") + " less likely)");
    labels.classes = init.classes;
  }
  table.class_of = options.task == Task::regression ? std::vector<float>(raw_labels.size(), 0.0f)
                                                    : labels.classes_of(raw_labels);
  if (table.weight_col >= 0)
    check_sample_weights(table.values[1], &keep, data.string(), options.weight_column);
}

// Which rows train and which validate: a --valid file holds out none of the data; else the share
// --valid-fraction asks for (or automatic_valid_fraction's) of the rows kept, chosen by
// validation_split. The weights of each part are checked, naming it.
struct RowSplit {
  bool separate_valid = false;
  double valid_fraction = 0.0;  // the share asked for, not the one the split made
  RowMask valid_mask;
  RowMask train_mask;

  // The rows of the data held out for validation (none with --valid FILE).
  std::int64_t held_out() const { return separate_valid ? 0 : valid_mask.count(); }
};

RowSplit split_rows(const TrainRun& run, const TrainingTable& table) {
  const TrainTableOptions& options = run.options;
  const std::filesystem::path& data = run.data;
  TrainReport& report = run.report;
  const TableReader& reader = table.reader();
  const RowMask& keep = table.keep;
  const std::int32_t weight_col = table.weight_col;
  const auto& values = table.values;
  RowSplit split;
  split.separate_valid = !options.valid_path.empty();
  const bool separate_valid = split.separate_valid;
  split.valid_fraction =
      options.valid_fraction < 0 ? automatic_valid_fraction(keep.count()) : options.valid_fraction;
  const double valid_fraction = split.valid_fraction;
  split.valid_mask = separate_valid ? RowMask(reader.rows(), false)
                                    : validation_split(keep, table.class_of, options.task,
                                                       valid_fraction, options.trainer.seed);
  const RowMask& valid_mask = split.valid_mask;
  RowMask& train_mask = split.train_mask;
  train_mask = RowMask(reader.rows(), false);
  for (std::int64_t r = 0; r < reader.rows(); ++r) train_mask.set(r, keep.test(r) && !valid_mask.test(r));
  report.train_rows = train_mask.count();
  // The fraction as the notes and messages below write it ("0.2", not to_string's "0.200000").
  const std::string fraction_text = [&] {
    std::ostringstream text;
    text << valid_fraction;
    return text.str();
  }();
  if (!separate_valid && valid_fraction > 0 && valid_mask.count() == 0) {
    // What the run then does (choose_trainer_options): without validation rows the default
    // --patience is 0, and a --patience given counts epochs on the running training loss.
    const std::string stopping =
        options.default_patience
            ? "every epoch runs (the default --patience is 0 without validation rows)"
        : options.trainer.patience == 0
            ? "every epoch runs (--patience 0)"
            : "--patience " + std::to_string(options.trainer.patience) +
                  " counts epochs without improvement of the running training loss";
    report.notes.push_back("--valid-fraction " + fraction_text +
                           (options.task == Task::regression
                                ? " leaves no validation rows (too few rows)"
                                : " leaves no validation rows (too few rows per class)") +
                           ": " + stopping +
                           ", the last epoch's weights are kept, and the model stores no "
                           "validation metrics" +
                           (options.metric_given ? "; --metric is ignored" : "") +
                           (options.stop_margin_given ? "; --stop-margin is ignored" : ""));
  }
  if (report.train_rows == 0) throw InputError(data.string() + ": no training rows are left after the validation split");
  // A fraction above a half fits the preparation and the model on the smaller part (0.999 of
  // telco's rows left 5 to train on, with no word of it): legal, and most likely a slip for 0.1.
  if (!separate_valid && valid_fraction > 0.5 && valid_mask.count() > 0) {
    report.notes.push_back(
        "--valid-fraction " + fraction_text + " holds out " + std::to_string(valid_mask.count()) +
        " rows for validation and leaves " + std::to_string(report.train_rows) +
        " to fit the preparation and train the model on (--valid-fraction is the share "
        "held out: 0.2 holds out a fifth)");
  }
  if (weight_col >= 0 && !separate_valid && valid_mask.count() > 0) {
    check_sample_weights(values[1], &valid_mask, data.string(), options.weight_column,
                         "the " + std::to_string(valid_mask.count()) +
                             " validation rows (--valid-fraction " + fraction_text + ")");
  }
  if (weight_col >= 0) {
    // Named here, with the file and column (the trainer would refuse them later without either).
    check_sample_weights(values[1], &train_mask, data.string(), options.weight_column,
                         "the " + std::to_string(report.train_rows) + " training rows");
  }
  return split;
}

// Notes on classes that look like a mistake: a numeric label of a class every few rows (a
// quantity?), two classes as a multiclass task, classes that differ only in letter case.
void note_label_classes(const TrainRun& run, const RunSetup& setup, const LabelMap& labels) {
  const TrainTableOptions& options = run.options;
  TrainReport& report = run.report;
  const bool warm = setup.warm;
  // A numeric label with a class for every few rows is most likely a quantity (below the class cap
  // of make_label_map, which refuses more than kMaxMulticlassClasses).
  if (const auto n = static_cast<std::int64_t>(labels.classes.size());
      options.task == Task::multiclass && !labels.categorical && n > 20 && 10 * n > report.train_rows) {
    report.notes.push_back("label '" + options.preparation.label + "' is numeric with " + std::to_string(n) +
                           " classes for " + std::to_string(report.train_rows) +
                           " training rows (more than one class per 10 rows), too few rows to learn each class; "
                           "if it is a quantity rather than a class code, use --task regression");
  }

  // Two classes as a softmax fit what --task binary fits with one output, which also chooses the
  // epoch by log-loss alike and reports auc and pr_auc (QA: `--task multiclass` on telco's churn).
  if (options.task == Task::multiclass && labels.classes.size() == 2 && !warm) {
    report.notes.push_back("label '" + options.preparation.label + "' has 2 classes (" +
                           labels.classes[0] + ", " + labels.classes[1] +
                           "): --task binary fits the same problem with one output and reports "
                           "auc and pr_auc too");
  }
  if (options.task == Task::multiclass) {
    if (const std::string same = classes_differing_in_case(labels.classes); !same.empty()) {
      report.notes.push_back("label '" + options.preparation.label + "': the classes " + same +
                             " differ only in letter case and are trained as different classes; if they are "
                             "one class, write it one way in the data");
    }
  }
}

// The preparation options this run fits its preparation with (or checks a kept one against): those
// given, with the weight column left out, resolved against a prepared file (its hashed columns,
// per-category slopes, scaling, passthrough columns and bins) and a retrained model's preparation
// (its hashed columns' buckets, when refitted; its own inputs only, when kept).
struct PreparationPlan {
  PreparationOptions prep;
  bool prepared_hashes = false;          // the prepared file's preparation hashed a column
  std::vector<std::string> passthrough;  // the prepared file's passthrough columns here
};

PreparationPlan resolve_preparation_options(const TrainRun& run, const RunSetup& setup,
                                            const TrainingTable& table) {
  const TrainTableOptions& options = run.options;
  const std::filesystem::path& data = run.data;
  TrainReport& report = run.report;
  const bool warm = setup.warm;
  const ModelFile& init = setup.init;
  const std::optional<PreparedSource>& prepared = setup.prepared;
  const bool keep_preparation = setup.keep_preparation;
  const TableReader& reader = table.reader();
  const std::int32_t weight_col = table.weight_col;
  PreparationPlan plan;
  // Preparation is fitted on the training rows only: validation rows must not leak into it.
  PreparationOptions& prep = plan.prep;
  prep = options.preparation;
  // A prepared file holds a column its preparation hashed as the buckets' labels: they are the
  // column's categories as they stand, never hashed again, so that `lathe prepare OPTS` + `lathe
  // train` trains on the features `lathe train OPTS` does.
  // A numeric x categorical cross (a slope per category) is held as the numeric column's prepared
  // values under the cross's name, its categories in the categorical column: the same cross is made
  // again from those two columns, in place of the values column, which alone would be one slope.
  const auto has_column = [&](const std::string& name) {
    return std::any_of(reader.columns().begin(), reader.columns().end(),
                       [&](const ColumnInfo& c) { return c.name == name; });
  };
  const auto leave_out = [&](const std::string& name) {
    if (std::find(prep.exclude.begin(), prep.exclude.end(), name) == prep.exclude.end()) prep.exclude.push_back(name);
  };
  bool& prepared_hashes = plan.prepared_hashes;
  // The prepared file's own fitted preparation (empty for raw data).
  const FittedPreparation source =
      prepared ? preparation_from_json(prepared->preparation, data.string()) : FittedPreparation{};
  if (prepared) {
    for (const CategoricalEncoding& c : source.categorical) {
      if (!c.hashed) continue;
      prep.never_hashed.insert(c.name);
      prepared_hashes = true;
    }
    for (const SparseGroup& g : source.sparse) {
      if (g.kind != SparseKind::slope) continue;
      const CrossSpec cross{source.numeric.at(static_cast<std::size_t>(g.a)).name,
                            source.categorical.at(static_cast<std::size_t>(g.b)).name, true, true};
      if (!has_column(g.name) || !has_column(cross.a) || !has_column(cross.b)) continue;
      leave_out(g.name);
      const bool given = std::any_of(prep.crosses.begin(), prep.crosses.end(), [&](const CrossSpec& c) {
        return (c.a == cross.a && c.b == cross.b) || (c.a == cross.b && c.b == cross.a);
      });
      if (!given) prep.crosses.push_back(cross);
    }
  }
  // A refitted preparation hashes a column its parent hashed into the parent's buckets, unless
  // --category-buckets says otherwise: the default count follows the labels, and buckets of another
  // count would start from zero.
  if (warm && options.refit_prep && prep.category_buckets == 0) {
    for (const CategoricalEncoding& c : init.preparation.categorical) {
      if (c.hashed) prep.category_buckets_of[c.name] = c.buckets;
    }
  }
  if (weight_col >= 0) prep.exclude.push_back(options.weight_column);
  // A prepared file's values are already scaled as its preparation says (`lathe prepare --scale`):
  // scaling them again by default would train on other features than `lathe train OPTS` does.
  if (prepared && options.default_scale) prep.defaults.scale = ScaleKind::none;
  // The passthrough columns of a prepared file (ids `lathe prepare --drop` kept) are never features:
  // left out as if dropped, here and in the model's input schema and training profile. One may
  // still be the label or the weight.
  std::vector<std::string>& passthrough = plan.passthrough;
  if (prepared) {
    for (const std::string& name : prepared->passthrough) {
      if (!has_column(name) || name == options.preparation.label) continue;
      passthrough.push_back(name);
      leave_out(name);
    }
    // A binned column's bins are its "x#bins" column's categories (a one-hot of them): not binned
    // again. After every change to prep.defaults, which an unbinned column's options copy.
    if (!keep_preparation)
      keep_prepared_bins(source, reader.columns(), data.string(), prep, report.notes);
  }
  if (keep_preparation) {
    // Every other column (one its run dropped, one new in this data) is left out as if dropped: not
    // profiled, so `lathe drift` of the new model does not watch it, and not in its input schema.
    std::string left_out;
    for (const ColumnInfo& c : reader.columns()) {
      if (c.name == options.preparation.label || c.name == options.weight_column ||
          setup.kept_input(c.name) ||
          std::find(prep.exclude.begin(), prep.exclude.end(), c.name) != prep.exclude.end()) {
        continue;
      }
      prep.exclude.push_back(c.name);
      left_out += (left_out.empty() ? "'" : ", '") + c.name + "'";
    }
    if (!left_out.empty()) {
      report.notes.push_back("--init-model " + options.init_model.string() +
                             ": its preparation, kept, does not read " + left_out +
                             ": not features of the new model, nor in its profile (--refit-prep fits a preparation "
                             "that may use them)");
    }
  }
  return plan;
}

// The training rows profiled (the profile a preparation is fitted from, and the model file's
// reference for `lathe drift`) and the preparation fitted on them, or kept from --init-model, bound
// to the training file's columns.
struct FittedData {
  // Made without the category labels, which are the reader's: lent to it while the preparation is
  // fitted from it, and moved into it once the reader is done (swap_profile_labels).
  DataProfile profile;
  FittedPreparation fitted;
  // Released with the reader once the rows are prepared (its label hashes take 8 bytes a bucket).
  BoundPreparation bound;

  // Lends the reader's category labels to the profile, or gives them back.
  void swap_profile_labels(TableReader& reader) {
    for (std::size_t c = 0; c < profile.columns.size(); ++c) {
      if (profile.columns[c].type == ColumnType::categorical) {
        reader.swap_categories(c, profile.columns[c].categorical.labels);
      }
    }
  }
};

DataProfile profile_training_rows(const TrainRun& run, const PreparationPlan& plan,
                                  TrainingTable& table, const RowSplit& split) {
  ProfileOptions profile_options;
  profile_options.skip_columns = plan.prep.exclude;
  // Moved into the model file below, not copied: it holds every label of every column. It is made
  // without them, which are the reader's: lent to it while the preparation is fitted from it, and
  // moved into it once the reader is done (a copy of a table of ids took time and memory).
  profile_options.copy_labels = false;
  return profile_table(run.ctx, table.reader(), &split.train_mask, profile_options);
}

// The checks of --init-model against this run and its data (its kind, classes and preparation), and
// a note when the options that weigh the rows changed.
void check_init_model(const TrainRun& run, const RunSetup& setup, const LabelMap& labels) {
  const TrainTableOptions& options = run.options;
  const std::filesystem::path& data = run.data;
  const std::optional<PreparedSource>& prepared = setup.prepared;
  TrainReport& report = run.report;
  const ModelFile& init = setup.init;
  check_init_model_kind(init, options);
  if (options.task != Task::regression && init.classes != labels.classes) {
    std::string was, now;
    for (const auto& c : init.classes) was += (was.empty() ? "" : ", ") + c;
    for (const auto& c : labels.classes) now += (now.empty() ? "" : ", ") + c;
    throw InputError("--init-model " + options.init_model.string() + ": its classes are " + was +
                     "; this data's are " + now);
  }
  check_retraining_preparation(init, prepared, data, options.refit_prep);
  // The options that weigh the rows in the objective are this run's own; a retraining that drops
  // or adds one changes what the carried weights optimize, which is worth a word.
  static const char* const kRowWeights[] = {"class-weight", "weight"};
  for (const ChangedOption& c :
       changed_options(init.options_json, options.options_json, kRowWeights)) {
    const bool had = c.was != kDefaultOption, has = c.is != kDefaultOption;
    report.notes.push_back("--init-model " + options.init_model.string() + " was trained " +
                           (had ? "with --" + c.key + " " + c.was : "without --" + c.key) +
                           "; this run " +
                           (has ? "has --" + c.key + " " + c.is : std::string("has none")) +
                           ", so it optimizes another objective from the old weights");
  }
}

// The preparation fitted on the training rows' profile, or kept from --init-model (with a note on
// the labels it has no slot for), notes on what the profile shows (missing-value codes, gross
// outliers), and the preparation bound to the training file's columns.
void fit_preparation(const TrainRun& run, const RunSetup& setup, const PreparationPlan& plan,
                     TrainingTable& table, const RowSplit& split, FittedData& fit) {
  const TrainTableOptions& options = run.options;
  TrainReport& report = run.report;
  const bool warm = setup.warm;
  const ModelFile& init = setup.init;
  TableReader& reader = table.reader();
  const DataProfile& profile = fit.profile;
  fit.fitted = [&] {
    if (warm && !options.refit_prep) return init.preparation;
    fit.swap_profile_labels(reader);  // lent to the profile
    FittedPreparation fitted =
        fit_preparation_of(reader, profile, plan.prep, &split.train_mask, &report.notes);
    fit.swap_profile_labels(reader);  // back to the reader, for the binding
    return fitted;
  }();
  const FittedPreparation& fitted = fit.fitted;
  // Features are told apart by name: in the model file's preparation, in `lathe prepare`'s columns
  // (which refuses such a name too) and in a retraining (--init-model --refit-prep), which would
  // carry one's weights onto the other. A kept preparation was checked with --init-model.
  if (const std::optional<SharedFeatureName> shared = shared_feature_name(fitted)) {
    throw InputError(run.data.string() + ": two features would be named '" + shared->name + "' (" +
                     shared->first + " and " + shared->second +
                     "; features are told apart by name, and a retraining "
                     "carries weights by name): rename the column");
  }
  // A kept preparation's vocabularies are last month's: rows of labels new since (or too rare then
  // for a slot) all train the unknown slot, which --refit-prep would give slots of their own.
  if (warm && !options.refit_prep) {
    for (const CategoricalEncoding& enc : fitted.categorical) {
      if (enc.hashed) continue;
      const auto c = static_cast<std::size_t>(std::find_if(reader.columns().begin(), reader.columns().end(),
                                                           [&](const ColumnInfo& col) { return col.name == enc.name; }) -
                                              reader.columns().begin());
      if (c >= profile.columns.size() || profile.columns[c].type != ColumnType::categorical) continue;
      const std::vector<std::string>& labels = reader.columns()[c].categories;
      const std::vector<std::int64_t>& counts = profile.columns[c].categorical.counts;
      std::int64_t rows = 0, most = 0;
      std::string example;
      for (std::size_t k = 0; k < counts.size() && k < labels.size(); ++k) {
        if (counts[k] == 0 || std::binary_search(enc.vocabulary.begin(), enc.vocabulary.end(), labels[k])) continue;
        rows += counts[k];
        if (counts[k] > most) most = counts[k], example = labels[k];
      }
      if (rows == 0) continue;
      report.notes.push_back("--init-model " + options.init_model.string() + ": column '" + enc.name + "': " +
                             std::to_string(rows) + " training rows hold labels its kept preparation has no slot for "
                             "(the most frequent: '" + example + "', " + std::to_string(most) +
                             " rows); they all train its unknown slot, and --refit-prep would give them slots of "
                             "their own");
    }
  }
  // Gross outliers in an unclipped column: its standard deviation, which standard scaling divides
  // by, is theirs, and the model fits them at the cost of the other rows (20k rows, 1% of the
  // numeric values x50: test AUC 0.754, with --clip quantile 0.843). Clipping is not the default: it
  // costs where tails are real. A kept preparation (--init-model) is not this run's to change.
  if (!warm || options.refit_prep) {
    for (std::string note :
         {missing_code_note(profile, fitted), extreme_values_note(profile, fitted)}) {
      if (!note.empty()) report.notes.push_back(std::move(note));
    }
  }
  fit.bound = bind_preparation(fitted, reader.columns());
}

// What the model fits for each row: its label (a class index, or the value), the regression target
// standardized, and its weight (--weight, times balanced class weights).
struct Targets {
  const TrainingTable* table = nullptr;
  std::int32_t classes = 0;
  PredictionLink link;
  bool weighted = false;
  std::vector<double> balance;  // balanced class weights over the training rows; empty: none

  float label_of(std::int64_t file_row) const { return table->label_of(file_row); }
  float target_of_label(float label) const {
    return link.task == Task::regression
               ? static_cast<float>(
                     (transformed_label(link.target_transform, label) - link.target_mean) /
                     link.target_std)
               : label;
  }
  // A row's weight under class weights `by_class` (none when empty): the refit's are its own rows'.
  float weight_under(const std::vector<double>& by_class, std::int64_t file_row) const {
    float w = table->weight_col >= 0 ? table->values[1][static_cast<std::size_t>(file_row)] : 1.0f;
    if (!by_class.empty())
      w *= static_cast<float>(by_class[static_cast<std::size_t>(label_of(file_row))]);
    return w;
  }
  float weight_of(std::int64_t file_row) const { return weight_under(balance, file_row); }
};

Targets make_targets(const TrainRun& run, const RunSetup& setup, const TrainingTable& table,
                     const RowSplit& split) {
  const TrainTableOptions& options = run.options;
  const TableReader& reader = table.reader();
  const RowMask& train_mask = split.train_mask;
  Targets targets;
  targets.table = &table;
  targets.classes = static_cast<std::int32_t>(table.labels.classes.size());
  const std::int32_t classes = targets.classes;
  const auto label_of = [&](std::int64_t file_row) { return table.label_of(file_row); };
  const TargetTransform transform = setup.transform;
  const bool warm = setup.warm;
  const ModelFile& init = setup.init;

  // Regression targets are standardized so the default learning rate works at any scale (the
  // statistics of the training rows, in file order).
  PredictionLink& link = targets.link;
  link.task = options.task;
  link.outputs = options.task == Task::multiclass ? classes : 1;
  link.target_transform = transform;
  if (options.task == Task::regression) {
    double mean = 0, m2 = 0, n = 0;
    for (std::int64_t r = 0; r < reader.rows(); ++r) {
      if (!train_mask.test(r)) continue;
      const double t = transformed_label(transform, label_of(r));
      n += 1;
      const double d = t - mean;
      mean += d / n;
      m2 += d * (t - mean);
    }
    const double sd = std::sqrt(m2 / n);
    link.target_mean = mean;
    link.target_std = sd > 0 && std::isfinite(sd) ? sd : 1.0;
  }
  if (warm && options.task == Task::regression) {
    // The earlier weights are in its standardized target units: keep them.
    link.target_mean = init.target_mean;
    link.target_std = init.target_std;
  }

  // Sample weights, times balanced class weights n / (K * n_c) over the training rows.
  targets.weighted = table.weight_col >= 0 || options.balanced_class_weights;
  std::vector<double>& balance = targets.balance;
  if (options.balanced_class_weights) {
    if (options.task == Task::regression) throw UsageError("--class-weight balanced needs a classification task");
    std::vector<double> count(static_cast<std::size_t>(classes), 0.0);
    for (std::int64_t r = 0; r < reader.rows(); ++r) {
      if (train_mask.test(r)) count[static_cast<std::size_t>(label_of(r))] += 1.0;
    }
    balance = balanced_class_weights(count);
  }
  return targets;
}

// The optimizer: --optimizer, or adam by default, but plain SGD over wide dense data, where
// adam's steps (about lr long for every weight, whatever its gradient) move the many weights that
// fit noise as far as the few that matter: a training file of 2400 rows x 2500 numeric features,
// 20 of them in the label, gave a linear model of test r2 -1.03 under adam and 0.70 under sgd
// (Ridge 0.56 at alpha 1, 0.80 at 100); a binary label over 1500 features, test AUC 0.726
// against 0.794 (bench/RESULTS.md, session 26); an fm's pairwise factors more so (session 27:
// 4000 rows x 500 features, RMSE 356 against 32). On data of many rows a feature adam is the
// better default (categorical slots of different frequencies, the shared datasets).
OptimizerConfig choose_optimizer(const TrainRun& run, const FittedPreparation& fitted) {
  const TrainTableOptions& options = run.options;
  TrainReport& report = run.report;
  OptimizerConfig optimizer = options.optimizer;
  const std::int64_t wide_rows_per_feature =
      options.kind == ModelKind::fm ? kWideDenseRowsPerFeatureFm : kWideDenseRowsPerFeature;
  if (options.default_optimizer && fitted.dense_features() >= kWideDenseMinFeatures &&
      fitted.dense_features() * wide_rows_per_feature >= report.train_rows) {
    optimizer.kind = OptimizerKind::sgd;
    report.notes.push_back("--optimizer sgd: the default for " +
                           std::string(options.kind == ModelKind::fm ? "an fm" : "a linear model") +
                           " over wide dense data (" + std::to_string(fitted.dense_features()) +
                           " dense features for " + std::to_string(report.train_rows) +
                           " training rows), where adam fits noise; give "
                           "--optimizer to choose");
  }
  report.optimizer = optimizer.kind;
  return optimizer;
}

// Where the prepared training rows are held: in memory, or streamed window by window when prepared
// they would not fit the memory budget (or when asked); whether a refit (--refit) trains again on
// every row beside them; and the memory the run takes, checked, with notes on options it ignores.
struct RowsPlan {
  std::int64_t row_bytes = 0;  // a prepared training row: its features, label and weight
  double budget = 0.0;         // the bytes prepared training rows may take before they are streamed
  bool stream = false;
  bool refit = false;
};

RowsPlan plan_rows(const TrainRun& run, const TrainingTable& table, const RowSplit& split,
                   const FittedPreparation& fitted, const OptimizerConfig& optimizer) {
  const TrainTableOptions& options = run.options;
  const DeviceContext& ctx = run.ctx;
  TrainReport& report = run.report;
  const TableReader& reader = table.reader();
  const bool separate_valid = split.separate_valid;
  const double valid_fraction = split.valid_fraction;
  const RowMask& keep = table.keep;
  const std::int32_t classes = static_cast<std::int32_t>(table.labels.classes.size());
  RowsPlan plan;
  // Stream the training rows when prepared they would not fit the memory budget (or when asked).
  // Prepared features, label and weight: column-major for the GPU, row-major only for the CPU
  // model (models/cpu_model.cpp reads nothing else).
  // The CPU model's rows hold no products (ModelShape::products: it multiplies the numeric
  // crosses out as it reads a row).
  const std::int64_t feature_bytes =
      ctx.is_cuda() ? fitted.prepared_row_bytes()
                    : fitted.prepared_row_bytes() - 4 * (fitted.dense_features() - fitted.row_major_dense_features());
  plan.row_bytes = feature_bytes + 8;
  const std::int64_t row_bytes = plan.row_bytes;
  plan.budget =
      options.memory_budget_bytes > 0 ? options.memory_budget_bytes : default_memory_budget(ctx);
  const double budget = plan.budget;
  plan.stream = options.stream ||
                static_cast<double>(report.train_rows) * static_cast<double>(row_bytes) > budget;
  const bool stream = plan.stream;
  report.streamed = stream;
  // --refit (RefitChoice): every row the split kept (the training and validation rows, in file
  // order) is prepared a second time for it, beside the two parts.
  const std::int64_t held_out = split.held_out();
  plan.refit = [&] {
    if (options.refit == RefitChoice::no) return false;
    const char* why_not =
        separate_valid  ? "the validation rows are a separate file (--valid), not rows of the data"
        : held_out == 0 ? "no validation rows are held out of the data (--valid-fraction)"
        : stream        ? "the training rows are streamed; the refit needs every row in memory"
                        : nullptr;
    if (why_not != nullptr && options.refit == RefitChoice::yes) {
      throw UsageError(std::string("--refit yes: ") + why_not);
    }
    if (options.refit == RefitChoice::yes) return true;
    // A linear model only: an fm's training is not convex, and the epochs one run chose need not
    // suit another from other rows (diamonds, 5 splits: its test RMSE 753 kept, 858 refitted).
    // The share asked for (--valid-fraction, or the automatic one), not the one the split made:
    // each class's share is rounded to whole rows, so --valid-fraction 0.1 held out 704 of
    // telco's 7043 rows and 34 of penguins' 344, under 10%, and was refitted on diamonds' 8000.
    if (options.kind != ModelKind::linear || valid_fraction < kRefitMinValidShare) return false;
    if (why_not != nullptr) {
      // Rows streamed because they exceed the memory budget (not --stream) would have been refitted
      // within it: said, as the budget's other case below is (QA: the summary's refit was null
      // without a word).
      if (stream && !options.stream && !separate_valid && held_out > 0) {
        report.notes.push_back(
            "no refit (--refit auto): the prepared training rows exceed the memory budget of " +
            number_label(static_cast<float>(budget / 1e6)) +
            " MB (--memory-budget-mb), so they are streamed, and the refit needs every row in "
            "memory; "
            "--refit no keeps this note away");
      }
      return false;
    }
    // Rows that fit the budget once but not again beside the refit's copy: said, since the model
    // is then not the one a refit makes (a --memory-budget-mb a little under twice the rows' left
    // it out silently).
    const double both = static_cast<double>(report.train_rows + keep.count()) * static_cast<double>(row_bytes);
    if (both > budget) {
      report.notes.push_back(
          "no refit (--refit auto): the prepared training rows and every row again for the refit take " +
          number_label(static_cast<float>(both / 1e6)) + " MB, beyond the memory budget of " +
          number_label(static_cast<float>(budget / 1e6)) +
          " MB (--memory-budget-mb); --refit yes refits beyond it, --refit no keeps this note away");
      return false;
    }
    return true;
  }();
  {
    // The rows held: all of them in memory, or one file block being prepared and the window; a
    // block of prepared features is held at least once while a table's rows are gathered.
    const double held_rows =
        stream       ? std::min<double>(static_cast<double>(report.train_rows), budget / row_bytes)
        : plan.refit ? static_cast<double>(report.train_rows + keep.count())
                     : static_cast<double>(report.train_rows);
    const double block = static_cast<double>(std::min(reader.rows(), reader.block_rows())) * fitted.prepared_row_bytes();
    // Per parameter: the weight, the best epoch's copy, the gradient (double), an adaptive
    // optimizer's two moments.
    ModelMemory model_memory;
    model_memory.factors = options.kind == ModelKind::fm ? options.factors : 0;
    model_memory.outputs = options.task == Task::multiclass ? classes : 1;
    model_memory.parameters = static_cast<double>(options.task == Task::multiclass ? classes : 1) *
                              static_cast<double>(fitted.expanded_features()) * (1.0 + model_memory.factors);
    model_memory.bytes_per_parameter =
        4.0 + 4.0 + 8.0 + (optimizer.kind == OptimizerKind::sgd ? 0.0 : 8.0);
    check_fits_in_memory(fitted, held_rows * static_cast<double>(row_bytes) + block, model_memory);
    // A budget the user set bounds the rows only (README, "Training data larger than memory"): a
    // model of hashed ids or crosses and the categories' labels take memory beyond it, which a run
    // under --memory-budget-mb 50 used silently (a cross in 2^24 buckets: 545 MB resident).
    const double model_bytes = model_memory.parameters * model_memory.bytes_per_parameter;
    std::int64_t labels = 0;
    for (const ColumnInfo& c : reader.columns()) labels += static_cast<std::int64_t>(c.categories.size());
    if (options.memory_budget_bytes > 0 && model_bytes > options.memory_budget_bytes) {
      report.notes.push_back(
          "--memory-budget-mb " +
          number_label(static_cast<float>(options.memory_budget_bytes / 1e6)) +
          " bounds the training rows held in memory, not the model: its " +
          std::to_string(static_cast<long long>(model_memory.parameters)) +
          " parameters take about " +
          std::to_string(static_cast<long long>(std::ceil(model_bytes / 1e6))) +
          " MB besides (a weight, " +
          (optimizer.kind == OptimizerKind::sgd
               ? "the best epoch's copy and a gradient"
               : "the best epoch's copy, a gradient and the optimizer's moments") +
          " each)" +
          (labels > 0 ? ", and the " + std::to_string(labels) +
                            " labels of the categorical columns are held as text"
                      : std::string()) +
          "; fewer --hash-buckets or --category-buckets make the model smaller");
    }
  }
  if (options.window_rows_given && !stream) {
    report.notes.push_back("--window-rows is ignored: the prepared training rows fit the memory budget and are not "
                           "streamed (--stream streams them anyway)");
  }
  if (options.hash_buckets_given &&
      std::none_of(fitted.sparse.begin(), fitted.sparse.end(),
                   [](const SparseGroup& g) { return g.kind == SparseKind::categorical_cross; })) {
    report.notes.push_back("--hash-buckets is ignored: this run makes no categorical x categorical cross (--cross)");
  }
  return plan;
}

// The prepared rows held in memory: the training rows (unless streamed), the validation rows (of
// the data, or of a --valid file), and every row the split kept again for a refit.
struct HeldRows {
  PreparedRows train, valid, refit;
  // A --valid file's labels (classification: class indices) and weights, one per validation row.
  std::vector<float> valid_raw_labels, valid_raw_weights;
  std::string valid_file;  // the file of the validation rows
};

void prepare_held_rows(const TrainRun& run, TrainingTable& table, const RowSplit& split,
                       const FittedData& fit, const RowsPlan& plan,
                       const OptimizerConfig& optimizer, HeldRows& held) {
  const DeviceContext& ctx = run.ctx;
  TableReader& reader = table.reader();
  const BoundPreparation& bound = fit.bound;
  const FittedPreparation& fitted = fit.fitted;
  const RowMask& train_mask = split.train_mask;
  const RowMask& valid_mask = split.valid_mask;
  const RowMask& keep = table.keep;
  const bool stream = plan.stream;
  PreparedRows& train_rows = held.train;
  PreparedRows& valid_rows = held.valid;
  PreparedRows& refit_rows = held.refit;
  train_rows.row_major = !ctx.is_cuda();
  train_rows.set_memory(
      cpu_training_rows_memory(static_cast<std::int64_t>(fitted.sparse.size()), optimizer));
  refit_rows.row_major = train_rows.row_major;
  refit_rows.set_memory(
      cpu_training_rows_memory(static_cast<std::int64_t>(fitted.sparse.size()), optimizer));
  if (split.separate_valid) {
    if (!stream) gather_prepared(ctx, reader, bound, fitted, {&train_mask}, {&train_rows});
  } else if (stream) {
    gather_prepared(ctx, reader, bound, fitted, {&valid_mask}, {&valid_rows});
  } else if (plan.refit) {
    gather_prepared(ctx, reader, bound, fitted, {&train_mask, &valid_mask, &keep},
                    {&train_rows, &valid_rows, &refit_rows});
  } else {
    gather_prepared(ctx, reader, bound, fitted, {&train_mask, &valid_mask}, {&train_rows, &valid_rows});
  }
  held.valid_file = run.data.string();
}

// A validation file (--valid): its weights checked, its rows prepared as scored data (an infinite
// value in an unclipped column is refused), a note on its labels the training rows never had, and
// its labels mapped to the training classes and checked.
void read_valid_file(const TrainRun& run, const RunSetup& setup, const TrainingTable& table,
                     const FittedData& fit, HeldRows& held) {
  const TrainTableOptions& options = run.options;
  const DeviceContext& ctx = run.ctx;
  const std::filesystem::path& data = run.data;
  TrainReport& report = run.report;
  const TableReadOptions& read = table.read;
  const FittedPreparation& fitted = fit.fitted;
  const LabelMap& labels = table.labels;
  const TargetTransform transform = setup.transform;
  PreparedRows& valid_rows = held.valid;
  std::vector<float>& valid_raw_labels = held.valid_raw_labels;
  std::vector<float>& valid_raw_weights = held.valid_raw_weights;
  std::string& valid_file = held.valid_file;
  TableReader vreader(options.valid_path, read);
  // Named as the --valid file's lack: "--label: FILE has no column" never said which file it was.
  const std::int32_t vl = column_index(vreader, options.preparation.label, "--valid (--label)");
  std::vector<std::int32_t> vw = {vl};
  if (!options.weight_column.empty()) {
    vw.push_back(weight_column_index(vreader, options.weight_column, options.preparation.label,
                                     "--valid (--weight)"));
  }
  auto vvalues = read_columns(vreader, vw);
  // The validation metrics are weighted by these: checked as the training file's are, before
  // anything trains.
  if (vw.size() > 1) {
    check_sample_weights(vvalues[1], nullptr, options.valid_path.string(), options.weight_column,
                         "its " + std::to_string(vreader.rows()) + " rows");
  }
  // A column the preparation needs that the file lacks, or holds as another type, is named with
  // the file (the binding's message names the column only).
  BoundPreparation vbound;
  try {
    vbound = bind_preparation(fitted, vreader.columns());
  } catch (const InputError& e) {
    throw InputError(options.valid_path.string() + " (--valid): " + e.what());
  }
  // Scored like any data the model meets: an infinite value in an unclipped column is refused.
  gather_prepared(ctx, vreader, vbound, fitted, {nullptr}, {&valid_rows}, vreader.path().string());
  // Its labels the training rows never had take the unknown slot, as in `lathe score`, which says
  // so: the validation metrics then measure rows the model knows less of.
  if (!vbound.categorical_input.empty()) {
    std::vector<UnseenLabels> unseen;
    const std::vector<std::int64_t> wanted(vbound.categorical_input.begin(),
                                           vbound.categorical_input.end());
    const std::int64_t vcolumns = static_cast<std::int64_t>(vreader.columns().size());
    std::vector<float> block;
    for (std::int64_t first = 0; first < vreader.rows(); first += vreader.block_rows()) {
      const std::int64_t n = std::min(vreader.block_rows(), vreader.rows() - first);
      block.resize(static_cast<std::size_t>(n * vcolumns));
      vreader.read_block_columns(first, n, wanted, block);
      tally_unseen_labels(vbound, vreader.columns(), ColumnBlockView{block.data(), n, vcolumns},
                          unseen);
    }
    for (const UnseenLabels& u : unseen)
      report.notes.push_back("--valid " + options.valid_path.string() + ": " +
                             unseen_labels_note(u));
  }
  LabelMap vmap = labels;
  vmap.categorical = vreader.columns()[vl].type == ColumnType::categorical;
  vmap.file_labels = vreader.columns()[vl].categories;
  valid_raw_labels = options.task == Task::regression ? vvalues[0] : vmap.classes_of(vvalues[0]);
  check_labels(vmap, valid_raw_labels, vvalues[0], options.valid_path.string(),
               options.preparation.label, "the training data " + data.string());
  check_transformable_labels(transform, vvalues[0], nullptr, options.valid_path.string(),
                             options.preparation.label);
  if (vw.size() > 1) valid_raw_weights = std::move(vvalues[1]);
  valid_file = options.valid_path.string();
}

// The schema orders the model's inputs (io/scorer.cpp, io/onnx_export.cpp): the columns left out
// (passthrough, `--drop`, the weight) are not inputs, and a hashed column's labels are not needed
// (its buckets come from the label hash): either could hold millions of labels, such as an id.
// A hashed column's labels are never copied (clearing a copy would keep its capacity).
std::vector<ColumnInfo> model_input_schema(const TableReader& reader, const PreparationPlan& plan,
                                           const FittedPreparation& fitted) {
  const std::vector<std::string>& passthrough = plan.passthrough;
  const PreparationOptions& prep = plan.prep;
  std::vector<ColumnInfo> input_schema;
  for (const ColumnInfo& c : reader.columns()) {
    if (std::find(passthrough.begin(), passthrough.end(), c.name) != passthrough.end() ||
        std::find(prep.exclude.begin(), prep.exclude.end(), c.name) != prep.exclude.end()) {
      continue;
    }
    const bool hashed = std::any_of(fitted.categorical.begin(), fitted.categorical.end(),
                                    [&](const CategoricalEncoding& e) { return e.name == c.name && e.hashed; });
    if (!hashed) {
      input_schema.push_back(c);
      continue;
    }
    ColumnInfo& entry = input_schema.emplace_back();
    entry.name = c.name;
    entry.type = c.type;
    entry.dtype = c.dtype;
    entry.dataset = c.dataset;
    entry.text_only = c.text_only;
  }
  return input_schema;
}

// The labels, targets and weights of the prepared rows, in their order: the labels the metrics
// take, the targets the model fits, the weights training and the recorded validation metrics take,
// and those the epoch is chosen by.
struct RowLabels {
  std::vector<float> train_metric_labels, valid_metric_labels;
  std::vector<float> train_targets, valid_targets;
  std::vector<float> train_weights, valid_weights, valid_selection_weights;
};

RowLabels label_rows(const TrainingTable& table, const RowSplit& split, const Targets& targets,
                     const HeldRows& held) {
  const PreparedRows& train_rows = held.train;
  const PreparedRows& valid_rows = held.valid;
  const bool separate_valid = split.separate_valid;
  const std::vector<float>& valid_raw_labels = held.valid_raw_labels;
  const std::vector<float>& valid_raw_weights = held.valid_raw_weights;
  const std::vector<double>& balance = targets.balance;
  const auto label_of = [&](std::int64_t file_row) { return targets.label_of(file_row); };
  const auto target_of_label = [&](float label) { return targets.target_of_label(label); };
  const auto weight_of = [&](std::int64_t file_row) { return targets.weight_of(file_row); };
  RowLabels labels;
  std::vector<float>& train_metric_labels = labels.train_metric_labels;
  std::vector<float>& valid_metric_labels = labels.valid_metric_labels;
  std::vector<float>& train_targets = labels.train_targets;
  std::vector<float>& valid_targets = labels.valid_targets;
  std::vector<float>& train_weights = labels.train_weights;
  std::vector<float>& valid_weights = labels.valid_weights;
  std::vector<float>& valid_selection_weights = labels.valid_selection_weights;
  train_metric_labels.resize(static_cast<std::size_t>(train_rows.block.rows));
  for (std::int64_t p = 0; p < train_rows.block.rows; ++p) train_metric_labels[p] = label_of(train_rows.source_row[p]);
  valid_metric_labels.resize(static_cast<std::size_t>(valid_rows.block.rows));
  for (std::int64_t p = 0; p < valid_rows.block.rows; ++p) {
    valid_metric_labels[p] = separate_valid ? valid_raw_labels[static_cast<std::size_t>(p)] : label_of(valid_rows.source_row[p]);
  }
  train_targets.resize(train_metric_labels.size());
  valid_targets.resize(valid_metric_labels.size());
  for (std::size_t p = 0; p < train_targets.size(); ++p) train_targets[p] = target_of_label(train_metric_labels[p]);
  for (std::size_t p = 0; p < valid_targets.size(); ++p) valid_targets[p] = target_of_label(valid_metric_labels[p]);

  if (targets.weighted) {
    train_weights.resize(train_metric_labels.size());
    for (std::size_t p = 0; p < train_weights.size(); ++p) train_weights[p] = weight_of(train_rows.source_row[p]);
    valid_weights.assign(valid_metric_labels.size(), 1.0f);
    if (table.weight_col >= 0) {
      for (std::size_t p = 0; p < valid_weights.size(); ++p) {
        valid_weights[p] = separate_valid
                               ? (valid_raw_weights.empty() ? 1.0f : valid_raw_weights[p])
                               : table.values[1][valid_rows.source_row[p]];
      }
    }
    // The recorded validation metrics weigh rows by --weight only, as `lathe eval` and `drift` do;
    // the epoch is chosen by the metric weighted as training weighs rows (LabeledRows::selection_weights).
    if (!balance.empty()) {
      valid_selection_weights.resize(valid_weights.size());
      for (std::size_t p = 0; p < valid_weights.size(); ++p) {
        valid_selection_weights[p] =
            valid_weights[p] * static_cast<float>(balance[static_cast<std::size_t>(valid_metric_labels[p])]);
      }
    }
  }
  return labels;
}

// A retraining starts from --init-model's weights: as they are, on its kept preparation, or carried
// into the refitted one (carry_parameters), with notes on what did and did not carry.
void start_from_init_model(const TrainRun& run, const RunSetup& setup,
                           const FittedPreparation& fitted, const PredictionLink& link,
                           const ModelShape& shape, Model& model) {
  const ModelFile& init = setup.init;
  if (run.options.refit_prep) {
    CarryReport carry;
    model.set_parameters(carry_parameters(init.preparation, init.parameters,
                                          {init.target_mean, init.target_std}, fitted,
                                          {link.target_mean, link.target_std}, shape, &carry,
                                          init.profile ? &*init.profile : nullptr));
    for (std::string& note : carried_weights_notes(init, run.options.init_model, fitted, carry,
                                                   run.data, run.options.options_json)) {
      run.report.notes.push_back(std::move(note));
    }
  } else {
    model.set_parameters(init.parameters);
  }
}

// The rows the trainer takes, labeled: the training rows and the validation rows.
struct LabeledSets {
  LabeledRows train, valid;
};

// --init-model's metrics on the validation rows before the first epoch
// (TrainReport::init_model_valid), said on stderr; its value of the metric that chooses the epoch,
// weighted as the epochs are.
double measure_init_model(const TrainRun& run, const RunSetup& setup, const Targets& targets,
                          Model& model, const LabeledRows& valid, const RowLabels& labels) {
  const TrainTableOptions& options = run.options;
  const DeviceContext& ctx = run.ctx;
  TrainReport& report = run.report;
  const PredictionLink& link = targets.link;
  const std::int32_t classes = targets.classes;
  const std::vector<float>& valid_metric_labels = labels.valid_metric_labels;
  const std::string& stopping_metric_name = setup.stopping_metric_name;
  double start_value = NAN;
  std::vector<float> predictions(static_cast<std::size_t>(valid.rows * link.outputs));
  predict(model, link, valid.set.rows, predictions);
  const auto weights_of = [&](const float* w) {
    return w ? std::span<const float>(w, static_cast<std::size_t>(valid.rows))
             : std::span<const float>();
  };
  report.init_model_valid = compute_metrics(ctx, link.task, predictions, valid_metric_labels,
                                            weights_of(valid.set.weights), classes);
  // Compared as the epochs are: weighted as the epochs are chosen (--class-weight balanced).
  start_value = valid.selection_weights
                    ? compute_metrics(ctx, link.task, predictions, valid_metric_labels,
                                      weights_of(valid.selection_weights), classes)
                          .values.at(stopping_metric_name)
                    : report.init_model_valid.values.at(stopping_metric_name);
  if (options.trainer.progress) {
    std::cerr << "starting model (--init-model " << options.init_model.string() << "): valid "
              << stopping_metric_name << " "
              << report.init_model_valid.values.at(stopping_metric_name);
    if (valid.selection_weights) std::cerr << " (class-weighted " << start_value << ")";
    std::cerr << "\n";
  }
  return start_value;
}

// The model file as far as it is known before training: the problem and the model's shape, the
// label's classes and scaling, the preparation, the input schema and the options (with, for a kept
// preparation, the options of the run that fitted it).
ModelFile describe_model(const TrainRun& run, const RunSetup& setup, const LabelMap& labels,
                         const PredictionLink& link, const ModelShape& shape,
                         const FittedPreparation& fitted, std::vector<ColumnInfo> input_schema) {
  const TrainTableOptions& options = run.options;
  const bool warm = setup.warm;
  const ModelFile& init = setup.init;
  ModelFile file;
  file.task = options.task;
  file.kind = options.kind;
  file.loss = shape.loss;
  file.huber_delta = shape.huber_delta;
  file.outputs = shape.outputs;
  file.factors = shape.factors;
  file.label = options.preparation.label;
  file.classes = labels.classes;
  file.target_mean = link.target_mean;
  file.target_std = link.target_std;
  file.target_transform = setup.transform;
  file.preparation = fitted;
  file.input_schema = std::move(input_schema);
  file.trained_on_prepared = setup.prepared;
  file.options_json = options.options_json;
  if (warm && !options.refit_prep) {
    // The preparation kept is the one these options fitted: a later retraining from this model
    // checks its preparation options against them (the first run's command repeated).
    if (const std::string kept = preparation_run_options(init); !kept.empty()) {
      nlohmann::json own = nlohmann::json::parse(file.options_json, nullptr, false);
      if (own.is_object()) {
        own["kept_preparation_options"] = nlohmann::json::parse(kept);
        file.options_json = own.dump();
      }
    }
  }
  return file;
}

// The training rows' profile, the reference of `lathe drift`: of the features and the label, not
// of the columns left out (`--drop`, the sample weight), which new data need not have.
// A streamed run's reader (`streamed_reader`, else null) still holds the labels (it read the
// windows with them): copied.
void store_training_profile(ModelFile& file, DataProfile profile, const PreparationPlan& plan,
                            const TableReader* streamed_reader) {
  if (streamed_reader) {
    for (std::size_t c = 0; c < profile.columns.size(); ++c) {
      if (profile.columns[c].type == ColumnType::categorical) {
        profile.columns[c].categorical.labels = streamed_reader->columns()[c].categories;
      }
    }
  }
  file.profile = std::move(profile);
  std::erase_if(file.profile->columns, [&](const ColumnProfile& c) {
    return std::find(plan.prep.exclude.begin(), plan.prep.exclude.end(), c.name) !=
           plan.prep.exclude.end();
  });
}

// The "metrics" attribute of the model file and of each checkpoint: the kept epoch, its validation
// metrics and what the run trained and validated on. The report's figures are read when it is
// written: the batch and the refit are known later than the rows.
struct MetricsRecord {
  const TrainReport& report;
  std::string valid_file;
  bool separate_valid = false;
  double valid_fraction = 0.0;
  std::int64_t valid_rows = 0;

  std::string json(const std::vector<EpochRecord>& history, std::int32_t best_epoch,
                   const std::string& metric) const {
    const EpochRecord* best = best_epoch > 0 ? &history.at(best_epoch - 1) : nullptr;
    nlohmann::json stored{
        {"best_epoch", best_epoch},
        {"metric", metric},
        {"train_rows", report.train_rows},
        {"valid_rows", report.valid_rows},
        {"batch", report.batch},
        // What the run trained with, defaults chosen included (the optimizer and rate follow the
        // data): eval's "training" and the report show them. The rate as written (0.01, not its
        // float 0.0099999998).
        {"optimizer", optimizer_name(report.optimizer)},
        {"lr", shortest_double(report.learning_rate)},
        {"valid_file", valid_file},
        // The share of the training file held out for validation (then valid_file
        // names the training file); 0 with --valid FILE.
        {"valid_fraction", separate_valid ? 0.0 : valid_fraction},
        {"valid", best && valid_rows > 0 ? metrics_to_json(best->valid) : nlohmann::json::object()},
        {"train_loss", best ? nlohmann::json(best->train_loss) : nlohmann::json(nullptr)}};
    // The parameters are the refit's (--refit): "valid" and "train_loss" above are the kept
    // epoch's, before it.
    if (report.refit_rows > 0)
      stored["refit"] = {{"rows", report.refit_rows}, {"epochs", report.refit_epochs}};
    return stored.dump();
  }
};

// The trainer's options: those given, with the defaults that follow the training rows (the batch,
// the epochs, an fm's rate over a hashed column, no patience without validation rows), and notes on
// a rate too high for an unscaled column or for --l2.
TrainerOptions choose_trainer_options(const TrainRun& run, const RunSetup& setup,
                                      const PreparationPlan& plan, const FittedPreparation& fitted,
                                      const ModelFile& file) {
  const TrainTableOptions& options = run.options;
  TrainReport& report = run.report;
  const bool warm = setup.warm;
  const bool prepared_hashes = plan.prepared_hashes;
  const PreparationOptions& prep = plan.prep;
  TrainerOptions trainer = options.trainer;
  if (options.default_batch) trainer.batch = default_batch_for(report.train_rows, trainer.batch);
  // The rows a step takes: a --batch above the training rows steps once an epoch over all of them.
  report.batch = std::min<std::int64_t>(trainer.batch, std::max<std::int64_t>(report.train_rows, 1));
  if (options.default_epochs) trainer.epochs = default_epochs_for(report.train_rows, trainer.batch, trainer.epochs);
  // A hashed column has more labels than --max-categories, most of them rare: at the default rate
  // an fm's factors fitted their buckets' few rows in the first epoch (Criteo-like data: a log-loss
  // worse than the constant's, test AUC 0.72 where 0.003 gave 0.77), while on data without one
  // (the shared datasets) 0.01 is the better rate.
  if (options.default_lr && options.kind == ModelKind::fm &&
      (prepared_hashes || std::any_of(fitted.categorical.begin(), fitted.categorical.end(),
                                      [](const CategoricalEncoding& c) { return c.hashed; }))) {
    trainer.learning_rate = kFmHashedLearningRate;
    report.notes.push_back("--lr " + number_label(kFmHashedLearningRate) +
                           ": the default rate of an fm with a hashed categorical column (more labels than "
                           "--max-categories), whose rare buckets' factors a higher rate overfits; give --lr to choose");
  }
  report.max_epochs = trainer.epochs;
  // A column prepared unscaled (--scale none) whose values are large for the learning rate: one
  // step moves its term by lr x value per unit of gradient, and the run seldom settles (QA:
  // penguins' body mass, to 6300 g, at --lr 0.01 kept a model of test accuracy 0.68 after 5
  // epochs, with no note when its log-loss stayed below the constant's).
  if (file.profile && !(warm && !options.refit_prep)) {
    std::string widest;
    double widest_reach = 0.0;
    std::int64_t wide = 0;
    for (const NumericEncoding& e : fitted.numeric) {
      if (prep.column(e.name).scale != ScaleKind::none) continue;
      const ColumnStats& stats = file.profile->column(e.name).numeric.stats;  // fitted from this profile
      if (stats.count == 0) continue;
      const NumericTransform& t = e.transform;
      const double lo = std::max<double>(stats.min, t.clip_lo);
      const double hi = std::min<double>(stats.max, t.clip_hi);
      const double reach = std::max(std::abs(lo - t.center), std::abs(hi - t.center)) * t.inv_scale;
      if (!(reach * trainer.learning_rate > 1.0)) continue;
      ++wide;
      if (reach > widest_reach) widest_reach = reach, widest = e.name;
    }
    if (wide > 0) {
      report.notes.push_back(
          "column '" + widest + "' is prepared unscaled (--scale none) and reaches " + number_label(static_cast<float>(widest_reach)) +
          (wide > 1 ? " (and " + std::to_string(wide - 1) + (wide == 2 ? " more such column)" : " more such columns)") : "") + ": a step at --lr " +
          number_label(trainer.learning_rate) + " can move its term by " +
          number_label(static_cast<float>(widest_reach * trainer.learning_rate)) +
          ", and minibatch steps that large seldom settle; scale it (--scale standard) or give --lr below " +
          number_label(static_cast<float>(1.0 / widest_reach)));
    }
  }
  // An l2 pull of lr x l2 above 1 moves a weight past zero at every step, whatever its gradient
  // (plain SGD, momentum and Nesterov add l2 w to the gradient, adamw subtracts lr l2 w; Adam's and
  // Adagrad's steps are normalized): the weights flip sign, and grow once it passes 2 (QA: --l2 1e9
  // ended in "try a lower --lr", --l2 150 in a model worse than a constant, without naming --l2).
  // The optimizer chosen (the default's sgd on wide dense data), not the one given.
  const OptimizerKind chosen = report.optimizer;
  const double l2_pull = static_cast<double>(trainer.learning_rate) * options.optimizer.l2;
  if (l2_pull > 1.0 && chosen != OptimizerKind::adam && chosen != OptimizerKind::adagrad) {
    const std::string why = "--l2 " + number_label(options.optimizer.l2) + " at --lr " +
                            number_label(trainer.learning_rate) + " pulls a weight by " +
                            number_label(static_cast<float>(l2_pull)) +
                            " times itself a step, past zero (above 2 the weights grow); lower --lr, or --l2 below " +
                            number_label(static_cast<float>(1.0 / trainer.learning_rate)) + " at this rate";
    report.notes.push_back(why);
    trainer.divergence_advice = why;
  }
  // Without validation rows only the running training loss could stop the run, a noisy guide
  // that stopped it while the schedule's rate was still high (QA: 39 epochs of 125, 50x farther
  // from the optimum than the whole schedule); every epoch runs unless --patience says otherwise.
  if (report.valid_rows == 0 && options.default_patience) trainer.patience = 0;
  return trainer;
}

// The validation metric's scale (constant_metric_scale): --stop-margin's unit, and the refit's; NaN
// without validation rows.
double validation_metric_scale(const TrainRun& run, const RunSetup& setup, const Targets& targets,
                               const RowLabels& labels) {
  double valid_metric_scale = NAN;
  if (run.report.valid_rows > 0) {
    valid_metric_scale =
        constant_metric_scale(setup.stopping_metric_name, labels.valid_metric_labels,
                              !labels.valid_selection_weights.empty()
                                  ? std::span<const float>(labels.valid_selection_weights)
                              : targets.weighted ? std::span<const float>(labels.valid_weights)
                                                 : std::span<const float>(),
                              targets.classes);
    if (!(valid_metric_scale > 0) || !std::isfinite(valid_metric_scale)) valid_metric_scale = NAN;
  }
  return valid_metric_scale;
}

// The shape of an epoch's order: the rows held in memory (0), or streamed in windows of this many
// file rows (FileWindows), whose order is shuffled window by window. A checkpoint records it.
// Without --window-rows, as many as two windows of prepared rows (the one trained on, the next
// being loaded) fit the budget: at most 2^20 file rows, at least a read block. A small
// --memory-budget-mb then bounds the windows too, not only whether the rows are streamed.
// (The reader is read only when streaming: rows held in memory have closed it.)
struct EpochWindows {
  std::int64_t budget_window = 0;  // the rows of a window by the budget
  std::int64_t window_rows = 0;
  std::int64_t order_window = 0;  // 0: the rows are held in memory
};

EpochWindows epoch_windows(const TrainRun& run, const TrainingTable& table, const RowsPlan& plan) {
  const TrainTableOptions& options = run.options;
  const bool stream = plan.stream;
  EpochWindows windows;
  windows.budget_window =
      static_cast<std::int64_t>(plan.budget / (2.0 * static_cast<double>(plan.row_bytes)));
  windows.window_rows = options.window_rows > 0 ? options.window_rows
                        : stream
                            ? std::min(std::int64_t{1} << 20,
                                       std::max(table.reader().block_rows(), windows.budget_window))
                            : std::int64_t{1} << 20;
  windows.order_window =
      stream ? FileWindows::span_for(table.reader().block_rows(), windows.window_rows) : 0;
  return windows;
}

// The training as it runs: the model (of `shape`, stepped by `optimizer`), the trainer's options,
// whether a refit follows and the weights it starts from, and the checkpoint resumed.
struct Training {
  Training(const ModelShape& shape, const OptimizerConfig& optimizer)
      : shape(shape), optimizer(optimizer) {}
  const ModelShape& shape;
  const OptimizerConfig& optimizer;
  std::unique_ptr<Model> model;
  TrainerOptions trainer;
  bool refit = false;
  ModelParameters refit_start;
  LoadedCheckpoint resumed;
};

// --resume: the checkpoint checked against this run (the weights and the metric that chose its best
// epoch, its data and options: check_checkpoint_matches), notes on what differs, the refit
// reconsidered, and the model and trainer set to continue it.
void resume_from_checkpoint(const TrainRun& run, const RunSetup& setup, std::int64_t order_window,
                            ModelFile& file, Training& training) {
  const TrainTableOptions& options = run.options;
  TrainReport& report = run.report;
  const bool warm = setup.warm;
  const std::string& stopping_metric_name = setup.stopping_metric_name;
  LoadedCheckpoint& resumed = training.resumed;
  TrainerOptions& trainer = training.trainer;
  bool& refit = training.refit;
  resumed = load_checkpoint(options.resume_path);
  // The checkpoint's best epoch is in the terms of its validation metric's weights: --class-weight
  // balanced chooses it by the class-weighted metric and --weight weighs that by a column, so
  // another value would compare a class-weighted log-loss of 0.478 with plain ones of 0.41 and keep
  // an epoch neither chose. Checked before the features: without --weight W, W is a feature, and
  // the check of the features would only say that their number differs.
  static const char* const kValidationWeights[] = {"class-weight", "weight"};
  if (report.valid_rows > 0) {
    for (const ChangedOption& c :
         changed_options(resumed.model.options_json, file.options_json, kValidationWeights)) {
      const bool had = c.was != kDefaultOption, has = c.is != kDefaultOption;
      throw InputError(
          "--resume " + options.resume_path.string() +
          ": the run that wrote it chose its best epoch " +
          (had ? "with --" + c.key + " " + c.was : "without --" + c.key) + "; this run " +
          (has ? "has --" + c.key + " " + c.is : std::string("has none")) +
          ": its best epoch and patience count are in the other weights' terms; resume " +
          (had ? "with --" + c.key + " " + c.was : "without --" + c.key));
    }
  }
  check_checkpoint_matches(options.resume_path, resumed.model, file);
  for (std::string& note : resume_option_notes(options.resume_path, resumed.model.options_json,
                                               file.options_json, training.optimizer.kind)) {
    report.notes.push_back(std::move(note));
  }
  const nlohmann::json ck_metrics =
      nlohmann::json::parse(resumed.model.metrics_json, nullptr, false);
  // The checkpoint's best epoch, best value and epochs since it are those of its run's --metric:
  // another one would compare this run's epochs with a value of the other metric (an AUC of 0.85
  // "improving" on a log-loss of 0.41) and keep an epoch neither metric chose.
  if (report.valid_rows > 0 && ck_metrics.is_object() && ck_metrics.contains("metric") &&
      ck_metrics["metric"].is_string() && ck_metrics["metric"] != "train_loss" &&
      ck_metrics["metric"] != stopping_metric_name) {
    throw InputError("--resume " + options.resume_path.string() +
                     ": the run that wrote it chose its best epoch by " +
                     ck_metrics["metric"].get<std::string>() + ", this one by " +
                     stopping_metric_name +
                     " (--metric): its best epoch and patience count are in the other metric's "
                     "terms; resume with "
                     "--metric " +
                     ck_metrics["metric"].get<std::string>());
  }
  if (ck_metrics.is_object() && ck_metrics.contains("order_window") &&
      ck_metrics["order_window"].is_number_integer()) {
    const auto was = ck_metrics["order_window"].get<std::int64_t>();
    const auto shape = [](std::int64_t w) {
      return w == 0
                 ? std::string("held its training rows in memory")
                 : "streamed its training rows in windows of " + std::to_string(w) + " file rows";
    };
    if (was != order_window) {
      report.notes.push_back(
          "--resume: the run that wrote " + options.resume_path.string() + " " + shape(was) +
          ", this one " + shape(order_window) +
          ": the epochs' row order differs, so the resumed run will not equal an uninterrupted "
          "one (give the same --stream, --window-rows and --memory-budget-mb)");
    }
  }
  // A checkpoint of a retraining run carries its parent, which the model keeps.
  if (!warm && file.parent.empty()) file.parent = resumed.model.parent;
  // A refit starts where the checkpoint's run started, which was an earlier model's weights when
  // that run had --init-model: a resume without it has no such start.
  if (refit && !warm && !resumed.model.parent.empty()) {
    const std::string why =
        "the run that wrote --resume " + options.resume_path.string() +
        " started from an earlier model (--init-model), where a refit starts too; give that "
        "--init-model again";
    if (options.refit == RefitChoice::yes) throw UsageError("--refit yes: " + why);
    report.notes.push_back("no refit (--refit auto): " + why +
                           ", or --refit no to keep this note away");
    refit = false;
  }
  // A checkpoint at or past --epochs leaves no epoch to train: the run writes the checkpoint's
  // best epoch (refitted, when --refit refits), with an empty --metrics-log. Noted, not refused
  // (a lower --epochs is allowed, see README), but said, since the run looks like a finished one
  // that trained.
  const std::int32_t checkpoint_epochs = resumed.state.next_epoch - 1;
  if (checkpoint_epochs >= trainer.epochs) {
    report.notes.push_back("--resume: " + options.resume_path.string() + " has trained " +
                           std::to_string(checkpoint_epochs) + " epoch" +
                           (checkpoint_epochs == 1 ? "" : "s") + ", at or past --epochs " +
                           std::to_string(trainer.epochs) +
                           ": no epoch is trained and the model is the checkpoint's best epoch (" +
                           std::to_string(resumed.state.best_epoch) + ")" +
                           (refit ? ", refitted on every row for its epochs (--refit)" : "") +
                           "; pass a larger --epochs to train on");
  }
  training.model->set_parameters(resumed.state.last);
  trainer.resume = &resumed.state;
}

// Checkpoints every trainer.checkpoint_every epochs: the model file so far, with the trainer's
// state and the shape of its epochs' order (`order_window`).
void write_checkpoints(const TrainRun& run, const ModelFile& file, const MetricsRecord& metrics,
                       const std::string& stopping_metric_name, std::int64_t order_window,
                       TrainerOptions& trainer) {
  const TrainTableOptions& options = run.options;
  if (options.checkpoint_path.empty())
    throw InputError("--checkpoint-every needs a checkpoint path");
  trainer.on_checkpoint = [&file, &metrics, &stopping_metric_name, order_window,
                           &options](const TrainerState& state) {
    ModelFile ck = file;
    nlohmann::json metrics_json =
        nlohmann::json::parse(metrics.json(state.history, state.best_epoch, stopping_metric_name));
    metrics_json["order_window"] = order_window;
    ck.metrics_json = metrics_json.dump();
    save_checkpoint(checkpoint_path_for(options.checkpoint_path, state.next_epoch - 1),
                    std::move(ck), state);
  };
}

// The note on streamed training's windows: how many, of how many file rows, and what sized them.
std::string streamed_training_note(const TrainRun& run, const TableReader& reader,
                                   const FileWindows& windows, const EpochWindows& epoch,
                                   const RowsPlan& plan) {
  const TrainTableOptions& options = run.options;
  const TrainReport& report = run.report;
  const std::int64_t window_rows = epoch.window_rows;
  const std::int64_t budget_window = epoch.budget_window;
  const std::int64_t row_bytes = plan.row_bytes;
  const double budget = plan.budget;
  return "streamed training: " + std::to_string(windows.count()) +
         (windows.count() == 1 ? " window" : " windows") + " of up to " +
         std::to_string(std::min(windows.span(), reader.rows())) + " file rows (" +
         (options.window_rows > 0 ? "--window-rows " + std::to_string(window_rows)
          // A budget too small for one read block is raised to one: not "by the budget".
          : budget_window < window_rows
              ? std::to_string(std::max<std::int64_t>(budget_window, 0)) +
                    " rows by the budget, two windows of prepared rows "
                    "within it, raised to one read block;"
              : std::to_string(window_rows) +
                    " rows by the budget, two windows of prepared rows within "
                    "it, at most 1048576;") +
         " rounded up to whole read blocks of " +
         // Chunks larger than --block-rows make the blocks, and so the windows, larger.
         (reader.block_rows() == options.read.block_rows
              ? "--block-rows " + std::to_string(reader.block_rows())
              : std::to_string(reader.block_rows()) + " rows, --block-rows " +
                    std::to_string(options.read.block_rows) +
                    " rounded up to whole chunks of the file") +
         "; prepared training rows take " +
         number_label(
             static_cast<float>(static_cast<double>(report.train_rows) * row_bytes / 1e6)) +
         " MB; budget " + number_label(static_cast<float>(budget / 1e6)) + " MB)";
}

// The refit (--refit): every row, trained from the start for the epochs the validation rows chose,
// kept unless it diverges or fits the validation rows clearly worse than the chosen epoch did.
void refit_on_every_row(const TrainRun& run, std::int64_t held_out, const Targets& targets,
                        const PreparedRows& refit_rows, const LabeledRows& valid,
                        const RowLabels& labels, double valid_metric_scale, Training& training) {
  const TrainTableOptions& options = run.options;
  const DeviceContext& ctx = run.ctx;
  TrainReport& report = run.report;
  const TrainerOptions& trainer = training.trainer;
  std::unique_ptr<Model>& model = training.model;
  const PredictionLink& link = targets.link;
  const std::int32_t classes = targets.classes;
  const bool weighted = targets.weighted;
  const std::vector<double>& balance = targets.balance;
  const std::vector<float>& valid_metric_labels = labels.valid_metric_labels;
  const auto label_of = [&](std::int64_t file_row) { return targets.label_of(file_row); };
  const auto target_of_label = [&](float label) { return targets.target_of_label(label); };
  const auto weight_under = [&](const std::vector<double>& by_class, std::int64_t file_row) {
    return targets.weight_under(by_class, file_row);
  };
  // Every row, trained from the start for the epochs the validation rows chose, at the same batch
  // and the same rates: the first best_epoch epochs of a schedule over trainer.epochs (the rows
  // make more steps an epoch). The run is not validated, checkpointed or logged; it keeps its
  // last epoch, and a loss or weights that stop being finite stop it as they stop any run.
  std::vector<float> refit_targets(static_cast<std::size_t>(refit_rows.block.rows)), refit_weights;
  for (std::int64_t p = 0; p < refit_rows.block.rows; ++p) {
    refit_targets[static_cast<std::size_t>(p)] =
        target_of_label(label_of(refit_rows.source_row[p]));
  }
  if (weighted) {
    // Balanced class weights over the rows the refit trains on, as a run on every row takes them:
    // the training rows' n / (K n_c) differs from every row's by the split's rounding of each
    // class's share, so the refit would not be that run stopped at the chosen epoch.
    std::vector<double> refit_balance;
    if (!balance.empty()) {
      std::vector<double> count(balance.size(), 0.0);
      for (std::int64_t p = 0; p < refit_rows.block.rows; ++p) {
        count[static_cast<std::size_t>(label_of(refit_rows.source_row[p]))] += 1.0;
      }
      refit_balance = balanced_class_weights(count);
    }
    refit_weights.resize(refit_targets.size());
    for (std::int64_t p = 0; p < refit_rows.block.rows; ++p) {
      refit_weights[static_cast<std::size_t>(p)] =
          weight_under(refit_balance, refit_rows.source_row[p]);
    }
  }
  const LabeledRows every{
      refit_rows.set(refit_targets.data(), weighted ? refit_weights.data() : nullptr),
      refit_rows.block.rows, nullptr};
  // The rates of the chosen epochs: a cooldown the first run began after epoch k begins there.
  const TrainerOptions again =
      refit_options(trainer, report.outcome.best_epoch, report.outcome.cooldown_after_epoch);
  const std::int32_t cooldown_epochs = again.stop_after_epoch - report.outcome.best_epoch;
  if (trainer.progress) {
    std::cerr << "refit: training again on all " << refit_rows.block.rows << " rows (the "
              << report.train_rows << " training and " << held_out << " validation rows) for the "
              << report.outcome.best_epoch
              << (report.outcome.best_epoch == 1 ? " epoch" : " epochs")
              << " the validation rows chose";
    if (cooldown_epochs > 0) {
      std::cerr << ", then " << cooldown_epochs << (cooldown_epochs == 1 ? " epoch" : " epochs")
                << " of cooldown (--cooldown"
                << (again.cooldown_epochs < trainer.cooldown_epochs
                        ? ", no more than the chosen epochs)"
                        : ")");
    }
    std::cerr << "\n";
  }
  // A fresh model, the first one released before it is made: on a GPU the first run's copy of
  // the training rows (and its gathered epoch, the dense path's row-major copy) would otherwise
  // stay on the device beside every row's, which --refit yes does not budget for. The fresh
  // model trains to the same bits as the first one would again (RefitOnDevice).
  model.reset();
  model = make_model(ctx, training.shape, training.optimizer, options.trainer.seed);
  model->set_parameters(training.refit_start);
  training.refit_start = ModelParameters{};
  model->bind_training_set(every.set);
  // A refit that diverges (more steps an epoch at the rate the chosen epochs survived) leaves the
  // chosen epoch's model to be saved, said, rather than ending the run.
  TrainOutcome refitted;
  try {
    refitted = train_model(ctx, *model, every, nullptr, link, classes, again);
  } catch (const DivergenceError& e) {
    report.notes.push_back("no refit: training again on all " +
                           std::to_string(refit_rows.block.rows) + " rows diverged (refit " +
                           e.what() + "); the chosen epoch's model is saved");
  }
  // A refit that fits the validation rows, which it trained on, clearly worse than the chosen
  // epoch fits them unseen has gone astray: the epochs chosen on an unsteady run were a lucky
  // draw, which the refit's run need not repeat (plain SGD at a rate it only wanders at: log-loss
  // 9.96 refitted, 3.16 chosen). The chosen epoch's model is saved instead, said. "Clearly": by
  // more than kRefitWorseMargin of the metric's scale, the default --stop-margin, since the
  // chosen epoch is the best of several noisy ones and the refit's is one (a constant rate of
  // 0.05: 0.5553 refitted, 0.5518 chosen, on a scale of 0.69, is such noise).
  if (!refitted.history.empty()) {
    const std::string& metric = report.outcome.metric;
    const EpochRecord& chosen =
        report.outcome.history.at(static_cast<std::size_t>(report.outcome.best_epoch - 1));
    const double chosen_value =
        std::isnan(chosen.selection) ? chosen.valid.values.at(metric) : chosen.selection;
    std::vector<float> predictions(static_cast<std::size_t>(valid.rows * link.outputs));
    predict(*model, link, valid.set.rows, predictions);
    const float* weighing = valid.selection_weights ? valid.selection_weights : valid.set.weights;
    const double refit_value =
        compute_metrics(ctx, link.task, predictions, valid_metric_labels,
                        weighing
                            ? std::span<const float>(weighing, static_cast<std::size_t>(valid.rows))
                            : std::span<const float>(),
                        classes)
            .values.at(metric);
    const double margin =
        std::isfinite(valid_metric_scale) ? kRefitWorseMargin * valid_metric_scale : 0.0;
    const bool astray = higher_is_better(metric) ? refit_value < chosen_value - margin
                                                 : refit_value > chosen_value + margin;
    if (std::isfinite(chosen_value) && (astray || std::isnan(refit_value))) {
      std::ostringstream note;
      note << "no refit: the model trained again on all " << refit_rows.block.rows
           << " rows scored " << metric << " " << refit_value
           << " on the validation rows it trained on, worse than the " << chosen_value
           << " of epoch " << report.outcome.best_epoch << " without them, by more than " << margin
           << " (its training went otherwise); the chosen epoch's model is saved";
      report.notes.push_back(note.str());
    } else {
      report.outcome.best = std::move(refitted.best);
      report.refit_rows = refit_rows.block.rows;
      report.refit_epochs = static_cast<std::int32_t>(refitted.history.size());
      report.refit_train_loss = refitted.history.back().train_loss;
    }
  }
}

// Notes on how the training went: --init-model scoring better than every epoch, an undefined
// validation metric, divergence, a model of no features or one worse than a constant.
void note_training_outcome(const TrainRun& run, double start_value, const LabeledRows& valid,
                           const RowLabels& labels, const Targets& targets,
                           const FittedPreparation& fitted) {
  const TrainTableOptions& options = run.options;
  TrainReport& report = run.report;
  const bool weighted = targets.weighted;
  const std::vector<float>& valid_metric_labels = labels.valid_metric_labels;
  const std::vector<float>& valid_weights = labels.valid_weights;
  const std::vector<double>& balance = targets.balance;
  if (valid.rows > 0) report.best_valid = report.outcome.history.at(report.outcome.best_epoch - 1).valid;
  if (std::isfinite(start_value) && report.outcome.best_epoch > 0) {
    const EpochRecord& kept =
        report.outcome.history.at(static_cast<std::size_t>(report.outcome.best_epoch - 1));
    const std::string& metric = report.outcome.metric;
    const double kept_value =
        std::isnan(kept.selection) ? kept.valid.values.at(metric) : kept.selection;
    if (std::isfinite(kept_value) && metric_improves(metric, start_value, kept_value)) {
      std::ostringstream note;
      note << "--init-model " << options.init_model.string() << " scored " << metric << " "
           << start_value << " on the " << valid.rows
           << " validation rows before training, better than the kept epoch's " << kept_value
           << " (epoch " << report.outcome.best_epoch
           << "): no epoch of retraining improved on it there; compare the two models with "
              "`lathe eval` on held-out rows before replacing it";
      report.notes.push_back(note.str());
    }
  }
  if (valid.rows > 0 && std::isnan(report.best_valid.values.at(report.outcome.metric))) {
    const bool r2 = report.outcome.metric == "r2";
    report.notes.push_back("the validation metric " + report.outcome.metric + " is undefined on the validation rows (" +
                           (r2 ? "r2 needs two or more rows" : "as AUC is when they hold one class") +
                           "): every epoch ran and the last one is kept; choose another --metric, or " +
                           (r2 ? "more validation rows" : "validation rows of every class"));
  }
  if (std::string note = divergence_note(report.outcome.history); !note.empty()) report.notes.push_back(note);
  if (fitted.expanded_features() == 0) {
    // Every column dropped or excluded: what it learns is a constant, whatever the optimization.
    report.notes.push_back("the model has no features (every column but the label is dropped or excluded): it "
                           "predicts a constant, the training rows' " +
                           std::string(options.task == Task::regression ? "mean" : "class shares"));
  } else if (valid.rows > 0) {
    const std::int32_t last_epoch =
        report.outcome.history.empty() ? report.outcome.best_epoch : report.outcome.history.back().epoch;
    const std::string note = worse_than_constant_note(
        report.best_valid, report.outcome.best_epoch, last_epoch, valid_metric_labels,
        weighted ? std::span<const float>(valid_weights) : std::span<const float>(), balance,
        report.refit_epochs > 0);
    if (!note.empty()) report.notes.push_back(note);
  }
}

// The prediction summary the model file stores (save_model waits for it), or a note when there are
// no rows held to predict.
std::future<PredictionSummary> summarize_kept_predictions(const TrainRun& run,
                                                          const ModelFile& file, Training& training,
                                                          const PredictionLink& link,
                                                          const HeldRows& held,
                                                          std::int64_t valid_count, bool stream) {
  const TrainTableOptions& options = run.options;
  const DeviceContext& ctx = run.ctx;
  TrainReport& report = run.report;
  std::unique_ptr<Model>& model = training.model;
  const ModelShape& shape = training.shape;
  const PreparedRows& train_rows = held.train;
  const PreparedRows& valid_rows = held.valid;
  // The kept parameters' predictions on the validation rows (without any, on the training rows when
  // they are held in memory): the reference of `lathe drift` for the model's output. On the CPU
  // made on a thread of their own, with one core, while save_model writes the weights and the
  // profile on this one (HDF5's writes, one thread): one after the other they took 0.1 s (on both
  // cores) and 0.2 s on the highcard training rows. On a GPU made where save_model needs them.
  // The model and the rows are kept until the file is written.
  std::future<PredictionSummary> predictions;
  if (const PreparedRows* rows = valid_count > 0 ? &valid_rows
                                 : !stream       ? &train_rows
                                                 : nullptr;
      rows && rows->block.rows > 0) {
    model->set_parameters(file.parameters);
    const char* source = valid_count > 0 ? "validation" : "training";
    const bool own_thread = !ctx.is_cuda();
    predictions = std::async(own_thread ? std::launch::async : std::launch::deferred,
                             [&model, &link, &shape, rows, source, own_thread, task = options.task] {
      // This thread's parallel regions only: the other core writes the file.
      if (own_thread) omp_set_num_threads(1);
      std::vector<float> scores(static_cast<std::size_t>(rows->block.rows * shape.outputs));
      if (rows->row_major) {
        predict_row_major(*model, link, *rows, shape, scores);
      } else {
        predict(*model, link, rows->view(), scores);
      }
      return summarize_predictions(task, shape.outputs, scores, source);
    });
  } else {
    report.notes.push_back("no validation rows and streamed training rows: the model stores no summary of its predictions");
  }
  return predictions;
}

// The model file's "metrics" attribute at the end: MetricsRecord's, with where the rate began to
// decay and how the parent did on the validation rows.
std::string final_metrics_json(const TrainReport& report, const MetricsRecord& metrics) {
  std::string metrics_json =
      metrics.json(report.outcome.history, report.outcome.best_epoch, report.outcome.metric);
  if (report.outcome.cooldown_after_epoch > 0 || !report.init_model_valid.values.empty()) {
    // Where the rate began to decay (--cooldown), and how the parent did on the validation rows
    // (--init-model): eval's "training" and the report say so.
    nlohmann::json stored = nlohmann::json::parse(metrics_json);
    if (report.outcome.cooldown_after_epoch > 0)
      stored["cooldown_after_epoch"] = report.outcome.cooldown_after_epoch;
    if (!report.init_model_valid.values.empty())
      stored["init_model_valid"] = metrics_to_json(report.init_model_valid);
    metrics_json = stored.dump();
  }
  return metrics_json;
}

}  // namespace

TrainReport train_table(const DeviceContext& ctx, const std::filesystem::path& data,
                        const std::filesystem::path& model_path, const TrainTableOptions& options) {
  TrainReport report;
  StageClock clock(report);
  const TrainRun run{ctx, data, options, report};
  // The options checked, --init-model and a prepared file's tag read.
  const RunSetup setup = settle_run(run);
  // The labels read and mapped, the rows split, the preparation options resolved.
  TrainingTable table;
  read_training_labels(run, setup, table);
  const RowSplit split = split_rows(run, table);
  note_label_classes(run, setup, table.labels);
  const PreparationPlan plan = resolve_preparation_options(run, setup, table);
  clock.done("read");
  // Columns that are not features are not profiled (nor read): a `--drop`ped id column of strings
  // costs nothing, whatever its labels.
  FittedData fit;
  fit.profile = profile_training_rows(run, plan, table, split);
  clock.done("profile");
  // The preparation fitted on the training rows (or kept from --init-model), and what the model
  // fits.
  if (setup.warm) check_init_model(run, setup, table.labels);
  fit_preparation(run, setup, plan, table, split, fit);
  const Targets targets = make_targets(run, setup, table, split);
  const OptimizerConfig optimizer = choose_optimizer(run, fit.fitted);
  // The rows prepared: held in memory (the training and validation rows, and every row again for a
  // refit), or the validation rows only, the training rows streamed while training.
  const RowsPlan rows = plan_rows(run, table, split, fit.fitted, optimizer);
  HeldRows held;
  prepare_held_rows(run, table, split, fit, rows, optimizer, held);
  // Labels and weights per prepared row. A validation file is prepared with the same binding rules.
  if (split.separate_valid) read_valid_file(run, setup, table, fit, held);
  report.valid_rows = held.valid.block.rows;
  std::vector<ColumnInfo> input_schema = model_input_schema(table.reader(), plan, fit.fitted);
  // Rows held in memory are all read: the reader (its labels and code maps) and the binding (a
  // label's slot, a slot's label hash) are closed before the model's parameters are made. Streamed
  // rows are read window by window during training, which keeps both.
  if (!rows.stream) {
    fit.swap_profile_labels(table.reader());  // the profile's for good
    table.open_reader.reset();
    fit.bound = BoundPreparation{};
  }
  clock.done("prepare");

  const RowLabels labels = label_rows(table, split, targets, held);
  // --huber-delta is in the units of the label fitted (t(label) under a --target-transform); the
  // model's loss sees the standardized target.
  const float huber_delta = static_cast<float>(options.huber_delta / targets.link.target_std);
  const ModelShape shape = shape_for(fit.fitted, options.task, options.kind, targets.classes,
                                     options.huber, huber_delta, options.factors);
  Training training(shape, optimizer);
  training.model = make_model(ctx, shape, optimizer, options.trainer.seed);
  if (setup.warm)
    start_from_init_model(run, setup, fit.fitted, targets.link, shape, *training.model);
  const bool weighted = targets.weighted;
  LabeledSets sets{
      {held.train.set(labels.train_targets.data(),
                      weighted ? labels.train_weights.data() : nullptr),
       held.train.block.rows, labels.train_metric_labels.data()},
      {{held.valid.view(), labels.valid_targets.data(),
        weighted ? labels.valid_weights.data() : nullptr},
       held.valid.block.rows,
       labels.valid_metric_labels.data(),
       labels.valid_selection_weights.empty() ? nullptr : labels.valid_selection_weights.data()}};
  const LabeledRows& valid = sets.valid;
  if (!rows.stream) training.model->bind_training_set(sets.train.set);
  // A retraining run measures its starting model (--init-model's weights, as carried) on the
  // validation rows before its first epoch: a monitoring loop wants to know whether retraining on
  // the new rows did better than the parent there, and the run says so when none of its epochs did.
  // A resumed run has trained from it already.
  double start_value = NAN;
  if (setup.warm && valid.rows > 0 && options.resume_path.empty()) {
    start_value = measure_init_model(run, setup, targets, *training.model, valid, labels);
  }
  // The refit starts where this run starts: zero weights (an fm's seeded factors), or
  // --init-model's.
  training.refit = rows.refit;
  if (training.refit) training.refit_start = training.model->parameters();

  ModelFile file = describe_model(run, setup, table.labels, targets.link, shape, fit.fitted,
                                  std::move(input_schema));
  store_training_profile(file, std::move(fit.profile), plan,
                         rows.stream ? &table.reader() : nullptr);
  if (setup.warm) file.parent = parent_record(setup.init, options.init_model, options.refit_prep);
  const MetricsRecord metrics{report, held.valid_file, split.separate_valid, split.valid_fraction,
                              valid.rows};

  training.trainer = choose_trainer_options(run, setup, plan, fit.fitted, file);
  const double valid_metric_scale = validation_metric_scale(run, setup, targets, labels);
  if (options.stop_margin > 0 && std::isfinite(valid_metric_scale)) {
    training.trainer.overfit_margin = options.stop_margin * valid_metric_scale;
  }
  const EpochWindows windows = epoch_windows(run, table, rows);
  report.learning_rate = training.trainer.learning_rate;
  if (!options.resume_path.empty())
    resume_from_checkpoint(run, setup, windows.order_window, file, training);
  if (training.trainer.checkpoint_every > 0) {
    write_checkpoints(run, file, metrics, setup.stopping_metric_name, windows.order_window,
                      training.trainer);
  }
  // The profile is final: its tables (millions of labels as text, their counts deflated) are
  // built for the model file while the epochs run.
  ProfileTablesAhead profile_tables(*file.profile, model_path.string());
  if (rows.stream) {
    const FileWindows file_windows(
        table.reader(), fit.bound, fit.fitted, split.train_mask, windows.window_rows,
        [&](std::int64_t r) { return targets.target_of_label(targets.label_of(r)); },
        [&](std::int64_t r) { return targets.weight_of(r); }, weighted, !ctx.is_cuda());
    report.notes.push_back(
        streamed_training_note(run, table.reader(), file_windows, windows, rows));
    report.outcome =
        train_model_streamed(ctx, *training.model, file_windows, valid.rows > 0 ? &valid : nullptr,
                             targets.link, targets.classes, training.trainer);
  } else {
    report.outcome =
        train_model(ctx, *training.model, sets.train, valid.rows > 0 ? &valid : nullptr,
                    targets.link, targets.classes, training.trainer);
  }
  if (training.refit) {
    refit_on_every_row(run, split.held_out(), targets, held.refit, valid, labels,
                       valid_metric_scale, training);
  }
  note_training_outcome(run, start_value, valid, labels, targets, fit.fitted);
  clock.done("train");

  // Moved, not copied: a table of hashed crosses may hold 2^24 weights and more.
  file.parameters = std::move(report.outcome.best);
  std::future<PredictionSummary> predictions =
      summarize_kept_predictions(run, file, training, targets.link, held, valid.rows, rows.stream);
  file.metrics_json = final_metrics_json(report, metrics);
  file.history_json = epoch_history_json(report.outcome.history);
  save_model(model_path, file, nullptr, &profile_tables, &predictions);
  clock.done("save");
  report.seconds = clock.total_seconds();
  return report;
}

}  // namespace lathe
