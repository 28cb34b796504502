#include "io/csv_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <system_error>

#include "io/hdf5_signature.h"
#include "runtime/error.h"

namespace lathe {

namespace {

// Large reads keep the parser, not the system calls, the bottleneck.
constexpr std::size_t kReadBlockBytes = std::size_t{1} << 20;

// The line breaks in the quoted bytes [start, stop) as the reader counts them outside quotes: each
// '\n', and each '\r' that no '\n' follows (a lone-CR file's line end, so that its line numbers are
// the physical lines an LF file's are). A '\r' that ends the buffer (`stop` is its end) is left to
// the next byte read: `cr_at_end` says so.
std::int64_t quoted_line_breaks(const char* start, const char* stop, bool stop_is_buffer_end, bool& cr_at_end) {
  std::int64_t breaks = std::count(start, stop, '\n');
  for (auto* cr = static_cast<const char*>(std::memchr(start, '\r', stop - start)); cr;
       cr = static_cast<const char*>(std::memchr(cr + 1, '\r', stop - (cr + 1)))) {
    if (cr + 1 < stop) {
      breaks += cr[1] != '\n';
    } else if (stop_is_buffer_end) {
      cr_at_end = true;
    } else {
      ++breaks;  // the closing quote follows
    }
  }
  return breaks;
}

}  // namespace

CsvReader::CsvReader(const std::filesystem::path& path, char delimiter)
    : path_(path), delimiter_(delimiter) {
  if (delimiter == '"' || delimiter == '\n' || delimiter == '\r') {
    throw InputError(path_.string() + ": the delimiter cannot be a quote or a line break");
  }
  std::error_code ec;
  const auto status = std::filesystem::status(path_, ec);
  if (!std::filesystem::exists(status)) {
    throw InputError(path_.string() + ": no such file");
  }
  if (std::filesystem::is_directory(status)) {
    throw InputError(path_.string() + ": is a folder, not a CSV file");
  }
  file_.reset(std::fopen(path_.c_str(), "rb"));
  if (!file_) {
    throw InputError(path_.string() + ": cannot open: " + std::strerror(errno));
  }
  // An HDF5 file (its signature at the start; a userblock moves it, which this does not look for)
  // given where a CSV file is expected: what to do instead, not "not UTF-8 text".
  {
    char signature[8] = {};
    const std::size_t got = std::fread(signature, 1, sizeof signature, file_.get());
    if (starts_with_hdf5_signature(std::string_view(signature, got))) {
      throw InputError(path_.string() + ": is an HDF5 file, not CSV: Lathe reads it as it is (`lathe inspect " +
                       path_.string() + "` describes it)");
    }
    // So is a compressed CSV (data.csv.gz, which pandas reads as it is) or a spreadsheet: their
    // first bytes are not text either, and "save the file as UTF-8 (from Latin-1 ...)" misleads.
    // Each signature holds a byte that no UTF-8 text starts with (bzip2's "BZh9" is followed by
    // its first block's magic, "1AY&SY"), so no CSV is taken for one.
    const auto starts_with = [&](std::string_view magic) {
      return got >= magic.size() && std::memcmp(signature, magic.data(), magic.size()) == 0;
    };
    const std::string file = path_.string();
    const auto refuse = [&](const std::string& what, const std::string& instead) {
      throw InputError(file + ": is " + what + ", not CSV text: " + instead + ", then import the CSV");
    };
    const auto decompress = [&](const char* tool) {
      return "decompress it first (" + std::string(tool) + " " + file + ")";
    };
    if (starts_with("\x1f\x8b")) refuse("gzip-compressed", decompress("gunzip -k"));
    if (got == sizeof signature && starts_with("BZh") && signature[3] >= '1' && signature[3] <= '9' &&
        std::memcmp(signature + 4, "1AY&", 4) == 0) {
      refuse("bzip2-compressed", decompress("bunzip2 -k"));
    }
    if (starts_with(std::string_view("\xfd" "7zXZ\x00", 6))) refuse("xz-compressed", decompress("unxz -k"));
    if (starts_with("\x28\xb5\x2f\xfd")) refuse("zstd-compressed", decompress("unzstd"));
    if (starts_with("PK\x03\x04")) refuse("a zip archive or an Excel workbook", "unzip it, or save the sheet as CSV");
    if (starts_with("\xd0\xcf\x11\xe0")) refuse("an Excel 97-2003 workbook", "save the sheet as CSV");
    // UTF-16 with its byte order mark (Excel's "Unicode Text", PowerShell's Out-File, SQL Server's
    // exports): the error for its first byte would advise converting from Latin-1, which garbles
    // it. UTF-32's little-endian mark starts as UTF-16's does, and converting it as UTF-16 garbles
    // it.
    if (starts_with(std::string_view("\xff\xfe\x00\x00", 4)) ||
        starts_with(std::string_view("\x00\x00\xfe\xff", 4))) {
      throw InputError(
          file + ": is UTF-32 text (it starts with a UTF-32 byte order mark); Lathe reads UTF-8: " +
          "convert it first (iconv -f UTF-32 -t UTF-8 " + file +
          " > out.csv), then import the CSV");
    }
    if (starts_with("\xff\xfe") || starts_with("\xfe\xff")) {
      throw InputError(file + ": is UTF-16 text (it starts with a UTF-16 byte order mark); Lathe reads UTF-8: " +
                       "convert it first (iconv -f UTF-16 -t UTF-8 " + file + " > out.csv), then import the CSV");
    }
    std::rewind(file_.get());
  }
  const auto size = std::filesystem::file_size(path_, ec);
  file_bytes_ = ec ? 0 : static_cast<std::int64_t>(size);
  buffer_.resize(kReadBlockBytes);
  pos_ = end_ = buffer_.data();
}

CsvReader::~CsvReader() = default;

std::int64_t CsvReader::bytes_consumed() const {
  return bytes_before_buffer_ + (pos_ - buffer_.data());
}

bool CsvReader::fill() {
  if (pos_ < end_) return true;
  // Every byte of the buffer has been copied out (fields own their bytes), so it is reused whole.
  bytes_before_buffer_ += end_ - buffer_.data();
  const std::size_t n = std::fread(buffer_.data(), 1, buffer_.size(), file_.get());
  pos_ = buffer_.data();
  end_ = pos_ + n;
  if (n == 0) {
    if (std::ferror(file_.get())) {
      throw Error(path_.string() + ": read failed: " + std::strerror(errno));
    }
    return false;
  }
  if (at_file_start_) {
    at_file_start_ = false;
    if (n >= 3 && std::memcmp(pos_, "\xEF\xBB\xBF", 3) == 0) pos_ += 3;
    if (pos_ == end_) return fill();  // a file that is a byte order mark and nothing more
  }
  return true;
}

void CsvReader::end_line_after_cr() {
  ++line_;
  if (fill() && *pos_ == '\n') ++pos_;
}

bool CsvReader::read_field(bool quotable) {
  if (!fill()) return false;
  if (quotable && *pos_ == '"') {
    const std::int64_t opened_on = line_;
    ++pos_;
    bool cr_at_end = false;  // the quoted bytes so far end in a '\r' that ended the buffer
    for (;;) {
      if (!fill()) {
        throw InputError(path_.string() + ": line " + std::to_string(opened_on) +
                         ": a quoted field opens here and is never closed (an unbalanced '\"')");
      }
      if (cr_at_end && *pos_ != '\n') ++line_;
      cr_at_end = false;
      const char* start = pos_;
      const auto* quote = static_cast<const char*>(std::memchr(pos_, '"', end_ - pos_));
      const char* stop = quote ? quote : end_;
      line_ += quoted_line_breaks(start, stop, !quote, cr_at_end);
      field_bytes_.append(start, stop);
      pos_ = stop;
      if (!quote) continue;
      ++pos_;
      if (fill() && *pos_ == '"') {  // "" inside quotes is one quote
        field_bytes_.push_back('"');
        ++pos_;
        continue;
      }
      break;
    }
  }
  // An unquoted field, or whatever follows a closing quote up to the delimiter or line break.
  const char delimiter = delimiter_;
  for (;;) {
    if (!fill()) return false;
    const char* start = pos_;
    const char* end = end_;
    const char* p = pos_;
    while (p < end && *p != delimiter && *p != '\n' && *p != '\r') ++p;
    field_bytes_.append(start, p);
    pos_ = p;
    if (p == end) continue;
    const char c = *pos_++;
    if (c == delimiter) return true;
    if (c == '\n') {
      ++line_;
    } else {
      end_line_after_cr();
    }
    return false;
  }
}

bool CsvReader::next(CsvRecord& record) {
  record.fields.clear();
  field_bytes_.clear();
  field_ends_.clear();
  bool quotable = true;  // the first field may be quoted: no spaces or tabs before it
  for (;;) {  // skip blank lines, and lines of spaces and tabs only (not the delimiter)
    if (!fill()) return false;
    if (*pos_ == '\n') {
      ++pos_;
      ++line_;
    } else if (*pos_ == '\r') {
      ++pos_;
      end_line_after_cr();
    } else if (is_blank(*pos_)) {
      // Kept as the start of the first field unless the line ends (or the file) after them.
      do {
        field_bytes_.push_back(*pos_++);
      } while (fill() && is_blank(*pos_));
      if (pos_ != end_ && *pos_ != '\n' && *pos_ != '\r') {
        quotable = false;
        break;
      }
      field_bytes_.clear();
    } else {
      break;
    }
  }
  record.first_line = line_;
  while (read_field(quotable)) {
    field_ends_.push_back(field_bytes_.size());
    quotable = true;
  }
  field_ends_.push_back(field_bytes_.size());
  // Views are made only now: field_bytes_ may have moved while the record grew.
  std::size_t start = 0;
  for (const std::size_t end : field_ends_) {
    record.fields.emplace_back(field_bytes_.data() + start, end - start);
    start = end;
  }
  return true;
}

}  // namespace lathe
