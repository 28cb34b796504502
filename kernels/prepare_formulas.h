// The formulas of data preparation, written once for the CPU backend and the CUDA kernels
// (STYLE.md rule 1): imputation, clipping, scaling, missing indicators, category slots, hashing of
// categories and crosses, and row hashing for duplicate detection. Plain C++ that g++ compiles.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/host_device.h"

namespace lathe {

// The fitted transformation of one numeric column: missing -> fill, then clip to [clip_lo,
// clip_hi], then (value - center) * inv_scale computed in double and cast to float, so a column whose
// mean is a million times its spread keeps float32 precision after centering.
struct NumericTransform {
  float fill = 0.0f;          // replaces a missing (NaN) value
  float clip_lo = -INFINITY;  // no clipping: -inf / +inf
  float clip_hi = INFINITY;
  double center = 0.0;
  double inv_scale = 1.0;     // 1 / scale; 1 when the column is constant (never inf or NaN)
};

LATHE_HOST_DEVICE float prepare_numeric(float x, const NumericTransform& t) {
  const float v = (x != x) ? t.fill : x;
  const float c = v < t.clip_lo ? t.clip_lo : (v > t.clip_hi ? t.clip_hi : v);
  return static_cast<float>((static_cast<double>(c) - t.center) * t.inv_scale);
}

LATHE_HOST_DEVICE float missing_indicator(float x) { return (x != x) ? 1.0f : 0.0f; }

// Slot of a categorical value in the model's vocabulary. `code` is the input file's category code
// as float (NaN = missing); `remap[code]` is the slot of that code's label (built on the host by
// matching labels, so files imported separately agree), or unknown_slot for a label the model never
// saw. A code outside [0, remap_size) is unknown too.
LATHE_HOST_DEVICE std::int32_t category_slot(float code, const std::int32_t* remap,
                                             std::int32_t remap_size, std::int32_t missing_slot,
                                             std::int32_t unknown_slot) {
  if (code != code) return missing_slot;
  const std::int32_t c = static_cast<std::int32_t>(code);
  if (c < 0) return missing_slot;
  if (c >= remap_size) return unknown_slot;
  return remap[c];
}

// SplitMix64's finalizer: a fast 64-bit mixer with full avalanche.
LATHE_HOST_DEVICE std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// The bucket of a categorical x categorical cross: from the two slots' label hashes (hashes of the
// label strings, see label_hash), so it does not depend on either file's codes.
LATHE_HOST_DEVICE std::uint32_t cross_bucket(std::uint64_t label_hash_a, std::uint64_t label_hash_b,
                                             std::uint32_t buckets) {
  return static_cast<std::uint32_t>(mix64(label_hash_a * 0x9e3779b97f4a7c15ULL ^ label_hash_b) %
                                    buckets);
}

// Folds one value into a row hash. Missing values hash alike (all NaNs are one value) and -0.0
// hashes as 0.0, matching "equal" in duplicate detection.
LATHE_HOST_DEVICE std::uint64_t row_hash_step(std::uint64_t h, float v) {
  std::uint32_t bits;
  if (v != v) {
    bits = 0x7fc00000u;
  } else if (v == 0.0f) {
    bits = 0u;
  } else {
    std::memcpy(&bits, &v, sizeof bits);
  }
  return mix64(h ^ (bits + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
}

inline constexpr std::uint64_t kRowHashSeed = 0x2545f4914f6cdd1dULL;

// Two values are the same for duplicate detection: bit-equal after the canonicalization above.
LATHE_HOST_DEVICE bool same_value(float a, float b) {
  return (a != a) ? (b != b) : (a == b);
}

}  // namespace lathe
