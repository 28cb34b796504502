#include "io/decimal_parse.h"

#include <bit>
#include <cstdint>
#include <cstring>

namespace lathe {

namespace {

static_assert(std::endian::native == std::endian::little,
              "the eight-bytes-at-a-time digit scans assume a little-endian machine");

// 10^0 .. 10^22: every one an exact double (10^22 = 2^22 * 5^22, and 5^22 < 2^53).
constexpr double kExactPowersOfTen[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                        1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
constexpr std::uint64_t kMaxExactInteger = std::uint64_t{1} << 53;

bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

// is_plain_decimal's fast path holds a value of up to 16 bytes in one 128-bit integer, its first
// byte lowest, read with loads that stay inside the value, and counts its digits eight bytes at a
// time from there: no byte loop and no copy through memory (a load spanning two earlier stores
// would wait for both). Longer values take the byte-by-byte path. Every number written with up to
// 7 significant digits ("-1.234567e-05") is short enough. (The same for parse_short_decimal measured
// no faster: its time goes to the conversion, not to finding the digits.)
constexpr std::size_t kShortValue = 16;
using Bytes16 = unsigned __int128;

std::uint64_t load8(const char* p) {
  std::uint64_t word;
  std::memcpy(&word, p, 8);
  return word;
}

std::uint64_t load4(const char* p) {
  std::uint32_t word;
  std::memcpy(&word, p, 4);
  return word;
}

// The `n` (1..16) bytes at p, zero above them: loads of 8 (or 4) bytes from the value's start and
// to its end, which overlap rather than reach past it.
Bytes16 load_short(const char* p, std::size_t n) {
  if (n >= 8) {
    const Bytes16 tail = load8(p + n - 8);  // bytes n-8 .. n-1
    return Bytes16{load8(p)} | (tail << (8 * (n - 8)));
  }
  if (n >= 4) return load4(p) | (load4(p + n - 4) << (8 * (n - 4)));
  const auto byte = [p](std::size_t k) { return std::uint64_t{static_cast<unsigned char>(p[k])} << (8 * k); };
  return byte(0) | byte(n / 2) | byte(n - 1);
}

// The eight bytes from byte i on (zero past byte 15).
std::uint64_t word_at(Bytes16 bytes, std::size_t i) {
  return i < 16 ? static_cast<std::uint64_t>(bytes >> (8 * i)) : 0;
}

char byte_at(Bytes16 bytes, std::size_t i) { return static_cast<char>(word_at(bytes, i)); }

// How many of the word's bytes, from its first (lowest), are ASCII digits before the first that
// is not: 0..8. A byte is a digit when byte ^ '0' is below 10, so neither it nor it + 6 has a high
// nibble. An addition may carry out of a non-digit byte into the next, which only ever changes
// bytes after the first non-digit.
int leading_digits(std::uint64_t word) {
  const std::uint64_t x = word ^ 0x3030303030303030u;
  const std::uint64_t not_digit = (x | (x + 0x0606060606060606u)) & 0xF0F0F0F0F0F0F0F0u;
  return not_digit == 0 ? 8 : std::countr_zero(not_digit) >> 3;
}

// How many digits run from byte i on (up to 16: the zero bytes above the value end every run).
int digit_count(Bytes16 bytes, std::size_t i) {
  const int head = leading_digits(word_at(bytes, i));
  const int tail = leading_digits(word_at(bytes, i + 8));
  return head + (head == 8 ? tail : 0);
}

bool is_sign(char ch) { return ch == '-' || ch == '+'; }

bool is_plain_decimal_bytewise(std::string_view value) {
  const char* p = value.data();
  const char* const end = p + value.size();
  if (p != end && is_sign(*p)) ++p;
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
  if (p != end && is_sign(*p)) ++p;
  const char* const exponent = p;
  while (p != end && is_digit(*p)) ++p;
  return p != exponent && p == end;
}

// mantissa x 10^power, signed, when both are exact doubles (Clinger's fast path); else false.
bool finish_short_decimal(std::uint64_t mantissa, std::ptrdiff_t power, bool negative, double& number) {
  if (mantissa > kMaxExactInteger) return false;
  if (power < -22 || power > 22) return false;
  const double value = static_cast<double>(mantissa);
  const double magnitude = power >= 0 ? value * kExactPowersOfTen[power] : value / kExactPowersOfTen[-power];
  number = negative ? -magnitude : magnitude;
  return true;
}

}  // namespace

bool is_plain_decimal(std::string_view value) {
  const std::size_t n = value.size();
  if (n == 0 || n > kShortValue) return is_plain_decimal_bytewise(value);
  const Bytes16 b = load_short(value.data(), n);
  std::size_t i = is_sign(byte_at(b, 0)) ? 1 : 0;
  const int whole_digits = digit_count(b, i);
  i += static_cast<std::size_t>(whole_digits);
  int fraction_digits = 0;
  if (byte_at(b, i) == '.') {
    ++i;
    fraction_digits = digit_count(b, i);
    i += static_cast<std::size_t>(fraction_digits);
  }
  if (whole_digits + fraction_digits == 0) return false;
  if (i < n) {
    if ((byte_at(b, i) | 0x20) != 'e') return false;  // 'e' or 'E'
    ++i;
    if (is_sign(byte_at(b, i))) ++i;
    const int exponent_digits = digit_count(b, i);
    if (exponent_digits == 0) return false;
    i += static_cast<std::size_t>(exponent_digits);
  }
  return i == n;  // not stopped early by a zero byte in the value
}

bool parse_short_decimal(std::string_view text, double& number) {
  const char* p = text.data();
  const char* const end = p + text.size();
  bool negative = false;
  if (p != end && is_sign(*p)) negative = *p++ == '-';
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
    if (p != end && is_sign(*p)) exponent_negative = *p++ == '-';
    const char* const exponent_digits = p;
    while (p != end && *p == '0') ++p;  // leading zeros are not significant: 1e0005 is 1e5
    const char* const exponent_significant = p;
    // At most 4 significant digits are added up, so the int never overflows however long the
    // exponent ("1e99999999999"); a longer one is refused below, its digits only skipped.
    for (; p != end && is_digit(*p); ++p) {
      if (p - exponent_significant < 4) exponent = exponent * 10 + (*p - '0');
    }
    if (p != end || p == exponent_digits || p - exponent_significant > 4) return false;
    if (exponent_negative) exponent = -exponent;
  }
  return finish_short_decimal(mantissa, exponent - fraction_digits, negative, number);
}

}  // namespace lathe
