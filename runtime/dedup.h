// Exact duplicate rows across a whole streamed table: every column equal, label included, missing
// equal to missing (-0.0 equal to 0.0). Pass 1 hashes every row on the device (kernels/
// prepare_formulas.h: row_hash_step) and sorts the (hash, row) pairs (CUB radix sort on the GPU, a
// parallel sort on the CPU) to find candidate groups; pass 2 streams the table again and verifies
// each candidate against the first row of its group, byte for byte, so a hash collision never
// removes a row. The first occurrence of each row is kept.
#pragma once

#include <cstdint>
#include <span>

#include "io/table_reader.h"
#include "runtime/column_block.h"
#include "runtime/device_context.h"
#include "runtime/row_mask.h"

namespace lathe {

struct DedupResult {
  RowMask keep;                     // bit set: the row is kept
  std::int64_t duplicates = 0;      // rows removed
  std::int64_t hash_collisions = 0;  // candidates that verification found different
};

DedupResult find_duplicates(const DeviceContext& ctx, TableReader& reader);

// The hash of each row of a host block: out[r] for row r (out.size() == block.rows).
void row_hashes(const DeviceContext& ctx, const ColumnBlockView& block, std::span<std::uint64_t> out);

}  // namespace lathe
