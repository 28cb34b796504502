#include "runtime/way_chooser.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <functional>

namespace lathe {
namespace {

// Runs `pieces` pieces of `rows` rows through `chooser`, each taking seconds_of(way) per row;
// returns how many ran each way.
std::array<std::int64_t, WayChooser::kMaxWays> run(WayChooser& chooser, std::int64_t pieces,
                                                   const std::function<double(int)>& seconds_of,
                                                   std::int64_t rows = 256) {
  std::array<std::int64_t, WayChooser::kMaxWays> ran{};
  for (std::int64_t i = 0; i < pieces; ++i) {
    const int way = chooser.way();
    ++ran[static_cast<std::size_t>(way)];
    chooser.record(seconds_of(way) * static_cast<double>(rows), rows);
  }
  return ran;
}

TEST(WayChooser, RunsTheFastestWayOnceTimed) {
  WayChooser chooser({true, true, true});
  // Way 2 (the team, say) twice as fast as way 0, way 1 in between.
  const auto ran = run(chooser, 2000, [](int way) { return way == 2 ? 1e-6 : way == 1 ? 1.5e-6 : 2e-6; });
  EXPECT_GT(chooser.rounds(), 0);
  EXPECT_GT(ran[2], 1900);
  EXPECT_EQ(chooser.way(), 2);
}

TEST(WayChooser, LeavesAWayThatTurnsSlowWithinAFewPieces) {
  WayChooser chooser({true, false, true});
  const auto team_fast = [](int way) { return way == 2 ? 1e-6 : 2e-6; };
  run(chooser, 500, team_fast);
  ASSERT_EQ(chooser.way(), 2);
  // Another process takes a core: the team's pieces take 20 times as long.
  const auto team_slow = [](int way) { return way == 2 ? 2e-5 : 2e-6; };
  const auto ran = run(chooser, 100, team_slow);
  EXPECT_EQ(chooser.way(), 0);
  // The chosen way is timed again after kSlowPieces slow pieces, and the team is not timed past
  // the first timed piece of a round (slower than way 0's by more than kSlowdown).
  EXPECT_LE(ran[2], WayChooser::kSlowPieces + 2 + 2);
}

TEST(WayChooser, AStandingChoiceIsTimedAgainAfterSpansThatDoubleUpToTheLongest) {
  WayChooser chooser({true, true, false});
  const auto planned_fast = [](int way) { return way == 1 ? 1e-6 : 3e-6; };
  std::int64_t last_span = 0;
  for (int round = 0; round < 12; ++round) {
    const std::int64_t rounds = chooser.rounds();
    while (chooser.rounds() == rounds || chooser.timing()) run(chooser, 1, planned_fast);
    EXPECT_EQ(chooser.way(), 1);
    if (round > 0) EXPECT_EQ(chooser.span(), std::min(2 * last_span, WayChooser::kLongestSpan));
    last_span = chooser.span();
  }
  EXPECT_EQ(last_span, WayChooser::kLongestSpan);
  // Way 0 is still timed every span: when it becomes the faster one (the chosen way no slower than
  // it was), the choice follows within the longest span.
  const auto alone_faster = [](int way) { return way == 1 ? 1e-6 : 0.5e-6; };
  run(chooser, WayChooser::kLongestSpan + 20, alone_faster);
  EXPECT_EQ(chooser.way(), 0);
  EXPECT_LT(chooser.span(), WayChooser::kLongestSpan);  // a new choice starts its spans over
}

// On a busy machine a team piece took 30 ms against 0.5 ms alone: a round that times the team
// costs tens of alone pieces, so the span after it is long enough to keep that a small share.
TEST(WayChooser, TimingAVerySlowWayCostsASmallShareOfTheTime) {
  WayChooser chooser({true, false, true});
  const auto team_hopeless = [](int way) { return way == 2 ? 60 * 2e-6 : 2e-6; };
  double spent = 0.0, on_team = 0.0;
  for (int i = 0; i < 20000; ++i) {
    const int way = chooser.way();
    const double seconds = team_hopeless(way) * 256;
    spent += seconds;
    if (way == 2) on_team += seconds;
    chooser.record(seconds, 256);
  }
  EXPECT_EQ(chooser.way(), 0);
  // The first round has no span before it to share the cost with; the rest keep to kTimingShare.
  EXPECT_LT(on_team / spent, 3 * WayChooser::kTimingShare);
  // Its untimed first piece alone shows the team hopeless: one piece a round.
  EXPECT_LE(on_team / (60 * 2e-6 * 256), chooser.rounds() + 1);
}

// Ways within kTie of each other: the standing choice stays and its spans keep doubling.
TEST(WayChooser, ATieKeepsTheStandingChoice) {
  WayChooser chooser({true, true, false});
  int flips = 0, last = -1;
  for (int i = 0; i < 20000; ++i) {
    const int way = chooser.way();
    if (!chooser.timing() && way != last) ++flips, last = way;
    // The two ways take turns being 1% faster.
    const double per_row = (way == (i / 50) % 2) ? 1.0e-6 : 1.01e-6;
    chooser.record(per_row * 256, 256);
  }
  EXPECT_LE(flips, 1);
  EXPECT_EQ(chooser.span(), WayChooser::kLongestSpan);
}

TEST(WayChooser, ComparesTimePerRowAcrossPiecesOfUnequalSize) {
  WayChooser chooser({true, false, true});
  // Way 2 runs only small pieces here and way 0 large ones: per row, way 2 is faster.
  for (int i = 0; i < 200; ++i) {
    const int way = chooser.way();
    const std::int64_t rows = way == 2 ? 64 : 1024;
    chooser.record((way == 2 ? 1e-6 : 2e-6) * static_cast<double>(rows), rows);
  }
  EXPECT_EQ(chooser.way(), 2);
}

TEST(WayChooser, OnlyOpenWaysAreRun) {
  WayChooser chooser({true, false, true});
  const auto ran = run(chooser, 3000, [](int way) { return way == 1 ? 1e-9 : 1e-6; });
  EXPECT_EQ(ran[1], 0);
}

}  // namespace
}  // namespace lathe
