// lathe::Scorer (include/lathe/scorer.h): a loaded model, the schema check, and the scoring of one
// block: the same fitted preparation the model was trained with (runtime/preparation.h), the
// model's predictions (runtime/trainer.h: predict, the model's scores through the task's link). The
// prediction of a block is BlockScorer's (io/block_scorer.h), which predict_table (`lathe eval`,
// `lathe drift`, `lathe report --eval`) runs too, so a scored row gets exactly the prediction
// `lathe eval` computes for it, and a row it cannot score (an infinite value: io/infinite_values.h,
// throw_infinite_value) is refused in the same words. The block API of `lathe score`
// (io/scoring_input.h) is defined here too, next to the Scorer whose internals it uses.
#include "lathe/scorer.h"

#include <omp.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <exception>
#include <future>
#include <limits>
#include <mutex>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "io/block_scorer.h"
#include "io/evaluate_table.h"
#include "io/infinite_values.h"
#include "io/model_file.h"
#include "io/model_inputs.h"
#include "io/preparation_json.h"
#include "io/prepared_data.h"
#include "io/scoring_input.h"
#include "io/table_reader.h"
#include "io/unseen_labels.h"
#include "kernels/metric_formulas.h"
#include "kernels/prepare_formulas.h"
#include "models/model.h"
#include "runtime/column_block.h"
#include "runtime/device_context.h"
#include "runtime/error.h"
#include "runtime/message_names.h"
#include "runtime/preparation.h"
#include "runtime/trainer.h"
#include "runtime/vector_clones.h"

#ifndef LATHE_VERSION
#error "LATHE_VERSION (the project's version) is set for this file by CMakeLists.txt"
#endif

namespace lathe {

const char* version() { return LATHE_VERSION; }

const char* scoring_task_name(ScoringTask task) {
  switch (task) {
    case ScoringTask::regression: return "regression";
    case ScoringTask::binary: return "binary";
    case ScoringTask::multiclass: return "multiclass";
  }
  return "unknown";
}

BatchColumn BatchColumn::numeric(std::string name, std::span<const double> values) {
  BatchColumn c;
  c.name = std::move(name);
  c.values = values;
  return c;
}

BatchColumn BatchColumn::numeric(std::string name, std::span<const float> values) {
  BatchColumn c;
  c.name = std::move(name);
  c.float_values = values;
  return c;
}

BatchColumn BatchColumn::categorical_labels(std::string name, std::span<const std::string> labels) {
  BatchColumn c;
  c.name = std::move(name);
  c.categorical = true;
  c.texts = labels;
  return c;
}

std::int64_t BatchColumn::rows() const {
  if (categorical) return static_cast<std::int64_t>(codes.empty() ? texts.size() : codes.size());
  return static_cast<std::int64_t>(values.empty() ? float_values.size() : values.size());
}

BatchColumn BatchColumn::categorical_codes(std::string name, std::span<const std::int32_t> codes,
                                           std::vector<std::string> labels) {
  BatchColumn c;
  c.name = std::move(name);
  c.categorical = true;
  c.codes = codes;
  c.labels = std::move(labels);
  return c;
}

void ScoringSummary::add(const ScoringSummary& other) {
  rows += other.rows;
  for (const auto& [name, n] : other.imputed) imputed[name] += n;
  for (const auto& [name, n] : other.unknown_categories) unknown_categories[name] += n;
  for (const auto& [name, n] : other.missing_categories) missing_categories[name] += n;
  infinite_predictions += other.infinite_predictions;
}

namespace {

ScoringTask scoring_task_of(Task task) {
  switch (task) {
    case Task::regression: return ScoringTask::regression;
    case Task::binary: return ScoringTask::binary;
    case Task::multiclass: return ScoringTask::multiclass;
  }
  return ScoringTask::regression;
}

std::string kind_text(bool categorical) { return categorical ? "categorical" : "numeric"; }

// Rows per tile of the CPU scoring pass: the tile's input columns and its prepared columns (about
// 2 x 2048 x columns x 4 bytes) stay in a core's L2 cache from the preparation to the model.
constexpr std::int64_t kScoreTileRows = 2048;

struct ValueCounts {
  std::int64_t missing = 0;
  std::int64_t first_infinite = -1;  // row index, -1 when none
};

// Missing (NaN) and infinite values of v[begin, end) (at most a tile of rows): one branch-free
// pass in 32-bit lanes, compiled for AVX2 too (it is the first touch of the tile's values, and the
// SSE2 build with 64-bit counters cost more than the preparation), and a second pass only when an
// infinite value is there.
LATHE_VECTOR_CLONES ValueCounts count_values(const float* __restrict__ v, std::int64_t begin, std::int64_t end) {
  std::int32_t missing = 0, infinite = 0;
  for (std::int64_t r = begin; r < end; ++r) {
    std::uint32_t bits;
    std::memcpy(&bits, v + r, sizeof bits);
    const std::uint32_t magnitude = bits & 0x7fffffffu;
    missing += magnitude > 0x7f800000u ? 1 : 0;
    infinite |= magnitude == 0x7f800000u ? 1 : 0;
  }
  ValueCounts c;
  c.missing = missing;
  if (infinite) {
    for (std::int64_t r = begin; r < end && c.first_infinite < 0; ++r) {
      if (std::isinf(v[r])) c.first_infinite = r;
    }
  }
  return c;
}

}  // namespace

struct Scorer::Impl {
  std::filesystem::path path;
  ModelFile model;
  std::unique_ptr<BlockScorer> scorer;  // refers to `model`
  // Scratch reused from block to block, so steady-state scoring allocates nothing.
  std::vector<float> predictions;   // a block's, in predict's layout
  std::vector<std::int64_t> missing;  // a block's missing values per numeric input
  std::vector<float> batch_values;  // score(BatchColumn...): the batch as a float32 block
  // Held by every call that scores: the scratch above and BlockScorer's are shared by the calls,
  // and each call uses every core already, so calls from several threads run one at a time.
  std::mutex mutex;
};

struct ScoringInput::Impl {
  BoundInput input;
  std::vector<std::string> notes;
};

ScoringInput::ScoringInput(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ScoringInput::~ScoringInput() = default;
ScoringInput::ScoringInput(ScoringInput&&) noexcept = default;
ScoringInput& ScoringInput::operator=(ScoringInput&&) noexcept = default;
const std::vector<std::string>& ScoringInput::notes() const { return impl_->notes; }
std::int64_t ScoringInput::columns() const { return impl_->input.columns; }

// The model's input columns in the training file's order (those the fitted preparation reads; the
// label and a sample-weight column are not inputs).
std::string untrained_missing_note(const std::string& column, std::int64_t count) {
  return "column '" + column + "' had no missing values in training; " + std::to_string(count) +
         " missing values were imputed with the training fill value";
}

std::string untrained_missing_category_note(const std::string& column, std::int64_t count) {
  return "column '" + column + "' had no missing values in training; " + std::to_string(count) +
         " missing values were scored with its missing-value slot, which training never saw";
}

std::vector<ModelInput> model_inputs(const ModelFile& model) {
  const FittedPreparation& f = model.preparation;
  std::unordered_map<std::string, ModelInput> needed;
  std::vector<std::string> fitted_order;
  for (const auto& n : f.numeric) {
    needed[n.name] = ModelInput{n.name, false, n.has_missing, {}};
    fitted_order.push_back(n.name);
  }
  for (const auto& c : f.categorical) {
    bool missing = false;
    if (model.profile) {
      for (const ColumnProfile& column : model.profile->columns) {
        if (column.name == c.name && column.type == ColumnType::categorical) missing = column.categorical.missing > 0;
      }
    }
    needed[c.name] = ModelInput{c.name, true, missing, c.vocabulary};
    fitted_order.push_back(c.name);
  }
  std::vector<ModelInput> inputs;
  std::unordered_set<std::string> placed;
  for (const auto& column : model.input_schema) {
    const auto it = needed.find(column.name);
    if (it != needed.end() && placed.insert(column.name).second) inputs.push_back(it->second);
  }
  for (const auto& name : fitted_order) {
    if (placed.insert(name).second) inputs.push_back(needed[name]);
  }
  return inputs;
}

TableReadOptions reading_for_model(const ModelFile& model, TableReadOptions read) {
  std::unordered_set<std::string> used;
  for (const ModelInput& in : model_inputs(model)) used.insert(in.name);
  used.insert(model.label);
  if (!model.label.empty()) read.label_dataset = model.label;  // a matrix file's label dataset
  read.read_as_text = [used = std::move(used)](const std::string& name) { return used.count(name) == 0; };
  return reading_bools_as_inputs(model_inputs(model), std::move(read), model.label, model.classes);
}

namespace {

// The false and true labels of `labels` when each is a bool's (bool_text_value), the one they lack
// spelled as the other (True -> False, TRUE -> FALSE, true -> false); nothing otherwise.
std::optional<std::array<std::string, 2>> bool_spelling(const std::vector<std::string>& labels) {
  std::array<std::string, 2> spelled;  // false's, true's
  for (const std::string& label : labels) {
    const std::optional<bool> value = bool_text_value(label);
    if (!value) return std::nullopt;
    if (spelled[*value ? 1 : 0].empty()) spelled[*value ? 1 : 0] = label;
  }
  if (labels.empty()) return std::nullopt;
  static const std::array<std::array<std::string, 2>, 3> kPairs = {
      {{"False", "True"}, {"FALSE", "TRUE"}, {"false", "true"}}};
  for (int missing = 0; missing < 2; ++missing) {
    if (!spelled[missing].empty()) continue;
    for (const auto& pair : kPairs) {
      if (pair[1 - missing] == spelled[1 - missing]) spelled[missing] = pair[missing];
    }
  }
  return spelled;
}

}  // namespace

TableReadOptions reading_bools_as_inputs(const std::vector<ModelInput>& inputs,
                                         TableReadOptions read, const std::string& label,
                                         const std::vector<std::string>& classes) {
  for (const ModelInput& in : inputs) {
    if (!in.categorical) {
      read.labels_as_bools.insert(in.name);
    } else if (const auto spelled = bool_spelling(in.labels)) {
      read.bools_as_labels[in.name] = *spelled;
    }
  }
  if (!label.empty()) {
    // A regression's label, or classes a bool column gave (as numbers, "0" and "1").
    const bool numbers =
        classes.empty() || std::all_of(classes.begin(), classes.end(),
                                       [](const std::string& c) { return c == "0" || c == "1"; });
    if (numbers) {
      read.labels_as_bools.insert(label);
    } else if (const auto spelled = bool_spelling(classes)) {
      read.bools_as_labels[label] = *spelled;
    }
  }
  return read;
}

std::vector<ColumnInfo> typed_as_inputs(std::vector<ColumnInfo> columns, const std::vector<ModelInput>& inputs) {
  for (ColumnInfo& column : columns) {
    for (const ModelInput& in : inputs) {
      if (in.name == column.name) column.type = in.categorical ? ColumnType::categorical : ColumnType::numeric;
    }
  }
  return columns;
}

namespace {

// Whether a categorical column's labels are a bool's, as a CSV writes them (bool_text_value).
bool bool_labels(const std::vector<std::string>& labels) {
  return !labels.empty() && std::all_of(labels.begin(), labels.end(), [](const std::string& label) {
    return bool_text_value(label).has_value();
  });
}

// " (...: the output of `lathe score`)" where `names` are a scores file's columns (`prediction`, or
// `predicted_class` beside `probability` or `probability_<label>` columns, and at most one other,
// an --id), else "": a file of scores given where the data it scored belongs.
std::string scores_hint(const std::vector<std::string>& names) {
  std::size_t outputs = 0;
  bool predicted = false;
  for (const std::string& name : names) {
    const bool output = name == "prediction" || name == "predicted_class" ||
                        name == "probability" || name.rfind("probability_", 0) == 0;
    outputs += output ? 1 : 0;
    predicted = predicted || name == "prediction" || name == "predicted_class";
  }
  if (!predicted || outputs + 1 < names.size()) return "";
  return " (these are the columns `lathe score` writes: is this a file of scores? give the data it "
         "scored)";
}

}  // namespace

void check_inputs(const std::vector<ModelInput>& inputs, const std::string& owner, const std::string& when,
                  const std::vector<ColumnInfo>& columns, const std::string& source) {
  std::unordered_map<std::string, std::size_t> by_name;
  std::vector<std::string> names;
  for (std::size_t c = 0; c < columns.size(); ++c) {
    by_name.emplace(columns[c].name, c);
    names.push_back(columns[c].name);
  }
  for (const ModelInput& in : inputs) {
    const auto it = by_name.find(in.name);
    if (it == by_name.end()) {
      // A renamed column is named as the closest one, as --label's typo is.
      throw InputError(source + ": column '" + in.name + "' (" + kind_text(in.categorical) +
                       "), an input of " + owner + ", is missing" + did_you_mean(in.name, names) +
                       "; columns: " + (names.empty() ? "none" : name_list(names)) +
                       scores_hint(names));
    }
    const ColumnInfo& column = columns[it->second];
    const bool categorical = column.type == ColumnType::categorical;
    if (categorical != in.categorical) {
      // The usual cause is the import's type inference on a batch: a new file whose labels all read
      // as numbers (codes '1', '2') or are all missing imports the column as numeric, and one value
      // that is not a number ('?') makes a numeric column categorical (the import notes it). Bools
      // are the other: `lathe import` reads a CSV's True/False as labels, while pandas and h5py
      // store a bool column as 0/1 (HDF5 enum or bitfield), which Lathe reads as numbers.
      std::string how;
      if (in.categorical && column.dtype == "bool" && bool_labels(in.labels)) {
        how = "; it holds bools (read as 0 and 1) where the model's labels are " +
              name_list(in.labels) +
              " (a CSV's True/False, which `lathe import` reads as labels): store the column as "
              "those "
              "strings (pandas: .astype(str)), or train on a file that stores it as bools";
      } else if (in.categorical) {
        how =
            "; if its labels all read as numbers or are all missing, import the file with "
            "--categorical '" +
            in.name + "'";
      } else if (bool_labels(column.categories)) {
        how = "; its labels are " + name_list(column.categories) +
              ", where the model was trained on bools read as 0 and 1 (as pandas and h5py store "
              "them): write them as 1 and 0, or store the column as bools";
      } else {
        how = "; if a value that is not a number made it so, the import's note names it";
      }
      throw InputError(source + ": column '" + in.name + "' is " + kind_text(categorical) + " but was " +
                       kind_text(in.categorical) + " when " + owner + " was " + when + how);
    }
    // Its codes would round to a neighbour's label (a file's column; a batch's codes are renumbered).
    const std::size_t labels = columns[it->second].categories.size();
    if (categorical && static_cast<std::int64_t>(labels) > kMaxExactCategoryLabels) {
      throw InputError(source + ": column '" + in.name + "', an input of " + owner + ", has " + std::to_string(labels) +
                       " category labels, more than the " + std::to_string(kMaxExactCategoryLabels) +
                       " whose codes Lathe carries exactly; split the file so that each part holds fewer");
    }
  }
}

void check_model_inputs(const std::vector<ModelInput>& inputs, const std::string& model_name,
                        const std::vector<ColumnInfo>& columns, const std::string& source) {
  check_inputs(inputs, model_name.empty() ? "the model" : "the model " + model_name, "trained", columns, source);
}

std::vector<ModelInput> preparation_inputs(const FittedPreparation& fitted) {
  ModelFile alone;
  alone.preparation = fitted;
  return model_inputs(alone);
}

void check_data_preparation(const ModelFile& model, const std::filesystem::path& data) {
  const std::optional<PreparedSource> tag = read_prepared_tag(data);
  const std::string model_name = model.path.empty() ? "the model" : model.path.string();
  const std::string from = model.path.empty() ? "MODEL.h5" : model.path.string();
  if (model.trained_on_prepared) {
    const PreparedSource& trained = *model.trained_on_prepared;
    if (tag && tag->fingerprint == trained.fingerprint) return;
    std::string message = model_name + " was trained on data prepared by `lathe prepare` (" + trained.source + "); " +
                          data.string() + " is not prepared that way";
    if (tag) {
      message += " (it carries another fitted preparation: fingerprint " + tag->fingerprint + ", the model's is " +
                 trained.fingerprint + ")";
    }
    message += ": run `lathe prepare " + (tag ? std::string("RAW.h5") : data.string()) + " PREPARED.h5 --from " + from +
               "` " + (tag ? "on the raw data " : "") + "first (the model stores the preparation of " + trained.source +
               "; `--from " + trained.source + "` applies the same)";
    throw InputError(message);
  }
  if (!tag) return;
  if (tag->fingerprint == preparation_fingerprint(preparation_to_json(model.preparation))) {
    throw InputError(data.string() + " holds the preparation of " + model_name + " already applied (`lathe prepare --from " +
                     from + "`), but the model was trained on raw data and applies that preparation itself: give it "
                     "the raw data");
  }
  // Any other prepared file holds values in other units (centered, scaled, imputed, categories as
  // slots): the model's preparation would transform them a second time, and score them silently.
  const std::string raw = prepared_from(data);
  throw InputError(data.string() + " was written by `lathe prepare`" + (raw.empty() ? "" : " (prepared from " + raw + ")") +
                   ", but " + model_name + " was trained on raw data and prepares its inputs itself: give it the raw data" +
                   (raw.empty() ? "" : " (" + raw + ")"));
}

namespace {

// DeviceContext::select, whose messages name the CLI's option ("--device cuda:1: ..."): for the
// API they name the Scorer's device argument instead.
DeviceContext select_scorer_device(const std::string& device) {
  const auto reworded = [](const std::string& what) {
    return what.starts_with("--device") ? "device" + what.substr(8) : what;
  };
  try {
    return DeviceContext::select(device);
  } catch (const UsageError& e) {
    throw UsageError(reworded(e.what()));
  } catch (const CudaError&) {
    throw;
  } catch (const InputError& e) {
    throw InputError(reworded(e.what()));
  }
}

}  // namespace

Scorer::Scorer(const std::filesystem::path& model_path, const std::string& device) : impl_(std::make_unique<Impl>()) {
  impl_->path = model_path;
  // Scoring reads nothing of the training profile but whether each column had missing values.
  ModelLoadOptions load;
  load.profile_labels = false;
  impl_->model = load_model(model_path, nullptr, load);
  impl_->scorer = std::make_unique<BlockScorer>(select_scorer_device(device), impl_->model);
  // The model that scores holds its own copy of the parameters; nothing reads these again.
  std::vector<float>().swap(impl_->model.parameters.weights);
  std::vector<float>().swap(impl_->model.parameters.factors);
}

Scorer::~Scorer() = default;
Scorer::Scorer(Scorer&&) noexcept = default;
Scorer& Scorer::operator=(Scorer&&) noexcept = default;

ScoringTask Scorer::task() const { return scoring_task_of(impl_->model.task); }
const std::vector<std::string>& Scorer::classes() const { return impl_->model.classes; }
const std::string& Scorer::label() const { return impl_->model.label; }
const std::vector<ModelInput>& Scorer::inputs() const { return impl_->scorer->inputs(); }
const std::filesystem::path& Scorer::model_path() const { return impl_->path; }
const std::string& Scorer::device_description() const { return impl_->scorer->context().description(); }

void Scorer::check_data_file(const std::filesystem::path& data) const { check_data_preparation(impl_->model, data); }

const std::string& Scorer::trained_on_prepared() const {
  static const std::string none;
  return impl_->model.trained_on_prepared ? impl_->model.trained_on_prepared->source : none;
}

// The Scorer's side of the block API (io/scoring_input.h), a friend of Scorer and ScoringInput.
struct ScorerInternals {
  // Reads the model only: needs no lock.
  static ScoringInput bind(const Scorer::Impl& s, const std::vector<ColumnInfo>& columns, const std::string& source,
                           const std::vector<std::string>& passed_through) {
    auto impl = std::make_unique<ScoringInput::Impl>();
    impl->input = s.scorer->bind(columns, source);
    std::unordered_set<std::string> used;
    for (const ModelInput& in : s.scorer->inputs()) used.insert(in.name);
    used.insert(passed_through.begin(), passed_through.end());
    std::string ignored;
    for (const auto& c : columns) {
      if (used.count(c.name)) continue;
      ignored += (ignored.empty() ? "" : ", ") + ("'" + c.name + "'") +
                 (c.name == s.model.label ? " (the model's label)" : "");
    }
    if (!ignored.empty()) impl->notes.push_back("columns not used by the model, ignored: " + ignored);
    return ScoringInput(std::move(impl));
  }
  // The caller holds s.mutex.
  static void score_block(Scorer::Impl& s, const ScoringInput& input, const ColumnBlockView& block,
                          std::int64_t first_row, Scores& out, ScoringSummary* summary,
                          const std::function<void()>& alongside);
  static Scorer::Impl& impl(Scorer& scorer) { return *scorer.impl_; }
  static const Scorer::Impl& impl(const Scorer& scorer) { return *scorer.impl_; }
  static const BoundInput& bound_input(const ScoringInput& input) { return input.impl_->input; }
};

void tally_unseen_labels(const ScoringInput& input, const std::vector<ColumnInfo>& columns, const ColumnBlockView& block,
                         std::vector<UnseenLabels>& tally) {
  tally_unseen_labels(*ScorerInternals::bound_input(input).bound, columns, block, tally);
}

ScoringInput bind_scoring_input(const Scorer& scorer, const std::vector<ColumnInfo>& columns, const std::string& source,
                                const std::vector<std::string>& passed_through) {
  return ScorerInternals::bind(ScorerInternals::impl(scorer), columns, source, passed_through);
}

void score_block(Scorer& scorer, const ScoringInput& input, const ColumnBlockView& block, std::int64_t first_row,
                 Scores& out, ScoringSummary* summary, const std::function<void()>& alongside) {
  auto& s = ScorerInternals::impl(scorer);
  const std::lock_guard<std::mutex> lock(s.mutex);
  ScorerInternals::score_block(s, input, block, first_row, out, summary, alongside);
}

BlockScorer::BlockScorer(const DeviceContext& ctx, const ModelFile& model)
    : model_(&model), ctx_(ctx), shape_(model_shape(model)), inputs_(model_inputs(model)) {
  net_ = make_prediction_model(ctx_, shape_, model.parameters);
  link_ = PredictionLink{model.task, shape_.outputs, model.target_mean, model.target_std, model.target_transform};
  if (model.task != Task::regression &&
      static_cast<std::int32_t>(model.classes.size()) != (model.task == Task::binary ? 2 : model.outputs)) {
    throw InputError(model.path.string() + ": the model has " + std::to_string(model.classes.size()) +
                     " class labels for " + std::to_string(model.outputs) + " outputs (a corrupt model file)");
  }
}

BoundInput BlockScorer::bind(const std::vector<ColumnInfo>& columns, const std::string& source) const {
  // Every input is checked before bind_preparation, so the message names the model and the source.
  check_model_inputs(inputs_, model_->path.string(), columns, source);
  BoundInput in;
  in.bound = std::make_unique<const BoundPreparation>(bind_preparation(model_->preparation, columns));
  in.tiles = std::make_unique<TilePreparation>(*in.bound);
  in.columns = static_cast<std::int64_t>(columns.size());
  in.source = source;
  return in;
}

void BlockScorer::predict(const BoundInput& in, const ColumnBlockView& block, std::int64_t first_row,
                          std::span<float> predictions, std::vector<std::int64_t>* missing,
                          const std::function<void()>& alongside) {
  const FittedPreparation& fitted = model_->preparation;
  if (!in.bound || in.bound->fitted != &fitted || !in.tiles) {
    throw Error("BlockScorer::predict: the input was bound by another scorer");
  }
  if (block.columns != in.columns) {
    throw Error("BlockScorer::predict: " + in.source + ": the block has " + std::to_string(block.columns) +
                " columns but the input was bound with " + std::to_string(in.columns));
  }
  const std::int64_t rows = block.rows;
  const std::int32_t outputs = shape_.outputs;
  const std::int64_t numeric = static_cast<std::int64_t>(fitted.numeric.size());
  if (static_cast<std::int64_t>(predictions.size()) != rows * outputs) {
    throw Error("BlockScorer::predict: " + std::to_string(predictions.size()) + " predictions for " +
                std::to_string(rows) + " rows of " + std::to_string(outputs) + " outputs");
  }
  if (missing && static_cast<std::int64_t>(missing->size()) != numeric) {
    throw Error("BlockScorer::predict: " + std::to_string(missing->size()) + " missing-value counts for " +
                std::to_string(numeric) + " numeric inputs");
  }
  // Per row tile and numeric input: the missing values, and the first row with an infinite value.
  // An unclipped column has no sensible answer for one (training refuses them where the
  // preparation needs finite moments); a column clipped to finite bounds puts it on a bound.
  const std::int64_t tiles = rows == 0 ? 0 : (rows + kScoreTileRows - 1) / kScoreTileRows;
  tile_missing_.assign(static_cast<std::size_t>(tiles * numeric), 0);
  tile_first_infinite_.assign(static_cast<std::size_t>(tiles * numeric), -1);
  const auto count_tile = [&](std::int64_t tile, std::int64_t begin, std::int64_t end) {
    for (std::int64_t j = 0; j < numeric; ++j) {
      const ValueCounts c = count_values(block.column(in.bound->numeric_input[static_cast<std::size_t>(j)]), begin, end);
      tile_missing_[static_cast<std::size_t>(tile * numeric + j)] = c.missing;
      tile_first_infinite_[static_cast<std::size_t>(tile * numeric + j)] = c.first_infinite;
    }
  };
  std::exception_ptr alongside_error;
  const auto run_alongside = [&] {
    try {
      if (alongside) alongside();
    } catch (...) {
      alongside_error = std::current_exception();
    }
  };
  if (ctx_.is_cuda()) {
    // The GPU scores while a host thread runs `alongside` (joined before anything is thrown).
    std::future<void> side = std::async(std::launch::async, run_alongside);
    try {
#pragma omp parallel for schedule(static)
      for (std::int64_t t = 0; t < tiles; ++t) count_tile(t, t * kScoreTileRows, std::min(rows, (t + 1) * kScoreTileRows));
      if (rows > 0) {
        apply_preparation(ctx_, *in.bound, block, prepared_);
        lathe::predict(*net_, link_,
                       PreparedRowsView{prepared_.dense.data(), prepared_.slot.data(), prepared_.value.data(), rows},
                       predictions);
      }
    } catch (...) {
      side.wait();
      throw;
    }
    side.get();
  } else {
    // On the CPU each thread takes a tile of rows through the checks, the preparation, the model
    // and the link while the tile is in its cache: one pass over the block instead of four.
    in.tiles->check(block);
    tile_prepared_.resize(static_cast<std::size_t>(omp_get_max_threads()));
    // An exception must not leave a parallel region (std::terminate): the first one (an allocation
    // failing, say) is kept and rethrown after it.
    std::exception_ptr error;
#pragma omp parallel
    {
      PreparedBlock& tile = tile_prepared_[static_cast<std::size_t>(omp_get_thread_num())];
      // One thread runs `alongside` first, then takes what tiles are left.
#pragma omp single nowait
      run_alongside();
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t t = 0; t < tiles; ++t) {
        const std::int64_t begin = t * kScoreTileRows, end = std::min(rows, begin + kScoreTileRows);
        try {
          count_tile(t, begin, end);
          in.tiles->prepare(block, begin, end, tile);
          lathe::predict(*net_, link_,
                         PreparedRowsView{tile.dense.data(), tile.slot.data(), tile.value.data(), end - begin},
                         predictions.subspan(static_cast<std::size_t>(begin * outputs),
                                             static_cast<std::size_t>((end - begin) * outputs)));
        } catch (...) {
#pragma omp critical(lathe_block_scorer_error)
          if (!error) error = std::current_exception();
        }
      }
    }
    if (error) std::rethrow_exception(error);
  }
  if (alongside_error) std::rethrow_exception(alongside_error);
  // The first row holding an infinite value that a column cannot score (the first such column in
  // it): a column clipped to finite bounds puts an infinite value on a bound, as the exported ONNX
  // graph does; only an unclipped column has no answer for it.
  std::int64_t first = -1, first_column = -1;
  for (std::int64_t j = 0; j < numeric; ++j) {
    if (scores_infinite_values(fitted.numeric[static_cast<std::size_t>(j)].transform)) continue;
    std::int64_t at = -1;
    for (std::int64_t t = 0; t < tiles && at < 0; ++t) at = tile_first_infinite_[static_cast<std::size_t>(t * numeric + j)];
    if (at >= 0 && (first < 0 || at < first)) {
      first = at;
      first_column = j;
    }
  }
  if (first >= 0) {
    const auto j = static_cast<std::size_t>(first_column);
    throw_infinite_value(in.source, fitted.numeric[j].name, first_row + first,
                         block.column(in.bound->numeric_input[j])[first]);
  }
  if (missing) {
    for (std::int64_t j = 0; j < numeric; ++j) {
      for (std::int64_t t = 0; t < tiles; ++t) {
        (*missing)[static_cast<std::size_t>(j)] += tile_missing_[static_cast<std::size_t>(t * numeric + j)];
      }
    }
  }
}

void ScorerInternals::score_block(Scorer::Impl& s, const ScoringInput& input, const ColumnBlockView& block,
                                  std::int64_t first_row, Scores& out, ScoringSummary* summary,
                                  const std::function<void()>& alongside) {
  const BoundInput& in = input.impl_->input;
  const FittedPreparation& fitted = s.model.preparation;
  const std::int64_t rows = block.rows;
  out.task = scoring_task_of(s.model.task);
  out.rows = rows;
  out.classes = s.model.task == Task::regression ? 0 : static_cast<std::int32_t>(s.model.classes.size());

  const std::int64_t numeric = static_cast<std::int64_t>(fitted.numeric.size());
  const std::int32_t outputs = s.scorer->outputs();
  s.predictions.resize(static_cast<std::size_t>(rows * outputs));
  s.missing.assign(static_cast<std::size_t>(numeric), 0);
  s.scorer->predict(in, block, first_row, s.predictions, &s.missing, alongside);

  if (summary) {
    summary->rows += rows;
    if (out.task == ScoringTask::regression) {
      summary->infinite_predictions += std::count_if(s.predictions.begin(), s.predictions.end(),
                                                     [](float p) { return std::isinf(p); });
    }
    for (std::int64_t j = 0; j < numeric; ++j) {
      const std::int64_t n = s.missing[static_cast<std::size_t>(j)];
      if (n > 0) summary->imputed[fitted.numeric[static_cast<std::size_t>(j)].name] += n;
    }
    tally_category_slots(*in.bound, block, &summary->unknown_categories,
                         &summary->missing_categories);
  }

  if (rows == 0) {
    out.value.clear();
    out.probability.clear();
    out.predicted_class.clear();
    return;
  }

  switch (s.model.task) {
    case Task::regression:
      out.value.assign(s.predictions.begin(), s.predictions.end());
      out.probability.clear();
      out.predicted_class.clear();
      break;
    case Task::binary:
      out.value.clear();
      out.probability.resize(static_cast<std::size_t>(rows * 2));
      out.predicted_class.resize(static_cast<std::size_t>(rows));
      for (std::int64_t r = 0; r < rows; ++r) {
        const float p = s.predictions[static_cast<std::size_t>(r)];
        out.probability[static_cast<std::size_t>(2 * r)] = 1.0f - p;
        out.probability[static_cast<std::size_t>(2 * r + 1)] = p;
        out.predicted_class[static_cast<std::size_t>(r)] = binary_predicted_class(p);
      }
      break;
    case Task::multiclass: {
      const std::int32_t k = s.scorer->outputs();
      out.value.clear();
      out.probability.assign(s.predictions.begin(), s.predictions.end());
      out.predicted_class.resize(static_cast<std::size_t>(rows));
      for (std::int64_t r = 0; r < rows; ++r) {
        out.predicted_class[static_cast<std::size_t>(r)] = predicted_class(out.probability.data() + r * k, k);
      }
      break;
    }
  }
}

namespace {

// The codes a block can carry (categorical codes travel as float32 through the engine).
constexpr std::int64_t kExactFloatCodes = kMaxExactCategoryLabels;

// The label of each row (BatchColumn::texts) as codes into `categories`, the labels in order of
// first appearance; "" is missing.
void categorical_text_column(const BatchColumn& col, std::int64_t rows, float* to,
                             std::vector<std::string>& categories) {
  std::unordered_map<std::string_view, std::int32_t> code_of;
  categories.clear();
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::string& label = col.texts[static_cast<std::size_t>(r)];
    if (label.empty()) {
      to[r] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    const auto [it, added] =
        code_of.try_emplace(label, static_cast<std::int32_t>(categories.size()));
    if (added) {
      if (static_cast<std::int64_t>(categories.size()) >= kExactFloatCodes) {
        throw InputError(
            "batch: column '" + col.name + "': row " + std::to_string(r + 1) + " holds the " +
            std::to_string(kExactFloatCodes + 1) +
            "th distinct label: the model takes categorical codes as float32, exact up "
            "to 2^24, so a batch may hold at most 2^24 + 1 distinct labels of a column; "
            "score fewer rows at a time");
      }
      categories.push_back(label);
    }
    to[r] = static_cast<float>(it->second);
  }
}

// A batch's categorical column as a block column: codes -1 and codes of the label "" are missing
// (NaN). A column with more labels than float32 codes are exact keeps its codes when they are
// exact; otherwise the codes in use are renumbered 0, 1, ... in order of first use, with their
// labels, which the binding matches by label as it would the column's own. A column of a label
// per row is categorical_text_column's.
void categorical_block_column(const BatchColumn& col, std::int64_t rows, float* to, std::vector<std::string>& categories) {
  if (col.codes.empty() && !col.texts.empty())
    return categorical_text_column(col, rows, to, categories);
  const auto labels = static_cast<std::int64_t>(col.labels.size());
  const auto out_of_range = [&](std::int64_t r, std::int32_t code) {
    return InputError("batch: column '" + col.name + "': row " + std::to_string(r + 1) + " has code " +
                      std::to_string(code) + " but the column has " + std::to_string(labels) +
                      " labels (codes -1 for missing, 0.." + std::to_string(labels - 1) + ")");
  };
  constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();
  if (labels <= kExactFloatCodes) {
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int32_t code = col.codes[static_cast<std::size_t>(r)];
      if (code < -1 || code >= labels) throw out_of_range(r, code);
      to[r] = code < 0 || col.labels[static_cast<std::size_t>(code)].empty() ? kMissing : static_cast<float>(code);
    }
    categories = col.labels;
    return;
  }
  std::unordered_map<std::int32_t, std::int32_t> renumbered;
  categories.clear();
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int32_t code = col.codes[static_cast<std::size_t>(r)];
    if (code < -1 || code >= labels) throw out_of_range(r, code);
    if (code < 0 || col.labels[static_cast<std::size_t>(code)].empty()) {
      to[r] = kMissing;
      continue;
    }
    const auto [it, added] = renumbered.try_emplace(code, static_cast<std::int32_t>(categories.size()));
    if (added) {
      if (static_cast<std::int64_t>(categories.size()) >= kExactFloatCodes) {
        throw InputError("batch: column '" + col.name + "': row " + std::to_string(r + 1) + " holds the " +
                         std::to_string(kExactFloatCodes + 1) + "th distinct code in use (code " +
                         std::to_string(code) + "): the model takes categorical codes as float32, exact up to 2^24, "
                         "so a batch may use at most 2^24 + 1 distinct codes of a column; score fewer rows at a time");
      }
      categories.push_back(col.labels[static_cast<std::size_t>(code)]);
    }
    to[r] = static_cast<float>(it->second);
  }
}

}  // namespace

Scores Scorer::score(std::span<const BatchColumn> columns, ScoringSummary* summary, std::vector<std::string>* notes) {
  Impl& s = *impl_;
  const std::lock_guard<std::mutex> lock(s.mutex);
  std::int64_t rows = -1;
  std::vector<ColumnInfo> schema;
  std::unordered_map<std::string, std::size_t> index;
  for (const BatchColumn& c : columns) {
    if (!index.emplace(c.name, schema.size()).second) throw InputError("batch: column '" + c.name + "' is given twice");
    const std::int64_t n = c.rows();
    if (rows >= 0 && n != rows) {
      throw InputError("batch: column '" + c.name + "' has " + std::to_string(n) + " rows but column '" +
                       columns.front().name + "' has " + std::to_string(rows));
    }
    rows = n;
    ColumnInfo info;
    info.name = c.name;
    info.type = c.categorical ? ColumnType::categorical : ColumnType::numeric;
    info.dtype = c.categorical ? "int32" : "float64";
    schema.push_back(std::move(info));
  }
  rows = std::max<std::int64_t>(rows, 0);
  // A missing or retyped input is named before any value is looked at.
  check_model_inputs(s.scorer->inputs(), s.model.path.string(), schema, "batch");

  // The batch as a block (column-major float32); per numeric column, the first row whose value is
  // infinite as a float32 (-1 when none).
  std::vector<float>& values = s.batch_values;
  values.resize(static_cast<std::size_t>(rows) * columns.size());
  std::vector<std::int64_t> first_infinite(columns.size(), -1);
  for (std::size_t c = 0; c < columns.size(); ++c) {
    const BatchColumn& col = columns[c];
    float* to = values.data() + static_cast<std::int64_t>(c) * rows;
    if (col.categorical) {
      categorical_block_column(col, rows, to, schema[c].categories);
      continue;
    }
    if (col.values.empty()) {
      std::copy_n(col.float_values.begin(), rows, to);
    } else {
      std::transform(col.values.begin(), col.values.begin() + rows, to,
                     [](double v) { return static_cast<float>(v); });
    }
    bool infinite = false;
    for (std::int64_t r = 0; r < rows; ++r) infinite |= std::isinf(to[r]);
    for (std::int64_t r = 0; infinite && first_infinite[c] < 0; ++r) {
      if (std::isinf(to[r])) first_infinite[c] = r;
    }
  }
  const ScoringInput input = ScorerInternals::bind(s, schema, "batch", {});
  if (notes) notes->insert(notes->end(), input.notes().begin(), input.notes().end());

  // An infinite value where the model has no answer (a column not clipped to finite bounds), in the
  // order BlockScorer::predict looks for one; a float64 beyond float32's range is named as given.
  for (const NumericEncoding& n : s.model.preparation.numeric) {
    if (scores_infinite_values(n.transform)) continue;
    const std::size_t c = index.at(n.name);
    const std::int64_t r = first_infinite[c];
    if (r < 0) continue;
    const double given = columns[c].values.empty()
                             ? columns[c].float_values[static_cast<std::size_t>(r)]
                             : columns[c].values[static_cast<std::size_t>(r)];
    if (std::isinf(given)) throw_infinite_value("batch", n.name, r, static_cast<float>(given));
    char text[32];
    const auto written = std::to_chars(text, text + sizeof text, given);  // the shortest that reads back
    throw InputError("batch: column '" + n.name + "': row " + std::to_string(r + 1) + " has the value " +
                     std::string(text, written.ptr) +
                     ", beyond float32's range (|x| <= 3.4028235e+38, the precision the model computes in), "
                     "which the model cannot score");
  }
  Scores out;
  const ColumnBlockView block{values.data(), rows, static_cast<std::int64_t>(columns.size())};
  ScoringSummary counted;
  ScorerInternals::score_block(s, input, block, 0, out, &counted, {});
  // Labels the model never saw are named with a few examples, and those that are a training label
  // spelled otherwise ("YES" for "Yes") said so, as `lathe score` does: an application's export
  // that changed its spelling would otherwise score every such row as unknown unremarked.
  const bool any_unknown =
      std::any_of(counted.unknown_categories.begin(), counted.unknown_categories.end(),
                  [](const auto& column) { return column.second > 0; });
  if (notes && any_unknown) {
    std::vector<UnseenLabels> unseen;
    tally_unseen_labels(input, schema, block, unseen);
    for (const UnseenLabels& u : unseen) notes->push_back("batch: " + unseen_labels_note(u));
  }
  if (summary) summary->add(counted);
  return out;
}

}  // namespace lathe
