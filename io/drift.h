// Drift monitoring (`lathe drift MODEL.h5 NEW.h5`): new data compared with the training data a
// model stored (model file format 2, io/model_file.h), feature by feature and through the model.
//
// Per column of the training profile (the label excepted):
//   numeric      PSI over kPsiBins quantile bins of the training values plus one bin for missing
//                values; the bin edges are the distinct training quantiles q(k / kPsiBins),
//                k = 1..kPsiBins-1, from the stored quantile sketch, bins (-inf, e1], (e1, e2], ...,
//                (e_last, inf); each side's share of a bin comes from its own sketch's CDF, scaled by
//                its share of non-missing values. KS: the largest difference between the two
//                sketches' CDFs (over the non-missing values), evaluated at every point of both.
//   categorical  PSI over the labels the training rows had, one bin for missing values and one bin
//                for all labels the training rows never had ("unseen", together); labels are matched
//                by name, so files imported separately agree. unseen_share: the new rows' share of
//                unseen labels (missing values excepted).
//   hashed       a categorical column the model hashes into buckets (more labels than
//   categorical  --max-categories; CategoricalEncoding::hashed): PSI over its buckets plus the
//                missing bin, each label (the training profile's, with their counts, and the new
//                data's) put in its bucket by the preparation's own hash (CategoricalEncoding::
//                slot_of), as the model sees it; over labels, which can be about as many as the
//                rows, two samples of one distribution would differ by chance alone. A label the
//                training rows never had lands in its bucket (the model has no unknown slot for such
//                a column), so there is no unseen bin; unseen_share is still the new rows' share of
//                labels the training rows never had (new users, for an id), a number beside the PSI
//                that the status does not follow, and `unseen` lists at most kUnseenListed of those
//                labels, the most frequent first. (Past about 1 / kPsiFloor evenly used buckets, the
//                16384 of the default --category-buckets, most shares are under the floor: the PSI
//                is then well below the chance level below, which overstates it.)
// PSI = sum over bins of (a - e) ln(a / e), e the training share and a the new share, each floored
// at kPsiFloor so an empty bin costs a finite amount. A column missing from the new data or of
// another type is an alert.
//
// Predictions: the new rows are scored with the model and compared with the summary of the
// validation predictions stored at training time: regression and binary by PSI over the quantile
// bins of the stored sketch (no missing bin), multiclass by PSI over the predicted-class shares.
// Chance: two samples of one distribution differ by a PSI of about (bins - 1) (1/n_train + 1/n_new)
// by chance alone (bins: those with a training share above 0), the chi-square approximation (for
// small differences PSI ~ sum (a - e)^2 / e, whose mean is that). When it exceeds half of the warn
// threshold for some feature or the predictions, the report notes the small sample: a random
// sample of the training data itself can warn or alert then.
// Metrics: when the new data holds the model's label, the task's metrics beside the training
// validation metrics (metrics_json's "valid"); the drop is measured in the worse direction, and a
// drop under the metric's absolute floor (metric_drop_floor) is no drift, with a note when its
// relative size alone would have warned. Labels
// the metrics cannot use (a missing label, a class the model was not trained on) skip the metrics
// with a note; the rest of the report stands. A metric undefined on the new rows (NaN: auc and
// pr_auc of labels of one class, common in a small batch of a rare class) or on the validation rows
// (stored as null) is no drop: it is left out with a note, and when it is the model's metric the
// metrics are skipped as for unusable labels, so the status follows the features and the
// predictions. NaN predictions (every metric NaN) remain an alert.
// Weights: with weight_column (`lathe drift --weight COL`) the new rows' metrics are weighted by that
// column, as evaluate_table weights them (`lathe eval --weight`). A model trained with `--weight W`
// stored validation metrics weighted by W (training_weight_column): without weight_column, the new
// rows' metrics are weighted by their column W, with a note, or, when the new data has no column W,
// not compared (a weighted and an unweighted figure differ without any drift), with a note; the
// status then follows the features and the predictions.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "io/model_file.h"
#include "io/table_reader.h"
#include "runtime/device_context.h"
#include "runtime/label_spelling.h"
#include "runtime/profile.h"
#include "runtime/quantile_sketch.h"

namespace lathe {

inline constexpr int kPsiBins = 10;
inline constexpr double kPsiFloor = 1e-4;
// The unseen labels a hashed categorical column lists (FeatureDrift::unseen), the most frequent.
inline constexpr std::size_t kUnseenListed = 100;

enum class DriftStatus { ok, warn, alert };
const char* drift_status_name(DriftStatus status);  // "ok", "warn", "alert"

struct DriftThresholds {
  double psi_warn = 0.1;    // PSI at or above: warn
  double psi_alert = 0.25;  // PSI at or above: alert
  // The relative drop of the model's metric (the early-stopping metric stored in the model), in the
  // worse direction: |new - train| / |train| when new is worse. At or above: warn / alert, when the
  // drop also reaches the metric's absolute floor (metric_drop_floor).
  double metric_warn = 0.05;
  double metric_alert = 0.10;
};

// The absolute floor of a metric drop: a drop smaller than this, in the metric's units, neither
// warns nor alerts, however large relative to the validation value. A model near the metric's ideal
// (log-loss 0.003, RMSE a thousandth of the label's spread) otherwise turns a tiny change into a
// large relative one: penguins' validation log-loss 0.0032 against 0.0124 on new rows is a 285%
// relative drop at 99.8% accuracy. The floor binds only near the ideal: it equals the default alert
// threshold's drop (10%) from a log-loss of 0.1 or an RMSE of 0.1 label standard deviations, and the
// default warn threshold's (5%) from a log-loss of 0.2; a typical model's drops are larger.
//   logloss                                  kMetricDropFloor nats
//   auc, pr_auc, accuracy, f1_macro, r2      kMetricDropFloor (one point on their 0..1 scale)
//   rmse, mae                                kMetricDropFloor x the training label's standard
//                                            deviation (the RMSE of predicting its mean)
inline constexpr double kMetricDropFloor = 0.01;

// PSI of two distributions over the same bins (shares; each floored at kPsiFloor). Throws Error
// when the sizes differ.
double population_stability_index(std::span<const double> expected, std::span<const double> actual);

// The PSI expected by chance alone between two samples of one distribution, of train_rows and
// new_rows rows, over `bins` bins that the distribution fills: (bins - 1) (1/train_rows +
// 1/new_rows), the chi-square approximation. 0 for fewer than 2 bins; NaN when a sample is empty.
double chance_psi(int bins, std::int64_t train_rows, std::int64_t new_rows);

// The distinct quantiles q(k / bins), k = 1..bins-1, of a sketch, ascending: the inner edges of the
// PSI bins; before a quantile that is a value holding at least 1/bins of the rows, also the largest
// value below it (above the previous edge), so that the values below such a point mass are a bin of
// their own rather than counted with it. Empty for an empty sketch.
std::vector<double> quantile_bin_edges(const QuantileSketch& reference, int bins = kPsiBins);

// The share of a sketch's values in each bin (-inf, e1], (e1, e2], ..., (e_last, inf), from its CDF;
// edges.size() + 1 shares adding up to 1 (all 0 for an empty sketch).
std::vector<double> bin_shares(const QuantileSketch& sketch, std::span<const double> edges);

// The two-sample Kolmogorov-Smirnov statistic of the values two sketches summarise: the largest
// |F_a(x) - F_b(x)| over the points of both. Exact when both summaries are exact (few values). NaN
// when either is empty.
double ks_statistic(const QuantileSketch& a, const QuantileSketch& b);

struct FeatureDrift {
  std::string name;
  ColumnType type = ColumnType::numeric;
  double psi = 0.0;  // NaN when it cannot be computed (the column is missing or changed type)
  double ks = 0.0;   // numeric only; NaN when a side has no values or for a categorical column
  double missing_rate_train = 0.0;
  double missing_rate_new = 0.0;
  double unseen_share = 0.0;           // categorical: the new rows' share of unseen labels
  std::vector<std::string> unseen;     // categorical: the unseen labels present in the new data
                                       // (hashed: at most kUnseenListed, the most frequent first)
  // categorical: unseen labels that are a training label in other letter case or with spaces around
  // it ("TRUE" for "True"), which are not matched: checked among the kSpellingsChecked most frequent.
  std::vector<SpelledOtherwise> spelled_otherwise;
  std::vector<double> edges;           // numeric: the inner bin edges used for PSI
  std::uint32_t hash_buckets = 0;      // categorical: the buckets the model hashes it into (0: not)
  int bins = 0;                        // the PSI bins with a training share above 0 (hashed: buckets)
  double chance_psi = NAN;             // chance_psi(bins, training rows, new rows); NaN when not compared
  DriftStatus status = DriftStatus::ok;
  std::string note;  // why the feature is an alert beyond its PSI ("" = none)
};

// One column compared: `train` and `now` must have the same name. PSI, KS, missing rates, unseen
// labels, the PSI expected by chance and the status by the thresholds (an alert when the types
// differ). `encoding`: the model's encoding of a categorical column; when it is hashed, the PSI is
// over its buckets (see above); null or not hashed: over the labels.
FeatureDrift compare_columns(const ColumnProfile& train, const ColumnProfile& now, const DriftThresholds& thresholds,
                             const CategoricalEncoding* encoding = nullptr);

// The summary PredictionSummary holds of predictions as predict_table gives them (regression value
// or binary P(positive) per row; multiclass probabilities, rows x outputs).
PredictionSummary summarize_predictions(Task task, std::int32_t outputs, std::span<const float> predictions,
                                        const std::string& source);

struct PredictionDrift {
  bool available = false;   // false: the model stores no summary, or the new rows could not be scored
  std::string note;         // why it is not available
  double psi = 0.0;
  std::vector<double> edges;  // regression and binary: the inner bin edges
  std::vector<double> train_shares, new_shares;  // per bin (multiclass: per class)
  std::int64_t train_rows = 0, new_rows = 0;
  int bins = 0;             // the bins with a training share above 0
  double chance_psi = NAN;  // chance_psi(bins, train_rows, new_rows); NaN when not available
  DriftStatus status = DriftStatus::ok;
};

// The stored summary compared with the summary of the new predictions (same task).
PredictionDrift compare_predictions(const PredictionSummary& train, const PredictionSummary& now,
                                    const DriftThresholds& thresholds);

struct MetricDrift {
  std::string name;
  double train = 0.0;  // the training validation value
  double now = 0.0;    // on the new data
  double drop = 0.0;   // how much worse now is (negative: better), in the metric's units
  double relative_drop = 0.0;  // drop / |train| (NaN when train is 0)
  double drop_floor = 0.0;     // metric_drop_floor: the least drop that warns or alerts
  bool primary = false;        // the model's metric: the one the status follows
  DriftStatus status = DriftStatus::ok;
};

// The absolute floor of a drop of `metric` (see kMetricDropFloor), in its units. `label_std`: the
// training label's standard deviation, for rmse and mae; when it is not finite or not above 0, their
// floor is 0 (the relative thresholds alone).
double metric_drop_floor(const std::string& metric, double label_std);

// One metric compared: `train` the validation value stored in the model (finite), `now` its value on
// the new rows. The status: alert when `now` is not finite; else alert (warn) when the drop reaches
// both thresholds.metric_alert (metric_warn) x |train| and the floor, so with train 0 the floor
// alone. `primary` is left false.
MetricDrift compare_metric(const std::string& name, double train, double now, double label_std,
                           const DriftThresholds& thresholds);

struct DriftReport {
  std::string model, data;
  std::int64_t train_rows = 0, new_rows = 0;  // train_rows: the training profile's
  // A model `lathe train --refit` trained again on the training and validation rows: how many (0:
  // not refitted). The profile stays the training rows'.
  std::int64_t refit_rows = 0;
  std::vector<FeatureDrift> features;
  PredictionDrift prediction;
  bool labels_present = false;  // the new data holds the model's label: metrics were computed
  // Why the metrics were not compared although the label column is there ("" = they were, or there
  // are no labels): labels the model cannot use (missing, or a class it never had), rows it cannot
  // score, or the model's metric undefined on the new rows or the validation rows. The feature and
  // prediction drift are reported all the same; also in `notes`.
  std::string metrics_not_compared;
  std::vector<MetricDrift> metrics;
  std::string primary_metric;  // set when the metrics were computed
  std::string weight;          // the column weighting the new rows' metrics ("" = none, or no metrics)
  DriftStatus status = DriftStatus::ok;  // the worst of every status above
  std::vector<std::string> notes;
  // The thresholds the statuses were judged by (a warn given alone moves its alert's default, and
  // the other way round): JSON `thresholds`, so that a stored report says what its statuses mean.
  DriftThresholds thresholds;
};

// The notes about small samples: for the features whose chance_psi exceeds half of
// thresholds.psi_warn, one note per group of features alike (chance levels within a factor of 1.5;
// the features named unless the group holds every feature compared), and one for the predictions
// when theirs does; each names the rows (the training profile's `train_rows`, the new data's
// `new_rows`), the bins, the chance level and what to do (a larger sample, or higher thresholds).
// Empty when no chance level is that high.
std::vector<std::string> small_sample_notes(const std::vector<FeatureDrift>& features,
                                            const PredictionDrift& prediction, std::int64_t train_rows,
                                            std::int64_t new_rows, const DriftThresholds& thresholds);

// The whole comparison of `data` with the model file at `model_path`. Throws InputError when the
// model has no training profile (format 1, or not written by `lathe train`) or the data cannot be
// read. `weight_column`: the sample weights of the new rows' metrics ("" = the model's training
// --weight column, when it had one and the data has it; see above); its weights are refused as
// evaluation_weights refuses them, before any other pass, and a bad weight of the training column
// the metrics default to is refused the same way.
DriftReport drift_table(const DeviceContext& ctx, const std::filesystem::path& model_path,
                        const std::filesystem::path& data, const DriftThresholds& thresholds,
                        const TableReadOptions& read = {}, const std::string& weight_column = "");

// The report as JSON (stable keys; non-finite numbers as null), for monitoring systems.
std::string drift_report_json(const DriftReport& report);

}  // namespace lathe
