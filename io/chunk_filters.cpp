#include "io/chunk_filters.h"

#include <libdeflate.h>

#include <cstring>
#include <new>

namespace lathe {

void Inflater::Free::operator()(libdeflate_decompressor* d) const noexcept {
  libdeflate_free_decompressor(d);
}

Inflater::Inflater() : decompressor_(libdeflate_alloc_decompressor()) {
  if (!decompressor_) throw std::bad_alloc();
}

Inflater::~Inflater() = default;
Inflater::Inflater(Inflater&&) noexcept = default;
Inflater& Inflater::operator=(Inflater&&) noexcept = default;

bool Inflater::inflate_exactly(std::span<const unsigned char> compressed,
                               std::span<unsigned char> out, std::size_t* inflated) {
  // With an actual-size pointer libdeflate also succeeds on a stream shorter than `out`.
  std::size_t actual = 0;
  const libdeflate_result result = libdeflate_zlib_decompress(
      decompressor_.get(), compressed.data(), compressed.size(), out.data(), out.size(), &actual);
  if (inflated) {
    *inflated = result == LIBDEFLATE_SUCCESS               ? actual
                : result == LIBDEFLATE_INSUFFICIENT_SPACE ? out.size() + 1
                                                          : 0;
  }
  return result == LIBDEFLATE_SUCCESS && actual == out.size();
}

void Deflater::Free::operator()(libdeflate_compressor* c) const noexcept {
  libdeflate_free_compressor(c);
}

Deflater::Deflater(int level) : compressor_(libdeflate_alloc_compressor(level)) {
  if (!compressor_) throw std::bad_alloc();
}

Deflater::~Deflater() = default;
Deflater::Deflater(Deflater&&) noexcept = default;
Deflater& Deflater::operator=(Deflater&&) noexcept = default;

void Deflater::deflate(std::span<const unsigned char> data, std::vector<unsigned char>& out) {
  out.resize(libdeflate_zlib_compress_bound(compressor_.get(), data.size()));
  // Never 0: the bound leaves room for any input, stored blocks included.
  const std::size_t n = libdeflate_zlib_compress(compressor_.get(), data.data(), data.size(),
                                                 out.data(), out.size());
  out.resize(n);
}

namespace {

// HDF5's shuffle (kShuffle) or its inverse. Fewer than two elements, or one-byte elements, are
// copied unchanged, and the bytes after the last whole element stay at the end, as HDF5 does.
template <bool kShuffle>
void rearrange_planes(std::span<const unsigned char> in, std::size_t element_size, std::span<unsigned char> out) {
  const std::size_t bytes = in.size();
  const std::size_t elements = element_size == 0 ? 0 : bytes / element_size;
  if (element_size <= 1 || elements <= 1) {
    std::memcpy(out.data(), in.data(), bytes);
    return;
  }
  const unsigned char* src = in.data();
  unsigned char* dst = out.data();
  // The element size known to the compiler for the common sizes (kSize 0: any other). Shuffling
  // writes plane after plane, unshuffling element after element: each writes its output in order.
  auto planes = [&]<std::size_t kSize>() {
    const std::size_t size = kSize != 0 ? kSize : element_size;
    if constexpr (kShuffle) {
      for (std::size_t b = 0; b < size; ++b) {
        unsigned char* plane = dst + b * elements;
        for (std::size_t i = 0; i < elements; ++i) plane[i] = src[i * size + b];
      }
    } else {
      for (std::size_t i = 0; i < elements; ++i) {
        for (std::size_t b = 0; b < size; ++b) dst[i * size + b] = src[b * elements + i];
      }
    }
  };
  switch (element_size) {
    case 2:
      planes.template operator()<2>();
      break;
    case 4:
      planes.template operator()<4>();
      break;
    case 8:
      planes.template operator()<8>();
      break;
    default:
      planes.template operator()<0>();
  }
  const std::size_t whole = elements * element_size;
  std::memcpy(dst + whole, src + whole, bytes - whole);
}

}  // namespace

void shuffle(std::span<const unsigned char> data, std::size_t element_size, std::span<unsigned char> out) {
  rearrange_planes<true>(data, element_size, out);
}

void unshuffle(std::span<const unsigned char> shuffled, std::size_t element_size,
               std::span<unsigned char> out) {
  rearrange_planes<false>(shuffled, element_size, out);
}

}  // namespace lathe
