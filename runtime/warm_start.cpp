#include "runtime/warm_start.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <span>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "runtime/error.h"
#include "runtime/shortest_text.h"

namespace lathe {

namespace {

// The name of slot s of categorical encoding c.
std::string slot_name(const CategoricalEncoding& c, std::int32_t s) {
  if (s == c.missing_slot()) return "<missing>";
  if (s == c.unknown_slot()) return "<unknown>";
  if (!c.hashed) return c.vocabulary.at(static_cast<std::size_t>(s));
  // Appended, not "#" + ...: GCC 12 warns (-Wrestrict, a false positive) on that once inlined.
  std::string name = "#";
  name += std::to_string(s);
  name += '/';
  name += std::to_string(c.buckets);
  return name;
}

std::string one_hot_key(const CategoricalEncoding& c, std::int32_t s) {
  return "onehot:" + c.name + "=" + slot_name(c, s);
}

constexpr std::int64_t kConstant = -1;  // the term of an expansion that is a constant

// One term of an earlier feature as new features: coefficient times new feature `feature` (or 1
// for kConstant).
struct Term {
  std::int64_t feature = kConstant;
  double coefficient = 0.0;
};

// An earlier feature as an affine map of new features (at most four terms, features distinct),
// and which of its pairwise term products the new model can express.
struct Expansion {
  std::vector<Term> terms;
  // A product of two non-constant terms that equals a third new feature: {i, j, feature} (slope x
  // its one-hot: the slope; column i x column j of a cross: the cross). Other such products are
  // cubic (a cross term times one of its columns).
  struct Product {
    std::size_t i = 0, j = 0;
    std::int64_t feature = 0;
  };
  std::vector<Product> products;

  void clear() {
    terms.clear();
    products.clear();
  }
  void add(std::int64_t feature, double coefficient) {
    if (coefficient == 0.0) return;
    for (Term& t : terms) {
      if (t.feature == feature) {
        t.coefficient += coefficient;
        return;
      }
    }
    terms.push_back({feature, coefficient});
  }
  std::int64_t index_of(std::int64_t feature) const {
    for (std::size_t i = 0; i < terms.size(); ++i) {
      if (terms[i].feature == feature) return static_cast<std::int64_t>(i);
    }
    return -1;
  }
};

// Every earlier feature's Expansion, without a heap object per feature: a table of hashed columns
// and crosses has tens of millions of features, nearly all of them (one-hot slots, hashed buckets,
// categorical cross buckets, missing indicators) one new feature of coefficient 1, which is held as
// that feature's index; the others (numeric columns and crosses, slopes) share two arrays.
class Expansions {
 public:
  explicit Expansions(std::size_t features) : feature_(features, kAbsent) {}

  // Feature p's expansion (features are set once each; an empty one leaves p absent).
  void set(std::size_t p, const Expansion& e) {
    if (e.terms.empty()) return;
    if (e.terms.size() == 1 && e.terms[0].feature != kConstant && e.terms[0].coefficient == 1.0 &&
        e.products.empty()) {
      feature_[p] = e.terms[0].feature;
      return;
    }
    feature_[p] = kFirstStored - static_cast<std::int64_t>(term_begin_.size() - 1);
    terms_.insert(terms_.end(), e.terms.begin(), e.terms.end());
    term_begin_.push_back(terms_.size());
    products_.insert(products_.end(), e.products.begin(), e.products.end());
    product_begin_.push_back(products_.size());
  }
  // Feature p as new feature q, coefficient 1.
  void carry_as_is(std::size_t p, std::int64_t q) { feature_[p] = q; }
  // Feature p's terms (none: `to` lacks it); `single` holds the term of a feature carried as it is.
  std::span<const Term> terms(std::size_t p, Term& single) const {
    const std::int64_t f = feature_[p];
    if (f == kAbsent) return {};
    if (f >= 0) {
      single = {f, 1.0};
      return {&single, 1};
    }
    const auto i = static_cast<std::size_t>(kFirstStored - f);
    return {terms_.data() + term_begin_[i], term_begin_[i + 1] - term_begin_[i]};
  }
  std::span<const Expansion::Product> products(std::size_t p) const {
    const std::int64_t f = feature_[p];
    if (f >= kAbsent) return {};
    const auto i = static_cast<std::size_t>(kFirstStored - f);
    return {products_.data() + product_begin_[i], product_begin_[i + 1] - product_begin_[i]};
  }

 private:
  // feature_[p]: the new feature, kAbsent, or kFirstStored - i for the i-th stored expansion.
  static constexpr std::int64_t kAbsent = -1, kFirstStored = -2;
  std::vector<std::int64_t> feature_;
  std::vector<Term> terms_;
  std::vector<std::size_t> term_begin_{0};
  std::vector<Expansion::Product> products_;
  std::vector<std::size_t> product_begin_{0};
};

// A column prepared as x by `from` and y by `to`: x = a y + b (NumericTransform: (v - center) *
// inv_scale).
struct Affine {
  double a = 1.0, b = 0.0;
};

Affine affine_between(const NumericTransform& from, const NumericTransform& to) {
  return {from.inv_scale / to.inv_scale, (to.center - from.center) * from.inv_scale};
}

constexpr std::int32_t kNoSlot = -1;

// The name of slot s of c (slot_name) for a slot that is not a hashed bucket, without a copy.
std::string_view unhashed_slot_name(const CategoricalEncoding& c, std::int32_t s) {
  if (s == c.missing_slot()) return "<missing>";
  if (s == c.unknown_slot()) return "<unknown>";
  return c.vocabulary.at(static_cast<std::size_t>(s));
}

// For each slot of a column's encoding in `from` (`old_column`), the slot of its encoding in `to`
// (`new_column`) of the same name (slot_name; the first such), or kNoSlot: the same key in
// expanded_feature_keys, matched without building a name per hashed bucket. A hashed bucket is
// named by its number and the bucket count, so it matches only the same bucket of a hashed column
// of the same count (a vocabulary label spelled like a bucket name, "#3/16", is not taken for one).
struct SlotMatch {
  bool same = false;               // slot s is slot s (both hashed into one bucket count)
  std::vector<std::int32_t> slot;  // otherwise, per old slot
  std::int32_t operator[](std::int32_t s) const {
    return same ? s : slot[static_cast<std::size_t>(s)];
  }
};

SlotMatch match_slots(const CategoricalEncoding& old_column,
                      const CategoricalEncoding& new_column) {
  SlotMatch match;
  if (old_column.hashed && new_column.hashed && old_column.buckets == new_column.buckets) {
    match.same = true;
    return match;
  }
  // Hashed buckets of other counts share no name: only labels, missing and unknown can match.
  std::unordered_map<std::string_view, std::int32_t> new_slot;
  for (std::int32_t s = new_column.hashed ? new_column.missing_slot() : 0; s < new_column.slots();
       ++s) {
    new_slot.emplace(unhashed_slot_name(new_column, s), s);
  }
  match.slot.assign(static_cast<std::size_t>(old_column.slots()), kNoSlot);
  for (std::int32_t s = old_column.hashed ? old_column.missing_slot() : 0; s < old_column.slots();
       ++s) {
    const auto it = new_slot.find(unhashed_slot_name(old_column, s));
    if (it != new_slot.end()) match.slot[static_cast<std::size_t>(s)] = it->second;
  }
  return match;
}

// A slot of a categorical column that both preparations know (the same slot name), with its label
// hash in each and its training count in the earlier profile.
struct SharedSlot {
  std::uint64_t old_hash = 0, new_hash = 0;
  double count = 1.0;
};

// The slots that a column's encodings in `from` (`old_column`) and `to` (`new_column`) share, with
// their counts in `profile`, the earlier training rows' profile; `counted` says whether it had the
// column's counts (else each count is 1).
std::vector<SharedSlot> shared_slots(const CategoricalEncoding& old_column,
                                     const CategoricalEncoding& new_column,
                                     const DataProfile* profile, bool& counted) {
  std::vector<double> counts(static_cast<std::size_t>(old_column.slots()), 0.0);
  counted = false;
  if (profile) {
    for (const ColumnProfile& c : profile->columns) {
      if (c.name != old_column.name || c.type != ColumnType::categorical) continue;
      // slot_of sends each profiled label where the preparation sends it (a hashed column's bucket;
      // a label fit_preparation left out, having no rows, to the unknown slot).
      const CategoricalProfile& p = c.categorical;
      for (std::size_t i = 0; i < p.labels.size() && i < p.counts.size(); ++i) {
        counts[static_cast<std::size_t>(old_column.slot_of(p.labels[i]))] +=
            static_cast<double>(p.counts[i]);
      }
      counts[static_cast<std::size_t>(old_column.missing_slot())] += static_cast<double>(p.missing);
      counted = true;
      break;
    }
  }
  const SlotMatch match = match_slots(old_column, new_column);
  const std::vector<std::uint64_t> old_hashes = old_column.slot_label_hashes(),
                                   new_hashes = new_column.slot_label_hashes();
  std::vector<SharedSlot> shared;
  for (std::int32_t s = 0; s < old_column.slots(); ++s) {
    const std::int32_t new_slot = match[s];
    if (new_slot == kNoSlot) continue;
    shared.push_back({old_hashes[static_cast<std::size_t>(s)],
                      new_hashes[static_cast<std::size_t>(new_slot)],
                      counted ? counts[static_cast<std::size_t>(s)] : 1.0});
  }
  return shared;
}

constexpr std::int64_t kNoSource = -1;  // a new slot that no moved label or pair falls in
constexpr std::int64_t kAveraged = -2;  // one whose labels or pairs had different old parameters

// The slots of a sparse group moved to another encoding (a categorical cross hashed into another
// bucket count, pair by pair; a one-hot column that changed between a vocabulary and buckets, label
// by label): for each new slot, the old slot whose parameters it takes, or the average of the old
// parameters of what falls in it.
struct SlotMove {
  std::int64_t old_first = 0, new_first = 0;  // expanded index of slot 0
  std::vector<std::int64_t> source;           // per new slot: old slot, kNoSource or kAveraged
  std::vector<std::int64_t> averaged;         // the kAveraged slots, ascending
  // Per averaged slot, per output: the averaged weight, then the k averaged factors.
  std::vector<double> average;
};

// The move of a group whose old slots start at expanded index `old_first` into `new_slots` slots
// from `new_first`. for_each(f) calls f(old_slot, new_slot, weight) for every label or pair that
// both encodings place (weight >= 0; it runs twice). A new slot takes its old slot's parameters
// while every item in it has the same ones, else their average weighted by `weight` (plain where
// the weights add up to zero); one that nothing falls in takes `fallback`'s (an old slot, or
// kNoSource: none). Returns the number of averaged slots in `shared`.
template <typename ForEach>
SlotMove build_slot_move(std::int64_t old_first, std::int64_t new_first, std::uint32_t new_slots,
                         const ForEach& for_each, std::int64_t fallback,
                         const ModelParameters& parameters, std::size_t outputs, std::size_t k,
                         std::int64_t& shared) {
  SlotMove move;
  move.old_first = old_first;
  move.new_first = new_first;
  const std::size_t old_features = parameters.weights.size() / outputs;
  // Whether old slots x and y hold the same parameters (every output's weight and factors).
  const auto same_parameters = [&](std::int64_t x, std::int64_t y) {
    const auto px = static_cast<std::size_t>(old_first + x),
               py = static_cast<std::size_t>(old_first + y);
    for (std::size_t o = 0; o < outputs; ++o) {
      if (parameters.weights[o * old_features + px] != parameters.weights[o * old_features + py])
        return false;
      for (std::size_t f = 0; f < k; ++f) {
        if (parameters.factors[(o * old_features + px) * k + f] !=
            parameters.factors[(o * old_features + py) * k + f])
          return false;
      }
    }
    return true;
  };

  // First pass: each new slot's first old slot, until one of other parameters makes it an average;
  // the weights and items of every slot, for the average.
  move.source.assign(new_slots, kNoSource);
  std::vector<double> total(new_slots, 0.0);
  std::vector<std::uint32_t> items(new_slots, 0);  // at most kMaxRemappedCrossPairs
  for_each([&](std::int64_t old_slot, std::uint32_t slot, double weight) {
    std::int64_t& source = move.source[slot];
    if (source == kNoSource) {
      source = old_slot;
    } else if (source >= 0 && source != old_slot && !same_parameters(source, old_slot)) {
      source = kAveraged;
    }
    total[slot] += weight;
    ++items[slot];
  });
  std::vector<std::int64_t> index(new_slots, -1);  // of an averaged slot in move.averaged
  for (std::uint32_t slot = 0; slot < new_slots; ++slot) {
    if (move.source[slot] == kNoSource) move.source[slot] = fallback;
    if (move.source[slot] != kAveraged) continue;
    index[slot] = static_cast<std::int64_t>(move.averaged.size());
    move.averaged.push_back(slot);
  }
  shared = static_cast<std::int64_t>(move.averaged.size());
  if (move.averaged.empty()) return move;

  // Second pass: the averaged slots' weighted sums of their items' old parameters (an item of zero
  // weight in a slot of zero total counts as 1: a plain average there).
  const std::size_t width = outputs * (1 + k);
  move.average.assign(move.averaged.size() * width, 0.0);
  for_each([&](std::int64_t old_slot, std::uint32_t slot, double weight) {
    if (index[slot] < 0) return;
    const auto p = static_cast<std::size_t>(old_first + old_slot);
    const double c = total[slot] > 0.0 ? weight : 1.0;
    double* sum = &move.average[static_cast<std::size_t>(index[slot]) * width];
    for (std::size_t o = 0; o < outputs; ++o) {
      sum[o * (1 + k)] += c * parameters.weights[o * old_features + p];
      // data(), not &factors[i]: a linear model (k == 0) has no factors, and indexing an empty
      // vector is undefined even where nothing is read.
      const float* v = parameters.factors.data() + (o * old_features + p) * k;
      for (std::size_t f = 0; f < k; ++f) sum[o * (1 + k) + 1 + f] += c * v[f];
    }
  });
  for (std::size_t i = 0; i < move.averaged.size(); ++i) {
    const auto slot = static_cast<std::size_t>(move.averaged[i]);
    const double sum = total[slot] > 0.0 ? total[slot] : static_cast<double>(items[slot]);
    for (std::size_t j = 0; j < width; ++j) move.average[i * width + j] /= sum;
  }
  return move;
}

// For each bin of binned column `column` of `to` (its bins, then its missing slot), the bin of
// the earlier edges `was` that holds a point of it: f(old slot, new slot). The point is the bin's
// edges' midpoint; for the open first and last bins the midpoint of the edge and the new training
// minimum or maximum, where the preparation knows them, else a value just below the first edge and
// the last edge. In double, so that a midpoint is strictly between two adjacent float edges. A
// column without edges (one bin, no point to place) has only its missing slot placed. The end bins
// hold the extremes: without the training range, the first bin's point just below its edge could
// fall in an earlier bin far above the new minimum (integers 0-19 binned at 3.9 where the earlier
// edges were 3, 5, ...: values 0-2 took the weights of [3, 5)).
template <typename F>
void for_each_moved_bin(const std::vector<float>& was, const NumericEncoding& column, const F& f) {
  const std::vector<float>& now = column.bin_edges;
  // The earlier bin of x: its edges at or below x (bin_slot); of a value just below x: those below.
  const auto old_bin = [&was](double x, bool below) {
    return static_cast<std::int64_t>(std::count_if(was.begin(), was.end(), [&](float e) {
      return below ? static_cast<double>(e) < x : static_cast<double>(e) <= x;
    }));
  };
  const bool ranged = std::isfinite(column.bin_min) && std::isfinite(column.bin_max);
  const auto n = static_cast<std::uint32_t>(now.size());
  for (std::uint32_t b = 0; n > 0 && b <= n; ++b) {
    const std::int64_t source =
        b == 0   ? (ranged && column.bin_min < now[0]
                      ? old_bin(0.5 * (static_cast<double>(column.bin_min) + now[0]), false)
                      : old_bin(now[0], true))
        : b == n ? (ranged && column.bin_max > now[n - 1]
                      ? old_bin(0.5 * (static_cast<double>(now[n - 1]) + column.bin_max), false)
                      : old_bin(now[n - 1], false))
                 : old_bin(0.5 * (static_cast<double>(now[b - 1]) + now[b]), false);
    f(source, b);
  }
  f(static_cast<std::int64_t>(was.size()) + 1, n + 1);  // missing to missing
}

// The slots of one side of the cross `og` of `from` (side b when `side_b`) and of the cross `ng` of
// `to` that both place, with their label hashes in each (cross_side_hashes): a categorical side's
// shared_slots; a side of bins, each new bin with the earlier bin that holds a point of it
// (for_each_moved_bin; the bins have no counts: `counted` false).
std::vector<SharedSlot> shared_side_slots(const FittedPreparation& from, const SparseGroup& og,
                                          const FittedPreparation& to, const SparseGroup& ng,
                                          bool side_b, const DataProfile* profile, bool& counted) {
  const auto old_index = static_cast<std::size_t>(side_b ? og.b : og.a);
  const auto new_index = static_cast<std::size_t>(side_b ? ng.b : ng.a);
  if (!(side_b ? og.b_bins : og.a_bins)) {
    return shared_slots(from.categorical.at(old_index), to.categorical.at(new_index), profile, counted);
  }
  counted = false;
  const NumericEncoding &was = from.numeric.at(old_index), &now = to.numeric.at(new_index);
  const std::vector<std::uint64_t> old_hashes = was.bin_label_hashes(), new_hashes = now.bin_label_hashes();
  std::vector<SharedSlot> shared;
  for_each_moved_bin(was.bin_edges, now, [&](std::int64_t old_bin, std::uint32_t new_bin) {
    shared.push_back({old_hashes.at(static_cast<std::size_t>(old_bin)), new_hashes.at(new_bin), 1.0});
  });
  return shared;
}

// The cross group `old_group` of `from` moved to group `new_group` of `to` (same columns or bins,
// other bucket count or a side of bins at other edges: same_cross_sides), pair by pair over the
// pairs of slots both preparations place (shared_side_slots), weighted by the product of the two
// categories' counts in `profile` (the earlier training rows) where it has them for both sides.
// `record` gets the counts; the move is empty (no buckets) above kMaxRemappedCrossPairs pairs.
SlotMove move_cross(const FittedPreparation& from, std::size_t old_group,
                    const FittedPreparation& to, std::size_t new_group, const DataProfile* profile,
                    const ModelParameters& parameters, std::size_t outputs, std::size_t k,
                    RemappedCross& record) {
  const SparseGroup &og = from.sparse[old_group], &ng = to.sparse[new_group];
  record.name = og.name;
  record.old_buckets = og.slots;
  record.new_buckets = ng.slots;
  bool counted_a = false, counted_b = false;
  const std::vector<SharedSlot> a = shared_side_slots(from, og, to, ng, false, profile, counted_a);
  const std::vector<SharedSlot> b = shared_side_slots(from, og, to, ng, true, profile, counted_b);
  record.pairs = static_cast<std::int64_t>(a.size()) * static_cast<std::int64_t>(b.size());
  record.weighted_by_counts = counted_a && counted_b;
  if (record.pairs > kMaxRemappedCrossPairs) return SlotMove{};
  record.moved = true;
  const auto for_each_pair = [&](const auto& f) {
    for (const SharedSlot& x : a) {
      for (const SharedSlot& y : b) {
        f(static_cast<std::int64_t>(cross_bucket(x.old_hash, y.old_hash, og.slots)),
          cross_bucket(x.new_hash, y.new_hash, ng.slots),
          record.weighted_by_counts ? x.count * y.count : 1.0);
      }
    }
  };
  return build_slot_move(from.group_offsets()[old_group], to.group_offsets()[new_group], ng.slots,
                         for_each_pair, kNoSource, parameters, outputs, k, record.shared_buckets);
}

// The earlier profile's categorical profile of column `name`, or null.
const CategoricalProfile* categorical_profile(const DataProfile* profile, const std::string& name) {
  if (!profile) return nullptr;
  for (const ColumnProfile& c : profile->columns) {
    if (c.name == name && c.type == ColumnType::categorical) return &c.categorical;
  }
  return nullptr;
}

// The one-hot group `old_group` of `from` moved to group `new_group` of `to`: one column whose
// encoding changed between a vocabulary and hash buckets, or between two bucket counts. Each label
// goes from the slot the earlier encoding gave it to the slot the new one gives it (missing and
// unknown carry by name, as for any column):
//  - into a vocabulary: the new vocabulary's labels, each from its old bucket (exactly the earlier
//    model's weight for that label);
//  - into buckets: the labels of the earlier profile, weighted by their counts in its training
//    rows (a label it left in the unknown slot moves that slot's weight), else the earlier
//    vocabulary's; a bucket shared by labels of different weights holds their average, and one
//    that no label falls in takes the earlier unknown slot's (from a vocabulary: what the earlier
//    model gave every label it had not seen).
// `record` says what moved (nothing: buckets into buckets without the earlier profile's labels).
SlotMove move_one_hot(const FittedPreparation& from, std::size_t old_group,
                      const FittedPreparation& to, std::size_t new_group,
                      const DataProfile* profile, const ModelParameters& parameters,
                      std::size_t outputs, std::size_t k, RemappedColumn& record) {
  const CategoricalEncoding& was =
      from.categorical.at(static_cast<std::size_t>(from.sparse[old_group].a));
  const CategoricalEncoding& now =
      to.categorical.at(static_cast<std::size_t>(to.sparse[new_group].a));
  record.name = was.name;
  record.was_hashed = was.hashed;
  record.now_hashed = now.hashed;
  record.old_slots = was.known_slots();
  record.new_slots = now.known_slots();
  const CategoricalProfile* labels = categorical_profile(profile, was.name);
  std::int64_t fallback = kNoSource;
  std::function<void(const std::function<void(std::int64_t, std::uint32_t, double)>&)> for_each;
  const auto place = [&now](const std::string& label, std::uint32_t& slot) {
    const std::int32_t s = now.slot_of(label);
    slot = static_cast<std::uint32_t>(s);
    return s < now.known_slots();  // missing and unknown carry by name
  };
  if (!now.hashed) {
    for_each = [&](const auto& f) {
      for (std::size_t i = 0; i < now.vocabulary.size(); ++i) {
        f(was.slot_of(now.vocabulary[i]), static_cast<std::uint32_t>(i), 1.0);
      }
    };
    record.labels = static_cast<std::int64_t>(now.vocabulary.size());
  } else if (labels) {
    for_each = [&](const auto& f) {
      for (std::size_t i = 0; i < labels->labels.size(); ++i) {
        std::uint32_t slot = 0;
        if (!place(labels->labels[i], slot)) continue;
        const double count =
            i < labels->counts.size() ? static_cast<double>(labels->counts[i]) : 0.0;
        f(was.slot_of(labels->labels[i]), slot, count);
      }
    };
    record.labels = static_cast<std::int64_t>(labels->labels.size());
    record.weighted_by_counts = true;
    if (!was.hashed) fallback = was.unknown_slot();
  } else if (!was.hashed) {
    for_each = [&](const auto& f) {
      for (std::size_t i = 0; i < was.vocabulary.size(); ++i) {
        std::uint32_t slot = 0;
        if (place(was.vocabulary[i], slot)) f(static_cast<std::int64_t>(i), slot, 1.0);
      }
    };
    record.labels = static_cast<std::int64_t>(was.vocabulary.size());
    fallback = was.unknown_slot();
  } else {
    return SlotMove{};  // buckets into buckets, and no labels to move them by
  }
  record.moved = true;
  return build_slot_move(from.group_offsets()[old_group], to.group_offsets()[new_group],
                         static_cast<std::uint32_t>(now.known_slots()), for_each, fallback,
                         parameters, outputs, k, record.shared_slots);
}

// The bins group `old_group` of `from` moved to the bins group `new_group` of `to`, of the same
// column at other edges: each new bin takes the earlier bin that holds a point of it
// (for_each_moved_bin), the missing slot the missing slot. A new column without edges (one bin, no
// point to place) starts at zero.
SlotMove move_bins(const FittedPreparation& from, std::size_t old_group,
                   const FittedPreparation& to, std::size_t new_group,
                   const ModelParameters& parameters, std::size_t outputs, std::size_t k,
                   RemappedBins& record) {
  const std::vector<float>& was =
      from.numeric.at(static_cast<std::size_t>(from.sparse[old_group].a)).bin_edges;
  const NumericEncoding& column = to.numeric.at(static_cast<std::size_t>(to.sparse[new_group].a));
  record.name = column.name;
  record.old_bins = static_cast<std::int32_t>(was.size()) + 1;
  record.new_bins = static_cast<std::int32_t>(column.bin_edges.size()) + 1;
  record.moved = column.bin_edges.empty() ? 0 : record.new_bins;
  const auto for_each_bin = [&](const auto& f) {
    for_each_moved_bin(was, column,
                       [&](std::int64_t old_bin, std::uint32_t new_bin) { f(old_bin, new_bin, 1.0); });
  };
  std::int64_t averaged = 0;  // none: one point per new bin
  return build_slot_move(from.group_offsets()[old_group], to.group_offsets()[new_group],
                         to.sparse[new_group].slots, for_each_bin, kNoSource, parameters, outputs,
                         k, averaged);
}

// Whether two preparations bin a column at the same edges: its bins then carry slot by slot.
bool same_bins(const FittedPreparation& from, const SparseGroup& old_group,
               const FittedPreparation& to, const SparseGroup& new_group) {
  return from.numeric.at(static_cast<std::size_t>(old_group.a)).bin_edges ==
         to.numeric.at(static_cast<std::size_t>(new_group.a)).bin_edges;
}

// Whether two categorical crosses cross the same kinds of sides (categorical columns, or bins),
// and so can carry or move their weights (a cross named alike over a categorical column in one and
// a numeric column's bins in the other cannot: its weights start at zero).
bool same_cross_kinds(const SparseGroup& old_group, const SparseGroup& new_group) {
  return old_group.a_bins == new_group.a_bins && old_group.b_bins == new_group.b_bins;
}

// Whether two crosses of the same kinds of sides hash each pair of slots into the same bucket: the
// same bucket count and, for a side of bins, the same edges (a category's label hash does not
// depend on its encoding; a bin's depends on its edges). Their buckets then carry as they are;
// otherwise the pairs move (move_cross).
bool same_cross_sides(const FittedPreparation& from, const SparseGroup& old_group,
                      const FittedPreparation& to, const SparseGroup& new_group) {
  const auto same_edges = [&](std::int32_t old_index, std::int32_t new_index) {
    return from.numeric.at(static_cast<std::size_t>(old_index)).bin_edges ==
           to.numeric.at(static_cast<std::size_t>(new_index)).bin_edges;
  };
  return old_group.slots == new_group.slots && (!old_group.a_bins || same_edges(old_group.a, new_group.a)) &&
         (!old_group.b_bins || same_edges(old_group.b, new_group.b));
}

// The feature of `to` that has the key (expanded_feature_keys) of each feature of `from`, found
// group by group without building the keys, one string per hashed bucket: a dense feature by name;
// a one-hot slot in the one-hot group of the column of the same name and a slope slot in the slope
// group of the same name, by slot name (match_slots); a categorical cross bucket as the same bucket
// of the cross of the same name and bucket count (a cross of bins: at the same edges,
// same_cross_sides); a bin as the same bin of the same column's bins at the same edges. Neither
// preparation repeats a name (carry_parameters checks): a repeated one would match its first
// feature.
class SameFeatures {
 public:
  SameFeatures(const FittedPreparation& from, const FittedPreparation& to) : from_(from) {
    const std::vector<std::string> dense_names = to.dense_names();
    for (std::size_t q = 0; q < dense_names.size(); ++q) {
      dense_.emplace(dense_names[q], static_cast<std::int64_t>(q));
    }
    // A numeric cross is a product, the same feature whichever way --cross spelled it: the cross
    // "b*a" of `from` is the cross "a*b" of `to`.
    const auto first_cross = static_cast<std::size_t>(to.row_major_dense_features());
    for (std::size_t c = 0; c < to.numeric_crosses.size(); ++c) {
      const auto [a, b] = to.numeric_crosses[c];
      reversed_crosses_.emplace(to.numeric.at(static_cast<std::size_t>(b)).name + "*" +
                                    to.numeric.at(static_cast<std::size_t>(a)).name,
                                static_cast<std::int64_t>(first_cross + c));
    }
    const std::vector<std::int64_t> offsets = to.group_offsets();
    std::unordered_map<std::string, std::size_t> one_hot_group, bins_group;
    // A slope group by its two columns (numeric, categorical), whichever way --cross named them
    // ("age*city" or "city*age").
    std::map<std::pair<std::string, std::string>, std::size_t> slope_group;
    const auto slope_columns = [](const FittedPreparation& f, const SparseGroup& g) {
      return std::pair{f.numeric.at(static_cast<std::size_t>(g.a)).name,
                       f.categorical.at(static_cast<std::size_t>(g.b)).name};
    };
    std::map<std::pair<std::string, std::uint32_t>, std::size_t> cross_group;
    for (std::size_t g = 0; g < to.sparse.size(); ++g) {
      const SparseGroup& group = to.sparse[g];
      switch (group.kind) {
        case SparseKind::one_hot:
          one_hot_group.emplace(to.categorical.at(static_cast<std::size_t>(group.a)).name, g);
          break;
        case SparseKind::slope:
          slope_group.emplace(slope_columns(to, group), g);
          break;
        case SparseKind::bins:  // by column; the edges are compared below
          bins_group.emplace(to.numeric.at(static_cast<std::size_t>(group.a)).name, g);
          break;
        case SparseKind::categorical_cross:  // keyed by bucket count too
          cross_group.emplace(std::pair{group.name, group.slots}, g);
          break;
      }
    }
    one_hot_.resize(from.categorical.size());
    for (std::size_t c = 0; c < from.categorical.size(); ++c) {
      const auto it = one_hot_group.find(from.categorical[c].name);
      if (it == one_hot_group.end()) continue;
      const SparseGroup& group = to.sparse[it->second];
      one_hot_[c] = {
          offsets[it->second],
          match_slots(from.categorical[c], to.categorical.at(static_cast<std::size_t>(group.a)))};
    }
    group_.resize(from.sparse.size());
    for (std::size_t g = 0; g < from.sparse.size(); ++g) {
      const SparseGroup& group = from.sparse[g];
      if (group.kind == SparseKind::slope) {
        const auto it = slope_group.find(slope_columns(from, group));
        if (it == slope_group.end()) continue;
        group_[g] = {
            offsets[it->second],
            match_slots(from.categorical.at(static_cast<std::size_t>(group.b)),
                        to.categorical.at(static_cast<std::size_t>(to.sparse[it->second].b)))};
      } else if (group.kind == SparseKind::categorical_cross) {
        const auto it = cross_group.find(std::pair{group.name, group.slots});
        if (it == cross_group.end() || !same_cross_kinds(group, to.sparse[it->second]) ||
            !same_cross_sides(from, group, to, to.sparse[it->second])) {
          continue;
        }
        group_[g].first = offsets[it->second];
        group_[g].slots.same = true;
      } else if (group.kind == SparseKind::bins) {
        // At other edges they are other bins, which move bin by bin (move_bins).
        const auto it = bins_group.find(from.numeric.at(static_cast<std::size_t>(group.a)).name);
        if (it == bins_group.end() || !same_bins(from, group, to, to.sparse[it->second])) continue;
        group_[g].first = offsets[it->second];
        group_[g].slots.same = true;
      }
    }
  }

  // The new feature of the dense feature named `name`, or kConstant.
  std::int64_t dense(const std::string& name) const {
    const auto it = dense_.find(name);
    return it == dense_.end() ? kConstant : it->second;
  }
  // The new feature of `from`'s numeric cross named `name` ("a*b"): the cross of that name, else
  // the cross of the same two columns spelled the other way ("b*a"), or kConstant.
  std::int64_t cross(const std::string& name) const {
    const std::int64_t q = dense(name);
    if (q != kConstant) return q;
    const auto it = reversed_crosses_.find(name);
    return it == reversed_crosses_.end() ? kConstant : it->second;
  }
  // The new feature of slot `slot` of `from`'s sparse group `group`, or kConstant.
  std::int64_t sparse(std::size_t group, std::int32_t slot) const {
    const SparseGroup& g = from_.sparse[group];
    return g.kind == SparseKind::one_hot ? one_hot(g.a, slot) : group_[group].at(slot);
  }
  // The new feature of the one-hot slot `slot` of `from`'s categorical column `column`, or
  // kConstant.
  std::int64_t one_hot(std::int32_t column, std::int32_t slot) const {
    return one_hot_.at(static_cast<std::size_t>(column)).at(slot);
  }

 private:
  // A group of `to` (its first feature; kConstant: none) and the slots of its `from` group in it.
  struct Target {
    std::int64_t first = kConstant;
    SlotMatch slots;
    std::int64_t at(std::int32_t slot) const {
      if (first == kConstant) return kConstant;
      const std::int32_t s = slots[slot];
      return s == kNoSlot ? kConstant : first + s;
    }
  };
  const FittedPreparation& from_;
  std::unordered_map<std::string, std::int64_t> dense_;
  std::unordered_map<std::string, std::int64_t> reversed_crosses_;  // "b*a" -> `to`'s cross "a*b"
  std::vector<Target> one_hot_;  // per categorical column of `from`
  std::vector<Target> group_;    // per sparse group of `from` (one-hot groups: one_hot_)
};

}  // namespace

namespace {

// The key of slot `s` of sparse group `g`.
std::string sparse_slot_key(const FittedPreparation& fitted, const SparseGroup& g, std::uint32_t s) {
  const auto slot = static_cast<std::int32_t>(s);
  switch (g.kind) {
    case SparseKind::one_hot:
      return one_hot_key(fitted.categorical.at(static_cast<std::size_t>(g.a)), slot);
    case SparseKind::slope:
      return "slope:" + g.name + "=" + slot_name(fitted.categorical.at(static_cast<std::size_t>(g.b)), slot);
    case SparseKind::bins: {
      const NumericEncoding& n = fitted.numeric.at(static_cast<std::size_t>(g.a));
      return "bins:" + g.name + "=" +
             (s + 1 == g.slots ? std::string("<missing>") : bin_name(n.bin_edges, slot));
    }
    case SparseKind::categorical_cross:  // hashed buckets
      break;
  }
  return "cross:" + g.name + "#" + std::to_string(s) + "/" + std::to_string(g.slots);
}

}  // namespace

std::string bin_name(const std::vector<float>& edges, std::int32_t bin) {
  if (bin < 0 || static_cast<std::size_t>(bin) > edges.size()) {
    throw Error("bin_name: no bin " + std::to_string(bin) + " among " +
                std::to_string(edges.size() + 1));
  }
  const auto b = static_cast<std::size_t>(bin);
  // Appended, not "[" + ...: GCC 12 warns (-Wrestrict, a false positive) on that once inlined.
  std::string name = "[";
  name += b == 0 ? std::string("-inf") : shortest_text(edges[b - 1]);
  name += ", ";
  name += b == edges.size() ? std::string("inf") : shortest_text(edges[b]);
  name += ')';
  return name;
}

std::vector<std::string> cross_side_slot_names(const FittedPreparation& fitted,
                                               const SparseGroup& group, bool side_b) {
  const auto index = static_cast<std::size_t>(side_b ? group.b : group.a);
  std::vector<std::string> names;
  if (side_b ? group.b_bins : group.a_bins) {
    const NumericEncoding& n = fitted.numeric.at(index);
    // bin_label_hashes' order: the bins, then the missing bin.
    for (std::size_t bin = 0; bin <= n.bin_edges.size(); ++bin)
      names.push_back(n.name + "#bins=" + bin_name(n.bin_edges, static_cast<std::int32_t>(bin)));
    names.push_back(n.name + "#bins=<missing>");
  } else {
    const CategoricalEncoding& c = fitted.categorical.at(index);
    for (std::int32_t slot = 0; slot < c.slots(); ++slot)
      names.push_back(c.name + "=" + slot_name(c, slot));
  }
  return names;
}

std::vector<std::string> expanded_feature_keys(const FittedPreparation& fitted) {
  std::vector<std::string> keys;
  for (const std::string& name : fitted.dense_names()) keys.push_back("dense:" + name);
  for (const SparseGroup& g : fitted.sparse) {
    for (std::uint32_t s = 0; s < g.slots; ++s) keys.push_back(sparse_slot_key(fitted, g, s));
  }
  return keys;
}

std::string expanded_feature_key(const FittedPreparation& fitted, std::int64_t feature) {
  const std::vector<std::string> dense = fitted.dense_names();
  if (feature >= 0 && feature < static_cast<std::int64_t>(dense.size())) {
    return "dense:" + dense[static_cast<std::size_t>(feature)];
  }
  std::int64_t at = feature - static_cast<std::int64_t>(dense.size());
  for (const SparseGroup& g : fitted.sparse) {
    if (at >= 0 && at < static_cast<std::int64_t>(g.slots)) return sparse_slot_key(fitted, g, static_cast<std::uint32_t>(at));
    at -= static_cast<std::int64_t>(g.slots);
  }
  throw Error("expanded_feature_key: no feature " + std::to_string(feature) + " in a preparation of " +
              std::to_string(fitted.expanded_features()));
}

namespace {

// What dense feature `p` of `fitted` is, as a message says it (SharedFeatureName).
std::string dense_feature_text(const FittedPreparation& fitted, std::size_t p) {
  const auto column = [&](std::int32_t i) {
    return "column '" + fitted.numeric.at(static_cast<std::size_t>(i)).name + "'";
  };
  const std::size_t numeric = fitted.numeric.size(), indicators = fitted.indicators.size();
  if (p < numeric) return column(static_cast<std::int32_t>(p));
  if (p < numeric + indicators)
    return "the missing indicator of " + column(fitted.indicators.at(p - numeric));
  const std::pair<std::int32_t, std::int32_t> cross =
      fitted.numeric_crosses.at(p - numeric - indicators);
  return cross.first == cross.second
             ? "the square of " + column(cross.first)
             : "the cross of " + column(cross.first) + " and " + column(cross.second);
}

// What sparse group `g` of `fitted` is, as a message says it (SharedFeatureName).
std::string sparse_group_text(const FittedPreparation& fitted, const SparseGroup& g) {
  const auto numeric = [&](std::int32_t i) {
    return "column '" + fitted.numeric.at(static_cast<std::size_t>(i)).name + "'";
  };
  const auto categorical = [&](std::int32_t i) {
    return "column '" + fitted.categorical.at(static_cast<std::size_t>(i)).name + "'";
  };
  const auto side = [&](std::int32_t i, bool bins) {
    return bins ? "the bins of " + numeric(i) : categorical(i);
  };
  switch (g.kind) {
    case SparseKind::one_hot:
      return categorical(g.a);
    case SparseKind::bins:
      return "the bins of " + numeric(g.a);
    case SparseKind::slope:
      return "the slopes of " + numeric(g.a) + " per category of " + categorical(g.b);
    case SparseKind::categorical_cross:
      break;
  }
  return "the cross of " + side(g.a, g.a_bins) + " and " + side(g.b, g.b_bins);
}

}  // namespace

std::optional<SharedFeatureName> shared_feature_name(const FittedPreparation& fitted) {
  const std::vector<std::string> dense = fitted.dense_names();
  // Features f: dense feature f, then sparse group f - dense.size().
  const auto text = [&](std::size_t f) {
    return f < dense.size() ? dense_feature_text(fitted, f)
                            : sparse_group_text(fitted, fitted.sparse[f - dense.size()]);
  };
  std::unordered_map<std::string, std::size_t> first;  // each name's first feature
  for (std::size_t f = 0; f < dense.size() + fitted.sparse.size(); ++f) {
    const std::string& name = f < dense.size() ? dense[f] : fitted.sparse[f - dense.size()].name;
    const auto [at, added] = first.emplace(name, f);
    if (!added) return SharedFeatureName{name, text(at->second), text(f)};
  }
  return std::nullopt;
}

ModelParameters carry_parameters(const FittedPreparation& from, const ModelParameters& parameters,
                                 const TargetScaling& from_target, const FittedPreparation& to,
                                 const TargetScaling& to_target, const ModelShape& shape,
                                 CarryReport* report, const DataProfile* from_profile) {
  const auto outputs = static_cast<std::size_t>(shape.outputs);
  const auto old_features = static_cast<std::size_t>(from.expanded_features()),
             new_features = static_cast<std::size_t>(to.expanded_features());
  if (parameters.bias.size() != outputs || parameters.weights.size() != outputs * old_features) {
    throw InputError("--init-model: the earlier model has " +
                     std::to_string(parameters.bias.size()) + " outputs over " +
                     std::to_string(old_features) + " features; this one needs " +
                     std::to_string(outputs) + " outputs");
  }
  const auto k = static_cast<std::size_t>(shape.kind == ModelKind::fm ? shape.factors : 0);
  if (parameters.factors.size() != outputs * old_features * k) {
    throw InputError("--init-model: the earlier model's factors (" +
                     std::to_string(parameters.factors.size()) +
                     " numbers) do not match --factors " + std::to_string(k));
  }
  // Features are matched by name: of two of one name, both would take the first's match.
  for (const auto& [fitted, whose] :
       {std::pair{&from, "the earlier model's"}, std::pair{&to, "the new"}}) {
    if (const std::optional<SharedFeatureName> shared = shared_feature_name(*fitted)) {
      throw InputError(std::string("--init-model: two features of ") + whose +
                       " preparation are named '" + shared->name + "' (" + shared->first + " and " +
                       shared->second + "): the earlier model's weights cannot be carried by name");
    }
  }
  const SameFeatures same(from, to);
  CarryReport counts;

  // The new features that take values 0 and 1 only (missing indicators, one-hot, bins and
  // categorical cross slots), so that y^2 = y; and the square cross of each new numeric column, if
  // any.
  std::vector<char> binary(new_features, 0);
  const auto new_numeric = static_cast<std::int64_t>(to.numeric.size());
  const auto new_dense = to.dense_features();
  for (std::int64_t q = new_numeric;
       q < new_numeric + static_cast<std::int64_t>(to.indicators.size()); ++q) {
    binary[static_cast<std::size_t>(q)] = 1;
  }
  {
    const std::vector<std::int64_t> offsets = to.group_offsets();
    for (std::size_t g = 0; g < to.sparse.size(); ++g) {
      if (to.sparse[g].kind == SparseKind::slope) continue;
      for (std::int64_t q = offsets[g]; q < offsets[g + 1]; ++q)
        binary[static_cast<std::size_t>(q)] = 1;
    }
  }
  std::vector<std::int64_t> square(static_cast<std::size_t>(new_numeric), kConstant);
  const std::int64_t new_cross_base =
      new_dense - static_cast<std::int64_t>(to.numeric_crosses.size());
  for (std::size_t c = 0; c < to.numeric_crosses.size(); ++c) {
    const auto [i, j] = to.numeric_crosses[c];
    if (i == j) square[static_cast<std::size_t>(i)] = new_cross_base + static_cast<std::int64_t>(c);
  }

  // Each earlier feature as new features (none: `to` lacks it).
  Expansions expansions(old_features);
  const auto old_numeric = static_cast<std::int64_t>(from.numeric.size());
  const auto old_indicators = static_cast<std::int64_t>(from.indicators.size());
  // The new numeric column (dense index) of earlier numeric column i and the map between them.
  const auto numeric_map = [&](std::int32_t i, std::int64_t& q) {
    const NumericEncoding& e = from.numeric.at(static_cast<std::size_t>(i));
    q = same.dense(e.name);
    return q < 0 || q >= new_numeric
               ? Affine{}
               : affine_between(e.transform, to.numeric[static_cast<std::size_t>(q)].transform);
  };
  Expansion e;
  const std::vector<std::string> old_dense_names = from.dense_names();
  for (std::size_t p = 0; p < old_dense_names.size(); ++p) {
    const bool cross = static_cast<std::int64_t>(p) >= old_numeric + old_indicators;
    const std::int64_t q = cross ? same.cross(old_dense_names[p]) : same.dense(old_dense_names[p]);
    if (q < 0) continue;
    ++counts.carried;
    e.clear();
    const auto pp = static_cast<std::int64_t>(p);
    if (pp < old_numeric) {
      std::int64_t column = 0;
      const Affine m = numeric_map(static_cast<std::int32_t>(pp), column);
      e.add(q, m.a);
      e.add(kConstant, m.b);
    } else if (pp >= old_numeric + old_indicators) {
      // x_i x_j with x = a y + b, the new cross being y_i y_j (`to` has the columns: the cross is
      // named after them).
      const auto [i, j] =
          from.numeric_crosses[static_cast<std::size_t>(pp - old_numeric - old_indicators)];
      std::int64_t qi = 0, qj = 0;
      const Affine mi = numeric_map(i, qi), mj = numeric_map(j, qj);
      e.add(q, mi.a * mj.a);
      if (qi >= 0 && qj >= 0) {
        e.add(qi, mi.a * mj.b);
        e.add(qj, mj.a * mi.b);
        e.add(kConstant, mi.b * mj.b);
        const std::int64_t ti = e.index_of(qi), tj = e.index_of(qj);
        if (ti >= 0 && tj >= 0 && ti != tj) {
          e.products.push_back({static_cast<std::size_t>(ti), static_cast<std::size_t>(tj), q});
        }
      }
    } else {
      e.add(q, 1.0);  // a missing indicator
    }
    expansions.set(p, e);
  }
  const std::vector<std::int64_t> old_offsets = from.group_offsets();
  for (std::size_t g = 0; g < from.sparse.size(); ++g) {
    const SparseGroup& group = from.sparse[g];
    // A slope slot: value x on its category's slot, a y on the new slot plus b on that category's
    // one-hot slot (active together).
    std::int64_t column = 0;
    const Affine m = group.kind == SparseKind::slope ? numeric_map(group.a, column) : Affine{};
    for (std::uint32_t s = 0; s < group.slots; ++s) {
      const auto slot = static_cast<std::int32_t>(s);
      const std::int64_t q = same.sparse(g, slot);
      if (q < 0) continue;
      ++counts.carried;
      const auto p = static_cast<std::size_t>(old_offsets[g]) + s;
      if (group.kind != SparseKind::slope) {
        expansions.carry_as_is(p, q);
        continue;
      }
      e.clear();
      e.add(q, m.a);
      const std::int64_t one_hot = same.one_hot(group.b, slot);
      if (m.b != 0.0 && one_hot < 0) ++counts.inexact_terms;  // not expected: see preparation.cpp
      if (one_hot >= 0) e.add(one_hot, m.b);
      const std::int64_t ts = e.index_of(q), to_hot = e.index_of(one_hot);
      if (ts >= 0 && to_hot >= 0) {
        e.products.push_back({static_cast<std::size_t>(ts), static_cast<std::size_t>(to_hot), q});
      }
      expansions.set(p, e);
    }
  }

  // Categorical crosses that `to` hashes into another bucket count, or whose bins `to` fits at other
  // edges: their buckets hold other pairs (none has an expansion), so they move pair by pair.
  std::vector<SlotMove> moves;
  for (std::size_t og = 0; og < from.sparse.size(); ++og) {
    if (from.sparse[og].kind != SparseKind::categorical_cross) continue;
    for (std::size_t ng = 0; ng < to.sparse.size(); ++ng) {
      const SparseGroup& group = to.sparse[ng];
      if (group.kind != SparseKind::categorical_cross || group.name != from.sparse[og].name ||
          !same_cross_kinds(from.sparse[og], group) || same_cross_sides(from, from.sparse[og], to, group)) {
        continue;
      }
      counts.remapped_crosses.emplace_back();
      moves.push_back(move_cross(from, og, to, ng, from_profile, parameters, outputs, k,
                                 counts.remapped_crosses.back()));
    }
  }
  // Columns binned at other edges: other bins, which move bin by bin.
  for (std::size_t og = 0; og < from.sparse.size(); ++og) {
    if (from.sparse[og].kind != SparseKind::bins) continue;
    const std::string& name = from.numeric.at(static_cast<std::size_t>(from.sparse[og].a)).name;
    for (std::size_t ng = 0; ng < to.sparse.size(); ++ng) {
      const SparseGroup& group = to.sparse[ng];
      if (group.kind != SparseKind::bins ||
          to.numeric.at(static_cast<std::size_t>(group.a)).name != name ||
          same_bins(from, from.sparse[og], to, group)) {
        continue;
      }
      counts.remapped_bins.emplace_back();
      moves.push_back(
          move_bins(from, og, to, ng, parameters, outputs, k, counts.remapped_bins.back()));
    }
  }
  // One-hot columns that changed between a vocabulary and buckets, or between two bucket counts:
  // only their missing and unknown slots share keys, so their labels move label by label.
  for (std::size_t og = 0; og < from.sparse.size(); ++og) {
    if (from.sparse[og].kind != SparseKind::one_hot) continue;
    const CategoricalEncoding& was =
        from.categorical.at(static_cast<std::size_t>(from.sparse[og].a));
    for (std::size_t ng = 0; ng < to.sparse.size(); ++ng) {
      if (to.sparse[ng].kind != SparseKind::one_hot) continue;
      const CategoricalEncoding& now = to.categorical.at(static_cast<std::size_t>(to.sparse[ng].a));
      if (now.name != was.name ||
          (was.hashed == now.hashed && (!was.hashed || was.buckets == now.buckets))) {
        continue;
      }
      counts.remapped_columns.emplace_back();
      moves.push_back(move_one_hot(from, og, to, ng, from_profile, parameters, outputs, k,
                                   counts.remapped_columns.back()));
    }
  }

  const double r = shape.task == Task::regression ? from_target.std / to_target.std : 1.0;
  const double shift =
      shape.task == Task::regression ? (from_target.mean - to_target.mean) / to_target.std : 0.0;
  const double factor_scale = std::sqrt(r);

  ModelParameters out;
  out.bias.assign(outputs, 0.0f);
  out.weights.assign(outputs * new_features, 0.0f);
  out.factors.assign(outputs * new_features * k, 0.0f);
  // The fm's sums (u, diagonal, sources) only for an fm: a linear model needs w alone.
  std::vector<double> w(new_features), u(new_features * k), u0(k),
      diagonal(k > 0 ? new_features : 0);
  std::vector<std::int32_t> sources(k > 0 ? new_features : 0);
  Term single;  // the term of an earlier feature carried as it is (Expansions::terms)
  for (std::size_t o = 0; o < outputs; ++o) {
    std::fill(w.begin(), w.end(), 0.0);
    double bias = parameters.bias[o];
    for (std::size_t p = 0; p < old_features; ++p) {
      const double wp = parameters.weights[o * old_features + p];
      for (const Term& t : expansions.terms(p, single)) {
        (t.feature == kConstant ? bias : w[static_cast<std::size_t>(t.feature)]) +=
            t.coefficient * wp;
      }
    }
    // A moved slot (cross bucket or one-hot slot) takes its old slot's weight as a slot of the same
    // key does (the fm conversion below then treats it alike), or its items' average.
    for (const SlotMove& move : moves) {
      for (std::size_t bucket = 0; bucket < move.source.size(); ++bucket) {
        if (move.source[bucket] < 0) continue;
        const auto p = static_cast<std::size_t>(move.old_first + move.source[bucket]);
        w[static_cast<std::size_t>(move.new_first) + bucket] +=
            parameters.weights[o * old_features + p];
      }
      for (std::size_t i = 0; i < move.averaged.size(); ++i) {
        w[static_cast<std::size_t>(move.new_first + move.averaged[i])] +=
            move.average[(i * outputs + o) * (1 + k)];
      }
    }
    if (k > 0) {
      // u_q = sum_p m_pq v_p; then the terms of u's pairwise products that are not the earlier
      // score's (see the header) come back as weights and bias.
      std::fill(u.begin(), u.end(), 0.0);
      std::fill(u0.begin(), u0.end(), 0.0);
      std::fill(diagonal.begin(), diagonal.end(), 0.0);
      std::fill(sources.begin(), sources.end(), 0);
      const auto dot = [k](const double* x, const double* y) {
        double s = 0.0;
        for (std::size_t f = 0; f < k; ++f) s += x[f] * y[f];
        return s;
      };
      std::vector<double> v(k);
      for (std::size_t p = 0; p < old_features; ++p) {
        const std::span<const Term> terms = expansions.terms(p, single);
        if (terms.empty()) continue;
        for (std::size_t f = 0; f < k; ++f)
          v[f] = parameters.factors[(o * old_features + p) * k + f];
        const double norm = dot(v.data(), v.data());
        for (const Term& t : terms) {
          double* target =
              t.feature == kConstant ? u0.data() : &u[static_cast<std::size_t>(t.feature) * k];
          for (std::size_t f = 0; f < k; ++f) target[f] += t.coefficient * v[f];
          if (t.feature != kConstant) {
            diagonal[static_cast<std::size_t>(t.feature)] += t.coefficient * t.coefficient * norm;
            ++sources[static_cast<std::size_t>(t.feature)];
          }
        }
        // -|v_p|^2 m m' y y' for each two terms of p (y = 1 for the constant).
        for (std::size_t i = 0; i < terms.size(); ++i) {
          for (std::size_t j = i + 1; j < terms.size(); ++j) {
            const double c = -norm * terms[i].coefficient * terms[j].coefficient;
            if (terms[i].feature == kConstant || terms[j].feature == kConstant) {
              const std::int64_t q =
                  terms[i].feature == kConstant ? terms[j].feature : terms[i].feature;
              w[static_cast<std::size_t>(q)] += c;
              continue;
            }
            bool expressed = false;
            for (const Expansion::Product& product : expansions.products(p)) {
              if ((product.i == i && product.j == j) || (product.i == j && product.j == i)) {
                w[static_cast<std::size_t>(product.feature)] += c;
                expressed = true;
              }
            }
            if (!expressed) ++counts.inexact_terms;  // cubic: a cross term times one of its columns
          }
          if (terms[i].feature == kConstant) {
            bias -= 0.5 * norm * terms[i].coefficient * terms[i].coefficient;
          }
        }
      }
      // A moved slot's factors: its old slot's or its items' average, one term of coefficient 1
      // (as a slot of the same key) whose pairs with its own group's other slots never occur (one
      // slot per row).
      for (const SlotMove& move : moves) {
        for (std::size_t bucket = 0; bucket < move.source.size(); ++bucket) {
          if (move.source[bucket] < 0) continue;
          const auto p = static_cast<std::size_t>(move.old_first + move.source[bucket]);
          const float* v_old = &parameters.factors[(o * old_features + p) * k];
          double* target = &u[(static_cast<std::size_t>(move.new_first) + bucket) * k];
          for (std::size_t f = 0; f < k; ++f) target[f] += v_old[f];
        }
        for (std::size_t i = 0; i < move.averaged.size(); ++i) {
          const double* average = &move.average[(i * outputs + o) * (1 + k) + 1];
          double* target = &u[static_cast<std::size_t>(move.new_first + move.averaged[i]) * k];
          for (std::size_t f = 0; f < k; ++f) target[f] += average[f];
        }
      }
      for (std::size_t q = 0; q < new_features; ++q) {
        const double* uq = &u[q * k];
        w[q] += dot(uq, u0.data());
        if (sources[q] < 2) continue;  // no square terms of two earlier features
        // sum_{p<p'} m_pq m_p'q <v_p, v_p'> y_q^2
        const double c = 0.5 * (dot(uq, uq) - diagonal[q]);
        if (binary[q]) {
          w[q] += c;
        } else if (static_cast<std::int64_t>(q) < new_numeric && square[q] >= 0) {
          w[static_cast<std::size_t>(square[q])] += c;
        } else {
          ++counts.inexact_terms;
        }
      }
      bias += 0.5 * dot(u0.data(), u0.data());
      for (std::size_t q = 0; q < new_features * k; ++q) {
        out.factors[o * new_features * k + q] = static_cast<float>(factor_scale * u[q]);
      }
    }
    for (std::size_t q = 0; q < new_features; ++q) {
      out.weights[o * new_features + q] = static_cast<float>(r * w[q]);
    }
    out.bias[o] = static_cast<float>(r * bias + shift);
  }
  if (report) *report = counts;
  return out;
}

}  // namespace lathe
