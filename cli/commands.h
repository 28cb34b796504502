// The subcommands of `lathe`, each registered explicitly by cli/main.cpp.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace lathe::cli {

void add_info_command(CLI::App& app);
void add_import_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_synth_command(CLI::App& app);
void add_prepare_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
// `lathe bench` (the data path end to end) and its subcommands `lathe bench train` and
// `lathe bench score`.
void add_bench_command(CLI::App& app);
void add_score_command(CLI::App& app);   // cli/score_command.cpp
void add_export_command(CLI::App& app);  // cli/export_command.cpp
void add_drift_command(CLI::App& app);   // cli/drift_command.cpp
void add_report_command(CLI::App& app);  // cli/report_command.cpp

// Thrown by a command that has printed its result and must still end with a non-zero exit code
// (`lathe drift`: 3 when drift crosses the alert threshold). cli/main.cpp returns `code` and prints
// nothing more. Not a std::exception, so no handler mistakes it for an error.
struct ExitCode {
  int code = 0;
};

// `--device auto|cpu|cuda[:N]`, for every command that computes.
inline void add_device_option(CLI::App* command, std::string& device) {
  command->add_option("--device", device, "Where to compute: auto, cpu, cuda or cuda:N")
      ->default_val("auto");
}

}  // namespace lathe::cli
