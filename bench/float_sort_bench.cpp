// The radix sort of float order keys (runtime/float_sort.h: sort_keys, what the profile pass runs
// on each numeric column of every block) beside std::sort of the same keys, measured in the same
// run, from 4K to 1M keys: its digits change at 2^15 keys (11-bit below, 16-bit from there), so the
// sizes either side show the choice. Keys of N(0, 1) floats (a bell-shaped column: most keys share
// their top bits) and of uniform 32-bit words; each iteration copies the unsorted keys in first
// (timed, in both variants). One thread. Counters: keys/s, and bytes/s of the keys (4 bytes each).
// Registered here; lathe_bench's main is in column_stats_bench.cpp.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "bench/bench_support.h"
#include "runtime/float_sort.h"

namespace lathe::bench {
namespace {

// Built once per (size, kind): the order keys of kind 0 N(0, 1) floats, 1 1000 + 5 N(0, 1); 2
// uniform words.
const std::vector<std::uint32_t>& unsorted_keys(std::int64_t n, std::int64_t kind) {
  static std::map<std::pair<std::int64_t, std::int64_t>,
                  std::unique_ptr<std::vector<std::uint32_t>>>
      inputs;
  auto& in = inputs[{n, kind}];
  if (in) return *in;
  in = std::make_unique<std::vector<std::uint32_t>>(static_cast<std::size_t>(n));
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<std::uint32_t> any;
  for (std::uint32_t& key : *in) {
    key = kind == 0   ? float_order_key(normal(rng))
          : kind == 1 ? float_order_key(1000.0f + 5.0f * normal(rng))
                      : any(rng);
  }
  return *in;
}

void BM_SortKeysCpu(benchmark::State& state) {
  const std::vector<std::uint32_t>& in = unsorted_keys(state.range(0), state.range(1));
  std::vector<std::uint32_t> keys(in.size()), spare(in.size()), counts;
  for (auto _ : state) {
    std::copy(in.begin(), in.end(), keys.begin());
    const std::span<const std::uint32_t> sorted = sort_keys(keys, spare, counts);
    benchmark::DoNotOptimize(sorted.data());
  }
  set_row_counters(state, state.range(0), sizeof(std::uint32_t));
}

void BM_SortKeysStdSort(benchmark::State& state) {
  const std::vector<std::uint32_t>& in = unsorted_keys(state.range(0), state.range(1));
  std::vector<std::uint32_t> keys(in.size());
  for (auto _ : state) {
    std::copy(in.begin(), in.end(), keys.begin());
    std::sort(keys.begin(), keys.end());
    benchmark::DoNotOptimize(keys.data());
  }
  set_row_counters(state, state.range(0), sizeof(std::uint32_t));
}

#define SORT_KEYS_SIZES ArgsProduct({{1 << 12, 1 << 16, 1 << 20}, {0, 1, 2}})
BENCHMARK(BM_SortKeysCpu)->SORT_KEYS_SIZES->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SortKeysStdSort)->SORT_KEYS_SIZES->Unit(benchmark::kMicrosecond);
#undef SORT_KEYS_SIZES

}  // namespace
}  // namespace lathe::bench
