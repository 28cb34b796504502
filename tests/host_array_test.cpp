// HostArray (runtime/host_array.h): the window buffers of streamed training.
#include "runtime/host_array.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "runtime/device_context.h"

namespace lathe {
namespace {

TEST(HostArray, ResizeKeepsTheContentsAndAssignCopies) {
  HostArray<std::int32_t> a;
  EXPECT_TRUE(a.empty());
  a.resize(5);
  std::iota(a.begin(), a.end(), 10);
  a.resize(100000);  // grows: the first five survive the move to new memory
  ASSERT_EQ(a.size(), 100000u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a[i], 10 + i);
  a.resize(3);
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(a[2], 12);
  const std::vector<std::int32_t> v = {7, 8, 9, 10};
  a.assign(v.begin(), v.end());
  EXPECT_EQ(std::vector<std::int32_t>(a.begin(), a.end()), v);
  a.clear();
  EXPECT_TRUE(a.empty());
}

// Pinned memory is asked of the GPU driver; without one (or without CUDA in the binary) the array
// says so and works from plain memory all the same.
TEST(HostArray, PinnedWhereAGpuAnswersElsePlainMemory) {
  HostArray<float> a(HostMemory::pinned);
  a.resize(1 << 20);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i);
  EXPECT_EQ(a[12345], 12345.0f);
  const SystemInfo info = query_system();
  EXPECT_EQ(a.pinned(), info.cuda_usable);
  HostArray<float> plain(HostMemory::plain);
  plain.resize(10);
  EXPECT_FALSE(plain.pinned());
  HostArray<float> moved = std::move(a);
  EXPECT_EQ(moved[12345], 12345.0f);
  EXPECT_EQ(moved.pinned(), info.cuda_usable);
}

// A moved-from array is empty and holds nothing: growing it again allocates, instead of writing
// through the memory it gave away.
TEST(HostArray, AMovedFromArrayIsEmptyAndGrowsAfresh) {
  HostArray<std::int32_t> a;
  a.resize(1000);
  std::iota(a.begin(), a.end(), 0);
  HostArray<std::int32_t> b = std::move(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.data(), nullptr);
  a.resize(10);
  ASSERT_NE(a.data(), nullptr);
  ASSERT_NE(a.data(), b.data());
  std::iota(a.begin(), a.end(), 100);
  EXPECT_EQ(b[9], 9);
  HostArray<std::int32_t> c;
  c = std::move(b);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_EQ(c[999], 999);
}

// Huge-page memory (the CPU model's row copy) is aligned to 2 MiB and works like any other.
TEST(HostArray, HugePagesAreAlignedAndKeepTheContents) {
  HostArray<float> a(HostMemory::huge_pages);
  a.resize(1000);
  std::iota(a.begin(), a.end(), 0.0f);
  a.resize(3'000'000);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % (std::uintptr_t{2} << 20), 0u);
  EXPECT_EQ(a[999], 999.0f);
  EXPECT_FALSE(a.pinned());
}

}  // namespace
}  // namespace lathe
