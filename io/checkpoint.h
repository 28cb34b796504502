// Training checkpoints (`lathe train --checkpoint-every N`, `--resume`): a model file
// (io/model_file.h) holding the best epoch's weights, plus the trainer state needed to continue
// (runtime/trainer.h's TrainerState) as a JSON "checkpoint" attribute and the last epoch's
// parameters as resume_* datasets. Written atomically like every model file.
//
// The "checkpoint" attribute: {"checkpoint_format_version": 1, "next_epoch", "best_epoch",
// "best_value" (null when NaN), "epochs_since_best", "step", "history": [{"epoch", "train_loss",
// "valid": {metric: value}, "confusion": [...]}, ...]}. The optimizer's moments are not stored:
// a resumed run restarts them from zero (runtime/trainer.h, TrainerOptions::resume).
#pragma once

#include <filesystem>

#include "io/model_file.h"
#include "runtime/trainer.h"

namespace lathe {

// Writes `model` (its parameters are replaced by state.best, or state.last before any best epoch)
// with `state` to `path` atomically. Throws Error.
void save_checkpoint(const std::filesystem::path& path, ModelFile model, const TrainerState& state);

struct LoadedCheckpoint {
  ModelFile model;
  TrainerState state;
};

// Reads a checkpoint; InputError naming the file when it is missing, damaged or not a checkpoint.
LoadedCheckpoint load_checkpoint(const std::filesystem::path& path);

}  // namespace lathe
