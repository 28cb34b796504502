#include "io/run_options.h"

#include <nlohmann/json.hpp>

namespace lathe {

std::vector<ChangedOption> changed_options(const std::string& was_options,
                                           const std::string& is_options,
                                           std::span<const char* const> keys) {
  const nlohmann::json was = nlohmann::json::parse(was_options, nullptr, false);
  const nlohmann::json is = nlohmann::json::parse(is_options, nullptr, false);
  if (!was.is_object() || !is.is_object()) return {};
  const auto text = [](const nlohmann::json& j, const char* key) {
    if (!j.contains(key)) return std::string(kDefaultOption);
    std::string s;
    for (const auto& v : j[key]) {
      if (!s.empty()) s += ',';
      s += v.is_string() ? v.get<std::string>() : v.dump();
    }
    return s;
  };
  std::vector<ChangedOption> changed;
  for (const char* key : keys) {
    if (was.value(key, nlohmann::json()) == is.value(key, nlohmann::json())) continue;
    changed.push_back({key, text(was, key), text(is, key)});
  }
  return changed;
}

std::string given_option(const std::string& options_json, const char* key) {
  const nlohmann::json j = nlohmann::json::parse(options_json, nullptr, false);
  if (!j.is_object() || !j.contains(key) || !j[key].is_array()) return "";
  std::string s;
  for (const auto& v : j[key]) {
    if (!s.empty()) s += ',';
    s += v.is_string() ? v.get<std::string>() : v.dump();
  }
  return s;
}

std::string preparation_run_options(const ModelFile& model) {
  const nlohmann::json options = nlohmann::json::parse(model.options_json, nullptr, false);
  if (!options.is_object()) return "";
  if (!model.parent.empty()) {
    const nlohmann::json parent = nlohmann::json::parse(model.parent, nullptr, false);
    if (!parent.is_object() || !parent.value("refit_preparation", false)) {
      const auto kept = options.find("kept_preparation_options");
      return kept != options.end() && kept->is_object() ? kept->dump() : "";
    }
  }
  return options.dump();
}

}  // namespace lathe
