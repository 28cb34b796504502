#include "runtime/cpu_backend.h"

#include <omp.h>

#include <vector>

namespace lathe {

void column_stats_cpu(const ColumnBlockView& block, std::span<ColumnStats> out) {
  const std::int64_t rows = block.rows;
  const std::int64_t columns = block.columns;
  // Split each column into fixed-size row slices so that both wide and tall blocks use all cores;
  // slices are merged in a fixed order, so the result does not depend on the thread count.
  constexpr std::int64_t kSliceRows = 16384;
  const std::int64_t slices = rows == 0 ? 1 : (rows + kSliceRows - 1) / kSliceRows;
  std::vector<ColumnStats> partial(static_cast<std::size_t>(columns * slices));
#pragma omp parallel for schedule(dynamic, 1) collapse(2)
  for (std::int64_t c = 0; c < columns; ++c) {
    for (std::int64_t s = 0; s < slices; ++s) {
      const float* col = block.column(c);
      const std::int64_t begin = s * kSliceRows;
      const std::int64_t end = std::min(rows, begin + kSliceRows);
      ColumnAccumulator acc;
      for (std::int64_t r = begin; r < end; ++r) add_value(acc, col[r]);
      partial[static_cast<std::size_t>(c * slices + s)] = finish(acc);
    }
  }
  for (std::int64_t c = 0; c < columns; ++c) {
    ColumnStats acc;
    for (std::int64_t s = 0; s < slices; ++s) {
      acc = merge_stats(acc, partial[static_cast<std::size_t>(c * slices + s)]);
    }
    out[static_cast<std::size_t>(c)] = acc;
  }
}

}  // namespace lathe
