// What every benchmark file of lathe_bench shares (STYLE.md rule 9): seeded input blocks, the
// bytes/s and rows/s counters, the host memcpy ceiling, the GPU's copy ceilings as counters beside
// a GPU benchmark, and choosing the device or skipping with a message where it does not answer.
// Header-only: the one executable's files include it.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <random>
#include <vector>

#include "runtime/cuda_backend.h"
#include "runtime/device_context.h"

namespace lathe::bench {

// A rows x cols block of standard-normal floats (column-major, though nothing here depends on the
// layout), the same for the same seed.
inline std::vector<float> normal_block(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::vector<float> v(static_cast<std::size_t>(rows * cols));
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0, 1);
  for (auto& x : v) x = n(rng);
  return v;
}

// Sets bytes/s to rows * bytes_per_row bytes per iteration and a "rows/s" rate of rows per
// iteration. Call after the timing loop (both are scaled by state.iterations()).
inline void set_row_counters(benchmark::State& state, std::int64_t rows,
                             std::int64_t bytes_per_row) {
  state.SetBytesProcessed(rows * bytes_per_row * state.iterations());
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(rows) * state.iterations(),
                                                benchmark::Counter::kIsRate);
}

// set_row_counters for a block of rows x cols floats: bytes/s counts rows * cols * 4 bytes.
inline void set_block_counters(benchmark::State& state, std::int64_t rows, std::int64_t cols) {
  set_row_counters(state, rows, cols * static_cast<std::int64_t>(sizeof(float)));
}

// The host's ceiling for a block of rows x cols floats: one memcpy of its bytes per iteration into
// a second buffer (both allocated and touched before timing; their values do not matter to a
// copy), with the block's counters, so a benchmark of the same size reads as a ratio to it.
inline void run_memcpy_ceiling(benchmark::State& state, std::int64_t rows, std::int64_t cols) {
  const std::vector<float> src(static_cast<std::size_t>(rows * cols), 1.0f);
  std::vector<float> dst(src.size());
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), src.size() * sizeof(float));
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  set_block_counters(state, rows, cols);
}

// The GPU's ceilings beside a GPU benchmark, measured in the same run (CUDA events, 10 copies of
// `bytes`) and set as counters in GB/s: copy_GBps, a device-to-device copy (for kernels on
// device-resident data); h2d_GBps, a pinned host-to-device copy (for entry points that take host
// memory and upload it). Nothing on the CPU. Call after the timing loop.
inline void set_device_copy_counter(benchmark::State& state, const DeviceContext& ctx, std::size_t bytes) {
  if (!ctx.is_cuda() || bytes == 0) return;
  state.counters["copy_GBps"] = static_cast<double>(bytes) / time_device_copy(ctx.cuda(), bytes, 10) / 1e9;
}
inline void set_upload_counter(benchmark::State& state, const DeviceContext& ctx, std::size_t bytes) {
  if (!ctx.is_cuda() || bytes == 0) return;
  state.counters["h2d_GBps"] =
      static_cast<double>(bytes) / time_pinned_host_to_device_copy(ctx.cuda(), bytes, 10) / 1e9;
}

// DeviceContext::select(device) ("cpu", "cuda", ...); where that throws (no GPU answers), skips
// the benchmark with the error's message and returns nothing: the caller returns at once.
inline std::optional<DeviceContext> device_or_skip(benchmark::State& state, const char* device) {
  try {
    return DeviceContext::select(device);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return std::nullopt;
  }
}

}  // namespace lathe::bench
