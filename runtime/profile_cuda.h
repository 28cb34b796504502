// The profile pass's per-block computation as the CPU backend (runtime/profile.cpp) and the CUDA
// backend (kernels/profile.cu) both do it, and the small formulas they share. Plain C++: no CUDA
// headers; built from kernels/profile.cu with CUDA, else from runtime/profile_cuda_absent.cpp,
// whose CudaProfiler throws CudaError.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include "kernels/column_stats.h"
#include "kernels/host_device.h"
#include "runtime/column_block.h"
#include "runtime/device_context.h"

namespace lathe {

// The slot of a categorical value among `labels` labels: the integer code itself (codes are stored
// as floats), `labels` for missing (NaN or negative), -1 for a code >= labels (an error).
LATHE_HOST_DEVICE std::int64_t category_count_slot(float code, std::int64_t labels) {
  if (!(code >= 0.0f)) return labels;
  if (static_cast<double>(code) >= static_cast<double>(labels)) return -1;
  return static_cast<std::int64_t>(code);
}

// The value a numeric column's sort sees: every NaN the same positive quiet NaN (a radix sort puts
// it after +inf; -NaN would come first) and -0 as +0, so that the CPU and the GPU pick the same
// bits as order statistics.
LATHE_HOST_DEVICE float sort_key(float v) {
  if (v != v) return std::numeric_limits<float>::quiet_NaN();
  return v == 0.0f ? 0.0f : v;
}

// Which columns of a block are which; fixed for a whole pass.
struct ProfileLayout {
  std::vector<std::int64_t> numeric;      // block column of each numeric column, ascending
  std::vector<std::int64_t> categorical;  // block column of each categorical column, ascending
  std::vector<std::int64_t> labels;       // number of labels of each categorical column
  std::int64_t columns = 0;               // columns of a block
  int sketch_capacity = 1024;

  std::int64_t category_slots() const;  // sum of (labels + 1): each column's codes, then missing
  bool operator==(const ProfileLayout&) const = default;
};

// One block's profile before it is merged into a DataProfile (host memory).
struct BlockProfile {
  std::int64_t kept_rows = 0;
  std::vector<ColumnStats> stats;           // per numeric column
  std::vector<std::int64_t> sketch_sizes;   // per numeric column: its non-missing kept values, n
  // per numeric column s, at [s * capacity, s * capacity + min(n, capacity)) (the rest is
  // unspecified): the block's sorted kept values at summary_rank(j, n, capacity), and the rank range
  // [lower, upper) of the values equal to each; what summary_from_ranks takes.
  std::vector<float> sketch_points;
  std::vector<std::int64_t> sketch_lower;
  std::vector<std::int64_t> sketch_upper;
  // per categorical column j, at its offset (the sum of labels + 1 of the columns before): the
  // count of each code, then the missing count.
  std::vector<std::int64_t> category_counts;
  // per categorical column: the largest code >= its labels, or -1 when there is none.
  std::vector<float> bad_codes;

  void reset(const ProfileLayout& layout);  // sizes everything for `layout`, zero counts
};

// The profile of one host block on the GPU, with device scratch that grows to the largest block
// and is then reused. Uses the backend's stream; the backend must outlive the profiler.
class CudaProfiler {
 public:
  // Throws CudaError (in a build without CUDA, always).
  CudaProfiler(CudaBackend& backend, ProfileLayout layout);
  ~CudaProfiler();
  CudaProfiler(const CudaProfiler&) = delete;
  CudaProfiler& operator=(const CudaProfiler&) = delete;

  const ProfileLayout& layout() const { return layout_; }
  const CudaBackend* backend() const { return backend_; }
  // keep_rows: empty (every row kept) or one byte per row, 0 = skip. block.columns must equal
  // layout().columns. Synchronous: `out` is complete on return.
  void profile_block(const ColumnBlockView& host_block, std::span<const std::uint8_t> keep_rows,
                     BlockProfile& out);

 private:
  struct Scratch;  // kernels/profile.cu
  CudaBackend* backend_;
  ProfileLayout layout_;
  std::unique_ptr<Scratch> scratch_;
};

}  // namespace lathe
