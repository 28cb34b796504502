#include "io/record_reader.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <limits>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "io/element_decoder.h"
#include "io/hdf5_handle.h"
#include "io/heap_string_reader.h"
#include "io/native_integer.h"
#include "runtime/error.h"
#include "runtime/label_codes.h"

namespace lathe {

namespace {

using h5::H5Handle;

// The labels of a string field element and their codes (runtime/label_codes.h), in int32 codes.
class LabelIndex : public LabelCodes {
 public:
  // The code of `label`, or -1 when it is not one of the labels. Thread-safe (it only reads).
  std::int32_t find(std::string_view label) const { return find(label, hash(label)); }
  // find() of a label whose hash() is `h`.
  std::int32_t find(std::string_view label, std::uint64_t h) const {
    return static_cast<std::int32_t>(LabelCodes::find(label, h));
  }
  // The code of `label` (hash h), added as the next code when it is not one of the labels yet.
  // InputError (naming `where` and `field`) past the codes an int32 holds.
  std::int32_t find_or_add(std::string_view label, std::uint64_t h, const std::string& where,
                           const std::string& field) {
    if (size() >= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
      const std::int32_t code = find(label, h);
      if (code >= 0) return code;
      throw InputError(where + ": field '" + field + "' has more labels than int32 codes");
    }
    bool added = false;
    return static_cast<std::int32_t>(add(label, h, added));
  }
};

// The category codes of every row of a string field element, kept by collect_labels so that read()
// gives them without HDF5 converting (and allocating) each row's string again and without looking it
// up: a table of strings is read once at open and then in every pass (profile, preparation). Each
// row holds its code + 1 (0: missing) in the fewest bytes its codes need so far (1, 2 or 4), widened
// as the labels grow; every byte counts against a budget the caller gives, past which the codes are
// dropped and read() reads the strings.
class CodeColumn {
 public:
  // Room for `rows` codes of one byte, charged to `budget`; false (nothing kept) when it does not
  // fit.
  bool start(std::int64_t rows, std::int64_t& budget) {
    if (rows > budget) return false;
    budget -= rows;
    charged_ = rows;
    width_ = 1;
    bytes_.reserve(static_cast<std::size_t>(rows));
    return true;
  }
  // Appends a block of codes + 1 whose largest is `largest`; false when widening them would pass
  // the budget (the codes are then dropped and their bytes given back).
  bool append(const std::uint32_t* codes, std::size_t n, std::uint32_t largest, std::int64_t rows,
              std::int64_t& budget) {
    const int needed = largest <= 0xffu ? 1 : largest <= 0xffffu ? 2 : 4;
    if (needed > width_ && !widen(needed, rows, budget)) return false;
    const std::size_t at = bytes_.size();
    bytes_.resize(at + n * static_cast<std::size_t>(width_));
    unsigned char* out = bytes_.data() + at;
    switch (width_) {
      case 1:
        for (std::size_t r = 0; r < n; ++r) out[r] = static_cast<std::uint8_t>(codes[r]);
        break;
      case 2:
        for (std::size_t r = 0; r < n; ++r) {
          const auto v = static_cast<std::uint16_t>(codes[r]);
          std::memcpy(out + 2 * r, &v, 2);
        }
        break;
      default:
        std::memcpy(out, codes, 4 * n);
    }
    return true;
  }
  void drop(std::int64_t& budget) {
    budget += charged_;
    charged_ = 0;
    bytes_ = {};
  }
  std::int64_t rows() const { return static_cast<std::int64_t>(bytes_.size()) / width_; }
  // Rows [first, first + count) as floats: the code, NaN where missing.
  void decode(std::int64_t first, std::int64_t count, float* out) const {
    const float missing = std::numeric_limits<float>::quiet_NaN();
    const unsigned char* p = bytes_.data() + static_cast<std::size_t>(first) * static_cast<std::size_t>(width_);
    const auto put = [&](auto read) {
      for (std::int64_t r = 0; r < count; ++r) {
        const std::uint32_t v = read(r);
        out[r] = v == 0 ? missing : static_cast<float>(v - 1);
      }
    };
    switch (width_) {
      case 1:
        put([p](std::int64_t r) { return std::uint32_t{p[r]}; });
        break;
      case 2:
        put([p](std::int64_t r) {
          std::uint16_t v;
          std::memcpy(&v, p + 2 * r, 2);
          return std::uint32_t{v};
        });
        break;
      default:
        put([p](std::int64_t r) {
          std::uint32_t v;
          std::memcpy(&v, p + 4 * r, 4);
          return v;
        });
    }
  }

 private:
  bool widen(int width, std::int64_t rows, std::int64_t& budget) {
    const std::int64_t more = rows * (width - width_);
    if (more > budget) {
      drop(budget);
      return false;
    }
    budget -= more;
    charged_ += more;
    const auto kept = static_cast<std::size_t>(this->rows());
    const auto from = static_cast<std::size_t>(width_), to = static_cast<std::size_t>(width);
    std::vector<unsigned char> wider;
    wider.reserve(static_cast<std::size_t>(rows) * to);
    wider.resize(kept * to);
    for (std::size_t r = 0; r < kept; ++r) {
      std::uint32_t v = 0;
      std::memcpy(&v, bytes_.data() + r * from, from);  // little-endian, as every code is written
      std::memcpy(wider.data() + r * to, &v, to);
    }
    bytes_ = std::move(wider);
    width_ = width;
    return true;
  }

  std::vector<unsigned char> bytes_;
  int width_ = 1;
  std::int64_t charged_ = 0;
};

// Memory for the variable-length strings of one H5Dread (H5Pset_vlen_mem_manager): carved from
// blocks kept from read to read and let go all at once, in place of a malloc and a free per string
// (H5Dvlen_reclaim walking the buffer), which on columns of short ids cost as much as the reads.
class VariableLengthArena {
 public:
  static void* allocate(std::size_t size, void* info) noexcept {
    try {
      return static_cast<VariableLengthArena*>(info)->take(size);
    } catch (...) {
      return nullptr;  // HDF5 reports the failed allocation
    }
  }
  static void release(void*, void*) noexcept {}
  // Every string handed out so far is let go.
  void reset() {
    block_ = 0;
    used_ = 0;
    large_.clear();
  }

 private:
  static constexpr std::size_t kBlockBytes = std::size_t{1} << 20;
  void* take(std::size_t size) {
    size = (std::max<std::size_t>(size, 1) + 15) & ~std::size_t{15};
    if (size > kBlockBytes / 4) {
      large_.push_back(std::make_unique<unsigned char[]>(size));
      return large_.back().get();
    }
    if (blocks_.empty() || used_ + size > kBlockBytes) {
      if (!blocks_.empty()) ++block_;
      used_ = 0;
      if (block_ == blocks_.size()) blocks_.push_back(std::make_unique<unsigned char[]>(kBlockBytes));
    }
    void* p = blocks_[block_].get() + used_;
    used_ += size;
    return p;
  }

  std::vector<std::unique_ptr<unsigned char[]>> blocks_;
  std::vector<std::unique_ptr<unsigned char[]>> large_;
  std::size_t block_ = 0;  // the block being carved
  std::size_t used_ = 0;   // bytes of it handed out
};

// How one element of a field becomes a float.
enum class Decode {
  number,        // HDF5 converts it to native float
  bits,          // an 8-bit bitfield (PyTables bool): nonzero is 1
  enum_integer,  // an enum over an integer (h5py bool): its integer value
  fixed_text,    // a fixed-length string
  variable_text  // a variable-length string (a char* in memory)
};

// Bytes of stored records decode_stored decodes field by field before moving on: small enough to
// stay in the core's cache across the fields, so each record is read from memory once.
constexpr std::size_t kDecodeTileBytes = std::size_t{1} << 15;

const char* class_name(H5T_class_t cls) {
  switch (cls) {
    case H5T_INTEGER:
      return "integer";
    case H5T_FLOAT:
      return "float";
    case H5T_STRING:
      return "string";
    case H5T_BITFIELD:
      return "bitfield";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_COMPOUND:
      return "compound (nested records, or complex numbers)";
    case H5T_REFERENCE:
      return "reference";
    case H5T_ENUM:
      return "enum";
    case H5T_VLEN:
      return "variable-length sequence";
    case H5T_ARRAY:
      return "array";
    default:
      return "unknown";
  }
}

// Whether the file stores `type` (as H5Dget_type describes it) in another layout: a variable-length
// string or sequence is a char* or hvl_t in the description but a heap id in the file, and a
// reference may differ too, which also moves every member after it, so stored records cannot be
// decoded from the description's offsets.
bool stored_unlike_described(hid_t type, const std::string& where) {
  switch (H5Tget_class(type)) {
    case H5T_VLEN:
    case H5T_REFERENCE:
      return true;
    case H5T_STRING:
      return LATHE_H5_CHECK(H5Tis_variable_str(type), where) > 0;
    case H5T_ARRAY: {
      H5Handle base = h5::datatype_handle(LATHE_H5_CHECK(H5Tget_super(type), where));
      return stored_unlike_described(base.get(), where);
    }
    case H5T_COMPOUND: {
      const int n = LATHE_H5_CHECK(H5Tget_nmembers(type), where);
      for (int i = 0; i < n; ++i) {
        H5Handle member = h5::datatype_handle(
            LATHE_H5_CHECK(H5Tget_member_type(type, static_cast<unsigned>(i)), where));
        if (stored_unlike_described(member.get(), where)) return true;
      }
      return false;
    }
    default:
      return false;
  }
}

}  // namespace

std::vector<RecordMember> record_members(hid_t type, const std::string& where) {
  std::vector<RecordMember> members;
  const int n = LATHE_H5_CHECK(H5Tget_nmembers(type), where);
  for (int i = 0; i < n; ++i) {
    char* name = H5Tget_member_name(type, static_cast<unsigned>(i));
    if (!name) throw Error(where + ": cannot read the name of member " + std::to_string(i));
    RecordMember m;
    m.name = name;
    H5free_memory(name);
    H5Handle mtype = h5::datatype_handle(
        LATHE_H5_CHECK(H5Tget_member_type(type, static_cast<unsigned>(i)), where));
    if (H5Tget_class(mtype.get()) == H5T_ARRAY) {
      m.is_array = true;
      const int rank = LATHE_H5_CHECK(H5Tget_array_ndims(mtype.get()), where);
      hsize_t dims[H5S_MAX_RANK] = {};
      LATHE_H5_CHECK(H5Tget_array_dims2(mtype.get(), dims), where);
      for (int d = 0; d < rank; ++d) m.elements *= static_cast<std::int64_t>(dims[d]);
    }
    members.push_back(std::move(m));
  }
  return members;
}

struct RecordReader::Impl {
  struct Field {
    RecordField spec;
    Decode decode = Decode::number;
    std::string dtype;
    std::size_t element_size = 0;  // bytes of one element in memory
    bool is_signed = true;         // enum base
    bool space_padded = false;     // fixed_text: trailing spaces are padding
    std::vector<hsize_t>
        array_dims;  // an array member's shape (its elements in row-major order); empty otherwise
    H5Handle memory_type;           // the member's memory type (an array of elements if need be)
    std::size_t stored_offset = 0;        // bytes from a stored record's start to the member
    std::size_t stored_element_size = 0;  // bytes of one element as stored
    // Numbers, bools and enums: converts stored elements to what read() gives; none where no exact
    // decoder exists.
    std::optional<ElementDecoder> decoder;
    std::vector<LabelIndex> labels;  // string fields that are not text_only: labels and codes, per element
    // Every row's code, per element, where collect_labels kept them all (see CodeColumn); empty
    // otherwise.
    std::vector<CodeColumn> codes;
  };
  // A memory type of some of the fields, and where each lands in a record.
  struct Plan {
    H5Handle type;
    std::size_t record_size = 0;
    std::vector<std::pair<std::size_t, std::size_t>> slots;  // (field, offset)
    bool has_variable_text = false;
  };

  // Decoders already made, by stored element type and decoding: a table's fields often share one
  // type, and a one- or two-byte type's decoder costs a conversion of every bit pattern.
  struct CachedDecoder {
    H5Handle file_type;
    Decode decode;
    std::optional<ElementDecoder> decoder;
  };

  hid_t dataset = H5I_INVALID_HID;
  std::string where;
  bool compound = false;
  std::size_t stored_record_size = 0;
  bool stored_as_described = false;  // the file's records lie as H5Dget_type describes them
  std::vector<Field> fields;
  Plan all;       // every field read() decodes (not the text_only ones)
  Plan labelled;  // the string fields whose labels collect_labels collects
  // The fields of `all` whose codes are not kept, which read() reads from the file for rows
  // [0, coded_rows); rows past those (none, while the file stays as opened) are read with `all`.
  Plan uncoded;
  std::int64_t coded_rows = 0;
  std::vector<unsigned char> buffer;
  std::vector<std::uint64_t> hashes_;  // collect_block's hash of each row of a block
  std::vector<std::int64_t> candidates_;  // and its candidate code (LabelCodes::candidate)
  VariableLengthArena strings;  // where H5Dread puts variable-length strings
  H5Handle string_transfer;     // a transfer property list that allocates them from `strings`
  std::vector<CachedDecoder> decoders;

  // What read() makes of one number, bool or enum element that HDF5 converted to the field's memory
  // type at `p`.
  static float element_value(const Field& f, const unsigned char* p) {
    switch (f.decode) {
      case Decode::bits:
        return *p != 0 ? 1.0f : 0.0f;
      case Decode::enum_integer:
        return native_integer_as_float(p, f.element_size, f.is_signed);
      default: {
        float v;
        std::memcpy(&v, p, sizeof v);
        return v;
      }
    }
  }

  // The decoder of field `f`'s stored elements of `file_element`, checked against HDF5 converting
  // that member alone (a record of just it, as read()'s H5Dread converts each member) to
  // `memory_element` and read() post-processing it; none where no exact decoder exists.
  std::optional<ElementDecoder> stored_decoder(const Field& f, hid_t file_element,
                                               hid_t memory_element, const std::string& w) {
    for (const CachedDecoder& c : decoders) {
      if (c.decode == f.decode && H5Tequal(c.file_type.get(), file_element) > 0) return c.decoder;
    }
    const std::size_t file_size = H5Tget_size(file_element);
    const std::size_t memory_size = H5Tget_size(memory_element);
    H5Handle source, destination;
    if (compound) {
      source = h5::datatype_handle(LATHE_H5_CHECK(H5Tcreate(H5T_COMPOUND, file_size), w));
      LATHE_H5_CHECK(H5Tinsert(source.get(), f.spec.member.c_str(), 0, file_element), w);
      destination = h5::datatype_handle(LATHE_H5_CHECK(H5Tcreate(H5T_COMPOUND, memory_size), w));
      LATHE_H5_CHECK(H5Tinsert(destination.get(), f.spec.member.c_str(), 0, memory_element), w);
    } else {
      source = h5::datatype_handle(LATHE_H5_CHECK(H5Tcopy(file_element), w));
      destination = h5::datatype_handle(LATHE_H5_CHECK(H5Tcopy(memory_element), w));
    }
    const auto reference = [&](const unsigned char* bytes, std::size_t n, float* out) {
      std::vector<unsigned char> converted(n * std::max(file_size, memory_size));
      std::vector<unsigned char> background(n * memory_size);
      std::memcpy(converted.data(), bytes, n * file_size);
      LATHE_H5_CHECK(H5Tconvert(source.get(), destination.get(), n, converted.data(),
                                background.data(), H5P_DEFAULT),
                     w);
      for (std::size_t i = 0; i < n; ++i) out[i] = element_value(f, converted.data() + i * memory_size);
    };
    std::optional<ElementDecoder> decoder;
    try {
      decoder = ElementDecoder::create(file_element, f.decode == Decode::number, reference);
    } catch (const Hdf5Error&) {
      decoder.reset();  // HDF5 cannot convert these values either: read() will say so
    }
    decoders.push_back(
        {h5::datatype_handle(LATHE_H5_CHECK(H5Tcopy(file_element), w)), f.decode, decoder});
    return decoder;
  }

  void describe(Field& f, hid_t file_type) {
    const std::string w = where + (f.spec.member.empty() ? "" : ", field '" + f.spec.member + "'");
    H5Handle base;
    std::int64_t elements = 1;
    if (H5Tget_class(file_type) == H5T_ARRAY) {
      base = h5::datatype_handle(LATHE_H5_CHECK(H5Tget_super(file_type), w));
      const int rank = LATHE_H5_CHECK(H5Tget_array_ndims(file_type), w);
      f.array_dims.assign(static_cast<std::size_t>(rank), 0);
      LATHE_H5_CHECK(H5Tget_array_dims2(file_type, f.array_dims.data()), w);
      for (const hsize_t d : f.array_dims) elements *= static_cast<std::int64_t>(d);
    } else {
      base = h5::datatype_handle(LATHE_H5_CHECK(H5Tcopy(file_type), w));
    }
    if (static_cast<std::int64_t>(f.spec.columns.size()) != elements) {
      throw Error(w + ": " + std::to_string(elements) + " elements for " +
                  std::to_string(f.spec.columns.size()) + " columns");
    }
    const hid_t b = base.get();
    const H5T_class_t cls = H5Tget_class(b);
    const std::size_t size = H5Tget_size(b);
    H5Handle memory_base;
    switch (cls) {
      case H5T_INTEGER:
      case H5T_FLOAT: {
        const bool integer = cls == H5T_INTEGER;
        if ((integer && size != 1 && size != 2 && size != 4 && size != 8) ||
            (!integer && size != 2 && size != 4 && size != 8)) {
          throw InputError(w + ": holds " + std::to_string(size * 8) + "-bit " + class_name(cls) +
                           " values, which Lathe does not read");
        }
        f.decode = Decode::number;
        f.dtype = integer ? std::string(H5Tget_sign(b) == H5T_SGN_2 ? "int" : "uint") +
                                std::to_string(size * 8)
                          : "float" + std::to_string(size * 8);
        memory_base = h5::datatype_handle(LATHE_H5_CHECK(H5Tcopy(H5T_NATIVE_FLOAT), w));
        break;
      }
      case H5T_BITFIELD:
        if (size != 1)
          throw InputError(w + ": holds a " + std::to_string(size * 8) +
                           "-bit bitfield; Lathe reads 8-bit ones (bool)");
        f.decode = Decode::bits;
        f.dtype = "bool";
        memory_base = h5::datatype_handle(LATHE_H5_CHECK(H5Tcopy(H5T_NATIVE_B8), w));
        break;
      case H5T_ENUM: {
        H5Handle super = h5::datatype_handle(LATHE_H5_CHECK(H5Tget_super(b), w));
        if (H5Tget_class(super.get()) != H5T_INTEGER)
          throw InputError(w + ": holds an enum over a non-integer type");
        f.decode = Decode::enum_integer;
        f.is_signed = H5Tget_sign(super.get()) == H5T_SGN_2;
        memory_base = h5::enum_memory_type(b, w);
        f.dtype = h5::is_boolean_enum(b) ? "bool" : "enum" + std::to_string(H5Tget_size(memory_base.get()) * 8);
        break;
      }
      case H5T_STRING: {
        f.dtype = "string";
        const htri_t variable = LATHE_H5_CHECK(H5Tis_variable_str(b), w);
        if (variable > 0) {
          f.decode = Decode::variable_text;
          memory_base = h5::datatype_handle(LATHE_H5_CHECK(H5Tcopy(H5T_C_S1), w));
          LATHE_H5_CHECK(H5Tset_size(memory_base.get(), H5T_VARIABLE), w);
          LATHE_H5_CHECK(H5Tset_cset(memory_base.get(), H5Tget_cset(b)), w);
        } else {
          f.decode = Decode::fixed_text;
          f.space_padded = H5Tget_strpad(b) == H5T_STR_SPACEPAD;
          memory_base = std::move(base);
        }
        if (!f.spec.text_only) {
          f.labels.resize(static_cast<std::size_t>(elements));
        }
        break;
      }
      default:
        throw InputError(w + ": holds " + class_name(cls) +
                         " values; Lathe reads integer, float, bool and string fields");
    }
    if (f.spec.category_codes && f.decode != Decode::number) {
      throw InputError(w + ": category codes must be integers, found " + f.dtype);
    }
    f.element_size = H5Tget_size(memory_base.get());
    f.memory_type = member_type(f, memory_base.get(), w);
    f.stored_element_size = H5Tget_size(b);
    if (f.decode == Decode::number || f.decode == Decode::bits || f.decode == Decode::enum_integer) {
      f.decoder = stored_decoder(f, b, memory_base.get(), w);
    }
  }

  // The memory type of field `f` with elements of `element_type`: an array of the member's shape
  // (HDF5 converts an array only to one of the same shape), or the element itself.
  static H5Handle member_type(const Field& f, hid_t element_type, const std::string& w) {
    if (f.array_dims.empty()) return h5::datatype_handle(LATHE_H5_CHECK(H5Tcopy(element_type), w));
    return h5::datatype_handle(
        LATHE_H5_CHECK(H5Tarray_create2(element_type, static_cast<unsigned>(f.array_dims.size()),
                                        f.array_dims.data()),
                       w));
  }

  // The fields collect_labels reads (`labelled_only`), or the ones read() decodes (`uncoded_only`:
  // of those, the ones whose codes collect_labels did not keep).
  Plan plan(bool labelled_only, bool uncoded_only = false) {
    Plan p;
    std::vector<std::size_t> chosen;
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (labelled_only ? fields[i].labels.empty() : is_text_only(fields[i])) continue;
      if (uncoded_only && !fields[i].codes.empty()) continue;
      chosen.push_back(i);
      p.slots.emplace_back(i, p.record_size);
      p.record_size += H5Tget_size(fields[i].memory_type.get());
      if (fields[i].decode == Decode::variable_text) p.has_variable_text = true;
    }
    if (chosen.empty()) return p;
    if (!compound) {
      p.type = h5::datatype_handle(LATHE_H5_CHECK(H5Tcopy(fields[0].memory_type.get()), where));
      return p;
    }
    p.type = h5::datatype_handle(LATHE_H5_CHECK(H5Tcreate(H5T_COMPOUND, p.record_size), where));
    for (const auto& [field, offset] : p.slots) {
      LATHE_H5_CHECK(H5Tinsert(p.type.get(), fields[field].spec.member.c_str(), offset,
                               fields[field].memory_type.get()),
                     where);
    }
    return p;
  }

  // Reads rows [first, first + count) with `p` into `buffer`, calls decode(record bytes), then
  // frees what HDF5 allocated for variable-length strings.
  template <typename DecodeRows>
  void read_rows(const Plan& p, std::int64_t first, std::int64_t count, DecodeRows decode_rows) {
    const std::string w =
        where + ", rows " + std::to_string(first + 1) + "-" + std::to_string(first + count);
    H5Handle file_space = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(dataset), w));
    // Rows of a 1-D dataset, or of an n x 1 one (a label stored as a column vector).
    const hsize_t start[2] = {static_cast<hsize_t>(first), 0};
    const hsize_t extent[2] = {static_cast<hsize_t>(count), 1};
    LATHE_H5_CHECK(
        H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, extent, nullptr), w);
    H5Handle memory_space =
        h5::dataspace_handle(LATHE_H5_CHECK(H5Screate_simple(1, extent, nullptr), w));
    buffer.assign(p.record_size * static_cast<std::size_t>(count), 0);
    hid_t transfer = H5P_DEFAULT;
    if (p.has_variable_text) {
      if (!string_transfer) {
        string_transfer = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_DATASET_XFER), w));
        LATHE_H5_CHECK(H5Pset_vlen_mem_manager(string_transfer.get(), &VariableLengthArena::allocate, &strings,
                                               &VariableLengthArena::release, &strings),
                       w);
      }
      transfer = string_transfer.get();
    }
    // The strings of this read are let go together once decoded (or when it fails).
    struct Release {
      VariableLengthArena& strings;
      ~Release() { strings.reset(); }
    } release{strings};
    LATHE_H5_CHECK(H5Dread(dataset, p.type.get(), memory_space.get(), file_space.get(), transfer, buffer.data()), w);
    decode_rows(w);
  }

  // The text of a string element at `p`.
  static std::string_view text_at(const Field& f, const unsigned char* p) {
    if (f.decode == Decode::variable_text) {
      const char* s = nullptr;
      std::memcpy(&s, p, sizeof s);
      return s ? std::string_view(s) : std::string_view();
    }
    return h5::fixed_string_text(reinterpret_cast<const char*>(p), f.element_size, f.space_padded);
  }

  // The field and element that feed table column `column`; Error when none does.
  std::pair<std::size_t, std::size_t> field_of(std::int64_t column) const {
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const auto& columns = fields[i].spec.columns;
      const auto it = std::find(columns.begin(), columns.end(), column);
      if (it != columns.end()) return {i, static_cast<std::size_t>(it - columns.begin())};
    }
    throw Error(where + ": no field feeds column " + std::to_string(column));
  }

  // A memory type of field `i` alone, as `member_type` (its elements in the memory type HDF5
  // converts them to): HDF5 reads (and, for variable-length strings, allocates) no other member.
  Plan one_field_plan(std::size_t i, hid_t member, const std::string& w) const {
    Plan p;
    p.record_size = H5Tget_size(member);
    p.has_variable_text = fields[i].decode == Decode::variable_text;
    p.slots.emplace_back(i, 0);
    if (compound) {
      p.type = h5::datatype_handle(LATHE_H5_CHECK(H5Tcreate(H5T_COMPOUND, p.record_size), w));
      LATHE_H5_CHECK(H5Tinsert(p.type.get(), fields[i].spec.member.c_str(), 0, member), w);
    } else {
      p.type = h5::datatype_handle(LATHE_H5_CHECK(H5Tcopy(member), w));
    }
    return p;
  }

  static bool is_text(const Field& f) { return f.decode == Decode::fixed_text || f.decode == Decode::variable_text; }

  static bool is_text_only(const Field& f) { return is_text(f) && f.spec.text_only; }

  // A 1-D dataset of variable-length strings: what HeapStringReader reads.
  bool one_variable_text_field() const {
    return !compound && fields.size() == 1 && fields[0].decode == Decode::variable_text;
  }
  // collect_labels' start: room for every labelled field's codes where `code_budget` allows.
  void start_codes(std::int64_t rows, std::int64_t* code_budget) {
    if (code_budget == nullptr) return;
    for (const auto& [field, offset] : labelled.slots) {
      Field& f = fields[field];
      f.codes.resize(f.labels.size());
      bool started = true;
      for (CodeColumn& c : f.codes) started = started && c.start(rows, *code_budget);
      if (!started) drop_codes(f, *code_budget);
    }
  }
  static void drop_codes(Field& f, std::int64_t& code_budget) {
    for (CodeColumn& c : f.codes) c.drop(code_budget);
    f.codes.clear();
  }
  // The labels of `count` rows of element `e` of field `f`, row r's text being text_of(r), added
  // to its labels in order of first appearance, and their codes kept where `f` keeps codes.
  template <typename TextOf>
  void collect_block(Field& f, std::size_t e, std::int64_t count, std::int64_t rows, std::int64_t* code_budget,
                     std::vector<std::uint32_t>& block_codes, TextOf text_of) {
    LabelIndex& index = f.labels[e];
    index.expect_at_most(rows);
    const bool keep = !f.codes.empty();
    block_codes.resize(keep ? static_cast<std::size_t>(count) : 0);
    std::uint32_t largest = 0;
    // Each row's hash first; then each row's candidate code among the labels the block found
    // (LabelCodes::candidate: table entries only, fetched a few rows ahead); then each row's label
    // compared with its candidate's (the labels fetched a few rows ahead, their places known), the
    // rows of a label the block did not find (new ones, and the rare tag shared by two labels)
    // found or added in row order: the codes are those of finding or adding every row in turn.
    // In one pass, each lookup waited on the entry and then on the label it names.
    constexpr std::int64_t kAhead = 16;
    const auto n = static_cast<std::size_t>(count);
    hashes_.resize(n);
    candidates_.resize(n);
    for (std::size_t r = 0; r < n; ++r) hashes_[r] = LabelIndex::hash(text_of(static_cast<std::int64_t>(r)));
    for (std::size_t r = 0; r < n; ++r) {
      if (r + kAhead < n) index.prefetch_slot(hashes_[r + kAhead]);
      candidates_[r] = index.candidate(hashes_[r]);
    }
    for (std::int64_t r = 0; r < count; ++r) {
      if (r + kAhead < count && candidates_[static_cast<std::size_t>(r + kAhead)] >= 0) {
        index.prefetch_code(candidates_[static_cast<std::size_t>(r + kAhead)]);
      }
      const std::string_view label = text_of(r);
      std::uint32_t code_plus_one = 0;  // missing
      if (!is_missing(f, label)) {
        const std::int64_t candidate = candidates_[static_cast<std::size_t>(r)];
        const std::int32_t code =
            candidate >= 0 && index.label_is(candidate, label)
                ? static_cast<std::int32_t>(candidate)
                : index.find_or_add(label, hashes_[static_cast<std::size_t>(r)], where, f.spec.member);
        code_plus_one = static_cast<std::uint32_t>(code) + 1;
      }
      if (keep) {
        block_codes[static_cast<std::size_t>(r)] = code_plus_one;
        largest = std::max(largest, code_plus_one);
      }
    }
    if (keep && !f.codes[e].append(block_codes.data(), block_codes.size(), largest, rows, *code_budget)) {
      drop_codes(f, *code_budget);
    }
  }
  // collect_labels' end: the rows whose codes are kept, and what read() still reads for them.
  void finish_codes(std::int64_t rows) {
    bool coded = false;
    for (const Field& f : fields) coded = coded || !f.codes.empty();
    if (coded) {
      coded_rows = rows;
      uncoded = plan(false, true);
    }
  }

  bool is_missing(const Field& f, std::string_view label) const {
    if (label.empty()) return true;
    for (const auto& m : f.spec.missing_labels) {
      if (label == m) return true;
    }
    return false;
  }
};

RecordReader::RecordReader(hid_t dataset, std::vector<RecordField> fields, std::string where)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.dataset = dataset;
  m.where = std::move(where);
  H5Handle type = h5::datatype_handle(LATHE_H5_CHECK(H5Dget_type(dataset), m.where));
  m.compound = H5Tget_class(type.get()) == H5T_COMPOUND;
  m.stored_record_size = H5Tget_size(type.get());
  m.stored_as_described = !stored_unlike_described(type.get(), m.where);
  if (!m.compound && (fields.size() != 1 || !fields[0].member.empty())) {
    throw Error(m.where + ": a dataset that is not compound is read as one field");
  }
  for (auto& spec : fields) {
    Impl::Field f;
    f.spec = std::move(spec);
    if (m.compound) {
      const int index = H5Tget_member_index(type.get(), f.spec.member.c_str());
      if (index < 0) {
        H5Eclear2(H5E_DEFAULT);
        throw InputError(m.where + ": has no field '" + f.spec.member + "'");
      }
      H5Handle member = h5::datatype_handle(
          LATHE_H5_CHECK(H5Tget_member_type(type.get(), static_cast<unsigned>(index)), m.where));
      f.stored_offset = H5Tget_member_offset(type.get(), static_cast<unsigned>(index));
      // A field past the record's end is damage to the type's offsets or sizes, which HDF5 1.10
      // does not check (later versions refuse to open such a dataset): the stored records'
      // decoder and HDF5's own conversion would both read past each record.
      const std::size_t field_size = H5Tget_size(member.get());
      if (f.stored_offset > m.stored_record_size || field_size > m.stored_record_size - f.stored_offset) {
        throw InputError(m.where + ": damaged: field '" + f.spec.member + "' (" + std::to_string(field_size) +
                         " bytes at byte " + std::to_string(f.stored_offset) + ") extends past the end of its " +
                         std::to_string(m.stored_record_size) + "-byte record");
      }
      m.describe(f, member.get());
    } else {
      m.describe(f, type.get());
    }
    m.fields.push_back(std::move(f));
  }
  m.all = m.plan(false);
  m.labelled = m.plan(true);
}

RecordReader::~RecordReader() = default;
RecordReader::RecordReader(RecordReader&&) noexcept = default;
RecordReader& RecordReader::operator=(RecordReader&&) noexcept = default;

std::size_t RecordReader::field_count() const { return impl_->fields.size(); }
const std::string& RecordReader::dtype(std::size_t field) const {
  return impl_->fields.at(field).dtype;
}
bool RecordReader::holds_labels(std::size_t field) const {
  return !impl_->fields.at(field).labels.empty();
}
bool RecordReader::holds_text(std::size_t field) const { return Impl::is_text(impl_->fields.at(field)); }

bool RecordReader::decodes_stored_records() const {
  const Impl& m = *impl_;
  if (!m.stored_as_described || m.fields.empty()) return false;
  for (const Impl::Field& f : m.fields) {
    if (!f.decoder && f.decode != Decode::fixed_text) return false;
  }
  return true;
}

std::size_t RecordReader::stored_record_size() const { return impl_->stored_record_size; }

bool RecordReader::decode_stored(const unsigned char* records, std::size_t count,
                                 std::size_t stride, std::span<float* const> columns,
                                 std::size_t at) const {
  const Impl& m = *impl_;
  const float missing = std::numeric_limits<float>::quiet_NaN();
  const std::size_t tile = std::max<std::size_t>(16, kDecodeTileBytes / std::max<std::size_t>(1, stride));
  for (std::size_t r0 = 0; r0 < count; r0 += tile) {
    const std::size_t n = std::min(tile, count - r0);
    const unsigned char* tile_records = records + r0 * stride;
    for (const Impl::Field& f : m.fields) {
      for (std::size_t e = 0; e < f.spec.columns.size(); ++e) {
        float* column = columns[static_cast<std::size_t>(f.spec.columns[e])];
        if (column == nullptr) continue;
        float* dst = column + at + r0;
        const unsigned char* p = tile_records + f.stored_offset + e * f.stored_element_size;
        if (Impl::is_text_only(f)) {
          std::fill(dst, dst + n, missing);
          continue;
        }
        if (f.decoder) {
          f.decoder->decode(p, n, stride, dst);
          continue;
        }
        const LabelIndex& codes = f.labels[e];
        for (std::size_t r = 0; r < n; ++r, p += stride) {
          const std::string_view label = Impl::text_at(f, p);
          if (m.is_missing(f, label)) {
            dst[r] = missing;
            continue;
          }
          const std::int32_t code = codes.find(label);
          if (code < 0) return false;
          dst[r] = static_cast<float>(code);
        }
      }
    }
  }
  return true;
}

void RecordReader::collect_labels(std::int64_t rows, std::int64_t block_rows, std::int64_t* code_budget) {
  Impl& m = *impl_;
  if (m.labelled.slots.empty()) return;
  const Impl::Plan& p = m.labelled;
  m.start_codes(rows, code_budget);
  std::vector<std::uint32_t> block_codes;
  for (std::int64_t first = 0; first < rows; first += block_rows) {
    const std::int64_t count = std::min(block_rows, rows - first);
    m.read_rows(p, first, count, [&](const std::string&) {
      for (const auto& [field, offset] : p.slots) {
        Impl::Field& f = m.fields[field];
        for (std::size_t e = 0; e < f.labels.size(); ++e) {
          const unsigned char* records = m.buffer.data() + offset + e * f.element_size;
          m.collect_block(f, e, count, rows, code_budget, block_codes, [&](std::int64_t r) {
            return Impl::text_at(f, records + static_cast<std::size_t>(r) * p.record_size);
          });
        }
      }
    });
  }
  m.finish_codes(rows);
}

bool RecordReader::collect_stored_labels(HeapStringReader& strings, std::int64_t rows, std::int64_t block_rows,
                                         std::int64_t* code_budget) {
  Impl& m = *impl_;
  if (!m.one_variable_text_field() || m.fields[0].labels.size() != 1) return false;
  Impl::Field& f = m.fields[0];
  m.start_codes(rows, code_budget);
  std::vector<std::uint32_t> block_codes;
  std::vector<std::string_view> texts;
  for (std::int64_t first = 0; first < rows; first += block_rows) {
    const std::int64_t count = std::min(block_rows, rows - first);
    if (!strings.read(first, count, texts)) {
      // Back to where the call began, for collect_labels to read the rows through HDF5.
      f.labels[0] = LabelIndex();
      if (code_budget != nullptr) {
        for (CodeColumn& c : f.codes) c.drop(*code_budget);
      }
      f.codes.clear();
      return false;
    }
    m.collect_block(f, 0, count, rows, code_budget, block_codes,
                    [&](std::int64_t r) { return texts[static_cast<std::size_t>(r)]; });
  }
  m.finish_codes(rows);
  return true;
}

bool RecordReader::keeps_codes() const { return impl_->coded_rows > 0; }

const std::vector<std::string>& RecordReader::labels(std::size_t field, std::size_t element) const {
  return impl_->fields.at(field).labels.at(element).labels();
}

std::vector<std::string> RecordReader::release_labels(std::size_t field, std::size_t element) {
  Impl::Field& f = impl_->fields.at(field);
  if (f.codes.empty() || impl_->coded_rows == 0) return f.labels.at(element).labels();
  return f.labels.at(element).release();
}

void RecordReader::read_as(std::int64_t column, std::int64_t first, std::int64_t count,
                           hid_t memory_type, void* out) {
  Impl& m = *impl_;
  const auto [i, e] = m.field_of(column);
  const Impl::Field& f = m.fields[i];
  if (Impl::is_text(f) || !m.compound) throw Error(m.where + ": a column of strings has no exact numeric values");
  const std::string w = m.where + ", field '" + f.spec.member + "'";
  const H5Handle member = Impl::member_type(f, memory_type, w);
  const Impl::Plan p = m.one_field_plan(i, member.get(), w);
  const std::size_t size = H5Tget_size(memory_type);
  auto* dst = static_cast<unsigned char*>(out);
  if (count <= 0) return;
  m.read_rows(p, first, count, [&](const std::string&) {
    for (std::int64_t r = 0; r < count; ++r) {
      std::memcpy(dst + static_cast<std::size_t>(r) * size,
                  m.buffer.data() + static_cast<std::size_t>(r) * p.record_size + e * size, size);
    }
  });
}

void RecordReader::read_text(std::int64_t column, std::int64_t first, std::int64_t count,
                             std::vector<std::string>& out) {
  Impl& m = *impl_;
  const auto [i, e] = m.field_of(column);
  const Impl::Field& f = m.fields[i];
  if (!Impl::is_text(f)) throw Error(m.where + ": column " + std::to_string(column) + " does not hold strings");
  out.assign(static_cast<std::size_t>(std::max<std::int64_t>(count, 0)), std::string());
  if (count <= 0) return;
  const Impl::Plan p = m.one_field_plan(i, f.memory_type.get(), m.where);
  m.read_rows(p, first, count, [&](const std::string&) {
    const unsigned char* record = m.buffer.data() + e * f.element_size;
    for (std::int64_t r = 0; r < count; ++r, record += p.record_size) {
      const std::string_view text = Impl::text_at(f, record);
      if (!m.is_missing(f, text)) out[static_cast<std::size_t>(r)].assign(text);
    }
  });
}

bool RecordReader::read_stored(HeapStringReader& strings, std::int64_t first, std::int64_t count, float* out) {
  Impl& m = *impl_;
  if (!m.one_variable_text_field() || m.fields[0].labels.size() != 1) return false;
  if (count <= 0) return true;
  const Impl::Field& f = m.fields[0];
  std::vector<std::string_view> texts;
  if (!strings.read(first, count, texts)) return false;
  const float missing = std::numeric_limits<float>::quiet_NaN();
  float* dst = out + f.spec.columns[0] * count;
  for (std::int64_t r = 0; r < count; ++r) {
    const std::string_view label = texts[static_cast<std::size_t>(r)];
    if (m.is_missing(f, label)) {
      dst[r] = missing;
      continue;
    }
    const std::int32_t code = f.labels[0].find(label);
    if (code < 0) {
      throw Error(m.where + ", rows " + std::to_string(first + 1) + "-" + std::to_string(first + count) +
                  ": the label '" + std::string(label) + "' was not in the file when it was opened");
    }
    dst[r] = static_cast<float>(code);
  }
  return true;
}

bool RecordReader::read_stored_text(HeapStringReader& strings, std::int64_t first, std::int64_t count,
                                    std::vector<std::string>& out) {
  Impl& m = *impl_;
  if (!m.one_variable_text_field()) return false;
  std::vector<std::string_view> texts;
  if (!strings.read(first, count, texts)) return false;
  out.assign(texts.size(), std::string());
  for (std::size_t r = 0; r < texts.size(); ++r) {
    if (!m.is_missing(m.fields[0], texts[r])) out[r].assign(texts[r]);
  }
  return true;
}

void RecordReader::read(std::int64_t first, std::int64_t count, float* out) {
  Impl& m = *impl_;
  if (count <= 0) return;
  const float missing = std::numeric_limits<float>::quiet_NaN();
  for (const Impl::Field& f : m.fields) {
    if (!Impl::is_text_only(f)) continue;
    for (const std::int64_t c : f.spec.columns) std::fill(out + c * count, out + (c + 1) * count, missing);
  }
  // Rows whose codes collect_labels kept: those fields are not read again.
  const bool coded = first + count <= m.coded_rows;
  if (coded) {
    for (const Impl::Field& f : m.fields) {
      for (std::size_t e = 0; e < f.codes.size(); ++e) f.codes[e].decode(first, count, out + f.spec.columns[e] * count);
    }
  }
  const Impl::Plan& p = coded ? m.uncoded : m.all;
  if (p.slots.empty()) return;
  m.read_rows(p, first, count, [&](const std::string& w) {
    for (const auto& [field, offset] : p.slots) {
      const Impl::Field& f = m.fields[field];
      for (std::size_t e = 0; e < f.spec.columns.size(); ++e) {
        float* dst = out + f.spec.columns[e] * count;
        const unsigned char* record = m.buffer.data() + offset + e * f.element_size;
        for (std::int64_t r = 0; r < count; ++r, record += p.record_size) {
          switch (f.decode) {
            case Decode::number:
            case Decode::bits:
            case Decode::enum_integer:
              dst[r] = Impl::element_value(f, record);
              break;
            case Decode::fixed_text:
            case Decode::variable_text: {
              const std::string_view label = Impl::text_at(f, record);
              if (m.is_missing(f, label)) {
                dst[r] = missing;
                break;
              }
              const std::int32_t code = f.labels[e].find(label);
              if (code < 0) {
                throw Error(w + ": the label '" + std::string(label) +
                            "' was not in the file when it was opened");
              }
              dst[r] = static_cast<float>(code);
              break;
            }
          }
        }
      }
    }
  });
}

}  // namespace lathe
