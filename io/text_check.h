// Whether text from a user's file can be kept as Lathe keeps text (UTF-8, as HDF5 string
// attributes, JSON and HTML carry it): the offset of the first byte that is not part of valid
// UTF-8 (overlong forms, surrogates and code points above U+10FFFF are invalid), or of a NUL byte,
// which would cut the text short in a C string.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace lathe {

std::optional<std::size_t> first_bad_text_byte(std::string_view text);

// "byte 0xE9 at position 4", for messages about first_bad_text_byte's answer.
std::string describe_bad_text_byte(std::string_view text, std::size_t at);

}  // namespace lathe
