#include "runtime/metrics.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "runtime/team_threshold.h"
#include "tests/test_devices.h"

namespace lathe {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

class MetricsOnDevice : public testing::TestWithParam<DeviceKind> {};

std::span<const float> view(const std::vector<float>& v) { return {v.data(), v.size()}; }

double weight_of(const std::vector<float>& w, std::size_t i) { return w.empty() ? 1.0 : w[i]; }

// ---- Independent references: the definitions, written plainly (quadratic where that is simplest).

// ROC AUC as the probability that a positive outranks a negative, ties counted half, over all
// (positive, negative) pairs weighted by the product of their weights.
double pairwise_auc(const std::vector<float>& s, const std::vector<float>& y, const std::vector<float>& w) {
  long double num = 0, den = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (y[i] != 1.0f) continue;
    for (std::size_t j = 0; j < s.size(); ++j) {
      if (y[j] != 0.0f) continue;
      const long double pair = static_cast<long double>(weight_of(w, i)) * weight_of(w, j);
      den += pair;
      num += s[i] > s[j] ? pair : (s[i] == s[j] ? pair / 2 : 0);
    }
  }
  return static_cast<double>(num / den);
}

// Average precision: at each distinct threshold t, from the highest down, the recall gained times
// the precision of the rows scored >= t.
double threshold_average_precision(const std::vector<float>& s, const std::vector<float>& y,
                                   const std::vector<float>& w) {
  const std::set<float, std::greater<float>> thresholds(s.begin(), s.end());
  long double positives = 0;
  for (std::size_t i = 0; i < s.size(); ++i) positives += y[i] == 1.0f ? weight_of(w, i) : 0.0;
  long double ap = 0, previous_recall = 0;
  for (const float t : thresholds) {
    long double tp = 0, fp = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] >= t) (y[i] == 1.0f ? tp : fp) += weight_of(w, i);
    }
    const long double recall = tp / positives;
    if (recall > previous_recall) ap += (recall - previous_recall) * (tp / (tp + fp));
    previous_recall = recall;
  }
  return static_cast<double>(ap);
}

double clipped(double p) { return std::min(std::max(p, 1e-15), 1.0 - 1e-15); }

struct BinaryReference {
  double logloss, accuracy;
};

BinaryReference binary_reference(const std::vector<float>& s, const std::vector<float>& y,
                                 const std::vector<float>& w) {
  long double loss = 0, correct = 0, total = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const double wi = weight_of(w, i);
    const double p = clipped(s[i]);
    loss += wi * -(y[i] == 1.0f ? std::log(p) : std::log(1.0 - p));
    correct += ((s[i] > 0.5f) == (y[i] == 1.0f)) ? wi : 0.0;
    total += wi;
  }
  return {static_cast<double>(loss / total), static_cast<double>(correct / total)};
}

struct RegressionReference {
  double rmse, mae, r2;
};

RegressionReference regression_reference(const std::vector<float>& p, const std::vector<float>& y,
                                         const std::vector<float>& w) {
  long double total = 0, sy = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    total += weight_of(w, i);
    sy += weight_of(w, i) * y[i];
  }
  const long double mean = sy / total;
  long double sse = 0, sae = 0, sst = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const long double d = static_cast<long double>(p[i]) - y[i];
    sse += weight_of(w, i) * d * d;
    sae += weight_of(w, i) * std::fabs(d);
    sst += weight_of(w, i) * (y[i] - mean) * (y[i] - mean);
  }
  return {static_cast<double>(std::sqrt(sse / total)), static_cast<double>(sae / total),
          static_cast<double>(1 - sse / sst)};
}

std::vector<float> random_weights(std::mt19937_64& rng, std::size_t n) {
  std::uniform_real_distribution<float> u(0.0f, 3.0f);
  std::vector<float> w(n);
  for (auto& x : w) x = u(rng);
  if (n > 3) w[n / 2] = 0.0f;  // a zero weight counts nowhere
  return w;
}

// Binary rows: scores rounded to 0.1 (many ties) or continuous, labels drawn from the score so that
// the ranking is informative; both classes present when n >= 2.
void binary_rows(std::mt19937_64& rng, std::size_t n, bool ties, std::vector<float>& s, std::vector<float>& y) {
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  s.resize(n);
  y.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float score = u(rng);
    s[i] = ties ? std::round(score * 10.0f) / 10.0f : score;
    y[i] = u(rng) < 0.2f + 0.6f * score ? 1.0f : 0.0f;
  }
  if (n >= 2) {
    y[0] = 1.0f;
    y[1] = 0.0f;
  }
}

void expect_near_relative(double actual, double expected, double tolerance, const std::string& what) {
  if (std::isnan(expected)) {
    EXPECT_TRUE(std::isnan(actual)) << what << " = " << actual << ", expected NaN";
    return;
  }
  EXPECT_NEAR(actual, expected, tolerance * std::max(1.0, std::fabs(expected))) << what;
}

// ---- Known values from scikit-learn 1.9.1, computed with
//   python3 -c "import numpy as np; from sklearn.metrics import roc_auc_score, average_precision_score; ..."
// on float32 scores (every score below is exact in float32).

TEST_P(MetricsOnDevice, BinaryMatchesScikitLearnOnSmallExamples) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  {
    // roc_auc_score([0,0,1,1], [0.1,0.4,0.35,0.8]) == 0.75; average_precision_score == 0.8333333333333333
    const std::vector<float> y = {0, 0, 1, 1}, s = {0.1f, 0.4f, 0.35f, 0.8f};
    const MetricSet m = compute_metrics(ctx, Task::binary, view(s), view(y), {}, 2);
    EXPECT_NEAR(m.values.at("auc"), 0.75, 1e-12);
    EXPECT_NEAR(m.values.at("pr_auc"), 0.8333333333333333, 1e-12);
  }
  // Ties across classes, then sample weights:
  //   y = [0,1,0,1,1,0,1,0], s = [0.5,0.5,0.25,0.75,0.25,1.0,0.5,0.125], w = [1,2,0.5,1,3,1,0.25,2]
  //   roc_auc_score(y, s) == 0.59375, average_precision_score(y, s) == 0.5678571428571428
  //   with sample_weight=w: 0.6044444444444445 and 0.6457142857142857
  const std::vector<float> y = {0, 1, 0, 1, 1, 0, 1, 0};
  const std::vector<float> s = {0.5f, 0.5f, 0.25f, 0.75f, 0.25f, 1.0f, 0.5f, 0.125f};
  const std::vector<float> w = {1, 2, 0.5f, 1, 3, 1, 0.25f, 2};
  const MetricSet m = compute_metrics(ctx, Task::binary, view(s), view(y), {}, 2);
  EXPECT_NEAR(m.values.at("auc"), 0.59375, 1e-12);
  EXPECT_NEAR(m.values.at("pr_auc"), 0.5678571428571428, 1e-12);
  // Predicted positive: 0.75 and 1.0 only (0.5 itself votes negative); rows 0, 2, 3 and 7 are right.
  EXPECT_NEAR(m.values.at("accuracy"), 4.0 / 8.0, 1e-12);
  const MetricSet mw = compute_metrics(ctx, Task::binary, view(s), view(y), view(w), 2);
  EXPECT_NEAR(mw.values.at("auc"), 0.6044444444444445, 1e-12);
  EXPECT_NEAR(mw.values.at("pr_auc"), 0.6457142857142857, 1e-12);
  // The references agree with scikit-learn here too.
  EXPECT_NEAR(pairwise_auc(s, y, w), 0.6044444444444445, 1e-12);
  EXPECT_NEAR(threshold_average_precision(s, y, w), 0.6457142857142857, 1e-12);
  EXPECT_EQ(m.classes, 2);
  EXPECT_TRUE(m.confusion.empty());
}

TEST_P(MetricsOnDevice, BinaryMatchesReferencesWithTiesAndWeights) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  std::mt19937_64 rng(11);
  for (std::size_t n : {2, 3, 11, 101, 2048, 2049, 3001}) {
    for (bool ties : {true, false}) {
      for (bool weighted : {false, true}) {
        SCOPED_TRACE("n " + std::to_string(n) + (ties ? " ties" : "") + (weighted ? " weighted" : ""));
        std::vector<float> s, y;
        binary_rows(rng, n, ties, s, y);
        const std::vector<float> w = weighted ? random_weights(rng, n) : std::vector<float>{};
        const MetricSet m = compute_metrics(ctx, Task::binary, view(s), view(y), view(w), 2);
        expect_near_relative(m.values.at("auc"), pairwise_auc(s, y, w), 1e-12, "auc");
        expect_near_relative(m.values.at("pr_auc"), threshold_average_precision(s, y, w), 1e-12, "pr_auc");
        const BinaryReference ref = binary_reference(s, y, w);
        expect_near_relative(m.values.at("logloss"), ref.logloss, 1e-12, "logloss");
        expect_near_relative(m.values.at("accuracy"), ref.accuracy, 1e-12, "accuracy");
      }
    }
  }
}

// The ROC AUC of scores on few levels, from each level's positive and negative weights (a positive
// outranks the negatives of every lower level, and ties with its own level's half): a reference for
// more rows than the pairwise one can take.
double grouped_auc(const std::vector<float>& s, const std::vector<float>& y,
                   const std::vector<float>& w) {
  std::map<float, std::pair<long double, long double>>
      levels;  // ascending: positive, negative weight
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto& [positive, negative] = levels[s[i]];
    (y[i] == 1.0f ? positive : negative) += weight_of(w, i);
  }
  long double below = 0, num = 0, positives = 0, negatives = 0;
  for (const auto& [score, level] : levels) {
    num += level.first * (below + level.second / 2);
    below += level.second;
    positives += level.first;
    negatives += level.second;
  }
  return static_cast<double>(num / (positives * negatives));
}

// Rows enough for the team's parallel paths (the radix sort of the ranking, the label checks in
// runs of rows), on 64 score levels with -0 among the zeros: the references' AUC, average precision
// and log-loss, the same values bit for bit from one thread and from the team, and a bad label far
// in named by its row, before a later one.
TEST(BinaryMetricsCpu, ManyRowsOnFewLevelsMatchReferencesForAnyTeam) {
  const DeviceContext cpu = DeviceContext::cpu();
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  const int original = omp_get_max_threads();
  for (const std::size_t n : {std::size_t{40000}, std::size_t{100001}}) {
    for (const bool weighted : {false, true}) {
      SCOPED_TRACE("n " + std::to_string(n) + (weighted ? " weighted" : ""));
      std::vector<float> s(n), y(n);
      for (std::size_t i = 0; i < n; ++i) {
        s[i] = std::floor(u(rng) * 64.0f) / 64.0f;
        if (s[i] == 0.0f && i % 2 == 1) s[i] = -0.0f;
        y[i] = u(rng) < s[i] + 0.2f ? 1.0f : 0.0f;
      }
      const std::vector<float> w = weighted ? random_weights(rng, n) : std::vector<float>{};
      omp_set_num_threads(1);
      const MetricSet one = compute_metrics(cpu, Task::binary, view(s), view(y), view(w), 2);
      omp_set_num_threads(std::max(2, original));
      const MetricSet team = compute_metrics(cpu, Task::binary, view(s), view(y), view(w), 2);
      omp_set_num_threads(original);
      for (const char* name : {"auc", "pr_auc", "logloss", "accuracy"}) {
        EXPECT_EQ(one.values.at(name), team.values.at(name)) << name;
      }
      expect_near_relative(team.values.at("auc"), grouped_auc(s, y, w), 1e-12, "auc");
      expect_near_relative(team.values.at("pr_auc"), threshold_average_precision(s, y, w), 1e-12,
                           "pr_auc");
      expect_near_relative(team.values.at("logloss"), binary_reference(s, y, w).logloss, 1e-12,
                           "logloss");
      std::vector<float> bad = y;
      bad[n / 2 + 3] = 2.0f;
      bad[n - 1] = 0.5f;
      try {
        compute_metrics(cpu, Task::binary, view(s), view(bad), view(w), 2);
        ADD_FAILURE() << "no InputError";
      } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("row " + std::to_string(n / 2 + 4) + " has label 2"),
                  std::string::npos)
            << e.what();
      }
    }
  }
}

TEST_P(MetricsOnDevice, BinaryLogLossClipsProbabilities) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  // A certain mistake costs -log(1e-15) = 34.538776394910684, not infinity; a certain hit ~1e-15.
  const std::vector<float> y = {1, 0}, s = {0.0f, 0.0f};
  const MetricSet m = compute_metrics(ctx, Task::binary, view(s), view(y), {}, 2);
  EXPECT_NEAR(m.values.at("logloss"), (34.538776394910684 + 1e-15) / 2, 1e-12);
  EXPECT_EQ(m.values.at("auc"), 0.5);  // one tie between the classes
  EXPECT_EQ(m.values.at("pr_auc"), 0.5);
}

// auc is undefined with one class (NaN); pr_auc is average_precision_score's 1 when every row is
// positive and 0 when none is (python3 -c "from sklearn.metrics import average_precision_score as
// ap; print(ap([1,1,1,1], [.2,.7,.7,.4]), ap([0,0,0,0], [.2,.7,.7,.4]), ap([0,1,0,1], [.2,.7,.7,.4],
// sample_weight=[1,0,2,0]), ap([1], [.3]))": 1.0 0.0 0.0 1.0).
TEST_P(MetricsOnDevice, SingleClassGivesNaNRankingWithoutThrowing) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const std::vector<float> s = {0.2f, 0.7f, 0.7f, 0.4f};
  for (float label : {0.0f, 1.0f}) {
    const std::vector<float> y(s.size(), label);
    const MetricSet m = compute_metrics(ctx, Task::binary, view(s), view(y), {}, 2);
    EXPECT_TRUE(std::isnan(m.values.at("auc")));
    EXPECT_EQ(m.values.at("pr_auc"), label);
    EXPECT_TRUE(std::isfinite(m.values.at("logloss")));
    EXPECT_NEAR(m.values.at("accuracy"), 0.5, 1e-15);  // 0.7 and 0.7 vote positive
  }
  // Both classes present, but the positives weigh nothing: no ranking either.
  const std::vector<float> y = {0, 1, 0, 1}, w = {1, 0, 2, 0};
  const MetricSet m = compute_metrics(ctx, Task::binary, view(s), view(y), view(w), 2);
  EXPECT_TRUE(std::isnan(m.values.at("auc")));
  EXPECT_EQ(m.values.at("pr_auc"), 0.0);
  // One row is a single class too.
  const std::vector<float> one_s = {0.3f}, one_y = {1.0f};
  const MetricSet one = compute_metrics(ctx, Task::binary, view(one_s), view(one_y), {}, 2);
  EXPECT_TRUE(std::isnan(one.values.at("auc")));
  EXPECT_EQ(one.values.at("pr_auc"), 1.0);
  EXPECT_NEAR(one.values.at("accuracy"), 0.0, 1e-15);
}

TEST_P(MetricsOnDevice, NaNPredictionsGiveNaNMetrics) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> y = {0, 1, 0, 1}, s = {0.1f, nan, 0.3f, 0.9f};
  const MetricSet b = compute_metrics(ctx, Task::binary, view(s), view(y), {}, 2);
  for (const auto& [name, value] : b.values) EXPECT_TRUE(std::isnan(value)) << name;
  const MetricSet r = compute_metrics(ctx, Task::regression, view(s), view(y), {}, 0);
  for (const auto& [name, value] : r.values) EXPECT_TRUE(std::isnan(value)) << name;
  const std::vector<float> p = {0.5f, 0.5f, nan, 0.5f, 0.2f, 0.8f, 0.1f, 0.9f};
  const MetricSet mc = compute_metrics(ctx, Task::multiclass, view(p), view(y), {}, 2);
  for (const auto& [name, value] : mc.values) EXPECT_TRUE(std::isnan(value)) << name;
}

// An infinite prediction (a log-scale fit beyond exp's range) is taken as it is: rmse and mae inf,
// r2 -inf; a row of weight 0 does not count, whatever its prediction (0 * inf is NaN), but a NaN
// prediction still makes every metric NaN.
TEST_P(MetricsOnDevice, InfinitePredictionsCountAsTheyAreUnlessTheirWeightIsZero) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> y = {1, 2, 3, 4}, p = {1, inf, 3, -inf};
  const MetricSet m = compute_metrics(ctx, Task::regression, view(p), view(y), {}, 0);
  EXPECT_EQ(m.values.at("rmse"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(m.values.at("mae"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(m.values.at("r2"), -std::numeric_limits<double>::infinity());

  const std::vector<float> w = {1, 0, 2, 0}, off = {2, inf, 3, -inf};
  const MetricSet weighted = compute_metrics(ctx, Task::regression, view(off), view(y), view(w), 0);
  // Rows 1 and 3 alone: errors 1 and 0, weights 1 and 2; labels 1 and 3 around their mean 7/3.
  EXPECT_NEAR(weighted.values.at("rmse"), std::sqrt(1.0 / 3.0), 1e-15);
  EXPECT_NEAR(weighted.values.at("mae"), 1.0 / 3.0, 1e-15);
  EXPECT_NEAR(weighted.values.at("r2"), 1.0 - 1.0 / (16.0 / 9.0 + 2.0 * 4.0 / 9.0), 1e-12);

  const std::vector<float> nan_at_zero = {2, std::numeric_limits<float>::quiet_NaN(), 3, 4};
  const MetricSet n = compute_metrics(ctx, Task::regression, view(nan_at_zero), view(y), view(w), 0);
  for (const auto& [name, value] : n.values) EXPECT_TRUE(std::isnan(value)) << name;
}

TEST(MetricJson, InfiniteValuesAreTextAndUndefinedOnesNull) {
  // A stand-in for nlohmann::json: what metric_json builds it from.
  struct Built {
    std::string text;
    double number = 0.0;
    bool null = false;
    explicit Built(const char* t) : text(t) {}
    explicit Built(double v) : number(v) {}
    explicit Built(std::nullptr_t) : null(true) {}
  };
  EXPECT_EQ(metric_json<Built>(std::numeric_limits<double>::infinity()).text, "inf");
  EXPECT_EQ(metric_json<Built>(-std::numeric_limits<double>::infinity()).text, "-inf");
  EXPECT_TRUE(metric_json<Built>(kNaN).null);
  const Built finite = metric_json<Built>(0.25);
  EXPECT_FALSE(finite.null);
  EXPECT_TRUE(finite.text.empty());
  EXPECT_EQ(finite.number, 0.25);
}

TEST_P(MetricsOnDevice, RegressionMatchesReference) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  std::mt19937_64 rng(5);
  for (std::size_t n : {2, 11, 101, 12345}) {
    for (bool weighted : {false, true}) {
      SCOPED_TRACE("n " + std::to_string(n) + (weighted ? " weighted" : ""));
      // Labels far from zero, so that a one-pass variance without a shift would lose digits.
      std::normal_distribution<float> label(10000.0f, 3.0f), noise(0.0f, 1.0f);
      std::vector<float> y(n), p(n);
      for (std::size_t i = 0; i < n; ++i) {
        y[i] = label(rng);
        p[i] = y[i] + noise(rng);
      }
      const std::vector<float> w = weighted ? random_weights(rng, n) : std::vector<float>{};
      const MetricSet m = compute_metrics(ctx, Task::regression, view(p), view(y), view(w), 0);
      const RegressionReference ref = regression_reference(p, y, w);
      expect_near_relative(m.values.at("rmse"), ref.rmse, 1e-10, "rmse");
      expect_near_relative(m.values.at("mae"), ref.mae, 1e-10, "mae");
      expect_near_relative(m.values.at("r2"), ref.r2, 1e-8, "r2");
      EXPECT_EQ(m.classes, 0);
      EXPECT_TRUE(m.confusion.empty());
    }
  }
}

TEST_P(MetricsOnDevice, RegressionOfConstantLabelsScoresLikeScikitLearn) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  // r2_score([3,3,3], [3,3,3]) == 1.0 and r2_score([3,3,3], [3,4,3]) == 0.0 (force_finite).
  const std::vector<float> y = {3, 3, 3}, exact = {3, 3, 3}, off = {3, 4, 3};
  EXPECT_EQ(compute_metrics(ctx, Task::regression, view(exact), view(y), {}, 0).values.at("r2"), 1.0);
  const MetricSet m = compute_metrics(ctx, Task::regression, view(off), view(y), {}, 0);
  EXPECT_EQ(m.values.at("r2"), 0.0);
  EXPECT_NEAR(m.values.at("rmse"), std::sqrt(1.0 / 3.0), 1e-15);
  EXPECT_NEAR(m.values.at("mae"), 1.0 / 3.0, 1e-15);
}

// scikit-learn 1.9.1: r2_score([3], [3]), r2_score([3], [4]) and r2_score([3], [4],
// sample_weight=[2.5]) are nan ("not well-defined with less than two samples"); rows of weight 0
// are samples too: r2_score([1,2], [1,3], sample_weight=[1,0]) == 1.0 and
// r2_score([1,2], [2,3], sample_weight=[1,0]) == 0.0 (constant labels by weight); r2_score([1,2],
// [1,2.5]) == 0.5.
TEST_P(MetricsOnDevice, RegressionOfOneRowHasNoR2) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const std::vector<float> y = {3}, exact = {3}, off = {4}, w = {2.5f};
  const MetricSet e = compute_metrics(ctx, Task::regression, view(exact), view(y), {}, 0);
  EXPECT_TRUE(std::isnan(e.values.at("r2"))) << e.values.at("r2");
  EXPECT_EQ(e.values.at("rmse"), 0.0);
  EXPECT_EQ(e.values.at("mae"), 0.0);
  const MetricSet o = compute_metrics(ctx, Task::regression, view(off), view(y), view(w), 0);
  EXPECT_TRUE(std::isnan(o.values.at("r2"))) << o.values.at("r2");
  EXPECT_EQ(o.values.at("rmse"), 1.0);
  EXPECT_EQ(o.values.at("mae"), 1.0);

  const std::vector<float> y2 = {1, 2}, w2 = {1, 0};
  const std::vector<float> hit = {1, 3}, miss = {2, 3}, half = {1, 2.5f};
  EXPECT_EQ(compute_metrics(ctx, Task::regression, view(hit), view(y2), view(w2), 0).values.at("r2"), 1.0);
  EXPECT_EQ(compute_metrics(ctx, Task::regression, view(miss), view(y2), view(w2), 0).values.at("r2"), 0.0);
  EXPECT_EQ(compute_metrics(ctx, Task::regression, view(half), view(y2), {}, 0).values.at("r2"), 0.5);
}

// Eight rows, five classes; class 3 is never predicted, class 4 never occurs (and is left out of
// the macro average). scikit-learn 1.9.1, with yt = [0,1,2,3,3,1,0,2], yp = [0,1,2,0,2,1,0,1] and
// P[i] = 0.1 everywhere but 0.6 at yp[i] (float32 values), w = [1,2,0.5,1,3,1,0.25,2]:
//   f1_score(yt, yp, average='macro', zero_division=0) == 0.525; with sample_weight=w 0.4077380952380953
//   accuracy_score == 0.625; with w 0.4418604651162791
//   log_loss(yt, P, labels=range(5)) == 1.1827353943033079; with w 1.510877394669556
TEST_P(MetricsOnDevice, MulticlassMatchesScikitLearn) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const std::vector<float> yt = {0, 1, 2, 3, 3, 1, 0, 2};
  const std::vector<int> yp = {0, 1, 2, 0, 2, 1, 0, 1};
  const std::vector<float> w = {1, 2, 0.5f, 1, 3, 1, 0.25f, 2};
  constexpr int k = 5;
  std::vector<float> p(yt.size() * k, 0.1f);
  for (std::size_t i = 0; i < yt.size(); ++i) p[i * k + yp[i]] = 0.6f;

  const MetricSet m = compute_metrics(ctx, Task::multiclass, view(p), view(yt), {}, k);
  EXPECT_NEAR(m.values.at("f1_macro"), 0.525, 1e-12);
  EXPECT_NEAR(m.values.at("accuracy"), 0.625, 1e-12);
  EXPECT_NEAR(m.values.at("logloss"), 1.1827353943033079, 1e-7);  // float32 0.6f and 0.1f
  EXPECT_EQ(m.classes, k);
  const std::vector<std::int64_t> confusion = {2, 0, 0, 0, 0,   //
                                               0, 2, 0, 0, 0,   //
                                               0, 1, 1, 0, 0,   //
                                               1, 0, 1, 0, 0,   //
                                               0, 0, 0, 0, 0};  // sklearn's confusion_matrix(labels=range(5))
  EXPECT_EQ(m.confusion, confusion);

  const MetricSet mw = compute_metrics(ctx, Task::multiclass, view(p), view(yt), view(w), k);
  EXPECT_NEAR(mw.values.at("f1_macro"), 0.4077380952380953, 1e-12);
  EXPECT_NEAR(mw.values.at("accuracy"), 0.4418604651162791, 1e-12);
  EXPECT_NEAR(mw.values.at("logloss"), 1.510877394669556, 1e-7);
  EXPECT_EQ(mw.confusion, confusion);  // counts, whatever the weights
}

TEST_P(MetricsOnDevice, MulticlassArgmaxTiesGoToTheLowestClass) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const std::vector<float> p = {0.25f, 0.25f, 0.25f, 0.25f,  //
                                0.1f, 0.4f, 0.4f, 0.1f,      //
                                0.0f, 0.0f, 0.5f, 0.5f};
  const std::vector<float> y = {3, 2, 3};
  const MetricSet m = compute_metrics(ctx, Task::multiclass, view(p), view(y), {}, 4);
  EXPECT_EQ(m.values.at("accuracy"), 0.0);
  EXPECT_EQ(m.confusion[3 * 4 + 0], 1);
  EXPECT_EQ(m.confusion[2 * 4 + 1], 1);
  EXPECT_EQ(m.confusion[3 * 4 + 2], 1);
  EXPECT_NEAR(m.values.at("logloss"), (-std::log(0.25) - std::log(0.4f) - std::log(0.5)) / 3, 1e-7);
}

TEST_P(MetricsOnDevice, BadInputThrowsInputErrorNamingTheRow) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto message = [&](Task task, const std::vector<float>& p, const std::vector<float>& y,
                     const std::vector<float>& w, std::int32_t classes) -> std::string {
    try {
      compute_metrics(ctx, task, view(p), view(y), view(w), classes);
    } catch (const InputError& e) {
      return e.what();
    }
    return "(no InputError)";
  };
  const std::vector<float> s5 = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
  EXPECT_NE(message(Task::binary, s5, {0, 1, 1, 2, 0}, {}, 2).find("row 4 has label 2"), std::string::npos);
  EXPECT_NE(message(Task::binary, s5, {0, 1, nan, 2, 0}, {}, 2).find("row 3 has label nan"), std::string::npos);
  EXPECT_NE(message(Task::binary, s5, {0, 0.5f, 1, 1, 0}, {}, 2).find("row 2"), std::string::npos);
  EXPECT_NE(message(Task::regression, s5, {0, 1, 2, 3, nan}, {}, 0).find("row 5"), std::string::npos);
  EXPECT_NE(message(Task::regression, s5, {0, INFINITY, 2, 3, 4}, {}, 0).find("row 2"), std::string::npos);
  const std::vector<float> p3(5 * 3, 1.0f / 3);
  EXPECT_NE(message(Task::multiclass, p3, {0, 1, 2, 3, 0}, {}, 3).find("row 4 has label 3"), std::string::npos);
  EXPECT_NE(message(Task::multiclass, p3, {0, 1, -1, 2, 0}, {}, 3).find("row 3"), std::string::npos);
  EXPECT_NE(message(Task::multiclass, p3, {0, 1.5f, 1, 2, 0}, {}, 3).find("row 2"), std::string::npos);
  EXPECT_NE(message(Task::multiclass, p3, {0, 1, 2, 1, nan}, {}, 3).find("row 5"), std::string::npos);
  EXPECT_NE(message(Task::binary, s5, {0, 1, 1, 1, 0}, {1, 1, -1, 1, 1}, 2).find("row 3 has weight"),
            std::string::npos);
  EXPECT_NE(message(Task::binary, s5, {0, 1, 1, 1, 0}, {1, nan, 1, 1, 1}, 2).find("row 2 has weight"),
            std::string::npos);
  // Sizes, empty sets, class counts, all-zero weights.
  EXPECT_NE(message(Task::binary, s5, {0, 1, 1, 0}, {}, 2).find("predictions"), std::string::npos);
  EXPECT_NE(message(Task::multiclass, s5, {0, 1, 1, 0, 1}, {}, 3).find("predictions"), std::string::npos);
  EXPECT_NE(message(Task::binary, s5, {0, 1, 1, 0, 1}, {1, 1}, 2).find("weights"), std::string::npos);
  EXPECT_NE(message(Task::binary, {}, {}, {}, 2).find("no rows"), std::string::npos);
  EXPECT_NE(message(Task::multiclass, s5, {0, 0, 0, 0, 0}, {}, 1).find("classes"), std::string::npos);
  EXPECT_NE(message(Task::regression, s5, {0, 1, 1, 0, 1}, {0, 0, 0, 0, 0}, 0).find("sum to 0"),
            std::string::npos);
}

// The device against the CPU reference (on the CPU instance: a second run, which must give the same
// bits) over awkward sizes, every task, with and without weights; and the device against itself.
TEST_P(MetricsOnDevice, MatchesCpuOverAwkwardSizesAndIsDeterministic) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const DeviceContext cpu = DeviceContext::cpu();
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  constexpr std::int32_t k = 7;
  for (std::size_t n : {1, 11, 101, 2048, 12345, 1000003}) {
    for (bool weighted : {false, true}) {
      SCOPED_TRACE("n " + std::to_string(n) + (weighted ? " weighted" : ""));
      const std::vector<float> w = weighted ? random_weights(rng, n) : std::vector<float>{};
      std::vector<float> s, y;
      binary_rows(rng, n, n % 2 == 1, s, y);
      std::vector<float> target(n), value(n), classes(n), probabilities(n * k);
      for (std::size_t i = 0; i < n; ++i) {
        target[i] = 100.0f * u(rng);
        value[i] = target[i] + u(rng) - 0.5f;
        // Coarse probabilities, so that rows often tie for the largest.
        float total = 0;
        for (int c = 0; c < k; ++c) total += probabilities[i * k + c] = std::round(u(rng) * 8.0f) + 0.5f;
        for (int c = 0; c < k; ++c) probabilities[i * k + c] /= total;
        // Class k - 1 is never a label, only (sometimes) predicted.
        classes[i] = static_cast<float>(std::min<int>(k - 2, static_cast<int>(u(rng) * (k - 1))));
      }
      struct Case {
        Task task;
        const std::vector<float>& p;
        const std::vector<float>& y;
        std::int32_t classes;
      };
      for (const Case& c : {Case{Task::regression, value, target, 0}, Case{Task::binary, s, y, 2},
                            Case{Task::multiclass, probabilities, classes, k}}) {
        const MetricSet expected = compute_metrics(cpu, c.task, view(c.p), view(c.y), view(w), c.classes);
        const MetricSet got = compute_metrics(ctx, c.task, view(c.p), view(c.y), view(w), c.classes);
        const MetricSet again = compute_metrics(ctx, c.task, view(c.p), view(c.y), view(w), c.classes);
        ASSERT_EQ(got.values.size(), metric_names(c.task).size());
        for (const std::string& name : metric_names(c.task)) {
          expect_near_relative(got.values.at(name), expected.values.at(name), 1e-9, name);
          const double a = got.values.at(name), b = again.values.at(name);
          EXPECT_TRUE(a == b || (std::isnan(a) && std::isnan(b))) << name << ": " << a << " then " << b;
        }
        EXPECT_EQ(got.confusion, expected.confusion);
        EXPECT_EQ(got.classes, expected.classes);
      }
    }
  }
}

LATHE_INSTANTIATE_FOR_DEVICES(MetricsOnDevice);

TEST(MetricsCpu, ThreadCountDoesNotChangeTheBits) {
  std::mt19937_64 rng(9);
  const std::size_t n = 100003;
  std::vector<float> s, y;
  binary_rows(rng, n, true, s, y);
  const std::vector<float> w = random_weights(rng, n);
  const DeviceContext cpu = DeviceContext::cpu();
  const int threads = omp_get_max_threads();
  const MetricSet many = compute_metrics(cpu, Task::binary, view(s), view(y), view(w), 2);
  omp_set_num_threads(1);
  const MetricSet one = compute_metrics(cpu, Task::binary, view(s), view(y), view(w), 2);
  omp_set_num_threads(3);
  const MetricSet three = compute_metrics(cpu, Task::binary, view(s), view(y), view(w), 2);
  omp_set_num_threads(threads);
  EXPECT_EQ(many.values, one.values);
  EXPECT_EQ(many.values, three.values);
}

// Below kTeamMinItems rows the ranking sorts on the calling thread, above it on the team. Every
// row repeated once more leaves every binary metric as it was (each pair is counted four times),
// so 20000 rows (one thread) and the same rows twice (40000: the team) must agree.
TEST(MetricsCpu, SortOnOneThreadOrOnTheTeamGivesTheSameMetrics) {
  std::mt19937_64 rng(21);
  const std::size_t n = 20000;
  ASSERT_LT(static_cast<std::int64_t>(n), kTeamMinItems);
  ASSERT_GE(static_cast<std::int64_t>(2 * n), kTeamMinItems);
  std::vector<float> s, y;
  binary_rows(rng, n, true, s, y);
  const std::vector<float> w = random_weights(rng, n);
  std::vector<float> s2 = s, y2 = y, w2 = w;
  s2.insert(s2.end(), s.begin(), s.end());
  y2.insert(y2.end(), y.begin(), y.end());
  w2.insert(w2.end(), w.begin(), w.end());
  const DeviceContext cpu = DeviceContext::cpu();
  const MetricSet once = compute_metrics(cpu, Task::binary, view(s), view(y), view(w), 2);
  const MetricSet twice = compute_metrics(cpu, Task::binary, view(s2), view(y2), view(w2), 2);
  for (const char* name : {"auc", "pr_auc", "logloss", "accuracy"}) {
    expect_near_relative(twice.values.at(name), once.values.at(name), 1e-12, name);
  }
}

TEST(MetricsNames, FirstIsTheDefaultAndDirectionsAreKnown) {
  EXPECT_EQ(metric_names(Task::regression), (std::vector<std::string>{"rmse", "mae", "r2"}));
  EXPECT_EQ(metric_names(Task::binary).front(), "logloss");
  EXPECT_EQ(metric_names(Task::multiclass).front(), "logloss");
  for (Task task : {Task::regression, Task::binary, Task::multiclass}) {
    for (const std::string& name : metric_names(task)) EXPECT_NO_THROW(higher_is_better(name)) << name;
  }
  EXPECT_FALSE(higher_is_better("rmse"));
  EXPECT_FALSE(higher_is_better("logloss"));
  EXPECT_TRUE(higher_is_better("auc"));
  EXPECT_TRUE(higher_is_better("pr_auc"));
  EXPECT_TRUE(higher_is_better("f1_macro"));
  EXPECT_TRUE(higher_is_better("r2"));
  EXPECT_THROW(higher_is_better("gini"), InputError);
}

}  // namespace
}  // namespace lathe
