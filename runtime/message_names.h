// Names in messages: "did you mean" (the known name closest to a mistyped one: unknown commands and
// options in cli/main.cpp, `lathe train --config` keys in cli/train_command.cpp, columns in
// io/column_values.cpp, io/scorer.cpp and runtime/preparation.cpp), and the list of names an error offers (name_list).
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "runtime/name_lists.h"

namespace lathe {

// The edit distance of two names (insertions, deletions, substitutions).
inline std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The candidate closest to `typed` when it is close enough to be a typo ("" when none is).
inline std::string closest_name(const std::string& typed, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(2, typed.size() / 3) + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(typed, c);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

// Where the name a message offers is typed: an option of one name (--label, --weight, --id), or no
// option (a column the data lacks), takes it as it is; a list (--drop, --cross, COL=KIND items,
// import's --categorical) as runtime/name_lists.h spells it.
// A cross's side (`--cross`) as crossed_name spells it.
enum class TypedIn { one_name, list, cross };

// " (did you mean 'NAME'?)" for the candidate closest to `typed`, or "" when none is close enough:
// closest_name's, and never a whole replacement (a one-letter name has no near miss) or one that
// changes more than half of the longer name. For a list,
// a name that a list does not take as it is (a comma in it) is also given as the list takes it;
// for one name that hint would be wrong: `--weight 'price\, usd'` was told to write 'price\, usd'.
inline std::string did_you_mean(const std::string& typed, const std::vector<std::string>& candidates,
                                TypedIn typed_in = TypedIn::one_name) {
  const std::string near = closest_name(typed, candidates);
  // Nor one that changes more than half of the longer name: 'cat' is not a typo of 'a'.
  const std::size_t distance = near.empty() ? 0 : edit_distance(typed, near);
  if (near.empty() || distance >= typed.size() ||
      2 * distance > std::max(typed.size(), near.size()))
    return "";
  if (typed_in == TypedIn::list && !lists_as_is(near)) {
    return " (did you mean '" + near + "'? in a list of columns, write it as '" +
           listed_name(near) + "')";
  }
  if (typed_in == TypedIn::cross && crossed_name(near) != near) {
    return " (did you mean '" + near + "'? in --cross, write it as '" + crossed_name(near) + "')";
  }
  return " (did you mean '" + near + "'?)";
}

// Names for a message, comma-separated: at most `shown` of them, then how many more there are (a
// table of 2000 columns made an error of 2000 names). A name holding a comma is listed as an
// option's list takes it (listed_name: "price\, usd"), so that the list reads unambiguously; so is
// a name whose backslashes a list would read as escapes (lists_as_is: "tail\\").
// In a message about a cross (TypedIn::cross), names are listed as --cross takes them
// (crossed_name).
inline std::string name_list(const std::vector<std::string>& names, std::size_t shown = 30,
                             TypedIn spelled_for = TypedIn::list) {
  std::string s;
  const std::size_t n = std::min(names.size(), shown);
  for (std::size_t i = 0; i < n; ++i) {
    if (i) s += ", ";
    if (spelled_for == TypedIn::cross) {
      s += crossed_name(names[i]);
    } else {
      s += lists_as_is(names[i]) ? names[i] : listed_name(names[i]);
    }
  }
  if (names.size() > n) s += ", ... (" + std::to_string(names.size() - n) + " more)";
  return s;
}

// A count and its noun for a message: "1 row", "0 rows", "2043 rows" (a one-row file is no "1 rows").
inline std::string counted(long long n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

}  // namespace lathe
