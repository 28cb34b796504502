#include "cli/output_paths.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <utility>

#include "io/hdf5_handle.h"
#include "io/hdf5_signature.h"
#include "io/html_report.h"
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
  // A file that cannot be read is left to its writer, whose own checks say what is wrong.
  if (!std::ifstream(path, std::ios::binary)) return ExistingFile::none;
  // HDF5's signature first: HDF5 itself would take a CSV for a damaged file.
  if (has_hdf5_signature(path)) {
    if (holds_scores(path)) return ExistingFile::hdf5_scores;
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
  if (holds_scores(path)) return ExistingFile::csv_scores;
  if (holds_html_report(path)) return ExistingFile::report;
  if (holds_onnx_model(path)) return ExistingFile::onnx_graph;
  if (holds_metrics_log(path)) return ExistingFile::metrics_log;
  return ExistingFile::other;
}

bool holds_metrics_log(const std::filesystem::path& path) {
  // An epoch's line is a few hundred bytes; a first line past 1 MiB is no log's.
  constexpr std::size_t kMaxLine = std::size_t{1} << 20;
  std::ifstream file(path, std::ios::binary);
  std::string head(kMaxLine, '\0');
  file.read(head.data(), static_cast<std::streamsize>(kMaxLine));
  head.resize(static_cast<std::size_t>(file.gcount()));
  const std::size_t end = head.find('\n');
  if (end == std::string::npos && head.size() == kMaxLine) return false;
  if (end != std::string::npos) head.resize(end);
  const nlohmann::json first = nlohmann::json::parse(head, nullptr, false);
  return first.is_object() && first.contains("epoch") && first["epoch"].is_number_integer();
}

bool holds_onnx_model(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (!file || ec) return false;
  std::uintmax_t at = 0;
  // A varint of at most 10 bytes (64 bits) that ends before the file does.
  const auto read_varint = [&](std::uint64_t& value) {
    value = 0;
    for (int shift = 0; shift < 64 && at < size; shift += 7) {
      const int byte = file.get();
      if (byte == std::char_traits<char>::eof()) return false;
      ++at;
      value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  };
  const auto skip = [&](std::uint64_t bytes) {
    if (bytes > size - at) return false;
    at += bytes;
    return static_cast<bool>(file.seekg(static_cast<std::streamoff>(at)));
  };
  // ModelProto's fields: ir_version 1 (varint), graph 7 (length-delimited); the others (producer,
  // opsets, metadata, functions, fields of ONNX versions to come) are skipped by their wire type.
  constexpr std::uint64_t kIrVersion = 1, kGraph = 7;
  constexpr std::uint64_t kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5;
  bool ir_version = false, graph = false;
  while (at < size) {
    std::uint64_t key = 0, value = 0;
    if (!read_varint(key) || key >> 3 == 0) return false;
    const std::uint64_t field = key >> 3, wire_type = key & 7;
    if ((field == kIrVersion && wire_type != kVarint) ||
        (field == kGraph && wire_type != kLengthDelimited))
      return false;
    bool ok = false;
    if (wire_type == kVarint) {
      ok = read_varint(value);
    } else if (wire_type == kFixed64) {
      ok = skip(8);
    } else if (wire_type == kFixed32) {
      ok = skip(4);
    } else if (wire_type == kLengthDelimited) {
      ok = read_varint(value) && skip(value);
    }  // groups (3, 4) and wire types 6 and 7 are in no ModelProto
    if (!ok) return false;
    ir_version = ir_version || field == kIrVersion;
    graph = graph || field == kGraph;
  }
  return ir_version && graph;
}

namespace {

// What a file of `kind` is, for the refusal to replace it: "is a table of data".
std::string what_it_is(ExistingFile kind, ExistingFile writes) {
  switch (kind) {
    case ExistingFile::model:
      return "is a model file written by `lathe train`";
    case ExistingFile::table:
      return "is a table of data";
    case ExistingFile::hdf5_scores:
      return std::string("holds the scores `lathe score` wrote") +
             (writes == ExistingFile::csv_scores ? " as HDF5" : "");
    case ExistingFile::csv_scores:
      return "holds the scores `lathe score` wrote as CSV";
    case ExistingFile::report:
      return "is a report written by `lathe report`";
    case ExistingFile::onnx_graph:
      return "is an ONNX model";
    case ExistingFile::metrics_log:
      return "is a metrics log written by `lathe train --metrics-log`";
    default:
      break;
  }
  // A file of no kind Lathe writes: what it is not, and how that was told.
  switch (writes) {
    case ExistingFile::model:
      return "is not a model file (it is not HDF5)";
    case ExistingFile::table:
      return "is not a table of data (it is not HDF5)";
    case ExistingFile::hdf5_scores:
      return "holds no scores of `lathe score` (it is not HDF5)";
    case ExistingFile::csv_scores:
      return "holds no scores of `lathe score` (its first line does not end in a prediction or "
             "predicted_class column)";
    case ExistingFile::report:
      return "is not a report written by `lathe report` (its head has no <meta name=\"generator\" "
             "content=\"lathe report\">)";
    case ExistingFile::metrics_log:
      return "is not a metrics log of `lathe train` (its first line is no JSON object with an "
             "\"epoch\")";
    default:
      return "is not an ONNX model (it does not read as an ONNX ModelProto)";
  }
}

}  // namespace

void refuse_replacing_another_kind(const WrittenFile& output, ExistingFile writes) {
  if (output.path.empty()) return;
  const ExistingFile there = existing_file(output.path);
  if (there == ExistingFile::none || there == writes) return;
  // A table's writer may replace scores: they are a table, and made again from their model.
  if (writes == ExistingFile::table && there == ExistingFile::hdf5_scores) return;
  std::string contents = output.contents;
  if (writes == ExistingFile::hdf5_scores && there == ExistingFile::csv_scores)
    contents += ", written as HDF5,";
  if (writes == ExistingFile::csv_scores && there == ExistingFile::hdf5_scores)
    contents += ", written as CSV,";
  const std::string way_on =
      output.named_by.empty() ? "give " + output.option + " another name"
                              : "write " + output.contents + " elsewhere with " + output.named_by;
  throw InputError(output.option + " " + output.path + " " + what_it_is(there, writes) +
                   ", which " + contents + " would replace; it is left as it is: " + way_on +
                   ", or remove " + output.path + " first");
}

void refuse_input_of_another_kind(const std::string& option, const std::string& path,
                                  bool takes_model, const std::string& takes) {
  if (path.empty()) return;
  const ExistingFile there = existing_file(path);
  std::string what;
  if (takes_model && there == ExistingFile::table) {
    what = "is a table of data, not a model file written by `lathe train`";
  } else if (takes_model &&
             (there == ExistingFile::hdf5_scores || there == ExistingFile::csv_scores)) {
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
