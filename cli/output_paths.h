// The one check every command that writes a file makes before it reads or writes anything: no
// output may replace one of the command's inputs or another of its outputs, and each output must be
// writable where it is named. An output that is an input or another output is a UsageError (exit 2)
// naming the option and both paths, e.g. "--out m.h5 is the model file m.h5; write the scores
// elsewhere"; an output that cannot be written where it is named is an InputError (exit 1). An
// output that would replace a file of another kind (a model by a table, a CSV of data by a model,
// a text file by a report) is an InputError too (refuse_replacing_another_kind).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace lathe::cli {

// A file the command reads: what it is to the user ("the model file", "the --valid file") and its
// path as given. An empty path (an option not given) is ignored.
struct ReadFile {
  std::string role;
  std::string path;
};

// A file the command writes: the option that names it ("--out"; "the output" for a positional
// argument), its path as given, and what it holds ("the scores"). An empty path is ignored.
// `named_by`: the option that would write it elsewhere, for a path derived from another option's
// (the default checkpoint, --out with .checkpoint.h5: "--checkpoint"); empty when it is `option`.
struct WrittenFile {
  std::string option;
  std::string path;
  std::string contents;
  std::string named_by = {};
};

// Checks outputs against inputs and against each other as they are added.
class OutputPathCheck {
 public:
  explicit OutputPathCheck(std::vector<ReadFile> inputs);

  // Throws InputError when `output` cannot be written (its folder is missing or is a file, or it is
  // a folder; or its folder takes no new file under its temporary's name, temporary_name_problem:
  // no permission, a read-only filesystem, a name too long once the temporary's suffix is added);
  // UsageError when it is the same file as an input (device and inode, std::filesystem::equivalent:
  // other spellings, symlinks and hard links are caught; an output that does not exist yet is no
  // input), or the same path as an output added before (existing or not).
  void check(const WrittenFile& output) const;
  // check(output), then remembers it so that later outputs are checked against it.
  void add(const WrittenFile& output);

 private:
  std::vector<ReadFile> inputs_;
  std::vector<WrittenFile> outputs_;
};

// What an existing file holds, told by the marks Lathe's writers leave on it.
enum class ExistingFile {
  // No regular file there, an empty one (nothing to lose), one that cannot be read, or HDF5 that
  // cannot be opened: left to the writer.
  none,
  // lathe_model_format_version: a model or checkpoint written by `lathe train`.
  model,
  // The scores `lathe score` wrote as HDF5 (holds_scores).
  hdf5_scores,
  // The scores `lathe score` wrote as CSV (holds_scores: a prediction column ends the header).
  csv_scores,
  // Any other HDF5 file: a table of data (imported, prepared, synthetic, another writer's).
  table,
  // The page `lathe report` wrote (holds_html_report).
  report,
  // An ONNX model (`lathe export --onnx`, or another tool's): holds_onnx_model.
  onnx_graph,
  // The JSON lines `lathe train --metrics-log` wrote: holds_metrics_log.
  metrics_log,
  // None of these: a CSV of data, a text file, anything else.
  other,
};
ExistingFile existing_file(const std::filesystem::path& path);

// Whether the file at `path` is an ONNX ModelProto, told without reading it whole: its top-level
// protobuf fields run to the file's end exactly, and among them are ir_version (field 1, a varint)
// and the graph (field 7, length-delimited). Lengths are skipped, not read, so a graph of any size
// costs a few reads; ir_version's key is the byte 0x08, which no text (a CSV, an HTML page) holds,
// and every other byte must fall into the fields' structure. A full parse would also check the
// graph's contents, which a file to be replaced needs no more than its kind.
bool holds_onnx_model(const std::filesystem::path& path);

// Whether the file at `path` is a metrics log as `lathe train --metrics-log` writes it: its first
// line (read up to 1 MiB) a JSON object with an "epoch" number. Every line of such a log is one
// epoch's object, so the first tells the file; a CSV or a table never parses as one.
bool holds_metrics_log(const std::filesystem::path& path);

// InputError (exit 1) when `output` would replace a non-empty file of another kind than the one
// its command `writes`, so that no earlier model, data or other file of the user's is lost: a
// model file (and checkpoint) is replaced by a model only (`lathe train --out`, --checkpoint), a
// table of data by a table only (`lathe import`, `prepare`, `synth`), HDF5 scores by HDF5 scores
// (`lathe score`, --format h5) or a table, CSV scores by CSV scores (--format csv), a report by a
// report (`lathe report --out`), an ONNX graph by an ONNX graph (`lathe export --onnx`) and a
// metrics log by a metrics log (`lathe train --metrics-log`). A file
// of no kind Lathe writes (a CSV of data, a text file) is replaced by none of them. A path with no
// file and an empty file (a name made by mktemp) hold nothing to lose. `writes` is one of model,
// table, hdf5_scores, csv_scores, report, onnx_graph and metrics_log. The message names the option,
// the file and what it is, e.g. "--out data.csv is not a model file (it is not HDF5), which the
// model would replace; it is left as it is: give --out another name, or remove data.csv first".
void refuse_replacing_another_kind(const WrittenFile& output, ExistingFile writes);

// InputError naming `option` when the file it names is of the wrong kind for it, saying what the
// option takes (`takes`: "the model to continue from") where the readers' own messages would give
// the order of the positional arguments (`lathe score MODEL.h5 DATA.h5`): with `takes_model`
// (--init-model), a table of data or scores; else (--eval, --drift, --valid), a model file. An
// empty path, a missing file or any other file is left to the reader.
void refuse_input_of_another_kind(const std::string& option, const std::string& path,
                                  bool takes_model, const std::string& takes);

// OutputPathCheck(inputs) with every output added in turn.
void check_output_paths(const std::vector<WrittenFile>& outputs, const std::vector<ReadFile>& inputs);

// UsageError when one of `options` of `command` (long option names such as "--out", or the name of
// a positional argument such as "data") was given an empty value: an unset shell variable in
// `--out "$OUT"`, named as "--out is empty" or "the data argument is empty". Made before any work,
// as a missing required option is. Input paths too (`--init-model`, `--from`, `lathe eval ""
// d.h5`): an empty one would read as the option left out, or fail later as "no such file" (exit 1).
void refuse_empty_paths(const CLI::App& command, const std::vector<std::string>& options);

// Makes the output folder `folder` that `option` names (`lathe score --out` with several inputs)
// when it is missing: that folder only, never its parents, so that a typo in a parent is an
// InputError naming it ("--out a/b/c: the folder 'a/b' does not exist; only the output folder
// itself is created, not its parents") and nothing is created; likewise a parent that is a file, or
// a folder that cannot be made. Returns whether it made the folder (false: it was there already).
bool make_output_folder(const std::string& option, const std::filesystem::path& folder);

}  // namespace lathe::cli
