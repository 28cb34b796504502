#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
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
