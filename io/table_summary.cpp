#include "io/table_summary.h"

#include "runtime/column_summary.h"

namespace lathe {

TableSummary summarize_table(const DeviceContext& ctx, TableReader& reader) {
  const std::int64_t ncols = static_cast<std::int64_t>(reader.columns().size());
  const std::int64_t block_rows = reader.block_rows();
  TableSummary summary;
  summary.stats.assign(static_cast<std::size_t>(ncols), ColumnStats{});
  std::vector<float> block;
  std::vector<ColumnStats> block_stats(static_cast<std::size_t>(ncols));
  for (std::int64_t first = 0; first < reader.rows(); first += block_rows) {
    const std::int64_t n = std::min(block_rows, reader.rows() - first);
    block.resize(static_cast<std::size_t>(n * ncols));
    reader.read_block(first, n, block);
    compute_column_stats(ctx, ColumnBlockView{block.data(), n, ncols}, block_stats);
    for (std::int64_t c = 0; c < ncols; ++c) {
      summary.stats[c] = merge_stats(summary.stats[c], block_stats[c]);
    }
  }
  return summary;
}

}  // namespace lathe
