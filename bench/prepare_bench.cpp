// The fused preparation transform (apply_preparation) next to the machine's ceiling, a memcpy of
// the same input bytes (the transform reads and writes about as many bytes as a copy), measured in
// the same run. Blocks of 1M rows x 16 columns, by the second argument (kind):
//   0 numeric  16 numeric columns (impute + scale);
//   1 mixed    12 numeric with missing values and indicators, quantile clipping, 4 categorical, a
//              numeric cross, a categorical cross and a slope;
//   2 crosses  12 numeric (5% missing) and 4 categorical, crossed: 8 numeric x numeric products,
//              all 6 categorical x categorical pairs (hashed into 2^16 buckets) and 4 slopes.
// GPU variants go through the same entry point (host block in and out, copies included) and are
// skipped with a message where no GPU answers. Counters: rows/s, bytes/s of the input block, and
// the prepared row's dense features and sparse groups.
#include <benchmark/benchmark.h>

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "bench/bench_support.h"
#include "runtime/cuda_backend.h"
#include "runtime/device_context.h"
#include "runtime/prepare_cuda.h"
#include "runtime/preparation.h"
#include "runtime/profile.h"

namespace lathe::bench {
namespace {

struct PrepareCase {
  std::int64_t rows = 0, cols = 0;
  std::vector<lathe::ColumnInfo> columns;
  std::vector<float> block;
  lathe::FittedPreparation fitted;
};

enum class PrepareKind { numeric = 0, mixed = 1, crosses = 2 };

// Built once per shape (profiling 16M values takes a moment).
const PrepareCase& prepare_case(std::int64_t rows, PrepareKind kind) {
  static std::map<std::pair<std::int64_t, PrepareKind>, std::unique_ptr<PrepareCase>> cases;
  auto& slot = cases[{rows, kind}];
  if (slot) return *slot;
  slot = std::make_unique<PrepareCase>();
  PrepareCase& c = *slot;
  c.rows = rows;
  c.cols = 16;
  c.block.resize(static_cast<std::size_t>(rows * c.cols));
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0, 1);
  std::uniform_real_distribution<float> u(0, 1);
  lathe::PreparationOptions options;
  const bool mixed = kind != PrepareKind::numeric;  // missing values and categorical columns
  for (std::int64_t col = 0; col < c.cols; ++col) {
    lathe::ColumnInfo info;
    info.name = "c" + std::to_string(col);
    const bool categorical = mixed && col >= 12;
    float* v = c.block.data() + col * rows;
    if (categorical) {
      info.type = lathe::ColumnType::categorical;
      const int k = 10 << (col - 12);
      for (int i = 0; i < k; ++i) info.categories.push_back("label" + std::to_string(i));
      std::uniform_int_distribution<int> code(0, k - 1);
      for (std::int64_t r = 0; r < rows; ++r) v[r] = static_cast<float>(code(rng));
    } else {
      info.type = lathe::ColumnType::numeric;
      for (std::int64_t r = 0; r < rows; ++r) {
        v[r] = (mixed && u(rng) < 0.05f) ? std::numeric_limits<float>::quiet_NaN()
                                         : 100.0f + 5.0f * normal(rng);
      }
    }
    c.columns.push_back(info);
  }
  if (kind == PrepareKind::mixed) {
    options.missing_indicators = true;
    options.defaults.clip = lathe::ClipKind::quantile;
    options.crosses = {{"c0", "c1"}, {"c12", "c13"}, {"c2", "c14"}};
  } else if (kind == PrepareKind::crosses) {
    options.crosses = {{"c0", "c1"},   {"c2", "c3"},   {"c4", "c5"},   {"c6", "c7"},   {"c8", "c9"},
                       {"c10", "c11"}, {"c0", "c2"},   {"c1", "c3"},   {"c12", "c13"}, {"c12", "c14"},
                       {"c12", "c15"}, {"c13", "c14"}, {"c13", "c15"}, {"c14", "c15"}, {"c0", "c12"},
                       {"c1", "c13"},  {"c2", "c14"},  {"c3", "c15"}};
  }
  lathe::DataProfile profile = lathe::make_profile(c.columns);
  lathe::profile_block(lathe::DeviceContext::cpu(), {c.block.data(), rows, c.cols}, {}, profile);
  c.fitted = lathe::fit_preparation(profile, options);
  return c;
}

void BM_PrepareMemcpyCeiling(benchmark::State& state) {
  run_memcpy_ceiling(state, state.range(0), 16);  // the 16 columns of every PrepareCase
}

void run_prepare(benchmark::State& state, const char* device) {
  const auto ctx = device_or_skip(state, device);
  if (!ctx) return;
  const PrepareCase& c = prepare_case(state.range(0), static_cast<PrepareKind>(state.range(1)));
  const lathe::BoundPreparation bound = lathe::bind_preparation(c.fitted, c.columns);
  lathe::PreparedBlock out;
  lathe::apply_preparation(*ctx, bound, {c.block.data(), c.rows, c.cols}, out);  // sizes `out`
  for (auto _ : state) {
    lathe::apply_preparation(*ctx, bound, {c.block.data(), c.rows, c.cols}, out);
    benchmark::DoNotOptimize(out.dense.data());
    benchmark::ClobberMemory();
  }
  set_block_counters(state, c.rows, c.cols);
  state.counters["dense"] = static_cast<double>(c.fitted.dense_features());
  state.counters["groups"] = static_cast<double>(c.fitted.sparse.size());
}

// The fused kernel alone on device-resident data (no host copies), next to a device-to-device copy
// of the same input bytes timed in the same benchmark (counter copy_GBps; the kernel's own input
// bandwidth is bytes_per_second).
void BM_GPU_PrepareDeviceResident(benchmark::State& state) {
  const auto ctx = device_or_skip(state, "cuda");
  if (!ctx) return;
  const PrepareCase& c = prepare_case(state.range(0), static_cast<PrepareKind>(state.range(1)));
  const lathe::BoundPreparation bound = lathe::bind_preparation(c.fitted, c.columns);
  lathe::CudaBackend& gpu = ctx->cuda();
  const std::size_t in_bytes = c.block.size() * sizeof(float);
  const auto groups = static_cast<std::size_t>(c.fitted.sparse.size());
  const auto rows = static_cast<std::size_t>(c.rows);
  auto input = lathe::allocate_device_bytes(gpu, in_bytes);
  auto dense = lathe::allocate_device_bytes(gpu, static_cast<std::size_t>(c.fitted.dense_features()) * rows * 4);
  auto slot = lathe::allocate_device_bytes(gpu, groups * rows * 4);
  auto value = lathe::allocate_device_bytes(gpu, groups * rows * 4);
  lathe::copy_host_to_device(gpu, input.get(), c.block.data(), in_bytes);
  const lathe::ColumnBlockView device_input{static_cast<const float*>(input.get()), c.rows, c.cols};
  auto run = [&] {
    lathe::apply_preparation_cuda_device(gpu, bound, device_input, static_cast<float*>(dense.get()),
                                         static_cast<std::int32_t*>(slot.get()), static_cast<float*>(value.get()));
  };
  run();  // uploads the binding's tables
  lathe::synchronize(gpu);
  for (auto _ : state) {
    run();
    lathe::synchronize(gpu);
  }
  set_block_counters(state, c.rows, c.cols);
  set_device_copy_counter(state, *ctx, in_bytes);
}

void BM_PrepareCpu(benchmark::State& state) { run_prepare(state, "cpu"); }
void BM_GPU_PrepareCuda(benchmark::State& state) { run_prepare(state, "cuda"); }

// {rows, kind}: kind 0 numeric, 1 mixed, 2 crosses
BENCHMARK(BM_PrepareMemcpyCeiling)->Arg(1 << 20)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PrepareCpu)
    ->Args({1 << 20, 0})
    ->Args({1 << 20, 1})
    ->Args({1 << 20, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_GPU_PrepareCuda)
    ->Args({1 << 20, 0})
    ->Args({1 << 20, 1})
    ->Args({1 << 20, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_GPU_PrepareDeviceResident)
    ->Args({1 << 20, 0})
    ->Args({1 << 20, 1})
    ->Args({1 << 20, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace lathe::bench
