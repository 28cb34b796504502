#include "cli/text_width.h"

#include <gtest/gtest.h>

#include <clocale>
#include <string>

namespace lathe::cli {
namespace {

TEST(TextWidth, AsciiTakesOneCellAByte) {
  EXPECT_EQ(display_width(""), 0u);
  EXPECT_EQ(display_width("tenure"), 6u);
  EXPECT_EQ(display_width("contract=One year"), 17u);
}

TEST(TextWidth, EastAsianWideAndFullwidthTakeTwoCells) {
  EXPECT_EQ(display_width("年齢"), 4u);                   // 6 bytes
  EXPECT_EQ(display_width("顧客ID"), 6u);
  EXPECT_EQ(display_width("나이"), 4u);                   // Hangul syllables
  EXPECT_EQ(display_width("カテゴリ"), 8u);               // katakana
  EXPECT_EQ(display_width("ＡＢ１"), 6u);                 // fullwidth forms
  EXPECT_EQ(display_width("\u3000"), 2u);                 // ideographic space
  EXPECT_EQ(display_width("\U00020000"), 2u);             // CJK extension B, 4 bytes
  EXPECT_EQ(display_width("\U0001F642"), 2u);             // an emoji
  EXPECT_EQ(display_width("ｶﾀｶﾅ"), 4u);                   // halfwidth katakana stay narrow
}

TEST(TextWidth, CombiningMarksAndZeroWidthCharactersTakeNone) {
  EXPECT_EQ(display_width("Cafe\u0301"), 4u);             // e + combining acute
  EXPECT_EQ(display_width("Caf\u00e9"), 4u);              // precomposed
  EXPECT_EQ(display_width("\u0e01\u0e31"), 1u);           // Thai consonant + vowel mark
  EXPECT_EQ(display_width("a\u200bb\u200dc\ufeff"), 3u);  // zero-width space, joiner, BOM
  EXPECT_EQ(display_width("x\ufe0f"), 1u);                // variation selector
  EXPECT_EQ(display_width("\u1100\u1161\u11a8"), 2u);     // conjoining Hangul jamo: one syllable
  EXPECT_EQ(display_width("a\tb"), 2u);                   // controls take none
  EXPECT_EQ(display_width("\u00ad"), 1u);                 // a soft hyphen is shown
  EXPECT_EQ(display_width("\u00e4\u00f6\u00fc\u00df"), 4u);
}

TEST(TextWidth, MalformedBytesTakeOneCellEach) {
  EXPECT_EQ(display_width("\xff"), 1u);
  EXPECT_EQ(display_width("a\x80z"), 3u);                 // a stray continuation byte
  EXPECT_EQ(display_width("\xc0\x80"), 2u);               // an overlong NUL
  EXPECT_EQ(display_width("\xed\xa0\x80"), 3u);           // a surrogate
  EXPECT_EQ(display_width("\xe5\xb9"), 2u);               // 年 cut short
  EXPECT_EQ(display_width("\xe5\xb9z"), 3u);
  EXPECT_EQ(display_width("\xf4\x90\x80\x80"), 4u);       // above U+10FFFF
}

TEST(TextWidth, DoesNotDependOnTheLocale) {
  const std::string saved = std::setlocale(LC_ALL, nullptr);
  std::setlocale(LC_ALL, "C");
  EXPECT_EQ(display_width("年齢"), 4u);
  EXPECT_EQ(display_width("Cafe\u0301"), 4u);
  std::setlocale(LC_ALL, saved.c_str());
}

TEST(TextWidth, PaddingCountsCellsNotBytes) {
  EXPECT_EQ(pad_right("年齢", 6), "年齢  ");
  EXPECT_EQ(pad_left("年齢", 6), "  年齢");
  EXPECT_EQ(pad_right("Cafe\u0301", 6), "Cafe\u0301  ");
  EXPECT_EQ(pad_left("age", 5), "  age");
  // As std::setw: text as wide as the column or wider is left whole.
  EXPECT_EQ(pad_right("年齢", 4), "年齢");
  EXPECT_EQ(pad_left("顧客番号", 3), "顧客番号");
  EXPECT_EQ(pad_right("", 2), "  ");
}

}  // namespace
}  // namespace lathe::cli
