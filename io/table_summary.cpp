#include "io/table_summary.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "runtime/column_summary.h"

namespace lathe {

TableSummary summarize_table(const DeviceContext& ctx, TableReader& reader) {
  const auto& columns = reader.columns();
  const std::int64_t ncols = static_cast<std::int64_t>(columns.size());
  const std::int64_t block_rows = reader.block_rows();
  TableSummary summary;
  summary.stats.assign(static_cast<std::size_t>(ncols), ColumnStats{});
  summary.category_counts.resize(static_cast<std::size_t>(ncols));
  summary.invalid_codes.assign(static_cast<std::size_t>(ncols), 0);
  for (std::int64_t c = 0; c < ncols; ++c) {
    if (columns[c].type == ColumnType::categorical) summary.category_counts[c].assign(columns[c].categories.size(), 0);
  }
  std::vector<float> block;
  std::vector<ColumnStats> block_stats(static_cast<std::size_t>(ncols));
  for (std::int64_t first = 0; first < reader.rows(); first += block_rows) {
    const std::int64_t n = std::min(block_rows, reader.rows() - first);
    block.resize(static_cast<std::size_t>(n * ncols));
    reader.read_block(first, n, block);
    compute_column_stats(ctx, ColumnBlockView{block.data(), n, ncols}, block_stats);
    for (std::int64_t c = 0; c < ncols; ++c) {
      summary.stats[c] = merge_stats(summary.stats[c], block_stats[c]);
      if (columns[c].type != ColumnType::categorical) continue;
      // Codes as floats, column-major; NaN (or a negative code) is a missing value.
      std::vector<std::int64_t>& counts = summary.category_counts[c];
      const float* codes = block.data() + c * n;
      for (std::int64_t r = 0; r < n; ++r) {
        const float v = codes[r];
        if (std::isnan(v) || v < 0) continue;
        const auto code = static_cast<std::size_t>(v);
        if (code < counts.size()) {
          ++counts[code];
        } else {
          ++summary.invalid_codes[c];
        }
      }
    }
  }
  return summary;
}

std::vector<std::size_t> categories_by_count(const std::vector<std::int64_t>& counts) {
  std::vector<std::size_t> order(counts.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return counts[a] > counts[b]; });
  return order;
}

}  // namespace lathe
