#include "runtime/trainer.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <future>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <span>
#include <sstream>

#include "kernels/prepare_formulas.h"
#include "models/model_formulas.h"
#include "runtime/error.h"
#include "runtime/shortest_text.h"

namespace lathe {

namespace {


float learning_rate_at(const TrainerOptions& o, std::int64_t step, std::int64_t total_steps) {
  float lr = o.learning_rate;
  const std::int64_t after_warmup = std::max<std::int64_t>(0, step - o.warmup_steps);
  switch (o.schedule) {
    case ScheduleKind::constant:
      break;
    case ScheduleKind::inverse_time: {
      // A decay below 0 is once per epoch: 1 / (steps per epoch), total_steps being the steps per
      // epoch times o.epochs, so the rate is lr / (1 + epochs done).
      const float decay = o.decay >= 0 ? o.decay
                                       : static_cast<float>(static_cast<double>(o.epochs) /
                                                            static_cast<double>(std::max<std::int64_t>(1, total_steps)));
      lr = o.learning_rate / (1.0f + decay * static_cast<float>(after_warmup));
      break;
    }
    case ScheduleKind::cosine: {
      // Steps count from 1; step k after the warmup sits at (k - 1) / span of the curve, so the
      // first runs at the full rate and the last above zero: a single step (one epoch of one
      // batch, any small table) must still learn.
      const double span = std::max<std::int64_t>(1, total_steps - o.warmup_steps);
      const double t = std::min(1.0, static_cast<double>(std::max<std::int64_t>(0, after_warmup - 1)) / span);
      lr = static_cast<float>(0.5 * o.learning_rate * (1.0 + std::cos(M_PI * t)));
      break;
    }
  }
  if (o.warmup_steps > 0 && step <= o.warmup_steps) {
    lr = o.learning_rate * static_cast<float>(step) / static_cast<float>(o.warmup_steps);
  }
  return lr;
}

// A run's rates: TrainerOptions' schedule over total_steps, and from cooldown_first_step on (0:
// never) a cosine decay from the rate the schedule has at that step to zero over cooldown_steps
// (TrainerOptions::cooldown_epochs), its last step above zero as the schedule's own is.
struct RateSchedule {
  std::int64_t total_steps = 1;
  std::int64_t cooldown_first_step = 0;
  std::int64_t cooldown_steps = 0;
  // The run's last epoch: last_epoch_of(options), or the cooldown's last once it has begun (the
  // progress shows it, and no permutation is prepared past it).
  std::int32_t last_epoch = 1;
};

float learning_rate_at(const TrainerOptions& o, std::int64_t step, const RateSchedule& s) {
  if (s.cooldown_first_step > 0 && step >= s.cooldown_first_step) {
    const float from = learning_rate_at(o, s.cooldown_first_step, s.total_steps);
    const double t = std::min(1.0, static_cast<double>(step - s.cooldown_first_step) /
                                       static_cast<double>(std::max<std::int64_t>(1, s.cooldown_steps)));
    return static_cast<float>(0.5 * from * (1.0 + std::cos(M_PI * t)));
  }
  return learning_rate_at(o, step, s.total_steps);
}

// The lowest training loss of epochs history[0 .. i].
double lowest_train_loss(const std::vector<EpochRecord>& history, std::size_t i) {
  double lowest = history[i].train_loss;
  for (std::size_t j = 0; j < i; ++j) lowest = std::min(lowest, history[j].train_loss);
  return lowest;
}

// Whether epoch history[i] counts toward an early stop (kStopCountLossRatio): its training loss
// within that ratio of the lowest up to it, or so far above it that the run diverges
// (kDivergedLossRatio), which stopping ends with the best epoch kept rather than in a loss that
// overflows.
bool counts_toward_stopping(const std::vector<EpochRecord>& history, std::size_t i) {
  const double lowest = lowest_train_loss(history, i);
  const double loss = history[i].train_loss;
  return !(loss > kStopCountLossRatio * lowest) ||
         loss > kDivergedLossRatio * lowest;  // NaN: counts
}

// Whether the run may cool down after epoch history[i] (TrainerOptions::cooldown_epochs): its
// training loss within kStopCountLossRatio of the lowest, on the plateau the rate keeps it on. A
// run whose loss climbs past kDivergedLossRatio times its lowest also runs out of patience, and
// is stopped with its best epoch kept: more epochs, even at falling rates, overflowed it (lr 0.4
// at batch 1: loss 2e9, 1e31, then not finite).
bool may_cool_down(const std::vector<EpochRecord>& history, std::size_t i) {
  return history[i].train_loss <= kStopCountLossRatio * lowest_train_loss(history, i);
}

// Whether the last kOverfitStopEpochs epochs' validation metric was each worse than `best` by
// more than `margin` (TrainerOptions::overfit_margin; 0 or NaN: never), each counting toward a
// stop.
bool overfitting(const std::vector<EpochRecord>& history, const std::string& metric, double best, double margin) {
  if (!(margin > 0.0) || std::isnan(best) || static_cast<std::int32_t>(history.size()) < kOverfitStopEpochs) {
    return false;
  }
  const bool higher = higher_is_better(metric);
  for (std::size_t i = history.size() - kOverfitStopEpochs; i < history.size(); ++i) {
    if (!counts_toward_stopping(history, i)) return false;
    const auto it = history[i].valid.values.find(metric);
    if (it == history[i].valid.values.end()) return false;
    const double v = std::isnan(history[i].selection) ? it->second : history[i].selection;
    if (!(higher ? v < best - margin : v > best + margin)) return false;  // NaN: not worse
  }
  return true;
}

std::string eta_text(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
}

}  // namespace

void scores_to_predictions(const PredictionLink& link, const std::vector<float>& scores,
                           std::vector<float>& predictions) {
  predictions.resize(scores.size());
  scores_to_predictions(link, std::span<const float>(scores), std::span<float>(predictions));
}

void scores_to_predictions(const PredictionLink& link, std::span<const float> scores,
                           std::span<float> predictions) {
  if (predictions.size() != scores.size()) {
    throw Error("scores_to_predictions: " + std::to_string(scores.size()) + " scores but room for " +
                std::to_string(predictions.size()) + " predictions");
  }
  const std::size_t k = static_cast<std::size_t>(link.outputs);
  switch (link.task) {
    case Task::regression:
      for (std::size_t i = 0; i < scores.size(); ++i) {
        predictions[i] = RegressionMap{link.target_mean, link.target_std, link.target_transform}(scores[i]);
      }
      break;
    case Task::binary:
      for (std::size_t i = 0; i < scores.size(); ++i) {
        predictions[i] = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(scores[i]))));
      }
      break;
    case Task::multiclass:
      for (std::size_t r = 0; r < scores.size() / k; ++r) {
        const float* s = scores.data() + r * k;
        const float m = *std::max_element(s, s + k);
        if (std::isinf(m)) {
          // A score beyond float's range (an fm's pairs of a corrupt 1e30 value) rounds to inf,
          // and inf - inf is NaN: the classes at the largest score share the probability, as the
          // softmax tends to (and an exact double one computes) when the rest fall behind.
          const auto top = static_cast<double>(std::count(s, s + k, m));
          for (std::size_t o = 0; o < k; ++o) predictions[r * k + o] = s[o] == m ? static_cast<float>(1.0 / top) : 0.0f;
          continue;
        }
        double total = 0;
        for (std::size_t o = 0; o < k; ++o) total += std::exp(static_cast<double>(s[o] - m));
        for (std::size_t o = 0; o < k; ++o) {
          predictions[r * k + o] = static_cast<float>(std::exp(static_cast<double>(s[o] - m)) / total);
        }
      }
      break;
  }
}

void predict(Model& model, const PredictionLink& link, const PreparedRowsView& rows,
             std::span<float> predictions) {
  const auto size = static_cast<std::size_t>(rows.rows * link.outputs);
  if (predictions.size() != size) {
    throw Error("predict: " + std::to_string(rows.rows) + " rows of " + std::to_string(link.outputs) +
                " outputs but room for " + std::to_string(predictions.size()) + " predictions");
  }
  if (link.task == Task::regression) {
    model.predict_regression(rows, link.target_mean, link.target_std, link.target_transform, predictions.data());
    return;
  }
  model.predict_scores(rows, predictions.data());
  scores_to_predictions(link, std::span<const float>(predictions), predictions);
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Runs one epoch's steps over the rows the model is bound to (`rows` of them, in the order set
// for the epoch): local SGD in parallel mode, else minibatch steps (at once through train_steps,
// or one train_step call each). Advances `step` by the steps taken. mean_weight: the training
// set's mean sample weight (StepSettings::mean_weight).
// `rows_done(n)`, when not empty, is told after each group of steps that the first n of `rows` are
// done (TrainerOptions::on_epoch_progress). Returns the learning rate of the last step (parallel
// mode: the rate its local steps took).
float run_steps(Model& model, std::int64_t rows, const TrainerOptions& options, double mean_weight,
                std::int64_t& step, std::int64_t optimizer_restart, const RateSchedule& schedule,
                std::vector<PlannedStep>& plans,
                const std::function<void(std::int64_t)>& rows_done) {
  if (options.mode == TrainMode::parallel) {
    LocalSgdSettings local;
    local.mean_weight = mean_weight;
    local.batch = options.batch;
    local.sync_every = options.sync_every;
    local.workers = options.workers;
    local.first_step = step + 1 - optimizer_restart;
    // One rate for the whole epoch: the mean of the rates its steps would take in exact mode, so a
    // schedule or cooldown that falls within the epoch is felt in it, not an epoch later (the
    // first step's rate would run a cooldown's first epoch at the full rate). A constant rate is
    // its own mean, bit for bit (up to 2^29 equal floats sum exactly in double).
    const std::int64_t epoch_steps =
        rows / options.batch + (rows % options.batch != 0);  // ceil, where rows + batch - 1 could overflow
    double rate_sum = 0.0;
    for (std::int64_t k = 1; k <= epoch_steps; ++k)
      rate_sum += learning_rate_at(options, step + k, schedule);
    local.learning_rate =
        static_cast<float>(rate_sum / static_cast<double>(std::max<std::int64_t>(1, epoch_steps)));
    model.train_epoch_local_sgd(local);
    step += epoch_steps;
    if (rows_done) rows_done(rows);
    return local.learning_rate;
  }
  plans.clear();
  for (std::int64_t first = 0; first < rows; first += options.batch) {
    ++step;
    PlannedStep p;
    p.first = first;
    p.count = std::min(options.batch, rows - first);
    p.settings.step = step - optimizer_restart;
    p.settings.learning_rate = learning_rate_at(options, step, schedule);
    p.settings.mean_weight = mean_weight;
    // The loss stays on the device and is read once per epoch: no wait after every GPU step.
    p.settings.return_loss = false;
    plans.push_back(p);
  }
  const auto run = [&](std::span<const PlannedStep> group) {
    if (options.step_graphs) {
      model.train_steps(group);
    } else {
      for (const PlannedStep& p : group) model.train_step(p.first, p.count, p.settings);
    }
  };
  const float last_rate = plans.empty() ? 0.0f : plans.back().settings.learning_rate;
  if (!rows_done) {
    run(plans);
    return last_rate;
  }
  // About 256 groups an epoch, a bar that moves, at little cost: at least 128 steps each, one CUDA
  // graph's worth (kernels/train_step.cu), as each call waits for the steps queued before it.
  const std::size_t group = std::max<std::size_t>(128, plans.size() / 256);
  for (std::size_t begin = 0; begin < plans.size(); begin += group) {
    const std::size_t count = std::min(group, plans.size() - begin);
    run(std::span<const PlannedStep>(plans).subspan(begin, count));
    const PlannedStep& last = plans[begin + count - 1];
    rows_done(last.first + last.count);
  }
  return last_rate;
}

double total_weight_of(const TrainingSet& set, std::int64_t rows) {
  if (!set.weights) return static_cast<double>(rows);
  double total = 0;
  for (std::int64_t r = 0; r < rows; ++r) total += set.weights[r];
  return total;
}

// The mean sample weight of `rows` training rows of total weight `total`, which must be positive.
double mean_weight_of(double total, std::int64_t rows) {
  if (!(total > 0.0)) {
    throw InputError("the training rows' sample weights sum to 0 (every weight is 0): nothing to train on");
  }
  return total / static_cast<double>(rows);
}

// The run's last epoch: TrainerOptions::stop_after_epoch when set (at most epochs), else epochs.
std::int32_t last_epoch_of(const TrainerOptions& options) {
  return options.stop_after_epoch > 0 ? std::min(options.stop_after_epoch, options.epochs)
                                      : options.epochs;
}

// What an epoch's steps did: the epoch's total sample weight, and the learning rate of its last
// step.
struct EpochStepsDone {
  double total_weight = 0.0;
  float last_rate = 0.0f;
};

// Runs an epoch's steps (the model's loss sum already reset): (epoch, step, optimizer_restart,
// schedule).
using EpochSteps =
    std::function<EpochStepsDone(std::int32_t, std::int64_t&, std::int64_t, const RateSchedule&)>;

// The epoch loop shared by train_model and train_model_streamed: validation, early stopping,
// the NaN stop, metrics log, progress and checkpoints.
TrainOutcome run_training(const DeviceContext& ctx, Model& model, std::int64_t train_rows,
                          std::int64_t steps_per_epoch, const EpochSteps& run_epoch, const LabeledRows* valid,
                          const PredictionLink& link, std::int32_t classes, const TrainerOptions& options) {
  if (train_rows == 0) throw InputError("the training set is empty");
  if (options.batch < 1) throw InputError("--batch must be at least 1");
  if (options.epochs < 1) throw InputError("--epochs must be at least 1");
  TrainOutcome outcome;
  outcome.metric = stopping_metric(link.task, options.metric);
  const auto names = metric_names(link.task);
  if (std::find(names.begin(), names.end(), outcome.metric) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw InputError("--metric: '" + outcome.metric + "' is not a metric of a " + task_name(link.task) +
                     " task (" + list + ")");
  }
  // Without a validation set, early stopping watches the training loss (the summary says so).
  if (!(valid && valid->rows > 0)) outcome.metric = "train_loss";
  RateSchedule schedule;
  schedule.total_steps = steps_per_epoch * options.epochs;
  schedule.last_epoch = last_epoch_of(options);
  // The cooldown (TrainerOptions::cooldown_epochs) after epoch `after`: its steps and the run's
  // new last epoch.
  std::int32_t cooldown_after = 0;
  const auto start_cooldown = [&](std::int32_t after) {
    // Summed as int64: a --cooldown near 2^31 overflowed an int32 (and ended the run at once).
    const auto end = static_cast<std::int32_t>(
        std::min<std::int64_t>(std::int64_t{after} + options.cooldown_epochs, options.epochs));
    cooldown_after = after;
    schedule.cooldown_first_step = static_cast<std::int64_t>(after) * steps_per_epoch + 1;
    schedule.cooldown_steps = static_cast<std::int64_t>(end - after) * steps_per_epoch;
    schedule.last_epoch = std::min(schedule.last_epoch, end);
  };
  if (options.cooldown_epochs < 0 || options.cooldown_after_epoch < 0) {
    throw InputError("--cooldown must be at least 0");
  }
  if (options.cooldown_epochs > 0 && options.cooldown_after_epoch > 0 && options.cooldown_after_epoch < options.epochs) {
    start_cooldown(options.cooldown_after_epoch);
  }
  std::vector<float> predictions;
  double best_value = NAN;
  std::int32_t since_best = 0;
  std::int64_t step = 0;
  std::int32_t first_epoch = 1;
  // The model's step count (Adam's bias correction) counts from when its moments started at zero:
  // the run's start, or a resume from a checkpoint without the optimizer's state
  // (TrainerState::optimizer_step_origin). The learning-rate schedule keeps the global step.
  std::int64_t optimizer_restart = 0;
  if (const TrainerState* r = options.resume) {
    if (r->next_epoch < 1 || r->step < 0 || r->best_epoch < 0 || r->best_epoch >= r->next_epoch ||
        static_cast<std::int32_t>(r->history.size()) != r->next_epoch - 1 ||
        r->optimizer_step_origin < 0 || r->optimizer_step_origin > r->step) {
      throw InputError("--resume: the checkpoint's trainer state is inconsistent");
    }
    // After the caller's set_parameters (which reset the state): continue with the saved moments.
    model.set_optimizer_state(r->optimizer);
    first_epoch = r->next_epoch;
    best_value = r->best_value;
    since_best = r->epochs_since_best;
    step = r->step;
    optimizer_restart = r->optimizer_step_origin;
    if (options.cooldown_epochs > 0 && r->cooldown_after_epoch > 0 && r->cooldown_after_epoch < options.epochs) {
      start_cooldown(r->cooldown_after_epoch);
    }
    outcome.best = r->best;
    outcome.best_epoch = r->best_epoch;
    outcome.history = r->history;
    // A run that had already stopped early stays stopped.
    if ((options.patience > 0 && since_best >= options.patience && cooldown_after == 0) ||
        (valid && valid->rows > 0 && overfitting(outcome.history, outcome.metric, best_value, options.overfit_margin))) {
      first_epoch = options.epochs + 1;
      if (options.progress) {
        std::cerr << "early stop: the checkpoint's run had stopped after epoch " << r->next_epoch - 1
                  << " (--patience or --stop-margin); no epoch to train, keeping epoch " << outcome.best_epoch << "\n";
      }
    }
  }
  const auto start = std::chrono::steady_clock::now();

  for (std::int32_t epoch = first_epoch; epoch <= schedule.last_epoch; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    model.take_loss_sum();  // start the epoch's running loss from zero
    const EpochStepsDone done = run_epoch(epoch, step, optimizer_restart, schedule);
    // The penalties the epoch's last steps left to the sparse features' next updates, before the
    // weights are validated, checkpointed or kept (plain SGD; Model::catch_up_penalties).
    model.catch_up_penalties();
    const double loss_sum = model.take_loss_sum();
    EpochRecord record;
    record.epoch = epoch;
    record.train_loss = loss_sum / std::max(done.total_weight, 1e-300);
    record.learning_rate = done.last_rate;
    if (!std::isfinite(record.train_loss) || !model.parameters_finite()) {
      throw DivergenceError(
          "epoch " + std::to_string(epoch) +
          ": the training loss or the weights are no longer finite (the optimization diverged); " +
          options.divergence_advice);
    }
    if (valid && valid->rows > 0) {
      predictions.resize(static_cast<std::size_t>(valid->rows * link.outputs));
      predict(model, link, valid->set.rows, predictions);
      const std::span<const float> labels(valid->metric_labels, static_cast<std::size_t>(valid->rows));
      const std::span<const float> weights =
          valid->set.weights ? std::span<const float>(valid->set.weights, static_cast<std::size_t>(valid->rows))
                             : std::span<const float>();
      record.valid = compute_metrics(ctx, link.task, predictions, labels, weights, classes);
      if (valid->selection_weights) {
        const std::span<const float> selection(valid->selection_weights, static_cast<std::size_t>(valid->rows));
        record.selection = compute_metrics(ctx, link.task, predictions, labels, selection, classes).values.at(outcome.metric);
      }
    }
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    record.rows_per_second = static_cast<double>(train_rows) / std::max(record.seconds, 1e-9);
    outcome.history.push_back(record);

    // Early stopping on the validation metric, keeping the best epoch's weights. Without a
    // validation set, on the epoch's running training loss, keeping the last epoch's weights: that
    // loss is measured while the epoch's steps move the weights (in full-batch training it is the
    // loss of the weights before the epoch), so it cannot choose between epochs' weights.
    const bool have_valid = valid && valid->rows > 0;
    const double value = !have_valid                    ? record.train_loss
                         : std::isnan(record.selection) ? record.valid.values.at(outcome.metric)
                                                        : record.selection;
    const bool better = have_valid ? metric_improves(outcome.metric, value, best_value)
                                   : (std::isnan(best_value) || value < best_value);
    if (better) {
      best_value = value;
      since_best = 0;
    } else if (!std::isnan(best_value) &&
               (!have_valid ||
                counts_toward_stopping(outcome.history, outcome.history.size() - 1))) {
      ++since_best;
    }
    // Until the metric has a value (AUC on validation rows of one class has none), the last epoch
    // is kept, as without a validation set, and there is nothing to stop on.
    if (better || !have_valid || std::isnan(best_value)) {
      // The model holds the epoch's parameters: one copy of the best is kept beside them, made
      // only when they improve, the old one freed first.
      outcome.best = ModelParameters{};
      outcome.best = model.parameters();
      outcome.best_epoch = epoch;
    }

    if (options.metrics_log) {
      nlohmann::json j = {{"epoch", epoch},
                          {"train_loss", record.train_loss},
                          {"lr", shortest_double(record.learning_rate)},
                          {"seconds", record.seconds},
                          {"rows_per_second", record.rows_per_second}};
      for (const auto& [k, v] : record.valid.values) j["valid_" + k] = metric_json<nlohmann::json>(v);
      if (!std::isnan(record.selection)) j["valid_class_weighted_" + outcome.metric] = metric_json<nlohmann::json>(record.selection);
      errno = 0;
      *options.metrics_log << j.dump() << "\n";
      options.metrics_log->flush();
      // A log that cannot be written (a full disk) stops the run here, before any model is saved,
      // with the system's reason.
      if (!*options.metrics_log) {
        throw Error("--metrics-log: " + options.metrics_log_name + ": cannot write the log of epoch " +
                    std::to_string(epoch) + ": " + (errno != 0 ? std::strerror(errno) : "a write error"));
      }
    }
    if (options.progress) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double eta = elapsed / (epoch - first_epoch + 1) * (schedule.last_epoch - epoch);
      std::cerr << options.progress_name << " " << epoch << "/" << schedule.last_epoch << "  loss "
                << record.train_loss;
      if (have_valid) {
        std::cerr << "  valid " << outcome.metric << " " << record.valid.values.at(outcome.metric);
        if (valid->selection_weights) std::cerr << " (class-weighted " << value << ")";
      }
      // "*": the best validation epoch so far. A run without validation rows (a refit,
      // --valid-fraction 0) keeps its last epoch; its lowest training loss chose nothing: no mark.
      std::cerr << "  " << static_cast<long long>(record.rows_per_second) << " rows/s  eta " << eta_text(eta)
                << (better && have_valid ? "  *" : "") << "\n";
    }
    // Patience run out: the cooldown, or the stop. Decided before the checkpoint, which records it.
    bool stop = false;
    if (options.patience > 0 && since_best >= options.patience && cooldown_after == 0) {
      if (options.cooldown_epochs > 0 && epoch < options.epochs &&
          may_cool_down(outcome.history, outcome.history.size() - 1)) {
        start_cooldown(epoch);
        if (options.progress) {
          // Not "early stop": the run goes on, at falling rates.
          std::cerr << "cooldown: " << outcome.metric << " has not improved for "
                    << options.patience << " epochs; the rate decays to zero over "
                    << (schedule.last_epoch - epoch)
                    << (schedule.last_epoch - epoch == 1 ? " more epoch" : " more epochs")
                    << " (--cooldown) before the run ends\n";
        }
      } else {
        if (options.progress) {
          std::cerr << "early stop: " << outcome.metric << " has not improved for " << options.patience
                    << " epochs; keeping epoch " << outcome.best_epoch << "\n";
        }
        stop = true;
      }
    } else if (overfitting(outcome.history, outcome.metric, best_value, options.overfit_margin)) {
      if (options.progress) {
        std::cerr << "early stop: " << outcome.metric << " has been worse than its best by more than "
                  << options.overfit_margin << " for " << kOverfitStopEpochs << " epochs; keeping epoch "
                  << outcome.best_epoch << "\n";
      }
      stop = true;
    } else if (cooldown_after > 0 && epoch == schedule.last_epoch && options.progress &&
               options.stop_after_epoch == 0) {
      std::cerr << "cooldown done: keeping epoch " << outcome.best_epoch << "\n";
    }
    outcome.cooldown_after_epoch = cooldown_after;
    if (options.checkpoint_every > 0 && epoch % options.checkpoint_every == 0 && options.on_checkpoint) {
      TrainerState state;
      state.next_epoch = epoch + 1;
      state.best_epoch = outcome.best_epoch;
      state.best_value = best_value;
      state.epochs_since_best = since_best;
      state.cooldown_after_epoch = cooldown_after;
      state.step = step;
      state.optimizer_step_origin = optimizer_restart;
      state.optimizer = model.optimizer_state();
      state.best = outcome.best;
      state.last = outcome.best_epoch == epoch ? outcome.best : model.parameters();
      state.history = outcome.history;
      options.on_checkpoint(state);
    }
    if (stop) break;
  }
  outcome.cooldown_after_epoch = cooldown_after;
  return outcome;
}

}  // namespace

std::string divergence_note(const std::vector<EpochRecord>& history) {
  double lowest = INFINITY;
  std::int32_t lowest_epoch = 0;
  for (const EpochRecord& r : history) {
    if (lowest > 0 && r.train_loss > kDivergedLossRatio * lowest) {
      if (!(history.back().train_loss > kSettledLossRatio * lowest)) return "";  // recovered
      std::ostringstream note;
      note << "the training loss rose from " << lowest << " (epoch " << lowest_epoch << ") to " << r.train_loss
           << " (epoch " << r.epoch << "): the optimization diverged; try a lower --lr, or clip outliers "
           << "(--clip std:3), which crosses and factorization machines multiply";
      return note.str();
    }
    if (r.train_loss < lowest) {
      lowest = r.train_loss;
      lowest_epoch = r.epoch;
    }
  }
  return "";
}

// The summed weights (weights empty: 1) of the rows of each class (labels: class indices; at least
// two classes), and of all rows in `total`.
std::vector<double> class_weight_sums(std::span<const float> labels, std::span<const float> weights,
                                     std::int32_t classes, double& total) {
  std::vector<double> sums(static_cast<std::size_t>(std::max(classes, 2)), 0.0);
  total = 0.0;
  for (std::size_t r = 0; r < labels.size(); ++r) {
    const double w = weights.empty() ? 1.0 : static_cast<double>(weights[r]);
    const auto k = static_cast<std::size_t>(labels[r]);
    if (k < sums.size()) sums[k] += w;
    total += w;
  }
  return sums;
}

std::string worse_than_constant_note(const MetricSet& kept, std::int32_t kept_epoch,
                                     std::int32_t epochs_run, std::span<const float> labels,
                                     std::span<const float> weights,
                                     std::span<const double> class_weights, bool refitted) {
  const auto metric = [&](const char* name) {
    const auto it = kept.values.find(name);
    return it == kept.values.end() ? NAN : it->second;
  };
  std::ostringstream note;
  // After a refit the model written is not the epoch's: it learned the validation rows too, so
  // only the epoch that chose it was measured on them.
  if (refitted) {
    note << "the chosen epoch (" << kept_epoch
         << "), before the refit on every row, predicted the validation rows worse than a "
            "constant: ";
  } else {
    note << "the kept model (epoch " << kept_epoch
         << ") predicts the validation rows worse than a constant: ";
  }
  if (kept.classes == 0) {
    const double r2 = metric("r2");
    if (!(r2 < 0.0)) return "";
    note << "r2 " << r2 << ", where predicting their mean gives 0";
  } else {
    const double logloss = metric("logloss");
    if (!std::isfinite(logloss) || labels.empty()) return "";
    double total = 0.0;
    const std::vector<double> share = class_weight_sums(labels, weights, kept.classes, total);
    // Rows of one class: their shares predict them perfectly, which says nothing of the model.
    if (!(total > 0.0) || std::count_if(share.begin(), share.end(), [](double s) { return s > 0.0; }) < 2) return "";
    // The constant's probabilities: the shares times the class weights (a class beyond them: 1),
    // normalized; without class weights the shares themselves.
    std::vector<double> constant_p(share.size());
    double constant_total = class_weights.empty() ? total : 0.0;
    for (std::size_t k = 0; k < share.size(); ++k) {
      const double class_weight = k < class_weights.size() ? class_weights[k] : 1.0;
      constant_p[k] = class_weights.empty() ? share[k] : share[k] * class_weight;
      if (!class_weights.empty()) constant_total += constant_p[k];
    }
    if (!(constant_total > 0.0)) return "";
    double constant = 0.0;  // its log-loss: the shares' entropy, or their cross-entropy with it
    for (std::size_t k = 0; k < share.size(); ++k) {
      if (share[k] > 0.0) constant -= share[k] / total * std::log(constant_p[k] / constant_total);
    }
    if (!(logloss > constant + 1e-12)) return "";
    note << "log-loss " << logloss << ", where predicting their class shares";
    if (!class_weights.empty()) {
      note << " times the class weights (";
      for (std::size_t k = 0; k < constant_p.size(); ++k) {
        note << (k ? ", " : "") << constant_p[k] / constant_total;
      }
      note << ": what training with them converges to without features)";
    }
    note << " gives " << constant;
  }
  // The advice follows the run: a model kept from the last epoch was still improving when the
  // epochs ran out (a short --epochs on a hard table), where a lower rate would only slow it; a
  // model kept from an earlier one stopped improving, which a rate too high for the table does,
  // and so do columns that carry nothing about the label (every fit of noise is worse on held-out
  // rows than their mean).
  if (kept_epoch >= epochs_run) {
    note << "; it is the last of the " << epochs_run << " epochs run, so the optimization had not converged: "
         << "try more --epochs";
  } else {
    note << "; either the optimization did not converge (try a lower --lr, such as a tenth of it) or the "
         << "columns do not predict the label";
  }
  return note.str();
}

TrainerOptions refit_options(TrainerOptions run, std::int32_t epochs,
                             std::int32_t cooldown_after_epoch) {
  run.stop_after_epoch = epochs;
  run.cooldown_after_epoch = cooldown_after_epoch;
  // Chosen before any cooldown: the refit's last epoch would be one of the plateau's at a rate
  // still high, its weights a draw of the optimizer's noise that no validation picked (telco, 5
  // splits: test log-loss 0.4226 against scikit-learn's 0.4212). The cooldown after it anneals
  // them: 0.4212. It lasts no longer than the chosen epochs: its decaying rate trains about half
  // as much again as its epochs at full rate would, and ten such epochs after the one that
  // validation chose fitted noise (300 rows of 30 N(0, 1) columns and an unrelated label, epoch 1
  // chosen: test r2 -0.083 to -0.145 over four seeds, against -0.043 to -0.066 for the epoch's own
  // model).
  if (run.cooldown_epochs > 0 && epochs < run.epochs &&
      (cooldown_after_epoch == 0 || cooldown_after_epoch >= epochs)) {
    run.cooldown_after_epoch = epochs;
    run.cooldown_epochs = std::min(run.cooldown_epochs, epochs);
    run.stop_after_epoch = static_cast<std::int32_t>(
        std::min<std::int64_t>(std::int64_t{epochs} + run.cooldown_epochs, run.epochs));
  }
  run.patience = 0;
  run.overfit_margin = 0.0;
  run.checkpoint_every = 0;
  run.on_checkpoint = nullptr;
  run.metrics_log = nullptr;
  run.resume = nullptr;
  run.progress_name = "refit epoch";
  return run;
}

double constant_metric_scale(const std::string& metric, std::span<const float> labels, std::span<const float> weights,
                             std::int32_t classes) {
  if (labels.empty()) return NAN;
  if (metric == "r2" || metric == "f1_macro") return 1.0;
  if (metric == "auc") return 0.5;
  const auto weight = [&](std::size_t r) { return weights.empty() ? 1.0 : static_cast<double>(weights[r]); };
  double total = 0.0;
  for (std::size_t r = 0; r < labels.size(); ++r) total += weight(r);
  if (!(total > 0.0)) return NAN;
  if (metric == "rmse" || metric == "mae") {
    double mean = 0.0;
    for (std::size_t r = 0; r < labels.size(); ++r) mean += weight(r) * labels[r];
    mean /= total;
    double spread = 0.0;
    for (std::size_t r = 0; r < labels.size(); ++r) {
      const double d = labels[r] - mean;
      spread += weight(r) * (metric == "rmse" ? d * d : std::fabs(d));
    }
    return metric == "rmse" ? std::sqrt(spread / total) : spread / total;
  }
  double counted = 0.0;
  std::vector<double> share = class_weight_sums(labels, weights, classes, counted);
  for (double& p : share) p /= total;
  if (metric == "logloss") {
    double entropy = 0.0;
    for (double p : share) {
      if (p > 0.0) entropy -= p * std::log(p);
    }
    return entropy;
  }
  if (metric == "pr_auc") return share[1];
  if (metric == "accuracy") return *std::max_element(share.begin(), share.end());
  return NAN;
}

TrainOutcome train_model(const DeviceContext& ctx, Model& model, const LabeledRows& train,
                         const LabeledRows* valid, const PredictionLink& link, std::int32_t classes,
                         const TrainerOptions& options) {
  if (options.batch < 1) throw InputError("--batch must be at least 1");
  const double total_weight = total_weight_of(train.set, train.rows);
  const double mean_weight = train.rows > 0 ? mean_weight_of(total_weight, train.rows) : 1.0;
  std::vector<PlannedStep> plans;
  // The live progress splits an epoch's steps into groups, and on the GPU each group is a CUDA graph
  // of its own: after an epoch shorter than this, the next ones run whole, without it.
  constexpr double kProgressMinEpochSeconds = 0.5;
  double last_epoch_seconds = -1.0;
  const EpochSteps epoch_steps = [&](std::int32_t epoch, std::int64_t& step, std::int64_t restart,
                                     const RateSchedule& schedule) {
    // A seeded permutation, made where the rows are (kernels/epoch_permutation.h).
    model.set_epoch_permutation(make_epoch_permutation(train.rows, options.seed, epoch));
    if (epoch < schedule.last_epoch)
      model.prepare_epoch_permutation(make_epoch_permutation(train.rows, options.seed, epoch + 1));
    const auto epoch_start = std::chrono::steady_clock::now();
    std::function<void(std::int64_t)> rows_done;
    const bool short_epochs = last_epoch_seconds >= 0.0 && last_epoch_seconds < kProgressMinEpochSeconds;
    if (options.on_epoch_progress && !short_epochs) {
      rows_done = [&](std::int64_t done) {
        options.on_epoch_progress({options.progress_name, epoch, schedule.last_epoch, done,
                                   train.rows, seconds_since(epoch_start)});
      };
    }
    const float last_rate = run_steps(model, train.rows, options, mean_weight, step, restart,
                                      schedule, plans, rows_done);
    last_epoch_seconds = seconds_since(epoch_start);
    return EpochStepsDone{total_weight, last_rate};
  };
  const std::int64_t steps_per_epoch = train.rows / options.batch + (train.rows % options.batch != 0);
  return run_training(ctx, model, train.rows, steps_per_epoch, epoch_steps, valid, link, classes, options);
}

TrainOutcome train_model_streamed(const DeviceContext& ctx, Model& model, const TrainingWindows& train,
                                  const LabeledRows* valid, const PredictionLink& link, std::int32_t classes,
                                  const TrainerOptions& options) {
  if (options.batch < 1) throw InputError("--batch must be at least 1");
  const std::int64_t windows = train.count();
  std::int64_t rows = 0, steps_per_epoch = 0;
  for (std::int64_t w = 0; w < windows; ++w) {
    rows += train.rows_in(w);
    steps_per_epoch += train.rows_in(w) / options.batch + (train.rows_in(w) % options.batch != 0);
  }
  std::vector<PlannedStep> plans;
  std::int64_t largest_window = 0;
  for (std::int64_t w = 0; w < windows; ++w) largest_window = std::max(largest_window, train.rows_in(w));
  TrainingWindow buffers[2];
  for (TrainingWindow& b : buffers) {
    b.set_pinned(ctx.is_cuda());
    train.reserve(b, largest_window);
  }
  // Window k of an epoch lives in buffers[(base + k) % 2]. While the last window of an epoch
  // trains, the first window of the next epoch loads into the other buffer (`ahead`, for epoch
  // `ahead_epoch`), so no epoch starts by waiting for a load. Declared after the buffers: a load
  // still running when training ends (early stopping) is waited for before they go.
  int base = 0;
  std::future<void> ahead;
  std::int32_t ahead_epoch = -1;
  const auto window_order_of = [&](std::int32_t epoch) {
    return make_epoch_permutation(windows, options.seed ^ 0x77696e646f77ULL, epoch);
  };
  // The training set's mean sample weight: the windows' own figure when they know it before the
  // first epoch, else known after one epoch; until then, the mean over the rows bound so far.
  const double windows_total = train.total_weight();
  double mean_weight = std::isnan(windows_total) ? NAN : mean_weight_of(windows_total, rows);
  const auto load_async = [&train](std::int64_t w, TrainingWindow& into) {
    return std::async(std::launch::async, [&train, &into, w] { train.load(w, into); });
  };
  const EpochSteps epoch_steps = [&](std::int32_t epoch, std::int64_t& step, std::int64_t restart,
                                     const RateSchedule& schedule) {
    const auto epoch_start = std::chrono::steady_clock::now();
    // Windows in a seeded order; the rows of each in an order seeded by the seed and the window.
    const EpochPermutation window_order = window_order_of(epoch);
    double total_weight = 0;
    float last_rate = 0.0f;
    std::int64_t rows_bound = 0;
    std::future<void> next;
    if (ahead.valid() && ahead_epoch == epoch) {
      next = std::move(ahead);
    } else {
      if (ahead.valid()) ahead.wait();  // loaded for an epoch that is not this one (a resume)
      next = load_async(epoch_row(window_order, 0), buffers[base % 2]);
    }
    // However the epoch ends (an exception included), the model reads no window once it has:
    // the buffers are loaded into and freed afterwards.
    struct FinishedReading {
      Model& model;
      ~FinishedReading() { model.finish_background_work(); }
    } finished_reading{model};
    for (std::int64_t k = 0; k < windows; ++k) {
      next.get();  // window k is loaded (rethrows a loader's exception)
      TrainingWindow& current = buffers[(base + k) % 2];
      TrainingWindow& other = buffers[(base + k + 1) % 2];
      if (k + 1 < windows) {
        next = load_async(epoch_row(window_order, k + 1), other);
      } else if (epoch < schedule.last_epoch) {  // epochs count from 1 to the last
        ahead = load_async(epoch_row(window_order_of(epoch + 1), 0), other);
        ahead_epoch = epoch + 1;
      }
      const TrainingSet set = current.set();
      model.bind_training_set(set);
      const std::uint64_t window_seed = mix64(options.seed ^ (0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(
                                                                   epoch_row(window_order, k) + 1)));
      model.set_epoch_permutation(make_epoch_permutation(current.rows, window_seed, epoch));
      total_weight += total_weight_of(set, current.rows);
      rows_bound += current.rows;
      const double mean = std::isnan(mean_weight) ? total_weight / static_cast<double>(rows_bound) : mean_weight;
      std::function<void(std::int64_t)> rows_done;
      if (options.on_epoch_progress) {
        const std::int64_t before = rows_bound - current.rows;
        rows_done = [&, before](std::int64_t done) {
          options.on_epoch_progress({options.progress_name, epoch, schedule.last_epoch,
                                     before + done, rows, seconds_since(epoch_start)});
        };
      }
      last_rate = run_steps(model, current.rows, options, mean > 0.0 ? mean : 1.0, step, restart,
                            schedule, plans, rows_done);
      // Nothing reads `current` now (the GPU model copied it at binding): the next load may overwrite it.
      model.finish_background_work();
    }
    base = static_cast<int>((base + windows) % 2);
    if (std::isnan(mean_weight)) mean_weight = mean_weight_of(total_weight, rows);
    return EpochStepsDone{total_weight, last_rate};
  };
  return run_training(ctx, model, rows, steps_per_epoch, epoch_steps, valid, link, classes, options);
}

}  // namespace lathe
