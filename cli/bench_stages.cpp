// `lathe bench [--rows N] [--features D] [--device ...] [--json]`: the data path end to end on
// synthetic data, each stage beside the machine ceiling that bounds it, all measured in the same
// run.
//
// A synthetic binary table (io/synth.h, seed 42) of N rows, D numeric features and the label is
// written twice to a scratch directory (removed afterwards): uncompressed, and deflate level 1 (the
// same values). Every stage and every ceiling is timed twice and the faster kept. The amount a
// stage's GB/s counts is float32 bytes: N (D + 1) 4 for read, decode, prepare and score (the values
// read), the prepared blocks' bytes for host→device, N (D + 1) 4 per epoch for training (what an
// epoch must read at least, as in `bench train`), N 2 4 for evaluate (predictions and labels).
//
// Stages, in order, and the ceiling each is a fraction of (stage GB/s / ceiling GB/s):
//   read            TableReader block reads of the uncompressed file, nothing done with the
//                   values (the raw read of `bench score`)                            pread
//   decode          the same through the deflate-compressed file: float32 delivered  pread
//   host_to_device  CUDA only: the prepared blocks (dense features, slots, values, label) staged
//                   in pinned host memory as a streamed window holds them, then copied host →
//                   device block by block into one device buffer, queued and waited for once
//                                                                                    pinned_h2d
//                   On the CPU backend: "n/a (cpu)", its numbers null.
//   prepare         fit + transform of the preparation (runtime/preparation.h: profile of every
//                   block, fit_preparation, bind, apply_preparation per block) on blocks already in
//                   memory, default options (mean imputation, standard scaling)
//                                                                 memcpy (CPU) / pinned_h2d (CUDA)
//   train_exact     one epoch of `--mode exact` (linear, batch 256, 2 epochs, the faster kept: the
//   train_parallel  first also pays the upload), as `bench train` runs it; rows/s of training rows
//                                                                 memcpy (CPU) / device_copy (CUDA)
//   train_streamed  one epoch of `--mode exact` streamed window by window (TrainTableOptions::
//                   stream, windows of about N / 4 rows: the next window is read and prepared on
//                   another thread while the model trains on the current one), 2 epochs, the
//                   faster kept                                                        overlap
//                   The overlap bound is max(I/O, compute): I/O = one pass that reads every block
//                   and applies the model's fitted preparation (what loading the windows costs),
//                   compute = the train_exact epoch. A fraction of 1 means the reading hides
//                   completely behind the training (or the reverse); issue 6 asks for an epoch of
//                   at most 1.2 x the bound, a fraction of at least 0.83.
//   evaluate        compute_metrics (logloss, auc, pr_auc, accuracy) over the exact model's
//                   predictions of all N rows (the file as the test set; predicting is not timed)
//                                                                 memcpy (CPU) / pinned_h2d (CUDA)
//   score           score_file HDF5 → HDF5 with the exact model (what `lathe score` runs)  pread
//
// Ceilings: memcpy (host to host, split over the CPU backend's threads; mean of 5 copies) and, on
// CUDA, a device-to-device copy and a pinned host-to-device copy (runtime/cuda_backend.h; mean of
// 10 copies), each of N (D + 1) 4 bytes clamped to [64 MiB, 512 MiB] so that small runs are not
// measured in cache and large runs need no second copy of the table; pread: the uncompressed file's
// bytes read with pread() in 1 MiB calls by as many threads as the memcpy (one contiguous range
// each), from the page cache (the file was just written), into a destination the size of the
// reader's block (block_rows (D + 1) 4 bytes), as the read stage's reader delivers them.
//
// stdout: a header, the ceilings, then a table with one row per stage (seconds, rows/s, GB/s, the
// ceiling's name and GB/s, the fraction). stderr: each stage's name as it starts and one result
// line when it ends, and the epochs of training. With --json, one JSON object instead, with these
// keys (numbers are JSON numbers; null where not measured on this backend; README.md lists the
// keys of every bench):
//   {"version":  lathe's version,
//    "commit":   the git commit lathe was built from ("0123456789ab", "...-dirty") or null,
//    "machine":  {"device": "cpu (2 threads)", "backend": "cpu"|"cuda", "cpu_threads": int,
//                 "hardware_threads": int},
//    "run":      {"rows", "features", "columns" (D + 1), "block_rows", "float32_bytes" (N (D+1) 4),
//                 "file_bytes", "deflate_file_bytes", "epochs", "batch", "rounds" (2)},
//    "ceilings": {"memcpy_gbps", "memcpy_threads", "memcpy_bytes", "pread_gbps", "pread_bytes",
//                 "device_copy_gbps": null|number, "pinned_h2d_gbps": null|number,
//                 "device_copy_bytes": null|number, "overlap_gbps",
//                 "overlap_io_seconds", "overlap_compute_seconds"},
//    "stages":   {"read"|"decode"|"host_to_device"|"prepare"|"train_exact"|"train_parallel"|
//                 "train_streamed"|"evaluate"|"score":
//                   {"seconds", "rows", "bytes", "gbps", "rows_per_second",
//                    "ceiling": "memcpy"|"pread"|"device_copy"|"pinned_h2d"|"overlap",
//                    "ceiling_gbps", "fraction_of_ceiling", "note": null|string}}}
// "seconds" is one run of the stage (one epoch for training); host_to_device on the CPU backend
// has null seconds, gbps, rows_per_second, ceiling_gbps and fraction_of_ceiling, and note "n/a
// (cpu)".
#include "cli/bench_stages.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/bench_common.h"
#include "cli/commands.h"
#include "io/model_file.h"
#include "io/score_file.h"
#include "io/synth.h"
#include "io/table_reader.h"
#include "io/train_table.h"
#include "lathe/scorer.h"
#include "runtime/cuda_backend.h"
#include "runtime/device_context.h"
#include "runtime/error.h"
#include "runtime/host_array.h"
#include "runtime/metrics.h"
#include "runtime/preparation.h"
#include "runtime/profile.h"

namespace lathe::cli {

namespace {

constexpr int kRounds = 2;  // every stage and ceiling is timed this often; the faster is kept
constexpr std::int32_t kEpochs = 2;
constexpr std::int64_t kBatch = 256;
constexpr std::size_t kPreadBufferBytes = std::size_t{1} << 20;

struct Args {
  std::int64_t rows = 1'000'000;
  int features = 28;
  std::string device = "auto";
  bool json = false;
};

struct Ceilings {
  double memcpy_gbps = 0;
  int memcpy_threads = 0;
  std::size_t copy_bytes = 0;  // memcpy and device copies
  double pread_gbps = 0;
  std::int64_t pread_bytes = 0;
  std::optional<double> device_copy_gbps, pinned_h2d_gbps;  // CUDA only
  // The streamed epoch's bound, max(I/O, compute) as GB/s of one epoch's bytes (set after the
  // train_exact stage); its two parts in seconds.
  double overlap_gbps = 0, overlap_io_seconds = 0, overlap_compute_seconds = 0;

  // The GB/s of a ceiling by its name, or nullopt when not measured on this backend.
  std::optional<double> gbps(const std::string& name) const {
    if (name == "memcpy") return memcpy_gbps;
    if (name == "pread") return pread_gbps;
    if (name == "device_copy") return device_copy_gbps;
    if (name == "pinned_h2d") return pinned_h2d_gbps;
    if (name == "overlap") return overlap_gbps;
    throw Error("bench: no ceiling named " + name);
  }
};

struct Stage {
  std::string key;      // JSON key
  std::string label;    // table row
  std::string ceiling;  // its ceiling's name (Ceilings::gbps)
  std::optional<double> seconds;  // the faster run; nullopt = not run on this backend
  std::int64_t rows = 0;
  double bytes = 0;
  std::string note;

  std::optional<double> gbps() const {
    if (!seconds) return std::nullopt;
    return bytes / *seconds / 1e9;
  }
  std::optional<double> rows_per_second() const {
    if (!seconds) return std::nullopt;
    return static_cast<double>(rows) / *seconds;
  }
  std::optional<double> fraction(const Ceilings& c) const {
    const auto ceiling = c.gbps(this->ceiling);
    if (!seconds || !ceiling) return std::nullopt;
    return *gbps() / *ceiling;
  }
};

// The faster of kRounds runs of `run` (which returns its own seconds).
template <typename Run>
double faster_of_rounds(Run run) {
  double best = INFINITY;
  for (int round = 0; round < kRounds; ++round) best = std::min(best, run());
  return best;
}

// Seconds of `work()` on the steady clock.
template <typename Work>
double timed(Work work) {
  const auto start = std::chrono::steady_clock::now();
  work();
  return seconds_since(start);
}

std::string gbps_text(std::optional<double> gbps) { return gbps ? cell(*gbps, "%.3f") : std::string("n/a"); }

Ceilings measure_ceilings(const DeviceContext& ctx, const std::filesystem::path& file, std::size_t float_bytes,
                          std::size_t block_bytes) {
  Ceilings c;
  constexpr std::size_t kMin = std::size_t{64} << 20, kMax = std::size_t{512} << 20;
  c.copy_bytes = std::clamp(float_bytes, kMin, kMax);
  c.memcpy_threads = std::max(1, ctx.is_cuda() ? omp_get_max_threads() : ctx.cpu_threads());
  const double bytes = static_cast<double>(c.copy_bytes);
  c.memcpy_gbps = bytes / faster_of_rounds([&] { return time_host_memcpy(c.copy_bytes, c.memcpy_threads, 5); }) / 1e9;
  const double pread_seconds = faster_of_rounds([&] { return time_pread(file, kPreadBufferBytes, block_bytes, c.memcpy_threads, c.pread_bytes); });
  c.pread_gbps = static_cast<double>(c.pread_bytes) / pread_seconds / 1e9;
  if (ctx.is_cuda()) {
    c.device_copy_gbps = bytes / faster_of_rounds([&] { return time_device_copy(ctx.cuda(), c.copy_bytes, 10); }) / 1e9;
    c.pinned_h2d_gbps =
        bytes / faster_of_rounds([&] { return time_pinned_host_to_device_copy(ctx.cuda(), c.copy_bytes, 10); }) / 1e9;
  }
  return c;
}

// Every block of `path` (TableReader::read_block layout), held in memory for the stages that
// time computation alone.
struct TableBlocks {
  std::vector<ColumnInfo> columns;
  std::vector<std::vector<float>> blocks;
  std::vector<std::int64_t> block_rows;
};

// Seconds for one pass that reads every block of `path` and applies `model`'s fitted preparation
// to it: what loading the windows of a streamed epoch costs, without the training. On the CPU
// whatever the training device, as the streamed loader prepares its windows (io/train_table.cpp).
double time_window_loads(const std::filesystem::path& path, const TableReadOptions& read, const ModelFile& model) {
  return timed([&] {
    TableReader reader(path, read);
    const BoundPreparation bound = bind_preparation(model.preparation, reader.columns());
    const auto columns = static_cast<std::int64_t>(reader.columns().size());
    std::vector<float> block;
    PreparedBlock prepared;
    for (std::int64_t first = 0; first < reader.rows(); first += reader.block_rows()) {
      const std::int64_t n = std::min(reader.block_rows(), reader.rows() - first);
      block.resize(static_cast<std::size_t>(n * columns));
      reader.read_block(first, n, block);
      apply_preparation(DeviceContext::cpu(), bound, ColumnBlockView{block.data(), n, columns}, prepared);
    }
  });
}

TableBlocks read_all_blocks(const std::filesystem::path& path) {
  TableReader reader(path);
  TableBlocks t;
  t.columns = reader.columns();
  const auto ncols = static_cast<std::int64_t>(t.columns.size());
  for (std::int64_t first = 0; first < reader.rows(); first += reader.block_rows()) {
    const std::int64_t n = std::min(reader.block_rows(), reader.rows() - first);
    t.blocks.emplace_back(static_cast<std::size_t>(n * ncols));
    reader.read_block(first, n, t.blocks.back());
    t.block_rows.push_back(n);
  }
  return t;
}

// The preparation fitted and applied to every block: what the prepare stage times.
void prepare_blocks(const DeviceContext& ctx, const TableBlocks& table, const std::string& label,
                    std::vector<PreparedBlock>& prepared) {
  const auto ncols = static_cast<std::int64_t>(table.columns.size());
  DataProfile profile = make_profile(table.columns);
  ProfileWorkspace workspace;
  for (std::size_t b = 0; b < table.blocks.size(); ++b) {
    profile_block(ctx, ColumnBlockView{table.blocks[b].data(), table.block_rows[b], ncols}, {}, profile, {},
                  &workspace);
  }
  PreparationOptions options;
  options.label = label;
  std::vector<std::string> notes;
  const FittedPreparation fitted = fit_preparation(profile, options, &notes);
  const BoundPreparation bound = bind_preparation(fitted, table.columns);
  prepared.resize(table.blocks.size());
  for (std::size_t b = 0; b < table.blocks.size(); ++b) {
    apply_preparation(ctx, bound, ColumnBlockView{table.blocks[b].data(), table.block_rows[b], ncols}, prepared[b]);
  }
}

template <typename T>
std::size_t byte_size(const std::vector<T>& v) {
  return v.size() * sizeof(T);
}

std::size_t prepared_bytes(const PreparedBlock& b) {
  return byte_size(b.dense) + byte_size(b.slot) + byte_size(b.value) + byte_size(b.label);
}

// Seconds to copy every prepared block host → device (CUDA), block after block into one buffer.
// The prepared blocks staged in host memory as a streamed window holds them (one pinned array per
// block, runtime/host_array.h), then timed: every block's bytes copied to the device, queued on the
// stream and waited for once. `pinned` says whether the driver granted pinned memory.
double time_prepared_upload(CudaBackend& gpu, const std::vector<PreparedBlock>& prepared, bool& pinned) {
  std::size_t largest = 0;
  std::vector<HostArray<unsigned char>> staged;
  pinned = true;
  for (const auto& b : prepared) {
    const std::size_t bytes = prepared_bytes(b);
    largest = std::max(largest, bytes);
    HostArray<unsigned char>& h = staged.emplace_back(HostMemory::pinned);
    h.resize(bytes);
    std::size_t at = 0;
    const auto put = [&](const auto& v) {
      std::memcpy(h.data() + at, v.data(), byte_size(v));
      at += byte_size(v);
    };
    put(b.dense);
    put(b.slot);
    put(b.value);
    put(b.label);
    pinned = pinned && h.pinned();
  }
  const std::shared_ptr<void> device = allocate_device_bytes(gpu, largest);
  synchronize(gpu);
  auto* base = static_cast<unsigned char*>(device.get());
  return timed([&] {
    for (const auto& h : staged) {
      if (!h.empty()) copy_host_to_device_async(gpu, base, h.data(), h.size());
    }
    synchronize(gpu);
  });
}

// Per row, 1 when the label column's code names the model's positive class, else 0.
std::vector<float> binary_labels(const std::vector<PreparedBlock>& prepared, const ColumnInfo& label_column,
                                 const ModelFile& model) {
  if (model.classes.size() != 2) throw Error("bench: the model is not binary");
  std::vector<float> labels;
  for (const auto& b : prepared) {
    for (const float code : b.label) {
      if (!(code >= 0 && code < static_cast<float>(label_column.categories.size()))) {
        throw Error("bench: a synthetic label is missing");
      }
      labels.push_back(label_column.categories[static_cast<std::size_t>(code)] == model.classes[1] ? 1.0f : 0.0f);
    }
  }
  return labels;
}

void print_stage_progress(const Stage& s, const Ceilings& c) {
  std::cerr << "bench: " << s.key << ": ";
  if (!s.seconds) {
    std::cerr << s.note << "\n";
    return;
  }
  std::cerr << cell(*s.seconds, "%.4g") << " s, " << cell(*s.gbps(), "%.3f") << " GB/s, "
            << cell(*s.rows_per_second(), "%.4g") << " rows/s, " << cell(*s.fraction(c), "%.3f") << " of "
            << s.ceiling << "\n";
}

nlohmann::ordered_json optional_number(std::optional<double> v) {
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

void run_end_to_end(const Args& args) {
  check_bench_size(args.rows, args.features);
  const DeviceContext ctx = DeviceContext::select(args.device);
  const ScratchDirectory scratch;
  // Held: the blocks, the prepared blocks and the training rows; written: the file, deflated too.
  check_bench_fits(args.rows, args.features, 3, 2, scratch.path());
  const std::filesystem::path plain = scratch.path() / "bench.h5";
  const std::filesystem::path deflated = scratch.path() / "bench-deflate.h5";
  const std::filesystem::path model_path = scratch.path() / "exact.h5";
  const std::filesystem::path scored = scratch.path() / "scored.h5";
  const std::int64_t columns = args.features + 1;
  const std::size_t float_bytes = static_cast<std::size_t>(args.rows) * static_cast<std::size_t>(columns) * 4;
  const double bytes = static_cast<double>(float_bytes);
  const std::int64_t block_rows = TableReadOptions{}.block_rows;

  const SynthReport written = write_bench_table(plain, args.rows, args.features, 0);
  write_bench_table(deflated, args.rows, args.features, 1);  // the same rows (the same seed)
  const std::string label = written.truth.label_name;

  std::cerr << "bench: measuring the ceilings (memcpy, pread" << (ctx.is_cuda() ? ", device copy, pinned h2d" : "")
            << ") on " << ctx.description() << "\n";
  Ceilings ceilings = measure_ceilings(ctx, plain, float_bytes,
                                       static_cast<std::size_t>(block_rows) * static_cast<std::size_t>(columns) * 4);
  std::cerr << "bench: ceilings: memcpy " << cell(ceilings.memcpy_gbps, "%.3f") << " GB/s, pread "
            << cell(ceilings.pread_gbps, "%.3f") << " GB/s";
  if (ctx.is_cuda()) {
    std::cerr << ", device copy " << cell(*ceilings.device_copy_gbps, "%.3f") << " GB/s, pinned h2d "
              << cell(*ceilings.pinned_h2d_gbps, "%.3f") << " GB/s";
  }
  std::cerr << "\n";

  std::vector<Stage> stages;
  constexpr int kStages = 9;
  const auto begin_stage = [&](const char* key, const char* what) {
    std::cerr << "bench: [" << stages.size() + 1 << "/" << kStages << "] " << key << ": " << what << "\n";
  };
  const auto end_stage = [&](Stage s) {
    print_stage_progress(s, ceilings);
    stages.push_back(std::move(s));
  };
  const char* host_ceiling = ctx.is_cuda() ? "pinned_h2d" : "memcpy";

  begin_stage("read", "TableReader block reads of the uncompressed file");
  TableReadOptions read;
  read.block_rows = block_rows;
  end_stage({"read", "read", "pread", faster_of_rounds([&] { return time_raw_read(plain, read); }), args.rows, bytes, ""});

  begin_stage("decode", "TableReader block reads of the deflate-compressed file");
  end_stage({"decode", "decode (deflate)", "pread", faster_of_rounds([&] { return time_raw_read(deflated, read); }),
             args.rows, bytes, ""});

  begin_stage("prepare", "profile, fit and transform of the blocks in memory");
  const TableBlocks table = read_all_blocks(plain);
  std::vector<PreparedBlock> prepared;
  end_stage({"prepare", "prepare", host_ceiling,
             faster_of_rounds([&] { return timed([&] { prepare_blocks(ctx, table, label, prepared); }); }), args.rows,
             bytes, ""});
  double upload_bytes = 0;
  for (const auto& b : prepared) upload_bytes += static_cast<double>(prepared_bytes(b));

  begin_stage("host_to_device", "copies of the prepared blocks to the device");
  if (ctx.is_cuda()) {
    bool pinned = false;
    const double seconds = faster_of_rounds([&] { return time_prepared_upload(ctx.cuda(), prepared, pinned); });
    end_stage({"host_to_device", "host->device", "pinned_h2d", seconds, args.rows, upload_bytes,
               pinned ? "from pinned host memory" : "from pageable host memory (the driver refused to pin)"});
  } else {
    end_stage({"host_to_device", "host->device", "pinned_h2d", std::nullopt, args.rows, upload_bytes, "n/a (cpu)"});
  }

  const char* train_ceiling = ctx.is_cuda() ? "device_copy" : "memcpy";
  const auto train_stage = [&](TrainMode mode, const char* key, const char* name, const std::filesystem::path& out,
                               std::int64_t stream_window_rows, const char* ceiling) {
    begin_stage(key, (std::string("training, --mode ") + name + ", " + std::to_string(kEpochs) +
                      " epochs, the faster kept").c_str());
    const TrainReport report =
        train_bench_mode(ctx, plain, out, label, mode, kEpochs, kBatch, true, stream_window_rows);
    if (report.outcome.history.empty()) throw Error("bench: the trainer ran no epoch");
    if (stream_window_rows > 0 && !report.streamed) throw Error("bench: the streamed run was not streamed");
    double epoch = INFINITY;
    for (const auto& e : report.outcome.history) epoch = std::min(epoch, e.seconds);
    const double epoch_bytes = static_cast<double>(report.train_rows) * static_cast<double>(columns) * 4;
    end_stage({key, std::string("train ") + name, ceiling, epoch, report.train_rows, epoch_bytes, ""});
  };
  train_stage(TrainMode::exact, "train_exact", "exact", model_path, 0, train_ceiling);
  train_stage(TrainMode::parallel, "train_parallel", "parallel", scratch.path() / "parallel.h5", 0, train_ceiling);

  // Streamed: the bound first (what loading the windows costs, and the in-memory epoch), then the
  // streamed epochs, in about four windows of whole blocks.
  {
    const ModelFile exact = load_model(model_path);
    ceilings.overlap_io_seconds = faster_of_rounds([&] { return time_window_loads(plain, read, exact); });
    ceilings.overlap_compute_seconds = *stages[stages.size() - 2].seconds;  // train_exact
    const double epoch_bytes = static_cast<double>(stages[stages.size() - 2].bytes);
    ceilings.overlap_gbps =
        epoch_bytes / std::max(ceilings.overlap_io_seconds, ceilings.overlap_compute_seconds) / 1e9;
    std::cerr << "bench: overlap bound: loading every window " << cell(ceilings.overlap_io_seconds, "%.4f")
              << " s, an in-memory epoch " << cell(ceilings.overlap_compute_seconds, "%.4f") << " s\n";
    const std::int64_t blocks = (args.rows + block_rows - 1) / block_rows;
    const std::int64_t window_rows = std::max<std::int64_t>(1, blocks / 4) * block_rows;
    train_stage(TrainMode::exact, "train_streamed", "streamed", scratch.path() / "streamed.h5", window_rows,
                "overlap");
  }

  begin_stage("evaluate", "metrics over the exact model's predictions of every row");
  const ModelFile model = load_model(model_path);
  std::vector<float> predictions;
  {
    TableReader reader(plain, read);
    predict_table(ctx, model, reader, predictions);
  }
  const auto label_column = std::find_if(table.columns.begin(), table.columns.end(),
                                         [&](const ColumnInfo& c) { return c.name == label; });
  if (label_column == table.columns.end()) throw Error("bench: the synthetic table has no label column");
  const std::vector<float> labels = binary_labels(prepared, *label_column, model);
  if (labels.size() != predictions.size()) throw Error("bench: predictions and labels differ in length");
  MetricSet metrics;
  end_stage({"evaluate", "evaluate", host_ceiling, faster_of_rounds([&] {
               return timed([&] { metrics = compute_metrics(ctx, Task::binary, predictions, labels, {}, 2); });
             }),
             static_cast<std::int64_t>(labels.size()), static_cast<double>(labels.size()) * 2 * 4, ""});
  if (metrics.values.empty()) throw Error("bench: no metric was computed");
  std::cerr << "bench: evaluate: the exact model on its training rows:";
  for (const auto& [name, value] : metrics.values) std::cerr << " " << name << " " << cell(value, "%.4f");
  std::cerr << "\n";

  begin_stage("score", "score_file HDF5 -> HDF5 with the exact model");
  Scorer scorer(model_path, args.device);
  ScoreFileOptions score_options;
  score_options.read = read;
  ScoreFileReport score_report;
  const double score_seconds = faster_of_rounds(
      [&] { return timed([&] { score_report = score_file(scorer, plain, scored, score_options); }); });
  if (score_report.rows != args.rows) {
    throw Error("bench: scored " + std::to_string(score_report.rows) + " rows, not " + std::to_string(args.rows));
  }
  end_stage({"score", "score h5 -> h5", "pread", score_seconds, score_report.rows,
             static_cast<double>(score_report.rows) * static_cast<double>(score_report.input_columns) * 4, ""});

  const auto deflate_file_bytes = static_cast<std::int64_t>(std::filesystem::file_size(deflated));
  if (args.json) {
    nlohmann::ordered_json j = bench_json_header(ctx);
    j["run"] = {{"rows", args.rows},
                {"features", args.features},
                {"columns", columns},
                {"block_rows", block_rows},
                {"float32_bytes", float_bytes},
                {"file_bytes", ceilings.pread_bytes},
                {"deflate_file_bytes", deflate_file_bytes},
                {"epochs", kEpochs},
                {"batch", kBatch},
                {"rounds", kRounds}};
    j["ceilings"] = {{"memcpy_gbps", ceilings.memcpy_gbps},
                     {"memcpy_threads", ceilings.memcpy_threads},
                     {"memcpy_bytes", ceilings.copy_bytes},
                     {"pread_gbps", ceilings.pread_gbps},
                     {"pread_bytes", ceilings.pread_bytes},
                     {"device_copy_gbps", optional_number(ceilings.device_copy_gbps)},
                     {"pinned_h2d_gbps", optional_number(ceilings.pinned_h2d_gbps)},
                     {"device_copy_bytes", ctx.is_cuda() ? nlohmann::ordered_json(ceilings.copy_bytes)
                                                         : nlohmann::ordered_json(nullptr)},
                     {"overlap_gbps", ceilings.overlap_gbps},
                     {"overlap_io_seconds", ceilings.overlap_io_seconds},
                     {"overlap_compute_seconds", ceilings.overlap_compute_seconds}};
    nlohmann::ordered_json s = nlohmann::ordered_json::object();
    for (const Stage& stage : stages) {
      s[stage.key] = {{"seconds", optional_number(stage.seconds)},
                      {"rows", stage.rows},
                      {"bytes", stage.bytes},
                      {"gbps", optional_number(stage.gbps())},
                      {"rows_per_second", optional_number(stage.rows_per_second())},
                      {"ceiling", stage.ceiling},
                      {"ceiling_gbps", optional_number(stage.seconds ? ceilings.gbps(stage.ceiling)
                                                                     : std::nullopt)},
                      {"fraction_of_ceiling", optional_number(stage.fraction(ceilings))},
                      {"note", stage.note.empty() ? nlohmann::ordered_json(nullptr)
                                                  : nlohmann::ordered_json(stage.note)}};
    }
    j["stages"] = s;
    std::cout << j.dump() << "\n";
    return;
  }

  std::cout << "lathe bench: " << args.rows << " rows x " << args.features << " features and the label ("
            << cell(bytes / 1e6, "%.1f") << " MB of float32), blocks of " << block_rows << " rows, on "
            << ctx.description() << "\n"
            << "files: " << cell(static_cast<double>(ceilings.pread_bytes) / 1e6, "%.1f") << " MB uncompressed, "
            << cell(static_cast<double>(deflate_file_bytes) / 1e6, "%.1f") << " MB deflate level 1; each figure the faster of "
            << kRounds << " runs\n\n";
  std::cout << "ceilings (measured in this run)\n";
  const auto ceiling_line = [](const char* name, std::optional<double> gbps, const std::string& what) {
    char buffer[256];
    std::snprintf(buffer, sizeof buffer, "  %-12s %10s %s  %s", name, gbps ? cell(*gbps, "%.3f").c_str() : "n/a",
                  gbps ? "GB/s" : "    ", what.c_str());
    return std::string(buffer) + "\n";
  };
  const std::string copy_mb = cell(static_cast<double>(ceilings.copy_bytes) / 1e6, "%.1f") + " MB";
  std::cout << ceiling_line("memcpy", ceilings.memcpy_gbps,
                            "host to host, " + std::to_string(ceilings.memcpy_threads) + " threads, " + copy_mb)
            << ceiling_line("pread", ceilings.pread_gbps, "the uncompressed file's bytes, 1 MiB pread() calls, " + std::to_string(ceilings.memcpy_threads) +
                                " threads")
            << ceiling_line("device_copy", ceilings.device_copy_gbps,
                            ctx.is_cuda() ? "device to device, " + copy_mb : std::string("(cpu)"))
            << ceiling_line("pinned_h2d", ceilings.pinned_h2d_gbps,
                            ctx.is_cuda() ? "pinned host to device, " + copy_mb : std::string("(cpu)"))
            << ceiling_line("overlap", ceilings.overlap_gbps,
                            "a streamed epoch's bytes in max(I/O " + cell(ceilings.overlap_io_seconds, "%.4f") +
                                " s, compute " + cell(ceilings.overlap_compute_seconds, "%.4f") + " s)")
            << "\n";
  char header[256];
  std::snprintf(header, sizeof header, "%-18s %11s %12s %9s  %-12s %9s %11s", "stage", "seconds", "rows/s", "GB/s",
                "ceiling", "ceil GB/s", "of ceiling");
  std::cout << header << "\n";
  for (const Stage& s : stages) {
    char buffer[256];
    if (!s.seconds) {
      std::snprintf(buffer, sizeof buffer, "%-18s %11s %12s %9s  %-12s %9s %11s", s.label.c_str(), s.note.c_str(), "",
                    "", s.ceiling.c_str(), "", "");
    } else {
      std::snprintf(buffer, sizeof buffer, "%-18s %11.5g %12.4g %9.3f  %-12s %9s %11.3f", s.label.c_str(), *s.seconds,
                    *s.rows_per_second(), *s.gbps(), s.ceiling.c_str(), gbps_text(ceilings.gbps(s.ceiling)).c_str(),
                    *s.fraction(ceilings));
    }
    std::cout << buffer << "\n";
  }
  std::cout << "\nGB/s counts float32 bytes: the values read (read, decode, prepare, score), the prepared blocks "
               "(host->device), one epoch's rows (train), predictions and labels (evaluate); train seconds are one "
               "epoch.\n";
  for (const Stage& s : stages) {
    if (s.seconds && !s.note.empty()) std::cout << s.label << ": " << s.note << "\n";
  }
}

}  // namespace

std::vector<CLI::Option*> add_bench_end_to_end(CLI::App* bench) {
  auto args = std::make_shared<Args>();
  std::vector<CLI::Option*> options;
  options.push_back(add_whole_number_option(bench, "--rows", args->rows,
                                            "Synthetic rows N (at least " + std::to_string(kMinimumBenchRows) + ")")
                        ->capture_default_str()
                        ->check(at_least(1)));
  options.push_back(
      add_whole_number_option(bench, "--features", args->features,
                              "Numeric features D (at most " + std::to_string(kMaximumBenchFeatures) + ")")
          ->capture_default_str()
          ->check(at_least(1)));
  options.push_back(bench->add_flag("--json", args->json, "One JSON object on stdout instead of the tables"));
  add_device_option(bench, args->device);
  options.push_back(bench->get_option("--device"));
  bench->callback([bench, args] {
    if (!bench->get_subcommands().empty()) return;  // `bench train` or `bench score` ran
    run_end_to_end(*args);
  });
  return options;
}

}  // namespace lathe::cli
