#include "io/text_check.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace lathe {
namespace {

// Every position and kind of bad byte, before, inside and after the eight-byte words the ASCII
// path steps over, is found at its own position; good text of every length passes.
TEST(TextCheck, FindsTheFirstBadByteWhereverItIs) {
  for (std::size_t length = 0; length <= 40; ++length) {
    const std::string ascii(length, 'a');
    EXPECT_EQ(first_bad_text_byte(ascii), std::nullopt) << length;
    for (std::size_t at = 0; at < length; ++at) {
      SCOPED_TRACE("length " + std::to_string(length) + " at " + std::to_string(at));
      for (const char bad : {'\0', '\xff', '\x80', '\xc0'}) {
        std::string text = ascii;
        text[at] = bad;
        EXPECT_EQ(first_bad_text_byte(text), std::optional<std::size_t>(at));
      }
      // A two-byte sequence cut by the end, and a whole one that is good.
      std::string cut = ascii.substr(0, at) + "\xc3";
      EXPECT_EQ(first_bad_text_byte(cut), std::optional<std::size_t>(at));
      EXPECT_EQ(first_bad_text_byte(ascii.substr(0, at) + "\xc3\xa9" + ascii.substr(at)), std::nullopt);
      // A four-byte character across a word's end, then a bad byte after it.
      const std::string four = ascii.substr(0, at) + "\xf0\x9f\x98\x80" + ascii.substr(at) + "\xfe";
      EXPECT_EQ(first_bad_text_byte(four), std::optional<std::size_t>(length + 4));
    }
  }
  EXPECT_EQ(first_bad_text_byte("\xed\xa0\x80"), std::optional<std::size_t>(0));  // a surrogate
  EXPECT_EQ(first_bad_text_byte("abcdefgh\xe0\x80\x80"), std::optional<std::size_t>(8));  // overlong
}

// The first NUL within the length, wherever it is, ends the string; without one the whole length
// is the string.
TEST(TextCheck, CStringLengthStopsAtTheFirstNul) {
  for (std::size_t length = 0; length <= 40; ++length) {
    const std::string text(length, '\x80');  // high bits set: no false NUL from the word test
    EXPECT_EQ(c_string_length(text.data(), length), length);
    for (std::size_t at = 0; at < length; ++at) {
      std::string cut = text;
      cut[at] = '\0';
      if (at + 1 < length) cut[length - 1] = '\0';  // a later NUL changes nothing
      EXPECT_EQ(c_string_length(cut.data(), length), at) << length << " " << at;
    }
  }
  EXPECT_EQ(c_string_length("abc\0def", 2), 2u);  // bytes past the length are not looked at
}

// Text in another encoding quoted in a message: each byte that is not UTF-8 written \xNN, valid
// sequences kept, so the message is UTF-8 (a Latin-1 'ü' went to stderr as the raw byte 0xFC).
TEST(TextCheck, EscapesTheBytesThatAreNotUtf8) {
  EXPECT_EQ(escape_bad_text_bytes("M\xFCller"), "M\\xFCller");
  EXPECT_EQ(escape_bad_text_bytes("12,50 \x80"), "12,50 \\x80");
  EXPECT_EQ(escape_bad_text_bytes("Z\xC3\xBCrich \xE9t\xE9"), "Z\xC3\xBCrich \\xE9t\\xE9");
  EXPECT_EQ(escape_bad_text_bytes(std::string_view("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(escape_bad_text_bytes("plain"), "plain");
  EXPECT_EQ(escape_bad_text_bytes("\xE2\x82"), "\\xE2\\x82");  // a cut sequence: each byte
  EXPECT_FALSE(first_bad_text_byte(escape_bad_text_bytes("\xFF\xFE\x00x")));
}

}  // namespace
}  // namespace lathe
