// Tests of lathe::TableReader over HDF5 files written here with the HDF5 C API. The files are built
// by hand rather than with Lathe's own writers so the reader is checked against the layouts as
// other tools store them: h5py matrices (any element type, byte order, chunking and filter),
// columnar groups, and pandas' format="fixed" frames as PyTables lays them out.
#include "io/table_reader.h"

#include <gtest/gtest.h>
#include <hdf5.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "io/hdf5_handle.h"
#include "io/record_reader.h"
#include "runtime/error.h"
#include "tests/temp_dir.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;
using h5::H5Handle;

// Fixture writes go through the project's checked macro, so a fixture that HDF5 refuses fails the
// test with HDF5's reason instead of producing a file that tests something else.
const std::string kFixture = "test fixture";
#define H5_OK(call) LATHE_H5_CHECK(call, kFixture)

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
// Written into outputs before a read so that an element the reader skips shows up.
constexpr float kPoison = -7777.25f;

template <class T>
hid_t native_type() {
  if constexpr (std::is_same_v<T, std::int8_t>) return H5T_NATIVE_INT8;
  if constexpr (std::is_same_v<T, std::int16_t>) return H5T_NATIVE_INT16;
  if constexpr (std::is_same_v<T, std::int32_t>) return H5T_NATIVE_INT32;
  if constexpr (std::is_same_v<T, std::int64_t>) return H5T_NATIVE_INT64;
  if constexpr (std::is_same_v<T, std::uint8_t>) return H5T_NATIVE_UINT8;
  if constexpr (std::is_same_v<T, std::uint16_t>) return H5T_NATIVE_UINT16;
  if constexpr (std::is_same_v<T, std::uint32_t>) return H5T_NATIVE_UINT32;
  if constexpr (std::is_same_v<T, std::uint64_t>) return H5T_NATIVE_UINT64;
  if constexpr (std::is_same_v<T, float>) return H5T_NATIVE_FLOAT;
  if constexpr (std::is_same_v<T, double>) return H5T_NATIVE_DOUBLE;
}

// How a test dataset is stored.
struct Storage {
  std::vector<hsize_t> chunk;  // empty: contiguous
  bool shuffle = false;
  int deflate = -1;                  // -1: no deflate
  H5Z_filter_t optional_filter = 0;  // a third-party filter id, added as H5Z_FLAG_OPTIONAL
};

H5Handle create_file(const fs::path& path, bool track_creation_order = false) {
  H5Handle fcpl = h5::plist_handle(H5_OK(H5Pcreate(H5P_FILE_CREATE)));
  if (track_creation_order) {
    H5_OK(H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED));
  }
  return h5::file_handle(H5_OK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT)));
}

H5Handle create_group(hid_t loc, const std::string& name) {
  return h5::group_handle(
      H5_OK(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
}

H5Handle create_dataset(hid_t loc, const std::string& name, hid_t file_type,
                        const std::vector<hsize_t>& dims, const Storage& storage = {}) {
  H5Handle space = h5::dataspace_handle(
      H5_OK(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr)));
  H5Handle dcpl = h5::plist_handle(H5_OK(H5Pcreate(H5P_DATASET_CREATE)));
  if (!storage.chunk.empty()) {
    H5_OK(H5Pset_chunk(dcpl.get(), static_cast<int>(storage.chunk.size()), storage.chunk.data()));
    if (storage.shuffle) H5_OK(H5Pset_shuffle(dcpl.get()));
    if (storage.deflate >= 0)
      H5_OK(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(storage.deflate)));
    if (storage.optional_filter != 0) {
      H5_OK(H5Pset_filter(dcpl.get(), storage.optional_filter, H5Z_FLAG_OPTIONAL, 0, nullptr));
    }
  }
  return h5::dataset_handle(H5_OK(
      H5Dcreate2(loc, name.c_str(), file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT)));
}

// Writes `values` (row-major, in the memory type `mem_type`) to a new dataset of `file_type`; HDF5
// converts to the file type, byte order included.
template <class T>
void write_dataset(hid_t loc, const std::string& name, hid_t file_type,
                   const std::vector<hsize_t>& dims, const std::vector<T>& values,
                   const Storage& storage = {}, hid_t mem_type = native_type<T>()) {
  hsize_t n = 1;
  for (hsize_t d : dims) n *= d;
  if (n != values.size()) throw std::logic_error("fixture: values do not fill the dataset " + name);
  H5Handle d = create_dataset(loc, name, file_type, dims, storage);
  if (n > 0) H5_OK(H5Dwrite(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()));
}

// A C string type: variable length when `fixed_size` is 0, else NUL-padded like numpy's 'S' dtype.
H5Handle string_type(std::size_t fixed_size, H5T_cset_t cset) {
  H5Handle type = h5::datatype_handle(H5_OK(H5Tcopy(H5T_C_S1)));
  H5_OK(H5Tset_size(type.get(), fixed_size == 0 ? H5T_VARIABLE : fixed_size));
  if (fixed_size != 0) H5_OK(H5Tset_strpad(type.get(), H5T_STR_NULLPAD));
  H5_OK(H5Tset_cset(type.get(), cset));
  return type;
}

std::size_t longest(const std::vector<std::string>& values) {
  std::size_t size = 1;
  for (const auto& v : values) size = std::max(size, v.size());
  return size;
}

std::vector<char> fixed_buffer(const std::vector<std::string>& values, std::size_t size) {
  std::vector<char> buffer(values.size() * size, '\0');
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::memcpy(buffer.data() + i * size, values[i].data(), values[i].size());
  }
  return buffer;
}

enum class Strings { fixed, variable };

// An attribute holding strings: a 1-D array, or a scalar when `scalar` (one value).
void write_strings_attribute(hid_t object, const char* name, const std::vector<std::string>& values,
                             Strings kind, H5T_cset_t cset = H5T_CSET_ASCII, bool scalar = false) {
  const std::size_t size = kind == Strings::fixed ? longest(values) : 0;
  H5Handle type = string_type(size, cset);
  const hsize_t n = values.size();
  H5Handle space = h5::dataspace_handle(
      H5_OK(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr)));
  H5Handle attr = h5::attribute_handle(
      H5_OK(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT)));
  if (kind == Strings::fixed) {
    const std::vector<char> buffer = fixed_buffer(values, size);
    H5_OK(H5Awrite(attr.get(), type.get(), buffer.data()));
  } else {
    std::vector<const char*> ptrs;
    for (const auto& v : values) ptrs.push_back(v.c_str());
    H5_OK(H5Awrite(attr.get(), type.get(), ptrs.data()));
  }
}

// A 1-D dataset of fixed-length strings, as PyTables stores a pandas Index of strings.
void write_strings_dataset(hid_t loc, const std::string& name,
                           const std::vector<std::string>& values) {
  const std::size_t size = longest(values);
  H5Handle type = string_type(size, H5T_CSET_ASCII);
  H5Handle d = create_dataset(loc, name, type.get(), {values.size()});
  const std::vector<char> buffer = fixed_buffer(values, size);
  H5_OK(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()));
}

std::vector<float> read_all(TableReader& reader) {
  std::vector<float> out(static_cast<std::size_t>(reader.rows()) * reader.columns().size(),
                         kPoison);
  reader.read_block(0, reader.rows(), out);
  return out;
}

bool same_float(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

// Exact comparison (NaN equals NaN, -0 differs from +0), reporting the first few differences.
void expect_same_floats(const std::vector<float>& actual, const std::vector<float>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  int reported = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    if (!same_float(actual[i], expected[i]) && reported++ < 8) {
      ADD_FAILURE() << "element " << i << ": read " << actual[i] << ", wrote " << expected[i];
    }
  }
}

std::vector<std::string> column_names(const TableReader& reader) {
  std::vector<std::string> names;
  for (const auto& c : reader.columns()) names.push_back(c.name);
  return names;
}

// Opens `path` expecting InputError and returns its message (with a test failure when another
// exception or none is thrown).
std::string input_error(const fs::path& path, const TableReadOptions& options = {}) {
  try {
    TableReader reader(path, options);
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected lathe::InputError, got: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected lathe::InputError opening " << path;
  return {};
}

void expect_mentions(const std::string& message, std::initializer_list<std::string> parts) {
  for (const auto& part : parts) {
    EXPECT_NE(message.find(part), std::string::npos)
        << "'" << part << "' missing from: " << message;
  }
}

// Each test gets its own folder, so tests can run in parallel processes (ctest -j) without sharing
// files.
class ReaderFiles : public testing::Test {
 protected:
  fs::path file(const std::string& name) const { return temp_.file(name); }

  test::TemporaryDirectory temp_;
  const fs::path dir_ = temp_.path();
};

class TableReaderMatrix : public ReaderFiles {};
class TableReaderColumnar : public ReaderFiles {};
class TableReaderBlocks : public ReaderFiles {};
class TableReaderPandas : public ReaderFiles {};
class TableReaderBadInput : public ReaderFiles {};

// ---- matrix layout
// -------------------------------------------------------------------------------

// Writes X (rows x 2: `values`, then `values` reversed) with `file_type`, contiguous and chunked
// with shuffle + deflate, and checks every element reads back as `expected` (same order as
// `values`).
template <class T>
void check_element_type(const fs::path& dir, const std::string& tag, hid_t file_type,
                        const std::vector<T>& values, const std::vector<float>& expected,
                        const std::string& dtype, const std::string& byte_order,
                        hid_t mem_type = native_type<T>()) {
  const hsize_t rows = values.size();
  for (const bool chunked : {false, true}) {
    SCOPED_TRACE(tag + (chunked ? " chunked" : " contiguous"));
    const fs::path path = dir / (tag + (chunked ? "_chunked.h5" : "_contiguous.h5"));
    std::vector<T> x(rows * 2);
    for (hsize_t r = 0; r < rows; ++r) {
      x[2 * r] = values[r];
      x[2 * r + 1] = values[rows - 1 - r];
    }
    // A chunk of 3 rows x 1 column leaves a partial chunk at the end and splits the row.
    const Storage storage =
        chunked ? Storage{.chunk = {3, 1}, .shuffle = true, .deflate = 6} : Storage{};
    {
      H5Handle f = create_file(path);
      write_dataset(f.get(), "X", file_type, {rows, 2}, x, storage, mem_type);
    }
    TableReader reader(path);
    EXPECT_EQ(reader.layout(), Layout::matrix);
    ASSERT_EQ(reader.rows(), static_cast<std::int64_t>(rows));
    ASSERT_EQ(reader.columns().size(), 2u);
    EXPECT_EQ(column_names(reader), (std::vector<std::string>{"f0", "f1"}));
    for (const auto& c : reader.columns()) {
      EXPECT_EQ(c.type, ColumnType::numeric);
      EXPECT_EQ(c.dtype, dtype);
      EXPECT_EQ(c.dataset, "/X");
    }
    ASSERT_EQ(reader.storage().size(), 1u);
    const DatasetStorage& st = reader.storage()[0];
    EXPECT_EQ(st.dataset, "/X");
    EXPECT_EQ(st.dtype, dtype);
    EXPECT_EQ(st.byte_order, byte_order);
    EXPECT_EQ(st.shape, (std::vector<std::int64_t>{static_cast<std::int64_t>(rows), 2}));
    const std::vector<std::int64_t> chunk =
        chunked ? std::vector<std::int64_t>{3, 1} : std::vector<std::int64_t>{};
    const std::vector<std::string> filters =
        chunked ? std::vector<std::string>{"shuffle", "deflate"} : std::vector<std::string>{};
    EXPECT_EQ(st.chunk, chunk);
    EXPECT_EQ(st.filters, filters);
    std::vector<float> want(expected);
    want.insert(want.end(), expected.rbegin(), expected.rend());
    expect_same_floats(read_all(reader), want);
  }
}

// Plain numeric types: the expected value is the C++ conversion to float. The values are chosen to
// be exact in float32 (extremes included), so HDF5's hard and soft (byte-swapping) conversions must
// agree with it exactly.
template <class T>
void check_numeric_type(const fs::path& dir, hid_t le_type, hid_t be_type,
                        const std::vector<T>& values, const std::string& dtype) {
  std::vector<float> expected;
  for (T v : values) expected.push_back(static_cast<float>(v));
  check_element_type(dir, dtype + "_le", le_type, values, expected, dtype, "little");
  check_element_type(dir, dtype + "_be", be_type, values, expected, dtype, "big");
}

TEST_F(TableReaderMatrix, ReadsSignedIntegersOfEverySizeInBothByteOrders) {
  check_numeric_type<std::int8_t>(dir_, H5T_STD_I8LE, H5T_STD_I8BE, {-128, -1, 0, 1, 42, 127, 5},
                                  "int8");
  check_numeric_type<std::int16_t>(dir_, H5T_STD_I16LE, H5T_STD_I16BE,
                                   {-32768, -300, 0, 7, 32767, 1}, "int16");
  check_numeric_type<std::int32_t>(
      dir_, H5T_STD_I32LE, H5T_STD_I32BE,
      {std::numeric_limits<std::int32_t>::min(), -16777216, -1, 0, 1, 1 << 30, 99}, "int32");
  check_numeric_type<std::int64_t>(
      dir_, H5T_STD_I64LE, H5T_STD_I64BE,
      {std::numeric_limits<std::int64_t>::min(), -(std::int64_t{1} << 53), -1, 0, 3,
       std::int64_t{0x7FFFFF8000000000}},
      "int64");
}

TEST_F(TableReaderMatrix, ReadsUnsignedIntegersOfEverySizeInBothByteOrders) {
  check_numeric_type<std::uint8_t>(dir_, H5T_STD_U8LE, H5T_STD_U8BE, {0, 1, 128, 255, 17}, "uint8");
  check_numeric_type<std::uint16_t>(dir_, H5T_STD_U16LE, H5T_STD_U16BE, {0, 1, 40000, 65535},
                                    "uint16");
  check_numeric_type<std::uint32_t>(dir_, H5T_STD_U32LE, H5T_STD_U32BE,
                                    {0, 1, 1u << 31, 0xFFFFFF00u, 12345}, "uint32");
  check_numeric_type<std::uint64_t>(dir_, H5T_STD_U64LE, H5T_STD_U64BE,
                                    {0, 1, std::uint64_t{1} << 63, 0xFFFFFF0000000000ull, 6},
                                    "uint64");
}

TEST_F(TableReaderMatrix, ReadsFloatsInBothByteOrdersKeepingNanInfinityAndSignedZero) {
  check_numeric_type<float>(
      dir_, H5T_IEEE_F32LE, H5T_IEEE_F32BE,
      {-0.0f, 1.5f, -std::numeric_limits<float>::max(), std::numeric_limits<float>::max(),
       std::numeric_limits<float>::min(), kInf, -kInf, kNaN, 0.1f},
      "float32");
  check_numeric_type<double>(
      dir_, H5T_IEEE_F64LE, H5T_IEEE_F64BE,
      {0.0, -2.5, static_cast<double>(1e30f), std::nan(""), std::numeric_limits<double>::infinity(),
       -std::numeric_limits<double>::infinity(), -0.0, static_cast<double>(0.1f)},
      "float64");
}

// IEEE half precision as h5py defines it for numpy float16 (HDF5 1.10 has no predefined type).
H5Handle half_type(hid_t float32_type) {
  H5Handle type = h5::datatype_handle(H5_OK(H5Tcopy(float32_type)));
  H5_OK(H5Tset_fields(type.get(), 15, 10, 5, 0, 10));
  H5_OK(H5Tset_size(type.get(), 2));
  H5_OK(H5Tset_ebias(type.get(), 15));
  return type;
}

TEST_F(TableReaderMatrix, ReadsHalfPrecisionFloatsInBothByteOrders) {
  // Every value is exact in float16, so writing (float32 to float16) and reading (back) are exact.
  const std::vector<float> values = {0.0f,  -1.5f, 65504.0f, 6.103515625e-05f, kInf,
                                     -kInf, kNaN,  -0.0f,    0.099975586f};
  H5Handle le = half_type(H5T_IEEE_F32LE);
  H5Handle be = half_type(H5T_IEEE_F32BE);
  check_element_type(dir_, "float16_le", le.get(), values, values, "float16", "little");
  check_element_type(dir_, "float16_be", be.get(), values, values, "float16", "big");
}

TEST_F(TableReaderMatrix, ReadsEightBitBitfieldsAsBoolsNonzeroIsOne) {
  // PyTables stores numpy bool as an 8-bit bitfield; any nonzero byte is true.
  const std::vector<std::uint8_t> bytes = {0, 1, 0, 255, 2, 1, 0};
  const std::vector<float> expected = {0, 1, 0, 1, 1, 1, 0};
  check_element_type(dir_, "b8_le", H5T_STD_B8LE, bytes, expected, "bool", "little", H5T_NATIVE_B8);
  check_element_type(dir_, "b8_be", H5T_STD_B8BE, bytes, expected, "bool", "big", H5T_NATIVE_B8);
}

// An enum over `base` with the given members, as h5py writes numpy bool (FALSE=0, TRUE=1 over
// int8).
H5Handle enum_type(hid_t base, const std::vector<std::pair<std::string, long long>>& members) {
  H5Handle type = h5::datatype_handle(H5_OK(H5Tenum_create(base)));
  for (const auto& [name, value] : members) {
    // H5Tenum_insert takes the value in the base type's representation (size and byte order):
    // convert it in place from a long long.
    std::vector<unsigned char> buffer(std::max(sizeof value, H5Tget_size(base)));
    std::memcpy(buffer.data(), &value, sizeof value);
    H5_OK(H5Tconvert(H5T_NATIVE_LLONG, base, 1, buffer.data(), nullptr, H5P_DEFAULT));
    H5_OK(H5Tenum_insert(type.get(), name.c_str(), buffer.data()));
  }
  return type;
}

TEST_F(TableReaderMatrix, ReadsH5pyBoolEnumsAndOtherIntegerEnums) {
  {
    H5Handle file_type = enum_type(H5T_STD_I8LE, {{"FALSE", 0}, {"TRUE", 1}});
    H5Handle mem_type = enum_type(H5T_NATIVE_INT8, {{"FALSE", 0}, {"TRUE", 1}});
    const std::vector<std::int8_t> values = {1, 0, 0, 1, 1};
    check_element_type(dir_, "bool_enum", file_type.get(), values, {1, 0, 0, 1, 1}, "bool",
                       "little", mem_type.get());
  }
  {
    // Not a bool: the enum's integer values are the data, whatever its byte order.
    const std::vector<std::pair<std::string, long long>> members = {
        {"low", 10}, {"mid", 200}, {"high", 3000}};
    H5Handle file_type = enum_type(H5T_STD_U16BE, members);
    H5Handle mem_type = enum_type(H5T_NATIVE_UINT16, members);
    const std::vector<std::uint16_t> values = {3000, 10, 200, 10};
    check_element_type(dir_, "enum16", file_type.get(), values, {3000, 10, 200, 10}, "enum16",
                       "big", mem_type.get());
  }
}

TEST_F(TableReaderMatrix, DefaultNamesAndTheLabelAsTheLastColumn) {
  const fs::path path = file("xy.h5");
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};  // 4 x 3, row-major
  {
    H5Handle f = create_file(path);
    write_dataset(f.get(), "X", H5T_IEEE_F32LE, {4, 3}, x);
    // An h5py bool label: an enum over int8.
    H5Handle file_type = enum_type(H5T_STD_I8LE, {{"FALSE", 0}, {"TRUE", 1}});
    H5Handle mem_type = enum_type(H5T_NATIVE_INT8, {{"FALSE", 0}, {"TRUE", 1}});
    write_dataset<std::int8_t>(f.get(), "y", file_type.get(), {4}, {1, 0, 1, 1}, {},
                               mem_type.get());
  }
  TableReader reader(path);
  EXPECT_EQ(reader.layout(), Layout::matrix);
  EXPECT_EQ(reader.rows(), 4);
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"f0", "f1", "f2", "y"}));
  EXPECT_EQ(reader.columns()[3].dtype, "bool");
  EXPECT_EQ(reader.columns()[3].dataset, "/y");
  EXPECT_EQ(reader.storage().size(), 2u);
  expect_same_floats(read_all(reader), {1, 4, 7, 10, 2, 5, 8, 11, 3, 6, 9, 12, 1, 0, 1, 1});
}

TEST_F(TableReaderMatrix, AcceptsAnNByOneLabel) {
  const fs::path path = file("xy_column.h5");
  {
    H5Handle f = create_file(path);
    write_dataset<double>(f.get(), "X", H5T_IEEE_F64LE, {3, 2}, {1, 2, 3, 4, 5, 6});
    write_dataset<double>(f.get(), "y", H5T_IEEE_F64BE, {3, 1}, {0.5, std::nan(""), -1},
                          {.chunk = {2, 1}});
  }
  TableReader reader(path);
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"f0", "f1", "y"}));
  EXPECT_EQ(reader.columns()[2].dtype, "float64");
  expect_same_floats(read_all(reader), {1, 3, 5, 2, 4, 6, 0.5f, kNaN, -1});
}

// A 3 x 2 matrix named by `write_names`, which attaches a naming attribute to X or the file.
template <class WriteNames>
TableReader matrix_with_names(const fs::path& path, WriteNames write_names) {
  {
    H5Handle f = create_file(path);
    H5Handle x = create_dataset(f.get(), "X", H5T_IEEE_F32LE, {3, 2});
    const std::vector<float> values = {1, 2, 3, 4, 5, 6};
    H5_OK(H5Dwrite(x.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()));
    write_names(f.get(), x.get());
  }
  return TableReader(path);
}

TEST_F(TableReaderMatrix, FeatureNamesFromFixedLengthStrings) {
  // numpy 'S' strings: NUL-padded to the longest name, so shorter ones must lose their padding.
  TableReader reader = matrix_with_names(file("fixed.h5"), [](hid_t, hid_t x) {
    write_strings_attribute(x, "feature_names", {"age", "income_usd"}, Strings::fixed);
  });
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"age", "income_usd"}));
  expect_same_floats(read_all(reader), {1, 3, 5, 2, 4, 6});
}

TEST_F(TableReaderMatrix, FeatureNamesFromVariableLengthUtf8Strings) {
  // What h5py writes for a list of Python str.
  TableReader reader = matrix_with_names(file("vlen_utf8.h5"), [](hid_t, hid_t x) {
    write_strings_attribute(x, "feature_names", {"température", "年齢"}, Strings::variable,
                            H5T_CSET_UTF8);
  });
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"température", "年齢"}));
}

TEST_F(TableReaderMatrix, FeatureNamesFromFixedLengthUtf8StringsOnTheRootGroup) {
  TableReader reader = matrix_with_names(file("root_utf8.h5"), [](hid_t f, hid_t) {
    write_strings_attribute(f, "feature_names", {"Größe", "x"}, Strings::fixed, H5T_CSET_UTF8);
  });
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"Größe", "x"}));
}

TEST_F(TableReaderMatrix, FeatureNamesFromAColumnsAttribute) {
  TableReader reader = matrix_with_names(file("columns_attr.h5"), [](hid_t, hid_t x) {
    write_strings_attribute(x, "columns", {"a", "b"}, Strings::variable);
  });
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"a", "b"}));
}

TEST_F(TableReaderMatrix, OptionsNameTheMatrixAndLabelDatasets) {
  const fs::path path = file("named.h5");
  {
    H5Handle f = create_file(path);
    write_dataset<float>(f.get(), "features", H5T_IEEE_F32LE, {2, 2}, {1, 2, 3, 4});
    write_dataset<float>(f.get(), "other", H5T_IEEE_F32LE, {2, 2}, {9, 9, 9, 9});
    write_dataset<std::int32_t>(f.get(), "target", H5T_STD_I32LE, {2}, {7, 8});
  }
  TableReadOptions options;
  options.matrix_dataset = "features";
  options.label_dataset = "target";
  TableReader reader(path, options);
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"f0", "f1", "target"}));
  expect_same_floats(read_all(reader), {1, 3, 2, 4, 7, 8});
}

TEST_F(TableReaderMatrix, FindsALoneTwoDimensionalDatasetWhateverItsName) {
  const fs::path path = file("lone.h5");
  {
    H5Handle f = create_file(path);
    write_dataset<std::int16_t>(f.get(), "data", H5T_STD_I16BE, {2, 3}, {1, 2, 3, 4, 5, 6});
  }
  TableReader reader(path);
  EXPECT_EQ(reader.layout(), Layout::matrix);
  EXPECT_EQ(reader.columns()[0].dataset, "/data");
  expect_same_floats(read_all(reader), {1, 4, 2, 5, 3, 6});
}

// A root matrix of 4 rows with its label and names, beside a group `sub` that holds a matrix of 2
// rows; the group's label and names are written by `write_sub`.
template <class WriteSub>
void write_root_and_sub_matrices(const fs::path& path, WriteSub write_sub) {
  H5Handle f = create_file(path);
  write_dataset<float>(f.get(), "X", H5T_IEEE_F32LE, {4, 2}, {9, 9, 9, 9, 9, 9, 9, 9});
  write_dataset<float>(f.get(), "y", H5T_IEEE_F32LE, {4}, {8, 8, 8, 8});
  write_strings_attribute(f.get(), "feature_names", {"root_a", "root_b"}, Strings::variable);
  H5Handle g = create_group(f.get(), "sub");
  write_dataset<double>(g.get(), "X", H5T_IEEE_F64LE, {2, 2}, {1, 2, 3, 4});
  write_sub(g.get());
}

TEST_F(TableReaderMatrix, AGroupHoldingTheMatrixIsReadWithTheLabelAndNamesInsideIt) {
  const fs::path path = file("sub_matrix.h5");
  write_root_and_sub_matrices(path, [](hid_t g) {
    write_dataset<std::int32_t>(g, "y", H5T_STD_I32LE, {2}, {5, 6});
    write_strings_attribute(g, "feature_names", {"a", "b"}, Strings::fixed);
  });
  for (const std::string group : {"sub", "/sub"}) {
    SCOPED_TRACE(group);
    TableReadOptions options;
    options.group = group;
    TableReader reader(path, options);
    EXPECT_EQ(reader.layout(), Layout::matrix);
    EXPECT_EQ(reader.rows(), 2);
    EXPECT_EQ(column_names(reader), (std::vector<std::string>{"a", "b", "y"}));
    EXPECT_EQ(reader.columns()[0].dataset, "/sub/X");
    EXPECT_EQ(reader.columns()[2].dataset, "/sub/y");
    EXPECT_EQ(reader.columns()[2].dtype, "int32");
    expect_same_floats(read_all(reader), {1, 3, 2, 4, 5, 6});
  }
}

TEST_F(TableReaderMatrix, AGroupHoldingOnlyTheMatrixTakesNoLabelOrNamesFromTheRoot) {
  const fs::path path = file("sub_matrix_no_label.h5");
  write_root_and_sub_matrices(path, [](hid_t) {});
  TableReadOptions options;
  options.group = "sub";
  TableReader reader(path, options);
  EXPECT_EQ(reader.layout(), Layout::matrix);
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"f0", "f1"}));
  EXPECT_EQ(reader.storage().size(), 1u);
  expect_same_floats(read_all(reader), {1, 3, 2, 4});
}

TEST_F(TableReaderMatrix, AGroupHoldingTheMatrixUnderTheNameInTheOptions) {
  const fs::path path = file("sub_named.h5");
  {
    H5Handle f = create_file(path);
    H5Handle g = create_group(f.get(), "sub");
    write_dataset<float>(g.get(), "features", H5T_IEEE_F32LE, {2, 2}, {1, 2, 3, 4});
    write_dataset<float>(g.get(), "target", H5T_IEEE_F32LE, {2}, {7, 8});
  }
  TableReadOptions options;
  options.group = "sub";
  options.matrix_dataset = "features";
  options.label_dataset = "target";
  TableReader reader(path, options);
  EXPECT_EQ(reader.layout(), Layout::matrix);
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"f0", "f1", "target"}));
  expect_same_floats(read_all(reader), {1, 3, 2, 4, 7, 8});
}

TEST_F(TableReaderMatrix, AMatrixDatasetInTheOptionsTakesTheLabelBesideIt) {
  // `--group sub/X`: the label is sub/y, not the root's y (which has a different length).
  const fs::path path = file("sub_dataset.h5");
  write_root_and_sub_matrices(path, [](hid_t g) {
    write_dataset<float>(g, "y", H5T_IEEE_F32LE, {2}, {5, 6});
  });
  TableReadOptions options;
  options.group = "sub/X";
  TableReader reader(path, options);
  EXPECT_EQ(reader.layout(), Layout::matrix);
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"f0", "f1", "y"}));
  EXPECT_EQ(reader.columns()[2].dataset, "/sub/y");
  expect_same_floats(read_all(reader), {1, 3, 2, 4, 5, 6});
  // A root-level dataset still pairs with the root's label and names.
  options.group = "X";
  TableReader root(path, options);
  EXPECT_EQ(column_names(root), (std::vector<std::string>{"root_a", "root_b", "y"}));
  EXPECT_EQ(root.columns()[2].dataset, "/y");
}

// ---- columnar layout
// -----------------------------------------------------------------------------

// Four columns of 6 rows created in the order city, member, age, income, all chunked by 4 rows.
void write_columns(hid_t group) {
  const Storage chunked{.chunk = {4}, .shuffle = true, .deflate = 4};
  write_dataset<std::int32_t>(group, "city", H5T_STD_I32LE, {6}, {0, 2, -1, 1, 0, -1}, chunked);
  H5Handle city = h5::dataset_handle(H5_OK(H5Dopen2(group, "city", H5P_DEFAULT)));
  write_strings_attribute(city.get(), "categories", {"Paris", "Lyon", "Zürich"}, Strings::variable,
                          H5T_CSET_UTF8);
  write_dataset<std::uint8_t>(group, "member", H5T_STD_U8LE, {6}, {1, 0, 0, 1, 1, 0}, chunked);
  write_dataset<float>(group, "age", H5T_IEEE_F32LE, {6}, {31, kNaN, 45.5f, 19, 60, 22}, chunked);
  write_dataset<double>(group, "income", H5T_IEEE_F64BE, {6}, {1e3, 2e3, std::nan(""), 4e3, 5e3, 0},
                        chunked);
}

const std::vector<float> kCity = {0, 2, kNaN, 1, 0, kNaN};  // -1 codes are missing
const std::vector<float> kMember = {1, 0, 0, 1, 1, 0};
const std::vector<float> kAge = {31, kNaN, 45.5f, 19, 60, 22};
const std::vector<float> kIncome = {1e3f, 2e3f, kNaN, 4e3f, 5e3f, 0};

std::vector<float> concat(std::initializer_list<std::vector<float>> columns) {
  std::vector<float> out;
  for (const auto& c : columns) out.insert(out.end(), c.begin(), c.end());
  return out;
}

TEST_F(TableReaderColumnar, FollowsLatheColumnsAndReadsCategoricalCodes) {
  const fs::path path = file("columnar.h5");
  {
    H5Handle f = create_file(path);
    write_columns(f.get());
    // Neither creation order nor name order: the attribute decides.
    write_strings_attribute(f.get(), "lathe_columns", {"income", "age", "member", "city"},
                            Strings::variable, H5T_CSET_UTF8);
  }
  TableReader reader(path);
  EXPECT_EQ(reader.layout(), Layout::columnar);
  EXPECT_EQ(reader.rows(), 6);
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"income", "age", "member", "city"}));
  const ColumnInfo& city = reader.columns()[3];
  EXPECT_EQ(city.type, ColumnType::categorical);
  EXPECT_EQ(city.dtype, "int32");
  EXPECT_EQ(city.dataset, "/city");
  EXPECT_EQ(city.categories, (std::vector<std::string>{"Paris", "Lyon", "Zürich"}));
  for (int c = 0; c < 3; ++c) EXPECT_EQ(reader.columns()[c].type, ColumnType::numeric);
  EXPECT_EQ(reader.columns()[0].dtype, "float64");
  EXPECT_EQ(reader.columns()[1].dtype, "float32");
  EXPECT_EQ(reader.columns()[2].dtype, "uint8");
  expect_same_floats(read_all(reader), concat({kIncome, kAge, kMember, kCity}));
}

TEST_F(TableReaderColumnar, ReadsBoolsAsLabelsAndBoolLabelsAsNumbersWhereAsked) {
  const fs::path path = file("bools.h5");
  {
    H5Handle f = create_file(path);
    H5Handle file_type = enum_type(H5T_STD_I8LE, {{"FALSE", 0}, {"TRUE", 1}});
    H5Handle mem_type = enum_type(H5T_NATIVE_INT8, {{"FALSE", 0}, {"TRUE", 1}});
    write_dataset<std::int8_t>(f.get(), "paid", file_type.get(), {4}, {1, 0, 0, 1}, {},
                               mem_type.get());
    // Labels of bools in any spelling; "" is missing.
    write_dataset<std::int32_t>(f.get(), "flag", H5T_STD_I32LE, {4}, {0, 1, -1, 2});
    H5Handle flag = h5::dataset_handle(H5_OK(H5Dopen2(f.get(), "flag", H5P_DEFAULT)));
    write_strings_attribute(flag.get(), "categories", {"TRUE", "false", ""}, Strings::variable,
                            H5T_CSET_UTF8);
    write_dataset<std::int32_t>(f.get(), "city", H5T_STD_I32LE, {4}, {0, 1, 1, 0});
    H5Handle city = h5::dataset_handle(H5_OK(H5Dopen2(f.get(), "city", H5P_DEFAULT)));
    write_strings_attribute(city.get(), "categories", {"True", "Paris"}, Strings::variable,
                            H5T_CSET_UTF8);
    write_strings_attribute(f.get(), "lathe_columns", {"paid", "flag", "city"}, Strings::variable,
                            H5T_CSET_UTF8);
  }
  {
    TableReader as_stored(path);
    EXPECT_EQ(as_stored.columns()[0].type, ColumnType::numeric);
    EXPECT_EQ(as_stored.columns()[1].type, ColumnType::categorical);
  }
  TableReadOptions options;
  options.bools_as_labels["paid"] = {"False", "True"};
  options.labels_as_bools = {"flag", "city"};  // city's labels are not all bools': read as stored
  TableReader reader(path, options);
  const ColumnInfo& paid = reader.columns()[0];
  EXPECT_EQ(paid.type, ColumnType::categorical);
  EXPECT_EQ(paid.dtype, "bool");
  EXPECT_EQ(paid.categories, (std::vector<std::string>{"False", "True"}));
  EXPECT_EQ(reader.columns()[1].type, ColumnType::numeric);
  EXPECT_TRUE(reader.columns()[1].categories.empty());
  EXPECT_EQ(reader.columns()[2].type, ColumnType::categorical);
  EXPECT_EQ(reader.columns()[2].categories, (std::vector<std::string>{"True", "Paris"}));
  expect_same_floats(read_all(reader), {1, 0, 0, 1, 1, 0, kNaN, kNaN, 0, 1, 1, 0});
  // The exact reads give the same values: no type keeps them more exactly than read_block's.
  EXPECT_FALSE(reader.exact_type(0).has_value());
  EXPECT_FALSE(reader.exact_type(1).has_value());
  std::vector<std::int32_t> codes(4);
  reader.read_column_as(0, 0, 4, ExactType::int32, codes.data());
  EXPECT_EQ(codes, (std::vector<std::int32_t>{1, 0, 0, 1}));
  std::vector<std::string> text;
  reader.read_text(0, 1, 3, text);
  EXPECT_EQ(text, (std::vector<std::string>{"False", "False", "True"}));
  std::vector<double> numbers(4);
  reader.read_column_as(1, 0, 4, ExactType::float64, numbers.data());
  EXPECT_EQ(numbers[0], 1.0);
  EXPECT_EQ(numbers[1], 0.0);
  EXPECT_TRUE(std::isnan(numbers[2]) && std::isnan(numbers[3]));
}

TEST(BoolTextValue, ReadsTheSpellingsOfPandas) {
  for (const char* t : {"True", "TRUE", "true"})
    EXPECT_EQ(bool_text_value(t), std::optional<bool>(true)) << t;
  for (const char* f : {"False", "FALSE", "false"})
    EXPECT_EQ(bool_text_value(f), std::optional<bool>(false)) << f;
  for (const char* other : {"", "1", "yes", "tRUE", " True"})
    EXPECT_FALSE(bool_text_value(other).has_value()) << other;
}

TEST_F(TableReaderColumnar, WithoutLatheColumnsFollowsCreationOrderWhereTracked) {
  const fs::path path = file("tracked.h5");
  {
    H5Handle f = create_file(path, /*track_creation_order=*/true);
    write_columns(f.get());
  }
  TableReader reader(path);
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"city", "member", "age", "income"}));
  expect_same_floats(read_all(reader), concat({kCity, kMember, kAge, kIncome}));
}

TEST_F(TableReaderColumnar, WithoutLatheColumnsOrCreationOrderFollowsNameOrder) {
  const fs::path path = file("untracked.h5");
  {
    H5Handle f = create_file(path);
    write_columns(f.get());
  }
  TableReader reader(path);
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"age", "city", "income", "member"}));
  expect_same_floats(read_all(reader), concat({kAge, kCity, kIncome, kMember}));
}

TEST_F(TableReaderColumnar, ReadsTheGroupNamedInTheOptions) {
  const fs::path path = file("grouped.h5");
  {
    H5Handle f = create_file(path);
    write_dataset<float>(f.get(), "X", H5T_IEEE_F32LE, {2, 2}, {1, 2, 3, 4});  // a decoy matrix
    H5Handle g = create_group(f.get(), "table");
    write_columns(g.get());
    write_strings_attribute(g.get(), "lathe_columns", {"age", "city"}, Strings::fixed);
  }
  TableReadOptions options;
  options.group = "/table";
  TableReader reader(path, options);
  EXPECT_EQ(reader.layout(), Layout::columnar);
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"age", "city"}));
  EXPECT_EQ(reader.columns()[1].dataset, "/table/city");
  expect_same_floats(read_all(reader), concat({kAge, kCity}));
}

// A group named in the options is read as a matrix only when it holds a 2-D X: 1-D columns named X
// and y stay columns, and a group marked with `lathe_columns` stays columnar beside a 2-D X.
TEST_F(TableReaderColumnar, AGroupInTheOptionsWithColumnsNamedXAndYOrMarkedStaysColumnar) {
  const fs::path path = file("grouped_columns.h5");
  {
    H5Handle f = create_file(path);
    H5Handle g = create_group(f.get(), "cols");
    write_dataset<float>(g.get(), "X", H5T_IEEE_F32LE, {3}, {1, 2, 3});
    write_dataset<float>(g.get(), "y", H5T_IEEE_F32LE, {3}, {4, 5, 6});
    H5Handle m = create_group(f.get(), "marked");
    write_dataset<float>(m.get(), "X", H5T_IEEE_F32LE, {3, 2}, {0, 0, 0, 0, 0, 0});
    write_dataset<float>(m.get(), "a", H5T_IEEE_F32LE, {3}, {1, 2, 3});
    write_dataset<float>(m.get(), "y", H5T_IEEE_F32LE, {3}, {4, 5, 6});
    write_strings_attribute(m.get(), "lathe_columns", {"a", "y"}, Strings::variable);
  }
  TableReadOptions options;
  options.group = "cols";
  TableReader cols(path, options);
  EXPECT_EQ(cols.layout(), Layout::columnar);
  EXPECT_EQ(column_names(cols), (std::vector<std::string>{"X", "y"}));
  expect_same_floats(read_all(cols), {1, 2, 3, 4, 5, 6});
  options.group = "marked";
  TableReader marked(path, options);
  EXPECT_EQ(marked.layout(), Layout::columnar);
  EXPECT_EQ(column_names(marked), (std::vector<std::string>{"a", "y"}));
  EXPECT_EQ(marked.columns()[0].dataset, "/marked/a");
  expect_same_floats(read_all(marked), {1, 2, 3, 4, 5, 6});
}

TEST_F(TableReaderColumnar, AColumnNamedLikeTheMatrixIsStillAColumn) {
  // `lathe import` of a CSV whose header is "X,y" writes 1-D datasets X and y: two columns, not a
  // matrix and its label.
  const fs::path path = file("x_column.h5");
  {
    H5Handle f = create_file(path);
    write_dataset<float>(f.get(), "X", H5T_IEEE_F32LE, {3}, {1, 2, 3});
    write_dataset<float>(f.get(), "y", H5T_IEEE_F32LE, {3}, {4, 5, 6});
    write_dataset<float>(f.get(), "z", H5T_IEEE_F32LE, {3}, {7, 8, 9});
    write_strings_attribute(f.get(), "lathe_columns", {"X", "y", "z"}, Strings::variable);
  }
  TableReader reader(path);
  EXPECT_EQ(reader.layout(), Layout::columnar);
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"X", "y", "z"}));
  expect_same_floats(read_all(reader), {1, 2, 3, 4, 5, 6, 7, 8, 9});
}

// A root marked as Lathe's columnar layout is read as that table even when a 2-D X (a matrix the
// auto-detection would otherwise prefer) lies beside its columns.
TEST_F(TableReaderColumnar, AMarkedColumnarRootWinsOverAMatrixBesideIt) {
  const fs::path path = file("both.h5");
  {
    H5Handle f = create_file(path);
    write_dataset<float>(f.get(), "X", H5T_IEEE_F32LE, {3, 2}, {0, 0, 0, 0, 0, 0});
    write_dataset<float>(f.get(), "a", H5T_IEEE_F32LE, {3}, {1, 2, 3});
    write_dataset<float>(f.get(), "b", H5T_IEEE_F32LE, {3}, {4, 5, 6});
    write_strings_attribute(f.get(), "lathe_columns", {"a", "b"}, Strings::variable);
  }
  TableReader reader(path);
  EXPECT_EQ(reader.layout(), Layout::columnar);
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"a", "b"}));
  expect_same_floats(read_all(reader), {1, 2, 3, 4, 5, 6});
}

// ---- block reads
// ---------------------------------------------------------------------------------

constexpr std::int64_t kBlockTableRows = 1000;
constexpr hsize_t kChunkRows = 64;

// Column-major expected values of the block tests' table: three float features with scattered NaN
// and a float64 label (matrix) or a categorical column (columnar).
float feature_value(std::int64_t r, int c) {
  if ((r * 7 + c) % 13 == 0) return kNaN;
  return static_cast<float>(r) * 10.0f + static_cast<float>(c) + 0.25f;
}

void write_block_matrix(const fs::path& path) {
  std::vector<float> x(kBlockTableRows * 3);
  std::vector<double> y(kBlockTableRows);
  for (std::int64_t r = 0; r < kBlockTableRows; ++r) {
    for (int c = 0; c < 3; ++c) x[r * 3 + c] = feature_value(r, c);
    y[r] = r % 50 == 0 ? std::nan("") : static_cast<double>(r % 3);
  }
  H5Handle f = create_file(path);
  // Two columns per chunk: a block needs both chunks across the row.
  write_dataset(f.get(), "X", H5T_IEEE_F32LE, {kBlockTableRows, 3}, x,
                {.chunk = {kChunkRows, 2}, .shuffle = true, .deflate = 1});
  write_dataset(f.get(), "y", H5T_IEEE_F64LE, {kBlockTableRows}, y,
                {.chunk = {kChunkRows}, .deflate = 1});
}

std::vector<std::vector<float>> block_matrix_columns() {
  std::vector<std::vector<float>> cols(4, std::vector<float>(kBlockTableRows));
  for (std::int64_t r = 0; r < kBlockTableRows; ++r) {
    for (int c = 0; c < 3; ++c) cols[c][r] = feature_value(r, c);
    cols[3][r] = r % 50 == 0 ? kNaN : static_cast<float>(r % 3);
  }
  return cols;
}

void write_block_columnar(const fs::path& path) {
  H5Handle f = create_file(path);
  const Storage storage{.chunk = {kChunkRows}, .shuffle = true, .deflate = 1};
  for (int c = 0; c < 3; ++c) {
    std::vector<float> v(kBlockTableRows);
    for (std::int64_t r = 0; r < kBlockTableRows; ++r) v[r] = feature_value(r, c);
    write_dataset(f.get(), "f" + std::to_string(c), H5T_IEEE_F32LE, {kBlockTableRows}, v, storage);
  }
  std::vector<std::int32_t> codes(kBlockTableRows);
  for (std::int64_t r = 0; r < kBlockTableRows; ++r) codes[r] = r % 11 == 0 ? -1 : r % 4;
  write_dataset(f.get(), "kind", H5T_STD_I32LE, {kBlockTableRows}, codes, storage);
  H5Handle kind = h5::dataset_handle(H5_OK(H5Dopen2(f.get(), "kind", H5P_DEFAULT)));
  write_strings_attribute(kind.get(), "categories", {"a", "b", "c", "d"}, Strings::variable);
  write_strings_attribute(f.get(), "lathe_columns", {"f0", "f1", "f2", "kind"}, Strings::variable);
}

std::vector<std::vector<float>> block_columnar_columns() {
  std::vector<std::vector<float>> cols(4, std::vector<float>(kBlockTableRows));
  for (std::int64_t r = 0; r < kBlockTableRows; ++r) {
    for (int c = 0; c < 3; ++c) cols[c][r] = feature_value(r, c);
    cols[3][r] = r % 11 == 0 ? kNaN : static_cast<float>(r % 4);
  }
  return cols;
}

// Reads every (offset, size) pair of awkward sizes around the chunk boundaries with one reader, so
// its chunk cache and staging buffers are reused across blocks of every shape.
void check_awkward_blocks(TableReader& reader, const std::vector<std::vector<float>>& cols) {
  const std::int64_t rows = reader.rows();
  const std::int64_t chunk = static_cast<std::int64_t>(kChunkRows);
  ASSERT_EQ(reader.columns().size(), cols.size());
  const std::int64_t ncols = static_cast<std::int64_t>(cols.size());
  for (const std::int64_t size :
       {std::int64_t{1}, std::int64_t{7}, chunk - 1, chunk, chunk + 1, 3 * chunk + 5, rows}) {
    for (const std::int64_t offset : {std::int64_t{0}, std::int64_t{1}, chunk - 4, chunk - 1, chunk,
                                      2 * chunk + 3, rows / 2, rows - size}) {
      if (offset < 0 || offset + size > rows) continue;
      SCOPED_TRACE("rows [" + std::to_string(offset) + ", " + std::to_string(offset + size) + ")");
      std::vector<float> out(static_cast<std::size_t>(size * ncols), kPoison);
      reader.read_block(offset, size, out);
      std::vector<float> want;
      for (const auto& col : cols)
        want.insert(want.end(), col.begin() + offset, col.begin() + offset + size);
      expect_same_floats(out, want);
    }
  }
}

TEST_F(TableReaderBlocks, MatrixBlocksOfAwkwardSizesAcrossChunkBoundaries) {
  const fs::path path = file("matrix.h5");
  write_block_matrix(path);
  TableReadOptions options;
  options.block_rows = 100;
  TableReader reader(path, options);
  check_awkward_blocks(reader, block_matrix_columns());
}

TEST_F(TableReaderBlocks, ColumnarBlocksOfAwkwardSizesAcrossChunkBoundaries) {
  const fs::path path = file("columnar.h5");
  write_block_columnar(path);
  TableReadOptions options;
  options.block_rows = 100;
  TableReader reader(path, options);
  EXPECT_EQ(reader.columns()[3].type, ColumnType::categorical);
  check_awkward_blocks(reader, block_columnar_columns());
}

TEST_F(TableReaderBlocks, BlockRowsIsAWholeNumberOfChunks) {
  const fs::path path = file("matrix.h5");
  write_block_matrix(path);
  const std::int64_t chunk = static_cast<std::int64_t>(kChunkRows);
  for (const std::int64_t target :
       {std::int64_t{1}, chunk - 1, chunk, chunk + 1, std::int64_t{1000}, std::int64_t{65536}}) {
    TableReadOptions options;
    options.block_rows = target;
    TableReader reader(path, options);
    const std::int64_t block = reader.block_rows();
    SCOPED_TRACE("target " + std::to_string(target) + ", block rows " + std::to_string(block));
    EXPECT_EQ(block % chunk, 0);
    EXPECT_GE(block, target);
    EXPECT_LT(block, target + chunk);
  }
  // Without chunks there is nothing to align to.
  const fs::path contiguous = file("contiguous.h5");
  {
    H5Handle f = create_file(contiguous);
    write_dataset<float>(f.get(), "X", H5T_IEEE_F32LE, {5, 1}, {1, 2, 3, 4, 5});
  }
  TableReadOptions options;
  options.block_rows = 3;
  EXPECT_EQ(TableReader(contiguous, options).block_rows(), 3);
}

TEST_F(TableReaderBlocks, ScanningInBlockRowsReassemblesTheTable) {
  const fs::path path = file("matrix.h5");
  write_block_matrix(path);
  TableReadOptions options;
  options.block_rows = 100;
  TableReader reader(path, options);
  const std::int64_t rows = reader.rows();
  const std::int64_t block = reader.block_rows();
  const auto cols = block_matrix_columns();
  std::vector<std::vector<float>> seen(cols.size());
  for (std::int64_t first = 0; first < rows; first += block) {
    const std::int64_t n = std::min(block, rows - first);
    std::vector<float> out(static_cast<std::size_t>(n) * cols.size(), kPoison);
    reader.read_block(first, n, out);
    for (std::size_t c = 0; c < cols.size(); ++c) {
      seen[c].insert(seen[c].end(), out.begin() + c * n, out.begin() + (c + 1) * n);
    }
  }
  for (std::size_t c = 0; c < cols.size(); ++c) {
    SCOPED_TRACE("column " + std::to_string(c));
    expect_same_floats(seen[c], cols[c]);
  }
}

// read_block_columns reads the wanted columns as read_block does and leaves the others alone: a
// columnar file skips the other datasets; a matrix file reads X whole when one of its columns is
// wanted, and only y when the label alone is.
TEST_F(TableReaderBlocks, ReadingSomeColumnsGivesThemAndLeavesTheOthers) {
  const std::int64_t chunk = static_cast<std::int64_t>(kChunkRows);
  const std::int64_t offset = chunk - 3, size = 2 * chunk + 7;
  struct Case {
    const char* name;
    std::vector<std::int64_t> wanted;
    std::vector<bool> written;  // per column: read (the others keep the poison)
  };
  for (const bool matrix : {false, true}) {
    const fs::path path = file(matrix ? "matrix.h5" : "columnar.h5");
    if (matrix) {
      write_block_matrix(path);
    } else {
      write_block_columnar(path);
    }
    const auto cols = matrix ? block_matrix_columns() : block_columnar_columns();
    const std::vector<Case> cases =
        matrix ? std::vector<Case>{{"label", {3}, {false, false, false, true}},
                                   {"one feature", {1}, {true, true, true, false}}}
               : std::vector<Case>{{"codes", {3}, {false, false, false, true}},
                                   {"two features", {2, 0}, {true, false, true, false}}};
    TableReader reader(path);
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(matrix ? "matrix, " : "columnar, ") + c.name);
      std::vector<float> out(static_cast<std::size_t>(size) * cols.size(), kPoison);
      reader.read_block_columns(offset, size, c.wanted, out);
      for (std::size_t col = 0; col < cols.size(); ++col) {
        const std::vector<float> got(out.begin() + col * size, out.begin() + (col + 1) * size);
        if (c.written[col]) {
          expect_same_floats(got, std::vector<float>(cols[col].begin() + offset, cols[col].begin() + offset + size));
        } else {
          expect_same_floats(got, std::vector<float>(static_cast<std::size_t>(size), kPoison));
        }
      }
    }
    std::vector<float> out(static_cast<std::size_t>(size) * cols.size());
    const std::vector<std::int64_t> bad = {4};
    EXPECT_THROW(reader.read_block_columns(offset, size, bad, out), Error);
  }
}

TEST_F(TableReaderBlocks, RefusesReadsOutsideTheTableOrIntoAWrongSizedOutput) {
  const fs::path path = file("matrix.h5");
  write_block_matrix(path);
  TableReader reader(path);
  std::vector<float> out(4 * 10);
  EXPECT_THROW(reader.read_block(kBlockTableRows - 5, 10, out), Error);
  EXPECT_THROW(reader.read_block(-1, 10, out), Error);
  EXPECT_THROW(reader.read_block(0, 9, out), Error);
  std::vector<float> none;
  EXPECT_NO_THROW(reader.read_block(kBlockTableRows, 0, none));
  try {
    reader.read_block(kBlockTableRows, 10, out);
    ADD_FAILURE() << "read past the end was accepted";
  } catch (const Error& e) {
    expect_mentions(e.what(), {path.string(), "1000"});
  }
}

// ---- pandas fixed layout
// -------------------------------------------------------------------------

// The skeleton of DataFrame.to_hdf(path, key, format="fixed") as PyTables stores it: a group with
// pandas_type "frame", axis0 (column names, fixed-length strings) and axis1 (an int64 index). The
// blocks (blockN_items, blockN_values: rows x items, PyTables stores the transposed block) are
// added by the caller.
H5Handle write_pandas_frame(hid_t file, const std::string& key,
                            const std::vector<std::string>& axis0, hsize_t rows, int nblocks,
                            const std::string& pandas_type = "frame") {
  H5Handle g = create_group(file, key);
  // PyTables writes numpy bytes attributes: fixed-length scalar strings.
  write_strings_attribute(g.get(), "pandas_type", {pandas_type}, Strings::fixed, H5T_CSET_ASCII,
                          /*scalar=*/true);
  write_strings_attribute(g.get(), "pandas_version", {"0.15.2"}, Strings::fixed, H5T_CSET_ASCII,
                          true);
  write_strings_attribute(g.get(), "encoding", {"UTF-8"}, Strings::fixed, H5T_CSET_ASCII, true);
  h5::write_int_attribute(g.get(), "ndim", 2, kFixture);
  h5::write_int_attribute(g.get(), "nblocks", nblocks, kFixture);
  write_strings_dataset(g.get(), "axis0", axis0);
  std::vector<std::int64_t> index(rows);
  for (hsize_t r = 0; r < rows; ++r) index[r] = static_cast<std::int64_t>(r) * 10;
  write_dataset(g.get(), "axis1", H5T_STD_I64LE, {rows}, index);
  return g;
}

TEST_F(TableReaderPandas, ReadsNumericAndBoolBlocksInAxis0Order) {
  const fs::path path = file("frame.h5");
  constexpr hsize_t rows = 5;
  {
    H5Handle f = create_file(path);
    // Blocks hold their columns in another order than the frame: axis0 decides.
    H5Handle g = write_pandas_frame(f.get(), "df", {"c", "b_flag", "a", "e", "d_flag"}, rows, 3);
    write_strings_dataset(g.get(), "block0_items", {"a", "c"});
    std::vector<double> block0;
    for (hsize_t r = 0; r < rows; ++r) {
      block0.push_back(1.5 * static_cast<double>(r));                          // a
      block0.push_back(r == 2 ? std::nan("") : 0.5 - static_cast<double>(r));  // c
    }
    write_dataset(g.get(), "block0_values", H5T_IEEE_F64LE, {rows, 2}, block0);
    write_strings_dataset(g.get(), "block1_items", {"b_flag", "d_flag"});
    std::vector<std::uint8_t> block1;
    for (hsize_t r = 0; r < rows; ++r) {
      block1.push_back(r % 2);       // b_flag
      block1.push_back(r % 3 == 0);  // d_flag
    }
    write_dataset(g.get(), "block1_values", H5T_STD_B8LE, {rows, 2}, block1, {}, H5T_NATIVE_B8);
    write_strings_dataset(g.get(), "block2_items", {"e"});
    write_dataset<std::int64_t>(g.get(), "block2_values", H5T_STD_I64LE, {rows, 1},
                                {-3, 0, 3, 6, 9});
  }
  TableReader reader(path);
  EXPECT_EQ(reader.layout(), Layout::pandas);
  EXPECT_EQ(reader.rows(), 5);
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"c", "b_flag", "a", "e", "d_flag"}));
  const std::vector<std::string> dtypes = {"float64", "bool", "float64", "int64", "bool"};
  const std::vector<std::string> datasets = {"/df/block0_values", "/df/block1_values",
                                             "/df/block0_values", "/df/block2_values",
                                             "/df/block1_values"};
  for (std::size_t c = 0; c < 5; ++c) {
    EXPECT_EQ(reader.columns()[c].dtype, dtypes[c]) << reader.columns()[c].name;
    EXPECT_EQ(reader.columns()[c].dataset, datasets[c]) << reader.columns()[c].name;
  }
  expect_same_floats(read_all(reader), {
                                           0.5, -0.5, kNaN, -2.5, -3.5,  // c
                                           0,   1,    0,    1,    0,     // b_flag
                                           0,   1.5,  3,    4.5,  6,     // a
                                           -3,  0,    3,    6,    9,     // e
                                           1,   0,    0,    1,    0,     // d_flag
                                       });
}

TEST_F(TableReaderPandas, IntegerColumnLabelsBecomeDecimalNames) {
  // DataFrame(ndarray) has integer columns; pandas then stores axis0 and blockN_items as int64.
  const fs::path path = file("int_labels.h5");
  {
    H5Handle f = create_file(path);
    H5Handle g = create_group(f.get(), "df");
    write_strings_attribute(g.get(), "pandas_type", {"frame"}, Strings::fixed, H5T_CSET_ASCII,
                            /*scalar=*/true);
    write_dataset<std::int64_t>(g.get(), "axis0", H5T_STD_I64LE, {3}, {0, 1, -20});
    write_dataset<std::int64_t>(g.get(), "axis1", H5T_STD_I64LE, {2}, {0, 1});
    write_dataset<std::int64_t>(g.get(), "block0_items", H5T_STD_I64LE, {2}, {-20, 0});
    write_dataset<double>(g.get(), "block0_values", H5T_IEEE_F64LE, {2, 2}, {1, 2, 3, 4});
    write_dataset<std::int64_t>(g.get(), "block1_items", H5T_STD_I64LE, {1}, {1});
    write_dataset<std::uint8_t>(g.get(), "block1_values", H5T_STD_B8LE, {2, 1}, {1, 0}, {},
                                H5T_NATIVE_B8);
  }
  TableReader reader(path);
  EXPECT_EQ(column_names(reader), (std::vector<std::string>{"0", "1", "-20"}));
  expect_same_floats(read_all(reader), {2, 4, 1, 0, 1, 3});
}

TEST_F(TableReaderPandas, RefusesObjectBlocksNamingTheirColumns) {
  const fs::path path = file("objects.h5");
  {
    H5Handle f = create_file(path);
    H5Handle g = write_pandas_frame(f.get(), "df", {"a", "name", "city"}, 2, 2);
    write_strings_dataset(g.get(), "block0_items", {"a"});
    write_dataset<double>(g.get(), "block0_values", H5T_IEEE_F64LE, {2, 1}, {1, 2});
    write_strings_dataset(g.get(), "block1_items", {"name", "city"});
    // pandas stores an object block as a PyTables VLArray holding one pickled array: a 1-D
    // dataset of variable-length byte sequences.
    H5Handle vlen = h5::datatype_handle(H5_OK(H5Tvlen_create(H5T_NATIVE_UINT8)));
    H5Handle d = create_dataset(g.get(), "block1_values", vlen.get(), {1});
    std::vector<std::uint8_t> pickle = {0x80, 0x04, 0x95, 0x2e};
    hvl_t element{pickle.size(), pickle.data()};
    H5_OK(H5Dwrite(d.get(), vlen.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &element));
  }
  const std::string message = input_error(path);
  expect_mentions(message, {path.string(), "'name'", "'city'", "object"});
  EXPECT_EQ(message.find("'a'"), std::string::npos) << message;
}

TEST_F(TableReaderPandas, SeveralFramesNeedAKey) {
  const fs::path path = file("two_frames.h5");
  {
    H5Handle f = create_file(path);
    for (const std::string key : {"train", "test"}) {
      H5Handle g = write_pandas_frame(f.get(), key, {"v"}, 2, 1);
      write_strings_dataset(g.get(), "block0_items", {"v"});
      write_dataset<float>(g.get(), "block0_values", H5T_IEEE_F32LE, {2, 1},
                           key == "train" ? std::vector<float>{1, 2} : std::vector<float>{3, 4});
    }
  }
  expect_mentions(input_error(path), {path.string(), "'train'", "'test'"});
  TableReadOptions options;
  options.group = "test";
  TableReader reader(path, options);
  EXPECT_EQ(reader.layout(), Layout::pandas);
  expect_same_floats(read_all(reader), {3, 4});
}

// A frame in table format is read (tests/python/test_hdf5_layouts.py writes real ones with pandas);
// one without its records is named.
TEST_F(TableReaderPandas, RefusesATableFormatFrameWithoutItsRecords) {
  const fs::path path = file("table_format.h5");
  {
    H5Handle f = create_file(path);
    write_pandas_frame(f.get(), "df", {"v"}, 2, 0, "frame_table");
  }
  expect_mentions(input_error(path), {path.string(), "'df'", "'table'"});
}

// ---- bad input
// -----------------------------------------------------------------------------------

TEST_F(TableReaderBadInput, MissingFile) {
  const fs::path path = file("absent.h5");
  expect_mentions(input_error(path), {path.string(), "no such file"});
}

TEST_F(TableReaderBadInput, Directory) {
  expect_mentions(input_error(dir_), {dir_.string(), "is a folder"});
}

TEST_F(TableReaderBadInput, EmptyFile) {
  const fs::path path = file("empty.h5");
  std::ofstream(path).close();
  expect_mentions(input_error(path), {path.string(), "empty"});
}

TEST_F(TableReaderBadInput, TextFile) {
  const fs::path path = file("table.csv");
  std::ofstream(path) << "a,b,y\n1,2,0\n3,4,1\n";
  // A CSV file where HDF5 is expected: the message says so and gives the command that converts it.
  expect_mentions(input_error(path), {path.string(), "not an HDF5 file", "looks like a CSV file",
                                      "`lathe import " + path.string() + " " + file("table.h5").string() + "`"});
}

TEST_F(TableReaderBadInput, CsvTextUnderAnotherExtensionGetsTheHintToo) {
  const fs::path path = file("data.h5");
  std::ofstream(path) << "tenure;contract\n1;Month-to-month\n";
  expect_mentions(input_error(path), {"not an HDF5 file", "looks like a CSV file",
                                      "`lathe import " + path.string() + " " + file("data.imported.h5").string() +
                                          " --delimiter ';'`"});  // its first line has no comma
}

TEST_F(TableReaderBadInput, BinaryFileThatIsNotHdf5GetsNoCsvHint) {
  const fs::path path = file("blob.h5");
  std::ofstream(path, std::ios::binary) << std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xfe", 18);
  const std::string message = input_error(path);
  expect_mentions(message, {path.string(), "not an HDF5 file"});
  EXPECT_EQ(message.find("CSV"), std::string::npos) << message;
}

TEST_F(TableReaderBadInput, TruncatedFile) {
  const fs::path path = file("truncated.h5");
  {
    H5Handle f = create_file(path);
    write_dataset(f.get(), "X", H5T_IEEE_F64LE, {400, 8}, std::vector<double>(3200, 1.0));
  }
  fs::resize_file(path, fs::file_size(path) / 2);
  expect_mentions(input_error(path), {path.string(), "truncated"});
}

TEST_F(TableReaderBadInput, MatrixOfRankThree) {
  const fs::path path = file("rank3.h5");
  {
    H5Handle f = create_file(path);
    create_dataset(f.get(), "X", H5T_IEEE_F32LE, {2, 3, 4});
  }
  expect_mentions(input_error(path), {path.string(), "'/X'", "rank 3"});
}

TEST_F(TableReaderBadInput, LabelLengthDiffersFromRows) {
  const fs::path path = file("short_label.h5");
  {
    H5Handle f = create_file(path);
    write_dataset<float>(f.get(), "X", H5T_IEEE_F32LE, {3, 2}, {1, 2, 3, 4, 5, 6});
    write_dataset<float>(f.get(), "y", H5T_IEEE_F32LE, {2}, {0, 1});
  }
  expect_mentions(input_error(path), {path.string(), "'/y'", "2 labels", "3 rows"});
}

TEST_F(TableReaderBadInput, LabelOfSeveralColumns) {
  const fs::path path = file("wide_label.h5");
  {
    H5Handle f = create_file(path);
    write_dataset<float>(f.get(), "X", H5T_IEEE_F32LE, {2, 2}, {1, 2, 3, 4});
    write_dataset<float>(f.get(), "y", H5T_IEEE_F32LE, {2, 2}, {0, 1, 1, 0});
  }
  expect_mentions(input_error(path), {path.string(), "'/y'", "1-D"});
}

TEST_F(TableReaderBadInput, ZeroRows) {
  const fs::path matrix = file("zero_matrix.h5");
  {
    H5Handle f = create_file(matrix);
    create_dataset(f.get(), "X", H5T_IEEE_F32LE, {0, 3});
  }
  expect_mentions(input_error(matrix), {matrix.string(), "zero rows"});
  const fs::path columnar = file("zero_columnar.h5");
  {
    H5Handle f = create_file(columnar);
    create_dataset(f.get(), "a", H5T_IEEE_F32LE, {0}, {.chunk = {16}});
    create_dataset(f.get(), "b", H5T_STD_I64LE, {0}, {.chunk = {16}});
  }
  expect_mentions(input_error(columnar), {columnar.string(), "zero rows"});
}

TEST_F(TableReaderBadInput, CompoundMatrix) {
  const fs::path path = file("compound.h5");
  {
    H5Handle type = h5::datatype_handle(H5_OK(H5Tcreate(H5T_COMPOUND, 16)));
    H5_OK(H5Tinsert(type.get(), "a", 0, H5T_STD_I32LE));
    H5_OK(H5Tinsert(type.get(), "b", 8, H5T_IEEE_F64LE));
    H5Handle f = create_file(path);
    create_dataset(f.get(), "X", type.get(), {4, 2});
  }
  expect_mentions(input_error(path), {path.string(), "'/X'", "compound"});
}

TEST_F(TableReaderBadInput, StringMatrix) {
  const fs::path path = file("strings.h5");
  {
    H5Handle type = string_type(4, H5T_CSET_ASCII);
    H5Handle f = create_file(path);
    create_dataset(f.get(), "X", type.get(), {3, 2});
  }
  expect_mentions(input_error(path), {path.string(), "'/X'", "string"});
}

// Columns of strings are categorical: labels in order of first appearance, "" (or a null
// variable-length string) missing, a space-padded string's padding dropped.
TEST_F(TableReaderBadInput, StringColumnsAreCategorical) {
  const fs::path path = file("string_column.h5");
  const float nan = std::numeric_limits<float>::quiet_NaN();
  {
    H5Handle f = create_file(path);
    write_dataset<float>(f.get(), "a", H5T_IEEE_F32LE, {4}, {1, 2, 3, 4});
    H5Handle variable = string_type(0, H5T_CSET_UTF8);
    H5Handle name = create_dataset(f.get(), "name", variable.get(), {4});
    const char* names[] = {"b\xc3\xa9", "", "a", nullptr};
    H5_OK(H5Dwrite(name.get(), variable.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, names));
    H5Handle padded = string_type(3, H5T_CSET_ASCII);
    H5_OK(H5Tset_strpad(padded.get(), H5T_STR_SPACEPAD));
    H5Handle code = create_dataset(f.get(), "code", padded.get(), {4});
    const char codes[] = "x  y  x     ";
    H5_OK(H5Dwrite(code.get(), padded.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, codes));
  }
  TableReader reader(path);
  EXPECT_EQ(reader.layout(), Layout::columnar);
  ASSERT_EQ(column_names(reader), (std::vector<std::string>{"a", "code", "name"}));
  EXPECT_EQ(reader.columns()[1].type, ColumnType::categorical);
  EXPECT_EQ(reader.columns()[1].dtype, "string");
  EXPECT_EQ(reader.columns()[1].categories, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(reader.columns()[2].categories, (std::vector<std::string>{"b\xc3\xa9", "a"}));
  expect_same_floats(read_all(reader), {1, 2, 3, 4, 0, 1, 0, nan, 0, nan, 1, nan});
}

TEST_F(TableReaderBadInput, ARecordDatasetAmongColumnsAsksForGroup) {
  const fs::path path = file("records_among_columns.h5");
  {
    H5Handle f = create_file(path);
    H5Handle g = h5::group_handle(H5_OK(H5Gcreate2(f.get(), "cols", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
    write_dataset<float>(g.get(), "a", H5T_IEEE_F32LE, {2}, {1, 2});
    H5Handle type = h5::datatype_handle(H5_OK(H5Tcreate(H5T_COMPOUND, 8)));
    H5_OK(H5Tinsert(type.get(), "p", 0, H5T_IEEE_F64LE));
    create_dataset(g.get(), "r", type.get(), {2});
  }
  TableReadOptions options;
  options.group = "cols";
  try {
    TableReader reader(path, options);
    ADD_FAILURE() << "expected an InputError";
  } catch (const InputError& e) {
    expect_mentions(e.what(), {path.string(), "'/cols/r'", "--group"});
  }
}

TEST_F(TableReaderBadInput, ColumnsOfUnequalLength) {
  const fs::path path = file("ragged.h5");
  {
    H5Handle f = create_file(path);
    write_dataset<float>(f.get(), "a", H5T_IEEE_F32LE, {10}, std::vector<float>(10, 1));
    write_dataset<float>(f.get(), "b", H5T_IEEE_F32LE, {9}, std::vector<float>(9, 2));
  }
  expect_mentions(input_error(path), {path.string(), "'/b'", "9 rows", "'/a'", "10"});
}

TEST_F(TableReaderBadInput, ColumnListedButAbsent) {
  const fs::path path = file("listed.h5");
  {
    H5Handle f = create_file(path);
    write_dataset<float>(f.get(), "a", H5T_IEEE_F32LE, {2}, {1, 2});
    write_strings_attribute(f.get(), "lathe_columns", {"a", "ghost"}, Strings::variable);
  }
  expect_mentions(input_error(path), {path.string(), "'ghost'"});
}

TEST_F(TableReaderBadInput, FeatureNameCountDiffersFromColumns) {
  const fs::path path = file("names.h5");
  {
    H5Handle f = create_file(path);
    H5Handle x = create_dataset(f.get(), "X", H5T_IEEE_F32LE, {2, 3});
    write_strings_attribute(x.get(), "feature_names", {"a", "b"}, Strings::variable);
  }
  expect_mentions(input_error(path), {path.string(), "'/X'", "3 columns", "2 feature names"});
}

TEST_F(TableReaderBadInput, FeatureNamesThatAreNotStrings) {
  const fs::path path = file("numeric_names.h5");
  {
    H5Handle f = create_file(path);
    H5Handle x = create_dataset(f.get(), "X", H5T_IEEE_F32LE, {2, 2});
    const hsize_t n = 2;
    H5Handle space = h5::dataspace_handle(H5_OK(H5Screate_simple(1, &n, nullptr)));
    H5Handle attr = h5::attribute_handle(H5_OK(H5Acreate2(x.get(), "feature_names", H5T_STD_I32LE,
                                                          space.get(), H5P_DEFAULT, H5P_DEFAULT)));
    const std::int32_t names[2] = {7, 8};
    H5_OK(H5Awrite(attr.get(), H5T_NATIVE_INT32, names));
  }
  expect_mentions(input_error(path), {path.string(), "'/X'", "feature_names", "strings"});
}

TEST_F(TableReaderBadInput, MatrixWithoutColumns) {
  const fs::path path = file("no_columns.h5");
  {
    H5Handle f = create_file(path);
    create_dataset(f.get(), "X", H5T_IEEE_F32LE, {5, 0});
  }
  expect_mentions(input_error(path), {path.string(), "'/X'", "no columns"});
}

TEST_F(TableReaderBadInput, NoTable) {
  const fs::path path = file("no_table.h5");
  {
    H5Handle f = create_file(path);
    create_group(f.get(), "empty_group");
  }
  expect_mentions(input_error(path), {path.string(), "no table"});
}

TEST_F(TableReaderBadInput, GroupOptionNamesNothing) {
  const fs::path path = file("group_option.h5");
  {
    H5Handle f = create_file(path);
    write_dataset<float>(f.get(), "X", H5T_IEEE_F32LE, {1, 1}, {1});
  }
  TableReadOptions options;
  options.group = "/nowhere";
  expect_mentions(input_error(path, options), {path.string(), "nowhere"});
}

TEST_F(TableReaderBadInput, NonPositiveBlockRows) {
  const fs::path path = file("block_rows.h5");
  {
    H5Handle f = create_file(path);
    write_dataset<float>(f.get(), "X", H5T_IEEE_F32LE, {1, 1}, {1});
  }
  TableReadOptions options;
  options.block_rows = 0;
  expect_mentions(input_error(path, options), {"block rows"});
}

TEST_F(TableReaderBadInput, UnavailableFilterNamesThePluginAndHdf5PluginPath) {
  // HDF5 creates a dataset with an unregistered filter only when the filter is optional (H5Dcreate
  // refuses a mandatory one); H5Dwrite then stores the chunks unfiltered. The reader must still
  // refuse the dataset up front and say what to install, as it would for a real blosc file whose
  // chunks it cannot decompress. Plugin loading is switched off for the test so that an installed
  // blosc plugin cannot make the filter available.
  unsigned plugin_state = 0;
  H5_OK(H5PLget_loading_state(&plugin_state));
  H5_OK(H5PLset_loading_state(0));
  struct Restore {
    unsigned state;
    ~Restore() { H5PLset_loading_state(state); }
  } restore{plugin_state};

  const fs::path path = file("blosc.h5");
  {
    H5Handle f = create_file(path);
    write_dataset<float>(f.get(), "X", H5T_IEEE_F32LE, {8, 2}, std::vector<float>(16, 1.0f),
                         {.chunk = {4, 2}, .optional_filter = 32001});
  }
  expect_mentions(input_error(path), {path.string(), "'/X'", "blosc", "32001", "HDF5_PLUGIN_PATH"});
}

// ---- direct read paths
// ---------------------------------------------------------------------------
// read_block reads contiguous datasets with pread and deflate/shuffle chunks as raw chunks decoded
// in parallel; everything it delivers must be the bits HDF5's hyperslab path (direct_read = false)
// delivers, for every element type, byte order, filter pipeline, chunking and block.

class TableReaderDirect : public ReaderFiles {};

// Every element, bit for bit (NaN payloads and signed zeros included), reporting the first few
// differences with the HDF5 path's value.
void expect_same_bits(const std::vector<float>& direct, const std::vector<float>& hdf5) {
  ASSERT_EQ(direct.size(), hdf5.size());
  int reported = 0;
  for (std::size_t i = 0; i < direct.size(); ++i) {
    const auto a = std::bit_cast<std::uint32_t>(direct[i]);
    const auto b = std::bit_cast<std::uint32_t>(hdf5[i]);
    if (a != b && reported++ < 8) {
      ADD_FAILURE() << "element " << i << ": direct read " << direct[i] << " (0x" << std::hex << a
                    << "), hdf5 path " << hdf5[i] << " (0x" << b << std::dec << ")";
    }
  }
}

TableReadOptions direct_options(bool direct, std::int64_t block_rows = 65536, int threads = 0) {
  TableReadOptions options;
  options.direct_read = direct;
  options.block_rows = block_rows;
  options.decode_threads = threads;
  return options;
}

// Blocks that start and end inside chunks, span several, or cover the table.
std::vector<std::pair<std::int64_t, std::int64_t>> awkward_blocks(std::int64_t rows) {
  std::vector<std::pair<std::int64_t, std::int64_t>> blocks;
  for (const auto& [first, count] :
       std::vector<std::pair<std::int64_t, std::int64_t>>{{0, rows},
                                                          {0, 1},
                                                          {5, 90},
                                                          {95, 2},
                                                          {96, 96},
                                                          {37, rows - 48},
                                                          {rows - 7, 7},
                                                          {rows / 2, 1}}) {
    if (first >= 0 && count > 0 && first + count <= rows) blocks.push_back({first, count});
  }
  return blocks;
}

// Reads the same blocks through the direct paths (with `threads`) and through HDF5 and expects the
// same bits; returns the direct reader's whole table.
std::vector<float> expect_direct_equals_hdf5(const fs::path& path, const std::string& read_path,
                                             int threads = 0, std::int64_t block_rows = 65536) {
  TableReader direct(path, direct_options(true, block_rows, threads));
  TableReader hdf5(path, direct_options(false, block_rows));
  for (const DatasetStorage& st : direct.storage())
    EXPECT_EQ(st.read_path, read_path) << st.dataset;
  for (const DatasetStorage& st : hdf5.storage())
    EXPECT_EQ(st.read_path, "hdf5 hyperslab") << st.dataset;
  const std::int64_t ncols = static_cast<std::int64_t>(direct.columns().size());
  std::vector<float> whole;
  for (const auto& [first, count] : awkward_blocks(direct.rows())) {
    SCOPED_TRACE("rows [" + std::to_string(first) + ", " + std::to_string(first + count) + ")");
    std::vector<float> a(static_cast<std::size_t>(count * ncols), kPoison);
    std::vector<float> b(a.size(), kPoison);
    direct.read_block(first, count, a);
    hdf5.read_block(first, count, b);
    expect_same_bits(a, b);
    if (first == 0 && count == direct.rows()) whole = a;
  }
  return whole;
}

// Bit patterns for `n` elements of a type of `size` bytes in `order`: seeded random bytes (NaNs,
// denormals and extremes among them), with values where conversions part ways mixed in: float64
// halfway between two float32 values and just past FLT_MAX, integers halfway between two float32
// values.
std::vector<unsigned char> awkward_bytes(std::size_t n, std::size_t size, H5T_class_t cls,
                                         H5T_order_t order, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<unsigned char> bytes(n * size);
  for (auto& b : bytes) b = static_cast<unsigned char>(rng());
  const bool foreign = (order == H5T_ORDER_BE) != (std::endian::native == std::endian::big);
  for (std::size_t i = 0; i < n; i += 3) {
    std::uint64_t v = 0;
    if (cls == H5T_FLOAT && size == 8) {
      const float f = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
      std::uint64_t widened = std::bit_cast<std::uint64_t>(static_cast<double>(f));
      switch (i % 4) {
        case 0:
          widened = (widened & ~0x1FFFFFFFull) | 0x10000000ull;
          break;  // a tie
        case 1:
          widened |= 0x1FFFFFFFull;
          break;
        case 2:
          widened = std::bit_cast<std::uint64_t>(
              std::ldexp(1.0 + static_cast<double>(rng() >> 11) * 0x1p-53, 127));
          break;
        default:  // near and below float32's denormals
          widened = std::bit_cast<std::uint64_t>(
                        std::ldexp(static_cast<double>(rng() >> 11), -180 - int(rng() % 20))) |
                    0x8000000ull;
      }
      v = widened;
    } else if (cls == H5T_INTEGER && size >= 4) {
      v = ((std::uint64_t{1} << (24 + rng() % (size * 8 - 25))) | 1) + 2 * (rng() % 8);
      if (i % 2) v = ~v + 1;  // negative when signed
    } else {
      continue;
    }
    if (size == 4) {
      std::uint32_t w = static_cast<std::uint32_t>(v);
      if (foreign) w = __builtin_bswap32(w);
      std::memcpy(&bytes[i * 4], &w, 4);
    } else {
      if (foreign) v = __builtin_bswap64(v);
      std::memcpy(&bytes[i * 8], &v, 8);
    }
  }
  return bytes;
}

// How a dataset of the direct-read tests is stored: its chunking and filter pipeline (in the order
// given), and what read path the reader should report for it.
struct PipelineCase {
  std::string name;
  std::vector<hsize_t> chunk_rows_cols;                    // empty: contiguous
  std::vector<std::pair<H5Z_filter_t, unsigned>> filters;  // filter id, level (deflate)
  std::string read_path;
};

std::vector<PipelineCase> pipeline_cases() {
  return {
      {"contiguous", {}, {}, "pread (contiguous)"},
      {"chunked", {96, 3}, {}, "raw chunks"},
      {"shuffle", {96, 3}, {{H5Z_FILTER_SHUFFLE, 0}}, "raw chunks"},
      {"deflate1", {7, 2}, {{H5Z_FILTER_DEFLATE, 1}}, "raw chunks, parallel inflate"},
      {"shuffle_deflate6",
       {96, 3},
       {{H5Z_FILTER_SHUFFLE, 0}, {H5Z_FILTER_DEFLATE, 6}},
       "raw chunks, parallel inflate"},
      {"deflate9_then_shuffle",
       {130, 5},
       {{H5Z_FILTER_DEFLATE, 9}, {H5Z_FILTER_SHUFFLE, 0}},
       "raw chunks, parallel inflate"},
      {"fletcher32",
       {96, 3},
       {{H5Z_FILTER_SHUFFLE, 0}, {H5Z_FILTER_DEFLATE, 4}, {H5Z_FILTER_FLETCHER32, 0}},
       "hdf5 hyperslab"},
  };
}

H5Handle pipeline_dcpl(const PipelineCase& c, int rank) {
  H5Handle dcpl = h5::plist_handle(H5_OK(H5Pcreate(H5P_DATASET_CREATE)));
  if (c.chunk_rows_cols.empty()) return dcpl;
  const std::vector<hsize_t> chunk(c.chunk_rows_cols.begin(), c.chunk_rows_cols.begin() + rank);
  H5_OK(H5Pset_chunk(dcpl.get(), rank, chunk.data()));
  for (const auto& [id, level] : c.filters) {
    if (id == H5Z_FILTER_DEFLATE) H5_OK(H5Pset_deflate(dcpl.get(), level));
    if (id == H5Z_FILTER_SHUFFLE) H5_OK(H5Pset_shuffle(dcpl.get()));
    if (id == H5Z_FILTER_FLETCHER32) H5_OK(H5Pset_fletcher32(dcpl.get()));
  }
  return dcpl;
}

// Writes raw bytes (the file type as the memory type: no conversion, so NaN payloads stay).
void write_raw(hid_t loc, const std::string& name, hid_t type, const std::vector<hsize_t>& dims,
               hid_t dcpl, const std::vector<unsigned char>& bytes) {
  H5Handle space = h5::dataspace_handle(
      H5_OK(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr)));
  H5Handle d = h5::dataset_handle(
      H5_OK(H5Dcreate2(loc, name.c_str(), type, space.get(), H5P_DEFAULT, dcpl, H5P_DEFAULT)));
  H5_OK(H5Dwrite(d.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()));
}

// One element type of the grid: its name, and its file type (made on demand: some are built).
struct DirectType {
  std::string name;
  std::function<H5Handle()> make;
};

// Test names and failure messages show the type's name, not its bytes.
void PrintTo(const DirectType& type, std::ostream* os) { *os << type.name; }

H5Handle copy_type(hid_t type) { return h5::datatype_handle(H5_OK(H5Tcopy(type))); }

std::vector<DirectType> direct_types() {
  std::vector<DirectType> types;
  const std::vector<std::pair<std::string, std::pair<hid_t, hid_t>>> predefined = {
      {"int8", {H5T_STD_I8LE, H5T_STD_I8BE}},        {"int16", {H5T_STD_I16LE, H5T_STD_I16BE}},
      {"int32", {H5T_STD_I32LE, H5T_STD_I32BE}},     {"int64", {H5T_STD_I64LE, H5T_STD_I64BE}},
      {"uint8", {H5T_STD_U8LE, H5T_STD_U8BE}},       {"uint16", {H5T_STD_U16LE, H5T_STD_U16BE}},
      {"uint32", {H5T_STD_U32LE, H5T_STD_U32BE}},    {"uint64", {H5T_STD_U64LE, H5T_STD_U64BE}},
      {"float32", {H5T_IEEE_F32LE, H5T_IEEE_F32BE}}, {"float64", {H5T_IEEE_F64LE, H5T_IEEE_F64BE}},
      {"bitfield8", {H5T_STD_B8LE, H5T_STD_B8BE}}};
  for (const auto& [name, le_be] : predefined) {
    const hid_t le = le_be.first, be = le_be.second;
    types.push_back({name + "_le", [le] { return copy_type(le); }});
    types.push_back({name + "_be", [be] { return copy_type(be); }});
  }
  types.push_back({"float16_le", [] { return half_type(H5T_IEEE_F32LE); }});
  types.push_back({"float16_be", [] { return half_type(H5T_IEEE_F32BE); }});
  types.push_back({"bool_enum", [] {
                     return enum_type(H5T_STD_I8LE, {{"FALSE", 0}, {"TRUE", 1}});
                   }});
  types.push_back({"enum16_be", [] {
                     return enum_type(H5T_STD_U16BE, {{"low", 10}, {"mid", 200}, {"high", 3000}});
                   }});
  return types;
}

class TableReaderDirectTypes : public ReaderFiles,
                               public testing::WithParamInterface<DirectType> {};

// Every element type in both byte orders, through every pipeline, in the matrix layout (5 columns,
// chunks of 3 columns: a partial chunk across the row) and the columnar one, over 1000 rows whose
// chunks do not divide them: the direct paths give HDF5's bits and report their path.
TEST_P(TableReaderDirectTypes, EveryPipelineAndLayoutGivesTheHdf5PathsBits) {
  const DirectType& t = GetParam();
  H5Handle type = t.make();
  const std::size_t size = H5Tget_size(type.get());
  const H5T_class_t cls = H5Tget_class(type.get());
  const H5T_order_t order = H5Tget_order(type.get());
  constexpr hsize_t rows = 1000, width = 5;
  for (const PipelineCase& c : pipeline_cases()) {
    SCOPED_TRACE(t.name + ", " + c.name);
    const auto bytes = awkward_bytes(rows * width, size, cls, order, 17);
    const fs::path matrix = file(t.name + "_" + c.name + "_matrix.h5");
    {
      H5Handle f = create_file(matrix);
      write_raw(f.get(), "X", type.get(), {rows, width}, pipeline_dcpl(c, 2).get(), bytes);
    }
    {
      SCOPED_TRACE("matrix");
      const std::vector<float> whole = expect_direct_equals_hdf5(matrix, c.read_path);
      if (t.name == "float32_le" && !whole.empty()) {
        // And what HDF5 gives is the stored floats themselves (column-major here, row-major there).
        for (hsize_t r = 0; r < rows; r += 37) {
          for (hsize_t j = 0; j < width; ++j) {
            float stored;
            std::memcpy(&stored, &bytes[(r * width + j) * 4], 4);
            EXPECT_EQ(std::bit_cast<std::uint32_t>(whole[j * rows + r]),
                      std::bit_cast<std::uint32_t>(stored));
          }
        }
      }
    }
    const fs::path columnar = file(t.name + "_" + c.name + "_columnar.h5");
    {
      H5Handle f = create_file(columnar);
      for (int j = 0; j < 3; ++j) {
        const std::vector<unsigned char> column(bytes.begin() + j * rows * size,
                                                bytes.begin() + (j + 1) * rows * size);
        write_raw(f.get(), "c" + std::to_string(j), type.get(), {rows}, pipeline_dcpl(c, 1).get(),
                  column);
      }
      write_strings_attribute(f.get(), "lathe_columns", {"c2", "c0", "c1"}, Strings::variable);
    }
    SCOPED_TRACE("columnar");
    expect_direct_equals_hdf5(columnar, c.read_path);
  }
}

INSTANTIATE_TEST_SUITE_P(TableReader, TableReaderDirectTypes, testing::ValuesIn(direct_types()),
                         [](const testing::TestParamInfo<DirectType>& info) {
                           return info.param.name;
                         });

// Every bit pattern of the two-byte types (the decoder tabulates HDF5's conversion of each).
TEST_F(TableReaderDirect, EveryBitPatternOfTwoByteTypes) {
  std::vector<unsigned char> bytes(65536 * 2);
  for (std::size_t i = 0; i < 65536; ++i) {
    bytes[2 * i] = static_cast<unsigned char>(i);
    bytes[2 * i + 1] = static_cast<unsigned char>(i >> 8);
  }
  const std::vector<std::pair<std::string, std::function<H5Handle()>>> types = {
      {"int16_be", [] { return copy_type(H5T_STD_I16BE); }},
      {"uint16_le", [] { return copy_type(H5T_STD_U16LE); }},
      {"float16_le", [] { return half_type(H5T_IEEE_F32LE); }},
      {"float16_be", [] { return half_type(H5T_IEEE_F32BE); }}};
  for (const auto& [name, make] : types) {
    for (const bool chunked : {false, true}) {
      SCOPED_TRACE(name + (chunked ? " chunked" : " contiguous"));
      const fs::path path = file(name + (chunked ? "_chunked.h5" : "_contiguous.h5"));
      {
        H5Handle f = create_file(path);
        H5Handle type = make();
        const PipelineCase c = chunked ? pipeline_cases()[4] : pipeline_cases()[0];
        write_raw(f.get(), "v", type.get(), {65536}, pipeline_dcpl(c, 1).get(), bytes);
      }
      expect_direct_equals_hdf5(path,
                                chunked ? "raw chunks, parallel inflate" : "pread (contiguous)");
    }
  }
}

// The pandas fixed layout's blocks are 2-D datasets like the matrix: a deflated float64 block and
// an int8 block read directly, in axis0 order.
TEST_F(TableReaderDirect, PandasBlocks) {
  const fs::path path = file("frame.h5");
  constexpr hsize_t rows = 500;
  {
    H5Handle f = create_file(path);
    H5Handle g = write_pandas_frame(f.get(), "df", {"b", "a", "n"}, rows, 2);
    write_strings_dataset(g.get(), "block0_items", {"a", "b"});
    std::vector<double> block0;
    for (hsize_t r = 0; r < rows; ++r) {
      block0.push_back(r % 9 == 0 ? std::nan("") : 0.1 * static_cast<double>(r));
      block0.push_back(-static_cast<double>(r) / 3.0);
    }
    write_dataset(g.get(), "block0_values", H5T_IEEE_F64LE, {rows, 2}, block0,
                  {.chunk = {64, 2}, .shuffle = true, .deflate = 5});
    write_strings_dataset(g.get(), "block1_items", {"n"});
    std::vector<std::int8_t> block1;
    for (hsize_t r = 0; r < rows; ++r) block1.push_back(static_cast<std::int8_t>(r % 250 - 125));
    write_dataset(g.get(), "block1_values", H5T_STD_I8LE, {rows, 1}, block1);
  }
  TableReader hdf5(path, direct_options(false));
  TableReader direct(path);
  EXPECT_EQ(direct.layout(), Layout::pandas);
  std::map<std::string, std::string> paths;
  for (const auto& st : direct.storage()) paths[st.dataset] = st.read_path;
  EXPECT_EQ(paths["/df/block0_values"], "raw chunks, parallel inflate");
  EXPECT_EQ(paths["/df/block1_values"], "pread (contiguous)");
  const std::vector<float> got = read_all(direct);
  expect_same_bits(got, read_all(hdf5));
  for (hsize_t r = 0; r < rows; ++r) {
    const float a = r % 9 == 0 ? kNaN : static_cast<float>(0.1 * static_cast<double>(r));
    EXPECT_TRUE(same_float(got[rows + r], a)) << r;
    EXPECT_EQ(got[r], static_cast<float>(-static_cast<double>(r) / 3.0)) << r;
    EXPECT_EQ(got[2 * rows + r], static_cast<float>(static_cast<int>(r % 250) - 125)) << r;
  }
}

// A chunked dataset written only in part: a chunk never written reads as the fill value (HDF5's
// default 0, or a user's), through the raw-chunk path; where HDF5 would leave the output alone
// (fill time "never", or no fill value defined) the block goes through HDF5 and both agree.
TEST_F(TableReaderDirect, PartiallyWrittenChunkedDatasetReadsTheFillValue) {
  struct FillCase {
    std::string name;
    std::function<void(hid_t dcpl)> set;
    std::optional<float> fill;  // what unwritten rows read as, when known
  };
  const float user_fill = -3.5f;
  const std::vector<FillCase> cases = {
      {"default", [](hid_t) {}, 0.0f},
      {"user", [&](hid_t dcpl) { H5_OK(H5Pset_fill_value(dcpl, H5T_NATIVE_FLOAT, &user_fill)); },
       user_fill},
      {"user_alloc",
       [&](hid_t dcpl) {
         H5_OK(H5Pset_fill_value(dcpl, H5T_NATIVE_FLOAT, &user_fill));
         H5_OK(H5Pset_fill_time(dcpl, H5D_FILL_TIME_ALLOC));
       },
       user_fill},
      {"never", [](hid_t dcpl) { H5_OK(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER)); },
       std::nullopt},
      {"undefined", [](hid_t dcpl) { H5_OK(H5Pset_fill_value(dcpl, H5T_NATIVE_FLOAT, nullptr)); },
       std::nullopt},
  };
  constexpr hsize_t rows = 1000, chunk = 64;
  for (const FillCase& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path path = file(c.name + ".h5");
    std::vector<float> written(rows, kNaN);  // NaN: rows left unwritten
    {
      H5Handle f = create_file(path);
      H5Handle dcpl = h5::plist_handle(H5_OK(H5Pcreate(H5P_DATASET_CREATE)));
      H5_OK(H5Pset_chunk(dcpl.get(), 1, &chunk));
      H5_OK(H5Pset_shuffle(dcpl.get()));
      H5_OK(H5Pset_deflate(dcpl.get(), 3));
      c.set(dcpl.get());
      H5Handle space = h5::dataspace_handle(H5_OK(H5Screate_simple(1, &rows, nullptr)));
      H5Handle d = h5::dataset_handle(H5_OK(H5Dcreate2(f.get(), "v", H5T_IEEE_F64BE, space.get(),
                                                       H5P_DEFAULT, dcpl.get(), H5P_DEFAULT)));
      // Rows [100, 300) and [900, 1000): chunks 1..4 and 14..15 exist, the others never do.
      for (const auto& [from, to] : {std::pair<hsize_t, hsize_t>{100, 300}, {900, 1000}}) {
        std::vector<double> values;
        for (hsize_t r = from; r < to; ++r) {
          values.push_back(static_cast<double>(r) * 1.25 + 0.1);
          written[r] = static_cast<float>(values.back());
        }
        const hsize_t count = to - from;
        H5Handle mem = h5::dataspace_handle(H5_OK(H5Screate_simple(1, &count, nullptr)));
        H5Handle file_space = h5::dataspace_handle(H5_OK(H5Dget_space(d.get())));
        H5_OK(
            H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &from, nullptr, &count, nullptr));
        H5_OK(H5Dwrite(d.get(), H5T_NATIVE_DOUBLE, mem.get(), file_space.get(), H5P_DEFAULT,
                       values.data()));
      }
    }
    const std::vector<float> whole =
        expect_direct_equals_hdf5(path, "raw chunks, parallel inflate");
    ASSERT_EQ(whole.size(), rows);
    for (hsize_t r = 0; r < rows; ++r) {
      const bool row_written = (r >= 100 && r < 300) || r >= 900;
      const hsize_t c_index = r / chunk;
      const bool chunk_written = (c_index >= 1 && c_index <= 4) || c_index >= 14;
      if (row_written) {
        EXPECT_EQ(whole[r], written[r]) << r;
      } else if (c.fill) {
        // In a chunk never written, and in the rest of a chunk written in part (HDF5 filled it
        // when it first wrote the chunk).
        EXPECT_EQ(whole[r], *c.fill) << r;
      } else if (!chunk_written) {
        // HDF5 leaves these rows of the output as they were, and so must the direct read.
        EXPECT_EQ(whole[r], kPoison) << r;
      }
    }
  }
}

// A chunk's filter mask says which filters were skipped for it (an optional filter that failed, or
// a chunk written raw with H5Dwrite_chunk): the direct path undoes only those that ran.
TEST_F(TableReaderDirect, FilterMaskSaysWhichFiltersAChunkSkipped) {
  const fs::path path = file("masks.h5");
  constexpr hsize_t chunk = 100, rows = 4 * chunk;
  std::vector<std::int32_t> values(rows);
  for (hsize_t r = 0; r < rows; ++r)
    values[r] = static_cast<std::int32_t>(r * 1000003 % 77777) - 30000;
  {
    H5Handle f = create_file(path);
    H5Handle dcpl = h5::plist_handle(H5_OK(H5Pcreate(H5P_DATASET_CREATE)));
    H5_OK(H5Pset_chunk(dcpl.get(), 1, &chunk));
    H5_OK(H5Pset_shuffle(dcpl.get()));     // filter 0
    H5_OK(H5Pset_deflate(dcpl.get(), 4));  // filter 1
    H5Handle space = h5::dataspace_handle(H5_OK(H5Screate_simple(1, &rows, nullptr)));
    H5Handle d = h5::dataset_handle(H5_OK(H5Dcreate2(f.get(), "v", H5T_STD_I32LE, space.get(),
                                                     H5P_DEFAULT, dcpl.get(), H5P_DEFAULT)));
    // Chunk c skips the filters of mask c: none, shuffle, deflate, both.
    for (unsigned mask = 0; mask < 4; ++mask) {
      const unsigned char* plain =
          reinterpret_cast<const unsigned char*>(values.data() + mask * chunk);
      std::vector<unsigned char> bytes(plain, plain + chunk * 4);
      if (!(mask & 1)) {  // shuffle: byte b of every element together
        std::vector<unsigned char> shuffled(bytes.size());
        for (hsize_t i = 0; i < chunk; ++i) {
          for (int b = 0; b < 4; ++b) shuffled[b * chunk + i] = bytes[i * 4 + b];
        }
        bytes = shuffled;
      }
      if (!(mask & 2)) {  // deflate: a zlib stream
        uLongf size = compressBound(bytes.size());
        std::vector<unsigned char> compressed(size);
        ASSERT_EQ(compress2(compressed.data(), &size, bytes.data(), bytes.size(), 4), Z_OK);
        compressed.resize(size);
        bytes = compressed;
      }
      const hsize_t offset = mask * chunk;
      H5_OK(H5Dwrite_chunk(d.get(), H5P_DEFAULT, mask, &offset, bytes.size(), bytes.data()));
    }
  }
  const std::vector<float> whole = expect_direct_equals_hdf5(path, "raw chunks, parallel inflate");
  ASSERT_EQ(whole.size(), rows);
  for (hsize_t r = 0; r < rows; ++r) EXPECT_EQ(whole[r], static_cast<float>(values[r])) << r;
}

// Filters other than deflate and shuffle keep HDF5's path, and read right.
TEST_F(TableReaderDirect, OtherFiltersKeepTheHdf5Path) {
  const fs::path path = file("filters.h5");
  constexpr hsize_t rows = 300, chunk = 50;
  std::vector<std::int32_t> values(rows);
  for (hsize_t r = 0; r < rows; ++r) values[r] = static_cast<std::int32_t>(r * r) - 5000;
  {
    H5Handle f = create_file(path);
    H5Handle space = h5::dataspace_handle(H5_OK(H5Screate_simple(1, &rows, nullptr)));
    H5Handle fletcher = h5::plist_handle(H5_OK(H5Pcreate(H5P_DATASET_CREATE)));
    H5_OK(H5Pset_chunk(fletcher.get(), 1, &chunk));
    H5_OK(H5Pset_fletcher32(fletcher.get()));
    H5Handle scaleoffset = h5::plist_handle(H5_OK(H5Pcreate(H5P_DATASET_CREATE)));
    H5_OK(H5Pset_chunk(scaleoffset.get(), 1, &chunk));
    H5_OK(H5Pset_scaleoffset(scaleoffset.get(), H5Z_SO_INT, H5Z_SO_INT_MINBITS_DEFAULT));
    H5Handle nbit = h5::plist_handle(H5_OK(H5Pcreate(H5P_DATASET_CREATE)));
    H5_OK(H5Pset_chunk(nbit.get(), 1, &chunk));
    H5_OK(H5Pset_deflate(nbit.get(), 2));
    H5_OK(H5Pset_nbit(nbit.get()));
    for (const auto& [name, dcpl] : {std::pair<std::string, hid_t>{"fletcher32", fletcher.get()},
                                     {"scaleoffset", scaleoffset.get()},
                                     {"deflate_nbit", nbit.get()}}) {
      H5Handle d = h5::dataset_handle(H5_OK(H5Dcreate2(
          f.get(), name.c_str(), H5T_STD_I32LE, space.get(), H5P_DEFAULT, dcpl, H5P_DEFAULT)));
      H5_OK(H5Dwrite(d.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()));
    }
  }
  const std::vector<float> whole = expect_direct_equals_hdf5(path, "hdf5 hyperslab");
  ASSERT_EQ(whole.size(), 3 * rows);
  for (hsize_t c = 0; c < 3; ++c) {
    for (hsize_t r = 0; r < rows; ++r)
      EXPECT_EQ(whole[c * rows + r], static_cast<float>(values[r])) << r;
  }
}

// H5Dget_offset counts the userblock; pread must land on the data all the same.
TEST_F(TableReaderDirect, ContiguousDataAfterAUserblock) {
  const fs::path path = file("userblock.h5");
  std::vector<double> values(777);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i) * -0.75;
  {
    H5Handle fcpl = h5::plist_handle(H5_OK(H5Pcreate(H5P_FILE_CREATE)));
    H5_OK(H5Pset_userblock(fcpl.get(), 1024));
    H5Handle f =
        h5::file_handle(H5_OK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT)));
    write_dataset(f.get(), "a", H5T_IEEE_F64BE, {777}, values);
    write_dataset(f.get(), "b", H5T_IEEE_F64LE, {777}, values,
                  {.chunk = {100}, .shuffle = true, .deflate = 1});
    // Unfiltered chunks are read by pread at their address plus the userblock: a wrong offset
    // gives wrong values here rather than a failed inflate and a quiet fallback.
    write_dataset(f.get(), "c", H5T_IEEE_F32LE, {777}, values, {.chunk = {100}});
  }
  TableReader reader(path);
  EXPECT_EQ(reader.storage()[0].read_path, "pread (contiguous)");
  EXPECT_EQ(reader.storage()[1].read_path, "raw chunks, parallel inflate");
  const std::vector<float> got = read_all(reader);
  ASSERT_EQ(got.size(), 3 * values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(got[i], static_cast<float>(values[i])) << i;
    EXPECT_EQ(got[values.size() + i], static_cast<float>(values[i])) << i;
    EXPECT_EQ(got[2 * values.size() + i], static_cast<float>(values[i])) << i;
  }
}

// A contiguous dataset never written has no storage: HDF5 answers with its fill value.
TEST_F(TableReaderDirect, NeverWrittenContiguousDatasetKeepsTheHdf5Path) {
  const fs::path path = file("unwritten.h5");
  {
    H5Handle f = create_file(path);
    write_dataset<float>(f.get(), "a", H5T_IEEE_F32LE, {4}, {1, 2, 3, 4});
    H5Handle dcpl = h5::plist_handle(H5_OK(H5Pcreate(H5P_DATASET_CREATE)));
    const float fill = 9.5f;
    H5_OK(H5Pset_fill_value(dcpl.get(), H5T_NATIVE_FLOAT, &fill));
    const hsize_t n = 4;
    H5Handle space = h5::dataspace_handle(H5_OK(H5Screate_simple(1, &n, nullptr)));
    H5Handle d = h5::dataset_handle(H5_OK(H5Dcreate2(f.get(), "b", H5T_IEEE_F32LE, space.get(),
                                                     H5P_DEFAULT, dcpl.get(), H5P_DEFAULT)));
    write_strings_attribute(f.get(), "lathe_columns", {"a", "b"}, Strings::variable);
  }
  TableReader reader(path);
  EXPECT_EQ(reader.storage()[0].read_path, "pread (contiguous)");
  EXPECT_EQ(reader.storage()[1].read_path, "hdf5 hyperslab");
  expect_same_floats(read_all(reader), {1, 2, 3, 4, 9.5f, 9.5f, 9.5f, 9.5f});
}

// Every chunk index HDF5 keeps (v1 B-tree; with the latest format: single chunk, fixed array,
// extensible array, v2 B-tree) answers the chunk lookups of the raw-chunk path.
TEST_F(TableReaderDirect, EveryChunkIndexType) {
  constexpr hsize_t rows = 700, width = 4;
  std::vector<float> x(rows * width);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.5f - 3.0f;
  struct IndexCase {
    std::string name;
    bool latest;
    std::vector<hsize_t> max_dims;
    std::vector<hsize_t> chunk;
  };
  const std::vector<IndexCase> cases = {
      {"btree1", false, {H5S_UNLIMITED, width}, {64, 4}},
      {"single_chunk", true, {rows, width}, {rows, width}},
      {"fixed_array", true, {rows, width}, {64, 3}},
      {"extensible_array", true, {H5S_UNLIMITED, width}, {64, 3}},
      {"btree2", true, {H5S_UNLIMITED, H5S_UNLIMITED}, {64, 3}},
  };
  for (const IndexCase& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path path = file(c.name + ".h5");
    {
      H5Handle fapl = h5::plist_handle(H5_OK(H5Pcreate(H5P_FILE_ACCESS)));
      if (c.latest) H5_OK(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST));
      H5Handle f =
          h5::file_handle(H5_OK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get())));
      const hsize_t dims[2] = {rows, width};
      H5Handle space = h5::dataspace_handle(H5_OK(H5Screate_simple(2, dims, c.max_dims.data())));
      H5Handle dcpl = h5::plist_handle(H5_OK(H5Pcreate(H5P_DATASET_CREATE)));
      H5_OK(H5Pset_chunk(dcpl.get(), 2, c.chunk.data()));
      H5_OK(H5Pset_deflate(dcpl.get(), 1));
      H5Handle d = h5::dataset_handle(H5_OK(H5Dcreate2(f.get(), "X", H5T_IEEE_F32LE, space.get(),
                                                       H5P_DEFAULT, dcpl.get(), H5P_DEFAULT)));
      H5_OK(H5Dwrite(d.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x.data()));
    }
    const std::vector<float> whole =
        expect_direct_equals_hdf5(path, "raw chunks, parallel inflate");
    ASSERT_EQ(whole.size(), x.size());
    for (hsize_t r = 0; r < rows; ++r) {
      for (hsize_t j = 0; j < width; ++j)
        ASSERT_EQ(whole[j * rows + r], x[r * width + j]) << r << "," << j;
    }
  }
}

// The same bits whatever the number of threads, and blocks of the reader's own block size.
TEST_F(TableReaderDirect, AnyNumberOfThreadsGivesTheSameBits) {
  const fs::path path = file("threads.h5");
  {
    H5Handle f = create_file(path);
    for (int c = 0; c < 6; ++c) {
      std::vector<double> v(5000);
      for (std::size_t r = 0; r < v.size(); ++r) v[r] = std::sin(static_cast<double>(r * (c + 1)));
      write_dataset(
          f.get(), "c" + std::to_string(c), c % 2 ? H5T_IEEE_F64BE : H5T_IEEE_F64LE, {5000}, v,
          c < 4 ? Storage{.chunk = {333}, .shuffle = c % 2 == 0, .deflate = 2} : Storage{});
    }
  }
  TableReader hdf5(path, direct_options(false, 1000));
  const std::vector<float> want = read_all(hdf5);
  for (const int threads : {1, 2, 3, 8}) {
    SCOPED_TRACE(std::to_string(threads) + " threads");
    TableReader reader(path, direct_options(true, 1000, threads));
    expect_same_bits(read_all(reader), want);
    // Block by block, as the streaming readers do.
    const std::int64_t block = reader.block_rows();
    for (std::int64_t first = 0; first < reader.rows(); first += block) {
      const std::int64_t n = std::min(block, reader.rows() - first);
      std::vector<float> out(static_cast<std::size_t>(n * 6), kPoison);
      reader.read_block(first, n, out);
      for (std::int64_t c = 0; c < 6; ++c) {
        for (std::int64_t r = 0; r < n; ++r) {
          ASSERT_EQ(std::bit_cast<std::uint32_t>(out[c * n + r]),
                    std::bit_cast<std::uint32_t>(want[c * reader.rows() + first + r]));
        }
      }
    }
  }
}

// A file this process has open for writing is read through HDF5 (whose caches hold what the file
// may not yet): the reader sees what was written.
TEST_F(TableReaderDirect, FileOpenForWritingKeepsTheHdf5Path) {
  const fs::path path = file("open_writer.h5");
  H5Handle writer = create_file(path);
  write_dataset<float>(writer.get(), "a", H5T_IEEE_F32LE, {3}, {1, 2, 3});
  // Flushed once, so that the file has a superblock to open; "b" is written after.
  H5_OK(H5Fflush(writer.get(), H5F_SCOPE_GLOBAL));
  write_dataset<float>(writer.get(), "b", H5T_IEEE_F32LE, {3}, {4, 5, 6},
                       {.chunk = {2}, .deflate = 1});
  TableReader reader(path);
  for (const auto& st : reader.storage()) EXPECT_EQ(st.read_path, "hdf5 hyperslab") << st.dataset;
  expect_same_floats(read_all(reader), {1, 2, 3, 4, 5, 6});
}

// A damaged chunk (a bit flipped inside its deflate stream) makes the direct path hand the block
// to HDF5, which reports it naming the file and dataset.
TEST_F(TableReaderDirect, DamagedChunkIsReportedByHdf5) {
  const fs::path path = file("damaged.h5");
  std::vector<float> v(4000);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 97) * 0.3f;
  haddr_t chunk_at = 0;
  hsize_t chunk_size = 0;
  {
    H5Handle f = create_file(path);
    write_dataset(f.get(), "v", H5T_IEEE_F32LE, {4000}, v,
                  {.chunk = {1000}, .shuffle = true, .deflate = 6});
    H5Handle d = h5::dataset_handle(H5_OK(H5Dopen2(f.get(), "v", H5P_DEFAULT)));
    const hsize_t offset = 2000;
    unsigned mask = 0;
    H5_OK(H5Dget_chunk_info_by_coord(d.get(), &offset, &mask, &chunk_at, &chunk_size));
  }
  ASSERT_GT(chunk_size, 16u);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(chunk_at + chunk_size / 2));
    char byte = 0;
    f.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x5A);
    f.seekp(static_cast<std::streamoff>(chunk_at + chunk_size / 2));
    f.write(&byte, 1);
  }
  TableReader reader(path);
  EXPECT_EQ(reader.storage()[0].read_path, "raw chunks, parallel inflate");
  // The intact chunks still read.
  std::vector<float> first(1000, kPoison);
  reader.read_block(0, 1000, first);
  expect_same_floats(first, std::vector<float>(v.begin(), v.begin() + 1000));
  std::vector<float> out(4000, kPoison);
  try {
    reader.read_block(0, 4000, out);
    ADD_FAILURE() << "a damaged chunk was read without an error";
  } catch (const Error& e) {
    expect_mentions(e.what(), {path.string(), "/v"});
  }
}

// read_block on a second thread (as the streaming trainer's prefetcher calls it) while this thread
// writes another HDF5 file: both finish and the blocks are right.
TEST_F(TableReaderDirect, ReadsOnAnotherThreadWhileThisThreadWritesHdf5) {
  const fs::path path = file("source.h5");
  constexpr std::int64_t rows = 20000;
  std::vector<double> v(rows);
  for (std::int64_t r = 0; r < rows; ++r) v[r] = static_cast<double>(r) / 7.0;
  {
    H5Handle f = create_file(path);
    write_dataset(f.get(), "a", H5T_IEEE_F64LE, {rows}, v,
                  {.chunk = {1024}, .shuffle = true, .deflate = 1});
    write_dataset(f.get(), "b", H5T_IEEE_F64BE, {rows}, v);
  }
  TableReader reader(path, direct_options(true, 4096));
  std::vector<float> seen(rows * 2, kPoison);
  std::string thread_error;
  std::thread prefetcher([&] {
    try {
      for (int pass = 0; pass < 5; ++pass) {
        for (std::int64_t first = 0; first < rows; first += reader.block_rows()) {
          const std::int64_t n = std::min(reader.block_rows(), rows - first);
          std::vector<float> out(static_cast<std::size_t>(n * 2));
          reader.read_block(first, n, out);
          std::copy(out.begin(), out.begin() + n, seen.begin() + first);
          std::copy(out.begin() + n, out.end(), seen.begin() + rows + first);
        }
      }
    } catch (const std::exception& e) {
      thread_error = e.what();
    }
  });
  for (int i = 0; i < 20; ++i) {
    H5Handle f = create_file(file("written_" + std::to_string(i) + ".h5"));
    write_dataset(f.get(), "w", H5T_IEEE_F32LE, {5000},
                  std::vector<float>(5000, static_cast<float>(i)), {.chunk = {500}, .deflate = 1});
  }
  prefetcher.join();
  EXPECT_EQ(thread_error, "");
  for (std::int64_t r = 0; r < rows; ++r) {
    ASSERT_EQ(seen[r], static_cast<float>(v[r])) << r;
    ASSERT_EQ(seen[rows + r], static_cast<float>(v[r])) << r;
  }
}

// `lathe score` reads the next block on one thread of its scoring region while the others score:
// the read's work items become tasks of that region's team, which its other threads take up as
// they finish. Every block read that way has the bits of a plain read (a read that returned before
// its tasks ran would leave poison), whichever threads ran its pieces.
TEST_F(TableReaderDirect, ReadFromOneThreadOfAParallelRegionGivesTheSameBits) {
  const fs::path path = file("in_team.h5");
  constexpr std::int64_t rows = 9000;
  {
    H5Handle f = create_file(path);
    for (int c = 0; c < 5; ++c) {
      std::vector<double> v(rows);
      for (std::size_t r = 0; r < v.size(); ++r) v[r] = std::cos(static_cast<double>(r) * (c + 0.5));
      const Storage storage = c == 0   ? Storage{}
                              : c == 1 ? Storage{.chunk = {700}}
                                       : Storage{.chunk = {512}, .shuffle = c == 2, .deflate = 1};
      write_dataset(f.get(), "c" + std::to_string(c), H5T_IEEE_F64LE, {rows}, v, storage);
    }
  }
  TableReader hdf5(path, direct_options(false, 2048));
  const std::vector<float> want = read_all(hdf5);
  TableReader reader(path, direct_options(true, 2048));
  const std::int64_t block = reader.block_rows();
  std::vector<float> seen(want.size(), kPoison);
  std::string error;
#pragma omp parallel num_threads(3)
  {
#pragma omp single nowait
    {
      try {
        for (std::int64_t first = 0; first < rows; first += block) {
          const std::int64_t n = std::min(block, rows - first);
          std::vector<float> out(static_cast<std::size_t>(n * 5), kPoison);
          reader.read_block(first, n, out);
          for (std::int64_t c = 0; c < 5; ++c) {
            std::copy_n(out.begin() + c * n, n, seen.begin() + c * rows + first);
          }
        }
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
  }
  EXPECT_EQ(error, "");
  expect_same_bits(seen, want);
}

// direct_read = false reads everything through HDF5 and says so.
TEST_F(TableReaderDirect, DirectReadOffReportsTheHyperslabPath) {
  const fs::path path = file("columnar.h5");
  write_block_columnar(path);
  TableReader on(path);
  TableReader off(path, direct_options(false));
  for (const auto& st : on.storage())
    EXPECT_EQ(st.read_path, "raw chunks, parallel inflate") << st.dataset;
  for (const auto& st : off.storage()) EXPECT_EQ(st.read_path, "hdf5 hyperslab") << st.dataset;
  // Categorical codes below zero are missing on both paths.
  const std::vector<float> a = read_all(on);
  expect_same_bits(a, read_all(off));
  const auto cols = block_columnar_columns();
  for (std::int64_t r = 0; r < kBlockTableRows; ++r)
    EXPECT_TRUE(same_float(a[3 * kBlockTableRows + r], cols[3][r]));
}

// ---- records through the direct paths
// -------------------------------------------------------------------------------
// A dataset of records (h5py's structured arrays, PyTables tables) is read like a dataset of
// numbers, each field decoded at its offset in the stored record; what it delivers must be the bits
// of the record reader's HDF5 path (H5Dread of the fields, direct_read = false) for every field type.

class TableReaderRecords : public ReaderFiles {};

struct RecordMemberCase {
  std::string name;
  std::function<H5Handle()> make;
};

H5Handle padded_string(std::size_t size, H5T_str_t pad) {
  H5Handle type = string_type(size, H5T_CSET_ASCII);
  H5_OK(H5Tset_strpad(type.get(), pad));
  return type;
}

H5Handle array_of(hid_t base, std::vector<hsize_t> dims) {
  return h5::datatype_handle(
      H5_OK(H5Tarray_create2(base, static_cast<unsigned>(dims.size()), dims.data())));
}

// Every field type the record reader reads: integers of every size, sign and byte order, float16,
// float32 and float64 in both byte orders, an 8-bit bitfield (PyTables' bool), h5py's bool enum, an
// enum over a big-endian 16-bit integer, fixed strings of each padding, an array of big-endian
// float64 (2 x 3) and one of fixed strings.
std::vector<RecordMemberCase> every_record_field() {
  std::vector<RecordMemberCase> members;
  for (const auto& [name, type] : std::vector<std::pair<std::string, hid_t>>{
           {"i8", H5T_STD_I8LE},     {"i16_be", H5T_STD_I16BE}, {"i32_le", H5T_STD_I32LE},
           {"i32_be", H5T_STD_I32BE}, {"i64_le", H5T_STD_I64LE}, {"i64_be", H5T_STD_I64BE},
           {"u8", H5T_STD_U8LE},     {"u16_le", H5T_STD_U16LE}, {"u32_be", H5T_STD_U32BE},
           {"u64_le", H5T_STD_U64LE}, {"u64_be", H5T_STD_U64BE}, {"f32_le", H5T_IEEE_F32LE},
           {"f32_be", H5T_IEEE_F32BE}, {"f64_le", H5T_IEEE_F64LE}, {"f64_be", H5T_IEEE_F64BE},
           {"bits", H5T_STD_B8LE}}) {
    const hid_t t = type;
    members.push_back({name, [t] { return copy_type(t); }});
  }
  members.push_back({"f16_le", [] { return half_type(H5T_IEEE_F32LE); }});
  members.push_back({"f16_be", [] { return half_type(H5T_IEEE_F32BE); }});
  members.push_back(
      {"ok", [] { return enum_type(H5T_STD_I8LE, {{"FALSE", 0}, {"TRUE", 1}}); }});
  members.push_back({"level", [] {
                       return enum_type(H5T_STD_U16BE, {{"low", 10}, {"mid", 200}, {"high", 3000}});
                     }});
  members.push_back({"s_term", [] { return padded_string(4, H5T_STR_NULLTERM); }});
  members.push_back({"s_null", [] { return padded_string(3, H5T_STR_NULLPAD); }});
  members.push_back({"s_space", [] { return padded_string(5, H5T_STR_SPACEPAD); }});
  members.push_back({"m", [] {
                       H5Handle base = copy_type(H5T_IEEE_F64BE);
                       return array_of(base.get(), {2, 3});
                     }});
  members.push_back({"tags", [] {
                       H5Handle base = padded_string(2, H5T_STR_NULLPAD);
                       return array_of(base.get(), {2});
                     }});
  return members;
}

// The compound type of `members`, a byte of padding after each (so no field is aligned).
H5Handle record_type(const std::vector<RecordMemberCase>& members) {
  std::vector<H5Handle> types;
  std::size_t size = 0;
  for (const auto& m : members) {
    types.push_back(m.make());
    size += H5Tget_size(types.back().get()) + 1;
  }
  H5Handle record = h5::datatype_handle(H5_OK(H5Tcreate(H5T_COMPOUND, size)));
  std::size_t offset = 0;
  for (std::size_t i = 0; i < members.size(); ++i) {
    H5_OK(H5Tinsert(record.get(), members[i].name.c_str(), offset, types[i].get()));
    offset += H5Tget_size(types[i].get()) + 1;
  }
  return record;
}

// Stored bytes of `rows` records of `type`: awkward_bytes for the numbers (ties, extremes, NaN
// payloads; random bytes for bitfields and enums, values outside the enum among them), strings
// drawn from a few labels (the empty one, missing, among them) padded as the type says, random
// padding between the fields.
std::vector<unsigned char> record_bytes(hid_t type, std::size_t rows, unsigned seed) {
  const std::size_t size = H5Tget_size(type);
  std::mt19937_64 rng(seed);
  std::vector<unsigned char> bytes(rows * size);
  for (auto& b : bytes) b = static_cast<unsigned char>(rng());
  const std::vector<std::string> labels = {"a", "bb", "", "ccc", "a"};
  const int n = H5_OK(H5Tget_nmembers(type));
  for (int i = 0; i < n; ++i) {
    const std::size_t offset = H5Tget_member_offset(type, static_cast<unsigned>(i));
    H5Handle member = h5::datatype_handle(H5_OK(H5Tget_member_type(type, static_cast<unsigned>(i))));
    H5Handle base = copy_type(member.get());
    std::size_t elements = 1;
    if (H5Tget_class(member.get()) == H5T_ARRAY) {
      base = h5::datatype_handle(H5_OK(H5Tget_super(member.get())));
      elements = H5Tget_size(member.get()) / H5Tget_size(base.get());
    }
    const std::size_t element = H5Tget_size(base.get());
    if (H5Tget_class(base.get()) == H5T_STRING) {
      const bool space = H5Tget_strpad(base.get()) == H5T_STR_SPACEPAD;
      for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t e = 0; e < elements; ++e) {
          const std::string& label = labels[rng() % labels.size()];
          unsigned char* p = &bytes[r * size + offset + e * element];
          std::memset(p, space ? ' ' : '\0', element);
          std::memcpy(p, label.data(), std::min(label.size(), element - (space ? 0 : 1)));
        }
      }
      continue;
    }
    const std::vector<unsigned char> values =
        awkward_bytes(rows * elements, element, H5Tget_class(base.get()), H5Tget_order(base.get()),
                      seed + static_cast<unsigned>(i));
    for (std::size_t r = 0; r < rows; ++r) {
      std::memcpy(&bytes[r * size + offset], &values[r * elements * element], elements * element);
    }
  }
  return bytes;
}

// Storage of the records files and the path they take; rows are 10000, so that chunks of 4096
// records (about 650 KB each, read in pieces) leave a partial chunk at the end.
std::vector<PipelineCase> record_pipeline_cases() {
  return {
      {"contiguous", {}, {}, "pread (contiguous)"},
      {"chunked", {96}, {}, "raw chunks"},
      {"large_chunks", {4096}, {}, "raw chunks"},
      {"shuffle", {130}, {{H5Z_FILTER_SHUFFLE, 0}}, "raw chunks"},
      {"shuffle_deflate6",
       {96},
       {{H5Z_FILTER_SHUFFLE, 0}, {H5Z_FILTER_DEFLATE, 6}},
       "raw chunks, parallel inflate"},
      {"deflate1_large", {4096}, {{H5Z_FILTER_DEFLATE, 1}}, "raw chunks, parallel inflate"},
      {"fletcher32", {96}, {{H5Z_FILTER_FLETCHER32, 0}}, "hdf5 hyperslab"},
  };
}

// Every field type, through every storage, in blocks that start and end inside chunks and span
// several: the direct read gives the HDF5 path's bits (with any number of threads), reports its path,
// and reading some columns leaves the others alone.
TEST_F(TableReaderRecords, EveryFieldTypeAndStorageGivesTheHdf5PathsBits) {
  const auto members = every_record_field();
  H5Handle type = record_type(members);
  constexpr hsize_t rows = 10000;
  const std::vector<unsigned char> bytes = record_bytes(type.get(), rows, 5);
  for (const PipelineCase& c : record_pipeline_cases()) {
    SCOPED_TRACE(c.name);
    const fs::path path = file("records_" + c.name + ".h5");
    {
      H5Handle f = create_file(path);
      write_raw(f.get(), "t", type.get(), {rows}, pipeline_dcpl(c, 1).get(), bytes);
    }
    const std::vector<float> whole = expect_direct_equals_hdf5(path, c.read_path);
    if (c.name == "chunked") expect_direct_equals_hdf5(path, c.read_path, 1, 4096);
    if (c.name == "large_chunks") expect_direct_equals_hdf5(path, c.read_path, 3, 3000);
    TableReader reader(path);
    ASSERT_EQ(reader.layout(), Layout::table);
    const std::int64_t ncols = static_cast<std::int64_t>(reader.columns().size());
    ASSERT_EQ(ncols, static_cast<std::int64_t>(members.size()) + 5 + 1);  // m: 6 columns, tags: 2
    ASSERT_EQ(whole.size(), static_cast<std::size_t>(rows * ncols));
    // Labels in order of first appearance; the empty string is missing.
    EXPECT_EQ(reader.columns()[20].name, "s_term");
    EXPECT_EQ(reader.columns()[20].type, ColumnType::categorical);
    EXPECT_EQ(reader.columns()[30].name, "tags_1");
    std::int64_t missing = 0;
    for (std::int64_t r = 0; r < static_cast<std::int64_t>(rows); ++r)
      missing += std::isnan(whole[static_cast<std::size_t>(21 * rows + r)]) ? 1 : 0;
    EXPECT_GT(missing, 0);
    // Two columns of the records: those alone are written, with the bits of the whole read.
    const std::int64_t first = 37, count = 5000;
    std::vector<float> some(static_cast<std::size_t>(count * ncols), kPoison);
    const std::vector<std::int64_t> wanted = {3, 23};
    reader.read_block_columns(first, count, wanted, some);
    for (std::int64_t col = 0; col < ncols; ++col) {
      const bool is_wanted = col == 3 || col == 23;
      for (std::int64_t r = 0; r < count; r += 97) {
        const float got = some[static_cast<std::size_t>(col * count + r)];
        if (c.read_path == "hdf5 hyperslab") continue;  // HDF5 reads a record whole
        if (is_wanted) {
          ASSERT_EQ(std::bit_cast<std::uint32_t>(got),
                    std::bit_cast<std::uint32_t>(whole[static_cast<std::size_t>(col * rows + first + r)]))
              << "column " << col << ", row " << first + r;
        } else {
          ASSERT_EQ(got, kPoison) << "column " << col;
        }
      }
    }
  }
}

// What the stored bytes cannot give keeps the HDF5 path for the whole dataset: a variable-length
// string (the file holds a heap id where HDF5's description of the type has a char*, so the stored
// layout is not the described one), wanted or not, and a type without an exact decoder (an enum of
// 4 bytes). A column of fixed-length strings reads directly.
TEST_F(TableReaderRecords, VariableLengthStringsAndWideEnumsKeepTheHdf5Path) {
  constexpr hsize_t rows = 300;
  H5Handle variable = string_type(0, H5T_CSET_UTF8);
  H5Handle wide_enum = enum_type(H5T_STD_I32LE, {{"no", 0}, {"yes", 1}});
  for (const auto& [name, field] : std::vector<std::pair<std::string, hid_t>>{
           {"variable", variable.get()}, {"enum32", wide_enum.get()}}) {
    // The field first, so that a layout taken from the description would misplace x.
    const std::size_t field_size = H5Tget_size(field), size = field_size + 8;
    H5Handle record = h5::datatype_handle(H5_OK(H5Tcreate(H5T_COMPOUND, size)));
    H5_OK(H5Tinsert(record.get(), "v", 0, field));
    H5_OK(H5Tinsert(record.get(), "x", field_size, H5T_IEEE_F64LE));
    std::vector<unsigned char> bytes(rows * size, 0);
    const char* texts[] = {"x", "", "y"};
    for (hsize_t r = 0; r < rows; ++r) {
      const double x = 0.5 * static_cast<double>(r);
      std::memcpy(&bytes[r * size + field_size], &x, 8);
      if (name == "variable") {
        std::memcpy(&bytes[r * size], &texts[r % 3], sizeof(const char*));
      } else {
        bytes[r * size] = static_cast<unsigned char>(r % 2);
      }
    }
    for (const bool chunked : {false, true}) {
      SCOPED_TRACE(name + (chunked ? " chunked" : " contiguous"));
      const fs::path path = file(name + (chunked ? "_chunked.h5" : "_contiguous.h5"));
      {
        H5Handle f = create_file(path);
        const Storage storage = chunked ? Storage{.chunk = {64}, .deflate = 1} : Storage{};
        H5Handle d = create_dataset(f.get(), "t", record.get(), {rows}, storage);
        H5_OK(H5Dwrite(d.get(), record.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()));
      }
      const std::vector<float> got = expect_direct_equals_hdf5(path, "hdf5 hyperslab");
      ASSERT_EQ(got.size(), 2 * rows);
      if (name == "variable") {
        EXPECT_TRUE(std::isnan(got[1]));  // ""
        EXPECT_EQ(got[2], 1.0f);          // "y", the second label
      } else {
        EXPECT_EQ(got[1], 1.0f);
      }
      EXPECT_EQ(got[rows + 3], 1.5f);
      // x alone decodes from the stored records, unless a variable-length string (not wanted) lies
      // before it: the file holds a heap id there, of another size than the described char*.
      H5Handle f = h5::file_handle(H5_OK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)));
      H5Handle d = h5::dataset_handle(H5_OK(H5Dopen2(f.get(), "t", H5P_DEFAULT)));
      RecordReader x_only(d.get(), {RecordField{.member = "x", .columns = {0}}}, "x alone");
      EXPECT_EQ(x_only.decodes_stored_records(), name != "variable");
    }
  }
  const fs::path path = file("string_column.h5");
  {
    H5Handle f = create_file(path);
    std::vector<std::string> values;
    for (hsize_t r = 0; r < rows; ++r) values.push_back(r % 7 == 0 ? "" : std::string(1 + r % 3, 'k'));
    write_strings_dataset(f.get(), "s", values);
    write_dataset<float>(f.get(), "x", H5T_IEEE_F32LE, {rows}, std::vector<float>(rows, 2.0f));
  }
  expect_direct_equals_hdf5(path, "pread (contiguous)");
}

// The record reader's two ways agree on what TableReader's layouts give them beyond the file's
// types: category codes (a negative code is missing) and a missing label besides "" (pandas'
// nan_rep); a label the reader did not collect is not decoded (read() then reports it).
TEST_F(TableReaderRecords, StoredRecordsDecodeAsReadDoesCodesAndMissingLabels) {
  constexpr hsize_t rows = 1000;
  H5Handle record = h5::datatype_handle(H5_OK(H5Tcreate(H5T_COMPOUND, 1 + 2 + 4 + 6)));
  H5_OK(H5Tinsert(record.get(), "c8", 0, H5T_STD_I8LE));
  H5_OK(H5Tinsert(record.get(), "c16", 1, H5T_STD_I16BE));
  H5Handle text = padded_string(3, H5T_STR_NULLPAD);
  H5_OK(H5Tinsert(record.get(), "s", 3, text.get()));
  H5Handle texts = array_of(text.get(), {2});
  H5_OK(H5Tinsert(record.get(), "pair", 7, texts.get()));
  const std::size_t size = H5Tget_size(record.get());
  std::vector<unsigned char> bytes(rows * size, 0);
  const std::vector<std::string> labels = {"nan", "ab", "", "c"};
  for (hsize_t r = 0; r < rows; ++r) {
    unsigned char* p = &bytes[r * size];
    p[0] = static_cast<unsigned char>(static_cast<int>(r % 7) - 2);  // -2 .. 4
    const std::int16_t c16 = static_cast<std::int16_t>(static_cast<int>(r % 300) - 5);
    p[1] = static_cast<unsigned char>(c16 >> 8);
    p[2] = static_cast<unsigned char>(c16);
    for (int e = 0; e < 3; ++e) {
      const std::string& label = labels[(r + static_cast<hsize_t>(e)) % labels.size()];
      std::memcpy(p + 3 + (e == 0 ? 0 : 1 + 3 * e), label.data(), label.size());
    }
  }
  const fs::path path = file("codes.h5");
  {
    H5Handle f = create_file(path);
    H5Handle d = create_dataset(f.get(), "t", record.get(), {rows});
    H5_OK(H5Dwrite(d.get(), record.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()));
  }
  H5Handle f = h5::file_handle(H5_OK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)));
  H5Handle d = h5::dataset_handle(H5_OK(H5Dopen2(f.get(), "t", H5P_DEFAULT)));
  std::vector<RecordField> fields(4);
  fields[0] = {.member = "c8", .columns = {4}, .category_codes = true};
  fields[1] = {.member = "c16", .columns = {0}, .category_codes = true};
  fields[2] = {.member = "s", .columns = {2}, .missing_labels = {"nan"}};
  fields[3] = {.member = "pair", .columns = {1, 3}, .missing_labels = {"nan"}};
  RecordReader reader(d.get(), fields, "codes.h5");
  reader.collect_labels(rows, 300);
  ASSERT_TRUE(reader.decodes_stored_records());
  ASSERT_EQ(reader.stored_record_size(), size);
  EXPECT_EQ(reader.labels(2, 0), (std::vector<std::string>{"ab", "c"}));
  std::vector<float> expected(rows * 5, kPoison), got(rows * 5, kPoison);
  reader.read(0, rows, expected.data());
  std::vector<float*> columns;
  for (int c = 0; c < 5; ++c) columns.push_back(got.data() + c * rows);
  // In two calls, the second into rows [400, 1000) of the output.
  ASSERT_TRUE(reader.decode_stored(bytes.data(), 400, size, columns, 0));
  ASSERT_TRUE(reader.decode_stored(bytes.data() + 400 * size, rows - 400, size, columns, 400));
  expect_same_bits(got, expected);
  // Codes come as stored: the table reader makes -1 missing and refuses -2 and -5, naming the row.
  EXPECT_EQ(got[4 * rows + 0], -2.0f);
  EXPECT_EQ(got[4 * rows + 3], 1.0f);
  EXPECT_EQ(got[0 * rows + 0], -5.0f);
  EXPECT_TRUE(std::isnan(got[2 * rows + 0]));  // "nan"
  EXPECT_EQ(got[2 * rows + 1], 0.0f);          // "ab"
  std::vector<unsigned char> unseen(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(size));
  std::memcpy(&unseen[3], "zz", 2);
  EXPECT_FALSE(reader.decode_stored(unseen.data(), 1, size, columns, 0));
}

}  // namespace
}  // namespace lathe

namespace lathe {
namespace {

// The category codes collect_labels keeps at open (TableReadOptions::category_code_bytes) give what
// reading the strings again gives, bit for bit: codes of 1, 2 and 4 bytes (a column widened as its
// labels pass 255 and 65535), missing values, blocks that do not start at row 0, and columns past
// the budget (read from the file, beside kept ones).
TEST_F(TableReaderColumnar, KeptCategoryCodesReadAsTheStringsDo) {
  constexpr hsize_t rows = 80000;
  const fs::path path = file("kept_codes.h5");
  {
    H5Handle f = create_file(path);
    H5Handle vlen = string_type(0, H5T_CSET_UTF8);
    const auto write_strings = [&](const char* name, auto label_of) {
      std::vector<std::string> values(rows);
      for (hsize_t r = 0; r < rows; ++r) values[r] = label_of(r);
      std::vector<const char*> ptrs;
      for (const auto& v : values) ptrs.push_back(v.c_str());
      H5Handle d = create_dataset(f.get(), name, vlen.get(), {rows});
      H5_OK(H5Dwrite(d.get(), vlen.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()));
    };
    write_strings("few", [](hsize_t r) { return r % 5 == 0 ? std::string() : "f" + std::to_string(r % 3); });
    write_strings("mid", [](hsize_t r) { return "m" + std::to_string((r * 7) % 300); });
    write_strings("many", [](hsize_t r) { return r % 101 == 0 ? std::string() : "id" + std::to_string(r % 75000); });
    std::vector<float> x(rows);
    for (hsize_t r = 0; r < rows; ++r) x[r] = static_cast<float>(r) * 0.5f;
    write_dataset<float>(f.get(), "x", H5T_IEEE_F32LE, {rows}, x);
  }
  const auto read_all = [&](std::int64_t code_bytes, std::int64_t first, std::int64_t count) {
    TableReadOptions options;
    options.block_rows = 4096;
    options.category_code_bytes = code_bytes;
    TableReader reader(path, options);
    std::vector<float> out(static_cast<std::size_t>(count) * reader.columns().size(), kPoison);
    reader.read_block(first, count, out);
    std::vector<std::vector<std::string>> labels;
    for (const ColumnInfo& c : reader.columns()) labels.push_back(c.categories);
    return std::make_pair(out, labels);
  };
  const auto [from_file, file_labels] = read_all(0, 0, rows);
  // Every column kept; only `few` (1 byte a row) kept; `few` and `mid` kept (`many` is dropped as
  // it widens past 2 bytes a row).
  for (const std::int64_t budget : {std::int64_t{1} << 30, std::int64_t{rows} * 2, std::int64_t{rows} * 5}) {
    const auto [kept, kept_labels] = read_all(budget, 0, rows);
    EXPECT_EQ(kept_labels, file_labels);
    expect_same_bits(kept, from_file);
  }
  const auto [part_kept, unused] = read_all(std::int64_t{1} << 30, 12345, 20000);
  const auto [part_file, unused_labels] = read_all(0, 12345, 20000);
  expect_same_bits(part_kept, part_file);
  // Spot checks of what both give: "" is missing, codes in order of first appearance.
  ASSERT_EQ(file_labels[0], (std::vector<std::string>{"f1", "f2", "f0"}));  // "few" is column 0
  EXPECT_TRUE(std::isnan(from_file[0]));
  EXPECT_EQ(from_file[1], 0.0f);
  std::vector<std::size_t> sizes;
  for (const auto& l : file_labels) sizes.push_back(l.size());
  std::sort(sizes.begin(), sizes.end());
  ASSERT_EQ(sizes.size(), 4u);  // x has none
  EXPECT_EQ(sizes[2], 300u);
  EXPECT_GT(sizes[3], 65535u);
}

}  // namespace
}  // namespace lathe
