#include "runtime/warm_start.h"

#include <cmath>
#include <unordered_map>

#include "runtime/error.h"

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

// A column prepared as x by `from` and y by `to`: x = a y + b (NumericTransform: (v - center) *
// inv_scale).
struct Affine {
  double a = 1.0, b = 0.0;
};

Affine affine_between(const NumericTransform& from, const NumericTransform& to) {
  return {from.inv_scale / to.inv_scale, (to.center - from.center) * from.inv_scale};
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
  std::unordered_map<std::string, std::int32_t> new_slot;
  for (std::int32_t s = 0; s < new_column.slots(); ++s)
    new_slot.emplace(slot_name(new_column, s), s);
  const std::vector<std::uint64_t> old_hashes = old_column.slot_label_hashes(),
                                   new_hashes = new_column.slot_label_hashes();
  std::vector<SharedSlot> shared;
  for (std::int32_t s = 0; s < old_column.slots(); ++s) {
    const auto it = new_slot.find(slot_name(old_column, s));
    if (it == new_slot.end()) continue;
    shared.push_back({old_hashes[static_cast<std::size_t>(s)],
                      new_hashes[static_cast<std::size_t>(it->second)],
                      counted ? counts[static_cast<std::size_t>(s)] : 1.0});
  }
  return shared;
}

constexpr std::int64_t kNoSource = -1;  // a new cross bucket that no shared pair falls in
constexpr std::int64_t kAveraged = -2;  // one whose pairs had different old parameters

// A categorical cross moved from `from`'s bucket count to `to`'s: for each new bucket, the old
// bucket whose parameters it takes, or the average of its pairs' old parameters.
struct CrossMove {
  std::int64_t old_first = 0, new_first = 0;  // expanded index of bucket 0
  std::vector<std::int64_t> source;           // per new bucket: old bucket, kNoSource or kAveraged
  std::vector<std::int64_t> averaged;         // the kAveraged buckets, ascending
  // Per averaged bucket, per output: the averaged weight, then the k averaged factors.
  std::vector<double> average;
};

// The cross group `old_group` of `from` moved to group `new_group` of `to` (same columns, other
// bucket count). `record` gets the counts; the move is empty (no buckets) above
// kMaxRemappedCrossPairs pairs.
CrossMove move_cross(const FittedPreparation& from, std::size_t old_group,
                     const FittedPreparation& to, std::size_t new_group, const DataProfile* profile,
                     const ModelParameters& parameters, std::size_t outputs, std::size_t k,
                     RemappedCross& record) {
  const SparseGroup &og = from.sparse[old_group], &ng = to.sparse[new_group];
  record.name = og.name;
  record.old_buckets = og.slots;
  record.new_buckets = ng.slots;
  bool counted_a = false, counted_b = false;
  const std::vector<SharedSlot> a =
      shared_slots(from.categorical.at(static_cast<std::size_t>(og.a)),
                   to.categorical.at(static_cast<std::size_t>(ng.a)), profile, counted_a);
  const std::vector<SharedSlot> b =
      shared_slots(from.categorical.at(static_cast<std::size_t>(og.b)),
                   to.categorical.at(static_cast<std::size_t>(ng.b)), profile, counted_b);
  record.pairs = static_cast<std::int64_t>(a.size()) * static_cast<std::int64_t>(b.size());
  record.weighted_by_counts = counted_a && counted_b;
  CrossMove move;
  if (record.pairs > kMaxRemappedCrossPairs) return move;
  record.moved = true;
  move.old_first = from.group_offsets()[old_group];
  move.new_first = to.group_offsets()[new_group];
  const std::size_t old_features = parameters.weights.size() / outputs;
  // Whether old buckets x and y hold the same parameters (every output's weight and factors).
  const auto same_parameters = [&](std::int64_t x, std::int64_t y) {
    const auto px = static_cast<std::size_t>(move.old_first + x),
               py = static_cast<std::size_t>(move.old_first + y);
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
  const auto weight_of = [&](const SharedSlot& x, const SharedSlot& y) {
    return record.weighted_by_counts ? x.count * y.count : 1.0;
  };

  // First pass: each new bucket's first old bucket, until a pair of other parameters makes it an
  // average; the weights and pairs of every bucket, for the average.
  move.source.assign(ng.slots, kNoSource);
  std::vector<double> total(ng.slots, 0.0);
  std::vector<std::uint32_t> pairs(ng.slots, 0);  // at most kMaxRemappedCrossPairs
  for (const SharedSlot& x : a) {
    for (const SharedSlot& y : b) {
      const auto old_bucket =
          static_cast<std::int64_t>(cross_bucket(x.old_hash, y.old_hash, og.slots));
      const std::uint32_t bucket = cross_bucket(x.new_hash, y.new_hash, ng.slots);
      std::int64_t& source = move.source[bucket];
      if (source == kNoSource) {
        source = old_bucket;
      } else if (source >= 0 && source != old_bucket && !same_parameters(source, old_bucket)) {
        source = kAveraged;
      }
      total[bucket] += weight_of(x, y);
      ++pairs[bucket];
    }
  }
  std::vector<std::int64_t> index(ng.slots, -1);  // of an averaged bucket in move.averaged
  for (std::uint32_t bucket = 0; bucket < ng.slots; ++bucket) {
    if (move.source[bucket] != kAveraged) continue;
    index[bucket] = static_cast<std::int64_t>(move.averaged.size());
    move.averaged.push_back(bucket);
  }
  record.shared_buckets = static_cast<std::int64_t>(move.averaged.size());
  if (move.averaged.empty()) return move;

  // Second pass: the averaged buckets' weighted sums of their pairs' old parameters (a pair of zero
  // weight in a bucket of zero total counts as 1: a plain average there).
  const std::size_t width = outputs * (1 + k);
  move.average.assign(move.averaged.size() * width, 0.0);
  for (const SharedSlot& x : a) {
    for (const SharedSlot& y : b) {
      const std::uint32_t bucket = cross_bucket(x.new_hash, y.new_hash, ng.slots);
      if (index[bucket] < 0) continue;
      const std::uint32_t old_bucket = cross_bucket(x.old_hash, y.old_hash, og.slots);
      const auto p = static_cast<std::size_t>(move.old_first) + old_bucket;
      const double c = total[bucket] > 0.0 ? weight_of(x, y) : 1.0;
      double* sum = &move.average[static_cast<std::size_t>(index[bucket]) * width];
      for (std::size_t o = 0; o < outputs; ++o) {
        sum[o * (1 + k)] += c * parameters.weights[o * old_features + p];
        const float* v = &parameters.factors[(o * old_features + p) * k];
        for (std::size_t f = 0; f < k; ++f) sum[o * (1 + k) + 1 + f] += c * v[f];
      }
    }
  }
  for (std::size_t i = 0; i < move.averaged.size(); ++i) {
    const auto bucket = static_cast<std::size_t>(move.averaged[i]);
    const double sum = total[bucket] > 0.0 ? total[bucket] : static_cast<double>(pairs[bucket]);
    for (std::size_t j = 0; j < width; ++j) move.average[i * width + j] /= sum;
  }
  return move;
}

}  // namespace

std::vector<std::string> expanded_feature_keys(const FittedPreparation& fitted) {
  std::vector<std::string> keys;
  for (const std::string& name : fitted.dense_names()) keys.push_back("dense:" + name);
  for (const SparseGroup& g : fitted.sparse) {
    for (std::uint32_t s = 0; s < g.slots; ++s) {
      const auto slot = static_cast<std::int32_t>(s);
      switch (g.kind) {
        case SparseKind::one_hot:
          keys.push_back(one_hot_key(fitted.categorical.at(static_cast<std::size_t>(g.a)), slot));
          break;
        case SparseKind::slope:
          keys.push_back("slope:" + g.name + "=" +
                         slot_name(fitted.categorical.at(static_cast<std::size_t>(g.b)), slot));
          break;
        default:  // categorical x categorical: hashed buckets
          keys.push_back("cross:" + g.name + "#" + std::to_string(s) + "/" +
                         std::to_string(g.slots));
          break;
      }
    }
  }
  return keys;
}

ModelParameters carry_parameters(const FittedPreparation& from, const ModelParameters& parameters,
                                 const TargetScaling& from_target, const FittedPreparation& to,
                                 const TargetScaling& to_target, const ModelShape& shape,
                                 CarryReport* report, const DataProfile* from_profile) {
  const std::vector<std::string> old_keys = expanded_feature_keys(from),
                                 new_keys = expanded_feature_keys(to);
  const auto outputs = static_cast<std::size_t>(shape.outputs);
  const auto old_features = old_keys.size(), new_features = new_keys.size();
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
  std::unordered_map<std::string, std::int64_t> new_index;
  for (std::size_t q = 0; q < new_features; ++q) {
    new_index.emplace(new_keys[q], static_cast<std::int64_t>(q));
  }
  const auto find_new = [&new_index](const std::string& key) {
    const auto it = new_index.find(key);
    return it == new_index.end() ? kConstant : it->second;
  };
  CarryReport counts;
  for (const std::string& key : old_keys) counts.carried += new_index.count(key) ? 1 : 0;

  // The new features that take values 0 and 1 only (missing indicators, one-hot and categorical
  // cross slots), so that y^2 = y; and the square cross of each new numeric column, if any.
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

  // Each earlier feature as new features (empty: `to` lacks it).
  std::vector<Expansion> expansion(old_features);
  const auto old_numeric = static_cast<std::int64_t>(from.numeric.size());
  const auto old_indicators = static_cast<std::int64_t>(from.indicators.size());
  const std::vector<std::int64_t> old_offsets = from.group_offsets();
  // The new numeric column (dense index) of earlier numeric column i and the map between them.
  const auto numeric_map = [&](std::int32_t i, std::int64_t& q) {
    const NumericEncoding& e = from.numeric.at(static_cast<std::size_t>(i));
    q = find_new("dense:" + e.name);
    return q < 0 || q >= new_numeric
               ? Affine{}
               : affine_between(e.transform, to.numeric[static_cast<std::size_t>(q)].transform);
  };
  std::size_t g = 0;  // the sparse group of p (p ascending)
  for (std::size_t p = 0; p < old_features; ++p) {
    const std::int64_t q = find_new(old_keys[p]);
    if (q < 0) continue;
    Expansion& e = expansion[p];
    const auto pp = static_cast<std::int64_t>(p);
    if (pp < old_numeric) {
      std::int64_t column = 0;
      const Affine m = numeric_map(static_cast<std::int32_t>(pp), column);
      e.add(q, m.a);
      e.add(kConstant, m.b);
    } else if (pp >= old_numeric + old_indicators && pp < from.dense_features()) {
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
    } else if (pp >= from.dense_features()) {
      // A slope slot: value x on its category's slot, a y on the new slot plus b on that
      // category's one-hot slot (active together).
      while (old_offsets[g + 1] <= pp) ++g;
      const SparseGroup& group = from.sparse[g];
      if (group.kind == SparseKind::slope) {
        std::int64_t column = 0;
        const Affine m = numeric_map(group.a, column);
        e.add(q, m.a);
        const std::int64_t one_hot =
            find_new(one_hot_key(from.categorical.at(static_cast<std::size_t>(group.b)),
                                 static_cast<std::int32_t>(pp - old_offsets[g])));
        if (m.b != 0.0 && one_hot < 0) ++counts.inexact_terms;  // not expected: see preparation.cpp
        if (one_hot >= 0) e.add(one_hot, m.b);
        const std::int64_t ts = e.index_of(q), to_hot = e.index_of(one_hot);
        if (ts >= 0 && to_hot >= 0) {
          e.products.push_back({static_cast<std::size_t>(ts), static_cast<std::size_t>(to_hot), q});
        }
      } else {
        e.add(q, 1.0);
      }
    } else {
      e.add(q, 1.0);  // a missing indicator
    }
  }

  // Categorical crosses that `to` hashes into another bucket count: their keys differ (none of
  // their buckets has an expansion), so they move pair by pair.
  std::vector<CrossMove> moves;
  for (std::size_t og = 0; og < from.sparse.size(); ++og) {
    if (from.sparse[og].kind != SparseKind::categorical_cross) continue;
    for (std::size_t ng = 0; ng < to.sparse.size(); ++ng) {
      const SparseGroup& group = to.sparse[ng];
      if (group.kind != SparseKind::categorical_cross || group.name != from.sparse[og].name ||
          group.slots == from.sparse[og].slots) {
        continue;
      }
      counts.remapped_crosses.emplace_back();
      moves.push_back(move_cross(from, og, to, ng, from_profile, parameters, outputs, k,
                                 counts.remapped_crosses.back()));
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
  std::vector<double> w(new_features), u(new_features * k), u0(k), diagonal(new_features);
  std::vector<std::int32_t> sources(new_features);
  for (std::size_t o = 0; o < outputs; ++o) {
    std::fill(w.begin(), w.end(), 0.0);
    double bias = parameters.bias[o];
    for (std::size_t p = 0; p < old_features; ++p) {
      const double wp = parameters.weights[o * old_features + p];
      for (const Term& t : expansion[p].terms) {
        (t.feature == kConstant ? bias : w[static_cast<std::size_t>(t.feature)]) +=
            t.coefficient * wp;
      }
    }
    // A moved cross bucket takes its old bucket's weight as a bucket of equal counts does (the fm
    // conversion below then treats it alike), or its pairs' average.
    for (const CrossMove& move : moves) {
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
        const Expansion& e = expansion[p];
        if (e.terms.empty()) continue;
        for (std::size_t f = 0; f < k; ++f)
          v[f] = parameters.factors[(o * old_features + p) * k + f];
        const double norm = dot(v.data(), v.data());
        for (const Term& t : e.terms) {
          double* target =
              t.feature == kConstant ? u0.data() : &u[static_cast<std::size_t>(t.feature) * k];
          for (std::size_t f = 0; f < k; ++f) target[f] += t.coefficient * v[f];
          if (t.feature != kConstant) {
            diagonal[static_cast<std::size_t>(t.feature)] += t.coefficient * t.coefficient * norm;
            ++sources[static_cast<std::size_t>(t.feature)];
          }
        }
        // -|v_p|^2 m m' y y' for each two terms of p (y = 1 for the constant).
        for (std::size_t i = 0; i < e.terms.size(); ++i) {
          for (std::size_t j = i + 1; j < e.terms.size(); ++j) {
            const double c = -norm * e.terms[i].coefficient * e.terms[j].coefficient;
            if (e.terms[i].feature == kConstant || e.terms[j].feature == kConstant) {
              const std::int64_t q =
                  e.terms[i].feature == kConstant ? e.terms[j].feature : e.terms[i].feature;
              w[static_cast<std::size_t>(q)] += c;
              continue;
            }
            bool expressed = false;
            for (const Expansion::Product& product : e.products) {
              if ((product.i == i && product.j == j) || (product.i == j && product.j == i)) {
                w[static_cast<std::size_t>(product.feature)] += c;
                expressed = true;
              }
            }
            if (!expressed) ++counts.inexact_terms;  // cubic: a cross term times one of its columns
          }
          if (e.terms[i].feature == kConstant) {
            bias -= 0.5 * norm * e.terms[i].coefficient * e.terms[i].coefficient;
          }
        }
      }
      // A moved cross bucket's factors: its old bucket's or its pairs' average, one term of
      // coefficient 1 (as a bucket of equal counts) whose pairs with its own group's other buckets
      // never occur (one bucket per row).
      for (const CrossMove& move : moves) {
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
