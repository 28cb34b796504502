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

// The radix sort's digits: three passes of 11 bits (the last has 10) over a 32-bit key, whose
// 2048-count histograms stay in the first-level cache.
constexpr int kDigitBits = 11;
constexpr std::uint32_t kDigits = 1u << kDigitBits;
constexpr int kPasses = 3;
// Contiguous slices of the keys that each pass counts and scatters from counts of their own,
// interleaved key by key. Keys of one digit in a row (the sign and exponent bits of a bell-shaped
// column, the top bits of an offset one) made each increment of that digit's count wait on the
// last one's store; the slices make that several chains at once. 64K keys sorted in 0.65 of the
// time (N(0, 1) floats) to 0.95 (1000 + 5 N(0, 1)); only uniformly random 32-bit words, which no
// float column gives, took 1.1 times as long. Two passes of 16-bit digits were as fast on N(0, 1)
// but 1.6 to 1.9 times as slow on years (bench/RESULTS.md, session 36).
constexpr std::size_t kSlices = 4;

}  // namespace

std::span<const std::uint32_t> sort_keys(std::span<std::uint32_t> keys,
                                         std::span<std::uint32_t> spare,
                                         std::vector<std::uint32_t>& counts) {
  const std::size_t n = keys.size();
  if (!radix_sorts(n)) {
    std::sort(keys.begin(), keys.end());
    return keys;
  }
  // Slice s holds [s * length, (s + 1) * length), the last slice the rest too; the counts of slice
  // s at s * kDigits.
  const std::size_t length = n / kSlices;
  counts.resize(kSlices * kDigits);
  std::uint32_t* const count = counts.data();
  std::uint32_t* from = keys.data();
  std::uint32_t* to = spare.data();
  for (int pass = 0; pass < kPasses; ++pass) {
    const int shift = pass * kDigitBits;
    const auto digit = [shift](std::uint32_t key) { return (key >> shift) & (kDigits - 1); };
    const std::uint32_t* slice[kSlices];
    for (std::size_t s = 0; s < kSlices; ++s) slice[s] = from + s * length;
    std::fill(count, count + kSlices * kDigits, 0u);
    for (std::size_t i = 0; i < length; ++i) {
      for (std::size_t s = 0; s < kSlices; ++s) ++count[s * kDigits + digit(slice[s][i])];
    }
    for (std::size_t i = kSlices * length; i < n; ++i)
      ++count[(kSlices - 1) * kDigits + digit(from[i])];
    // A digit every key shares leaves the order as it is: the pass would copy the keys unchanged
    // (the top digit of a narrow range of one sign, the low digits of small integers or codes).
    std::size_t holding_first = 0;
    for (std::size_t s = 0; s < kSlices; ++s) holding_first += count[s * kDigits + digit(from[0])];
    if (holding_first == n) continue;
    // Keys of a lower digit first; within a digit, the slices in order: stable.
    std::uint32_t sum = 0;
    for (std::uint32_t d = 0; d < kDigits; ++d) {
      for (std::size_t s = 0; s < kSlices; ++s) sum += std::exchange(count[s * kDigits + d], sum);
    }
    for (std::size_t i = 0; i < length; ++i) {
      for (std::size_t s = 0; s < kSlices; ++s) {
        const std::uint32_t key = slice[s][i];
        to[count[s * kDigits + digit(key)]++] = key;
      }
    }
    for (std::size_t i = kSlices * length; i < n; ++i) {
      to[count[(kSlices - 1) * kDigits + digit(from[i])]++] = from[i];
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
  // Slice s's count of digit d at s * kDigits + d, then where its next item of that digit goes.
  std::vector<std::size_t> counts(static_cast<std::size_t>(threads) * kDigits);
  KeyedBits* from = items.data();
  KeyedBits* to = spare.data();
  for (int pass = 0; pass < kPasses; ++pass) {
    const int shift = pass * kDigitBits;
    const auto digit = [shift](const KeyedBits& item) {
      return (item.key >> shift) & (kDigits - 1);
    };
    bool shared_digit = false;
#pragma omp parallel num_threads(threads)
    {
      const auto team = static_cast<std::size_t>(omp_get_num_threads());
      const auto slice = static_cast<std::size_t>(omp_get_thread_num());
      const std::size_t begin = n * slice / team, end = n * (slice + 1) / team;
      std::size_t* offsets = counts.data() + slice * kDigits;
      std::fill(offsets, offsets + kDigits, std::size_t{0});
      for (std::size_t i = begin; i < end; ++i) ++offsets[digit(from[i])];
#pragma omp barrier
#pragma omp single
      {
        // A digit every item shares leaves the order as it is (the top digit of scores in [0, 1]).
        const std::uint32_t first = digit(from[0]);
        std::size_t holding_first = 0;
        for (std::size_t s = 0; s < team; ++s) holding_first += counts[s * kDigits + first];
        shared_digit = holding_first == n;
        // Items of a lower digit first; within a digit, the slices in order: stable.
        std::size_t sum = 0;
        for (std::uint32_t d = 0; d < kDigits; ++d) {
          for (std::size_t s = 0; s < team; ++s) sum += std::exchange(counts[s * kDigits + d], sum);
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
