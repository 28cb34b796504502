// The CUDA backend's resources, for .cu files only (includes CUDA headers). Host code sees only
// the opaque CudaBackend of runtime/device_context.h and the plain entry points declared in
// runtime/*_cuda.h headers.
#pragma once

#include <cstring>
#include <memory>

#include "kernels/column_stats.h"
#include "runtime/cuda_memory.h"

namespace lathe {

// The CUDA resources of one device: its stream and reusable staging buffers that grow to the
// largest block seen (never reallocated per block of the same size).
class CudaBackend {
 public:
  // index_ is initialized first and makes the device current, so the stream and event members
  // after it are created on this device.
  explicit CudaBackend(int index) : index_(make_current(index)) {
    cudaDeviceProp prop{};
    LATHE_CUDA_CHECK(cudaGetDeviceProperties(&prop, index_));
    multiprocessors_ = prop.multiProcessorCount;
  }

  int index() const { return index_; }
  int multiprocessors() const { return multiprocessors_; }
  cudaStream_t stream() const { return stream_.get(); }

  // The pinned staging buffer, at least `count` floats. Waits first for the last copy upload()
  // queued from it, which may still be reading it (a caller that queues copies from it itself
  // must wait for them before the next call, as upload_rows in metrics.cu does).
  float* staging_host(std::size_t count) {
    LATHE_CUDA_CHECK(cudaEventSynchronize(staging_copied_.get()));
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
    staging_copied_.record(stream());
    return device;
  }
  ColumnStats* stats_device(std::size_t count) {
    if (stats_device_.size() < count) stats_device_ = DeviceBuffer<ColumnStats>(count, stream());
    return stats_device_.data();
  }

 private:
  static int make_current(int index) {
    LATHE_CUDA_CHECK(cudaSetDevice(index));
    return index;
  }

  int index_;
  int multiprocessors_ = 1;
  CudaStream stream_;
  PinnedHostBuffer<float> host_staging_;
  CudaEvent staging_copied_{EventUse::ordering};  // recorded after upload()'s copy from host_staging_
  DeviceBuffer<float> device_staging_;
  DeviceBuffer<ColumnStats> stats_device_;
};

}  // namespace lathe
