// `lathe import`: CSV to Lathe's columnar HDF5 layout, streaming in constant memory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lathe {

struct CsvImportOptions {
  std::vector<std::string> categorical;  // columns forced categorical (else inferred)
  bool skip_bad_rows = false;            // skip (and count) ragged or unparseable rows
  char delimiter = ',';
  std::int64_t chunk_rows = 65536;
  int deflate_level = 4;
  bool progress = true;  // progress on stderr for large files
};

struct CsvImportReport {
  std::int64_t rows = 0;          // rows written
  std::int64_t skipped_rows = 0;  // with skip_bad_rows
  std::vector<std::string> skipped_examples;  // the first few reasons, each naming its line
  std::int64_t columns = 0;
};

// Imports `csv` into `out` (written under a temporary name, renamed when complete). Throws
// InputError naming the line (and column) of the first bad row unless skip_bad_rows.
CsvImportReport import_csv(const std::filesystem::path& csv, const std::filesystem::path& out,
                           const CsvImportOptions& options);

}  // namespace lathe
