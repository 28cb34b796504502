#include "runtime/float_sort.h"

#include <omp.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "runtime/team_threshold.h"

namespace lathe {

namespace {

// Below this many keys std::sort is faster than three passes over 2048-digit histograms.
constexpr std::size_t kRadixMinimum = 1024;

// Whether the radix sort's uint32 counts can hold n.
bool radix_sorts(std::size_t n) {
  return n >= kRadixMinimum && n <= std::numeric_limits<std::uint32_t>::max();
}

// `passes` digits of `bits` bits over a 32-bit key, lowest first (the last may have fewer).
struct DigitLayout {
  int bits;
  int passes;
  constexpr std::uint32_t digits() const { return 1u << bits; }
};
constexpr DigitLayout kNarrowDigits{11, 3};
constexpr DigitLayout kWideDigits{16, 2};
// From this many keys the wide digits are the faster (measured from 2^14 keys up: level at 2^14,
// 0.75 of the time at 2^15, 0.53 at 2^16, 0.7 at 2^20; bench/RESULTS.md, session 36).
constexpr std::size_t kWideDigitsMinimum = std::size_t{1} << 15;

// Counts every digit of the keys (counts zeroed and sized first), then scatters pass by pass.
template <DigitLayout Layout>
std::span<const std::uint32_t> radix_sort(std::span<std::uint32_t> keys,
                                          std::span<std::uint32_t> spare,
                                          std::vector<std::uint32_t>& counts) {
  constexpr std::uint32_t kDigits = Layout.digits();
  constexpr std::uint32_t kMask = kDigits - 1;
  const std::size_t n = keys.size();
  counts.assign(static_cast<std::size_t>(Layout.passes) * kDigits, 0u);
  for (const std::uint32_t key : keys) {
    for (int pass = 0; pass < Layout.passes; ++pass) {
      ++counts[static_cast<std::size_t>(pass) * kDigits + ((key >> (pass * Layout.bits)) & kMask)];
    }
  }
  std::uint32_t* from = keys.data();
  std::uint32_t* to = spare.data();
  for (int pass = 0; pass < Layout.passes; ++pass) {
    const int shift = pass * Layout.bits;
    std::uint32_t* offsets = counts.data() + static_cast<std::size_t>(pass) * kDigits;
    // A digit every key shares leaves the order as it is: the pass would copy the keys unchanged
    // (the top digit of a narrow range of one sign, the low digits of small integers or codes).
    if (offsets[(from[0] >> shift) & kMask] == n) continue;
    std::uint32_t sum = 0;
    for (std::uint32_t d = 0; d < kDigits; ++d) sum += std::exchange(offsets[d], sum);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t key = from[i];
      to[offsets[(key >> shift) & kMask]++] = key;
    }
    std::swap(from, to);
  }
  return {from, n};
}

}  // namespace

std::span<const std::uint32_t> sort_keys(std::span<std::uint32_t> keys,
                                         std::span<std::uint32_t> spare,
                                         std::vector<std::uint32_t>& counts) {
  const std::size_t n = keys.size();
  if (!radix_sorts(n)) {
    std::sort(keys.begin(), keys.end());
    return keys;
  }
  return n >= kWideDigitsMinimum ? radix_sort<kWideDigits>(keys, spare, counts)
                                 : radix_sort<kNarrowDigits>(keys, spare, counts);
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
  for (std::size_t i = 0; i < n; ++i) keys[i] = float_order_key(values[i]);
  const std::span<const std::uint32_t> sorted = sort_keys(keys, spare, histograms);
  for (std::size_t i = 0; i < n; ++i) values[i] = float_from_order_key(sorted[i]);
}

std::span<const KeyedBits> stable_sort_keyed(std::span<KeyedBits> items,
                                             std::span<KeyedBits> spare) {
  const std::size_t n = items.size();
  if (n < kRadixMinimum) {
    std::stable_sort(items.begin(), items.end(),
                     [](const KeyedBits& a, const KeyedBits& b) { return a.key < b.key; });
    return items;
  }
  const int threads =
      static_cast<std::int64_t>(n) >= kTeamMinItems ? std::max(1, omp_get_max_threads()) : 1;
  constexpr std::uint32_t kKeyDigits = kNarrowDigits.digits();
  // Slice s's count of digit d at s * kKeyDigits + d, then where its next item of that digit goes.
  std::vector<std::size_t> counts(static_cast<std::size_t>(threads) * kKeyDigits);
  KeyedBits* from = items.data();
  KeyedBits* to = spare.data();
  for (int pass = 0; pass < kNarrowDigits.passes; ++pass) {
    const int shift = pass * kNarrowDigits.bits;
    const auto digit = [shift](const KeyedBits& item) {
      return (item.key >> shift) & (kKeyDigits - 1);
    };
    bool shared_digit = false;
#pragma omp parallel num_threads(threads)
    {
      const auto team = static_cast<std::size_t>(omp_get_num_threads());
      const auto slice = static_cast<std::size_t>(omp_get_thread_num());
      const std::size_t begin = n * slice / team, end = n * (slice + 1) / team;
      std::size_t* offsets = counts.data() + slice * kKeyDigits;
      std::fill(offsets, offsets + kKeyDigits, std::size_t{0});
      for (std::size_t i = begin; i < end; ++i) ++offsets[digit(from[i])];
#pragma omp barrier
#pragma omp single
      {
        // A digit every item shares leaves the order as it is (the top digit of scores in [0, 1]).
        const std::uint32_t first = digit(from[0]);
        std::size_t holding_first = 0;
        for (std::size_t s = 0; s < team; ++s) holding_first += counts[s * kKeyDigits + first];
        shared_digit = holding_first == n;
        // Items of a lower digit first; within a digit, the slices in order: stable.
        std::size_t sum = 0;
        for (std::uint32_t d = 0; d < kKeyDigits; ++d) {
          for (std::size_t s = 0; s < team; ++s)
            sum += std::exchange(counts[s * kKeyDigits + d], sum);
        }
      }
      if (!shared_digit) {
        for (std::size_t i = begin; i < end; ++i) to[offsets[digit(from[i])]++] = from[i];
      }
    }
    if (!shared_digit) std::swap(from, to);
  }
  return {from, n};
}

void sort_floats(std::vector<float>& values) {
  std::vector<std::uint32_t> keys, spare, histograms;
  sort_floats(values, keys, spare, histograms);
}

}  // namespace lathe
