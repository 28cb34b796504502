// The pieces around the models: the preparation's JSON round trip, the model file (atomic write,
// checks on load), and the link from scores to predictions.
#include <gtest/gtest.h>

#include <hdf5.h>

#include <cmath>
#include <fstream>
#include <random>

#include "io/model_file.h"
#include "io/preparation_json.h"
#include "runtime/error.h"
#include "runtime/profile.h"
#include "runtime/trainer.h"
#include "tests/temp_dir.h"

namespace lathe {
namespace {

// A small mixed table: two numeric columns (one with missing values), one categorical, a label.
struct SmallTable {
  std::vector<ColumnInfo> columns;
  std::vector<float> values;  // column-major
  std::int64_t rows = 200;
};

SmallTable small_table() {
  SmallTable t;
  t.columns = {{"age", ColumnType::numeric, "float32", {}, "/age"},
               {"income", ColumnType::numeric, "float32", {}, "/income"},
               {"city", ColumnType::categorical, "int32", {"Lima", "Oslo", "Pune"}, "/city"},
               {"y", ColumnType::numeric, "float32", {}, "/y"}};
  t.values.resize(static_cast<std::size_t>(t.rows * 4));
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0, 1);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    t.values[r] = 40 + 10 * n(rng);
    t.values[t.rows + r] = r % 7 == 0 ? NAN : 5e4f + 1e4f * n(rng);
    t.values[2 * t.rows + r] = static_cast<float>(r % 3);
    t.values[3 * t.rows + r] = static_cast<float>(r % 2);
  }
  return t;
}

FittedPreparation fitted_for(const SmallTable& t, const PreparationOptions& options) {
  DataProfile profile = make_profile(t.columns);
  profile_block(DeviceContext::cpu(), {t.values.data(), t.rows, 4}, {}, profile);
  return fit_preparation(profile, options);
}

TEST(PreparationJson, RoundTripGivesTheSameTransform) {
  const SmallTable t = small_table();
  PreparationOptions options;
  options.label = "y";
  options.missing_indicators = true;
  options.defaults.clip = ClipKind::quantile;
  options.crosses = {{"age", "income"}, {"age", "city"}, {"city", "city"}};
  options.crosses.pop_back();  // a categorical column crossed with itself is refused; keep two
  const FittedPreparation fitted = fitted_for(t, options);
  const FittedPreparation back = preparation_from_json(preparation_to_json(fitted), "test");
  EXPECT_EQ(preparation_to_json(back), preparation_to_json(fitted));
  EXPECT_EQ(back.expanded_features(), fitted.expanded_features());
  EXPECT_EQ(back.dense_names(), fitted.dense_names());

  PreparedBlock a, b;
  const ColumnBlockView block{t.values.data(), t.rows, 4};
  apply_preparation(DeviceContext::cpu(), bind_preparation(fitted, t.columns), block, a);
  apply_preparation(DeviceContext::cpu(), bind_preparation(back, t.columns), block, b);
  EXPECT_EQ(a.dense, b.dense);
  EXPECT_EQ(a.slot, b.slot);
  EXPECT_EQ(a.value, b.value);
}

TEST(PreparationJson, DamagedTextIsAnInputError) {
  EXPECT_THROW(preparation_from_json("{not json", "m.h5"), InputError);
  const SmallTable t = small_table();
  PreparationOptions options;
  options.label = "y";
  std::string text = preparation_to_json(fitted_for(t, options));
  const auto at = text.find("\"a\":0");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 5, "\"a\":99");  // a group pointing past the categorical columns
  try {
    preparation_from_json(text, "m.h5");
    FAIL() << "an out-of-range index was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("m.h5"), std::string::npos);
  }
}

ModelFile small_model(const SmallTable& t) {
  PreparationOptions options;
  options.label = "y";
  ModelFile m;
  m.task = Task::binary;
  m.label = "y";
  m.classes = {"0", "1"};
  m.preparation = fitted_for(t, options);
  m.input_schema = t.columns;
  const auto features = static_cast<std::size_t>(m.preparation.expanded_features());
  for (std::size_t i = 0; i < features; ++i) m.parameters.weights.push_back(0.25f * static_cast<float>(i) - 1.0f);
  m.parameters.bias = {0.5f};
  m.metrics_json = R"({"valid":{"auc":0.75}})";
  return m;
}

TEST(ModelFile, SaveThenLoadGivesTheSameModel) {
  test::TemporaryDirectory dir;
  const SmallTable t = small_table();
  const ModelFile m = small_model(t);
  save_model(dir.file("m.h5"), m);
  const ModelFile back = load_model(dir.file("m.h5"));
  EXPECT_EQ(back.task, Task::binary);
  EXPECT_EQ(back.classes, m.classes);
  EXPECT_EQ(back.parameters.weights, m.parameters.weights);
  EXPECT_EQ(back.parameters.bias, m.parameters.bias);
  EXPECT_EQ(preparation_to_json(back.preparation), preparation_to_json(m.preparation));
  ASSERT_EQ(back.input_schema.size(), t.columns.size());
  EXPECT_EQ(back.input_schema[2].categories, t.columns[2].categories);
  EXPECT_EQ(back.metrics_json, m.metrics_json);
  // Only the final file is left: no temporary beside it.
  EXPECT_EQ(dir.entries().size(), 1u);
}

TEST(ModelFile, RefusesNewerVersionsNonFiniteWeightsAndDamage) {
  test::TemporaryDirectory dir;
  const SmallTable t = small_table();
  ModelFile m = small_model(t);
  save_model(dir.file("m.h5"), m);
  {
    hid_t f = H5Fopen(dir.file("m.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    hid_t a = H5Aopen(f, "lathe_model_format_version", H5P_DEFAULT);
    const long long newer = kModelFormatVersion + 1;
    H5Awrite(a, H5T_NATIVE_LLONG, &newer);
    H5Aclose(a);
    H5Fclose(f);
  }
  try {
    load_model(dir.file("m.h5"));
    FAIL() << "a newer format was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }

  m.parameters.weights[1] = NAN;
  EXPECT_THROW(save_model(dir.file("nan.h5"), m), Error);
  EXPECT_FALSE(std::filesystem::exists(dir.file("nan.h5")));
  EXPECT_THROW(load_model(dir.file("missing.h5")), InputError);
  std::ofstream(dir.file("text.h5")) << "not a model";
  EXPECT_THROW(load_model(dir.file("text.h5")), InputError);
}

TEST(PredictionLink, TurnsScoresIntoPredictions) {
  std::vector<float> out;
  scores_to_predictions({Task::binary, 1, 0, 1}, {0.0f, 2.0f}, out);
  EXPECT_FLOAT_EQ(out[0], 0.5f);
  EXPECT_NEAR(out[1], 1.0 / (1.0 + std::exp(-2.0)), 1e-7);
  scores_to_predictions({Task::regression, 1, 100.0, 10.0}, {0.5f}, out);
  EXPECT_FLOAT_EQ(out[0], 105.0f);
  scores_to_predictions({Task::multiclass, 3, 0, 1}, {1000.0f, 1000.0f, 0.0f}, out);  // no overflow
  EXPECT_NEAR(out[0], 0.5, 1e-6);
  EXPECT_NEAR(out[0] + out[1] + out[2], 1.0, 1e-6);
}

}  // namespace
}  // namespace lathe
