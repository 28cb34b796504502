// The records of a CSV file's data (everything after the header) read in byte segments that
// threads split at once, for `lathe import`'s parallel path.
//
// A segment owns the lines that start in its share of the data: [begin + i * segment_bytes,
// begin + (i + 1) * segment_bytes). Its bytes reach from the first such line to the '\n' that ends
// the last one (or the end of the file), so a line longer than a segment is owned by the segment it
// starts in, and a segment in the middle of such a line owns nothing.
//
// A segment splits its bytes with CsvReader's full rules (quoted fields holding delimiters, line
// breaks and doubled quotes), assuming that a record starts at its first byte. That is speculation:
// a quoted field with a line break can run from one segment into the next, and then the next one
// started inside a record and its records are wrong. A segment whose last record runs past its
// bytes reports where that record starts (open_record()); the caller checks, in file order, that
// each segment begins exactly where the records before it ended, parses again from the true
// boundary where one does not, and reads a record that ran past its segment whole with
// read_spanning_record().
//
// Lines are counted as '\n' bytes, which is how CsvReader counts them unless a '\r' ends a line
// alone; a segment says when it holds such a lone CR (lone_cr()), and the caller then reads the file
// with CsvReader.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/csv_reader.h"
#include "io/read_only_file.h"

namespace lathe {

// Where a file's data lies and how it is cut into segments.
struct CsvDataRegion {
  std::int64_t begin = 0;          // file offset just after the header's line break
  std::int64_t end = 0;            // file size
  std::int64_t first_line = 0;     // physical (1-based) line of the byte at `begin`
  std::int64_t segment_bytes = 0;  // > 0
  char delimiter = ',';

  std::int64_t segments() const {
    return end > begin ? (end - begin + segment_bytes - 1) / segment_bytes : 0;
  }
};

// One segment's bytes (owned, reused from read to read) and a cursor over its records.
class CsvSegment {
 public:
  // Reads segment `index` of `region` with pread and takes a census of its bytes. With
  // `start_at` >= 0 (a file offset in the segment's share where a record is known to start) its
  // lines start there instead. False when the file ends before the region does (the file changed).
  bool read(const ReadOnlyFile& file, const CsvDataRegion& region, std::int64_t index,
            std::int64_t start_at = -1);

  // Makes this segment hold exactly one record: the open record of `from` (a segment parsed from a
  // true record boundary), whose bytes go on past `from`'s into those of `following` (the segments
  // after `from` in file order, as read) and then into the file. Reads no byte of the file that
  // `from` and `following` hold, and holds no more than that record (its offsets are the record's;
  // start_records() before next()). lone_cr when the record holds one (CsvReader may split it
  // otherwise), file_changed when the file ends before the region. Throws InputError naming
  // `file_name` and the line a quoted field opened on when the file ends inside it (CsvReader's
  // message).
  enum class SpanningRead { read, lone_cr, file_changed };
  SpanningRead read_spanning_record(const ReadOnlyFile& file, const CsvDataRegion& region,
                                    const CsvSegment& from, std::span<const CsvSegment> following,
                                    const std::string& file_name);

  bool owns_lines() const { return !lines_.empty(); }
  // A '\r' that no '\n' follows (anywhere, quoted or not): only without one may next() be called.
  bool lone_cr() const { return lone_cr_; }
  std::int64_t line_breaks() const { return line_breaks_; }    // '\n' bytes in its lines
  std::int64_t begin_offset() const { return begin_offset_; }  // file offset of its first byte
  std::int64_t end_offset() const { return end_offset_; }      // file offset after its last byte
  std::int64_t first_line() const { return first_line_; }      // set by start_records()
  // Sets the physical line of the segment's first byte (known once the segments before it have
  // counted their line breaks) and starts next() over at the first record.
  void start_records(std::int64_t first_line);
  // Starts next() over at file offset `offset` in the segment's lines, a record boundary on
  // physical line `line`.
  void start_records_at(std::int64_t offset, std::int64_t line);

  // Splits the segment's records from file offset `offset` (a record boundary on physical line
  // `line`) only to learn what open_record() says of them, with no record handed out. Once a record
  // starts where one of the first few records of the parse from the segment's first byte started,
  // the rest is that parse's, and so is its outcome: usually a few records after `offset`.
  void split_from(std::int64_t offset, std::int64_t line);

  // Hands out the next record as CsvReader would (blank lines and lines of spaces and tabs only
  // skipped, a '\r' before '\n' dropped, quotes removed and doubled quotes undone, no trimming);
  // its fields view the segment's bytes, or a side buffer for fields that needed unquoting, and
  // stay valid until the next call.
  // False at the end of the segment, or at a record that does not end in the segment's bytes
  // (open_record() then says where it starts).
  bool next(CsvRecord& record);

  // After next() returned false: whether it stopped at a record that runs past the segment's
  // bytes, and its file offset and physical line.
  bool open_record() const { return open_record_; }
  std::int64_t open_record_offset() const { return open_record_offset_; }
  std::int64_t open_record_line() const { return open_record_line_; }

 private:
  // The first delimiter or '\n' at or after p in the segment's lines, else their end.
  const char* find_field_end(const char* p);
  // The quoted field opening at p (a '"') into side_, as CsvReader unquotes it: up to the delimiter
  // or line break after its closing quote. nullptr when the closing quote is not in the lines.
  const char* unquote_field(const char* p, const char* end);
  // A space or tab that is not the delimiter: a line of these only is blank.
  bool is_blank(char c) const { return (c == ' ' || c == '\t') && c != delimiter_; }
  // Takes the census of lines_ and says where they lie in the file.
  void take_census_of_lines(std::int64_t begin_offset, const CsvDataRegion& region);

  std::vector<char> buffer_;
  std::string_view lines_;  // the owned lines, in buffer_
  bool lone_cr_ = false;
  bool has_quotes_ = false;  // a '"' in lines_: next() takes the quote-aware way
  bool ends_file_ = false;   // lines_ end the data: a record may end there without a line break
  std::int64_t line_breaks_ = 0;
  std::int64_t begin_offset_ = 0;
  std::int64_t end_offset_ = 0;
  std::int64_t first_line_ = 0;
  const char* cursor_ = nullptr;
  std::int64_t line_ = 0;  // physical line of the byte at cursor_
  char delimiter_ = ',';
  bool open_record_ = false;
  std::int64_t open_record_offset_ = 0;
  std::int64_t open_record_line_ = 0;
  std::int64_t open_quote_line_ = 0;  // where the quoted field left open opened
  bool reached_end_ = false;          // next() has returned false since the last start
  const char* record_start_ = nullptr;  // where the record next() handed out last starts
  // Where the first records of the parse from the first byte start (for split_from).
  std::vector<const char*> first_record_starts_;
  bool recording_starts_ = false;
  // The unquoted bytes of the current record's fields that needed unquoting, and which fields
  // those are (index, offset in side_): views are made when the record is complete.
  std::string side_;
  std::vector<std::pair<std::size_t, std::size_t>> side_fields_;
  // Where the delimiters and line breaks are among the 64 bytes from mask_start_ (bit i: byte i).
  const char* mask_start_ = nullptr;
  std::uint64_t mask_ = 0;
};

}  // namespace lathe
