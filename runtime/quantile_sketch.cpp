#include "runtime/quantile_sketch.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kernels/prepare_formulas.h"
#include "runtime/error.h"

// Error analysis. A block summary (summarize_sorted) keeps capacity evenly spaced order statistics;
// each point's weight is the exact count of its value plus half of the unchosen values on either
// side, fewer than one spacing n/(capacity-1): the rank error is below one spacing. Merging two
// summaries is exact; compacting a merged summary of total weight W keeps the points that cover
// capacity evenly spaced ranks and hands every other point's weight to the nearer kept one, which
// moves any rank by at most about one new spacing, W/(capacity-1). A summary at level l covers 2^l
// blocks and went through l compactions of growing weight, so its relative rank error is at most
// about (l + 1)/capacity: O(log2(blocks) / capacity); in practice about 1.5/capacity, because the
// shifts have both signs. Equal values are coalesced whenever summaries meet, so a column with at
// most about `capacity` distinct values is summarised exactly.

namespace lathe {
namespace {

using Summary = QuantileSketch::Summary;

// Merges two ascending summaries, coalescing equal values (their weights add, a's first).
Summary merge_summaries(const Summary& a, const Summary& b) {
  Summary out;
  out.points.reserve(a.points.size() + b.points.size());
  out.weights.reserve(a.points.size() + b.points.size());
  std::size_t i = 0, j = 0;
  auto push = [&out](float p, double w) {
    if (!out.points.empty() && out.points.back() == p) {
      out.weights.back() += w;
    } else {
      out.points.push_back(p);
      out.weights.push_back(w);
    }
  };
  while (i < a.points.size() || j < b.points.size()) {
    if (j == b.points.size() || (i < a.points.size() && a.points[i] <= b.points[j])) {
      push(a.points[i], a.weights[i]);
      ++i;
    } else {
      push(b.points[j], b.weights[j]);
      ++j;
    }
  }
  return out;
}

// Reduces an ascending, coalesced summary to at most `capacity` points: the points covering the
// rank positions t_j = j (W - 1) / (capacity - 1), j = 0..capacity-1 (so the first and last points,
// the minimum and maximum, always stay), each unchosen point's weight going to the chosen neighbour
// whose rank centre is nearer (ties to the lower). The same rule as summarize_sorted for weights 1.
Summary compact(Summary s, int capacity) {
  const std::size_t m = s.points.size();
  if (m <= static_cast<std::size_t>(capacity)) return s;
  std::vector<double> start(m);
  double total = 0.0;
  for (std::size_t i = 0; i < m; ++i) {
    start[i] = total;
    total += s.weights[i];
  }
  std::vector<std::size_t> chosen;
  chosen.reserve(static_cast<std::size_t>(capacity));
  std::size_t i = 0;
  const double span = std::max(total - 1.0, 0.0);
  for (int j = 0; j < capacity; ++j) {
    const double t = j == capacity - 1 ? total : span * j / (capacity - 1) + 0.5;
    while (i + 1 < m && start[i + 1] <= t) ++i;
    if (chosen.empty() || chosen.back() != i) chosen.push_back(i);
  }
  auto centre = [&](std::size_t k) { return start[k] + (std::max(s.weights[k], 1.0) - 1.0) / 2.0; };
  Summary out;
  out.points.reserve(chosen.size());
  out.weights.reserve(chosen.size());
  for (std::size_t c = 0; c < chosen.size(); ++c) {
    out.points.push_back(s.points[chosen[c]]);
    out.weights.push_back(s.weights[chosen[c]]);
  }
  for (std::size_t c = 0; c + 1 < chosen.size(); ++c) {
    const std::size_t a = chosen[c], b = chosen[c + 1];
    const double ca = centre(a), cb = centre(b);
    for (std::size_t k = a + 1; k < b; ++k) {
      const double ck = centre(k);
      if (ck - ca <= cb - ck) {
        out.weights[c] += s.weights[k];
      } else {
        out.weights[c + 1] += s.weights[k];
      }
    }
  }
  return out;
}

}  // namespace

QuantileSketch::QuantileSketch(int capacity) : capacity_(capacity) {
  if (capacity < 2) {
    throw Error("quantile sketch: capacity " + std::to_string(capacity) + " is below 2");
  }
}

void QuantileSketch::add_summary(std::span<const float> points, std::span<const double> weights) {
  add_to_levels(points, weights);
  rebuild();
}

void QuantileSketch::add_summary_unsettled(std::span<const float> points,
                                           std::span<const double> weights) {
  add_to_levels(points, weights);
  if (!points.empty()) settled_ = false;
}

void QuantileSketch::settle() {
  if (!settled_) rebuild();
}

bool QuantileSketch::empty() const {
  return std::all_of(levels_.begin(), levels_.end(),
                     [](const Summary& l) { return l.points.empty(); });
}

void QuantileSketch::check_settled() const {
  if (!settled_) throw Error("quantile sketch: queried before settle()");
}

void QuantileSketch::add_to_levels(std::span<const float> points, std::span<const double> weights) {
  if (points.size() != weights.size()) {
    throw Error("quantile sketch: " + std::to_string(points.size()) + " points but " +
                std::to_string(weights.size()) + " weights");
  }
  if (points.empty()) return;
  Summary s;
  s.points.reserve(points.size());
  s.weights.reserve(points.size());
  for (std::size_t i = 0; i < points.size(); ++i) {
    const float p = points[i];
    const double w = weights[i];
    if (std::isnan(p)) throw Error("quantile sketch: point " + std::to_string(i) + " is NaN");
    if (!(w > 0.0) || !std::isfinite(w)) {
      throw Error("quantile sketch: weight " + std::to_string(i) + " is not finite and positive");
    }
    if (i > 0 && p < points[i - 1]) {
      throw Error("quantile sketch: points decrease at " + std::to_string(i));
    }
    if (!s.points.empty() && s.points.back() == p) {
      s.weights.back() += w;
    } else {
      s.points.push_back(p);
      s.weights.push_back(w);
    }
  }
  carry(compact(std::move(s), capacity_), 0);
}

void QuantileSketch::merge(const QuantileSketch& other) {
  const std::vector<Summary> levels = other.levels_;  // a copy: other may be *this
  for (std::size_t l = 0; l < levels.size(); ++l) {
    if (!levels[l].points.empty()) carry(compact(levels[l], capacity_), l);
  }
  rebuild();
}

// Binary-counter addition: a summary meeting an occupied level is merged with it, compacted and
// carried to the next level, so each level holds at most one summary.
void QuantileSketch::carry(Summary summary, std::size_t level) {
  for (;; ++level) {
    if (levels_.size() <= level) levels_.resize(level + 1);
    if (levels_[level].points.empty()) {
      levels_[level] = std::move(summary);
      return;
    }
    summary = compact(merge_summaries(levels_[level], summary), capacity_);
    levels_[level] = Summary{};
  }
}

void QuantileSketch::rebuild() {
  Summary all;
  for (const Summary& level : levels_) {
    if (!level.points.empty()) all = merge_summaries(all, level);
  }
  compacted_ = compact(std::move(all), capacity_);
  starts_.resize(compacted_.points.size());
  total_ = 0.0;
  for (std::size_t i = 0; i < compacted_.points.size(); ++i) {
    starts_[i] = total_;
    total_ += compacted_.weights[i];
  }
  settled_ = true;
}

double QuantileSketch::quantile(double q) const {
  check_settled();
  const std::size_t m = compacted_.points.size();
  if (m == 0 || std::isnan(q)) return std::numeric_limits<double>::quiet_NaN();
  q = std::clamp(q, 0.0, 1.0);
  if (q == 0.0) return compacted_.points.front();
  if (q == 1.0) return compacted_.points.back();
  const double t = q * std::max(total_ - 1.0, 0.0);
  // The last point starting at or before rank position t.
  const std::size_t i =
      static_cast<std::size_t>(std::upper_bound(starts_.begin(), starts_.end(), t) - starts_.begin()) - 1;
  const double p = compacted_.points[i];
  const double end = starts_[i] + std::max(compacted_.weights[i] - 1.0, 0.0);  // last position of p
  if (t <= end || i + 1 == m) return p;
  const double next = compacted_.points[i + 1];
  const double frac = (t - end) / (starts_[i + 1] - end);
  if (frac <= 0.0) return p;
  if (frac >= 1.0) return next;
  if (std::isinf(p) || std::isinf(next)) return frac < 0.5 ? p : next;  // no inf - inf
  return p + frac * (next - p);
}

double QuantileSketch::cdf(double x) const {
  check_settled();
  if (std::isnan(x)) return std::numeric_limits<double>::quiet_NaN();
  const std::size_t m = compacted_.points.size();
  if (m == 0) return 0.0;
  // Weight of the points <= x: the start of the first point above x.
  const auto above = std::upper_bound(compacted_.points.begin(), compacted_.points.end(), x,
                                      [](double v, float p) { return v < static_cast<double>(p); });
  const std::size_t k = static_cast<std::size_t>(above - compacted_.points.begin());
  return k == m ? 1.0 : starts_[k] / total_;
}

double QuantileSketch::count() const {
  check_settled();
  return total_;
}

QuantileSketch::Moments QuantileSketch::clipped_moments(float lo, float hi) const {
  check_settled();
  const std::size_t m = compacted_.points.size();
  if (m == 0 || !(lo <= hi)) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    return {nan, nan};
  }
  // Clipped as the transform clips (in float), so the exact case matches it.
  const auto clipped = [&](std::size_t i) { return static_cast<double>(clip_value(compacted_.points[i], lo, hi)); };
  double sum = 0.0;
  for (std::size_t i = 0; i < m; ++i) sum += compacted_.weights[i] * clipped(i);
  Moments out;
  out.mean = sum / total_;
  // Two passes (the points are at hand): no cancellation for a column far from zero.
  double squares = 0.0;
  for (std::size_t i = 0; i < m; ++i) {
    const double d = clipped(i) - out.mean;
    squares += compacted_.weights[i] * d * d;
  }
  out.variance = squares / total_;
  return out;
}

void summary_from_ranks(std::span<const float> chosen, std::span<const std::int64_t> lower,
                        std::span<const std::int64_t> upper, std::int64_t n, std::vector<float>& points,
                        std::vector<double>& weights) {
  points.clear();
  weights.clear();
  std::int64_t previous_upper = 0;  // end of the last point's equal range
  for (std::size_t j = 0; j < chosen.size(); ++j) {
    if (!points.empty() && chosen[j] == points.back()) continue;  // same value, same range
    // The values strictly between the last point and this one: half each, the odd one to the last.
    const std::int64_t gap = lower[j] - previous_upper;
    if (!weights.empty()) weights.back() += static_cast<double>(gap - gap / 2);
    points.push_back(chosen[j]);
    weights.push_back(static_cast<double>(upper[j] - lower[j] + (weights.empty() ? lower[j] : gap / 2)));
    previous_upper = upper[j];
  }
  if (!weights.empty()) weights.back() += static_cast<double>(n - previous_upper);
}

void summarize_sorted(std::span<const float> sorted, int capacity, std::vector<float>& points,
                      std::vector<double>& weights) {
  if (capacity < 2) {
    throw Error("summarize_sorted: capacity " + std::to_string(capacity) + " is below 2");
  }
  const std::int64_t n = static_cast<std::int64_t>(sorted.size());
  const std::size_t m = static_cast<std::size_t>(std::min<std::int64_t>(n, capacity));
  std::vector<float> chosen(m);
  std::vector<std::int64_t> lower(m), upper(m);
  for (std::size_t j = 0; j < m; ++j) {
    const auto at = sorted.begin() + summary_rank(static_cast<std::int64_t>(j), n, capacity);
    chosen[j] = *at;
    lower[j] = std::lower_bound(sorted.begin(), at, *at) - sorted.begin();
    upper[j] = std::upper_bound(at, sorted.end(), *at) - sorted.begin();
  }
  summary_from_ranks(chosen, lower, upper, n, points, weights);
}

}  // namespace lathe
