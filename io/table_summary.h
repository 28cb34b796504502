// One streamed pass over a table that summarises every column on the chosen device: what
// `lathe inspect` prints.
#pragma once

#include <cstdint>
#include <vector>

#include "io/table_reader.h"
#include "kernels/column_stats.h"
#include "runtime/device_context.h"

namespace lathe {

struct TableSummary {
  std::vector<ColumnStats> stats;  // per column, in TableReader::columns() order
  // Per column: for a categorical column the rows with code i (the label ColumnInfo::categories[i]),
  // empty for a numeric column.
  std::vector<std::vector<std::int64_t>> category_counts;
  // Per column: rows of a categorical column whose code names no label (at or above the number of
  // labels: a damaged or hand-made file); 0 for a numeric column.
  std::vector<std::int64_t> invalid_codes;
  // Per column: a column of strings with more labels than block codes carry exactly
  // (kMaxExactCategoryLabels), whose rows per label are not counted (category_counts stays zero). A
  // column of integer codes is counted exactly whatever its labels.
  std::vector<bool> uncounted;
};

// Reads the table block by block (TableReader::block_rows() rows at a time) and merges the
// per-block column statistics computed on `ctx`; the categories are counted on the host.
TableSummary summarize_table(const DeviceContext& ctx, TableReader& reader);

// The indices of `counts` ordered by count, largest first (ties in code order).
std::vector<std::size_t> categories_by_count(const std::vector<std::int64_t>& counts);

}  // namespace lathe
