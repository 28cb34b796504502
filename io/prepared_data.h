// Files written by `lathe prepare`: the fitted preparation each carries, how to tell one fitted
// preparation from another, and reading a fitted preparation back to apply it to new data
// (`lathe prepare NEW OUT --from PREPARED|MODEL`).
//
// A prepared file carries its fitted preparation as JSON text in the root attribute
// "lathe_preparation" (and the name of the file it was prepared from in "lathe_source"); its
// fingerprint (preparation_fingerprint, io/model_file.h) names that fitted preparation. A file
// prepared with `--from` carries the same text, so the same fingerprint, as the file or model it
// took the preparation from; a model trained on a prepared file stores its name, fingerprint and
// text (ModelFile::trained_on_prepared), and scoring refuses data without that fingerprint
// (check_data_preparation, io/model_inputs.h).
//
// Passthrough columns: the columns `lathe prepare --drop` named (and, with `--from`, those the
// stored preparation dropped, when NEW has them) are written to the prepared file unchanged, after
// the prepared columns, and listed in its root attribute "lathe_passthrough" (an array of names,
// absent when there are none). They are not part of the fitted preparation (so not of its text or
// fingerprint), and no command uses them as features: `lathe train` leaves them out as if dropped
// (nor are they in the model's input schema or drift profile); `lathe score --id` can pass one
// through.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "io/model_file.h"
#include "runtime/preparation.h"

namespace lathe {

// The root attribute that lists a prepared file's passthrough columns.
inline constexpr const char* kPassthroughAttribute = "lathe_passthrough";

// The fitted preparation `data` was written with by `lathe prepare` (source: the file's name,
// without its folder; passthrough: its lathe_passthrough columns); nullopt when the file has none
// (raw data: imported, synthetic, another writer's). InputError naming the file when it is missing
// or not HDF5.
std::optional<PreparedSource> read_prepared_tag(const std::filesystem::path& data);

// The name of the raw file `data` was prepared from (its lathe_source attribute, which `lathe
// prepare` writes); "" when it has none.
std::string prepared_from(const std::filesystem::path& data);

// A fitted preparation to apply, read from a prepared file or a model file (`--from`).
struct StoredPreparation {
  FittedPreparation fitted;
  std::string text;         // its JSON text, verbatim (the output's lathe_preparation)
  std::string description;  // for messages: "the preparation of p.h5", "the preparation of the model m.h5"
  // Where it came from when the model stores the preparation of its prepared training file:
  // "p.h5 (stored in the model m.h5)"; else the file's path.
  std::string origin;
  // The columns that preparation left out with --drop, which `--from` passes through when NEW has
  // them: a prepared file's lathe_passthrough; for a model trained on one, that file's (as the model
  // stores them); for a model trained on raw data, its `--drop` columns.
  std::vector<std::string> passthrough;
};

// Reads the fitted preparation of `path`: a file written by `lathe prepare` (its lathe_preparation),
// or a model file (the preparation of the prepared file it was trained on, when it was; else the
// model's own, which it applies to raw data). InputError naming the file when it is neither, or its
// preparation is damaged.
StoredPreparation read_stored_preparation(const std::filesystem::path& path);

// `lathe train DATA --valid VALID`: InputError unless VALID carries the same preparation as DATA
// (`training`, read_prepared_tag(DATA)): both raw, or both written by `lathe prepare` with one
// fitted preparation (the same fingerprint).
void check_valid_preparation(const std::optional<PreparedSource>& training, const std::filesystem::path& data,
                             const std::filesystem::path& valid);

// `lathe train DATA --init-model OLD`: InputError unless DATA is prepared as OLD's training data was
// (both raw, or both carrying one fitted preparation). Else OLD's kept preparation would be applied
// to values in other units, or (`refit`, --refit-prep) its weights converted between features of
// other values.
void check_retraining_preparation(const ModelFile& init, const std::optional<PreparedSource>& training,
                                  const std::filesystem::path& data, bool refit);

}  // namespace lathe
