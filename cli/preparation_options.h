// The data-preparation flags shared by `lathe prepare` and (next) `lathe train`, and their parsing
// into PreparationOptions.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "runtime/preparation.h"

namespace lathe::cli {

struct PreparationArgs {
  std::string label;
  std::string impute = "mean";     // KIND or COL=KIND items, comma separated
  std::string scale = "standard";  // idem
  std::string clip = "none";       // idem
  std::string bins = "0";          // idem
  std::string cross;               // "all" or "a*b,c*d"
  std::string drop;                // columns that are not features, comma separated
  bool missing_indicators = false;
  std::uint32_t hash_buckets = 1u << 16;
  std::int32_t max_categories = 10000;
  std::uint32_t category_buckets = 0;  // not given: per column (auto_category_buckets)
  const CLI::Option* category_buckets_option = nullptr;  // set by add_preparation_options
  std::int64_t min_category_count = 1;
};

void add_preparation_options(CLI::App* command, PreparationArgs& args);

// Throws UsageError naming the flag and the bad item. --drop's columns go to
// PreparationOptions::exclude (each must be a column of the data: fit_preparation checks).
PreparationOptions parse_preparation_args(const PreparationArgs& args);

}  // namespace lathe::cli
