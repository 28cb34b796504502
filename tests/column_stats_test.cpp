#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "runtime/column_summary.h"
#include "runtime/error.h"
#include "tests/test_devices.h"

namespace lathe {
namespace {

class ColumnStatsOnDevice : public testing::TestWithParam<DeviceKind> {};

// A naive two-pass reference in long double, independent of the Welford/Chan formulas under test.
struct Reference {
  std::int64_t count = 0, missing = 0;
  long double mean = 0, var = 0;
  float min = INFINITY, max = -INFINITY;
};

Reference reference(const float* v, std::int64_t n) {
  Reference r;
  long double sum = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    if (std::isnan(v[i])) { ++r.missing; continue; }
    ++r.count;
    sum += v[i];
    r.min = std::min(r.min, v[i]);
    r.max = std::max(r.max, v[i]);
  }
  if (r.count == 0) return r;
  r.mean = sum / r.count;
  long double ss = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    if (!std::isnan(v[i])) ss += (v[i] - r.mean) * (v[i] - r.mean);
  }
  r.var = ss / r.count;
  return r;
}

TEST_P(ColumnStatsOnDevice, MatchesTwoPassReferenceOverAwkwardSizes) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  std::mt19937_64 rng(7);
  for (std::int64_t rows : {1, 4, 11, 101, 4096, 4097, 12345, 65536, 200003}) {
    for (std::int64_t cols : {1, 2, 7, 33}) {
      if (rows * cols > 2'000'000) continue;
      std::vector<float> values(static_cast<std::size_t>(rows * cols));
      for (std::int64_t c = 0; c < cols; ++c) {
        // Very different scales and offsets per column; some missing values; one all-missing column.
        const double scale = std::pow(10.0, static_cast<double>(c % 7) - 3);
        const double offset = (c % 3 == 0) ? 1e6 : -5.0;
        std::normal_distribution<double> normal(offset, scale);
        std::uniform_real_distribution<double> u(0, 1);
        for (std::int64_t r = 0; r < rows; ++r) {
          const bool missing = (c == 5) || u(rng) < 0.05;
          values[c * rows + r] = missing ? std::numeric_limits<float>::quiet_NaN()
                                         : static_cast<float>(normal(rng));
        }
      }
      std::vector<ColumnStats> out(static_cast<std::size_t>(cols));
      for (auto& s : out) s.count = -12345;  // poison: every entry must be written
      compute_column_stats(ctx, ColumnBlockView{values.data(), rows, cols}, out);
      for (std::int64_t c = 0; c < cols; ++c) {
        const Reference ref = reference(values.data() + c * rows, rows);
        SCOPED_TRACE("rows " + std::to_string(rows) + " cols " + std::to_string(cols) + " col " +
                     std::to_string(c));
        EXPECT_EQ(out[c].count, ref.count);
        EXPECT_EQ(out[c].missing, ref.missing);
        if (ref.count == 0) continue;
        EXPECT_EQ(out[c].min, ref.min);
        EXPECT_EQ(out[c].max, ref.max);
        const double spread = std::sqrt(static_cast<double>(ref.var)) + 1e-30;
        EXPECT_NEAR(out[c].mean, static_cast<double>(ref.mean), 1e-9 * spread + 1e-12 * std::fabs((double)ref.mean));
        EXPECT_NEAR(variance(out[c]), static_cast<double>(ref.var), 1e-7 * static_cast<double>(ref.var) + 1e-20);
      }
    }
  }
}

TEST_P(ColumnStatsOnDevice, EmptyBlockGivesEmptyStats) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  std::vector<ColumnStats> out(3);
  compute_column_stats(ctx, ColumnBlockView{nullptr, 0, 3}, out);
  for (const auto& s : out) {
    EXPECT_EQ(s.count, 0);
    EXPECT_EQ(s.missing, 0);
  }
}

LATHE_INSTANTIATE_FOR_DEVICES(ColumnStatsOnDevice);

TEST(ColumnStatsMerge, MergeIsTheStatsOfTheUnion) {
  std::vector<float> a = {1, 2, 3, NAN}, b = {10, 20};
  ColumnAccumulator aa, ab, aab;
  for (float v : a) add_value(aa, v);
  for (float v : b) add_value(ab, v);
  for (float v : a) add_value(aab, v);
  for (float v : b) add_value(aab, v);
  const ColumnStats sab = finish(aab);
  const ColumnStats m = merge_stats(finish(aa), finish(ab));
  EXPECT_EQ(m.count, 5);
  EXPECT_EQ(m.missing, 1);
  EXPECT_DOUBLE_EQ(m.mean, 7.2);
  EXPECT_NEAR(m.m2, sab.m2, 1e-9);
  EXPECT_EQ(m.min, 1);
  EXPECT_EQ(m.max, 20);
}

// fold_value written the plain way, with branches: a dropped row is skipped, a NaN counted as
// missing, the first other value taken as the shift.
struct PlainFold {
  std::int64_t count = 0, missing = 0;
  double shift = 0.0, sum = 0.0, sum_sq = 0.0;
  float min = INFINITY, max = -INFINITY;
  void add(float v, bool taken) {
    if (!taken) return;
    if (std::isnan(v)) {
      ++missing;
      return;
    }
    if (count == 0) shift = v;
    const double d = static_cast<double>(v) - shift;
    ++count;
    sum += d;
    sum_sq += d * d;
    min = std::min(min, v);
    max = std::max(max, v);
  }
};

// The branch-free fold gives every bit of the plain one: values with -0/+0, infinities, -NaN and a
// constant run, dropped rows holding anything (NaN, infinities), runs that start missing or
// dropped and runs with nothing counted.
TEST(ColumnStatsFold, IsBitForBitThePlainFoldWithDroppedRowsLeftOut) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(100.0f, 3.0f);
  std::uniform_int_distribution<int> pick(0, 9);
  for (int run = 0; run < 200; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    const int n = run % 37;
    ColumnAccumulator a;
    PlainFold p;
    for (int i = 0; i < n; ++i) {
      float v = normal(rng);
      const float special[] = {nan, -nan, -0.0f, 0.0f};
      const int k = pick(rng);
      if (k < 4) v = special[k];
      if (k == 4 && run % 5 == 0) v = inf;
      if (k == 5 && run % 7 == 0) v = -inf;
      if (k == 6 && run % 3 == 0) v = 2.5f;  // runs of one constant value
      const bool taken = run % 4 == 0 || pick(rng) < 7;
      const bool counted = fold_value(a, v, taken);
      EXPECT_EQ(counted, taken && !std::isnan(v));
      p.add(v, taken);
    }
    const ColumnStats s = finish(a);
    EXPECT_EQ(s.count, p.count);
    EXPECT_EQ(s.missing, p.missing);
    EXPECT_EQ(std::bit_cast<std::uint64_t>(a.sum), std::bit_cast<std::uint64_t>(p.sum));
    EXPECT_EQ(std::bit_cast<std::uint64_t>(a.sum_sq), std::bit_cast<std::uint64_t>(p.sum_sq));
    EXPECT_EQ(std::bit_cast<std::uint32_t>(a.min), std::bit_cast<std::uint32_t>(p.min));
    EXPECT_EQ(std::bit_cast<std::uint32_t>(a.max), std::bit_cast<std::uint32_t>(p.max));
    if (p.count > 0) {
      EXPECT_EQ(std::bit_cast<std::uint64_t>(a.shift), std::bit_cast<std::uint64_t>(p.shift));
    }
  }
}

// add_value is fold_value of a row that is taken.
TEST(ColumnStatsFold, AddValueFoldsATakenRow) {
  ColumnAccumulator a, b;
  for (const float v : {3.0f, NAN, -1.5f, 0.0f, INFINITY}) {
    add_value(a, v);
    fold_value(b, v, true);
    fold_value(b, 7.0f, false);
  }
  const ColumnStats sa = finish(a), sb = finish(b);
  EXPECT_EQ(sa.count, 4);
  EXPECT_EQ(sa.missing, 1);
  EXPECT_EQ(sb.count, sa.count);
  EXPECT_EQ(sb.missing, sa.missing);
  EXPECT_EQ(std::bit_cast<std::uint64_t>(b.sum), std::bit_cast<std::uint64_t>(a.sum));
  EXPECT_EQ(std::bit_cast<std::uint64_t>(b.sum_sq), std::bit_cast<std::uint64_t>(a.sum_sq));
  EXPECT_EQ(sb.min, sa.min);
  EXPECT_EQ(sb.max, sa.max);
}

TEST(DeviceSelection, RejectsUnknownSpecs) {
  EXPECT_THROW(DeviceContext::select("gpu"), Error);
  EXPECT_THROW(DeviceContext::select("cuda:x"), Error);
  EXPECT_EQ(DeviceContext::select("cpu").kind(), DeviceKind::cpu);
}

TEST(DeviceSelection, AutoFallsBackToCpuWithoutGpu) {
  const DeviceContext ctx = DeviceContext::select("auto");
  if (test::gpu_unusable_reason().empty()) {
    EXPECT_EQ(ctx.kind(), DeviceKind::cuda);
  } else {
    EXPECT_EQ(ctx.kind(), DeviceKind::cpu);
    EXPECT_THROW(DeviceContext::select("cuda"), Error);
  }
}

}  // namespace
}  // namespace lathe
