#include "io/columnar_writer.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <exception>

#include "io/chunk_filters.h"
#include "io/hdf5_handle.h"
#include "runtime/error.h"

namespace lathe {

using h5::H5Handle;

namespace {

// Staged chunks held before a batch is compressed and written: enough work for every thread,
// bounded memory.
constexpr std::size_t kBatchBytes = std::size_t{32} << 20;
// Above this much staging (one chunk per column), a very wide table is written through H5Dwrite
// (HDF5's own serial filters), whose chunk cache holds partly written chunks instead.
constexpr std::size_t kStagingBytesLimit = std::size_t{256} << 20;
// The shortest chunk a wide table's columns are cut to (so that a chunk of each fits the staging):
// shorter chunks would cost more in HDF5's per-chunk overhead than they save.
constexpr std::int64_t kMinWideChunkRows = 256;
// HDF5's default for a chunked dataset's B-tree: nodes of up to 2k = 64 chunks.
constexpr std::int64_t kDefaultChunkIndexK = 32;

std::size_t stored_size(StoredType type) {
  switch (type) {
    case StoredType::float32:
    case StoredType::categorical_codes:
      return 4;
    case StoredType::float64:
    case StoredType::int64:
    case StoredType::uint64:
      return 8;
    case StoredType::text:
      return 16;  // a global heap id: for the chunk's size only (text is never staged)
  }
  return 8;
}

hid_t file_type(StoredType stored) {
  switch (stored) {
    case StoredType::float32:
      return H5T_IEEE_F32LE;
    case StoredType::float64:
      return H5T_IEEE_F64LE;
    case StoredType::int64:
      return H5T_STD_I64LE;
    case StoredType::uint64:
      return H5T_STD_U64LE;
    case StoredType::categorical_codes:
      return H5T_STD_I32LE;
    case StoredType::text:
      break;  // Impl::text_type
  }
  return H5T_IEEE_F64LE;
}

}  // namespace

// Whole chunks are made here and handed to HDF5 with H5Dwrite_chunk: with compression filtered
// (shuffle, then deflate with libdeflate) by all threads at once, as HDF5's own filters would run
// on one thread under its global lock; without, as they are. Only a column's last, partial chunk
// goes through H5Dwrite (and HDF5's chunk cache).
struct ColumnarWriter::Impl {
  std::string context;
  std::vector<ColumnSpec> specs;
  ColumnarWriteOptions options;
  H5Handle file;
  H5Handle text_type;  // variable-length UTF-8 strings, in the file and in memory
  std::vector<H5Handle> datasets;  // each column's, while open (see held_open)
  std::vector<std::int64_t> rows;  // rows appended to each column (staged ones included)
  std::vector<std::vector<std::string>> categories;
  std::vector<std::pair<std::string, std::string>> attributes;
  bool closed = false;

  bool chunks_here = false;        // whole chunks made by this writer (see above)
  std::size_t chunk_rows = 0;
  std::vector<std::int64_t> written_rows;            // rows in the file (whole chunks)
  std::vector<std::vector<unsigned char>> staging;   // each column's rows after written_rows
  struct Chunk {
    std::size_t column;
    std::int64_t first_row;
    std::vector<unsigned char> raw, shuffled, compressed;
  };
  std::vector<Chunk> batch;
  std::size_t batch_bytes = 0;
  std::vector<Chunk> spare;  // chunks of earlier batches, their buffers kept for reuse
  std::vector<std::unique_ptr<Deflater>> deflaters;  // one per thread

  std::string where(std::size_t c) const { return context + ": column '" + specs[c].name + "'"; }

  void check_column(std::size_t c) const {
    if (c >= datasets.size()) throw Error(context + ": column index " + std::to_string(c) + " out of range");
  }

  // An open dataset costs HDF5 some 20 KB (its chunk cache, B-tree, property lists): held open,
  // every column of a table of tens of thousands would take gigabytes. A column whose chunks are
  // made here leaves no partly written chunk in HDF5's chunk cache, so it is opened for each write
  // and closed after; one written through H5Dwrite (text, or a table too wide for the staging)
  // stays open, its partly written chunk cached between appends instead of rewritten at each.
  bool held_open(std::size_t c) const {
    return !chunks_here || specs[c].stored == StoredType::text;
  }

  hid_t dataset(std::size_t c) {
    if (!datasets[c]) {
      datasets[c] = h5::dataset_handle(
          LATHE_H5_CHECK(H5Dopen2(file.get(), specs[c].name.c_str(), H5P_DEFAULT), where(c)));
    }
    return datasets[c].get();
  }

  // Closing a dataset writes what HDF5's chunk cache holds of it, and a chunk whose write fails (a
  // full disk) is dropped from the cache all the same: neither H5Fflush nor H5Fclose sees it again,
  // so a close whose failure went unchecked left a file with holes, and exit 0. Every close of a
  // dataset this writer wrote is checked, here and in close(); only a writer given up on (an
  // exception, its file never committed) closes them unchecked, in H5Handle's destructor.
  void close_dataset(std::size_t c) {
    if (datasets[c]) LATHE_H5_CHECK(H5Dclose(datasets[c].release()), where(c));
  }

  // Closes the column's dataset unless it is held open.
  void done_with(std::size_t c) {
    if (!held_open(c)) close_dataset(c);
  }

  // Writes `count` values of mem_type through HDF5 at the column's file rows.
  void write_through_hdf5(std::size_t c, hid_t mem_type, const void* data, std::size_t count) {
    const std::string w = where(c);
    const hsize_t old_rows = static_cast<hsize_t>(written_rows[c]);
    const hsize_t new_rows = old_rows + count;
    const hid_t dset = dataset(c);
    LATHE_H5_CHECK(H5Dset_extent(dset, &new_rows), w);
    H5Handle space = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(dset), w));
    const hsize_t n = count;
    LATHE_H5_CHECK(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, &old_rows, nullptr, &n, nullptr), w);
    H5Handle mem = h5::dataspace_handle(LATHE_H5_CHECK(H5Screate_simple(1, &n, nullptr), w));
    LATHE_H5_CHECK(H5Dwrite(dset, mem_type, mem.get(), space.get(), H5P_DEFAULT, data), w);
    written_rows[c] = static_cast<std::int64_t>(new_rows);
  }

  void append(std::size_t c, hid_t mem_type, const void* data, std::size_t count) {
    check_column(c);
    if (count == 0) return;
    if (!chunks_here) {
      write_through_hdf5(c, mem_type, data, count);
      rows[c] = written_rows[c];
      return;
    }
    // Stage the values as the file stores them: HDF5 converts them as H5Dwrite would.
    const StoredType stored = specs[c].stored;
    const std::size_t size = stored_size(stored);
    std::vector<unsigned char>& stage = staging[c];
    const std::size_t at = stage.size();
    const std::size_t mem_size = H5Tget_size(mem_type);
    stage.resize(at + count * std::max(size, mem_size));
    std::memcpy(stage.data() + at, data, count * mem_size);
    if (H5Tequal(mem_type, file_type(stored)) <= 0) {
      LATHE_H5_CHECK(H5Tconvert(mem_type, file_type(stored), count, stage.data() + at, nullptr,
                                H5P_DEFAULT),
                     where(c));
    }
    stage.resize(at + count * size);
    rows[c] += static_cast<std::int64_t>(count);
    // Whole chunks leave the staging area for the batch.
    const std::size_t chunk_bytes = chunk_rows * size;
    std::size_t taken = 0;
    while (stage.size() - taken >= chunk_bytes) {
      Chunk chunk = take_spare();
      chunk.column = c;
      chunk.first_row = written_rows[c] + static_cast<std::int64_t>(taken / size);
      chunk.raw.assign(stage.begin() + static_cast<std::ptrdiff_t>(taken),
                       stage.begin() + static_cast<std::ptrdiff_t>(taken + chunk_bytes));
      batch.push_back(std::move(chunk));
      batch_bytes += chunk_bytes;
      taken += chunk_bytes;
    }
    if (taken > 0) {
      stage.erase(stage.begin(), stage.begin() + static_cast<std::ptrdiff_t>(taken));
      written_rows[c] += static_cast<std::int64_t>(taken / size);
    }
    if (batch_bytes >= kBatchBytes) flush_batch();
  }

  Chunk take_spare() {
    if (spare.empty()) return Chunk{};
    Chunk chunk = std::move(spare.back());
    spare.pop_back();
    return chunk;
  }

  // Filters the batch's chunks on every thread (with compression), then writes them in order on
  // this one.
  void flush_batch() {
    if (batch.empty()) return;
    const bool compressed = options.deflate_level > 0;
    if (compressed) filter_batch();
    for (Chunk& chunk : batch) {
      const std::size_t c = chunk.column;
      const std::string w = where(c);
      const hsize_t end = static_cast<hsize_t>(chunk.first_row) + chunk_rows;
      const hid_t dset = dataset(c);
      hsize_t extent = 0;
      {
        H5Handle space = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(dset), w));
        LATHE_H5_CHECK(H5Sget_simple_extent_dims(space.get(), &extent, nullptr), w);
      }
      if (extent < end) LATHE_H5_CHECK(H5Dset_extent(dset, &end), w);
      const hsize_t offset = static_cast<hsize_t>(chunk.first_row);
      const std::vector<unsigned char>& stored = compressed ? chunk.compressed : chunk.raw;
      LATHE_H5_CHECK(H5Dwrite_chunk(dset, H5P_DEFAULT, 0, &offset, stored.size(), stored.data()),
                     w);
      done_with(c);
      spare.push_back(std::move(chunk));
    }
    batch.clear();
    batch_bytes = 0;
  }

  // Shuffles and deflates each chunk of the batch, on every thread.
  void filter_batch() {
    const int threads = std::max(1, std::min(omp_get_max_threads(), static_cast<int>(batch.size())));
    while (deflaters.size() < static_cast<std::size_t>(threads)) {
      deflaters.push_back(std::make_unique<Deflater>(options.deflate_level));
    }
    std::exception_ptr error;  // (std::bad_alloc) must not leave the parallel region
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (std::size_t k = 0; k < batch.size(); ++k) {
      try {
        Chunk& chunk = batch[k];
        chunk.shuffled.resize(chunk.raw.size());
        shuffle(chunk.raw, stored_size(specs[chunk.column].stored), chunk.shuffled);
        deflaters[static_cast<std::size_t>(omp_get_thread_num())]->deflate(chunk.shuffled,
                                                                          chunk.compressed);
      } catch (...) {
#pragma omp critical(lathe_columnar_writer_error)
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
  }

  // Writes every staged row: the batch, then each column's partial last chunk through HDF5.
  void flush_all() {
    if (!chunks_here) return;
    flush_batch();
    for (std::size_t c = 0; c < specs.size(); ++c) {
      const std::size_t size = stored_size(specs[c].stored);
      if (!staging[c].empty()) {
        write_through_hdf5(c, file_type(specs[c].stored), staging[c].data(), staging[c].size() / size);
        staging[c].clear();
      }
      if (written_rows[c] != rows[c]) {  // the extent ends on the last row, not the last chunk
        const hsize_t n = static_cast<hsize_t>(rows[c]);
        LATHE_H5_CHECK(H5Dset_extent(dataset(c), &n), where(c));
        written_rows[c] = rows[c];
      }
      done_with(c);
    }
  }
};

ColumnarWriter::ColumnarWriter(const std::filesystem::path& path, std::vector<ColumnSpec> columns,
                               ColumnarWriteOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.context = path.string();
  m.specs = std::move(columns);
  m.options = options;
  if (m.specs.empty()) throw InputError(m.context + ": a table needs at least one column");
  for (std::size_t i = 0; i < m.specs.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (m.specs[i].name == m.specs[j].name) {
        throw InputError(m.context + ": column name '" + m.specs[i].name + "' appears twice");
      }
    }
    if (m.specs[i].name.empty() || m.specs[i].name.find('/') != std::string::npos || m.specs[i].name == ".") {
      throw InputError(m.context + ": column name '" + m.specs[i].name +
                       "' cannot be an HDF5 dataset name (empty, '.' or containing '/')");
    }
  }
  std::int64_t row_bytes = 0;
  for (const ColumnSpec& spec : m.specs) row_bytes += static_cast<std::int64_t>(stored_size(spec.stored));
  std::int64_t chunk_rows = options.chunk_rows;
  if (options.expected_rows > 0) chunk_rows = std::min(chunk_rows, options.expected_rows);
  if (row_bytes > 0) {
    chunk_rows = std::min(chunk_rows, std::max(kMinWideChunkRows, static_cast<std::int64_t>(kStagingBytesLimit) / row_bytes));
  }
  chunk_rows = std::max<std::int64_t>(1, chunk_rows);
  const hsize_t chunk = static_cast<hsize_t>(chunk_rows);
  m.chunk_rows = static_cast<std::size_t>(chunk);
  std::size_t staging_bytes = 0;
  for (const ColumnSpec& spec : m.specs) {
    if (spec.stored != StoredType::text) staging_bytes += m.chunk_rows * stored_size(spec.stored);
  }
  m.chunks_here = staging_bytes <= kStagingBytesLimit;
  H5Handle fcpl = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_FILE_CREATE), m.context));
  LATHE_H5_CHECK(H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), m.context);
  // Each column's chunks are indexed by a B-tree whose every node has room for 2k chunks (HDF5's
  // default k: 32), some 2 KB in the file and in memory: a table of a few chunks a column gets
  // nodes no larger than its chunks need, or a wide, short table's file is mostly empty nodes.
  if (options.expected_rows > 0) {
    const std::int64_t chunks = (options.expected_rows + chunk_rows - 1) / chunk_rows;
    const auto k =
        static_cast<unsigned>(std::clamp<std::int64_t>((chunks + 1) / 2, 1, kDefaultChunkIndexK));
    LATHE_H5_CHECK(H5Pset_istore_k(fcpl.get(), k), m.context);
  }
  // The 1.8 file format stores large attributes densely: a column with many categories, or a table
  // with many columns, would overflow the 64 KiB object header of the oldest format.
  H5Handle fapl = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), m.context));
  LATHE_H5_CHECK(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST), m.context);
  m.file = h5::file_handle(
      LATHE_H5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), m.context));
  const hsize_t zero = 0, unlimited = H5S_UNLIMITED;
  m.text_type = h5::datatype_handle(LATHE_H5_CHECK(H5Tcopy(H5T_C_S1), m.context));
  LATHE_H5_CHECK(H5Tset_size(m.text_type.get(), H5T_VARIABLE), m.context);
  LATHE_H5_CHECK(H5Tset_cset(m.text_type.get(), H5T_CSET_UTF8), m.context);
  for (std::size_t c = 0; c < m.specs.size(); ++c) {
    const std::string w = m.where(c);
    const bool text = m.specs[c].stored == StoredType::text;
    H5Handle space = h5::dataspace_handle(LATHE_H5_CHECK(H5Screate_simple(1, &zero, &unlimited), w));
    H5Handle dcpl = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), w));
    LATHE_H5_CHECK(H5Pset_chunk(dcpl.get(), 1, &chunk), w);
    // A filter on variable-length strings would compress only their heap ids: none.
    if (options.deflate_level > 0 && !text) {
      LATHE_H5_CHECK(H5Pset_shuffle(dcpl.get()), w);
      LATHE_H5_CHECK(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(options.deflate_level)), w);
    }
    if (m.specs[c].stored == StoredType::categorical_codes) {
      const int missing = -1;
      LATHE_H5_CHECK(H5Pset_fill_value(dcpl.get(), H5T_NATIVE_INT, &missing), w);
    }
    const hid_t type = text ? m.text_type.get() : file_type(m.specs[c].stored);
    m.datasets.push_back(h5::dataset_handle(LATHE_H5_CHECK(
        H5Dcreate2(m.file.get(), m.specs[c].name.c_str(), type, space.get(), H5P_DEFAULT, dcpl.get(),
                   H5P_DEFAULT),
        w)));
    m.done_with(c);
  }
  m.rows.assign(m.specs.size(), 0);
  m.written_rows.assign(m.specs.size(), 0);
  m.categories.resize(m.specs.size());
  m.staging.resize(m.specs.size());
}

ColumnarWriter::~ColumnarWriter() = default;

void ColumnarWriter::append_numeric(std::size_t column, std::span<const double> values) {
  impl_->append(column, H5T_NATIVE_DOUBLE, values.data(), values.size());
}
void ColumnarWriter::append_numeric(std::size_t column, std::span<const float> values) {
  impl_->append(column, H5T_NATIVE_FLOAT, values.data(), values.size());
}
void ColumnarWriter::append_integers(std::size_t column, std::span<const std::int64_t> values) {
  impl_->append(column, H5T_NATIVE_INT64, values.data(), values.size());
}
void ColumnarWriter::append_integers(std::size_t column, std::span<const std::uint64_t> values) {
  impl_->append(column, H5T_NATIVE_UINT64, values.data(), values.size());
}
void ColumnarWriter::append_codes(std::size_t column, std::span<const std::int32_t> codes) {
  impl_->append(column, H5T_NATIVE_INT32, codes.data(), codes.size());
}
void ColumnarWriter::append_text(std::size_t column, std::span<const std::string> values) {
  Impl& m = *impl_;
  m.check_column(column);
  if (m.specs[column].stored != StoredType::text) throw Error(m.where(column) + ": is not a text column");
  if (values.empty()) return;
  std::vector<const char*> text(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) text[i] = values[i].c_str();
  // Text is never staged: written_rows and rows move together.
  m.write_through_hdf5(column, m.text_type.get(), text.data(), text.size());
  m.rows[column] = m.written_rows[column];
}
void ColumnarWriter::set_categories(std::size_t column, const std::vector<std::string>& labels) {
  impl_->categories.at(column) = labels;
}
void ColumnarWriter::set_attribute(const std::string& name, const std::string& value) {
  impl_->attributes.emplace_back(name, value);
}
std::int64_t ColumnarWriter::rows(std::size_t column) const { return impl_->rows.at(column); }

void ColumnarWriter::close() {
  Impl& m = *impl_;
  if (m.closed) return;
  m.flush_all();
  for (std::size_t c = 1; c < m.specs.size(); ++c) {
    if (m.rows[c] != m.rows[0]) {
      throw Error(m.where(c) + ": has " + std::to_string(m.rows[c]) + " rows, column '" +
                  m.specs[0].name + "' has " + std::to_string(m.rows[0]));
    }
  }
  std::vector<std::string> names;
  for (std::size_t c = 0; c < m.specs.size(); ++c) {
    names.push_back(m.specs[c].name);
    if (m.specs[c].stored == StoredType::categorical_codes) {
      h5::write_string_attribute(m.dataset(c), "categories", m.categories[c], m.where(c));
    }
    m.close_dataset(c);  // held open or opened for its categories: its cached chunks written now
  }
  h5::write_string_attribute(m.file.get(), "lathe_columns", names, m.context);
  h5::write_string_attribute(m.file.get(), "lathe_layout", std::string("columnar"), m.context);
  h5::write_int_attribute(m.file.get(), "lathe_format_version", 1, m.context);
  for (const auto& [k, v] : m.attributes) h5::write_string_attribute(m.file.get(), k.c_str(), v, m.context);
  LATHE_H5_CHECK(H5Fflush(m.file.get(), H5F_SCOPE_GLOBAL), m.context);
  // Close explicitly to see the error (a full disk shows up here).
  LATHE_H5_CHECK(H5Fclose(m.file.release()), m.context);
  m.closed = true;
}

}  // namespace lathe
