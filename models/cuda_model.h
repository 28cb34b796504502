// The CUDA model seen from host code that g++ compiles: no CUDA headers here. Built from
// kernels/train_step.cu when CUDA is enabled, else from models/cuda_model_absent.cpp, which reports
// that the binary has no CUDA support.
#pragma once

#include <memory>

#include "models/model.h"
#include "runtime/device_context.h"

namespace lathe {

// A model on ctx's GPU (ctx.is_cuda()) whose parameters are all zero; `shape` as
// checked_model_shape returns it. Parameters, optimizer state and the bound training set live in
// device memory; every kernel runs on the context's stream (the model keeps a copy of ctx, so the
// stream outlives it). Throws CudaError.
std::unique_ptr<Model> make_cuda_model(const DeviceContext& ctx, const ModelShape& shape,
                                       const OptimizerConfig& optimizer);

}  // namespace lathe
