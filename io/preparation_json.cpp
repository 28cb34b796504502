#include "io/preparation_json.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "runtime/error.h"

namespace lathe {

namespace {

const char* sparse_kind_name(SparseKind k) {
  switch (k) {
    case SparseKind::one_hot:
      return "one_hot";
    case SparseKind::categorical_cross:
      return "categorical_cross";
    case SparseKind::bins:
      return "bins";
    default:
      return "slope";
  }
}

SparseKind sparse_kind_from(const std::string& s, const std::string& context) {
  if (s == "one_hot") return SparseKind::one_hot;
  if (s == "categorical_cross") return SparseKind::categorical_cross;
  if (s == "slope") return SparseKind::slope;
  if (s == "bins") return SparseKind::bins;
  throw InputError(context + ": unknown sparse group kind '" + s + "'");
}

nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

float float_or(const nlohmann::json& j, float if_null) { return j.is_null() ? if_null : j.get<float>(); }

}  // namespace

std::string preparation_to_json(const FittedPreparation& fitted) {
  nlohmann::json j;
  // Format 2 adds quantile bins, format 3 crosses of them (a cross's side a or b that is a numeric
  // column's bins: "a_bins" / "b_bins"); each preparation is written in the oldest format that
  // holds it, which a Lathe from before reads, while a newer one is refused there as newer
  // instead of misread (a cross of bins taken for a cross of the categorical columns of its
  // indices).
  const bool binned = std::any_of(fitted.numeric.begin(), fitted.numeric.end(),
                                  [](const NumericEncoding& n) { return n.binned; });
  const bool bins_crossed = std::any_of(fitted.sparse.begin(), fitted.sparse.end(),
                                        [](const SparseGroup& g) { return g.a_bins || g.b_bins; });
  j["format_version"] = bins_crossed ? 3 : binned ? 2 : 1;
  j["label"] = fitted.label;
  j["hash_buckets"] = fitted.hash_buckets;
  j["numeric"] = nlohmann::json::array();
  for (const auto& n : fitted.numeric) {
    j["numeric"].push_back({{"name", n.name},
                            {"fill", finite_or_null(n.transform.fill)},
                            {"clip_lo", finite_or_null(n.transform.clip_lo)},
                            {"clip_hi", finite_or_null(n.transform.clip_hi)},
                            {"center", n.transform.center},
                            {"inv_scale", n.transform.inv_scale},
                            {"has_missing", n.has_missing}});
    if (n.binned) {
      j["numeric"].back()["binned"] = true;
      j["numeric"].back()["bin_edges"] = n.bin_edges;
      if (std::isfinite(n.bin_min) && std::isfinite(n.bin_max)) {
        j["numeric"].back()["bin_range"] = {n.bin_min, n.bin_max};
      }
    }
  }
  j["indicators"] = fitted.indicators;
  j["numeric_crosses"] = fitted.numeric_crosses;
  j["categorical"] = nlohmann::json::array();
  for (const auto& c : fitted.categorical) {
    j["categorical"].push_back(
        {{"name", c.name}, {"vocabulary", c.vocabulary}, {"hashed", c.hashed}, {"buckets", c.buckets}});
  }
  j["sparse"] = nlohmann::json::array();
  for (const auto& g : fitted.sparse) {
    j["sparse"].push_back(
        {{"kind", sparse_kind_name(g.kind)}, {"name", g.name}, {"a", g.a}, {"b", g.b}, {"slots", g.slots}});
    // Only where set, so that the text (and fingerprint) of every other preparation is unchanged.
    if (g.a_bins) j["sparse"].back()["a_bins"] = true;
    if (g.b_bins) j["sparse"].back()["b_bins"] = true;
  }
  j["dense_names"] = fitted.dense_names();
  return j.dump();
}

FittedPreparation preparation_from_json(const std::string& text, const std::string& context) {
  FittedPreparation f;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    if (j.at("format_version").get<int>() > 3) {
      throw InputError(context + ": the preparation was written by a newer Lathe (format " +
                       std::to_string(j.at("format_version").get<int>()) + ")");
    }
    f.label = j.at("label").get<std::string>();
    f.hash_buckets = j.at("hash_buckets").get<std::uint32_t>();
    for (const auto& n : j.at("numeric")) {
      NumericEncoding e;
      e.name = n.at("name").get<std::string>();
      e.transform.fill = float_or(n.at("fill"), 0.0f);
      e.transform.clip_lo = float_or(n.at("clip_lo"), -std::numeric_limits<float>::infinity());
      e.transform.clip_hi = float_or(n.at("clip_hi"), std::numeric_limits<float>::infinity());
      e.transform.center = n.at("center").get<double>();
      e.transform.inv_scale = n.at("inv_scale").get<double>();
      e.has_missing = n.at("has_missing").get<bool>();
      e.binned = n.value("binned", false);
      if (e.binned) {
        e.bin_edges = n.at("bin_edges").get<std::vector<float>>();
        if (n.contains("bin_range")) {
          const auto range = n.at("bin_range").get<std::vector<float>>();
          if (range.size() != 2 || !std::isfinite(range[0]) || !std::isfinite(range[1]) || range[0] > range[1]) {
            throw InputError(context + ": the stored preparation is inconsistent: the bin range of column " + e.name);
          }
          e.bin_min = range[0];
          e.bin_max = range[1];
        }
      }
      f.numeric.push_back(e);
    }
    f.indicators = j.at("indicators").get<std::vector<std::int32_t>>();
    f.numeric_crosses = j.at("numeric_crosses").get<std::vector<std::pair<std::int32_t, std::int32_t>>>();
    for (const auto& c : j.at("categorical")) {
      CategoricalEncoding e;
      e.name = c.at("name").get<std::string>();
      e.vocabulary = c.at("vocabulary").get<std::vector<std::string>>();
      e.hashed = c.at("hashed").get<bool>();
      e.buckets = c.at("buckets").get<std::uint32_t>();
      f.categorical.push_back(e);
    }
    for (const auto& g : j.at("sparse")) {
      SparseGroup s;
      s.kind = sparse_kind_from(g.at("kind").get<std::string>(), context);
      s.name = g.at("name").get<std::string>();
      s.a = g.at("a").get<std::int32_t>();
      s.b = g.at("b").get<std::int32_t>();
      s.slots = g.at("slots").get<std::uint32_t>();
      s.a_bins = g.value("a_bins", false);
      s.b_bins = g.value("b_bins", false);
      f.sparse.push_back(s);
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(context + ": the stored preparation is not valid: " + e.what());
  }
  // Every index must be in range: a damaged file must not index out of bounds later.
  const auto n_numeric = static_cast<std::int32_t>(f.numeric.size());
  const auto n_categorical = static_cast<std::int32_t>(f.categorical.size());
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) throw InputError(context + ": the stored preparation is inconsistent: " + what);
  };
  for (auto i : f.indicators) check(i >= 0 && i < n_numeric, "indicator index");
  // Bucket counts within what fitting allows: a damaged count of 2^32 - 1 was allocated as given.
  check(f.hash_buckets >= 1 && f.hash_buckets <= kMaxHashBuckets, "hash_buckets " + std::to_string(f.hash_buckets));
  for (const CategoricalEncoding& e : f.categorical) {
    if (e.hashed) check(e.buckets >= 1 && e.buckets <= kMaxHashBuckets, "column " + e.name + " has " + std::to_string(e.buckets) + " buckets");
    // Slots are found by binary search in the vocabulary.
    if (!e.hashed) {
      check(std::adjacent_find(e.vocabulary.begin(), e.vocabulary.end(), std::greater_equal<>()) == e.vocabulary.end(),
            "the vocabulary of column " + e.name + " is not sorted and unique");
    }
  }
  for (auto [a, b] : f.numeric_crosses) check(a >= 0 && a < n_numeric && b >= 0 && b < n_numeric, "numeric cross");
  // A group's slots must be its encoding's: the model's weights and the warm start's slot tables
  // are sized by them, and a damaged count would read past those tables.
  const auto categorical_slots = [&](std::int32_t c) {
    const CategoricalEncoding& e = f.categorical[static_cast<std::size_t>(c)];
    return e.hashed ? static_cast<std::int64_t>(e.buckets) + 2 : static_cast<std::int64_t>(e.vocabulary.size()) + 2;
  };
  const auto slots_are = [&](const SparseGroup& g, std::int64_t want) {
    check(static_cast<std::int64_t>(g.slots) == want, "group " + g.name + " has " + std::to_string(g.slots) +
                                                          " slots where its encoding has " + std::to_string(want));
  };
  std::vector<int> bins_groups(f.numeric.size(), 0);
  // A side of a categorical cross: a categorical column, or (bins) a binned numeric column.
  const auto check_side = [&](const SparseGroup& g, std::int32_t index, bool bins) {
    if (bins) {
      check(index >= 0 && index < n_numeric && f.numeric[static_cast<std::size_t>(index)].binned,
            "cross " + g.name + " of the bins of a column without bins");
    } else {
      check(index >= 0 && index < n_categorical, "group " + g.name);
    }
  };
  for (const auto& g : f.sparse) {
    check(g.kind == SparseKind::categorical_cross || (!g.a_bins && !g.b_bins),
          "group " + g.name + " has a side of bins but is not a cross");
    if (g.kind == SparseKind::slope) {
      check(g.a >= 0 && g.a < n_numeric && g.b >= 0 && g.b < n_categorical, "slope group " + g.name);
      slots_are(g, categorical_slots(g.b));
    } else if (g.kind == SparseKind::bins) {
      check(g.a >= 0 && g.a < n_numeric && f.numeric[static_cast<std::size_t>(g.a)].binned,
            "bins group " + g.name + " of a column without bins");
      check(g.slots == f.numeric[static_cast<std::size_t>(g.a)].bin_edges.size() + 2,
            "bins group " + g.name + " has " + std::to_string(g.slots) + " slots for " +
                std::to_string(f.numeric[static_cast<std::size_t>(g.a)].bin_edges.size()) + " edges");
      check(++bins_groups[static_cast<std::size_t>(g.a)] == 1, "bins group " + g.name + " is given twice");
    } else if (g.kind == SparseKind::categorical_cross) {
      check_side(g, g.a, g.a_bins);
      check_side(g, g.b, g.b_bins);
      slots_are(g, f.hash_buckets);
    } else {
      check(g.a >= 0 && g.a < n_categorical, "group " + g.name);
      slots_are(g, categorical_slots(g.a));
    }
    check(g.slots > 0, "group " + g.name + " has no slots");
  }
  for (const auto& n : f.numeric) {
    check(std::isfinite(n.transform.center) && std::isfinite(n.transform.inv_scale) && std::isfinite(n.transform.fill),
          "numeric column " + n.name + " has non-finite parameters");
    for (std::size_t i = 0; i < n.bin_edges.size(); ++i) {
      check(std::isfinite(n.bin_edges[i]) && (i == 0 || n.bin_edges[i - 1] < n.bin_edges[i]),
            "numeric column " + n.name + "'s bin edges are not finite and ascending");
    }
  }
  return f;
}

}  // namespace lathe
