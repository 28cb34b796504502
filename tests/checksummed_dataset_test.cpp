// write_checksummed's large tables are filtered by Lathe (shuffle, libdeflate, Fletcher32) and
// written as a raw chunk: HDF5's own filters must read them back, checksum included.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <string>
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

}  // namespace
}  // namespace lathe
