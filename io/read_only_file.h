// A file opened read-only for positioned reads (pread) from any number of threads at once: no
// shared file position, so no lock. Closed with its owner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace lathe {

class ReadOnlyFile {
 public:
  ReadOnlyFile() = default;
  // Opens `path`; an object that is not open() when the system refuses (the caller decides what
  // that means: the direct read paths simply stay off).
  explicit ReadOnlyFile(const std::filesystem::path& path);
  ~ReadOnlyFile();
  ReadOnlyFile(ReadOnlyFile&& other) noexcept;
  ReadOnlyFile& operator=(ReadOnlyFile&& other) noexcept;
  ReadOnlyFile(const ReadOnlyFile&) = delete;
  ReadOnlyFile& operator=(const ReadOnlyFile&) = delete;

  bool open() const { return fd_ >= 0; }
  // Whether `other_fd` refers to the same file (device and inode) as this one.
  bool same_file_as(int other_fd) const;
  // The file's size in bytes now (0 when it is not open or the system cannot say).
  std::uint64_t size() const;
  // Reads exactly `bytes` bytes at `offset` into `out` (retrying short reads and EINTR). False
  // when the file ends first or the system reports an error.
  bool read_exactly(void* out, std::size_t bytes, std::uint64_t offset) const;

 private:
  int fd_ = -1;
};

}  // namespace lathe
