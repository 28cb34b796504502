// HeapStringReader against HDF5's own reading of the same variable-length strings, and the table
// reader's columns of such strings read both ways.
#include "io/heap_string_reader.h"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/direct_block_reader.h"
#include "io/hdf5_handle.h"
#include "io/table_reader.h"
#include "runtime/error.h"
#include "runtime/label_table.h"
#include "tests/temp_dir.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;
using h5::H5Handle;

const std::string kFixture = "test fixture";
#define H5_OK(call) LATHE_H5_CHECK(call, kFixture)

// The file layouts the reader must follow: HDF5's defaults, a userblock (heap addresses then
// count from after it), and 4-byte addresses and lengths.
struct FileShape {
  hsize_t userblock = 0;
  std::size_t address_bytes = 8;
};

H5Handle vlen_string_type() {
  H5Handle type = h5::datatype_handle(H5_OK(H5Tcopy(H5T_C_S1)));
  H5_OK(H5Tset_size(type.get(), H5T_VARIABLE));
  H5_OK(H5Tset_cset(type.get(), H5T_CSET_UTF8));
  return type;
}

// Row r's string of column `kind`; "" and (for "mixed") some null strings are missing values.
std::string text_of(const std::string& kind, std::size_t r) {
  if (kind == "short") return "s" + std::to_string((r * 7919) % 5003);
  if (kind == "long")
    return std::string(100 + (r * 37) % 9000, static_cast<char>('a' + r % 26)) + std::to_string(r);
  // Multi-byte UTF-8, empty strings, one-byte strings.
  if (r % 11 == 0) return "";
  if (r % 7 == 0) return "x";
  return "caf\xc3\xa9-" + std::to_string(r % 300);
}

// Writes /short, /long and /mixed (rows each; /mixed with null strings every 13 rows) and /x.
void write_file(const fs::path& path, std::size_t rows, FileShape shape) {
  H5Handle fcpl = h5::plist_handle(H5_OK(H5Pcreate(H5P_FILE_CREATE)));
  if (shape.userblock) H5_OK(H5Pset_userblock(fcpl.get(), shape.userblock));
  H5_OK(H5Pset_sizes(fcpl.get(), shape.address_bytes, shape.address_bytes));
  H5Handle f =
      h5::file_handle(H5_OK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT)));
  H5Handle type = vlen_string_type();
  const hsize_t dims[1] = {rows};
  H5Handle space = h5::dataspace_handle(H5_OK(H5Screate_simple(1, dims, nullptr)));
  for (const std::string kind : {"short", "long", "mixed"}) {
    std::vector<std::string> values(rows);
    std::vector<const char*> pointers(rows);
    for (std::size_t r = 0; r < rows; ++r) {
      values[r] = text_of(kind, r);
      pointers[r] = kind == "mixed" && r % 13 == 0 ? nullptr : values[r].c_str();
    }
    H5Handle d = h5::dataset_handle(H5_OK(H5Dcreate2(f.get(), kind.c_str(), type.get(), space.get(),
                                                     H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
    H5_OK(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()));
  }
  std::vector<float> x(rows);
  for (std::size_t r = 0; r < rows; ++r) x[r] = static_cast<float>(r);
  H5Handle d = h5::dataset_handle(H5_OK(H5Dcreate2(f.get(), "x", H5T_IEEE_F32LE, space.get(),
                                                   H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  H5_OK(H5Dwrite(d.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x.data()));
}

// Rows [first, first + count) of dataset `name` as HDF5 reads them (null: "").
std::vector<std::string> hdf5_strings(hid_t file, const std::string& name, hsize_t first,
                                      hsize_t count) {
  if (count == 0) return {};
  H5Handle d = h5::dataset_handle(H5_OK(H5Dopen2(file, name.c_str(), H5P_DEFAULT)));
  H5Handle type = vlen_string_type();
  H5Handle space = h5::dataspace_handle(H5_OK(H5Dget_space(d.get())));
  H5_OK(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, &first, nullptr, &count, nullptr));
  H5Handle memory = h5::dataspace_handle(H5_OK(H5Screate_simple(1, &count, nullptr)));
  std::vector<char*> pointers(count, nullptr);
  H5_OK(H5Dread(d.get(), type.get(), memory.get(), space.get(), H5P_DEFAULT, pointers.data()));
  std::vector<std::string> out;
  for (char* p : pointers) out.emplace_back(p ? p : "");
  H5_OK(H5Dvlen_reclaim(type.get(), memory.get(), H5P_DEFAULT, pointers.data()));
  return out;
}

class HeapStringReaderTest : public ::testing::TestWithParam<FileShape> {
 protected:
  test::TemporaryDirectory dir_;
};

// Every row of every column, in blocks that start anywhere (a block's first collection already
// read by the block before or not), equals HDF5's read of it.
TEST_P(HeapStringReaderTest, GivesWhatHdf5Reads) {
  constexpr std::size_t rows = 20000;
  const fs::path path = dir_.path() / "strings.h5";
  write_file(path, rows, GetParam());
  H5Handle f = h5::file_handle(H5_OK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)));
  DirectBlockReader direct(path, f.get(), 1);
  for (const std::string kind : {"short", "long", "mixed"}) {
    SCOPED_TRACE(kind);
    H5Handle d = h5::dataset_handle(H5_OK(H5Dopen2(f.get(), kind.c_str(), H5P_DEFAULT)));
    const std::optional<HeapStringLayout> layout = direct.plan_heap_strings(d.get(), kind);
    ASSERT_TRUE(layout.has_value());
    EXPECT_EQ(layout->rows, static_cast<std::int64_t>(rows));
    EXPECT_EQ(layout->address_bytes, GetParam().address_bytes);
    EXPECT_EQ(layout->base_address, GetParam().userblock);
    HeapStringReader reader(direct.file(), *layout, kind);
    std::vector<std::string_view> texts;
    for (const auto& [first, count] : std::vector<std::pair<std::int64_t, std::int64_t>>{
             {0, 4096}, {4096, 4096}, {777, 3333}, {12345, 7655}, {0, 20000}, {19999, 1}, {5, 0}}) {
      ASSERT_TRUE(reader.read(first, count, texts)) << first;
      const auto expected =
          hdf5_strings(f.get(), kind, static_cast<hsize_t>(first), static_cast<hsize_t>(count));
      ASSERT_EQ(texts.size(), expected.size());
      for (std::size_t r = 0; r < texts.size(); ++r)
        ASSERT_EQ(texts[r], expected[r]) << "row " << first + r;
    }
    EXPECT_FALSE(reader.read(19999, 2, texts));  // past the end
  }
  // A dataset of numbers has no heap ids.
  H5Handle x = h5::dataset_handle(H5_OK(H5Dopen2(f.get(), "x", H5P_DEFAULT)));
  EXPECT_FALSE(direct.plan_heap_strings(x.get(), "x").has_value());
}

// The table reader's labels and codes of string columns are the same read from heap ids (the
// direct path) as through HDF5 (direct reads off), codes kept or not.
TEST_P(HeapStringReaderTest, TableColumnsReadTheSameBothWays) {
  constexpr std::size_t rows = 9000;
  const fs::path path = dir_.path() / "table.h5";
  write_file(path, rows, GetParam());
  const auto read_table = [&](bool direct, std::int64_t code_bytes) {
    TableReadOptions options;
    options.direct_read = direct;
    options.block_rows = 1000;
    options.category_code_bytes = code_bytes;
    TableReader reader(path, options);
    std::vector<float> out(rows * reader.columns().size());
    reader.read_block(0, static_cast<std::int64_t>(rows), out);
    std::vector<std::vector<std::string>> labels;
    std::vector<std::string> paths;
    for (const ColumnInfo& c : reader.columns()) labels.push_back(c.categories);
    for (const DatasetStorage& s : reader.storage()) paths.push_back(s.read_path);
    return std::make_tuple(out, labels, paths);
  };
  const auto [hdf5_values, hdf5_labels, hdf5_paths] = read_table(false, 0);
  for (const std::int64_t code_bytes :
       {std::int64_t{1} << 30, std::int64_t{0}, std::int64_t{rows}}) {
    SCOPED_TRACE(code_bytes);
    const auto [values, labels, paths] = read_table(true, code_bytes);
    EXPECT_EQ(labels, hdf5_labels);
    ASSERT_EQ(values.size(), hdf5_values.size());
    EXPECT_EQ(std::memcmp(values.data(), hdf5_values.data(), values.size() * sizeof(float)), 0);
    EXPECT_EQ(paths[0].rfind("heap ids (pread)", 0), 0u) << paths[0];
  }
  EXPECT_EQ(hdf5_paths[0], "hdf5 hyperslab");
  EXPECT_EQ(hdf5_labels[1].size(), 301u);  // "mixed": "x" and 300 "café-N"; "" and null are missing
}

// A column read only as text (an id passed through by `lathe score --id`) gives the same strings
// from its heap ids as through HDF5, in blocks anywhere in the table.
TEST_P(HeapStringReaderTest, TextColumnsReadTheSameBothWays) {
  constexpr std::size_t rows = 9000;
  const fs::path path = dir_.path() / "text.h5";
  write_file(path, rows, GetParam());
  const auto read_text = [&](bool direct, std::int64_t first, std::int64_t count) {
    TableReadOptions options;
    options.direct_read = direct;
    options.read_as_text = [](const std::string& name) { return name != "x"; };
    TableReader reader(path, options);
    std::vector<std::vector<std::string>> texts(3);
    for (std::int64_t c = 0; c < 3; ++c)
      reader.read_text(c, first, count, texts[static_cast<std::size_t>(c)]);
    return std::make_pair(texts, reader.storage()[0].read_path);
  };
  for (const auto& [first, count] :
       std::vector<std::pair<std::int64_t, std::int64_t>>{{0, 9000}, {4321, 1234}}) {
    const auto [from_heap, heap_path] = read_text(true, first, count);
    const auto [from_hdf5, hdf5_path] = read_text(false, first, count);
    EXPECT_EQ(from_heap, from_hdf5);
    EXPECT_EQ(heap_path, "heap ids (pread)");
    EXPECT_EQ(hdf5_path, "hdf5 hyperslab");
    EXPECT_EQ(from_heap[1][static_cast<std::size_t>(13 - first % 13) % 13], "");  // a null string
  }
}

// A column's category codes are its labels in order of first appearance, read either way, where
// the rows' lookups are batched (a candidate code per row from the table's entries, then the
// labels compared): with two labels whose hashes share the table's tag (and so its first place),
// the later one new in a block where the earlier one is known, then both in one block.
TEST(CategoryCodes, AreTheOrderOfFirstAppearanceWhateverTheLookupsShare) {
  std::string a, b;  // two labels of one tag (the top 32 bits of LabelTable::hash)
  {
    std::unordered_map<std::uint64_t, std::string> by_tag;
    for (int k = 0; k < 2000000 && a.empty(); ++k) {
      std::string label = "id" + std::to_string(k);
      const auto [it, fresh] = by_tag.emplace(LabelTable::hash(label) >> 32, label);
      if (!fresh) a = it->second, b = label;
    }
  }
  ASSERT_FALSE(a.empty()) << "no two labels of one tag";
  constexpr std::size_t kBlock = 100;
  std::vector<std::string> rows;
  const auto filler = [&](std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t r = rows.size();
      rows.push_back(r % 17 == 0 ? "" : "f" + std::to_string((r * 7919) % 700));
    }
  };
  filler(30), rows.push_back(a), filler(kBlock - 31);           // block 1: a
  filler(10), rows.push_back(b), rows.push_back(a), filler(87);  // block 2: b new, its candidate a's code
  rows.push_back(b), filler(50), rows.push_back(a), filler(48);  // block 3: both known
  filler(3 * kBlock + 7);
  // The expected labels and codes: first appearance, "" missing.
  std::vector<std::string> labels;
  std::vector<float> codes;
  {
    std::unordered_map<std::string, int> code_of;
    for (const std::string& r : rows) {
      if (r.empty()) {
        codes.push_back(std::numeric_limits<float>::quiet_NaN());
        continue;
      }
      const auto [it, fresh] = code_of.emplace(r, static_cast<int>(labels.size()));
      if (fresh) labels.push_back(r);
      codes.push_back(static_cast<float>(it->second));
    }
  }
  test::TemporaryDirectory dir;
  const fs::path path = dir.path() / "ids.h5";
  {
    H5Handle f = h5::file_handle(H5_OK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)));
    H5Handle type = vlen_string_type();
    const hsize_t dims[1] = {rows.size()};
    H5Handle space = h5::dataspace_handle(H5_OK(H5Screate_simple(1, dims, nullptr)));
    std::vector<const char*> pointers;
    for (const std::string& r : rows) pointers.push_back(r.c_str());
    H5Handle d = h5::dataset_handle(H5_OK(
        H5Dcreate2(f.get(), "id", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
    H5_OK(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()));
  }
  for (const bool direct : {true, false}) {
    for (const std::int64_t code_bytes : {std::int64_t{1} << 30, std::int64_t{0}}) {
      SCOPED_TRACE(std::string(direct ? "heap ids" : "hdf5") + ", code bytes " + std::to_string(code_bytes));
      TableReadOptions options;
      options.direct_read = direct;
      options.block_rows = kBlock;
      options.category_code_bytes = code_bytes;
      TableReader reader(path, options);
      ASSERT_EQ(reader.columns().size(), 1u);
      EXPECT_EQ(reader.columns()[0].categories, labels);
      std::vector<float> out(rows.size());
      reader.read_block(0, static_cast<std::int64_t>(rows.size()), out);
      ASSERT_EQ(out.size(), codes.size());
      EXPECT_EQ(std::memcmp(out.data(), codes.data(), out.size() * sizeof(float)), 0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(FileShapes, HeapStringReaderTest,
                         ::testing::Values(FileShape{}, FileShape{512, 8}, FileShape{0, 4}),
                         [](const auto& info) {
                           return "userblock" + std::to_string(info.param.userblock) + "_address" +
                                  std::to_string(info.param.address_bytes);
                         });

// Bytes the reader does not understand make it answer false (the table reader then reads through
// HDF5), and damage HDF5 itself fails on is an InputError naming it; never a wrong string: a
// damaged collection signature, version, object size or object index, and a file cut short.
TEST(HeapStringReaderDamage, AnswersFalseOrNamesTheDamage) {
  test::TemporaryDirectory dir;
  constexpr std::size_t rows = 3000;
  const fs::path clean = dir.path() / "clean.h5";
  write_file(clean, rows, FileShape{});
  std::vector<char> bytes;
  {
    std::ifstream in(clean, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string_view all(bytes.data(), bytes.size());
  const std::size_t first_collection = all.find("GCOL");
  ASSERT_NE(first_collection, std::string_view::npos);
  const std::size_t object = first_collection + 16;  // the first object's header
  struct Damage {
    const char* what;
    std::size_t at;
    char value;
    bool truncate = false;
  };
  for (const Damage& damage :
       {Damage{"signature", first_collection, 'X'}, Damage{"version", first_collection + 4, 2},
        Damage{"object size", object + 8, 99}, Damage{"object index", object, 0x7f},
        Damage{"cut short", first_collection + 100, 0, true}}) {
    SCOPED_TRACE(damage.what);
    std::vector<char> damaged = bytes;
    if (damage.truncate) {
      damaged.resize(damage.at);
    } else {
      damaged[damage.at] = damage.value;
    }
    const fs::path path = dir.path() / "damaged.h5";
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(damaged.data(), static_cast<std::streamsize>(damaged.size()));
    }
    // The heap ids come from the clean file's layout: the damaged copy's metadata may not open.
    H5Handle f = h5::file_handle(H5_OK(H5Fopen(clean.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)));
    DirectBlockReader direct(clean, f.get(), 1);
    H5Handle d = h5::dataset_handle(H5_OK(H5Dopen2(f.get(), "short", H5P_DEFAULT)));
    const std::optional<HeapStringLayout> layout = direct.plan_heap_strings(d.get(), "short");
    ASSERT_TRUE(layout.has_value());
    ReadOnlyFile file(path);
    ASSERT_TRUE(file.open());
    HeapStringReader reader(file, *layout, "damaged.h5");
    std::vector<std::string_view> texts;
    bool all_read = true;
    try {
      for (std::int64_t first = 0; first < static_cast<std::int64_t>(rows); first += 1000) {
        all_read = all_read && reader.read(first, 1000, texts);
      }
    } catch (const InputError& e) {
      // An id whose object is missing or of another size, or a walk of the objects that meets a
      // free space of size 0 (as HDF5 walks them).
      EXPECT_NE(std::string(e.what()).find("damaged.h5: damaged"), std::string::npos) << e.what();
      all_read = false;
    }
    EXPECT_FALSE(all_read);
  }
}

// A file of `rows` short strings as write_file makes it: its column 'short''s heap layout, its
// bytes and the offset of its first global heap collection ("GCOL"), for tests that damage it.
struct HeapFileBytes {
  HeapStringLayout layout;
  std::vector<char> bytes;
  std::size_t collection = 0;
};
HeapFileBytes heap_file_bytes(const fs::path& path, std::size_t rows) {
  write_file(path, rows, FileShape{});
  H5Handle f = h5::file_handle(H5_OK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)));
  DirectBlockReader direct(path, f.get(), 1);
  H5Handle d = h5::dataset_handle(H5_OK(H5Dopen2(f.get(), "short", H5P_DEFAULT)));
  const std::optional<HeapStringLayout> layout = direct.plan_heap_strings(d.get(), "short");
  if (!layout) throw std::runtime_error("no heap string layout for 'short'");
  HeapFileBytes out{*layout, {}, 0};
  std::ifstream in(path, std::ios::binary);
  out.bytes.assign(std::istreambuf_iterator<char>(in), {});
  out.collection = std::string_view(out.bytes.data(), out.bytes.size()).find("GCOL");
  if (out.collection == std::string_view::npos) throw std::runtime_error("no global heap collection");
  return out;
}

// The message of the InputError that reading every row of `bytes` (written to `path`) throws, or
// "" with a test failure when it reads them.
std::string damage_message(const fs::path& path, const std::vector<char>& bytes, const HeapStringLayout& layout,
                           std::size_t rows) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  ReadOnlyFile file(path);
  if (!file.open()) throw std::runtime_error("cannot open " + path.string());
  HeapStringReader reader(file, layout, "damaged.h5, dataset 'short'");
  std::vector<std::string_view> texts;
  try {
    reader.read(0, static_cast<std::int64_t>(rows), texts);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

// An object 0 (free space) of size 0 is where HDF5 1.10 loops forever reading the collection: the
// reader names the damage instead of leaving the rows to HDF5.
TEST(HeapStringReaderDamage, FreeSpaceOfSizeZeroIsAnError) {
  test::TemporaryDirectory dir;
  constexpr std::size_t rows = 3000;
  HeapFileBytes file = heap_file_bytes(dir.path() / "free0.h5", rows);
  // The first object's index (2 bytes) and size (8 bytes at +8) set to 0.
  std::memset(file.bytes.data() + file.collection + 16, 0, 2);
  std::memset(file.bytes.data() + file.collection + 24, 0, 8);
  const std::string message = damage_message(dir.path() / "damaged.h5", file.bytes, file.layout, rows);
  EXPECT_NE(message.find("damaged.h5, dataset 'short': damaged: the global heap collection at byte"), std::string::npos)
      << message;
}

// An object whose size runs past its collection's end is where HDF5 1.10 copies from past its
// buffer (a segmentation fault): the reader names the damage instead of answering false, which
// would leave the rows to HDF5.
TEST(HeapStringReaderDamage, AnObjectPastTheCollectionsEndIsAnError) {
  test::TemporaryDirectory dir;
  constexpr std::size_t rows = 3000;
  const HeapFileBytes file = heap_file_bytes(dir.path() / "past.h5", rows);
  for (const std::uint16_t index : {std::uint16_t{1}, std::uint16_t{0}}) {  // a string, then free space
    SCOPED_TRACE("object " + std::to_string(index));
    std::vector<char> damaged = file.bytes;
    // The first object's index (2 bytes) and its size (8 bytes at +8): 1.5 GB.
    const std::uint64_t size = 0x5A000000;
    std::memcpy(damaged.data() + file.collection + 16, &index, 2);
    std::memcpy(damaged.data() + file.collection + 24, &size, 8);
    const std::string message = damage_message(dir.path() / "damaged.h5", damaged, file.layout, rows);
    EXPECT_NE(message.find("damaged.h5, dataset 'short': damaged: the global heap collection at byte"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("of size 1509949440 at its byte 16, past its end"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace lathe
