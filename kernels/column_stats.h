// Streaming summary of one numeric column: count, missing count, mean and sum of squared deviations
// (Welford, merged with Chan et al.'s pairwise formula, in double), min and max. Written once and
// used by the CPU backend (runtime/cpu_backend.cpp) and the CUDA kernel (kernels/column_stats.cu).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/host_device.h"

namespace lathe {

struct ColumnStats {
  std::int64_t count = 0;    // non-missing values seen
  std::int64_t missing = 0;  // NaN values seen (missing numeric values and missing category codes)
  double mean = 0.0;
  double m2 = 0.0;  // sum of squared deviations from the mean
  float min = INFINITY;
  float max = -INFINITY;
};

// Adds one value; NaN counts as missing.
LATHE_HOST_DEVICE void add_value(ColumnStats& s, float v) {
  if (v != v) {
    ++s.missing;
    return;
  }
  ++s.count;
  const double delta = static_cast<double>(v) - s.mean;
  s.mean += delta / static_cast<double>(s.count);
  s.m2 += delta * (static_cast<double>(v) - s.mean);
  s.min = v < s.min ? v : s.min;
  s.max = v > s.max ? v : s.max;
}

// The summary of the union of the values summarised by a and b (order-independent up to rounding).
LATHE_HOST_DEVICE ColumnStats merge_stats(const ColumnStats& a, const ColumnStats& b) {
  if (a.count == 0 && a.missing == 0) return b;
  if (b.count == 0 && b.missing == 0) return a;
  ColumnStats r;
  r.count = a.count + b.count;
  r.missing = a.missing + b.missing;
  if (r.count > 0) {
    const double na = static_cast<double>(a.count);
    const double nb = static_cast<double>(b.count);
    const double n = static_cast<double>(r.count);
    const double delta = b.mean - a.mean;
    r.mean = a.mean + delta * (nb / n);
    r.m2 = a.m2 + b.m2 + delta * delta * (na * nb / n);
  }
  r.min = a.min < b.min ? a.min : b.min;
  r.max = a.max > b.max ? a.max : b.max;
  return r;
}

// Population variance of the non-missing values (0 when fewer than two).
LATHE_HOST_DEVICE double variance(const ColumnStats& s) {
  return s.count > 1 ? s.m2 / static_cast<double>(s.count) : 0.0;
}

// Functor form of merge_stats, for CUB/Thrust reductions.
struct MergeColumnStats {
  LATHE_HOST_DEVICE ColumnStats operator()(const ColumnStats& a, const ColumnStats& b) const {
    return merge_stats(a, b);
  }
};

}  // namespace lathe
