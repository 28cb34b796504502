// Warm starts over a refitted preparation: carry_parameters converts an earlier model's parameters
// so that the model over the new preparation predicts what the earlier one did, on the same raw
// rows (present values, no clipping, categories both preparations know), for every model kind and
// feature kind.
#include "runtime/warm_start.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "io/train_table.h"
#include "runtime/error.h"
#include "runtime/profile.h"

namespace lathe {
namespace {

const std::vector<std::string> kCities = {"Lima", "Oslo", "Rome"};
const std::vector<std::string> kColors = {"blue", "green", "red", "white"};

// An in-memory table (column-major block) of three numeric columns and two categorical ones.
struct Table {
  std::vector<ColumnInfo> columns;
  std::vector<float> block;
  std::int64_t rows = 0;

  ColumnBlockView view() const {
    return {block.data(), rows, static_cast<std::int64_t>(columns.size())};
  }
};

// `rows` rows whose numeric columns are drawn around `center` with spread `spread` (each column its
// own multiple of them), missing at `missing_rate`; the file lists the categories in the order
// `cities` / `colors` (codes index those lists), so the two tables' codes differ.
Table make_table(std::int64_t rows, double center, double spread, double missing_rate,
                 std::vector<std::string> cities, std::vector<std::string> colors,
                 std::uint64_t seed) {
  Table t;
  t.rows = rows;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const char* name : {"x1", "x2", "x3"}) {
    ColumnInfo c;
    c.name = name;
    c.type = ColumnType::numeric;
    t.columns.push_back(c);
  }
  for (std::int64_t r = 0; r < rows; ++r) {  // x1: normal
    t.block.push_back(
        uniform(rng) < missing_rate ? nan : static_cast<float>(center + spread * normal(rng)));
  }
  for (std::int64_t r = 0; r < rows; ++r) {  // x2: uniform, other center and scale
    t.block.push_back(static_cast<float>(2.0 * center - 3.0 + 4.0 * spread * uniform(rng)));
  }
  for (std::int64_t r = 0; r < rows; ++r) {  // x3: skewed
    t.block.push_back(static_cast<float>(center + spread * std::exp(normal(rng))));
  }
  for (const auto& [name, labels] : {std::pair{"city", cities}, std::pair{"color", colors}}) {
    ColumnInfo c;
    c.name = name;
    c.type = ColumnType::categorical;
    c.categories = labels;
    t.columns.push_back(c);
    std::uniform_int_distribution<int> code(0, static_cast<int>(labels.size()) - 1);
    for (std::int64_t r = 0; r < rows; ++r) t.block.push_back(static_cast<float>(code(rng)));
  }
  return t;
}

FittedPreparation fit(const Table& t, const PreparationOptions& options) {
  ProfileOptions profile_options;
  DataProfile profile = make_profile(t.columns, profile_options);
  profile_block(DeviceContext::cpu(), t.view(), {}, profile, profile_options);
  return fit_preparation(profile, options);
}

PreparedBlock prepare(const FittedPreparation& fitted, const Table& t) {
  PreparedBlock out;
  apply_preparation(DeviceContext::cpu(), bind_preparation(fitted, t.columns), t.view(), out);
  return out;
}

// The shape `lathe train` gives such a model (outputs: the classes of a multiclass task).
ModelShape shape_of(const FittedPreparation& fitted, Task task, ModelKind kind, std::int32_t outputs,
                    std::int32_t factors) {
  return shape_for(fitted, task, kind, outputs, false, 1.0f, factors);
}

ModelParameters random_parameters(const ModelShape& shape, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> weight(0.0f, 1.0f), factor(0.0f, 0.5f);
  const auto outputs = static_cast<std::size_t>(shape.outputs);
  const auto features = static_cast<std::size_t>(shape.features);
  ModelParameters p;
  for (std::size_t i = 0; i < outputs * features; ++i) p.weights.push_back(weight(rng));
  for (std::size_t o = 0; o < outputs; ++o) p.bias.push_back(weight(rng));
  for (std::size_t i = 0; i < outputs * features * static_cast<std::size_t>(shape.factors); ++i) {
    p.factors.push_back(factor(rng));
  }
  return p;
}

// A model's predictions of `rows`: regression in the label's units, else the raw scores.
std::vector<float> predictions(const ModelShape& shape, const ModelParameters& parameters,
                               const PreparedBlock& rows, const TargetScaling& target) {
  auto model = make_model(DeviceContext::cpu(), shape, OptimizerConfig{}, 1);
  model->set_parameters(parameters);
  const PreparedRowsView view{rows.dense.data(), rows.slot.data(), rows.value.data(), rows.rows};
  std::vector<float> out(static_cast<std::size_t>(rows.rows * shape.outputs));
  if (shape.task == Task::regression) {
    model->predict_regression(view, target.mean, target.std, out.data());
  } else {
    model->predict_scores(view, out.data());
  }
  return out;
}

struct Case {
  Task task = Task::binary;
  ModelKind kind = ModelKind::linear;
  std::int32_t outputs = 1;
  std::int32_t factors = 0;
  PreparationOptions options;
  TargetScaling old_target, new_target;
};

// Fits the case's preparation on two differently distributed tables, carries random parameters of
// a model over the first to the second and compares both models' predictions on a third table.
// Returns the carry's report.
CarryReport expect_same_function(const Case& c, std::uint64_t seed) {
  const Table old_data = make_table(500, 5.0, 2.0, 0.1, kCities, kColors, seed);
  const Table new_data = make_table(700, 8.0, 3.5, 0.2, {"Rome", "Lima", "Oslo"},
                                    {"white", "red", "green", "blue"}, seed + 1);
  const Table rows = make_table(300, 6.0, 2.5, 0.0, {"Oslo", "Rome", "Lima"}, kColors, seed + 2);
  const FittedPreparation from = fit(old_data, c.options), to = fit(new_data, c.options);
  const ModelShape old_shape = shape_of(from, c.task, c.kind, c.outputs, c.factors);
  const ModelShape new_shape = shape_of(to, c.task, c.kind, c.outputs, c.factors);
  const ModelParameters parameters = random_parameters(old_shape, seed + 3);
  CarryReport report;
  const ModelParameters carried =
      carry_parameters(from, parameters, c.old_target, to, c.new_target, new_shape, &report);
  EXPECT_EQ(report.carried, to.expanded_features());  // the same features, all of them

  const std::vector<float> expected =
      predictions(old_shape, parameters, prepare(from, rows), c.old_target);
  const std::vector<float> got = predictions(new_shape, carried, prepare(to, rows), c.new_target);
  EXPECT_EQ(got.size(), expected.size());
  // Relative to the prediction, or to the predictions' mean magnitude for one near zero: float
  // rounding of the prepared values and of the converted parameters, about 1e-7 of each term, and
  // for an fm's scores float sums of its pairwise products.
  double typical = 0.0;
  for (const float e : expected) typical += std::abs(static_cast<double>(e));
  typical /= static_cast<double>(std::max<std::size_t>(expected.size(), 1));
  double worst = 0.0;
  for (std::size_t i = 0; i < std::min(got.size(), expected.size()); ++i) {
    const double scale = std::max(std::abs(static_cast<double>(expected[i])), typical);
    worst = std::max(worst, std::abs(static_cast<double>(got[i]) - expected[i]) / scale);
  }
  EXPECT_LT(worst, 1e-5) << "first rows: expected " << expected[0] << ", " << expected[1]
                         << "; got " << got[0] << ", " << got[1];
  return report;
}

Case regression_case(ScaleKind scale) {
  Case c;
  c.task = Task::regression;
  c.options.defaults.scale = scale;
  c.old_target = {3900.0, 4000.0};
  c.new_target = {9100.0, 2500.0};
  return c;
}

TEST(WarmStartTest, LinearRegressionWithStandardScaling) {
  expect_same_function(regression_case(ScaleKind::standard), 11);
}

TEST(WarmStartTest, LinearRegressionWithMinmaxScaling) {
  expect_same_function(regression_case(ScaleKind::minmax), 12);
}

TEST(WarmStartTest, LinearRegressionWithRobustScaling) {
  expect_same_function(regression_case(ScaleKind::robust), 13);
}

TEST(WarmStartTest, RegressionTargetScalingAloneIsConverted) {
  Case c = regression_case(ScaleKind::none);  // the features are the raw values in both
  expect_same_function(c, 14);
}

TEST(WarmStartTest, BinaryLogistic) {
  Case c;
  c.options.missing_indicators = true;  // indicators carry as they are
  expect_same_function(c, 21);
}

TEST(WarmStartTest, Multiclass) {
  Case c;
  c.task = Task::multiclass;
  c.outputs = 3;
  c.options.defaults.scale = ScaleKind::minmax;
  expect_same_function(c, 31);
}

TEST(WarmStartTest, NumericCrossesAndASquare) {
  Case c = regression_case(ScaleKind::standard);
  c.options.crosses = {{"x1", "x2"}, {"x3", "x1"}, {"x2", "x2"}};
  expect_same_function(c, 41);
  c.task = Task::multiclass;
  c.outputs = 3;
  c.options.cross_all = true;
  expect_same_function(c, 42);
}

TEST(WarmStartTest, OneHotSlopeAndCategoricalCross) {
  Case c;
  c.options.crosses = {{"x1", "city"}, {"color", "x2"}, {"x3", "city"}, {"city", "color"}};
  c.options.hash_buckets = 64;
  expect_same_function(c, 51);
  Case m = c;
  m.task = Task::multiclass;
  m.outputs = 4;
  expect_same_function(m, 52);
  Case hashed = c;  // color's labels hashed into buckets: slots and slopes keyed by bucket
  hashed.options.max_categories = 3;
  hashed.options.category_buckets = 8;
  expect_same_function(hashed, 53);
}

TEST(WarmStartTest, FactorizationMachine) {
  Case c;
  c.kind = ModelKind::fm;
  c.factors = 4;
  c.options.missing_indicators = true;
  c.options.crosses = {{"x1", "city"}, {"x3", "city"}, {"color", "x2"}, {"city", "color"}};
  c.options.hash_buckets = 64;
  EXPECT_EQ(expect_same_function(c, 61).inexact_terms, 0);
  Case m = c;  // multiclass: each output its own factors
  m.task = Task::multiclass;
  m.outputs = 3;
  m.factors = 5;
  EXPECT_EQ(expect_same_function(m, 62).inexact_terms, 0);
  Case r = c;  // regression: factors scaled by sqrt(std / std')
  r.task = Task::regression;
  r.old_target = {10.0, 3.0};
  r.new_target = {-4.0, 7.5};
  r.options.defaults.scale = ScaleKind::robust;
  EXPECT_EQ(expect_same_function(r, 63).inexact_terms, 0);
}

TEST(WarmStartTest, FactorizationMachineWithASquareCross) {
  // A square's cross terms x^2 -> (a y + b)^2 land on y (linear) and y^2 (the square itself); only
  // the square's pairs with its own column, y^2 y, are cubic.
  Case c;
  c.kind = ModelKind::fm;
  c.factors = 3;
  c.options.crosses = {{"x2", "x2"}};
  const CarryReport report = [&] {
    const Table old_data = make_table(500, 5.0, 2.0, 0.0, kCities, kColors, 71);
    const Table new_data = make_table(500, 8.0, 3.5, 0.0, kCities, kColors, 72);
    const FittedPreparation from = fit(old_data, c.options), to = fit(new_data, c.options);
    const ModelShape shape = shape_of(from, c.task, c.kind, 1, c.factors);
    CarryReport r;
    carry_parameters(from, random_parameters(shape, 73), {}, to, {},
                     shape_of(to, c.task, c.kind, 1, c.factors), &r);
    return r;
  }();
  EXPECT_EQ(report.inexact_terms, 1);  // y_x2^2 * y_x2
}

TEST(WarmStartTest, FactorizationMachineCrossesOfMovedColumnsAreCountedAsInexact) {
  // x1 x2 -> a1 a2 y1 y2 + a1 b2 y1 + a2 b1 y2 + b1 b2: the fm pairs the cross's first term with
  // its columns' (y1^2 y2, y1 y2^2: cubic), and the column y1 with itself through x1 and the cross
  // (y1^2, no square cross of x1 here; likewise y2): four terms per output, left out.
  const Table old_data = make_table(500, 5.0, 2.0, 0.0, kCities, kColors, 111);
  const Table new_data = make_table(500, 8.0, 3.5, 0.0, kCities, kColors, 112);
  PreparationOptions options;
  options.crosses = {{"x1", "x2"}};
  const FittedPreparation from = fit(old_data, options), to = fit(new_data, options);
  const ModelShape old_shape = shape_of(from, Task::multiclass, ModelKind::fm, 2, 3);
  CarryReport report;
  carry_parameters(from, random_parameters(old_shape, 113), {}, to, {},
                   shape_of(to, Task::multiclass, ModelKind::fm, 2, 3), &report);
  EXPECT_EQ(report.inexact_terms, 2 * 4);
}

TEST(WarmStartTest, TheSamePreparationCarriesTheParametersUnchanged) {
  const Table data = make_table(400, 5.0, 2.0, 0.1, kCities, kColors, 81);
  PreparationOptions options;
  options.crosses = {{"x1", "x2"}, {"x1", "city"}};
  const FittedPreparation fitted = fit(data, options);
  const ModelShape shape = shape_of(fitted, Task::binary, ModelKind::fm, 1, 4);
  const ModelParameters parameters = random_parameters(shape, 82);
  const ModelParameters carried = carry_parameters(fitted, parameters, {}, fitted, {}, shape);
  EXPECT_EQ(carried.weights, parameters.weights);
  EXPECT_EQ(carried.bias, parameters.bias);
  EXPECT_EQ(carried.factors, parameters.factors);
}

TEST(WarmStartTest, FeaturesOnlyTheNewPreparationHasStartAtZero) {
  const Table data = make_table(400, 5.0, 2.0, 0.1, kCities, kColors, 91);
  PreparationOptions old_options, new_options;
  new_options.crosses = {{"x1", "x2"}};
  const FittedPreparation from = fit(data, old_options), to = fit(data, new_options);
  const ModelShape old_shape = shape_of(from, Task::binary, ModelKind::linear, 1, 0);
  const ModelShape new_shape = shape_of(to, Task::binary, ModelKind::linear, 1, 0);
  CarryReport report;
  const ModelParameters carried =
      carry_parameters(from, random_parameters(old_shape, 92), {}, to, {}, new_shape, &report);
  EXPECT_EQ(report.carried, from.expanded_features());
  EXPECT_EQ(carried.weights.at(3), 0.0f);  // x1*x2, after the three numeric columns
  EXPECT_NE(carried.weights.at(0), 0.0f);
}

// Labels "<prefix>00", "<prefix>01", ...: enough categories that a cross has many pairs.
std::vector<std::string> numbered_labels(const std::string& prefix, int n) {
  std::vector<std::string> labels;
  for (int i = 0; i < n; ++i) labels.push_back(prefix + (i < 10 ? "0" : "") + std::to_string(i));
  return labels;
}

DataProfile profile_of(const Table& t) {
  ProfileOptions profile_options;
  DataProfile profile = make_profile(t.columns, profile_options);
  profile_block(DeviceContext::cpu(), t.view(), {}, profile, profile_options);
  return profile;
}

// The rows of categorical column `column` (3: city, 4: color) in each slot of `encoding`: the
// table's codes counted by hand (no missing codes: the missing and unknown slots count 0).
std::vector<double> slot_counts(const Table& t, std::size_t column,
                                const CategoricalEncoding& encoding) {
  std::vector<double> counts(static_cast<std::size_t>(encoding.slots()), 0.0);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    const auto code = static_cast<std::size_t>(t.block[column * t.rows + r]);
    counts[static_cast<std::size_t>(encoding.slot_of(t.columns[column].categories[code]))] += 1.0;
  }
  return counts;
}

// The city*color cross of `from` moved to `to` (the same vocabularies), as the test expects it:
// every pair of slots' old and new bucket and its weight (the product of the two slots' counts, or
// 1), then per new bucket the old buckets it holds.
struct ExpectedMove {
  struct Pair {
    std::uint32_t old_bucket = 0, new_bucket = 0;
    double weight = 1.0;
  };
  std::vector<Pair> pairs;
  std::vector<std::vector<std::size_t>> pairs_in;  // per new bucket: indices into pairs
  bool shared(std::uint32_t new_bucket) const {    // holds pairs of different old buckets
    const auto& in = pairs_in[new_bucket];
    for (const std::size_t i : in) {
      if (pairs[i].old_bucket != pairs[in.front()].old_bucket) return true;
    }
    return false;
  }
};

ExpectedMove expected_move(const FittedPreparation& from, const FittedPreparation& to,
                           const std::vector<double>* city_counts,
                           const std::vector<double>* color_counts) {
  const CategoricalEncoding &city = from.categorical.at(0), &color = from.categorical.at(1);
  EXPECT_EQ(city.vocabulary, to.categorical.at(0).vocabulary);
  EXPECT_EQ(color.vocabulary, to.categorical.at(1).vocabulary);
  const std::uint32_t old_buckets = from.hash_buckets, new_buckets = to.hash_buckets;
  const std::vector<std::uint64_t> a = city.slot_label_hashes(), b = color.slot_label_hashes();
  ExpectedMove e;
  e.pairs_in.resize(new_buckets);
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (std::size_t j = 0; j < b.size(); ++j) {
      const double weight = city_counts ? (*city_counts)[i] * (*color_counts)[j] : 1.0;
      e.pairs_in[cross_bucket(a[i], b[j], new_buckets)].push_back(e.pairs.size());
      e.pairs.push_back(
          {cross_bucket(a[i], b[j], old_buckets), cross_bucket(a[i], b[j], new_buckets), weight});
    }
  }
  return e;
}

// The expanded index of the first bucket of `fitted`'s (only) categorical cross.
std::int64_t cross_offset(const FittedPreparation& fitted) {
  const std::vector<std::int64_t> offsets = fitted.group_offsets();
  for (std::size_t g = 0; g < fitted.sparse.size(); ++g) {
    if (fitted.sparse[g].kind == SparseKind::categorical_cross) return offsets[g];
  }
  ADD_FAILURE() << "no categorical cross";
  return 0;
}

// A multiclass linear model over a city*color cross of many pairs (42 x 32 slots, missing and
// unknown included), carried to the same columns and labels at `new_buckets` buckets: every new
// bucket holds its pairs' old weight, or where its pairs had different old buckets their average
// weighted by the two categories' counts (plain without counts, or where they add up to zero).
void expect_cross_moved_pair_by_pair(std::uint32_t old_buckets, std::uint32_t new_buckets,
                                     bool with_profile, std::uint64_t seed) {
  const Table data = make_table(2000, 5.0, 2.0, 0.0, numbered_labels("city", 40),
                                numbered_labels("color", 30), seed);
  PreparationOptions old_options, new_options;
  old_options.crosses = new_options.crosses = {{"city", "color"}};
  old_options.hash_buckets = old_buckets;
  new_options.hash_buckets = new_buckets;
  const DataProfile profile = profile_of(data);
  const FittedPreparation from = fit_preparation(profile, old_options),
                          to = fit_preparation(profile, new_options);
  const std::int32_t outputs = 3;
  const ModelShape old_shape = shape_of(from, Task::multiclass, ModelKind::linear, outputs, 0);
  const ModelShape new_shape = shape_of(to, Task::multiclass, ModelKind::linear, outputs, 0);
  const ModelParameters parameters = random_parameters(old_shape, seed + 1);
  CarryReport report;
  const ModelParameters carried = carry_parameters(from, parameters, {}, to, {}, new_shape, &report,
                                                   with_profile ? &profile : nullptr);

  const std::vector<double> city_counts = slot_counts(data, 3, from.categorical.at(0)),
                            color_counts = slot_counts(data, 4, from.categorical.at(1));
  const ExpectedMove e = expected_move(from, to, with_profile ? &city_counts : nullptr,
                                       with_profile ? &color_counts : nullptr);
  ASSERT_EQ(report.remapped_crosses.size(), 1u);
  const RemappedCross& moved = report.remapped_crosses[0];
  EXPECT_EQ(moved.name, "city*color");
  EXPECT_EQ(moved.old_buckets, old_buckets);
  EXPECT_EQ(moved.new_buckets, new_buckets);
  EXPECT_TRUE(moved.moved);
  EXPECT_EQ(moved.weighted_by_counts, with_profile);
  EXPECT_EQ(moved.pairs, 42 * 32);
  EXPECT_EQ(static_cast<std::size_t>(moved.pairs), e.pairs.size());

  const auto old_features = static_cast<std::size_t>(old_shape.features);
  const auto new_features = static_cast<std::size_t>(new_shape.features);
  const auto old_first = static_cast<std::size_t>(cross_offset(from));
  const auto new_first = static_cast<std::size_t>(cross_offset(to));
  std::int64_t shared = 0, exact = 0, averaged_by_counts = 0;
  for (std::uint32_t bucket = 0; bucket < new_buckets; ++bucket) {
    const auto& in = e.pairs_in[bucket];
    const bool is_shared = e.shared(bucket);
    shared += is_shared ? 1 : 0;
    double total = 0.0;
    for (const std::size_t i : in) total += e.pairs[i].weight;
    for (std::size_t o = 0; o < static_cast<std::size_t>(outputs); ++o) {
      const float got = carried.weights[o * new_features + new_first + bucket];
      const auto old_weight = [&](const ExpectedMove::Pair& pair) {
        return parameters.weights[o * old_features + old_first + pair.old_bucket];
      };
      if (in.empty()) {
        EXPECT_EQ(got, 0.0f) << "bucket " << bucket;
      } else if (!is_shared) {  // exactly the old weight of every pair in it
        EXPECT_EQ(got, old_weight(e.pairs[in.front()])) << "bucket " << bucket << ", output " << o;
        exact += o == 0 ? 1 : 0;
      } else {
        double sum = 0.0, plain = 0.0;
        for (const std::size_t i : in) {
          sum += (total > 0.0 ? e.pairs[i].weight : 1.0) * old_weight(e.pairs[i]);
          plain += old_weight(e.pairs[i]);
        }
        const double expected = sum / (total > 0.0 ? total : static_cast<double>(in.size()));
        EXPECT_NEAR(got, expected, 1e-6 * (1.0 + std::abs(expected)))
            << "bucket " << bucket << ", output " << o << " (plain average "
            << plain / static_cast<double>(in.size()) << ")";
        averaged_by_counts += (o == 0 && total > 0.0 && with_profile) ? 1 : 0;
      }
    }
  }
  EXPECT_EQ(moved.shared_buckets, shared);
  // Both kinds of new bucket occur (1344 pairs in a few thousand buckets).
  EXPECT_GT(exact, 0);
  EXPECT_GT(shared, 0);
  EXPECT_EQ(averaged_by_counts > 0, with_profile);
  // The rest of the model carries as before: the one-hot slots by label.
  for (std::size_t o = 0; o < static_cast<std::size_t>(outputs); ++o) {
    for (std::size_t q = 0; q < new_first; ++q) {
      EXPECT_EQ(carried.weights[o * new_features + q], parameters.weights[o * old_features + q]);
    }
  }
}

TEST(WarmStartTest, CategoricalCrossMovesPairByPairToMoreBuckets) {
  // Not a multiple of the old count: from 64 to 4096 buckets (b mod 64 is the old bucket b of
  // 4096) no new bucket would hold pairs of two old ones.
  expect_cross_moved_pair_by_pair(100, 4096, true, 121);
}

TEST(WarmStartTest, CategoricalCrossMovesPairByPairToFewerBuckets) {
  expect_cross_moved_pair_by_pair(1u << 16, 2048, true, 122);
}

TEST(WarmStartTest, CategoricalCrossAveragesPlainlyWithoutTheEarlierProfile) {
  expect_cross_moved_pair_by_pair(1u << 16, 2048, false, 123);
}

// An fm whose numeric columns moved (their shifts reach the cross buckets' weights through the
// factors) and whose city*color cross is carried from 64 buckets to 65536: on rows whose pair does
// not share its new bucket with a pair of another old bucket it predicts what the old model did.
TEST(WarmStartTest, MovedCategoricalCrossKeepsAnFactorizationMachinesPredictions) {
  for (const Task task : {Task::binary, Task::regression}) {
    const std::vector<std::string> cities = numbered_labels("city", 40),
                                   colors = numbered_labels("color", 30);
    std::vector<std::string> shuffled_cities = cities;  // other codes, the same labels
    std::reverse(shuffled_cities.begin(), shuffled_cities.end());
    const Table old_data = make_table(3000, 5.0, 2.0, 0.0, cities, colors, 131);
    const Table new_data = make_table(3000, 8.0, 3.5, 0.0, shuffled_cities, colors, 132);
    const Table rows = make_table(1000, 6.0, 2.5, 0.0, cities, colors, 133);
    PreparationOptions old_options, new_options;
    old_options.crosses = new_options.crosses = {{"x1", "city"}, {"city", "color"}};
    old_options.hash_buckets = 64;
    new_options.hash_buckets = 1u << 16;
    const DataProfile old_profile = profile_of(old_data);
    const FittedPreparation from = fit_preparation(old_profile, old_options),
                            to = fit(new_data, new_options);
    const ModelShape old_shape = shape_of(from, task, ModelKind::fm, 1, 4);
    const ModelShape new_shape = shape_of(to, task, ModelKind::fm, 1, 4);
    const ModelParameters parameters = random_parameters(old_shape, 134);
    const TargetScaling old_target{10.0, 3.0}, new_target{-4.0, 7.5};
    CarryReport report;
    const ModelParameters carried = carry_parameters(from, parameters, old_target, to, new_target,
                                                     new_shape, &report, &old_profile);
    ASSERT_EQ(report.remapped_crosses.size(), 1u);
    EXPECT_EQ(report.inexact_terms, 0);

    const ExpectedMove e = expected_move(from, to, nullptr, nullptr);
    const PreparedBlock old_rows = prepare(from, rows), new_rows = prepare(to, rows);
    const std::vector<float> expected = predictions(old_shape, parameters, old_rows, old_target);
    const std::vector<float> got = predictions(new_shape, carried, new_rows, new_target);
    ASSERT_EQ(got.size(), expected.size());
    std::int64_t cross_group = 0;
    while (to.sparse[static_cast<std::size_t>(cross_group)].kind != SparseKind::categorical_cross)
      ++cross_group;
    double typical = 0.0;
    for (const float x : expected) typical += std::abs(static_cast<double>(x));
    typical /= static_cast<double>(expected.size());
    std::int64_t compared = 0;
    for (std::int64_t r = 0; r < rows.rows; ++r) {
      const auto bucket = static_cast<std::uint32_t>(new_rows.slot[cross_group * rows.rows + r]);
      if (e.shared(bucket)) continue;
      ++compared;
      const double x = expected[static_cast<std::size_t>(r)];
      EXPECT_NEAR(got[static_cast<std::size_t>(r)], x, 1e-5 * std::max(std::abs(x), typical))
          << "row " << r;
    }
    EXPECT_GT(compared, rows.rows * 9 / 10);  // few pairs in many buckets: nearly all rows
  }
}

TEST(WarmStartTest, TheSameBucketCountCarriesACrossBucketByBucket) {
  const Table data = make_table(400, 5.0, 2.0, 0.1, kCities, kColors, 141);
  PreparationOptions options;
  options.crosses = {{"x1", "x2"}, {"city", "color"}, {"x1", "city"}};
  options.hash_buckets = 32;
  const FittedPreparation fitted = fit(data, options);
  const ModelShape shape = shape_of(fitted, Task::binary, ModelKind::fm, 1, 4);
  const ModelParameters parameters = random_parameters(shape, 142);
  const DataProfile profile = profile_of(data);
  CarryReport report;
  const ModelParameters carried =
      carry_parameters(fitted, parameters, {}, fitted, {}, shape, &report, &profile);
  EXPECT_TRUE(report.remapped_crosses.empty());
  EXPECT_EQ(carried.weights, parameters.weights);
  EXPECT_EQ(carried.bias, parameters.bias);
  EXPECT_EQ(carried.factors, parameters.factors);
}

// A cross of two columns of 15000 labels (15002 x 15002 pairs) is not moved: too many pairs.
TEST(WarmStartTest, ACrossOfTooManyPairsIsNotMoved) {
  const auto preparation = [](std::uint32_t buckets) {
    FittedPreparation p;
    for (const char* name : {"a", "b"}) {
      CategoricalEncoding c;
      c.name = name;
      for (int i = 0; i < 15000; ++i) {
        std::string label = std::to_string(i);
        c.vocabulary.push_back(std::string(5 - label.size(), '0') + label);  // sorted
      }
      p.categorical.push_back(c);
      SparseGroup g;
      g.name = name;
      g.a = static_cast<std::int32_t>(p.sparse.size());
      g.slots = static_cast<std::uint32_t>(c.slots());
      p.sparse.push_back(g);
    }
    SparseGroup cross;
    cross.kind = SparseKind::categorical_cross;
    cross.name = "a*b";
    cross.a = 0;
    cross.b = 1;
    cross.slots = buckets;
    p.sparse.push_back(cross);
    p.hash_buckets = buckets;
    return p;
  };
  const FittedPreparation from = preparation(8), to = preparation(16);
  const ModelShape old_shape = shape_of(from, Task::binary, ModelKind::linear, 1, 0);
  const ModelShape new_shape = shape_of(to, Task::binary, ModelKind::linear, 1, 0);
  CarryReport report;
  const ModelParameters carried =
      carry_parameters(from, random_parameters(old_shape, 151), {}, to, {}, new_shape, &report);
  ASSERT_EQ(report.remapped_crosses.size(), 1u);
  EXPECT_FALSE(report.remapped_crosses[0].moved);
  EXPECT_EQ(report.remapped_crosses[0].pairs, std::int64_t{15002} * 15002);
  EXPECT_GT(report.remapped_crosses[0].pairs, kMaxRemappedCrossPairs);
  const auto first = static_cast<std::size_t>(cross_offset(to));
  for (std::size_t q = first; q < carried.weights.size(); ++q) EXPECT_EQ(carried.weights[q], 0.0f);
  EXPECT_NE(carried.weights[0], 0.0f);  // the one-hot slots carry
}

// A preparation built by hand: numeric x1, categorical a (hashed into `a_buckets`, or the labels
// `a_labels` when a_buckets is 0) and d (three labels), their one-hot groups, the slope x1*a and
// the categorical cross a*d hashed into `cross_buckets`.
FittedPreparation hashed_preparation(std::uint32_t a_buckets, std::uint32_t cross_buckets,
                                     std::vector<std::string> a_labels = {}) {
  FittedPreparation p;
  NumericEncoding x1;
  x1.name = "x1";
  p.numeric.push_back(x1);
  CategoricalEncoding a;
  a.name = "a";
  a.hashed = a_buckets > 0;
  a.buckets = a_buckets;
  if (!a.hashed) a.vocabulary = std::move(a_labels);
  CategoricalEncoding d;
  d.name = "d";
  d.vocabulary = {"p", "q", "r"};
  p.categorical = {a, d};
  const auto group = [&p](SparseKind kind, std::string name, std::int32_t first,
                          std::int32_t second, std::uint32_t slots) {
    SparseGroup g;
    g.kind = kind;
    g.name = std::move(name);
    g.a = first;
    g.b = second;
    g.slots = slots;
    p.sparse.push_back(g);
  };
  group(SparseKind::one_hot, "a", 0, 0, static_cast<std::uint32_t>(a.slots()));
  group(SparseKind::one_hot, "d", 1, 0, static_cast<std::uint32_t>(d.slots()));
  group(SparseKind::slope, "x1*a", 0, 0, static_cast<std::uint32_t>(a.slots()));
  group(SparseKind::categorical_cross, "a*d", 0, 1, cross_buckets);
  p.hash_buckets = cross_buckets;
  return p;
}

// Hashed buckets carry by number at the same bucket count, and only their missing and unknown
// slots at another count or against a vocabulary (a bucket's key names its count); a categorical
// cross of the same bucket count carries bucket by bucket whatever its columns' counts.
TEST(WarmStartTest, HashedBucketsCarryByNumberAtTheSameBucketCount) {
  const FittedPreparation from = hashed_preparation(64, 32);
  const ModelShape old_shape = shape_of(from, Task::binary, ModelKind::linear, 1, 0);
  const ModelParameters parameters = random_parameters(old_shape, 161);
  const std::vector<std::int64_t> old_offsets = from.group_offsets();
  const auto old_weight = [&](std::size_t group, std::int64_t slot) {
    return parameters.weights[static_cast<std::size_t>(old_offsets[group] + slot)];
  };
  {
    CarryReport report;
    const ModelParameters carried =
        carry_parameters(from, parameters, {}, from, {}, old_shape, &report);
    EXPECT_EQ(carried.weights, parameters.weights);
    EXPECT_EQ(report.carried, from.expanded_features());
  }
  const struct {
    const char* name;
    FittedPreparation to;
  } others[] = {{"more buckets", hashed_preparation(128, 32)},
                {"a vocabulary", hashed_preparation(0, 32, {"u", "v", "w"})}};
  for (const auto& other : others) {
    SCOPED_TRACE(other.name);
    const FittedPreparation& to = other.to;
    const ModelShape new_shape = shape_of(to, Task::binary, ModelKind::linear, 1, 0);
    CarryReport report;
    const ModelParameters carried =
        carry_parameters(from, parameters, {}, to, {}, new_shape, &report);
    EXPECT_TRUE(report.remapped_crosses.empty());
    const std::vector<std::int64_t> offsets = to.group_offsets();
    const auto weight = [&](std::size_t group, std::int64_t slot) {
      return carried.weights[static_cast<std::size_t>(offsets[group] + slot)];
    };
    const CategoricalEncoding &old_a = from.categorical[0], &new_a = to.categorical[0];
    // Groups 0 (one-hot a) and 2 (slope x1*a): missing and unknown carry. The one-hot labels of a
    // new vocabulary take their old buckets' weights (move_one_hot); buckets into more buckets,
    // with no earlier profile to name the labels, start at zero, as do the slopes.
    ASSERT_EQ(report.remapped_columns.size(), 1u);
    const RemappedColumn& moved = report.remapped_columns[0];
    EXPECT_EQ(moved.name, "a");
    EXPECT_EQ(moved.moved, !new_a.hashed);
    for (const std::size_t g : {std::size_t{0}, std::size_t{2}}) {
      for (std::int32_t s = 0; s < new_a.known_slots(); ++s) {
        const float want =
            g == 0 && !new_a.hashed
                ? old_weight(g, old_a.slot_of(new_a.vocabulary[static_cast<std::size_t>(s)]))
                : 0.0f;
        EXPECT_EQ(weight(g, s), want) << "group " << g << ", slot " << s;
      }
      EXPECT_EQ(weight(g, new_a.missing_slot()), old_weight(g, old_a.missing_slot()));
      EXPECT_EQ(weight(g, new_a.unknown_slot()), old_weight(g, old_a.unknown_slot()));
    }
    for (std::int32_t s = 0; s < from.categorical[1].slots(); ++s) {
      EXPECT_EQ(weight(1, s), old_weight(1, s));
    }
    for (std::int64_t s = 0; s < 32; ++s) EXPECT_EQ(weight(3, s), old_weight(3, s));
    EXPECT_EQ(report.carried, 1 + 2 + 2 + from.categorical[1].slots() + 32);
  }
}

// Buckets are matched by number, not by their names in expanded_feature_keys: a vocabulary label
// spelled like one ("#1/64") is not bucket 1 of 64. Its one-hot slot takes the weight of the bucket
// the label hashes into (as every label of a new vocabulary does); its slope starts at zero.
TEST(WarmStartTest, AVocabularyLabelSpelledLikeABucketNameIsNoBucket) {
  const FittedPreparation from = hashed_preparation(64, 32),
                          to = hashed_preparation(0, 32, {"#1/64", "u", "v"});
  const std::int32_t bucket = from.categorical[0].slot_of("#1/64");
  ASSERT_NE(bucket, 1) << "the label hashes into bucket 1: the test cannot tell the two apart";
  const ModelShape old_shape = shape_of(from, Task::binary, ModelKind::linear, 1, 0);
  const ModelShape new_shape = shape_of(to, Task::binary, ModelKind::linear, 1, 0);
  const ModelParameters parameters = random_parameters(old_shape, 163);
  const ModelParameters carried = carry_parameters(from, parameters, {}, to, {}, new_shape);
  const std::vector<std::int64_t> offsets = to.group_offsets(), old_offsets = from.group_offsets();
  EXPECT_EQ(carried.weights[static_cast<std::size_t>(offsets[0])],
            parameters.weights[static_cast<std::size_t>(old_offsets[0] + bucket)]);
  EXPECT_EQ(carried.weights[static_cast<std::size_t>(offsets[2])], 0.0f);  // slope x1*a
}

// A one-hot column that changed between a vocabulary and buckets moves label by label: a table of
// 40 cities (each with its own count) fitted once as a vocabulary and once hashed into `buckets`
// buckets (--max-categories 10), carried in the direction `to_buckets` says, for a binary fm (the
// factors move with the weights). Into buckets (with the earlier profile): a bucket takes its one
// label's old weight and factors, or its labels' average weighted by their counts, or, when no
// label falls in it, the old unknown slot's. Into a vocabulary: each label takes its old bucket's.
// Rows whose city took one label's values get the earlier model's prediction.
void expect_column_moved_label_by_label(bool to_buckets, std::uint32_t buckets,
                                        std::uint64_t seed) {
  std::vector<std::string> cities = numbered_labels("city", 40);
  Table data = make_table(4000, 5.0, 2.0, 0.0, cities, kColors, seed);
  // Unequal counts, so that a weighted average differs from a plain one: city i in about (i + 1)
  // parts of the rows.
  std::mt19937_64 rng(seed + 1);
  std::discrete_distribution<int> pick(40, 0.0, 40.0, [](double i) { return i + 1.0; });
  for (std::int64_t r = 0; r < data.rows; ++r)
    data.block[3 * data.rows + r] = static_cast<float>(pick(rng));
  const DataProfile profile = profile_of(data);
  PreparationOptions vocabulary_options, hashed_options;
  hashed_options.max_categories = 10;
  hashed_options.category_buckets = buckets;
  const FittedPreparation vocabulary = fit_preparation(profile, vocabulary_options),
                          hashed = fit_preparation(profile, hashed_options);
  ASSERT_FALSE(vocabulary.categorical.at(0).hashed);
  ASSERT_TRUE(hashed.categorical.at(0).hashed);
  const FittedPreparation& from = to_buckets ? vocabulary : hashed;
  const FittedPreparation& to = to_buckets ? hashed : vocabulary;
  const std::int32_t k = 3;
  const ModelShape old_shape = shape_of(from, Task::binary, ModelKind::fm, 1, k);
  const ModelShape new_shape = shape_of(to, Task::binary, ModelKind::fm, 1, k);
  const ModelParameters parameters = random_parameters(old_shape, seed + 2);
  CarryReport report;
  const ModelParameters carried =
      carry_parameters(from, parameters, {}, to, {}, new_shape, &report, &profile);

  ASSERT_EQ(report.remapped_columns.size(), 1u);
  const RemappedColumn& moved = report.remapped_columns[0];
  EXPECT_EQ(moved.name, "city");
  EXPECT_TRUE(moved.moved);
  EXPECT_EQ(moved.was_hashed, !to_buckets);
  EXPECT_EQ(moved.now_hashed, to_buckets);
  EXPECT_EQ(moved.labels, 40);
  EXPECT_EQ(moved.weighted_by_counts, to_buckets);

  const CategoricalEncoding &was = from.categorical.at(0), &now = to.categorical.at(0);
  const auto old_first = static_cast<std::size_t>(from.group_offsets()[0]);
  const auto new_first = static_cast<std::size_t>(to.group_offsets()[0]);
  // The old parameters (weight, then factors) of old slot s, and the new ones of new slot t.
  const auto old_values = [&](std::int32_t s) {
    std::vector<double> v{parameters.weights[old_first + static_cast<std::size_t>(s)]};
    for (std::int32_t f = 0; f < k; ++f) {
      v.push_back(parameters.factors[(old_first + static_cast<std::size_t>(s)) * k +
                                     static_cast<std::size_t>(f)]);
    }
    return v;
  };
  const auto new_values = [&](std::int32_t t) {
    std::vector<double> v{carried.weights[new_first + static_cast<std::size_t>(t)]};
    for (std::int32_t f = 0; f < k; ++f) {
      v.push_back(carried.factors[(new_first + static_cast<std::size_t>(t)) * k +
                                  static_cast<std::size_t>(f)]);
    }
    return v;
  };
  // Per new known slot: the cities in it and their counts.
  std::vector<std::vector<std::pair<std::int32_t, double>>> in(
      static_cast<std::size_t>(now.known_slots()));
  const CategoricalProfile& city = profile.columns.at(3).categorical;
  ASSERT_EQ(city.labels.size(), 40u);
  for (std::size_t i = 0; i < city.labels.size(); ++i) {
    in[static_cast<std::size_t>(now.slot_of(city.labels[i]))].emplace_back(
        was.slot_of(city.labels[i]), static_cast<double>(city.counts[i]));
  }
  std::int64_t shared = 0, exact = 0, empty = 0;
  std::vector<char> exact_slot(static_cast<std::size_t>(now.known_slots()), 0);
  for (std::int32_t t = 0; t < now.known_slots(); ++t) {
    const auto& items = in[static_cast<std::size_t>(t)];
    const std::vector<double> got = new_values(t);
    std::vector<double> want;
    if (items.empty()) {
      ++empty;
      want = old_values(was.unknown_slot());
    } else if (std::all_of(items.begin(), items.end(),
                           [&](const auto& x) { return x.first == items[0].first; })) {
      ++exact;
      exact_slot[static_cast<std::size_t>(t)] = 1;
      want = old_values(items[0].first);
    } else {
      ++shared;
      double total = 0.0;
      want.assign(got.size(), 0.0);
      for (const auto& [s, count] : items) {
        total += count;
        const std::vector<double> v = old_values(s);
        for (std::size_t j = 0; j < v.size(); ++j) want[j] += count * v[j];
      }
      for (double& w : want) w /= total;
    }
    for (std::size_t j = 0; j < got.size(); ++j) {
      EXPECT_NEAR(got[j], want[j], 1e-6 * (1.0 + std::abs(want[j])))
          << "slot " << t << ", value " << j;
    }
  }
  EXPECT_EQ(moved.shared_slots, shared);
  EXPECT_GT(exact, 0);
  if (to_buckets) {
    EXPECT_GT(shared, 0) << "40 cities in " << buckets << " buckets share none: pick fewer buckets";
  } else {
    EXPECT_EQ(shared, 0);  // a label, one bucket
  }

  // Predictions: rows whose city's new slot holds that city's old values alone.
  const Table rows = make_table(300, 6.0, 2.5, 0.0, cities, kColors, seed + 3);
  const std::vector<float> expected = predictions(old_shape, parameters, prepare(from, rows), {});
  const std::vector<float> got = predictions(new_shape, carried, prepare(to, rows), {});
  std::int64_t compared = 0;
  for (std::int64_t r = 0; r < rows.rows; ++r) {
    const std::string& label = cities[static_cast<std::size_t>(rows.block[3 * rows.rows + r])];
    if (!exact_slot[static_cast<std::size_t>(now.slot_of(label))]) continue;
    ++compared;
    EXPECT_NEAR(got[static_cast<std::size_t>(r)], expected[static_cast<std::size_t>(r)],
                1e-5 * (1.0 + std::abs(expected[static_cast<std::size_t>(r)])))
        << "row " << r << " (" << label << ")";
  }
  EXPECT_GT(compared, 0);
}

TEST(WarmStartTest, AVocabularyMovesIntoBucketsLabelByLabel) {
  expect_column_moved_label_by_label(true, 64, 171);
}

TEST(WarmStartTest, BucketsMoveIntoAVocabularyLabelByLabel) {
  expect_column_moved_label_by_label(false, 16, 172);
}

// Buckets into another bucket count move by the earlier profile's labels: each label from its old
// bucket to its new one.
TEST(WarmStartTest, BucketsMoveIntoOtherBucketsByTheEarlierProfilesLabels) {
  const Table data = make_table(3000, 5.0, 2.0, 0.0, numbered_labels("city", 40), kColors, 181);
  const DataProfile profile = profile_of(data);
  PreparationOptions few, many;
  few.max_categories = many.max_categories = 10;
  few.category_buckets = 16;
  many.category_buckets = 4096;
  const FittedPreparation from = fit_preparation(profile, few), to = fit_preparation(profile, many);
  const ModelShape old_shape = shape_of(from, Task::binary, ModelKind::linear, 1, 0);
  const ModelShape new_shape = shape_of(to, Task::binary, ModelKind::linear, 1, 0);
  const ModelParameters parameters = random_parameters(old_shape, 182);
  CarryReport report;
  const ModelParameters carried =
      carry_parameters(from, parameters, {}, to, {}, new_shape, &report, &profile);
  ASSERT_EQ(report.remapped_columns.size(), 1u);
  EXPECT_TRUE(report.remapped_columns[0].moved);
  const CategoricalEncoding &was = from.categorical.at(0), &now = to.categorical.at(0);
  const auto old_first = static_cast<std::size_t>(from.group_offsets()[0]);
  const auto new_first = static_cast<std::size_t>(to.group_offsets()[0]);
  std::vector<std::int32_t> source(static_cast<std::size_t>(now.known_slots()), -1);
  for (const std::string& label : profile.columns.at(3).categorical.labels) {
    std::int32_t& s = source[static_cast<std::size_t>(now.slot_of(label))];
    s = s < 0 || s == was.slot_of(label) ? was.slot_of(label) : -2;
  }
  std::int64_t checked = 0;
  for (std::int32_t t = 0; t < now.known_slots(); ++t) {
    const std::int32_t s = source[static_cast<std::size_t>(t)];
    if (s == -2) continue;  // shared by labels of two old buckets: averaged (the test above)
    const float want = s < 0 ? 0.0f : parameters.weights[old_first + static_cast<std::size_t>(s)];
    EXPECT_EQ(carried.weights[new_first + static_cast<std::size_t>(t)], want) << "bucket " << t;
    checked += s >= 0 ? 1 : 0;
  }
  EXPECT_GT(checked, 30);
}

// Resets this process's peak resident memory to its current size (Linux); false where it cannot.
bool reset_peak_memory() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";  // resets VmHWM to the current resident size
  return static_cast<bool>(clear.flush());
}
// The peak resident memory of this process since reset_peak_memory, in bytes; -1 where Linux's
// /proc/self/status does not say.
std::int64_t peak_memory() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "... kB"
  }
  return -1;
}

// A table of hashed columns and crosses has tens of millions of weights: carrying them took
// hundreds of bytes of keys per weight (a string per hashed bucket, 17.5 GB for 42 million), where
// the parameters are a few bytes each.
TEST(WarmStartTest, CarryingHashedBucketsTakesMemoryInProportionToTheWeights) {
  if (!reset_peak_memory() || peak_memory() < 0) GTEST_SKIP() << "no /proc/self peak memory here";
  const std::uint32_t buckets = 1u << 19;
  const FittedPreparation from = hashed_preparation(buckets, buckets),
                          to = hashed_preparation(buckets, buckets);
  const ModelShape shape = shape_of(from, Task::binary, ModelKind::linear, 1, 0);
  const auto features = static_cast<std::size_t>(shape.features);
  ASSERT_GT(features, std::size_t{3} * buckets);
  ModelParameters parameters;
  parameters.bias = {0.5f};
  parameters.weights.resize(features);
  for (std::size_t p = 0; p < features; ++p) parameters.weights[p] = static_cast<float>(p % 7);

  ASSERT_TRUE(reset_peak_memory());
  const std::int64_t before = peak_memory();
  CarryReport report;
  const ModelParameters carried = carry_parameters(from, parameters, {}, to, {}, shape, &report);
  const std::int64_t grown = peak_memory() - before;
  EXPECT_EQ(carried.weights, parameters.weights);
  EXPECT_EQ(report.carried, static_cast<std::int64_t>(features));
  // The carried weights (4 bytes each) and their double sums (8) are needed; 64 bytes a weight
  // leaves room for the rest, a fraction of the keys' cost.
  EXPECT_LT(grown, static_cast<std::int64_t>(64 * features))
      << grown / static_cast<std::int64_t>(features) << " bytes a weight";
  std::cout << "carrying " << features << " weights grew the peak memory by " << grown / (1 << 20)
            << " MiB\n";
}

// Quantile bins (--bins) of x1 (4) and x2 (5), on every table of make_table.
PreparationOptions binned_options() {
  PreparationOptions options;
  options.per_column["x1"].bins = 4;
  options.per_column["x2"].bins = 5;
  return options;
}

// The index in fitted.sparse of the bins group of numeric column `column`, or -1.
std::int64_t bins_group(const FittedPreparation& fitted, const std::string& column) {
  for (std::size_t g = 0; g < fitted.sparse.size(); ++g) {
    const SparseGroup& group = fitted.sparse[g];
    if (group.kind == SparseKind::bins &&
        fitted.numeric.at(static_cast<std::size_t>(group.a)).name == column) {
      return static_cast<std::int64_t>(g);
    }
  }
  return -1;
}

// Sets the bin edges of the binned numeric column `column` (and its bins group's slots).
void set_bin_edges(FittedPreparation& fitted, const std::string& column,
                   const std::vector<float>& edges) {
  const std::int64_t g = bins_group(fitted, column);
  ASSERT_GE(g, 0) << column;
  SparseGroup& group = fitted.sparse[static_cast<std::size_t>(g)];
  fitted.numeric.at(static_cast<std::size_t>(group.a)).bin_edges = edges;
  group.slots = static_cast<std::uint32_t>(edges.size() + 2);
}

// A model over the same bins (the kept preparation; a refit on the same rows) carries them slot by
// slot, exactly: the same parameters.
TEST(WarmStartTest, TheSameBinsCarrySlotBySlot) {
  const Table data = make_table(400, 5.0, 2.0, 0.1, kCities, kColors, 131);
  PreparationOptions options = binned_options();
  options.crosses = {{"x1", "city"}};
  const FittedPreparation from = fit(data, options), to = fit(data, options);
  ASSERT_GE(bins_group(from, "x1"), 0);
  ASSERT_EQ(from.sparse.at(static_cast<std::size_t>(bins_group(from, "x2"))).slots, 5u + 1u);
  for (const ModelKind kind : {ModelKind::linear, ModelKind::fm}) {
    const std::int32_t factors = kind == ModelKind::fm ? 3 : 0;
    const ModelShape shape = shape_of(from, Task::multiclass, kind, 2, factors);
    const ModelParameters parameters = random_parameters(shape, 132);
    CarryReport report;
    const ModelParameters carried = carry_parameters(from, parameters, {}, to, {}, shape, &report);
    EXPECT_EQ(carried.weights, parameters.weights);
    EXPECT_EQ(carried.bias, parameters.bias);
    EXPECT_EQ(carried.factors, parameters.factors);
    EXPECT_EQ(report.carried, from.expanded_features());
    EXPECT_TRUE(report.remapped_bins.empty());
  }
}

// Refitted bins (other edges) move bin by bin: each new bin takes the earlier bin of its midpoint;
// the first bin that of a value just below its edge, the last that of its edge; missing, missing.
// Weights and an fm's factors alike, every output; the other features carry as they are.
TEST(WarmStartTest, RefittedBinsTakeTheEarlierBinOfTheirMiddle) {
  const Table data = make_table(400, 5.0, 2.0, 0.1, kCities, kColors, 141);
  FittedPreparation from = fit(data, binned_options()), to = fit(data, binned_options());
  set_bin_edges(from, "x2", {0.0f, 1.0f, 2.0f});
  // Bins (-inf, 0) [0, 0.5) [0.5, 1.5) [1.5, 2) [2, 5) [5, inf), missing: the first ends at an
  // earlier edge (just below it: bin 0, not 1), [0.5, 1.5)'s middle is an earlier edge (the bin
  // above it), the last two lie above every earlier edge.
  set_bin_edges(to, "x2", {0.0f, 0.5f, 1.5f, 2.0f, 5.0f});
  const std::vector<std::uint32_t> source = {0, 1, 2, 2, 3, 3, 4};
  const std::int64_t old_group = bins_group(from, "x2"), new_group = bins_group(to, "x2");
  const auto old_first =
      static_cast<std::size_t>(from.group_offsets()[static_cast<std::size_t>(old_group)]);
  const auto new_first =
      static_cast<std::size_t>(to.group_offsets()[static_cast<std::size_t>(new_group)]);
  const std::vector<std::string> old_keys = expanded_feature_keys(from),
                                 new_keys = expanded_feature_keys(to);
  for (const ModelKind kind : {ModelKind::linear, ModelKind::fm}) {
    const std::int32_t outputs = 2, factors = kind == ModelKind::fm ? 3 : 0;
    const auto k = static_cast<std::size_t>(factors);
    const ModelShape old_shape = shape_of(from, Task::multiclass, kind, outputs, factors);
    const ModelShape new_shape = shape_of(to, Task::multiclass, kind, outputs, factors);
    const ModelParameters parameters = random_parameters(old_shape, 142);
    CarryReport report;
    const ModelParameters carried =
        carry_parameters(from, parameters, {}, to, {}, new_shape, &report);
    ASSERT_EQ(report.remapped_bins.size(), 1u);
    EXPECT_EQ(report.remapped_bins[0].name, "x2");
    EXPECT_EQ(report.remapped_bins[0].old_bins, 4);
    EXPECT_EQ(report.remapped_bins[0].new_bins, 6);
    EXPECT_EQ(report.remapped_bins[0].moved, 6);
    EXPECT_EQ(report.carried, to.expanded_features() - static_cast<std::int64_t>(source.size()));
    const auto old_features = static_cast<std::size_t>(old_shape.features);
    const auto new_features = static_cast<std::size_t>(new_shape.features);
    for (std::size_t o = 0; o < static_cast<std::size_t>(outputs); ++o) {
      for (std::size_t s = 0; s < source.size(); ++s) {
        const std::size_t p = o * old_features + old_first + source[s],
                          q = o * new_features + new_first + s;
        EXPECT_EQ(carried.weights[q], parameters.weights[p]) << "bin " << s << ", output " << o;
        for (std::size_t f = 0; f < k; ++f) {
          EXPECT_EQ(carried.factors[q * k + f], parameters.factors[p * k + f])
              << "bin " << s << ", factor " << f;
        }
      }
      // Every other feature (x1's bins too, at the same edges) by its key.
      for (std::size_t q = 0; q < new_features; ++q) {
        if (q >= new_first && q < new_first + source.size()) continue;
        const auto p = static_cast<std::size_t>(
            std::find(old_keys.begin(), old_keys.end(), new_keys[q]) - old_keys.begin());
        ASSERT_LT(p, old_features) << new_keys[q];
        EXPECT_EQ(carried.weights[o * new_features + q], parameters.weights[o * old_features + p])
            << new_keys[q];
      }
    }
  }
}

// The open end bins are placed by the new training range where the preparation knows it: values
// 0-19 binned at 3.9 and 12 where the earlier edges were 3, 5 and 15 put the first bin's values
// (0-3) in the earlier first bin, not in [3, 5), which holds the point just below 3.9; the last
// bin's values (12-19) take [15, inf) by the middle of 12 and 19, not [5, 15) by its edge. Without
// the range (a model written before it was kept) the edges alone decide.
TEST(WarmStartTest, EndBinsArePlacedByTheTrainingRange) {
  const Table data = make_table(400, 5.0, 2.0, 0.1, kCities, kColors, 151);
  FittedPreparation from = fit(data, binned_options()), to = fit(data, binned_options());
  set_bin_edges(from, "x2", {3.0f, 5.0f, 15.0f});
  set_bin_edges(to, "x2", {3.9f, 12.0f});
  const std::int64_t old_group = bins_group(from, "x2"), new_group = bins_group(to, "x2");
  NumericEncoding& column = to.numeric.at(static_cast<std::size_t>(to.sparse[static_cast<std::size_t>(new_group)].a));
  const auto old_first = static_cast<std::size_t>(from.group_offsets()[static_cast<std::size_t>(old_group)]);
  const auto new_first = static_cast<std::size_t>(to.group_offsets()[static_cast<std::size_t>(new_group)]);
  const ModelShape old_shape = shape_of(from, Task::regression, ModelKind::linear, 1, 0);
  const ModelShape new_shape = shape_of(to, Task::regression, ModelKind::linear, 1, 0);
  const ModelParameters parameters = random_parameters(old_shape, 152);
  const auto sources = [&] {
    const ModelParameters carried = carry_parameters(from, parameters, {}, to, {}, new_shape, nullptr);
    std::vector<std::int64_t> source;
    for (std::size_t b = 0; b < 4; ++b) {
      std::int64_t found = -1;
      for (std::size_t s = 0; s < 5; ++s) {
        if (carried.weights[new_first + b] == parameters.weights[old_first + s]) found = static_cast<std::int64_t>(s);
      }
      source.push_back(found);
    }
    return source;
  };
  column.bin_min = 0.0f;
  column.bin_max = 19.0f;
  EXPECT_EQ(sources(), (std::vector<std::int64_t>{0, 2, 3, 4}));
  column.bin_min = column.bin_max = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(sources(), (std::vector<std::int64_t>{1, 2, 2, 4}));
}

// New bins each inside an earlier bin (the earlier edges among the new ones) on data whose centers
// and scales moved: the new model computes the earlier one for every present value, an fm too.
TEST(WarmStartTest, FinerBinsKeepTheFunction) {
  const Table old_data = make_table(500, 5.0, 2.0, 0.0, kCities, kColors, 151);
  const Table new_data = make_table(700, 8.0, 3.5, 0.0, kCities, kColors, 152);
  const Table rows = make_table(300, 6.0, 2.5, 0.0, kCities, kColors, 153);  // x2 in [9, 19)
  FittedPreparation from = fit(old_data, binned_options()), to = fit(new_data, binned_options());
  set_bin_edges(from, "x2", {11.0f, 14.0f, 17.0f});
  set_bin_edges(to, "x2", {10.0f, 11.0f, 12.5f, 14.0f, 17.0f, 18.0f});
  set_bin_edges(from, "x1", {5.0f, 6.0f});
  set_bin_edges(to, "x1", {5.0f, 6.0f});
  for (const ModelKind kind : {ModelKind::linear, ModelKind::fm}) {
    const std::int32_t factors = kind == ModelKind::fm ? 4 : 0;
    const ModelShape old_shape = shape_of(from, Task::binary, kind, 1, factors);
    const ModelShape new_shape = shape_of(to, Task::binary, kind, 1, factors);
    const ModelParameters parameters = random_parameters(old_shape, 154);
    CarryReport report;
    const ModelParameters carried =
        carry_parameters(from, parameters, {}, to, {}, new_shape, &report);
    EXPECT_EQ(report.inexact_terms, 0);
    EXPECT_EQ(report.remapped_bins.size(), 1u);  // x1's bins carry by key
    const std::vector<float> expected = predictions(old_shape, parameters, prepare(from, rows), {});
    const std::vector<float> got = predictions(new_shape, carried, prepare(to, rows), {});
    ASSERT_EQ(got.size(), expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i], expected[i], 1e-4 * (1.0 + std::abs(expected[i]))) << "row " << i;
    }
  }
}

// Crosses of bins (--cross x2#bins*city, x1#bins*x2#bins) hash each bin by its edges: at the same
// edges every bucket carries as it is, exactly.
TEST(WarmStartTest, CrossedBinsAtTheSameEdgesCarryBucketByBucket) {
  const Table data = make_table(400, 5.0, 2.0, 0.1, kCities, kColors, 181);
  PreparationOptions options = binned_options();
  options.hash_buckets = 1u << 10;
  options.crosses = {{"x2#bins", "city"}, {"x1#bins", "x2#bins"}};
  const FittedPreparation from = fit(data, options), to = fit(data, options);
  for (const ModelKind kind : {ModelKind::linear, ModelKind::fm}) {
    const std::int32_t factors = kind == ModelKind::fm ? 3 : 0;
    const ModelShape shape = shape_of(from, Task::binary, kind, 1, factors);
    const ModelParameters parameters = random_parameters(shape, 182);
    CarryReport report;
    const ModelParameters carried = carry_parameters(from, parameters, {}, to, {}, shape, &report);
    EXPECT_EQ(carried.weights, parameters.weights);
    EXPECT_EQ(carried.factors, parameters.factors);
    EXPECT_TRUE(report.remapped_crosses.empty());
    EXPECT_EQ(report.carried, from.expanded_features());
  }
}

// Refitted at other edges, a cross's bins are other bins in other buckets: each new pair (new bin,
// city; x1's bin, new bin of x2) takes the bucket of the earlier pair whose bins hold it (the
// earlier bin of the new bin's middle, as for the bins alone), at the same bucket count. With new
// bins each inside an earlier one the new model computes the earlier one, an fm too.
TEST(WarmStartTest, CrossedBinsAtOtherEdgesMovePairByPair) {
  const Table old_data = make_table(500, 5.0, 2.0, 0.0, kCities, kColors, 191);
  const Table new_data = make_table(700, 8.0, 3.5, 0.0, kCities, kColors, 192);
  const Table rows = make_table(300, 6.0, 2.5, 0.0, kCities, kColors, 193);  // x2 in [9, 19)
  PreparationOptions options = binned_options();
  options.hash_buckets = 1u << 16;  // no two of the few pairs share a bucket
  options.crosses = {{"x2#bins", "city"}, {"x1#bins", "x2#bins"}};
  FittedPreparation from = fit(old_data, options), to = fit(new_data, options);
  set_bin_edges(from, "x2", {11.0f, 14.0f, 17.0f});
  set_bin_edges(to, "x2", {10.0f, 11.0f, 12.5f, 14.0f, 17.0f, 18.0f});
  set_bin_edges(from, "x1", {5.0f, 6.0f});
  set_bin_edges(to, "x1", {5.0f, 6.0f});
  for (const ModelKind kind : {ModelKind::linear, ModelKind::fm}) {
    const std::int32_t factors = kind == ModelKind::fm ? 4 : 0;
    const ModelShape old_shape = shape_of(from, Task::binary, kind, 1, factors);
    const ModelShape new_shape = shape_of(to, Task::binary, kind, 1, factors);
    const ModelParameters parameters = random_parameters(old_shape, 194);
    CarryReport report;
    const ModelParameters carried = carry_parameters(from, parameters, {}, to, {}, new_shape, &report);
    EXPECT_EQ(report.inexact_terms, 0);
    ASSERT_EQ(report.remapped_crosses.size(), 2u);
    EXPECT_EQ(report.remapped_crosses[0].name, "x2#bins*city");
    EXPECT_EQ(report.remapped_crosses[1].name, "x1#bins*x2#bins");
    for (const RemappedCross& moved : report.remapped_crosses) {
      EXPECT_TRUE(moved.moved) << moved.name;
      EXPECT_EQ(moved.old_buckets, moved.new_buckets) << moved.name;
      EXPECT_EQ(moved.shared_buckets, 0) << moved.name;
      EXPECT_FALSE(moved.weighted_by_counts) << moved.name;
    }
    // Every new bin of x2 (7 and missing) with every city slot (3, missing, unknown), and with
    // every bin of x1 (3 and missing).
    EXPECT_EQ(report.remapped_crosses[0].pairs, 8 * 5);
    EXPECT_EQ(report.remapped_crosses[1].pairs, 4 * 8);
    const std::vector<float> expected = predictions(old_shape, parameters, prepare(from, rows), {});
    const std::vector<float> got = predictions(new_shape, carried, prepare(to, rows), {});
    ASSERT_EQ(got.size(), expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i], expected[i], 1e-4 * (1.0 + std::abs(expected[i]))) << "row " << i;
    }
  }
}

// Bins of a column the earlier model did not bin start at zero (weights and factors); bins the new
// preparation drops are left behind; a new column of one bin (no edge) has no point to place, so
// that bin starts at zero, its missing slot carrying.
TEST(WarmStartTest, BinsTheEarlierModelLacksStartAtZero) {
  const Table data = make_table(400, 5.0, 2.0, 0.1, kCities, kColors, 161);
  PreparationOptions x1_only;
  x1_only.per_column["x1"].bins = 4;
  const FittedPreparation unbinned = fit(data, {}), binned = fit(data, x1_only);
  {
    const ModelShape old_shape = shape_of(unbinned, Task::binary, ModelKind::fm, 1, 3);
    const ModelShape new_shape = shape_of(binned, Task::binary, ModelKind::fm, 1, 3);
    CarryReport report;
    const ModelParameters carried = carry_parameters(unbinned, random_parameters(old_shape, 162),
                                                     {}, binned, {}, new_shape, &report);
    EXPECT_EQ(report.carried, unbinned.expanded_features());
    EXPECT_TRUE(report.remapped_bins.empty());
    const std::int64_t g = bins_group(binned, "x1");
    ASSERT_GE(g, 0);
    const std::int64_t first = binned.group_offsets()[static_cast<std::size_t>(g)];
    const std::int64_t end = binned.group_offsets()[static_cast<std::size_t>(g) + 1];
    ASSERT_EQ(end - first, 4 + 1);
    for (std::int64_t q = first; q < end; ++q) {
      EXPECT_EQ(carried.weights[static_cast<std::size_t>(q)], 0.0f) << "slot " << q - first;
      for (std::size_t f = 0; f < 3; ++f)
        EXPECT_EQ(carried.factors[static_cast<std::size_t>(q) * 3 + f], 0.0f);
    }
    EXPECT_NE(carried.weights.at(0), 0.0f);  // x1's value carried
  }
  {
    const ModelShape old_shape = shape_of(binned, Task::binary, ModelKind::linear, 1, 0);
    CarryReport report;
    const ModelParameters carried =
        carry_parameters(binned, random_parameters(old_shape, 163), {}, unbinned, {},
                         shape_of(unbinned, Task::binary, ModelKind::linear, 1, 0), &report);
    EXPECT_EQ(report.carried, unbinned.expanded_features());
    EXPECT_EQ(carried.weights.size(), static_cast<std::size_t>(unbinned.expanded_features()));
  }
  {
    FittedPreparation one_bin = binned, two_edges = binned;
    set_bin_edges(one_bin, "x1", {});
    set_bin_edges(two_edges, "x1", {4.0f, 6.0f});
    const ModelShape old_shape = shape_of(two_edges, Task::binary, ModelKind::linear, 1, 0);
    const ModelParameters parameters = random_parameters(old_shape, 164);
    CarryReport report;
    const ModelParameters carried =
        carry_parameters(two_edges, parameters, {}, one_bin, {},
                         shape_of(one_bin, Task::binary, ModelKind::linear, 1, 0), &report);
    ASSERT_EQ(report.remapped_bins.size(), 1u);
    EXPECT_EQ(report.remapped_bins[0].new_bins, 1);
    EXPECT_EQ(report.remapped_bins[0].moved, 0);
    const auto g = static_cast<std::size_t>(bins_group(one_bin, "x1"));
    const auto old_first = static_cast<std::size_t>(two_edges.group_offsets()[g]);
    const auto new_first = static_cast<std::size_t>(one_bin.group_offsets()[g]);
    EXPECT_EQ(carried.weights[new_first], 0.0f);
    EXPECT_EQ(carried.weights[new_first + 1], parameters.weights[old_first + 3]);  // missing
  }
}

// A bin's key and name: its range of raw values, each edge as its shortest decimal.
TEST(WarmStartTest, BinsAreNamedByTheirRanges) {
  EXPECT_EQ(bin_name({0.5f, 0.75f, 2.5f}, 0), "[-inf, 0.5)");
  EXPECT_EQ(bin_name({0.5f, 0.75f, 2.5f}, 1), "[0.5, 0.75)");
  EXPECT_EQ(bin_name({0.5f, 0.75f, 2.5f}, 3), "[2.5, inf)");
  EXPECT_EQ(bin_name({0.1f, 1e6f}, 1), "[0.1, 1e+06)");
  EXPECT_EQ(bin_name({}, 0), "[-inf, inf)");
  EXPECT_THROW(bin_name({0.5f}, 2), Error);
  FittedPreparation fitted =
      fit(make_table(200, 5.0, 2.0, 0.1, kCities, kColors, 171), binned_options());
  set_bin_edges(fitted, "x2", {-1.5f, 3.0f});
  const std::vector<std::string> keys = expanded_feature_keys(fitted);
  const auto first = static_cast<std::size_t>(
      fitted.group_offsets()[static_cast<std::size_t>(bins_group(fitted, "x2"))]);
  const std::vector<std::string> expected = {"bins:x2#bins=[-inf, -1.5)", "bins:x2#bins=[-1.5, 3)",
                                             "bins:x2#bins=[3, inf)", "bins:x2#bins=<missing>"};
  for (std::size_t s = 0; s < expected.size(); ++s) {
    EXPECT_EQ(keys.at(first + s), expected[s]);
    EXPECT_EQ(expanded_feature_key(fitted, static_cast<std::int64_t>(first + s)), expected[s]);
  }
}

TEST(WarmStartTest, OtherOutputsOrFactorsAreRefused) {
  const Table data = make_table(200, 5.0, 2.0, 0.0, kCities, kColors, 101);
  const FittedPreparation fitted = fit(data, {});
  const ModelShape binary = shape_of(fitted, Task::binary, ModelKind::linear, 1, 0);
  const ModelShape multiclass = shape_of(fitted, Task::multiclass, ModelKind::linear, 3, 0);
  const ModelShape fm = shape_of(fitted, Task::binary, ModelKind::fm, 1, 4);
  const ModelParameters parameters = random_parameters(binary, 102);
  EXPECT_THROW(carry_parameters(fitted, parameters, {}, fitted, {}, multiclass), InputError);
  EXPECT_THROW(carry_parameters(fitted, parameters, {}, fitted, {}, fm), InputError);
}


// One feature's key is the key expanded_feature_keys gives it (`lathe report` names its largest
// weights one by one), for dense features, one-hot and slope slots and cross buckets; past the
// last feature is an error.
TEST(WarmStartTest, OneFeaturesKeyIsItsKeyInTheWholeList) {
  for (const FittedPreparation& fitted : {hashed_preparation(64, 32), hashed_preparation(0, 32, {"#1/64", "u", "v"})}) {
    const std::vector<std::string> keys = expanded_feature_keys(fitted);
    ASSERT_EQ(static_cast<std::int64_t>(keys.size()), fitted.expanded_features());
    for (std::size_t f = 0; f < keys.size(); ++f) {
      EXPECT_EQ(expanded_feature_key(fitted, static_cast<std::int64_t>(f)), keys[f]) << "feature " << f;
    }
    EXPECT_THROW(expanded_feature_key(fitted, fitted.expanded_features()), Error);
    EXPECT_THROW(expanded_feature_key(fitted, -1), Error);
  }
}

}  // namespace
}  // namespace lathe
