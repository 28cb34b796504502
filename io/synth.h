// `lathe synth`: synthetic tables with known ground truth, for tests and benchmarks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "io/table_reader.h"

namespace lathe {

enum class SynthTask { regression, binary, multiclass };

struct SynthOptions {
  SynthTask task = SynthTask::regression;
  std::int64_t rows = 1000;
  int features = 10;        // numeric features
  int categorical = 0;      // categorical features
  int classes = 3;          // multiclass only
  double missing_rate = 0;  // fraction of feature values replaced by missing
  double duplicate_rate = 0;  // fraction of rows that exactly repeat an earlier row
  std::uint64_t seed = 42;
  Layout layout = Layout::columnar;  // columnar or matrix
  std::int64_t chunk_rows = 65536;
  int deflate_level = 4;
  bool progress = true;
};

struct SynthReport {
  std::int64_t rows = 0;
  std::int64_t duplicate_rows = 0;
  std::int64_t missing_values = 0;
};

// Writes the table to `out` (temporary name, renamed when complete), streaming in constant memory.
SynthReport write_synthetic(const std::filesystem::path& out, const SynthOptions& options);

}  // namespace lathe
