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

// Device memory for host code that cannot include CUDA headers (benchmarks, tests): `bytes` on the
// backend's device, freed (stream-ordered) when the last owner lets go.
std::shared_ptr<void> allocate_device_bytes(CudaBackend& backend, std::size_t bytes);
// Page-locked (pinned) host memory of `bytes` (cudaMallocHost), freed when the last owner lets
// go: copies from it to a device run asynchronously at the bus's speed. nullptr when this binary has
// no CUDA or the driver refuses (no GPU, too much locked memory): the caller then uses plain memory.
// Never throws.
std::shared_ptr<void> allocate_pinned_host_bytes(std::size_t bytes) noexcept;
// Synchronous copies between host memory and device memory from allocate_device_bytes.
void copy_host_to_device(CudaBackend& backend, void* device, const void* host, std::size_t bytes);
void copy_device_to_host(CudaBackend& backend, void* host, const void* device, std::size_t bytes);
// The same host-to-device copy queued on the backend's stream without waiting: `host` (pinned, for
// the copy to be asynchronous) must stay unchanged until synchronize(backend).
void copy_host_to_device_async(CudaBackend& backend, void* device, const void* host, std::size_t bytes);
// Waits for all work queued on the backend's stream.
void synchronize(CudaBackend& backend);

// The machine's ceilings, for benchmarks: seconds for one copy of `bytes` (averaged over
// `repetitions`, timed with CUDA events on the backend's stream) device to device, and pinned host
// to device.
double time_device_copy(CudaBackend& backend, std::size_t bytes, int repetitions);
double time_pinned_host_to_device_copy(CudaBackend& backend, std::size_t bytes, int repetitions);

}  // namespace lathe
