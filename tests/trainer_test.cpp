// The pieces around the models: the preparation's JSON round trip, the model file (atomic write,
// checks on load), and the link from scores to predictions.
#include <gtest/gtest.h>

#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "io/checkpoint.h"
#include "io/columnar_writer.h"
#include "io/model_file.h"
#include "io/model_inputs.h"
#include "io/prepared_data.h"
#include "io/preparation_json.h"
#include "runtime/error.h"
#include "runtime/profile.h"
#include "runtime/trainer.h"
#include "tests/temp_dir.h"
#include "tests/test_devices.h"

namespace lathe {
namespace {

// A small mixed table: two numeric columns (one with missing values), one categorical, a label.
struct SmallTable {
  std::vector<ColumnInfo> columns;
  std::vector<float> values;  // column-major
  std::int64_t rows = 200;
};

SmallTable small_table() {
  SmallTable t;
  t.columns = {{"age", ColumnType::numeric, "float32", {}, "/age"},
               {"income", ColumnType::numeric, "float32", {}, "/income"},
               {"city", ColumnType::categorical, "int32", {"Lima", "Oslo", "Pune"}, "/city"},
               {"y", ColumnType::numeric, "float32", {}, "/y"}};
  t.values.resize(static_cast<std::size_t>(t.rows * 4));
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0, 1);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    t.values[r] = 40 + 10 * n(rng);
    t.values[t.rows + r] = r % 7 == 0 ? NAN : 5e4f + 1e4f * n(rng);
    t.values[2 * t.rows + r] = static_cast<float>(r % 3);
    t.values[3 * t.rows + r] = static_cast<float>(r % 2);
  }
  return t;
}

FittedPreparation fitted_for(const SmallTable& t, const PreparationOptions& options) {
  DataProfile profile = make_profile(t.columns);
  profile_block(DeviceContext::cpu(), {t.values.data(), t.rows, 4}, {}, profile);
  return fit_preparation(profile, options);
}

TEST(PreparationJson, RoundTripGivesTheSameTransform) {
  const SmallTable t = small_table();
  PreparationOptions options;
  options.label = "y";
  options.missing_indicators = true;
  options.defaults.clip = ClipKind::quantile;
  options.crosses = {{"age", "income"}, {"age", "city"}, {"city", "city"}};
  options.crosses.pop_back();  // a categorical column crossed with itself is refused; keep two
  const FittedPreparation fitted = fitted_for(t, options);
  const FittedPreparation back = preparation_from_json(preparation_to_json(fitted), "test");
  EXPECT_EQ(preparation_to_json(back), preparation_to_json(fitted));
  EXPECT_EQ(back.expanded_features(), fitted.expanded_features());
  EXPECT_EQ(back.dense_names(), fitted.dense_names());

  PreparedBlock a, b;
  const ColumnBlockView block{t.values.data(), t.rows, 4};
  apply_preparation(DeviceContext::cpu(), bind_preparation(fitted, t.columns), block, a);
  apply_preparation(DeviceContext::cpu(), bind_preparation(back, t.columns), block, b);
  EXPECT_EQ(a.dense, b.dense);
  EXPECT_EQ(a.slot, b.slot);
  EXPECT_EQ(a.value, b.value);
}

TEST(PreparationJson, DamagedTextIsAnInputError) {
  EXPECT_THROW(preparation_from_json("{not json", "m.h5"), InputError);
  const SmallTable t = small_table();
  PreparationOptions options;
  options.label = "y";
  std::string text = preparation_to_json(fitted_for(t, options));
  const auto at = text.find("\"a\":0");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 5, "\"a\":99");  // a group pointing past the categorical columns
  try {
    preparation_from_json(text, "m.h5");
    FAIL() << "an out-of-range index was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("m.h5"), std::string::npos);
  }
}

// A group whose slot count is not its encoding's (sanitizer pass: a one-hot of 3 slots too many
// read past the warm start's slot table) and a bins group given twice are refused by name.
TEST(PreparationJson, GroupSlotsMustBeTheirEncodings) {
  const SmallTable t = small_table();
  PreparationOptions options;
  options.label = "y";
  options.crosses = {{"age", "city"}};
  options.defaults.bins = 4;
  const FittedPreparation fitted = fitted_for(t, options);
  const std::string good = preparation_to_json(fitted);
  EXPECT_NO_THROW(preparation_from_json(good, "m.h5"));
  for (const SparseKind kind : {SparseKind::one_hot, SparseKind::slope, SparseKind::bins}) {
    FittedPreparation damaged = fitted;
    const auto g = std::find_if(damaged.sparse.begin(), damaged.sparse.end(),
                                [&](const SparseGroup& s) { return s.kind == kind; });
    ASSERT_NE(g, damaged.sparse.end());
    g->slots += 3;
    try {
      preparation_from_json(preparation_to_json(damaged), "m.h5");
      FAIL() << g->name << ": a wrong slot count was accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(g->name), std::string::npos) << e.what();
    }
  }
  FittedPreparation twice = fitted;
  const auto bins = std::find_if(twice.sparse.begin(), twice.sparse.end(),
                                 [](const SparseGroup& s) { return s.kind == SparseKind::bins; });
  twice.sparse.push_back(*bins);
  EXPECT_THROW(preparation_from_json(preparation_to_json(twice), "m.h5"), InputError);
}

ModelFile small_model(const SmallTable& t) {
  PreparationOptions options;
  options.label = "y";
  ModelFile m;
  m.task = Task::binary;
  m.label = "y";
  m.classes = {"0", "1"};
  m.preparation = fitted_for(t, options);
  m.input_schema = t.columns;
  const auto features = static_cast<std::size_t>(m.preparation.expanded_features());
  for (std::size_t i = 0; i < features; ++i) m.parameters.weights.push_back(0.25f * static_cast<float>(i) - 1.0f);
  m.parameters.bias = {0.5f};
  m.metrics_json = R"({"valid":{"auc":0.75}})";
  return m;
}

TEST(ModelFile, SaveThenLoadGivesTheSameModel) {
  test::TemporaryDirectory dir;
  const SmallTable t = small_table();
  const ModelFile m = small_model(t);
  save_model(dir.file("m.h5"), m);
  const ModelFile back = load_model(dir.file("m.h5"));
  EXPECT_EQ(back.task, Task::binary);
  EXPECT_EQ(back.classes, m.classes);
  EXPECT_EQ(back.parameters.weights, m.parameters.weights);
  EXPECT_EQ(back.parameters.bias, m.parameters.bias);
  EXPECT_EQ(preparation_to_json(back.preparation), preparation_to_json(m.preparation));
  ASSERT_EQ(back.input_schema.size(), t.columns.size());
  EXPECT_EQ(back.input_schema[2].categories, t.columns[2].categories);
  EXPECT_EQ(back.metrics_json, m.metrics_json);
  // Only the final file is left: no temporary beside it.
  EXPECT_EQ(dir.entries().size(), 1u);
}

// The target transform round-trips (a regression model's); a model saved without one reads as none.
TEST(ModelFile, TargetTransformRoundTrips) {
  test::TemporaryDirectory dir;
  const SmallTable t = small_table();
  ModelFile m = small_model(t);
  save_model(dir.file("binary.h5"), m);
  EXPECT_EQ(load_model(dir.file("binary.h5")).target_transform, TargetTransform::none);
  m.task = Task::regression;
  m.loss = LossKind::squared;
  m.classes.clear();
  m.target_mean = 3.5;
  m.target_std = 0.25;
  for (TargetTransform transform : {TargetTransform::log, TargetTransform::log1p, TargetTransform::none}) {
    m.target_transform = transform;
    const std::filesystem::path path = dir.file(std::string(target_transform_name(transform)) + "-r.h5");
    save_model(path, m);
    const ModelFile back = load_model(path);
    EXPECT_EQ(back.target_transform, transform);
    EXPECT_EQ(back.target_mean, 3.5);
    EXPECT_EQ(back.target_std, 0.25);
  }
  EXPECT_EQ(parse_target_transform("log1p"), TargetTransform::log1p);
  EXPECT_FALSE(parse_target_transform("sqrt").has_value());
}

TEST(ModelFile, RefusesNewerVersionsNonFiniteWeightsAndDamage) {
  test::TemporaryDirectory dir;
  const SmallTable t = small_table();
  ModelFile m = small_model(t);
  save_model(dir.file("m.h5"), m);
  {
    hid_t f = H5Fopen(dir.file("m.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    hid_t a = H5Aopen(f, "lathe_model_format_version", H5P_DEFAULT);
    const long long newer = kModelFormatVersion + 1;
    H5Awrite(a, H5T_NATIVE_LLONG, &newer);
    H5Aclose(a);
    H5Fclose(f);
  }
  try {
    load_model(dir.file("m.h5"));
    FAIL() << "a newer format was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }

  m.parameters.weights[1] = NAN;
  EXPECT_THROW(save_model(dir.file("nan.h5"), m), Error);
  EXPECT_FALSE(std::filesystem::exists(dir.file("nan.h5")));
  EXPECT_THROW(load_model(dir.file("missing.h5")), InputError);
  std::ofstream(dir.file("text.h5")) << "not a model";
  EXPECT_THROW(load_model(dir.file("text.h5")), InputError);
}

// A columnar file of the small table's columns as float32 (categorical as codes), with a
// lathe_preparation attribute when `preparation` is set (a file written by `lathe prepare`).
std::filesystem::path small_table_file(const test::TemporaryDirectory& dir, const std::string& name, const SmallTable& t,
                                       const std::optional<std::string>& preparation) {
  std::vector<ColumnSpec> specs;
  for (const ColumnInfo& c : t.columns) {
    specs.push_back({c.name, c.type == ColumnType::categorical ? StoredType::categorical_codes : StoredType::float32});
  }
  const std::filesystem::path path = dir.file(name);
  ColumnarWriter writer(path, specs);
  for (std::size_t c = 0; c < t.columns.size(); ++c) {
    const float* v = t.values.data() + static_cast<std::int64_t>(c) * t.rows;
    if (t.columns[c].type == ColumnType::categorical) {
      std::vector<std::int32_t> codes(v, v + t.rows);
      writer.append_codes(c, codes);
      writer.set_categories(c, t.columns[c].categories);
    } else {
      writer.append_numeric(c, std::span<const float>(v, static_cast<std::size_t>(t.rows)));
    }
  }
  if (preparation) writer.set_attribute("lathe_preparation", *preparation);
  writer.close();
  return path;
}

TEST(ModelFile, TrainedOnPreparedRoundTripsAndDecidesWhichDataIsAccepted) {
  test::TemporaryDirectory dir;
  const SmallTable t = small_table();
  ModelFile m = small_model(t);
  PreparationOptions first;
  first.label = "y";
  first.defaults.scale = ScaleKind::minmax;
  const std::string prepared_text = preparation_to_json(fitted_for(t, first));
  m.trained_on_prepared = PreparedSource{"p.h5", preparation_fingerprint(prepared_text), prepared_text};
  save_model(dir.file("m.h5"), m);
  const ModelFile back = load_model(dir.file("m.h5"));
  ASSERT_TRUE(back.trained_on_prepared.has_value());
  EXPECT_EQ(back.trained_on_prepared->source, "p.h5");
  EXPECT_EQ(back.trained_on_prepared->preparation, prepared_text);
  EXPECT_EQ(back.trained_on_prepared->fingerprint, preparation_fingerprint(prepared_text));
  EXPECT_EQ(back.trained_on_prepared->fingerprint.size(), 16u);
  EXPECT_NE(preparation_fingerprint(prepared_text), preparation_fingerprint(prepared_text + " "));
  EXPECT_TRUE(back.trained_on_prepared->passthrough.empty());

  // The prepared file's passthrough columns (`lathe prepare --drop`) round-trip beside it, outside the
  // fingerprint; `lathe prepare --from MODEL` passes them through again.
  ModelFile with_ids = m;
  with_ids.trained_on_prepared->passthrough = {"customer_id", "code"};
  save_model(dir.file("ids.h5"), with_ids);
  const ModelFile ids = load_model(dir.file("ids.h5"));
  ASSERT_TRUE(ids.trained_on_prepared.has_value());
  EXPECT_EQ(ids.trained_on_prepared->passthrough, (std::vector<std::string>{"customer_id", "code"}));
  EXPECT_EQ(ids.trained_on_prepared->fingerprint, back.trained_on_prepared->fingerprint);

  // A model without the record (every older file) loads without it.
  save_model(dir.file("raw.h5"), small_model(t));
  const ModelFile raw = load_model(dir.file("raw.h5"));
  EXPECT_FALSE(raw.trained_on_prepared.has_value());

  // The data check: the same preparation is accepted; none or another is refused, naming both files
  // and the command that prepares the data.
  const auto same = small_table_file(dir, "same.h5", t, prepared_text);
  const auto none = small_table_file(dir, "none.h5", t, std::nullopt);
  const auto other = small_table_file(dir, "other.h5", t, preparation_to_json(back.preparation));
  EXPECT_NO_THROW(check_data_preparation(back, same));
  ASSERT_TRUE(read_prepared_tag(same).has_value());
  EXPECT_EQ(read_prepared_tag(same)->fingerprint, back.trained_on_prepared->fingerprint);
  EXPECT_FALSE(read_prepared_tag(none).has_value());
  for (const auto& [path, needle] : {std::pair{none, std::string("none.h5 is not prepared that way")},
                                     std::pair{other, std::string("another fitted preparation")}}) {
    try {
      check_data_preparation(back, path);
      FAIL() << path << " was accepted";
    } catch (const InputError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(dir.file("m.h5").string() + " was trained on data prepared by `lathe prepare` (p.h5)"),
                std::string::npos) << what;
      EXPECT_NE(what.find(needle), std::string::npos) << what;
      EXPECT_NE(what.find("--from " + dir.file("m.h5").string()), std::string::npos) << what;
    }
  }
  // A raw model takes raw data only: a prepared file holds prepared values, its own preparation
  // applied or another's.
  EXPECT_NO_THROW(check_data_preparation(raw, none));
  const auto own = small_table_file(dir, "own.h5", t, preparation_to_json(raw.preparation));
  for (const auto& [path, needle] : {std::pair{same, std::string("was written by `lathe prepare`")},
                                     std::pair{own, std::string("already applied")}}) {
    try {
      check_data_preparation(raw, path);
      FAIL() << path << " was accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }

  // --from: a prepared file gives its text verbatim, a model the preparation of its prepared file.
  const StoredPreparation from_file = read_stored_preparation(same);
  EXPECT_EQ(from_file.text, prepared_text);
  const StoredPreparation from_model = read_stored_preparation(dir.file("m.h5"));
  EXPECT_EQ(from_model.text, prepared_text);
  EXPECT_EQ(preparation_to_json(from_model.fitted), prepared_text);
  EXPECT_EQ(read_stored_preparation(dir.file("raw.h5")).text, preparation_to_json(raw.preparation));
  EXPECT_THROW(read_stored_preparation(none), InputError);
}

TEST(ModelFile, TrainedOnPreparedWithAWrongFingerprintIsRefused) {
  test::TemporaryDirectory dir;
  const SmallTable t = small_table();
  ModelFile m = small_model(t);
  m.trained_on_prepared = PreparedSource{"p.h5", "0123456789abcdef", preparation_to_json(m.preparation)};
  save_model(dir.file("m.h5"), m);
  try {
    load_model(dir.file("m.h5"));
    FAIL() << "a preparation that does not match its fingerprint was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("trained_on_prepared"), std::string::npos) << e.what();
  }
}

// The small table prepared and trained on the CPU (binary label y), `epochs` epochs of `optimizer`.
struct SmallTraining {
  SmallTable table = small_table();
  FittedPreparation fitted;
  PreparedBlock block;
  ModelShape shape;
  std::vector<float> labels;

  // numeric_only: the city column left out, so that the model is linear over dense features alone
  // (the GPU's dense path).
  explicit SmallTraining(bool numeric_only = false) {
    PreparationOptions options;
    options.label = "y";
    if (numeric_only) options.exclude = {"city"};
    fitted = fitted_for(table, options);
    apply_preparation(DeviceContext::cpu(), bind_preparation(fitted, table.columns),
                      {table.values.data(), table.rows, 4}, block);
    labels.assign(table.values.begin() + 3 * table.rows, table.values.end());
    shape.task = Task::binary;
    shape.loss = LossKind::logistic;
    shape.group_offsets = fitted.group_offsets();
    shape.layout.dense_features = fitted.dense_features();
    shape.layout.groups = static_cast<std::int32_t>(fitted.sparse.size());
    shape.layout.group_offset = shape.group_offsets.data();
    shape.features = fitted.expanded_features();
  }

  // l2 > 0: the city column's lazy updates catch up penalties (OptimizerState::last_step).
  TrainOutcome train(OptimizerKind optimizer, TrainerOptions options, ModelParameters* last = nullptr,
                     const TrainerState* resume = nullptr, float l2 = 0.0f) {
    OptimizerConfig config;
    config.kind = optimizer;
    config.l2 = l2;
    auto model = make_model(DeviceContext::cpu(), shape, config, options.seed);
    LabeledRows rows{{{block.dense.data(), block.slot.data(), block.value.data(), block.rows}, labels.data(), nullptr},
                     block.rows, labels.data()};
    model->bind_training_set(rows.set);
    if (resume) model->set_parameters(resume->last);
    options.resume = resume;
    PredictionLink link;
    TrainOutcome outcome = train_model(DeviceContext::cpu(), *model, rows, nullptr, link, 2, options);
    if (last) *last = model->parameters();
    return outcome;
  }
};

// A small cosine run of `epochs` that hands a checkpoint every `every` epochs to `states`.
TrainerOptions checkpointing_options(std::int32_t epochs, std::int32_t every,
                                     std::vector<TrainerState>& states) {
  TrainerOptions options;
  options.epochs = epochs;
  options.batch = 16;
  options.patience = 0;
  options.progress = false;
  options.learning_rate = 0.05f;
  options.schedule = ScheduleKind::cosine;
  options.checkpoint_every = every;
  options.on_checkpoint = [&states](const TrainerState& s) { states.push_back(s); };
  return options;
}

// A refit (io/train_table.cpp, --refit) takes the first epochs of a run's schedule: stopped after
// epoch 3 of a 7-epoch cosine run, the weights are that run's after epoch 3 (its checkpoint), not
// those of a 3-epoch run, whose rates decay sooner.
TEST(TrainerStopAfterEpoch, TakesTheFirstEpochsOfTheWholeSchedule) {
  SmallTraining t;
  std::vector<TrainerState> states;
  TrainerOptions options = checkpointing_options(7, 3, states);
  t.train(OptimizerKind::adam, options);
  ASSERT_EQ(states.size(), 2u);  // after epochs 3 and 6
  options.checkpoint_every = 0;
  options.on_checkpoint = nullptr;
  options.stop_after_epoch = 3;
  ModelParameters stopped;
  const TrainOutcome outcome = t.train(OptimizerKind::adam, options, &stopped);
  EXPECT_EQ(outcome.history.size(), 3u);
  EXPECT_EQ(outcome.best_epoch, 3);
  EXPECT_EQ(stopped.weights, states[0].last.weights);
  EXPECT_EQ(stopped.bias, states[0].last.bias);
  EXPECT_EQ(outcome.best.weights, states[0].last.weights);
  options.epochs = 3;
  options.stop_after_epoch = 0;
  ModelParameters short_run;
  t.train(OptimizerKind::adam, options, &short_run);
  EXPECT_NE(short_run.weights, stopped.weights);
  // Past the epochs, the run ends at its last epoch.
  options.stop_after_epoch = 9;
  EXPECT_EQ(t.train(OptimizerKind::adam, options).history.size(), 3u);
}

TEST(TrainerCheckpoint, ResumingFromAnEpochContinuesAsIfUninterrupted) {
  SmallTraining t;
  std::vector<TrainerState> states;
  TrainerOptions options = checkpointing_options(5, 2, states);
  ModelParameters last_whole;
  const TrainOutcome whole = t.train(OptimizerKind::sgd, options, &last_whole);
  ASSERT_EQ(states.size(), 2u);  // after epochs 2 and 4
  EXPECT_EQ(states[0].next_epoch, 3);
  EXPECT_EQ(states[0].history.size(), 2u);
  EXPECT_EQ(states[0].step, 2 * ((t.table.rows + 15) / 16));

  // SGD has no optimizer state: resuming from epoch 2 gives the same bits.
  options.on_checkpoint = nullptr;
  ModelParameters last_resumed;
  const TrainOutcome resumed = t.train(OptimizerKind::sgd, options, &last_resumed, &states[0]);
  EXPECT_EQ(resumed.history.size(), whole.history.size());
  EXPECT_EQ(resumed.best_epoch, whole.best_epoch);
  EXPECT_EQ(resumed.best.weights, whole.best.weights);
  EXPECT_EQ(last_resumed.weights, last_whole.weights);
  EXPECT_EQ(last_resumed.bias, last_whole.bias);
  for (std::size_t e = 0; e < whole.history.size(); ++e) {
    EXPECT_EQ(resumed.history[e].train_loss, whole.history[e].train_loss) << "epoch " << e + 1;
  }

  // The optimizer's state travels with the checkpoint: Adam (exact and local SGD with 4 workers)
  // resumes with the same bits too, with l2 whose lazy updates catch up from the sparse features'
  // last steps.
  for (TrainMode mode : {TrainMode::exact, TrainMode::parallel}) {
    SCOPED_TRACE(mode == TrainMode::exact ? "exact" : "parallel");
    options.mode = mode;
    options.workers = 4;
    options.sync_every = 2;
    options.on_checkpoint = [&](const TrainerState& s) { states.push_back(s); };
    states.clear();
    ModelParameters adam_last;
    const TrainOutcome adam = t.train(OptimizerKind::adam, options, &adam_last, nullptr, 0.05f);
    ASSERT_EQ(states.size(), 2u);
    EXPECT_EQ(states[0].optimizer.second.size(),
              states[0].last.weights.size() + states[0].last.bias.size() + states[0].last.factors.size());
    EXPECT_EQ(states[0].optimizer.last_step.size(), static_cast<std::size_t>(t.shape.features - t.shape.layout.dense_features));
    // Each slot's last update, or 0 for a slot no row holds (the city column's unseen slot).
    for (std::uint32_t s : states[0].optimizer.last_step) EXPECT_LE(s, states[0].step);
    EXPECT_GT(*std::max_element(states[0].optimizer.last_step.begin(), states[0].optimizer.last_step.end()), 0u);
    options.on_checkpoint = nullptr;
    ModelParameters adam_resumed_last;
    const TrainOutcome adam_resumed = t.train(OptimizerKind::adam, options, &adam_resumed_last, &states[0], 0.05f);
    ASSERT_EQ(adam_resumed.history.size(), 5u);
    for (std::size_t e = 0; e < adam.history.size(); ++e) {
      EXPECT_EQ(adam_resumed.history[e].train_loss, adam.history[e].train_loss) << "epoch " << e + 1;
    }
    EXPECT_EQ(adam_resumed_last.weights, adam_last.weights);
    EXPECT_EQ(adam_resumed_last.bias, adam_last.bias);
    EXPECT_EQ(adam_resumed.best.weights, adam.best.weights);
  }
}

// The small table's prepared rows as windows of `size` consecutive rows; counts the loads and can
// be told to fail at one window.
// The cosine schedule (the default) puts a run's first step at the full rate: one epoch of a single
// batch, as any table smaller than the batch trains, must move the weights in both modes.
// Without a validation set the running training loss decides early stopping only: the weights kept
// are the last epoch's (that loss is measured while the epoch moves the weights, so it cannot pick
// an epoch's weights), and the summary names the training loss as the metric. A constant rate of
// momentum SGD that oscillates makes the lowest running loss an early epoch.
TEST(Trainer, WithoutAValidationSetTheLastEpochIsKept) {
  SmallTraining t;
  TrainerOptions options;
  options.epochs = 12;
  options.batch = 4096;  // full batch
  options.patience = 0;
  options.progress = false;
  options.schedule = ScheduleKind::constant;
  options.learning_rate = 3.0f;
  ModelParameters last;
  const TrainOutcome outcome = t.train(OptimizerKind::momentum, options, &last);
  EXPECT_EQ(outcome.metric, "train_loss");
  EXPECT_EQ(outcome.best_epoch, 12);
  EXPECT_EQ(outcome.best.weights, last.weights);
  EXPECT_EQ(outcome.best.bias, last.bias);
  // The run is one where the lowest running loss is not the last epoch's, which the old rule kept.
  std::int32_t lowest = 1;
  for (const EpochRecord& r : outcome.history) {
    if (r.train_loss < outcome.history.at(lowest - 1).train_loss) lowest = r.epoch;
  }
  EXPECT_LT(lowest, 12);
}

TEST(Trainer, AValidationMetricWorseThanItsBestByTheMarginStopsTraining) {
  // Validation rows that are the training rows with every label flipped: each epoch that fits the
  // training rows better predicts them worse, so the first epoch is the best and the log-loss then
  // rises every epoch.
  SmallTraining t;
  std::vector<float> flipped(t.labels.size());
  for (std::size_t r = 0; r < flipped.size(); ++r) flipped[r] = 1.0f - t.labels[r];
  const auto run = [&](double margin, std::int32_t patience) {
    TrainerOptions options;
    options.epochs = 12;
    options.batch = 16;
    options.patience = patience;
    options.progress = false;
    options.learning_rate = 0.05f;
    options.overfit_margin = margin;
    options.cooldown_epochs = 0;  // the stop itself (TrainerCooldown: the decay patience starts)
    OptimizerConfig config;
    config.kind = OptimizerKind::sgd;
    auto model = make_model(DeviceContext::cpu(), t.shape, config, options.seed);
    const PreparedRowsView rows{t.block.dense.data(), t.block.slot.data(), t.block.value.data(), t.block.rows};
    LabeledRows train{{rows, t.labels.data(), nullptr}, t.block.rows, t.labels.data()};
    LabeledRows valid{{rows, flipped.data(), nullptr}, t.block.rows, flipped.data()};
    model->bind_training_set(train.set);
    return train_model(DeviceContext::cpu(), *model, train, &valid, PredictionLink{}, 2, options);
  };
  const TrainOutcome whole = run(0.0, 0);
  ASSERT_EQ(whole.history.size(), 12u);
  EXPECT_EQ(whole.best_epoch, 1);
  // Each epoch after the first worse than epoch 1 by more than 1e-4, then by more than the margin
  // below (the third epoch on): kOverfitStopEpochs of those stop the run.
  const double first = whole.history[0].valid.values.at("logloss");
  const double margin = 0.5 * (whole.history[1].valid.values.at("logloss") - first);
  ASSERT_GT(margin, 1e-4);
  for (std::size_t e = 1; e < whole.history.size(); ++e) {
    ASSERT_GT(whole.history[e].valid.values.at("logloss"), first + margin) << e;
  }
  const TrainOutcome stopped = run(margin, 0);
  EXPECT_EQ(stopped.history.size(), static_cast<std::size_t>(1 + kOverfitStopEpochs));
  EXPECT_EQ(stopped.best_epoch, 1);
  EXPECT_EQ(stopped.best.weights, whole.best.weights);
  // A margin larger than every excursion never stops; patience still does.
  EXPECT_EQ(run(1e9, 0).history.size(), 12u);
  EXPECT_EQ(run(1e9, 5).history.size(), 6u);
}

TEST(Trainer, TheConstantModelsMetricScalesTheMargin) {
  const std::vector<float> classes = {0, 0, 0, 1};
  EXPECT_NEAR(constant_metric_scale("logloss", classes, {}, 2), -(0.75 * std::log(0.75) + 0.25 * std::log(0.25)),
              1e-12);
  EXPECT_DOUBLE_EQ(constant_metric_scale("accuracy", classes, {}, 2), 0.75);
  EXPECT_DOUBLE_EQ(constant_metric_scale("pr_auc", classes, {}, 2), 0.25);
  EXPECT_DOUBLE_EQ(constant_metric_scale("auc", classes, {}, 2), 0.5);
  // Weighted: the positive row counts 3 times, the shares are even.
  const std::vector<float> weights = {1, 1, 1, 3};
  EXPECT_NEAR(constant_metric_scale("logloss", classes, weights, 2), std::log(2.0), 1e-12);
  const std::vector<float> values = {1, 3, 5, 7};
  EXPECT_NEAR(constant_metric_scale("rmse", values, {}, 0), std::sqrt(5.0), 1e-12);
  EXPECT_NEAR(constant_metric_scale("mae", values, {}, 0), 2.0, 1e-12);
  EXPECT_DOUBLE_EQ(constant_metric_scale("r2", values, {}, 0), 1.0);
  EXPECT_TRUE(std::isnan(constant_metric_scale("rmse", {}, {}, 0)));
  EXPECT_TRUE(std::isnan(constant_metric_scale("no_such_metric", values, {}, 0)));
}

TEST(Trainer, ASingleCosineStepStillLearns) {
  SmallTraining t;
  for (const TrainMode mode : {TrainMode::exact, TrainMode::parallel}) {
    TrainerOptions options;
    options.epochs = 1;
    options.batch = 4096;  // more than the table's rows: one step
    options.patience = 0;
    options.progress = false;
    options.schedule = ScheduleKind::cosine;
    options.mode = mode;
    ModelParameters last;
    t.train(OptimizerKind::adam, options, &last);
    const bool moved = std::any_of(last.weights.begin(), last.weights.end(), [](float w) { return w != 0.0f; }) ||
                       std::any_of(last.bias.begin(), last.bias.end(), [](float b) { return b != 0.0f; });
    EXPECT_TRUE(moved) << (mode == TrainMode::exact ? "exact" : "parallel");
  }
}

class BlockWindows final : public TrainingWindows {
 public:
  BlockWindows(const SmallTraining& t, std::int64_t size) : t_(t), size_(size) {}
  std::int64_t count() const override { return (t_.block.rows + size_ - 1) / size_; }
  std::int64_t rows_in(std::int64_t w) const override { return std::min(size_, t_.block.rows - w * size_); }
  // As FileWindows does: sized on the training thread, so that no load pins memory on the loader
  // thread while the training thread captures a CUDA graph.
  void reserve(TrainingWindow& out, std::int64_t rows) const override {
    out.dense.resize(static_cast<std::size_t>(t_.shape.layout.dense_features * rows));
    out.slot.resize(static_cast<std::size_t>(t_.shape.layout.groups * rows));
    out.value.resize(static_cast<std::size_t>(t_.shape.layout.groups * rows));
    out.targets.resize(static_cast<std::size_t>(rows));
    if (weight_even_windows) out.weights.resize(static_cast<std::size_t>(rows));
  }
  void load(std::int64_t w, TrainingWindow& out) const override {
    if (w == fail_at) throw InputError("window " + std::to_string(w) + " is unreadable");
    ++loads[static_cast<std::size_t>(w)];
    const std::int64_t first = w * size_, n = rows_in(w), rows = t_.block.rows;
    const std::int64_t dense = t_.shape.layout.dense_features, groups = t_.shape.layout.groups;
    out.rows = n;
    out.dense.resize(static_cast<std::size_t>(dense * n));
    out.slot.resize(static_cast<std::size_t>(groups * n));
    out.value.resize(static_cast<std::size_t>(groups * n));
    for (std::int64_t f = 0; f < dense; ++f)
      for (std::int64_t r = 0; r < n; ++r) out.dense[f * n + r] = t_.block.dense[f * rows + first + r];
    for (std::int64_t g = 0; g < groups; ++g)
      for (std::int64_t r = 0; r < n; ++r) {
        out.slot[g * n + r] = t_.block.slot[g * rows + first + r];
        out.value[g * n + r] = t_.block.value[g * rows + first + r];
      }
    out.targets.assign(t_.labels.begin() + first, t_.labels.begin() + first + n);
    out.weights.clear();
    if (weight_even_windows && w % 2 == 0) {
      out.weights.resize(static_cast<std::size_t>(n));
      for (std::int64_t r = 0; r < n; ++r) out.weights[r] = 0.5f + static_cast<float>((first + r) % 3);
    }
  }
  mutable std::vector<int> loads = std::vector<int>(64, 0);
  std::int64_t fail_at = -1;
  bool weight_even_windows = false;  // windows 0, 2, ... carry sample weights, the others none

 private:
  const SmallTraining& t_;
  std::int64_t size_;
};

TrainOutcome train_streamed(const SmallTraining& t, const BlockWindows& windows, TrainerOptions options,
                            ModelParameters* last = nullptr, const TrainerState* resume = nullptr,
                            const DeviceContext& ctx = DeviceContext::cpu()) {
  OptimizerConfig config;
  config.kind = OptimizerKind::adam;
  auto model = make_model(ctx, t.shape, config, options.seed);
  if (resume) model->set_parameters(resume->last);
  options.resume = resume;
  TrainOutcome outcome = train_model_streamed(ctx, *model, windows, nullptr, PredictionLink{}, 2, options);
  if (last) *last = model->parameters();
  return outcome;
}

TEST(StreamedTraining, VisitsEveryWindowOncePerEpochLearnsAndRepeats) {
  SmallTraining t;
  TrainerOptions options;
  options.epochs = 6;
  options.batch = 16;
  options.patience = 0;
  options.progress = false;
  options.learning_rate = 0.05f;
  const BlockWindows windows(t, 48);  // 5 windows: 48, 48, 48, 48, 8 rows
  ASSERT_EQ(windows.count(), 5);
  ModelParameters a_last, b_last;
  const TrainOutcome a = train_streamed(t, windows, options, &a_last);
  for (std::int64_t w = 0; w < windows.count(); ++w) EXPECT_EQ(windows.loads[w], 6) << "window " << w;
  const TrainOutcome b = train_streamed(t, windows, options, &b_last);
  EXPECT_EQ(a_last.weights, b_last.weights);  // the same seed gives the same bits
  EXPECT_EQ(a_last.bias, b_last.bias);
  ASSERT_EQ(a.history.size(), 6u);
  EXPECT_LT(a.history.back().train_loss, a.history.front().train_loss);
  // Held in memory the same rows reach about the same loss (another order, so not the same bits).
  ModelParameters held_last;
  const TrainOutcome held = t.train(OptimizerKind::adam, options, &held_last);
  EXPECT_NEAR(a.history.back().train_loss, held.history.back().train_loss, 0.05 * held.history.back().train_loss);
  // Another seed visits the windows and rows in another order.
  options.seed = 7;
  ModelParameters c_last;
  train_streamed(t, windows, options, &c_last);
  EXPECT_NE(a_last.weights, c_last.weights);
}

TEST(StreamedTraining, ALoaderErrorStopsTrainingWithItsMessage) {
  SmallTraining t;
  TrainerOptions options;
  options.epochs = 2;
  options.batch = 16;
  options.progress = false;
  BlockWindows windows(t, 48);
  windows.fail_at = 3;
  try {
    train_streamed(t, windows, options);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("window 3 is unreadable"), std::string::npos) << e.what();
  }
}

TEST(StreamedTraining, ResumingFromACheckpointContinuesAsIfUninterrupted) {
  SmallTraining t;
  TrainerOptions options;
  options.epochs = 4;
  options.batch = 16;
  options.patience = 0;
  options.progress = false;
  options.checkpoint_every = 2;
  std::vector<TrainerState> states;
  options.on_checkpoint = [&](const TrainerState& s) { states.push_back(s); };
  const BlockWindows windows(t, 48);
  ModelParameters whole_last, resumed_last;
  const TrainOutcome whole = train_streamed(t, windows, options, &whole_last);
  ASSERT_EQ(states.size(), 2u);
  options.on_checkpoint = nullptr;
  const TrainOutcome resumed = train_streamed(t, windows, options, &resumed_last, &states[0]);
  ASSERT_EQ(resumed.history.size(), whole.history.size());
  EXPECT_EQ(resumed.history.back().train_loss, whole.history.back().train_loss);
  EXPECT_EQ(resumed_last.weights, whole_last.weights);
  EXPECT_EQ(resumed_last.bias, whole_last.bias);
}

// Streamed training on each device (the GPU binds a window at a time, in exact and parallel mode)
// against the CPU reference: the same windows and orders, so the weights agree to float rounding.
class StreamedOnDevice : public testing::TestWithParam<DeviceKind> {};

// Three streamed epochs of `t` over `windows` on ctx and on the CPU, in exact mode and in parallel
// mode (2 workers, averaged every 2 steps): the weights, the bias and the last epoch's loss agree.
void expect_streamed_agrees_with_the_cpu(const SmallTraining& t, const BlockWindows& windows,
                                         const DeviceContext& ctx, std::int64_t batch) {
  for (TrainMode mode : {TrainMode::exact, TrainMode::parallel}) {
    SCOPED_TRACE(mode == TrainMode::exact ? "exact" : "parallel");
    TrainerOptions options;
    options.epochs = 3;
    options.batch = batch;
    options.patience = 0;
    options.progress = false;
    options.mode = mode;
    options.workers = 2;
    options.sync_every = 2;
    ModelParameters got, ref;
    const TrainOutcome a = train_streamed(t, windows, options, &got, nullptr, ctx);
    const TrainOutcome b = train_streamed(t, windows, options, &ref, nullptr, DeviceContext::cpu());
    ASSERT_EQ(got.weights.size(), ref.weights.size());
    for (std::size_t i = 0; i < ref.weights.size(); ++i) {
      EXPECT_NEAR(got.weights[i], ref.weights[i], 1e-4 * std::max(1.0f, std::fabs(ref.weights[i]))) << "weight " << i;
    }
    EXPECT_NEAR(got.bias[0], ref.bias[0], 1e-4 * std::max(1.0f, std::fabs(ref.bias[0])));
    EXPECT_NEAR(a.history.back().train_loss, b.history.back().train_loss, 1e-5 * b.history.back().train_loss);
  }
}

TEST_P(StreamedOnDevice, AgreesWithTheCpu) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  SmallTraining t;
  expect_streamed_agrees_with_the_cpu(t, BlockWindows(t, 48), test::context_for(GetParam()), 16);
}

// Windows long enough that exact mode's steps go through captured CUDA graphs (128 steps each)
// while the next window's copy is queued on the copy stream, and windows that alternate between
// weighted and unweighted, so the GPU model swaps its weight buffers in and out between bindings.
TEST_P(StreamedOnDevice, AgreesWithTheCpuThroughGraphsAndWeightedWindows) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  SmallTraining t;
  BlockWindows long_windows(t, 150);  // 150 steps of one row, then 50
  BlockWindows weighted(t, 48);
  weighted.weight_even_windows = true;
  for (const BlockWindows* windows : {&long_windows, &weighted}) {
    SCOPED_TRACE(windows == &weighted ? "weighted windows" : "long windows");
    TrainerOptions options;
    options.epochs = 2;
    options.batch = windows == &weighted ? 16 : 1;
    options.patience = 0;
    options.progress = false;
    ModelParameters got, ref;
    const TrainOutcome a = train_streamed(t, *windows, options, &got, nullptr, ctx);
    const TrainOutcome b = train_streamed(t, *windows, options, &ref, nullptr, DeviceContext::cpu());
    ASSERT_EQ(got.weights.size(), ref.weights.size());
    for (std::size_t i = 0; i < ref.weights.size(); ++i) {
      EXPECT_NEAR(got.weights[i], ref.weights[i], 1e-4 * std::max(1.0f, std::fabs(ref.weights[i]))) << "weight " << i;
    }
    EXPECT_NEAR(a.history.back().train_loss, b.history.back().train_loss, 1e-5 * b.history.back().train_loss);
  }
  // The weights matter: the same windows without them train to other weights (the test can fail).
  BlockWindows unweighted(t, 48);
  TrainerOptions options;
  options.epochs = 2;
  options.batch = 16;
  options.patience = 0;
  options.progress = false;
  ModelParameters with, without;
  train_streamed(t, weighted, options, &with, nullptr, ctx);
  train_streamed(t, unweighted, options, &without, nullptr, ctx);
  EXPECT_NE(with.weights, without.weights);
}

// A model over numeric columns alone (the GPU's dense path, which makes a row-major copy of each
// window it binds): streamed in both modes, with weighted and unweighted windows alternating,
// against the CPU.
TEST_P(StreamedOnDevice, AgreesWithTheCpuOverNumericColumnsAlone) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  SmallTraining t(true);
  ASSERT_EQ(t.shape.layout.groups, 0);
  BlockWindows windows(t, 45);  // 45, 45, 45, 45 and 20 rows
  windows.weight_even_windows = true;
  expect_streamed_agrees_with_the_cpu(t, windows, ctx, 8);
}

LATHE_INSTANTIATE_FOR_DEVICES(StreamedOnDevice);

// The live progress bar (TrainerOptions::on_epoch_progress) hands an epoch's steps to the model in
// groups of at least 128 (on the GPU a CUDA graph each): on each device the weights are those of
// the epoch run whole, bit for bit. After an epoch shorter than half a second the next ones run
// whole again, without progress.
class ProgressOnDevice : public testing::TestWithParam<DeviceKind> {};

TEST_P(ProgressOnDevice, GroupsOfStepsGiveTheWeightsOfTheWholeEpoch) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  SmallTraining t;
  const auto run = [&](std::vector<EpochProgress>* seen) {
    OptimizerConfig config;
    config.kind = OptimizerKind::adam;
    TrainerOptions options;
    options.epochs = 2;
    options.batch = 1;  // 200 steps an epoch: groups of 128 and 72
    options.patience = 0;
    options.progress = false;
    if (seen) options.on_epoch_progress = [seen](const EpochProgress& p) { seen->push_back(p); };
    auto model = make_model(ctx, t.shape, config, options.seed);
    LabeledRows rows{{{t.block.dense.data(), t.block.slot.data(), t.block.value.data(), t.block.rows}, t.labels.data(), nullptr},
                     t.block.rows, t.labels.data()};
    model->bind_training_set(rows.set);
    train_model(ctx, *model, rows, nullptr, PredictionLink{}, 2, options);
    return model->parameters();
  };
  std::vector<EpochProgress> seen;
  const ModelParameters whole = run(nullptr);
  const ModelParameters grouped = run(&seen);
  EXPECT_EQ(grouped.weights, whole.weights);
  EXPECT_EQ(grouped.bias, whole.bias);
  ASSERT_EQ(seen.size(), 2u);  // the first epoch's two groups; the second epoch runs whole
  EXPECT_EQ(seen[0].epoch, 1);
  EXPECT_EQ(seen[0].rows_done, 128);
  EXPECT_EQ(seen[1].rows_done, 200);
  EXPECT_EQ(seen[1].rows, 200);
}

LATHE_INSTANTIATE_FOR_DEVICES(ProgressOnDevice);

// ---- The refit (io/train_table.cpp, `lathe train --refit`) on each device ----
//
// Once a run on the training rows A has chosen its epoch on the validation rows V (early stopping,
// the best epoch's weights kept), the refit trains the same Model object again from the run's start
// on every row B (A and V, in file order) for the chosen epochs: set_parameters(start),
// bind_training_set(B), train_model with stop_after_epoch, then predict V. On the GPU the second
// binding goes through the double buffer that streamed windows use, with another row count, after
// a run that left its optimizer state, the lazy updates' last steps, the gathered epoch and (over
// numeric columns alone) the dense path's row-major copy of A behind. The refit must be, bit for
// bit, what a model that never saw A gives on B, and agree with the CPU doing the same to float
// rounding. Every run here is small: the GPU check runs the suite under compute-sanitizer too.
class RefitOnDevice : public testing::TestWithParam<DeviceKind> {};

// Prepared rows (PreparedBlock layout) with their binary labels and sample weights (empty: none).
struct RefitRows {
  std::int64_t rows = 0;
  std::vector<float> dense, value, labels, weights;
  std::vector<std::int32_t> slot;
  LabeledRows labeled() const {
    return {{{dense.data(), slot.data(), value.data(), rows}, labels.data(), weights.empty() ? nullptr : weights.data()},
            rows,
            labels.data()};
  }
};

struct RefitData {
  ModelShape shape;
  RefitRows every;  // the refit's rows: all of them, in file order
  RefitRows train;  // rows r % 4 != 0
  RefitRows valid;  // rows r % 4 == 0
};

// 240 rows of `dense` N(0, 1) features, the first two of which carry the label's signal, and, with
// `ids`, a one-hot group of 4 slots that carries some too and one of 60 slots that carries none:
// an id the model learns by heart, so that the validation log-loss turns up after a few epochs and
// early stopping keeps an early one (over numeric columns alone the features beyond the first two
// do the same). Sample weights uniform in [0.2, 3) when `weighted`.
RefitData refit_data(std::int64_t dense, bool ids, bool weighted) {
  constexpr std::int64_t rows = 240;
  const std::vector<std::int64_t> widths = ids ? std::vector<std::int64_t>{4, 60} : std::vector<std::int64_t>{};
  const auto groups = static_cast<std::int64_t>(widths.size());
  RefitData d;
  d.shape.task = Task::binary;
  d.shape.loss = LossKind::logistic;
  d.shape.group_offsets = {dense};
  for (std::int64_t w : widths) d.shape.group_offsets.push_back(d.shape.group_offsets.back() + w);
  d.shape.layout.dense_features = dense;
  d.shape.layout.groups = static_cast<std::int32_t>(groups);
  d.shape.features = d.shape.group_offsets.back();

  RefitRows& all = d.every;
  all.rows = rows;
  std::mt19937_64 rng(2024);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  all.dense.resize(static_cast<std::size_t>(dense * rows));
  for (float& x : all.dense) x = static_cast<float>(normal(rng));
  all.slot.resize(static_cast<std::size_t>(groups * rows));
  all.value.assign(all.slot.size(), 1.0f);
  for (std::int64_t g = 0; g < groups; ++g) {
    for (std::int64_t r = 0; r < rows; ++r) {
      all.slot[g * rows + r] = static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(widths[g]));
    }
  }
  const double group_effect[4] = {-1.0, -0.3, 0.4, 1.2};
  all.labels.resize(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    double s = 1.5 * all.dense[r] - 1.0 * all.dense[rows + r];
    if (ids) s += group_effect[all.slot[r]];
    all.labels[r] = u(rng) < 1.0 / (1.0 + std::exp(-s)) ? 1.0f : 0.0f;
  }
  if (weighted) {
    all.weights.resize(static_cast<std::size_t>(rows));
    for (float& w : all.weights) w = static_cast<float>(0.2 + 2.8 * u(rng));
  }
  // The split's two parts, column-major each.
  const auto part = [&](bool validation) {
    std::vector<std::int64_t> kept;
    for (std::int64_t r = 0; r < rows; ++r) {
      if ((r % 4 == 0) == validation) kept.push_back(r);
    }
    RefitRows p;
    p.rows = static_cast<std::int64_t>(kept.size());
    for (std::int64_t f = 0; f < dense; ++f)
      for (std::int64_t r : kept) p.dense.push_back(all.dense[f * rows + r]);
    for (std::int64_t g = 0; g < groups; ++g)
      for (std::int64_t r : kept) {
        p.slot.push_back(all.slot[g * rows + r]);
        p.value.push_back(all.value[g * rows + r]);
      }
    for (std::int64_t r : kept) {
      p.labels.push_back(all.labels[r]);
      if (weighted) p.weights.push_back(all.weights[r]);
    }
    return p;
  };
  d.train = part(false);
  d.valid = part(true);
  return d;
}

// 12 epochs of 6 steps (30 rows each), stopped after 3 epochs without improvement; parallel mode:
// 2 workers averaged every 2 steps. Adam's rates, 0.06 exact and 0.1 parallel, stop every data set
// above at epoch 2 to 4, and no other epoch comes within 0.3% of the chosen one's log-loss.
TrainerOptions refit_test_options(TrainMode mode, float learning_rate = 0.0f) {
  if (learning_rate == 0.0f) learning_rate = mode == TrainMode::exact ? 0.06f : 0.1f;
  TrainerOptions options;
  options.epochs = 12;
  options.batch = 30;
  options.patience = 3;
  // Stopped where patience runs out (TrainerCooldown replays a cooldown's rates in a refit).
  options.cooldown_epochs = 0;
  options.progress = false;
  options.learning_rate = learning_rate;
  options.mode = mode;
  options.workers = 2;
  options.sync_every = 2;
  return options;
}

// The refit's options, as io/train_table.cpp makes them (refit_options).
TrainerOptions refit_again(const TrainerOptions& options, std::int32_t epochs,
                           std::int32_t cooldown_after_epoch = 0) {
  return refit_options(options, epochs, cooldown_after_epoch);
}

struct RefitResult {
  TrainOutcome first;  // the run on the training rows, validated (empty for a fresh model's refit)
  TrainOutcome refit;  // the run on every row
  std::vector<float> refitted;     // its parameters, flat
  std::vector<float> predictions;  // of the validation rows, by the refitted model
};

std::vector<float> flat_parameters(const ModelParameters& p) {
  std::vector<float> v = p.weights;
  v.insert(v.end(), p.bias.begin(), p.bias.end());
  v.insert(v.end(), p.factors.begin(), p.factors.end());
  return v;
}

// The refit of io/train_table.cpp on ctx: the model of the validated run trained again on every
// row. With `epochs` > 0, a fresh model's run on every row for that many epochs instead. Both
// start from `init` when given (an earlier model's weights, as --init-model gives), else from zero.
RefitResult run_refit(const DeviceContext& ctx, const RefitData& d, const OptimizerConfig& optimizer,
                      const TrainerOptions& options, const ModelParameters* init, std::int32_t epochs = 0) {
  RefitResult out;
  const LabeledRows train = d.train.labeled(), valid = d.valid.labeled(), every = d.every.labeled();
  auto model = make_model(ctx, d.shape, optimizer, options.seed);
  if (init) model->set_parameters(*init);
  if (epochs == 0) {
    const ModelParameters start = model->parameters();
    model->bind_training_set(train.set);
    out.first = train_model(ctx, *model, train, &valid, PredictionLink{}, 2, options);
    epochs = out.first.best_epoch;
    model->set_parameters(start);
  }
  model->bind_training_set(every.set);
  out.refit = train_model(ctx, *model, every, nullptr, PredictionLink{}, 2,
                          refit_again(options, epochs, out.first.cooldown_after_epoch));
  out.refitted = flat_parameters(model->parameters());
  out.predictions.resize(static_cast<std::size_t>(valid.rows));
  predict(*model, PredictionLink{}, valid.set.rows, out.predictions);
  return out;
}

void expect_near_all(const std::vector<float>& got, const std::vector<float>& ref, double tolerance,
                     const char* what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    EXPECT_NEAR(got[i], ref[i], tolerance * std::max(1.0f, std::fabs(ref[i]))) << what << " " << i;
  }
}

// The refit on `kind` of a model `optimizer` trains (from `init`, else zero): the same bits as a
// fresh model's run on every row, and (on the GPU) the CPU's run to float rounding.
void expect_refit_agrees(DeviceKind kind, const RefitData& d, const OptimizerConfig& optimizer,
                         const TrainerOptions& options, const ModelParameters* init = nullptr) {
  const DeviceContext ctx = test::context_for(kind);
  const RefitResult got = run_refit(ctx, d, optimizer, options, init);
  // The run stopped early on an epoch after the first that no other epoch nearly ties (float
  // rounding on another device could otherwise choose another), as a refit's run does.
  const std::int32_t best = got.first.best_epoch;
  ASSERT_LT(static_cast<std::int32_t>(got.first.history.size()), options.epochs);
  ASSERT_GT(best, 1);
  const double chosen = got.first.history.at(best - 1).valid.values.at("logloss");
  for (const EpochRecord& r : got.first.history) {
    if (r.epoch != best) ASSERT_GT(r.valid.values.at("logloss") - chosen, 1e-3 * chosen) << "epoch " << r.epoch;
  }
  ASSERT_EQ(got.refit.history.size(), static_cast<std::size_t>(best));

  const RefitResult fresh = run_refit(ctx, d, optimizer, options, init, best);
  EXPECT_EQ(got.refitted, fresh.refitted);
  EXPECT_EQ(got.predictions, fresh.predictions);
  for (std::size_t e = 0; e < fresh.refit.history.size(); ++e) {
    EXPECT_EQ(got.refit.history[e].train_loss, fresh.refit.history[e].train_loss) << "refit epoch " << e + 1;
  }
  // The refit learned from the validation rows too: not the chosen epoch's weights.
  EXPECT_NE(got.refitted, flat_parameters(got.first.best));
  if (kind == DeviceKind::cpu) return;

  const RefitResult ref = run_refit(DeviceContext::cpu(), d, optimizer, options, init);
  ASSERT_EQ(got.first.best_epoch, ref.first.best_epoch);
  EXPECT_EQ(got.first.history.size(), ref.first.history.size());
  expect_near_all(flat_parameters(got.first.best), flat_parameters(ref.first.best), 1e-3, "chosen epoch's parameter");
  expect_near_all(got.refitted, ref.refitted, 1e-3, "refitted parameter");
  expect_near_all(got.predictions, ref.predictions, 1e-4, "validation prediction");
  for (std::size_t e = 0; e < ref.refit.history.size(); ++e) {
    EXPECT_NEAR(got.refit.history[e].train_loss, ref.refit.history[e].train_loss, 1e-5 * ref.refit.history[e].train_loss)
        << "refit epoch " << e + 1;
  }
}

// Categorical slots (the general kernels; lazy updates of the sparse features), unweighted and
// weighted, in exact mode (the gathered epoch) and parallel mode; and plain SGD with l2 from an
// earlier model's weights, whose lazy updates catch up penalties from each slot's last step: the
// first run's last steps, were set_parameters to keep them, would be later than the refit's first
// steps and zero the weights of the slots they catch up (from zero weights that shows nowhere).
TEST_P(RefitOnDevice, ACategoricalModelIsTheFreshModelsAndTheCpus) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  OptimizerConfig adam;
  adam.kind = OptimizerKind::adam;
  OptimizerConfig sgd;
  sgd.kind = OptimizerKind::sgd;
  sgd.l2 = 0.01f;
  for (const bool weighted : {false, true}) {
    const RefitData d = refit_data(3, true, weighted);
    for (const TrainMode mode : {TrainMode::exact, TrainMode::parallel}) {
      SCOPED_TRACE(std::string(weighted ? "weighted" : "unweighted") + (mode == TrainMode::exact ? ", exact" : ", parallel"));
      expect_refit_agrees(GetParam(), d, adam, refit_test_options(mode));
    }
  }
  SCOPED_TRACE("sgd with l2 from an earlier model, exact");
  const RefitData d = refit_data(3, true, false);
  ModelParameters earlier;
  std::mt19937_64 rng(99);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  earlier.weights.resize(static_cast<std::size_t>(d.shape.features));
  for (float& w : earlier.weights) w = normal(rng);
  earlier.bias = {0.1f};
  expect_refit_agrees(GetParam(), d, sgd, refit_test_options(TrainMode::exact, 2.0f), &earlier);
}

// Numeric columns alone: on the GPU the dense path, whose row-major copy of the bound set must be
// made again for every row (LATHE_CUDA_DENSE_STEP=off runs it on the general kernels).
TEST_P(RefitOnDevice, ANumericModelIsTheFreshModelsAndTheCpus) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  OptimizerConfig adam;
  adam.kind = OptimizerKind::adam;
  for (const bool weighted : {false, true}) {
    const RefitData d = refit_data(30, false, weighted);
    ASSERT_EQ(d.shape.layout.groups, 0);
    for (const TrainMode mode : {TrainMode::exact, TrainMode::parallel}) {
      SCOPED_TRACE(std::string(weighted ? "weighted" : "unweighted") + (mode == TrainMode::exact ? ", exact" : ", parallel"));
      expect_refit_agrees(GetParam(), d, adam, refit_test_options(mode));
    }
  }
}

LATHE_INSTANTIATE_FOR_DEVICES(RefitOnDevice);

// When --patience runs out the rate decays from where the schedule has it to zero over
// cooldown_epochs more epochs, and the run ends after them with the best epoch of all kept; a
// refit (stop_after_epoch, cooldown_after_epoch) replays those rates, and a checkpoint taken in
// the decay resumes it. Validation rows that are the training rows with every label flipped make
// epoch 1 the best and every later one worse.
TEST(TrainerCooldown, PatienceRunningOutStartsADecayToZeroThatARefitReplays) {
  SmallTraining t;
  std::vector<float> flipped(t.labels.size());
  for (std::size_t r = 0; r < flipped.size(); ++r) flipped[r] = 1.0f - t.labels[r];
  const PreparedRowsView rows{t.block.dense.data(), t.block.slot.data(), t.block.value.data(), t.block.rows};
  const LabeledRows train{{rows, t.labels.data(), nullptr}, t.block.rows, t.labels.data()};
  const LabeledRows valid{{rows, flipped.data(), nullptr}, t.block.rows, flipped.data()};
  std::vector<TrainerState> states;
  const auto run = [&](TrainerOptions options, bool validated, ModelParameters* last = nullptr,
                       const TrainerState* resume = nullptr) {
    OptimizerConfig config;
    config.kind = OptimizerKind::sgd;
    auto model = make_model(DeviceContext::cpu(), t.shape, config, options.seed);
    model->bind_training_set(train.set);
    if (resume) model->set_parameters(resume->last);
    options.resume = resume;
    TrainOutcome outcome =
        train_model(DeviceContext::cpu(), *model, train, validated ? &valid : nullptr, PredictionLink{}, 2, options);
    if (last) *last = model->parameters();
    return outcome;
  };
  TrainerOptions options;
  options.epochs = 12;
  options.batch = 16;
  options.patience = 2;
  options.cooldown_epochs = 4;
  options.progress = false;
  options.learning_rate = 0.05f;
  options.schedule = ScheduleKind::constant;
  options.checkpoint_every = 1;
  options.on_checkpoint = [&states](const TrainerState& s) { states.push_back(s); };
  const TrainOutcome cooled = run(options, true);
  // Patience runs out after epoch 3; epochs 4 to 7 decay the rate; the best epoch stays the first.
  EXPECT_EQ(cooled.cooldown_after_epoch, 3);
  ASSERT_EQ(cooled.history.size(), 7u);
  EXPECT_EQ(cooled.best_epoch, 1);
  ASSERT_EQ(states.size(), 7u);
  EXPECT_EQ(states[3].cooldown_after_epoch, 3);
  EXPECT_EQ(states[2].cooldown_after_epoch, 3);  // the checkpoint of the epoch that started it
  EXPECT_EQ(states[1].cooldown_after_epoch, 0);
  // The rate falls toward zero: at a constant --lr, plain SGD moves the weights in the last
  // decayed epoch (rates at most 0.15 of --lr) far less than in the epoch before the decay.
  const auto moved = [&](std::size_t epoch) {
    const std::vector<float> a = flat_parameters(states[epoch - 1].last), b = flat_parameters(states[epoch - 2].last);
    double d = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) d += (a[i] - b[i]) * (a[i] - b[i]);
    return std::sqrt(d);
  };
  EXPECT_LT(moved(7), 0.3 * moved(3));
  EXPECT_GT(moved(3), 0.0);

  // --cooldown 0: the run stops where patience runs out.
  options.on_checkpoint = nullptr;
  options.checkpoint_every = 0;
  TrainerOptions stop = options;
  stop.cooldown_epochs = 0;
  const TrainOutcome stopped = run(stop, true);
  EXPECT_EQ(stopped.history.size(), 3u);
  EXPECT_EQ(stopped.cooldown_after_epoch, 0);

  // A refit of the first 6 epochs (unvalidated, the decay starting after epoch 3 as the first run's
  // did) has that run's weights after epoch 6; without the decay, the plain schedule's.
  ModelParameters refitted;
  run(refit_again(options, 6, cooled.cooldown_after_epoch), false, &refitted);
  EXPECT_EQ(refitted.weights, states[5].last.weights);
  EXPECT_EQ(refitted.bias, states[5].last.bias);
  ModelParameters plain;
  run(refit_again(options, 6), false, &plain);
  EXPECT_NE(plain.weights, states[5].last.weights);

  // Resuming from the checkpoint after epoch 5, inside the decay, ends as the whole run did.
  ModelParameters last_whole, last_resumed;
  run(options, true, &last_whole);
  const TrainOutcome resumed = run(options, true, &last_resumed, &states[4]);
  EXPECT_EQ(resumed.history.size(), 7u);
  EXPECT_EQ(resumed.cooldown_after_epoch, 3);
  EXPECT_EQ(last_resumed.weights, last_whole.weights);
  EXPECT_EQ(last_resumed.weights, states[6].last.weights);
}

// A --cooldown of 2^31 - 1 epochs decays the rate over every epoch left. The epoch patience ran
// out after plus the cooldown overflowed an int32 (undefined behaviour; the run ended at once),
// and so did a refit's end.
TEST(TrainerCooldown, TheLargestCooldownRunsToTheLastEpoch) {
  SmallTraining t;
  std::vector<float> flipped(t.labels.size());
  for (std::size_t r = 0; r < flipped.size(); ++r) flipped[r] = 1.0f - t.labels[r];
  const PreparedRowsView rows{t.block.dense.data(), t.block.slot.data(), t.block.value.data(),
                              t.block.rows};
  const LabeledRows train{{rows, t.labels.data(), nullptr}, t.block.rows, t.labels.data()};
  const LabeledRows valid{{rows, flipped.data(), nullptr}, t.block.rows, flipped.data()};
  TrainerOptions options;
  options.epochs = 8;
  options.batch = 16;
  options.patience = 2;
  options.cooldown_epochs = std::numeric_limits<std::int32_t>::max();
  options.progress = false;
  options.learning_rate = 0.05f;
  options.schedule = ScheduleKind::constant;
  OptimizerConfig config;
  config.kind = OptimizerKind::sgd;
  auto model = make_model(DeviceContext::cpu(), t.shape, config, options.seed);
  model->bind_training_set(train.set);
  const TrainOutcome cooled =
      train_model(DeviceContext::cpu(), *model, train, &valid, PredictionLink{}, 2, options);
  // Patience runs out after epoch 3 (as in the test above); epochs 4 to 8 decay the rate.
  EXPECT_EQ(cooled.cooldown_after_epoch, 3);
  EXPECT_EQ(cooled.history.size(), 8u);
  // The refit: the 3 chosen epochs and a cooldown no longer than them (refit_options).
  EXPECT_EQ(refit_again(options, 3).stop_after_epoch, 6);
  // Chosen epochs near the int32 limit: their sum with such a cooldown is taken in int64.
  options.epochs = std::numeric_limits<std::int32_t>::max();
  EXPECT_EQ(refit_again(options, options.epochs - 1).stop_after_epoch, options.epochs);
}

// --mode parallel takes one rate an epoch: the mean of the rates the epoch's steps take in exact
// mode. A one-epoch cooldown after epoch 2 therefore runs epoch 3 at about half the rate. It ran at
// the rate of the epoch's first step, the full rate: the same weights as no cooldown at all, the
// decay felt an epoch late.
TEST(TrainerCooldown, ParallelModeFeelsTheDecayInTheEpochItBegins) {
  SmallTraining t;
  TrainerOptions options;
  options.epochs = 3;
  options.batch = 16;
  options.patience = 0;
  options.progress = false;
  options.learning_rate = 0.05f;
  options.schedule = ScheduleKind::constant;
  options.mode = TrainMode::parallel;
  options.workers = 2;
  options.sync_every = 2;
  options.checkpoint_every = 1;
  const auto run = [&](std::int32_t cooldown_epochs) {
    std::vector<TrainerState> states;
    TrainerOptions o = options;
    o.cooldown_epochs = cooldown_epochs;
    o.cooldown_after_epoch = 2;  // as a refit replays it
    o.on_checkpoint = [&states](const TrainerState& s) { states.push_back(s); };
    t.train(OptimizerKind::sgd, o);
    return states;
  };
  const std::vector<TrainerState> cooled = run(1), plain = run(0);
  ASSERT_EQ(cooled.size(), 3u);
  ASSERT_EQ(plain.size(), 3u);
  EXPECT_EQ(flat_parameters(cooled[1].last),
            flat_parameters(plain[1].last));  // the same up to the decay
  const auto moved = [](const std::vector<TrainerState>& s) {
    const std::vector<float> a = flat_parameters(s[2].last), b = flat_parameters(s[1].last);
    double d = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) d += (a[i] - b[i]) * (a[i] - b[i]);
    return std::sqrt(d);
  };
  ASSERT_GT(moved(plain), 0.0);
  EXPECT_LT(moved(cooled), 0.75 * moved(plain));
  EXPECT_GT(moved(cooled), 0.25 * moved(plain));
}

// The live progress bar (TrainerOptions::on_epoch_progress) counts to the run's last epoch as it
// stands: once a cooldown began, its end, as the epochs' own lines do (it counted to --epochs, and
// its ETA with it), and the streamed windows of an epoch after it are not read ahead.
TEST(TrainerCooldown, LiveProgressCountsToTheCooldownsEnd) {
  SmallTraining t;
  BlockWindows windows(t, 64);
  TrainerOptions options;
  options.epochs = 12;
  options.batch = 16;
  options.patience = 0;
  options.progress = false;
  options.cooldown_epochs = 2;
  options.cooldown_after_epoch = 2;  // as a refit replays it: the run ends after epoch 4
  std::vector<EpochProgress> seen;
  options.on_epoch_progress = [&seen](const EpochProgress& p) { seen.push_back(p); };
  const TrainOutcome outcome = train_streamed(t, windows, options);
  ASSERT_EQ(outcome.history.size(), 4u);
  ASSERT_FALSE(seen.empty());
  for (const EpochProgress& p : seen) EXPECT_EQ(p.epochs, 4) << "epoch " << p.epoch;
  EXPECT_EQ(seen.back().epoch, 4);
  // Each window loaded once an epoch: none for an epoch 5.
  for (std::int64_t w = 0; w < windows.count(); ++w)
    EXPECT_EQ(windows.loads[w], 4) << "window " << w;
}

TEST(TrainerCheckpoint, CheckpointFileRoundTrip) {
  test::TemporaryDirectory dir;
  SmallTraining t;
  TrainerOptions options;
  options.epochs = 3;
  options.progress = false;
  options.patience = 0;
  options.checkpoint_every = 3;
  TrainerState state;
  options.on_checkpoint = [&](const TrainerState& s) { state = s; };
  t.train(OptimizerKind::adam, options, nullptr, nullptr, 0.01f);
  ModelFile m = small_model(t.table);
  save_checkpoint(dir.file("c.h5"), m, state);
  EXPECT_EQ(dir.entries().size(), 1u);  // atomic: no temporary left beside it
  const LoadedCheckpoint back = load_checkpoint(dir.file("c.h5"));
  EXPECT_EQ(back.state.next_epoch, 4);
  EXPECT_EQ(back.state.best_epoch, state.best_epoch);
  EXPECT_EQ(back.state.step, state.step);
  EXPECT_EQ(back.state.epochs_since_best, state.epochs_since_best);
  EXPECT_EQ(back.state.cooldown_after_epoch, 0);
  EXPECT_EQ(back.state.best_value, state.best_value);
  ASSERT_EQ(back.state.history.size(), 3u);
  for (std::size_t e = 0; e < 3; ++e) {  // each epoch's last rate, as the float it was
    EXPECT_GT(state.history[e].learning_rate, 0.0f);
    EXPECT_EQ(back.state.history[e].learning_rate, state.history[e].learning_rate);
  }
  EXPECT_EQ(back.state.last.weights, state.last.weights);
  EXPECT_EQ(back.state.best.weights, state.best.weights);
  EXPECT_EQ(back.state.optimizer_step_origin, 0);
  EXPECT_FALSE(state.optimizer.first.empty());
  EXPECT_EQ(back.state.optimizer.first, state.optimizer.first);
  EXPECT_EQ(back.state.optimizer.second, state.optimizer.second);
  EXPECT_FALSE(state.optimizer.last_step.empty());
  EXPECT_EQ(back.state.optimizer.last_step, state.optimizer.last_step);
  // A run that caught up no penalties (no l2 or l1) writes no last steps: its checkpoint loads
  // with every sparse feature last updated at its step, so a resume that adds --l2 catches up
  // from there, not the penalties of every step before it (from step 0).
  TrainerState plain = state;
  plain.optimizer.last_step.clear();
  save_checkpoint(dir.file("plain.h5"), m, plain);
  EXPECT_EQ(load_checkpoint(dir.file("plain.h5")).state.optimizer.last_step,
            std::vector<std::uint32_t>(state.optimizer.last_step.size(), static_cast<std::uint32_t>(state.step)));
  ASSERT_EQ(back.state.history.size(), 3u);
  EXPECT_EQ(back.state.history[2].train_loss, state.history[2].train_loss);
  // The epoch after which --cooldown's decay began travels with it.
  TrainerState cooling = state;
  cooling.cooldown_after_epoch = 2;
  save_checkpoint(dir.file("cooling.h5"), m, cooling);
  EXPECT_EQ(load_checkpoint(dir.file("cooling.h5")).state.cooldown_after_epoch, 2);
  // A checkpoint is a model file; a model file is not a checkpoint.
  EXPECT_EQ(load_model(dir.file("c.h5")).parameters.weights, state.best.weights);
  save_model(dir.file("m.h5"), m);
  try {
    load_checkpoint(dir.file("m.h5"));
    FAIL() << "a plain model file was accepted as a checkpoint";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("not a checkpoint"), std::string::npos) << e.what();
  }
}

TEST(PredictionLink, TurnsScoresIntoPredictions) {
  std::vector<float> out;
  scores_to_predictions({Task::binary, 1, 0, 1}, {0.0f, 2.0f}, out);
  EXPECT_FLOAT_EQ(out[0], 0.5f);
  EXPECT_NEAR(out[1], 1.0 / (1.0 + std::exp(-2.0)), 1e-7);
  scores_to_predictions({Task::regression, 1, 100.0, 10.0}, {0.5f}, out);
  EXPECT_FLOAT_EQ(out[0], 105.0f);
  scores_to_predictions({Task::multiclass, 3, 0, 1}, {1000.0f, 1000.0f, 0.0f}, out);  // no overflow
  EXPECT_NEAR(out[0], 0.5, 1e-6);
  EXPECT_NEAR(out[0] + out[1] + out[2], 1.0, 1e-6);
}

// predict: a classifier's scores through the link (in place), a regression model's prediction in
// double (Model::predict_regression), which a float score through the link cannot match where the
// prediction cancels to near zero.
TEST(PredictionLink, PredictIsTheLinkOfTheScoresAndRegressionInDouble) {
  const DeviceContext cpu = DeviceContext::cpu();
  // Two dense features, 4 rows; row 2 sums to its first term in float (4e-8 < half an ulp of 1.23).
  const std::vector<float> x = {0.1f, -0.37f, 1.2345678f, 2.5f, 0.2f, 3e-8f, 4e-8f, 0.5f};
  const PreparedRowsView rows{x.data(), nullptr, nullptr, 4};
  const auto shape_of = [](Task task, LossKind loss, std::int32_t outputs) {
    ModelShape s;
    s.task = task;
    s.loss = loss;
    s.outputs = outputs;
    s.layout.dense_features = 2;
    s.group_offsets = {2};
    return s;
  };
  for (const auto& [task, loss, outputs] : {std::tuple{Task::binary, LossKind::logistic, 1},
                                            std::tuple{Task::multiclass, LossKind::softmax, 3}}) {
    auto model = make_model(cpu, shape_of(task, loss, outputs), OptimizerConfig{}, 1);
    ModelParameters p = model->parameters();
    for (std::size_t i = 0; i < p.weights.size(); ++i) p.weights[i] = 0.5f + static_cast<float>(i);
    for (std::size_t i = 0; i < p.bias.size(); ++i) p.bias[i] = -0.25f * static_cast<float>(i);
    model->set_parameters(p);
    const PredictionLink link{task, outputs, 0.0, 1.0};
    std::vector<float> scores(static_cast<std::size_t>(4 * outputs)), want, got(scores.size(), NAN);
    model->predict_scores(rows, scores.data());
    scores_to_predictions(link, scores, want);
    predict(*model, link, rows, got);
    EXPECT_EQ(got, want);
    std::vector<float> small(got.size() - 1);
    EXPECT_THROW(predict(*model, link, rows, small), Error);
  }
  auto model =
      make_model(cpu, shape_of(Task::regression, LossKind::squared, 1), OptimizerConfig{}, 1);
  model->set_parameters({{1.0f, 1.0f}, {0.0f}, {}});
  const auto score = [&x](std::size_t r) { return static_cast<double>(x[r]) + x[r + 4]; };  // exact
  // Row 2 predicts 1e-3 where mean and std * score are 1.2e4.
  const double std_dev = 1e4;
  const double mean = -std_dev * score(2) + 1e-3;
  const PredictionLink link{Task::regression, 1, mean, std_dev};
  std::vector<float> got(4, NAN), scores(4), from_scores;
  predict(*model, link, rows, got);
  for (std::size_t r = 0; r < 4; ++r) {
    EXPECT_EQ(got[r], static_cast<float>(mean + std_dev * score(r))) << "row " << r;
  }
  EXPECT_NEAR(got[2], 1e-3, 1e-9);
  // The score rounded to float (predict_scores) through the link is off by std x half an ulp.
  model->predict_scores(rows, scores.data());
  EXPECT_EQ(scores[2], static_cast<float>(score(2)));
  scores_to_predictions(link, scores, from_scores);
  EXPECT_GT(std::fabs(from_scores[2] - 1e-3), 1e-4);
}

}  // namespace
}  // namespace lathe

namespace lathe {
namespace {

// A loss that rose more than tenfold above the lowest before it is a divergence, named by epoch.
TEST(TrainerDivergence, ALossTenTimesItsLowestIsNamed) {
  const auto history = [](std::vector<double> losses) {
    std::vector<EpochRecord> h;
    for (std::size_t i = 0; i < losses.size(); ++i) {
      EpochRecord r;
      r.epoch = static_cast<std::int32_t>(i + 1);
      r.train_loss = losses[i];
      h.push_back(r);
    }
    return h;
  };
  // Diamonds with --model fm --cross all (the QA's run): 0.19, 25.6, 42.0, ...
  const std::string note = divergence_note(history({0.19, 25.6, 42.0, 2307.0}));
  EXPECT_NE(note.find("from 0.19 (epoch 1) to 25.6 (epoch 2)"), std::string::npos) << note;
  EXPECT_NE(note.find("--lr"), std::string::npos) << note;
  EXPECT_NE(divergence_note(history({1.0, 0.5, 6.0})).find("epoch 3"), std::string::npos);
  // Noise, a slow rise and a flat run are not divergence.
  EXPECT_EQ(divergence_note(history({1.0, 0.9, 0.8, 5.0, 0.7})), "");
  // A rise the run settled from (adam's excursion on dense data, down again under the cosine
  // decay).
  EXPECT_EQ(divergence_note(history({0.0196, 0.00196, 0.0267, 0.01, 0.0035})), "");
  EXPECT_NE(divergence_note(history({0.0196, 0.00196, 0.0267, 0.01, 0.0045})), "");
  EXPECT_EQ(divergence_note(history({0.0, 0.0, 0.0})), "");
  EXPECT_EQ(divergence_note(history({})), "");
}

TEST(TrainerWorseThanConstant, NamedWhenAConstantWouldPredictTheValidationRowsBetter) {
  MetricSet regression;
  regression.values = {{"r2", -1.67}, {"rmse", 1.64}};
  const std::string note = worse_than_constant_note(regression, 3, 9, {}, {});
  EXPECT_NE(note.find("epoch 3"), std::string::npos) << note;
  EXPECT_NE(note.find("r2 -1.67"), std::string::npos) << note;
  EXPECT_NE(note.find("--lr"), std::string::npos) << note;
  EXPECT_NE(note.find("do not predict the label"), std::string::npos) << note;
  EXPECT_EQ(note.find("--epochs"), std::string::npos) << note;
  // Kept from the last epoch run: still improving when the epochs ran out, so more of them (a
  // lower rate would only slow it down).
  const std::string last = worse_than_constant_note(regression, 2, 2, {}, {});
  EXPECT_NE(last.find("last of the 2 epochs run"), std::string::npos) << last;
  EXPECT_NE(last.find("try more --epochs"), std::string::npos) << last;
  EXPECT_EQ(last.find("--lr"), std::string::npos) << last;
  regression.values["r2"] = 0.2;
  EXPECT_EQ(worse_than_constant_note(regression, 3, 9, {}, {}), "");

  // Binary, 1 positive in 4: the shares' log-loss is H(0.25) = 0.5623.
  const std::vector<float> labels = {0, 0, 0, 1};
  MetricSet binary;
  binary.classes = 2;
  binary.values = {{"logloss", 0.60}};
  EXPECT_NE(worse_than_constant_note(binary, 1, 5, labels, {}).find("0.5623"), std::string::npos);
  binary.values["logloss"] = 0.55;
  EXPECT_EQ(worse_than_constant_note(binary, 1, 5, labels, {}), "");
  // Weighted 3:1 toward the positive row, the shares are even: H = log 2 = 0.6931.
  const std::vector<float> weights = {1, 1, 1, 3};
  binary.values["logloss"] = 0.60;
  EXPECT_EQ(worse_than_constant_note(binary, 1, 5, labels, weights), "");
  binary.values["logloss"] = 0.70;
  EXPECT_NE(worse_than_constant_note(binary, 1, 5, labels, weights).find("0.6931"), std::string::npos);

  // Multiclass, three even classes: log 3 = 1.0986.
  MetricSet multiclass;
  multiclass.classes = 3;
  multiclass.values = {{"logloss", 1.2}};
  const std::vector<float> three = {0, 1, 2, 0, 1, 2};
  EXPECT_NE(worse_than_constant_note(multiclass, 2, 5, three, {}).find("1.0986"), std::string::npos);
  multiclass.values["logloss"] = 0.9;
  EXPECT_EQ(worse_than_constant_note(multiclass, 2, 5, three, {}), "");
  // Validation rows of one class: their share predicts them perfectly; no comparison.
  binary.values["logloss"] = 0.3;
  EXPECT_EQ(worse_than_constant_note(binary, 1, 5, std::vector<float>{0, 0, 0}, {}), "");
}

// --class-weight balanced on 14% positives: the weights shift the probabilities toward the
// positives on purpose, so a converged model's (unweighted) validation log-loss, 0.55, is above the
// plain shares' 0.405 and was named as "did not converge: try a lower --lr" on every such run. It
// is compared with the constant of the class-weighted objective, 0.5 and 0.5 (log 2 = 0.6931),
// which a diverged model still does worse than.
TEST(TrainerWorseThanConstant, ClassWeightsCompareWithTheConstantTheirObjectiveConvergesTo) {
  std::vector<float> labels(86, 0.0f);
  labels.resize(100, 1.0f);
  const std::vector<double> balanced = {100.0 / (2 * 86), 100.0 / (2 * 14)};  // n / (K n_c)
  MetricSet binary;
  binary.classes = 2;
  binary.values = {{"logloss", 0.55}};
  // Without the class weights: the plain shares, H(0.14) = 0.40496.
  EXPECT_NE(worse_than_constant_note(binary, 4, 8, labels, {}).find("0.40496"), std::string::npos);
  EXPECT_EQ(worse_than_constant_note(binary, 4, 8, labels, {}, balanced), "");
  binary.values["logloss"] = 0.9;
  const std::string diverged = worse_than_constant_note(binary, 4, 8, labels, {}, balanced);
  EXPECT_NE(diverged.find("gives 0.6931"), std::string::npos) << diverged;
  EXPECT_NE(diverged.find("times the class weights (0.5, 0.5"), std::string::npos) << diverged;
  EXPECT_NE(diverged.find("--lr"), std::string::npos) << diverged;

  // With sample weights too (balanced weights count rows): shares 86 : 28 by the sample weights,
  // times the class weights 50 : 100, so the constant is 1/3, 2/3: cross-entropy 0.9284.
  std::vector<float> weights(100, 1.0f);
  for (std::size_t r = 86; r < 100; ++r) weights[r] = 2.0f;
  binary.values["logloss"] = 0.90;
  EXPECT_EQ(worse_than_constant_note(binary, 4, 8, labels, weights, balanced), "");
  binary.values["logloss"] = 0.95;
  EXPECT_NE(worse_than_constant_note(binary, 4, 8, labels, weights, balanced).find("0.9283"),
            std::string::npos);

  // Multiclass, shares 0.6, 0.3, 0.1 balanced: the constant is 1/3 each, log 3 = 1.0986.
  std::vector<float> three(60, 0.0f);
  three.resize(90, 1.0f);
  three.resize(100, 2.0f);
  const std::vector<double> balanced3 = {100.0 / (3 * 60), 100.0 / (3 * 30), 100.0 / (3 * 10)};
  MetricSet multiclass;
  multiclass.classes = 3;
  multiclass.values = {{"logloss", 1.05}};
  EXPECT_NE(worse_than_constant_note(multiclass, 2, 5, three, {}), "");  // above the shares' 0.8979
  EXPECT_EQ(worse_than_constant_note(multiclass, 2, 8, three, {}, balanced3), "");
  multiclass.values["logloss"] = 1.2;
  EXPECT_NE(worse_than_constant_note(multiclass, 2, 8, three, {}, balanced3).find("1.0986"),
            std::string::npos);
}

}  // namespace
}  // namespace lathe
