// The profile pass's GPU side in a binary built without CUDA: the profiler cannot be made.
#include <utility>

#include "runtime/error.h"
#include "runtime/profile_cuda.h"

namespace lathe {

struct CudaProfiler::Scratch {};

CudaProfiler::CudaProfiler(CudaBackend& backend, ProfileLayout layout)
    : backend_(&backend), layout_(std::move(layout)) {
  throw CudaError("profile: this lathe was built without CUDA support", false);
}

CudaProfiler::~CudaProfiler() = default;

void CudaProfiler::profile_block(const ColumnBlockView&, std::span<const std::uint8_t>, BlockProfile&) {
  throw CudaError("profile: this lathe was built without CUDA support", false);
}

}  // namespace lathe
