// The profile pass's per-block work (runtime/profile.h: profile_block) next to the machine's own
// ceiling, a memcpy of the same bytes, measured in the same run. Blocks mix numeric columns (5%
// missing) with one categorical column in eight, 10% of the rows masked out, as after --dedup. The
// CPU variant sorts every numeric column; the GPU variant (BM_GPU_..., skipped with a message where
// no GPU answers) includes the host-to-device copy, the segmented sort and the copies back. Both
// keep one ProfileWorkspace, as profile_table does, so steady state allocates nothing. Registered
// here; lathe_bench's main is in column_stats_bench.cpp.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "runtime/device_context.h"
#include "runtime/profile.h"

namespace lathe::bench {
namespace {

constexpr std::int64_t kLabels = 50;

struct ProfileInput {
  std::vector<lathe::ColumnInfo> columns;
  std::vector<float> values;
  std::vector<std::uint8_t> keep;
};

ProfileInput make_input(std::int64_t rows, std::int64_t cols) {
  ProfileInput in;
  in.values.resize(static_cast<std::size_t>(rows * cols));
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0, 1);
  std::uniform_int_distribution<int> code(0, kLabels - 1);
  std::uniform_real_distribution<float> u(0, 1);
  for (std::int64_t c = 0; c < cols; ++c) {
    lathe::ColumnInfo info;
    info.name = "c" + std::to_string(c);
    const bool categorical = c % 8 == 7;
    if (categorical) {
      info.type = lathe::ColumnType::categorical;
      for (std::int64_t k = 0; k < kLabels; ++k) info.categories.push_back("l" + std::to_string(k));
    }
    float* col = in.values.data() + c * rows;
    for (std::int64_t r = 0; r < rows; ++r) {
      const float v = categorical ? static_cast<float>(code(rng)) : normal(rng);
      col[r] = u(rng) < 0.05f ? NAN : v;
    }
    in.columns.push_back(std::move(info));
  }
  in.keep.resize(static_cast<std::size_t>(rows));
  for (auto& k : in.keep) k = u(rng) < 0.9f ? 1 : 0;
  return in;
}

void BM_ProfileMemcpyCeiling(benchmark::State& state) {
  run_memcpy_ceiling(state, state.range(0), state.range(1));
}

void run_profile_block(benchmark::State& state, const char* device) {
  const std::int64_t rows = state.range(0), cols = state.range(1);
  const auto ctx = device_or_skip(state, device);
  if (!ctx) return;
  const ProfileInput in = make_input(rows, cols);
  lathe::DataProfile profile = lathe::make_profile(in.columns);
  lathe::ProfileWorkspace workspace;
  const lathe::ColumnBlockView block{in.values.data(), rows, cols};
  try {
    lathe::profile_block(*ctx, block, in.keep, profile, {}, &workspace);  // warm-up: scratch grows here
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  for (auto _ : state) {
    lathe::profile_block(*ctx, block, in.keep, profile, {}, &workspace);
    benchmark::DoNotOptimize(profile.rows);
  }
  set_block_counters(state, rows, cols);
}

void BM_ProfileBlockCpu(benchmark::State& state) { run_profile_block(state, "cpu"); }
void BM_GPU_ProfileBlockCuda(benchmark::State& state) { run_profile_block(state, "cuda"); }

#define PROFILE_SIZES Args({1 << 16, 32})->Args({1 << 16, 256})->Args({1 << 20, 8})->Unit(benchmark::kMillisecond)
BENCHMARK(BM_ProfileMemcpyCeiling)->PROFILE_SIZES;
BENCHMARK(BM_ProfileBlockCpu)->PROFILE_SIZES->UseRealTime();
BENCHMARK(BM_GPU_ProfileBlockCuda)->PROFILE_SIZES->UseRealTime();

}  // namespace
}  // namespace lathe::bench
