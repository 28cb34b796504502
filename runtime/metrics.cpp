#include "runtime/metrics.h"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>

#include "kernels/metric_formulas.h"
#include "runtime/error.h"
#include "runtime/float_sort.h"
#include "runtime/metrics_cuda.h"
#include "runtime/team_threshold.h"

namespace lathe {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The confusion cell of a row is a 32-bit sort key on the GPU: classes^2 must fit.
constexpr std::int32_t kMaxClasses = 65535;

std::string number_text(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", v);
  return text;
}

// The first row (0-based) for which bad(row) holds, or n. Parallel, and the same answer for any
// thread count. Runs of rows are tested whole first, a loop without an early exit that the compiler
// vectorizes; only a run that holds a bad row is searched for it (a scan with a test of the answer
// so far at each row was a tenth of the binary metrics' time).
template <typename Bad>
std::int64_t first_bad_row(std::int64_t n, Bad bad) {
  constexpr std::int64_t kRunRows = 4096;
  const std::int64_t runs = (n + kRunRows - 1) / kRunRows;
  std::int64_t first = n;
#pragma omp parallel for schedule(static) reduction(min : first) if (n >= kTeamMinItems)
  for (std::int64_t k = 0; k < runs; ++k) {
    const std::int64_t begin = k * kRunRows, end = std::min(n, begin + kRunRows);
    if (begin >= first) continue;
    bool any = false;
    for (std::int64_t r = begin; r < end; ++r) any |= bad(r);
    if (!any) continue;
    for (std::int64_t r = begin; r < end; ++r) {
      if (bad(r)) {
        first = std::min(first, r);
        break;
      }
    }
  }
  return first;
}

void validate(Task task, std::span<const float> predictions, std::span<const float> labels,
              std::span<const float> weights, std::int32_t classes) {
  const std::int64_t n = static_cast<std::int64_t>(labels.size());
  if (n == 0) throw InputError("metrics: there are no rows to evaluate");
  if (task == Task::multiclass && (classes < 2 || classes > kMaxClasses)) {
    throw InputError("metrics: a multiclass task needs 2.." + std::to_string(kMaxClasses) + " classes, not " +
                     std::to_string(classes));
  }
  const std::int64_t per_row = task == Task::multiclass ? classes : 1;
  if (static_cast<std::int64_t>(predictions.size()) != n * per_row) {
    throw InputError("metrics: " + std::to_string(predictions.size()) + " predictions for " + std::to_string(n) +
                     " rows" + (per_row > 1 ? " of " + std::to_string(per_row) + " classes" : std::string()) +
                     " (expected " + std::to_string(n * per_row) + ")");
  }
  if (!weights.empty() && static_cast<std::int64_t>(weights.size()) != n) {
    throw InputError("metrics: " + std::to_string(weights.size()) + " weights for " + std::to_string(n) + " rows");
  }

  const float* y = labels.data();
  std::int64_t bad = n;
  std::string expected;
  switch (task) {
    case Task::regression:
      bad = first_bad_row(n, [y](std::int64_t r) { return !std::isfinite(y[r]); });
      expected = "a finite number";
      break;
    case Task::binary:
      bad = first_bad_row(n, [y](std::int64_t r) { return !(y[r] == 0.0f || y[r] == 1.0f); });
      expected = "0 or 1";
      break;
    case Task::multiclass: {
      const float top = static_cast<float>(classes - 1);
      bad = first_bad_row(n, [y, top](std::int64_t r) {
        return !(y[r] >= 0.0f && y[r] <= top && y[r] == std::floor(y[r]));
      });
      expected = "a class index in 0.." + std::to_string(classes - 1);
      break;
    }
  }
  if (bad < n) {
    throw InputError("metrics: row " + std::to_string(bad + 1) + " has label " + number_text(y[bad]) +
                     ", not " + expected);
  }
  if (!weights.empty()) {
    const float* w = weights.data();
    bad = first_bad_row(n, [w](std::int64_t r) { return !(std::isfinite(w[r]) && w[r] >= 0.0f); });
    if (bad < n) {
      throw InputError("metrics: row " + std::to_string(bad + 1) + " has weight " + number_text(w[bad]) +
                       ", not a finite number >= 0");
    }
  }
}

// ---- CPU backend: the reference. Rows are folded in fixed slices, merged in slice order, so the
// sums do not depend on the thread count.

constexpr std::int64_t kSliceRows = 16384;

template <typename Sums, typename AddRange>
Sums sum_slices(std::int64_t n, AddRange add_range) {
  const std::int64_t slices = (n + kSliceRows - 1) / kSliceRows;
  std::vector<Sums> partial(static_cast<std::size_t>(slices));
#pragma omp parallel for schedule(static) if (slices > 1)
  for (std::int64_t s = 0; s < slices; ++s) {
    Sums acc;
    add_range(acc, s * kSliceRows, std::min(n, (s + 1) * kSliceRows));
    partial[static_cast<std::size_t>(s)] = acc;
  }
  Sums total;
  for (const Sums& p : partial) total = total + p;
  return total;
}

RegressionSums regression_sums_cpu(const MetricRows& m, double shift) {
  return sum_slices<RegressionSums>(m.rows, [&](RegressionSums& acc, std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      add_regression_row(acc, m.predictions[r], m.labels[r], row_weight(m, r), shift);
    }
  });
}

// The rows sorted by descending score, ties in row order (a stable sort, as the GPU's stable radix
// sort leaves them), then one sequential pass over the groups of tied scores. A row for the sort:
// its score's order key, inverted for a descending order, and its weight's bits, negated for a
// positive row (the sign bit says the class, so -0.0 is a positive row of weight 0). 8 bytes:
// `lathe eval` of a 40M-row file holds these for every row, and the sort's scratch as many again.
// A radix sort: the comparison sort it replaces (__gnu_parallel::stable_sort) made the metrics of
// 1M rows take hundreds of times a memcpy of their scores and labels (bench/RESULTS.md, session
// 35).
RankingSums ranking_sums_cpu(const MetricRows& m) {
  const std::int64_t n = m.rows;
  std::vector<KeyedBits> rows(static_cast<std::size_t>(n)), spare(static_cast<std::size_t>(n));
#pragma omp parallel for schedule(static) if (n >= kTeamMinItems)
  for (std::int64_t r = 0; r < n; ++r) {
    const float w = row_weight(m, r);
    rows[static_cast<std::size_t>(r)] = {
        descending_score_key(m.predictions[r]),
        std::bit_cast<std::uint32_t>(m.labels[r] == 1.0f ? -w : w)};
  }
  const std::span<const KeyedBits> order = stable_sort_keyed(rows, spare);
  RankingSums s;
  double tp = 0.0, fp = 0.0;
  for (std::size_t i = 0; i < order.size();) {
    const double tp0 = tp, fp0 = fp;
    const std::uint32_t key = order[i].key;  // equal keys are equal scores: -0 is +0, no NaN here
    for (; i < order.size() && order[i].key == key; ++i) {
      const float w = std::bit_cast<float>(order[i].bits);
      (std::signbit(w) ? tp : fp) += static_cast<double>(std::fabs(w));
    }
    add_score_group(s, tp0, fp0, tp, fp);
  }
  s.positive = tp;
  s.negative = fp;
  return s;
}

BinarySums binary_sums_cpu(const MetricRows& m) {
  BinarySums out;
  out.rows = sum_slices<ClassificationSums>(m.rows, [&](ClassificationSums& acc, std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) add_binary_row(acc, m.predictions[r], m.labels[r], row_weight(m, r));
  });
  if (rankable(out.rows)) out.ranking = ranking_sums_cpu(m);
  return out;
}

MulticlassSums multiclass_sums_cpu(const MetricRows& m) {
  const std::int64_t k = m.classes;
  std::vector<std::int32_t> predicted(static_cast<std::size_t>(m.rows));
  MulticlassSums out;
  out.rows = sum_slices<ClassificationSums>(m.rows, [&](ClassificationSums& acc, std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      predicted[static_cast<std::size_t>(r)] = add_multiclass_row(
          acc, m.predictions + r * k, m.classes, static_cast<std::int32_t>(m.labels[r]), row_weight(m, r));
    }
  });
  out.counts.assign(static_cast<std::size_t>(k * k), 0);
  out.weights.assign(static_cast<std::size_t>(k * k), 0.0);
  for (std::int64_t r = 0; r < m.rows; ++r) {
    const std::size_t cell = static_cast<std::size_t>(static_cast<std::int64_t>(m.labels[r]) * k + predicted[r]);
    ++out.counts[cell];
    out.weights[cell] += static_cast<double>(row_weight(m, r));
  }
  return out;
}

// ---- From sums to metric values (both backends).

void require_weight(double weight) {
  if (!(weight > 0.0)) throw InputError("metrics: the sample weights sum to 0");
}

MetricSet regression_metrics(const RegressionSums& s) {
  require_weight(s.weight);
  MetricSet out;
  const double sse = s.squared_error;
  out.values["rmse"] = std::sqrt(sse / s.weight);
  out.values["mae"] = s.absolute_error / s.weight;
  // The total sum of squares around the weighted mean; as scikit-learn's r2_score, a constant
  // label scores 1 when predicted exactly and 0 otherwise, and fewer than two rows (counted
  // whatever their weight, as its n_samples) have no r2: NaN, as its "not well-defined with less
  // than two samples" (a single row would otherwise score 1 or 0 as a constant label).
  const double sst = std::max(0.0, s.label_squared - s.label * (s.label / s.weight));
  double r2 = sst > 0.0 ? 1.0 - sse / sst : (sse == 0.0 ? 1.0 : 0.0);
  if (std::isnan(sse) || s.rows < 2) r2 = kNaN;
  out.values["r2"] = r2;
  return out;
}

MetricSet binary_metrics(const BinarySums& s) {
  require_weight(s.rows.weight);
  MetricSet out;
  out.classes = 2;
  const bool nan = s.rows.nan_predictions > 0;
  out.values["logloss"] = nan ? kNaN : s.rows.log_loss / s.rows.weight;
  out.values["accuracy"] = nan ? kNaN : s.rows.correct / s.rows.weight;
  const bool ranked = rankable(s.rows) && s.ranking.positive > 0.0 && s.ranking.negative > 0.0;
  out.values["auc"] = ranked ? s.ranking.auc / (s.ranking.positive * s.ranking.negative) : kNaN;
  // With one class, as average_precision_score: every positive is found at full precision (1) when
  // all rows are positive; with none, recall is taken as 1 at every threshold, a score of 0.
  double pr_auc = kNaN;
  if (ranked) {
    pr_auc = s.ranking.average_precision / s.ranking.positive;
  } else if (s.rows.nan_predictions == 0) {
    pr_auc = s.rows.positive > 0.0 ? 1.0 : 0.0;
  }
  out.values["pr_auc"] = pr_auc;
  return out;
}

// Macro F1 as scikit-learn's f1_score(average='macro', zero_division=0): the mean over the classes
// that occur among the labels or the predictions (by count, whatever their weight) of
// 2 tp / (2 tp + fp + fn) = 2 tp / (true weight + predicted weight), 0 where that is 0/0.
double macro_f1(const MulticlassSums& s, std::int64_t k) {
  double total = 0.0;
  std::int64_t present = 0;
  for (std::int64_t c = 0; c < k; ++c) {
    std::int64_t count = 0;
    double true_weight = 0.0, predicted_weight = 0.0;
    for (std::int64_t o = 0; o < k; ++o) {
      count += s.counts[c * k + o] + s.counts[o * k + c];
      true_weight += s.weights[c * k + o];
      predicted_weight += s.weights[o * k + c];
    }
    if (count == 0) continue;
    ++present;
    const double denominator = true_weight + predicted_weight;
    total += denominator > 0.0 ? 2.0 * s.weights[c * k + c] / denominator : 0.0;
  }
  return total / static_cast<double>(present);  // present >= 1: every row has a true class
}

MetricSet multiclass_metrics(const MulticlassSums& s, std::int32_t classes) {
  require_weight(s.rows.weight);
  MetricSet out;
  out.classes = classes;
  const bool nan = s.rows.nan_predictions > 0;
  out.values["logloss"] = nan ? kNaN : s.rows.log_loss / s.rows.weight;
  out.values["accuracy"] = nan ? kNaN : s.rows.correct / s.rows.weight;
  out.values["f1_macro"] = nan ? kNaN : macro_f1(s, classes);
  out.confusion = s.counts;
  return out;
}

}  // namespace

MetricSet compute_metrics(const DeviceContext& ctx, Task task, std::span<const float> predictions,
                          std::span<const float> labels, std::span<const float> weights,
                          std::int32_t classes) {
  validate(task, predictions, labels, weights, classes);
  MetricRows m;
  m.predictions = predictions.data();
  m.labels = labels.data();
  m.weights = weights.empty() ? nullptr : weights.data();
  m.rows = static_cast<std::int64_t>(labels.size());
  m.classes = task == Task::multiclass ? classes : (task == Task::binary ? 2 : 0);

  // Where the GPU lacks the memory (std::nullopt), the CPU computes the same sums.
  switch (task) {
    case Task::regression: {
      const double shift = static_cast<double>(m.labels[0]);
      std::optional<RegressionSums> s;
      if (ctx.is_cuda()) s = regression_sums_cuda(ctx.cuda(), m, shift);
      return regression_metrics(s ? *s : regression_sums_cpu(m, shift));
    }
    case Task::binary: {
      std::optional<BinarySums> s;
      if (ctx.is_cuda()) s = binary_sums_cuda(ctx.cuda(), m);
      return binary_metrics(s ? *s : binary_sums_cpu(m));
    }
    case Task::multiclass: {
      std::optional<MulticlassSums> s;
      if (ctx.is_cuda()) s = multiclass_sums_cuda(ctx.cuda(), m);
      return multiclass_metrics(s ? *s : multiclass_sums_cpu(m), classes);
    }
  }
  throw Error("compute_metrics: unknown task");
}

std::vector<std::string> metric_names(Task task) {
  switch (task) {
    case Task::regression:
      return {"rmse", "mae", "r2"};
    case Task::binary:
      return {"logloss", "auc", "pr_auc", "accuracy"};
    case Task::multiclass:
      return {"logloss", "accuracy", "f1_macro"};
  }
  throw Error("metric_names: unknown task");
}

bool higher_is_better(const std::string& metric) {
  if (metric == "rmse" || metric == "mae" || metric == "logloss") return false;
  if (metric == "r2" || metric == "auc" || metric == "pr_auc" || metric == "accuracy" || metric == "f1_macro") {
    return true;
  }
  throw InputError("unknown metric '" + metric + "' (rmse, mae, r2, logloss, auc, pr_auc, accuracy, f1_macro)");
}

std::string stopping_metric(Task task, const std::string& chosen) {
  return chosen.empty() ? metric_names(task).front() : chosen;
}

bool metric_improves(const std::string& metric, double candidate, double best) {
  if (std::isnan(candidate)) return false;
  if (std::isnan(best)) return true;
  return higher_is_better(metric) ? candidate > best : candidate < best;
}

}  // namespace lathe
