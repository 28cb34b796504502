#include "io/table_reader.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "io/direct_block_reader.h"
#include "io/text_check.h"
#include "io/element_decoder.h"
#include "io/hdf5_handle.h"
#include "io/native_integer.h"
#include "io/pickle_text.h"
#include "io/record_reader.h"
#include "runtime/error.h"

namespace lathe {

const char* layout_name(Layout layout) {
  switch (layout) {
    case Layout::matrix: return "matrix";
    case Layout::columnar: return "columnar";
    case Layout::pandas: return "pandas";
    case Layout::pandas_table: return "pandas table";
    case Layout::table: return "table";
  }
  return "?";
}

const char* column_type_name(ColumnType type) {
  return type == ColumnType::numeric ? "numeric" : "categorical";
}

std::optional<bool> bool_text_value(std::string_view label) {
  if (label == "True" || label == "TRUE" || label == "true") return true;
  if (label == "False" || label == "FALSE" || label == "false") return false;
  return std::nullopt;
}

namespace {

using h5::H5Handle;

// How the elements of a dataset become float32.
enum class Conversion {
  hdf5_native,  // integer or float: HDF5 converts to native float (any byte order)
  bitfield8,    // 8-bit bitfield (pandas/PyTables bool): read bytes, nonzero is 1
  enum_integer  // enum over an integer (h5py bool): read native integer values of the enum
};

struct ElementType {
  Conversion conversion = Conversion::hdf5_native;
  std::string dtype;
  std::string byte_order;
  std::size_t size = 0;   // bytes per element (enum/bitfield)
  bool is_signed = true;  // enum base type
  H5Handle native_enum;   // memory type for enum reads
};

ElementType classify_type(hid_t type, const std::string& where) {
  ElementType e;
  const H5T_class_t cls = H5Tget_class(type);
  const std::size_t size = H5Tget_size(type);
  const H5T_order_t order = H5Tget_order(type);
  e.byte_order = order == H5T_ORDER_BE ? "big" : order == H5T_ORDER_LE ? "little" : "none";
  e.size = size;
  switch (cls) {
    case H5T_INTEGER: {
      const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
      if (size != 1 && size != 2 && size != 4 && size != 8) break;
      e.dtype = std::string(is_signed ? "int" : "uint") + std::to_string(size * 8);
      return e;
    }
    case H5T_FLOAT:
      if (size != 2 && size != 4 && size != 8) break;
      e.dtype = "float" + std::to_string(size * 8);
      return e;
    case H5T_BITFIELD:
      if (size != 1) break;
      e.conversion = Conversion::bitfield8;
      e.dtype = "bool";
      return e;
    case H5T_ENUM: {
      H5Handle base = h5::datatype_handle(LATHE_H5_CHECK(H5Tget_super(type), where));
      if (H5Tget_class(base.get()) != H5T_INTEGER) break;
      e.conversion = Conversion::enum_integer;
      e.is_signed = H5Tget_sign(base.get()) == H5T_SGN_2;
      e.native_enum = h5::enum_memory_type(type, where);
      e.size = H5Tget_size(e.native_enum.get());
      e.dtype = h5::is_boolean_enum(type) ? "bool" : "enum" + std::to_string(e.size * 8);
      return e;
    }
    default:
      break;
  }
  static const std::map<H5T_class_t, const char*> names = {
      {H5T_STRING, "string"},   {H5T_COMPOUND, "compound"}, {H5T_OPAQUE, "opaque"},
      {H5T_REFERENCE, "reference"}, {H5T_VLEN, "variable-length"}, {H5T_ARRAY, "array"},
      {H5T_TIME, "time"},       {H5T_INTEGER, "integer"},    {H5T_FLOAT, "float"},
      {H5T_BITFIELD, "bitfield"}, {H5T_ENUM, "enum"}};
  const auto it = names.find(cls);
  throw InputError(where + ": unsupported element type " +
                   (it == names.end() ? std::string("(unknown)") : std::string(it->second)) + " of " +
                   std::to_string(size) + " bytes; Lathe reads integer, float and bool data here (strings in "
                   "columns, fields of records and labels)");
}

// Column labels of a pandas frame (axis0, blockN_items): strings, or int64 when the columns are
// integers, as for DataFrame(ndarray); those columns are named by their decimal value.
std::vector<std::string> read_pandas_labels(hid_t dataset, const std::string& where) {
  H5Handle type = h5::datatype_handle(LATHE_H5_CHECK(H5Dget_type(dataset), where));
  if (H5Tget_class(type.get()) != H5T_INTEGER) return h5::read_string_dataset(dataset, where);
  H5Handle space = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(dataset), where));
  const hssize_t n = LATHE_H5_CHECK(H5Sget_simple_extent_npoints(space.get()), where);
  std::vector<long long> values(static_cast<std::size_t>(n));
  if (n > 0) {
    LATHE_H5_CHECK(H5Dread(dataset, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
                   where);
  }
  std::vector<std::string> labels;
  for (const long long v : values) labels.push_back(std::to_string(v));
  return labels;
}

// Whether a pandas dtype name ("datetime64[ns]", "timedelta64[us]", "period[D]", ...) is one of
// dates or times: pandas stores them as int64 counts since 1970 (or ordinals), which would read
// as plain numbers.
bool is_pandas_date_or_time(const std::string& dtype) {
  for (const char* time : {"datetime", "timedelta", "period", "date"}) {
    if (dtype.rfind(time, 0) == 0) return true;
  }
  return false;
}

// Refuses the columns of dates and times of a pandas frame (`context`), each described as
// "NAME (DTYPE)", in one message for both formats.
[[noreturn]] void refuse_dates_and_times(const std::string& context, const std::vector<std::string>& described) {
  std::string list;
  for (const auto& d : described) list += (list.empty() ? "" : ", ") + d;
  throw InputError(context + ": columns " + list +
                   " hold dates or times, which Lathe does not read; convert them to numbers (seconds, "
                   "days) first");
}

// A dataset that feeds one or more columns: a 1-D column, a 2-D matrix, or a pandas block.
struct Source {
  std::string path;
  H5Handle dataset;
  ElementType element;
  int rank = 1;
  std::int64_t width = 1;              // columns in this dataset (1 for 1-D)
  std::vector<std::int64_t> target;    // target[j]: table column of dataset column j
  std::optional<ElementDecoder> decoder;  // none: no exact conversion outside HDF5
  // How read_block reads it (path hdf5_hyperslab: H5Dread, or the record reader's read()).
  DirectLayout direct;
  // Records or strings: decoded by this (from stored records on a direct path, else its read()).
  std::unique_ptr<RecordReader> record;
  // A column of variable-length strings whose blocks read their strings from their heap ids: read
  // only as text, or as categories whose codes collect_labels did not keep.
  std::unique_ptr<HeapStringReader> heap;
  std::size_t storage_index = 0;  // its entry in TableReader::storage()
};

// Decoders already made, by file type and conversion: a wide columnar file has one type for
// hundreds of columns, and a one- or two-byte type's table costs a conversion of every pattern.
struct CachedDecoder {
  H5Handle type;
  Conversion conversion;
  std::optional<ElementDecoder> decoder;
};

}  // namespace

struct TableReader::Impl {
  std::filesystem::path path;
  std::string file_context;  // the path, for messages
  TableReadOptions options;
  H5Handle file;
  Layout layout = Layout::columnar;
  std::int64_t rows = 0;
  std::vector<ColumnInfo> columns;
  std::vector<DatasetStorage> storage;
  std::vector<Source> sources;
  // The table columns stored as integer category codes (a columnar dataset with a `categories`
  // attribute, a pandas categorical field): read_sources turns code -1 into a missing value and
  // refuses any other code outside the labels, naming the row.
  std::vector<std::int64_t> code_columns;
  // Per code column, the codes whose label is "" (found at open): missing, as an empty string is
  // in a column of strings and in lathe::Scorer's batches (and the ONNX graph keeps "" for missing).
  std::vector<std::vector<float>> empty_label_codes;
  // Per code column, where its stored labels name one label twice (["a", "b", "a"]): the code each
  // stored code reads as, that of the label's first place (the column's labels then name it once);
  // empty where every label is distinct. Every command matches categories by label (a model's
  // vocabulary, classes, drift), so two codes of one label are one category; reading them as one
  // code makes inspect's counts, --dedup and passthrough columns agree with that.
  std::vector<std::vector<std::int32_t>> merged_codes;
  // Per code column, how many labels its codes may name (its stored labels, each once): a column
  // read as bools (TableReadOptions::labels_as_bools) keeps no categories, and its codes are
  // checked all the same.
  std::vector<std::int64_t> code_labels;
  // The columns read as the other kind (TableReadOptions::bools_as_labels, labels_as_bools), by
  // column; and each labels_as_bools column with the number each of its codes reads as.
  std::vector<bool> retyped;
  std::vector<std::pair<std::int64_t, std::vector<float>>> bool_values;
  std::int64_t block_rows = 0;
  std::vector<float> scratch;  // row-major staging for 2-D reads, reused across blocks
  std::vector<unsigned char> byte_scratch;
  std::optional<DirectBlockReader> direct;  // absent when options.direct_read is false
  std::vector<CachedDecoder> decoders;
  std::vector<DirectRead> direct_requests;          // reused across blocks
  std::vector<std::vector<float*>> direct_columns;  // the requests' column pointers
  std::vector<std::size_t> direct_sources;          // the source of each request
  std::int64_t code_budget = 0;  // options.category_code_bytes not yet taken

  // What collect_labels may keep of a source's category codes: none where its records are decoded
  // as stored (the direct path never calls the record reader's read()).
  // The rows collect_labels reads at a time from source s: --block-rows rounded up to whole chunks
  // of its dataset, as the blocks read afterwards are (TableReader::block_rows), so that each chunk
  // is read and decompressed once: --block-rows 1 over a chunked column of strings read every chunk
  // once a row (20k rows: 12 s to open, against 0.5 s at 100).
  std::int64_t label_block_rows(const Source& s) const {
    const std::vector<std::int64_t>& chunk = storage[s.storage_index].chunk;
    const std::int64_t crow = chunk.empty() ? 0 : chunk[0];
    return crow <= 0 ? options.block_rows : (options.block_rows + crow - 1) / crow * crow;
  }

  std::int64_t* code_budget_for(const Source& s) {
    return direct && s.record->decodes_stored_records() ? nullptr : &code_budget;
  }

  std::string where(const std::string& dataset) const {
    return file_context + ": dataset '" + dataset + "'";
  }

  void open_file() {
    h5::check_input_file(path, file_context);
    h5::silence_errors_in_this_thread();
    const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
    if (is_hdf5 <= 0) throw InputError(file_context + ": not an HDF5 file" + csv_file_hint(path));
    hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (id < 0) {
      const std::string why = h5::last_error_message();
      H5Eclear2(H5E_DEFAULT);
      if (const std::string locked = h5::locked_file_message(file_context, why); !locked.empty()) {
        throw InputError(locked);
      }
      throw InputError(file_context + ": cannot open HDF5 file (truncated or damaged?): " + why);
    }
    file = h5::file_handle(id);
  }

  // Opens a dataset with a chunk cache big enough for one block of rows of it.
  // `records_allowed`: the caller reads records and strings with a RecordReader; elsewhere they are
  // an unsupported element type.
  Source open_source(hid_t parent, const std::string& name, const std::string& full_path,
                     bool records_allowed = false) {
    const std::string w = where(full_path);
    Source s;
    s.path = full_path;
    hid_t probe = H5Dopen2(parent, name.c_str(), H5P_DEFAULT);
    if (probe < 0) {
      H5Eclear2(H5E_DEFAULT);
      throw InputError(w + ": cannot open (damaged file?)");
    }
    H5Handle probe_handle = h5::dataset_handle(probe);
    H5Handle space = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(probe), w));
    s.rank = LATHE_H5_CHECK(H5Sget_simple_extent_ndims(space.get()), w);
    hsize_t dims[H5S_MAX_RANK] = {};
    LATHE_H5_CHECK(H5Sget_simple_extent_dims(space.get(), dims, nullptr), w);
    H5Handle type = h5::datatype_handle(LATHE_H5_CHECK(H5Dget_type(probe), w));
    // Records and strings are read by a RecordReader that the caller makes.
    const H5T_class_t type_class = H5Tget_class(type.get());
    const bool records = type_class == H5T_COMPOUND || type_class == H5T_STRING;
    if (records && !records_allowed) classify_type(type.get(), w);  // throws, naming the type
    if (records) {
      s.element.dtype = type_class == H5T_COMPOUND ? "compound" : "string";
      s.element.byte_order = "none";
    } else {
      s.element = classify_type(type.get(), w);
    }

    DatasetStorage st;
    st.dataset = full_path;
    st.dtype = s.element.dtype;
    st.byte_order = s.element.byte_order;
    for (int i = 0; i < s.rank; ++i) st.shape.push_back(static_cast<std::int64_t>(dims[i]));
    H5Handle dcpl = h5::plist_handle(LATHE_H5_CHECK(H5Dget_create_plist(probe), w));
    std::size_t chunk_bytes = 0;
    if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
      hsize_t cdims[H5S_MAX_RANK] = {};
      const int crank = LATHE_H5_CHECK(H5Pget_chunk(dcpl.get(), H5S_MAX_RANK, cdims), w);
      chunk_bytes = H5Tget_size(type.get());
      for (int i = 0; i < crank; ++i) {
        st.chunk.push_back(static_cast<std::int64_t>(cdims[i]));
        chunk_bytes *= cdims[i];
      }
      const int nfilters = LATHE_H5_CHECK(H5Pget_nfilters(dcpl.get()), w);
      for (int i = 0; i < nfilters; ++i) {
        unsigned flags = 0, config = 0;
        std::size_t nelmts = 0;
        char fname[256] = {};
        const H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &nelmts,
                                               nullptr, sizeof fname, fname, &config);
        std::string filter_name = id == H5Z_FILTER_DEFLATE   ? "deflate"
                                  : id == H5Z_FILTER_SHUFFLE ? "shuffle"
                                  : id == H5Z_FILTER_FLETCHER32 ? "fletcher32"
                                  : id == H5Z_FILTER_SZIP       ? "szip"
                                  : id == H5Z_FILTER_NBIT       ? "nbit"
                                  : id == H5Z_FILTER_SCALEOFFSET ? "scaleoffset"
                                  : id == 32001                  ? "blosc"
                                  : id == 32004                  ? "lz4"
                                  : id == 32008                  ? "bitshuffle"
                                  : id == 32015                  ? "zstd"
                                  : (fname[0] ? fname : "filter " + std::to_string(id));
        if (H5Zfilter_avail(id) <= 0) {
          H5Eclear2(H5E_DEFAULT);
          throw InputError(w + ": compressed with the HDF5 filter '" + filter_name + "' (id " +
                           std::to_string(id) +
                           "), which this HDF5 library does not have; install the filter plugin "
                           "and point HDF5_PLUGIN_PATH at its folder");
        }
        st.filters.push_back(filter_name);
      }
    } else if (H5Pget_layout(dcpl.get()) == H5D_COMPACT && H5Tdetect_class(type.get(), H5T_STRING) <= 0 &&
               H5Tdetect_class(type.get(), H5T_VLEN) <= 0) {
      // HDF5 1.10 reads a compact dataset's elements from the bytes its header holds without
      // checking that they are that many: a damaged layout message (one flipped bit of an old-format
      // file made a 200-byte contiguous column "compact, 0 bytes") crashed inside H5Dread. The
      // stored size of a type without strings or sequences is its elements' size in the file.
      const hssize_t elements = LATHE_H5_CHECK(H5Sget_simple_extent_npoints(space.get()), w);
      const hsize_t needed = static_cast<hsize_t>(elements) * H5Tget_size(type.get());
      const hsize_t stored = H5Dget_storage_size(probe);
      if (stored < needed) {
        H5Eclear2(H5E_DEFAULT);
        throw InputError(w + ": its compact storage holds " + std::to_string(stored) + " bytes, where its " +
                         std::to_string(elements) + " elements need " + std::to_string(needed) +
                         " (a damaged file?)");
      }
    }
    storage.push_back(st);

    // Reopen with a chunk cache that holds every chunk one block touches, so each chunk is read
    // and decompressed once per block.
    if (chunk_bytes > 0) {
      const std::int64_t crow = std::max<std::int64_t>(1, st.chunk[0]);
      // Never more than the dataset has: the slots are allocated at open (below).
      const std::int64_t chunks_per_block =
          std::min((options.block_rows + crow - 1) / crow,
                   (static_cast<std::int64_t>(dims[0]) + crow - 1) / crow) +
          1;
      std::int64_t chunks_across = 1;
      for (int i = 1; i < s.rank; ++i) {
        chunks_across *= (dims[i] + st.chunk[i] - 1) / std::max<std::int64_t>(1, st.chunk[i]);
      }
      const std::size_t cache_bytes = chunk_bytes * chunks_per_block * chunks_across;
      // A block's chunks are consecutive chunk indices, which land in distinct slots of any table
      // at least as long. The slots are allocated at open (8 bytes each): 12421 of them took
      // 99 KB a dataset, 2 GB for a columnar file of 20000 columns.
      const std::size_t slots = std::max<std::size_t>(521, 2 * static_cast<std::size_t>(chunks_per_block * chunks_across) + 1);
      H5Handle dapl = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_DATASET_ACCESS), w));
      LATHE_H5_CHECK(H5Pset_chunk_cache(dapl.get(), slots, cache_bytes, 1.0), w);
      probe_handle.reset();
      s.dataset = h5::dataset_handle(LATHE_H5_CHECK(H5Dopen2(parent, name.c_str(), dapl.get()), w));
    } else {
      s.dataset = std::move(probe_handle);
    }
    s.width = s.rank == 2 ? static_cast<std::int64_t>(dims[1]) : 1;
    if (direct && !records) {
      s.decoder = decoder_for(type.get(), s.element, w);
      s.direct = direct->plan(s.dataset.get(), s.decoder ? &*s.decoder : nullptr, w);
    }
    storage.back().read_path = read_path_name(s.direct.path);
    s.storage_index = storage.size() - 1;
    return s;
  }

  // Lets a source of records or strings, its record reader made and its labels collected, take a
  // direct path where the reader decodes the stored records exactly.
  void plan_records(Source& s, const std::string& w) {
    if (direct) s.direct = direct->plan_records(s.dataset.get(), *s.record, w);
    storage[s.storage_index].read_path = read_path_name(s.direct.path);
  }

  // The decoder of `type` read with `element`'s conversion, tabulated or checked against HDF5's own
  // conversion (the reference below), or none.
  std::optional<ElementDecoder> decoder_for(hid_t type, const ElementType& element,
                                            const std::string& w) {
    for (const CachedDecoder& c : decoders) {
      if (c.conversion == element.conversion && H5Tequal(c.type.get(), type) > 0) return c.decoder;
    }
    std::optional<ElementDecoder> decoder;
    try {
      decoder = ElementDecoder::create(type, element.conversion == Conversion::hdf5_native,
                                       [&](const unsigned char* bytes, std::size_t n, float* out) {
                                         convert_like_hyperslab(type, element, bytes, n, out, w);
                                       });
    } catch (const Hdf5Error&) {
      decoder.reset();  // HDF5 cannot convert these values either: its own path will say so
    }
    decoders.push_back(
        {h5::datatype_handle(LATHE_H5_CHECK(H5Tcopy(type), w)), element.conversion, decoder});
    return decoder;
  }

  // Converts `n` packed elements of `type` to float32 exactly as read_rows does, with the same
  // memory types and the same post-processing, through H5Tconvert instead of H5Dread.
  void convert_like_hyperslab(hid_t type, const ElementType& element, const unsigned char* bytes,
                              std::size_t n, float* out, const std::string& w) {
    const std::size_t size = H5Tget_size(type);
    switch (element.conversion) {
      case Conversion::hdf5_native: {
        std::vector<unsigned char> buffer(n * std::max<std::size_t>(size, sizeof(float)));
        std::memcpy(buffer.data(), bytes, n * size);
        LATHE_H5_CHECK(H5Tconvert(type, H5T_NATIVE_FLOAT, n, buffer.data(), nullptr, H5P_DEFAULT),
                       w);
        std::memcpy(out, buffer.data(), n * sizeof(float));
        break;
      }
      case Conversion::bitfield8: {
        std::vector<unsigned char> buffer(bytes, bytes + n * size);
        LATHE_H5_CHECK(H5Tconvert(type, H5T_NATIVE_B8, n, buffer.data(), nullptr, H5P_DEFAULT), w);
        for (std::size_t i = 0; i < n; ++i) out[i] = buffer[i] != 0 ? 1.0f : 0.0f;
        break;
      }
      case Conversion::enum_integer: {
        const std::size_t native = element.size;
        std::vector<unsigned char> buffer(n * std::max(size, native));
        std::memcpy(buffer.data(), bytes, n * size);
        LATHE_H5_CHECK(
            H5Tconvert(type, element.native_enum.get(), n, buffer.data(), nullptr, H5P_DEFAULT), w);
        const unsigned char* p = buffer.data();
        for (std::size_t i = 0; i < n; ++i, p += native)
          out[i] = native_integer_as_float(p, native, element.is_signed);
        break;
      }
    }
  }

  // `name`: the matrix's path from the root. Its label, and names not on the matrix itself, are
  // looked up in the group that holds it (the root, or the group given with --group).
  void open_matrix(const std::string& name) {
    layout = Layout::matrix;
    const auto slash = name.rfind('/');
    const std::string parent = slash == std::string::npos ? std::string() : name.substr(0, slash);
    const std::string parent_context =
        parent.empty() ? file_context : file_context + ": group '/" + parent + "'";
    H5Handle parent_group = h5::group_handle(LATHE_H5_CHECK(
        H5Gopen2(file.get(), parent.empty() ? "/" : parent.c_str(), H5P_DEFAULT), parent_context));
    Source x = open_source(file.get(), name, "/" + name);
    const DatasetStorage& xs = storage.back();
    if (x.rank != 2) {
      throw InputError(where("/" + name) + ": expected a 2-D matrix (rows x features), found rank " +
                       std::to_string(x.rank));
    }
    rows = xs.shape[0];
    const std::int64_t width = xs.shape[1];
    // A rows x 0 matrix is no table: nothing downstream can use a block without columns.
    if (width == 0) throw InputError(where("/" + name) + ": has no columns (shape " +
                                     std::to_string(rows) + " x 0)");
    std::vector<std::string> names;
    std::string names_context = where("/" + name);  // the attribute that names the columns
    for (const char* attr : {"feature_names", "columns"}) {
      if (h5::attribute_exists(x.dataset.get(), attr, where("/" + name))) {
        names = h5::read_string_attribute(x.dataset.get(), attr, where("/" + name));
        names_context = where("/" + name) + ", attribute '" + attr + "'";
        break;
      }
      if (h5::attribute_exists(parent_group.get(), attr, parent_context)) {
        names = h5::read_string_attribute(parent_group.get(), attr, parent_context);
        names_context = parent_context + ", attribute '" + attr + "'";
        break;
      }
    }
    if (!names.empty() && static_cast<std::int64_t>(names.size()) != width) {
      throw InputError(where("/" + name) + ": has " + std::to_string(width) + " columns but " +
                       std::to_string(names.size()) + " feature names");
    }
    for (std::int64_t j = 0; j < width; ++j) {
      ColumnInfo c;
      c.name = names.empty() ? "f" + std::to_string(j) : names[j];
      c.dtype = x.element.dtype;
      c.dataset = "/" + name;
      x.target.push_back(static_cast<std::int64_t>(columns.size()));
      columns.push_back(c);
    }
    check_unique_names(names_context);
    sources.push_back(std::move(x));

    // The label, then the other named vectors: each optional, 1-D (or rows x 1) with the matrix's rows.
    std::vector<std::string> vectors = {options.label_dataset};
    for (const std::string& v : options.vector_datasets) {
      if (std::find(vectors.begin(), vectors.end(), v) == vectors.end()) vectors.push_back(v);
    }
    for (const std::string& vector : vectors) {
      const std::string vector_path = parent.empty() ? vector : parent + "/" + vector;
      const bool a_column = std::any_of(columns.begin(), columns.end(), [&](const ColumnInfo& c) { return c.name == vector; });
      if (vector.empty() || vector_path == name || (a_column && vector != options.label_dataset) ||
          H5Lexists(file.get(), vector_path.c_str(), H5P_DEFAULT) <= 0) {
        continue;
      }
      open_vector_beside_matrix(vector, vector_path, name);
    }
    H5Eclear2(H5E_DEFAULT);
  }

  // The 1-D dataset (or rows x 1) `path` beside the matrix `matrix`: the column `name`, of numbers,
  // or of strings read as categories (class names: "cat", "dog").
  void open_vector_beside_matrix(const std::string& name, const std::string& path, const std::string& matrix) {
    const std::string w = where("/" + path);
    Source v = open_source(file.get(), path, "/" + path, true);
    const bool is_label = name == options.label_dataset;
    if (v.element.dtype == "compound") {
      throw InputError(w + ": " + (is_label ? "a label" : "a column beside the matrix") +
                       " of records (a compound type); Lathe reads one of numbers or strings");
    }
    const DatasetStorage& vs = storage.back();
    const bool column_vector = v.rank == 2 && vs.shape[1] == 1;
    if (v.rank != 1 && !column_vector) {
      throw InputError(w + ": " + (is_label ? "a label" : "a column beside the matrix") + " must be 1-D, found rank " +
                       std::to_string(v.rank));
    }
    if (vs.shape[0] != rows) {
      throw InputError(w + ": has " + std::to_string(vs.shape[0]) + (is_label ? " labels" : " values") + " for " +
                       std::to_string(rows) + " rows of '/" + matrix + "'");
    }
    ColumnInfo c;
    c.name = name;
    c.dtype = v.element.dtype;
    c.dataset = "/" + path;
    if (v.element.dtype == "string") {
      RecordField field;
      field.columns = {static_cast<std::int64_t>(columns.size())};
      v.record = std::make_unique<RecordReader>(v.dataset.get(), std::vector<RecordField>{field}, w);
      v.record->collect_labels(rows, label_block_rows(v), code_budget_for(v));
      plan_records(v, w);
      c.type = ColumnType::categorical;
      c.categories = v.record->labels(0, 0);
    }
    v.target.push_back(static_cast<std::int64_t>(columns.size()));
    columns.push_back(c);
    sources.push_back(std::move(v));
  }

  void open_columnar(const std::string& group_path) {
    layout = Layout::columnar;
    const std::string gw = file_context + ": group '" + group_path + "'";
    H5Handle group = h5::group_handle(LATHE_H5_CHECK(H5Gopen2(file.get(), group_path.c_str(), H5P_DEFAULT), gw));
    std::vector<std::string> names;
    if (h5::attribute_exists(group.get(), "lathe_columns", gw)) {
      names = h5::read_string_attribute(group.get(), "lathe_columns", gw);
    } else {
      for (const auto& n : h5::list_group(group.get(), gw)) {
        H5O_info_t info{};
        if (H5Oget_info_by_name(group.get(), n.c_str(), &info, H5P_DEFAULT) >= 0 &&
            info.type == H5O_TYPE_DATASET) {
          names.push_back(n);
        }
      }
      H5Eclear2(H5E_DEFAULT);
    }
    if (names.empty()) throw InputError(gw + ": holds no datasets, so no table");
    const std::string prefix = group_path == "/" ? "/" : group_path + "/";
    std::vector<StoredStrings> stored_strings;
    for (const auto& n : names) {
      if (H5Lexists(group.get(), n.c_str(), H5P_DEFAULT) <= 0) {
        throw InputError(gw + ": column '" + n + "' is listed in lathe_columns but has no dataset");
      }
      Source s = open_source(group.get(), n, prefix + n, true);
      const DatasetStorage& st = storage.back();
      if (s.rank != 1) {
        throw InputError(where(prefix + n) + ": a column of the columnar layout must be 1-D, found rank " +
                         std::to_string(s.rank));
      }
      if (columns.empty()) {
        rows = st.shape[0];
      } else if (st.shape[0] != rows) {
        throw InputError(where(prefix + n) + ": has " + std::to_string(st.shape[0]) + " rows, but '" +
                         columns.front().dataset + "' has " + std::to_string(rows));
      }
      ColumnInfo c;
      c.name = n;
      c.dtype = s.element.dtype;
      c.dataset = prefix + n;
      if (s.element.dtype == "compound") {
        throw InputError(where(prefix + n) + ": a dataset of records among columns; read it as a table with --group " +
                         prefix + n);
      }
      if (s.element.dtype == "string") {
        // A column of strings: categorical, its labels the strings it holds.
        RecordField field;
        field.columns = {static_cast<std::int64_t>(columns.size())};
        field.text_only = read_as_text(n);
        s.record = std::make_unique<RecordReader>(s.dataset.get(), std::vector<RecordField>{field}, where(prefix + n));
        c.type = ColumnType::categorical;
        c.text_only = field.text_only;
        std::optional<HeapStringLayout> heap;
        if (direct) heap = direct->plan_heap_strings(s.dataset.get(), where(prefix + n));
        if (heap && !c.text_only) {
          stored_strings.push_back({sources.size(), *heap});  // after the loop, with the others
        } else {
          s.record->collect_labels(rows, label_block_rows(s), code_budget_for(s));
          plan_records(s, where(prefix + n));
          if (!c.text_only) c.categories = s.record->release_labels(0, 0);
          if (heap) {  // text only: read_text takes its strings from the heap ids
            s.heap = std::make_unique<HeapStringReader>(direct->file(), *heap, where(prefix + n));
            storage[s.storage_index].read_path = "heap ids (pread)";
          }
        }
      } else if (h5::attribute_exists(s.dataset.get(), "categories", where(prefix + n))) {
        if (c.dtype.rfind("float", 0) == 0) {
          throw InputError(where(prefix + n) + ": has category labels but stores " + c.dtype +
                           " values; category codes must be integers (-1 for missing)");
        }
        c.type = ColumnType::categorical;
        c.categories = h5::read_string_attribute(s.dataset.get(), "categories", where(prefix + n));
        code_columns.push_back(static_cast<std::int64_t>(columns.size()));
      }
      s.target.push_back(static_cast<std::int64_t>(columns.size()));
      columns.push_back(c);
      sources.push_back(std::move(s));
    }
    collect_stored_labels(stored_strings);
  }

  // A source of variable-length strings whose labels are read from its heap ids.
  struct StoredStrings {
    std::size_t source = 0;
    HeapStringLayout layout;
  };

  // The labels of columns of variable-length strings, read from their heap ids and collections
  // (HeapStringReader) on several threads at once, since that calls no HDF5; a column whose stored
  // bytes the reader does not understand is read through HDF5 afterwards. Each column's labels
  // and codes are those collect_labels gives. On the threads each column may take 4 bytes a row
  // (its widest codes) of the code budget, so they run together only where the budget holds that
  // for all of them; otherwise one after another.
  void collect_stored_labels(const std::vector<StoredStrings>& stored) {
    if (stored.empty()) return;
    const std::int64_t widest = 4 * rows * static_cast<std::int64_t>(stored.size());
    const bool together = stored.size() > 1 && widest <= code_budget;
    std::vector<char> done(stored.size(), 0);
    std::vector<std::exception_ptr> failed(stored.size());
    std::vector<std::int64_t> budgets(stored.size(), 4 * rows);
    const auto collect = [&](std::size_t i, std::int64_t* budget) {
      try {
        Source& s = sources[stored[i].source];
        HeapStringReader strings(direct->file(), stored[i].layout, where(s.path));
        done[i] =
            s.record->collect_stored_labels(strings, rows, label_block_rows(s), budget) ? 1 : 0;
      } catch (...) {
        failed[i] = std::current_exception();
      }
    };
    if (together) {
#pragma omp parallel for schedule(dynamic, 1)
      for (std::size_t i = 0; i < stored.size(); ++i) {
        collect(i, code_budget_for(sources[stored[i].source]) ? &budgets[i] : nullptr);
      }
    } else {
      for (std::size_t i = 0; i < stored.size(); ++i) collect(i, code_budget_for(sources[stored[i].source]));
    }
    for (std::size_t i = 0; i < stored.size(); ++i) {
      if (failed[i]) std::rethrow_exception(failed[i]);
      Source& s = sources[stored[i].source];
      if (together && code_budget_for(s)) code_budget -= 4 * rows - budgets[i];
      if (!done[i]) s.record->collect_labels(rows, label_block_rows(s), code_budget_for(s));
      plan_records(s, where(s.path));
      if (done[i]) {
        const bool kept = s.record->keeps_codes();
        if (!kept) s.heap = std::make_unique<HeapStringReader>(direct->file(), stored[i].layout, where(s.path));
        storage[s.storage_index].read_path = kept ? "heap ids (pread), codes kept" : "heap ids (pread)";
      }
      columns[static_cast<std::size_t>(s.target.front())].categories = s.record->release_labels(0, 0);
    }
  }

  void open_pandas(const std::string& key) {
    layout = Layout::pandas;
    const std::string gw = file_context + ": pandas key '" + key + "'";
    H5Handle group = h5::group_handle(LATHE_H5_CHECK(H5Gopen2(file.get(), key.c_str(), H5P_DEFAULT), gw));
    const auto kind = h5::read_string_attribute(group.get(), "pandas_type", gw);
    if (!kind.empty() && kind[0] == "frame_table") return open_pandas_table(key, group.get());
    if (kind.empty() || kind[0] != "frame") {
      throw InputError(gw + ": is a pandas '" + (kind.empty() ? "" : kind[0]) +
                       "', not a DataFrame (pandas_type 'frame' or 'frame_table'); store a DataFrame");
    }
    if (H5Lexists(group.get(), "axis0", H5P_DEFAULT) <= 0 ||
        H5Lexists(group.get(), "block0_items", H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      throw InputError(gw + ": has no axis0/block0_items: a DataFrame with a MultiIndex or another "
                       "pandas structure; write a flat DataFrame with to_hdf(..., format=\"fixed\")");
    }
    H5Handle axis0 = h5::dataset_handle(LATHE_H5_CHECK(H5Dopen2(group.get(), "axis0", H5P_DEFAULT), gw + "/axis0"));
    const auto names = read_pandas_labels(axis0.get(), where(key + "/axis0"));
    std::map<std::string, std::int64_t> position;
    for (std::size_t i = 0; i < names.size(); ++i) position[names[i]] = static_cast<std::int64_t>(i);
    columns.resize(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) columns[i].name = names[i];

    std::vector<std::string> refused;
    std::vector<std::string> dates_and_times;  // "NAME (DTYPE)"
    std::vector<bool> seen(names.size(), false);
    bool have_rows = false;
    for (int b = 0;; ++b) {
      const std::string items_name = "block" + std::to_string(b) + "_items";
      const std::string values_name = "block" + std::to_string(b) + "_values";
      if (H5Lexists(group.get(), items_name.c_str(), H5P_DEFAULT) <= 0) break;
      H5Handle items_ds = h5::dataset_handle(
          LATHE_H5_CHECK(H5Dopen2(group.get(), items_name.c_str(), H5P_DEFAULT), where(key + "/" + items_name)));
      const auto items = read_pandas_labels(items_ds.get(), where(key + "/" + items_name));
      const std::string values_where = where("/" + key + "/" + values_name);
      // An object block (strings) is a PyTables VLARRAY of pickled objects: refuse it by name.
      H5Handle values_ds = h5::dataset_handle(
          LATHE_H5_CHECK(H5Dopen2(group.get(), values_name.c_str(), H5P_DEFAULT), values_where));
      H5Handle vtype = h5::datatype_handle(LATHE_H5_CHECK(H5Dget_type(values_ds.get()), values_where));
      const H5T_class_t cls = H5Tget_class(vtype.get());
      if (cls == H5T_VLEN || cls == H5T_STRING || cls == H5T_OPAQUE) {
        refused.insert(refused.end(), items.begin(), items.end());
        continue;
      }
      // Dates, times and periods are int64 blocks that only their `value_type` (and `tz`, for a
      // time zone) tells apart from numbers, as read_hdf does.
      const std::string value_type = text_attribute(values_ds.get(), "value_type", values_where, "");
      if (is_pandas_date_or_time(value_type) || h5::attribute_exists(values_ds.get(), "tz", values_where)) {
        for (const auto& item : items) dates_and_times.push_back(item + " (" + value_type + ")");
        continue;
      }
      const bool empty = is_pandas_empty_block(values_ds.get(), value_type, items.size(), values_where);
      values_ds.reset();
      Source s = open_source(group.get(), values_name, "/" + key + "/" + values_name);
      const DatasetStorage& st = storage.back();
      if (!empty && (s.rank != 2 || st.shape[1] != static_cast<std::int64_t>(items.size()))) {
        throw InputError(values_where + ": expected a 2-D block of " + std::to_string(items.size()) + " columns");
      }
      const std::int64_t block_rows = empty ? 0 : st.shape[0];
      if (!have_rows) {
        rows = block_rows;
        have_rows = true;
      } else if (block_rows != rows) {
        throw InputError(values_where + ": has " + std::to_string(block_rows) + " rows, other blocks have " +
                         std::to_string(rows));
      }
      for (const auto& item : items) {
        const auto it = position.find(item);
        if (it == position.end()) {
          throw InputError(where("/" + key + "/" + items_name) + ": column '" + item + "' is not in axis0");
        }
        s.target.push_back(it->second);
        seen[it->second] = true;
        // A placeholder is float64 whatever the block held; read_hdf gives the block's own dtype.
        columns[it->second].dtype = empty ? value_type : s.element.dtype;
        columns[it->second].dataset = "/" + key + "/" + values_name;
      }
      sources.push_back(std::move(s));
    }
    H5Eclear2(H5E_DEFAULT);
    if (!refused.empty()) {
      std::string list;
      for (const auto& r : refused) list += (list.empty() ? "'" : ", '") + r + "'";
      throw InputError(gw + ": columns " + list +
                       " hold strings (pandas object dtype), which the pandas fixed format stores as "
                       "pickled objects; write the frame with to_hdf(..., format=\"table\"), which Lathe "
                       "reads strings and all, or import the data from CSV with `lathe import`");
    }
    if (!dates_and_times.empty()) refuse_dates_and_times(gw, dates_and_times);
    for (std::size_t i = 0; i < seen.size(); ++i) {
      if (!seen[i]) throw InputError(gw + ": column '" + names[i] + "' has no block");
    }
  }

  // Whether a block of a pandas fixed frame (`items` columns) is empty, with no rows. PyTables
  // cannot write an empty array, so pandas writes a 1-element placeholder and keeps the block's
  // true shape in a pickled attribute `shape` (read_hdf makes an empty array of it): (columns,
  // rows) as pandas holds the block, since it transposes only a block with values. The placeholder
  // is float64 whatever the block held; `value_type` names the block's dtype.
  bool is_pandas_empty_block(hid_t values, const std::string& value_type, std::size_t items,
                             const std::string& context) {
    const auto shape = pickled_attribute(values, "shape", context);
    if (!shape) return false;
    const bool two_integers = shape->kind == PickleValue::Kind::tuple && shape->items.size() == 2 &&
                              shape->items[0].kind == PickleValue::Kind::integer &&
                              shape->items[1].kind == PickleValue::Kind::integer;
    if (!two_integers || shape->items[0].integer != static_cast<std::int64_t>(items) ||
        shape->items[1].integer != 0) {
      throw InputError(context + ": a placeholder block whose attribute 'shape' is not (" + std::to_string(items) +
                       ", 0), its " + std::to_string(items) + " columns by no rows");
    }
    // The dtypes Lathe reads (numbers and bools), named as numpy names them.
    const bool readable = value_type == "bool" || value_type.rfind("int", 0) == 0 ||
                          value_type.rfind("uint", 0) == 0 || value_type.rfind("float", 0) == 0;
    if (!readable) {
      throw InputError(context + ": an empty block of dtype '" + value_type +
                       "'; Lathe reads numeric and bool blocks");
    }
    return true;
  }

  // Checks that no two columns share a name (`context` names the table).
  void check_unique_names(const std::string& context) const {
    std::map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (!seen.emplace(columns[i].name, i).second) {
        throw InputError(context + ": two columns are named '" + columns[i].name + "'");
      }
    }
  }

  // Whether the column named `name`, if it holds strings, is read only as text.
  bool read_as_text(const std::string& name) const {
    return options.read_as_text && options.read_as_text(name);
  }

  // Marks `field` text only when every column it feeds is read as text (it matters only if the
  // field turns out to hold strings).
  void mark_text_only(RecordField& field) const {
    field.text_only = !field.columns.empty();
    for (const std::int64_t c : field.columns) {
      if (!read_as_text(columns[static_cast<std::size_t>(c)].name)) field.text_only = false;
    }
  }

  // Fills the columns a record source feeds from its reader: types, categories of string fields.
  void describe_record_columns(const Source& s, const std::vector<RecordField>& fields) {
    for (std::size_t f = 0; f < fields.size(); ++f) {
      for (std::size_t e = 0; e < fields[f].columns.size(); ++e) {
        ColumnInfo& c = columns[static_cast<std::size_t>(fields[f].columns[e])];
        c.dtype = s.record->dtype(f);
        if (s.record->holds_labels(f)) {
          c.type = ColumnType::categorical;
          c.categories = s.record->labels(f, e);
        } else if (s.record->holds_text(f)) {
          c.type = ColumnType::categorical;
          c.text_only = true;
        }
      }
    }
  }

  // `name`: a 1-D dataset of records, its path from the root. One column per field (per element of
  // an array field).
  void open_table(const std::string& name) {
    layout = Layout::table;
    const auto slash = name.rfind('/');
    const std::string parent = slash == std::string::npos ? "/" : "/" + name.substr(0, slash);
    const std::string leaf = slash == std::string::npos ? name : name.substr(slash + 1);
    const std::string w = where("/" + name);
    H5Handle group = h5::group_handle(LATHE_H5_CHECK(H5Gopen2(file.get(), parent.c_str(), H5P_DEFAULT), w));
    Source s = open_source(group.get(), leaf, "/" + name, true);
    if (s.rank != 1) {
      throw InputError(w + ": a dataset of records must be 1-D, found rank " + std::to_string(s.rank));
    }
    rows = storage.back().shape[0];
    H5Handle type = h5::datatype_handle(LATHE_H5_CHECK(H5Dget_type(s.dataset.get()), w));
    std::vector<RecordField> fields;
    for (const RecordMember& m : record_members(type.get(), w)) {
      RecordField f;
      f.member = m.name;
      for (std::int64_t e = 0; e < m.elements; ++e) {
        ColumnInfo c;
        c.name = m.is_array ? m.name + "_" + std::to_string(e) : m.name;
        c.dataset = "/" + name;
        f.columns.push_back(static_cast<std::int64_t>(columns.size()));
        s.target.push_back(static_cast<std::int64_t>(columns.size()));
        columns.push_back(c);
      }
      mark_text_only(f);
      if (!f.columns.empty()) fields.push_back(std::move(f));
    }
    if (columns.empty()) throw InputError(w + ": has no fields, so no table");
    check_unique_names(w);
    s.record = std::make_unique<RecordReader>(s.dataset.get(), fields, w);
    s.record->collect_labels(rows, label_block_rows(s), code_budget_for(s));
    plan_records(s, w);
    describe_record_columns(s, fields);
    sources.push_back(std::move(s));
  }

  // Whether `object` has an attribute `name` holding a string.
  bool string_attribute(hid_t object, const char* name, const std::string& context) {
    if (!h5::attribute_exists(object, name, context)) return false;
    H5Handle attr = h5::attribute_handle(LATHE_H5_CHECK(H5Aopen(object, name, H5P_DEFAULT), context));
    H5Handle type = h5::datatype_handle(LATHE_H5_CHECK(H5Aget_type(attr.get()), context));
    return H5Tget_class(type.get()) == H5T_STRING;
  }

  // A text-pickled attribute that PyTables wrote for pandas; nothing when it is absent.
  std::optional<PickleValue> pickled_attribute(hid_t object, const char* name, const std::string& context) {
    if (!h5::attribute_exists(object, name, context)) return std::nullopt;
    const auto text = h5::read_string_attribute(object, name, context);
    if (text.empty()) return std::nullopt;
    try {
      return parse_text_pickle(text[0]);
    } catch (const Error& e) {
      throw InputError(context + ": attribute '" + name + "' cannot be read: " + e.what());
    }
  }

  // A plain string attribute written by PyTables, or `otherwise` when absent or a pickled None.
  std::string text_attribute(hid_t object, const char* name, const std::string& context, std::string otherwise) {
    if (!h5::attribute_exists(object, name, context)) return otherwise;
    const auto text = h5::read_string_attribute(object, name, context);
    if (text.empty() || is_pickled_none(text[0])) return otherwise;
    return text[0];
  }

  // The categories pandas stored for a categorical block: meta/<field>/meta/table, field "values".
  std::vector<std::string> read_pandas_categories(hid_t group, const std::string& key, const std::string& field,
                                                  const std::string& column) {
    const std::string path = "meta/" + field + "/meta/table";
    const std::string w = where("/" + key + "/" + path);
    if (!h5::link_exists(group, ("meta/" + field).c_str()) || !h5::link_exists(group, path.c_str())) {
      return {};  // a categorical with no categories (every value missing)
    }
    H5Handle d = h5::dataset_handle(LATHE_H5_CHECK(H5Dopen2(group, path.c_str(), H5P_DEFAULT), w));
    H5Handle space = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(d.get()), w));
    const hssize_t n = LATHE_H5_CHECK(H5Sget_simple_extent_npoints(space.get()), w);
    H5Handle type = h5::datatype_handle(LATHE_H5_CHECK(H5Dget_type(d.get()), w));
    const int index = H5Tget_member_index(type.get(), "values");
    if (index < 0) {
      H5Eclear2(H5E_DEFAULT);
      throw InputError(w + ": has no field 'values'");
    }
    H5Handle member = h5::datatype_handle(LATHE_H5_CHECK(H5Tget_member_type(type.get(), static_cast<unsigned>(index)), w));
    std::vector<std::string> labels;
    const H5T_class_t cls = H5Tget_class(member.get());
    if (cls == H5T_STRING) {
      labels = h5::read_string_field(d.get(), "values", w);  // in order: the codes index them
    } else if (cls == H5T_INTEGER) {
      H5Handle memory = h5::datatype_handle(LATHE_H5_CHECK(H5Tcreate(H5T_COMPOUND, sizeof(long long)), w));
      LATHE_H5_CHECK(H5Tinsert(memory.get(), "values", 0, H5T_NATIVE_LLONG), w);
      std::vector<long long> values(static_cast<std::size_t>(std::max<hssize_t>(n, 1)));
      LATHE_H5_CHECK(H5Dread(d.get(), memory.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), w);
      for (hssize_t i = 0; i < n; ++i) labels.push_back(std::to_string(values[static_cast<std::size_t>(i)]));
    } else {
      throw InputError(w + ": the categories of column '" + column +
                       "' are neither strings nor integers; store them as strings");
    }
    return labels;
  }

  // DataFrame.to_hdf(..., format="table"): the records of `key`/table; pandas names the columns
  // of each field (a block of columns of one dtype, or one data column) in text pickles.
  // A column name from a pandas pickle: text, or an integer in decimal.
  static std::string column_name(const PickleValue& v, const std::string& context) {
    if (v.kind == PickleValue::Kind::text) return v.text;
    if (v.kind == PickleValue::Kind::integer) return std::to_string(v.integer);
    throw InputError(context + ": a column name that is neither text nor an integer (columns of several "
                     "levels?); give the frame one level of column names");
  }

  void open_pandas_table(const std::string& key, hid_t group) {
    layout = Layout::pandas_table;
    const std::string gw = file_context + ": pandas key '" + key + "'";
    if (!h5::link_exists(group, "table")) throw InputError(gw + ": is a pandas table without its 'table' dataset");
    const std::string table_path = "/" + key + "/table";
    const std::string tw = where(table_path);

    // The frame's column order: non_index_axes is [(1, [names])].
    std::vector<std::string> names;
    if (const auto axes = pickled_attribute(group, "non_index_axes", gw)) {
      for (const PickleValue& axis : axes->items) {
        if (axis.items.size() == 2 && axis.items[0].kind == PickleValue::Kind::integer && axis.items[0].integer == 1) {
          for (const PickleValue& n : axis.items[1].items) names.push_back(column_name(n, gw));
        }
      }
    }
    if (names.empty()) throw InputError(gw + ": a pandas table whose column names (non_index_axes) Lathe cannot read");
    // A MultiIndex frame keeps its index levels as data columns and names them in `levels` (an
    // integer for other frames); read_hdf makes them the index again, so they are not columns here.
    std::vector<std::string> levels;
    if (string_attribute(group, "levels", gw)) {
      if (const auto listed = pickled_attribute(group, "levels", gw)) {
        for (const PickleValue& v : listed->items) levels.push_back(column_name(v, gw));
      }
    }
    const auto is_level = [&](const std::string& name) {
      return std::find(levels.begin(), levels.end(), name) != levels.end();
    };
    std::erase_if(names, is_level);
    std::map<std::string, std::int64_t> position;
    columns.resize(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
      columns[i].name = names[i];
      columns[i].dataset = table_path;
      if (!position.emplace(names[i], static_cast<std::int64_t>(i)).second) {
        throw InputError(gw + ": two columns are named '" + names[i] + "'");
      }
    }
    std::vector<std::string> value_fields;
    if (const auto cols = pickled_attribute(group, "values_cols", gw)) {
      for (const PickleValue& v : cols->items) value_fields.push_back(column_name(v, gw));
    }
    const std::string table_nan_rep = text_attribute(group, "nan_rep", gw, "nan");

    Source s = open_source(group, "table", table_path, true);
    if (s.rank != 1) throw InputError(tw + ": a pandas table must be 1-D, found rank " + std::to_string(s.rank));
    rows = storage.back().shape[0];
    const hid_t t = s.dataset.get();
    std::vector<RecordField> fields;
    std::vector<std::string> not_numbers;
    std::vector<bool> seen(names.size(), false);
    std::vector<std::string> pandas_dtype(names.size());
    std::map<std::size_t, std::vector<std::string>> categories;  // field -> its categories
    for (const std::string& vf : value_fields) {
      const std::string kind_attr = vf + "_kind";
      const auto kinds = pickled_attribute(t, kind_attr.c_str(), tw);
      if (!kinds) throw InputError(tw + ": field '" + vf + "' has no column names (" + kind_attr + ")");
      const std::string dtype = text_attribute(t, (vf + "_dtype").c_str(), tw, "");
      const std::string meta = text_attribute(t, (vf + "_meta").c_str(), tw, "");
      RecordField f;
      f.member = vf;
      std::size_t index_levels = 0;
      for (const PickleValue& k : kinds->items) index_levels += is_level(column_name(k, gw)) ? 1 : 0;
      if (index_levels == kinds->items.size() && index_levels > 0) continue;  // a field of the index
      for (const PickleValue& k : kinds->items) {
        const std::string name = column_name(k, gw);
        const auto it = position.find(name);
        if (it == position.end()) throw InputError(tw + ": field '" + vf + "' holds column '" + name + "', which is not in the frame");
        f.columns.push_back(it->second);
        s.target.push_back(it->second);
        seen[static_cast<std::size_t>(it->second)] = true;
        pandas_dtype[static_cast<std::size_t>(it->second)] = dtype;
        if (is_pandas_date_or_time(dtype)) not_numbers.push_back(name + " (" + dtype + ")");
      }
      mark_text_only(f);
      if (meta == "category") {
        f.category_codes = true;
        categories[fields.size()] = read_pandas_categories(group, key, vf, kinds->items.empty() ? vf : column_name(kinds->items[0], gw));
      }
      // A string column's missing value: its own nan_rep ("" when it had none), else the table's.
      f.missing_labels = {text_attribute(t, (vf + "_nan_rep").c_str(), tw, table_nan_rep)};
      fields.push_back(std::move(f));
    }
    if (!not_numbers.empty()) refuse_dates_and_times(gw, not_numbers);
    for (std::size_t i = 0; i < seen.size(); ++i) {
      if (!seen[i]) throw InputError(gw + ": column '" + names[i] + "' is in no field of the table");
    }
    s.record = std::make_unique<RecordReader>(t, fields, tw);
    s.record->collect_labels(rows, label_block_rows(s), code_budget_for(s));
    plan_records(s, tw);
    describe_record_columns(s, fields);
    for (const auto& [field, labels] : categories) {
      for (const std::int64_t c : fields[field].columns) {
        ColumnInfo& col = columns[static_cast<std::size_t>(c)];
        col.type = ColumnType::categorical;
        col.categories = labels;
        code_columns.push_back(c);
      }
    }
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (pandas_dtype[i] == "bool") columns[i].dtype = "bool";
    }
    sources.push_back(std::move(s));
  }

  // Whether `group` holds a dataset named like the matrix that is not a 1-D column (any other rank
  // goes to open_matrix, which explains what is wrong with it).
  bool holds_matrix(hid_t group) {
    const char* name = options.matrix_dataset.c_str();
    H5O_info_t info{};
    if (options.matrix_dataset.empty() || H5Lexists(group, name, H5P_DEFAULT) <= 0 ||
        H5Oget_info_by_name(group, name, &info, H5P_DEFAULT) < 0 || info.type != H5O_TYPE_DATASET) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    const hid_t d = H5Dopen2(group, name, H5P_DEFAULT);
    if (d < 0) {
      H5Eclear2(H5E_DEFAULT);
      return true;  // open_matrix names the dataset that cannot be opened
    }
    H5Handle dataset = h5::dataset_handle(d);
    H5Handle space = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(d), file_context));
    return H5Sget_simple_extent_ndims(space.get()) != 1;
  }

  // The paths of groups marked as pandas frames under `group` (at `prefix`), three levels deep.
  void find_pandas_keys(hid_t group, const std::string& prefix, int depth, std::vector<std::string>& found) {
    if (depth > 3) return;
    for (const auto& n : h5::list_group(group, file_context)) {
      H5O_info_t info{};
      if (H5Oget_info_by_name(group, n.c_str(), &info, H5P_DEFAULT) < 0 || info.type != H5O_TYPE_GROUP) {
        H5Eclear2(H5E_DEFAULT);
        continue;
      }
      H5Handle g = h5::group_handle(LATHE_H5_CHECK(H5Gopen2(group, n.c_str(), H5P_DEFAULT), file_context));
      const std::string path = prefix.empty() ? n : prefix + "/" + n;
      if (h5::attribute_exists(g.get(), "pandas_type", file_context)) {
        found.push_back(path);
      } else {
        find_pandas_keys(g.get(), path, depth + 1, found);
      }
    }
  }

  // Whether the dataset at `name` (from the root) is 1-D and holds records (a compound type).
  bool is_record_dataset(const std::string& name) {
    const std::string w = where("/" + name);
    H5Handle d = h5::dataset_handle(LATHE_H5_CHECK(H5Dopen2(file.get(), name.c_str(), H5P_DEFAULT), w));
    H5Handle space = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(d.get()), w));
    H5Handle type = h5::datatype_handle(LATHE_H5_CHECK(H5Dget_type(d.get()), w));
    return H5Sget_simple_extent_ndims(space.get()) == 1 && H5Tget_class(type.get()) == H5T_COMPOUND;
  }

  // Finds the table: an explicit group or key, a pandas frame, a 2-D matrix, or 1-D columns.
  void detect() {
    const std::string root_context = file_context;
    std::string target = options.group;
    if (!target.empty() && target.front() == '/') target.erase(0, 1);
    if (!target.empty()) {
      if (H5Lexists(file.get(), target.c_str(), H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        throw InputError(file_context + ": has no group or dataset '" + options.group + "'");
      }
      H5O_info_t info{};
      LATHE_H5_CHECK(H5Oget_info_by_name(file.get(), target.c_str(), &info, H5P_DEFAULT), file_context);
      if (info.type == H5O_TYPE_DATASET) return is_record_dataset(target) ? open_table(target) : open_matrix(target);
      H5Handle g = h5::group_handle(LATHE_H5_CHECK(H5Gopen2(file.get(), target.c_str(), H5P_DEFAULT), file_context));
      if (h5::attribute_exists(g.get(), "pandas_type", file_context)) return open_pandas(target);
      // As at the root: a group marked as Lathe's columnar layout is that table, and a 1-D dataset
      // named like the matrix is a column; a group holding the matrix otherwise is a matrix layout.
      if (!h5::attribute_exists(g.get(), "lathe_columns", file_context) && holds_matrix(g.get())) {
        return open_matrix(target + "/" + options.matrix_dataset);
      }
      return open_columnar("/" + target);
    }
    H5Handle root = h5::group_handle(LATHE_H5_CHECK(H5Gopen2(file.get(), "/", H5P_DEFAULT), root_context));
    // A model (or checkpoint) given where data goes, as `lathe score DATA.h5 MODEL.h5` does: its
    // weight tables would read as a matrix layout without an `X`, and that message misleads.
    if (h5::attribute_exists(root.get(), "lathe_model_format_version", root_context)) {
      throw InputError(file_context + ": is a model file written by `lathe train`, not a table of data (the "
                                      "commands that take both name the model first: `lathe score MODEL.h5 DATA.h5`)");
    }
    const auto children = h5::list_group(root.get(), root_context);
    std::vector<std::string> pandas_keys, datasets_2d, datasets_1d, columns_1d, tables;
    for (const auto& n : children) {
      H5O_info_t info{};
      if (H5Oget_info_by_name(file.get(), n.c_str(), &info, H5P_DEFAULT) < 0) {
        H5Eclear2(H5E_DEFAULT);
        throw InputError(file_context + ": object '" + n + "' cannot be read (truncated or damaged file?)");
      }
      if (info.type == H5O_TYPE_GROUP) {
        H5Handle g = h5::group_handle(LATHE_H5_CHECK(H5Gopen2(file.get(), n.c_str(), H5P_DEFAULT), file_context));
        if (h5::attribute_exists(g.get(), "pandas_type", file_context)) pandas_keys.push_back(n);
      } else if (info.type == H5O_TYPE_DATASET) {
        H5Handle d = h5::dataset_handle(LATHE_H5_CHECK(H5Dopen2(file.get(), n.c_str(), H5P_DEFAULT), where("/" + n)));
        H5Handle sp = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(d.get()), where("/" + n)));
        const int rank = H5Sget_simple_extent_ndims(sp.get());
        H5Handle type = h5::datatype_handle(LATHE_H5_CHECK(H5Dget_type(d.get()), where("/" + n)));
        if (rank == 1 && H5Tget_class(type.get()) == H5T_COMPOUND) {
          tables.push_back(n);
          continue;
        }
        (rank == 2 ? datasets_2d : datasets_1d).push_back(n);
        if (rank == 1) columns_1d.push_back(n);
      }
    }
    if (pandas_keys.size() > 1) {
      std::string list;
      for (const auto& k : pandas_keys) list += ", '" + k + "'";
      throw InputError(file_context + ": holds several pandas frames (" + list.substr(2) +
                       "); choose one with --group KEY");
    }
    if (pandas_keys.size() == 1) return open_pandas(pandas_keys[0]);
    if (!tables.empty() && !h5::attribute_exists(root.get(), "lathe_columns", root_context)) {
      if (tables.size() == 1 && datasets_1d.empty() && datasets_2d.empty()) return open_table(tables[0]);
      std::string list;
      for (const auto& t : tables) list += ", '" + t + "'";
      throw InputError(file_context + ": holds " +
                       (tables.size() > 1 ? "several datasets of records (" + list.substr(2) + ")"
                                          : "a dataset of records (" + list.substr(2) + ") beside other datasets") +
                       "; choose the table with --group NAME");
    }
    // The root marked as Lathe's columnar layout (`lathe_columns`) is that table, whatever else the
    // file holds: a 2-D dataset beside it must not silently turn the columns into a matrix.
    if (h5::attribute_exists(root.get(), "lathe_columns", root_context)) return open_columnar("/");
    // A 1-D dataset named like the matrix is a column (`lathe import` of a CSV with a column "X"),
    // not a matrix; any other rank goes to open_matrix, which explains what is wrong with it.
    const bool matrix_name_is_a_column =
        std::find(columns_1d.begin(), columns_1d.end(), options.matrix_dataset) != columns_1d.end();
    if (!matrix_name_is_a_column &&
        H5Lexists(file.get(), options.matrix_dataset.c_str(), H5P_DEFAULT) > 0) {
      return open_matrix(options.matrix_dataset);
    }
    if (datasets_2d.size() == 1 && datasets_1d.size() <= 1) return open_matrix(datasets_2d[0]);
    H5Eclear2(H5E_DEFAULT);
    if (!datasets_1d.empty() && datasets_2d.empty()) return open_columnar("/");
    if (!datasets_2d.empty()) {
      throw InputError(file_context + ": has 2-D datasets but none named '" + options.matrix_dataset +
                       "'; name the matrix with --group");
    }
    // pandas frames further down (to_hdf(key="a/b")): name them, since --group reads them.
    std::vector<std::string> nested;
    find_pandas_keys(root.get(), "", 0, nested);
    if (!nested.empty()) {
      std::string list;
      for (const auto& k : nested) list += (list.empty() ? "'" : ", '") + k + "'";
      throw InputError(file_context + ": holds no table at its root, but pandas frames at " + list +
                       "; read one with --group " + nested.front());
    }
    throw InputError(file_context +
                     ": holds no table (expected a 2-D dataset 'X', a group of 1-D column datasets, "
                     "a 1-D dataset of records, or a pandas DataFrame written with to_hdf)");
  }

  // Reads `count` rows of a source into row-major floats at `out` (count x width).
  void read_rows(Source& s, std::int64_t first, std::int64_t count, float* out) {
    // A damaged chunk fails here: name the rows so the user can find it.
    const std::string w = where(s.path) + ", rows " + std::to_string(first + 1) + "-" +
                          std::to_string(first + count);
    H5Handle file_space = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(s.dataset.get()), w));
    const hsize_t start[2] = {static_cast<hsize_t>(first), 0};
    const hsize_t extent[2] = {static_cast<hsize_t>(count), static_cast<hsize_t>(s.width)};
    LATHE_H5_CHECK(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, extent, nullptr), w);
    H5Handle mem_space = h5::dataspace_handle(LATHE_H5_CHECK(H5Screate_simple(s.rank, extent, nullptr), w));
    const std::size_t n = static_cast<std::size_t>(count * s.width);
    switch (s.element.conversion) {
      case Conversion::hdf5_native:
        LATHE_H5_CHECK(H5Dread(s.dataset.get(), H5T_NATIVE_FLOAT, mem_space.get(), file_space.get(),
                               H5P_DEFAULT, out), w);
        break;
      case Conversion::bitfield8: {
        byte_scratch.resize(n);
        LATHE_H5_CHECK(H5Dread(s.dataset.get(), H5T_NATIVE_B8, mem_space.get(), file_space.get(),
                               H5P_DEFAULT, byte_scratch.data()), w);
        for (std::size_t i = 0; i < n; ++i) out[i] = byte_scratch[i] != 0 ? 1.0f : 0.0f;
        break;
      }
      case Conversion::enum_integer: {
        const std::size_t size = s.element.size;
        byte_scratch.resize(n * size);
        LATHE_H5_CHECK(H5Dread(s.dataset.get(), s.element.native_enum.get(), mem_space.get(),
                               file_space.get(), H5P_DEFAULT, byte_scratch.data()), w);
        const unsigned char* p = byte_scratch.data();
        for (std::size_t i = 0; i < n; ++i, p += size) out[i] = native_integer_as_float(p, size, s.element.is_signed);
        break;
      }
    }
  }

  // Reads rows [first, first + count) of a source through HDF5 into its columns of the
  // column-major block `out` (count rows per column).
  void read_hyperslab(Source& s, std::int64_t first, std::int64_t count, std::span<float> out) {
    if (s.width == 1) {
      // A 1-D column (or n x 1) lands directly in its slot of the column-major block.
      read_rows(s, first, count, out.data() + s.target[0] * count);
      return;
    }
    scratch.resize(static_cast<std::size_t>(count * s.width));
    read_rows(s, first, count, scratch.data());
    // Row-major (rows x width) to column-major, a tile of rows at a time to stay in cache.
    constexpr std::int64_t kTile = 256;
    for (std::int64_t r0 = 0; r0 < count; r0 += kTile) {
      const std::int64_t r1 = std::min(count, r0 + kTile);
      for (std::int64_t j = 0; j < s.width; ++j) {
        float* dst = out.data() + s.target[j] * count;
        const float* src = scratch.data() + j;
        for (std::int64_t r = r0; r < r1; ++r) dst[r] = src[r * s.width];
      }
    }
  }

  // Rows [first, first + count) of a source that takes no direct path: its record reader's read()
  // (from its heap ids where it has them), or the hyperslab read.
  void read_through_hdf5(Source& s, std::int64_t first, std::int64_t count, std::span<float> out) {
    if (s.record) {
      if (s.heap && s.record->read_stored(*s.heap, first, count, out.data())) return;
      s.record->read(first, count, out.data());
    } else {
      read_hyperslab(s, first, count, out);
    }
  }

  // read_block: every source, or (`wanted`, by column) only those that feed a wanted column.
  void read_sources(std::int64_t first_row, std::int64_t row_count, std::span<float> out,
                    const std::vector<bool>* wanted) {
    const std::int64_t ncols = static_cast<std::int64_t>(columns.size());
    if (first_row < 0 || row_count < 0 || first_row + row_count > rows) {
      throw Error(file_context + ": read of rows [" + std::to_string(first_row) + ", " +
                  std::to_string(first_row + row_count) + ") is outside the table's " +
                  std::to_string(rows) + " rows");
    }
    if (static_cast<std::int64_t>(out.size()) != row_count * ncols) {
      throw Error(file_context + ": read_block output has the wrong size");
    }
    if (row_count == 0) return;
    const auto read = [&](const Source& s) {
      if (!wanted) return true;
      for (const std::int64_t t : s.target) {
        if ((*wanted)[static_cast<std::size_t>(t)]) return true;
      }
      return false;
    };
    direct_requests.clear();
    direct_sources.clear();
    if (direct_columns.size() < sources.size()) direct_columns.resize(sources.size());
    for (std::size_t i = 0; i < sources.size(); ++i) {
      Source& s = sources[i];
      if (!read(s)) continue;
      if (s.direct.path == ReadPath::hdf5_hyperslab) {
        read_through_hdf5(s, first_row, row_count, out);
        continue;
      }
      std::vector<float*>& targets = direct_columns[direct_sources.size()];
      targets.clear();
      if (s.record) {
        // By table column; the columns not wanted are left alone.
        for (std::int64_t c = 0; c < ncols; ++c) {
          const bool skip = wanted && !(*wanted)[static_cast<std::size_t>(c)];
          targets.push_back(skip ? nullptr : out.data() + c * row_count);
        }
      } else {
        for (const std::int64_t t : s.target) targets.push_back(out.data() + t * row_count);
      }
      direct_requests.push_back({.dataset = s.dataset.get(),
                                 .layout = &s.direct,
                                 .decoder = s.record ? nullptr : &*s.decoder,
                                 .records = s.record.get(),
                                 .columns = targets});
      direct_sources.push_back(i);
    }
    if (!direct_requests.empty()) {
      direct->read(direct_requests, first_row, row_count);
      // A block the direct path could not read exactly (an unwritten chunk without a known fill
      // value, a damaged chunk, a short file, a label not seen at open): HDF5 reads it, or reports
      // what is wrong with it.
      for (std::size_t q = 0; q < direct_requests.size(); ++q) {
        if (!direct_requests[q].done) read_through_hdf5(sources[direct_sources[q]], first_row, row_count, out);
      }
    }
    for (std::size_t i = 0; i < code_columns.size(); ++i) {
      const std::int64_t c = code_columns[i];
      if (wanted && !(*wanted)[static_cast<std::size_t>(c)]) continue;
      float* dst = out.data() + c * row_count;
      // Past 2^24 labels float32 rounds codes, some up to the count: only negative codes are
      // checked here (such a column is no feature; its exact reads check every code).
      const std::vector<std::int32_t>& merged = merged_codes[i];
      const std::int64_t labels =
          merged.empty() ? code_labels[i] : static_cast<std::int64_t>(merged.size());
      const float above = labels <= (std::int64_t{1} << 24) ? static_cast<float>(labels) : HUGE_VALF;
      for (std::int64_t r = 0; r < row_count; ++r) {
        if (dst[r] >= 0 && dst[r] < above) {
          const auto code = static_cast<std::size_t>(dst[r]);
          if (code < merged.size()) dst[r] = static_cast<float>(merged[code]);
          continue;
        }
        if (dst[r] != -1.0f) throw code_outside_labels(c, first_row + r, dst[r]);
        dst[r] = std::numeric_limits<float>::quiet_NaN();
      }
      for (const float empty : empty_label_codes[i]) {
        std::replace(dst, dst + row_count, empty, std::numeric_limits<float>::quiet_NaN());
      }
    }
    // Codes (valid by now, or missing) to the bools their labels write.
    for (const auto& [c, values] : bool_values) {
      if (wanted && !(*wanted)[static_cast<std::size_t>(c)]) continue;
      float* dst = out.data() + c * row_count;
      for (std::int64_t r = 0; r < row_count; ++r) {
        if (!std::isnan(dst[r])) dst[r] = values[static_cast<std::size_t>(dst[r])];
      }
    }
  }

  // TableReadOptions::bools_as_labels and labels_as_bools, once the columns are known.
  void retype_bool_columns() {
    retyped.assign(columns.size(), false);
    for (std::size_t c = 0; c < columns.size(); ++c) {
      ColumnInfo& info = columns[c];
      if (info.dtype == "bool" && info.type == ColumnType::numeric) {
        const auto labels = options.bools_as_labels.find(info.name);
        if (labels == options.bools_as_labels.end()) continue;
        info.type = ColumnType::categorical;
        info.categories.assign(labels->second.begin(), labels->second.end());
        retyped[c] = true;
      } else if (info.type == ColumnType::categorical && !info.text_only &&
                 !info.categories.empty() && options.labels_as_bools.count(info.name)) {
        std::vector<float> values;
        for (const std::string& label : info.categories) {
          const std::optional<bool> value = bool_text_value(label);
          // "" (a code column's label that reads as missing) is never a code read_sources remaps.
          if (!value && !label.empty()) break;
          values.push_back(value.value_or(false) ? 1.0f : 0.0f);
        }
        if (values.size() != info.categories.size()) continue;
        info.type = ColumnType::numeric;
        info.categories.clear();
        bool_values.emplace_back(static_cast<std::int64_t>(c), std::move(values));
        retyped[c] = true;
      }
    }
  }

  // Rows [first, first + count) of column c as read_block gives them.
  std::vector<float> read_one_column(std::int64_t c, std::int64_t first, std::int64_t count) {
    std::vector<float> block(static_cast<std::size_t>(count) * columns.size());
    std::vector<bool> wanted(columns.size(), false);
    wanted[static_cast<std::size_t>(c)] = true;
    read_sources(first, count, block, &wanted);
    const float* column = block.data() + c * count;
    return std::vector<float>(column, column + count);
  }

  // A stored category code that names no label: -1 is missing, 0 to labels - 1 a label, and any
  // other value a damaged or mislabeled column (pandas writes only these codes).
  InputError code_outside_labels(std::int64_t column, std::int64_t row, double code) const {
    const ColumnInfo& info = columns[static_cast<std::size_t>(column)];
    const auto at = std::find(code_columns.begin(), code_columns.end(), column);
    const auto i = static_cast<std::size_t>(at - code_columns.begin());
    const std::vector<std::int32_t>* merged = at == code_columns.end() ? nullptr : &merged_codes[i];
    const std::size_t labels = merged && !merged->empty() ? merged->size()
                               : at != code_columns.end() ? static_cast<std::size_t>(code_labels[i])
                                                          : info.categories.size();
    return InputError(where(info.dataset) + ", column '" + info.name + "', row " + std::to_string(row + 1) +
                      ": category code " + std::to_string(static_cast<std::int64_t>(code)) + " names none of the column's " +
                      std::to_string(labels) + " labels (" +
                      (labels > 0 ? "codes 0 to " + std::to_string(labels - 1) + ", and " : "") + "-1 for missing)");
  }
};

namespace {

// Where `labels` name a label twice: each stored code's merged code (that of the label's first
// place) into `merged`, and the labels left each once; nothing changes where they are distinct. A
// column of ids has millions of labels: their hashes (on every core) show in one sort that they are
// distinct, and only a column with two equal hashes is mapped label by label.
void merge_repeated_labels(std::vector<std::string>& labels, std::vector<std::int32_t>& merged) {
  // Sorted labels (`lathe import` writes them so, and pandas its categories) are distinct when each
  // is greater than the one before: one pass, where hashing and sorting 4M labels took 0.3 s.
  if (std::adjacent_find(labels.begin(), labels.end(), std::greater_equal<>()) == labels.end()) return;
  const auto count = static_cast<std::int64_t>(labels.size());
  std::vector<std::uint64_t> hashes(labels.size());
#pragma omp parallel for schedule(static) if (count >= (std::int64_t{1} << 16))
  for (std::int64_t k = 0; k < count; ++k) {
    hashes[static_cast<std::size_t>(k)] = std::hash<std::string_view>{}(labels[static_cast<std::size_t>(k)]);
  }
  std::sort(hashes.begin(), hashes.end());
  if (std::adjacent_find(hashes.begin(), hashes.end()) == hashes.end()) return;
  std::vector<std::uint64_t>().swap(hashes);
  std::unordered_map<std::string_view, std::int32_t> first_code;
  first_code.reserve(labels.size());
  std::vector<std::int32_t> code_of(labels.size());
  std::vector<std::string> distinct;
  for (std::size_t k = 0; k < labels.size(); ++k) {
    const auto [it, fresh] = first_code.emplace(labels[k], static_cast<std::int32_t>(distinct.size()));
    if (fresh) distinct.push_back(labels[k]);
    code_of[k] = it->second;
  }
  if (distinct.size() == labels.size()) return;  // hashes equal, labels not
  labels.swap(distinct);
  merged.swap(code_of);
}

}  // namespace

TableReader::TableReader(const std::filesystem::path& path, TableReadOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->file_context = path.string();
  if (options.block_rows <= 0) throw InputError("block rows must be positive");
  // No block is longer than this, whatever --block-rows asks: rounding it up to whole chunks must
  // not overflow (--block-rows 9223372036854775807), and a larger block than any table has rows
  // reads as this one does.
  options.block_rows = std::min(options.block_rows, kMaxBlockRows);
  impl_->options = options;
  impl_->code_budget = std::max<std::int64_t>(0, options.category_code_bytes);
  impl_->open_file();
  if (options.direct_read) impl_->direct.emplace(path, impl_->file.get(), options.decode_threads);
  impl_->detect();
  for (const std::int64_t c : impl_->code_columns) {
    merge_repeated_labels(impl_->columns[static_cast<std::size_t>(c)].categories, impl_->merged_codes.emplace_back());
  }
  for (const std::int64_t c : impl_->code_columns) {
    std::vector<float>& empty = impl_->empty_label_codes.emplace_back();
    const std::vector<std::string>& labels = impl_->columns[static_cast<std::size_t>(c)].categories;
    for (std::size_t k = 0; k < labels.size() && k <= (std::size_t{1} << 24); ++k) {
      if (labels[k].empty()) empty.push_back(static_cast<float>(k));
    }
    impl_->code_labels.push_back(static_cast<std::int64_t>(labels.size()));
  }
  impl_->retype_bool_columns();
  if (impl_->rows == 0 && !options.allow_empty) throw InputError(impl_->file_context + ": the table has zero rows");
  // Names and labels travel on as UTF-8 (JSON, model files, HTML): text in another encoding is
  // refused here, where the file and dataset can be named.
  for (const ColumnInfo& c : impl_->columns) {
    if (const auto bad = first_bad_text_byte(c.name)) {
      throw InputError(impl_->where(c.dataset) + ": the column name is not UTF-8 text (" +
                       describe_bad_text_byte(c.name, *bad) + ")");
    }
    // The first label that is not, on every core (a column of ids holds millions).
    const auto labels = static_cast<std::int64_t>(c.categories.size());
    std::int64_t first_bad = labels;
#pragma omp parallel for schedule(static) reduction(min : first_bad) if (labels >= (std::int64_t{1} << 16))
    for (std::int64_t k = 0; k < labels; ++k) {
      if (first_bad_text_byte(c.categories[static_cast<std::size_t>(k)])) first_bad = std::min(first_bad, k);
    }
    if (first_bad < labels) {
      const std::string& label = c.categories[static_cast<std::size_t>(first_bad)];
      throw InputError(impl_->where(c.dataset) + ", column '" + c.name + "': category label " +
                       std::to_string(first_bad) + " ('" + escape_bad_text_bytes(label) + "') is not UTF-8 text (" +
                       describe_bad_text_byte(label, *first_bad_text_byte(label)) + "); store the labels as UTF-8");
    }
  }
  std::int64_t chunk = 0;
  for (const auto& st : impl_->storage) {
    if (!st.chunk.empty()) chunk = std::max(chunk, st.chunk[0]);
  }
  const std::int64_t target = options.block_rows;
  impl_->block_rows = chunk <= 0 ? target : std::max<std::int64_t>(1, (target + chunk - 1) / chunk) * chunk;
}

TableReader::~TableReader() = default;
TableReader::TableReader(TableReader&&) noexcept = default;
TableReader& TableReader::operator=(TableReader&&) noexcept = default;

const std::filesystem::path& TableReader::path() const { return impl_->path; }
Layout TableReader::layout() const { return impl_->layout; }
std::int64_t TableReader::rows() const { return impl_->rows; }
const std::vector<ColumnInfo>& TableReader::columns() const { return impl_->columns; }
void TableReader::swap_categories(std::size_t column, std::vector<std::string>& labels) {
  impl_->columns.at(column).categories.swap(labels);
}
const std::vector<DatasetStorage>& TableReader::storage() const { return impl_->storage; }
std::int64_t TableReader::block_rows() const { return impl_->block_rows; }

void TableReader::read_block(std::int64_t first_row, std::int64_t row_count, std::span<float> out) {
  impl_->read_sources(first_row, row_count, out, nullptr);
}

void TableReader::read_block_columns(std::int64_t first_row, std::int64_t row_count,
                                     std::span<const std::int64_t> columns, std::span<float> out) {
  Impl& m = *impl_;
  std::vector<bool> wanted(m.columns.size(), false);
  for (const std::int64_t c : columns) {
    if (c < 0 || c >= static_cast<std::int64_t>(m.columns.size())) {
      throw Error(m.file_context + ": read_block_columns: no column " + std::to_string(c));
    }
    wanted[static_cast<std::size_t>(c)] = true;
  }
  m.read_sources(first_row, row_count, out, &wanted);
}

std::optional<ExactType> TableReader::exact_type(std::int64_t column) const {
  const ColumnInfo& c = impl_->columns.at(static_cast<std::size_t>(column));
  if (impl_->retyped[static_cast<std::size_t>(column)])
    return std::nullopt;  // read_block's 0 and 1
  const bool integer = c.dtype.rfind("int", 0) == 0 || c.dtype.rfind("uint", 0) == 0;
  if (c.type == ColumnType::categorical) return integer ? std::optional(ExactType::int32) : std::nullopt;
  if (c.dtype == "float64") return ExactType::float64;
  if (c.dtype == "uint64") return ExactType::uint64;
  if (integer) return ExactType::int64;
  return std::nullopt;
}

void TableReader::read_column_as(std::int64_t column, std::int64_t first_row, std::int64_t row_count, ExactType type,
                                 void* out) {
  if (column >= 0 && static_cast<std::size_t>(column) < impl_->retyped.size() &&
      impl_->retyped[static_cast<std::size_t>(column)]) {
    // Bools read as labels or labels as bools: the values read_block gives (codes or numbers), in
    // `type`; a missing one as a missing code (-1) or NaN.
    if (first_row < 0 || row_count < 0 || first_row + row_count > impl_->rows) {
      throw Error(impl_->file_context + ": read of rows outside the table");
    }
    const std::vector<float> values = impl_->read_one_column(column, first_row, row_count);
    for (std::int64_t r = 0; r < row_count; ++r) {
      const float v = values[static_cast<std::size_t>(r)];
      switch (type) {
        case ExactType::float64:
          static_cast<double*>(out)[r] = v;
          break;
        case ExactType::int64:
          static_cast<std::int64_t*>(out)[r] = std::isnan(v) ? -1 : static_cast<std::int64_t>(v);
          break;
        case ExactType::uint64:
          static_cast<std::uint64_t*>(out)[r] = std::isnan(v) ? 0 : static_cast<std::uint64_t>(v);
          break;
        case ExactType::int32:
          static_cast<std::int32_t*>(out)[r] = std::isnan(v) ? -1 : static_cast<std::int32_t>(v);
          break;
      }
    }
    return;
  }
  read_stored_column_as(column, first_row, row_count, type, out);
  // Codes of a label the column names twice read as one code, as in read_block.
  const Impl& m = *impl_;
  const auto at = std::find(m.code_columns.begin(), m.code_columns.end(), column);
  if (type != ExactType::int32 || at == m.code_columns.end()) return;
  const std::vector<std::int32_t>& merged = m.merged_codes[static_cast<std::size_t>(at - m.code_columns.begin())];
  if (merged.empty()) return;
  auto* codes = static_cast<std::int32_t*>(out);
  for (std::int64_t r = 0; r < row_count; ++r) {
    if (codes[r] >= 0 && static_cast<std::size_t>(codes[r]) < merged.size()) codes[r] = merged[static_cast<std::size_t>(codes[r])];
  }
}

void TableReader::read_stored_column_as(std::int64_t column, std::int64_t first_row, std::int64_t row_count,
                                        ExactType type, void* out) {
  Impl& m = *impl_;
  const hid_t memory_type = type == ExactType::float64 ? H5T_NATIVE_DOUBLE
                            : type == ExactType::int64 ? H5T_NATIVE_INT64
                            : type == ExactType::uint64 ? H5T_NATIVE_UINT64
                                                        : H5T_NATIVE_INT32;
  if (first_row < 0 || row_count < 0 || first_row + row_count > m.rows) {
    throw Error(m.file_context + ": read of rows outside the table");
  }
  for (Source& s : m.sources) {
    for (std::size_t j = 0; j < s.target.size(); ++j) {
      if (s.target[j] != column) continue;
      if (s.record) return s.record->read_as(column, first_row, row_count, memory_type, out);
      if (row_count == 0) return;
      // A 1-D column, or column j of a 2-D dataset (the matrix, a pandas block).
      const std::string w = m.where(s.path) + ", rows " + std::to_string(first_row + 1) + "-" +
                            std::to_string(first_row + row_count);
      const hsize_t start[2] = {static_cast<hsize_t>(first_row), static_cast<hsize_t>(j)};
      const hsize_t extent[2] = {static_cast<hsize_t>(row_count), 1};
      H5Handle file_space = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(s.dataset.get()), w));
      LATHE_H5_CHECK(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, extent, nullptr), w);
      H5Handle memory_space = h5::dataspace_handle(LATHE_H5_CHECK(H5Screate_simple(1, extent, nullptr), w));
      LATHE_H5_CHECK(H5Dread(s.dataset.get(), memory_type, memory_space.get(), file_space.get(), H5P_DEFAULT, out), w);
      return;
    }
  }
  throw Error(m.file_context + ": no dataset holds column " + std::to_string(column));
}

void TableReader::read_text(std::int64_t column, std::int64_t first_row, std::int64_t row_count,
                            std::vector<std::string>& out) {
  Impl& m = *impl_;
  if (column < 0 || column >= static_cast<std::int64_t>(m.columns.size())) {
    throw Error(m.file_context + ": read_text: no column " + std::to_string(column));
  }
  if (first_row < 0 || row_count < 0 || first_row + row_count > m.rows) {
    throw Error(m.file_context + ": read of rows outside the table");
  }
  const ColumnInfo& info = m.columns[static_cast<std::size_t>(column)];
  if (info.type != ColumnType::categorical) {
    throw Error(m.file_context + ": column '" + info.name + "' is numeric, not text");
  }
  if (info.dtype == "string") {
    const auto source = std::find_if(m.sources.begin(), m.sources.end(), [&](const Source& s) {
      return s.record && std::find(s.target.begin(), s.target.end(), column) != s.target.end();
    });
    if (source == m.sources.end()) throw Error(m.file_context + ": no dataset holds column '" + info.name + "'");
    if (!source->heap || !source->record->read_stored_text(*source->heap, first_row, row_count, out)) {
      source->record->read_text(column, first_row, row_count, out);
    }
    // Labels collected at open were checked then; text read here is checked here.
    if (info.text_only) {
      for (std::size_t r = 0; r < out.size(); ++r) {
        if (const auto bad = first_bad_text_byte(out[r])) {
          throw InputError(m.where(info.dataset) + ", column '" + info.name + "', row " +
                           std::to_string(first_row + static_cast<std::int64_t>(r) + 1) +
                           ": the text is not UTF-8 (" + describe_bad_text_byte(out[r], *bad) +
                           "); store it as UTF-8");
        }
      }
    }
    return;
  }
  // Integer codes: read exactly (a float32 block rounds codes past 2^24), then their labels.
  std::vector<std::int32_t> codes(static_cast<std::size_t>(row_count));
  read_column_as(column, first_row, row_count, ExactType::int32, codes.data());
  out.assign(static_cast<std::size_t>(row_count), std::string());
  for (std::size_t r = 0; r < codes.size(); ++r) {
    const std::int32_t code = codes[r];
    if (code == -1) continue;
    if (code < 0 || static_cast<std::size_t>(code) >= info.categories.size()) {
      throw m.code_outside_labels(column, first_row + static_cast<std::int64_t>(r), code);
    }
    out[r] = info.categories[static_cast<std::size_t>(code)];
  }
}

}  // namespace lathe
