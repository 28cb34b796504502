// Ownership and error checking for the HDF5 C API.
//
// Every hid_t Lathe opens is held by an H5Handle, which closes it with the right H5*close function.
// Every HDF5 call goes through LATHE_H5_CHECK, which throws Hdf5Error with the caller's context
// (file and dataset) and HDF5's error messages, and keeps the call text and source location apart.
// HDF5's own printing of its error stack is silenced in every thread that calls it.
#pragma once

#include <hdf5.h>

#include <filesystem>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lathe::h5 {

class H5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Handle() = default;
  H5Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~H5Handle() { reset(); }
  H5Handle(H5Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), closer_(o.closer_) {}
  H5Handle& operator=(H5Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      closer_ = o.closer_;
    }
    return *this;
  }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;

  hid_t get() const { return id_; }
  // Gives up ownership without closing (for a close whose error must be checked).
  hid_t release() noexcept { return std::exchange(id_, H5I_INVALID_HID); }
  explicit operator bool() const { return id_ >= 0; }
  void reset() noexcept {
    if (id_ >= 0 && closer_) closer_(id_);
    id_ = H5I_INVALID_HID;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// Turns off HDF5's automatic error printing for the calling thread (idempotent, cheap).
void silence_errors_in_this_thread();

// The innermost description on the calling thread's HDF5 error stack, e.g. "unable to open file".
std::string last_error_message();

[[noreturn]] void throw_error(const char* call, const char* file, int line, const std::string& context);

// Checks a returned hid_t or herr_t/htri_t (negative is failure) and returns it.
template <typename T>
T check(T result, const char* call, const char* file, int line, const std::string& context) {
  if (result < 0) throw_error(call, file, line, context);
  return result;
}

// Owning wrappers for the object kinds Lathe opens.
inline H5Handle file_handle(hid_t id) { return {id, H5Fclose}; }
inline H5Handle group_handle(hid_t id) { return {id, H5Gclose}; }
inline H5Handle dataset_handle(hid_t id) { return {id, H5Dclose}; }
inline H5Handle dataspace_handle(hid_t id) { return {id, H5Sclose}; }
inline H5Handle datatype_handle(hid_t id) { return {id, H5Tclose}; }
inline H5Handle attribute_handle(hid_t id) { return {id, H5Aclose}; }

// Opens an existing HDF5 file read-only. InputError naming it when it is missing, not a regular
// file (a FIFO would block HDF5's first read forever, a folder or device answers nonsense), not
// HDF5 (with the `lathe import` hint for a CSV file; model_hint: it was given as a model file),
// cannot be read (check_readable), is locked by a writer (locked_file_message) or cannot be opened.
H5Handle open_file_for_reading(const std::filesystem::path& path, bool model_hint = false);

// InputError "`context`: cannot open: Permission denied" (or the system's other reason) when the
// system refuses to look at `path` or to open it for reading: a file or a folder above it that the
// user may not read, which std::filesystem reports as missing and H5Fis_hdf5 as no HDF5 file. A
// path that does not exist, or that is no regular file, passes: the caller names those.
void check_readable(const std::filesystem::path& path, const std::string& context);

// The checks of a file every command reads before HDF5 opens it, worded alike whichever command it
// is: InputError "`context`: cannot open: ..." (check_readable), ": no such file", ": is a folder",
// ": is not a regular file (a FIFO or device?)" (a FIFO would block HDF5's first read forever, a
// device answers nonsense) or ": file is empty".
void check_input_file(const std::filesystem::path& path, const std::string& context);

// When `why` (an H5Fopen failure's HDF5 message, last_error_message) says that the file's lock is
// held by another process (a writer: h5py in 'a', 'w' or 'r+' mode), the message for it naming
// `context` and the way to read it anyway (HDF5_USE_FILE_LOCKING=FALSE); "" otherwise.
std::string locked_file_message(const std::string& context, const std::string& why);
inline H5Handle object_handle(hid_t id) { return {id, H5Oclose}; }
inline H5Handle plist_handle(hid_t id) { return {id, H5Pclose}; }

// Small helpers over common patterns. `context` names the file (and object) for error messages.
bool attribute_exists(hid_t object, const char* name, const std::string& context);
// Reads a string or array-of-strings attribute (fixed or variable length).
std::vector<std::string> read_string_attribute(hid_t object, const char* name,
                                               const std::string& context);
// Reads a 1-D dataset of fixed- or variable-length strings.
std::vector<std::string> read_string_dataset(hid_t dataset, const std::string& context);
// Reads the string field `member` of a 1-D dataset of records, one string per record.
std::vector<std::string> read_string_field(hid_t dataset, const char* member, const std::string& context);
// A fixed-length string's text, `size` bytes at `p`: up to its first NUL; a space-padded (Fortran)
// string's trailing spaces are padding too, a null-padded or null-terminated string's are text.
std::string_view fixed_string_text(const char* p, std::size_t size, bool space_padded);
// Variable-length UTF-8 strings. HDF5 keeps their text in its global heap, which has no checksum: a
// damaged heap can crash or hang HDF5 itself when the attribute is read. Fine for data files; files
// that must survive damage (model files) use write_fixed_string_attribute.
void write_string_attribute(hid_t object, const char* name, const std::vector<std::string>& values,
                            const std::string& context);
void write_string_attribute(hid_t object, const char* name, const std::string& value,
                            const std::string& context);
// Fixed-length, null-padded UTF-8 strings (an array's are as long as its longest): the text lives in
// the attribute message itself, so with file format 1.8 on it is covered by the object header's
// checksum as long as the attribute stays in the header (compact storage: see
// keep_attributes_compact) and fits one header message (under 64 KiB). Read back by
// read_string_attribute; h5py reads them as bytes. A string cut at its first NUL when read.
void write_fixed_string_attribute(hid_t object, const char* name, const std::vector<std::string>& values,
                                  const std::string& context);
void write_fixed_string_attribute(hid_t object, const char* name, const std::string& value,
                                  const std::string& context);
// Makes objects created with the object (group or file) creation property list `plist` keep every
// attribute in their object header (HDF5's "compact" storage) instead of moving them to dense storage
// past 8 attributes: in dense storage an attribute over 4 KiB is a fractal heap "huge object" whose
// bytes (its datatype and dataspace included) no checksum covers.
void keep_attributes_compact(hid_t plist, const std::string& context);
void write_int_attribute(hid_t object, const char* name, long long value, const std::string& context);
// Frees what H5Dread allocated for variable-length data (strings) in `buffer`, read with memory
// type `type` into `space` (H5Treclaim from HDF5 1.12 on, H5Dvlen_reclaim before).
inline herr_t reclaim_variable_length(hid_t type, hid_t space, hid_t plist, void* buffer) {
#if H5_VERSION_GE(1, 12, 0)
  return H5Treclaim(type, space, plist, buffer);
#else
  return H5Dvlen_reclaim(type, space, plist, buffer);
#endif
}

// Whether the enum type `type` is h5py's bool: two members named FALSE and TRUE.
bool is_boolean_enum(hid_t type);

// The memory type an enum of integers is read as: its native type, except for h5py's bool
// (is_boolean_enum), which becomes the native enum FALSE = 0, TRUE = 1. HDF5 converts one enum to
// another by member name, so a bool reads as 0 and 1 whatever values the file gives its members
// (FALSE = 5, TRUE = -3): a bool is its name, as a column of strings is its labels.
H5Handle enum_memory_type(hid_t enum_type, const std::string& context);

// Whether `name` is a link under `file` (HDF5's error stack left clean either way).
bool link_exists(hid_t file, const char* name);

// The HDF5 types of a value type: in the file (little-endian) and in memory.
template <typename T>
struct H5Types;
template <>
struct H5Types<float> {
  static hid_t file() { return H5T_IEEE_F32LE; }
  static hid_t memory() { return H5T_NATIVE_FLOAT; }
};
template <>
struct H5Types<double> {
  static hid_t file() { return H5T_IEEE_F64LE; }
  static hid_t memory() { return H5T_NATIVE_DOUBLE; }
};
template <>
struct H5Types<long long> {
  static hid_t file() { return H5T_STD_I64LE; }
  static hid_t memory() { return H5T_NATIVE_LLONG; }
};
template <>
struct H5Types<long> {
  static hid_t file() { return H5T_STD_I64LE; }
  static hid_t memory() { return H5T_NATIVE_LONG; }
};
template <>
struct H5Types<unsigned int> {
  static hid_t file() { return H5T_STD_U32LE; }
  static hid_t memory() { return H5T_NATIVE_UINT; }
};

// The one chunk of a write_checksummed dataset as HDF5 stores it: the values' bytes, shuffled and
// deflated first where `deflated`, then their Fletcher32 checksum (4 bytes, little-endian).
struct ChecksummedChunk {
  bool deflated = false;
  std::vector<unsigned char> bytes;
};
// The chunk write_checksummed stores for `values` (their bytes in memory's order, which is the
// file's on a little-endian host). Calls no HDF5 function: any thread may make it while another
// one writes to HDF5.
template <typename T>
ChecksummedChunk checksummed_chunk(const std::vector<T>& values);

// A dataset of `shape` (float32, float64, int64 or uint32, little-endian) written with HDF5's Fletcher32
// checksum in one chunk. From kCompressedDatasetBytes on, shuffled and deflated (level 1) first
// where a sample of it shrinks to half or less: a model's table of 2^24 hashed crosses, mostly
// zeros, took 64 MB; an fm's random factors are stored as they are. Empty arrays are written too (a
// zero-size dataset). `chunk`: checksummed_chunk(values) made beforehand (on another thread),
// written as it is; without it, write_checksummed makes it. Either way (on a little-endian host)
// the chunk goes to the file with H5Dwrite_chunk, which copies none of it.
inline constexpr std::size_t kCompressedDatasetBytes = std::size_t{1} << 20;
template <typename T>
void write_checksummed(hid_t file, const char* name, const std::vector<T>& values,
                       const std::vector<hsize_t>& shape, const std::string& context,
                       const ChecksummedChunk* chunk = nullptr);
// write_checksummed of `count` values given by their chunk alone (checksummed_chunk of them, made on
// this host), so that the values need not be kept until it is written. Only on a little-endian host
// (where the chunk is what HDF5 stores); Error elsewhere.
template <typename T>
void write_checksummed_chunk(hid_t file, const char* name, std::size_t count, const std::vector<hsize_t>& shape,
                             const std::string& context, const ChecksummedChunk& chunk);
// Reads a dataset written by write_checksummed that must hold `expected` values (when expected is
// 0 it may be absent). InputError names the file and dataset when it is missing, has another size,
// is not one whole chunk at the origin with every filter applied (a damaged chunk index: the 1.8
// file format's has no checksum) or fails its checksum. The values are not checked.
template <typename T>
std::vector<T> read_checksummed(hid_t file, const char* name, std::size_t expected, const std::string& context);

// A 1-D dataset of fixed-length, null-padded UTF-8 strings (as long as the longest), in one chunk with
// Fletcher32: text too long for an attribute, kept where HDF5 checks it.
void write_checksummed_strings(hid_t file, const char* name, const std::vector<std::string>& values,
                               const std::string& context);
// The same of one string, whose buffer becomes the stored chunk (its checksum appended): a
// profile's text may be tens of megabytes, which are then not copied.
void write_checksummed_strings(hid_t file, const char* name, std::string&& value,
                               const std::string& context);
// Reads a dataset written by write_checksummed_strings; InputError naming the file and dataset when
// its checksum fails or it holds no strings. A dataset with Fletcher32 as its only filter has its
// chunk read as stored and checked here (no copies through HDF5's buffers); another is read
// through HDF5's filters.
std::vector<std::string> read_checksummed_strings(hid_t file, const char* name, const std::string& context);

inline void write_checksummed_floats(hid_t file, const char* name, const std::vector<float>& values,
                                     const std::vector<hsize_t>& shape, const std::string& context,
                                     const ChecksummedChunk* chunk = nullptr) {
  write_checksummed(file, name, values, shape, context, chunk);
}
// read_checksummed<float>, and InputError for a value that is not finite.
std::vector<float> read_finite_floats(hid_t file, const char* name, std::size_t expected,
                                      const std::string& context);
// Names of the links directly under a group, in creation order where tracked, else name order.
std::vector<std::string> list_group(hid_t group, const std::string& context);

}  // namespace lathe::h5

#define LATHE_H5_CHECK(call, context) \
  ::lathe::h5::check((::lathe::h5::silence_errors_in_this_thread(), (call)), #call, __FILE__, __LINE__, (context))
