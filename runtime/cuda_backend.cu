#include <cstring>
#include <vector>

#include "kernels/column_stats_cuda.h"
#include "runtime/cuda_backend.h"
#include "runtime/cuda_check.h"
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
    cublas_ = std::make_unique<CublasHandle>(stream_.get());
  }

  int index() const { return index_; }
  int multiprocessors() const { return multiprocessors_; }
  cudaStream_t stream() const { return stream_.get(); }
  cublasHandle_t cublas() const { return cublas_->get(); }

  float* staging_host(std::size_t count) {
    if (host_staging_.size() < count) host_staging_ = PinnedHostBuffer<float>(count);
    return host_staging_.data();
  }
  float* staging_device(std::size_t count) {
    if (device_staging_.size() < count) device_staging_ = DeviceBuffer<float>(count, stream());
    return device_staging_.data();
  }
  ColumnStats* stats_device(std::size_t count) {
    if (stats_device_.size() < count) stats_device_ = DeviceBuffer<ColumnStats>(count, stream());
    return stats_device_.data();
  }

 private:
  int index_;
  int multiprocessors_ = 1;
  CudaStream stream_;
  std::unique_ptr<CublasHandle> cublas_;
  PinnedHostBuffer<float> host_staging_;
  DeviceBuffer<float> device_staging_;
  DeviceBuffer<ColumnStats> stats_device_;
};

void query_cuda(SystemInfo& info) {
  info.cuda_built = true;
  cudaRuntimeGetVersion(&info.runtime_version);
  if (cudaDriverGetVersion(&info.driver_version) != cudaSuccess) info.driver_version = 0;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    info.cuda_usable = false;
    if (e == cudaErrorInsufficientDriver && info.driver_version == 0) {
      info.cuda_unusable_reason = "no NVIDIA driver is installed";
    } else if (e == cudaErrorInsufficientDriver) {
      info.cuda_unusable_reason = "the NVIDIA driver (CUDA " + std::to_string(info.driver_version / 1000) +
                                  "." + std::to_string(info.driver_version % 1000 / 10) +
                                  ") is older than this build's CUDA runtime";
    } else if (e == cudaErrorNoDevice || count == 0) {
      info.cuda_unusable_reason = "no CUDA device was found";
    } else {
      info.cuda_unusable_reason = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
    }
    cudaGetLastError();  // clear the (non-sticky) error so later calls start clean
    return;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    CudaDeviceInfo d;
    d.index = i;
    d.name = prop.name;
    d.compute_major = prop.major;
    d.compute_minor = prop.minor;
    d.total_memory_bytes = prop.totalGlobalMem;
    d.multiprocessors = prop.multiProcessorCount;
    if (cudaSetDevice(i) == cudaSuccess) {
      std::size_t free_bytes = 0, total = 0;
      if (cudaMemGetInfo(&free_bytes, &total) == cudaSuccess) d.free_memory_bytes = free_bytes;
    }
    info.devices.push_back(d);
  }
  cudaGetLastError();
  info.cuda_usable = !info.devices.empty();
  if (!info.cuda_usable) info.cuda_unusable_reason = "no CUDA device answered";
}

std::shared_ptr<CudaBackend> make_cuda_backend(int index) {
  return std::make_shared<CudaBackend>(index);
}

void column_stats_cuda(CudaBackend& backend, const ColumnBlockView& block,
                       std::span<ColumnStats> out) {
  LATHE_CUDA_CHECK(cudaSetDevice(backend.index()));
  const std::size_t n = static_cast<std::size_t>(block.rows * block.columns);
  const int splits = column_stats_splits(block.rows, block.columns, backend.multiprocessors());
  const std::size_t partial_count = static_cast<std::size_t>(block.columns) * splits;
  if (block.columns == 0) return;
  float* host = backend.staging_host(n);
  float* device = backend.staging_device(n);
  ColumnStats* partial = backend.stats_device(partial_count);
  std::memcpy(host, block.values, n * sizeof(float));
  LATHE_CUDA_CHECK(cudaMemcpyAsync(device, host, n * sizeof(float), cudaMemcpyHostToDevice,
                                   backend.stream()));
  launch_column_stats(device, block.rows, block.columns, splits, partial, backend.stream());
  std::vector<ColumnStats> partial_host(partial_count);
  LATHE_CUDA_CHECK(cudaMemcpyAsync(partial_host.data(), partial, partial_count * sizeof(ColumnStats),
                                   cudaMemcpyDeviceToHost, backend.stream()));
  LATHE_CUDA_CHECK(cudaStreamSynchronize(backend.stream()));
  for (std::int64_t c = 0; c < block.columns; ++c) {
    ColumnStats acc;
    for (int s = 0; s < splits; ++s) acc = merge_stats(acc, partial_host[c * splits + s]);
    out[c] = acc;
  }
}

}  // namespace lathe
