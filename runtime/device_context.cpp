#include "runtime/device_context.h"

#include <omp.h>

#include <charconv>
#include <iostream>

#include "runtime/cuda_backend.h"
#include "runtime/error.h"

namespace lathe {

SystemInfo query_system() {
  SystemInfo info;
  info.cpu_threads = omp_get_max_threads();
  query_cuda(info);
  return info;
}

DeviceContext DeviceContext::cpu() {
  DeviceContext ctx;
  ctx.kind_ = DeviceKind::cpu;
  ctx.cpu_threads_ = omp_get_max_threads();
  ctx.description_ = "cpu (" + std::to_string(ctx.cpu_threads_) + " threads)";
  return ctx;
}

namespace {
bool quiet_notes = false;
}  // namespace

void DeviceContext::set_quiet(bool quiet) { quiet_notes = quiet; }

int DeviceContext::requested_cuda_device(std::string_view spec) {
  if (spec == "cpu" || spec == "auto") return -1;
  if (spec == "cuda") return 0;
  int requested = -1;
  if (spec.starts_with("cuda:")) {
    const auto digits = spec.substr(5);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), requested);
    if (ec == std::errc() && end == digits.data() + digits.size() && requested >= 0)
      return requested;
  }
  throw UsageError("--device: '" + std::string(spec) + "' is not auto, cpu, cuda or cuda:N");
}

DeviceContext DeviceContext::select(std::string_view spec) {
  const int requested = requested_cuda_device(spec);
  if (spec == "cpu") return cpu();

  SystemInfo info;
  query_cuda(info);
  if (!info.cuda_usable) {
    if (requested >= 0) {
      throw InputError("--device " + std::string(spec) + ": CUDA is not usable: " +
                       info.cuda_unusable_reason);
    }
    // auto: say once why the GPU is not used, then run on the CPU.
    static bool said = false;
    if (!said && !quiet_notes) {
      std::cerr << "lathe: no usable GPU (" << info.cuda_unusable_reason
                << "); using the CPU backend\n";
      said = true;
    }
    return cpu();
  }
  const int index = requested < 0 ? 0 : requested;
  if (index >= static_cast<int>(info.devices.size())) {
    throw InputError("--device " + std::string(spec) + ": there are only " +
                     std::to_string(info.devices.size()) + " CUDA devices");
  }
  DeviceContext ctx;
  ctx.kind_ = DeviceKind::cuda;
  ctx.cuda_device_ = index;
  ctx.cpu_threads_ = omp_get_max_threads();
  const auto& d = info.devices[index];
  ctx.description_ = "cuda:" + std::to_string(index) + " (" + d.name + ", sm_" +
                     std::to_string(d.compute_major) + std::to_string(d.compute_minor) + ")";
  ctx.cuda_ = make_cuda_backend(index);
  return ctx;
}

}  // namespace lathe
