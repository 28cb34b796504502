#include "runtime/column_summary.h"

#include "runtime/cpu_backend.h"
#include "runtime/cuda_backend.h"
#include "runtime/error.h"

namespace lathe {

void compute_column_stats(const DeviceContext& ctx, const ColumnBlockView& block,
                          std::span<ColumnStats> out) {
  if (static_cast<std::int64_t>(out.size()) != block.columns) {
    throw Error("compute_column_stats: output has " + std::to_string(out.size()) +
                " entries for " + std::to_string(block.columns) + " columns");
  }
  if (ctx.is_cuda()) {
    column_stats_cuda(ctx.cuda(), block, out);
  } else {
    column_stats_cpu(block, out);
  }
}

}  // namespace lathe
