#include "runtime/host_array.h"

#include <sys/mman.h>

namespace lathe {

void* allocate_huge_page_bytes(std::size_t& bytes) noexcept {
  constexpr std::size_t kHugePage = std::size_t{2} << 20;
  bytes = (std::max<std::size_t>(bytes, 1) + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(kHugePage, bytes);
#ifdef MADV_HUGEPAGE
  if (p) madvise(p, bytes, MADV_HUGEPAGE);  // advice only: without huge pages it still works
#endif
  return p;
}

}  // namespace lathe
