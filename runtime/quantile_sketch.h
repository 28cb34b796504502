// A fixed-size, mergeable summary of a numeric column's distribution, for medians, IQRs, clipping
// bounds and (later) drift: weighted points in increasing order whose weights add up to the number
// of values summarised. Built from per-block summaries (the evenly spaced order statistics of a
// sorted block, computed on the CPU or the GPU) merged on the host in a fixed order, so the result
// is deterministic. Rank error is a small multiple of 1/capacity (see the implementation).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace lathe {

class QuantileSketch {
 public:
  explicit QuantileSketch(int capacity = 1024);

  // Adds the summary of one block: points in increasing order, each standing for `weights[i]`
  // values (weights add up to the block's non-missing count). A block of n <= capacity values is
  // passed whole with weights 1.
  void add_summary(std::span<const float> points, std::span<const double> weights);
  void merge(const QuantileSketch& other);

  // The q-quantile, q in [0, 1] (linear interpolation between points); NaN when empty.
  double quantile(double q) const;
  // The fraction of values <= x; 0 when empty.
  double cdf(double x) const;
  double count() const;  // total weight: the number of values summarised
  int capacity() const { return capacity_; }
  // The compacted summary (for model files): points ascending, weights.
  std::vector<float> points() const;
  std::vector<double> weights() const;

 private:
  int capacity_;
  // Level l holds a summary of about 2^l blocks' worth of points (at most capacity each); merging
  // like a binary counter keeps the rank error at O(log(blocks) / capacity).
  struct Summary {
    std::vector<float> points;
    std::vector<double> weights;
  };
  std::vector<Summary> levels_;
  mutable Summary compacted_;  // cache of all levels merged; rebuilt when stale
  mutable bool stale_ = true;
  const Summary& compacted() const;
};

// The summary of one sorted block that QuantileSketch::add_summary takes: `capacity` evenly spaced
// order statistics of `sorted` (all of it when shorter), each weighted by the values it stands for.
// Shared by the CPU backend and, after a device sort, the CUDA backend.
void summarize_sorted(std::span<const float> sorted, int capacity, std::vector<float>& points,
                      std::vector<double>& weights);

}  // namespace lathe
