// `lathe synth --task regression|binary|multiclass --rows N --features D --out FILE [...]`: writes
// a synthetic table with known ground truth (see io/synth.h) and prints one summary line.
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/output_paths.h"
#include "io/synth.h"

namespace lathe::cli {

void add_synth_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "synth", "Write a synthetic table with known ground truth (for tests and benchmarks)");
  struct Args {
    SynthOptions options;
    std::string task, layout = "columnar", out;
    bool quiet = false;
  };
  auto args = std::make_shared<Args>();
  SynthOptions& o = args->options;
  cmd->add_option("--task", args->task, "What the label is")
      ->required()
      ->transform(CLI::IsMember({"regression", "binary", "multiclass"}, CLI::ignore_case));
  add_whole_number_option(cmd, "--rows", o.rows, "Rows to write")->required();
  add_whole_number_option(cmd, "--features", o.features, "Numeric features")->required();
  cmd->add_option("--out", args->out, "Output HDF5 file (written under a temporary name)")
      ->required();
  // The defaults are the library's (SynthOptions).
  add_whole_number_option(cmd, "--categorical", o.categorical, "Categorical features")
      ->capture_default_str();
  add_whole_number_option(cmd, "--classes", o.classes, "Classes (multiclass)")
      ->capture_default_str();
  cmd->add_option("--missing-rate", o.missing_rate, "Fraction of feature values made missing")
      ->capture_default_str();
  cmd->add_option("--duplicate-rate", o.duplicate_rate,
                  "Fraction of rows that exactly repeat one of the previous 1024 rows")
      ->capture_default_str();
  add_whole_number_option(cmd, "--seed", o.seed,
                          "Random seed; the same options give the same file contents")
      ->capture_default_str();
  cmd->add_option("--layout", args->layout, "columnar (one dataset per column) or matrix (X and y)")
      ->capture_default_str()
      ->transform(CLI::IsMember({"columnar", "matrix"}, CLI::ignore_case));
  add_whole_number_option(cmd, "--chunk-rows", o.chunk_rows, "Rows per HDF5 chunk")
      ->capture_default_str();
  add_whole_number_option(cmd, "--compression", o.deflate_level, "Deflate level, 0 (none) to 9")
      ->capture_default_str();
  cmd->add_flag("--quiet", args->quiet, "No progress on stderr");
  cmd->callback([args, cmd] {
    refuse_empty_paths(*cmd, {"--out"});
    const WrittenFile output{"--out", args->out, "the synthetic table"};
    check_output_paths({output}, {});
    refuse_replacing_another_kind(output, ExistingFile::table);
    // IsMember has replaced the values with the spelling listed above.
    args->options.task = args->task == "binary"       ? SynthTask::binary
                         : args->task == "multiclass" ? SynthTask::multiclass
                                                      : SynthTask::regression;
    args->options.layout = args->layout == "matrix" ? Layout::matrix : Layout::columnar;
    args->options.progress = !args->quiet;
    const SynthReport report = write_synthetic(args->out, args->options);
    if (args->options.layout == Layout::matrix && args->options.categorical > 0 && !args->quiet) {
      std::cerr << "synth: note: the matrix layout has no categorical type: the " << args->options.categorical
                << " categorical columns are stored as numeric codes in X and train as numbers (use the columnar "
                   "layout to train them as categories)\n";
    }
    const std::string label =
        args->options.layout == Layout::matrix ? "y" : report.truth.label_name;
    std::cout << "synth: " << report.rows << " rows, " << report.columns << " columns ("
              << args->options.features << " numeric, " << args->options.categorical
              << " categorical, label '" << label << "'), " << report.duplicate_rows
              << " duplicate rows, " << report.missing_values << " missing values, "
              << synth_task_name(args->options.task) << ", " << layout_name(args->options.layout)
              << " layout -> " << args->out << "\n";
  });
}

}  // namespace lathe::cli
