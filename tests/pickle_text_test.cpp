// The text pickles PyTables writes for pandas' attributes; the inputs are Python's own
// pickle.dumps(value, 0) output, copied from the interpreter.
#include "io/pickle_text.h"

#include <gtest/gtest.h>

#include "runtime/error.h"

namespace lathe {
namespace {

using Kind = PickleValue::Kind;

TEST(PickleText, ReadsAListOfNamesWithEscapesAndNesting) {
  // pickle.dumps(['a', 'é', '中\\\n', 1, -7, (1, ['x'])], 0)
  const std::string bytes =
      "(lp0\nVa\np1\naV\xe9\np2\naV\\u4e2d\\u005c\\u000a\np3\naI1\naI-7\na(I1\n("
      "lp4\nVx\np5\natp6\na.";
  const PickleValue v = parse_text_pickle(bytes);
  ASSERT_EQ(v.kind, Kind::list);
  ASSERT_EQ(v.items.size(), 6u);
  EXPECT_EQ(v.items[0].text, "a");
  EXPECT_EQ(v.items[1].text, "\xc3\xa9");          // Latin-1 byte 0xE9 as UTF-8
  EXPECT_EQ(v.items[2].text, "\xe4\xb8\xad\\\n");  // \u escapes, a backslash and a newline
  EXPECT_EQ(v.items[3].integer, 1);
  EXPECT_EQ(v.items[4].as_name(), "-7");
  ASSERT_EQ(v.items[5].kind, Kind::tuple);
  EXPECT_EQ(v.items[5].items[0].integer, 1);
  ASSERT_EQ(v.items[5].items[1].kind, Kind::list);
  EXPECT_EQ(v.items[5].items[1].items[0].text, "x");
}

TEST(PickleText, AMemoReferenceSeesTheFinishedValue) {
  // x = ['shared']; pickle.dumps([x, x], 0): the second is GET of a list PUT before its APPEND.
  const PickleValue v = parse_text_pickle("(lp0\n(lp1\nVshared\np2\naag1\na.");
  ASSERT_EQ(v.items.size(), 2u);
  ASSERT_EQ(v.items[1].items.size(), 1u);
  EXPECT_EQ(v.items[1].items[0].text, "shared");
}

TEST(PickleText, ReadsDictsNoneFloatsAndBooleans) {
  // pickle.dumps({'k': None, 'n': 2.5, 't': True}, 0)
  const PickleValue v = parse_text_pickle("(dp0\nVk\np1\nNsVn\np2\nF2.5\nsVt\np3\nI01\ns.");
  ASSERT_EQ(v.kind, Kind::dict);
  ASSERT_EQ(v.items.size(), 6u);
  EXPECT_EQ(v.items[1].kind, Kind::none);
  EXPECT_EQ(v.items[3].real, 2.5);
  EXPECT_EQ(v.items[5].integer, 1);
  EXPECT_TRUE(is_pickled_none("N."));
  EXPECT_EQ(parse_text_pickle("S'it\\'s'\np0\n.").text, "it's");
}

TEST(PickleText, RefusesWhatItDoesNotRead) {
  // pickle.dumps([b'raw'], 0) names a class (_codecs.encode): refused, not guessed.
  EXPECT_THROW(
      parse_text_pickle("(lp0\nc_codecs\nencode\np1\n(Vraw\np2\nVlatin1\np3\ntp4\nRp5\na."), Error);
  EXPECT_THROW(parse_text_pickle("L1180591620717411303424L\n."), Error);      // beyond int64
  EXPECT_THROW(parse_text_pickle("(lp0\nVa\np1\na"), Error);                  // no STOP
  EXPECT_THROW(parse_text_pickle("(lp0\nVa"), Error);                         // a cut argument
  EXPECT_THROW(parse_text_pickle("a."), Error);                               // APPEND to nothing
  EXPECT_THROW(parse_text_pickle("(lp0\ng7\n."), Error);                      // GET of nothing
  EXPECT_THROW(parse_text_pickle("(lp0\nVa\n(I1\n(lp1\ntp2\nVa\n."), Error);  // two values at STOP
  EXPECT_THROW(parse_text_pickle("N.").as_name(), Error);
  // A list holding the previous list twice, 40 times over: 2^40 values from a few hundred bytes.
  // Each list is made, kept in the memo and popped; the last one is the value.
  std::string bomb = "(lp0\nVa\na0";
  for (int i = 1; i <= 40; ++i) {
    const std::string previous = "g" + std::to_string(i - 1) + "\n";
    bomb += "(lp" + std::to_string(i) + "\n" + previous + "a" + previous + "a0";
  }
  EXPECT_EQ(parse_text_pickle(bomb.substr(0, bomb.find("(lp3")) + "g2\n.").items.size(),
            2u);  // a small one reads
  try {
    parse_text_pickle(bomb + "g40\n.");
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lathe
