// GPU against the CPU reference on the CUDA paths that tests/model_test.cpp does not compare with
// the CPU (from a review of the CUDA code written while no GPU was lent):
//   - train_steps' CUDA graphs with sample weights, a mean weight other than 1, clipping and both
//     lazy_sparse settings (model_test compares graphs only with the GPU's own train_step loop);
//   - a model too wide for the fused update (update_kernel, the separate sum of squares) through
//     train_steps, lazily and densely, weighted;
//   - local SGD of a model too wide for one block's update (each worker's 256 threads update it
//     all) and with a mean weight other than 1;
//   - the per-step gather (LATHE_CUDA_GATHER_EPOCH=never) against the gathered epoch, bit for bit;
//   - plain SGD's lazy penalties caught up (catch_up_feature, catch_up_penalties) on train_steps'
//     graphs, the separate update of a wide model and local SGD's workers;
//   - local SGD with a batch above the rows or a sync_every above a worker's steps (2^63 - 1:
//     the GPU's scratch sized by the batch, the CPU's count of rounds past int64).
// On the CPU instance each run is repeated and must give the same bits (cheap determinism checks);
// the GPU instance skips where no GPU answers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "models/model.h"
#include "tests/test_devices.h"

namespace lathe {
namespace {

struct ReviewData {
  std::int64_t rows = 0;
  std::int64_t dense = 0;
  std::vector<std::int64_t> offsets;
  std::vector<float> x, value, label, weight;
  std::vector<std::int32_t> slot;

  std::int32_t groups() const { return static_cast<std::int32_t>(offsets.size()) - 1; }
  TrainingSet set() const {
    TrainingSet t;
    t.rows = PreparedRowsView{x.data(), slot.data(), value.data(), rows};
    t.labels = label.data();
    t.weights = weight.empty() ? nullptr : weight.data();
    return t;
  }
  double mean_weight() const {
    if (weight.empty()) return 1.0;
    double s = 0;
    for (float w : weight) s += w;
    return s / static_cast<double>(rows);
  }
};

// Dense N(0, 1); group g uniform over widths[g] slots, value 1 (even g) or N(1, 0.5) (odd g);
// labels for `loss` from a random linear score; weights uniform in [0.2, 3) when weighted.
ReviewData make_data(std::int64_t rows, std::int64_t dense, const std::vector<std::int64_t>& widths,
                     LossKind loss, bool weighted, std::uint64_t seed) {
  ReviewData d;
  d.rows = rows;
  d.dense = dense;
  d.offsets = {dense};
  for (auto w : widths) d.offsets.push_back(d.offsets.back() + w);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  d.x.resize(static_cast<std::size_t>(rows * dense));
  for (auto& v : d.x) v = static_cast<float>(normal(rng));
  d.slot.resize(static_cast<std::size_t>(rows) * widths.size());
  d.value.resize(d.slot.size());
  for (std::size_t g = 0; g < widths.size(); ++g) {
    std::uniform_int_distribution<std::int32_t> pick(0, static_cast<std::int32_t>(widths[g] - 1));
    for (std::int64_t r = 0; r < rows; ++r) {
      d.slot[g * rows + r] = pick(rng);
      d.value[g * rows + r] = g % 2 == 1 ? static_cast<float>(1.0 + 0.5 * normal(rng)) : 1.0f;
    }
  }
  std::vector<double> beta(static_cast<std::size_t>(d.offsets.back()) * 3);
  for (auto& b : beta) b = normal(rng);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  d.label.resize(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    double s[3] = {0, 0, 0};
    for (int o = 0; o < 3; ++o) {
      const double* b = beta.data() + o * d.offsets.back();
      for (std::int64_t f = 0; f < dense; ++f) s[o] += b[f] * d.x[f * rows + r];
      for (std::int32_t g = 0; g < d.groups(); ++g) s[o] += b[d.offsets[g] + d.slot[g * rows + r]] * d.value[g * rows + r];
    }
    switch (loss) {
      case LossKind::squared:
      case LossKind::huber:
        d.label[r] = static_cast<float>(s[0] + 0.3 * normal(rng));
        break;
      case LossKind::logistic:
        d.label[r] = u(rng) < 1.0 / (1.0 + std::exp(-s[0])) ? 1.0f : 0.0f;
        break;
      default:
        d.label[r] = static_cast<float>(std::max_element(s, s + 3) - s);
        break;
    }
  }
  if (weighted) {
    std::uniform_real_distribution<double> w(0.2, 3.0);
    d.weight.resize(static_cast<std::size_t>(rows));
    for (auto& v : d.weight) v = static_cast<float>(w(rng));
  }
  return d;
}

ModelShape shape_of(const ReviewData& d, LossKind loss, ModelKind kind) {
  ModelShape s;
  s.task = loss == LossKind::logistic ? Task::binary : loss == LossKind::softmax ? Task::multiclass : Task::regression;
  s.kind = kind;
  s.loss = loss;
  s.huber_delta = 0.7f;
  s.outputs = loss == LossKind::softmax ? 3 : 1;
  s.group_offsets = d.offsets;
  s.layout.dense_features = d.dense;
  s.layout.groups = d.groups();
  s.features = d.offsets.back();
  s.factors = 2;
  return s;
}

std::vector<float> flatten(const ModelParameters& p) {
  std::vector<float> v = p.weights;
  v.insert(v.end(), p.bias.begin(), p.bias.end());
  v.insert(v.end(), p.factors.begin(), p.factors.end());
  return v;
}

struct Trained {
  std::vector<float> theta;
  std::vector<float> first, second;  // the optimizer state
  std::vector<double> epoch_losses;
};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// ||a - ref|| / ||ref|| (1 when the sizes differ).
double relative_distance(const std::vector<float>& a, const std::vector<float>& ref) {
  if (a.size() != ref.size()) return 1.0;
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - ref[i];
    diff += d * d;
    norm += static_cast<double>(ref[i]) * ref[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : (diff > 0 ? 1.0 : 0.0);
}

// Elements with |a - ref| > rel * max(|ref|, 1e-2); reports the first three.
int count_far(const std::vector<float>& a, const std::vector<float>& ref, double rel, const char* what) {
  if (a.size() != ref.size()) {
    ADD_FAILURE() << what << ": sizes " << a.size() << " and " << ref.size();
    return 1;
  }
  int bad = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double tol = rel * std::max(std::fabs(static_cast<double>(ref[i])), 1e-2);
    if (!(std::fabs(static_cast<double>(a[i]) - ref[i]) <= tol) && ++bad <= 3) {
      ADD_FAILURE() << what << " " << i << ": " << a[i] << ", reference " << ref[i];
    }
  }
  return bad;
}

// The GPU run against the CPU's (relative norm 1e-4, each element 5e-3 relative, floor 1e-2: float
// rounding accumulated over a few hundred adaptive steps stays far below; a wrong formula does
// not), or on the CPU a second run against the first, bit for bit.
void expect_agree(DeviceKind kind, const Trained& got, const Trained& ref) {
  if (kind == DeviceKind::cpu) {
    EXPECT_TRUE(same_bits(got.theta, ref.theta));
    EXPECT_EQ(got.epoch_losses, ref.epoch_losses);
    return;
  }
  EXPECT_LE(relative_distance(got.theta, ref.theta), 1e-4);
  EXPECT_EQ(count_far(got.theta, ref.theta, 5e-3, "parameter"), 0);
  if (!ref.first.empty()) EXPECT_LE(relative_distance(got.first, ref.first), 1e-3) << "first moments";
  if (!ref.second.empty()) EXPECT_LE(relative_distance(got.second, ref.second), 1e-3) << "second moments";
  ASSERT_EQ(got.epoch_losses.size(), ref.epoch_losses.size());
  for (std::size_t e = 0; e < ref.epoch_losses.size(); ++e) {
    EXPECT_NEAR(got.epoch_losses[e], ref.epoch_losses[e], 1e-5 * std::fabs(ref.epoch_losses[e])) << "epoch " << e;
  }
}

enum class Steps { one_by_one, planned, local_sgd };

struct ReviewRun {
  LossKind loss = LossKind::logistic;
  ModelKind kind = ModelKind::fm;
  OptimizerConfig optimizer;
  std::int64_t batch = 7;
  std::int32_t epochs = 2;
  Steps steps = Steps::planned;
  std::int32_t workers = 4;
  std::int64_t sync_every = 3;
};

// `run.epochs` epochs over seeded permutations, the trainer's way: the learning rate decays with
// the step, mean_weight is the set's, the loss is read once an epoch.
Trained train(const DeviceContext& ctx, const ReviewData& d, const ReviewRun& run) {
  const ModelShape shape = shape_of(d, run.loss, run.kind);
  auto model = make_model(ctx, shape, run.optimizer, 77);
  model->bind_training_set(d.set());
  Trained out;
  std::int64_t step = 0;
  const double mean_weight = d.mean_weight();
  for (std::int32_t epoch = 1; epoch <= run.epochs; ++epoch) {
    model->set_epoch_permutation(make_epoch_permutation(d.rows, 5, epoch));
    if (run.steps == Steps::local_sgd) {
      LocalSgdSettings local;
      local.batch = run.batch;
      local.sync_every = run.sync_every;
      local.workers = run.workers;
      local.first_step = step + 1;
      local.learning_rate = 0.02f / (1.0f + 0.001f * static_cast<float>(step));
      local.mean_weight = mean_weight;
      model->train_epoch_local_sgd(local);
      step += d.rows / run.batch + (d.rows % run.batch != 0);  // ceil: rows + batch - 1 overflows
    } else {
      std::vector<PlannedStep> plans;
      for (std::int64_t first = 0; first < d.rows; first += run.batch) {
        PlannedStep p;
        p.first = first;
        p.count = std::min(run.batch, d.rows - first);
        p.settings.step = ++step;
        p.settings.learning_rate = 0.02f / (1.0f + 0.001f * static_cast<float>(step));
        p.settings.mean_weight = mean_weight;
        p.settings.return_loss = false;
        plans.push_back(p);
        // Now and then a step of no rows, which is no step on any path (train_steps leaves it out
        // of the graph's plans; with Adam a zero-gradient update would still move the weights).
        if (plans.size() % 50 == 0) {
          PlannedStep empty = p;
          empty.count = 0;
          plans.push_back(empty);
        }
      }
      if (run.steps == Steps::planned) {
        model->train_steps(plans);
      } else {
        for (const PlannedStep& p : plans) model->train_step(p.first, p.count, p.settings);
      }
    }
    // As the trainer does after every epoch's steps (plain SGD's lazy penalties; else nothing).
    model->catch_up_penalties();
    out.epoch_losses.push_back(model->take_loss_sum());
  }
  out.theta = flatten(model->parameters());
  const OptimizerState state = model->optimizer_state();
  out.first = state.first;
  out.second = state.second;
  return out;
}

// The reference: the CPU (GPU instance), or the same device again (CPU instance).
Trained reference(DeviceKind kind, const DeviceContext& ctx, const ReviewData& d, const ReviewRun& run) {
  return train(kind == DeviceKind::cpu ? ctx : DeviceContext::cpu(), d, run);
}

class CudaReviewOnDevice : public testing::TestWithParam<DeviceKind> {};

// Narrow models (the fused update): 286 steps an epoch, two graphs of 128 and 30 single launches,
// with weights, a mean weight near 1.6, and each of clipping, l2 and the two lazy_sparse settings.
TEST_P(CudaReviewOnDevice, PlannedStepsMatchTheCpuWithWeightsClippingAndBothLazySettings) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  struct Case {
    LossKind loss;
    ModelKind kind;
    OptimizerKind optimizer;
    float clip, l2;
    bool lazy;
  };
  const Case cases[] = {
      {LossKind::softmax, ModelKind::linear, OptimizerKind::adam, 0.5f, 0.0f, true},
      {LossKind::logistic, ModelKind::fm, OptimizerKind::momentum, 0.0f, 0.01f, false},
      {LossKind::huber, ModelKind::fm, OptimizerKind::adagrad, 0.3f, 0.01f, true},
      {LossKind::squared, ModelKind::linear, OptimizerKind::adamw, 0.0f, 0.01f, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("loss " + std::to_string(static_cast<int>(c.loss)) + " kind " + std::to_string(static_cast<int>(c.kind)) +
                 " optimizer " + std::to_string(static_cast<int>(c.optimizer)) + (c.lazy ? " lazy" : " dense"));
    const ReviewData d = make_data(2000, 4, {7, 300}, c.loss, true, 11);
    ReviewRun run;
    run.loss = c.loss;
    run.kind = c.kind;
    run.optimizer.kind = c.optimizer;
    run.optimizer.clip_norm = c.clip;
    run.optimizer.l2 = c.l2;
    run.optimizer.lazy_sparse = c.lazy;
    run.steps = Steps::planned;
    expect_agree(GetParam(), train(ctx, d, run), reference(GetParam(), ctx, d, run));
  }
}

// A model of 120k parameters (more than the fused update's 32k): train_steps falls back to
// train_step, whose update runs in update_kernel after gradient_squares_kernel when clipping.
TEST_P(CudaReviewOnDevice, WideModelStepsMatchTheCpu) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const ReviewData d = make_data(1500, 4, {7, 40000}, LossKind::logistic, true, 12);
  for (const bool lazy : {true, false}) {
    SCOPED_TRACE(lazy ? "lazy" : "dense");
    ReviewRun run;
    run.optimizer.kind = OptimizerKind::adam;
    run.optimizer.clip_norm = 0.3f;
    run.optimizer.l2 = 0.01f;
    run.optimizer.lazy_sparse = lazy;
    run.batch = 64;
    run.steps = Steps::planned;
    expect_agree(GetParam(), train(ctx, d, run), reference(GetParam(), ctx, d, run));
  }
}

// Local SGD with a mean weight other than 1, a model too wide for the fused update (a worker's
// block updates it all), and a narrow one densely updated.
TEST_P(CudaReviewOnDevice, LocalSgdMatchesTheCpuWideWeightedAndDense) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  for (const bool wide : {true, false}) {
    SCOPED_TRACE(wide ? "wide, lazy" : "narrow, dense");
    const ReviewData d = make_data(1500, 4, {7, wide ? 40000 : 300}, LossKind::logistic, true, 13);
    ReviewRun run;
    run.optimizer.kind = OptimizerKind::adam;
    run.optimizer.clip_norm = wide ? 0.0f : 0.5f;
    run.optimizer.l2 = 0.01f;
    run.optimizer.lazy_sparse = wide;
    run.batch = 32;
    run.steps = Steps::local_sgd;
    run.workers = 4;
    run.sync_every = 3;
    expect_agree(GetParam(), train(ctx, d, run), reference(GetParam(), ctx, d, run));
  }
}

// The per-step gather (forced with LATHE_CUDA_GATHER_EPOCH=never) runs the same step kernel on the
// same values as a window of the gathered epoch: the same bits, narrow and wide, lazily.
TEST_P(CudaReviewOnDevice, PerStepGatherIsTheGatheredEpochBitForBit) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  for (const std::int64_t width : {300, 40000}) {
    SCOPED_TRACE("width " + std::to_string(width));
    const ReviewData d = make_data(1200, 4, {7, width}, LossKind::softmax, true, 14);
    ReviewRun run;
    run.loss = LossKind::softmax;
    run.optimizer.kind = OptimizerKind::adam;
    run.optimizer.clip_norm = 0.5f;
    run.batch = 50;
    run.steps = Steps::one_by_one;
    const Trained gathered = train(ctx, d, run);
    const char* before = std::getenv("LATHE_CUDA_GATHER_EPOCH");
    const std::string saved = before ? before : "";
    setenv("LATHE_CUDA_GATHER_EPOCH", "never", 1);
    const Trained per_step = train(ctx, d, run);
    if (before) {
      setenv("LATHE_CUDA_GATHER_EPOCH", saved.c_str(), 1);
    } else {
      unsetenv("LATHE_CUDA_GATHER_EPOCH");
    }
    EXPECT_TRUE(same_bits(per_step.theta, gathered.theta));
    EXPECT_TRUE(same_bits(per_step.first, gathered.first));
    EXPECT_TRUE(same_bits(per_step.second, gathered.second));
    EXPECT_EQ(per_step.epoch_losses, gathered.epoch_losses);
  }
}

// Rebinding while steps are still queued (bind_training_set's double buffer): the GPU binds C into
// the buffers that A's steps read, so C's copy must wait for them (back_released_). A and B are
// bound once beforehand so that neither buffer set grows later (a growth waits for every queued
// step, which would hide a missing wait); A's steps are thousands of per-step gathers (forced:
// LATHE_CUDA_GATHER_EPOCH=never) with the separate update of a wide model, so that its tail is
// still running when C is copied; C is another draw of A's size with its labels flipped, so that a
// step of A reading C's rows moves the weights elsewhere. No sanitizer sees a race between two
// streams: only the comparison with the CPU does.
TEST_P(CudaReviewOnDevice, RebindingWaitsForTheStepsStillReadingTheBuffers) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const ReviewData a = make_data(3000, 4, {7, 40000}, LossKind::logistic, false, 31);
  const ReviewData b = make_data(200, 4, {7, 40000}, LossKind::logistic, false, 32);
  ReviewData c = make_data(3000, 4, {7, 40000}, LossKind::logistic, false, 33);
  for (float& y : c.label) y = 1.0f - y;
  // LATHE_CUDA_GATHER_EPOCH=never for this test only, restored however it ends.
  struct ForcedStepGather {
    const char* before = std::getenv("LATHE_CUDA_GATHER_EPOCH");
    std::string saved = before ? before : "";
    ForcedStepGather() { setenv("LATHE_CUDA_GATHER_EPOCH", "never", 1); }
    ~ForcedStepGather() {
      if (before) {
        setenv("LATHE_CUDA_GATHER_EPOCH", saved.c_str(), 1);
      } else {
        unsetenv("LATHE_CUDA_GATHER_EPOCH");
      }
    }
  } forced;
  const auto run = [&](const DeviceContext& on) {
    OptimizerConfig optimizer;
    optimizer.kind = OptimizerKind::adam;
    optimizer.clip_norm = 0.5f;
    auto model = make_model(on, shape_of(a, LossKind::logistic, ModelKind::linear), optimizer, 77);
    std::int64_t step = 0;
    const auto steps = [&](const ReviewData& d, std::int64_t batch) {
      model->set_epoch_permutation(make_epoch_permutation(d.rows, 5, 1));
      for (std::int64_t first = 0; first < d.rows; first += batch) {
        StepSettings s;
        s.step = ++step;
        s.learning_rate = 0.02f;
        s.return_loss = false;
        model->train_step(first, std::min(batch, d.rows - first), s);
      }
    };
    model->bind_training_set(c.set());  // sizes both buffer sets for A and C
    model->bind_training_set(b.set());
    model->bind_training_set(a.set());
    steps(a, 1);  // 3000 steps queued without a wait
    model->bind_training_set(b.set());
    steps(b, 200);
    model->bind_training_set(c.set());  // into A's buffers
    steps(c, 100);
    Trained out;
    out.epoch_losses.push_back(model->take_loss_sum());
    out.theta = flatten(model->parameters());
    return out;
  };
  const Trained got = run(ctx);
  const Trained ref = run(GetParam() == DeviceKind::cpu ? ctx : DeviceContext::cpu());
  expect_agree(GetParam(), got, ref);
}

// Plain SGD's lazy penalties (catch_up_feature before a step reads a slot, catch_up_penalties at
// each epoch's end; the trainer's way, as train() calls it) on the GPU's paths that model_test's
// LazySgdGivesTheWeightsOfDenseUpdates (train_step, a narrow model) does not take: train_steps'
// CUDA graphs, a model too wide for the fused update (update_kernel after the step kernel's
// catch-up), and local SGD's workers (each block's catch-up on its own copy of the last steps,
// their average's latest step moved on by the skipped steps), narrow and wide, weighted, l1 and l2.
TEST_P(CudaReviewOnDevice, LazySgdPenaltiesMatchTheCpuOnEveryPath) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  struct Case {
    const char* name;
    LossKind loss;
    ModelKind kind;
    std::int64_t width;
    Steps steps;
  };
  const Case cases[] = {
      {"planned, narrow fm", LossKind::logistic, ModelKind::fm, 300, Steps::planned},
      {"one by one, wide softmax", LossKind::softmax, ModelKind::linear, 40000, Steps::one_by_one},
      {"local sgd, narrow fm", LossKind::logistic, ModelKind::fm, 300, Steps::local_sgd},
      {"local sgd, wide regression", LossKind::squared, ModelKind::linear, 40000, Steps::local_sgd},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const ReviewData d = make_data(2000, 4, {7, c.width}, c.loss, true, 15);
    ReviewRun run;
    run.loss = c.loss;
    run.kind = c.kind;
    run.optimizer.kind = OptimizerKind::sgd;
    run.optimizer.l1 = 0.002f;
    run.optimizer.l2 = 0.05f;
    run.optimizer.lazy_sparse = true;
    run.steps = c.steps;
    run.batch = c.steps == Steps::local_sgd ? 16 : 7;
    run.epochs = 3;
    expect_agree(GetParam(), train(ctx, d, run), reference(GetParam(), ctx, d, run));
  }
}

// Local SGD with a batch above the epoch's rows (--batch 9223372036854775807 --mode parallel): one
// worker's one step over every row, the same bits as a batch of exactly the rows. The GPU sized its
// workers' scratch by the batch (workers x batch x outputs x factors: past int64 here), so a model
// on its general kernels (sparse groups, a softmax fm) failed to allocate it.
TEST_P(CudaReviewOnDevice, LocalSgdOfABatchAboveTheRowsIsOneStepOverThem) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const ReviewData d = make_data(900, 4, {7, 300}, LossKind::softmax, true, 16);
  ReviewRun run;
  run.loss = LossKind::softmax;
  run.kind = ModelKind::fm;
  run.optimizer.kind = OptimizerKind::adam;
  run.optimizer.l2 = 0.01f;
  run.steps = Steps::local_sgd;
  run.workers = 4;
  run.batch = d.rows;
  const Trained exact_rows = train(ctx, d, run);
  run.batch = std::numeric_limits<std::int64_t>::max();
  Trained largest;
  ASSERT_NO_THROW(largest = train(ctx, d, run));
  EXPECT_TRUE(same_bits(largest.theta, exact_rows.theta));
  EXPECT_EQ(largest.epoch_losses, exact_rows.epoch_losses);
  expect_agree(GetParam(), largest, reference(GetParam(), ctx, d, run));
}

// Local SGD with --sync-every above a worker's local steps averages once, at the epoch's end: the
// same bits as a sync_every of exactly those steps, at 2^63 - 1 too. The CPU's count of rounds,
// (steps + sync_every - 1) / sync_every, went past int64 there and made no round at all: the epoch
// took no step (a loss of 0, the weights left at zero). The GPU's default worker count doubled it.
TEST_P(CudaReviewOnDevice, LocalSgdWithSyncEveryAboveTheEpochAveragesOnceAtItsEnd) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const ReviewData d = make_data(1500, 4, {7, 300}, LossKind::logistic, true, 17);
  for (const std::int32_t workers : {4, 0}) {
    SCOPED_TRACE("workers " + std::to_string(workers));
    ReviewRun run;
    run.optimizer.kind = OptimizerKind::sgd;
    run.optimizer.l2 = 0.01f;
    run.steps = Steps::local_sgd;
    run.workers = workers;
    run.batch = 32;       // 47 batches an epoch
    run.sync_every = 47;  // at least every worker's local steps: one round
    const Trained once = train(ctx, d, run);
    run.sync_every = std::numeric_limits<std::int64_t>::max();
    const Trained largest = train(ctx, d, run);
    EXPECT_TRUE(same_bits(largest.theta, once.theta));
    EXPECT_EQ(largest.epoch_losses, once.epoch_losses);
    for (const double loss : largest.epoch_losses) EXPECT_GT(loss, 0.0);
  }
}

LATHE_INSTANTIATE_FOR_DEVICES(CudaReviewOnDevice);

}  // namespace
}  // namespace lathe
