#include "io/element_decoder.h"

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>

namespace lathe {

namespace {

constexpr bool kMachineIsBigEndian = std::endian::native == std::endian::big;

inline std::uint32_t load32(const unsigned char* p, bool swapped) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return swapped ? __builtin_bswap32(v) : v;
}

inline std::uint64_t load64(const unsigned char* p, bool swapped) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return swapped ? __builtin_bswap64(v) : v;
}

// HDF5's hard conversion of a native double to float (H5T_CONV_Ff): the C cast, except that a
// value beyond float's range becomes infinity rather than rounding down to FLT_MAX.
inline float float64_cast(double d) {
  if (d > static_cast<double>(FLT_MAX)) return std::numeric_limits<float>::infinity();
  if (d < -static_cast<double>(FLT_MAX)) return -std::numeric_limits<float>::infinity();
  return static_cast<float>(d);
}

// HDF5's soft conversion (H5T__conv_f_f) of IEEE binary64 bits to binary32 bits with no exception
// callback, transcribed for these two formats: the mantissa is rounded on its first cut-off bit
// (ties away from zero), except where that would carry a value of the largest finite exponent
// into infinity, and except that a result which becomes denormal rounds without carrying into the
// exponent. NaN becomes the sign and all ones; a source denormal is far below float's range.
std::uint32_t float64_soft_bits(std::uint64_t bits) {
  constexpr std::int64_t kMantissa = 23;  // destination mantissa bits
  constexpr std::int64_t kExpoMax = 255;  // destination exponent field all ones
  const std::uint32_t sign = static_cast<std::uint32_t>(bits >> 63) << 31;
  const std::int64_t biased = static_cast<std::int64_t>((bits >> 52) & 0x7FF);
  std::uint64_t m = bits & ((std::uint64_t{1} << 52) - 1);
  if (biased == 0 && m == 0) return sign;
  if (biased == 0x7FF) return m == 0 ? sign | 0x7F800000u : sign | 0x7FFFFFFFu;

  bool denormalized = biased == 0;
  std::int64_t msize = 52;  // source mantissa bits below the leading one
  std::int64_t expo = 0;
  if (biased == 0) {
    const int msb = 63 - __builtin_clzll(m);
    if (msb > 0) {
      msize = msb;
    } else {
      msize = 1;
      m &= ~std::uint64_t{1};
    }
    expo = -((1023 - 1) + (52 - msb));
  } else {
    expo = biased - 1023;
  }
  expo += 127;
  std::int64_t mrsh = 0;  // right shift of the mantissa into a denormal result
  if (expo < -kMantissa) return sign;
  if (expo <= 0) {
    mrsh += 1 - expo;
    expo = 0;
    denormalized = true;
  } else if (expo >= kExpoMax) {
    return sign | 0x7F800000u;
  }

  std::uint32_t implied = 1;
  bool carry = false;
  if (mrsh <= kMantissa && mrsh + msize > kMantissa) {
    const std::int64_t cut = mrsh + msize - kMantissa;  // bits cut off below the kept mantissa
    const bool first_cut_bit = ((m >> (cut - 1)) & 1) != 0;
    // HDF5 increments the field [cut - 1, msize) of the source mantissa; a carry out of it is
    // reported for a normal result and lost for a denormal one.
    const std::int64_t field_bits = 1 + msize - cut;
    const std::uint64_t field_mask = ((std::uint64_t{1} << field_bits) - 1) << (cut - 1);
    auto increment = [&] {
      const std::uint64_t field = ((m & field_mask) >> (cut - 1)) + 1;
      m = (m & ~field_mask) | ((field << (cut - 1)) & field_mask);
      return (field >> field_bits) != 0;
    };
    if (first_cut_bit && !denormalized) {
      const std::uint64_t kept_mask = ((std::uint64_t{1} << (msize - cut)) - 1) << cut;
      if ((m & kept_mask) != kept_mask || expo < kExpoMax - 1) {
        carry = increment();
        if (carry) implied = 2;
      }
    } else if (first_cut_bit) {
      increment();
    }
  }

  std::uint32_t mantissa = 0;
  if (mrsh > kMantissa + 1) {
    mantissa = 0;
  } else if (mrsh == kMantissa + 1) {
    mantissa = 1;
  } else if (mrsh == kMantissa) {
    mantissa = implied & 3;
  } else {
    if (mrsh > 0) mantissa |= implied << (kMantissa - mrsh);
    if (mrsh + msize >= kMantissa) {
      const std::int64_t from = msize + mrsh - kMantissa, length = kMantissa - mrsh;
      mantissa |= static_cast<std::uint32_t>((m >> from) & ((std::uint64_t{1} << length) - 1));
    } else {
      mantissa |= static_cast<std::uint32_t>((m & ((std::uint64_t{1} << msize) - 1))
                                             << (kMantissa - (mrsh + msize)));
    }
  }
  mantissa &= 0x7FFFFFu;
  if (carry && ++expo >= kExpoMax) {
    expo = kExpoMax;
    mantissa = 0;
  }
  return sign | static_cast<std::uint32_t>(expo) << 23 | mantissa;
}

inline float bits_to_float(std::uint32_t bits) { return std::bit_cast<float>(bits); }

template <class Decode>
void decode_strided(const unsigned char* p, std::size_t count, std::size_t stride, float* out,
                    Decode decode_one) {
  for (std::size_t i = 0; i < count; ++i, p += stride) out[i] = decode_one(p);
}

// Values where conversions part ways, in the machine's byte order: zeros, extremes, ties at
// float32's precision, denormals, NaN payloads, and seeded random bit patterns.
std::vector<std::uint64_t> probe_values(std::size_t size, bool is_float) {
  std::vector<std::uint64_t> v;
  std::mt19937_64 rng(20240611);
  if (is_float && size == 8) {
    for (const double d : {0.0,
                           -0.0,
                           1.0,
                           -1.0,
                           0.1,
                           static_cast<double>(FLT_MAX),
                           -static_cast<double>(FLT_MAX),
                           std::nextafter(static_cast<double>(FLT_MAX), 1e300),
                           std::ldexp(1.0, 128),
                           std::ldexp(1.0, 128) * 0.9999999999,
                           static_cast<double>(FLT_MIN),
                           std::ldexp(1.0, -149),
                           std::ldexp(1.0, -150),
                           std::ldexp(1.5, -150),
                           std::ldexp(1.0, -126) * (1 - 1e-9),
                           1e-300,
                           5e-324,
                           1e300,
                           std::numeric_limits<double>::infinity(),
                           -std::numeric_limits<double>::infinity()}) {
      v.push_back(std::bit_cast<std::uint64_t>(d));
    }
    v.push_back(0x7FF8000000000001ull);  // NaN with a payload
    v.push_back(0xFFF0000000000123ull);  // signalling-pattern NaN, negative
    for (int i = 0; i < 1024; ++i) {
      v.push_back(rng());
      // A float32 value widened, then its cut-off bits set to a tie, all ones, or one more.
      const std::uint64_t widened = std::bit_cast<std::uint64_t>(
          static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(rng()))));
      v.push_back((widened & ~0x1FFFFFFFull) | 0x10000000ull);
      v.push_back(widened | 0x1FFFFFFFull);
      v.push_back((widened & ~0x1FFFFFFFull) | 0x10000001ull);
      // Near float32's denormals and its largest values.
      const double tiny = std::ldexp(static_cast<double>(rng() >> 11), -53 - 120 - int(rng() % 40));
      v.push_back(std::bit_cast<std::uint64_t>(tiny) | (i % 2 ? 0x8000000ull : 0));
      v.push_back(std::bit_cast<std::uint64_t>(
          std::ldexp(1.0 + static_cast<double>(rng() >> 11) * 0x1p-53, 127)));
    }
  } else if (is_float) {  // float32
    for (const std::uint32_t b :
         {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0x7F800001u, 0xFFC01234u,
          0x00000001u, 0x807FFFFFu, 0x7F7FFFFFu}) {
      v.push_back(b);
    }
    for (int i = 0; i < 2048; ++i) v.push_back(static_cast<std::uint32_t>(rng()));
  } else {  // integers: every width of magnitude, ties at 24 bits, the extremes
    const unsigned bits = static_cast<unsigned>(size * 8);
    const std::uint64_t mask = bits == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1;
    for (const std::uint64_t x : {std::uint64_t{0}, std::uint64_t{1}, mask, mask >> 1,
                                  (mask >> 1) + 1, std::uint64_t{(1u << 24) + 1}}) {
      v.push_back(x & mask);
    }
    for (int i = 0; i < 2048; ++i) {
      const std::uint64_t r = rng() >> (rng() % bits);
      v.push_back((r | 1) & mask);
      v.push_back(((r << 1) | 1) & mask);
      v.push_back((~r) & mask);
    }
  }
  return v;
}

}  // namespace

std::optional<ElementDecoder> ElementDecoder::create(hid_t file_type, bool numeric,
                                                     const ReferenceConversion& reference) {
  const H5T_class_t cls = H5Tget_class(file_type);
  const std::size_t size = H5Tget_size(file_type);
  if (size == 0) return std::nullopt;
  ElementDecoder d;
  d.size_ = size;

  if (size <= 2) {
    // Every bit pattern once, through HDF5: exact for any type of this size, whatever it is.
    const std::size_t patterns = std::size_t{1} << (8 * size);
    std::vector<unsigned char> bytes(patterns * size);
    for (std::size_t i = 0; i < patterns; ++i) {
      if (size == 1) {
        bytes[i] = static_cast<unsigned char>(i);
      } else {
        const std::uint16_t pattern = static_cast<std::uint16_t>(i);
        std::memcpy(&bytes[i * 2], &pattern, 2);
      }
    }
    auto table = std::make_shared<std::vector<float>>(patterns);
    reference(bytes.data(), patterns, table->data());
    d.kind_ = Kind::table;
    d.table_ = std::move(table);
    return d;
  }

  if (!numeric || (size != 4 && size != 8)) return std::nullopt;
  const H5T_order_t order = H5Tget_order(file_type);
  if (order != H5T_ORDER_LE && order != H5T_ORDER_BE) return std::nullopt;
  d.swapped_ = (order == H5T_ORDER_BE) != kMachineIsBigEndian;
  const bool is_float = cls == H5T_FLOAT;
  if (cls == H5T_INTEGER) {
    // Full precision at offset 0: no padding bits for HDF5 to mask or sign-extend.
    if (H5Tget_precision(file_type) != 8 * size || H5Tget_offset(file_type) != 0)
      return std::nullopt;
    d.kind_ = Kind::integer;
    d.is_signed_ = H5Tget_sign(file_type) == H5T_SGN_2;
  } else if (is_float) {
    const hid_t ieee = size == 4 ? (order == H5T_ORDER_LE ? H5T_IEEE_F32LE : H5T_IEEE_F32BE)
                                 : (order == H5T_ORDER_LE ? H5T_IEEE_F64LE : H5T_IEEE_F64BE);
    if (H5Tequal(file_type, ieee) <= 0) return std::nullopt;
    d.kind_ = size == 4 ? Kind::float32 : d.swapped_ ? Kind::float64_soft : Kind::float64_cast;
  } else {
    return std::nullopt;
  }

  // Check the transcription against the library at hand on values where conversions differ.
  const std::vector<std::uint64_t> probes = probe_values(size, is_float);
  std::vector<unsigned char> bytes(probes.size() * size);
  for (std::size_t i = 0; i < probes.size(); ++i) {
    if (size == 4) {
      std::uint32_t v = static_cast<std::uint32_t>(probes[i]);
      if (d.swapped_) v = __builtin_bswap32(v);
      std::memcpy(&bytes[i * 4], &v, 4);
    } else {
      std::uint64_t v = probes[i];
      if (d.swapped_) v = __builtin_bswap64(v);
      std::memcpy(&bytes[i * 8], &v, 8);
    }
  }
  std::vector<float> expected(probes.size()), decoded(probes.size());
  reference(bytes.data(), probes.size(), expected.data());
  d.decode(bytes.data(), probes.size(), size, decoded.data());
  if (std::memcmp(expected.data(), decoded.data(), expected.size() * sizeof(float)) != 0) {
    return std::nullopt;
  }
  return d;
}

void ElementDecoder::decode(const unsigned char* bytes, std::size_t count, std::size_t stride,
                            float* out) const {
  const bool swapped = swapped_;
  switch (kind_) {
    case Kind::table: {
      const float* table = table_->data();
      if (size_ == 1) {
        decode_strided(bytes, count, stride, out,
                       [table](const unsigned char* p) { return table[*p]; });
      } else {
        decode_strided(bytes, count, stride, out, [table](const unsigned char* p) {
          std::uint16_t v;
          std::memcpy(&v, p, 2);
          return table[v];
        });
      }
      return;
    }
    case Kind::float32:
      if (!swapped && stride == 4) {
        std::memcpy(out, bytes, count * 4);
      } else {
        decode_strided(bytes, count, stride, out, [swapped](const unsigned char* p) {
          return bits_to_float(load32(p, swapped));
        });
      }
      return;
    case Kind::float64_cast:
      decode_strided(bytes, count, stride, out, [swapped](const unsigned char* p) {
        return float64_cast(std::bit_cast<double>(load64(p, swapped)));
      });
      return;
    case Kind::float64_soft:
      decode_strided(bytes, count, stride, out, [swapped](const unsigned char* p) {
        return bits_to_float(float64_soft_bits(load64(p, swapped)));
      });
      return;
    case Kind::integer:
      // HDF5 converts integers to float with the C cast (hard) or with its soft conversion, which
      // rounds to nearest even like the cast.
      if (size_ == 4) {
        if (is_signed_) {
          decode_strided(bytes, count, stride, out, [swapped](const unsigned char* p) {
            return static_cast<float>(static_cast<std::int32_t>(load32(p, swapped)));
          });
        } else {
          decode_strided(bytes, count, stride, out, [swapped](const unsigned char* p) {
            return static_cast<float>(load32(p, swapped));
          });
        }
      } else if (is_signed_) {
        decode_strided(bytes, count, stride, out, [swapped](const unsigned char* p) {
          return static_cast<float>(static_cast<std::int64_t>(load64(p, swapped)));
        });
      } else {
        decode_strided(bytes, count, stride, out, [swapped](const unsigned char* p) {
          return static_cast<float>(load64(p, swapped));
        });
      }
      return;
  }
}

}  // namespace lathe
