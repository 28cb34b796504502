#include "io/checkpoint.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "runtime/error.h"

namespace lathe {

namespace {

constexpr int kCheckpointFormatVersion = 1;

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

double number_or_nan(const nlohmann::json& j) { return j.is_null() ? NAN : j.get<double>(); }

}  // namespace

void save_checkpoint(const std::filesystem::path& path, ModelFile model, const TrainerState& state) {
  nlohmann::json history = nlohmann::json::array();
  for (const EpochRecord& r : state.history) {
    nlohmann::json valid = nlohmann::json::object();
    for (const auto& [k, v] : r.valid.values) valid[k] = number_or_null(v);
    history.push_back({{"epoch", r.epoch},
                       {"train_loss", number_or_null(r.train_loss)},
                       {"valid", valid},
                       {"classes", r.valid.classes},
                       {"confusion", r.valid.confusion},
                       {"seconds", r.seconds},
                       {"rows_per_second", r.rows_per_second}});
  }
  const nlohmann::json j = {{"checkpoint_format_version", kCheckpointFormatVersion},
                            {"next_epoch", state.next_epoch},
                            {"best_epoch", state.best_epoch},
                            {"best_value", number_or_null(state.best_value)},
                            {"epochs_since_best", state.epochs_since_best},
                            {"step", state.step},
                            {"history", history}};
  model.parameters = state.best_epoch > 0 ? state.best : state.last;
  CheckpointExtras extras;
  extras.state_json = j.dump();
  extras.resume = state.last;
  save_model(path, model, &extras);
}

LoadedCheckpoint load_checkpoint(const std::filesystem::path& path) {
  LoadedCheckpoint out;
  CheckpointExtras extras;
  out.model = load_model(path, &extras);
  const std::string context = path.string();
  TrainerState& s = out.state;
  try {
    const nlohmann::json j = nlohmann::json::parse(extras.state_json);
    const int version = j.at("checkpoint_format_version").get<int>();
    if (version > kCheckpointFormatVersion) {
      throw InputError(context + ": written by a newer Lathe (checkpoint format " + std::to_string(version) +
                       "): upgrade lathe");
    }
    s.next_epoch = j.at("next_epoch").get<std::int32_t>();
    s.best_epoch = j.at("best_epoch").get<std::int32_t>();
    s.best_value = number_or_nan(j.at("best_value"));
    s.epochs_since_best = j.at("epochs_since_best").get<std::int32_t>();
    s.step = j.at("step").get<std::int64_t>();
    for (const auto& h : j.at("history")) {
      EpochRecord r;
      r.epoch = h.at("epoch").get<std::int32_t>();
      r.train_loss = number_or_nan(h.at("train_loss"));
      for (const auto& [k, v] : h.at("valid").items()) r.valid.values[k] = number_or_nan(v);
      r.valid.classes = h.at("classes").get<std::int32_t>();
      r.valid.confusion = h.at("confusion").get<std::vector<std::int64_t>>();
      r.seconds = h.at("seconds").get<double>();
      r.rows_per_second = h.at("rows_per_second").get<double>();
      s.history.push_back(std::move(r));
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(context + ": damaged checkpoint state: " + e.what());
  }
  if (s.next_epoch < 1 || s.best_epoch < 0 || s.best_epoch >= s.next_epoch || s.step < 0 ||
      static_cast<std::int32_t>(s.history.size()) != s.next_epoch - 1) {
    throw InputError(context + ": damaged checkpoint state (inconsistent epochs)");
  }
  s.last = std::move(extras.resume);
  s.best = out.model.parameters;
  return out;
}

}  // namespace lathe
