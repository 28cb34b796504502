// `lathe report MODEL.h5 [--eval DATA.h5] [--drift NEW.h5] --out report.html`: one self-contained
// HTML page about a model (inline CSS and inline SVG charts; no script, no external resource).
//
// Sections, each present when its inputs are:
//   summary        task, label, classes, model kind, loss, features, training rows, the stored
//                  validation metrics, the options that produced the model and its parent chain
//   learning curves (svg#learning-curve-loss, svg#learning-curve-metric, class "learning-curve"):
//                  the per-epoch training loss and validation metric the model file's "history"
//                  attribute holds (io/model_file.h); older files say "no history stored"
//   evaluation     with --eval (labeled data): the task's metrics (the numbers `lathe eval` prints,
//                  from the same computation) beside the stored validation metrics, and
//                  binary: svg#roc, svg#pr, svg#calibration (kCalibrationBins equal-width bins of
//                  P(positive): mean predicted against observed positive rate);
//                  regression: svg#residuals (predicted against actual, at most kMaxScatterPoints
//                  rows, an evenly spaced deterministic sample);
//                  multiclass: svg#confusion (rows: true class, columns: predicted)
//   weights        svg#weights: the kTopWeights largest |weight| (per output for multiclass) with
//   the
//                  feature's name (runtime/warm_start.h's expanded_feature_keys: "tenure",
//                  "contract=One year", ...); fm: svg#interactions, the kTopInteractions largest
//                  |<v_i, v_j>| over pairs of the kInteractionCandidates features of largest factor
//                  norm (pairs of slots of one sparse group never fire together and are left out)
//   drift          with --drift: io/drift.h's report (per feature PSI, KS, missing rates, unseen
//                  labels, status colours; svg#drift-psi; predictions and metric drop)
//
// Every string from the data (column names, labels, paths, options) is HTML-escaped.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/drift.h"
#include "io/table_reader.h"
#include "runtime/device_context.h"

namespace lathe {

inline constexpr int kCalibrationBins = 10;
inline constexpr std::int64_t kMaxScatterPoints = 2000;
inline constexpr int kTopWeights = 20;
inline constexpr int kTopInteractions = 20;
inline constexpr int kInteractionCandidates = 40;
// Points a ROC or PR polyline keeps at most (evenly spaced over the thresholds, ends kept).
inline constexpr std::size_t kMaxCurvePoints = 1000;

struct HtmlReportOptions {
  std::filesystem::path model;
  std::filesystem::path eval;   // labeled data to evaluate on ("" = none)
  std::filesystem::path drift;  // new data to compare with the training profile ("" = none)
  // The sample-weight column of the drift's metrics (drift_table's weight_column; "" = the model's
  // training --weight column, when the drift data has it).
  std::string drift_weight;
  DriftThresholds thresholds;
  TableReadOptions read;  // how to read the eval and drift files
};

// Text with &, <, >, " and ' replaced by entities: safe in element content and quoted attributes.
std::string html_escape(std::string_view text);

struct CurvePoint {
  double x = 0.0, y = 0.0;
};

// ROC curve of binary scores (labels 0/1): (false positive rate, true positive rate) from (0, 0) to
// (1, 1), one point per distinct score, highest first. Empty when a class is absent.
std::vector<CurvePoint> roc_curve(std::span<const float> scores, std::span<const float> labels);

// Precision-recall curve: (recall, precision), one point per distinct score, highest first,
// starting at (0, precision of the highest score). Empty when there are no positives.
std::vector<CurvePoint> precision_recall_curve(std::span<const float> scores,
                                               std::span<const float> labels);

struct CalibrationBin {
  double lo = 0.0, hi = 0.0;  // the bin [lo, hi) of P(positive) (the last one includes 1)
  std::int64_t rows = 0;
  double mean_predicted = 0.0;  // NaN when rows == 0
  double observed_rate = 0.0;   // the share of positives; NaN when rows == 0
};

// `bins` equal-width bins of P(positive) over [0, 1].
std::vector<CalibrationBin> calibration_bins(std::span<const float> probabilities,
                                             std::span<const float> labels,
                                             int bins = kCalibrationBins);

// The whole page. Throws InputError naming the file when the model, the eval or the drift data
// cannot be read (the model first: nothing else is read when it is missing).
std::string render_html_report(const DeviceContext& ctx, const HtmlReportOptions& options);

// render_html_report written to `out` atomically (temporary name, then rename).
void write_html_report(const DeviceContext& ctx, const HtmlReportOptions& options,
                       const std::filesystem::path& out);

// Whether the file at `path` is a page write_html_report wrote: it starts as the page does and its
// head carries the mark <meta name="generator" content="lathe report"> (or, written before the
// mark, the title "Lathe report: ..."). False for a file that cannot be read. `lathe report --out`
// replaces such a page only.
bool holds_html_report(const std::filesystem::path& path);

}  // namespace lathe
