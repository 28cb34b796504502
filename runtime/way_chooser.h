// Which of a few ways of running a long series of like pieces of work (training steps on the CPU),
// whose result is the same every way, runs the next piece: chosen by timing them.
//
// The ways differ in how they use a second core: a step on the OpenMP team ends in several
// barriers; a step planned ahead has a second thread spin-wait for its next request. On a quiet
// machine the second core wins (a 50-class softmax, batches of 256 rows: 5 epochs in 1.06 s on the
// team against 1.42 s alone on 2 cores); when another process keeps a core busy, each barrier can
// wait out the time slice of a descheduled team thread, and the spinning planner takes a share of
// the model thread's core: the same epochs took 3.4 s (up to 40 s in a QA run) against 1.45 s
// alone. No size threshold fits both, so the chooser times a few pieces each way, runs the fastest
// for a span of pieces, and times them all again: at once when the chosen way has become much
// slower than it was, else after the span, which doubles each time the choice stands (up to
// kLongestSpan pieces) and starts again when it changes, and is at least long enough that timing
// the slower ways costs a small share of it. A way far slower than the best of its round is not
// timed further. Not thread-safe: one chooser per series, used from the thread that
// runs it.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>

namespace lathe {

class WayChooser {
 public:
  static constexpr int kMaxWays = 3;
  // Pieces timed per way and round, after one untimed piece (a way just switched to pays for it:
  // a team waking, a plan not yet made ahead).
  static constexpr int kTimedPieces = 5;
  static constexpr std::int64_t kFirstSpan = 32;
  static constexpr std::int64_t kLongestSpan = 4096;
  // A way is slow when its pieces take this many times the time it was chosen for (or, while
  // timed, the best of the round so far).
  static constexpr double kSlowdown = 2.0;
  // The chosen way is timed again at once when this many pieces in a row are slow.
  static constexpr int kSlowPieces = 8;
  // A way's untimed first piece ends its timing when it takes this many times the round's best.
  static constexpr double kHopeless = 8.0;
  // Means within this factor are a tie (the standing choice stays).
  static constexpr double kTie = 1.05;
  // A span is long enough that the round before it cost at most this share of it on slower ways
  // (a busy machine's team pieces of 30 ms against 0.5 ms alone), up to kLongestCostSpan pieces.
  static constexpr double kTimingShare = 0.05;
  static constexpr std::int64_t kLongestCostSpan = std::int64_t{1} << 16;

  // Ways 0 .. kMaxWays - 1 where available[way]; way 0 must be.
  explicit WayChooser(std::array<bool, kMaxWays> available) : available_(available) {
    available_[0] = true;
    start_round();
  }

  // The way of the next piece.
  int way() const { return way_; }

  // The piece just run (the way() before this call) took `seconds` for `work` units (rows):
  // timings compare seconds per unit, so pieces of unequal size (an epoch's last batch) compare.
  void record(double seconds, std::int64_t work) {
    const double per_unit = work > 0 ? seconds / static_cast<double>(work) : seconds;
    last_work_ = std::max<std::int64_t>(work, 1);
    ++pieces_;
    if (!timing_) {
      slow_in_a_row_ = per_unit > kSlowdown * chosen_mean_ ? slow_in_a_row_ + 1 : 0;
      if (slow_in_a_row_ >= kSlowPieces) {
        span_ = kFirstSpan;
        start_round();
      } else if (pieces_ >= span_) {
        start_round();
      }
      return;
    }
    round_seconds_[way_] += seconds;
    round_work_[way_] += static_cast<double>(last_work_);
    const double best = best_mean_of_round();
    if (pieces_ == 1) {  // the untimed first piece, unless it shows the way hopeless already
      if (best > 0.0 && per_unit > kHopeless * best) {
        mean_[way_] = per_unit;
        next_way();
      }
      return;
    }
    sum_ += per_unit;
    if (best > 0.0 && per_unit > kSlowdown * best) {
      mean_[way_] = per_unit;  // far slower than a way already timed: no more of it this round
      next_way();
      return;
    }
    if (pieces_ <= kTimedPieces) return;
    mean_[way_] = sum_ / kTimedPieces;
    next_way();
  }

  // Rounds of timing finished so far, and the span of the current choice (for tests).
  std::int64_t rounds() const { return rounds_; }
  std::int64_t span() const { return span_; }
  bool timing() const { return timing_; }

 private:
  void start_round() {
    timing_ = true;
    mean_.fill(0.0);
    round_seconds_.fill(0.0);
    round_work_.fill(0.0);
    way_ = 0;
    pieces_ = 0;
    sum_ = 0.0;
  }
  double best_mean_of_round() const {
    double best = 0.0;
    for (int w = 0; w < way_; ++w) {
      if (available_[w] && (best == 0.0 || mean_[w] < best)) best = mean_[w];
    }
    return best;
  }
  // To the next available way of the round, or, after the last, to the fastest.
  void next_way() {
    pieces_ = 0;
    sum_ = 0.0;
    for (int w = way_ + 1; w < kMaxWays; ++w) {
      if (available_[w]) {
        way_ = w;
        return;
      }
    }
    int fastest = 0;
    for (int w = 1; w < kMaxWays; ++w) {
      if (available_[w] && mean_[w] < mean_[fastest]) fastest = w;
    }
    // Ways within kTie of each other are a tie, which the standing choice wins: flipping between
    // them would start every span over, and every round times the slow ways too.
    if (rounds_ > 0 && mean_[chosen_] <= kTie * mean_[fastest]) fastest = chosen_;
    span_ = rounds_ > 0 && fastest == chosen_ ? std::min(2 * span_, kLongestSpan) : kFirstSpan;
    // Long enough that the round's pieces on slower ways cost at most kTimingShare of the span.
    double excess = 0.0;
    for (int w = 0; w < kMaxWays; ++w) excess += round_seconds_[w] - mean_[fastest] * round_work_[w];
    const double piece = mean_[fastest] * static_cast<double>(last_work_);
    if (piece > 0.0 && excess > 0.0) {
      const double pieces = excess / (kTimingShare * piece);
      span_ = std::max(span_, static_cast<std::int64_t>(std::min(pieces, static_cast<double>(kLongestCostSpan))));
    }
    chosen_ = fastest;
    chosen_mean_ = mean_[fastest];
    ++rounds_;
    timing_ = false;
    way_ = fastest;
    slow_in_a_row_ = 0;
  }

  std::array<bool, kMaxWays> available_;
  std::array<double, kMaxWays> mean_{};  // seconds per unit, this round
  std::array<double, kMaxWays> round_seconds_{}, round_work_{};  // every piece of this round
  std::int64_t last_work_ = 1;
  bool timing_ = true;
  int way_ = 0;
  int chosen_ = 0;
  double chosen_mean_ = 0.0;
  std::int64_t pieces_ = 0;  // of the current way (timing) or since the choice
  double sum_ = 0.0;
  int slow_in_a_row_ = 0;
  std::int64_t span_ = kFirstSpan;
  std::int64_t rounds_ = 0;
};

}  // namespace lathe
