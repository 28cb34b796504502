// Exact duplicate rows across a whole streamed table: every column equal in its values as stored,
// label included, missing equal to missing (-0.0 equal to 0.0), as kernels/prepare_formulas.h
// defines same_value. The first occurrence of each row is kept.
//
// Pass 1 streams the table (reader.block_rows() rows a block) and hashes every row on the device
// (row_hash_step folded over the columns, 8 bytes a row kept in host memory), then sorts the
// (hash, row) pairs — CUB radix sort on the GPU, a parallel bucket sort on the CPU — to find the
// groups of rows that share a hash. Pass 2 streams the table again, reading only blocks that hold
// members of such groups, and verifies every member against the distinct rows of its group kept so
// far, value by value, so a hash collision never removes a row. Blocks carry float32, which rounds
// float64 values and integers past 2^24 (ids one apart, timestamps seconds apart): the columns
// stored so are compared again in their stored values (TableReader::read_column_as), read only for
// the blocks' candidate rows and, for integers, only where a candidate's float32 value could be
// rounded. Only group members' values are held in memory, and only until the group's last member
// has been seen.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "io/table_reader.h"
#include "runtime/column_block.h"
#include "runtime/device_context.h"
#include "runtime/row_mask.h"

namespace lathe {

struct DedupOptions {
  // The bits of the 64-bit row hash that group candidate rows: all of them in normal use. Tests
  // keep a few bits so that different rows share a hash and verification must tell them apart.
  std::uint64_t hash_mask = ~0ULL;
};

struct DedupResult {
  RowMask keep;                      // bit set: the row is kept
  std::int64_t duplicates = 0;       // rows removed
  // Rows that shared a hash with an earlier kept row but differ (also those equal to it only as
  // float32).
  std::int64_t hash_collisions = 0;
  // The (hash, row) sort ran on the GPU. False on the CPU backend, and on a GPU whose free memory
  // could not hold the sort (about 33 bytes a row): the CPU sorted instead.
  bool sorted_on_device = false;
};

// Finds the duplicate rows of the whole table on `ctx`. Reads the table twice.
DedupResult find_duplicates(const DeviceContext& ctx, TableReader& reader,
                            const DedupOptions& options = {});

// The hash of each row of a host block: out[r] for row r (out.size() == block.rows). The same on
// every device, bit for bit; rows equal in the sense of same_value hash alike.
void row_hashes(const DeviceContext& ctx, const ColumnBlockView& block,
                std::span<std::uint64_t> out);

// The building blocks of find_duplicates, exposed for tests and benchmarks.

struct HashedRow {
  std::uint64_t hash = 0;
  std::int64_t row = 0;
  friend bool operator==(const HashedRow&, const HashedRow&) = default;
};

// The rows whose hash at least one other row shares, sorted by (hash, row): each run of equal
// hashes is a candidate group whose first row is the candidate original. `hashes[r]` is the hash of
// row r; it is consumed so that its memory is freed as early as possible. On a CUDA context the
// sort runs on the GPU when its memory allows, else on the CPU; `*sorted_on_device` (when not null)
// says which. The result is the same either way.
std::vector<HashedRow> candidate_groups(const DeviceContext& ctx, std::vector<std::uint64_t> hashes,
                                        bool* sorted_on_device = nullptr);

}  // namespace lathe
