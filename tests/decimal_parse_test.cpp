// parse_short_decimal must give std::from_chars's bits for every string it accepts, and must accept
// the short decimals CSV files are made of.
#include "io/decimal_parse.h"

#include <gtest/gtest.h>

#include <bit>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <random>
#include <regex>
#include <string>

namespace lathe {
namespace {

// from_chars on the whole string ('+' removed first, as the importer does); false when it does not
// read all of it.
bool from_chars_whole(const std::string& text, double& number) {
  const char* first = text.data();
  const char* last = first + text.size();
  if (first != last && *first == '+') ++first;
  const auto [end, ec] = std::from_chars(first, last, number);
  return end == last && ec == std::errc();
}

// Either the fast path declines, or it gives from_chars's bits.
void expect_agrees(const std::string& text, int* accepted = nullptr) {
  double fast = 0.0;
  if (!parse_short_decimal(text, fast)) return;
  if (accepted) ++*accepted;
  double reference = 0.0;
  ASSERT_TRUE(from_chars_whole(text, reference)) << "'" << text << "' is not a number to from_chars";
  EXPECT_EQ(std::bit_cast<std::uint64_t>(fast), std::bit_cast<std::uint64_t>(reference))
      << "'" << text << "': " << fast << " against from_chars's " << reference;
}

TEST(DecimalParse, EdgesGiveFromCharsBits) {
  for (const char* text :
       {"0", "-0", "+0", "0.0", "-0.0", ".5", "5.", "+.5", "-.5", "00012.3400", "1e22", "1e-22", "1e23",
        "9007199254740992", "9007199254740993", "-9007199254740991", "1234567890123456789",
        "12345678901234567890", "0.1", "0.2", "0.3", "2.2250738585072014e-308", "4.9e-324",
        "1.7976931348623157e308", "123.456e-7", "1E+5", "1e0022", "7e-0000", "0e9999"}) {
    SCOPED_TRACE(text);
    expect_agrees(text);
  }
}

TEST(DecimalParse, RefusesWhatIsNotAShortDecimal) {
  double number = 42.0;
  for (const char* text : {"", "+", "-", ".", "+-5", "-+5", "1.2.3", "1e", "1e+", "e5", "1e12345", "inf", "nan",
                           "0x10", " 1", "1 ", "1,5", "12345678901234567890123", "1e23", "9007199254740993"}) {
    EXPECT_FALSE(parse_short_decimal(text, number)) << "'" << text << "'";
  }
  EXPECT_EQ(number, 42.0);  // untouched
}

// Exponents of any length: the digits past the fourth significant one were once added up in an
// int, which overflowed (undefined behaviour; -fsanitize=undefined stops there). Leading zeros are
// not significant, so a long exponent of small value still takes the fast path; a large one, or a
// mantissa of many digits, is left to the general parser. Every accepted value is strtod's.
TEST(DecimalParse, LongExponentsNeverOverflowAndAgreeWithStrtod) {
  struct Case {
    const char* text;
    bool fast;  // taken by the fast path
  };
  for (const Case& c : std::initializer_list<Case>{
           {"1e0000000000000000000005", true},
           {"1e-0000000000000000000001", true},
           {"-2.5E+000000000000000000000000000000000000000022", true},
           {"1e00000", true},
           {"1e9999", false},
           {"1e99999999999", false},
           {"1e-99999999999", false},
           {"1e2147483648", false},
           {"1e4294967306", false},  // 10 once wrapped around 2^32
           {"1e-4294967295", false},
           {"1e0000000000000000000012345", false},
           {"9e99999999999999999999999999999999999999", false},
           {"123456789012345678901234567890e-30", false},
           {"0.000000000000000000000000000001e30", true},
           {"123456789012345e-0000000000000000000014", true}}) {
    SCOPED_TRACE(c.text);
    double fast = 0.0;
    const bool accepted = parse_short_decimal(c.text, fast);
    EXPECT_EQ(accepted, c.fast);
    expect_agrees(c.text);
    if (accepted) {
      const double reference = std::strtod(c.text, nullptr);
      EXPECT_EQ(std::bit_cast<std::uint64_t>(fast), std::bit_cast<std::uint64_t>(reference))
          << fast << " against strtod's " << reference;
    }
    EXPECT_TRUE(is_plain_decimal(c.text));
  }
}

TEST(DecimalParse, RandomDecimalsGiveFromCharsBitsAndMostTakeTheFastPath) {
  std::mt19937_64 rng(2026);
  int accepted = 0;
  constexpr int kStrings = 300000;
  for (int i = 0; i < kStrings; ++i) {
    std::string text;
    if (rng() % 4 == 0) text += (rng() % 2 ? '-' : '+');
    const int whole = static_cast<int>(rng() % 12);
    const int fraction = static_cast<int>(rng() % 12);
    for (int d = 0; d < whole; ++d) text += static_cast<char>('0' + rng() % 10);
    if (fraction > 0 || rng() % 8 == 0) text += '.';
    for (int d = 0; d < fraction; ++d) text += static_cast<char>('0' + rng() % 10);
    if (whole + fraction == 0) text += '7';
    if (rng() % 3 == 0) {
      text += (rng() % 2 ? 'e' : 'E');
      const int roll = static_cast<int>(rng() % 3);
      if (roll == 1) text += '-';
      if (roll == 2) text += '+';
      text += std::to_string(rng() % 30);
    }
    expect_agrees(text, &accepted);
    if (HasFatalFailure() || HasFailure()) return;
  }
  EXPECT_GT(accepted, kStrings * 3 / 4);
}

// is_plain_decimal against the grammar it documents, written as a regular expression, on strings
// of every length up to 20 (both sides of its 16-byte fast path) made of the characters a number
// holds and a few that end one (a NUL byte included: it must not pass for the end of the value).
TEST(DecimalParse, PlainDecimalIsExactlyItsGrammar) {
  const std::regex grammar("[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?");
  const std::string alphabet("0123456789012345678901234567890123456789..eE+-x ", 48);
  std::string with_nul = alphabet;
  with_nul += '\0';
  std::mt19937_64 rng(29);
  int plain = 0;
  constexpr int kStrings = 200000;
  for (int i = 0; i < kStrings; ++i) {
    const std::size_t length = rng() % 21;
    std::string text;
    const bool number_like = rng() % 2 == 0;  // digits with a point and an exponent, mostly valid
    for (std::size_t k = 0; k < length; ++k) {
      if (number_like && rng() % 16 != 0) {
        text += k == length / 2 && rng() % 2 ? '.' : static_cast<char>('0' + rng() % 10);
      } else {
        text += with_nul[rng() % with_nul.size()];
      }
    }
    if (number_like && length > 3 && rng() % 3 == 0) text[length - 3] = 'e';
    const bool expected = std::regex_match(text, grammar);
    plain += expected ? 1 : 0;
    ASSERT_EQ(is_plain_decimal(text), expected) << "'" << text << "' (" << text.size() << " bytes)";
  }
  EXPECT_GT(plain, kStrings / 5);  // the valid side is well covered too
  for (const char* text : {"1", "-1", "+.5", "5.", "1e5", "1E-05", "0000000000000001", "123456789012345.6",
                           "1234567890123456e1", "12345678901234567"}) {
    EXPECT_TRUE(is_plain_decimal(text)) << "'" << text << "'";
  }
  for (const char* text : {"", ".", "-", "e5", "1e", "1e+", "1.2.3", "1..2", "--1", "1-", "inf", "0x1"}) {
    EXPECT_FALSE(is_plain_decimal(text)) << "'" << text << "'";
  }
  EXPECT_FALSE(is_plain_decimal(std::string("12\0", 3)));
  EXPECT_FALSE(is_plain_decimal(std::string("1.5\0e3", 6)));
}

}  // namespace
}  // namespace lathe
