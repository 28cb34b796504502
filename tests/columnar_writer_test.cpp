// ColumnarWriter: it makes whole chunks itself (with compression filtered: shuffle, libdeflate) and
// hands them to H5Dwrite_chunk; these tests read the files back through HDF5's own filters and
// require every value, bit for bit, to be what plain H5Dwrite of the whole column stores.
#include "io/columnar_writer.h"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "io/hdf5_handle.h"
#include "tests/temp_dir.h"

namespace lathe {
namespace {

constexpr std::int64_t kRows = 1000;

struct Columns {
  std::vector<double> f64_from_double, f32_from_double;
  std::vector<float> f64_from_float, f32_from_float;
  std::vector<std::int32_t> codes;
  std::vector<std::int64_t> i64;
  std::vector<std::uint64_t> u64;
};

Columns make_columns() {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(0.0, 1e3);
  Columns c;
  for (std::int64_t r = 0; r < kRows; ++r) {
    double v = normal(rng);
    if (r % 97 == 3) v = std::numeric_limits<double>::quiet_NaN();
    if (r == 10) v = std::numeric_limits<double>::infinity();
    if (r == 11) v = -0.0;
    if (r == 12) v = 1e300;  // beyond float's range: converted as HDF5 converts it
    if (r == 13) v = 4.9e-324;
    c.f64_from_double.push_back(v);
    c.f32_from_double.push_back(v);
    c.f64_from_float.push_back(static_cast<float>(v * 0.5));
    c.f32_from_float.push_back(static_cast<float>(v * 0.25));
    c.codes.push_back(r % 11 == 0 ? -1 : static_cast<std::int32_t>(rng() % 40));
    c.i64.push_back(r == 5 ? std::numeric_limits<std::int64_t>::min() : static_cast<std::int64_t>(rng()));
    c.u64.push_back(r == 6 ? std::numeric_limits<std::uint64_t>::max() : rng());
  }
  return c;
}

std::vector<ColumnSpec> specs() {
  return {{"f64d", StoredType::float64},         {"f32d", StoredType::float32},
          {"f64f", StoredType::float64},         {"f32f", StoredType::float32},
          {"codes", StoredType::categorical_codes}, {"i64", StoredType::int64},
          {"u64", StoredType::uint64}};
}

// Appends every column in blocks of irregular sizes, so chunks fill across appends.
void write_table(const std::filesystem::path& path, int level, std::int64_t chunk_rows) {
  const Columns c = make_columns();
  ColumnarWriter writer(path, specs(), {.chunk_rows = chunk_rows, .deflate_level = level});
  const std::int64_t sizes[] = {1, 6, 7, 13, 100, 3, 250, 64};
  std::int64_t at = 0;
  for (int k = 0; at < kRows; ++k) {
    const std::size_t n = static_cast<std::size_t>(std::min(sizes[k % 8], kRows - at));
    const std::size_t a = static_cast<std::size_t>(at);
    writer.append_numeric(0, std::span<const double>(c.f64_from_double.data() + a, n));
    writer.append_numeric(1, std::span<const double>(c.f32_from_double.data() + a, n));
    writer.append_numeric(2, std::span<const float>(c.f64_from_float.data() + a, n));
    writer.append_numeric(3, std::span<const float>(c.f32_from_float.data() + a, n));
    writer.append_codes(4, std::span<const std::int32_t>(c.codes.data() + a, n));
    writer.append_integers(5, std::span<const std::int64_t>(c.i64.data() + a, n));
    writer.append_integers(6, std::span<const std::uint64_t>(c.u64.data() + a, n));
    at += static_cast<std::int64_t>(n);
  }
  EXPECT_EQ(writer.rows(0), kRows);
  writer.set_categories(4, std::vector<std::string>(40, "x"));
  writer.close();
}

// A dataset's stored bytes, as HDF5 reads them (through its own filters) in the file's type.
std::vector<unsigned char> stored_bytes(const std::filesystem::path& path, const char* name,
                                        int* filters = nullptr) {
  h5::H5Handle file = h5::file_handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  h5::H5Handle dataset = h5::dataset_handle(H5Dopen2(file.get(), name, H5P_DEFAULT));
  h5::H5Handle space = h5::dataspace_handle(H5Dget_space(dataset.get()));
  hsize_t rows = 0;
  H5Sget_simple_extent_dims(space.get(), &rows, nullptr);
  EXPECT_EQ(rows, static_cast<hsize_t>(kRows)) << name;
  h5::H5Handle type = h5::datatype_handle(H5Dget_type(dataset.get()));
  std::vector<unsigned char> bytes(rows * H5Tget_size(type.get()));
  EXPECT_GE(H5Dread(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()), 0) << name;
  if (filters) {
    h5::H5Handle dcpl = h5::plist_handle(H5Dget_create_plist(dataset.get()));
    *filters = H5Pget_nfilters(dcpl.get());
  }
  return bytes;
}

// Each column written whole with plain H5Dwrite (HDF5 converting the values), unchunked: the
// reference the writer's chunks are held to.
void write_reference(const std::filesystem::path& path) {
  const Columns c = make_columns();
  h5::H5Handle file =
      h5::file_handle(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  ASSERT_TRUE(file);
  const hsize_t rows = kRows;
  h5::H5Handle space = h5::dataspace_handle(H5Screate_simple(1, &rows, nullptr));
  const auto write = [&](const char* name, hid_t file_type, hid_t memory_type, const void* values) {
    h5::H5Handle dataset = h5::dataset_handle(
        H5Dcreate2(file.get(), name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                   H5P_DEFAULT));
    ASSERT_TRUE(dataset) << name;
    EXPECT_GE(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values), 0)
        << name;
  };
  write("f64d", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, c.f64_from_double.data());
  write("f32d", H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, c.f32_from_double.data());
  write("f64f", H5T_IEEE_F64LE, H5T_NATIVE_FLOAT, c.f64_from_float.data());
  write("f32f", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, c.f32_from_float.data());
  write("codes", H5T_STD_I32LE, H5T_NATIVE_INT32, c.codes.data());
  write("i64", H5T_STD_I64LE, H5T_NATIVE_INT64, c.i64.data());
  write("u64", H5T_STD_U64LE, H5T_NATIVE_UINT64, c.u64.data());
}

class ColumnarWriterChunks : public ::testing::TestWithParam<std::int64_t> {};

TEST_P(ColumnarWriterChunks, CompressedChunksReadBackAsTheUncompressedValues) {
  test::TemporaryDirectory dir;
  const std::int64_t chunk_rows = GetParam();
  const auto reference = dir.path() / "reference.h5";
  const auto plain = dir.path() / "plain.h5";
  const auto deflated = dir.path() / "deflated.h5";
  write_reference(reference);
  write_table(plain, 0, chunk_rows);
  write_table(deflated, 4, chunk_rows);
  for (const ColumnSpec& spec : specs()) {
    int plain_filters = -1, deflated_filters = -1;
    const auto expected = stored_bytes(reference, spec.name.c_str());
    const auto got_plain = stored_bytes(plain, spec.name.c_str(), &plain_filters);
    const auto got = stored_bytes(deflated, spec.name.c_str(), &deflated_filters);
    EXPECT_EQ(plain_filters, 0) << spec.name;
    EXPECT_EQ(deflated_filters, 2) << spec.name;  // shuffle, deflate
    ASSERT_EQ(got_plain.size(), expected.size()) << spec.name;
    EXPECT_EQ(std::memcmp(got_plain.data(), expected.data(), got_plain.size()), 0) << spec.name;
    ASSERT_EQ(got.size(), expected.size()) << spec.name;
    EXPECT_EQ(std::memcmp(got.data(), expected.data(), got.size()), 0) << spec.name;
  }
  // And the values themselves: a float64 column holds the doubles given, bit for bit.
  const auto f64 = stored_bytes(deflated, "f64d");
  const Columns c = make_columns();
  EXPECT_EQ(std::memcmp(f64.data(), c.f64_from_double.data(), f64.size()), 0);
}

// A chunk larger than the table (the last, partial chunk only), one that divides it, one that
// does not, and one row per chunk.
INSTANTIATE_TEST_SUITE_P(Sizes, ColumnarWriterChunks, ::testing::Values(4096, 250, 37, 1));

// The chunk rows of dataset `name` and its filter count.
hsize_t chunk_rows_of(const std::filesystem::path& path, const char* name, int* filters) {
  h5::H5Handle file = h5::file_handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  h5::H5Handle dataset = h5::dataset_handle(H5Dopen2(file.get(), name, H5P_DEFAULT));
  h5::H5Handle dcpl = h5::plist_handle(H5Dget_create_plist(dataset.get()));
  hsize_t chunk = 0;
  EXPECT_EQ(H5Pget_chunk(dcpl.get(), 1, &chunk), 1) << name;
  *filters = H5Pget_nfilters(dcpl.get());
  return chunk;
}

// A table's chunks are no larger than the table: 3000 rows in 65536-row chunks allocated 22x the
// values in an uncompressed file (a scores file of 1000 classes: 265 MB for 80 MB).
TEST(ColumnarWriterChunkSize, NoChunkIsLargerThanTheExpectedRows) {
  test::TemporaryDirectory dir;
  const auto path = dir.path() / "small.h5";
  {
    ColumnarWriter writer(path, {{"x", StoredType::float32}}, {.deflate_level = 0, .expected_rows = 3000});
    writer.append_numeric(0, std::vector<float>(3000, 1.5f));
    writer.close();
  }
  int filters = -1;
  EXPECT_EQ(chunk_rows_of(path, "x", &filters), 3000u);
  EXPECT_EQ(filters, 0);
}

// A wide table's chunks are cut so that one of each column fits the writer's staging: 4000 float64
// columns at 65536 rows would stage 2 GB (and did, through HDF5's chunk cache: 256 KB a column), so
// they get 256 MB / 32000 B = 8388 rows, and are still compressed by the writer.
TEST(ColumnarWriterChunkSize, AWideTableGetsShorterChunksAndStaysCompressed) {
  test::TemporaryDirectory dir;
  const auto path = dir.path() / "wide.h5";
  constexpr int kColumns = 4000;
  std::vector<ColumnSpec> columns;
  for (int c = 0; c < kColumns; ++c) columns.push_back({"c" + std::to_string(c), StoredType::float64});
  {
    ColumnarWriter writer(path, columns, {.deflate_level = 1});
    for (int c = 0; c < kColumns; ++c) writer.append_numeric(static_cast<std::size_t>(c), std::vector<double>(10, c));
    writer.close();
  }
  int filters = -1;
  const hsize_t chunk = chunk_rows_of(path, "c3999", &filters);
  EXPECT_EQ(chunk, static_cast<hsize_t>((std::size_t{256} << 20) / (kColumns * 8)));
  EXPECT_EQ(filters, 2);  // shuffle, deflate
}

}  // namespace
}  // namespace lathe
