// The CUDA model: parameters, optimizer state and the bound training set in device memory, a
// gather and one fused kernel per optimizer step, around the formulas of models/model_formulas.h
// (the CPU model's). Nothing is allocated per step once the scratch has grown to the batch size.
//
// Rows are gathered in epoch order before the step kernel reads them: read in place, every warp
// load of the step kernel would touch 32 random cache lines, and one block would wait on them
// alone; gathered, the random reads spread over the whole GPU and the step kernel's loads
// coalesce. When the gathered epoch fits in half the free device memory it is gathered once per
// epoch (one launch) and a step is a window of it; otherwise each step gathers its batch first.
// Every exact-mode step is the same kernel, exact_step_kernel (one block of 1024 threads), so the
// bits do not depend on the path (gathered per epoch or per step, one launch or graph replay):
//   1. forward: a thread per batch row (strided when the batch is larger): scores, loss and the
//      weighted d loss / d score into a scratch buffer; the batch's loss and weight by a
//      fixed-order block reduction;
//   2. gradient: a warp per dense entry (bias, dense weight, dense fm factor: each lane sums its
//      rows' terms, then a shuffle tree), and a warp per (sparse group, output), which walks the
//      batch 32 rows at a time, finds the lanes sharing a slot (__match_any_sync) and lets the
//      lowest of them add their terms in lane order. Every gradient entry has one writer and a
//      fixed order of sums: no atomics, the same bits run to run;
//   3. update: clipping by the global norm and the optimizer over every parameter. Models of more
//      than kFusedUpdateMax parameters update in a second, many-block kernel instead (and, when
//      clipping, a fixed grid of partial sums of squares before it), so one block never streams a
//      wide model alone.
// The gradient buffer is zero between steps: the update clears each entry it consumes.
// A linear model of one output over dense features alone takes the dense path instead (below:
// dense_exact_step_kernel, dense_local_sgd_round_kernel), which reads a row-major copy of the set
// through the order and gathers nothing; again one kernel for every exact-mode path of such a
// model.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

#include "kernels/epoch_permutation.h"
#include "models/cuda_model.h"
#include "models/model_checks.h"
#include "models/model_formulas.h"
#include "runtime/cuda_backend_impl.h"
#include "runtime/cuda_check.h"
#include "runtime/cuda_memory.h"
#include "runtime/error.h"

namespace lathe {
namespace {

constexpr int kStepThreads = 1024;
constexpr int kLocalThreads = 256;  // a local SGD worker: small batches leave most threads idle
// Local SGD workers' copies (3 float arrays and the double gradient a parameter, the touched flags
// and last steps a feature): at most this many bytes.
constexpr std::int64_t kLocalCopiesMaxBytes = std::int64_t{1} << 31;
constexpr std::int64_t kFusedUpdateMax = std::int64_t{1} << 15;
constexpr int kUpdateThreads = 256;
constexpr int kUpdateMaxBlocks = 4096;
constexpr int kNormBlocks = 256;  // fixed, so that the sum of squares has a fixed order
constexpr int kPredictThreads = 256;
constexpr std::int64_t kPredictRows = std::int64_t{1} << 16;  // rows of an fm's prediction launch
constexpr int kGatherThreads = 256;
constexpr std::int64_t kGatherMaxBlocks = 1 << 16;
constexpr int kGraphSteps = 128;  // train_steps: steps per captured graph

struct StepTotals {
  double loss = 0.0;    // the step's summed weighted loss
  double weight = 0.0;  // what the step divides its summed gradient by (step_weight)
};

struct StepArgs {
  ModelView model;       // model.theta == theta
  LabeledRowsView data;  // the gathered batch: data.rows.rows == count
  std::int64_t count = 0;
  float* theta = nullptr;
  float* moment1 = nullptr;
  float* moment2 = nullptr;
  double* gradient = nullptr;
  std::uint8_t* touched = nullptr;  // [features]: the batch holds the slot (lazy updates)
  std::uint32_t* last_step = nullptr;  // [features - dense]: penalties caught up (null: none)
  float* dscore = nullptr;  // [count][outputs]
  float* sums = nullptr;    // [count][outputs][factors] (fm)
  StepTotals* totals = nullptr;
  double* loss_sum = nullptr;
  UpdateRule rule;
  bool fused_update = true;
};

struct UpdateArgs {
  ParameterLayout params;
  float* theta = nullptr;
  float* moment1 = nullptr;
  float* moment2 = nullptr;
  double* gradient = nullptr;
  std::uint8_t* touched = nullptr;
  std::uint32_t* last_step = nullptr;
  std::int64_t dense = 0;  // dense features
  const StepTotals* totals = nullptr;
  const double* square_partials = nullptr;  // kNormBlocks entries, when clipping
  UpdateRule rule;
};

// Lane 0 gets the sum of v over the warp (a fixed shuffle tree).
__device__ __forceinline__ double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// The sum of v over the block in a fixed order (a shuffle tree per warp, then the warps in order),
// returned to every thread. Every thread must call it; blockDim.x a multiple of 32. `scratch`:
// 33 doubles of shared memory. Its barriers also make the block's earlier global writes visible to
// the whole block.
__device__ double block_sum(double v, double* scratch) {
  v = warp_sum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) total += scratch[w];
    scratch[32] = total;
  }
  __syncthreads();
  const double total = scratch[32];
  __syncthreads();
  return total;
}

// The update of every dense entry (dense_entry_parameter) and, lazily, of the sparse features
// whose `touched` flag the step's gradient phase set (clearing it): the lazy updates of
// models/model_formulas.h, catching up penalties from last_step ([features - dense]) unless it is
// null. Entry i and feature dense + i belong to the thread with begin = i (mod stride).
__device__ void update_parameters(const UpdateRule& rule, const ParameterLayout& p,
                                  std::int64_t dense, double scale, float* theta, float* moment1,
                                  float* moment2, double* gradient, std::uint8_t* touched,
                                  std::uint32_t* last_step, std::int64_t begin, std::int64_t stride) {
  if (!touched) {  // no sparse features, or every parameter takes every step (lazy_sparse false)
    const std::int64_t size = p.size();
    for (std::int64_t q = begin; q < size; q += stride) {
      update_weight(rule, p.regularized(q), static_cast<float>(gradient[q] * scale), theta[q],
                    moment1[q], moment2[q]);
      gradient[q] = 0.0;
    }
    return;
  }
  const std::int64_t per_output = dense_entries_per_output(p, dense);
  const std::int64_t entries = p.outputs * per_output;
  for (std::int64_t i = begin; i < entries; i += stride) {
    const std::int32_t o = static_cast<std::int32_t>(i / per_output);
    const std::int64_t q = dense_entry_parameter(p, dense, o, i - o * per_output);
    update_weight(rule, p.regularized(q), static_cast<float>(gradient[q] * scale), theta[q],
                  moment1[q], moment2[q]);
    gradient[q] = 0.0;
  }
  for (std::int64_t feature = dense + begin; feature < p.features; feature += stride) {
    if (!touched[feature]) continue;
    touched[feature] = 0;
    update_feature(rule, p, feature, scale, theta, MomentsView{moment1, moment2, 1}, GradientByParameter{gradient},
                   last_step ? last_step + (feature - dense) : nullptr);
  }
}

// The columns of a batch gather: dense features, then the slots and the values of each sparse
// group, the labels, and the sample weights when there are any.
struct GatherArgs {
  PreparedRowsView from;  // the training set
  const float* labels = nullptr;
  const float* weights = nullptr;  // nullptr: none
  std::int32_t groups = 0;
  std::int64_t dense = 0;
  const std::int64_t* order = nullptr;  // the batch's rows
  std::int64_t count = 0;
  float* dense_to = nullptr;        // [feature][count]
  std::int32_t* slot_to = nullptr;  // [group][count]
  float* value_to = nullptr;
  float* label_to = nullptr;
  float* weight_to = nullptr;
};

// Grid-stride over (column, batch row), batch row fastest: consecutive threads write consecutive
// entries of a column.
__global__ void __launch_bounds__(kGatherThreads) gather_batch_kernel(GatherArgs a) {
  const std::int64_t columns = a.dense + 2 * a.groups + 1 + (a.weights ? 1 : 0);
  const std::int64_t total = columns * a.count;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const std::int64_t c = i / a.count;
    const std::int64_t b = i - c * a.count;
    const std::int64_t r = a.order[b];
    const std::int64_t n = a.from.rows;
    if (c < a.dense) {
      a.dense_to[i] = a.from.dense[c * n + r];
    } else if (c < a.dense + a.groups) {
      const std::int64_t g = c - a.dense;
      a.slot_to[g * a.count + b] = a.from.slot[g * n + r];
    } else if (c < a.dense + 2 * a.groups) {
      const std::int64_t g = c - a.dense - a.groups;
      a.value_to[g * a.count + b] = a.from.value[g * n + r];
    } else if (c == a.dense + 2 * a.groups) {
      a.label_to[b] = a.labels[r];
    } else {
      a.weight_to[b] = a.weights[r];
    }
  }
}

// One optimizer step by one block of Threads threads (the 3 phases above). The caller
// synchronizes the block before another step reads the parameters it updates.
template <int Threads>
__device__ void block_train_step(const StepArgs& a) {
  constexpr int kWarps = Threads / 32;
  __shared__ double reduce[33];
  __shared__ float peer_dscore[kWarps][32];
  __shared__ float peer_x[kWarps][32];
  __shared__ std::int64_t peer_row[kWarps][32];

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const ParameterLayout p = a.model.params;
  const ExpandedLayout layout = a.model.layout;
  const PreparedRowsView rows = a.data.rows;
  const std::int32_t outputs = p.outputs, k = p.factors;
  const std::int64_t dense = layout.dense_features;
  const std::int64_t count = a.count;

  // 0. Plain SGD's lazy penalties (catches_up_before_reading): the batch's sparse features take
  // the penalties of the steps they skipped, up to the step before this one, before the forward
  // pass reads them (catch_up_feature). A feature in several rows is caught up by the thread whose
  // atomicCAS moves its last step on; the others find it done. Whichever thread that is, the bits
  // are the same.
  if (a.last_step && a.rule.config.kind == OptimizerKind::sgd) {
    UpdateRule before = a.rule;
    before.step = a.rule.step - 1u;
    const std::int64_t slots = count * layout.groups;
    for (std::int64_t i = tid; i < slots; i += Threads) {
      const std::int64_t g = i / count, b = i - g * count;
      const std::int64_t feature = layout.group_offset[g] + rows.slot[g * rows.rows + b];
      unsigned int* last = a.last_step + (feature - dense);
      const unsigned int seen = *last;
      if (seen == before.step || atomicCAS(last, seen, before.step) != seen) continue;
      catch_up_feature(before, p, feature, a.theta, seen);
    }
    __syncthreads();  // the caught-up weights before the forward pass reads them
  }

  // 1. Forward.
  double loss = 0.0;
  for (std::int64_t b = tid; b < count; b += Threads) {
    double w = 0.0;  // the row's weight (unused: a step divides by step_weight)
    loss += row_forward(a.model, a.data, b, a.dscore + b * outputs, a.sums + b * outputs * k, w);
  }
  loss = block_sum(loss, reduce);
  const double weight = step_weight(count, a.rule);
  if (tid == 0) {
    a.totals->loss = loss;
    a.totals->weight = weight;
    *a.loss_sum += loss;
  }

  // 2. Gradient: dense entries first, then (sparse group, output) units, a warp each.
  const std::int64_t per_output = dense_entries_per_output(p, dense);
  const std::int64_t entries = outputs * per_output;
  const std::int64_t items = entries + static_cast<std::int64_t>(layout.groups) * outputs;
  for (std::int64_t item = warp; item < items; item += kWarps) {
    if (item < entries) {
      const std::int32_t o = static_cast<std::int32_t>(item / per_output);
      const std::int64_t e = item - o * per_output;
      double acc = 0.0;
      for (std::int64_t b = lane; b < count; b += 32) {
        acc += static_cast<double>(dense_entry_gradient(a.model.theta, p, rows, dense, b, o, e,
                                                        a.dscore[b * outputs + o],
                                                        a.sums + (b * outputs + o) * k));
      }
      acc = warp_sum(acc);
      if (lane == 0) a.gradient[dense_entry_parameter(p, dense, o, e)] = acc;
      continue;
    }
    const std::int64_t unit = item - entries;
    const std::int32_t g = static_cast<std::int32_t>(unit / outputs);
    const std::int32_t o = static_cast<std::int32_t>(unit % outputs);
    const std::int64_t offset = layout.group_offset[g];
    for (std::int64_t first = 0; first < count; first += 32) {
      const std::int64_t b = first + lane;
      const bool active = b < count;
      long long key = -1;  // inactive lanes match only each other
      float d = 0.0f, x = 0.0f;
      if (active) {
        const std::int64_t at = static_cast<std::int64_t>(g) * rows.rows + b;
        key = offset + rows.slot[at];
        x = rows.value[at];
        d = a.dscore[b * outputs + o];
      }
      peer_dscore[warp][lane] = d;
      peer_x[warp][lane] = x;
      peer_row[warp][lane] = b;
      const unsigned peers = __match_any_sync(0xffffffffu, key);
      __syncwarp();
      if (active && lane == __ffs(peers) - 1) {
        double acc = 0.0;
        for (unsigned m = peers; m != 0; m &= m - 1) {
          const int l = __ffs(m) - 1;
          acc += static_cast<double>(peer_dscore[warp][l] * peer_x[warp][l]);
        }
        a.gradient[p.weight(o, key)] += acc;
        if (o == 0 && a.touched) a.touched[key] = 1;
        for (std::int32_t f = 0; f < k; ++f) {
          const std::int64_t q = p.factor(o, key, f);
          const float v = a.theta[q];
          double acc_f = 0.0;
          for (unsigned m = peers; m != 0; m &= m - 1) {
            const int l = __ffs(m) - 1;
            acc_f += static_cast<double>(
                fm_factor_gradient(peer_dscore[warp][l], peer_x[warp][l],
                                   a.sums[(peer_row[warp][l] * outputs + o) * k + f], v));
          }
          a.gradient[q] += acc_f;
        }
      }
      // Orders this chunk's gradient writes before the next chunk's reads, and the peer arrays'
      // reads before their next writes.
      __syncwarp();
    }
  }
  if (!a.fused_update) return;  // uniform over the block
  __syncthreads();

  // 3. Update.
  double squares = 0.0;
  if (a.rule.config.clip_norm > 0.0f) {
    const std::int64_t size = p.size();
    for (std::int64_t q = tid; q < size; q += Threads)
      squares += a.gradient[q] * a.gradient[q];
    squares = block_sum(squares, reduce);
  }
  const double scale = gradient_scale(weight, squares, a.rule.config.clip_norm);
  update_parameters(a.rule, p, dense, scale, a.theta, a.moment1, a.moment2, a.gradient,
                    a.touched, a.last_step, tid, Threads);
}

// order[i] = epoch_row(p, i): the epoch's order, made on the device (grid-stride).
__global__ void __launch_bounds__(kGatherThreads) epoch_order_kernel(EpochPermutation p, std::int64_t* order) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < p.rows;
       i += stride) {
    order[i] = epoch_row(p, i);
  }
}

// One exact-mode step's window and update rule (CudaModel::train_step, train_steps).
struct DevicePlannedStep {
  std::int64_t first = 0;  // the window's first row in `base`'s rows
  std::int64_t count = 0;
  UpdateRule rule;
};

// Every exact-mode step: the step `direct` (plans == nullptr) or plans[*cursor + offset], over
// the rows first.. of the column-major block that `base` points at (a gathered batch, first 0, or
// the gathered epoch, column stride its row count); then, when advance != 0, *cursor += advance.
// A graph of G launches (offsets 0..G-1, the last advancing by G) replays the next G planned steps
// each time: the launches of one stream run in order, so each reads the cursor its predecessor
// left. One kernel for every path, so that they give the same bits.
__global__ void __launch_bounds__(kStepThreads)
    exact_step_kernel(StepArgs base, DevicePlannedStep direct, const DevicePlannedStep* __restrict__ plans,
                      std::int64_t* cursor, int offset, int advance) {
  const DevicePlannedStep p = plans ? plans[*cursor + offset] : direct;
  StepArgs a = base;
  PreparedRowsView& rows = a.data.rows;
  if (rows.dense) rows.dense += p.first;
  if (rows.slot) rows.slot += p.first;
  if (rows.value) rows.value += p.first;
  a.data.labels += p.first;
  if (a.data.weights) a.data.weights += p.first;
  a.count = p.count;
  a.rule = p.rule;
  block_train_step<kStepThreads>(a);
  if (advance != 0) {
    __syncthreads();  // every thread has read the cursor
    if (threadIdx.x == 0) *cursor += advance;
  }
}

// ---- Local SGD (LocalSgdSettings): a block per worker, each with its own copies in global memory

// Adam's bias corrections of one local step, as update_rule computes them on the host.
struct BiasCorrection {
  float first = 1.0f;
  float second = 1.0f;
};

// What a round of local SGD is, whichever kernel runs it (local_sgd_round_kernel,
// dense_local_sgd_round_kernel): the shards of batches, the round's local steps and the workers'
// copies of the parameters and optimizer state.
struct LocalRound {
  std::int64_t batch = 0;
  std::int64_t batches = 0;
  std::int64_t workers = 0;
  std::int64_t first_local = 0;  // this round's local steps [first_local, end_local)
  std::int64_t end_local = 0;
  std::int64_t size = 0;    // parameters per copy
  float* theta = nullptr;   // [worker][size], and so moment1, moment2
  float* moment1 = nullptr;
  float* moment2 = nullptr;
  double* worker_loss = nullptr;  // [worker]: the worker's summed losses over the epoch
  const BiasCorrection* corrections = nullptr;  // [local step]
  UpdateRule rule;  // learning rate and configuration; bias corrections from `corrections`
};

struct LocalSgdArgs {
  ModelView model;        // model.theta unused: each block points it at its own copy
  LabeledRowsView epoch;  // the epoch's rows gathered in order; epoch.rows.rows = the order's size
  LocalRound round;
  double* gradient = nullptr;       // [worker][size], all zero between steps
  std::uint8_t* touched = nullptr;  // [worker][features], all zero between steps (no groups: null)
  std::uint32_t* last_step = nullptr;  // [worker][caught_up]: as StepArgs::last_step (null: none)
  std::int64_t caught_up = 0;          // sparse features whose penalties are caught up
  float* dscore = nullptr;     // [worker][batch][outputs]
  float* sums = nullptr;       // [worker][batch][outputs][factors] (fm)
  StepTotals* totals = nullptr;        // [worker]
};

// Block w runs its shard's local steps of this round, one after the other, on its own copies.
__global__ void __launch_bounds__(kLocalThreads) local_sgd_round_kernel(LocalSgdArgs a) {
  const std::int64_t w = blockIdx.x;
  std::int64_t begin = 0, end = 0;
  local_sgd_shard(a.round.batches, a.round.workers, w, begin, end);
  const std::int64_t n = a.epoch.rows.rows;
  const std::int64_t outputs = a.model.params.outputs, k = a.model.params.factors;
  for (std::int64_t i = a.round.first_local; i < a.round.end_local && begin + i < end;
       ++i) {  // block-uniform
    const std::int64_t first = (begin + i) * a.round.batch;
    StepArgs s;
    s.model = a.model;
    s.model.theta = a.round.theta + w * a.round.size;
    // The batch is a window of the gathered epoch: rows first.., column stride n.
    const PreparedRowsView& e = a.epoch.rows;
    s.data.rows = PreparedRowsView{e.dense + first, e.slot + first, e.value + first, n};
    s.data.labels = a.epoch.labels + first;
    s.data.weights = a.epoch.weights ? a.epoch.weights + first : nullptr;
    s.count = n - first < a.round.batch ? n - first : a.round.batch;
    s.theta = a.round.theta + w * a.round.size;
    s.moment1 = a.round.moment1 + w * a.round.size;
    s.moment2 = a.round.moment2 + w * a.round.size;
    s.gradient = a.gradient + w * a.round.size;
    s.touched = a.touched ? a.touched + w * a.model.params.features : nullptr;
    s.last_step = a.last_step ? a.last_step + w * a.caught_up : nullptr;
    s.dscore = a.dscore + w * a.round.batch * outputs;
    s.sums = a.sums + w * a.round.batch * outputs * k;
    s.totals = a.totals + w;
    s.loss_sum = a.round.worker_loss + w;
    s.rule = a.round.rule;
    s.rule.bias_correction1 = a.round.corrections[i].first;
    s.rule.bias_correction2 = a.round.corrections[i].second;
    s.rule.step = a.round.rule.step + static_cast<std::uint32_t>(i);  // the rule is first_step's
    s.fused_update = true;
    block_train_step<kLocalThreads>(s);
    __syncthreads();  // the update's writes before the next step's forward
  }
}

struct AverageArgs {
  std::int64_t size = 0;
  std::int64_t workers = 0;
  float* copies[3] = {};  // theta, moment1, moment2: [worker][size]
  float* main[3] = {};    // the model's own arrays
  // Sparse features' last steps (lazy updates catching up penalties; null: none): [worker][caught_up]
  // and the model's [caught_up]. The average takes the latest (later_step).
  std::uint32_t* last_copies = nullptr;
  std::uint32_t* last_main = nullptr;
  std::int64_t caught_up = 0;
  // Added to the model's last steps at the epoch's last average: the steps the trainer counts
  // beyond the workers' own (the CPU model's skipped_steps), so the next epoch's gaps count local
  // steps only.
  std::uint32_t skipped_steps = 0;
  bool broadcast = false;  // also write the average back to every copy (a sync within the epoch)
  bool last = false;       // the epoch's last average: add the workers' losses to loss_sum
  double* worker_loss = nullptr;
  double* loss_sum = nullptr;
};

// Grid-stride over the parameters: each is the workers' average (worker_average, a fixed order).
__global__ void __launch_bounds__(kUpdateThreads) average_workers_kernel(AverageArgs a) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t q = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       q < a.size; q += stride) {
    for (int c = 0; c < 3; ++c) {
      const float v = worker_average(a.copies[c], a.size, a.workers, q);
      a.main[c][q] = v;
      if (a.broadcast) {
        for (std::int64_t w = 0; w < a.workers; ++w) a.copies[c][w * a.size + q] = v;
      }
    }
  }
  for (std::int64_t f = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       a.last_copies && f < a.caught_up; f += stride) {
    std::uint32_t latest = a.last_copies[f];
    for (std::int64_t w = 1; w < a.workers; ++w) latest = later_step(latest, a.last_copies[w * a.caught_up + f]);
    a.last_main[f] = latest + (a.last ? a.skipped_steps : 0u);
    if (a.broadcast) {
      for (std::int64_t w = 0; w < a.workers; ++w) a.last_copies[w * a.caught_up + f] = latest;
    }
  }
  if (a.last && blockIdx.x == 0 && threadIdx.x == 0) {
    double total = 0.0;
    for (std::int64_t w = 0; w < a.workers; ++w) total += a.worker_loss[w];
    *a.loss_sum += total;
  }
}

// Every worker's copies start from the model's arrays: copies[c][w * size + q] = main[c][q].
__global__ void __launch_bounds__(kUpdateThreads) broadcast_to_workers_kernel(AverageArgs a) {
  const std::int64_t total = a.workers * a.size;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const std::int64_t q = i % a.size;
    for (int c = 0; c < 3; ++c) a.copies[c][i] = a.main[c][q];
  }
  const std::int64_t last_total = a.last_copies ? a.workers * a.caught_up : 0;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < last_total;
       i += stride) {
    a.last_copies[i] = a.last_main[i % a.caught_up];
  }
}

// Model::catch_up_penalties: every sparse feature (dense + j, j < caught_up) takes the penalties of
// the steps since its last step up to rule.step (catch_up_feature), which becomes its last step.
__global__ void __launch_bounds__(kUpdateThreads)
    catch_up_kernel(UpdateRule rule, ParameterLayout p, std::int64_t dense, std::int64_t caught_up,
                    float* __restrict__ theta, std::uint32_t* __restrict__ last_step) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       j < caught_up; j += stride) {
    catch_up_feature(rule, p, dense + j, theta, last_step[j]);
    last_step[j] = rule.step;
  }
}

// Partial sums of squares of the gradient over a fixed grid of kNormBlocks blocks.
__global__ void __launch_bounds__(kUpdateThreads)
    gradient_squares_kernel(const double* __restrict__ gradient, std::int64_t size,
                            double* __restrict__ partial) {
  __shared__ double reduce[33];
  double s = 0.0;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t q = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; q < size;
       q += stride) {
    s += gradient[q] * gradient[q];
  }
  s = block_sum(s, reduce);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void __launch_bounds__(kUpdateThreads) update_kernel(UpdateArgs a) {
  __shared__ double scale;
  if (threadIdx.x == 0) {
    double squares = 0.0;
    if (a.rule.config.clip_norm > 0.0f) {
      for (int i = 0; i < kNormBlocks; ++i) squares += a.square_partials[i];
    }
    scale = gradient_scale(a.totals->weight, squares, a.rule.config.clip_norm);
  }
  __syncthreads();
  update_parameters(a.rule, a.params, a.dense, scale, a.theta, a.moment1, a.moment2, a.gradient,
                    a.touched, a.last_step, static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x,
                    static_cast<std::int64_t>(gridDim.x) * blockDim.x);
}

// A thread per row of rows [first, end): out[r * outputs + o], predicted_scores (an fm's summed in
// double); sums: [end - first][outputs][factors] scratch (fm).
__global__ void __launch_bounds__(kPredictThreads)
    predict_kernel(ModelView model, PreparedRowsView rows, std::int64_t first, std::int64_t end,
                   float* out, double* sums) {
  const std::int64_t r = first + static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= end) return;
  const std::int64_t outputs = model.params.outputs;
  predicted_scores(model, rows, r, out + r * outputs,
                   sums + (r - first) * outputs * model.params.factors);
}

// A thread per row of rows [first, end) of a regression model: out[r] = map(score), the score
// summed in double; sums: [end - first][factors] scratch (fm).
__global__ void __launch_bounds__(kPredictThreads)
    predict_regression_kernel(ModelView model, PreparedRowsView rows, std::int64_t first,
                              std::int64_t end, RegressionMap map, float* out, double* sums) {
  const std::int64_t r = first + static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= end) return;
  out[r] = regression_prediction(model, rows, r, map, sums + (r - first) * model.params.factors);
}

// ---- Dense linear models: a row-major copy read in place, a warp per row ----
//
// A linear model of one output over dense features alone (no sparse group, no factors: a logistic
// or linear regression over numeric columns) steps over a row-major copy of the bound set, read
// through the epoch's order, instead of the gathered column-major epoch the general step reads.
// Gathering a column-major epoch reads a 32-byte sector for every 4-byte value (8x the bytes, and
// most of local SGD's epoch); a row of the copy is a few whole sectors, so no gather runs at all.
// A warp takes one row at a time with a lane per feature: the score is a shuffle sum that every
// lane ends with, and each lane adds its own feature's gradient term to a register, so the batch's
// gradient needs no pass over the rows per entry. A warp loads kDenseGroup rows before it uses
// any, to keep loads in flight (one block has few warps to hide memory latency with).
//   - Exact mode (dense_exact_step_kernel): the batch is cut into tiles of kDenseRowsPerBlock rows
//     (kDenseRowsPerWarp rows a warp), dealt to at most kDenseMaxChunks chunks, a block each; each
//     block writes its chunk's sums, and the block that finishes last sums the chunks in a fixed
//     order and updates the parameters. The chunks depend on the batch alone, so every path (one
//     launch, a graph's replay) gives the same bits.
//   - Local SGD (dense_local_sgd_round_kernel): a block per worker keeps its copy of the parameters
//     and their moments in shared memory through the round's local steps.
// Formulas are model_formulas.h's (row_loss_in_place, step_weight, gradient_scale, update_weight);
// what differs from the general step is the order of the float and double sums.

constexpr int kDenseGroup = 8;
constexpr int kDenseThreads = 256;
constexpr std::int64_t kDenseRowsPerWarp = kDenseGroup;  // one group of loads in flight per warp
constexpr std::int64_t kDenseRowsPerBlock = kDenseThreads / 32 * kDenseRowsPerWarp;
constexpr int kDenseLocalThreads = 512;
// A row of the copy holds the features, the label and the weight: D + 2 <= 64 floats, two per lane.
constexpr std::int32_t kDenseMaxFeatures = 62;
constexpr int kDenseEntries = kDenseMaxFeatures + 2;  // the sums of a chunk: bias, D weights, loss
// At most this many chunks a step (a block each; a block then takes every chunks-th tile of
// kDenseRowsPerBlock rows): the last block's sum over the chunks stays short whatever the batch.
constexpr std::int64_t kDenseMaxChunks = 1024;
constexpr int kDenseSumParts = kDenseThreads / kDenseEntries;  // the last block's threads per entry

// The chunks of a step of `count` rows: a function of the count alone, so that every grid (one
// launch, a graph's grid sized for its largest step) sums the same rows in the same order.
__host__ __device__ constexpr std::int64_t dense_step_chunks(std::int64_t count) {
  const std::int64_t tiles = (count + kDenseRowsPerBlock - 1) / kDenseRowsPerBlock;
  return tiles < kDenseMaxChunks ? tiles : kDenseMaxChunks;
}

// Stride of the row-major copy: D features, the label, the weight, rounded up to whole 32-byte
// sectors.
constexpr std::int64_t dense_row_stride(std::int64_t features) {
  return (features + 2 + 7) / 8 * 8;
}

// The row-major copy: row r's feature f at values[r * stride + f], its label at [D] and its sample
// weight at [D + 1] (1 when the set has none); the rest of the row is zero.
struct DenseRowsView {
  const float* values = nullptr;
  std::int64_t stride = 0;
  std::int32_t features = 0;  // D
};

// One thread per float of the copy, from the bound column-major set.
__global__ void __launch_bounds__(kGatherThreads)
    dense_rows_kernel(const float* __restrict__ dense, const float* __restrict__ labels,
                      const float* __restrict__ weights, std::int64_t rows, std::int32_t features,
                      std::int64_t stride, float* __restrict__ out) {
  const std::int64_t total = rows * stride;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += step) {
    const std::int64_t r = i / stride, c = i - r * stride;
    float v = 0.0f;
    if (c < features) {
      v = dense[c * rows + r];
    } else if (c == features) {
      v = labels[r];
    } else if (c == features + 1) {
      v = weights ? weights[r] : 1.0f;
    }
    out[i] = v;
  }
}

// The sum of v over the warp, in every lane: a butterfly, whose pairs add the same two values in
// either order, so every lane ends with the same bits.
__device__ __forceinline__ float warp_all_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// What a warp sums over its rows. gradient[s]: lane l's feature l + 32 s; bias and loss: the same
// in every lane.
struct DenseWarpSums {
  double gradient[2] = {0.0, 0.0};
  double bias = 0.0;  // the weighted d loss / d score
  double loss = 0.0;  // the weighted loss
};

// Adds the rows order[begin .. end) to `sums`, in order. theta: the model's parameters in shared
// memory, weights [0, D) then the bias at [D]. Slots: floats of a row per lane (D + 2 <= 32 Slots).
template <int Slots>
__device__ void dense_warp_rows(const DenseRowsView& rows, const std::int64_t* __restrict__ order,
                                std::int64_t begin, std::int64_t end, const float* theta,
                                LossKind loss_kind, float huber_delta, DenseWarpSums& sums) {
  const int lane = threadIdx.x & 31;
  const std::int32_t features = rows.features;
  float w[Slots];
#pragma unroll
  for (int s = 0; s < Slots; ++s) w[s] = lane + 32 * s < features ? theta[lane + 32 * s] : 0.0f;
  const float bias = theta[features];
  // The label and the weight: which lane holds them, and in which of its slots.
  const int label_lane = features & 31, weight_lane = (features + 1) & 31;
  const bool label_high = features >= 32, weight_high = features + 1 >= 32;
  for (std::int64_t chunk = begin; chunk < end; chunk += 32) {
    const int in_chunk = static_cast<int>(end - chunk < 32 ? end - chunk : 32);
    const std::int64_t my_row = lane < in_chunk ? order[chunk + lane] : 0;
    constexpr int kGroup = kDenseGroup / Slots;  // kDenseGroup loads in flight per lane
    for (int g = 0; g < in_chunk; g += kGroup) {
      float x[kGroup][Slots];
#pragma unroll
      for (int u = 0; u < kGroup; ++u) {
        const std::int64_t r = __shfl_sync(0xffffffffu, my_row, g + u);
        const float* row = rows.values + r * rows.stride;
#pragma unroll
        for (int s = 0; s < Slots; ++s) {
          x[u][s] = g + u < in_chunk && lane + 32 * s < features + 2 ? row[lane + 32 * s] : 0.0f;
        }
      }
#pragma unroll
      for (int u = 0; u < kGroup; ++u) {
        float part = 0.0f;
#pragma unroll
        for (int s = 0; s < Slots; ++s) {
          if (lane + 32 * s < features) part += w[s] * x[u][s];
        }
        const float dot = warp_all_sum(part);
        const float label =
            __shfl_sync(0xffffffffu, label_high ? x[u][Slots - 1] : x[u][0], label_lane);
        const float weight =
            __shfl_sync(0xffffffffu, weight_high ? x[u][Slots - 1] : x[u][0], weight_lane);
        if (g + u >= in_chunk) continue;  // the same in every lane
        float d = bias + dot;
        const float loss = row_loss_in_place(loss_kind, huber_delta, label, &d, 1);
        d *= weight;
#pragma unroll
        for (int s = 0; s < Slots; ++s) sums.gradient[s] += static_cast<double>(d * x[u][s]);
        sums.bias += static_cast<double>(d);
        sums.loss += static_cast<double>(weight) * static_cast<double>(loss);
      }
    }
  }
}

// Writes a warp's sums as entries (0: bias, 1 + f: feature f's weight, D + 1: the loss) into row
// `warp` of `partial`.
template <int Slots>
__device__ void store_warp_sums(const DenseWarpSums& sums, std::int32_t features,
                                double (*partial)[kDenseEntries]) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int s = 0; s < Slots; ++s) {
    if (lane + 32 * s < features) partial[warp][1 + lane + 32 * s] = sums.gradient[s];
  }
  if (lane == 0) {
    partial[warp][0] = sums.bias;
    partial[warp][features + 1] = sums.loss;
  }
}

// The dense path's arguments over the model's own parameters (exact mode).
struct DenseStepArgs {
  DenseRowsView rows;
  const std::int64_t* order = nullptr;  // the epoch's order (positions of the bound set's rows)
  ParameterLayout params;               // outputs 1, factors 0: [D weights | bias]
  LossKind loss = LossKind::logistic;
  float huber_delta = 1.0f;
  float* theta = nullptr;
  float* moment1 = nullptr;
  float* moment2 = nullptr;
  double* chunk_sums = nullptr;  // [chunk][kDenseEntries]
  unsigned int* finished =
      nullptr;  // the step's blocks that have written their sums; 0 between steps
  StepTotals* totals = nullptr;
  double* loss_sum = nullptr;
};

// One exact-mode step (or plans[*cursor + offset], as exact_step_kernel) of a dense linear model:
// block b sums the batch's rows [first + b kDenseRowsPerBlock, ...) (none when past the batch:
// a graph's grid is sized for its largest step), and the last block to finish updates.
// (At least 2 blocks an SM: a step of 1024 rows has 16 blocks, and a register cap of 64 spilled.)
template <int Slots>
__global__ void __launch_bounds__(kDenseThreads, 2)
    dense_exact_step_kernel(DenseStepArgs a, DevicePlannedStep direct,
                            const DevicePlannedStep* __restrict__ plans, std::int64_t* cursor,
                            int offset, int advance) {
  __shared__ float theta[kDenseEntries];
  __shared__ double partial[kDenseThreads / 32][kDenseEntries];
  __shared__ double reduce[33];
  __shared__ bool last;
  const DevicePlannedStep p = plans ? plans[*cursor + offset] : direct;
  const int tid = threadIdx.x, warp = tid >> 5;
  const std::int32_t features = a.rows.features;
  if (tid <= features) theta[tid] = a.theta[tid];  // weight(0, f) = f, bias(0) = D
  __syncthreads();

  const std::int64_t end = p.first + p.count;
  const std::int64_t tiles = (p.count + kDenseRowsPerBlock - 1) / kDenseRowsPerBlock;
  const std::int64_t chunks = dense_step_chunks(p.count);
  const std::int64_t chunk = blockIdx.x;
  DenseWarpSums sums;
  for (std::int64_t t = chunk; chunk < chunks && t < tiles; t += chunks) {  // warp-uniform
    std::int64_t begin = p.first + t * kDenseRowsPerBlock + warp * kDenseRowsPerWarp;
    begin = begin < end ? begin : end;
    const std::int64_t warp_end = begin + kDenseRowsPerWarp < end ? begin + kDenseRowsPerWarp : end;
    dense_warp_rows<Slots>(a.rows, a.order, begin, warp_end, theta, a.loss, a.huber_delta, sums);
  }
  store_warp_sums<Slots>(sums, features, partial);
  __syncthreads();
  const int entries = features + 2;
  if (tid < entries && chunk < chunks) {
    double t = partial[0][tid];
    for (int w = 1; w < kDenseThreads / 32; ++w) t += partial[w][tid];
    a.chunk_sums[chunk * kDenseEntries + tid] = t;
  }
  // The classic last-block reduction: each block's sums are visible before its ticket is.
  __threadfence();
  __syncthreads();
  if (tid == 0) last = atomicAdd(a.finished, 1u) == gridDim.x - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();

  // The chunks' sums, in an order fixed by the count: kDenseSumParts threads an entry, each over
  // every kDenseSumParts-th chunk, then the parts in order (partial is free: its last reads were
  // before the ticket). __ldcg: from L2, since this block's L1 may hold another step's sums.
  {
    const int e = tid % kDenseEntries, part = tid / kDenseEntries;
    double t = 0.0;
    if (e < entries) {
#pragma unroll 8
      for (std::int64_t b = part; b < chunks; b += kDenseSumParts)
        t += __ldcg(&a.chunk_sums[b * kDenseEntries + e]);
    }
    partial[part][e] = t;
  }
  __syncthreads();
  double total = 0.0;
  if (tid < entries) {
    total = partial[0][tid];
    for (int part = 1; part < kDenseSumParts; ++part) total += partial[part][tid];
  }
  const double weight = step_weight(p.count, p.rule);
  double squares = 0.0;
  if (p.rule.config.clip_norm > 0.0f)
    squares = block_sum(tid <= features ? total * total : 0.0, reduce);
  const double scale = gradient_scale(weight, squares, p.rule.config.clip_norm);
  if (tid <= features) {
    const std::int64_t q = dense_entry_parameter(a.params, features, 0, tid);
    update_weight(p.rule, a.params.regularized(q), static_cast<float>(total * scale), a.theta[q],
                  a.moment1[q], a.moment2[q]);
  }
  if (tid == features + 1) {
    a.totals->loss = total;
    a.totals->weight = weight;
    *a.loss_sum += total;
    *a.finished = 0;
    if (advance != 0) *cursor += advance;
  }
}

// Local SGD of a dense linear model: as LocalSgdArgs, over the row-major copy through the order.
struct DenseLocalArgs {
  DenseRowsView rows;
  const std::int64_t* order = nullptr;
  std::int64_t order_size = 0;
  ParameterLayout params;
  LossKind loss = LossKind::logistic;
  float huber_delta = 1.0f;
  LocalRound round;  // round.size: D + 1
};

// Block w runs its shard's local steps of this round with its copies in shared memory; its warps
// split each batch into equal runs of rows.
// One block an SM by default (a worker each), so the registers of a whole SM are its to use.
template <int Slots>
__global__ void __launch_bounds__(kDenseLocalThreads, 1)
    dense_local_sgd_round_kernel(DenseLocalArgs a) {
  constexpr int kWarps = kDenseLocalThreads / 32;
  __shared__ float theta[kDenseEntries], moment1[kDenseEntries], moment2[kDenseEntries];
  __shared__ double partial[kWarps][kDenseEntries];
  __shared__ double reduce[33];
  const std::int64_t w = blockIdx.x;
  std::int64_t begin = 0, end = 0;
  local_sgd_shard(a.round.batches, a.round.workers, w, begin, end);
  const int tid = threadIdx.x, warp = tid >> 5;
  const std::int32_t features = a.rows.features;
  float* const copy_theta = a.round.theta + w * a.round.size;
  float* const copy_moment1 = a.round.moment1 + w * a.round.size;
  float* const copy_moment2 = a.round.moment2 + w * a.round.size;
  if (tid < a.round.size) {
    theta[tid] = copy_theta[tid];
    moment1[tid] = copy_moment1[tid];
    moment2[tid] = copy_moment2[tid];
  }
  __syncthreads();
  double round_loss = 0.0;
  for (std::int64_t i = a.round.first_local; i < a.round.end_local && begin + i < end;
       ++i) {  // block-uniform
    const std::int64_t first = (begin + i) * a.round.batch;
    const std::int64_t count =
        a.order_size - first < a.round.batch ? a.order_size - first : a.round.batch;
    const std::int64_t per_warp = (count + kWarps - 1) / kWarps;
    const std::int64_t warp_begin = first + (warp * per_warp < count ? warp * per_warp : count);
    const std::int64_t warp_end =
        first + ((warp + 1) * per_warp < count ? (warp + 1) * per_warp : count);
    DenseWarpSums sums;
    dense_warp_rows<Slots>(a.rows, a.order, warp_begin, warp_end, theta, a.loss, a.huber_delta,
                           sums);
    store_warp_sums<Slots>(sums, features, partial);
    __syncthreads();  // every warp has read theta and written its sums
    double total = 0.0;
    if (tid < features + 2) {
      total = partial[0][tid];
      for (int v = 1; v < kWarps; ++v) total += partial[v][tid];
    }
    UpdateRule rule = a.round.rule;
    rule.bias_correction1 = a.round.corrections[i].first;
    rule.bias_correction2 = a.round.corrections[i].second;
    const double weight = step_weight(count, rule);
    double squares = 0.0;
    if (rule.config.clip_norm > 0.0f)
      squares = block_sum(tid <= features ? total * total : 0.0, reduce);
    const double scale = gradient_scale(weight, squares, rule.config.clip_norm);
    if (tid <= features) {
      const std::int64_t q = dense_entry_parameter(a.params, features, 0, tid);
      update_weight(rule, a.params.regularized(q), static_cast<float>(total * scale), theta[q],
                    moment1[q], moment2[q]);
    }
    if (tid == features + 1) round_loss += total;
    __syncthreads();  // the update before the next step's rows read theta and rewrite partial
  }
  if (tid < a.round.size) {
    copy_theta[tid] = theta[tid];
    copy_moment1[tid] = moment1[tid];
    copy_moment2[tid] = moment2[tid];
  }
  if (tid == features + 1) a.round.worker_loss[w] += round_loss;
}

// Grows `buffer` to at least `count` elements (stream-ordered: work queued on the old one finishes
// first); never shrinks, so steady-state steps allocate nothing. The old buffer is freed before the
// new one is allocated (both on `stream`, whose pool can reuse it), so that growing never needs
// both at once: gather_whole_epoch counts the epoch buffers it replaces as free memory.
template <typename T>
void reserve(DeviceBuffer<T>& buffer, std::int64_t count, cudaStream_t stream) {
  if (static_cast<std::int64_t>(buffer.size()) < count) {
    buffer = DeviceBuffer<T>();
    buffer = DeviceBuffer<T>(static_cast<std::size_t>(count), stream);
  }
}

// Copies `count` host elements to `buffer` (grown as needed). From pageable memory the copy has
// left `host` when this returns, so the caller may free it.
template <typename T>
void upload(DeviceBuffer<T>& buffer, const T* host, std::int64_t count, cudaStream_t stream) {
  reserve(buffer, count, stream);
  if (count > 0) {
    LATHE_CUDA_CHECK(cudaMemcpyAsync(buffer.data(), host,
                                     static_cast<std::size_t>(count) * sizeof(T),
                                     cudaMemcpyHostToDevice, stream));
  }
}

// Whether a model takes the dense path (dense_exact_step_kernel, dense_local_sgd_round_kernel):
// one output of a linear model over at most kDenseMaxFeatures dense features and no sparse group.
// LATHE_CUDA_DENSE_STEP=off keeps such a model on the general kernels, so that the GPU check can
// compare the two paths and the tests run both.
bool dense_path_applies(const ModelShape& shape, const ParameterLayout& params) {
  if (const char* v = std::getenv("LATHE_CUDA_DENSE_STEP");
      v != nullptr && std::string_view(v) == "off") {
    return false;
  }
  return shape.layout.groups == 0 && params.factors == 0 && params.outputs == 1 &&
         shape.loss != LossKind::softmax && shape.layout.dense_features <= kDenseMaxFeatures &&
         params.features == shape.layout.dense_features;
}

class CudaModel final : public Model {
 public:
  CudaModel(const DeviceContext& ctx, const ModelShape& shape, const OptimizerConfig& optimizer)
      : ctx_(made_current(ctx)),
        stream_(ctx.cuda().stream()),
        shape_(shape),
        optimizer_(optimizer),
        params_(parameter_layout(shape)) {
    shape_.layout.group_offset = shape_.group_offsets.data();
    const std::int64_t size = params_.size();
    upload(group_offset_, shape_.group_offsets.data(),
           static_cast<std::int64_t>(shape_.group_offsets.size()), stream_);
    theta_ = DeviceBuffer<float>(static_cast<std::size_t>(size), stream_);
    moment1_ = DeviceBuffer<float>(static_cast<std::size_t>(size), stream_);
    moment2_ = DeviceBuffer<float>(static_cast<std::size_t>(size), stream_);
    gradient_ = DeviceBuffer<double>(static_cast<std::size_t>(size), stream_);
    if (lazy()) {
      touched_ = DeviceBuffer<std::uint8_t>(static_cast<std::size_t>(params_.features), stream_);
      zero(touched_);
    }
    if (caught_up_features() > 0) {
      last_step_ = DeviceBuffer<std::uint32_t>(static_cast<std::size_t>(caught_up_features()), stream_);
      zero(last_step_);
    }
    totals_ = DeviceBuffer<StepTotals>(1, stream_);
    loss_sum_ = DeviceBuffer<double>(1, stream_);
    square_partials_ = DeviceBuffer<double>(kNormBlocks, stream_);
    dense_path_ = dense_path_applies(shape_, params_);
    if (dense_path_) {
      dense_finished_ = DeviceBuffer<unsigned int>(1, stream_);
      zero(dense_finished_);
    }
    host_totals_ = PinnedHostBuffer<StepTotals>(1);
    host_loss_sum_ = PinnedHostBuffer<double>(1);
    zero(theta_);
    zero(moment1_);
    zero(moment2_);
    zero(gradient_);
    zero(totals_);
    zero(loss_sum_);
    zero(square_partials_);
    LATHE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  ~CudaModel() override {
    // Queued steps read the buffers freed below (stream-ordered frees wait for them anyway); wait
    // here so that a failure shows on this stream rather than in a later, unrelated call.
    cudaStreamSynchronize(copy_stream_.get());
    cudaStreamSynchronize(stream_);
  }

  const ModelShape& shape() const override { return shape_; }

  // The set is copied into the second ("back") set of buffers on the copy stream, then the two
  // sets swap: the copy overlaps the steps still queued on the set bound before (a streamed epoch
  // binds window after window), and the compute stream waits for the copy on the device. The host
  // waits for the copy too (from pinned memory it is otherwise still reading the host arrays), so
  // the caller may reuse them when this returns; the steps queued before go on meanwhile.
  void bind_training_set(const TrainingSet& data) override {
    check_training_set(shape_, data);
    if (data.rows.rows > 0 && ((shape_.layout.dense_features > 0 && !data.rows.dense) ||
                               (shape_.layout.groups > 0 && (!data.rows.slot || !data.rows.value)))) {
      throw Error("bind_training_set: the GPU model reads the column-major rows, and the set has none");
    }
    const std::int64_t n = data.rows.rows;
    const std::int64_t dense = shape_.layout.dense_features * n;
    const std::int64_t sparse = static_cast<std::int64_t>(shape_.layout.groups) * n;
    const bool weighted = data.weights != nullptr;
    // The back buffers were last read by the steps queued before the previous binding.
    if (back_in_use_) LATHE_CUDA_CHECK(cudaStreamWaitEvent(copy_stream_.get(), back_released_.get(), 0));
    // Buffers are allocated and freed in the compute stream's order; a new one is usable on the
    // copy stream once the compute stream has reached its allocation, so that window's copy waits
    // for every step queued before it. Streamed windows differ in size by the rows the mask drops:
    // a buffer grows with an eighth to spare, so that happens a few times, not at every new largest
    // window.
    const auto grow = [&](auto& buffer, std::int64_t count) {
      if (static_cast<std::int64_t>(buffer.size()) >= count) return false;
      // The spare eighth only once a set is bound (a second binding: streamed windows), so that a
      // set bound once, held in memory for all of training, takes no more than it needs.
      reserve(buffer, bound_ ? count + count / 8 : count, stream_);
      return true;
    };
    bool grown = grow(back_dense_, dense);
    grown = grow(back_slot_, sparse) || grown;
    grown = grow(back_value_, sparse) || grown;
    grown = grow(back_labels_, n) || grown;
    if (weighted) grown = grow(back_weights_, n) || grown;
    if (grown) {
      allocated_.record(stream_);
      LATHE_CUDA_CHECK(cudaStreamWaitEvent(copy_stream_.get(), allocated_.get(), 0));
    }
    // Should anything below throw, no copy may still be reading the caller's arrays (they may be
    // reloaded or freed as the exception unwinds).
    struct CopiesFinished {
      cudaStream_t stream;
      bool armed = true;
      ~CopiesFinished() {
        if (armed) cudaStreamSynchronize(stream);
      }
    } copies_finished{copy_stream_.get()};
    upload(back_dense_, data.rows.dense, dense, copy_stream_.get());
    upload(back_slot_, data.rows.slot, sparse, copy_stream_.get());
    upload(back_value_, data.rows.value, sparse, copy_stream_.get());
    upload(back_labels_, data.labels, n, copy_stream_.get());
    if (weighted) upload(back_weights_, data.weights, n, copy_stream_.get());
    copied_.record(copy_stream_.get());
    // The set bound until now is released when the steps queued on it so far have run.
    back_released_.record(stream_);
    LATHE_CUDA_CHECK(cudaStreamWaitEvent(stream_, copied_.get(), 0));
    LATHE_CUDA_CHECK(cudaEventSynchronize(copied_.get()));
    copies_finished.armed = false;
    std::swap(dense_, back_dense_);
    std::swap(slot_, back_slot_);
    std::swap(value_, back_value_);
    std::swap(labels_, back_labels_);
    std::swap(weights_, back_weights_);
    back_in_use_ = bound_;
    weighted_ = weighted;
    rows_ = n;
    bound_ = true;
    order_size_ = 0;
    dense_rows_ready_ = false;
    dense_rows_decided_ = false;
    new_order();
  }

  void set_epoch_order(const std::vector<std::int64_t>& order) override {
    if (!bound_) throw Error("set_epoch_order: no training set is bound");
    check_order(order, rows_);
    upload(order_, order.data(), static_cast<std::int64_t>(order.size()), stream_);
    order_size_ = static_cast<std::int64_t>(order.size());
    new_order();
  }

  void set_epoch_permutation(const EpochPermutation& permutation) override {
    if (!bound_) throw Error("set_epoch_permutation: no training set is bound");
    check_permutation(permutation, rows_);
    reserve(order_, permutation.rows, stream_);
    if (permutation.rows > 0) {
      const std::int64_t blocks = std::min<std::int64_t>(
          (permutation.rows + kGatherThreads - 1) / kGatherThreads, kGatherMaxBlocks);
      epoch_order_kernel<<<static_cast<unsigned>(blocks), kGatherThreads, 0, stream_>>>(permutation,
                                                                                       order_.data());
      LATHE_CUDA_CHECK_LAUNCH();
    }
    order_size_ = permutation.rows;
    new_order();
  }

  double train_step(std::int64_t first, std::int64_t count, const StepSettings& settings) override {
    if (!bound_) throw Error("train_step: no training set is bound");
    check_step(first, count, order_size_, settings);
    if (count == 0) return 0.0;
    last_rule_ = update_rule(optimizer_, settings);
    stepped_ = true;
    if (dense_rows_ready()) {
      const std::int64_t blocks = dense_step_blocks(count);
      launch_dense_exact_step(dense_step_args(blocks), blocks,
                              DevicePlannedStep{first, count, update_rule(optimizer_, settings)},
                              nullptr, nullptr, 0, 0);
      return step_loss(settings);
    }
    const std::int32_t outputs = params_.outputs, groups = shape_.layout.groups;
    const std::int64_t dense = shape_.layout.dense_features;
    reserve(dscore_, count * outputs, stream_);
    reserve(sums_, count * outputs * params_.factors, stream_);
    const std::int64_t size = params_.size();
    if (gather_whole_epoch()) {
      // A window of the epoch gathered in order: no gather per step, coalesced reads.
      StepArgs a = epoch_step_args();
      a.fused_update = size <= kFusedUpdateMax;
      return finish_step(a, DevicePlannedStep{first, count, update_rule(optimizer_, settings)}, settings);
    }
    reserve(batch_dense_, count * dense, stream_);
    reserve(batch_slot_, count * groups, stream_);
    reserve(batch_value_, count * groups, stream_);
    reserve(batch_label_, count, stream_);
    if (weighted_) reserve(batch_weight_, count, stream_);

    launch_gather(order_.data() + first, count, batch_dense_.data(), batch_slot_.data(), batch_value_.data(),
                  batch_label_.data(), batch_weight_.data());

    StepArgs a = step_args(PreparedRowsView{batch_dense_.data(), batch_slot_.data(), batch_value_.data(), count},
                           batch_label_.data(), batch_weight_.data());
    a.fused_update = size <= kFusedUpdateMax;
    return finish_step(a, DevicePlannedStep{0, count, update_rule(optimizer_, settings)}, settings);
  }

  // Steps over the gathered epoch through a CUDA graph of kGraphSteps exact_step_kernel
  // launches, replayed while whole groups remain; the rest launch one by one. The step kernels and
  // their arguments are those of train_step, so the bits are the same. Models too wide for the
  // fused update, or an epoch too large to gather, take train_step's path.
  void train_steps(std::span<const PlannedStep> steps) override {
    if (!bound_) throw Error("train_steps: no training set is bound");
    for (const PlannedStep& p : steps) check_step(p.first, p.count, order_size_, p.settings);
    if (steps.empty()) return;
    const bool dense = dense_rows_ready();
    if (!dense && (params_.size() > kFusedUpdateMax || !gather_whole_epoch())) {
      Model::train_steps(steps);
      return;
    }
    // A step of no rows is no step (train_step returns at once); planned, it would still run the
    // update with a zero gradient, which moves Adam's and momentum's weights and decays l2's.
    std::int64_t n = 0, largest = 0;
    for (const PlannedStep& p : steps) {
      n += p.count > 0 ? 1 : 0;
      largest = std::max(largest, p.count);
    }
    if (n == 0) return;
    if (!dense) {
      reserve(dscore_, largest * params_.outputs, stream_);
      reserve(sums_, largest * params_.outputs * params_.factors, stream_);
    }
    // The previous call's plan upload may still read the pinned staging: wait before rewriting it.
    LATHE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    if (static_cast<std::int64_t>(plans_host_.size()) < n) {
      plans_host_ = PinnedHostBuffer<DevicePlannedStep>();
      plans_host_ = PinnedHostBuffer<DevicePlannedStep>(static_cast<std::size_t>(n));
    }
    std::int64_t planned = 0;
    for (const PlannedStep& p : steps) {
      if (p.count > 0) plans_host_.data()[planned++] = DevicePlannedStep{p.first, p.count, update_rule(optimizer_, p.settings)};
    }
    last_rule_ = plans_host_.data()[planned - 1].rule;
    stepped_ = true;
    reserve(plans_, n, stream_);
    LATHE_CUDA_CHECK(cudaMemcpyAsync(plans_.data(), plans_host_.data(),
                                     static_cast<std::size_t>(n) * sizeof(DevicePlannedStep),
                                     cudaMemcpyHostToDevice, stream_));
    reserve(plan_cursor_, 1, stream_);
    LATHE_CUDA_CHECK(cudaMemsetAsync(plan_cursor_.data(), 0, sizeof(std::int64_t), stream_));

    const DevicePlannedStep* plans = plans_.data();
    std::int64_t* cursor = plan_cursor_.data();
    // Launch i of a group reads plan *cursor + offset; the group's last launch advances the cursor.
    std::function<void(int offset, int advance)> launch;
    if (dense) {
      // One grid for every step, sized for the largest (a block past its step's rows sums nothing).
      const std::int64_t blocks = dense_step_blocks(largest);
      const DenseStepArgs args = dense_step_args(blocks);
      launch = [=, this](int offset, int advance) {
        launch_dense_exact_step(args, blocks, DevicePlannedStep{}, plans, cursor, offset, advance);
      };
    } else {
      StepArgs base = epoch_step_args();
      base.fused_update = true;
      launch = [=, this](int offset, int advance) {
        exact_step_kernel<<<1, kStepThreads, 0, stream_>>>(base, DevicePlannedStep{}, plans, cursor,
                                                           offset, advance);
        LATHE_CUDA_CHECK_LAUNCH();
      };
    }
    const std::int64_t groups = n / kGraphSteps;
    if (groups > 0) {
      // Captured per call: the buffers it points at may have moved since the last one.
      const CudaGraphExec graph = CudaGraphExec::capture(stream_, [&] {
        for (int i = 0; i < kGraphSteps; ++i) launch(i, i == kGraphSteps - 1 ? kGraphSteps : 0);
      });
      for (std::int64_t g = 0; g < groups; ++g) graph.launch(stream_);
      // The graph may be destroyed while its launches are queued (CUDA keeps what they need).
    }
    for (std::int64_t i = groups * kGraphSteps; i < n; ++i) launch(0, 1);
  }

  // Launches step `step` over the rows `a` points at (and, for a model too wide for the fused
  // update, the update kernels), then returns the loss when asked for.
  double finish_step(const StepArgs& a, const DevicePlannedStep& step, const StepSettings& settings) {
    const std::int64_t size = params_.size();
    exact_step_kernel<<<1, kStepThreads, 0, stream_>>>(a, step, nullptr, nullptr, 0, 0);
    LATHE_CUDA_CHECK_LAUNCH();

    if (!a.fused_update) {
      if (optimizer_.clip_norm > 0.0f) {
        gradient_squares_kernel<<<kNormBlocks, kUpdateThreads, 0, stream_>>>(
            gradient_.data(), size, square_partials_.data());
        LATHE_CUDA_CHECK_LAUNCH();
      }
      UpdateArgs u;
      u.params = params_;
      u.theta = theta_.data();
      u.moment1 = moment1_.data();
      u.moment2 = moment2_.data();
      u.gradient = gradient_.data();
      u.touched = touched_flags();
      u.last_step = last_steps();
      u.dense = shape_.layout.dense_features;
      u.totals = totals_.data();
      u.square_partials = square_partials_.data();
      u.rule = step.rule;
      const std::int64_t blocks =
          std::min<std::int64_t>((size + kUpdateThreads - 1) / kUpdateThreads, kUpdateMaxBlocks);
      update_kernel<<<static_cast<unsigned>(blocks), kUpdateThreads, 0, stream_>>>(u);
      LATHE_CUDA_CHECK_LAUNCH();
    }

    return step_loss(settings);
  }

  // The last step's summed loss when `settings` asks for it (waiting for the step), else NaN.
  double step_loss(const StepSettings& settings) {
    if (!settings.return_loss) return std::numeric_limits<double>::quiet_NaN();
    LATHE_CUDA_CHECK(cudaMemcpyAsync(host_totals_.data(), totals_.data(), sizeof(StepTotals),
                                     cudaMemcpyDeviceToHost, stream_));
    LATHE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return host_totals_.data()->loss;
  }

  // A block per worker (local_sgd_round_kernel) runs sync_every local steps, then
  // average_workers_kernel averages the copies; the epoch's rows are gathered in order once, so a
  // batch is a window of that block. Local step i of every worker has step count first_step + i.
  void train_epoch_local_sgd(const LocalSgdSettings& settings) override {
    if (!bound_) throw Error("train_epoch_local_sgd: no training set is bound");
    check_local_sgd(settings);
    const std::int64_t n = order_size_;
    if (n == 0) return;
    const std::int32_t outputs = params_.outputs;
    const std::int64_t k = params_.factors;
    const std::int64_t size = params_.size();
    // A batch above the epoch's rows is one step over them all, as a batch of n: the workers'
    // scratch below is sized by it (workers x batch x outputs x factors), which went past int64 or
    // the device's memory at --batch 9223372036854775807 (or 1e9 on a small table).
    const std::int64_t batch = std::min(settings.batch, n);
    // ceil(n / batch), without the overflow of n + batch - 1 at --batch 9223372036854775807.
    const std::int64_t batches = n / batch + (n % batch != 0);
    // The default: a worker per SM, but few enough that each averages at least twice an epoch
    // (more workers of fewer steps each converge more slowly per epoch).
    // (batches / 2 / sync_every: 2 * sync_every went past int64 at --sync-every 2^63 - 1.)
    const std::int64_t fitting = std::max<std::int64_t>(1, batches / 2 / settings.sync_every);
    std::int64_t workers =
        settings.workers > 0
            ? settings.workers
            : std::min<std::int64_t>(ctx_.cuda().multiprocessors(), fitting);
    workers = std::min(workers, batches);
    // A worker's copies: 20 bytes a parameter, a touched flag a feature and, where penalties are
    // caught up, a 4-byte last step a sparse feature.
    workers = std::min(workers, std::max<std::int64_t>(
                                    1, kLocalCopiesMaxBytes /
                                           (20 * size + params_.features + 4 * caught_up_features())));
    const std::int64_t longest = (batches + workers - 1) / workers;

    std::vector<BiasCorrection> corrections(static_cast<std::size_t>(longest));
    for (std::int64_t i = 0; i < longest; ++i) {
      StepSettings st;
      st.learning_rate = settings.learning_rate;
      st.step = settings.first_step + i;
      const UpdateRule r = update_rule(optimizer_, st);
      corrections[i] = BiasCorrection{r.bias_correction1, r.bias_correction2};
    }
    upload(corrections_, corrections.data(), longest, stream_);
    StepSettings base;
    base.learning_rate = settings.learning_rate;
    base.step = settings.first_step;
    base.mean_weight = settings.mean_weight;
    const UpdateRule rule = update_rule(optimizer_, base);
    // The epoch's last step in the trainer's count (the sparse features' last steps move on to it).
    last_rule_ = rule;
    last_rule_.step = static_cast<std::uint32_t>(settings.first_step + batches - 1);
    stepped_ = true;

    // The epoch's rows, in order (the general kernel's workers read windows of them; the dense
    // path reads the row-major copy through the order instead).
    const bool dense = dense_rows_ready();
    if (!dense && !epoch_gathered_) gather_epoch();

    // The workers' copies and scratch (the general kernel's only: the dense path keeps its
    // gradient in registers); the gradients start (and stay, between steps) at zero.
    reserve(local_theta_, workers * size, stream_);
    reserve(local_moment1_, workers * size, stream_);
    reserve(local_moment2_, workers * size, stream_);
    if (!dense) {
      if (static_cast<std::int64_t>(local_gradient_.size()) < workers * size) {
        local_gradient_ = DeviceBuffer<double>(static_cast<std::size_t>(workers * size), stream_);
        zero(local_gradient_);
      }
      const std::int64_t flags = lazy() ? workers * params_.features : 0;
      if (static_cast<std::int64_t>(local_touched_.size()) < flags) {
        local_touched_ = DeviceBuffer<std::uint8_t>(static_cast<std::size_t>(flags), stream_);
        zero(local_touched_);
      }
      reserve(local_dscore_, workers * batch * outputs, stream_);
      reserve(local_sums_, workers * batch * outputs * k, stream_);
      reserve(local_last_step_, workers * caught_up_features(), stream_);
    }
    reserve(local_totals_, workers, stream_);
    reserve(local_loss_, workers, stream_);
    zero(local_loss_);

    AverageArgs avg;
    avg.size = size;
    avg.workers = workers;
    avg.copies[0] = local_theta_.data();
    avg.copies[1] = local_moment1_.data();
    avg.copies[2] = local_moment2_.data();
    avg.main[0] = theta_.data();
    avg.main[1] = moment1_.data();
    avg.main[2] = moment2_.data();
    avg.worker_loss = local_loss_.data();
    avg.loss_sum = loss_sum_.data();
    if (!dense && caught_up_features() > 0) {
      avg.last_copies = local_last_step_.data();
      avg.last_main = last_step_.data();
      avg.caught_up = caught_up_features();
      avg.skipped_steps = static_cast<std::uint32_t>(batches - longest);
    }
    const auto blocks_for = [](std::int64_t total) {
      return static_cast<unsigned>(std::max<std::int64_t>(
          1, std::min<std::int64_t>((total + kUpdateThreads - 1) / kUpdateThreads,
                                    kUpdateMaxBlocks)));
    };
    broadcast_to_workers_kernel<<<blocks_for(workers * std::max(size, avg.caught_up)), kUpdateThreads, 0, stream_>>>(avg);
    LATHE_CUDA_CHECK_LAUNCH();
    if (workers > 0x7fffffffLL) throw Error("train_epoch_local_sgd: too many workers");
    LocalRound round;
    round.batch = batch;
    round.batches = batches;
    round.workers = workers;
    round.size = size;
    round.theta = local_theta_.data();
    round.moment1 = local_moment1_.data();
    round.moment2 = local_moment2_.data();
    round.worker_loss = local_loss_.data();
    round.corrections = corrections_.data();
    round.rule = rule;
    // Rounds of sync_every local steps, each followed by the workers' average (written back to
    // every copy but after the last): launch_round() launches the kernel of round r.
    const auto run_rounds = [&](LocalRound& r, const auto& launch_round) {
      for (std::int64_t first = 0; first < longest; first += settings.sync_every) {
        r.first_local = first;
        r.end_local = std::min(longest, first + settings.sync_every);
        launch_round();
        LATHE_CUDA_CHECK_LAUNCH();
        avg.last = r.end_local == longest;
        avg.broadcast = !avg.last;
        average_workers_kernel<<<blocks_for(std::max(size, avg.caught_up)), kUpdateThreads, 0, stream_>>>(avg);
        LATHE_CUDA_CHECK_LAUNCH();
      }
    };

    if (dense) {
      DenseLocalArgs d;
      d.rows = dense_rows_view();
      d.order = order_.data();
      d.order_size = n;
      d.params = params_;
      d.loss = shape_.loss;
      d.huber_delta = shape_.huber_delta;
      d.round = round;
      run_rounds(d.round, [&] {
        if (d.rows.stride <= 32) {
          dense_local_sgd_round_kernel<1>
              <<<static_cast<unsigned>(workers), kDenseLocalThreads, 0, stream_>>>(d);
        } else {
          dense_local_sgd_round_kernel<2>
              <<<static_cast<unsigned>(workers), kDenseLocalThreads, 0, stream_>>>(d);
        }
      });
      return;
    }

    LocalSgdArgs a;
    a.model = device_view();
    a.epoch.rows =
        PreparedRowsView{epoch_dense_.data(), epoch_slot_.data(), epoch_value_.data(), n};
    a.epoch.labels = epoch_label_.data();
    a.epoch.weights = weighted_ ? epoch_weight_.data() : nullptr;
    a.round = round;
    a.gradient = local_gradient_.data();
    a.touched = lazy() ? local_touched_.data() : nullptr;
    a.last_step = avg.last_copies;
    a.caught_up = avg.caught_up;
    a.dscore = local_dscore_.data();
    a.sums = local_sums_.data();
    a.totals = local_totals_.data();
    run_rounds(a.round, [&] {
      local_sgd_round_kernel<<<static_cast<unsigned>(workers), kLocalThreads, 0, stream_>>>(a);
    });
  }

  void catch_up_penalties() override {
    if (!stepped_ || !catches_up_before_reading(shape_, optimizer_)) return;
    const std::int64_t caught_up = caught_up_features();
    const std::int64_t blocks =
        std::min<std::int64_t>((caught_up + kUpdateThreads - 1) / kUpdateThreads, kUpdateMaxBlocks);
    catch_up_kernel<<<static_cast<unsigned>(blocks), kUpdateThreads, 0, stream_>>>(
        last_rule_, params_, shape_.layout.dense_features, caught_up, theta_.data(),
        last_step_.data());
    LATHE_CUDA_CHECK_LAUNCH();
  }

  double take_loss_sum() override {
    LATHE_CUDA_CHECK(cudaMemcpyAsync(host_loss_sum_.data(), loss_sum_.data(), sizeof(double),
                                     cudaMemcpyDeviceToHost, stream_));
    zero(loss_sum_);
    LATHE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return *host_loss_sum_.data();
  }

  void predict_scores(const PreparedRowsView& rows, float* out) override {
    check_rows(shape_, rows, "predict_scores");
    predict(rows, shape_.task == Task::regression, RegressionMap{}, out, "predict_scores");
  }

  void predict_regression(const PreparedRowsView& rows, double target_mean, double target_std,
                          TargetTransform transform, float* out) override {
    check_regression(shape_, "predict_regression");
    check_rows(shape_, rows, "predict_regression");
    predict(rows, true, RegressionMap{target_mean, target_std, transform}, out, "predict_regression");
  }

  ModelParameters parameters() const override {
    std::vector<float> theta(static_cast<std::size_t>(params_.size()));
    LATHE_CUDA_CHECK(cudaMemcpyAsync(theta.data(), theta_.data(), theta.size() * sizeof(float),
                                     cudaMemcpyDeviceToHost, stream_));
    LATHE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return unpack_parameters(theta, params_);
  }

  void set_parameters(const ModelParameters& parameters) override {
    check_parameters(shape_, parameters);
    const std::vector<float> theta = pack_parameters(parameters);
    upload(theta_, theta.data(), static_cast<std::int64_t>(theta.size()), stream_);
    zero(moment1_);
    zero(moment2_);
    zero(last_step_);
    LATHE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  OptimizerState optimizer_state() const override {
    OptimizerState out;
    const auto size = static_cast<std::size_t>(params_.size());
    out.first.resize(size);
    out.second.resize(size);
    if (size > 0) {
      LATHE_CUDA_CHECK(cudaMemcpyAsync(out.first.data(), moment1_.data(), size * sizeof(float),
                                       cudaMemcpyDeviceToHost, stream_));
      LATHE_CUDA_CHECK(cudaMemcpyAsync(out.second.data(), moment2_.data(), size * sizeof(float),
                                       cudaMemcpyDeviceToHost, stream_));
    }
    out.last_step.resize(static_cast<std::size_t>(caught_up_features()));
    if (!out.last_step.empty()) {
      LATHE_CUDA_CHECK(cudaMemcpyAsync(out.last_step.data(), last_step_.data(),
                                       out.last_step.size() * sizeof(std::uint32_t), cudaMemcpyDeviceToHost, stream_));
    }
    LATHE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return out;
  }

  void set_optimizer_state(const OptimizerState& state) override {
    check_optimizer_state(shape_, state);
    const auto size = static_cast<std::int64_t>(params_.size());
    if (state.first.empty()) {
      zero(moment1_);
    } else {
      upload(moment1_, state.first.data(), size, stream_);
    }
    if (state.second.empty()) {
      zero(moment2_);
    } else {
      upload(moment2_, state.second.data(), size, stream_);
    }
    if (state.last_step.empty()) {
      zero(last_step_);
    } else if (caught_up_features() > 0) {
      upload(last_step_, state.last_step.data(), caught_up_features(), stream_);
    }
    // The host vectors may go away once this returns: wait for the pageable copies.
    LATHE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

 private:
  // Whether steps take the dense path over the row-major copy of the bound set, making the copy
  // now if not yet: when the model qualifies (dense_path_) and the copy takes at most half the
  // device's free memory. Decided once per bound set; the order does not matter.
  bool dense_rows_ready() {
    if (!dense_path_) return false;
    if (dense_rows_ready_) return true;
    if (dense_rows_decided_) return false;
    dense_rows_decided_ = true;
    const std::int64_t stride = dense_row_stride(shape_.layout.dense_features);
    std::size_t free_bytes = 0, total_bytes = 0;
    LATHE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    const double bytes = 4.0 * static_cast<double>(stride) * static_cast<double>(rows_);
    const double held = 4.0 * static_cast<double>(dense_rows_.size());
    if (bytes > 0.5 * (static_cast<double>(free_bytes) + held)) return false;
    // Streamed windows differ in size by the rows the mask drops: an eighth to spare once a copy
    // has been made before, as bind_training_set's buffers.
    if (static_cast<std::int64_t>(dense_rows_.size()) < rows_ * stride) {
      reserve(dense_rows_, rows_ * stride + (dense_rows_.size() > 0 ? rows_ * stride / 8 : 0),
              stream_);
    }
    if (rows_ > 0) {
      const std::int64_t blocks = std::min<std::int64_t>(
          (rows_ * stride + kGatherThreads - 1) / kGatherThreads, kGatherMaxBlocks);
      dense_rows_kernel<<<static_cast<unsigned>(blocks), kGatherThreads, 0, stream_>>>(
          dense_.data(), labels_.data(), weighted_ ? weights_.data() : nullptr, rows_,
          static_cast<std::int32_t>(shape_.layout.dense_features), stride, dense_rows_.data());
      LATHE_CUDA_CHECK_LAUNCH();
    }
    dense_rows_ready_ = true;
    return true;
  }

  DenseRowsView dense_rows_view() const {
    return DenseRowsView{dense_rows_.data(), dense_row_stride(shape_.layout.dense_features),
                         static_cast<std::int32_t>(shape_.layout.dense_features)};
  }

  // Blocks of a dense exact-mode step of `count` rows (a chunk of kDenseRowsPerBlock rows each).
  static std::int64_t dense_step_blocks(std::int64_t count) {
    return std::max<std::int64_t>(1, dense_step_chunks(count));
  }

  // The dense exact-mode step's arguments, with room for `blocks` chunks' sums.
  DenseStepArgs dense_step_args(std::int64_t blocks) {
    reserve(dense_chunk_sums_, blocks * kDenseEntries, stream_);
    DenseStepArgs a;
    a.rows = dense_rows_view();
    a.order = order_.data();
    a.params = params_;
    a.loss = shape_.loss;
    a.huber_delta = shape_.huber_delta;
    a.theta = theta_.data();
    a.moment1 = moment1_.data();
    a.moment2 = moment2_.data();
    a.chunk_sums = dense_chunk_sums_.data();
    a.finished = dense_finished_.data();
    a.totals = totals_.data();
    a.loss_sum = loss_sum_.data();
    return a;
  }

  void launch_dense_exact_step(const DenseStepArgs& a, std::int64_t blocks,
                               const DevicePlannedStep& direct, const DevicePlannedStep* plans,
                               std::int64_t* cursor, int offset, int advance) {
    const auto grid = static_cast<unsigned>(blocks);
    if (a.rows.stride <= 32) {
      dense_exact_step_kernel<1>
          <<<grid, kDenseThreads, 0, stream_>>>(a, direct, plans, cursor, offset, advance);
    } else {
      dense_exact_step_kernel<2>
          <<<grid, kDenseThreads, 0, stream_>>>(a, direct, plans, cursor, offset, advance);
    }
    LATHE_CUDA_CHECK_LAUNCH();
  }

  // Forgets the gathered epoch; the next step decides again whether to gather the new order.
  void new_order() {
    epoch_gathered_ = false;
    epoch_gather_decided_ = false;
  }

  // Whether exact-mode steps read the epoch gathered in order (gathering it now if not yet): when
  // the gathered copy takes at most half the device's free memory. Decided once per order.
  bool gather_whole_epoch() {
    if (epoch_gathered_) return true;
    if (epoch_gather_decided_) return false;
    epoch_gather_decided_ = true;
    // LATHE_CUDA_GATHER_EPOCH=never takes the per-step gather of a window too large to gather,
    // so that the device tests run that path (and the copy stream's release wait it depends on)
    // on tables that fit.
    if (const char* v = std::getenv("LATHE_CUDA_GATHER_EPOCH"); v != nullptr && std::string_view(v) == "never") {
      return false;
    }
    std::size_t free_bytes = 0, total_bytes = 0;
    LATHE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    const std::int64_t columns = shape_.layout.dense_features + 2 * shape_.layout.groups + 1 + (weighted_ ? 1 : 0);
    const double bytes = 4.0 * static_cast<double>(columns) * static_cast<double>(order_size_);
    const double held = 4.0 * static_cast<double>(columns) * static_cast<double>(epoch_label_.size());
    if (bytes > 0.5 * (static_cast<double>(free_bytes) + held)) return false;
    gather_epoch();
    return true;
  }

  // Gathers the rows order[0 .. order_size_) into the epoch_* buffers, column-major with stride
  // order_size_ (one launch; consecutive threads write consecutive entries of a column).
  void gather_epoch() {
    const std::int64_t n = order_size_;
    const std::int32_t groups = shape_.layout.groups;
    const std::int64_t dense = shape_.layout.dense_features;
    reserve(epoch_dense_, dense * n, stream_);
    reserve(epoch_slot_, groups * n, stream_);
    reserve(epoch_value_, groups * n, stream_);
    reserve(epoch_label_, n, stream_);
    if (weighted_) reserve(epoch_weight_, n, stream_);
    if (n > 0) {
      launch_gather(order_.data(), n, epoch_dense_.data(), epoch_slot_.data(), epoch_value_.data(),
                    epoch_label_.data(), epoch_weight_.data());
    }
    epoch_gathered_ = true;
    epoch_gather_decided_ = true;
  }

  // Gathers the training rows order[0 .. count) into column-major blocks of `count` rows (the
  // weights only when the set is weighted); one launch on the model's stream.
  void launch_gather(const std::int64_t* order, std::int64_t count, float* dense_to, std::int32_t* slot_to,
                     float* value_to, float* label_to, float* weight_to) {
    GatherArgs gather;
    gather.from = PreparedRowsView{dense_.data(), slot_.data(), value_.data(), rows_};
    gather.labels = labels_.data();
    gather.weights = weighted_ ? weights_.data() : nullptr;
    gather.groups = shape_.layout.groups;
    gather.dense = shape_.layout.dense_features;
    gather.order = order;
    gather.count = count;
    gather.dense_to = dense_to;
    gather.slot_to = slot_to;
    gather.value_to = value_to;
    gather.label_to = label_to;
    gather.weight_to = weight_to;
    const std::int64_t gather_total = (gather.dense + 2 * gather.groups + 2) * count;
    const std::int64_t gather_blocks = std::min<std::int64_t>(
        (gather_total + kGatherThreads - 1) / kGatherThreads, kGatherMaxBlocks);
    gather_batch_kernel<<<static_cast<unsigned>(gather_blocks), kGatherThreads, 0, stream_>>>(gather);
    LATHE_CUDA_CHECK_LAUNCH();
  }

  // A step's arguments over column-major rows (the batch's row `first` is set per step, with its
  // count and update rule: DevicePlannedStep), with the model's parameters and scratch.
  StepArgs step_args(const PreparedRowsView& rows, const float* labels, const float* weights) {
    StepArgs a;
    a.model = device_view();
    a.data.rows = rows;
    a.data.labels = labels;
    a.data.weights = weighted_ ? weights : nullptr;
    a.theta = theta_.data();
    a.moment1 = moment1_.data();
    a.moment2 = moment2_.data();
    a.gradient = gradient_.data();
    a.touched = touched_flags();
    a.last_step = last_steps();
    a.dscore = dscore_.data();
    a.sums = sums_.data();
    a.totals = totals_.data();
    a.loss_sum = loss_sum_.data();
    return a;
  }

  // A step's arguments over the whole gathered epoch (stride: the epoch's row count).
  StepArgs epoch_step_args() {
    return step_args(PreparedRowsView{epoch_dense_.data(), epoch_slot_.data(), epoch_value_.data(), order_size_},
                     epoch_label_.data(), epoch_weight_.data());
  }

  // Uploads the rows and runs predict_kernel (predicted_scores: float scores, an fm's summed in
  // double), or predict_regression_kernel (the scores summed in double, then `map`) when
  // `regression`; copies out[rows * outputs] back.
  void predict(const PreparedRowsView& rows, bool regression, const RegressionMap& map,
               float* out, const char* what) {
    const std::int64_t n = rows.rows;
    if (n == 0) return;
    const std::int32_t outputs = params_.outputs;
    upload(predict_dense_, rows.dense, shape_.layout.dense_features * n, stream_);
    upload(predict_slot_, rows.slot, static_cast<std::int64_t>(shape_.layout.groups) * n, stream_);
    upload(predict_value_, rows.value, static_cast<std::int64_t>(shape_.layout.groups) * n,
           stream_);
    reserve(predict_out_, n * outputs, stream_);
    const PreparedRowsView device_rows{predict_dense_.data(), predict_slot_.data(),
                                       predict_value_.data(), n};
    // An fm's scratch (doubles per row, output and factor) for a launch of at most kPredictRows
    // rows at a time: for the whole set at once, a million rows of a 10-class fm of 32 factors
    // would take 2.6 GB of it.
    const std::int64_t launch_rows = params_.factors > 0 ? std::min(n, kPredictRows) : n;
    reserve(predict_sums_, launch_rows * outputs * params_.factors, stream_);
    for (std::int64_t first = 0; first < n; first += launch_rows) {
      const std::int64_t end = std::min(n, first + launch_rows);
      const std::int64_t blocks = (end - first + kPredictThreads - 1) / kPredictThreads;
      if (blocks > 0x7fffffffLL) throw Error(std::string(what) + ": too many rows for one launch");
      if (regression) {
        predict_regression_kernel<<<static_cast<unsigned>(blocks), kPredictThreads, 0, stream_>>>(
            device_view(), device_rows, first, end, map, predict_out_.data(), predict_sums_.data());
      } else {
        predict_kernel<<<static_cast<unsigned>(blocks), kPredictThreads, 0, stream_>>>(
            device_view(), device_rows, first, end, predict_out_.data(), predict_sums_.data());
      }
      LATHE_CUDA_CHECK_LAUNCH();
    }
    LATHE_CUDA_CHECK(cudaMemcpyAsync(out, predict_out_.data(),
                                     static_cast<std::size_t>(n * outputs) * sizeof(float),
                                     cudaMemcpyDeviceToHost, stream_));
    LATHE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  ModelView device_view() const {
    ModelView m;
    m.theta = theta_.data();
    m.params = params_;
    m.layout = shape_.layout;
    m.layout.group_offset = group_offset_.data();
    m.loss = shape_.loss;
    m.huber_delta = shape_.huber_delta;
    return m;
  }

  std::uint8_t* touched_flags() { return lazy() ? touched_.data() : nullptr; }
  bool lazy() const { return shape_.layout.groups > 0 && optimizer_.lazy_sparse; }
  // The sparse features whose last steps last_step_ keeps (caught_up_feature_count).
  std::int64_t caught_up_features() const { return caught_up_feature_count(shape_, optimizer_); }
  std::uint32_t* last_steps() { return caught_up_features() > 0 ? last_step_.data() : nullptr; }

  template <typename T>
  void zero(DeviceBuffer<T>& buffer) {
    if (buffer.size() > 0) {
      LATHE_CUDA_CHECK(cudaMemsetAsync(buffer.data(), 0, buffer.size() * sizeof(T), stream_));
    }
  }

  // Makes ctx's device current before the members after ctx_ are made: streams, events and
  // buffers belong to the device current when they are created.
  static const DeviceContext& made_current(const DeviceContext& ctx) {
    LATHE_CUDA_CHECK(cudaSetDevice(ctx.cuda().index()));
    return ctx;
  }

  DeviceContext ctx_;  // first: keeps the backend and its stream alive until the buffers are freed
  cudaStream_t stream_;
  ModelShape shape_;
  OptimizerConfig optimizer_;
  ParameterLayout params_;

  DeviceBuffer<std::int64_t> group_offset_;
  DeviceBuffer<float> theta_, moment1_, moment2_;
  DeviceBuffer<double> gradient_;  // summed over the batch; all zero between steps
  // A flag per expanded feature: the step's batch holds it (update_parameters); all zero between
  // steps. Allocated only for a model with sparse features.
  DeviceBuffer<std::uint8_t> touched_;
  // The step of each sparse feature's last update ([features - dense], caught_up_features() of
  // them; OptimizerState::last_step); allocated only when updates catch up penalties.
  DeviceBuffer<std::uint32_t> last_step_;
  // The rule of the last step taken (after local SGD: its epoch's last step, numbered as the
  // trainer counts), up to which catch_up_penalties brings the sparse features.
  UpdateRule last_rule_;
  bool stepped_ = false;
  DeviceBuffer<StepTotals> totals_;
  DeviceBuffer<double> loss_sum_;
  DeviceBuffer<double> square_partials_;
  PinnedHostBuffer<StepTotals> host_totals_;
  PinnedHostBuffer<double> host_loss_sum_;

  // The bound training set and the epoch's order.
  DeviceBuffer<float> dense_, value_, labels_, weights_;
  DeviceBuffer<std::int32_t> slot_;
  // The second set of training buffers, filled on the copy stream by the next binding
  // (bind_training_set); `back_released_` marks the end of the steps queued on them while bound.
  DeviceBuffer<float> back_dense_, back_value_, back_labels_, back_weights_;
  DeviceBuffer<std::int32_t> back_slot_;
  CudaStream copy_stream_;
  CudaEvent copied_{EventUse::ordering}, back_released_{EventUse::ordering}, allocated_{EventUse::ordering};
  bool back_in_use_ = false;
  std::int64_t rows_ = 0;
  bool weighted_ = false;
  bool bound_ = false;
  DeviceBuffer<std::int64_t> order_;
  std::int64_t order_size_ = 0;
  // The epoch's rows gathered in order (epoch_* below), for exact-mode steps and local SGD.
  bool epoch_gathered_ = false;
  bool epoch_gather_decided_ = false;
  // The dense path (dense_rows_ready): whether the model qualifies, the row-major copy of the
  // bound set and whether it is made (or refused) for this set; an exact step's chunk sums and its
  // count of finished blocks.
  bool dense_path_ = false;
  bool dense_rows_ready_ = false;
  bool dense_rows_decided_ = false;
  DeviceBuffer<float> dense_rows_;
  DeviceBuffer<double> dense_chunk_sums_;
  DeviceBuffer<unsigned int> dense_finished_;
  // train_steps' plans (pinned staging and device) and the graph's cursor into them.
  PinnedHostBuffer<DevicePlannedStep> plans_host_;
  DeviceBuffer<DevicePlannedStep> plans_;
  DeviceBuffer<std::int64_t> plan_cursor_;

  // Per-step scratch, grown to the largest batch: the gathered batch (column-major, count rows)
  // and the rows' weighted d loss / d score and fm sums.
  DeviceBuffer<float> batch_dense_, batch_value_, batch_label_, batch_weight_;
  DeviceBuffer<std::int32_t> batch_slot_;
  DeviceBuffer<float> dscore_, sums_;

  // The gathered epoch; local SGD's Adam corrections per local step, the workers' copies
  // [worker][parameter] and per-worker scratch, grown to the largest epoch and worker count.
  DeviceBuffer<float> epoch_dense_, epoch_value_, epoch_label_, epoch_weight_;
  DeviceBuffer<std::int32_t> epoch_slot_;
  DeviceBuffer<BiasCorrection> corrections_;
  DeviceBuffer<float> local_theta_, local_moment1_, local_moment2_, local_dscore_, local_sums_;
  DeviceBuffer<double> local_gradient_, local_loss_;
  DeviceBuffer<std::uint8_t> local_touched_;  // [worker][features], as touched_
  DeviceBuffer<std::uint32_t> local_last_step_;  // [worker][caught_up_features()], as last_step_
  DeviceBuffer<StepTotals> local_totals_;

  // predict_scores' buffers, grown to the largest block.
  DeviceBuffer<float> predict_dense_, predict_value_, predict_out_;
  DeviceBuffer<std::int32_t> predict_slot_;
  DeviceBuffer<double> predict_sums_;  // an fm's sums, in double (predicted_scores)
};

}  // namespace

std::unique_ptr<Model> make_cuda_model(const DeviceContext& ctx, const ModelShape& shape,
                                       const OptimizerConfig& optimizer) {
  if (!ctx.is_cuda()) throw Error("make_cuda_model: the context is not a CUDA device");
  return std::make_unique<CudaModel>(ctx, shape, optimizer);
}

}  // namespace lathe
