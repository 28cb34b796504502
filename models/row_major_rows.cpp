#include "models/row_major_rows.h"

#include <algorithm>

namespace lathe {

void copy_rows_by_row(const PreparedRowsView& from, const std::int64_t* selected, std::int64_t k, std::int64_t dense,
                      std::int64_t groups, float* dense_to, std::int32_t* slot_to, float* value_to, std::int64_t at) {
  const std::int64_t n = from.rows;
  constexpr std::int64_t kTile = 128;
  const std::int64_t tiles = (k + kTile - 1) / kTile;
#pragma omp parallel for schedule(static) if ((dense + groups) * k >= (std::int64_t{1} << 18))
  for (std::int64_t t = 0; t < tiles; ++t) {
    const std::int64_t begin = t * kTile, end = std::min(k, begin + kTile);
    const auto row = [&](std::int64_t i) { return selected ? selected[i] : i; };
    for (std::int64_t f = 0; f < dense; ++f) {
      const float* column = from.dense + f * n;
      for (std::int64_t i = begin; i < end; ++i) dense_to[(at + i) * dense + f] = column[row(i)];
    }
    for (std::int64_t g = 0; g < groups; ++g) {
      const std::int32_t* slots = from.slot + g * n;
      const float* values = from.value + g * n;
      for (std::int64_t i = begin; i < end; ++i) slot_to[(at + i) * groups + g] = slots[row(i)];
      if (value_to == nullptr) continue;
      for (std::int64_t i = begin; i < end; ++i) value_to[(at + i) * groups + g] = values[row(i)];
    }
  }
}

void copy_rows_by_column(const float* dense_by_row, const std::int32_t* slot_by_row, const float* value_by_row,
                         std::int64_t begin, std::int64_t m, std::int64_t dense, std::int64_t groups, float* dense_to,
                         std::int32_t* slot_to, float* value_to) {
  const float* x = dense_by_row + begin * dense;
  for (std::int64_t f = 0; f < dense; ++f) {
    float* column = dense_to + f * m;
    for (std::int64_t i = 0; i < m; ++i) column[i] = x[i * dense + f];
  }
  const std::int32_t* slots = slot_by_row + begin * groups;
  for (std::int64_t g = 0; g < groups; ++g) {
    for (std::int64_t i = 0; i < m; ++i) slot_to[g * m + i] = slots[i * groups + g];
    if (value_by_row == nullptr) {
      std::fill(value_to + g * m, value_to + (g + 1) * m, 1.0f);
      continue;
    }
    const float* values = value_by_row + begin * groups;
    for (std::int64_t i = 0; i < m; ++i) value_to[g * m + i] = values[i * groups + g];
  }
}

void multiply_out_product_columns(const std::int32_t* products, std::int64_t count, std::int64_t first, std::int64_t m,
                                  float* columns) {
  for (std::int64_t c = 0; c < count; ++c) {
    const float* a = columns + products[2 * c] * m;
    const float* b = columns + products[2 * c + 1] * m;
    float* to = columns + (first + c) * m;
    for (std::int64_t i = 0; i < m; ++i) to[i] = numeric_cross(a[i], b[i]);
  }
}

}  // namespace lathe
