// A bit per row of a table: which rows a pass keeps (after --dedup, say). Host memory, 1 bit a row.
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

namespace lathe {

class RowMask {
 public:
  RowMask() = default;
  // `rows` bits, all set to `value`.
  explicit RowMask(std::int64_t rows, bool value = true)
      : rows_(rows), words_(static_cast<std::size_t>((rows + 63) / 64), value ? ~0ULL : 0ULL) {}

  std::int64_t rows() const { return rows_; }
  bool test(std::int64_t row) const { return (words_[row >> 6] >> (row & 63)) & 1ULL; }
  void set(std::int64_t row, bool value) {
    const std::uint64_t bit = 1ULL << (row & 63);
    if (value) {
      words_[row >> 6] |= bit;
    } else {
      words_[row >> 6] &= ~bit;
    }
  }
  // Rows set, counted over the first rows() bits.
  std::int64_t count() const {
    std::int64_t n = 0;
    const std::size_t full = static_cast<std::size_t>(rows_ / 64);
    for (std::size_t w = 0; w < full; ++w) n += std::popcount(words_[w]);
    if (rows_ % 64) n += std::popcount(words_[full] & ((1ULL << (rows_ % 64)) - 1));
    return n;
  }

 private:
  std::int64_t rows_ = 0;
  std::vector<std::uint64_t> words_;
};

}  // namespace lathe
