// The formulas of data preparation, written once for the CPU backend and the CUDA kernels
// (STYLE.md rule 1): imputation, clipping, scaling, missing indicators, category slots, quantile
// bins, hashing of categories and crosses, and row hashing for duplicate detection. Plain C++ that
// g++ compiles.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/host_device.h"

namespace lathe {

// The fitted transformation of one numeric column: missing -> fill, then clip to [clip_lo,
// clip_hi], then (value - center) * inv_scale computed in double and cast to float, so a column whose
// mean is a million times its spread keeps float32 precision after centering.
struct NumericTransform {
  float fill = 0.0f;          // replaces a missing (NaN) value
  float clip_lo = -INFINITY;  // no clipping: -inf / +inf
  float clip_hi = INFINITY;
  double center = 0.0;
  double inv_scale = 1.0;     // 1 / scale; 1 when the column is constant (never inf or NaN)
};

// v clipped to [lo, hi] in float (also the clipped values' moments: QuantileSketch::clipped_moments).
LATHE_HOST_DEVICE float clip_value(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

LATHE_HOST_DEVICE float prepare_numeric(float x, const NumericTransform& t) {
  const float v = (x != x) ? t.fill : x;
  const float c = clip_value(v, t.clip_lo, t.clip_hi);
  return static_cast<float>((static_cast<double>(c) - t.center) * t.inv_scale);
}

LATHE_HOST_DEVICE float missing_indicator(float x) { return (x != x) ? 1.0f : 0.0f; }

// Slot of a categorical value in the model's vocabulary. `code` is the input file's category code
// as float (NaN = missing); `remap[code]` is the slot of that code's label (built on the host by
// matching labels, so files imported separately agree), or unknown_slot for a label the model never
// saw. A negative code is missing; a code >= remap_size (or +inf) is unknown. Out-of-range codes
// are decided before the float -> int conversion, whose overflow differs between host and device.
LATHE_HOST_DEVICE std::int32_t category_slot(float code, const std::int32_t* remap,
                                             std::int32_t remap_size, std::int32_t missing_slot,
                                             std::int32_t unknown_slot) {
  if (code != code || code < 0.0f) return missing_slot;
  if (!(code < 2147483648.0f)) return unknown_slot;
  const std::int32_t c = static_cast<std::int32_t>(code);
  if (c >= remap_size) return unknown_slot;
  return remap[c];
}

// SplitMix64's finalizer: a fast 64-bit mixer with full avalanche.
LATHE_HOST_DEVICE std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// The bucket of a categorical x categorical cross: from the two slots' label hashes (hashes of the
// label strings, see label_hash), so it does not depend on either file's codes.
LATHE_HOST_DEVICE std::uint32_t cross_bucket(std::uint64_t label_hash_a, std::uint64_t label_hash_b,
                                             std::uint32_t buckets) {
  return static_cast<std::uint32_t>(mix64(label_hash_a * 0x9e3779b97f4a7c15ULL ^ label_hash_b) %
                                    buckets);
}

// 64-bit hash of a category label (FNV-1a over its bytes, then mix64 for avalanche in the low
// bits that `% buckets` keeps). Used for hashed categorical columns and for the label hashes that
// cross_bucket combines; it depends only on the label's text, never on a file's codes.
LATHE_HOST_DEVICE std::uint64_t label_hash(const char* text, std::size_t length) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < length; ++i) {
    h ^= static_cast<std::uint8_t>(text[i]);
    h *= 0x100000001b3ULL;
  }
  return mix64(h);
}

// Label hashes of the two slots that have no label: a missing value and a label unseen in training.
// (Distinct from every label's hash but with negligible probability.)
inline constexpr std::uint64_t kMissingLabelHash = 0x6d697373696e6721ULL;
inline constexpr std::uint64_t kUnknownLabelHash = 0x756e6b6e6f776e21ULL;
// The "label hash" of bucket b of a hashed categorical column (its labels are not kept).
LATHE_HOST_DEVICE std::uint64_t bucket_label_hash(std::uint32_t bucket) {
  return mix64(0x6275636b65742121ULL ^ bucket);
}

// A block of prepared rows (runtime/preparation.h: PreparedBlock), column-major, in host or device
// memory: dense[f * rows + r], and for sparse group g the active slot slot[g * rows + r] with its
// value value[g * rows + r]. Non-owning.
struct PreparedRowsView {
  const float* dense = nullptr;
  const std::int32_t* slot = nullptr;
  const float* value = nullptr;
  std::int64_t rows = 0;
};

// Where each part of a prepared row lies in the expanded feature space: dense features 0..dense-1,
// then sparse group g's slots at [group_offset[g], group_offset[g + 1]). group_offset has
// groups + 1 entries: group_offset[0] == dense_features, group_offset[groups] == expanded width.
// Non-owning (host or device memory); FittedPreparation::group_offsets() builds the table.
struct ExpandedLayout {
  std::int64_t dense_features = 0;
  std::int32_t groups = 0;
  const std::int64_t* group_offset = nullptr;
};

// The sparse group holding expanded feature k (dense_features <= k < expanded width): the last g
// with group_offset[g] <= k, by binary search (groups are few; the table stays in cache).
LATHE_HOST_DEVICE std::int32_t expanded_group_of(const ExpandedLayout& layout, std::int64_t k) {
  std::int32_t lo = 0, hi = layout.groups - 1;
  while (lo < hi) {
    const std::int32_t mid = lo + (hi - lo + 1) / 2;
    if (layout.group_offset[mid] <= k) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// Expanded feature k of row r, computed on the fly from the prepared row: a dense value, or the
// sparse group's value when k is its active slot, else 0. Training and scoring kernels use this
// (or, faster, index weights by group_offset[g] + slot directly) instead of materializing the
// expanded matrix; materialize_expanded uses it to write that matrix for checking.
LATHE_HOST_DEVICE float expanded_feature(const PreparedRowsView& rows, const ExpandedLayout& layout,
                                         std::int64_t r, std::int64_t k) {
  if (k < layout.dense_features) return rows.dense[k * rows.rows + r];
  const std::int32_t g = expanded_group_of(layout, k);
  const std::int64_t i = static_cast<std::int64_t>(g) * rows.rows + r;
  return (layout.group_offset[g] + rows.slot[i] == k) ? rows.value[i] : 0.0f;
}

// The fused transform of one row block, as both backends run it: parameter tables (host or device
// memory, built from a BoundPreparation) and, per output column, a small descriptor resolved once
// (dense_feature, sparse_feature) then applied row by row (dense_value, sparse_entry). The CPU
// loops over rows for each descriptor; the CUDA kernel gives each thread a row and loops over
// descriptors.

enum class SparseKind : std::int32_t { one_hot, categorical_cross, slope, bins };

// The bin of a numeric value among `edges` ascending, finite bin edges: the number of edges at or
// below x (bin 0 below the first edge, bin `edges` at or above the last), a binary search. A
// missing value (NaN) has its own slot after the bins, `edges` + 1; -inf is bin 0 and +inf the last.
LATHE_HOST_DEVICE std::int32_t bin_slot(float x, const float* edge, std::int32_t edges) {
  if (x != x) return edges + 1;
  std::int32_t lo = 0, hi = edges;  // the answer is in [lo, hi]
  while (lo < hi) {
    const std::int32_t mid = lo + (hi - lo) / 2;
    if (edge[mid] <= x) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// The label hash of the quantile bin [lo, hi) of a numeric column (lo -inf for the first bin, hi
// +inf for the last), which a categorical cross combines as it does a category's label hash
// (cross_bucket): from the edges' values, so that a bin refitted at the same edges hashes alike
// and the cross's buckets keep their meaning, and distinct for distinct bins (mix64 is a
// bijection of the two edges' bits). -0 is taken as 0. The missing bin crosses as
// kMissingLabelHash, as a missing category does.
LATHE_HOST_DEVICE std::uint64_t bin_label_hash(float lo, float hi) {
  std::uint32_t lo_bits, hi_bits;
  const float l = lo == 0.0f ? 0.0f : lo, h = hi == 0.0f ? 0.0f : hi;
  std::memcpy(&lo_bits, &l, sizeof lo_bits);
  std::memcpy(&hi_bits, &h, sizeof hi_bits);
  return mix64(0x62696e6c6162656cULL ^ ((static_cast<std::uint64_t>(lo_bits) << 32) | hi_bits));
}

struct CategoricalTable {
  std::int32_t input = 0;       // input column holding the codes
  std::int32_t remap_size = 0;  // codes of the input file
  std::int32_t missing_slot = 0;
  std::int32_t unknown_slot = 0;
  const std::int32_t* remap = nullptr;       // file code -> slot
  const std::uint64_t* slot_hash = nullptr;  // slot -> label hash
};

// The quantile bins of a numeric encoding (zeros for an unbinned one): its edges are
// bin_edge[edge_begin, edge_begin + edges), and bin s (edges + 1: missing) crosses with label hash
// bin_hash[hash_begin + s].
struct BinsTable {
  std::int32_t edge_begin = 0;
  std::int32_t edges = 0;
  std::int32_t hash_begin = 0;
};

struct SparseGroupTable {
  SparseKind kind = SparseKind::one_hot;
  // one_hot, categorical_cross: categorical index (a cross's side that is bins: numeric index);
  // slope, bins: numeric index.
  std::int32_t a = 0;
  std::int32_t b = 0;  // categorical_cross, slope: categorical index (a side that is bins: numeric)
  // categorical_cross: 1 where side a (b) is the quantile bins of numeric column a (b).
  std::int32_t a_bins = 0;
  std::int32_t b_bins = 0;
};

struct PrepareTables {
  const NumericTransform* transform = nullptr;  // per numeric encoding
  const std::int32_t* numeric_input = nullptr;  // input column of each numeric encoding
  std::int32_t numeric = 0;
  const std::int32_t* indicator = nullptr;  // numeric index of each missing indicator
  std::int32_t indicators = 0;
  const std::int32_t* cross = nullptr;  // numeric x numeric crosses: 2 numeric indices each
  std::int32_t crosses = 0;
  const CategoricalTable* categorical = nullptr;
  std::int32_t categoricals = 0;
  const SparseGroupTable* group = nullptr;
  std::int32_t groups = 0;
  const BinsTable* bins = nullptr;  // per numeric encoding
  const float* bin_edge = nullptr;  // every binned column's edges, one after the other
  const std::uint64_t* bin_hash = nullptr;  // every binned column's bin label hashes, likewise
  std::uint32_t hash_buckets = 1;  // of categorical x categorical crosses

  LATHE_HOST_DEVICE std::int64_t dense_features() const {
    return static_cast<std::int64_t>(numeric) + indicators + crosses;
  }
};

enum class DenseKind : std::int32_t { numeric, indicator, product };

// Dense output column f: prepared numeric column, missing indicator, or product of two prepared
// numeric columns. `a`, `b` point at the input columns (row 0).
struct DenseFeature {
  DenseKind kind = DenseKind::numeric;
  const float* a = nullptr;
  const float* b = nullptr;
  NumericTransform ta, tb;
};

LATHE_HOST_DEVICE DenseFeature dense_feature(const PrepareTables& t, const float* input,
                                             std::int64_t rows, std::int64_t f) {
  DenseFeature d;
  if (f < t.numeric) {
    d.kind = DenseKind::numeric;
    d.a = input + t.numeric_input[f] * rows;
    d.ta = t.transform[f];
  } else if (f < static_cast<std::int64_t>(t.numeric) + t.indicators) {
    const std::int32_t i = t.indicator[f - t.numeric];
    d.kind = DenseKind::indicator;
    d.a = input + t.numeric_input[i] * rows;
  } else {
    const std::int64_t c = f - t.numeric - t.indicators;
    const std::int32_t i = t.cross[2 * c], j = t.cross[2 * c + 1];
    d.kind = DenseKind::product;
    d.a = input + t.numeric_input[i] * rows;
    d.b = input + t.numeric_input[j] * rows;
    d.ta = t.transform[i];
    d.tb = t.transform[j];
  }
  return d;
}

// A numeric x numeric cross: the product of the two prepared values. The preparation computes it
// from the raw columns (dense_value); the CPU model multiplies it out of the two prepared features
// it stores (multiply_out_products, models/row_major_rows.h), the same float either way.
LATHE_HOST_DEVICE float numeric_cross(float prepared_a, float prepared_b) { return prepared_a * prepared_b; }

LATHE_HOST_DEVICE float dense_value(const DenseFeature& d, std::int64_t r) {
  switch (d.kind) {
    case DenseKind::numeric:
      return prepare_numeric(d.a[r], d.ta);
    case DenseKind::indicator:
      return missing_indicator(d.a[r]);
    default:
      return numeric_cross(prepare_numeric(d.a[r], d.ta), prepare_numeric(d.b[r], d.tb));
  }
}

// One categorical input column, resolved: its codes (row 0) and slot tables.
struct CategoryColumn {
  const float* codes = nullptr;
  const std::int32_t* remap = nullptr;
  const std::uint64_t* slot_hash = nullptr;
  std::int32_t remap_size = 0, missing_slot = 0, unknown_slot = 0;
};

LATHE_HOST_DEVICE CategoryColumn category_column(const PrepareTables& t, const float* input,
                                                 std::int64_t rows, std::int32_t j) {
  const CategoricalTable& c = t.categorical[j];
  CategoryColumn col;
  col.codes = input + c.input * rows;
  col.remap = c.remap;
  col.slot_hash = c.slot_hash;
  col.remap_size = c.remap_size;
  col.missing_slot = c.missing_slot;
  col.unknown_slot = c.unknown_slot;
  return col;
}

LATHE_HOST_DEVICE std::int32_t slot_at(const CategoryColumn& c, std::int64_t r) {
  return category_slot(c.codes[r], c.remap, c.remap_size, c.missing_slot, c.unknown_slot);
}

// One binned numeric column, resolved: its raw values (row 0), its edges and its bins' label hashes.
struct BinsColumn {
  const float* x = nullptr;
  const float* edge = nullptr;
  std::int32_t edges = 0;
  const std::uint64_t* label_hash = nullptr;  // per bin, then the missing bin
};

LATHE_HOST_DEVICE BinsColumn bins_column(const PrepareTables& t, const float* input,
                                         std::int64_t rows, std::int32_t i) {
  const BinsTable& b = t.bins[i];
  BinsColumn col;
  col.x = input + t.numeric_input[i] * rows;
  col.edge = t.bin_edge + b.edge_begin;
  col.edges = b.edges;
  col.label_hash = t.bin_hash + b.hash_begin;
  return col;
}

LATHE_HOST_DEVICE std::int32_t bin_at(const BinsColumn& c, std::int64_t r) {
  return bin_slot(c.x[r], c.edge, c.edges);
}

// Sparse group g: one-hot of a categorical column (value 1), categorical cross (the bucket of the
// label hashes of its two sides' slots, value 1; a side is a categorical column, or a numeric
// column's quantile bins crossing as their bins), numeric x categorical slope (the categorical
// slot, value = the prepared numeric value), or the quantile bins of a numeric column (the bin of
// its raw value, before imputation, clipping and scaling; value 1).
struct SparseFeature {
  SparseKind kind = SparseKind::one_hot;
  // one_hot: a; categorical_cross: a, b (a side that is bins: bins_a, bins_b); slope: a is the
  // categorical column; bins: bins_a.
  CategoryColumn a, b;
  BinsColumn bins_a, bins_b;
  const float* x = nullptr;  // slope: the numeric input column
  NumericTransform tx;
  std::uint32_t buckets = 1;
};

LATHE_HOST_DEVICE SparseFeature sparse_feature(const PrepareTables& t, const float* input,
                                               std::int64_t rows, std::int32_t g) {
  const SparseGroupTable& gt = t.group[g];
  SparseFeature s;
  s.kind = gt.kind;
  s.buckets = t.hash_buckets;
  if (gt.kind == SparseKind::slope) {
    s.x = input + t.numeric_input[gt.a] * rows;
    s.tx = t.transform[gt.a];
    s.a = category_column(t, input, rows, gt.b);
  } else if (gt.kind == SparseKind::bins) {
    s.bins_a = bins_column(t, input, rows, gt.a);
  } else if (gt.kind == SparseKind::categorical_cross) {
    if (gt.a_bins) {
      s.bins_a = bins_column(t, input, rows, gt.a);
    } else {
      s.a = category_column(t, input, rows, gt.a);
    }
    if (gt.b_bins) {
      s.bins_b = bins_column(t, input, rows, gt.b);
    } else {
      s.b = category_column(t, input, rows, gt.b);
    }
  } else {
    s.a = category_column(t, input, rows, gt.a);
  }
  return s;
}

// The label hash of row r's slot on one side of a categorical cross: its category's, or its bin's
// where the side is a numeric column's bins (`bins.x` set).
LATHE_HOST_DEVICE std::uint64_t cross_side_hash(const CategoryColumn& column, const BinsColumn& bins,
                                                std::int64_t r) {
  return bins.x ? bins.label_hash[bin_at(bins, r)] : column.slot_hash[slot_at(column, r)];
}

LATHE_HOST_DEVICE void sparse_entry(const SparseFeature& s, std::int64_t r, std::int32_t& slot,
                                    float& value) {
  switch (s.kind) {
    case SparseKind::one_hot:
      slot = slot_at(s.a, r);
      value = 1.0f;
      break;
    case SparseKind::categorical_cross:
      slot = static_cast<std::int32_t>(cross_bucket(cross_side_hash(s.a, s.bins_a, r),
                                                    cross_side_hash(s.b, s.bins_b, r), s.buckets));
      value = 1.0f;
      break;
    case SparseKind::bins:
      slot = bin_at(s.bins_a, r);
      value = 1.0f;
      break;
    default:
      slot = slot_at(s.a, r);
      value = prepare_numeric(s.x[r], s.tx);
      break;
  }
}

// Folds one value into a row hash. Missing values hash alike (all NaNs are one value) and -0.0
// hashes as 0.0, matching "equal" in duplicate detection.
LATHE_HOST_DEVICE std::uint64_t row_hash_step(std::uint64_t h, float v) {
  std::uint32_t bits;
  if (v != v) {
    bits = 0x7fc00000u;
  } else if (v == 0.0f) {
    bits = 0u;
  } else {
    std::memcpy(&bits, &v, sizeof bits);
  }
  return mix64(h ^ (bits + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
}

inline constexpr std::uint64_t kRowHashSeed = 0x2545f4914f6cdd1dULL;

// Two values are the same for duplicate detection: bit-equal after the canonicalization above.
LATHE_HOST_DEVICE bool same_value(float a, float b) {
  return (a != a) ? (b != b) : (a == b);
}

}  // namespace lathe
