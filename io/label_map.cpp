#include "io/label_map.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <unordered_map>

#include "io/column_values.h"
#include "runtime/error.h"
#include "runtime/label_spelling.h"

namespace lathe {

namespace {

// The class name of a numeric class label (an integer below 2^24 in magnitude, make_label_map
// checks): all its digits. number_label keeps 6 significant digits, which named 1234567 and 1234568
// both "1.23457e+06", one class; it still names the classes of models saved before (class_of).
std::string numeric_class_name(float v) { return std::to_string(static_cast<long long>(v)); }

// Integers from 2^24 up are not all float32s (labels are read as float32): 16777217 reads as
// 16777216, so two classes there would silently become one.
constexpr float kLargestNumericClass = 16777216.0f;

// "No, Yes", or the first ten classes and how many there are.
std::string class_list(const std::vector<std::string>& classes) {
  std::string out;
  for (std::size_t i = 0; i < classes.size() && i < 10; ++i) out += (i ? ", " : "") + classes[i];
  if (classes.size() > 10) out += ", ... (" + std::to_string(classes.size()) + " classes)";
  return out;
}

// The most classes a multiclass label may have: a softmax model holds features x classes weights
// and its confusion matrix classes^2 counts, so a numeric target taken for a class label (prices,
// thousands of distinct values) would take gigabytes and hours before it failed or finished.
constexpr std::size_t kMaxMulticlassClasses = 1000;

}  // namespace

float LabelMap::class_of(float raw) const {
  if (std::isnan(raw)) return NAN;
  if (!categorical && raw != std::floor(raw)) return NAN;
  const std::string name = categorical ? (raw >= 0 && raw < file_labels.size()
                                              ? file_labels[static_cast<std::size_t>(raw)]
                                              : std::string())
                           : std::fabs(raw) < kLargestNumericClass ? numeric_class_name(raw)
                                                                   : std::string();
  auto it = std::find(classes.begin(), classes.end(), name);
  // A model saved before classes were named in full (number_label: the same name below 10^6).
  if (it == classes.end() && !categorical)
    it = std::find(classes.begin(), classes.end(), number_label(raw));
  return it == classes.end() ? NAN : static_cast<float>(it - classes.begin());
}

std::vector<float> LabelMap::classes_of(const std::vector<float>& raw) const {
  std::unordered_map<float, float> known;
  std::vector<float> out(raw.size());
  for (std::size_t r = 0; r < raw.size(); ++r) {
    const float v = raw[r];
    if (std::isnan(v)) {
      out[r] = NAN;
      continue;
    }
    auto it = known.find(v);
    if (it == known.end()) it = known.emplace(v, class_of(v)).first;
    out[r] = it->second;
  }
  return out;
}

void check_labels(const LabelMap& map, const std::vector<float>& mapped,
                  const std::vector<float>& raw, const std::string& file, const std::string& label,
                  const std::string& classes_owner) {
  if (map.task == Task::regression && map.categorical) {
    throw InputError(file + ": label '" + label +
                     "' is categorical; a regression needs a numeric label, as in " +
                     classes_owner);
  }
  for (std::size_t r = 0; r < mapped.size(); ++r) {
    if (std::isfinite(mapped[r])) continue;
    const float v = raw[r];
    const std::string where =
        file + ": label '" + label + "': " + row_text(static_cast<std::int64_t>(r));
    if (std::isnan(v)) throw InputError(where + " has no label (missing)");
    if (std::isinf(v) || map.task == Task::regression) {
      throw InputError(where + " has an infinite label (or one beyond float32's range, +-3.4e38)");
    }
    const std::string value = map.categorical ? (v >= 0 && v < map.file_labels.size()
                                                     ? map.file_labels[static_cast<std::size_t>(v)]
                                                     : std::string("code ") + number_label(v))
                                              : number_label(v);
    // A class spelled otherwise ('no' for 'No', as a CRM export writes it) is named as such: the
    // class list alone left the user to spot it.
    std::string spelling;
    if (map.categorical) {
      if (const std::string* training = FoldedLabels(map.classes).find(value)) {
        spelling = ": it is the class '" + *training + "' apart from " +
                   spelling_difference(value, *training) +
                   ", and classes are matched exactly; write them as in training";
      }
    }
    throw InputError(file + ": label '" + value + "' in " + row_text(static_cast<std::int64_t>(r)) +
                     " (column '" + label + "') was not a class of " + classes_owner + " (" +
                     class_list(map.classes) + ")" + spelling);
  }
}

std::string classes_differing_in_case(const std::vector<std::string>& classes) {
  std::map<std::string, std::vector<std::string>> spellings;
  for (const std::string& name : classes) spellings[lowercase_label(name)].push_back(name);
  std::string groups;
  for (const auto& [folded, names] : spellings) {
    if (names.size() < 2) continue;
    std::string group;
    for (const std::string& name : names) group += (group.empty() ? "'" : ", '") + name + "'";
    groups += (groups.empty() ? "" : " and ") + group;
  }
  return groups;
}

LabelMap make_label_map(Task task, const ColumnInfo& column, const std::vector<float>& raw,
                        const RowMask& keep, const std::string& positive, const std::string& file,
                        const std::string& parent, const std::vector<std::string>& parent_classes) {
  LabelMap map;
  map.task = task;
  map.categorical = column.type == ColumnType::categorical;
  map.file_labels = column.categories;
  const std::string where = file + ": label '" + column.name + "'";
  std::unordered_map<float, std::int64_t> distinct;  // counted by value, named once each below
  for (std::int64_t r = 0; r < static_cast<std::int64_t>(raw.size()); ++r) {
    if (!keep.test(r)) continue;
    const float v = raw[static_cast<std::size_t>(r)];
    if (!std::isfinite(v)) {
      throw InputError(where + ": " + row_text(r) + " has " +
                       (std::isnan(v)
                            ? "no label (missing)"
                            : "an infinite label (or one beyond float32's range, +-3.4e38)"));
    }
    if (task == Task::regression) continue;
    if (!map.categorical && v != std::floor(v)) {  // -1/+1 (Vowpal Wabbit's) are classes too
      throw InputError(where + ": " + row_text(r) + " has label " + number_label(v) +
                       "; a numeric class label must be an integer (or import it as categorical)");
    }
    if (!map.categorical && std::fabs(v) >= kLargestNumericClass) {
      throw InputError(
          where + ": " + row_text(r) + " has label " + number_label(v) +
          "; numeric class labels must lie within +-16777215 (read as float32, larger integers "
          "are not told apart: 16777217 reads as 16777216); store the classes as text or as "
          "small integer codes");
    }
    if (map.categorical && !(v >= 0 && v < static_cast<float>(map.file_labels.size()))) {
      throw InputError(where + ": " + row_text(r) + " has code " + number_label(v) + " but only " +
                       std::to_string(map.file_labels.size()) + " labels (codes 0.." +
                       std::to_string(static_cast<std::int64_t>(map.file_labels.size()) - 1) +
                       ", -1 for missing)");
    }
    ++distinct[v];
  }
  std::map<std::string, std::int64_t> present;
  for (const auto& [v, count] : distinct) {
    present[map.categorical ? map.file_labels.at(static_cast<std::size_t>(v))
                            : numeric_class_name(v)] += count;
  }
  if (task == Task::regression) {
    if (map.categorical)
      throw InputError(where + " is categorical; a regression needs a numeric label");
    return map;
  }
  for (const auto& [name, count] : present) map.classes.push_back(name);
  if (!map.categorical) {
    // Numeric classes in numeric order (0, 1, 2, ... 10), not string order.
    std::sort(
        map.classes.begin(), map.classes.end(),
        [](const std::string& a, const std::string& b) { return std::stod(a) < std::stod(b); });
  }
  if (!parent.empty() && map.classes.size() == 1) {
    // A retraining keeps its parent's classes when some are absent (a month without one species),
    // but rows of one class only push every row's prediction toward it, epoch after epoch.
    throw InputError(
        where + ": every training row is of one class (" + map.classes[0] + "); a retraining of " +
        parent + " (classes " + class_list(parent_classes) +
        ") on them would only teach it to predict that class: retrain on rows of at least two "
        "classes (several batches together)");
  }
  if (task == Task::binary) {
    if (map.classes.size() < 2) {
      throw InputError(where + ": only one class (" +
                       (map.classes.empty() ? "none" : map.classes[0]) +
                       ") in the training data; a binary task needs two");
    }
    if (map.classes.size() > 2) {
      // Past the multiclass cap, --task multiclass would be refused too: a numeric label of that
      // many values is a quantity (a price), which the multiclass error sends to regression.
      const bool multiclass_takes_them = map.classes.size() <= kMaxMulticlassClasses;
      if (const std::string same = classes_differing_in_case(map.classes);
          !same.empty() && multiclass_takes_them) {
        throw InputError(
            where + ": " + std::to_string(map.classes.size()) +
            " classes for a binary task, though " + same +
            " differ only in letter case (classes are compared exactly): write each class "
            "one way in the data, or use --task multiclass if they are different classes");
      }
      // A numeric label of many values (a count such as tenure in months) is more likely a quantity
      // than class codes: both tasks are named, as the multiclass note does past 20 classes.
      const bool maybe_quantity = !map.categorical && map.classes.size() > 20;
      throw InputError(where + ": " + std::to_string(map.classes.size()) +
                       " classes for a binary task; " +
                       (multiclass_takes_them
                            ? (maybe_quantity ? "use --task multiclass if they are class codes, or "
                                                "--task regression if it is a quantity"
                                              : "use --task multiclass")
                        : map.categorical ? "a multiclass task takes at most " +
                                                std::to_string(kMaxMulticlassClasses) + " classes"
                                          : "a numeric target? use --task regression"));
    }
    if (!positive.empty()) {
      // A numeric class is named by its number however it is written: --positive 1.0 names class 1.
      const auto names = [&](const std::string& name) {
        if (positive == name) return true;
        if (map.categorical) return false;
        char* end = nullptr;
        const double v = std::strtod(positive.c_str(), &end);
        return end != positive.c_str() && *end == '\0' && v == std::stod(name);
      };
      if (names(map.classes[0])) {
        std::swap(map.classes[0], map.classes[1]);
      } else if (!names(map.classes[1])) {
        throw InputError("--positive: '" + positive + "' is not a label of '" + column.name +
                         "' (" + map.classes[0] + ", " + map.classes[1] + ")");
      }
    }
  } else if (map.classes.size() < 2) {
    throw InputError(where + ": a multiclass task needs at least two classes");
  } else if (map.classes.size() > kMaxMulticlassClasses) {
    throw InputError(where + ": " + std::to_string(map.classes.size()) +
                     " distinct values; a multiclass task takes at most " +
                     std::to_string(kMaxMulticlassClasses) + " classes" +
                     (map.categorical ? "" : " (a numeric target? use --task regression)"));
  }
  return map;
}

}  // namespace lathe
