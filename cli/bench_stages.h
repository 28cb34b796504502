// The end-to-end `lathe bench` (no subcommand): every stage of the data path timed on synthetic
// data beside this machine's ceilings measured in the same run. See cli/bench_stages.cpp.
#pragma once

#include <CLI/CLI.hpp>

#include <vector>

namespace lathe::cli {

// Adds the end-to-end run to `bench`: its options (--rows, --features, --json, --device) and a
// callback that runs when no subcommand was given. Returns those options, which the subcommands
// exclude (`lathe bench --rows 5 train` is a usage error rather than a run with the defaults).
std::vector<CLI::Option*> add_bench_end_to_end(CLI::App* bench);

}  // namespace lathe::cli
