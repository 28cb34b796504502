#include "io/score_file.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <utility>

#include "io/columnar_writer.h"
#include "io/hdf5_handle.h"
#include "io/hdf5_signature.h"
#include "io/model_inputs.h"
#include "io/scoring_input.h"
#include "io/temporary_file.h"
#include "io/unseen_labels.h"
#include "runtime/column_block.h"
#include "runtime/error.h"
#include "runtime/message_names.h"

namespace lathe {

std::vector<std::string> score_output_columns(const Scorer& scorer) {
  switch (scorer.task()) {
    case ScoringTask::regression: return {"prediction"};
    case ScoringTask::binary: return {"probability", "predicted_class"};
    case ScoringTask::multiclass: {
      std::vector<std::string> names;
      for (const auto& label : scorer.classes()) names.push_back("probability_" + label);
      names.push_back("predicted_class");
      return names;
    }
  }
  return {};
}

namespace {

// An output column's name as an HDF5 dataset name: HDF5 reads '/' as a path separator, so a class
// label holding one ("a/b": probability_a/b) is written with it as %2F (probability_a%2Fb), and so is
// an --id column's name (a field of records may hold one); '%' itself is written %25, so that two
// labels never share a name ("a/b" and "a%2Fb": probability_a%2Fb and probability_a%252Fb). The
// predicted_class column keeps every label as it is.
std::string hdf5_column_name(const std::string& name) {
  std::string out;
  for (const char c : name) {
    if (c == '/') {
      out += "%2F";
    } else if (c == '%') {
      out += "%25";
    } else {
      out += c;
    }
  }
  return out;
}

// The --id column of the input and how its values are read.
struct IdColumn {
  std::int64_t index = -1;  // in the reader's columns; -1 = no id
  std::string name;
  // A column of strings: read block by block as text (TableReader::read_text) and written as
  // text, so no table of its labels is needed: a unique id per row costs one block of memory.
  bool text = false;
  // A column of integer category codes (not strings): its codes, read exactly (float32 rounds
  // codes past 2^24, which would give a row a neighbour's id), and their labels.
  bool categorical = false;
  std::vector<std::string> labels;  // categorical
  // A numeric id is read again in a type that holds it exactly (TableReader::read_column_as), in
  // every layout: as float64, so integer ids above 2^24 (which the float32 block would round) pass
  // through exactly, and 64-bit integers as such, since beyond 2^53 a float64 holds them only
  // approximately (two ids could become one).
  bool exact = false;
  bool wide_integer = false, is_signed = true;
};

IdColumn find_id_column(const TableReader& reader, const std::string& name) {
  IdColumn id;
  if (name.empty()) return id;
  const auto& columns = reader.columns();
  std::vector<std::string> names;
  for (std::size_t c = 0; c < columns.size(); ++c) {
    names.push_back(columns[c].name);
    if (columns[c].name == name && id.index < 0) id.index = static_cast<std::int64_t>(c);
  }
  if (id.index < 0) {
    throw InputError(reader.path().string() + ": --id: no column '" + name + "'" + did_you_mean(name, names) +
                     "; columns: " + name_list(names));
  }
  const ColumnInfo& info = columns[static_cast<std::size_t>(id.index)];
  id.name = name;
  id.text = info.type == ColumnType::categorical && info.dtype == "string";
  id.categorical = info.type == ColumnType::categorical && !id.text;
  if (id.categorical) id.labels = info.categories;
  if (!id.categorical && reader.exact_type(id.index)) {
    id.exact = true;
    id.wide_integer = info.dtype == "int64" || info.dtype == "uint64";
    id.is_signed = info.dtype != "uint64";
  }
  return id;
}

// An input with no rows writes its id as `other` (an input with rows) holds it: the same type
// and, for a number, the same width. No value is read, so no label is needed.
void take_id_type(IdColumn& id, const ColumnInfo& other) {
  id.text = other.type == ColumnType::categorical && other.dtype == "string";
  id.categorical = other.type == ColumnType::categorical && !id.text;
  id.labels.clear();
  id.exact = false;
  id.wide_integer = !id.text && !id.categorical && (other.dtype == "int64" || other.dtype == "uint64");
  id.is_signed = other.dtype != "uint64";
}

// The read options of score_file's input: an empty file allowed, the id's dataset, and every
// column `read_as_text` names read as text.
TableReadOptions score_read_options(const ScoreFileOptions& options,
                                    std::function<bool(const std::string&)> read_as_text) {
  TableReadOptions read_options = options.read;
  read_options.allow_empty = true;  // an empty partition of a batch job gets an empty output
  if (!options.id_column.empty()) read_options.vector_datasets.push_back(options.id_column);
  read_options.read_as_text = std::move(read_as_text);
  return read_options;
}

// One block of input rows: every column (TableReader::read_block layout) and the id's values.
struct InputBlock {
  std::int64_t first = 0, rows = 0;
  std::vector<float> values;
  std::vector<double> id_numeric;      // numeric id
  std::vector<std::int64_t> id_signed;     // 64-bit signed integer id
  std::vector<std::uint64_t> id_unsigned;  // 64-bit unsigned integer id
  std::vector<std::int32_t> id_codes;  // categorical id, -1 = missing
  std::vector<std::string> id_text;    // text id, "" = missing
};

void read_input_block(TableReader& reader, const IdColumn& id, std::int64_t first, std::int64_t rows, InputBlock& b) {
  const auto columns = static_cast<std::int64_t>(reader.columns().size());
  b.first = first;
  b.rows = rows;
  b.values.resize(static_cast<std::size_t>(rows * columns));
  reader.read_block(first, rows, b.values);
  if (id.index < 0) return;
  const float* v = b.values.data() + id.index * rows;
  if (id.text) {
    reader.read_text(id.index, first, rows, b.id_text);
  } else if (id.categorical) {
    b.id_codes.resize(static_cast<std::size_t>(rows));
    reader.read_column_as(id.index, first, rows, ExactType::int32, b.id_codes.data());
    for (std::int32_t& code : b.id_codes) code = std::max(code, -1);
  } else if (id.wide_integer && id.is_signed) {
    b.id_signed.resize(static_cast<std::size_t>(rows));
    reader.read_column_as(id.index, first, rows, ExactType::int64, b.id_signed.data());
  } else if (id.wide_integer) {
    b.id_unsigned.resize(static_cast<std::size_t>(rows));
    reader.read_column_as(id.index, first, rows, ExactType::uint64, b.id_unsigned.data());
  } else if (id.exact) {
    b.id_numeric.resize(static_cast<std::size_t>(rows));
    reader.read_column_as(id.index, first, rows, ExactType::float64, b.id_numeric.data());
  } else {
    b.id_numeric.assign(v, v + rows);
  }
}

// Where scored rows go: Lathe's columnar HDF5 or CSV. Both write to a temporary path, CSV also to
// stdout.
class ScoreSink {
 public:
  virtual ~ScoreSink() = default;
  virtual void write(const InputBlock& block, const Scores& scores) = 0;
  virtual void close() = 0;
};

class H5Sink final : public ScoreSink {
 public:
  H5Sink(const std::filesystem::path& path, const Scorer& scorer, const IdColumn& id, int deflate_level,
         std::int64_t rows)
      : task_(scorer.task()),
        has_id_(id.index >= 0),
        id_text_(id.text),
        id_categorical_(id.categorical),
        id_wide_(id.wide_integer),
        id_signed_(id.is_signed) {
    std::vector<ColumnSpec> specs;
    if (has_id_) {
      specs.push_back({hdf5_column_name(id.name), id.text                ? StoredType::text
                                : id.categorical   ? StoredType::categorical_codes
                                : !id.wide_integer ? StoredType::float64
                                : id.is_signed     ? StoredType::int64
                                                   : StoredType::uint64});
    }
    const auto names = score_output_columns(scorer);
    for (std::size_t i = 0; i < names.size(); ++i) {
      const bool is_class = task_ != ScoringTask::regression && i + 1 == names.size();
      specs.push_back({hdf5_column_name(names[i]), is_class ? StoredType::categorical_codes : StoredType::float32});
    }
    ColumnarWriteOptions options;
    options.deflate_level = deflate_level;
    options.expected_rows = rows;
    writer_ = std::make_unique<ColumnarWriter>(path, specs, options);
    if (has_id_ && id.categorical) writer_->set_categories(0, id.labels);
    if (task_ != ScoringTask::regression) writer_->set_categories(specs.size() - 1, scorer.classes());
    writer_->set_attribute("lathe_model", scorer.model_path().string());
  }
  void write(const InputBlock& block, const Scores& scores) override {
    std::size_t c = 0;
    if (has_id_) {
      if (id_text_) {
        writer_->append_text(c++, block.id_text);
      } else if (id_categorical_) {
        writer_->append_codes(c++, block.id_codes);
      } else if (id_wide_ && id_signed_) {
        writer_->append_integers(c++, std::span<const std::int64_t>(block.id_signed));
      } else if (id_wide_) {
        writer_->append_integers(c++, std::span<const std::uint64_t>(block.id_unsigned));
      } else {
        writer_->append_numeric(c++, std::span<const double>(block.id_numeric));
      }
    }
    const std::int64_t rows = scores.rows;
    switch (task_) {
      case ScoringTask::regression:
        writer_->append_numeric(c, std::span<const float>(scores.value));
        return;
      case ScoringTask::binary:
        column_.resize(static_cast<std::size_t>(rows));
        for (std::int64_t r = 0; r < rows; ++r) column_[static_cast<std::size_t>(r)] = scores.positive_probability(r);
        writer_->append_numeric(c++, std::span<const float>(column_));
        break;
      case ScoringTask::multiclass:
        column_.resize(static_cast<std::size_t>(rows));
        for (std::int32_t k = 0; k < scores.classes; ++k) {
          for (std::int64_t r = 0; r < rows; ++r) {
            column_[static_cast<std::size_t>(r)] = scores.probability[static_cast<std::size_t>(r * scores.classes + k)];
          }
          writer_->append_numeric(c++, std::span<const float>(column_));
        }
        break;
    }
    writer_->append_codes(c, scores.predicted_class);
  }
  void close() override { writer_->close(); }

 private:
  ScoringTask task_;
  bool has_id_, id_text_, id_categorical_, id_wide_, id_signed_;
  std::unique_ptr<ColumnarWriter> writer_;
  std::vector<float> column_;
};

// A CSV field: quoted (with quotes doubled) when it holds a delimiter, quote or line break.
void append_field(std::string& line, const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) {
    line += text;
    return;
  }
  line += '"';
  for (const char ch : text) {
    if (ch == '"') line += '"';
    line += ch;
  }
  line += '"';
}

// %.9g: nine significant digits round-trip every float32.
void append_float(std::string& line, float v) {
  if (std::isnan(v)) return;
  char buffer[32];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, v, std::chars_format::general, 9).ptr;
  line.append(buffer, end);
}

}  // namespace

// An integral value in full ("1000000000000", never the shorter "1e+12", which a join on the id
// text would miss), its exact value; any other value in the shortest text that reads back as the
// same double.
void append_id_number(std::string& line, double v) {
  if (std::isnan(v)) return;
  // An integral double's exact value (as Python's int(v)), at most 309 digits and a sign.
  char buffer[400];
  const bool integral = std::isfinite(v) && v == std::trunc(v);
  const auto end = integral ? std::to_chars(buffer, buffer + sizeof buffer, v, std::chars_format::fixed, 0).ptr
                            : std::to_chars(buffer, buffer + sizeof buffer, v).ptr;
  line.append(buffer, end);
}

namespace {

// CSV text to `file`: a file it opened (and closes) at a path, or stdout, which it flushes and leaves
// open. `name` is what errors call it (the path, or "stdout").
class CsvSink final : public ScoreSink {
 public:
  // Writes to a new file at `path`.
  CsvSink(const std::filesystem::path& path, const Scorer& scorer, const IdColumn& id)
      : CsvSink(open_file(path), true, path.string(), scorer, id) {}
  // Writes to stdout.
  CsvSink(const Scorer& scorer, const IdColumn& id) : CsvSink(stdout, false, "stdout", scorer, id) {}
  // Writes to `file`, which it closes at the end when it owns it.
  CsvSink(std::FILE* file, bool owns_file, std::string name, const Scorer& scorer, const IdColumn& id)
      : file_(file),
        owns_file_(owns_file),
        name_(std::move(name)),
        task_(scorer.task()),
        has_id_(id.index >= 0),
        id_text_(id.text),
        id_categorical_(id.categorical),
        id_wide_(id.wide_integer),
        id_signed_(id.is_signed) {
    for (const auto& label : id.labels) id_labels_.push_back(csv_text(label));
    for (const auto& label : scorer.classes()) class_labels_.push_back(csv_text(label));
    std::string header;
    if (has_id_) {
      append_field(header, id.name);
      header += ',';
    }
    const auto names = score_output_columns(scorer);
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (i) header += ',';
      append_field(header, names[i]);
    }
    header += '\n';
    put(header);
  }
  ~CsvSink() override {
    if (file_ && owns_file_) std::fclose(file_);
  }
  void write(const InputBlock& block, const Scores& scores) override {
    text_.clear();
    for (std::int64_t r = 0; r < scores.rows; ++r) {
      const auto row = static_cast<std::size_t>(r);
      if (has_id_) {
        if (id_text_) {
          append_field(text_, block.id_text[row]);
        } else if (id_categorical_) {
          const std::int32_t code = block.id_codes[row];
          if (code >= 0 && code < static_cast<std::int32_t>(id_labels_.size())) text_ += id_labels_[static_cast<std::size_t>(code)];
        } else if (id_wide_ && id_signed_) {
          text_ += std::to_string(block.id_signed[row]);
        } else if (id_wide_) {
          text_ += std::to_string(block.id_unsigned[row]);
        } else {
          append_id_number(text_, block.id_numeric[row]);
        }
        text_ += ',';
      }
      switch (task_) {
        case ScoringTask::regression:
          append_float(text_, scores.value[row]);
          break;
        case ScoringTask::binary:
          append_float(text_, scores.positive_probability(r));
          text_ += ',';
          text_ += class_labels_[static_cast<std::size_t>(scores.predicted_class[row])];
          break;
        case ScoringTask::multiclass:
          for (std::int32_t k = 0; k < scores.classes; ++k) {
            append_float(text_, scores.probability[row * static_cast<std::size_t>(scores.classes) + static_cast<std::size_t>(k)]);
            text_ += ',';
          }
          text_ += class_labels_[static_cast<std::size_t>(scores.predicted_class[row])];
          break;
      }
      text_ += '\n';
    }
    put(text_);
  }
  void close() override {
    errno = 0;
    const bool failed = std::fflush(file_) != 0 || std::ferror(file_);
    const int flush_error = errno;
    const bool close_failed = owns_file_ && std::fclose(file_) != 0;
    const int error = flush_error != 0 ? flush_error : errno;
    file_ = nullptr;
    if (failed || close_failed) throw Error(name_ + ": writing the file failed: " + reason(error));
  }

 private:
  static std::FILE* open_file(const std::filesystem::path& path) {
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (!file) throw InputError(path.string() + ": cannot create the file");
    return file;
  }
  static std::string csv_text(const std::string& s) {
    std::string out;
    append_field(out, s);
    return out;
  }
  void put(const std::string& s) {
    errno = 0;
    if (std::fwrite(s.data(), 1, s.size(), file_) != s.size()) {
      throw Error(name_ + ": writing the file failed: " + reason(errno));
    }
  }
  // The system's reason ("No space left on device", "File too large"), when it gave one.
  static std::string reason(int error) { return error != 0 ? std::strerror(error) : "an I/O error"; }

  std::FILE* file_ = nullptr;
  bool owns_file_;
  std::string name_;
  ScoringTask task_;
  bool has_id_, id_text_, id_categorical_, id_wide_, id_signed_;
  std::vector<std::string> id_labels_, class_labels_;
  std::string text_;
};

// The values scored as unknown so far, over every categorical column.
std::int64_t unknown_values(const ScoringSummary& summary) {
  std::int64_t n = 0;
  for (const auto& [column, count] : summary.unknown_categories) n += count;
  return n;
}

}  // namespace

bool score_to_stdout(const std::filesystem::path& output) { return output == "-"; }

bool holds_scores(const std::filesystem::path& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return false;
  // The first line (a header of many --id columns' worth is still short) or HDF5's signature.
  std::string head(4096, '\0');
  head.resize(std::fread(head.data(), 1, head.size(), file));
  std::fclose(file);
  if (starts_with_hdf5_signature(head)) {
    try {
      const h5::H5Handle h5_file = h5::open_file_for_reading(path);
      return h5::attribute_exists(h5_file.get(), "lathe_model", path.string());
    } catch (const Error&) {
      return false;
    }
  }
  const std::size_t end = head.find_first_of("\r\n");
  if (end == std::string::npos) return false;
  const std::string line = head.substr(0, end);
  const auto ends_with_field = [&](const std::string& name) {
    return line == name || (line.size() > name.size() &&
                            line.compare(line.size() - name.size(), name.size(), name) == 0 &&
                            line[line.size() - name.size() - 1] == ',');
  };
  return ends_with_field("prediction") || ends_with_field("predicted_class");
}

std::optional<ColumnInfo> scored_id_column(const std::filesystem::path& input, const ScoreFileOptions& options) {
  // Every string column as text: only the id's type is wanted, not any column's labels.
  TableReader reader(input, score_read_options(options, [](const std::string&) { return true; }));
  if (reader.rows() == 0) return std::nullopt;
  ColumnInfo column = reader.columns().at(static_cast<std::size_t>(find_id_column(reader, options.id_column).index));
  column.categories.clear();
  return column;
}

ScoreFileReport score_file(Scorer& scorer, const std::filesystem::path& input, const std::filesystem::path& output,
                           const ScoreFileOptions& options) {
  const bool to_stdout = score_to_stdout(output);
  if (to_stdout && options.format != ScoreFormat::csv) {
    throw UsageError("--out -: scores go to stdout as CSV only; HDF5 cannot be streamed to a pipe");
  }
  const auto start = std::chrono::steady_clock::now();
  ScoreFileReport report;
  report.input = input;
  report.output = output;
  // Strings the model does not take (an id, a column it ignores) are read only as text, if at
  // all: their labels are not collected, which a unique id per row makes a pass over the file and
  // memory that grows with the rows.
  TableReader reader(
      input, reading_bools_as_inputs(
                 scorer.inputs(), score_read_options(options, [&scorer](const std::string& name) {
                   return std::none_of(scorer.inputs().begin(), scorer.inputs().end(),
                                       [&](const ModelInput& in) { return in.name == name; });
                 })));
  report.input_columns = static_cast<std::int64_t>(reader.columns().size());
  // The preparation, the schema and the id column are checked before the output exists.
  scorer.check_data_file(input);
  // The reader's columns as they are (not copied: with their labels, tens of megabytes for a
  // file of ids), except in an empty partition.
  std::vector<ColumnInfo> retyped;
  if (reader.rows() == 0) {
    // An empty partition holds no value that could contradict the model's column types, and a
    // header-only CSV imports every column as numeric: take the model's types.
    retyped = typed_as_inputs(reader.columns(), scorer.inputs());
  }
  const std::vector<ColumnInfo>& input_columns = reader.rows() == 0 ? retyped : reader.columns();
  const ScoringInput bound = bind_scoring_input(scorer, input_columns, input.string(),
                                                options.id_column.empty() ? std::vector<std::string>{}
                                                                          : std::vector<std::string>{options.id_column});
  report.notes = bound.notes();
  IdColumn id = find_id_column(reader, options.id_column);
  if (id.index >= 0 && reader.rows() == 0 && options.id_of_other_inputs) {
    if (const std::optional<ColumnInfo> other = options.id_of_other_inputs()) take_id_type(id, *other);
  }
  if (id.index >= 0) {
    for (const std::string& name : score_output_columns(scorer)) {
      if (name == id.name) {
        throw InputError(input.string() + ": --id: the column '" + name +
                         "' has the name of an output column; rename it in the input to pass it through");
      }
    }
  }

  std::optional<TemporaryOutput> temporary;  // none for stdout
  if (!to_stdout) temporary.emplace(output);
  std::unique_ptr<ScoreSink> sink;
  if (to_stdout) {
    sink = std::make_unique<CsvSink>(scorer, id);
  } else if (options.format == ScoreFormat::csv) {
    sink = std::make_unique<CsvSink>(temporary->path(), scorer, id);
  } else {
    sink = std::make_unique<H5Sink>(temporary->path(), scorer, id, options.deflate_level, reader.rows());
  }

  const std::int64_t rows = reader.rows();
  const std::int64_t block_rows = reader.block_rows();
  const auto columns = static_cast<std::int64_t>(reader.columns().size());
  const auto read = [&](std::int64_t first, InputBlock& into) {
    read_input_block(reader, id, first, std::min(block_rows, rows - first), into);
  };
  // Two input blocks and two score blocks. While block k is scored, one of the scoring threads
  // writes block k - 1 and then reads block k + 1 into the buffer block k - 1 leaves
  // (score_block's `alongside`, io/scoring_input.h): the I/O overlaps the scoring without a
  // thread of its own competing with the scoring threads for the cores.
  InputBlock blocks[2];
  Scores scores[2];
  std::vector<UnseenLabels> unseen;
  if (rows > 0) read(0, blocks[0]);
  for (std::int64_t first = 0, k = 0; first < rows; first += block_rows, ++k) {
    InputBlock& current = blocks[k % 2];
    InputBlock& other = blocks[(k + 1) % 2];
    const std::int64_t next = first + block_rows;
    const auto io = [&] {
      if (k > 0) sink->write(other, scores[(k + 1) % 2]);
      if (next < rows) read(next, other);
    };
    const std::int64_t unknown_before = unknown_values(report.summary);
    score_block(scorer, bound, ColumnBlockView{current.values.data(), current.rows, columns}, current.first,
                scores[k % 2], &report.summary, io);
    // The block is still whole: its labels are tallied when some were unknown.
    if (unknown_values(report.summary) > unknown_before) {
      tally_unseen_labels(bound, input_columns, ColumnBlockView{current.values.data(), current.rows, columns}, unseen);
    }
    if (next >= rows) sink->write(current, scores[k % 2]);
  }
  sink->close();
  if (temporary) temporary->commit();
  for (UnseenLabels& u : unseen) {
    if (!u.spelled_otherwise.empty()) report.spelled_otherwise[u.column] = std::move(u.spelled_otherwise);
    if (!u.examples.empty()) report.unseen_examples[u.column] = std::move(u.examples);
  }
  report.rows = rows;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace lathe
