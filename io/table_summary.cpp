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
  summary.uncounted.assign(static_cast<std::size_t>(ncols), false);
  // Columns whose codes a float32 block would round: integer codes are read again exactly; strings
  // are not counted.
  std::vector<bool> exact_codes(static_cast<std::size_t>(ncols), false);
  for (std::int64_t c = 0; c < ncols; ++c) {
    if (columns[c].type != ColumnType::categorical) continue;
    summary.category_counts[c].assign(columns[c].categories.size(), 0);
    if (static_cast<std::int64_t>(columns[c].categories.size()) > kMaxExactCategoryLabels) {
      exact_codes[c] = reader.exact_type(c) == ExactType::int32;
      summary.uncounted[c] = !exact_codes[c];
    }
  }
  std::vector<std::int32_t> codes_exact;
  std::vector<float> block;
  std::vector<ColumnStats> block_stats(static_cast<std::size_t>(ncols));
  for (std::int64_t first = 0; first < reader.rows(); first += block_rows) {
    const std::int64_t n = std::min(block_rows, reader.rows() - first);
    block.resize(static_cast<std::size_t>(n * ncols));
    reader.read_block(first, n, block);
    compute_column_stats(ctx, ColumnBlockView{block.data(), n, ncols}, block_stats);
    for (std::int64_t c = 0; c < ncols; ++c) {
      summary.stats[c] = merge_stats(summary.stats[c], block_stats[c]);
      if (columns[c].type != ColumnType::categorical || summary.uncounted[c]) continue;
      std::vector<std::int64_t>& counts = summary.category_counts[c];
      const auto count = [&](std::size_t code) {
        if (code < counts.size()) {
          ++counts[code];
        } else {
          ++summary.invalid_codes[c];
        }
      };
      if (exact_codes[c]) {
        codes_exact.resize(static_cast<std::size_t>(n));
        reader.read_column_as(c, first, n, ExactType::int32, codes_exact.data());
        for (const std::int32_t code : codes_exact) {
          if (code >= 0) count(static_cast<std::size_t>(code));
        }
        continue;
      }
      // Codes as floats, column-major; NaN (or a negative code) is a missing value.
      const float* codes = block.data() + c * n;
      for (std::int64_t r = 0; r < n; ++r) {
        const float v = codes[r];
        if (std::isnan(v) || v < 0) continue;
        count(static_cast<std::size_t>(v));
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
