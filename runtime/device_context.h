// The device Lathe computes on, chosen once per process (or per command) and passed first to every
// compute function. The CUDA device is used if one is usable, else the CPU backend with all cores.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lathe {

enum class DeviceKind { cpu, cuda };

class CudaBackend;  // runtime/cuda_backend.h: the stream, cuBLAS handle and scratch of one GPU

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  std::size_t total_memory_bytes = 0;
  std::size_t free_memory_bytes = 0;
  int multiprocessors = 0;
};

// What `lathe info` reports: the CUDA devices found, or why CUDA cannot be used.
struct SystemInfo {
  bool cuda_built = false;      // this binary was built with the CUDA backend
  bool cuda_usable = false;     // at least one device answered
  std::string cuda_unusable_reason;  // when !cuda_usable
  int driver_version = 0;       // CUDA driver API version, e.g. 13000; 0 when no driver
  int runtime_version = 0;      // CUDA runtime version linked in; 0 when built without CUDA
  std::vector<CudaDeviceInfo> devices;
  int cpu_threads = 0;          // threads the CPU backend uses
};

SystemInfo query_system();

class DeviceContext {
 public:
  // spec: "auto" (CUDA device 0 if usable, else CPU, with one note on stderr saying why, unless
  // notes are silenced), "cpu", "cuda" or "cuda:N" (an error if that device is not usable). Throws
  // UsageError (an InputError) for other specs.
  static DeviceContext select(std::string_view spec);
  // The CUDA device a --device spec asks for: N for "cuda:N" (0 for "cuda"), -1 for "auto" and
  // "cpu". Throws select's UsageError for any other spec. The command line checks a spec with it
  // before any file is read (cli/commands.h add_device_option).
  static int requested_cuda_device(std::string_view spec);
  // Silences (or restores) select's note about falling back to the CPU, for the whole process:
  // `--quiet` (cli/main.cpp sets it for every command that has the flag).
  static void set_quiet(bool quiet);
  static DeviceContext cpu();

  DeviceKind kind() const { return kind_; }
  bool is_cuda() const { return kind_ == DeviceKind::cuda; }
  int cuda_device() const { return cuda_device_; }
  int cpu_threads() const { return cpu_threads_; }
  // "cpu (N threads)" or "cuda:0 (NVIDIA H200, sm_90)".
  const std::string& description() const { return description_; }
  // The CUDA resources of this context; only valid when is_cuda().
  CudaBackend& cuda() const { return *cuda_; }

 private:
  DeviceKind kind_ = DeviceKind::cpu;
  int cuda_device_ = -1;
  int cpu_threads_ = 1;
  std::string description_;
  std::shared_ptr<CudaBackend> cuda_;
};

}  // namespace lathe
