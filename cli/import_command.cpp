#include "cli/commands.h"
namespace lathe::cli {
void add_import_command(CLI::App& app) { app.add_subcommand("import", "Import a CSV file to HDF5 (not yet)"); }
}  // namespace lathe::cli
