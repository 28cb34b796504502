// `lathe report MODEL.h5 [--eval DATA.h5] [--drift NEW.h5 [--drift-weight COL]] --out report.html`:
// one self-contained HTML page about a model (io/html_report.h): summary, learning curves,
// evaluation charts, largest weights and interactions, drift. Written atomically; nothing is written
// when an input fails.
#include <iostream>

#include "cli/commands.h"
#include "cli/output_paths.h"
#include "io/html_report.h"
#include "runtime/device_context.h"
#include "runtime/error.h"

namespace lathe::cli {

void add_report_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("report", "Write an HTML report of a model (evaluation, weights, drift)");
  struct Args {
    std::string model, eval, drift, drift_weight, out, device = "auto", group;
    bool quiet = false;
    DriftThresholds thresholds;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("model", args->model, "Model file")->required();
  cmd->add_option("--eval", args->eval,
                  "Labeled data to evaluate on (ROC, PR, calibration, residuals, confusion)");
  cmd->add_option("--drift", args->drift,
                  "New data to compare with the training profile (lathe drift)");
  // Named for --drift alone: the --eval section's metrics and charts are not weighted.
  cmd->add_option("--drift-weight", args->drift_weight,
                  "Sample-weight column of the --drift data: its metrics weighted by it (lathe "
                  "drift --weight; "
                  "default: the model's training --weight column, when the data has it)")
      ->check(non_empty("a column name"));
  cmd->add_option("--out", args->out, "The HTML file to write")->required();
  cmd->add_option("--psi-warn", args->thresholds.psi_warn, "PSI at or above which a feature warns")
      ->default_val(0.1)
      ->check(at_least(0));
  cmd->add_option("--psi-alert", args->thresholds.psi_alert,
                  "PSI at or above which a feature is an alert")
      ->default_val(0.25)
      ->check(at_least(0));
  cmd->add_option("--group", args->group, "Group (columnar), pandas key or matrix dataset to read")
      ->check(non_empty("a group, pandas key or dataset name"));
  cmd->add_flag("--quiet", args->quiet, "No progress on stderr");
  add_device_option(cmd, args->device);
  cmd->callback([args, cmd] {
    check_warn_below_alert(cmd, "--psi-warn", args->thresholds.psi_warn, "--psi-alert", args->thresholds.psi_alert);
    // An empty --eval or --drift reads as no option: the page would leave its section out.
    refuse_empty_paths(*cmd, {"model", "--out", "--eval", "--drift"});
    if (!args->drift_weight.empty() && args->drift.empty()) {
      throw UsageError("--drift-weight weights the metrics of the --drift data: give --drift");
    }
    const WrittenFile output{"--out", args->out, "the report"};
    check_output_paths({output}, {{"the model file", args->model},
                                  {"the --eval file", args->eval},
                                  {"the --drift file", args->drift}});
    refuse_replacing_another_kind(output, ExistingFile::report);  // an earlier report only
    // A model given as data is told what the option takes, not the order of `lathe score`'s
    // arguments.
    refuse_input_of_another_kind(
        "--eval", args->eval, false,
        "labeled data to evaluate the model on (the model is the first argument)");
    refuse_input_of_another_kind(
        "--drift", args->drift, false,
        "new data to compare with the model's training data (the model is the first argument)");
    const DeviceContext ctx = DeviceContext::select(args->device);
    HtmlReportOptions options;
    options.model = args->model;
    options.eval = args->eval;
    options.drift = args->drift;
    options.drift_weight = args->drift_weight;
    options.thresholds = args->thresholds;
    options.read.group = args->group;
    write_html_report(ctx, options, args->out);
    if (!args->quiet) std::cerr << "lathe: report written to " << args->out << "\n";
  });
}

}  // namespace lathe::cli
