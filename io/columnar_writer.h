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
// no missing value.
enum class StoredType { float32, float64, categorical_codes /* int32, -1 = missing */, int64, uint64 };

struct ColumnSpec {
  std::string name;
  StoredType stored = StoredType::float32;
};

struct ColumnarWriteOptions {
  std::int64_t chunk_rows = 65536;
  int deflate_level = 4;  // 0 = no compression (and no shuffle)
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
