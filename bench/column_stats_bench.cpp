// Column statistics (the profile pass behind `lathe inspect`) next to the machine's own ceiling,
// a memcpy of the same bytes, measured in the same run. GPU variants use the CUDA backend through
// the same entry point (host block in, stats out: includes the host-to-device copy) and are
// skipped with a message where no GPU answers.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "runtime/column_summary.h"
#include "runtime/cuda_backend.h"
#include "runtime/device_context.h"

namespace {

std::vector<float> make_block(std::int64_t rows, std::int64_t cols) {
  std::vector<float> v(static_cast<std::size_t>(rows * cols));
  std::mt19937 rng(1);
  std::normal_distribution<float> n(0, 1);
  for (auto& x : v) x = n(rng);
  return v;
}

void set_counters(benchmark::State& state, std::int64_t rows, std::int64_t cols) {
  const double bytes = static_cast<double>(rows * cols) * sizeof(float);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes) * state.iterations());
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(rows) * state.iterations(),
                                                benchmark::Counter::kIsRate);
}

void BM_MemcpyCeiling(benchmark::State& state) {
  const std::int64_t rows = state.range(0), cols = state.range(1);
  auto src = make_block(rows, cols);
  std::vector<float> dst(src.size());
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), src.size() * sizeof(float));
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, rows, cols);
}

void run_column_stats(benchmark::State& state, const char* device) {
  const std::int64_t rows = state.range(0), cols = state.range(1);
  lathe::DeviceContext ctx = lathe::DeviceContext::cpu();
  try {
    ctx = lathe::DeviceContext::select(device);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  auto block = make_block(rows, cols);
  std::vector<lathe::ColumnStats> out(static_cast<std::size_t>(cols));
  for (auto _ : state) {
    lathe::compute_column_stats(ctx, {block.data(), rows, cols}, out);
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(state, rows, cols);
}

// The GPU's ceilings, timed with CUDA events (manual time): a device-to-device copy and a pinned
// host-to-device copy of the same bytes as a block.
void run_copy_ceiling(benchmark::State& state, double (*time_copy)(lathe::CudaBackend&, std::size_t, int)) {
  const std::int64_t rows = state.range(0), cols = state.range(1);
  const std::size_t bytes = static_cast<std::size_t>(rows * cols) * sizeof(float);
  lathe::DeviceContext ctx = lathe::DeviceContext::cpu();
  try {
    ctx = lathe::DeviceContext::select("cuda");
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  for (auto _ : state) state.SetIterationTime(time_copy(ctx.cuda(), bytes, 10));
  set_counters(state, rows, cols);
}

void BM_GPU_DeviceCopyCeiling(benchmark::State& state) { run_copy_ceiling(state, lathe::time_device_copy); }
void BM_GPU_PinnedHostToDeviceCeiling(benchmark::State& state) {
  run_copy_ceiling(state, lathe::time_pinned_host_to_device_copy);
}

void BM_ColumnStatsCpu(benchmark::State& state) { run_column_stats(state, "cpu"); }
void BM_GPU_ColumnStatsCuda(benchmark::State& state) { run_column_stats(state, "cuda"); }

#define SIZES Args({1 << 16, 32})->Args({1 << 20, 16})->Args({1 << 22, 8})->Unit(benchmark::kMillisecond)
BENCHMARK(BM_MemcpyCeiling)->SIZES;
BENCHMARK(BM_ColumnStatsCpu)->SIZES->UseRealTime();
BENCHMARK(BM_GPU_ColumnStatsCuda)->SIZES->UseRealTime();
BENCHMARK(BM_GPU_DeviceCopyCeiling)->SIZES->UseManualTime();
BENCHMARK(BM_GPU_PinnedHostToDeviceCeiling)->SIZES->UseManualTime();

}  // namespace

BENCHMARK_MAIN();  // the one main of lathe_bench: other bench/*.cpp files only register
