#include "io/text_check.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace lathe {

// Whether one of the eight bytes of `word` is 0 (exact: no false answer either way).
bool has_zero_byte(std::uint64_t word) {
  return ((word - 0x0101010101010101ull) & ~word & 0x8080808080808080ull) != 0;
}

std::optional<std::size_t> first_bad_text_byte(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    // Eight bytes of ASCII without a NUL at a time: most labels are plain ASCII.
    if (i + 8 <= n) {
      std::uint64_t word;
      std::memcpy(&word, s + i, 8);
      if ((word & 0x8080808080808080ull) == 0 && !has_zero_byte(word)) {
        i += 8;
        continue;
      }
    }
    const unsigned char c = s[i];
    if (c == 0) return i;
    if (c < 0x80) {
      ++i;
      continue;
    }
    // The length of the sequence and the range of its second byte (which rules out overlong
    // forms, surrogates and code points above U+10FFFF: RFC 3629's table).
    std::size_t length = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + length > n) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (std::size_t k = 2; k < length; ++k) {
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return i;
    }
    i += length;
  }
  return std::nullopt;
}

std::size_t c_string_length(const char* s, std::size_t length) {
  std::size_t i = 0;
  for (; i + 8 <= length; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, s + i, 8);
    if (has_zero_byte(word)) break;
  }
  for (; i < length; ++i) {
    if (s[i] == '\0') return i;
  }
  return length;
}

std::string describe_bad_text_byte(std::string_view text, std::size_t at) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "byte 0x%02X at position %zu",
                static_cast<unsigned>(static_cast<unsigned char>(text[at])), at + 1);
  return buffer;
}

std::string escape_bad_text_bytes(std::string_view text) {
  std::string out;
  while (const auto bad = first_bad_text_byte(text)) {
    char escaped[8];
    std::snprintf(escaped, sizeof escaped, "\\x%02X", static_cast<unsigned>(static_cast<unsigned char>(text[*bad])));
    out.append(text.substr(0, *bad));
    out += escaped;
    text.remove_prefix(*bad + 1);
  }
  out.append(text);
  return out;
}

namespace {

// A path as a shell command takes it: quoted when it holds anything but plain characters.
std::string shell_word(const std::string& text) {
  const bool plain = !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '/' || c == '.' || c == '_' || c == '-' || c == '+' || c == ',' || c == ':';
  });
  if (plain) return text;
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

bool looks_like_csv(const std::filesystem::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (extension == ".csv" || extension == ".tsv" || extension == ".txt") return true;
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(in.gcount()));
  if (head.empty()) return false;
  // A UTF-8 sequence cut by the end of the piece read is not a bad byte.
  const std::optional<std::size_t> bad = first_bad_text_byte(head);
  if (bad && *bad + 4 <= head.size()) return false;
  return head.find_first_of("\n,;\t|") != std::string::npos;
}

std::string csv_file_hint(const std::filesystem::path& path, bool model_file) {
  if (!looks_like_csv(path)) return {};
  if (model_file) return "; it looks like a CSV file, not a model written by `lathe train`";
  std::filesystem::path target = path;
  target.replace_extension(".h5");
  if (target == path) target.replace_extension(".imported.h5");
  // The delimiter of a first line without commas but with tabs, semicolons or bars: the import
  // command then names it.
  std::string delimiter;
  std::ifstream in(path, std::ios::binary);
  std::string first_line;
  if (in && std::getline(in, first_line) && first_line.find(',') == std::string::npos) {
    if (first_line.find('\t') != std::string::npos) {
      delimiter = " --delimiter tab";
    } else if (first_line.find(';') != std::string::npos) {
      delimiter = " --delimiter ';'";
    } else if (first_line.find('|') != std::string::npos) {
      delimiter = " --delimiter '|'";
    }
  }
  return "; it looks like a CSV file; convert it with `lathe import " + shell_word(path.string()) + " " +
         shell_word(target.string()) + delimiter + "`";
}

}  // namespace lathe
