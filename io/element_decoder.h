// Turns dataset elements, as their bytes lie in the file (or in a decompressed chunk), into float32
// bit for bit as HDF5's own conversion in TableReader's hyperslab read does, without calling HDF5,
// so that threads can convert outside HDF5's global lock.
//
// HDF5 converts with different code per type and byte order, and the results differ at the edges.
// Integers of either byte order round to nearest even, as the C cast does. A float64 in the
// machine's byte order goes through the C cast, except that a value beyond float32's range becomes
// infinity; a float64 in the other byte order goes through HDF5's bitwise "soft" conversion: ties
// round away from zero, values between FLT_MAX and 2^128 become FLT_MAX, NaN becomes the all-ones
// NaN. Each is reproduced here; types of one or two bytes (int8/16, uint8/16, float16, bitfields,
// enums) are tabulated once by HDF5 itself over every bit pattern. Every decoder is checked at
// creation against HDF5 on a set of probe values (ties, extremes, denormals, NaN payloads); a type
// without a decoder, or one whose probes disagree, keeps the HDF5 path.
#pragma once

#include <hdf5.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace lathe {

// Converts `count` elements of a dataset's file type, packed at `bytes`, to float32 exactly as the
// hyperslab read would (it calls HDF5, so it runs under HDF5's lock). The decoder's reference.
using ReferenceConversion =
    std::function<void(const unsigned char* bytes, std::size_t count, float* out)>;

class ElementDecoder {
 public:
  // The decoder for elements of `file_type`, whose hyperslab read converts as `reference` does;
  // `numeric` says that the reference is HDF5's plain conversion to native float (integers and
  // floats), which the arithmetic decoders of 4- and 8-byte types reproduce. Returns nothing where
  // no exact decoder exists (other types, a padded or odd-precision type, probes that disagree).
  static std::optional<ElementDecoder> create(hid_t file_type, bool numeric,
                                              const ReferenceConversion& reference);

  // Bytes per element in the file.
  std::size_t element_size() const { return size_; }
  // Whether the file's bytes already are native float32 (a copy is the whole conversion).
  bool is_native_float32() const { return kind_ == Kind::float32 && !swapped_; }

  // Decodes `count` elements whose first bytes are `stride` bytes apart, starting at `bytes`, into
  // out[0, count). Thread-safe (const, no shared state but the read-only table).
  void decode(const unsigned char* bytes, std::size_t count, std::size_t stride, float* out) const;

 private:
  enum class Kind {
    table,         // one or two bytes: HDF5's result for every bit pattern
    float32,       // IEEE binary32: a copy, byte-swapped when foreign
    float64_cast,  // native IEEE binary64: HDF5's hard conversion (C cast, overflow to infinity)
    float64_soft,  // foreign IEEE binary64: HDF5's soft conversion
    integer        // 4- or 8-byte two's complement or unsigned: the C cast, after a byte swap
  };
  ElementDecoder() = default;

  Kind kind_ = Kind::table;
  std::size_t size_ = 0;
  bool swapped_ = false;                             // file byte order differs from the machine's
  bool is_signed_ = false;                           // integer
  std::shared_ptr<const std::vector<float>> table_;  // Kind::table: 256 or 65536 entries
};

}  // namespace lathe
