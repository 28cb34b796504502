// The labels of a model's categorical inputs that it never saw in training, which take the
// column's unknown slot, as `lathe score`, `lathe eval` and `lathe train --valid` tally and name
// them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/table_reader.h"
#include "runtime/column_block.h"
#include "runtime/label_spelling.h"
#include "runtime/preparation.h"

namespace lathe {

// A categorical input's values whose label the model never saw (or saw too rarely to give it a
// slot: --min-category-count), which take the column's unknown slot: as `lathe score` counts them
// (a hashed column has no unknown slot), with the first few such labels, for a note.
// Those that are a training label spelled otherwise (in letter case, or with spaces around it: an
// export's "TRUE" for training's "True") are named with their rows, for a note that says so: they
// are not matched (runtime/label_spelling.h).
struct UnseenLabels {
  std::string column;
  std::int64_t count = 0;
  std::vector<std::string> examples;  // distinct, at most kUnseenLabelExamples
  std::vector<SpelledOtherwise> spelled_otherwise;
  // While tallying one file: its label codes checked so far (at most kSpellingsChecked), each with
  // its index in spelled_otherwise or -1, and the model's labels folded, made at the first unseen
  // label.
  std::unordered_map<std::int32_t, std::int32_t> checked_codes;
  std::shared_ptr<const FoldedLabels> folded_vocabulary;
};
inline constexpr std::size_t kUnseenLabelExamples = 3;

// Adds the unseen labels of `block` (rows of the file whose columns are `columns`, bound to the
// preparation as `bound`) to `tally`, one entry per categorical encoding that has any.
void tally_unseen_labels(const BoundPreparation& bound, const std::vector<ColumnInfo>& columns,
                         const ColumnBlockView& block, std::vector<UnseenLabels>& tally);

// Adds, by column name, the values of each categorical input in `block` that take its unknown slot
// to `unknown` (a hashed column has none: an unseen label lands in its bucket) and those that take
// its missing-value slot to `missing` (either may be null): `lathe score`'s unknown_categories and
// missing_categories, and `lathe eval`'s.
void tally_category_slots(const BoundPreparation& bound, const ColumnBlockView& block,
                          std::map<std::string, std::int64_t>* unknown,
                          std::map<std::string, std::int64_t>* missing);

// The note `lathe eval` and `lathe train --valid` print for a column's unseen labels, worded as
// `lathe score`'s.
std::string unseen_labels_note(const UnseenLabels& unseen);

}  // namespace lathe
