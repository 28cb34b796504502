#include "runtime/warm_start.h"

#include <unordered_map>

#include "runtime/error.h"

namespace lathe {

namespace {

// The name of slot s of categorical encoding c.
std::string slot_name(const CategoricalEncoding& c, std::int32_t s) {
  if (s == c.missing_slot()) return "<missing>";
  if (s == c.unknown_slot()) return "<unknown>";
  if (c.hashed) return "#" + std::to_string(s) + "/" + std::to_string(c.buckets);
  return c.vocabulary.at(static_cast<std::size_t>(s));
}

}  // namespace

std::vector<std::string> expanded_feature_keys(const FittedPreparation& fitted) {
  std::vector<std::string> keys;
  for (const std::string& name : fitted.dense_names()) keys.push_back("dense:" + name);
  for (const SparseGroup& g : fitted.sparse) {
    for (std::uint32_t s = 0; s < g.slots; ++s) {
      const auto slot = static_cast<std::int32_t>(s);
      switch (g.kind) {
        case SparseKind::one_hot:
          keys.push_back("onehot:" + g.name + "=" + slot_name(fitted.categorical.at(static_cast<std::size_t>(g.a)), slot));
          break;
        case SparseKind::slope:
          keys.push_back("slope:" + g.name + "=" + slot_name(fitted.categorical.at(static_cast<std::size_t>(g.b)), slot));
          break;
        default:  // categorical x categorical: hashed buckets
          keys.push_back("cross:" + g.name + "#" + std::to_string(s) + "/" + std::to_string(g.slots));
          break;
      }
    }
  }
  return keys;
}

ModelParameters carry_parameters(const FittedPreparation& from, const ModelParameters& parameters,
                                 const FittedPreparation& to, const ModelShape& shape, std::int64_t* carried) {
  const std::vector<std::string> old_keys = expanded_feature_keys(from), new_keys = expanded_feature_keys(to);
  const auto outputs = static_cast<std::size_t>(shape.outputs);
  const auto old_features = old_keys.size(), new_features = new_keys.size();
  if (parameters.bias.size() != outputs || parameters.weights.size() != outputs * old_features) {
    throw InputError("--init-model: the earlier model has " + std::to_string(parameters.bias.size()) +
                     " outputs over " + std::to_string(old_features) + " features; this one needs " +
                     std::to_string(outputs) + " outputs");
  }
  const auto k = static_cast<std::size_t>(shape.factors);
  if (parameters.factors.size() != outputs * old_features * k) {
    throw InputError("--init-model: the earlier model's factors (" + std::to_string(parameters.factors.size()) +
                     " numbers) do not match --factors " + std::to_string(shape.factors));
  }
  std::unordered_map<std::string, std::size_t> old_index;
  for (std::size_t f = 0; f < old_features; ++f) old_index.emplace(old_keys[f], f);
  ModelParameters out;
  out.bias = parameters.bias;
  out.weights.assign(outputs * new_features, 0.0f);
  out.factors.assign(outputs * new_features * k, 0.0f);
  std::int64_t count = 0;
  for (std::size_t f = 0; f < new_features; ++f) {
    const auto it = old_index.find(new_keys[f]);
    if (it == old_index.end()) continue;
    ++count;
    for (std::size_t o = 0; o < outputs; ++o) {
      out.weights[o * new_features + f] = parameters.weights[o * old_features + it->second];
      for (std::size_t j = 0; j < k; ++j) {
        out.factors[(o * new_features + f) * k + j] = parameters.factors[(o * old_features + it->second) * k + j];
      }
    }
  }
  if (carried) *carried = count;
  return out;
}

}  // namespace lathe
