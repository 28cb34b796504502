// What the `lathe bench` commands share; see cli/bench_common.h.
#include "cli/bench_common.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <omp.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <set>
#include <system_error>
#include <thread>

#include "cli/build_commit.h"
#include "io/temporary_file.h"
#include "lathe/scorer.h"
#include "runtime/error.h"

namespace lathe::cli {

namespace {

// The start of every scratch folder's name, "lathe-bench-PID-STAMP": what
// remove_stale_scratch_folders looks for.
const std::string kScratchPrefix = "lathe-bench-";

}  // namespace

ScratchDirectory::ScratchDirectory() {
  // The scratch folder comes from TMPDIR when it is set: an error names it, not std::filesystem's
  // "temp_directory_path: No such file or directory".
  const char* tmpdir = std::getenv("TMPDIR");
  const std::string where = tmpdir != nullptr && *tmpdir != '\0'
                                ? std::string("TMPDIR=") + tmpdir + " (where lathe bench writes its scratch files)"
                                : std::string("the temporary folder (set TMPDIR to choose another)");
  std::error_code ec;
  const auto base = std::filesystem::temp_directory_path(ec);
  if (ec) throw InputError(where + ": " + ec.message());
  // A bench killed by SIGKILL (or the OOM killer) could not remove its folder, with up to gigabytes
  // of synthetic data: the next bench in the same folder removes it, once its process is gone.
  for (const StaleScratchFolder& stale : remove_stale_scratch_folders(base, kScratchPrefix)) {
    std::cerr << "bench: removed a scratch folder left by an earlier bench (pid " << stale.pid
              << "): " << stale.path.string() << ", "
              << cell(static_cast<double>(stale.bytes) / 1e6, "%.1f") << " MB\n";
  }
  const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
  path_ = base / (kScratchPrefix + std::to_string(::getpid()) + "-" + std::to_string(stamp));
  // Listed for the termination signals before it exists: a SIGINT from then on removes it too.
  path_for_signals_ = path_.string();
  signal_slot_ = register_scratch_folder(path_for_signals_.c_str());
  std::filesystem::create_directories(path_, ec);
  if (ec) {
    unregister_scratch_folder(signal_slot_);
    throw InputError(where + ": cannot create " + path_.string() + ": " + ec.message());
  }
  mark_scratch_folder(path_);
}

ScratchDirectory::~ScratchDirectory() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  unregister_scratch_folder(signal_slot_);  // after the removal, so a signal during it still finds it
}

nlohmann::ordered_json bench_json_header(const DeviceContext& ctx) {
  nlohmann::ordered_json j;
  j["version"] = version();
  // What bench/RESULTS.md records beside each run's figures; null when not built from a checkout.
  if (const char* commit = build_commit()) {
    j["commit"] = commit;
  } else {
    j["commit"] = nullptr;
  }
  j["machine"] = {{"device", ctx.description()},
                  {"backend", ctx.is_cuda() ? "cuda" : "cpu"},
                  {"cpu_threads", ctx.is_cuda() ? omp_get_max_threads() : ctx.cpu_threads()},
                  {"hardware_threads", std::thread::hardware_concurrency()}};
  return j;
}

void check_bench_size(std::int64_t rows, int features) {
  if (rows < kMinimumBenchRows) {
    throw UsageError("--rows: at least " + std::to_string(kMinimumBenchRows) + " rows (got " + std::to_string(rows) +
                     ")");
  }
  if (features > kMaximumBenchFeatures) {
    throw UsageError("--features: at most " + std::to_string(kMaximumBenchFeatures) + " (got " +
                     std::to_string(features) + ")");
  }
}

void check_bench_fits(std::int64_t rows, int features, double memory_copies, double disk_copies,
                      const std::filesystem::path& scratch) {
  // In double: N (D + 1) 4 overflows 64 bits at --rows 9223372036854775807.
  const double table_bytes = static_cast<double>(rows) * (static_cast<double>(features) + 1.0) * 4.0;
  const std::string table = "--rows " + std::to_string(rows) + " x --features " + std::to_string(features) +
                            ": the synthetic table's " + cell(table_bytes / 1e9, "%.4g") + " GB of float32 values";
  const std::string remedy = "; give fewer --rows or --features";
  const double memory_bytes =
      static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGE_SIZE));
  if (memory_bytes > 0 && table_bytes * memory_copies > memory_bytes) {
    throw UsageError(table + ", held " + cell(memory_copies, "%g") + (memory_copies == 1 ? " time" : " times") +
                     ", exceed this machine's " + cell(memory_bytes / 1e9, "%.3g") + " GB of memory" + remedy);
  }
  std::error_code ec;
  const std::filesystem::space_info disk = std::filesystem::space(scratch, ec);
  if (!ec && table_bytes * disk_copies > static_cast<double>(disk.available)) {
    throw UsageError(table + ", written " + cell(disk_copies, "%g") + (disk_copies == 1 ? " time" : " times") +
                     ", exceed the " + cell(static_cast<double>(disk.available) / 1e9, "%.3g") + " GB free in " +
                     scratch.parent_path().string() + " (TMPDIR chooses the folder)" + remedy);
  }
}

std::string cell(double v, const char* format) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, v);
  return buffer;
}

double time_host_memcpy(std::size_t bytes, int threads, int repetitions) {
  std::vector<unsigned char> from(bytes, 1), to(bytes, 0);
  const auto copy = [&] {
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num(), n = omp_get_num_threads();
      const std::size_t begin = bytes * static_cast<std::size_t>(t) / static_cast<std::size_t>(n);
      const std::size_t end = bytes * static_cast<std::size_t>(t + 1) / static_cast<std::size_t>(n);
      std::memcpy(to.data() + begin, from.data() + begin, end - begin);
    }
  };
  copy();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < repetitions; ++i) copy();
  const double seconds = seconds_since(start);
  if (to[bytes / 2] != 1) throw Error("bench: the host copy did not copy");  // keeps the copies
  return seconds / repetitions;
}

namespace {

// Closes a file descriptor on scope exit.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

double time_pread(const std::filesystem::path& path, std::size_t buffer_bytes, std::size_t destination_bytes,
                  int threads, std::int64_t& bytes_read) {
  const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw Error(path.string() + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw Error(path.string() + ": cannot stat: " + std::strerror(errno));
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const std::size_t call_bytes = std::max<std::size_t>(buffer_bytes, 4096);
  threads = std::max(1, threads);
  // Each thread's share of the destination: at least one call's worth.
  const std::size_t share = std::max(call_bytes, destination_bytes / static_cast<std::size_t>(threads));
  std::vector<std::vector<unsigned char>> buffers(static_cast<std::size_t>(threads),
                                                  std::vector<unsigned char>(share, 0));
  std::vector<std::uint64_t> read(static_cast<std::size_t>(threads), 0);
  std::vector<int> failure(static_cast<std::size_t>(threads), 0);  // errno of a failed pread
  std::uint64_t checksum = 0;
  const auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : checksum)
  {
    const auto t = static_cast<std::size_t>(omp_get_thread_num());
    const auto n = static_cast<std::uint64_t>(omp_get_num_threads());
    // Range boundaries on 4 KiB pages, so no two threads read the same page.
    const auto page_of = [&](std::uint64_t i) { return (size / 4096 * i / n) * 4096; };
    const std::uint64_t begin = page_of(t);
    const std::uint64_t end = t + 1 == n ? size : page_of(t + 1);
    auto& buffer = buffers[t];
    std::size_t at = 0;  // where the next call lands in this thread's share
    for (std::uint64_t offset = begin; offset < end;) {
      if (at + call_bytes > buffer.size()) at = 0;
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(call_bytes, end - offset));
      const ssize_t got = ::pread(fd.get(), buffer.data() + at, want, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        failure[t] = got < 0 ? errno : EIO;  // 0: the file shrank under us
        break;
      }
      checksum += buffer[at + static_cast<std::size_t>(got) - 1];  // one byte per read keeps the reads observable
      at += static_cast<std::size_t>(got);
      offset += static_cast<std::uint64_t>(got);
      read[t] += static_cast<std::uint64_t>(got);
    }
  }
  const double seconds = seconds_since(start);
  for (const int e : failure) {
    if (e != 0) throw Error(path.string() + ": pread failed: " + std::strerror(e));
  }
  if (checksum == 1) std::cerr << "bench: note: the file's bytes sum to 1\n";
  bytes_read = 0;
  for (const auto r : read) bytes_read += static_cast<std::int64_t>(r);
  return seconds;
}

SynthReport write_bench_table(const std::filesystem::path& path, std::int64_t rows, int features, int deflate_level) {
  SynthOptions synth;
  synth.task = SynthTask::binary;
  synth.rows = rows;
  synth.features = features;
  synth.deflate_level = deflate_level;
  // write_synthetic makes no chunk longer than the table: a 1000-row table in chunks of 65536 rows
  // took 66 times its bytes, which the pread ceiling then read.
  synth.progress = false;
  std::cerr << "bench: writing " << rows << " x " << features << " synthetic rows"
            << (deflate_level > 0 ? ", deflate level " + std::to_string(deflate_level) : std::string(", uncompressed"))
            << "\n";
  return write_synthetic(path, synth);
}

void evict_from_page_cache(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error(path.string() + ": cannot open to evict it from the page cache: " + std::strerror(errno));
  const bool synced = ::fsync(fd) == 0;
  const int advice = synced ? ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) : errno;
  ::close(fd);
  if (!synced || advice != 0) {
    throw Error(path.string() + ": cannot evict it from the page cache: " + std::strerror(synced ? advice : errno));
  }
}

std::string page_cache_eviction_problem(const std::filesystem::path& folder) {
  struct statfs file_system {};
  // Unknown when statfs fails: the eviction itself then reports what goes wrong.
  if (::statfs(folder.c_str(), &file_system) != 0) return "";
  const auto type = static_cast<unsigned long>(file_system.f_type);
  if (type != TMPFS_MAGIC && type != RAMFS_MAGIC) return "";
  return folder.parent_path().string() +
         ", where lathe bench writes its scratch files (TMPDIR), is a " +
         (type == TMPFS_MAGIC ? "tmpfs" : "ramfs") +
         ": its files live in memory and cannot be evicted from the page cache, so the read would "
         "not "
         "be cold; set TMPDIR to a folder on a disk, or leave out --cold";
}

double time_raw_read(const std::filesystem::path& path, const TableReadOptions& read) {
  const auto start = std::chrono::steady_clock::now();
  TableReader reader(path, read);
  const auto columns = static_cast<std::int64_t>(reader.columns().size());
  std::vector<float> block;
  double checksum = 0;
  for (std::int64_t first = 0; first < reader.rows(); first += reader.block_rows()) {
    const std::int64_t n = std::min(reader.block_rows(), reader.rows() - first);
    block.resize(static_cast<std::size_t>(n * columns));
    reader.read_block(first, n, block);
    checksum += block[0];  // one value per block keeps the reads observable
  }
  const double seconds = seconds_since(start);
  if (std::isinf(checksum)) std::cerr << "bench: note: the first values sum to infinity\n";
  return seconds;
}

TrainReport train_bench_mode(const DeviceContext& ctx, const std::filesystem::path& data,
                             const std::filesystem::path& model_out, const std::string& label, TrainMode mode,
                             std::int32_t epochs, std::int64_t batch, bool step_graphs,
                             std::int64_t stream_window_rows, std::int32_t workers) {
  TrainTableOptions o;
  o.preparation.label = label;
  o.task = Task::binary;
  o.valid_fraction = 0;
  o.trainer.mode = mode;
  o.trainer.epochs = epochs;
  o.trainer.workers = workers;
  o.trainer.batch = batch;
  o.trainer.patience = 0;
  o.trainer.progress = true;
  o.trainer.step_graphs = step_graphs;
  o.stream = stream_window_rows > 0;
  o.window_rows = stream_window_rows;
  TrainReport report = train_table(ctx, data, model_out, o);
  // Each mode trains on the same synthetic data, whose notes (its columns' scales) would repeat
  // once a mode: each is said once a process.
  static std::set<std::string> said;
  for (const auto& note : report.notes) {
    if (said.insert(note).second) std::cerr << "bench: note: " << note << "\n";
  }
  return report;
}

}  // namespace lathe::cli
