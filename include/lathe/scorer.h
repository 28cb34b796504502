// Batch scoring with a trained Lathe model: load a model file once, then score batches of rows held
// in memory, on the CPU or a GPU. `lathe score` runs this same code block by block over files.
// This header and <lathe/error.h> are what `cmake --install` puts in include/lathe (standard
// library only); a program links the package Lathe::lathe. For example (tests/scorer_test.cpp
// compiles and runs these lines):
//
//   lathe::Scorer scorer("model.h5", "cpu");
//   std::vector<double> tenure = {1, 34, 2};
//   std::vector<std::int32_t> contract_codes = {0, 1, 0};
//   std::vector<std::string> payment = {"Mailed check", "", "Bank transfer (automatic)"};
//   std::vector<lathe::BatchColumn> batch = {  // "" above: a missing label
//       lathe::BatchColumn::numeric("tenure", tenure),
//       lathe::BatchColumn::categorical_codes("contract", contract_codes,
//                                             {"Month-to-month", "One year"}),
//       lathe::BatchColumn::categorical_labels("payment_method", payment)};
//   const lathe::Scores scores = scorer.score(batch);
//
// Before anything is scored, the batch's columns are matched to the model's inputs by name (their
// order does not matter): a missing input column, or one whose type changed (numeric <->
// categorical), is an InputError naming the column; columns the model does not use are ignored and
// named in a note. Categorical values are matched to the training vocabulary by label, never by
// code, so files imported separately agree; a label never seen in training goes to the model's
// "unknown" slot (counted); the empty label "" is a missing value, as code -1 is (and as "" is in
// an HDF5 string column or an ONNX input). A missing numeric value (NaN) is imputed with the fill
// value fitted at training time (counted per column). The model's label column, when present, is
// ignored.
//
// Numbers: the model computes in float32, and numeric values are converted to it. An infinite value
// (or a finite float64 beyond float32's range, |x| > 3.4028235e38) in a column that the model's
// preparation clips to finite bounds on both sides (`--clip`) is put on the nearer bound, as `lathe
// score` and the exported ONNX graph do; in any other column the model has no answer for it and it
// is an InputError naming the column and row (and, for a float64 beyond float32's range, the
// value). Categorical codes travel through the engine as float32 too, which holds every integer up
// to 2^24 exactly: a batch column may have any number of labels, but at most 2^24 + 1 distinct
// codes in use in one batch (more is an InputError naming the column and row).
//
// Errors: everything is thrown as a lathe::Error subclass (include/lathe/error.h): InputError for
// input that is wrong (its subclass UsageError for a device string that is not "auto", "cpu",
// "cuda" or "cuda:N"), Hdf5Error when HDF5 cannot read the model file (a damaged file: the message
// names the file and HDF5's reason), CudaError for a failing GPU. std::bad_alloc can come through.
//
// Threads: a Scorer may be called from several threads; its calls run one at a time (a mutex inside
// it), each on every core through OpenMP. To score in parallel on the CPU, give each thread a
// Scorer of its own and fewer OpenMP threads (omp_set_num_threads, or OMP_NUM_THREADS, so that
// threads x OpenMP threads ~ cores). A Scorer holds the model's parameters once (in the model that
// scores, without optimizer state: 4 bytes per weight, fm factors included; while it is
// constructed, twice) and its fitted preparation: about 100 KB for a model of a few dozen columns,
// about 70 MB for one with a table of 2^24 hashed crosses (not the training profile's labels); plus
// scratch that grows to the largest batch scored, about 4 bytes x rows x (columns + outputs) (90 MB
// after a batch of 1M rows of 19 columns), and a tile of 2048 prepared rows per OpenMP thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <lathe/error.h>

namespace lathe {

// The version of the library ("0.1.0"), as `lathe --version` and find_package(Lathe) give it.
const char* version();

enum class ScoringTask { regression, binary, multiclass };
const char* scoring_task_name(ScoringTask task);  // "regression", "binary", "multiclass"

// One column of an in-memory batch, matched to the model's inputs by name. Non-owning: the spans
// must stay valid until score() returns. Numeric values, float64 or float32, are converted to
// float32 (the precision the model computes in), as Lathe's file reader does; NaN is missing. A
// categorical column gives either each row's label ("" = missing), or a code per row (-1 = missing)
// and the label of each code ("" = missing too); codes are only an encoding of the labels and need
// not match the training file's. Make one with numeric(), categorical_labels() or
// categorical_codes().
struct BatchColumn {
  std::string name;
  bool categorical = false;
  std::span<const double> values;       // numeric: one value per row (float64)
  std::span<const float> float_values;  // numeric: one value per row (float32; values empty)
  std::span<const std::int32_t> codes;  // categorical: one code per row, -1 = missing
  std::vector<std::string> labels;      // categorical: labels[code]
  std::span<const std::string> texts;   // categorical: one label per row (codes empty)

  static BatchColumn numeric(std::string name, std::span<const double> values);
  static BatchColumn numeric(std::string name, std::span<const float> values);
  // One label per row, as a request or a CSV row holds it: {"Month-to-month", "", "One year"}.
  static BatchColumn categorical_labels(std::string name, std::span<const std::string> labels);
  static BatchColumn categorical_codes(std::string name, std::span<const std::int32_t> codes,
                                       std::vector<std::string> labels);
  std::int64_t rows() const;  // the length of the span the column was made with
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
  // standardization undone, and a --target-transform's exp or expm1 applied, in double, before the
  // cast to float). Empty for classification.
  std::vector<float> value;
  // Classification: probability[r * classes + k] = P(class k | row r), classes in
  // Scorer::classes() order; each row sums to 1. Binary: k = 1 is the positive class, and
  // probability[r * 2 + 1] is exactly the model's P(positive); k = 0 holds 1 - that. Empty for
  // regression.
  std::vector<float> probability;
  // Classification: the index (into Scorer::classes()) of the predicted class: binary, positive
  // when P(positive) > 0.5; multiclass, the most probable class (ties to the lowest index).
  std::vector<std::int32_t> predicted_class;

  // Binary only: P(positive class) of `row`, probability[row * 2 + 1]. Throws lathe::Error for a
  // regression's or a multiclass task's scores and for a row outside [0, rows).
  float positive_probability(std::int64_t row) const {
    if (task != ScoringTask::binary) {
      throw Error(std::string("Scores::positive_probability: the scores are a ") +
                  scoring_task_name(task) + " task's, not a binary one's");
    }
    if (row < 0 || row >= rows) {
      throw Error("Scores::positive_probability: row " + std::to_string(row) + " is outside the " +
                  std::to_string(rows) + " rows scored");
    }
    return probability[static_cast<std::size_t>(row * 2 + 1)];
  }
};

// Counts gathered while scoring; score() adds to it, so one summary can cover many batches.
struct ScoringSummary {
  std::int64_t rows = 0;
  // Numeric input column -> values that were missing (NaN) and replaced by the training fill value.
  std::map<std::string, std::int64_t> imputed;
  // Categorical input column -> values whose label was not seen in training (the unknown slot).
  std::map<std::string, std::int64_t> unknown_categories;
  // Categorical input column -> values that were missing (code -1 or label ""; scored with the
  // column's missing slot).
  std::map<std::string, std::int64_t> missing_categories;
  // Regression predictions that are infinite: a model fitted to log(y) (--target-transform) whose
  // fit lies beyond exp's range, a value far outside the training data. Written as inf.
  std::int64_t infinite_predictions = 0;

  void add(const ScoringSummary& other);
};

// A loaded model on a chosen device. Calls on one Scorer may come from several threads and run one
// at a time (see "Threads" above: one Scorer per thread for parallel scoring). Move-only; a
// moved-from Scorer may only be destroyed or assigned to.
class Scorer {
 public:
  // Loads and checks the model file and selects the device: "cpu", "auto" (the GPU if usable, else
  // the CPU, with a note on stderr), "cuda" or "cuda:N". Throws InputError naming the file when it
  // is missing, not a Lathe model, of a newer format or inconsistent; Hdf5Error when HDF5 cannot
  // read it (a damaged file); UsageError for a device string of another form; InputError when the
  // GPU asked for is not usable; CudaError when the GPU fails while the model is set on it.
  explicit Scorer(const std::filesystem::path& model_path, const std::string& device = "cpu");
  ~Scorer();
  Scorer(Scorer&&) noexcept;
  Scorer& operator=(Scorer&&) noexcept;

  ScoringTask task() const;
  // Class labels: binary {negative, positive}; multiclass in the model's class order. Empty for
  // regression.
  const std::vector<std::string>& classes() const;
  const std::string& label() const;  // the label column the model was trained on
  // The columns a batch must have, in the training file's column order (the order of the exported
  // ONNX graph's inputs); a batch may give them in any order.
  const std::vector<ModelInput>& inputs() const;
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
  // Hdf5Error when HDF5 cannot read `data`.
  void check_data_file(const std::filesystem::path& data) const;

  // Scores an in-memory batch of named columns (all the same length; names unique). Throws
  // InputError for a schema mismatch (a model input missing or retyped), columns of different
  // lengths, a repeated name, a code outside its labels, more than 2^24 + 1 distinct codes of a
  // column in use, or an infinite value where the model has none (see "Numbers" above), naming the
  // column (and the row, counted from 1); CudaError when the GPU fails. Nothing is added to
  // `summary` when it throws. Notes go to `notes` when given: from matching the columns (the
  // columns the model does not use), and per categorical column with labels not seen in training,
  // a few of them and those that are a training label spelled otherwise ("YES" for "Yes": labels
  // are matched exactly, so such rows score as unknown).
  Scores score(std::span<const BatchColumn> columns, ScoringSummary* summary = nullptr,
               std::vector<std::string>* notes = nullptr);

 private:
  friend struct ScorerInternals;  // io/scorer.cpp: the block scoring of `lathe score` (io/scoring_input.h)
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe
