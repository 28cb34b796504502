// The sums behind the evaluation metrics (runtime/metrics.h), as the CPU backend
// (runtime/metrics.cpp) and the CUDA backend (kernels/metrics.cu) both return them; compute_metrics
// turns them into metric values. Plain C++: no CUDA headers. Built from kernels/metrics.cu with
// CUDA, else from runtime/metrics_cuda_absent.cpp, whose functions throw CudaError.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "kernels/metric_formulas.h"
#include "runtime/device_context.h"

namespace lathe {

struct BinarySums {
  ClassificationSums rows;
  RankingSums ranking;  // all zero unless rankable(rows)
};

struct MulticlassSums {
  ClassificationSums rows;
  std::vector<std::int64_t> counts;  // [true class][predicted class], classes^2 rows
  std::vector<double> weights;       // [true class][predicted class], classes^2 weight sums
};

// On the GPU of `backend`: `rows` holds host pointers to validated rows (labels in range, weights
// finite and >= 0; rows >= 1). Each function uploads them, computes on the backend's stream with
// deterministic reductions (fixed-size tiles merged in a fixed order; no floating-point atomics), and
// returns the sums. std::nullopt when the device lacks the memory (about 60 bytes a row plus the
// predictions for the binary and multiclass sums; the caller computes on the CPU). Other CUDA
// errors throw CudaError.
std::optional<RegressionSums> regression_sums_cuda(CudaBackend& backend, const MetricRows& rows,
                                                   double label_shift);
// Sorts (score, weight) pairs with CUB's radix sort for the ranking sums.
std::optional<BinarySums> binary_sums_cuda(CudaBackend& backend, const MetricRows& rows);
// rows.classes in 2..65535. Sorts the rows by confusion cell with CUB's radix sort.
std::optional<MulticlassSums> multiclass_sums_cuda(CudaBackend& backend, const MetricRows& rows);

}  // namespace lathe
