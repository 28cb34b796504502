// The binary metrics (runtime/metrics.h: compute_metrics, as `lathe eval` and early stopping run
// it), whose cost is the exact ROC AUC and average precision: the rows sorted by descending score
// (CPU: a stable radix sort of (score key, weight) pairs on the team; GPU: CUB's radix sort of
// (score, weight) pairs), then one pass over the groups of tied scores. Next to the machine's own ceiling, a memcpy
// of the same bytes, measured in the same run. Inputs of 1M and 10M rows: probabilities rounded to
// multiples of 1/4096 (so about n/4096 rows share each score: many ties) and labels drawn with
// P(1) = the score (an AUC of about 0.83), no sample weights. The entry point also validates the
// labels and sums logloss and accuracy: both are single passes, small beside the sort. GPU
// variants (BM_GPU_..., skipped with a message where no GPU answers) take the same host arrays, so
// the upload is timed; beside them the counter h2d_GBps, a pinned host-to-device copy of the same
// bytes. Counters: rows/s, and bytes/s of the scores and labels read (8 bytes a row). Registered
// here; lathe_bench's main is in column_stats_bench.cpp.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "bench/bench_support.h"
#include "runtime/device_context.h"
#include "runtime/metrics.h"

namespace lathe::bench {
namespace {

constexpr float kScoreLevels = 4096.0f;

struct ScoredLabels {
  std::vector<float> scores, labels;
};

// Built once per row count: the CPU and GPU variants read the same rows.
const ScoredLabels& scored_labels(std::int64_t rows) {
  static std::map<std::int64_t, std::unique_ptr<ScoredLabels>> inputs;
  auto& in = inputs[rows];
  if (in) return *in;
  in = std::make_unique<ScoredLabels>();
  in->scores.resize(static_cast<std::size_t>(rows));
  in->labels.resize(static_cast<std::size_t>(rows));
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (std::int64_t r = 0; r < rows; ++r) {
    const float score = std::floor(u(rng) * kScoreLevels) / kScoreLevels;
    in->scores[r] = score;
    in->labels[r] = u(rng) < score ? 1.0f : 0.0f;
  }
  return *in;
}

void BM_MetricsMemcpyCeiling(benchmark::State& state) {
  run_memcpy_ceiling(state, state.range(0), 2);  // a score and a label per row
}

void run_binary_metrics(benchmark::State& state, const char* device) {
  const auto ctx = device_or_skip(state, device);
  if (!ctx) return;
  const std::int64_t rows = state.range(0);
  const ScoredLabels& in = scored_labels(rows);
  double auc = 0.0;
  for (auto _ : state) {
    const MetricSet m = compute_metrics(*ctx, Task::binary, in.scores, in.labels, {}, 2);
    auc = m.values.at("auc");
    benchmark::DoNotOptimize(auc);
  }
  if (!(auc > 0.5 && auc < 1.0)) {
    state.SkipWithError("the AUC is not that of the synthetic scores: nothing was ranked");
    return;
  }
  set_block_counters(state, rows, 2);
  state.counters["auc"] = auc;
  set_upload_counter(state, *ctx, static_cast<std::size_t>(rows) * 2 * sizeof(float));
}

void BM_BinaryMetricsAucCpu(benchmark::State& state) { run_binary_metrics(state, "cpu"); }
void BM_GPU_BinaryMetricsAucCuda(benchmark::State& state) { run_binary_metrics(state, "cuda"); }

#define METRICS_ROWS Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond)
BENCHMARK(BM_MetricsMemcpyCeiling)->METRICS_ROWS;
BENCHMARK(BM_BinaryMetricsAucCpu)->METRICS_ROWS->UseRealTime();
BENCHMARK(BM_GPU_BinaryMetricsAucCuda)->METRICS_ROWS->UseRealTime();
#undef METRICS_ROWS

}  // namespace
}  // namespace lathe::bench
