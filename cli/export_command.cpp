// `lathe export` (placeholder; being written).
#include "cli/commands.h"
#include "runtime/error.h"

namespace lathe::cli {

void add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "(not yet implemented)");
  cmd->callback([] { throw InputError("lathe export is not implemented yet"); });
}

}  // namespace lathe::cli
