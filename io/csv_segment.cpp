#include "io/csv_segment.h"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace lathe {

namespace {

// A line that runs past the segment's share is read on in steps of this size until it ends.
constexpr std::int64_t kLineTailReadBytes = std::int64_t{64} << 10;
// Bytes kept readable after the data, for field_end_mask's 64-byte looks.
constexpr std::size_t kPaddingBytes = 64;

// What one look at a segment's bytes tells: its line breaks, and whether it is plain (no '"', no
// '\r' that no '\n' follows: CsvReader ends a record at a lone CR, which a segment cannot know).
struct ByteCensus {
  std::int64_t line_breaks = 0;
  bool plain = true;
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
      if (cr_before && !(lf & 1u)) census.plain = false;
      if (cr & ~(lf >> 1) & 0x7FFFu) census.plain = false;
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
  if (_mm_movemask_epi8(any_quote) != 0) census.plain = false;
#endif
  for (; p != end; ++p) {
    if (cr_before && *p != '\n') census.plain = false;
    cr_before = *p == '\r';
    census.line_breaks += *p == '\n';
    if (*p == '"') census.plain = false;
  }
  if (cr_before) census.plain = false;  // a CR ends the file
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

bool CsvSegment::read(const ReadOnlyFile& file, const CsvDataRegion& region, std::int64_t index) {
  lines_ = {};
  delimiter_ = region.delimiter;
  plain_ = true;
  line_breaks_ = 0;
  cursor_ = nullptr;
  const std::int64_t share_begin = region.begin + index * region.segment_bytes;
  const std::int64_t share_end = std::min(region.end, share_begin + region.segment_bytes);
  // One byte before the share tells whether a line starts at its first byte; the region's first
  // byte always starts one (the header's line break may be a lone CR, which the data may not hold).
  const std::int64_t read_from = index == 0 ? share_begin : share_begin - 1;
  end_offset_ = share_end;
  auto size = static_cast<std::size_t>(share_end - read_from);  // bytes read into buffer_
  buffer_.resize(size + kPaddingBytes);
  if (!file.read_exactly(buffer_.data(), size, static_cast<std::uint64_t>(read_from))) return false;
  std::size_t first = 0;
  if (index > 0) {
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
    end_offset_ = read_from + static_cast<std::int64_t>(size);
  }
  lines_ = std::string_view(buffer_.data() + first, size - first);
  const ByteCensus census = take_census(lines_);
  plain_ = census.plain;
  line_breaks_ = census.line_breaks;
  return true;
}

void CsvSegment::start_records(std::int64_t first_line) {
  cursor_ = lines_.data();
  line_ = first_line;
  mask_start_ = cursor_;
  mask_ = lines_.empty() ? 0 : field_end_mask(mask_start_, delimiter_);
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

bool CsvSegment::next(CsvRecord& record) {
  record.fields.clear();
  const char* p = cursor_;
  const char* const end = lines_.data() + lines_.size();
  for (;;) {  // skip blank lines; in a plain segment a '\r' is always followed by '\n'
    if (p == end) {
      cursor_ = p;
      return false;
    }
    if (*p == '\n') {
      ++p;
      ++line_;
    } else if (*p == '\r') {
      p += 2;
      ++line_;
    } else {
      break;
    }
  }
  record.first_line = line_;
  const char* field = p;
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
    }
    break;
  }
  cursor_ = p;
  return true;
}

}  // namespace lathe
