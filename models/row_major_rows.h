// The row-major copy of prepared rows that the CPU model reads its batches from
// (TrainingSet::dense_by_row, slot_by_row, value_by_row: dense [row][feature], slot and value
// [row][group]), and the way back to the column-major layout (PreparedRowsView: [column][row])
// that the models predict from. One transposition for the CPU model's own copy, the trainer's
// gather and a streamed window's loader.
#pragma once

#include <cstdint>

#include "kernels/prepare_formulas.h"  // PreparedRowsView, numeric_cross

namespace lathe {

// Copies k rows of `from` (host memory, column stride from.rows) into row-major arrays from row
// `at` on, its first `dense` dense columns (row_major_dense_features) and every group: from's rows selected[0..k) in that order, or rows 0..k-1 when `selected` is null. A
// tile of rows at a time (the tile's reads of every column stay in cache while its rows are
// written out), the tiles on all cores when the copy is large; in the caller's thread inside a
// parallel region. value_to may be null: the values are then not copied (all 1).
void copy_rows_by_row(const PreparedRowsView& from, const std::int64_t* selected, std::int64_t k, std::int64_t dense,
                      std::int64_t groups, float* dense_to, std::int32_t* slot_to, float* value_to, std::int64_t at);

// The other way: rows [begin, begin + m) of row-major arrays into column-major arrays of m rows
// (column stride m), column by column (sequential writes; the m rows' strided reads stay in cache
// when m x dense floats fit in L2). In the caller's thread. A null value_by_row stands for values
// that are all 1 (TrainingSet::value_by_row): value_to is filled with 1.
void copy_rows_by_column(const float* dense_by_row, const std::int32_t* slot_by_row, const float* value_by_row,
                         std::int64_t begin, std::int64_t m, std::int64_t dense, std::int64_t groups, float* dense_to,
                         std::int32_t* slot_to, float* value_to);

// The products (ModelShape::products: `count` pairs) multiplied out, the same floats the
// preparation's product features hold (numeric_cross). A row: x[first + c] =
// numeric_cross(x[products[2c]], x[products[2c + 1]]), x holding at least first + count floats.
inline void multiply_out_products(const std::int32_t* products, std::int64_t count, std::int64_t first, float* x) {
  for (std::int64_t c = 0; c < count; ++c) x[first + c] = numeric_cross(x[products[2 * c]], x[products[2 * c + 1]]);
}

// The same for m rows of column-major features (column f at columns + f m).
void multiply_out_product_columns(const std::int32_t* products, std::int64_t count, std::int64_t first, std::int64_t m,
                                  float* columns);

}  // namespace lathe
