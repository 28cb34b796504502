#include "runtime/dedup.h"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <optional>
#include <string>

#include "kernels/prepare_formulas.h"
#include "runtime/dedup_cuda.h"
#include "runtime/error.h"

namespace lathe {
namespace {

// Row hashes on the CPU. Rows are taken a tile at a time and the tile's hashes advanced column by
// column: every read is sequential in the column-major block, and a tile's hashes stay in L1.
void row_hashes_cpu(const ColumnBlockView& block, std::span<std::uint64_t> out) {
  constexpr std::int64_t kTileRows = 256;
  const std::int64_t rows = block.rows;
  const std::int64_t tiles = (rows + kTileRows - 1) / kTileRows;
#pragma omp parallel for schedule(static)
  for (std::int64_t t = 0; t < tiles; ++t) {
    const std::int64_t begin = t * kTileRows;
    const std::int64_t end = std::min(rows, begin + kTileRows);
    std::uint64_t* h = out.data() + begin;
    for (std::int64_t r = 0; r < end - begin; ++r) h[r] = kRowHashSeed;
    for (std::int64_t c = 0; c < block.columns; ++c) {
      const float* col = block.column(c) + begin;
      for (std::int64_t r = 0; r < end - begin; ++r) h[r] = row_hash_step(h[r], col[r]);
    }
  }
}

// candidate_groups on the CPU: a one-pass bucket sort on the hash's top bits (a parallel histogram
// and a stable scatter of the (hash, row) pairs), then each bucket, a few tens of thousands of
// pairs, sorted on its own. Buckets in order of their top bits give the pairs in (hash, row) order,
// as the GPU's radix sort does.
std::vector<HashedRow> candidate_groups_cpu(std::vector<std::uint64_t> hashes) {
  const std::int64_t n = static_cast<std::int64_t>(hashes.size());
  if (n < 2) return {};
  int bits = 0;
  while (bits < 14 && (n >> bits) > 32768) ++bits;
  const std::int64_t buckets = std::int64_t{1} << bits;
  const auto bucket_of = [bits](std::uint64_t h) -> std::int64_t {
    return bits == 0 ? 0 : static_cast<std::int64_t>(h >> (64 - bits));
  };
  const std::int64_t parts = std::max(1, omp_get_max_threads());
  const auto part_begin = [n, parts](std::int64_t p) { return n * p / parts; };

  // cursor[p * buckets + k]: where part p's next pair of bucket k goes. Bucket k's pairs are
  // contiguous, part after part, so each bucket holds its rows in ascending order.
  std::vector<std::int64_t> cursor(static_cast<std::size_t>(parts * buckets), 0);
#pragma omp parallel for schedule(static)
  for (std::int64_t p = 0; p < parts; ++p) {
    std::int64_t* count = cursor.data() + p * buckets;
    for (std::int64_t r = part_begin(p); r < part_begin(p + 1); ++r) ++count[bucket_of(hashes[r])];
  }
  std::vector<std::int64_t> bucket_begin(static_cast<std::size_t>(buckets + 1));
  std::int64_t running = 0;
  for (std::int64_t k = 0; k < buckets; ++k) {
    bucket_begin[k] = running;
    for (std::int64_t p = 0; p < parts; ++p) {
      const std::int64_t c = cursor[p * buckets + k];
      cursor[p * buckets + k] = running;
      running += c;
    }
  }
  bucket_begin[buckets] = running;

  std::vector<HashedRow> pairs(static_cast<std::size_t>(n));
#pragma omp parallel for schedule(static)
  for (std::int64_t p = 0; p < parts; ++p) {
    std::int64_t* next = cursor.data() + p * buckets;
    for (std::int64_t r = part_begin(p); r < part_begin(p + 1); ++r) {
      pairs[next[bucket_of(hashes[r])]++] = HashedRow{hashes[r], r};
    }
  }
  std::vector<std::uint64_t>().swap(hashes);
  std::vector<std::int64_t>().swap(cursor);

  std::vector<std::vector<HashedRow>> found(static_cast<std::size_t>(buckets));
#pragma omp parallel for schedule(dynamic, 16)
  for (std::int64_t k = 0; k < buckets; ++k) {
    HashedRow* first = pairs.data() + bucket_begin[k];
    HashedRow* last = pairs.data() + bucket_begin[k + 1];
    std::sort(first, last, [](const HashedRow& a, const HashedRow& b) {
      return a.hash != b.hash ? a.hash < b.hash : a.row < b.row;
    });
    for (HashedRow* run = first; run != last;) {
      HashedRow* end = run + 1;
      while (end != last && end->hash == run->hash) ++end;
      if (end - run >= 2) found[k].insert(found[k].end(), run, end);
      run = end;
    }
  }
  std::vector<HashedRow>().swap(pairs);

  std::size_t total = 0;
  for (const auto& f : found) total += f.size();
  std::vector<HashedRow> out;
  out.reserve(total);
  for (auto& f : found) {
    out.insert(out.end(), f.begin(), f.end());
    std::vector<HashedRow>().swap(f);
  }
  return out;
}

// A row of a candidate group, and the group it belongs to.
struct Candidate {
  std::int64_t row = 0;
  std::int64_t group = 0;
};

// A candidate group during pass 2: how many of its rows the stream has yet to reach, and the
// distinct rows of the group kept so far (usually one), `columns` values each and their stored keys
// (StoredKeys) beside, so that a row is compared with every kept row it could duplicate (two
// different rows that share a hash may each be duplicated). Released when the group's last row has
// been seen.
struct GroupState {
  std::int64_t unseen = 0;
  std::vector<float> kept;
  std::vector<std::uint64_t> kept_keys;
};

bool same_row(const float* a, const float* b, std::int64_t columns) {
  for (std::int64_t c = 0; c < columns; ++c) {
    if (!same_value(a[c], b[c])) return false;
  }
  return true;
}

// A column whose stored values float32 may not hold: float64, integers of 32 and 64 bits, the codes
// of a categorical column stored as integers. Blocks carry them rounded to float32 (20000001 reads
// as 20000000, timestamps 50 s apart near 1.7e9 as one value), so rows equal there are duplicates
// only when also equal in the values as stored.
struct WideColumn {
  std::int64_t column = 0;
  ExactType type = ExactType::float64;
};

std::vector<WideColumn> wide_columns(const TableReader& reader) {
  std::vector<WideColumn> wide;
  const auto& columns = reader.columns();
  for (std::int64_t c = 0; c < static_cast<std::int64_t>(columns.size()); ++c) {
    const std::string& dtype = columns[c].dtype;
    // float32 holds every 8- and 16-bit integer.
    if (dtype == "int8" || dtype == "uint8" || dtype == "int16" || dtype == "uint16") continue;
    if (const std::optional<ExactType> type = reader.exact_type(c)) wide.push_back({c, *type});
  }
  return wide;
}

// Below this magnitude a float32 read of an integer is the integer itself: rounding is monotonic
// and 2^24 is a float32, so only an integer beyond 2^24 can read as a float32 of magnitude 2^24 or
// more. A block whose candidates' integers all stay below it needs no exact read.
constexpr float kExactIntegerBound = 16777216.0f;  // 2^24

// A stored value as 64 bits that are equal exactly when the values are the same in the sense of
// same_value: a float64 with every NaN one pattern and -0.0 as 0.0; an integer as its two's
// complement bits; every missing (negative) category code as -1.
std::uint64_t key_of_double(double v) {
  if (std::isnan(v)) return 0x7ff8000000000000ULL;
  if (v == 0.0) return 0;
  return std::bit_cast<std::uint64_t>(v);
}

std::uint64_t key_of_code(std::int64_t code) {
  return static_cast<std::uint64_t>(code < 0 ? std::int64_t{-1} : code);
}

// The key of an integer column's value from its float32 read, which is exact below
// kExactIntegerBound. NaN is a missing category code.
std::uint64_t key_of_exact_float(float v, ExactType type) {
  if (std::isnan(v)) return key_of_code(-1);
  if (type == ExactType::uint64) return static_cast<std::uint64_t>(v);
  const auto integer = static_cast<std::int64_t>(v);
  return type == ExactType::int32 ? key_of_code(integer) : static_cast<std::uint64_t>(integer);
}

// The keys (key_of_*) of the wide columns for the candidate rows of one block, read as stored where
// float32 might have rounded them. Buffers are reused from block to block.
class StoredKeys {
 public:
  explicit StoredKeys(std::vector<WideColumn> wide) : wide_(std::move(wide)) {}

  std::int64_t width() const { return static_cast<std::int64_t>(wide_.size()); }

  // keys()[i * width() + w]: candidate i's key of wide column w, for the candidates `rows` (table
  // rows, ascending) of the block that starts at table row `first` and whose float32 values,
  // column-major, are `values` (`count` rows a column).
  void read(TableReader& reader, std::int64_t first, std::int64_t count,
            std::span<const float> values, std::span<const std::int64_t> rows) {
    const std::int64_t width = this->width();
    const std::int64_t n = static_cast<std::int64_t>(rows.size());
    keys_.resize(static_cast<std::size_t>(n * width));
    if (n == 0) return;
    // Only the rows from the block's first candidate to its last are read.
    const std::int64_t lo = rows.front(), span = rows.back() - rows.front() + 1;
    for (std::int64_t w = 0; w < width; ++w) {
      const WideColumn& wide = wide_[w];
      const float* column = values.data() + wide.column * count;
      const bool rounded = wide.type == ExactType::float64 ||
                           std::any_of(rows.begin(), rows.end(), [column, first](std::int64_t r) {
                             return std::fabs(column[r - first]) >= kExactIntegerBound;
                           });
      if (!rounded) {
        for (std::int64_t i = 0; i < n; ++i) {
          keys_[i * width + w] = key_of_exact_float(column[rows[i] - first], wide.type);
        }
        continue;
      }
      if (wide.type == ExactType::int32) {
        codes_.resize(static_cast<std::size_t>(span));
        reader.read_column_as(wide.column, lo, span, wide.type, codes_.data());
        for (std::int64_t i = 0; i < n; ++i) {
          keys_[i * width + w] = key_of_code(codes_[rows[i] - lo]);
        }
        continue;
      }
      words_.resize(static_cast<std::size_t>(span));  // doubles, int64s or uint64s
      reader.read_column_as(wide.column, lo, span, wide.type, words_.data());
      for (std::int64_t i = 0; i < n; ++i) {
        const std::uint64_t word = words_[rows[i] - lo];
        keys_[i * width + w] =
            wide.type == ExactType::float64 ? key_of_double(std::bit_cast<double>(word)) : word;
      }
    }
  }

  const std::vector<std::uint64_t>& keys() const { return keys_; }

 private:
  std::vector<WideColumn> wide_;
  std::vector<std::uint64_t> keys_;
  std::vector<std::uint64_t> words_;
  std::vector<std::int32_t> codes_;
};

}  // namespace

void row_hashes(const DeviceContext& ctx, const ColumnBlockView& block,
                std::span<std::uint64_t> out) {
  if (static_cast<std::int64_t>(out.size()) != block.rows) {
    throw Error("row_hashes: output has " + std::to_string(out.size()) + " entries for " +
                std::to_string(block.rows) + " rows");
  }
  if (ctx.is_cuda()) {
    CudaRowHasher(ctx.cuda()).hash(block, out);
  } else {
    row_hashes_cpu(block, out);
  }
}

std::vector<HashedRow> candidate_groups(const DeviceContext& ctx, std::vector<std::uint64_t> hashes,
                                        bool* sorted_on_device) {
  if (sorted_on_device) *sorted_on_device = false;
  if (ctx.is_cuda()) {
    std::optional<std::vector<HashedRow>> groups = candidate_groups_cuda(ctx.cuda(), hashes);
    if (groups) {
      if (sorted_on_device) *sorted_on_device = true;
      return std::move(*groups);
    }
    // The GPU's free memory cannot hold the sort: the CPU sorts instead (same result).
  }
  return candidate_groups_cpu(std::move(hashes));
}

DedupResult find_duplicates(const DeviceContext& ctx, TableReader& reader,
                            const DedupOptions& options) {
  const std::int64_t rows = reader.rows();
  const std::int64_t columns = static_cast<std::int64_t>(reader.columns().size());
  const std::int64_t block_rows = reader.block_rows();
  DedupResult result;
  result.keep = RowMask(rows, true);
  if (columns == 0) {  // every row equals the first (the reader refuses such tables anyway)
    for (std::int64_t r = 1; r < rows; ++r) result.keep.set(r, false);
    result.duplicates = std::max<std::int64_t>(0, rows - 1);
    return result;
  }
  std::vector<float> block(static_cast<std::size_t>(std::min(block_rows, rows) * columns));

  // Pass 1: a hash a row.
  std::vector<std::uint64_t> hashes(static_cast<std::size_t>(rows));
  {
    std::optional<CudaRowHasher> hasher;
    if (ctx.is_cuda()) hasher.emplace(ctx.cuda());
    for (std::int64_t first = 0; first < rows; first += block_rows) {
      const std::int64_t count = std::min(block_rows, rows - first);
      const std::span<float> values(block.data(), static_cast<std::size_t>(count * columns));
      reader.read_block(first, count, values);
      const ColumnBlockView view{values.data(), count, columns};
      const std::span<std::uint64_t> out(hashes.data() + first, static_cast<std::size_t>(count));
      if (hasher) {
        hasher->hash(view, out);
      } else {
        row_hashes_cpu(view, out);
      }
    }
  }
  if (options.hash_mask != ~0ULL) {
    for (auto& h : hashes) h &= options.hash_mask;
  }

  // Candidate groups, numbered, then in row order for pass 2.
  std::vector<Candidate> candidates;
  std::vector<GroupState> groups;
  {
    const std::vector<HashedRow> members =
        candidate_groups(ctx, std::move(hashes), &result.sorted_on_device);
    candidates.resize(members.size());
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (i == 0 || members[i].hash != members[i - 1].hash) groups.emplace_back();
      groups.back().unseen += 1;
      candidates[i] = Candidate{members[i].row, static_cast<std::int64_t>(groups.size()) - 1};
    }
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& a, const Candidate& b) { return a.row < b.row; });

  // Pass 2: verify each candidate against the kept rows of its group, in float32 and then in the
  // stored values of the wide columns. Blocks without candidates are not read.
  StoredKeys stored(wide_columns(reader));
  const std::int64_t width = stored.width();
  std::vector<float> row(static_cast<std::size_t>(columns));
  std::vector<std::int64_t> block_candidates;
  std::size_t next = 0;
  for (std::int64_t first = 0; first < rows && next < candidates.size(); first += block_rows) {
    const std::int64_t count = std::min(block_rows, rows - first);
    if (candidates[next].row >= first + count) continue;
    const std::span<float> values(block.data(), static_cast<std::size_t>(count * columns));
    reader.read_block(first, count, values);
    std::size_t block_end = next;
    block_candidates.clear();
    for (; block_end < candidates.size() && candidates[block_end].row < first + count;
         ++block_end) {
      block_candidates.push_back(candidates[block_end].row);
    }
    if (width > 0) stored.read(reader, first, count, values, block_candidates);
    for (std::int64_t i = 0; next < block_end; ++next, ++i) {
      const Candidate& cand = candidates[next];
      const std::int64_t r = cand.row - first;
      for (std::int64_t c = 0; c < columns; ++c) row[c] = values[c * count + r];
      const std::uint64_t* keys = width > 0 ? stored.keys().data() + i * width : nullptr;
      GroupState& group = groups[cand.group];
      bool duplicate = false;
      for (std::size_t k = 0, kept = 0; k < group.kept.size() && !duplicate; k += columns, ++kept) {
        duplicate = same_row(group.kept.data() + k, row.data(), columns) &&
                    std::equal(keys, keys + width, group.kept_keys.data() + kept * width);
      }
      if (duplicate) {
        result.keep.set(cand.row, false);
        ++result.duplicates;
      } else {
        if (!group.kept.empty()) ++result.hash_collisions;
        if (group.unseen > 1) {
          group.kept.insert(group.kept.end(), row.begin(), row.end());
          group.kept_keys.insert(group.kept_keys.end(), keys, keys + width);
        }
      }
      if (--group.unseen == 0) {
        std::vector<float>().swap(group.kept);
        std::vector<std::uint64_t>().swap(group.kept_keys);
      }
    }
  }
  return result;
}

}  // namespace lathe
