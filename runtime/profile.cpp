#include "runtime/profile.h"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <sstream>
#include <string>
#include <utility>

#include "runtime/error.h"
#include "runtime/float_sort.h"
#include "runtime/profile_cuda.h"

namespace lathe {

const ColumnProfile& DataProfile::column(const std::string& name) const {
  for (const ColumnProfile& c : columns) {
    if (c.name == name) return c;
  }
  std::string names;
  for (const ColumnProfile& c : columns) names += (names.empty() ? "" : ", ") + c.name;
  throw InputError("profile: no column named '" + name + "' (columns: " + names + ")");
}

DataProfile make_profile(const std::vector<ColumnInfo>& columns, const ProfileOptions& options) {
  DataProfile profile;
  profile.columns.reserve(columns.size());
  for (const ColumnInfo& info : columns) {
    ColumnProfile c;
    c.name = info.name;
    c.type = info.type;
    c.numeric.sketch = QuantileSketch(options.sketch_capacity);
    if (info.type == ColumnType::categorical) {
      c.categorical.labels = info.categories;
      c.categorical.counts.assign(info.categories.size(), 0);
    }
    profile.columns.push_back(std::move(c));
  }
  return profile;
}

std::int64_t ProfileLayout::category_slots() const {
  std::int64_t slots = 0;
  for (std::int64_t k : labels) slots += k + 1;
  return slots;
}

void BlockProfile::reset(const ProfileLayout& layout) {
  const std::size_t numeric = layout.numeric.size();
  kept_rows = 0;
  stats.assign(numeric, ColumnStats{});
  sketch_sizes.assign(numeric, 0);
  sketch_points.resize(numeric * static_cast<std::size_t>(layout.sketch_capacity));
  sketch_lower.resize(sketch_points.size());
  sketch_upper.resize(sketch_points.size());
  category_counts.assign(static_cast<std::size_t>(layout.category_slots()), 0);
  bad_codes.assign(layout.categorical.size(), -1.0f);
}

struct ProfileWorkspace::Impl {
  struct SortBuffers {
    std::vector<float> values;
    std::vector<std::uint32_t> keys, spare;
    std::vector<std::size_t> histogram;
  };
  std::vector<SortBuffers> sort_buffers;  // one per CPU thread
  std::unique_ptr<CudaProfiler> cuda;
  BlockProfile block;
  std::vector<float> points;  // one block summary
  std::vector<double> weights;
};

ProfileWorkspace::ProfileWorkspace() : impl_(std::make_unique<Impl>()) {}
ProfileWorkspace::~ProfileWorkspace() = default;
ProfileWorkspace::ProfileWorkspace(ProfileWorkspace&&) noexcept = default;
ProfileWorkspace& ProfileWorkspace::operator=(ProfileWorkspace&&) noexcept = default;

namespace {

ProfileLayout layout_of(const DataProfile& profile, const ProfileOptions& options) {
  ProfileLayout layout;
  layout.columns = static_cast<std::int64_t>(profile.columns.size());
  layout.sketch_capacity = options.sketch_capacity;
  for (std::int64_t c = 0; c < layout.columns; ++c) {
    const ColumnProfile& column = profile.columns[static_cast<std::size_t>(c)];
    if (column.type == ColumnType::categorical) {
      layout.categorical.push_back(c);
      layout.labels.push_back(static_cast<std::int64_t>(column.categorical.labels.size()));
    } else {
      layout.numeric.push_back(c);
    }
  }
  return layout;
}

// The CPU reference: one task per column, each writing only its own slots of `out`, every column
// folded in row order, so the result does not depend on the thread count.
void profile_block_cpu(const ColumnBlockView& block, std::span<const std::uint8_t> keep,
                       const ProfileLayout& layout, ProfileWorkspace::Impl& ws, BlockProfile& out) {
  const std::int64_t rows = block.rows;
  const std::int64_t numeric = static_cast<std::int64_t>(layout.numeric.size());
  const std::int64_t tasks = numeric + static_cast<std::int64_t>(layout.categorical.size());
  const std::int64_t capacity = layout.sketch_capacity;
  std::vector<std::int64_t> offsets(layout.categorical.size());
  for (std::size_t j = 0, offset = 0; j < offsets.size(); ++j) {
    offsets[j] = static_cast<std::int64_t>(offset);
    offset += static_cast<std::size_t>(layout.labels[j] + 1);
  }
  const bool masked = !keep.empty();
  ws.sort_buffers.resize(static_cast<std::size_t>(std::max(1, omp_get_max_threads())));
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t task = 0; task < tasks; ++task) {
    if (task < numeric) {
      const std::size_t s = static_cast<std::size_t>(task);
      const float* col = block.column(layout.numeric[s]);
      ProfileWorkspace::Impl::SortBuffers& buffers =
          ws.sort_buffers[static_cast<std::size_t>(omp_get_thread_num())];
      std::vector<float>& sorted = buffers.values;
      sorted.resize(static_cast<std::size_t>(rows));
      // Four runs of rows (r mod 4), each folded with add_value and merged in a fixed order: four
      // independent chains of double additions instead of one, the same result whatever the
      // thread count. The non-missing values are appended without a branch.
      constexpr int kRuns = 4;
      ColumnAccumulator runs[kRuns];
      std::size_t kept = 0;
      for (std::int64_t r = 0; r < rows; ++r) {
        if (masked && keep[static_cast<std::size_t>(r)] == 0) continue;
        const float v = col[r];
        add_value(runs[r % kRuns], v);
        sorted[kept] = sort_key(v);
        kept += v == v ? 1 : 0;
      }
      sorted.resize(kept);
      sort_floats(sorted, buffers.keys, buffers.spare, buffers.histogram);
      const std::int64_t n = static_cast<std::int64_t>(sorted.size());
      ColumnStats stats = finish(runs[0]);
      for (int k = 1; k < kRuns; ++k) stats = merge_stats(stats, finish(runs[k]));
      out.stats[s] = stats;
      out.sketch_sizes[s] = n;
      const std::size_t first = s * static_cast<std::size_t>(capacity);
      for (std::int64_t j = 0; j < std::min(n, capacity); ++j) {
        const auto at = sorted.begin() + summary_rank(j, n, capacity);
        out.sketch_points[first + j] = *at;
        out.sketch_lower[first + j] = std::lower_bound(sorted.begin(), at, *at) - sorted.begin();
        out.sketch_upper[first + j] = std::upper_bound(at, sorted.end(), *at) - sorted.begin();
      }
    } else {
      const std::size_t j = static_cast<std::size_t>(task - numeric);
      const float* col = block.column(layout.categorical[j]);
      const std::int64_t labels = layout.labels[j];
      std::int64_t* counts = out.category_counts.data() + offsets[j];
      float bad = -1.0f;
      for (std::int64_t r = 0; r < rows; ++r) {
        if (masked && keep[static_cast<std::size_t>(r)] == 0) continue;
        const std::int64_t slot = category_count_slot(col[r], labels);
        if (slot < 0) {
          bad = std::max(bad, col[r]);
        } else {
          ++counts[slot];
        }
      }
      out.bad_codes[j] = bad;
    }
  }
}

std::string format_code(float code) {
  std::ostringstream os;
  os << code;
  return os.str();
}

// Adds a block's profile to `profile`, column by column in order; checks first, so that a bad
// category code leaves `profile` as it was.
void accumulate(const BlockProfile& block, const ProfileLayout& layout, DataProfile& profile,
                std::vector<float>& points, std::vector<double>& weights) {
  for (std::size_t j = 0; j < layout.categorical.size(); ++j) {
    if (block.bad_codes[j] >= 0.0f) {
      const ColumnProfile& column = profile.columns[static_cast<std::size_t>(layout.categorical[j])];
      throw InputError("profile: categorical column '" + column.name + "' has code " +
                       format_code(block.bad_codes[j]) + " but only " +
                       std::to_string(layout.labels[j]) + " labels (codes 0.." +
                       std::to_string(layout.labels[j] - 1) + ")");
    }
  }
  const int capacity = layout.sketch_capacity;
  for (std::size_t s = 0; s < layout.numeric.size(); ++s) {
    NumericProfile& numeric = profile.columns[static_cast<std::size_t>(layout.numeric[s])].numeric;
    numeric.stats = merge_stats(numeric.stats, block.stats[s]);
    const std::int64_t n = block.sketch_sizes[s];
    if (n == 0) continue;
    const std::size_t first = s * static_cast<std::size_t>(capacity);
    const std::size_t m = static_cast<std::size_t>(std::min<std::int64_t>(n, capacity));
    summary_from_ranks(std::span<const float>(block.sketch_points.data() + first, m),
                       std::span<const std::int64_t>(block.sketch_lower.data() + first, m),
                       std::span<const std::int64_t>(block.sketch_upper.data() + first, m), n, points,
                       weights);
    numeric.sketch.add_summary(points, weights);
  }
  for (std::size_t j = 0, offset = 0; j < layout.categorical.size(); ++j) {
    CategoricalProfile& categorical =
        profile.columns[static_cast<std::size_t>(layout.categorical[j])].categorical;
    const std::size_t labels = static_cast<std::size_t>(layout.labels[j]);
    for (std::size_t k = 0; k < labels; ++k) categorical.counts[k] += block.category_counts[offset + k];
    categorical.missing += block.category_counts[offset + labels];
    offset += labels + 1;
  }
  profile.rows += block.kept_rows;
}

}  // namespace

void profile_block(const DeviceContext& ctx, const ColumnBlockView& block,
                   std::span<const std::uint8_t> keep_rows, DataProfile& profile,
                   const ProfileOptions& options, ProfileWorkspace* workspace) {
  if (static_cast<std::int64_t>(profile.columns.size()) != block.columns) {
    throw Error("profile_block: the profile has " + std::to_string(profile.columns.size()) +
                " columns, the block " + std::to_string(block.columns));
  }
  if (!keep_rows.empty() && static_cast<std::int64_t>(keep_rows.size()) != block.rows) {
    throw Error("profile_block: the keep mask has " + std::to_string(keep_rows.size()) +
                " rows, the block " + std::to_string(block.rows));
  }
  if (options.sketch_capacity < 2) {
    throw Error("profile: sketch capacity " + std::to_string(options.sketch_capacity) + " is below 2");
  }
  for (ColumnProfile& column : profile.columns) {
    if (column.type == ColumnType::categorical &&
        column.categorical.counts.size() != column.categorical.labels.size()) {
      if (!column.categorical.counts.empty()) {
        throw Error("profile_block: column '" + column.name + "' has " +
                    std::to_string(column.categorical.counts.size()) + " counts for " +
                    std::to_string(column.categorical.labels.size()) + " labels");
      }
      column.categorical.counts.assign(column.categorical.labels.size(), 0);
    }
    if (column.numeric.sketch.count() == 0 && column.numeric.sketch.capacity() != options.sketch_capacity) {
      column.numeric.sketch = QuantileSketch(options.sketch_capacity);
    }
  }
  std::unique_ptr<ProfileWorkspace> local;  // scratch for this call only
  if (!workspace) {
    local = std::make_unique<ProfileWorkspace>();
    workspace = local.get();
  }
  ProfileWorkspace::Impl& ws = workspace->impl();
  const ProfileLayout layout = layout_of(profile, options);
  BlockProfile& result = ws.block;
  if (ctx.is_cuda()) {
    if (!ws.cuda || ws.cuda->backend() != &ctx.cuda() || !(ws.cuda->layout() == layout)) {
      ws.cuda.reset();  // frees the old device scratch before the new one is allocated
      ws.cuda = std::make_unique<CudaProfiler>(ctx.cuda(), layout);
    }
    ws.cuda->profile_block(block, keep_rows, result);
  } else {
    result.reset(layout);
    result.kept_rows = keep_rows.empty()
                           ? block.rows
                           : static_cast<std::int64_t>(
                                 std::count_if(keep_rows.begin(), keep_rows.end(),
                                               [](std::uint8_t k) { return k != 0; }));
    profile_block_cpu(block, keep_rows, layout, ws, result);
  }
  accumulate(result, layout, profile, ws.points, ws.weights);
}

DataProfile profile_table(const DeviceContext& ctx, TableReader& reader, const RowMask* keep,
                          const ProfileOptions& options) {
  const std::int64_t rows = reader.rows();
  if (keep && keep->rows() != rows) {
    throw Error("profile: the row mask has " + std::to_string(keep->rows()) + " rows, the table " +
                std::to_string(rows));
  }
  DataProfile profile = make_profile(reader.columns(), options);
  const std::int64_t columns = static_cast<std::int64_t>(profile.columns.size());
  const std::int64_t block_rows = std::max<std::int64_t>(1, reader.block_rows());
  ProfileWorkspace workspace;
  std::vector<float> values;
  std::vector<std::uint8_t> keep_bytes;
  for (std::int64_t first = 0; first < rows; first += block_rows) {
    const std::int64_t n = std::min(block_rows, rows - first);
    values.resize(static_cast<std::size_t>(n * columns));
    reader.read_block(first, n, values);
    if (keep) {
      keep_bytes.resize(static_cast<std::size_t>(n));
      for (std::int64_t r = 0; r < n; ++r) keep_bytes[static_cast<std::size_t>(r)] = keep->test(first + r) ? 1 : 0;
    }
    try {
      profile_block(ctx, ColumnBlockView{values.data(), n, columns}, keep_bytes, profile, options, &workspace);
    } catch (const InputError& e) {
      // A category code outside its labels: name the file and the first row that has one.
      std::string where;
      for (std::int64_t c = 0; c < columns && where.empty(); ++c) {
        const ColumnProfile& column = profile.columns[static_cast<std::size_t>(c)];
        if (column.type != ColumnType::categorical) continue;
        const auto labels = static_cast<std::int64_t>(column.categorical.labels.size());
        const float* v = values.data() + c * n;
        for (std::int64_t r = 0; r < n; ++r) {
          if (!keep_bytes.empty() && keep_bytes[static_cast<std::size_t>(r)] == 0) continue;
          if (category_count_slot(v[r], labels) < 0) {
            where = " (column '" + column.name + "', row " + std::to_string(first + r + 1) + ")";
            break;
          }
        }
      }
      throw InputError(reader.path().string() + ": " + e.what() + where);
    }
  }
  return profile;
}

}  // namespace lathe
