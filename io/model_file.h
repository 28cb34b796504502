// Lathe's model file (format version 5): one self-contained HDF5 file with everything `lathe eval`,
// `lathe score` and `lathe drift` need. Written under a temporary name and renamed when complete;
// every dataset carries HDF5's Fletcher32 checksum. Readers refuse a file written by a newer format
// version; a format 1 file (no profile, no prediction summary, no parent) still loads.
//
//   /                      attributes: lathe_model_format_version (int), task, model_kind, loss,
//                          label, classes (strings), outputs, factors, huber_delta, target_mean,
//                          target_std, target_transform ("none" | "log" | "log1p"; absent
//                          in older files, read as none), preparation (JSON), input_schema
//                          (JSON), metrics (JSON), options (JSON), parent (JSON, format 2, only when the model was
//                          retrained from another: its path, fingerprint and, as a nested object,
//                          its own parent record; files written before hold that as JSON text), history (JSON, optional:
//                          the per-epoch record of training, epoch_history_json; absent in older files),
//                          trained_on_prepared (JSON, optional: only when the training file was
//                          written by `lathe prepare`; see PreparedSource)
//   /weights               float32 [outputs][features]
//   /bias                  float32 [outputs]
//   /factors               float32 [outputs][features][factors] (fm only)
//
// Format 2 adds, when known (`lathe train` always writes them):
//
//   /profile               group: the DataProfile (runtime/profile.h) of the training rows. Attributes
//                          rows (int), sketch_capacity (int), columns (JSON: [{"name", "type":
//                          "numeric"|"categorical", "labels": [...] (categorical only)}], the profile's
//                          column order). "Numeric column i" below is the i-th numeric column in it.
//   /profile/numeric_stats   float64 [numeric columns][6]: count, missing, mean, variance (population:
//                          m2 / count), min, max; min and max NaN when count is 0
//   /profile/sketch_sizes    int64 [numeric columns]: points in each column's quantile sketch
//   /profile/sketch_points   float32 [sum of sketch_sizes]: the sketches' points (QuantileSketch::
//                          points()), column after column, ascending within a column
//   /profile/sketch_weights  float64 [sum of sketch_sizes]: their weights (a column's add up to count)
//   /profile/category_counts int64 [sum over categorical columns of labels + 1]: per categorical
//                          column the rows with each label, then the rows with none (missing)
//   /predictions           group: the model's predictions on the validation rows (or, without
//                          validation rows, the training rows). Attributes source ("validation" |
//                          "training"), rows (int), sketch_capacity (int)
//   /predictions/points, /predictions/weights   float32 / float64 [n]: regression and binary: the
//                          quantile sketch of the predicted value / P(positive)
//   /predictions/class_shares   float64 [classes]: multiclass: the share of rows whose most
//                          probable class is k
//
// Format 3 adds /attribute_digest, int64 [1]: a 64-bit digest of every attribute of /, /profile and
// /predictions (names and values, in name order; see attribute_digest in io/model_file.cpp),
// because HDF5 keeps variable-length strings in its global heap without a checksum. The loader
// checks it before parsing anything (required from format 3 on, checked in earlier files that
// have it): a flipped bit in the preparation's text is an error, never different predictions.
//
// The file is written in HDF5's 1.10 format (HDF5 1.10 or later reads it), where every piece of
// metadata has a checksum, and its strings are fixed-length (null-padded UTF-8) attributes kept in
// their object's header (compact attribute storage). Files written before that are in the 1.8
// format, with variable-length strings, whose text HDF5 keeps in its global heap without a
// checksum (one changed byte there can crash or hang HDF5 itself while the attributes are read),
// and each dataset's chunk indexed by a version 1 B-tree without a checksum (the loader checks that
// the one chunk is still where it was written). Readers read both; the older files' global heap
// stays unprotected. h5py reads fixed-length strings as bytes (numpy.bytes_); h5dump shows text.
//
// Format 4 adds: a string (or list of strings) over 32 KiB in all, too long for an attribute in the
// header, is instead a 1-D Fletcher32 dataset of fixed-length strings (one element for a single
// string) named like the attribute, in the group the attribute would be on: "/history",
// "/profile/columns". A file is marked format 4 only when it holds such a dataset; otherwise it is
// marked 3, and older lathe binaries read it too.
//
// Format 5: a regression model fitted to a transformed label (target_transform log or log1p). An
// older reader would ignore the attribute and predict in the transform's units, so such a file is
// marked 5 and refused there; with target_transform "none" the file keeps format 3 or 4.
//
// A dataset that would hold no values is not written (it reads as empty).
//
// A training checkpoint (io/checkpoint.h) is a model file (the best epoch's weights, so `lathe
// eval` reads it) with a "checkpoint" attribute (the trainer state, JSON) and the last epoch's
// parameters in resume_weights, resume_bias and resume_factors (fm only), same shapes, and the
// optimizer's moments in resume_optimizer_first / resume_optimizer_second when not all zero.
#pragma once

#include <cstdint>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/table_reader.h"
#include "models/model.h"
#include "runtime/preparation.h"
#include "runtime/profile.h"
#include "runtime/quantile_sketch.h"
#include "runtime/trainer.h"

namespace lathe {

// The newest format this lathe reads and writes (a file is marked with the oldest that describes it:
// see format 4 above).
inline constexpr int kModelFormatVersion = 5;

// Points kept by the quantile sketch of a model's predictions.
inline constexpr int kPredictionSketchCapacity = 1024;

// The model's predictions on the rows it was validated on (format 2): the reference `lathe drift`
// compares the predictions on new data with.
struct PredictionSummary {
  std::string source;     // "validation" or "training": the rows summarised; "" when there is none
  std::int64_t rows = 0;  // rows summarised (0: no summary)
  // regression: the predicted value; binary: P(positive). Empty for multiclass.
  QuantileSketch sketch{kPredictionSketchCapacity};
  // multiclass: the share of the rows whose most probable class is k (adds up to 1). Else empty.
  std::vector<double> class_shares;
  bool empty() const { return rows == 0; }
};

// The training file of a model trained on the output of `lathe prepare` (the model file's optional
// "trained_on_prepared" text, JSON {"source": "p.h5", "fingerprint": "0123456789abcdef",
// "preparation": "<the file's lathe_preparation text>", "passthrough": ["customer_id"]}; absent in older files and when the model
// was trained on raw data). Such a model's inputs are prepared columns: `lathe score`, `eval`,
// `drift` and `report` refuse data that does not carry the same preparation (check_data_preparation,
// io/model_inputs.h), and `lathe prepare NEW OUT --from MODEL` applies it.
struct PreparedSource {
  std::string source;       // the prepared training file's name ("p.h5", without its folder)
  std::string fingerprint;  // preparation_fingerprint(preparation)
  std::string preparation;  // its lathe_preparation attribute, verbatim: the fitted preparation (JSON)
  // Its passthrough columns (the file's lathe_passthrough: columns `lathe prepare --drop` copied
  // unchanged, never features), which `lathe prepare NEW OUT --from MODEL` passes through again.
  // Stored as the optional JSON member "passthrough" (absent when none, and in older files); not
  // part of the fingerprint.
  std::vector<std::string> passthrough;
};

// A fingerprint of a fitted preparation's JSON text (64-bit FNV-1a, then mix64, as 16 lowercase hex
// digits): equal texts, equal fingerprints. `lathe prepare --from` copies the text verbatim, so
// every file prepared with one fitted preparation carries the same fingerprint.
std::string preparation_fingerprint(const std::string& preparation_json);

struct ModelFile {
  Task task = Task::binary;
  ModelKind kind = ModelKind::linear;
  LossKind loss = LossKind::logistic;
  float huber_delta = 1.0f;  // in standardized target units: --huber-delta / target_std
  std::int32_t outputs = 1;
  std::int32_t factors = 0;
  std::string label;
  std::vector<std::string> classes;  // binary: {negative, positive}; multiclass: class i
  double target_mean = 0.0;          // regression: predictions = score * target_std + target_mean
  double target_std = 1.0;
  // Regression: the label was fitted as t(label) (target_mean and target_std are t(label)'s), and
  // predictions are inv(score * target_std + target_mean) (RegressionMap).
  TargetTransform target_transform = TargetTransform::none;
  FittedPreparation preparation;
  std::vector<ColumnInfo> input_schema;  // the training file's columns (names, types, categories)
  ModelParameters parameters;
  std::string metrics_json = "{}";  // training-time metrics
  std::string options_json = "{}";  // the options that produced the model
  // Format 2 (absent in a format 1 file): the profile of the training rows (every column of the
  // training file, label included), the summary of the validation predictions, and the model this
  // one was retrained from ("" = none; its path and fingerprint, as `--init-model` writes them).
  std::optional<DataProfile> profile;
  PredictionSummary predictions;
  std::string parent;
  // The per-epoch record of the training run (epoch_history_json); "" when not stored (older files).
  std::string history_json;
  // Set when the training file was written by `lathe prepare` (see PreparedSource).
  std::optional<PreparedSource> trained_on_prepared;
  // Where load_model read it from (not stored in the file; empty for a model built in memory), for
  // messages that name the model.
  std::filesystem::path path;
  // false when load_model left the profile's labels out (ModelLoadOptions::profile_labels): its
  // categorical columns then hold their `missing` counts only, and save_model refuses the model.
  bool profile_labels = true;
};

// The per-epoch history of a training run as stored in a model file's "history" attribute: a JSON
// array of {"epoch", "train_loss", "valid": {metric: value}, "seconds"}, non-finite numbers as null.
std::string epoch_history_json(const std::vector<EpochRecord>& history);

// What a checkpoint adds to a model file (see above).
struct CheckpointExtras {
  std::string state_json = "{}";
  ModelParameters resume;  // same sizes as ModelFile::parameters
};

// The shape of the model a file holds (what training built: its preparation's layout, task, loss,
// outputs and factors); its layout.group_offset points into the returned shape's group_offsets.
ModelShape model_shape(const ModelFile& model);

// The profile's tables as save_model writes them (its "columns" text with every label, its
// per-label counts, deflated, and its sketches), defined in io/model_file.cpp.
struct ProfileTables;

// Builds a profile's tables on a thread of its own from construction on: `lathe train` starts one
// once the profile is final, before the epochs, which on the CPU keep one core busy, so that a
// profile of millions of labels (a 65 MB text, 40 MB of counts) is ready when the model is saved
// instead of built then. Holds a reference to `profile`, which must stay alive and unchanged while
// this lives. The destructor waits for the thread.
class ProfileTablesAhead {
 public:
  // `context` names the model file in an error (a profile whose counts do not match its labels).
  ProfileTablesAhead(const DataProfile& profile, std::string context);
  ~ProfileTablesAhead();
  ProfileTablesAhead(const ProfileTablesAhead&) = delete;
  ProfileTablesAhead& operator=(const ProfileTablesAhead&) = delete;

  // The tables, once (waiting for them; rethrows what building them threw), when they are of
  // `profile` (the same object); else, or when taken already, nullptr.
  std::unique_ptr<ProfileTables> take(const DataProfile& profile);

 private:
  const DataProfile* profile_;
  std::string context_;
  std::future<std::unique_ptr<ProfileTables>> tables_;
};

// Writes atomically (temporary name, then rename); with `extras`, a checkpoint. Throws Error.
// `ahead` (may be null): the profile's tables built beforehand, used when they are of
// model.profile; else save_model builds them. `predictions_later` (may be null or without a
// state): the summary of the model's predictions, still being made on another thread while this
// one writes the weights and the profile, waited for where it is written in place of
// model.predictions.
void save_model(const std::filesystem::path& path, const ModelFile& model,
                const CheckpointExtras* extras = nullptr, ProfileTablesAhead* ahead = nullptr,
                std::future<PredictionSummary>* predictions_later = nullptr);

// What load_model keeps of a file.
struct ModelLoadOptions {
  // false: the training profile's categorical columns are read without their labels and per-label
  // counts (each keeps its `missing` count, and ModelFile::profile_labels is false). That is all
  // scoring reads of the profile (model_inputs: whether a column had missing values in training),
  // and for a model trained on millions of ids the labels are most of what loading it costs. The
  // file is checked as much either way: the labels are parsed and counted, and the counts' dataset
  // must have a count for each.
  bool profile_labels = true;
};

// Reads and checks a model file: format version, shapes, indices in range, finite weights. Throws
// InputError naming the file and what is wrong. With `extras`, the file must be a checkpoint and
// its extras are read (else InputError "not a checkpoint").
ModelFile load_model(const std::filesystem::path& path, CheckpointExtras* extras = nullptr,
                     const ModelLoadOptions& options = {});

}  // namespace lathe
