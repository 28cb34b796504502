#include "io/direct_block_reader.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <limits>
#include <mutex>

#include "io/hdf5_handle.h"
#include "io/record_reader.h"
#include "runtime/error.h"

namespace lathe {

using h5::H5Handle;

const char* read_path_name(ReadPath path) {
  switch (path) {
    case ReadPath::hdf5_hyperslab:
      return "hdf5 hyperslab";
    case ReadPath::pread_contiguous:
      return "pread (contiguous)";
    case ReadPath::raw_chunks:
      return "raw chunks";
    case ReadPath::raw_chunks_inflate:
      return "raw chunks, parallel inflate";
  }
  return "?";
}

namespace {

// Rows of contiguous storage one thread reads and converts at a time: large enough that a pread
// costs little beside its copy, small enough that a block is shared among threads.
constexpr std::size_t kPieceBytes = std::size_t{1} << 19;

}  // namespace

// A piece of contiguous rows, one chunk of a chunked dataset, or a slice of rows of an unfiltered
// chunk of records (read like a piece of contiguous rows once HDF5 located the chunk), of one
// request.
struct DirectBlockReader::Work {
  std::size_t request = 0;
  bool chunk = false;
  bool slice = false;          // chunk: only rows [row_begin, row_end) of it, read as a piece
  std::int64_t row_begin = 0;  // the rows of the block this item delivers
  std::int64_t row_end = 0;
  std::int64_t chunk_row = 0;  // chunk: its position in the chunk grid
  std::int64_t chunk_col = 0;
  std::size_t raw_index = 0;  // chunk: its stored bytes in raw_
  bool fill = false;          // chunk: never written, reads as the fill value
  unsigned filter_mask = 0;   // chunk: bit i set when filter i was skipped for it
  bool in_place = false;      // chunk: its bytes go straight into the output, nothing to decode
  bool by_pread = false;      // chunk: stored bytes read by the task with pread (at file_offset)
  std::uint64_t file_offset = 0;  // a piece, a slice or a chunk read by pread: where its bytes are
  std::size_t stored = 0;
};

// What one thread of a block read owns.
struct DirectBlockReader::ThreadState {
  std::optional<Inflater> inflater;     // made on first use
  std::vector<unsigned char> stage[2];  // the filters' outputs, in turn
  std::vector<unsigned char> piece;     // contiguous rows before conversion
};

DirectBlockReader::DirectBlockReader(const std::filesystem::path& path, hid_t file, int threads)
    : threads_(threads) {
  h5::silence_errors_in_this_thread();
  unsigned intent = 0;
  if (H5Fget_intent(file, &intent) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return;
  }
  // A read-only open of a file this process has open for writing shares the writer's file object:
  // its caches may hold what the file's bytes do not yet.
  if (intent & H5F_ACC_RDWR) return;
  enabled_ = true;

  hid_t fapl_id = H5Fget_access_plist(file);
  if (fapl_id < 0) {
    H5Eclear2(H5E_DEFAULT);
    return;
  }
  H5Handle fapl = h5::plist_handle(fapl_id);
  if (H5Pget_driver(fapl.get()) != H5FD_SEC2) return;
  void* handle = nullptr;
  if (H5Fget_vfd_handle(file, fapl.get(), &handle) < 0 || handle == nullptr) {
    H5Eclear2(H5E_DEFAULT);
    return;
  }
  // Our own descriptor, checked to be the file HDF5 has open (the path may name another by now).
  ReadOnlyFile own(path);
  if (!own.open() || !own.same_file_as(*static_cast<int*>(handle))) return;
  file_ = std::move(own);
  pread_enabled_ = true;
  // Chunk addresses (H5Dget_chunk_info_by_coord) count from HDF5's base address, after the
  // userblock; H5Dget_offset's count from the start of the file.
  hid_t fcpl_id = H5Fget_create_plist(file);
  hsize_t userblock = 0;
  if (fcpl_id < 0 || H5Pget_userblock(fcpl_id, &userblock) < 0) {
    H5Eclear2(H5E_DEFAULT);
    pread_enabled_ = false;  // contiguous datasets too: H5Dget_offset is then not to be trusted
  }
  // The widths of addresses and lengths in the file's own structures (a heap id, a heap collection).
  if (fcpl_id >= 0 && H5Pget_sizes(fcpl_id, &address_bytes_, &length_bytes_) < 0) {
    H5Eclear2(H5E_DEFAULT);
    address_bytes_ = length_bytes_ = 0;
  }
  if (fcpl_id >= 0) H5Pclose(fcpl_id);
  userblock_ = userblock;
  // HDF5 refuses to read past its end of allocation, whatever the file's size: a damaged
  // superblock's. Bytes past it are left to HDF5, which reports them. H5Fget_eoa counts from the
  // start of the file (the userblock's bytes included: HDF5 1.10, as a file with a userblock
  // shows), the addresses checked against it from the base address.
  haddr_t end_of_allocation = HADDR_UNDEF;
  if (H5Fget_eoa(file, &end_of_allocation) < 0 || end_of_allocation == HADDR_UNDEF) {
    H5Eclear2(H5E_DEFAULT);
    pread_enabled_ = false;
    enabled_ = false;
    return;
  }
  end_of_allocation_ = end_of_allocation > userblock_ ? end_of_allocation - userblock_ : 0;
}

bool DirectBlockReader::allocated(std::uint64_t address, std::uint64_t bytes) const {
  return address <= end_of_allocation_ && bytes <= end_of_allocation_ - address;
}

std::optional<HeapStringLayout> DirectBlockReader::plan_heap_strings(hid_t dataset, const std::string& where) const {
  if (!pread_enabled_ || address_bytes_ < 2 || address_bytes_ > 8 || length_bytes_ < 2 || length_bytes_ > 8) {
    return std::nullopt;
  }
  H5Handle type = h5::datatype_handle(LATHE_H5_CHECK(H5Dget_type(dataset), where));
  if (H5Tget_class(type.get()) != H5T_STRING || LATHE_H5_CHECK(H5Tis_variable_str(type.get()), where) <= 0) {
    return std::nullopt;
  }
  H5Handle space = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(dataset), where));
  const int rank = LATHE_H5_CHECK(H5Sget_simple_extent_ndims(space.get()), where);
  if (rank < 1 || rank > 2) return std::nullopt;
  hsize_t dims[2] = {0, 1};
  LATHE_H5_CHECK(H5Sget_simple_extent_dims(space.get(), dims, nullptr), where);
  if (dims[1] != 1) return std::nullopt;
  H5Handle dcpl = h5::plist_handle(LATHE_H5_CHECK(H5Dget_create_plist(dataset), where));
  if (H5Pget_layout(dcpl.get()) != H5D_CONTIGUOUS) return std::nullopt;
  if (LATHE_H5_CHECK(H5Pget_external_count(dcpl.get()), where) != 0) return std::nullopt;
  const haddr_t offset = H5Dget_offset(dataset);
  if (offset == HADDR_UNDEF) {  // never written
    H5Eclear2(H5E_DEFAULT);
    return std::nullopt;
  }
  HeapStringLayout layout;
  layout.address_bytes = address_bytes_;
  layout.length_bytes = length_bytes_;
  layout.rows = static_cast<std::int64_t>(dims[0]);
  layout.file_offset = offset;
  layout.base_address = userblock_;
  layout.end_of_allocation = end_of_allocation_;
  if (offset < userblock_ || !allocated(offset - userblock_, dims[0] * (4 + address_bytes_ + 4))) {
    return std::nullopt;
  }
  // A heap id per row: the length (4 bytes), the collection's address and the object's index (4).
  if (H5Dget_storage_size(dataset) != dims[0] * (4 + address_bytes_ + 4)) return std::nullopt;
  return layout;
}

DirectBlockReader::~DirectBlockReader() = default;
DirectBlockReader::DirectBlockReader(DirectBlockReader&&) noexcept = default;
DirectBlockReader& DirectBlockReader::operator=(DirectBlockReader&&) noexcept = default;

DirectLayout DirectBlockReader::plan(hid_t dataset, const ElementDecoder* decoder,
                                     const std::string& where) const {
  if (!enabled_ || decoder == nullptr) return {};
  return plan_storage(dataset, decoder->element_size(), decoder, where);
}

DirectLayout DirectBlockReader::plan_records(hid_t dataset, const RecordReader& records,
                                             const std::string& where) const {
  if (!enabled_ || !records.decodes_stored_records()) return {};
  H5Handle type = h5::datatype_handle(LATHE_H5_CHECK(H5Dget_type(dataset), where));
  if (H5Tget_size(type.get()) != records.stored_record_size()) return {};
  // No fill value: what a never-written chunk of records reads as is left to HDF5.
  DirectLayout layout = plan_storage(dataset, records.stored_record_size(), nullptr, where);
  if (layout.width != 1) return {};
  return layout;
}

DirectLayout DirectBlockReader::plan_storage(hid_t dataset, std::size_t element_size,
                                             const ElementDecoder* decoder,
                                             const std::string& where) const {
  DirectLayout layout;
  layout.where = where;
  if (element_size == 0) return layout;
  H5Handle space = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(dataset), where));
  const int rank = LATHE_H5_CHECK(H5Sget_simple_extent_ndims(space.get()), where);
  if (rank < 1 || rank > 2) return layout;
  hsize_t dims[2] = {0, 1};
  LATHE_H5_CHECK(H5Sget_simple_extent_dims(space.get(), dims, nullptr), where);
  const std::int64_t rows = static_cast<std::int64_t>(dims[0]);
  const std::int64_t width = rank == 2 ? static_cast<std::int64_t>(dims[1]) : 1;
  H5Handle dcpl = h5::plist_handle(LATHE_H5_CHECK(H5Dget_create_plist(dataset), where));

  switch (H5Pget_layout(dcpl.get())) {
    case H5D_CONTIGUOUS: {
      if (!pread_enabled_) return layout;
      if (LATHE_H5_CHECK(H5Pget_external_count(dcpl.get()), where) != 0) return layout;
      const haddr_t offset = H5Dget_offset(dataset);
      if (offset == HADDR_UNDEF) {  // never written: HDF5 answers with the fill value
        H5Eclear2(H5E_DEFAULT);
        return layout;
      }
      const hsize_t needed =
          static_cast<hsize_t>(rows) * static_cast<hsize_t>(width) * element_size;
      if (H5Dget_storage_size(dataset) < needed) return layout;
      if (offset < userblock_ || !allocated(offset - userblock_, needed)) return layout;
      layout.file_offset = offset;
      layout.path = ReadPath::pread_contiguous;
      break;
    }
    case H5D_CHUNKED: {
      hsize_t chunk[H5S_MAX_RANK] = {};
      if (LATHE_H5_CHECK(H5Pget_chunk(dcpl.get(), H5S_MAX_RANK, chunk), where) != rank)
        return layout;
      // Partial edge chunks stored unfiltered are not told apart by their filter mask.
      unsigned chunk_options = 0;
      LATHE_H5_CHECK(H5Pget_chunk_opts(dcpl.get(), &chunk_options), where);
      if (chunk_options & H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS) return layout;
      layout.chunk_rows = static_cast<std::int64_t>(chunk[0]);
      layout.chunk_cols = rank == 2 ? static_cast<std::int64_t>(chunk[1]) : 1;
      if (layout.chunk_rows <= 0 || layout.chunk_cols <= 0) return layout;
      const int nfilters = LATHE_H5_CHECK(H5Pget_nfilters(dcpl.get()), where);
      bool deflate = false;
      for (int i = 0; i < nfilters; ++i) {
        unsigned flags = 0, values[8] = {};
        std::size_t nvalues = 8;
        const H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags,
                                               &nvalues, values, 0, nullptr, nullptr);
        if (id == H5Z_FILTER_DEFLATE) {
          layout.filters.push_back({.deflate = true});
          deflate = true;
        } else if (id == H5Z_FILTER_SHUFFLE && nvalues >= 1 && values[0] > 0) {
          layout.filters.push_back({.deflate = false, .shuffle_element = values[0]});
        } else {
          H5Eclear2(H5E_DEFAULT);
          return DirectLayout{};  // fletcher32, szip, nbit, scaleoffset, a plugin: HDF5's path
        }
      }
      // HDF5 1.10 fills a never-written chunk with the fill value unless it is told never to, or
      // to fill only with a value the user set and none was set (then it leaves the output alone).
      H5D_fill_time_t fill_time = H5D_FILL_TIME_IFSET;
      H5D_fill_value_t fill_status = H5D_FILL_VALUE_UNDEFINED;
      LATHE_H5_CHECK(H5Pget_fill_time(dcpl.get(), &fill_time), where);
      LATHE_H5_CHECK(H5Pfill_value_defined(dcpl.get(), &fill_status), where);
      if (decoder != nullptr && fill_time != H5D_FILL_TIME_NEVER &&
          (fill_status == H5D_FILL_VALUE_DEFAULT || fill_status == H5D_FILL_VALUE_USER_DEFINED)) {
        H5Handle type = h5::datatype_handle(LATHE_H5_CHECK(H5Dget_type(dataset), where));
        std::vector<unsigned char> bytes(
            std::max<std::size_t>(element_size, H5Tget_size(type.get())));
        LATHE_H5_CHECK(H5Pget_fill_value(dcpl.get(), type.get(), bytes.data()), where);
        float value = 0;
        decoder->decode(bytes.data(), 1, element_size, &value);
        layout.fill_value = value;
      }
      layout.path = deflate ? ReadPath::raw_chunks_inflate : ReadPath::raw_chunks;
      break;
    }
    default:  // compact or virtual storage
      return layout;
  }
  layout.rows = rows;
  layout.width = width;
  layout.element_size = element_size;
  return layout;
}

namespace {

// Decodes `rows` rows at `bytes` (`row_stride` apart) holding dataset columns [col_begin, col_end)
// of `request` into its output from row `at` on; false where records do not decode.
bool decode_rows(const DirectRead& request, const unsigned char* bytes, std::size_t rows,
                 std::size_t row_stride, std::int64_t col_begin, std::int64_t col_end,
                 std::size_t at) {
  if (request.records != nullptr) {
    return request.records->decode_stored(bytes, rows, row_stride, request.columns, at);
  }
  const std::size_t element_size = request.layout->element_size;
  for (std::int64_t j = col_begin; j < col_end; ++j) {
    request.decoder->decode(bytes + static_cast<std::size_t>(j - col_begin) * element_size, rows,
                            row_stride, request.columns[j] + at);
  }
  return true;
}

}  // namespace

bool DirectBlockReader::read_piece(const Work& work, const DirectRead& request, std::int64_t first,
                                   ThreadState& state) const {
  const DirectLayout& layout = *request.layout;
  const std::size_t row_bytes = static_cast<std::size_t>(layout.width) * layout.element_size;
  const std::size_t rows = static_cast<std::size_t>(work.row_end - work.row_begin);
  const std::size_t at = static_cast<std::size_t>(work.row_begin - first);
  if (layout.width == 1 && request.decoder != nullptr && request.decoder->is_native_float32()) {
    return file_.read_exactly(request.columns[0] + at, rows * row_bytes, work.file_offset);
  }
  state.piece.resize(rows * row_bytes);
  if (!file_.read_exactly(state.piece.data(), state.piece.size(), work.file_offset)) return false;
  return decode_rows(request, state.piece.data(), rows, row_bytes, 0, layout.width, at);
}

namespace {
// A chunk of records that is intact but holds fewer bytes than chunk rows x the record size: the
// record size in the file's type is damaged. HDF5 1.10 does not check it and would copy past its
// buffers (a segmentation fault), so it is not handed the block.
InputError chunk_short_of_records(const DirectLayout& layout, std::size_t holds) {
  const auto records = layout.chunk_rows * layout.chunk_cols;
  return InputError(layout.where + ": damaged: a chunk holds " + std::to_string(holds) + " bytes where its " +
                    std::to_string(records) + " records of " + std::to_string(layout.element_size) + " bytes take " +
                    std::to_string(static_cast<std::size_t>(records) * layout.element_size));
}
}  // namespace

bool DirectBlockReader::decode_chunk(const Work& work, const DirectRead& request,
                                     std::int64_t first, std::int64_t /*count*/,
                                     ThreadState& state) const {
  const DirectLayout& layout = *request.layout;
  const std::int64_t chunk_first_row = work.chunk_row * layout.chunk_rows;
  const std::int64_t col_begin = work.chunk_col * layout.chunk_cols;
  const std::int64_t col_end = std::min(layout.width, col_begin + layout.chunk_cols);
  const std::size_t rows = static_cast<std::size_t>(work.row_end - work.row_begin);
  const std::size_t at = static_cast<std::size_t>(work.row_begin - first);
  if (work.fill) {
    if (request.records != nullptr) return false;  // records have no fill value (plan_records)
    for (std::int64_t j = col_begin; j < col_end; ++j) {
      std::fill_n(request.columns[j] + at, rows, *layout.fill_value);
    }
    return true;
  }
  const std::size_t chunk_bytes =
      static_cast<std::size_t>(layout.chunk_rows * layout.chunk_cols) * layout.element_size;
  std::span<const unsigned char> data(raw_[work.raw_index]);
  int next = 0;
  for (std::size_t i = layout.filters.size(); i-- > 0;) {
    if (work.filter_mask & (1u << i)) continue;
    std::vector<unsigned char>& out = state.stage[next];
    next ^= 1;
    const DirectLayout::Filter& filter = layout.filters[i];
    if (filter.deflate) {
      out.resize(chunk_bytes);
      if (!state.inflater) state.inflater.emplace();
      std::size_t inflated = 0;
      if (!state.inflater->inflate_exactly(data, out, &inflated)) {
        if (request.records != nullptr && inflated != 0 && inflated < chunk_bytes) {
          throw chunk_short_of_records(layout, inflated);
        }
        return false;
      }
    } else {
      out.resize(data.size());
      unshuffle(data, filter.shuffle_element, out);
    }
    data = out;
  }
  if (data.size() != chunk_bytes) {
    if (request.records != nullptr && data.size() < chunk_bytes) throw chunk_short_of_records(layout, data.size());
    return false;
  }
  const std::size_t row_stride = static_cast<std::size_t>(layout.chunk_cols) * layout.element_size;
  const unsigned char* first_row =
      data.data() + static_cast<std::size_t>(work.row_begin - chunk_first_row) * row_stride;
  return decode_rows(request, first_row, rows, row_stride, col_begin, col_end, at);
}

void DirectBlockReader::read(std::span<DirectRead> requests, std::int64_t first,
                             std::int64_t count) {
  const std::int64_t end = first + count;
  work_.clear();
  std::size_t chunks = 0;
  for (std::size_t q = 0; q < requests.size(); ++q) {
    requests[q].done = false;
    const DirectLayout& layout = *requests[q].layout;
    const std::size_t row_bytes = static_cast<std::size_t>(layout.width) * layout.element_size;
    const std::int64_t piece_rows = std::max<std::int64_t>(
        1, static_cast<std::int64_t>(kPieceBytes / std::max<std::size_t>(1, row_bytes)));
    if (layout.path == ReadPath::pread_contiguous) {
      for (std::int64_t r = first; r < end; r += piece_rows) {
        work_.push_back({.request = q,
                         .chunk = false,
                         .row_begin = r,
                         .row_end = std::min(end, r + piece_rows),
                         .file_offset = layout.file_offset +
                                        static_cast<std::uint64_t>(r) * row_bytes});
      }
    } else if (requests[q].records != nullptr && layout.filters.empty() && pread_enabled_) {
      // Records stored unfiltered: a chunk's rows lie in the file as contiguous rows do, and a
      // chunk of records is often as large as a block (h5py's), so its rows are read in pieces.
      for (std::int64_t rc = first / layout.chunk_rows; rc * layout.chunk_rows < end; ++rc) {
        const std::int64_t slice_end = std::min(end, (rc + 1) * layout.chunk_rows);
        for (std::int64_t r = std::max(first, rc * layout.chunk_rows); r < slice_end;
             r += piece_rows) {
          work_.push_back({.request = q,
                           .chunk = true,
                           .slice = true,
                           .row_begin = r,
                           .row_end = std::min(slice_end, r + piece_rows),
                           .chunk_row = rc});
        }
      }
    } else {
      for (std::int64_t rc = first / layout.chunk_rows; rc * layout.chunk_rows < end; ++rc) {
        for (std::int64_t cc = 0; cc * layout.chunk_cols < layout.width; ++cc) {
          work_.push_back({.request = q,
                           .chunk = true,
                           .row_begin = std::max(first, rc * layout.chunk_rows),
                           .row_end = std::min(end, (rc + 1) * layout.chunk_rows),
                           .chunk_row = rc,
                           .chunk_col = cc,
                           .raw_index = chunks++});
        }
      }
    }
  }
  if (raw_.size() < chunks) raw_.resize(chunks);
  // No more threads than work items: a block of one chunk is decoded by one thread.
  const int threads = static_cast<int>(std::min<std::size_t>(
      std::max<std::size_t>(1, work_.size()),
      static_cast<std::size_t>(threads_ > 0 ? threads_ : std::max(1, omp_get_max_threads()))));
  // Called from a thread of a running parallel region (`lathe score` reads the next block on one of
  // its scoring threads), a region of our own would have that one thread: the tasks go to the
  // enclosing team instead, whose threads take them up as they finish their own work.
  const bool in_team = omp_in_parallel() != 0;
  const int team = in_team ? omp_get_num_threads() : threads;
  while (thread_state_.size() < static_cast<std::size_t>(team)) {
    thread_state_.push_back(std::make_unique<ThreadState>());
  }

  std::unique_ptr<std::atomic<bool>[]> failed(new std::atomic<bool>[requests.size()]());
  std::exception_ptr error;
  std::mutex error_mutex;
  std::atomic<bool> stop{false};
  auto fail_with = [&](std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(error_mutex);
    if (!error) error = e;
    stop = true;
  };
  auto run = [&](std::size_t k) {
    const Work& work = work_[k];
    if (stop || failed[work.request]) return;
    try {
      ThreadState& state = *thread_state_[static_cast<std::size_t>(omp_get_thread_num())];
      const DirectRead& request = requests[work.request];
      bool ok = true;
      if (work.slice) {
        ok = read_piece(work, request, first, state);
      } else if (work.chunk && work.by_pread) {
        // The stored bytes, read here in parallel with the other tasks' (HDF5 only located them).
        void* to = work.in_place ? static_cast<void*>(request.columns[0] + (work.row_begin - first))
                                 : static_cast<void*>(raw_[work.raw_index].data());
        ok = file_.read_exactly(to, work.stored, work.file_offset);
      }
      if (ok && !work.slice && !(work.chunk && work.in_place)) {
        ok = work.chunk ? decode_chunk(work, request, first, count, state)
                        : read_piece(work, request, first, state);
      }
      if (!ok) failed[work.request] = true;
    } catch (...) {
      fail_with(std::current_exception());
    }
  };
  // The chunk a slice belongs to, located once for all its slices.
  struct Located {
    std::size_t request = std::numeric_limits<std::size_t>::max();
    std::int64_t chunk_row = -1;
    haddr_t address = HADDR_UNDEF;
    hsize_t stored = 0;
  } located;
  // Fetches a chunk's stored bytes (HDF5, so on this thread only), or locates a slice's; false when
  // the request must go through HDF5 instead.
  auto fetch = [&](Work& work) {
    const DirectRead& request = requests[work.request];
    const DirectLayout& layout = *request.layout;
    const hsize_t offset[2] = {static_cast<hsize_t>(work.chunk_row * layout.chunk_rows),
                               static_cast<hsize_t>(work.chunk_col * layout.chunk_cols)};
    unsigned mask = 0;
    haddr_t address = HADDR_UNDEF;
    hsize_t stored = 0;
    if (work.slice && located.request == work.request && located.chunk_row == work.chunk_row) {
      address = located.address;
      stored = located.stored;
    } else if (H5Dget_chunk_info_by_coord(request.dataset, offset, &mask, &address, &stored) < 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    if (work.slice) {
      located = {work.request, work.chunk_row, address, stored};
      const std::size_t chunk_bytes = static_cast<std::size_t>(layout.chunk_rows) * layout.element_size;
      if (request.records != nullptr && address != HADDR_UNDEF && stored < chunk_bytes) {
        throw chunk_short_of_records(layout, stored);
      }
      if (address == HADDR_UNDEF || stored != chunk_bytes || !allocated(address, stored)) return false;
      work.file_offset =
          userblock_ + address +
          static_cast<std::uint64_t>(work.row_begin - work.chunk_row * layout.chunk_rows) *
              layout.element_size;
      return true;
    }
    if (address == HADDR_UNDEF) {
      work.fill = true;
      return layout.fill_value.has_value();
    }
    if (!allocated(address, stored)) return false;
    // A whole unfiltered chunk of native float32 in a 1-D dataset is already the output's bytes:
    // read it in place, saving a copy of every value.
    const std::int64_t chunk_first_row = work.chunk_row * layout.chunk_rows;
    work.in_place = layout.filters.empty() && layout.chunk_cols == 1 && request.decoder != nullptr &&
                    request.decoder->is_native_float32() &&
                    work.row_begin == chunk_first_row && work.row_end == chunk_first_row + layout.chunk_rows &&
                    stored == static_cast<hsize_t>(layout.chunk_rows) * sizeof(float);
    std::uint32_t filter_mask = 0;
    if (pread_enabled_) {
      // HDF5 gave the chunk's place (addresses count from the end of the userblock); the task
      // reads it with pread, so the reads of a block's chunks run in parallel.
      work.by_pread = true;
      work.file_offset = userblock_ + address;
      work.stored = static_cast<std::size_t>(stored);
      work.filter_mask = mask;
      work.fill = false;
      if (!work.in_place) raw_[work.raw_index].resize(work.stored);
      return true;
    }
    if (work.in_place) {
      float* out = request.columns[0] + (work.row_begin - first);
      if (H5Dread_chunk(request.dataset, H5P_DEFAULT, offset, &filter_mask, out) < 0) {
        H5Eclear2(H5E_DEFAULT);
        return false;
      }
      work.fill = false;
      return true;
    }
    std::vector<unsigned char>& raw = raw_[work.raw_index];
    raw.resize(static_cast<std::size_t>(stored));
    if (stored == 0 ||
        H5Dread_chunk(request.dataset, H5P_DEFAULT, offset, &filter_mask, raw.data()) < 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    work.fill = false;
    work.filter_mask = filter_mask;
    return true;
  };

  // On the calling thread: every work item made a task, the chunks located (HDF5) in between.
  const auto spawn = [&] {
    // Contiguous pieces need no HDF5: threads start on them while the chunks are fetched.
    for (std::size_t k = 0; k < work_.size(); ++k) {
      if (work_[k].chunk) continue;
#pragma omp task firstprivate(k)
      run(k);
    }
    for (std::size_t k = 0; k < work_.size() && !stop; ++k) {
      Work& work = work_[k];
      if (!work.chunk || failed[work.request]) continue;
      bool fetched = false;
      try {
        fetched = fetch(work);
      } catch (...) {
        fail_with(std::current_exception());
        break;
      }
      if (!fetched) {
        failed[work.request] = true;
        continue;
      }
      if (work.in_place && !work.by_pread) continue;
#pragma omp task firstprivate(k)
      run(k);
    }
  };

  h5::silence_errors_in_this_thread();
  if (in_team) {
    spawn();
#pragma omp taskwait
  } else {
#pragma omp parallel num_threads(threads)
    {
#pragma omp master
      spawn();
    }
  }
  if (error) std::rethrow_exception(error);
  for (std::size_t q = 0; q < requests.size(); ++q) requests[q].done = !failed[q];
}

}  // namespace lathe
