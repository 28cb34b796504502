// An array of trivially copyable T in memory the kernel is asked to back with transparent huge
// pages (2 MiB) where it can. For arrays read at random rows, like the CPU model's row-major copy
// of the training set: with 4 KiB pages nearly every random row is also a TLB miss, and under a
// hypervisor's nested paging a TLB miss costs more than the cache miss itself. Contents are
// uninitialized after resize(). Move-only.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>

namespace lathe {

template <typename T>
class HugePageArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  HugePageArray() = default;

  // Makes room for n elements (old contents are not kept); allocates only when growing.
  void resize(std::size_t n) {
    if (n > capacity_) {
      constexpr std::size_t kHugePage = std::size_t{2} << 20;
      const std::size_t bytes = (n * sizeof(T) + kHugePage - 1) / kHugePage * kHugePage;
      void* p = std::aligned_alloc(kHugePage, bytes);
      if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
      madvise(p, bytes, MADV_HUGEPAGE);  // advice only: without huge pages it still works
#endif
      data_.reset(static_cast<T*>(p));
      capacity_ = bytes / sizeof(T);
    }
    size_ = n;
  }

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  std::size_t size() const { return size_; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T[], Free> data_;
  std::size_t size_ = 0, capacity_ = 0;
};

}  // namespace lathe
