#include "io/heap_string_reader.h"

#include <bit>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "io/text_check.h"
#include "runtime/error.h"

namespace lathe {

namespace {

// The unsigned little-endian number of `bytes` bytes (at most 8) at `p`.
std::uint64_t little_endian(const unsigned char* p, std::size_t bytes) {
  if constexpr (std::endian::native == std::endian::little) {  // the common sizes in one load
    if (bytes == 8) {
      std::uint64_t v;
      std::memcpy(&v, p, 8);
      return v;
    }
    if (bytes == 4) {
      std::uint32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
  }
  std::uint64_t v = 0;
  for (std::size_t i = bytes; i-- > 0;) v = (v << 8) | p[i];
  return v;
}


// Bytes read at once for a collection: HDF5 makes none smaller (H5HG_MINSIZE), so one read mostly
// takes a whole collection.
constexpr std::size_t kFirstReadBytes = 4096;
// The most read at once before a collection's size is known (after that of a larger one).
constexpr std::size_t kLargestFirstReadBytes = std::size_t{1} << 20;
// A collection larger than this is left to HDF5 rather than read into memory: no table's strings
// come near it, a damaged size field might.
// Collections kept from one lookup to the next (the current one among them).
constexpr std::size_t kHeldCollections = 64;
constexpr std::uint64_t kLargestCollection = std::uint64_t{1} << 32;

}  // namespace

HeapStringReader::HeapStringReader(const ReadOnlyFile& file, HeapStringLayout layout,
                                   std::string where)
    : file_(file), layout_(layout), where_(std::move(where)), file_bytes_(file.size()) {}

HeapStringReader::Collection* HeapStringReader::collection(std::uint64_t address) {
  if (const auto it = collections_.find(address); it != collections_.end()) return &it->second;
  // "GCOL", version, 3 reserved and the size, padded to 8 bytes (H5HG_SIZEOF_HDR).
  const std::size_t header = (8 + layout_.length_bytes + 7) & ~std::size_t{7};
  if (address == 0 || address > std::numeric_limits<std::uint64_t>::max() - layout_.base_address)
    return nullptr;
  const std::uint64_t at = layout_.base_address + address;
  Collection c;
  // One read takes a whole collection of the size of the last one (a file's are mostly alike), into
  // a buffer that is not zeroed first: on a column of short strings, a second read and the zeroing
  // of each collection took a third of the time its rows took.
  std::size_t first_read = std::max(kFirstReadBytes, last_collection_bytes_);
  c.bytes.reset(new unsigned char[first_read]);
  if (!file_.read_exactly(c.bytes.get(), first_read, at)) {
    first_read = header;  // near the end of the file: the header says how much there is
    if (!file_.read_exactly(c.bytes.get(), header, at)) return nullptr;
  }
  const unsigned char* p = c.bytes.get();
  if (std::memcmp(p, "GCOL", 4) != 0 || p[4] != 1) return nullptr;
  const std::uint64_t size = little_endian(p + 8, layout_.length_bytes);
  // A size past the end of the file is damage HDF5 reports; it is not allocated here.
  if (size < header || size > kLargestCollection || size > file_bytes_ || at > file_bytes_ - size ||
      size > layout_.end_of_allocation || address > layout_.end_of_allocation - size)
    return nullptr;
  if (size > first_read) {
    std::unique_ptr<unsigned char[]> whole(new unsigned char[size]);
    std::memcpy(whole.get(), c.bytes.get(), first_read);
    if (!file_.read_exactly(whole.get() + first_read, size - first_read, at + first_read)) return nullptr;
    c.bytes = std::move(whole);
  }
  last_collection_bytes_ = static_cast<std::size_t>(std::min<std::uint64_t>(size, kLargestFirstReadBytes));
  // The objects, each an index (2 bytes), a reference count (2), 4 reserved and its size, padded to
  // 8 bytes (H5HG_SIZEOF_OBJHDR), then its data padded to 8 bytes; index 0 is free space.
  const std::size_t object_header = (8 + layout_.length_bytes + 7) & ~std::size_t{7};
  std::uint64_t pos = header;
  // An object that runs past the collection's end is not left to HDF5 either: HDF5 1.10 steps past
  // the end without a word (only an assertion checks it), leaves the objects after it unread, and
  // then copies a string from past its buffer (or from a null one): a segmentation fault.
  const auto past_the_end = [&](std::size_t index, std::uint64_t object_size) {
    return InputError(where_ + ": damaged: the global heap collection at byte " + std::to_string(at) + " (" +
                      std::to_string(size) + " bytes) holds an object " + std::to_string(index) + " of size " +
                      std::to_string(object_size) + " at its byte " + std::to_string(pos) +
                      ", past its end, which HDF5 cannot read");
  };
  while (pos + object_header <= size) {
    const unsigned char* o = c.bytes.get() + pos;
    const auto index = static_cast<std::size_t>(little_endian(o, 2));
    const std::uint64_t object_size = little_endian(o + 8, layout_.length_bytes);
    if (index == 0) {
      // Free space, its size counting its header: HDF5 steps over it (it is the collection's last
      // object in every file HDF5 writes), and never past one of size 0.
      if (object_size == 0) {
        throw InputError(where_ + ": damaged: the global heap collection at byte " +
                         std::to_string(at) + " holds an object 0 of size 0 at its byte " +
                         std::to_string(pos) + ", which HDF5 cannot read past");
      }
      if (object_size > size - pos) throw past_the_end(index, object_size);
      pos += object_size;
      continue;
    }
    const std::uint64_t data = pos + object_header;
    if (object_size > size - data) throw past_the_end(index, object_size);
    if (index >= c.objects.size()) c.objects.resize(index + 1);
    c.objects[index] = {data, object_size};
    pos = data + ((object_size + 7) & ~std::uint64_t{7});
  }
  // Rows written in order name the collections in order: a few suffice, and a file whose rows
  // scatter over thousands reads some again rather than holding them all.
  if (collections_.size() >= kHeldCollections) collections_.clear();
  return &collections_.emplace(address, std::move(c)).first->second;
}

bool HeapStringReader::read(std::int64_t first, std::int64_t count,
                            std::vector<std::string_view>& texts) {
  texts.assign(static_cast<std::size_t>(std::max<std::int64_t>(count, 0)), std::string_view());
  if (first < 0 || count < 0 || first + count > layout_.rows) return false;
  const std::size_t id_bytes = 4 + layout_.address_bytes + 4;
  ids_.resize(static_cast<std::size_t>(count) * id_bytes);
  if (count > 0 &&
      !file_.read_exactly(ids_.data(), ids_.size(),
                          layout_.file_offset + static_cast<std::uint64_t>(first) * id_bytes)) {
    return false;
  }
  // Each string is copied into text_ (its offset and length kept until the views are made at the
  // end, text_ growing meanwhile), so that no view points into a collection and the collections
  // held stay few however the rows scatter over them.
  // Room for every string at once (their lengths are in the ids), so that appending one is a copy.
  std::uint64_t total = 0;
  for (std::int64_t r = 0; r < count; ++r) total += little_endian(ids_.data() + static_cast<std::size_t>(r) * id_bytes, 4);
  // (At most 64 MB ahead: damaged ids may claim any length, and are refused below.)
  text_.resize(static_cast<std::size_t>(std::min<std::uint64_t>(total, std::uint64_t{64} << 20)));
  std::size_t used = 0;
  spans_.assign(static_cast<std::size_t>(count), {0, 0});
  std::uint64_t last_address = 0;
  Collection* last = nullptr;
  for (std::int64_t r = 0; r < count; ++r) {
    const unsigned char* id = ids_.data() + static_cast<std::size_t>(r) * id_bytes;
    const std::uint64_t length = little_endian(id, 4);
    if (length == 0) continue;  // "" or a null string
    const std::uint64_t address = little_endian(id + 4, layout_.address_bytes);
    const auto index = static_cast<std::size_t>(little_endian(id + 4 + layout_.address_bytes, 4));
    if (last == nullptr || address != last_address) {
      last = collection(address);
      if (last == nullptr) return false;
      last_address = address;
    }
    // A collection read whole but without the id's object, or with an object of another size: HDF5
    // reads such an id past the object's end (it crashed on an index past the last), so it is not
    // handed to HDF5.
    const bool held = index < last->objects.size() && last->objects[index].at != 0;
    if (!held || last->objects[index].size != length) {
      throw InputError(where_ + ": damaged: row " + std::to_string(first + r + 1) +
                       " names object " + std::to_string(index) + " of " + std::to_string(length) +
                       " bytes in the global heap collection at byte " +
                       std::to_string(layout_.base_address + address) + ", which " +
                       (held
                            ? "holds it with " + std::to_string(last->objects[index].size) + " bytes"
                            : std::string("does not hold it")));
    }
    const char* s = reinterpret_cast<const char*>(last->bytes.get() + last->objects[index].at);
    const std::size_t kept = c_string_length(s, static_cast<std::size_t>(length));
    if (text_.size() - used < kept) text_.resize(used + kept);  // (the ids' lengths bound the total)
    spans_[static_cast<std::size_t>(r)] = {used, kept};
    std::memcpy(text_.data() + used, s, kept);
    used += kept;
  }
  for (std::size_t r = 0; r < spans_.size(); ++r) {
    texts[r] = std::string_view(text_.data() + spans_[r].first, spans_[r].second);
  }
  return true;
}

}  // namespace lathe
