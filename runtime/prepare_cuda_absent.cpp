// Data preparation's GPU entry points in a binary built without CUDA.
#include "runtime/error.h"
#include "runtime/prepare_cuda.h"

namespace lathe {

void apply_preparation_cuda(CudaBackend&, const BoundPreparation&, const ColumnBlockView&,
                            PreparedBlock&) {
  throw CudaError("this lathe was built without CUDA support", false);
}

void apply_preparation_cuda_device(CudaBackend&, const BoundPreparation&, const ColumnBlockView&,
                                   float*, std::int32_t*, float*) {
  throw CudaError("this lathe was built without CUDA support", false);
}

void materialize_expanded_cuda(CudaBackend&, const FittedPreparation&, const PreparedBlock&,
                               std::vector<float>&) {
  throw CudaError("this lathe was built without CUDA support", false);
}

}  // namespace lathe
