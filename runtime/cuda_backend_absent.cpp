// The CUDA backend of a binary built without CUDA (LATHE_CUDA=OFF or no nvcc at build time).
#include "runtime/cuda_backend.h"
#include "runtime/error.h"

namespace lathe {

class CudaBackend {};

void query_cuda(SystemInfo& info) {
  info.cuda_built = false;
  info.cuda_usable = false;
  info.cuda_unusable_reason = "this lathe was built without CUDA support";
}

std::shared_ptr<CudaBackend> make_cuda_backend(int) {
  throw CudaError("this lathe was built without CUDA support", false);
}

void column_stats_cuda(CudaBackend&, const ColumnBlockView&, std::span<ColumnStats>) {
  throw CudaError("this lathe was built without CUDA support", false);
}

std::shared_ptr<void> allocate_device_bytes(CudaBackend&, std::size_t) {
  throw CudaError("this lathe was built without CUDA support", false);
}
std::shared_ptr<void> allocate_pinned_host_bytes(std::size_t) noexcept { return nullptr; }
void copy_host_to_device(CudaBackend&, void*, const void*, std::size_t) {
  throw CudaError("this lathe was built without CUDA support", false);
}
void copy_host_to_device_async(CudaBackend&, void*, const void*, std::size_t) {
  throw CudaError("this lathe was built without CUDA support", false);
}
void copy_device_to_host(CudaBackend&, void*, const void*, std::size_t) {
  throw CudaError("this lathe was built without CUDA support", false);
}
void synchronize(CudaBackend&) { throw CudaError("this lathe was built without CUDA support", false); }

double time_device_copy(CudaBackend&, std::size_t, int) {
  throw CudaError("this lathe was built without CUDA support", false);
}

double time_pinned_host_to_device_copy(CudaBackend&, std::size_t, int) {
  throw CudaError("this lathe was built without CUDA support", false);
}

}  // namespace lathe
