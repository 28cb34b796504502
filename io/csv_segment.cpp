#include "io/csv_segment.h"

#include <algorithm>
#include <cstring>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "runtime/error.h"

namespace lathe {

namespace {

// A line that runs past the segment's share is read on in steps of this size until it ends.
constexpr std::int64_t kLineTailReadBytes = std::int64_t{64} << 10;
// Records whose starts the parse from a segment's first byte keeps, for split_from to meet.
constexpr std::size_t kRecordStartsKept = 64;
// Bytes kept readable after the data, for field_end_mask's 64-byte looks.
constexpr std::size_t kPaddingBytes = 64;

// What one look at a segment's bytes tells: its line breaks, whether it holds a quote, and whether
// a '\r' that no '\n' follows (CsvReader ends a record at a lone CR, which a segment cannot know).
struct ByteCensus {
  std::int64_t line_breaks = 0;
  bool quotes = false;
  bool lone_cr = false;
};

ByteCensus take_census(std::string_view text) {
  ByteCensus census;
  const char* p = text.data();
  const char* const end = p + text.size();
  bool cr_before = false;  // the byte before p is a '\r'
#if defined(__SSE2__)
  // 16 bytes at a time: masks of the line breaks, quotes and CRs; a CR is lone unless the next
  // bit of the line-break mask (or the first of the next 16 bytes) is set.
  // Line breaks are counted per byte lane (a match is -1, subtracted) and summed every 255 steps,
  // before a lane can overflow.
  const __m128i line_breaks = _mm_set1_epi8('\n');
  const __m128i quotes = _mm_set1_epi8('"');
  const __m128i crs = _mm_set1_epi8('\r');
  const __m128i zero = _mm_setzero_si128();
  __m128i any_quote = zero;
  __m128i lane_counts = zero;
  __m128i sums = zero;
  int steps = 0;
  for (; end - p >= 16; p += 16) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i is_lf = _mm_cmpeq_epi8(bytes, line_breaks);
    lane_counts = _mm_sub_epi8(lane_counts, is_lf);
    any_quote = _mm_or_si128(any_quote, _mm_cmpeq_epi8(bytes, quotes));
    const auto cr = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(bytes, crs)));
    if (cr != 0 || cr_before) {
      const auto lf = static_cast<unsigned>(_mm_movemask_epi8(is_lf));
      if (cr_before && !(lf & 1u)) census.lone_cr = true;
      if (cr & ~(lf >> 1) & 0x7FFFu) census.lone_cr = true;
      cr_before = (cr & 0x8000u) != 0;
    }
    if (++steps == 255) {
      sums = _mm_add_epi64(sums, _mm_sad_epu8(lane_counts, zero));
      lane_counts = zero;
      steps = 0;
    }
  }
  sums = _mm_add_epi64(sums, _mm_sad_epu8(lane_counts, zero));
  census.line_breaks = _mm_cvtsi128_si64(sums) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(sums, sums));
  if (_mm_movemask_epi8(any_quote) != 0) census.quotes = true;
#endif
  for (; p != end; ++p) {
    if (cr_before && *p != '\n') census.lone_cr = true;
    cr_before = *p == '\r';
    census.line_breaks += *p == '\n';
    if (*p == '"') census.quotes = true;
  }
  if (cr_before) census.lone_cr = true;  // a CR ends the segment, which ends after '\n' or the file
  return census;
}

// Bit i set where p[i] is the delimiter or '\n', for the 64 bytes from p (which may run into the
// buffer's padding). With SSE2, 16 bytes at a time.
std::uint64_t field_end_mask(const char* p, char delimiter) {
  std::uint64_t mask = 0;
#if defined(__SSE2__)
  const __m128i delimiters = _mm_set1_epi8(delimiter);
  const __m128i line_breaks = _mm_set1_epi8('\n');
  for (int k = 0; k < 4; ++k) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
    const auto hits = static_cast<unsigned>(_mm_movemask_epi8(
        _mm_or_si128(_mm_cmpeq_epi8(bytes, delimiters), _mm_cmpeq_epi8(bytes, line_breaks))));
    mask |= static_cast<std::uint64_t>(hits) << (16 * k);
  }
#else
  for (int i = 0; i < 64; ++i) {
    if (p[i] == delimiter || p[i] == '\n') mask |= std::uint64_t{1} << i;
  }
#endif
  return mask;
}

}  // namespace

bool CsvSegment::read(const ReadOnlyFile& file, const CsvDataRegion& region, std::int64_t index,
                      std::int64_t start_at) {
  lines_ = {};
  delimiter_ = region.delimiter;
  lone_cr_ = has_quotes_ = ends_file_ = open_record_ = false;
  line_breaks_ = 0;
  cursor_ = nullptr;
  const std::int64_t share_begin = region.begin + index * region.segment_bytes;
  const std::int64_t share_end = std::min(region.end, share_begin + region.segment_bytes);
  // Where a record is known to start, the lines start there. Elsewhere one byte before the share
  // tells whether a line starts at its first byte; the region's first byte always starts one (the
  // header's line break may be a lone CR, which the data may not hold).
  const bool known_start = start_at >= 0 || index == 0;
  const std::int64_t read_from = start_at >= 0 ? start_at : index == 0 ? share_begin : share_begin - 1;
  begin_offset_ = end_offset_ = share_end;
  auto size = static_cast<std::size_t>(share_end - read_from);  // bytes read into buffer_
  buffer_.resize(size + kPaddingBytes);
  if (!file.read_exactly(buffer_.data(), size, static_cast<std::uint64_t>(read_from))) return false;
  std::size_t first = 0;
  if (!known_start) {
    const auto* line_break = static_cast<const char*>(std::memchr(buffer_.data(), '\n', size));
    // No line starts in the share (it lies inside a longer line), or the first one starts at
    // share_end and belongs to the next segment.
    if (!line_break || line_break + 1 == buffer_.data() + size) return true;
    first = static_cast<std::size_t>(line_break + 1 - buffer_.data());
  }
  if (buffer_[size - 1] != '\n') {  // the last line goes on past the share, or ends the file
    std::int64_t at = share_end;
    while (at < region.end) {
      const auto step = static_cast<std::size_t>(std::min(kLineTailReadBytes, region.end - at));
      buffer_.resize(size + step + kPaddingBytes);
      if (!file.read_exactly(buffer_.data() + size, step, static_cast<std::uint64_t>(at))) {
        return false;
      }
      at += static_cast<std::int64_t>(step);
      const auto* line_break =
          static_cast<const char*>(std::memchr(buffer_.data() + size, '\n', step));
      if (line_break) {
        size = static_cast<std::size_t>(line_break + 1 - buffer_.data());
        break;
      }
      size += step;
    }
  }
  lines_ = std::string_view(buffer_.data() + first, size - first);
  take_census_of_lines(read_from + static_cast<std::int64_t>(first), region);
  return true;
}

void CsvSegment::take_census_of_lines(std::int64_t begin_offset, const CsvDataRegion& region) {
  begin_offset_ = begin_offset;
  end_offset_ = begin_offset + static_cast<std::int64_t>(lines_.size());
  ends_file_ = end_offset_ == region.end;
  const ByteCensus census = take_census(lines_);
  lone_cr_ = census.lone_cr;
  has_quotes_ = census.quotes;
  line_breaks_ = census.line_breaks;
}

CsvSegment::SpanningRead CsvSegment::read_spanning_record(const ReadOnlyFile& file,
                                                          const CsvDataRegion& region,
                                                          const CsvSegment& from,
                                                          std::span<const CsvSegment> following,
                                                          const std::string& file_name) {
  delimiter_ = region.delimiter;
  const std::int64_t begin = from.open_record_offset_;
  const std::int64_t line = from.open_record_line_;
  // The record's bytes that are in memory already, in file order, then those after them in the file.
  std::vector<std::string_view> pieces = {
      from.lines_.substr(static_cast<std::size_t>(begin - from.begin_offset_))};
  std::int64_t file_at = from.end_offset_;
  for (const CsvSegment& segment : following) {
    if (!segment.owns_lines()) continue;
    pieces.push_back(segment.lines_);
    file_at = segment.end_offset_;
  }
  std::size_t piece = 0;
  std::size_t piece_used = 0;
  std::size_t held = 0;
  for (;;) {
    // At least as many bytes again as are held before trying again, so that all tries together
    // parse the record's bytes a few times, however many steps it takes. The first try takes no
    // more than a segment's bytes, so that tests with small segments meet records longer than a
    // try (even before their first quote: next() then says that the record goes on).
    const std::size_t wanted = std::max(
        held, static_cast<std::size_t>(std::min(kLineTailReadBytes, region.segment_bytes)));
    for (std::size_t taken = 0; taken < wanted;) {
      std::size_t step = 0;
      if (piece < pieces.size()) {
        step = std::min(wanted - taken, pieces[piece].size() - piece_used);
        buffer_.resize(held + step + kPaddingBytes);
        std::memcpy(buffer_.data() + held, pieces[piece].data() + piece_used, step);
        piece_used += step;
        if (piece_used == pieces[piece].size()) {
          ++piece;
          piece_used = 0;
        }
      } else if (file_at < region.end) {
        step = static_cast<std::size_t>(
            std::min(static_cast<std::int64_t>(wanted - taken), region.end - file_at));
        buffer_.resize(held + step + kPaddingBytes);
        if (!file.read_exactly(buffer_.data() + held, step, static_cast<std::uint64_t>(file_at))) {
          return SpanningRead::file_changed;
        }
        file_at += static_cast<std::int64_t>(step);
      } else {
        break;
      }
      held += step;
      taken += step;
    }
    lines_ = std::string_view(buffer_.data(), held);
    take_census_of_lines(begin, region);
    start_records_at(begin, line);
    CsvRecord record;
    next(record);
    if (!open_record_) break;
    if (ends_file_) {
      // A lone CR would have ended the record earlier for CsvReader (and counts as a line).
      if (lone_cr_) return SpanningRead::lone_cr;
      throw InputError(file_name + ": line " + std::to_string(open_quote_line_) +
                       ": a quoted field opens here and is never closed (an unbalanced '\"')");
    }
  }
  lines_ = lines_.substr(0, static_cast<std::size_t>(cursor_ - lines_.data()));
  take_census_of_lines(begin, region);
  return lone_cr_ ? SpanningRead::lone_cr : SpanningRead::read;
}

void CsvSegment::start_records(std::int64_t first_line) {
  first_line_ = first_line;
  start_records_at(begin_offset_, first_line);
  first_record_starts_.clear();
  recording_starts_ = true;
}

void CsvSegment::start_records_at(std::int64_t offset, std::int64_t line) {
  open_record_ = false;
  reached_end_ = false;
  recording_starts_ = false;
  cursor_ = lines_.data() + (offset - begin_offset_);
  line_ = line;
  mask_start_ = cursor_;
  mask_ = cursor_ == lines_.data() + lines_.size() ? 0 : field_end_mask(mask_start_, delimiter_);
}

void CsvSegment::split_from(std::int64_t offset, std::int64_t line) {
  // What the parse from the first byte found holds from any record start it shares with this one
  // (a record's parse depends only on where it starts); unless it stopped early (an exception).
  const bool parsed_to_end = reached_end_;
  const bool open = open_record_;
  const std::int64_t open_offset = open_record_offset_;
  const std::int64_t open_line = open_record_line_;
  std::size_t next_start = parsed_to_end ? 0 : first_record_starts_.size();
  start_records_at(offset, line);
  CsvRecord record;
  while (next(record)) {
    while (next_start < first_record_starts_.size() &&
           first_record_starts_[next_start] < record_start_) {
      ++next_start;
    }
    if (next_start < first_record_starts_.size() &&
        first_record_starts_[next_start] == record_start_) {
      open_record_ = open;
      open_record_offset_ = open_offset;
      open_record_line_ = open_line;
      cursor_ = lines_.data() + lines_.size();
      reached_end_ = true;
      return;
    }
  }
}

const char* CsvSegment::find_field_end(const char* p) {
  const char* const end = lines_.data() + lines_.size();
  for (;;) {
    // Fields are short: most are found in the mask already made, a few bit operations each.
    const auto offset = static_cast<std::size_t>(p - mask_start_);
    if (offset < 64) {
      const std::uint64_t ahead = mask_ >> offset;
      if (ahead != 0) return std::min(p + __builtin_ctzll(ahead), end);
      p = mask_start_ + 64;
    }
    if (p >= end) return end;
    mask_start_ = p;
    mask_ = field_end_mask(p, delimiter_);
  }
}

const char* CsvSegment::unquote_field(const char* p, const char* end) {
  ++p;  // the opening quote
  for (;;) {
    const auto* quote = static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
    if (!quote) return nullptr;
    line_ += std::count(p, quote, '\n');
    side_.append(p, quote);
    p = quote + 1;
    if (p != end && *p == '"') {  // "" inside quotes is one quote
      side_.push_back('"');
      ++p;
      continue;
    }
    break;
  }
  // Whatever follows the closing quote up to the delimiter or line break is kept.
  const char* tail = p;
  while (p != end && *p != delimiter_ && *p != '\n' && *p != '\r') ++p;
  side_.append(tail, p);
  return p;
}

bool CsvSegment::next(CsvRecord& record) {
  record.fields.clear();
  const char* p = cursor_;
  const char* const end = lines_.data() + lines_.size();
  // Skip blank lines, and lines of spaces and tabs only (not the delimiter), as CsvReader does;
  // without a lone CR, a '\r' here comes before '\n'.
  for (;;) {
    if (p == end) {
      cursor_ = p;
      reached_end_ = true;
      return false;
    }
    if (*p == '\n') {
      ++p;
      ++line_;
    } else if (*p == '\r') {
      ++p;
      if (p != end && *p == '\n') ++p;
      ++line_;
    } else if (is_blank(*p)) {
      const char* q = p + 1;
      while (q != end && is_blank(*q)) ++q;
      // Bytes that end before the data does may go on after q: a record, as far as they tell.
      if (q == end ? !ends_file_ : *q != '\n' && *q != '\r') break;
      p = q;
    } else {
      break;
    }
  }
  record.first_line = line_;
  record_start_ = p;
  if (recording_starts_ && first_record_starts_.size() < kRecordStartsKept) {
    first_record_starts_.push_back(p);
  }
  const char* field = p;
  const char* const record_start = field;
  const auto stop_at_open_record = [&] {
    open_record_ = true;
    open_record_offset_ = begin_offset_ + (record_start - lines_.data());
    open_record_line_ = record.first_line;
    record.fields.clear();
    cursor_ = end;
    reached_end_ = true;
    return false;
  };
  if (!has_quotes_) {  // every '\n' ends a record
    for (;;) {
      p = find_field_end(p);
      if (p != end && *p == delimiter_) {
        record.fields.emplace_back(field, static_cast<std::size_t>(p - field));
        field = ++p;
        continue;
      }
      const char* field_end = p;
      if (field_end != field && field_end[-1] == '\r') --field_end;  // CRLF
      record.fields.emplace_back(field, static_cast<std::size_t>(field_end - field));
      if (p != end) {
        ++p;
        ++line_;
      } else if (!ends_file_) {
        // Bytes that stop inside a line (a piece of a record being read whole): the record may go
        // on past them, and may hold a quote there, so it ends where the quote-aware way says.
        return stop_at_open_record();
      }
      break;
    }
    cursor_ = p;
    return true;
  }

  side_.clear();
  side_fields_.clear();
  for (;;) {
    if (p != end && *p == '"') {
      open_quote_line_ = line_;
      const auto* close =
          static_cast<const char*>(std::memchr(p + 1, '"', static_cast<std::size_t>(end - p - 1)));
      if (!close) return stop_at_open_record();
      const char* after = close + 1;
      if (after == end || *after == delimiter_ || *after == '\n' || *after == '\r') {
        // The common quoted field: its bytes between the quotes, as they are.
        line_ += std::count(p + 1, close, '\n');
        record.fields.emplace_back(p + 1, static_cast<std::size_t>(close - p - 1));
        p = after;
      } else {  // doubled quotes, or bytes after the closing quote
        const std::size_t offset = side_.size();
        p = unquote_field(p, end);
        if (!p) return stop_at_open_record();
        side_fields_.push_back({record.fields.size(), offset});
        record.fields.emplace_back();
      }
    } else {
      p = find_field_end(p);
      const char* field_end = p;
      if (p != end && *p == '\n' && field_end != field && field_end[-1] == '\r') --field_end;  // CRLF
      record.fields.emplace_back(field, static_cast<std::size_t>(field_end - field));
    }
    // p is at the delimiter or line break after the field, or at the end of the bytes, which ends
    // the record only where the bytes end the data (elsewhere more may follow: a doubled quote, the
    // rest of the field, the '\n' of a CRLF).
    if (p == end) {
      if (!ends_file_) return stop_at_open_record();
      break;
    }
    const char ch = *p++;
    if (ch == delimiter_) {
      field = p;
      continue;
    }
    if (ch == '\r') {
      if (p == end && !ends_file_) return stop_at_open_record();
      if (p != end && *p == '\n') ++p;
    }
    ++line_;
    break;
  }
  if (!side_fields_.empty()) {  // views made only now: side_ may have moved while it grew
    for (std::size_t i = 0; i < side_fields_.size(); ++i) {
      const auto [index, offset] = side_fields_[i];
      const std::size_t next_offset = i + 1 < side_fields_.size() ? side_fields_[i + 1].second : side_.size();
      record.fields[index] = std::string_view(side_.data() + offset, next_offset - offset);
    }
  }
  cursor_ = p;
  return true;
}

}  // namespace lathe
