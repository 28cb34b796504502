// runtime/float_sort.h: the radix sorts against std::sort and std::stable_sort, on floats, on their
// order keys, and on keys that carry bits.
#include "runtime/float_sort.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <utility>
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
    // memcmp of no bytes still wants valid pointers: an empty vector's data() may be null.
    if (n > 0) EXPECT_EQ(std::memcmp(values.data(), expected.data(), n * sizeof(float)), 0) << "n = " << n;
  }
}

TEST(FloatSort, ScratchIsReusedAcrossCallsOfOtherSizes) {
  std::vector<std::uint32_t> keys, spare;
  std::vector<std::uint32_t> histogram;
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

TEST(FloatSort, OrderKeysFollowFloatOrderAndConvertBack) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  using limits = std::numeric_limits<float>;
  const float ascending[] = {
      -kInf, -limits::max(),       -1.5f,         -1.0f, -limits::min(), -limits::denorm_min(),
      0.0f,  limits::denorm_min(), limits::min(), 1.0f,  1.5f,           limits::max(),
      kInf};
  for (std::size_t i = 0; i + 1 < std::size(ascending); ++i) {
    EXPECT_LT(float_order_key(ascending[i]), float_order_key(ascending[i + 1])) << ascending[i];
  }
  for (const float v : ascending) {
    EXPECT_EQ(std::bit_cast<std::uint32_t>(float_from_order_key(float_order_key(v))),
              std::bit_cast<std::uint32_t>(v));
  }
  // -0 keeps its own key (just below +0): callers map it to +0 first.
  EXPECT_EQ(float_order_key(-0.0f) + 1, float_order_key(0.0f));
  EXPECT_TRUE(std::signbit(float_from_order_key(float_order_key(-0.0f))));
}

// Keys whose digits are constant in some passes (which sort_keys skips, leaving the result in
// `keys` or `spare` depending on how many passes ran) sort as std::sort sorts them, whether the
// count divides into its four slices or leaves the last one longer, the scratch reused across
// sizes.
TEST(FloatSort, SortKeysSkipsConstantDigitsAndStillSorts) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<std::uint32_t> any;
  const std::pair<const char*, std::uint32_t> masks[] = {
      {"every bit varies", 0xffffffffu},
      {"all keys equal", 0u},
      {"only the low 11 bits vary", 0x7ffu},
      {"only bits 11-21 vary", 0x3ff800u},
      {"only the top 10 bits vary", 0xffc00000u},
      {"low 11 and top 10 bits vary", 0xffc007ffu},
      {"only the low 16 bits vary", 0xffffu},
      {"only the top 16 bits vary", 0xffff0000u},
      {"one bit of each 11-bit digit", 0x00400801u},
      {"one bit of each 16-bit digit", 0x00010001u}};
  std::vector<std::uint32_t> keys, spare, counts;
  for (const std::size_t n : {std::size_t{1}, std::size_t{1023}, std::size_t{1024},
                              std::size_t{32767}, std::size_t{32768}, std::size_t{65537}}) {
    for (const auto& [what, mask] : masks) {
      keys.resize(n);
      spare.assign(n, 0);
      const std::uint32_t base = any(rng) & ~mask;
      for (std::uint32_t& key : keys) key = base | (any(rng) & mask);
      std::vector<std::uint32_t> expected = keys;
      std::sort(expected.begin(), expected.end());
      const std::span<const std::uint32_t> sorted = sort_keys(keys, spare, counts);
      ASSERT_EQ(sorted.size(), n);
      EXPECT_TRUE(sorted.data() == keys.data() || sorted.data() == spare.data());
      EXPECT_TRUE(std::equal(sorted.begin(), sorted.end(), expected.begin()))
          << what << ", n = " << n;
    }
  }
}

// Keys that carry their item's index: the sort is stable (items of one key keep their index order)
// and ascending, as std::stable_sort, with few distinct keys (many ties), constant digits (skipped
// passes) and every digit varying; one thread and a team give the same sequence.
TEST(FloatSort, StableSortKeyedMatchesStdStableSortForAnyTeam) {
  std::mt19937 rng(6);
  std::uniform_int_distribution<std::uint32_t> any;
  const std::pair<const char*, std::uint32_t> masks[] = {
      {"every digit varies", 0xffffffffu},
      {"all keys equal", 0u},
      {"16 keys, in the low digit", 0xfu},
      {"4096 keys across the low two digits", 0x3ff801u},
      {"only the top digit varies", 0xffc00000u}};
  const auto by_key = [](const KeyedBits& a, const KeyedBits& b) { return a.key < b.key; };
  const int original = omp_get_max_threads();
  const int team = std::max(2, original);
  for (const std::size_t n : {std::size_t{0}, std::size_t{7}, std::size_t{1023}, std::size_t{1024},
                              std::size_t{40000}, std::size_t{200001}}) {
    for (const auto& [what, mask] : masks) {
      std::vector<KeyedBits> items(n);
      const std::uint32_t base = any(rng) & ~mask;
      for (std::size_t i = 0; i < n; ++i)
        items[i] = {base | (any(rng) & mask), static_cast<std::uint32_t>(i)};
      std::vector<KeyedBits> expected = items;
      std::stable_sort(expected.begin(), expected.end(), by_key);
      for (const int threads : {1, team}) {
        omp_set_num_threads(threads);
        std::vector<KeyedBits> keyed = items, spare(n);
        const std::span<const KeyedBits> sorted = stable_sort_keyed(keyed, spare);
        ASSERT_EQ(sorted.size(), n);
        EXPECT_TRUE(n == 0 || sorted.data() == keyed.data() || sorted.data() == spare.data());
        EXPECT_TRUE(std::equal(sorted.begin(), sorted.end(), expected.begin(),
                               [](const KeyedBits& a, const KeyedBits& b) {
                                 return a.key == b.key && a.bits == b.bits;
                               }))
            << what << ", n = " << n << ", " << threads << " threads";
      }
      omp_set_num_threads(original);
    }
  }
}

}  // namespace
}  // namespace lathe
