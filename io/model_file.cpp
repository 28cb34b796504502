#include "io/model_file.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "io/hdf5_handle.h"
#include "io/preparation_json.h"
#include "io/temporary_file.h"
#include "runtime/error.h"

namespace lathe {

namespace {

using h5::H5Handle;

const char* kind_name(ModelKind k) { return k == ModelKind::linear ? "linear" : "fm"; }
const char* loss_name(LossKind k) {
  switch (k) {
    case LossKind::squared: return "squared";
    case LossKind::huber: return "huber";
    case LossKind::logistic: return "logistic";
    case LossKind::softmax: return "softmax";
  }
  return "?";
}

std::string schema_json(const std::vector<ColumnInfo>& columns) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& c : columns) {
    j.push_back({{"name", c.name}, {"type", column_type_name(c.type)}, {"categories", c.categories}});
  }
  return j.dump();
}

std::string read_string(hid_t file, const char* name, const std::string& context) {
  if (!h5::attribute_exists(file, name, context)) throw InputError(context + ": attribute '" + name + "' is missing");
  const auto v = h5::read_string_attribute(file, name, context);
  if (v.size() != 1) throw InputError(context + ": attribute '" + name + "' should be one string");
  return v[0];
}

std::string read_json_number_attribute(hid_t file, const char* name, const std::string& context) {
  return read_string(file, name, context);
}

}  // namespace

void save_model(const std::filesystem::path& path, const ModelFile& m, const CheckpointExtras* extras) {
  const std::int64_t features = m.preparation.expanded_features();
  const auto shape_matches = [&](const ModelParameters& p) {
    return static_cast<std::int64_t>(p.weights.size()) == m.outputs * features &&
           static_cast<std::int32_t>(p.bias.size()) == m.outputs &&
           (m.kind != ModelKind::fm ||
            static_cast<std::int64_t>(p.factors.size()) == m.outputs * features * m.factors);
  };
  if (!shape_matches(m.parameters) || (extras && !shape_matches(extras->resume))) {
    throw Error(path.string() + ": model parameters do not match the model's shape");
  }
  for (const auto* v : {&m.parameters.weights, &m.parameters.bias, &m.parameters.factors}) {
    for (float x : *v) {
      if (!std::isfinite(x)) throw Error(path.string() + ": refusing to save a model with non-finite weights");
    }
  }
  TemporaryOutput output(path);
  const std::string context = path.string();
  {
    H5Handle fapl = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), context));
    LATHE_H5_CHECK(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST), context);
    H5Handle file = h5::file_handle(
        LATHE_H5_CHECK(H5Fcreate(output.path().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), context));
    const hid_t f = file.get();
    h5::write_int_attribute(f, "lathe_model_format_version", kModelFormatVersion, context);
    h5::write_string_attribute(f, "task", std::string(task_name(m.task)), context);
    h5::write_string_attribute(f, "model_kind", std::string(kind_name(m.kind)), context);
    h5::write_string_attribute(f, "loss", std::string(loss_name(m.loss)), context);
    h5::write_string_attribute(f, "label", m.label, context);
    h5::write_string_attribute(f, "classes", m.classes, context);
    h5::write_int_attribute(f, "outputs", m.outputs, context);
    h5::write_int_attribute(f, "factors", m.factors, context);
    // Doubles as JSON text keep every bit and stay readable with h5dump.
    h5::write_string_attribute(f, "huber_delta", nlohmann::json(m.huber_delta).dump(), context);
    h5::write_string_attribute(f, "target_mean", nlohmann::json(m.target_mean).dump(), context);
    h5::write_string_attribute(f, "target_std", nlohmann::json(m.target_std).dump(), context);
    h5::write_string_attribute(f, "preparation", preparation_to_json(m.preparation), context);
    h5::write_string_attribute(f, "input_schema", schema_json(m.input_schema), context);
    h5::write_string_attribute(f, "metrics", m.metrics_json, context);
    h5::write_string_attribute(f, "options", m.options_json, context);
    const auto o = static_cast<hsize_t>(m.outputs);
    const auto d = static_cast<hsize_t>(features);
    h5::write_checksummed_floats(f, "weights", m.parameters.weights, {o, d}, context);
    h5::write_checksummed_floats(f, "bias", m.parameters.bias, {o}, context);
    if (m.kind == ModelKind::fm) {
      h5::write_checksummed_floats(f, "factors", m.parameters.factors, {o, d, static_cast<hsize_t>(m.factors)}, context);
    }
    if (extras) {
      h5::write_string_attribute(f, "checkpoint", extras->state_json, context);
      h5::write_checksummed_floats(f, "resume_weights", extras->resume.weights, {o, d}, context);
      h5::write_checksummed_floats(f, "resume_bias", extras->resume.bias, {o}, context);
      if (m.kind == ModelKind::fm) {
        h5::write_checksummed_floats(f, "resume_factors", extras->resume.factors, {o, d, static_cast<hsize_t>(m.factors)}, context);
      }
    }
    LATHE_H5_CHECK(H5Fflush(f, H5F_SCOPE_GLOBAL), context);
    LATHE_H5_CHECK(H5Fclose(file.release()), context);
  }
  output.commit();
}

ModelFile load_model(const std::filesystem::path& path, CheckpointExtras* extras) {
  const std::string context = path.string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw InputError(context + ": no such file");
  h5::silence_errors_in_this_thread();
  if (H5Fis_hdf5(path.c_str()) <= 0) throw InputError(context + ": not an HDF5 file");
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) {
    H5Eclear2(H5E_DEFAULT);
    throw InputError(context + ": cannot open (truncated or damaged?)");
  }
  H5Handle file = h5::file_handle(id);
  const hid_t f = file.get();
  if (!h5::attribute_exists(f, "lathe_model_format_version", context)) {
    throw InputError(context + ": not a Lathe model file (no lathe_model_format_version)");
  }
  long long version = 0;
  {
    H5Handle attr = h5::attribute_handle(LATHE_H5_CHECK(H5Aopen(f, "lathe_model_format_version", H5P_DEFAULT), context));
    LATHE_H5_CHECK(H5Aread(attr.get(), H5T_NATIVE_LLONG, &version), context);
  }
  if (version > kModelFormatVersion) {
    throw InputError(context + ": written by a newer Lathe (model format " + std::to_string(version) +
                     "; this lathe reads up to " + std::to_string(kModelFormatVersion) + "): upgrade lathe");
  }
  ModelFile m;
  const std::string task = read_string(f, "task", context);
  m.task = task == "regression" ? Task::regression : task == "binary" ? Task::binary : task == "multiclass" ? Task::multiclass
           : throw InputError(context + ": unknown task '" + task + "'");
  const std::string kind = read_string(f, "model_kind", context);
  if (kind != "linear" && kind != "fm") throw InputError(context + ": unknown model kind '" + kind + "'");
  m.kind = kind == "linear" ? ModelKind::linear : ModelKind::fm;
  const std::string loss = read_string(f, "loss", context);
  m.loss = loss == "squared" ? LossKind::squared : loss == "huber" ? LossKind::huber : loss == "logistic" ? LossKind::logistic
           : loss == "softmax" ? LossKind::softmax : throw InputError(context + ": unknown loss '" + loss + "'");
  m.label = read_string(f, "label", context);
  m.classes = h5::read_string_attribute(f, "classes", context);
  for (const char* name : {"outputs", "factors"}) {
    long long v = 0;
    H5Handle attr = h5::attribute_handle(LATHE_H5_CHECK(H5Aopen(f, name, H5P_DEFAULT), context));
    LATHE_H5_CHECK(H5Aread(attr.get(), H5T_NATIVE_LLONG, &v), context);
    if (v < 0 || v > (1 << 20)) throw InputError(context + ": attribute '" + name + "' out of range");
    (std::string(name) == "outputs" ? m.outputs : m.factors) = static_cast<std::int32_t>(v);
  }
  try {
    m.huber_delta = nlohmann::json::parse(read_json_number_attribute(f, "huber_delta", context)).get<float>();
    m.target_mean = nlohmann::json::parse(read_json_number_attribute(f, "target_mean", context)).get<double>();
    m.target_std = nlohmann::json::parse(read_json_number_attribute(f, "target_std", context)).get<double>();
    for (const auto& c : nlohmann::json::parse(read_string(f, "input_schema", context))) {
      ColumnInfo info;
      info.name = c.at("name").get<std::string>();
      info.type = c.at("type").get<std::string>() == "categorical" ? ColumnType::categorical : ColumnType::numeric;
      info.categories = c.at("categories").get<std::vector<std::string>>();
      m.input_schema.push_back(info);
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(context + ": damaged model attributes: " + e.what());
  }
  m.preparation = preparation_from_json(read_string(f, "preparation", context), context);
  m.metrics_json = read_string(f, "metrics", context);
  m.options_json = read_string(f, "options", context);
  const std::int64_t features = m.preparation.expanded_features();
  const std::int32_t expected_outputs = m.task == Task::multiclass ? static_cast<std::int32_t>(m.classes.size()) : 1;
  if (m.outputs != expected_outputs) {
    throw InputError(context + ": has " + std::to_string(m.outputs) + " outputs for a " + task + " task with " +
                     std::to_string(m.classes.size()) + " classes");
  }
  if (m.task == Task::binary && m.classes.size() != 2) throw InputError(context + ": a binary model needs 2 classes");
  if (!(std::isfinite(m.target_std) && m.target_std > 0 && std::isfinite(m.target_mean))) {
    throw InputError(context + ": target scaling is not finite");
  }
  m.parameters.weights = h5::read_finite_floats(f, "weights", static_cast<std::size_t>(m.outputs * features), context);
  m.parameters.bias = h5::read_finite_floats(f, "bias", static_cast<std::size_t>(m.outputs), context);
  if (m.kind == ModelKind::fm) {
    m.parameters.factors = h5::read_finite_floats(f, "factors", static_cast<std::size_t>(m.outputs * features * m.factors), context);
  }
  if (extras) {
    if (!h5::attribute_exists(f, "checkpoint", context)) {
      throw InputError(context + ": not a checkpoint (a model file without the 'checkpoint' attribute)");
    }
    extras->state_json = read_string(f, "checkpoint", context);
    extras->resume.weights = h5::read_finite_floats(f, "resume_weights", static_cast<std::size_t>(m.outputs * features), context);
    extras->resume.bias = h5::read_finite_floats(f, "resume_bias", static_cast<std::size_t>(m.outputs), context);
    extras->resume.factors.clear();
    if (m.kind == ModelKind::fm) {
      extras->resume.factors =
          h5::read_finite_floats(f, "resume_factors", static_cast<std::size_t>(m.outputs * features * m.factors), context);
    }
  }
  return m;
}

}  // namespace lathe
