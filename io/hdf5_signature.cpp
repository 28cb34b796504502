#include "io/hdf5_signature.h"

#include <cstdio>

namespace lathe {

namespace {

constexpr std::string_view kHdf5Signature("\x89HDF\r\n\x1a\n", 8);

}  // namespace

bool starts_with_hdf5_signature(std::string_view head) { return head.starts_with(kHdf5Signature); }

bool has_hdf5_signature(const std::filesystem::path& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return false;
  char head[kHdf5Signature.size()] = {};
  const std::size_t read = std::fread(head, 1, sizeof head, file);
  std::fclose(file);
  return starts_with_hdf5_signature(std::string_view(head, read));
}

}  // namespace lathe
