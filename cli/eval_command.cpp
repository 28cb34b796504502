// `lathe eval MODEL.h5 DATA.h5 [--weight COL] [--json]`: the task's metrics on labeled data (with
// --weight, weighted by that column's sample weights, as training's validation metrics are), beside
// the validation metrics stored in the model at training time. A model trained with `--weight W`
// stored validation metrics weighted by W: without --weight, a note says so. JSON: the metrics at
// the top level (rmse, mae, r2; logloss, accuracy, auc, pr_auc; f1_macro and confusion), "task",
// "weight" (the column weighting this data's metrics, null for none), regression
// "infinite_predictions" (rows predicted +-inf, counted as `lathe score` counts them; the metrics
// take them as they are: rmse and mae "inf", r2 "-inf", as JSON has no infinity; null is a metric
// that is undefined, as r2 of one row),
// "classes" (classification: the class labels in the model's order), multiclass "confusion_matrix"
// (confusion as a nested list: rows the true class, columns the predicted one, in "classes" order;
// "confusion" is the same counts flattened row by row),
// "training_valid" (the stored validation metrics of the kept epoch, {} when training had no
// validation) and "training" (best_epoch, metric, train_rows, valid_rows, valid_file, train_loss,
// batch, optimizer and lr as the run trained with them (a model from before optimizer was stored
// has neither),
// "refit" when the model was refitted on every row, "cooldown_after_epoch", the epoch after which
// the rate decayed when patience ran out (--cooldown; null when it did not), "init_model_valid"
// when it was retrained from a parent
// (--init-model: the parent's metrics on the same validation rows before the first epoch), and
// "weight", the training run's --weight column, when it had one).
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/output_paths.h"
#include "cli/text_width.h"
#include "io/evaluate_table.h"
#include "io/model_file.h"
#include "io/model_inputs.h"
#include "io/unseen_labels.h"
#include "runtime/device_context.h"
#include "runtime/message_names.h"
#include "runtime/metrics.h"

namespace lathe::cli {

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a model on labeled data");
  struct Args {
    std::string model, data, device = "auto", group, weight;
    bool json = false, quiet = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("model", args->model, "Model file")->required();
  cmd->add_option("data", args->data, "Labeled data, HDF5")->required();
  cmd->add_option("--weight", args->weight,
                  "Sample-weight column: weighted metrics, as the validation metrics of a model "
                  "trained with "
                  "--weight are")
      ->check(non_empty("a column name"));
  cmd->add_flag("--json", args->json, "Print JSON");
  cmd->add_flag("--quiet", args->quiet, "No notes on stderr");
  cmd->add_option("--group", args->group, "Group (columnar), pandas key or matrix dataset to read")
      ->check(non_empty("a group, pandas key or dataset name"));
  add_device_option(cmd, args->device);
  cmd->callback([args, cmd] {
    refuse_empty_paths(*cmd, {"model", "data"});
    // Evaluation reads nothing of the training profile but whether each column had missing values.
    ModelLoadOptions load;
    load.profile_labels = false;
    const ModelFile model = load_model(args->model, nullptr, load);
    const DeviceContext ctx = DeviceContext::select(args->device);
    TableReadOptions read;
    read.group = args->group;
    std::int64_t infinite = 0;
    std::vector<UnseenLabels> unseen;
    std::map<std::string, std::int64_t> imputed, missing_categories;
    const MetricSet metrics = evaluate_table(ctx, model, args->data, read, args->weight, &infinite,
                                             &unseen, &imputed, &missing_categories);
    // As `lathe score` says them: the metrics count these rows with the columns' unknown slots, and
    // with the training fill value where a column that had no missing values has some.
    if (!args->quiet) {
      for (const UnseenLabels& u : unseen)
        std::cerr << "eval: note: " << unseen_labels_note(u) << "\n";
      for (const ModelInput& in : model_inputs(model)) {
        const std::map<std::string, std::int64_t>& missing =
            in.categorical ? missing_categories : imputed;
        const auto count = missing.find(in.name);
        if (in.missing_in_training || count == missing.end()) continue;
        std::cerr << "eval: note: "
                  << (in.categorical ? untrained_missing_category_note(in.name, count->second)
                                     : untrained_missing_note(in.name, count->second))
                  << "\n";
      }
    }
    if (infinite > 0 && !args->quiet) {
      // As `lathe score` words it, then what the rows make of the metrics, which take each
      // prediction as it is: an infinite one makes rmse and mae inf and r2 -inf, unless its weight
      // (--weight) is 0.
      std::string not_finite;
      for (const auto& [k, v] : metrics.values) {
        if (!std::isinf(v)) continue;
        not_finite += (not_finite.empty() ? "" : ", ") + k + (v > 0 ? " inf" : " -inf");
      }
      const bool one = infinite == 1;
      std::cerr << "eval: note: " << infinite << (one ? " prediction is" : " predictions are")
                << (one ? " infinite: its fit lies beyond " : " infinite: their fit lies beyond ")
                << (model.target_transform == TargetTransform::none
                        ? "float's range"
                        : "exp's range (--target-transform)")
                << (one ? ", a row" : ", rows")
                << " far outside the training data; --clip bounds them. ";
      if (not_finite.empty()) {
        std::cerr << (one ? "Its weight is 0: the metrics do not count it\n"
                          : "Their weights are 0: the metrics do not count them\n");
      } else {
        std::cerr << "The metrics take " << (one ? "it" : "them") << " as "
                  << (one ? "it is" : "they are") << ": " << not_finite
                  << (args->json ? " (\"inf\" and \"-inf\" in the JSON, which has no infinity)"
                                 : "")
                  << "\n";
      }
    }
    // A binary model's auc is undefined on rows of one class (roc_auc_score's own rule): NaN here,
    // null in the JSON, "n/a" in the text, which once printed `auc nan` without a word of why. With
    // NaN predictions every metric is NaN (logloss too): that is not this case.
    if (model.task == Task::binary && !args->quiet && metrics.values.count("auc") > 0 &&
        std::isnan(metrics.values.at("auc")) && std::isfinite(metrics.values.at("logloss"))) {
      const bool all_positive = metrics.values.at("pr_auc") == 1.0;
      const std::string only =
          model.classes.size() == 2 ? " '" + model.classes[all_positive ? 1 : 0] + "'" : "";
      std::cerr << "eval: note: the rows of " << args->data << " are all of one class" << only
                << (args->weight.empty() ? "" : " (of those with weight above 0)")
                << ": auc needs both classes, so it is undefined (n/a"
                << (args->json ? "; null in the JSON" : "") << "); pr_auc is "
                << (all_positive ? "1 with only positive rows" : "0 with no positive rows")
                << ", as scikit-learn's average_precision_score gives it (with a warning)\n";
    }
    nlohmann::json stored = nlohmann::json::parse(model.metrics_json, nullptr, false);
    const nlohmann::json stored_valid = stored.is_object() && stored.contains("valid") ? stored["valid"] : nlohmann::json::object();
    // The training run's --weight column, which weighted the stored validation metrics.
    const std::string trained_weight = training_weight_column(model);
    if (!trained_weight.empty() && args->weight.empty() && !stored_valid.empty() && !args->quiet) {
      std::cerr << "eval: note: the training validation metrics of " << args->model << " are weighted by column '"
                << trained_weight << "' (trained with --weight " << trained_weight
                << "), the metrics of this data are not: --weight " << trained_weight << " gives comparable figures\n";
    }
    if (args->json) {
      nlohmann::json j = nlohmann::json::object();
      for (const auto& [k, v] : metrics.values) j[k] = metric_json<nlohmann::json>(v);
      if (model.task != Task::regression) j["classes"] = model.classes;
      // Only a regression's prediction can be infinite (a probability cannot), as in `lathe score`.
      if (model.task == Task::regression) j["infinite_predictions"] = infinite;
      // Per column, as `lathe score --json` gives them.
      nlohmann::json unknown = nlohmann::json::object();
      for (const UnseenLabels& u : unseen) unknown[u.column] = u.count;
      j["unknown_categories"] = unknown;
      j["imputed"] = imputed;  // every numeric input's missing values, as `lathe score --json`'s
      j["missing_categories"] = nlohmann::json(missing_categories);  // and every categorical one's
      if (!metrics.confusion.empty()) {
        j["confusion"] = metrics.confusion;
        const auto k = static_cast<std::size_t>(metrics.classes);
        nlohmann::json matrix = nlohmann::json::array();
        for (std::size_t i = 0; i < k; ++i) {
          matrix.push_back(std::vector<std::int64_t>(metrics.confusion.begin() + static_cast<std::ptrdiff_t>(i * k),
                                                     metrics.confusion.begin() + static_cast<std::ptrdiff_t>((i + 1) * k)));
        }
        j["confusion_matrix"] = matrix;
      }
      // The training run's own numbers, beside (never in place of) this data's top-level metrics:
      // its kept epoch's validation metrics and how they were obtained.
      j["training_valid"] = stored_valid;
      nlohmann::json training = nlohmann::json::object();
      if (stored.is_object()) {
        for (const auto& [k, v] : stored.items()) {
          if (k != "valid") training[k] = v;
        }
      }
      if (!trained_weight.empty()) training["weight"] = trained_weight;
      // As `lathe train`'s summary has it: null where the rate never decayed (the model stores
      // the epoch only where it did).
      if (!training.contains("cooldown_after_epoch")) training["cooldown_after_epoch"] = nullptr;
      j["training"] = training;
      j["task"] = task_name(model.task);
      j["weight"] = args->weight.empty() ? nlohmann::json(nullptr) : nlohmann::json(args->weight);
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << "model: " << args->model << " (" << task_name(model.task) << ", label '" << model.label << "')\n";
    std::cout << "data:  " << args->data;
    if (!args->weight.empty()) std::cout << " (weighted by column '" << args->weight << "')";
    std::cout << "\n\n";
    std::cout << "  " << std::left << std::setw(10) << "metric" << std::right << std::setw(14) << "this data"
              << std::setw(22) << "training validation" << "\n";
    // An undefined metric (NaN; null in the JSON) in words: `nan` read as a value.
    for (const auto& [k, v] : metrics.values) {
      std::cout << "  " << std::left << std::setw(10) << k << std::right << std::setw(14)
                << std::setprecision(6);
      if (std::isnan(v)) {
        std::cout << "n/a";
      } else {
        std::cout << v;
      }
      if (stored_valid.contains(k) && stored_valid[k].is_number()) {
        std::cout << std::setw(22) << stored_valid[k].get<double>();
      } else if (stored_valid.contains(k) && stored_valid[k].is_null()) {
        std::cout << std::setw(22) << "n/a";
      }
      std::cout << "\n";
    }
    // A refitted model (`lathe train --refit`) trained on its validation rows after they chose the
    // epoch: their metrics are the chosen epoch's, not this model's.
    if (stored.is_object() && stored.contains("refit") && stored["refit"].is_object() &&
        !stored_valid.empty()) {
      const nlohmann::json& refit = stored["refit"];
      std::cout
          << "  (training validation: the best epoch's, before the model was trained again on all "
          << refit.value("rows", std::int64_t{0}) << " training and validation rows for "
          << counted(refit.value("epochs", std::int64_t{0}), "epoch") << ")\n";
    }
    // A matrix of more classes than a terminal is wide (1000 classes printed 8 MB) is left to --json.
    constexpr std::size_t kMaxPrintedClasses = 20;
    if (!metrics.confusion.empty() && static_cast<std::size_t>(metrics.classes) > kMaxPrintedClasses) {
      std::cout << "\n  confusion: " << metrics.classes << " classes, too many to print; --json gives the matrix\n";
    } else if (!metrics.confusion.empty()) {
      std::cout << "\n  confusion (rows: true class, columns: predicted)\n";
      const auto k = static_cast<std::size_t>(metrics.classes);
      // Widths in cells, not bytes: labels in CJK stay in line. A column as wide as its label.
      std::size_t label_width = 12;
      std::vector<std::size_t> widths(k);
      for (std::size_t i = 0; i < k; ++i) {
        label_width = std::max(label_width, display_width(model.classes[i]));
        widths[i] = std::max<std::size_t>(8, display_width(model.classes[i]) + 2);
      }
      std::cout << "  " << std::string(label_width, ' ');
      for (std::size_t j = 0; j < k; ++j) std::cout << pad_left(model.classes[j], widths[j]);
      std::cout << "\n";
      for (std::size_t i = 0; i < k; ++i) {
        std::cout << "  " << pad_left(model.classes[i], label_width);
        for (std::size_t j = 0; j < k; ++j)
          std::cout << pad_left(std::to_string(metrics.confusion[i * k + j]), widths[j]);
        std::cout << "\n";
      }
    }
  });
}

}  // namespace lathe::cli
