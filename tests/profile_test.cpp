#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "io/columnar_writer.h"
#include "io/table_reader.h"
#include "runtime/error.h"
#include "runtime/profile.h"
#include "runtime/quantile_sketch.h"
#include "tests/temp_dir.h"
#include "tests/test_devices.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// ---------------------------------------------------------------------------------------------
// Independent references: exact order statistics with std::sort, counts with plain loops.

// numpy's default (linear) quantile of sorted values.
double exact_quantile(const std::vector<float>& sorted, double q) {
  const double t = q * static_cast<double>(sorted.size() - 1);
  const std::size_t i = static_cast<std::size_t>(std::floor(t));
  if (i + 1 >= sorted.size()) return sorted.back();
  return sorted[i] + (t - static_cast<double>(i)) * (static_cast<double>(sorted[i + 1]) - sorted[i]);
}

// How far (as a fraction of n) rank q (n - 1) lies from the ranks the value v takes in `sorted`.
double rank_error(const std::vector<float>& sorted, double q, double v) {
  const double n = static_cast<double>(sorted.size());
  const double lo = static_cast<double>(
      std::lower_bound(sorted.begin(), sorted.end(), v, [](float a, double b) { return a < b; }) - sorted.begin());
  const double hi = static_cast<double>(
      std::upper_bound(sorted.begin(), sorted.end(), v, [](double a, float b) { return a < b; }) - sorted.begin());
  const double t = q * (n - 1);
  // v occupies 0-based ranks [lo, hi - 1]; strictly between two values it has none (lo == hi): the
  // interpolation lies between ranks lo - 1 and lo.
  const double first = hi > lo ? lo : lo - 1, last = hi > lo ? hi - 1 : lo;
  return (t < first ? first - t : t > last ? t - last : 0.0) / n;
}

QuantileSketch sketch_in_blocks(const std::vector<float>& values, std::size_t block, int capacity) {
  QuantileSketch sketch(capacity);
  std::vector<float> points;
  std::vector<double> weights;
  for (std::size_t first = 0; first < values.size(); first += block) {
    std::vector<float> part(values.begin() + static_cast<std::ptrdiff_t>(first),
                            values.begin() + static_cast<std::ptrdiff_t>(std::min(values.size(), first + block)));
    std::sort(part.begin(), part.end());
    summarize_sorted(part, capacity, points, weights);
    sketch.add_summary(points, weights);
  }
  return sketch;
}

double worst_rank_error(const QuantileSketch& sketch, const std::vector<float>& sorted) {
  double worst = 0.0;
  for (int k = 0; k <= 1000; ++k) {
    const double q = k / 1000.0;
    worst = std::max(worst, rank_error(sorted, q, sketch.quantile(q)));
  }
  return worst;
}

// ---------------------------------------------------------------------------------------------
// QuantileSketch

TEST(QuantileSketch, SmallInputIsExactNumpyLinearQuantiles) {
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal(3, 2);
  std::vector<float> values(300);
  for (auto& v : values) v = normal(rng);
  const QuantileSketch sketch = sketch_in_blocks(values, 100, 1024);  // 3 blocks, no compaction
  std::sort(values.begin(), values.end());
  EXPECT_EQ(sketch.count(), 300.0);
  for (double q : {0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.999, 1.0}) {
    EXPECT_NEAR(sketch.quantile(q), exact_quantile(values, q), 1e-12) << "q " << q;
  }
  EXPECT_EQ(sketch.quantile(0), values.front());
  EXPECT_EQ(sketch.quantile(1), values.back());
  EXPECT_EQ(sketch.cdf(values[99]), 100.0 / 300.0);
  EXPECT_EQ(sketch.cdf(values.front() - 1), 0.0);
  EXPECT_EQ(sketch.cdf(values.back()), 1.0);
}

TEST(QuantileSketch, MillionValuesInHundredBlocksStayWithinAFewOverCapacity) {
  std::mt19937_64 rng(42);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> values(1'000'000);
  for (auto& v : values) v = normal(rng);
  std::vector<float> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  for (int capacity : {128, 1024}) {
    SCOPED_TRACE("capacity " + std::to_string(capacity));
    const QuantileSketch sketch = sketch_in_blocks(values, 10'000, capacity);
    EXPECT_EQ(sketch.count(), 1e6);
    EXPECT_LE(sketch.points().size(), static_cast<std::size_t>(capacity));
    EXPECT_EQ(sketch.quantile(0.0), sorted.front());
    EXPECT_EQ(sketch.quantile(1.0), sorted.back());
    EXPECT_LE(worst_rank_error(sketch, sorted), 3.0 / capacity);
    for (double q : {0.25, 0.5, 0.75}) {
      EXPECT_LE(rank_error(sorted, q, sketch.quantile(q)), 3.0 / capacity) << "q " << q;
    }
    // The median of a standard normal: the sketch's rank error times the density at 0 (~0.4).
    EXPECT_NEAR(sketch.quantile(0.5), exact_quantile(sorted, 0.5), 3.0 / capacity / 0.39 + 1e-6);
    EXPECT_NEAR(sketch.cdf(exact_quantile(sorted, 0.25)), 0.25, 3.0 / capacity);
  }
}

TEST(QuantileSketch, AdversarialOrdersAndManySmallBlocks) {
  // Blocks arriving in increasing order (each block a disjoint range), and 20000 blocks of 50.
  std::vector<float> values(1'000'000);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
  std::vector<float> sorted = values;
  for (std::size_t block : {10'000u, 50u}) {
    SCOPED_TRACE("block " + std::to_string(block));
    const QuantileSketch sketch = sketch_in_blocks(values, block, 256);
    EXPECT_EQ(sketch.count(), 1e6);
    EXPECT_LE(worst_rank_error(sketch, sorted), 4.0 / 256);
    EXPECT_EQ(sketch.quantile(0), 0.0f);
    EXPECT_EQ(sketch.quantile(1), 999'999.0f);
  }
}

TEST(QuantileSketch, FewDistinctValuesAreExact) {
  // 50 distinct integers, 1e5 values: equal values coalesce, so nothing is ever compacted away.
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<int> die(0, 49);
  std::vector<float> values(100'000);
  for (auto& v : values) v = static_cast<float>(die(rng));
  const QuantileSketch sketch = sketch_in_blocks(values, 7'000, 64);
  std::sort(values.begin(), values.end());
  for (int k = 0; k <= 100; ++k) {
    EXPECT_EQ(sketch.quantile(k / 100.0), exact_quantile(values, k / 100.0)) << "q " << k / 100.0;
  }
  // A 0/1 column's median is 0 or 1, never a blend.
  QuantileSketch flags(16);
  std::vector<float> points = {0.0f, 1.0f};
  std::vector<double> weights = {900.0, 100.0};
  flags.add_summary(points, weights);
  EXPECT_EQ(flags.quantile(0.5), 0.0);
  EXPECT_EQ(flags.quantile(0.95), 1.0);
  EXPECT_EQ(flags.cdf(0.0), 0.9);
}

TEST(QuantileSketch, MergeRoundTripAndDeterminism) {
  std::mt19937_64 rng(9);
  std::exponential_distribution<float> exponential(1);
  std::vector<float> values(200'000);
  for (auto& v : values) v = exponential(rng);
  const std::vector<float> first(values.begin(), values.begin() + 100'000);
  const std::vector<float> second(values.begin() + 100'000, values.end());
  QuantileSketch merged = sketch_in_blocks(first, 10'000, 512);
  merged.merge(sketch_in_blocks(second, 10'000, 512));
  QuantileSketch again = sketch_in_blocks(first, 10'000, 512);
  again.merge(sketch_in_blocks(second, 10'000, 512));
  EXPECT_EQ(merged.points(), again.points());
  EXPECT_EQ(merged.weights(), again.weights());
  EXPECT_EQ(merged.count(), 200'000.0);
  std::vector<float> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_LE(worst_rank_error(merged, sorted), 3.0 / 512);

  // What a model file stores gives back the same quantiles.
  QuantileSketch loaded(512);
  loaded.add_summary(merged.points(), merged.weights());
  for (int k = 0; k <= 200; ++k) EXPECT_EQ(loaded.quantile(k / 200.0), merged.quantile(k / 200.0));
  EXPECT_EQ(loaded.count(), merged.count());

  // Merging with itself doubles every weight.
  QuantileSketch doubled = loaded;
  doubled.merge(doubled);
  EXPECT_EQ(doubled.count(), 400'000.0);
  EXPECT_EQ(doubled.quantile(0), loaded.quantile(0));
  EXPECT_EQ(doubled.quantile(1), loaded.quantile(1));
}

// Summaries added unsettled and settled once make the sketch that adding them one by one makes
// (what profile_table relies on); until then the queries refuse rather than answer from a stale
// summary.
TEST(QuantileSketch, AddedUnsettledThenSettledIsAddedOneByOne) {
  std::mt19937_64 rng(13);
  std::lognormal_distribution<float> lognormal(0, 2);
  std::vector<float> values(150'000);
  for (auto& v : values) v = std::floor(lognormal(rng) * 4) / 4;  // ties across blocks
  const QuantileSketch one_by_one = sketch_in_blocks(values, 3'000, 128);
  QuantileSketch settled(128);
  EXPECT_TRUE(settled.empty());
  std::vector<float> points;
  std::vector<double> weights;
  for (std::size_t first = 0; first < values.size(); first += 3'000) {
    std::vector<float> part(values.begin() + static_cast<std::ptrdiff_t>(first),
                            values.begin() + static_cast<std::ptrdiff_t>(first + 3'000));
    std::sort(part.begin(), part.end());
    summarize_sorted(part, 128, points, weights);
    settled.add_summary_unsettled(points, weights);
    EXPECT_FALSE(settled.empty());
    EXPECT_THROW(settled.quantile(0.5), Error);
    EXPECT_THROW(settled.count(), Error);
    EXPECT_THROW(settled.points(), Error);
  }
  settled.settle();
  settled.settle();  // nothing to do the second time
  EXPECT_EQ(settled.points(), one_by_one.points());
  EXPECT_EQ(settled.weights(), one_by_one.weights());
  EXPECT_EQ(settled.count(), one_by_one.count());
  for (int k = 0; k <= 100; ++k)
    EXPECT_EQ(settled.quantile(k / 100.0), one_by_one.quantile(k / 100.0));
  // Nothing added (an empty summary included) leaves it settled.
  QuantileSketch empty(16);
  empty.add_summary_unsettled({}, {});
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.count(), 0.0);
}

TEST(QuantileSketch, EmptyInvalidAndInfinite) {
  QuantileSketch empty;
  EXPECT_TRUE(std::isnan(empty.quantile(0.5)));
  EXPECT_EQ(empty.cdf(1.0), 0.0);
  EXPECT_EQ(empty.count(), 0.0);
  EXPECT_THROW(QuantileSketch(1), Error);
  QuantileSketch s(8);
  const std::vector<float> p = {1, 2};
  EXPECT_THROW(s.add_summary(p, std::vector<double>{1.0}), Error);
  EXPECT_THROW(s.add_summary(std::vector<float>{2, 1}, std::vector<double>{1, 1}), Error);
  EXPECT_THROW(s.add_summary(std::vector<float>{kNaN}, std::vector<double>{1}), Error);
  EXPECT_THROW(s.add_summary(p, std::vector<double>{1, 0}), Error);
  EXPECT_EQ(s.count(), 0.0);
  s.add_summary(std::vector<float>{-kInf, 0, kInf}, std::vector<double>{1, 1, 1});
  EXPECT_EQ(s.quantile(0), -kInf);
  EXPECT_EQ(s.quantile(0.5), 0.0);
  EXPECT_EQ(s.quantile(1), kInf);
  EXPECT_FALSE(std::isnan(s.quantile(0.3)));
  EXPECT_TRUE(std::isnan(s.quantile(std::nan(""))));
  EXPECT_EQ(s.quantile(-3), -kInf);  // clamped
}

TEST(QuantileSketch, SummarizeSortedTakesEvenlySpacedOrderStatistics) {
  std::vector<float> sorted(10'001);
  for (std::size_t i = 0; i < sorted.size(); ++i) sorted[i] = static_cast<float>(i);
  std::vector<float> points;
  std::vector<double> weights;
  summarize_sorted(sorted, 101, points, weights);
  ASSERT_EQ(points.size(), 101u);
  double total = 0;
  for (std::size_t j = 0; j < points.size(); ++j) {
    EXPECT_EQ(points[j], static_cast<float>(j * 100));
    total += weights[j];
  }
  EXPECT_EQ(total, 10'001.0);
  EXPECT_EQ(weights.front(), 51.0);  // ranks 0..50
  EXPECT_EQ(weights[1], 100.0);      // ranks 51..150
  summarize_sorted(std::span<const float>(sorted.data(), 5), 101, points, weights);
  EXPECT_EQ(points, (std::vector<float>{0, 1, 2, 3, 4}));
  EXPECT_EQ(weights, (std::vector<double>(5, 1.0)));
  // Uneven n: every weight positive, the sum exact.
  for (std::int64_t n : {102, 103, 1000, 4097}) {
    summarize_sorted(std::span<const float>(sorted.data(), static_cast<std::size_t>(n)), 101, points, weights);
    double sum = 0;
    for (double w : weights) {
      EXPECT_GT(w, 0.0);
      sum += w;
    }
    EXPECT_EQ(sum, static_cast<double>(n));
    EXPECT_EQ(summary_rank(100, n, 101), n - 1);
  }
}

// ---------------------------------------------------------------------------------------------
// The profile on each device.

struct Table {
  std::int64_t rows = 0;
  std::vector<ColumnInfo> columns;
  std::vector<float> values;  // column-major
  std::vector<std::uint8_t> keep;
};

// Seeded columns of every kind: normal, heavy-tailed with -0/+0 and infinities, integers with few
// distinct values, all-missing, and categorical columns with 1, 3, 20 and 5000 labels (the last one
// too many for the GPU's shared-memory histogram).
Table make_table(std::int64_t rows, std::int64_t cols, std::uint64_t seed, bool masked) {
  Table t;
  t.rows = rows;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> normal(0, 1);
  t.values.resize(static_cast<std::size_t>(rows * cols));
  for (std::int64_t c = 0; c < cols; ++c) {
    ColumnInfo info;
    info.name = "c" + std::to_string(c);
    const int kind = static_cast<int>(c % 6);
    static constexpr std::int64_t kLabels[] = {3, 5000, 1, 20};
    const std::int64_t labels = kLabels[(c / 6) % 4];
    if (kind == 3) {
      info.type = ColumnType::categorical;
      for (std::int64_t k = 0; k < labels; ++k) info.categories.push_back("l" + std::to_string(k));
    }
    float* col = t.values.data() + c * rows;
    for (std::int64_t r = 0; r < rows; ++r) {
      const bool missing = u(rng) < 0.05;
      float v = 0;
      switch (kind) {
        case 0: v = static_cast<float>(1e3 * c + normal(rng)); break;
        case 1: {
          const double x = normal(rng);
          v = static_cast<float>(x * x * x);
          if (u(rng) < 0.01) v = u(rng) < 0.5 ? -0.0f : 0.0f;
          if (u(rng) < 0.001) v = u(rng) < 0.5 ? -kInf : kInf;
          break;
        }
        case 2: v = static_cast<float>(static_cast<int>(u(rng) * 7)); break;
        case 3: v = static_cast<float>(static_cast<std::int64_t>(u(rng) * labels)); break;
        case 4: v = kNaN; break;
        case 5: v = static_cast<float>(std::exp(3 * normal(rng))); break;
      }
      if (missing) v = (kind == 3 && u(rng) < 0.5) ? -1.0f : -kNaN;  // -NaN, as x86 makes it
      col[r] = v;
    }
    t.columns.push_back(info);
  }
  if (masked) {
    t.keep.resize(static_cast<std::size_t>(rows));
    for (auto& k : t.keep) k = u(rng) < 0.7 ? 1 : 0;
  }
  return t;
}

// Profiles the table in blocks of `block_rows` (with one workspace, first dirtied by a larger
// unrelated block, so stale scratch would show).
DataProfile run_profile(const DeviceContext& ctx, const Table& t, std::int64_t block_rows,
                        const ProfileOptions& options) {
  const std::int64_t cols = static_cast<std::int64_t>(t.columns.size());
  ProfileWorkspace workspace;
  {
    const Table poison = make_table(t.rows + 17, cols, 999, !t.keep.empty());
    DataProfile scratch = make_profile(poison.columns, options);  // same layout: scratch is reused
    profile_block(ctx, ColumnBlockView{poison.values.data(), poison.rows, cols}, poison.keep, scratch,
                  options, &workspace);
  }
  DataProfile profile = make_profile(t.columns, options);
  std::vector<float> block;
  for (std::int64_t first = 0; first < t.rows; first += block_rows) {
    const std::int64_t n = std::min(block_rows, t.rows - first);
    block.resize(static_cast<std::size_t>(n * cols));
    for (std::int64_t c = 0; c < cols; ++c) {
      std::copy_n(t.values.data() + c * t.rows + first, n, block.data() + c * n);
    }
    std::span<const std::uint8_t> keep;
    if (!t.keep.empty()) keep = std::span<const std::uint8_t>(t.keep.data() + first, static_cast<std::size_t>(n));
    profile_block(ctx, ColumnBlockView{block.data(), n, cols}, keep, profile, options, &workspace);
  }
  return profile;
}

// Checks a profile against references computed here from the raw values.
void expect_matches_reference(const DataProfile& profile, const Table& t, int capacity, double rank_tolerance) {
  std::int64_t kept = 0;
  for (std::int64_t r = 0; r < t.rows; ++r) kept += t.keep.empty() || t.keep[static_cast<std::size_t>(r)];
  EXPECT_EQ(profile.rows, kept);
  for (std::size_t c = 0; c < t.columns.size(); ++c) {
    SCOPED_TRACE("column " + t.columns[c].name);
    const ColumnProfile& p = profile.columns[c];
    EXPECT_EQ(p.name, t.columns[c].name);
    const float* col = t.values.data() + c * static_cast<std::size_t>(t.rows);
    std::vector<float> values;
    std::int64_t missing = 0;
    std::vector<std::int64_t> counts(t.columns[c].categories.size(), 0);
    for (std::int64_t r = 0; r < t.rows; ++r) {
      if (!t.keep.empty() && !t.keep[static_cast<std::size_t>(r)]) continue;
      const float v = col[r];
      if (std::isnan(v) || (p.type == ColumnType::categorical && v < 0)) {
        ++missing;
      } else if (p.type == ColumnType::categorical) {
        ++counts[static_cast<std::size_t>(v)];
      } else {
        values.push_back(v);
      }
    }
    if (p.type == ColumnType::categorical) {
      EXPECT_EQ(p.categorical.counts, counts);
      EXPECT_EQ(p.categorical.missing, missing);
      EXPECT_EQ(p.categorical.labels, t.columns[c].categories);
      continue;
    }
    std::sort(values.begin(), values.end());
    const ColumnStats& s = p.numeric.stats;
    EXPECT_EQ(s.count, static_cast<std::int64_t>(values.size()));
    EXPECT_EQ(s.missing, missing);
    EXPECT_EQ(p.numeric.sketch.count(), static_cast<double>(values.size()));
    if (values.empty()) {
      EXPECT_TRUE(std::isnan(p.numeric.sketch.quantile(0.5)));
      continue;
    }
    EXPECT_EQ(s.min, values.front());
    EXPECT_EQ(s.max, values.back());
    if (std::isfinite(values.front()) && std::isfinite(values.back())) {
      long double sum = 0, ss = 0;
      for (float v : values) sum += v;
      const long double mean = sum / values.size();
      for (float v : values) ss += (v - mean) * (v - mean);
      const double sd = std::sqrt(static_cast<double>(ss / values.size()));
      EXPECT_NEAR(s.mean, static_cast<double>(mean), 1e-9 * sd + 1e-12 * std::fabs(static_cast<double>(mean)));
      EXPECT_NEAR(variance(s), static_cast<double>(ss / values.size()), 1e-7 * sd * sd + 1e-20);
    }
    const QuantileSketch& sketch = p.numeric.sketch;
    EXPECT_EQ(sketch.quantile(0), values.front());
    EXPECT_EQ(sketch.quantile(1), values.back());
    if (values.size() <= static_cast<std::size_t>(capacity)) {
      for (double q : {0.1, 0.25, 0.5, 0.75, 0.99}) {
        const double exact = exact_quantile(values, q);
        if (std::isfinite(exact)) EXPECT_NEAR(sketch.quantile(q), exact, 1e-9 * (1 + std::fabs(exact)));
      }
    } else {
      for (double q : {0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99}) {
        EXPECT_LE(rank_error(values, q, sketch.quantile(q)), rank_tolerance) << "q " << q;
      }
    }
  }
}

// GPU against the CPU reference: counts and sketches exactly (the same order statistics), stats
// within rounding of the different summation order.
void expect_same_profile(const DataProfile& device, const DataProfile& cpu) {
  EXPECT_EQ(device.rows, cpu.rows);
  ASSERT_EQ(device.columns.size(), cpu.columns.size());
  for (std::size_t c = 0; c < cpu.columns.size(); ++c) {
    SCOPED_TRACE("column " + cpu.columns[c].name);
    const ColumnProfile& d = device.columns[c];
    const ColumnProfile& h = cpu.columns[c];
    if (h.type == ColumnType::categorical) {
      EXPECT_EQ(d.categorical.counts, h.categorical.counts);
      EXPECT_EQ(d.categorical.missing, h.categorical.missing);
      continue;
    }
    const ColumnStats& a = d.numeric.stats;
    const ColumnStats& b = h.numeric.stats;
    EXPECT_EQ(a.count, b.count);
    EXPECT_EQ(a.missing, b.missing);
    EXPECT_EQ(a.min, b.min);
    EXPECT_EQ(a.max, b.max);
    if (std::isfinite(b.mean)) {
      const double sd = std::sqrt(variance(b));
      EXPECT_NEAR(a.mean, b.mean, 1e-9 * sd + 1e-12 * std::fabs(b.mean));
      EXPECT_NEAR(variance(a), variance(b), 1e-7 * variance(b) + 1e-20);
    }
    EXPECT_EQ(d.numeric.sketch.points(), h.numeric.sketch.points());
    EXPECT_EQ(d.numeric.sketch.weights(), h.numeric.sketch.weights());
  }
}

// The CPU profile as its definition reads, computed here the plain way: per block, each numeric
// column folded with add_value in four runs of rows (r mod 4) merged in order, and its non-missing
// kept values (-0 as +0) sorted with std::sort and summarised with summarize_sorted.
DataProfile reference_cpu_profile(const Table& t, std::int64_t block_rows,
                                  const ProfileOptions& options) {
  DataProfile profile = make_profile(t.columns, options);
  std::vector<float> points;
  std::vector<double> weights;
  for (std::int64_t first = 0; first < t.rows; first += block_rows) {
    const std::int64_t n = std::min(block_rows, t.rows - first);
    for (std::size_t c = 0; c < t.columns.size(); ++c) {
      if (t.columns[c].type == ColumnType::categorical) continue;
      const float* col = t.values.data() + c * static_cast<std::size_t>(t.rows) + first;
      ColumnAccumulator runs[4];
      std::vector<float> sorted;
      for (std::int64_t r = 0; r < n; ++r) {
        if (!t.keep.empty() && !t.keep[static_cast<std::size_t>(first + r)]) continue;
        add_value(runs[r % 4], col[r]);
        if (!std::isnan(col[r])) sorted.push_back(col[r] == 0.0f ? 0.0f : col[r]);
      }
      ColumnStats stats = finish(runs[0]);
      for (int k = 1; k < 4; ++k) stats = merge_stats(stats, finish(runs[k]));
      NumericProfile& numeric = profile.columns[c].numeric;
      numeric.stats = merge_stats(numeric.stats, stats);
      if (sorted.empty()) continue;
      std::sort(sorted.begin(), sorted.end());
      summarize_sorted(sorted, options.sketch_capacity, points, weights);
      numeric.sketch.add_summary(points, weights);
    }
  }
  return profile;
}

// The radix sort on keys, the statistics folded in registers and the equal ranges found by
// galloping are only faster ways to the same profile: every bit of the stats and sketches must
// be the reference's. Blocks of fewer and of more than 1024 values (std::sort and radix), row
// counts that are not multiples of 4, with and without a mask; columns with -0/+0, infinities,
// -NaN, small integers (constant low digits), a narrow range (a constant top digit), all missing,
// and one constant value (every radix pass skipped).
TEST(ProfileCpu, IsBitForBitTheAddValueAndStdSortReference) {
  const DeviceContext cpu = DeviceContext::cpu();
  struct Case {
    std::int64_t rows, block_rows;
    bool masked;
  };
  for (const Case& k :
       {Case{1000, 1000, false}, Case{3001, 3001, true}, Case{70'001, 65'536, false},
        Case{70'001, 65'536, true}, Case{12'345, 4'099, true}}) {
    for (const int capacity : {64, 1024}) {
      SCOPED_TRACE("rows " + std::to_string(k.rows) + " blocks of " + std::to_string(k.block_rows) +
                   (k.masked ? " masked" : "") + ", capacity " + std::to_string(capacity));
      Table t = make_table(k.rows, 13, 7, k.masked);
      float* constant = t.values.data() + 12 * static_cast<std::size_t>(t.rows);
      for (std::int64_t r = 0; r < t.rows; ++r) constant[r] = std::isnan(constant[r]) ? kNaN : 2.5f;
      ProfileOptions options;
      options.sketch_capacity = capacity;
      const DataProfile expected = reference_cpu_profile(t, k.block_rows, options);
      const DataProfile profile = run_profile(cpu, t, k.block_rows, options);
      for (std::size_t c = 0; c < t.columns.size(); ++c) {
        if (t.columns[c].type == ColumnType::categorical) continue;
        SCOPED_TRACE("column " + t.columns[c].name);
        const ColumnStats& a = profile.columns[c].numeric.stats;
        const ColumnStats& b = expected.columns[c].numeric.stats;
        EXPECT_EQ(a.count, b.count);
        EXPECT_EQ(a.missing, b.missing);
        EXPECT_EQ(std::bit_cast<std::uint64_t>(a.mean), std::bit_cast<std::uint64_t>(b.mean));
        EXPECT_EQ(std::bit_cast<std::uint64_t>(a.m2), std::bit_cast<std::uint64_t>(b.m2));
        EXPECT_EQ(std::bit_cast<std::uint32_t>(a.min), std::bit_cast<std::uint32_t>(b.min));
        EXPECT_EQ(std::bit_cast<std::uint32_t>(a.max), std::bit_cast<std::uint32_t>(b.max));
        const std::vector<float> points = profile.columns[c].numeric.sketch.points();
        const std::vector<float> expected_points = expected.columns[c].numeric.sketch.points();
        ASSERT_EQ(points.size(), expected_points.size());
        for (std::size_t i = 0; i < points.size(); ++i) {
          EXPECT_EQ(std::bit_cast<std::uint32_t>(points[i]),
                    std::bit_cast<std::uint32_t>(expected_points[i]))
              << "point " << i;
        }
        EXPECT_EQ(profile.columns[c].numeric.sketch.weights(),
                  expected.columns[c].numeric.sketch.weights());
      }
    }
  }
}

// profile_table adds each block's summaries to the sketches unsettled and settles them once at its
// end (QuantileSketch::add_summary_unsettled), each column's on a core of the team: the stats and
// sketches must still be every bit the reference's, which adds and settles block by block, over a
// file of many blocks whose summaries are compacted level after level, with a mask.
TEST(ProfileCpu, TableSettledOnceIsBitForBitTheReference) {
  const DeviceContext cpu = DeviceContext::cpu();
  const test::TemporaryDirectory dir;
  const fs::path path = dir.file("table.h5");
  Table t = make_table(60'001, 8, 21, true);  // c3 categorical (3 labels), c4 all missing
  {
    std::vector<ColumnSpec> specs;
    for (const ColumnInfo& c : t.columns) {
      specs.push_back({c.name, c.type == ColumnType::categorical ? StoredType::categorical_codes
                                                                 : StoredType::float32});
    }
    ColumnarWriteOptions write;
    write.chunk_rows = 1000;
    ColumnarWriter writer(path, specs, write);
    for (std::size_t c = 0; c < t.columns.size(); ++c) {
      const std::span<const float> column(t.values.data() + c * static_cast<std::size_t>(t.rows),
                                          static_cast<std::size_t>(t.rows));
      if (t.columns[c].type != ColumnType::categorical) {
        writer.append_numeric(c, column);
        continue;
      }
      std::vector<std::int32_t> codes(column.size());
      for (std::size_t r = 0; r < codes.size(); ++r) {
        codes[r] =
            std::isnan(column[r]) || column[r] < 0 ? -1 : static_cast<std::int32_t>(column[r]);
      }
      writer.append_codes(c, codes);
      writer.set_categories(c, t.columns[c].categories);
    }
    writer.close();
  }
  TableReadOptions read;
  read.block_rows = 2000;
  TableReader reader(path, read);
  ASSERT_GT(t.rows / reader.block_rows(), 16);  // several levels of each sketch
  ProfileOptions options;
  options.sketch_capacity = 64;
  // A mask that drops rows, then one that keeps every row (profiled as if there were no mask).
  const std::vector<std::uint8_t> dropping = t.keep;
  for (const bool every_row : {false, true}) {
    SCOPED_TRACE(every_row ? "mask of every row" : "mask dropping rows");
    t.keep = every_row ? std::vector<std::uint8_t>(dropping.size(), 1) : dropping;
    RowMask keep(t.rows);
    for (std::int64_t r = 0; r < t.rows; ++r) keep.set(r, t.keep[static_cast<std::size_t>(r)] != 0);
    const DataProfile profile = profile_table(cpu, reader, &keep, options);
    const DataProfile expected = reference_cpu_profile(t, reader.block_rows(), options);
    EXPECT_EQ(profile.rows, keep.count());
    for (std::size_t c = 0; c < t.columns.size(); ++c) {
      if (t.columns[c].type == ColumnType::categorical) continue;
      SCOPED_TRACE("column " + t.columns[c].name);
      const NumericProfile& a = profile.columns[c].numeric;
      const NumericProfile& b = expected.columns[c].numeric;
      EXPECT_EQ(a.stats.count, b.stats.count);
      EXPECT_EQ(std::bit_cast<std::uint64_t>(a.stats.mean),
                std::bit_cast<std::uint64_t>(b.stats.mean));
      EXPECT_EQ(std::bit_cast<std::uint64_t>(a.stats.m2), std::bit_cast<std::uint64_t>(b.stats.m2));
      const std::vector<float> points = a.sketch.points(), expected_points = b.sketch.points();
      ASSERT_EQ(points.size(), expected_points.size());
      for (std::size_t i = 0; i < points.size(); ++i) {
        EXPECT_EQ(std::bit_cast<std::uint32_t>(points[i]),
                  std::bit_cast<std::uint32_t>(expected_points[i]))
            << i;
      }
      EXPECT_EQ(a.sketch.weights(), b.sketch.weights());
      EXPECT_EQ(a.sketch.count(), b.sketch.count());
    }
  }
}

class ProfileOnDevice : public testing::TestWithParam<DeviceKind> {};

TEST_P(ProfileOnDevice, MatchesReferencesOverAwkwardSizes) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const DeviceContext cpu = DeviceContext::cpu();
  struct Case {
    std::int64_t rows, cols, block_rows;
    bool masked;
  };
  const Case cases[] = {{1, 1, 1, false},         {1, 300, 1, true},         {11, 7, 4, true},
                        {101, 300, 101, false},    {101, 24, 50, true},       {12345, 7, 12345, false},
                        {12345, 30, 5000, true},   {1'000'003, 2, 400'000, true}};
  ProfileOptions options;
  options.sketch_capacity = 256;
  std::uint64_t seed = 11;
  for (const Case& k : cases) {
    SCOPED_TRACE("rows " + std::to_string(k.rows) + " cols " + std::to_string(k.cols) + " blocks of " +
                 std::to_string(k.block_rows) + (k.masked ? " masked" : ""));
    const Table t = make_table(k.rows, k.cols, ++seed, k.masked);
    const DataProfile profile = run_profile(ctx, t, k.block_rows, options);
    expect_matches_reference(profile, t, options.sketch_capacity, 3.0 / options.sketch_capacity);
    if (GetParam() != DeviceKind::cpu) expect_same_profile(profile, run_profile(cpu, t, k.block_rows, options));
  }
}

TEST_P(ProfileOnDevice, IsDeterministic) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const Table t = make_table(20'000, 13, 3, true);
  const DataProfile a = run_profile(ctx, t, 7'000, {});
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const DataProfile b = run_profile(ctx, t, 7'000, {});
  omp_set_num_threads(threads);
  ASSERT_EQ(a.columns.size(), b.columns.size());
  for (std::size_t c = 0; c < a.columns.size(); ++c) {
    const auto& x = a.columns[c];
    const auto& y = b.columns[c];
    EXPECT_EQ(std::bit_cast<std::uint64_t>(x.numeric.stats.mean), std::bit_cast<std::uint64_t>(y.numeric.stats.mean));
    EXPECT_EQ(std::bit_cast<std::uint64_t>(x.numeric.stats.m2), std::bit_cast<std::uint64_t>(y.numeric.stats.m2));
    EXPECT_EQ(x.numeric.sketch.points(), y.numeric.sketch.points());
    EXPECT_EQ(x.numeric.sketch.weights(), y.numeric.sketch.weights());
    EXPECT_EQ(x.categorical.counts, y.categorical.counts);
  }
}

TEST_P(ProfileOnDevice, EmptyAndFullyMaskedBlocksAddNothing) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  Table t = make_table(50, 7, 4, true);
  std::fill(t.keep.begin(), t.keep.end(), 0);
  DataProfile profile = make_profile(t.columns);
  profile_block(ctx, ColumnBlockView{t.values.data(), 50, 7}, t.keep, profile);
  profile_block(ctx, ColumnBlockView{nullptr, 0, 7}, {}, profile);
  EXPECT_EQ(profile.rows, 0);
  for (const auto& c : profile.columns) {
    EXPECT_EQ(c.numeric.stats.count + c.numeric.stats.missing, 0);
    EXPECT_EQ(c.numeric.sketch.count(), 0.0);
    EXPECT_EQ(c.categorical.missing, 0);
    for (auto n : c.categorical.counts) EXPECT_EQ(n, 0);
  }
}

TEST_P(ProfileOnDevice, CategoryCodeBeyondLabelsNamesTheColumn) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  Table t = make_table(1000, 4, 5, false);  // c3 is categorical with 3 labels
  DataProfile profile = make_profile(t.columns);
  profile_block(ctx, ColumnBlockView{t.values.data(), 1000, 4}, {}, profile);
  const DataProfile before = profile;
  t.values[3 * 1000 + 500] = 3.0f;
  t.values[3 * 1000 + 600] = 7.0f;
  try {
    profile_block(ctx, ColumnBlockView{t.values.data(), 1000, 4}, {}, profile);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'c3'"), std::string::npos) << message;
    EXPECT_NE(message.find("code 7"), std::string::npos) << message;
  }
  EXPECT_EQ(profile.rows, before.rows);
  EXPECT_EQ(profile.columns[3].categorical.counts, before.columns[3].categorical.counts);
  EXPECT_EQ(profile.columns[0].numeric.sketch.count(), before.columns[0].numeric.sketch.count());
  // A masked-out bad code is not an error.
  std::vector<std::uint8_t> keep(1000, 1);
  keep[500] = keep[600] = 0;
  EXPECT_NO_THROW(profile_block(ctx, ColumnBlockView{t.values.data(), 1000, 4}, keep, profile));
  EXPECT_THROW(profile_block(ctx, ColumnBlockView{t.values.data(), 1000, 3}, {}, profile), Error);
}

// profile_table over a small columnar HDF5 file read in several blocks, with a mask.
TEST_P(ProfileOnDevice, ProfilesAnHdf5TableWithAMask) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const test::TemporaryDirectory dir;
  const fs::path path = dir.file("table.h5");
  const std::int64_t rows = 1000;
  std::vector<float> age(rows);
  std::vector<double> income(rows);
  std::vector<std::int32_t> city(rows);
  std::mt19937_64 rng(77);
  std::normal_distribution<double> normal(40, 12);
  for (std::int64_t r = 0; r < rows; ++r) {
    age[r] = r % 17 == 0 ? kNaN : static_cast<float>(normal(rng));
    income[r] = 1000.0 + static_cast<double>((r * 7919) % 1000);
    city[r] = r % 11 == 0 ? -1 : static_cast<std::int32_t>((r * r) % 3);
  }
  {
    ColumnarWriteOptions write;
    write.chunk_rows = 64;
    ColumnarWriter writer(path, {{"age", StoredType::float32}, {"income", StoredType::float64},
                                 {"city", StoredType::categorical_codes}}, write);
    writer.append_numeric(0, age);
    writer.append_numeric(1, income);
    writer.append_codes(2, city);
    writer.set_categories(2, {"paris", "lyon", "nice"});
    writer.close();
  }
  RowMask keep(rows);
  for (std::int64_t r = 0; r < rows; r += 3) keep.set(r, false);
  TableReadOptions read;
  read.block_rows = 100;
  TableReader reader(path, read);
  ASSERT_LT(reader.block_rows(), rows);  // several blocks
  const DataProfile profile = profile_table(ctx, reader, &keep);

  EXPECT_EQ(profile.rows, keep.count());
  ASSERT_EQ(profile.columns.size(), 3u);
  const ColumnProfile& c = profile.column("city");
  EXPECT_EQ(c.type, ColumnType::categorical);
  EXPECT_EQ(c.categorical.labels, (std::vector<std::string>{"paris", "lyon", "nice"}));
  std::vector<std::int64_t> counts(3, 0);
  std::int64_t city_missing = 0, age_missing = 0;
  std::vector<float> ages, incomes;
  for (std::int64_t r = 0; r < rows; ++r) {
    if (!keep.test(r)) continue;
    if (city[r] < 0) {
      ++city_missing;
    } else {
      ++counts[static_cast<std::size_t>(city[r])];
    }
    if (std::isnan(age[r])) {
      ++age_missing;
    } else {
      ages.push_back(age[r]);
    }
    incomes.push_back(static_cast<float>(income[r]));
  }
  EXPECT_EQ(c.categorical.counts, counts);
  EXPECT_EQ(c.categorical.missing, city_missing);
  const ColumnProfile& a = profile.column("age");
  EXPECT_EQ(a.numeric.stats.count, static_cast<std::int64_t>(ages.size()));
  EXPECT_EQ(a.numeric.stats.missing, age_missing);
  std::sort(ages.begin(), ages.end());
  std::sort(incomes.begin(), incomes.end());
  // Fewer values than the sketch's capacity: the quantiles are exact.
  for (double q : {0.0, 0.05, 0.5, 0.95, 1.0}) {
    EXPECT_NEAR(a.numeric.sketch.quantile(q), exact_quantile(ages, q), 1e-9) << "q " << q;
    EXPECT_NEAR(profile.column("income").numeric.sketch.quantile(q), exact_quantile(incomes, q), 1e-9);
  }
  try {
    profile.column("nope");
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("age, income, city"), std::string::npos) << e.what();
  }
  RowMask short_mask(rows - 1);
  EXPECT_THROW(profile_table(ctx, reader, &short_mask), Error);
  // Without a mask every row counts.
  EXPECT_EQ(profile_table(ctx, reader).rows, rows);
}

// profile_table's categorical columns name each label once (a label stored twice is one category
// of the reader's), and say so: fit_preparation then takes their counts as they stand.
TEST_P(ProfileOnDevice, ProfileOfATableHasDistinctLabels) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const test::TemporaryDirectory dir;
  const fs::path path = dir.file("table.h5");
  const std::vector<std::int32_t> city = {0, 1, 2, 2, -1, 0, 2, 1, 2, 0};
  {
    ColumnarWriter writer(path, {{"x", StoredType::float32}, {"city", StoredType::categorical_codes}});
    writer.append_numeric(0, std::vector<float>(city.size(), 1.0f));
    writer.append_codes(1, city);
    writer.set_categories(1, {"paris", "lyon", "paris"});  // "paris" stored twice
    writer.close();
  }
  TableReader reader(path);
  const DataProfile profile = profile_table(ctx, reader);
  const CategoricalProfile& c = profile.column("city").categorical;
  EXPECT_TRUE(c.labels_distinct);
  EXPECT_EQ(c.labels, (std::vector<std::string>{"paris", "lyon"}));
  EXPECT_EQ(c.counts, (std::vector<std::int64_t>{7, 2}));  // "paris" under both of its codes
  EXPECT_EQ(c.missing, 1);
  EXPECT_FALSE(profile.column("x").categorical.labels_distinct);  // numeric: no labels
  // With a column left out, and with the labels lent later (not copied), it still says so.
  ProfileOptions options;
  options.skip_columns = {"x"};
  options.copy_labels = false;
  const DataProfile part = profile_table(ctx, reader, nullptr, options);
  EXPECT_TRUE(part.column("city").categorical.labels_distinct);
  EXPECT_TRUE(part.column("city").categorical.labels.empty());
  EXPECT_EQ(part.column("city").categorical.counts, (std::vector<std::int64_t>{7, 2}));
  // A profile made from column infos (which may name a label twice) is not marked.
  EXPECT_FALSE(make_profile(reader.columns()).column("city").categorical.labels_distinct);
}

LATHE_INSTANTIATE_FOR_DEVICES(ProfileOnDevice);

}  // namespace
}  // namespace lathe
