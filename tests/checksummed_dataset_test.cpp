// write_checksummed's tables and write_checksummed_strings' texts are filtered by Lathe (shuffle,
// libdeflate, Fletcher32) and written as a raw chunk: HDF5's own filters must read them back,
// checksum included. read_checksummed_strings reads and checks such a chunk itself.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "io/hdf5_handle.h"
#include "runtime/error.h"
#include "tests/temp_dir.h"

namespace lathe {
namespace {

using h5::H5Handle;
const std::string kContext = "checksummed test";

// Tables as a model holds them: mostly zeros (hashed crosses) and random weights (an fm's factors),
// in sizes around the compression threshold, so that the deflated chunks have both odd and even
// lengths.
std::vector<std::vector<float>> tables() {
  std::mt19937 random(7);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  std::vector<std::vector<float>> out;
  for (const std::size_t n : {std::size_t{1} << 18, (std::size_t{1} << 18) + 1, std::size_t{300001},
                              std::size_t{524287}}) {
    std::vector<float> sparse(n, 0.0f), dense(n);
    for (std::size_t i = 0; i < n; i += 97) sparse[i] = normal(random);
    for (float& v : dense) v = normal(random);
    out.push_back(std::move(sparse));
    out.push_back(std::move(dense));
  }
  return out;
}

TEST(ChecksummedDataset, LargeTablesReadBackThroughHdf5sFilters) {
  test::TemporaryDirectory dir;
  const std::filesystem::path path = dir.path() / "tables.h5";
  const auto values = tables();
  {
    H5Handle f = h5::file_handle(
        LATHE_H5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), kContext));
    for (std::size_t t = 0; t < values.size(); ++t) {
      h5::write_checksummed(f.get(), ("t" + std::to_string(t)).c_str(), values[t],
                            {values[t].size()}, kContext);
    }
  }
  H5Handle f =
      h5::file_handle(LATHE_H5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), kContext));
  std::set<hsize_t> parities;
  for (std::size_t t = 0; t < values.size(); ++t) {
    const std::string name = "t" + std::to_string(t);
    SCOPED_TRACE(name);
    // HDF5's own read: inflate, unshuffle, and the Fletcher32 check of the stored bytes.
    H5Handle d =
        h5::dataset_handle(LATHE_H5_CHECK(H5Dopen2(f.get(), name.c_str(), H5P_DEFAULT), kContext));
    std::vector<float> back(values[t].size());
    ASSERT_GE(H5Dread(d.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back.data()), 0);
    EXPECT_EQ(std::memcmp(back.data(), values[t].data(), back.size() * sizeof(float)), 0);
    EXPECT_EQ(h5::read_checksummed<float>(f.get(), name.c_str(), values[t].size(), kContext),
              values[t]);
    H5Handle dcpl = h5::plist_handle(LATHE_H5_CHECK(H5Dget_create_plist(d.get()), kContext));
    std::vector<H5Z_filter_t> filters;
    for (int i = 0; i < H5Pget_nfilters(dcpl.get()); ++i) {
      unsigned flags = 0;
      std::size_t n = 0;
      filters.push_back(H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &n, nullptr, 0,
                                       nullptr, nullptr));
    }
    const hsize_t stored = H5Dget_storage_size(d.get());
    if (t % 2 == 0) {  // mostly zeros: deflated
      EXPECT_EQ(filters, (std::vector<H5Z_filter_t>{H5Z_FILTER_SHUFFLE, H5Z_FILTER_DEFLATE,
                                                    H5Z_FILTER_FLETCHER32}));
      EXPECT_LT(stored, values[t].size() * sizeof(float) / 4);
      parities.insert(stored % 2);
    } else {  // random weights: deflate would not pay, only the checksum is added
      EXPECT_EQ(filters, (std::vector<H5Z_filter_t>{H5Z_FILTER_FLETCHER32}));
      EXPECT_EQ(stored, values[t].size() * sizeof(float) + 4);
    }
  }
  // The checksum's odd last byte and its even case were both met by the deflated chunks.
  EXPECT_EQ(parities.size(), 2u);
}

// A table that deflate would shrink by less than half (every other weight zero, as a linear
// model's hashed ids leave about half their buckets unseen) is stored as it is: the saving was a
// third of the bytes for the longest part of the save. One with more zeros is still deflated.
TEST(ChecksummedDataset, DeflateMustHalveATable) {
  std::mt19937 random(11);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  const std::size_t n = std::size_t{1} << 20;
  std::vector<float> half_zeros(n, 0.0f), mostly_zeros(n, 0.0f);
  for (std::size_t i = 0; i < n; i += 2) half_zeros[i] = normal(random);
  for (std::size_t i = 0; i < n; i += 5) mostly_zeros[i] = normal(random);
  EXPECT_FALSE(h5::checksummed_chunk(half_zeros).deflated);
  const h5::ChecksummedChunk deflated = h5::checksummed_chunk(mostly_zeros);
  EXPECT_TRUE(deflated.deflated);
  EXPECT_LE(deflated.bytes.size() * 2, n * sizeof(float));
}

// A chunk written by its value count alone (the values let go once it was made) reads back as the
// values, through HDF5's filters and read_checksummed, deflated or not; a count that is not the
// shape's is refused.
TEST(ChecksummedDataset, AChunkWrittenWithoutItsValuesReadsBackAsThem) {
  test::TemporaryDirectory dir;
  const std::filesystem::path path = dir.path() / "chunk_only.h5";
  std::vector<std::int64_t> counts(300000, 1), noise(300000);
  for (std::size_t i = 0; i < counts.size(); i += 7) counts[i] = static_cast<std::int64_t>(i);
  std::mt19937_64 random(3);
  for (auto& v : noise) v = static_cast<std::int64_t>(random());
  {
    H5Handle f = h5::file_handle(
        LATHE_H5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), kContext));
    const h5::ChecksummedChunk a = h5::checksummed_chunk(counts), b = h5::checksummed_chunk(noise);
    EXPECT_TRUE(a.deflated);
    EXPECT_FALSE(b.deflated);
    h5::write_checksummed_chunk<std::int64_t>(f.get(), "counts", counts.size(), {counts.size()}, kContext, a);
    h5::write_checksummed_chunk<std::int64_t>(f.get(), "noise", noise.size(), {noise.size()}, kContext, b);
    EXPECT_THROW(h5::write_checksummed_chunk<std::int64_t>(f.get(), "short", counts.size() - 1,
                                                           {counts.size() - 1}, kContext, b),
                 Error);
  }
  H5Handle f =
      h5::file_handle(LATHE_H5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), kContext));
  EXPECT_EQ(h5::read_checksummed<std::int64_t>(f.get(), "counts", counts.size(), kContext), counts);
  EXPECT_EQ(h5::read_checksummed<std::int64_t>(f.get(), "noise", noise.size(), kContext), noise);
  H5Handle d = h5::dataset_handle(LATHE_H5_CHECK(H5Dopen2(f.get(), "counts", H5P_DEFAULT), kContext));
  std::vector<std::int64_t> back(counts.size());
  ASSERT_GE(H5Dread(d.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, back.data()), 0);
  EXPECT_EQ(back, counts);
}

// A byte changed in a stored chunk fails the read: the checksum covers what Lathe wrote.
TEST(ChecksummedDataset, ADamagedChunkFailsItsChecksum) {
  test::TemporaryDirectory dir;
  const std::filesystem::path path = dir.path() / "damaged.h5";
  const auto values = tables();
  {
    H5Handle f = h5::file_handle(
        LATHE_H5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), kContext));
    h5::write_checksummed(f.get(), "t", values[0], {values[0].size()}, kContext);
  }
  {
    H5Handle f =
        h5::file_handle(LATHE_H5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), kContext));
    H5Handle d = h5::dataset_handle(LATHE_H5_CHECK(H5Dopen2(f.get(), "t", H5P_DEFAULT), kContext));
    const hsize_t origin[1] = {0};
    hsize_t bytes = 0;
    LATHE_H5_CHECK(H5Dget_chunk_storage_size(d.get(), origin, &bytes), kContext);
    std::vector<unsigned char> chunk(bytes);
    std::uint32_t mask = 0;
    LATHE_H5_CHECK(H5Dread_chunk(d.get(), H5P_DEFAULT, origin, &mask, chunk.data()), kContext);
    chunk[chunk.size() / 2] ^= 0x10;
    LATHE_H5_CHECK(H5Dwrite_chunk(d.get(), H5P_DEFAULT, mask, origin, chunk.size(), chunk.data()),
                   kContext);
  }
  H5Handle f =
      h5::file_handle(LATHE_H5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), kContext));
  EXPECT_THROW(h5::read_checksummed<float>(f.get(), "t", values[0].size(), kContext), InputError);
}

// The filters of dataset `d`, in order.
std::vector<H5Z_filter_t> filters_of(hid_t d) {
  H5Handle dcpl = h5::plist_handle(LATHE_H5_CHECK(H5Dget_create_plist(d), kContext));
  std::vector<H5Z_filter_t> filters;
  for (int i = 0; i < H5Pget_nfilters(dcpl.get()); ++i) {
    unsigned flags = 0;
    std::size_t n = 0;
    filters.push_back(H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &n, nullptr, 0,
                                     nullptr, nullptr));
  }
  return filters;
}

// The one stored chunk of dataset `name` (at the origin of its `rank` dimensions), as it is in the
// file.
std::vector<unsigned char> stored_chunk(hid_t file, const char* name, int rank = 1) {
  H5Handle d = h5::dataset_handle(LATHE_H5_CHECK(H5Dopen2(file, name, H5P_DEFAULT), kContext));
  const std::vector<hsize_t> origin(static_cast<std::size_t>(rank), 0);
  hsize_t bytes = 0;
  LATHE_H5_CHECK(H5Dget_chunk_storage_size(d.get(), origin.data(), &bytes), kContext);
  std::vector<unsigned char> chunk(bytes);
  std::uint32_t mask = 0;
  LATHE_H5_CHECK(H5Dread_chunk(d.get(), H5P_DEFAULT, origin.data(), &mask, chunk.data()), kContext);
  EXPECT_EQ(mask, 0u);
  return chunk;
}

// Stores `chunk` as the one chunk of the one-dimensional dataset `name` in the file at `path`, its
// filters marked as applied.
void replace_stored_chunk(const std::filesystem::path& path, const char* name,
                          const std::vector<unsigned char>& chunk) {
  H5Handle f =
      h5::file_handle(LATHE_H5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), kContext));
  H5Handle d = h5::dataset_handle(LATHE_H5_CHECK(H5Dopen2(f.get(), name, H5P_DEFAULT), kContext));
  const hsize_t origin[1] = {0};
  LATHE_H5_CHECK(H5Dwrite_chunk(d.get(), H5P_DEFAULT, 0, origin, chunk.size(), chunk.data()),
                 kContext);
}

H5Handle create_file(const std::filesystem::path& path) {
  return h5::file_handle(
      LATHE_H5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), kContext));
}

H5Handle open_file(const std::filesystem::path& path) {
  return h5::file_handle(
      LATHE_H5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), kContext));
}

// Every value type write_checksummed takes: chunks made beforehand (checksummed_chunk, as
// save_model makes them on other threads) or by write_checksummed itself are stored as they are
// and read back through HDF5's own filters: raw and deflated, empty, one value, odd counts.
template <typename T>
class ChecksummedChunkTest : public ::testing::Test {};
using ValueTypes = ::testing::Types<float, double, long, long long>;
TYPED_TEST_SUITE(ChecksummedChunkTest, ValueTypes);

TYPED_TEST(ChecksummedChunkTest, ChunksMadeBeforehandReadBackThroughHdf5sFilters) {
  using T = TypeParam;
  test::TemporaryDirectory dir;
  const std::filesystem::path path = dir.path() / "chunks.h5";
  std::mt19937_64 random(11);
  const std::size_t large = h5::kCompressedDatasetBytes / sizeof(T);
  std::vector<std::vector<T>> values;
  std::vector<bool> sparse;
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, large + 1, large + 2,
                              large + 3, large + 5, large + 8, 3 * large + 1}) {
    for (const bool mostly_zeros : {true, false}) {
      // Mostly zeros (deflated when large), or random bits (stored raw: deflate does not pay).
      std::vector<T> v(n, T{0});
      for (std::size_t i = 0; i < n; i += mostly_zeros ? 61 : 1) {
        const std::uint64_t bits = random();
        std::memcpy(&v[i], &bits, sizeof(T));
      }
      values.push_back(std::move(v));
      sparse.push_back(mostly_zeros);
    }
  }
  std::vector<h5::ChecksummedChunk> chunks;
  {
    H5Handle f = create_file(path);
    for (std::size_t t = 0; t < values.size(); ++t) {
      chunks.push_back(h5::checksummed_chunk(values[t]));
      const std::string name = "t" + std::to_string(t);
      // Two columns where the count is even: a 2-D dataset's one chunk is at its origin too.
      const std::vector<hsize_t> shape = values[t].size() % 2 == 0 && !values[t].empty()
                                             ? std::vector<hsize_t>{values[t].size() / 2, 2}
                                             : std::vector<hsize_t>{values[t].size()};
      h5::write_checksummed(f.get(), name.c_str(), values[t], shape, kContext, &chunks[t]);
      h5::write_checksummed(f.get(), (name + "_self").c_str(), values[t], shape, kContext);
    }
  }
  H5Handle f = open_file(path);
  std::set<std::size_t> parities;
  bool raw_large = false;
  for (std::size_t t = 0; t < values.size(); ++t) {
    for (const std::string& name : {"t" + std::to_string(t), "t" + std::to_string(t) + "_self"}) {
      SCOPED_TRACE(name);
      H5Handle d = h5::dataset_handle(
          LATHE_H5_CHECK(H5Dopen2(f.get(), name.c_str(), H5P_DEFAULT), kContext));
      EXPECT_EQ(filters_of(d.get()),
                chunks[t].deflated
                    ? (std::vector<H5Z_filter_t>{H5Z_FILTER_SHUFFLE, H5Z_FILTER_DEFLATE,
                                                 H5Z_FILTER_FLETCHER32})
                    : (std::vector<H5Z_filter_t>{H5Z_FILTER_FLETCHER32}));
      H5Handle space = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(d.get()), kContext));
      ASSERT_EQ(H5Sget_simple_extent_npoints(space.get()), static_cast<hssize_t>(values[t].size()));
      if (values[t].empty()) {
        EXPECT_EQ(H5Dget_storage_size(d.get()), 0u);
        continue;
      }
      // HDF5's own read: the checksum checked, inflated and unshuffled where deflated. (Compared
      // as bytes: random bits make NaNs.)
      const std::size_t bytes = values[t].size() * sizeof(T);
      std::vector<T> back(values[t].size());
      ASSERT_GE(
          H5Dread(d.get(), h5::H5Types<T>::memory(), H5S_ALL, H5S_ALL, H5P_DEFAULT, back.data()),
          0);
      EXPECT_EQ(std::memcmp(back.data(), values[t].data(), bytes), 0);
      back = h5::read_checksummed<T>(f.get(), name.c_str(), values[t].size(), kContext);
      EXPECT_EQ(std::memcmp(back.data(), values[t].data(), bytes), 0);
      // What the file stores is the chunk given, or the same made by write_checksummed itself.
      EXPECT_EQ(stored_chunk(f.get(), name.c_str(), H5Sget_simple_extent_ndims(space.get())),
                chunks[t].bytes);
    }
    EXPECT_EQ(chunks[t].deflated, values[t].size() >= large && sparse[t]);
    if (chunks[t].deflated) parities.insert(chunks[t].bytes.size() % 2);
    if (values[t].size() >= large && !chunks[t].deflated) raw_large = true;
  }
  EXPECT_TRUE(raw_large);
  EXPECT_EQ(parities.size(), 2u) << "the deflated chunks' lengths were all odd or all even";
}

// A chunk stored raw is byte for byte what HDF5's own filter pipeline stores (its Fletcher32 after
// the values): what Lathe wrote before with H5Dwrite.
TYPED_TEST(ChecksummedChunkTest, ARawChunkIsWhatHdf5Stores) {
  using T = TypeParam;
  test::TemporaryDirectory dir;
  const std::filesystem::path path = dir.path() / "raw.h5";
  for (const std::size_t n : {std::size_t{1}, std::size_t{1001}, std::size_t{4096}}) {
    SCOPED_TRACE(n);
    std::vector<T> values(n);
    for (std::size_t i = 0; i < n; ++i) {
      values[i] = static_cast<T>(static_cast<long long>(i * 37 % 1013) - 500);
    }
    {
      H5Handle f = create_file(path);
      const hsize_t size = n;
      H5Handle space = h5::dataspace_handle(H5Screate_simple(1, &size, nullptr));
      H5Handle dcpl = h5::plist_handle(H5Pcreate(H5P_DATASET_CREATE));
      ASSERT_GE(H5Pset_chunk(dcpl.get(), 1, &size), 0);
      ASSERT_GE(H5Pset_fletcher32(dcpl.get()), 0);
      H5Handle d =
          h5::dataset_handle(H5Dcreate2(f.get(), "hdf5", h5::H5Types<T>::file(), space.get(),
                                        H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
      ASSERT_GE(
          H5Dwrite(d.get(), h5::H5Types<T>::memory(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
          0);
    }
    const h5::ChecksummedChunk chunk = h5::checksummed_chunk(values);
    EXPECT_FALSE(chunk.deflated);
    H5Handle f = open_file(path);
    EXPECT_EQ(stored_chunk(f.get(), "hdf5"), chunk.bytes);
  }
}

// `values` as HDF5's H5Dwrite stores them in the way of write_checksummed_strings (what earlier
// lathe binaries wrote): fixed-length strings padded with `pad`, as long as the longest, in one
// chunk. `dcpl`: the dataset's filters and chunks (then the dataset may grow, as h5py's
// resizable ones: chunks may be larger than it); by default one chunk with Fletcher32.
void write_strings_through_hdf5(hid_t file, const char* name,
                                const std::vector<std::string>& values, hid_t dcpl = H5P_DEFAULT,
                                H5T_str_t pad = H5T_STR_NULLPAD) {
  std::size_t size = 1;
  for (const std::string& v : values) size = std::max(size, v.size());
  std::vector<char> buffer(std::max<std::size_t>(values.size(), 1) * size,
                           pad == H5T_STR_SPACEPAD ? ' ' : '\0');
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::memcpy(buffer.data() + i * size, values[i].data(), values[i].size());
  }
  H5Handle type = h5::datatype_handle(H5Tcopy(H5T_C_S1));
  ASSERT_GE(H5Tset_size(type.get(), size), 0);
  ASSERT_GE(H5Tset_strpad(type.get(), pad), 0);
  ASSERT_GE(H5Tset_cset(type.get(), H5T_CSET_UTF8), 0);
  const hsize_t n = values.size(), unlimited = H5S_UNLIMITED;
  H5Handle space =
      h5::dataspace_handle(H5Screate_simple(1, &n, dcpl == H5P_DEFAULT ? nullptr : &unlimited));
  H5Handle fletcher = h5::plist_handle(H5Pcreate(H5P_DATASET_CREATE));
  if (dcpl == H5P_DEFAULT) {
    const hsize_t chunk = std::max<hsize_t>(n, 1);
    ASSERT_GE(H5Pset_chunk(fletcher.get(), 1, &chunk), 0);
    ASSERT_GE(H5Pset_fletcher32(fletcher.get()), 0);
    dcpl = fletcher.get();
  }
  H5Handle d = h5::dataset_handle(
      H5Dcreate2(file, name, type.get(), space.get(), H5P_DEFAULT, dcpl, H5P_DEFAULT));
  ASSERT_GE(d.get(), 0);
  if (n > 0) {
    ASSERT_GE(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()), 0);
  }
}

// Texts as a model file holds them: empty, odd and even lengths, a NUL inside, a long one.
std::vector<std::string> texts() {
  std::string long_text;
  for (int i = 0; long_text.size() < 200001; ++i) long_text += "label" + std::to_string(i) + ",";
  // Bytes of 0xFF: the largest sums Fletcher32 folds, over many runs of 360 words and a last odd byte.
  return {"",        "a", "ab", "caf\xc3\xa9", std::string("nul\0byte", 8), long_text, long_text.substr(1),
          std::string(721, '\xff'), std::string(100001, '\xff')};
}

// What reading a null-padded string stored as `text` gives: the text before its first NUL.
std::string read_as(const std::string& text) { return text.substr(0, text.find('\0')); }

// One string or a list of them is written as its stored chunk, byte for byte what H5Dwrite
// stores, and read back alike by HDF5's own read (as h5py's) and by read_checksummed_strings,
// which reads the chunk itself; so are the datasets H5Dwrite wrote.
TEST(ChecksummedStrings, WrittenAsTheChunkHdf5StoresAndReadBackBothWays) {
  test::TemporaryDirectory dir;
  const std::filesystem::path path = dir.path() / "strings.h5";
  const std::vector<std::string> all = texts();
  std::vector<std::vector<std::string>> lists = {{}, {"x", "yy", ""}, all};
  for (const std::string& text : all) lists.push_back({text});
  {
    H5Handle f = create_file(path);
    for (std::size_t i = 0; i < lists.size(); ++i) {
      const std::string name = "s" + std::to_string(i);
      h5::write_checksummed_strings(f.get(), name.c_str(), lists[i], kContext);
      write_strings_through_hdf5(f.get(), (name + "_hdf5").c_str(), lists[i]);
      if (lists[i].size() == 1) {
        h5::write_checksummed_strings(f.get(), (name + "_moved").c_str(), std::string(lists[i][0]),
                                      kContext);
      }
    }
  }
  H5Handle f = open_file(path);
  for (std::size_t i = 0; i < lists.size(); ++i) {
    std::vector<std::string> expected;
    for (const std::string& text : lists[i]) expected.push_back(read_as(text));
    const std::string name = "s" + std::to_string(i);
    std::vector<std::string> names = {name, name + "_hdf5"};
    if (lists[i].size() == 1) names.push_back(name + "_moved");
    for (const std::string& written : names) {
      SCOPED_TRACE(written);
      H5Handle d = h5::dataset_handle(
          LATHE_H5_CHECK(H5Dopen2(f.get(), written.c_str(), H5P_DEFAULT), kContext));
      EXPECT_EQ(filters_of(d.get()), std::vector<H5Z_filter_t>{H5Z_FILTER_FLETCHER32});
      H5Handle type = h5::datatype_handle(LATHE_H5_CHECK(H5Dget_type(d.get()), kContext));
      std::size_t longest = 1;
      for (const std::string& text : lists[i]) longest = std::max(longest, text.size());
      EXPECT_EQ(H5Tget_size(type.get()), longest);
      EXPECT_EQ(H5Tget_strpad(type.get()), H5T_STR_NULLPAD);
      EXPECT_EQ(H5Tget_cset(type.get()), H5T_CSET_UTF8);
      if (lists[i].empty()) {
        EXPECT_EQ(H5Dget_storage_size(d.get()), 0u);
      } else {
        EXPECT_EQ(stored_chunk(f.get(), written.c_str()),
                  stored_chunk(f.get(), (name + "_hdf5").c_str()));
      }
      EXPECT_EQ(h5::read_string_dataset(d.get(), kContext), expected);
      EXPECT_EQ(h5::read_checksummed_strings(f.get(), written.c_str(), kContext), expected);
    }
  }
}

// A byte changed in a stored text or in its checksum is an InputError naming the dataset, as
// HDF5's own read fails on it; the checksum with the bytes of its 16-bit halves swapped (HDF5
// before 1.6.3 on little-endian hosts) is accepted, as HDF5 accepts it.
TEST(ChecksummedStrings, ADamagedTextFailsItsChecksum) {
  test::TemporaryDirectory dir;
  const std::filesystem::path path = dir.path() / "damaged.h5";
  const std::string text = texts()[5];
  {
    H5Handle f = create_file(path);
    h5::write_checksummed_strings(f.get(), "text", std::string(text), kContext);
  }
  std::vector<unsigned char> pristine;
  {
    H5Handle f = open_file(path);
    pristine = stored_chunk(f.get(), "text");
  }
  ASSERT_EQ(pristine.size(), text.size() + 4);
  const auto read_back = [&](const std::vector<unsigned char>& chunk) {
    replace_stored_chunk(path, "text", chunk);
    H5Handle f = open_file(path);
    H5Handle d =
        h5::dataset_handle(LATHE_H5_CHECK(H5Dopen2(f.get(), "text", H5P_DEFAULT), kContext));
    bool hdf5_reads = true;
    try {
      EXPECT_EQ(h5::read_string_dataset(d.get(), kContext), std::vector<std::string>{text});
    } catch (const Hdf5Error&) {
      hdf5_reads = false;
    }
    try {
      EXPECT_EQ(h5::read_checksummed_strings(f.get(), "text", kContext),
                std::vector<std::string>{text});
      EXPECT_TRUE(hdf5_reads) << "read where HDF5 refuses";
    } catch (const InputError& e) {
      EXPECT_FALSE(hdf5_reads) << "refused where HDF5 reads: " << e.what();
      EXPECT_NE(std::string(e.what()).find("dataset 'text'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("checksum mismatch or damaged file?"), std::string::npos)
          << e.what();
      return false;
    }
    return true;
  };
  EXPECT_TRUE(read_back(pristine));
  for (const std::size_t at :
       {std::size_t{0}, text.size() / 2, text.size() - 1, text.size(), text.size() + 3}) {
    SCOPED_TRACE(at);
    std::vector<unsigned char> damaged = pristine;
    damaged[at] ^= 0x04;
    EXPECT_FALSE(read_back(damaged));
  }
  std::vector<unsigned char> swapped = pristine;
  std::swap(swapped[text.size()], swapped[text.size() + 1]);
  std::swap(swapped[text.size() + 2], swapped[text.size() + 3]);
  ASSERT_NE(swapped, pristine);
  EXPECT_TRUE(read_back(swapped));
}

// read_checksummed_strings reads a dataset of Fletcher32 alone as its stored chunk, whose size must
// be its strings' and the checksum's: a chunk stored longer (with the right checksum of its bytes),
// from which HDF5's own read gives the strings' bytes and drops the rest, is refused.
TEST(ChecksummedStrings, AChunkOfAnotherSizeIsRefused) {
  test::TemporaryDirectory dir;
  const std::filesystem::path path = dir.path() / "longer.h5";
  {
    H5Handle f = create_file(path);
    h5::write_checksummed_strings(f.get(), "text", std::string("some text"), kContext);
    h5::write_checksummed_strings(f.get(), "longer", std::string("some text!!"), kContext);
  }
  std::vector<unsigned char> longer;
  {
    H5Handle f = open_file(path);
    longer = stored_chunk(f.get(), "longer");
  }
  replace_stored_chunk(path, "text", longer);
  H5Handle f = open_file(path);
  H5Handle d = h5::dataset_handle(LATHE_H5_CHECK(H5Dopen2(f.get(), "text", H5P_DEFAULT), kContext));
  EXPECT_EQ(h5::read_string_dataset(d.get(), kContext), std::vector<std::string>{"some text"});
  try {
    h5::read_checksummed_strings(f.get(), "text", kContext);
    ADD_FAILURE() << "a chunk of 15 bytes read as 9 bytes of text";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("15 bytes stored where 13 were written"),
              std::string::npos)
        << e.what();
  }
}

// Datasets of strings with other filters (deflated, as h5py writes with compression="gzip"), or
// chunks of another shape than the dataset's, are read through HDF5's filters; space-padded
// strings lose their padding either way.
TEST(ChecksummedStrings, OtherLayoutsAreReadThroughHdf5) {
  test::TemporaryDirectory dir;
  const std::filesystem::path path = dir.path() / "others.h5";
  const std::vector<std::string> all = texts();
  const std::vector<std::string> few = {"x", "yy", "zzz"};
  {
    H5Handle f = create_file(path);
    for (const bool fletcher : {false, true}) {
      H5Handle dcpl = h5::plist_handle(H5Pcreate(H5P_DATASET_CREATE));
      const hsize_t chunk = all.size();
      ASSERT_GE(H5Pset_chunk(dcpl.get(), 1, &chunk), 0);
      ASSERT_GE(H5Pset_deflate(dcpl.get(), 6), 0);
      if (fletcher) ASSERT_GE(H5Pset_fletcher32(dcpl.get()), 0);
      write_strings_through_hdf5(f.get(), fletcher ? "deflated_checksummed" : "deflated", all,
                                 dcpl.get());
    }
    H5Handle wider = h5::plist_handle(H5Pcreate(H5P_DATASET_CREATE));
    const hsize_t chunk = few.size() + 1;
    ASSERT_GE(H5Pset_chunk(wider.get(), 1, &chunk), 0);
    ASSERT_GE(H5Pset_fletcher32(wider.get()), 0);
    write_strings_through_hdf5(f.get(), "wider_chunk", few, wider.get());
    write_strings_through_hdf5(f.get(), "space_padded", {"a ", "b", "c d  "}, H5P_DEFAULT,
                               H5T_STR_SPACEPAD);
    write_strings_through_hdf5(f.get(), "space_padded_one", {"one  "}, H5P_DEFAULT,
                               H5T_STR_SPACEPAD);
  }
  std::vector<std::string> expected;
  for (const std::string& text : all) expected.push_back(read_as(text));
  H5Handle f = open_file(path);
  EXPECT_EQ(h5::read_checksummed_strings(f.get(), "deflated", kContext), expected);
  EXPECT_EQ(h5::read_checksummed_strings(f.get(), "deflated_checksummed", kContext), expected);
  EXPECT_EQ(h5::read_checksummed_strings(f.get(), "wider_chunk", kContext), few);
  EXPECT_EQ(h5::read_checksummed_strings(f.get(), "space_padded", kContext),
            (std::vector<std::string>{"a", "b", "c d"}));
  EXPECT_EQ(h5::read_checksummed_strings(f.get(), "space_padded_one", kContext),
            std::vector<std::string>{"one"});
}

}  // namespace
}  // namespace lathe
