// Column statistics (the profile pass behind `lathe inspect`) next to the machine's own ceiling,
// a memcpy of the same bytes, measured in the same run. GPU variants use the CUDA backend through
// the same entry point (host block in, stats out: includes the host-to-device copy) and are
// skipped with a message where no GPU answers.
#include <benchmark/benchmark.h>

#include <vector>

#include "bench/bench_support.h"
#include "runtime/column_summary.h"
#include "runtime/cuda_backend.h"
#include "runtime/device_context.h"

namespace lathe::bench {
namespace {

void BM_MemcpyCeiling(benchmark::State& state) {
  run_memcpy_ceiling(state, state.range(0), state.range(1));
}

void run_column_stats(benchmark::State& state, const char* device) {
  const std::int64_t rows = state.range(0), cols = state.range(1);
  const auto ctx = device_or_skip(state, device);
  if (!ctx) return;
  auto block = normal_block(rows, cols, 1);
  std::vector<lathe::ColumnStats> out(static_cast<std::size_t>(cols));
  for (auto _ : state) {
    lathe::compute_column_stats(*ctx, {block.data(), rows, cols}, out);
    benchmark::DoNotOptimize(out.data());
  }
  set_block_counters(state, rows, cols);
}

// The GPU's ceilings, timed with CUDA events (manual time): a device-to-device copy and a pinned
// host-to-device copy of the same bytes as a block.
void run_copy_ceiling(benchmark::State& state, double (*time_copy)(lathe::CudaBackend&, std::size_t, int)) {
  const std::int64_t rows = state.range(0), cols = state.range(1);
  const std::size_t bytes = static_cast<std::size_t>(rows * cols) * sizeof(float);
  const auto ctx = device_or_skip(state, "cuda");
  if (!ctx) return;
  for (auto _ : state) state.SetIterationTime(time_copy(ctx->cuda(), bytes, 10));
  set_block_counters(state, rows, cols);
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
}  // namespace lathe::bench

BENCHMARK_MAIN();  // the one main of lathe_bench: other bench/*.cpp files only register
