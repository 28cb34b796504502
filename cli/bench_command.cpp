// `lathe bench`: measurements of this machine through the real pipeline, each set beside the
// machine's own ceiling measured in the same run (STYLE.md rule 9).
//
// `lathe bench train [--rows N] [--features D] [--batch B] [--epochs E] [--workers W,...]
// [--device ...] [--json]`:
// a synthetic binary table (io/synth.h) of N rows and D numeric features is written to a temporary
// directory, then trained by `train_table` (the path `lathe train` takes: prepared rows held in
// memory, on the device on the GPU backend) in exact mode (steps handed over per epoch: CUDA graphs
// on the GPU), again in exact mode with one train_step call per step (the launch-per-step
// baseline), and in parallel mode, with no validation split and no early stopping. Per mode:
// seconds per epoch (the median of the epochs after the first, which pays the upload; the only
// epoch when E is 1), rows/s, the last epoch's training loss, and in exact mode the step latency
// (epoch seconds / ceil(N / B) steps). Parallel mode runs once per --workers count (default 0: the
// device's choice), so that one run shows the trade between throughput and the loss an epoch
// reaches as workers are added. The ceiling is one copy of the bytes an epoch must read at least,
// N (D + 1) 4 bytes (float32 features and label): on CUDA a device-to-device copy
// (time_device_copy), on the CPU a memcpy split over up to two OpenMP threads, timed over at least
// 64 MiB and scaled to those bytes; the fraction of the ceiling is copy seconds / epoch seconds. A
// table goes to stdout (or, with --json, one JSON object); progress to stderr. The temporary
// directory is removed afterwards.
//
// `lathe bench score [--rows N] [--features D] [--block-rows B] [--cold] [--device ...] [--json]`:
// a synthetic binary table of N rows and D numeric features (uncompressed, so the read measures
// HDF5 and the storage rather than deflate) and a model trained on it for one epoch, then, in
// the same run, the raw read of that file (TableReader block reads only, nothing done with the
// values) and the scoring of it HDF5 to HDF5 (score_file: what `lathe score` runs per input). Each
// is timed twice, alternating, and the faster kept. Reported: seconds, rows/s and GB/s of the
// float32 values read (N (D + 1) 4 bytes) for both, and scoring as a fraction of the raw read
// (read seconds / scoring seconds; the goal is at least 0.8). The file is read from the page cache
// (it was just written), where the "raw read" is a memory copy; with --cold the file is evicted
// from the page cache before each timed pass, so both read the disk, as a scoring job over files
// larger than memory does. --cold is refused (a usage error) where the scratch folder is on a tmpfs
// or ramfs, whose files cannot leave memory: the "cold" figure would be a warm one.
//
// The end-to-end `lathe bench` (no subcommand) is cli/bench_stages.cpp; the scratch directory, the
// ceiling timings and the raw read all three use are cli/bench_common.h.
#include <nlohmann/json.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/bench_common.h"
#include "cli/bench_stages.h"
#include "cli/commands.h"
#include "io/score_file.h"
#include "io/synth.h"
#include "io/train_table.h"
#include "runtime/cuda_backend.h"
#include "runtime/device_context.h"
#include "runtime/error.h"
#include "lathe/scorer.h"

namespace lathe::cli {

namespace {

struct Ceiling {
  std::string source;  // "cuda device-to-device copy" or "memcpy (N threads)"
  double seconds = 0;  // one copy of `bytes`
  std::size_t measured_bytes = 0;  // the copy timed, scaled to `bytes`
};

Ceiling measure_ceiling(const DeviceContext& ctx, std::size_t bytes) {
  constexpr int kRepetitions = 10;
  // At least 64 MiB, as the end-to-end run's copies: a copy of a small table's few kilobytes times
  // the threads' wake-up, not the bandwidth (--rows 1000 timed 0.25 GB/s, epochs at 12x "the ceiling").
  constexpr std::size_t kMinimumCopyBytes = std::size_t{64} << 20;
  Ceiling c;
  c.measured_bytes = std::max(bytes, kMinimumCopyBytes);
  double measured_seconds = 0;
  if (ctx.is_cuda()) {
    c.source = "cuda device-to-device copy";
    measured_seconds = time_device_copy(ctx.cuda(), c.measured_bytes, kRepetitions);
  } else {
    const int threads = std::min(2, omp_get_max_threads());
    c.source = "memcpy (" + std::to_string(threads) + (threads == 1 ? " thread)" : " threads)");
    measured_seconds = time_host_memcpy(c.measured_bytes, threads, kRepetitions);
  }
  c.seconds = measured_seconds * static_cast<double>(bytes) / static_cast<double>(c.measured_bytes);
  return c;
}

// The median of the epochs after the first (the first alone when there is one).
double typical_epoch_seconds(const std::vector<EpochRecord>& history) {
  if (history.empty()) throw Error("bench: the trainer ran no epoch");
  std::vector<double> s;
  for (std::size_t i = history.size() > 1 ? 1 : 0; i < history.size(); ++i) s.push_back(history[i].seconds);
  std::sort(s.begin(), s.end());
  const std::size_t n = s.size();
  return n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

struct ModeResult {
  double epoch_seconds = 0;
  double rows_per_second = 0;
  double fraction_of_ceiling = 0;
  double last_train_loss = NAN;  // the last epoch's mean training loss
};

// --rows and --features of the synthetic data, as `lathe bench score` and `lathe bench train` take them.
void add_size_options(CLI::App* cmd, std::int64_t& rows, int& features) {
  add_whole_number_option(cmd, "--rows", rows,
                          "Synthetic rows N (at least " + std::to_string(kMinimumBenchRows) + ")")
      ->capture_default_str()
      ->check(at_least(1));
  add_whole_number_option(cmd, "--features", features,
                          "Numeric features D (at most " + std::to_string(kMaximumBenchFeatures) + ")")
      ->capture_default_str()
      ->check(at_least(1));
}

void add_bench_score_command(CLI::App* bench) {
  auto* cmd = bench->add_subcommand(
      "score", "Rows/s and GB/s of scoring HDF5 to HDF5 beside the raw block read of the same input");
  struct Args {
    std::int64_t rows = 1'000'000;
    int features = 32;
    std::int64_t block_rows = 65536;
    std::string device = "auto";
    bool json = false;
    bool cold = false;
  };
  auto args = std::make_shared<Args>();
  add_size_options(cmd, args->rows, args->features);
  cmd->add_flag("--cold", args->cold,
                "Evict the input from the page cache before each timed read and scoring, so both "
                "read the disk (refused where TMPDIR is a tmpfs or ramfs, whose files cannot be "
                "evicted)");
  add_whole_number_option(cmd, "--block-rows", args->block_rows, "Rows per block read and scored")
      ->capture_default_str()
      ->check(at_least(1));
  cmd->add_flag("--json", args->json, "One JSON object on stdout instead of the table");
  add_device_option(cmd, args->device);
  cmd->callback([args] {
    check_bench_size(args->rows, args->features);
    const DeviceContext ctx = DeviceContext::select(args->device);
    const ScratchDirectory scratch;
    // Refused rather than noted: a "cold" figure read from memory would be a warm one under the
    // cold name, in the table and the JSON's "cache" alike.
    if (args->cold) {
      if (const std::string problem = page_cache_eviction_problem(scratch.path());
          !problem.empty()) {
        throw UsageError("--cold: " + problem);
      }
    }
    // Held: the training rows of the model it scores with; written: the file.
    check_bench_fits(args->rows, args->features, 1, 1, scratch.path());
    const std::filesystem::path data = scratch.path() / "bench.h5";
    const std::filesystem::path model = scratch.path() / "model.h5";
    const std::filesystem::path scored = scratch.path() / "scored.h5";

    const SynthReport written = write_bench_table(data, args->rows, args->features, 0);

    std::cerr << "bench: training a model for one epoch\n";
    TrainTableOptions train;
    train.preparation.label = written.truth.label_name;
    train.task = Task::binary;
    train.valid_fraction = 0;
    train.trainer.epochs = 1;
    train.trainer.patience = 0;
    train.trainer.progress = false;
    train.read.block_rows = args->block_rows;
    train_table(ctx, data, model, train);

    Scorer scorer(model, args->device);
    ScoreFileOptions options;
    options.read.block_rows = args->block_rows;
    TableReadOptions read;
    read.block_rows = args->block_rows;
    double read_seconds = INFINITY, score_seconds = INFINITY;
    std::int64_t columns = 0;
    for (int repetition = 0; repetition < 2; ++repetition) {
      std::cerr << "bench: raw read and scoring, round " << repetition + 1 << " of 2 on " << scorer.device_description()
                << "\n";
      if (args->cold) evict_from_page_cache(data);
      read_seconds = std::min(read_seconds, time_raw_read(data, read));
      if (args->cold) evict_from_page_cache(data);
      const auto start = std::chrono::steady_clock::now();
      const ScoreFileReport report = score_file(scorer, data, scored, options);
      score_seconds = std::min(score_seconds, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      columns = report.input_columns;
      if (report.rows != args->rows) throw Error("bench: scored " + std::to_string(report.rows) + " rows, not " + std::to_string(args->rows));
    }
    const double rows = static_cast<double>(args->rows);
    const double bytes = rows * static_cast<double>(columns) * 4.0;
    const double fraction = read_seconds / score_seconds;
    if (args->json) {
      nlohmann::ordered_json j = bench_json_header(ctx);
      j["device"] = scorer.device_description();
      j["rows"] = args->rows;
      j["features"] = args->features;
      j["columns"] = columns;
      j["block_rows"] = args->block_rows;
      j["cache"] = args->cold ? "cold" : "hot";
      j["float32_bytes"] = args->rows * columns * 4;
      j["raw_read"] = {{"seconds", read_seconds},
                       {"rows_per_second", rows / read_seconds},
                       {"gbps", bytes / read_seconds / 1e9}};
      j["score"] = {{"seconds", score_seconds},
                    {"rows_per_second", rows / score_seconds},
                    {"gbps", bytes / score_seconds / 1e9}};
      j["fraction_of_raw_read"] = fraction;
      j["goal"] = 0.8;
      std::cout << j.dump() << "\n";
      return;
    }
    std::cout << "bench score: " << args->rows << " rows x " << columns << " columns read (" << args->features
              << " features and the label), blocks of " << args->block_rows << " rows, on " << scorer.device_description()
              << (args->cold ? ", input read from the disk (evicted from the page cache before each pass)"
                             : ", input in the page cache")
              << "\n";
    char header[128];
    std::snprintf(header, sizeof header, "%-16s %12s %14s %10s %12s", "stage", "seconds", "rows/s", "GB/s", "of raw read");
    std::cout << header << "\n";
    const auto line = [&](const char* stage, double seconds) {
      char buffer[128];
      std::snprintf(buffer, sizeof buffer, "%-16s %12.6g %14.4g %10.3f %12.3f", stage, seconds, rows / seconds,
                    bytes / seconds / 1e9, read_seconds / seconds);
      return std::string(buffer) + "\n";
    };
    std::cout << line("raw read", read_seconds) << line("score h5 -> h5", score_seconds)
              << "scoring runs at " << cell(fraction, "%.3f") << " of the raw read (goal: 0.8)\n";
  });
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand(
      "bench", "Measure this machine's throughput beside its own ceilings: with no subcommand, every stage "
               "end to end on synthetic data");
  bench->require_subcommand(0, 1);
  const std::vector<CLI::Option*> end_to_end_options = add_bench_end_to_end(bench);
  add_bench_score_command(bench);

  auto* cmd = bench->add_subcommand(
      "train", "Epoch time and rows/s of exact and parallel training on device-resident synthetic data, "
               "beside the copy-bandwidth floor of N (D + 1) 4 bytes");
  struct Args {
    std::int64_t rows = 1'000'000;
    int features = 32;
    std::int64_t batch = 256;
    std::int32_t epochs = 5;
    std::string workers_list = "0";     // --workers as given
    std::vector<std::int32_t> workers;  // and as numbers
    std::string device = "auto";
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  add_size_options(cmd, args->rows, args->features);
  add_whole_number_option(cmd, "--batch", args->batch, "Minibatch rows B")
      ->capture_default_str()
      ->check(at_least(1));
  cmd->add_option("--workers", args->workers_list,
                  "Parallel mode's worker counts, comma separated, one run each (0 = the device's choice)")
      ->type_name("INT")
      ->capture_default_str()
      ->check(whole_number_list<std::int32_t>(0));
  add_whole_number_option(cmd, "--epochs", args->epochs,
                          "Epochs per mode (the first is not counted when there are more)")
      ->capture_default_str()
      ->check(at_least(1));
  cmd->add_flag("--json", args->json, "One JSON object on stdout instead of the table");
  add_device_option(cmd, args->device);
  cmd->callback([args] {
    args->workers = whole_number_list_values<std::int32_t>(args->workers_list);
    check_bench_size(args->rows, args->features);
    const DeviceContext ctx = DeviceContext::select(args->device);
    const ScratchDirectory scratch;
    // Held: the ceiling's two copies, then the training rows; written: the file.
    check_bench_fits(args->rows, args->features, 2, 1, scratch.path());
    const std::filesystem::path data = scratch.path() / "bench.h5";

    const SynthReport written = write_bench_table(data, args->rows, args->features, 0);

    const std::size_t bytes = static_cast<std::size_t>(args->rows) * static_cast<std::size_t>(args->features + 1) * 4;
    std::cerr << "bench: timing the ceiling on " << ctx.description() << "\n";
    const Ceiling ceiling = measure_ceiling(ctx, bytes);

    const auto run_mode = [&](TrainMode mode, const char* name, bool step_graphs = true, std::int32_t workers = 0) {
      std::cerr << "bench: training, --mode " << name << (workers > 0 ? ", " + std::to_string(workers) + " workers" : "")
                << "\n";
      const TrainReport report = train_bench_mode(ctx, data, scratch.path() / (std::string(name) + ".h5"),
                                                  written.truth.label_name, mode, args->epochs, args->batch,
                                                  step_graphs, 0, workers);
      ModeResult r;
      r.epoch_seconds = typical_epoch_seconds(report.outcome.history);
      if (!report.outcome.history.empty()) r.last_train_loss = report.outcome.history.back().train_loss;
      r.rows_per_second = static_cast<double>(report.train_rows) / std::max(r.epoch_seconds, 1e-12);
      r.fraction_of_ceiling = ceiling.seconds / std::max(r.epoch_seconds, 1e-12);
      return r;
    };
    const ModeResult exact = run_mode(TrainMode::exact, "exact");
    std::cerr << "bench: exact mode again, one train_step call per step (no CUDA graph)\n";
    const ModeResult exact_single = run_mode(TrainMode::exact, "exact-single", false);
    std::vector<ModeResult> parallel_runs;
    for (const std::int32_t w : args->workers) parallel_runs.push_back(run_mode(TrainMode::parallel, "parallel", true, w));
    const ModeResult& parallel = parallel_runs.front();
    // ceil(N / B), without the overflow of N + B - 1 at --batch 9223372036854775807.
    const std::int64_t steps = args->rows / args->batch + (args->rows % args->batch != 0);
    const double step_seconds = exact.epoch_seconds / static_cast<double>(steps);
    // The rows a step takes on average: a batch above N takes the N rows.
    const double step_rows = static_cast<double>(args->rows) / static_cast<double>(steps);
    const double ceiling_gbps = static_cast<double>(bytes) / ceiling.seconds / 1e9;
    const double rows = static_cast<double>(args->rows);

    if (args->json) {
      nlohmann::ordered_json j = bench_json_header(ctx);
      j.update(nlohmann::ordered_json{
          {"device", ctx.description()},
          {"rows", args->rows},
          {"features", args->features},
          {"columns", args->features + 1},
          {"float32_bytes", bytes},
          {"batch", args->batch},
          {"epochs", args->epochs},
          {"ceiling_source", ceiling.source},
          {"ceiling_bytes", bytes},
          {"ceiling_measured_bytes", ceiling.measured_bytes},
          {"ceiling_seconds", ceiling.seconds},
          {"ceiling_gbps", ceiling_gbps},
          {"exact",
           {{"epoch_seconds", exact.epoch_seconds},
            {"rows_per_second", exact.rows_per_second},
            {"steps", steps},
            {"step_microseconds", step_seconds * 1e6},
            {"fraction_of_ceiling", exact.fraction_of_ceiling}}},
          {"exact_single_launches",
           {{"epoch_seconds", exact_single.epoch_seconds},
            {"rows_per_second", exact_single.rows_per_second},
            {"step_microseconds", exact_single.epoch_seconds / static_cast<double>(steps) * 1e6},
            {"fraction_of_ceiling", exact_single.fraction_of_ceiling}}},
          {"parallel",
           {{"epoch_seconds", parallel.epoch_seconds},
            {"rows_per_second", parallel.rows_per_second},
            {"fraction_of_ceiling", parallel.fraction_of_ceiling},
            {"workers", args->workers.front()},
            {"last_train_loss", parallel.last_train_loss}}}});
      j["exact"]["last_train_loss"] = exact.last_train_loss;
      nlohmann::ordered_json by_workers = nlohmann::ordered_json::array();
      for (std::size_t i = 0; i < parallel_runs.size(); ++i) {
        by_workers.push_back({{"workers", args->workers[i]},
                              {"epoch_seconds", parallel_runs[i].epoch_seconds},
                              {"rows_per_second", parallel_runs[i].rows_per_second},
                              {"fraction_of_ceiling", parallel_runs[i].fraction_of_ceiling},
                              {"last_train_loss", parallel_runs[i].last_train_loss}});
      }
      j["parallel_by_workers"] = by_workers;
      std::cout << j.dump() << "\n";
      return;
    }
    std::cout << "bench train: " << args->rows << " rows x " << args->features << " features, batch "
              << args->batch << ", " << args->epochs << " epochs per mode, on " << ctx.description() << "\n"
              << "ceiling: " << ceiling.source << " of " << bytes << " bytes, " << cell(ceiling_gbps, "%.2f")
              << " GB/s"
              << (ceiling.measured_bytes != bytes ? " (timed over " + std::to_string(ceiling.measured_bytes) + " bytes)"
                                                  : std::string())
              << "\n";
    const auto line = [](const std::string& stage, double seconds, double rows_per_second, double fraction,
                         double loss = NAN) {
      char buffer[160];
      std::snprintf(buffer, sizeof buffer, "%-20s %14.6g %14.4g %12.4f %12s", stage.c_str(), seconds, rows_per_second,
                    fraction, std::isnan(loss) ? "" : cell(loss, "%.6f").c_str());
      return std::string(buffer) + "\n";
    };
    char header[160];
    std::snprintf(header, sizeof header, "%-20s %14s %14s %12s %12s", "stage", "seconds", "rows/s", "of ceiling",
                  "train loss");
    std::cout << header << "\n"
              << line("ceiling copy", ceiling.seconds, rows / ceiling.seconds, 1.0)
              << line("exact epoch", exact.epoch_seconds, exact.rows_per_second, exact.fraction_of_ceiling,
                      exact.last_train_loss)
              << line("exact step", step_seconds, step_rows / step_seconds,
                      ceiling.seconds / static_cast<double>(steps) / step_seconds)
              << line("exact, no graph", exact_single.epoch_seconds, exact_single.rows_per_second,
                      exact_single.fraction_of_ceiling, exact_single.last_train_loss);
    for (std::size_t i = 0; i < parallel_runs.size(); ++i) {
      const std::int32_t w = args->workers[i];
      std::cout << line("parallel epoch" + (w > 0 ? ", " + std::to_string(w) + " w" : std::string()),
                        parallel_runs[i].epoch_seconds, parallel_runs[i].rows_per_second,
                        parallel_runs[i].fraction_of_ceiling, parallel_runs[i].last_train_loss);
    }
  });

  // The end-to-end run's options belong before no subcommand: `lathe bench --rows 5 train` is a
  // usage error, not a `bench train` with its own defaults.
  for (CLI::App* subcommand : {bench->get_subcommand("train"), bench->get_subcommand("score")}) {
    for (CLI::Option* option : end_to_end_options) subcommand->excludes(option);
  }
}

}  // namespace lathe::cli
