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
                               std::span<unsigned char> out) {
  // No actual-size pointer: libdeflate then fails unless the stream fills `out` exactly.
  const libdeflate_result result = libdeflate_zlib_decompress(
      decompressor_.get(), compressed.data(), compressed.size(), out.data(), out.size(), nullptr);
  return result == LIBDEFLATE_SUCCESS;
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

void shuffle(std::span<const unsigned char> data, std::size_t element_size,
             std::span<unsigned char> out) {
  const std::size_t bytes = data.size();
  const std::size_t elements = element_size == 0 ? 0 : bytes / element_size;
  if (element_size <= 1 || elements <= 1) {
    std::memcpy(out.data(), data.data(), bytes);
    return;
  }
  const unsigned char* src = data.data();
  unsigned char* dst = out.data();
  // Plane by plane, so each plane is written in order; the element size known to the compiler for
  // the common sizes.
  auto planes = [&]<std::size_t kSize>() {
    for (std::size_t b = 0; b < kSize; ++b) {
      unsigned char* plane = dst + b * elements;
      for (std::size_t i = 0; i < elements; ++i) plane[i] = src[i * kSize + b];
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
      for (std::size_t b = 0; b < element_size; ++b) {
        unsigned char* plane = dst + b * elements;
        for (std::size_t i = 0; i < elements; ++i) plane[i] = src[i * element_size + b];
      }
  }
  const std::size_t whole = elements * element_size;
  std::memcpy(dst + whole, src + whole, bytes - whole);
}

void unshuffle(std::span<const unsigned char> shuffled, std::size_t element_size,
               std::span<unsigned char> out) {
  const std::size_t bytes = shuffled.size();
  const std::size_t elements = element_size == 0 ? 0 : bytes / element_size;
  if (element_size <= 1 || elements <= 1) {
    std::memcpy(out.data(), shuffled.data(), bytes);
    return;
  }
  const unsigned char* src = shuffled.data();
  unsigned char* dst = out.data();
  // Common sizes with the element size known to the compiler: each element's bytes are gathered
  // from the planes and written together, so the output is written in order.
  auto planes = [&]<std::size_t kSize>() {
    for (std::size_t i = 0; i < elements; ++i) {
      for (std::size_t b = 0; b < kSize; ++b) dst[i * kSize + b] = src[b * elements + i];
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
      for (std::size_t b = 0; b < element_size; ++b) {
        const unsigned char* plane = src + b * elements;
        for (std::size_t i = 0; i < elements; ++i) dst[i * element_size + b] = plane[i];
      }
  }
  const std::size_t whole = elements * element_size;
  std::memcpy(dst + whole, src + whole, bytes - whole);
}

}  // namespace lathe
