// Reads the text pickles (protocol 0) that PyTables writes for attributes holding Python lists,
// tuples and dicts: pandas keeps a table's column names that way (`values_block_0_kind` is
// "(lp0\nVa\np1\na."). Only the opcodes that such values use are understood (marks, lists, tuples,
// dicts, ints, floats as text, None, str/unicode, the memo); anything else (a class, a binary
// opcode) is refused, so a value is either read exactly or not at all.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lathe {

struct PickleValue {
  enum class Kind { none, integer, real, text, list, tuple, dict };
  Kind kind = Kind::none;
  std::int64_t integer = 0;  // integer (True/False read as 1/0)
  double real = 0.0;         // real
  std::string text;          // text, as UTF-8
  // list and tuple: the items; dict: key, value, key, value, ...
  std::vector<PickleValue> items;

  // The value written as a column name: text as is, an integer in decimal. Throws Error otherwise.
  std::string as_name() const;
};

// Parses one protocol-0 pickle. Throws Error saying what is not understood.
PickleValue parse_text_pickle(std::string_view bytes);

// Whether `bytes` looks like a protocol-0 pickle of None ("N.").
inline bool is_pickled_none(std::string_view bytes) { return bytes == "N."; }

}  // namespace lathe
