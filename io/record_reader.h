// Reads table columns out of a dataset of records (an HDF5 compound type: h5py's structured
// arrays, PyTables and pandas tables) or out of a 1-D dataset of strings, in two ways that give the
// same bits:
// - read(): H5Dread with a memory type made of just the fields wanted: numbers converted to float32
//   by HDF5, strings as they are stored, then turned into category codes here. One thread, under
//   HDF5's global lock.
// - decode_stored(): the records' bytes as the file stores them (read by DirectBlockReader, in
//   parallel), each field element decoded at its offset in the record by an ElementDecoder checked
//   against HDF5 converting that member alone, fixed-length strings looked up as read() does.
//   Possible where every field has such a decoder or is a fixed-length string
//   (decodes_stored_records). Not where the dataset's type holds a variable-length string anywhere
//   (wanted or not): the file stores it as a heap id, of another size than the char* HDF5's
//   description of the type gives, so the stored records' layout is not the described one. Nor
//   where a field's type has no exact decoder (an enum of 4 or 8 bytes, an integer with padding
//   bits). Those datasets are read by read().
//
// A string field is a categorical column whose labels are the distinct strings of the dataset, in
// the order they first appear (collect_labels reads every row once for them). The empty string,
// and any of the field's `missing_labels`, is a missing value.
#pragma once

#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lathe {

class HeapStringReader;

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
  bool category_codes = false;  // integer category codes, read as stored (the caller maps -1 to missing)
  // Strings that mean a missing value in a string field besides "" (pandas' nan_rep, say).
  std::vector<std::string> missing_labels;
  // A string field read only as text (read_text), never as category codes: collect_labels does
  // not collect its labels (a unique id per row need not fit in memory) and read() and
  // decode_stored() give NaN for its columns. No effect on a field of numbers.
  bool text_only = false;
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
  // Whether the field holds strings whose labels collect_labels collects (its columns are
  // categorical): a string field that is not text_only.
  bool holds_labels(std::size_t field) const;
  // Whether the field holds strings (text_only or not).
  bool holds_text(std::size_t field) const;

  // Reads rows [0, rows) once, `block_rows` at a time, to find the labels of every string field.
  // With `code_budget`, it also keeps every row's category code of those fields (1, 2 or 4 bytes a
  // row and element, as many as the labels need) while their bytes fit in *code_budget, which it
  // lowers by the bytes kept: read() then gives these rows' codes without reading the strings again
  // (a string field's codes, all or none, are dropped once they would pass the budget).
  void collect_labels(std::int64_t rows, std::int64_t block_rows, std::int64_t* code_budget = nullptr);
  // collect_labels for a 1-D dataset of variable-length strings (one field, not compound) from its
  // stored heap ids and collections, read by `strings`: the same labels in the same order, and the
  // same codes kept, with no HDF5 call, so that readers of several datasets may run at once, each on
  // its own thread. False, with nothing collected and the budget as it was, where `strings` does not
  // understand the stored bytes or the dataset is not such: collect_labels must then read it.
  bool collect_stored_labels(HeapStringReader& strings, std::int64_t rows, std::int64_t block_rows,
                             std::int64_t* code_budget = nullptr);
  // Whether collect_labels kept every row's category code of some field (read() then gives them
  // without reading those fields again).
  bool keeps_codes() const;
  // The labels of element `element` of a string field, in order of first appearance (the category
  // code of a label is its position).
  const std::vector<std::string>& labels(std::size_t field, std::size_t element) const;
  // labels(), moved out where collect_labels kept the field's codes (read() then never looks a
  // label up: a column of a million labels need not be held twice), copied otherwise; labels() is
  // empty afterwards in the first case.
  std::vector<std::string> release_labels(std::size_t field, std::size_t element);

  // Reads rows [first, first + count) into the column-major block `out` (out[column * count + r]):
  // numbers as float32 (HDF5's conversion), strings as their category codes, missing values as NaN.
  // A string not seen by collect_labels (the file changed since) is an Error, where its field's
  // codes were not kept (then the codes collect_labels found are given).
  void read(std::int64_t first, std::int64_t count, float* out);
  // Whether decode_stored can decode every field out of the stored records (see above).
  bool decodes_stored_records() const;
  // Bytes of one record as the file stores it (the dataset's element size).
  std::size_t stored_record_size() const;
  // Decodes `count` records whose stored bytes start at `records`, `stride` bytes apart, into rows
  // [at, at + count) of the table columns the fields feed: columns[c] is table column c (null: not
  // wanted, left alone). Gives what read() gives, bit for bit. Thread-safe once collect_labels has
  // run (it only reads the reader). False where a string is not among the labels collect_labels
  // found: read() then reports it. Only where decodes_stored_records().
  bool decode_stored(const unsigned char* records, std::size_t count, std::size_t stride,
                     std::span<float* const> columns, std::size_t at) const;

  // The strings of rows [first, first + count) of the string field element feeding table column
  // `column`, as stored (fixed-length ones without their padding), into `out` (resized to count);
  // a missing value (the empty string or one of the field's missing_labels) is "". Throws Error
  // where no string field feeds `column`. Memory: one block of strings, whatever the labels.
  void read_text(std::int64_t column, std::int64_t first, std::int64_t count, std::vector<std::string>& out);

  // read() of a 1-D dataset of variable-length strings (one field, not compound) whose codes
  // collect_labels did not keep, from its stored heap ids and collections, read by `strings`, with
  // no HDF5 call: the same codes. False where `strings` does not understand the stored bytes or the
  // dataset is not such (`out` unspecified): read() must then read them. Throws as read() does for a
  // label not seen at open.
  bool read_stored(HeapStringReader& strings, std::int64_t first, std::int64_t count, float* out);
  // read_text of a 1-D dataset of variable-length strings (one field, not compound) from its stored
  // heap ids and collections, read by `strings`, with no HDF5 call. False where `strings` does not
  // understand the stored bytes or the dataset is not such (`out` unspecified): read_text must then
  // read them.
  bool read_stored_text(HeapStringReader& strings, std::int64_t first, std::int64_t count, std::vector<std::string>& out);

  // Reads rows [first, first + count) of the number feeding table column `column` converted by HDF5
  // to `memory_type` (a native integer or float type), count values into `out`: exact where float32
  // is not. Throws Error for a string field or a column no field feeds.
  void read_as(std::int64_t column, std::int64_t first, std::int64_t count, hid_t memory_type, void* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe
