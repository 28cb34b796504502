#include "io/infinite_values.h"

#include <cmath>

#include "io/column_values.h"
#include "runtime/error.h"

namespace lathe {

bool scores_infinite_values(const NumericTransform& transform) {
  return std::isfinite(transform.clip_lo) && std::isfinite(transform.clip_hi);
}

void throw_infinite_value(const std::string& source, const std::string& column, std::int64_t row,
                          float value) {
  throw InputError(source + ": column '" + column + "': " + row_text(row) +
                   " has an infinite value (" + (value > 0 ? "inf" : "-inf") +
                   "), which the model cannot score");
}

}  // namespace lathe
