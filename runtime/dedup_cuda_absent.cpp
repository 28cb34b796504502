// Duplicate detection's CUDA side in a binary built without CUDA (LATHE_CUDA=OFF or no nvcc).
#include "runtime/dedup_cuda.h"
#include "runtime/error.h"

namespace lathe {

struct CudaRowHasher::Impl {};

CudaRowHasher::CudaRowHasher(CudaBackend&) {
  throw CudaError("this lathe was built without CUDA support", false);
}

CudaRowHasher::~CudaRowHasher() = default;

void CudaRowHasher::hash(const ColumnBlockView&, std::span<std::uint64_t>) {
  throw CudaError("this lathe was built without CUDA support", false);
}

std::optional<std::vector<HashedRow>> candidate_groups_cuda(CudaBackend&,
                                                            std::span<const std::uint64_t>) {
  throw CudaError("this lathe was built without CUDA support", false);
}

}  // namespace lathe
