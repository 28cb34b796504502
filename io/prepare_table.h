// `lathe prepare`: the whole preparation stage on a file. Streams IN through (optional) duplicate
// removal, the profile pass, fitting, and the fused transform on the chosen device, and writes the
// prepared table in the columnar layout:
//   - each dense feature as a float32 column named after it ("age", "age_missing", "age*income");
//   - each categorical column (and each categorical cross, "a*b", of categorical columns or
//     binned columns' bins, "x#bins*c") as slot codes with their labels: the training vocabulary,
//     then "(missing)" and "(unknown)" (or "bucket_N" labels when hashed; a cross's buckets);
//   - each numeric x categorical cross "x*c" as a float32 column holding the prepared x; its
//     per-category slope is indexed by the slot in column c;
//   - each binned numeric column's quantile bins (--bins) as slot codes named "x#bins", labelled by
//     their ranges of raw values (bin_name, runtime/warm_start.h: "[-inf, 0.5)", "[0.5, 0.75)",
//     ..., "[2.5, inf)"), then "(missing)"; `lathe train` on the file takes them as categories;
//   - the label column, if any, passed through with its values exactly: categorical codes with
//     their labels; float64, float32, int64 and uint64 in their own type; other integer types
//     (int8..int32, uint8..uint32) as int64; bool and enum columns as float32 (0/1, their values);
//   - last, the passthrough columns in IN's column order, copied as the label is: the columns of
//     preparation.exclude (`--drop`), and IN's own passthrough columns when IN is a prepared file.
//     They are not fitted (the profile pass reads them, but nothing of theirs is kept), prepared or
//     inputs of the fitted preparation, which is what it would be without them; the root attribute "lathe_passthrough" lists them
//     (io/prepared_data.h). A passthrough column named like a prepared feature is an InputError.
// The fitted parameters are stored as JSON in the root attribute "lathe_preparation", the input's
// file name in "lathe_source".
//
// With `from` set, nothing is fitted: the fitted preparation stored in that file (a prepared file's
// lathe_preparation, or a model's: read_stored_preparation, io/prepared_data.h) is applied to IN,
// whose columns must be its inputs with their types (InputError naming IN, the column and FROM),
// and its text is copied verbatim into the output's lathe_preparation (so the output carries the
// same fingerprint: a model trained on the file FROM was prepared from accepts it); the output's
// "lathe_prepared_from" names FROM. The columns that preparation dropped (StoredPreparation::
// passthrough) are passed through when IN has them; other columns it does not read are left out. An infinite value in a column the preparation does not clip
// to finite bounds is an InputError naming IN, the column and the row.
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
  // Ignored with `from`, but for preparation.label: when set it must be the stored preparation's
  // label (else UsageError).
  PreparationOptions preparation;
  std::filesystem::path from;  // apply this file's fitted preparation ("" = fit one on IN)
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
  std::string applied;  // with `from`: "the preparation of p.h5" (what was applied, not refitted)
};

// fit_preparation on `profile`, a profile of `reader`'s rows (those `rows` keeps; null: all), with
// the file named in its errors and, when columns hold infinite values (a profile shows them only as
// an infinite min or max), the first kept row of each that has one.
FittedPreparation fit_preparation_of(TableReader& reader, const DataProfile& profile, const PreparationOptions& options,
                                     const RowMask* rows, std::vector<std::string>* notes);

// This machine's physical memory in bytes (0 when unknown).
double physical_memory_bytes();

// What a model adds to a run's memory: its parameters and the bytes each takes (weight, the best
// epoch's copy, gradient, optimizer state). None for `lathe prepare`.
struct ModelMemory {
  double parameters = 0.0;
  double bytes_per_parameter = 0.0;
  std::int32_t factors = 0;  // an fm's, named when the run is refused
  std::int32_t outputs = 1;  // a multiclass model's classes, each with its own weights (named too)
};

// Refuses (InputError) a run whose prepared rows held at once (`prepared_bytes`: a block being
// prepared, the training rows kept in memory) and model cannot fit this machine's memory, before
// anything that large is allocated: a --cross all of 4000 numeric columns (8M crosses, 32 MB a
// prepared row) grew to 20 GB and ended in std::bad_alloc, and --hash-buckets 2^31 needs about
// 50 GB. The message names what makes the run that large: numeric crosses, hashed buckets, factors.
// `label_bytes`: the slot labels `lathe prepare` writes (a "bucket_N" per hashed bucket: 2e9
// buckets took 23 GB before the kernel killed the run).
void check_fits_in_memory(const FittedPreparation& fitted, double prepared_bytes, const ModelMemory& model = {},
                          double label_bytes = 0);

// A file written by `lathe prepare --bins` (`source`: its fitted preparation; `columns`: its
// columns; `file`: its name, for messages) holds a binned column twice: its prepared values ("x")
// and its bins as categories ("x#bins"). Binning those values again (--bins on the prepared file)
// would make a second "x#bins" of the same steps: each such column that `options` bins is left
// unbinned, with a note. A per-column option on an "x#bins" column is an InputError naming it and x
// (it holds categories: the column to set is x, whose bins are already made).
void keep_prepared_bins(const FittedPreparation& source, const std::vector<ColumnInfo>& columns,
                        const std::string& file, PreparationOptions& options,
                        std::vector<std::string>& notes);

PrepareTableReport prepare_table(const DeviceContext& ctx, const std::filesystem::path& in,
                                 const std::filesystem::path& out, const PrepareTableOptions& options);

}  // namespace lathe
