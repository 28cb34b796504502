// The label column mapped to what a model trains on and is measured against: its classes (binary:
// negative then positive) and each raw value's class, made from the training rows and checked there
// (make_label_map), and the checks of the labels of rows that are not trained on (check_labels).
#pragma once

#include <string>
#include <vector>

#include "io/table_reader.h"
#include "models/model.h"
#include "runtime/row_mask.h"

namespace lathe {

// What the model trains on, from the label column: classes (binary: negative then positive) and the
// class index of each raw value. Categorical labels are matched by label, numeric ones by value.
struct LabelMap {
  Task task = Task::binary;
  std::vector<std::string> classes;
  bool categorical = false;
  std::vector<std::string> file_labels;  // categorical: the file's label of each code

  // Class index (as float) of a raw value, or NaN when it is not one of the classes.
  float class_of(float raw) const;

  // class_of of every value. A label column holds a few distinct values, so each is named once:
  // naming a value per row (a stream per call) took a quarter of a 1M-row `lathe train`.
  std::vector<float> classes_of(const std::vector<float>& raw) const;
};

// The classes of the training rows `keep` holds, from the label column `column` (its values `raw`):
// InputError naming `file`, the label and the first bad row for a missing or infinite label, a
// numeric class label that is not an integer within +-16777215, a code without a label; and for a
// classification of too few or too many classes (binary: two; multiclass: 2 to 1000), with what to
// do instead. `positive` (binary; "" = the second in sorted order) names the positive class.
// `parent` names the model a retraining starts from ("--init-model m.h5"; "" for none), whose
// classes are `parent_classes`: rows of one class are then refused as a retraining's, which would
// only teach the model to predict that class.
LabelMap make_label_map(Task task, const ColumnInfo& column, const std::vector<float>& raw,
                        const RowMask& keep, const std::string& positive, const std::string& file,
                        const std::string& parent = "",
                        const std::vector<std::string>& parent_classes = {});

// Checks the labels of rows that are not trained on (a --valid file, the data of `lathe eval`,
// `lathe drift` and `lathe report --eval`): `mapped` holds each row's class index (classification)
// or value (regression), NaN where it is unusable, `raw` the column's values. Throws InputError
// naming `file`, the row and why: no label, an infinite one, or a label that is not one of the
// classes of `classes_owner` ("the model m.h5", "the training data"); and naming `file` and the
// column when a regression's label is categorical there (its values are category codes, which
// would be taken for the label's numbers).
void check_labels(const LabelMap& map, const std::vector<float>& mapped,
                  const std::vector<float>& raw, const std::string& file, const std::string& label,
                  const std::string& classes_owner);

// The classes that are one word in different letter case, as "'NO', 'No', 'no' and 'YES', 'Yes'"
// (a group's spellings in the classes' order); empty when there are none. Exports from forms and
// spreadsheets often spell one class several ways ("Yes", "yes", "YES"), which are different
// classes to Lathe, as to pandas and scikit-learn; `lathe import` trims their spaces, not their
// case.
std::string classes_differing_in_case(const std::vector<std::string>& classes);

}  // namespace lathe
