#include "io/csv_import.h"
#include "runtime/error.h"
namespace lathe {
CsvImportReport import_csv(const std::filesystem::path&, const std::filesystem::path&, const CsvImportOptions&) {
  throw Error("import_csv: not implemented yet");
}
}  // namespace lathe
