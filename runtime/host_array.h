// A resizable array of trivially copyable T in host memory of a chosen kind:
//   plain       malloc;
//   pinned      page-locked by the GPU driver (cudaMallocHost), so that copies to the device run
//               asynchronously at the bus's speed: the windows of streamed training on a GPU. Plain
//               memory where the driver refuses (no GPU, no CUDA in the binary);
//   huge_pages  2 MiB aligned and advised to transparent huge pages (madvise): arrays read at
//               random rows, like the CPU model's row-major copy of the training set where its
//               steps gather their own rows (cpu_training_rows_memory), where with 4 KiB pages
//               nearly every random row is also a TLB miss (and under a hypervisor's nested paging
//               a TLB miss costs more than the cache miss itself).
// The subset of std::vector's interface the loaders use; move-only; resize() keeps the contents up
// to the smaller size and leaves new elements uninitialized.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "runtime/cuda_backend.h"

namespace lathe {

enum class HostMemory { plain, pinned, huge_pages };

// At least `bytes` (rounded up to whole 2 MiB pages, the rounded size written back), aligned to
// 2 MiB and advised to transparent huge pages; nullptr when out of memory. Freed with std::free.
// (Out of line: <sys/mman.h>'s macros would leak into every includer.)
void* allocate_huge_page_bytes(std::size_t& bytes) noexcept;

template <typename T>
class HostArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  explicit HostArray(HostMemory kind = HostMemory::plain) : kind_(kind) {}
  // A moved-from array is empty and holds no memory, so a later resize() allocates afresh.
  HostArray(HostArray&& other) noexcept
      : kind_(other.kind_),
        storage_pinned_(std::exchange(other.storage_pinned_, false)),
        storage_(std::move(other.storage_)),
        size_(std::exchange(other.size_, 0)),
        capacity_(std::exchange(other.capacity_, 0)) {}
  HostArray& operator=(HostArray&& other) noexcept {
    kind_ = other.kind_;
    storage_pinned_ = std::exchange(other.storage_pinned_, false);
    storage_ = std::move(other.storage_);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
    return *this;
  }
  HostArray(const HostArray&) = delete;
  HostArray& operator=(const HostArray&) = delete;

  // The kind of memory the next allocation asks for (the current one, if any, is kept).
  void set_memory(HostMemory kind) { kind_ = kind; }
  // Whether the memory held now is pinned.
  bool pinned() const { return storage_pinned_; }

  void resize(std::size_t n) {
    if (n > capacity_) grow(n);
    size_ = n;
  }
  template <typename It>
  void assign(It first, It last) {
    resize(static_cast<std::size_t>(std::distance(first, last)));
    std::copy(first, last, data());
  }
  void clear() { size_ = 0; }

  T* data() { return static_cast<T*>(storage_.get()); }
  const T* data() const { return static_cast<const T*>(storage_.get()); }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](std::size_t i) { return data()[i]; }
  const T& operator[](std::size_t i) const { return data()[i]; }
  T* begin() { return data(); }
  T* end() { return data() + size_; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size_; }

 private:
  void grow(std::size_t n) {
    std::size_t bytes = std::max<std::size_t>(n * sizeof(T), 1);
    std::shared_ptr<void> fresh = kind_ == HostMemory::pinned ? allocate_pinned_host_bytes(bytes) : nullptr;
    const bool fresh_pinned = fresh != nullptr;
    if (!fresh) {
      void* p = nullptr;
      if (kind_ == HostMemory::huge_pages) {
        p = allocate_huge_page_bytes(bytes);
      } else {
        p = std::malloc(bytes);
      }
      if (!p) throw std::bad_alloc();
      fresh = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
    }
    if (size_ > 0) std::copy(data(), data() + size_, static_cast<T*>(fresh.get()));
    storage_ = std::move(fresh);
    storage_pinned_ = fresh_pinned;
    capacity_ = bytes / sizeof(T);
  }

  HostMemory kind_ = HostMemory::plain;
  bool storage_pinned_ = false;
  std::shared_ptr<void> storage_;
  std::size_t size_ = 0, capacity_ = 0;
};

}  // namespace lathe
