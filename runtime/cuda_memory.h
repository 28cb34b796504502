// Move-only owners of CUDA resources: device buffers, pinned host buffers, streams, events and the
// cuBLAS handle. Included only by .cu files. Destructors never throw (errors there are ignored:
// the context may already be gone at process exit).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "runtime/cuda_check.h"

namespace lathe {

// `count` elements of T in device memory, allocated stream-ordered (cudaMallocAsync) on `stream`
// and freed on the same stream.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(std::size_t count, cudaStream_t stream) : count_(count), stream_(stream) {
    if (count_ > 0) {
      LATHE_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&data_), count_ * sizeof(T), stream_));
    }
  }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      count_ = std::exchange(o.count_, 0);
      stream_ = o.stream_;
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* data() const { return data_; }
  std::size_t size() const { return count_; }

 private:
  void release() noexcept {
    if (data_) cudaFreeAsync(data_, stream_);
    data_ = nullptr;
    count_ = 0;
  }
  T* data_ = nullptr;
  std::size_t count_ = 0;
  cudaStream_t stream_ = nullptr;
};

// `count` elements of T in page-locked host memory, for asynchronous copies to and from the device.
template <typename T>
class PinnedHostBuffer {
 public:
  PinnedHostBuffer() = default;
  explicit PinnedHostBuffer(std::size_t count) : count_(count) {
    if (count_ > 0) {
      LATHE_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&data_), count_ * sizeof(T)));
    }
  }
  ~PinnedHostBuffer() {
    if (data_) cudaFreeHost(data_);
  }
  PinnedHostBuffer(PinnedHostBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  PinnedHostBuffer& operator=(PinnedHostBuffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(count_, o.count_);
    return *this;
  }
  PinnedHostBuffer(const PinnedHostBuffer&) = delete;
  PinnedHostBuffer& operator=(const PinnedHostBuffer&) = delete;

  T* data() const { return data_; }
  std::size_t size() const { return count_; }

 private:
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

// A non-blocking stream: never the legacy default stream, which would serialise with other work.
class CudaStream {
 public:
  CudaStream() { LATHE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~CudaStream() {
    if (stream_) cudaStreamDestroy(stream_);
  }
  CudaStream(CudaStream&& o) noexcept : stream_(std::exchange(o.stream_, nullptr)) {}
  CudaStream& operator=(CudaStream&& o) noexcept {
    std::swap(stream_, o.stream_);
    return *this;
  }
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;

  cudaStream_t get() const { return stream_; }
  void synchronize() const { LATHE_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

 private:
  cudaStream_t stream_ = nullptr;
};

// What an event is for: timing (elapsed_ms_since) or only ordering work across streams and the
// host, which is cheaper to record and wait on without timing (cudaEventDisableTiming).
enum class EventUse { timing, ordering };

class CudaEvent {
 public:
  explicit CudaEvent(EventUse use = EventUse::timing) {
    LATHE_CUDA_CHECK(
        cudaEventCreateWithFlags(&event_, use == EventUse::timing ? cudaEventDefault : cudaEventDisableTiming));
  }
  ~CudaEvent() {
    if (event_) cudaEventDestroy(event_);
  }
  CudaEvent(CudaEvent&& o) noexcept : event_(std::exchange(o.event_, nullptr)) {}
  CudaEvent& operator=(CudaEvent&& o) noexcept {
    std::swap(event_, o.event_);
    return *this;
  }
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;

  cudaEvent_t get() const { return event_; }
  void record(cudaStream_t stream) { LATHE_CUDA_CHECK(cudaEventRecord(event_, stream)); }
  // Milliseconds from `start` to this event; both must have completed.
  float elapsed_ms_since(const CudaEvent& start) const {
    float ms = 0;
    LATHE_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
    return ms;
  }

 private:
  cudaEvent_t event_ = nullptr;
};

// An instantiated CUDA graph (cudaGraphExec_t), made by capturing the work a callable queues on
// `stream` (which must not be the legacy default stream). Replayed with launch(stream).
class CudaGraphExec {
 public:
  CudaGraphExec() = default;
  template <typename Queue>
  static CudaGraphExec capture(cudaStream_t stream, Queue&& queue) {
    LATHE_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    try {
      queue();
    } catch (...) {
      cudaGraph_t broken = nullptr;
      cudaStreamEndCapture(stream, &broken);
      if (broken) cudaGraphDestroy(broken);
      throw;
    }
    cudaGraph_t graph = nullptr;
    LATHE_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    CudaGraphExec out;
    const cudaError_t made = cudaGraphInstantiate(&out.exec_, graph, 0);
    cudaGraphDestroy(graph);  // the executable graph keeps what it needs
    LATHE_CUDA_CHECK(made);
    return out;
  }
  ~CudaGraphExec() {
    if (exec_) cudaGraphExecDestroy(exec_);
  }
  CudaGraphExec(CudaGraphExec&& o) noexcept : exec_(std::exchange(o.exec_, nullptr)) {}
  CudaGraphExec& operator=(CudaGraphExec&& o) noexcept {
    std::swap(exec_, o.exec_);
    return *this;
  }
  CudaGraphExec(const CudaGraphExec&) = delete;
  CudaGraphExec& operator=(const CudaGraphExec&) = delete;

  void launch(cudaStream_t stream) const { LATHE_CUDA_CHECK(cudaGraphLaunch(exec_, stream)); }

 private:
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace lathe
