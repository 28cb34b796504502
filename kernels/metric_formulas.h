// Evaluation-metric terms and their sums, written once and used by the CPU backend
// (runtime/metrics.cpp) and the CUDA kernels (kernels/metrics.cu): the per-row terms (squared and
// absolute error, log loss with clipped probabilities, correctness), the sums a pass over the rows
// folds them into (double, merged by +), and the contribution of one group of tied scores to the
// ROC AUC and the average precision. Plain C++: no CUDA headers.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/host_device.h"

namespace lathe {

// Probabilities are clipped to [kProbabilityClip, 1 - kProbabilityClip] before the log loss takes
// their logarithm, as scikit-learn's log_loss did (eps=1e-15), so that a confident mistake costs
// about 34.5 rather than infinity.
inline constexpr double kProbabilityClip = 1e-15;

// The rows a metric is computed over: host pointers on the CPU, device pointers inside kernels.
struct MetricRows {
  const float* predictions = nullptr;  // regression value or binary P(positive) [rows]; multiclass
                                       // probabilities [rows][classes], row-major
  const float* labels = nullptr;       // [rows]: target, 0/1, or class index
  const float* weights = nullptr;      // [rows], or nullptr: every weight 1
  std::int64_t rows = 0;
  std::int32_t classes = 0;  // multiclass only
};

LATHE_HOST_DEVICE float row_weight(const MetricRows& m, std::int64_t r) {
  return m.weights ? m.weights[r] : 1.0f;
}

// NaN stays NaN (the comparisons are false), so a diverged model's predictions show in the metrics.
LATHE_HOST_DEVICE double clip_probability(double p) {
  return p < kProbabilityClip ? kProbabilityClip : (p > 1.0 - kProbabilityClip ? 1.0 - kProbabilityClip : p);
}

LATHE_HOST_DEVICE double squared_error(float prediction, float label) {
  const double d = static_cast<double>(prediction) - static_cast<double>(label);
  return d * d;
}

LATHE_HOST_DEVICE double absolute_error(float prediction, float label) {
  const double d = static_cast<double>(prediction) - static_cast<double>(label);
  return d < 0.0 ? -d : d;
}

// -log P(label) of a binary prediction p = P(label 1); label is 0 or 1.
LATHE_HOST_DEVICE double binary_log_loss(float probability, float label) {
  const double p = clip_probability(static_cast<double>(probability));
  return label == 1.0f ? -log(p) : -log(1.0 - p);
}

// The class a binary prediction votes for: 1 when P(positive) > 0.5 (a logit above 0, as
// scikit-learn's and XGBoost's classifiers predict), else 0 (also for NaN).
LATHE_HOST_DEVICE std::int32_t binary_predicted_class(float probability) {
  return probability > 0.5f ? 1 : 0;
}

// The class of the largest of `classes` probabilities; ties go to the lowest class. NaN never wins
// a comparison: a NaN elsewhere is passed over, a NaN for class 0 makes the row predict class 0.
LATHE_HOST_DEVICE std::int32_t predicted_class(const float* probabilities, std::int32_t classes) {
  std::int32_t best = 0;
  float best_p = probabilities[0];
  for (std::int32_t k = 1; k < classes; ++k) {
    if (probabilities[k] > best_p) {
      best_p = probabilities[k];
      best = k;
    }
  }
  return best;
}

LATHE_HOST_DEVICE bool is_nan(float v) { return v != v; }

// Weighted sums of the regression terms. Label sums are of (label - shift), one shift for all rows
// (the first row's label), so that the total sum of squares label_squared - label^2 / weight keeps
// its precision when the labels sit far from zero.
struct RegressionSums {
  double weight = 0.0;
  double squared_error = 0.0;
  double absolute_error = 0.0;
  double label = 0.0;          // sum of w * (label - shift)
  double label_squared = 0.0;  // sum of w * (label - shift)^2
  // Every row added, whatever its weight (0 included): r2 is undefined below 2, and scikit-learn's
  // r2_score counts its samples so (n_samples, not the rows of positive weight).
  std::int64_t rows = 0;
};

LATHE_HOST_DEVICE void add_regression_row(RegressionSums& s, float prediction, float label,
                                          float weight, double shift) {
  const double w = static_cast<double>(weight);
  const double d = static_cast<double>(label) - shift;
  s.weight += w;
  // A row of weight 0 adds no error, also where its prediction is infinite (0 * inf is NaN, which
  // would make every metric NaN though the row does not count). A NaN prediction (a diverged
  // model) still makes them NaN, whatever its weight, as in the classification sums.
  if (w != 0.0 || is_nan(prediction)) {
    s.squared_error += w * squared_error(prediction, label);
    s.absolute_error += w * absolute_error(prediction, label);
  }
  s.label += w * d;
  s.label_squared += w * d * d;
  ++s.rows;
}

LATHE_HOST_DEVICE RegressionSums operator+(const RegressionSums& a, const RegressionSums& b) {
  RegressionSums r;
  r.weight = a.weight + b.weight;
  r.squared_error = a.squared_error + b.squared_error;
  r.absolute_error = a.absolute_error + b.absolute_error;
  r.label = a.label + b.label;
  r.label_squared = a.label_squared + b.label_squared;
  r.rows = a.rows + b.rows;
  return r;
}

// Weighted sums of the classification terms (binary or multiclass).
struct ClassificationSums {
  double weight = 0.0;
  double log_loss = 0.0;  // sum of w * -log P(label)
  double correct = 0.0;   // sum of w over rows whose predicted class is the label
  double positive = 0.0;  // binary: sum of w over label-1 rows
  double negative = 0.0;  // binary: sum of w over label-0 rows
  std::int64_t nan_predictions = 0;  // rows with a NaN probability
};

LATHE_HOST_DEVICE void add_binary_row(ClassificationSums& s, float probability, float label, float weight) {
  const double w = static_cast<double>(weight);
  const bool positive = label == 1.0f;
  s.weight += w;
  s.log_loss += w * binary_log_loss(probability, label);
  if (binary_predicted_class(probability) == (positive ? 1 : 0)) s.correct += w;
  if (positive) {
    s.positive += w;
  } else {
    s.negative += w;
  }
  if (is_nan(probability)) ++s.nan_predictions;
}

// Adds one multiclass row (label: a valid class index) and returns its predicted class.
LATHE_HOST_DEVICE std::int32_t add_multiclass_row(ClassificationSums& s, const float* probabilities,
                                                  std::int32_t classes, std::int32_t label, float weight) {
  const double w = static_cast<double>(weight);
  const std::int32_t predicted = predicted_class(probabilities, classes);
  s.weight += w;
  s.log_loss += w * -log(clip_probability(static_cast<double>(probabilities[label])));
  if (predicted == label) s.correct += w;
  bool nan = false;
  for (std::int32_t k = 0; k < classes; ++k) nan = nan || is_nan(probabilities[k]);
  if (nan) ++s.nan_predictions;
  return predicted;
}

LATHE_HOST_DEVICE ClassificationSums operator+(const ClassificationSums& a, const ClassificationSums& b) {
  ClassificationSums r;
  r.weight = a.weight + b.weight;
  r.log_loss = a.log_loss + b.log_loss;
  r.correct = a.correct + b.correct;
  r.positive = a.positive + b.positive;
  r.negative = a.negative + b.negative;
  r.nan_predictions = a.nan_predictions + b.nan_predictions;
  return r;
}

// AUC and average precision are computed only over two classes of positive weight and scores that
// are all numbers; otherwise they are NaN.
LATHE_HOST_DEVICE bool rankable(const ClassificationSums& s) {
  return s.nan_predictions == 0 && s.positive > 0.0 && s.negative > 0.0;
}

// The key binary scores are sorted by: -0 as +0, so that the two zeros form one group of ties.
LATHE_HOST_DEVICE float score_sort_key(float score) { return score == 0.0f ? 0.0f : score; }

// The ROC and precision-recall curves over the rows sorted by descending score, one point per
// distinct score, summed as scikit-learn's roc_auc_score (trapezoids: ties count half) and
// average_precision_score (recall steps times the precision at the step). Unnormalized: auc / (P N)
// and average_precision / P are the metrics, P and N the positive and negative weight totals.
struct RankingSums {
  double positive = 0.0;  // P: the weight of the positive rows
  double negative = 0.0;  // N
  double auc = 0.0;
  double average_precision = 0.0;
};

// One group of tied scores: (tp0, fp0) the positive and negative weight of the rows scored above it,
// (tp1, fp1) of the rows scored above or equal.
LATHE_HOST_DEVICE void add_score_group(RankingSums& s, double tp0, double fp0, double tp1, double fp1) {
  s.auc += (fp1 - fp0) * (tp0 + tp1) * 0.5;
  const double recall_step = tp1 - tp0;
  // tp1 > 0 here, so the precision is a number; a group without positives adds nothing (the
  // test also keeps a rounding residue of a scan from adding a 0/0 precision).
  if (recall_step > 0.0) s.average_precision += recall_step * (tp1 / (tp1 + fp1));
}

LATHE_HOST_DEVICE RankingSums operator+(const RankingSums& a, const RankingSums& b) {
  RankingSums r;
  r.positive = a.positive + b.positive;
  r.negative = a.negative + b.negative;
  r.auc = a.auc + b.auc;
  r.average_precision = a.average_precision + b.average_precision;
  return r;
}

// The sum functor CUB's block reductions take.
struct AddSums {
  template <typename T>
  LATHE_HOST_DEVICE T operator()(const T& a, const T& b) const {
    return a + b;
  }
};

}  // namespace lathe
