#include "io/validation_split.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "kernels/prepare_formulas.h"

namespace lathe {

double automatic_valid_fraction(std::int64_t rows) {
  // 0.2 and 0.05 as they are, not (0.2 n) / n, which is 0.19999999999999998 for 6,360 of the
  // sizes up to 50,000 rows (43,152, say): the model recorded that share, and --resume, which
  // compares shares, refused a checkpoint held out at 0.2 (given, or the default before it was
  // automatic) on the automatic fraction, and the reverse, though both split the rows alike.
  const double n = static_cast<double>(rows);
  if (rows <= 0 || 0.2 * n <= 10000.0) return 0.2;
  if (0.05 * n >= 10000.0) return 0.05;
  return 10000.0 / n;
}

RowMask validation_split(const RowMask& keep, const std::vector<float>& classes, Task task,
                         double fraction, std::uint64_t seed) {
  const std::int64_t rows = keep.rows();
  RowMask valid(rows, false);
  if (fraction <= 0) return valid;
  std::map<float, std::vector<std::pair<std::uint64_t, std::int64_t>>> by_class;
  for (std::int64_t r = 0; r < rows; ++r) {
    if (!keep.test(r)) continue;
    const float c = task == Task::regression ? 0.0f : classes[static_cast<std::size_t>(r)];
    by_class[c].push_back(
        {mix64(static_cast<std::uint64_t>(r) ^ mix64(seed + 0x51ed270b27e5f1a3ULL)), r});
  }
  for (auto& [c, members] : by_class) {
    // The `take` members of smallest hash: mix64 is a bijection, so the hashes are distinct and a
    // selection finds the same set a full sort would, in linear time.
    // At most all but one: a class of a single row (or of two at a fraction of 0.75 or more)
    // keeps a training row, so that no class is left to the validation rows alone (a binary task
    // would train on one class).
    const auto take = std::min(
        static_cast<std::size_t>(std::llround(fraction * static_cast<double>(members.size()))),
        members.size() - 1);
    if (take < members.size()) {
      std::nth_element(members.begin(), members.begin() + static_cast<std::ptrdiff_t>(take),
                       members.end());
    }
    for (std::size_t i = 0; i < take; ++i) valid.set(members[i].second, true);
  }
  return valid;
}

}  // namespace lathe
