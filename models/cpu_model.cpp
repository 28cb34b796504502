// The CPU model: the reference implementation of models/model.h, around the formulas of
// models/model_formulas.h. Every parallel loop writes to storage of its own and every sum runs in
// a fixed order, so the result does not depend on the thread count.
#include "models/cpu_model.h"

#include <omp.h>

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "models/model_checks.h"
#include "models/model_formulas.h"
#include "runtime/error.h"

namespace lathe {
namespace {

// Rows per partial gradient of the dense entries: the batch is cut into fixed slices (not one per
// thread) whose partial sums are merged in slice order.
constexpr std::int64_t kSliceRows = 64;
// Entries per partial sum of squares of the gradient (clipping).
constexpr std::int64_t kNormSlice = 1 << 14;

class CpuModel final : public Model {
 public:
  CpuModel(const ModelShape& shape, const OptimizerConfig& optimizer)
      : shape_(shape), optimizer_(optimizer), params_(parameter_layout(shape)) {
    shape_.layout.group_offset = shape_.group_offsets.data();
    const auto n = static_cast<std::size_t>(params_.size());
    theta_.assign(n, 0.0f);
    moment1_.assign(n, 0.0f);
    moment2_.assign(n, 0.0f);
    gradient_.assign(n, 0.0);
  }

  const ModelShape& shape() const override { return shape_; }

  void bind_training_set(const TrainingSet& data) override {
    check_training_set(shape_, data);
    data_ = LabeledRowsView{data.rows, data.labels, data.weights};
    bound_ = true;
    order_.clear();
  }

  void set_epoch_order(const std::vector<std::int64_t>& order) override {
    if (!bound_) throw Error("set_epoch_order: no training set is bound");
    check_order(order, data_.rows.rows);
    order_ = order;
  }

  double train_step(std::int64_t first, std::int64_t count, const StepSettings& settings) override {
    if (!bound_) throw Error("train_step: no training set is bound");
    check_step(first, count, static_cast<std::int64_t>(order_.size()), settings);
    if (count == 0) return 0.0;

    const ParameterLayout& p = params_;
    const ModelView model = view();
    const std::int32_t outputs = p.outputs, k = p.factors, groups = shape_.layout.groups;
    const std::int64_t dense = shape_.layout.dense_features;
    const std::int64_t per_output = dense_entries_per_output(p, dense);
    const std::int64_t entries = outputs * per_output;
    const std::int64_t slices = (count + kSliceRows - 1) / kSliceRows;
    grow(dscore_, count * outputs);
    grow(sums_, count * outputs * k);
    grow(partial_, slices * entries);
    grow(slice_loss_, slices);
    grow(slice_weight_, slices);
    grow(batch_dense_, count * dense);
    grow(batch_slot_, count * groups);
    grow(batch_value_, count * groups);
    grow(batch_label_, count);
    grow(batch_weight_, count);
    const std::int64_t* order = order_.data() + first;
    const PreparedRowsView& rows = data_.rows;
    const float* theta = theta_.data();

    // Forward and the dense entries' partial sums, one batch slice at a time. Each row is first
    // gathered from the column-major training set into a row-major copy (D loads in flight at
    // once), which the formulas then read as a one-row block: the same values the GPU reads in
    // place, contiguous here.
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t c = 0; c < slices; ++c) {
      double* acc = partial_.data() + c * entries;
      std::fill(acc, acc + entries, 0.0);
      double loss = 0.0, weight = 0.0;
      const std::int64_t end = std::min(count, (c + 1) * kSliceRows);
      for (std::int64_t b = c * kSliceRows; b < end; ++b) {
        const std::int64_t r = order[b];
        float* x = batch_dense_.data() + b * dense;
        std::int32_t* slot = batch_slot_.data() + b * groups;
        float* value = batch_value_.data() + b * groups;
        for (std::int64_t f = 0; f < dense; ++f) x[f] = rows.dense[f * rows.rows + r];
        for (std::int32_t g = 0; g < groups; ++g) {
          slot[g] = rows.slot[static_cast<std::int64_t>(g) * rows.rows + r];
          value[g] = rows.value[static_cast<std::int64_t>(g) * rows.rows + r];
        }
        batch_label_[b] = data_.labels[r];
        batch_weight_[b] = data_.weights ? data_.weights[r] : 1.0f;
        const LabeledRowsView one{PreparedRowsView{x, slot, value, 1}, batch_label_.data() + b,
                                  data_.weights ? batch_weight_.data() + b : nullptr};
        float* ds = dscore_.data() + b * outputs;
        const float* sm = sums_.data() + b * outputs * k;
        double w = 0.0;
        loss += row_forward(model, one, 0, ds, sums_.data() + b * outputs * k, w);
        weight += w;
        for (std::int32_t o = 0; o < outputs; ++o) {
          const float d = ds[o];
          double* a = acc + o * per_output;
          a[0] += static_cast<double>(d);
          for (std::int64_t i = 0; i < dense; ++i) a[1 + i] += static_cast<double>(d * x[i]);
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
      slice_loss_[c] = loss;
      slice_weight_[c] = weight;
    }

#pragma omp parallel for schedule(static)
    for (std::int64_t e = 0; e < entries; ++e) {
      double total = 0.0;
      for (std::int64_t c = 0; c < slices; ++c) total += partial_[c * entries + e];
      gradient_[dense_entry_parameter(p, dense, static_cast<std::int32_t>(e / per_output),
                                      e % per_output)] = total;
    }

    // Sparse entries: each (group, output) owns a disjoint range of the gradient and adds its rows'
    // terms in batch order.
    const std::int64_t units = static_cast<std::int64_t>(groups) * outputs;
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t u = 0; u < units; ++u) {
      const std::int32_t g = static_cast<std::int32_t>(u / outputs);
      const std::int32_t o = static_cast<std::int32_t>(u % outputs);
      const std::int64_t offset = shape_.layout.group_offset[g];
      for (std::int64_t b = 0; b < count; ++b) {
        const std::int64_t idx = offset + batch_slot_[b * groups + g];
        const float x = batch_value_[b * groups + g];
        const float d = dscore_[b * outputs + o];
        gradient_[p.weight(o, idx)] += static_cast<double>(d * x);
        const float* sm = sums_.data() + (b * outputs + o) * k;
        for (std::int32_t f = 0; f < k; ++f) {
          const std::int64_t q = p.factor(o, idx, f);
          gradient_[q] += static_cast<double>(fm_factor_gradient(d, x, sm[f], theta[q]));
        }
      }
    }

    double loss = 0.0, weight = 0.0;
    for (std::int64_t c = 0; c < slices; ++c) {
      loss += slice_loss_[c];
      weight += slice_weight_[c];
    }
    const std::int64_t size = p.size();
    double squares = 0.0;
    if (optimizer_.clip_norm > 0.0f) {
      const std::int64_t norm_slices = (size + kNormSlice - 1) / kNormSlice;
      grow(norm_partial_, norm_slices);
#pragma omp parallel for schedule(static)
      for (std::int64_t c = 0; c < norm_slices; ++c) {
        double s = 0.0;
        const std::int64_t end = std::min(size, (c + 1) * kNormSlice);
        for (std::int64_t q = c * kNormSlice; q < end; ++q) s += gradient_[q] * gradient_[q];
        norm_partial_[c] = s;
      }
      for (std::int64_t c = 0; c < norm_slices; ++c) squares += norm_partial_[c];
    }
    const double scale = gradient_scale(weight, squares, optimizer_.clip_norm);
    const UpdateRule rule = update_rule(optimizer_, settings);
#pragma omp parallel for schedule(static)
    for (std::int64_t q = 0; q < size; ++q) {
      update_weight(rule, p.regularized(q), static_cast<float>(gradient_[q] * scale), theta_[q],
                    moment1_[q], moment2_[q]);
      gradient_[q] = 0.0;
    }
    loss_sum_ += loss;
    return settings.return_loss ? loss : std::numeric_limits<double>::quiet_NaN();
  }

  double take_loss_sum() override { return std::exchange(loss_sum_, 0.0); }

  void predict_scores(const PreparedRowsView& rows, float* out) override {
    check_rows(shape_, rows, "predict_scores");
    const ModelView model = view();
    const std::int32_t outputs = params_.outputs;
    const std::int64_t sums_per_row = static_cast<std::int64_t>(outputs) * params_.factors;
#pragma omp parallel
    {
      std::vector<float> sums(static_cast<std::size_t>(std::max<std::int64_t>(sums_per_row, 1)));
#pragma omp for schedule(static)
      for (std::int64_t r = 0; r < rows.rows; ++r)
        row_scores(model, rows, r, out + r * outputs, sums.data());
    }
  }

  ModelParameters parameters() const override {
    ModelParameters out;
    const auto at = [this](std::int64_t q) { return theta_.begin() + q; };
    out.weights.assign(at(0), at(params_.bias_offset()));
    out.bias.assign(at(params_.bias_offset()), at(params_.factor_offset()));
    out.factors.assign(at(params_.factor_offset()), at(params_.size()));
    return out;
  }

  void set_parameters(const ModelParameters& parameters) override {
    check_parameters(shape_, parameters);
    std::copy(parameters.weights.begin(), parameters.weights.end(), theta_.begin());
    std::copy(parameters.bias.begin(), parameters.bias.end(),
              theta_.begin() + params_.bias_offset());
    std::copy(parameters.factors.begin(), parameters.factors.end(),
              theta_.begin() + params_.factor_offset());
    std::fill(moment1_.begin(), moment1_.end(), 0.0f);
    std::fill(moment2_.begin(), moment2_.end(), 0.0f);
  }

 private:
  ModelView view() const {
    ModelView m;
    m.theta = theta_.data();
    m.params = params_;
    m.layout = shape_.layout;
    m.loss = shape_.loss;
    m.huber_delta = shape_.huber_delta;
    return m;
  }

  template <typename T>
  static void grow(std::vector<T>& v, std::int64_t n) {
    if (static_cast<std::int64_t>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
  }

  ModelShape shape_;
  OptimizerConfig optimizer_;
  ParameterLayout params_;
  std::vector<float> theta_, moment1_, moment2_;
  std::vector<double> gradient_;  // summed over the batch; all zero between steps

  LabeledRowsView data_;
  bool bound_ = false;
  std::vector<std::int64_t> order_;
  double loss_sum_ = 0.0;

  // Per-step scratch, grown to the largest batch.
  std::vector<float> dscore_;  // [batch row][output]
  std::vector<float> sums_;    // [batch row][output][factor] (fm)
  std::vector<double> partial_, slice_loss_, slice_weight_, norm_partial_;
  // The batch's rows gathered row-major: dense [row][feature], slot and value [row][group].
  std::vector<float> batch_dense_, batch_value_, batch_label_, batch_weight_;
  std::vector<std::int32_t> batch_slot_;
};

}  // namespace

std::unique_ptr<Model> make_cpu_model(const ModelShape& shape, const OptimizerConfig& optimizer) {
  return std::make_unique<CpuModel>(shape, optimizer);
}

}  // namespace lathe
