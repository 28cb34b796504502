// Warm starts (`lathe train --init-model OLD.h5`): an earlier model's parameters carried into a
// model over another fitted preparation (`--refit-prep`), feature by feature.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/model.h"
#include "runtime/preparation.h"

namespace lathe {

// A name for each expanded feature of `fitted` (expanded order) that stays the same when the
// preparation is refitted on other data: dense features by dense_names(); one-hot and slope slots
// by column name and category label ("city=Oslo", "<missing>", "<unknown>"; a hashed column's
// buckets by bucket number and count); categorical crosses by bucket number and count.
std::vector<std::string> expanded_feature_keys(const FittedPreparation& fitted);

// The parameters of a model of `shape` (over `to`) with every feature that `from` also has taking
// the earlier model's weights and factors (`parameters`, over `from`, the same outputs and
// factors), the others zero (factors: zero too), and the bias carried. `carried` (optional) gets
// the number of features carried. Throws InputError when the outputs or factors differ.
ModelParameters carry_parameters(const FittedPreparation& from, const ModelParameters& parameters,
                                 const FittedPreparation& to, const ModelShape& shape,
                                 std::int64_t* carried = nullptr);

}  // namespace lathe
