#include "io/synth.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <numbers>
#include <set>
#include <span>
#include <utility>

#include "io/columnar_writer.h"
#include "io/matrix_writer.h"
#include "io/temporary_file.h"
#include "runtime/error.h"

namespace lathe {

const char* synth_task_name(SynthTask task) {
  switch (task) {
    case SynthTask::regression:
      return "regression";
    case SynthTask::binary:
      return "binary";
    case SynthTask::multiclass:
      return "multiclass";
  }
  return "unknown";
}

namespace {

constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

// The SplitMix64 output function: a bijective 64-bit mixer.
constexpr std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A SplitMix64 sequence with the draws the generator needs.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t state) : state_(state) {}
  std::uint64_t next() {
    state_ += kGolden;
    return mix64(state_);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform_open_at_zero() {                                             // (0, 1]
    return static_cast<double>((next() >> 11) + 1) * 0x1.0p-53;
  }
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  double sign() { return (next() >> 63) ? 1.0 : -1.0; }
  // Box-Muller, keeping the second value of each pair for the next call.
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double radius = std::sqrt(-2.0 * std::log(uniform_open_at_zero()));
    const double angle = 2.0 * std::numbers::pi * uniform();
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }

 private:
  std::uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// What a generator is for. Separate streams keep, e.g., the missing-value mask independent of the
// feature values, and a change to one purpose from moving the others.
enum class Purpose : std::uint64_t {
  design = 1,
  values = 2,
  missing = 3,
  duplicate = 4,
  label = 5
};

// The generator of one (seed, purpose, row): a pure function of the three, so rows can be made in
// any order, by any thread, in blocks of any size.
SplitMix64 row_stream(std::uint64_t seed, Purpose purpose, std::uint64_t row) {
  const std::uint64_t key = mix64(seed ^ mix64(static_cast<std::uint64_t>(purpose) * kGolden));
  return SplitMix64(mix64(key + row * kGolden));
}

enum class Distribution { normal, uniform, exponential };

Distribution distribution_of(const std::string& name) {
  if (name == "uniform") return Distribution::uniform;
  if (name == "exponential") return Distribution::exponential;
  return Distribution::normal;
}

// A standardized draw (mean 0, variance 1).
double draw_standardized(SplitMix64& rng, Distribution distribution) {
  switch (distribution) {
    case Distribution::uniform:
      return std::numbers::sqrt3 * (2.0 * rng.uniform() - 1.0);
    case Distribution::exponential:
      return -std::log(rng.uniform_open_at_zero()) - 1.0;
    case Distribution::normal:
      break;
  }
  return rng.normal();
}

// "a".."z", "aa", "ab", ...: labels that cannot be mistaken for codes.
std::string level_suffix(int code) {
  std::string out;
  for (int k = code + 1; k > 0; k = (k - 1) / 26) out.insert(out.begin(), char('a' + (k - 1) % 26));
  return out;
}

// Spreads of the planted signal: regression targets have unit signal and half-unit noise (an R^2 of
// 0.8 at best); binary logits and multiclass scores are wide enough for a learnable problem that a
// model cannot fit perfectly.
constexpr double kRegressionSignalSd = 1.0;
constexpr double kRegressionNoiseSd = 0.5;
constexpr double kBinaryLogitSd = 3.0;
constexpr double kMulticlassScoreSd = 2.0;
constexpr int kMaxClasses = 1000;
// One dataset per column, and per-column state sized before the first row is written: beyond this
// a typo (--features 100000000) would take all memory instead of failing.
constexpr std::int64_t kMaxColumns = 100000;
constexpr std::int64_t kMaxChunkRows = std::int64_t{1} << 24;
constexpr int kMaxInteractions = 32;

// ---- JSON, written by hand: the truth holds only names, numbers and arrays of them. ----

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
      out += buffer;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// The shortest text that reads back as the same double ("nan" and "inf" included).
std::string number_text(double v) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, v);
  return std::string(buffer, result.ptr);
}

std::string json_number(double v) { return std::isfinite(v) ? number_text(v) : "null"; }

template <typename T, typename Format>
std::string json_array(const std::vector<T>& items, Format format) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += format(items[i]);
  }
  return out + "]";
}

std::string json_object(const std::vector<std::pair<std::string, std::string>>& members) {
  std::string out = "{";
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (i) out += ',';
    out += json_string(members[i].first);
    out += ':';
    out += members[i].second;
  }
  return out + "}";
}

}  // namespace

void validate_synth_options(const SynthOptions& o) {
  // Every check is about an option: a usage error (UsageError, an InputError).
  auto fail = [](const std::string& message) { throw UsageError(message); };
  if (o.rows < 1) fail("--rows must be at least 1 (got " + std::to_string(o.rows) + ")");
  if (o.features < 0)
    fail("--features cannot be negative (got " + std::to_string(o.features) + ")");
  if (o.categorical < 0) {
    fail("--categorical cannot be negative (got " + std::to_string(o.categorical) + ")");
  }
  if (o.features + o.categorical < 1) {
    fail("--features: a table needs at least one feature (--features plus --categorical is 0)");
  }
  if (static_cast<std::int64_t>(o.features) + o.categorical > kMaxColumns) {
    fail("--features plus --categorical must be at most " + std::to_string(kMaxColumns) + " (got " +
         std::to_string(static_cast<std::int64_t>(o.features) + o.categorical) + ")");
  }
  if (o.classes < 2 || o.classes > kMaxClasses) {
    fail("--classes must be from 2 to " + std::to_string(kMaxClasses) + " (got " +
         std::to_string(o.classes) + ")");
  }
  if (!(o.missing_rate >= 0 && o.missing_rate < 1)) {
    fail("--missing-rate must be in [0, 1) (got " + number_text(o.missing_rate) + ")");
  }
  if (!(o.duplicate_rate >= 0 && o.duplicate_rate < 1)) {
    fail("--duplicate-rate must be in [0, 1) (got " + number_text(o.duplicate_rate) + ")");
  }
  if (o.layout != Layout::columnar && o.layout != Layout::matrix) {
    fail(std::string("--layout must be columnar or matrix (got ") + layout_name(o.layout) + ")");
  }
  if (o.chunk_rows < 1 || o.chunk_rows > kMaxChunkRows) {
    fail("--chunk-rows must be from 1 to " + std::to_string(kMaxChunkRows) + " (got " +
         std::to_string(o.chunk_rows) + ")");
  }
  if (o.deflate_level < 0 || o.deflate_level > 9) {
    fail("--compression must be from 0 to 9 (got " + std::to_string(o.deflate_level) + ")");
  }
}

SynthTruth make_synth_truth(const SynthOptions& options) {
  validate_synth_options(options);
  SynthTruth truth;
  truth.task = options.task;
  truth.seed = options.seed;
  SplitMix64 design = row_stream(options.seed, Purpose::design, 0);
  const int features = options.features;

  for (int j = 0; j < features; ++j) {
    SynthNumericFeature f;
    f.name = "f" + std::to_string(j);
    const double u = design.uniform();
    f.distribution = u < 0.5 ? "normal" : u < 0.75 ? "uniform" : "exponential";
    // Scales cycle through 1e-3 .. 1e6 so neighbouring columns differ by orders of magnitude;
    // every fifth column (from f2) sits a million standard deviations from zero, like a timestamp.
    const int exponent = (j * 7) % 10 - 3;
    f.scale = std::pow(10.0, exponent) * design.uniform(1.0, 5.0);
    const double offset_draw = design.uniform();
    if (j % 5 == 2) {
      f.offset = f.scale * 1e6 * (1.0 + offset_draw);
    } else if (j % 5 != 0) {
      f.offset = f.scale * (20.0 * offset_draw - 10.0);
    }
    truth.numeric.push_back(std::move(f));
  }

  // About half of the numeric features are informative, chosen by a partial Fisher-Yates shuffle.
  std::vector<int> order(features);
  for (int j = 0; j < features; ++j) order[j] = j;
  const int informative = features == 0 ? 0 : std::max(1, (features + 1) / 2);
  for (int i = 0; i < informative; ++i) {
    const auto pick =
        i + static_cast<int>(design.next() % static_cast<std::uint64_t>(features - i));
    std::swap(order[i], order[pick]);
    truth.numeric[order[i]].informative = true;
  }

  // Planted pairs. The first joins two noise features when there are two, so that its signal is
  // visible only through the cross, never through either feature alone.
  std::vector<std::pair<int, int>> pairs;
  if (features >= 2) {
    const int wanted = std::clamp(features / 4, 1, kMaxInteractions);
    std::set<std::pair<int, int>> seen;
    std::vector<int> noise(order.begin() + informative, order.end());
    std::sort(noise.begin(), noise.end());
    if (noise.size() >= 2) {
      const auto n = static_cast<std::uint64_t>(noise.size());
      const auto a = static_cast<std::size_t>(design.next() % n);
      auto b = static_cast<std::size_t>(design.next() % (n - 1));
      if (b >= a) ++b;
      pairs.emplace_back(std::min(noise[a], noise[b]), std::max(noise[a], noise[b]));
      seen.insert(pairs.back());
    }
    while (static_cast<int>(pairs.size()) < wanted) {
      const auto n = static_cast<std::uint64_t>(features);
      const int a = static_cast<int>(design.next() % n);
      const int b = static_cast<int>(design.next() % n);
      if (a == b || !seen.insert({std::min(a, b), std::max(a, b)}).second) continue;
      pairs.emplace_back(std::min(a, b), std::max(a, b));
    }
  }

  for (int c = 0; c < options.categorical; ++c) {
    SynthCategoricalFeature f;
    f.name = "c" + std::to_string(c);
    // From 2 to 40 levels, mostly few; Zipf-like frequencies, code 0 the most common.
    const double u = design.uniform();
    const int levels = 2 + static_cast<int>(u * u * 39.0);
    double total = 0;
    for (int k = 0; k < levels; ++k) {
      f.levels.push_back(f.name + "_" + level_suffix(k));
      f.frequencies.push_back(1.0 / std::pow(k + 1.0, 0.9));
      total += f.frequencies.back();
    }
    for (double& p : f.frequencies) p /= total;
    truth.categorical.push_back(std::move(f));
  }

  const int score_count = options.task == SynthTask::multiclass ? options.classes : 1;
  const double signal_sd = options.task == SynthTask::regression ? kRegressionSignalSd
                           : options.task == SynthTask::binary   ? kBinaryLogitSd
                                                                 : kMulticlassScoreSd;
  for (int s = 0; s < score_count; ++s) {
    SynthScore score;
    // Features are standardized and independent, and every term has mean 0 and is uncorrelated with
    // the others, so the score's variance is the sum of the squared weights (and effect spreads).
    double variance = 0;
    score.linear.assign(features, 0.0);
    for (int j = 0; j < features; ++j) {
      if (!truth.numeric[j].informative) continue;
      score.linear[j] = design.sign() * design.uniform(0.5, 2.0);
      variance += score.linear[j] * score.linear[j];
    }
    for (const auto& [a, b] : pairs) {
      score.interactions.push_back({a, b, design.sign() * design.uniform(0.5, 1.5)});
      variance += score.interactions.back().weight * score.interactions.back().weight;
    }
    for (const auto& f : truth.categorical) {
      std::vector<double> effects(f.levels.size());
      double mean = 0, spread = 0;
      for (std::size_t k = 0; k < effects.size(); ++k) {
        effects[k] = design.normal();
        mean += f.frequencies[k] * effects[k];
      }
      for (std::size_t k = 0; k < effects.size(); ++k) {
        effects[k] -= mean;
        spread += f.frequencies[k] * effects[k] * effects[k];
      }
      const double weight = design.uniform(0.5, 1.5);
      const double unit = spread > 0 ? weight / std::sqrt(spread) : 0.0;
      for (double& e : effects) e *= unit;
      if (spread > 0) variance += weight * weight;
      score.categorical_effects.push_back(std::move(effects));
    }
    const double rescale = variance > 0 ? signal_sd / std::sqrt(variance) : 0.0;
    for (double& w : score.linear) w *= rescale;
    for (auto& pair : score.interactions) pair.weight *= rescale;
    for (auto& effects : score.categorical_effects) {
      for (double& e : effects) e *= rescale;
    }
    truth.scores.push_back(std::move(score));
  }

  if (options.task == SynthTask::regression) {
    truth.noise_sd = kRegressionNoiseSd;
    truth.label_name = "target";
  } else {
    truth.label_name = "label";
    if (options.task == SynthTask::binary) {
      truth.label_categories = {"no", "yes"};
    } else {
      for (int k = 0; k < options.classes; ++k)
        truth.label_categories.push_back("class_" + std::to_string(k));
    }
  }
  return truth;
}

std::string synth_truth_json(const SynthTruth& truth, const SynthOptions& options) {
  const auto numbers = [](const std::vector<double>& v) { return json_array(v, json_number); };
  const auto strings = [](const std::vector<std::string>& v) { return json_array(v, json_string); };
  const std::string numeric = json_array(truth.numeric, [](const SynthNumericFeature& f) {
    return json_object({{"name", json_string(f.name)},
                        {"distribution", json_string(f.distribution)},
                        {"offset", json_number(f.offset)},
                        {"scale", json_number(f.scale)},
                        {"informative", f.informative ? "true" : "false"}});
  });
  const std::string categorical =
      json_array(truth.categorical, [&](const SynthCategoricalFeature& f) {
        return json_object({{"name", json_string(f.name)},
                            {"levels", strings(f.levels)},
                            {"frequencies", numbers(f.frequencies)}});
      });
  const std::string scores = json_array(truth.scores, [&](const SynthScore& s) {
    const std::string pairs = json_array(s.interactions, [&](const SynthInteraction& p) {
      return json_object({{"a", json_string(truth.numeric[p.a].name)},
                          {"b", json_string(truth.numeric[p.b].name)},
                          {"weight", json_number(p.weight)}});
    });
    return json_object({{"bias", json_number(s.bias)},
                        {"linear", numbers(s.linear)},
                        {"interactions", pairs},
                        {"categorical_effects", json_array(s.categorical_effects, numbers)}});
  });
  const char* link = truth.task == SynthTask::regression ? "identity"
                     : truth.task == SynthTask::binary   ? "sigmoid"
                                                         : "softmax";
  return json_object({
      {"generator", json_string("lathe synth")},
      {"generator_version", "1"},
      {"task", json_string(synth_task_name(truth.task))},
      {"seed", std::to_string(truth.seed)},
      {"rows", std::to_string(options.rows)},
      {"features", std::to_string(options.features)},
      {"categorical", std::to_string(options.categorical)},
      {"classes", std::to_string(truth.task == SynthTask::multiclass ? options.classes : 0)},
      {"missing_rate", json_number(options.missing_rate)},
      {"duplicate_rate", json_number(options.duplicate_rate)},
      {"duplicate_window", std::to_string(kDuplicateWindow)},
      {"layout", json_string(layout_name(options.layout))},
      {"standardized",
       json_string("z = (x - offset) / scale, computed in double from the stored float32 x")},
      {"score", json_string("bias + sum(linear[j] * z_j) + sum(weight * z_a * z_b) + "
                            "sum(categorical_effects[c][code_c])")},
      {"link", json_string(link)},
      {"noise_sd", json_number(truth.noise_sd)},
      {"label", json_object({{"name", json_string(truth.label_name)},
                             {"categories", strings(truth.label_categories)}})},
      {"numeric", numeric},
      {"categorical_features", categorical},
      {"scores", scores},
  });
}

namespace {

// One block of rows, column-major: numeric[j * capacity + r], codes[c * capacity + r], label[r]
// (the target, or the class code as a float).
struct RowBlock {
  std::int64_t capacity = 0;
  std::vector<float> numeric;
  std::vector<std::int32_t> codes;
  std::vector<float> label;
  std::vector<std::int64_t> duplicate_of;  // the earlier row copied, or -1 for a fresh row
};

// The last kDuplicateWindow rows, row-major, slot = row % kDuplicateWindow.
struct RecentRows {
  std::vector<float> numeric;
  std::vector<std::int32_t> codes;
  std::vector<float> label;
};

class SynthGenerator {
 public:
  SynthGenerator(const SynthOptions& options, const SynthTruth& truth)
      : options_(options),
        truth_(truth),
        features_(options.features),
        categorical_(options.categorical) {
    for (int j = 0; j < features_; ++j) {
      distributions_.push_back(distribution_of(truth.numeric[j].distribution));
      if (truth.numeric[j].informative) informative_.push_back(j);
    }
    for (const auto& f : truth.categorical) {
      std::vector<double> cumulative;
      double total = 0;
      for (double p : f.frequencies) cumulative.push_back(total += p);
      cumulative.back() = 1.0;  // rounding must not leave a uniform draw past the last level
      cumulative_.push_back(std::move(cumulative));
    }
    recent_.numeric.resize(static_cast<std::size_t>(kDuplicateWindow * features_));
    recent_.codes.resize(static_cast<std::size_t>(kDuplicateWindow * categorical_));
    recent_.label.resize(static_cast<std::size_t>(kDuplicateWindow));
  }

  void reserve(RowBlock& block, std::int64_t capacity) const {
    block.capacity = capacity;
    block.numeric.resize(static_cast<std::size_t>(capacity * features_));
    block.codes.resize(static_cast<std::size_t>(capacity * categorical_));
    block.label.resize(static_cast<std::size_t>(capacity));
    block.duplicate_of.resize(static_cast<std::size_t>(capacity));
  }

  // Fills rows [first_row, first_row + count) of the table into `block`; returns the duplicates.
  std::int64_t generate(RowBlock& block, std::int64_t first_row, std::int64_t count) {
    // Fresh rows are independent of each other: generate them in parallel.
#pragma omp parallel
    {
      std::vector<double> standardized(static_cast<std::size_t>(features_));
      std::vector<double> scores(truth_.scores.size());
#pragma omp for schedule(static)
      for (std::int64_t r = 0; r < count; ++r) {
        const std::int64_t row = first_row + r;
        block.duplicate_of[r] = duplicate_source(row);
        if (block.duplicate_of[r] < 0) fresh_row(block, r, row, standardized, scores);
      }
    }
    // Duplicates copy rows stored before them, possibly earlier in this block: in row order.
    std::int64_t duplicates = 0;
    for (std::int64_t r = 0; r < count; ++r) {
      const std::int64_t source = block.duplicate_of[r];
      if (source < 0) continue;
      ++duplicates;
      if (source >= first_row) {
        copy_within_block(block, source - first_row, r);
      } else {
        copy_from_recent(block, source % kDuplicateWindow, r);
      }
    }
    remember_recent(block, first_row, count);
    return duplicates;
  }

  std::int64_t count_missing(const RowBlock& block, std::int64_t count) const {
    std::int64_t missing = 0;
    for (int j = 0; j < features_; ++j) {
      const float* column = block.numeric.data() + j * block.capacity;
      for (std::int64_t r = 0; r < count; ++r) missing += std::isnan(column[r]) ? 1 : 0;
    }
    for (int c = 0; c < categorical_; ++c) {
      const std::int32_t* column = block.codes.data() + c * block.capacity;
      for (std::int64_t r = 0; r < count; ++r) missing += column[r] < 0 ? 1 : 0;
    }
    return missing;
  }

 private:
  std::int64_t duplicate_source(std::int64_t row) const {
    if (row == 0 || options_.duplicate_rate <= 0) return -1;
    SplitMix64 rng = row_stream(options_.seed, Purpose::duplicate, static_cast<std::uint64_t>(row));
    if (rng.uniform() >= options_.duplicate_rate) return -1;
    const auto window = static_cast<std::uint64_t>(std::min(row, kDuplicateWindow));
    return row - 1 - static_cast<std::int64_t>(rng.next() % window);
  }

  void fresh_row(RowBlock& block, std::int64_t r, std::int64_t row, std::vector<double>& z,
                 std::vector<double>& scores) const {
    const std::int64_t n = block.capacity;
    SplitMix64 values = row_stream(options_.seed, Purpose::values, static_cast<std::uint64_t>(row));
    for (int j = 0; j < features_; ++j) {
      const SynthNumericFeature& f = truth_.numeric[j];
      const float x =
          static_cast<float>(f.offset + f.scale * draw_standardized(values, distributions_[j]));
      block.numeric[j * n + r] = x;
      // The truth is about the stored value: standardize the float32 x, not the exact draw.
      z[j] = (static_cast<double>(x) - f.offset) / f.scale;
    }
    for (int c = 0; c < categorical_; ++c) {
      const auto& cumulative = cumulative_[c];
      const double u = values.uniform();
      block.codes[c * n + r] = static_cast<std::int32_t>(
          std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin());
    }
    for (std::size_t s = 0; s < truth_.scores.size(); ++s) {
      const SynthScore& score = truth_.scores[s];
      double total = score.bias;
      for (int j : informative_) total += score.linear[j] * z[j];
      for (const auto& pair : score.interactions) total += pair.weight * z[pair.a] * z[pair.b];
      for (int c = 0; c < categorical_; ++c)
        total += score.categorical_effects[c][block.codes[c * n + r]];
      scores[s] = total;
    }
    block.label[r] = draw_label(scores, row);

    if (options_.missing_rate > 0) {
      SplitMix64 missing =
          row_stream(options_.seed, Purpose::missing, static_cast<std::uint64_t>(row));
      for (int j = 0; j < features_; ++j) {
        if (missing.uniform() < options_.missing_rate) {
          block.numeric[j * n + r] = std::numeric_limits<float>::quiet_NaN();
        }
      }
      for (int c = 0; c < categorical_; ++c) {
        if (missing.uniform() < options_.missing_rate) block.codes[c * n + r] = -1;
      }
    }
  }

  float draw_label(std::vector<double>& scores, std::int64_t row) const {
    SplitMix64 rng = row_stream(options_.seed, Purpose::label, static_cast<std::uint64_t>(row));
    switch (options_.task) {
      case SynthTask::regression:
        return static_cast<float>(scores[0] + truth_.noise_sd * rng.normal());
      case SynthTask::binary: {
        const double p_yes = 1.0 / (1.0 + std::exp(-scores[0]));
        return rng.uniform() < p_yes ? 1.0f : 0.0f;
      }
      case SynthTask::multiclass: {
        const double top = *std::max_element(scores.begin(), scores.end());
        double total = 0;
        for (double& s : scores) total += (s = std::exp(s - top));
        double u = rng.uniform() * total;
        for (std::size_t k = 0; k + 1 < scores.size(); ++k) {
          if ((u -= scores[k]) < 0) return static_cast<float>(k);
        }
        return static_cast<float>(scores.size() - 1);
      }
    }
    return 0;
  }

  void copy_within_block(RowBlock& block, std::int64_t from, std::int64_t to) const {
    const std::int64_t n = block.capacity;
    for (int j = 0; j < features_; ++j) block.numeric[j * n + to] = block.numeric[j * n + from];
    for (int c = 0; c < categorical_; ++c) block.codes[c * n + to] = block.codes[c * n + from];
    block.label[to] = block.label[from];
  }

  void copy_from_recent(RowBlock& block, std::int64_t slot, std::int64_t to) const {
    const std::int64_t n = block.capacity;
    for (int j = 0; j < features_; ++j)
      block.numeric[j * n + to] = recent_.numeric[slot * features_ + j];
    for (int c = 0; c < categorical_; ++c)
      block.codes[c * n + to] = recent_.codes[slot * categorical_ + c];
    block.label[to] = recent_.label[slot];
  }

  void remember_recent(const RowBlock& block, std::int64_t first_row, std::int64_t count) {
    const std::int64_t n = block.capacity;
    for (std::int64_t r = std::max<std::int64_t>(0, count - kDuplicateWindow); r < count; ++r) {
      const std::int64_t slot = (first_row + r) % kDuplicateWindow;
      for (int j = 0; j < features_; ++j)
        recent_.numeric[slot * features_ + j] = block.numeric[j * n + r];
      for (int c = 0; c < categorical_; ++c)
        recent_.codes[slot * categorical_ + c] = block.codes[c * n + r];
      recent_.label[slot] = block.label[r];
    }
  }

  const SynthOptions& options_;
  const SynthTruth& truth_;
  const int features_;
  const int categorical_;
  std::vector<Distribution> distributions_;
  std::vector<int> informative_;
  std::vector<std::vector<double>> cumulative_;  // per categorical feature, by code
  RecentRows recent_;
};

// Rows per block: whole chunks (each chunk is compressed once, never read back), about 64 Ki rows,
// within a memory budget for wide tables (where a block may end inside a chunk).
std::int64_t block_rows_for(std::int64_t chunk_rows, std::int64_t bytes_per_row) {
  constexpr std::int64_t kTargetRows = 65536;
  constexpr std::int64_t kBudgetBytes = std::int64_t{256} << 20;
  const std::int64_t budget_rows = std::max<std::int64_t>(1, kBudgetBytes / bytes_per_row);
  const std::int64_t aligned = chunk_rows * std::max<std::int64_t>(1, kTargetRows / chunk_rows);
  return aligned <= budget_rows ? aligned : budget_rows;
}

// "lathe synth: 12000000 of 100000000 rows (12%)", on stderr at most once a second.
class ProgressLine {
 public:
  ProgressLine(bool enabled, std::int64_t total) : enabled_(enabled), total_(total) {}
  void update(std::int64_t done) {
    if (!enabled_ || done >= total_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::seconds(1)) return;
    last_ = now;
    std::cerr << "lathe synth: " << done << " of " << total_ << " rows ("
              << static_cast<int>(100.0 * done / total_) << "%)\n";
  }

 private:
  bool enabled_;
  std::int64_t total_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace

SynthReport write_synthetic(const std::filesystem::path& out, const SynthOptions& options) {
  validate_synth_options(options);
  SynthReport report;
  report.truth = make_synth_truth(options);
  const SynthTruth& truth = report.truth;
  const std::string truth_json = synth_truth_json(truth, options);
  const int features = options.features;
  const int categorical = options.categorical;
  const int width = features + categorical;
  const bool classification = options.task != SynthTask::regression;
  report.columns = width + 1;

  std::vector<std::string> names;
  for (const auto& f : truth.numeric) names.push_back(f.name);
  for (const auto& f : truth.categorical) names.push_back(f.name);

  TemporaryOutput output(out);
  std::unique_ptr<ColumnarWriter> columnar;
  std::unique_ptr<MatrixWriter> matrix;
  // No chunk longer than the table: HDF5 stores a chunk whole, so `--rows 100 --compression 0` in
  // the default chunks of 65536 rows took 655 times its values' bytes (and every read of it reads
  // the whole chunk); compressed, the padding shrinks but a reader still inflates all of it.
  std::int64_t chunk_rows = std::min(options.chunk_rows, options.rows);
  if (options.layout == Layout::columnar) {
    std::vector<ColumnSpec> specs;
    for (int j = 0; j < features; ++j) specs.push_back({names[j], StoredType::float32});
    for (int c = 0; c < categorical; ++c)
      specs.push_back({names[features + c], StoredType::categorical_codes});
    specs.push_back(
        {truth.label_name, classification ? StoredType::categorical_codes : StoredType::float32});
    columnar = std::make_unique<ColumnarWriter>(
        output.path(), std::move(specs),
        ColumnarWriteOptions{chunk_rows, options.deflate_level, options.rows});
    for (int c = 0; c < categorical; ++c)
      columnar->set_categories(features + c, truth.categorical[c].levels);
    if (classification) columnar->set_categories(width, truth.label_categories);
    columnar->set_attribute("lathe_synth_truth", truth_json);
  } else {
    MatrixWriteOptions matrix_options;
    matrix_options.chunk_rows = chunk_rows;
    matrix_options.deflate_level = options.deflate_level;
    matrix = std::make_unique<MatrixWriter>(output.path(), names, matrix_options);
    if (classification) matrix->set_label_categories(truth.label_categories);
    matrix->set_attribute("lathe_synth_truth", truth_json);
    chunk_rows = matrix->chunk_rows();
  }

  // Column-major block, plus (matrix) its row-major copy and (classification) the label as codes.
  const std::int64_t bytes_per_row =
      4 * (width + 1) + 8 + (matrix ? 4 * width : 0) + (classification ? 4 : 0);
  const std::int64_t block_rows = std::min(options.rows, block_rows_for(chunk_rows, bytes_per_row));
  SynthGenerator generator(options, truth);
  RowBlock block;
  generator.reserve(block, block_rows);
  std::vector<float> row_major(matrix ? static_cast<std::size_t>(block_rows * width) : 0);
  std::vector<std::int32_t> label_codes(classification ? static_cast<std::size_t>(block_rows) : 0);
  ProgressLine progress(options.progress, options.rows);

  for (std::int64_t first = 0; first < options.rows; first += block_rows) {
    const std::int64_t count = std::min(block_rows, options.rows - first);
    report.duplicate_rows += generator.generate(block, first, count);
    report.missing_values += generator.count_missing(block, count);
    const auto n = static_cast<std::size_t>(count);
    if (columnar) {
      for (int j = 0; j < features; ++j) {
        columnar->append_numeric(j,
                                 std::span<const float>(block.numeric.data() + j * block_rows, n));
      }
      for (int c = 0; c < categorical; ++c) {
        columnar->append_codes(
            features + c, std::span<const std::int32_t>(block.codes.data() + c * block_rows, n));
      }
      if (classification) {
        for (std::size_t r = 0; r < n; ++r)
          label_codes[r] = static_cast<std::int32_t>(block.label[r]);
        columnar->append_codes(width, std::span<const std::int32_t>(label_codes.data(), n));
      } else {
        columnar->append_numeric(width, std::span<const float>(block.label.data(), n));
      }
    } else {
#pragma omp parallel for schedule(static)
      for (std::int64_t r = 0; r < count; ++r) {
        float* row = row_major.data() + r * width;
        for (int j = 0; j < features; ++j) row[j] = block.numeric[j * block_rows + r];
        for (int c = 0; c < categorical; ++c) {
          const std::int32_t code = block.codes[c * block_rows + r];
          row[features + c] =
              code < 0 ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(code);
        }
      }
      matrix->append(std::span<const float>(row_major.data(), n * width),
                     std::span<const float>(block.label.data(), n));
    }
    report.rows += count;
    progress.update(report.rows);
  }

  if (columnar) columnar->close();
  if (matrix) matrix->close();
  output.commit();
  return report;
}

}  // namespace lathe
