// LATHE_VECTOR_CLONES marks a host function whose row loops are compiled twice, for AVX2 and for
// the baseline x86-64 ISA, with the copy picked at load time. Lathe's binaries must run on any
// x86-64 machine, yet the wide loops (conversions to and from double, multiply-adds over columns)
// cost several times more in SSE2 than in AVX2. AVX2 without FMA: both copies perform the same
// IEEE operations and give the same results.
#pragma once

// Defined beforehand (-DLATHE_VECTOR_CLONES=), it is kept: a ThreadSanitizer build needs one copy,
// since the loader calls a clone's resolver before the sanitizer's runtime starts.
#if !defined(LATHE_VECTOR_CLONES) && defined(__x86_64__) && defined(__has_attribute) && !defined(__CUDACC__)
#if __has_attribute(target_clones)
#define LATHE_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef LATHE_VECTOR_CLONES
#define LATHE_VECTOR_CLONES
#endif
