// Launcher for the column-statistics kernel (kernels/column_stats.cu). Included only by .cu files.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/column_stats.h"

namespace lathe {

// The number of partial summaries launch_column_stats writes per column for a block of `rows` rows.
int column_stats_splits(std::int64_t rows, std::int64_t columns, int multiprocessors);

// values: device pointer, 16-byte aligned (as cudaMalloc* returns), column-major [columns][rows]. partial: device pointer to
// columns * splits summaries, partial[c * splits + s] for row slice s of column c; the caller merges
// them in order. Asynchronous on `stream`; checks the launch.
void launch_column_stats(const float* values, std::int64_t rows, std::int64_t columns, int splits,
                         ColumnStats* partial, cudaStream_t stream);

}  // namespace lathe
