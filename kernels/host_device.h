// LATHE_HOST_DEVICE marks the small functions shared by the CPU backend and the CUDA kernels:
// `__host__ __device__` under nvcc, nothing under a host compiler. Headers using it never include
// CUDA headers, so g++ compiles them as plain C++.
#pragma once

#if defined(__CUDACC__)
#define LATHE_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define LATHE_HOST_DEVICE inline
#endif
