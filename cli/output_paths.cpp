#include "cli/output_paths.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <system_error>
#include <utility>

#include "io/hdf5_handle.h"
#include "io/hdf5_signature.h"
#include "io/score_file.h"
#include "io/temporary_file.h"
#include "runtime/error.h"

namespace lathe::cli {

namespace {

// Two outputs collide when they are one existing file, or when they would become one: the same
// absolute path once the folders that exist are resolved (neither file need exist yet).
bool same_output_path(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (std::filesystem::equivalent(a, b, ec)) return true;
  std::error_code ec_a, ec_b;
  const auto canonical_a = std::filesystem::weakly_canonical(std::filesystem::absolute(a, ec_a), ec_a);
  const auto canonical_b = std::filesystem::weakly_canonical(std::filesystem::absolute(b, ec_b), ec_b);
  return !ec_a && !ec_b && canonical_a == canonical_b;
}

// A usage error (exit 2), found before anything is read: the command line names one file for two
// roles, as when two outputs collide (`lathe score`'s inputs of one name in one --out folder).
[[noreturn]] void refuse(const WrittenFile& output, const std::string& role, const std::string& other) {
  throw UsageError(output.option + " " + output.path + " is " + role + " " + other + "; write " + output.contents +
                   " elsewhere");
}

}  // namespace

OutputPathCheck::OutputPathCheck(std::vector<ReadFile> inputs) : inputs_(std::move(inputs)) {}

void OutputPathCheck::check(const WrittenFile& output) const {
  if (output.path.empty()) return;
  if (const std::string problem = output_path_problem(output.path); !problem.empty()) {
    throw InputError(output.option + " " + output.path + ": " + problem);
  }
  for (const ReadFile& input : inputs_) {
    std::error_code ec;  // a path that does not exist is no file of the other: false, with ec set
    if (!input.path.empty() && std::filesystem::equivalent(input.path, output.path, ec)) {
      refuse(output, input.role, input.path);
    }
  }
  for (const WrittenFile& earlier : outputs_) {
    if (!earlier.path.empty() && same_output_path(earlier.path, output.path)) {
      refuse(output, "the " + earlier.option + " file", earlier.path);
    }
  }
  // Last: the checks above make no file.
  if (const std::string problem = temporary_name_problem(output.path); !problem.empty()) {
    throw InputError(output.option + " " + output.path + ": " + problem);
  }
}

void OutputPathCheck::add(const WrittenFile& output) {
  check(output);
  if (!output.path.empty()) outputs_.push_back(output);
}

ExistingFile existing_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec) || std::filesystem::file_size(path, ec) == 0 ||
      ec) {
    return ExistingFile::none;
  }
  // Scores as `lathe score` writes them, in HDF5 or CSV (holds_scores knows both).
  if (holds_scores(path)) return ExistingFile::scores;
  // HDF5's signature first: HDF5 itself would take a CSV for a damaged file.
  if (!has_hdf5_signature(path)) return ExistingFile::other;
  try {
    const h5::H5Handle h5_file = h5::open_file_for_reading(path);
    const std::string context = path.string();
    if (h5::attribute_exists(h5_file.get(), "lathe_model_format_version", context))
      return ExistingFile::model;
    return ExistingFile::table;
  } catch (const Error&) {
    return ExistingFile::none;  // locked or damaged: the writer's own checks say what is wrong
  }
}

void refuse_replacing_another_kind(const WrittenFile& output, ExistingFile writes) {
  if (output.path.empty()) return;
  const ExistingFile there = existing_file(output.path);
  std::string what;
  if (there == writes) return;
  if (there == ExistingFile::model) {
    what = "is a model file written by `lathe train`";
  } else if (there == ExistingFile::table && writes != ExistingFile::table) {
    what = "is a table of data";
  } else if (there == ExistingFile::scores && writes != ExistingFile::table) {
    // A table's writer may replace scores: they are a table, and made again from their model.
    what = "holds the scores `lathe score` wrote";
  } else {
    return;  // no file, an empty one, or one of no kind Lathe writes (see the header)
  }
  throw InputError(output.option + " " + output.path + " " + what + ", which " + output.contents +
                   " would replace; it is left as it is: give " + output.option +
                   " another name, or remove " + output.path + " first");
}

void refuse_input_of_another_kind(const std::string& option, const std::string& path,
                                  bool takes_model, const std::string& takes) {
  if (path.empty()) return;
  const ExistingFile there = existing_file(path);
  std::string what;
  if (takes_model && there == ExistingFile::table) {
    what = "is a table of data, not a model file written by `lathe train`";
  } else if (takes_model && there == ExistingFile::scores) {
    what = "holds the scores `lathe score` wrote, not a model file written by `lathe train`";
  } else if (!takes_model && there == ExistingFile::model) {
    what = "is a model file written by `lathe train`, not a table of data";
  } else {
    return;
  }
  throw InputError(option + " " + path + " " + what + ": " + option + " takes " + takes);
}

void check_output_paths(const std::vector<WrittenFile>& outputs, const std::vector<ReadFile>& inputs) {
  OutputPathCheck paths(inputs);
  for (const WrittenFile& output : outputs) paths.add(output);
}

void refuse_empty_paths(const CLI::App& command, const std::vector<std::string>& options) {
  for (const std::string& name : options) {
    const CLI::Option* option = command.get_option_no_throw(name);
    if (option == nullptr || option->count() == 0) continue;
    const auto& given = option->results();
    if (std::none_of(given.begin(), given.end(), [](const std::string& value) { return value.empty(); })) continue;
    const std::string what = name.rfind("--", 0) == 0 ? name : "the " + name + " argument";
    throw UsageError(what + " is empty (an unset shell variable?): give a file path");
  }
}

bool make_output_folder(const std::string& option, const std::filesystem::path& folder) {
  std::error_code ec;
  if (std::filesystem::is_directory(folder, ec)) return false;
  // "a/b/c/" names the folder "a/b/c", whose parent is "a/b".
  const std::filesystem::path named = folder.has_filename() ? folder : folder.parent_path();
  const std::filesystem::path parent = named.has_parent_path() ? named.parent_path() : std::filesystem::path(".");
  const auto parent_status = std::filesystem::status(parent, ec);
  const std::string where = option + " " + folder.string() + ": ";
  if (!std::filesystem::exists(parent_status)) {
    throw InputError(where + "the folder '" + parent.string() +
                     "' does not exist; only the output folder itself is created, not its parents");
  }
  if (!std::filesystem::is_directory(parent_status)) {
    throw InputError(where + "'" + parent.string() + "' is a file, not a folder");
  }
  std::filesystem::create_directory(named, ec);
  if (ec) throw InputError(where + "cannot create the folder: " + ec.message());
  return true;
}

}  // namespace lathe::cli
