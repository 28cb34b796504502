// The profile pass on the GPU (runtime/profile_cuda.h). Per block, on the backend's stream:
//   1. upload the block (CudaBackend::upload) and, with a keep mask, the mask's bytes; the kept
//      row indices come from cub::DeviceSelect::Flagged;
//   2. gather the kept rows into a compact column-major block, values as sort_key() gives them
//      (one NaN, +0 for -0), so that everything after sees only kept rows;
//   3. column statistics with the existing launch_column_stats (same add_value/merge_stats as the
//      CPU), merged on the host in a fixed order;
//   4. category counts: integer atomics (shared-memory histograms flushed with 64-bit atomics when
//      a column has few labels), so the counts do not depend on scheduling;
//   5. sketch summaries: every numeric column's values become unsigned order keys (order_key:
//      unsigned order = float order, the one NaN last), a segmented sort sorts the keys, then one
//      thread block per column finds its non-missing count n and gathers the summary_rank()
//      order statistics (the same ranks the CPU takes) with the rank range of their value; only
//      those come back, for summary_from_ranks on the host. The keys are unsigned because CUB's
//      segmented sort compares small segments with operator<, under which NaN is unordered: float
//      keys with missing values came back unsorted on an H200 (2026-11-28).
// Scratch grows to the largest block and is reused, so steady state allocates nothing.
#include <cub/device/device_segmented_sort.cuh>
#include <cub/device/device_select.cuh>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>
#include <utility>

#include "kernels/column_stats_cuda.h"
#include "runtime/cuda_backend_impl.h"
#include "runtime/cuda_check.h"
#include "runtime/error.h"
#include "runtime/profile_cuda.h"
#include "runtime/quantile_sketch.h"

namespace lathe {
namespace {

constexpr int kThreads = 256;
// Categorical columns with at most this many slots (labels + missing) count in shared memory.
constexpr int kSharedSlots = 4096;

// out[c * kept + i] = sort_key(values[c * rows + row_i]) with row_i = kept_rows[i] (or i when
// kept_rows is null): the kept rows of every column, contiguous.
__global__ void __launch_bounds__(kThreads)
    gather_kept_rows_kernel(const float* __restrict__ values, std::int64_t rows, std::int64_t columns,
                            const std::int64_t* __restrict__ kept_rows, std::int64_t kept,
                            float* __restrict__ out) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t c = blockIdx.y; c < columns; c += gridDim.y) {
    const float* col = values + c * rows;
    float* dst = out + c * kept;
    for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < kept;
         i += stride) {
      const std::int64_t r = kept_rows ? kept_rows[i] : i;
      dst[i] = sort_key(col[r]);
    }
  }
}

// Counts of each categorical column's slots over one slice of its rows (blockIdx.x) for columns
// blockIdx.y, blockIdx.y + gridDim.y, ...: counts[offsets[j] + category_count_slot(code, labels[j])].
// Codes >= labels raise bad_codes[j] to the largest such code (as float bits: non-negative floats
// order like their bits). Every thread reaches every barrier: the loops' bounds are block-uniform.
__global__ void __launch_bounds__(kThreads)
    category_counts_kernel(const float* __restrict__ compact, std::int64_t kept,
                           const std::int64_t* __restrict__ columns,
                           const std::int64_t* __restrict__ labels,
                           const std::int64_t* __restrict__ offsets, std::int64_t categorical,
                           std::int64_t rows_per_slice, unsigned long long* __restrict__ counts,
                           int* __restrict__ bad_codes) {
  __shared__ unsigned int histogram[kSharedSlots];
  const std::int64_t begin = static_cast<std::int64_t>(blockIdx.x) * rows_per_slice;
  const std::int64_t end = begin + rows_per_slice < kept ? begin + rows_per_slice : kept;
  for (std::int64_t j = blockIdx.y; j < categorical; j += gridDim.y) {
    const std::int64_t k = labels[j];
    const bool in_shared = k + 1 <= kSharedSlots;
    const float* col = compact + columns[j] * kept;
    unsigned long long* out = counts + offsets[j];
    if (in_shared) {
      for (std::int64_t s = threadIdx.x; s <= k; s += blockDim.x) histogram[s] = 0u;
    }
    __syncthreads();
    for (std::int64_t r = begin + threadIdx.x; r < end; r += blockDim.x) {
      const float code = col[r];
      const std::int64_t slot = category_count_slot(code, k);
      if (slot < 0) {
        atomicMax(bad_codes + j, __float_as_int(code));
      } else if (in_shared) {
        atomicAdd(histogram + slot, 1u);
      } else {
        atomicAdd(out + slot, 1ull);
      }
    }
    __syncthreads();
    if (in_shared) {
      for (std::int64_t s = threadIdx.x; s <= k; s += blockDim.x) {
        const unsigned int h = histogram[s];
        if (h != 0u) atomicAdd(out + s, static_cast<unsigned long long>(h));
      }
    }
    __syncthreads();  // the histogram is cleared again for the next column
  }
}

// An unsigned key whose order is the order of the float v (after sort_key: +0 for -0, one NaN,
// which comes last), and back.
__device__ __forceinline__ std::uint32_t order_key(float v) {
  const std::uint32_t u = __float_as_uint(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float from_order_key(std::uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// keys[numeric[s] * kept + i] = order_key(compact[numeric[s] * kept + i]) for the numeric columns
// s = blockIdx.y, blockIdx.y + gridDim.y, ...
__global__ void __launch_bounds__(kThreads)
    order_keys_kernel(const float* __restrict__ compact, std::int64_t kept,
                      const std::int64_t* __restrict__ numeric, std::int64_t count,
                      std::uint32_t* __restrict__ keys) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t s = blockIdx.y; s < count; s += gridDim.y) {
    const std::int64_t base = numeric[s] * kept;
    for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < kept;
         i += stride) {
      keys[base + i] = order_key(compact[base + i]);
    }
  }
}

// For numeric column s (blocks s, s + gridDim.x, ...), whose kept values' order keys sorted
// ascending (NaN last) start at sorted + numeric[s] * kept: n = its non-NaN count, and for j < min(n, capacity),
// at s * capacity + j, the value p at rank summary_rank(j, n, capacity) and the rank range
// [lower, upper) of the values equal to p (binary searches on either side of that rank).
__global__ void __launch_bounds__(kThreads)
    sketch_points_kernel(const std::uint32_t* __restrict__ sorted, std::int64_t kept,
                         const std::int64_t* __restrict__ numeric, std::int64_t count,
                         std::int64_t capacity, float* __restrict__ points,
                         std::int64_t* __restrict__ lower, std::int64_t* __restrict__ upper,
                         std::int64_t* __restrict__ sizes) {
  __shared__ std::int64_t n_shared;
  for (std::int64_t s = blockIdx.x; s < count; s += gridDim.x) {
    const std::uint32_t* col = sorted + numeric[s] * kept;
    if (threadIdx.x == 0) {
      std::int64_t lo = 0, hi = kept;  // first NaN: the predicate is false...false true...true
      while (lo < hi) {
        const std::int64_t mid = lo + (hi - lo) / 2;
        const float v = from_order_key(col[mid]);
        if (v != v) {
          hi = mid;
        } else {
          lo = mid + 1;
        }
      }
      n_shared = lo;
      sizes[s] = lo;
    }
    __syncthreads();
    const std::int64_t n = n_shared;
    const std::int64_t m = n < capacity ? n : capacity;
    const std::int64_t first = s * capacity;
    for (std::int64_t j = threadIdx.x; j < m; j += blockDim.x) {
      const std::int64_t r = summary_rank(j, n, capacity);
      const std::uint32_t p = col[r];  // comparing keys compares the values
      std::int64_t lo = 0, hi = r;  // first rank in [0, r] whose value is >= p
      while (lo < hi) {
        const std::int64_t mid = lo + (hi - lo) / 2;
        if (col[mid] < p) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
      lower[first + j] = lo;
      lo = r + 1;  // first rank in [r + 1, n) whose value is > p, else n
      hi = n;
      while (lo < hi) {
        const std::int64_t mid = lo + (hi - lo) / 2;
        if (col[mid] > p) {
          hi = mid;
        } else {
          lo = mid + 1;
        }
      }
      upper[first + j] = lo;
      points[first + j] = from_order_key(p);
    }
    // The unused tail is copied back with the rest: written, so no copy reads uninitialized memory.
    for (std::int64_t j = m + threadIdx.x; j < capacity; j += blockDim.x) {
      points[first + j] = 0.0f;
      lower[first + j] = 0;
      upper[first + j] = 0;
    }
    __syncthreads();  // n_shared is rewritten for the next column
  }
}

struct SegmentBegin {
  std::int64_t rows;
  __host__ __device__ std::int64_t operator()(std::int64_t column) const { return column * rows; }
};
struct SegmentEnd {
  std::int64_t rows;
  __host__ __device__ std::int64_t operator()(std::int64_t column) const { return (column + 1) * rows; }
};

unsigned blocks_for(std::int64_t items, std::int64_t max_blocks) {
  const std::int64_t blocks = (items + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::clamp<std::int64_t>(blocks, 1, max_blocks));
}

// Grows (never shrinks) a buffer to hold `count` elements; the old one is freed first.
template <typename T>
T* ensure(DeviceBuffer<T>& buffer, std::size_t count, cudaStream_t stream) {
  if (buffer.size() < count) {
    buffer = DeviceBuffer<T>();
    buffer = DeviceBuffer<T>(count, stream);
  }
  return buffer.data();
}
template <typename T>
T* ensure(PinnedHostBuffer<T>& buffer, std::size_t count) {
  if (buffer.size() < count) {
    buffer = PinnedHostBuffer<T>();
    buffer = PinnedHostBuffer<T>(count);
  }
  return buffer.data();
}

template <typename T>
DeviceBuffer<T> upload_vector(const std::vector<T>& host, cudaStream_t stream) {
  DeviceBuffer<T> device(host.size(), stream);
  if (!host.empty()) {
    LATHE_CUDA_CHECK(cudaMemcpyAsync(device.data(), host.data(), host.size() * sizeof(T),
                                     cudaMemcpyHostToDevice, stream));
  }
  return device;
}

}  // namespace

struct CudaProfiler::Scratch {
  // The layout, on the device.
  DeviceBuffer<std::int64_t> numeric, categorical, labels, offsets;
  std::int64_t category_slots = 0;
  // Grown per block.
  PinnedHostBuffer<std::uint8_t> mask_host;
  DeviceBuffer<std::uint8_t> mask;
  DeviceBuffer<std::int64_t> kept_rows;
  DeviceBuffer<std::int64_t> selected;  // DeviceSelect's count (checked against the host's)
  DeviceBuffer<float> compact;
  DeviceBuffer<std::uint32_t> keys, sorted;  // order keys of the numeric columns, then sorted
  DeviceBuffer<unsigned char> cub_temp;
  DeviceBuffer<ColumnStats> partial;
  DeviceBuffer<unsigned long long> counts;
  DeviceBuffer<int> bad_codes;
  DeviceBuffer<float> points;
  DeviceBuffer<std::int64_t> lower, upper;
  DeviceBuffer<std::int64_t> sizes;
  PinnedHostBuffer<ColumnStats> partial_host;
  PinnedHostBuffer<unsigned long long> counts_host;
  PinnedHostBuffer<int> bad_codes_host;
  PinnedHostBuffer<float> points_host;
  PinnedHostBuffer<std::int64_t> lower_host, upper_host;
  PinnedHostBuffer<std::int64_t> sizes_host;
  PinnedHostBuffer<std::int64_t> selected_host;
};

CudaProfiler::CudaProfiler(CudaBackend& backend, ProfileLayout layout)
    : backend_(&backend), layout_(std::move(layout)), scratch_(std::make_unique<Scratch>()) {
  if (layout_.sketch_capacity < 2) throw Error("profile: sketch capacity below 2");
  LATHE_CUDA_CHECK(cudaSetDevice(backend.index()));
  const cudaStream_t stream = backend.stream();
  Scratch& s = *scratch_;
  std::vector<std::int64_t> offsets(layout_.categorical.size());
  std::int64_t slots = 0;
  for (std::size_t j = 0; j < offsets.size(); ++j) {
    offsets[j] = slots;
    slots += layout_.labels[j] + 1;
  }
  s.category_slots = slots;
  s.numeric = upload_vector(layout_.numeric, stream);
  s.categorical = upload_vector(layout_.categorical, stream);
  s.labels = upload_vector(layout_.labels, stream);
  s.offsets = upload_vector(offsets, stream);
  s.selected = DeviceBuffer<std::int64_t>(1, stream);
  s.selected_host = PinnedHostBuffer<std::int64_t>(1);
  LATHE_CUDA_CHECK(cudaStreamSynchronize(stream));
}

CudaProfiler::~CudaProfiler() = default;

void CudaProfiler::profile_block(const ColumnBlockView& block, std::span<const std::uint8_t> keep_rows,
                                 BlockProfile& out) {
  const ProfileLayout& layout = layout_;
  const std::int64_t rows = block.rows;
  const std::int64_t columns = block.columns;
  if (columns != layout.columns) {
    throw Error("profile (cuda): the block has " + std::to_string(columns) + " columns, the layout " +
                std::to_string(layout.columns));
  }
  if (!keep_rows.empty() && static_cast<std::int64_t>(keep_rows.size()) != rows) {
    throw Error("profile (cuda): the keep mask has " + std::to_string(keep_rows.size()) +
                " rows, the block " + std::to_string(rows));
  }
  out.reset(layout);
  const std::int64_t kept =
      keep_rows.empty() ? rows
                        : static_cast<std::int64_t>(std::count_if(
                              keep_rows.begin(), keep_rows.end(), [](std::uint8_t k) { return k != 0; }));
  out.kept_rows = kept;
  if (kept == 0 || columns == 0) return;

  Scratch& s = *scratch_;
  CudaBackend& backend = *backend_;
  LATHE_CUDA_CHECK(cudaSetDevice(backend.index()));
  const cudaStream_t stream = backend.stream();
  const std::int64_t numeric = static_cast<std::int64_t>(layout.numeric.size());
  const std::int64_t categorical = static_cast<std::int64_t>(layout.categorical.size());
  const std::int64_t capacity = layout.sketch_capacity;
  const std::size_t kept_values = static_cast<std::size_t>(kept) * static_cast<std::size_t>(columns);

  // 1. Upload; the kept rows' indices.
  const float* values = backend.upload(block.values, static_cast<std::size_t>(rows * columns));
  const std::int64_t* kept_index = nullptr;
  if (kept < rows) {
    std::uint8_t* mask_host = ensure(s.mask_host, static_cast<std::size_t>(rows));
    std::memcpy(mask_host, keep_rows.data(), static_cast<std::size_t>(rows));
    std::uint8_t* mask = ensure(s.mask, static_cast<std::size_t>(rows), stream);
    LATHE_CUDA_CHECK(cudaMemcpyAsync(mask, mask_host, static_cast<std::size_t>(rows),
                                     cudaMemcpyHostToDevice, stream));
    std::int64_t* index = ensure(s.kept_rows, static_cast<std::size_t>(kept), stream);
    const thrust::counting_iterator<std::int64_t> row_numbers(0);
    std::size_t temp_bytes = 0;
    LATHE_CUDA_CHECK(cub::DeviceSelect::Flagged(nullptr, temp_bytes, row_numbers, mask, index,
                                                s.selected.data(), rows, stream));
    void* temp = ensure(s.cub_temp, temp_bytes, stream);
    LATHE_CUDA_CHECK(cub::DeviceSelect::Flagged(temp, temp_bytes, row_numbers, mask, index,
                                                s.selected.data(), rows, stream));
    LATHE_CUDA_CHECK(cudaMemcpyAsync(s.selected_host.data(), s.selected.data(), sizeof(std::int64_t),
                                     cudaMemcpyDeviceToHost, stream));
    kept_index = index;
  }

  // 2. The compact block of kept rows.
  float* compact = ensure(s.compact, kept_values, stream);
  {
    const dim3 grid(blocks_for(kept, 4096), static_cast<unsigned>(std::min<std::int64_t>(columns, 65535)));
    gather_kept_rows_kernel<<<grid, kThreads, 0, stream>>>(values, rows, columns, kept_index, kept,
                                                           compact);
    LATHE_CUDA_CHECK_LAUNCH();
  }

  // 3. Column statistics (every column; the host keeps the numeric ones).
  const int splits = column_stats_splits(kept, columns, backend.multiprocessors());
  const std::size_t partial_count = static_cast<std::size_t>(columns) * static_cast<std::size_t>(splits);
  ColumnStats* partial = ensure(s.partial, partial_count, stream);
  launch_column_stats(compact, kept, columns, splits, partial, stream);
  ColumnStats* partial_host = ensure(s.partial_host, partial_count);
  LATHE_CUDA_CHECK(cudaMemcpyAsync(partial_host, partial, partial_count * sizeof(ColumnStats),
                                   cudaMemcpyDeviceToHost, stream));

  // 4. Category counts.
  const std::size_t slots = static_cast<std::size_t>(s.category_slots);
  unsigned long long* counts_host = nullptr;
  int* bad_codes_host = nullptr;
  if (categorical > 0) {
    unsigned long long* counts = ensure(s.counts, slots, stream);
    int* bad_codes = ensure(s.bad_codes, static_cast<std::size_t>(categorical), stream);
    LATHE_CUDA_CHECK(cudaMemsetAsync(counts, 0, slots * sizeof(unsigned long long), stream));
    LATHE_CUDA_CHECK(cudaMemsetAsync(bad_codes, 0xFF, static_cast<std::size_t>(categorical) * sizeof(int),
                                     stream));  // -1: no bad code
    // Slices of at most 2^31 rows keep the 32-bit shared histograms from overflowing.
    const std::int64_t max_slice = std::int64_t{1} << 31;
    const std::int64_t slices = std::max<std::int64_t>(
        std::min<std::int64_t>((kept + 16383) / 16384, 1024), (kept + max_slice - 1) / max_slice);
    const std::int64_t rows_per_slice = (kept + slices - 1) / slices;
    const dim3 grid(static_cast<unsigned>(slices),
                    static_cast<unsigned>(std::min<std::int64_t>(categorical, 65535)));
    category_counts_kernel<<<grid, kThreads, 0, stream>>>(compact, kept, s.categorical.data(),
                                                          s.labels.data(), s.offsets.data(), categorical,
                                                          rows_per_slice, counts, bad_codes);
    LATHE_CUDA_CHECK_LAUNCH();
    counts_host = ensure(s.counts_host, slots);
    bad_codes_host = ensure(s.bad_codes_host, static_cast<std::size_t>(categorical));
    LATHE_CUDA_CHECK(cudaMemcpyAsync(counts_host, counts, slots * sizeof(unsigned long long),
                                     cudaMemcpyDeviceToHost, stream));
    LATHE_CUDA_CHECK(cudaMemcpyAsync(bad_codes_host, bad_codes, static_cast<std::size_t>(categorical) * sizeof(int),
                                     cudaMemcpyDeviceToHost, stream));
  }

  // 5. Sketch summaries: sort each numeric column, gather its order statistics.
  float* points_host = nullptr;
  std::int64_t* lower_host = nullptr;
  std::int64_t* upper_host = nullptr;
  std::int64_t* sizes_host = nullptr;
  if (numeric > 0) {
    std::uint32_t* keys = ensure(s.keys, kept_values, stream);
    std::uint32_t* sorted = ensure(s.sorted, kept_values, stream);
    const dim3 key_grid(blocks_for(kept, 1024), static_cast<unsigned>(std::min<std::int64_t>(numeric, 65535)));
    order_keys_kernel<<<key_grid, kThreads, 0, stream>>>(compact, kept, s.numeric.data(), numeric, keys);
    LATHE_CUDA_CHECK_LAUNCH();
    const auto begins = thrust::make_transform_iterator(s.numeric.data(), SegmentBegin{kept});
    const auto ends = thrust::make_transform_iterator(s.numeric.data(), SegmentEnd{kept});
    std::size_t temp_bytes = 0;
    LATHE_CUDA_CHECK(cub::DeviceSegmentedSort::SortKeys(nullptr, temp_bytes, keys, sorted,
                                                        static_cast<std::int64_t>(kept_values), numeric,
                                                        begins, ends, stream));
    void* temp = ensure(s.cub_temp, temp_bytes, stream);
    LATHE_CUDA_CHECK(cub::DeviceSegmentedSort::SortKeys(temp, temp_bytes, keys, sorted,
                                                        static_cast<std::int64_t>(kept_values), numeric,
                                                        begins, ends, stream));
    const std::size_t point_count = static_cast<std::size_t>(numeric * capacity);
    float* points = ensure(s.points, point_count, stream);
    std::int64_t* lower = ensure(s.lower, point_count, stream);
    std::int64_t* upper = ensure(s.upper, point_count, stream);
    std::int64_t* sizes = ensure(s.sizes, static_cast<std::size_t>(numeric), stream);
    const unsigned grid = static_cast<unsigned>(std::min<std::int64_t>(numeric, 1 << 20));
    sketch_points_kernel<<<grid, kThreads, 0, stream>>>(sorted, kept, s.numeric.data(), numeric, capacity,
                                                        points, lower, upper, sizes);
    LATHE_CUDA_CHECK_LAUNCH();
    points_host = ensure(s.points_host, point_count);
    lower_host = ensure(s.lower_host, point_count);
    upper_host = ensure(s.upper_host, point_count);
    sizes_host = ensure(s.sizes_host, static_cast<std::size_t>(numeric));
    LATHE_CUDA_CHECK(cudaMemcpyAsync(points_host, points, point_count * sizeof(float),
                                     cudaMemcpyDeviceToHost, stream));
    LATHE_CUDA_CHECK(cudaMemcpyAsync(lower_host, lower, point_count * sizeof(std::int64_t),
                                     cudaMemcpyDeviceToHost, stream));
    LATHE_CUDA_CHECK(cudaMemcpyAsync(upper_host, upper, point_count * sizeof(std::int64_t),
                                     cudaMemcpyDeviceToHost, stream));
    LATHE_CUDA_CHECK(cudaMemcpyAsync(sizes_host, sizes, static_cast<std::size_t>(numeric) * sizeof(std::int64_t),
                                     cudaMemcpyDeviceToHost, stream));
  }

  LATHE_CUDA_CHECK(cudaStreamSynchronize(stream));

  if (kept < rows && *s.selected_host.data() != kept) {
    throw Error("profile (cuda): the device kept " + std::to_string(*s.selected_host.data()) +
                " rows, the mask has " + std::to_string(kept));
  }
  for (std::int64_t k = 0; k < numeric; ++k) {
    const std::int64_t c = layout.numeric[static_cast<std::size_t>(k)];
    ColumnStats acc;
    for (int p = 0; p < splits; ++p) acc = merge_stats(acc, partial_host[c * splits + p]);
    out.stats[static_cast<std::size_t>(k)] = acc;
    out.sketch_sizes[static_cast<std::size_t>(k)] = sizes_host[k];
    const std::size_t m = static_cast<std::size_t>(std::min(sizes_host[k], capacity));
    const std::size_t first = static_cast<std::size_t>(k * capacity);
    std::memcpy(out.sketch_points.data() + first, points_host + first, m * sizeof(float));
    std::memcpy(out.sketch_lower.data() + first, lower_host + first, m * sizeof(std::int64_t));
    std::memcpy(out.sketch_upper.data() + first, upper_host + first, m * sizeof(std::int64_t));
  }
  for (std::size_t i = 0; i < slots; ++i) out.category_counts[i] = static_cast<std::int64_t>(counts_host[i]);
  for (std::int64_t j = 0; j < categorical; ++j) {
    const int bits = bad_codes_host[j];
    out.bad_codes[static_cast<std::size_t>(j)] = bits < 0 ? -1.0f : std::bit_cast<float>(bits);
  }
}

}  // namespace lathe
