// Printing a command's notes to stderr without burying the rest: a table of 500 columns far from
// zero gave `lathe train` 200 notes of one kind, one line per column. Notes that say the same thing
// of different columns (the same text once quoted names and numbers are blanked) are printed two
// in full, then as one line that names the rest.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace lathe::cli {

// A note with its quoted names ('...') and numbers blanked: the notes of one kind share it.
std::string note_shape(const std::string& note);

// Writes `notes` to `out`, each line starting with `prefix` ("train: note: "), grouped as above, in
// the order each kind first appears.
void print_notes(std::ostream& out, const std::string& prefix, const std::vector<std::string>& notes);

}  // namespace lathe::cli
