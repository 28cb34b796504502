// Warm starts (`lathe train --init-model OLD.h5`): an earlier model's parameters carried into a
// model over another fitted preparation (`--refit-prep`), feature by feature, converted so that the
// new model computes the earlier model's function.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/model.h"
#include "runtime/preparation.h"
#include "runtime/profile.h"

namespace lathe {

// A name for each expanded feature of `fitted` (expanded order) that stays the same when the
// preparation is refitted on other data: dense features by dense_names(); one-hot and slope slots
// by column name and category label ("city=Oslo", "<missing>", "<unknown>"; a hashed column's
// buckets by bucket number and count); categorical crosses by bucket number and count (the same
// key only at the same bucket count: carry_parameters moves a cross between bucket counts pair by
// pair instead); quantile bins by group name and bin_name ("carat#bins=[0.5, 0.75)",
// "carat#bins=<missing>": the same key only at the same edges: carry_parameters moves bins between
// edges bin by bin). A string per feature: carry_parameters matches features by these keys without
// building them (a bucket by its number and count, never by a label spelled like its key), but for
// a numeric cross and a slope group, which it matches by their two columns however --cross spelled
// them ("a*b" is the product "b*a", and "age*city" the slopes "city*age").
std::vector<std::string> expanded_feature_keys(const FittedPreparation& fitted);
// The key of expanded feature `feature` alone (0 <= feature < fitted.expanded_features()): for a
// few features of a model with millions of hashed buckets (`lathe report`'s largest weights).
std::string expanded_feature_key(const FittedPreparation& fitted, std::int64_t feature);

// Two features of a fitted preparation that share a name: a column named like a feature the
// preparation makes ("a*b" beside the cross of a and b, "x_missing" beside x's missing indicator,
// "x#bins" beside x's bins), or two such features ("a*b*c" of columns a and "b*c", and of "a*b" and
// c). Names are how features are told apart: `lathe prepare` would write two columns of one name,
// and a retraining (carry_parameters) would carry one's weights onto the other.
struct SharedFeatureName {
  std::string name;
  // What each of the two features is, in expanded order, as a message says it: "column 'a*b'",
  // "the missing indicator of column 'x'", "the cross of column 'a' and column 'b'", "the bins of
  // column 'x'", "the slopes of column 'x' per category of column 'c'".
  std::string first, second;
};
// The first name (in expanded order) that two features of `fitted` share, among its dense features
// (dense_names) and its sparse groups (their names: one name a group, as `lathe prepare` writes
// them), or nullopt when each name is its feature's own. carry_parameters refuses (InputError) to
// carry between preparations either of which has one.
std::optional<SharedFeatureName> shared_feature_name(const FittedPreparation& fitted);

// The names of the slots of one side of categorical cross `group` (side b when `side_b`), in
// cross_side_hashes' order: "city=Oslo", "city=<missing>", "city=<unknown>", a hashed column's
// buckets "city=#3/64", a binned numeric side's bins "age#bins=[0.5, 0.75)" and
// "age#bins=<missing>"
// (`lathe report` names a cross bucket by the pairs of slots that hash into it).
std::vector<std::string> cross_side_slot_names(const FittedPreparation& fitted,
                                               const SparseGroup& group, bool side_b);

// The name of bin `bin` (0..edges.size()) of a binned column of inner edges `edges`
// (NumericEncoding::bin_edges): "[lo, hi)", with -inf and inf at the open ends ("[-inf, 0.5)",
// "[0.5, 0.75)", "[2.5, inf)"; "[-inf, inf)" without edges), each edge as the shortest decimal
// that reads back as its float, so that two bins share a name only when they are the same bin. The
// bins' feature keys and `lathe prepare`'s labels of a bins column. Error for another bin.
std::string bin_name(const std::vector<float>& edges, std::int32_t bin);

// A regression model's target standardization: its score s predicts mean + std * s (ModelFile's
// target_mean and target_std; std > 0). Ignored for classification.
struct TargetScaling {
  double mean = 0.0;
  double std = 1.0;
};

// Above this many pairs (categories of one column times those of the other) a categorical cross is
// not moved to another bucket count: its weights start at zero (RemappedCross::moved false).
inline constexpr std::int64_t kMaxRemappedCrossPairs = 200'000'000;

// A categorical cross that both preparations make, hashed into other bucket counts, whose
// parameters carry_parameters moved pair by pair (see below).
struct RemappedCross {
  std::string name;  // "city*device"
  std::uint32_t old_buckets = 0, new_buckets = 0;
  // Pairs of categories (slots, missing and unknown included) that both preparations know: each
  // took its old bucket's parameters into its new bucket, unless `moved` is false.
  std::int64_t pairs = 0;
  // New buckets whose pairs had different old parameters: they hold their weighted average,
  // inexact for each of those pairs.
  std::int64_t shared_buckets = 0;
  bool moved = false;  // false: more than kMaxRemappedCrossPairs pairs, left at zero
  // The averages are weighted by the earlier profile's category counts (else plain averages: no
  // profile, or a column missing from it).
  bool weighted_by_counts = false;
};

// A one-hot column whose encoding changed between the two preparations (a vocabulary into hash
// buckets or back, or another bucket count: --max-categories, --category-buckets), whose slots
// carry_parameters moved label by label (missing and unknown carry by name).
struct RemappedColumn {
  std::string name;
  bool was_hashed = false, now_hashed = false;
  std::int32_t old_slots = 0, new_slots = 0;  // vocabulary labels or buckets (known slots)
  // The labels moved: a new vocabulary's (each takes its old bucket's parameters, exactly), or
  // into buckets the earlier profile's labels, else the earlier vocabulary's.
  std::int64_t labels = 0;
  // New slots whose labels had different earlier parameters: they hold their average (weighted by
  // the labels' counts in the earlier training rows when `weighted_by_counts`), inexact for each.
  std::int64_t shared_slots = 0;
  bool weighted_by_counts = false;
  bool moved = false;  // false: buckets into other buckets without the earlier profile's labels
};

// A numeric column that both preparations bin (--bins), at other edges (--refit-prep fits them on
// the new rows' quantiles), whose bins carry_parameters moved bin by bin (see below).
struct RemappedBins {
  std::string name;                         // the numeric column
  std::int32_t old_bins = 0, new_bins = 0;  // bins of present values (edges + 1)
  // New bins that took an earlier bin's parameters: all of them, but for the one bin of a column
  // that `to` fits no edge for (constant in its rows), which has no point to place: zero.
  std::int32_t moved = 0;
};

// What carry_parameters did.
struct CarryReport {
  // Earlier features that `to` has by the same key (expanded_feature_keys) and that so took their
  // parameters; a remapped cross's buckets are counted in `remapped_crosses` instead.
  std::int64_t carried = 0;
  // fm pairwise terms that no parameters of the new model can express (see below), left out.
  std::int64_t inexact_terms = 0;
  // The categorical crosses of `from` that `to` makes with another bucket count, in `from`'s order.
  std::vector<RemappedCross> remapped_crosses;
  // The one-hot columns of `from` that `to` encodes otherwise, in `from`'s order.
  std::vector<RemappedColumn> remapped_columns;
  // The binned columns of `from` that `to` bins at other edges, in `from`'s order.
  std::vector<RemappedBins> remapped_bins;
};

// The parameters of a model of `shape` (over `to`, target scaling `to_target`) that computes the
// earlier model (`parameters`, over `from`, target scaling `from_target`, the same outputs and
// factors): every feature that `from` also has (expanded_feature_keys) takes the earlier
// parameters, converted to `to`'s centers, scales and target scaling; the others are zero (weights
// and factors). Throws InputError when the outputs or factors differ.
//
// The conversion, per output (all in double, rounded to float once). A numeric column prepared as
// x = (v - c) / s by `from` and y = (v - c') / s' by `to` (NumericTransform: center, 1 / scale;
// every scale kind, standard, minmax, robust and none, is such a center and scale) has
// x = a y + b with a = s' / s, b = (c' - c) / s. Substituted into the earlier score:
//   numeric column      w' = a w, bias += w b;
//   numeric x numeric   x_i x_j = a_i a_j y_i y_j + a_i b_j y_i + a_j b_i y_j + b_i b_j: the cross
//                       takes a_i a_j w, the linear weights of columns i and j (always features)
//                       a_i b_j w and a_j b_i w, the bias b_i b_j w (a square x_i x_i alike);
//   slope (numeric x categorical, value x on the category's slot): the slot takes a w, the same
//                       category's one-hot slot (every categorical column has its one-hot group)
//                       b w;
//   missing indicators, one-hot slots and categorical crosses carry as they are; a categorical
//                       cross that `to` hashes into another bucket count, or whose side of bins
//                       `to` refitted at other edges (each new bin taking the old bin that holds its
//                       midpoint, as a bins group's slots do), is moved pair by pair:
//                       a bucket is cross_bucket(label hash of A's slot, of B's slot, buckets), so
//                       each pair of slots that both preparations know (the same label; missing
//                       with missing, unknown with unknown: rows with a label neither knows) takes
//                       its old bucket's weight and factors into its new bucket (pairs that shared
//                       an old bucket all take its value, which `from` computed for each). A new
//                       bucket so fed from one old bucket's value is then converted as a bucket of
//                       equal counts is; one whose pairs had different old values takes their
//                       average weighted by the product of the two categories' counts in
//                       `from_profile` (the pair's frequency were they independent; a plain
//                       average without counts, or where they are all zero), weight and factors
//                       alike, so that its score term is that average of the pairs' old terms
//                       (RemappedCross::shared_buckets counts such buckets). Above
//                       kMaxRemappedCrossPairs pairs a cross is left at zero;
//   a one-hot column that `to` encodes otherwise (a vocabulary into buckets or back, another
//                       bucket count) moves label by label, as a cross moves pair by pair
//                       (RemappedColumn): into a vocabulary each label takes its old bucket's
//                       parameters, exactly; into buckets each bucket takes the count-weighted
//                       average of its labels' old parameters (`from_profile`'s labels, else
//                       `from`'s vocabulary), or, when no label falls in it, the old unknown slot's
//                       (what the earlier vocabulary gave labels it had not seen). Its slope slots
//                       start at zero;
//   quantile bins       (0/1 slots) carry as they are at the same edges; at other edges
//                       (RemappedBins) each new bin takes the parameters of the earlier bin that
//                       holds a point of it: the midpoint of its two edges; the first bin, open
//                       below, a value just below its edge; the last, open above, its edge itself;
//                       the missing slot the missing slot's. Exact for the values whose earlier bin
//                       is that one (each new bin inside an earlier one: the edges of `from` among
//                       those of `to`); a value whose earlier bin differs takes a neighbouring
//                       bin's weight. A column without edges in `to` (one bin, constant in its
//                       rows) has no point to place: that bin starts at zero. Bins of a column
//                       `from` does not bin start at zero, as any feature `from` lacks.
// Each earlier feature is so an affine map of new features, x_p = sum_q m_pq y_q + m_p (y_0 = 1
// names the constant); an fm's factors become u_q = sum_p m_pq v_p (u_0 = sum_p m_p v_p: the dense
// columns' shifts). Then sum_{q<q'} <u_q, u_q'> y_q y_q' is the earlier pairwise term
// sum_{p<p'} <v_p, v_p'> x_p x_p' but for products that pair a term with the constant or two terms
// of one earlier feature (or of two onto the same new feature), which become weights and bias:
//   weight of q   += <u_q, u_0> - sum_p |v_p|^2 m_pq m_p;
//   bias          += |u_0|^2 / 2 - sum_p |v_p|^2 m_p^2 / 2;
//   y_q y_q' of one earlier feature p (coefficient -|v_p|^2 m_pq m_pq'): a slope slot times its
//                 one-hot slot is the slope slot; columns i and j of a cross are the cross;
//   y_q^2 of two earlier features (sum_{p<p'} m_pq m_p'q <v_p, v_p'>): y_q itself for a 0/1
//                 feature (a one-hot slot with the slopes on it); a numeric column's square cross.
// Left out (counted in inexact_terms): the other products, which only an fm's numeric x numeric
// cross whose columns moved gives: a cross term times one of its columns, cubic in the new
// features, and a column's square where `to` has no square cross of it.
// Regression (shape.task): the score z' = (mean - mean') / std' + (std / std') z, so every weight
// and the bias are multiplied by r = std / std' and the bias gets (mean - mean') / std'; fm factors
// are multiplied by sqrt(r), their pairwise products so by r.
//
// Exact (to float rounding) for rows whose numeric values are present and inside both
// preparations' clip bounds and whose categories both preparations know. Not carried: a missing
// value (the fill value changed), a clipped one (the bounds changed), a category `from` sent to its
// unknown slot that `to` knows (its slot starts at zero), a hashed column's buckets moved to another
// count without `from_profile`, labels that share a new bucket with labels of other old values
// (averaged), a cross's pairs alike (or that it has too many of to move), the slopes of a column
// whose encoding changed, a value whose bin moved to a bin of other earlier weights, and features
// `to` lacks.
// `from_profile` (optional): the profile of `from`'s training rows, for the counts above.
ModelParameters carry_parameters(const FittedPreparation& from, const ModelParameters& parameters,
                                 const TargetScaling& from_target, const FittedPreparation& to,
                                 const TargetScaling& to_target, const ModelShape& shape,
                                 CarryReport* report = nullptr,
                                 const DataProfile* from_profile = nullptr);

}  // namespace lathe
