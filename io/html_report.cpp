#include "io/html_report.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "io/evaluate_table.h"
#include "io/model_file.h"
#include "io/model_inputs.h"
#include "io/temporary_file.h"
#include "kernels/metric_formulas.h"
#include "runtime/error.h"
#include "runtime/float_sort.h"
#include "runtime/message_names.h"
#include "runtime/metrics.h"
#include "runtime/warm_start.h"

namespace lathe {

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

// The page's first bytes, and the mark its head carries after them (HTML's own way to name the
// program that wrote a page), by which `lathe report --out` knows an earlier report it may replace.
constexpr std::string_view kReportStart =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
constexpr std::string_view kReportMark = "<meta name=\"generator\" content=\"lathe report\">";
// What identified a report written before the mark: its title, written since `lathe report`'s
// first version right after the page's start, two <meta> lines of fixed length.
constexpr std::string_view kTitleBeforeTheMark = "<title>Lathe report: ";

}  // namespace

bool holds_html_report(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return false;
  std::string head(1024, '\0');
  file.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(file.gcount()));
  if (!head.starts_with(kReportStart)) return false;
  const std::string_view rest = std::string_view(head).substr(kReportStart.size());
  return rest.starts_with(kReportMark) || rest.find(kTitleBeforeTheMark) != std::string_view::npos;
}

namespace {

void check_sizes(std::span<const float> scores, std::span<const float> labels) {
  if (scores.size() != labels.size()) {
    throw Error("curve: " + std::to_string(scores.size()) + " scores for " +
                std::to_string(labels.size()) + " labels");
  }
}

// Running true and false positives after each group of equal scores (-0 and +0 one), highest
// first: the rows in a radix sort by descending score, each carrying its label. An indirect sort
// of row indices by their scores took half of `lathe report --eval`'s time on 2M rows, the curves'
// reads of the labels through the indices another eighth (bench/RESULTS.md, session 35).
template <typename F>
void for_each_threshold(std::span<const float> scores, std::span<const float> labels, F&& f) {
  std::vector<KeyedBits> rows(scores.size()), spare(scores.size());
  for (std::size_t i = 0; i < scores.size(); ++i) {
    rows[i] = {descending_score_key(scores[i]), labels[i] > 0.5f ? 1u : 0u};
  }
  const std::span<const KeyedBits> order = stable_sort_keyed(rows, spare);
  double tp = 0, fp = 0;
  for (std::size_t i = 0; i < order.size();) {
    const std::uint32_t key = order[i].key;
    for (; i < order.size() && order[i].key == key; ++i) (order[i].bits != 0 ? tp : fp) += 1;
    f(tp, fp);
  }
}

}  // namespace

std::vector<CurvePoint> roc_curve(std::span<const float> scores, std::span<const float> labels) {
  check_sizes(scores, labels);
  const auto positives = static_cast<double>(
      std::count_if(labels.begin(), labels.end(), [](float y) { return y > 0.5f; }));
  const double negatives = static_cast<double>(labels.size()) - positives;
  if (positives == 0 || negatives == 0) return {};
  std::vector<CurvePoint> curve{{0.0, 0.0}};
  for_each_threshold(scores, labels, [&](double tp, double fp) {
    curve.push_back({fp / negatives, tp / positives});
  });
  return curve;
}

std::vector<CurvePoint> precision_recall_curve(std::span<const float> scores,
                                               std::span<const float> labels) {
  check_sizes(scores, labels);
  const auto positives = static_cast<double>(
      std::count_if(labels.begin(), labels.end(), [](float y) { return y > 0.5f; }));
  if (positives == 0) return {};
  std::vector<CurvePoint> curve;
  for_each_threshold(scores, labels, [&](double tp, double fp) {
    const double precision = tp / (tp + fp);
    if (curve.empty()) curve.push_back({0.0, precision});
    curve.push_back({tp / positives, precision});
  });
  return curve;
}

std::vector<CalibrationBin> calibration_bins(std::span<const float> probabilities,
                                             std::span<const float> labels, int bins) {
  check_sizes(probabilities, labels);
  if (bins < 1) throw Error("calibration_bins: needs at least one bin");
  std::vector<CalibrationBin> out(static_cast<std::size_t>(bins));
  std::vector<double> predicted(out.size(), 0.0), positive(out.size(), 0.0);
  for (std::size_t i = 0; i < probabilities.size(); ++i) {
    const double p = probabilities[i];
    if (!std::isfinite(p)) continue;
    const auto b = static_cast<std::size_t>(
        std::clamp(static_cast<int>(std::floor(std::clamp(p, 0.0, 1.0) * bins)), 0, bins - 1));
    out[b].rows += 1;
    predicted[b] += p;
    positive[b] += labels[i] > 0.5f ? 1.0 : 0.0;
  }
  for (std::size_t b = 0; b < out.size(); ++b) {
    out[b].lo = static_cast<double>(b) / bins;
    out[b].hi = static_cast<double>(b + 1) / bins;
    out[b].mean_predicted = out[b].rows > 0 ? predicted[b] / static_cast<double>(out[b].rows) : NAN;
    out[b].observed_rate = out[b].rows > 0 ? positive[b] / static_cast<double>(out[b].rows) : NAN;
  }
  return out;
}

namespace {

// ---------------------------------------------------------------------------------------------
// Text

// A number for people: `digits` significant digits; "inf" and "-inf" as `lathe eval` prints them
// (an rmse of infinite predictions), "-" for NaN (nothing to show).
std::string num(double v, int digits = 4) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "-";
  std::ostringstream s;
  s << std::setprecision(digits) << v;
  return s.str();
}

// An SVG coordinate: fixed, one decimal.
std::string xy(double v) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << v;
  return s.str();
}

std::string percent(double v) { return std::isfinite(v) ? num(100.0 * v, 3) + "%" : "-"; }

// A JSON value as a table cell: strings without quotes, an array of strings (how options are
// stored) joined by commas, the rest as JSON.
std::string json_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array() &&
      std::all_of(v.begin(), v.end(), [](const nlohmann::json& e) { return e.is_string(); })) {
    std::string out;
    for (const auto& e : v) out += (out.empty() ? "" : ", ") + e.get<std::string>();
    return out;
  }
  return v.dump();
}

// Options stored as an object (a retrained model's kept_preparation_options: its parent's options)
// as the command line spelled them: "--cross a*b --label churn --quiet", a flag without its "true".
std::string options_text(const nlohmann::json& options) {
  std::string out;
  for (const auto& [k, v] : options.items()) {
    out += (out.empty() ? "--" : " --") + k;
    const std::string value = json_text(v);
    if (value != "true") out += " " + value;
  }
  return out;
}

nlohmann::json parse_object(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

double json_number(const nlohmann::json& j, const std::string& key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : NAN;
}

// A feature key of expanded_feature_keys ("dense:age", "onehot:city=Oslo", "slope:age*city=Oslo",
// "cross:a*b#3/64") as shown on the page.
std::string feature_label(const std::string& key) {
  const auto colon = key.find(':');
  if (colon == std::string::npos) return key;
  const std::string kind = key.substr(0, colon), rest = key.substr(colon + 1);
  if (kind == "slope") return rest + " (slope)";
  if (kind == "cross") return rest + " (cross bucket)";
  return rest;
}

// Slot pairs a cross bucket is named by: enumerating a cross's pairs (slots of a times slots of b)
// costs a hash each, so a cross of more pairs than this (two hashed columns) keeps the bucket's
// number.
constexpr std::int64_t kMaxCrossPairsNamed = std::int64_t{1} << 22;

// The label of each prepared feature shown on the page, made once per feature. A categorical
// cross's bucket is named by the slot pairs that hash into it ("contract=Two year ×
// internet_service=DSL"; "... (and 2 more pairs in bucket 8159/65536)" where several do; "a*b#5/16
// (cross bucket of no label pair)" where none does), which its key does not tell.
class FeatureLabels {
 public:
  explicit FeatureLabels(const FittedPreparation& fitted)
      : fitted_(fitted), offsets_(fitted.group_offsets()) {}

  const std::string& operator()(std::size_t feature) {
    const auto [at, added] = labels_.try_emplace(feature);
    if (added) at->second = make(static_cast<std::int64_t>(feature));
    return at->second;
  }

 private:
  std::string make(std::int64_t feature) const {
    const std::string key = feature_label(expanded_feature_key(fitted_, feature));
    if (feature < offsets_.front()) return key;
    const auto g = static_cast<std::size_t>(
        std::upper_bound(offsets_.begin(), offsets_.end(), feature) - offsets_.begin() - 1);
    const SparseGroup& group = fitted_.sparse.at(g);
    if (group.kind != SparseKind::categorical_cross) return key;
    const std::vector<std::uint64_t> ha = cross_side_hashes(fitted_, group, false),
                                     hb = cross_side_hashes(fitted_, group, true);
    if (static_cast<std::int64_t>(ha.size()) * static_cast<std::int64_t>(hb.size()) >
        kMaxCrossPairsNamed)
      return key;
    const auto bucket = static_cast<std::uint32_t>(feature - offsets_[g]);
    std::int64_t pairs = 0;
    std::size_t first_a = 0, first_b = 0;
    for (std::size_t a = 0; a < ha.size(); ++a) {
      for (std::size_t b = 0; b < hb.size(); ++b) {
        if (cross_bucket(ha[a], hb[b], group.slots) != bucket) continue;
        if (pairs++ == 0) first_a = a, first_b = b;
      }
    }
    // Only a model's other features move the bucket's weight: no row ever has it.
    if (pairs == 0)
      return group.name + "#" + std::to_string(bucket) + "/" + std::to_string(group.slots) +
             " (cross bucket of no label pair)";
    const std::string pair = cross_side_slot_names(fitted_, group, false).at(first_a) + " \u00d7 " +
                             cross_side_slot_names(fitted_, group, true).at(first_b);
    if (pairs == 1) return pair;
    return pair + " (and " + std::to_string(pairs - 1) + " more pair" + (pairs == 2 ? "" : "s") +
           " in bucket " + std::to_string(bucket) + "/" + std::to_string(group.slots) + ")";
  }

  const FittedPreparation& fitted_;
  const std::vector<std::int64_t> offsets_;  // group_offsets(): the first feature of each group
  std::unordered_map<std::size_t, std::string> labels_;
};

const char* status_class(DriftStatus s) { return drift_status_name(s); }

// ---------------------------------------------------------------------------------------------
// Charts: a plot area mapping data coordinates to pixels, axes with "nice" ticks.

struct Plot {
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  double width = 460, height = 320, left = 64, right = 18, top = 16, bottom = 50;
  double px(double x) const { return left + (x - x0) / (x1 - x0) * (width - left - right); }
  double py(double y) const {
    return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom);
  }
};

// [lo, hi] widened by 5% on each side (a point range becomes a unit range around it).
std::pair<double, double> padded(double lo, double hi) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0.0, 1.0};
  if (hi <= lo) {
    const double h = std::max(0.5, std::abs(lo) * 0.1);
    return {lo - h, hi + h};
  }
  const double pad = (hi - lo) * 0.05;
  return {lo - pad, hi + pad};
}

std::vector<double> nice_ticks(double lo, double hi, int target = 5) {
  std::vector<double> ticks;
  const double span = hi - lo;
  if (!(span > 0) || !std::isfinite(span)) return ticks;
  const double raw = span / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double n = raw / magnitude;
  const double step = (n < 1.5 ? 1.0 : n < 3.0 ? 2.0 : n < 7.0 ? 5.0 : 10.0) * magnitude;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  }
  return ticks;
}

std::string svg_open(const std::string& id, const std::string& classes, const std::string& title,
                     const Plot& p) {
  return "<svg id=\"" + id + "\" class=\"chart " + classes + "\" viewBox=\"0 0 " + xy(p.width) +
         " " + xy(p.height) + "\" width=\"" + xy(p.width) + "\" height=\"" + xy(p.height) +
         "\" role=\"img\" aria-labelledby=\"" + id + "-title\"><title id=\"" + id + "-title\">" +
         html_escape(title) + "</title>\n";
}

// Frame, grid, tick labels and axis labels.
std::string axes(const Plot& p, const std::string& xlabel, const std::string& ylabel,
                 bool integer_x = false) {
  std::string s = "<g class=\"axes\">";
  s += "<rect class=\"frame\" x=\"" + xy(p.left) + "\" y=\"" + xy(p.top) + "\" width=\"" +
       xy(p.width - p.left - p.right) + "\" height=\"" + xy(p.height - p.top - p.bottom) + "\"/>";
  for (double t : nice_ticks(p.x0, p.x1)) {
    if (integer_x && t != std::floor(t)) continue;
    s += "<line class=\"grid\" x1=\"" + xy(p.px(t)) + "\" x2=\"" + xy(p.px(t)) + "\" y1=\"" +
         xy(p.top) + "\" y2=\"" + xy(p.height - p.bottom) + "\"/>";
    s += "<text class=\"tick\" x=\"" + xy(p.px(t)) + "\" y=\"" + xy(p.height - p.bottom + 16) +
         "\" text-anchor=\"middle\">" + num(t, 6) + "</text>";
  }
  for (double t : nice_ticks(p.y0, p.y1)) {
    s += "<line class=\"grid\" x1=\"" + xy(p.left) + "\" x2=\"" + xy(p.width - p.right) +
         "\" y1=\"" + xy(p.py(t)) + "\" y2=\"" + xy(p.py(t)) + "\"/>";
    s += "<text class=\"tick\" x=\"" + xy(p.left - 6) + "\" y=\"" + xy(p.py(t) + 4) +
         "\" text-anchor=\"end\">" + num(t, 6) + "</text>";
  }
  s += "<text class=\"axis-label\" x=\"" + xy((p.left + p.width - p.right) / 2) + "\" y=\"" +
       xy(p.height - 10) + "\" text-anchor=\"middle\">" + html_escape(xlabel) + "</text>";
  s += "<text class=\"axis-label\" transform=\"translate(14 " +
       xy((p.top + p.height - p.bottom) / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
       html_escape(ylabel) + "</text>";
  return s + "</g>\n";
}

std::string polyline(const Plot& p, const std::vector<CurvePoint>& points, const std::string& cls) {
  std::string s = "<polyline class=\"" + cls + "\" points=\"";
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (i) s += ' ';
    s += xy(p.px(points[i].x)) + "," + xy(p.py(points[i].y));
  }
  return s + "\"/>\n";
}

std::string line(const Plot& p, double xa, double ya, double xb, double yb,
                 const std::string& cls) {
  return "<line class=\"" + cls + "\" x1=\"" + xy(p.px(xa)) + "\" y1=\"" + xy(p.py(ya)) +
         "\" x2=\"" + xy(p.px(xb)) + "\" y2=\"" + xy(p.py(yb)) + "\"/>\n";
}

std::string caption(const Plot& p, const std::string& text) {
  return "<text class=\"caption\" x=\"" + xy(p.width - p.right - 8) + "\" y=\"" +
         xy(p.height - p.bottom - 10) + "\" text-anchor=\"end\">" + html_escape(text) + "</text>\n";
}

// At most `limit` points, evenly spaced over the curve, the first and last kept.
std::vector<CurvePoint> thinned(const std::vector<CurvePoint>& curve, std::size_t limit) {
  if (curve.size() <= limit || limit < 2) return curve;
  std::vector<CurvePoint> out;
  out.reserve(limit);
  for (std::size_t k = 0; k < limit; ++k)
    out.push_back(curve[k * (curve.size() - 1) / (limit - 1)]);
  return out;
}

struct Bar {
  std::string label;
  double value = 0.0;
  std::string cls;   // extra class of the bar ("" = by sign)
  std::string text;  // the value as shown ("" = num(value))
};

// The width in pixels that a bar label (11.5px sans-serif, see kStyle) is given: 7.5 per
// character, above the average advance of common sans-serif fonts (DejaVu Sans' digits take 7.3),
// and twice that for a character of three or more UTF-8 bytes, most of them wide (CJK).
double label_width(std::string_view text) {
  double width = 0.0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if ((byte & 0xC0) == 0x80) continue;  // a continuation byte
    width += byte >= 0xE0 ? 15.0 : 7.5;
  }
  return width;
}

// `text` cut to at most `width` pixels (label_width) at a character boundary, with "…" at the end
// when it was cut.
std::string shortened_label(const std::string& text, double width) {
  if (label_width(text) <= width) return text;
  std::size_t end = 0;
  double used = label_width("…");
  while (end < text.size()) {
    std::size_t next = end + 1;
    while (next < text.size() && (static_cast<unsigned char>(text[next]) & 0xC0) == 0x80) ++next;
    const double w = label_width(std::string_view(text).substr(end, next - end));
    if (used + w > width) break;
    used += w;
    end = next;
  }
  return text.substr(0, end) + "…";
}

// Horizontal bars from a zero line, one row per bar, labels on the left: as wide as the longest
// label needs (a cross bucket of a multiclass fm, "[Adelie] bill_depth_mm × island*sex#21885/65536
// (cross bucket)", took 400 px and lost its start beyond the left edge), up to kMaxLabelWidth,
// beyond which a label is shortened with "…" (the bar's tooltip and the table below keep it whole).
std::string bar_chart(const std::string& id, const std::string& title, const std::string& xlabel,
                      const std::vector<Bar>& bars,
                      const std::vector<std::pair<double, std::string>>& markers = {}) {
  constexpr double kMinLabelWidth = 244, kMaxLabelWidth = 474, kBarsWidth = 400;
  double labels = kMinLabelWidth;
  for (const Bar& b : bars)
    labels = std::max(labels, std::min(label_width(b.label), kMaxLabelWidth));
  Plot p;
  p.left = labels + 6;
  p.right = 70;
  p.top = 10;
  p.bottom = 42;
  p.width = p.left + kBarsWidth + p.right;
  const double row = 20;
  p.height = p.top + p.bottom + row * static_cast<double>(std::max<std::size_t>(bars.size(), 1));
  double lo = 0, hi = 0;
  for (const Bar& b : bars) {
    if (!std::isfinite(b.value)) continue;
    lo = std::min(lo, b.value);
    hi = std::max(hi, b.value);
  }
  for (const auto& m : markers) hi = std::max(hi, m.first);
  if (hi == lo) hi = lo + 1;
  p.x0 = lo;
  p.x1 = hi;
  p.y0 = 0;
  p.y1 = 1;
  std::string s = svg_open(id, "bars", title, p);
  for (double t : nice_ticks(lo, hi)) {
    s += "<line class=\"grid\" x1=\"" + xy(p.px(t)) + "\" x2=\"" + xy(p.px(t)) + "\" y1=\"" +
         xy(p.top) + "\" y2=\"" + xy(p.height - p.bottom) + "\"/><text class=\"tick\" x=\"" +
         xy(p.px(t)) + "\" y=\"" + xy(p.height - p.bottom + 16) + "\" text-anchor=\"middle\">" +
         num(t, 6) + "</text>\n";
  }
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const Bar& b = bars[i];
    const double y = p.top + row * static_cast<double>(i);
    const double v = std::isfinite(b.value) ? b.value : 0.0;
    const double xa = p.px(std::min(0.0, v)), xb = p.px(std::max(0.0, v));
    const std::string cls = !b.cls.empty() ? b.cls : v < 0 ? "negative" : "positive";
    const std::string shown = shortened_label(b.label, kMaxLabelWidth);
    s += "<g class=\"bar-row\"><text class=\"bar-label\" x=\"" + xy(p.left - 6) + "\" y=\"" +
         xy(y + 14) + "\" text-anchor=\"end\">" +
         (shown == b.label ? html_escape(b.label)
                           : "<title>" + html_escape(b.label) + "</title>" + html_escape(shown)) +
         "</text>";
    s += "<rect class=\"bar " + cls + "\" x=\"" + xy(xa) + "\" y=\"" + xy(y + 3) + "\" width=\"" +
         xy(std::max(xb - xa, 0.5)) + "\" height=\"" + xy(row - 6) + "\"><title>" +
         html_escape(b.label) + ": " + html_escape(b.text.empty() ? num(b.value) : b.text) +
         "</title></rect>";
    s += "<text class=\"bar-value\" x=\"" + xy(p.width - p.right + 6) + "\" y=\"" + xy(y + 14) +
         "\">" + html_escape(b.text.empty() ? num(b.value) : b.text) + "</text></g>\n";
  }
  s += "<line class=\"zero\" x1=\"" + xy(p.px(0)) + "\" x2=\"" + xy(p.px(0)) + "\" y1=\"" +
       xy(p.top) + "\" y2=\"" + xy(p.height - p.bottom) + "\"/>\n";
  for (const auto& [at, cls] : markers) {
    s += "<line class=\"marker " + cls + "\" x1=\"" + xy(p.px(at)) + "\" x2=\"" + xy(p.px(at)) +
         "\" y1=\"" + xy(p.top) + "\" y2=\"" + xy(p.height - p.bottom) + "\"/>\n";
  }
  s += "<text class=\"axis-label\" x=\"" + xy((p.left + p.width - p.right) / 2) + "\" y=\"" +
       xy(p.height - 6) + "\" text-anchor=\"middle\">" + html_escape(xlabel) + "</text>\n";
  return s + "</svg>\n";
}

// ---------------------------------------------------------------------------------------------
// Sections

std::string table_row(const std::string& key, const std::string& value_html) {
  return "<tr><th scope=\"row\">" + html_escape(key) + "</th><td>" + value_html + "</td></tr>\n";
}

const char* kind_text(ModelKind k) {
  return k == ModelKind::fm ? "fm (factorization machine)" : "linear";
}


std::string summary_section(const ModelFile& m, const std::filesystem::path& path) {
  const nlohmann::json metrics = parse_object(m.metrics_json);
  std::string s = "<section id=\"summary\"><h2>Model</h2>\n<table class=\"kv\">\n";
  s += table_row("file", "<code>" + html_escape(path.string()) + "</code>");
  s += table_row("task", html_escape(task_name(m.task)));
  s += table_row("label", "<code>" + html_escape(m.label) + "</code>");
  if (!m.classes.empty()) {
    std::string classes;
    for (std::size_t i = 0; i < m.classes.size(); ++i) {
      classes += (i ? ", " : "") + std::string("<code>") + html_escape(m.classes[i]) + "</code>";
    }
    if (m.task == Task::binary)
      classes += " (positive: <code>" + html_escape(m.classes.back()) + "</code>)";
    s += table_row("classes", classes);
  }
  s += table_row(
      "model", html_escape(kind_text(m.kind)) + (m.kind == ModelKind::fm
                                                     ? ", " + std::to_string(m.factors) + " factors"
                                                     : std::string()));
  s += table_row("loss", html_escape(loss_name(m.loss)));
  s += table_row("features", std::to_string(m.preparation.dense_features()) + " dense, " +
                                 std::to_string(m.preparation.expanded_features()) + " expanded (" +
                                 std::to_string(m.preparation.sparse.size()) + " sparse groups)");
  const double train_rows = json_number(metrics, "train_rows"),
               valid_rows = json_number(metrics, "valid_rows");
  if (std::isfinite(train_rows))
    s += table_row("training rows", num(train_rows, 15));
  else if (m.profile)
    s += table_row("training rows", std::to_string(m.profile->rows));
  if (std::isfinite(valid_rows)) {
    std::string v = num(valid_rows, 15);
    if (valid_rows > 0 && metrics.contains("valid_file") && metrics["valid_file"].is_string() &&
        !metrics["valid_file"].get<std::string>().empty()) {
      // Held out from the training file (valid_fraction above 0) or a file of their own (--valid,
      // valid_fraction 0). A model from before valid_fraction was stored: its options tell.
      const double fraction = json_number(metrics, "valid_fraction");
      const bool held_out = std::isfinite(fraction) ? fraction > 0 : !parse_object(m.options_json).contains("valid");
      v += held_out ? " held out from <code>" : " from <code>";
      v += html_escape(metrics["valid_file"].get<std::string>()) + "</code>";
      if (held_out && std::isfinite(fraction)) v += " (" + num(100 * fraction, 6) + "%)";
    }
    s += table_row("validation rows", v);
  }
  if (metrics.contains("optimizer") && metrics["optimizer"].is_string()) {
    // As trained, defaults chosen included (the options below list only those given).
    std::string o = html_escape(metrics["optimizer"].get<std::string>());
    if (metrics.contains("lr")) o += ", learning rate " + html_escape(json_text(metrics["lr"]));
    if (metrics.contains("batch"))
      o += ", batches of " + html_escape(json_text(metrics["batch"])) + " rows";
    s += table_row("optimizer", o);
  }
  if (metrics.contains("best_epoch"))
    s += table_row("best epoch", html_escape(json_text(metrics["best_epoch"])));
  if (metrics.contains("cooldown_after_epoch")) {
    s += table_row("cooldown", "the rate decayed to zero after epoch " +
                                   html_escape(json_text(metrics["cooldown_after_epoch"])) +
                                   ", when --patience ran out (--cooldown)");
  }
  if (metrics.contains("init_model_valid") && metrics["init_model_valid"].is_object() &&
      metrics.contains("metric") && metrics["metric"].is_string()) {
    // A retraining run's parent (--init-model) on the same validation rows, before the first epoch.
    const std::string metric = metrics["metric"].get<std::string>();
    const nlohmann::json& start = metrics["init_model_valid"];
    if (start.contains(metric) && start[metric].is_number()) {
      std::string text = "the parent (--init-model) scored " + html_escape(metric) + " " +
                         num(start[metric].get<double>(), 6) +
                         " on the validation rows before the first epoch";
      if (metrics.contains("valid") && metrics["valid"].is_object() &&
          metrics["valid"].contains(metric) && metrics["valid"][metric].is_number()) {
        text += ", the kept epoch " + num(metrics["valid"][metric].get<double>(), 6);
      }
      s += table_row("starting model", text);
    }
  }
  if (metrics.contains("refit") && metrics["refit"].is_object()) {
    // `lathe train --refit`: the saved weights are not the best epoch's but a second run's.
    const nlohmann::json& refit = metrics["refit"];
    const double refit_epochs = json_number(refit, "epochs");
    s += table_row("refit",
                   "trained again on all " + num(json_number(refit, "rows"), 15) +
                       " training and validation rows for " +
                       (std::isfinite(refit_epochs) && refit_epochs == std::floor(refit_epochs)
                            ? counted(static_cast<long long>(refit_epochs), "epoch")
                            : num(refit_epochs, 15) + " epochs") +
                       ": the validation metrics below are the best epoch's, before the refit");
  }
  if (metrics.contains("metric"))
    s += table_row("early-stopping metric", html_escape(json_text(metrics["metric"])));
  if (metrics.contains("valid") && metrics["valid"].is_object() && !metrics["valid"].empty()) {
    std::string v;
    for (const auto& [k, value] : metrics["valid"].items()) {
      if (value.is_number() || value.is_null()) {
        v += (v.empty() ? "" : ", ") + html_escape(k) + " " +
             (value.is_number() ? num(value.get<double>(), 6) : "-");
      }
    }
    s += table_row("validation metrics", v);
  }
  if (m.profile)
    s += table_row("profile", std::to_string(m.profile->rows) + " rows, " +
                                  std::to_string(m.profile->columns.size()) + " columns");
  if (m.task == Task::regression) {
    s += table_row("target scaling",
                   "mean " + num(m.target_mean, 6) + ", std " + num(m.target_std, 6) +
                       (m.target_transform == TargetTransform::none
                            ? std::string()
                            : std::string(" of ") + target_transform_name(m.target_transform) +
                                  "(label); predictions " +
                                  (m.target_transform == TargetTransform::log ? "exp" : "expm1") +
                                  " of the fit (--target-transform " + target_transform_name(m.target_transform) +
                                  ")"));
  }
  // The parent chain: each "parent" holds its own parent, as an object (or, in files written
  // before, as JSON text).
  nlohmann::json j = parse_object(m.parent);
  std::string unparsed = j.empty() ? m.parent : std::string();
  for (int depth = 0; (!j.empty() || !unparsed.empty()) && depth < 64; ++depth) {
    std::string v;
    if (j.empty()) {
      v = html_escape(unparsed);
      unparsed.clear();
    } else {
      v = "<code>" + html_escape(j.contains("path") ? json_text(j["path"]) : std::string("?")) +
          "</code>";
      if (j.contains("parameters_fingerprint"))
        v += " (fingerprint " + html_escape(json_text(j["parameters_fingerprint"])) + ")";
      // The record is the child's: it refitted the preparation when it started from this model.
      if (j.contains("refit_preparation") && j["refit_preparation"].is_boolean() &&
          j["refit_preparation"].get<bool>()) {
        v += depth == 0 ? ", whose preparation this model refitted" : ", whose preparation its child refitted";
      }
      nlohmann::json up = j.contains("parent") ? j["parent"] : nlohmann::json();
      if (up.is_string()) {
        const std::string text = up.get<std::string>();
        up = parse_object(text);
        if (up.empty()) unparsed = text;
      }
      j = up.is_object() ? std::move(up) : nlohmann::json::object();
    }
    s += table_row(
        depth == 0 ? std::string("parent") : "ancestor " + std::to_string(depth + 1) + " up", v);
  }
  s += "</table>\n";
  const nlohmann::json options = parse_object(m.options_json);
  s += "<h3>Options</h3>\n";
  if (options.empty()) {
    s += "<p class=\"note\">no options stored</p>\n";
  } else {
    s += "<table class=\"kv options\">\n";
    for (const auto& [k, v] : options.items())
      s += table_row(
          k, "<code>" + html_escape(v.is_object() ? options_text(v) : json_text(v)) + "</code>");
    s += "</table>\n";
  }
  return s + "</section>\n";
}

std::string learning_curves_section(const ModelFile& m) {
  std::string s = "<section id=\"learning\"><h2>Learning curves</h2>\n";
  const nlohmann::json history = m.history_json.empty()
                                     ? nlohmann::json()
                                     : nlohmann::json::parse(m.history_json, nullptr, false);
  if (!history.is_array() || history.empty()) {
    return s +
           "<p class=\"note\" id=\"no-history\">no history stored (the model file predates the "
           "per-epoch history)</p></section>\n";
  }
  const nlohmann::json metrics = parse_object(m.metrics_json);
  std::string metric = metrics.contains("metric") && metrics["metric"].is_string()
                           ? metrics["metric"].get<std::string>()
                           : "";
  const double best_epoch = json_number(metrics, "best_epoch");
  std::vector<CurvePoint> loss, valid;
  for (const auto& e : history) {
    const double epoch = json_number(e, "epoch");
    if (!std::isfinite(epoch)) continue;
    const double l = json_number(e, "train_loss");
    if (std::isfinite(l)) loss.push_back({epoch, l});
    if (e.contains("valid") && e["valid"].is_object() && !e["valid"].empty()) {
      if (metric.empty() || !e["valid"].contains(metric)) metric = e["valid"].begin().key();
      const double v = json_number(e["valid"], metric);
      if (std::isfinite(v)) valid.push_back({epoch, v});
    }
  }
  const double last_epoch = json_number(history.back(), "epoch");
  const auto chart = [&](const std::string& id, const std::string& title, const std::string& ylabel,
                         const std::vector<CurvePoint>& points) {
    Plot p;
    p.x0 = 1;
    p.x1 = std::max(2.0, std::isfinite(last_epoch) ? last_epoch : 2.0);
    double lo = INFINITY, hi = -INFINITY;
    for (const CurvePoint& q : points) lo = std::min(lo, q.y), hi = std::max(hi, q.y);
    std::tie(p.y0, p.y1) = padded(lo, hi);
    std::string c = svg_open(id, "learning-curve", title, p) + axes(p, "epoch", ylabel, true);
    if (std::isfinite(best_epoch) && best_epoch >= 1) {
      c += line(p, best_epoch, p.y0, best_epoch, p.y1, "best-epoch");
      const bool right_half = p.px(best_epoch) > p.width / 2;  // the caption on the side with room
      c += "<text class=\"caption\" x=\"" + xy(p.px(best_epoch) + (right_half ? -4 : 4)) +
           "\" y=\"" + xy(p.top + 12) + "\" text-anchor=\"" + (right_half ? "end" : "start") +
           "\">best epoch " + num(best_epoch, 10) + "</text>\n";
    }
    c += polyline(p, points, "series");
    for (const CurvePoint& q : points) {
      c += "<circle class=\"dot\" cx=\"" + xy(p.px(q.x)) + "\" cy=\"" + xy(p.py(q.y)) +
           "\" r=\"2.5\"><title>epoch " + num(q.x, 10) + ": " + num(q.y, 6) + "</title></circle>";
    }
    return c + "\n</svg>\n";
  };
  s += "<div class=\"charts\">\n<figure>" +
       chart("learning-curve-loss", "Training loss per epoch", "training loss", loss) +
       "<figcaption>training loss (mean over the epoch's batches)</figcaption></figure>\n";
  if (valid.empty()) {
    s += "<p class=\"note\">no validation rows: no validation metric per epoch</p>\n";
  } else {
    s += "<figure>" +
         chart("learning-curve-metric", "Validation " + metric + " per epoch",
               "validation " + metric, valid) +
         "<figcaption>validation <code>" + html_escape(metric) + "</code> after each epoch" +
         (higher_is_better(metric) ? " (higher is better)" : " (lower is better)") +
         "</figcaption></figure>\n";
  }
  return s + "</div>\n</section>\n";
}

// The labels of the eval data as the model's targets (regression value, binary 0/1, multiclass
// class index), matched by label name as `lathe eval` does, and the model's predictions of every
// row.
struct Labeled {
  std::vector<float> labels, predictions;
};

Labeled read_labeled(const DeviceContext& ctx, const ModelFile& model,
                     const std::filesystem::path& data, const TableReadOptions& read) {
  TableReader reader(data, reading_for_model(model, read));
  Labeled out;
  // The schema first (it costs nothing); then the labels and predictions as `lathe eval` reads them,
  // with its messages.
  check_data_preparation(model, reader.path());
  check_model_inputs(model_inputs(model), model.path.string(), reader.columns(), reader.path().string());
  // Rows without the label go to --drift (QA: the error named the missing column, not the option).
  out.labels = evaluation_labels(model, reader,
                                 " (--eval measures the model against the label; `--drift " +
                                     reader.path().string() +
                                     "` compares rows without one with the training data)");
  predict_table(ctx, model, reader, out.predictions);
  return out;
}

std::string roc_chart(const std::vector<CurvePoint>& roc, double auc) {
  Plot p;
  p.width = p.height = 360;
  p.bottom = 50;
  std::string s =
      svg_open("roc", "roc", "ROC curve", p) + axes(p, "false positive rate", "true positive rate");
  s += line(p, 0, 0, 1, 1, "reference");
  s += polyline(p, thinned(roc, kMaxCurvePoints), "series");
  s += caption(p, "AUC " + num(auc, 6));
  return s + "</svg>\n";
}

std::string pr_chart(const std::vector<CurvePoint>& pr, double ap, double base_rate) {
  Plot p;
  p.width = p.height = 360;
  std::string s =
      svg_open("pr", "pr", "Precision-recall curve", p) + axes(p, "recall", "precision");
  s += line(p, 0, base_rate, 1, base_rate, "reference");
  // A step curve: the precision at each threshold holds over the recall it adds (what average
  // precision sums).
  std::vector<CurvePoint> steps;
  const std::vector<CurvePoint> points = thinned(pr, kMaxCurvePoints);
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (i > 0) steps.push_back({points[i - 1].x, points[i].y});
    steps.push_back(points[i]);
  }
  s += polyline(p, steps, "series");
  s += caption(p, "average precision " + num(ap, 6));
  return s + "</svg>\n";
}

std::string calibration_chart(const std::vector<CalibrationBin>& bins) {
  Plot p;
  p.width = p.height = 360;
  std::string s = svg_open("calibration", "calibration", "Calibration", p) +
                  axes(p, "mean predicted probability", "observed positive rate");
  s += line(p, 0, 0, 1, 1, "reference");
  std::vector<CurvePoint> points;
  for (const CalibrationBin& b : bins) {
    if (b.rows > 0) points.push_back({b.mean_predicted, b.observed_rate});
  }
  s += polyline(p, points, "series");
  for (const CalibrationBin& b : bins) {
    if (b.rows == 0) continue;
    s += "<circle class=\"dot bin\" cx=\"" + xy(p.px(b.mean_predicted)) + "\" cy=\"" +
         xy(p.py(b.observed_rate)) + "\" r=\"3.5\"><title>[" + num(b.lo, 2) + ", " + num(b.hi, 2) +
         "): " + counted(b.rows, "row") + ", predicted " + num(b.mean_predicted, 4) +
         ", observed " + num(b.observed_rate, 4) + "</title></circle>";
  }
  return s + "\n</svg>\n";
}

std::string calibration_table(const std::vector<CalibrationBin>& bins) {
  std::string s =
      "<table class=\"grid "
      "calibration-table\"><thead><tr><th>P(positive)</th><th>rows</th><th>mean "
      "predicted</th><th>observed rate</th></tr></thead><tbody>\n";
  for (const CalibrationBin& b : bins) {
    s += "<tr><td>" + num(b.lo, 2) + " – " + num(b.hi, 2) + "</td><td>" + std::to_string(b.rows) +
         "</td><td>" + num(b.mean_predicted) + "</td><td>" + num(b.observed_rate) + "</td></tr>\n";
  }
  return s + "</tbody></table>\n";
}

std::string residual_chart(const std::vector<float>& predicted, const std::vector<float>& actual) {
  const std::size_t n = predicted.size();
  const std::size_t m = std::min<std::size_t>(n, static_cast<std::size_t>(kMaxScatterPoints));
  std::vector<std::size_t> rows(m);
  for (std::size_t k = 0; k < m; ++k) rows[k] = k * n / m;  // evenly spaced: deterministic
  double lo = INFINITY, hi = -INFINITY;
  for (std::size_t r : rows) {
    for (float v : {predicted[r], actual[r]}) {
      if (std::isfinite(v))
        lo = std::min(lo, static_cast<double>(v)), hi = std::max(hi, static_cast<double>(v));
    }
  }
  Plot p;
  p.width = p.height = 420;
  std::tie(p.x0, p.x1) = padded(lo, hi);
  p.y0 = p.x0;
  p.y1 = p.x1;
  std::string s = svg_open("residuals", "residuals", "Predicted against actual", p) +
                  axes(p, "actual", "predicted");
  s += line(p, p.x0, p.x0, p.x1, p.x1, "reference");
  s += "<g class=\"points\">";
  std::size_t drawn = 0;
  for (std::size_t r : rows) {
    if (!std::isfinite(predicted[r]) || !std::isfinite(actual[r])) continue;
    s += "<circle cx=\"" + xy(p.px(actual[r])) + "\" cy=\"" + xy(p.py(predicted[r])) +
         "\" r=\"1.8\"/>";
    ++drawn;
  }
  s += "</g>\n" + caption(p, std::to_string(drawn) + " of " + std::to_string(n) + " rows");
  return s + "</svg>\n";
}

// The most classes whose confusion matrix is drawn (a cell would be too small to read beyond).
constexpr std::size_t kMaxDrawnClasses = 40;

bool confusion_drawn(const MetricSet& metrics) {
  const auto k = static_cast<std::size_t>(metrics.classes);
  return k > 0 && metrics.confusion.size() == k * k && k <= kMaxDrawnClasses;
}

std::string confusion_chart(const MetricSet& metrics, const std::vector<std::string>& classes) {
  const auto k = static_cast<std::size_t>(metrics.classes);
  if (k == 0 || metrics.confusion.size() != k * k)
    return "<p class=\"note\">no confusion matrix</p>\n";
  if (k > kMaxDrawnClasses)
    return "<p class=\"note\">" + std::to_string(k) +
           " classes: too many to draw the confusion matrix</p>\n";
  const double cell = k <= 6 ? 64 : k <= 15 ? 36 : 22;
  Plot p;
  p.left = 150;
  p.top = 110;
  p.right = 16;
  p.bottom = 16;
  p.width = p.left + p.right + cell * static_cast<double>(k);
  p.height = p.top + p.bottom + cell * static_cast<double>(k);
  std::string s = svg_open("confusion", "confusion",
                           "Confusion matrix (rows: true class, columns: predicted)", p);
  for (std::size_t i = 0; i < k; ++i) {
    std::int64_t row_total = 0;
    for (std::size_t j = 0; j < k; ++j) row_total += metrics.confusion[i * k + j];
    const std::string name = i < classes.size() ? classes[i] : std::to_string(i);
    s += "<text class=\"tick\" x=\"" + xy(p.left - 6) + "\" y=\"" +
         xy(p.top + cell * (i + 0.5) + 4) + "\" text-anchor=\"end\">" + html_escape(name) +
         "</text>";
    s += "<text class=\"tick\" transform=\"translate(" + xy(p.left + cell * (i + 0.5) + 4) + " " +
         xy(p.top - 6) + ") rotate(-60)\">" + html_escape(name) + "</text>\n";
    for (std::size_t j = 0; j < k; ++j) {
      const std::int64_t c = metrics.confusion[i * k + j];
      const double share =
          row_total > 0 ? static_cast<double>(c) / static_cast<double>(row_total) : 0.0;
      s += "<rect class=\"cell" + std::string(i == j ? " diagonal" : "") + "\" x=\"" +
           xy(p.left + cell * j) + "\" y=\"" + xy(p.top + cell * i) + "\" width=\"" + xy(cell) +
           "\" height=\"" + xy(cell) + "\" fill-opacity=\"" + num(0.08 + 0.92 * share, 3) +
           "\"><title>true " + html_escape(name) + ", predicted " +
           html_escape(j < classes.size() ? classes[j] : std::to_string(j)) + ": " +
           std::to_string(c) + " (" + percent(share) + " of the row)</title></rect>";
      if (cell >= 30) {
        s += "<text class=\"count" + std::string(share > 0.5 ? " dark" : "") + "\" x=\"" +
             xy(p.left + cell * (j + 0.5)) + "\" y=\"" + xy(p.top + cell * (i + 0.5) + 4) +
             "\" text-anchor=\"middle\">" + std::to_string(c) + "</text>";
      }
    }
    s += "\n";
  }
  s += "<text class=\"axis-label\" x=\"" + xy(8) + "\" y=\"" + xy(p.top - 8) +
       "\">true \u2193 / predicted \u2192</text>\n";
  return s + "</svg>\n";
}

std::string eval_section(const DeviceContext& ctx, const ModelFile& m,
                         const HtmlReportOptions& options) {
  const Labeled data = read_labeled(ctx, m, options.eval, options.read);
  const auto classes = static_cast<std::int32_t>(m.classes.size());
  const MetricSet metrics =
      compute_metrics(ctx, m.task, data.predictions, data.labels, {}, classes);
  const nlohmann::json stored = parse_object(m.metrics_json);
  const nlohmann::json valid = stored.contains("valid") && stored["valid"].is_object()
                                   ? stored["valid"]
                                   : nlohmann::json::object();
  std::string s = "<section id=\"evaluation\"><h2>Evaluation</h2>\n<p>on <code>" +
                  html_escape(options.eval.string()) +
                  "</code>: " + counted(static_cast<long long>(data.labels.size()), "row") + "</p>\n";
  s += "<table class=\"grid metrics\" id=\"eval-metrics\"><thead><tr><th>metric</th><th>this "
       "data</th><th>training "
       "validation</th></tr></thead><tbody>\n";
  // A metric undefined on this data (auc of one class) as `lathe eval` prints it: n/a, not "-".
  for (const auto& [k, v] : metrics.values) {
    s += "<tr><th scope=\"row\">" + html_escape(k) + "</th><td class=\"metric\" data-metric=\"" +
         html_escape(k) + "\">" + (std::isnan(v) ? std::string("n/a") : num(v, 6)) + "</td><td>" +
         num(json_number(valid, k), 6) + "</td></tr>\n";
  }
  s += "</tbody></table>\n";
  const auto not_finite = static_cast<std::size_t>(std::count_if(
      data.predictions.begin(), data.predictions.end(), [](float v) { return !std::isfinite(v); }));
  // A regression's infinite predictions (a log-target fit beyond exp's range) leave the other rows'
  // points to draw (QA: one such row of 500 took the whole chart away).
  if (not_finite == data.predictions.size() || (not_finite > 0 && m.task != Task::regression))
    return s + "<p class=\"note\">the predictions are not all finite: no charts</p></section>\n";
  s += "<div class=\"charts\">\n";
  if (m.task == Task::binary) {
    const std::vector<CurvePoint> roc = roc_curve(data.predictions, data.labels);
    const std::vector<CurvePoint> pr = precision_recall_curve(data.predictions, data.labels);
    if (roc.empty()) {
      s += "<p class=\"note\">only one class in the labels: auc is undefined (it needs both), and "
           "there is no ROC or precision-recall curve</p>\n";
    } else {
      const double base_rate =
          static_cast<double>(std::count_if(data.labels.begin(), data.labels.end(),
                                            [](float y) { return y > 0.5f; })) /
          static_cast<double>(data.labels.size());
      s += "<figure>" + roc_chart(roc, metrics.values.at("auc")) +
           "<figcaption>ROC, AUC <span class=\"auc\">" + num(metrics.values.at("auc"), 6) +
           "</span></figcaption></figure>\n";
      s += "<figure>" + pr_chart(pr, metrics.values.at("pr_auc"), base_rate) +
           "<figcaption>precision against recall, average precision " +
           num(metrics.values.at("pr_auc"), 6) + "; the dashed line is the positive rate " +
           num(base_rate, 4) + "</figcaption></figure>\n";
    }
    const std::vector<CalibrationBin> bins = calibration_bins(data.predictions, data.labels);
    s += "<figure>" + calibration_chart(bins) + "<figcaption>" + std::to_string(kCalibrationBins) +
         " bins of P(<code>" + html_escape(m.classes.back()) + "</code>)</figcaption></figure>\n";
    s += "</div>\n" + calibration_table(bins);
  } else if (m.task == Task::regression) {
    s += "<figure>" + residual_chart(data.predictions, data.labels) +
         "<figcaption>predicted against actual <code>" + html_escape(m.label) +
         "</code>; the diagonal is a perfect prediction</figcaption></figure>\n</div>\n";
    if (not_finite > 0) {
      s += "<p class=\"note\">" + counted(static_cast<long long>(not_finite), "prediction") +
           (not_finite == 1 ? " is" : " are") +
           " not finite (a fit beyond exp's range, far outside the training data; see <code>lathe "
           "eval</code>) "
           "and not drawn</p>\n";
    }
  } else if (!confusion_drawn(metrics)) {
    s += confusion_chart(metrics, m.classes) + "</div>\n";  // a note saying why, without a caption
  } else {
    s += "<figure>" + confusion_chart(metrics, m.classes) +
         "<figcaption>confusion matrix: rows are the true class, columns the predicted (shade: "
         "share of the "
         "row)</figcaption></figure>\n</div>\n";
  }
  return s + "</section>\n";
}

// "bias 0.213", or for a multiclass model every class's bias with its label: "bias per class:
// <code>Adelie</code> 0.213, <code>Chinstrap</code> -0.224, <code>Gentoo</code> -0.087".
std::string bias_text(const ModelFile& m) {
  const std::vector<float>& bias = m.parameters.bias;
  if (bias.size() <= 1) return "bias " + num(bias.empty() ? NAN : bias[0], 6);
  std::string s = "bias per class:";
  for (std::size_t o = 0; o < bias.size(); ++o) {
    s += std::string(o ? ", " : " ") + "<code>" +
         html_escape(o < m.classes.size() ? m.classes[o] : std::to_string(o)) + "</code> " + num(bias[o], 6);
  }
  return s;
}

std::string weights_section(const ModelFile& m) {
  // Keys only for the weights shown: a model with millions of hashed buckets would otherwise make a
  // string for each.
  const auto features = static_cast<std::size_t>(m.preparation.expanded_features());
  FeatureLabels label_of(m.preparation);
  const auto outputs = static_cast<std::size_t>(m.outputs);
  std::string s = "<section id=\"weights-section\"><h2>Largest weights</h2>\n";
  if (features == 0 || m.parameters.weights.size() != outputs * features) {
    return s + "<p class=\"note\">no weights</p></section>\n";
  }
  const auto output_name = [&](std::size_t o) {
    return outputs > 1 && o < m.classes.size() ? "[" + m.classes[o] + "] " : std::string();
  };
  std::vector<std::size_t> order(outputs * features);
  std::iota(order.begin(), order.end(), std::size_t{0});
  const std::size_t top = std::min<std::size_t>(order.size(), kTopWeights);
  // By |weight|, ties by index, so the page is deterministic.
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(top), order.end(),
                    [&](std::size_t a, std::size_t b) {
                      const float wa = std::abs(m.parameters.weights[a]),
                                  wb = std::abs(m.parameters.weights[b]);
                      return wa != wb ? wa > wb : a < b;
                    });
  std::vector<Bar> bars;
  std::string table = "<table class=\"grid weights-table\"><thead><tr><th>#</th>" +
                      std::string(outputs > 1 ? "<th>class</th>" : "") +
                      "<th>feature</th><th>weight</th></tr></thead><tbody>\n";
  for (std::size_t i = 0; i < top; ++i) {
    const std::size_t o = order[i] / features, f = order[i] % features;
    const float w = m.parameters.weights[order[i]];
    const std::string label = label_of(f);
    bars.push_back({output_name(o) + label, w, "", num(w, 4)});
    table += "<tr><td>" + std::to_string(i + 1) + "</td>" +
             (outputs > 1
                  ? "<td>" + html_escape(o < m.classes.size() ? m.classes[o] : std::to_string(o)) +
                        "</td>"
                  : std::string()) +
             "<td class=\"feature\">" + html_escape(label) + "</td><td>" +
             num(w, 6) + "</td></tr>\n";
  }
  table += "</tbody></table>\n";
  s += "<figure>" +
       bar_chart("weights", "The " + std::to_string(top) + " largest weights by magnitude",
                 "weight", bars) +
       "<figcaption>weights on the prepared features (numeric columns as scaled by the "
       "preparation)" +
       std::string(m.task == Task::regression
                       ? "; regression weights are in units of the standardized target"
                       : "") +
       "; " + bias_text(m) + "</figcaption></figure>\n" + table;
  if (m.kind != ModelKind::fm) return s + "</section>\n";

  // Pairwise interactions <v_i, v_j> of the factorization machine, among the features of largest
  // factor norm (|<v_i, v_j>| <= |v_i| |v_j|, so those are where the largest interactions are).
  s += "<h2>Strongest pairwise interactions</h2>\n";
  const auto k = static_cast<std::size_t>(m.factors);
  if (k == 0 || m.parameters.factors.size() != outputs * features * k) {
    return s + "<p class=\"note\">no factors stored</p></section>\n";
  }
  // The group of each feature: a dense feature alone; a sparse group's slots never fire together.
  const std::vector<std::int64_t> offsets = m.preparation.group_offsets();
  const auto dense = static_cast<std::size_t>(m.preparation.dense_features());
  std::vector<std::int64_t> group(features);
  for (std::size_t f = 0; f < features; ++f) {
    if (f < dense) {
      group[f] = -1 - static_cast<std::int64_t>(f);
    } else {
      group[f] = std::upper_bound(offsets.begin(), offsets.end(), static_cast<std::int64_t>(f)) -
                 offsets.begin() - 1;
    }
  }
  struct Pair {
    double value;
    std::size_t o, i, j;
  };
  std::vector<Pair> pairs;
  for (std::size_t o = 0; o < outputs; ++o) {
    const float* v = m.parameters.factors.data() + o * features * k;
    std::vector<std::pair<double, std::size_t>> norms;
    for (std::size_t f = 0; f < features; ++f) {
      double n2 = 0;
      for (std::size_t q = 0; q < k; ++q) n2 += static_cast<double>(v[f * k + q]) * v[f * k + q];
      if (n2 > 0) norms.push_back({n2, f});
    }
    const std::size_t candidates = std::min<std::size_t>(norms.size(), kInteractionCandidates);
    std::partial_sort(norms.begin(), norms.begin() + static_cast<std::ptrdiff_t>(candidates),
                      norms.end(), [](const auto& a, const auto& b) {
                        return a.first != b.first ? a.first > b.first : a.second < b.second;
                      });
    for (std::size_t a = 0; a < candidates; ++a) {
      for (std::size_t b = a + 1; b < candidates; ++b) {
        const std::size_t i = std::min(norms[a].second, norms[b].second),
                          j = std::max(norms[a].second, norms[b].second);
        if (group[i] == group[j]) continue;
        double dot = 0;
        for (std::size_t q = 0; q < k; ++q) dot += static_cast<double>(v[i * k + q]) * v[j * k + q];
        pairs.push_back({dot, o, i, j});
      }
    }
  }
  const std::size_t shown = std::min<std::size_t>(pairs.size(), kTopInteractions);
  std::partial_sort(pairs.begin(), pairs.begin() + static_cast<std::ptrdiff_t>(shown), pairs.end(),
                    [](const Pair& a, const Pair& b) {
                      const double x = std::abs(a.value), y = std::abs(b.value);
                      return x != y ? x > y : std::tie(a.o, a.i, a.j) < std::tie(b.o, b.i, b.j);
                    });
  if (shown == 0)
    return s + "<p class=\"note\">no pair of features with nonzero factors</p></section>\n";
  std::vector<Bar> ibars;
  std::string itable =
      "<table class=\"grid interactions-table\"><thead><tr><th>#</th>" +
      std::string(outputs > 1 ? "<th>class</th>" : "") +
      "<th>feature</th><th>feature</th><th>&lt;v_i, v_j&gt;</th></tr></thead><tbody>\n";
  for (std::size_t r = 0; r < shown; ++r) {
    const Pair& q = pairs[r];
    ibars.push_back(
        {output_name(q.o) + label_of(q.i) + " \u00d7 " + label_of(q.j),
         q.value, "", num(q.value, 4)});
    itable +=
        "<tr><td>" + std::to_string(r + 1) + "</td>" +
        (outputs > 1
             ? "<td>" + html_escape(q.o < m.classes.size() ? m.classes[q.o] : std::to_string(q.o)) +
                   "</td>"
             : std::string()) +
        "<td class=\"feature\">" + html_escape(label_of(q.i)) +
        "</td><td class=\"feature\">" + html_escape(label_of(q.j)) + "</td><td>" +
        num(q.value, 6) + "</td></tr>\n";
  }
  itable += "</tbody></table>\n";
  s += "<figure>" +
       bar_chart("interactions", "The strongest pairwise interactions", "interaction <v_i, v_j>",
                 ibars) +
       "<figcaption>the largest |&lt;v_i, v_j&gt;| over pairs of the " +
       std::to_string(kInteractionCandidates) +
       " features with the largest factor norm (slots of one categorical column never fire "
       "together and are left "
       "out)</figcaption></figure>\n" +
       itable;
  return s + "</section>\n";
}

std::string drift_section(const DeviceContext& ctx, const HtmlReportOptions& options) {
  const DriftReport r =
      drift_table(ctx, options.model, options.drift, options.thresholds, options.read, options.drift_weight);
  const DriftThresholds& t = options.thresholds;
  std::string s =
      "<section id=\"drift\"><h2>Drift</h2>\n<p><code>" + html_escape(options.drift.string()) +
      "</code>: " + counted(r.new_rows, "row") + " against " + std::to_string(r.train_rows) +
      " training rows; PSI warns at " + num(t.psi_warn) + ", alerts at " + num(t.psi_alert) +
      ". Overall status: <span class=\"status " + status_class(r.status) +
      "\" id=\"drift-status\">" + drift_status_name(r.status) + "</span></p>\n";
  std::vector<const FeatureDrift*> sorted;
  for (const FeatureDrift& f : r.features) sorted.push_back(&f);
  std::stable_sort(sorted.begin(), sorted.end(), [](const FeatureDrift* a, const FeatureDrift* b) {
    const double x = std::isfinite(a->psi) ? a->psi : INFINITY,
                 y = std::isfinite(b->psi) ? b->psi : INFINITY;
    return x > y;
  });
  std::vector<Bar> bars;
  for (const FeatureDrift* f : sorted) {
    bars.push_back({f->name, std::isfinite(f->psi) ? f->psi : 0.0,
                    std::string("status-") + status_class(f->status),
                    std::isfinite(f->psi) ? num(f->psi, 4) : "n/a"});
  }
  if (!bars.empty()) {
    s += "<figure>" +
         bar_chart("drift-psi", "PSI per feature", "PSI", bars,
                   {{t.psi_warn, "warn"}, {t.psi_alert, "alert"}}) +
         "<figcaption>population stability index per feature; the lines mark the warn and alert "
         "thresholds</figcaption></figure>\n";
  }
  s += "<table class=\"grid drift-table\" "
       "id=\"drift-table\"><thead><tr><th>feature</th><th>type</th><th>PSI</th><th>KS</th>"
       "<th>missing (train)</th><th>missing "
       "(new)</th><th>unseen</th><th>status</th><th>notes</th></tr></thead><tbody>\n";
  for (const FeatureDrift* f : sorted) {
    std::string notes = html_escape(f->note);
    if (!f->unseen.empty()) {
      std::string unseen;
      for (std::size_t i = 0; i < f->unseen.size() && i < 10; ++i)
        unseen += (i ? ", " : "") + f->unseen[i];
      if (f->unseen.size() > 10) unseen += ", ...";
      notes += (notes.empty() ? "" : "; ") + std::string("unseen: ") + html_escape(unseen);
    }
    s += "<tr class=\"status-" + std::string(status_class(f->status)) +
         "\"><td class=\"feature\">" + html_escape(f->name) + "</td><td>" +
         column_type_name(f->type) + "</td><td>" + num(f->psi) + "</td><td>" + num(f->ks) +
         "</td><td>" + percent(f->missing_rate_train) + "</td><td>" + percent(f->missing_rate_new) +
         "</td><td>" +
         (f->type == ColumnType::categorical ? percent(f->unseen_share) : std::string("-")) +
         "</td><td><span class=\"status " + status_class(f->status) + "\">" +
         drift_status_name(f->status) + "</span></td><td>" + notes + "</td></tr>\n";
  }
  s += "</tbody></table>\n";
  const PredictionDrift& p = r.prediction;
  s += "<h3>Predictions</h3>\n<p class=\"status-" + std::string(status_class(p.status)) + "\">";
  if (p.available) {
    s += "PSI " + num(p.psi) + " over " + std::to_string(p.train_shares.size()) + " bins (" +
         counted(p.train_rows, "row") + " at training, " + std::to_string(p.new_rows) +
         " new): ";
  } else {
    s += "not compared: " + html_escape(p.note) + ": ";
  }
  s += "<span class=\"status " + std::string(status_class(p.status)) + "\">" +
       drift_status_name(p.status) + "</span></p>\n";
  s += "<h3>Metrics</h3>\n";
  if (!r.labels_present) {
    s += "<p class=\"note\">the new data has no label column: metrics not compared</p>\n";
  } else if (r.metrics.empty()) {
    s += "<p class=\"note\">nothing to compare with</p>\n";
  } else {
    s += "<table class=\"grid\"><thead><tr><th>metric</th><th>training "
         "validation</th><th>new</th><th>drop</th>"
         "<th>relative</th><th>status</th></tr></thead><tbody>\n";
    for (const MetricDrift& md : r.metrics) {
      s += "<tr class=\"status-" + std::string(status_class(md.status)) + "\"><th scope=\"row\">" +
           html_escape(md.name) + (md.primary ? " *" : "") + "</th><td>" + num(md.train, 6) +
           "</td><td>" + num(md.now, 6) + "</td><td>" + num(md.drop, 6) + "</td><td>" +
           percent(md.relative_drop) + "</td><td><span class=\"status " + status_class(md.status) +
           "\">" + drift_status_name(md.status) + "</span></td></tr>\n";
    }
    s += "</tbody></table>\n<p class=\"note\">* the model's metric: the status follows it</p>\n";
  }
  for (const std::string& note : r.notes) s += "<p class=\"note\">" + html_escape(note) + "</p>\n";
  return s + "</section>\n";
}

constexpr const char* kStyle = R"css(
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2630; margin: 0; background: #f6f7f9; }
header { background: #1d2630; color: #fff; padding: 18px 32px; }
header h1 { margin: 0; font-size: 22px; }
header p { margin: 4px 0 0; color: #c9d1db; }
header code { background: #334155; color: #fff; }
main { padding: 8px 32px 48px; max-width: 1400px; }
section { background: #fff; border: 1px solid #dde2e8; border-radius: 6px; padding: 12px 20px 18px; margin: 18px 0; }
h2 { font-size: 18px; margin: 6px 0 12px; }
h3 { font-size: 15px; margin: 16px 0 8px; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, monospace; background: #f0f2f5; padding: 0 3px; border-radius: 3px; }
table { border-collapse: collapse; margin: 6px 0; }
table.kv th { text-align: left; font-weight: 600; padding: 2px 18px 2px 0; vertical-align: top; white-space: nowrap; }
table.kv td { padding: 2px 0; }
table.grid th, table.grid td { border: 1px solid #dde2e8; padding: 3px 9px; text-align: right; }
table.grid thead th { background: #f0f2f5; }
table.grid td.feature, table.grid th[scope=row] { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
figure { margin: 6px 0; }
figcaption { color: #56606b; font-size: 12.5px; max-width: 720px; }
.note { color: #56606b; font-style: italic; }
svg.chart { background: #fff; display: block; }
svg .frame { fill: none; stroke: #9aa4af; }
svg .grid { stroke: #e6e9ee; }
svg .tick { font-size: 11px; fill: #56606b; }
svg .axis-label { font-size: 12px; fill: #1d2630; }
svg .caption { font-size: 12px; fill: #1d2630; font-weight: 600; }
svg .series { fill: none; stroke: #2563eb; stroke-width: 2; }
svg .dot { fill: #2563eb; }
svg .reference { stroke: #9aa4af; stroke-dasharray: 4 4; fill: none; }
svg .best-epoch { stroke: #16a34a; stroke-dasharray: 3 3; }
svg .points circle { fill: #2563eb; fill-opacity: 0.35; }
svg .bar.positive { fill: #2563eb; }
svg .bar.negative { fill: #ea580c; }
svg .bar.status-ok { fill: #16a34a; }
svg .bar.status-warn { fill: #d97706; }
svg .bar.status-alert { fill: #dc2626; }
svg .bar-label, svg .bar-value { font-size: 11.5px; fill: #1d2630; }
svg .zero { stroke: #56606b; }
svg .marker.warn { stroke: #d97706; stroke-dasharray: 4 3; }
svg .marker.alert { stroke: #dc2626; stroke-dasharray: 4 3; }
svg .cell { fill: #2563eb; stroke: #fff; }
svg .count { font-size: 12px; fill: #1d2630; }
svg .count.dark { fill: #fff; }
.status { font-weight: 600; padding: 0 6px; border-radius: 3px; }
.status.ok { background: #dcfce7; color: #166534; }
.status.warn { background: #fef3c7; color: #92400e; }
.status.alert { background: #fee2e2; color: #991b1b; }
tr.status-warn td { background: #fffbeb; }
tr.status-alert td { background: #fef2f2; }
footer { color: #56606b; font-size: 12px; padding: 0 32px 24px; }
)css";

}  // namespace

std::string render_html_report(const DeviceContext& ctx, const HtmlReportOptions& options) {
  const ModelFile model = load_model(options.model);
  std::string body;
  body += summary_section(model, options.model);
  body += learning_curves_section(model);
  if (!options.eval.empty()) body += eval_section(ctx, model, options);
  body += weights_section(model);
  if (!options.drift.empty()) body += drift_section(ctx, options);

  const std::string name = options.model.filename().string();
  std::string page = std::string(kReportStart) + std::string(kReportMark) + "\n";
  // Nothing on the page may load or run anything: inline styles and data only.
  page +=
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src "
      "'unsafe-inline'\">\n";
  page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  page += "<title>Lathe report: " + html_escape(name) + "</title>\n<style>" + std::string(kStyle) +
          "</style>\n</head>\n<body>\n";
  page +=
      "<header><h1>Lathe report: " + html_escape(name) + "</h1><p>" +
      html_escape(task_name(model.task)) + " model of <code>" + html_escape(model.label) +
      "</code>" +
      (options.eval.empty() ? ""
                            : ", evaluated on " + html_escape(options.eval.filename().string())) +
      (options.drift.empty()
           ? ""
           : ", drift against " + html_escape(options.drift.filename().string())) +
      "</p></header>\n<main>\n";
  page += body;
  page +=
      "</main>\n<footer>written by <code>lathe report</code> (lathe 0.1.0); a self-contained page: "
      "no scripts, no "
      "external resources</footer>\n</body>\n</html>\n";
  return page;
}

void write_html_report(const DeviceContext& ctx, const HtmlReportOptions& options,
                       const std::filesystem::path& out) {
  const std::string page =
      render_html_report(ctx, options);  // every input read before any output exists
  TemporaryOutput output(out);
  {
    std::ofstream file(output.path(), std::ios::binary | std::ios::trunc);
    if (!file) throw Error(out.string() + ": cannot create the report: " + std::strerror(errno));
    errno = 0;
    file.write(page.data(), static_cast<std::streamsize>(page.size()));
    file.close();
    if (!file) {
      throw Error(out.string() + ": cannot write the report: " + (errno != 0 ? std::strerror(errno) : "an I/O error"));
    }
  }
  output.commit();
}

}  // namespace lathe
