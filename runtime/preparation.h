// Data preparation: the options a user picks, the parameters fitted from a DataProfile, and the
// fused transform (impute + clip + scale + categorical slots + crosses) applied to blocks of rows
// on the CPU or the GPU with the formulas of kernels/prepare_formulas.h. Training and scoring apply
// the same FittedPreparation, so a model sees at scoring time exactly the transformation it was
// trained on.
//
// A prepared row has two parts:
//   dense   float features, in this order: prepared numeric columns, missing indicators,
//           numeric x numeric crosses (products of prepared values);
//   sparse  one active slot per group, with a value: each categorical column (one-hot: value 1),
//           each binned numeric column (its quantile bin: value 1), each categorical cross of
//           two categorical columns or bins groups (hashed bucket: value 1), each numeric x
//           categorical cross (a per-category slope: value = the prepared numeric value).
// The expanded feature space is dense features first, then each sparse group's slots in turn
// (ExpandedLayout); a one-hot is an index into a weight table, never a dense matrix.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "io/table_reader.h"
#include "kernels/prepare_formulas.h"
#include "runtime/column_block.h"
#include "runtime/device_context.h"
#include "runtime/profile.h"

namespace lathe {

struct HostPrepareTables;  // runtime/prepare_cuda.h: the transform's parameter tables in host memory

enum class ImputeKind { mean, median, constant };
enum class ScaleKind { standard, minmax, robust, none };
enum class ClipKind { none, quantile, stddev, iqr };

struct ColumnPreparation {
  ImputeKind impute = ImputeKind::mean;
  double impute_constant = 0.0;
  ScaleKind scale = ScaleKind::standard;
  ClipKind clip = ClipKind::none;
  double clip_lo_quantile = 0.01;  // ClipKind::quantile
  double clip_hi_quantile = 0.99;
  double clip_k = 3.0;  // ClipKind::stddev: mean +- k standard deviations
  // ClipKind::iqr: Tukey's fences, the quartiles +- k times their distance (the interquartile range).
  // Unlike the 1% and 99% quantiles, they stay in the bulk while up to a quarter of a side's values
  // are gross outliers.
  double clip_iqr_k = 1.5;
  // Quantile bins (0 = none, else at least 2): the column also becomes a one-hot of the bin of its
  // raw value among `bins` training quantile bins, beside its prepared value. A linear model then
  // fits a step function of the column on top of its slope, and an fm crosses the bins with the
  // other features (a price that grows faster than the carat, per colour).
  std::int32_t bins = 0;
};

// The most quantile bins a column may have (--bins).
inline constexpr std::int32_t kMaxBins = 1024;

// The most buckets of a hashed column or categorical cross (--hash-buckets, --category-buckets):
// slots are int32, two of them (missing, unknown) past the buckets.
inline constexpr std::uint32_t kMaxHashBuckets = std::numeric_limits<std::int32_t>::max() - 2;

struct CrossSpec {
  // Column names, or "x#bins" for numeric column x's quantile bins; the cross is named "a*b".
  std::string a, b;
  // A side named as a column only, never a column's bins (`--cross 'x\#bins*c'`: runtime/name_lists.h).
  bool a_column = false, b_column = false;
};

struct PreparationOptions {
  std::string label;  // passed through untouched, never a feature ("" = no label)
  // Other columns that are not features (a sample-weight column; `--drop`'s ids, timestamps,
  // leaking columns): not fitted, not inputs of the preparation. Each must be a column.
  std::vector<std::string> exclude;
  ColumnPreparation defaults;
  std::map<std::string, ColumnPreparation> per_column;  // overrides by column name
  // The preparation of column `name`: its override, else the defaults.
  const ColumnPreparation& column(const std::string& name) const {
    const auto it = per_column.find(name);
    return it == per_column.end() ? defaults : it->second;
  }
  bool missing_indicators = false;  // one 0/1 feature per numeric column that has missing values
  bool cross_all = false;           // every pair of numeric features
  std::vector<CrossSpec> crosses;
  std::uint32_t hash_buckets = 1u << 16;      // buckets of categorical x categorical crosses
  std::int32_t max_categories = 10000;  // a categorical column with more labels is hashed...
  // ...into this many buckets; 0: per column, auto_category_buckets of its training labels.
  std::uint32_t category_buckets = 0;
  // With category_buckets 0, a column named here takes these buckets instead of the rule: a
  // retraining keeps its parent's, whose weights then carry bucket by bucket (runtime/warm_start.h).
  std::map<std::string, std::uint32_t> category_buckets_of;
  // Columns never hashed, whatever their labels: a prepared file's hashed columns, whose labels are
  // already its buckets (hashing them again would add collisions).
  std::set<std::string> never_hashed;
  // A label seen in fewer training rows than this has no slot of its own: it shares the unknown
  // slot with labels never seen (1: every seen label has one). Rare labels' weights would be fitted
  // to a handful of rows; together they are one feature learned from all of them. max_categories
  // counts the labels that are left. A hashed column hashes every label.
  std::int64_t min_category_count = 1;
};

// The buckets of a hashed column of `labels` training labels when --category-buckets is not given:
// the power of two at or above twice its labels, from 2^14 to 2^20. Fewer buckets than labels give
// frequent labels a rare one's weight too (2^14 for a 2M-label column cost 0.03 test AUC on
// Criteo-like data); past 2^20 the gain was under 0.0015 AUC for 12 MB more a column.
std::uint32_t auto_category_buckets(std::int64_t labels);

// The fitted transformation of one categorical column. Slots: 0..K-1 for the vocabulary (or the
// hash buckets when hashed), K for missing, K+1 for a label never seen in training (or seen in
// fewer than min_category_count training rows).
// The vocabulary is the profile's labels seen in at least min_category_count training rows, sorted
// bytewise and deduplicated, so it depends on the labels and their counts only, never on the order
// of the training file's codes. A column with more than max_categories such labels is hashed
// instead: slot = label_hash(label) % buckets (a label unseen in training then lands in its bucket,
// not in the unknown slot).
struct CategoricalEncoding {
  std::string name;
  std::vector<std::string> vocabulary;  // training labels, slot i (empty when hashed)
  bool hashed = false;
  std::uint32_t buckets = 0;  // when hashed
  std::int32_t known_slots() const {
    return hashed ? static_cast<std::int32_t>(buckets)
                  : static_cast<std::int32_t>(vocabulary.size());
  }
  std::int32_t missing_slot() const { return known_slots(); }
  std::int32_t unknown_slot() const { return known_slots() + 1; }
  std::int32_t slots() const { return known_slots() + 2; }
  // The slot of a label: its vocabulary index, its bucket when hashed, else unknown_slot().
  std::int32_t slot_of(const std::string& label) const;
  // 64-bit hash of the label of each slot (for categorical x categorical crosses): label_hash of
  // the vocabulary label, bucket_label_hash(b) for bucket b of a hashed column, kMissingLabelHash
  // and kUnknownLabelHash for the last two slots.
  std::vector<std::uint64_t> slot_label_hashes() const;
};

struct NumericEncoding {
  std::string name;
  NumericTransform transform;
  bool has_missing = false;  // in the profile: gets an indicator when missing_indicators
  bool binned = false;       // has a bins group, of bin_edges.size() + 2 slots (bin_slot)
  // Binned: the inner edges of its quantile bins, finite and strictly ascending, each above the
  // training minimum (a value equal to an edge is in the bin above it), each bin holding at least
  // one training value. A column of a few distinct values, or of fewer values than bins asked, has
  // fewer bins than asked; a constant or all-missing one has no edge (one bin).
  std::vector<float> bin_edges;
  // Binned: the training minimum and maximum (NaN when unknown: a column without values, or a
  // model written before they were kept). The end bins are open, and these say where their
  // training values lay: a retraining places those bins by them (runtime/warm_start.h).
  float bin_min = std::numeric_limits<float>::quiet_NaN();
  float bin_max = std::numeric_limits<float>::quiet_NaN();
  // Binned: the label hash of each bin (bin_label_hash of its edges) and then kMissingLabelHash for
  // the missing bin, bin_edges.size() + 2 entries: what a categorical cross of the bins combines.
  std::vector<std::uint64_t> bin_label_hashes() const;
};

// SparseKind (one_hot, categorical_cross, slope) is declared in kernels/prepare_formulas.h.

struct SparseGroup {
  SparseKind kind = SparseKind::one_hot;
  std::string name;         // "city", "city*device", "age*city", "age#bins", "age#bins*city"
  std::int32_t a = 0;       // one_hot: categorical index; categorical_cross: categorical index
                            // (numeric index where a_bins); slope, bins: numeric index
  std::int32_t b = 0;       // categorical_cross: categorical index (numeric index where b_bins);
                            // slope: categorical index
  std::uint32_t slots = 0;  // width of the group in the expanded space
  // categorical_cross: side a (b) is the quantile bins of binned numeric column a (b), crossed as
  // its bins are one-hot ("age#bins*city"), rather than a categorical column.
  bool a_bins = false;
  bool b_bins = false;
};


// The mean and the (population) variance of a numeric column's clipped non-missing values, each
// value clipped in float as the transform clips it (clip_value), summed in double.
struct ClippedMoments {
  double mean = 0.0;
  double variance = 0.0;
};

struct ClipBounds {
  float lo = 0.0f, hi = 0.0f;
};

struct FittedPreparation {
  std::string label;
  std::vector<NumericEncoding> numeric;  // dense features 0..numeric.size()-1
  std::vector<std::int32_t> indicators;  // numeric index of each missing indicator
  std::vector<std::pair<std::int32_t, std::int32_t>> numeric_crosses;  // numeric indices
  std::vector<CategoricalEncoding> categorical;                        // categorical input columns
  std::vector<SparseGroup> sparse;                                     // in expanded order
  std::uint32_t hash_buckets = 0;

  std::int64_t dense_features() const;
  // The dense features before the numeric crosses (numeric and indicators): what a CPU model's
  // row-major training rows hold (ModelShape::products).
  std::int64_t row_major_dense_features() const;
  std::int64_t expanded_features() const;        // dense + all sparse slots
  // Bytes of one prepared row's features: a float per dense feature, a slot (int32) and a value
  // (float) per sparse group.
  std::int64_t prepared_row_bytes() const;
  // Whether some sparse group's values differ from 1: a slope group's are the numeric value, while
  // every one-hot, categorical cross and bins group holds 1 in every row (sparse_entry).
  bool sparse_values_vary() const;
  std::vector<std::string> dense_names() const;  // "age", "age_missing", "age*income", ...
  // sparse.size() + 1 entries: expanded index of each sparse group's first slot, then the expanded
  // width (the table behind ExpandedLayout).
  std::vector<std::int64_t> group_offsets() const;
};

// The label hash of each slot of one side of categorical cross `group` (side b when `side_b`): the
// categorical column's slot_label_hashes, or the binned numeric column's bin_label_hashes. Their
// count is the side's slots; cross_bucket of the two sides' hashes is the group's slot.
std::vector<std::uint64_t> cross_side_hashes(const FittedPreparation& fitted,
                                             const SparseGroup& group, bool side_b);

// Fits the parameters (fill values, clip bounds, centers and scales, vocabularies) from a profile.
// Throws InputError naming the column for: a label or option naming an unknown column, a cross
// naming an unknown column or the label, a numeric option (per_column entry) on a categorical
// column or the label, a column whose statistics are not finite (infinite values), invalid clip
// quantiles or k, zero hash_buckets or category_buckets.
//
// Per numeric column (the label excluded; profile column order). The transform fills, clips, then
// scales, so the fill and the scale describe the clipped values (of the unimputed, non-missing ones):
//   clip      quantile: [q_lo, q_hi] quantiles of the sketch; stddev: mean -+ k * std of the raw
//             values; iqr: q25 - k * (q75 - q25), q75 + k * (q75 - q25) (sketch; none, with a note,
//             where q25 == q75); none;
//   fill      mean of the clipped non-missing values, their median (sketch), or impute_constant;
//   scale     standard: center mean, scale std (population) of the clipped non-missing values;
//             minmax: center min, scale max - min, with min/max narrowed to the clip bounds;
//             robust: center median, scale q75 - q25 (sketch; clipped too, which changes them only
//             when the bounds cut into the IQR); none: center 0, scale 1.
//   Unclipped, or with bounds that move no value, the mean and std are the profile's exact ones.
//   Clipped, they are `clipped_moments`' entry for the column when it has one (exact: measured by a
//   pass over the data once the bounds are known, as fit_preparation_of does), else those of the
//   sketch's weighted points clipped (QuantileSketch::clipped_moments): exact for a column of at
//   most the sketch's capacity distinct values, else within its rank error (~1.5/capacity) times
//   the clipped range.
//   A scale that is zero (constant column, IQR of 0) or not finite becomes 1, so the
//   centered output is finite (0 for a constant column under standard/minmax/robust), with a note.
//   An all-missing column imputes impute_constant (0 by default) whatever the impute kind, does not
//   clip, and outputs that constant (0 when scaled), with a note.
// Crosses: numeric*numeric is a dense product of prepared values (duplicates and a*b == b*a are
// kept once, a*a is a square; cross_all adds every pair of numeric columns i < j first, named
// "a*b" in column order); categorical*categorical hashes the
// two slots' label hashes into hash_buckets (a column crossed with itself is refused); numeric*
// categorical (either order) is a slope group: slot = the categorical slot, value = the prepared
// numeric value. "x#bins" (where no column has that name) names binned numeric column x's bins,
// which cross with a categorical column or another column's bins as a categorical column does:
// the bin of the row's raw value (its bins group's slot, missing included) with its bin's label
// hash (NumericEncoding::bin_label_hashes), hashed with the other side's into hash_buckets; the
// group is a categorical_cross with a_bins / b_bins set. "x#bins" of a column that is not binned,
// not numeric, the label or dropped is an InputError naming it, and so are bins crossed with a
// numeric column and bins crossed with themselves.
// Bins (ColumnPreparation::bins > 0): the edges are the sketch's i/bins quantiles
// (i = 1..bins-1) rounded to float, those above the minimum and each above the one before kept
// (within the sketch's rank error of equal-count bins); the group is named "col#bins". Sparse
// groups: one-hots in column order, then bins in column order, then categorical crosses, then
// slopes, each in the order given.
FittedPreparation fit_preparation(const DataProfile& profile, const PreparationOptions& options,
                                  std::vector<std::string>* notes = nullptr,
                                  const std::map<std::string, ClippedMoments>* clipped_moments = nullptr);

// The numeric features of `fitted` whose clip bounds move some of the values `profile` saw (bounds
// inside [min, max]), by name: the columns whose clipped moments a pass over the data measures.
std::map<std::string, ClipBounds> clipping_columns(const FittedPreparation& fitted, const DataProfile& profile);

// How far a numeric column's extreme values lie outside its bulk, from its profile (exact moments,
// sketch quantiles). NaN widening, jump, fence_widening and reach where they say nothing about
// outliers: no values, infinite ones, or a middle half of one value (a flag, a count mostly 0), whose
// rare values are its information rather than noise, and which clipping would flatten.
struct ExtremeSpread {
  double min = 0.0, max = 0.0;
  double bulk_lo = 0.0, bulk_hi = 0.0;  // the 1% and 99% quantiles, which `--clip quantile` clips to
  // The standard deviation of the values over that of the values clipped to [bulk_lo, bulk_hi]
  // (the sketch's estimate): how much the extremes widen the spread that standard scaling divides
  // by. Gaussian 1.02, log-normal of sigma 1 1.25; 1% of the values x50 about 6, but a heavy smooth
  // tail too (Student's t of 2 degrees of freedom, log-normal of sigma 2: 4 to 6).
  double widening = 0.0;
  // The larger over the two sides of (q99.9 - q99) / (q99 - q90) and (q1 - q0.1) / (q10 - q1): how
  // far the last 0.9% of the values reach beyond the 99% quantile, in steps of the 9% before it. A
  // smooth tail grows step by step (Gaussian about 1, log-normal of sigma 1 about 2, sigma 2 about
  // 4, t of 2 degrees of freedom 3.4); a cluster of gross outliers jumps (1% of the values x50: 60).
  // Infinite on a side whose q90 and q99 are one value and whose q99.9 is beyond them. It says
  // nothing once the outliers are more than 1% of a side's values: q99 then lies among them.
  double jump = 0.0;
  // Tukey's far-out fences, the quartiles +- 3 interquartile ranges: they stay in the bulk while up
  // to a quarter of a side's values are outliers. `beyond` is the share of the values outside them.
  double q25 = 0.0, q75 = 0.0, fence_lo = 0.0, fence_hi = 0.0, beyond = 0.0;
  // The standard deviation over that of the values clipped to the fences, as `widening`.
  double fence_widening = 0.0;
  // How far the values beyond a fence reach: the larger over the two sides of the distance from the
  // nearer quartile to the median of the values beyond that side's fence, in units of the fence's
  // distance from that quartile (3 interquartile ranges). A smooth tail is at most a few such units
  // out (Gaussian under 1, t of 2 degrees of freedom and log-normal of sigma 1 1.5, sigma 2 2.5,
  // sigma 3 4, Pareto of shape 0.5 5.6, sigma 4 6.5, but sigma 5 10); outliers x50 of a Gaussian's
  // spread are 10 to 14 out, and stay so from 0.5% of the values to 10% on a side.
  double reach = 0.0;
};
ExtremeSpread extreme_spread(const ColumnProfile& column);

// From which ExtremeSpread a column's extremes are worth a note: gross outliers that widen its
// spread, either beyond the 1% and 99% quantiles (widening and jump) or beyond the far-out fences
// (fence_widening and reach). Binary labels over 20k rows of 10 such columns, test AUC without and
// with `--clip quantile`: 1% of the values x10 (widening 1.6, jump 11) 0.816 and 0.831; x50 (5.6,
// 56) 0.765 and 0.830; 0.3% x20 (1.7, 12) 0.880 and 0.885. Where the tail is smooth clipping did not
// help: t of 2 degrees of freedom (6.1, 3.4) 0.700 and 0.696, log-normal of sigma 2 with the label
// linear in the values (4.4, 4.3) 0.667 and 0.665. Errors of 3% to 10% of the values, 25 to 75
// times the spread (reach 10 to 13, fence_widening 6.7 to 8.7; jump 1 or less and widening 1.0 to
// 1.5, since the 1% and 99% quantiles lie among them), 20 such columns over 20k rows: test AUC 0.47
// to 0.62 unclipped, as low with `--clip quantile`, 0.74 to 0.83 with `--clip iqr`. Not noted:
// outliers only 5 to 20 times the spread (reach under 5, like the heaviest smooth tails), though
// clipping helped them too (3% x5: AUC 0.79 unclipped, 0.82 with `--clip iqr`).
inline constexpr double kExtremeNoteWidening = 1.5;
inline constexpr double kExtremeNoteJump = 8.0;
// The jump is for outliers of at most 1% of a side's values; the smooth tails that jump as far put
// many more values beyond the far-out fences (Cauchy: jump 8.6 to 15, 9% beyond; Pareto of shape 1:
// 8 to 15, 8%; log-normal of sigma 3: 8 to 15, 13%), where clipping costs (20 such columns of a
// linear label: test RMSE 1.0 to 1.3 unclipped, 2.1 to 3.6 with --clip quantile). So the jump counts
// only up to this share beyond the fences.
inline constexpr double kExtremeNoteJumpBeyond = 0.03;
inline constexpr double kExtremeNoteReach = 8.0;
// The fences of ExtremeSpread::reach, in interquartile ranges beyond the quartiles.
inline constexpr double kFarOutFence = 3.0;

// A value that stands for a missing one, as exports and surveys write them (999, -999, 9999, -1): a
// numeric column's minimum or maximum that is -1 or all nines (9, 99, 999, ... or its negative),
// held by at least kMissingCodeMinShare of the column's values and beyond the far-out fences of the
// others (their quartiles +- kFarOutFence interquartile ranges). Read as a number it is an outlier
// that holds a share of the rows: a share too large for any clip (20k rows of a binary label linear
// in two Gaussian columns, one of them 999 in 10% of its rows: validation log-loss 0.520 as read,
// 0.420 with --clip iqr, 0.279 read as missing with --missing-indicators; at 30%: 0.520, 0.520,
// 0.344).
struct MissingCode {
  double value = 0.0;
  double share = 0.0;                       // of the column's non-missing values
  double others_lo = 0.0, others_hi = 0.0;  // the 1% and 99% quantiles of the other values
};
// The column's codes from its profile's sketch: its minimum, its maximum, both or none.
std::vector<MissingCode> missing_value_codes(const ColumnProfile& column);
// A code's share is the sketch's weight of one point, exact for a column of at most the sketch's
// capacity of distinct values and otherwise within about one spacing of its points (1/capacity,
// 0.1% by default): a value held by one row in 10,000 weighs no more than half of that. Below this
// share the outliers note (extreme_values_note) names the column, and a clip bounds it well (0.2%
// of the rows 999 in the example above: log-loss 0.368 as read, 0.260 with --clip iqr).
inline constexpr double kMissingCodeMinShare = 0.003;

// A note naming the numeric features whose minimum or maximum looks like a code for a missing value
// (missing_value_codes), at most three by name with their code, share and the others' bulk, and the
// remedy: import again with --na-values CODES (or NaN written for them in the HDF5 file), so that
// they are imputed and, with --missing-indicators, get a feature of their own; "" when there is
// none.
std::string missing_code_note(const DataProfile& profile, const FittedPreparation& fitted);

// A note naming the numeric features that `fitted` leaves unclipped whose extreme values lie far
// outside their bulk (the thresholds above), the most widened first, at most three by name, with
// their extremes and bulk, and the clip that would bound them: `--clip quantile` where each named
// column's 1% and 99% quantiles lie inside its far-out fences, else `--clip iqr`, whose fences stay
// in the bulk where the outliers are more than 1% of the values; "" when there is none. `profile`
// is the one `fitted` was fitted from. A column with a missing-value code is left to
// missing_code_note.
std::string extreme_values_note(const DataProfile& profile, const FittedPreparation& fitted);

// Device-resident copies of a BoundPreparation's tables and reusable output buffers (CUDA builds;
// kernels/prepare.cu). Opaque to host code.
struct PreparationDeviceState;

// A FittedPreparation matched to one input file's columns: by name, in any order; categorical codes
// remapped by label. Extra columns are ignored. The label column is optional at scoring time
// (label_input -1). `fitted` must outlive the binding.
struct BoundPreparation {
  const FittedPreparation* fitted = nullptr;
  std::vector<std::int32_t> numeric_input;              // input column of each numeric encoding
  std::vector<std::int32_t> categorical_input;          // input column of each categorical encoding
  std::vector<std::vector<std::int32_t>> remap;         // per categorical: file code -> slot
  // Per categorical: slot -> label hash, for the columns a categorical cross reads as a side;
  // empty for the others (nothing reads them).
  std::vector<std::vector<std::uint64_t>> slot_hashes;
  std::int32_t label_input = -1;
  // Filled on first use on a GPU: the tables above in device memory plus output buffers that grow
  // to the largest block, so steady-state blocks allocate nothing. Shared by copies of the binding;
  // applying one binding (or its copies) from two threads at once on the GPU is not supported. Do
  // not change the tables above after the first apply.
  mutable std::shared_ptr<PreparationDeviceState> device_state;
};

// Throws InputError naming the column when a needed column is missing or has changed type.
BoundPreparation bind_preparation(const FittedPreparation& fitted,
                                  const std::vector<ColumnInfo>& input_columns);

// A block of prepared rows, column-major: dense[f * rows + r]; slot[g * rows + r] is the active
// slot (within group g) of row r and value[g * rows + r] its value. label[r] is the label column
// (NaN missing), empty when there is none.
struct PreparedBlock {
  std::int64_t rows = 0;
  std::vector<float> dense;
  std::vector<std::int32_t> slot;
  std::vector<float> value;
  std::vector<float> label;
};

// Applies the fused transform to a host block of input columns (TableReader::read_block layout):
// one pass over the rows, all cores on the CPU, one fused kernel on the GPU (block copied to the
// device and back). `out` is resized (not cleared: vectors already the right size are overwritten
// in place). Throws Error when the block has fewer columns than the binding needs.
void apply_preparation(const DeviceContext& ctx, const BoundPreparation& bound,
                       const ColumnBlockView& input, PreparedBlock& out);

// The CPU transform, a tile of rows at a time, for callers that run their own threads over row
// tiles and use each prepared tile while it is still in cache (batch scoring: prepare a few
// thousand rows, score them, next tile), instead of one pass of the whole block through memory and
// a second one to read it back. Same formulas and results as apply_preparation on the CPU.
// Holds a pointer to `bound`, which must outlive it. prepare() starts no threads and may be called
// from several threads at once, each with its own tile.
class TilePreparation {
 public:
  explicit TilePreparation(const BoundPreparation& bound);  // Error for a corrupt binding
  ~TilePreparation();
  TilePreparation(const TilePreparation&) = delete;
  TilePreparation& operator=(const TilePreparation&) = delete;

  // Error when `input` lacks a column the binding reads. Call it once per block before prepare(),
  // which does not check (it runs inside the caller's threads, where nothing may throw).
  void check(const ColumnBlockView& input) const;
  // Prepares rows [begin, end) of `input` (host memory; 0 <= begin <= end <= input.rows) into
  // `tile`, laid out as apply_preparation's output for a block of end - begin rows.
  void prepare(const ColumnBlockView& input, std::int64_t begin, std::int64_t end,
               PreparedBlock& tile) const;

 private:
  const BoundPreparation* bound_;
  std::unique_ptr<HostPrepareTables> tables_;
};

// The expanded feature matrix of a prepared block, column-major: out[k * rows + r] =
// expanded_feature(row r, feature k) for k < fitted.expanded_features(). For checking and small
// exports only (one-hot columns are mostly zeros): throws InputError above 2^31 elements. On the
// GPU it runs the same expanded_feature accessor the training kernels use.
void materialize_expanded(const DeviceContext& ctx, const FittedPreparation& fitted,
                          const PreparedBlock& block, std::vector<float>& out);

}  // namespace lathe
