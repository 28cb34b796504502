// Models trained by minibatch gradient descent over prepared rows (runtime/preparation.h): linear
// (linear regression, logistic, softmax) and a factorization machine, on the CPU or the GPU. The
// trainer (runtime/trainer.h) only sees this interface: it shuffles, batches, schedules the
// learning rate and stops early; a model does one optimizer step on a batch and predicts. An MLP on
// cuBLAS can implement the same interface later without touching the trainer.
//
// The formulas (scores, losses, gradients, optimizer updates) are written once in
// models/model_formulas.h; the CPU model (models/cpu_model.cpp, the reference) and the CUDA model
// (kernels/train_step.cu) both call them. Both are deterministic: the same inputs give the same
// bits on a device, whatever the CPU thread count; the GPU agrees with the CPU to float rounding.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kernels/epoch_permutation.h"
#include "kernels/prepare_formulas.h"
#include "runtime/device_context.h"

namespace lathe {

enum class Task { regression, binary, multiclass };
const char* task_name(Task task);

enum class ModelKind { linear, fm };

// A regression target's transform (`lathe train --target-transform`): the model fits t(label),
// standardized, and its predictions are inv(target_mean + target_std * score) in the label's units
// (RegressionMap, models/model_formulas.h). log: t = log y, y > 0, inv = exp; log1p:
// t = log(1 + y), y > -1, inv = expm1. Skewed positive targets (prices, counts) fit better on the log scale.
enum class TargetTransform { none, log, log1p };
const char* target_transform_name(TargetTransform transform);  // "none", "log", "log1p"
// The transform named `name`, or nullopt when it is not one.
std::optional<TargetTransform> parse_target_transform(const std::string& name);

// Per-row losses of a score s (outputs scores for softmax) and a label y:
//   squared   0.5 (s - y)^2
//   huber     0.5 (s - y)^2 / delta where |s - y| <= delta (huber_delta), else |s - y| - delta / 2:
//             Huber's loss over delta, so its gradient is bounded by 1 for every delta (a small
//             delta would otherwise leave gradients that --l2 outweighs)
//   logistic  log(1 + exp(s)) - y s, y in [0, 1] (binary labels 0/1)
//   softmax   log(sum_o exp(s_o)) - s_y, y a class index in [0, outputs)
enum class LossKind { squared, huber, logistic, softmax };
const char* loss_name(LossKind loss);  // "squared", "huber", "logistic", "softmax"

enum class OptimizerKind { sgd, momentum, nesterov, adagrad, adam, adamw };
// Its --optimizer name (sgd, momentum, nesterov, adagrad, adam, adamw).
const char* optimizer_name(OptimizerKind kind);

// The update of one weight w by its gradient g (the batch mean, after clipping), at learning rate
// lr (PyTorch's conventions):
//   g += l2 w                               (all but adamw)
//   sgd       w -= lr g
//   momentum  m = momentum m + g;  w -= lr m
//   nesterov  m = momentum m + g;  w -= lr (g + momentum m)
//   adagrad   s += g^2;  w -= lr g / (sqrt(s) + epsilon)
//   adam      m = b1 m + (1 - b1) g;  s = b2 s + (1 - b2) g^2;
//             w -= lr (m / (1 - b1^t)) / (sqrt(s / (1 - b2^t)) + epsilon)   (t =
//             StepSettings::step)
//   adamw     w -= lr l2 w (decoupled decay), then adam's step without l2 in g
//   then, when l1 > 0: w = sign(w) max(0, |w| - a l1) (proximal soft-thresholding; exact zeros),
//   a the step's length per unit of gradient: lr, or for adagrad lr / (sqrt(s) + epsilon) and for
//   adam and adamw lr / (sqrt(s / (1 - b2^t)) + epsilon). So a weight stays at 0 where the loss's
//   gradient is smaller than l1, as for the objective loss + l1 |w|, whatever the optimizer.
// l1 and l2 apply to the weights and the fm factors, never to the bias.
// Sparse features (categorical slots, hashed crosses, per-category slopes) are updated lazily
// unless lazy_sparse is false: a step updates the parameters of those its batch holds and leaves
// the others, and their optimizer state, untouched (no l2 decay, no moment decay): the cost of a
// step follows the batch, not the table (models/model_formulas.h). With lazy_sparse false every
// parameter takes every step, as the formulas above say.
struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::adam;
  float momentum = 0.9f;  // momentum, nesterov
  float beta1 = 0.9f;     // adam, adamw
  float beta2 = 0.999f;
  float epsilon = 1e-8f;   // adam, adamw, adagrad
  float l1 = 0.0f;         // proximal (soft-thresholding after the step)
  float l2 = 0.0f;         // added to the gradient (adamw: decoupled weight decay)
  float clip_norm = 0.0f;  // per-batch gradient clipping by global L2 norm; 0 = off
  bool lazy_sparse = true;  // lazy updates of the sparse features (above)
};

// The shape of a model over the expanded feature space of a FittedPreparation.
// Task and loss go together: regression with squared or huber (outputs 1), binary with logistic
// (outputs 1), multiclass with softmax (outputs = classes >= 2). make_model throws InputError
// otherwise.
struct ModelShape {
  Task task = Task::binary;
  ModelKind kind = ModelKind::linear;
  LossKind loss = LossKind::logistic;
  float huber_delta = 1.0f;
  std::int32_t outputs = 1;  // 1, or K classes for softmax
  ExpandedLayout layout;     // dense features then sparse groups; group_offset owned by the caller
  // Owns layout.group_offset's storage (groups + 1 entries). A copy of a ModelShape still points
  // at the original's table: the models keep their own copy with layout.group_offset pointing at
  // their own group_offsets (filled from layout.group_offset when empty).
  std::vector<std::int64_t> group_offsets;
  std::int64_t features = 0;  // expanded features (0: taken from the layout)
  std::int32_t factors = 8;   // fm only (>= 1); ignored for linear
  // The last products.size() / 2 dense features are products of two earlier ones: dense feature
  // layout.dense_features - products.size() / 2 + c is x[products[2c]] * x[products[2c + 1]] (the
  // numeric crosses, FittedPreparation::numeric_crosses, which come after the numeric features and
  // their indicators). The CPU model's row-major rows (TrainingSet::dense_by_row) hold the
  // features before them only (row_major_dense_features), and it multiplies the products out as it
  // reads a row, the same floats the preparation computes: 28 numeric columns crossed in pairs make
  // 406 features a row, 14x the memory of the 28. Column-major rows hold every feature, and the GPU
  // model reads only those. Empty: no product.
  std::vector<std::int32_t> products;
};

// The dense features a row of TrainingSet::dense_by_row holds: all but the products.
inline std::int64_t row_major_dense_features(const ModelShape& shape) {
  return shape.layout.dense_features - static_cast<std::int64_t>(shape.products.size() / 2);
}

// All learned numbers, in host memory (for model files and comparisons). Layouts, row-major:
// weights [outputs][features], bias [outputs], factors [outputs][features][factors] (fm only;
// empty for linear).
struct ModelParameters {
  std::vector<float> weights;
  std::vector<float> bias;
  std::vector<float> factors;
};

// The optimizer's per-parameter state, in host memory (checkpoints, so that a resumed run continues
// bit for bit). Each array is flat in the parameters' order, [weights | bias | factors] as in
// ModelParameters (parameters().weights.size() + bias.size() + factors.size() entries), or empty,
// which means all zero:
//   first   momentum, nesterov: m; adam, adamw: the first moment m (sgd, adagrad: unused, zero)
//   second  adagrad: the accumulated squares s; adam, adamw: the second moment s (else zero)
// The models return both arrays at full size. The optimizer step count (Adam's bias correction) is
// not here: the models do not keep it, the trainer passes it with every step (StepSettings::step,
// LocalSgdSettings::first_step) and keeps it in its own state (TrainerState::step).
//   last_step  under lazy updates of sparse features (OptimizerConfig::lazy_sparse): the step count
//              (modulo 2^32) of each sparse feature's last update, [features - dense features] in
//              feature order, from which its next update catches up the penalties of the steps it
//              skipped (models/model_formulas.h, update_feature); 0: none yet. Empty for a model
//              without lazy updates, or all zero. The models return it at full size or empty.
struct OptimizerState {
  std::vector<float> first;
  std::vector<float> second;
  std::vector<std::uint32_t> last_step;
};

// The prepared training rows (PreparedBlock layout, all rows), their labels and sample weights.
// Labels: regression target (the trainer standardizes it), binary 0/1, multiclass class index.
// Host memory, owned by the caller; the CPU model reads the labels and weights at every step (and
// keeps a row-major copy of the rows), so it must outlive the binding (the GPU model copies it to
// the device in bind_training_set).
struct TrainingSet {
  PreparedRowsView rows;  // host pointers into the caller's PreparedBlock
  const float* labels = nullptr;
  const float* weights = nullptr;  // nullptr = all 1; else finite and >= 0
  // Optional: the same rows again row-major (dense [row][feature], the features before the
  // products only: row_major_dense_features; slot and value [row][group]),
  // host memory owned by the caller for as long as the binding. The CPU model reads its batches
  // from a row-major copy, which it otherwise makes itself at binding; a loader can make it instead
  // (a streamed window's off the training's path). With the row-major copy given, `rows` may hold
  // just the count (null arrays): the CPU model reads nothing else, and a caller saves the
  // column-major copy. The GPU model reads `rows` only (Error when its arrays are null).
  // value_by_row may be null beside a slot_by_row: every sparse value is then 1 (one-hot,
  // crosses and bins: FittedPreparation::sparse_values_vary), and a row-major copy of a
  // high-cardinality table holds a third less.
  const float* dense_by_row = nullptr;
  const std::int32_t* slot_by_row = nullptr;
  const float* value_by_row = nullptr;
};

// One step's settings, chosen by the trainer.
struct StepSettings {
  float learning_rate = 0.01f;
  std::int64_t step = 1;  // 1-based optimizer step count (Adam bias correction)
  // true: train_step returns the batch's loss (on the GPU: waits for the step and copies 8 bytes
  // back). false: train_step returns NaN at once and the GPU queues the step without waiting; the
  // loss still adds to the running sum that Model::take_loss_sum returns. A trainer that only needs
  // the epoch's loss passes false and calls take_loss_sum once per epoch.
  bool return_loss = true;
  // The training set's mean sample weight (1 without weights): a step divides its weighted gradient
  // sum by its rows times this (step_weight, models/model_formulas.h).
  double mean_weight = 1.0;
};

// One epoch of local SGD (--mode parallel; Zinkevich et al. 2010): the epoch order is split into
// `workers` contiguous shards; each worker (a CPU thread, or a GPU thread block) runs minibatch steps
// of `batch` rows on its own shard with its own copy of the weights and optimizer state, and the
// copies are averaged every `sync_every` local steps and at the end of the epoch.
struct LocalSgdSettings {
  std::int64_t batch = 256;
  std::int64_t sync_every = 8;
  float learning_rate = 0.01f;
  std::int64_t first_step = 1;  // optimizer step count of the first local step (Adam bias correction)
  std::int32_t workers = 0;     // 0 = as many as the device runs well (threads; SMs x blocks)
  double mean_weight = 1.0;     // as StepSettings::mean_weight
};

// One step of a sequence given to Model::train_steps.
struct PlannedStep {
  std::int64_t first = 0;  // the rows order[first .. first + count)
  std::int64_t count = 0;
  StepSettings settings;   // return_loss is ignored: train_steps never waits for a step
};

// Whether every weight, bias and factor is finite.
bool all_finite(const ModelParameters& p);

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelShape& shape() const = 0;
  // Binds the training set (uploaded to the device once, on the GPU backend). Throws InputError for
  // a label that is not finite (or, multiclass, not a class index), a weight that is negative or
  // not finite, or a sparse slot outside its group.
  virtual void bind_training_set(const TrainingSet& data) = 0;
  // Returns once nothing the model runs in the background reads the bound rows, which may then be
  // freed or overwritten before another binding. The CPU model plans an exact step's batch one
  // step ahead on a second thread: between two steps of an order (before the order's last step
  // has returned) it may still be reading them. Binding other rows, a new epoch order and the
  // model's end wait too. Nothing to wait for on the GPU, which copied the rows.
  virtual void finish_background_work() {}
  // The epoch's row order (a permutation of the training rows, or a subset); uploaded once per
  // epoch on the GPU. Throws Error for a row outside the bound training set.
  virtual void set_epoch_order(const std::vector<std::int64_t>& order) = 0;
  // The epoch's order as the seeded permutation of every bound training row that `permutation`
  // describes (kernels/epoch_permutation.h; permutation.rows must be the bound row count, else
  // Error): the same as set_epoch_order with epoch_row(permutation, i) at position i, computed
  // where the rows are (on the GPU: on the device, so no index array crosses the bus).
  virtual void set_epoch_permutation(const EpochPermutation& permutation);
  // A hint that the next set_epoch_permutation will be `next`: a model may compute that order
  // ahead, while the current epoch's steps run (the CPU model does, on a thread of its own; the
  // GPU model needs no host order). The orders, and so the bits, are the same either way.
  virtual void prepare_epoch_permutation(const EpochPermutation& next) { (void)next; }
  // One optimizer step on the rows order[first .. first + count) of the bound training set:
  // forward, loss gradient averaged over the batch (divided by the batch's total sample weight; a
  // batch of total weight 0 gives a zero gradient), optional clipping, update. Returns the batch's
  // summed (weighted) loss at the weights before the update (NaN when !settings.return_loss).
  // count == 0 does nothing and returns 0. Deterministic for a given device: same inputs, same
  // bits.
  virtual double train_step(std::int64_t first, std::int64_t count,
                            const StepSettings& settings) = 0;
  // The steps in order, each as train_step with return_loss false: the same bits as calling it
  // once per step. The GPU model replays them through a CUDA graph (fewer launches, no gaps).
  virtual void train_steps(std::span<const PlannedStep> steps);
  // One epoch of local SGD over the rows set by set_epoch_order (see LocalSgdSettings); afterwards
  // parameters() holds the averaged weights. Adds the epoch's summed (weighted) losses to the
  // running sum that take_loss_sum returns. Deterministic for a given device and worker count.
  virtual void train_epoch_local_sgd(const LocalSgdSettings& settings) = 0;
  // The summed (weighted) batch losses of all steps since the last call (or since the model was
  // made), then starts the sum again from 0. On the GPU: waits for the queued steps.
  virtual double take_loss_sum() = 0;
  // Under lazy updates of sparse features with plain SGD and l1 or l2 (catches_up_before_reading,
  // models/model_formulas.h): applies to every sparse feature the penalties of the steps since its
  // last update, up to and including the model's last step, at that step's learning rate
  // (catch_up_feature), so that the parameters are those that dense updates give (the same but for
  // float rounding at a constant learning rate). Otherwise does nothing. The trainer calls it after
  // each epoch's steps, before it validates, checkpoints or keeps the weights.
  virtual void catch_up_penalties() {}
  // Raw scores (before the link function) of `rows` (host memory, PreparedBlock layout),
  // out[r * outputs + o] (host memory). Synchronous. A linear classifier sums them in float, as
  // training does; a factorization machine and a regression model in double, rounded to float once
  // (models/model_formulas.h: an fm's pairwise term cancels where a value is large).
  virtual void predict_scores(const PreparedRowsView& rows, float* out) = 0;
  // A regression model's predictions in the label's units, out[r] = target_mean + target_std *
  // score: the score summed in double, the standardization undone in double and the result
  // rounded to float once, so a prediction near zero (where the two terms cancel) keeps float's
  // relative precision, which a float score through scores_to_predictions (runtime/trainer.h) does
  // not. Synchronous; Error for a classification model.
  // With a target transform, out[r] = inv(target_mean + target_std * score), the inverse taken in
  // double before the one rounding (an overflowing exp gives +inf).
  virtual void predict_regression(const PreparedRowsView& rows, double target_mean,
                                  double target_std, TargetTransform transform, float* out) = 0;
  // Without a target transform.
  void predict_regression(const PreparedRowsView& rows, double target_mean, double target_std,
                          float* out) {
    predict_regression(rows, target_mean, target_std, TargetTransform::none, out);
  }
  virtual ModelParameters parameters() const = 0;
  // Whether every parameter is finite; without a copy where the model can look in place (the
  // trainer asks each epoch, and keeps a copy of the parameters only when they improve).
  virtual bool parameters_finite() const { return all_finite(parameters()); }
  // Replaces the parameters (sizes as parameters() gives them, else Error) and resets the
  // optimizer's state (moments, accumulated squares) to zero.
  virtual void set_parameters(const ModelParameters& parameters) = 0;
  // The optimizer's state after the steps so far (after local SGD: the workers' averaged state).
  virtual OptimizerState optimizer_state() const = 0;
  // Replaces the optimizer's state (each array the parameters' total size, or empty for all zero;
  // else Error); the parameters are left as they are. Call it after set_parameters, which resets
  // the state.
  virtual void set_optimizer_state(const OptimizerState& state) = 0;
};

// A linear or FM model on ctx's device with zero (linear) or small seeded random (fm) weights: the
// weights and bias start at 0, fm factors at N(0, 0.01^2) from a SplitMix64 stream of `seed` (the
// same numbers on every machine).
std::unique_ptr<Model> make_model(const DeviceContext& ctx, const ModelShape& shape,
                                  const OptimizerConfig& optimizer, std::uint64_t seed);

// A model that only predicts, with `parameters` (sizes as Model::parameters gives them, else Error):
// on the CPU it holds the parameters alone, without the optimizer's moments, a step's gradient and
// the lazy updates' index of every feature (three times the parameters under Adam), and
// bind_training_set throws Error; on the GPU, a model under plain SGD, which keeps no moments.
// Predicts exactly as a model of make_model given the same parameters.
std::unique_ptr<Model> make_prediction_model(const DeviceContext& ctx, const ModelShape& shape,
                                             const ModelParameters& parameters);

}  // namespace lathe
