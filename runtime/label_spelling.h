// Labels that differ in spelling only: in letter case ("True", "TRUE") or in the spaces around them
// ("yes "). Lathe matches labels exactly, as pandas and scikit-learn do (a slot, a class): a new
// export that spells a label otherwise than the training data takes the unknown slot. These
// helpers name such near matches in notes; they never match them (folding case would change the
// predictions of existing models).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lathe {

// `label` in lower case (ASCII letters; other bytes, UTF-8 included, as they are).
inline std::string lowercase_label(std::string_view label) {
  std::string out(label);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char ch) {
    return static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
  });
  return out;
}

// `label` without the spaces and tabs around it, in lower case: two labels of one folded label
// differ only in letter case or surrounding spaces.
inline std::string folded_label(std::string_view label) {
  const auto first = label.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return lowercase_label(label.substr(first, label.find_last_not_of(" \t") - first + 1));
}

// A label the model never saw that is a training label spelled otherwise.
struct SpelledOtherwise {
  std::string label;     // as in the new data
  std::int64_t rows = 0;  // new rows holding it
  std::string training;  // as in training
};

// The most unseen labels of a column checked against the training labels: a column of new ids
// holds as many labels as rows, and the first few matches make the note.
inline constexpr std::size_t kSpellingsChecked = 1000;

// Labels folded (folded_label), to find those another label matches apart from letter case and
// surrounding spaces. Built only when some label is unseen, from the smaller side where one side
// can hold millions of labels (a hashed column's training labels): `lathe drift` folds the unseen
// labels and passes over the training labels once.
class FoldedLabels {
 public:
  explicit FoldedLabels(const std::vector<std::string>& labels) : labels_(&labels) {
    by_folded_.reserve(labels.size());
    for (std::size_t i = 0; i < labels.size(); ++i) {
      std::string folded = folded_label(labels[i]);
      if (folded.size() >= folded_sizes_.size()) folded_sizes_.resize(folded.size() + 1, false);
      folded_sizes_[folded.size()] = true;
      by_folded_[std::move(folded)].push_back(i);
    }
  }
  // Calls `f(i)` for each label i that matches `other` apart from spelling and is not `other`
  // itself, in the labels' order.
  template <class F>
  void for_each_match(std::string_view other, F&& f) const {
    // Most labels differ in length from every folded one: no fold, no allocation for them.
    const auto first = other.find_first_not_of(" \t");
    const std::size_t size = first == std::string_view::npos ? 0 : other.find_last_not_of(" \t") - first + 1;
    if (size >= folded_sizes_.size() || !folded_sizes_[size]) return;
    const auto it = by_folded_.find(folded_label(other));
    if (it == by_folded_.end()) return;
    for (const std::size_t i : it->second) {
      if ((*labels_)[i] != other) f(i);
    }
  }
  // The first label that matches `other` apart from spelling, or null.
  const std::string* find(std::string_view other) const {
    const std::string* found = nullptr;
    for_each_match(other, [&](std::size_t i) {
      if (!found) found = &(*labels_)[i];
    });
    return found;
  }

 private:
  const std::vector<std::string>* labels_;
  std::unordered_map<std::string, std::vector<std::size_t>> by_folded_;
  std::vector<bool> folded_sizes_;  // whether some folded label has this many bytes
};

// What makes `label` another spelling of `training`: "letter case", "surrounding spaces" or both.
inline std::string spelling_difference(std::string_view label, std::string_view training) {
  const auto trimmed = [](std::string_view s) {
    const auto first = s.find_first_not_of(" \t");
    return first == std::string_view::npos ? std::string_view() : s.substr(first, s.find_last_not_of(" \t") - first + 1);
  };
  const bool spaces = trimmed(label).size() != label.size() || trimmed(training).size() != training.size();
  const bool letter_case = trimmed(label) != trimmed(training);
  return letter_case && spaces ? "letter case and surrounding spaces" : spaces ? "surrounding spaces" : "letter case";
}

// The clause a note about unseen labels adds, "'TRUE' (500 rows) is 'True' in training, apart from
// letter case; ...: labels are matched exactly; write them as in training" (the most frequent
// first, at most three named); empty when `spellings` is.
inline std::string spelled_otherwise_text(std::vector<SpelledOtherwise> spellings) {
  if (spellings.empty()) return {};
  std::stable_sort(spellings.begin(), spellings.end(),
                   [](const SpelledOtherwise& a, const SpelledOtherwise& b) { return a.rows > b.rows; });
  constexpr std::size_t kNamed = 3;
  std::string text;
  for (std::size_t i = 0; i < spellings.size() && i < kNamed; ++i) {
    const SpelledOtherwise& s = spellings[i];
    text += (text.empty() ? "'" : "; '") + s.label + "' (" + std::to_string(s.rows) + (s.rows == 1 ? " row" : " rows") +
            ") is '" + s.training + "' in training, apart from " + spelling_difference(s.label, s.training);
  }
  if (spellings.size() > kNamed) {
    const std::size_t more = spellings.size() - kNamed;
    text += "; and " + std::to_string(more) + (more == 1 ? " more such label" : " more such labels");
  }
  return text + ": labels are matched exactly; write them as in training";
}

}  // namespace lathe
