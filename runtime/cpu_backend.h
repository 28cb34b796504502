// The CPU backend: the reference implementation of every computation, parallel over all cores
// (OpenMP). Each function applies the shared formula from kernels/ in a plain loop.
#pragma once

#include <span>

#include "kernels/column_stats.h"
#include "runtime/column_block.h"

namespace lathe {

// Summarises every column of a host block: out[c] for column c (out.size() == block.columns).
void column_stats_cpu(const ColumnBlockView& block, std::span<ColumnStats> out);

}  // namespace lathe
