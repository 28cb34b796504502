// Scoring one HDF5 table into one output file, block by block, with a lathe::Scorer: what `lathe
// score` runs for each input and what `lathe bench score` times. While a block is scored, one of the
// scoring threads writes the previous block's results and reads the next block, so a file is never
// held whole: memory is two input blocks and two blocks of results.
//
// Output columns, in this order (a contract other code reads):
//   the --id column, if given: its values (numeric: read exactly from a columnar file's integer or
//     float dataset, in h5 as int64/uint64 from a 64-bit integer dataset and float64 otherwise, in
//     CSV integral values as integers in full and others in the shortest exact text; categorical:
//     codes with the input's labels in h5, the labels in CSV)
//   regression   prediction                       float32, the label's original units
//   binary       probability                      float32, P(positive class)
//                predicted_class                  the class label (h5: categorical with the model's
//                                                  class labels; CSV: text)
//   multiclass   probability_<label> per class     float32, in the model's class order
//                predicted_class
// h5: Lathe's columnar layout (io/columnar_writer.h). CSV: a header line, then one line per row,
// floats with 9 significant digits (%.9g, exact for float32), missing values empty, fields quoted
// when they hold a comma, quote or line break.
//
// The output is written under a temporary name and renamed into place only when complete: a
// failure (unreadable input, schema mismatch, an infinite value) leaves nothing at the output path
// and an earlier file there intact. The schema and the --id column are checked before the output
// is created.
//
// The output path "-" (score_to_stdout) is stdout, CSV only: the header and each block's rows are
// written to it as they are scored, with no temporary (a failure after the first block leaves the
// blocks already written on stdout). "./-" is a file named "-".
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "io/table_reader.h"
#include "lathe/scorer.h"
#include "runtime/label_spelling.h"

namespace lathe {

enum class ScoreFormat { h5, csv };

struct ScoreFileOptions {
  ScoreFormat format = ScoreFormat::h5;
  std::string id_column;  // "" = none
  TableReadOptions read;  // read.block_rows: rows scored per block
  // h5 output. Scores are random-looking floats that deflate barely shrinks, at a real cost in
  // throughput (500k rows: 0.16 s of a 0.5 s run at level 1), so none by default.
  int deflate_level = 0;
  // The --id column as another input of the same run holds it (ScoredIdColumn), asked only for an
  // input with no rows, whose output takes its type: a header-only CSV imports every column as
  // float64, and an empty partition's id written so would not concatenate with the others' codes
  // or strings. Unset, or giving nothing, the empty input's own type is kept.
  std::function<std::optional<ColumnInfo>()> id_of_other_inputs;
};

// The --id column of `input` as score_file would write it (its type and dtype; no labels), read
// with `options`; nothing when `input` has no rows (its type says nothing then). InputError as
// score_file for a file it cannot read or without the column.
std::optional<ColumnInfo> scored_id_column(const std::filesystem::path& input, const ScoreFileOptions& options);

struct ScoreFileReport {
  std::filesystem::path input, output;
  std::int64_t rows = 0;
  std::int64_t input_columns = 0;
  double seconds = 0.0;
  ScoringSummary summary;
  std::vector<std::string> notes;  // schema notes (ignored columns, ...)
  // Column -> its unseen labels (summary.unknown_categories) that are a training label spelled
  // otherwise (letter case, surrounding spaces), for the note about them.
  std::map<std::string, std::vector<SpelledOtherwise>> spelled_otherwise;
  // Column -> the first few of its unseen labels (at most kUnseenLabelExamples), for the same note.
  std::map<std::string, std::vector<std::string>> unseen_examples;
};

// A numeric id as `score_file` writes it in CSV, appended to `line`: an integral value as an
// integer in full, its exact value (1e12 as 1000000000000); another in the shortest text that
// reads back as the same double (0.1, 1.5e-07); NaN (missing) as nothing.
void append_id_number(std::string& line, double value);

// The names of the output columns for `scorer`'s model (without the id column).
std::vector<std::string> score_output_columns(const Scorer& scorer);

// The output path that means stdout: "-".
bool score_to_stdout(const std::filesystem::path& output);

// Whether the existing file `path` holds scores that score_file wrote (with any model, --id and
// format), so that writing scores over it loses nothing the user did not make with `lathe score`:
// an HDF5 file whose root has the attribute lathe_model, or a text file whose first line's last
// field is `prediction` or `predicted_class`. A file that cannot be read, or holds anything else
// (the CSV an input was imported from, another table), is not.
bool holds_scores(const std::filesystem::path& path);

// Scores every row of `input` into `output` (see above; "-": stdout, which needs ScoreFormat::csv,
// else UsageError). Throws InputError naming the input file (and column, row) for bad input;
// nothing is left at `output` then.
ScoreFileReport score_file(Scorer& scorer, const std::filesystem::path& input, const std::filesystem::path& output,
                           const ScoreFileOptions& options);

}  // namespace lathe
