// Checkpoints as `lathe train` writes and resumes them (--checkpoint-every, --resume): the path of
// each, and whether a checkpoint belongs to this run's data and options.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/model_file.h"
#include "models/model.h"

namespace lathe {

// The path of the checkpoint after `epoch`: "{epoch}" in `pattern` replaced by the number.
std::filesystem::path checkpoint_path_for(const std::filesystem::path& pattern, std::int32_t epoch);

// A resumed run must train the same model on the same prepared features as the checkpoint's run:
// InputError naming --resume, `path` and what differs between the checkpoint `ck` and the model
// file this run would write (`now`): the task, label, transform, model, loss, --factors, classes,
// outputs, the --init-model it started from, a hashed column's buckets, the fitted preparation, the
// profile of the training rows or the target scaling.
void check_checkpoint_matches(const std::filesystem::path& path, const ModelFile& ck,
                              const ModelFile& now);

// The options (as given: {"lr": ["0.5"]}, absent = the default) that shape the optimization and
// differ between the checkpoint's run and this one, each as a note: the resumed run then equals no
// uninterrupted run. Noted, not refused: extending a run on purpose is a user's right.
std::vector<std::string> resume_option_notes(const std::filesystem::path& path,
                                             const std::string& checkpoint_options,
                                             const std::string& options, OptimizerKind optimizer);

}  // namespace lathe
