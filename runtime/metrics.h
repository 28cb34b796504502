// Evaluation metrics of a task, computed on the chosen device over a whole (validation or test)
// set: regression rmse, mae, r2; binary logloss, accuracy, auc (exact ROC AUC, ties counted half),
// pr_auc (average precision, as scikit-learn's average_precision_score); multiclass logloss,
// accuracy, f1_macro and the confusion matrix. Sample weights optional.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "models/model.h"
#include "runtime/device_context.h"

namespace lathe {

struct MetricSet {
  std::map<std::string, double> values;  // keys: rmse, mae, r2, logloss, accuracy, auc, pr_auc, f1_macro
  std::int32_t classes = 0;
  std::vector<std::int64_t> confusion;  // multiclass: [true class][predicted class], classes^2
};

// predictions: regression values (n); binary P(positive) (n); multiclass probabilities (n x K,
// row-major). labels: regression targets, binary 0/1, multiclass class index. weights: empty = 1.
// Throws InputError for mismatched sizes or out-of-range labels (naming the row).
MetricSet compute_metrics(const DeviceContext& ctx, Task task, std::span<const float> predictions,
                          std::span<const float> labels, std::span<const float> weights,
                          std::int32_t classes);

// The metric names of a task, the first being the default for early stopping.
std::vector<std::string> metric_names(Task task);
bool higher_is_better(const std::string& metric);

}  // namespace lathe
