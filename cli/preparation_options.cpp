#include "cli/preparation_options.h"

#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <vector>

#include "cli/commands.h"
#include "runtime/error.h"
#include "runtime/name_lists.h"

namespace lathe::cli {

namespace {

// What each setting takes, for its errors: an item that is none of them, or an empty value.
const std::string kImputeKinds = "mean, median or constant[:VALUE]";
const std::string kScaleKinds = "standard, minmax, robust or none";
const std::string kClipKinds = "none, quantile[:LO:HI], std[:K] or iqr[:K]";
const std::string kBinsKinds =
    "0 (none) or a whole number of bins from 2 to " + std::to_string(kMaxBins);
// The same for an empty value or an empty item (add_preparation_options), which may also be a
// column's own setting.
std::string per_column(const std::string& kinds) {
  return kinds + ", or COLUMN=KIND items separated by commas";
}

double parse_double(const std::string& flag, const std::string& item, const std::string& text) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw UsageError(flag + ": '" + item + "': '" + text + "' is not a number");
  }
  return v;
}

void apply_impute(const std::string& item, const std::string& kind, ColumnPreparation& p) {
  if (kind == "mean") {
    p.impute = ImputeKind::mean;
  } else if (kind == "median") {
    p.impute = ImputeKind::median;
  } else if (kind == "constant" || kind.starts_with("constant:")) {
    p.impute = ImputeKind::constant;
    p.impute_constant = kind == "constant" ? 0.0 : parse_double("--impute", item, kind.substr(9));
    // The filled values are float32: beyond its range the constant would be infinite, and training
    // would report a divergence rather than the option.
    if (!(std::fabs(p.impute_constant) <= std::numeric_limits<float>::max())) {
      throw UsageError("--impute: '" + item +
                       "': the constant must be a finite float32, within +-3.4e38");
    }
  } else {
    throw UsageError("--impute: '" + item + "': expected " + kImputeKinds);
  }
}

void apply_scale(const std::string& item, const std::string& kind, ColumnPreparation& p) {
  if (kind == "standard") {
    p.scale = ScaleKind::standard;
  } else if (kind == "minmax") {
    p.scale = ScaleKind::minmax;
  } else if (kind == "robust") {
    p.scale = ScaleKind::robust;
  } else if (kind == "none") {
    p.scale = ScaleKind::none;
  } else {
    throw UsageError("--scale: '" + item + "': expected " + kScaleKinds);
  }
}

void apply_clip(const std::string& item, const std::string& kind, ColumnPreparation& p) {
  const auto parts = split_name_list(kind, ':');
  if (parts.empty()) throw UsageError("--clip: empty item");
  // A kind without its parameters takes their documented defaults, also in a COL=KIND item, which
  // starts from a copy of the default item's settings: `--clip std:2,x=std` clips x to 3 standard
  // deviations, as `--impute constant:5,x=constant` fills x with 0.
  const ColumnPreparation documented;
  if (parts[0] == "none" && parts.size() == 1) {
    p.clip = ClipKind::none;
  } else if (parts[0] == "quantile" && (parts.size() == 1 || parts.size() == 3)) {
    p.clip = ClipKind::quantile;
    p.clip_lo_quantile = parts.size() == 3 ? parse_double("--clip", item, parts[1]) : documented.clip_lo_quantile;
    p.clip_hi_quantile = parts.size() == 3 ? parse_double("--clip", item, parts[2]) : documented.clip_hi_quantile;
    if (!(p.clip_lo_quantile >= 0 && p.clip_lo_quantile < p.clip_hi_quantile && p.clip_hi_quantile <= 1)) {
      throw UsageError("--clip: '" + item + "': quantiles must satisfy 0 <= LO < HI <= 1");
    }
  } else if (parts[0] == "std" && parts.size() <= 2) {
    p.clip = ClipKind::stddev;
    p.clip_k = parts.size() == 2 ? parse_double("--clip", item, parts[1]) : documented.clip_k;
    if (!(p.clip_k > 0 && std::isfinite(p.clip_k))) {
      throw UsageError("--clip: '" + item + "': K must be positive and finite");
    }
  } else if (parts[0] == "iqr" && parts.size() <= 2) {
    p.clip = ClipKind::iqr;
    p.clip_iqr_k = parts.size() == 2 ? parse_double("--clip", item, parts[1]) : documented.clip_iqr_k;
    if (!(p.clip_iqr_k > 0 && std::isfinite(p.clip_iqr_k))) {
      throw UsageError("--clip: '" + item + "': K must be positive and finite");
    }
  } else {
    throw UsageError("--clip: '" + item + "': expected " + kClipKinds);
  }
}

void apply_bins(const std::string& item, const std::string& kind, ColumnPreparation& p) {
  std::int32_t bins = -1;
  const auto [end, ec] = std::from_chars(kind.data(), kind.data() + kind.size(), bins);
  if (ec != std::errc() || end != kind.data() + kind.size() || (bins != 0 && (bins < 2 || bins > kMaxBins))) {
    throw UsageError("--bins: '" + item + "': expected " + kBinsKinds);
  }
  p.bins = bins;
}

using Apply = std::function<void(const std::string&, const std::string&, ColumnPreparation&)>;

// Items without '=' set the defaults; COL=KIND items override one column. Defaults come first so a
// per-column override of one setting keeps the defaults of the others. No KIND holds '=': a column
// name may ("ratio=xy=median"), so COL is all before the last one.
// A setting given twice for the same columns (two defaults, or COL= twice) is a usage error: which
// one was meant is not for the parser to guess.
void parse_setting(const std::string& flag, const std::string& text, const Apply& apply,
                   PreparationOptions& options, std::vector<std::pair<std::string, std::string>>& per_column) {
  std::string default_item;
  std::map<std::string, std::string> column_item;
  for (const auto& item : split_name_list(text)) {
    const auto eq = item.rfind('=');
    if (eq == std::string::npos) {
      if (!default_item.empty()) {
        throw UsageError(flag + ": two defaults, '" + default_item + "' and '" + item + "': give one");
      }
      default_item = item;
      apply(item, item, options.defaults);
    } else {
      if (eq == 0 || eq + 1 == item.size()) throw UsageError(flag + ": '" + item + "': expected COLUMN=KIND");
      const auto [it, inserted] = column_item.emplace(item.substr(0, eq), item);
      if (!inserted) {
        throw UsageError(flag + ": column '" + it->first + "' is given twice, '" + it->second + "' and '" + item +
                         "': give one");
      }
      per_column.emplace_back(item, flag);
    }
  }
}

}  // namespace

void add_preparation_options(CLI::App* command, PreparationArgs& args) {
  // An empty value or list item is refused as the option is read (non_empty, non_empty_items): it
  // read as the option left out (`--impute ""` as the default mean, `--drop ""` as no columns).
  command->add_option("--label", args.label, "Label column: passed through, never a feature")
      ->check(non_empty("a column name"));
  command
      ->add_option("--impute", args.impute,
                   "Missing numeric values: mean, median or constant[:V]; per column COL=KIND "
                   "(comma separated)")
      ->capture_default_str()
      ->check(non_empty_items(per_column(kImputeKinds)));
  command
      ->add_option("--scale", args.scale, "standard, minmax, robust or none; per column COL=KIND")
      ->capture_default_str()
      ->check(non_empty_items(per_column(kScaleKinds)));
  command
      ->add_option(
          "--clip", args.clip,
          "Outliers: none, quantile[:LO:HI] (default 0.01:0.99), std[:K] (default 3) or iqr[:K] "
          "(the quartiles +- K interquartile ranges, default 1.5: where more than 1% of the values "
          "are gross outliers); per column COL=KIND")
      ->capture_default_str()
      ->check(non_empty_items(per_column(kClipKinds)));
  command
      ->add_option(
          "--bins", args.bins,
          "Quantile bins of numeric columns: each also becomes a one-hot of the bin of its value "
          "among N equal-count bins of the training rows (missing values have their own), beside "
          "its prepared value: a step function for a linear model, bins an fm crosses with the "
          "other features; 0 = none; per column COL=N")
      ->capture_default_str()
      ->check(non_empty_items(per_column(kBinsKinds)));
  command
      ->add_option(
          "--cross", args.cross,
          "Feature crosses: all (every numeric pair), a list like \"age*income,city*device\", or "
          "both (\"all,age*city\"); "
          "COL#bins crosses a binned column's bins (--bins) with a categorical column or "
          "other bins, as \"age#bins*city\"; in a column's name a '*' is written \\*, and a '#' "
          "\\# (a column named like COL#bins, not COL's bins)")
      ->check(non_empty_items("all, or COLUMN*COLUMN items separated by commas"));
  command->add_flag("--missing-indicators", args.missing_indicators,
                    "Add a 0/1 feature per numeric column that has missing values");
  command
      ->add_option(
          "--drop", args.drop,
          "Columns that are not features (ids, timestamps, leaking columns), comma separated (a "
          "comma in a name written \\,): not prepared, not trained on, not needed to score; lathe "
          "prepare writes them unchanged as passthrough columns (lathe score --id can pass one "
          "through)")
      ->check(non_empty_items("column names separated by commas"));
  add_whole_number_option(command, "--hash-buckets", args.hash_buckets,
                          "Buckets of categorical x categorical crosses")
      ->capture_default_str();
  add_whole_number_option(command, "--max-categories", args.max_categories,
                          "A categorical column with more labels is hashed into --category-buckets")
      ->capture_default_str();
  args.category_buckets_option = add_whole_number_option(command, "--category-buckets", args.category_buckets,
                          "Buckets of a hashed categorical column (default: per column, the power of two at or "
                          "above twice its training labels, from 16384 to 1048576)");
  add_whole_number_option(command, "--min-category-count", args.min_category_count,
                          "A label in fewer training rows has no slot of its own: it shares the unknown slot "
                          "with labels never seen (1 = every label seen has one); --max-categories counts the "
                          "labels left")
      ->capture_default_str();
}

PreparationOptions parse_preparation_args(const PreparationArgs& args) {
  PreparationOptions options;
  options.label = args.label;
  options.missing_indicators = args.missing_indicators;
  if (args.hash_buckets < 1 || args.hash_buckets > kMaxHashBuckets) {
    throw UsageError("--hash-buckets must be from 1 to " + std::to_string(kMaxHashBuckets) + " (got " +
                     std::to_string(args.hash_buckets) + ")");
  }
  if (args.max_categories < 1) throw UsageError("--max-categories must be at least 1");
  if (args.min_category_count < 1) throw UsageError("--min-category-count must be at least 1");
  const bool category_buckets_given = args.category_buckets_option && args.category_buckets_option->count() > 0;
  if (category_buckets_given && (args.category_buckets < 1 || args.category_buckets > kMaxHashBuckets)) {
    throw UsageError("--category-buckets must be from 1 to " + std::to_string(kMaxHashBuckets) + " (got " +
                     std::to_string(args.category_buckets) + ")");
  }
  options.hash_buckets = args.hash_buckets;
  options.max_categories = args.max_categories;
  options.category_buckets = category_buckets_given ? args.category_buckets : 0;
  options.min_category_count = args.min_category_count;

  std::vector<std::pair<std::string, std::string>> per_column;  // item, flag
  parse_setting("--impute", args.impute, apply_impute, options, per_column);
  parse_setting("--scale", args.scale, apply_scale, options, per_column);
  parse_setting("--clip", args.clip, apply_clip, options, per_column);
  parse_setting("--bins", args.bins, apply_bins, options, per_column);
  for (const auto& [item, flag] : per_column) {
    const auto eq = item.rfind('=');
    const std::string column = item.substr(0, eq);
    const std::string kind = item.substr(eq + 1);
    auto [it, inserted] = options.per_column.try_emplace(column, options.defaults);
    if (flag == "--impute") apply_impute(item, kind, it->second);
    if (flag == "--scale") apply_scale(item, kind, it->second);
    if (flag == "--clip") apply_clip(item, kind, it->second);
    if (flag == "--bins") apply_bins(item, kind, it->second);
  }

  for (const auto& column : split_name_list(args.drop)) {
    if (!args.label.empty() && column == args.label) {
      throw UsageError("--drop: '" + column + "' is the label, which is never a feature");
    }
    options.exclude.push_back(column);
  }

  const std::vector<std::string> items = split_name_list(args.cross);
  const auto is_cross = [](const std::string& item) {
    const std::vector<CrossSide> sides = split_cross(item);
    return sides.size() == 2 && !sides[0].name.empty() && !sides[1].name.empty();
  };
  const auto shown = [](const std::string& item) {
    return lists_as_is(item) ? item : listed_name(item);
  };
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string& item = items[i];
    // `all` beside named crosses (`--cross all,age*city`) adds every numeric pair to them; no
    // column's cross is spelled so, it has no '*'.
    if (item == "all") {
      options.cross_all = true;
      continue;
    }
    if (!is_cross(item)) {
      // No '*' in it, but a cross with the item next to it: most likely a column's name holding
      // a ',' that was not escaped (`--cross 'mass, g*sex'`), which the '*' hint missed.
      const bool one_with_next = i + 1 < items.size() && is_cross(item + "," + items[i + 1]);
      const bool one_with_previous = i > 0 && is_cross(items[i - 1] + "," + item);
      std::string hint = "(a '*' in a column's name is written \\*)";
      if (item.find('*') == std::string::npos && (one_with_next || one_with_previous)) {
        hint = "(if the ',' between " +
               (one_with_next ? "it and '" + shown(items[i + 1]) + "'"
                              : "'" + shown(items[i - 1]) + "' and it") +
               " is in a column's name, write it \\,; a '*' in a column's name is written \\*)";
      }
      throw UsageError("--cross: '" + shown(item) + "': expected COLUMN*COLUMN " + hint);
    }
    const std::vector<CrossSide> sides = split_cross(item);
    options.crosses.push_back({sides[0].name, sides[1].name, sides[0].column, sides[1].column});
  }
  return options;
}

}  // namespace lathe::cli
