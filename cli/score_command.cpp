// `lathe score MODEL.h5 DATA.h5... --out OUT [--id COL] [--format h5|csv] [--device ...]
// [--block-rows N] [--compression N] [--group G] [--quiet]`: batch scoring, each input streamed
// block by block through lathe::Scorer into its own output (io/score_file.h for the output
// columns).
//
// One input: OUT is the output file (or an existing folder to write it into); its folder must
// exist, as for every output. Several: OUT is a folder (created when missing, but only it: its
// parent must exist) and each output is named after its input (stem + .h5 or .csv). An input that
// fails (unreadable, schema mismatch, a bad value) is reported on stderr naming the file and what
// is wrong and gets no output; the others are still scored, and the command exits 1 at the end.
// Progress and rows/s go to stderr; one JSON summary line goes to stdout. One output file written
// as HDF5 by default under a name that says otherwise (x.txt), or in the other format than its
// extension says (--out s.csv --format h5), gets a note (stderr and JSON).
// `--out -` (one input only, CSV only) writes the CSV to stdout and the JSON summary to stderr.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <system_error>

#include "cli/commands.h"
#include "cli/note_printer.h"
#include "cli/output_paths.h"
#include "io/model_inputs.h"
#include "io/prepared_data.h"
#include "io/score_file.h"
#include "io/temporary_file.h"
#include "io/unseen_labels.h"
#include "lathe/scorer.h"
#include "runtime/error.h"
#include "runtime/message_names.h"

namespace lathe::cli {

namespace {

// The extension of `path` in lower case: a name made on Windows says x.CSV or x.H5 as often.
std::string lower_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

ScoreFormat format_for(const std::string& flag, const std::filesystem::path& out, bool several) {
  if (flag == "h5") return ScoreFormat::h5;
  if (flag == "csv") return ScoreFormat::csv;
  if (!flag.empty()) throw UsageError("--format: expected h5 or csv, got '" + flag + "'");
  return !several && (lower_extension(out) == ".csv" || score_to_stdout(out)) ? ScoreFormat::csv
                                                                              : ScoreFormat::h5;
}

// The note for an output file written as HDF5 (no --format) whose name does not say so (x.txt,
// x), or written by --format in the format its extension does not name (s.csv as HDF5, s.h5 as
// CSV):
// "" when its extension is .h5, .hdf5, .hdf or .csv, in any case, and agrees with the format.
std::string format_note(const std::string& flag, const std::filesystem::path& target, ScoreFormat format) {
  const std::string ext = lower_extension(target);
  const bool named_h5 = ext == ".h5" || ext == ".hdf5" || ext == ".hdf";
  // --format against the name's extension (`--out s.csv --format h5`): the file is what --format
  // says, and a reader that goes by the name (pandas.read_csv) would fail on it.
  if (!flag.empty() &&
      ((format == ScoreFormat::h5 && ext == ".csv") || (format == ScoreFormat::csv && named_h5))) {
    return "--out " + target.string() + " is written as " +
           (format == ScoreFormat::h5 ? "HDF5" : "CSV") + " (--format " + flag +
           "), although its name ends in " + target.extension().string() + "; name it " +
           (format == ScoreFormat::h5 ? ".h5" : ".csv") + " to say what it holds";
  }
  const bool named = named_h5 || ext == ".csv";
  if (!flag.empty() || format != ScoreFormat::h5 || named) return "";
  return "--out " + target.string() + " is written as HDF5 (the format unless --out ends in .csv); for CSV, " +
         "name it .csv or pass --format csv";
}

nlohmann::json counts_json(const std::map<std::string, std::int64_t>& counts) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, n] : counts) j[name] = n;
  return j;
}

}  // namespace

void add_score_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("score", "Score HDF5 tables with a trained model, streamed block by block");
  struct Args {
    std::string model, out, id, format, device = "auto", group;
    std::vector<std::string> inputs;
    std::int64_t block_rows = 65536;
    int compression = 0;
    bool quiet = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("model", args->model, "Model file (lathe train)")->required();
  cmd->add_option("data", args->inputs, "HDF5 tables to score")->required();
  cmd->add_option("--out", args->out,
                  "Output file (one input; - for CSV on stdout) or folder (several inputs; created "
                  "when missing, "
                  "in an existing folder); required");
  cmd->add_option("--id", args->id,
                  "A column of the input copied to the output first, exactly (row identifiers: "
                  "64-bit integers stay "
                  "int64/uint64 in h5, integral numbers are written in full in CSV)")
      ->check(non_empty("a column name"));
  cmd->add_option("--format", args->format,
                  "h5 (Lathe's columnar layout) or csv; default: csv for --out - or one output "
                  "file named .csv, "
                  "else h5 (an output folder's files too)")
      ->check(non_empty("h5 or csv"));
  add_whole_number_option(cmd, "--block-rows", args->block_rows, "Rows read and scored per block")
      ->capture_default_str()
      ->check(at_least(1));
  add_whole_number_option(cmd, "--compression", args->compression,
                          "Deflate level of h5 output, 0 (none) to 9")
      ->capture_default_str()
      ->check(in_range(0, 9));
  cmd->add_option("--group", args->group, "Group (columnar), pandas key or matrix dataset to read")
      ->check(non_empty("a group, pandas key or dataset name"));
  cmd->add_flag("--quiet", args->quiet, "No progress on stderr");
  add_device_option(cmd, args->device);
  cmd->callback([args, cmd] {
    const auto start = std::chrono::steady_clock::now();
    // Checked here rather than by CLI11 to name the likely slip: `lathe import` and `lathe prepare`
    // take their output as the last argument, and `lathe score m.h5 d.h5 s.csv` reads s.csv as a
    // second table to score.
    if (cmd->get_option("--out")->count() == 0) {
      const std::filesystem::path last(args->inputs.back());
      std::error_code ec;
      const bool like_output = args->inputs.size() > 1 && (!std::filesystem::exists(last, ec) ||
                                                           lower_extension(last) == ".csv");
      throw UsageError("--out is required" +
                       (like_output
                            ? " (" + last.string() +
                                  ", the last data argument, is read as a table to score; " +
                                  "if it is the output, give --out " + last.string() + ")"
                            : std::string()) +
                       "; see `lathe score --help`");
    }
    refuse_empty_paths(*cmd, {"model", "data", "--out"});
    const bool several = args->inputs.size() > 1;
    const std::filesystem::path out(args->out);
    const bool to_stdout = score_to_stdout(out);
    if (to_stdout && several) {
      throw UsageError("--out -: stdout takes the scores of one input; give several inputs an output folder");
    }
    if (to_stdout && stdout_was_closed) {
      throw UsageError("--out -: stdout is closed, and the scores would be lost; give --out a file");
    }
    if (to_stdout && args->format == "h5") {
      throw UsageError("--out -: HDF5 cannot be streamed to a pipe; stdout takes --format csv");
    }
    const ScoreFormat format = format_for(args->format, out, several);
    const std::string extension = format == ScoreFormat::csv ? ".csv" : ".h5";

    // Where each input's output goes, decided (and checked) before anything is scored.
    std::error_code ec;
    const bool out_is_folder = !to_stdout && (several || std::filesystem::is_directory(out, ec));
    std::vector<std::filesystem::path> outputs;
    std::set<std::filesystem::path> taken;
    for (const auto& input : args->inputs) {
      const std::filesystem::path target =
          out_is_folder ? out / (std::filesystem::path(input).stem().string() + extension) : out;
      if (!taken.insert(target.lexically_normal()).second) {
        throw UsageError("--out: two inputs would both be written to " + target.string() + " (inputs with the same name)");
      }
      outputs.push_back(target);
    }
    bool created_folder = false;
    if (several && !std::filesystem::is_directory(out, ec)) {
      if (std::filesystem::exists(out, ec)) throw InputError("--out: " + out.string() + " is a file; several inputs need a folder");
      // The folder itself, not its parents: a typo in one is an error, not a new tree.
      created_folder = make_output_folder("--out", out);
    }
    // A run refused before it scores anything leaves no folder it made itself.
    const auto refused = [&] {
      if (created_folder) std::filesystem::remove(out, ec);  // only while still empty
    };
    std::unique_ptr<Scorer> loaded;
    try {
      std::vector<ReadFile> inputs = {{"the model file", args->model}};
      for (const auto& input : args->inputs) inputs.push_back({"the data file", input});
      OutputPathCheck output_paths(inputs);
      if (!to_stdout) {
        for (const auto& target : outputs) output_paths.add({"--out", target.string(), "the scores"});
      }
      // An output named after its input replaces whatever has that name in the folder: `--out .
      // --format csv` beside `lathe import`'s DATA.csv -> DATA.h5 would put the scores in place of
      // the raw CSV. Earlier scores may be replaced; any other file is refused before any is
      // written.
      if (out_is_folder) {
        // Scores in the other format are refused too, as for an output named in full.
        const ExistingFile own =
            format == ScoreFormat::csv ? ExistingFile::csv_scores : ExistingFile::hdf5_scores;
        for (std::size_t i = 0; i < outputs.size(); ++i) {
          const ExistingFile there = existing_file(outputs[i]);
          if (there == ExistingFile::none || there == own) continue;
          const bool other_format =
              there == ExistingFile::csv_scores || there == ExistingFile::hdf5_scores;
          throw UsageError("--out " + out.string() + ": the output of " + args->inputs[i] +
                           " would replace " + outputs[i].string() + ", which " +
                           (other_format
                                ? std::string("holds scores written as ") +
                                      (there == ExistingFile::csv_scores ? "CSV" : "HDF5") +
                                      ", not in --format " +
                                      (own == ExistingFile::csv_scores ? "csv" : "h5")
                                : std::string("holds no scores of `lathe score` (") +
                                      (lower_extension(outputs[i]) == ".csv"
                                           ? "the CSV the input was imported from?"
                                           : "another file of that name") +
                                      ")") +
                           "; it is left as it is: give --out another folder");
        }
      } else if (!to_stdout) {
        // An output file named by the user may replace earlier scores in its format, but not the
        // file the input was made from (`lathe import DATA.csv DATA.h5`, then `--out DATA.csv`: the
        // refusal of an output folder's name, for a name given in full), nor any other file.
        const std::filesystem::path input(args->inputs.front());
        std::string source;
        bool prepared = false;
        try {
          source = prepared_from(input);
          prepared = !source.empty() && read_prepared_tag(input).has_value();
        } catch (const Error&) {
          // A missing or unreadable input is reported where it is scored.
        }
        if (!source.empty() && std::filesystem::equivalent(input.parent_path() / source, out, ec)) {
          throw UsageError("--out " + out.string() + " is " +
                           (input.parent_path() / source).string() + ", the file " +
                           input.string() + " was " + (prepared ? "prepared" : "imported") +
                           " from; write the scores elsewhere");
        }
        refuse_replacing_another_kind(
            {"--out", out.string(), "the scores"},
            format == ScoreFormat::csv ? ExistingFile::csv_scores : ExistingFile::hdf5_scores);
      }
      loaded = std::make_unique<Scorer>(args->model, args->device);
    } catch (...) {
      refused();
      throw;
    }
    Scorer& scorer = *loaded;
    if (!args->quiet) {
      std::cerr << "score: model " << args->model << " (" << scoring_task_name(scorer.task()) << ", label '"
                << scorer.label() << "') on " << scorer.device_description() << "\n";
    }
    std::vector<std::string> notes, failed;
    if (!out_is_folder) {
      const std::string note = format_note(args->format, out, format);
      if (!note.empty()) {
        if (!args->quiet) std::cerr << "score: note: " << note << "\n";
        notes.push_back(note);
      }
    }
    if (created_folder) {
      // A name with a file's extension (`--out scores.csv`, and a glob that matched more than one
      // input) made a folder of that name, which whoever meant one file would not expect: said.
      const std::string ext = lower_extension(out);
      if (ext == ".csv" || ext == ".h5" || ext == ".hdf5") {
        const std::string note = "--out " + out.string() + " is named as a file, but with " +
                                 std::to_string(args->inputs.size()) +
                                 " inputs it is a folder: created, with one output per input (" +
                                 outputs.front().string() + ", ...)";
        if (!args->quiet) std::cerr << "score: note: " << note << "\n";
        notes.push_back(note);
      }
    }
    ScoreFileOptions options;
    options.format = format;
    options.id_column = args->id;
    options.read.block_rows = args->block_rows;
    options.read.group = args->group;
    options.deflate_level = args->compression;
    // An input with no rows writes its id as the first input with rows holds it (looked up once,
    // when an empty one needs it): the outputs of a batch job's partitions concatenate.
    std::optional<std::optional<ColumnInfo>> id_with_rows;
    if (several && !args->id.empty()) {
      options.id_of_other_inputs = [&]() -> std::optional<ColumnInfo> {
        if (!id_with_rows) {
          id_with_rows.emplace();
          for (const auto& other : args->inputs) {
            try {
              *id_with_rows = scored_id_column(other, options);
            } catch (const Error&) {
              continue;  // reported when that input is scored
            }
            if (*id_with_rows) break;
          }
        }
        return *id_with_rows;
      };
    }

    nlohmann::json files = nlohmann::json::array();
    ScoringSummary total;
    std::int64_t rows = 0;
    for (std::size_t i = 0; i < args->inputs.size(); ++i) {
      const std::string& input = args->inputs[i];
      ScoreFileReport report;
      try {
        report = score_file(scorer, input, outputs[i], options);
      } catch (const Error& e) {
        const auto* cuda = dynamic_cast<const CudaError*>(&e);
        if (!several || (cuda && cuda->sticky())) throw;  // a lost GPU is lost for every file
        const std::string why = name_final_paths(e.what());
        std::cerr << "score: " << input << ": failed, no output: " << why << "\n";
        failed.push_back(input);
        files.push_back({{"input", input}, {"error", why}});
        continue;
      }
      std::vector<std::string> file_notes = report.notes;
      for (const auto& [column, count] : report.summary.imputed) {
        for (const ModelInput& in : scorer.inputs()) {
          if (in.name == column && !in.missing_in_training) {
            file_notes.push_back(untrained_missing_note(column, count));
          }
        }
      }
      // Worded as `lathe eval` words it, with a few of the labels: a new label upstream ("Four
      // year") is the first thing to look for when rows score as unknown.
      for (const auto& [column, count] : report.summary.unknown_categories) {
        UnseenLabels unseen;
        unseen.column = column;
        unseen.count = count;
        if (const auto examples = report.unseen_examples.find(column);
            examples != report.unseen_examples.end())
          unseen.examples = examples->second;
        if (const auto spelled = report.spelled_otherwise.find(column);
            spelled != report.spelled_otherwise.end())
          unseen.spelled_otherwise = spelled->second;
        file_notes.push_back(unseen_labels_note(unseen));
      }
      for (const auto& [column, count] : report.summary.missing_categories) {
        for (const ModelInput& in : scorer.inputs()) {
          if (in.name == column && !in.missing_in_training) {
            file_notes.push_back(untrained_missing_category_note(column, count));
          }
        }
      }
      if (report.summary.infinite_predictions > 0) {
        file_notes.push_back(std::to_string(report.summary.infinite_predictions) +
                             (report.summary.infinite_predictions == 1 ? " prediction is" : " predictions are") +
                             " infinite (written as inf): their fit lies beyond exp's range "
                             "(--target-transform), rows far outside the training data; --clip bounds them");
      }
      if (!args->quiet) {
        print_notes(std::cerr, "score: " + input + ": note: ", file_notes);
        std::cerr << "score: " << input << " -> " << (to_stdout ? "stdout" : report.output.string()) << ": "
                  << counted(report.rows, "row") << " in " << report.seconds << " s (" << static_cast<long long>(report.rows / std::max(report.seconds, 1e-9))
                  << " rows/s)\n";
      }
      for (const auto& note : file_notes) notes.push_back(input + ": " + note);
      rows += report.rows;
      total.add(report.summary);
      files.push_back({{"input", input},
                       {"output", report.output.string()},
                       {"rows", report.rows},
                       {"seconds", report.seconds},
                       {"rows_per_second", report.rows / std::max(report.seconds, 1e-9)},
                       {"imputed", counts_json(report.summary.imputed)},
                       {"unknown_categories", counts_json(report.summary.unknown_categories)},
                       {"missing_categories", counts_json(report.summary.missing_categories)},
                       {"notes", file_notes}});
      // Only a regression's prediction can be infinite (a probability cannot).
      if (scorer.task() == ScoringTask::regression) files.back()["infinite_predictions"] = report.summary.infinite_predictions;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rows_per_second = rows / std::max(seconds, 1e-9);
    if (!args->quiet) {
      std::cerr << "score: " << counted(rows, "row") << " from " << (args->inputs.size() - failed.size()) << " of "
                << args->inputs.size() << (args->inputs.size() == 1 ? " file" : " files") << " in " << seconds
                << " s, " << static_cast<long long>(rows_per_second) << " rows/s\n";
    }
    nlohmann::json summary = {{"model", args->model},
                                    {"device", scorer.device_description()},
                                    {"task", scoring_task_name(scorer.task())},
                                    {"format", format == ScoreFormat::csv ? "csv" : "h5"},
                                    {"files", files},
                                    {"failed", failed.size()},
                                    {"rows", rows},
                                    {"seconds", seconds},
                                    {"rows_per_second", rows_per_second},
                                    {"imputed", counts_json(total.imputed)},
                                    {"unknown_categories", counts_json(total.unknown_categories)},
                                    {"missing_categories", counts_json(total.missing_categories)},
                                    {"notes", notes}};
    if (scorer.task() == ScoringTask::regression) summary["infinite_predictions"] = total.infinite_predictions;
    // With the scores on stdout, the summary goes to stderr so that stdout holds only the CSV.
    (to_stdout ? std::cerr : std::cout) << summary.dump() << std::endl;
    if (!failed.empty()) {
      std::string list;
      for (const auto& f : failed) list += (list.empty() ? "" : ", ") + f;
      throw InputError(std::to_string(failed.size()) + " of " + std::to_string(args->inputs.size()) +
                       " inputs failed and have no output: " + list);
    }
  });
}

}  // namespace lathe::cli
