// The epoch permutation (kernels/epoch_permutation.h): a bijection of [0, rows) for every size,
// fixed by (rows, seed, epoch), different across seeds and epochs, and well mixed.
#include "kernels/epoch_permutation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace lathe {
namespace {

std::vector<std::int64_t> materialize(const EpochPermutation& p) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(p.rows));
  for (std::int64_t i = 0; i < p.rows; ++i) order[static_cast<std::size_t>(i)] = epoch_row(p, i);
  return order;
}

TEST(EpochPermutation, IsABijectionForAwkwardSizes) {
  for (std::int64_t rows : {1, 2, 3, 4, 5, 7, 16, 17, 255, 256, 257, 1000, 4097, 65535, 65537, 300001}) {
    SCOPED_TRACE("rows " + std::to_string(rows));
    const std::vector<std::int64_t> order = materialize(make_epoch_permutation(rows, 42, 3));
    std::vector<char> seen(static_cast<std::size_t>(rows), 0);
    for (std::int64_t r : order) {
      ASSERT_GE(r, 0);
      ASSERT_LT(r, rows);
      ASSERT_FALSE(seen[static_cast<std::size_t>(r)]) << "row " << r << " visited twice";
      seen[static_cast<std::size_t>(r)] = 1;
    }
  }
}

TEST(EpochPermutation, SeedAndEpochChooseTheOrder) {
  const std::int64_t rows = 10'000;
  const auto a = materialize(make_epoch_permutation(rows, 7, 1));
  EXPECT_EQ(a, materialize(make_epoch_permutation(rows, 7, 1)));
  EXPECT_NE(a, materialize(make_epoch_permutation(rows, 7, 2)));
  EXPECT_NE(a, materialize(make_epoch_permutation(rows, 8, 1)));
  // A fixed point at a given seed: the same first rows on every machine (the formula is integer).
  const auto p = make_epoch_permutation(rows, 7, 1);
  EXPECT_EQ(epoch_row(p, 0), a[0]);
}

// Well mixed: position and row are uncorrelated, consecutive positions land far apart, and each
// tenth of the rows is spread evenly over the epoch's tenths (a chi-square on a 10 x 10 table).
TEST(EpochPermutation, MixesTheRows) {
  const std::int64_t rows = 100'000;
  const auto order = materialize(make_epoch_permutation(rows, 1, 1));
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  std::int64_t near = 0;
  std::vector<double> table(100, 0.0);
  for (std::int64_t i = 0; i < rows; ++i) {
    const double x = static_cast<double>(i), y = static_cast<double>(order[static_cast<std::size_t>(i)]);
    sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
    if (i > 0 && std::llabs(order[static_cast<std::size_t>(i)] - order[static_cast<std::size_t>(i - 1)]) < 100) ++near;
    table[static_cast<std::size_t>(i * 10 / rows * 10 + order[static_cast<std::size_t>(i)] * 10 / rows)] += 1;
  }
  const double n = static_cast<double>(rows);
  const double corr = (sxy - sx * sy / n) / std::sqrt((sxx - sx * sx / n) * (syy - sy * sy / n));
  EXPECT_LT(std::fabs(corr), 0.02);
  EXPECT_LT(near, rows / 200);  // random: about rows * 200 / rows = 200
  double chi2 = 0;
  for (double observed : table) chi2 += (observed - n / 100) * (observed - n / 100) / (n / 100);
  EXPECT_LT(chi2, 150.0);  // 81 degrees of freedom: the 99.99th percentile is about 135
}

}  // namespace
}  // namespace lathe
