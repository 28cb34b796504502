#include "io/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <unordered_set>

#include "io/temporary_file.h"
#include "kernels/prepare_formulas.h"
#include "runtime/error.h"

namespace lathe {

namespace {

constexpr std::int64_t kIrVersion = 8;
constexpr std::int64_t kOnnxOpset = 17;
constexpr std::int64_t kOnnxMlOpset = 2;  // LabelEncoder-2: string <-> int64 maps
constexpr const char* kMlDomain = "ai.onnx.ml";
constexpr const char* kInternalPrefix = "lathe/";

using onnx::TensorProto_DataType;
constexpr auto kFloat = onnx::TensorProto_DataType_FLOAT;
constexpr auto kDouble = onnx::TensorProto_DataType_DOUBLE;
constexpr auto kInt64 = onnx::TensorProto_DataType_INT64;
constexpr auto kString = onnx::TensorProto_DataType_STRING;

// Builds the nodes and initializers of one GraphProto. Every intermediate value gets a fresh name
// under kInternalPrefix, so it never collides with an input column's name.
class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto* graph) : graph_(graph) {}

  std::string fresh(const std::string& hint) {
    return kInternalPrefix + hint + "_" + std::to_string(next_++);
  }

  // A node with one output; `output` "" gives it a fresh name. Returns the node for attributes.
  onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::string& hint, const std::string& output = "",
                        const std::string& domain = "") {
    onnx::NodeProto* n = graph_->add_node();
    n->set_op_type(op);
    n->set_name(kInternalPrefix + op + "_" + std::to_string(next_++));
    if (!domain.empty()) n->set_domain(domain);
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(output.empty() ? fresh(hint) : output);
    return n;
  }
  // The common case: the node's output name.
  std::string apply(const std::string& op, const std::vector<std::string>& inputs,
                    const std::string& hint) {
    return node(op, inputs, hint)->output(0);
  }

  std::string doubles(const std::string& hint, const std::vector<std::int64_t>& dims,
                      const std::vector<double>& v) {
    return raw(hint, kDouble, dims, v.data(), v.size() * sizeof(double));
  }
  std::string floats(const std::string& hint, const std::vector<std::int64_t>& dims,
                     const std::vector<float>& v) {
    return raw(hint, kFloat, dims, v.data(), v.size() * sizeof(float));
  }
  std::string int64s(const std::string& hint, const std::vector<std::int64_t>& dims,
                     const std::vector<std::int64_t>& v) {
    return raw(hint, kInt64, dims, v.data(), v.size() * sizeof(std::int64_t));
  }
  std::string scalar_double(const std::string& hint, double v) { return doubles(hint, {}, {v}); }
  std::string scalar_int64(const std::string& hint, std::int64_t v) {
    return int64s(hint, {}, {v});
  }
  std::string axes(const std::vector<std::int64_t>& a) {
    return int64s("axes", {static_cast<std::int64_t>(a.size())}, a);
  }

  std::int64_t nodes() const { return graph_->node_size(); }

 private:
  // raw_data is little-endian; so is every host Lathe builds for (x86-64, aarch64).
  std::string raw(const std::string& hint, TensorProto_DataType type,
                  const std::vector<std::int64_t>& dims, const void* data, std::size_t bytes) {
    onnx::TensorProto* t = graph_->add_initializer();
    t->set_name(fresh(hint));
    t->set_data_type(type);
    for (auto d : dims) t->add_dims(d);
    t->set_raw_data(std::string(static_cast<const char*>(data), bytes));
    return t->name();
  }

  onnx::GraphProto* graph_;
  std::int64_t next_ = 0;
};

void set_int(onnx::NodeProto* n, const std::string& name, std::int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto_AttributeType_INT);
  a->set_i(v);
}

void set_string(onnx::NodeProto* n, const std::string& name, const std::string& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto_AttributeType_STRING);
  a->set_s(v);
}

void set_ints(onnx::NodeProto* n, const std::string& name, const std::vector<std::int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto_AttributeType_INTS);
  for (auto x : v) a->add_ints(x);
}

void set_strings(onnx::NodeProto* n, const std::string& name, const std::vector<std::string>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto_AttributeType_STRINGS);
  for (const auto& x : v) a->add_strings(x);
}

// A tensor type [dims] for a graph input or output; a dim of -1 is the symbolic row count "N".
void add_value_info(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list,
                    const std::string& name, TensorProto_DataType type,
                    const std::vector<std::int64_t>& dims, const std::string& doc) {
  onnx::ValueInfoProto* v = list->Add();
  v->set_name(name);
  v->set_doc_string(doc);
  auto* tensor = v->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(type);
  auto* shape = tensor->mutable_shape();
  for (auto d : dims) {
    auto* dim = shape->add_dim();
    if (d < 0) {
      dim->set_dim_param("N");
    } else {
      dim->set_dim_value(d);
    }
  }
}

// Adds the parts in order: ((a + b) + c) ...
std::string sum_of(GraphBuilder& g, const std::vector<std::string>& parts,
                   const std::string& hint) {
  std::string total = parts.front();
  for (std::size_t i = 1; i < parts.size(); ++i) total = g.apply("Add", {total, parts[i]}, hint);
  return total;
}

std::string concat(GraphBuilder& g, const std::vector<std::string>& parts, std::int64_t axis,
                   const std::string& hint) {
  auto* n = g.node("Concat", parts, hint);
  set_int(n, "axis", axis);
  return n->output(0);
}

std::string cast(GraphBuilder& g, const std::string& x, TensorProto_DataType to,
                 const std::string& hint) {
  auto* n = g.node("Cast", {x}, hint);
  set_int(n, "to", to);
  return n->output(0);
}

std::string gather(GraphBuilder& g, const std::string& data, const std::string& indices,
                   std::int64_t axis, const std::string& hint) {
  auto* n = g.node("Gather", {data, indices}, hint);
  set_int(n, "axis", axis);
  return n->output(0);
}

std::string reduce_sum(GraphBuilder& g, const std::string& x, std::int64_t axis,
                       const std::string& hint) {
  auto* n = g.node("ReduceSum", {x, g.axes({axis})}, hint);
  set_int(n, "keepdims", 0);
  return n->output(0);
}

// What the graph needs to know of the model, checked before anything is built.
void check_exportable(const ModelFile& model, const std::string& source) {
  const FittedPreparation& prep = model.preparation;
  for (const auto& c : prep.categorical) {
    if (c.hashed) {
      throw InputError(
          source + ": cannot export to ONNX: categorical column '" + c.name + "' is hashed into " +
          std::to_string(c.buckets) +
          " buckets (it had more labels than --max-categories at training time); the label "
          "hash (FNV-1a over the label's bytes) is not expressible in ONNX opset " +
          std::to_string(kOnnxOpset) + " / ai.onnx.ml " + std::to_string(kOnnxMlOpset) +
          ". Retrain with a larger --max-categories (with --min-category-count N to leave its rare labels "
          "out of the vocabulary) to export this model");
    }
    std::set<std::string> seen;
    for (const auto& label : c.vocabulary) {
      if (label.empty()) {
        throw InputError(
            source + ": cannot export to ONNX: categorical column '" + c.name +
            "' has the empty label in its vocabulary, which the exported graph reserves for a "
            "missing value");
      }
      if (!seen.insert(label).second) {
        throw InputError(source + ": cannot export to ONNX: categorical column '" + c.name +
                         "' has the label '" + label + "' twice in its vocabulary");
      }
    }
  }
  for (const auto& g : prep.sparse) {
    if (g.kind != SparseKind::categorical_cross) continue;
    const std::int64_t entries = static_cast<std::int64_t>(cross_side_hashes(prep, g, false).size()) *
                                 static_cast<std::int64_t>(cross_side_hashes(prep, g, true).size());
    if (entries > kMaxCrossTableEntries) {
      throw InputError(source + ": cannot export to ONNX: the categorical cross '" + g.name +
                       "' needs a table of " + std::to_string(entries) +
                       " slot pairs, above the limit of " + std::to_string(kMaxCrossTableEntries));
    }
  }
  if (prep.dense_features() == 0 && prep.sparse.empty()) {
    throw InputError(source + ": cannot export to ONNX: the model has no features");
  }
  const std::int64_t features = prep.expanded_features();
  const auto outputs = static_cast<std::size_t>(model.outputs);
  if (model.parameters.weights.size() != outputs * static_cast<std::size_t>(features) ||
      model.parameters.bias.size() != outputs ||
      (model.kind == ModelKind::fm &&
       model.parameters.factors.size() !=
           outputs * static_cast<std::size_t>(features) * model.factors)) {
    throw InputError(source + ": the model's parameters do not match its preparation (" +
                     std::to_string(features) + " expanded features)");
  }
  const std::size_t classes = model.task == Task::regression ? 0 : model.classes.size();
  if ((model.task == Task::binary && (classes != 2 || model.outputs != 1)) ||
      (model.task == Task::multiclass && classes != outputs) ||
      (model.task == Task::regression && outputs != 1)) {
    throw InputError(source + ": the model's classes do not match its outputs");
  }
}

// The graph inputs: one per column the preparation reads, in the training file's column order.
struct InputColumns {
  std::vector<std::string> numeric;      // input name of numeric encoding i
  std::vector<std::string> categorical;  // input name of categorical encoding j
  std::vector<std::string> order;        // all of them, graph order
};

InputColumns declare_inputs(const ModelFile& model, onnx::GraphProto* graph,
                            const std::string& source, const std::set<std::string>& output_names) {
  const FittedPreparation& prep = model.preparation;
  InputColumns in;
  for (const auto& n : prep.numeric) in.numeric.push_back(n.name);
  for (const auto& c : prep.categorical) in.categorical.push_back(c.name);
  std::set<std::string> wanted(in.numeric.begin(), in.numeric.end());
  wanted.insert(in.categorical.begin(), in.categorical.end());
  std::set<std::string> placed;
  for (const auto& column : model.input_schema) {
    if (wanted.count(column.name) && placed.insert(column.name).second)
      in.order.push_back(column.name);
  }
  for (const auto& name : in.numeric) {
    if (placed.insert(name).second) in.order.push_back(name);
  }
  for (const auto& name : in.categorical) {
    if (placed.insert(name).second) in.order.push_back(name);
  }
  const std::set<std::string> categorical(in.categorical.begin(), in.categorical.end());
  for (const auto& name : in.order) {
    if (name.empty() || name.rfind(kInternalPrefix, 0) == 0 || output_names.count(name)) {
      throw InputError(
          source + ": cannot export to ONNX: the input column '" + name +
          "' would collide with a name the graph uses (outputs, or names starting with '" +
          kInternalPrefix + "')");
    }
    if (categorical.count(name)) {
      add_value_info(
          graph->mutable_input(), name, kString, {-1, 1},
          "categorical column: the category label; \"\" is missing, an unseen label is unknown");
    } else {
      add_value_info(graph->mutable_input(), name, kFloat, {-1, 1},
                     "numeric column: NaN is missing");
    }
  }
  return in;
}

// The prepared numeric columns [N, n] float and their missing mask [N, n] float (1 = missing),
// with kernels/prepare_formulas.h's prepare_numeric: fill, clip and center in double, one rounding.
struct NumericValues {
  std::string prepared;  // "" when there are no numeric columns
  std::string missing;
};

NumericValues prepare_numeric_columns(GraphBuilder& g, const FittedPreparation& prep,
                                      const InputColumns& in) {
  NumericValues out;
  const auto n = static_cast<std::int64_t>(prep.numeric.size());
  if (n == 0) return out;
  std::vector<double> fill, lo, hi, center, inv_scale;
  bool any_lo = false, any_hi = false;
  for (const auto& e : prep.numeric) {
    const NumericTransform& t = e.transform;
    fill.push_back(static_cast<double>(t.fill));
    lo.push_back(static_cast<double>(t.clip_lo));
    hi.push_back(static_cast<double>(t.clip_hi));
    any_lo = any_lo || std::isfinite(t.clip_lo);
    any_hi = any_hi || std::isfinite(t.clip_hi);
    center.push_back(t.center);
    inv_scale.push_back(t.inv_scale);
  }
  const std::string x = cast(g, concat(g, in.numeric, 1, "numeric"), kDouble, "numeric_double");
  const std::string nan = g.apply("IsNaN", {x}, "is_missing");
  std::string v = g.apply("Where", {nan, g.doubles("fill", {n}, fill), x}, "filled");
  // A filled value is never NaN, so max/min are the formula's comparisons; +-inf bounds are no-ops.
  if (any_lo) v = g.apply("Max", {v, g.doubles("clip_lo", {n}, lo)}, "clipped_lo");
  if (any_hi) v = g.apply("Min", {v, g.doubles("clip_hi", {n}, hi)}, "clipped_hi");
  v = g.apply("Sub", {v, g.doubles("center", {n}, center)}, "centered");
  v = g.apply("Mul", {v, g.doubles("inv_scale", {n}, inv_scale)}, "scaled");
  out.prepared = cast(g, v, kFloat, "prepared_numeric");
  out.missing = cast(g, nan, kFloat, "missing_mask");
  return out;
}

std::vector<std::int64_t> as_int64(const std::vector<std::int32_t>& v) {
  return std::vector<std::int64_t>(v.begin(), v.end());
}

// The dense features [N, D] float: prepared numeric columns, missing indicators, numeric crosses.
std::string dense_features(GraphBuilder& g, const FittedPreparation& prep,
                           const NumericValues& numeric) {
  std::vector<std::string> parts;
  if (!numeric.prepared.empty()) parts.push_back(numeric.prepared);
  if (!prep.indicators.empty()) {
    const auto m = static_cast<std::int64_t>(prep.indicators.size());
    parts.push_back(gather(g, numeric.missing,
                           g.int64s("indicator_columns", {m}, as_int64(prep.indicators)), 1,
                           "missing_indicators"));
  }
  if (!prep.numeric_crosses.empty()) {
    std::vector<std::int64_t> a, b;
    for (auto [i, j] : prep.numeric_crosses) {
      a.push_back(i);
      b.push_back(j);
    }
    const auto c = static_cast<std::int64_t>(a.size());
    const std::string left =
        gather(g, numeric.prepared, g.int64s("cross_left", {c}, a), 1, "cross_left");
    const std::string right =
        gather(g, numeric.prepared, g.int64s("cross_right", {c}, b), 1, "cross_right");
    parts.push_back(g.apply("Mul", {left, right}, "numeric_crosses"));
  }
  if (parts.empty()) return "";
  return parts.size() == 1 ? parts.front() : concat(g, parts, 1, "dense");
}

// The slot [N, 1] int64 of each categorical column: its vocabulary index, the missing slot for "",
// else the unknown slot (CategoricalEncoding; hashed columns were refused before).
std::vector<std::string> category_slots(GraphBuilder& g, const FittedPreparation& prep,
                                        const InputColumns& in) {
  std::vector<std::string> slots;
  for (std::size_t j = 0; j < prep.categorical.size(); ++j) {
    const CategoricalEncoding& c = prep.categorical[j];
    std::vector<std::string> keys = c.vocabulary;
    std::vector<std::int64_t> values;
    for (std::size_t i = 0; i < keys.size(); ++i) values.push_back(static_cast<std::int64_t>(i));
    keys.push_back("");
    values.push_back(c.missing_slot());
    auto* n = g.node("LabelEncoder", {in.categorical[j]}, "slot", "", kMlDomain);
    set_strings(n, "keys_strings", keys);
    set_ints(n, "values_int64s", values);
    set_int(n, "default_int64", c.unknown_slot());
    slots.push_back(n->output(0));
  }
  return slots;
}

// The quantile bin [N, 1] int64 of a numeric column's raw input `x` [N, 1] float (before the
// graph's imputation and clipping), kernels/prepare_formulas.h's bin_slot: the number of `edges` at
// or below x (so a value equal to an edge is in the bin above it, -inf in bin 0, +inf in the last),
// and edges.size() + 1 for a missing value. The comparison is in float, as Lathe's: the edges are
// floats and so is the input. NaN >= e is false, so the count alone would put a missing value in
// bin 0; the Where moves it to its own slot. Without edges (a constant or all-missing column) there
// is one bin, and the graph compares with nothing rather than an empty [1, 0] edge table.
std::string bin_slots(GraphBuilder& g, const std::vector<float>& edges, const std::string& x) {
  const auto e = static_cast<std::int64_t>(edges.size());
  std::string bin;
  if (e == 0) {
    bin = g.scalar_int64("bin", 0);
  } else {
    const std::string at_or_above =
        g.apply("GreaterOrEqual", {x, g.floats("bin_edges", {1, e}, edges)}, "at_or_above_edge");
    auto* n = g.node("ReduceSum",
                     {cast(g, at_or_above, kInt64, "at_or_above_edge_int"), g.axes({1})}, "bin");
    set_int(n, "keepdims", 1);
    bin = n->output(0);
  }
  // With no edges the Where broadcasts the scalar bin to x's [N, 1].
  return g.apply("Where",
                 {g.apply("IsNaN", {x}, "bin_missing"), g.scalar_int64("missing_bin", e + 1), bin},
                 "bin_slot");
}

// The active sparse features of a row, as row indices into the graph's sparse weight tables:
// groups of value 1 (one-hots, quantile bins, categorical crosses) in `unit` [N, Gu], slope groups
// in `slope` [N, Gs] with their values in `slope_value` [N, Gs, 1] double. Row r of those tables
// holds the parameters of the model's sparse feature `source[r]` (expanded index - D).
//
// A one-hot, bins or slope group keeps its slots as rows. A categorical cross has hash_buckets
// slots in the model, of which at most (slots of a) x (slots of b) are reachable from labels the
// graph can tell apart; it gets one row per slot pair (the parameters of the pair's bucket, looked
// up here), so the file grows with the vocabularies, not with --hash-buckets. Only where the bucket
// rows plus an int64 pair -> row table take fewer bytes (many more pairs than buckets, and several
// values a row: outputs x (1 + factors)) does it keep the bucket rows and gather through that
// table.
struct SparseIndices {
  std::string unit, slope, slope_value;
  std::vector<std::int64_t> source;
};

SparseIndices sparse_indices(GraphBuilder& g, const FittedPreparation& prep, const InputColumns& in,
                             const NumericValues& numeric, const std::vector<std::string>& slots,
                             std::int64_t values_per_row) {
  SparseIndices out;
  const std::vector<std::int64_t> offsets = prep.group_offsets();
  const std::int64_t dense = prep.dense_features();
  std::vector<std::string> unit, slope;
  std::vector<std::int64_t> slope_numeric;
  // The bin [N, 1] int64 of binned numeric column i, computed once for its bins group and crosses.
  std::map<std::int32_t, std::string> bins_of;
  const auto bin_slots_of = [&](std::int32_t i) {
    auto [at, added] = bins_of.try_emplace(i);
    if (added) {
      const auto column = static_cast<std::size_t>(i);
      at->second = bin_slots(g, prep.numeric[column].bin_edges, in.numeric[column]);
    }
    return at->second;
  };
  // Appends the group's own slots [base, base + count) as rows; returns the first row.
  const auto identity_rows = [&](std::int64_t base, std::int64_t count) {
    const auto first = static_cast<std::int64_t>(out.source.size());
    for (std::int64_t i = 0; i < count; ++i) out.source.push_back(base + i);
    return first;
  };
  for (std::size_t k = 0; k < prep.sparse.size(); ++k) {
    const SparseGroup& group = prep.sparse[k];
    const std::int64_t base = offsets[k] - dense;
    switch (group.kind) {
      case SparseKind::one_hot: {
        const std::int64_t first = identity_rows(base, group.slots);
        unit.push_back(
            g.apply("Add", {slots[group.a], g.scalar_int64("group_row", first)}, "one_hot"));
        break;
      }
      case SparseKind::categorical_cross: {
        // Every pair of slots has a fixed bucket (kernels/prepare_formulas.h: cross_bucket of the
        // slots' label hashes); the pair's index is slot_a * slots_b + slot_b. A side that is a
        // numeric column's bins has the bins as its slots (cross_side_hashes).
        const std::vector<std::uint64_t> ha = cross_side_hashes(prep, group, false),
                                         hb = cross_side_hashes(prep, group, true);
        const std::string slot_a = group.a_bins ? bin_slots_of(group.a) : slots[group.a];
        const std::string slot_b = group.b_bins ? bin_slots_of(group.b) : slots[group.b];
        const auto pairs = static_cast<std::int64_t>(ha.size() * hb.size());
        const auto slots_b = static_cast<std::int64_t>(hb.size());
        const std::string pair = g.apply(
            "Add", {g.apply("Mul", {slot_a, g.scalar_int64("slots_b", slots_b)}, "pair_row"), slot_b},
            "pair");
        const std::int64_t row_bytes = values_per_row * static_cast<std::int64_t>(sizeof(float));
        const bool by_pair =
            pairs * row_bytes <= pairs * static_cast<std::int64_t>(sizeof(std::int64_t)) +
                                     static_cast<std::int64_t>(group.slots) * row_bytes;
        if (by_pair) {
          const auto first = static_cast<std::int64_t>(out.source.size());
          for (auto x : ha) {
            for (auto y : hb) out.source.push_back(base + cross_bucket(x, y, prep.hash_buckets));
          }
          unit.push_back(
              g.apply("Add", {pair, g.scalar_int64("group_row", first)}, "categorical_cross"));
        } else {
          const std::int64_t first = identity_rows(base, group.slots);
          std::vector<std::int64_t> table;
          table.reserve(static_cast<std::size_t>(pairs));
          for (auto x : ha) {
            for (auto y : hb) table.push_back(first + cross_bucket(x, y, prep.hash_buckets));
          }
          unit.push_back(
              gather(g, g.int64s("cross_table", {pairs}, table), pair, 0, "categorical_cross"));
        }
        break;
      }
      case SparseKind::slope: {
        const std::int64_t first = identity_rows(base, group.slots);
        slope.push_back(
            g.apply("Add", {slots[group.b], g.scalar_int64("group_row", first)}, "slope"));
        slope_numeric.push_back(group.a);
        break;
      }
      case SparseKind::bins: {
        const std::int64_t first = identity_rows(base, group.slots);
        unit.push_back(
            g.apply("Add", {bin_slots_of(group.a), g.scalar_int64("group_row", first)}, "bins"));
        break;
      }
    }
  }
  if (!unit.empty())
    out.unit = unit.size() == 1 ? unit.front() : concat(g, unit, 1, "unit_indices");
  if (!slope.empty()) {
    out.slope = slope.size() == 1 ? slope.front() : concat(g, slope, 1, "slope_indices");
    const auto s = static_cast<std::int64_t>(slope_numeric.size());
    const std::string values = gather(
        g, numeric.prepared, g.int64s("slope_columns", {s}, slope_numeric), 1, "slope_values");
    out.slope_value =
        g.apply("Unsqueeze", {cast(g, values, kDouble, "slope_values_double"), g.axes({2})},
                "slope_values_3d");
  }
  return out;
}

// A table of the model's float parameters, stored as float (half the bytes of double) and cast to
// double in the graph: the cast is exact, so the sums see exactly the model's values.
std::string float_table_as_double(GraphBuilder& g, const std::string& hint,
                                  const std::vector<std::int64_t>& dims,
                                  const std::vector<float>& v) {
  return cast(g, g.floats(hint, dims, v), kDouble, hint + "_double");
}

// Scores [N, outputs] double: bias + linear terms (+ the fm pairwise term),
// models/model_formulas.h.
std::string model_scores(GraphBuilder& g, const ModelFile& model, const std::string& dense_float,
                         const SparseIndices& sparse) {
  const FittedPreparation& prep = model.preparation;
  const std::int64_t D = prep.dense_features();
  const std::int64_t features = prep.expanded_features();
  const auto R = static_cast<std::int64_t>(sparse.source.size());  // sparse table rows
  const std::int64_t O = model.outputs;
  const std::vector<float>& w = model.parameters.weights;  // [O][features]
  const auto at = [](std::int64_t i) { return static_cast<std::size_t>(i); };

  const std::string x = dense_float.empty() ? "" : cast(g, dense_float, kDouble, "dense_double");
  std::vector<std::string> parts;
  // Transposed tables: rows are features, columns outputs (the sparse rows gathered by index).
  std::vector<float> wd(at(D * O)), ws(at(R * O));
  for (std::int64_t o = 0; o < O; ++o) {
    for (std::int64_t k = 0; k < D; ++k) wd[at(k * O + o)] = w[at(o * features + k)];
    for (std::int64_t r = 0; r < R; ++r)
      ws[at(r * O + o)] = w[at(o * features + D + sparse.source[at(r)])];
  }
  std::string ws_table;
  if (!x.empty()) {
    parts.push_back(g.apply("MatMul", {x, float_table_as_double(g, "dense_weights", {D, O}, wd)},
                            "dense_score"));
  }
  if (R > 0) ws_table = float_table_as_double(g, "sparse_weights", {R, O}, ws);
  if (!sparse.unit.empty()) {
    parts.push_back(
        reduce_sum(g, gather(g, ws_table, sparse.unit, 0, "unit_weights"), 1, "unit_score"));
  }
  if (!sparse.slope.empty()) {
    const std::string terms =
        g.apply("Mul", {gather(g, ws_table, sparse.slope, 0, "slope_weights"), sparse.slope_value},
                "slope_terms");
    parts.push_back(reduce_sum(g, terms, 1, "slope_score"));
  }

  if (model.kind == ModelKind::fm) {
    // sum_{i<j} <v_i, v_j> x_i x_j per output, over the active features.
    const std::int64_t K = model.factors;
    const std::vector<float>& v = model.parameters.factors;  // [O][features][K]
    std::vector<float> vd(at(D * O * K)), vs(at(R * O * K));
    for (std::int64_t o = 0; o < O; ++o) {
      for (std::int64_t f = 0; f < K; ++f) {
        for (std::int64_t k = 0; k < D; ++k)
          vd[at(k * O * K + o * K + f)] = v[at((o * features + k) * K + f)];
        for (std::int64_t r = 0; r < R; ++r)
          vs[at(r * O * K + o * K + f)] = v[at((o * features + D + sparse.source[at(r)]) * K + f)];
      }
    }
    // Each active feature's terms v_if x_i as [N, features, O*K], then the pairs as the running sum
    // of the features before each (models/model_formulas.h: fm_pairwise, whose order of features
    // this keeps: dense, then the sparse groups), so that no square cancels where one x_i is huge.
    std::vector<std::string> terms;
    if (!x.empty()) {
      const std::string factors = float_table_as_double(g, "dense_factors", {D, O * K}, vd);
      terms.push_back(g.apply(
          "Mul", {g.apply("Unsqueeze", {x, g.axes({2})}, "dense_3d"), factors}, "fm_dense_terms"));
    }
    std::string vs_table;
    if (R > 0) vs_table = float_table_as_double(g, "sparse_factors", {R, O * K}, vs);
    if (!sparse.unit.empty()) terms.push_back(gather(g, vs_table, sparse.unit, 0, "unit_factors"));
    if (!sparse.slope.empty()) {
      terms.push_back(g.apply(
          "Mul", {gather(g, vs_table, sparse.slope, 0, "slope_factors"), sparse.slope_value},
          "slope_factor_terms"));
    }
    if (!terms.empty()) {
      const std::string all = terms.size() == 1 ? terms.front() : concat(g, terms, 1, "fm_terms");
      auto* before = g.node("CumSum", {all, g.scalar_int64("feature_axis", 1)}, "fm_terms_before");
      set_int(before, "exclusive", 1);
      const std::string pairs =
          reduce_sum(g, g.apply("Mul", {all, before->output(0)}, "fm_pair_terms"), 1, "fm_pairs");
      // [N, O*K] -> [N, O, K] (0 keeps the row count) -> sum over K.
      const std::string per_factor =
          g.apply("Reshape", {pairs, g.int64s("fm_shape", {3}, {0, O, K})}, "fm_per_factor");
      parts.push_back(reduce_sum(g, per_factor, 2, "fm_pairwise"));
    }
  }

  std::vector<double> bias(model.parameters.bias.begin(), model.parameters.bias.end());
  return g.apply("Add", {sum_of(g, parts, "score_terms"), g.doubles("bias", {O}, bias)}, "scores");
}

// Index [N] int64 -> class label [N] string.
void class_labels(GraphBuilder& g, const std::string& index,
                  const std::vector<std::string>& classes, const std::string& output) {
  std::vector<std::int64_t> keys;
  for (std::size_t i = 0; i < classes.size(); ++i) keys.push_back(static_cast<std::int64_t>(i));
  auto* n = g.node("LabelEncoder", {index}, "", output, kMlDomain);
  set_ints(n, "keys_int64s", keys);
  set_strings(n, "values_strings", classes);
  set_string(n, "default_string", "");
}

// The task's link (runtime/trainer.h: scores_to_predictions) and the graph outputs.
void add_outputs(GraphBuilder& g, onnx::GraphProto* graph, const ModelFile& model,
                 const std::string& scores) {
  const auto K = static_cast<std::int64_t>(model.classes.size());
  switch (model.task) {
    case Task::regression: {
      const std::string s = g.apply("Squeeze", {scores, g.axes({1})}, "score");
      std::string y =
          g.apply("Add",
                  {g.apply("Mul", {s, g.scalar_double("target_std", model.target_std)}, "unscaled"),
                   g.scalar_double("target_mean", model.target_mean)},
                  "prediction_double");
      // The target transform's inverse, in double before the cast as RegressionMap takes it.
      // ONNX has no expm1, and exp(v) - 1 keeps only 1e-16 / |v| of v's digits: 1.2% off at a
      // prediction of 1e-14. Below |v| = 1e-5 the series v + v^2/2 + v^3/6 is exact in double (the
      // next term is 4e-22 of v), and above it exp - 1 is within 1e-11 relative.
      if (model.target_transform == TargetTransform::log) {
        y = g.apply("Exp", {y}, "prediction_exp");
      } else if (model.target_transform == TargetTransform::log1p) {
        const std::string v = y;
        const std::string series = g.apply(
            "Mul",
            {v, g.apply("Add",
                        {g.scalar_double("one", 1.0),
                         g.apply("Mul",
                                 {v, g.apply("Add",
                                             {g.scalar_double("half", 0.5),
                                              g.apply("Mul", {v, g.scalar_double("sixth", 1.0 / 6.0)}, "v_sixth")},
                                             "series_inner")},
                                 "series_v")},
                        "series_sum")},
            "expm1_series");
        const std::string direct =
            g.apply("Sub", {g.apply("Exp", {v}, "prediction_exp"), g.scalar_double("one_again", 1.0)}, "exp_minus_one");
        const std::string small =
            g.apply("Less", {g.apply("Abs", {v}, "abs_fit"), g.scalar_double("series_bound", 1e-5)}, "small_fit");
        y = g.apply("Where", {small, series, direct}, "prediction_expm1");
      }
      set_int(g.node("Cast", {y}, "", "prediction"), "to", kFloat);
      add_value_info(graph->mutable_output(), "prediction", kFloat, {-1},
                     "the prediction in the label's units");
      break;
    }
    case Task::binary: {
      const std::string s = g.apply("Squeeze", {scores, g.axes({1})}, "score");
      auto* p = g.node("Cast", {g.apply("Sigmoid", {s}, "probability_double")}, "", "probability");
      set_int(p, "to", kFloat);
      // metric_formulas.h: binary_predicted_class, probability > 0.5 (in float).
      const std::string positive =
          g.apply("Greater", {"probability", g.floats("threshold", {}, {0.5f})}, "is_positive");
      class_labels(g, cast(g, positive, kInt64, "class_index"), model.classes, "predicted_class");
      add_value_info(graph->mutable_output(), "probability", kFloat, {-1},
                     "P(" + model.classes[1] + "), the positive class");
      add_value_info(graph->mutable_output(), "predicted_class", kString, {-1},
                     model.classes[1] + " where probability > 0.5, else " + model.classes[0]);
      break;
    }
    case Task::multiclass: {
      auto* softmax = g.node("Softmax", {scores}, "probabilities_double");
      set_int(softmax, "axis", 1);
      auto* p = g.node("Cast", {softmax->output(0)}, "", "probabilities");
      set_int(p, "to", kFloat);
      // metric_formulas.h: predicted_class, the first largest probability.
      auto* argmax = g.node("ArgMax", {"probabilities"}, "class_index");
      set_int(argmax, "axis", 1);
      set_int(argmax, "keepdims", 0);
      class_labels(g, argmax->output(0), model.classes, "predicted_class");
      std::string order;
      for (const auto& c : model.classes) order += (order.empty() ? "" : ", ") + c;
      add_value_info(graph->mutable_output(), "probabilities", kFloat, {-1, K},
                     "class probabilities, columns in the order: " + order);
      add_value_info(graph->mutable_output(), "predicted_class", kString, {-1},
                     "the most probable class");
      break;
    }
  }
}

std::set<std::string> output_names(Task task) {
  switch (task) {
    case Task::regression:
      return {"prediction"};
    case Task::binary:
      return {"probability", "predicted_class"};
    default:
      return {"probabilities", "predicted_class"};
  }
}

// Writes `bytes` to `path` (a temporary of `out`); a failed write or close (a full disk, EFBIG past
// `ulimit -f`) is an Error naming `out` with the system's reason.
void write_whole_file(const std::filesystem::path& path, const std::string& bytes,
                      const std::filesystem::path& out) {
  const auto failed = [&](int error) {
    return Error(out.string() + ": cannot write the ONNX file: " + std::strerror(error));
  };
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) throw failed(errno);
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : EIO;
      ::close(fd);
      throw failed(error);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) throw failed(errno);
}

}  // namespace

OnnxExportSummary export_onnx(const ModelFile& model, const std::filesystem::path& source,
                              const std::filesystem::path& out) {
  const std::string src = source.string();
  check_exportable(model, src);

  onnx::ModelProto proto;
  proto.set_ir_version(kIrVersion);
  proto.set_producer_name("lathe");
  proto.set_producer_version("0.1.0");
  proto.set_doc_string("Lathe model " + source.filename().string() + " (" + task_name(model.task) +
                       ", label '" + model.label + "'): preparation and model in one graph");
  auto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  opset = proto.add_opset_import();
  opset->set_domain(kMlDomain);
  opset->set_version(kOnnxMlOpset);

  onnx::GraphProto* graph = proto.mutable_graph();
  graph->set_name("lathe");
  GraphBuilder g(graph);
  const InputColumns in = declare_inputs(model, graph, src, output_names(model.task));
  const FittedPreparation& prep = model.preparation;
  const NumericValues numeric = prepare_numeric_columns(g, prep, in);
  const std::string dense = dense_features(g, prep, numeric);
  const std::vector<std::string> slots = category_slots(g, prep, in);
  const std::int64_t values_per_row =
      model.outputs * (1 + (model.kind == ModelKind::fm ? model.factors : 0));
  const SparseIndices sparse = sparse_indices(g, prep, in, numeric, slots, values_per_row);
  add_outputs(g, graph, model, model_scores(g, model, dense, sparse));

  if (proto.ByteSizeLong() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw InputError(src +
                     ": cannot export to ONNX: the graph would exceed protobuf's 2 GiB limit");
  }
  try {
    onnx::checker::check_model(proto);
    // What onnx.checker's full_check adds: strict type and shape inference over every node.
    onnx::ModelProto inferred = proto;
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1));
  } catch (const std::exception& e) {
    throw Error(out.string() + ": the exported ONNX graph fails onnx::checker: " + e.what());
  }

  std::string bytes;
  if (!proto.SerializeToString(&bytes))
    throw Error(out.string() + ": cannot serialize the ONNX graph");
  TemporaryOutput output(out);
  write_whole_file(output.path(), bytes, out);
  OnnxExportSummary summary;
  for (const auto& v : graph->input()) summary.inputs.push_back(v.name());
  for (const auto& v : graph->output()) summary.outputs.push_back(v.name());
  summary.nodes = g.nodes();
  summary.bytes = static_cast<std::int64_t>(std::filesystem::file_size(output.path()));
  output.commit();
  return summary;
}

}  // namespace lathe
