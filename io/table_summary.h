// One streamed pass over a table that summarises every column on the chosen device: what
// `lathe inspect` prints.
#pragma once

#include <vector>

#include "io/table_reader.h"
#include "kernels/column_stats.h"
#include "runtime/device_context.h"

namespace lathe {

struct TableSummary {
  std::vector<ColumnStats> stats;  // per column, in TableReader::columns() order
};

// Reads the table block by block (TableReader::block_rows() rows at a time) and merges the
// per-block column statistics computed on `ctx`.
TableSummary summarize_table(const DeviceContext& ctx, TableReader& reader);

}  // namespace lathe
