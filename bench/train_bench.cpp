// Training of the models (models/model.h) on a bound training set of seeded rows: linear and FM
// models over 16 or 64 dense features (and 4 one-hot groups), Adam, on the CPU and on the GPU
// (BM_GPU_..., skipped with a message where no GPU answers), in both of the trainer's modes.
//
// Steps (BM_TrainStep...): each benchmark iteration runs kSteps optimizer steps of 1024 rows
// without waiting for their losses (StepSettings::return_loss = false, as a trainer that reads the
// loss once per epoch) and then take_loss_sum, which waits for them; the GPU's WaitEachStep variant
// waits for every step's loss (one device-to-host round trip a step). Counters: rows/s, s/step
// (seconds per optimizer step) and bytes/s of the feature bytes the steps read.
//
// Epochs (BM_TrainEpoch...): one whole epoch per iteration over the rows in a seeded shuffled
// order, batches of 256 rows (the trainer's default), as `lathe train` runs it:
//   Exact     --mode exact: the epoch's steps handed over at once (Model::train_steps; on the GPU
//             replayed through CUDA graphs, on the CPU one train_step after another);
//   Parallel  --mode parallel: local SGD (Model::train_epoch_local_sgd), the device's default
//             worker count, weights averaged every 8 local steps.
// Counters: rows/s, bytes/s of the training rows (features and label, once an epoch) and on the GPU
// copy_GBps, a device-to-device copy of the same bytes (the data are device-resident). The
// ceiling: BM_TrainMemcpyCeiling, a memcpy of one epoch's bytes, measured in the same run.
// Registered here; lathe_bench's main is in column_stats_bench.cpp.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <tuple>
#include <vector>

#include "bench/bench_support.h"
#include "models/model.h"
#include "runtime/device_context.h"

namespace lathe::bench {
namespace {

constexpr std::int64_t kBatch = 1024;
constexpr int kSteps = 16;
constexpr std::int64_t kRows = 1 << 16;
constexpr std::int64_t kEpochBatch = 256;
constexpr std::int64_t kSyncEvery = 8;
constexpr std::int64_t kGroupWidth = 1000;

// A seeded training set: dense N(0, 1) features, one-hot groups of kGroupWidth slots, labels 0/1
// from a linear rule with noise.
struct TrainData {
  std::int64_t rows = 0;
  std::int64_t dense = 0;
  std::int32_t groups = 0;
  std::vector<float> x, value, label;
  std::vector<std::int32_t> slot;
  std::vector<std::int64_t> offsets;

  TrainingSet set() const {
    TrainingSet t;
    t.rows = PreparedRowsView{x.data(), slot.data(), value.data(), rows};
    t.labels = label.data();
    return t;
  }
  // The bytes of a training row: dense values, a slot and a value per group, the label.
  std::int64_t bytes_per_row() const { return (dense + 2 * groups + 1) * 4; }
};

// Built once per shape: the benchmarks of a shape (CPU and GPU, steps and epochs) share it.
const TrainData& train_data(std::int64_t rows, std::int64_t dense, std::int32_t groups) {
  static std::map<std::tuple<std::int64_t, std::int64_t, std::int32_t>, std::unique_ptr<TrainData>> sets;
  auto& slot = sets[{rows, dense, groups}];
  if (slot) return *slot;
  slot = std::make_unique<TrainData>();
  TrainData& d = *slot;
  d.rows = rows;
  d.dense = dense;
  d.groups = groups;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<std::int32_t> pick(0, static_cast<std::int32_t>(kGroupWidth - 1));
  d.x.resize(static_cast<std::size_t>(dense * rows));
  for (auto& v : d.x) v = normal(rng);
  d.slot.resize(static_cast<std::size_t>(groups * rows));
  for (auto& s : d.slot) s = pick(rng);
  d.value.assign(d.slot.size(), 1.0f);
  d.label.resize(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    const float s = (dense > 0 ? d.x[r] : 0.0f) + (dense > 1 ? 0.5f * d.x[rows + r] : 0.0f);
    d.label[r] = s + normal(rng) > 0.0f ? 1.0f : 0.0f;
  }
  d.offsets = {dense};
  for (std::int32_t g = 0; g < groups; ++g) d.offsets.push_back(d.offsets.back() + kGroupWidth);
  return d;
}

// A binary model (logistic loss, Adam) over `d`, fm with 8 factors or linear, bound to `d` with a
// seeded shuffled epoch order.
std::unique_ptr<Model> bound_model(const DeviceContext& ctx, const TrainData& d, bool fm) {
  ModelShape shape;
  shape.task = Task::binary;
  shape.loss = LossKind::logistic;
  shape.kind = fm ? ModelKind::fm : ModelKind::linear;
  shape.factors = 8;
  shape.group_offsets = d.offsets;
  shape.layout.dense_features = d.dense;
  shape.layout.groups = d.groups;
  OptimizerConfig optimizer;
  optimizer.kind = OptimizerKind::adam;
  std::unique_ptr<Model> model = make_model(ctx, shape, optimizer, 1);
  model->bind_training_set(d.set());
  std::vector<std::int64_t> order(static_cast<std::size_t>(d.rows));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(2));
  model->set_epoch_order(order);
  return model;
}

// Arguments: dense features, one-hot groups, 1 for an FM (8 factors) else linear.
void run_train_steps(benchmark::State& state, const char* device, bool wait_each_step) {
  const auto ctx = device_or_skip(state, device);
  if (!ctx) return;
  const TrainData& d = train_data(kRows, state.range(0), static_cast<std::int32_t>(state.range(1)));
  std::unique_ptr<Model> model = bound_model(*ctx, d, state.range(2) != 0);

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
  // The bytes one step reads once: dense values, slots and values of its rows, their labels.
  state.SetBytesProcessed(static_cast<std::int64_t>(steps) * kBatch * d.bytes_per_row());
}

enum class EpochMode { exact, parallel };

// One epoch per iteration. Arguments: rows, dense features, one-hot groups, 1 for an FM.
void run_train_epochs(benchmark::State& state, const char* device, EpochMode mode) {
  const auto ctx = device_or_skip(state, device);
  if (!ctx) return;
  const TrainData& d = train_data(state.range(0), state.range(1), static_cast<std::int32_t>(state.range(2)));
  std::unique_ptr<Model> model = bound_model(*ctx, d, state.range(3) != 0);
  const std::int64_t steps_per_epoch = (d.rows + kEpochBatch - 1) / kEpochBatch;

  std::int64_t step = 0;  // optimizer steps so far (Adam's bias correction), as the trainer counts
  std::vector<PlannedStep> plans;
  const auto epoch = [&] {
    if (mode == EpochMode::parallel) {
      LocalSgdSettings local;
      local.batch = kEpochBatch;
      local.sync_every = kSyncEvery;
      local.learning_rate = 0.01f;
      local.first_step = step + 1;
      model->train_epoch_local_sgd(local);
      step += steps_per_epoch;
    } else {
      plans.clear();
      for (std::int64_t first = 0; first < d.rows; first += kEpochBatch) {
        PlannedStep p;
        p.first = first;
        p.count = std::min(kEpochBatch, d.rows - first);
        p.settings.learning_rate = 0.01f;
        p.settings.step = ++step;
        p.settings.return_loss = false;
        plans.push_back(p);
      }
      model->train_steps(plans);
    }
    benchmark::DoNotOptimize(model->take_loss_sum());  // waits for the epoch on the GPU
  };
  epoch();  // warm-up: scratch buffers, worker copies, caches
  for (auto _ : state) epoch();

  set_row_counters(state, d.rows, d.bytes_per_row());
  state.counters["steps"] = static_cast<double>(steps_per_epoch);
  set_device_copy_counter(state, *ctx, static_cast<std::size_t>(d.rows * d.bytes_per_row()));
}

void BM_TrainMemcpyCeiling(benchmark::State& state) {
  // Arguments: rows, dense features, one-hot groups: one epoch's bytes (TrainData::bytes_per_row).
  run_memcpy_ceiling(state, state.range(0), state.range(1) + 2 * state.range(2) + 1);
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

void BM_TrainEpochExactCpu(benchmark::State& state) { run_train_epochs(state, "cpu", EpochMode::exact); }
void BM_GPU_TrainEpochExactCuda(benchmark::State& state) { run_train_epochs(state, "cuda", EpochMode::exact); }
void BM_TrainEpochParallelCpu(benchmark::State& state) { run_train_epochs(state, "cpu", EpochMode::parallel); }
void BM_GPU_TrainEpochParallelCuda(benchmark::State& state) {
  run_train_epochs(state, "cuda", EpochMode::parallel);
}

BENCHMARK(BM_TrainMemcpyCeiling)
    ->ArgNames({"rows", "dense", "groups"})
    ->Args({kRows, 16, 0})
    ->Args({kRows, 64, 4})
    ->Args({kRows, 64, 0})
    ->Unit(benchmark::kMicrosecond);
#define EPOCH_SHAPES                            \
  ArgNames({"rows", "dense", "groups", "fm"})   \
      ->Args({kRows, 16, 0, 0})                 \
      ->Args({kRows, 64, 4, 0})                 \
      ->Args({kRows, 64, 0, 1})                 \
      ->UseRealTime()                           \
      ->Unit(benchmark::kMillisecond)
BENCHMARK(BM_TrainEpochExactCpu)->EPOCH_SHAPES;
BENCHMARK(BM_TrainEpochParallelCpu)->EPOCH_SHAPES;
// On the GPU also an epoch of 1M rows: 4096 steps, enough batches for a worker per SM in parallel
// mode (65536 rows give 256 batches: 16 workers of 16 steps).
BENCHMARK(BM_GPU_TrainEpochExactCuda)->EPOCH_SHAPES->Args({1 << 20, 16, 0, 0});
BENCHMARK(BM_GPU_TrainEpochParallelCuda)->EPOCH_SHAPES->Args({1 << 20, 16, 0, 0});
#undef EPOCH_SHAPES

}  // namespace
}  // namespace lathe::bench
