// The columns a model reads, and the check of a table's columns against them. lathe::Scorer
// (`lathe score`) and predict_table (`lathe eval`, `lathe drift`, `lathe report`) both run it, so
// every command words a schema mismatch the same way, naming the data and the model.
#pragma once

#include <string>
#include <vector>

#include "io/model_file.h"
#include "io/table_reader.h"
#include "lathe/scorer.h"

namespace lathe {

// The model's input columns in the training file's order (those the fitted preparation reads; the
// label and a sample-weight column are not inputs).
std::vector<ModelInput> model_inputs(const ModelFile& model);

// Throws InputError for the first input missing from `columns` or whose type changed:
//   "SOURCE: column 'c' (categorical), an input of the model MODEL, is missing (columns: ...)"
//   "SOURCE: column 'c' is categorical but was numeric when the model MODEL was trained"
// `source` names the data (a file name), `model_name` the model (its path; "" = unnamed).
void check_model_inputs(const std::vector<ModelInput>& inputs, const std::string& model_name,
                        const std::vector<ColumnInfo>& columns, const std::string& source);

}  // namespace lathe
