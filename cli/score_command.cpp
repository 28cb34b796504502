// `lathe score` (placeholder; being written).
#include "cli/commands.h"
#include "runtime/error.h"

namespace lathe::cli {

void add_score_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("score", "(not yet implemented)");
  cmd->callback([] { throw InputError("lathe score is not implemented yet"); });
}

}  // namespace lathe::cli
