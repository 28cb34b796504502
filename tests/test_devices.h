// Helpers for tests written once and run on every backend (STYLE.md rule 8): a test suite
// parameterised by DeviceKind is instantiated as CPU/... and GPU/...; a GPU instance skips, saying
// why, where no GPU answers.
#pragma once

#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "runtime/device_context.h"

namespace lathe {
// So that test names and ctest listings say "cpu"/"cuda" rather than the enum's bytes.
inline void PrintTo(DeviceKind kind, std::ostream* os) { *os << (kind == DeviceKind::cpu ? "cpu" : "cuda"); }
}  // namespace lathe

namespace lathe::test {

inline DeviceContext context_for(DeviceKind kind) {
  return kind == DeviceKind::cpu ? DeviceContext::cpu() : DeviceContext::select("cuda");
}

inline std::string gpu_unusable_reason() {
  static const SystemInfo info = query_system();
  return info.cuda_usable ? std::string() : info.cuda_unusable_reason;
}

inline std::string device_name(const testing::TestParamInfo<DeviceKind>& info) {
  return info.param == DeviceKind::cpu ? "cpu" : "cuda";
}

}  // namespace lathe::test

// At the top of a device-parameterised test body.
#define LATHE_SKIP_WITHOUT_DEVICE(kind)                                              \
  do {                                                                               \
    if ((kind) == ::lathe::DeviceKind::cuda && !::lathe::test::gpu_unusable_reason().empty()) \
      GTEST_SKIP() << "no usable GPU: " << ::lathe::test::gpu_unusable_reason();     \
  } while (0)

#define LATHE_INSTANTIATE_FOR_DEVICES(suite)                                               \
  INSTANTIATE_TEST_SUITE_P(CPU, suite, ::testing::Values(::lathe::DeviceKind::cpu),        \
                           ::lathe::test::device_name);                                    \
  INSTANTIATE_TEST_SUITE_P(GPU, suite, ::testing::Values(::lathe::DeviceKind::cuda),       \
                           ::lathe::test::device_name)
