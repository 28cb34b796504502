// Model::predict_scores (models/model.h: the raw scores behind `lathe score` and lathe::Scorer) over
// a prepared block of 1M rows, 32 dense features and 4 one-hot groups of 1000 slots, for five
// models: logistic (linear, 1 output), softmax over K = 5 classes (linear, 5 outputs), a
// factorization machine with k = 8 factors (1 output), and linear and fm (k = 8) regression
// (scores summed in double: models/model_formulas.h), each with seeded random parameters. Next to
// the machine's own ceiling, a memcpy of the block's bytes, measured in the same run. GPU variants
// (BM_GPU_..., skipped with a message where no GPU answers) go through the same entry point: host
// rows in, host scores out, so the uploads of the block and the copy of the scores back are timed;
// beside them the counter h2d_GBps, a pinned host-to-device copy of the block's bytes. Counters:
// rows/s, and bytes/s of the prepared rows read (dense values, slots and values: 40 x 4 bytes a
// row). Registered here; lathe_bench's main is in column_stats_bench.cpp.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "bench/bench_support.h"
#include "models/model.h"
#include "runtime/device_context.h"

namespace lathe::bench {
namespace {

constexpr std::int64_t kDense = 32;
constexpr std::int32_t kGroups = 4;
constexpr std::int64_t kGroupWidth = 1000;
// The floats of a prepared row: dense values, then a slot and a value per group.
constexpr std::int64_t kRowFloats = kDense + 2 * kGroups;

// A prepared block (PreparedBlock layout, column-major): dense N(0, 1), one-hot slots (value 1).
struct PredictRows {
  std::int64_t rows = 0;
  std::vector<float> dense, value;
  std::vector<std::int32_t> slot;
  PreparedRowsView view() const { return {dense.data(), slot.data(), value.data(), rows}; }
};

// Built once per row count: the CPU and GPU variants read the same block.
const PredictRows& predict_rows(std::int64_t rows) {
  static std::map<std::int64_t, std::unique_ptr<PredictRows>> blocks;
  auto& block = blocks[rows];
  if (block) return *block;
  block = std::make_unique<PredictRows>();
  block->rows = rows;
  block->dense = normal_block(rows, kDense, 7);
  block->slot.resize(static_cast<std::size_t>(rows * kGroups));
  std::mt19937 rng(8);
  std::uniform_int_distribution<std::int32_t> pick(0, static_cast<std::int32_t>(kGroupWidth - 1));
  for (auto& s : block->slot) s = pick(rng);
  block->value.assign(block->slot.size(), 1.0f);
  return *block;
}

enum class PredictModel {
  logistic = 0,
  softmax = 1,
  fm = 2,
  linear_regression = 3,
  fm_regression = 4
};

ModelShape predict_shape(PredictModel which) {
  ModelShape shape;
  const bool regression =
      which == PredictModel::linear_regression || which == PredictModel::fm_regression;
  shape.task = which == PredictModel::softmax ? Task::multiclass
               : regression                   ? Task::regression
                                              : Task::binary;
  shape.loss = which == PredictModel::softmax ? LossKind::softmax
               : regression                   ? LossKind::squared
                                              : LossKind::logistic;
  shape.outputs = which == PredictModel::softmax ? 5 : 1;
  shape.kind = which == PredictModel::fm || which == PredictModel::fm_regression ? ModelKind::fm
                                                                                 : ModelKind::linear;
  shape.factors = 8;
  shape.layout.dense_features = kDense;
  shape.layout.groups = kGroups;
  shape.group_offsets = {kDense};
  for (std::int32_t g = 0; g < kGroups; ++g) shape.group_offsets.push_back(shape.group_offsets.back() + kGroupWidth);
  return shape;
}

// Small seeded random weights, bias and factors (a zero model would score the same, but nonzero
// parameters keep the sums honest).
void set_random_parameters(Model& model) {
  ModelParameters p = model.parameters();
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  for (auto* v : {&p.weights, &p.bias, &p.factors}) {
    for (float& x : *v) x = normal(rng);
  }
  model.set_parameters(p);
}

void BM_PredictMemcpyCeiling(benchmark::State& state) {
  run_memcpy_ceiling(state, state.range(0), kRowFloats);
}

// Arguments: rows, model (0 logistic, 1 softmax K = 5, 2 fm k = 8, 3 linear regression, 4 fm
// regression k = 8).
void run_predict(benchmark::State& state, const char* device) {
  const auto ctx = device_or_skip(state, device);
  if (!ctx) return;
  const PredictRows& rows = predict_rows(state.range(0));
  const ModelShape shape = predict_shape(static_cast<PredictModel>(state.range(1)));
  std::unique_ptr<Model> model = make_model(*ctx, shape, OptimizerConfig{}, 1);
  set_random_parameters(*model);
  std::vector<float> scores(static_cast<std::size_t>(rows.rows * shape.outputs));
  model->predict_scores(rows.view(), scores.data());  // warm-up: the GPU's buffers grow here
  for (auto _ : state) {
    model->predict_scores(rows.view(), scores.data());
    benchmark::DoNotOptimize(scores.data());
    benchmark::ClobberMemory();
  }
  set_block_counters(state, rows.rows, kRowFloats);
  state.counters["outputs"] = shape.outputs;
  set_upload_counter(state, *ctx, static_cast<std::size_t>(rows.rows * kRowFloats) * sizeof(float));
}

void BM_PredictCpu(benchmark::State& state) { run_predict(state, "cpu"); }
void BM_GPU_PredictCuda(benchmark::State& state) { run_predict(state, "cuda"); }

BENCHMARK(BM_PredictMemcpyCeiling)->Arg(1 << 20)->Unit(benchmark::kMillisecond);
#define PREDICT_CASES                                                                    \
  ArgNames({"rows", "model"})->Args({1 << 20, 0})->Args({1 << 20, 1})->Args({1 << 20, 2}) \
      ->Args({1 << 20, 3})->Args({1 << 20, 4})                                           \
      ->Unit(benchmark::kMillisecond)                                                    \
      ->UseRealTime()
BENCHMARK(BM_PredictCpu)->PREDICT_CASES;
BENCHMARK(BM_GPU_PredictCuda)->PREDICT_CASES;
#undef PREDICT_CASES

}  // namespace
}  // namespace lathe::bench
