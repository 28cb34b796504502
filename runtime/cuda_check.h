// Checking macros for the CUDA runtime and cuBLAS. Included only by .cu files (it includes CUDA
// headers). Each throws CudaError with the call text, source file and line; errors that poison the
// CUDA context (illegal address, launch failure, ...) are marked sticky.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "runtime/error.h"

namespace lathe::detail {

inline bool is_sticky_cuda_error(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorAssert:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorHardwareStackError:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
      return true;
    default:
      return false;
  }
}

inline void check_cuda(cudaError_t e, const char* call, const char* file, int line) {
  if (e == cudaSuccess) return;
  throw CudaError(std::string("CUDA error ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
                      ") in " + call + " at " + file + ":" + std::to_string(line),
                  is_sticky_cuda_error(e));
}

}  // namespace lathe::detail

#define LATHE_CUDA_CHECK(call) ::lathe::detail::check_cuda((call), #call, __FILE__, __LINE__)
// After every kernel launch: reports launch-configuration errors without synchronizing.
#define LATHE_CUDA_CHECK_LAUNCH() \
  ::lathe::detail::check_cuda(cudaPeekAtLastError(), "kernel launch", __FILE__, __LINE__)
