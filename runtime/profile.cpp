#include "runtime/profile.h"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <sstream>
#include <string>
#include <utility>

#include "runtime/error.h"
#include "runtime/message_names.h"
#include "runtime/float_sort.h"
#include "runtime/profile_cuda.h"
#include "runtime/team_threshold.h"

namespace lathe {

const ColumnProfile& DataProfile::column(const std::string& name) const {
  for (const ColumnProfile& c : columns) {
    if (c.name == name) return c;
  }
  std::vector<std::string> names;
  for (const ColumnProfile& c : columns) names.push_back(c.name);
  throw InputError("profile: no column named '" + name + "'; columns: " + name_list(names));
}

DataProfile make_profile(const std::vector<ColumnInfo>& columns, const ProfileOptions& options) {
  DataProfile profile;
  profile.columns.resize(columns.size());
  std::int64_t labels = 0;
  for (std::size_t k = 0; k < columns.size(); ++k) {
    const ColumnInfo& info = columns[k];
    ColumnProfile& c = profile.columns[k];
    c.name = info.name;
    c.type = info.type;
    c.numeric.sketch = QuantileSketch(options.sketch_capacity);
    if (info.type == ColumnType::categorical) labels += static_cast<std::int64_t>(info.categories.size());
  }
  // The labels are copied on every core: a table of ids holds millions of them.
  const auto count = static_cast<std::int64_t>(columns.size());
  std::vector<std::exception_ptr> failed(columns.size());
#pragma omp parallel for schedule(dynamic, 1) if (count > 1 && labels >= kTeamMinItems)
  for (std::int64_t k = 0; k < count; ++k) {
    const ColumnInfo& info = columns[static_cast<std::size_t>(k)];
    if (info.type != ColumnType::categorical) continue;
    CategoricalProfile& c = profile.columns[static_cast<std::size_t>(k)].categorical;
    try {
      if (options.copy_labels) c.labels = info.categories;
      c.counts.assign(info.categories.size(), 0);
    } catch (...) {
      failed[static_cast<std::size_t>(k)] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : failed) {
    if (e) std::rethrow_exception(e);
  }
  return profile;
}

std::int64_t ProfileLayout::category_slots() const {
  std::int64_t slots = 0;
  for (std::int64_t k : labels) slots += k + 1;
  return slots;
}

namespace {

// BlockProfile::reset but for the category counts, which are left empty: the CPU path counts a
// block's codes into the profile itself (count_categories).
void reset_but_category_counts(BlockProfile& block, const ProfileLayout& layout) {
  const std::size_t numeric = layout.numeric.size();
  block.kept_rows = 0;
  block.stats.assign(numeric, ColumnStats{});
  block.sketch_sizes.assign(numeric, 0);
  block.sketch_points.resize(numeric * static_cast<std::size_t>(layout.sketch_capacity));
  block.sketch_lower.resize(block.sketch_points.size());
  block.sketch_upper.resize(block.sketch_points.size());
  block.category_counts.clear();
  block.bad_codes.assign(layout.categorical.size(), -1.0f);
}

}  // namespace

void BlockProfile::reset(const ProfileLayout& layout) {
  reset_but_category_counts(*this, layout);
  category_counts.assign(static_cast<std::size_t>(layout.category_slots()), 0);
}

struct ProfileWorkspace::Impl {
  struct SortBuffers {
    std::vector<std::uint32_t> keys, spare;  // float_order_key of a column's kept values
    std::vector<std::uint32_t> counts;       // sort_keys' scratch
  };
  std::vector<SortBuffers> sort_buffers;  // one per CPU thread
  std::unique_ptr<CudaProfiler> cuda;
  BlockProfile block;
  struct SummaryBuffers {
    std::vector<float> points;  // one block summary
    std::vector<double> weights;
  };
  std::vector<SummaryBuffers> summaries;  // one per CPU thread
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
      layout.labels.push_back(static_cast<std::int64_t>(column.categorical.counts.size()));
    } else {
      layout.numeric.push_back(c);
    }
  }
  return layout;
}

// What scan_numeric_column finds in one numeric column of a block.
struct NumericScan {
  ColumnStats stats;
  std::size_t kept = 0;  // non-missing kept values, whose sort keys are keys[0, kept)
};

// One pass over a numeric column of a block: its stats, and the sort keys of its non-missing kept
// values written to `keys`, ready for sort_keys (which counts their digits itself: counting them
// here as well, in the one loop, saved nothing once the counts outgrew the first-level cache). The
// stats are four runs of rows (r mod 4), each folded with fold_value (add_value's fold, which takes
// a dropped row too and leaves the run as it was) and merged in a fixed order: four independent
// chains of double additions instead of one, the same result whatever the thread count. The runs
// are four named locals, which the compiler keeps in registers (an array of runs indexed by r mod 4
// went through memory; one indexed by constants still cost 15%), and every row takes the same
// steps: the key of a missing or dropped value is written at keys[kept], to be overwritten by the
// next one.
template <bool Masked>
NumericScan scan_numeric_column(const float* col, std::int64_t rows, const std::uint8_t* keep,
                                std::uint32_t* keys) {
  ColumnAccumulator run0, run1, run2, run3;
  std::size_t n = 0;
  const auto fold = [&](ColumnAccumulator& run, std::int64_t r) {
    const float v = col[r];
    const bool present = fold_value(run, v, !Masked || keep[r] != 0);
    // Only a counted value's key is kept. Unmasked, naming that lets the compiler fold sort_key's
    // NaN test into fold_value's (12% faster); masked, it made a column without NaN 13% slower.
    const std::uint32_t key = float_order_key(sort_key(Masked || present ? v : 0.0f));
    keys[n] = key;
    n += present;
  };
  std::int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    fold(run0, r);
    fold(run1, r + 1);
    fold(run2, r + 2);
    fold(run3, r + 3);
  }
  if (r < rows) fold(run0, r);
  if (r + 1 < rows) fold(run1, r + 1);
  if (r + 2 < rows) fold(run2, r + 2);
  NumericScan scan;
  scan.kept = n;
  scan.stats =
      merge_stats(merge_stats(merge_stats(finish(run0), finish(run1)), finish(run2)), finish(run3));
  return scan;
}

// One past the last rank whose key equals sorted[rank], by galloping forward from rank: most equal
// ranges are short (one value, in a continuous column), so this reads a few neighbours where a
// binary search over the rest of the block would take 16 steps.
std::int64_t equal_range_end(std::span<const std::uint32_t> sorted, std::int64_t rank) {
  const std::int64_t n = static_cast<std::int64_t>(sorted.size());
  const std::uint32_t key = sorted[static_cast<std::size_t>(rank)];
  std::int64_t last = rank;  // a rank known to hold key
  std::int64_t step = 1;
  while (last + step < n && sorted[static_cast<std::size_t>(last + step)] == key) {
    last += step;
    step *= 2;
  }
  const std::int64_t bound = std::min(n, last + step);  // n, or a rank past the equal range
  return std::upper_bound(sorted.begin() + last + 1, sorted.begin() + bound, key) - sorted.begin();
}

// The CPU reference: one task per column, each writing only its own slots of `out`, every column
// folded in row order, so the result does not depend on the thread count. A categorical column's
// codes are only checked here (out.bad_codes); accumulate counts them once every column passed.
void profile_block_cpu(const ColumnBlockView& block, std::span<const std::uint8_t> keep,
                       const ProfileLayout& layout, ProfileWorkspace::Impl& ws, BlockProfile& out) {
  const std::int64_t rows = block.rows;
  const std::int64_t numeric = static_cast<std::int64_t>(layout.numeric.size());
  const std::int64_t tasks = numeric + static_cast<std::int64_t>(layout.categorical.size());
  const std::int64_t capacity = layout.sketch_capacity;
  const bool masked = !keep.empty();
  ws.sort_buffers.resize(static_cast<std::size_t>(std::max(1, omp_get_max_threads())));
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t task = 0; task < tasks; ++task) {
    if (task < numeric) {
      const std::size_t s = static_cast<std::size_t>(task);
      const float* col = block.column(layout.numeric[s]);
      ProfileWorkspace::Impl::SortBuffers& buffers =
          ws.sort_buffers[static_cast<std::size_t>(omp_get_thread_num())];
      buffers.keys.resize(static_cast<std::size_t>(rows));
      buffers.spare.resize(static_cast<std::size_t>(rows));
      std::uint32_t* keys = buffers.keys.data();
      const NumericScan scan = masked ? scan_numeric_column<true>(col, rows, keep.data(), keys)
                                      : scan_numeric_column<false>(col, rows, nullptr, keys);
      // Key order is float order and equal floats have equal keys (sort_key maps -0 to +0), so the
      // summary's ranks and equal ranges are found on the sorted keys; only the chosen points are
      // turned back into floats.
      const std::span<const std::uint32_t> sorted = sort_keys(
          std::span(keys, scan.kept), std::span(buffers.spare.data(), scan.kept), buffers.counts);
      const std::int64_t n = static_cast<std::int64_t>(scan.kept);
      out.stats[s] = scan.stats;
      out.sketch_sizes[s] = n;
      const std::size_t first = s * static_cast<std::size_t>(capacity);
      // The points ascend with j, so each equal range starts where the last one did or after it.
      std::int64_t lower = 0;
      for (std::int64_t j = 0; j < std::min(n, capacity); ++j) {
        const std::int64_t rank = summary_rank(j, n, capacity);
        const std::uint32_t key = sorted[static_cast<std::size_t>(rank)];
        lower =
            std::lower_bound(sorted.begin() + lower, sorted.begin() + rank, key) - sorted.begin();
        out.sketch_points[first + j] = float_from_order_key(key);
        out.sketch_lower[first + j] = lower;
        out.sketch_upper[first + j] = equal_range_end(sorted, rank);
      }
    } else {
      const std::size_t j = static_cast<std::size_t>(task - numeric);
      const float* col = block.column(layout.categorical[j]);
      const std::int64_t labels = layout.labels[j];
      float bad = -1.0f;
      for (std::int64_t r = 0; r < rows; ++r) {
        if (masked && keep[static_cast<std::size_t>(r)] == 0) continue;
        if (category_count_slot(col[r], labels) < 0) bad = std::max(bad, col[r]);
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

// Counts the kept rows of each code of a block's categorical columns (checked: none is out of
// range) into the profile, a column per task. Straight into the profile's counts: a block's own
// (a slot per label, zeroed and added up for every block of 64K rows) took longer than the
// counting on columns of a million labels.
void count_categories(const ColumnBlockView& block, std::span<const std::uint8_t> keep,
                      const ProfileLayout& layout, DataProfile& profile) {
  const auto columns = static_cast<std::int64_t>(layout.categorical.size());
  const bool team = columns > 1 && columns * block.rows >= kTeamMinItems;
#pragma omp parallel for schedule(dynamic, 1) if (team)
  for (std::int64_t j = 0; j < columns; ++j) {
    const std::int64_t c = layout.categorical[static_cast<std::size_t>(j)];
    CategoricalProfile& categorical = profile.columns[static_cast<std::size_t>(c)].categorical;
    const float* col = block.column(c);
    const std::int64_t labels = layout.labels[static_cast<std::size_t>(j)];
    std::int64_t* counts = categorical.counts.data();
    std::int64_t missing = 0;
    for (std::int64_t r = 0; r < block.rows; ++r) {
      if (!keep.empty() && keep[static_cast<std::size_t>(r)] == 0) continue;
      const std::int64_t slot = category_count_slot(col[r], labels);
      if (slot == labels) {
        ++missing;
      } else {
        ++counts[slot];
      }
    }
    categorical.missing += missing;
  }
}

// Adds a block's profile to `profile`, column by column in order; checks first, so that a bad
// category code leaves `profile` as it was. The category counts are block.category_counts (the
// GPU's), or with `codes` (the CPU's, which leaves them empty) counted here from the block itself.
// The numeric columns' sketches are left unsettled (QuantileSketch::settle), each column's added
// on one core of the team: each sketch takes its blocks in order whatever the thread count.
void accumulate(const BlockProfile& block, const ProfileLayout& layout, DataProfile& profile,
                std::vector<ProfileWorkspace::Impl::SummaryBuffers>& summaries,
                const ColumnBlockView* codes, std::span<const std::uint8_t> keep) {
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
  const auto numeric_columns = static_cast<std::int64_t>(layout.numeric.size());
  summaries.resize(static_cast<std::size_t>(std::max(1, omp_get_max_threads())));
  // A sketch's carry merges and compacts summaries of up to 2 x capacity points, a few times a
  // block: on the team, as profile_block_cpu's columns are.
  std::exception_ptr failed;
#pragma omp parallel for schedule(dynamic, 1) if (numeric_columns > 1)
  for (std::int64_t k = 0; k < numeric_columns; ++k) {
    const auto s = static_cast<std::size_t>(k);
    NumericProfile& numeric = profile.columns[static_cast<std::size_t>(layout.numeric[s])].numeric;
    numeric.stats = merge_stats(numeric.stats, block.stats[s]);
    const std::int64_t n = block.sketch_sizes[s];
    if (n == 0) continue;
    const std::size_t first = s * static_cast<std::size_t>(capacity);
    const std::size_t m = static_cast<std::size_t>(std::min<std::int64_t>(n, capacity));
    ProfileWorkspace::Impl::SummaryBuffers& summary =
        summaries[static_cast<std::size_t>(omp_get_thread_num())];
    try {
      summary_from_ranks(std::span<const float>(block.sketch_points.data() + first, m),
                         std::span<const std::int64_t>(block.sketch_lower.data() + first, m),
                         std::span<const std::int64_t>(block.sketch_upper.data() + first, m), n,
                         summary.points, summary.weights);
      numeric.sketch.add_summary_unsettled(summary.points, summary.weights);
    } catch (...) {
#pragma omp critical
      if (!failed) failed = std::current_exception();
    }
  }
  if (failed) std::rethrow_exception(failed);
  if (codes) {
    count_categories(*codes, keep, layout, profile);
    profile.rows += block.kept_rows;
    return;
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

// profile_block, leaving the numeric columns' sketches unsettled (QuantileSketch::settle): a pass
// over many blocks settles them once at its end.
void profile_block_unsettled(const DeviceContext& ctx, const ColumnBlockView& block,
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
    // (A profile made without its labels has counts sized to the table's.)
    if (column.type == ColumnType::categorical && options.copy_labels &&
        column.categorical.counts.size() != column.categorical.labels.size()) {
      if (!column.categorical.counts.empty()) {
        throw Error("profile_block: column '" + column.name + "' has " +
                    std::to_string(column.categorical.counts.size()) + " counts for " +
                    std::to_string(column.categorical.labels.size()) + " labels");
      }
      column.categorical.counts.assign(column.categorical.labels.size(), 0);
    }
    if (column.numeric.sketch.empty() &&
        column.numeric.sketch.capacity() != options.sketch_capacity) {
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
    reset_but_category_counts(result, layout);
    result.kept_rows = keep_rows.empty()
                           ? block.rows
                           : static_cast<std::int64_t>(
                                 std::count_if(keep_rows.begin(), keep_rows.end(),
                                               [](std::uint8_t k) { return k != 0; }));
    profile_block_cpu(block, keep_rows, layout, ws, result);
  }
  accumulate(result, layout, profile, ws.summaries, ctx.is_cuda() ? nullptr : &block, keep_rows);
}

// Settles every numeric column's sketch: on the team, a column per task, when there are several.
void settle_sketches(DataProfile& profile) {
  const auto columns = static_cast<std::int64_t>(profile.columns.size());
#pragma omp parallel for schedule(dynamic, 1) if (columns > 1)
  for (std::int64_t c = 0; c < columns; ++c) {
    profile.columns[static_cast<std::size_t>(c)].numeric.sketch.settle();
  }
}

}  // namespace

void profile_block(const DeviceContext& ctx, const ColumnBlockView& block,
                   std::span<const std::uint8_t> keep_rows, DataProfile& profile,
                   const ProfileOptions& options, ProfileWorkspace* workspace) {
  profile_block_unsettled(ctx, block, keep_rows, profile, options, workspace);
  settle_sketches(profile);
}

DataProfile profile_table(const DeviceContext& ctx, TableReader& reader, const RowMask* keep,
                          const ProfileOptions& options) {
  const std::int64_t rows = reader.rows();
  if (keep && keep->rows() != rows) {
    throw Error("profile: the row mask has " + std::to_string(keep->rows()) + " rows, the table " +
                std::to_string(rows));
  }
  const std::vector<ColumnInfo>& infos = reader.columns();
  const std::int64_t columns = static_cast<std::int64_t>(infos.size());
  std::vector<std::int64_t> wanted;  // the columns profiled, in table order
  for (std::int64_t c = 0; c < columns; ++c) {
    const ColumnInfo& info = infos[static_cast<std::size_t>(c)];
    if (std::find(options.skip_columns.begin(), options.skip_columns.end(), info.name) != options.skip_columns.end()) {
      continue;
    }
    if (info.type == ColumnType::categorical &&
        static_cast<std::int64_t>(info.categories.size()) > kMaxExactCategoryLabels) {
      throw InputError(reader.path().string() + ": column '" + info.name + "' has " +
                       std::to_string(info.categories.size()) + " category labels, more than the " +
                       std::to_string(kMaxExactCategoryLabels) +
                       " whose codes Lathe carries exactly, so it cannot be a feature; an id column "
                       "(a label per row) is no feature: leave it out with --drop");
    }
    wanted.push_back(c);
  }
  const bool every_column = static_cast<std::int64_t>(wanted.size()) == columns;
  // `part` profiles the wanted columns, packed side by side in each block. Their infos are copied
  // only when some columns are left out: a copy holds every label (millions of strings).
  std::vector<ColumnInfo> wanted_infos;
  if (!every_column) {
    for (const std::int64_t c : wanted) wanted_infos.push_back(infos[static_cast<std::size_t>(c)]);
  }
  DataProfile part = make_profile(every_column ? infos : wanted_infos, options);
  const std::int64_t profiled = static_cast<std::int64_t>(wanted.size());
  const std::int64_t block_rows = std::max<std::int64_t>(1, reader.block_rows());
  ProfileWorkspace workspace;
  std::vector<float> values, packed;
  std::vector<std::uint8_t> keep_bytes;
  for (std::int64_t first = 0; first < rows; first += block_rows) {
    const std::int64_t n = std::min(block_rows, rows - first);
    values.resize(static_cast<std::size_t>(n * columns));
    const float* block = values.data();
    if (every_column) {
      reader.read_block(first, n, values);
    } else {
      reader.read_block_columns(first, n, wanted, values);
      packed.resize(static_cast<std::size_t>(n * profiled));
      for (std::int64_t k = 0; k < profiled; ++k) {
        std::copy_n(values.data() + wanted[static_cast<std::size_t>(k)] * n, n, packed.data() + k * n);
      }
      block = packed.data();
    }
    // A block whose rows the mask all keeps is profiled without it, which is the same profile: the
    // unmasked column scan is the faster one (`--valid-fraction 0` keeps every row).
    bool every_row = true;
    if (keep) {
      keep_bytes.resize(static_cast<std::size_t>(n));
      std::uint8_t all = 1;
      for (std::int64_t r = 0; r < n; ++r) {
        const std::uint8_t k = keep->test(first + r) ? 1 : 0;
        keep_bytes[static_cast<std::size_t>(r)] = k;
        all &= k;
      }
      every_row = all != 0;
    }
    const std::span<const std::uint8_t> block_keep =
        every_row ? std::span<const std::uint8_t>() : std::span<const std::uint8_t>(keep_bytes);
    try {
      profile_block_unsettled(ctx, ColumnBlockView{block, n, profiled}, block_keep, part, options,
                              &workspace);
    } catch (const InputError& e) {
      // A category code outside its labels: name the file and the first row that has one.
      std::string where;
      for (std::int64_t c = 0; c < profiled && where.empty(); ++c) {
        const ColumnProfile& column = part.columns[static_cast<std::size_t>(c)];
        if (column.type != ColumnType::categorical) continue;
        const auto labels = static_cast<std::int64_t>(column.categorical.counts.size());
        const float* v = block + c * n;
        for (std::int64_t r = 0; r < n; ++r) {
          if (!block_keep.empty() && block_keep[static_cast<std::size_t>(r)] == 0) continue;
          if (category_count_slot(v[r], labels) < 0) {
            where = " (column '" + column.name + "', row " + std::to_string(first + r + 1) + ")";
            break;
          }
        }
      }
      throw InputError(reader.path().string() + ": " + e.what() + where);
    }
  }
  settle_sketches(part);
  // A reader's categories name each label once (the table merges a label stored twice).
  const auto distinct_labels = [](DataProfile& p) {
    for (ColumnProfile& column : p.columns) {
      if (column.type == ColumnType::categorical) column.categorical.labels_distinct = true;
    }
  };
  if (every_column) {
    distinct_labels(part);
    return part;
  }
  DataProfile profile = make_profile(infos, options);
  profile.rows = part.rows;
  for (std::int64_t k = 0; k < profiled; ++k) {
    profile.columns[static_cast<std::size_t>(wanted[static_cast<std::size_t>(k)])] =
        std::move(part.columns[static_cast<std::size_t>(k)]);
  }
  distinct_labels(profile);
  return profile;
}

}  // namespace lathe
