#include "runtime/float_sort.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace lathe {

namespace {

// Below this many keys std::sort is faster than three passes over 2048-digit histograms.
constexpr std::size_t kRadixMinimum = 1024;

// Whether the radix sort's uint32 counts can hold n.
bool radix_sorts(std::size_t n) {
  return n >= kRadixMinimum && n <= std::numeric_limits<std::uint32_t>::max();
}

}  // namespace

// An LSD radix sort: one stable scatter per digit, lowest digit first.
std::span<const std::uint32_t> sort_keys(std::span<std::uint32_t> keys,
                                         std::span<std::uint32_t> spare,
                                         std::span<std::uint32_t> histograms) {
  const std::size_t n = keys.size();
  if (!radix_sorts(n)) {
    std::sort(keys.begin(), keys.end());
    return keys;
  }
  std::uint32_t* from = keys.data();
  std::uint32_t* to = spare.data();
  for (int pass = 0; pass < kKeyPasses; ++pass) {
    const int shift = pass * kKeyDigitBits;
    std::uint32_t* offsets = histograms.data() + pass * kKeyDigits;
    // A digit every key shares leaves the order as it is: the pass would copy the keys unchanged
    // (the top digit of a narrow range of one sign, the low digits of small integers or codes).
    if (offsets[(from[0] >> shift) & (kKeyDigits - 1)] == n) continue;
    std::uint32_t sum = 0;
    for (std::uint32_t d = 0; d < kKeyDigits; ++d) sum += std::exchange(offsets[d], sum);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t key = from[i];
      to[offsets[(key >> shift) & (kKeyDigits - 1)]++] = key;
    }
    std::swap(from, to);
  }
  return {from, n};
}

void sort_floats(std::vector<float>& values, std::vector<std::uint32_t>& keys,
                 std::vector<std::uint32_t>& spare, std::vector<std::uint32_t>& histograms) {
  const std::size_t n = values.size();
  if (!radix_sorts(n)) {
    std::sort(values.begin(), values.end());
    return;
  }
  keys.resize(n);
  spare.resize(n);
  histograms.assign(kKeyHistogramSize, 0);
  for (std::size_t i = 0; i < n; ++i) {
    keys[i] = float_order_key(values[i]);
    count_key_digits(histograms.data(), keys[i], 1);
  }
  const std::span<const std::uint32_t> sorted = sort_keys(keys, spare, histograms);
  for (std::size_t i = 0; i < n; ++i) values[i] = float_from_order_key(sorted[i]);
}

void sort_floats(std::vector<float>& values) {
  std::vector<std::uint32_t> keys, spare, histograms;
  sort_floats(values, keys, spare, histograms);
}

}  // namespace lathe
