// Lists of column names in options (runtime/name_lists.h) and the names messages offer
// (runtime/message_names.h): a name holding a comma can be written, and is shown as it is written.
#include "runtime/name_lists.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "runtime/message_names.h"

namespace lathe {
namespace {

using Names = std::vector<std::string>;

TEST(NameLists, SplitsOnUnescapedCommasAndTrims) {
  EXPECT_EQ(split_name_list("id, when ,x"), (Names{"id", "when", "x"}));
  EXPECT_EQ(split_name_list("id,,  ,x,"), (Names{"id", "x"}));
  EXPECT_EQ(split_name_list(""), Names{});
  // A CSV header "price, usd": its comma escaped; a backslash before a backslash is one.
  EXPECT_EQ(split_name_list("id,price\\, usd"), (Names{"id", "price, usd"}));
  EXPECT_EQ(split_name_list("a\\\\,b"), (Names{"a\\", "b"}));
  // Any other backslash is itself, a trailing one too.
  EXPECT_EQ(split_name_list("C:\\data,x\\"), (Names{"C:\\data", "x\\"}));
  EXPECT_EQ(split_name_list("a*b\\,c", '*'), (Names{"a", "b\\,c"}));
}

TEST(NameLists, ListedNamesReadBackAsThemselves) {
  for (const std::string name : {"price, usd", "a\\", "a\\,b", ",", "plain"}) {
    EXPECT_EQ(split_name_list(listed_name(name) + "," + listed_name("x")), (Names{name, "x"}))
        << name;
  }
}

TEST(NameLists, MessagesShowACommaNameAsAListTakesIt) {
  EXPECT_EQ(name_list({"id", "price, usd", "x"}), "id, price\\, usd, x");
  EXPECT_EQ(did_you_mean("price usd", {"id", "price, usd"}, TypedIn::list),
            " (did you mean 'price, usd'? in a list of columns, write it as 'price\\, usd')");
  EXPECT_EQ(did_you_mean("tenur", {"tenure"}, TypedIn::list), " (did you mean 'tenure'?)");
  EXPECT_EQ(did_you_mean("tenur", {"tenure"}), " (did you mean 'tenure'?)");
}

// Review: `prepare --from` asked of a missing column 'cat' "did you mean 'a'?". A name that keeps
// fewer than half of the longer one's letters is no typo of it; short near misses still are.
TEST(NameLists, DidYouMeanOffersNoNameThatChangesMoreThanHalf) {
  EXPECT_EQ(did_you_mean("cat", {"a", "b"}), "");
  EXPECT_EQ(did_you_mean("ag", {"age", "x"}), " (did you mean 'age'?)");
  EXPECT_EQ(did_you_mean("cty", {"city"}), " (did you mean 'city'?)");
  EXPECT_EQ(did_you_mean("monthly_charge", {"monthly_charges", "tenure"}),
            " (did you mean 'monthly_charges'?)");
}

// A name of one option (--weight, --id, --label) is typed as it is: no list's escapes offered
// (`--weight 'price\, usd'` was told to write it as 'price\, usd').
TEST(NameLists, OneNameIsOfferedAsItIs) {
  EXPECT_EQ(did_you_mean("price\\, usd", {"id", "price, usd"}), " (did you mean 'price, usd'?)");
  EXPECT_EQ(did_you_mean("price usd", {"id", "price, usd"}, TypedIn::one_name), " (did you mean 'price, usd'?)");
}

// Backslashes a list reads as escapes, a trailing one (before the comma that follows it in a list)
// or one before another, are shown escaped; other backslashes as they are.
TEST(NameLists, MessagesShowBackslashesAListWouldReadAsEscapes) {
  EXPECT_TRUE(lists_as_is("plain"));
  EXPECT_TRUE(lists_as_is("C:\\data"));
  EXPECT_FALSE(lists_as_is("tail\\"));
  EXPECT_FALSE(lists_as_is("a\\\\b"));
  EXPECT_FALSE(lists_as_is("a,b"));
  EXPECT_EQ(name_list({"price, usd", "a\\b", "tail\\", "c,1"}), "price\\, usd, a\\b, tail\\\\, c\\,1");
  EXPECT_EQ(did_you_mean("tail,w", {"tail\\", "w"}, TypedIn::list),
            " (did you mean 'tail\\'? in a list of columns, write it as 'tail\\\\')");
  EXPECT_EQ(did_you_mean("x\\y", {"x\\\\y"}, TypedIn::list),
            " (did you mean 'x\\\\y'? in a list of columns, write it as 'x\\\\\\\\y')");
  // Each offered spelling reads back as the name, beside another.
  for (const std::string name : {"tail\\", "a\\\\b", "a\\b", "price, usd"}) {
    const std::string shown = lists_as_is(name) ? name : listed_name(name);
    EXPECT_EQ(split_name_list(shown + "," + "w"), (Names{name, "w"})) << name;
  }
}

// `--cross`: a '*' in a name is written \*, and a '#' \# (a name ending in "#bins" that is a
// column's, not a column's bins); a cross is shown as the option takes it back.
TEST(NameLists, CrossSidesSplitAtUnescapedStars) {
  const auto names = [](const std::vector<CrossSide>& sides) {
    Names out;
    for (const CrossSide& s : sides) out.push_back(s.name + (s.column ? " (column)" : ""));
    return out;
  };
  EXPECT_EQ(names(split_cross("age*city")), (Names{"age", "city"}));
  EXPECT_EQ(names(split_cross("age#bins*city")), (Names{"age#bins", "city"}));
  EXPECT_EQ(names(split_cross("a\\*b*c")), (Names{"a*b", "c"}));
  EXPECT_EQ(names(split_cross("tag\\#bins*c")), (Names{"tag#bins (column)", "c"}));
  // Only the '#' of a trailing "#bins" escaped names a column: `x\#bins#bins` is the bins of the
  // column "x#bins".
  EXPECT_EQ(names(split_cross("x\\#bins#bins*c")), (Names{"x#bins#bins", "c"}));
  EXPECT_EQ(names(split_cross("x\\#bins\\#bins*c")), (Names{"x#bins#bins (column)", "c"}));
  EXPECT_EQ(names(split_cross("a\\#b*c")), (Names{"a#b", "c"}));
  EXPECT_EQ(names(split_cross("x\\\\*y")), (Names{"x\\", "y"}));
  EXPECT_EQ(names(split_cross("C:\\data*y")), (Names{"C:\\data", "y"}));
  EXPECT_EQ(names(split_cross("a*b*c")), (Names{"a", "b", "c"}));
  for (const auto& [a, b] : std::vector<std::pair<CrossSide, CrossSide>>{
           {{"a*b", false}, {"c", false}}, {{"tag#bins", true}, {"c", false}}, {{"x\\", false}, {"y", false}},
           {{"price, usd", false}, {"a\\b", false}}, {{"age#bins", false}, {"city", false}},
           {{"x#bins#bins", false}, {"c", false}}, {{"x#bins#bins", true}, {"c", false}}}) {
    const std::string shown = listed_cross(a, b);
    const Names items = split_name_list(shown + ",w*z");
    ASSERT_EQ(items.size(), 2u) << shown;
    const std::vector<CrossSide> sides = split_cross(items[0]);
    ASSERT_EQ(sides.size(), 2u) << shown;
    EXPECT_EQ(sides[0].name, a.name) << shown;
    EXPECT_EQ(sides[0].column, a.column) << shown;
    EXPECT_EQ(sides[1].name, b.name) << shown;
  }
  EXPECT_EQ(listed_cross({"a*b", false}, {"c", false}), "a\\*b*c");
  // One column's name as a cross's side takes it, read back as that name beside another side.
  for (const std::string name :
       {"size*color", "plain", "price, usd", "tail\\", "a\\*b", "C:\\data"}) {
    const Names items = split_name_list(crossed_name(name) + "*city,w*z");
    ASSERT_EQ(items.size(), 2u) << crossed_name(name);
    const std::vector<CrossSide> sides = split_cross(items[0]);
    ASSERT_EQ(sides.size(), 2u) << crossed_name(name);
    EXPECT_EQ(sides[0].name, name) << crossed_name(name);
  }
  EXPECT_EQ(crossed_name("size*color"), "size\\*color");
  EXPECT_EQ(crossed_name("plain"), "plain");
  EXPECT_EQ(did_you_mean("size*colr", {"size*color", "city"}, TypedIn::cross),
            " (did you mean 'size*color'? in --cross, write it as 'size\\*color')");
  EXPECT_EQ(name_list({"size*color", "city"}, 30, TypedIn::cross), "size\\*color, city");
  EXPECT_EQ(listed_cross({"age#bins", false}, {"city", false}), "age#bins*city");
}

}  // namespace
}  // namespace lathe
