// Tests of lathe::TableReader over HDF5 files written here with the HDF5 C API. The files are built
// by hand rather than with Lathe's own writers so the reader is checked against the layouts as
// other tools store them: h5py matrices (any element type, byte order, chunking and filter),
// columnar groups, and pandas' format="fixed" frames as PyTables lays them out.
#include "io/table_reader.h"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "io/hdf5_handle.h"
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

TEST_F(TableReaderPandas, RefusesAFrameInTableFormat) {
  const fs::path path = file("table_format.h5");
  {
    H5Handle f = create_file(path);
    write_pandas_frame(f.get(), "df", {"v"}, 2, 0, "frame_table");
  }
  expect_mentions(input_error(path), {path.string(), "'df'", "frame_table", "fixed"});
}

// ---- bad input
// -----------------------------------------------------------------------------------

TEST_F(TableReaderBadInput, MissingFile) {
  const fs::path path = file("absent.h5");
  expect_mentions(input_error(path), {path.string(), "no such file"});
}

TEST_F(TableReaderBadInput, Directory) {
  expect_mentions(input_error(dir_), {dir_.string(), "directory"});
}

TEST_F(TableReaderBadInput, EmptyFile) {
  const fs::path path = file("empty.h5");
  std::ofstream(path).close();
  expect_mentions(input_error(path), {path.string(), "empty"});
}

TEST_F(TableReaderBadInput, TextFile) {
  const fs::path path = file("table.csv");
  std::ofstream(path) << "a,b,y\n1,2,0\n3,4,1\n";
  expect_mentions(input_error(path), {path.string(), "not an HDF5 file"});
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

TEST_F(TableReaderBadInput, StringColumn) {
  const fs::path path = file("string_column.h5");
  {
    H5Handle type = string_type(0, H5T_CSET_UTF8);
    H5Handle f = create_file(path);
    write_dataset<float>(f.get(), "a", H5T_IEEE_F32LE, {2}, {1, 2});
    create_dataset(f.get(), "name", type.get(), {2});
  }
  expect_mentions(input_error(path), {path.string(), "'/name'", "string"});
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

}  // namespace
}  // namespace lathe
