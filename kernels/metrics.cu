// Evaluation metrics on the GPU (runtime/metrics_cuda.h): the sums of kernels/metric_formulas.h over
// all rows. Deterministic: every reduction folds fixed tiles of kTileRows rows with CUB block
// primitives and merges the tiles' partials in tile order (on the host, or in one block); there are
// no floating-point atomics, so a run gives the same bits as the last one on the same inputs.
//
// Binary AUC and average precision: the (score, positive weight, negative weight) triples are
// radix-sorted by descending score, a deterministic scan gives the cumulative weights before every
// row, and the first row of each group of tied scores finds its group's end (galloping search) and
// adds the group's trapezoid and precision step. Multiclass: rows are radix-sorted by confusion cell
// (true class * K + predicted class); the first row of each cell's run writes the cell's count and
// weight sum.
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>

#include <climits>
#include <cstring>
#include <vector>

#include "kernels/metric_formulas.h"
#include "runtime/cuda_backend_impl.h"
#include "runtime/cuda_check.h"
#include "runtime/cuda_memory.h"
#include "runtime/error.h"
#include "runtime/metrics_cuda.h"

namespace lathe {
namespace {

constexpr int kThreads = 256;
constexpr int kItemsPerThread = 8;
// The rows one block folds. Fixed, so that the tiles (and the order their partials merge in) depend
// on the row count only, not on the GPU.
constexpr std::int64_t kTileRows = std::int64_t{kThreads} * kItemsPerThread;

// Cumulative positive and negative weights along the sorted rows.
struct WeightPair {
  double positive = 0.0;
  double negative = 0.0;
};

__host__ __device__ inline WeightPair operator+(const WeightPair& a, const WeightPair& b) {
  WeightPair r;
  r.positive = a.positive + b.positive;
  r.negative = a.negative + b.negative;
  return r;
}

__device__ inline std::int64_t tile_begin() { return static_cast<std::int64_t>(blockIdx.x) * kTileRows; }

__device__ inline std::int64_t tile_end(std::int64_t n) {
  const std::int64_t end = tile_begin() + kTileRows;
  return end < n ? end : n;
}

// partial[blockIdx.x] = the block's sum of every thread's `mine`.
template <typename Sums>
__device__ void write_block_sum(const Sums& mine, Sums* __restrict__ partial) {
  using BlockReduce = cub::BlockReduce<Sums, kThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  const Sums total = BlockReduce(temp).Reduce(mine, AddSums{});
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// The end of the run of keys equal to keys[first] (sorted keys: equal keys are adjacent): the first
// index after `first` holding another key, or n. Galloping, then bisection: O(log run length) reads.
template <typename Key>
__device__ std::int64_t run_end(const Key* __restrict__ keys, std::int64_t n, std::int64_t first) {
  const Key key = keys[first];
  std::int64_t lo = first;  // keys[lo] == key
  std::int64_t hi = n;      // hi == n or keys[hi] != key
  for (std::int64_t step = 1;; step *= 2) {
    const std::int64_t probe = lo + step;
    if (probe >= n) break;
    if (keys[probe] != key) {
      hi = probe;
      break;
    }
    lo = probe;
  }
  while (hi - lo > 1) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    if (keys[mid] == key) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return hi;
}

__global__ void __launch_bounds__(kThreads)
    regression_sums_kernel(MetricRows rows, double shift, RegressionSums* __restrict__ partial) {
  RegressionSums acc;
  for (std::int64_t r = tile_begin() + threadIdx.x; r < tile_end(rows.rows); r += kThreads) {
    add_regression_row(acc, rows.predictions[r], rows.labels[r], row_weight(rows, r), shift);
  }
  write_block_sum(acc, partial);
}

// The row sums, and each row's sort key (its score) and (positive, negative) weight.
__global__ void __launch_bounds__(kThreads)
    binary_rows_kernel(MetricRows rows, ClassificationSums* __restrict__ partial, float* __restrict__ keys,
                       float2* __restrict__ values) {
  ClassificationSums acc;
  for (std::int64_t r = tile_begin() + threadIdx.x; r < tile_end(rows.rows); r += kThreads) {
    const float p = rows.predictions[r];
    const float y = rows.labels[r];
    const float w = row_weight(rows, r);
    add_binary_row(acc, p, y, w);
    keys[r] = score_sort_key(p);
    values[r] = y == 1.0f ? make_float2(w, 0.0f) : make_float2(0.0f, w);
  }
  write_block_sum(acc, partial);
}

// The row sums, and each row's confusion cell (its sort key) and weight.
__global__ void __launch_bounds__(kThreads)
    multiclass_rows_kernel(MetricRows rows, ClassificationSums* __restrict__ partial,
                           std::uint32_t* __restrict__ cells, float* __restrict__ weights) {
  ClassificationSums acc;
  const std::int64_t k = rows.classes;
  for (std::int64_t r = tile_begin() + threadIdx.x; r < tile_end(rows.rows); r += kThreads) {
    const std::int32_t label = static_cast<std::int32_t>(rows.labels[r]);
    const float w = row_weight(rows, r);
    const std::int32_t predicted = add_multiclass_row(acc, rows.predictions + r * k, rows.classes, label, w);
    // classes <= 65535, so the cell fits 32 bits.
    cells[r] = static_cast<std::uint32_t>(label) * static_cast<std::uint32_t>(k) + static_cast<std::uint32_t>(predicted);
    weights[r] = w;
  }
  write_block_sum(acc, partial);
}

// Thread t of a tile holds the tile's rows t * kItemsPerThread ... + kItemsPerThread - 1 (a blocked
// arrangement: a scan needs each thread's rows consecutive); returns their sum, added in row order.
__device__ WeightPair load_thread_rows(const float2* __restrict__ values, std::int64_t n,
                                       float2 (&items)[kItemsPerThread]) {
  const std::int64_t first = tile_begin() + static_cast<std::int64_t>(threadIdx.x) * kItemsPerThread;
  WeightPair sum;
#pragma unroll
  for (int i = 0; i < kItemsPerThread; ++i) {
    items[i] = first + i < n ? values[first + i] : make_float2(0.0f, 0.0f);
    sum.positive += static_cast<double>(items[i].x);
    sum.negative += static_cast<double>(items[i].y);
  }
  return sum;
}

using WeightScan = cub::BlockScan<WeightPair, kThreads>;

__global__ void __launch_bounds__(kThreads)
    tile_weights_kernel(const float2* __restrict__ values, std::int64_t n, WeightPair* __restrict__ totals) {
  float2 items[kItemsPerThread];
  const WeightPair mine = load_thread_rows(values, n, items);
  __shared__ typename WeightScan::TempStorage temp;
  WeightPair before, total;
  WeightScan(temp).ExclusiveScan(mine, before, WeightPair{}, AddSums{}, total);
  if (threadIdx.x == 0) totals[blockIdx.x] = total;
}

// One block: the tile totals become, in place, the weight before each tile (an exclusive scan, in
// chunks of kThreads tiles carried forward in order).
__global__ void __launch_bounds__(kThreads) scan_tile_weights_kernel(WeightPair* __restrict__ totals,
                                                                     std::int64_t tiles) {
  __shared__ typename WeightScan::TempStorage temp;
  WeightPair carry;
  for (std::int64_t base = 0; base < tiles; base += kThreads) {
    const std::int64_t t = base + threadIdx.x;
    const WeightPair mine = t < tiles ? totals[t] : WeightPair{};
    WeightPair before, chunk;
    WeightScan(temp).ExclusiveScan(mine, before, WeightPair{}, AddSums{}, chunk);
    if (t < tiles) totals[t] = carry + before;
    carry = carry + chunk;  // the block aggregate reaches every thread
    __syncthreads();        // before the next chunk reuses temp
  }
}

// cumulative[r] = the weights of the sorted rows before r; cumulative[n] = all of them.
__global__ void __launch_bounds__(kThreads)
    cumulative_weights_kernel(const float2* __restrict__ values, std::int64_t n,
                              const WeightPair* __restrict__ tile_offsets, WeightPair* __restrict__ cumulative) {
  float2 items[kItemsPerThread];
  const WeightPair mine = load_thread_rows(values, n, items);
  __shared__ typename WeightScan::TempStorage temp;
  WeightPair before;
  WeightScan(temp).ExclusiveScan(mine, before, WeightPair{}, AddSums{});
  WeightPair running = tile_offsets[blockIdx.x] + before;
  const std::int64_t first = tile_begin() + static_cast<std::int64_t>(threadIdx.x) * kItemsPerThread;
#pragma unroll
  for (int i = 0; i < kItemsPerThread; ++i) {
    const std::int64_t r = first + i;
    if (r < n) {
      cumulative[r] = running;
      running.positive += static_cast<double>(items[i].x);
      running.negative += static_cast<double>(items[i].y);
      if (r == n - 1) cumulative[n] = running;
    }
  }
}

// The first row of each group of tied scores adds the group's point of the two curves.
__global__ void __launch_bounds__(kThreads)
    score_groups_kernel(const float* __restrict__ keys, std::int64_t n, const WeightPair* __restrict__ cumulative,
                        RankingSums* __restrict__ partial) {
  RankingSums acc;
  for (std::int64_t r = tile_begin() + threadIdx.x; r < tile_end(n); r += kThreads) {
    if (r > 0 && keys[r] == keys[r - 1]) continue;
    const std::int64_t end = run_end(keys, n, r);
    const WeightPair above = cumulative[r];
    const WeightPair through = cumulative[end];
    add_score_group(acc, above.positive, above.negative, through.positive, through.negative);
  }
  write_block_sum(acc, partial);
}

__global__ void __launch_bounds__(kThreads)
    tile_sums_kernel(const float* __restrict__ weights, std::int64_t n, double* __restrict__ totals) {
  double acc = 0.0;
  for (std::int64_t r = tile_begin() + threadIdx.x; r < tile_end(n); r += kThreads) {
    acc += static_cast<double>(weights[r]);
  }
  write_block_sum(acc, totals);
}

// The sum of weights[first, end): the rows up to the first tile boundary, the whole tiles' totals,
// then the rows after the last boundary. At most 2 * kTileRows rows plus one total a tile; a run of
// zero weights sums to exactly 0.
__device__ double run_weight(const float* __restrict__ weights, const double* __restrict__ tile_totals,
                             std::int64_t first, std::int64_t end) {
  const std::int64_t first_tile = (first + kTileRows - 1) / kTileRows;  // whole tiles [first_tile, end_tile)
  const std::int64_t end_tile = end / kTileRows;
  double sum = 0.0;
  if (first_tile >= end_tile) {
    for (std::int64_t r = first; r < end; ++r) sum += static_cast<double>(weights[r]);
    return sum;
  }
  for (std::int64_t r = first; r < first_tile * kTileRows; ++r) sum += static_cast<double>(weights[r]);
  for (std::int64_t t = first_tile; t < end_tile; ++t) sum += tile_totals[t];
  for (std::int64_t r = end_tile * kTileRows; r < end; ++r) sum += static_cast<double>(weights[r]);
  return sum;
}

// The first row of each cell's run writes the cell's count and weight (cells without rows keep the
// zeros they were cleared to).
__global__ void __launch_bounds__(kThreads)
    confusion_cells_kernel(const std::uint32_t* __restrict__ cells, const float* __restrict__ weights,
                           std::int64_t n, const double* __restrict__ tile_totals,
                           std::int64_t* __restrict__ counts, double* __restrict__ cell_weights) {
  for (std::int64_t r = tile_begin() + threadIdx.x; r < tile_end(n); r += kThreads) {
    if (r > 0 && cells[r] == cells[r - 1]) continue;
    const std::int64_t end = run_end(cells, n, r);
    counts[cells[r]] = end - r;
    cell_weights[cells[r]] = run_weight(weights, tile_totals, r, end);
  }
}

// ---- Host side.

unsigned tiles_for(std::int64_t n) {
  const std::int64_t tiles = (n + kTileRows - 1) / kTileRows;
  if (tiles > INT_MAX) throw Error("metrics: " + std::to_string(n) + " rows are too many for one GPU pass");
  return static_cast<unsigned>(tiles);
}

// Whether `bytes` more fit in the device's free memory, with room to spare for CUB and the pool.
bool device_has_room(std::size_t bytes) {
  std::size_t free_bytes = 0, total_bytes = 0;
  LATHE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  constexpr std::size_t kMargin = std::size_t{256} << 20;
  return bytes + kMargin <= free_bytes;
}

std::size_t input_floats(const MetricRows& rows, std::int64_t predictions_per_row) {
  const std::size_t n = static_cast<std::size_t>(rows.rows);
  return n * static_cast<std::size_t>(predictions_per_row) + n + (rows.weights ? n : 0);
}

// The rows on the device: predictions, labels and weights packed into the backend's pinned staging
// buffer and copied in one transfer. rows holds device pointers into data.
struct DeviceRows {
  DeviceBuffer<float> data;
  MetricRows rows;
};

DeviceRows upload_rows(CudaBackend& b, const MetricRows& host, std::int64_t predictions_per_row) {
  const std::size_t n = static_cast<std::size_t>(host.rows);
  const std::size_t predictions = n * static_cast<std::size_t>(predictions_per_row);
  const std::size_t total = input_floats(host, predictions_per_row);
  // An earlier upload's copy may still be reading the staging buffer.
  LATHE_CUDA_CHECK(cudaStreamSynchronize(b.stream()));
  float* pinned = b.staging_host(total);
  std::memcpy(pinned, host.predictions, predictions * sizeof(float));
  std::memcpy(pinned + predictions, host.labels, n * sizeof(float));
  if (host.weights) std::memcpy(pinned + predictions + n, host.weights, n * sizeof(float));
  DeviceRows d;
  d.data = DeviceBuffer<float>(total, b.stream());
  LATHE_CUDA_CHECK(cudaMemcpyAsync(d.data.data(), pinned, total * sizeof(float), cudaMemcpyHostToDevice, b.stream()));
  d.rows = host;
  d.rows.predictions = d.data.data();
  d.rows.labels = d.data.data() + predictions;
  d.rows.weights = host.weights ? d.data.data() + predictions + n : nullptr;
  return d;
}

// Copies `count` partial sums to the host (waiting for the stream) and adds them in order.
template <typename Sums>
Sums merge_partials(const DeviceBuffer<Sums>& partial, std::size_t count, cudaStream_t stream) {
  std::vector<Sums> host(count);
  LATHE_CUDA_CHECK(cudaMemcpyAsync(host.data(), partial.data(), count * sizeof(Sums), cudaMemcpyDeviceToHost, stream));
  LATHE_CUDA_CHECK(cudaStreamSynchronize(stream));
  Sums total{};
  for (const Sums& s : host) total = total + s;
  return total;
}

// Temporary storage for one CUB call: never empty (a null pointer is CUB's size query).
DeviceBuffer<unsigned char> temporary_storage(std::size_t bytes, cudaStream_t stream) {
  return DeviceBuffer<unsigned char>(bytes < 16 ? 16 : bytes, stream);
}

RankingSums ranking_sums(CudaBackend& b, DeviceBuffer<float>& keys_a, DeviceBuffer<float2>& values_a, std::int64_t n,
                         unsigned tiles) {
  const cudaStream_t stream = b.stream();
  const std::size_t count = static_cast<std::size_t>(n);
  std::size_t sort_bytes = 0;
  {
    cub::DoubleBuffer<float> keys(nullptr, nullptr);
    cub::DoubleBuffer<float2> values(nullptr, nullptr);
    LATHE_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(nullptr, sort_bytes, keys, values, n, 0, 32, stream));
  }
  DeviceBuffer<float> keys_b(count, stream);
  DeviceBuffer<float2> values_b(count, stream);
  DeviceBuffer<unsigned char> temp = temporary_storage(sort_bytes, stream);
  // Stable: tied scores keep their row order, as on the CPU.
  cub::DoubleBuffer<float> keys(keys_a.data(), keys_b.data());
  cub::DoubleBuffer<float2> values(values_a.data(), values_b.data());
  std::size_t bytes = temp.size();
  LATHE_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(temp.data(), bytes, keys, values, n, 0, 32, stream));

  DeviceBuffer<WeightPair> tile_offsets(tiles, stream);
  DeviceBuffer<WeightPair> cumulative(count + 1, stream);
  tile_weights_kernel<<<tiles, kThreads, 0, stream>>>(values.Current(), n, tile_offsets.data());
  LATHE_CUDA_CHECK_LAUNCH();
  scan_tile_weights_kernel<<<1, kThreads, 0, stream>>>(tile_offsets.data(), tiles);
  LATHE_CUDA_CHECK_LAUNCH();
  cumulative_weights_kernel<<<tiles, kThreads, 0, stream>>>(values.Current(), n, tile_offsets.data(),
                                                            cumulative.data());
  LATHE_CUDA_CHECK_LAUNCH();
  DeviceBuffer<RankingSums> partial(tiles, stream);
  score_groups_kernel<<<tiles, kThreads, 0, stream>>>(keys.Current(), n, cumulative.data(), partial.data());
  LATHE_CUDA_CHECK_LAUNCH();

  WeightPair totals;
  LATHE_CUDA_CHECK(cudaMemcpyAsync(&totals, cumulative.data() + n, sizeof totals, cudaMemcpyDeviceToHost, stream));
  RankingSums s = merge_partials(partial, tiles, stream);  // synchronizes, so totals has arrived
  s.positive = totals.positive;
  s.negative = totals.negative;
  return s;
}

}  // namespace

std::optional<RegressionSums> regression_sums_cuda(CudaBackend& b, const MetricRows& host, double label_shift) {
  LATHE_CUDA_CHECK(cudaSetDevice(b.index()));
  const unsigned tiles = tiles_for(host.rows);
  if (!device_has_room(input_floats(host, 1) * sizeof(float) + tiles * sizeof(RegressionSums))) return std::nullopt;
  const DeviceRows d = upload_rows(b, host, 1);
  DeviceBuffer<RegressionSums> partial(tiles, b.stream());
  regression_sums_kernel<<<tiles, kThreads, 0, b.stream()>>>(d.rows, label_shift, partial.data());
  LATHE_CUDA_CHECK_LAUNCH();
  return merge_partials(partial, tiles, b.stream());
}

std::optional<BinarySums> binary_sums_cuda(CudaBackend& b, const MetricRows& host) {
  LATHE_CUDA_CHECK(cudaSetDevice(b.index()));
  const std::int64_t n = host.rows;
  const std::size_t count = static_cast<std::size_t>(n);
  const unsigned tiles = tiles_for(n);
  // Inputs; keys and values twice (the sort's double buffers); cumulative weights; partials; sort
  // temporaries (about as large as one key and value buffer).
  const std::size_t needed = input_floats(host, 1) * sizeof(float) +
                             count * 3 * (sizeof(float) + sizeof(float2)) + (count + 1) * sizeof(WeightPair) +
                             tiles * (sizeof(ClassificationSums) + sizeof(RankingSums) + sizeof(WeightPair));
  if (!device_has_room(needed)) return std::nullopt;
  const cudaStream_t stream = b.stream();
  DeviceRows d = upload_rows(b, host, 1);
  DeviceBuffer<float> keys(count, stream);
  DeviceBuffer<float2> values(count, stream);
  BinarySums out;
  {
    DeviceBuffer<ClassificationSums> partial(tiles, stream);
    binary_rows_kernel<<<tiles, kThreads, 0, stream>>>(d.rows, partial.data(), keys.data(), values.data());
    LATHE_CUDA_CHECK_LAUNCH();
    out.rows = merge_partials(partial, tiles, stream);
  }
  d.data = DeviceBuffer<float>();  // the keys and values hold what the ranking needs
  if (rankable(out.rows)) out.ranking = ranking_sums(b, keys, values, n, tiles);
  return out;
}

std::optional<MulticlassSums> multiclass_sums_cuda(CudaBackend& b, const MetricRows& host) {
  LATHE_CUDA_CHECK(cudaSetDevice(b.index()));
  const std::int64_t n = host.rows;
  const std::size_t count = static_cast<std::size_t>(n);
  const std::size_t k = static_cast<std::size_t>(host.classes);
  const std::size_t cells = k * k;
  const unsigned tiles = tiles_for(n);
  const std::size_t needed = input_floats(host, host.classes) * sizeof(float) +
                             count * 3 * (sizeof(std::uint32_t) + sizeof(float)) +
                             cells * (sizeof(std::int64_t) + sizeof(double)) +
                             tiles * (sizeof(ClassificationSums) + sizeof(double));
  if (!device_has_room(needed)) return std::nullopt;
  const cudaStream_t stream = b.stream();
  DeviceRows d = upload_rows(b, host, host.classes);
  DeviceBuffer<std::uint32_t> cells_a(count, stream);
  DeviceBuffer<float> weights_a(count, stream);
  MulticlassSums out;
  {
    DeviceBuffer<ClassificationSums> partial(tiles, stream);
    multiclass_rows_kernel<<<tiles, kThreads, 0, stream>>>(d.rows, partial.data(), cells_a.data(), weights_a.data());
    LATHE_CUDA_CHECK_LAUNCH();
    out.rows = merge_partials(partial, tiles, stream);
  }
  d.data = DeviceBuffer<float>();

  // Only the bits a cell index can have: classes^2 - 1 < 2^end_bit.
  int end_bit = 1;
  while (end_bit < 32 && (std::uint64_t{1} << end_bit) < cells) ++end_bit;
  std::size_t sort_bytes = 0;
  {
    cub::DoubleBuffer<std::uint32_t> keys(nullptr, nullptr);
    cub::DoubleBuffer<float> values(nullptr, nullptr);
    LATHE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, keys, values, n, 0, end_bit, stream));
  }
  DeviceBuffer<std::uint32_t> cells_b(count, stream);
  DeviceBuffer<float> weights_b(count, stream);
  DeviceBuffer<unsigned char> temp = temporary_storage(sort_bytes, stream);
  cub::DoubleBuffer<std::uint32_t> keys(cells_a.data(), cells_b.data());
  cub::DoubleBuffer<float> values(weights_a.data(), weights_b.data());
  std::size_t bytes = temp.size();
  LATHE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.data(), bytes, keys, values, n, 0, end_bit, stream));

  DeviceBuffer<double> tile_totals(tiles, stream);
  DeviceBuffer<std::int64_t> counts(cells, stream);
  DeviceBuffer<double> cell_weights(cells, stream);
  LATHE_CUDA_CHECK(cudaMemsetAsync(counts.data(), 0, cells * sizeof(std::int64_t), stream));
  LATHE_CUDA_CHECK(cudaMemsetAsync(cell_weights.data(), 0, cells * sizeof(double), stream));  // all-zero bits: 0.0
  tile_sums_kernel<<<tiles, kThreads, 0, stream>>>(values.Current(), n, tile_totals.data());
  LATHE_CUDA_CHECK_LAUNCH();
  confusion_cells_kernel<<<tiles, kThreads, 0, stream>>>(keys.Current(), values.Current(), n, tile_totals.data(),
                                                         counts.data(), cell_weights.data());
  LATHE_CUDA_CHECK_LAUNCH();
  out.counts.resize(cells);
  out.weights.resize(cells);
  LATHE_CUDA_CHECK(cudaMemcpyAsync(out.counts.data(), counts.data(), cells * sizeof(std::int64_t),
                                   cudaMemcpyDeviceToHost, stream));
  LATHE_CUDA_CHECK(cudaMemcpyAsync(out.weights.data(), cell_weights.data(), cells * sizeof(double),
                                   cudaMemcpyDeviceToHost, stream));
  LATHE_CUDA_CHECK(cudaStreamSynchronize(stream));
  return out;
}

}  // namespace lathe
