#include "models/model.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kernels/prepare_formulas.h"
#include "models/cpu_model.h"
#include "models/cuda_model.h"
#include "models/model_checks.h"
#include "models/model_formulas.h"
#include "runtime/error.h"
#include "runtime/team_threshold.h"

namespace lathe {

const char* task_name(Task task) {
  switch (task) {
    case Task::regression:
      return "regression";
    case Task::binary:
      return "binary";
    default:
      return "multiclass";
  }
}

const char* optimizer_name(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::sgd:
      return "sgd";
    case OptimizerKind::momentum:
      return "momentum";
    case OptimizerKind::nesterov:
      return "nesterov";
    case OptimizerKind::adagrad:
      return "adagrad";
    case OptimizerKind::adamw:
      return "adamw";
    default:
      return "adam";
  }
}

const char* loss_name(LossKind loss) {
  switch (loss) {
    case LossKind::squared:
      return "squared";
    case LossKind::huber:
      return "huber";
    case LossKind::logistic:
      return "logistic";
    default:
      return "softmax";
  }
}

const char* target_transform_name(TargetTransform transform) {
  switch (transform) {
    case TargetTransform::log:
      return "log";
    case TargetTransform::log1p:
      return "log1p";
    default:
      return "none";
  }
}

std::optional<TargetTransform> parse_target_transform(const std::string& name) {
  for (TargetTransform t : {TargetTransform::none, TargetTransform::log, TargetTransform::log1p}) {
    if (name == target_transform_name(t)) return t;
  }
  return std::nullopt;
}

namespace {

void check_optimizer(const OptimizerConfig& c) {
  const auto in_unit = [](float x) { return x >= 0.0f && x < 1.0f; };
  if (!in_unit(c.momentum)) throw InputError("optimizer: momentum must be in [0, 1)");
  if (!in_unit(c.beta1) || !in_unit(c.beta2))
    throw InputError("optimizer: beta1 and beta2 must be in [0, 1)");
  if (!(c.epsilon > 0.0f) || !std::isfinite(c.epsilon))
    throw InputError("optimizer: epsilon must be > 0");
  if (!(c.l1 >= 0.0f) || !std::isfinite(c.l1)) throw InputError("optimizer: l1 must be >= 0");
  if (!(c.l2 >= 0.0f) || !std::isfinite(c.l2)) throw InputError("optimizer: l2 must be >= 0");
  if (!(c.clip_norm >= 0.0f) || !std::isfinite(c.clip_norm))
    throw InputError("optimizer: clip_norm must be >= 0");
}

// SplitMix64 (Steele, Lea, Flood 2014): a seeded stream with the same numbers on every machine. Its
// n-th number (from 1) is mix64(seed + n * kGamma), so a stream can start at any place (at(n)).
class SplitMix64 {
 public:
  static constexpr std::uint64_t kGamma = 0x9e3779b97f4a7c15ULL;
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  // The stream of `seed` from its number n + 1 on (n numbers skipped).
  static SplitMix64 at(std::uint64_t seed, std::uint64_t n) { return SplitMix64(seed + n * kGamma); }
  std::uint64_t next() { return mix64(state_ += kGamma); }
  // Uniform in (0, 1): 53 random bits, never 0.
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }

 private:
  std::uint64_t state_;
};

ModelParameters initial_parameters(const ModelShape& shape, std::uint64_t seed) {
  const ParameterLayout p = parameter_layout(shape);
  ModelParameters out;
  out.weights.assign(static_cast<std::size_t>(p.bias_offset()), 0.0f);
  out.bias.assign(static_cast<std::size_t>(p.outputs), 0.0f);
  out.factors.resize(static_cast<std::size_t>(p.size() - p.factor_offset()));
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  // Box-Muller in double, both numbers of each pair used: pair k takes the stream's numbers 2k + 1
  // and 2k + 2, so the pairs are drawn on every core with the bits of one stream in order (an
  // fm's tens of millions of factors took a second on one core).
  const auto n = static_cast<std::int64_t>(out.factors.size());
  const std::int64_t pairs = (n + 1) / 2;
#pragma omp parallel for schedule(static) if (pairs >= kTeamMinItems)
  for (std::int64_t k = 0; k < pairs; ++k) {
    SplitMix64 rng = SplitMix64::at(seed, 2 * static_cast<std::uint64_t>(k));
    const double radius = 0.01 * std::sqrt(-2.0 * std::log(rng.uniform()));
    const double angle = kTwoPi * rng.uniform();
    const std::int64_t i = 2 * k;
    out.factors[static_cast<std::size_t>(i)] = static_cast<float>(radius * std::cos(angle));
    if (i + 1 < n) out.factors[static_cast<std::size_t>(i + 1)] = static_cast<float>(radius * std::sin(angle));
  }
  return out;
}

// The first row of `rows` whose sparse slot lies outside its group, or rows.rows; in parallel,
// the smallest such row whatever the thread count.
std::int64_t first_bad_slot(const ModelShape& shape, const PreparedRowsView& rows,
                            std::int32_t& group) {
  // One pass over every group's slots (one region, not one a group: a table of 200 categorical
  // columns woke the team 200 times a check), keyed row first so that the smallest row wins, then
  // the first group.
  const std::int64_t groups = shape.layout.groups, n = rows.rows;
  const std::int64_t total = groups * n;
  std::int64_t first_key = total;
  // Runs of a group's rows (no division per slot: a 64-bit one cost more than the check).
  constexpr std::int64_t kRun = 4096;
  const std::int64_t runs = (n + kRun - 1) / kRun;
#pragma omp parallel for collapse(2) reduction(min : first_key) schedule(static) if (total >= kTeamMinItems)
  for (std::int64_t g = 0; g < groups; ++g) {
    for (std::int64_t run = 0; run < runs; ++run) {
      const std::int64_t width = shape.group_offsets[g + 1] - shape.group_offsets[g];
      const std::int32_t* slot = rows.slot + g * n;
      const std::int64_t end = std::min(n, (run + 1) * kRun);
      for (std::int64_t r = run * kRun; r < end; ++r) {
        if (slot[r] < 0 || slot[r] >= width) {
          first_key = std::min(first_key, r * groups + g);
          break;  // the run's later rows have larger keys
        }
      }
    }
  }
  if (first_key == total) {
    group = -1;
    return n;
  }
  group = static_cast<std::int32_t>(first_key % groups);
  return first_key / groups;
}

}  // namespace

ModelShape checked_model_shape(const ModelShape& shape) {
  ModelShape s = shape;
  const bool regression = s.task == Task::regression;
  const bool loss_fits = regression ? (s.loss == LossKind::squared || s.loss == LossKind::huber)
                         : s.task == Task::binary ? s.loss == LossKind::logistic
                                                  : s.loss == LossKind::softmax;
  if (!loss_fits) {
    throw InputError(std::string("model: a ") + task_name(s.task) + " task cannot train with the " +
                     loss_name(s.loss) + " loss");
  }
  if (s.task == Task::multiclass ? s.outputs < 2 : s.outputs != 1) {
    throw InputError(std::string("model: a ") + task_name(s.task) + " task cannot have " +
                     std::to_string(s.outputs) + " outputs");
  }
  if (s.loss == LossKind::huber && !(s.huber_delta > 0.0f && std::isfinite(s.huber_delta))) {
    throw InputError("model: the huber delta must be > 0");
  }
  if (s.kind == ModelKind::fm && s.factors < 1)
    throw InputError("model: an fm needs at least 1 factor");
  if (s.layout.dense_features < 0 || s.layout.groups < 0)
    throw InputError("model: negative layout");
  if (s.group_offsets.empty()) {
    if (s.layout.group_offset) {
      s.group_offsets.assign(s.layout.group_offset, s.layout.group_offset + s.layout.groups + 1);
    } else if (s.layout.groups == 0) {
      s.group_offsets = {s.layout.dense_features};
    } else {
      throw InputError("model: the layout has sparse groups but no group offsets");
    }
  }
  if (s.group_offsets.size() != static_cast<std::size_t>(s.layout.groups) + 1 ||
      s.group_offsets[0] != s.layout.dense_features) {
    throw InputError("model: the group offsets do not match the layout");
  }
  for (std::int32_t g = 0; g < s.layout.groups; ++g) {
    if (s.group_offsets[g + 1] <= s.group_offsets[g]) {
      throw InputError("model: sparse group " + std::to_string(g) + " has no slots");
    }
  }
  s.layout.group_offset = s.group_offsets.data();
  if (s.features == 0) s.features = s.group_offsets.back();
  if (s.features != s.group_offsets.back()) {
    throw InputError("model: features (" + std::to_string(s.features) +
                     ") is not the expanded width of the layout (" +
                     std::to_string(s.group_offsets.back()) + ")");
  }
  if (s.kind != ModelKind::fm) s.factors = 0;
  const ParameterLayout p = parameter_layout(s);
  if (static_cast<double>(p.features) * p.outputs * (p.factors + 1) > 4e9) {
    throw InputError("model: more than 4e9 parameters");
  }
  return s;
}

void check_rows(const ModelShape& shape, const PreparedRowsView& rows, const char* what) {
  if (rows.rows < 0) throw InputError(std::string(what) + ": negative row count");
  if (rows.rows == 0) return;
  if ((shape.layout.dense_features > 0 && !rows.dense) ||
      (shape.layout.groups > 0 && (!rows.slot || !rows.value))) {
    throw InputError(std::string(what) + ": missing feature arrays");
  }
  std::int32_t g = -1;
  const std::int64_t bad = first_bad_slot(shape, rows, g);
  if (bad < rows.rows) {
    throw InputError(std::string(what) + ": row " + std::to_string(bad) + " has slot " +
                     std::to_string(rows.slot[static_cast<std::int64_t>(g) * rows.rows + bad]) +
                     " outside sparse group " + std::to_string(g) + " (" +
                     std::to_string(shape.group_offsets[g + 1] - shape.group_offsets[g]) +
                     " slots)");
  }
}

void check_regression(const ModelShape& shape, const char* what) {
  if (shape.task != Task::regression) {
    throw Error(std::string(what) + ": a " + task_name(shape.task) +
                " model has no regression predictions");
  }
}

bool has_rows_by_row(const ModelShape& shape, const TrainingSet& data) {
  return (data.dense_by_row || shape.layout.dense_features == 0) &&
         (data.slot_by_row || shape.layout.groups == 0);
}

void check_training_set(const ModelShape& shape, const TrainingSet& data) {
  const std::int64_t n = data.rows.rows;
  const bool columns = (data.rows.dense || shape.layout.dense_features == 0) &&
                       ((data.rows.slot && data.rows.value) || shape.layout.groups == 0);
  if (columns || !has_rows_by_row(shape, data)) {
    check_rows(shape, data.rows, "training set");
  } else if (n > 0) {
    // Only the row-major copy: its slots, row by row.
    const std::int64_t groups = shape.layout.groups;
    std::int64_t bad = n * groups;
    // Row by row (no division per slot: a 64-bit one cost more than the check).
#pragma omp parallel for reduction(min : bad) schedule(static) if (n * groups >= kTeamMinItems)
    for (std::int64_t r = 0; r < n; ++r) {
      const std::int32_t* slot = data.slot_by_row + r * groups;
      for (std::int64_t g = 0; g < groups; ++g) {
        if (slot[g] < 0 || slot[g] >= shape.group_offsets[g + 1] - shape.group_offsets[g]) {
          bad = std::min(bad, r * groups + g);
          break;
        }
      }
    }
    if (bad < n * groups) {
      const std::int64_t g = bad % groups;
      throw InputError("training set: row " + std::to_string(bad / groups) + " has slot " +
                       std::to_string(data.slot_by_row[bad]) + " outside sparse group " + std::to_string(g) +
                       " (" + std::to_string(shape.group_offsets[g + 1] - shape.group_offsets[g]) + " slots)");
    }
  }
  if (n > 0 && !data.labels) throw InputError("training set: no labels");
  std::int64_t bad_label = n, bad_weight = n;
  const float classes = static_cast<float>(shape.outputs);
#pragma omp parallel for reduction(min : bad_label, bad_weight) schedule(static) if (n >= kTeamMinItems)
  for (std::int64_t r = 0; r < n; ++r) {
    const float y = data.labels[r];
    bool ok = std::isfinite(y);
    if (shape.task == Task::binary) ok = ok && y >= 0.0f && y <= 1.0f;
    if (shape.task == Task::multiclass) ok = ok && y >= 0.0f && y < classes && y == std::floor(y);
    if (!ok) bad_label = std::min(bad_label, r);
    if (data.weights && !(std::isfinite(data.weights[r]) && data.weights[r] >= 0.0f)) {
      bad_weight = std::min(bad_weight, r);
    }
  }
  if (bad_label < n) {
    const std::string want = shape.task == Task::binary ? " (a binary label must be in [0, 1])"
                             : shape.task == Task::multiclass
                                 ? " (a class index in [0, " + std::to_string(shape.outputs) + "))"
                                 : " (not finite)";
    throw InputError("training set: row " + std::to_string(bad_label) + " has label " +
                     std::to_string(data.labels[bad_label]) + want);
  }
  if (bad_weight < n) {
    throw InputError("training set: row " + std::to_string(bad_weight) + " has weight " +
                     std::to_string(data.weights[bad_weight]) +
                     " (weights must be finite and >= 0)");
  }
}

void check_order(const std::vector<std::int64_t>& order, std::int64_t rows) {
  const std::int64_t n = static_cast<std::int64_t>(order.size());
  std::int64_t bad = n;
#pragma omp parallel for reduction(min : bad) schedule(static) if (n >= kTeamMinItems)
  for (std::int64_t i = 0; i < n; ++i) {
    if (order[i] < 0 || order[i] >= rows) bad = std::min(bad, i);
  }
  if (bad < n) {
    throw Error("set_epoch_order: entry " + std::to_string(bad) + " is row " +
                std::to_string(order[bad]) + ", outside the " + std::to_string(rows) +
                " rows of the training set");
  }
}

void check_permutation(const EpochPermutation& permutation, std::int64_t rows) {
  if (permutation.rows != rows) {
    throw Error("set_epoch_permutation: a permutation of " + std::to_string(permutation.rows) +
                " rows for a training set of " + std::to_string(rows));
  }
}

void check_step(std::int64_t first, std::int64_t count, std::int64_t order_size,
                const StepSettings& settings) {
  if (first < 0 || count < 0 || first > order_size || count > order_size - first) {
    throw Error("train_step: rows [" + std::to_string(first) + ", " +
                std::to_string(first + count) + ") are outside the epoch order of " +
                std::to_string(order_size) + " rows");
  }
  if (settings.step < 1) throw Error("train_step: the step count starts at 1");
  if (!std::isfinite(settings.learning_rate))
    throw Error("train_step: the learning rate is not finite");
}

void check_local_sgd(const LocalSgdSettings& settings) {
  if (settings.batch < 1) throw Error("train_epoch_local_sgd: the batch must be at least 1 row");
  if (settings.sync_every < 1) throw Error("train_epoch_local_sgd: sync_every must be at least 1");
  if (settings.workers < 0) throw Error("train_epoch_local_sgd: negative worker count");
  if (settings.first_step < 1) throw Error("train_epoch_local_sgd: the step count starts at 1");
  if (!std::isfinite(settings.learning_rate))
    throw Error("train_epoch_local_sgd: the learning rate is not finite");
}

void check_parameters(const ModelShape& shape, const ModelParameters& parameters) {
  const ParameterLayout p = parameter_layout(shape);
  if (parameters.weights.size() != static_cast<std::size_t>(p.bias_offset()) ||
      parameters.bias.size() != static_cast<std::size_t>(p.outputs) ||
      parameters.factors.size() != static_cast<std::size_t>(p.size() - p.factor_offset())) {
    throw Error("set_parameters: expected " + std::to_string(p.bias_offset()) + " weights, " +
                std::to_string(p.outputs) + " biases and " +
                std::to_string(p.size() - p.factor_offset()) + " factors; got " +
                std::to_string(parameters.weights.size()) + ", " +
                std::to_string(parameters.bias.size()) + " and " +
                std::to_string(parameters.factors.size()));
  }
}

void check_optimizer_state(const ModelShape& shape, const OptimizerState& state) {
  const auto size = static_cast<std::size_t>(parameter_layout(shape).size());
  for (const std::vector<float>* v : {&state.first, &state.second}) {
    if (!v->empty() && v->size() != size) {
      throw Error("set_optimizer_state: expected " + std::to_string(size) +
                  " values (or none) per array; got " + std::to_string(state.first.size()) +
                  " and " + std::to_string(state.second.size()));
    }
  }
  const std::int64_t sparse = sparse_feature_count(shape);
  if (!state.last_step.empty() && static_cast<std::int64_t>(state.last_step.size()) != sparse) {
    throw Error("set_optimizer_state: expected " + std::to_string(sparse) +
                " last steps of sparse features (or none); got " + std::to_string(state.last_step.size()));
  }
}

void Model::set_epoch_permutation(const EpochPermutation& permutation) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(permutation.rows));
  const std::int64_t n = permutation.rows;
#pragma omp parallel for schedule(static) if (n >= kTeamMinItems)
  for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = epoch_row(permutation, i);
  set_epoch_order(order);
}

void Model::train_steps(std::span<const PlannedStep> steps) {
  for (const PlannedStep& s : steps) {
    StepSettings settings = s.settings;
    settings.return_loss = false;
    train_step(s.first, s.count, settings);
  }
}

std::unique_ptr<Model> make_model(const DeviceContext& ctx, const ModelShape& shape,
                                  const OptimizerConfig& optimizer, std::uint64_t seed) {
  const ModelShape checked = checked_model_shape(shape);
  check_optimizer(optimizer);
  std::unique_ptr<Model> model =
      ctx.is_cuda() ? make_cuda_model(ctx, checked, optimizer) : make_cpu_model(checked, optimizer);
  if (checked.kind == ModelKind::fm) model->set_parameters(initial_parameters(checked, seed));
  return model;
}

std::unique_ptr<Model> make_prediction_model(const DeviceContext& ctx, const ModelShape& shape,
                                             const ModelParameters& parameters) {
  const ModelShape checked = checked_model_shape(shape);
  OptimizerConfig none;
  none.kind = OptimizerKind::sgd;  // no moments (the CUDA model's only say in it)
  std::unique_ptr<Model> model =
      ctx.is_cuda() ? make_cuda_model(ctx, checked, none) : make_cpu_model(checked, none, true);
  model->set_parameters(parameters);  // no seeded fm factors first: these replace them
  return model;
}

bool all_finite(const ModelParameters& p) {
  const auto finite = [](const std::vector<float>& v) {
    return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
  };
  return finite(p.weights) && finite(p.bias) && finite(p.factors);
}

}  // namespace lathe
