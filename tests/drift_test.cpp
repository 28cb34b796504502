// Drift monitoring: PSI and KS against hand-computed and analytic values, categorical bins with
// unseen labels, the prediction summary, and the model file format 2 (profile, prediction summary,
// parent) with format 1 still loading.
#include <gtest/gtest.h>

#include <hdf5.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <random>

#include "io/checkpoint.h"
#include "io/columnar_writer.h"
#include "io/drift.h"
#include "io/hdf5_handle.h"
#include "io/model_file.h"
#include "runtime/error.h"
#include "runtime/profile.h"
#include "tests/temp_dir.h"

namespace lathe {
namespace {

// The profile of column-major `values` (rows x columns.size()), profiled in blocks of `block` rows
// as profile_table would.
DataProfile profile_of(const std::vector<ColumnInfo>& columns, const std::vector<float>& values,
                       std::int64_t block = 65536) {
  const auto ncols = static_cast<std::int64_t>(columns.size());
  const std::int64_t rows = static_cast<std::int64_t>(values.size()) / ncols;
  DataProfile p = make_profile(columns);
  std::vector<float> part;
  for (std::int64_t first = 0; first < rows; first += block) {
    const std::int64_t n = std::min(block, rows - first);
    part.resize(static_cast<std::size_t>(n * ncols));
    for (std::int64_t c = 0; c < ncols; ++c) {
      std::copy_n(values.begin() + c * rows + first, n, part.begin() + c * n);
    }
    profile_block(DeviceContext::cpu(), {part.data(), n, ncols}, {}, p);
  }
  p.rows = rows;
  return p;
}

ColumnInfo numeric(const std::string& name) { return {name, ColumnType::numeric, "float32", {}, "/" + name}; }

DataProfile normal_profile(double mean, std::int64_t rows, unsigned seed, double missing_rate = 0.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n(mean, 1.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<float> values(static_cast<std::size_t>(rows));
  for (float& v : values) v = u(rng) < missing_rate ? NAN : static_cast<float>(n(rng));
  return profile_of({numeric("x")}, values);
}

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

TEST(Psi, HandComputedValues) {
  const std::vector<double> half = {0.5, 0.5}, skewed = {0.7, 0.3};
  EXPECT_DOUBLE_EQ(population_stability_index(half, half), 0.0);
  // 0.2 ln(0.7/0.5) + (-0.2) ln(0.3/0.5)
  EXPECT_NEAR(population_stability_index(half, skewed), 0.2 * std::log(1.4) - 0.2 * std::log(0.6), 1e-12);
  EXPECT_NEAR(population_stability_index(half, skewed), 0.169459, 1e-6);
  // An empty bin is floored at kPsiFloor = 1e-4: (0.1 - 1e-4) ln(0.1 / 1e-4) + (-0.1) ln(0.9).
  const std::vector<double> one = {0.0, 1.0}, some = {0.1, 0.9};
  EXPECT_NEAR(population_stability_index(one, some), 0.700621, 1e-6);
  EXPECT_THROW(population_stability_index(one, std::vector<double>{1.0}), Error);
}

TEST(Psi, IdenticalDataIsZeroAndSameDistributionIsSmall) {
  const DataProfile a = normal_profile(0.0, 200000, 1);
  const DataProfile b = normal_profile(0.0, 200000, 2);
  const FeatureDrift same = compare_columns(a.columns[0], a.columns[0], {});
  EXPECT_NEAR(same.psi, 0.0, 1e-12);
  EXPECT_NEAR(same.ks, 0.0, 1e-12);
  EXPECT_EQ(same.status, DriftStatus::ok);
  ASSERT_EQ(same.edges.size(), 9u);
  EXPECT_NEAR(same.edges[4], 0.0, 0.02);  // the training median
  EXPECT_NEAR(same.edges[8], 1.2815516, 0.03);
  const FeatureDrift other = compare_columns(a.columns[0], b.columns[0], {});
  EXPECT_LT(other.psi, 0.002);
  EXPECT_LT(other.ks, 0.01);
  EXPECT_EQ(other.status, DriftStatus::ok);
}

TEST(Psi, ShiftedNormalMatchesAnalyticPsiAndKs) {
  const double shift = 0.5;
  const DataProfile train = normal_profile(0.0, 200000, 3);
  const DataProfile now = normal_profile(shift, 200000, 4);
  const FeatureDrift f = compare_columns(train.columns[0], now.columns[0], {});
  // Training deciles of N(0, 1); the shifted normal's share of each decile bin.
  const double z[] = {-INFINITY, -1.2815515655, -0.8416212336, -0.5244005127, -0.2533471031, 0.0,
                      0.2533471031, 0.5244005127, 0.8416212336, 1.2815515655, INFINITY};
  double psi = 0.0;
  for (int k = 1; k <= 10; ++k) {
    const double q = normal_cdf(z[k] - shift) - normal_cdf(z[k - 1] - shift);
    psi += (q - 0.1) * std::log(q / 0.1);
  }
  const double ks = 2.0 * normal_cdf(shift / 2.0) - 1.0;  // sup |Phi(x) - Phi(x - 0.5)| at x = 0.25
  EXPECT_NEAR(ks, 0.197413, 1e-5);
  EXPECT_NEAR(f.psi, psi, 0.01) << "analytic " << psi;
  EXPECT_NEAR(f.ks, ks, 0.01);
  EXPECT_EQ(f.status, psi >= 0.25 ? DriftStatus::alert : DriftStatus::warn);
  // A larger shift is an alert.
  const DataProfile far = normal_profile(1.5, 50000, 5);
  EXPECT_EQ(compare_columns(train.columns[0], far.columns[0], {}).status, DriftStatus::alert);
}

TEST(Ks, SmallExactSamples) {
  // {1,2,3,4} against {3,4,5,6}: at x = 2, 0.5 against 0; at 4, 1 against 0.5.
  const DataProfile a = profile_of({numeric("x")}, {1, 2, 3, 4});
  const DataProfile b = profile_of({numeric("x")}, {3, 4, 5, 6});
  EXPECT_DOUBLE_EQ(ks_statistic(a.columns[0].numeric.sketch, b.columns[0].numeric.sketch), 0.5);
  EXPECT_DOUBLE_EQ(ks_statistic(a.columns[0].numeric.sketch, a.columns[0].numeric.sketch), 0.0);
  EXPECT_TRUE(std::isnan(ks_statistic(a.columns[0].numeric.sketch, QuantileSketch())));
}

TEST(Psi, TheValuesBelowAPointMassAreABinOfTheirOwn) {
  // 0..4, then 10 in 90 of the 100 rows, then 20..24: every decile is 10, and the one edge [10] put
  // 0..4 in the bin (-inf, 10] with the 10s. An edge at 4, the largest value below 10, parts them.
  std::vector<float> train;
  for (int i = 0; i < 5; ++i) train.push_back(static_cast<float>(i));
  for (int i = 0; i < 90; ++i) train.push_back(10.0f);
  for (int i = 20; i < 25; ++i) train.push_back(static_cast<float>(i));
  const DataProfile a = profile_of({numeric("x")}, train);
  EXPECT_EQ(quantile_bin_edges(a.columns[0].numeric.sketch), (std::vector<double>{4.0, 10.0}));
  // The new rows: 0..4 now a third of them. Only the first bin changes.
  std::vector<float> now;
  for (int r = 0; r < 10; ++r) {
    for (int i = 0; i < 5; ++i) now.push_back(static_cast<float>(i));
  }
  for (int i = 0; i < 90; ++i) now.push_back(10.0f);
  for (int i = 20; i < 30; ++i) now.push_back(static_cast<float>(i % 5 + 20));
  const FeatureDrift f =
      compare_columns(a.columns[0], profile_of({numeric("x")}, now).columns[0], {});
  EXPECT_EQ(f.bins, 3);
  const std::vector<double> e = {0.05, 0.90, 0.05, 0.0},
                            n = {50.0 / 150, 90.0 / 150, 10.0 / 150, 0.0};
  EXPECT_NEAR(f.psi, population_stability_index(e, n), 1e-12);
  EXPECT_GT(f.psi, 0.25);

  // A 0/1 column of 200,000 rows, 8% zeros, summarised by blocks (weighted points): edges [0, 1].
  std::vector<float> flags(200000, 1.0f);
  for (std::size_t i = 0; i < flags.size(); i += 25) flags[i] = 0.0f;
  for (std::size_t i = 3; i < flags.size(); i += 25) flags[i] = 0.0f;
  const DataProfile big = profile_of({numeric("flag")}, flags, 65536);
  EXPECT_EQ(quantile_bin_edges(big.columns[0].numeric.sketch), (std::vector<double>{0.0, 1.0}));

  // A continuous column keeps its nine deciles.
  const DataProfile normal = normal_profile(0.0, 50000, 3);
  EXPECT_EQ(quantile_bin_edges(normal.columns[0].numeric.sketch).size(), 9u);
}

TEST(Psi, NumericBinsFromTheTrainingQuantilesWithAMissingBin) {
  // Training 1..10 (deciles: edges 1.9, 2.8, ..., 9.1); new: 1..5 twice, then two missing.
  std::vector<float> train, now;
  for (int i = 1; i <= 10; ++i) train.push_back(static_cast<float>(i));
  for (int r = 0; r < 2; ++r) {
    for (int i = 1; i <= 5; ++i) now.push_back(static_cast<float>(i));
  }
  now.push_back(NAN);
  now.push_back(NAN);
  const DataProfile a = profile_of({numeric("x")}, train);
  const DataProfile b = profile_of({numeric("x")}, now);
  const FeatureDrift f = compare_columns(a.columns[0], b.columns[0], {});
  ASSERT_EQ(f.edges.size(), 9u);
  EXPECT_NEAR(f.edges[0], 1.9, 1e-6);
  EXPECT_NEAR(f.edges[8], 9.1, 1e-6);
  EXPECT_DOUBLE_EQ(f.missing_rate_train, 0.0);
  EXPECT_DOUBLE_EQ(f.missing_rate_new, 2.0 / 12.0);
  // Training: 0.1 per bin, 0 missing. New: 1/6 in each of the first five bins, 0 in the others,
  // 1/6 missing.
  std::vector<double> e(11, 0.1), n(11, 0.0);
  e[10] = 0.0;
  for (int k = 0; k < 5; ++k) n[static_cast<std::size_t>(k)] = 1.0 / 6.0;
  n[10] = 1.0 / 6.0;
  double psi = 0.0;
  for (std::size_t k = 0; k < e.size(); ++k) {
    const double ek = std::max(e[k], 1e-4), nk = std::max(n[k], 1e-4);
    psi += (nk - ek) * std::log(nk / ek);
  }
  EXPECT_NEAR(f.psi, psi, 1e-9);
  EXPECT_NEAR(f.ks, 0.5, 1e-12);  // at x = 5: 0.5 against 1
  EXPECT_EQ(f.status, DriftStatus::alert);
}

TEST(Psi, CategoricalSharesCountUnseenLabelsInOneBin) {
  // Training: a 50, b 30, c 20. New, with its own code order: c 20, a 50, d 20, e 10.
  const ColumnInfo train_col{"city", ColumnType::categorical, "int32", {"a", "b", "c"}, "/city"};
  const ColumnInfo new_col{"city", ColumnType::categorical, "int32", {"c", "a", "d", "e"}, "/city"};
  std::vector<float> train, now;
  for (int i = 0; i < 100; ++i) train.push_back(i < 50 ? 0.0f : i < 80 ? 1.0f : 2.0f);
  for (int i = 0; i < 100; ++i) now.push_back(i < 20 ? 0.0f : i < 70 ? 1.0f : i < 90 ? 2.0f : 3.0f);
  const DataProfile a = profile_of({train_col}, train);
  const DataProfile b = profile_of({new_col}, now);
  const FeatureDrift f = compare_columns(a.columns[0], b.columns[0], {});
  EXPECT_DOUBLE_EQ(f.unseen_share, 0.3);
  EXPECT_EQ(f.unseen, (std::vector<std::string>{"d", "e"}));
  EXPECT_DOUBLE_EQ(f.missing_rate_new, 0.0);
  EXPECT_TRUE(std::isnan(f.ks));
  // Bins a, b, c, missing, unseen: (0.5, 0.3, 0.2, 0, 0) against (0.5, 0, 0.2, 0, 0.3).
  const double expected = (1e-4 - 0.3) * std::log(1e-4 / 0.3) + (0.3 - 1e-4) * std::log(0.3 / 1e-4);
  EXPECT_NEAR(f.psi, expected, 1e-9);
  EXPECT_NEAR(f.psi, 4.802221, 1e-5);
  EXPECT_EQ(f.status, DriftStatus::alert);
  // The same labels in another code order: no drift at all.
  std::vector<float> reordered;
  const ColumnInfo other_order{"city", ColumnType::categorical, "int32", {"c", "b", "a"}, "/city"};
  for (float v : train) reordered.push_back(2.0f - v);
  const FeatureDrift same = compare_columns(a.columns[0], profile_of({other_order}, reordered).columns[0], {});
  EXPECT_NEAR(same.psi, 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(same.unseen_share, 0.0);
  // A column that changed type is an alert.
  const FeatureDrift changed = compare_columns(a.columns[0], profile_of({numeric("city")}, now).columns[0], {});
  EXPECT_EQ(changed.status, DriftStatus::alert);
  EXPECT_FALSE(changed.note.empty());
}

// A categorical column of `labels` ("id0", "id1", ...) drawn uniformly for `rows` rows, every 40th
// row missing, then `extra_labels` labels never drawn ("new0", ...; "new<i>" in 10 rows for i < 10,
// else in 1).
DataProfile id_profile(int labels, std::int64_t rows, unsigned seed, int extra_labels = 0) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> pick(0, labels - 1);
  ColumnInfo col{"id", ColumnType::categorical, "int32", {}, "/id"};
  // The codes in another order than the labels' names, as a file imported separately may have.
  for (int i = labels - 1; i >= 0; --i) col.categories.push_back("id" + std::to_string(i));
  std::vector<float> codes;
  for (std::int64_t r = 0; r < rows; ++r) codes.push_back(r % 40 == 0 ? NAN : static_cast<float>(pick(rng)));
  for (int i = 0; i < extra_labels; ++i) {
    col.categories.push_back("new" + std::to_string(i));
    for (int k = 0; k < (i < 10 ? 10 : 1); ++k) codes.push_back(static_cast<float>(labels + i));
  }
  return profile_of({col}, codes);
}

TEST(Psi, HashedCategoricalColumnIsComparedOverTheModelsBuckets) {
  // 2000 labels, 4000 training rows and 2000 new ones: over the labels, two samples of one
  // distribution differ by about 1999 (1/4000 + 1/2000) = 1.5 by chance alone, an alert. The model
  // hashes the column into 64 buckets: over those, 64 (1/4000 + 1/2000) = 0.048 (63 buckets and the
  // missing bin).
  const DataProfile train = id_profile(2000, 4000, 31), now = id_profile(2000, 2000, 32);
  CategoricalEncoding hashed;
  hashed.name = "id";
  hashed.hashed = true;
  hashed.buckets = 64;
  const FeatureDrift by_label = compare_columns(train.columns[0], now.columns[0], {});
  EXPECT_GT(by_label.psi, 0.25);
  EXPECT_EQ(by_label.status, DriftStatus::alert);
  EXPECT_EQ(by_label.hash_buckets, 0u);
  const FeatureDrift f = compare_columns(train.columns[0], now.columns[0], {}, &hashed);
  EXPECT_EQ(f.hash_buckets, 64u);
  EXPECT_EQ(f.bins, 65);
  EXPECT_DOUBLE_EQ(f.chance_psi, chance_psi(65, 4000, 2000));
  EXPECT_LT(f.psi, 0.1);
  EXPECT_EQ(f.status, DriftStatus::ok);
  EXPECT_DOUBLE_EQ(f.missing_rate_train, 100.0 / 4000);
  EXPECT_DOUBLE_EQ(f.missing_rate_new, 50.0 / 2000);
  // The PSI of the bucket shares, each label put in label_hash(label) % 64, then missing.
  const auto bucket_shares = [](const CategoricalProfile& p) {
    std::vector<double> shares(65, 0.0);
    double rows = static_cast<double>(p.missing);
    for (std::size_t i = 0; i < p.labels.size(); ++i) {
      shares[label_hash(p.labels[i].data(), p.labels[i].size()) % 64] += static_cast<double>(p.counts[i]);
      rows += static_cast<double>(p.counts[i]);
    }
    shares[64] = static_cast<double>(p.missing);
    for (double& s : shares) s /= rows;
    return shares;
  };
  EXPECT_NEAR(f.psi,
              population_stability_index(bucket_shares(train.columns[0].categorical),
                                         bucket_shares(now.columns[0].categorical)),
              1e-12);
  // Itself: no drift at all. An encoding that does not hash: the labels, as without one.
  EXPECT_NEAR(compare_columns(train.columns[0], train.columns[0], {}, &hashed).psi, 0.0, 1e-12);
  CategoricalEncoding vocabulary;
  vocabulary.name = "id";
  EXPECT_DOUBLE_EQ(compare_columns(train.columns[0], now.columns[0], {}, &vocabulary).psi, by_label.psi);

  // Labels the training rows never had (the 4000 draws miss some of the 2000 ids; and new0...) land
  // in their buckets (no unseen bin); unseen_share is their share of the new rows, and the list
  // holds the most frequent kUnseenListed of them.
  const DataProfile with_new = id_profile(2000, 2000, 32, 150);  // new0..new9 in 10 rows, 140 in 1
  const CategoricalProfile& t = train.columns[0].categorical;
  const CategoricalProfile& n = with_new.columns[0].categorical;
  double unseen_rows = 0.0;
  for (std::size_t i = 0; i < n.labels.size(); ++i) {
    const auto at = std::find(t.labels.begin(), t.labels.end(), n.labels[i]);
    if (at == t.labels.end() || t.counts[static_cast<std::size_t>(at - t.labels.begin())] == 0) {
      unseen_rows += static_cast<double>(n.counts[i]);
    }
  }
  ASSERT_GT(unseen_rows, 240.0);  // 100 + 140 rows of new labels, and ids the training rows lacked
  const FeatureDrift u = compare_columns(train.columns[0], with_new.columns[0], {}, &hashed);
  EXPECT_EQ(u.bins, 65);
  EXPECT_DOUBLE_EQ(u.unseen_share, unseen_rows / 2240);
  EXPECT_NEAR(u.psi,
              population_stability_index(bucket_shares(train.columns[0].categorical),
                                         bucket_shares(with_new.columns[0].categorical)),
              1e-12);
  ASSERT_EQ(u.unseen.size(), kUnseenListed);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(u.unseen[static_cast<std::size_t>(i)], "new" + std::to_string(i));
  // Without the model's buckets: the unseen labels in one bin, all listed, in the file's order.
  const FeatureDrift by_label_new = compare_columns(train.columns[0], with_new.columns[0], {});
  EXPECT_DOUBLE_EQ(by_label_new.unseen_share, unseen_rows / 2240);
  EXPECT_GT(by_label_new.unseen.size(), 150u);
  EXPECT_EQ(by_label_new.unseen.back(), "new149");
}

TEST(Psi, ThresholdsDecideTheStatus) {
  const DataProfile a = profile_of({numeric("x")}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  const DataProfile b = profile_of({numeric("x")}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 9});
  const FeatureDrift f = compare_columns(a.columns[0], b.columns[0], {});
  ASSERT_GT(f.psi, 0.0);
  DriftThresholds t;
  t.psi_warn = f.psi / 2;
  t.psi_alert = f.psi * 2;
  EXPECT_EQ(compare_columns(a.columns[0], b.columns[0], t).status, DriftStatus::warn);
  t.psi_alert = f.psi;
  EXPECT_EQ(compare_columns(a.columns[0], b.columns[0], t).status, DriftStatus::alert);
  t.psi_warn = f.psi * 2;
  t.psi_alert = f.psi * 3;
  EXPECT_EQ(compare_columns(a.columns[0], b.columns[0], t).status, DriftStatus::ok);
}

// The mean PSI of two samples of one distribution, through the whole path (profiles, training
// deciles, shares, floor), over `pairs` random pairs of n_train and n_new rows.
double simulated_chance_psi(std::int64_t n_train, std::int64_t n_new, int pairs, unsigned seed, int* bins) {
  double sum = 0.0;
  for (int i = 0; i < pairs; ++i) {
    const DataProfile a = normal_profile(0.0, n_train, seed + 2u * static_cast<unsigned>(i));
    const DataProfile b = normal_profile(0.0, n_new, seed + 2u * static_cast<unsigned>(i) + 1u);
    const FeatureDrift f = compare_columns(a.columns[0], b.columns[0], {});
    sum += f.psi;
    *bins = f.bins;
    EXPECT_DOUBLE_EQ(f.chance_psi, chance_psi(f.bins, n_train, n_new));
  }
  return sum / pairs;
}

TEST(Psi, ChanceLevelFormula) {
  EXPECT_NEAR(chance_psi(10, 220, 69), 9.0 * (1.0 / 220 + 1.0 / 69), 1e-15);
  EXPECT_NEAR(chance_psi(10, 220, 69), 0.1713, 1e-4);
  EXPECT_DOUBLE_EQ(chance_psi(3, 100, 100), 0.04);
  EXPECT_DOUBLE_EQ(chance_psi(1, 100, 100), 0.0);  // one bin: no room to differ
  EXPECT_TRUE(std::isnan(chance_psi(10, 100, 0)));
  EXPECT_TRUE(std::isnan(chance_psi(10, 0, 100)));
}

TEST(Psi, ChanceLevelMatchesTheMeanPsiOfSamplesOfOneDistribution) {
  // The PSI of many random pairs of samples from one normal distribution, averaged: within 25% of
  // (bins - 1) (1/n_train + 1/n_new). 69 rows: the QA report's penguin test split.
  const std::int64_t n_train = 2000;
  for (const std::int64_t n_new : {std::int64_t{69}, std::int64_t{1000}}) {
    int bins = 0;
    const double mean = simulated_chance_psi(n_train, n_new, 300, 1000u + static_cast<unsigned>(n_new), &bins);
    EXPECT_EQ(bins, 10);  // the deciles; no missing values, so no missing bin
    const double formula = chance_psi(bins, n_train, n_new);
    EXPECT_NEAR(mean / formula, 1.0, 0.25) << "n_new " << n_new << ": mean PSI " << mean << ", formula " << formula;
  }
}

TEST(Psi, SmallSamplesAreNotedOncePerKindOfBins) {
  // Training 220 rows, new 69 (the QA report's penguins): two numeric columns of 10 bins, one with
  // missing values (11 bins), a categorical column of 3 labels (3 bins).
  const DataProfile train = normal_profile(0.0, 220, 7);
  const DataProfile train_missing = normal_profile(0.0, 220, 8, 0.1);
  const DataProfile now = normal_profile(0.0, 69, 9);
  const DataProfile now_missing = normal_profile(0.0, 69, 10, 0.1);
  const ColumnInfo city{"city", ColumnType::categorical, "int32", {"a", "b", "c"}, "/city"};
  std::vector<float> codes220, codes69;
  for (int i = 0; i < 220; ++i) codes220.push_back(static_cast<float>(i % 3));
  for (int i = 0; i < 69; ++i) codes69.push_back(static_cast<float>(i % 3));
  const DataProfile cat_train = profile_of({city}, codes220), cat_now = profile_of({city}, codes69);

  DriftThresholds t;
  std::vector<FeatureDrift> features;
  for (const char* name : {"x", "y"}) {
    features.push_back(compare_columns(train.columns[0], now.columns[0], t));
    features.back().name = name;
  }
  features.push_back(compare_columns(cat_train.columns[0], cat_now.columns[0], t));
  EXPECT_EQ(features[0].bins, 10);
  EXPECT_EQ(features[2].bins, 3);
  EXPECT_NEAR(features[0].chance_psi, 0.1713, 1e-4);
  EXPECT_NEAR(features[2].chance_psi, 2.0 * (1.0 / 220 + 1.0 / 69), 1e-12);  // 0.038: below 0.05
  const PredictionDrift no_prediction;

  // The numeric features are alike: one note, with the rows, the chance level and what to do.
  std::vector<std::string> notes = small_sample_notes(features, no_prediction, 220, 69, t);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("69 rows"), std::string::npos) << notes[0];
  EXPECT_NE(notes[0].find("220 training rows"), std::string::npos) << notes[0];
  EXPECT_NE(notes[0].find("about 0.17 by chance"), std::string::npos) << notes[0];
  EXPECT_NE(notes[0].find("the features 'x', 'y' over 10 bins"), std::string::npos) << notes[0];
  EXPECT_EQ(notes[0].find("city"), std::string::npos) << notes[0];
  EXPECT_NE(notes[0].find("--psi-warn"), std::string::npos) << notes[0];
  EXPECT_NE(notes[0].find("larger sample"), std::string::npos) << notes[0];

  // Every feature alike: one note for all, naming none.
  features.pop_back();
  notes = small_sample_notes(features, no_prediction, 220, 69, t);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("every feature"), std::string::npos) << notes[0];

  // A missing bin (11 bins, 0.19): alike, still one note, which gives the range.
  features.push_back(compare_columns(train_missing.columns[0], now_missing.columns[0], t));
  features.back().name = "z";
  EXPECT_EQ(features.back().bins, 11);
  notes = small_sample_notes(features, no_prediction, 220, 69, t);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("every feature over 10 to 11 bins is about 0.17 to 0.19"), std::string::npos) << notes[0];

  // A categorical column of 40 labels (0.74): a note of its own, naming it; the others are named too.
  std::vector<std::string> labels;
  for (int i = 0; i < 40; ++i) labels.push_back("l" + std::to_string(i));
  const ColumnInfo many{"many", ColumnType::categorical, "int32", labels, "/many"};
  std::vector<float> many220, many69;
  for (int i = 0; i < 220; ++i) many220.push_back(static_cast<float>(i % 40));
  for (int i = 0; i < 69; ++i) many69.push_back(static_cast<float>(i % 40));
  features.push_back(compare_columns(profile_of({many}, many220).columns[0], profile_of({many}, many69).columns[0], t));
  EXPECT_EQ(features.back().bins, 40);
  notes = small_sample_notes(features, no_prediction, 220, 69, t);
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_NE(notes[0].find("the features 'x', 'y', 'z' over 10 to 11 bins"), std::string::npos) << notes[0];
  EXPECT_NE(notes[1].find("feature 'many' over 40 bins is about 0.74"), std::string::npos) << notes[1];
  features.pop_back();

  // A higher warn threshold, or larger samples: no note.
  t.psi_warn = 0.4;
  EXPECT_TRUE(small_sample_notes(features, no_prediction, 220, 69, t).empty());
  t.psi_warn = 0.1;
  const FeatureDrift big = compare_columns(normal_profile(0.0, 5000, 11).columns[0],
                                           normal_profile(0.0, 2000, 12).columns[0], t);
  EXPECT_LT(big.chance_psi, 0.05);
  EXPECT_TRUE(small_sample_notes({big}, no_prediction, 5000, 2000, t).empty());

  // The predictions: their own rows (the validation rows stored at training).
  PredictionDrift p;
  p.available = true;
  p.bins = 3;
  p.train_rows = 55;
  p.new_rows = 69;
  p.chance_psi = chance_psi(p.bins, p.train_rows, p.new_rows);
  notes = small_sample_notes({big}, p, 5000, 69, t);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("55 predictions"), std::string::npos) << notes[0];
}

TEST(PredictionSummary, SketchForScoresAndClassSharesForMulticlass) {
  std::vector<float> p;
  for (int i = 0; i < 1000; ++i) p.push_back(static_cast<float>(i) / 1000.0f);
  const PredictionSummary s = summarize_predictions(Task::binary, 1, p, "validation");
  EXPECT_EQ(s.rows, 1000);
  EXPECT_EQ(s.source, "validation");
  EXPECT_DOUBLE_EQ(s.sketch.count(), 1000.0);
  EXPECT_NEAR(s.sketch.quantile(0.5), 0.4995, 1e-6);
  const PredictionDrift same = compare_predictions(s, s, {});
  EXPECT_TRUE(same.available);
  EXPECT_NEAR(same.psi, 0.0, 1e-12);
  EXPECT_EQ(same.train_shares.size(), 10u);
  std::vector<float> high(p);
  for (float& v : high) v = std::min(1.0f, v + 0.3f);
  const PredictionDrift moved = compare_predictions(s, summarize_predictions(Task::binary, 1, high, "new"), {});
  EXPECT_EQ(moved.status, DriftStatus::alert);

  // Three classes, rows' argmax 0, 2, 2, 0 (a tie goes to the lowest class).
  const std::vector<float> probs = {0.6f, 0.3f, 0.1f, 0.1f, 0.2f, 0.7f, 0.2f, 0.2f, 0.6f, 0.4f, 0.4f, 0.2f};
  const PredictionSummary m = summarize_predictions(Task::multiclass, 3, probs, "validation");
  EXPECT_EQ(m.rows, 4);
  EXPECT_EQ(m.class_shares, (std::vector<double>{0.5, 0.0, 0.5}));
  const std::vector<float> other = {0.1f, 0.8f, 0.1f, 0.1f, 0.8f, 0.1f, 0.7f, 0.2f, 0.1f, 0.1f, 0.1f, 0.8f};
  const PredictionDrift d = compare_predictions(m, summarize_predictions(Task::multiclass, 3, other, "new"), {});
  // (0.5, 0, 0.5) against (0.25, 0.5, 0.25); the empty class floored.
  const double expected = (0.25 - 0.5) * std::log(0.25 / 0.5) + (0.5 - 1e-4) * std::log(0.5 / 1e-4) +
                          (0.25 - 0.5) * std::log(0.25 / 0.5);
  EXPECT_NEAR(d.psi, expected, 1e-9);
  EXPECT_FALSE(compare_predictions(PredictionSummary{}, m, {}).available);
}

// A small binary model of a table with age, income (missing values), city (categorical) and y.
struct SmallModel {
  std::vector<ColumnInfo> columns = {numeric("age"), numeric("income"),
                                     {"city", ColumnType::categorical, "int32", {"Lima", "Oslo", "Pune"}, "/city"},
                                     numeric("y")};
  std::vector<float> values;
  std::int64_t rows = 3000;
  DataProfile profile;
  ModelFile model;

  SmallModel() {
    values.resize(static_cast<std::size_t>(rows * 4));
    std::mt19937 rng(7);
    std::normal_distribution<float> n(0, 1);
    for (std::int64_t r = 0; r < rows; ++r) {
      values[r] = 40 + 10 * n(rng);
      values[rows + r] = r % 7 == 0 ? NAN : 5e4f + 1e4f * n(rng);
      values[2 * rows + r] = r % 11 == 0 ? NAN : static_cast<float>(r % 3);
      values[3 * rows + r] = static_cast<float>(r % 2);
    }
    profile = profile_of(columns, values, 1000);
    PreparationOptions options;
    options.label = "y";
    model.task = Task::binary;
    model.label = "y";
    model.classes = {"0", "1"};
    model.preparation = fit_preparation(profile, options);
    model.input_schema = columns;
    const auto features = static_cast<std::size_t>(model.preparation.expanded_features());
    for (std::size_t i = 0; i < features; ++i) model.parameters.weights.push_back(0.1f * static_cast<float>(i));
    model.parameters.bias = {0.5f};
  }
};

void expect_same_profile(const DataProfile& a, const DataProfile& b) {
  EXPECT_EQ(a.rows, b.rows);
  ASSERT_EQ(a.columns.size(), b.columns.size());
  for (std::size_t c = 0; c < a.columns.size(); ++c) {
    const ColumnProfile& x = a.columns[c];
    const ColumnProfile& y = b.columns[c];
    SCOPED_TRACE(x.name);
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.type, y.type);
    if (x.type == ColumnType::categorical) {
      EXPECT_EQ(x.categorical.labels, y.categorical.labels);
      EXPECT_EQ(x.categorical.counts, y.categorical.counts);
      EXPECT_EQ(x.categorical.missing, y.categorical.missing);
      continue;
    }
    EXPECT_EQ(x.numeric.stats.count, y.numeric.stats.count);
    EXPECT_EQ(x.numeric.stats.missing, y.numeric.stats.missing);
    EXPECT_EQ(x.numeric.stats.mean, y.numeric.stats.mean);
    EXPECT_NEAR(x.numeric.stats.m2, y.numeric.stats.m2, 1e-12 * std::abs(x.numeric.stats.m2));
    EXPECT_EQ(x.numeric.stats.min, y.numeric.stats.min);
    EXPECT_EQ(x.numeric.stats.max, y.numeric.stats.max);
    EXPECT_EQ(x.numeric.sketch.points(), y.numeric.sketch.points());
    EXPECT_EQ(x.numeric.sketch.weights(), y.numeric.sketch.weights());
    if (x.numeric.stats.count > 0) EXPECT_EQ(x.numeric.sketch.quantile(0.37), y.numeric.sketch.quantile(0.37));
  }
}

TEST(ModelFileV2, ProfilePredictionSummaryAndParentRoundTrip) {
  test::TemporaryDirectory dir;
  SmallModel t;
  // An all-missing numeric column and a sketch compacted over several blocks are stored too.
  t.profile.columns.push_back(make_profile({numeric("empty")}).columns[0]);
  t.profile.columns.back().numeric.stats.missing = t.rows;
  ASSERT_LT(t.profile.columns[0].numeric.sketch.points().size(), 3000u);  // compacted
  t.model.profile = t.profile;
  std::vector<float> p;
  for (int i = 0; i < 5000; ++i) p.push_back(static_cast<float>((i * 7919) % 5000) / 5000.0f);
  t.model.predictions = summarize_predictions(Task::binary, 1, p, "validation");
  t.model.parent = R"({"path":"old.h5","fingerprint":"abc123"})";
  save_model(dir.file("m.h5"), t.model);
  const ModelFile back = load_model(dir.file("m.h5"));
  ASSERT_TRUE(back.profile.has_value());
  expect_same_profile(*t.model.profile, *back.profile);
  const ColumnProfile& empty = back.profile->columns.back();
  EXPECT_EQ(empty.numeric.stats.count, 0);
  EXPECT_EQ(empty.numeric.stats.min, INFINITY);
  EXPECT_EQ(empty.numeric.sketch.count(), 0.0);
  EXPECT_EQ(back.predictions.source, "validation");
  EXPECT_EQ(back.predictions.rows, 5000);
  EXPECT_EQ(back.predictions.sketch.points(), t.model.predictions.sketch.points());
  EXPECT_EQ(back.predictions.sketch.weights(), t.model.predictions.sketch.weights());
  EXPECT_TRUE(back.predictions.class_shares.empty());
  EXPECT_EQ(back.parent, t.model.parent);
  // The profile of the file compares with itself as no drift.
  for (std::size_t c = 0; c < back.profile->columns.size(); ++c) {
    const FeatureDrift f = compare_columns(t.profile.columns[c], back.profile->columns[c], {});
    if (c + 1 < back.profile->columns.size()) {
      EXPECT_NEAR(f.psi, 0.0, 1e-12) << f.name;
    }
  }

  // A multiclass summary stores its class shares.
  ModelFile multi = t.model;
  multi.task = Task::multiclass;
  multi.loss = LossKind::softmax;
  multi.classes = {"a", "b", "c"};
  multi.outputs = 3;
  multi.parameters.weights.resize(multi.parameters.weights.size() * 3, 0.5f);
  multi.parameters.bias = {0.1f, 0.2f, 0.3f};
  multi.predictions = summarize_predictions(Task::multiclass, 3, std::vector<float>{0.2f, 0.5f, 0.3f, 0.7f, 0.2f, 0.1f}, "training");
  multi.parent.clear();
  save_model(dir.file("multi.h5"), multi);
  const ModelFile mback = load_model(dir.file("multi.h5"));
  EXPECT_EQ(mback.predictions.class_shares, (std::vector<double>{0.5, 0.5, 0.0}));
  EXPECT_EQ(mback.predictions.source, "training");
  EXPECT_TRUE(mback.parent.empty());
}

// The profile's "columns" text is written column by column, the labels one at a time, and must be
// the text nlohmann::json's dump() gives of the whole array (as files of earlier versions hold it):
// labels that need escaping (quotes, backslashes, control characters) and UTF-8 ones included, in
// the attribute that holds a short text and in the dataset that holds a long one.
TEST(ModelFileV2, ProfileColumnsTextIsTheJsonDumpOfTheColumns) {
  test::TemporaryDirectory dir;
  for (const std::size_t extra_labels : {std::size_t{0}, std::size_t{5000}}) {
    SmallModel t;
    ColumnProfile odd;
    odd.name = "odd \"name\"";
    odd.type = ColumnType::categorical;
    odd.categorical.labels = {"plain", "a \"quoted\" one", "back\\slash", "line\nbreak", std::string("nul\0byte", 8),
                              "\x01\x1f\x7f", "caf\xc3\xa9", "\xe2\x82\xac 5", ""};
    for (std::size_t k = 0; k < extra_labels; ++k) odd.categorical.labels.push_back("label" + std::to_string(k));
    odd.categorical.counts.assign(odd.categorical.labels.size(), 1);
    odd.categorical.missing = 2;
    t.profile.columns.push_back(odd);
    t.model.profile = t.profile;
    const std::filesystem::path path = dir.file("m" + std::to_string(extra_labels) + ".h5");
    save_model(path, t.model);

    nlohmann::json expected = nlohmann::json::array();
    for (const ColumnProfile& c : t.profile.columns) {
      nlohmann::json j = {{"name", c.name}, {"type", column_type_name(c.type)}};
      if (c.type == ColumnType::categorical) j["labels"] = c.categorical.labels;
      expected.push_back(std::move(j));
    }
    h5::H5Handle file = h5::file_handle(H5Fopen(path.string().c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    ASSERT_GE(file.get(), 0);
    h5::H5Handle group = h5::group_handle(H5Gopen2(file.get(), "profile", H5P_DEFAULT));
    const bool long_text = extra_labels > 0;
    EXPECT_EQ(h5::attribute_exists(group.get(), "columns", "test"), !long_text);
    const std::vector<std::string> stored = long_text ? h5::read_checksummed_strings(file.get(), "profile/columns", "test")
                                                      : h5::read_string_attribute(group.get(), "columns", "test");
    ASSERT_EQ(stored.size(), 1u);
    EXPECT_EQ(stored[0], expected.dump());

    const ModelFile back = load_model(path);
    ASSERT_TRUE(back.profile.has_value());
    expect_same_profile(*t.model.profile, *back.profile);
    EXPECT_EQ(back.profile->columns.back().categorical.labels, odd.categorical.labels);
  }
}

// The rows of a SmallModel (the training data: no feature drift) written as a columnar file, with
// the label column set to `label` in every row.
std::filesystem::path write_small_model_rows(const test::TemporaryDirectory& dir, const std::string& name,
                                             const SmallModel& t, float label) {
  const auto rows = static_cast<std::size_t>(t.rows);
  const std::filesystem::path path = dir.file(name);
  ColumnarWriter w(path, {{"age"}, {"income"}, {"city", StoredType::categorical_codes}, {"y"}});
  w.append_numeric(0, std::span<const float>(t.values.data(), rows));
  w.append_numeric(1, std::span<const float>(t.values.data() + rows, rows));
  std::vector<std::int32_t> codes(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    const float c = t.values[2 * rows + r];
    codes[r] = std::isnan(c) ? -1 : static_cast<std::int32_t>(c);
  }
  w.append_codes(2, codes);
  w.set_categories(2, t.columns[2].categories);
  w.append_numeric(3, std::vector<float>(rows, label));
  w.close();
  return path;
}

TEST(Drift, AnUndefinedMetricIsNotComparedAndIsNoDrift) {
  // A model stopped on auc, and labeled new rows of one class (a batch without a positive, common
  // for a rare event): auc is undefined there, not a drop. The metrics are skipped with a note, and
  // the status is the features' (none drift: the training rows themselves).
  test::TemporaryDirectory dir;
  SmallModel t;
  t.model.profile = t.profile;
  t.model.metrics_json = R"({"metric": "auc", "valid": {"auc": 0.8, "pr_auc": 0.7, "logloss": 0.5, "accuracy": 0.75}})";
  save_model(dir.file("auc.h5"), t.model);
  const auto negatives = write_small_model_rows(dir, "negatives.h5", t, 0.0f);
  DriftReport r = drift_table(DeviceContext::cpu(), dir.file("auc.h5"), negatives, {});
  EXPECT_EQ(r.status, DriftStatus::ok);
  EXPECT_TRUE(r.labels_present);
  EXPECT_TRUE(r.metrics.empty());
  EXPECT_EQ(r.primary_metric, "auc");
  ASSERT_FALSE(r.metrics_not_compared.empty());
  EXPECT_NE(r.metrics_not_compared.find("auc, the model's metric, is undefined on " + negatives.string() +
                                        ": its 3000 rows hold one class ('0')"),
            std::string::npos)
      << r.metrics_not_compared;
  ASSERT_FALSE(r.notes.empty());
  EXPECT_EQ(r.notes.back(), "metrics not compared: " + r.metrics_not_compared);
  const std::string json = drift_report_json(r);
  EXPECT_NE(json.find("\"status\": \"ok\""), std::string::npos);
  EXPECT_NE(json.find("\"metric_drop\": null"), std::string::npos);

  // The model stores auc as null (its validation rows held one class): not compared either, whatever
  // the new labels.
  t.model.metrics_json = R"({"metric": "auc", "valid": {"auc": null, "pr_auc": null, "logloss": 0.5, "accuracy": 0.75}})";
  save_model(dir.file("null_auc.h5"), t.model);
  const auto positives = write_small_model_rows(dir, "positives.h5", t, 1.0f);
  r = drift_table(DeviceContext::cpu(), dir.file("null_auc.h5"), positives, {});
  EXPECT_EQ(r.status, DriftStatus::ok);
  EXPECT_TRUE(r.metrics.empty());
  EXPECT_NE(r.metrics_not_compared.find("auc, the model's metric, is undefined on the model's validation rows"),
            std::string::npos)
      << r.metrics_not_compared;

  // The model's metric is logloss: compared (the status follows it); auc and pr_auc are left out
  // with one note, not listed as alerts.
  t.model.metrics_json = R"({"metric": "logloss", "valid": {"auc": 0.8, "pr_auc": 0.7, "logloss": 100, "accuracy": 0.01}})";
  save_model(dir.file("logloss.h5"), t.model);
  r = drift_table(DeviceContext::cpu(), dir.file("logloss.h5"), negatives, {});
  EXPECT_TRUE(r.metrics_not_compared.empty());
  ASSERT_EQ(r.metrics.size(), 2u);
  EXPECT_EQ(r.metrics[0].name, "accuracy");
  EXPECT_EQ(r.metrics[1].name, "logloss");
  EXPECT_TRUE(r.metrics[1].primary);
  EXPECT_EQ(r.status, DriftStatus::ok);  // logloss better than stored
  const auto undefined = std::find_if(r.notes.begin(), r.notes.end(), [](const std::string& n) {
    return n.find("undefined") != std::string::npos;
  });
  ASSERT_NE(undefined, r.notes.end());
  EXPECT_EQ(*undefined, "auc, pr_auc are undefined on " + negatives.string() +
                            ": its 3000 rows hold one class ('0'), as a small batch of a rare class often does: "
                            "not compared");
}

TEST(Drift, AMetricDropUnderTheAbsoluteFloorIsNoDrift) {
  // The QA report's penguins: validation log-loss 0.0032, 0.0124 on new rows (99.8% accuracy) was a
  // 285% relative drop and an alert. Under the floor of 0.01 nats it is no drift; a drop past the
  // floor and the relative threshold still alerts, as before.
  const DriftThresholds t;
  EXPECT_EQ(metric_drop_floor("logloss", NAN), kMetricDropFloor);
  EXPECT_EQ(metric_drop_floor("auc", 5.0), kMetricDropFloor);
  EXPECT_EQ(metric_drop_floor("rmse", 250.0), 2.5);
  EXPECT_EQ(metric_drop_floor("mae", NAN), 0.0);
  MetricDrift m = compare_metric("logloss", 0.0032, 0.0124, NAN, t);
  EXPECT_NEAR(m.relative_drop, 2.875, 1e-12);
  EXPECT_NEAR(m.drop, 0.0092, 1e-12);
  EXPECT_EQ(m.drop_floor, 0.01);
  EXPECT_EQ(m.status, DriftStatus::ok);
  EXPECT_EQ(compare_metric("logloss", 0.0032, 0.05, NAN, t).status, DriftStatus::alert);
  // A typical model: the relative thresholds decide, as before the floor.
  EXPECT_EQ(compare_metric("logloss", 0.3, 0.34, NAN, t).status, DriftStatus::alert);
  EXPECT_EQ(compare_metric("logloss", 0.3, 0.32, NAN, t).status, DriftStatus::warn);
  EXPECT_EQ(compare_metric("logloss", 0.3, 0.31, NAN, t).status, DriftStatus::ok);
  EXPECT_EQ(compare_metric("auc", 0.9, 0.8, NAN, t).status, DriftStatus::alert);
  // r2 near 0: 0.02 -> 0.015 is a 25% drop of a hundredth's half.
  EXPECT_EQ(compare_metric("r2", 0.02, 0.015, NAN, t).status, DriftStatus::ok);
  EXPECT_EQ(compare_metric("r2", 0.5, 0.4, NAN, t).status, DriftStatus::alert);
  // rmse in the label's units: a hundredth of its standard deviation (2.5 here); unknown: no floor.
  EXPECT_EQ(compare_metric("rmse", 0.5, 0.9, 250.0, t).status, DriftStatus::ok);
  EXPECT_EQ(compare_metric("rmse", 0.5, 4.0, 250.0, t).status, DriftStatus::alert);
  EXPECT_EQ(compare_metric("rmse", 0.5, 0.9, NAN, t).status, DriftStatus::alert);
  // A perfect validation value: the floor alone (the relative drop is undefined).
  m = compare_metric("logloss", 0.0, 0.005, NAN, t);
  EXPECT_TRUE(std::isnan(m.relative_drop));
  EXPECT_EQ(m.status, DriftStatus::ok);
  EXPECT_EQ(compare_metric("logloss", 0.0, 0.5, NAN, t).status, DriftStatus::alert);
  EXPECT_EQ(compare_metric("logloss", 0.3, NAN, NAN, t).status, DriftStatus::alert);
  EXPECT_EQ(compare_metric("accuracy", 0.998, 0.99, NAN, t).status, DriftStatus::ok);

  // Through drift_table: thresholds so low that any drop would count, a stored log-loss 0.005 better
  // than the new rows': no drift, with a note, and the floor in the JSON.
  test::TemporaryDirectory dir;
  SmallModel small;
  small.model.profile = small.profile;
  small.model.metrics_json = R"({"metric": "logloss", "valid": {"logloss": 100}})";
  save_model(dir.file("m.h5"), small.model);
  const auto rows = write_small_model_rows(dir, "rows.h5", small, 1.0f);
  DriftThresholds low;
  low.metric_warn = 1e-6;
  low.metric_alert = 2e-6;
  DriftReport r = drift_table(DeviceContext::cpu(), dir.file("m.h5"), rows, low);
  ASSERT_EQ(r.metrics.size(), 1u);
  const double now = r.metrics[0].now;
  ASSERT_GT(now, 0.05);
  small.model.metrics_json = R"({"metric": "logloss", "valid": {"logloss": )" + std::to_string(now - 0.005) + "}}";
  save_model(dir.file("m.h5"), small.model);
  r = drift_table(DeviceContext::cpu(), dir.file("m.h5"), rows, low);
  ASSERT_EQ(r.metrics.size(), 1u);
  EXPECT_EQ(r.metrics[0].status, DriftStatus::ok);
  EXPECT_EQ(r.status, DriftStatus::ok);
  const auto note = std::find_if(r.notes.begin(), r.notes.end(), [](const std::string& n) {
    return n.rfind("logloss is ", 0) == 0;
  });
  ASSERT_NE(note, r.notes.end());
  EXPECT_NE(note->find("under the floor of 0.01 that a drop must also reach to count: no drift"), std::string::npos)
      << *note;
  const std::string json = drift_report_json(r);
  EXPECT_NE(json.find("\"drop_floor\": 0.01"), std::string::npos) << json;
  // 0.05 worse: past the floor, an alert.
  small.model.metrics_json = R"({"metric": "logloss", "valid": {"logloss": )" + std::to_string(now - 0.05) + "}}";
  save_model(dir.file("m.h5"), small.model);
  r = drift_table(DeviceContext::cpu(), dir.file("m.h5"), rows, low);
  EXPECT_EQ(r.status, DriftStatus::alert);
}
// A model loaded for scoring (ModelLoadOptions::profile_labels false) has every column of the
// profile, numeric ones whole, categorical ones with their missing counts only; such a model is
// not saved again.
TEST(ModelFileV2, AProfileLoadedWithoutLabelsKeepsItsMissingCounts) {
  test::TemporaryDirectory dir;
  SmallModel t;
  ColumnProfile odd;
  odd.name = "odd";
  odd.type = ColumnType::categorical;
  odd.categorical.labels = {"a \"quoted\" one", "back\\slash", "caf\xc3\xa9", ""};
  for (int k = 0; k < 5000; ++k) odd.categorical.labels.push_back("label" + std::to_string(k));
  odd.categorical.counts.assign(odd.categorical.labels.size(), 3);
  odd.categorical.missing = 7;
  t.profile.columns.push_back(odd);
  t.model.profile = t.profile;
  save_model(dir.file("m.h5"), t.model);
  ModelLoadOptions options;
  options.profile_labels = false;
  const ModelFile lean = load_model(dir.file("m.h5"), nullptr, options);
  EXPECT_FALSE(lean.profile_labels);
  ASSERT_TRUE(lean.profile.has_value());
  ASSERT_EQ(lean.profile->columns.size(), t.profile.columns.size());
  for (std::size_t c = 0; c < t.profile.columns.size(); ++c) {
    const ColumnProfile& x = t.profile.columns[c];
    const ColumnProfile& y = lean.profile->columns[c];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.type, y.type);
    EXPECT_TRUE(y.categorical.labels.empty());
    EXPECT_TRUE(y.categorical.counts.empty());
    EXPECT_EQ(x.categorical.missing, y.categorical.missing) << x.name;
    EXPECT_EQ(x.numeric.stats.count, y.numeric.stats.count);
    EXPECT_EQ(x.numeric.sketch.points(), y.numeric.sketch.points());
  }
  EXPECT_EQ(lean.parameters.weights, t.model.parameters.weights);
  EXPECT_THROW(save_model(dir.file("again.h5"), lean), Error);
  EXPECT_TRUE(load_model(dir.file("m.h5")).profile_labels);
}

// Plain labels (printable ASCII, no escapes) are counted without the JSON lexer when the labels are
// not kept: labels holding the text's own punctuation count once each, and every column keeps its
// own missing count (a label miscounted would shift the category counts and fail the load).
TEST(ModelFileV2, PlainLabelsCountedWithoutTheLexerKeepEachColumnsCounts) {
  test::TemporaryDirectory dir;
  SmallModel t;
  const std::vector<std::vector<std::string>> labels = {
      {"]", ",", "[{", "}", "labels", "\"labels\":[", " ", "a b", "x]y,z", ":"},
      {},
      {"one"},
  };
  for (std::size_t c = 0; c < labels.size(); ++c) {
    ColumnProfile col;
    col.name = "plain" + std::to_string(c);
    col.type = ColumnType::categorical;
    col.categorical.labels = labels[c];
    // The quoted label is not plain: its column takes the lexer's path, the others not.
    if (c == 0) col.categorical.labels.erase(col.categorical.labels.begin() + 5);
    for (int k = 0; k < 3000; ++k) col.categorical.labels.push_back("id" + std::to_string(k * (c + 1)));
    col.categorical.counts.assign(col.categorical.labels.size(), 2);
    col.categorical.missing = 11 + static_cast<std::int64_t>(c);
    t.profile.columns.push_back(col);
  }
  t.model.profile = t.profile;
  save_model(dir.file("m.h5"), t.model);
  ModelLoadOptions options;
  options.profile_labels = false;
  const ModelFile lean = load_model(dir.file("m.h5"), nullptr, options);
  const ModelFile full = load_model(dir.file("m.h5"));
  ASSERT_EQ(lean.profile->columns.size(), t.profile.columns.size());
  for (std::size_t c = 0; c < t.profile.columns.size(); ++c) {
    SCOPED_TRACE(t.profile.columns[c].name);
    EXPECT_EQ(lean.profile->columns[c].name, t.profile.columns[c].name);
    EXPECT_EQ(lean.profile->columns[c].type, t.profile.columns[c].type);
    EXPECT_EQ(lean.profile->columns[c].categorical.missing, t.profile.columns[c].categorical.missing);
    EXPECT_TRUE(lean.profile->columns[c].categorical.labels.empty());
  }
  expect_same_profile(*t.model.profile, *full.profile);
}

// A model file's profile "columns" text (the dataset a long one is kept in), and the same replaced
// by `columns` with a valid checksum: text the attributes' digest does not cover.
std::string profile_columns_text(const std::filesystem::path& path) {
  h5::H5Handle file = h5::file_handle(H5Fopen(path.string().c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  return h5::read_checksummed_strings(file.get(), "profile/columns", "test").at(0);
}
void rewrite_profile_columns_text(const std::filesystem::path& path, const std::string& columns) {
  h5::H5Handle file = h5::file_handle(H5Fopen(path.string().c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
  ASSERT_GE(H5Ldelete(file.get(), "profile/columns", H5P_DEFAULT), 0);
  h5::write_checksummed_strings(file.get(), "profile/columns", std::vector<std::string>{columns}, "test");
}

// A column's "labels" key spelled with an escape is a labels key to the lexer: the counting without
// it then leaves the whole text to the lexer, and each column keeps its own missing count. Damage
// is reported at the same place of the stored text whether the labels are kept or not.
TEST(ModelFileV2, EscapedLabelsKeysAndDamageReadAlikeWithAndWithoutLabels) {
  test::TemporaryDirectory dir;
  SmallModel t;
  t.profile.columns.clear();
  for (int c = 0; c < 3; ++c) {
    ColumnProfile col;
    col.name = "cat" + std::to_string(c);
    col.type = ColumnType::categorical;
    for (int k = 0; k < 3000; ++k) col.categorical.labels.push_back("v" + std::to_string(k * (c + 2)));
    col.categorical.counts.assign(col.categorical.labels.size(), 1);
    col.categorical.missing = 100 + c;
    t.profile.columns.push_back(col);
  }
  t.model.profile = t.profile;
  const std::filesystem::path path = dir.file("m.h5");
  save_model(path, t.model);
  const std::string text = profile_columns_text(path);
  const auto rewrite = [&](const std::string& columns) { rewrite_profile_columns_text(path, columns); };
  std::string escaped = text;
  const std::size_t first = escaped.find("\"labels\":");
  ASSERT_NE(first, std::string::npos);
  escaped.replace(first, 8, "\"\\u006cabels\"");
  rewrite(escaped);
  ModelLoadOptions lean_options;
  lean_options.profile_labels = false;
  const ModelFile lean = load_model(path, nullptr, lean_options);
  ASSERT_EQ(lean.profile->columns.size(), 3u);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(lean.profile->columns[c].categorical.missing, 100 + c) << c;
  expect_same_profile(*t.model.profile, *load_model(path).profile);

  rewrite(text + " x");  // damage after the last label
  std::string messages[2];
  for (const bool labels : {true, false}) {
    ModelLoadOptions options;
    options.profile_labels = labels;
    try {
      load_model(path, nullptr, options);
      ADD_FAILURE() << "trailing text was accepted";
    } catch (const InputError& e) {
      messages[labels ? 1 : 0] = e.what();
    }
  }
  EXPECT_EQ(messages[0], messages[1]);
  EXPECT_NE(messages[0].find("damaged 'columns' attribute"), std::string::npos) << messages[0];
}

// The profile's "columns" text (the dataset a long one is kept in, which the attributes' digest
// does not cover, with a valid checksum) that is not what write_profile writes is an InputError
// naming it, with and without the labels kept; the text's other keys are skipped.
TEST(ModelFileV2, DamagedProfileColumnsTextIsRefused) {
  test::TemporaryDirectory dir;
  SmallModel t;
  ColumnProfile many;
  many.name = "many";
  many.type = ColumnType::categorical;
  for (int k = 0; k < 5000; ++k) many.categorical.labels.push_back("label" + std::to_string(k));
  many.categorical.counts.assign(many.categorical.labels.size(), 1);
  t.profile.columns.push_back(many);
  t.model.profile = t.profile;
  const std::filesystem::path path = dir.file("m.h5");
  save_model(path, t.model);
  const std::string text = profile_columns_text(path);
  const auto rewrite = [&](const std::string& columns) { rewrite_profile_columns_text(path, columns); };
  const auto replaced = [&](const std::string& from, const std::string& to) {
    std::string s = text;
    const std::size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  const std::string first_city = "{\"labels\":[\"Lima\"";
  const std::vector<std::pair<std::string, std::string>> damaged = {
      {"truncated", text.substr(0, text.size() / 2)},
      {"not json", replaced("\"label17\"", "label17")},
      {"a number among the labels", replaced("\"label17\"", "17")},
      {"a label list that is not a list", replaced(first_city, "{\"labels\":\"Lima\",\"x\":[\"Lima\"")},
      {"no name", replaced("\"name\":\"many\"", "\"nom\":\"many\"")},
      {"no labels", replaced("\"labels\":[\"label0\"", "\"lbls\":[\"label0\"")},
      {"an unknown type", replaced("\"type\":\"categorical\"}]", "\"type\":\"ordinal\"}]")},
      {"bytes that are not UTF-8", replaced("label17", "label\xff")},
      {"a column that is not an object", replaced("[{\"name\":\"age\"", "[7,{\"name\":\"age\"")},
      {"one label too many", replaced("\"label17\"", "\"label17\",\"extra\"")},
      {"not an array", "{}"},
  };
  for (const auto& [what, columns] : damaged) {
    SCOPED_TRACE(what);
    rewrite(columns);
    for (const bool labels : {true, false}) {
      ModelLoadOptions options;
      options.profile_labels = labels;
      try {
        load_model(path, nullptr, options);
        ADD_FAILURE() << "a profile with " << what << " was accepted";
      } catch (const InputError& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find(path.string() + ": "), std::string::npos) << message;
        EXPECT_TRUE(message.find("profile: damaged 'columns' attribute") != std::string::npos ||
                    message.find("profile/category_counts") != std::string::npos ||
                    message.find("column 'many' has type 'ordinal'") != std::string::npos)
            << message;
      }
    }
  }
  // Keys write_profile does not write are skipped, whatever their values.
  rewrite(replaced(first_city, "{\"extra\":{\"a\":[1,{\"b\":null}],\"labels\":\"x\"},\"n\":2.5,\"labels\":[\"Lima\""));
  const ModelFile back = load_model(path);
  expect_same_profile(*t.model.profile, *back.profile);
  rewrite(text);
  expect_same_profile(*t.model.profile, *load_model(path).profile);
}

TEST(ModelFileV2, DamagedProfileIsRefused) {
  test::TemporaryDirectory dir;
  SmallModel t;
  t.model.profile = t.profile;
  save_model(dir.file("m.h5"), t.model);
  {
    hid_t f = H5Fopen(dir.file("m.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    ASSERT_GE(H5Ldelete(f, "profile/sketch_weights", H5P_DEFAULT), 0);
    H5Fclose(f);
  }
  try {
    load_model(dir.file("m.h5"));
    FAIL() << "a profile without its sketch weights was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("sketch_weights"), std::string::npos) << e.what();
  }
}

TEST(ModelFileV2, FormatOneStillLoadsWithoutAProfileAndDriftAsksForFormatTwo) {
  test::TemporaryDirectory dir;
  SmallModel t;
  save_model(dir.file("v1.h5"), t.model);  // no profile: the datasets and attributes of format 1
  {
    hid_t f = H5Fopen(dir.file("v1.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    hid_t a = H5Aopen(f, "lathe_model_format_version", H5P_DEFAULT);
    const long long one = 1;
    H5Awrite(a, H5T_NATIVE_LLONG, &one);
    H5Aclose(a);
    ASSERT_GE(H5Ldelete(f, "attribute_digest", H5P_DEFAULT), 0);  // format 3's, absent in format 1
    EXPECT_EQ(H5Lexists(f, "profile", H5P_DEFAULT), 0);
    EXPECT_EQ(H5Lexists(f, "predictions", H5P_DEFAULT), 0);
    H5Fclose(f);
  }
  const ModelFile back = load_model(dir.file("v1.h5"));
  EXPECT_FALSE(back.profile.has_value());
  EXPECT_TRUE(back.predictions.empty());
  EXPECT_TRUE(back.parent.empty());
  EXPECT_EQ(back.parameters.weights, t.model.parameters.weights);
  try {
    drift_table(DeviceContext::cpu(), dir.file("v1.h5"), dir.file("new.h5"), {});
    FAIL() << "drift accepted a model without a profile";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("format 2"), std::string::npos) << e.what();
  }
}

TEST(ModelFileV2, CheckpointsKeepTheProfile) {
  test::TemporaryDirectory dir;
  SmallModel t;
  t.model.profile = t.profile;
  TrainerState state;
  state.next_epoch = 2;
  state.best_epoch = 1;
  state.best_value = 0.5;
  state.history.resize(1);
  state.history[0].epoch = 1;
  state.best = t.model.parameters;
  state.last = t.model.parameters;
  save_checkpoint(dir.file("ck.h5"), t.model, state);
  const LoadedCheckpoint ck = load_checkpoint(dir.file("ck.h5"));
  ASSERT_TRUE(ck.model.profile.has_value());
  expect_same_profile(t.profile, *ck.model.profile);
  EXPECT_EQ(ck.state.next_epoch, 2);
}

}  // namespace
}  // namespace lathe
