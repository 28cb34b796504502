#include "cli/note_printer.h"

#include <cctype>
#include <cstddef>
#include <unordered_map>

#include "runtime/message_names.h"

namespace lathe::cli {

namespace {

// The notes of one kind printed in full before the rest are summed up in one line.
constexpr std::size_t kNotesShownPerKind = 2;
// Names that line lists.
constexpr std::size_t kNamesListed = 20;

bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

// The first quoted name of a note ('f12' of "column 'f12': ..."), or "".
std::string first_quoted(const std::string& note) {
  const std::size_t open = note.find('\'');
  if (open == std::string::npos) return "";
  const std::size_t close = note.find('\'', open + 1);
  return close == std::string::npos ? "" : note.substr(open + 1, close - open - 1);
}

}  // namespace

std::string note_shape(const std::string& note) {
  std::string shape;
  shape.reserve(note.size());
  for (std::size_t i = 0; i < note.size();) {
    const char c = note[i];
    if (c == '\'') {  // a quoted name: a column's, a label's, a file's
      const std::size_t close = note.find('\'', i + 1);
      if (close != std::string::npos) {
        shape += "''";
        i = close + 1;
        continue;
      }
    }
    if (is_digit(c)) {  // a number: digits, a decimal point, an exponent
      while (i < note.size() && (is_digit(note[i]) || note[i] == '.')) ++i;
      if (i + 1 < note.size() && (note[i] == 'e' || note[i] == 'E') &&
          (is_digit(note[i + 1]) || ((note[i + 1] == '+' || note[i + 1] == '-') && i + 2 < note.size() && is_digit(note[i + 2])))) {
        i += 2;
        while (i < note.size() && is_digit(note[i])) ++i;
      }
      shape += '#';
      continue;
    }
    shape += c;
    ++i;
  }
  return shape;
}

void print_notes(std::ostream& out, const std::string& prefix, const std::vector<std::string>& notes) {
  std::vector<std::vector<const std::string*>> kinds;
  std::unordered_map<std::string, std::size_t> kind_of_shape;
  for (const std::string& note : notes) {
    const auto [at, added] = kind_of_shape.emplace(note_shape(note), kinds.size());
    if (added) kinds.emplace_back();
    kinds[at->second].push_back(&note);
  }
  for (const auto& kind : kinds) {
    const std::size_t shown = kind.size() <= kNotesShownPerKind + 1 ? kind.size() : kNotesShownPerKind;
    for (std::size_t i = 0; i < shown; ++i) out << prefix << *kind[i] << "\n";
    if (shown == kind.size()) continue;
    std::vector<std::string> names;
    for (std::size_t i = shown; i < kind.size(); ++i) {
      const std::string name = first_quoted(*kind[i]);
      if (!name.empty()) names.push_back(name);
    }
    out << prefix << "the same note for " << kind.size() - shown << " more";
    if (names.size() == kind.size() - shown) out << ": " << name_list(names, kNamesListed);
    out << "\n";
  }
}

}  // namespace lathe::cli
