// `lathe synth` and the matrix writer: files read back through TableReader, checked against the
// planted truth, recomputed here independently of io/synth.cpp.
#include "io/synth.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/hdf5_handle.h"
#include "io/matrix_writer.h"
#include "io/table_reader.h"
#include "io/temporary_file.h"
#include "runtime/error.h"
#include "tests/temp_dir.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;

class SynthTest : public testing::Test {
 protected:
  fs::path path(const std::string& name) const { return dir_.file(name); }
  std::vector<std::string> files() const { return dir_.entries(); }

  test::TemporaryDirectory dir_;
};

// A whole table, column-major as TableReader::read_block returns it.
struct Table {
  std::int64_t rows = 0;
  std::vector<ColumnInfo> columns;
  Layout layout = Layout::columnar;
  std::vector<float> values;

  const float* column(std::size_t c) const { return values.data() + c * rows; }
  float at(std::size_t c, std::int64_t r) const { return values[c * rows + r]; }
};

Table read_table(const fs::path& file) {
  TableReader reader(file);
  Table t;
  t.rows = reader.rows();
  t.columns = reader.columns();
  t.layout = reader.layout();
  t.values.resize(static_cast<std::size_t>(t.rows) * t.columns.size());
  reader.read_block(0, t.rows, t.values);
  return t;
}

bool same_value(float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// Equal values, NaN equal to NaN.
bool same_values(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!same_value(a[i], b[i])) return false;
  }
  return true;
}

double correlation(const std::vector<double>& x, const std::vector<double>& y) {
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < x.size(); ++i) mx += x[i], my += y[i];
  mx /= x.size();
  my /= y.size();
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

// The standardized value of numeric feature j in every row, from the stored float32.
std::vector<double> standardized(const Table& t, const SynthTruth& truth, int j) {
  std::vector<double> z(static_cast<std::size_t>(t.rows));
  for (std::int64_t r = 0; r < t.rows; ++r) {
    z[r] = (static_cast<double>(t.at(j, r)) - truth.numeric[j].offset) / truth.numeric[j].scale;
  }
  return z;
}

// The planted score of every row (no missing values), written from the header's formula.
std::vector<double> reference_scores(const Table& t, const SynthTruth& truth, const SynthScore& s) {
  const int features = static_cast<int>(truth.numeric.size());
  std::vector<std::vector<double>> z;
  for (int j = 0; j < features; ++j) z.push_back(standardized(t, truth, j));
  std::vector<double> out(static_cast<std::size_t>(t.rows), s.bias);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    for (int j = 0; j < features; ++j) out[r] += s.linear[j] * z[j][r];
    for (const auto& p : s.interactions) out[r] += p.weight * z[p.a][r] * z[p.b][r];
    for (std::size_t c = 0; c < truth.categorical.size(); ++c) {
      out[r] += s.categorical_effects[c][static_cast<int>(t.at(features + c, r))];
    }
  }
  return out;
}

SynthOptions small_options(SynthTask task) {
  SynthOptions o;
  o.task = task;
  o.rows = 20000;
  o.features = 8;
  o.categorical = 2;
  o.progress = false;
  return o;
}

TEST_F(SynthTest, ColumnarLayoutHasNamedTypedColumnsAndTruth) {
  SynthOptions o = small_options(SynthTask::regression);
  o.rows = 1234;
  o.features = 5;
  const SynthReport report = write_synthetic(path("r.h5"), o);
  EXPECT_EQ(report.rows, 1234);
  EXPECT_EQ(report.columns, 8);

  TableReader reader(path("r.h5"));
  EXPECT_EQ(reader.layout(), Layout::columnar);
  EXPECT_EQ(reader.rows(), 1234);
  const auto& cols = reader.columns();
  ASSERT_EQ(cols.size(), 8u);
  const std::vector<std::string> names = {"f0", "f1", "f2", "f3", "f4", "c0", "c1", "target"};
  for (std::size_t c = 0; c < cols.size(); ++c) {
    EXPECT_EQ(cols[c].name, names[c]);
    const bool categorical = c == 5 || c == 6;
    EXPECT_EQ(cols[c].type, categorical ? ColumnType::categorical : ColumnType::numeric) << c;
    EXPECT_EQ(cols[c].dtype, categorical ? "int32" : "float32") << c;
  }
  EXPECT_EQ(cols[5].categories, report.truth.categorical[0].levels);
  EXPECT_EQ(cols[5].categories.front(), "c0_a");
  EXPECT_GE(cols[5].categories.size(), 2u);

  // The truth attribute is the JSON of the planted truth and names the task and the seed.
  h5::H5Handle file = h5::file_handle(H5Fopen(path("r.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  ASSERT_TRUE(file);
  const auto truth = h5::read_string_attribute(file.get(), "lathe_synth_truth", "test");
  ASSERT_EQ(truth.size(), 1u);
  EXPECT_EQ(truth[0], synth_truth_json(report.truth, o));
  EXPECT_NE(truth[0].find("\"task\":\"regression\""), std::string::npos);
  EXPECT_NE(truth[0].find("\"seed\":42"), std::string::npos);
  EXPECT_NE(truth[0].find("\"interactions\":[{\"a\":"), std::string::npos);
}

TEST_F(SynthTest, FeaturesSpanVeryDifferentScalesAndOffsets) {
  SynthOptions o = small_options(SynthTask::regression);
  o.features = 10;
  const SynthTruth truth = make_synth_truth(o);
  double smallest = INFINITY, largest = 0, largest_ratio = 0;
  for (const auto& f : truth.numeric) {
    smallest = std::min(smallest, f.scale);
    largest = std::max(largest, f.scale);
    largest_ratio = std::max(largest_ratio, std::abs(f.offset) / f.scale);
  }
  EXPECT_LT(smallest, 1e-2);
  EXPECT_GT(largest, 1e6);
  EXPECT_GE(largest_ratio, 1e6);  // a timestamp-like column
  int informative = 0;
  for (const auto& f : truth.numeric) informative += f.informative;
  EXPECT_GT(informative, 0);
  EXPECT_LT(informative, 10);
}

TEST_F(SynthTest, SameSeedGivesSameValuesWhateverTheBlockSize) {
  SynthOptions o = small_options(SynthTask::binary);
  o.rows = 150001;
  o.features = 3;
  o.categorical = 1;
  o.missing_rate = 0.05;
  o.duplicate_rate = 0.05;
  write_synthetic(path("a.h5"), o);
  write_synthetic(path("b.h5"), o);
  o.chunk_rows = 50000;  // other block boundaries, duplicates across them
  write_synthetic(path("c.h5"), o);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(threads == 1 ? 3 : 1);  // another split of the rows between threads
  write_synthetic(path("t.h5"), o);
  omp_set_num_threads(threads);
  const Table a = read_table(path("a.h5"));
  EXPECT_TRUE(same_values(a.values, read_table(path("b.h5")).values));
  EXPECT_TRUE(same_values(a.values, read_table(path("c.h5")).values));
  EXPECT_TRUE(same_values(a.values, read_table(path("t.h5")).values));

  o.seed = 43;
  write_synthetic(path("d.h5"), o);
  const Table d = read_table(path("d.h5"));
  ASSERT_EQ(d.values.size(), a.values.size());
  std::int64_t equal = 0;
  for (std::int64_t r = 0; r < a.rows; ++r) equal += same_value(a.at(0, r), d.at(0, r));
  EXPECT_LT(equal, a.rows / 10);  // missing in both, mostly
}

TEST_F(SynthTest, MissingRateIsMetOnFeaturesButNeverOnLabels) {
  SynthOptions o = small_options(SynthTask::multiclass);
  o.features = 4;
  o.missing_rate = 0.1;
  const SynthReport report = write_synthetic(path("m.h5"), o);
  const Table t = read_table(path("m.h5"));
  std::int64_t missing = 0;
  for (std::size_t c = 0; c + 1 < t.columns.size(); ++c) {
    std::int64_t column_missing = 0;
    for (std::int64_t r = 0; r < t.rows; ++r) column_missing += std::isnan(t.at(c, r));
    EXPECT_NEAR(column_missing, 0.1 * t.rows, 0.1 * 0.1 * t.rows) << t.columns[c].name;
    missing += column_missing;
  }
  EXPECT_EQ(missing, report.missing_values);
  const std::size_t label = t.columns.size() - 1;
  for (std::int64_t r = 0; r < t.rows; ++r) ASSERT_FALSE(std::isnan(t.at(label, r))) << r;
}

TEST_F(SynthTest, DuplicatesAreExactCopiesOfRecentRowsAtTheRate) {
  SynthOptions o = small_options(SynthTask::regression);
  o.features = 3;
  o.categorical = 1;
  o.missing_rate = 0.2;
  o.duplicate_rate = 0.05;
  o.chunk_rows = 4096;  // several blocks
  const SynthReport report = write_synthetic(path("d.h5"), o);
  EXPECT_NEAR(report.duplicate_rows, 0.05 * o.rows, 0.2 * 0.05 * o.rows);

  // A row is a duplicate when its bytes (label included) equal one of the previous 1024 rows'.
  const Table t = read_table(path("d.h5"));
  const std::size_t width = t.columns.size();
  std::unordered_map<std::string, std::int64_t> last_seen;
  std::int64_t duplicates = 0;
  for (std::int64_t r = 0; r < t.rows; ++r) {
    std::string key(width * sizeof(float), '\0');
    for (std::size_t c = 0; c < width; ++c) {
      const float v = std::isnan(t.at(c, r)) ? std::numeric_limits<float>::quiet_NaN() : t.at(c, r);
      std::memcpy(key.data() + c * sizeof(float), &v, sizeof(float));
    }
    const auto it = last_seen.find(key);
    if (it != last_seen.end()) {
      EXPECT_LE(r - it->second, kDuplicateWindow) << r;
      ++duplicates;
    }
    last_seen[key] = r;
  }
  EXPECT_EQ(duplicates, report.duplicate_rows);
}

TEST_F(SynthTest, RegressionTargetFollowsThePlantedTruth) {
  SynthOptions o = small_options(SynthTask::regression);
  const SynthReport report = write_synthetic(path("r.h5"), o);
  const SynthTruth& truth = report.truth;
  const Table t = read_table(path("r.h5"));
  const std::size_t target = t.columns.size() - 1;
  std::vector<double> y(t.column(target), t.column(target) + t.rows);

  // The residual of the planted score is the planted noise.
  const std::vector<double> score = reference_scores(t, truth, truth.scores[0]);
  double residual_ss = 0;
  for (std::int64_t r = 0; r < t.rows; ++r) residual_ss += (y[r] - score[r]) * (y[r] - score[r]);
  EXPECT_NEAR(std::sqrt(residual_ss / t.rows), truth.noise_sd, 0.03 * truth.noise_sd);

  // The strongest informative feature is correlated with the target; noise features are not.
  int strongest = 0;
  for (int j = 0; j < o.features; ++j) {
    if (std::abs(truth.scores[0].linear[j]) > std::abs(truth.scores[0].linear[strongest]))
      strongest = j;
  }
  EXPECT_GT(std::abs(correlation(standardized(t, truth, strongest), y)), 0.2);
  // The first planted pair joins two noise features: visible through the cross only.
  ASSERT_FALSE(truth.scores[0].interactions.empty());
  const SynthInteraction pair = truth.scores[0].interactions[0];
  EXPECT_FALSE(truth.numeric[pair.a].informative);
  EXPECT_FALSE(truth.numeric[pair.b].informative);
  const std::vector<double> za = standardized(t, truth, pair.a),
                            zb = standardized(t, truth, pair.b);
  std::vector<double> cross(za.size());
  for (std::size_t r = 0; r < za.size(); ++r) cross[r] = za[r] * zb[r];
  EXPECT_LT(std::abs(correlation(za, y)), 0.05);
  EXPECT_LT(std::abs(correlation(zb, y)), 0.05);
  EXPECT_GT(std::abs(correlation(cross, y)), 0.1);
}

TEST_F(SynthTest, BinaryLabelsAreBernoulliOfTheSigmoid) {
  SynthOptions o = small_options(SynthTask::binary);
  const SynthReport report = write_synthetic(path("b.h5"), o);
  const Table t = read_table(path("b.h5"));
  const ColumnInfo& label = t.columns.back();
  EXPECT_EQ(label.name, "label");
  EXPECT_EQ(label.type, ColumnType::categorical);
  EXPECT_EQ(label.categories, (std::vector<std::string>{"no", "yes"}));

  const std::vector<double> score = reference_scores(t, report.truth, report.truth.scores[0]);
  double yes = 0, expected_yes = 0, p_when_yes = 0, p_when_no = 0;
  for (std::int64_t r = 0; r < t.rows; ++r) {
    const float y = t.at(t.columns.size() - 1, r);
    ASSERT_TRUE(y == 0 || y == 1) << r;
    const double p = 1 / (1 + std::exp(-score[r]));
    yes += y;
    expected_yes += p;
    (y == 1 ? p_when_yes : p_when_no) += p;
  }
  EXPECT_GT(yes, 0.2 * t.rows);
  EXPECT_LT(yes, 0.8 * t.rows);
  EXPECT_NEAR(yes, expected_yes, 0.02 * t.rows);
  EXPECT_GT(p_when_yes / yes, p_when_no / (t.rows - yes) + 0.3);  // the labels follow the score
}

TEST_F(SynthTest, MulticlassLabelHasKCategoriesAllDrawn) {
  SynthOptions o = small_options(SynthTask::multiclass);
  o.classes = 5;
  const SynthReport report = write_synthetic(path("k.h5"), o);
  EXPECT_EQ(report.truth.scores.size(), 5u);
  const Table t = read_table(path("k.h5"));
  const ColumnInfo& label = t.columns.back();
  EXPECT_EQ(label.type, ColumnType::categorical);
  EXPECT_EQ(label.categories,
            (std::vector<std::string>{"class_0", "class_1", "class_2", "class_3", "class_4"}));
  std::map<int, std::int64_t> counts;
  for (std::int64_t r = 0; r < t.rows; ++r)
    ++counts[static_cast<int>(t.at(t.columns.size() - 1, r))];
  ASSERT_EQ(counts.size(), 5u);
  for (const auto& [code, n] : counts) {
    EXPECT_GE(code, 0);
    EXPECT_LT(code, 5);
    EXPECT_GT(n, t.rows / 50) << code;
  }
}

TEST_F(SynthTest, MatrixLayoutHoldsTheSameValuesAsColumnar) {
  for (SynthTask task : {SynthTask::regression, SynthTask::multiclass}) {
    SynthOptions o = small_options(task);
    o.rows = 70001;
    o.missing_rate = 0.05;
    o.duplicate_rate = 0.02;
    write_synthetic(path("columnar.h5"), o);
    o.layout = Layout::matrix;
    o.chunk_rows = 10000;
    const SynthReport report = write_synthetic(path("matrix.h5"), o);
    const Table columnar = read_table(path("columnar.h5"));
    const Table matrix = read_table(path("matrix.h5"));
    EXPECT_EQ(matrix.layout, Layout::matrix);
    ASSERT_EQ(matrix.columns.size(), columnar.columns.size());
    for (std::size_t c = 0; c + 1 < matrix.columns.size(); ++c) {
      EXPECT_EQ(matrix.columns[c].name, columnar.columns[c].name);
    }
    EXPECT_EQ(matrix.columns.back().name, "y");
    // Categorical codes read as floats in both layouts, missing as NaN.
    EXPECT_TRUE(same_values(matrix.values, columnar.values)) << synth_task_name(task);
    EXPECT_EQ(report.columns, static_cast<std::int64_t>(matrix.columns.size()));

    TableReader reader(path("matrix.h5"));
    ASSERT_EQ(reader.storage().size(), 2u);
    EXPECT_EQ(reader.storage()[0].chunk, (std::vector<std::int64_t>{10000, 10}));
    EXPECT_EQ(reader.storage()[0].filters, (std::vector<std::string>{"shuffle", "deflate"}));
  }
}

TEST_F(SynthTest, InvalidOptionsNameTheFlagAndWriteNothing) {
  struct Case {
    const char* flag;
    void (*change)(SynthOptions&);
  };
  const Case cases[] = {
      {"--rows", [](SynthOptions& o) { o.rows = 0; }},
      {"--features", [](SynthOptions& o) { o.features = -1; }},
      {"--features", [](SynthOptions& o) { o.features = 0, o.categorical = 0; }},
      {"--categorical", [](SynthOptions& o) { o.categorical = -2; }},
      {"--classes", [](SynthOptions& o) { o.classes = 1; }},
      {"--missing-rate", [](SynthOptions& o) { o.missing_rate = 1.0; }},
      {"--missing-rate", [](SynthOptions& o) { o.missing_rate = -0.1; }},
      {"--missing-rate", [](SynthOptions& o) { o.missing_rate = std::nan(""); }},
      {"--duplicate-rate", [](SynthOptions& o) { o.duplicate_rate = 1.5; }},
      {"--layout", [](SynthOptions& o) { o.layout = Layout::pandas; }},
      {"--chunk-rows", [](SynthOptions& o) { o.chunk_rows = 0; }},
      {"--compression", [](SynthOptions& o) { o.deflate_level = 10; }},
  };
  for (const Case& c : cases) {
    SynthOptions o = small_options(SynthTask::binary);
    c.change(o);
    try {
      write_synthetic(path("bad.h5"), o);
      ADD_FAILURE() << c.flag << ": no error";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(c.flag), std::string::npos) << e.what();
    }
    EXPECT_TRUE(files().empty()) << c.flag;
  }
  // A missing folder: an InputError, and nothing written.
  SynthOptions o = small_options(SynthTask::binary);
  EXPECT_THROW(write_synthetic(path("no_such_folder") / "x.h5", o), InputError);
  EXPECT_TRUE(files().empty());
}

TEST_F(SynthTest, FailedRunKeepsTheEarlierFile) {
  SynthOptions o = small_options(SynthTask::regression);
  o.rows = 100;
  write_synthetic(path("t.h5"), o);
  const auto size = fs::file_size(path("t.h5"));
  o.rows = 0;
  EXPECT_THROW(write_synthetic(path("t.h5"), o), InputError);
  EXPECT_EQ(read_table(path("t.h5")).rows, 100);
  EXPECT_EQ(fs::file_size(path("t.h5")), size);
  EXPECT_EQ(files().size(), 1u);
}

TEST_F(SynthTest, CategoricalOnlyAndSingleRowTablesWork) {
  SynthOptions o = small_options(SynthTask::binary);
  o.features = 0;
  o.categorical = 3;
  o.rows = 1;
  o.duplicate_rate = 0.5;  // the first row has nothing to copy
  const SynthReport report = write_synthetic(path("one.h5"), o);
  EXPECT_EQ(report.duplicate_rows, 0);
  const Table t = read_table(path("one.h5"));
  EXPECT_EQ(t.rows, 1);
  EXPECT_EQ(t.columns.size(), 4u);
  o.layout = Layout::matrix;
  EXPECT_TRUE(
      same_values(read_table(path("one.h5")).values,
                  (write_synthetic(path("one_m.h5"), o), read_table(path("one_m.h5")).values)));
}

TEST_F(SynthTest, NoChunkIsLongerThanTheTable) {
  // The default chunks of 65536 rows held a 100-row table: uncompressed, the file took 655 times
  // its values' bytes. Every dataset's chunk is now at most the table's rows, in both layouts,
  // compressed or not, and an uncompressed file is about its values' bytes.
  for (const Layout layout : {Layout::columnar, Layout::matrix}) {
    for (const int deflate_level : {0, 1}) {
      SynthOptions o = small_options(SynthTask::binary);
      o.rows = 100;
      o.layout = layout;
      o.deflate_level = deflate_level;
      const std::string name =
          std::string(layout_name(layout)) + "-" + std::to_string(deflate_level) + ".h5";
      write_synthetic(path(name), o);
      TableReader reader(path(name));
      ASSERT_FALSE(reader.storage().empty());
      for (const DatasetStorage& d : reader.storage()) {
        ASSERT_FALSE(d.chunk.empty()) << name << " " << d.dataset;
        EXPECT_EQ(d.chunk[0], 100) << name << " " << d.dataset;
      }
      if (deflate_level == 0) {
        // 11 columns of 4 bytes, and HDF5's headers and attributes (the truth's JSON among them).
        EXPECT_LT(fs::file_size(path(name)), 100u * 11 * 4 + (64u << 10)) << name;
      }
    }
  }
  // A chunk shorter than the table is kept as asked.
  SynthOptions o = small_options(SynthTask::binary);
  o.rows = 100;
  o.chunk_rows = 30;
  write_synthetic(path("short.h5"), o);
  EXPECT_EQ(TableReader(path("short.h5")).storage()[0].chunk, (std::vector<std::int64_t>{30}));
}

// ---- MatrixWriter on its own ----

TEST_F(SynthTest, MatrixWriterAppendsUnevenBlocksAcrossChunks) {
  const std::vector<std::string> names = {"a", "b", "c"};
  MatrixWriteOptions options;
  options.chunk_rows = 1000;
  std::vector<float> expected_x, expected_y;
  {
    TemporaryOutput out(path("w.h5"));
    MatrixWriter writer(out.path(), names, options);
    for (std::int64_t block : {3, 2500, 0, 1, 997}) {
      std::vector<float> x, y;
      for (std::int64_t r = 0; r < block; ++r) {
        const auto row = static_cast<float>(expected_y.size());
        for (int c = 0; c < 3; ++c) x.push_back(c == 1 && r % 7 == 0 ? NAN : row * 10 + c);
        y.push_back(row);
        expected_y.push_back(row);
      }
      expected_x.insert(expected_x.end(), x.begin(), x.end());
      writer.append(x, y);
    }
    EXPECT_THROW(writer.append(std::vector<float>(4), std::vector<float>(1)),
                 Error);  // not whole rows
    EXPECT_THROW(writer.append(std::vector<float>(3), std::vector<float>(2)),
                 Error);  // label count
    writer.set_attribute("note", "hello");
    writer.set_label_categories({"zero"});
    EXPECT_EQ(writer.rows(), 3501);
    writer.close();
    out.commit();
  }
  const Table t = read_table(path("w.h5"));
  ASSERT_EQ(t.rows, 3501);
  ASSERT_EQ(t.columns.size(), 4u);
  EXPECT_EQ(t.columns[0].name, "a");
  EXPECT_EQ(t.columns[2].name, "c");
  EXPECT_EQ(t.columns[3].name, "y");
  for (std::int64_t r = 0; r < t.rows; ++r) {
    for (int c = 0; c < 3; ++c) ASSERT_TRUE(same_value(t.at(c, r), expected_x[r * 3 + c])) << r;
    ASSERT_EQ(t.at(3, r), expected_y[r]);
  }
}

TEST_F(SynthTest, MatrixWriterCapsChunkBytesForWideMatrices) {
  const std::vector<std::string> names(100000, "");
  std::vector<std::string> unique_names;
  for (std::size_t j = 0; j < names.size(); ++j) unique_names.push_back("x" + std::to_string(j));
  MatrixWriteOptions options;
  options.with_label = false;
  TemporaryOutput out(path("wide.h5"));
  MatrixWriter writer(out.path(), unique_names, options);
  EXPECT_EQ(writer.chunk_rows(), MatrixWriteOptions::kMaxChunkBytes / (100000 * 4));
  writer.append(std::vector<float>(200000, 1.5f), {});
  writer.close();
  out.commit();
  TableReader reader(path("wide.h5"));
  EXPECT_EQ(reader.rows(), 2);
  EXPECT_EQ(reader.columns().size(), 100000u);
  EXPECT_EQ(reader.columns()[99999].name, "x99999");
}

}  // namespace
}  // namespace lathe
