// What a retraining run (`lathe train --init-model OLD`) says of OLD and keeps of it: the notes on
// which of OLD's weights a refitted preparation (--refit-prep) carried and which it could not, and
// the parent record of the new model file.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "io/model_file.h"
#include "runtime/preparation.h"
#include "runtime/warm_start.h"

namespace lathe {

// The notes of a retraining with --refit-prep, in order: how many of `init`'s features carried
// their weights into `fitted` (`carry`, from carry_parameters), then each kind of weight that did
// not carry or carried inexactly, named (columns absent or of another type in `data`, columns the
// refitted preparation reads that OLD's did not (with the --drop of `options_json` that keeps them
// out), crosses, missing indicators, a column moved between a vocabulary and buckets, quantile
// bins, an fm's pairwise terms). `init_model` is OLD's path as given.
std::vector<std::string> carried_weights_notes(
    const ModelFile& init, const std::filesystem::path& init_model, const FittedPreparation& fitted,
    const CarryReport& carry, const std::filesystem::path& data, const std::string& options_json);

// The parent record (ModelFile::parent, JSON text) of a model retrained from `init`, read from
// `init_model`, with its preparation refitted or kept (`refit_prep`).
std::string parent_record(const ModelFile& init, const std::filesystem::path& init_model,
                          bool refit_prep);

}  // namespace lathe
