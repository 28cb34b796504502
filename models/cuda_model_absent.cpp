// The CUDA model's factory in a binary built without CUDA.
#include "models/cuda_model.h"
#include "runtime/error.h"

namespace lathe {

std::unique_ptr<Model> make_cuda_model(const DeviceContext&, const ModelShape&,
                                       const OptimizerConfig&) {
  throw CudaError("this lathe was built without CUDA support", false);
}

}  // namespace lathe
