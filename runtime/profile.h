// The profile pass: one streamed pass over the training data that summarises every column on the
// chosen device. Numeric columns: count, missing, mean and variance (double, merged with Chan's
// formula), min, max and a quantile sketch. Categorical columns: the count of each category and of
// missing values. A DataProfile is plain data: the model file stores it, drift monitoring compares
// new data against it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "io/table_reader.h"
#include "kernels/column_stats.h"
#include "runtime/column_block.h"
#include "runtime/device_context.h"
#include "runtime/quantile_sketch.h"
#include "runtime/row_mask.h"

namespace lathe {

struct NumericProfile {
  ColumnStats stats;
  QuantileSketch sketch;
};

struct CategoricalProfile {
  std::vector<std::string> labels;   // label of code i (as in the file profiled)
  std::vector<std::int64_t> counts;  // rows with code i
  std::int64_t missing = 0;          // rows with no category
};

struct ColumnProfile {
  std::string name;
  ColumnType type = ColumnType::numeric;
  NumericProfile numeric;          // numeric columns
  CategoricalProfile categorical;  // categorical columns
};

struct DataProfile {
  std::int64_t rows = 0;  // rows profiled (kept rows only, when a mask was given)
  std::vector<ColumnProfile> columns;
  // The column named `name`; throws InputError listing the columns when there is none.
  const ColumnProfile& column(const std::string& name) const;
};

struct ProfileOptions {
  int sketch_capacity = 1024;
};

// Streams the table block by block (reader.block_rows() rows) and profiles every column on `ctx`.
// With `keep`, only rows whose bit is set count (rows removed by --dedup).
DataProfile profile_table(const DeviceContext& ctx, TableReader& reader, const RowMask* keep = nullptr,
                          const ProfileOptions& options = {});

// The profile of one block of columns in host memory: `types[c]` says how to treat column c
// (categorical codes as floats, NaN missing; `category_counts[c]` is its number of labels).
// Accumulates into `profile` (whose columns must already be named and typed). Rows whose
// `keep_rows` byte is 0 are skipped when keep_rows is non-empty.
void profile_block(const DeviceContext& ctx, const ColumnBlockView& block,
                   std::span<const std::uint8_t> keep_rows, DataProfile& profile,
                   const ProfileOptions& options = {});

}  // namespace lathe
