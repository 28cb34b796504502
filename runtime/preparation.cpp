#include "runtime/preparation.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <set>
#include <span>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "runtime/error.h"
#include "runtime/label_table.h"
#include "runtime/message_names.h"
#include "runtime/name_lists.h"
#include "runtime/prepare_cuda.h"
#include "runtime/shortest_text.h"
#include "runtime/team_threshold.h"
#include "runtime/vector_clones.h"

namespace lathe {

namespace {

std::string fmt(double v) {
  std::ostringstream o;
  o.precision(9);
  o << v;
  return o.str();
}

void note(std::vector<std::string>* notes, std::string text) {
  if (notes) notes->push_back(std::move(text));
}

void check_column_options(const std::string& where, const ColumnPreparation& p) {
  if (p.impute == ImputeKind::constant && !std::isfinite(p.impute_constant)) {
    throw InputError(where + ": the imputation constant must be finite");
  }
  if (p.clip == ClipKind::quantile &&
      !(p.clip_lo_quantile >= 0.0 && p.clip_lo_quantile <= p.clip_hi_quantile &&
        p.clip_hi_quantile <= 1.0)) {
    throw InputError(where + ": clip quantiles must satisfy 0 <= lo <= hi <= 1 (got " +
                     fmt(p.clip_lo_quantile) + ", " + fmt(p.clip_hi_quantile) + ")");
  }
  if (p.clip == ClipKind::stddev && !(p.clip_k > 0.0 && std::isfinite(p.clip_k))) {
    throw InputError(where + ": the clip k (standard deviations) must be positive (got " +
                     fmt(p.clip_k) + ")");
  }
  if (p.clip == ClipKind::iqr && !(p.clip_iqr_k > 0.0 && std::isfinite(p.clip_iqr_k))) {
    throw InputError(where + ": the clip k (interquartile ranges) must be positive (got " +
                     fmt(p.clip_iqr_k) + ")");
  }
  if (p.bins != 0 && (p.bins < 2 || p.bins > kMaxBins)) {
    throw InputError(where + ": bins must be 0 (none) or from 2 to " + std::to_string(kMaxBins) + " (got " +
                     std::to_string(p.bins) + ")");
  }
}

// The inner edges of a column's quantile bins (fit_preparation's rule) and why there are fewer
// than asked. A column of `count` non-missing values gets at most min(bins, count) bins, whose
// edges are the sketch's i/min(bins, count) quantiles as float, kept when finite, above the minimum
// and above the edge before (where values repeat, quantiles coincide), and when the bin they open
// holds a point of the sketch before the next quantile: between two points the sketch
// interpolates, and an edge there may open a bin of no row. Every sketch point is a training value,
// so every bin holds at least one training row (the first bin the minimum). With many more values
// than bins, every bin holds many points and the edges are the plain quantiles.
struct QuantileBins {
  std::vector<float> edges;
  std::int32_t capped = 0;     // min(bins, count)
  std::int64_t coincided = 0;  // quantiles dropped where they coincide (repeated values)
  std::int64_t empty = 0;      // quantiles dropped because their bin would hold no training value
  // The sketch keeps `capacity` points (it may stand for more distinct values than that, so that
  // values it cannot tell apart read as repeated): 0 when it keeps fewer.
  std::int32_t full_sketch = 0;
};

QuantileBins quantile_bin_edges(const ColumnProfile& col, std::int32_t bins) {
  QuantileBins out;
  const ColumnStats& st = col.numeric.stats;
  if (st.count == 0) return out;
  const QuantileSketch& sketch = col.numeric.sketch;
  out.capped = static_cast<std::int32_t>(std::min<std::int64_t>(bins, st.count));
  std::vector<float> candidates;
  for (std::int32_t i = 1; i < out.capped; ++i) {
    const auto e = static_cast<float>(sketch.quantile(static_cast<double>(i) / out.capped));
    if (!std::isfinite(e) || !(e > st.min) || (!candidates.empty() && !(e > candidates.back()))) {
      ++out.coincided;
      continue;
    }
    candidates.push_back(e);
  }
  // Candidate k opens the bin [c_k, c_{k+1}) (the last one [c_k, inf), where +inf values fall too):
  // kept when a point lies there. Dropping it merges that bin into the one below, which keeps its
  // own point.
  const std::vector<float> points = sketch.points();
  if (points.size() >= static_cast<std::size_t>(sketch.capacity()))
    out.full_sketch = sketch.capacity();
  for (std::size_t k = 0; k < candidates.size(); ++k) {
    const auto at = std::lower_bound(points.begin(), points.end(), candidates[k]);
    const bool last = k + 1 == candidates.size();
    if (at != points.end() && (last || *at < candidates[k + 1])) {
      out.edges.push_back(candidates[k]);
    } else {
      ++out.empty;
    }
  }
  return out;
}

// A finite scale, or 1 (never 0, NaN or Inf): its reciprocal is the transform's inv_scale.
bool usable_scale(double scale) {
  return scale > 0.0 && std::isfinite(scale) && std::isfinite(1.0 / scale);
}

// A numeric feature is noted as mostly missing when at least this share of its training rows (and
// at least this many) lack a value, though some have one (a column without any is noted by
// fit_numeric).
constexpr std::int64_t kMostlyMissingMinRows = 100;
constexpr double kMostlyMissingShare = 0.95;

// A column almost never filled in (a field of a form most skip, a measurement taken on a few
// rows): its fill value and scale come from those few values, and every other row gets the fill.
// Unless its being missing tells the label something, it is noise; nothing said so.
void note_mostly_missing(const ColumnProfile& col, const ColumnPreparation& p, bool missing_indicators,
                         std::vector<std::string>* notes) {
  const ColumnStats& st = col.numeric.stats;
  const std::int64_t rows = st.count + st.missing;
  if (st.count == 0 || rows < kMostlyMissingMinRows ||
      static_cast<double>(st.missing) < kMostlyMissingShare * static_cast<double>(rows)) {
    return;
  }
  note(notes, "column '" + col.name + "': " + std::to_string(st.missing) + " of its " + std::to_string(rows) +
                  " training rows (" + fmt(std::floor(1000.0 * static_cast<double>(st.missing) / static_cast<double>(rows)) / 10.0) +
                  "%) are missing, " +
                  // A constant fill does not come from the others' values (the note said it did).
                  (p.impute == ImputeKind::constant ? "filled with the constant " + fmt(p.impute_constant) + ", beside the "
                                                    : std::string("filled from the ")) +
                  std::to_string(st.count) + (st.count == 1 ? " value" : " values") + " of the others: --drop it" +
                  (missing_indicators ? " unless its missing indicator is informative"
                                      : ", or add --missing-indicators if its being missing is informative"));
}

// A numeric feature is noted as id-like when its training rows hold distinct whole numbers that
// fill at least this share of the run from its min to its max (a row number, a customer number
// counted up, less the rows a validation split took), in at least this many rows. Distinct is known
// where the quantile sketch holds every value (weights 1: up to its capacity); over more rows,
// where repeats cannot be told, the values must be spread evenly over the run, in at least
// kIdLikeSpreadMinRows rows.
constexpr std::int64_t kIdLikeIntegerMinRows = 30;
constexpr double kIdLikeIntegerFill = 0.7;
constexpr std::int64_t kIdLikeSpreadMinRows = 1000;

// A string id column is noted by fit_categorical; one of integers was scaled and learned from as a
// quantity without a word (QA: customer numbers 1000..1049).
void note_id_like_integers(const ColumnProfile& col, std::vector<std::string>* notes) {
  const ColumnStats& st = col.numeric.stats;
  const QuantileSketch& sketch = col.numeric.sketch;
  if (st.missing > 0 || st.count < kIdLikeIntegerMinRows || !std::isfinite(st.min) ||
      !std::isfinite(st.max) || st.min != std::floor(st.min) || st.max != std::floor(st.max) ||
      sketch.empty() || sketch.count() != static_cast<double>(st.count)) {
    return;
  }
  const double rows = static_cast<double>(st.count);
  const double run = st.max - st.min + 1.0;                   // whole numbers from min to max
  if (run < rows || rows < kIdLikeIntegerFill * run) return;  // some value repeats; or a sparse run
  const std::vector<float> points = sketch.points();
  const std::vector<double> weights = sketch.weights();
  const auto whole = [](float v) { return v == std::floor(v); };
  if (!std::all_of(points.begin(), points.end(), whole)) return;
  std::string what;
  if (points.size() == static_cast<std::size_t>(st.count)) {
    // Every value a point of its own (points are distinct): distinct whole numbers.
    if (!std::all_of(weights.begin(), weights.end(), [](double w) { return w == 1.0; })) return;
    what = "hold " + std::to_string(st.count) + " distinct whole numbers from " + fmt(st.min) +
           " to " + fmt(st.max);
  } else {
    // More values than the sketch keeps: repeats cannot be told, so the deciles must be where
    // distinct values over the run put them (within 2% of the run).
    if (st.count < kIdLikeSpreadMinRows) return;
    for (int k = 1; k < 10; ++k) {
      const double q = static_cast<double>(k) / 10.0;
      if (std::abs(sketch.quantile(q) - (st.min + q * (st.max - st.min))) > 0.02 * run) return;
    }
    what = "are whole numbers that fill the run from " + fmt(st.min) + " to " + fmt(st.max) +
           " evenly";
  }
  note(notes,
       "column '" + col.name + "': its " + std::to_string(st.count) + " training rows " + what +
           ", as a row number or an id is, and it is learned from as a quantity: an id? --drop "
           "it (`lathe score --id " +
           col.name + "` still copies it beside the scores)");
}

// Whether a column's values are its min and max only (a 0/1 flag): of the values in [min, max] with
// a given mean, those two alone reach the variance (mean - min)(max - mean) (Bhatia-Davis); any
// third value lowers it. Within a relative 1e-6, for the sums' rounding.
bool two_valued(const ColumnStats& st) {
  const double most = (st.mean - st.min) * (st.max - st.mean);
  return st.max > st.min && most > 0.0 && variance(st) >= most * (1.0 - 1e-6);
}

NumericTransform fit_numeric(const ColumnProfile& col, const ColumnPreparation& p,
                             const ClippedMoments* measured, std::vector<std::string>* notes) {
  const ColumnStats& st = col.numeric.stats;
  const QuantileSketch& sketch = col.numeric.sketch;
  const std::string& name = col.name;
  NumericTransform t;

  if (st.count == 0) {
    // All missing: nothing to estimate. The column becomes the constant (0 once centered).
    t.fill = static_cast<float>(p.impute_constant);
    t.center = p.scale == ScaleKind::none ? 0.0 : static_cast<double>(t.fill);
    t.inv_scale = 1.0;
    note(notes, "column '" + name + "' is all missing: imputed with the constant " +
                    fmt(p.impute_constant) +
                    (p.scale == ScaleKind::none ? "" : ", scaled output 0"));
    return t;
  }

  auto quantile = [&](double q) {
    const double v = sketch.quantile(q);
    if (!std::isfinite(v)) {
      throw InputError("column '" + name + "': the " + fmt(q) + "-quantile is " + fmt(v) +
                       (sketch.count() > 0 ? " (the column has infinite values)"
                                           : " (the profile has no quantile sketch for it)"));
    }
    return v;
  };
  const double mean = st.mean;
  const double stddev = std::sqrt(variance(st));
  auto need_finite_moments = [&](const char* why) {
    if (!std::isfinite(st.min) || !std::isfinite(st.max)) {
      // Sums over infinite values say nothing useful (inf, or NaN): name the cause instead.
      throw InputError("column '" + name + "' has infinite values (min " + fmt(st.min) + ", max " + fmt(st.max) +
                       "), so its mean and standard deviation, needed for " + why +
                       ", are not finite; clip it to quantiles (the clipped values' moments are finite)");
    }
    if (!std::isfinite(mean) || !std::isfinite(stddev)) {
      throw InputError("column '" + name + "': mean " + fmt(mean) + ", standard deviation " +
                       fmt(stddev) + " are not finite (values too large for their squares?), needed for " + why +
                       "; use quantile clipping with median imputation and robust scaling");
    }
  };

  // The bounds first: the transform fills, clips, then scales, so the mean fill and the standard
  // scaler take the moments of the clipped values.
  switch (p.clip) {
    case ClipKind::none:
      break;
    case ClipKind::quantile:
      t.clip_lo = static_cast<float>(quantile(p.clip_lo_quantile));
      t.clip_hi = static_cast<float>(quantile(p.clip_hi_quantile));
      break;
    case ClipKind::stddev:
      // The usual definition: bounds from the raw values' moments.
      need_finite_moments("clipping to standard deviations");
      t.clip_lo = static_cast<float>(mean - p.clip_k * stddev);
      t.clip_hi = static_cast<float>(mean + p.clip_k * stddev);
      break;
    case ClipKind::iqr: {
      const double q25 = quantile(0.25), q75 = quantile(0.75);
      if (q75 > q25) {
        t.clip_lo = static_cast<float>(q25 - p.clip_iqr_k * (q75 - q25));
        t.clip_hi = static_cast<float>(q75 + p.clip_iqr_k * (q75 - q25));
      } else if (!two_valued(st)) {
        // Fences of width 0 would make the column one value: its rare values are its information
        // (a count mostly 0), not outliers of a bulk. Said, as that column's other values are
        // left as they are; a flag (two values) is left as it is without a word: no clip applies.
        note(notes, "column '" + name + "': its quartiles are one value (" + fmt(q25) +
                        "), so --clip iqr would make it constant: left unclipped");
      }
      break;
    }
  }
  // Bounds inside [min, max] move some values: their moments are the measured ones when a pass over
  // the data gave them, else the sketch's (exact for a column of at most its capacity distinct
  // values, else within its rank error times the clipped range). Bounds at or beyond [min, max]
  // move nothing, and the profile's exact moments stay.
  const bool clipped = t.clip_lo > st.min || t.clip_hi < st.max;
  double clipped_mean = mean, clipped_stddev = stddev;
  if (clipped && measured) {
    clipped_mean = measured->mean;
    clipped_stddev = std::sqrt(measured->variance);
  } else if (clipped) {
    if (!(sketch.count() > 0)) {
      throw InputError("column '" + name + "': the profile has no quantile sketch for it, needed for the " +
                       "moments of its clipped values");
    }
    const QuantileSketch::Moments m = sketch.clipped_moments(t.clip_lo, t.clip_hi);
    clipped_mean = m.mean;
    clipped_stddev = std::sqrt(m.variance);
  }
  auto need_finite_clipped_moments = [&](const char* why) {
    if (!clipped) return need_finite_moments(why);
    if (!std::isfinite(clipped_mean) || !std::isfinite(clipped_stddev)) {
      throw InputError("column '" + name + "': the clipped values' mean " + fmt(clipped_mean) +
                       ", standard deviation " + fmt(clipped_stddev) + " are not finite (infinite values " +
                       "on an unclipped side?), needed for " + why + "; clip both sides");
    }
  };

  switch (p.impute) {
    case ImputeKind::mean:
      need_finite_clipped_moments("mean imputation");
      t.fill = static_cast<float>(clipped_mean);
      break;
    case ImputeKind::median:
      t.fill = static_cast<float>(quantile(0.5));
      break;
    case ImputeKind::constant:
      t.fill = static_cast<float>(p.impute_constant);
      // The fill is clipped with the values: a constant chosen to mark missing rows apart (-1, -999)
      // outside the bounds became the bound, like the outliers clipped there, without a word.
      if (st.missing > 0 && (t.fill < t.clip_lo || t.fill > t.clip_hi)) {
        const bool below = t.fill < t.clip_lo;
        note(notes,
             "column '" + name + "': --impute constant:" + fmt(p.impute_constant) + " lies " +
                 (below ? "below" : "above") + " its clip bounds [" + shortest_text(t.clip_lo) +
                 ", " + shortest_text(t.clip_hi) + "], so its " + std::to_string(st.missing) +
                 (st.missing == 1 ? " missing row takes " : " missing rows take ") +
                 shortest_text(below ? t.clip_lo : t.clip_hi) +
                 ", as the values clipped there do (missing values are filled, then clipped): "
                 "choose a constant within the bounds, or add --missing-indicators to keep them "
                 "apart");
      }
      break;
  }

  double center = 0.0, scale = 1.0;
  const char* what = "";
  switch (p.scale) {
    case ScaleKind::none:
      return t;
    case ScaleKind::standard:
      need_finite_clipped_moments("standard scaling");
      center = clipped_mean;
      scale = clipped_stddev;
      what = "standard deviation";
      break;
    case ScaleKind::minmax: {
      // Scaled after clipping, so [clip_lo, clip_hi] (when narrower) maps onto [0, 1].
      const double lo = std::max(static_cast<double>(st.min), static_cast<double>(t.clip_lo));
      const double hi = std::min(static_cast<double>(st.max), static_cast<double>(t.clip_hi));
      if (!std::isfinite(lo) || !std::isfinite(hi)) {
        throw InputError("column '" + name + "': min " + fmt(lo) + ", max " + fmt(hi) +
                         " are not finite (infinite values?); clip it first (quantile clipping)");
      }
      center = lo;
      scale = hi - lo;
      what = "range (max - min)";
      break;
    }
    case ScaleKind::robust: {
      // Quantiles of the clipped values are the clipped quantiles (clipping is monotone): the same
      // as the raw ones unless the bounds cut into the interquartile range.
      const auto clip = [&](double v) {
        return std::min(std::max(v, static_cast<double>(t.clip_lo)), static_cast<double>(t.clip_hi));
      };
      center = clip(quantile(0.5));
      scale = clip(quantile(0.75)) - clip(quantile(0.25));
      what = "interquartile range";
      break;
    }
  }
  t.center = center;
  if (usable_scale(scale)) {
    t.inv_scale = 1.0 / scale;
    // Values are read as float32 (a float64 column is rounded on reading), before the centering in
    // double: a column far from zero next to its spread keeps only float32's spacing there.
    // Clipped-off values (outliers) are replaced by the bounds, so their spacing does not matter.
    const double magnitude =
        std::max(std::fabs(std::max(static_cast<double>(st.min), static_cast<double>(t.clip_lo))),
                 std::fabs(std::min(static_cast<double>(st.max), static_cast<double>(t.clip_hi))));
    if (std::isfinite(magnitude) && magnitude > 0.0) {
      const double spacing = std::ldexp(1.0, std::ilogb(magnitude) - 23);
      if (spacing > 0.01 * scale) {
        note(notes, "column '" + name + "': its values are read as float32, whose spacing near " + fmt(magnitude) +
                        " is " + fmt(spacing) + ", " + fmt(std::round(1000.0 * spacing / scale) / 10.0) + "% of its " +
                        what + " (" + fmt(scale) +
                        "): the prepared values are that coarse; subtract an offset (such as its mean, " + fmt(clipped_mean) +
                        ") from the column before import to keep them precise");
      }
    }
  } else {
    t.inv_scale = 1.0;
    // From 2^24 on float32 does not hold every integer: ids or timestamps that differ in the file
    // can read as one value (2^40 + 0..999 all read as 2^40), and the column as constant.
    const double magnitude = std::max(std::fabs(static_cast<double>(st.min)), std::fabs(static_cast<double>(st.max)));
    const std::string coarse =
        std::isfinite(magnitude) && magnitude >= 16777216.0
            ? "; its values are read as float32, whose spacing near " + fmt(magnitude) + " is " +
                  fmt(std::ldexp(1.0, std::ilogb(magnitude) - 23)) +
                  ", so values closer than that read as one: subtract an offset before import if they differ"
            : std::string();
    note(notes, "column '" + name + "': " + what + " is " + fmt(scale) +
                    ": scaled by 1 (values are only centered; a constant column becomes 0)" + coarse);
  }
  return t;
}

// The distinct labels of a categorical profile that have training rows, each with its rows, in the
// order of their first code: a label that a file gives several codes is one entry. Views of the
// profile's labels, merged through an open-addressing table of their hashes rather than by sorting
// them: a column with more labels than --max-categories is hashed and never needs their order, and
// sorting a million labels (a memcmp per comparison) was most of the fit.
std::vector<std::pair<std::string_view, std::int64_t>> label_rows(const CategoricalProfile& cp) {
  std::vector<std::pair<std::string_view, std::int64_t>> merged;
  const std::size_t n = std::min(cp.labels.size(), cp.counts.size());
  merged.reserve(n);
  LabelTable table;
  const auto label_of = [&](std::int64_t i) { return merged[static_cast<std::size_t>(i)].first; };
  for_each_hashed(std::span<const std::string>(cp.labels).first(n), table, [&](std::size_t i, std::uint64_t h) {
    if (cp.counts[i] <= 0) return;
    bool added = false;
    const std::int64_t at = table.find_or_add(cp.labels[i], h, label_of, added);
    if (added) {
      merged.emplace_back(cp.labels[i], cp.counts[i]);
    } else {
      merged[static_cast<std::size_t>(at)].second += cp.counts[i];
    }
  });
  return merged;
}

// A categorical feature is noted as id-like when at least this share of its observed rows (and at
// least this many) hold a label seen in no other row.
constexpr std::int64_t kIdLikeMinRows = 100;
constexpr double kIdLikeShare = 0.9;

CategoricalEncoding fit_categorical(const ColumnProfile& col, const PreparationOptions& options,
                                    std::vector<std::string>* notes) {
  CategoricalEncoding enc;
  enc.name = col.name;
  // visit(label, rows) for each distinct label with training rows, in label_rows' order. Labels
  // known to be distinct are visited as they are: a hashed column never reads them, and merging a
  // column of a million ids that never repeat cost a table of them and a copy of their views.
  const CategoricalProfile& cp = col.categorical;
  std::vector<std::pair<std::string_view, std::int64_t>> merged;
  if (!cp.labels_distinct) merged = label_rows(cp);
  const std::size_t distinct = std::min(cp.labels.size(), cp.counts.size());
  const auto for_each_seen = [&](auto visit) {
    if (!cp.labels_distinct) {
      for (const auto& [label, rows] : merged) visit(label, rows);
      return;
    }
    for (std::size_t i = 0; i < distinct; ++i) {
      if (cp.counts[i] > 0) visit(std::string_view(cp.labels[i]), cp.counts[i]);
    }
  };
  std::int64_t kept_labels = 0, rare_labels = 0, rare_rows = 0;
  std::int64_t observed_rows = 0, rows_of_single_labels = 0;
  for_each_seen([&](std::string_view, std::int64_t rows) {
    if (rows >= options.min_category_count) {
      ++kept_labels;
    } else {
      ++rare_labels;
      rare_rows += rows;
    }
    observed_rows += rows;
    if (rows == 1) ++rows_of_single_labels;
  });
  // A label (nearly) per row: an id, a timestamp or an amount read as text ("$1,234"). Its weights
  // can only memorize the training rows, and every new row takes the unknown slot; nothing said so
  // before `lathe score` counted the unknown labels.
  if (observed_rows >= kIdLikeMinRows &&
      static_cast<double>(rows_of_single_labels) >= kIdLikeShare * static_cast<double>(observed_rows)) {
    note(notes, "categorical column '" + col.name + "': " + std::to_string(rows_of_single_labels) + " of its " +
                    std::to_string(observed_rows) +
                    " training rows hold a label seen in no other row, so its weights can only memorize "
                    "those rows (new rows take the unknown slot): an id or a timestamp? --drop it; numbers "
                    "read as text? import them as numbers");
  }
  if (kept_labels > options.max_categories && !options.never_hashed.contains(col.name)) {
    enc.hashed = true;
    const auto kept = options.category_buckets_of.find(col.name);
    enc.buckets = options.category_buckets > 0 ? options.category_buckets
                  : kept != options.category_buckets_of.end()
                      ? kept->second
                      : auto_category_buckets(kept_labels + rare_labels);
    note(notes,
         "column '" + col.name + "' has " + std::to_string(kept_labels) + " categories" +
             (rare_labels > 0
                  ? " seen in " + std::to_string(options.min_category_count) + " rows or more"
                  : "") +
             " (more than " + std::to_string(options.max_categories) + "): hashed into " +
             std::to_string(enc.buckets) + " buckets" + (rare_labels > 0 ? ", every label" : ""));
    return enc;
  }
  // The vocabulary is sorted as the strings sort (string_view compares as std::string does):
  // slot_of searches it and bind_preparation checks it.
  std::vector<std::string_view> labels;
  labels.reserve(static_cast<std::size_t>(kept_labels));
  for_each_seen([&](std::string_view label, std::int64_t rows) {
    if (rows >= options.min_category_count) labels.push_back(label);
  });
  std::sort(labels.begin(), labels.end());
  enc.vocabulary.assign(labels.begin(), labels.end());
  if (rare_labels > 0) {
    note(notes, "column '" + col.name + "': " + std::to_string(rare_labels) + " of its " +
                    std::to_string(rare_labels + static_cast<std::int64_t>(enc.vocabulary.size())) +
                    (rare_labels == 1 ? " labels is" : " labels are") + " in fewer than " +
                    std::to_string(options.min_category_count) + " training rows (" +
                    std::to_string(rare_rows) + " rows): they share the unknown slot (--min-category-count)");
  }
  if (enc.vocabulary.empty()) {
    note(notes, rare_labels > 0 ? "categorical column '" + col.name + "' has no label in " +
                                      std::to_string(options.min_category_count) +
                                      " training rows or more: every row is in its missing or unknown slot"
                                : "categorical column '" + col.name + "' has no values: every row is in its missing slot");
  }
  return enc;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// CategoricalEncoding, FittedPreparation

std::uint32_t auto_category_buckets(std::int64_t labels) {
  constexpr std::int64_t kFewest = std::int64_t{1} << 14, kMost = std::int64_t{1} << 20;
  std::int64_t buckets = kFewest;
  while (buckets < 2 * labels && buckets < kMost) buckets *= 2;
  return static_cast<std::uint32_t>(buckets);
}

std::int32_t CategoricalEncoding::slot_of(const std::string& label) const {
  if (hashed) return static_cast<std::int32_t>(label_hash(label.data(), label.size()) % buckets);
  // The vocabulary is sorted (fit_preparation; bind_preparation checks it).
  const auto it = std::lower_bound(vocabulary.begin(), vocabulary.end(), label);
  if (it == vocabulary.end() || *it != label) return unknown_slot();
  return static_cast<std::int32_t>(it - vocabulary.begin());
}

std::vector<std::uint64_t> CategoricalEncoding::slot_label_hashes() const {
  std::vector<std::uint64_t> h;
  h.reserve(static_cast<std::size_t>(slots()));
  if (hashed) {
    for (std::uint32_t b = 0; b < buckets; ++b) h.push_back(bucket_label_hash(b));
  } else {
    for (const auto& label : vocabulary) h.push_back(label_hash(label.data(), label.size()));
  }
  h.push_back(kMissingLabelHash);
  h.push_back(kUnknownLabelHash);
  return h;
}

std::vector<std::uint64_t> NumericEncoding::bin_label_hashes() const {
  std::vector<std::uint64_t> h;
  h.reserve(bin_edges.size() + 2);
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (std::size_t b = 0; b <= bin_edges.size(); ++b) {
    h.push_back(bin_label_hash(b == 0 ? -kInf : bin_edges[b - 1],
                               b == bin_edges.size() ? kInf : bin_edges[b]));
  }
  h.push_back(kMissingLabelHash);
  return h;
}

std::vector<std::uint64_t> cross_side_hashes(const FittedPreparation& fitted,
                                             const SparseGroup& group, bool side_b) {
  const auto index = static_cast<std::size_t>(side_b ? group.b : group.a);
  return (side_b ? group.b_bins : group.a_bins) ? fitted.numeric.at(index).bin_label_hashes()
                                                : fitted.categorical.at(index).slot_label_hashes();
}

std::int64_t FittedPreparation::dense_features() const {
  return static_cast<std::int64_t>(numeric.size() + indicators.size() + numeric_crosses.size());
}

std::int64_t FittedPreparation::row_major_dense_features() const {
  return static_cast<std::int64_t>(numeric.size() + indicators.size());
}

std::int64_t FittedPreparation::prepared_row_bytes() const {
  return 4 * (dense_features() + 2 * static_cast<std::int64_t>(sparse.size()));
}

bool FittedPreparation::sparse_values_vary() const {
  return std::any_of(sparse.begin(), sparse.end(), [](const SparseGroup& g) { return g.kind == SparseKind::slope; });
}

std::int64_t FittedPreparation::expanded_features() const {
  std::int64_t n = dense_features();
  for (const auto& g : sparse) n += g.slots;
  return n;
}

std::vector<std::string> FittedPreparation::dense_names() const {
  std::vector<std::string> names;
  names.reserve(static_cast<std::size_t>(dense_features()));
  for (const auto& n : numeric) names.push_back(n.name);
  for (const auto i : indicators) names.push_back(numeric[i].name + "_missing");
  for (const auto& [a, b] : numeric_crosses)
    names.push_back(numeric[a].name + "*" + numeric[b].name);
  return names;
}

std::vector<std::int64_t> FittedPreparation::group_offsets() const {
  std::vector<std::int64_t> offsets;
  offsets.reserve(sparse.size() + 1);
  std::int64_t at = dense_features();
  for (const auto& g : sparse) {
    offsets.push_back(at);
    at += g.slots;
  }
  offsets.push_back(at);
  return offsets;
}

// ---------------------------------------------------------------------------------------------
// fit

std::map<std::string, ClipBounds> clipping_columns(const FittedPreparation& fitted, const DataProfile& profile) {
  std::map<std::string, ClipBounds> out;
  for (const NumericEncoding& e : fitted.numeric) {
    const ColumnStats& st = profile.column(e.name).numeric.stats;
    if (st.count > 0 && (e.transform.clip_lo > st.min || e.transform.clip_hi < st.max)) {
      out.emplace(e.name, ClipBounds{e.transform.clip_lo, e.transform.clip_hi});
    }
  }
  return out;
}

ExtremeSpread extreme_spread(const ColumnProfile& column) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  const ColumnStats& st = column.numeric.stats;
  const QuantileSketch& sketch = column.numeric.sketch;
  ExtremeSpread out;
  out.widening = out.jump = out.fence_widening = out.reach = kNaN;
  if (column.type != ColumnType::numeric || st.count == 0 || !(sketch.count() > 0) || !std::isfinite(st.min) ||
      !std::isfinite(st.max)) {
    return out;
  }
  out.min = st.min;
  out.max = st.max;
  out.bulk_lo = sketch.quantile(0.01);
  out.bulk_hi = sketch.quantile(0.99);
  out.q25 = sketch.quantile(0.25);
  out.q75 = sketch.quantile(0.75);
  if (!(out.q75 > out.q25)) return out;
  const double spread = std::sqrt(variance(st));
  if (!std::isfinite(spread)) return out;
  // The raw spread over that of the values clipped to [lo, hi]; NaN where those have none.
  const auto widening = [&](double lo, double hi) {
    const QuantileSketch::Moments clipped = sketch.clipped_moments(static_cast<float>(lo), static_cast<float>(hi));
    const double clipped_spread = std::sqrt(clipped.variance);
    return clipped_spread > 0.0 ? spread / clipped_spread : kNaN;
  };
  out.widening = widening(out.bulk_lo, out.bulk_hi);
  // reach / step, where a step of 0 (tied quantiles) makes any reach infinite.
  const auto ratio = [](double reach, double step) {
    if (step > 0.0) return reach / step;
    return reach > 0.0 ? std::numeric_limits<double>::infinity() : 0.0;
  };
  if (std::isfinite(out.widening)) {
    out.jump = std::max(ratio(sketch.quantile(0.999) - out.bulk_hi, out.bulk_hi - sketch.quantile(0.9)),
                        ratio(out.bulk_lo - sketch.quantile(0.001), sketch.quantile(0.1) - out.bulk_lo));
  }
  const double fence = kFarOutFence * (out.q75 - out.q25);
  out.fence_lo = out.q25 - fence;
  out.fence_hi = out.q75 + fence;
  const double below = sketch.cdf(out.fence_lo), above = 1.0 - sketch.cdf(out.fence_hi);
  out.beyond = below + above;
  out.fence_widening = widening(out.fence_lo, out.fence_hi);
  out.reach = 0.0;
  if (above > 0.0) out.reach = (sketch.quantile(1.0 - above / 2) - out.q75) / fence;
  if (below > 0.0) out.reach = std::max(out.reach, (out.q25 - sketch.quantile(below / 2)) / fence);
  return out;
}

namespace {

// -1, or a whole number whose digits are all nines (9 to 999999999), either sign.
bool looks_like_missing_code(double v) {
  if (v == -1.0) return true;
  double nines = 9.0;
  for (int digits = 1; digits <= 9; ++digits, nines = nines * 10.0 + 9.0) {
    if (std::fabs(v) == nines) return true;
  }
  return false;
}

}  // namespace

std::vector<MissingCode> missing_value_codes(const ColumnProfile& column) {
  std::vector<MissingCode> codes;
  const QuantileSketch& sketch = column.numeric.sketch;
  const double total = sketch.count();
  if (column.type != ColumnType::numeric || !(total > 0.0)) return codes;
  const std::vector<float> points = sketch.points();
  const std::vector<double> weights = sketch.weights();
  if (points.size() < 3) return codes;
  const double low_share = weights.front() / total, high_share = weights.back() / total;
  // The others' quantile q: the sketch's, with the shares of the codes at either end taken out.
  const auto others_quantile = [&](double q, double below, double above) {
    return sketch.quantile(below + q * (1.0 - below - above));
  };
  const auto consider = [&](double value, double share, double below, double above, bool high) {
    if (!looks_like_missing_code(value) || share < kMissingCodeMinShare ||
        share > 1.0 - kMissingCodeMinShare)
      return;
    const double q25 = others_quantile(0.25, below, above),
                 q75 = others_quantile(0.75, below, above);
    if (!(q75 > q25)) return;  // the others a flag or a constant: the code may be a value of theirs
    const double fence = kFarOutFence * (q75 - q25);
    if (high ? value <= q75 + fence : value >= q25 - fence) return;
    codes.push_back(
        {value, share, others_quantile(0.01, below, above), others_quantile(0.99, below, above)});
  };
  // Each side's code is judged by the others with both sides' candidates left out.
  const double below = looks_like_missing_code(points.front()) ? low_share : 0.0;
  const double above = looks_like_missing_code(points.back()) ? high_share : 0.0;
  consider(points.front(), low_share, below, above, false);
  consider(points.back(), high_share, below, above, true);
  return codes;
}

namespace {

// Gross outliers beyond the 1% and 99% quantiles, or beyond the far-out fences.
bool beyond_quantiles(const ExtremeSpread& s) {
  return s.widening >= kExtremeNoteWidening && s.jump >= kExtremeNoteJump && s.beyond <= kExtremeNoteJumpBeyond;
}
bool beyond_fences(const ExtremeSpread& s) {
  return s.fence_widening >= kExtremeNoteWidening && s.reach >= kExtremeNoteReach;
}
// Whether the 1% and 99% quantiles lie in the bulk, inside the far-out fences, so that quantile
// clipping bounds the outliers: not where they are more than 1% of a side's values.
bool quantiles_in_bulk(const ExtremeSpread& s) { return s.bulk_lo >= s.fence_lo && s.bulk_hi <= s.fence_hi; }

}  // namespace

std::string extreme_values_note(const DataProfile& profile, const FittedPreparation& fitted) {
  // By name (not profile.column's scan, once per column): a wide table has tens of thousands.
  std::unordered_map<std::string_view, const ColumnProfile*> by_name;
  for (const ColumnProfile& c : profile.columns) by_name.emplace(c.name, &c);
  struct Far {
    std::string name;
    ExtremeSpread spread;
    bool quantile_fits;  // --clip quantile bounds its outliers
    double widening;     // that of the clip that fits
  };
  std::vector<Far> far;
  for (const NumericEncoding& e : fitted.numeric) {
    // A clipped column (--clip, or --target-transform's default) is bounded already.
    if (std::isfinite(e.transform.clip_lo) || std::isfinite(e.transform.clip_hi)) continue;
    const auto it = by_name.find(e.name);
    if (it == by_name.end()) continue;
    if (!missing_value_codes(*it->second).empty()) continue;  // missing_code_note's
    const ExtremeSpread s = extreme_spread(*it->second);
    if (!beyond_quantiles(s) && !beyond_fences(s)) continue;
    const bool quantile_fits = quantiles_in_bulk(s);
    far.push_back({e.name, s, quantile_fits, quantile_fits ? s.widening : s.fence_widening});
  }
  if (far.empty()) return "";
  std::stable_sort(far.begin(), far.end(), [](const Far& a, const Far& b) { return a.widening > b.widening; });
  const auto number = [](double v, int digits) {
    std::ostringstream o;
    o.precision(digits);
    o << v;
    return o.str();
  };
  const auto range = [&](double lo, double hi) { return number(lo, 4) + " to " + number(hi, 4); };
  const auto percent = [&](double share) { return number(100.0 * share, 2) + "%"; };
  const Far& worst = far.front();
  const ExtremeSpread& w = worst.spread;
  std::string text = "column '" + worst.name + "' has values far outside its bulk: from " + range(w.min, w.max);
  if (worst.quantile_fits) {
    text += ", where 98% of them lie from " + range(w.bulk_lo, w.bulk_hi) + " (its 1% and 99% quantiles)";
  } else {
    text += ", where half of them lie from " + range(w.q25, w.q75) + " (its quartiles) and " + percent(w.beyond) +
            " beyond 3 times their distance from them (" + range(w.fence_lo, w.fence_hi) + ")";
  }
  text += ", and its standard deviation, which standard scaling divides by, is " + number(worst.widening, 3) +
          " times that of its values clipped to those";
  constexpr std::size_t kNamed = 3;
  const std::size_t named = std::min(far.size(), kNamed);
  for (std::size_t k = 1; k < named; ++k) {
    const ExtremeSpread& s = far[k].spread;
    text += std::string(k == 1 ? "; likewise" : (k + 1 == named && far.size() == named ? " and" : ",")) + " '" +
            far[k].name + "' (" + range(s.min, s.max) + ", " +
            (far[k].quantile_fits ? "98% from " + range(s.bulk_lo, s.bulk_hi)
                                  : percent(s.beyond) + " beyond " + range(s.fence_lo, s.fence_hi)) +
            ": " + number(far[k].widening, 3) + " times)";
  }
  if (far.size() > named) text += " and " + std::to_string(far.size() - named) + " more numeric column" +
                                  (far.size() - named == 1 ? "" : "s");
  text += ". If such values are errors or noise rather than real tails, ";
  // One remedy for every named column: quantile clipping where it bounds them all, as it costs least
  // where a tail is real; else fences, which bound outliers of up to a quarter of the values.
  const auto unbounded = std::find_if(far.begin(), far.end(), [](const Far& f) { return !f.quantile_fits; });
  if (unbounded == far.end()) {
    return text + "--clip quantile clips each numeric column to its 1% and 99% training quantiles (--clip "
                  "quantile,COL=none leaves out a column whose tail is real)";
  }
  return text + "--clip iqr clips each numeric column to its quartiles +- 1.5 times their distance (Tukey's "
                "fences), which stay in the bulk where up to a quarter of the values are outliers (the 1% and 99% "
                "quantiles of '" + unbounded->name + "' lie among them; --clip iqr,COL=none leaves out a column "
                "whose tail is real)";
}

std::string missing_code_note(const DataProfile& profile, const FittedPreparation& fitted) {
  std::unordered_map<std::string_view, const ColumnProfile*> by_name;
  for (const ColumnProfile& c : profile.columns) by_name.emplace(c.name, &c);
  struct Coded {
    std::string name;
    std::vector<MissingCode> codes;
    double share = 0.0;  // of both codes
  };
  std::vector<Coded> coded;
  for (const NumericEncoding& e : fitted.numeric) {
    const auto it = by_name.find(e.name);
    if (it == by_name.end()) continue;
    std::vector<MissingCode> codes = missing_value_codes(*it->second);
    if (codes.empty()) continue;
    double share = 0.0;
    for (const MissingCode& c : codes) share += c.share;
    coded.push_back({e.name, std::move(codes), share});
  }
  if (coded.empty()) return "";
  std::stable_sort(coded.begin(), coded.end(),
                   [](const Coded& a, const Coded& b) { return a.share > b.share; });
  const auto number = [](double v, int digits) {
    std::ostringstream o;
    o.precision(digits);
    o << v;
    return o.str();
  };
  const auto percent = [&](double share) { return number(100.0 * share, 2) + "%"; };
  // "999 in 10% of its values" (and "-999 in 2%"), "far above" / "far below" / "far outside".
  const auto codes_text = [&](const Coded& c) {
    std::string text;
    for (std::size_t k = 0; k < c.codes.size(); ++k) {
      text +=
          (k ? " and " : "") + number(c.codes[k].value, 10) + " in " + percent(c.codes[k].share);
    }
    return text;
  };
  const auto side = [](const Coded& c) {
    if (c.codes.size() > 1) return std::string("far outside");
    return std::string(c.codes[0].value > c.codes[0].others_hi ? "far above" : "far below");
  };
  const auto others = [&](const MissingCode& m) {
    return number(m.others_lo, 4) + " to " + number(m.others_hi, 4);
  };
  const Coded& first = coded.front();
  std::string text =
      "column '" + first.name + "' holds " + codes_text(first) + " of its values, " + side(first) +
      " the others (98% of them from " + others(first.codes[0]) +
      "): a code for a missing value, as exports write one? Read as a number, it widens the "
      "spread that standard scaling divides by, and the model fits it at the other rows' cost";
  constexpr std::size_t kNamed = 3;
  const std::size_t named = std::min(coded.size(), kNamed);
  for (std::size_t k = 1; k < named; ++k) {
    text += std::string(k == 1 ? "; likewise"
                               : (k + 1 == named && coded.size() == named ? " and" : ",")) +
            " '" + coded[k].name + "' (" + codes_text(coded[k]) + ")";
  }
  if (coded.size() > named) {
    text += " and " + std::to_string(coded.size() - named) + " more numeric column" +
            (coded.size() - named == 1 ? "" : "s");
  }
  // Every code of every coded column, once each, in increasing order.
  std::vector<double> values;
  for (const Coded& c : coded)
    for (const MissingCode& m : c.codes) values.push_back(m.value);
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  std::string list;
  for (const double v : values) list += (list.empty() ? "" : ",") + number(v, 10);
  return text + ". If " + (values.size() == 1 ? "it means" : "they mean") +
         " missing, import the CSV file again with --na-values " + list +
         " (it applies to every column), or write NaN for " + (values.size() == 1 ? "it" : "them") +
         " in the HDF5 file: missing values are imputed (--impute), and --missing-indicators gives "
         "them a feature "
         "of their own";
}

FittedPreparation fit_preparation(const DataProfile& profile, const PreparationOptions& options,
                                  std::vector<std::string>* notes,
                                  const std::map<std::string, ClippedMoments>* clipped_moments) {
  if (options.hash_buckets < 1 || options.hash_buckets > kMaxHashBuckets) {
    throw InputError("hash buckets must be between 1 and " + std::to_string(kMaxHashBuckets) +
                     " (got " + std::to_string(options.hash_buckets) + ")");
  }
  if (options.category_buckets > kMaxHashBuckets) {
    throw InputError("category buckets must be between 1 and " + std::to_string(kMaxHashBuckets) +
                     " (0: per column) (got " + std::to_string(options.category_buckets) + ")");
  }
  if (options.max_categories < 0) {
    throw InputError("max categories must not be negative (got " +
                     std::to_string(options.max_categories) + ")");
  }
  if (options.min_category_count < 1) {
    throw InputError("min category count must be at least 1 (got " +
                     std::to_string(options.min_category_count) + ")");
  }

  std::vector<std::string> all_names;
  std::unordered_map<std::string, std::size_t> by_name;
  for (std::size_t c = 0; c < profile.columns.size(); ++c) {
    all_names.push_back(profile.columns[c].name);
    by_name.emplace(profile.columns[c].name, c);
  }
  const auto find = [&](const std::string& name) -> const ColumnProfile* {
    const auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : &profile.columns[it->second];
  };

  FittedPreparation fitted;
  fitted.label = options.label;
  fitted.hash_buckets = options.hash_buckets;
  if (!options.label.empty() && !find(options.label)) {
    throw InputError("label column '" + options.label + "' does not exist" +
                     did_you_mean(options.label, all_names) + "; columns: " + name_list(all_names));
  }

  // Columns left out of the features: a sample weight (checked by its reader) or `--drop`'s.
  for (const auto& name : options.exclude) {
    if (!find(name)) {
      throw InputError("column '" + name + "' given to --drop does not exist" +
                       did_you_mean(name, all_names, TypedIn::list) +
                       "; columns: " + name_list(all_names));
    }
  }
  const auto excluded = [&](const std::string& name) {
    return std::find(options.exclude.begin(), options.exclude.end(), name) != options.exclude.end();
  };

  check_column_options("default preparation", options.defaults);
  for (const auto& [name, p] : options.per_column) {
    const ColumnProfile* col = find(name);
    if (!col) {
      throw InputError("preparation option for column '" + name + "': no such column" +
                       did_you_mean(name, all_names, TypedIn::list) + "; columns: " + name_list(all_names));
    }
    if (name == options.label) {
      throw InputError("preparation option for column '" + name +
                       "': it is the label, which is passed through untouched");
    }
    if (excluded(name)) {
      throw InputError("preparation option for column '" + name + "': it is not a feature (--drop or --weight)");
    }
    if (col->type == ColumnType::categorical) {
      throw InputError(
          "preparation option for column '" + name +
          "': it is categorical; imputation, clipping, scaling and bins apply to numeric columns only");
    }
    check_column_options("column '" + name + "'", p);
  }

  // The categorical features are fitted first, on every core (counting a column's million labels
  // takes a while), the columns of most labels first; each one's notes are said in column order
  // below, where the loop meets it.
  struct CategoricalFit {
    CategoricalEncoding encoding;
    std::vector<std::string> notes;
  };
  std::vector<const ColumnProfile*> categorical_columns;
  {
    std::unordered_set<std::string> named;
    for (const auto& col : profile.columns) {
      if (col.type != ColumnType::categorical ||
          (!options.label.empty() && col.name == options.label) || excluded(col.name) ||
          !named.insert(col.name).second) {
        continue;
      }
      categorical_columns.push_back(&col);
    }
  }
  std::vector<CategoricalFit> categorical_fits(categorical_columns.size());
  {
    std::vector<std::size_t> order(categorical_columns.size());
    std::int64_t labels = 0;
    for (std::size_t i = 0; i < order.size(); ++i) {
      order[i] = i;
      labels += static_cast<std::int64_t>(categorical_columns[i]->categorical.labels.size());
    }
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return categorical_columns[a]->categorical.labels.size() >
             categorical_columns[b]->categorical.labels.size();
    });
    std::vector<std::exception_ptr> failed(order.size());
    const auto columns = static_cast<std::int64_t>(order.size());
#pragma omp parallel for schedule(dynamic, 1) if (columns > 1 && labels >= kTeamMinItems)
    for (std::int64_t k = 0; k < columns; ++k) {
      const std::size_t i = order[static_cast<std::size_t>(k)];
      try {
        CategoricalFit& fit = categorical_fits[i];
        fit.encoding =
            fit_categorical(*categorical_columns[i], options, notes ? &fit.notes : nullptr);
      } catch (...) {
        failed[i] = std::current_exception();
      }
    }
    for (const std::exception_ptr& e : failed) {
      if (e) std::rethrow_exception(e);
    }
  }

  // Features in profile column order; index of each in fitted.numeric / fitted.categorical.
  std::unordered_map<std::string, std::int32_t> numeric_index, categorical_index;
  for (const auto& col : profile.columns) {
    if (!options.label.empty() && col.name == options.label) continue;
    if (excluded(col.name)) continue;
    if (col.type == ColumnType::numeric) {
      if (numeric_index.count(col.name)) continue;  // a repeated name: the first column wins
      const ColumnPreparation& p = options.column(col.name);
      NumericEncoding enc;
      enc.name = col.name;
      const ClippedMoments* measured = nullptr;
      if (clipped_moments) {
        const auto m = clipped_moments->find(col.name);
        if (m != clipped_moments->end()) measured = &m->second;
      }
      enc.transform = fit_numeric(col, p, measured, notes);
      enc.has_missing = col.numeric.stats.missing > 0;
      note_mostly_missing(col, p, options.missing_indicators, notes);
      note_id_like_integers(col, notes);
      if (p.bins > 0) {
        enc.binned = true;
        QuantileBins made_bins = quantile_bin_edges(col, p.bins);
        enc.bin_edges = std::move(made_bins.edges);
        if (col.numeric.stats.count > 0 && std::isfinite(col.numeric.stats.min) &&
            std::isfinite(col.numeric.stats.max)) {
          enc.bin_min = static_cast<float>(col.numeric.stats.min);
          enc.bin_max = static_cast<float>(col.numeric.stats.max);
        }
        if (static_cast<std::int32_t>(enc.bin_edges.size()) + 1 < p.bins) {
          const std::size_t made = enc.bin_edges.size() + 1;
          std::string why;
          const auto reason = [&why](const std::string& r) {
            why += (why.empty() ? "" : "; ") + r;
          };
          const std::int64_t values = col.numeric.stats.count;
          if (made_bins.capped < p.bins) {
            reason(values == 0 ? "it has no values"
                               : "it has only " + std::to_string(values) +
                                     (values == 1 ? " value" : " values"));
          }
          const std::string sketch = made_bins.full_sketch ? std::to_string(made_bins.full_sketch) +
                                                                 "-point quantile sketch"
                                                           : "";
          if (made_bins.coincided > 0) {
            reason(std::string(values < p.bins ? "where they repeat" : "where its values repeat") +
                   (sketch.empty() ? "" : " or its " + sketch + " cannot tell them apart") +
                   ", quantiles coincide");
          }
          if (made_bins.empty > 0) {
            reason(sketch.empty() ? "a bin between neighbouring values would hold no row"
                                  : "a bin between neighbouring points of its " + sketch +
                                        " could hold no row");
          }
          note(notes, "column '" + col.name + "': " + std::to_string(made) +
                          (made == 1 ? " bin" : " bins") + " of the " + std::to_string(p.bins) +
                          " asked (" + why + ")");
        }
      }
      numeric_index.emplace(col.name, static_cast<std::int32_t>(fitted.numeric.size()));
      fitted.numeric.push_back(std::move(enc));
    } else {
      if (categorical_index.count(col.name)) continue;
      CategoricalFit& fit = categorical_fits[fitted.categorical.size()];
      for (std::string& text : fit.notes) note(notes, std::move(text));
      categorical_index.emplace(col.name, static_cast<std::int32_t>(fitted.categorical.size()));
      fitted.categorical.push_back(std::move(fit.encoding));
    }
  }

  if (options.missing_indicators) {
    for (std::size_t i = 0; i < fitted.numeric.size(); ++i) {
      if (fitted.numeric[i].has_missing) fitted.indicators.push_back(static_cast<std::int32_t>(i));
    }
  }

  for (std::size_t j = 0; j < fitted.categorical.size(); ++j) {
    SparseGroup g;
    g.kind = SparseKind::one_hot;
    g.name = fitted.categorical[j].name;
    g.a = static_cast<std::int32_t>(j);
    g.slots = static_cast<std::uint32_t>(fitted.categorical[j].slots());
    fitted.sparse.push_back(std::move(g));
  }
  for (std::size_t i = 0; i < fitted.numeric.size(); ++i) {
    const NumericEncoding& n = fitted.numeric[i];
    if (!n.binned) continue;
    SparseGroup g;
    g.kind = SparseKind::bins;
    g.name = n.name + "#bins";
    if (find(g.name)) {
      // `lathe prepare` writes the group as a column of that name, and a report could not tell them apart.
      throw InputError("column '" + n.name + "' cannot be binned: its bins would be named '" + g.name +
                       "', which is already a column; rename that column or leave '" + n.name + "' unbinned");
    }
    g.a = static_cast<std::int32_t>(i);
    g.slots = static_cast<std::uint32_t>(n.bin_edges.size() + 2);
    fitted.sparse.push_back(std::move(g));
  }

  // Crosses. Numeric pairs are unordered (a*b == b*a) and kept once.
  std::set<std::pair<std::int32_t, std::int32_t>> numeric_seen, categorical_seen, slope_seen;
  const auto add_numeric_cross = [&](std::int32_t a, std::int32_t b) {
    if (numeric_seen.insert({std::min(a, b), std::max(a, b)}).second)
      fitted.numeric_crosses.push_back({a, b});
  };
  if (options.cross_all) {
    const auto n = static_cast<std::int32_t>(fitted.numeric.size());
    for (std::int32_t a = 0; a < n; ++a) {
      for (std::int32_t b = a + 1; b < n; ++b) add_numeric_cross(a, b);
    }
    if (n < 2) {
      note(notes, "--cross all makes no cross: it pairs the numeric features, and there " +
                      std::string(n == 1 ? "is one" : "are none") +
                      " (name categorical pairs to cross them: --cross a*b)");
    }
  }
  std::vector<SparseGroup> categorical_crosses, slopes;
  for (const auto& cross : options.crosses) {
    // The feature's name, and the cross as --cross takes it back (a '*' in a name escaped).
    const std::string feature_name = cross.a + "*" + cross.b;
    const std::string text = listed_cross({cross.a, cross.a_column}, {cross.b, cross.b_column});
    // A side is a numeric column, a categorical column, or a numeric column's bins ("x#bins").
    enum class Side { numeric, categorical, bins };
    struct Ref {
      Side side;
      std::int32_t index;
    };
    const auto check_feature = [&](const std::string& name) {
      if (!options.label.empty() && name == options.label) {
        throw InputError("cross '" + text + "': column '" + name +
                         "' is the label and cannot be crossed");
      }
      if (excluded(name)) {
        throw InputError("cross '" + text + "': column '" + name + "' is not a feature (--drop or --weight)");
      }
    };
    const auto resolve = [&](const std::string& name, bool column_only) -> Ref {
      check_feature(name);
      if (const auto it = numeric_index.find(name); it != numeric_index.end())
        return {Side::numeric, it->second};
      if (const auto it = categorical_index.find(name); it != categorical_index.end())
        return {Side::categorical, it->second};
      constexpr std::string_view kBins = "#bins";
      if (!column_only && name.size() > kBins.size() && name.ends_with(kBins)) {
        const std::string column = name.substr(0, name.size() - kBins.size());
        check_feature(column);
        if (const auto it = numeric_index.find(column); it != numeric_index.end()) {
          if (!fitted.numeric[static_cast<std::size_t>(it->second)].binned) {
            throw InputError("cross '" + text + "': column '" + column +
                             "' has no quantile bins to cross: bin it (--bins " + column + "=N)");
          }
          return {Side::bins, it->second};
        }
        if (categorical_index.count(column)) {
          throw InputError("cross '" + text + "': column '" + column +
                           "' is categorical and has no quantile bins: cross '" + column + "' itself");
        }
      }
      throw InputError("cross '" + text + "': unknown column '" + name + "'" +
                       did_you_mean(name, all_names, TypedIn::cross) +
                       "; columns: " + name_list(all_names, 30, TypedIn::cross));
    };
    const Ref a = resolve(cross.a, cross.a_column), b = resolve(cross.b, cross.b_column);
    if (a.side == Side::numeric && b.side == Side::numeric) {
      add_numeric_cross(a.index, b.index);
    } else if (a.side != Side::numeric && b.side != Side::numeric) {
      if (a.side == b.side && a.index == b.index) {
        throw InputError("cross '" + text + "': " +
                         (a.side == Side::bins
                              ? "a column's bins crossed with themselves are its bins group"
                              : "a categorical column crossed with itself is its own one-hot"));
      }
      // Each side once, bins (-1 - numeric index) apart from categorical columns; a*b == b*a.
      const auto side_id = [](const Ref& r) { return r.side == Side::bins ? -1 - r.index : r.index; };
      const std::int32_t ia = side_id(a), ib = side_id(b);
      if (!categorical_seen.insert({std::min(ia, ib), std::max(ia, ib)}).second) continue;
      SparseGroup g;
      g.kind = SparseKind::categorical_cross;
      g.name = feature_name;
      g.a = a.index;
      g.b = b.index;
      g.a_bins = a.side == Side::bins;
      g.b_bins = b.side == Side::bins;
      g.slots = options.hash_buckets;
      categorical_crosses.push_back(std::move(g));
    } else if (a.side == Side::bins || b.side == Side::bins) {
      const std::string& binned = a.side == Side::bins ? cross.a : cross.b;
      const std::string& numeric = a.side == Side::bins ? cross.b : cross.a;
      throw InputError("cross '" + text + "': the bins '" + binned +
                       "' cross with a categorical column or another column's bins, not with the " +
                       "numeric column '" + numeric + "' (cross '" + numeric +
                       "' with a categorical column for a slope per category)");
    } else {
      const std::int32_t num = a.side == Side::categorical ? b.index : a.index;
      const std::int32_t cat = a.side == Side::categorical ? a.index : b.index;
      if (!slope_seen.insert({num, cat}).second) continue;
      SparseGroup g;
      g.kind = SparseKind::slope;
      g.name = feature_name;
      g.a = num;
      g.b = cat;
      g.slots = static_cast<std::uint32_t>(fitted.categorical[cat].slots());
      slopes.push_back(std::move(g));
    }
  }
  for (auto& g : categorical_crosses) fitted.sparse.push_back(std::move(g));
  for (auto& g : slopes) fitted.sparse.push_back(std::move(g));
  return fitted;
}

// ---------------------------------------------------------------------------------------------
// bind

namespace {

// Which categorical columns a categorical cross reads as a side (by their label hashes: bound
// slot_hashes), 1 each; out-of-range sides are left for build_prepare_tables to refuse.
std::vector<char> crossed_categoricals(const FittedPreparation& fitted) {
  std::vector<char> crossed(fitted.categorical.size(), 0);
  const auto mark = [&](std::int32_t i, bool bins) {
    if (!bins && i >= 0 && static_cast<std::size_t>(i) < crossed.size()) crossed[static_cast<std::size_t>(i)] = 1;
  };
  for (const SparseGroup& g : fitted.sparse) {
    if (g.kind != SparseKind::categorical_cross) continue;
    mark(g.a, g.a_bins);
    mark(g.b, g.b_bins);
  }
  return crossed;
}

}  // namespace

BoundPreparation bind_preparation(const FittedPreparation& fitted,
                                  const std::vector<ColumnInfo>& input_columns) {
  BoundPreparation bound;
  bound.fitted = &fitted;
  std::unordered_map<std::string, std::int32_t> by_name;
  std::vector<std::string> names;
  for (std::size_t c = 0; c < input_columns.size(); ++c) {
    by_name.emplace(input_columns[c].name, static_cast<std::int32_t>(c));
    names.push_back(input_columns[c].name);
  }
  const auto locate = [&](const std::string& name, ColumnType type) {
    const auto it = by_name.find(name);
    if (it == by_name.end()) {
      throw InputError(
          std::string(column_type_name(type)) + " column '" + name +
          "', needed by the preparation, is not in the input" + did_you_mean(name, names) + "; columns: " +
          name_list(names));
    }
    const ColumnInfo& info = input_columns[static_cast<std::size_t>(it->second)];
    if (info.type != type) {
      throw InputError("column '" + name + "' was " + column_type_name(type) +
                       " when the preparation was fitted but is " + column_type_name(info.type) +
                       " in the input");
    }
    return it->second;
  };

  for (const auto& n : fitted.numeric)
    bound.numeric_input.push_back(locate(n.name, ColumnType::numeric));
  std::int64_t labels = 0;
  for (const auto& enc : fitted.categorical) {
    const std::int32_t c = locate(enc.name, ColumnType::categorical);
    bound.categorical_input.push_back(c);
    if (!enc.hashed) {
      for (std::size_t i = 1; i < enc.vocabulary.size(); ++i) {
        if (!(enc.vocabulary[i - 1] < enc.vocabulary[i])) {
          throw Error("the vocabulary of column '" + enc.name +
                      "' is not sorted and unique (a corrupt preparation)");
        }
      }
    } else if (enc.buckets < 1) {
      throw Error("column '" + enc.name + "' is hashed into 0 buckets (a corrupt preparation)");
    }
    labels += static_cast<std::int64_t>(input_columns[static_cast<std::size_t>(c)].categories.size() + enc.slots());
  }
  // Each column's slot of every file label and, where a categorical cross reads them, the label
  // hash of every slot (8 bytes a slot: 69 MB for 26 columns of ids hashed into 8.6M buckets, read
  // by nothing when nothing is crossed). The columns on every core: on those 26 columns (5M
  // labels) one thread took 0.1 s.
  const auto columns = static_cast<std::int64_t>(fitted.categorical.size());
  const std::vector<char> crossed = crossed_categoricals(fitted);
  bound.remap.resize(fitted.categorical.size());
  bound.slot_hashes.resize(fitted.categorical.size());
  std::vector<std::exception_ptr> failed(fitted.categorical.size());
#pragma omp parallel for schedule(dynamic, 1) if (columns > 1 && labels >= kTeamMinItems)
  for (std::int64_t k = 0; k < columns; ++k) {
    try {
      const CategoricalEncoding& enc = fitted.categorical[static_cast<std::size_t>(k)];
      const auto& file_labels = input_columns[static_cast<std::size_t>(bound.categorical_input[k])].categories;
      std::vector<std::int32_t>& remap = bound.remap[static_cast<std::size_t>(k)];
      remap.reserve(file_labels.size());
      for (const auto& label : file_labels) remap.push_back(enc.slot_of(label));
      if (crossed[static_cast<std::size_t>(k)]) bound.slot_hashes[static_cast<std::size_t>(k)] = enc.slot_label_hashes();
    } catch (...) {  // out of memory
      failed[static_cast<std::size_t>(k)] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : failed) {
    if (e) std::rethrow_exception(e);
  }
  if (!fitted.label.empty()) {
    const auto it = by_name.find(fitted.label);
    bound.label_input = it == by_name.end() ? -1 : it->second;
  }
  return bound;
}

// ---------------------------------------------------------------------------------------------
// apply

void build_prepare_tables(const BoundPreparation& bound, HostPrepareTables& out) {
  if (!bound.fitted) throw Error("apply_preparation: the binding has no fitted preparation");
  const FittedPreparation& f = *bound.fitted;
  if (bound.numeric_input.size() != f.numeric.size() ||
      bound.categorical_input.size() != f.categorical.size() ||
      bound.remap.size() != f.categorical.size() ||
      bound.slot_hashes.size() != f.categorical.size()) {
    throw Error("apply_preparation: the binding does not match its fitted preparation");
  }
  out.transform.clear();
  for (const auto& n : f.numeric) out.transform.push_back(n.transform);
  out.numeric_input = bound.numeric_input;
  out.indicator = f.indicators;
  out.cross.clear();
  for (const auto& [a, b] : f.numeric_crosses) {
    out.cross.push_back(a);
    out.cross.push_back(b);
  }
  const auto numeric_count = static_cast<std::int32_t>(f.numeric.size());
  const auto categorical_count = static_cast<std::int32_t>(f.categorical.size());
  const auto check_index = [](std::int32_t i, std::int32_t n, const char* what) {
    if (i < 0 || i >= n)
      throw Error(std::string("apply_preparation: ") + what +
                  " index out of range (a corrupt preparation)");
  };
  for (const auto i : out.indicator) check_index(i, numeric_count, "indicator");
  for (const auto i : out.cross) check_index(i, numeric_count, "cross");
  out.categorical.clear();
  const std::vector<char> crossed = crossed_categoricals(f);
  for (std::int32_t j = 0; j < categorical_count; ++j) {
    const CategoricalEncoding& enc = f.categorical[static_cast<std::size_t>(j)];
    const bool hashes_wanted = crossed[static_cast<std::size_t>(j)] != 0;
    if (hashes_wanted && static_cast<std::int64_t>(bound.slot_hashes[j].size()) != enc.slots()) {
      throw Error("apply_preparation: slot hashes of column '" + enc.name +
                  "' do not match its slots");
    }
    CategoricalTable t;
    t.input = bound.categorical_input[j];
    t.remap_size = static_cast<std::int32_t>(bound.remap[j].size());
    t.missing_slot = enc.missing_slot();
    t.unknown_slot = enc.unknown_slot();
    t.remap = bound.remap[j].data();
    t.slot_hash = hashes_wanted ? bound.slot_hashes[j].data() : nullptr;
    out.categorical.push_back(t);
  }
  // The bins of every binned column, read by its bins group and by the crosses of its bins.
  out.bins.assign(f.numeric.size(), BinsTable{});
  out.bin_edge.clear();
  out.bin_hash.clear();
  for (std::size_t i = 0; i < f.numeric.size(); ++i) {
    const NumericEncoding& n = f.numeric[i];
    if (!n.binned) continue;
    BinsTable& b = out.bins[i];
    b.edge_begin = static_cast<std::int32_t>(out.bin_edge.size());
    b.edges = static_cast<std::int32_t>(n.bin_edges.size());
    b.hash_begin = static_cast<std::int32_t>(out.bin_hash.size());
    out.bin_edge.insert(out.bin_edge.end(), n.bin_edges.begin(), n.bin_edges.end());
    const std::vector<std::uint64_t> hashes = n.bin_label_hashes();
    out.bin_hash.insert(out.bin_hash.end(), hashes.begin(), hashes.end());
  }
  const auto check_binned = [&](std::int32_t i, const std::string& group) {
    check_index(i, numeric_count, "bins");
    if (!f.numeric[static_cast<std::size_t>(i)].binned) {
      throw Error("apply_preparation: group '" + group + "' reads the bins of unbinned column '" +
                  f.numeric[static_cast<std::size_t>(i)].name + "' (a corrupt preparation)");
    }
  };
  out.group.clear();
  for (const auto& g : f.sparse) {
    SparseGroupTable t;
    t.kind = g.kind;
    t.a = g.a;
    t.b = g.b;
    if (g.kind == SparseKind::bins) {
      check_binned(g.a, g.name);
      if (g.slots != f.numeric[static_cast<std::size_t>(g.a)].bin_edges.size() + 2) {
        throw Error("apply_preparation: the bins of column '" + g.name + "' do not match its slots");
      }
    } else if (g.kind == SparseKind::slope) {
      check_index(g.a, numeric_count, "slope");
      check_index(g.b, categorical_count, "categorical group");
    } else if (g.kind == SparseKind::categorical_cross) {
      t.a_bins = g.a_bins ? 1 : 0;
      t.b_bins = g.b_bins ? 1 : 0;
      if (g.a_bins) {
        check_binned(g.a, g.name);
      } else {
        check_index(g.a, categorical_count, "categorical group");
      }
      if (g.b_bins) {
        check_binned(g.b, g.name);
      } else {
        check_index(g.b, categorical_count, "categorical group");
      }
    } else {
      check_index(g.a, categorical_count, "categorical group");
    }
    out.group.push_back(t);
  }

  PrepareTables& t = out.tables;
  t.transform = out.transform.data();
  t.numeric_input = out.numeric_input.data();
  t.numeric = numeric_count;
  t.indicator = out.indicator.data();
  t.indicators = static_cast<std::int32_t>(out.indicator.size());
  t.cross = out.cross.data();
  t.crosses = static_cast<std::int32_t>(f.numeric_crosses.size());
  t.categorical = out.categorical.data();
  t.categoricals = categorical_count;
  t.group = out.group.data();
  t.groups = static_cast<std::int32_t>(out.group.size());
  t.bins = out.bins.data();
  t.bin_edge = out.bin_edge.data();
  t.bin_hash = out.bin_hash.data();
  t.hash_buckets = f.hash_buckets == 0 ? 1u : f.hash_buckets;
}

namespace {

void check_input(const BoundPreparation& bound, const ColumnBlockView& input) {
  std::int32_t needed = bound.label_input;
  for (const auto c : bound.numeric_input) needed = std::max(needed, c);
  for (const auto c : bound.categorical_input) needed = std::max(needed, c);
  if (needed >= input.columns) {
    throw Error("apply_preparation: the block has " + std::to_string(input.columns) +
                " columns but the binding reads column " + std::to_string(needed));
  }
  if (input.rows < 0) throw Error("apply_preparation: negative row count");
}

void size_output(const BoundPreparation& bound, std::int64_t rows, PreparedBlock& out) {
  const FittedPreparation& f = *bound.fitted;
  out.rows = rows;
  out.dense.resize(static_cast<std::size_t>(f.dense_features() * rows));
  out.slot.resize(f.sparse.size() * static_cast<std::size_t>(rows));
  out.value.resize(f.sparse.size() * static_cast<std::size_t>(rows));
  out.label.resize(bound.label_input >= 0 ? static_cast<std::size_t>(rows) : 0);
}

// The dense row loops are compiled for AVX2 and the baseline ISA (runtime/vector_clones.h): the
// conversions to and from double cost 4x more in SSE2, which makes the baseline build compute-bound
// while the AVX2 one runs at memory speed.
LATHE_VECTOR_CLONES void dense_run(const DenseFeature& d, float* __restrict__ out,
                                   std::int64_t begin, std::int64_t end) {
  const float* __restrict__ a = d.a;
  switch (d.kind) {  // one loop per kind, each a branch-free (vectorized) stream
    case DenseKind::numeric: {
      const NumericTransform t = d.ta;
      for (std::int64_t r = begin; r < end; ++r) out[r] = prepare_numeric(a[r], t);
      break;
    }
    case DenseKind::indicator:
      for (std::int64_t r = begin; r < end; ++r) out[r] = missing_indicator(a[r]);
      break;
    default: {
      const DenseFeature local = d;
      for (std::int64_t r = begin; r < end; ++r) out[r] = dense_value(local, r);
      break;
    }
  }
}

LATHE_VECTOR_CLONES void sparse_run(const SparseFeature& s, std::int32_t* __restrict__ slot,
                                    float* __restrict__ value, std::int64_t begin,
                                    std::int64_t end) {
  const SparseFeature local = s;
  switch (local.kind) {  // one loop per kind, as in dense_run
    case SparseKind::one_hot:
      for (std::int64_t r = begin; r < end; ++r) sparse_entry(local, r, slot[r], value[r]);
      break;
    case SparseKind::categorical_cross:
      for (std::int64_t r = begin; r < end; ++r) sparse_entry(local, r, slot[r], value[r]);
      break;
    case SparseKind::bins:
      for (std::int64_t r = begin; r < end; ++r) sparse_entry(local, r, slot[r], value[r]);
      break;
    default:
      for (std::int64_t r = begin; r < end; ++r) sparse_entry(local, r, slot[r], value[r]);
      break;
  }
}

// The CPU reference: each (output column, row tile) pair is one work item, so both wide and tall
// blocks use every core; within an item the descriptor is resolved once and the row loop is the
// shared formula. Tiles keep each item's streams (one or two inputs, one or two outputs) short.
void apply_preparation_cpu(const BoundPreparation& bound, const ColumnBlockView& input,
                           PreparedBlock& out) {
  HostPrepareTables host;
  build_prepare_tables(bound, host);
  const PrepareTables& t = host.tables;
  const std::int64_t rows = input.rows;
  const std::int64_t dense = t.dense_features();
  const std::int64_t outputs = dense + t.groups;
  constexpr std::int64_t kTileRows = 16384;
  const std::int64_t tiles = (rows + kTileRows - 1) / kTileRows;
  const float* values = input.values;
  // Dynamic: items differ in cost (a hashed cross costs more than a scaled column), and a core
  // busy with something else must not hold up the block.
#pragma omp parallel for schedule(dynamic, 4)
  for (std::int64_t item = 0; item < outputs * tiles; ++item) {
    const std::int64_t f = item / tiles;
    const std::int64_t begin = (item % tiles) * kTileRows;
    const std::int64_t end = std::min(rows, begin + kTileRows);
    if (f < dense) {
      dense_run(dense_feature(t, values, rows, f), out.dense.data() + f * rows, begin, end);
    } else {
      const std::int64_t g = f - dense;
      sparse_run(sparse_feature(t, values, rows, static_cast<std::int32_t>(g)),
                 out.slot.data() + g * rows, out.value.data() + g * rows, begin, end);
    }
  }
}

}  // namespace

void apply_preparation(const DeviceContext& ctx, const BoundPreparation& bound,
                       const ColumnBlockView& input, PreparedBlock& out) {
  if (!bound.fitted) throw Error("apply_preparation: the binding has no fitted preparation");
  check_input(bound, input);
  size_output(bound, input.rows, out);
  if (bound.label_input >= 0 && input.rows > 0) {
    std::memcpy(out.label.data(), input.column(bound.label_input),
                static_cast<std::size_t>(input.rows) * sizeof(float));
  }
  if (input.rows == 0) return;
  if (ctx.is_cuda()) {
    apply_preparation_cuda(ctx.cuda(), bound, input, out);
  } else {
    apply_preparation_cpu(bound, input, out);
  }
}

TilePreparation::TilePreparation(const BoundPreparation& bound)
    : bound_(&bound), tables_(std::make_unique<HostPrepareTables>()) {
  if (!bound.fitted) throw Error("apply_preparation: the binding has no fitted preparation");
  build_prepare_tables(bound, *tables_);
}

TilePreparation::~TilePreparation() = default;

void TilePreparation::check(const ColumnBlockView& input) const { check_input(*bound_, input); }

void TilePreparation::prepare(const ColumnBlockView& input, std::int64_t begin, std::int64_t end,
                              PreparedBlock& tile) const {
  const std::int64_t n = std::max<std::int64_t>(0, std::min(end, input.rows) - begin);
  size_output(*bound_, n, tile);
  if (n == 0) return;
  if (bound_->label_input >= 0) {
    std::memcpy(tile.label.data(), input.column(bound_->label_input) + begin,
                static_cast<std::size_t>(n) * sizeof(float));
  }
  // The descriptors address the block's columns from row `begin` on (stride: the block's rows);
  // the tile's own columns have stride n.
  const PrepareTables& t = tables_->tables;
  const float* values = input.values + begin;
  for (std::int64_t f = 0; f < t.dense_features(); ++f) {
    dense_run(dense_feature(t, values, input.rows, f), tile.dense.data() + f * n, 0, n);
  }
  for (std::int32_t g = 0; g < t.groups; ++g) {
    sparse_run(sparse_feature(t, values, input.rows, g), tile.slot.data() + g * n,
               tile.value.data() + g * n, 0, n);
  }
}

// ---------------------------------------------------------------------------------------------
// materialize

void materialize_expanded(const DeviceContext& ctx, const FittedPreparation& fitted,
                          const PreparedBlock& block, std::vector<float>& out) {
  const std::int64_t rows = block.rows;
  const std::int64_t width = fitted.expanded_features();
  if (block.dense.size() != static_cast<std::size_t>(fitted.dense_features() * rows) ||
      block.slot.size() != fitted.sparse.size() * static_cast<std::size_t>(rows) ||
      block.value.size() != block.slot.size()) {
    throw Error("materialize_expanded: the block does not match the preparation");
  }
  if (rows > 0 && width > (std::int64_t{1} << 31) / rows) {
    throw InputError(
        "materialize_expanded: " + std::to_string(rows) + " rows x " + std::to_string(width) +
        " expanded features is too large to materialize (lower the hash buckets or use the "
        "sparse form)");
  }
  out.resize(static_cast<std::size_t>(rows * width));
  if (rows == 0 || width == 0) return;
  if (ctx.is_cuda()) {
    materialize_expanded_cuda(ctx.cuda(), fitted, block, out);
    return;
  }
  const std::vector<std::int64_t> offsets = fitted.group_offsets();
  const PreparedRowsView view{block.dense.data(), block.slot.data(), block.value.data(), rows};
  const ExpandedLayout layout{fitted.dense_features(),
                              static_cast<std::int32_t>(fitted.sparse.size()), offsets.data()};
#pragma omp parallel for schedule(static)
  for (std::int64_t k = 0; k < width; ++k) {
    for (std::int64_t r = 0; r < rows; ++r)
      out[static_cast<std::size_t>(k * rows + r)] = expanded_feature(view, layout, r, k);
  }
}

}  // namespace lathe
