#include <cub/block/block_reduce.cuh>

#include <algorithm>

#include "kernels/column_stats_cuda.h"
#include "runtime/cuda_check.h"

namespace lathe {
namespace {

constexpr int kThreads = 256;

// One thread block per (column, row slice): each thread folds a strided subset of the slice
// (consecutive threads read consecutive rows, so loads coalesce; 16-byte float4 loads when every
// column starts 16-byte aligned, i.e. rows % 4 == 0), then the block merges the per-thread summaries
// with the same merge_stats the CPU uses.
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

  ColumnAccumulator acc;
  if (rows % 4 == 0) {
    // begin is a multiple of 4 (rows_per_split is), so the slice is whole float4s.
    const float4* col4 = reinterpret_cast<const float4*>(col);
    for (std::int64_t q = begin / 4 + threadIdx.x; q < end / 4; q += kThreads) {
      const float4 v = col4[q];
      add_value(acc, v.x);
      add_value(acc, v.y);
      add_value(acc, v.z);
      add_value(acc, v.w);
    }
  } else {
    for (std::int64_t r = begin + threadIdx.x; r < end; r += kThreads) add_value(acc, col[r]);
  }

  using BlockReduce = cub::BlockReduce<ColumnStats, kThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  const ColumnStats total = BlockReduce(temp).Reduce(finish(acc), MergeColumnStats{});
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
  // A multiple of 4 so that every slice of a float4-aligned column starts on a float4.
  const std::int64_t rows_per_split = ((rows + splits - 1) / splits + 3) / 4 * 4;
  column_stats_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      values, rows, columns, splits, rows_per_split, partial);
  LATHE_CUDA_CHECK_LAUNCH();
}

}  // namespace lathe
