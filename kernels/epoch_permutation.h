// The seeded order in which an epoch visits the training rows: a pseudorandom permutation of
// [0, rows) computed row by row, so that no shuffled index array has to be built on the host,
// kept in host memory or uploaded (20M rows: 160 MB and about 0.4 s of a sequential shuffle per
// epoch). Both backends call epoch_row; the same (rows, seed, epoch) give the same order on
// every machine and device.
//
// Construction: a balanced 4-round Feistel network on 2h-bit integers, 2^(2h) the smallest even
// power of two >= rows (Luby-Rackoff: 4 rounds of a good round function, here SplitMix64's mix64
// keyed per round, give a pseudorandom permutation), restricted to [0, rows) by cycle walking
// (apply the network again while the result is >= rows). The domain is below 4 rows, so a row
// takes under 4 passes on average.
#pragma once

#include <cstdint>

#include "kernels/host_device.h"
#include "kernels/prepare_formulas.h"  // mix64

namespace lathe {

struct EpochPermutation {
  std::int64_t rows = 0;           // the permutation is of [0, rows)
  std::int32_t half_bits = 1;      // h: each Feistel half has h bits
  std::uint64_t round_keys[4] = {};
};

inline EpochPermutation make_epoch_permutation(std::int64_t rows, std::uint64_t seed, std::int32_t epoch) {
  EpochPermutation p;
  p.rows = rows;
  while (p.half_bits < 31 && (std::int64_t{1} << (2 * p.half_bits)) < rows) ++p.half_bits;
  std::uint64_t state = mix64(seed ^ (0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(epoch + 1)));
  for (std::uint64_t& key : p.round_keys) {
    state += 0x9e3779b97f4a7c15ULL;
    key = mix64(state);
  }
  return p;
}

// The row visited at position i (0 <= i < p.rows) of the epoch.
LATHE_HOST_DEVICE std::int64_t epoch_row(const EpochPermutation& p, std::int64_t i) {
  const std::uint64_t mask = (std::uint64_t{1} << p.half_bits) - 1;
  std::uint64_t x = static_cast<std::uint64_t>(i);
  do {
    std::uint64_t left = x >> p.half_bits, right = x & mask;
    for (int r = 0; r < 4; ++r) {
      const std::uint64_t next = left ^ (mix64(right ^ p.round_keys[r]) & mask);
      left = right;
      right = next;
    }
    x = (left << p.half_bits) | right;
  } while (x >= static_cast<std::uint64_t>(p.rows));
  return static_cast<std::int64_t>(x);
}

}  // namespace lathe
