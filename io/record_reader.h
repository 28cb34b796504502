// Reads table columns out of a dataset of records (an HDF5 compound type: h5py's structured
// arrays, PyTables and pandas tables) or out of a 1-D dataset of strings. Lathe's direct read paths
// decode plain numbers only, so these go through H5Dread with a memory type made of just the fields
// wanted: numbers converted to float32 by HDF5, strings as they are stored, then turned into
// category codes here.
//
// A string field is a categorical column whose labels are the distinct strings of the dataset, in
// the order they first appear (collect_labels reads every row once for them). The empty string,
// and any of the field's `missing_labels`, is a missing value.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lathe {

// A member of a compound type, with its number of elements (1, or the size of an array member).
struct RecordMember {
  std::string name;
  std::int64_t elements = 1;
  bool is_array = false;
};

// The members of the compound type `type`, in order. `where` names the dataset for errors.
std::vector<RecordMember> record_members(hid_t type, const std::string& where);

struct RecordField {
  std::string member;  // the compound member's name; "" for the dataset's own element
  std::vector<std::int64_t>
      columns;                  // the table column of each element (an array member has several)
  bool category_codes = false;  // integer category codes: a negative code is missing
  // Strings that mean a missing value in a string field besides "" (pandas' nan_rep, say).
  std::vector<std::string> missing_labels;
};

class RecordReader {
 public:
  // `dataset` stays the caller's and must outlive the reader; `where` names it in errors. Throws
  // InputError naming the member when its type is not integer, float, bool (bitfield or enum) or
  // string, or when `columns` does not give one column per element.
  RecordReader(hid_t dataset, std::vector<RecordField> fields, std::string where);
  ~RecordReader();
  RecordReader(RecordReader&&) noexcept;
  RecordReader& operator=(RecordReader&&) noexcept;

  std::size_t field_count() const;
  // The element type of a field on disk: "float64", "int8", "bool", "string", ...
  const std::string& dtype(std::size_t field) const;
  // Whether the field holds strings (its columns are categorical).
  bool holds_labels(std::size_t field) const;

  // Reads rows [0, rows) once, `block_rows` at a time, to find the labels of every string field.
  void collect_labels(std::int64_t rows, std::int64_t block_rows);
  // The labels of element `element` of a string field, in order of first appearance (the category
  // code of a label is its position).
  const std::vector<std::string>& labels(std::size_t field, std::size_t element) const;

  // Reads rows [first, first + count) into the column-major block `out` (out[column * count + r]):
  // numbers as float32 (HDF5's conversion), strings as their category codes, missing values as NaN.
  // A string not seen by collect_labels (the file changed since) is an Error.
  void read(std::int64_t first, std::int64_t count, float* out);
  // Reads rows [first, first + count) of the number feeding table column `column` converted by HDF5
  // to `memory_type` (a native integer or float type), count values into `out`: exact where float32
  // is not. Throws Error for a string field or a column no field feeds.
  void read_as(std::int64_t column, std::int64_t first, std::int64_t count, hid_t memory_type, void* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe
