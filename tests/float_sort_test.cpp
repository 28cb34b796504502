// runtime/float_sort.h: the radix sort against std::sort.
#include "runtime/float_sort.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace lathe {
namespace {

TEST(FloatSort, MatchesStdSortBitForBitAcrossSignsScalesAndTies) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const std::size_t n : {std::size_t{0}, std::size_t{5}, std::size_t{1023}, std::size_t{1024}, std::size_t{100000}}) {
    std::vector<float> values(n);
    for (std::size_t i = 0; i < n; ++i) {
      switch (i % 7) {
        case 0: values[i] = std::round(normal(rng) * 3.0f); break;  // ties, and +0
        case 1: values[i] = normal(rng) * 1e-30f; break;             // tiny, subnormal-adjacent
        case 2: values[i] = normal(rng) * 1e30f; break;
        case 3: values[i] = i % 2 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity(); break;
        case 4: values[i] = std::numeric_limits<float>::denorm_min() * static_cast<float>(i % 5); break;
        default: values[i] = normal(rng); break;
      }
    }
    for (float& v : values) v = v == 0.0f ? 0.0f : v;  // no -0 (the precondition): ties are then bits
    std::vector<float> expected = values;
    std::sort(expected.begin(), expected.end());
    sort_floats(values);
    ASSERT_EQ(values.size(), expected.size());
    EXPECT_EQ(std::memcmp(values.data(), expected.data(), n * sizeof(float)), 0) << "n = " << n;
  }
}

TEST(FloatSort, ScratchIsReusedAcrossCallsOfOtherSizes) {
  std::vector<std::uint32_t> keys, spare;
  std::vector<std::size_t> histogram;
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> uniform(-10.0f, 10.0f);
  for (const std::size_t n : {std::size_t{50000}, std::size_t{2000}, std::size_t{70000}}) {
    std::vector<float> values(n);
    for (float& v : values) v = uniform(rng);
    std::vector<float> expected = values;
    std::sort(expected.begin(), expected.end());
    sort_floats(values, keys, spare, histogram);
    EXPECT_EQ(values, expected) << "n = " << n;
  }
}

}  // namespace
}  // namespace lathe
