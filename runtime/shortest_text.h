// A float as the shortest decimal text that reads back as the same float: a clip bound of -0.2f is
// "-0.2", not "-0.200000003"; a label of -0.9999999 is itself, not "-1" (6 significant digits).
#pragma once

#include <charconv>
#include <string>

namespace lathe {

inline std::string shortest_text(float v) {
  char text[32];
  return std::string(text, std::to_chars(text, text + sizeof text, v).ptr);
}

// The double nearest shortest_text(v): JSON writes a float's rate as 0.00937045, not as the
// double it widens to (0.009370451793074608); it reads back as the same float.
inline double shortest_double(float v) {
  const std::string text = shortest_text(v);
  double d = 0.0;
  std::from_chars(text.data(), text.data() + text.size(), d);
  return d;
}

}  // namespace lathe
