// The value of a native integer of 1, 2, 4 or 8 bytes (an enum's integer, read by HDF5 into the
// machine's byte order) as float32, rounded as the C cast rounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace lathe {

inline float native_integer_as_float(const unsigned char* p, std::size_t size, bool is_signed) {
  switch (size) {
    case 1: {
      std::int8_t v;
      std::memcpy(&v, p, 1);
      return is_signed ? v : static_cast<std::uint8_t>(v);
    }
    case 2: {
      std::int16_t v;
      std::memcpy(&v, p, 2);
      return is_signed ? v : static_cast<std::uint16_t>(v);
    }
    case 4: {
      std::int32_t v;
      std::memcpy(&v, p, 4);
      return is_signed ? static_cast<float>(v) : static_cast<float>(static_cast<std::uint32_t>(v));
    }
    default: {
      std::int64_t v;
      std::memcpy(&v, p, 8);
      return is_signed ? static_cast<float>(v) : static_cast<float>(static_cast<std::uint64_t>(v));
    }
  }
}

}  // namespace lathe
