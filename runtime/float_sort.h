// An ascending sort of float32 values by radix (the profile's block sketches and the model
// file's prediction summary): the same order as std::sort, several times faster on large arrays.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lathe {

// Sorts `values` (no NaN, no -0.0: map them first, e.g. with sort_key in runtime/profile_cuda.h)
// ascending. `keys`, `spare` and `histogram` are scratch, reused from call to call. Below 1024
// values it is std::sort.
void sort_floats(std::vector<float>& values, std::vector<std::uint32_t>& keys, std::vector<std::uint32_t>& spare,
                 std::vector<std::size_t>& histogram);

// The same with scratch of its own.
void sort_floats(std::vector<float>& values);

}  // namespace lathe
