// The columns a model reads, and the check of a table's columns against them (and of the
// preparation the table carries). lathe::Scorer (`lathe score`) and predict_table (`lathe eval`,
// `lathe drift`, `lathe report`) both run it, so every command words a schema mismatch the same
// way, naming the data and the model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/model_file.h"
#include "io/table_reader.h"
#include "lathe/scorer.h"

namespace lathe {

// The model's input columns in the training file's order (those the fitted preparation reads; the
// label and a sample-weight column are not inputs).
std::vector<ModelInput> model_inputs(const ModelFile& model);

// The note `lathe score` and `lathe eval` give when numeric input `column`, which had no missing
// values in training (ModelInput::missing_in_training false), had `count` of them in the data.
std::string untrained_missing_note(const std::string& column, std::int64_t count);
// The same for categorical input `column`, whose missing values take its missing-value slot.
std::string untrained_missing_category_note(const std::string& column, std::int64_t count);

// `read` with every column of strings the model does not read (neither an input nor its label)
// read only as text (TableReadOptions::read_as_text): eval, drift and report never use them as
// categories, and an id with a label per row then costs no pass at open and no memory. Bools and
// their labels are read as the model's inputs and label were (reading_bools_as_inputs).
TableReadOptions reading_for_model(const ModelFile& model, TableReadOptions read);

// `read` with the data's bools read as the labels a categorical input's vocabulary spells them
// in (True/False, TRUE/FALSE or true/false: a model trained on a CSV that `lathe import` read), and
// a categorical column of such labels read as 0 and 1 where the input is numeric (a model trained
// on pandas' or h5py's bools); TableReadOptions::bools_as_labels and labels_as_bools. With
// `label` named, its column too, by `classes` (a classifier's; none for regression).
TableReadOptions reading_bools_as_inputs(const std::vector<ModelInput>& inputs,
                                         TableReadOptions read, const std::string& label = "",
                                         const std::vector<std::string>& classes = {});

// Throws InputError for the first input missing from `columns` or whose type changed:
//   "SOURCE: column 'c' (categorical), an input of the model MODEL, is missing; columns: ..."
//   "SOURCE: column 'c' is categorical but was numeric when the model MODEL was trained"
// `source` names the data (a file name), `model_name` the model (its path; "" = unnamed).
void check_model_inputs(const std::vector<ModelInput>& inputs, const std::string& model_name,
                        const std::vector<ColumnInfo>& columns, const std::string& source);

// check_model_inputs for any owner of inputs: `owner` names it ("the model m.h5", "the preparation
// of p.h5") and `when` the time their types were fixed ("trained", "fitted"):
//   "SOURCE: column 'c' (categorical), an input of OWNER, is missing; columns: ..."
//   "SOURCE: column 'c' is categorical but was numeric when OWNER was WHEN"
void check_inputs(const std::vector<ModelInput>& inputs, const std::string& owner, const std::string& when,
                  const std::vector<ColumnInfo>& columns, const std::string& source);

// `columns` of an empty partition (zero rows) with each input's type taken from `inputs`: no value
// contradicts them, and a header-only CSV imports every column as numeric.
std::vector<ColumnInfo> typed_as_inputs(std::vector<ColumnInfo> columns, const std::vector<ModelInput>& inputs);

// The inputs of a fitted preparation alone (numeric, then categorical columns, in its order).
std::vector<ModelInput> preparation_inputs(const FittedPreparation& fitted);

// Whether `data` (a file) carries the preparation the model's inputs need, beside the check of its
// columns; every command that scores a file runs both (score, eval, drift, report). InputError:
//   - the model was trained on a file written by `lathe prepare` (ModelFile::trained_on_prepared)
//     and `data` does not carry that fitted preparation (its fingerprint): "m.h5 was trained on data
//     prepared by `lathe prepare` (p.h5); test.h5 is not prepared that way: run `lathe prepare
//     test.h5 PREPARED.h5 --from m.h5` first ...";
//   - the model was trained on raw data and `data` was written by `lathe prepare`: the model's own
//     preparation already applied (`lathe prepare --from m.h5`), or another; the model would
//     prepare the prepared values a second time.
void check_data_preparation(const ModelFile& model, const std::filesystem::path& data);

}  // namespace lathe
