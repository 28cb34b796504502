// The CPU model (models/cpu_model.cpp), the reference implementation of models/model.h.
#pragma once

#include <memory>

#include "models/model.h"

namespace lathe {

// A model whose parameters are all zero; `shape` as checked_model_shape returns it. predict_only:
// without the optimizer's state and a step's scratch (make_prediction_model); it cannot train.
std::unique_ptr<Model> make_cpu_model(const ModelShape& shape, const OptimizerConfig& optimizer,
                                      bool predict_only = false);

}  // namespace lathe
