// lathe::Scorer (include/lathe/scorer.h) against predict_table (io/evaluate_table.h), the path `lathe
// eval` takes, on the same rows; the schema check; column order and categorical codes that must not
// matter; imputation counts; and score_file's outputs (io/score_file.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <numeric>
#include <thread>
#include <string>
#include <tuple>
#include <vector>

#include "io/columnar_writer.h"
#include "io/hdf5_handle.h"
#include "io/model_file.h"
#include "io/model_inputs.h"
#include "io/score_file.h"
#include "io/scoring_input.h"
#include "io/synth.h"
#include "io/table_reader.h"
#include "io/train_table.h"
#include "lathe/error.h"
#include "lathe/scorer.h"
#include "models/model.h"
#include "runtime/column_block.h"
#include "runtime/error.h"
#include "runtime/metrics.h"
#include "runtime/preparation.h"
#include "runtime/trainer.h"
#include "temp_dir.h"
#include "test_devices.h"

namespace lathe {
namespace {

// The synthetic tables and the models trained on them, made once for the suite.
struct TrainedModels {
  test::TemporaryDirectory dir;
  std::filesystem::path binary_data, binary_model;
  std::filesystem::path multiclass_data, multiclass_model;
  std::filesystem::path regression_data, regression_model;
};

// Made by the first suite that needs it and removed (with its folder) when the process ends.
std::unique_ptr<TrainedModels> trained;

std::filesystem::path train_on(const std::filesystem::path& data, SynthTask task, const std::string& label,
                               const std::filesystem::path& model) {
  TrainTableOptions o;
  o.preparation.label = label;
  o.task = task == SynthTask::regression ? Task::regression : task == SynthTask::binary ? Task::binary : Task::multiclass;
  o.trainer.epochs = 3;
  o.trainer.progress = false;
  o.preparation.cross_all = task == SynthTask::regression;  // crosses too go through the same preparation
  train_table(DeviceContext::cpu(), data, model, o);
  return model;
}

class ScorerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (trained) return;
    trained = std::make_unique<TrainedModels>();
    const auto make = [](SynthTask task, std::int64_t rows, double missing_rate, const std::string& name,
                         std::filesystem::path& data, std::filesystem::path& model) {
      SynthOptions s;
      s.task = task;
      s.rows = rows;
      s.features = 5;
      s.categorical = 2;
      s.classes = 3;
      s.missing_rate = missing_rate;
      s.seed = 7;
      s.chunk_rows = 1000;
      s.progress = false;
      data = trained->dir.file(name + ".h5");
      const SynthReport report = write_synthetic(data, s);
      model = train_on(data, task, report.truth.label_name, trained->dir.file(name + "_model.h5"));
    };
    // The binary table has no missing values, so any NaN at scoring time is one training never saw.
    make(SynthTask::binary, 3001, 0.0, "binary", trained->binary_data, trained->binary_model);
    make(SynthTask::multiclass, 2003, 0.05, "multiclass", trained->multiclass_data, trained->multiclass_model);
    make(SynthTask::regression, 2500, 0.02, "regression", trained->regression_data, trained->regression_model);
  }
  // The table `model` (one of `trained`'s) was trained on.
  static const std::filesystem::path& data_of(const std::filesystem::path& model) {
    return model == trained->binary_model       ? trained->binary_data
           : model == trained->multiclass_model ? trained->multiclass_data
                                                : trained->regression_data;
  }
};

// Every value of a table, column-major (TableReader::read_block layout).
std::vector<float> read_all(TableReader& reader) {
  std::vector<float> values(static_cast<std::size_t>(reader.rows()) * reader.columns().size());
  reader.read_block(0, reader.rows(), values);
  return values;
}

// The Scorer's predictions in predict_table's layout (regression value, binary P(positive),
// multiclass rows x classes), scoring the file in blocks of awkward sizes.
std::vector<float> score_in_blocks(Scorer& scorer, TableReader& reader, ScoringSummary* summary = nullptr) {
  const ScoringInput input = bind_scoring_input(scorer, reader.columns(), reader.path().string());
  const auto columns = static_cast<std::int64_t>(reader.columns().size());
  std::vector<float> out, block;
  Scores scores;
  const std::int64_t sizes[] = {1, 11, 101, 0, 1234};
  std::int64_t first = 0;
  for (int i = 0; first < reader.rows(); ++i) {
    const std::int64_t n = std::min(reader.rows() - first, i < 5 ? sizes[i] : std::int64_t{777});
    block.resize(static_cast<std::size_t>(n * columns));
    if (n > 0) reader.read_block(first, n, block);
    score_block(scorer, input, ColumnBlockView{block.data(), n, columns}, first, scores, summary);
    EXPECT_EQ(scores.rows, n);
    for (std::int64_t r = 0; r < n; ++r) {
      switch (scores.task) {
        case ScoringTask::regression: out.push_back(scores.value[static_cast<std::size_t>(r)]); break;
        case ScoringTask::binary: out.push_back(scores.positive_probability(r)); break;
        case ScoringTask::multiclass:
          for (std::int32_t k = 0; k < scores.classes; ++k) out.push_back(scores.probability[static_cast<std::size_t>(r * scores.classes + k)]);
          break;
      }
    }
    first += n;
  }
  return out;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, double relative) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << "element " << i;
    ASSERT_LE(std::fabs(got[i] - want[i]), relative * std::max(1.0, std::fabs(static_cast<double>(want[i]))))
        << "element " << i << ": " << got[i] << " vs " << want[i];
  }
}

// A batch of named columns over a table's values (which must outlive it), in the table's order.
struct NamedBatch {
  std::vector<std::vector<double>> numeric;
  std::vector<std::vector<std::int32_t>> codes;
  std::vector<BatchColumn> columns;
};

NamedBatch batch_of(const std::vector<ColumnInfo>& schema, const std::vector<float>& values, std::int64_t rows) {
  NamedBatch b;
  b.numeric.reserve(schema.size());
  b.codes.reserve(schema.size());
  for (std::size_t c = 0; c < schema.size(); ++c) {
    const float* v = values.data() + static_cast<std::int64_t>(c) * rows;
    if (schema[c].type == ColumnType::categorical) {
      b.codes.emplace_back(static_cast<std::size_t>(rows));
      for (std::int64_t r = 0; r < rows; ++r) b.codes.back()[r] = std::isnan(v[r]) ? -1 : static_cast<std::int32_t>(v[r]);
      b.columns.push_back(BatchColumn::categorical_codes(schema[c].name, b.codes.back(), schema[c].categories));
    } else {
      b.numeric.emplace_back(v, v + rows);
      b.columns.push_back(BatchColumn::numeric(schema[c].name, b.numeric.back()));
    }
  }
  return b;
}

// Rows [first, first + n) of a column-major table of `rows` rows and `columns` columns, column-major.
std::vector<float> rows_of(const std::vector<float>& values, std::int64_t rows, std::size_t columns, std::int64_t first,
                           std::int64_t n) {
  std::vector<float> part(static_cast<std::size_t>(n) * columns);
  for (std::size_t c = 0; c < columns; ++c) {
    std::copy_n(values.begin() + static_cast<std::int64_t>(c) * rows + first, n, part.begin() + static_cast<std::int64_t>(c) * n);
  }
  return part;
}

std::vector<float> flat(const Scores& s) {
  return s.task == ScoringTask::regression ? s.value : s.probability;
}

TEST_F(ScorerTest, MatchesPredictTableOnTheSameRows) {
  const DeviceContext cpu = DeviceContext::cpu();
  for (const auto& [data, model_path] : {std::pair{trained->binary_data, trained->binary_model},
                                         std::pair{trained->multiclass_data, trained->multiclass_model},
                                         std::pair{trained->regression_data, trained->regression_model}}) {
    SCOPED_TRACE(model_path.string());
    const ModelFile model = load_model(model_path);
    TableReader reader(data);
    std::vector<float> expected;
    predict_table(cpu, model, reader, expected);
    Scorer scorer(model_path, "cpu");
    expect_close(score_in_blocks(scorer, reader), expected, 1e-6);
  }
}

TEST_F(ScorerTest, ProbabilitiesSumToOneAndThePredictedClassIsTheMostProbable) {
  for (const auto& [data, model_path] : {std::pair{trained->binary_data, trained->binary_model},
                                         std::pair{trained->multiclass_data, trained->multiclass_model}}) {
    Scorer scorer(model_path, "cpu");
    TableReader reader(data);
    const std::vector<float> values = read_all(reader);
    const ScoringInput input = bind_scoring_input(scorer, reader.columns());
    Scores s;
    score_block(scorer, input, ColumnBlockView{values.data(), reader.rows(), static_cast<std::int64_t>(reader.columns().size())}, 0, s);
    ASSERT_EQ(s.classes, static_cast<std::int32_t>(scorer.classes().size()));
    ASSERT_EQ(s.predicted_class.size(), static_cast<std::size_t>(reader.rows()));
    std::vector<std::int64_t> votes(static_cast<std::size_t>(s.classes), 0);
    for (std::int64_t r = 0; r < s.rows; ++r) {
      const float* p = s.probability.data() + r * s.classes;
      EXPECT_NEAR(std::accumulate(p, p + s.classes, 0.0), 1.0, 1e-5);
      const auto best = static_cast<std::int32_t>(std::max_element(p, p + s.classes) - p);
      EXPECT_EQ(s.predicted_class[static_cast<std::size_t>(r)], best) << "row " << r;
      votes[static_cast<std::size_t>(best)]++;
    }
    // A trained model on learnable data predicts more than one class.
    EXPECT_GT(std::count_if(votes.begin(), votes.end(), [](std::int64_t v) { return v > 0; }), 1);
  }
}

TEST_F(ScorerTest, AMissingOrRetypedColumnIsAnInputErrorNamingIt) {
  Scorer scorer(trained->binary_model, "cpu");
  TableReader reader(trained->binary_data);
  std::vector<ColumnInfo> without = reader.columns();
  without.erase(std::find_if(without.begin(), without.end(), [](const ColumnInfo& c) { return c.name == "f3"; }));
  try {
    bind_scoring_input(scorer, without, "scoring.h5");
    FAIL() << "a missing column was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'f3'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("scoring.h5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
  }
  for (const std::string name : {"f1", "c0"}) {
    std::vector<ColumnInfo> retyped = reader.columns();
    for (auto& c : retyped) {
      if (c.name != name) continue;
      c.type = c.type == ColumnType::numeric ? ColumnType::categorical : ColumnType::numeric;
      if (c.type == ColumnType::categorical) c.categories = {"a", "b"};
    }
    try {
      bind_scoring_input(scorer, retyped, "scoring.h5");
      FAIL() << "a retyped column was accepted: " << name;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("'" + name + "'"), std::string::npos) << e.what();
    }
  }
  // The label is not an input: scoring data without it binds, and an extra column is a note.
  std::vector<ColumnInfo> unlabeled = reader.columns();
  unlabeled.erase(std::find_if(unlabeled.begin(), unlabeled.end(), [](const ColumnInfo& c) { return c.name == "label"; }));
  ColumnInfo extra;
  extra.name = "customer_notes";
  unlabeled.push_back(extra);
  const ScoringInput bound = bind_scoring_input(scorer, unlabeled);
  ASSERT_EQ(bound.notes().size(), 1u);
  EXPECT_NE(bound.notes()[0].find("customer_notes"), std::string::npos) << bound.notes()[0];
  // In-memory batches are checked the same way, before anything is scored.
  std::vector<double> values = {1.0};
  const std::vector<BatchColumn> one = {BatchColumn::numeric("f0", values)};
  EXPECT_THROW(scorer.score(one), InputError);
}

// `lathe eval`, `drift` and `report` (predict_table, evaluate_table) word a schema mismatch as
// `lathe score` does: the data file, the column, its kind and the model file.
TEST_F(ScorerTest, TheSchemaCheckOfEvalNamesTheDataAndTheModel) {
  const ModelFile model = load_model(trained->binary_model);
  EXPECT_EQ(model.path, trained->binary_model);
  TableReader reader(trained->binary_data);
  std::vector<ColumnInfo> without = reader.columns();
  without.erase(std::find_if(without.begin(), without.end(), [](const ColumnInfo& c) { return c.name == "c1"; }));
  try {
    check_model_inputs(model_inputs(model), model.path.string(), without, "new.h5");
    FAIL() << "a missing column was accepted";
  } catch (const InputError& e) {
    const std::string m = e.what();
    for (const std::string part : {"new.h5: column 'c1' (categorical), an input of the model " +
                                       trained->binary_model.string() + ", is missing"}) {
      EXPECT_NE(m.find(part), std::string::npos) << m;
    }
  }
  // The Scorer's own check says exactly the same.
  try {
    bind_scoring_input(Scorer(trained->binary_model, "cpu"), without, "new.h5");
    FAIL() << "a missing column was accepted";
  } catch (const InputError& e) {
    try {
      check_model_inputs(model_inputs(model), model.path.string(), without, "new.h5");
    } catch (const InputError& same) {
      EXPECT_EQ(std::string(e.what()), std::string(same.what()));
    }
  }
}

// A label that was not a class at training is named as such, with its row and the model's classes
// (not "a missing, infinite or unknown label").
TEST_F(ScorerTest, AnUnseenLabelIsNamedWithTheModelsClasses) {
  const ModelFile model = load_model(trained->binary_model);  // classes "no" and "yes"
  try {
    evaluate_table(DeviceContext::cpu(), model, trained->multiclass_data);  // labels class_0, class_1, class_2
    FAIL() << "labels of another task were accepted by a binary model";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(trained->multiclass_data.string() + ": label 'class_"), std::string::npos) << m;
    EXPECT_NE(m.find("' in row "), std::string::npos) << m;
    EXPECT_NE(m.find("(column 'label') was not a class of the model " + trained->binary_model.string() + " (no, yes)"),
              std::string::npos)
        << m;
    EXPECT_EQ(m.find("unknown"), std::string::npos) << m;
  }
}

TEST_F(ScorerTest, ColumnOrderAndCategoricalCodesDoNotChangePredictions) {
  for (const auto& model_path : {trained->binary_model, trained->multiclass_model, trained->regression_model}) {
    SCOPED_TRACE(model_path.string());
    const auto& data = data_of(model_path);
    Scorer scorer(model_path, "cpu");
    TableReader reader(data);
    const std::vector<float> values = read_all(reader);
    NamedBatch as_read = batch_of(reader.columns(), values, reader.rows());
    const Scores expected = scorer.score(as_read.columns);

    // The same rows with the columns reversed and every categorical column's labels listed in
    // reverse, so each label has another code.
    NamedBatch shuffled = batch_of(reader.columns(), values, reader.rows());
    std::size_t k = 0;
    for (auto& column : shuffled.columns) {
      if (!column.categorical) continue;
      const auto labels = static_cast<std::int32_t>(column.labels.size());
      std::reverse(column.labels.begin(), column.labels.end());
      std::vector<std::int32_t>& codes = shuffled.codes[k++];
      for (auto& code : codes) code = code < 0 ? -1 : labels - 1 - code;
      column.codes = codes;
    }
    ASSERT_GT(k, 0u);
    std::reverse(shuffled.columns.begin(), shuffled.columns.end());
    const Scores got = scorer.score(shuffled.columns);
    EXPECT_EQ(flat(got), flat(expected));
    EXPECT_EQ(got.predicted_class, expected.predicted_class);
  }
}

TEST_F(ScorerTest, LabelsPerRowAndFloat32ValuesScoreAsCodesAndFloat64Do) {
  for (const auto& model_path :
       {trained->binary_model, trained->multiclass_model, trained->regression_model}) {
    SCOPED_TRACE(model_path.string());
    const auto& data = data_of(model_path);
    Scorer scorer(model_path, "cpu");
    TableReader reader(data);
    const std::vector<float> values = read_all(reader);
    NamedBatch as_read = batch_of(reader.columns(), values, reader.rows());
    ScoringSummary by_codes;
    const Scores expected = scorer.score(as_read.columns, &by_codes);

    // Each categorical column as its rows' labels ("" where missing, and one label never seen in
    // training), each numeric one as float32.
    std::vector<std::vector<std::string>> texts;
    std::vector<std::vector<float>> floats;
    texts.reserve(as_read.columns.size());
    floats.reserve(as_read.columns.size());
    std::vector<BatchColumn> columns;
    std::size_t categorical = 0;
    for (const BatchColumn& c : as_read.columns) {
      if (c.categorical) {
        std::vector<std::string>& t = texts.emplace_back();
        for (const std::int32_t code : c.codes)
          t.push_back(code < 0 ? "" : c.labels[static_cast<std::size_t>(code)]);
        columns.push_back(BatchColumn::categorical_labels(c.name, t));
        ++categorical;
      } else {
        std::vector<float>& f = floats.emplace_back(c.values.begin(), c.values.end());
        columns.push_back(BatchColumn::numeric(c.name, f));
      }
      EXPECT_EQ(columns.back().rows(), reader.rows());
    }
    ASSERT_GT(categorical, 0u);
    ScoringSummary by_labels;
    const Scores got = scorer.score(columns, &by_labels);
    EXPECT_EQ(flat(got), flat(expected));
    EXPECT_EQ(got.predicted_class, expected.predicted_class);
    EXPECT_EQ(by_labels.missing_categories, by_codes.missing_categories);
    EXPECT_EQ(by_labels.imputed, by_codes.imputed);

    // A label never seen in training takes the unknown slot, as an unknown code's label does.
    std::vector<std::string>& first = texts.front();
    first[0] = "a label never seen in training";
    ScoringSummary with_unseen;
    std::vector<std::string> notes;
    scorer.score(columns, &with_unseen, &notes);
    std::string column_name;
    for (const BatchColumn& c : columns) {
      if (c.categorical) {
        column_name = c.name;
        break;
      }
    }
    EXPECT_GE(with_unseen.unknown_categories[column_name], 1);
    // Columns of other lengths are refused, naming them.
    first.pop_back();
    for (BatchColumn& c : columns) {
      if (c.name == column_name) c = BatchColumn::categorical_labels(column_name, first);
    }
    EXPECT_THROW(scorer.score(columns), InputError);
  }
}

TEST_F(ScorerTest, MissingValuesAreImputedAsTrainedAndCounted) {
  Scorer scorer(trained->binary_model, "cpu");
  const ModelFile model = load_model(trained->binary_model);
  TableReader reader(trained->binary_data);
  const std::vector<float> values = read_all(reader);
  const std::int64_t rows = reader.rows();
  NamedBatch batch = batch_of(reader.columns(), values, rows);
  const auto f2 = std::find_if(model.preparation.numeric.begin(), model.preparation.numeric.end(),
                               [](const NumericEncoding& n) { return n.name == "f2"; });
  ASSERT_NE(f2, model.preparation.numeric.end());
  ASSERT_FALSE(f2->has_missing);  // the training table had no missing values
  const auto input = std::find_if(scorer.inputs().begin(), scorer.inputs().end(), [](const ModelInput& i) { return i.name == "f2"; });
  ASSERT_NE(input, scorer.inputs().end());
  EXPECT_FALSE(input->missing_in_training);

  // Rows 0, 5, 10, ... of f2 missing, against the same rows holding the training fill value.
  auto& f2_values = batch.numeric[2];
  ASSERT_EQ(batch.columns[2].name, "f2");
  std::vector<double> filled = f2_values;
  std::int64_t made_missing = 0;
  for (std::int64_t r = 0; r < rows; r += 5, ++made_missing) {
    f2_values[static_cast<std::size_t>(r)] = std::nan("");
    filled[static_cast<std::size_t>(r)] = f2->transform.fill;
  }
  ScoringSummary summary;
  const Scores with_missing = scorer.score(batch.columns, &summary);
  batch.columns[2].values = filled;
  const Scores with_fill = scorer.score(batch.columns);
  EXPECT_EQ(with_missing.probability, with_fill.probability);
  EXPECT_EQ(summary.rows, rows);
  ASSERT_EQ(summary.imputed.size(), 1u);
  EXPECT_EQ(summary.imputed["f2"], made_missing);

  // A label never seen in training is scored (as the unknown slot) and counted.
  ASSERT_EQ(batch.columns[5].name, "c0");
  // The notes on c0 (the batch also holds the label, a column the model does not use, noted).
  const auto c0_notes = [](const std::vector<std::string>& all) {
    std::vector<std::string> on_c0;
    for (const std::string& note : all) {
      if (note.find("'c0'") != std::string::npos) on_c0.push_back(note);
    }
    return on_c0;
  };
  batch.columns[5].labels.push_back("never seen");
  batch.codes[0][0] = static_cast<std::int32_t>(batch.columns[5].labels.size() - 1);
  ScoringSummary unknown;
  std::vector<std::string> all_notes;
  scorer.score(batch.columns, &unknown, &all_notes);
  EXPECT_EQ(unknown.unknown_categories["c0"], 1);
  std::vector<std::string> notes = c0_notes(all_notes);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("column 'c0': 1 value"), std::string::npos) << notes[0];
  EXPECT_NE(notes[0].find("'never seen'"), std::string::npos) << notes[0];
  EXPECT_EQ(notes[0].find("in training, apart from"), std::string::npos) << notes[0];

  // A training label with spaces around it is still unknown (labels match exactly), and the note
  // says which training label it spells otherwise.
  const std::string trained_label =
      batch.columns[5].labels.at(static_cast<std::size_t>(batch.codes[0][1]));
  batch.columns[5].labels.push_back(" " + trained_label + " ");
  batch.codes[0][2] = static_cast<std::int32_t>(batch.columns[5].labels.size() - 1);
  ScoringSummary respelled;
  all_notes.clear();
  scorer.score(batch.columns, &respelled, &all_notes);
  EXPECT_EQ(respelled.unknown_categories["c0"], 2);
  EXPECT_EQ(respelled.rows, rows);
  notes = c0_notes(all_notes);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("' " + trained_label + " ' (1 row) is '" + trained_label +
                          "' in training, apart from"),
            std::string::npos)
      << notes[0];

  // Without unknown labels, no note on c0.
  all_notes.clear();
  batch.codes[0][0] = batch.codes[0][1];
  batch.codes[0][2] = batch.codes[0][1];
  scorer.score(batch.columns, nullptr, &all_notes);
  EXPECT_TRUE(c0_notes(all_notes).empty()) << c0_notes(all_notes).front();
}

TEST_F(ScorerTest, AnInfiniteValueIsAnInputErrorNamingColumnAndRow) {
  Scorer scorer(trained->regression_model, "cpu");
  TableReader reader(trained->regression_data);
  std::vector<float> values = read_all(reader);
  const std::int64_t rows = reader.rows();
  std::size_t f4 = 0;
  while (reader.columns()[f4].name != "f4") ++f4;
  values[f4 * static_cast<std::size_t>(rows) + 41] = -INFINITY;
  const ScoringInput input = bind_scoring_input(scorer, reader.columns(), "bad.h5");
  Scores s;
  try {
    score_block(scorer, input, ColumnBlockView{values.data() + 0, rows, static_cast<std::int64_t>(reader.columns().size())}, 1000, s);
    FAIL() << "an infinite value was scored";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'f4'"), std::string::npos) << what;
    EXPECT_NE(what.find("row 1042"), std::string::npos) << what;  // first_row 1000 + row 41, counted from 1
    EXPECT_NE(what.find("bad.h5"), std::string::npos) << what;
  }
}

// One Scorer called from several threads at once: each call gives what it gives alone (the calls
// run one at a time; before the Scorer held a mutex they shared its scratch and mixed batches).
TEST_F(ScorerTest, ConcurrentCallsOnOneScorerGiveTheSingleThreadResults) {
  Scorer scorer(trained->multiclass_model, "cpu");
  TableReader reader(trained->multiclass_data);
  const std::vector<float> values = read_all(reader);
  const std::int64_t rows = reader.rows();
  // Batches of different sizes (more than one tile of 2048 rows, less, a single row) over
  // different rows of the table.
  const std::vector<std::pair<std::int64_t, std::int64_t>> ranges = {{0, 2003}, {17, 1}, {100, 1500}, {900, 37}, {1, 2002}};
  std::vector<NamedBatch> batches;
  std::vector<std::vector<float>> alone;
  for (const auto& [first, n] : ranges) {
    batches.push_back(batch_of(reader.columns(), rows_of(values, rows, reader.columns().size(), first, n), n));
    alone.push_back(flat(scorer.score(batches.back().columns)));
  }
  constexpr int kThreads = 4, kCalls = 20;
  std::vector<int> wrong(kThreads, 0), failed(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        const std::size_t b = static_cast<std::size_t>(t + i) % batches.size();
        try {
          if (flat(scorer.score(batches[b].columns)) != alone[b]) ++wrong[static_cast<std::size_t>(t)];
        } catch (const std::exception&) {
          ++failed[static_cast<std::size_t>(t)];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(std::accumulate(wrong.begin(), wrong.end(), 0), 0) << "of " << kThreads * kCalls << " calls";
  EXPECT_EQ(std::accumulate(failed.begin(), failed.end(), 0), 0) << "of " << kThreads * kCalls << " calls";
}

// Categorical codes travel as float32, exact up to 2^24: a batch whose dictionary holds more labels
// than that still scores each code's own label (before, code 2^24 + 1 scored as 2^24's label).
TEST_F(ScorerTest, CodesBeyondFloat32sExactIntegersScoreTheirOwnLabels) {
  Scorer scorer(trained->multiclass_model, "cpu");
  TableReader reader(trained->multiclass_data);
  const std::vector<float> values = read_all(reader);
  constexpr std::int64_t kRows = 4;
  NamedBatch small = batch_of(reader.columns(), values, reader.rows());
  std::size_t c0 = 0;
  while (small.columns[c0].name != "c0") ++c0;
  const std::vector<std::string> vocabulary = small.columns[c0].labels;
  ASSERT_GE(vocabulary.size(), 3u);
  // Rows 0..3 with c0 = vocabulary 0, 1, 2, 1 through a small dictionary ...
  NamedBatch reference = batch_of(reader.columns(), values, reader.rows());
  for (BatchColumn& c : reference.columns) {
    if (c.categorical) c.codes = c.codes.subspan(0, kRows);
    else c.values = c.values.subspan(0, kRows);
  }
  std::vector<std::int32_t> small_codes = {0, 1, 2, 1};
  reference.columns[c0] = BatchColumn::categorical_codes("c0", small_codes, {vocabulary[0], vocabulary[1], vocabulary[2]});
  const std::vector<float> expected = flat(scorer.score(reference.columns));
  // (the labels score differently, so a mix-up would show)
  ASSERT_NE(std::vector<float>(expected.begin(), expected.begin() + 3), std::vector<float>(expected.begin() + 3, expected.begin() + 6));
  // ... and through a dictionary of 2^24 + 4 labels whose codes float32 cannot all hold.
  constexpr std::int32_t k24 = 1 << 24;
  std::vector<std::string> big(static_cast<std::size_t>(k24) + 4, "filler");
  big[k24] = vocabulary[0];
  big[k24 + 1] = vocabulary[1];
  big[k24 + 3] = vocabulary[2];
  std::vector<std::int32_t> big_codes = {k24, k24 + 1, k24 + 3, k24 + 1};
  reference.columns[c0] = BatchColumn::categorical_codes("c0", big_codes, std::move(big));
  ScoringSummary summary;
  EXPECT_EQ(flat(scorer.score(reference.columns, &summary)), expected);
  EXPECT_EQ(summary.unknown_categories.count("c0"), 0u);
}

// The empty label is a missing value, as code -1 is (and as "" is in an HDF5 string column or an
// ONNX input); before, it went to the unknown slot.
TEST_F(ScorerTest, AnEmptyLabelIsMissingAsCodeMinusOneIs) {
  // The multiclass table had missing values, so its missing slots are trained.
  Scorer scorer(trained->multiclass_model, "cpu");
  TableReader reader(trained->multiclass_data);
  const std::vector<float> values = read_all(reader);
  NamedBatch batch = batch_of(reader.columns(), values, reader.rows());
  std::size_t c0 = 0;
  while (batch.columns[c0].name != "c0") ++c0;
  std::vector<std::int32_t> minus_one(static_cast<std::size_t>(reader.rows()), -1);
  batch.columns[c0] = BatchColumn::categorical_codes("c0", minus_one, batch.columns[c0].labels);
  ScoringSummary as_missing;
  const std::vector<float> expected = flat(scorer.score(batch.columns, &as_missing));
  std::vector<std::string> labels = batch.columns[c0].labels;
  labels.push_back("");
  std::vector<std::int32_t> empty(static_cast<std::size_t>(reader.rows()), static_cast<std::int32_t>(labels.size() - 1));
  batch.columns[c0] = BatchColumn::categorical_codes("c0", empty, labels);
  ScoringSummary as_empty;
  EXPECT_EQ(flat(scorer.score(batch.columns, &as_empty)), expected);
  EXPECT_EQ(as_empty.missing_categories["c0"], reader.rows());
  EXPECT_EQ(as_empty.unknown_categories.count("c0"), 0u);
}

// An infinite value, or a float64 beyond float32's range, in a batch: refused in a column the model
// does not clip, naming the value as given; put on the bound in a column it clips.
TEST_F(ScorerTest, ABatchValueBeyondFloat32IsNamedAsGivenOrPutOnTheClipBound) {
  TableReader reader(trained->regression_data);
  constexpr std::int64_t kRows = 8;
  const std::vector<float> values = rows_of(read_all(reader), reader.rows(), reader.columns().size(), 0, kRows);
  const auto batch_with = [&](double f2_value) {
    // The table's first rows, f2 of row 6 changed (b.numeric holds the numeric columns in order).
    NamedBatch b = batch_of(reader.columns(), values, kRows);
    std::size_t numeric = 0;
    for (const BatchColumn& c : b.columns) {
      if (c.name == "f2") b.numeric[numeric][5] = f2_value;
      numeric += c.categorical ? 0 : 1;
    }
    return b;
  };
  Scorer scorer(trained->regression_model, "cpu");
  const auto error_of = [&](double value) {
    try {
      scorer.score(batch_with(value).columns);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of(1e300), "batch: column 'f2': row 6 has the value 1e+300, beyond float32's range (|x| <= "
                             "3.4028235e+38, the precision the model computes in), which the model cannot score");
  EXPECT_EQ(error_of(-INFINITY), "batch: column 'f2': row 6 has an infinite value (-inf), which the model cannot score");

  TrainTableOptions o;
  o.preparation.label = scorer.label();
  o.task = Task::regression;
  o.trainer.epochs = 1;
  o.trainer.progress = false;
  o.preparation.defaults.clip = ClipKind::quantile;
  const std::filesystem::path clipped_model = trained->dir.file("clipped_batch_model.h5");
  train_table(DeviceContext::cpu(), trained->regression_data, clipped_model, o);
  Scorer clipped(clipped_model, "cpu");
  float hi = 0, lo = 0;
  for (const NumericEncoding& n : load_model(clipped_model).preparation.numeric) {
    if (n.name == "f2") hi = n.transform.clip_hi, lo = n.transform.clip_lo;
  }
  ASSERT_TRUE(std::isfinite(hi) && std::isfinite(lo));
  const std::vector<float> on_hi = flat(clipped.score(batch_with(hi).columns));
  EXPECT_EQ(flat(clipped.score(batch_with(1e300).columns)), on_hi);
  EXPECT_EQ(flat(clipped.score(batch_with(INFINITY).columns)), on_hi);
  EXPECT_EQ(flat(clipped.score(batch_with(-1e300).columns)), flat(clipped.score(batch_with(lo).columns)));
}

// The exception types are public (lathe/error.h): a bad device string is a UsageError worded for
// the API as well as the CLI, a damaged model file an Hdf5Error, both lathe::Error.
TEST_F(ScorerTest, ConstructorErrorsAreThePublicTypesTheHeaderNames) {
  try {
    Scorer scorer(trained->binary_model, "gpu");
    FAIL() << "a bad device string was taken";
  } catch (const lathe::UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "device: 'gpu' is not auto, cpu, cuda or cuda:N");
  }
  // Every byte of the model file's second half flipped: HDF5 cannot read it.
  const std::filesystem::path damaged = trained->dir.file("damaged_model.h5");
  std::filesystem::copy_file(trained->binary_model, damaged, std::filesystem::copy_options::overwrite_existing);
  {
    std::fstream f(damaged, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const std::streamoff size = f.tellg();
    std::vector<char> bytes(static_cast<std::size_t>(size));
    f.seekg(0);
    f.read(bytes.data(), size);
    for (std::size_t i = bytes.size() / 8; i < bytes.size(); ++i) bytes[i] = static_cast<char>(~bytes[i]);
    f.seekp(0);
    f.write(bytes.data(), size);
  }
  EXPECT_THROW(Scorer(damaged, "cpu"), lathe::Error);
  EXPECT_STREQ(lathe::version(), "0.1.0");
}

// The example at the top of include/lathe/scorer.h, line for line, on a model with its columns.
TEST(Scores, PositiveProbabilityIsABinaryRowsOnly) {
  Scores binary;
  binary.task = ScoringTask::binary;
  binary.rows = 2;
  binary.classes = 2;
  binary.probability = {0.75f, 0.25f, 0.1f, 0.9f};
  EXPECT_EQ(binary.positive_probability(0), 0.25f);
  EXPECT_EQ(binary.positive_probability(1), 0.9f);
  EXPECT_THROW(binary.positive_probability(2), Error);
  EXPECT_THROW(binary.positive_probability(-1), Error);
  Scores regression;
  regression.rows = 1;
  regression.value = {3.0f};
  EXPECT_THROW(regression.positive_probability(0), Error);  // its probability is empty
  Scores multiclass = binary;
  multiclass.task = ScoringTask::multiclass;
  EXPECT_THROW(multiclass.positive_probability(0), Error);
}

TEST(ScorerHeaderExample, CompilesAndScores) {
  test::TemporaryDirectory dir;
  const std::filesystem::path data = dir.file("contracts.h5");
  {
    ColumnarWriter writer(data, {{"tenure", StoredType::float32},
                                 {"contract", StoredType::categorical_codes},
                                 {"payment_method", StoredType::categorical_codes},
                                 {"charges", StoredType::float32}});
    std::vector<double> tenure(400), charges(400);
    std::vector<std::int32_t> contract(400), payment(400);
    for (std::size_t r = 0; r < 400; ++r) {
      tenure[r] = static_cast<double>(r % 72);
      contract[r] = static_cast<std::int32_t>(r % 2);
      payment[r] = static_cast<std::int32_t>(r % 3 == 0);
      charges[r] = 2.0 * tenure[r] + 10.0 * contract[r] + 3.0 * payment[r];
    }
    writer.append_numeric(0, tenure);
    writer.append_codes(1, contract);
    writer.set_categories(1, {"Month-to-month", "One year"});
    writer.append_codes(2, payment);
    writer.set_categories(2, {"Bank transfer (automatic)", "Mailed check"});
    writer.append_numeric(3, charges);
    writer.close();
  }
  TrainTableOptions o;
  o.preparation.label = "charges";
  o.task = Task::regression;
  o.trainer.epochs = 1;
  o.trainer.progress = false;
  train_table(DeviceContext::cpu(), data, dir.file("model.h5"), o);
  const std::filesystem::path here = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  try {
    lathe::Scorer scorer("model.h5", "cpu");
    std::vector<double> tenure = {1, 34, 2};
    std::vector<std::int32_t> contract_codes = {0, 1, 0};
    std::vector<std::string> payment = {"Mailed check", "",
                                        "Bank transfer (automatic)"};  // "" missing
    std::vector<lathe::BatchColumn> batch = {
        lathe::BatchColumn::numeric("tenure", tenure),
        lathe::BatchColumn::categorical_codes("contract", contract_codes,
                                              {"Month-to-month", "One year"}),
        lathe::BatchColumn::categorical_labels("payment_method", payment)};
    const lathe::Scores scores = scorer.score(batch);
    std::filesystem::current_path(here);
    EXPECT_EQ(scores.rows, 3);
    EXPECT_EQ(scores.value.size(), 3u);
  } catch (...) {
    std::filesystem::current_path(here);
    throw;
  }
}

// A copy of `reader`'s table at `out` (float32 numeric columns, chunks of 100 rows, so that reads
// take blocks of as few) with some values replaced: {column, row, value}.
void write_changed_copy(TableReader& reader, const std::filesystem::path& out,
                        const std::vector<std::tuple<std::string, std::int64_t, float>>& changes) {
  std::vector<ColumnSpec> specs;
  for (const auto& c : reader.columns()) {
    specs.push_back({c.name, c.type == ColumnType::categorical ? StoredType::categorical_codes : StoredType::float32});
  }
  ColumnarWriter writer(out, specs, ColumnarWriteOptions{.chunk_rows = 100});
  const std::vector<float> all = read_all(reader);
  const std::int64_t n = reader.rows();
  for (std::size_t c = 0; c < specs.size(); ++c) {
    std::vector<float> column(all.begin() + static_cast<std::int64_t>(c) * n, all.begin() + static_cast<std::int64_t>(c + 1) * n);
    for (const auto& [name, row, value] : changes) {
      if (name == specs[c].name) column[static_cast<std::size_t>(row)] = value;
    }
    if (specs[c].stored == StoredType::categorical_codes) {
      std::vector<std::int32_t> codes(column.size());
      for (std::size_t r = 0; r < codes.size(); ++r) codes[r] = std::isnan(column[r]) ? -1 : static_cast<std::int32_t>(column[r]);
      writer.append_codes(c, codes);
      writer.set_categories(c, reader.columns()[c].categories);
    } else {
      writer.append_numeric(c, std::span<const float>(column));
    }
  }
  writer.close();
}

// `lathe eval`, `drift` and `report --eval` (predict_table, evaluate_table) refuse an infinite value
// that `lathe score` refuses, in the same words: the first row holding one (in it, the first of the
// model's numeric inputs), found as each block is prepared. One in a column the model clips is scored.
TEST_F(ScorerTest, PredictTableRefusesAnInfiniteValueAsTheScorerDoes) {
  TableReader reader(trained->regression_data);
  const std::filesystem::path infinite = trained->dir.file("infinite_eval.h5");
  // f4 in the fourth block of 500 rows, f2 and f1 later (f1 in the same block as f4, later rows).
  write_changed_copy(reader, infinite, {{"f4", 1700, -INFINITY}, {"f2", 2100, INFINITY}, {"f1", 1900, INFINITY}});
  const std::string expected = infinite.string() + ": column 'f4': row 1701 has an infinite value (-inf), which the model cannot score";
  const ModelFile model = load_model(trained->regression_model);
  Scorer scorer(trained->regression_model, "cpu");
  ScoreFileOptions options;
  options.read.block_rows = 500;
  std::string from_score, from_predict, from_evaluate;
  try {
    score_file(scorer, infinite, trained->dir.file("infinite_eval_scores.h5"), options);
  } catch (const InputError& e) {
    from_score = e.what();
  }
  try {
    TableReader data(infinite, options.read);
    std::vector<float> predictions;
    predict_table(DeviceContext::cpu(), model, data, predictions);
  } catch (const InputError& e) {
    from_predict = e.what();
  }
  try {
    evaluate_table(DeviceContext::cpu(), model, infinite, options.read);
  } catch (const InputError& e) {
    from_evaluate = e.what();
  }
  // Within a block the first row holding one is named (f4's, though f1 comes first in the model's
  // inputs), as the Scorer names it.
  EXPECT_EQ(from_score, expected);
  EXPECT_EQ(from_predict, expected);
  EXPECT_EQ(from_evaluate, expected);
  // In blocks of 100 rows too.
  options.read.block_rows = 100;
  try {
    TableReader data(infinite, options.read);
    std::vector<float> predictions;
    predict_table(DeviceContext::cpu(), model, data, predictions);
    ADD_FAILURE() << "an infinite value was scored";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), expected);
  }

  // A model that clips its columns puts the values on the bounds: predict_table scores them as the Scorer does.
  TrainTableOptions o;
  o.preparation.label = model.label;
  o.task = Task::regression;
  o.trainer.epochs = 1;
  o.trainer.progress = false;
  o.preparation.defaults.clip = ClipKind::quantile;
  o.preparation.defaults.impute = ImputeKind::median;
  o.preparation.defaults.scale = ScaleKind::robust;
  const std::filesystem::path clipped_model = trained->dir.file("clipped_model.h5");
  train_table(DeviceContext::cpu(), trained->regression_data, clipped_model, o);
  Scorer clipped(clipped_model, "cpu");
  TableReader data(infinite);
  std::vector<float> predictions;
  predict_table(DeviceContext::cpu(), load_model(clipped_model), data, predictions);
  expect_close(score_in_blocks(clipped, data), predictions, 1e-6);
}

TEST_F(ScorerTest, ScoreFileWritesTheContractColumnsAndLeavesNothingOnFailure) {
  Scorer scorer(trained->multiclass_model, "cpu");
  const std::filesystem::path out = trained->dir.file("scored.h5");
  ScoreFileOptions options;
  options.id_column = "f0";
  options.read.block_rows = 500;
  const ScoreFileReport report = score_file(scorer, trained->multiclass_data, out, options);
  TableReader scored(out);
  ASSERT_EQ(scored.rows(), report.rows);
  std::vector<std::string> names;
  for (const auto& c : scored.columns()) names.push_back(c.name);
  std::vector<std::string> want = {"f0"};
  for (const auto& label : scorer.classes()) want.push_back("probability_" + label);
  want.push_back("predicted_class");
  EXPECT_EQ(names, want);
  EXPECT_EQ(scored.columns().back().type, ColumnType::categorical);
  EXPECT_EQ(scored.columns().back().categories, scorer.classes());
  EXPECT_GT(report.summary.imputed.size(), 0u);  // 5% of the values are missing

  // The probabilities are predict_table's.
  TableReader reader(trained->multiclass_data);
  std::vector<float> expected;
  predict_table(DeviceContext::cpu(), load_model(trained->multiclass_model), reader, expected);
  const std::vector<float> written = read_all(scored);
  const std::int64_t rows = scored.rows();
  const std::int32_t k = static_cast<std::int32_t>(scorer.classes().size());
  for (std::int64_t r = 0; r < rows; r += 97) {
    for (std::int32_t c = 0; c < k; ++c) {
      EXPECT_FLOAT_EQ(written[static_cast<std::size_t>((1 + c) * rows + r)], expected[static_cast<std::size_t>(r * k + c)]);
    }
  }

  // A failing input leaves an earlier file at the output path untouched, and no temporary file.
  const std::filesystem::path keep = trained->dir.file("keep.csv");
  { std::ofstream(keep) << "earlier\n"; }
  const auto entries_before = trained->dir.entries();
  options.format = ScoreFormat::csv;
  options.id_column = "no_such_column";
  EXPECT_THROW(score_file(scorer, trained->multiclass_data, keep, options), InputError);
  EXPECT_EQ(trained->dir.entries(), entries_before);
  SynthOptions narrower;  // f0..f3: the model's input f4 is missing
  narrower.task = SynthTask::multiclass;
  narrower.rows = 100;
  narrower.features = 4;
  narrower.categorical = 2;
  narrower.progress = false;
  const std::filesystem::path missing_f4 = trained->dir.file("missing_f4.h5");
  write_synthetic(missing_f4, narrower);
  const auto entries_with_input = trained->dir.entries();
  try {
    score_file(scorer, missing_f4, keep, ScoreFileOptions{ScoreFormat::csv});
    FAIL() << "a file without the input f4 was scored";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'f4'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(trained->dir.entries(), entries_with_input);

  // A bad value in the fourth block fails the file after three blocks were written: the partial
  // output goes with it.
  const std::filesystem::path infinite = trained->dir.file("infinite.h5");
  write_changed_copy(reader, infinite, {{"f1", 1900, INFINITY}});
  const auto entries_with_infinite = trained->dir.entries();
  options.id_column.clear();
  options.format = ScoreFormat::h5;
  try {
    score_file(scorer, infinite, keep, options);
    FAIL() << "an infinite value was scored";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("row 1901"), std::string::npos) << e.what();
  }
  EXPECT_EQ(trained->dir.entries(), entries_with_infinite);
  std::ifstream in(keep);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "earlier");
}

TEST(ScorerIdText, NumericIdsAreWrittenInFullInCsv) {
  // Integral values as integers (never 1e+12), the rest in the shortest exact text, NaN empty.
  const std::vector<std::pair<double, std::string>> cases = {
      {1e12, "1000000000000"},
      {1e5, "100000"},
      {-3e15, "-3000000000000000"},
      {9007199254740992.0, "9007199254740992"},
      {1152921504606846976.0, "1152921504606846976"},  // 2^60
      {1e21, "1000000000000000000000"},
      {0.0, "0"},
      {7.0, "7"},
      {0.5, "0.5"},
      {123456789.25, "123456789.25"},
      {1e-7, "1e-07"},
      {0.1, "0.1"},
      {std::nan(""), ""}};
  for (const auto& [value, want] : cases) {
    std::string line;
    append_id_number(line, value);
    EXPECT_EQ(line, want) << want;
    if (!want.empty()) EXPECT_EQ(std::strtod(line.c_str(), nullptr), value) << want;  // reads back exactly
  }
}

TEST_F(ScorerTest, ScoreFilePassesFloatAndInt64IdsThroughExactly) {
  // The regression table with two id columns: float64 ids (round numbers among them) and int64 ids
  // beyond 2^53, as `lathe import` now stores such a column.
  TableReader reader(trained->regression_data);
  const std::int64_t n = reader.rows();
  const std::vector<double> round = {1e12, 1e5, 1e12 + 1, 0.5, std::nan(""), 42};
  std::vector<double> float_ids(static_cast<std::size_t>(n));
  std::vector<std::int64_t> int_ids(static_cast<std::size_t>(n));
  for (std::int64_t r = 0; r < n; ++r) {
    float_ids[static_cast<std::size_t>(r)] = round[static_cast<std::size_t>(r) % round.size()];
    int_ids[static_cast<std::size_t>(r)] = (std::int64_t{1} << 53) + 1 + r * 2 - (r % 2 ? 4 * r : 0);
  }
  const std::filesystem::path data = trained->dir.file("with_ids.h5");
  {
    std::vector<ColumnSpec> specs = {{"float_id", StoredType::float64}, {"int_id", StoredType::int64}};
    for (const auto& c : reader.columns()) {
      specs.push_back({c.name, c.type == ColumnType::categorical ? StoredType::categorical_codes : StoredType::float32});
    }
    ColumnarWriter writer(data, specs);
    writer.append_numeric(0, std::span<const double>(float_ids));
    writer.append_integers(1, std::span<const std::int64_t>(int_ids));
    const std::vector<float> all = read_all(reader);
    for (std::size_t c = 2; c < specs.size(); ++c) {
      const std::size_t from = c - 2;
      std::vector<float> column(all.begin() + static_cast<std::int64_t>(from) * n, all.begin() + static_cast<std::int64_t>(from + 1) * n);
      if (specs[c].stored == StoredType::categorical_codes) {
        std::vector<std::int32_t> codes(column.size());
        for (std::size_t r = 0; r < codes.size(); ++r) codes[r] = std::isnan(column[r]) ? -1 : static_cast<std::int32_t>(column[r]);
        writer.append_codes(c, codes);
        writer.set_categories(c, reader.columns()[from].categories);
      } else {
        writer.append_numeric(c, std::span<const float>(column));
      }
    }
    writer.close();
  }
  Scorer scorer(trained->regression_model, "cpu");
  for (const std::string id : {"float_id", "int_id"}) {
    ScoreFileOptions options;
    options.id_column = id;
    options.read.block_rows = 700;
    // CSV: the id texts.
    options.format = ScoreFormat::csv;
    const std::filesystem::path csv = trained->dir.file(id + ".csv");
    score_file(scorer, data, csv, options);
    std::ifstream in(csv);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, id + ",prediction");
    for (std::int64_t r = 0; r < n; ++r) {
      ASSERT_TRUE(std::getline(in, line)) << r;
      const std::string text = line.substr(0, line.find(','));
      std::string want;
      if (id == "int_id") {
        want = std::to_string(int_ids[static_cast<std::size_t>(r)]);
      } else {
        const double v = float_ids[static_cast<std::size_t>(r)];
        want = std::isnan(v) ? "" : v == 0.5 ? "0.5" : std::to_string(static_cast<std::int64_t>(v));
      }
      ASSERT_EQ(text, want) << "row " << r;
    }
    // h5: the id's stored type kept, values exact.
    options.format = ScoreFormat::h5;
    const std::filesystem::path h5 = trained->dir.file(id + ".out.h5");
    score_file(scorer, data, h5, options);
    h5::H5Handle file = h5::file_handle(H5Fopen(h5.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    h5::H5Handle dataset = h5::dataset_handle(H5Dopen2(file.get(), id.c_str(), H5P_DEFAULT));
    h5::H5Handle type = h5::datatype_handle(H5Dget_type(dataset.get()));
    if (id == "int_id") {
      EXPECT_GT(H5Tequal(type.get(), H5T_STD_I64LE), 0);
      std::vector<std::int64_t> got(static_cast<std::size_t>(n));
      ASSERT_GE(H5Dread(dataset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, got.data()), 0);
      EXPECT_EQ(got, int_ids);
    } else {
      EXPECT_GT(H5Tequal(type.get(), H5T_IEEE_F64LE), 0);
      std::vector<double> got(static_cast<std::size_t>(n));
      ASSERT_GE(H5Dread(dataset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, got.data()), 0);
      for (std::int64_t r = 0; r < n; ++r) {
        const double want = float_ids[static_cast<std::size_t>(r)];
        if (std::isnan(want)) {
          EXPECT_TRUE(std::isnan(got[static_cast<std::size_t>(r)])) << r;
        } else {
          EXPECT_EQ(got[static_cast<std::size_t>(r)], want) << r;
        }
      }
    }
  }
}

// The same scoring on each device: the GPU instance against the CPU's predictions.
class ScorerDeviceTest : public ScorerTest, public ::testing::WithParamInterface<DeviceKind> {};

TEST_P(ScorerDeviceTest, AgreesWithTheCpu) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  for (const auto& [data, model_path] : {std::pair{trained->binary_data, trained->binary_model},
                                         std::pair{trained->regression_data, trained->regression_model}}) {
    Scorer cpu(model_path, "cpu");
    Scorer device(model_path, GetParam() == DeviceKind::cpu ? "cpu" : "cuda");
    TableReader reader(data);
    const std::vector<float> want = score_in_blocks(cpu, reader);
    expect_close(score_in_blocks(device, reader), want, 1e-5);
  }
}

// predict_table's predictions as they were while it held the prepared table in memory: every row
// read, prepared and predicted at once (the reference the streamed path must equal).
std::vector<float> predictions_of_the_whole_table(const ModelFile& model, TableReader& reader) {
  const DeviceContext cpu = DeviceContext::cpu();
  const std::vector<float> values = read_all(reader);
  const BoundPreparation bound = bind_preparation(model.preparation, reader.columns());
  PreparedBlock prepared;
  const auto columns = static_cast<std::int64_t>(reader.columns().size());
  apply_preparation(cpu, bound, ColumnBlockView{values.data(), reader.rows(), columns}, prepared);
  const ModelShape shape = model_shape(model);
  std::unique_ptr<Model> m = make_model(cpu, shape, OptimizerConfig{}, 0);
  m->set_parameters(model.parameters);
  std::vector<float> out(static_cast<std::size_t>(reader.rows() * shape.outputs));
  predict(*m, PredictionLink{model.task, shape.outputs, model.target_mean, model.target_std},
          PreparedRowsView{prepared.dense.data(), prepared.slot.data(), prepared.value.data(), reader.rows()}, out);
  return out;
}

// `lathe eval`, `drift` and `report --eval` (predict_table, evaluate_table) read, prepare and predict
// a file block by block, holding the predictions and a block or two rather than the prepared table:
// over blocks of 1000 rows (the files' chunks), the predictions of the whole table at once, bit for
// bit on the CPU, which are also the Scorer's (`lathe score`); and evaluate_table's metrics are
// compute_metrics of them.
TEST_P(ScorerDeviceTest, EvalPredictsBlockByBlockWhatTheWholeTablePredicts) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const bool exact = GetParam() == DeviceKind::cpu;
  for (const auto& [data, model_path] : {std::pair{trained->binary_data, trained->binary_model},
                                         std::pair{trained->multiclass_data, trained->multiclass_model},
                                         std::pair{trained->regression_data, trained->regression_model}}) {
    SCOPED_TRACE(model_path.string());
    const ModelFile model = load_model(model_path);
    TableReadOptions read;
    read.block_rows = 1000;
    TableReader reader(data, read);
    ASSERT_GT(reader.rows(), 2 * reader.block_rows());  // three blocks or more, the last a short one
    ASSERT_NE(reader.rows() % reader.block_rows(), 0);
    const std::vector<float> whole = predictions_of_the_whole_table(model, reader);
    std::vector<float> streamed = {-1.0f};  // overwritten, not appended to
    predict_table(ctx, model, reader, streamed);
    Scorer scorer(model_path, "cpu");
    const std::vector<float> scored = score_in_blocks(scorer, reader);
    if (exact) {
      EXPECT_EQ(streamed, whole);
      EXPECT_EQ(streamed, scored);
    } else {
      expect_close(streamed, whole, 1e-5);
    }

    const MetricSet got = evaluate_table(ctx, model, data, read);
    const MetricSet want = compute_metrics(DeviceContext::cpu(), model.task, whole, evaluation_labels(model, reader), {},
                                           static_cast<std::int32_t>(model.classes.size()));
    ASSERT_EQ(got.values.size(), want.values.size());
    for (const auto& [name, value] : want.values) {
      if (exact) {
        EXPECT_EQ(got.values.at(name), value) << name;
      } else {
        EXPECT_NEAR(got.values.at(name), value, 1e-5 * std::max(1.0, std::fabs(value))) << name;
      }
    }
    EXPECT_EQ(got.confusion, want.confusion);
  }
}

LATHE_INSTANTIATE_FOR_DEVICES(ScorerDeviceTest);

}  // namespace
}  // namespace lathe
