#include "io/evaluate_table.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <span>

#include "io/block_scorer.h"
#include "io/column_values.h"
#include "io/label_map.h"
#include "io/model_inputs.h"
#include "io/prepared_data.h"

namespace lathe {

void predict_table(const DeviceContext& ctx, const ModelFile& model, TableReader& reader,
                   std::vector<float>& predictions, std::vector<UnseenLabels>* unseen,
                   std::map<std::string, std::int64_t>* imputed,
                   std::map<std::string, std::int64_t>* missing_categories) {
  check_data_preparation(model, reader.path());
  // The block scoring of `lathe score` (io/block_scorer.h): the same schema check, preparation,
  // predictions and refusal of an infinite value, a block at a time, so that memory holds the
  // predictions and two blocks of input rows, never the prepared table.
  BlockScorer scorer(ctx, model);
  const BoundInput input = scorer.bind(reader.columns(), reader.path().string());
  const std::int64_t rows = reader.rows(), block_rows = reader.block_rows();
  const std::int64_t columns = static_cast<std::int64_t>(reader.columns().size());
  const std::int64_t outputs = scorer.outputs();
  // Only the columns the preparation reads (a weight, an id or an excluded column is not).
  std::vector<std::int64_t> wanted(input.bound->numeric_input.begin(),
                                   input.bound->numeric_input.end());
  wanted.insert(wanted.end(), input.bound->categorical_input.begin(),
                input.bound->categorical_input.end());
  if (input.bound->label_input >= 0) wanted.push_back(input.bound->label_input);
  const auto read = [&](std::int64_t first, std::vector<float>& into) {
    const std::int64_t n = std::min(block_rows, rows - first);
    into.resize(static_cast<std::size_t>(n * columns));
    reader.read_block_columns(first, n, wanted, into);
  };
  predictions.resize(static_cast<std::size_t>(rows * outputs));
  // While block k is predicted, one of the scoring threads reads block k + 1 into the other buffer
  // (BlockScorer::predict's `alongside`), as `lathe score` overlaps its reads with the scoring.
  std::vector<float> blocks[2];
  // Each numeric input's missing values, summed block by block (BlockScorer::predict adds to them).
  const std::vector<NumericEncoding>& numeric = model.preparation.numeric;
  std::vector<std::int64_t> missing(imputed ? numeric.size() : 0, 0);
  if (rows > 0) read(0, blocks[0]);
  for (std::int64_t first = 0, k = 0; first < rows; first += block_rows, ++k) {
    const std::int64_t n = std::min(block_rows, rows - first), next = first + block_rows;
    std::vector<float>& other = blocks[(k + 1) % 2];
    if (unseen)
      tally_unseen_labels(*input.bound, reader.columns(),
                          ColumnBlockView{blocks[k % 2].data(), n, columns}, *unseen);
    if (missing_categories) {
      tally_category_slots(*input.bound, ColumnBlockView{blocks[k % 2].data(), n, columns}, nullptr,
                           missing_categories);
    }
    scorer.predict(input, ColumnBlockView{blocks[k % 2].data(), n, columns}, first,
                   std::span<float>(predictions)
                       .subspan(static_cast<std::size_t>(first * outputs),
                                static_cast<std::size_t>(n * outputs)),
                   imputed ? &missing : nullptr, [&] {
                     if (next < rows) read(next, other);
                   });
  }
  for (std::size_t j = 0; j < missing.size(); ++j) {
    if (missing[j] > 0) (*imputed)[numeric[j].name] += missing[j];
  }
}

std::vector<float> evaluation_labels(const ModelFile& model, TableReader& reader,
                                     const std::string& missing_hint) {
  const std::int32_t label_col =
      column_index(reader, model.label, "the model's label", missing_hint);
  const auto raw = read_columns(reader, {label_col});
  LabelMap map;
  map.task = model.task;
  map.classes = model.classes;
  map.categorical = reader.columns()[label_col].type == ColumnType::categorical;
  map.file_labels = reader.columns()[label_col].categories;
  std::vector<float> labels = model.task == Task::regression ? raw[0] : map.classes_of(raw[0]);
  check_labels(map, labels, raw[0], reader.path().string(), model.label,
               model.path.empty() ? "the model" : "the model " + model.path.string());
  return labels;
}

std::vector<float> evaluation_weights(const ModelFile& model, TableReader& reader,
                                      const std::string& weight_column) {
  const std::int32_t col = weight_column_index(reader, weight_column, model.label);
  std::vector<float> weights = std::move(read_columns(reader, {col})[0]);
  check_sample_weights(weights, nullptr, reader.path().string(), weight_column,
                       "its " + std::to_string(reader.rows()) + " rows");
  return weights;
}

std::string training_weight_column(const ModelFile& model) {
  // The options hold each option's values as given: a list, the last one counting.
  const nlohmann::json options = nlohmann::json::parse(model.options_json, nullptr, false);
  if (options.is_object() && options.contains("weight") && options["weight"].is_array() &&
      !options["weight"].empty() && options["weight"].back().is_string()) {
    return options["weight"].back().get<std::string>();
  }
  return "";
}

MetricSet evaluate_table(const DeviceContext& ctx, const ModelFile& model,
                         const std::filesystem::path& data, const TableReadOptions& read,
                         const std::string& weight_column, std::int64_t* infinite_predictions,
                         std::vector<UnseenLabels>* unseen,
                         std::map<std::string, std::int64_t>* imputed,
                         std::map<std::string, std::int64_t>* missing_categories) {
  TableReadOptions for_model = reading_for_model(model, read);
  if (!weight_column.empty()) {  // read as numbers: a weight of strings is refused by name
    for_model.vector_datasets.push_back(weight_column);
    for_model.read_as_text = [weight_column,
                              text = for_model.read_as_text](const std::string& name) {
      return name != weight_column && text(name);
    };
  }
  TableReader reader(data, for_model);
  // The preparation and the schema first: they cost nothing, the labels cost a pass over the file.
  check_data_preparation(model, reader.path());
  check_model_inputs(model_inputs(model), model.path.string(), reader.columns(),
                     reader.path().string());
  const std::vector<float> weights = weight_column.empty()
                                         ? std::vector<float>()
                                         : evaluation_weights(model, reader, weight_column);
  // Rows without the label are what `lathe score` is for (QA: `lathe eval m.h5 month.h5` on the
  // month to be scored named the missing column only).
  const std::vector<float> labels = evaluation_labels(
      model, reader,
      " (eval measures the model against the label; `lathe score " + model.path.string() + " " +
          reader.path().string() + " --out FILE` predicts rows without one)");
  std::vector<float> predictions;
  predict_table(ctx, model, reader, predictions, unseen, imputed, missing_categories);
  if (infinite_predictions) {
    // As `lathe score` counts them (io/scorer.cpp): a probability is never infinite.
    *infinite_predictions = model.task == Task::regression
                                ? std::count_if(predictions.begin(), predictions.end(),
                                                [](float p) { return std::isinf(p); })
                                : 0;
  }
  return compute_metrics(ctx, model.task, predictions, labels, weights,
                         static_cast<std::int32_t>(model.classes.size()));
}

}  // namespace lathe
