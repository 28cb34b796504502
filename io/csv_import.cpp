#include "io/csv_import.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>

#include "io/columnar_writer.h"
#include "io/csv_reader.h"
#include "io/text_check.h"
#include "io/temporary_file.h"
#include "runtime/error.h"

namespace lathe {

namespace {

// Distinct values kept per column while it has seen only numbers: enough for the small integer
// codes that a categorical column often holds, small enough that a wide numeric table costs little.
constexpr std::size_t kNumericLabelLimit = 1024;
// A column is taken as numeric with bad values, rather than categorical, when at least this many
// of its values are non-missing and at least this share of them are numbers.
constexpr std::int64_t kMostlyNumericMinValues = 100;
constexpr double kMostlyNumericShare = 0.99;
constexpr std::int64_t kProgressMinFileBytes = std::int64_t{64} << 20;
constexpr std::size_t kSkippedExamples = 5;
// Upper bound on the row block held in memory: a very wide table gets blocks shorter than a chunk
// (HDF5's chunk cache keeps the partly written chunk, so this costs little).
constexpr std::size_t kBlockBytesLimit = std::size_t{256} << 20;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// `value` trimmed.
bool is_missing(std::string_view value) {
  switch (value.size()) {
    case 0:
      return true;
    case 2:
      return value == "NA";
    case 3:
      return value == "N/A" || value == "NaN" || value == "nan";
    case 4:
      return value == "null" || value == "NULL" || value == "None";
    default:
      return false;
  }
}

// Parses all of `value` (trimmed, not missing) as a number.
bool parse_number(std::string_view value, double& number) {
  const char* first = value.data();
  const char* last = first + value.size();
  if (first != last && *first == '+') {  // from_chars takes no '+'
    ++first;
    if (first == last || *first == '-') return false;
  }
  if (first == last) return false;
  const auto [end, ec] = std::from_chars(first, last, number);
  if (end != last) return false;
  if (ec == std::errc::result_out_of_range) {
    // A number all the same (1e999, 1e-999): strtod gives the infinity or the denormal/zero.
    number = std::strtod(std::string(first, last).c_str(), nullptr);
    return true;
  }
  return ec == std::errc();
}

// Text Lathe would keep (a name or a category label) must be UTF-8 without NUL bytes: the whole
// file is in another encoding (Latin-1, UTF-16) or is not text, which no row skipping fixes.
std::string text_problem(std::string_view text, std::size_t at) {
  const bool nul = text[at] == '\0';
  return std::string("is not UTF-8 text (") + describe_bad_text_byte(text, at) + ")" +
         (nul ? ": a NUL byte (a binary file, or UTF-16 text?)"
              : ": save the file as UTF-8 (from Latin-1: iconv -f latin1 -t utf-8 in.csv > out.csv)");
}

// The value in quotes, cut at 60 bytes; control bytes (a NUL would end the message) as \xNN.
std::string quoted_for_message(std::string_view value) {
  constexpr std::size_t kMax = 60;
  std::string out = "'";
  for (const char ch : value.substr(0, kMax)) {
    if (static_cast<unsigned char>(ch) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02X", static_cast<unsigned>(static_cast<unsigned char>(ch)));
      out += escaped;
    } else {
      out += ch;
    }
  }
  if (value.size() > kMax) out += "...";
  return out + "'";
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using LabelSet = std::unordered_set<std::string, StringHash, std::equal_to<>>;
using LabelCodes = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

void insert_label(LabelSet& labels, std::string_view value) {
  if (labels.find(value) == labels.end()) labels.emplace(value);
}

enum class ForcedType { none, categorical, numeric };

// What pass 1 learns about one column, and the type decided from it.
struct ColumnScan {
  std::string name;
  ForcedType forced = ForcedType::none;
  std::int64_t numbers = 0;      // non-missing values that parse as numbers
  std::int64_t non_numbers = 0;  // non-missing values that do not
  std::int64_t first_non_number_line = 0;
  std::string first_non_number;
  // The distinct non-missing values, split so that a column of numbers keeps at most
  // kNumericLabelLimit of them; a forced categorical column keeps all of its values in `texts`.
  LabelSet texts;
  LabelSet numbers_seen;
  bool numbers_seen_complete = true;

  ColumnType type = ColumnType::numeric;
  bool mostly_numeric = false;  // numeric with some non-numbers (bad values)
  std::vector<std::string> labels;
  LabelCodes codes;
};

// Prints "lathe import: <stage> NN%" on stderr at most once a second, for large files only.
class ImportProgress {
 public:
  ImportProgress(const CsvReader& reader, bool enabled, std::string stage)
      : reader_(reader),
        enabled_(enabled && reader.file_bytes() > kProgressMinFileBytes),
        stage_(std::move(stage)),
        terminal_(isatty(STDERR_FILENO) == 1),
        last_(std::chrono::steady_clock::now()) {}
  ~ImportProgress() {
    if (printed_) std::fputs(terminal_ ? "\n" : "", stderr);
  }
  ImportProgress(const ImportProgress&) = delete;
  ImportProgress& operator=(const ImportProgress&) = delete;

  void record_done() {
    if (!enabled_ || (++records_ & 1023) != 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::seconds(1)) return;
    last_ = now;
    const double percent = 100.0 * static_cast<double>(reader_.bytes_consumed()) /
                           static_cast<double>(reader_.file_bytes());
    std::fprintf(stderr, "%slathe import: %s %3.0f%%%s", terminal_ ? "\r" : "", stage_.c_str(),
                 std::min(percent, 100.0), terminal_ ? "" : "\n");
    std::fflush(stderr);
    printed_ = true;
  }

 private:
  const CsvReader& reader_;
  bool enabled_;
  std::string stage_;
  bool terminal_;
  std::chrono::steady_clock::time_point last_;
  std::int64_t records_ = 0;
  bool printed_ = false;
};

// The import's state across passes.
class CsvImport {
 public:
  CsvImport(const std::filesystem::path& csv, const CsvImportOptions& options)
      : csv_(csv), options_(options), file_(csv.string()) {}

  // Pass 1: header, types, labels, row count, errors.
  void scan();
  // Between the passes, only when needed: labels again, from exactly the rows pass 2 will keep.
  void collect_labels();
  bool needs_label_pass() const;
  void decide_types();
  // Pass 2.
  CsvImportReport write(const std::filesystem::path& temporary_path);

 private:
  void read_header(CsvReader& reader, CsvRecord& record);
  void resolve_forced(const std::vector<std::string>& names, ForcedType type, const char* flag);
  void check_text(std::int64_t line, const ColumnScan& column, std::string_view value) const;
  std::string ragged_reason(const CsvRecord& record) const;
  std::string non_number_reason(std::int64_t line, const ColumnScan& column,
                                std::string_view value) const;
  // A bad row: thrown unless skip_bad_rows, else counted (and kept as an example when early).
  void bad_row(std::string reason, std::int64_t& count, std::vector<std::string>& examples) const;
  // Whether every numeric column of `record` (already of the right width) holds a number or a
  // missing value; else the reason.
  std::optional<std::string> non_number_in_numeric_column(const CsvRecord& record) const;

  std::filesystem::path csv_;
  const CsvImportOptions& options_;
  std::string file_;  // for messages
  std::vector<ColumnScan> columns_;
  std::vector<std::size_t> forced_numeric_;
  std::int64_t kept_rows_ = 0;  // rows pass 1 did not skip
  std::int64_t pass1_skipped_ = 0;
  std::vector<std::string> pass1_skipped_examples_;
  bool rows_known_ = false;  // kept_rows_ is what pass 2 must write
};

void CsvImport::read_header(CsvReader& reader, CsvRecord& record) {
  if (!reader.next(record)) throw InputError(file_ + ": is empty (no header, no rows)");
  columns_.clear();
  std::unordered_map<std::string, std::size_t> position_of_name;
  for (std::size_t i = 0; i < record.fields.size(); ++i) {
    const std::string name(trim(record.fields[i]));
    const std::string where = file_ + ": line " + std::to_string(record.first_line) + ": ";
    if (name.empty()) {
      throw InputError(where + "column " + std::to_string(i + 1) + " of the header has no name");
    }
    if (const auto [it, added] = position_of_name.emplace(name, i); !added) {
      throw InputError(where + "the column name '" + name + "' appears twice (columns " +
                       std::to_string(it->second + 1) + " and " + std::to_string(i + 1) + ")");
    }
    if (const auto bad = first_bad_text_byte(name)) {
      throw InputError(where + "column " + std::to_string(i + 1) + " of the header " + text_problem(name, *bad));
    }
    if (name == "." || name.find('/') != std::string::npos) {
      throw InputError(where + "the column name '" + name +
                       "' cannot name an HDF5 dataset ('.' or containing '/'); rename it");
    }
    columns_.emplace_back().name = name;
  }
}

void CsvImport::resolve_forced(const std::vector<std::string>& names, ForcedType type,
                               const char* flag) {
  for (const std::string& raw : names) {
    const std::string_view name = trim(raw);
    if (name.empty()) continue;
    const auto it = std::find_if(columns_.begin(), columns_.end(),
                                 [&](const ColumnScan& c) { return c.name == name; });
    if (it == columns_.end()) {
      std::string known;
      for (const auto& c : columns_) known += (known.empty() ? "" : ", ") + c.name;
      throw InputError(file_ + ": " + flag + " names the column '" + std::string(name) +
                       "', which the header does not have (columns: " + known + ")");
    }
    if (it->forced != ForcedType::none && it->forced != type) {
      throw InputError(file_ + ": the column '" + it->name +
                       "' is named by both --categorical and --numeric");
    }
    it->forced = type;
  }
}

std::string CsvImport::ragged_reason(const CsvRecord& record) const {
  return "line " + std::to_string(record.first_line) + ": has " +
         std::to_string(record.fields.size()) + (record.fields.size() == 1 ? " field" : " fields") +
         ", the header has " + std::to_string(columns_.size());
}

void CsvImport::check_text(std::int64_t line, const ColumnScan& column, std::string_view value) const {
  if (const auto bad = first_bad_text_byte(value)) {
    throw InputError(file_ + ": line " + std::to_string(line) + ", column '" + column.name + "': " +
                     quoted_for_message(value) + " " + text_problem(value, *bad));
  }
}

std::string CsvImport::non_number_reason(std::int64_t line, const ColumnScan& column,
                                         std::string_view value) const {
  return "line " + std::to_string(line) + ", column '" + column.name +
         "': " + quoted_for_message(value) + " is not a number";
}

void CsvImport::bad_row(std::string reason, std::int64_t& count,
                        std::vector<std::string>& examples) const {
  if (!options_.skip_bad_rows) {
    throw InputError(file_ + ": " + reason + " (pass --skip-bad-rows to skip such rows)");
  }
  ++count;
  if (examples.size() < kSkippedExamples) examples.push_back(std::move(reason));
}

std::optional<std::string> CsvImport::non_number_in_numeric_column(const CsvRecord& record) const {
  double number;
  for (std::size_t c = 0; c < columns_.size(); ++c) {
    if (columns_[c].type != ColumnType::numeric) continue;
    const std::string_view value = trim(record.fields[c]);
    if (!is_missing(value) && !parse_number(value, number)) {
      return non_number_reason(record.first_line, columns_[c], value);
    }
  }
  return std::nullopt;
}

void CsvImport::scan() {
  CsvReader reader(csv_, options_.delimiter);
  CsvRecord record;
  read_header(reader, record);
  resolve_forced(options_.categorical, ForcedType::categorical, "--categorical");
  resolve_forced(options_.numeric, ForcedType::numeric, "--numeric");
  for (std::size_t c = 0; c < columns_.size(); ++c) {
    if (columns_[c].forced == ForcedType::numeric) forced_numeric_.push_back(c);
  }

  ImportProgress progress(reader, options_.progress, "pass 1 of 2 (checking)");
  std::int64_t data_records = 0;
  double number;
  while (reader.next(record)) {
    progress.record_done();
    ++data_records;
    if (record.fields.size() != columns_.size()) {
      bad_row(ragged_reason(record), pass1_skipped_, pass1_skipped_examples_);
      continue;
    }
    // A non-number in a forced numeric column makes the row bad before any of its values count.
    bool bad = false;
    for (const std::size_t c : forced_numeric_) {
      const std::string_view value = trim(record.fields[c]);
      if (!is_missing(value) && !parse_number(value, number)) {
        bad_row(
            non_number_reason(record.first_line, columns_[c], value) + " (the column is --numeric)",
            pass1_skipped_, pass1_skipped_examples_);
        bad = true;
        break;
      }
    }
    if (bad) continue;
    ++kept_rows_;
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      ColumnScan& column = columns_[c];
      if (column.forced == ForcedType::numeric) continue;
      const std::string_view value = trim(record.fields[c]);
      if (is_missing(value)) continue;
      if (column.forced == ForcedType::categorical) {
        check_text(record.first_line, column, value);
        insert_label(column.texts, value);
      } else if (parse_number(value, number)) {
        ++column.numbers;
        if (column.numbers_seen_complete) {
          insert_label(column.numbers_seen, value);
          if (column.numbers_seen.size() > kNumericLabelLimit) {
            column.numbers_seen = LabelSet();
            column.numbers_seen_complete = false;
          }
        }
      } else {
        check_text(record.first_line, column, value);
        if (column.non_numbers++ == 0) {
          column.first_non_number_line = record.first_line;
          column.first_non_number = value;
        }
        insert_label(column.texts, value);
      }
    }
  }
  if (data_records == 0) throw InputError(file_ + ": has a header but no rows");
  if (kept_rows_ == 0) {
    throw InputError(file_ + ": all " + std::to_string(data_records) +
                     " rows are bad and were skipped; the first: " + pass1_skipped_examples_[0]);
  }
  rows_known_ = true;
}

void CsvImport::decide_types() {
  const ColumnScan* first_bad = nullptr;
  for (ColumnScan& column : columns_) {
    if (column.forced == ForcedType::categorical) {
      column.type = ColumnType::categorical;
    } else if (column.forced == ForcedType::numeric || column.non_numbers == 0) {
      column.type = ColumnType::numeric;
    } else {
      const std::int64_t values = column.numbers + column.non_numbers;
      column.mostly_numeric =
          values >= kMostlyNumericMinValues &&
          static_cast<double>(column.numbers) >= kMostlyNumericShare * static_cast<double>(values);
      column.type = column.mostly_numeric ? ColumnType::numeric : ColumnType::categorical;
      if (column.mostly_numeric &&
          (!first_bad || column.first_non_number_line < first_bad->first_non_number_line)) {
        first_bad = &column;
      }
    }
    if (column.type == ColumnType::numeric) {
      column.texts = LabelSet();
      column.numbers_seen = LabelSet();
    }
  }
  if (first_bad && !options_.skip_bad_rows) {
    const ColumnScan& c = *first_bad;
    const std::int64_t values = c.numbers + c.non_numbers;
    char share[32];
    std::snprintf(
        share, sizeof share, "%.2f%%",
        std::floor(10000.0 * static_cast<double>(c.numbers) / static_cast<double>(values)) / 100.0);
    throw InputError(file_ + ": " +
                     non_number_reason(c.first_non_number_line, c, c.first_non_number) +
                     ", though " + share + " of the column's " + std::to_string(values) +
                     " values are numbers (" + std::to_string(c.non_numbers) +
                     (c.non_numbers == 1 ? " is" : " are") +
                     " not); if the column is categorical, pass --categorical '" + c.name +
                     "'; else fix the values or pass --skip-bad-rows to skip such rows");
  }
  if (first_bad) rows_known_ = false;  // pass 2 skips more rows than pass 1 did
}

bool CsvImport::needs_label_pass() const {
  for (const ColumnScan& column : columns_) {
    if (column.type != ColumnType::categorical) continue;
    if (!column.numbers_seen_complete || !rows_known_) return true;
  }
  return false;
}

void CsvImport::collect_labels() {
  for (ColumnScan& column : columns_) {
    column.texts = LabelSet();
    column.numbers_seen = LabelSet();
  }
  CsvReader reader(csv_, options_.delimiter);
  CsvRecord record;
  reader.next(record);  // the header
  ImportProgress progress(reader, options_.progress, "collecting category labels");
  std::int64_t rows = 0;
  while (reader.next(record)) {
    progress.record_done();
    if (record.fields.size() != columns_.size() || non_number_in_numeric_column(record)) continue;
    ++rows;
    for (ColumnScan& column : columns_) {
      if (column.type != ColumnType::categorical) continue;
      const std::string_view value = trim(record.fields[&column - columns_.data()]);
      if (!is_missing(value)) insert_label(column.texts, value);
    }
  }
  kept_rows_ = rows;
  rows_known_ = true;
}

CsvImportReport CsvImport::write(const std::filesystem::path& temporary_path) {
  CsvImportReport report;
  report.columns = static_cast<std::int64_t>(columns_.size());
  std::vector<ColumnSpec> specs;
  for (ColumnScan& column : columns_) {
    if (column.type == ColumnType::categorical) {
      ++report.categorical_columns;
      column.labels.assign(column.texts.begin(), column.texts.end());
      column.labels.insert(column.labels.end(), column.numbers_seen.begin(),
                           column.numbers_seen.end());
      column.texts = LabelSet();
      column.numbers_seen = LabelSet();
      std::sort(column.labels.begin(), column.labels.end());
      if (column.labels.size() >
          static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
        throw InputError(file_ + ": column '" + column.name +
                         "' has more categories than int32 codes");
      }
      column.codes.reserve(column.labels.size());
      for (std::size_t i = 0; i < column.labels.size(); ++i) {
        column.codes.emplace(column.labels[i], static_cast<std::int32_t>(i));
      }
      specs.push_back({column.name, StoredType::categorical_codes});
    } else {
      ++report.numeric_columns;
      specs.push_back({column.name, StoredType::float64});
    }
  }

  const std::size_t width = columns_.size();
  const std::size_t block_rows = static_cast<std::size_t>(std::clamp<std::int64_t>(
      options_.chunk_rows, 1,
      static_cast<std::int64_t>(std::max<std::size_t>(1, kBlockBytesLimit / (8 * width)))));
  ColumnarWriter writer(temporary_path, std::move(specs),
                        ColumnarWriteOptions{.chunk_rows = options_.chunk_rows,
                                             .deflate_level = options_.deflate_level});
  std::vector<std::vector<double>> numbers(width);
  std::vector<std::vector<std::int32_t>> codes(width);
  for (std::size_t c = 0; c < width; ++c) {
    if (columns_[c].type == ColumnType::categorical) {
      writer.set_categories(c, columns_[c].labels);
      codes[c].resize(block_rows);
    } else {
      numbers[c].resize(block_rows);
    }
  }
  std::size_t filled = 0;
  const auto append_block = [&] {
    for (std::size_t c = 0; c < width; ++c) {
      if (columns_[c].type == ColumnType::categorical) {
        writer.append_codes(c, std::span<const std::int32_t>(codes[c].data(), filled));
      } else {
        writer.append_numeric(c, std::span<const double>(numbers[c].data(), filled));
      }
    }
    report.rows += static_cast<std::int64_t>(filled);
    filled = 0;
  };

  CsvReader reader(csv_, options_.delimiter);
  CsvRecord record;
  reader.next(record);  // the header
  ImportProgress progress(reader, options_.progress, "pass 2 of 2 (writing)");
  const std::string changed =
      file_ + ": the file changed while it was being imported; import it again";
  while (reader.next(record)) {
    progress.record_done();
    if (record.fields.size() != width) {
      bad_row(ragged_reason(record), report.skipped_rows, report.skipped_examples);
      continue;
    }
    // Values go straight into the block; a bad row is dropped by not advancing `filled`.
    bool bad = false;
    for (std::size_t c = 0; c < width && !bad; ++c) {
      ColumnScan& column = columns_[c];
      const std::string_view value = trim(record.fields[c]);
      if (column.type == ColumnType::categorical) {
        if (is_missing(value)) {
          codes[c][filled] = -1;
        } else {
          const auto it = column.codes.find(value);
          if (it == column.codes.end()) throw InputError(changed);
          codes[c][filled] = it->second;
        }
      } else if (is_missing(value)) {
        numbers[c][filled] = std::numeric_limits<double>::quiet_NaN();
      } else if (!parse_number(value, numbers[c][filled])) {
        bad_row(non_number_reason(record.first_line, column, value), report.skipped_rows,
                report.skipped_examples);
        bad = true;
      }
    }
    if (bad) continue;
    if (++filled == block_rows) append_block();
  }
  append_block();
  if (rows_known_ && report.rows != kept_rows_) throw InputError(changed);
  if (report.rows == 0) {
    if (report.skipped_examples.empty()) throw InputError(changed);
    throw InputError(file_ + ": all " + std::to_string(report.skipped_rows) +
                     " rows are bad and were skipped; the first: " + report.skipped_examples[0]);
  }
  writer.set_attribute("lathe_source", csv_.filename().string());
  writer.close();
  return report;
}

}  // namespace

CsvImportReport import_csv(const std::filesystem::path& csv, const std::filesystem::path& out,
                           const CsvImportOptions& options) {
  if (options.chunk_rows < 1) {
    throw InputError("chunk rows must be at least 1, not " + std::to_string(options.chunk_rows));
  }
  if (options.deflate_level < 0 || options.deflate_level > 9) {
    throw InputError("the compression level must be 0..9, not " +
                     std::to_string(options.deflate_level));
  }
  std::error_code ec;
  const auto status = std::filesystem::status(csv, ec);
  if (std::filesystem::exists(status) && !std::filesystem::is_directory(status) &&
      !std::filesystem::is_regular_file(status)) {
    throw InputError(csv.string() + ": is not a regular file (the import reads it twice)");
  }
  if (std::filesystem::exists(out, ec) && std::filesystem::equivalent(csv, out, ec)) {
    throw InputError(out.string() + ": is the CSV file being imported; choose another output");
  }
  // Made first so that a bad output folder fails before a long pass 1; it creates no file.
  TemporaryOutput output(out);
  CsvImport import(csv, options);
  import.scan();
  import.decide_types();
  if (import.needs_label_pass()) import.collect_labels();
  CsvImportReport report = import.write(output.path());
  output.commit();
  return report;
}

}  // namespace lathe
