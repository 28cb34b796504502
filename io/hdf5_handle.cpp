#include "io/hdf5_handle.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "io/chunk_filters.h"
#include "io/text_check.h"
#include "runtime/error.h"
#include "runtime/vector_clones.h"

namespace lathe::h5 {

void silence_errors_in_this_thread() {
  thread_local bool silenced = false;
  if (!silenced) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    silenced = true;
  }
}

void check_readable(const std::filesystem::path& path, const std::string& context) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return;  // the caller's "no such file"
    throw InputError(context + ": cannot open: " + std::strerror(errno));
  }
  if (!S_ISREG(status.st_mode)) return;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(context + ": cannot open: " + std::strerror(errno));
  ::close(fd);
}

std::string locked_file_message(const std::string& context, const std::string& why) {
  // HDF5's sec2 driver: "unable to lock file, errno = 11, error message = 'Resource temporarily
  // unavailable'" (EWOULDBLOCK from flock). Other reasons for a failed lock (no locks on this
  // filesystem) keep HDF5's own message.
  if (why.find("unable to lock file") == std::string::npos) return "";
  if (why.find("errno = 11") == std::string::npos && why.find("temporarily unavailable") == std::string::npos) return "";
  return context + " is locked by another process (open for writing, as h5py's 'a' or 'r+' mode holds it); close "
                   "it there, or set HDF5_USE_FILE_LOCKING=FALSE to read it anyway";
}

void check_input_file(const std::filesystem::path& path, const std::string& context) {
  check_readable(path, context);  // a permission problem is neither "no such file" nor "not HDF5"
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw InputError(context + ": no such file");
  if (std::filesystem::is_directory(path, ec)) throw InputError(context + ": is a folder");
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw InputError(context + ": is not a regular file (a FIFO or device?)");
  }
  // An empty data.csv was told it looks like CSV to import, and an empty model file that it is not
  // HDF5.
  if (std::filesystem::file_size(path, ec) == 0) throw InputError(context + ": file is empty");
}

H5Handle open_file_for_reading(const std::filesystem::path& path, bool model_hint) {
  const std::string context = path.string();
  check_input_file(path, context);
  silence_errors_in_this_thread();
  if (H5Fis_hdf5(path.c_str()) <= 0) throw InputError(context + ": not an HDF5 file" + csv_file_hint(path, model_hint));
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) {
    const std::string locked = locked_file_message(context, last_error_message());
    H5Eclear2(H5E_DEFAULT);
    if (!locked.empty()) throw InputError(locked);
    throw InputError(context + ": cannot open (truncated or damaged?)");
  }
  return file_handle(id);
}

namespace {
// HDF5's file drivers describe a failed system call in one long text with a line break in it
// ("file write failed: time = ...\n, filename = ..., errno = 27, error message = 'File too large',
// buf = ..."): keep what failed and the system's reason. Line breaks never reach a message.
std::string concise(std::string desc) {
  const std::string marker = "error message = '";
  const auto at = desc.find(marker);
  const auto head = desc.find(": time = ");
  if (at != std::string::npos && head != std::string::npos) {
    const auto begin = at + marker.size();
    const auto end = desc.find('\'', begin);
    desc = desc.substr(0, head) + ": " + desc.substr(begin, end == std::string::npos ? end : end - begin);
  }
  for (char& c : desc) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return desc;
}

herr_t collect_description(unsigned, const H5E_error2_t* e, void* out) {
  auto* messages = static_cast<std::vector<std::string>*>(out);
  if (e->desc && *e->desc) messages->emplace_back(concise(e->desc));
  return 0;
}
}  // namespace

std::string last_error_message() {
  std::vector<std::string> messages;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_description, &messages);
  if (messages.empty()) return "unknown HDF5 error";
  // The outermost entry says what failed; the innermost one usually says why.
  if (messages.size() == 1 || messages.front() == messages.back()) return messages.front();
  return messages.front() + ": " + messages.back();
}

void throw_error(const char* call, const char* file, int line, const std::string& context) {
  std::string why = last_error_message();
  H5Eclear2(H5E_DEFAULT);
  throw Hdf5Error(context + ": " + why,
                  std::string(call) + " at " + file + ":" + std::to_string(line));
}

bool attribute_exists(hid_t object, const char* name, const std::string& context) {
  return LATHE_H5_CHECK(H5Aexists(object, name), context) > 0;
}

namespace {

std::string trim_fixed(const char* p, std::size_t size, H5T_str_t pad) {
  return std::string(fixed_string_text(p, size, pad == H5T_STR_SPACEPAD));
}

// Reads strings of `file_type` through `read(memtype, buffer)`, for attributes and datasets alike.
template <typename ReadFn>
std::vector<std::string> read_strings(hid_t file_type, std::size_t count, ReadFn read,
                                      const std::string& context) {
  if (H5Tget_class(file_type) != H5T_STRING) {
    // The file holds something else where names belong: bad input, not a failed HDF5 call.
    throw InputError(context + ": expected strings");
  }
  std::vector<std::string> out;
  if (count == 0) return out;  // HDF5 refuses a null buffer even for zero elements
  out.reserve(count);
  const htri_t variable = LATHE_H5_CHECK(H5Tis_variable_str(file_type), context);
  // Read with the file's own string type (its character set and padding): HDF5 converts neither
  // between ASCII and UTF-8 nor, reliably, between paddings.
  H5Handle mem = datatype_handle(LATHE_H5_CHECK(H5Tcopy(file_type), context));
  if (variable > 0) {
    std::vector<char*> ptrs(count, nullptr);
    LATHE_H5_CHECK(read(mem.get(), ptrs.data()), context);
    for (char* p : ptrs) {
      out.emplace_back(p ? p : "");
      if (p) H5free_memory(p);
    }
  } else {
    const std::size_t size = H5Tget_size(file_type);
    const H5T_str_t pad = H5Tget_strpad(file_type);
    std::vector<char> buffer(count * size + 1, '\0');
    LATHE_H5_CHECK(read(mem.get(), buffer.data()), context);
    for (std::size_t i = 0; i < count; ++i) out.push_back(trim_fixed(buffer.data() + i * size, size, pad));
  }
  return out;
}

std::size_t element_count(hid_t space, const std::string& context) {
  const hssize_t n = LATHE_H5_CHECK(H5Sget_simple_extent_npoints(space), context);
  return static_cast<std::size_t>(n);
}

}  // namespace

std::vector<std::string> read_string_attribute(hid_t object, const char* name,
                                               const std::string& context) {
  const std::string where = context + ": attribute '" + name + "'";
  H5Handle attr = attribute_handle(LATHE_H5_CHECK(H5Aopen(object, name, H5P_DEFAULT), where));
  H5Handle type = datatype_handle(LATHE_H5_CHECK(H5Aget_type(attr.get()), where));
  H5Handle space = dataspace_handle(LATHE_H5_CHECK(H5Aget_space(attr.get()), where));
  const std::size_t count = element_count(space.get(), where);
  return read_strings(
      type.get(), count, [&](hid_t mem, void* buf) { return H5Aread(attr.get(), mem, buf); }, where);
}

std::string_view fixed_string_text(const char* p, std::size_t size, bool space_padded) {
  std::size_t n = strnlen(p, size);
  if (space_padded) {
    while (n > 0 && p[n - 1] == ' ') --n;
  }
  return {p, n};
}

std::vector<std::string> read_string_field(hid_t dataset, const char* member, const std::string& context) {
  const std::string where = context + ", field '" + member + "'";
  H5Handle type = datatype_handle(LATHE_H5_CHECK(H5Dget_type(dataset), where));
  const int index = H5Tget_member_index(type.get(), member);
  if (index < 0) {
    H5Eclear2(H5E_DEFAULT);
    throw InputError(where + ": no such field");
  }
  H5Handle field = datatype_handle(LATHE_H5_CHECK(H5Tget_member_type(type.get(), static_cast<unsigned>(index)), where));
  H5Handle space = dataspace_handle(LATHE_H5_CHECK(H5Dget_space(dataset), where));
  const std::size_t count = element_count(space.get(), where);
  return read_strings(
      field.get(), count,
      [&](hid_t mem, void* buf) {
        // The field alone: a record type holding just it, as the strings' memory type.
        const H5Handle record = datatype_handle(LATHE_H5_CHECK(H5Tcreate(H5T_COMPOUND, H5Tget_size(mem)), where));
        LATHE_H5_CHECK(H5Tinsert(record.get(), member, 0, mem), where);
        return H5Dread(dataset, record.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
      },
      where);
}

std::vector<std::string> read_string_dataset(hid_t dataset, const std::string& context) {
  H5Handle type = datatype_handle(LATHE_H5_CHECK(H5Dget_type(dataset), context));
  H5Handle space = dataspace_handle(LATHE_H5_CHECK(H5Dget_space(dataset), context));
  const std::size_t count = element_count(space.get(), context);
  return read_strings(
      type.get(), count,
      [&](hid_t mem, void* buf) { return H5Dread(dataset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf); },
      context);
}

void write_string_attribute(hid_t object, const char* name, const std::vector<std::string>& values,
                            const std::string& context) {
  const std::string where = context + ": attribute '" + name + "'";
  H5Handle type = datatype_handle(LATHE_H5_CHECK(H5Tcopy(H5T_C_S1), where));
  LATHE_H5_CHECK(H5Tset_size(type.get(), H5T_VARIABLE), where);
  LATHE_H5_CHECK(H5Tset_cset(type.get(), H5T_CSET_UTF8), where);
  const hsize_t n = values.size();
  H5Handle space = dataspace_handle(LATHE_H5_CHECK(H5Screate_simple(1, &n, nullptr), where));
  if (LATHE_H5_CHECK(H5Aexists(object, name), where) > 0) LATHE_H5_CHECK(H5Adelete(object, name), where);
  H5Handle attr = attribute_handle(
      LATHE_H5_CHECK(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), where));
  // HDF5 refuses a null buffer even for zero elements: give an empty list one dummy slot.
  std::vector<const char*> ptrs(std::max<std::size_t>(values.size(), 1), "");
  for (std::size_t i = 0; i < values.size(); ++i) ptrs[i] = values[i].c_str();
  LATHE_H5_CHECK(H5Awrite(attr.get(), type.get(), ptrs.data()), where);
}

void write_string_attribute(hid_t object, const char* name, const std::string& value,
                            const std::string& context) {
  const std::string where = context + ": attribute '" + name + "'";
  H5Handle type = datatype_handle(LATHE_H5_CHECK(H5Tcopy(H5T_C_S1), where));
  LATHE_H5_CHECK(H5Tset_size(type.get(), H5T_VARIABLE), where);
  LATHE_H5_CHECK(H5Tset_cset(type.get(), H5T_CSET_UTF8), where);
  H5Handle space = dataspace_handle(LATHE_H5_CHECK(H5Screate(H5S_SCALAR), where));
  if (LATHE_H5_CHECK(H5Aexists(object, name), where) > 0) LATHE_H5_CHECK(H5Adelete(object, name), where);
  H5Handle attr = attribute_handle(
      LATHE_H5_CHECK(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), where));
  const char* p = value.c_str();
  LATHE_H5_CHECK(H5Awrite(attr.get(), type.get(), &p), where);
}

namespace {

// The fixed-length, null-padded UTF-8 string type of `size` bytes (at least 1: HDF5 refuses 0).
H5Handle fixed_string_type(std::size_t size, const std::string& where) {
  H5Handle type = datatype_handle(LATHE_H5_CHECK(H5Tcopy(H5T_C_S1), where));
  LATHE_H5_CHECK(H5Tset_size(type.get(), std::max<std::size_t>(size, 1)), where);
  LATHE_H5_CHECK(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), where);
  LATHE_H5_CHECK(H5Tset_cset(type.get(), H5T_CSET_UTF8), where);
  return type;
}

// The fixed-length string type as long as the longest of `values`.
H5Handle fixed_string_type(const std::vector<std::string>& values, const std::string& where) {
  std::size_t longest = 1;
  for (const std::string& v : values) longest = std::max(longest, v.size());
  return fixed_string_type(longest, where);
}

// `values` laid out as HDF5 writes them with fixed_string_type: each in `size` bytes, null-padded.
// At least one element's room: HDF5 refuses a null buffer even for zero elements.
// `spare` bytes of capacity are left for what the caller appends (a checksum).
std::vector<char> pack_fixed(const std::vector<std::string>& values, std::size_t size, std::size_t spare = 0) {
  std::vector<char> buffer;
  buffer.reserve(std::max<std::size_t>(values.size(), 1) * size + spare);
  buffer.resize(std::max<std::size_t>(values.size(), 1) * size, '\0');
  for (std::size_t i = 0; i < values.size(); ++i) std::memcpy(buffer.data() + i * size, values[i].data(), values[i].size());
  return buffer;
}

void write_fixed_strings(hid_t object, const char* name, const std::vector<std::string>& values, hid_t space,
                         const std::string& where) {
  H5Handle type = fixed_string_type(values, where);
  const std::vector<char> buffer = pack_fixed(values, H5Tget_size(type.get()));
  if (LATHE_H5_CHECK(H5Aexists(object, name), where) > 0) LATHE_H5_CHECK(H5Adelete(object, name), where);
  H5Handle attr = attribute_handle(
      LATHE_H5_CHECK(H5Acreate2(object, name, type.get(), space, H5P_DEFAULT, H5P_DEFAULT), where));
  LATHE_H5_CHECK(H5Awrite(attr.get(), type.get(), buffer.data()), where);
}

}  // namespace

void write_fixed_string_attribute(hid_t object, const char* name, const std::vector<std::string>& values,
                                  const std::string& context) {
  const std::string where = context + ": attribute '" + name + "'";
  const hsize_t n = values.size();
  H5Handle space = dataspace_handle(LATHE_H5_CHECK(H5Screate_simple(1, &n, nullptr), where));
  write_fixed_strings(object, name, values, space.get(), where);
}

void write_fixed_string_attribute(hid_t object, const char* name, const std::string& value,
                                  const std::string& context) {
  const std::string where = context + ": attribute '" + name + "'";
  H5Handle space = dataspace_handle(LATHE_H5_CHECK(H5Screate(H5S_SCALAR), where));
  write_fixed_strings(object, name, {value}, space.get(), where);
}

void keep_attributes_compact(hid_t plist, const std::string& context) {
  // 65535 is the most attributes HDF5 lets an object header hold compactly; min_dense 0: never
  // convert back and forth. An attribute message over 64 KiB still goes to dense storage: callers
  // keep longer text out of attributes.
  LATHE_H5_CHECK(H5Pset_attr_phase_change(plist, 65535, 0), context);
}

void write_int_attribute(hid_t object, const char* name, long long value, const std::string& context) {
  const std::string where = context + ": attribute '" + name + "'";
  H5Handle space = dataspace_handle(LATHE_H5_CHECK(H5Screate(H5S_SCALAR), where));
  if (LATHE_H5_CHECK(H5Aexists(object, name), where) > 0) LATHE_H5_CHECK(H5Adelete(object, name), where);
  H5Handle attr = attribute_handle(LATHE_H5_CHECK(
      H5Acreate2(object, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), where));
  LATHE_H5_CHECK(H5Awrite(attr.get(), H5T_NATIVE_LLONG, &value), where);
}

namespace {
herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}
}  // namespace

std::vector<std::string> list_group(hid_t group, const std::string& context) {
  std::vector<std::string> names;
  // Creation order when the group tracks it (Lathe's own files do), else name order.
  H5Handle gcpl = plist_handle(LATHE_H5_CHECK(H5Gget_create_plist(group), context));
  unsigned flags = 0;
  LATHE_H5_CHECK(H5Pget_link_creation_order(gcpl.get(), &flags), context);
  const H5_index_t index = (flags & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  hsize_t idx = 0;
  LATHE_H5_CHECK(H5Literate(group, index, H5_ITER_INC, &idx, collect_name, &names), context);
  return names;
}

bool link_exists(hid_t file, const char* name) {
  silence_errors_in_this_thread();
  const htri_t e = H5Lexists(file, name, H5P_DEFAULT);
  if (e <= 0) H5Eclear2(H5E_DEFAULT);
  return e > 0;
}

namespace {

// The sums a run of `words` (at most 360) big-endian 16-bit words adds to HDF5's Fletcher32 sums:
// `plain` gets their sum, `weighted` the sum of word k (from 0) times words - k, which is what
// adding the running sum1 to sum2 after each word adds. Independent products instead of one chain
// of additions (sum2 waiting on sum1 every word): several times faster, and vectorized for AVX2.
// Neither overflows: 360 x 65535 and 65535 x (360 x 361 / 2) are below 2^32.
LATHE_VECTOR_CLONES void fletcher32_run(const unsigned char* data, std::uint32_t words, std::uint32_t& plain,
                                        std::uint32_t& weighted) {
  std::uint32_t s = 0, ws = 0;
  for (std::uint32_t k = 0; k < words; ++k) {
    const std::uint32_t w = static_cast<std::uint32_t>(data[2 * k]) << 8 | data[2 * k + 1];
    s += w;
    ws += (words - k) * w;
  }
  plain = s;
  weighted = ws;
}

// HDF5's Fletcher32 checksum (H5_checksum_fletcher32, not part of its API): the bytes as
// big-endian 16-bit words (an odd last byte is the high byte of a last word), both sums folded
// to 16 bits every 360 words, before they could overflow. Per run of 360 words, sum2 gains run x
// sum1 plus the run's weighted sum and sum1 the run's sum: the same integers as HDF5's word by
// word loop (which never wraps), so the same bits.
std::uint32_t fletcher32(const unsigned char* data, std::size_t bytes) {
  std::uint64_t sum1 = 0, sum2 = 0;
  for (std::size_t words = bytes / 2; words > 0;) {
    const auto run = static_cast<std::uint32_t>(std::min<std::size_t>(words, 360));
    std::uint32_t plain = 0, weighted = 0;
    fletcher32_run(data, run, plain, weighted);
    words -= run;
    data += 2 * std::size_t{run};
    sum2 += run * sum1 + weighted;
    sum1 += plain;
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  }
  if (bytes % 2 != 0) {
    sum1 += static_cast<std::uint32_t>(*data) << 8;
    sum2 += sum1;
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  }
  sum1 = (sum1 & 0xffff) + (sum1 >> 16);
  sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  return static_cast<std::uint32_t>(sum2 << 16 | sum1);
}

// Appends the Fletcher32 checksum of `chunk`'s bytes as HDF5's filter stores it: little-endian
// (HDF5's UINT32ENCODE).
template <typename Bytes>
void append_fletcher32(Bytes& chunk) {
  const std::uint32_t sum =
      fletcher32(reinterpret_cast<const unsigned char*>(chunk.data()), chunk.size());
  for (int i = 0; i < 4; ++i) {
    chunk.push_back(static_cast<typename Bytes::value_type>(sum >> (8 * i)));
  }
}

// Whether the 4 bytes after the first `bytes` at `data` (little-endian) are their checksum, as
// HDF5's Fletcher32 filter checks it on reading: it accepts the sum with the two bytes of each
// 16-bit half swapped too (what HDF5 before 1.6.3 wrote on little-endian hosts).
bool fletcher32_matches(const unsigned char* data, std::size_t bytes) {
  std::uint32_t stored = 0;
  for (int i = 0; i < 4; ++i) stored |= static_cast<std::uint32_t>(data[bytes + i]) << (8 * i);
  const std::uint32_t sum = fletcher32(data, bytes);
  const std::uint32_t swapped = (sum & 0x00ff00ffu) << 8 | (sum >> 8 & 0x00ff00ffu);
  return stored == sum || stored == swapped;
}

// The one chunk of a compressed write_checksummed dataset as HDF5's filters store it: shuffled,
// deflated at `level` (a zlib stream, made by libdeflate), then its Fletcher32 checksum appended.
// Written with H5Dwrite_chunk, HDF5's own filters read it back: HDF5's deflate runs zlib, which
// took twice libdeflate's time on a model's weights (tens of megabytes, the longest part of saving
// one).
std::vector<unsigned char> filtered_chunk(const void* values, std::size_t bytes,
                                          std::size_t element_size, int level) {
  std::vector<unsigned char> shuffled(bytes);
  shuffle({static_cast<const unsigned char*>(values), bytes}, element_size, shuffled);
  std::vector<unsigned char> chunk;
  Deflater(level).deflate(shuffled, chunk);
  append_fletcher32(chunk);
  return chunk;
}

// Whether deflating `bytes` of elements of `element_size` pays: 8 windows of 64 KB spread over
// them, shuffled and deflated as the whole would be, must shrink to half or less. An fm's factors
// start random and stay so (a few percent smaller for seconds of deflate on a large model); a
// table of 2^24 hashed crosses, mostly unseen slots (zeros), shrinks many times, and quickly. In
// between, a linear model's 8.6M weights over hashed ids, 58% zeros, shrank to 55% (34 -> 19 MB)
// in 0.22 s of deflate, the longest part of saving it: stored as they are.
bool worth_deflating(const void* values, std::size_t bytes, std::size_t element_size, int level) {
  constexpr std::size_t kWindows = 8, kWindowBytes = std::size_t{1} << 16;
  const std::size_t window = std::min(kWindowBytes, bytes / kWindows) / element_size * element_size;
  if (window == 0) return true;
  Deflater deflater(level);
  std::vector<unsigned char> shuffled(window), packed;
  std::size_t sampled = 0, kept = 0;
  for (std::size_t w = 0; w < kWindows; ++w) {
    const std::size_t at = (bytes - window) / (kWindows - 1) * w / element_size * element_size;
    shuffle({static_cast<const unsigned char*>(values) + at, window}, element_size, shuffled);
    deflater.deflate(shuffled, packed);
    sampled += window;
    kept += packed.size();
  }
  return kept * 2 <= sampled;
}

// write_checksummed's deflate level (zlib's 1: the fastest).
constexpr unsigned kDeflateLevel = 1;

}  // namespace

template <typename T>
ChecksummedChunk checksummed_chunk(const std::vector<T>& values) {
  const std::size_t bytes = values.size() * sizeof(T);
  const auto level = static_cast<int>(kDeflateLevel);
  ChecksummedChunk chunk;
  chunk.deflated =
      bytes >= kCompressedDatasetBytes && worth_deflating(values.data(), bytes, sizeof(T), level);
  if (chunk.deflated) {
    chunk.bytes = filtered_chunk(values.data(), bytes, sizeof(T), level);
    return chunk;
  }
  // One copy of the values, with room for the checksum: written as a chunk, HDF5 neither copies
  // them into its chunk buffer nor again into its Fletcher32 filter's output.
  const auto* data = reinterpret_cast<const unsigned char*>(values.data());
  chunk.bytes.reserve(bytes + 4);
  chunk.bytes.assign(data, data + bytes);
  append_fletcher32(chunk.bytes);
  return chunk;
}

namespace {

// write_checksummed and write_checksummed_chunk: `count` values, given (`values`) or not (then
// `chunk` is, and the host is little-endian).
template <typename T>
void write_checksummed_values(hid_t file, const char* name, const std::vector<T>* values, std::size_t count,
                              const std::vector<hsize_t>& shape, const std::string& context,
                              const ChecksummedChunk* chunk) {
  const std::string where = context + ": dataset '" + name + "'";
  hsize_t elements = 1;
  for (hsize_t n : shape) elements *= n;
  if (elements != count) {
    throw Error(where + ": " + std::to_string(count) + " values for a shape of " + std::to_string(elements));
  }
  ChecksummedChunk made;
  if (!chunk) {
    made = checksummed_chunk(*values);
    chunk = &made;
  }
  if (!chunk->deflated && chunk->bytes.size() != count * sizeof(T) + 4) {
    throw Error(where + ": the chunk given was not made of these values");
  }
  H5Handle space = h5::dataspace_handle(
      LATHE_H5_CHECK(H5Screate_simple(static_cast<int>(shape.size()), shape.data(), nullptr), where));
  H5Handle dcpl = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), where));
  // Fletcher32 needs a chunked layout: one chunk holds the whole (small) dataset.
  std::vector<hsize_t> chunk_shape = shape;
  for (auto& c : chunk_shape) c = std::max<hsize_t>(c, 1);
  LATHE_H5_CHECK(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk_shape.size()), chunk_shape.data()),
                 where);
  if (chunk->deflated) {
    // A large table (hashed crosses: mostly zeros) is shuffled and deflated before the checksum,
    // which then covers the stored bytes. Deflate is mandatory, never skipped, so that the one
    // chunk keeps every filter applied (require_one_whole_chunk).
    LATHE_H5_CHECK(H5Pset_shuffle(dcpl.get()), where);
    LATHE_H5_CHECK(
        H5Pset_filter(dcpl.get(), H5Z_FILTER_DEFLATE, H5Z_FLAG_MANDATORY, 1, &kDeflateLevel),
        where);
  }
  LATHE_H5_CHECK(H5Pset_fletcher32(dcpl.get()), where);
  H5Handle ds = h5::dataset_handle(LATHE_H5_CHECK(
      H5Dcreate2(file, name, H5Types<T>::file(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), where));
  if (count == 0) return;
  // The chunk holds the values' bytes as they are in memory: the file's type must be the memory's
  // (a little-endian host), else HDF5 converts them and filters them itself.
  if (LATHE_H5_CHECK(H5Tequal(H5Types<T>::file(), H5Types<T>::memory()), where) > 0) {
    const std::vector<hsize_t> origin(shape.size(), 0);
    LATHE_H5_CHECK(H5Dwrite_chunk(ds.get(), H5P_DEFAULT, 0, origin.data(), chunk->bytes.size(),
                                  chunk->bytes.data()),
                   where);
    return;
  }
  if (!values) throw Error(where + ": a chunk without its values needs a little-endian host");
  LATHE_H5_CHECK(
      H5Dwrite(ds.get(), H5Types<T>::memory(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values->data()),
      where);
}

}  // namespace

template <typename T>
void write_checksummed(hid_t file, const char* name, const std::vector<T>& values,
                       const std::vector<hsize_t>& shape, const std::string& context,
                       const ChecksummedChunk* chunk) {
  write_checksummed_values(file, name, &values, values.size(), shape, context, chunk);
}

template <typename T>
void write_checksummed_chunk(hid_t file, const char* name, std::size_t count, const std::vector<hsize_t>& shape,
                             const std::string& context, const ChecksummedChunk& chunk) {
  write_checksummed_values<T>(file, name, nullptr, count, shape, context, &chunk);
}

namespace {

// A dataset written by write_checksummed or write_checksummed_strings has one chunk, at the origin,
// stored with every filter (Fletcher32) applied. Files in the 1.8 format index it with a version 1
// B-tree, which has no checksum: a changed byte in its key could move the chunk out of the dataset
// (which then reads as fill values, no error) or mark Fletcher32 as skipped. InputError if not so.
void require_one_whole_chunk(hid_t dataset, hid_t space, const std::string& where) {
  const auto damaged = [&](const std::string& what) {
    H5Eclear2(H5E_DEFAULT);
    return InputError(where + ": damaged chunk index (" + what + ")");
  };
  hsize_t chunks = 0;
  if (H5Dget_num_chunks(dataset, space, &chunks) < 0) throw damaged(last_error_message());
  if (chunks != 1) throw damaged(std::to_string(chunks) + " chunks where one was written");
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 1 || rank > H5S_MAX_RANK) throw damaged("rank " + std::to_string(rank));
  std::vector<hsize_t> offset(static_cast<std::size_t>(rank), 0);
  unsigned skipped_filters = 0;
  haddr_t address = 0;
  hsize_t size = 0;
  if (H5Dget_chunk_info(dataset, space, 0, offset.data(), &skipped_filters, &address, &size) < 0) {
    throw damaged(last_error_message());
  }
  if (skipped_filters != 0) throw damaged("its checksum filter is marked as skipped");
  for (hsize_t o : offset) {
    if (o != 0) throw damaged("the chunk is not at the dataset's origin");
  }
}

}  // namespace

template <typename T>
std::vector<T> read_checksummed(hid_t file, const char* name, std::size_t expected, const std::string& context) {
  const std::string where = context + ": dataset '" + name + "'";
  if (!link_exists(file, name)) {
    if (expected == 0) return {};
    throw InputError(where + " is missing");
  }
  H5Handle ds = h5::dataset_handle(LATHE_H5_CHECK(H5Dopen2(file, name, H5P_DEFAULT), where));
  H5Handle space = h5::dataspace_handle(LATHE_H5_CHECK(H5Dget_space(ds.get()), where));
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0 || static_cast<std::size_t>(n) != expected) {
    throw InputError(where + " has " + std::to_string(n) + " values, expected " + std::to_string(expected));
  }
  if (expected > 0) require_one_whole_chunk(ds.get(), space.get(), where);
  std::vector<T> out(expected);
  if (expected > 0 && H5Dread(ds.get(), H5Types<T>::memory(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
    const std::string why = h5::last_error_message();
    H5Eclear2(H5E_DEFAULT);
    throw InputError(where + " cannot be read (checksum mismatch or damaged file?): " + why);
  }
  return out;
}

template ChecksummedChunk checksummed_chunk<float>(const std::vector<float>&);
template ChecksummedChunk checksummed_chunk<double>(const std::vector<double>&);
template ChecksummedChunk checksummed_chunk<long>(const std::vector<long>&);
template ChecksummedChunk checksummed_chunk<long long>(const std::vector<long long>&);
template ChecksummedChunk checksummed_chunk<unsigned int>(const std::vector<unsigned int>&);
template void write_checksummed<float>(hid_t, const char*, const std::vector<float>&,
                                       const std::vector<hsize_t>&, const std::string&,
                                       const ChecksummedChunk*);
template void write_checksummed<double>(hid_t, const char*, const std::vector<double>&,
                                        const std::vector<hsize_t>&, const std::string&,
                                        const ChecksummedChunk*);
template void write_checksummed<long>(hid_t, const char*, const std::vector<long>&,
                                      const std::vector<hsize_t>&, const std::string&,
                                      const ChecksummedChunk*);
template void write_checksummed<long long>(hid_t, const char*, const std::vector<long long>&,
                                           const std::vector<hsize_t>&, const std::string&,
                                           const ChecksummedChunk*);
template void write_checksummed<unsigned int>(hid_t, const char*, const std::vector<unsigned int>&,
                                              const std::vector<hsize_t>&, const std::string&,
                                              const ChecksummedChunk*);
template void write_checksummed_chunk<long>(hid_t, const char*, std::size_t, const std::vector<hsize_t>&,
                                            const std::string&, const ChecksummedChunk&);
template void write_checksummed_chunk<long long>(hid_t, const char*, std::size_t, const std::vector<hsize_t>&,
                                                 const std::string&, const ChecksummedChunk&);
template std::vector<float> read_checksummed<float>(hid_t, const char*, std::size_t, const std::string&);
template std::vector<double> read_checksummed<double>(hid_t, const char*, std::size_t, const std::string&);
template std::vector<long> read_checksummed<long>(hid_t, const char*, std::size_t, const std::string&);
template std::vector<long long> read_checksummed<long long>(hid_t, const char*, std::size_t, const std::string&);
template std::vector<unsigned int> read_checksummed<unsigned int>(hid_t, const char*, std::size_t, const std::string&);

namespace {

// Creates write_checksummed_strings' dataset of `count` strings of `type` (one chunk, Fletcher32)
// and writes `chunk`, their bytes and then their checksum, as that chunk.
void write_strings_chunk(hid_t file, const char* name, hid_t type, hsize_t count, const char* chunk,
                         std::size_t chunk_bytes, const std::string& where) {
  H5Handle space = dataspace_handle(LATHE_H5_CHECK(H5Screate_simple(1, &count, nullptr), where));
  H5Handle dcpl = plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), where));
  // Fletcher32 needs a chunked layout: one chunk holds every string.
  const hsize_t chunk_shape = std::max<hsize_t>(count, 1);
  LATHE_H5_CHECK(H5Pset_chunk(dcpl.get(), 1, &chunk_shape), where);
  LATHE_H5_CHECK(H5Pset_fletcher32(dcpl.get()), where);
  H5Handle ds = dataset_handle(LATHE_H5_CHECK(
      H5Dcreate2(file, name, type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), where));
  if (count == 0) return;
  const hsize_t origin = 0;
  LATHE_H5_CHECK(H5Dwrite_chunk(ds.get(), H5P_DEFAULT, 0, &origin, chunk_bytes, chunk), where);
}

// Reads the strings of `ds` (`count` > 0 of fixed-length `type`, one whole chunk: see
// require_one_whole_chunk) as their stored chunk, checking its Fletcher32 checksum here as HDF5's
// filter would. A single string is returned in the buffer it was read into. Empty when the dataset
// has another filter than Fletcher32, or chunks of another shape than its own: then HDF5 reads it.
std::vector<std::string> read_fletcher32_strings(hid_t ds, hid_t type, hid_t space,
                                                 std::size_t count, const std::string& where) {
  H5Handle dcpl = plist_handle(LATHE_H5_CHECK(H5Dget_create_plist(ds), where));
  if (H5Pget_layout(dcpl.get()) != H5D_CHUNKED || H5Pget_nfilters(dcpl.get()) != 1) return {};
  unsigned flags = 0, config = 0;
  std::size_t parameters = 0;
  if (H5Pget_filter2(dcpl.get(), 0, &flags, &parameters, nullptr, 0, nullptr, &config) !=
      H5Z_FILTER_FLETCHER32) {
    return {};
  }
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 1 || rank > H5S_MAX_RANK) return {};
  std::vector<hsize_t> shape(static_cast<std::size_t>(rank)), chunk_shape(shape.size());
  if (H5Sget_simple_extent_dims(space, shape.data(), nullptr) != rank ||
      H5Pget_chunk(dcpl.get(), rank, chunk_shape.data()) != rank || chunk_shape != shape) {
    H5Eclear2(H5E_DEFAULT);
    return {};
  }
  const std::size_t size = H5Tget_size(type);
  if (size == 0 || count > (std::numeric_limits<std::size_t>::max() - 4) / size) return {};
  const std::size_t text_bytes = count * size;
  const std::vector<hsize_t> origin(shape.size(), 0);
  hsize_t stored = 0;
  LATHE_H5_CHECK(H5Dget_chunk_storage_size(ds, origin.data(), &stored), where);
  if (stored != text_bytes + 4) {
    // The size is in the chunk index, which the 1.8 file format's version 1 B-tree does not check.
    throw InputError(where + ": damaged chunk index (" + std::to_string(stored) +
                     " bytes stored where " + std::to_string(text_bytes + 4) + " were written)");
  }
  std::string chunk(text_bytes + 4, '\0');
  std::uint32_t skipped_filters = 0;
  if (H5Dread_chunk(ds, H5P_DEFAULT, origin.data(), &skipped_filters, chunk.data()) < 0) {
    const std::string why = last_error_message();
    H5Eclear2(H5E_DEFAULT);
    throw InputError(where + ": " + why + " (checksum mismatch or damaged file?)");
  }
  if (skipped_filters != 0) {
    throw InputError(where + ": damaged chunk index (its checksum filter is marked as skipped)");
  }
  if (!fletcher32_matches(reinterpret_cast<const unsigned char*>(chunk.data()), text_bytes)) {
    // Worded as HDF5's own filter words it, so both read paths give one message.
    throw InputError(where +
                     ": can't read data: data error detected by Fletcher32 checksum (checksum mismatch or "
                     "damaged file?)");
  }
  const bool space_padded = H5Tget_strpad(type) == H5T_STR_SPACEPAD;
  std::vector<std::string> out;
  if (count == 1) {
    chunk.resize(fixed_string_text(chunk.data(), size, space_padded).size());
    out.push_back(std::move(chunk));
    return out;
  }
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    out.emplace_back(fixed_string_text(chunk.data() + i * size, size, space_padded));
  }
  return out;
}

}  // namespace

void write_checksummed_strings(hid_t file, const char* name, const std::vector<std::string>& values,
                               const std::string& context) {
  const std::string where = context + ": dataset '" + name + "'";
  H5Handle type = fixed_string_type(values, where);
  const std::size_t size = H5Tget_size(type.get());
  // The strings laid out as HDF5 stores them (each in `size` bytes, null-padded), then the
  // checksum: HDF5 copies none of it.
  std::vector<char> chunk = pack_fixed(values, size, 4);
  chunk.resize(values.size() * size);  // (pack_fixed leaves room for one string even when none)
  append_fletcher32(chunk);
  write_strings_chunk(file, name, type.get(), values.size(), chunk.data(), chunk.size(), where);
}

void write_checksummed_strings(hid_t file, const char* name, std::string&& value,
                               const std::string& context) {
  const std::string where = context + ": dataset '" + name + "'";
  std::string chunk = std::move(value);
  // A string type has at least one byte: an empty string is stored as one NUL.
  if (chunk.empty()) chunk.push_back('\0');
  H5Handle type = fixed_string_type(chunk.size(), where);
  append_fletcher32(chunk);
  write_strings_chunk(file, name, type.get(), 1, chunk.data(), chunk.size(), where);
}

std::vector<std::string> read_checksummed_strings(hid_t file, const char* name, const std::string& context) {
  const std::string where = context + ": dataset '" + name + "'";
  H5Handle ds = dataset_handle(LATHE_H5_CHECK(H5Dopen2(file, name, H5P_DEFAULT), where));
  H5Handle type = datatype_handle(LATHE_H5_CHECK(H5Dget_type(ds.get()), where));
  // Only fixed-length strings: variable-length ones would be read from the unchecked global heap.
  if (H5Tget_class(type.get()) != H5T_STRING || LATHE_H5_CHECK(H5Tis_variable_str(type.get()), where) > 0) {
    throw InputError(where + ": expected fixed-length strings");
  }
  H5Handle space = dataspace_handle(LATHE_H5_CHECK(H5Dget_space(ds.get()), where));
  const hssize_t count = LATHE_H5_CHECK(H5Sget_simple_extent_npoints(space.get()), where);
  if (count > 0) {
    require_one_whole_chunk(ds.get(), space.get(), where);
    // Read through HDF5, a profile's text of tens of megabytes was copied three times: from the
    // file into HDF5's chunk buffer, from there into the read's, and into its string.
    std::vector<std::string> out = read_fletcher32_strings(ds.get(), type.get(), space.get(),
                                                           static_cast<std::size_t>(count), where);
    if (!out.empty()) return out;
  }
  try {
    return read_string_dataset(ds.get(), where);
  } catch (const Hdf5Error& e) {
    throw InputError(std::string(e.what()) + " (checksum mismatch or damaged file?)");
  }
}

std::vector<float> read_finite_floats(hid_t file, const char* name, std::size_t expected, const std::string& context) {
  std::vector<float> out = read_checksummed<float>(file, name, expected, context);
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) {
      throw InputError(context + ": dataset '" + name + "': value " + std::to_string(i) + " is not finite");
    }
  }
  return out;
}

bool is_boolean_enum(hid_t type) {
  const int members = H5Tget_nmembers(type);
  bool boolean = members == 2;
  for (int i = 0; boolean && i < members; ++i) {
    char* name = H5Tget_member_name(type, static_cast<unsigned>(i));
    boolean = name && (std::strcmp(name, "FALSE") == 0 || std::strcmp(name, "TRUE") == 0);
    if (name) H5free_memory(name);
  }
  return boolean;
}

H5Handle enum_memory_type(hid_t enum_type, const std::string& context) {
  H5Handle native = datatype_handle(LATHE_H5_CHECK(H5Tget_native_type(enum_type, H5T_DIR_ASCEND), context));
  if (!is_boolean_enum(enum_type)) return native;
  H5Handle base = datatype_handle(LATHE_H5_CHECK(H5Tget_super(native.get()), context));
  H5Handle boolean = datatype_handle(LATHE_H5_CHECK(H5Tenum_create(base.get()), context));
  for (const int value : {0, 1}) {
    // The member's value in the base type (HDF5 converts 0 and 1 to any integer exactly).
    alignas(8) unsigned char bytes[16] = {};
    std::memcpy(bytes, &value, sizeof value);
    LATHE_H5_CHECK(H5Tconvert(H5T_NATIVE_INT, base.get(), 1, bytes, nullptr, H5P_DEFAULT), context);
    LATHE_H5_CHECK(H5Tenum_insert(boolean.get(), value == 0 ? "FALSE" : "TRUE", bytes), context);
  }
  return boolean;
}

}  // namespace lathe::h5
