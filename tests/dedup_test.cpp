// Duplicate detection (runtime/dedup.h), written once and run on every device: row hashes against a
// plain per-row fold of the shared formula, candidate groups against a plain sort, and whole-table
// deduplication of HDF5 files (small chunks and blocks, so duplicates span block boundaries)
// against an independent reference: a std::map of canonicalized rows.
#include "runtime/dedup.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "io/columnar_writer.h"
#include "io/synth.h"
#include "io/table_reader.h"
#include "kernels/prepare_formulas.h"
#include "runtime/error.h"
#include "tests/temp_dir.h"
#include "tests/test_devices.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

float float_from_bits(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// A table in memory, column-major, and how each column is stored.
struct Table {
  std::int64_t rows = 0;
  std::vector<std::vector<float>> columns;
  std::vector<StoredType> stored;
};

fs::path write_table(const fs::path& path, const Table& t, std::int64_t chunk_rows) {
  std::vector<ColumnSpec> specs;
  for (std::size_t c = 0; c < t.columns.size(); ++c) {
    specs.push_back({"c" + std::to_string(c), t.stored[c]});
  }
  ColumnarWriter writer(path, specs, ColumnarWriteOptions{chunk_rows, 1});
  for (std::size_t c = 0; c < t.columns.size(); ++c) {
    const std::vector<float>& v = t.columns[c];
    if (t.stored[c] == StoredType::categorical_codes) {
      std::vector<std::int32_t> codes(v.size());
      for (std::size_t r = 0; r < v.size(); ++r)
        codes[r] = std::isnan(v[r]) ? -1 : static_cast<std::int32_t>(v[r]);
      writer.append_codes(c, codes);
      writer.set_categories(c, {"a", "b", "c", "d", "e"});
    } else if (t.stored[c] == StoredType::float64) {
      writer.append_numeric(c, std::vector<double>(v.begin(), v.end()));
    } else {
      writer.append_numeric(c, std::span<const float>(v));
    }
  }
  writer.close();
  return path;
}

// The whole table as the reader sees it, column-major.
std::vector<float> read_all(TableReader& reader) {
  std::vector<float> values(static_cast<std::size_t>(reader.rows() * reader.columns().size()));
  reader.read_block(0, reader.rows(), values);
  return values;
}

// The reference: a row is a duplicate when an earlier row has the same canonical bits in every
// column (all NaNs one value, -0.0 as 0.0). Written without the shared formulas.
struct ReferenceDedup {
  std::vector<bool> keep;
  std::int64_t duplicates = 0;
};

ReferenceDedup reference_dedup(const std::vector<float>& values, std::int64_t rows,
                               std::int64_t columns) {
  ReferenceDedup ref;
  ref.keep.assign(static_cast<std::size_t>(rows), true);
  std::map<std::vector<std::uint32_t>, std::int64_t> first_row;
  for (std::int64_t r = 0; r < rows; ++r) {
    std::vector<std::uint32_t> key(static_cast<std::size_t>(columns));
    for (std::int64_t c = 0; c < columns; ++c) {
      const float v = values[c * rows + r];
      std::uint32_t bits = std::bit_cast<std::uint32_t>(v);
      if (std::isnan(v)) bits = 0x7fc00000u;
      if (v == 0.0f) bits = 0;
      key[c] = bits;
    }
    if (!first_row.emplace(std::move(key), r).second) {
      ref.keep[r] = false;
      ++ref.duplicates;
    }
  }
  return ref;
}

void expect_keep_matches(const RowMask& keep, const std::vector<bool>& expected) {
  ASSERT_EQ(keep.rows(), static_cast<std::int64_t>(expected.size()));
  std::int64_t mismatches = 0, first_mismatch = -1;
  for (std::int64_t r = 0; r < keep.rows(); ++r) {
    if (keep.test(r) != expected[r]) {
      if (first_mismatch < 0) first_mismatch = r;
      ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0) << "first at row " << first_mismatch;
}

// Seeded rows drawn from a small pool of prototypes, so exact duplicates land anywhere in the
// table, with near-duplicates (one column changed, often the last: the label), missing values,
// and -0.0 where a prototype has 0.0.
Table make_table_with_duplicates(std::int64_t rows, std::uint64_t seed) {
  Table t;
  t.rows = rows;
  t.stored = {StoredType::float32, StoredType::float64, StoredType::categorical_codes,
              StoredType::float32, StoredType::float32};
  const std::size_t columns = t.stored.size();
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-3, 3);
  const auto fresh_value = [&](std::size_t c) -> float {
    const int kind = static_cast<int>(rng() % 10);
    if (kind == 0) return kNaN;
    if (c == 2) return static_cast<float>(rng() % 5);  // a category code
    if (kind == 1) return 0.0f;
    return u(rng);
  };
  std::vector<std::vector<float>> pool(std::max<std::int64_t>(1, rows / 4),
                                       std::vector<float>(columns));
  for (auto& p : pool) {
    for (std::size_t c = 0; c < columns; ++c) p[c] = fresh_value(c);
  }
  t.columns.assign(columns, std::vector<float>(static_cast<std::size_t>(rows)));
  for (std::int64_t r = 0; r < rows; ++r) {
    std::vector<float> row(columns);
    const int kind = static_cast<int>(rng() % 4);
    if (kind == 0) {
      for (std::size_t c = 0; c < columns; ++c) row[c] = fresh_value(c);
    } else {
      row = pool[rng() % pool.size()];
      for (std::size_t c = 0; c < columns; ++c) {
        if (row[c] == 0.0f && c != 2 && rng() % 2) row[c] = -0.0f;
      }
      if (kind == 1) {
        const std::size_t c = rng() % 3 == 0 ? rng() % columns : columns - 1;
        row[c] = fresh_value(c);  // often still equal: fresh draws repeat 0, NaN and codes
      }
    }
    for (std::size_t c = 0; c < columns; ++c) t.columns[c][r] = row[c];
  }
  return t;
}

class RowHashOnDevice : public testing::TestWithParam<DeviceKind> {};

// The hash as the shared formula defines it, one row at a time.
std::uint64_t fold_row(const std::vector<float>& values, std::int64_t rows, std::int64_t columns,
                       std::int64_t r) {
  std::uint64_t h = kRowHashSeed;
  for (std::int64_t c = 0; c < columns; ++c) h = row_hash_step(h, values[c * rows + r]);
  return h;
}

TEST_P(RowHashOnDevice, MatchesPerRowFoldBitForBitOverAwkwardSizes) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  std::mt19937_64 rng(11);
  const float specials[] = {kNaN,
                            -kNaN,
                            float_from_bits(0x7fa00001u),
                            0.0f,
                            -0.0f,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::denorm_min(),
                            1.0f,
                            -1.0f};
  for (std::int64_t rows : {1, 11, 101, 12345, 1000003}) {
    for (std::int64_t cols : {1, 2, 7, 50}) {
      if (rows * cols > 2'500'000) continue;
      std::vector<float> values(static_cast<std::size_t>(rows * cols));
      std::normal_distribution<float> normal(0, 1e3f);
      for (auto& v : values)
        v = rng() % 8 == 0 ? specials[rng() % std::size(specials)] : normal(rng);
      std::vector<std::uint64_t> out(static_cast<std::size_t>(rows),
                                     0xdeadbeefdeadbeefULL);  // poison
      row_hashes(ctx, ColumnBlockView{values.data(), rows, cols}, out);
      std::int64_t mismatches = 0;
      for (std::int64_t r = 0; r < rows; ++r)
        mismatches += out[r] != fold_row(values, rows, cols, r);
      EXPECT_EQ(mismatches, 0) << "rows " << rows << " cols " << cols;
    }
  }
}

TEST_P(RowHashOnDevice, MissingValuesAndSignedZerosHashAlike) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  // Column-major, 6 rows x 2 columns.
  const std::vector<float> values = {
      kNaN,
      -kNaN,
      float_from_bits(0x7fa00001u),
      0.0f,
      -0.0f,
      1.0f,  // column 0
      -0.0f,
      0.0f,
      0.0f,
      std::numeric_limits<float>::denorm_min(),
      0.0f,
      0.0f,  // column 1
  };
  std::vector<std::uint64_t> h(6);
  row_hashes(ctx, ColumnBlockView{values.data(), 6, 2}, h);
  EXPECT_EQ(h[0], h[1]);  // NaN and -NaN, -0.0 and 0.0
  EXPECT_EQ(h[0], h[2]);  // another NaN payload
  EXPECT_NE(h[3], h[4]);  // the smallest denormal is not 0
  EXPECT_NE(h[0], h[4]);  // NaN is not 0
  EXPECT_NE(h[4], h[5]);
  EXPECT_EQ(h[4], fold_row({0.0f, 0.0f}, 1, 2, 0));  // -0.0, 0.0 hashes as 0.0, 0.0
}

TEST_P(RowHashOnDevice, EmptyBlockWritesNothing) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  std::vector<std::uint64_t> out;
  EXPECT_NO_THROW(row_hashes(ctx, ColumnBlockView{nullptr, 0, 3}, out));
  std::vector<std::uint64_t> wrong(2);
  const std::vector<float> values(3);
  EXPECT_THROW(row_hashes(ctx, ColumnBlockView{values.data(), 3, 1}, wrong), Error);
}

LATHE_INSTANTIATE_FOR_DEVICES(RowHashOnDevice);

class DedupOnDevice : public testing::TestWithParam<DeviceKind> {};

// Groups of shared hashes by a plain sort of all (hash, row) pairs, in (hash, row) order.
std::vector<HashedRow> reference_groups(const std::vector<std::uint64_t>& hashes) {
  std::vector<std::pair<std::uint64_t, std::int64_t>> pairs;
  for (std::size_t r = 0; r < hashes.size(); ++r)
    pairs.emplace_back(hashes[r], static_cast<std::int64_t>(r));
  std::sort(pairs.begin(), pairs.end());
  std::vector<HashedRow> out;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const bool shared = (i > 0 && pairs[i - 1].first == pairs[i].first) ||
                        (i + 1 < pairs.size() && pairs[i + 1].first == pairs[i].first);
    if (shared) out.push_back(HashedRow{pairs[i].first, pairs[i].second});
  }
  return out;
}

TEST_P(DedupOnDevice, CandidateGroupsMatchASortOverAwkwardSizes) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  std::mt19937_64 rng(5);
  for (std::int64_t n : {0, 1, 2, 11, 101, 12345, 1000003}) {
    // Full 64-bit hashes with planted repeats (top bits vary: many CPU buckets), then few-bit
    // hashes (many large groups), then all equal.
    for (int kind = 0; kind < 3; ++kind) {
      std::vector<std::uint64_t> hashes(static_cast<std::size_t>(n));
      for (std::int64_t r = 0; r < n; ++r) {
        if (kind == 0) hashes[r] = (r > 0 && rng() % 5 == 0) ? hashes[rng() % r] : rng();
        if (kind == 1)
          hashes[r] = rng() & ((std::bit_ceil(static_cast<std::uint64_t>(n)) << 2) - 1);
        if (kind == 2) hashes[r] = 0x1234;
      }
      const std::vector<HashedRow> expected = reference_groups(hashes);
      bool on_device = false;
      const std::vector<HashedRow> got = candidate_groups(ctx, hashes, &on_device);
      ASSERT_EQ(got.size(), expected.size()) << "n " << n << " kind " << kind;
      EXPECT_TRUE(got == expected) << "n " << n << " kind " << kind;
      if (n >= 2) EXPECT_EQ(on_device, ctx.is_cuda());
    }
  }
}

TEST_P(DedupOnDevice, MatchesReferenceAcrossBlockBoundaries) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  test::TemporaryDirectory dir;
  for (std::int64_t rows : {1, 2, 63, 1000, 5003}) {
    const Table t = make_table_with_duplicates(rows, 100 + rows);
    const fs::path path = write_table(dir.file("t" + std::to_string(rows) + ".h5"), t, 64);
    TableReadOptions read_options;
    read_options.block_rows = 100;  // rounded up to whole 64-row chunks: 128-row blocks
    TableReader reader(path, read_options);
    ASSERT_EQ(reader.block_rows(), 128);
    const std::vector<float> values = read_all(reader);
    const ReferenceDedup ref = reference_dedup(values, rows, 5);

    const DedupResult result = find_duplicates(ctx, reader);
    SCOPED_TRACE("rows " + std::to_string(rows));
    expect_keep_matches(result.keep, ref.keep);
    EXPECT_EQ(result.duplicates, ref.duplicates);
    EXPECT_EQ(result.keep.count(), rows - ref.duplicates);
    EXPECT_EQ(result.hash_collisions, 0);
    if (rows >= 1000) EXPECT_GT(ref.duplicates, rows / 10);  // the data does have duplicates
    if (rows >= 2) EXPECT_EQ(result.sorted_on_device, ctx.is_cuda());
  }
}

TEST_P(DedupOnDevice, ForcedHashCollisionsAreVerifiedCountedAndKept) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  test::TemporaryDirectory dir;
  const std::int64_t rows = 3001;
  const Table t = make_table_with_duplicates(rows, 7);
  TableReadOptions read_options;
  read_options.block_rows = 50;
  TableReader reader(write_table(dir.file("t.h5"), t, 50), read_options);
  const std::vector<float> values = read_all(reader);
  const ReferenceDedup ref = reference_dedup(values, rows, 5);
  std::vector<std::uint64_t> hashes(static_cast<std::size_t>(rows));
  row_hashes(DeviceContext::cpu(), ColumnBlockView{values.data(), rows, 5}, hashes);

  for (std::uint64_t mask : {0x0ULL, 0x1ULL, 0x3ULL, 0xffULL, 0x8000000000000001ULL}) {
    // A collision: a kept row whose masked hash an earlier kept row already had.
    std::int64_t expected_collisions = 0;
    std::map<std::uint64_t, bool> seen;
    for (std::int64_t r = 0; r < rows; ++r) {
      if (!ref.keep[r]) continue;
      if (!seen.emplace(hashes[r] & mask, true).second) ++expected_collisions;
    }
    const DedupResult result = find_duplicates(ctx, reader, DedupOptions{mask});
    SCOPED_TRACE("mask " + std::to_string(mask));
    expect_keep_matches(result.keep, ref.keep);
    EXPECT_EQ(result.duplicates, ref.duplicates);
    EXPECT_EQ(result.hash_collisions, expected_collisions);
    EXPECT_GT(expected_collisions, 0);
  }
}

TEST_P(DedupOnDevice, DifferentRowsSharingAHashAreEachDeduplicated) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  test::TemporaryDirectory dir;
  // Rows A B A B C A' B' with every hash equal (mask 0): B differs from A, C from both; A' is A
  // with -0.0 and another NaN, B' is B. Two-row blocks put every copy in another block.
  const float a[] = {1.0f, 0.0f, kNaN}, b[] = {1.0f, 0.0f, 2.0f}, c[] = {1.0f, -1.0f, kNaN};
  const float a2[] = {1.0f, -0.0f, float_from_bits(0xffc00001u)};
  const std::vector<const float*> order = {a, b, a, b, c, a2, b};
  Table t;
  t.rows = static_cast<std::int64_t>(order.size());
  t.stored.assign(3, StoredType::float32);
  t.columns.assign(3, std::vector<float>(order.size()));
  for (std::size_t r = 0; r < order.size(); ++r) {
    for (int col = 0; col < 3; ++col) t.columns[col][r] = order[r][col];
  }
  TableReadOptions read_options;
  read_options.block_rows = 2;
  TableReader reader(write_table(dir.file("t.h5"), t, 2), read_options);
  for (std::uint64_t mask : {0x0ULL, ~0x0ULL}) {
    const DedupResult result = find_duplicates(ctx, reader, DedupOptions{mask});
    const std::vector<bool> expected = {true, true, false, false, true, false, false};
    expect_keep_matches(result.keep, expected);
    EXPECT_EQ(result.duplicates, 4);
    EXPECT_EQ(result.hash_collisions, mask == 0 ? 2 : 0);  // B and C
  }
}

TEST_P(DedupOnDevice, AllRowsEqualKeepsTheFirst) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  test::TemporaryDirectory dir;
  Table t;
  t.rows = 777;
  t.stored.assign(2, StoredType::float32);
  t.columns = {std::vector<float>(777, kNaN), std::vector<float>(777, 3.5f)};
  TableReadOptions read_options;
  read_options.block_rows = 64;
  TableReader reader(write_table(dir.file("t.h5"), t, 64), read_options);
  const DedupResult result = find_duplicates(ctx, reader);
  EXPECT_EQ(result.duplicates, 776);
  EXPECT_EQ(result.keep.count(), 1);
  EXPECT_TRUE(result.keep.test(0));
}

// Duplicates are equal in the values as stored, not as read into float32: ids past 2^24 and 2^40,
// timestamps 50 s apart near 1.7e9 and uint64s past 2^63 that differ by one round to the same
// float32 and share a hash, but are different rows. True copies are still removed, also where a
// float64 is missing or -0.0 in one row and 0.0 in the other, and where small integers (read
// exactly as float32) are compared. Two-row blocks put copies in other blocks.
TEST_P(DedupOnDevice, RowsEqualOnlyInFloat32AreKept) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  test::TemporaryDirectory dir;
  constexpr std::int64_t k2e7 = 20'000'000, k2p40 = std::int64_t{1} << 40;
  constexpr double kTs = 1.7e9;
  constexpr std::uint64_t k2p63 = std::uint64_t{1} << 63;
  constexpr double kNaN64 = std::numeric_limits<double>::quiet_NaN();
  const std::vector<std::int64_t> ids = {k2e7,  k2e7 + 1,  k2e7,  k2e7, k2e7, k2e7 + 1,
                                         k2p40, k2p40 + 1, k2p40, 3,    3};
  const std::vector<double> times = {kTs,    kTs,    kTs + 50, kTs,  kTs, kTs,
                                     kNaN64, kNaN64, kNaN64,   -0.0, 0.0};
  const std::vector<std::uint64_t> big = {k2p63, k2p63, k2p63, k2p63 + 1, k2p63, k2p63,
                                          7,     7,     7,     7,         7};
  const std::vector<float> amounts(ids.size(), 5.0f);
  const std::vector<bool> expected = {true, true, true,  true, false, false,
                                      true, true, false, true, false};
  const fs::path path = dir.file("wide.h5");
  {
    ColumnarWriter writer(path,
                          {{"id", StoredType::int64},
                           {"ts", StoredType::float64},
                           {"big", StoredType::uint64},
                           {"amount", StoredType::float32}},
                          ColumnarWriteOptions{2, 1});
    writer.append_integers(0, ids);
    writer.append_numeric(1, times);
    writer.append_integers(2, big);
    writer.append_numeric(3, amounts);
    writer.close();
  }
  TableReadOptions read_options;
  read_options.block_rows = 2;
  TableReader reader(path, read_options);
  {  // the premise: as float32 these rows do collapse
    const std::vector<float> values = read_all(reader);
    EXPECT_EQ(reference_dedup(values, reader.rows(), 4).duplicates, 8);
  }
  for (std::uint64_t mask : {0x0ULL, ~0x0ULL}) {
    SCOPED_TRACE("mask " + std::to_string(mask));
    const DedupResult result = find_duplicates(ctx, reader, DedupOptions{mask});
    expect_keep_matches(result.keep, expected);
    EXPECT_EQ(result.duplicates, 4);
    // Kept rows that share a hash with an earlier kept row: rows 1, 2, 3 (with row 0) and 7 (with
    // row 6) in float32; every kept row after the first when all hashes are equal.
    EXPECT_EQ(result.hash_collisions, mask == 0 ? 6 : 4);
  }
}

// The synthetic generator plants exact copies of earlier rows (missing values and label included)
// and counts them; its fresh rows are continuous draws that never repeat. Both layouts: the matrix
// layout's label is a separate dataset, and must take part.
TEST_P(DedupOnDevice, FindsTheDuplicatesLatheSynthPlanted) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  test::TemporaryDirectory dir;
  for (Layout layout : {Layout::columnar, Layout::matrix}) {
    SynthOptions options;
    options.rows = 20000;
    options.features = 4;
    options.categorical = 2;
    options.missing_rate = 0.2;
    options.duplicate_rate = 0.1;
    options.layout = layout;
    options.chunk_rows = 1000;
    options.progress = false;
    const fs::path path = dir.file(std::string("s_") + layout_name(layout) + ".h5");
    const SynthReport report = write_synthetic(path, options);
    ASSERT_GT(report.duplicate_rows, 1000);
    TableReadOptions read_options;
    read_options.block_rows = 3000;
    TableReader reader(path, read_options);
    const DedupResult result = find_duplicates(ctx, reader);
    EXPECT_EQ(result.duplicates, report.duplicate_rows) << layout_name(layout);
    EXPECT_EQ(result.hash_collisions, 0);
    EXPECT_EQ(result.keep.count(), options.rows - report.duplicate_rows);
  }
}

LATHE_INSTANTIATE_FOR_DEVICES(DedupOnDevice);

}  // namespace
}  // namespace lathe
