// An open-addressing hash table from labels (text) to their indices 0, 1, 2, ... in the order they
// were added: how the record reader turns a column's strings into category codes and how the
// preparation merges a profile's labels. It holds no text: the caller keeps label i and hands the
// table `label_of` (i -> std::string_view) to read it.
//
// With millions of labels the table and the labels are far out of the cache. Each entry is one
// 64-bit word, the top 32 bits of the label's hash (its tag) above its index + 1 (0: an empty
// entry), so that a probe reads a label only when the tags match: comparing the labels of colliding
// entries (a cache miss each, never prefetched) was half the time of collecting a column of a
// million ids. An entry's place is the top bits of its tag, so growing the table re-places the
// entries without reading or hashing a label again.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/error.h"

namespace lathe {

namespace label_text {
// The 8 and 4 bytes at p as one unsigned word (unaligned, the host's byte order).
inline std::uint64_t word(const unsigned char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline std::uint64_t half_word(const unsigned char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
}  // namespace label_text

// a == b, inline for texts of up to 16 bytes (two loads of each, overlapping): LabelTable compares
// the labels of matching tags with it; through memcmp's call that was 5% of `lathe train`'s CPU
// time on 26 columns of ids of 10 bytes.
inline bool same_label_text(std::string_view a, std::string_view b) {
  using label_text::half_word, label_text::word;
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(a.data());
  const auto* q = reinterpret_cast<const unsigned char*>(b.data());
  if (n > 16) return std::memcmp(p, q, n) == 0;
  if (n >= 8) return ((word(p) ^ word(q)) | (word(p + n - 8) ^ word(q + n - 8))) == 0;
  if (n >= 4) return ((half_word(p) ^ half_word(q)) | (half_word(p + n - 4) ^ half_word(q + n - 4))) == 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] != q[i]) return false;
  }
  return true;
}

class LabelTable {
 public:
  // The table's hash of a label (in memory only: nothing stored depends on it). Inline, and a few
  // multiplications for a short label: std::hash's out-of-line byte loop took a fifth of a
  // one-thread loop finding the codes of 26 columns of ids (6% of `lathe inspect`'s CPU time on
  // them). The 64-bit words of the label (overlapping at its end) are folded by 128-bit products,
  // the way wyhash does, and the result multiplied by an odd constant so that its top bits, the tag
  // and the place, depend on every byte.
  static std::uint64_t hash(std::string_view label) {
    using label_text::half_word, label_text::word;
    const auto* p = reinterpret_cast<const unsigned char*>(label.data());
    const std::size_t n = label.size();
    std::uint64_t seed = 0x9e3779b97f4a7c15ULL ^ n, a = 0, b = 0;
    if (n > 16) {
      std::size_t left = n;
      for (; left > 16; left -= 16, p += 16) seed = fold(word(p) ^ 0xa0761d6478bd642fULL, word(p + 8) ^ seed);
      a = word(p + left - 16);
      b = word(p + left - 8);
    } else if (n >= 8) {
      a = word(p);
      b = word(p + n - 8);
    } else if (n >= 4) {
      a = half_word(p);
      b = half_word(p + n - 4);
    } else if (n > 0) {
      a = std::uint64_t{p[0]} << 16 | std::uint64_t{p[n / 2]} << 8 | p[n - 1];
    }
    return fold(a ^ 0xe7037ed1a0b428dbULL, b ^ seed ^ 0x8ebc6af09c88c6e3ULL) * 0x9e3779b97f4a7c15ULL;
  }

  // Labels added so far.
  std::size_t size() const { return size_; }

  // The index of `label` (whose hash() is h), or -1 when it was never added.
  template <typename LabelOf>
  std::int64_t find(std::string_view label, std::uint64_t h, const LabelOf& label_of) const {
    if (entries_.empty()) return -1;
    const std::uint64_t tag = h >> 32;
    for (std::size_t at = place(tag);; at = (at + 1) & mask()) {
      const std::uint64_t entry = entries_[at];
      if (entry == 0) return -1;
      if (matches(entry, tag, label, label_of)) return index_of(entry);
    }
  }

  // The index of the first entry in the probe sequence of hash h whose tag is h's: the index of
  // the label of hash h when it was added (compare it to be sure: another label may share the tag),
  // else -1, or another label's index. Reads no label, so that the labels of a batch are fetched
  // only once their indices are known.
  std::int64_t candidate(std::uint64_t h) const {
    if (entries_.empty()) return -1;
    const std::uint64_t tag = h >> 32;
    for (std::size_t at = place(tag);; at = (at + 1) & mask()) {
      const std::uint64_t entry = entries_[at];
      if (entry == 0) return -1;
      if (entry >> 32 == tag) return index_of(entry);
    }
  }

  // find(), and when the label is absent it is added as index size() (`added` then true; the
  // caller must then keep it as label size() - 1 before the next call). At most 2^32 - 1 labels.
  template <typename LabelOf>
  std::int64_t find_or_add(std::string_view label, std::uint64_t h, const LabelOf& label_of, bool& added) {
    // At most half the entries are taken, so that a probe ends soon at an empty one.
    if (2 * (size_ + 1) > entries_.size()) grow();
    const std::uint64_t tag = h >> 32;
    for (std::size_t at = place(tag);; at = (at + 1) & mask()) {
      const std::uint64_t entry = entries_[at];
      if (entry == 0) {
        entries_[at] = tag << 32 | (size_ + 1);
        added = true;
        return static_cast<std::int64_t>(size_++);
      }
      if (matches(entry, tag, label, label_of)) {
        added = false;
        return index_of(entry);
      }
    }
  }

  // Hints that a label of hash h is coming: first its entry's line, later (once that line is in
  // the cache) the caller's record of the label of that entry when its tag matches:
  // address_of(index) gives where the caller keeps label `index` (a std::string, whose short
  // text is inside it), computed without reading it, since a read would wait for the line.
  void prefetch(std::uint64_t h) const {
    if (!entries_.empty()) __builtin_prefetch(entries_.data() + place(h >> 32));
  }
  template <typename AddressOf>
  void prefetch_label(std::uint64_t h, const AddressOf& address_of) const {
    if (entries_.empty()) return;
    const std::uint64_t entry = entries_[place(h >> 32)];
    if (entry != 0 && entry >> 32 == h >> 32) __builtin_prefetch(address_of(index_of(entry)));
  }

  // Empty again, its memory given back.
  void clear() {
    entries_ = {};
    size_ = 0;
    bits_ = 0;
  }

 private:
  // The 128-bit product of a and b, its halves xored.
  static std::uint64_t fold(std::uint64_t a, std::uint64_t b) {
    const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
    return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
  }
  std::size_t mask() const { return entries_.size() - 1; }
  // The top bits_ bits of the 32-bit tag (a table of up to 2^32 entries).
  std::size_t place(std::uint64_t tag) const { return bits_ == 0 ? 0 : static_cast<std::size_t>(tag >> (32 - bits_)); }
  static std::int64_t index_of(std::uint64_t entry) { return static_cast<std::int64_t>((entry & 0xffffffffu) - 1); }
  template <typename LabelOf>
  static bool matches(std::uint64_t entry, std::uint64_t tag, std::string_view label, const LabelOf& label_of) {
    return entry >> 32 == tag && same_label_text(label_of(index_of(entry)), label);
  }

  void grow() {
    const int bits = bits_ == 0 ? 4 : bits_ + 1;
    if (bits > 32) throw Error("LabelTable: more than 2^31 labels");
    std::vector<std::uint64_t> old = std::move(entries_);
    entries_.assign(std::size_t{1} << bits, 0);
    bits_ = bits;
    for (const std::uint64_t entry : old) {
      if (entry == 0) continue;
      std::size_t at = place(entry >> 32);
      while (entries_[at] != 0) at = (at + 1) & mask();
      entries_[at] = entry;
    }
  }

  std::vector<std::uint64_t> entries_;  // 2^bits_ of them
  std::size_t size_ = 0;
  int bits_ = 0;
};

// visit(i, hash) for each label i of `labels` in order, its hash() given: a batch of labels is
// hashed and their entries in `table` requested before any is visited, since a table of millions
// of entries is out of the cache and waiting for each entry in turn was most of the time.
template <typename Visit>
void for_each_hashed(std::span<const std::string> labels, const LabelTable& table, Visit visit) {
  constexpr std::size_t kBatch = 16;
  std::uint64_t hashes[kBatch];
  for (std::size_t first = 0; first < labels.size(); first += kBatch) {
    const std::size_t batch = std::min(kBatch, labels.size() - first);
    for (std::size_t k = 0; k < batch; ++k) {
      hashes[k] = LabelTable::hash(labels[first + k]);
      table.prefetch(hashes[k]);
    }
    for (std::size_t k = 0; k < batch; ++k) visit(first + k, hashes[k]);
  }
}

}  // namespace lathe
