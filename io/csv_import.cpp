#include "io/csv_import.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "io/columnar_writer.h"
#include "io/csv_reader.h"
#include "io/decimal_parse.h"
#include "io/csv_segment.h"
#include "io/read_only_file.h"
#include "io/text_check.h"
#include "io/temporary_file.h"
#include "runtime/error.h"
#include "runtime/label_codes.h"
#include "runtime/message_names.h"

namespace lathe {

namespace {

// Distinct values kept per column while it has seen only numbers, all of them integers: enough for
// the small integer codes that a categorical column often holds, small enough that a wide numeric
// table costs little. A column of other numbers keeps none: collecting them (every distinct string
// of a float column, up to the limit, in every segment) cost more than a wide table's whole parse,
// and such a column rarely turns out categorical (then a third pass collects its labels).
constexpr std::size_t kNumericLabelLimit = 1024;

// An optional sign and digits only: how a category code written as a number looks.
bool is_integer_text(std::string_view value) {
  std::size_t i = !value.empty() && (value[0] == '-' || value[0] == '+') ? 1 : 0;
  if (i == value.size()) return false;
  for (; i < value.size(); ++i) {
    if (value[i] < '0' || value[i] > '9') return false;
  }
  return true;
}
// Integer text (is_integer_text) as an int64, exactly; false when it is out of range.
bool parse_int64(std::string_view value, std::int64_t& number) {
  const char* first = value.data();
  const char* last = first + value.size();
  if (first != last && *first == '+') ++first;  // from_chars takes no '+'
  const auto [end, ec] = std::from_chars(first, last, number);
  return ec == std::errc() && end == last;
}
// Integers of larger magnitude than this are not all float64 values: float64 would round them.
constexpr std::int64_t kExactDoubleIntegers = std::int64_t{1} << 53;
// A column taken as categorical gets a note when at least this share of its values are numbers.
constexpr double kNoteNumericShare = 0.5;
// A column is taken as numeric with bad values, rather than categorical, when at least this many
// of its values are non-missing and at least this share of them are numbers.
constexpr std::int64_t kMostlyNumericMinValues = 100;
constexpr double kMostlyNumericShare = 0.99;
constexpr std::int64_t kProgressMinFileBytes = std::int64_t{64} << 20;
constexpr std::size_t kSkippedExamples = 5;
// Upper bound on the row block held in memory: a very wide table gets shorter blocks, and chunks
// as short as its blocks.
constexpr std::size_t kBlockBytesLimit = std::size_t{256} << 20;
// The parallel path's segments: a few MiB each, so that reading and parsing one costs far more
// than handing it to a thread, and smaller for small files, so that every thread gets several.
constexpr std::int64_t kMaxSegmentBytes = std::int64_t{4} << 20;
constexpr std::int64_t kMinSegmentBytes = std::int64_t{256} << 10;
constexpr std::int64_t kSegmentsPerThread = 4;
// Segments are held (read, then parsed) a batch at a time: a batch has kSegmentsPerThread per
// thread, but no more bytes than this unless that leaves fewer segments than threads.
constexpr std::int64_t kBatchBytesLimit = std::int64_t{256} << 20;
// The values pass 1 parses and holds so that pass 2 writes them without reading the file again
// (see HeldRows): at most this much, and at most this share of the machine's memory; a larger
// file is read twice, as it always was.
constexpr std::int64_t kHeldBytesLimit = std::int64_t{1} << 30;
constexpr std::int64_t kHeldMemoryShare = 4;  // a quarter of physical memory at most
// What a held label costs besides its bytes: a hash node and its bucket, about.
constexpr std::size_t kHeldLabelOverheadBytes = 64;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether `value` (trimmed, not empty) is one of pandas' default NA tokens (see csv_import.h). On
// the hot path of every pass: by length first, so that most numbers are rejected at once.
bool is_default_na_token(std::string_view value) {
  // No token ends in a digit, as nearly every number does.
  if (value.back() >= '0' && value.back() <= '9') return false;
  switch (value.size()) {
    case 2:
      return value == "NA";
    case 3:
      return value == "N/A" || value == "NaN" || value == "nan" || value == "n/a" || value == "#NA";
    case 4:
      return value == "null" || value == "NULL" || value == "None" || value == "-NaN" ||
             value == "-nan" || value == "#N/A" || value == "<NA>";
    case 6:
      return value == "1.#IND";
    case 7:
      return value == "-1.#IND" || value == "1.#QNAN";
    case 8:
      return value == "-1.#QNAN" || value == "#N/A N/A";
    default:
      return false;
  }
}

// Parses all of `value` (trimmed, not missing) as a number: the short decimals of nearly every
// file exactly by io/decimal_parse.h, the rest by from_chars (the same bits either way).
bool parse_number(std::string_view value, double& number) {
  if (parse_short_decimal(value, number)) return true;
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

// Whether all of `value` (trimmed, not missing) is a number, exactly as parse_number decides,
// converting only what the plain grammar leaves open (inf, hexadecimal-looking text, words).
// Inlined: called for every value of pass 1, and from enough places that GCC stopped inlining it
// (a call per value: 1.6% more instructions importing 8 text columns of 100k rows, callgrind).
[[gnu::always_inline]] inline bool is_number(std::string_view value) {
  double ignored;
  return is_plain_decimal(value) || parse_number(value, ignored);
}

// Whether `value` (trimmed, not a number) is a number as spreadsheets, BI tools and reports write
// one: a currency sign before or after it ("$1,234", "€12", "12 €"), thousands separators
// ("1,234.50", "1.234,50", "1 234", "1'234"), a decimal comma ("3,14"), a percent sign ("12.5%")
// or parentheses for a negative ("(45.00)"). Neither Lathe nor pandas.read_csv (without its
// thousands= and decimal= options) reads these as numbers: a column of them is taken as categorical,
// one label per amount, and the import's note says why (before, nothing did). Separators must group
// digits in threes, so dates ("01.02.2024") and version numbers ("1.2.3") are not taken for amounts.
bool is_formatted_number_text(std::string_view value);
// The formatting is_formatted_number finds in `value`, as bits (0: `value` is no formatted number),
// so that an error about one value names what it holds ("a currency sign") rather than every kind.
enum NumberFormatting : std::uint8_t {
  kCurrencySign = 1,
  kThousandsSeparators = 2,
  kPercentSign = 4,
  kParentheses = 8,
  kDecimalComma = 16,
};
std::uint8_t number_formatting(std::string_view value);
// Inlined where it is called (GCC stopped inlining it once several places called it), so that the
// test of the first byte costs no call on every value of a categorical column (2.7% of the
// instructions importing 8 text columns of 100k rows, callgrind).
[[gnu::always_inline]] inline bool is_formatted_number(std::string_view value) {
  // Most text that is not a number is a label starting with a letter: rejected at once, since this
  // runs on every such value of a categorical column (400k rows x 6 text columns: import 0.48 s
  // before this check, 0.56 s with it and without this line).
  if (value.empty()) return false;
  const auto first = static_cast<unsigned char>(value.front());
  if (!((first >= '0' && first <= '9') || first == '(' || first == '-' || first == '+' ||
        first == '$' || first >= 0xC2)) {
    return false;
  }
  return is_formatted_number_text(value);
}

// is_formatted_number past its test of the first byte.
bool is_formatted_number_text(std::string_view value) { return number_formatting(value) != 0; }

std::uint8_t number_formatting(std::string_view value) {
  const auto strip_prefix = [&](std::string_view prefix) {
    if (!value.starts_with(prefix)) return false;
    value = trim(value.substr(prefix.size()));
    return true;
  };
  const auto strip_suffix = [&](std::string_view suffix) {
    if (!value.ends_with(suffix)) return false;
    value = trim(value.substr(0, value.size() - suffix.size()));
    return true;
  };
  constexpr std::string_view kCurrencySigns[] = {"$", "\xE2\x82\xAC" /* € */, "\xC2\xA3" /* £ */,
                                                 "\xC2\xA5" /* ¥ */, "\xE2\x82\xB9" /* ₹ */};
  const auto strip_currency = [&](bool prefix) {
    for (const std::string_view sign : kCurrencySigns) {
      if (prefix ? strip_prefix(sign) : strip_suffix(sign)) return true;
    }
    return false;
  };
  std::uint8_t formatting = 0;
  if (value.size() >= 2 && value.front() == '(' && value.back() == ')') {
    value = trim(value.substr(1, value.size() - 2));
    formatting |= kParentheses;
  }
  if (!strip_prefix("-")) strip_prefix("+");
  if (strip_currency(true)) {
    formatting |= kCurrencySign;
    if (!strip_prefix("-")) strip_prefix("+");  // "$-5"
  }
  if (strip_suffix("%")) formatting |= kPercentSign;
  if (strip_currency(false)) formatting |= kCurrencySign;
  // What is left: digits, optionally grouped in threes by one separator, optionally followed by a
  // decimal mark (the other of ',' and '.') and digits.
  const auto is_digit = [](char ch) { return ch >= '0' && ch <= '9'; };
  std::size_t i = 0;
  while (i < value.size() && is_digit(value[i])) ++i;
  if (i == 0) return 0;
  char group = 0;
  if (i <= 3) {
    while (i + 4 <= value.size() && std::string_view(",. '").find(value[i]) != std::string_view::npos &&
           (group == 0 || value[i] == group) && is_digit(value[i + 1]) && is_digit(value[i + 2]) &&
           is_digit(value[i + 3]) && (i + 4 == value.size() || !is_digit(value[i + 4]))) {
      group = value[i];
      i += 4;
    }
  }
  if (group != 0) formatting |= kThousandsSeparators;
  if (i < value.size() && (value[i] == '.' || value[i] == ',') && value[i] != group) {
    if (value[i] == ',') formatting |= kDecimalComma;
    const std::size_t mark = i++;
    while (i < value.size() && is_digit(value[i])) ++i;
    if (i == mark + 1) return 0;
  }
  return i == value.size() ? formatting : 0;
}

// Whether `value` (trimmed, not a number) is a date as exports write one: ISO ("2024-10-23",
// "2024/10/23"), month first or day first ("10/23/2024", "23.10.2024", "23-10-24"), each optionally
// followed by a time ("T14:05", " 14:05:09.123", with "Z" or "+02:00"). Lathe has no date type: a
// column of them is imported as categorical, a label per date, which a note says.
bool looks_like_date(std::string_view value) {
  const auto is_digit = [](char ch) { return ch >= '0' && ch <= '9'; };
  if (value.size() < 6 || !is_digit(value[0])) return false;  // most labels end here
  std::size_t i = 0;
  // The digits from i on, at most 4, as a number; `count` of them.
  const auto number = [&](std::size_t& count) {
    int n = 0;
    for (count = 0; i < value.size() && is_digit(value[i]) && count < 5; ++i, ++count) n = n * 10 + (value[i] - '0');
    return n;
  };
  std::size_t a_digits = 0, b_digits = 0, c_digits = 0;
  const int a = number(a_digits);
  if (i == value.size() || std::string_view("-/.").find(value[i]) == std::string_view::npos) return false;
  const char separator = value[i++];
  const int b = number(b_digits);
  if (i == value.size() || value[i] != separator) return false;
  ++i;
  const int c = number(c_digits);
  const bool iso = a_digits == 4 && b_digits <= 2 && c_digits <= 2 && separator != '.' &&
                   b >= 1 && b <= 12 && c >= 1 && c <= 31;
  const bool day_month = a_digits <= 2 && b_digits <= 2 && (c_digits == 4 || c_digits == 2) &&
                         a >= 1 && b >= 1 && a <= 31 && b <= 31 && (a <= 12 || b <= 12);
  if (!iso && !day_month) return false;
  if (i == value.size()) return true;
  // A time: hours and minutes, optional seconds and a fraction, an optional zone.
  if (value[i] != 'T' && value[i] != ' ') return false;
  ++i;
  std::size_t digits = 0;
  if (number(digits) > 23 || digits == 0 || digits > 2 || i == value.size() || value[i++] != ':') return false;
  if (number(digits) > 59 || digits != 2) return false;
  if (i < value.size() && value[i] == ':') {
    ++i;
    if (number(digits) > 60 || digits != 2) return false;
    if (i < value.size() && value[i] == '.') {
      for (++i; i < value.size() && is_digit(value[i]); ++i) {
      }
    }
  }
  const std::string_view zone = value.substr(i);
  if (zone.empty() || zone == "Z" || zone == " UTC") return true;
  return zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && is_digit(zone[1]) && is_digit(zone[2]) &&
         zone[3] == ':' && is_digit(zone[4]) && is_digit(zone[5]);
}

// Said of a value that is_formatted_number: how to make it a number Lathe reads.
constexpr const char* kFormattedNumberHint =
    "a currency sign, thousands separators, a percent sign, parentheses for a negative or a decimal "
    "comma, which are read as text: write such values as plain numbers (1234.5, -45, 0.125)";

// The formatting number_formatting found, in words: "a currency sign and thousands separators".
std::string formatting_text(std::uint8_t formatting) {
  constexpr std::pair<NumberFormatting, const char*> kNames[] = {
      {kCurrencySign, "a currency sign"},
      {kThousandsSeparators, "thousands separators"},
      {kPercentSign, "a percent sign"},
      {kParentheses, "parentheses for a negative"},
      {kDecimalComma, "a decimal comma"}};
  std::vector<const char*> names;
  for (const auto& [bit, name] : kNames) {
    if (formatting & bit) names.push_back(name);
  }
  std::string text;
  for (std::size_t k = 0; k < names.size(); ++k) {
    text += (k == 0 ? "" : k + 1 == names.size() ? " and " : ", ") + std::string(names[k]);
  }
  return text;
}

std::string quoted_for_message(std::string_view value);

// Writes `value` (trimmed), a number written with the decimal mark `decimal` and the thousands
// separator `thousands` (0: none), to `plain` as plain decimal text, and says whether it is one
// (see csv_import.h, Number format): "-1.234,5e3" with ',' and '.' is "-1234.5e3". At least one
// digit before or after the mark (",5" and "5," are numbers, as in pandas). Separators must group
// the integer part's digits as people write them: the first group of 1..3 digits and the others of
// three ("1.234.567"), or the first of 1..2, then twos and a last three (India: "12,34,567").
// The first group does not start with 0. pandas skips a separator anywhere in the integer part
// ("3.14" with thousands='.' is 314, "1.2.3" 123, "0.125" 125): a value grouped otherwise is more
// likely written in another format, a decimal point where a comma was expected, than a number, so
// here it is none (a label, or with --numeric an error).
// The bytes of the no-break space at value[i] when there is one (U+00A0, and U+202F, the narrow
// one, in UTF-8), else 0: where a space groups digits (`--thousands space`), French and other
// locales' spreadsheets write these (`1 234,5`), which pandas does not read as ' ' either.
std::size_t no_break_space_at(std::string_view value, std::size_t i) {
  if (value.substr(i, 2) == "\xC2\xA0") return 2;
  if (value.substr(i, 3) == "\xE2\x80\xAF") return 3;
  return 0;
}

bool write_plain_decimal(std::string_view value, char decimal, char thousands, std::string& plain) {
  const auto is_digit = [](char ch) { return ch >= '0' && ch <= '9'; };
  plain.clear();
  const std::size_t n = value.size();
  std::size_t i = 0;
  if (i < n && (value[i] == '-' || value[i] == '+')) plain += value[i++];
  // The integer part, its digit groups checked as they end.
  std::size_t whole_digits = 0, group = 0, groups = 1, first_group = 0;
  bool threes = true, twos = true;  // the groups between the first and the last: all of 3, all of 2
  for (; i < n; ++i) {
    const char ch = value[i];
    if (is_digit(ch)) {
      plain += ch;
      ++whole_digits;
      ++group;
    } else if (const std::size_t space = thousands == ' ' ? no_break_space_at(value, i) : 0;
               (thousands != 0 && ch == thousands) || space > 0) {
      if (space > 0) i += space - 1;
      if (group == 0) return false;  // a separator first, or two in a row
      if (groups++ == 1) {
        first_group = group;
      } else {
        threes = threes && group == 3;
        twos = twos && group == 2;
      }
      group = 0;
    } else {
      break;
    }
  }
  if (groups > 1 && (group != 3 || !((threes && first_group <= 3) || (twos && first_group <= 2)) ||
                     plain[plain.size() - whole_digits] == '0')) {
    return false;  // also a separator last, before the mark ("1.,5"), and a leading zero ("0.125")
  }
  std::size_t fraction_digits = 0;
  if (i < n && value[i] == decimal) {
    plain += '.';
    for (++i; i < n && is_digit(value[i]); ++i, ++fraction_digits) plain += value[i];
  }
  if (whole_digits + fraction_digits == 0) return false;
  if (i < n && (value[i] == 'e' || value[i] == 'E')) {
    plain += 'e';
    ++i;
    if (i < n && (value[i] == '-' || value[i] == '+')) plain += value[i++];
    const std::size_t exponent = i;
    for (; i < n && is_digit(value[i]); ++i) plain += value[i];
    if (i == exponent) return false;
  }
  return i == n;
}

// The number formats a note may suggest for values that is_formatted_number, in order of
// preference among those with the same decimal mark (the fewest options first).
struct NumberFormat {
  char decimal;
  char thousands;  // 0: none
};
constexpr NumberFormat kSuggestedFormats[] = {{'.', ','},  {'.', ' '}, {'.', '\''}, {',', 0},
                                              {',', '.'},  {',', ' '}, {',', '\''}};
constexpr std::uint8_t kAllSuggestedFormats = (1u << std::size(kSuggestedFormats)) - 1;

// Which of kSuggestedFormats (bit k for the k-th) read `value` (trimmed) as a number.
std::uint8_t formats_reading(std::string_view value) {
  std::string plain;
  std::uint8_t formats = 0;
  for (std::size_t k = 0; k < std::size(kSuggestedFormats); ++k) {
    if (write_plain_decimal(value, kSuggestedFormats[k].decimal, kSuggestedFormats[k].thousands, plain)) {
      formats |= static_cast<std::uint8_t>(1u << k);
    }
  }
  return formats;
}

// The options of `lathe import` that give `format`, each character quoted for a shell: in a message,
// "--decimal ," before a comma read as a typo ("not numbers with --decimal ,, which apply ...").
std::string format_options(const NumberFormat& format) {
  const auto shell_word = [](char ch) {
    return ch == '\'' ? std::string("\"'\"") : "'" + std::string(1, ch) + "'";
  };
  std::string options;
  if (format.decimal != '.') options += "--decimal " + shell_word(format.decimal);
  if (format.thousands != 0) {
    options += std::string(options.empty() ? "" : " ") + "--thousands " + shell_word(format.thousands);
  }
  return options;
}

// For values that is_formatted_number (`example` one of them), all of them read as numbers by the
// formats `formats` (formats_reading's bits, and-ed): the options that read them ("--decimal ,
// --thousands ."), "" when none do (a currency sign, a percent sign, parentheses: pandas reads none
// of these either). Where formats with both decimal marks read them ("1,234": 1234 or 1.234), both
// are named, with what each reads `example` as.
std::string suggested_options(std::uint8_t formats, std::string_view example) {
  const NumberFormat* point = nullptr;
  const NumberFormat* comma = nullptr;
  for (std::size_t k = 0; k < std::size(kSuggestedFormats); ++k) {
    if ((formats & (1u << k)) == 0) continue;
    const NumberFormat*& best = kSuggestedFormats[k].decimal == '.' ? point : comma;
    if (!best) best = &kSuggestedFormats[k];
  }
  if (!point || !comma) {
    const NumberFormat* only = point ? point : comma;
    return only ? format_options(*only) : "";
  }
  const auto reading = [&](const NumberFormat& format) {
    std::string plain;
    write_plain_decimal(example, format.decimal, format.thousands, plain);
    return format_options(format) + " (" + quoted_for_message(example) + " is then " + plain + ")";
  };
  return reading(*point) + " or with " + reading(*comma) + ", whichever they are written with";
}

// Said of a value that is_formatted_number: what it is written with (what is found, not every kind
// of formatting), and how to read it as a number.
std::string formatted_number_advice(std::string_view value) {
  const std::string options = suggested_options(formats_reading(value), value);
  return options.empty() ? "it is written with " + formatting_text(number_formatting(value)) +
                               ", which Lathe reads as text; write such values as plain numbers "
                               "(1234.5, -45, 0.125)"
                         : "it is written with a thousands separator or a decimal comma; to read such "
                           "values as numbers, import with " + options;
}

// Text Lathe would keep (a name or a category label) must be UTF-8 without NUL bytes: the whole
// file is in another encoding (Latin-1, UTF-16) or is not text, which no row skipping fixes.
std::string text_problem(std::string_view text, std::size_t at) {
  const bool nul = text[at] == '\0';
  return std::string("is not UTF-8 text (") + describe_bad_text_byte(text, at) + ")" +
         (nul ? ": a NUL byte (a binary file, or UTF-16 text?)"
              // Windows-1252 (cp1252), as Excel saves CSV in Western locales, is Latin-1 with printable
              // characters in 0x80-0x9F ('€' is 0x80, curly quotes 0x91-0x94): converted from Latin-1
              // they became invisible control characters ("12,50 €" read as "12,50 \u0080").
              : ": save the file as UTF-8 (from Windows-1252, as Excel saves CSV in Western Europe and the "
                "Americas, Latin-1 included: iconv -f cp1252 -t utf-8 in.csv > out.csv)");
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

// A set of labels: their codes (runtime/label_codes.h), unused.
using LabelSet = LabelCodes;

void insert_label(LabelSet& labels, std::string_view value) { labels.add(value); }

// Which field values (trimmed) are missing, as CsvImportOptions says: the empty field, the default
// tokens unless keep_default_na is false, and the na_values tokens (with an integer token's plain
// spellings, as pandas: -9.99e2 adds -999 and -999.0); and, in a numeric column, a number equal to
// an na_values token that is a number (as pandas compares them: -999 makes -9.99e2 missing too).
class MissingValues {
 public:
  explicit MissingValues(const CsvImportOptions& options)
      : default_tokens_(options.keep_default_na) {
    for (const std::string& token : options.na_values) {
      const std::string_view trimmed = trim(token);
      add_text(trimmed);
      double number = 0.0;
      if (!parse_number(trimmed, number) || std::isnan(number)) continue;
      if (std::find(numbers_.begin(), numbers_.end(), number) == numbers_.end()) {
        numbers_.push_back(number);
      }
      // pandas also takes an integer's plain spellings as text, in every column: -999.0 or -9.99e2
      // make "-999" and "-999.0" missing in a categorical column too.
      if (std::abs(number) < 1e18 && number == std::trunc(number)) {
        const std::string integer = std::to_string(static_cast<std::int64_t>(number));
        add_text(integer);
        add_text(integer + ".0");
      }
    }
  }

  bool contains(std::string_view value) const {
    if (value.empty()) return true;
    if (default_tokens_ && is_default_na_token(value)) return true;
    // Without na_values, one test of a zero; with them, a hash only for values of a token's length.
    return (extra_lengths_ & length_bit(value.size())) != 0 && extra_.find(value) >= 0;
  }

  // Whether a token is a number: only then can a number of a numeric column be missing.
  bool has_numbers() const { return !numbers_.empty(); }
  // Whether `number`, parsed from a numeric column's value, equals a token that is a number.
  bool contains_number(double number) const {
    for (const double token : numbers_) {
      if (number == token) return true;
    }
    return false;
  }
  // The same for `value` (trimmed, a number not yet parsed).
  bool contains_number_text(std::string_view value) const {
    double number = 0.0;
    return has_numbers() && parse_number(value, number) && contains_number(number);
  }

 private:
  void add_text(std::string_view token) {
    extra_lengths_ |= length_bit(token.size());
    insert_label(extra_, token);
  }
  static std::uint64_t length_bit(std::size_t length) {
    return std::uint64_t{1} << std::min<std::size_t>(length, 63);
  }

  bool default_tokens_;
  std::uint64_t extra_lengths_ = 0;  // bit n: an na_values token of n bytes (bit 63: 63 or more)
  LabelSet extra_;
  std::vector<double> numbers_;  // the tokens that are numbers (not NaN), each once
};

enum class ForcedType { none, categorical, numeric };

// What pass 1 learns about one column from a stretch of records.
struct ColumnTally {
  std::int64_t numbers = 0;      // non-missing values that parse as numbers
  std::int64_t non_numbers = 0;  // non-missing values that do not
  std::int64_t first_non_number_line = 0;
  std::string first_non_number;
  // The non-numbers that are numbers as reports format them (is_formatted_number), and the first.
  std::int64_t formatted_numbers = 0;
  std::int64_t first_formatted_number_line = 0;
  std::string first_formatted_number;
  std::uint8_t formatted_number_formats = kAllSuggestedFormats;  // those reading all (formats_reading)
  // With a number format other than the default: the non-numbers that are plain numbers ("3.14"
  // with --decimal ,), and the first.
  std::int64_t plain_written_numbers = 0;
  std::int64_t first_plain_written_number_line = 0;
  std::string first_plain_written_number;
  // With a number format other than the default: the numbers written with its decimal mark or
  // thousands separator ("3,14" with --decimal ,), which the default format would not read.
  std::int64_t format_written_numbers = 0;
  // The distinct non-missing values, split so that a column of numbers keeps at most
  // kNumericLabelLimit of them; a forced categorical column keeps all of its values in `texts`.
  LabelSet texts;
  LabelSet numbers_seen;
  bool numbers_seen_complete = true;
  // Whether the column can be stored as exact int64 (see csv_import.h, Exact integers): its
  // missing values (numbers equal to an na_values number included while non_integer is false:
  // only then does the count matter), and whether its numbers (of a forced numeric column too) are all integer text
  // within int64, one of them beyond 2^53. Once a number is not integer text the rest are not
  // looked at; the decision then ignores the other fields, so segments merge them in any order.
  std::int64_t missing = 0;
  bool non_integer = false;     // a number with a fraction or an exponent (or inf, ...)
  bool beyond_int64 = false;    // an integer outside the int64 range
  bool beyond_double = false;   // an integer beyond 2^53 in magnitude, the first of them:
  std::int64_t first_beyond_double_line = 0;
  std::string first_beyond_double;
};

// Adds the number `value` (trimmed, known to be a number, as plain decimal text: see
// CsvImport::number_text) on `line` to `tally`'s integer facts.
void tally_integer(ColumnTally& tally, std::string_view value, std::int64_t line) {
  if (tally.non_integer) return;
  if (!is_integer_text(value)) {
    tally.non_integer = true;
    return;
  }
  // Fewer than 16 significant digits: below 10^15 < 2^53.
  std::size_t i = value[0] == '-' || value[0] == '+' ? 1 : 0;
  while (i + 1 < value.size() && value[i] == '0') ++i;
  if (value.size() - i < 16) return;
  std::int64_t number = 0;
  bool beyond = true;
  if (parse_int64(value, number)) {
    beyond = number > kExactDoubleIntegers || number < -kExactDoubleIntegers;
  } else {
    tally.beyond_int64 = true;
  }
  if (beyond && !tally.beyond_double) {
    tally.beyond_double = true;
    tally.first_beyond_double_line = line;
    tally.first_beyond_double = value;
  }
}

// What pass 1 learns about one column (its tally over the whole file), and the type decided from it.
struct ColumnScan : ColumnTally {
  std::string name;
  ForcedType forced = ForcedType::none;

  ColumnType type = ColumnType::numeric;
  bool mostly_numeric = false;  // numeric with some non-numbers (bad values)
  bool exact_integers = false;  // numeric, stored as int64 (see csv_import.h, Exact integers)
  std::vector<std::string> labels;
  LabelCodes codes;
};

// What pass 1 learns from a stretch of records: the whole file on the serial path; one segment on
// the parallel path, where the segments' tallies are merged in file order.
struct ScanTally {
  std::vector<ColumnTally> columns;
  std::int64_t data_records = 0;
  std::int64_t kept_rows = 0;  // rows not skipped
  std::int64_t skipped_rows = 0;
  std::vector<std::string> skipped_examples;

  void reset(std::size_t width) {
    columns.assign(width, ColumnTally{});
    data_records = kept_rows = skipped_rows = 0;
    skipped_examples.clear();
  }
};

// Numbers of a numeric column that Lathe reads as infinite: inf, Infinity, 1e400, and any number
// beyond float32's range (the HDF5 readers convert float64 to float32, beyond it to infinity).
struct InfiniteValues {
  std::int64_t count = 0;
  std::int64_t first_line = 0;
  std::string first;
};

bool read_as_infinite(double number) { return std::abs(number) > static_cast<double>(std::numeric_limits<float>::max()); }

// Adds `from` (the infinite values of the rows after those of `into`) to `into`; each is per column,
// or empty when there were none.
void merge_infinite(std::vector<InfiniteValues>& into, std::vector<InfiniteValues>& from) {
  if (from.empty()) return;
  if (into.empty()) into.resize(from.size());
  for (std::size_t c = 0; c < from.size(); ++c) {
    if (from[c].count == 0) continue;
    if (into[c].count == 0) {
      into[c].first_line = from[c].first_line;
      into[c].first = std::move(from[c].first);
    }
    into[c].count += from[c].count;
  }
  from.clear();
}

// The values of one column in the rows pass 1 kept from one segment, parsed as pass 2 would parse
// them: numbers while the segment has shown only numbers (or missing values) in the column, labels
// while it has shown only non-numbers (and in a --categorical column), nothing once it has shown
// both. A held column fits its final type when it holds numbers (numeric) or labels (categorical),
// or only missing values; pass 2 then writes the held values instead of reading the file again.
struct HeldColumn {
  enum class Kind : std::uint8_t { missing_only, numbers, labels, mixed };
  Kind kind = Kind::missing_only;
  std::vector<double> numbers;      // kind numbers: per row, NaN when missing (as pass 2 stores)
  std::vector<std::int32_t> codes;  // kind labels: per row, the label's index in the segment, -1
  LabelCodes label_codes;           // kind labels: each label of the segment and its index

  std::size_t bytes() const {
    std::size_t label_bytes = 0;
    for (const std::string& label : label_codes.labels()) label_bytes += label.size() + kHeldLabelOverheadBytes;
    return numbers.capacity() * sizeof(double) + codes.capacity() * sizeof(std::int32_t) +
           label_bytes;
  }
};

// What pass 1 holds from one segment (or one record that ran past its segment), in file order:
// the held columns of the rows it kept, with the infinite values of the numbers held.
struct HeldRows {
  std::size_t rows = 0;
  std::size_t expected_rows = 0;  // at most: the segment's line breaks and one, for reserve()
  std::int64_t end_offset = 0;    // where the segment ends in the file, for progress
  std::vector<HeldColumn> columns;
  std::vector<InfiniteValues> infinite;  // per column, sized at the first one (empty: none)

  void start(std::size_t width, std::size_t expected, std::int64_t end) {
    rows = 0;
    expected_rows = expected;
    end_offset = end;
    columns.assign(width, HeldColumn{});
    infinite.clear();
  }
  std::size_t bytes() const {
    std::size_t total = 0;
    for (const HeldColumn& column : columns) total += column.bytes();
    return total;
  }
};

// Rows of pass 2 by column: a numeric column's values, an exact integer one's integers, a
// categorical one's codes (the other vectors of the column stay empty), with the rows it skipped
// on the way and the infinite values of the rows it kept.
struct RowBlock {
  std::vector<std::vector<double>> numbers;
  std::vector<std::vector<std::int64_t>> integers;
  std::vector<std::vector<std::int32_t>> codes;
  std::size_t capacity = 0;
  std::size_t rows = 0;  // filled
  std::int64_t skipped_rows = 0;
  std::vector<std::string> skipped_examples;
  std::vector<InfiniteValues> infinite;  // per column, sized at the first one (empty: none)

  // Room for `new_capacity` rows, keeping those filled.
  void resize(const std::vector<ColumnScan>& columns, std::size_t new_capacity) {
    numbers.resize(columns.size());
    integers.resize(columns.size());
    codes.resize(columns.size());
    for (std::size_t c = 0; c < columns.size(); ++c) {
      if (columns[c].type == ColumnType::categorical) {
        codes[c].resize(new_capacity);
      } else if (columns[c].exact_integers) {
        integers[c].resize(new_capacity);
      } else {
        numbers[c].resize(new_capacity);
      }
    }
    capacity = new_capacity;
  }
};

// The first few skipped-row reasons of `from` appended to `into`, until it holds the first few.
void append_examples(std::vector<std::string>& into, std::vector<std::string>& from) {
  for (std::string& example : from) {
    if (into.size() == kSkippedExamples) break;
    into.push_back(std::move(example));
  }
}

// Prints "lathe import: <stage> NN%" on stderr at most once a second, for large files only.
class ImportProgress {
 public:
  ImportProgress(std::int64_t file_bytes, bool enabled, std::string stage)
      : file_bytes_(file_bytes),
        enabled_(enabled && file_bytes > kProgressMinFileBytes),
        stage_(std::move(stage)),
        terminal_(isatty(STDERR_FILENO) == 1),
        last_(std::chrono::steady_clock::now()) {}
  ~ImportProgress() {
    if (printed_) std::fputs(terminal_ ? "\n" : "", stderr);
  }
  ImportProgress(const ImportProgress&) = delete;
  ImportProgress& operator=(const ImportProgress&) = delete;

  // After each record of the serial path; looks at the clock once every 1024 records.
  void record_done(const CsvReader& reader) {
    if (!enabled_ || (++records_ & 1023) != 0) return;
    show(reader.bytes_consumed());
  }
  // After each batch of segments of the parallel path, `bytes` of the file being done.
  void bytes_done(std::int64_t bytes) {
    if (enabled_) show(bytes);
  }

 private:
  void show(std::int64_t bytes) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::seconds(1)) return;
    last_ = now;
    const double percent = 100.0 * static_cast<double>(bytes) / static_cast<double>(file_bytes_);
    std::fprintf(stderr, "%slathe import: %s %3.0f%%%s", terminal_ ? "\r" : "", stage_.c_str(),
                 std::min(percent, 100.0), terminal_ ? "" : "\n");
    std::fflush(stderr);
    printed_ = true;
  }

  std::int64_t file_bytes_;
  bool enabled_;
  std::string stage_;
  bool terminal_;
  std::chrono::steady_clock::time_point last_;
  std::int64_t records_ = 0;
  bool printed_ = false;
};

// Reads every segment of `region`, a batch of segments at a time: all threads read segments
// (pread) and then parse them, each with `parse(segment, part)` into a part of its own; this
// thread then hands the parts to `merge(part)` in file order. So merged results, and the first
// exception of `parse` (rethrown here, in file order), are those of reading the records in order.
// Line numbers are exact because every segment counts its line breaks before any is parsed.
//
// Each segment parses as if a record started at its first byte (speculation). Then this thread
// walks the batch in file order keeping `boundary`, where the records before it end, a true record
// boundary: a segment that starts there parsed right (by induction from the data's first byte); one
// that ends before it lies inside a record and is dropped; one that starts before it began inside a
// quoted field of an earlier record, so its part (and its exception) is void, and it is split again
// from `boundary` (splitting only, to find where its last record ends: usually a few records, until
// it falls in step with the first parse). A segment whose last record runs past its bytes has that
// record read whole (from the segments after it, then the file) into a segment of its own. Then all
// threads parse the segments to be parsed again and those records, and the parts are merged in file
// order. The next batch starts at `boundary`, so no byte of the file is read twice.
// Returns false at the first batch holding a lone CR (or at a record running past a batch into
// one); what has been merged by then is to be thrown away.
template <typename Part, typename Parse, typename Merge>
bool read_segments_in_order(const ReadOnlyFile& file, const CsvDataRegion& region,
                            const std::string& file_name, const std::string& changed_message,
                            ImportProgress& progress, Parse&& parse, Merge&& merge) {
  const std::int64_t segments = region.segments();
  if (segments == 0) return true;
  const std::int64_t threads = std::max(1, omp_get_max_threads());
  const std::int64_t batch = std::min(
      segments, std::clamp(kSegmentsPerThread * threads, std::int64_t{1},
                           std::max(threads, kBatchBytesLimit / region.segment_bytes)));
  // What the walk in file order decides for each segment of a batch.
  struct SegmentPlan {
    bool merged = false;  // false: it lies inside a record, or after the batch's first error
    // Where it is parsed again from when it started inside a record (a file offset, and its line).
    std::int64_t records_from = 0;
    std::int64_t records_from_line = 0;
    std::int64_t spanning = -1;     // index of the record that runs past it in `spanning`, if any
    std::exception_ptr spanning_error;  // that record's quote is never closed
  };
  std::vector<CsvSegment> batch_segments(static_cast<std::size_t>(batch));
  std::vector<Part> parts(static_cast<std::size_t>(batch));
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(batch));
  std::vector<SegmentPlan> plans(static_cast<std::size_t>(batch));
  // Records that run past the segment they start in, each held in a segment of its own.
  std::vector<CsvSegment> spanning(static_cast<std::size_t>(batch));
  std::vector<Part> spanning_parts(static_cast<std::size_t>(batch));
  std::vector<std::exception_ptr> spanning_errors(static_cast<std::size_t>(batch));
  // What all threads parse after the walk: a segment to parse again (its index, >= 0) or a
  // record in `spanning` (index k as -1 - k).
  std::vector<std::int64_t> parse_jobs;
  std::int64_t boundary = region.begin;
  std::int64_t boundary_line = region.first_line;
  while (boundary < region.end) {
    const std::int64_t first = (boundary - region.begin) / region.segment_bytes;
    const auto count = static_cast<std::size_t>(std::min(batch, segments - first));
    std::fill(errors.begin(), errors.end(), nullptr);
#pragma omp parallel for schedule(dynamic, 1)
    for (std::size_t i = 0; i < count; ++i) {
      try {
        // The batch's first segment starts at the boundary, which may lie inside its share.
        if (!batch_segments[i].read(file, region, first + static_cast<std::int64_t>(i),
                                    i == 0 ? boundary : -1)) {
          throw InputError(changed_message);
        }
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
    std::int64_t line = boundary_line;
    for (std::size_t i = 0; i < count; ++i) {
      if (errors[i]) std::rethrow_exception(errors[i]);
      if (batch_segments[i].lone_cr()) return false;
      batch_segments[i].start_records(line);
      line += batch_segments[i].line_breaks();
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (std::size_t i = 0; i < count; ++i) {
      try {
        parse(batch_segments[i], parts[i]);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }

    // The walk in file order.
    std::fill(plans.begin(), plans.end(), SegmentPlan{});
    parse_jobs.clear();
    std::size_t spanning_count = 0;
    for (std::size_t i = 0; i < count; ++i) {
      CsvSegment& segment = batch_segments[i];
      SegmentPlan& plan = plans[i];
      if (!segment.owns_lines() || segment.end_offset() <= boundary) continue;
      plan.merged = true;
      if (segment.begin_offset() != boundary) {
        plan.records_from = boundary;
        plan.records_from_line = boundary_line;
        parse_jobs.push_back(static_cast<std::int64_t>(i));
        segment.split_from(boundary, boundary_line);
      } else if (errors[i]) {
        break;  // the first error of the batch: nothing after it counts
      }
      if (!segment.open_record()) {
        boundary = segment.end_offset();
        boundary_line = segment.first_line() + segment.line_breaks();
        continue;
      }
      CsvSegment& record = spanning[spanning_count];
      CsvSegment::SpanningRead read;
      try {
        read = record.read_spanning_record(
            file, region, segment,
            std::span<const CsvSegment>(batch_segments).subspan(i + 1, count - i - 1), file_name);
      } catch (const InputError&) {  // a quote never closed: thrown after the records before it
        plan.spanning_error = std::current_exception();
        boundary = region.end;
        break;
      }
      if (read == CsvSegment::SpanningRead::lone_cr) return false;
      if (read == CsvSegment::SpanningRead::file_changed) throw InputError(changed_message);
      plan.spanning = static_cast<std::int64_t>(spanning_count);
      record.start_records(segment.open_record_line());
      parse_jobs.push_back(-1 - static_cast<std::int64_t>(spanning_count));
      ++spanning_count;
      boundary = record.end_offset();
      boundary_line = record.first_line() + record.line_breaks();
    }

#pragma omp parallel for schedule(dynamic, 1) if (!parse_jobs.empty())  // usually empty: no team
    for (std::size_t j = 0; j < parse_jobs.size(); ++j) {
      const std::int64_t job = parse_jobs[j];
      const auto k = static_cast<std::size_t>(job >= 0 ? job : -1 - job);
      try {
        if (job >= 0) {
          errors[k] = nullptr;
          batch_segments[k].start_records_at(plans[k].records_from, plans[k].records_from_line);
          parse(batch_segments[k], parts[k]);
        } else {
          spanning_errors[k] = nullptr;
          parse(spanning[k], spanning_parts[k]);
        }
      } catch (...) {
        (job >= 0 ? errors[k] : spanning_errors[k]) = std::current_exception();
      }
    }
    for (std::size_t i = 0; i < count; ++i) {
      const SegmentPlan& plan = plans[i];
      if (!plan.merged) continue;
      if (errors[i]) std::rethrow_exception(errors[i]);
      merge(parts[i]);
      if (plan.spanning_error) std::rethrow_exception(plan.spanning_error);
      if (plan.spanning < 0) continue;
      const auto k = static_cast<std::size_t>(plan.spanning);
      if (spanning_errors[k]) std::rethrow_exception(spanning_errors[k]);
      merge(spanning_parts[k]);
    }
    progress.bytes_done(boundary);
  }
  return true;
}

// How many bytes of values pass 1 may hold (see HeldRows): CsvImportOptions::held_values_bytes, or
// kHeldBytesLimit and a share of physical memory, whichever is less.
std::int64_t held_bytes_limit(const CsvImportOptions& options) {
  if (options.held_values_bytes >= 0) return options.held_values_bytes;
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_bytes = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_bytes <= 0) return kHeldBytesLimit;
  return std::min(kHeldBytesLimit,
                  static_cast<std::int64_t>(pages) * page_bytes / kHeldMemoryShare);
}

// The import's state across passes.
class CsvImport {
 public:
  CsvImport(const std::filesystem::path& csv, const CsvImportOptions& options)
      : csv_(csv),
        options_(options),
        missing_(options),
        file_(csv.string()),
        changed_(file_ + ": the file changed while it was being imported; import it again"),
        plain_numbers_(options.decimal == '.' && options.thousands == 0),
        held_limit_(held_bytes_limit(options)) {
    for (const char mark : {'.', options.decimal, options.thousands}) {
      if (mark != 0 && number_marks_.find(mark) == std::string::npos) number_marks_ += mark;
    }
    if (options.decimal != '.') format_marks_ += options.decimal;
    if (options.thousands != 0) format_marks_ += options.thousands;
  }

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
  // Whether `value` (trimmed) is missing: the same test in every pass and on both paths.
  bool is_missing(std::string_view value) const { return missing_.contains(value); }
  // The text of `value` (trimmed, not missing) that the number tests and parsers read: `value`
  // itself for numbers written plainly (the default, on the hot path of every pass); else `value`
  // written as plain decimal (write_plain_decimal) in `scratch`, or "" (no number) when it is none
  // in the file's number format (see csv_import.h, Number format).
  std::string_view number_text(std::string_view value, std::string& scratch) const {
    return plain_numbers_ ? value : formatted_number_text(value, scratch);
  }
  std::string_view formatted_number_text(std::string_view value, std::string& scratch) const;
  // The one-thread path of a later pass: every record after the header, in order, with progress.
  template <class OnRecord>
  void for_each_data_record_serially(const char* stage, OnRecord&& on_record) const {
    CsvReader reader(csv_, options_.delimiter);
    CsvRecord record;
    reader.next(record);  // the header
    ImportProgress progress(reader.file_bytes(), options_.progress, stage);
    while (reader.next(record)) {
      progress.record_done(reader);
      on_record(record);
    }
  }
  void resolve_forced(const std::vector<std::string>& names, ForcedType type, const char* flag);
  void check_text(std::int64_t line, const ColumnScan& column, std::string_view value) const;
  std::string ragged_reason(const CsvRecord& record) const;
  // " (the header holds ';': ... pass --delimiter ';')" for the header_delimiter_ read_header
  // found, else "".
  std::string delimiter_hint() const;
  std::string non_number_reason(std::int64_t line, const ColumnScan& column,
                                std::string_view value) const;
  // Said of a value (trimmed) that is no number in the file's format, when something reads it as
  // one: the options that would, or that it is a plain number the options given do not read; else "".
  std::string how_to_read(std::string_view value) const;
  // A bad row: thrown unless skip_bad_rows, else counted (and kept as an example when early). The
  // error suggests --skip-bad-rows only where `skipping_helps`.
  void bad_row(std::string reason, std::int64_t& count, std::vector<std::string>& examples,
               bool skipping_helps = true) const;
  // Whether every numeric column of `record` (already of the right width) holds a number or a
  // missing value; else the reason.
  std::optional<std::string> non_number_in_numeric_column(const CsvRecord& record) const;
  // The same for the --numeric columns only, in column order: a row both passes skip before they
  // look at any other value (so a label or a bad byte in its other columns counts nowhere), with
  // the same reason in both.
  struct ForcedNumericReason {
    std::string text;
    // Not for a formatted number ("$36.00"): the column's other values are most likely written so
    // too, and skipping their rows would skip every row.
    bool skipping_helps = true;
  };
  std::optional<ForcedNumericReason> non_number_in_forced_numeric_column(const CsvRecord& record) const;

  // Adds the number `value` (trimmed, its number_text) of a column that may be numeric to its
  // tally's integer facts, or to its missing values when it equals an na_values number; counts it
  // among the format_written_numbers when `written` (the field as written) holds a format mark.
  void tally_number(ColumnTally& tally, std::string_view written, std::string_view value,
                    std::int64_t line) const;
  // Pass 1's work on one record, the same on both paths; safe on several threads at once. With
  // `held`, the values of a row it keeps are also parsed and held there (see HeldColumn).
  void scan_record(const CsvRecord& record, ScanTally& tally, HeldRows* held) const {
    plain_numbers_ ? scan_record_as<true>(record, tally, held) : scan_record_as<false>(record, tally, held);
  }
  // scan_record for numbers written plainly (kPlainNumbers, the default) or not: the test made once
  // a record, not for every value (0.7% of the instructions importing 8 text columns).
  template <bool kPlainNumbers>
  void scan_record_as(const CsvRecord& record, ScanTally& tally, HeldRows* held) const;
  // The held column `c` of `held` takes a missing value, the number `number` (parsed from `value`,
  // on `line`), or the label `value` of the row being held; a label it cannot hold goes to the
  // column's tally, as the labels of a segment not held do.
  void hold_missing(HeldColumn& column) const;
  void hold_number(HeldRows& held, std::size_t c, double number, std::string_view value,
                   std::int64_t line) const;
  void hold_label(HeldRows& held, std::size_t c, ColumnTally& tally, std::string_view value) const;
  // The held column has shown both numbers and labels: it holds nothing more, its labels go to
  // `tally`.
  void give_up_column(HeldColumn& column, ColumnTally& tally) const;
  // Frees every held value; pass 2 will read the file again.
  void stop_holding();
  // Whether pass 2 can write the held values: every row pass 2 would write was held, each column
  // as its type needs (see HeldColumn), with no int64 column and the same skipped rows.
  bool held_values_fit() const;
  // Adds `part` (the tally of the records after those of `whole`) to `whole`.
  void merge_tally(ScanTally& whole, ScanTally& part) const;
  // Pass 1 over segments; false (nothing learnt) when the data holds a lone CR.
  bool scan_segments(const CsvDataRegion& region, ScanTally& whole);
  // The label pass's work on one record: inserts the labels of its categorical columns into
  // `labels` (one set per column) when pass 2 will keep the row, and says whether it will.
  bool add_labels(const CsvRecord& record, std::vector<LabelSet>& labels) const;
  // Pass 2's work on one record: parses it into row `row` of `block` (room for it there); false
  // for a bad row (thrown unless skip_bad_rows, else counted in `block`).
  bool parse_row(const CsvRecord& record, RowBlock& block, std::size_t row) const;
  // The file, opened for the segment reads of the label pass and pass 2.
  ReadOnlyFile open_for_segments() const;

  std::filesystem::path csv_;
  const CsvImportOptions& options_;
  MissingValues missing_;
  std::string file_;     // for messages
  std::string changed_;  // the message for a file that changed between or during the passes
  bool plain_numbers_;   // the default number format: '.' the decimal mark, no thousands separator
  std::string number_marks_;  // '.', the decimal mark and the thousands separator, each once
  std::string format_marks_;  // the decimal mark other than '.', and the thousands separator
  std::vector<ColumnScan> columns_;
  std::vector<std::size_t> forced_numeric_;
  // Per column, whether pass 1 has seen more than kNumericLabelLimit distinct numbers in it, in
  // any part of the file: segments then stop collecting them (the merged tally would drop them).
  // Only ever set, from any thread, so the outcome does not depend on the order segments ran in.
  mutable std::unique_ptr<std::atomic<bool>[]> numbers_overflowed_;
  std::optional<CsvDataRegion> segments_;  // the data, when it is read in segments
  std::int64_t kept_rows_ = 0;  // rows pass 1 did not skip
  std::int64_t pass1_skipped_ = 0;
  std::vector<std::string> pass1_skipped_examples_;
  bool rows_known_ = false;  // kept_rows_ is what pass 2 must write
  // What pass 1 held of the data read in segments, in file order (see HeldRows), and its bytes;
  // holding_ is false once the bytes would pass held_limit_ or the values cannot be used.
  std::vector<HeldRows> held_;
  std::int64_t held_bytes_ = 0;
  std::int64_t held_limit_ = 0;
  std::atomic<bool> holding_{false};
  std::vector<std::string> notes_;  // from decide_types, for the report
  // Another usual delimiter (a tab, ';', '|', ',') that a header of one column holds: the file is
  // likely delimited by it (read_header notes it; delimiter_hint names it in a bad row's error).
  // 0: none.
  char header_delimiter_ = 0;
};

void CsvImport::read_header(CsvReader& reader, CsvRecord& record) {
  if (!reader.next(record)) throw InputError(file_ + ": is empty (no header, no rows)");
  columns_.clear();
  std::unordered_map<std::string, std::size_t> position_of_name;
  for (std::size_t i = 0; i < record.fields.size(); ++i) {
    const std::string name(trim(record.fields[i]));
    const std::string where = file_ + ": line " + std::to_string(record.first_line) + ": ";
    if (name.empty()) {
      // The two usual causes, where pandas would read the column as 'Unnamed: N': a DataFrame's
      // index (to_csv writes it first, without a name, unless index=False) and a delimiter ending
      // every line (an empty last column).
      const bool first = i == 0 && record.fields.size() > 1, last = i + 1 == record.fields.size() && i > 0;
      throw InputError(where + "column " + std::to_string(i + 1) + " of the header has no name" +
                       (first  ? " (a DataFrame's index, which pandas' to_csv writes unless index=False? name it "
                                 "in the header, and --drop it when training)"
                        : last ? " (a delimiter at the end of each line? remove it, or name the column)"
                               : ""));
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
  // A header of one column holding another usual delimiter: most likely a file delimited by it,
  // read as one column of text (a TSV imported without --delimiter tab, or a comma-separated file
  // with --delimiter ';' or tab), which nothing else says. The comma last: a name may hold one.
  // The flag is quoted as a shell needs it (an unquoted ';' ends the command, a '|' pipes it).
  if (columns_.size() == 1) {
    for (const auto& [c, flag] :
         {std::pair{'\t', "tab"}, std::pair{';', "';'"}, std::pair{'|', "'|'"}, std::pair{',', "','"}}) {
      const std::string& name = columns_[0].name;
      const auto count = std::count(name.begin(), name.end(), c);
      if (c == options_.delimiter || count == 0) continue;
      header_delimiter_ = c;
      notes_.push_back(
          "the header is one column that holds " + std::to_string(count) + " " +
          (c == '\t' ? std::string("tab") : quoted_for_message(std::string_view(&c, 1))) +
          (count == 1 ? "" : "s") + ": a file delimited by " +
          (c == '\t' ? std::string("tabs") : "'" + std::string(1, c) + "'") + "? --delimiter " +
          flag + " reads its columns");
      break;
    }
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
      // Listed as the option's list takes them (a name holding a comma written \,), at most 30.
      std::vector<std::string> known;
      for (const auto& c : columns_) known.push_back(c.name);
      throw InputError(file_ + ": " + flag + " names the column '" + std::string(name) +
                       "', which the header does not have" + did_you_mean(std::string(name), known, TypedIn::list) +
                       "; columns: " + name_list(known));
    }
    if (it->forced != ForcedType::none && it->forced != type) {
      throw InputError(file_ + ": the column '" + it->name +
                       "' is named by both --categorical and --numeric");
    }
    it->forced = type;
  }
}

std::string CsvImport::ragged_reason(const CsvRecord& record) const {
  // A decimal mark that is the delimiter too (a spreadsheet's comma-separated export in a
  // decimal-comma locale) is read inside quotes only: an unquoted 3,14 is two fields.
  const bool split_number =
      options_.decimal == options_.delimiter && record.fields.size() > columns_.size();
  const std::string mark(1, options_.decimal);
  return "line " + std::to_string(record.first_line) + ": has " +
         std::to_string(record.fields.size()) + (record.fields.size() == 1 ? " field" : " fields") +
         ", the header has " + std::to_string(columns_.size()) +
         (split_number ? " (--decimal '" + mark +
                             "' is also the delimiter, so a number written with it must be "
                             "quoted, \"3" +
                             mark + "14\": unquoted it is two fields)"
                       : std::string());
}

std::string CsvImport::delimiter_hint() const {
  if (header_delimiter_ == 0) return "";
  if (header_delimiter_ == '\t')
    return " (the header holds a tab: is the file separated by tabs? pass --delimiter tab)";
  return std::string(" (the header holds '") + header_delimiter_ +
         "': is the file separated by it? pass --delimiter '" + header_delimiter_ + "')";
}

void CsvImport::check_text(std::int64_t line, const ColumnScan& column, std::string_view value) const {
  if (const auto bad = first_bad_text_byte(value)) {
    throw InputError(file_ + ": line " + std::to_string(line) + ", column '" + column.name + "': " +
                     quoted_for_message(escape_bad_text_bytes(value)) + " " + text_problem(value, *bad));
  }
}

std::string CsvImport::non_number_reason(std::int64_t line, const ColumnScan& column,
                                         std::string_view value) const {
  return "line " + std::to_string(line) + ", column '" + column.name +
         "': " + quoted_for_message(value) + " is not a number" + how_to_read(value);
}

std::string CsvImport::how_to_read(std::string_view value) const {
  if (!plain_numbers_ && is_number(value)) {
    return " (a plain number, but not one with " + format_options({options_.decimal, options_.thousands}) +
           ": are the file's numbers written in more than one format?)";
  }
  if (is_formatted_number(value)) return " (" + formatted_number_advice(value) + ")";
  return "";
}

void CsvImport::bad_row(std::string reason, std::int64_t& count, std::vector<std::string>& examples,
                        bool skipping_helps) const {
  if (!options_.skip_bad_rows) {
    // Rows that a file separated by another delimiter makes bad are all of them: skipping them is
    // no remedy (a ';' file from a European spreadsheet was told to pass --skip-bad-rows).
    const std::string hint = delimiter_hint();
    throw InputError(file_ + ": " + reason +
                     (!hint.empty()     ? hint
                      : skipping_helps ? " (pass --skip-bad-rows to skip such rows)"
                                       : ""));
  }
  ++count;
  if (examples.size() < kSkippedExamples) examples.push_back(std::move(reason));
}

std::optional<std::string> CsvImport::non_number_in_numeric_column(const CsvRecord& record) const {
  std::string scratch;
  for (std::size_t c = 0; c < columns_.size(); ++c) {
    if (columns_[c].type != ColumnType::numeric) continue;
    const std::string_view value = trim(record.fields[c]);
    if (!is_missing(value) && !is_number(number_text(value, scratch))) {
      return non_number_reason(record.first_line, columns_[c], value);
    }
  }
  return std::nullopt;
}

std::optional<CsvImport::ForcedNumericReason> CsvImport::non_number_in_forced_numeric_column(
    const CsvRecord& record) const {
  for (const std::size_t c : forced_numeric_) {
    const std::string_view value = trim(record.fields[c]);
    std::string scratch;
    if (is_missing(value) || is_number(number_text(value, scratch))) continue;
    if (is_formatted_number(value) && !(!plain_numbers_ && is_number(value))) {
      // One sentence: "(it is written with ...) (the column is --numeric) (pass --skip-bad-rows
      // ...)" were three asides in a row, the last no remedy.
      return ForcedNumericReason{"line " + std::to_string(record.first_line) + ", column '" +
                                     columns_[c].name + "' (--numeric): " + quoted_for_message(value) +
                                     " is not a number: " + formatted_number_advice(value),
                                 false};
    }
    return ForcedNumericReason{
        non_number_reason(record.first_line, columns_[c], value) + " (the column is --numeric)"};
  }
  return std::nullopt;
}

std::string_view CsvImport::formatted_number_text(std::string_view value, std::string& scratch) const {
  if (write_plain_decimal(value, options_.decimal, options_.thousands, scratch)) return scratch;
  // inf, nan, Infinity hold no mark and read as before; any other value holding one is no number
  // in this format.
  return value.find_first_of(number_marks_) == std::string_view::npos ? value : std::string_view();
}

void CsvImport::tally_number(ColumnTally& tally, std::string_view written, std::string_view value,
                             std::int64_t line) const {
  if (!format_marks_.empty() && written.find_first_of(format_marks_) != std::string_view::npos) {
    ++tally.format_written_numbers;
  }
  // Equal to an na_values number: missing should the column be numeric (a label if not). Only the
  // int64 decision counts such values, and only while every number is an integer, so a column of
  // other numbers parses no more of them here.
  if (!tally.non_integer && missing_.contains_number_text(value)) {
    ++tally.missing;
  } else {
    tally_integer(tally, value, line);
  }
}

template <bool kPlainNumbers>
void CsvImport::scan_record_as(const CsvRecord& record, ScanTally& tally, HeldRows* held) const {
  ++tally.data_records;
  if (record.fields.size() != columns_.size()) {
    bad_row(ragged_reason(record), tally.skipped_rows, tally.skipped_examples);
    return;
  }
  // A non-number in a forced numeric column makes the row bad before any of its values count.
  if (auto reason = non_number_in_forced_numeric_column(record)) {
    bad_row(std::move(reason->text), tally.skipped_rows, tally.skipped_examples, reason->skipping_helps);
    return;
  }
  ++tally.kept_rows;
  if (held) ++held->rows;
  const std::size_t width = columns_.size();
  std::string scratch;  // number_text's, for a number format other than the default
  for (std::size_t c = 0; c < width; ++c) {
    const ColumnScan& column = columns_[c];
    const std::string_view value = trim(record.fields[c]);
    ColumnTally& tally_of_column = tally.columns[c];
    HeldColumn* held_column = held ? &held->columns[c] : nullptr;
    if (is_missing(value)) {
      ++tally_of_column.missing;
      if (held_column) hold_missing(*held_column);
      continue;
    }
    const std::string_view text = kPlainNumbers ? value : formatted_number_text(value, scratch);
    if (column.forced == ForcedType::numeric) {  // a number: checked above
      tally_number(tally_of_column, value, text, record.first_line);
      double number = 0.0;
      if (held_column && parse_number(text, number)) {
        hold_number(*held, c, number, value, record.first_line);
      }
      continue;
    }
    // Parsing decides as is_number does, and is needed only while the column holds numbers.
    double number = 0.0;
    const bool parse = held_column && (held_column->kind == HeldColumn::Kind::missing_only ||
                                       held_column->kind == HeldColumn::Kind::numbers);
    if (column.forced == ForcedType::categorical) {
      check_text(record.first_line, column, value);
      if (held_column) {
        hold_label(*held, c, tally_of_column, value);
      } else {
        insert_label(tally_of_column.texts, value);
      }
    } else if (parse ? parse_number(text, number) : is_number(text)) {
      ++tally_of_column.numbers;
      tally_number(tally_of_column, value, text, record.first_line);
      if (parse) {
        hold_number(*held, c, number, value, record.first_line);
      } else if (held_column && held_column->kind != HeldColumn::Kind::mixed) {
        give_up_column(*held_column, tally_of_column);
      }
      if (tally_of_column.numbers_seen_complete) {
        if (numbers_overflowed_[c].load(std::memory_order_relaxed)) {
          tally_of_column.numbers_seen = LabelSet();
          tally_of_column.numbers_seen_complete = false;
          continue;
        }
        const bool integer = is_integer_text(value);
        if (integer) insert_label(tally_of_column.numbers_seen, value);
        if (!integer || tally_of_column.numbers_seen.size() > kNumericLabelLimit) {
          tally_of_column.numbers_seen = LabelSet();
          tally_of_column.numbers_seen_complete = false;
          numbers_overflowed_[c].store(true, std::memory_order_relaxed);
        }
      }
    } else {
      check_text(record.first_line, column, value);
      if (tally_of_column.non_numbers++ == 0) {
        tally_of_column.first_non_number_line = record.first_line;
        tally_of_column.first_non_number = value;
      }
      if (!kPlainNumbers && is_number(value)) {  // "3.14" or "0.125" with --decimal , --thousands .
        if (tally_of_column.plain_written_numbers++ == 0) {
          tally_of_column.first_plain_written_number_line = record.first_line;
          tally_of_column.first_plain_written_number = value;
        }
      } else if (is_formatted_number(value)) {
        if (tally_of_column.formatted_numbers++ == 0) {
          tally_of_column.first_formatted_number_line = record.first_line;
          tally_of_column.first_formatted_number = value;
        }
        tally_of_column.formatted_number_formats &= formats_reading(value);
      }
      if (held_column) {
        hold_label(*held, c, tally_of_column, value);
      } else {
        insert_label(tally_of_column.texts, value);
      }
    }
  }
}

void CsvImport::hold_missing(HeldColumn& column) const {
  if (column.kind == HeldColumn::Kind::numbers) {
    column.numbers.push_back(std::numeric_limits<double>::quiet_NaN());
  } else if (column.kind == HeldColumn::Kind::labels) {
    column.codes.push_back(-1);
  }
}

void CsvImport::hold_number(HeldRows& held, std::size_t c, double number, std::string_view value,
                            std::int64_t line) const {
  HeldColumn& column = held.columns[c];
  if (column.kind == HeldColumn::Kind::missing_only) {
    column.kind = HeldColumn::Kind::numbers;
    column.numbers.reserve(held.expected_rows);
    column.numbers.assign(held.rows - 1, std::numeric_limits<double>::quiet_NaN());
  }
  // As parse_row stores it: a number equal to an na_values number is missing, and one Lathe reads
  // as infinite is counted for the note.
  if (missing_.has_numbers() && missing_.contains_number(number)) {
    number = std::numeric_limits<double>::quiet_NaN();
  } else if (read_as_infinite(number)) {
    if (held.infinite.empty()) held.infinite.resize(held.columns.size());
    InfiniteValues& in = held.infinite[c];
    if (in.count++ == 0) {
      in.first_line = line;
      in.first = value;
    }
  }
  column.numbers.push_back(number);
}

void CsvImport::hold_label(HeldRows& held, std::size_t c, ColumnTally& tally,
                           std::string_view value) const {
  HeldColumn& column = held.columns[c];
  switch (column.kind) {
    case HeldColumn::Kind::numbers:
      give_up_column(column, tally);
      [[fallthrough]];
    case HeldColumn::Kind::mixed:
      insert_label(tally.texts, value);
      return;
    case HeldColumn::Kind::missing_only:
      column.kind = HeldColumn::Kind::labels;
      column.codes.reserve(held.expected_rows);
      column.codes.assign(held.rows - 1, -1);
      break;
    case HeldColumn::Kind::labels:
      break;
  }
  column.codes.push_back(static_cast<std::int32_t>(column.label_codes.add(value)));
}

void CsvImport::give_up_column(HeldColumn& column, ColumnTally& tally) const {
  for (const std::string& label : column.label_codes.labels()) insert_label(tally.texts, label);
  column = HeldColumn{};
  column.kind = HeldColumn::Kind::mixed;
}

void CsvImport::stop_holding() {
  holding_.store(false, std::memory_order_relaxed);
  held_.clear();
  held_.shrink_to_fit();
  held_bytes_ = 0;
}

bool CsvImport::held_values_fit() const {
  if (!holding_.load(std::memory_order_relaxed) || !segments_ || !rows_known_ ||
      needs_label_pass()) {
    return false;
  }
  for (const ColumnScan& column : columns_) {
    if (column.exact_integers) return false;
  }
  std::int64_t rows = 0;
  for (const HeldRows& part : held_) {
    rows += static_cast<std::int64_t>(part.rows);
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      const HeldColumn::Kind kind = part.columns[c].kind;
      const HeldColumn::Kind needed = columns_[c].type == ColumnType::categorical
                                          ? HeldColumn::Kind::labels
                                          : HeldColumn::Kind::numbers;
      if (kind != needed && kind != HeldColumn::Kind::missing_only) return false;
    }
  }
  return rows == kept_rows_;
}

void CsvImport::merge_tally(ScanTally& whole, ScanTally& part) const {
  whole.data_records += part.data_records;
  whole.kept_rows += part.kept_rows;
  whole.skipped_rows += part.skipped_rows;
  append_examples(whole.skipped_examples, part.skipped_examples);
  for (std::size_t c = 0; c < whole.columns.size(); ++c) {
    ColumnTally& into = whole.columns[c];
    ColumnTally& from = part.columns[c];
    if (into.non_numbers == 0 && from.non_numbers > 0) {
      into.first_non_number_line = from.first_non_number_line;
      into.first_non_number = std::move(from.first_non_number);
    }
    if (into.formatted_numbers == 0 && from.formatted_numbers > 0) {
      into.first_formatted_number_line = from.first_formatted_number_line;
      into.first_formatted_number = std::move(from.first_formatted_number);
    }
    into.numbers += from.numbers;
    into.non_numbers += from.non_numbers;
    into.formatted_numbers += from.formatted_numbers;
    into.formatted_number_formats &= from.formatted_number_formats;
    if (into.plain_written_numbers == 0 && from.plain_written_numbers > 0) {
      into.first_plain_written_number_line = from.first_plain_written_number_line;
      into.first_plain_written_number = std::move(from.first_plain_written_number);
    }
    into.plain_written_numbers += from.plain_written_numbers;
    into.format_written_numbers += from.format_written_numbers;
    into.missing += from.missing;
    into.non_integer = into.non_integer || from.non_integer;
    into.beyond_int64 = into.beyond_int64 || from.beyond_int64;
    if (!into.beyond_double && from.beyond_double) {
      into.beyond_double = true;
      into.first_beyond_double_line = from.first_beyond_double_line;
      into.first_beyond_double = std::move(from.first_beyond_double);
    }
    into.texts.merge(from.texts);  // moves the labels, no copies
    if (!into.numbers_seen_complete) continue;
    if (from.numbers_seen_complete) into.numbers_seen.merge(from.numbers_seen);
    // More distinct numbers than the limit in the file so far, whatever each part held: the
    // serial scan would have dropped them by now.
    if (!from.numbers_seen_complete || into.numbers_seen.size() > kNumericLabelLimit) {
      into.numbers_seen = LabelSet();
      into.numbers_seen_complete = false;
      numbers_overflowed_[c].store(true, std::memory_order_relaxed);
    }
  }
}

bool CsvImport::scan_segments(const CsvDataRegion& region, ScanTally& whole) {
  const ReadOnlyFile file(csv_);
  if (!file.open()) return false;  // CsvReader will say why
  ImportProgress progress(region.end, options_.progress, "pass 1 of 2 (checking)");
  struct ScanPart {
    CsvRecord record;
    ScanTally tally;
    bool holding = false;
    HeldRows held;
  };
  holding_.store(held_limit_ > 0, std::memory_order_relaxed);
  return read_segments_in_order<ScanPart>(
      file, region, file_, changed_, progress,
      [&](CsvSegment& segment, ScanPart& part) {
        part.tally.reset(columns_.size());
        part.holding = holding_.load(std::memory_order_relaxed);
        if (part.holding) {
          part.held.start(columns_.size(), static_cast<std::size_t>(segment.line_breaks()) + 1,
                          segment.end_offset());
        }
        HeldRows* held = part.holding ? &part.held : nullptr;
        while (segment.next(part.record)) scan_record(part.record, part.tally, held);
      },
      [&](ScanPart& part) {
        if (part.holding) {  // the labels it held count as those of a segment not held
          for (std::size_t c = 0; c < columns_.size(); ++c) {
            for (const std::string& label : part.held.columns[c].label_codes.labels()) {
              insert_label(part.tally.columns[c].texts, label);
            }
          }
        }
        merge_tally(whole, part.tally);
        if (!part.holding || !holding_.load(std::memory_order_relaxed)) return;
        const auto bytes = static_cast<std::int64_t>(part.held.bytes());
        // At the rate held so far, the whole data's values: when they would not fit, holding them
        // on until the limit is met would only cost time (and then pass 2 reads the file again).
        const double share_read =
            static_cast<double>(std::max<std::int64_t>(1, part.held.end_offset - region.begin)) /
            static_cast<double>(std::max<std::int64_t>(1, region.end - region.begin));
        const double projected_bytes =
            static_cast<double>(held_bytes_ + bytes) / std::min(1.0, share_read);
        if (projected_bytes > static_cast<double>(held_limit_)) {
          stop_holding();
          return;
        }
        held_bytes_ += bytes;
        held_.push_back(std::move(part.held));
      });
}

void CsvImport::scan() {
  auto reader = std::make_unique<CsvReader>(csv_, options_.delimiter);
  CsvRecord record;
  read_header(*reader, record);
  resolve_forced(options_.categorical, ForcedType::categorical, "--categorical");
  resolve_forced(options_.numeric, ForcedType::numeric, "--numeric");
  for (std::size_t c = 0; c < columns_.size(); ++c) {
    if (columns_[c].forced == ForcedType::numeric) forced_numeric_.push_back(c);
  }

  // The data is read in segments unless it holds a lone CR, which each segment checks as it is
  // read: at the first batch of segments that finds one, pass 1 starts over here on the serial
  // path, having read no more of the file than that batch and a record running past it.
  ScanTally whole;
  whole.reset(columns_.size());
  numbers_overflowed_ = std::make_unique<std::atomic<bool>[]>(columns_.size());
  if (options_.parallel && reader->file_bytes() >= reader->bytes_consumed()) {
    CsvDataRegion region;
    region.begin = reader->bytes_consumed();
    region.end = reader->file_bytes();
    region.first_line = reader->line();
    region.delimiter = options_.delimiter;
    const std::int64_t threads = std::max(1, omp_get_max_threads());
    region.segment_bytes =
        options_.segment_bytes > 0
            ? options_.segment_bytes
            : std::clamp((region.end - region.begin) / (kSegmentsPerThread * threads),
                         kMinSegmentBytes, kMaxSegmentBytes);
    if (scan_segments(region, whole)) {
      segments_ = region;
    } else {
      stop_holding();
      whole.reset(columns_.size());
      numbers_overflowed_ = std::make_unique<std::atomic<bool>[]>(columns_.size());
      reader = std::make_unique<CsvReader>(csv_, options_.delimiter);
      reader->next(record);  // the header
    }
  }
  if (!segments_) {
    ImportProgress progress(reader->file_bytes(), options_.progress, "pass 1 of 2 (checking)");
    while (reader->next(record)) {
      progress.record_done(*reader);
      scan_record(record, whole, nullptr);
    }
  }

  if (whole.data_records == 0) {  // an empty partition, say: pandas reads an empty frame
    notes_.push_back("the file has a header but no rows: imported as 0 rows, every column "
                     "numeric (float64) unless --categorical names it (then with no labels); "
                     "`lathe score` takes its columns as the model's types");
  }
  if (whole.kept_rows == 0 && whole.data_records > 0) {
    throw InputError(file_ + ": all " + std::to_string(whole.data_records) +
                     " rows are bad and were skipped; the first: " + whole.skipped_examples[0] +
                     delimiter_hint());
  }
  for (std::size_t c = 0; c < columns_.size(); ++c) {
    static_cast<ColumnTally&>(columns_[c]) = std::move(whole.columns[c]);
  }
  kept_rows_ = whole.kept_rows;
  pass1_skipped_ = whole.skipped_rows;
  pass1_skipped_examples_ = std::move(whole.skipped_examples);
  rows_known_ = true;
}

// "97.87%": the share `part` of `whole`, rounded down (so never 100.00% short of all).
std::string share_text(std::int64_t part, std::int64_t whole) {
  char share[32];
  std::snprintf(
      share, sizeof share, "%.2f%%",
      std::floor(10000.0 * static_cast<double>(part) / static_cast<double>(whole)) / 100.0);
  return share;
}

void CsvImport::decide_types() {
  const ColumnScan* first_bad = nullptr;
  // Whether --decimal or --thousands read any number the default format would not: where none
  // did, the notes on plainly written numbers say to import without them.
  const bool format_needed = std::any_of(columns_.begin(), columns_.end(), [](const ColumnScan& column) {
    return column.format_written_numbers > 0;
  });
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
      // Integers float64 would round: int64 when every value is one (and none is missing).
      const bool wide_integers = !column.non_integer && column.beyond_double;
      column.exact_integers = wide_integers && !column.beyond_int64 && column.missing == 0;
      if (wide_integers && !column.exact_integers) {
        double rounded = 0.0;
        parse_number(column.first_beyond_double, rounded);  // as plain decimal text
        char stored[400];
        std::snprintf(stored, sizeof stored, "%.0f", rounded);
        notes_.push_back(
            "column '" + column.name + "' holds integers beyond 2^53 (the first on line " +
            std::to_string(column.first_beyond_double_line) + ": " +
            quoted_for_message(column.first_beyond_double) + ") but also " +
            (column.beyond_int64 ? std::string("integers beyond the int64 range")
                                 : std::to_string(column.missing) + " missing value" +
                                       (column.missing == 1 ? "" : "s") +
                                       ", which int64 cannot hold") +
            ", so it is stored as float64 and its values beyond 2^53 were rounded (that one to " +
            stored + "); pass --categorical '" + column.name + "' to keep them exact as text");
      }
    } else if (column.forced != ForcedType::categorical) {
      // Categorical for want of a few numbers: say so, as the error for a few bad values would.
      const std::int64_t values = column.numbers + column.non_numbers;
      const std::int64_t numbers_in_any_format = column.numbers + column.formatted_numbers;
      if (column.formatted_numbers > 0 &&
          static_cast<double>(numbers_in_any_format) >= kNoteNumericShare * static_cast<double>(values)) {
        // Amounts as a report writes them ("$1,234", "12.5%"): one label per amount, which nothing
        // said, and --na-values or --skip-bad-rows (the advice below) would lose them. Thousands
        // separators and decimal commas alone are read with --thousands and --decimal.
        const std::string options =
            suggested_options(column.formatted_number_formats, column.first_formatted_number);
        notes_.push_back("column '" + column.name + "' was imported as categorical: " +
                         share_text(numbers_in_any_format, values) + " of its " +
                         std::to_string(values) + " non-missing values are numbers, but " +
                         std::to_string(column.formatted_numbers) +
                         (column.formatted_numbers == 1 ? " of them is" : " of them are") +
                         " written with formatting (the first " +
                         quoted_for_message(column.first_formatted_number) + " on line " +
                         std::to_string(column.first_formatted_number_line) + "): " +
                         (options.empty() ? std::string(kFormattedNumberHint) + " before importing"
                                          : "to read them as numbers, import with " + options));
      } else if (column.plain_written_numbers > 0 &&
                 static_cast<double>(column.numbers + column.plain_written_numbers) >=
                     kNoteNumericShare * static_cast<double>(values)) {
        // --decimal or --thousands given for another column's numbers: they apply to every column,
        // as pandas' do, and this one's plain numbers are no numbers in that format.
        const std::string given = format_options({options_.decimal, options_.thousands});
        notes_.push_back(
            "column '" + column.name + "' was imported as categorical, though " +
            share_text(column.numbers + column.plain_written_numbers, values) + " of its " +
            std::to_string(values) + " non-missing values are numbers, " +
            std::to_string(column.plain_written_numbers) + " of them written plainly (the first " +
            quoted_for_message(column.first_plain_written_number) + " on line " +
            std::to_string(column.first_plain_written_number_line) + "), not numbers with " + given +
            ", which apply to every column (as pandas' decimal= and thousands=): " +
            (format_needed ? std::string("write all of the file's numbers in one format")
                           : "no number in the file needs them, so import without " + given));
      } else if (column.numbers == 0 &&
                 std::all_of(column.texts.labels().begin(), column.texts.labels().end(),
                             [](const std::string& label) { return looks_like_date(label); })) {
        // Dates: nothing said that they became labels, useless to a model as they are. Pass 1 has
        // every distinct value of such a column (no number in it), so each is looked at once.
        notes_.push_back("column '" + column.name + "' was imported as categorical, a label per date: its " +
                         std::to_string(values) + " non-missing values look like dates (the first " +
                         quoted_for_message(column.first_non_number) + " on line " +
                         std::to_string(column.first_non_number_line) +
                         "), and Lathe has no date type; pass --drop '" + column.name +
                         "' when training, or derive numeric features from it (a year, a month, a day of "
                         "the week, days since a date) before importing");
      } else if (static_cast<double>(column.numbers) >= kNoteNumericShare * static_cast<double>(values)) {
        notes_.push_back(
            "column '" + column.name + "' was imported as categorical, though " +
            share_text(column.numbers, values) + " of its " + std::to_string(values) +
            " non-missing values are numbers (" + std::to_string(column.non_numbers) +
            (column.non_numbers == 1 ? " is" : " are") + " not, the first " +
            quoted_for_message(column.first_non_number) + " on line " +
            std::to_string(column.first_non_number_line) +
            "); if it is numeric, clean those values, pass --na-values " +
            quoted_for_message(column.first_non_number) +
            " if such values mark missing ones (as '?' often does), or pass --numeric '" + column.name +
            "' --skip-bad-rows to skip their rows");
      }
    }
  }
  if (first_bad && !options_.skip_bad_rows) {
    const ColumnScan& c = *first_bad;
    const std::int64_t values = c.numbers + c.non_numbers;
    const std::string share = share_text(c.numbers, values);
    throw InputError(file_ + ": " +
                     non_number_reason(c.first_non_number_line, c, c.first_non_number) +
                     ", though " + share + " of the column's " + std::to_string(values) +
                     " values are numbers (" + std::to_string(c.non_numbers) +
                     (c.non_numbers == 1 ? " is" : " are") +
                     " not); if the column is categorical, pass --categorical '" + c.name +
                     "'; else fix the values, pass --na-values " + quoted_for_message(c.first_non_number) +
                     " if such values mark missing ones, or pass --skip-bad-rows to skip such rows");
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

ReadOnlyFile CsvImport::open_for_segments() const {
  ReadOnlyFile file(csv_);
  if (!file.open()) throw InputError(file_ + ": cannot open: " + std::strerror(errno));
  return file;
}

bool CsvImport::add_labels(const CsvRecord& record, std::vector<LabelSet>& labels) const {
  if (record.fields.size() != columns_.size() || non_number_in_numeric_column(record)) return false;
  for (std::size_t c = 0; c < columns_.size(); ++c) {
    if (columns_[c].type != ColumnType::categorical) continue;
    const std::string_view value = trim(record.fields[c]);
    if (!is_missing(value)) insert_label(labels[c], value);
  }
  return true;
}

void CsvImport::collect_labels() {
  std::vector<LabelSet> labels(columns_.size());
  std::int64_t rows = 0;
  if (segments_) {
    const ReadOnlyFile file = open_for_segments();
    ImportProgress progress(segments_->end, options_.progress, "collecting category labels");
    struct LabelPart {
      CsvRecord record;
      std::vector<LabelSet> labels;
      std::int64_t rows = 0;
    };
    const bool no_lone_cr = read_segments_in_order<LabelPart>(
        file, *segments_, file_, changed_, progress,
        [&](CsvSegment& segment, LabelPart& part) {
          part.labels.assign(columns_.size(), LabelSet());
          part.rows = 0;
          while (segment.next(part.record)) {
            if (add_labels(part.record, part.labels)) ++part.rows;
          }
        },
        [&](LabelPart& part) {
          rows += part.rows;
          for (std::size_t c = 0; c < labels.size(); ++c) labels[c].merge(part.labels[c]);
        });
    if (!no_lone_cr) throw InputError(changed_);  // pass 1 found none
  } else {
    for_each_data_record_serially("collecting category labels", [&](const CsvRecord& record) {
      if (add_labels(record, labels)) ++rows;
    });
  }
  for (std::size_t c = 0; c < columns_.size(); ++c) {
    columns_[c].texts = std::move(labels[c]);
    columns_[c].numbers_seen = LabelSet();
  }
  kept_rows_ = rows;
  rows_known_ = true;
}

bool CsvImport::parse_row(const CsvRecord& record, RowBlock& block, std::size_t row) const {
  if (record.fields.size() != columns_.size()) {
    bad_row(ragged_reason(record), block.skipped_rows, block.skipped_examples);
    return false;
  }
  // As pass 1 (scan_record), before any other value: a label found only in such a row is no
  // category (pass 1 collected none from it), and the reason is pass 1's.
  if (auto reason = non_number_in_forced_numeric_column(record)) {
    bad_row(std::move(reason->text), block.skipped_rows, block.skipped_examples, reason->skipping_helps);
    return false;
  }
  // Values go straight into the block; a bad row is dropped by the caller not counting it.
  const std::size_t width = columns_.size();
  bool infinite = false;  // a numeric value Lathe reads as infinite
  std::string scratch;    // number_text's, for a number format other than the default
  for (std::size_t c = 0; c < width; ++c) {
    const ColumnScan& column = columns_[c];
    const std::string_view value = trim(record.fields[c]);
    if (column.type == ColumnType::categorical) {
      if (is_missing(value)) {
        block.codes[c][row] = -1;
      } else {
        const auto code = static_cast<std::int32_t>(column.codes.find(value));
        if (code < 0) {
          // A label no row kept holds: the row has a bad value in a later (mostly) numeric column,
          // and the label pass skipped it; that is the reason, as the columns in order find it.
          std::optional<std::string> reason = non_number_in_numeric_column(record);
          if (!reason) throw InputError(changed_);
          bad_row(std::move(*reason), block.skipped_rows, block.skipped_examples);
          return false;
        }
        block.codes[c][row] = code;
      }
    } else if (column.exact_integers) {
      // Pass 1 found only integers within int64 and no missing value in every row that gets here
      // (the rows it skipped are skipped above); a non-number is a bad value of a mostly numeric
      // column (its row is skipped), and a missing value or another number means the file changed.
      const std::string_view text = number_text(value, scratch);
      if (is_integer_text(text) && parse_int64(text, block.integers[c][row])) continue;
      if (is_missing(value) || is_number(text)) throw InputError(changed_);
      bad_row(non_number_reason(record.first_line, column, value), block.skipped_rows,
              block.skipped_examples);
      return false;
    } else if (is_missing(value)) {
      block.numbers[c][row] = std::numeric_limits<double>::quiet_NaN();
    } else if (!parse_number(number_text(value, scratch), block.numbers[c][row])) {
      bad_row(non_number_reason(record.first_line, column, value), block.skipped_rows,
              block.skipped_examples);
      return false;
    } else if (missing_.has_numbers() && missing_.contains_number(block.numbers[c][row])) {
      block.numbers[c][row] = std::numeric_limits<double>::quiet_NaN();
    } else if (read_as_infinite(block.numbers[c][row])) {
      infinite = true;
    }
  }
  if (infinite) {  // counted once the row is known to be kept
    if (block.infinite.empty()) block.infinite.resize(width);
    for (std::size_t c = 0; c < width; ++c) {
      if (columns_[c].type != ColumnType::numeric || columns_[c].exact_integers) continue;
      if (!read_as_infinite(block.numbers[c][row])) continue;
      InfiniteValues& in = block.infinite[c];
      if (in.count++ == 0) {
        in.first_line = record.first_line;
        in.first = trim(record.fields[c]);
      }
    }
  }
  return true;
}

CsvImportReport CsvImport::write(const std::filesystem::path& temporary_path) {
  CsvImportReport report;
  report.columns = static_cast<std::int64_t>(columns_.size());
  report.read_in_segments = segments_.has_value();
  report.read_once = held_values_fit();
  if (!report.read_once) stop_holding();
  std::vector<ColumnSpec> specs;
  for (ColumnScan& column : columns_) {
    if (column.type == ColumnType::categorical) {
      ++report.categorical_columns;
      column.labels = column.texts.release();
      column.labels.insert(column.labels.end(), column.numbers_seen.labels().begin(),
                           column.numbers_seen.labels().end());
      column.texts = LabelSet();
      column.numbers_seen = LabelSet();
      std::sort(column.labels.begin(), column.labels.end());
      if (column.labels.size() >
          static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
        throw InputError(file_ + ": column '" + column.name +
                         "' has more categories than int32 codes");
      }
      column.codes.reserve(column.labels.size());
      for (const std::string& label : column.labels) column.codes.add(label);  // code i: label i
      specs.push_back({column.name, StoredType::categorical_codes});
    } else {
      ++report.numeric_columns;
      if (column.exact_integers) ++report.int64_columns;
      specs.push_back({column.name, column.exact_integers ? StoredType::int64 : StoredType::float64});
    }
  }
  report.notes = notes_;

  const std::size_t width = columns_.size();
  // No longer than the table either (pass 1's rows bound pass 2's): a block's room is allocated for
  // every column, so a short, wide table's would be mostly unused (20 rows of 40,000 columns held
  // blocks of 800 rows, 256 MB).
  const std::size_t block_rows = static_cast<std::size_t>(std::clamp<std::int64_t>(
      std::min(options_.chunk_rows, std::max<std::int64_t>(1, kept_rows_)), 1,
      static_cast<std::int64_t>(std::max<std::size_t>(1, kBlockBytesLimit / (8 * width)))));
  // Chunks no longer than a block, so a wide table's chunks are written whole instead of waiting,
  // partly written, in HDF5's chunk cache (one per column: gigabytes); and no longer than the table
  // (pass 1's rows bound pass 2's), so a short, wide table's chunks are not mostly fill value that
  // is compressed and stored for nothing.
  // Then as even as that allows: the last chunk is stored whole, fill value and all.
  const std::int64_t table_rows = std::max<std::int64_t>(1, kept_rows_);
  const std::int64_t longest_chunk = std::clamp<std::int64_t>(
      std::min(static_cast<std::int64_t>(block_rows), table_rows), 1, options_.chunk_rows);
  const std::int64_t chunk_count = (table_rows + longest_chunk - 1) / longest_chunk;
  const std::int64_t chunk_rows = (table_rows + chunk_count - 1) / chunk_count;
  ColumnarWriter writer(temporary_path, std::move(specs),
                        ColumnarWriteOptions{.chunk_rows = chunk_rows,
                                             .deflate_level = options_.deflate_level,
                                             .expected_rows = table_rows});
  for (std::size_t c = 0; c < width; ++c) {
    if (columns_[c].type == ColumnType::categorical) writer.set_categories(c, columns_[c].labels);
  }
  // Rows reach the writer in blocks of block_rows on both paths.
  std::vector<InfiniteValues> infinite;  // of the rows written, per column (empty: none)
  RowBlock block;
  block.resize(columns_, block_rows);
  const auto append_block = [&] {
    for (std::size_t c = 0; c < width; ++c) {
      if (columns_[c].type == ColumnType::categorical) {
        writer.append_codes(c, std::span<const std::int32_t>(block.codes[c].data(), block.rows));
      } else if (columns_[c].exact_integers) {
        writer.append_integers(c, std::span<const std::int64_t>(block.integers[c].data(), block.rows));
      } else {
        writer.append_numeric(c, std::span<const double>(block.numbers[c].data(), block.rows));
      }
    }
    report.rows += static_cast<std::int64_t>(block.rows);
    block.rows = 0;
  };

  if (report.read_once) {
    // The values pass 1 held, in file order, each part freed once written. Pass 2 would skip the
    // rows pass 1 skipped (for the same reasons: held_values_fit), so the report is pass 1's.
    ImportProgress progress(segments_->end, options_.progress, "pass 2 of 2 (writing)");
    std::vector<std::int32_t> code_of_label;
    for (HeldRows& part : held_) {
      for (std::size_t c = 0; c < width; ++c) {
        HeldColumn& column = part.columns[c];
        if (column.kind != HeldColumn::Kind::labels) continue;
        code_of_label.resize(column.label_codes.size());
        const std::vector<std::string>& labels = column.label_codes.labels();
        for (std::size_t index = 0; index < labels.size(); ++index) {
          const auto code = static_cast<std::int32_t>(columns_[c].codes.find(labels[index]));
          if (code < 0) throw InputError(changed_);  // pass 1 saw it
          code_of_label[index] = code;
        }
        for (std::int32_t& code : column.codes) {
          if (code >= 0) code = code_of_label[static_cast<std::size_t>(code)];
        }
      }
      merge_infinite(infinite, part.infinite);
      for (std::size_t done = 0; done < part.rows;) {
        const std::size_t take = std::min(part.rows - done, block_rows - block.rows);
        const auto from = static_cast<std::ptrdiff_t>(done);
        const auto to = static_cast<std::ptrdiff_t>(block.rows);
        for (std::size_t c = 0; c < width; ++c) {
          const HeldColumn& column = part.columns[c];
          if (columns_[c].type == ColumnType::categorical) {
            if (column.kind == HeldColumn::Kind::labels) {
              std::copy_n(column.codes.begin() + from, take, block.codes[c].begin() + to);
            } else {
              std::fill_n(block.codes[c].begin() + to, take, -1);
            }
          } else if (column.kind == HeldColumn::Kind::numbers) {
            std::copy_n(column.numbers.begin() + from, take, block.numbers[c].begin() + to);
          } else {
            std::fill_n(block.numbers[c].begin() + to, take,
                        std::numeric_limits<double>::quiet_NaN());
          }
        }
        block.rows += take;
        done += take;
        if (block.rows == block_rows) append_block();
      }
      progress.bytes_done(part.end_offset);
      part = HeldRows{};
    }
    stop_holding();
    report.skipped_rows = pass1_skipped_;
    report.skipped_examples = pass1_skipped_examples_;
  } else if (segments_) {
    const ReadOnlyFile file = open_for_segments();
    ImportProgress progress(segments_->end, options_.progress, "pass 2 of 2 (writing)");
    struct WritePart {
      CsvRecord record;
      RowBlock rows;
    };
    const bool no_lone_cr = read_segments_in_order<WritePart>(
        file, *segments_, file_, changed_, progress,
        [&](CsvSegment& segment, WritePart& part) {
          RowBlock& rows = part.rows;
          rows.rows = 0;
          rows.skipped_rows = 0;
          rows.skipped_examples.clear();
          rows.infinite.clear();
          if (rows.capacity == 0) rows.resize(columns_, 1024);
          while (segment.next(part.record)) {
            if (rows.rows == rows.capacity) rows.resize(columns_, 2 * rows.capacity);
            if (parse_row(part.record, rows, rows.rows)) ++rows.rows;
          }
        },
        [&](WritePart& part) {
          RowBlock& rows = part.rows;
          report.skipped_rows += rows.skipped_rows;
          append_examples(report.skipped_examples, rows.skipped_examples);
          merge_infinite(infinite, rows.infinite);
          for (std::size_t done = 0; done < rows.rows;) {
            const std::size_t take = std::min(rows.rows - done, block_rows - block.rows);
            for (std::size_t c = 0; c < width; ++c) {
              if (columns_[c].type == ColumnType::categorical) {
                std::copy_n(rows.codes[c].begin() + static_cast<std::ptrdiff_t>(done), take,
                            block.codes[c].begin() + static_cast<std::ptrdiff_t>(block.rows));
              } else if (columns_[c].exact_integers) {
                std::copy_n(rows.integers[c].begin() + static_cast<std::ptrdiff_t>(done), take,
                            block.integers[c].begin() + static_cast<std::ptrdiff_t>(block.rows));
              } else {
                std::copy_n(rows.numbers[c].begin() + static_cast<std::ptrdiff_t>(done), take,
                            block.numbers[c].begin() + static_cast<std::ptrdiff_t>(block.rows));
              }
            }
            block.rows += take;
            done += take;
            if (block.rows == block_rows) append_block();
          }
        });
    if (!no_lone_cr) throw InputError(changed_);  // pass 1 found none
  } else {
    for_each_data_record_serially("pass 2 of 2 (writing)", [&](const CsvRecord& record) {
      if (!parse_row(record, block, block.rows)) return;
      if (++block.rows == block_rows) append_block();
    });
  }
  report.skipped_rows += block.skipped_rows;  // the serial path counts them in the block
  append_examples(report.skipped_examples, block.skipped_examples);
  merge_infinite(infinite, block.infinite);  // so do they its infinite values
  append_block();
  if (rows_known_ && report.rows != kept_rows_) throw InputError(changed_);
  if (report.rows == 0 && (kept_rows_ > 0 || report.skipped_rows > 0)) {
    if (report.skipped_examples.empty()) throw InputError(changed_);
    throw InputError(file_ + ": all " + std::to_string(report.skipped_rows) +
                     " rows are bad and were skipped; the first: " + report.skipped_examples[0] +
                     delimiter_hint());
  }
  for (std::size_t c = 0; c < infinite.size(); ++c) {
    const InfiniteValues& in = infinite[c];
    if (in.count == 0) continue;
    report.notes.push_back(
        "column '" + columns_[c].name + "' holds " + std::to_string(in.count) + " infinite value" +
        (in.count == 1 ? "" : "s") + " (the first " + quoted_for_message(in.first) + " on line " +
        std::to_string(in.first_line) +
        "; a number beyond float32's range, +-3.4e38, is read as infinite): training refuses them "
        "where it needs the column's mean or spread, and `lathe score` and `lathe eval` refuse them "
        "unless the model clips the column (--clip); clean them, or leave them empty to be imputed");
  }
  writer.set_attribute("lathe_source", csv_.filename().string());
  writer.close();
  return report;
}

}  // namespace

std::optional<std::string> na_value_problem(std::string_view token, char delimiter) {
  const std::string_view trimmed = trim(token);
  const std::string named = "the token " + quoted_for_message(token);
  if (trimmed.empty()) return named + " is empty (an empty field is always missing)";
  if (trimmed.find(delimiter) != std::string_view::npos) {
    return named + " holds the delimiter " + quoted_for_message(std::string_view(&delimiter, 1)) +
           " (separate tokens with commas)";
  }
  if (trimmed.find('"') != std::string_view::npos) return named + " holds a quote";
  if (trimmed.find_first_of("\r\n") != std::string_view::npos) {
    return named + " holds a line break";
  }
  return std::nullopt;
}

std::optional<std::string> number_format_problem(char decimal, char thousands) {
  const auto named = [](char ch) {
    return ch == '\t' ? std::string("a tab") : quoted_for_message(std::string_view(&ch, 1));
  };
  // Characters a number or the CSV dialect already gives a meaning.
  const auto reserved = [](char ch) {
    return (ch >= '0' && ch <= '9') || std::string_view("+-eE\"\r\n").find(ch) != std::string_view::npos;
  };
  if (decimal == 0 || reserved(decimal)) {
    return "--decimal cannot be " + (decimal == 0 ? std::string("empty") : named(decimal)) +
           " (a digit, a sign, an exponent's 'e', a quote or a line break)";
  }
  if (thousands != 0 && reserved(thousands)) {
    return "--thousands cannot be " + named(thousands) +
           " (a digit, a sign, an exponent's 'e', a quote or a line break)";
  }
  if (decimal == thousands) return "--decimal and --thousands are both " + named(decimal) + ": give two characters";
  return std::nullopt;
}

CsvImportReport import_csv(const std::filesystem::path& csv, const std::filesystem::path& out,
                           const CsvImportOptions& options) {
  if (const auto problem = number_format_problem(options.decimal, options.thousands)) {
    throw InputError("number format: " + *problem);
  }
  for (const std::string& token : options.na_values) {
    if (const auto problem = na_value_problem(token, options.delimiter)) {
      throw InputError("missing values (na_values): " + *problem);
    }
  }
  if (options.chunk_rows < 1) {
    throw InputError("chunk rows must be at least 1, not " + std::to_string(options.chunk_rows));
  }
  if (options.deflate_level < 0 || options.deflate_level > 9) {
    throw InputError("the compression level must be 0..9, not " +
                     std::to_string(options.deflate_level));
  }
  if (options.segment_bytes < 0) {
    throw InputError("segment bytes must be 0 (automatic) or more, not " +
                     std::to_string(options.segment_bytes));
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
