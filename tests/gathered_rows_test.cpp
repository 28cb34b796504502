// The prepared rows train_table gathers from a file (io/train_table.cpp, gather_prepared): a mask
// that keeps every row of the table, one that drops some (--dedup) and a validation file
// (column-major) must give the same rows in file order, each with its own file row's label. Blocks
// of 16384 rows and a short last block.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "io/columnar_writer.h"
#include "io/model_file.h"
#include "io/train_table.h"
#include "runtime/device_context.h"
#include "runtime/metrics.h"
#include "tests/temp_dir.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kBlockRows = 16384;
constexpr int kFeatures = 4;

// Rows of a binary table: features in quarters (distinct rows), the label a noisy threshold of
// them.
struct Rows {
  std::vector<std::vector<float>> features = std::vector<std::vector<float>>(kFeatures);
  std::vector<float> label;
  std::int64_t size() const { return static_cast<std::int64_t>(label.size()); }
  void append(const Rows& from, std::int64_t row) {
    for (int f = 0; f < kFeatures; ++f)
      features[f].push_back(from.features[f][static_cast<std::size_t>(row)]);
    label.push_back(from.label[static_cast<std::size_t>(row)]);
  }
};

Rows random_rows(std::int64_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> quarter(-400, 400);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  Rows rows;
  for (std::int64_t r = 0; r < n; ++r) {
    float score = noise(rng);
    for (int f = 0; f < kFeatures; ++f) {
      // The first feature counts the rows: no two rows are the same.
      const float v =
          f == 0 ? static_cast<float>(r % 4096) / 4.0f : static_cast<float>(quarter(rng)) / 4.0f;
      rows.features[f].push_back(v);
      score += (f % 2 == 0 ? 0.02f : -0.03f) * v;
    }
    rows.label.push_back(score > 0.0f ? 1.0f : 0.0f);
  }
  return rows;
}

void write_table(const fs::path& path, const Rows& rows) {
  std::vector<ColumnSpec> columns;
  for (int f = 0; f < kFeatures; ++f)
    columns.push_back({"f" + std::to_string(f), StoredType::float32});
  columns.push_back({"label", StoredType::float32});
  ColumnarWriteOptions options;
  options.chunk_rows = 4096;
  options.deflate_level = 1;
  ColumnarWriter writer(path, columns, options);
  for (int f = 0; f < kFeatures; ++f)
    writer.append_numeric(static_cast<std::size_t>(f), std::span<const float>(rows.features[f]));
  writer.append_numeric(kFeatures, std::span<const float>(rows.label));
  writer.close();
}

TrainTableOptions training_options() {
  TrainTableOptions o;
  o.preparation.label = "label";
  o.task = Task::binary;
  o.read.block_rows = kBlockRows;
  o.trainer.epochs = 2;
  o.trainer.patience = 0;
  o.trainer.progress = false;
  o.refit = RefitChoice::no;
  o.valid_fraction = 0.0;
  return o;
}

void expect_near_all(const std::vector<float>& a, const std::vector<float>& b, float tolerance,
                     const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  float largest = 0.0f;
  for (std::size_t i = 0; i < a.size(); ++i) largest = std::max(largest, std::abs(a[i] - b[i]));
  EXPECT_LE(largest, tolerance) << what << ": largest difference " << largest;
}

// A table, and the same table with repeats of earlier rows inserted (in every block, some across
// block boundaries): trained with --dedup, the second keeps exactly the first's rows in its order.
// The first's training mask keeps every row; the second's drops the repeats. The two models differ
// only by the last bits of the profile (its statistics merged over other block boundaries); rows in
// another order, or a row given another row's label, move the weights by far more.
TEST(GatheredRows, DeduplicatedRowsTrainAsTheTableWithoutTheRepeats) {
  test::TemporaryDirectory dir;
  const Rows unique = random_rows(60000, 11);
  Rows repeated;
  for (std::int64_t r = 0; r < unique.size(); ++r) {
    repeated.append(unique, r);
    if (r % 7 == 3) repeated.append(unique, r - 2);
    if (r % 1000 == 999) repeated.append(unique, r - 500);
  }
  const fs::path unique_path = dir.file("unique.h5"), repeated_path = dir.file("repeated.h5");
  write_table(unique_path, unique);
  write_table(repeated_path, repeated);

  TrainTableOptions o = training_options();
  const TrainReport plain = train_table(DeviceContext::cpu(), unique_path, dir.file("plain.h5"), o);
  o.dedup = true;
  const TrainReport deduplicated =
      train_table(DeviceContext::cpu(), repeated_path, dir.file("dedup.h5"), o);
  EXPECT_EQ(plain.train_rows, unique.size());
  EXPECT_EQ(deduplicated.duplicates, repeated.size() - unique.size());
  EXPECT_EQ(deduplicated.train_rows, unique.size());
  ASSERT_EQ(plain.outcome.history.size(), deduplicated.outcome.history.size());
  EXPECT_NEAR(plain.outcome.history.back().train_loss,
              deduplicated.outcome.history.back().train_loss, 1e-5);

  const ModelFile a = load_model(dir.file("plain.h5"));
  const ModelFile b = load_model(dir.file("dedup.h5"));
  expect_near_all(a.parameters.weights, b.parameters.weights, 1e-4f, "weights");
  expect_near_all(a.parameters.bias, b.parameters.bias, 1e-4f, "bias");
}

// Validation rows from a file of several blocks (every row kept, column-major): the metrics the run
// reports for them are those of evaluating its model on that file, which reads it on its own.
TEST(GatheredRows, ValidationFileMetricsAreTheModelsOnThatFile) {
  test::TemporaryDirectory dir;
  const fs::path train_path = dir.file("train.h5"), valid_path = dir.file("valid.h5");
  write_table(train_path, random_rows(30000, 5));
  write_table(valid_path, random_rows(50000, 6));
  TrainTableOptions o = training_options();
  o.trainer.epochs = 1;
  o.valid_path = valid_path;
  const TrainReport report = train_table(DeviceContext::cpu(), train_path, dir.file("model.h5"), o);
  EXPECT_EQ(report.valid_rows, 50000);
  const MetricSet evaluated =
      evaluate_table(DeviceContext::cpu(), load_model(dir.file("model.h5")), valid_path);
  for (const char* metric : {"logloss", "auc", "accuracy"}) {
    ASSERT_TRUE(report.best_valid.values.count(metric)) << metric;
    EXPECT_NEAR(report.best_valid.values.at(metric), evaluated.values.at(metric), 1e-6) << metric;
  }
}

}  // namespace
}  // namespace lathe
