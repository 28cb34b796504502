// Batch scoring with a trained Lathe model: load a model file once, then score batches of rows held
// in memory, on the CPU or a GPU. `lathe score` runs this same code block by block over files.
//
//   lathe::Scorer scorer("model.h5", "cpu");
//   std::vector<double> tenure = {1, 34, 2};
//   std::vector<std::int32_t> contract_codes = {0, 1, 0};
//   std::vector<lathe::BatchColumn> batch = {
//       lathe::BatchColumn::numeric("tenure", tenure),
//       lathe::BatchColumn::categorical("contract", contract_codes, {"Month-to-month", "One year"})};
//   const lathe::Scores scores = scorer.score(batch);
//
// Before anything is scored, the batch's columns are matched to the model's inputs by name (their
// order does not matter): a missing input column, or one whose type changed (numeric <->
// categorical), is an InputError naming the column; columns the model does not use are ignored and
// named in a note. Categorical values are matched to the training vocabulary by label, never by
// code, so files imported separately agree; a label never seen in training goes to the model's
// "unknown" slot (counted). A missing numeric value (NaN) is imputed with the fill value fitted at
// training time (counted per column); an infinite numeric value is an InputError naming the column
// and row. The model's label column, when present, is ignored.
//
// This header is self-contained (standard library only) apart from two types that only the
// block-oriented interface uses and that callers of it include themselves: lathe::ColumnInfo
// (io/table_reader.h) and lathe::ColumnBlockView (runtime/column_block.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lathe {

struct ColumnInfo;       // io/table_reader.h: a column's name, type and category labels
struct ColumnBlockView;  // runtime/column_block.h: a column-major float32 block of rows

enum class ScoringTask { regression, binary, multiclass };
const char* scoring_task_name(ScoringTask task);  // "regression", "binary", "multiclass"

// One column of an in-memory batch, matched to the model's inputs by name. Non-owning: the spans
// must stay valid until score() returns. Numeric values are converted to float32 (the precision the
// model computes in), as Lathe's file reader does; NaN is missing. A categorical column gives a code
// per row (-1 = missing) and the label of each code; codes are only an encoding of the labels and
// need not match the training file's.
struct BatchColumn {
  std::string name;
  bool categorical = false;
  std::span<const double> values;       // numeric: one value per row
  std::span<const std::int32_t> codes;  // categorical: one code per row, -1 = missing
  std::vector<std::string> labels;      // categorical: labels[code]

  static BatchColumn numeric(std::string name, std::span<const double> values);
  static BatchColumn categorical_codes(std::string name, std::span<const std::int32_t> codes,
                                       std::vector<std::string> labels);
};

// One input column of the model, as it was at training time.
struct ModelInput {
  std::string name;
  bool categorical = false;
  bool missing_in_training = false;  // the training rows had missing values (categorical: when the
                                     // model stores its training profile; else false)
  std::vector<std::string> labels;   // categorical: the training vocabulary (empty when hashed)
};

// Predictions for the rows of one batch, in row order. Host memory, owned.
struct Scores {
  ScoringTask task = ScoringTask::regression;
  std::int64_t rows = 0;
  std::int32_t classes = 0;  // 0 for regression, else the number of classes (binary: 2)
  // Regression: the prediction of each row in the label's original units (the model's target
  // standardization undone). Empty for classification.
  std::vector<float> value;
  // Classification: probability[r * classes + k] = P(class k | row r), classes in
  // Scorer::classes() order; each row sums to 1. Binary: k = 1 is the positive class, and
  // probability[r * 2 + 1] is exactly the model's P(positive); k = 0 holds 1 - that. Empty for
  // regression.
  std::vector<float> probability;
  // Classification: the index (into Scorer::classes()) of the predicted class: binary, positive
  // when P(positive) > 0.5; multiclass, the most probable class (ties to the lowest index).
  std::vector<std::int32_t> predicted_class;

  float positive_probability(std::int64_t row) const { return probability[static_cast<std::size_t>(row * 2 + 1)]; }
};

// Counts gathered while scoring; score() adds to it, so one summary can cover many batches.
struct ScoringSummary {
  std::int64_t rows = 0;
  // Numeric input column -> values that were missing (NaN) and replaced by the training fill value.
  std::map<std::string, std::int64_t> imputed;
  // Categorical input column -> values whose label was not seen in training (the unknown slot).
  std::map<std::string, std::int64_t> unknown_categories;
  // Categorical input column -> values that were missing (scored with the column's missing slot).
  std::map<std::string, std::int64_t> missing_categories;

  void add(const ScoringSummary& other);
};

class Scorer;

// A Scorer's model matched to the columns of one input (a file's schema, or a batch): which column
// feeds which model input, categorical codes remapped by label. Made by Scorer::bind, which checks
// the schema. It refers to its Scorer, which must outlive it. Move-only.
class ScoringInput {
 public:
  ~ScoringInput();
  ScoringInput(ScoringInput&&) noexcept;
  ScoringInput& operator=(ScoringInput&&) noexcept;

  // Notes about the schema: columns the model does not use (ignored), the model's label present.
  const std::vector<std::string>& notes() const;
  // The number of columns the input has (the block's column count).
  std::int64_t columns() const;

 private:
  friend class Scorer;
  struct Impl;
  explicit ScoringInput(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Scorer {
 public:
  // Loads and checks the model file (InputError naming the file when it is missing, corrupt or of
  // a newer format) and selects the device: "cpu", "auto" (the GPU if usable, else the CPU, with a
  // note on stderr), "cuda" or "cuda:N" (InputError when that GPU is not usable).
  explicit Scorer(const std::filesystem::path& model_path, const std::string& device = "cpu");
  ~Scorer();
  Scorer(Scorer&&) noexcept;
  Scorer& operator=(Scorer&&) noexcept;

  ScoringTask task() const;
  // Class labels: binary {negative, positive}; multiclass in the model's class order. Empty for
  // regression.
  const std::vector<std::string>& classes() const;
  const std::string& label() const;  // the label column the model was trained on
  const std::vector<ModelInput>& inputs() const;  // the columns a batch must have
  const std::filesystem::path& model_path() const;
  // "cpu (N threads)" or "cuda:0 (NVIDIA H200, sm_90)".
  const std::string& device_description() const;

  // The name of the file written by `lathe prepare` that the model was trained on ("p.h5"), or ""
  // when it was trained on raw data. Such a model's inputs are prepared columns: apply that
  // preparation first (`lathe prepare RAW.h5 PREPARED.h5 --from MODEL.h5`); a batch in memory is
  // not checked for it.
  const std::string& trained_on_prepared() const;
  // Throws InputError when the file `data` does not carry the preparation the model's inputs need:
  // the model was trained on a prepared file and `data` carries another fitted preparation or none,
  // or `data` holds the model's own preparation already applied. The message names both files and
  // the `lathe prepare --from` command that prepares the data. `lathe score` runs it on every input.
  void check_data_file(const std::filesystem::path& data) const;
  // Matches the model's inputs to `columns` (a file's or batch's schema, in its own order). Throws
  // InputError, starting with `source` (a file name, say), naming the first input column that is
  // missing or whose type changed. Nothing is scored. The notes name the columns the model does not
  // read, except those in `passed_through` (an id column the caller copies to its output).
  ScoringInput bind(const std::vector<ColumnInfo>& columns, const std::string& source = "input",
                    const std::vector<std::string>& passed_through = {}) const;

  // Scores a block of rows in TableReader::read_block's layout (column-major float32:
  // block.values[c * block.rows + r]; NaN missing; categorical columns hold their codes as floats)
  // whose columns are those `input` was bound to. `first_row` (0-based) is the block's first row
  // within its source, for error messages ("row N" counts from 1). `out` is resized and
  // overwritten; counts are added to `summary` when given. Throws InputError for an infinite
  // numeric value (naming the column and row), Error when the block's column count differs from
  // the input's. Not thread-safe: one score() at a time per Scorer (it reuses scratch buffers).
  // `alongside`, when given, runs once on one of the scoring threads while the others score (then
  // that thread joins them): I/O that should overlap the scoring without a thread of its own
  // competing for the cores, as `lathe score` reads the next block and writes the previous one
  // here. An exception from it is rethrown after the block is scored.
  void score(const ScoringInput& input, const ColumnBlockView& block, std::int64_t first_row, Scores& out,
             ScoringSummary* summary = nullptr, const std::function<void()>& alongside = {});

  // Scores an in-memory batch of named columns (all the same length; names unique): bind, then
  // score. Throws InputError for a schema mismatch, columns of different lengths, a repeated name, a
  // code outside its labels, or an infinite value. Notes from the binding go to `notes` when given.
  Scores score(std::span<const BatchColumn> columns, ScoringSummary* summary = nullptr,
               std::vector<std::string>* notes = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe
