// A run's options as a model file records them (ModelFile::options_json: each option as given,
// {"lr": ["0.5"]}, absent = the default): the value one was given, those two runs gave differently,
// and the options of the run that fitted a model's preparation.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "io/model_file.h"

namespace lathe {

// An option given differently in two runs' options (ModelFile::options_json, as given: {"lr":
// ["0.5"]}, absent = the default): its name and its value in each ("the default" when absent).
struct ChangedOption {
  std::string key, was, is;
};
inline constexpr const char* kDefaultOption =
    "the default";  // ChangedOption's value of an option not given

// The options that fit a preparation (lathe train's and lathe prepare's, as options_json names
// them: without the dashes), all of add_preparation_options' but --label: a usage error where a
// preparation fitted before is applied unchanged (`lathe prepare --from`, `lathe train
// --init-model` without --refit-prep), and named where a resumed run's fitted preparation differs.
inline constexpr const char* kPreparationOptions[] = {"impute",
                                                      "scale",
                                                      "clip",
                                                      "bins",
                                                      "cross",
                                                      "missing-indicators",
                                                      "hash-buckets",
                                                      "max-categories",
                                                      "category-buckets",
                                                      "min-category-count",
                                                      "drop"};

// The options among `keys` that `was_options` and `is_options` give differently, in the order of
// `keys`; none when either is not a JSON object.
std::vector<ChangedOption> changed_options(const std::string& was_options,
                                           const std::string& is_options,
                                           std::span<const char* const> keys);

// The value an option was given in a run's options (ModelFile::options_json), its results joined
// by commas as --drop reads them ("rid,sid"); "" when it was not given.
std::string given_option(const std::string& options_json, const char* key);

// The options (ModelFile::options_json's form) of the run that fitted `model`'s preparation: its
// own, or, for a model retrained keeping its parent's (--init-model without --refit-prep), those
// its file records under "kept_preparation_options" (train_table writes them, from the parent's
// own or kept ones); "" when not known (a file written before, or a parent's that was not).
std::string preparation_run_options(const ModelFile& model);

}  // namespace lathe
