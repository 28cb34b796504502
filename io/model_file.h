// Lathe's model file (format version 1): one self-contained HDF5 file with everything `lathe eval`
// (and, next, `lathe score`) needs. Written under a temporary name and renamed when complete; every
// dataset carries HDF5's Fletcher32 checksum. The deployment issue extends this format; readers
// refuse a file written by a newer format version.
//
//   /                      attributes: lathe_model_format_version (int), task, model_kind, loss,
//                          label, classes (strings), outputs, factors, huber_delta, target_mean,
//                          target_std, preparation (JSON), input_schema (JSON), metrics (JSON),
//                          options (JSON)
//   /weights               float32 [outputs][features]
//   /bias                  float32 [outputs]
//   /factors               float32 [outputs][features][factors] (fm only)
//
// A training checkpoint (io/checkpoint.h) is a model file (the best epoch's weights, so `lathe
// eval` reads it) with a "checkpoint" attribute (the trainer state, JSON) and the last epoch's
// parameters in resume_weights, resume_bias and resume_factors (fm only), same shapes, and the
// optimizer's moments in resume_optimizer_first / resume_optimizer_second when not all zero.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "io/table_reader.h"
#include "models/model.h"
#include "runtime/preparation.h"

namespace lathe {

inline constexpr int kModelFormatVersion = 1;

struct ModelFile {
  Task task = Task::binary;
  ModelKind kind = ModelKind::linear;
  LossKind loss = LossKind::logistic;
  float huber_delta = 1.0f;
  std::int32_t outputs = 1;
  std::int32_t factors = 0;
  std::string label;
  std::vector<std::string> classes;  // binary: {negative, positive}; multiclass: class i
  double target_mean = 0.0;          // regression: predictions = score * target_std + target_mean
  double target_std = 1.0;
  FittedPreparation preparation;
  std::vector<ColumnInfo> input_schema;  // the training file's columns (names, types, categories)
  ModelParameters parameters;
  std::string metrics_json = "{}";  // training-time metrics
  std::string options_json = "{}";  // the options that produced the model
};

// What a checkpoint adds to a model file (see above).
struct CheckpointExtras {
  std::string state_json = "{}";
  ModelParameters resume;  // same sizes as ModelFile::parameters
};

// Writes atomically (temporary name, then rename); with `extras`, a checkpoint. Throws Error.
void save_model(const std::filesystem::path& path, const ModelFile& model,
                const CheckpointExtras* extras = nullptr);

// Reads and checks a model file: format version, shapes, indices in range, finite weights. Throws
// InputError naming the file and what is wrong. With `extras`, the file must be a checkpoint and
// its extras are read (else InputError "not a checkpoint").
ModelFile load_model(const std::filesystem::path& path, CheckpointExtras* extras = nullptr);

}  // namespace lathe
