#include "io/columnar_writer.h"

#include <algorithm>

#include "io/hdf5_handle.h"
#include "runtime/error.h"

namespace lathe {

using h5::H5Handle;

struct ColumnarWriter::Impl {
  std::string context;
  std::vector<ColumnSpec> specs;
  ColumnarWriteOptions options;
  H5Handle file;
  std::vector<H5Handle> datasets;
  std::vector<std::int64_t> rows;
  std::vector<std::vector<std::string>> categories;
  std::vector<std::pair<std::string, std::string>> attributes;
  bool closed = false;

  std::string where(std::size_t c) const { return context + ": column '" + specs[c].name + "'"; }

  void append(std::size_t c, hid_t mem_type, const void* data, std::size_t count) {
    if (c >= datasets.size()) throw Error(context + ": column index " + std::to_string(c) + " out of range");
    if (count == 0) return;
    const std::string w = where(c);
    const hsize_t old_rows = static_cast<hsize_t>(rows[c]);
    const hsize_t new_rows = old_rows + count;
    LATHE_H5_CHECK(H5Dset_extent(datasets[c].get(), &new_rows), w);
    H5Handle space = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(datasets[c].get()), w));
    const hsize_t n = count;
    LATHE_H5_CHECK(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, &old_rows, nullptr, &n, nullptr), w);
    H5Handle mem = h5::dataspace_handle(LATHE_H5_CHECK(H5Screate_simple(1, &n, nullptr), w));
    LATHE_H5_CHECK(H5Dwrite(datasets[c].get(), mem_type, mem.get(), space.get(), H5P_DEFAULT, data), w);
    rows[c] = static_cast<std::int64_t>(new_rows);
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
  H5Handle fcpl = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_FILE_CREATE), m.context));
  LATHE_H5_CHECK(H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), m.context);
  // The 1.8 file format stores large attributes densely: a column with many categories, or a table
  // with many columns, would overflow the 64 KiB object header of the oldest format.
  H5Handle fapl = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), m.context));
  LATHE_H5_CHECK(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST), m.context);
  m.file = h5::file_handle(
      LATHE_H5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), m.context));
  const hsize_t zero = 0, unlimited = H5S_UNLIMITED;
  const hsize_t chunk = static_cast<hsize_t>(std::max<std::int64_t>(1, options.chunk_rows));
  for (std::size_t c = 0; c < m.specs.size(); ++c) {
    const std::string w = m.where(c);
    H5Handle space = h5::dataspace_handle(LATHE_H5_CHECK(H5Screate_simple(1, &zero, &unlimited), w));
    H5Handle dcpl = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), w));
    LATHE_H5_CHECK(H5Pset_chunk(dcpl.get(), 1, &chunk), w);
    if (options.deflate_level > 0) {
      LATHE_H5_CHECK(H5Pset_shuffle(dcpl.get()), w);
      LATHE_H5_CHECK(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(options.deflate_level)), w);
    }
    if (m.specs[c].stored == StoredType::categorical_codes) {
      const int missing = -1;
      LATHE_H5_CHECK(H5Pset_fill_value(dcpl.get(), H5T_NATIVE_INT, &missing), w);
    }
    const StoredType stored = m.specs[c].stored;
    const hid_t type = stored == StoredType::float32   ? H5T_IEEE_F32LE
                       : stored == StoredType::float64 ? H5T_IEEE_F64LE
                       : stored == StoredType::int64   ? H5T_STD_I64LE
                       : stored == StoredType::uint64  ? H5T_STD_U64LE
                                                       : H5T_STD_I32LE;
    m.datasets.push_back(h5::dataset_handle(LATHE_H5_CHECK(
        H5Dcreate2(m.file.get(), m.specs[c].name.c_str(), type, space.get(), H5P_DEFAULT, dcpl.get(),
                   H5P_DEFAULT),
        w)));
  }
  m.rows.assign(m.specs.size(), 0);
  m.categories.resize(m.specs.size());
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
      h5::write_string_attribute(m.datasets[c].get(), "categories", m.categories[c], m.where(c));
    }
  }
  h5::write_string_attribute(m.file.get(), "lathe_columns", names, m.context);
  h5::write_string_attribute(m.file.get(), "lathe_layout", std::string("columnar"), m.context);
  h5::write_int_attribute(m.file.get(), "lathe_format_version", 1, m.context);
  for (const auto& [k, v] : m.attributes) h5::write_string_attribute(m.file.get(), k.c_str(), v, m.context);
  m.datasets.clear();
  LATHE_H5_CHECK(H5Fflush(m.file.get(), H5F_SCOPE_GLOBAL), m.context);
  // Close explicitly to see the error (a full disk shows up here).
  LATHE_H5_CHECK(H5Fclose(m.file.release()), m.context);
  m.closed = true;
}

}  // namespace lathe
