#include "io/matrix_writer.h"

#include <algorithm>

#include "io/hdf5_handle.h"
#include "runtime/error.h"

namespace lathe {

using h5::H5Handle;

struct MatrixWriter::Impl {
  std::string context;
  std::vector<std::string> feature_names;
  MatrixWriteOptions options;
  std::int64_t chunk_rows = 1;
  H5Handle file;
  H5Handle x;
  H5Handle y;
  std::int64_t rows = 0;
  std::vector<std::string> label_categories;
  std::vector<std::pair<std::string, std::string>> attributes;
  bool closed = false;

  std::int64_t width() const { return static_cast<std::int64_t>(feature_names.size()); }

  H5Handle create_dataset(const char* name, int rank, const hsize_t* chunk) {
    const std::string w = context + ": dataset '/" + name + "'";
    const hsize_t zero[2] = {0, static_cast<hsize_t>(width())};
    const hsize_t max[2] = {H5S_UNLIMITED, static_cast<hsize_t>(width())};
    H5Handle space = h5::dataspace_handle(LATHE_H5_CHECK(H5Screate_simple(rank, zero, max), w));
    H5Handle dcpl = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), w));
    LATHE_H5_CHECK(H5Pset_chunk(dcpl.get(), rank, chunk), w);
    if (options.deflate_level > 0) {
      LATHE_H5_CHECK(H5Pset_shuffle(dcpl.get()), w);
      LATHE_H5_CHECK(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(options.deflate_level)), w);
    }
    // Room for two chunks, so an append that ends inside a chunk does not compress it, evict it and
    // read it back at the next append.
    hsize_t chunk_bytes = sizeof(float);
    for (int d = 0; d < rank; ++d) chunk_bytes *= chunk[d];
    H5Handle dapl = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_DATASET_ACCESS), w));
    LATHE_H5_CHECK(H5Pset_chunk_cache(dapl.get(), 521, 2 * chunk_bytes, 1.0), w);
    return h5::dataset_handle(
        LATHE_H5_CHECK(H5Dcreate2(file.get(), name, H5T_IEEE_F32LE, space.get(), H5P_DEFAULT,
                                  dcpl.get(), dapl.get()),
                       w));
  }

  void append_rows(const H5Handle& dataset, const char* name, int rank, const float* data,
                   std::int64_t count) {
    const std::string w = context + ": dataset '/" + name + "'";
    const hsize_t new_dims[2] = {static_cast<hsize_t>(rows + count), static_cast<hsize_t>(width())};
    LATHE_H5_CHECK(H5Dset_extent(dataset.get(), new_dims), w);
    H5Handle space = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(dataset.get()), w));
    const hsize_t start[2] = {static_cast<hsize_t>(rows), 0};
    const hsize_t extent[2] = {static_cast<hsize_t>(count), static_cast<hsize_t>(width())};
    LATHE_H5_CHECK(
        H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start, nullptr, extent, nullptr), w);
    H5Handle memory =
        h5::dataspace_handle(LATHE_H5_CHECK(H5Screate_simple(rank, extent, nullptr), w));
    LATHE_H5_CHECK(
        H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, memory.get(), space.get(), H5P_DEFAULT, data), w);
  }
};

MatrixWriter::MatrixWriter(const std::filesystem::path& path,
                           std::vector<std::string> feature_names, MatrixWriteOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.context = path.string();
  m.feature_names = std::move(feature_names);
  m.options = options;
  if (m.feature_names.empty()) throw InputError(m.context + ": a matrix needs at least one column");
  const std::int64_t row_bytes = m.width() * static_cast<std::int64_t>(sizeof(float));
  m.chunk_rows = std::clamp<std::int64_t>(
      options.chunk_rows, 1, std::max<std::int64_t>(1, options.kMaxChunkBytes / row_bytes));

  // Creation order lets readers list X before y; the 1.8 format stores large attributes (many
  // feature names, a long ground truth) densely instead of overflowing a 64 KiB object header.
  H5Handle fcpl = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_FILE_CREATE), m.context));
  LATHE_H5_CHECK(
      H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
      m.context);
  H5Handle fapl = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), m.context));
  LATHE_H5_CHECK(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST), m.context);
  m.file = h5::file_handle(
      LATHE_H5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), m.context));

  const hsize_t x_chunk[2] = {static_cast<hsize_t>(m.chunk_rows), static_cast<hsize_t>(m.width())};
  m.x = m.create_dataset("X", 2, x_chunk);
  if (options.with_label) {
    const hsize_t y_chunk[1] = {static_cast<hsize_t>(m.chunk_rows)};
    m.y = m.create_dataset("y", 1, y_chunk);
  }
}

MatrixWriter::~MatrixWriter() = default;

void MatrixWriter::append(std::span<const float> features, std::span<const float> labels) {
  Impl& m = *impl_;
  if (m.closed) throw Error(m.context + ": append after close");
  const auto width = static_cast<std::size_t>(m.width());
  if (features.size() % width != 0) {
    throw Error(m.context + ": " + std::to_string(features.size()) +
                " feature values are not whole rows of " + std::to_string(width) + " columns");
  }
  const auto count = static_cast<std::int64_t>(features.size() / width);
  const auto expected_labels = m.options.with_label ? static_cast<std::size_t>(count) : 0;
  if (labels.size() != expected_labels) {
    throw Error(m.context + ": " + std::to_string(labels.size()) + " labels for " +
                std::to_string(count) + " rows" +
                (m.options.with_label ? "" : " (no label dataset)"));
  }
  if (count == 0) return;
  m.append_rows(m.x, "X", 2, features.data(), count);
  if (m.options.with_label) m.append_rows(m.y, "y", 1, labels.data(), count);
  m.rows += count;
}

void MatrixWriter::set_attribute(const std::string& name, const std::string& value) {
  impl_->attributes.emplace_back(name, value);
}

void MatrixWriter::set_label_categories(const std::vector<std::string>& labels) {
  impl_->label_categories = labels;
}

void MatrixWriter::close() {
  Impl& m = *impl_;
  if (m.closed) return;
  h5::write_string_attribute(m.x.get(), "feature_names", m.feature_names, m.context + ": /X");
  if (m.options.with_label && !m.label_categories.empty()) {
    h5::write_string_attribute(m.y.get(), "categories", m.label_categories, m.context + ": /y");
  }
  h5::write_string_attribute(m.file.get(), "lathe_layout", std::string("matrix"), m.context);
  for (const auto& [name, value] : m.attributes) {
    h5::write_string_attribute(m.file.get(), name.c_str(), value, m.context);
  }
  // Closing a dataset compresses and writes its last cached chunk: check it like any write.
  LATHE_H5_CHECK(H5Dclose(m.x.release()), m.context + ": /X");
  if (m.y) LATHE_H5_CHECK(H5Dclose(m.y.release()), m.context + ": /y");
  LATHE_H5_CHECK(H5Fflush(m.file.get(), H5F_SCOPE_GLOBAL), m.context);
  // Close explicitly to see the error (a full disk shows up here).
  LATHE_H5_CHECK(H5Fclose(m.file.release()), m.context);
  m.closed = true;
}

std::int64_t MatrixWriter::rows() const { return impl_->rows; }
std::int64_t MatrixWriter::columns() const { return impl_->width(); }
std::int64_t MatrixWriter::chunk_rows() const { return impl_->chunk_rows; }

}  // namespace lathe
