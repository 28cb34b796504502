// `lathe drift` (placeholder; being written).
#include "cli/commands.h"
#include "runtime/error.h"

namespace lathe::cli {

void add_drift_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("drift", "(not yet implemented)");
  cmd->callback([] { throw InputError("lathe drift is not implemented yet"); });
}

}  // namespace lathe::cli
