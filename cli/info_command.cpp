// `lathe info [--json]`: the GPU(s) found, or why CUDA cannot be used, the CPU threads and how
// their OpenMP threads wait.
#include <nlohmann/json.hpp>

#include <iomanip>
#include <iostream>

#include "cli/commands.h"
#include "cli/openmp_spinning.h"
#include "runtime/device_context.h"

namespace lathe::cli {

namespace {
std::string cuda_version_text(int v) {
  return v == 0 ? "none" : std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}
}  // namespace

void add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Show the GPU and CPU that Lathe can use");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([json] {
    const SystemInfo info = query_system();
    if (*json) {
      nlohmann::json j;
      j["cuda_built"] = info.cuda_built;
      j["cuda_usable"] = info.cuda_usable;
      if (!info.cuda_usable) j["cuda_unusable_reason"] = info.cuda_unusable_reason;
      j["driver_version"] = cuda_version_text(info.driver_version);
      j["runtime_version"] = cuda_version_text(info.runtime_version);
      j["cpu_threads"] = info.cpu_threads;
      j["openmp_wait"] = openmp_spinning();
      j["devices"] = nlohmann::json::array();
      for (const auto& d : info.devices) {
        j["devices"].push_back({{"index", d.index},
                                {"name", d.name},
                                {"compute_capability", std::to_string(d.compute_major) + "." +
                                                           std::to_string(d.compute_minor)},
                                {"total_memory_bytes", d.total_memory_bytes},
                                {"free_memory_bytes", d.free_memory_bytes},
                                {"multiprocessors", d.multiprocessors}});
      }
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << "CUDA backend:    " << (info.cuda_built ? "built" : "not built") << "\n";
    std::cout << "CUDA runtime:    " << cuda_version_text(info.runtime_version) << "\n";
    std::cout << "CUDA driver:     " << cuda_version_text(info.driver_version) << "\n";
    if (!info.cuda_usable) std::cout << "GPU:             none (" << info.cuda_unusable_reason << ")\n";
    for (const auto& d : info.devices) {
      std::cout << "GPU " << d.index << ":           " << d.name << ", compute capability "
                << d.compute_major << "." << d.compute_minor << ", " << std::fixed
                << std::setprecision(1) << d.total_memory_bytes / double(1 << 30) << " GiB ("
                << d.free_memory_bytes / double(1 << 30) << " GiB free), " << d.multiprocessors
                << " SMs\n";
    }
    std::cout << "CPU threads:     " << info.cpu_threads << "\n";
    std::cout << "OpenMP waits:    " << openmp_spinning() << "\n";
    std::cout << "Default device:  " << (info.cuda_usable ? "cuda:0" : "cpu") << "\n";
  });
}

}  // namespace lathe::cli
