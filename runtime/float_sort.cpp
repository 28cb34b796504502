#include "runtime/float_sort.h"

#include <algorithm>
#include <bit>
#include <utility>

namespace lathe {

// An LSD radix sort in three 11-bit passes over keys whose unsigned order is the floats' order
// (sign bit flipped for positives, all bits for negatives).
void sort_floats(std::vector<float>& values, std::vector<std::uint32_t>& keys,
                 std::vector<std::uint32_t>& spare, std::vector<std::size_t>& histogram) {
  const std::size_t n = values.size();
  if (n < 1024) {
    std::sort(values.begin(), values.end());
    return;
  }
  constexpr int kBits = 11;
  constexpr std::uint32_t kDigits = 1u << kBits;
  keys.resize(n);
  spare.resize(n);
  histogram.assign(3 * kDigits, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(values[i]);
    const std::uint32_t key = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    keys[i] = key;
    for (int pass = 0; pass < 3; ++pass) ++histogram[pass * kDigits + ((key >> (pass * kBits)) & (kDigits - 1))];
  }
  std::uint32_t* from = keys.data();
  std::uint32_t* to = spare.data();
  for (int pass = 0; pass < 3; ++pass) {
    std::size_t* offsets = histogram.data() + pass * kDigits;
    std::size_t sum = 0;
    for (std::uint32_t d = 0; d < kDigits; ++d) sum += std::exchange(offsets[d], sum);
    for (std::size_t i = 0; i < n; ++i) to[offsets[(from[i] >> (pass * kBits)) & (kDigits - 1)]++] = from[i];
    std::swap(from, to);
  }
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t key = from[i];
    values[i] = std::bit_cast<float>((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
  }
}

void sort_floats(std::vector<float>& values) {
  std::vector<std::uint32_t> keys, spare;
  std::vector<std::size_t> histogram;
  sort_floats(values, keys, spare, histogram);
}

}  // namespace lathe
