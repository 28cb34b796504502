// Writes the matrix HDF5 layout (see io/table_reader.h): a 2-D float32 dataset "X" (rows x
// features, row-major) with the column names in its `feature_names` attribute, and an optional 1-D
// float32 label dataset "y". Both are chunked (chunk_rows rows of every column), shuffled and
// deflated, and extended as blocks of rows are appended, so memory stays constant whatever the row
// count.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lathe {

struct MatrixWriteOptions {
  // Rows per chunk. Capped so that one chunk of X holds at most kMaxChunkBytes (a chunk is the
  // unit of compression and of reading; huge ones make every read slow).
  std::int64_t chunk_rows = 65536;
  int deflate_level = 4;   // 0 = no compression (and no shuffle)
  bool with_label = true;  // write "y"
  static constexpr std::int64_t kMaxChunkBytes = std::int64_t{16} << 20;
};

class MatrixWriter {
 public:
  // Creates (truncates) `path` with an empty X of feature_names.size() columns (at least one).
  // Write to a TemporaryOutput's path and commit after close().
  MatrixWriter(const std::filesystem::path& path, std::vector<std::string> feature_names,
               MatrixWriteOptions options = {});
  ~MatrixWriter();
  MatrixWriter(const MatrixWriter&) = delete;
  MatrixWriter& operator=(const MatrixWriter&) = delete;

  // Appends rows: `features` row-major, features.size() / columns() rows (NaN = missing), and one
  // label per row (empty when the writer has no label).
  void append(std::span<const float> features, std::span<const float> labels);
  // Attaches a string attribute to the root group (provenance, ground truth, ...).
  void set_attribute(const std::string& name, const std::string& value);
  // Names the label's values (label of value i), stored in a `categories` attribute on y.
  void set_label_categories(const std::vector<std::string>& labels);

  // Writes the attributes and closes the file; errors (a full disk) show up here.
  void close();
  std::int64_t rows() const;
  std::int64_t columns() const;
  std::int64_t chunk_rows() const;  // after the cap

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lathe
