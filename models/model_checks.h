// Checks both models run on the host before touching data (implemented in models/model.cpp), so
// that bad input is an exception naming the problem, never an out-of-bounds read on a device.
#pragma once

#include <cstdint>
#include <vector>

#include "models/model.h"

namespace lathe {

// A copy of `shape` with layout.group_offset pointing at its own group_offsets, features filled
// in, and the task, loss, outputs and factors checked (InputError).
ModelShape checked_model_shape(const ModelShape& shape);

// InputError naming the row for a label that is not finite (multiclass: not a class index),
// a weight that is negative or not finite, or a sparse slot outside its group's width.
void check_training_set(const ModelShape& shape, const TrainingSet& data);
// Whether `data` carries the row-major copy (TrainingSet::dense_by_row ...) of every array the
// shape has.
bool has_rows_by_row(const ModelShape& shape, const TrainingSet& data);
// InputError naming the row for a sparse slot outside its group's width (`what` names the rows).
void check_rows(const ModelShape& shape, const PreparedRowsView& rows, const char* what);
// Error unless the shape is a regression model's (Model::predict_regression).
void check_regression(const ModelShape& shape, const char* what);
// Error for a row index outside [0, rows).
void check_order(const std::vector<std::int64_t>& order, std::int64_t rows);
// Error unless the permutation is of exactly the `rows` bound training rows.
void check_permutation(const EpochPermutation& permutation, std::int64_t rows);
// Error for a batch outside the order, a step before 1, or a learning rate that is not finite.
void check_step(std::int64_t first, std::int64_t count, std::int64_t order_size,
                const StepSettings& settings);
// Error for a batch or sync_every below 1, negative workers, a first step before 1, or a learning
// rate that is not finite.
void check_local_sgd(const LocalSgdSettings& settings);
// Error when the vectors' sizes do not match the shape.
void check_parameters(const ModelShape& shape, const ModelParameters& parameters);
// Error when an array of `state` is neither empty nor the parameters' total size.
void check_optimizer_state(const ModelShape& shape, const OptimizerState& state);

}  // namespace lathe
