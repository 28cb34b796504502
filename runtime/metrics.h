// Evaluation metrics of a task, computed on the chosen device over a whole (validation or test)
// set: regression rmse, mae, r2; binary logloss, accuracy, auc (exact ROC AUC, ties counted half),
// pr_auc (average precision, as scikit-learn's average_precision_score); multiclass logloss,
// accuracy, f1_macro and the confusion matrix. Sample weights optional. The per-row terms are the
// formulas of kernels/metric_formulas.h; the CPU backend (runtime/metrics.cpp) is the reference and
// the CUDA backend (kernels/metrics.cu) agrees with it to rounding. Both are deterministic: the same
// inputs on the same device give the same bits (the CPU's also for any thread count).
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "kernels/metric_formulas.h"
#include "models/model.h"
#include "runtime/device_context.h"
#include "runtime/float_sort.h"

namespace lathe {

// The radix key that orders binary scores from the highest down, -0 and +0 one key (no NaN): the
// order of the ranking metrics (ROC AUC, average precision) and of the report's curves.
inline std::uint32_t descending_score_key(float score) {
  return ~float_order_key(score_sort_key(score));
}

struct MetricSet {
  std::map<std::string, double> values;  // keys: rmse, mae, r2, logloss, accuracy, auc, pr_auc, f1_macro
  std::int32_t classes = 0;             // 0 regression, 2 binary, K multiclass
  std::vector<std::int64_t> confusion;  // multiclass: [true class][predicted class], classes^2
};

// predictions: regression values (n); binary P(positive) (n); multiclass probabilities (n x K,
// row-major), K = classes (ignored for the other tasks). labels: regression targets, binary 0/1,
// multiclass class index. weights: empty = 1. Host memory; the GPU backend uploads what it needs.
//
// As scikit-learn computes them, with sample weights:
//   rmse = sqrt(sum w (p - y)^2 / sum w); mae = sum w |p - y| / sum w;
//   r2 = 1 - SSE / SST around the weighted mean (constant labels: 1 if predicted exactly, else 0);
//   NaN for fewer than 2 rows, counting rows of weight 0 too, as r2_score counts its samples;
//   logloss: the weighted mean of -log P(label), probabilities clipped to [1e-15, 1 - 1e-15] (not renormalized);
//   accuracy: binary predicts 1 when p > 0.5; multiclass the argmax (ties to the lowest class);
//   auc: roc_auc_score (ties count half), NaN when only one class has positive weight (not an
//   error); pr_auc: average_precision_score (one step per distinct score), which with one class is
//   1 (all positive) or 0 (none positive, as its recall of 1 at every threshold gives);
//   f1_macro: f1_score(average='macro', zero_division=0) over the classes present (by count) among
//   the labels or the predictions; confusion: row counts, [true class][predicted class].
// A NaN prediction (a diverged model) makes every value NaN (not an error); the confusion counts
// are still filled.
// Throws InputError, naming the first bad row (counted from 1), for mismatched sizes, no rows, a
// multiclass K outside 2..65535, labels out of range (binary not 0/1, multiclass not an integer in
// 0..K-1, regression not finite; NaN always), weights negative or not finite, or weights summing
// to 0. Throws CudaError for CUDA failures; where the GPU lacks memory, the CPU computes instead.
MetricSet compute_metrics(const DeviceContext& ctx, Task task, std::span<const float> predictions,
                          std::span<const float> labels, std::span<const float> weights,
                          std::int32_t classes);

// A metric value as Lathe's JSON outputs write it (`lathe eval --json`, `lathe train`'s summary and
// metrics log), JSON having neither infinity nor NaN: a finite value as its number; an infinite one
// as the text "inf" or "-inf", as the text output prints it and Python's float() reads it (an
// infinite prediction makes rmse and mae inf and r2 -inf: values, not missing ones); NaN, a metric
// that is undefined (r2 of one row, auc of one class, a diverged model's), as null. Json is
// nlohmann::json (a parameter, so that this header needs no JSON library).
template <typename Json>
Json metric_json(double value) {
  if (std::isinf(value)) return Json(value > 0 ? "inf" : "-inf");
  return std::isnan(value) ? Json(nullptr) : Json(value);
}

// The metric names of a task (the keys of MetricSet::values), the first being the default for early
// stopping: regression rmse, mae, r2; binary logloss, auc, pr_auc, accuracy; multiclass logloss,
// accuracy, f1_macro.
std::vector<std::string> metric_names(Task task);
// Whether a larger value of `metric` is better (r2, auc, pr_auc, accuracy, f1_macro). Throws
// InputError for a name that is not a metric.
bool higher_is_better(const std::string& metric);
// The metric that chooses the epoch: `chosen` (--metric, or a model's stored choice), or the
// task's default, the first of metric_names, when it is empty. Not checked against the task.
std::string stopping_metric(Task task, const std::string& chosen);
// Whether `candidate` is better than `best` by `metric`'s direction: a NaN candidate (an undefined
// metric) never is, and anything is better than a NaN best (nothing measured yet).
bool metric_improves(const std::string& metric, double candidate, double best);

}  // namespace lathe
