// `lathe synth`: synthetic tables with known ground truth, for tests and benchmarks.
//
// Each numeric feature j is drawn as a standardized value z (mean 0, variance 1: normal, uniform or
// shifted exponential) and stored as the float32 x = offset_j + scale_j * z, with scales from 1e-3
// to 1e6 and some offsets a million times the scale (like timestamps). Each categorical feature
// draws a level with Zipf-like frequencies. A row's score is
//     bias + sum_j linear_j * z_j + sum_(a,b) weight_ab * z_a * z_b + sum_c effect_c[level_c]
// where z is recomputed from the stored float32 x, z = (x - offset) / scale in double, so the truth
// holds exactly for the values in the file. The label is drawn from the complete row; missing
// values (NaN, or code -1) then replace feature values, never labels. Duplicate rows copy an
// earlier stored row (missing values and label included) from the last `kDuplicateWindow` rows.
//
// Every value comes from a counter-based generator keyed by (seed, row, purpose), so the output is
// identical for the same options whatever the block size or the number of threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/table_reader.h"

namespace lathe {

enum class SynthTask { regression, binary, multiclass };
const char* synth_task_name(SynthTask task);

struct SynthOptions {
  SynthTask task = SynthTask::regression;
  std::int64_t rows = 1000;
  int features = 10;          // numeric features
  int categorical = 0;        // categorical features
  int classes = 3;            // multiclass only
  double missing_rate = 0;    // fraction of feature values replaced by missing
  double duplicate_rate = 0;  // fraction of rows that exactly repeat an earlier row
  std::uint64_t seed = 42;
  Layout layout = Layout::columnar;  // columnar or matrix
  std::int64_t chunk_rows = 65536;
  // Deflate level, 0 = none. Random floats barely compress: level 1 writes 1M x 24 columns in
  // 1.3 s against 1.6 s at level 4 (matrix: 1.9 s against 2.8 s) for files only 2% larger.
  int deflate_level = 1;
  bool progress = true;  // a progress line on stderr, at most once a second, for long runs
};

// Duplicates copy one of the last kDuplicateWindow rows, so memory stays constant.
inline constexpr std::int64_t kDuplicateWindow = 1024;

// The ground truth of a synthetic table, as planted.
struct SynthNumericFeature {
  std::string name;          // "f0", "f1", ...
  std::string distribution;  // of z: "normal", "uniform" or "exponential" (shifted to mean 0)
  double offset = 0;         // x = offset + scale * z
  double scale = 1;
  bool informative = false;  // has a linear weight in some score (it may also be in a pair)
};

struct SynthCategoricalFeature {
  std::string name;                 // "c0", "c1", ...
  std::vector<std::string> levels;  // label of code i: "c0_a", "c0_b", ..., "c0_z", "c0_aa", ...
  std::vector<double> frequencies;  // probability of code i
};

struct SynthInteraction {
  int a = 0, b = 0;  // numeric feature indices, a < b
  double weight = 0;
};

// One score function. Effects are centred (frequency-weighted mean 0) per categorical feature.
struct SynthScore {
  double bias = 0;
  std::vector<double> linear;                            // one per numeric feature; 0 = noise
  std::vector<SynthInteraction> interactions;            // planted pairs
  std::vector<std::vector<double>> categorical_effects;  // [categorical feature][code]
};

struct SynthTruth {
  SynthTask task = SynthTask::regression;
  std::uint64_t seed = 0;
  std::vector<SynthNumericFeature> numeric;
  std::vector<SynthCategoricalFeature> categorical;
  // regression: the target is scores[0] + noise_sd * N(0, 1).
  // binary: P(label = "yes") = sigmoid(scores[0]).
  // multiclass: P(label = class_k) = softmax(scores)[k], one score per class.
  std::vector<SynthScore> scores;
  double noise_sd = 0;                        // regression only
  std::string label_name;                     // "target" or "label"
  std::vector<std::string> label_categories;  // binary {"no","yes"}; multiclass class_0...; else {}
};

// The truth that `write_synthetic` plants for these options (a pure function of the options).
SynthTruth make_synth_truth(const SynthOptions& options);
// The truth and the options as JSON, as stored in the root attribute "lathe_synth_truth".
std::string synth_truth_json(const SynthTruth& truth, const SynthOptions& options);

struct SynthReport {
  std::int64_t rows = 0;
  std::int64_t columns = 0;  // stored columns, label included
  std::int64_t duplicate_rows = 0;
  std::int64_t missing_values = 0;  // feature cells stored as missing (duplicates included)
  SynthTruth truth;
};

// Checks the options; throws InputError naming the flag (e.g. "--missing-rate") of a bad value.
void validate_synth_options(const SynthOptions& options);

// Writes the table to `out` (temporary name, renamed when complete), streaming in constant memory.
// Columnar layout: f0..f{D-1} float32, c0..c{C-1} categorical codes, then the label ("target"
// float32, or "label" categorical). Matrix layout: X (rows x (D + C)) float32 with categorical
// codes as floats (NaN for missing) and y float32 (target, 0/1, or class code); see
// io/matrix_writer.h. Both carry the truth in the root attribute "lathe_synth_truth".
SynthReport write_synthetic(const std::filesystem::path& out, const SynthOptions& options);

}  // namespace lathe
