// A block of rows of a table, stored column-major in float32: value (row r, column c) is
// values[c * rows + r]. Numeric missing values and missing category codes are NaN; a categorical
// column holds its integer codes as floats. The view does not own the memory; it points to host
// memory or, inside the CUDA backend, to device memory.
#pragma once

#include <cstdint>

namespace lathe {

struct ColumnBlockView {
  const float* values = nullptr;
  std::int64_t rows = 0;
  std::int64_t columns = 0;

  const float* column(std::int64_t c) const { return values + c * rows; }
};

}  // namespace lathe
