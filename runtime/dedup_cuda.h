// The CUDA side of duplicate detection (runtime/dedup.h), seen from host code that g++ compiles: no
// CUDA headers here. Built from kernels/dedup.cu when CUDA is enabled, else from
// runtime/dedup_cuda_absent.cpp, whose functions throw CudaError("built without CUDA support").
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "runtime/column_block.h"
#include "runtime/dedup.h"
#include "runtime/device_context.h"

namespace lathe {

// Hashes the rows of host blocks on one GPU, block after block, on the backend's stream. Its device
// and pinned buffers grow to the largest block seen and are reused for the next blocks.
class CudaRowHasher {
 public:
  explicit CudaRowHasher(CudaBackend& backend);
  ~CudaRowHasher();
  CudaRowHasher(const CudaRowHasher&) = delete;
  CudaRowHasher& operator=(const CudaRowHasher&) = delete;

  // out[r] = the hash of row r of the column-major host block (out.size() == block.rows). Returns
  // when `out` is written.
  void hash(const ColumnBlockView& host_block, std::span<std::uint64_t> out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// candidate_groups (runtime/dedup.h) on the GPU: sorts the pairs (hashes[r], r) with CUB's radix
// sort and returns the rows whose hash another row shares, sorted by (hash, row). Needs about 33
// bytes of device memory a row; returns std::nullopt, having allocated nothing that outlives the
// call, when the device cannot provide it (the caller sorts on the CPU). Other CUDA errors throw.
std::optional<std::vector<HashedRow>> candidate_groups_cuda(CudaBackend& backend,
                                                            std::span<const std::uint64_t> hashes);

}  // namespace lathe
