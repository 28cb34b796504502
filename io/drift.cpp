#include "io/drift.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>

#include "io/evaluate_table.h"
#include "io/model_inputs.h"
#include "runtime/error.h"
#include "runtime/float_sort.h"
#include "runtime/label_table.h"
#include "runtime/message_names.h"
#include "runtime/metrics.h"

namespace lathe {

namespace {

DriftStatus worse(DriftStatus a, DriftStatus b) { return static_cast<int>(a) > static_cast<int>(b) ? a : b; }

DriftStatus psi_status(double psi, const DriftThresholds& t) {
  if (!std::isfinite(psi) || psi >= t.psi_alert) return DriftStatus::alert;
  return psi >= t.psi_warn ? DriftStatus::warn : DriftStatus::ok;
}

double share(double part, double whole) { return whole > 0 ? part / whole : 0.0; }

// Shares of the non-missing bins scaled by the non-missing share, then the missing share.
std::vector<double> numeric_shares(const ColumnStats& stats, const QuantileSketch& sketch, std::span<const double> edges) {
  const double rows = static_cast<double>(stats.count + stats.missing);
  std::vector<double> out = bin_shares(sketch, edges);
  const double present = share(static_cast<double>(stats.count), rows);
  for (double& v : out) v *= present;
  out.push_back(share(static_cast<double>(stats.missing), rows));
  return out;
}

int filled_bins(std::span<const double> expected) {
  return static_cast<int>(std::count_if(expected.begin(), expected.end(), [](double e) { return e > 0; }));
}

std::string significant(double v, int digits) {
  std::ostringstream s;
  s << std::setprecision(digits) << v;
  return s.str();
}

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

nlohmann::json numbers(const std::vector<double>& v) {
  nlohmann::json j = nlohmann::json::array();
  for (double x : v) j.push_back(number(x));
  return j;
}

// Rows whose prediction (multiclass: any class's probability) is NaN.
std::int64_t rows_with_nan(const ModelFile& model, std::span<const float> predictions) {
  const std::size_t k = model.task == Task::multiclass ? static_cast<std::size_t>(std::max(model.outputs, 1)) : 1;
  std::int64_t rows = 0;
  for (std::size_t r = 0; r + k <= predictions.size(); r += k) {
    if (std::any_of(predictions.begin() + static_cast<std::ptrdiff_t>(r),
                    predictions.begin() + static_cast<std::ptrdiff_t>(r + k), [](float v) { return std::isnan(v); })) {
      ++rows;
    }
  }
  return rows;
}

// Why a metric is NaN on rows the model scored without a NaN: their labels hold one class (auc and
// pr_auc need both), or they are one row (r2 needs two).
std::string undefined_reason(const ModelFile& model, std::span<const float> labels) {
  if (model.task == Task::regression && labels.size() < 2) return "it has a single row (r2 needs two or more)";
  const bool one_value = !labels.empty() && std::all_of(labels.begin(), labels.end(),
                                                        [&](float v) { return v == labels.front(); });
  if (!one_value) return "it is not defined on its rows";
  if (model.task == Task::regression) return "its labels are all " + significant(labels.front(), 9);
  const auto k = static_cast<std::size_t>(labels.front());
  const std::string label = k < model.classes.size() ? model.classes[k] : significant(labels.front(), 9);
  return "its " + counted(static_cast<long long>(labels.size()), "row") + (labels.size() == 1 ? " holds" : " hold") +
         " one class ('" + label +
         "'), as a small batch of a rare class often does";
}

}  // namespace

double metric_drop_floor(const std::string& metric, double label_std) {
  if (metric == "rmse" || metric == "mae") {
    return std::isfinite(label_std) && label_std > 0 ? kMetricDropFloor * label_std : 0.0;
  }
  return kMetricDropFloor;
}

MetricDrift compare_metric(const std::string& name, double train, double now, double label_std,
                           const DriftThresholds& thresholds) {
  MetricDrift m;
  m.name = name;
  m.train = train;
  m.now = now;
  m.drop = higher_is_better(name) ? train - now : now - train;
  m.relative_drop = train != 0 ? m.drop / std::abs(train) : NAN;
  m.drop_floor = metric_drop_floor(name, label_std);
  // Written to fail on NaN: a drop counts when it reaches the threshold's share of |train| and the floor.
  const auto reaches = [&](double threshold) {
    return m.drop >= threshold * std::abs(train) && m.drop >= m.drop_floor;
  };
  if (!std::isfinite(now) || reaches(thresholds.metric_alert)) {
    m.status = DriftStatus::alert;
  } else if (reaches(thresholds.metric_warn)) {
    m.status = DriftStatus::warn;
  }
  return m;
}

const char* drift_status_name(DriftStatus status) {
  switch (status) {
    case DriftStatus::ok: return "ok";
    case DriftStatus::warn: return "warn";
    case DriftStatus::alert: return "alert";
  }
  return "?";
}

double population_stability_index(std::span<const double> expected, std::span<const double> actual) {
  if (expected.size() != actual.size()) {
    throw Error("PSI: " + std::to_string(expected.size()) + " expected shares but " + std::to_string(actual.size()) +
                " actual shares");
  }
  double psi = 0.0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double e = std::max(expected[i], kPsiFloor);
    const double a = std::max(actual[i], kPsiFloor);
    psi += (a - e) * std::log(a / e);
  }
  return psi;
}

double chance_psi(int bins, std::int64_t train_rows, std::int64_t new_rows) {
  if (train_rows <= 0 || new_rows <= 0) return NAN;
  if (bins < 2) return 0.0;
  return (bins - 1) * (1.0 / static_cast<double>(train_rows) + 1.0 / static_cast<double>(new_rows));
}

std::vector<double> quantile_bin_edges(const QuantileSketch& reference, int bins) {
  std::vector<double> quantiles;
  if (reference.count() <= 0 || bins < 2) return quantiles;
  for (int k = 1; k < bins; ++k) {
    const double e = reference.quantile(static_cast<double>(k) / bins);
    if (std::isnan(e)) continue;
    if (quantiles.empty() || e > quantiles.back()) quantiles.push_back(e);
  }
  // A value that holds a bin's share of the rows or more (a 0/1 column's 1 in 90% of them) takes
  // several deciles, and the bin (previous edge, e] would hold the values below it as well: the 10%
  // of 0s shared the one bin with the 1s, so that no change in their share could show in the PSI.
  // An edge at the largest value below such a point gives those values a bin of their own.
  const std::vector<float> points = reference.points();
  std::vector<double> edges;
  for (double e : quantiles) {
    const auto at = std::lower_bound(points.begin(), points.end(), e,
                                     [](float p, double v) { return static_cast<double>(p) < v; });
    if (at != points.begin() && at != points.end() && static_cast<double>(*at) == e) {
      const double below = static_cast<double>(*(at - 1));
      const bool mass = reference.cdf(e) - reference.cdf(below) >= 1.0 / bins;
      if (mass && (edges.empty() || below > edges.back())) edges.push_back(below);
    }
    edges.push_back(e);
  }
  return edges;
}

std::vector<double> bin_shares(const QuantileSketch& sketch, std::span<const double> edges) {
  std::vector<double> out(edges.size() + 1, 0.0);
  if (sketch.count() <= 0) return out;
  double below = 0.0;
  for (std::size_t k = 0; k < edges.size(); ++k) {
    const double at = sketch.cdf(edges[k]);
    out[k] = std::max(at - below, 0.0);
    below = std::max(below, at);
  }
  out.back() = std::max(1.0 - below, 0.0);
  return out;
}

double ks_statistic(const QuantileSketch& a, const QuantileSketch& b) {
  if (a.count() <= 0 || b.count() <= 0) return NAN;
  // Both CDFs are step functions that change only at their points: the supremum is at one of them.
  double d = 0.0;
  for (const QuantileSketch* s : {&a, &b}) {
    for (float p : s->points()) d = std::max(d, std::abs(a.cdf(p) - b.cdf(p)));
  }
  return d;
}

FeatureDrift compare_columns(const ColumnProfile& train, const ColumnProfile& now, const DriftThresholds& thresholds,
                             const CategoricalEncoding* encoding) {
  FeatureDrift f;
  f.name = train.name;
  f.type = train.type;
  if (train.type == ColumnType::numeric) {
    const ColumnStats& s = train.numeric.stats;
    f.missing_rate_train = share(static_cast<double>(s.missing), static_cast<double>(s.count + s.missing));
  } else {
    std::int64_t rows = train.categorical.missing;
    for (std::int64_t c : train.categorical.counts) rows += c;
    f.missing_rate_train = share(static_cast<double>(train.categorical.missing), static_cast<double>(rows));
  }
  if (now.type != train.type) {
    f.psi = NAN;
    f.ks = NAN;
    f.missing_rate_new = NAN;
    f.status = DriftStatus::alert;
    f.note = std::string("was ") + column_type_name(train.type) + " in training, is " + column_type_name(now.type) +
             " in the new data";
    return f;
  }
  if (train.type == ColumnType::numeric) {
    const ColumnStats& s = now.numeric.stats;
    f.missing_rate_new = share(static_cast<double>(s.missing), static_cast<double>(s.count + s.missing));
    f.edges = quantile_bin_edges(train.numeric.sketch);
    const auto expected = numeric_shares(train.numeric.stats, train.numeric.sketch, f.edges);
    const auto actual = numeric_shares(now.numeric.stats, now.numeric.sketch, f.edges);
    f.psi = population_stability_index(expected, actual);
    f.ks = ks_statistic(train.numeric.sketch, now.numeric.sketch);
    f.bins = filled_bins(expected);
    f.chance_psi = chance_psi(f.bins, train.numeric.stats.count + train.numeric.stats.missing, s.count + s.missing);
  } else {
    f.ks = NAN;
    const CategoricalProfile& t = train.categorical;
    const CategoricalProfile& n = now.categorical;
    const bool hashed = encoding != nullptr && encoding->hashed && encoding->buckets > 0;
    if (hashed) f.hash_buckets = encoding->buckets;
    // Bins: each label the training rows had, missing, then all unseen labels together. A hashed
    // column: the model's buckets, then missing; every label, seen or not, lands in its bucket, as
    // the model scores it (over labels nearly as many as the rows, two samples of one distribution
    // would differ by chance alone).
    // The training labels with rows, found through a LabelTable (runtime/label_table.h) by their
    // index in `seen`: a hashed column's profile holds about as many labels as rows, and a
    // node-based map of them was most of the time drift took.
    LabelTable table;
    std::vector<std::string_view> seen;
    std::vector<std::size_t> bin_of;  // by index in `seen`
    const auto seen_label = [&](std::int64_t k) { return seen[static_cast<std::size_t>(k)]; };
    std::vector<double> expected(hashed ? encoding->buckets : 0, 0.0), actual;
    double train_rows = static_cast<double>(t.missing);
    for_each_hashed(t.labels, table, [&](std::size_t i, std::uint64_t h) {
      const double c = static_cast<double>(t.counts[i]);
      train_rows += c;
      if (c <= 0) return;
      bool added = false;
      const auto k = static_cast<std::size_t>(table.find_or_add(t.labels[i], h, seen_label, added));
      if (added) {
        seen.push_back(t.labels[i]);
        bin_of.push_back(hashed ? static_cast<std::size_t>(encoding->slot_of(t.labels[i])) : expected.size());
        if (!hashed) expected.push_back(0.0);
      }
      expected[bin_of[k]] += c;
    });
    const std::size_t missing_bin = expected.size();
    expected.push_back(static_cast<double>(t.missing));
    if (!hashed) expected.push_back(0.0);
    const std::size_t unseen_bin = expected.size() - 1;  // not hashed
    actual.assign(expected.size(), 0.0);
    double new_rows = static_cast<double>(n.missing), unseen_rows = 0.0;
    actual[missing_bin] = static_cast<double>(n.missing);
    std::vector<std::pair<std::int64_t, std::size_t>> unseen;  // rows, label index in `now`
    for_each_hashed(n.labels, table, [&](std::size_t i, std::uint64_t h) {
      const double c = static_cast<double>(n.counts[i]);
      new_rows += c;
      if (c <= 0) return;
      const std::int64_t k = table.find(n.labels[i], h, seen_label);
      if (k >= 0) {
        actual[bin_of[static_cast<std::size_t>(k)]] += c;
        return;
      }
      actual[hashed ? static_cast<std::size_t>(encoding->slot_of(n.labels[i])) : unseen_bin] += c;
      unseen_rows += c;
      unseen.emplace_back(n.counts[i], i);
    });
    if (hashed) {
      // A hashed column's new labels can be most of the file (new users): the most frequent only.
      const std::size_t listed = std::min(unseen.size(), kUnseenListed);
      std::partial_sort(unseen.begin(), unseen.begin() + static_cast<std::ptrdiff_t>(listed), unseen.end(),
                        [&](const auto& a, const auto& b) {
                          return a.first != b.first ? a.first > b.first : n.labels[a.second] < n.labels[b.second];
                        });
      unseen.resize(listed);
    }
    for (const auto& entry : unseen) f.unseen.push_back(n.labels[entry.second]);
    if (!unseen.empty()) {
      // Unseen labels that are training labels spelled otherwise ("TRUE" for "True"): the most
      // frequent few folded, then one pass over the training labels, which a hashed column holds
      // by the million (no table of those).
      std::vector<std::pair<std::int64_t, std::size_t>> checked = unseen;
      if (checked.size() > kSpellingsChecked) {
        std::partial_sort(checked.begin(), checked.begin() + static_cast<std::ptrdiff_t>(kSpellingsChecked),
                          checked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
        checked.resize(kSpellingsChecked);
      }
      std::vector<std::string> checked_labels;
      for (const auto& entry : checked) checked_labels.push_back(n.labels[entry.second]);
      const FoldedLabels folded(checked_labels);
      std::vector<bool> matched(checked.size(), false);
      for (std::size_t i = 0; i < t.labels.size(); ++i) {
        if (t.counts[i] <= 0) continue;
        folded.for_each_match(t.labels[i], [&](std::size_t k) {
          if (matched[k]) return;
          matched[k] = true;
          f.spelled_otherwise.push_back({checked_labels[k], checked[k].first, t.labels[i]});
        });
      }
    }
    for (double& v : expected) v = share(v, train_rows);
    for (double& v : actual) v = share(v, new_rows);
    f.missing_rate_new = actual[missing_bin];
    f.unseen_share = share(unseen_rows, new_rows);
    f.psi = population_stability_index(expected, actual);
    f.bins = filled_bins(expected);
    f.chance_psi = chance_psi(f.bins, static_cast<std::int64_t>(train_rows), static_cast<std::int64_t>(new_rows));
  }
  f.status = psi_status(f.psi, thresholds);
  return f;
}

PredictionSummary summarize_predictions(Task task, std::int32_t outputs, std::span<const float> predictions,
                                        const std::string& source) {
  PredictionSummary s;
  s.source = source;
  if (task == Task::multiclass) {
    if (outputs < 1 || predictions.size() % static_cast<std::size_t>(outputs) != 0) {
      throw Error("summarize_predictions: " + std::to_string(predictions.size()) + " probabilities for " +
                  std::to_string(outputs) + " classes");
    }
    const std::size_t k = static_cast<std::size_t>(outputs);
    const std::size_t rows = predictions.size() / k;
    s.rows = static_cast<std::int64_t>(rows);
    if (rows == 0) return s;
    std::vector<double> counts(k, 0.0);
    for (std::size_t r = 0; r < rows; ++r) {
      const float* p = predictions.data() + r * k;
      std::size_t best = 0;  // ties to the lowest class, as the accuracy metric
      for (std::size_t c = 1; c < k; ++c) {
        if (p[c] > p[best]) best = c;
      }
      counts[best] += 1.0;
    }
    for (double& c : counts) c /= static_cast<double>(rows);
    s.class_shares = std::move(counts);
    return s;
  }
  std::vector<float> sorted;
  sorted.reserve(predictions.size());
  for (float v : predictions) {
    if (!std::isnan(v)) sorted.push_back(v == 0.0f ? 0.0f : v);  // -0 as +0, as sort_floats wants
  }
  sort_floats(sorted);
  s.rows = static_cast<std::int64_t>(sorted.size());
  std::vector<float> points;
  std::vector<double> weights;
  summarize_sorted(sorted, s.sketch.capacity(), points, weights);
  s.sketch.add_summary(points, weights);
  return s;
}

PredictionDrift compare_predictions(const PredictionSummary& train, const PredictionSummary& now,
                                    const DriftThresholds& thresholds) {
  PredictionDrift d;
  d.train_rows = train.rows;
  d.new_rows = now.rows;
  if (train.empty()) {
    d.note = "the model stores no summary of its predictions";
    return d;
  }
  if (now.empty()) {
    d.note = "no predictions on the new data";
    return d;
  }
  if (!train.class_shares.empty() || !now.class_shares.empty()) {
    if (train.class_shares.size() != now.class_shares.size()) {
      throw Error("compare_predictions: " + std::to_string(train.class_shares.size()) + " classes stored but " +
                  std::to_string(now.class_shares.size()) + " predicted");
    }
    d.train_shares = train.class_shares;
    d.new_shares = now.class_shares;
  } else {
    d.edges = quantile_bin_edges(train.sketch);
    d.train_shares = bin_shares(train.sketch, d.edges);
    d.new_shares = bin_shares(now.sketch, d.edges);
  }
  d.available = true;
  d.psi = population_stability_index(d.train_shares, d.new_shares);
  d.bins = filled_bins(d.train_shares);
  d.chance_psi = chance_psi(d.bins, d.train_rows, d.new_rows);
  d.status = psi_status(d.psi, thresholds);
  return d;
}

std::vector<std::string> small_sample_notes(const std::vector<FeatureDrift>& features,
                                            const PredictionDrift& prediction, std::int64_t train_rows,
                                            std::int64_t new_rows, const DriftThresholds& thresholds) {
  std::vector<std::string> notes;
  const double half = thresholds.psi_warn / 2;
  const auto range = [](const std::string& low, const std::string& high) {
    return low == high ? low : low + " to " + high;
  };
  const auto note = [&](std::int64_t reference_rows, const std::string& train_what, int fewest_bins, int most_bins,
                        double lowest, double highest, const std::string& which) {
    notes.push_back("small sample: the new data has " + counted(new_rows, "row") + "; with " +
                    std::to_string(reference_rows) + " " + train_what + ", " + which + " over " +
                    range(std::to_string(fewest_bins), std::to_string(most_bins)) + " bins is about " +
                    range(significant(lowest, 2), significant(highest, 2)) +
                    " by chance alone (two samples of one distribution), more than half of --psi-warn " +
                    significant(thresholds.psi_warn, 6) +
                    ": compare a larger sample, or raise --psi-warn/--psi-alert");
  };
  // Features alike (chance levels within a factor of 1.5: numeric columns with and without a
  // missing bin, say) share one note; a categorical column of many labels gets its own.
  std::size_t compared = 0;
  std::vector<const FeatureDrift*> noted;
  for (const FeatureDrift& f : features) {
    if (!std::isfinite(f.chance_psi)) continue;
    ++compared;
    if (f.chance_psi > half) noted.push_back(&f);
  }
  std::stable_sort(noted.begin(), noted.end(),
                   [](const FeatureDrift* a, const FeatureDrift* b) { return a->chance_psi < b->chance_psi; });
  for (std::size_t first = 0; first < noted.size();) {
    std::size_t last = first + 1;
    while (last < noted.size() && noted[last]->chance_psi <= 1.5 * noted[first]->chance_psi) ++last;
    std::vector<const FeatureDrift*> group(noted.begin() + static_cast<std::ptrdiff_t>(first),
                                           noted.begin() + static_cast<std::ptrdiff_t>(last));
    first = last;
    int fewest = group.front()->bins, most = fewest;
    for (const FeatureDrift* f : group) {
      fewest = std::min(fewest, f->bins);
      most = std::max(most, f->bins);
    }
    std::string which;
    if (group.size() == compared && compared > 1) {
      which = "the PSI of every feature";
    } else {
      // Named in the report's order.
      std::vector<const FeatureDrift*> named = group;
      std::sort(named.begin(), named.end());
      which = named.size() == 1 ? "the PSI of feature " : "the PSI of the features ";
      for (std::size_t i = 0; i < named.size() && i < 8; ++i) which += (i ? ", '" : "'") + named[i]->name + "'";
      if (named.size() > 8) which += " and " + std::to_string(named.size() - 8) + " more";
    }
    note(train_rows, "training rows", fewest, most, group.front()->chance_psi, group.back()->chance_psi, which);
  }
  if (prediction.available && std::isfinite(prediction.chance_psi) && prediction.chance_psi > half) {
    note(prediction.train_rows, "predictions stored at training", prediction.bins, prediction.bins,
         prediction.chance_psi, prediction.chance_psi, "the PSI of the predictions");
  }
  return notes;
}

DriftReport drift_table(const DeviceContext& ctx, const std::filesystem::path& model_path,
                        const std::filesystem::path& data, const DriftThresholds& thresholds,
                        const TableReadOptions& read, const std::string& weight_column) {
  const ModelFile model = load_model(model_path);
  if (!model.profile) {
    throw InputError(model_path.string() +
                     ": has no training profile (a format 1 model, or one not written by `lathe train`); drift "
                     "needs a model of format 2: train it again with this lathe");
  }
  DriftReport report;
  report.model = model_path.string();
  report.data = data.string();
  report.thresholds = thresholds;
  report.train_rows = model.profile->rows;
  if (const nlohmann::json stored = nlohmann::json::parse(model.metrics_json, nullptr, false);
      stored.is_object() && stored.contains("refit") && stored["refit"].is_object() &&
      stored["refit"].contains("rows") && stored["refit"]["rows"].is_number_integer()) {
    report.refit_rows = stored["refit"]["rows"].get<std::int64_t>();
  }
  const std::string trained_weight = training_weight_column(model);
  // Strings the model neither reads nor profiled at training are read as text, if at all (a model
  // of an earlier version profiled every column, dropped ones too: those are compared). A weight
  // column is read as numbers, as `lathe eval --weight` reads it: one of strings is refused by name.
  TableReadOptions for_model = reading_for_model(model, read);
  for (const std::string& weight : {weight_column, trained_weight}) {
    if (!weight.empty()) for_model.vector_datasets.push_back(weight);
  }
  for_model.read_as_text = [&model, &weight_column, &trained_weight,
                            text = for_model.read_as_text](const std::string& name) {
    return text(name) && name != weight_column && name != trained_weight &&
           std::none_of(model.profile->columns.begin(), model.profile->columns.end(),
                        [&](const ColumnProfile& c) { return c.name == name; });
  };
  TableReader reader(data, for_model);
  // Data not prepared as the training data was (a model trained on `lathe prepare` output given raw
  // rows) would compare every feature in other units: an error, not a drift.
  check_data_preparation(model, data);
  report.new_rows = reader.rows();
  // A --weight column that is not there or holds a bad weight is refused before the passes, as
  // `lathe eval` refuses it.
  std::vector<float> weights;
  std::string weighted_by = weight_column;
  if (!weight_column.empty()) weights = evaluation_weights(model, reader, weight_column);
  // Only the columns the model profiled at training are compared: the others (an id column, a new
  // column) are not read, so their values cannot fail the pass (an id of strings with more labels
  // than float32 codes hold exactly, say). The label's drift is the metrics', not a feature's.
  ProfileOptions options;
  for (const ColumnInfo& c : reader.columns()) {
    const bool profiled = std::any_of(model.profile->columns.begin(), model.profile->columns.end(),
                                      [&](const ColumnProfile& t) { return t.name == c.name; });
    if (!profiled || c.name == model.label) options.skip_columns.push_back(c.name);
  }
  const DataProfile now = profile_table(ctx, reader, nullptr, options);

  // The columns are compared on every core: a hashed column's labels are about as many as its rows.
  std::vector<const ColumnProfile*> compared;
  for (const ColumnProfile& train : model.profile->columns) {
    if (train.name != model.label) compared.push_back(&train);
  }
  std::vector<FeatureDrift> features(compared.size());
  std::vector<std::exception_ptr> failed(compared.size());
  // A column missing from NEW names the closest of NEW's columns the training rows did not have, as
  // `lathe score` and `eval` name a near one: a rename upstream (tenure -> Tenure) reads as an
  // alert with no hint otherwise. A column compared in its own right is no candidate.
  std::vector<std::string> new_names;
  for (const ColumnInfo& c : reader.columns()) {
    if (std::none_of(model.profile->columns.begin(), model.profile->columns.end(),
                     [&](const ColumnProfile& t) { return t.name == c.name; })) {
      new_names.push_back(c.name);
    }
  }
  const auto count = static_cast<std::int64_t>(compared.size());
#pragma omp parallel for schedule(dynamic, 1) if (count > 1)
  for (std::int64_t k = 0; k < count; ++k) {
    const ColumnProfile& train = *compared[static_cast<std::size_t>(k)];
    FeatureDrift& f = features[static_cast<std::size_t>(k)];
    const auto it = std::find_if(now.columns.begin(), now.columns.end(),
                                 [&](const ColumnProfile& c) { return c.name == train.name; });
    if (it == now.columns.end()) {
      f.name = train.name;
      f.type = train.type;
      f.psi = f.ks = f.missing_rate_new = NAN;
      f.status = DriftStatus::alert;
      const std::string near = did_you_mean(train.name, new_names);  // " (did you mean 'X'?)" or ""
      f.note = "missing from the new data" +
               (near.empty() ? std::string() : "; " + near.substr(2, near.size() - 3));
      continue;
    }
    // A column the model hashes is compared over its buckets.
    const auto hashed = std::find_if(model.preparation.categorical.begin(), model.preparation.categorical.end(),
                                     [&](const CategoricalEncoding& e) { return e.hashed && e.name == train.name; });
    try {
      f = compare_columns(train, *it, thresholds, hashed == model.preparation.categorical.end() ? nullptr : &*hashed);
    } catch (...) {
      failed[static_cast<std::size_t>(k)] = std::current_exception();
    }
  }
  for (std::size_t k = 0; k < features.size(); ++k) {
    if (failed[k]) std::rethrow_exception(failed[k]);
    report.status = worse(report.status, features[k].status);
    report.features.push_back(std::move(features[k]));
  }
  for (const ColumnProfile& c : now.columns) {
    // A sample-weight column (the training run's or --weight) is no feature by design: the
    // metrics' note says how it weighs them.
    if (c.name == trained_weight || c.name == weight_column) continue;
    const bool known = std::any_of(model.profile->columns.begin(), model.profile->columns.end(),
                                   [&](const ColumnProfile& t) { return t.name == c.name; });
    if (!known) report.notes.push_back("column '" + c.name + "' is not among the model's training columns (not compared: a dropped, passthrough or new column)");
  }
  for (const FeatureDrift& f : report.features) {
    if (f.spelled_otherwise.empty()) continue;
    report.notes.push_back("column '" + f.name + "': unseen labels that are training labels spelled otherwise: " + spelled_otherwise_text(f.spelled_otherwise));
  }

  report.labels_present = std::any_of(reader.columns().begin(), reader.columns().end(),
                                      [&](const ColumnInfo& c) { return c.name == model.label; });
  // The new rows scored once, for the prediction drift and the metrics.
  std::vector<float> predictions;
  std::string not_scored;  // why the new rows cannot be scored ("" = scored, or not needed)
  if (!model.predictions.empty() || report.labels_present) {
    try {
      predict_table(ctx, model, reader, predictions);
    } catch (const InputError& e) {
      // The data does not fit the model (a column missing or of another type): a drift in itself.
      not_scored = e.what();
    }
  }
  if (model.predictions.empty()) {
    report.prediction.note = "the model stores no summary of its predictions";
  } else if (!not_scored.empty()) {
    report.prediction.available = false;
    report.prediction.train_rows = model.predictions.rows;  // the summary there is to compare with
    report.prediction.new_rows = reader.rows();
    report.prediction.note = "the new data cannot be scored: " + not_scored;
    report.prediction.status = DriftStatus::alert;
  } else {
    const PredictionSummary summary = summarize_predictions(model.task, model.outputs, predictions, "new");
    report.prediction = compare_predictions(model.predictions, summary, thresholds);
  }
  report.status = worse(report.status, report.prediction.status);
  // A small sample drifts by chance alone: said before the metrics, which may return early.
  for (std::string& note :
       small_sample_notes(report.features, report.prediction, report.train_rows, report.new_rows, thresholds)) {
    report.notes.push_back(std::move(note));
  }

  if (report.labels_present) {
    // Labels the metrics cannot use (a missing one, a class the model never saw) leave the feature
    // and prediction drift as they are: the metrics are skipped, with a note saying why.
    std::vector<float> labels;
    std::string no_metrics;
    if (!not_scored.empty()) {
      no_metrics = model.predictions.empty() ? "the new data cannot be scored: " + not_scored
                                             : "the new data cannot be scored (see the predictions)";
    }
    const nlohmann::json stored = nlohmann::json::parse(model.metrics_json, nullptr, false);
    const nlohmann::json valid =
        stored.is_object() && stored.contains("valid") && stored["valid"].is_object() ? stored["valid"] : nlohmann::json::object();
    // Validation metrics weighted by the training run's --weight column against unweighted ones on
    // the new rows differ by the weighting alone (an rmse 5 times the validation one, on rows of the
    // training distribution): without --weight the new rows are weighted by that column, or, when
    // they lack it, the metrics are not compared.
    if (no_metrics.empty() && weight_column.empty() && !trained_weight.empty() && !valid.empty()) {
      const std::string weighted = "the training validation metrics are weighted by column '" + trained_weight + "'";
      const std::string trained = " (the model was trained with --weight " + trained_weight + ")";
      if (std::any_of(reader.columns().begin(), reader.columns().end(),
                      [&](const ColumnInfo& c) { return c.name == trained_weight; })) {
        weights = evaluation_weights(model, reader, trained_weight);
        weighted_by = trained_weight;
        report.notes.push_back(weighted + trained + ": the new rows' metrics are weighted by their column '" +
                               trained_weight + "' too (--weight COL weights them by another column)");
      } else {
        no_metrics = weighted + ", which " + report.data + " lacks" + trained +
                     ", so the metric drop is not computed (--weight COL weights the new rows by another column)";
      }
    }
    if (no_metrics.empty()) {
      try {
        labels = evaluation_labels(model, reader);
      } catch (const InputError& e) {
        no_metrics = e.what();
      }
    }
    if (!no_metrics.empty()) {
      report.metrics_not_compared = no_metrics;
      report.notes.push_back("metrics not compared: " + no_metrics);
      return report;
    }
    const MetricSet metrics = compute_metrics(ctx, model.task, predictions, labels, weights,
                                              static_cast<std::int32_t>(model.classes.size()));
    report.weight = weighted_by;
    report.primary_metric =
        stored.is_object() && stored.contains("metric") && stored["metric"].is_string()
            ? stored["metric"].get<std::string>()
            : stopping_metric(model.task, "");
    // An undefined metric (auc and pr_auc of rows of one class) is no drop and no drift: null in
    // the model (undefined on its validation rows) or NaN on the new rows the model scored (NaN
    // predictions excepted: those make every metric NaN, an alert). It is not compared, with a note;
    // when it is the model's metric, the metrics are skipped as for unusable labels, and the status
    // follows the features and the predictions.
    const std::int64_t nan_rows = rows_with_nan(model, predictions);
    if (nan_rows > 0) {
      report.notes.push_back("the model's predictions are NaN on " + counted(nan_rows, "row") + " of " +
                             report.data + ": its metrics are NaN there");
    }
    // pr_auc of rows of one class is a number (1 all positive, 0 none, as scikit-learn gives) but
    // ranks nothing: a batch of negatives would otherwise "drop" to 0. Undefined where auc is.
    const auto stored_undefined = [&](const std::string& name) {
      return valid.contains(name) && !(valid[name].is_number() && std::isfinite(valid[name].get<double>()));
    };
    const auto undefined_stored = [&](const std::string& name) {
      return stored_undefined(name) || (name == "pr_auc" && stored_undefined("auc"));
    };
    const auto auc_new = metrics.values.find("auc");
    const bool auc_undefined_new = auc_new != metrics.values.end() && std::isnan(auc_new->second) && nan_rows == 0;
    const auto undefined_new = [&](const std::string& name, double value) {
      return (std::isnan(value) && nan_rows == 0) || (name == "pr_auc" && auc_undefined_new);
    };
    const std::string why_new = undefined_reason(model, labels);
    const std::string on_valid = std::string("the model's validation rows (it stores ") +
                                 (model.task == Task::regression ? "null: as when they were a single row)"
                                                                 : "auc as null: as when they held one class)");
    const std::string on_new = report.data + ": " + why_new;
    const std::string& primary = report.primary_metric;
    if (const auto p = metrics.values.find(primary); p != metrics.values.end() && valid.contains(primary)) {
      if (undefined_stored(primary) || undefined_new(primary, p->second)) {
        no_metrics = primary + ", the model's metric, is undefined on " + (undefined_stored(primary) ? on_valid : on_new) +
                     "; undefined is no drop: the status follows the features and the predictions";
      }
    }
    if (!no_metrics.empty()) {
      report.metrics_not_compared = no_metrics;
      report.notes.push_back("metrics not compared: " + no_metrics);
      return report;
    }
    if (valid.empty()) report.notes.push_back("the model stores no validation metrics: no metric drop");
    // The spread of the training labels, the scale of the rmse and mae floors (regression only).
    double label_std = NAN;
    if (model.task == Task::regression) {
      for (const ColumnProfile& c : model.profile->columns) {
        if (c.name != model.label || c.type != ColumnType::numeric || c.numeric.stats.count < 2) continue;
        label_std = std::sqrt(c.numeric.stats.m2 / static_cast<double>(c.numeric.stats.count));
      }
    }
    std::vector<std::string> left_out_stored, left_out_new;
    for (const auto& [name, value] : metrics.values) {
      if (!valid.contains(name)) continue;
      if (undefined_stored(name)) {
        left_out_stored.push_back(name);
        continue;
      }
      if (undefined_new(name, value)) {
        left_out_new.push_back(name);
        continue;
      }
      MetricDrift m = compare_metric(name, valid[name].get<double>(), value, label_std, thresholds);
      m.primary = name == report.primary_metric;
      // A drop its relative size alone would have counted: said, so that the floor is not a mystery.
      if (m.status == DriftStatus::ok && m.drop >= thresholds.metric_warn * std::abs(m.train) && m.drop > 0) {
        report.notes.push_back(name + " is " + significant(m.now, 3) + " on the new rows against " +
                               significant(m.train, 3) + " at validation, " +
                               (std::isfinite(m.relative_drop) ? significant(100.0 * m.relative_drop, 3) + "% " : "") +
                               "worse but by " + significant(m.drop, 2) + ", under the floor of " +
                               significant(m.drop_floor, 2) +
                               (name == "rmse" || name == "mae" ? " (a hundredth of the training label's standard "
                                                                  "deviation)"
                                                                : std::string()) +
                               " that a drop must also reach to count: no drift");
      }
      if (m.primary) report.status = worse(report.status, m.status);
      report.metrics.push_back(m);
    }
    for (const auto& [names, where] : {std::pair{&left_out_stored, &on_valid}, std::pair{&left_out_new, &on_new}}) {
      if (names->empty()) continue;
      std::string list;
      for (const std::string& name : *names) list += (list.empty() ? "" : ", ") + name;
      report.notes.push_back(list + (names->size() == 1 ? " is" : " are") + " undefined on " + *where +
                             ": not compared");
    }
  }
  return report;
}

std::string drift_report_json(const DriftReport& r) {
  nlohmann::json features = nlohmann::json::array();
  for (const FeatureDrift& f : r.features) {
    nlohmann::json j = {{"name", f.name},
                        {"type", column_type_name(f.type)},
                        {"psi", number(f.psi)},
                        {"ks", number(f.ks)},
                        {"missing_rate_train", number(f.missing_rate_train)},
                        {"missing_rate_new", number(f.missing_rate_new)},
                        {"unseen_share", number(f.unseen_share)},
                        {"unseen", f.unseen},
                        {"edges", numbers(f.edges)},
                        {"hash_buckets", f.hash_buckets},
                        {"bins", f.bins},
                        {"psi_chance", number(f.chance_psi)},
                        {"status", drift_status_name(f.status)}};
    if (!f.note.empty()) j["note"] = f.note;
    features.push_back(std::move(j));
  }
  const PredictionDrift& p = r.prediction;
  nlohmann::json prediction = {{"available", p.available},
                               {"psi", p.available ? number(p.psi) : nlohmann::json(nullptr)},
                               {"edges", numbers(p.edges)},
                               {"train_shares", numbers(p.train_shares)},
                               {"new_shares", numbers(p.new_shares)},
                               {"train_rows", p.train_rows},
                               {"new_rows", p.new_rows},
                               {"bins", p.bins},
                               {"psi_chance", number(p.chance_psi)},
                               {"status", drift_status_name(p.status)}};
  if (!p.note.empty()) prediction["note"] = p.note;
  nlohmann::json metrics = nlohmann::json::array();
  nlohmann::json metric_drop = nullptr;
  for (const MetricDrift& m : r.metrics) {
    nlohmann::json j = {{"name", m.name},           {"train", number(m.train)},
                        {"new", number(m.now)},     {"drop", number(m.drop)},
                        {"relative_drop", number(m.relative_drop)}, {"drop_floor", number(m.drop_floor)},
                        {"primary", m.primary},
                        {"status", drift_status_name(m.status)}};
    if (m.primary) metric_drop = j;
    metrics.push_back(std::move(j));
  }
  const nlohmann::json out = {
      {"model", r.model},
      {"data", r.data},
      {"train_rows", r.train_rows},
      {"refit_rows", r.refit_rows > 0 ? nlohmann::json(r.refit_rows) : nlohmann::json(nullptr)},
      {"new_rows", r.new_rows},
      {"status", drift_status_name(r.status)},
      {"features", features},
      {"prediction", prediction},
      {"labels_present", r.labels_present},
      {"primary_metric",
       r.primary_metric.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.primary_metric)},
      {"metric_drop", metric_drop},
      {"weight", r.weight.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.weight)},
      {"metrics", metrics},
      {"thresholds",
       {{"psi_warn", r.thresholds.psi_warn},
        {"psi_alert", r.thresholds.psi_alert},
        {"metric_warn", r.thresholds.metric_warn},
        {"metric_alert", r.thresholds.metric_alert}}},
      {"notes", r.notes}};
  return out.dump(2);
}

}  // namespace lathe
