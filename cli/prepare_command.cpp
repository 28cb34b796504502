// `lathe prepare IN.h5 OUT.h5 [--label COL] [--impute ...] [--scale ...] [--clip ...] [--dedup]
// [--cross ...] [--hash-buckets N] [--missing-indicators] [--drop COLS]`: the preparation stage on
// a file.
// `lathe prepare NEW.h5 OUT.h5 --from PREPARED.h5|MODEL.h5`: the fitted preparation stored there,
// applied to NEW without refitting (the preparation options are then a usage error).
#include <chrono>
#include <iostream>

#include "cli/commands.h"
#include "cli/note_printer.h"
#include "cli/output_paths.h"
#include "cli/preparation_options.h"
#include "io/prepare_table.h"
#include "io/run_options.h"
#include "runtime/device_context.h"
#include "runtime/error.h"
#include "runtime/message_names.h"

namespace lathe::cli {

void add_prepare_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "prepare", "Impute, deduplicate, clip, scale, encode and cross a table; write it prepared");
  struct Args {
    std::string in, out, device = "auto", group, from;
    PreparationArgs preparation;
    bool dedup = false, quiet = false;
    std::int64_t block_rows = 65536;
    int compression = 1;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("in", args->in, "Input HDF5 table (any layout)")->required();
  cmd->add_option("out", args->out, "Output HDF5 file, columnar layout")->required();
  add_preparation_options(cmd, args->preparation);
  cmd->add_option("--from", args->from,
                  "Apply the fitted preparation stored in a file written by lathe prepare, or in a model file "
                  "(for a model trained on prepared data: that data's preparation), instead of fitting one on IN");
  cmd->add_flag("--dedup", args->dedup, "Remove exact duplicate rows (all columns, label included)");
  cmd->add_option("--group", args->group, "Group (columnar), pandas key or matrix dataset to read")
      ->check(non_empty("a group, pandas key or dataset name"));
  add_whole_number_option(cmd, "--block-rows", args->block_rows,
                          "Rows per block streamed through the device")
      ->capture_default_str()
      ->check(at_least(1));
  add_whole_number_option(cmd, "--compression", args->compression,
                          "Deflate level of the output, 0 to 9")
      ->capture_default_str()
      ->check(in_range(0, 9));
  cmd->add_flag("--quiet", args->quiet, "No progress on stderr");
  add_device_option(cmd, args->device);
  cmd->callback([args, cmd] {
    const auto start = std::chrono::steady_clock::now();
    // An empty --from reads as no option: NEW would get a preparation fitted on itself.
    refuse_empty_paths(*cmd, {"in", "out", "--from"});
    const WrittenFile output{"the output", args->out, "the prepared table"};
    check_output_paths({output}, {{"the input file", args->in}, {"the --from file", args->from}});
    refuse_replacing_another_kind(output, ExistingFile::table);
    PrepareTableOptions options;
    if (args->from.empty()) {
      options.preparation = parse_preparation_args(args->preparation);
    } else {
      // --from applies a preparation fitted before: an option that would fit one contradicts it.
      // (--label may repeat the stored preparation's label; prepare_table checks it.)
      for (const char* key : kPreparationOptions) {
        const std::string name = std::string("--") + key;
        if (cmd->get_option(name)->count() > 0) {
          throw UsageError(name + " fits a preparation, but --from " + args->from +
                           " applies one fitted before, unchanged: give one or the other");
        }
      }
      options.preparation.label = args->preparation.label;
      options.from = args->from;
    }
    options.dedup = args->dedup;
    options.read.group = args->group;
    options.read.block_rows = args->block_rows;
    options.deflate_level = args->compression;
    options.progress = !args->quiet;
    const DeviceContext ctx = DeviceContext::select(args->device);
    const PrepareTableReport report = prepare_table(ctx, args->in, args->out, options);
    print_notes(std::cerr, "prepare: note: ", report.notes);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "prepared " << counted(report.rows_out, "row") << " x " << counted(report.columns_out, "column")
              << " -> "
              << args->out;
    if (!report.applied.empty()) std::cout << " with " << report.applied << " (not refitted)";
    if (args->dedup) {
      std::cout << " (" << report.duplicates << " duplicate rows removed";
      if (report.hash_collisions) std::cout << ", " << report.hash_collisions << " hash collisions verified apart";
      std::cout << ")";
    }
    std::cout << " on " << ctx.description() << " in " << seconds << " s\n";
  });
}

}  // namespace lathe::cli
