// The read side of HDF5's deflate and shuffle filters, for raw chunks (H5Dread_chunk) that threads
// decode outside HDF5's global lock. Byte for byte what HDF5's own filters produce: deflate is a
// zlib stream (RFC 1950, Adler-32 checked) that libdeflate inflates; shuffle stores byte i of every
// element together, plane after plane.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

struct libdeflate_decompressor;

namespace lathe {

// One libdeflate decompressor. Not thread-safe: each thread owns one.
class Inflater {
 public:
  Inflater();  // throws std::bad_alloc when libdeflate cannot allocate
  ~Inflater();
  Inflater(Inflater&&) noexcept;
  Inflater& operator=(Inflater&&) noexcept;
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  // Inflates the zlib stream `compressed` into `out`. True only when the stream is intact and
  // inflates to exactly out.size() bytes; false otherwise (a damaged chunk, or one HDF5 would
  // handle differently: the caller then reads the dataset through HDF5, which reports it).
  bool inflate_exactly(std::span<const unsigned char> compressed, std::span<unsigned char> out);

 private:
  struct Free {
    void operator()(libdeflate_decompressor* d) const noexcept;
  };
  std::unique_ptr<libdeflate_decompressor, Free> decompressor_;
};

// Undoes HDF5's shuffle filter (H5Z_FILTER_SHUFFLE) of elements of `element_size` bytes:
// `shuffled` and `out` have the same size and do not overlap. As HDF5 does, a buffer of fewer than
// two elements, or of one-byte elements, is copied unchanged, and the bytes after the last whole
// element stay at the end.
void unshuffle(std::span<const unsigned char> shuffled, std::size_t element_size,
               std::span<unsigned char> out);

}  // namespace lathe
