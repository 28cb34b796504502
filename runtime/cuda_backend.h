// The CUDA backend seen from host code that g++ compiles: no CUDA headers here. Built from
// runtime/cuda_backend.cu when CUDA is enabled, else from runtime/cuda_backend_absent.cpp, which
// reports that the binary has no CUDA support.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "kernels/column_stats.h"
#include "runtime/column_block.h"
#include "runtime/device_context.h"

namespace lathe {

// Fills the CUDA fields of `info` (devices, versions, or why CUDA is unusable). Never throws.
void query_cuda(SystemInfo& info);

// Makes the stream, cuBLAS handle and scratch buffers for device `index`. Throws CudaError.
std::shared_ptr<CudaBackend> make_cuda_backend(int index);

// Summarises every column of a host block on the GPU: out[c] for column c (out.size() == columns).
void column_stats_cuda(CudaBackend& backend, const ColumnBlockView& host_block,
                       std::span<ColumnStats> out);

// The machine's ceilings, for benchmarks: seconds for one copy of `bytes` (averaged over
// `repetitions`, timed with CUDA events on the backend's stream) device to device, and pinned host
// to device.
double time_device_copy(CudaBackend& backend, std::size_t bytes, int repetitions);
double time_pinned_host_to_device_copy(CudaBackend& backend, std::size_t bytes, int repetitions);

}  // namespace lathe
