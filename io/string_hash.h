// A hash of text that looks up std::string keys by std::string_view without making a string
// (heterogeneous lookup), for tables of labels filled from parsed fields.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace lathe {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace lathe
