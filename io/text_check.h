// Whether text from a user's file can be kept as Lathe keeps text (UTF-8, as HDF5 string
// attributes, JSON and HTML carry it): the offset of the first byte that is not part of valid
// UTF-8 (overlong forms, surrogates and code points above U+10FFFF are invalid), or of a NUL byte,
// which would cut the text short in a C string.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace lathe {

std::optional<std::size_t> first_bad_text_byte(std::string_view text);

// The length of the C string in the first `length` bytes at s: the place of its first NUL, else
// `length`. Eight bytes at a time (a call to memchr per string of a few bytes cost more than the
// test): how HDF5 reads a variable-length string from its heap object.
std::size_t c_string_length(const char* s, std::size_t length);

// "byte 0xE9 at position 4", for messages about first_bad_text_byte's answer.
std::string describe_bad_text_byte(std::string_view text, std::size_t at);

// `text` with each byte first_bad_text_byte would stop at written \xNN ("M\xFCller"), so that a
// message quoting text in another encoding is itself UTF-8: a raw Latin-1 byte on stderr made a
// script reading it as text (Python's subprocess with text=True) fail with UnicodeDecodeError.
std::string escape_bad_text_bytes(std::string_view text);

// Whether a file that is not HDF5 looks like a CSV file: its name ends in .csv, .tsv or .txt, or
// it starts with UTF-8 text holding a line end or a field delimiter (, ; tab |).
bool looks_like_csv(const std::filesystem::path& path);

// What to add to "PATH: not an HDF5 file" when PATH looks like a CSV file (else ""): for a data
// file "; it looks like a CSV file; convert it with `lathe import PATH STEM.h5`", for a model file
// "; it looks like a CSV file, not a model written by `lathe train`".
std::string csv_file_hint(const std::filesystem::path& path, bool model_file = false);

}  // namespace lathe
