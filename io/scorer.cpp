// lathe::Scorer (include/lathe/scorer.h): a loaded model, the schema check, and the scoring of one
// block: the same fitted preparation the model was trained with (runtime/preparation.h), the
// model's predictions (runtime/trainer.h: predict, the model's scores through the task's link), so a
// scored row gets exactly the prediction `lathe eval` computes for it, and a row it cannot score
// (an infinite value: io/train_table.h, throw_infinite_value) is refused in the same words.
#include "lathe/scorer.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <future>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "io/model_file.h"
#include "io/model_inputs.h"
#include "io/prepared_data.h"
#include "io/preparation_json.h"
#include "io/table_reader.h"
#include "io/train_table.h"
#include "kernels/metric_formulas.h"
#include "kernels/prepare_formulas.h"
#include "models/model.h"
#include "runtime/column_block.h"
#include "runtime/device_context.h"
#include "runtime/error.h"
#include "runtime/preparation.h"
#include "runtime/trainer.h"
#include "runtime/vector_clones.h"

namespace lathe {

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
  DeviceContext ctx;
  ModelShape shape;
  std::unique_ptr<Model> net;
  PredictionLink link;
  std::vector<ModelInput> inputs;
  std::string empty_label;
  // Scratch reused from block to block, so steady-state scoring allocates nothing.
  PreparedBlock prepared;
  std::vector<PreparedBlock> tile_prepared;  // CPU: one prepared tile per OpenMP thread
  std::vector<float> predictions;
  std::vector<float> batch_values;  // score(BatchColumn...): the batch as a float32 block
};

struct ScoringInput::Impl {
  const FittedPreparation* fitted = nullptr;
  BoundPreparation bound;
  std::unique_ptr<TilePreparation> tiles;  // the CPU transform of `bound`, tile by tile
  std::int64_t columns = 0;
  std::string source;
  std::vector<std::string> notes;
  std::vector<std::string> column_names;  // of the input, for messages
};

ScoringInput::ScoringInput(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ScoringInput::~ScoringInput() = default;
ScoringInput::ScoringInput(ScoringInput&&) noexcept = default;
ScoringInput& ScoringInput::operator=(ScoringInput&&) noexcept = default;
const std::vector<std::string>& ScoringInput::notes() const { return impl_->notes; }
std::int64_t ScoringInput::columns() const { return impl_->columns; }

// The model's input columns in the training file's order (those the fitted preparation reads; the
// label and a sample-weight column are not inputs).
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

void check_inputs(const std::vector<ModelInput>& inputs, const std::string& owner, const std::string& when,
                  const std::vector<ColumnInfo>& columns, const std::string& source) {
  std::unordered_map<std::string, std::size_t> by_name;
  std::string listed;
  for (std::size_t c = 0; c < columns.size(); ++c) {
    by_name.emplace(columns[c].name, c);
    listed += (listed.empty() ? "" : ", ") + columns[c].name;
  }
  for (const ModelInput& in : inputs) {
    const auto it = by_name.find(in.name);
    if (it == by_name.end()) {
      throw InputError(source + ": column '" + in.name + "' (" + kind_text(in.categorical) + "), an input of " + owner +
                       ", is missing (columns: " + (listed.empty() ? "none" : listed) + ")");
    }
    const bool categorical = columns[it->second].type == ColumnType::categorical;
    if (categorical != in.categorical) {
      throw InputError(source + ": column '" + in.name + "' is " + kind_text(categorical) + " but was " +
                       kind_text(in.categorical) + " when " + owner + " was " + when);
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
  throw InputError(data.string() + " was written by `lathe prepare` (prepared from " + tag->source +
                   "), but " + model_name + " was trained on raw data and prepares its inputs itself: give it the raw data (" +
                   tag->source + ")");
}

Scorer::Scorer(const std::filesystem::path& model_path, const std::string& device) : impl_(std::make_unique<Impl>()) {
  impl_->path = model_path;
  impl_->model = load_model(model_path);
  impl_->ctx = DeviceContext::select(device);
  impl_->shape = model_shape(impl_->model);
  impl_->net = make_model(impl_->ctx, impl_->shape, OptimizerConfig{}, 0);
  impl_->net->set_parameters(impl_->model.parameters);
  impl_->link = PredictionLink{impl_->model.task, impl_->shape.outputs, impl_->model.target_mean, impl_->model.target_std};
  impl_->inputs = model_inputs(impl_->model);
  if (impl_->model.task != Task::regression &&
      static_cast<std::int32_t>(impl_->model.classes.size()) != (impl_->model.task == Task::binary ? 2 : impl_->model.outputs)) {
    throw InputError(model_path.string() + ": the model has " + std::to_string(impl_->model.classes.size()) +
                     " class labels for " + std::to_string(impl_->model.outputs) + " outputs (a corrupt model file)");
  }
}

Scorer::~Scorer() = default;
Scorer::Scorer(Scorer&&) noexcept = default;
Scorer& Scorer::operator=(Scorer&&) noexcept = default;

ScoringTask Scorer::task() const { return scoring_task_of(impl_->model.task); }
const std::vector<std::string>& Scorer::classes() const { return impl_->model.classes; }
const std::string& Scorer::label() const { return impl_->model.label; }
const std::vector<ModelInput>& Scorer::inputs() const { return impl_->inputs; }
const std::filesystem::path& Scorer::model_path() const { return impl_->path; }
const std::string& Scorer::device_description() const { return impl_->ctx.description(); }

void Scorer::check_data_file(const std::filesystem::path& data) const { check_data_preparation(impl_->model, data); }

const std::string& Scorer::trained_on_prepared() const {
  static const std::string none;
  return impl_->model.trained_on_prepared ? impl_->model.trained_on_prepared->source : none;
}

ScoringInput Scorer::bind(const std::vector<ColumnInfo>& columns, const std::string& source,
                          const std::vector<std::string>& passed_through) const {
  // Every input is checked before bind_preparation, so the message names the model and the source.
  check_model_inputs(impl_->inputs, impl_->path.string(), columns, source);
  auto impl = std::make_unique<ScoringInput::Impl>();
  impl->fitted = &impl_->model.preparation;
  impl->bound = bind_preparation(impl_->model.preparation, columns);
  impl->tiles = std::make_unique<TilePreparation>(impl->bound);
  impl->columns = static_cast<std::int64_t>(columns.size());
  impl->source = source;
  std::unordered_set<std::string> used;
  for (const ModelInput& in : impl_->inputs) used.insert(in.name);
  used.insert(passed_through.begin(), passed_through.end());
  std::string ignored;
  for (const auto& c : columns) {
    if (used.count(c.name)) continue;
    ignored += (ignored.empty() ? "" : ", ") + ("'" + c.name + "'") +
               (c.name == impl_->model.label ? " (the model's label)" : "");
  }
  if (!ignored.empty()) impl->notes.push_back("columns not used by the model, ignored: " + ignored);
  for (const auto& c : columns) impl->column_names.push_back(c.name);
  return ScoringInput(std::move(impl));
}

void Scorer::score(const ScoringInput& input, const ColumnBlockView& block, std::int64_t first_row, Scores& out,
                   ScoringSummary* summary, const std::function<void()>& alongside) {
  const ScoringInput::Impl& in = *input.impl_;
  Impl& s = *impl_;
  if (in.fitted != &s.model.preparation) throw Error("Scorer::score: the input was bound by another Scorer");
  if (block.columns != in.columns) {
    throw Error("Scorer::score: " + in.source + ": the block has " + std::to_string(block.columns) +
                " columns but the input was bound with " + std::to_string(in.columns));
  }
  const FittedPreparation& fitted = s.model.preparation;
  const std::int64_t rows = block.rows;
  out.task = scoring_task_of(s.model.task);
  out.rows = rows;
  out.classes = s.model.task == Task::regression ? 0 : static_cast<std::int32_t>(s.model.classes.size());

  const std::int64_t numeric = static_cast<std::int64_t>(fitted.numeric.size());
  const std::int32_t outputs = s.shape.outputs;
  s.predictions.resize(static_cast<std::size_t>(rows * outputs));
  // Per row tile and numeric input: the missing values, and the first row with an infinite value.
  // An unclipped column has no sensible answer for one (training refuses them where the
  // preparation needs finite moments); a column clipped to finite bounds puts it on a bound.
  const std::int64_t tiles = rows == 0 ? 0 : (rows + kScoreTileRows - 1) / kScoreTileRows;
  std::vector<std::int64_t> missing(static_cast<std::size_t>(tiles * numeric), 0);
  std::vector<std::int64_t> first_infinite(static_cast<std::size_t>(tiles * numeric), -1);
  const auto count_tile = [&](std::int64_t tile, std::int64_t begin, std::int64_t end) {
    for (std::int64_t j = 0; j < numeric; ++j) {
      const ValueCounts c = count_values(block.column(in.bound.numeric_input[static_cast<std::size_t>(j)]), begin, end);
      missing[static_cast<std::size_t>(tile * numeric + j)] = c.missing;
      first_infinite[static_cast<std::size_t>(tile * numeric + j)] = c.first_infinite;
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
  if (s.ctx.is_cuda()) {
    // The GPU scores while a host thread runs `alongside` (joined before anything is thrown).
    std::future<void> side = std::async(std::launch::async, run_alongside);
    try {
#pragma omp parallel for schedule(static)
      for (std::int64_t t = 0; t < tiles; ++t) count_tile(t, t * kScoreTileRows, std::min(rows, (t + 1) * kScoreTileRows));
      if (rows > 0) {
        apply_preparation(s.ctx, in.bound, block, s.prepared);
        predict(*s.net, s.link,
                PreparedRowsView{s.prepared.dense.data(), s.prepared.slot.data(), s.prepared.value.data(), rows},
                std::span<float>(s.predictions));
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
    s.tile_prepared.resize(static_cast<std::size_t>(omp_get_max_threads()));
#pragma omp parallel
    {
      PreparedBlock& tile = s.tile_prepared[static_cast<std::size_t>(omp_get_thread_num())];
      // One thread runs `alongside` first, then takes what tiles are left.
#pragma omp single nowait
      run_alongside();
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t t = 0; t < tiles; ++t) {
        const std::int64_t begin = t * kScoreTileRows, end = std::min(rows, begin + kScoreTileRows);
        count_tile(t, begin, end);
        in.tiles->prepare(block, begin, end, tile);
        const auto n = static_cast<std::size_t>((end - begin) * outputs);
        predict(*s.net, s.link, PreparedRowsView{tile.dense.data(), tile.slot.data(), tile.value.data(), end - begin},
                std::span<float>(s.predictions.data() + begin * outputs, n));
      }
    }
  }
  if (alongside_error) std::rethrow_exception(alongside_error);
  for (std::int64_t j = 0; j < numeric; ++j) {
    // A column clipped to finite bounds puts an infinite value on a bound, as the exported ONNX
    // graph does: only an unclipped column has no answer for it (refused as predict_table refuses it).
    if (scores_infinite_values(fitted.numeric[static_cast<std::size_t>(j)].transform)) continue;
    std::int64_t first = -1;
    for (std::int64_t t = 0; t < tiles && first < 0; ++t) first = first_infinite[static_cast<std::size_t>(t * numeric + j)];
    if (first < 0) continue;
    throw_infinite_value(in.source, fitted.numeric[static_cast<std::size_t>(j)].name, first_row + first,
                         block.column(in.bound.numeric_input[static_cast<std::size_t>(j)])[first]);
  }

  if (summary) {
    summary->rows += rows;
    for (std::int64_t j = 0; j < numeric; ++j) {
      std::int64_t n = 0;
      for (std::int64_t t = 0; t < tiles; ++t) n += missing[static_cast<std::size_t>(t * numeric + j)];
      if (n > 0) summary->imputed[fitted.numeric[static_cast<std::size_t>(j)].name] += n;
    }
    for (std::size_t j = 0; j < fitted.categorical.size(); ++j) {
      const CategoricalEncoding& enc = fitted.categorical[j];
      const std::vector<std::int32_t>& remap = in.bound.remap[j];
      const float* codes = block.column(in.bound.categorical_input[j]);
      std::int64_t unknown = 0, missing_values = 0;
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::int32_t slot = category_slot(codes[r], remap.data(), static_cast<std::int32_t>(remap.size()),
                                                enc.missing_slot(), enc.unknown_slot());
        unknown += slot == enc.unknown_slot() ? 1 : 0;
        missing_values += slot == enc.missing_slot() ? 1 : 0;
      }
      // A hashed column puts an unseen label in its bucket: nothing is unknown there.
      if (unknown > 0 && !enc.hashed) summary->unknown_categories[enc.name] += unknown;
      if (missing_values > 0) summary->missing_categories[enc.name] += missing_values;
    }
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
      const std::int32_t k = s.shape.outputs;
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

Scores Scorer::score(std::span<const BatchColumn> columns, ScoringSummary* summary, std::vector<std::string>* notes) {
  std::int64_t rows = -1;
  std::vector<ColumnInfo> schema;
  std::unordered_set<std::string> names;
  for (const BatchColumn& c : columns) {
    if (!names.insert(c.name).second) throw InputError("batch: column '" + c.name + "' is given twice");
    const auto n = static_cast<std::int64_t>(c.categorical ? c.codes.size() : c.values.size());
    if (rows >= 0 && n != rows) {
      throw InputError("batch: column '" + c.name + "' has " + std::to_string(n) + " rows but column '" +
                       columns.front().name + "' has " + std::to_string(rows));
    }
    rows = n;
    ColumnInfo info;
    info.name = c.name;
    info.type = c.categorical ? ColumnType::categorical : ColumnType::numeric;
    info.dtype = c.categorical ? "int32" : "float64";
    info.categories = c.labels;
    schema.push_back(std::move(info));
  }
  rows = std::max<std::int64_t>(rows, 0);
  const ScoringInput input = bind(schema, "batch");
  if (notes) notes->insert(notes->end(), input.notes().begin(), input.notes().end());

  std::vector<float>& values = impl_->batch_values;
  values.resize(static_cast<std::size_t>(rows) * columns.size());
  for (std::size_t c = 0; c < columns.size(); ++c) {
    const BatchColumn& col = columns[c];
    float* to = values.data() + static_cast<std::int64_t>(c) * rows;
    if (!col.categorical) {
      for (std::int64_t r = 0; r < rows; ++r) to[r] = static_cast<float>(col.values[static_cast<std::size_t>(r)]);
      continue;
    }
    const auto labels = static_cast<std::int64_t>(col.labels.size());
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int32_t code = col.codes[static_cast<std::size_t>(r)];
      if (code < -1 || code >= labels) {
        throw InputError("batch: column '" + col.name + "': row " + std::to_string(r + 1) + " has code " +
                         std::to_string(code) + " but the column has " + std::to_string(labels) +
                         " labels (codes -1 for missing, 0.." + std::to_string(labels - 1) + ")");
      }
      to[r] = code < 0 ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(code);
    }
  }
  Scores out;
  score(input, ColumnBlockView{values.data(), rows, static_cast<std::int64_t>(columns.size())}, 0, out, summary);
  return out;
}

}  // namespace lathe
