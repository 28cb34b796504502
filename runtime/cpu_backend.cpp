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
      // Interleaved accumulators break the add-latency chain of a single one (2x faster on one core);
      // they are merged in a fixed order.
      constexpr int kLanes = 4;
      ColumnAccumulator lane[kLanes];
      std::int64_t r = begin;
      for (; r + kLanes <= end; r += kLanes) {
#pragma GCC unroll 4
        for (int k = 0; k < kLanes; ++k) add_value(lane[k], col[r + k]);
      }
      for (; r < end; ++r) add_value(lane[0], col[r]);
      ColumnStats acc = finish(lane[0]);
      for (int k = 1; k < kLanes; ++k) acc = merge_stats(acc, finish(lane[k]));
      partial[static_cast<std::size_t>(c * slices + s)] = acc;
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
