// Column statistics on whichever device the context names: the entry point used by `lathe inspect`
// and, later, the profile pass of data preparation.
#pragma once

#include <span>

#include "kernels/column_stats.h"
#include "runtime/column_block.h"
#include "runtime/device_context.h"

namespace lathe {

// Summarises every column of a host block: out[c] for column c (out.size() must equal
// block.columns). On CUDA the block is copied to the device and reduced there.
void compute_column_stats(const DeviceContext& ctx, const ColumnBlockView& block,
                          std::span<ColumnStats> out);

}  // namespace lathe
