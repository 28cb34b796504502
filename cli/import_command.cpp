// `lathe import CSV OUT`: a CSV file to Lathe's columnar HDF5 layout (io/csv_import.h). Prints one
// summary line on stdout; skipped bad rows, notes (integers that had to be rounded, a mostly
// numeric column taken as categorical) and progress go to stderr.
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/note_printer.h"
#include "cli/output_paths.h"
#include "io/csv_import.h"
#include "runtime/error.h"
#include "runtime/message_names.h"
#include "runtime/name_lists.h"

namespace lathe::cli {

namespace {

// One byte, or a name for the ones that are awkward to type in a shell.
char parse_delimiter(const std::string& text) {
  if (text == "\\t" || text == "tab" || text == "\t") return '\t';
  if (text == "\"" || text == "\n" || text == "\r") {
    throw UsageError("--delimiter cannot be a quote or a line break (they delimit fields and records)");
  }
  if (text.size() == 1) return text[0];
  throw UsageError("--delimiter must be one character (or 'tab'), not '" + text + "'");
}

// The character of --decimal or --thousands: one, or 'space' for ' ' (awkward to pass in a shell
// script); "" is none, for --thousands.
char parse_number_mark(const std::string& flag, const std::string& text) {
  if (text == "space") return ' ';
  if (text.size() == 1) return text[0];
  if (text.empty() && flag == "--thousands") return 0;
  if (flag == "--thousands" && (text == "\xC2\xA0" || text == "\xE2\x80\xAF")) {
    // One character on the screen, two or three bytes of UTF-8.
    throw UsageError(
        "--thousands: a no-break space (U+" + std::string(text.size() == 2 ? "00A0" : "202F") +
        ") is two or three bytes of UTF-8: pass --thousands space, which reads it as well as ' '");
  }
  throw UsageError(flag + " must be one character (or 'space'), not '" + text + "'");
}

// The comma-separated tokens of each --na-values, empty ones kept (CLI11's own splitting drops
// them, and an empty token is an error, not nothing).
std::vector<std::string> split_tokens(const std::vector<std::string>& given) {
  std::vector<std::string> tokens;
  for (const std::string& text : given) {
    for (std::size_t begin = 0;;) {
      const std::size_t comma = text.find(',', begin);
      tokens.push_back(text.substr(begin, comma - begin));
      if (comma == std::string::npos) break;
      begin = comma + 1;
    }
  }
  return tokens;
}

// The column names of each --categorical or --numeric, comma separated, a comma inside a name
// written \, as in `lathe train`'s lists (runtime/name_lists.h): CLI11's own splitting cut a CSV
// header "price, usd" in two, whatever its spelling.
std::vector<std::string> split_names(const std::vector<std::string>& given) {
  std::vector<std::string> names;
  for (const std::string& text : given) {
    for (std::string& name : split_name_list(text)) names.push_back(std::move(name));
  }
  return names;
}

}  // namespace

void add_import_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "import", "Import a CSV file to Lathe's columnar HDF5 layout (types inferred; the file is read twice unless its values fit in memory)");
  struct Args {
    std::string csv, out, delimiter = ",", decimal = ".", thousands;
    std::vector<std::string> categorical, numeric, na_values;
    bool skip_bad_rows = false, no_default_na = false, quiet = false;
    std::int64_t chunk_rows = 65536;
    int compression = 4;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("csv", args->csv, "CSV file with a header line")->required();
  cmd->add_option("out", args->out, "HDF5 file to write (replaced only when the import succeeds)")
      ->required();
  cmd->add_option(
         "--categorical", args->categorical,
         "Columns to import as categorical, numbers included (comma separated, a comma in a name "
         "written \\,; repeatable)")
      ->allow_extra_args(false)
      ->check(non_empty_items("column names separated by commas"));
  cmd->add_option("--numeric", args->numeric,
                  "Columns to import as numeric; a value that is not a number is an error "
                  "(comma separated, a comma in a name written \\,; repeatable)")
      ->allow_extra_args(false)
      ->check(non_empty_items("column names separated by commas"));
  cmd->add_flag("--skip-bad-rows", args->skip_bad_rows,
                "Skip rows with the wrong number of fields or a non-number in a numeric column, "
                "and report them, instead of failing");
  cmd->add_option(
         "--na-values", args->na_values,
         "More values that mean missing, besides an empty field and pandas' defaults (NA, "
         "N/A, NaN, nan, null, NULL, None, #N/A, <NA>, ...); compared after trimming spaces, "
         "and a number also by value in numeric columns (-999 matches -999.0) "
         "(comma separated, repeatable)")
      ->allow_extra_args(false);
  cmd->add_flag("--no-default-na", args->no_default_na,
                "Only an empty field and the --na-values are missing, not pandas' defaults "
                "(like pandas' keep_default_na=False, but an empty field stays missing)");
  cmd->add_option("--delimiter", args->delimiter, "Field delimiter: one character, or 'tab'")
      ->default_val(",");
  cmd->add_option(
         "--decimal", args->decimal,
         "Decimal mark of numbers, as pandas' decimal=: '--decimal ,' reads 3,14 as 3.14 (and "
         "3.14 as text); where it is the delimiter too, such numbers are read inside quotes "
         "(\"3,14\")")
      ->default_val(".");
  cmd->add_option("--thousands", args->thousands,
                  "Thousands separator of numbers (default none), as pandas' thousands=: "
                  "'--thousands ,' reads \"1,234.5\" as 1234.5; one character ('.', ',', \"'\", "
                  "or ' ' or 'space'), allowed between digit groups of three (or India's twos)");
  add_whole_number_option(cmd, "--chunk-rows", args->chunk_rows, "Rows per HDF5 chunk")
      ->default_val(65536)
      ->check(in_range(1, 1 << 30));
  add_whole_number_option(cmd, "--compression", args->compression, "Deflate level, 0 (none) to 9")
      ->default_val(4)
      ->check(in_range(0, 9));
  cmd->add_flag("--quiet", args->quiet, "No progress on stderr");
  cmd->callback([args, cmd] {
    refuse_empty_paths(*cmd, {"csv", "out"});
    const WrittenFile output{"the output", args->out, "the imported table"};
    check_output_paths({output}, {{"the CSV file", args->csv}});
    refuse_replacing_another_kind(output, ExistingFile::table);
    CsvImportOptions options;
    options.categorical = split_names(args->categorical);
    options.numeric = split_names(args->numeric);
    for (const std::string& name : options.categorical) {
      if (std::find(options.numeric.begin(), options.numeric.end(), name) != options.numeric.end()) {
        throw UsageError("the column '" + name + "' is named by both --categorical and --numeric: give one");
      }
    }
    options.skip_bad_rows = args->skip_bad_rows;
    options.delimiter = parse_delimiter(args->delimiter);
    options.decimal = parse_number_mark("--decimal", args->decimal);
    options.thousands = parse_number_mark("--thousands", args->thousands);
    if (const auto problem = number_format_problem(options.decimal, options.thousands)) {
      throw UsageError(*problem);
    }
    options.na_values = split_tokens(args->na_values);
    for (const std::string& token : options.na_values) {
      if (const auto problem = na_value_problem(token, options.delimiter)) {
        throw UsageError("--na-values: " + *problem);
      }
    }
    options.keep_default_na = !args->no_default_na;
    options.chunk_rows = args->chunk_rows;
    options.deflate_level = args->compression;
    options.progress = !args->quiet;
    const CsvImportReport report = import_csv(args->csv, args->out, options);
    std::cout << "imported " << counted(report.rows, "row") << " x " << counted(report.columns, "column") << " ("
              << report.numeric_columns << " numeric, ";
    if (report.int64_columns > 0) std::cout << report.int64_columns << " of them int64, ";
    std::cout << report.categorical_columns << " categorical) to " << args->out << "\n";
    // Notes are not progress: printed with --quiet too.
    print_notes(std::cerr, "lathe import: note: ", report.notes);
    if (report.skipped_rows > 0) {
      std::cerr << "lathe import: skipped " << report.skipped_rows << " bad row"
                << (report.skipped_rows == 1 ? "" : "s") << ":\n";
      for (const auto& reason : report.skipped_examples) std::cerr << "  " << reason << "\n";
      const auto more =
          report.skipped_rows - static_cast<std::int64_t>(report.skipped_examples.size());
      if (more > 0) std::cerr << "  ... and " << more << " more\n";
    }
  });
}

}  // namespace lathe::cli
