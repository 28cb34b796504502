// The CUDA backend's resources, for .cu files only (includes CUDA headers). Host code sees only
// the opaque CudaBackend of runtime/device_context.h and the plain entry points declared in
// runtime/*_cuda.h headers.
#pragma once

#include <cstring>
#include <memory>

#include "kernels/column_stats.h"
#include "runtime/cuda_memory.h"

namespace lathe {

// The CUDA resources of one device: its stream, cuBLAS handle and reusable staging buffers that
// grow to the largest block seen (never reallocated per block of the same size).
class CudaBackend {
 public:
  explicit CudaBackend(int index) : index_(index) {
    LATHE_CUDA_CHECK(cudaSetDevice(index_));
    cudaDeviceProp prop{};
    LATHE_CUDA_CHECK(cudaGetDeviceProperties(&prop, index_));
    multiprocessors_ = prop.multiProcessorCount;
    stream_ = CudaStream();
  }

  int index() const { return index_; }
  int multiprocessors() const { return multiprocessors_; }
  cudaStream_t stream() const { return stream_.get(); }

  float* staging_host(std::size_t count) {
    if (host_staging_.size() < count) host_staging_ = PinnedHostBuffer<float>(count);
    return host_staging_.data();
  }
  float* staging_device(std::size_t count) {
    if (device_staging_.size() < count) device_staging_ = DeviceBuffer<float>(count, stream());
    return device_staging_.data();
  }
  // Copies `count` host floats to the device staging buffer (through pinned memory), asynchronously
  // on stream(); returns the device pointer, valid until the next upload.
  const float* upload(const float* host, std::size_t count) {
    float* pinned = staging_host(count);
    float* device = staging_device(count);
    if (count == 0) return device;
    std::memcpy(pinned, host, count * sizeof(float));
    LATHE_CUDA_CHECK(cudaMemcpyAsync(device, pinned, count * sizeof(float), cudaMemcpyHostToDevice, stream()));
    return device;
  }
  ColumnStats* stats_device(std::size_t count) {
    if (stats_device_.size() < count) stats_device_ = DeviceBuffer<ColumnStats>(count, stream());
    return stats_device_.data();
  }

 private:
  int index_;
  int multiprocessors_ = 1;
  CudaStream stream_;
  PinnedHostBuffer<float> host_staging_;
  DeviceBuffer<float> device_staging_;
  DeviceBuffer<ColumnStats> stats_device_;
};

}  // namespace lathe
