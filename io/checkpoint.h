// Training checkpoints (`lathe train --checkpoint-every N`, `--resume`): a model file
// (io/model_file.h) holding the best epoch's weights, plus the trainer state needed to continue
// (runtime/trainer.h's TrainerState) as a JSON "checkpoint" attribute (like every string of a model
// file, a dataset of that name when over 32 KiB: format 4) and the last epoch's
// parameters as resume_* datasets. Written atomically like every model file.
//
// The "checkpoint" attribute: {"checkpoint_format_version": 3, "next_epoch", "best_epoch",
// "best_value" (null when NaN), "epochs_since_best", "step", "optimizer_step_origin", "history":
// [{"epoch", "train_loss", "valid": {metric: value}, "confusion": [...]}, ...]}. The optimizer's
// state after the last epoch (TrainerState::optimizer, models/model.h's OptimizerState) is in the
// float32 datasets resume_optimizer_first and resume_optimizer_second, flat [weights | bias |
// factors]; an array that is all zero (sgd's, say) is not written, and a missing one reads as
// empty (all zero). Format 3 adds the sparse features' last steps (OptimizerState::last_step) as
// the uint32 dataset resume_optimizer_last_step, when the model keeps them. So a resumed run
// continues bit for bit (runtime/trainer.h, TrainerOptions::resume). Format 2 (no last steps),
// and format 3 without them (a run that caught up no penalties), loads with every feature last
// updated at its step; format 1 (no optimizer state) still loads:
// its run restarts the moments and the step count (optimizer_step_origin = step).
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
