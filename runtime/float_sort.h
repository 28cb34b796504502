// Ascending sorts of float32 values by radix (the profile's block sketches, the model file's
// prediction summary, the ranking metrics' rows): the same order as std::sort, several times faster
// on large arrays. Three entry points: sort_floats for a vector of floats; sort_keys for callers
// that already hold the floats' order keys (the profile writes them in its statistics loop);
// stable_sort_keyed for keys that carry 32 bits with them.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace lathe {

// The unsigned key whose order is the floats' order (sign bit flipped for positives, all bits for
// negatives), and back. v must not be NaN; -0.0 and +0.0 get different keys, so map -0 first (e.g.
// with sort_key in runtime/profile_cuda.h) for equal floats to have equal keys.
constexpr std::uint32_t float_order_key(float v) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(v);
  return u ^ (static_cast<std::uint32_t>(static_cast<std::int32_t>(u) >> 31) | 0x80000000u);
}
constexpr float float_from_order_key(std::uint32_t key) {
  return std::bit_cast<float>(key ^ (((key >> 31) - 1u) | 0x80000000u));
}

// Sorts `keys` ascending: an LSD radix sort of three 11-bit digits, each pass counted and
// scattered over four slices of the keys interleaved (runtime/float_sort.cpp says why), a pass
// whose digit every key shares skipped. `spare` is scratch of at least keys.size(), `counts`
// scratch that it sizes, both reused from call to call. Returns the sorted keys, which lie in
// `keys` or in `spare` (whichever the last pass wrote). Below 1024 keys, and above the 2^32 - 1
// that uint32 counts hold, it is std::sort in `keys`.
std::span<const std::uint32_t> sort_keys(std::span<std::uint32_t> keys,
                                         std::span<std::uint32_t> spare,
                                         std::vector<std::uint32_t>& counts);

// Sorts `values` (no NaN, no -0.0: map them first, e.g. with sort_key in runtime/profile_cuda.h)
// ascending. `keys`, `spare` and `histograms` are scratch, reused from call to call. Below 1024
// values it is std::sort.
void sort_floats(std::vector<float>& values, std::vector<std::uint32_t>& keys,
                 std::vector<std::uint32_t>& spare, std::vector<std::uint32_t>& histograms);

// The same with scratch of its own.
void sort_floats(std::vector<float>& values);

// An order key and 32 bits that travel with it (the ranking metrics' rows: a score's key and the
// row's signed weight).
struct KeyedBits {
  std::uint32_t key;
  std::uint32_t bits;
};

// Sorts `items` ascending by key, stably: items of one key keep their order, so the sequence is the
// same whatever the thread count. Three passes of 11-bit digits (a pass whose digit
// every item shares is skipped); from 2^15 items each pass is counted and scattered by the threads
// of a team over contiguous slices, the slices' counts laid out digit by digit in slice order.
// `spare` is scratch of at least items.size(). Returns the sorted items, which lie in `items` or in
// `spare`. Below 1024 items it is std::stable_sort in `items`.
std::span<const KeyedBits> stable_sort_keyed(std::span<KeyedBits> items,
                                             std::span<KeyedBits> spare);

}  // namespace lathe
