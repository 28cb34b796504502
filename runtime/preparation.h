// Data preparation: the options a user picks, the parameters fitted from a DataProfile, and the
// fused transform (impute + clip + scale + categorical slots + crosses) applied to blocks of rows on
// the CPU or the GPU with the formulas of kernels/prepare_formulas.h. Training and scoring apply the
// same FittedPreparation, so a model sees at scoring time exactly the transformation it was trained
// on.
//
// A prepared row has two parts:
//   dense   float features, in this order: prepared numeric columns, missing indicators,
//           numeric x numeric crosses (products of prepared values);
//   sparse  one active slot per group, with a value: each categorical column (one-hot: value 1),
//           each categorical x categorical cross (hashed bucket: value 1), each numeric x
//           categorical cross (a per-category slope: value = the prepared numeric value).
// The expanded feature space is dense features first, then each sparse group's slots in turn
// (ExpandedLayout); a one-hot is an index into a weight table, never a dense matrix.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/table_reader.h"
#include "kernels/prepare_formulas.h"
#include "runtime/column_block.h"
#include "runtime/device_context.h"
#include "runtime/profile.h"

namespace lathe {

enum class ImputeKind { mean, median, constant };
enum class ScaleKind { standard, minmax, robust, none };
enum class ClipKind { none, quantile, stddev };

struct ColumnPreparation {
  ImputeKind impute = ImputeKind::mean;
  double impute_constant = 0.0;
  ScaleKind scale = ScaleKind::standard;
  ClipKind clip = ClipKind::none;
  double clip_lo_quantile = 0.01;  // ClipKind::quantile
  double clip_hi_quantile = 0.99;
  double clip_k = 3.0;  // ClipKind::stddev: mean +- k standard deviations
};

struct CrossSpec {
  std::string a, b;  // column names; the cross is named "a*b"
};

struct PreparationOptions {
  std::string label;  // passed through untouched, never a feature ("" = no label)
  ColumnPreparation defaults;
  std::map<std::string, ColumnPreparation> per_column;  // overrides by column name
  bool missing_indicators = false;  // one 0/1 feature per numeric column that has missing values
  bool cross_all = false;           // every pair of numeric features
  std::vector<CrossSpec> crosses;
  std::uint32_t hash_buckets = 1u << 16;  // buckets of categorical x categorical crosses
  std::int32_t max_categories = 10000;    // a categorical column with more labels is hashed...
  std::uint32_t category_buckets = 1u << 14;  // ...into this many buckets
};

// The fitted transformation of one categorical column. Slots: 0..K-1 for the vocabulary (or the
// hash buckets when hashed), K for missing, K+1 for a label never seen in training.
struct CategoricalEncoding {
  std::string name;
  std::vector<std::string> vocabulary;  // training labels, slot i (empty when hashed)
  bool hashed = false;
  std::uint32_t buckets = 0;  // when hashed
  std::int32_t known_slots() const { return hashed ? static_cast<std::int32_t>(buckets) : static_cast<std::int32_t>(vocabulary.size()); }
  std::int32_t missing_slot() const { return known_slots(); }
  std::int32_t unknown_slot() const { return known_slots() + 1; }
  std::int32_t slots() const { return known_slots() + 2; }
  // The slot of a label: its vocabulary index, its bucket when hashed, else unknown_slot().
  std::int32_t slot_of(const std::string& label) const;
  // 64-bit hash of the label of each slot (for categorical x categorical crosses).
  std::vector<std::uint64_t> slot_label_hashes() const;
};

struct NumericEncoding {
  std::string name;
  NumericTransform transform;
  bool has_missing = false;  // in the profile: gets an indicator when missing_indicators
};

enum class SparseKind { one_hot, categorical_cross, slope };

struct SparseGroup {
  SparseKind kind = SparseKind::one_hot;
  std::string name;         // "city", "city*device", "age*city"
  std::int32_t a = 0;       // one_hot: categorical index; categorical_cross: categorical index;
                            // slope: numeric index
  std::int32_t b = 0;       // categorical_cross, slope: categorical index
  std::uint32_t slots = 0;  // width of the group in the expanded space
};

struct FittedPreparation {
  std::string label;
  std::vector<NumericEncoding> numeric;          // dense features 0..numeric.size()-1
  std::vector<std::int32_t> indicators;          // numeric index of each missing indicator
  std::vector<std::pair<std::int32_t, std::int32_t>> numeric_crosses;  // numeric indices
  std::vector<CategoricalEncoding> categorical;  // categorical input columns
  std::vector<SparseGroup> sparse;               // in expanded order
  std::uint32_t hash_buckets = 0;

  std::int64_t dense_features() const;
  std::int64_t expanded_features() const;  // dense + all sparse slots
  std::vector<std::string> dense_names() const;  // "age", "age_missing", "age*income", ...
};

// Fits the parameters (fill values, clip bounds, centers and scales, vocabularies) from a profile.
// Throws InputError naming the column for: an option naming an unknown column, a cross naming an
// unknown column or the label, a numeric option on a categorical column. A constant column scales
// by 1 (never NaN or Inf); an all-missing column imputes the constant (0 by default) and says so in
// `notes`.
FittedPreparation fit_preparation(const DataProfile& profile, const PreparationOptions& options,
                                  std::vector<std::string>* notes = nullptr);

// A FittedPreparation matched to one input file's columns: by name, in any order; categorical codes
// remapped by label. Extra columns are ignored.
struct BoundPreparation {
  const FittedPreparation* fitted = nullptr;
  std::vector<std::int32_t> numeric_input;      // input column of each numeric encoding
  std::vector<std::int32_t> categorical_input;  // input column of each categorical encoding
  std::vector<std::vector<std::int32_t>> remap;  // per categorical: file code -> slot
  std::vector<std::vector<std::uint64_t>> slot_hashes;  // per categorical: slot -> label hash
  std::int32_t label_input = -1;
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

// Applies the fused transform to a host block of input columns (TableReader::read_block layout).
void apply_preparation(const DeviceContext& ctx, const BoundPreparation& bound,
                       const ColumnBlockView& input, PreparedBlock& out);

}  // namespace lathe
