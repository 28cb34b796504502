// The CPU model (models/cpu_model.cpp), the reference implementation of models/model.h.
#pragma once

#include <memory>

#include "models/model.h"

namespace lathe {

// A model whose parameters are all zero; `shape` as checked_model_shape returns it. predict_only:
// without the optimizer's state and a step's scratch (make_prediction_model); it cannot train.
std::unique_ptr<Model> make_cpu_model(const ModelShape& shape, const OptimizerConfig& optimizer,
                                      bool predict_only = false);

// How many exact steps of `model` (one make_cpu_model made) ran on a plan made ahead on its second
// thread (a lazy step of sparse groups with a spare core: its batch gathered and its touched
// features found while the step before ran); 0 for another model. For tests and diagnostics.
std::int64_t steps_planned_ahead(const Model& model);

}  // namespace lathe
