// The metrics' CUDA side in a binary built without CUDA (LATHE_CUDA=OFF or no nvcc).
#include "runtime/error.h"
#include "runtime/metrics_cuda.h"

namespace lathe {

std::optional<RegressionSums> regression_sums_cuda(CudaBackend&, const MetricRows&, double) {
  throw CudaError("this lathe was built without CUDA support", false);
}

std::optional<BinarySums> binary_sums_cuda(CudaBackend&, const MetricRows&) {
  throw CudaError("this lathe was built without CUDA support", false);
}

std::optional<MulticlassSums> multiclass_sums_cuda(CudaBackend&, const MetricRows&) {
  throw CudaError("this lathe was built without CUDA support", false);
}

}  // namespace lathe
