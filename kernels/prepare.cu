// The fused preparation kernel (impute + clip + scale + indicators + crosses + categorical slots)
// and the expanded-matrix materializer, around the shared formulas of kernels/prepare_formulas.h.
#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels/prepare_formulas.h"
#include "runtime/cuda_backend_impl.h"
#include "runtime/cuda_check.h"
#include "runtime/prepare_cuda.h"

namespace lathe {

namespace {

constexpr int kThreads = 256;

// Bytes of device memory owned with plain cudaMalloc/cudaFree: the per-binding tables and output
// buffers live as long as the BoundPreparation, which may outlive the stream of the context it was
// used with, so they are not stream-ordered. Allocated once per binding (and when a larger block
// arrives), never per block.
class DeviceBytes {
 public:
  DeviceBytes() = default;
  explicit DeviceBytes(std::size_t bytes) : bytes_(bytes) {
    if (bytes_ > 0) LATHE_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), bytes_));
  }
  ~DeviceBytes() {
    if (data_) cudaFree(data_);
  }
  DeviceBytes(DeviceBytes&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBytes& operator=(DeviceBytes&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;

  unsigned char* data() const { return data_; }
  std::size_t size() const { return bytes_; }

 private:
  unsigned char* data_ = nullptr;
  std::size_t bytes_ = 0;
};

constexpr std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }

// One thread per row: consecutive threads read and write consecutive rows of each column, so every
// load and store coalesces. The descriptors are the same for all threads (uniform loads of the
// small tables, served from cache); the formulas are the CPU's.
__global__ void __launch_bounds__(kThreads)
    prepare_rows_kernel(PrepareTables t, const float* __restrict__ input, std::int64_t rows,
                        float* __restrict__ dense, std::int32_t* __restrict__ slot,
                        float* __restrict__ value) {
  const std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const std::int64_t dense_count = t.dense_features();
  for (std::int64_t f = 0; f < dense_count; ++f) {
    const DenseFeature d = dense_feature(t, input, rows, f);
    dense[f * rows + r] = dense_value(d, r);
  }
  for (std::int32_t g = 0; g < t.groups; ++g) {
    const SparseFeature s = sparse_feature(t, input, rows, g);
    std::int32_t sl = 0;
    float v = 0.0f;
    sparse_entry(s, r, sl, v);
    slot[g * rows + r] = sl;
    value[g * rows + r] = v;
  }
}

void launch_prepare_rows(const PrepareTables& t, const float* input, std::int64_t rows,
                         float* dense, std::int32_t* slot, float* value, cudaStream_t stream) {
  if (rows <= 0) return;
  const std::int64_t blocks = (rows + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffffLL)
    throw Error("apply_preparation: block of " + std::to_string(rows) + " rows is too large");
  prepare_rows_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(t, input, rows, dense,
                                                                              slot, value);
  LATHE_CUDA_CHECK_LAUNCH();
}

// Grid-stride over the rows x width matrix, column-major: consecutive threads write consecutive
// rows.
__global__ void __launch_bounds__(kThreads)
    materialize_kernel(PreparedRowsView rows, ExpandedLayout layout, std::int64_t width,
                       float* __restrict__ out) {
  const std::int64_t total = rows.rows * width;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const std::int64_t k = i / rows.rows;
    const std::int64_t r = i - k * rows.rows;
    out[i] = expanded_feature(rows, layout, r, k);
  }
}

}  // namespace

// The device copy of a binding's tables (one allocation, PrepareTables pointing into it) and the
// output buffers of the host-to-host entry point, grown to the largest block seen.
struct PreparationDeviceState {
  int device = -1;
  DeviceBytes tables_memory;
  PrepareTables tables;
  DeviceBytes output_memory;
};

namespace {

void upload_tables(CudaBackend& backend, const BoundPreparation& bound,
                   PreparationDeviceState& state) {
  HostPrepareTables host;
  build_prepare_tables(bound, host);
  const PrepareTables& h = host.tables;

  // Layout of the blob: each array 16-byte aligned.
  std::size_t size = 0;
  const auto place = [&size](std::size_t bytes) {
    size = align_up(size, 16);
    const std::size_t at = size;
    size += bytes;
    return at;
  };
  const std::size_t at_transform = place(host.transform.size() * sizeof(NumericTransform));
  const std::size_t at_numeric_input = place(host.numeric_input.size() * sizeof(std::int32_t));
  const std::size_t at_indicator = place(host.indicator.size() * sizeof(std::int32_t));
  const std::size_t at_cross = place(host.cross.size() * sizeof(std::int32_t));
  const std::size_t at_categorical = place(host.categorical.size() * sizeof(CategoricalTable));
  const std::size_t at_group = place(host.group.size() * sizeof(SparseGroupTable));
  const std::size_t at_bins = place(host.bins.size() * sizeof(BinsTable));
  const std::size_t at_bin_edge = place(host.bin_edge.size() * sizeof(float));
  const std::size_t at_bin_hash = place(host.bin_hash.size() * sizeof(std::uint64_t));
  std::vector<std::size_t> at_remap, at_hash;
  for (const auto& c : host.categorical) {
    at_remap.push_back(place(static_cast<std::size_t>(c.remap_size) * sizeof(std::int32_t)));
    // A column no cross reads has no slot hashes (BoundPreparation::slot_hashes).
    at_hash.push_back(c.slot_hash ? place(static_cast<std::size_t>(c.unknown_slot + 1) * sizeof(std::uint64_t)) : 0);
  }
  size = std::max<std::size_t>(align_up(size, 16), 16);

  DeviceBytes memory(size);
  unsigned char* base = memory.data();
  std::vector<unsigned char> blob(size, 0);
  const auto put = [&blob](std::size_t at, const void* src, std::size_t bytes) {
    if (bytes) std::memcpy(blob.data() + at, src, bytes);
  };
  put(at_transform, host.transform.data(), host.transform.size() * sizeof(NumericTransform));
  put(at_numeric_input, host.numeric_input.data(),
      host.numeric_input.size() * sizeof(std::int32_t));
  put(at_indicator, host.indicator.data(), host.indicator.size() * sizeof(std::int32_t));
  put(at_cross, host.cross.data(), host.cross.size() * sizeof(std::int32_t));
  std::vector<CategoricalTable> categorical = host.categorical;  // with device pointers
  for (std::size_t j = 0; j < categorical.size(); ++j) {
    const CategoricalTable& c = host.categorical[j];
    put(at_remap[j], c.remap, static_cast<std::size_t>(c.remap_size) * sizeof(std::int32_t));
    categorical[j].remap = reinterpret_cast<const std::int32_t*>(base + at_remap[j]);
    if (c.slot_hash) {
      put(at_hash[j], c.slot_hash, static_cast<std::size_t>(c.unknown_slot + 1) * sizeof(std::uint64_t));
      categorical[j].slot_hash = reinterpret_cast<const std::uint64_t*>(base + at_hash[j]);
    }
  }
  put(at_categorical, categorical.data(), categorical.size() * sizeof(CategoricalTable));
  put(at_group, host.group.data(), host.group.size() * sizeof(SparseGroupTable));
  put(at_bins, host.bins.data(), host.bins.size() * sizeof(BinsTable));
  put(at_bin_edge, host.bin_edge.data(), host.bin_edge.size() * sizeof(float));
  put(at_bin_hash, host.bin_hash.data(), host.bin_hash.size() * sizeof(std::uint64_t));
  LATHE_CUDA_CHECK(
      cudaMemcpyAsync(base, blob.data(), size, cudaMemcpyHostToDevice, backend.stream()));
  LATHE_CUDA_CHECK(cudaStreamSynchronize(backend.stream()));  // `blob` is pageable and local

  PrepareTables d = h;
  d.transform = reinterpret_cast<const NumericTransform*>(base + at_transform);
  d.numeric_input = reinterpret_cast<const std::int32_t*>(base + at_numeric_input);
  d.indicator = reinterpret_cast<const std::int32_t*>(base + at_indicator);
  d.cross = reinterpret_cast<const std::int32_t*>(base + at_cross);
  d.categorical = reinterpret_cast<const CategoricalTable*>(base + at_categorical);
  d.group = reinterpret_cast<const SparseGroupTable*>(base + at_group);
  d.bins = reinterpret_cast<const BinsTable*>(base + at_bins);
  d.bin_edge = reinterpret_cast<const float*>(base + at_bin_edge);
  d.bin_hash = reinterpret_cast<const std::uint64_t*>(base + at_bin_hash);
  state.tables_memory = std::move(memory);
  state.tables = d;
  state.device = backend.index();
}

PreparationDeviceState& device_state_for(CudaBackend& backend, const BoundPreparation& bound) {
  if (!bound.device_state) bound.device_state = std::make_shared<PreparationDeviceState>();
  PreparationDeviceState& state = *bound.device_state;
  if (state.device != backend.index()) {
    state.output_memory = DeviceBytes();  // on the previous device
    upload_tables(backend, bound, state);
  }
  return state;
}

}  // namespace

void apply_preparation_cuda_device(CudaBackend& backend, const BoundPreparation& bound,
                                   const ColumnBlockView& device_input, float* dense,
                                   std::int32_t* slot, float* value) {
  LATHE_CUDA_CHECK(cudaSetDevice(backend.index()));
  const PreparationDeviceState& state = device_state_for(backend, bound);
  launch_prepare_rows(state.tables, device_input.values, device_input.rows, dense, slot, value,
                      backend.stream());
}

void apply_preparation_cuda(CudaBackend& backend, const BoundPreparation& bound,
                            const ColumnBlockView& host_input, PreparedBlock& out) {
  LATHE_CUDA_CHECK(cudaSetDevice(backend.index()));
  PreparationDeviceState& state = device_state_for(backend, bound);
  const std::int64_t rows = host_input.rows;
  if (rows == 0) return;
  const std::size_t dense_bytes = out.dense.size() * sizeof(float);
  const std::size_t slot_bytes = out.slot.size() * sizeof(std::int32_t);
  const std::size_t value_bytes = out.value.size() * sizeof(float);
  const std::size_t at_slot = align_up(dense_bytes, 256);
  const std::size_t at_value = at_slot + align_up(slot_bytes, 256);
  const std::size_t needed = std::max<std::size_t>(at_value + value_bytes, 256);
  if (state.output_memory.size() < needed) {
    state.output_memory = DeviceBytes();  // free first: the old and new buffers need not coexist
    state.output_memory = DeviceBytes(needed);
  }
  unsigned char* base = state.output_memory.data();
  float* dense = reinterpret_cast<float*>(base);
  std::int32_t* slot = reinterpret_cast<std::int32_t*>(base + at_slot);
  float* value = reinterpret_cast<float*>(base + at_value);

  const float* input =
      backend.upload(host_input.values, static_cast<std::size_t>(rows * host_input.columns));
  launch_prepare_rows(state.tables, input, rows, dense, slot, value, backend.stream());
  cudaStream_t stream = backend.stream();
  if (dense_bytes)
    LATHE_CUDA_CHECK(
        cudaMemcpyAsync(out.dense.data(), dense, dense_bytes, cudaMemcpyDeviceToHost, stream));
  if (slot_bytes)
    LATHE_CUDA_CHECK(
        cudaMemcpyAsync(out.slot.data(), slot, slot_bytes, cudaMemcpyDeviceToHost, stream));
  if (value_bytes)
    LATHE_CUDA_CHECK(
        cudaMemcpyAsync(out.value.data(), value, value_bytes, cudaMemcpyDeviceToHost, stream));
  LATHE_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void materialize_expanded_cuda(CudaBackend& backend, const FittedPreparation& fitted,
                               const PreparedBlock& block, std::vector<float>& out) {
  LATHE_CUDA_CHECK(cudaSetDevice(backend.index()));
  cudaStream_t stream = backend.stream();
  const std::int64_t rows = block.rows;
  const std::int64_t width = fitted.expanded_features();
  const std::vector<std::int64_t> offsets = fitted.group_offsets();
  // Per call temporaries (stream-ordered): materializing is for checking and small exports.
  DeviceBuffer<float> dense(block.dense.size(), stream);
  DeviceBuffer<std::int32_t> slot(block.slot.size(), stream);
  DeviceBuffer<float> value(block.value.size(), stream);
  DeviceBuffer<std::int64_t> group_offset(offsets.size(), stream);
  DeviceBuffer<float> matrix(static_cast<std::size_t>(rows * width), stream);
  const auto to_device = [stream](void* dst, const void* src, std::size_t bytes) {
    if (bytes) LATHE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
  };
  to_device(dense.data(), block.dense.data(), block.dense.size() * sizeof(float));
  to_device(slot.data(), block.slot.data(), block.slot.size() * sizeof(std::int32_t));
  to_device(value.data(), block.value.data(), block.value.size() * sizeof(float));
  to_device(group_offset.data(), offsets.data(), offsets.size() * sizeof(std::int64_t));
  const PreparedRowsView view{dense.data(), slot.data(), value.data(), rows};
  const ExpandedLayout layout{fitted.dense_features(),
                              static_cast<std::int32_t>(fitted.sparse.size()), group_offset.data()};
  const std::int64_t total = rows * width;
  const std::int64_t blocks = std::min<std::int64_t>((total + kThreads - 1) / kThreads, 65536);
  materialize_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(view, layout, width,
                                                                             matrix.data());
  LATHE_CUDA_CHECK_LAUNCH();
  LATHE_CUDA_CHECK(cudaMemcpyAsync(out.data(), matrix.data(),
                                   static_cast<std::size_t>(total) * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream));
  LATHE_CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace lathe
