// `lathe drift MODEL.h5 NEW.h5 [--weight COL] [--json] [--psi-warn P] [--psi-alert P] [--metric-warn R]
// [--metric-alert R]`: new data compared with the training data and predictions stored in a model
// (io/drift.h). With --weight (by default, for a model trained with --weight W, the new data's
// column W) the new rows' metrics are weighted, as the stored validation metrics were. Exit 0 when
// nothing reaches the alert threshold, 3 when drift is found, 1 on error (2 for a usage error).
#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>

#include "cli/commands.h"
#include "cli/output_paths.h"
#include "cli/text_width.h"
#include "io/drift.h"
#include "runtime/device_context.h"
#include "runtime/error.h"
#include "runtime/message_names.h"

namespace lathe::cli {

namespace {

std::string fixed(double v, int precision = 4) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v;
  return s.str();
}

std::string percent(double v) { return std::isfinite(v) ? fixed(100.0 * v, 2) + "%" : "-"; }

void print_report(std::ostream& out, const DriftReport& r, const DriftThresholds& t) {
  out << "model: " << r.model << " (trained on " << counted(r.train_rows, "row");
  // The profile is of the training rows; a refit trained on the validation rows too (--refit).
  if (r.refit_rows > 0)
    out << ", refitted on all " << r.refit_rows << "; profiled on the " << r.train_rows;
  out << ")\n";
  out << "data:  " << r.data << " (" << counted(r.new_rows, "row");
  if (!r.weight.empty()) out << "; metrics weighted by column '" << r.weight << "'";
  out << ")\n";
  out << "PSI warn at " << t.psi_warn << ", alert at " << t.psi_alert << "\n\n";
  // Padded by terminal cells, not bytes: names in CJK or with combining marks stay in line.
  std::size_t width = 7;
  for (const FeatureDrift& f : r.features) width = std::max(width, display_width(f.name));
  out << "  " << pad_right("feature", width) << std::right << std::setw(13) << "type"
      << std::setw(10) << "psi" << std::setw(9) << "ks" << std::setw(15) << "missing train" << std::setw(13)
      << "missing new" << std::setw(9) << "unseen" << std::setw(8) << "status" << "\n";
  for (const FeatureDrift& f : r.features) {
    out << "  " << pad_right(f.name, width) << std::right << std::setw(13)
        << column_type_name(f.type) << std::setw(10) << fixed(f.psi) << std::setw(9) << fixed(f.ks) << std::setw(15)
        << percent(f.missing_rate_train) << std::setw(13) << percent(f.missing_rate_new) << std::setw(9)
        << (f.type == ColumnType::categorical ? percent(f.unseen_share) : std::string("-")) << std::setw(8)
        << drift_status_name(f.status);
    if (!f.note.empty()) out << "  (" << f.note << ")";
    if (!f.unseen.empty()) {
      out << "  unseen:";
      for (std::size_t i = 0; i < f.unseen.size() && i < 5; ++i) out << " " << f.unseen[i];
      if (f.unseen.size() > 5) out << " ...";
    }
    out << "\n";
  }
  const PredictionDrift& p = r.prediction;
  out << "\npredictions: ";
  if (p.available) {
    // The bins the training predictions fill, as the JSON's `bins` and the small-sample note count
    // them: a sketch of few distinct values ends in a bin of none (edges up to the maximum).
    out << "psi " << fixed(p.psi) << " (" << p.bins << " bins; " << counted(p.train_rows, "row")
        << " at training, " << p.new_rows << " new)  " << drift_status_name(p.status) << "\n";
  } else {
    out << "not compared: " << p.note << "  " << drift_status_name(p.status) << "\n";
  }
  if (!r.labels_present) {
    out << "metrics: the new data has no label column: not compared\n";
  } else if (!r.metrics_not_compared.empty()) {
    out << "metrics: not compared (see the note below)\n";
  } else if (r.metrics.empty()) {
    out << "metrics: nothing to compare with\n";
  } else {
    out << "\n  " << std::left << std::setw(10) << "metric" << std::right << std::setw(14) << "training valid"
        << std::setw(12) << "new" << std::setw(12) << "drop" << std::setw(10) << "relative" << std::setw(8)
        << "status" << "\n";
    for (const MetricDrift& m : r.metrics) {
      out << "  " << std::left << std::setw(10) << (m.name + (m.primary ? "*" : "")) << std::right << std::setw(14)
          << fixed(m.train, 6) << std::setw(12) << fixed(m.now, 6) << std::setw(12) << fixed(m.drop, 6)
          << std::setw(10) << percent(m.relative_drop) << std::setw(8) << drift_status_name(m.status) << "\n";
    }
    out << "  (* the model's metric: the status follows it)\n";
  }
  for (const std::string& note : r.notes) out << "note: " << note << "\n";
  out << "\nstatus: " << drift_status_name(r.status) << "\n";
}

}  // namespace

void add_drift_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("drift", "Compare new data with a model's training data and predictions");
  struct Args {
    std::string model, data, device = "auto", group, weight;
    bool json = false, quiet = false;
    DriftThresholds thresholds;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("model", args->model, "Model file (format 2 or later, written by lathe train)")->required();
  cmd->add_option("data", args->data, "New data, HDF5 (with or without the label)")->required();
  cmd->add_option("--weight", args->weight,
                  "Sample-weight column: the new rows' metrics weighted by it, as the validation "
                  "metrics of a "
                  "model trained with --weight are (default: for such a model, its weight column, "
                  "when the new "
                  "data has it; else the metrics are not compared)")
      ->check(non_empty("a column name"));
  cmd->add_flag("--json", args->json, "Print JSON");
  cmd->add_flag("--quiet", args->quiet, "No notes on stderr");
  cmd->add_option("--psi-warn", args->thresholds.psi_warn, "PSI at or above which a feature or the predictions warn")
      ->default_val(0.1)
      ->check(at_least(0));
  cmd->add_option("--psi-alert", args->thresholds.psi_alert, "PSI at or above which drift is found (exit 3)")
      ->default_val(0.25)
      ->check(at_least(0));
  // A drop must also reach an absolute floor (io/drift.h, metric_drop_floor): near a metric's ideal a
  // tiny change is a large share of the validation value.
  const std::string floor = "; the drop must also be at least 0.01 in the metric's units (rmse, mae: a hundredth "
                            "of the training label's standard deviation)";
  cmd->add_option("--metric-warn", args->thresholds.metric_warn,
                  "Relative drop of the model's metric at or above which to warn" + floor)
      ->default_val(0.05)
      ->check(at_least(0));
  cmd->add_option("--metric-alert", args->thresholds.metric_alert,
                  "Relative drop of the model's metric at or above which drift is found (exit 3)" + floor)
      ->default_val(0.10)
      ->check(at_least(0));
  cmd->add_option("--group", args->group, "Group (columnar), pandas key or matrix dataset to read")
      ->check(non_empty("a group, pandas key or dataset name"));
  add_device_option(cmd, args->device);
  cmd->callback([args, cmd] {
    refuse_empty_paths(*cmd, {"model", "data"});
    DriftThresholds& t = args->thresholds;
    // NaN passes CLI11's non-negative check (no comparison holds for it) and would never alert.
    for (const auto& [flag, value] : {std::pair{"--psi-warn", t.psi_warn}, std::pair{"--psi-alert", t.psi_alert},
                                      std::pair{"--metric-warn", t.metric_warn},
                                      std::pair{"--metric-alert", t.metric_alert}}) {
      if (!std::isfinite(value))
        throw UsageError(std::string(flag) + " must be a finite number, not " + number_text(value));
    }
    check_warn_below_alert(cmd, "--psi-warn", t.psi_warn, "--psi-alert", t.psi_alert);
    check_warn_below_alert(cmd, "--metric-warn", t.metric_warn, "--metric-alert", t.metric_alert);
    const DeviceContext ctx = DeviceContext::select(args->device);
    TableReadOptions read;
    read.group = args->group;
    const DriftReport report = drift_table(ctx, args->model, args->data, t, read, args->weight);
    if (args->json) {
      std::cout << drift_report_json(report) << "\n";
    } else {
      print_report(std::cout, report, t);
    }
    std::cout.flush();
    if (report.status == DriftStatus::alert) throw ExitCode{3};
  });
}

}  // namespace lathe::cli
