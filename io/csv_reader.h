// A streaming RFC-4180 record reader: reads a CSV file front to back in large blocks and hands out
// one record (a row of fields) at a time, so memory is bounded by the longest record, not the file.
//
// What it accepts:
//   - fields separated by a one-byte delimiter; records ended by LF, CRLF or a lone CR;
//   - quoted fields ("..."), which may hold the delimiter, line breaks and doubled quotes ("");
//     a quote is special only as a field's first byte, elsewhere it is an ordinary byte; bytes
//     after a closing quote and before the next delimiter are kept as they are (as Python's csv);
//   - a UTF-8 byte order mark at the start of the file (dropped);
//   - a last record with or without a line break after it;
//   - blank lines (no bytes at all between two line breaks, or only spaces and tabs other than the
//     delimiter, as pandas' skip_blank_lines), which are skipped.
// A quoted field still open at the end of the file is an InputError naming the line it opened on.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lathe {

// One record. The fields view bytes owned by the reader and stay valid until its next call to
// next(); quotes are removed and doubled quotes undone, nothing else is changed (no trimming).
struct CsvRecord {
  std::vector<std::string_view> fields;
  std::int64_t first_line = 0;  // 1-based physical line of the file on which the record starts
};

class CsvReader {
 public:
  // Opens `path`. Throws InputError naming the file when it is missing, a directory or unreadable.
  // `delimiter` must not be a quote, CR or LF.
  CsvReader(const std::filesystem::path& path, char delimiter);
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // Reads the next record into `record`; returns false (and leaves it empty) at the end of the
  // file. Throws InputError on an unclosed quoted field, Error on a read failure.
  bool next(CsvRecord& record);

  const std::filesystem::path& path() const { return path_; }
  std::int64_t file_bytes() const { return file_bytes_; }  // size of the file when opened
  std::int64_t bytes_consumed() const;                     // bytes parsed so far, for progress
  std::int64_t line() const { return line_; }  // physical line of the next unparsed byte

 private:
  // Makes at least one unread byte available; false at the end of the file.
  bool fill();
  // Reads one field into field_bytes_; true when a delimiter ended it, false at the end of the
  // record (a line break or the end of the file). Not `quotable`: the field's bytes so far (spaces
  // or tabs) are in field_bytes_ already, so a quote is an ordinary byte.
  bool read_field(bool quotable);
  // A space or tab that is not the delimiter: a line of these only is blank.
  bool is_blank(char c) const { return (c == ' ' || c == '\t') && c != delimiter_; }
  void end_line_after_cr();

  std::filesystem::path path_;
  char delimiter_;
  struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };
  std::unique_ptr<std::FILE, FileCloser> file_;
  std::int64_t file_bytes_ = 0;
  std::vector<char> buffer_;
  const char* pos_ = nullptr;
  const char* end_ = nullptr;
  std::int64_t bytes_before_buffer_ = 0;  // file offset of buffer_[0]
  bool at_file_start_ = true;
  std::int64_t line_ = 1;  // physical line of the byte at pos_
  // The current record's unquoted bytes, field after field, and where each field ends; reused
  // from record to record so reading allocates only while records keep getting longer.
  std::string field_bytes_;
  std::vector<std::size_t> field_ends_;
};

}  // namespace lathe
