#include <cub/block/block_reduce.cuh>

#include <algorithm>

#include "kernels/column_stats_cuda.h"
#include "runtime/cuda_check.h"

namespace lathe {
namespace {

constexpr int kThreads = 256;

// One thread block per (column, row slice): each thread folds a strided subset of the slice
// (consecutive threads read consecutive rows, so loads coalesce), then the block merges the
// per-thread summaries with the same merge_stats the CPU uses.
__global__ void __launch_bounds__(kThreads)
    column_stats_kernel(const float* __restrict__ values, std::int64_t rows, std::int64_t columns,
                        int splits, std::int64_t rows_per_split, ColumnStats* __restrict__ partial) {
  const std::int64_t item = blockIdx.x;
  const std::int64_t column = item / splits;
  const std::int64_t split = item % splits;
  if (column >= columns) return;
  const float* col = values + column * rows;
  const std::int64_t begin = split * rows_per_split;
  const std::int64_t end = begin + rows_per_split < rows ? begin + rows_per_split : rows;

  ColumnStats acc;
  for (std::int64_t r = begin + threadIdx.x; r < end; r += kThreads) add_value(acc, col[r]);

  using BlockReduce = cub::BlockReduce<ColumnStats, kThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  const ColumnStats total = BlockReduce(temp).Reduce(acc, MergeColumnStats{});
  if (threadIdx.x == 0) partial[item] = total;
}

}  // namespace

int column_stats_splits(std::int64_t rows, std::int64_t columns, int multiprocessors) {
  // Enough blocks to fill the GPU a few times over, but at least ~4096 rows per block so that the
  // per-block reduction stays cheap next to the loads.
  const std::int64_t wanted_blocks = std::max<std::int64_t>(1, 4LL * multiprocessors);
  const std::int64_t by_occupancy = (wanted_blocks + columns - 1) / std::max<std::int64_t>(1, columns);
  const std::int64_t by_size = std::max<std::int64_t>(1, rows / 4096);
  return static_cast<int>(std::clamp<std::int64_t>(std::min(by_occupancy, by_size), 1, 1024));
}

void launch_column_stats(const float* values, std::int64_t rows, std::int64_t columns, int splits,
                         ColumnStats* partial, cudaStream_t stream) {
  const std::int64_t blocks = columns * splits;
  if (blocks == 0) return;
  const std::int64_t rows_per_split = (rows + splits - 1) / splits;
  column_stats_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      values, rows, columns, splits, rows_per_split, partial);
  LATHE_CUDA_CHECK_LAUNCH();
}

}  // namespace lathe
