// The formulas of the models, written once for the CPU model (models/cpu_model.cpp) and the CUDA
// kernels (kernels/train_step.cu) (STYLE.md rule 1): the score of a row, the losses and their
// derivatives by the scores, the per-row gradient terms, the gradient's scale (mean over the batch
// weight, clipping) and the optimizer's update of one weight. Plain C++ that g++ compiles.
//
// Precision: scores, losses and per-row gradient terms are float; both backends sum the per-row
// terms over a batch in double and round the mean to float once, so the order of the sum (threads,
// warps) changes the result by far less than float rounding. Predictions are the exception where
// float loses them: a regression model's scores are summed in double and de-standardized in double,
// and a factorization machine's scores are summed in double and rounded to float once (see
// Scores).
#pragma once

#include <math.h>

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/host_device.h"
#include "kernels/prepare_formulas.h"
#include "models/model.h"

namespace lathe {

// Where the parameters lie in one contiguous float vector. Both backends keep the parameters, the
// optimizer's two state vectors and the gradient in this layout, which is ModelParameters' three
// vectors one after the other: weights [outputs][features] at 0, bias [outputs], then factors
// [outputs][features][factors] (fm only).
struct ParameterLayout {
  std::int64_t features = 0;
  std::int32_t outputs = 1;
  std::int32_t factors = 0;  // 0 for a linear model

  LATHE_HOST_DEVICE std::int64_t weight(std::int32_t o, std::int64_t k) const {
    return static_cast<std::int64_t>(o) * features + k;
  }
  LATHE_HOST_DEVICE std::int64_t bias_offset() const {
    return static_cast<std::int64_t>(outputs) * features;
  }
  LATHE_HOST_DEVICE std::int64_t bias(std::int32_t o) const { return bias_offset() + o; }
  LATHE_HOST_DEVICE std::int64_t factor_offset() const { return bias_offset() + outputs; }
  LATHE_HOST_DEVICE std::int64_t factor(std::int32_t o, std::int64_t k, std::int32_t f) const {
    return factor_offset() + (static_cast<std::int64_t>(o) * features + k) * factors + f;
  }
  LATHE_HOST_DEVICE std::int64_t size() const {
    return factor_offset() + static_cast<std::int64_t>(outputs) * features * factors;
  }
  // l1 and l2 apply to weights and factors, not to the bias.
  LATHE_HOST_DEVICE bool regularized(std::int64_t p) const {
    return p < bias_offset() || p >= factor_offset();
  }
};

// Host helpers: the flat parameter vector theta [weights | bias | factors] (the layout above) to and
// from the ModelParameters of the interface, shared by the CPU and CUDA models.
inline ModelParameters unpack_parameters(const std::vector<float>& theta, const ParameterLayout& p) {
  ModelParameters out;
  const auto at = [&theta](std::int64_t q) { return theta.begin() + q; };
  out.weights.assign(at(0), at(p.bias_offset()));
  out.bias.assign(at(p.bias_offset()), at(p.factor_offset()));
  out.factors.assign(at(p.factor_offset()), at(p.size()));
  return out;
}

inline std::vector<float> pack_parameters(const ModelParameters& parameters) {
  std::vector<float> theta;
  theta.reserve(parameters.weights.size() + parameters.bias.size() + parameters.factors.size());
  theta.insert(theta.end(), parameters.weights.begin(), parameters.weights.end());
  theta.insert(theta.end(), parameters.bias.begin(), parameters.bias.end());
  theta.insert(theta.end(), parameters.factors.begin(), parameters.factors.end());
  return theta;
}

inline ParameterLayout parameter_layout(const ModelShape& shape) {
  ParameterLayout p;
  p.features = shape.features;
  p.outputs = shape.outputs;
  p.factors = shape.kind == ModelKind::fm ? shape.factors : 0;
  return p;
}

// A model's sparse features, the expanded features [dense features, features): categorical slots,
// hashed crosses, per-category slopes (0 without sparse groups). OptimizerState::last_step's length.
inline std::int64_t sparse_feature_count(const ModelShape& shape) {
  return shape.layout.groups > 0 ? parameter_layout(shape).features - shape.layout.dense_features : 0;
}

// The sparse features whose lazy updates catch up the penalties of the steps they skipped (the
// last steps both backends keep): all of them under lazy updates with l1 or l2, else none.
inline std::int64_t caught_up_feature_count(const ModelShape& shape, const OptimizerConfig& optimizer) {
  const bool penalties = optimizer.l1 > 0.0f || optimizer.l2 > 0.0f;
  return optimizer.lazy_sparse && penalties ? sparse_feature_count(shape) : 0;
}

// ---- Scores ----
//
// The score formulas are templates on the accumulator type Acc. float (the default) is the
// training step's and a linear classifier's predicted scores: float products summed in float.
// double is every prediction that float would spoil: every product is formed in double from the
// float operands (exact) and summed in double.
//  - A regression model's predictions (predict_scores, predict_regression): a prediction that
//    cancels to near zero, target_mean + target_std * score, keeps its relative precision.
//  - A factorization machine's predicted scores (predicted_scores): its pairwise term (fm_pairwise)
//    sums products of features of very different sizes where one x_i is large (a value hundreds of
//    standard deviations out, without --clip); in double it keeps float's precision of the score.
// The ONNX graph (io/onnx_export.cpp) sums in double too, so its outputs agree with Lathe's. The
// training step (row_forward) keeps float: an fm's scores in double cost ~20% more per row (half
// the SIMD lanes in fm_accumulate), every step, and a step needs its score only to the precision of
// its gradient, which the minibatch's own noise far exceeds; a prediction is held to the graph's
// 1e-5. The float instances perform exactly the float operations they always did (a cast of a
// float to float is no operation).

// Linear score of row r for output o: bias + sum over dense features of w x + sum over sparse
// groups of w[group_offset[g] + slot] value. The dense sum runs in four interleaved lanes
// (features 4j, 4j+1, 4j+2, 4j+3), which breaks the chain of dependent additions on both devices.
template <typename Acc = float>
LATHE_HOST_DEVICE Acc linear_score(const float* theta, const ParameterLayout& p,
                                   const PreparedRowsView& rows, const ExpandedLayout& layout,
                                   std::int64_t r, std::int32_t o) {
  const float* w = theta + p.weight(o, 0);
  const float* x = rows.dense + r;
  const std::int64_t n = rows.rows, dense = layout.dense_features;
  Acc s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  std::int64_t f = 0;
  for (; f + 4 <= dense; f += 4) {
    s0 += static_cast<Acc>(w[f]) * static_cast<Acc>(x[f * n]);
    s1 += static_cast<Acc>(w[f + 1]) * static_cast<Acc>(x[(f + 1) * n]);
    s2 += static_cast<Acc>(w[f + 2]) * static_cast<Acc>(x[(f + 2) * n]);
    s3 += static_cast<Acc>(w[f + 3]) * static_cast<Acc>(x[(f + 3) * n]);
  }
  for (; f < dense; ++f) s0 += static_cast<Acc>(w[f]) * static_cast<Acc>(x[f * n]);
  Acc s = static_cast<Acc>(theta[p.bias(o)]) + ((s0 + s1) + (s2 + s3));
  for (std::int32_t g = 0; g < layout.groups; ++g) {
    const std::int64_t i = static_cast<std::int64_t>(g) * n + r;
    s += static_cast<Acc>(w[layout.group_offset[g] + rows.slot[i]]) *
         static_cast<Acc>(rows.value[i]);
  }
  return s;
}

// linear_score<Acc> for output o of rows [begin, end), evaluated column by column (host only): each
// step streams one feature column over a run of rows, which vectorizes, where linear_score walks
// one row across every column. Per row it performs exactly linear_score's operations in the same
// order (the four lanes, the bias, then the sparse groups), so the results are bit-identical for
// each Acc (deduced from `out`). Writes out[(r - begin) * out_stride].
template <typename Acc>
inline void linear_scores_by_column(const float* theta, const ParameterLayout& p,
                                    const PreparedRowsView& rows, const ExpandedLayout& layout,
                                    std::int64_t begin, std::int64_t end, std::int32_t o,
                                    Acc* out, std::int64_t out_stride) {
  constexpr std::int64_t kRun = 256;  // rows per run: the four lanes stay in L1
  Acc s0[kRun], s1[kRun], s2[kRun], s3[kRun];
  const float* w = theta + p.weight(o, 0);
  const std::int64_t n = rows.rows, dense = layout.dense_features;
  const Acc bias = static_cast<Acc>(theta[p.bias(o)]);
  for (std::int64_t b = begin; b < end; b += kRun) {
    const std::int64_t m = end - b < kRun ? end - b : kRun;
    for (std::int64_t r = 0; r < m; ++r) s0[r] = s1[r] = s2[r] = s3[r] = 0;
    std::int64_t f = 0;
    for (; f + 4 <= dense; f += 4) {
      const Acc w0 = static_cast<Acc>(w[f]), w1 = static_cast<Acc>(w[f + 1]),
                w2 = static_cast<Acc>(w[f + 2]), w3 = static_cast<Acc>(w[f + 3]);
      const float* x0 = rows.dense + f * n + b;
      const float* x1 = x0 + n;
      const float* x2 = x1 + n;
      const float* x3 = x2 + n;
      for (std::int64_t r = 0; r < m; ++r) {
        s0[r] += w0 * static_cast<Acc>(x0[r]);
        s1[r] += w1 * static_cast<Acc>(x1[r]);
        s2[r] += w2 * static_cast<Acc>(x2[r]);
        s3[r] += w3 * static_cast<Acc>(x3[r]);
      }
    }
    for (; f < dense; ++f) {
      const Acc wf = static_cast<Acc>(w[f]);
      const float* x = rows.dense + f * n + b;
      for (std::int64_t r = 0; r < m; ++r) s0[r] += wf * static_cast<Acc>(x[r]);
    }
    for (std::int64_t r = 0; r < m; ++r) s0[r] = bias + ((s0[r] + s1[r]) + (s2[r] + s3[r]));
    for (std::int32_t g = 0; g < layout.groups; ++g) {
      const float* wg = w + layout.group_offset[g];
      const std::int32_t* slot = rows.slot + static_cast<std::int64_t>(g) * n + b;
      const float* value = rows.value + static_cast<std::int64_t>(g) * n + b;
      for (std::int64_t r = 0; r < m; ++r) {
        s0[r] += static_cast<Acc>(wg[slot[r]]) * static_cast<Acc>(value[r]);
      }
    }
    for (std::int64_t r = 0; r < m; ++r) out[(b - begin + r) * out_stride] = s0[r];
  }
}

// Adds active feature i's part of fm_pairwise: pairs (in four lanes, by f % 4) += (v_if x) times
// sums[f] before it (the features before i), then sums[f] += v_if x, in Acc.
template <typename Acc>
LATHE_HOST_DEVICE void fm_accumulate(const float* vi, float x, std::int32_t k, Acc* sums, Acc& q0,
                                     Acc& q1, Acc& q2, Acc& q3) {
  const Acc xa = static_cast<Acc>(x);
  std::int32_t f = 0;
  for (; f + 4 <= k; f += 4) {
    const Acc a = static_cast<Acc>(vi[f]) * xa, b = static_cast<Acc>(vi[f + 1]) * xa,
              c = static_cast<Acc>(vi[f + 2]) * xa, d = static_cast<Acc>(vi[f + 3]) * xa;
    q0 += a * sums[f];
    q1 += b * sums[f + 1];
    q2 += c * sums[f + 2];
    q3 += d * sums[f + 3];
    sums[f] += a;
    sums[f + 1] += b;
    sums[f + 2] += c;
    sums[f + 3] += d;
  }
  for (; f < k; ++f) {
    const Acc a = static_cast<Acc>(vi[f]) * xa;
    q0 += a * sums[f];
    sums[f] += a;
  }
}

// The factorization machine's pairwise term of row r for output o,
//   sum_{i<j} <v_i, v_j> x_i x_j = sum_f sum_j (v_jf x_j) (sum_{i<j} v_if x_i),
// over the active features (dense, then one slot per sparse group) in O(factors x active), in Acc
// (deduced from `sums`). Writes sums[f] = sum_i v_if x_i (p.factors entries), which the factor
// gradients need. The running sums take the place of the textbook's
// 0.5 sum_f [(sum_i v_if x_i)^2 - sum_i (v_if x_i)^2] at the same cost, without its cancellation:
// where one x_i is huge (1e20, a corrupt value without --clip) the squares swamp the pairs even in
// double (they cancelled to 0 or garbage: a probability of 0 where the pairs say 1), while a
// running sum forms each product of two features as it is.
template <typename Acc>
LATHE_HOST_DEVICE Acc fm_pairwise(const float* theta, const ParameterLayout& p,
                                  const PreparedRowsView& rows, const ExpandedLayout& layout,
                                  std::int64_t r, std::int32_t o, Acc* sums) {
  const std::int32_t k = p.factors;
  const float* v = theta + p.factor(o, 0, 0);
  for (std::int32_t f = 0; f < k; ++f) sums[f] = 0;
  Acc q0 = 0, q1 = 0, q2 = 0, q3 = 0;
  for (std::int64_t i = 0; i < layout.dense_features; ++i) {
    fm_accumulate(v + i * k, rows.dense[i * rows.rows + r], k, sums, q0, q1, q2, q3);
  }
  for (std::int32_t g = 0; g < layout.groups; ++g) {
    const std::int64_t at = static_cast<std::int64_t>(g) * rows.rows + r;
    fm_accumulate(v + (layout.group_offset[g] + rows.slot[at]) * k, rows.value[at], k, sums, q0, q1,
                  q2, q3);
  }
  return (q0 + q1) + (q2 + q3);
}

// What the per-row formulas read of a model: its parameters (host or device memory), their layout,
// the expanded layout of the rows and the loss.
struct ModelView {
  const float* theta = nullptr;
  ParameterLayout params;
  ExpandedLayout layout;
  LossKind loss = LossKind::squared;
  float huber_delta = 1.0f;
};

// The raw scores of row r summed in Acc (by default Out, the type of `scores`), each rounded to
// Out once: scores[o] for each output; for an fm model also sums[o * factors + f] (fm_pairwise's
// sums; `sums` is unused for a linear model).
template <typename Out, typename Acc = Out>
LATHE_HOST_DEVICE void row_scores(const ModelView& m, const PreparedRowsView& rows, std::int64_t r,
                                  Out* scores, std::type_identity_t<Acc>* sums) {
  const ParameterLayout& p = m.params;
  for (std::int32_t o = 0; o < p.outputs; ++o) {
    Acc s = linear_score<Acc>(m.theta, p, rows, m.layout, r, o);
    if (p.factors > 0) s += fm_pairwise(m.theta, p, rows, m.layout, r, o, sums + o * p.factors);
    scores[o] = static_cast<Out>(s);
  }
}

// A classification model's predicted raw scores of row r (Model::predict_scores, both backends):
// an fm's summed in double and rounded to float once (its pairwise term cancels; see Scores), a
// linear model's in float, as training sums them: a linear score has no such cancellation (its
// float sum stays within the ONNX bound on the same far-out rows), and in double the CPU's
// column-by-column loop (linear_scores_by_column, which must stay this formula bit for bit) ran
// 1.2-1.7x slower. `sums`: outputs x factors doubles of scratch (fm; unused for a linear model).
LATHE_HOST_DEVICE void predicted_scores(const ModelView& m, const PreparedRowsView& rows,
                                        std::int64_t r, float* scores, double* sums) {
  if (m.params.factors > 0) {
    row_scores<float, double>(m, rows, r, scores, sums);
  } else {
    row_scores<float, float>(m, rows, r, scores, nullptr);
  }
}

// A regression model's prediction from its score (summed in double): inverse(offset + scale *
// score) in double, rounded to float once. Model::predict_regression's map is target_mean +
// target_std * score (the target's standardization undone, as scores_to_predictions does from a
// float score) then the target transform's inverse (exp, expm1), which takes the prediction back
// to the label's units; predict_scores' is the identity (0, 1, none). An exp beyond double's (or
// float's) range gives +inf, which `lathe score` writes as inf (and over which `lathe eval`'s
// metrics are null).
struct RegressionMap {
  double offset = 0.0;
  double scale = 1.0;
  TargetTransform inverse = TargetTransform::none;
  LATHE_HOST_DEVICE float operator()(double score) const {
    const double v = offset + scale * score;
    switch (inverse) {
      case TargetTransform::log:
        return static_cast<float>(exp(v));
      case TargetTransform::log1p:
        return static_cast<float>(expm1(v));
      default:
        return static_cast<float>(v);
    }
  }
};

// A regression model's (one output) prediction of row r: row_scores<double>, then the map.
// `sums`: p.factors doubles of scratch (fm; unused for a linear model).
LATHE_HOST_DEVICE float regression_prediction(const ModelView& m, const PreparedRowsView& rows,
                                              std::int64_t r, const RegressionMap& map,
                                              double* sums) {
  double score;
  row_scores(m, rows, r, &score, sums);
  return map(score);
}

// ---- Losses and their derivatives by the score ----

LATHE_HOST_DEVICE float squared_loss(float s, float y) {
  const float d = s - y;
  return 0.5f * d * d;
}
LATHE_HOST_DEVICE float squared_dloss(float s, float y) { return s - y; }

// Huber's loss divided by delta (model.h): the gradient is bounded by 1 whatever delta, so --l2
// weighs the same against it for a small delta as for a large one.
LATHE_HOST_DEVICE float huber_loss(float s, float y, float delta) {
  const float d = s - y;
  const float a = fabsf(d);
  return a <= delta ? 0.5f * d * d / delta : a - 0.5f * delta;
}
LATHE_HOST_DEVICE float huber_dloss(float s, float y, float delta) {
  const float d = s - y;
  return d > delta ? 1.0f : (d < -delta ? -1.0f : d / delta);
}

// log(1 + e) for e in [0, 1] to a few ulps with logf alone (Goldberg: the rounding of u = 1 + e
// cancels in log(u) e / (u - 1)); cheaper than log1pf on the host.
LATHE_HOST_DEVICE float log1p_unit(float e) {
  const float u = 1.0f + e;
  return u == 1.0f ? e : logf(u) * (e / (u - 1.0f));
}

// The logistic loss log(1 + exp(s)) - y s = max(s, 0) - y s + log(1 + exp(-|s|)), without
// overflow, and its derivative sigmoid(s) - y into dloss; one exp for both.
LATHE_HOST_DEVICE float logistic_loss_and_dloss(float s, float y, float& dloss) {
  const float e = expf(-fabsf(s));
  const float p = s >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
  dloss = p - y;
  return (s > 0.0f ? s : 0.0f) - y * s + log1p_unit(e);
}
LATHE_HOST_DEVICE float logistic_loss(float s, float y) {
  float d;
  return logistic_loss_and_dloss(s, y, d);
}
LATHE_HOST_DEVICE float logistic_dloss(float s, float y) {
  float d;
  logistic_loss_and_dloss(s, y, d);
  return d;
}

// Softmax cross-entropy of `outputs` scores and class `label`: returns
// log(sum_o exp(s_o)) - s_label (log-sum-exp around the largest score) and replaces s[o] by the
// derivative softmax(s)_o - [o == label].
LATHE_HOST_DEVICE float softmax_loss_in_place(float* s, std::int32_t outputs, std::int32_t label) {
  float m = s[0];
  for (std::int32_t o = 1; o < outputs; ++o) m = s[o] > m ? s[o] : m;
  float sum = 0.0f;
  for (std::int32_t o = 0; o < outputs; ++o) sum += expf(s[o] - m);
  const float loss = m + logf(sum) - s[label];
  const float inv = 1.0f / sum;
  for (std::int32_t o = 0; o < outputs; ++o) {
    s[o] = expf(s[o] - m) * inv - (o == label ? 1.0f : 0.0f);
  }
  return loss;
}

// The loss of one row with label y; replaces its scores s[0 .. outputs) by the loss's derivatives.
LATHE_HOST_DEVICE float row_loss_in_place(LossKind kind, float huber_delta, float y, float* s,
                                          std::int32_t outputs) {
  const float score = s[0];
  switch (kind) {
    case LossKind::squared:
      s[0] = squared_dloss(score, y);
      return squared_loss(score, y);
    case LossKind::huber:
      s[0] = huber_dloss(score, y, huber_delta);
      return huber_loss(score, y, huber_delta);
    case LossKind::logistic:
      return logistic_loss_and_dloss(score, y, s[0]);
    default:
      return softmax_loss_in_place(s, outputs, static_cast<std::int32_t>(y));
  }
}

// The training rows as the per-row formulas read them (host or device memory).
struct LabeledRowsView {
  PreparedRowsView rows;
  const float* labels = nullptr;
  const float* weights = nullptr;  // nullptr = all 1
};

// The forward pass of training row r: its scores, loss and d loss / d score, times the row's sample
// weight. Leaves the weighted derivatives in dscore[0 .. outputs) (and an fm's sums in sums, as
// row_scores); returns the weighted loss and sets `weight` to the row's weight.
LATHE_HOST_DEVICE double row_forward(const ModelView& m, const LabeledRowsView& data,
                                     std::int64_t r, float* dscore, float* sums, double& weight) {
  row_scores(m, data.rows, r, dscore, sums);
  const float w = data.weights ? data.weights[r] : 1.0f;
  const float loss =
      row_loss_in_place(m.loss, m.huber_delta, data.labels[r], dscore, m.params.outputs);
  for (std::int32_t o = 0; o < m.params.outputs; ++o) dscore[o] *= w;
  weight = static_cast<double>(w);
  return static_cast<double>(w) * static_cast<double>(loss);
}

// ---- Per-row gradient terms (dscore = the row's weighted d loss / d score of the output) ----

// d score / d v_if = x_i (sum_f - v_if x_i), times dscore.
LATHE_HOST_DEVICE float fm_factor_gradient(float dscore, float x, float sum_f, float v) {
  return dscore * x * (sum_f - v * x);
}

// The dense part of the gradient (what does not depend on sparse slots) of one output, as entries
// e = 0 (the bias), 1 + i (the weight of dense feature i), 1 + D + i * factors + f (factor f of
// dense feature i, fm only). Both backends reduce these entries over the batch's rows.
LATHE_HOST_DEVICE std::int64_t dense_entries_per_output(const ParameterLayout& p,
                                                        std::int64_t dense_features) {
  return 1 + dense_features + dense_features * p.factors;
}

LATHE_HOST_DEVICE std::int64_t dense_entry_parameter(const ParameterLayout& p,
                                                     std::int64_t dense_features, std::int32_t o,
                                                     std::int64_t e) {
  if (e == 0) return p.bias(o);
  if (e <= dense_features) return p.weight(o, e - 1);
  const std::int64_t j = e - 1 - dense_features;
  return p.factor(o, j / p.factors, static_cast<std::int32_t>(j % p.factors));
}

// Row r's term of dense entry e of output o: dscore (bias), dscore x_i (weight), or
// fm_factor_gradient (factor); `sums` are row r's fm sums of output o.
LATHE_HOST_DEVICE float dense_entry_gradient(const float* theta, const ParameterLayout& p,
                                             const PreparedRowsView& rows,
                                             std::int64_t dense_features, std::int64_t r,
                                             std::int32_t o, std::int64_t e, float dscore,
                                             const float* sums) {
  if (e == 0) return dscore;
  if (e <= dense_features) return dscore * rows.dense[(e - 1) * rows.rows + r];
  const std::int64_t j = e - 1 - dense_features;
  const std::int64_t i = j / p.factors;
  const std::int32_t f = static_cast<std::int32_t>(j % p.factors);
  return fm_factor_gradient(dscore, rows.dense[i * rows.rows + r], sums[f],
                            theta[p.factor(o, i, f)]);
}

// ---- From the summed gradient to the update ----

// The factor that turns the batch's summed gradient into the one the optimizer applies: 1 /
// batch_weight (step_weight: 0 for an empty batch), times clip_norm / norm when clip_norm > 0 and
// the mean gradient's L2 norm exceeds it. sum_of_squares: of the summed gradient's entries.
LATHE_HOST_DEVICE double gradient_scale(double batch_weight, double sum_of_squares,
                                        float clip_norm) {
  const double mean = batch_weight > 0.0 ? 1.0 / batch_weight : 0.0;
  if (!(clip_norm > 0.0f)) return mean;
  const double norm = sqrt(sum_of_squares) * mean;
  return norm > static_cast<double>(clip_norm) ? mean * (static_cast<double>(clip_norm) / norm)
                                               : mean;
}

// The optimizer's settings for one step: the configuration, the learning rate and Adam's bias
// corrections 1 / (1 - beta^step), computed once per step on the host (in double).
struct UpdateRule {
  OptimizerConfig config;
  float learning_rate = 0.0f;
  float bias_correction1 = 1.0f;
  float bias_correction2 = 1.0f;
  double mean_weight = 1.0;  // StepSettings::mean_weight
  // StepSettings::step modulo 2^32: what a lazy update records as a sparse feature's last step,
  // and reads the gap since it from (penalty_steps; wraps harmlessly, gaps being under 2^32).
  std::uint32_t step = 1;
};

// What a step of `rows` rows divides its summed weighted gradient by: rows times the training
// set's mean sample weight, so that a step follows the gradient of the weighted objective
// sum_i w_i loss_i / sum_i w_i in expectation whatever the batch. Dividing by the batch's own
// weight sum instead cancelled the weights in small batches (at one row a step, entirely): a
// class weighted 5x moved the weights no more than the others. Without weights, the rows.
LATHE_HOST_DEVICE double step_weight(std::int64_t rows, const UpdateRule& u) {
  return static_cast<double>(rows) * u.mean_weight;
}

inline UpdateRule update_rule(const OptimizerConfig& config, const StepSettings& settings) {
  UpdateRule u;
  u.config = config;
  u.learning_rate = settings.learning_rate;
  u.mean_weight = settings.mean_weight;
  u.step = static_cast<std::uint32_t>(settings.step);
  const double t = static_cast<double>(settings.step);
  u.bias_correction1 =
      static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(config.beta1), t)));
  u.bias_correction2 =
      static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(config.beta2), t)));
  return u;
}

// One optimizer step of weight w with mean gradient g and its state m (first moment or momentum)
// and s (second moment or accumulated squares); the formulas are OptimizerConfig's (model.h).
// penalties: how many steps' worth of l2 and l1 this step applies (penalty_steps; 1 but for a
// lazily updated feature's first step after steps it skipped).
LATHE_HOST_DEVICE void update_weight(const UpdateRule& u, bool regularized, float g, float& w,
                                     float& m, float& s, float penalties = 1.0f) {
  const OptimizerConfig& c = u.config;
  const float lr = u.learning_rate;
  const float l2 = regularized ? c.l2 * penalties : 0.0f;
  if (c.kind != OptimizerKind::adamw) g += l2 * w;
  // The step's length per unit of gradient for this weight: lr, or lr over the adaptive
  // denominator of adagrad and adam. l1's soft threshold scales with it (a proximal step in the
  // optimizer's own metric), so that a weight stays at zero exactly when its gradient there is
  // below l1, as for loss + l1 |w|. A threshold of lr l1 after an adaptive step (about lr long
  // whatever the gradient) left nearly every weight nonzero.
  float step_per_gradient = lr;
  switch (c.kind) {
    case OptimizerKind::sgd:
      w -= lr * g;
      break;
    case OptimizerKind::momentum:
      m = c.momentum * m + g;
      w -= lr * m;
      break;
    case OptimizerKind::nesterov:
      m = c.momentum * m + g;
      w -= lr * (g + c.momentum * m);
      break;
    case OptimizerKind::adagrad:
      s += g * g;
      {
        const float denominator = sqrtf(s) + c.epsilon;
        w -= lr * g / denominator;
        step_per_gradient = lr / denominator;
      }
      break;
    default:  // adam, adamw
      if (c.kind == OptimizerKind::adamw) w -= lr * l2 * w;
      m = c.beta1 * m + (1.0f - c.beta1) * g;
      s = c.beta2 * s + (1.0f - c.beta2) * (g * g);
      {
        const float denominator = sqrtf(s * u.bias_correction2) + c.epsilon;
        w -= lr * (m * u.bias_correction1) / denominator;
        step_per_gradient = lr / denominator;
      }
      break;
  }
  if (regularized && c.l1 > 0.0f) {
    const float t = step_per_gradient * c.l1 * penalties;
    w = w > t ? w - t : (w < -t ? w + t : 0.0f);
  }
}

// ---- Lazy updates of the sparse features ----
//
// A step updates the bias and every dense feature's parameters, but of the sparse features
// (expanded features [dense, features): categorical slots, hashed crosses, per-category slopes)
// only those whose slot the batch holds ("lazy" updates, as Vowpal Wabbit's and PyTorch's
// SparseAdam's): an absent slot's weights, factors and optimizer state are left as they are, with
// no moment decay. A dense update of a table of 2^20 hashed crosses cost 1M parameter updates a
// step whatever the batch (20 s an epoch of 800k rows at batch 256); a lazy one costs the batch's
// slots. Both backends update the same parameters with update_weight, so they agree as before.
//
// The penalties are caught up: each sparse feature records the step that last updated it
// (UpdateRule::step), and the l2 and l1 of the steps it skipped are applied when a step holds it
// again (plain SGD: catch_up_feature, before the step reads it; the other optimizers:
// penalty_steps, within the step). Without that a slot in a quarter of the batches took a quarter
// of the l2 the objective asks for, and a rare category's weights overfit: on 50 classes over
// categorical columns of up to 1000 labels, early stopping kept epoch 3 and the test log-loss was
// 2.444, against 2.412 with every parameter updated every step (bench/RESULTS.md, session 24).

// How many steps' penalties a sparse feature's update applies when the feature last took a step
// `gap` steps ago (1: the step before). Plain SGD with l2 would have shrunk the weight by
// (1 - lr l2) in each step, (1 - lr l2)^gap in all; this is the count c with 1 - lr l2 c =
// (1 - lr l2)^gap, so that one step with c times the l2 shrinks it as much (about gap while
// lr l2 gap is small, never past lr l2 c = 1: a long-absent slot is pulled to zero at most, never
// across it). The optimizers other than plain SGD take it (plain SGD: skipped_penalties). Computed
// in double, rounded once.
LATHE_HOST_DEVICE float penalty_steps(const UpdateRule& u, std::uint32_t gap) {
  if (gap <= 1) return 1.0f;
  const double shrink = static_cast<double>(u.learning_rate) * static_cast<double>(u.config.l2);
  if (!(shrink > 0.0)) return static_cast<float>(gap);  // l1 alone: its thresholds add up
  if (shrink >= 1.0) return 1.0f;  // a step that alone overshoots: no more of them
  const double g = static_cast<double>(gap);
  // The usual case (lr l2 1e-7 by default: gaps under 10^4) without the two transcendental calls,
  // which a step of a high-cardinality table would make for nearly every slot it touches: the
  // series' next term is under 2e-7 of the count, below a float's rounding.
  if (shrink * g < 1e-3) return static_cast<float>(g * (1.0 - 0.5 * shrink * (g - 1.0)));
  return static_cast<float>(-expm1(g * log1p(-shrink)) / shrink);
}

// Under plain SGD the steps a sparse feature skipped are caught up as dense updates take them:
// each, with no gradient of the loss, shrinks the weight by lr l2 w and then soft-thresholds it by
// lr l1 (update_weight), and k of them at one learning rate make
// |w| a^k - lr l1 (1 + a + ... + a^(k-1)) with a = 1 - lr l2, the sign kept, never past zero (the
// thresholds take a weight to zero and keep it there). A count of steps' penalties taken within the
// next step (penalty_steps) gave nearly the same l2, but applied l1's thresholds after that step's
// move, so that a weight they would have taken to zero lost the move as well: which rare slots
// ended at zero differed from dense updates for about a fifth of them (bench/RESULTS.md, session
// 25). The optimizers with state (momentum, moments, accumulated squares) keep penalty_steps: a
// skipped step of theirs moves a weight by state that lazy updates leave as it is.
struct SkippedPenalties {
  double shrink = 1.0;     // a^k: what the weight's magnitude is multiplied by
  double threshold = 0.0;  // lr l1 (1 + a + ... + a^(k-1)): then subtracted from it
};

// The penalties of `skipped` steps at u's learning rate (0: none). Computed in double.
LATHE_HOST_DEVICE SkippedPenalties skipped_penalties(const UpdateRule& u, std::uint32_t skipped) {
  SkippedPenalties s;
  if (skipped == 0) return s;
  const double k = static_cast<double>(skipped);
  const double lr = static_cast<double>(u.learning_rate);
  const double x = lr * static_cast<double>(u.config.l2);  // one step's shrink, 1 - a
  if (x >= 1.0) {  // one step alone takes the weight to zero (or across it): zero, as penalty_steps
    s.shrink = 0.0;
    return s;
  }
  double sum = k;  // 1 + a + ... + a^(k-1); k without l2
  if (x > 0.0) {
    if (x * k < 1e-3) {
      // The usual case without the two transcendental calls (see penalty_steps), nor a division
      // (a lazy step of a high-cardinality table comes here for nearly every slot it holds):
      // sum = k - C(k,2) x + C(k,3) x^2, whose next term is under 5e-11 of it, and a^k = 1 - x sum.
      const double k2 = 0.5 * k * (k - 1.0), k3 = k2 * (k - 2.0) * (1.0 / 3.0);
      sum = k - x * (k2 - x * k3);
      s.shrink = 1.0 - x * sum;
    } else {
      const double change = expm1(k * log1p(-x));  // a^k - 1
      s.shrink = 1.0 + change;
      sum = -change / x;
    }
  }
  s.threshold = lr * static_cast<double>(u.config.l1) * sum;
  return s;
}

// Weight w after penalties p, rounded to float once. Without a branch on the sign, which a table's
// weights take at random (a mispredicted branch cost more than the arithmetic).
LATHE_HOST_DEVICE float after_penalties(const SkippedPenalties& p, float w) {
  const double magnitude = fmax(fabs(static_cast<double>(w)) * p.shrink - p.threshold, 0.0);
  return static_cast<float>(copysign(magnitude, static_cast<double>(w)));
}

// The later of two recorded steps (UpdateRule::step, modulo 2^32, less than 2^31 apart): local
// SGD's merge of its workers' last steps of a feature.
LATHE_HOST_DEVICE std::uint32_t later_step(std::uint32_t a, std::uint32_t b) {
  return static_cast<std::int32_t>(a - b) > 0 ? a : b;
}

// Where a backend keeps parameter q's optimizer moments: first[q * stride] and second[q * stride]
// (the GPU: two arrays, stride 1; the CPU: side by side, second = first + 1, stride 2).
struct MomentsView {
  float* first;
  float* second;
  std::int64_t stride;
};

// A feature's gradient entries: by parameter index (the GPU's full gradient array), or in the
// order update_feature visits them (the CPU's list of the batch's features).
struct GradientByParameter {
  double* gradient;
  LATHE_HOST_DEVICE double& operator()(std::int64_t q, std::int64_t) const { return gradient[q]; }
};
struct GradientInVisitOrder {
  double* gradient;
  LATHE_HOST_DEVICE double& operator()(std::int64_t, std::int64_t i) const { return gradient[i]; }
};

// The optimizer step of every parameter of expanded feature `feature`, each output's weight then
// its factors (the visit order), each with its gradient entry times `scale`, which it then clears.
// last_step: the step that last updated the feature (UpdateRule::step), which this one catches up
// from (penalty_steps; plain SGD: catch_up_feature did before the step) and replaces; null: no
// catch-up (the feature takes every step).
template <typename Gradient>
LATHE_HOST_DEVICE void update_feature(const UpdateRule& u, const ParameterLayout& p,
                                      std::int64_t feature, double scale, float* theta,
                                      const MomentsView& m, const Gradient& gradient,
                                      std::uint32_t* last_step) {
  float penalties = 1.0f;
  if (last_step) {
    // Plain SGD caught the feature up to the step before as the step read it (catch_up_feature).
    if (u.config.kind != OptimizerKind::sgd) penalties = penalty_steps(u, u.step - *last_step);
    *last_step = u.step;
  }
  std::int64_t i = 0;
  const auto update = [&](std::int64_t q) {
    double& g = gradient(q, i++);
    update_weight(u, true, static_cast<float>(g * scale), theta[q], m.first[q * m.stride],
                  m.second[q * m.stride], penalties);
    g = 0.0;
  };
  for (std::int32_t o = 0; o < p.outputs; ++o) {
    update(p.weight(o, feature));
    for (std::int32_t f = 0; f < p.factors; ++f) update(p.factor(o, feature, f));
  }
}

// Under plain SGD, the penalties of the steps after `last_step` (a sparse feature's last update) up
// to and including u.step (skipped_penalties at u's learning rate), applied to every parameter of
// expanded feature `feature`; the caller records u.step as its last step. Lazy updates apply them
// (a) before a step's forward pass reads the feature, up to the step before (the step's own follow
// in its update), so that the batch's scores are those of dense updates, and (b) to every sparse
// feature at an epoch's end (Model::catch_up_penalties), so that the weights validated,
// checkpointed and saved carry them too, instead of waiting for a next update that may never come:
// a slot absent from an epoch's last k steps had kept (1 - lr l2)^-k times its weight, up to 1.064
// at lr 0.1, l2 0.01 and 63 steps an epoch (bench/RESULTS.md, session 25).
LATHE_HOST_DEVICE void catch_up_feature(const UpdateRule& u, const ParameterLayout& p,
                                        std::int64_t feature, float* theta,
                                        std::uint32_t last_step) {
  const std::uint32_t gap = u.step - last_step;
  if (gap == 0) return;
  const SkippedPenalties skipped = skipped_penalties(u, gap);
  for (std::int32_t o = 0; o < p.outputs; ++o) {
    float& w = theta[p.weight(o, feature)];
    w = after_penalties(skipped, w);
    for (std::int32_t f = 0; f < p.factors; ++f) {
      float& v = theta[p.factor(o, feature, f)];
      v = after_penalties(skipped, v);
    }
  }
}

// Whether lazy updates catch up penalties with catch_up_feature (plain SGD, lazy updates of sparse
// features, l1 or l2), which keeps the last steps (OptimizerState::last_step) for them.
inline bool catches_up_before_reading(const ModelShape& shape, const OptimizerConfig& optimizer) {
  return optimizer.kind == OptimizerKind::sgd && caught_up_feature_count(shape, optimizer) > 0;
}

// ---- Local SGD (LocalSgdSettings) ----

// The batches of worker w of `workers`: the epoch's `batches` batches (of `batch` rows, the last
// one possibly shorter, as in exact mode) are cut into contiguous shards,
// [batches w / workers, batches (w + 1) / workers), so every worker runs whole batches.
LATHE_HOST_DEVICE void local_sgd_shard(std::int64_t batches, std::int64_t workers, std::int64_t w,
                                       std::int64_t& begin, std::int64_t& end) {
  begin = batches * w / workers;
  end = batches * (w + 1) / workers;
}

// The average of parameter q over the workers' copies (copies[w * stride + q]): summed in double
// in worker order, divided once, rounded to float once. One worker gives its own value back.
LATHE_HOST_DEVICE float worker_average(const float* copies, std::int64_t stride,
                                       std::int64_t workers, std::int64_t q) {
  double s = 0.0;
  for (std::int64_t w = 0; w < workers; ++w) s += static_cast<double>(copies[w * stride + q]);
  return static_cast<float>(s / static_cast<double>(workers));
}

}  // namespace lathe
