#include "runtime/label_table.h"

#include <gtest/gtest.h>

#include "runtime/label_codes.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lathe {
namespace {

// Labels kept by the test as LabelTable's callers keep them: label i is texts[i].
struct Labels {
  std::vector<std::string> texts;
  LabelTable table;
  std::int64_t add(std::string_view label, std::uint64_t h) {
    bool added = false;
    const std::int64_t i = table.find_or_add(label, h, of(), added);
    if (added) {
      EXPECT_EQ(i, static_cast<std::int64_t>(texts.size()));
      texts.emplace_back(label);
    }
    return i;
  }
  std::int64_t add(std::string_view label) { return add(label, LabelTable::hash(label)); }
  std::int64_t find(std::string_view label) const { return table.find(label, LabelTable::hash(label), of()); }
  struct Of {
    const std::vector<std::string>* texts;
    std::string_view operator()(std::int64_t i) const { return (*texts)[static_cast<std::size_t>(i)]; }
  };
  Of of() const { return {&texts}; }
};

TEST(LabelTable, GivesEachLabelTheIndexOfItsFirstAdditionThroughGrowth) {
  Labels l;
  EXPECT_EQ(l.find("a"), -1);  // an empty table finds nothing
  constexpr int kLabels = 100000;  // the table grows from 16 entries a dozen times
  for (int i = 0; i < kLabels; ++i) EXPECT_EQ(l.add("id" + std::to_string(i)), i);
  EXPECT_EQ(l.table.size(), static_cast<std::size_t>(kLabels));
  for (int i = kLabels - 1; i >= 0; i -= 7) {
    EXPECT_EQ(l.add("id" + std::to_string(i)), i);  // again: found, not added
    EXPECT_EQ(l.find("id" + std::to_string(i)), i);
  }
  EXPECT_EQ(l.table.size(), static_cast<std::size_t>(kLabels));
  EXPECT_EQ(l.find("id" + std::to_string(kLabels)), -1);
  EXPECT_EQ(l.find(""), -1);
  EXPECT_EQ(l.add(""), kLabels);  // the empty label is a label like any other
  EXPECT_EQ(l.find(""), kLabels);
}

// Labels of one hash (one tag, one place) are told apart by their text, and a label of the same
// place but another tag never reads theirs.
TEST(LabelTable, TellsCollidingLabelsApartByTheirText) {
  Labels l;
  const std::uint64_t same = 0x123456789abcdef0ull;
  EXPECT_EQ(l.add("x", same), 0);
  EXPECT_EQ(l.add("y", same), 1);
  EXPECT_EQ(l.add("z", same), 2);
  EXPECT_EQ(l.add("y", same), 1);
  EXPECT_EQ(l.table.find("z", same, l.of()), 2);
  EXPECT_EQ(l.table.find("w", same, l.of()), -1);
  // Another tag at the same place (the top bits of the tag alike): the text "x" is not looked at.
  int reads = 0;
  const auto counting = [&](std::int64_t i) {
    ++reads;
    return std::string_view(l.texts[static_cast<std::size_t>(i)]);
  };
  EXPECT_EQ(l.table.find("x", same ^ (std::uint64_t{1} << 32), counting), -1);
  EXPECT_EQ(reads, 0);
  // Growth keeps colliding labels findable (their places come from their tags alone).
  for (int i = 0; i < 1000; ++i) l.add("fill" + std::to_string(i));
  EXPECT_EQ(l.table.find("x", same, l.of()), 0);
  EXPECT_EQ(l.table.find("z", same, l.of()), 2);
}

// The inline comparison of labels whose tags match: every length up to past its 16-byte path, a
// change of any one byte (and only that) told apart, and colliding labels of every length kept
// apart by the table.
TEST(LabelTable, ComparesLabelTextByEveryByte) {
  for (std::size_t n = 0; n <= 40; ++n) {
    SCOPED_TRACE(n);
    std::string a(n, 'a');
    for (std::size_t i = 0; i < n; ++i) a[i] = static_cast<char>('a' + (i * 7) % 26);
    EXPECT_TRUE(same_label_text(a, std::string(a)));
    EXPECT_FALSE(same_label_text(a, a + "b"));
    if (n > 0) EXPECT_FALSE(same_label_text(a, a.substr(0, n - 1)));
    for (std::size_t i = 0; i < n; ++i) {
      std::string b = a;
      b[i] = static_cast<char>(b[i] ^ 0x80);
      EXPECT_FALSE(same_label_text(a, b)) << "byte " << i;
    }
  }
  Labels l;
  const std::uint64_t same = 0x0fedcba987654321ull;
  for (std::size_t n = 1; n <= 24; ++n) {
    EXPECT_EQ(l.add(std::string(n, 'q'), same), static_cast<std::int64_t>(2 * (n - 1)));
    EXPECT_EQ(l.add(std::string(n - 1, 'q') + "r", same), static_cast<std::int64_t>(2 * (n - 1) + 1));
  }
  for (std::size_t n = 1; n <= 24; ++n) {
    EXPECT_EQ(l.table.find(std::string(n, 'q'), same, l.of()), static_cast<std::int64_t>(2 * (n - 1)));
  }
}

TEST(LabelTable, ClearForgetsEveryLabel) {
  Labels l;
  for (int i = 0; i < 100; ++i) l.add(std::to_string(i));
  l.table.prefetch(LabelTable::hash("5"));
  l.table.prefetch_label(LabelTable::hash("5"), [&](std::int64_t i) { return l.texts.data() + i; });
  l.table.clear();
  l.texts.clear();
  EXPECT_EQ(l.table.size(), 0u);
  EXPECT_EQ(l.find("5"), -1);
  l.table.prefetch(LabelTable::hash("5"));  // harmless on an empty table
  EXPECT_EQ(l.add("5"), 0);
}

// Codes in order of first addition; a merge moves the other's new labels in, in its order, and
// leaves it empty; growth bounded by expect_at_most never reserves past it.
TEST(LabelCodes, CodesInOrderMergedAndBounded) {
  LabelCodes a, b;
  a.expect_at_most(5000);
  for (int i = 0; i < 3000; ++i) EXPECT_EQ(a.add("id" + std::to_string(i % 2500)), i % 2500);
  EXPECT_EQ(a.size(), 2500u);
  EXPECT_LE(a.labels().capacity(), 5000u);
  for (const char* label : {"id7", "new1", "", "new2", "new1"}) b.add(label);
  a.merge(b);
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.find("new1"), -1);
  EXPECT_EQ(a.size(), 2503u);
  EXPECT_EQ(a.find("id7"), 7);
  EXPECT_EQ(a.find("new1"), 2500);
  EXPECT_EQ(a.find(""), 2501);
  EXPECT_EQ(a.find("new2"), 2502);
  EXPECT_EQ(a.labels()[2502], "new2");
  const std::vector<std::string> labels = a.release();
  EXPECT_EQ(labels.size(), 2503u);
  EXPECT_EQ(a.find("id7"), -1);
}

// The hash reads every byte: labels that differ in one byte anywhere, of every length up to 40,
// hash apart (a hash that skipped a byte would give two of them the same value).
TEST(LabelCodes, HashDependsOnEveryByte) {
  for (std::size_t length = 1; length <= 40; ++length) {
    const std::string base(length, 'a');
    const std::uint64_t h = LabelTable::hash(base);
    for (std::size_t at = 0; at < length; ++at) {
      std::string other = base;
      other[at] = 'b';
      EXPECT_NE(LabelTable::hash(other), h) << length << " " << at;
      EXPECT_NE(LabelTable::hash(other) >> 32, h >> 32) << "tag, " << length << " " << at;
    }
  }
}

}  // namespace
}  // namespace lathe
