// Reads a table from an HDF5 file in blocks of rows, whatever its layout:
//   matrix    a 2-D numeric dataset (default "X", rows x features) and an optional 1-D label
//             dataset (default "y"); column names from a `feature_names` or `columns` attribute,
//             else f0, f1, ...; the label, when present, is the last column.
//   columnar  a group of equal-length 1-D datasets, one per column: Lathe's own layout (written by
//             `lathe import` and `lathe synth`). A categorical column stores int32 codes (-1 missing)
//             and its labels in a `categories` attribute (a label given twice is one category:
//             its codes read as the first's); the group's `lathe_columns` attribute gives the
//             column order.
//   pandas    DataFrame.to_hdf(..., format="fixed"): axis0, blockN_items, blockN_values; numeric and
//             bool blocks. String (object) blocks and dates and times (int64 blocks with a
//             datetime, timedelta or period `value_type`) are refused, naming their columns; an
//             empty frame (placeholder blocks with a `shape` attribute) has 0 rows.
//   pandas table  DataFrame.to_hdf(..., format="table"): a PyTables table of records whose column
//             names pandas keeps in text pickles; numbers, bools, strings and categoricals.
//   table     a 1-D dataset of records (an HDF5 compound type: h5py's structured arrays, PyTables
//             tables), one column per field, an array field's elements named FIELD_0, FIELD_1, ...
// A string column (a 1-D string dataset of the columnar layout, or a string field) is categorical:
// its labels are its distinct strings in the order they first appear, found by reading the column
// once when the file is opened (unless TableReadOptions::read_as_text says it is read only as
// text); the empty string (and pandas' nan_rep) is missing.
// Every supported element type (int8..int64, uint8..uint64, float16/32/64, bool as an HDF5
// bitfield or enum, either byte order) is read as float32. Errors name the file and dataset.
//
// Reading takes one of three paths per dataset (DatasetStorage::read_path), all giving the same
// bits: contiguous unfiltered storage is read with pread on a descriptor of the reader's own;
// chunks filtered with deflate and/or shuffle only (or unfiltered) are fetched raw with
// H5Dread_chunk and inflated, unshuffled and converted by several threads outside HDF5's global
// lock; anything else (fletcher32, szip, other filters, compact storage, ...) goes through HDF5's
// hyperslab read, which runs filters and conversion on one thread. Records and fixed-length
// strings take the same direct paths, each field decoded at its offset in the stored record; a
// dataset of records holding a variable-length string (stored as a heap id) or a type that has no
// exact decoder (an enum of 4 or 8 bytes, say) is read by HDF5 with a memory type of the fields.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lathe {

enum class Layout { matrix, columnar, pandas, pandas_table, table };
const char* layout_name(Layout layout);

enum class ColumnType { numeric, categorical };

// A block (read_block) carries a category as its code in float32, which holds every integer up to
// 2^24 exactly: a column of up to this many labels (codes 0..2^24) is read exactly. Commands refuse
// to use a column of more labels as a feature (its codes would round to a neighbour's); an id of
// strings is read as text instead (TableReadOptions::read_as_text), and integer codes exactly
// (read_column_as, read_text).
constexpr std::int64_t kMaxExactCategoryLabels = (std::int64_t{1} << 24) + 1;

// Types a column's values can be read in without read_block's float32 rounding (TableReader::
// read_column_as): for ids, labels and passthrough columns that must come out as they went in.
enum class ExactType { float64, int64, uint64, int32 };
const char* column_type_name(ColumnType type);

struct ColumnInfo {
  std::string name;
  ColumnType type = ColumnType::numeric;
  std::string dtype;                    // element type on disk: "float32", "int64", "bool", "string", ...
  std::vector<std::string> categories;  // categorical only: the label of code i, each once
  std::string dataset;                  // HDF5 path of the dataset that holds the column
  // A column of strings named by TableReadOptions::read_as_text: categorical, dtype "string", no
  // categories; read_block gives NaN for it and read_text its strings.
  bool text_only = false;
};

// How one dataset is stored, for `lathe inspect`.
struct DatasetStorage {
  std::string dataset;             // HDF5 path
  std::string dtype;               // e.g. "float64"
  std::string byte_order;          // "little", "big" or "none"
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> chunk;  // empty when contiguous
  std::vector<std::string> filters;  // e.g. {"shuffle", "deflate"}
  // How read_block reads it: "pread (contiguous)", "raw chunks, parallel inflate", "raw chunks"
  // (unfiltered or shuffle only) or "hdf5 hyperslab" (for records: H5Dread of the fields, HDF5
  // converting them). A column of variable-length strings read from its stored heap ids: "heap ids
  // (pread), codes kept" where every row's code was kept at open (the blocks then read no strings),
  // else "heap ids (pread)".
  std::string read_path;
};

// The most rows a block holds whatever TableReadOptions::block_rows asks (2^40): larger values
// read as this one does, since no table has more rows.
inline constexpr std::int64_t kMaxBlockRows = std::int64_t{1} << 40;

struct TableReadOptions {
  std::string matrix_dataset = "X";  // the 2-D dataset of the matrix layout
  std::string label_dataset = "y";   // the optional label of the matrix layout
  // Matrix layout: further 1-D datasets beside the matrix read as columns when present (a
  // `--weight` or `--id` column); commands name them. Any other dataset beside it is not read.
  std::vector<std::string> vector_datasets;
  std::string group;                 // a group to read (columnar) or a pandas key; "" = detect
  std::int64_t block_rows = 65536;   // target rows per block; sizes the chunk cache
  // Let datasets that allow it take the direct paths (pread, raw chunks decoded in parallel);
  // false reads everything through HDF5's hyperslab path.
  bool direct_read = true;
  int decode_threads = 0;  // threads that read, inflate and convert a block; 0: OpenMP's default
  // Open a table of zero rows (scoring an empty partition gives an empty output); false: a table
  // of zero rows is an InputError, as nothing can be trained, profiled or evaluated on it.
  bool allow_empty = false;
  // Columns of strings (1-D string datasets, string fields of records) for which this returns true
  // (given the column's name) are read only as text (ColumnInfo::text_only): their labels are not
  // collected when the file is opened. For columns a command never uses as categories (an id it
  // passes through, a dropped column): a unique string per row then costs neither a pass at open
  // nor memory that grows with the rows. A string field of several columns is text only when each
  // of them is. Not for a matrix's label.
  std::function<bool(const std::string&)> read_as_text;
  // Bytes of memory, over all string columns read through HDF5, for every row's category code found
  // when the file is opened (RecordReader::collect_labels): each later read of those rows gives the
  // codes kept in place of reading and looking up the strings again. 1 to 4 bytes a row and column
  // (as the column's labels need); a column past the budget is read from the file each time.
  std::int64_t category_code_bytes = std::int64_t{512} << 20;
  // Bools on one side, their labels on the other: `lathe import` reads a CSV's True/False as the
  // labels of a categorical column, while pandas and h5py store a bool column as an HDF5 enum or
  // bitfield, which Lathe reads as the numbers 0 and 1. A command that applies a model names the
  // columns to read as the model's training file held them (by column name; empty: none):
  // - bools_as_labels: a bool column (dtype "bool") read as a categorical column of the two labels
  //   given, false's then true's (codes 0 and 1; the values read_block gives);
  // - labels_as_bools: a categorical column whose labels are each a bool's written as text
  //   (bool_text_value) read as a numeric column of 0 and 1 (missing stays missing).
  // A column not of that kind is read as it is, and its type then tells what it holds.
  std::map<std::string, std::array<std::string, 2>> bools_as_labels;
  std::set<std::string> labels_as_bools;
};

// The bool a label writes as pandas' true_values and false_values do (True, TRUE, true; False,
// FALSE, false); nothing for any other label.
std::optional<bool> bool_text_value(std::string_view label);

class TableReader {
 public:
  // Opens the file and detects its layout. Throws InputError naming the file (and dataset) when it
  // is missing, empty, not HDF5, has no table, zero rows (unless options.allow_empty), mismatched lengths or unsupported types.
  explicit TableReader(const std::filesystem::path& path, TableReadOptions options = {});
  ~TableReader();
  TableReader(TableReader&&) noexcept;
  TableReader& operator=(TableReader&&) noexcept;

  const std::filesystem::path& path() const;
  Layout layout() const;
  std::int64_t rows() const;
  const std::vector<ColumnInfo>& columns() const;
  // Swaps the labels of column `column` (columns()[column].categories) with `labels`, so that a
  // caller that would otherwise hold a second copy of millions of labels (a training's profile) can
  // borrow them, and hand them back. Nothing that reads the column's labels may run meanwhile.
  void swap_categories(std::size_t column, std::vector<std::string>& labels);
  const std::vector<DatasetStorage>& storage() const;
  // Rows per block: options.block_rows rounded to a multiple of the chunk rows (chunk-aligned reads
  // decompress every chunk once), at least one chunk.
  std::int64_t block_rows() const;

  // Reads rows [first_row, first_row + row_count) of every column into `out`, column-major:
  // out[c * row_count + r]. Missing values and missing category codes become NaN.
  // out.size() must be row_count * columns().size(). One call at a time per reader, from any
  // thread (it may start an OpenMP team of its own, nested or not).
  void read_block(std::int64_t first_row, std::int64_t row_count, std::span<float> out);
  // As read_block, but reads only the datasets that hold `columns` (a 2-D dataset is read whole
  // when one of its columns is wanted, and so is a dataset of records that HDF5 reads); the other
  // columns of `out` are left as they were unless such a whole read writes them. For a pass over a
  // few columns of a wide table, such as its label.
  void read_block_columns(std::int64_t first_row, std::int64_t row_count, std::span<const std::int64_t> columns,
                          std::span<float> out);

  // The type in which `column` keeps every stored value exactly, where float32 might not: float64
  // for float64 data, uint64 for uint64, int64 for other integers; int32 for the codes of a
  // categorical column stored as integers. Nothing where read_block's float32 is already exact
  // (float32, float16, bool, enum) or the column holds strings.
  std::optional<ExactType> exact_type(std::int64_t column) const;
  // Rows [first_row, first_row + row_count) of `column` converted by HDF5 to `type`: `out` holds
  // row_count doubles, int64s, uint64s or int32s. Missing category codes stay negative; the codes of
  // a label that the stored labels name twice read as its first code, as in read_block. Throws Error
  // for a column of strings. One call at a time per reader, as read_block.
  void read_column_as(std::int64_t column, std::int64_t first_row, std::int64_t row_count, ExactType type,
                      void* out);
  // Rows [first_row, first_row + row_count) of a categorical `column` as text into `out` (resized
  // to row_count): a column of strings (text_only or not) as stored, a column of integer codes as
  // the labels of its codes; a missing value is "". Throws Error for a numeric column, InputError
  // naming the file, column and row for text that is not UTF-8. One call at a time per reader, as
  // read_block.
  void read_text(std::int64_t column, std::int64_t first_row, std::int64_t row_count, std::vector<std::string>& out);

 private:
  // read_column_as as HDF5 converts the stored values, before codes of a repeated label merge.
  void read_stored_column_as(std::int64_t column, std::int64_t first_row, std::int64_t row_count, ExactType type,
                             void* out);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe
