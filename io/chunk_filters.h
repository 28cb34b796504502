// HDF5's deflate and shuffle filters outside HDF5, for raw chunks that threads encode or decode
// away from HDF5's global lock (H5Dwrite_chunk, H5Dread_chunk). Deflate is a zlib stream (RFC 1950,
// Adler-32 checked) that libdeflate writes and reads; shuffle stores byte i of every element
// together, plane after plane. What the write side produces, HDF5's own filters read back (the
// compressed bytes differ from zlib's, the stream format does not).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

struct libdeflate_compressor;
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
  // `inflated` (when given) is set to the bytes an intact stream holds, out.size() + 1 when it
  // holds more than out.size(), and 0 when the stream is damaged.
  bool inflate_exactly(std::span<const unsigned char> compressed, std::span<unsigned char> out,
                       std::size_t* inflated = nullptr);

 private:
  struct Free {
    void operator()(libdeflate_decompressor* d) const noexcept;
  };
  std::unique_ptr<libdeflate_decompressor, Free> decompressor_;
};

// One libdeflate compressor at a fixed level (1..9, zlib's levels). Not thread-safe: each thread
// owns one.
class Deflater {
 public:
  explicit Deflater(int level);  // throws std::bad_alloc when libdeflate cannot allocate
  ~Deflater();
  Deflater(Deflater&&) noexcept;
  Deflater& operator=(Deflater&&) noexcept;
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  // Compresses `data` into `out` (resized to the stream's length) as one zlib stream.
  void deflate(std::span<const unsigned char> data, std::vector<unsigned char>& out);

 private:
  struct Free {
    void operator()(libdeflate_compressor* c) const noexcept;
  };
  std::unique_ptr<libdeflate_compressor, Free> compressor_;
};

// HDF5's shuffle filter (H5Z_FILTER_SHUFFLE) of elements of `element_size` bytes, the inverse of
// unshuffle below: `data` and `out` have the same size and do not overlap. Fewer than two
// elements, or one-byte elements, are copied unchanged; bytes after the last whole element stay
// at the end.
void shuffle(std::span<const unsigned char> data, std::size_t element_size,
             std::span<unsigned char> out);

// Undoes HDF5's shuffle filter (H5Z_FILTER_SHUFFLE) of elements of `element_size` bytes:
// `shuffled` and `out` have the same size and do not overlap. As HDF5 does, a buffer of fewer than
// two elements, or of one-byte elements, is copied unchanged, and the bytes after the last whole
// element stay at the end.
void unshuffle(std::span<const unsigned char> shuffled, std::size_t element_size,
               std::span<unsigned char> out);

}  // namespace lathe
