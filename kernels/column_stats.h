// Streaming summary of one numeric column: count, missing count, mean and sum of squared deviations
// (in double, runs merged with Chan et al.'s pairwise formula), min and max. Written once and
// used by the CPU backend (runtime/cpu_backend.cpp), the CUDA kernel (kernels/column_stats.cu), the
// profile pass (runtime/profile.cpp) and the preparation's clipped moments (io/prepare_table.cpp).
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

// Per-thread accumulator for a run of values: sums of deviations from a shift (the run's first
// non-missing value) instead of Welford's running mean, so the hot loop has no division. With the
// shift close to the data, sum_sq - sum^2/n loses little precision in double; finish() converts to
// ColumnStats, which runs are then merged with merge_stats.
struct ColumnAccumulator {
  std::int64_t count = 0;  // non-missing values seen
  std::int64_t seen = 0;   // values seen, missing or not
  double shift = 0.0;
  double sum = 0.0;     // sum of (v - shift)
  double sum_sq = 0.0;  // sum of (v - shift)^2
  float min = INFINITY;
  float max = -INFINITY;
};

// The fold, written once: adds one value to a run unless `taken` is false (a row that a row mask
// drops), in which case the run stays as it was. NaN counts as missing; any other value is counted,
// becomes the run's shift if it is the first, and goes into the sums, min and max. Returns whether
// the value was counted. Every value takes the same steps, with selects in place of branches, so
// that a caller may keep several runs in registers (runtime/profile.cpp) and the compiler may make
// it branch-free: a value that is not counted adds +0.0 to the sums, which are never -0.0, and NaN
// to min and max, which keep theirs, so the result is bit for bit that of skipping it.
LATHE_HOST_DEVICE bool fold_value(ColumnAccumulator& a, float v, bool taken) {
  const bool present = taken && v == v;
  a.shift = present && a.count == 0 ? static_cast<double>(v) : a.shift;
  const double d = present ? static_cast<double>(v) - a.shift : 0.0;
  a.count += present;
  a.seen += taken;
  a.sum += d;
  a.sum_sq += d * d;
  const float m = present ? v : NAN;
  a.min = m < a.min ? m : a.min;
  a.max = m > a.max ? m : a.max;
  return present;
}

// Adds one value; NaN counts as missing.
LATHE_HOST_DEVICE void add_value(ColumnAccumulator& a, float v) { fold_value(a, v, true); }

LATHE_HOST_DEVICE ColumnStats finish(const ColumnAccumulator& a) {
  ColumnStats s;
  s.count = a.count;
  s.missing = a.seen - a.count;
  s.min = a.min;
  s.max = a.max;
  if (a.count > 0) {
    const double n = static_cast<double>(a.count);
    const double mean_offset = a.sum / n;
    s.mean = a.shift + mean_offset;
    const double m2 = a.sum_sq - a.sum * mean_offset;
    s.m2 = m2 > 0.0 ? m2 : 0.0;
  }
  return s;
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
