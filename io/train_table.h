// `lathe train` on files: the label mapped to what the model trains on (string labels, the
// positive class: io/label_map.h), a deterministic stratified validation split
// (io/validation_split.h), preparation fitted on the training rows only, the prepared rows held in
// memory (on the device after the first pass, on the GPU backend) or streamed, the trainer, and the
// model file. It includes what the callers of train_table use beside it: the evaluation of a model
// on files (io/evaluate_table.h: `lathe eval`), checkpoints (io/checkpoint_resume.h) and a run's
// recorded options (io/run_options.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "io/checkpoint.h"
#include "io/checkpoint_resume.h"
#include "io/evaluate_table.h"
#include "io/model_file.h"
#include "io/run_options.h"
#include "io/table_reader.h"
#include "io/validation_split.h"
#include "models/model.h"
#include "runtime/device_context.h"
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
  // --metric and --stop-margin, when --valid-fraction leaves no validation rows (too few rows).
  bool metric_given = false, stop_margin_given = false;
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
// this run's, and when two of its features share a name (shared_feature_name, runtime/warm_start.h:
// a model written before `lathe train` refused such names), which a retraining cannot tell apart.
// Its classes are checked against the data's labels by train_table.
void check_init_model_kind(const ModelFile& init, const TrainTableOptions& options);

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

TrainReport train_table(const DeviceContext& ctx, const std::filesystem::path& data,
                        const std::filesystem::path& model_path, const TrainTableOptions& options);

}  // namespace lathe
