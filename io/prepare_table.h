// `lathe prepare`: the whole preparation stage on a file. Streams IN through (optional) duplicate
// removal, the profile pass, fitting, and the fused transform on the chosen device, and writes the
// prepared table in the columnar layout:
//   - each dense feature as a float32 column named after it ("age", "age_missing", "age*income");
//   - each categorical column (and each categorical x categorical cross, "a*b") as slot codes with
//     their labels: the training vocabulary, then "(missing)" and "(unknown)" (or "bucket_N" labels
//     when hashed);
//   - each numeric x categorical cross "x*c" as a float32 column holding the prepared x; its
//     per-category slope is indexed by the slot in column c;
//   - the label column, if any, passed through (last).
// The fitted parameters are stored as JSON in the root attribute "lathe_preparation".
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/table_reader.h"
#include "runtime/device_context.h"
#include "runtime/preparation.h"
#include "runtime/profile.h"
#include "runtime/row_mask.h"

namespace lathe {

struct PrepareTableOptions {
  PreparationOptions preparation;
  bool dedup = false;
  TableReadOptions read;  // which table in IN, and rows per block
  int deflate_level = 1;
  bool progress = true;
};

struct PrepareTableReport {
  std::int64_t rows_in = 0;
  std::int64_t rows_out = 0;
  std::int64_t duplicates = 0;
  std::int64_t hash_collisions = 0;
  std::int64_t columns_out = 0;
  std::vector<std::string> notes;  // e.g. an all-missing column imputed with a constant
};

// fit_preparation on `profile`, a profile of `reader`'s rows (those `rows` keeps; null: all), with
// the file named in its errors and, when columns hold infinite values (a profile shows them only as
// an infinite min or max), the first kept row of each that has one.
FittedPreparation fit_preparation_of(TableReader& reader, const DataProfile& profile, const PreparationOptions& options,
                                     const RowMask* rows, std::vector<std::string>* notes);

PrepareTableReport prepare_table(const DeviceContext& ctx, const std::filesystem::path& in,
                                 const std::filesystem::path& out, const PrepareTableOptions& options);

}  // namespace lathe
