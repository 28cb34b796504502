// io/html_report.h's curves: the ROC and precision-recall points of binary scores, one point per
// distinct score from the highest down (ties one step, -0 and +0 one score), against a plain
// reference: for each distinct threshold, the rows scored at or above it counted directly.
#include "io/html_report.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <functional>
#include <random>
#include <set>
#include <vector>

namespace lathe {
namespace {

struct Counts {
  std::vector<double> tp, fp;  // after each distinct score, highest first
  double positives = 0, negatives = 0;
};

Counts counts_by_threshold(const std::vector<float>& scores, const std::vector<float>& labels) {
  Counts c;
  // std::set's float comparison puts -0 and +0 in one key, as the curves do.
  const std::set<float, std::greater<float>> thresholds(scores.begin(), scores.end());
  for (const float y : labels) (y > 0.5f ? c.positives : c.negatives) += 1;
  for (const float t : thresholds) {
    double tp = 0, fp = 0;
    for (std::size_t i = 0; i < scores.size(); ++i) {
      if (scores[i] >= t) (labels[i] > 0.5f ? tp : fp) += 1;
    }
    c.tp.push_back(tp);
    c.fp.push_back(fp);
  }
  return c;
}

void expect_curves_match(const std::vector<float>& scores, const std::vector<float>& labels) {
  const Counts c = counts_by_threshold(scores, labels);
  const std::vector<CurvePoint> roc = roc_curve(scores, labels);
  ASSERT_EQ(roc.size(), c.tp.size() + 1);
  EXPECT_EQ(roc[0].x, 0.0);
  EXPECT_EQ(roc[0].y, 0.0);
  for (std::size_t k = 0; k < c.tp.size(); ++k) {
    EXPECT_DOUBLE_EQ(roc[k + 1].x, c.fp[k] / c.negatives) << k;
    EXPECT_DOUBLE_EQ(roc[k + 1].y, c.tp[k] / c.positives) << k;
  }
  const std::vector<CurvePoint> pr = precision_recall_curve(scores, labels);
  ASSERT_EQ(pr.size(), c.tp.size() + 1);
  for (std::size_t k = 0; k < c.tp.size(); ++k) {
    EXPECT_DOUBLE_EQ(pr[k + 1].x, c.tp[k] / c.positives) << k;
    EXPECT_DOUBLE_EQ(pr[k + 1].y, c.tp[k] / (c.tp[k] + c.fp[k])) << k;
  }
}

TEST(ReportCurves, TiesAndSignedZerosMakeOneStepEach) {
  const std::vector<float> scores = {0.5f, -0.0f, 0.0f, 0.9f, 0.5f, 0.1f, 0.0f};
  const std::vector<float> labels = {1, 0, 1, 1, 0, 0, 0};
  expect_curves_match(scores, labels);
  EXPECT_EQ(roc_curve(scores, labels).size(), 5u);  // 0.9, 0.5, 0.1, 0: four steps after (0, 0)
}

TEST(ReportCurves, ManyRowsOnFewScoresMatchTheReference) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (const std::size_t n : {std::size_t{1500}, std::size_t{50000}}) {
    std::vector<float> scores(n), labels(n);
    for (std::size_t i = 0; i < n; ++i) {
      scores[i] = static_cast<float>(static_cast<int>(u(rng) * 40.0f)) / 40.0f;
      if (scores[i] == 0.0f && i % 2 == 0) scores[i] = -0.0f;
      labels[i] = u(rng) < scores[i] ? 1.0f : 0.0f;
    }
    SCOPED_TRACE(n);
    expect_curves_match(scores, labels);
  }
}

}  // namespace
}  // namespace lathe
