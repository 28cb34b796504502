// Writes Lathe's columnar HDF5 layout (see io/table_reader.h): one chunked, shuffled and deflated
// 1-D dataset per column under the root group, extended as blocks of rows are appended, so memory
// stays constant whatever the row count. The root group records the column order in
// `lathe_columns`, the layout in `lathe_layout` and the format version in `lathe_format_version`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "io/table_reader.h"

namespace lathe {

// int64 and uint64 hold integers exactly (ids beyond 2^53, which float64 would round); they have
// no missing value. text: variable-length UTF-8 strings (ids passed through as they were read),
// written through HDF5 unfiltered; "" is missing.
enum class StoredType { float32, float64, categorical_codes /* int32, -1 = missing */, int64, uint64, text };

struct ColumnSpec {
  std::string name;
  StoredType stored = StoredType::float32;
};

struct ColumnarWriteOptions {
  // Rows per chunk, at most: a chunk also holds no more than `expected_rows` (a table's chunk no
  // larger than the table), and a wide table's chunks are shortened so that one chunk of every
  // column fits the writer's staging (256 MB): memory is then bounded whatever the column count.
  std::int64_t chunk_rows = 65536;
  int deflate_level = 4;  // 0 = no compression (and no shuffle)
  // The rows the writer will be given, at most, when known (0 = unknown): also sizes the nodes of
  // each column's chunk index to the chunks it will have.
  std::int64_t expected_rows = 0;
};

class ColumnarWriter {
 public:
  // Creates (truncates) `path`. Write to a TemporaryOutput's path and commit after close().
  ColumnarWriter(const std::filesystem::path& path, std::vector<ColumnSpec> columns,
                 ColumnarWriteOptions options = {});
  ~ColumnarWriter();

  // Appends values to a numeric column (NaN = missing); converted to the column's stored type.
  void append_numeric(std::size_t column, std::span<const double> values);
  void append_numeric(std::size_t column, std::span<const float> values);
  // Appends integers to an int64 or uint64 column, stored exactly.
  void append_integers(std::size_t column, std::span<const std::int64_t> values);
  void append_integers(std::size_t column, std::span<const std::uint64_t> values);
  // Appends codes to a categorical column (-1 = missing).
  void append_codes(std::size_t column, std::span<const std::int32_t> codes);
  // Appends strings to a text column.
  void append_text(std::size_t column, std::span<const std::string> values);
  // Sets the labels of a categorical column's codes (label of code i); may be called at any time
  // before close().
  void set_categories(std::size_t column, const std::vector<std::string>& labels);
  // Attaches a string attribute to the root group (provenance, ground truth, ...).
  void set_attribute(const std::string& name, const std::string& value);

  // Checks that every column has the same number of rows, writes the attributes, closes the file.
  void close();
  std::int64_t rows(std::size_t column) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe
