// A resizable array of trivially copyable T in host memory, page-locked (pinned) when asked for and
// a GPU driver grants it, plain memory otherwise. Streamed training windows live in these: the GPU
// model copies a window to the device from pinned memory at the bus's full speed, asynchronously,
// on its copy stream. The CPU backend asks for plain memory. The subset of std::vector's interface
// the loaders use; move-only; contents are kept by resize() up to the smaller size.
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

template <typename T>
class HostArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  explicit HostArray(bool pinned = false) : pinned_(pinned) {}
  HostArray(HostArray&&) noexcept = default;
  HostArray& operator=(HostArray&&) noexcept = default;
  HostArray(const HostArray&) = delete;
  HostArray& operator=(const HostArray&) = delete;

  // Whether the next allocation asks for pinned memory (the current one, if any, is kept).
  void set_pinned(bool pinned) { pinned_ = pinned; }
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
    const std::size_t bytes = n * sizeof(T);
    std::shared_ptr<void> fresh = pinned_ ? allocate_pinned_host_bytes(bytes) : nullptr;
    const bool fresh_pinned = fresh != nullptr;
    if (!fresh) {
      void* p = std::malloc(std::max<std::size_t>(bytes, 1));
      if (!p) throw std::bad_alloc();
      fresh = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
    }
    if (size_ > 0) std::copy(data(), data() + size_, static_cast<T*>(fresh.get()));
    storage_ = std::move(fresh);
    storage_pinned_ = fresh_pinned;
    capacity_ = n;
  }

  bool pinned_ = false;
  bool storage_pinned_ = false;
  std::shared_ptr<void> storage_;
  std::size_t size_ = 0, capacity_ = 0;
};

}  // namespace lathe
