// Reads a dataset of variable-length strings from the bytes its file stores, without HDF5.
//
// HDF5 stores such a dataset (h5py's default for strings) as a heap id per row: the string's length
// in bytes (4 bytes), the address of a global heap collection and the string's object index in it
// (4 bytes), all little-endian (HDF5 file format specification, "Global Heap" and "Variable-Length
// Data"). H5Dread resolves every id through the library's heap cache under its global lock and
// copies each string out, which on a table of string columns cost more than all the rest of opening
// and profiling it. This reader preads the ids, then the collections they name (a few held at a
// time), and copies a block's strings into one buffer: any number of readers can run at once, one
// per thread, since none calls HDF5.
//
// It understands only what it checks: a collection that does not start with "GCOL" version 1, or
// whose size passes the end of the file or HDF5's end of allocation, a short read: read() then
// answers false and the caller reads those rows through HDF5, which reports what is wrong. It walks a collection's objects as
// HDF5 does (H5HG__cache_heap_deserialize). Where HDF5 itself fails on damage, it throws InputError
// naming the dataset instead of handing the rows to HDF5: a free-space object of size 0 (HDF5 1.10
// loops on it forever), an id whose object the collection does not hold or holds with another size
// (HDF5 reads past the object; an index past the last crashed it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "io/read_only_file.h"

namespace lathe {

// Where a 1-D (or n x 1), contiguous, unfiltered dataset of variable-length strings lies.
struct HeapStringLayout {
  std::uint64_t file_offset = 0;   // the first row's heap id, from the start of the file
  std::int64_t rows = 0;           // heap ids stored
  std::size_t address_bytes = 8;   // the file's "size of offsets"
  std::size_t length_bytes = 8;    // the file's "size of lengths"
  std::uint64_t base_address = 0;  // what heap addresses count from (the userblock's size)
  // HDF5's end of allocation (from the base address): it refuses a collection past it, which this
  // reader then leaves to HDF5, whatever the file's size.
  std::uint64_t end_of_allocation = std::numeric_limits<std::uint64_t>::max();
};

class HeapStringReader {
 public:
  // `file` must stay open while the reader is used; `where` names the file and dataset in errors.
  HeapStringReader(const ReadOnlyFile& file, HeapStringLayout layout, std::string where);

  // The strings of rows [first, first + count) into `texts` (resized to count): views into this
  // reader's buffers, valid until its next read(). A string is cut at its first NUL, as HDF5's
  // char* of it reads; an empty or null string is an empty view. False (texts unspecified) where
  // the stored bytes are not what this reader understands.
  bool read(std::int64_t first, std::int64_t count, std::vector<std::string_view>& texts);

 private:
  // One collection's bytes and where each object's data lies in them.
  struct Collection {
    struct Object {
      std::uint64_t at = 0;  // the data's offset in bytes; 0: no such object
      std::uint64_t size = 0;
    };
    std::unique_ptr<unsigned char[]> bytes;  // the collection's size, or more
    std::vector<Object> objects;             // by object index
  };
  // The collection at heap address `address`, read and indexed on first use; null when it is not
  // one this reader understands.
  Collection* collection(std::uint64_t address);

  const ReadOnlyFile& file_;
  HeapStringLayout layout_;
  std::string where_;
  std::uint64_t file_bytes_ = 0;  // the file's size when the reader was made
  std::size_t last_collection_bytes_ = 0;  // the size of the collection read last
  std::vector<unsigned char> ids_;
  std::vector<char> text_;                                  // the strings of the last read()
  std::vector<std::pair<std::size_t, std::size_t>> spans_;  // each row's offset and length in text_
  // Collections read, by address: at most a few (see kHeldCollections).
  std::unordered_map<std::uint64_t, Collection> collections_;
};

}  // namespace lathe
