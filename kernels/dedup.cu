// Duplicate detection on the GPU (runtime/dedup_cuda.h): row hashes of a block, and the (hash, row)
// sort over the whole table that finds the groups of rows sharing a hash. The hash is
// row_hash_step of kernels/prepare_formulas.h, the formula the CPU backend folds too.
#include <algorithm>
#include <cstring>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_select.cuh>
#include <string>

#include "kernels/prepare_formulas.h"
#include "runtime/cuda_backend_impl.h"
#include "runtime/cuda_check.h"
#include "runtime/cuda_memory.h"
#include "runtime/dedup_cuda.h"
#include "runtime/error.h"

namespace lathe {
namespace {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n items: one item a thread up to a few waves of the device,
// then each thread strides over several items.
unsigned grid_for(std::int64_t n, int multiprocessors) {
  const std::int64_t needed = (n + kThreads - 1) / kThreads;
  const std::int64_t cap = static_cast<std::int64_t>(std::max(1, multiprocessors)) * 64;
  return static_cast<unsigned>(std::clamp<std::int64_t>(needed, 1, cap));
}

// A thread a row: consecutive threads read consecutive rows of each column, so every column's loads
// coalesce. Columns are folded in order, as on the CPU.
__global__ void __launch_bounds__(kThreads)
    row_hash_kernel(const float* __restrict__ values, std::int64_t rows, std::int64_t columns,
                    std::uint64_t* __restrict__ out) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < rows;
       r += stride) {
    std::uint64_t h = kRowHashSeed;
    for (std::int64_t c = 0; c < columns; ++c) h = row_hash_step(h, values[c * rows + r]);
    out[r] = h;
  }
}

__global__ void __launch_bounds__(kThreads)
    row_index_kernel(std::int64_t* __restrict__ out, std::int64_t n) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    out[i] = i;
  }
}

// flags[i] = 1 when sorted key i equals a neighbour: the pair belongs to a group of shared hashes.
__global__ void __launch_bounds__(kThreads)
    flag_shared_kernel(const std::uint64_t* __restrict__ keys, std::int64_t n,
                       std::uint8_t* __restrict__ flags) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const std::uint64_t k = keys[i];
    const bool shared = (i > 0 && keys[i - 1] == k) || (i + 1 < n && keys[i + 1] == k);
    flags[i] = shared ? 1 : 0;
  }
}

// Allocates `count` elements on `stream`, or returns false when the device is out of memory: a
// recoverable condition (STYLE.md rule 5). The allocation is tried first through the return code
// (the failure's error state is cleared, so that the next launch check does not report it); the
// memory then returns to the stream's pool, which serves the buffer's own allocation from it. Any
// other error throws.
template <typename T>
bool try_allocate(DeviceBuffer<T>& buffer, std::size_t count, cudaStream_t stream) {
  if (count == 0) {
    buffer = DeviceBuffer<T>();
    return true;
  }
  void* probe = nullptr;
  const cudaError_t e = cudaMallocAsync(&probe, count * sizeof(T), stream);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    return false;
  }
  LATHE_CUDA_CHECK(e);
  LATHE_CUDA_CHECK(cudaFreeAsync(probe, stream));
  buffer = DeviceBuffer<T>(count, stream);
  return true;
}

}  // namespace

struct CudaRowHasher::Impl {
  explicit Impl(CudaBackend& b) : backend(b) {}
  CudaBackend& backend;
  DeviceBuffer<std::uint64_t> device_hashes;
  PinnedHostBuffer<std::uint64_t> host_hashes;
};

CudaRowHasher::CudaRowHasher(CudaBackend& backend) : impl_(std::make_unique<Impl>(backend)) {}

CudaRowHasher::~CudaRowHasher() = default;

void CudaRowHasher::hash(const ColumnBlockView& block, std::span<std::uint64_t> out) {
  if (static_cast<std::int64_t>(out.size()) != block.rows) {
    throw Error("row hashes: output has " + std::to_string(out.size()) + " entries for " +
                std::to_string(block.rows) + " rows");
  }
  if (block.rows == 0) return;
  Impl& m = *impl_;
  CudaBackend& b = m.backend;
  LATHE_CUDA_CHECK(cudaSetDevice(b.index()));
  const std::size_t rows = static_cast<std::size_t>(block.rows);
  const float* values = b.upload(block.values, rows * static_cast<std::size_t>(block.columns));
  if (m.device_hashes.size() < rows)
    m.device_hashes = DeviceBuffer<std::uint64_t>(rows, b.stream());
  if (m.host_hashes.size() < rows) m.host_hashes = PinnedHostBuffer<std::uint64_t>(rows);
  row_hash_kernel<<<grid_for(block.rows, b.multiprocessors()), kThreads, 0, b.stream()>>>(
      values, block.rows, block.columns, m.device_hashes.data());
  LATHE_CUDA_CHECK_LAUNCH();
  LATHE_CUDA_CHECK(cudaMemcpyAsync(m.host_hashes.data(), m.device_hashes.data(),
                                   rows * sizeof(std::uint64_t), cudaMemcpyDeviceToHost,
                                   b.stream()));
  LATHE_CUDA_CHECK(cudaStreamSynchronize(b.stream()));
  std::memcpy(out.data(), m.host_hashes.data(), rows * sizeof(std::uint64_t));
}

std::optional<std::vector<HashedRow>> candidate_groups_cuda(CudaBackend& b,
                                                            std::span<const std::uint64_t> hashes) {
  const std::int64_t n = static_cast<std::int64_t>(hashes.size());
  if (n < 2) return std::vector<HashedRow>{};
  LATHE_CUDA_CHECK(cudaSetDevice(b.index()));
  const cudaStream_t stream = b.stream();
  const std::size_t count = hashes.size();

  // One temporary buffer serves the sort and both selections, one after the other on the stream.
  std::size_t sort_bytes = 0, select_keys_bytes = 0, select_rows_bytes = 0;
  {
    cub::DoubleBuffer<std::uint64_t> keys(nullptr, nullptr);
    cub::DoubleBuffer<std::int64_t> rows(nullptr, nullptr);
    LATHE_CUDA_CHECK(
        cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, keys, rows, n, 0, 64, stream));
    // The same argument types as the calls below, so the same instantiations size their storage.
    LATHE_CUDA_CHECK(cub::DeviceSelect::Flagged(
        nullptr, select_keys_bytes, static_cast<std::uint64_t*>(nullptr),
        static_cast<std::uint8_t*>(nullptr), static_cast<std::uint64_t*>(nullptr),
        static_cast<std::int64_t*>(nullptr), n, stream));
    LATHE_CUDA_CHECK(cub::DeviceSelect::Flagged(
        nullptr, select_rows_bytes, static_cast<std::int64_t*>(nullptr),
        static_cast<std::uint8_t*>(nullptr), static_cast<std::int64_t*>(nullptr),
        static_cast<std::int64_t*>(nullptr), n, stream));
  }
  // Never 0: CUB reads a null temporary pointer as a size query.
  const std::size_t temp_bytes =
      std::max<std::size_t>({sort_bytes, select_keys_bytes, select_rows_bytes, 16});

  // Keys and rows twice (the radix sort's double buffers; the selections then reuse the idle
  // halves as their outputs), a flag a row, the temporary storage.
  const std::size_t needed =
      count * (2 * sizeof(std::uint64_t) + 2 * sizeof(std::int64_t) + sizeof(std::uint8_t)) +
      temp_bytes;
  std::size_t free_bytes = 0, total_bytes = 0;
  LATHE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  if (needed > free_bytes) return std::nullopt;

  DeviceBuffer<std::uint64_t> keys_a, keys_b;
  DeviceBuffer<std::int64_t> rows_a, rows_b, selected;
  DeviceBuffer<std::uint8_t> flags;
  DeviceBuffer<unsigned char> temp;
  if (!try_allocate(keys_a, count, stream) || !try_allocate(keys_b, count, stream) ||
      !try_allocate(rows_a, count, stream) || !try_allocate(rows_b, count, stream) ||
      !try_allocate(flags, count, stream) || !try_allocate(temp, temp_bytes, stream) ||
      !try_allocate(selected, 2, stream)) {
    return std::nullopt;  // the buffers allocated so far are freed on the stream
  }

  LATHE_CUDA_CHECK(cudaMemcpyAsync(keys_a.data(), hashes.data(), count * sizeof(std::uint64_t),
                                   cudaMemcpyHostToDevice, stream));
  const unsigned grid = grid_for(n, b.multiprocessors());
  row_index_kernel<<<grid, kThreads, 0, stream>>>(rows_a.data(), n);
  LATHE_CUDA_CHECK_LAUNCH();

  // LSD radix sort is stable: rows of equal hash stay in ascending row order.
  cub::DoubleBuffer<std::uint64_t> keys(keys_a.data(), keys_b.data());
  cub::DoubleBuffer<std::int64_t> rows(rows_a.data(), rows_b.data());
  std::size_t bytes = temp_bytes;
  LATHE_CUDA_CHECK(
      cub::DeviceRadixSort::SortPairs(temp.data(), bytes, keys, rows, n, 0, 64, stream));

  flag_shared_kernel<<<grid, kThreads, 0, stream>>>(keys.Current(), n, flags.data());
  LATHE_CUDA_CHECK_LAUNCH();
  bytes = temp_bytes;
  LATHE_CUDA_CHECK(cub::DeviceSelect::Flagged(temp.data(), bytes, keys.Current(), flags.data(),
                                              keys.Alternate(), selected.data(), n, stream));
  bytes = temp_bytes;
  LATHE_CUDA_CHECK(cub::DeviceSelect::Flagged(temp.data(), bytes, rows.Current(), flags.data(),
                                              rows.Alternate(), selected.data() + 1, n, stream));
  std::int64_t selected_host[2] = {0, 0};
  LATHE_CUDA_CHECK(cudaMemcpyAsync(selected_host, selected.data(), sizeof selected_host,
                                   cudaMemcpyDeviceToHost, stream));
  LATHE_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (selected_host[0] != selected_host[1] || selected_host[0] < 0 || selected_host[0] > n) {
    throw Error("candidate groups: the GPU selected " + std::to_string(selected_host[0]) +
                " hashes and " + std::to_string(selected_host[1]) + " rows of " +
                std::to_string(n));
  }

  const std::size_t members = static_cast<std::size_t>(selected_host[0]);
  std::vector<std::uint64_t> member_hashes(members);
  std::vector<std::int64_t> member_rows(members);
  if (members > 0) {
    LATHE_CUDA_CHECK(cudaMemcpyAsync(member_hashes.data(), keys.Alternate(),
                                     members * sizeof(std::uint64_t), cudaMemcpyDeviceToHost,
                                     stream));
    LATHE_CUDA_CHECK(cudaMemcpyAsync(member_rows.data(), rows.Alternate(),
                                     members * sizeof(std::int64_t), cudaMemcpyDeviceToHost,
                                     stream));
    LATHE_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  std::vector<HashedRow> out(members);
  for (std::size_t i = 0; i < members; ++i) out[i] = HashedRow{member_hashes[i], member_rows[i]};
  return out;
}

}  // namespace lathe
