// A loaded model measured on labeled data (`lathe eval`, and the metrics of `lathe drift` and
// `lathe report --eval`): every row of a table predicted block by block as `lathe score` predicts
// it (predict_table), the labels and sample weights read and checked, and the metrics.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/infinite_values.h"
#include "io/model_file.h"
#include "io/table_reader.h"
#include "io/unseen_labels.h"
#include "runtime/device_context.h"
#include "runtime/metrics.h"

namespace lathe {

// The model's metrics on labeled data (the label column named in the model). InputError for a data
// file that lacks an input of the model or whose type changed (naming the file, the column and the
// model, as `lathe score` does) and for a bad label (evaluation_labels). With `weight_column`, the
// metrics are weighted by that column's sample weights, as training's validation metrics are
// (`lathe eval --weight`): a weight that is missing, negative or infinite, weights summing to 0, a
// categorical column or the label are refused as `lathe train --weight` refuses them. Memory: the
// labels, the weights and predict_table's (one float per row each, the predictions one per output).
// `infinite_predictions` (optional) receives the number of rows whose prediction is infinite: a
// regression's fit beyond exp's range (--target-transform) or float's; it makes rmse, mae and r2
// infinite. Always 0 for a classification, whose probabilities are finite.
// `unseen`, `imputed` and `missing_categories` (optional) receive the labels the model never saw,
// the missing values imputed and the categorical ones, as predict_table gives them.
MetricSet evaluate_table(const DeviceContext& ctx, const ModelFile& model,
                         const std::filesystem::path& data, const TableReadOptions& read = {},
                         const std::string& weight_column = "",
                         std::int64_t* infinite_predictions = nullptr,
                         std::vector<UnseenLabels>* unseen = nullptr,
                         std::map<std::string, std::int64_t>* imputed = nullptr,
                         std::map<std::string, std::int64_t>* missing_categories = nullptr);

// The sample weights of every row of `reader` in its column `weight_column`, by which
// evaluate_table (`lathe eval --weight`) and drift_table (`lathe drift --weight`) weight the
// metrics: InputError naming --weight and the columns when the column is missing, or a categorical
// column; UsageError when it is the label; InputError naming the file, the column and the first bad
// row for a weight that is missing, negative or infinite, and when the weights sum to 0.
std::vector<float> evaluation_weights(const ModelFile& model, TableReader& reader,
                                      const std::string& weight_column);

// The column the model's training run weighted its rows by (`lathe train --weight`, as the stored
// options give it), which weighted the validation metrics stored in the model too; "" for none.
std::string training_weight_column(const ModelFile& model);

// The model's label of every row of `reader`, as compute_metrics takes it: the value (regression)
// or the index of the class in model.classes (matched by label). InputError naming the file (and
// the column) when a regression's label is categorical there; naming the file and the first bad
// row: no label column, a missing or infinite label, or a label that was not one of
// the model's classes ("label 'Maybe' in row 4 (column 'churn') was not a class of the model m.h5
// (No, Yes)"). `missing_hint` ends the message of a missing label column (what to do instead).
std::vector<float> evaluation_labels(const ModelFile& model, TableReader& reader,
                                     const std::string& missing_hint = {});

// Scores of every row of a table by a loaded model: predictions as predict (runtime/trainer.h)
// gives them, rows x outputs floats, `predictions` resized to that. The table's columns are checked
// against the model's inputs first (io/model_inputs.h), then the rows are read, prepared and
// predicted block by block (the reader's blocks) by the block scoring `lathe score` runs
// (io/block_scorer.h): memory holds the predictions and two blocks of input rows, never the
// prepared table, and a row gets exactly the prediction `lathe score` gives it. An infinite value
// the model cannot score is refused as `lathe score` refuses it (throw_infinite_value, found in the
// block that holds it). `unseen` (optional) receives the labels of the model's categorical inputs
// that it never saw; `imputed` (optional) the missing values of each numeric input that had any
// (by column name), imputed with its training fill value, and `missing_categories` (optional) those
// of each categorical input that had any, which take its missing-value slot, as `lathe score`
// counts them.
void predict_table(const DeviceContext& ctx, const ModelFile& model, TableReader& reader,
                   std::vector<float>& predictions, std::vector<UnseenLabels>* unseen = nullptr,
                   std::map<std::string, std::int64_t>* imputed = nullptr,
                   std::map<std::string, std::int64_t>* missing_categories = nullptr);

}  // namespace lathe
