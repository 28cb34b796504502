#include "io/unseen_labels.h"

#include <algorithm>

#include "kernels/prepare_formulas.h"

namespace lathe {

void tally_unseen_labels(const BoundPreparation& bound, const std::vector<ColumnInfo>& columns,
                         const ColumnBlockView& block, std::vector<UnseenLabels>& tally) {
  const FittedPreparation& fitted = *bound.fitted;
  for (std::size_t j = 0; j < fitted.categorical.size(); ++j) {
    const CategoricalEncoding& enc = fitted.categorical[j];
    if (enc.hashed) continue;  // an unseen label lands in its bucket
    const std::vector<std::int32_t>& remap = bound.remap[j];
    const std::int32_t input = bound.categorical_input[j];
    const std::vector<std::string>& file_labels =
        columns[static_cast<std::size_t>(input)].categories;
    const float* codes = block.column(input);
    UnseenLabels* entry = nullptr;
    for (std::int64_t r = 0; r < block.rows; ++r) {
      const std::int32_t slot =
          category_slot(codes[r], remap.data(), static_cast<std::int32_t>(remap.size()),
                        enc.missing_slot(), enc.unknown_slot());
      if (slot != enc.unknown_slot()) continue;
      if (!entry) {
        const auto it = std::find_if(tally.begin(), tally.end(),
                                     [&](const UnseenLabels& u) { return u.column == enc.name; });
        entry = it != tally.end() ? &*it : &tally.emplace_back();
        entry->column = enc.name;
      }
      ++entry->count;
      const auto code = static_cast<std::size_t>(codes[r]);
      if (entry->examples.size() < kUnseenLabelExamples && code < file_labels.size() &&
          std::find(entry->examples.begin(), entry->examples.end(), file_labels[code]) ==
              entry->examples.end()) {
        entry->examples.push_back(file_labels[code]);
      }
      // Each label is checked once against the model's labels, folded when the first is unseen.
      if (code >= file_labels.size()) continue;
      auto checked = entry->checked_codes.find(static_cast<std::int32_t>(code));
      if (checked == entry->checked_codes.end()) {
        if (entry->checked_codes.size() >= kSpellingsChecked) continue;
        if (!entry->folded_vocabulary)
          entry->folded_vocabulary = std::make_shared<const FoldedLabels>(enc.vocabulary);
        std::int32_t index = -1;
        if (const std::string* training = entry->folded_vocabulary->find(file_labels[code])) {
          index = static_cast<std::int32_t>(entry->spelled_otherwise.size());
          entry->spelled_otherwise.push_back({file_labels[code], 0, *training});
        }
        checked = entry->checked_codes.emplace(static_cast<std::int32_t>(code), index).first;
      }
      if (checked->second >= 0)
        ++entry->spelled_otherwise[static_cast<std::size_t>(checked->second)].rows;
    }
  }
}

void tally_category_slots(const BoundPreparation& bound, const ColumnBlockView& block,
                          std::map<std::string, std::int64_t>* unknown,
                          std::map<std::string, std::int64_t>* missing) {
  const FittedPreparation& fitted = *bound.fitted;
  for (std::size_t j = 0; j < fitted.categorical.size(); ++j) {
    const CategoricalEncoding& enc = fitted.categorical[j];
    const std::vector<std::int32_t>& remap = bound.remap[j];
    const float* codes = block.column(bound.categorical_input[j]);
    std::int64_t unknown_values = 0, missing_values = 0;
    for (std::int64_t r = 0; r < block.rows; ++r) {
      const std::int32_t slot =
          category_slot(codes[r], remap.data(), static_cast<std::int32_t>(remap.size()),
                        enc.missing_slot(), enc.unknown_slot());
      unknown_values += slot == enc.unknown_slot() ? 1 : 0;
      missing_values += slot == enc.missing_slot() ? 1 : 0;
    }
    if (unknown && unknown_values > 0 && !enc.hashed) (*unknown)[enc.name] += unknown_values;
    if (missing && missing_values > 0) (*missing)[enc.name] += missing_values;
  }
}

std::string unseen_labels_note(const UnseenLabels& unseen) {
  std::string examples;
  for (const std::string& label : unseen.examples)
    examples += (examples.empty() ? "'" : ", '") + label + "'";
  const bool one = unseen.count == 1;
  return "column '" + unseen.column + "': " + std::to_string(unseen.count) +
         (one ? " value" : " values") +
         " with labels not seen in training, or too rare there to have a slot "
         "(--min-category-count), " +
         (one ? "was" : "were") + " scored as unknown" +
         (examples.empty() ? "" : " (such as " + examples + ")") +
         (unseen.spelled_otherwise.empty()
              ? ""
              : "; " + spelled_otherwise_text(unseen.spelled_otherwise));
}

}  // namespace lathe
