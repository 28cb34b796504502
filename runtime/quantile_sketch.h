// A fixed-size, mergeable summary of a numeric column's distribution, for medians, IQRs, clipping
// bounds and (later) drift: weighted points in increasing order whose weights add up to the number
// of values summarised. Built from per-block summaries (the evenly spaced order statistics of a
// sorted block, computed on the CPU or the GPU) merged on the host in a fixed order, so the result
// is deterministic. Rank error is a small multiple of 1/capacity (see the implementation).
//
// Model: point i with weight w_i stands for w_i consecutive values of the sorted data, all read as
// p_i. With S_i the weight of the points before i, it covers the 0-based rank positions
// [S_i, S_i + w_i - 1]; between two points, quantile() interpolates linearly over the one rank step
// that separates them. With every weight 1 (a summary that has not been compacted) quantile() is
// exactly numpy's default (linear) quantile, and quantile(0) / quantile(1) are always the exact
// minimum / maximum.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/host_device.h"

namespace lathe {

class QuantileSketch {
 public:
  // capacity >= 2 (throws Error otherwise): the most points a summary keeps.
  explicit QuantileSketch(int capacity = 1024);

  // Adds the summary of one block: points in increasing order, each standing for `weights[i]`
  // values (weights add up to the block's non-missing count). A block of n <= capacity values is
  // passed whole with weights 1. Throws Error when the sizes differ, a point is NaN, the points
  // decrease or a weight is not finite and positive. An empty summary is ignored.
  void add_summary(std::span<const float> points, std::span<const double> weights);
  // As add_summary, but leaves the merged summary the queries read to settle(): a pass that adds a
  // summary per block settles once at its end instead of merging every level after each block
  // (profile_table: that merge took most of the profile's serial time, 28 columns x 153 blocks of
  // 10M rows). The queries below throw Error until settle() is called.
  void add_summary_unsettled(std::span<const float> points, std::span<const double> weights);
  // Rebuilds the merged summary from the summaries added; nothing to do when it is settled. The
  // result is that of add_summary after each of them.
  void settle();
  // Whether nothing was added (also before settle()).
  bool empty() const;
  // Adds everything `other` summarised (its levels, in order; other may have another capacity).
  void merge(const QuantileSketch& other);

  // The q-quantile, q in [0, 1] (clamped; linear interpolation between points); NaN when empty or
  // q is NaN.
  double quantile(double q) const;
  // The fraction of values <= x; 0 when empty, NaN when x is NaN.
  double cdf(double x) const;
  double count() const;  // total weight: the number of values summarised

  struct Moments {
    double mean = 0.0;
    double variance = 0.0;  // population (divided by the count)
  };
  // The mean and variance of min(max(x, lo), hi) over the summarised values, each point standing for
  // its weight's worth of values (the model above), in double: the moments of a column after
  // clipping, without a second pass over it. Exact (to double rounding) when every distinct value
  // is a point, which holds for a column of at most `capacity` values, and for one of fewer distinct
  // values each frequent enough to be one of a block's chosen order statistics (summary_rank: a value
  // rarer than about 1/capacity of a block's rows may fall between them). Otherwise the
  // weighted points' distribution function is off by about the rank error (~1.5/capacity of the
  // values, see quantile_sketch.cpp) plus one point's share, so the mean is off by at most that
  // fraction of (hi - lo), the variance by about twice that of (hi - lo)^2, and in practice far less
  // (the shifts have both signs). lo = -inf / hi = +inf leave that side unclipped (an infinite
  // point there gives an infinite mean). NaN moments when empty, lo or hi is NaN, or lo > hi.
  Moments clipped_moments(float lo, float hi) const;
  int capacity() const { return capacity_; }
  // The compacted summary (for model files): points ascending and distinct, weights. Passing them
  // to add_summary of an empty sketch of the same capacity gives back the same quantiles.
  std::vector<float> points() const {
    check_settled();
    return compacted_.points;
  }
  std::vector<double> weights() const {
    check_settled();
    return compacted_.weights;
  }

  struct Summary {
    std::vector<float> points;
    std::vector<double> weights;
  };

 private:
  int capacity_;
  // Level l holds a summary of about 2^l blocks' worth of points (at most capacity each); merging
  // like a binary counter keeps the rank error at O(log(blocks) / capacity).
  std::vector<Summary> levels_;
  // All levels merged and compacted to capacity, rebuilt after every change so that the const
  // queries are plain reads (safe from several threads).
  Summary compacted_;
  std::vector<double> starts_;  // starts_[i]: weight of the points before compacted_ point i
  double total_ = 0.0;
  bool settled_ = true;  // whether compacted_, starts_ and total_ hold levels_ (settle())

  void add_to_levels(std::span<const float> points, std::span<const double> weights);
  void carry(Summary summary, std::size_t level);
  void rebuild();
  void check_settled() const;
};

// The 0-based rank, in a sorted block of n values, of the j-th (0 <= j < min(n, capacity)) point of
// its summary: j itself when n <= capacity (the block is passed whole), else the j-th of `capacity`
// evenly spaced order statistics, round(j * (n - 1) / (capacity - 1)) with halves rounded up, in
// integers so that the CPU and the GPU pick the same values. j = 0 is the minimum and the last
// point the maximum.
LATHE_HOST_DEVICE std::int64_t summary_rank(std::int64_t j, std::int64_t n, std::int64_t capacity) {
  if (n <= capacity) return j;
  return (2 * j * (n - 1) + (capacity - 1)) / (2 * (capacity - 1));
}

// The summary of a sorted block of n values from its chosen order statistics, as both backends
// build it: chosen[j] = sorted[summary_rank(j, n, capacity)] for j < min(n, capacity), and
// [lower[j], upper[j]) the ranks of the values equal to chosen[j] in the block. Equal chosen values
// become one point weighted by their exact count, plus, on each side, half of the values between it
// and the next chosen value (ties to the lower point). The weights add up to n; a block whose
// distinct values are all chosen (each at least about n / capacity of its values) is summarised
// exactly.
void summary_from_ranks(std::span<const float> chosen, std::span<const std::int64_t> lower,
                        std::span<const std::int64_t> upper, std::int64_t n, std::vector<float>& points,
                        std::vector<double>& weights);

// The summary of one sorted block that QuantileSketch::add_summary takes: `capacity` evenly spaced
// order statistics of `sorted` (all of it when not longer than capacity), equal values merged, each
// weighted by the values it stands for (summary_from_ranks). The CPU backend builds it this way; the
// CUDA backend sorts and gathers the same summary_rank()s and equal ranges on the device and calls
// summary_from_ranks on the host. Throws Error when capacity < 2.
void summarize_sorted(std::span<const float> sorted, int capacity, std::vector<float>& points,
                      std::vector<double>& weights);

}  // namespace lathe
