// `lathe train` and `lathe eval` on files: the label mapped to what the model trains on (string
// labels, the positive class), a deterministic stratified validation split, preparation fitted on
// the training rows only, the prepared rows held in memory (on the device after the first pass,
// on the GPU backend), the trainer, and the model file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "io/checkpoint.h"
#include "io/model_file.h"
#include "io/table_reader.h"
#include "models/model.h"
#include "runtime/column_block.h"
#include "runtime/device_context.h"
#include "runtime/label_spelling.h"
#include "runtime/metrics.h"
#include "runtime/preparation.h"
#include "runtime/trainer.h"

namespace lathe {

// `lathe train --refit`: whether the saved model is trained again, from the start, on the training
// and validation rows together for the epochs the validation rows chose (TrainReport::refit_rows).
// Held-out rows are rows the model does not fit: on a table of thousands of rows a fifth of them
// is a fifth of what it could learn from (5000 x 1200 binary: test AUC 0.906 held out, 0.920
// refitted; scikit-learn's LogisticRegression, on every row, 0.919-0.923), and the epoch count is
// what the validation rows are needed for. `automatic` refits a linear model when --valid-fraction
// (given, or the automatic one) holds out at least kRefitMinValidShare of DATA's rows (tables up to
// 100,000 rows at the automatic fraction), where the refit costs one more training run of a small table; never
// an fm (not convex: the epochs one run chose need not suit another), a separate --valid file or
// streamed training rows. A refit that scores the validation rows it trained on clearly worse than
// the chosen epoch scored them unseen (kRefitWorseMargin) is dropped, with a note.
enum class RefitChoice { automatic, yes, no };
inline constexpr double kRefitMinValidShare = 0.1;
// A refit is dropped when it scores the validation rows worse than the chosen epoch by more than
// this times the validation metric's constant-model scale (constant_metric_scale).
inline constexpr double kRefitWorseMargin = 0.05;

struct TrainTableOptions {
  PreparationOptions preparation;  // preparation.label is the label column
  bool dedup = false;
  TableReadOptions read;
  Task task = Task::binary;
  ModelKind kind = ModelKind::linear;
  std::int32_t factors = 8;
  bool huber = false;
  float huber_delta = 1.0f;  // in the units of the label fitted: t(label) under a target transform
  // Regression: `--target-transform`; nullopt when not given, which is none, or --init-model's.
  std::optional<TargetTransform> target_transform;
  std::string positive;       // binary: the positive label ("" = the second in sorted order)
  std::string weight_column;  // sample weights ("" = none)
  bool balanced_class_weights = false;
  OptimizerConfig optimizer;
  TrainerOptions trainer;
  // trainer.batch is the default rather than the user's choice: a small training set then takes
  // smaller batches (default_batch_for, runtime/trainer.h).
  bool default_batch = false;
  // trainer.epochs likewise: a small training set may then take more epochs (default_epochs_for).
  bool default_epochs = false;
  // trainer.learning_rate likewise: an fm with a hashed categorical column then takes
  // kFmHashedLearningRate.
  bool default_lr = false;
  // optimizer.kind likewise: a linear model or fm over wide dense data then takes plain SGD
  // (kWideDenseRowsPerFeature, io/train_table.cpp).
  bool default_optimizer = false;
  // preparation.defaults.scale likewise: a file written by `lathe prepare` is then not scaled again
  // (none), so that `lathe prepare OPTS` + `lathe train` trains on what `lathe train OPTS` does.
  bool default_scale = false;
  // trainer.patience likewise: without validation rows it is then 0 (every epoch runs).
  bool default_patience = false;
  RefitChoice refit = RefitChoice::automatic;
  // trainer.overfit_margin is this times the constant model's validation metric
  // (constant_metric_scale); 0: no such stop.
  double stop_margin = 0.05;
  // Options the user gave whose use is known only here: a note when the run has none for them.
  bool hash_buckets_given = false;  // --hash-buckets, without a categorical x categorical cross
  bool window_rows_given = false;   // --window-rows, when the rows are not streamed
  // The share of the rows held out for validation; 0 = no validation split; below 0 (the default):
  // automatic_valid_fraction of the rows.
  double valid_fraction = -1.0;
  std::filesystem::path valid_path;  // a separate validation file (overrides valid_fraction)
  std::string options_json = "{}";   // stored in the model file
  // Checkpoints (io/checkpoint.h) every trainer.checkpoint_every epochs to this path; "{epoch}" in
  // it is replaced by the epoch number (else each checkpoint replaces the previous one).
  std::filesystem::path checkpoint_path;
  // Continue from this checkpoint ("" = start afresh). It must match the data and options: the same
  // fitted preparation, task, classes, label, model kind and shape, else InputError naming it.
  std::filesystem::path resume_path;
  // Streaming (runtime/trainer.h, TrainingWindows): the training rows are read, prepared and
  // trained window by window instead of held, when `stream` is set or when prepared they would take
  // more than memory_budget_bytes (0 = a quarter of the physical memory, and on the GPU at most half
  // its free memory). Windows of window_rows file rows (0 = 2^20), rounded up to whole blocks.
  bool stream = false;
  double memory_budget_bytes = 0;
  std::int64_t window_rows = 0;
  // Retraining: warm-start from this earlier model ("" = none). Its task, label, classes, model
  // kind and factors must match (else InputError naming it); its fitted preparation and target
  // scaling are kept unless refit_prep, which fits the preparation on this data and carries the
  // weights of every feature the two have in common (runtime/warm_start.h).
  std::filesystem::path init_model;
  bool refit_prep = false;
};

// The checks of an --init-model that need no data, made by train_table and, before DATA is read,
// by `lathe train` (so that a binary OLD given to a multiclass run is named as such, not as a
// missing column): InputError naming OLD when its task, label, model kind or factors differ from
// this run's. Its classes are checked against the data's labels by train_table.
void check_init_model_kind(const ModelFile& init, const TrainTableOptions& options);

// The path of the checkpoint after `epoch`: "{epoch}" in `pattern` replaced by the number.
std::filesystem::path checkpoint_path_for(const std::filesystem::path& pattern, std::int32_t epoch);

struct TrainReport {
  std::int64_t train_rows = 0;
  std::int64_t valid_rows = 0;
  std::int64_t batch = 0;  // the minibatch rows trained with
  float learning_rate = 0.0f;  // the --lr trained with (given, or the default for this model and data)
  OptimizerKind optimizer =
      OptimizerKind::adam;      // the --optimizer trained with (given, or the default)
  std::int32_t max_epochs = 0;  // the most epochs allowed (--epochs, or default_epochs_for)
  std::int64_t duplicates = 0;
  bool streamed = false;  // the training rows were streamed window by window
  // The refit (RefitChoice): the rows and epochs the saved model was trained on afterwards, from
  // the start; 0 when it was not (the saved model is then the kept epoch's). `outcome` and
  // `best_valid` stay those of the run that chose the epoch: the refitted model has fitted the
  // validation rows, which measure it no longer.
  std::int64_t refit_rows = 0;
  std::int32_t refit_epochs = 0;
  double refit_train_loss = 0.0;  // the refit's last epoch's training loss
  TrainOutcome outcome;
  MetricSet best_valid;  // the kept epoch's validation metrics (empty without validation)
  // --init-model's metrics on the validation rows before the first epoch (empty without
  // --init-model, validation rows, or when resumed).
  MetricSet init_model_valid;
  double seconds = 0.0;
  // Where the seconds went, in order: "read" (the label, weight and duplicate passes), "profile",
  // "prepare" (the prepared rows gathered), "train" (every epoch, with validation) and "save" (the
  // prediction summary and the model file). Their sum is `seconds`, less the checks between them.
  std::vector<std::pair<std::string, double>> stage_seconds;
  std::vector<std::string> notes;
};

// The shape of a model over `fitted`'s expanded features: the task's loss (squared, or huber with
// `huber`, for regression; logistic; softmax over `classes` outputs for multiclass, else 1 output),
// the layout of its dense features and sparse groups (group offsets owned by the shape), and
// `factors` for an fm (0 for linear).
ModelShape shape_for(const FittedPreparation& fitted, Task task, ModelKind kind, std::int32_t classes,
                     bool huber, float huber_delta, std::int32_t factors);

// The share of `rows` rows that `lathe train` holds out for validation unless told: 20% of them,
// but no more than 10,000 rows until 5% of them is more (200,000 rows on). Held-out rows are rows the
// model does not fit, and a few thousand choose an epoch as well as hundreds of thousands: on 160k
// rows of 50 classes, 10,000 held out instead of 32,000 took the test log-loss from 2.4119 to 2.3940
// (bench/RESULTS.md, session 24). A table of up to 50,000 rows keeps its 20%.
double automatic_valid_fraction(std::int64_t rows);

// The options (ModelFile::options_json's form) of the run that fitted `model`'s preparation: its
// own, or, for a model retrained keeping its parent's (--init-model without --refit-prep), those
// its file records under "kept_preparation_options" (train_table writes them, from the parent's
// own or kept ones); "" when not known (a file written before, or a parent's that was not).
std::string preparation_run_options(const ModelFile& model);

TrainReport train_table(const DeviceContext& ctx, const std::filesystem::path& data,
                        const std::filesystem::path& model_path, const TrainTableOptions& options);

// A categorical input's values whose label the model never saw (or saw too rarely to give it a
// slot: --min-category-count), which take the column's unknown slot: as `lathe score` counts them
// (a hashed column has no unknown slot), with the first few such labels, for a note.
// Those that are a training label spelled otherwise (in letter case, or with spaces around it: an
// export's "TRUE" for training's "True") are named with their rows, for a note that says so: they
// are not matched (runtime/label_spelling.h).
struct UnseenLabels {
  std::string column;
  std::int64_t count = 0;
  std::vector<std::string> examples;  // distinct, at most kUnseenLabelExamples
  std::vector<SpelledOtherwise> spelled_otherwise;
  // While tallying one file: its label codes checked so far (at most kSpellingsChecked), each with
  // its index in spelled_otherwise or -1, and the model's labels folded, made at the first unseen
  // label.
  std::unordered_map<std::int32_t, std::int32_t> checked_codes;
  std::shared_ptr<const FoldedLabels> folded_vocabulary;
};
inline constexpr std::size_t kUnseenLabelExamples = 3;

// Adds the unseen labels of `block` (rows of the file whose columns are `columns`, bound to the
// preparation as `bound`) to `tally`, one entry per categorical encoding that has any.
void tally_unseen_labels(const BoundPreparation& bound, const std::vector<ColumnInfo>& columns,
                         const ColumnBlockView& block, std::vector<UnseenLabels>& tally);

// The note `lathe eval` and `lathe train --valid` print for a column's unseen labels, worded as
// `lathe score`'s.
std::string unseen_labels_note(const UnseenLabels& unseen);

// The model's metrics on labeled data (the label column named in the model). InputError for a data
// file that lacks an input of the model or whose type changed (naming the file, the column and the
// model, as `lathe score` does) and for a bad label (evaluation_labels). With `weight_column`, the
// metrics are weighted by that column's sample weights, as training's validation metrics are
// (`lathe eval --weight`): a weight that is missing, negative or infinite, weights summing to 0, a
// categorical column or the label are refused as `lathe train --weight` refuses them. Memory: the
// labels, the weights and predict_table's (one float per row each, the predictions one per output).
// `infinite_predictions` (optional) receives the number of rows whose prediction is infinite: a
// regression's fit beyond exp's range (--target-transform) or float's; it makes rmse, mae and r2
// infinite. Always 0 for a classification, whose probabilities are finite.
// `unseen` (optional) receives the labels the model never saw, as predict_table gives them.
MetricSet evaluate_table(const DeviceContext& ctx, const ModelFile& model, const std::filesystem::path& data,
                         const TableReadOptions& read = {}, const std::string& weight_column = "",
                         std::int64_t* infinite_predictions = nullptr, std::vector<UnseenLabels>* unseen = nullptr);

// The sample weights of every row of `reader` in its column `weight_column`, by which
// evaluate_table (`lathe eval --weight`) and drift_table (`lathe drift --weight`) weight the
// metrics: InputError naming --weight and the columns when the column is missing, or a categorical
// column; UsageError when it is the label; InputError naming the file, the column and the first bad
// row for a weight that is missing, negative or infinite, and when the weights sum to 0.
std::vector<float> evaluation_weights(const ModelFile& model, TableReader& reader, const std::string& weight_column);

// The column the model's training run weighted its rows by (`lathe train --weight`, as the stored
// options give it), which weighted the validation metrics stored in the model too; "" for none.
std::string training_weight_column(const ModelFile& model);

// The model's label of every row of `reader`, as compute_metrics takes it: the value (regression)
// or the index of the class in model.classes (matched by label). InputError naming the file (and
// the column) when a regression's label is categorical there; naming the file and the first bad
// row: no label column, a missing or infinite label, or a label that was not one of
// the model's classes ("label 'Maybe' in row 4 (column 'churn') was not a class of the model m.h5
// (No, Yes)"). `missing_hint` ends the message of a missing label column (what to do instead).
std::vector<float> evaluation_labels(const ModelFile& model, TableReader& reader,
                                     const std::string& missing_hint = {});

// Scores of every row of a table by a loaded model: predictions as predict (runtime/trainer.h) gives them,
// rows x outputs floats, `predictions` resized to that. The table's columns are checked against the
// model's inputs first (io/model_inputs.h), then the rows are read, prepared and predicted block by
// block (the reader's blocks) by the block scoring `lathe score` runs (io/block_scorer.h): memory
// holds the predictions and two blocks of input rows, never the prepared table, and a row gets
// exactly the prediction `lathe score` gives it. An infinite value the model cannot score is refused
// as `lathe score` refuses it (throw_infinite_value, found in the block that holds it).
// `unseen` (optional) receives the labels of the model's categorical inputs that it never saw.
void predict_table(const DeviceContext& ctx, const ModelFile& model, TableReader& reader,
                   std::vector<float>& predictions, std::vector<UnseenLabels>* unseen = nullptr);

// An infinite value in a numeric input of a model (float32 infinity: also a float64 value beyond
// float32's range, +-3.4e38). A column that the fitted preparation clips to finite bounds on both
// sides puts it on a bound (as the exported ONNX graph does); for any other column the model has no
// answer. Every command that scores rows refuses one there with this one message: lathe::Scorer
// (`lathe score`) and predict_table (`lathe eval`, `lathe drift`, `lathe report --eval`), e.g.
//   "data.h5: column 'tenure': row 4 has an infinite value (inf), which the model cannot score"
// `row` counts the source's rows from 0 (the message counts from 1).
bool scores_infinite_values(const NumericTransform& transform);
[[noreturn]] void throw_infinite_value(const std::string& source, const std::string& column, std::int64_t row,
                                       float value);

}  // namespace lathe
