// Lists of column names in options (`--drop id,when`, `--cross a*b,c*d`, `--impute
// mean,age=median`): separated by commas, each name trimmed of spaces and tabs. A name that holds a
// comma (a CSV header "price, usd") is written with a backslash before the comma (`--drop 'price\,
// usd'`), and a backslash before a backslash stands for one; any other backslash is itself.
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

}  // namespace lathe
