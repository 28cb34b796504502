#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/column_stats_cuda.h"
#include "runtime/cuda_backend.h"
#include "runtime/cuda_check.h"
#include "runtime/cuda_backend_impl.h"

namespace lathe {

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
  // cudaMemGetInfo answers for the current device, so each device is made current in turn; the
  // caller's current device is restored after, since backends and models launch on whichever
  // device is current (a query while training on cuda:0 must not move it to the last device).
  int current = 0;
  const bool restore = cudaGetDevice(&current) == cudaSuccess;
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
  if (restore) cudaSetDevice(current);
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
  const float* device = backend.upload(block.values, n);
  ColumnStats* partial = backend.stats_device(partial_count);
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

namespace {

// Seconds per copy: one warm-up copy, then `repetitions` timed between two events.
template <typename Copy>
double time_copies(CudaBackend& backend, int repetitions, Copy copy) {
  LATHE_CUDA_CHECK(cudaSetDevice(backend.index()));
  copy();
  CudaEvent start, stop;
  start.record(backend.stream());
  for (int i = 0; i < repetitions; ++i) copy();
  stop.record(backend.stream());
  LATHE_CUDA_CHECK(cudaEventSynchronize(stop.get()));
  return stop.elapsed_ms_since(start) / 1000.0 / std::max(1, repetitions);
}

}  // namespace

std::shared_ptr<void> allocate_device_bytes(CudaBackend& backend, std::size_t bytes) {
  LATHE_CUDA_CHECK(cudaSetDevice(backend.index()));
  void* p = nullptr;
  LATHE_CUDA_CHECK(cudaMallocAsync(&p, std::max<std::size_t>(bytes, 1), backend.stream()));
  cudaStream_t stream = backend.stream();
  // The deleter must not throw; the stream outlives buffers made for benchmarks and tests.
  return std::shared_ptr<void>(p, [stream](void* q) { cudaFreeAsync(q, stream); });
}

std::shared_ptr<void> allocate_pinned_host_bytes(std::size_t bytes) noexcept {
  void* p = nullptr;
  if (cudaMallocHost(&p, std::max<std::size_t>(bytes, 1)) != cudaSuccess) {
    cudaGetLastError();  // not sticky: clear it, the caller falls back to plain memory
    return nullptr;
  }
  return std::shared_ptr<void>(p, [](void* q) { cudaFreeHost(q); });
}

void copy_host_to_device_async(CudaBackend& backend, void* device, const void* host, std::size_t bytes) {
  LATHE_CUDA_CHECK(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, backend.stream()));
}

void copy_host_to_device(CudaBackend& backend, void* device, const void* host, std::size_t bytes) {
  LATHE_CUDA_CHECK(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, backend.stream()));
  LATHE_CUDA_CHECK(cudaStreamSynchronize(backend.stream()));
}

void copy_device_to_host(CudaBackend& backend, void* host, const void* device, std::size_t bytes) {
  LATHE_CUDA_CHECK(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, backend.stream()));
  LATHE_CUDA_CHECK(cudaStreamSynchronize(backend.stream()));
}

void synchronize(CudaBackend& backend) { LATHE_CUDA_CHECK(cudaStreamSynchronize(backend.stream())); }

double time_device_copy(CudaBackend& backend, std::size_t bytes, int repetitions) {
  LATHE_CUDA_CHECK(cudaSetDevice(backend.index()));  // before the buffers: they belong to it
  DeviceBuffer<unsigned char> src(bytes, backend.stream()), dst(bytes, backend.stream());
  LATHE_CUDA_CHECK(cudaMemsetAsync(src.data(), 1, bytes, backend.stream()));
  return time_copies(backend, repetitions, [&] {
    LATHE_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, backend.stream()));
  });
}

double time_pinned_host_to_device_copy(CudaBackend& backend, std::size_t bytes, int repetitions) {
  LATHE_CUDA_CHECK(cudaSetDevice(backend.index()));  // before the buffers: they belong to it
  PinnedHostBuffer<unsigned char> src(bytes);
  std::memset(src.data(), 1, bytes);
  DeviceBuffer<unsigned char> dst(bytes, backend.stream());
  return time_copies(backend, repetitions, [&] {
    LATHE_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyHostToDevice, backend.stream()));
  });
}

}  // namespace lathe
