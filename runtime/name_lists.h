// Lists of column names in options (`--drop id,when`, `--cross a*b,c*d`, `--impute
// mean,age=median`): separated by commas, each name trimmed of spaces and tabs. A name that holds a
// comma (a CSV header "price, usd") is written with a backslash before the comma (`--drop 'price\,
// usd'`), and a backslash before a backslash stands for one; any other backslash is itself. In
// `--cross`, a backslash also escapes a '*' or '#' in a name (split_cross).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lathe {

// The items of `text` separated by `sep` where no backslash escapes it, each unescaped and trimmed;
// empty items are left out.
inline std::vector<std::string> split_name_list(std::string_view text, char sep = ',') {
  std::vector<std::string> items;
  std::string item;
  const auto finish = [&] {
    const auto first = item.find_first_not_of(" \t");
    if (first != std::string::npos)
      items.push_back(item.substr(first, item.find_last_not_of(" \t") - first + 1));
    item.clear();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\' && i + 1 < text.size() && (text[i + 1] == sep || text[i + 1] == '\\')) {
      item += text[++i];
    } else if (c == sep) {
      finish();
    } else {
      item += c;
    }
  }
  finish();
  return items;
}

// `name` as split_name_list reads it back from a list: a backslash before each comma and backslash.
inline std::string listed_name(std::string_view name) {
  std::string out;
  for (const char c : name) {
    if (c == ',' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// Whether `name` reads back as itself from a list beside other names, written as it is: no comma,
// and no backslash that split_name_list takes for an escape (one before another backslash, or one
// at the end, before the comma that follows it in a list). Messages show other names as
// listed_name writes them: a column named tail\ (a trailing backslash) offered as 'tail\' was
// typed 'tail\,w' and read as the one name "tail,w".
inline bool lists_as_is(std::string_view name) {
  return name.find(',') == std::string_view::npos && name.find("\\\\") == std::string_view::npos &&
         (name.empty() || name.back() != '\\');
}

// One side of a cross as `--cross` names it (io: split_cross).
struct CrossSide {
  std::string name;
  // Written with a backslash before the '#' of a trailing "#bins" (`x\#bins`): the column of that
  // name, never the bins of a column (`x#bins` names the bins of column x where no column is named
  // "x#bins"; `x\#bins#bins` the bins of the column "x#bins").
  bool column = false;
};

// An item of `--cross` (as split_name_list gives it: `a*b`, `age#bins*city`) split at each '*' that
// no backslash escapes: a name holding a '*' is written with a backslash before it (`a\*b*c` crosses
// the column "a*b" with c), a backslash before a '#' keeps a name ending in "#bins" a column's, and
// a backslash before a backslash stands for one; any other backslash is itself. Sides are not
// trimmed (the item is).
inline std::vector<CrossSide> split_cross(std::string_view item) {
  std::vector<CrossSide> sides(1);
  // Per side, where its last escaped '#' landed in its name: only the '#' of a trailing "#bins"
  // makes the side a column's name. Any escaped '#' did, so the bins of a column named "x#bins",
  // written `x\#bins#bins`, were read as a column named "x#bins#bins".
  std::vector<std::size_t> escaped_hash(1, std::string::npos);
  for (std::size_t i = 0; i < item.size(); ++i) {
    const char c = item[i];
    if (c == '\\' && i + 1 < item.size() && (item[i + 1] == '*' || item[i + 1] == '#' || item[i + 1] == '\\')) {
      if (item[i + 1] == '#') escaped_hash.back() = sides.back().name.size();
      sides.back().name += item[++i];
    } else if (c == '*') {
      sides.emplace_back();
      escaped_hash.push_back(std::string::npos);
    } else {
      sides.back().name += c;
    }
  }
  constexpr std::string_view kBins = "#bins";
  for (std::size_t s = 0; s < sides.size(); ++s) {
    const std::string& name = sides[s].name;
    sides[s].column = name.ends_with(kBins) && escaped_hash[s] == name.size() - kBins.size();
  }
  return sides;
}

// One side of a cross as split_cross reads it back: a backslash before each '*', before each '#'
// of a side named as a column (`tag\#bins`), and before a backslash split_cross would take for an
// escape (one before '*', '#' or '\\', or at the end).
inline std::string cross_side_spelling(std::string_view name, bool column) {
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool escaped_next =
        i + 1 == name.size() || name[i + 1] == '*' || name[i + 1] == '#' || name[i + 1] == '\\';
    if (c == '*' || (c == '#' && column) || (c == '\\' && escaped_next)) out += '\\';
    out += c;
  }
  return out;
}

// A cross of columns a and b as `--cross` takes it back (split_name_list, then split_cross), for
// messages: "a\*b*c" for the column "a*b" crossed with c (as a list shows names: listed_name's
// escapes only where the list would misread it).
inline std::string listed_cross(const CrossSide& a, const CrossSide& b) {
  const std::string text =
      cross_side_spelling(a.name, a.column) + "*" + cross_side_spelling(b.name, b.column);
  return lists_as_is(text) ? text : listed_name(text);
}

// A column's name as a side of a `--cross` item takes it ("size\*color" for the column
// "size*color"): what messages about a cross offer and list.
inline std::string crossed_name(std::string_view name) {
  const std::string text = cross_side_spelling(name, false);
  return lists_as_is(text) ? text : listed_name(text);
}

}  // namespace lathe
