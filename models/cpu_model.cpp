// The CPU model: the reference implementation of models/model.h, around the formulas of
// models/model_formulas.h. Every parallel loop writes to storage of its own and every sum runs in
// a fixed order, so the result does not depend on the thread count.
#include "models/cpu_model.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <system_error>
#include <thread>
#include <iterator>
#include <limits>
#include <utility>
#include <vector>

#include "models/model_checks.h"
#include "models/model_formulas.h"
#include "models/row_major_rows.h"
#include "runtime/error.h"
#include "runtime/host_array.h"
#include "runtime/team_threshold.h"
#include "runtime/vector_clones.h"
#include "runtime/way_chooser.h"

namespace lathe {
namespace {

// A way a step runs (alone, planned, team) as WayChooser's way index, and back.
constexpr int chooser_way(CpuStepWay way) { return static_cast<int>(way) - static_cast<int>(CpuStepWay::alone); }
constexpr CpuStepWay step_way_of(int way) { return static_cast<CpuStepWay>(way + static_cast<int>(CpuStepWay::alone)); }

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Rows per work item of a linear model's predict_scores, and the fewest rows worth a thread team.
constexpr std::int64_t kPredictRunRows = 4096;
constexpr std::int64_t kParallelPredictRows = 8192;

// linear_scores_by_column compiled for AVX2 and the baseline ISA (runtime/vector_clones.h).
LATHE_VECTOR_CLONES void linear_scores_columns(const ModelView& m, const PreparedRowsView& rows,
                                               std::int64_t begin, std::int64_t end,
                                               std::int32_t o, float* out,
                                               std::int64_t out_stride) {
  linear_scores_by_column(m.theta, m.params, rows, m.layout, begin, end, o, out, out_stride);
}

// A linear regression model's predictions of rows [begin, end): linear_scores_by_column in double
// into `scores` (end - begin entries), then the map into out[begin, end).
LATHE_VECTOR_CLONES void linear_regression_columns(const ModelView& m, const PreparedRowsView& rows,
                                                   std::int64_t begin, std::int64_t end,
                                                   const RegressionMap& map, double* scores,
                                                   float* out) {
  linear_scores_by_column(m.theta, m.params, rows, m.layout, begin, end, 0, scores, 1);
  for (std::int64_t r = 0; r < end - begin; ++r) out[begin + r] = map(scores[r]);
}

// One row's dense gradient terms for one output: a[i] += d x[i] (the product in float, as the GPU
// forms it, summed in double), compiled for AVX2 too. Vectorized across features, each a[i] still
// adds its rows in batch order, so the bits do not depend on the copy that runs.
LATHE_VECTOR_CLONES void add_dense_gradient(double* __restrict__ a, const float* __restrict__ x, float d,
                                            std::int64_t dense) {
  for (std::int64_t i = 0; i < dense; ++i) a[i] += static_cast<double>(d * x[i]);
}

bool same_permutation(const EpochPermutation& a, const EpochPermutation& b) {
  return a.rows == b.rows && a.half_bits == b.half_bits &&
         std::equal(std::begin(a.round_keys), std::end(a.round_keys), std::begin(b.round_keys));
}

// Rows per partial gradient of the dense entries: the batch is cut into fixed slices (not one per
// thread) whose partial sums are merged in slice order.
constexpr std::int64_t kSliceRows = 64;
// Entries per partial sum of squares of the gradient (clipping).
constexpr std::int64_t kNormSlice = 1 << 14;
// The fewest parameters a lazy update (lazy_update) spreads over the OpenMP team.
constexpr std::int64_t kTeamUpdateParameters = 1 << 14;
// The smallest step (rows x features x outputs x (1 + factors)) run on the OpenMP team.
constexpr std::int64_t kTeamStepWork = std::int64_t{1} << 18;
// How many rows ahead of its use a training row's cache lines are requested.
constexpr std::int64_t kPrefetchRows = 16;
// How many rows ahead the weights of a row's slots are requested (its slots, requested
// kPrefetchRows ahead, are in the cache by then), and how many touched features ahead a lazy
// update requests a feature's state.
constexpr std::int64_t kPrefetchSlotRows = 8;
constexpr std::int64_t kPrefetchTouched = 16;
// The smallest weights and optimizer state (bytes) whose slot weights a step requests ahead: a
// table in the cache gains nothing and pays the requests (an epoch of the categorical peers'
// 1M rows with a 2^14-bucket cross took 15% longer; with 2^22 buckets, 30% less time).
constexpr std::int64_t kPrefetchSlotStateBytes = std::int64_t{2} << 20;
// The smallest lazy step (rows x sparse groups) planned a step ahead on a thread of its own
// (StepPlanner), and how long that thread waits for the next request by spinning before it sleeps:
// longer than a step of that size takes, so that in an epoch it never sleeps.
constexpr std::int64_t kPlannedStepEntries = 1024;
constexpr std::chrono::microseconds kPlannerSpin{1000};
// How long a step waits for its plan when the planner is still making it: a plan a little late
// (the second core also builds the model file's tables at first) is still worth the wait, while
// one not taken costs the next two steps theirs (the planner is busy when the next is asked for).
constexpr std::chrono::microseconds kPlanWait{40};

// Requests the cache line holding p. An asm statement on x86-64: GCC 12 drops __builtin_prefetch
// calls here (they have no effect it must keep), and with them the whole point.
inline void prefetch(const void* p) {
#if defined(__x86_64__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p);
#endif
}

// Runs body(i) for i in [0, n): on the OpenMP team when `parallel`, else in this thread (a local
// SGD worker, already one thread of a team). Each i writes storage of its own, so the schedule
// never changes the result.
template <typename Body>
void for_each_index(bool parallel, bool dynamic, std::int64_t n, const Body& body) {
  if (!parallel) {
    for (std::int64_t i = 0; i < n; ++i) body(i);
  } else if (dynamic) {
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t i = 0; i < n; ++i) body(i);
  } else {
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) body(i);
  }
}

template <typename T>
void grow(std::vector<T>& v, std::int64_t n) {
  if (static_cast<std::int64_t>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
}

// A lazy step's places of the batch's sparse features in its list of touched features: an
// open-addressing table sized to the batch, not to the model. A table of a place per expanded
// feature (34 MB for 8.6M hashed buckets) cost a cache miss for every row and group of a batch,
// a quarter of an epoch's time on Criteo-like data; this one (256 KB for 256 rows of 26 groups)
// stays in the cache. Entries of earlier steps are told apart by a step stamp, so nothing is
// cleared between steps.
class TouchedPlaces {
 public:
  // Starts a step of at most `entries` distinct features: a new stamp, the table grown to twice
  // that (a power of two) when it is smaller.
  void start(std::int64_t entries) {
    int bits = 4;
    while ((std::size_t{1} << bits) < 2 * static_cast<std::size_t>(std::max<std::int64_t>(entries, 1))) ++bits;
    if (++stamp_ == 0 || bits > bits_) {  // a wrapped stamp could match a stale slot
      bits_ = std::max(bits, bits_);
      slots_.assign(std::size_t{1} << bits_, Slot{});
      stamp_ = 1;
    }
  }
  // The place of `feature` this step, or `next` (then recorded as its place) when it is new.
  std::int32_t place(std::int64_t feature, std::int32_t next) {
    const std::size_t mask = slots_.size() - 1;
    // Fibonacci hashing (the top bits of the product): a group's buckets are consecutive integers.
    for (std::size_t i = (static_cast<std::uint64_t>(feature) * 0x9E3779B97F4A7C15ull) >> (64 - bits_);;
         i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.stamp != stamp_) {
        s = Slot{feature, next, stamp_};
        return next;
      }
      if (s.feature == feature) return s.place;
    }
  }

 private:
  struct Slot {
    std::int64_t feature = 0;
    std::int32_t place = 0;
    std::uint32_t stamp = 0;
  };
  std::vector<Slot> slots_;
  int bits_ = 0;  // slots_ holds 2^bits_ slots
  std::uint32_t stamp_ = 0;
};

// The part of a step that reads no parameter (StepState::plan): the batch's rows gathered, slot and value [row][group], label and weight [row]; its sparse features,
// each once, in batch order; per batch row and group its feature's place in that list.
struct BatchPlan {
  std::vector<float> batch_value, batch_label, batch_weight;
  std::vector<std::int32_t> batch_slot;
  std::vector<std::int64_t> touched;
  TouchedPlaces touched_places;
  std::vector<std::int32_t> batch_place;
};

// Makes the plans of lazy steps (BatchPlan) one step ahead, on a thread of its own, while the
// model's thread runs the step before: finding a batch's touched features was a quarter of an
// exact step on Criteo-like data (26 sparse groups), with the second core idle. The model's thread
// does not wait for it (waiting at the end of each step, with another process on the second core,
// made an epoch 40% slower): a step whose plan is not ready, or is of another batch, is planned in
// that thread, by the same function, so the bits are the same either way. Requests and takes come
// from the model's thread only, and only while the planner is idle: the planner's buffer and the
// request are then the model thread's, and otherwise the planner's. Between two steps of an order
// the planner may still read the rows (Model::finish_background_work).
class StepPlanner {
 public:
  // plan(into, order, count): the plan of the rows order[0, count).
  using PlanFn = std::function<void(BatchPlan&, const std::int64_t*, std::int64_t)>;

  explicit StepPlanner(PlanFn plan) : plan_(std::move(plan)), thread_([this] { run(); }) {}
  ~StepPlanner() {
    stop_.store(true, std::memory_order_release);
    requested_.fetch_add(1, std::memory_order_acq_rel);
    requested_.notify_one();
    thread_.join();
  }
  StepPlanner(const StepPlanner&) = delete;
  StepPlanner& operator=(const StepPlanner&) = delete;

  // Whether its last request is planned (or none was made).
  bool idle() const {
    return done_.load(std::memory_order_acquire) == requested_.load(std::memory_order_relaxed);
  }
  // Plans the rows order[first, first + count) of the order of generation `generation` (the
  // caller's count of its row orders). Only when idle().
  void request(const std::int64_t* order, std::int64_t first, std::int64_t count, std::uint64_t generation) {
    order_ = order;
    first_ = first;
    count_ = count;
    generation_ = generation;
    requested_.fetch_add(1, std::memory_order_release);
    requested_.notify_one();
  }
  // When idle and its last plan is of those rows: swaps it with `into`; true.
  bool take(std::int64_t first, std::int64_t count, std::uint64_t generation, BatchPlan& into) {
    // The request's fields are written by this thread alone (the planner only reads them).
    if (first_ != first || count_ != count || generation_ != generation) return false;
    if (!idle()) {  // a little late, perhaps: waited for a while
      const auto until = std::chrono::steady_clock::now() + kPlanWait;
      for (int spins = 1; !idle(); ++spins) {
        if (spins % 32 == 0 && std::chrono::steady_clock::now() > until) return false;
        pause();
      }
    }
    if (!planned_) return false;
    planned_ = false;
    std::swap(into, plan_buffer_);
    return true;
  }
  // Waits until idle: before the rows or their order change under a plan in the making.
  void drain() const {
    for (;;) {
      const std::uint32_t done = done_.load(std::memory_order_acquire);
      if (done == requested_.load(std::memory_order_relaxed)) return;
      done_.wait(done, std::memory_order_acquire);
    }
  }

 private:
  void run() {
    std::uint32_t seen = 0;
    for (;;) {
      std::uint32_t ticket = requested_.load(std::memory_order_acquire);
      const auto spin_until = std::chrono::steady_clock::now() + kPlannerSpin;
      for (int spins = 0; ticket == seen; ticket = requested_.load(std::memory_order_acquire)) {
        if (++spins % 64 != 0 || std::chrono::steady_clock::now() < spin_until) {
          pause();
          continue;
        }
        requested_.wait(seen, std::memory_order_acquire);
      }
      if (stop_.load(std::memory_order_acquire)) return;
      seen = ticket;
      try {
        plan_(plan_buffer_, order_ + first_, count_);
        planned_ = true;
      } catch (...) {  // out of memory: the model's thread plans the step itself, and reports it
        planned_ = false;
      }
      done_.store(ticket, std::memory_order_release);
      done_.notify_all();
    }
  }
  static void pause() {
#if defined(__x86_64__)
    asm volatile("pause");
#endif
  }

  PlanFn plan_;
  // The request and its plan: the model thread's while idle, the planner's in between.
  const std::int64_t* order_ = nullptr;
  std::int64_t first_ = -1, count_ = 0;
  std::uint64_t generation_ = 0;
  bool planned_ = false;
  BatchPlan plan_buffer_;
  std::atomic<std::uint32_t> requested_{0}, done_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: started once the rest is made
};

// One copy of the learned numbers and the optimizer's state, with a step's scratch: the model's
// own (exact mode), and one per local SGD worker.
struct StepState {
  std::vector<float> theta;
  // The optimizer's two moments of parameter q side by side, [2 q] and [2 q + 1]: a lazy step
  // visits a slot's state at a random place in a table that may be far larger than the cache,
  // and one line holds both. Empty for plain SGD, which has none (a table of 2^24 hashed buckets
  // then holds 4 bytes a bucket instead of 12).
  std::vector<float> moments;
  float no_moments[2] = {0.0f, 0.0f};  // what SGD's update_weight is given (and never touches)
  // Summed over the batch; all zero between steps. Per parameter; with lazy updates per dense
  // entry (dense_entry_parameter's order), the sparse features' being in touched_gradient.
  std::vector<double> gradient;

  // Per-step scratch, grown to the largest batch.
  std::vector<float> dscore;  // [batch row][output]
  std::vector<float> sums;    // [batch row][output][factor] (fm)
  std::vector<double> partial, slice_loss, norm_partial;
  // [slice][dense feature]: the row a slice reads, with its products multiplied out
  // (ModelShape::products; empty without them).
  std::vector<float> expanded;
  // The batch's rows gathered and, with lazy updates, its touched features and their places (made
  // by the step itself or ahead by the StepPlanner).
  BatchPlan plan;
  // Lazy updates: the gradient of the touched features' parameters, [place][output][weight,
  // factors...], which stays in the cache however large the table (all zero between steps).
  // `gradient` holds the dense entries only.
  std::vector<double> touched_gradient;

  // Lazy updates with penalties: the step of each sparse feature's last update, [feature - dense]
  // (OptimizerState::last_step; empty when no update catches up penalties).
  std::vector<std::uint32_t> last_step;

  double loss = 0.0;  // a local SGD worker's summed losses over the epoch

  // size parameters; gradient_entries: gradient's length; caught_up: the sparse features whose
  // updates catch up penalties (0: none).
  void resize(std::int64_t size, bool with_moments, std::int64_t gradient_entries, std::int64_t caught_up) {
    const auto n = static_cast<std::size_t>(size);
    theta.assign(n, 0.0f);
    moments.assign(with_moments ? 2 * n : 0, 0.0f);
    gradient.assign(static_cast<std::size_t>(gradient_entries), 0.0);
    last_step.assign(static_cast<std::size_t>(caught_up), 0);
  }

  MomentsView moments_view() {
    return moments.empty() ? MomentsView{no_moments, no_moments + 1, 0}
                           : MomentsView{moments.data(), moments.data() + 1, 2};
  }

  // Moment a (0: the first, 1: the second) of every parameter, in parameter order (none without
  // moments: Model::optimizer_state's "no state").
  std::vector<float> moment(int a) const {
    if (moments.empty()) return {};
    std::vector<float> m(theta.size());
    for (std::size_t q = 0; q < m.size(); ++q) m[q] = moments[2 * q + a];
    return m;
  }
};

class CpuModel final : public Model {
 public:
  // predict_only: the parameters alone, without the optimizer's moments and a step's gradient and
  // lazy-update index (make_prediction_model); bind_training_set refuses, so nothing trains.
  CpuModel(const ModelShape& shape, const OptimizerConfig& optimizer, bool predict_only)
      : shape_(shape), optimizer_(optimizer), params_(parameter_layout(shape)), predict_only_(predict_only) {
    shape_.layout.group_offset = shape_.group_offsets.data();
    const std::int64_t stored = row_major_dense_features(shape_);
    if (shape_.products.size() % 2 != 0 || stored < 0 ||
        std::any_of(shape_.products.begin(), shape_.products.end(), [&](std::int32_t i) { return i < 0 || i >= stored; })) {
      throw Error("CpuModel: the products name features outside the " + std::to_string(stored) + " stored before them");
    }
    if (predict_only_) {
      state_.theta.assign(static_cast<std::size_t>(params_.size()), 0.0f);
    } else {
      state_.resize(params_.size(), uses_moments(), gradient_entries(), caught_up_features());
    }
    prefetch_slots_ = shape_.layout.groups > 0 && params_.size() * 3 * 4 >= kPrefetchSlotStateBytes;
  }

  const ModelShape& shape() const override { return shape_; }

  void bind_training_set(const TrainingSet& data) override {
    if (predict_only_) throw Error("bind_training_set: a prediction-only model (make_prediction_model) cannot train");
    check_training_set(shape_, data);
    forget_plans();  // a plan in the making reads the rows bound now
    data_ = LabeledRowsView{data.rows, data.labels, data.weights};
    if (has_rows_by_row(shape_, data)) {
      by_row_dense_ = data.dense_by_row;
      by_row_slot_ = data.slot_by_row;
      by_row_value_ = data.value_by_row;
    } else {
      // The model's own row-major copy of the column-major set (without the products).
      const std::int64_t n = data.rows.rows, dense = row_major_dense_features(shape_), groups = shape_.layout.groups;
      row_dense_.resize(static_cast<std::size_t>(n * dense));
      row_slot_.resize(static_cast<std::size_t>(n * groups));
      row_value_.resize(static_cast<std::size_t>(n * groups));
      copy_rows_by_row(data.rows, nullptr, n, dense, groups, row_dense_.data(), row_slot_.data(), row_value_.data(), 0);
      by_row_dense_ = row_dense_.data();
      by_row_slot_ = row_slot_.data();
      by_row_value_ = row_value_.data();
    }
    bound_ = true;
    order_.clear();
  }

  void set_epoch_order(const std::vector<std::int64_t>& order) override {
    if (!bound_) throw Error("set_epoch_order: no training set is bound");
    check_order(order, data_.rows.rows);
    forget_plans();
    order_ = order;
  }

  void set_epoch_permutation(const EpochPermutation& permutation) override {
    if (!bound_) throw Error("set_epoch_permutation: no training set is bound");
    check_permutation(permutation, data_.rows.rows);
    forget_plans();
    if (ahead_.valid()) {
      const bool same = same_permutation(ahead_for_, permutation);
      std::vector<std::int64_t> order = ahead_.get();
      if (same) {
        order_ = std::move(order);
        return;
      }
    }
    const std::int64_t n = permutation.rows;
    order_.resize(static_cast<std::size_t>(n));
#pragma omp parallel for schedule(static) if (n >= kTeamMinItems)
    for (std::int64_t i = 0; i < n; ++i) order_[static_cast<std::size_t>(i)] = epoch_row(permutation, i);
  }

  // The next epoch's order on a thread of its own: a small model's steps run on one thread (see
  // step_on_team), so there the order (about 5% of an exact epoch of 1M x 28 rows) costs nothing.
  // A small training set's order takes less than starting the thread: set_epoch_permutation
  // makes it then.
  void prepare_epoch_permutation(const EpochPermutation& next) override {
    if (ahead_.valid()) ahead_.wait();
    if (next.rows < kTeamMinItems) {
      ahead_ = {};
      return;
    }
    ahead_for_ = next;
    ahead_ = std::async(std::launch::async, [next] {
      std::vector<std::int64_t> order(static_cast<std::size_t>(std::max<std::int64_t>(next.rows, 0)));
      for (std::int64_t i = 0; i < next.rows; ++i) order[static_cast<std::size_t>(i)] = epoch_row(next, i);
      return order;
    });
  }

  double train_step(std::int64_t first, std::int64_t count, const StepSettings& settings) override {
    if (!bound_) throw Error("train_step: no training set is bound");
    check_step(first, count, static_cast<std::int64_t>(order_.size()), settings);
    if (count == 0) return 0.0;
    bool timed = false;
    const CpuStepWay way = step_way(count, timed);
    const bool team = way == CpuStepWay::team;
    bool planned = false;
    const bool plans = way == CpuStepWay::planned && !planner_refused_;
    if (plans && !planner_) {
      try {
        planner_ = std::make_unique<StepPlanner>(
            [this](BatchPlan& plan, const std::int64_t* order, std::int64_t n) { plan_batch(plan, order, n); });
      } catch (const std::system_error&) {  // no thread to be had: every step is planned here
        planner_refused_ = true;
      }
    }
    const std::int64_t next = first + count, rows = static_cast<std::int64_t>(order_.size());
    if (plans && planner_) {
      planned = planner_->take(first, count, order_generation_, state_.plan);
      // The next batch of the epoch, assumed the same size (the trainer's steps are consecutive
      // batches), while this one runs.
      if (next < rows && planner_->idle()) {
        planner_->request(order_.data(), next, std::min(count, rows - next), order_generation_);
      }
    }
    if (planner_ && next >= rows) planner_->drain();  // the order's last step: then nothing reads the rows
    if (planned) ++steps_planned_;
    const auto started = std::chrono::steady_clock::now();
    last_rule_ = update_rule(optimizer_, settings);
    stepped_ = true;
    const double loss = step(state_, order_.data() + first, count, last_rule_, team, planned);
    if (timed) step_ways_->record(seconds_since(started), count);
    loss_sum_ += loss;
    return settings.return_loss ? loss : std::numeric_limits<double>::quiet_NaN();
  }

  // Worker w's i-th local step is a train_step (the same function, in one thread) of step count
  // first_step + i on batch begin_w + i of the epoch order. After every sync_every local steps
  // (a round), and at the end, each parameter and optimizer state becomes the workers' average
  // (worker_average, in parallel over the parameters). The workers of a round are shared out to
  // the OpenMP team, however many threads it has: the bits depend on the worker count only.
  void train_epoch_local_sgd(const LocalSgdSettings& settings) override {
    if (!bound_) throw Error("train_epoch_local_sgd: no training set is bound");
    check_local_sgd(settings);
    const std::int64_t n = static_cast<std::int64_t>(order_.size());
    if (n == 0) return;
    const std::int64_t batch = settings.batch;
    // ceil(n / batch), without the overflow of n + batch - 1 at --batch 9223372036854775807.
    const std::int64_t batches = n / batch + (n % batch != 0);
    const std::int64_t requested = settings.workers > 0 ? settings.workers : omp_get_max_threads();
    const std::int64_t workers = std::max<std::int64_t>(1, std::min(requested, batches));
    const std::int64_t longest = (batches + workers - 1) / workers;
    // The trainer counts the epoch as `batches` steps (the next epoch's first_step), each worker
    // takes `longest`: a feature's gap into the next epoch would count the difference too, and
    // catch up that many more steps' penalties each epoch than any weight takes (a dense
    // feature's l2 applies once per local step). The last steps move on by it at the epoch's end.
    const auto skipped_steps = static_cast<std::uint32_t>(batches - longest);
    std::vector<UpdateRule> rules(static_cast<std::size_t>(longest));
    for (std::int64_t i = 0; i < longest; ++i) {
      StepSettings st;
      st.learning_rate = settings.learning_rate;
      st.step = settings.first_step + i;
      st.mean_weight = settings.mean_weight;
      rules[i] = update_rule(optimizer_, st);
    }
    // The epoch's last step in the trainer's count (the sparse features' last steps move on to it).
    last_rule_ = rules.back();
    last_rule_.step += skipped_steps;
    stepped_ = true;

    if (workers == 1) {  // one copy: the model's own, each step on the whole team
      double loss = 0.0;
      for (std::int64_t b = 0; b < batches; ++b) {
        const std::int64_t first = b * batch;
        const std::int64_t count = std::min(batch, n - first);
        bool timed = false;
        const bool team = step_way(count, timed, /*plans_allowed=*/false) == CpuStepWay::team;
        const auto started = std::chrono::steady_clock::now();
        loss += step(state_, order_.data() + first, count, rules[b], team);
        if (timed) step_ways_->record(seconds_since(started), count);
      }
      loss_sum_ += loss;
      return;
    }

    const std::int64_t size = params_.size();
    grow(workers_, workers);
    for (std::int64_t w = 0; w < workers; ++w) {
      if (static_cast<std::int64_t>(workers_[w].theta.size()) != size) {
        workers_[w].resize(size, uses_moments(), gradient_entries(), caught_up_features());
      }
      workers_[w].loss = 0.0;
    }
    grow(copies_, (state_.moments.empty() ? 1 : 3) * workers * size);  // weights, then two moments each
    // ceil(longest / sync_every), without the overflow of longest + sync_every - 1 at --sync-every
    // 9223372036854775807 (which made no round, and so no step, at all).
    const std::int64_t rounds =
        longest / settings.sync_every + (longest % settings.sync_every != 0);
    const std::int64_t chunks = (size + kNormSlice - 1) / kNormSlice;
#pragma omp parallel for schedule(static) if (workers * size >= kTeamMinItems)
    for (std::int64_t w = 0; w < workers; ++w) {
      StepState& s = workers_[w];
      std::copy(state_.theta.begin(), state_.theta.end(), s.theta.begin());
      std::copy(state_.moments.begin(), state_.moments.end(), s.moments.begin());
      std::copy(state_.last_step.begin(), state_.last_step.end(), s.last_step.begin());
    }
    for (std::int64_t round = 0; round < rounds; ++round) {
      // The round's rows: its steps of every worker.
      std::int64_t round_rows = 0;
      for (std::int64_t w = 0; w < workers; ++w) {
        std::int64_t begin = 0, end = 0;
        local_sgd_shard(batches, workers, w, begin, end);
        const std::int64_t steps = std::min(end - begin, (round + 1) * settings.sync_every) - round * settings.sync_every;
        round_rows += std::max<std::int64_t>(steps, 0) * batch;
      }
      // On the team, or its workers one after another in this thread (the same bits): by their
      // timings, as exact steps choose (step_way), since a round ends in barriers that a busy
      // machine makes slow.
      bool timed = pinned_way_ == CpuStepWay::automatic;
      const bool team = pinned_way_ == CpuStepWay::automatic ? step_way_of(round_ways_.way()) == CpuStepWay::team
                                                             : pinned_way_ == CpuStepWay::team;
      const auto started = std::chrono::steady_clock::now();
#pragma omp parallel if (team)
      {
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t w = 0; w < workers; ++w) {
          StepState& s = workers_[w];
          std::int64_t begin = 0, end = 0;
          local_sgd_shard(batches, workers, w, begin, end);
          const std::int64_t last = std::min(end - begin, (round + 1) * settings.sync_every);
          for (std::int64_t i = round * settings.sync_every; i < last; ++i) {
            const std::int64_t first = (begin + i) * batch;
            s.loss += step(s, order_.data() + first, std::min(batch, n - first), rules[i], false);
          }
          // The copies side by side, [array][worker][entry], for worker_average: the weights
          // (size entries a worker), then the moments (2 size).
          std::copy(s.theta.begin(), s.theta.end(), copies_.begin() + w * size);
          if (!s.moments.empty()) {
            std::copy(s.moments.begin(), s.moments.end(), copies_.begin() + workers * size + w * 2 * size);
          }
        }
        const bool last_round = round + 1 == rounds;
#pragma omp for schedule(static)
        for (std::int64_t c = 0; c < chunks; ++c) {
          for (int a = 0; a < (state_.moments.empty() ? 1 : 2); ++a) {
            const std::int64_t per = a == 0 ? 1 : 2;  // entries per parameter
            const float* copies = copies_.data() + a * workers * size;
            std::vector<float>& main = a == 0 ? state_.theta : state_.moments;
            const std::int64_t end = per * std::min(size, (c + 1) * kNormSlice);
            for (std::int64_t q = per * c * kNormSlice; q < end; ++q) {
              const float v = worker_average(copies, per * size, workers, q);
              main[q] = v;
              for (std::int64_t w = 0; w < workers && !last_round; ++w) {
                StepState& s = workers_[w];
                (a == 0 ? s.theta : s.moments)[q] = v;
              }
            }
          }
        }
        // A sparse feature's last update is the latest of the workers' (later_step): the
        // averaged weights hold the penalties each worker caught up. After the last round it moves
        // on by the steps the trainer counts beyond the workers' own (skipped_steps), so that the
        // next epoch's gaps count local steps only.
        const std::int64_t caught_up = static_cast<std::int64_t>(state_.last_step.size());
        const std::uint32_t moved_on = last_round ? skipped_steps : 0u;
#pragma omp for schedule(static)
        for (std::int64_t c = 0; c < (caught_up + kNormSlice - 1) / kNormSlice; ++c) {
          const std::int64_t end = std::min(caught_up, (c + 1) * kNormSlice);
          for (std::int64_t f = c * kNormSlice; f < end; ++f) {
            std::uint32_t latest = workers_[0].last_step[f];
            for (std::int64_t w = 1; w < workers; ++w) latest = later_step(latest, workers_[w].last_step[f]);
            state_.last_step[f] = latest + moved_on;
            for (std::int64_t w = 0; w < workers && !last_round; ++w) workers_[w].last_step[f] = latest;
          }
        }
      }
      if (timed) round_ways_.record(seconds_since(started), round_rows);
    }
    double loss = 0.0;
    for (std::int64_t w = 0; w < workers; ++w) loss += workers_[w].loss;
    loss_sum_ += loss;
  }

  double take_loss_sum() override { return std::exchange(loss_sum_, 0.0); }

  void catch_up_penalties() override {
    if (!stepped_ || !catches_up_before_reading(shape_, optimizer_)) return;
    const std::int64_t dense = shape_.layout.dense_features;
    const std::int64_t caught_up = static_cast<std::int64_t>(state_.last_step.size());
    const std::int64_t per_feature =
        static_cast<std::int64_t>(params_.outputs) * (1 + params_.factors);
    float* theta = state_.theta.data();
    std::uint32_t* last = state_.last_step.data();
#pragma omp parallel for schedule(static) if (caught_up * per_feature >= kTeamUpdateParameters)
    for (std::int64_t f = 0; f < caught_up; ++f) {
      catch_up_feature(last_rule_, params_, dense + f, theta, last[f]);
      last[f] = last_rule_.step;
    }
  }

  void finish_background_work() override {
    if (planner_) planner_->drain();
  }

  std::int64_t steps_planned() const { return steps_planned_; }
  void pin_step_way(CpuStepWay way) { pinned_way_ = way; }

  void predict_scores(const PreparedRowsView& rows, float* out) override {
    check_rows(shape_, rows, "predict_scores");
    if (shape_.task == Task::regression) {
      predict_in_double(rows, RegressionMap{}, out);
      return;
    }
    const ModelView model = view(state_);
    const std::int32_t outputs = params_.outputs;
    // Called from inside a parallel region (a scorer's thread per row tile), it runs on the
    // calling thread alone.
    const bool team = !omp_in_parallel() && rows.rows >= kParallelPredictRows;
    if (params_.factors == 0) {
      const std::int64_t runs = (rows.rows + kPredictRunRows - 1) / kPredictRunRows;
#pragma omp parallel for schedule(static) if (team)
      for (std::int64_t run = 0; run < runs; ++run) {
        const std::int64_t begin = run * kPredictRunRows;
        const std::int64_t end = std::min(rows.rows, begin + kPredictRunRows);
        for (std::int32_t o = 0; o < outputs; ++o) {
          linear_scores_columns(model, rows, begin, end, o, out + begin * outputs + o, outputs);
        }
      }
      return;
    }
    // An fm, row by row: summed in double, rounded to float once (predicted_scores; the training
    // step sums the same formula in float).
    const std::int64_t sums_per_row = static_cast<std::int64_t>(outputs) * params_.factors;
#pragma omp parallel if (team)
    {
      std::vector<double> sums(static_cast<std::size_t>(sums_per_row));
#pragma omp for schedule(static)
      for (std::int64_t r = 0; r < rows.rows; ++r) {
        if (prefetch_slots_ && r + kPrefetchSlotRows < rows.rows) prefetch_slot_weights(rows, r + kPrefetchSlotRows);
        predicted_scores(model, rows, r, out + r * outputs, sums.data());
      }
    }
  }

  void predict_regression(const PreparedRowsView& rows, double target_mean, double target_std,
                          TargetTransform transform, float* out) override {
    check_regression(shape_, "predict_regression");
    check_rows(shape_, rows, "predict_regression");
    predict_in_double(rows, RegressionMap{target_mean, target_std, transform}, out);
  }

  ModelParameters parameters() const override { return unpack_parameters(state_.theta, params_); }
  bool parameters_finite() const override {
    return std::all_of(state_.theta.begin(), state_.theta.end(), [](float x) { return std::isfinite(x); });
  }

  void set_parameters(const ModelParameters& parameters) override {
    check_parameters(shape_, parameters);
    std::vector<float>().swap(state_.theta);  // freed first: a hashed table may be gigabytes
    state_.theta = pack_parameters(parameters);
    std::fill(state_.moments.begin(), state_.moments.end(), 0.0f);
    std::fill(state_.last_step.begin(), state_.last_step.end(), 0u);
  }

  OptimizerState optimizer_state() const override {
    return {state_.moment(0), state_.moment(1), state_.last_step};
  }

  void set_optimizer_state(const OptimizerState& state) override {
    check_optimizer_state(shape_, state);
    const auto set = [&](int a, const std::vector<float>& from) {
      if (state_.moments.empty()) return;  // plain SGD keeps no state
      for (std::size_t q = 0; q < state_.theta.size(); ++q) state_.moments[2 * q + a] = from.empty() ? 0.0f : from[q];
    };
    set(0, state.first);
    set(1, state.second);
    if (state.last_step.empty()) {
      std::fill(state_.last_step.begin(), state_.last_step.end(), 0u);
    } else if (!state_.last_step.empty()) {
      state_.last_step = state.last_step;
    }
  }

 private:
  // A regression model's (one output) predictions, map(score) with the score summed in double:
  // as predict_scores' float path, runs of rows column by column (linear) or row by row (fm).
  void predict_in_double(const PreparedRowsView& rows, const RegressionMap& map, float* out) {
    const ModelView model = view(state_);
    const bool team = !omp_in_parallel() && rows.rows >= kParallelPredictRows;
    if (params_.factors == 0) {
      const std::int64_t runs = (rows.rows + kPredictRunRows - 1) / kPredictRunRows;
#pragma omp parallel if (team)
      {
        std::vector<double> scores(static_cast<std::size_t>(kPredictRunRows));
#pragma omp for schedule(static)
        for (std::int64_t run = 0; run < runs; ++run) {
          const std::int64_t begin = run * kPredictRunRows;
          const std::int64_t end = std::min(rows.rows, begin + kPredictRunRows);
          linear_regression_columns(model, rows, begin, end, map, scores.data(), out);
        }
      }
      return;
    }
#pragma omp parallel if (team)
    {
      std::vector<double> sums(static_cast<std::size_t>(params_.factors));
#pragma omp for schedule(static)
      for (std::int64_t r = 0; r < rows.rows; ++r) {
        if (prefetch_slots_ && r + kPrefetchSlotRows < rows.rows) prefetch_slot_weights(rows, r + kPrefetchSlotRows);
        out[r] = regression_prediction(model, rows, r, map, sums.data());
      }
    }
  }

  ModelView view(const StepState& s) const {
    ModelView m;
    m.theta = s.theta.data();
    m.params = params_;
    m.layout = shape_.layout;
    m.loss = shape_.loss;
    m.huber_delta = shape_.huber_delta;
    return m;
  }

  // One optimizer step of state s on the rows order[0 .. count) (count >= 1): the step train_step
  // documents. Returns the batch's summed weighted loss. `parallel`: spread the step's loops over
  // the OpenMP team; false runs them in the calling thread. Same bits either way.
  // Flattened: the one-row forward (row_forward, row_scores, linear_score) is inlined here, where
  // its row view's stride of 1 is a constant. The operations are the same, and an exact epoch on
  // 1M x 28 runs 6% faster.
  __attribute__((flatten)) double step(StepState& s, const std::int64_t* order, std::int64_t count,
                                       const UpdateRule& rule, bool parallel, bool planned = false) const {
    const ParameterLayout& p = params_;
    const ModelView model = view(s);
    const std::int32_t outputs = p.outputs, k = p.factors, groups = shape_.layout.groups;
    const std::int64_t dense = shape_.layout.dense_features;
    const std::int64_t per_output = dense_entries_per_output(p, dense);
    const std::int64_t entries = outputs * per_output;
    const std::int64_t slices = (count + kSliceRows - 1) / kSliceRows;
    grow(s.dscore, count * outputs);
    grow(s.sums, count * outputs * k);
    grow(s.partial, slices * entries);
    grow(s.slice_loss, slices);
    const std::int64_t stored = row_major_dense_features(shape_);
    const auto products = static_cast<std::int64_t>(shape_.products.size() / 2);
    if (products > 0) grow(s.expanded, slices * dense);
    BatchPlan& bp = s.plan;
    grow_plan(bp, count);
    // Plain SGD's lazy penalties up to the step before, before the forward pass reads the weights.
    const bool catch_up = !s.last_step.empty() && optimizer_.kind == OptimizerKind::sgd;
    UpdateRule before = rule;
    before.step = rule.step - 1;
    if (catch_up && parallel) catch_up_batch(s, order, count, before);
    const bool catch_up_rows = catch_up && !parallel;
    const float* theta = s.theta.data();

    // Forward and the dense entries' partial sums, one batch slice at a time. Each row is read
    // from the row-major copy of the training set as a one-row block: the same values the GPU
    // reads in place from the column-major set.
    for_each_index(parallel, true, slices, [&](std::int64_t c) {
      double* acc = s.partial.data() + c * entries;
      std::fill(acc, acc + entries, 0.0);
      double loss = 0.0;
      const std::int64_t end = std::min(count, (c + 1) * kSliceRows);
      for (std::int64_t b = c * kSliceRows; b < end; ++b) {
        if (b + kPrefetchRows < count) prefetch_row(order[b + kPrefetchRows]);
        if (prefetch_slots_ && b + kPrefetchSlotRows < count) {
          prefetch_slot_weights(order[b + kPrefetchSlotRows], theta);
          if (catch_up_rows) prefetch_last_steps(order[b + kPrefetchSlotRows], s.last_step.data());
        }
        const std::int64_t r = order[b];
        if (catch_up_rows) catch_up_row(s, r, before);
        const float* x = by_row_dense_ + r * stored;
        if (products > 0) {
          float* row = s.expanded.data() + c * dense;
          std::copy(x, x + stored, row);
          multiply_out_products(shape_.products.data(), products, stored, row);
          x = row;
        }
        std::int32_t* slot = bp.batch_slot.data() + b * groups;
        float* value = bp.batch_value.data() + b * groups;
        if (!planned) gather_row(r, slot, value, bp.batch_label[b], bp.batch_weight[b]);
        const LabeledRowsView one{PreparedRowsView{x, slot, value, 1}, bp.batch_label.data() + b,
                                  data_.weights ? bp.batch_weight.data() + b : nullptr};
        float* ds = s.dscore.data() + b * outputs;
        const float* sm = s.sums.data() + b * outputs * k;
        double w = 0.0;  // the row's weight (unused: a step divides by step_weight)
        loss += row_forward(model, one, 0, ds, s.sums.data() + b * outputs * k, w);
        for (std::int32_t o = 0; o < outputs; ++o) {
          const float d = ds[o];
          double* a = acc + o * per_output;
          a[0] += static_cast<double>(d);
          add_dense_gradient(a + 1, x, d, dense);
          for (std::int64_t i = 0; i < dense && k > 0; ++i) {
            double* ai = a + 1 + dense + i * k;
            const float* v = theta + p.factor(o, i, 0);
            const float* so = sm + o * k;
            for (std::int32_t f = 0; f < k; ++f) {
              ai[f] += static_cast<double>(fm_factor_gradient(d, x[i], so[f], v[f]));
            }
          }
        }
      }
      s.slice_loss[c] = loss;
    });

    const bool lazy = groups > 0 && optimizer_.lazy_sparse;
    for_each_index(parallel, false, entries, [&](std::int64_t e) {
      double total = 0.0;
      for (std::int64_t c = 0; c < slices; ++c) total += s.partial[c * entries + e];
      s.gradient[lazy ? e : dense_entry_parameter(p, dense, static_cast<std::int32_t>(e / per_output), e % per_output)] =
          total;
    });

    // Lazy updates: the batch's sparse features, each once in batch order, and their places.
    const std::int64_t per_feature = static_cast<std::int64_t>(outputs) * (1 + k);
    if (lazy) {
      if (!planned) find_touched(bp.batch_slot.data(), count, bp.touched, bp.touched_places, bp.batch_place);
      grow(s.touched_gradient, static_cast<std::int64_t>(bp.touched.size()) * per_feature);
    }

    // Sparse entries: each (group, output) owns a disjoint range of the gradient and adds its rows'
    // terms in batch order (lazy: into the touched features' gradient, the same sums).
    const std::int64_t units = static_cast<std::int64_t>(groups) * outputs;
    for_each_index(parallel, true, units, [&](std::int64_t u) {
      const std::int32_t g = static_cast<std::int32_t>(u / outputs);
      const std::int32_t o = static_cast<std::int32_t>(u % outputs);
      const std::int64_t offset = shape_.layout.group_offset[g];
      for (std::int64_t b = 0; b < count; ++b) {
        const std::int64_t idx = offset + bp.batch_slot[b * groups + g];
        const float x = bp.batch_value[b * groups + g];
        const float d = s.dscore[b * outputs + o];
        const float* sm = s.sums.data() + (b * outputs + o) * k;
        if (lazy) {
          double* a = s.touched_gradient.data() + bp.batch_place[b * groups + g] * per_feature + o * (1 + k);
          a[0] += static_cast<double>(d * x);
          for (std::int32_t f = 0; f < k; ++f) {
            a[1 + f] += static_cast<double>(fm_factor_gradient(d, x, sm[f], theta[p.factor(o, idx, f)]));
          }
          continue;
        }
        s.gradient[p.weight(o, idx)] += static_cast<double>(d * x);
        for (std::int32_t f = 0; f < k; ++f) {
          const std::int64_t q = p.factor(o, idx, f);
          s.gradient[q] += static_cast<double>(fm_factor_gradient(d, x, sm[f], theta[q]));
        }
      }
    });

    double loss = 0.0;
    for (std::int64_t c = 0; c < slices; ++c) loss += s.slice_loss[c];
    const double weight = step_weight(count, rule);
    const std::int64_t size = p.size();
    if (lazy) {
      lazy_update(s, weight, rule, parallel);
      return loss;
    }
    double squares = 0.0;
    if (optimizer_.clip_norm > 0.0f) {
      const std::int64_t norm_slices = (size + kNormSlice - 1) / kNormSlice;
      grow(s.norm_partial, norm_slices);
      for_each_index(parallel, false, norm_slices, [&](std::int64_t c) {
        double sq = 0.0;
        const std::int64_t end = std::min(size, (c + 1) * kNormSlice);
        for (std::int64_t q = c * kNormSlice; q < end; ++q) sq += s.gradient[q] * s.gradient[q];
        s.norm_partial[c] = sq;
      });
      for (std::int64_t c = 0; c < norm_slices; ++c) squares += s.norm_partial[c];
    }
    const double scale = gradient_scale(weight, squares, optimizer_.clip_norm);
    float* th = s.theta.data();
    const MomentsView mo = s.moments_view();
    double* gr = s.gradient.data();
    const auto update = [&](std::int64_t q) {
      update_weight(rule, p.regularized(q), static_cast<float>(gr[q] * scale), th[q], mo.first[q * mo.stride],
                    mo.second[q * mo.stride]);
      gr[q] = 0.0;
    };
    if (parallel) {
#pragma omp parallel for schedule(static)
      for (std::int64_t q = 0; q < size; ++q) update(q);
    } else {
      for (std::int64_t q = 0; q < size; ++q) update(q);
    }
    return loss;
  }

  // Room in `plan` for a batch of `count` rows.
  void grow_plan(BatchPlan& plan, std::int64_t count) const {
    const std::int64_t groups = shape_.layout.groups;
    grow(plan.batch_slot, count * groups);
    grow(plan.batch_value, count * groups);
    grow(plan.batch_label, count);
    grow(plan.batch_weight, count);
  }

  // Batch row b (training row r) gathered: its slots and values (groups of each), label and weight.
  void gather_row(std::int64_t r, std::int32_t* slot, float* value, float& label, float& weight) const {
    const std::int32_t groups = shape_.layout.groups;
    for (std::int32_t g = 0; g < groups; ++g) {
      slot[g] = by_row_slot_[r * groups + g];
      value[g] = by_row_value_ ? by_row_value_[r * groups + g] : 1.0f;
    }
    label = data_.labels[r];
    weight = data_.weights ? data_.weights[r] : 1.0f;
  }

  // A lazy step's sparse features (the batch's slots, [row][group], of `count` rows), each once in
  // batch order, and per row and group its feature's place among them.
  // Plain SGD's lazy penalties (catches_up_before_reading): the sparse features of row r take the
  // penalties of the steps they skipped up to `before`'s step, the step before the one about to
  // read them (catch_up_feature; a feature in several rows of a batch the first time).
  void catch_up_row(StepState& s, std::int64_t r, const UpdateRule& before) const {
    const std::int32_t groups = shape_.layout.groups;
    const std::int64_t dense = shape_.layout.dense_features;
    const std::int32_t* slot = by_row_slot_ + r * groups;
    for (std::int32_t g = 0; g < groups; ++g) {
      const std::int64_t feature = shape_.layout.group_offset[g] + slot[g];
      std::uint32_t& last = s.last_step[static_cast<std::size_t>(feature - dense)];
      if (last == before.step) continue;
      catch_up_feature(before, params_, feature, s.theta.data(), last);
      last = before.step;
    }
  }

  // catch_up_row for the rows order[0, count), in this thread, before a team's forward pass (whose
  // threads would otherwise race on a feature in two of their rows); a step on one thread does it
  // row by row in its forward pass instead. The slots of a row kPrefetchRows ahead, the last steps
  // and weights of one kPrefetchSlotRows ahead are requested, as the forward pass does.
  void catch_up_batch(StepState& s, const std::int64_t* order, std::int64_t count,
                      const UpdateRule& before) const {
    const std::int32_t groups = shape_.layout.groups;
    for (std::int64_t b = 0; b < count; ++b) {
      if (b + kPrefetchRows < count) prefetch(by_row_slot_ + order[b + kPrefetchRows] * groups);
      if (prefetch_slots_ && b + kPrefetchSlotRows < count) {
        prefetch_slot_weights(order[b + kPrefetchSlotRows], s.theta.data());
        prefetch_last_steps(order[b + kPrefetchSlotRows], s.last_step.data());
      }
      catch_up_row(s, order[b], before);
    }
  }

  // The last steps of row r's sparse features (catch_up_row).
  void prefetch_last_steps(std::int64_t r, const std::uint32_t* last) const {
    const std::int32_t groups = shape_.layout.groups;
    const std::int64_t dense = shape_.layout.dense_features;
    for (std::int32_t g = 0; g < groups; ++g) {
      prefetch(last + (shape_.layout.group_offset[g] + by_row_slot_[r * groups + g] - dense));
    }
  }

  void find_touched(const std::int32_t* batch_slot, std::int64_t count, std::vector<std::int64_t>& touched,
                    TouchedPlaces& places, std::vector<std::int32_t>& batch_place) const {
    const std::int32_t groups = shape_.layout.groups;
    touched.clear();
    grow(batch_place, count * groups);
    places.start(std::min(count * groups, params_.features));
    for (std::int64_t b = 0; b < count; ++b) {
      for (std::int32_t g = 0; g < groups; ++g) {
        const std::int64_t feature = shape_.layout.group_offset[g] + batch_slot[b * groups + g];
        const auto next = static_cast<std::int32_t>(touched.size());
        const std::int32_t place = places.place(feature, next);
        if (place == next) touched.push_back(feature);
        batch_place[b * groups + g] = place;
      }
    }
  }

  // What a lazy step of the rows order[0, count) reads besides the parameters, made ahead by the
  // planner (step then skips gather_row and find_touched). The same functions: the same bits.
  void plan_batch(BatchPlan& plan, const std::int64_t* order, std::int64_t count) const {
    const std::int32_t groups = shape_.layout.groups;
    grow_plan(plan, count);
    for (std::int64_t b = 0; b < count; ++b) {
      if (b + kPrefetchRows < count) {
        const std::int32_t* ahead = by_row_slot_ + order[b + kPrefetchRows] * groups;
        for (std::int64_t at = 0; at < groups; at += 16) prefetch(ahead + at);
        prefetch(ahead + groups - 1);
      }
      gather_row(order[b], plan.batch_slot.data() + b * groups, plan.batch_value.data() + b * groups,
                 plan.batch_label[b], plan.batch_weight[b]);
    }
    find_touched(plan.batch_slot.data(), count, plan.touched, plan.touched_places, plan.batch_place);
  }

  // Whether a step of `count` rows may be planned ahead (StepPlanner): a lazy step of sparse
  // groups, large enough, with a second thread allowed. It then runs in this thread alone (a team's
  // step has no core to spare).
  bool may_plan_ahead(std::int64_t count) const {
    return shape_.layout.groups > 0 && optimizer_.lazy_sparse &&
           count * shape_.layout.groups >= kPlannedStepEntries && omp_get_max_threads() > 1;
  }

  // How a step of `count` rows runs: in this thread alone, planned ahead (may_plan_ahead), or on
  // the team (step_on_team). Where more than one way is open, step_ways_ times them (a busy
  // machine makes both ways of using the second core slow) and `timed` says to record the step's
  // time there. Steps whose open ways differ from the first step's (an epoch's last, smaller
  // batch) take the team, else the plan, where open, untimed. Same bits every way.
  CpuStepWay step_way(std::int64_t count, bool& timed, bool plans_allowed = true) {
    timed = false;
    const std::array<bool, WayChooser::kMaxWays> open = {true, plans_allowed && may_plan_ahead(count),
                                                         step_on_team(count)};
    if (!open[1] && !open[2]) return CpuStepWay::alone;
    if (!step_ways_) {
      step_ways_.emplace(open);
      step_ways_open_ = open;
    }
    if (pinned_way_ != CpuStepWay::automatic && open[static_cast<std::size_t>(chooser_way(pinned_way_))]) {
      return pinned_way_;
    }
    if (open != step_ways_open_) return open[2] ? CpuStepWay::team : CpuStepWay::planned;
    timed = true;
    return step_way_of(step_ways_->way());
  }

  // Before the bound rows or the epoch's order change: no plan of the old ones is in the making or
  // taken later.
  void forget_plans() {
    if (planner_) planner_->drain();
    ++order_generation_;
  }

  // The update of a model with sparse features (step's last part): the clipping norm and the
  // optimizer over the dense parameters and the features of the batch's slots only (s.plan.touched,
  // their gradient in s.touched_gradient). The gradient of every other parameter is zero, so the
  // norm is the full gradient's.
  void lazy_update(StepState& s, double weight, const UpdateRule& rule, bool parallel) const {
    const ParameterLayout& p = params_;
    const std::int32_t k = p.factors;
    const std::int64_t per_feature = static_cast<std::int64_t>(p.outputs) * (1 + k);
    const std::int64_t dense = shape_.layout.dense_features;
    const std::int64_t per_output = dense_entries_per_output(p, dense);
    const std::int64_t dense_count = p.outputs * per_output;
    const std::int64_t touched = static_cast<std::int64_t>(s.plan.touched.size());
    const auto dense_parameter = [&](std::int64_t i) {
      const std::int32_t o = static_cast<std::int32_t>(i / per_output);
      return dense_entry_parameter(p, dense, o, i - o * per_output);
    };
    double* gr = s.gradient.data();  // by dense entry i
    double* tg = s.touched_gradient.data();
    double squares = 0.0;
    if (optimizer_.clip_norm > 0.0f) {  // in a fixed order: the dense entries, then the slots'
      for (std::int64_t i = 0; i < dense_count; ++i) squares += gr[i] * gr[i];
      for (std::int64_t i = 0; i < touched * per_feature; ++i) squares += tg[i] * tg[i];
    }
    const double scale = gradient_scale(weight, squares, optimizer_.clip_norm);
    float* th = s.theta.data();
    const MomentsView mo = s.moments_view();
    std::uint32_t* last = s.last_step.empty() ? nullptr : s.last_step.data();
    // Every parameter is updated by one iteration: the schedule never changes the bits.
    for_each_index(parallel && dense_count >= kTeamUpdateParameters, false, dense_count, [&](std::int64_t i) {
      const std::int64_t q = dense_parameter(i);
      update_weight(rule, p.regularized(q), static_cast<float>(gr[i] * scale), th[q], mo.first[q * mo.stride],
                    mo.second[q * mo.stride]);
      gr[i] = 0.0;
    });
    for_each_index(parallel && touched * per_feature >= kTeamUpdateParameters, false, touched, [&](std::int64_t i) {
      if (i + kPrefetchTouched < touched) {
        const std::int64_t ahead = p.weight(0, s.plan.touched[i + kPrefetchTouched]);
        prefetch(mo.first + ahead * mo.stride);
        prefetch(th + ahead);  // read by the forward pass, but a batch's lines may have left the cache since
        if (last) prefetch(last + (s.plan.touched[i + kPrefetchTouched] - dense));
        if (k > 0) {  // an fm's factors of the feature: their values and their moments
          const std::int64_t factor = p.factor(0, s.plan.touched[i + kPrefetchTouched], 0);
          prefetch_span(th + factor, k * std::int64_t{4});
          if (mo.stride > 0) prefetch_span(mo.first + factor * mo.stride, k * mo.stride * std::int64_t{4});
        }
      }
      const std::int64_t feature = s.plan.touched[i];
      update_feature(rule, p, feature, scale, th, mo, GradientInVisitOrder{tg + i * per_feature},
                     last ? last + (feature - dense) : nullptr);
    });
  }

  ModelShape shape_;
  OptimizerConfig optimizer_;
  ParameterLayout params_;
  bool predict_only_;
  StepState state_;

  LabeledRowsView data_;
  bool bound_ = false;
  // The bound rows again, row-major: dense [row][feature], slot and value [row][group]. A step
  // reads a random batch of rows; a row of the column-major set costs a cache miss per feature,
  // a row here one or two cache lines. Memory: one more copy of the prepared rows.
  HostArray<float> row_dense_{HostMemory::huge_pages}, row_value_{HostMemory::huge_pages};
  HostArray<std::int32_t> row_slot_{HostMemory::huge_pages};
  // Where the steps read the rows row-major: the copy above, or the caller's
  // (TrainingSet::dense_by_row and its siblings; the caller's values may be null, all 1).
  const float* by_row_dense_ = nullptr;
  const std::int32_t* by_row_slot_ = nullptr;
  const float* by_row_value_ = nullptr;
  // Whether the forward pass requests its rows' slot weights ahead (kPrefetchSlotStateBytes).
  bool prefetch_slots_ = false;

  // Whether the optimizer keeps moments (plain SGD keeps none).
  bool uses_moments() const { return optimizer_.kind != OptimizerKind::sgd; }
  // The sparse features whose last steps StepState::last_step keeps (caught_up_feature_count).
  std::int64_t caught_up_features() const { return caught_up_feature_count(shape_, optimizer_); }
  // The step gradient's length: a lazy step's holds the dense entries only.
  std::int64_t gradient_entries() const {
    return shape_.layout.groups > 0 && optimizer_.lazy_sparse
               ? params_.outputs * dense_entries_per_output(params_, shape_.layout.dense_features)
               : params_.size();
  }

  // Whether a step of `count` rows may be worth the OpenMP team (team_chooser_ then times whether
  // it is). A step ends in several barriers; a small step (B = 1024 rows of 32 features takes about
  // 40 us on one core) gains little from a second thread and loses a great deal whenever a thread
  // of the team is descheduled (a busy machine: every barrier then waits out a time slice). Same
  // bits either way.
  bool step_on_team(std::int64_t count) const {
    const std::int64_t row_work = (shape_.layout.dense_features + shape_.layout.groups) *
                                  params_.outputs * (1 + params_.factors);
    return count * row_work >= kTeamStepWork;
  }

  // Asks for row r's cache lines ahead of its use: the rows of a batch are random, so no hardware
  // prefetcher sees them coming, and each row's forward pass would otherwise wait out its misses.
  void prefetch_row(std::int64_t r) const {
    const std::int64_t dense = row_major_dense_features(shape_), groups = shape_.layout.groups;
    const char* x = reinterpret_cast<const char*>(by_row_dense_ + r * dense);
    // Up to five lines: the first four and the last (for a row that starts mid-line); longer
    // rows are read in order, which the hardware prefetcher follows.
    const std::int64_t bytes = dense * 4;
    prefetch(x);
    if (bytes > 64) prefetch(x + 64);
    if (bytes > 128) prefetch(x + 128);
    if (bytes > 192) prefetch(x + 192);
    if (bytes > 0) prefetch(x + bytes - 1);
    if (groups > 0) {  // every line: 26 groups' slots span two or three
      for (std::int64_t at = 0; at < groups; at += 16) prefetch(by_row_slot_ + r * groups + at);
      prefetch(by_row_slot_ + r * groups + groups - 1);
      if (by_row_value_) {
        for (std::int64_t at = 0; at < groups; at += 16) prefetch(by_row_value_ + r * groups + at);
        prefetch(by_row_value_ + r * groups + groups - 1);
      }
    }
    prefetch(data_.labels + r);
    if (data_.weights) prefetch(data_.weights + r);
  }

  // Asks for the lines of row r's slot weights (first output) and an fm's factors of them, which a
  // large hashed table keeps out of the cache: the forward pass reads them, the lazy update writes
  // them.
  void prefetch_slot_weights(std::int64_t r, const float* theta) const {
    const std::int32_t groups = shape_.layout.groups;
    for (std::int32_t g = 0; g < groups; ++g) {
      prefetch_feature(theta, shape_.layout.group_offset[g] + by_row_slot_[r * groups + g]);
    }
  }
  // The same for row r of column-major rows (an fm's predictions, row by row).
  void prefetch_slot_weights(const PreparedRowsView& rows, std::int64_t r) const {
    const std::int32_t groups = shape_.layout.groups;
    for (std::int32_t g = 0; g < groups; ++g) {
      prefetch_feature(state_.theta.data(), shape_.layout.group_offset[g] + rows.slot[g * rows.rows + r]);
    }
  }
  // Expanded feature `feature`'s weight (first output) and an fm's factors of it.
  void prefetch_feature(const float* theta, std::int64_t feature) const {
    prefetch(theta + params_.weight(0, feature));
    if (params_.factors > 0) prefetch_span(theta + params_.factor(0, feature, 0), params_.factors * std::int64_t{4});
  }
  // Every line of the `bytes` from p on.
  static void prefetch_span(const void* p, std::int64_t bytes) {
    const char* c = static_cast<const char*>(p);
    for (std::int64_t at = 0; at < bytes; at += 64) prefetch(c + at);
    prefetch(c + bytes - 1);
  }

  std::vector<std::int64_t> order_;
  // prepare_epoch_permutation's order in the making, and the permutation it is of.
  std::future<std::vector<std::int64_t>> ahead_;
  EpochPermutation ahead_for_;
  double loss_sum_ = 0.0;
  // The rule of the last step taken (after local SGD: its last local step, numbered as the
  // trainer counts), up to which catch_up_penalties brings the sparse features.
  UpdateRule last_rule_;
  bool stepped_ = false;

  // Local SGD: the workers' states and, at each average, their three arrays side by side.
  std::vector<StepState> workers_;
  std::vector<float> copies_;

  // Counts the changes of the bound rows and of order_, which make a plan stale.
  std::uint64_t order_generation_ = 0;
  std::int64_t steps_planned_ = 0;  // steps run on the planner's plans
  bool planner_refused_ = false;    // its thread could not be started
  // The way steps run (step_way), chosen by their timings, and the ways open to it.
  std::optional<WayChooser> step_ways_;
  std::array<bool, WayChooser::kMaxWays> step_ways_open_{};
  CpuStepWay pinned_way_ = CpuStepWay::automatic;  // set_cpu_step_way
  // Whether local SGD's rounds (train_epoch_local_sgd) run on the team or in this thread, by their
  // timings.
  WayChooser round_ways_{{true, false, true}};
  // Made at the first step it plans; declared last, so destroyed (its thread joined) first.
  std::unique_ptr<StepPlanner> planner_;
};

}  // namespace

std::unique_ptr<Model> make_cpu_model(const ModelShape& shape, const OptimizerConfig& optimizer, bool predict_only) {
  return std::make_unique<CpuModel>(shape, optimizer, predict_only);
}

std::int64_t steps_planned_ahead(const Model& model) {
  const auto* cpu = dynamic_cast<const CpuModel*>(&model);
  return cpu ? cpu->steps_planned() : 0;
}

void set_cpu_step_way(Model& model, CpuStepWay way) {
  if (auto* cpu = dynamic_cast<CpuModel*>(&model)) cpu->pin_step_way(way);
}

HostMemory cpu_training_rows_memory(std::int64_t sparse_groups, const OptimizerConfig& optimizer) {
  // CpuModel::may_plan_ahead's conditions that do not depend on the step.
  const bool planned = sparse_groups > 0 && optimizer.lazy_sparse && omp_get_max_threads() > 1;
  return planned ? HostMemory::plain : HostMemory::huge_pages;
}

}  // namespace lathe
