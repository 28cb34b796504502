// The profile pass: one streamed pass over the training data that summarises every column on the
// chosen device. Numeric columns: count, missing, mean and variance (double, merged with Chan's
// formula), min, max and a quantile sketch. Categorical columns: the count of each category and of
// missing values. A DataProfile is plain data: the model file stores it, drift monitoring compares
// new data against it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "io/table_reader.h"
#include "kernels/column_stats.h"
#include "runtime/column_block.h"
#include "runtime/device_context.h"
#include "runtime/quantile_sketch.h"
#include "runtime/row_mask.h"

namespace lathe {

struct NumericProfile {
  ColumnStats stats;
  QuantileSketch sketch;
};

struct CategoricalProfile {
  std::vector<std::string> labels;   // label of code i (as in the file profiled)
  std::vector<std::int64_t> counts;  // rows with code i
  std::int64_t missing = 0;          // rows with no category
  // Whether `labels` names each label once, as a TableReader's categories do (profile_table sets
  // it): fit_preparation then takes label i's rows as counts[i], without first merging repeated
  // labels through a hash table of them all (on 26 id columns of 5M labels in all, most of the
  // fit's time and 200 MB of fresh memory, for labels that never repeat). In memory only.
  bool labels_distinct = false;
};

struct ColumnProfile {
  std::string name;
  ColumnType type = ColumnType::numeric;
  NumericProfile numeric;          // numeric columns
  CategoricalProfile categorical;  // categorical columns
};

struct DataProfile {
  std::int64_t rows = 0;  // rows profiled (kept rows only, when a mask was given)
  std::vector<ColumnProfile> columns;
  // The column named `name`; throws InputError listing the columns when there is none.
  const ColumnProfile& column(const std::string& name) const;
};

struct ProfileOptions {
  int sketch_capacity = 1024;  // points per quantile sketch (>= 2); rank error ~1.5/capacity
  // profile_table: columns left out of the pass, by name (not features: `--drop`'s ids, a weight, a
  // prepared file's passthrough columns). They are not read, and their profile stays empty (no
  // rows, no counts): an id column of strings need not even have codes float32 holds exactly.
  std::vector<std::string> skip_columns;
  // false: make_profile sizes a categorical column's counts to its labels but leaves its profile's
  // labels empty, for a caller that moves the table's own labels in (TableReader::swap_categories)
  // rather than hold a copy of millions of them.
  bool copy_labels = true;
};

// An empty profile of a table with these columns: names, types, labels, zero counts, sketches of
// options.sketch_capacity. What profile_block accumulates into.
DataProfile make_profile(const std::vector<ColumnInfo>& columns, const ProfileOptions& options = {});

class CudaProfiler;  // runtime/profile_cuda.h

// Scratch reused from block to block (CPU sort buffers; on CUDA the device buffers, sized by the
// largest block seen, so a pass allocates nothing per block in steady state). Belongs to one
// DeviceContext, which must outlive it; not for use by two threads at once.
class ProfileWorkspace {
 public:
  ProfileWorkspace();
  ~ProfileWorkspace();
  ProfileWorkspace(ProfileWorkspace&&) noexcept;
  ProfileWorkspace& operator=(ProfileWorkspace&&) noexcept;

  struct Impl;  // runtime/profile.cpp
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// Streams the table block by block (reader.block_rows() rows) and profiles every column on `ctx`.
// With `keep`, only rows whose bit is set count (rows removed by --dedup); keep->rows() must equal
// reader.rows(). Throws InputError naming the column when a category code is not below the number
// of the column's labels. Its categorical columns are labels_distinct (ColumnInfo::categories names
// each label once), also where their labels are lent later (options.copy_labels false).
DataProfile profile_table(const DeviceContext& ctx, TableReader& reader, const RowMask* keep = nullptr,
                          const ProfileOptions& options = {});

// The profile of one block of columns in host memory, accumulated into `profile`, whose columns
// (from make_profile) say how to treat column c of the block: profile.columns[c].type, and for a
// categorical column its labels (codes stored as floats; NaN or negative = missing; a code >= the
// number of labels throws InputError naming the column, leaving `profile` unchanged).
// profile.columns.size() must equal block.columns. Rows whose `keep_rows` byte is 0 are skipped when
// keep_rows is non-empty (then keep_rows.size() == block.rows). Numeric columns: stats merged with
// merge_stats; the block's non-missing kept values are sorted (on the device for CUDA) and their
// summarize_sorted() summary added to the sketch. Sketches that are still empty are given
// options.sketch_capacity. `workspace` (optional) keeps scratch from call to call.
void profile_block(const DeviceContext& ctx, const ColumnBlockView& block,
                   std::span<const std::uint8_t> keep_rows, DataProfile& profile,
                   const ProfileOptions& options = {}, ProfileWorkspace* workspace = nullptr);

}  // namespace lathe
