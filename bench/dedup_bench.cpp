// Duplicate detection's two compute steps next to the machine's own ceiling, a memcpy of the same
// bytes, measured in the same run: row hashing of a host block (GPU: includes the copies to and
// from the device) and the (hash, row) sort that finds candidate groups. GPU variants are named
// BM_GPU_... and skipped with a message where no GPU answers. Registered here; lathe_bench's main
// is in column_stats_bench.cpp.
#include <benchmark/benchmark.h>

#include <optional>
#include <random>
#include <vector>

#include "bench/bench_support.h"
#include "runtime/dedup.h"
#include "runtime/dedup_cuda.h"
#include "runtime/device_context.h"

namespace lathe::bench {
namespace {

// Hashes with 5% repeats, as a table with a few duplicates gives.
std::vector<std::uint64_t> make_hashes(std::int64_t n) {
  std::vector<std::uint64_t> h(static_cast<std::size_t>(n));
  std::mt19937_64 rng(4);
  for (std::int64_t i = 0; i < n; ++i) h[i] = (i > 0 && rng() % 20 == 0) ? h[rng() % i] : rng();
  return h;
}

void BM_DedupMemcpyCeiling(benchmark::State& state) {
  run_memcpy_ceiling(state, state.range(0), state.range(1));
}

void run_row_hashes(benchmark::State& state, const char* device) {
  const std::int64_t rows = state.range(0), cols = state.range(1);
  const auto ctx = device_or_skip(state, device);
  if (!ctx) return;
  const auto block = normal_block(rows, cols, 3);
  std::vector<std::uint64_t> out(static_cast<std::size_t>(rows));
  // On the GPU, one hasher for every iteration, as find_duplicates keeps one for every block: its
  // buffers are allocated once.
  std::optional<lathe::CudaRowHasher> hasher;
  if (ctx->is_cuda()) hasher.emplace(ctx->cuda());
  for (auto _ : state) {
    if (hasher) {
      hasher->hash({block.data(), rows, cols}, out);
    } else {
      lathe::row_hashes(*ctx, {block.data(), rows, cols}, out);
    }
    benchmark::DoNotOptimize(out.data());
  }
  set_block_counters(state, rows, cols);
}

void run_candidate_groups(benchmark::State& state, const char* device) {
  const std::int64_t rows = state.range(0);
  const auto ctx = device_or_skip(state, device);
  if (!ctx) return;
  const auto hashes = make_hashes(rows);
  bool on_device = false;
  for (auto _ : state) {
    auto groups = lathe::candidate_groups(*ctx, hashes, &on_device);  // copies the hashes: counted
    benchmark::DoNotOptimize(groups.data());
  }
  if (ctx->is_cuda() && !on_device) state.SkipWithError("the GPU lacked memory: the CPU sorted");
  set_row_counters(state, rows, sizeof(std::uint64_t));
}

void BM_RowHashCpu(benchmark::State& state) { run_row_hashes(state, "cpu"); }
void BM_GPU_RowHashCuda(benchmark::State& state) { run_row_hashes(state, "cuda"); }
void BM_CandidateGroupsCpu(benchmark::State& state) { run_candidate_groups(state, "cpu"); }
void BM_GPU_CandidateGroupsCuda(benchmark::State& state) { run_candidate_groups(state, "cuda"); }

#define BLOCK_SIZES \
  Args({1 << 16, 32})->Args({1 << 20, 16})->Args({1 << 22, 8})->Unit(benchmark::kMillisecond)
BENCHMARK(BM_DedupMemcpyCeiling)->BLOCK_SIZES;
BENCHMARK(BM_RowHashCpu)->BLOCK_SIZES->UseRealTime();
BENCHMARK(BM_GPU_RowHashCuda)->BLOCK_SIZES->UseRealTime();
#undef BLOCK_SIZES
BENCHMARK(BM_CandidateGroupsCpu)
    ->Arg(1 << 20)
    ->Arg(1 << 24)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_GPU_CandidateGroupsCuda)
    ->Arg(1 << 20)
    ->Arg(1 << 24)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace lathe::bench
