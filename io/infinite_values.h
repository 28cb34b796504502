// The refusal of an infinite value that a model cannot score, in the one message of every command
// that scores rows.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/preparation.h"

namespace lathe {

// An infinite value in a numeric input of a model (float32 infinity: also a float64 value beyond
// float32's range, +-3.4e38). A column that the fitted preparation clips to finite bounds on both
// sides puts it on a bound (as the exported ONNX graph does); for any other column the model has no
// answer. Every command that scores rows refuses one there with this one message: lathe::Scorer
// (`lathe score`) and predict_table (`lathe eval`, `lathe drift`, `lathe report --eval`), e.g.
//   "data.h5: column 'tenure': row 4 has an infinite value (inf), which the model cannot score"
// `row` counts the source's rows from 0 (the message counts from 1).
bool scores_infinite_values(const NumericTransform& transform);
[[noreturn]] void throw_infinite_value(const std::string& source, const std::string& column,
                                       std::int64_t row, float value);

}  // namespace lathe
