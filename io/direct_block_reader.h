// Reads blocks of rows of a file's datasets around HDF5's data path, which runs its filters and
// type conversion on one thread under the library's global lock.
// - "pread (contiguous)": contiguous, unfiltered storage. The rows' bytes are read with pread on a
//   file descriptor of our own, in parallel, and converted to float32.
// - "raw chunks" and "raw chunks, parallel inflate": chunked storage whose filters are only
//   deflate and/or shuffle (or none). HDF5 locates each chunk (one call at a time); the threads
//   read its stored bytes with pread (H5Dread_chunk where pread is not possible), inflate
//   (libdeflate), unshuffle and convert them.
// A dataset of records (or of fixed-length strings) is read the same way, its stored records handed
// to its RecordReader, which decodes each field at its offset in the record; a chunk of records
// stored unfiltered is read in pieces of rows, as contiguous storage is, so that one large chunk
// still keeps every thread busy.
// The result is bit for bit what the hyperslab read gives (ElementDecoder converts as HDF5 does).
// Anything this cannot read exactly is left to the caller's HDF5 path: a dataset at open (other
// filters, compact or external storage, a file this process also has open for writing, ...) and,
// at read time, a block that meets an unwritten chunk without a known fill value, a short read, a
// chunk that does not inflate to its size, or a failing HDF5 call (HDF5 then reports it).
#pragma once

#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/chunk_filters.h"
#include "io/element_decoder.h"
#include "io/heap_string_reader.h"
#include "io/read_only_file.h"

namespace lathe {

class RecordReader;

// How TableReader::read_block reads a dataset.
enum class ReadPath {
  // H5Dread of a hyperslab: HDF5's filters and conversion.
  hdf5_hyperslab,
  // pread of contiguous storage, converted in parallel.
  pread_contiguous,
  // Unfiltered (or only shuffled) chunks from H5Dread_chunk, converted in parallel.
  raw_chunks,
  // Deflated chunks from H5Dread_chunk, inflated, unshuffled and converted in parallel.
  raw_chunks_inflate,
};
// "hdf5 hyperslab", "pread (contiguous)", "raw chunks", "raw chunks, parallel inflate".
const char* read_path_name(ReadPath path);

// What the direct read of one dataset needs, found once when it is opened.
struct DirectLayout {
  ReadPath path = ReadPath::hdf5_hyperslab;
  std::int64_t rows = 0;
  std::int64_t width = 1;         // columns: 1 for a 1-D dataset
  std::size_t element_size = 0;   // bytes per element in the file
  std::uint64_t file_offset = 0;  // pread_contiguous: the file offset of row 0 (userblock included)
  std::int64_t chunk_rows = 0;    // raw chunks: the chunk's shape
  std::int64_t chunk_cols = 1;
  // The chunk filters in the order HDF5 applied them when writing; reading undoes them from the
  // last to the first, skipping those a chunk's filter mask says were skipped.
  struct Filter {
    bool deflate = false;             // else shuffle
    std::size_t shuffle_element = 0;  // shuffle: bytes per element (its client data)
  };
  std::vector<Filter> filters;
  // What a chunk never written reads as, converted; none when HDF5 would leave the output as it
  // was or when in doubt (a block that meets such a chunk then goes through HDF5). Always none for
  // records.
  std::optional<float> fill_value;
  std::string where;  // the file and dataset, for errors
};

// One dataset's part of a block read. A dataset of numbers (`decoder`): rows [first, first + count)
// of dataset column j land in columns[j][0, count). A dataset of records (`records`): each record's
// fields land in rows [0, count) of the table columns they feed, columns[c] being table column c
// (null: not wanted).
struct DirectRead {
  hid_t dataset = H5I_INVALID_HID;
  const DirectLayout* layout = nullptr;
  const ElementDecoder* decoder = nullptr;  // numbers
  const RecordReader* records = nullptr;    // records, instead of a decoder
  std::span<float* const> columns;
  bool done = false;  // set by read(): false where the block must be read through HDF5 instead
};

class DirectBlockReader {
 public:
  // For the open HDF5 `file` at `path`. `threads` decode a block (0: OpenMP's default). When the
  // file is open for writing elsewhere in this process (HDF5 shares one file object, whose caches
  // may hold data the file does not yet), every dataset keeps the HDF5 path; pread needs HDF5's
  // default (sec2) driver on the same file as our own descriptor.
  DirectBlockReader(const std::filesystem::path& path, hid_t file, int threads);
  ~DirectBlockReader();
  DirectBlockReader(DirectBlockReader&&) noexcept;
  DirectBlockReader& operator=(DirectBlockReader&&) noexcept;

  // How `dataset` (rank 1 or 2, of `rows` x `width` elements) can be read, given its decoder (none:
  // the HDF5 path). Throws Hdf5Error naming `where` when HDF5 cannot describe the dataset.
  DirectLayout plan(hid_t dataset, const ElementDecoder* decoder, const std::string& where) const;
  // How the dataset of records (or strings, 1-D or n x 1) `records` reads can be read: the HDF5
  // path unless records.decodes_stored_records().
  DirectLayout plan_records(hid_t dataset, const RecordReader& records,
                            const std::string& where) const;

  // Where `dataset` lies when it is a 1-D (or n x 1), contiguous, unfiltered dataset of
  // variable-length strings whose heap ids and collections file() can read (HeapStringReader);
  // none otherwise.
  std::optional<HeapStringLayout> plan_heap_strings(hid_t dataset, const std::string& where) const;
  // Our own descriptor of the file (open() only where a pread path is possible).
  const ReadOnlyFile& file() const { return file_; }

  // Reads rows [first, first + count) of every request (each with a layout from plan() whose path
  // is not hdf5_hyperslab), setting each request's `done`. HDF5 is called from the calling thread
  // only. Throws only for what no other path would fix (memory).
  void read(std::span<DirectRead> requests, std::int64_t first, std::int64_t count);

 private:
  struct Work;
  struct ThreadState;
  // plan() for elements of `element_size` bytes; `decoder` converts the fill value (none: a chunk
  // never written goes through HDF5).
  DirectLayout plan_storage(hid_t dataset, std::size_t element_size, const ElementDecoder* decoder,
                            const std::string& where) const;
  // One work item on one thread; false when the request must go through HDF5 after all.
  bool read_piece(const Work& work, const DirectRead& request, std::int64_t first,
                  ThreadState& state) const;
  bool decode_chunk(const Work& work, const DirectRead& request, std::int64_t first,
                    std::int64_t count, ThreadState& state) const;

  ReadOnlyFile file_;
  std::size_t address_bytes_ = 0;  // the file's "size of offsets" and "size of lengths"
  std::size_t length_bytes_ = 0;
  bool enabled_ = false;        // any direct path at all
  bool pread_enabled_ = false;  // contiguous datasets by pread
  int threads_ = 0;
  std::uint64_t userblock_ = 0;  // bytes before HDF5's base address
  std::uint64_t end_of_allocation_ = 0;  // HDF5's end of allocation, from its base address
  // Whether `bytes` at `address` (from the base address) lie within the end of allocation.
  bool allocated(std::uint64_t address, std::uint64_t bytes) const;
  std::vector<Work> work_;                       // reused across blocks
  std::vector<std::vector<unsigned char>> raw_;  // stored chunk bytes, one per work item
  std::vector<std::unique_ptr<ThreadState>> thread_state_;
};

}  // namespace lathe
