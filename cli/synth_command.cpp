#include "cli/commands.h"
namespace lathe::cli {
void add_synth_command(CLI::App& app) { app.add_subcommand("synth", "Write synthetic data (not yet)"); }
}  // namespace lathe::cli
