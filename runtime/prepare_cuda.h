// Data preparation on the GPU, seen from host code that g++ compiles: no CUDA headers here. Built
// from kernels/prepare.cu when CUDA is enabled, else from runtime/prepare_cuda_absent.cpp, which
// reports that the binary has no CUDA support. Also the parameter tables both backends build from a
// BoundPreparation (runtime/preparation.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/prepare_formulas.h"
#include "runtime/column_block.h"
#include "runtime/device_context.h"
#include "runtime/preparation.h"

namespace lathe {

// The small per-feature tables of a BoundPreparation in contiguous host arrays. `tables` points
// into these vectors and into the binding's remap and slot_hashes (which must outlive it). Not
// copyable (the pointers would dangle).
struct HostPrepareTables {
  std::vector<NumericTransform> transform;
  std::vector<std::int32_t> numeric_input;
  std::vector<std::int32_t> indicator;
  std::vector<std::int32_t> cross;  // pairs
  std::vector<CategoricalTable> categorical;
  std::vector<SparseGroupTable> group;
  std::vector<BinsTable> bins;          // per numeric encoding
  std::vector<float> bin_edge;          // the binned columns' edges, one after the other
  std::vector<std::uint64_t> bin_hash;  // the binned columns' bin label hashes, likewise
  PrepareTables tables;

  HostPrepareTables() = default;
  HostPrepareTables(const HostPrepareTables&) = delete;
  HostPrepareTables& operator=(const HostPrepareTables&) = delete;
};

// Fills `out` from a binding; throws Error when the binding does not match its FittedPreparation.
void build_prepare_tables(const BoundPreparation& bound, HostPrepareTables& out);

// apply_preparation on the GPU: copies the host block to the device, runs one fused kernel (a
// thread per row), copies the prepared block back. Uploads the binding's tables on first use
// (bound.device_state). Synchronous. Throws CudaError.
void apply_preparation_cuda(CudaBackend& backend, const BoundPreparation& bound,
                            const ColumnBlockView& host_input, PreparedBlock& out);

// The same fused kernel on a block already in device memory, for training and scoring passes that
// keep the prepared rows on the GPU: `device_input` is column-major in device memory; `dense`
// (dense_features x rows), `slot` and `value` (groups x rows) are device buffers in PreparedBlock's
// layout. Enqueued on backend.stream(); not synchronized.
void apply_preparation_cuda_device(CudaBackend& backend, const BoundPreparation& bound,
                                   const ColumnBlockView& device_input, float* dense,
                                   std::int32_t* slot, float* value);

// materialize_expanded on the GPU (expanded_feature in a kernel). Synchronous.
void materialize_expanded_cuda(CudaBackend& backend, const FittedPreparation& fitted,
                               const PreparedBlock& block, std::vector<float>& out);

}  // namespace lathe
