// The block-oriented side of lathe::Scorer (include/lathe/scorer.h), for Lathe's own commands: a
// Scorer's model bound to a file's schema, then blocks of rows in TableReader::read_block's layout
// scored one after another, as `lathe score` does (io/score_file.cpp). Internal: it speaks in
// ColumnInfo (io/table_reader.h) and ColumnBlockView (runtime/column_block.h), which an installed
// Lathe does not ship, so the public header holds only the batch API.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "io/table_reader.h"
#include "lathe/scorer.h"
#include "runtime/column_block.h"

namespace lathe {

struct UnseenLabels;  // io/unseen_labels.h

// A Scorer's model matched to the columns of one input (a file's schema, or a batch): which column
// feeds which model input, categorical codes remapped by label. Made by bind_scoring_input, which
// checks the schema. It refers to its Scorer, which must outlive it. Move-only.
class ScoringInput {
 public:
  ~ScoringInput();
  ScoringInput(ScoringInput&&) noexcept;
  ScoringInput& operator=(ScoringInput&&) noexcept;

  // Notes about the schema: columns the model does not use (ignored), the model's label present.
  const std::vector<std::string>& notes() const;
  // The number of columns the input has (the block's column count).
  std::int64_t columns() const;

 private:
  friend struct ScorerInternals;
  struct Impl;
  explicit ScoringInput(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Matches the model's inputs to `columns` (a file's or batch's schema, in its own order). Throws
// InputError, starting with `source` (a file name, say), naming the first input column that is
// missing or whose type changed. Nothing is scored. The notes name the columns the model does not
// read, except those in `passed_through` (an id column the caller copies to its output).
ScoringInput bind_scoring_input(const Scorer& scorer, const std::vector<ColumnInfo>& columns,
                                const std::string& source = "input",
                                const std::vector<std::string>& passed_through = {});

// Scores a block of rows in TableReader::read_block's layout (column-major float32:
// block.values[c * block.rows + r]; NaN missing; categorical columns hold their codes as floats)
// whose columns are those `input` was bound to. `first_row` (0-based) is the block's first row
// within its source, for error messages ("row N" counts from 1). `out` is resized and
// overwritten; counts are added to `summary` when given. Throws InputError for an infinite
// numeric value in a column that is not clipped to finite bounds (naming the column and row),
// Error when the block's column count differs from the input's. Runs one at a time with the
// Scorer's other calls (its mutex). `alongside`, when given, runs once on one of the scoring
// threads while the others score (then that thread joins them): I/O that should overlap the
// scoring without a thread of its own competing for the cores, as `lathe score` reads the next
// block and writes the previous one here (it must not call the Scorer: the call holds its mutex).
// An exception from it is rethrown after the block is scored.
void score_block(Scorer& scorer, const ScoringInput& input, const ColumnBlockView& block, std::int64_t first_row,
                 Scores& out, ScoringSummary* summary = nullptr, const std::function<void()>& alongside = {});

// Adds the unseen labels of `block` (bound as `input`, whose columns are `columns`) to `tally`, as
// `lathe eval` tallies them (io/unseen_labels.h): the labels behind ScoringSummary's
// unknown_categories, for a note naming those spelled otherwise in training. A pass over the
// block's categorical codes: `lathe score` makes it only for a block that has unknown labels.
void tally_unseen_labels(const ScoringInput& input, const std::vector<ColumnInfo>& columns, const ColumnBlockView& block,
                         std::vector<UnseenLabels>& tally);

}  // namespace lathe
