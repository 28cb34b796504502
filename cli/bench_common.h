// What the `lathe bench` commands share (cli/bench_command.cpp: `bench train`, `bench score`;
// cli/bench_stages.cpp: the end-to-end `lathe bench`): a scratch directory for their synthetic
// files, the machine's ceilings they are set beside (memcpy, pread of a file, device copies), the
// raw block read of a table, and the training of one mode on a synthetic table.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/synth.h"
#include "io/table_reader.h"
#include "io/train_table.h"
#include "runtime/device_context.h"

namespace lathe::cli {

// A directory under the system's temporary directory ("lathe-bench-PID-STAMP", holding the marker
// of mark_scratch_folder), removed with everything in it on scope exit (also when a benchmark
// throws) and by a termination signal. Before making it, the constructor removes the folders of
// that form left in the same place by benches that were killed (remove_stale_scratch_folders),
// saying so on stderr.
class ScratchDirectory {
 public:
  ScratchDirectory();
  ~ScratchDirectory();
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  // The path for the termination signals' handler, which removes the folder (register_scratch_folder).
  std::string path_for_signals_;
  int signal_slot_ = -1;
};

// What every `lathe bench ... --json` starts with (README.md, "lathe bench"): "version" (lathe's),
// "commit" (the git commit lathe was built from, build_commit(); null when not built from a git
// checkout) and "machine": {"device", "backend" ("cpu"|"cuda"), "cpu_threads", "hardware_threads"}
// of `ctx`.
// The keys of the same quantity are the same in every bench: "rows", "features", "columns" (D + 1),
// "float32_bytes" (N (D + 1) 4), "seconds", "rows_per_second", "gbps", "fraction_of_ceiling".
nlohmann::ordered_json bench_json_header(const DeviceContext& ctx);

// Fewest rows of a bench run: the synthetic label needs both classes in the training rows, which a
// handful of rows may not have, and the trainer would then name a file of the scratch directory.
constexpr std::int64_t kMinimumBenchRows = 1000;
// Most features: the synthetic writer's limit on columns (io/synth.cpp), refused before the run
// begins rather than by the writer, whose message names `lathe synth`'s options.
constexpr int kMaximumBenchFeatures = 100000;

// Refuses fewer than kMinimumBenchRows rows or more than kMaximumBenchFeatures features: a
// UsageError naming the option.
void check_bench_size(std::int64_t rows, int features);

// Refuses, before anything is written, a synthetic table whose float32 values, N (D + 1) 4 bytes,
// do not fit `memory_copies` times in this machine's memory or `disk_copies` times in the free
// space of `scratch`'s file system: a UsageError naming --rows and --features, where the run would
// otherwise write until the disk is full, or be killed for memory once it holds the table. The
// copies are the fewest a run holds or writes (a run near the bound may still not fit).
void check_bench_fits(std::int64_t rows, int features, double memory_copies, double disk_copies,
                      const std::filesystem::path& scratch);

// Seconds since `start` on the steady clock.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// `v` printed with a printf format ("%.3f").
std::string cell(double v, const char* format);

// Seconds for one memcpy of `bytes` host to host, split over `threads` OpenMP threads (mean of
// `repetitions` after one untimed copy that also faults the pages in).
double time_host_memcpy(std::size_t bytes, int threads, int repetitions);

// The raw read bandwidth of a file's bytes: seconds for one pass of pread() calls of `buffer_bytes`
// over the whole file, split into `threads` contiguous ranges read at once by as many OpenMP
// threads (as the page cache serves it: a file just written is read from memory). The reads land
// one after another in a destination of `destination_bytes` (shared out among the threads, then
// wrapping around): the size of a reader's block, so that the bytes leave the caches as a reader's
// do; a destination of one call per thread would stay in L2 and measure a copy no reader can
// match. `bytes_read` receives the file size. Throws Error naming the file.
double time_pread(const std::filesystem::path& path, std::size_t buffer_bytes, std::size_t destination_bytes,
                  int threads, std::int64_t& bytes_read);

// Writes the synthetic binary table every bench runs on (io/synth.h, seed 42): `rows` rows of
// `features` numeric features and the label, deflate level `deflate_level` (0: none), with a
// progress line on stderr.
SynthReport write_bench_table(const std::filesystem::path& path, std::int64_t rows, int features, int deflate_level);

// Writes `path`'s dirty pages to the disk and drops all its pages from the page cache
// (posix_fadvise DONTNEED, no root needed), so that the next read comes from the disk: the `--cold`
// runs of `bench score`. Throws Error naming the file when the kernel refuses.
void evict_from_page_cache(const std::filesystem::path& path);

// Why `--cold` cannot read files in `folder` from the disk, or "" when it can: on a tmpfs or ramfs
// (TMPDIR=/dev/shm, or a /tmp mounted as one) the files live in memory, where
// evict_from_page_cache leaves them, so a "cold" read would be a warm one.
std::string page_cache_eviction_problem(const std::filesystem::path& folder);

// Seconds to read every block of `path` (all columns, float32) with TableReader::read_block, as the
// scoring reader does, nothing done with the values: the raw read of `bench score`, the read and
// decode stages of the end-to-end run.
double time_raw_read(const std::filesystem::path& path, const TableReadOptions& read);

// Trains a linear binary model on `data` (label `label`) as `bench train` does: no validation
// split, no early stopping, `epochs` epochs of minibatches of `batch` rows in `mode`, epoch progress
// on stderr; the model is written to `model_out`. Notes go to stderr. `stream_window_rows` > 0
// streams the training rows in windows of that many file rows instead of holding them.
// `workers`: --mode parallel's workers (0 = the device's choice).
TrainReport train_bench_mode(const DeviceContext& ctx, const std::filesystem::path& data,
                             const std::filesystem::path& model_out, const std::string& label, TrainMode mode,
                             std::int32_t epochs, std::int64_t batch, bool step_graphs = true,
                             std::int64_t stream_window_rows = 0, std::int32_t workers = 0);

}  // namespace lathe::cli
