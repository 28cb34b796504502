#include "io/decimal_parse.h"

#include <cstdint>

namespace lathe {

namespace {

// 10^0 .. 10^22: every one an exact double (10^22 = 2^22 * 5^22, and 5^22 < 2^53).
constexpr double kExactPowersOfTen[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                        1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
constexpr std::uint64_t kMaxExactInteger = std::uint64_t{1} << 53;

bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

}  // namespace

bool is_plain_decimal(std::string_view value) {
  const char* p = value.data();
  const char* const end = p + value.size();
  if (p != end && (*p == '-' || *p == '+')) ++p;
  // The mantissa in one loop (one hard-to-predict exit per value, not one per digit run).
  const char* const mantissa = p;
  std::ptrdiff_t points = 0;
  for (; p != end; ++p) {
    if (is_digit(*p)) continue;
    if (*p != '.') break;
    ++points;
  }
  if (points > 1 || p - mantissa == points) return false;  // two points, or no digit
  if (p == end) return true;
  if (*p != 'e' && *p != 'E') return false;
  ++p;
  if (p != end && (*p == '-' || *p == '+')) ++p;
  const char* const exponent = p;
  while (p != end && is_digit(*p)) ++p;
  return p != exponent && p == end;
}

bool parse_short_decimal(std::string_view text, double& number) {
  const char* p = text.data();
  const char* const end = p + text.size();
  bool negative = false;
  if (p != end && (*p == '-' || *p == '+')) negative = *p++ == '-';
  // Two tight digit loops (whole part, fraction) with no test for the point inside them. The
  // mantissa may wrap around past 19 digits: such a number is refused below, before it is used.
  std::uint64_t mantissa = 0;
  const char* const whole = p;
  while (p != end && *p == '0') ++p;  // leading zeros are not significant
  const char* const whole_significant = p;
  for (; p != end && is_digit(*p); ++p) mantissa = mantissa * 10 + static_cast<std::uint64_t>(*p - '0');
  std::ptrdiff_t significant = p - whole_significant;
  std::ptrdiff_t digits = p - whole;
  std::ptrdiff_t fraction_digits = 0;
  if (p != end && *p == '.') {
    ++p;
    const char* const fraction = p;
    if (mantissa == 0) {
      while (p != end && *p == '0') ++p;
    }
    const char* const fraction_significant = p;
    for (; p != end && is_digit(*p); ++p) mantissa = mantissa * 10 + static_cast<std::uint64_t>(*p - '0');
    significant += p - fraction_significant;
    fraction_digits = p - fraction;
    digits += fraction_digits;
  }
  if (digits == 0 || significant > 19) return false;
  int exponent = 0;
  if (p != end) {
    if (*p != 'e' && *p != 'E') return false;
    ++p;
    bool exponent_negative = false;
    if (p != end && (*p == '-' || *p == '+')) exponent_negative = *p++ == '-';
    const char* const exponent_digits = p;
    for (; p != end && is_digit(*p); ++p) exponent = exponent * 10 + (*p - '0');
    if (p != end || p == exponent_digits || p - exponent_digits > 4) return false;
    if (exponent_negative) exponent = -exponent;
  }
  if (mantissa > kMaxExactInteger) return false;
  const std::ptrdiff_t power = exponent - fraction_digits;
  if (power < -22 || power > 22) return false;
  const double value = static_cast<double>(mantissa);
  const double magnitude = power >= 0 ? value * kExactPowersOfTen[power] : value / kExactPowersOfTen[-power];
  number = negative ? -magnitude : magnitude;
  return true;
}

}  // namespace lathe
