#include "io/checkpoint_resume.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "io/column_values.h"
#include "io/preparation_json.h"
#include "io/run_options.h"
#include "runtime/error.h"

namespace lathe {

std::filesystem::path checkpoint_path_for(const std::filesystem::path& pattern,
                                          std::int32_t epoch) {
  std::string s = pattern.string();
  const std::string key = "{epoch}";
  for (auto at = s.find(key); at != std::string::npos; at = s.find(key, at)) {
    s.replace(at, key.size(), std::to_string(epoch));
  }
  return s;
}

std::vector<std::string> resume_option_notes(const std::filesystem::path& path,
                                             const std::string& checkpoint_options,
                                             const std::string& options, OptimizerKind optimizer) {
  static const char* const kTrainingOptions[] = {
      "epochs",        "batch",  "lr",       "optimizer",  "schedule",
      "decay",         "warmup", "momentum", "l1",         "l2",
      "clip-grad",     "seed",   "mode",     "sync-every", "workers",
      "class-weight",  "weight", "patience", "cooldown",   "stop-margin",
      "sparse-updates"};
  // --momentum moves only the momentum optimizers' steps (another optimizer notes it as unused).
  const bool uses_momentum =
      optimizer == OptimizerKind::momentum || optimizer == OptimizerKind::nesterov;
  std::vector<std::string> notes;
  for (const ChangedOption& c : changed_options(checkpoint_options, options, kTrainingOptions)) {
    if (c.key == "momentum" && !uses_momentum) continue;
    notes.push_back("--resume: --" + c.key + " is " + c.is + " here but was " + c.was +
                    " in the run that wrote " + path.string() +
                    "; the resumed run will not equal an uninterrupted one");
  }
  return notes;
}

void check_checkpoint_matches(const std::filesystem::path& path, const ModelFile& ck,
                              const ModelFile& now) {
  const auto differs = [&](const std::string& what, const std::string& was, const std::string& is) {
    throw InputError("--resume: " + path.string() +
                     " does not match this data and these options: " + what +
                     " differs (checkpoint: " + was + "; now: " + is + ")");
  };
  const auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  if (ck.task != now.task) differs("the task", task_name(ck.task), task_name(now.task));
  if (ck.label != now.label) differs("the label", ck.label, now.label);
  // Before the loss: its stored huber_delta is over the transformed label's std, which differs too.
  if (ck.target_transform != now.target_transform) {
    differs("--target-transform", target_transform_name(ck.target_transform),
            target_transform_name(now.target_transform));
  }
  if (ck.kind != now.kind || ck.loss != now.loss || ck.huber_delta != now.huber_delta) {
    differs("the model or loss", ck.kind == ModelKind::fm ? "fm" : "linear",
            now.kind == ModelKind::fm ? "fm" : "linear");
  }
  if (ck.factors != now.factors)
    differs("--factors", std::to_string(ck.factors), std::to_string(now.factors));
  if (ck.classes != now.classes) differs("the class list", join(ck.classes), join(now.classes));
  if (ck.outputs != now.outputs)
    differs("the outputs", std::to_string(ck.outputs), std::to_string(now.outputs));
  // The model a run warm-started from (--init-model), by its parameters' fingerprint: resuming with
  // another (or none where the checkpoint's run had one) would record a parent the weights never
  // came from. Before the preparation's checks: a kept preparation is the parent's, so another
  // parent (or none) shows first as other features, which would hide the cause.
  const auto parent_of = [](const std::string& parent_json) {
    const nlohmann::json p = nlohmann::json::parse(parent_json, nullptr, false);
    std::pair<std::string, std::string> path_and_fingerprint;
    if (p.is_object()) {
      path_and_fingerprint = {p.value("path", std::string()),
                              p.value("parameters_fingerprint", std::string())};
    }
    return path_and_fingerprint;
  };
  const auto [ck_parent, ck_fingerprint] = parent_of(ck.parent);
  const auto [now_parent, now_fingerprint] = parent_of(now.parent);
  if (!now_parent.empty() && (ck_parent.empty() || ck_fingerprint != now_fingerprint)) {
    differs("--init-model",
            ck_parent.empty() ? "none, a run from zero"
                              : ck_parent + " (parameters " + ck_fingerprint + ")",
            now_parent + (ck_parent.empty() ? "" : " (parameters " + now_fingerprint + ")"));
  }
  // A retraining run's checkpoint resumed without its --init-model: this run fitted a preparation
  // where that run may have kept its parent's.
  const std::string give_parent = !ck_parent.empty() && now_parent.empty()
                                      ? "; the checkpoint's run retrained --init-model " +
                                            ck_parent + ", whose preparation it kept: give it again"
                                      : std::string();
  // The preparation options given otherwise than in the checkpoint's run, named with both values
  // where the preparation differs (the same value given and left to its default fit alike):
  // "--scale is minmax here but was the default". Not where that run kept its parent's
  // preparation (it was given none of them) and this one has no parent: give_parent names it.
  std::string changed_preparation_options;
  const bool kept_parents =
      !ck_parent.empty() && given_option(ck.options_json, "refit-prep").empty();
  if (!(kept_parents && now_parent.empty())) {
    for (const ChangedOption& c :
         changed_options(ck.options_json, now.options_json, kPreparationOptions)) {
      changed_preparation_options += (changed_preparation_options.empty() ? "" : ", ") +
                                     std::string("--") + c.key + " is " + c.is + " here but was " +
                                     c.was;
    }
  }
  const std::string named_options =
      changed_preparation_options.empty() ? std::string() : "; " + changed_preparation_options;
  // A hashed column of another bucket count: name it (a checkpoint of an earlier Lathe hashed into
  // 16384 buckets where the default count now follows the labels; a --refit-prep run's came from
  // its parent).
  for (const CategoricalEncoding& was : ck.preparation.categorical) {
    for (const CategoricalEncoding& is : now.preparation.categorical) {
      if (was.name != is.name || was.hashed != is.hashed || was.buckets == is.buckets) continue;
      differs("the buckets of hashed column '" + was.name + "'", std::to_string(was.buckets),
              std::to_string(is.buckets) +
                  "; give the checkpoint run's --category-buckets (or its --init-model with "
                  "--refit-prep)");
    }
  }
  if (ck.preparation.expanded_features() != now.preparation.expanded_features()) {
    differs("the number of prepared features", std::to_string(ck.preparation.expanded_features()),
            std::to_string(now.preparation.expanded_features()) + give_parent + named_options);
  }
  if (preparation_to_json(ck.preparation) != preparation_to_json(now.preparation)) {
    differs("the fitted preparation", "see its 'preparation' attribute",
            (changed_preparation_options.empty() ? "another data file, preparation options, "
                                                   "validation split (--seed, --valid-fraction, "
                                                   "--valid) or --dedup"
                                                 : changed_preparation_options) +
                give_parent);
  }
  // The training rows themselves, by their profile's exact parts (counts, missing values, extremes,
  // category counts): a preparation kept from --init-model is the same for any data file, so a
  // checkpoint of last month's run would otherwise continue on this month's rows, its best epoch
  // and history measured on other validation rows.
  if (ck.profile && now.profile) {
    for (const ColumnProfile& was : ck.profile->columns) {
      const auto is = std::find_if(now.profile->columns.begin(), now.profile->columns.end(),
                                   [&](const ColumnProfile& c) { return c.name == was.name; });
      if (is == now.profile->columns.end() || is->type != was.type) continue;
      const auto column_differs = [&](const std::string& was_text, const std::string& is_text) {
        differs("the profile of the training rows' column '" + was.name + "'", was_text,
                is_text + "; another data file, or rows changed since the checkpoint was written");
      };
      if (was.type == ColumnType::numeric) {
        const ColumnStats& a = was.numeric.stats;
        const ColumnStats& b = is->numeric.stats;
        const auto text = [](const ColumnStats& s) {
          return std::to_string(s.count) + " values, " + std::to_string(s.missing) +
                 " missing, from " + number_label(s.min) + " to " + number_label(s.max);
        };
        if (a.count != b.count || a.missing != b.missing ||
            (a.count > 0 && (a.min != b.min || a.max != b.max))) {
          column_differs(text(a), text(b));
        }
      } else if (ck.profile_labels) {
        // By label: another file may code the same labels in another order.
        const auto counts = [](const CategoricalProfile& c) {
          std::map<std::string, std::int64_t> by_label;
          for (std::size_t i = 0; i < c.counts.size() && i < c.labels.size(); ++i) {
            if (c.counts[i] > 0) by_label[c.labels[i]] = c.counts[i];
          }
          return by_label;
        };
        const auto a = counts(was.categorical), b = counts(is->categorical);
        if (was.categorical.missing != is->categorical.missing) {
          column_differs(std::to_string(was.categorical.missing) + " missing",
                         std::to_string(is->categorical.missing) + " missing");
        }
        // The first label whose count differs, in either profile.
        for (const auto* from : {&a, &b}) {
          for (const auto& entry : *from) {
            const std::string& label = entry.first;
            const auto x = a.find(label), y = b.find(label);
            const std::int64_t then = x == a.end() ? 0 : x->second,
                               now_rows = y == b.end() ? 0 : y->second;
            if (then != now_rows) {
              column_differs("label '" + label + "' in " + std::to_string(then) + " rows",
                             "in " + std::to_string(now_rows) + " rows");
            }
          }
        }
      }
    }
  }
  if (ck.target_mean != now.target_mean || ck.target_std != now.target_std) {
    differs("the regression target scaling",
            std::to_string(ck.target_mean) + " +- " + std::to_string(ck.target_std),
            std::to_string(now.target_mean) + " +- " + std::to_string(now.target_std));
  }
}

}  // namespace lathe
