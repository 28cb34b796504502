// The records of a CSV file's data (everything after the header) read in byte segments that
// threads split at once, for `lathe import`'s parallel path.
//
// This works only for data without a '"' byte and without a lone CR (a '\r' not followed by '\n'):
// there every '\n' ends a record, so a segment can begin after any '\n' and be split on its own,
// into exactly the records CsvReader would hand out for the same bytes. A segment says whether its
// bytes qualify (plain()); the caller reads the file with CsvReader when one does not.
//
// A segment owns the lines that start in its share of the data: [begin + i * segment_bytes,
// begin + (i + 1) * segment_bytes). Its bytes reach from the first such line to the '\n' that ends
// the last one (or the end of the file), so a line longer than a segment is owned by the segment it
// starts in, and a segment in the middle of such a line owns nothing.
#pragma once

#include <cstdint>
#include <string_view>
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
  // Reads segment `index` of `region` with pread, counts its line breaks and checks that it is
  // plain(). False when the file ends before the region does (the file changed).
  bool read(const ReadOnlyFile& file, const CsvDataRegion& region, std::int64_t index);

  // No '"' and no lone '\r' in its bytes: only then may next() be called.
  bool plain() const { return plain_; }
  std::int64_t line_breaks() const { return line_breaks_; }  // '\n' bytes in its lines
  std::int64_t end_offset() const { return end_offset_; }    // file offset after its last byte
  // Sets the physical line of the segment's first byte (known once the segments before it have
  // counted their line breaks) and starts next() over at the first record.
  void start_records(std::int64_t first_line);

  // Hands out the next record as CsvReader would (blank lines skipped, a '\r' before '\n'
  // dropped, no trimming); its fields view the segment's bytes and stay valid until the next
  // read(). False at the end of the segment.
  bool next(CsvRecord& record);

 private:
  // The first delimiter or '\n' at or after p in the segment's lines, else their end.
  const char* find_field_end(const char* p);

  std::vector<char> buffer_;
  std::string_view lines_;  // the owned lines, in buffer_
  bool plain_ = true;
  std::int64_t line_breaks_ = 0;
  std::int64_t end_offset_ = 0;
  const char* cursor_ = nullptr;
  std::int64_t line_ = 0;  // physical line of the byte at cursor_
  char delimiter_ = ',';
  // Where the delimiters and line breaks are among the 64 bytes from mask_start_ (bit i: byte i).
  const char* mask_start_ = nullptr;
  std::uint64_t mask_ = 0;
};

}  // namespace lathe
