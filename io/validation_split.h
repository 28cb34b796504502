// The validation rows `lathe train` holds out of its training file (--valid-fraction): how many by
// default, and which: a deterministic, stratified split.
#pragma once

#include <cstdint>
#include <vector>

#include "models/model.h"
#include "runtime/row_mask.h"

namespace lathe {

// The share of `rows` rows that `lathe train` holds out for validation unless told: 20% of them,
// but no more than 10,000 rows until 5% of them is more (200,000 rows on). Held-out rows are rows
// the model does not fit, and a few thousand choose an epoch as well as hundreds of thousands: on
// 160k rows of 50 classes, 10,000 held out instead of 32,000 took the test log-loss from 2.4119
// to 2.3940 (bench/RESULTS.md, session 24). A table of up to 50,000 rows keeps its 20%.
double automatic_valid_fraction(std::int64_t rows);

// Validation rows: the fraction with the smallest hash of their row index, per class for
// classification (stratified), so the split is deterministic and does not depend on row order.
RowMask validation_split(const RowMask& keep, const std::vector<float>& classes, Task task,
                         double fraction, std::uint64_t seed);

}  // namespace lathe
