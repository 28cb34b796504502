// Models trained by minibatch gradient descent over prepared rows (runtime/preparation.h): linear
// (linear regression, logistic, softmax) and a factorization machine, on the CPU or the GPU. The
// trainer (runtime/trainer.h) only sees this interface: it shuffles, batches, schedules the
// learning rate and stops early; a model does one optimizer step on a batch and predicts. An MLP on
// cuBLAS can implement the same interface later without touching the trainer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/prepare_formulas.h"
#include "runtime/device_context.h"

namespace lathe {

enum class Task { regression, binary, multiclass };
const char* task_name(Task task);

enum class ModelKind { linear, fm };

enum class LossKind { squared, huber, logistic, softmax };

enum class OptimizerKind { sgd, momentum, nesterov, adagrad, adam, adamw };

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::adam;
  float momentum = 0.9f;   // momentum, nesterov
  float beta1 = 0.9f;      // adam, adamw
  float beta2 = 0.999f;
  float epsilon = 1e-8f;   // adam, adamw, adagrad
  float l1 = 0.0f;         // proximal (soft-thresholding after the step)
  float l2 = 0.0f;         // added to the gradient (adamw: decoupled weight decay)
  float clip_norm = 0.0f;  // per-batch gradient clipping by global L2 norm; 0 = off
};

// The shape of a model over the expanded feature space of a FittedPreparation.
struct ModelShape {
  Task task = Task::binary;
  ModelKind kind = ModelKind::linear;
  LossKind loss = LossKind::logistic;
  float huber_delta = 1.0f;
  std::int32_t outputs = 1;  // 1, or K classes for softmax
  ExpandedLayout layout;     // dense features then sparse groups; group_offset owned by the caller
  std::vector<std::int64_t> group_offsets;  // owns layout.group_offset's storage
  std::int64_t features = 0;  // expanded features
  std::int32_t factors = 8;   // fm only
};

// All learned numbers, in host memory (for model files and comparisons). Layouts, row-major:
// weights [outputs][features], bias [outputs], factors [outputs][features][factors] (fm only).
struct ModelParameters {
  std::vector<float> weights;
  std::vector<float> bias;
  std::vector<float> factors;
};

// The prepared training rows (PreparedBlock layout, all rows), their labels and sample weights.
// Labels: regression target (the trainer standardizes it), binary 0/1, multiclass class index.
struct TrainingSet {
  PreparedRowsView rows;        // host pointers into the caller's PreparedBlock
  const float* labels = nullptr;
  const float* weights = nullptr;  // nullptr = all 1
};

// One step's settings, chosen by the trainer.
struct StepSettings {
  float learning_rate = 0.01f;
  std::int64_t step = 1;  // 1-based optimizer step count (Adam bias correction)
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelShape& shape() const = 0;
  // Binds the training set (uploaded to the device once, on the GPU backend).
  virtual void bind_training_set(const TrainingSet& data) = 0;
  // The epoch's row order (a permutation of the training rows, or a subset); uploaded once per
  // epoch on the GPU.
  virtual void set_epoch_order(const std::vector<std::int64_t>& order) = 0;
  // One optimizer step on the rows order[first .. first + count) of the bound training set:
  // forward, loss gradient averaged over the batch (sample-weighted), optional clipping, update.
  // Returns the batch's summed (weighted) loss. Deterministic for a given device: same inputs, same
  // bits.
  virtual double train_step(std::int64_t first, std::int64_t count, const StepSettings& settings) = 0;
  // Raw scores (before the link function) of `rows`, out[r * outputs + o].
  virtual void predict_scores(const PreparedRowsView& rows, float* out) = 0;
  virtual ModelParameters parameters() const = 0;
  virtual void set_parameters(const ModelParameters& parameters) = 0;
};

// A linear or FM model on ctx's device with zero (linear) or small seeded random (fm) weights.
std::unique_ptr<Model> make_model(const DeviceContext& ctx, const ModelShape& shape,
                                  const OptimizerConfig& optimizer, std::uint64_t seed);

}  // namespace lathe
