// Optimizer steps of the models (models/model.h) at a batch of 1024 rows of a bound training set:
// linear and FM models over 16 or 64 dense features (and 4 one-hot groups), Adam, on the CPU and
// on the GPU (BM_GPU_..., skipped with a message where no GPU answers). Each benchmark iteration
// runs kSteps steps without waiting for their losses (StepSettings::return_loss = false, as a
// trainer that reads the loss once per epoch) and then take_loss_sum, which waits for them; the
// GPU's WaitEachStep variant waits for every step's loss (one device-to-host round trip a step).
// Counters: rows/s, and s/step (seconds per optimizer step).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <vector>

#include "models/model.h"
#include "runtime/device_context.h"

namespace lathe::bench {
namespace {

constexpr std::int64_t kBatch = 1024;
constexpr int kSteps = 16;
constexpr std::int64_t kRows = 1 << 16;
constexpr std::int64_t kGroupWidth = 1000;

// A seeded training set: dense N(0, 1) features, one-hot groups of kGroupWidth slots, labels 0/1
// from a linear rule with noise.
struct TrainData {
  std::int64_t dense = 0;
  std::int32_t groups = 0;
  std::vector<float> x, value, label;
  std::vector<std::int32_t> slot;
  std::vector<std::int64_t> offsets;

  TrainingSet set() const {
    TrainingSet t;
    t.rows = PreparedRowsView{x.data(), slot.data(), value.data(), kRows};
    t.labels = label.data();
    return t;
  }
};

TrainData make_data(std::int64_t dense, std::int32_t groups) {
  TrainData d;
  d.dense = dense;
  d.groups = groups;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<std::int32_t> pick(0, static_cast<std::int32_t>(kGroupWidth - 1));
  d.x.resize(static_cast<std::size_t>(dense * kRows));
  for (auto& v : d.x) v = normal(rng);
  d.slot.resize(static_cast<std::size_t>(groups * kRows));
  for (auto& s : d.slot) s = pick(rng);
  d.value.assign(d.slot.size(), 1.0f);
  d.label.resize(static_cast<std::size_t>(kRows));
  for (std::int64_t r = 0; r < kRows; ++r) {
    const float s = (dense > 0 ? d.x[r] : 0.0f) + (dense > 1 ? 0.5f * d.x[kRows + r] : 0.0f);
    d.label[r] = s + normal(rng) > 0.0f ? 1.0f : 0.0f;
  }
  d.offsets = {dense};
  for (std::int32_t g = 0; g < groups; ++g) d.offsets.push_back(d.offsets.back() + kGroupWidth);
  return d;
}

std::optional<DeviceContext> device_or_skip(benchmark::State& state, const char* device) {
  try {
    return DeviceContext::select(device);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return std::nullopt;
  }
}

// Arguments: dense features, one-hot groups, 1 for an FM (8 factors) else linear.
void run_train_steps(benchmark::State& state, const char* device, bool wait_each_step) {
  const auto ctx = device_or_skip(state, device);
  if (!ctx) return;
  const TrainData d = make_data(state.range(0), static_cast<std::int32_t>(state.range(1)));
  ModelShape shape;
  shape.task = Task::binary;
  shape.loss = LossKind::logistic;
  shape.kind = state.range(2) ? ModelKind::fm : ModelKind::linear;
  shape.factors = 8;
  shape.group_offsets = d.offsets;
  shape.layout.dense_features = d.dense;
  shape.layout.groups = d.groups;
  OptimizerConfig optimizer;
  optimizer.kind = OptimizerKind::adam;
  std::unique_ptr<Model> model = make_model(*ctx, shape, optimizer, 1);
  model->bind_training_set(d.set());
  std::vector<std::int64_t> order(static_cast<std::size_t>(kRows));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(2));
  model->set_epoch_order(order);

  std::int64_t first = 0, step = 0;
  const auto run = [&] {
    for (int i = 0; i < kSteps; ++i) {
      StepSettings settings;
      settings.learning_rate = 0.01f;
      settings.step = ++step;
      settings.return_loss = wait_each_step;
      benchmark::DoNotOptimize(model->train_step(first, kBatch, settings));
      first = first + 2 * kBatch > kRows ? 0 : first + kBatch;
    }
    benchmark::DoNotOptimize(model->take_loss_sum());
  };
  run();  // warm-up: scratch buffers, caches
  for (auto _ : state) run();

  const double steps = static_cast<double>(kSteps) * static_cast<double>(state.iterations());
  state.counters["rows/s"] = benchmark::Counter(steps * kBatch, benchmark::Counter::kIsRate);
  state.counters["s/step"] =
      benchmark::Counter(steps, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  // The feature bytes one step reads once: dense values, slots and values of its rows.
  const std::int64_t bytes_per_row = (d.dense + 2 * d.groups + 1) * 4;
  state.SetBytesProcessed(static_cast<std::int64_t>(steps) * kBatch * bytes_per_row);
}

void BM_TrainStepCpu(benchmark::State& state) { run_train_steps(state, "cpu", false); }
void BM_GPU_TrainStepCuda(benchmark::State& state) { run_train_steps(state, "cuda", false); }
void BM_GPU_TrainStepCudaWaitEachStep(benchmark::State& state) {
  run_train_steps(state, "cuda", true);
}

#define TRAIN_SHAPES                  \
  ArgNames({"dense", "groups", "fm"}) \
      ->Args({16, 0, 0})              \
      ->Args({64, 0, 0})              \
      ->Args({64, 4, 0})              \
      ->Args({16, 0, 1})              \
      ->Args({64, 0, 1})              \
      ->UseRealTime()                 \
      ->Unit(benchmark::kMicrosecond)
BENCHMARK(BM_TrainStepCpu)->TRAIN_SHAPES;
BENCHMARK(BM_GPU_TrainStepCuda)->TRAIN_SHAPES;
BENCHMARK(BM_GPU_TrainStepCudaWaitEachStep)->TRAIN_SHAPES;
#undef TRAIN_SHAPES

}  // namespace
}  // namespace lathe::bench
