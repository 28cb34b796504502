// Data preparation: fitting from a profile, binding by name and label, the fused transform on every
// device against independent references, crosses, bad input, and the expanded-feature accessor.
#include "runtime/preparation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/preparation_json.h"
#include "runtime/error.h"
#include "runtime/prepare_cuda.h"
#include "runtime/profile.h"
#include "tests/test_devices.h"

namespace lathe {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// A small in-memory table: columns, their values (categorical codes as floats), column-major block.
struct Table {
  std::vector<ColumnInfo> columns;
  std::vector<std::vector<float>> data;
  std::int64_t rows = 0;

  void add_numeric(const std::string& name, std::vector<float> values) {
    ColumnInfo c;
    c.name = name;
    c.type = ColumnType::numeric;
    add(c, std::move(values));
  }
  void add_categorical(const std::string& name, std::vector<std::string> labels,
                       std::vector<float> codes) {
    ColumnInfo c;
    c.name = name;
    c.type = ColumnType::categorical;
    c.categories = std::move(labels);
    add(c, std::move(codes));
  }
  void add(const ColumnInfo& c, std::vector<float> values) {
    if (columns.empty()) rows = static_cast<std::int64_t>(values.size());
    ASSERT_EQ(static_cast<std::int64_t>(values.size()), rows);
    columns.push_back(c);
    data.push_back(std::move(values));
  }
  std::vector<float> block() const {
    std::vector<float> b;
    b.reserve(static_cast<std::size_t>(rows) * columns.size());
    for (const auto& col : data) b.insert(b.end(), col.begin(), col.end());
    return b;
  }
  std::int32_t index(const std::string& name) const {
    for (std::size_t c = 0; c < columns.size(); ++c) {
      if (columns[c].name == name) return static_cast<std::int32_t>(c);
    }
    return -1;
  }
};

DataProfile profile_of(const Table& t, int capacity = 4096) {
  ProfileOptions options;
  options.sketch_capacity = capacity;
  DataProfile profile = make_profile(t.columns, options);
  const std::vector<float> block = t.block();
  profile_block(DeviceContext::cpu(),
                ColumnBlockView{block.data(), t.rows, static_cast<std::int64_t>(t.columns.size())},
                {}, profile, options);
  return profile;
}

PreparedBlock prepare(const DeviceContext& ctx, const FittedPreparation& fitted, const Table& t) {
  const BoundPreparation bound = bind_preparation(fitted, t.columns);
  const std::vector<float> block = t.block();
  PreparedBlock out;
  apply_preparation(
      ctx, bound,
      ColumnBlockView{block.data(), t.rows, static_cast<std::int64_t>(t.columns.size())}, out);
  return out;
}

std::int32_t dense_index(const FittedPreparation& f, const std::string& name) {
  const auto names = f.dense_names();
  const auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? -1 : static_cast<std::int32_t>(it - names.begin());
}

std::int32_t group_index(const FittedPreparation& f, const std::string& name) {
  for (std::size_t g = 0; g < f.sparse.size(); ++g) {
    if (f.sparse[g].name == name) return static_cast<std::int32_t>(g);
  }
  return -1;
}

float dense_at(const PreparedBlock& b, std::int32_t f, std::int64_t r) {
  return b.dense[f * b.rows + r];
}

// numpy.quantile(..., method="linear") of the non-missing values.
double numpy_quantile(std::vector<float> v, double q) {
  v.erase(std::remove_if(v.begin(), v.end(), [](float x) { return std::isnan(x); }), v.end());
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const std::size_t i = static_cast<std::size_t>(std::floor(pos));
  const double frac = pos - static_cast<double>(i);
  if (i + 1 >= v.size()) return v.back();
  return v[i] + frac * (static_cast<double>(v[i + 1]) - v[i]);
}

struct Moments {
  long double mean = 0, stddev = 0;
  float min = INFINITY, max = -INFINITY;
};

Moments moments(const std::vector<float>& v) {  // two-pass, long double, non-missing values
  Moments m;
  long double sum = 0;
  std::int64_t n = 0;
  for (float x : v) {
    if (std::isnan(x)) continue;
    sum += x;
    ++n;
    m.min = std::min(m.min, x);
    m.max = std::max(m.max, x);
  }
  m.mean = sum / n;
  long double ss = 0;
  for (float x : v) {
    if (!std::isnan(x)) ss += (x - m.mean) * (x - m.mean);
  }
  m.stddev = std::sqrt(ss / n);
  return m;
}

std::vector<float> normal_values(std::int64_t n, double mean, double sd, double missing,
                                 std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(mean, sd);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = u(rng) < missing ? kNaN : static_cast<float>(normal(rng));
  return v;
}

std::vector<float> random_codes(std::int64_t n, int labels, double missing, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> code(0, labels - 1);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = u(rng) < missing ? kNaN : static_cast<float>(code(rng));
  return v;
}

std::vector<std::string> labels_named(const std::string& prefix, int n) {
  std::vector<std::string> l;
  for (int i = 0; i < n; ++i) l.push_back(prefix + std::to_string(i));
  return l;
}

// ---------------------------------------------------------------------------------------------
// Independent scalar reference of the whole transform, row by row, from the fitted parameters and
// the labels (not the binding's remap tables).

float reference_numeric(float x, const NumericTransform& t) {
  double v = std::isnan(x) ? static_cast<double>(t.fill) : static_cast<double>(x);
  v = std::min(std::max(v, static_cast<double>(t.clip_lo)), static_cast<double>(t.clip_hi));
  return static_cast<float>((v - t.center) * t.inv_scale);
}

std::int32_t reference_slot(const CategoricalEncoding& enc, const ColumnInfo& info, float code) {
  if (std::isnan(code)) return enc.missing_slot();
  const std::string& label = info.categories[static_cast<std::size_t>(code)];
  if (enc.hashed)
    return static_cast<std::int32_t>(label_hash(label.data(), label.size()) % enc.buckets);
  const auto it = std::find(enc.vocabulary.begin(), enc.vocabulary.end(), label);
  return it == enc.vocabulary.end() ? enc.unknown_slot()
                                    : static_cast<std::int32_t>(it - enc.vocabulary.begin());
}

std::uint64_t reference_slot_hash(const CategoricalEncoding& enc, std::int32_t slot) {
  if (slot == enc.missing_slot()) return kMissingLabelHash;
  if (slot == enc.unknown_slot()) return kUnknownLabelHash;
  if (enc.hashed) return bucket_label_hash(static_cast<std::uint32_t>(slot));
  const std::string& l = enc.vocabulary[static_cast<std::size_t>(slot)];
  return label_hash(l.data(), l.size());
}

// The bin of raw value x by a linear scan: the bins above the value's edges, missing after them.
std::int32_t reference_bin(const std::vector<float>& edges, float x) {
  if (std::isnan(x)) return static_cast<std::int32_t>(edges.size()) + 1;
  std::int32_t bin = 0;
  for (const float e : edges) bin += (x >= e) ? 1 : 0;
  return bin;
}

// Compares a prepared block with the reference; dense and slope values within `tol` relative.
void expect_matches_reference(const FittedPreparation& f, const Table& t, const PreparedBlock& out,
                              double tol) {
  ASSERT_EQ(out.rows, t.rows);
  ASSERT_EQ(out.dense.size(), static_cast<std::size_t>(f.dense_features() * t.rows));
  ASSERT_EQ(out.slot.size(), f.sparse.size() * static_cast<std::size_t>(t.rows));
  std::vector<const float*> num_col, cat_col;
  std::vector<const ColumnInfo*> cat_info;
  for (const auto& n : f.numeric) num_col.push_back(t.data[t.index(n.name)].data());
  for (const auto& c : f.categorical) {
    cat_col.push_back(t.data[t.index(c.name)].data());
    cat_info.push_back(&t.columns[t.index(c.name)]);
  }
  const auto near = [tol](float a, float b) {
    return std::isfinite(a) && std::fabs(static_cast<double>(a) - b) <=
                                   tol * std::max(1.0, std::fabs(static_cast<double>(b)));
  };
  std::int64_t bad = 0;
  for (std::int64_t r = 0; r < t.rows && bad < 10; ++r) {
    std::int64_t k = 0;
    auto check_dense = [&](float expected, const char* what) {
      const float got = out.dense[k * t.rows + r];
      if (!near(got, expected)) {
        ADD_FAILURE() << what << " feature " << k << " row " << r << ": got " << got
                      << ", expected " << expected;
        ++bad;
      }
      ++k;
    };
    for (std::size_t i = 0; i < f.numeric.size(); ++i)
      check_dense(reference_numeric(num_col[i][r], f.numeric[i].transform), "numeric");
    for (const auto i : f.indicators)
      check_dense(std::isnan(num_col[i][r]) ? 1.0f : 0.0f, "indicator");
    for (const auto& [a, b] : f.numeric_crosses) {
      check_dense(reference_numeric(num_col[a][r], f.numeric[a].transform) *
                      reference_numeric(num_col[b][r], f.numeric[b].transform),
                  "cross");
    }
    for (std::size_t g = 0; g < f.sparse.size(); ++g) {
      const SparseGroup& sg = f.sparse[g];
      std::int32_t slot = 0;
      float value = 1.0f;
      if (sg.kind == SparseKind::one_hot) {
        slot = reference_slot(f.categorical[sg.a], *cat_info[sg.a], cat_col[sg.a][r]);
      } else if (sg.kind == SparseKind::categorical_cross) {
        // Each side's label hash: its category's, or its bin's (between its edges) for bins.
        const auto side_hash = [&](std::int32_t index, bool bins) {
          if (bins) {
            const std::vector<float>& edges = f.numeric[index].bin_edges;
            const std::int32_t bin = reference_bin(edges, num_col[index][r]);
            if (bin == static_cast<std::int32_t>(edges.size()) + 1) return kMissingLabelHash;
            return bin_label_hash(bin == 0 ? -INFINITY : edges[bin - 1],
                                  bin == static_cast<std::int32_t>(edges.size()) ? INFINITY : edges[bin]);
          }
          const auto& e = f.categorical[index];
          return reference_slot_hash(e, reference_slot(e, *cat_info[index], cat_col[index][r]));
        };
        slot = static_cast<std::int32_t>(
            cross_bucket(side_hash(sg.a, sg.a_bins), side_hash(sg.b, sg.b_bins), f.hash_buckets));
      } else if (sg.kind == SparseKind::bins) {
        slot = reference_bin(f.numeric[sg.a].bin_edges, num_col[sg.a][r]);
      } else {
        slot = reference_slot(f.categorical[sg.b], *cat_info[sg.b], cat_col[sg.b][r]);
        value = reference_numeric(num_col[sg.a][r], f.numeric[sg.a].transform);
      }
      const std::int32_t got_slot = out.slot[g * t.rows + r];
      const float got_value = out.value[g * t.rows + r];
      if (got_slot != slot || !near(got_value, value)) {
        ADD_FAILURE() << "group " << sg.name << " row " << r << ": got (" << got_slot << ", "
                      << got_value << "), expected (" << slot << ", " << value << ")";
        ++bad;
      }
      if (got_slot < 0 || got_slot >= static_cast<std::int32_t>(sg.slots)) {
        ADD_FAILURE() << "group " << sg.name << " row " << r << ": slot " << got_slot
                      << " outside [0, " << sg.slots << ")";
        ++bad;
      }
    }
  }
}

// A mixed table: every fifth column categorical, the rest numeric with varied scales, offsets and
// missing values; numeric column 5 all missing and column 6 constant when they exist.
Table mixed_table(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  Table t;
  for (std::int64_t c = 0; c < cols; ++c) {
    const std::string name = "c" + std::to_string(c);
    if (c % 5 == 3) {
      const int k = 2 + static_cast<int>(c % 11);
      // Labels in a scrambled order, so codes and sorted labels differ.
      std::vector<std::string> labels = labels_named("v" + std::to_string(c) + "_", k);
      std::reverse(labels.begin(), labels.end());
      t.add_categorical(name, labels, random_codes(rows, k, 0.05, seed + c));
    } else if (c == 5) {
      t.add_numeric(name, std::vector<float>(static_cast<std::size_t>(rows), kNaN));
    } else if (c == 6) {
      t.add_numeric(name, std::vector<float>(static_cast<std::size_t>(rows), 42.5f));
    } else {
      const double scale = std::pow(10.0, static_cast<double>(c % 7) - 3);
      const double offset = (c % 3 == 0) ? 1e6 : -5.0;
      t.add_numeric(name, normal_values(rows, offset, scale, c % 2 ? 0.05 : 0.0, seed + c));
    }
  }
  return t;
}

PreparationOptions mixed_options(const Table& t) {
  PreparationOptions o;
  o.missing_indicators = true;
  o.hash_buckets = 97;
  std::vector<std::string> numeric, categorical;
  for (const auto& c : t.columns)
    (c.type == ColumnType::numeric ? numeric : categorical).push_back(c.name);
  for (std::size_t i = 0; i < numeric.size(); ++i) {
    ColumnPreparation p;
    switch (i % 4) {
      case 0:
        break;  // standard, mean, no clip
      case 1:
        p.scale = ScaleKind::minmax;
        p.impute = ImputeKind::median;
        p.clip = ClipKind::quantile;
        break;
      case 2:
        p.scale = ScaleKind::robust;
        p.impute = ImputeKind::constant;
        p.impute_constant = -1;
        p.clip = ClipKind::stddev;
        p.clip_k = 2;
        break;
      case 3:
        p.scale = ScaleKind::none;
        break;
    }
    if (i % 3 == 1) p.bins = 2 + static_cast<std::int32_t>(i % 40);
    o.per_column[numeric[i]] = p;
  }
  if (numeric.size() >= 2) o.crosses.push_back({numeric[0], numeric[1]});
  if (numeric.size() >= 5) o.crosses.push_back({numeric[4], numeric[2]});
  if (categorical.size() >= 2) o.crosses.push_back({categorical[0], categorical[1]});
  if (!categorical.empty() && !numeric.empty()) o.crosses.push_back({categorical[0], numeric[0]});
  if (!categorical.empty() && numeric.size() >= 3)
    o.crosses.push_back({numeric[2], categorical.back()});
  // Crosses of bins (numeric features 1 and 4 are binned, i % 3 == 1; feature 4 is c5, all
  // missing: one bin and the missing one): with a categorical column, and with other bins.
  if (!categorical.empty() && numeric.size() >= 2)
    o.crosses.push_back({numeric[1] + "#bins", categorical.back()});
  if (numeric.size() >= 5) o.crosses.push_back({numeric[4] + "#bins", numeric[1] + "#bins"});
  return o;
}

// ---------------------------------------------------------------------------------------------
// On every device

class PreparationOnDevice : public testing::TestWithParam<DeviceKind> {};

TEST_P(PreparationOnDevice, MatchesReferenceOverAwkwardSizes) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const DeviceContext cpu = DeviceContext::cpu();
  for (std::int64_t rows : {1, 11, 101, 12345, 1000003}) {
    for (std::int64_t cols : {1, 4, 9, 300}) {
      if (rows * cols > 4'100'000) continue;
      SCOPED_TRACE("rows " + std::to_string(rows) + " cols " + std::to_string(cols));
      const Table t = mixed_table(rows, cols, 1000 + static_cast<std::uint64_t>(rows + cols));
      std::vector<std::string> notes;
      const FittedPreparation f = fit_preparation(profile_of(t, 1024), mixed_options(t), &notes);
      const BoundPreparation bound = bind_preparation(f, t.columns);
      const std::vector<float> block = t.block();
      PreparedBlock out;
      // Poison: vectors already the right size are overwritten in place, so unwritten entries show.
      out.dense.assign(static_cast<std::size_t>(f.dense_features() * rows), kNaN);
      out.slot.assign(f.sparse.size() * static_cast<std::size_t>(rows), -7);
      out.value.assign(f.sparse.size() * static_cast<std::size_t>(rows), kNaN);
      apply_preparation(ctx, bound, ColumnBlockView{block.data(), rows, cols}, out);
      expect_matches_reference(f, t, out, 0.0);
      if (ctx.is_cuda()) {  // and bit for bit with the CPU backend
        PreparedBlock ref;
        apply_preparation(cpu, bound, ColumnBlockView{block.data(), rows, cols}, ref);
        EXPECT_EQ(out.slot, ref.slot);
        EXPECT_TRUE(std::equal(out.dense.begin(), out.dense.end(), ref.dense.begin(),
                               ref.dense.end(), [](float a, float b) { return a == b; }));
        EXPECT_TRUE(std::equal(out.value.begin(), out.value.end(), ref.value.begin(),
                               ref.value.end(), [](float a, float b) { return a == b; }));
      }
    }
  }
}

TEST_P(PreparationOnDevice, ReusesOneBindingAcrossBlocksOfDifferentSizes) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const Table all = mixed_table(20000, 12, 5);
  const FittedPreparation f = fit_preparation(profile_of(all), mixed_options(all));
  const BoundPreparation bound = bind_preparation(f, all.columns);
  std::int64_t first = 0;
  for (std::int64_t n : {7000, 13, 9000, 1, 3986}) {
    Table part;
    for (std::size_t c = 0; c < all.columns.size(); ++c) {
      part.add(all.columns[c],
               std::vector<float>(all.data[c].begin() + first, all.data[c].begin() + first + n));
    }
    const std::vector<float> block = part.block();
    PreparedBlock out;
    apply_preparation(
        ctx, bound, ColumnBlockView{block.data(), n, static_cast<std::int64_t>(all.columns.size())},
        out);
    SCOPED_TRACE("block at " + std::to_string(first) + " of " + std::to_string(n) + " rows");
    expect_matches_reference(f, part, out, 0.0);
    first += n;
  }
}

// TilePreparation (the scorer's tile-at-a-time CPU transform) gives apply_preparation's output,
// bit for bit, for every tile of a block, including tiles that end at the block's last row.
TEST(TilePreparation, TilesAreTheWholeBlockTransformBitForBit) {
  const DeviceContext cpu = DeviceContext::cpu();
  const std::int64_t rows = 5003, cols = 11;
  const Table t = mixed_table(rows, cols, 77);
  const FittedPreparation f = fit_preparation(profile_of(t, 1024), mixed_options(t));
  const BoundPreparation bound = bind_preparation(f, t.columns);
  const std::vector<float> block = t.block();
  const ColumnBlockView view{block.data(), rows, cols};
  PreparedBlock whole;
  apply_preparation(cpu, bound, view, whole);
  const TilePreparation tiles(bound);
  tiles.check(view);
  EXPECT_THROW(tiles.check(ColumnBlockView{block.data(), rows, 1}), Error);
  const std::int64_t dense = f.dense_features();
  const auto groups = static_cast<std::int64_t>(f.sparse.size());
  ASSERT_GT(groups, 0);  // the table has categorical columns: the sparse side is checked too
  for (std::int64_t tile_rows : {1, 640, 2048, 5003}) {
    SCOPED_TRACE("tiles of " + std::to_string(tile_rows));
    PreparedBlock tile;
    std::int64_t differing = 0;
    for (std::int64_t begin = 0; begin < rows; begin += tile_rows) {
      const std::int64_t end = std::min(rows, begin + tile_rows), n = end - begin;
      tile.dense.assign(static_cast<std::size_t>(dense * n), kNaN);  // poison
      tiles.prepare(view, begin, end, tile);
      ASSERT_EQ(tile.rows, n);
      for (std::int64_t r = 0; r < n; ++r) {
        for (std::int64_t k = 0; k < dense; ++k) {
          const float a = tile.dense[k * n + r], b = whole.dense[k * rows + begin + r];
          differing += std::memcmp(&a, &b, sizeof a) != 0;
        }
        for (std::int64_t g = 0; g < groups; ++g) {
          differing += tile.slot[g * n + r] != whole.slot[g * rows + begin + r];
          const float a = tile.value[g * n + r], b = whole.value[g * rows + begin + r];
          differing += std::memcmp(&a, &b, sizeof a) != 0;
        }
      }
    }
    EXPECT_EQ(differing, 0);
  }
}

TEST_P(PreparationOnDevice, EmptyBlockGivesEmptyOutput) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const Table t = mixed_table(100, 9, 3);
  const FittedPreparation f = fit_preparation(profile_of(t), mixed_options(t));
  const BoundPreparation bound = bind_preparation(f, t.columns);
  PreparedBlock out;
  apply_preparation(ctx, bound, ColumnBlockView{nullptr, 0, 9}, out);
  EXPECT_EQ(out.rows, 0);
  EXPECT_TRUE(out.dense.empty());
  EXPECT_TRUE(out.slot.empty());
}

TEST_P(PreparationOnDevice, ExpandedAccessorAgreesWithMaterialization) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  const Table t = mixed_table(301, 9, 11);
  PreparationOptions o = mixed_options(t);
  o.hash_buckets = 13;
  const FittedPreparation f = fit_preparation(profile_of(t), o);
  const PreparedBlock b = prepare(DeviceContext::cpu(), f, t);
  std::vector<float> m(5, kNaN);
  materialize_expanded(ctx, f, b, m);
  const std::int64_t width = f.expanded_features();
  ASSERT_EQ(m.size(), static_cast<std::size_t>(width * t.rows));

  // The reference: dense columns, then each group's slots with the value at the active slot.
  std::vector<float> ref(static_cast<std::size_t>(width * t.rows), 0.0f);
  const std::int64_t dense = f.dense_features();
  std::copy(b.dense.begin(), b.dense.end(), ref.begin());
  std::int64_t offset = dense;
  for (std::size_t g = 0; g < f.sparse.size(); ++g) {
    for (std::int64_t r = 0; r < t.rows; ++r) {
      const std::int32_t s = b.slot[g * t.rows + r];
      ref[(offset + s) * t.rows + r] = b.value[g * t.rows + r];
    }
    offset += f.sparse[g].slots;
  }
  ASSERT_EQ(offset, width);
  EXPECT_EQ(m, ref);

  // And the host accessor, element by element.
  const std::vector<std::int64_t> offsets = f.group_offsets();
  const PreparedRowsView view{b.dense.data(), b.slot.data(), b.value.data(), b.rows};
  const ExpandedLayout layout{dense, static_cast<std::int32_t>(f.sparse.size()), offsets.data()};
  for (std::int64_t k = 0; k < width; ++k) {
    for (std::int64_t r = 0; r < t.rows; r += 7)
      ASSERT_EQ(expanded_feature(view, layout, r, k), ref[k * t.rows + r]) << k << " " << r;
  }
}

// `v` with 0.5% of its observed values (seeded choice) 1000 times further from `center`: what
// --clip is for.
std::vector<float> with_gross_outliers(std::vector<float> v, double center, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  for (auto& x : v) {
    if (!std::isnan(x) && u(rng) < 0.005) x = static_cast<float>(center + (x - center) * 1000.0);
  }
  return v;
}

// Clipped, then standard-scaled: the scale is that of the clipped values, from the sketch of a
// column profiled block by block (merged and compacted summaries, rank error ~1.5/1024), so the
// prepared values of a column with gross outliers have mean ~0 and std ~1.
TEST_P(PreparationOnDevice, ClippedStandardScalingOfALargeColumnGivesMeanZeroStdOne) {
  LATHE_SKIP_WITHOUT_DEVICE(GetParam());
  const DeviceContext ctx = test::context_for(GetParam());
  Table t;
  const std::vector<float> v = with_gross_outliers(normal_values(200003, 5.0, 2.0, 0.05, 41), 5.0, 42);
  t.add_numeric("x", v);
  ProfileOptions po;
  po.sketch_capacity = 1024;
  DataProfile profile = make_profile(t.columns, po);
  constexpr std::int64_t kBlock = 10007;
  for (std::int64_t begin = 0; begin < t.rows; begin += kBlock) {
    const std::int64_t n = std::min(kBlock, t.rows - begin);
    profile_block(ctx, ColumnBlockView{v.data() + begin, n, 1}, {}, profile, po);
  }
  ASSERT_LT(profile.columns[0].numeric.sketch.points().size(), 1025u);
  for (const ClipKind clip : {ClipKind::quantile, ClipKind::stddev}) {
    SCOPED_TRACE(clip == ClipKind::quantile ? "quantile" : "stddev");
    PreparationOptions o;
    o.defaults.clip = clip;
    const FittedPreparation f = fit_preparation(profile, o);
    const NumericTransform& tr = f.numeric[0].transform;
    // The direct computation: the observed values clipped to the fitted bounds.
    std::vector<float> clipped;
    for (float x : v) {
      if (!std::isnan(x)) clipped.push_back(std::clamp(x, tr.clip_lo, tr.clip_hi));
    }
    const Moments m = moments(clipped);
    ASSERT_LT(m.stddev, 0.5 * moments(v).stddev);  // the outliers dominate the raw spread
    // Quantile bounds lie in the bulk, where the sketch is dense: within a fraction of a percent.
    // Mean +- 3 std of the raw values lies among the few outliers (0.4% of the rows beyond it), whose
    // count the sketch knows only to about one point's weight (rows / 1024), and that count
    // dominates the clipped variance: there the std is good to several percent (the sketch's limit).
    const double tol = clip == ClipKind::quantile ? 0.005 : 0.1;
    EXPECT_NEAR(tr.center, static_cast<double>(m.mean), 0.005 * static_cast<double>(m.stddev));
    EXPECT_NEAR(1.0 / tr.inv_scale, static_cast<double>(m.stddev), tol * static_cast<double>(m.stddev));
    EXPECT_NEAR(tr.fill, static_cast<double>(m.mean), 0.005 * static_cast<double>(m.stddev));
    const PreparedBlock b = prepare(ctx, f, t);
    std::vector<float> observed;
    for (std::int64_t r = 0; r < t.rows; ++r) {
      if (!std::isnan(v[r])) observed.push_back(dense_at(b, 0, r));
      if (std::isnan(v[r])) EXPECT_NEAR(dense_at(b, 0, r), 0.0, 0.005) << r;  // the clipped mean
    }
    const Moments pm = moments(observed);
    EXPECT_NEAR(static_cast<double>(pm.mean), 0.0, 0.005);
    EXPECT_NEAR(static_cast<double>(pm.stddev), 1.0, tol);
  }
}

LATHE_INSTANTIATE_FOR_DEVICES(PreparationOnDevice);

// ---------------------------------------------------------------------------------------------
// Fitting and the formulas, against independent references (CPU)

class Preparation : public testing::Test {
 protected:
  const DeviceContext cpu = DeviceContext::cpu();
};

TEST_F(Preparation, StandardScalingIsMeanOverPopulationStd) {
  Table t;
  t.add_numeric("x", normal_values(1001, 3.0, 2.0, 0.1, 1));
  const FittedPreparation f = fit_preparation(profile_of(t), {});
  const PreparedBlock b = prepare(cpu, f, t);
  const Moments m = moments(t.data[0]);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    const float x = t.data[0][r];
    const double expected = std::isnan(x) ? 0.0 : static_cast<double>((x - m.mean) / m.stddev);
    EXPECT_NEAR(dense_at(b, 0, r), expected, 1e-6 * std::max(1.0, std::fabs(expected))) << r;
  }
}

TEST_F(Preparation, MinMaxScalingMapsTheRangeOntoZeroOne) {
  Table t;
  t.add_numeric("x", normal_values(777, -4.0, 3.0, 0.0, 2));
  PreparationOptions o;
  o.defaults.scale = ScaleKind::minmax;
  const FittedPreparation f = fit_preparation(profile_of(t), o);
  const PreparedBlock b = prepare(cpu, f, t);
  const Moments m = moments(t.data[0]);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    const double x = t.data[0][r];
    EXPECT_NEAR(dense_at(b, 0, r), (x - m.min) / (static_cast<double>(m.max) - m.min), 1e-6);
    EXPECT_GE(dense_at(b, 0, r), 0.0f);
    EXPECT_LE(dense_at(b, 0, r), 1.0f);
  }
}

TEST_F(Preparation, RobustScalingIsMedianOverIqr) {
  Table t;
  std::vector<float> v = normal_values(1001, 10.0, 5.0, 0.0, 3);
  v[3] = 1e6f;  // an outlier robust scaling ignores
  t.add_numeric("x", v);
  PreparationOptions o;
  o.defaults.scale = ScaleKind::robust;
  const FittedPreparation f = fit_preparation(profile_of(t), o);
  const PreparedBlock b = prepare(cpu, f, t);
  const double median = numpy_quantile(v, 0.5);
  const double iqr = numpy_quantile(v, 0.75) - numpy_quantile(v, 0.25);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    const double expected = (v[r] - median) / iqr;
    EXPECT_NEAR(dense_at(b, 0, r), expected, 1e-6 * std::max(1.0, std::fabs(expected))) << r;
  }
}

TEST_F(Preparation, MedianMeanAndConstantImputation) {
  Table t;
  std::vector<float> v = normal_values(501, 1.0, 1.0, 0.2, 4);
  for (auto& x : v) {
    if (!std::isnan(x)) x = std::exp(x);  // skewed: mean != median
  }
  t.add_numeric("med", v);
  t.add_numeric("mean", v);
  t.add_numeric("const", v);
  PreparationOptions o;
  o.defaults.scale = ScaleKind::none;
  o.per_column["med"] = o.defaults;
  o.per_column["med"].impute = ImputeKind::median;
  o.per_column["const"] = o.defaults;
  o.per_column["const"].impute = ImputeKind::constant;
  o.per_column["const"].impute_constant = -3.5;
  const FittedPreparation f = fit_preparation(profile_of(t), o);
  const PreparedBlock b = prepare(cpu, f, t);
  const double median = numpy_quantile(v, 0.5);
  const double mean = static_cast<double>(moments(v).mean);
  ASSERT_GT(std::fabs(median - mean), 0.1);
  std::int64_t missing = 0;
  for (std::int64_t r = 0; r < t.rows; ++r) {
    if (std::isnan(v[r])) {
      ++missing;
      EXPECT_FLOAT_EQ(dense_at(b, 0, r), static_cast<float>(median));
      EXPECT_FLOAT_EQ(dense_at(b, 1, r), static_cast<float>(mean));
      EXPECT_EQ(dense_at(b, 2, r), -3.5f);
    } else {
      for (int c = 0; c < 3; ++c) EXPECT_EQ(dense_at(b, c, r), v[r]);
    }
  }
  EXPECT_GT(missing, 50);
}

TEST_F(Preparation, MissingIndicatorsOnlyForColumnsWithMissingValues) {
  Table t;
  t.add_numeric("full", normal_values(300, 0, 1, 0.0, 5));
  t.add_numeric("holes", normal_values(300, 0, 1, 0.3, 6));
  PreparationOptions o;
  o.missing_indicators = true;
  const FittedPreparation f = fit_preparation(profile_of(t), o);
  EXPECT_EQ(f.dense_names(), (std::vector<std::string>{"full", "holes", "holes_missing"}));
  const PreparedBlock b = prepare(cpu, f, t);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    EXPECT_EQ(dense_at(b, 2, r), std::isnan(t.data[1][r]) ? 1.0f : 0.0f);
    EXPECT_TRUE(std::isfinite(dense_at(b, 1, r)));
  }
  o.missing_indicators = false;
  EXPECT_EQ(fit_preparation(profile_of(t), o).dense_features(), 2);
}

TEST_F(Preparation, ClipsToQuantilesOrStandardDeviations) {
  Table t;
  std::vector<float> v = normal_values(2001, 0, 1, 0.0, 7);
  v[10] = 50.0f;
  v[20] = -80.0f;
  t.add_numeric("q", v);
  t.add_numeric("s", v);
  PreparationOptions o;
  o.defaults.scale = ScaleKind::none;
  o.per_column["q"] = o.defaults;
  o.per_column["q"].clip = ClipKind::quantile;
  o.per_column["q"].clip_lo_quantile = 0.05;
  o.per_column["q"].clip_hi_quantile = 0.9;
  o.per_column["s"] = o.defaults;
  o.per_column["s"].clip = ClipKind::stddev;
  o.per_column["s"].clip_k = 2.0;
  const FittedPreparation f = fit_preparation(profile_of(t), o);
  const PreparedBlock b = prepare(cpu, f, t);
  const float qlo = static_cast<float>(numpy_quantile(v, 0.05)),
              qhi = static_cast<float>(numpy_quantile(v, 0.9));
  const Moments m = moments(v);
  const float slo = static_cast<float>(m.mean - 2 * m.stddev),
              shi = static_cast<float>(m.mean + 2 * m.stddev);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    EXPECT_FLOAT_EQ(dense_at(b, 0, r), std::clamp(v[r], qlo, qhi)) << r;
    EXPECT_NEAR(dense_at(b, 1, r), std::clamp(v[r], slo, shi), 1e-5) << r;
  }
  EXPECT_FLOAT_EQ(dense_at(b, 0, 10), qhi);
  EXPECT_NEAR(dense_at(b, 1, 20), slo, 1e-5);
}

// The transform fills, clips, then scales: standard scaling and mean imputation take the moments of
// the clipped values. A column of at most the sketch's capacity values is summarised exactly, so
// they match a direct computation to double rounding and the prepared values have mean 0, std 1.
TEST_F(Preparation, ClippedStandardScalingAndMeanFillAreThoseOfTheClippedValues) {
  Table t;
  std::vector<float> v = normal_values(1000, 3.0, 2.0, 0.1, 31);
  for (std::int64_t i = 0; i < 1000; i += 97) {
    if (!std::isnan(v[i])) v[i] = static_cast<float>(3.0 + (v[i] - 3.0) * 1000.0);
  }
  v[1] = 1e7f;  // and one far out on each side
  v[2] = -1e7f;
  t.add_numeric("x", v);
  struct Case {
    ClipKind clip;
    double lo, hi, k;
  };
  for (const Case c : {Case{ClipKind::quantile, 0.01, 0.99, 0}, Case{ClipKind::quantile, 0.2, 0.7, 0},
                       Case{ClipKind::quantile, 0.0, 0.95, 0}, Case{ClipKind::stddev, 0, 0, 0.01},
                       Case{ClipKind::iqr, 0, 0, 1.5}, Case{ClipKind::iqr, 0, 0, 0.2}}) {
    SCOPED_TRACE(std::to_string(c.lo) + " " + std::to_string(c.hi) + " " + std::to_string(c.k));
    PreparationOptions o;
    o.defaults.clip = c.clip;
    o.defaults.clip_lo_quantile = c.lo;
    o.defaults.clip_hi_quantile = c.hi;
    o.defaults.clip_k = c.k;
    o.defaults.clip_iqr_k = c.k;
    const FittedPreparation f = fit_preparation(profile_of(t, 1024), o);
    const NumericTransform& tr = f.numeric[0].transform;
    if (c.clip == ClipKind::quantile) {
      EXPECT_EQ(tr.clip_lo, static_cast<float>(numpy_quantile(v, c.lo)));
      EXPECT_EQ(tr.clip_hi, static_cast<float>(numpy_quantile(v, c.hi)));
    }
    if (c.clip == ClipKind::iqr) {  // Tukey's fences
      const double q25 = numpy_quantile(v, 0.25), q75 = numpy_quantile(v, 0.75);
      EXPECT_EQ(tr.clip_lo, static_cast<float>(q25 - c.k * (q75 - q25)));
      EXPECT_EQ(tr.clip_hi, static_cast<float>(q75 + c.k * (q75 - q25)));
    }
    std::vector<float> clipped;
    for (float x : v) {
      if (!std::isnan(x)) clipped.push_back(std::clamp(x, tr.clip_lo, tr.clip_hi));
    }
    const Moments m = moments(clipped);
    const double mean = static_cast<double>(m.mean), sd = static_cast<double>(m.stddev);
    EXPECT_NEAR(tr.center, mean, 1e-12 * (std::fabs(mean) + sd));
    EXPECT_NEAR(1.0 / tr.inv_scale, sd, 1e-12 * sd);
    EXPECT_EQ(tr.fill, static_cast<float>(mean));
    const PreparedBlock b = prepare(cpu, f, t);
    std::vector<float> observed;
    for (std::int64_t r = 0; r < t.rows; ++r) {
      const float x = v[r];
      const float expected =
          static_cast<float>((static_cast<long double>(std::isnan(x) ? static_cast<float>(mean)
                                                                      : std::clamp(x, tr.clip_lo, tr.clip_hi)) -
                              m.mean) /
                             m.stddev);
      EXPECT_NEAR(dense_at(b, 0, r), expected, 2e-7 * std::max(1.0f, std::fabs(expected))) << r;
      if (!std::isnan(x)) observed.push_back(dense_at(b, 0, r));
    }
    const Moments pm = moments(observed);
    EXPECT_NEAR(static_cast<double>(pm.mean), 0.0, 1e-6);
    EXPECT_NEAR(static_cast<double>(pm.stddev), 1.0, 1e-6);
  }
  // Bounds that move no value leave the profile's exact moments.
  PreparationOptions wide;
  wide.defaults.clip = ClipKind::quantile;
  wide.defaults.clip_lo_quantile = 0.0;
  wide.defaults.clip_hi_quantile = 1.0;
  const NumericTransform tw = fit_preparation(profile_of(t, 1024), wide).numeric[0].transform;
  const NumericTransform tn = fit_preparation(profile_of(t, 1024), {}).numeric[0].transform;
  EXPECT_EQ(tw.center, tn.center);
  EXPECT_EQ(tw.inv_scale, tn.inv_scale);
  EXPECT_EQ(tw.fill, tn.fill);
}

// --clip iqr where a share of the values beyond the 1% and 99% quantiles are gross outliers (5%, 1000
// times the spread, all on the high side): the quantile bounds lie among them and leave the scale
// theirs, Tukey's fences stay in the bulk. A column whose quartiles are one value (a count mostly 0)
// would be made constant by fences of width 0: it is left unclipped, with a note.
TEST_F(Preparation, IqrClipBoundsStayInTheBulkWhereTheQuantilesLieAmongOutliers) {
  Table t;
  std::vector<float> v = normal_values(100000, 10.0, 2.0, 0.0, 51);
  std::mt19937_64 rng(52);
  std::uniform_real_distribution<double> u(0, 1);
  for (auto& x : v) {
    if (u(rng) < 0.05) x = static_cast<float>(10.0 + 2000.0 * (1.0 + u(rng)));
  }
  t.add_numeric("x", v);
  std::vector<float> counts(100000, 0.0f);
  for (std::size_t i = 0; i < counts.size(); i += 7) counts[i] = static_cast<float>(1 + i % 5);
  t.add_numeric("count", counts);
  // A flag: its quartiles are one value too, but it has no other values to leave unclipped, and no
  // note (QA: every 0/1 column of the churn data was named).
  std::vector<float> flag(100000, 0.0f);
  for (std::size_t i = 0; i < flag.size(); i += 9) flag[i] = 1.0f;
  t.add_numeric("flag", flag);
  const DataProfile profile = profile_of(t, 1024);
  PreparationOptions quantile, iqr;
  quantile.defaults.clip = ClipKind::quantile;
  iqr.defaults.clip = ClipKind::iqr;
  std::vector<std::string> notes;
  const FittedPreparation fq = fit_preparation(profile, quantile);
  const FittedPreparation fi = fit_preparation(profile, iqr, &notes);
  const NumericTransform& tq = fq.numeric[0].transform;
  const NumericTransform& ti = fi.numeric[0].transform;
  EXPECT_GT(tq.clip_hi, 2000.0f);  // the 99% quantile: an outlier
  // The quartiles, shifted by the outliers, are about 8.7 and 11.6: fences about 4.4 and 15.9.
  EXPECT_GT(ti.clip_lo, 3.0f);
  EXPECT_LT(ti.clip_lo, 6.0f);
  EXPECT_GT(ti.clip_hi, 14.0f);
  EXPECT_LT(ti.clip_hi, 18.0f);
  // The scale: the bulk's (2, and 2.3 with the outliers on the fence), not the outliers' (over 400).
  EXPECT_LT(1.0 / ti.inv_scale, 3.0);
  EXPECT_GT(1.0 / tq.inv_scale, 400.0);
  const NumericTransform& tc = fi.numeric[1].transform;
  EXPECT_EQ(tc.clip_lo, -std::numeric_limits<float>::infinity());
  EXPECT_EQ(tc.clip_hi, std::numeric_limits<float>::infinity());
  const NumericTransform& tf = fi.numeric[2].transform;
  EXPECT_EQ(tf.clip_lo, -std::numeric_limits<float>::infinity());
  EXPECT_EQ(tf.clip_hi, std::numeric_limits<float>::infinity());
  ASSERT_EQ(notes.size(), 1u) << notes.back();
  EXPECT_EQ(notes[0], "column 'count': its quartiles are one value (0), so --clip iqr would make it constant: left "
                      "unclipped");
  iqr.defaults.clip_iqr_k = 0.0;
  EXPECT_THROW(fit_preparation(profile, iqr), InputError);
}

// Robust scaling after clipping: the median and IQR of the clipped values, which are the clipped
// quantiles; they differ from the raw ones only when the bounds cut into the IQR.
// fit_preparation_of (io/prepare_table.cpp) measures the clipped columns' moments in a pass over the
// data once the profile has given the bounds: clipping_columns names the columns to measure (those
// whose bounds move values), and the measured moments replace the sketch's estimate exactly.
TEST_F(Preparation, MeasuredClippedMomentsReplaceTheSketchsEstimate) {
  Table t;
  const std::vector<float> v = with_gross_outliers(normal_values(200003, 5.0, 2.0, 0.05, 41), 5.0, 43);
  t.add_numeric("x", v);
  t.add_numeric("wide", normal_values(200003, 0.0, 1.0, 0.0, 44));  // std:1000 moves no value
  t.add_numeric("plain", normal_values(200003, 0.0, 1.0, 0.0, 45));  // not clipped
  const DataProfile profile = profile_of(t, 1024);  // the profile pass's capacity
  PreparationOptions o;
  o.per_column["x"].clip = ClipKind::stddev;
  o.per_column["wide"].clip = ClipKind::stddev;
  o.per_column["wide"].clip_k = 1000.0;
  const FittedPreparation sketched = fit_preparation(profile, o);
  const std::map<std::string, ClipBounds> bounds = clipping_columns(sketched, profile);
  ASSERT_EQ(bounds.size(), 1u);
  ASSERT_EQ(bounds.begin()->first, "x");
  const NumericTransform& st = sketched.numeric[0].transform;
  EXPECT_EQ(bounds.begin()->second.lo, st.clip_lo);
  EXPECT_EQ(bounds.begin()->second.hi, st.clip_hi);

  std::vector<float> clipped;
  for (float x : v) {
    if (!std::isnan(x)) clipped.push_back(clip_value(x, st.clip_lo, st.clip_hi));
  }
  const Moments m = moments(clipped);
  const std::map<std::string, ClippedMoments> measured{
      {"x", ClippedMoments{static_cast<double>(m.mean), static_cast<double>(m.stddev * m.stddev)}}};
  const FittedPreparation exact = fit_preparation(profile, o, nullptr, &measured);
  const NumericTransform& tr = exact.numeric[0].transform;
  EXPECT_EQ(tr.clip_lo, st.clip_lo);
  EXPECT_EQ(tr.clip_hi, st.clip_hi);
  EXPECT_DOUBLE_EQ(tr.center, static_cast<double>(m.mean));
  EXPECT_DOUBLE_EQ(1.0 / tr.inv_scale, static_cast<double>(m.stddev));
  EXPECT_EQ(tr.fill, static_cast<float>(m.mean));
  // The sketch's estimate of this std is off by more than float precision (bounds among outliers):
  // what the measured moments are for.
  EXPECT_GT(std::fabs(1.0 / st.inv_scale - static_cast<double>(m.stddev)), 1e-4 * static_cast<double>(m.stddev));
  // The other columns are fitted as without measured moments.
  for (std::size_t c = 1; c < 3; ++c) {
    EXPECT_EQ(exact.numeric[c].transform.center, sketched.numeric[c].transform.center) << c;
    EXPECT_EQ(exact.numeric[c].transform.inv_scale, sketched.numeric[c].transform.inv_scale) << c;
  }
  const PreparedBlock b = prepare(cpu, exact, t);
  std::vector<float> observed;
  for (std::int64_t r = 0; r < t.rows; ++r) {
    if (!std::isnan(v[r])) observed.push_back(dense_at(b, 0, r));
  }
  const Moments pm = moments(observed);
  EXPECT_NEAR(static_cast<double>(pm.mean), 0.0, 1e-6);
  EXPECT_NEAR(static_cast<double>(pm.stddev), 1.0, 1e-6);
}

TEST_F(Preparation, ClippedRobustScalingTakesTheClippedQuartiles) {
  Table t;
  const std::vector<float> v = normal_values(1001, 0, 1, 0.0, 32);
  t.add_numeric("x", v);
  PreparationOptions o;
  o.defaults.scale = ScaleKind::robust;
  o.defaults.clip = ClipKind::quantile;
  o.defaults.clip_lo_quantile = 0.3;
  o.defaults.clip_hi_quantile = 0.6;
  const NumericTransform tr = fit_preparation(profile_of(t), o).numeric[0].transform;
  std::vector<float> clipped;
  for (float x : v) clipped.push_back(std::clamp(x, tr.clip_lo, tr.clip_hi));
  EXPECT_NEAR(tr.center, numpy_quantile(clipped, 0.5), 1e-6);
  EXPECT_NEAR(1.0 / tr.inv_scale, numpy_quantile(clipped, 0.75) - numpy_quantile(clipped, 0.25), 1e-6);
}

TEST_F(Preparation, MinMaxAfterClippingMapsTheClipBoundsOntoZeroOne) {
  Table t;
  std::vector<float> v = normal_values(1001, 0, 1, 0.0, 8);
  v[0] = 1000.0f;
  t.add_numeric("x", v);
  PreparationOptions o;
  o.defaults.scale = ScaleKind::minmax;
  o.defaults.clip = ClipKind::quantile;
  const FittedPreparation f = fit_preparation(profile_of(t), o);
  const PreparedBlock b = prepare(cpu, f, t);
  float lo = 1, hi = 0;
  for (std::int64_t r = 0; r < t.rows; ++r) {
    lo = std::min(lo, dense_at(b, 0, r));
    hi = std::max(hi, dense_at(b, 0, r));
  }
  EXPECT_FLOAT_EQ(lo, 0.0f);
  EXPECT_FLOAT_EQ(hi, 1.0f);
}

TEST_F(Preparation, LargeMeanSmallSpreadKeepsFloat32Precision) {
  // Mean 1e6, standard deviation 1: float32 spacing at 1e6 is 0.0625, so centering in float would
  // lose most of the signal; centering in double then casting must be exact to the output's
  // rounding.
  Table t;
  const std::vector<float> v = normal_values(100001, 1e6, 1.0, 0.0, 9);
  t.add_numeric("x", v);
  const FittedPreparation f = fit_preparation(profile_of(t), {});
  const PreparedBlock b = prepare(cpu, f, t);
  const Moments m = moments(v);
  double worst_ulps = 0;
  for (std::int64_t r = 0; r < t.rows; ++r) {
    const long double ref = (static_cast<long double>(v[r]) - m.mean) / m.stddev;
    const float rf = static_cast<float>(ref);
    const double ulp = std::nextafter(std::fabs(rf), INFINITY) - std::fabs(rf);
    const double err = std::fabs(static_cast<double>(dense_at(b, 0, r)) - static_cast<double>(ref));
    // Half an ulp from the final rounding, plus the profile's mean error (~1e-10 here) scaled.
    EXPECT_LE(err, ulp + 1e-9) << r << ": " << dense_at(b, 0, r) << " vs "
                               << static_cast<double>(ref);
    worst_ulps = std::max(worst_ulps, err / ulp);
  }
  EXPECT_LE(worst_ulps, 1.0);
}

TEST_F(Preparation, ConstantAndAllMissingColumnsGiveFiniteOutputAndNotes) {
  Table t;
  t.add_numeric("const", std::vector<float>(50, 7.25f));
  t.add_numeric("empty", std::vector<float>(50, kNaN));
  std::vector<float> mostly = std::vector<float>(50, 3.0f);
  mostly[1] = 9.0f;  // IQR 0
  t.add_numeric("mostly", mostly);
  for (ScaleKind s : {ScaleKind::standard, ScaleKind::minmax, ScaleKind::robust, ScaleKind::none}) {
    for (ImputeKind imp : {ImputeKind::mean, ImputeKind::median, ImputeKind::constant}) {
      PreparationOptions o;
      o.defaults.scale = s;
      o.defaults.impute = imp;
      o.defaults.clip = ClipKind::stddev;
      o.missing_indicators = true;
      std::vector<std::string> notes;
      const FittedPreparation f = fit_preparation(profile_of(t), o, &notes);
      const PreparedBlock b = prepare(cpu, f, t);
      for (float x : b.dense) ASSERT_TRUE(std::isfinite(x));
      for (std::int64_t r = 0; r < t.rows; ++r) {
        EXPECT_EQ(dense_at(b, 0, r), s == ScaleKind::none ? 7.25f : 0.0f);
        EXPECT_EQ(dense_at(b, 1, r), 0.0f);  // the constant, 0 by default
      }
      bool noted_empty = false;
      for (const auto& n : notes) noted_empty |= n.find("'empty'") != std::string::npos;
      EXPECT_TRUE(noted_empty);
      EXPECT_EQ(f.dense_names().back(), "empty_missing");
    }
  }
  // With a constant fill the all-missing column outputs that constant when not scaled.
  PreparationOptions o;
  o.defaults.scale = ScaleKind::none;
  o.defaults.impute = ImputeKind::constant;
  o.defaults.impute_constant = 2.5;
  const PreparedBlock b = prepare(cpu, fit_preparation(profile_of(t), o), t);
  EXPECT_EQ(dense_at(b, 1, 0), 2.5f);
}

TEST_F(Preparation, InfiniteValuesAreRefusedWhereTheyWouldPoisonTheOutput) {
  Table t;
  std::vector<float> v = normal_values(100, 0, 1, 0.0, 10);
  v[5] = INFINITY;
  t.add_numeric("x", v);
  try {
    fit_preparation(profile_of(t), {});
    ADD_FAILURE() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'x'"), std::string::npos) << e.what();
  }
  // Quantile clipping, median imputation and robust scaling handle it.
  PreparationOptions o;
  o.defaults.scale = ScaleKind::robust;
  o.defaults.impute = ImputeKind::median;
  o.defaults.clip = ClipKind::quantile;
  const PreparedBlock b = prepare(cpu, fit_preparation(profile_of(t), o), t);
  for (float x : b.dense) EXPECT_TRUE(std::isfinite(x));
  // So do mean imputation and standard scaling after quantile clipping: the moments of the clipped
  // values are finite.
  o.defaults.scale = ScaleKind::standard;
  o.defaults.impute = ImputeKind::mean;
  const PreparedBlock c = prepare(cpu, fit_preparation(profile_of(t), o), t);
  for (float x : c.dense) EXPECT_TRUE(std::isfinite(x));
  // Clipping to standard deviations needs the raw moments: refused.
  o.defaults.clip = ClipKind::stddev;
  EXPECT_THROW(fit_preparation(profile_of(t), o), InputError);
}

// ---------------------------------------------------------------------------------------------
// Categories

TEST_F(Preparation, VocabularyIsSortedLabelsWithCountsAndUnseenLabelsGoToUnknown) {
  Table train;
  // "zeta" never occurs in training: not in the vocabulary.
  train.add_categorical("city", {"paris", "zeta", "berlin", "oslo"}, {0, 2, 3, kNaN, 0, 2});
  const FittedPreparation f = fit_preparation(profile_of(train), {});
  ASSERT_EQ(f.categorical.size(), 1u);
  const CategoricalEncoding& enc = f.categorical[0];
  EXPECT_EQ(enc.vocabulary, (std::vector<std::string>{"berlin", "oslo", "paris"}));
  EXPECT_EQ(enc.missing_slot(), 3);
  EXPECT_EQ(enc.unknown_slot(), 4);
  EXPECT_EQ(f.sparse[0].slots, 5u);
  EXPECT_EQ(f.expanded_features(), 5);

  Table score;
  score.add_categorical("city", {"oslo", "zeta", "paris", "rome"}, {0, 1, 2, 3, kNaN});
  const PreparedBlock b = prepare(cpu, f, score);
  EXPECT_EQ(b.slot, (std::vector<std::int32_t>{1, 4, 2, 4, 3}));
  EXPECT_EQ(b.value, (std::vector<float>{1, 1, 1, 1, 1}));
}

TEST_F(Preparation, LabelsAreMatchedAcrossFilesWhoseCodesDiffer) {
  // The same rows in two files imported separately: codes assigned in different orders.
  const std::vector<std::string> rows = {"red", "green", "blue", "green", "red", "red"};
  auto file = [&](std::vector<std::string> labels) {
    Table t;
    std::vector<float> codes;
    for (const auto& r : rows)
      codes.push_back(
          static_cast<float>(std::find(labels.begin(), labels.end(), r) - labels.begin()));
    t.add_categorical("color", labels, codes);
    t.add_numeric("x", {1, 2, 3, 4, 5, 6});
    return t;
  };
  const Table a = file({"red", "green", "blue"});
  const Table b = file({"blue", "red", "green"});
  const FittedPreparation fa = fit_preparation(profile_of(a), {});
  const FittedPreparation fb = fit_preparation(profile_of(b), {});
  EXPECT_EQ(fa.categorical[0].vocabulary, fb.categorical[0].vocabulary);
  EXPECT_EQ(prepare(cpu, fa, a).slot, prepare(cpu, fa, b).slot);
  EXPECT_EQ(prepare(cpu, fa, a).slot, prepare(cpu, fb, b).slot);
  // Columns in another order bind by name.
  Table swapped;
  swapped.add(b.columns[1], b.data[1]);
  swapped.add(b.columns[0], b.data[0]);
  const PreparedBlock pa = prepare(cpu, fa, a), ps = prepare(cpu, fa, swapped);
  EXPECT_EQ(pa.slot, ps.slot);
  EXPECT_EQ(pa.dense, ps.dense);
}

// Values are read as float32: a column whose magnitude dwarfs its spread (1e6 + N(0, 1): float32's
// spacing there is 0.0625, 6% of the spread) gets a note naming it; the same spread near 0 does not.
TEST_F(Preparation, ACoarseFloat32ColumnIsNoted) {
  Table t;
  std::vector<float> far, near;
  for (int r = 0; r < 500; ++r) {
    const double v = std::sin(r * 0.7);
    far.push_back(static_cast<float>(1e6 + v));
    near.push_back(static_cast<float>(v));
  }
  t.add_numeric("far", far);
  t.add_numeric("near", near);
  std::vector<std::string> notes;
  fit_preparation(profile_of(t), PreparationOptions{}, &notes);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("column 'far': its values are read as float32"), std::string::npos) << notes[0];
  PreparationOptions unscaled;
  unscaled.defaults.scale = ScaleKind::none;  // no spread to compare with: nothing to note
  notes.clear();
  fit_preparation(profile_of(t), unscaled, &notes);
  EXPECT_TRUE(notes.empty());
}

TEST_F(Preparation, ManyCategoriesAreHashedIntoBuckets) {
  Table t;
  const auto labels = labels_named("user", 50);
  t.add_categorical("user", labels, random_codes(400, 50, 0.1, 12));
  PreparationOptions o;
  o.max_categories = 20;
  o.category_buckets = 16;
  std::vector<std::string> notes;
  const FittedPreparation f = fit_preparation(profile_of(t), o, &notes);
  ASSERT_TRUE(f.categorical[0].hashed);
  EXPECT_EQ(f.sparse[0].slots, 18u);
  EXPECT_FALSE(notes.empty());
  const PreparedBlock b = prepare(cpu, f, t);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    const float code = t.data[0][r];
    if (std::isnan(code)) {
      EXPECT_EQ(b.slot[r], 16);
    } else {
      const std::string& l = labels[static_cast<std::size_t>(code)];
      EXPECT_EQ(b.slot[r], static_cast<std::int32_t>(label_hash(l.data(), l.size()) % 16));
    }
  }
  // An unseen label still hashes to its bucket.
  Table score;
  score.add_categorical("user", {"newcomer"}, {0});
  const std::string n = "newcomer";
  EXPECT_EQ(prepare(cpu, f, score).slot[0],
            static_cast<std::int32_t>(label_hash(n.data(), n.size()) % 16));
}

TEST_F(Preparation, HashedColumnsGetBucketsForTheirLabelsUnlessTold) {
  EXPECT_EQ(auto_category_buckets(0), 1u << 14);
  EXPECT_EQ(auto_category_buckets(8192), 1u << 14);
  EXPECT_EQ(auto_category_buckets(8193), 1u << 15);
  EXPECT_EQ(auto_category_buckets(10001), 1u << 15);
  EXPECT_EQ(auto_category_buckets(100000), 1u << 18);
  EXPECT_EQ(auto_category_buckets(524288), 1u << 20);
  EXPECT_EQ(auto_category_buckets(17000000), 1u << 20);
  // 50 labels over a cap of 20: the default (0) sizes the column's buckets, a given count is kept.
  Table t;
  t.add_categorical("user", labels_named("user", 50), random_codes(400, 50, 0.0, 12));
  PreparationOptions o;
  o.max_categories = 20;
  std::vector<std::string> notes;
  const FittedPreparation f = fit_preparation(profile_of(t), o, &notes);
  ASSERT_TRUE(f.categorical[0].hashed);
  EXPECT_EQ(f.categorical[0].buckets, 1u << 14);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("hashed into 16384 buckets"), std::string::npos) << notes[0];
  // A column named in category_buckets_of keeps those buckets (a retraining's parent's), unless a
  // count is given for every column.
  o.category_buckets_of["user"] = 1u << 16;
  EXPECT_EQ(fit_preparation(profile_of(t), o).categorical[0].buckets, 1u << 16);
  o.category_buckets = 64;
  EXPECT_EQ(fit_preparation(profile_of(t), o).categorical[0].buckets, 64u);
}

TEST_F(Preparation, RareLabelsShareTheUnknownSlot) {
  // Labels "a" in 6 rows, "b" in 3, "c" in 2 (one under each of its two codes: the same label twice
  // in the file's table, whose rows count together), "d" in none: a minimum of 3 rows keeps a and b.
  Table t;
  t.add_categorical("city", {"a", "b", "c", "d", "c"},
                    {0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 4, kNaN});
  PreparationOptions o;
  o.min_category_count = 3;
  std::vector<std::string> notes;
  const FittedPreparation f = fit_preparation(profile_of(t), o, &notes);
  const CategoricalEncoding& city = f.categorical[0];
  ASSERT_FALSE(city.hashed);
  EXPECT_EQ(city.vocabulary, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("column 'city': 1 of its 3 labels is in fewer than 3 training rows (2 rows)"),
            std::string::npos)
      << notes[0];
  const PreparedBlock b = prepare(cpu, f, t);
  const std::vector<std::int32_t> expected = {0, 0, 0, 0, 0, 0, 1, 1, 1, city.unknown_slot(), city.unknown_slot(),
                                              city.missing_slot()};
  EXPECT_EQ(std::vector<std::int32_t>(b.slot.begin(), b.slot.end()), expected);

  // At 2 rows "c" (1 + 1 under its two codes) keeps its slot.
  o.min_category_count = 2;
  EXPECT_EQ(fit_preparation(profile_of(t), o).categorical[0].vocabulary,
            (std::vector<std::string>{"a", "b", "c"}));

  // The cap counts the labels left: 2 are not more than 2, so no hashing; with 1 row each, 3 are.
  o.min_category_count = 3;
  o.max_categories = 2;
  EXPECT_FALSE(fit_preparation(profile_of(t), o).categorical[0].hashed);
  o.min_category_count = 1;
  EXPECT_TRUE(fit_preparation(profile_of(t), o).categorical[0].hashed);

  o.min_category_count = 0;
  EXPECT_THROW(fit_preparation(profile_of(t), o), InputError);
}
TEST_F(Preparation, DistinctLabelsFitAsTheMergedOnes) {
  // A profile whose labels are known to name each label once (labels_distinct: profile_table's) is
  // fitted from its counts as they stand, without merging labels through a table: the encodings and
  // notes must be those of the merging fit, hashed or not, with rare labels and labels in no row.
  Table t;
  std::vector<std::string> labels;
  std::vector<float> codes;
  for (int k = 0; k < 40; ++k) {
    labels.push_back("l" + std::to_string(k));
    for (int i = 0; i < k % 7; ++i) codes.push_back(static_cast<float>(k));  // label k in k % 7 rows
  }
  codes.insert(codes.end(), {kNaN, kNaN, kNaN});
  t.add_categorical("city", labels, codes);
  const DataProfile merged = profile_of(t);
  ASSERT_FALSE(merged.columns[0].categorical.labels_distinct);  // a hand-made profile is merged
  DataProfile distinct = merged;
  distinct.columns[0].categorical.labels_distinct = true;
  DataProfile unlabelled = distinct;  // made without its labels (counts only): no label seen
  unlabelled.columns[0].categorical.labels.clear();
  DataProfile unlabelled_merged = unlabelled;
  unlabelled_merged.columns[0].categorical.labels_distinct = false;
  int hashed = 0, vocabularies = 0;
  for (const std::int64_t min_count : {1, 2, 3, 7}) {
    for (const std::int64_t max_categories : {0, 5, 30, 1000}) {
      for (const std::uint32_t buckets : {0u, 64u}) {
        PreparationOptions o;
        o.min_category_count = min_count;
        o.max_categories = max_categories;
        o.category_buckets = buckets;
        const std::string context = "min " + std::to_string(min_count) + ", max " + std::to_string(max_categories) +
                                    ", buckets " + std::to_string(buckets);
        using Pair = std::pair<const DataProfile*, const DataProfile*>;
        for (const auto& [a, b] : {Pair{&merged, &distinct}, Pair{&unlabelled_merged, &unlabelled}}) {
          std::vector<std::string> merged_notes, distinct_notes;
          const FittedPreparation from_merged = fit_preparation(*a, o, &merged_notes);
          const FittedPreparation from_distinct = fit_preparation(*b, o, &distinct_notes);
          EXPECT_EQ(preparation_to_json(from_distinct), preparation_to_json(from_merged)) << context;
          EXPECT_EQ(distinct_notes, merged_notes) << context;
          hashed += from_distinct.categorical[0].hashed ? 1 : 0;
          vocabularies += from_distinct.categorical[0].vocabulary.empty() ? 0 : 1;
        }
      }
    }
  }
  EXPECT_GT(hashed, 0);  // both kinds of encoding were compared
  EXPECT_GT(vocabularies, 0);
}

// ---------------------------------------------------------------------------------------------
// Crosses

void expect_input_error(const std::function<void()>& f, const std::vector<std::string>& mentions) {
  try {
    f();
    ADD_FAILURE() << "expected InputError";
  } catch (const InputError& e) {
    for (const auto& m : mentions)
      EXPECT_NE(std::string(e.what()).find(m), std::string::npos) << e.what() << " lacks " << m;
  }
}

Table cross_table() {
  Table t;
  t.add_numeric("age", normal_values(200, 40, 10, 0.05, 13));
  t.add_numeric("income", normal_values(200, 5e4, 1e4, 0.0, 14));
  t.add_numeric("height", normal_values(200, 170, 8, 0.0, 15));
  t.add_categorical("city", {"a", "b", "c"}, random_codes(200, 3, 0.05, 16));
  t.add_categorical("device", {"ios", "android"}, random_codes(200, 2, 0.0, 17));
  t.add_numeric("y", normal_values(200, 0, 1, 0.0, 18));
  return t;
}

TEST_F(Preparation, NumericCrossesAreProductsOfPreparedValues) {
  const Table t = cross_table();
  PreparationOptions o;
  o.label = "y";
  o.crosses = {{"age", "income"}, {"income", "age"}, {"height", "height"}};
  const FittedPreparation f = fit_preparation(profile_of(t), o);
  EXPECT_EQ(f.dense_names(),
            (std::vector<std::string>{"age", "income", "height", "age*income", "height*height"}));
  const PreparedBlock b = prepare(cpu, f, t);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    EXPECT_EQ(dense_at(b, 3, r), dense_at(b, 0, r) * dense_at(b, 1, r));
    EXPECT_EQ(dense_at(b, 4, r), dense_at(b, 2, r) * dense_at(b, 2, r));
  }
  EXPECT_EQ(b.label, t.data[5]);

  PreparationOptions all;
  all.label = "y";
  all.cross_all = true;
  all.crosses = {{"income", "age"}};  // already in "all"
  const FittedPreparation fa = fit_preparation(profile_of(t), all);
  EXPECT_EQ(fa.dense_names(), (std::vector<std::string>{"age", "income", "height", "age*income",
                                                        "age*height", "income*height"}));
}

TEST_F(Preparation, CategoricalCrossesHashLabelPairsIntoBuckets) {
  const Table t = cross_table();
  PreparationOptions o;
  o.label = "y";
  o.hash_buckets = 31;
  o.crosses = {{"city", "device"}};
  const FittedPreparation f = fit_preparation(profile_of(t), o);
  const std::int32_t g = group_index(f, "city*device");
  ASSERT_GE(g, 0);
  EXPECT_EQ(f.sparse[g].kind, SparseKind::categorical_cross);
  EXPECT_EQ(f.sparse[g].slots, 31u);
  const PreparedBlock b = prepare(cpu, f, t);
  const auto hash_of = [](const std::string& s) { return label_hash(s.data(), s.size()); };
  for (std::int64_t r = 0; r < t.rows; ++r) {
    const float city = t.data[3][r], device = t.data[4][r];
    const std::uint64_t ha = std::isnan(city)
                                 ? kMissingLabelHash
                                 : hash_of(t.columns[3].categories[static_cast<std::size_t>(city)]);
    const std::uint64_t hb = hash_of(t.columns[4].categories[static_cast<std::size_t>(device)]);
    const std::int32_t s = b.slot[g * t.rows + r];
    EXPECT_EQ(s, static_cast<std::int32_t>(cross_bucket(ha, hb, 31)));
    EXPECT_GE(s, 0);
    EXPECT_LT(s, 31);
    EXPECT_EQ(b.value[g * t.rows + r], 1.0f);
  }
  // Deterministic, and independent of the file's codes.
  EXPECT_EQ(prepare(cpu, fit_preparation(profile_of(t), o), t).slot, b.slot);
  Table recoded = t;
  recoded.columns[4].categories = {"android", "ios"};
  for (auto& c : recoded.data[4]) c = 1.0f - c;
  EXPECT_EQ(prepare(cpu, f, recoded).slot, b.slot);
  // Distinct label pairs spread over several buckets.
  std::vector<std::int32_t> used(b.slot.begin() + g * t.rows, b.slot.begin() + (g + 1) * t.rows);
  std::sort(used.begin(), used.end());
  EXPECT_GE(std::unique(used.begin(), used.end()) - used.begin(), 4);
}

TEST_F(Preparation, NumericByCategoricalIsAPerCategorySlope) {
  const Table t = cross_table();
  PreparationOptions o;
  o.label = "y";
  o.crosses = {{"city", "age"}};
  const FittedPreparation f = fit_preparation(profile_of(t), o);
  const std::int32_t g = group_index(f, "city*age");
  ASSERT_GE(g, 0);
  EXPECT_EQ(f.sparse[g].kind, SparseKind::slope);
  EXPECT_EQ(f.sparse[g].slots, static_cast<std::uint32_t>(f.categorical[0].slots()));
  const PreparedBlock b = prepare(cpu, f, t);
  const std::int32_t city = group_index(f, "city");
  for (std::int64_t r = 0; r < t.rows; ++r) {
    EXPECT_EQ(b.slot[g * t.rows + r], b.slot[city * t.rows + r]);
    EXPECT_EQ(b.value[g * t.rows + r], dense_at(b, 0, r));
  }
}

// "age#bins" crosses age's quantile bins as a categorical column: the slot is the bucket of the
// row's bin's label hash (bin_label_hash of its edges; a missing age its missing bin's,
// kMissingLabelHash) and the city's label hash, as a categorical cross of age's bins one-hot would
// be. Bins cross other bins alike; a*b given again as b*a is the same cross, made once.
TEST_F(Preparation, BinsCrossWithACategoryOrOtherBinsAsCategoriesDo) {
  const Table t = cross_table();
  PreparationOptions o;
  o.label = "y";
  o.hash_buckets = 31;
  o.per_column["age"].bins = 4;
  o.per_column["income"].bins = 3;
  o.crosses = {{"age#bins", "city"}, {"city", "age#bins"}, {"age#bins", "income#bins"}};
  const FittedPreparation f = fit_preparation(profile_of(t), o);
  const std::int32_t g = group_index(f, "age#bins*city"), gb = group_index(f, "age#bins*income#bins");
  ASSERT_GE(g, 0);
  ASSERT_GE(gb, 0);
  EXPECT_EQ(group_index(f, "city*age#bins"), -1);
  EXPECT_EQ(f.sparse.size(), 2u + 2u + 2u);  // city, device; age's and income's bins; two crosses
  const SparseGroup& cross = f.sparse[g];
  EXPECT_EQ(cross.kind, SparseKind::categorical_cross);
  EXPECT_TRUE(cross.a_bins);
  EXPECT_FALSE(cross.b_bins);
  EXPECT_EQ(cross.a, 0);  // age, a numeric index
  EXPECT_EQ(cross.b, 0);  // city, a categorical index
  EXPECT_EQ(cross.slots, 31u);
  EXPECT_TRUE(f.sparse[gb].a_bins && f.sparse[gb].b_bins);
  const std::vector<std::uint64_t> age_hashes = f.numeric[0].bin_label_hashes();
  ASSERT_EQ(age_hashes.size(), f.numeric[0].bin_edges.size() + 2);
  EXPECT_EQ(age_hashes.back(), kMissingLabelHash);
  EXPECT_EQ(cross_side_hashes(f, cross, false), age_hashes);
  EXPECT_EQ(cross_side_hashes(f, cross, true), f.categorical[0].slot_label_hashes());
  // Distinct bins hash apart.
  std::vector<std::uint64_t> sorted = age_hashes;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end());

  // The binding keeps the slot hashes of the crossed categorical column only (city; device is
  // crossed with nothing).
  const BoundPreparation bound = bind_preparation(f, t.columns);
  ASSERT_EQ(bound.slot_hashes.size(), 2u);
  EXPECT_EQ(bound.slot_hashes[0], f.categorical[0].slot_label_hashes());
  EXPECT_TRUE(bound.slot_hashes[1].empty());

  const PreparedBlock b = prepare(cpu, f, t);
  const std::int32_t age_bins = group_index(f, "age#bins"), income_bins = group_index(f, "income#bins");
  const std::int32_t city = group_index(f, "city");
  const std::vector<std::uint64_t> income_hashes = f.numeric[1].bin_label_hashes();
  const std::vector<std::uint64_t> city_hashes = f.categorical[0].slot_label_hashes();
  std::int64_t missing_ages = 0;
  for (std::int64_t r = 0; r < t.rows; ++r) {
    const std::int32_t bin = b.slot[age_bins * t.rows + r];
    if (std::isnan(t.data[0][r])) {
      ++missing_ages;
      EXPECT_EQ(bin, static_cast<std::int32_t>(age_hashes.size()) - 1);  // as for the bins alone
    }
    const std::uint64_t age_hash = age_hashes[static_cast<std::size_t>(bin)];
    EXPECT_EQ(b.slot[g * t.rows + r],
              static_cast<std::int32_t>(cross_bucket(
                  age_hash, city_hashes[static_cast<std::size_t>(b.slot[city * t.rows + r])], 31)));
    EXPECT_EQ(b.slot[gb * t.rows + r],
              static_cast<std::int32_t>(cross_bucket(
                  age_hash, income_hashes[static_cast<std::size_t>(b.slot[income_bins * t.rows + r])], 31)));
    EXPECT_EQ(b.value[g * t.rows + r], 1.0f);
    EXPECT_EQ(b.value[gb * t.rows + r], 1.0f);
  }
  EXPECT_GT(missing_ages, 0);
  // Independent of the file's codes, and pairs spread over several buckets.
  Table recoded = t;
  recoded.columns[3].categories = {"c", "b", "a"};
  for (auto& c : recoded.data[3]) c = std::isnan(c) ? c : 2.0f - c;
  EXPECT_EQ(prepare(cpu, f, recoded).slot, b.slot);
  std::vector<std::int32_t> used(b.slot.begin() + g * t.rows, b.slot.begin() + (g + 1) * t.rows);
  std::sort(used.begin(), used.end());
  EXPECT_GE(std::unique(used.begin(), used.end()) - used.begin(), 8);
}

// The saved preparation of crossed bins: format 3 (a Lathe reading format 2 at most refuses it
// rather than take the cross for one of the categorical columns of its indices), "a_bins" /
// "b_bins" only on such crosses; it round-trips exactly, and a damaged or edited text is refused
// naming the file and the group.
TEST_F(Preparation, CrossedBinsAreSavedAsFormat3AndDamageIsRefused) {
  const Table t = cross_table();
  PreparationOptions o;
  o.label = "y";
  o.per_column["age"].bins = 4;
  o.per_column["income"].bins = 3;
  o.crosses = {{"city", "device"}, {"age#bins", "city"}, {"income#bins", "age#bins"}};
  const FittedPreparation f = fit_preparation(profile_of(t), o);
  const std::string text = preparation_to_json(f);
  const nlohmann::json j = nlohmann::json::parse(text);
  EXPECT_EQ(j["format_version"], 3);
  std::vector<std::string> with_bins;
  for (const auto& g : j["sparse"]) {
    if (g.contains("a_bins") || g.contains("b_bins")) with_bins.push_back(g["name"]);
  }
  EXPECT_EQ(with_bins, (std::vector<std::string>{"age#bins*city", "income#bins*age#bins"}));
  const FittedPreparation back = preparation_from_json(text, "m.h5");
  EXPECT_EQ(preparation_to_json(back), text);
  const PreparedBlock before = prepare(cpu, f, t), after = prepare(cpu, back, t);
  EXPECT_EQ(after.slot, before.slot);
  EXPECT_EQ(after.dense, before.dense);
  // Without crossed bins the text is format 2, without the keys.
  PreparationOptions uncrossed = o;
  uncrossed.crosses = {{"city", "device"}};
  const std::string format_2 = preparation_to_json(fit_preparation(profile_of(t), uncrossed));
  EXPECT_EQ(nlohmann::json::parse(format_2)["format_version"], 2);
  EXPECT_EQ(format_2.find("_bins"), std::string::npos);

  const auto refused = [&](const std::function<void(nlohmann::json&)>& damage,
                           const std::vector<std::string>& mentions) {
    nlohmann::json damaged = j;
    damage(damaged);
    expect_input_error([&] { preparation_from_json(damaged.dump(), "m.h5"); }, mentions);
  };
  const auto cross = [](nlohmann::json& d) -> nlohmann::json& {
    for (auto& g : d["sparse"]) {
      if (g["name"] == "age#bins*city") return g;
    }
    throw std::logic_error("no cross");
  };
  // A side of bins on an unbinned column (height, index 2), past the numeric columns, or on a group
  // that is not a cross; a side's flag of another type; a newer format.
  refused([&](nlohmann::json& d) { cross(d)["a"] = 2; }, {"m.h5", "age#bins*city", "without bins"});
  refused([&](nlohmann::json& d) { cross(d)["a"] = 99; }, {"m.h5", "age#bins*city"});
  refused([&](nlohmann::json& d) { d["sparse"][0]["a_bins"] = true; }, {"m.h5", "not a cross"});
  refused([&](nlohmann::json& d) { cross(d)["a_bins"] = "yes"; }, {"m.h5", "not valid"});
  refused([&](nlohmann::json& d) { d["format_version"] = 4; }, {"m.h5", "newer"});
}

TEST_F(Preparation, BinsAreEqualCountQuantileBinsOfTheRawValues) {
  // 1000 distinct values with 10% missing, and a column of three values.
  std::vector<float> x, few;
  for (int i = 0; i < 1000; ++i) {
    x.push_back(i % 10 == 9 ? kNaN : static_cast<float>((i * 7919) % 1000) * 0.5f - 100.0f);
    few.push_back(static_cast<float>(i % 3));
  }
  Table t;
  t.add_numeric("x", x);
  t.add_numeric("few", few);
  PreparationOptions o;
  o.defaults.bins = 4;
  o.per_column["few"].bins = 8;
  o.per_column["few"].clip = ClipKind::stddev;  // bins read the raw value, not the clipped one
  std::vector<std::string> notes;
  const FittedPreparation f = fit_preparation(profile_of(t), o, &notes);
  const std::int32_t g = group_index(f, "x#bins"), gf = group_index(f, "few#bins");
  ASSERT_GE(g, 0);
  ASSERT_GE(gf, 0);
  EXPECT_EQ(f.sparse[g].kind, SparseKind::bins);
  ASSERT_EQ(f.numeric[0].bin_edges.size(), 3u);
  EXPECT_EQ(f.sparse[g].slots, 5u);
  // Three values give three bins whatever was asked, with a note.
  EXPECT_EQ(f.numeric[1].bin_edges, (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(f.sparse[gf].slots, 4u);
  EXPECT_TRUE(std::any_of(notes.begin(), notes.end(),
                          [](const std::string& n) { return n.find("'few': 3 bins of the 8") != std::string::npos; }));
  const PreparedBlock b = prepare(cpu, f, t);
  std::vector<std::int64_t> per_bin(5, 0);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    const std::int32_t slot = b.slot[g * t.rows + r];
    ASSERT_GE(slot, 0);
    ASSERT_LT(slot, 5);
    EXPECT_EQ(b.value[g * t.rows + r], 1.0f);
    ++per_bin[static_cast<std::size_t>(slot)];
    if (std::isnan(x[r])) EXPECT_EQ(slot, 4);
    EXPECT_EQ(b.slot[gf * t.rows + r], static_cast<std::int32_t>(few[r]));
  }
  EXPECT_EQ(per_bin[4], 100);
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(per_bin[static_cast<std::size_t>(k)], 225, 3) << "bin " << k;
  // The edges are inner quantiles of the values, and the dense feature stays.
  EXPECT_EQ(dense_index(f, "x"), 0);
  const BoundPreparation bound = bind_preparation(f, t.columns);
  HostPrepareTables tables;
  build_prepare_tables(bound, tables);
  EXPECT_EQ(tables.bin_edge.size(), 5u);
  EXPECT_EQ(bin_slot(-INFINITY, f.numeric[0].bin_edges.data(), 3), 0);
  EXPECT_EQ(bin_slot(INFINITY, f.numeric[0].bin_edges.data(), 3), 3);
  EXPECT_EQ(bin_slot(f.numeric[0].bin_edges[1], f.numeric[0].bin_edges.data(), 3), 2);
}

TEST_F(Preparation, BinsOfAConstantOrEmptyColumnAreOneBinAndMissing) {
  Table t;
  t.add_numeric("c", std::vector<float>(50, 3.0f));
  t.add_numeric("m", std::vector<float>(50, kNaN));
  PreparationOptions o;
  o.defaults.bins = 10;
  const FittedPreparation f = fit_preparation(profile_of(t), o);
  ASSERT_EQ(f.sparse.size(), 2u);
  for (const auto& g : f.sparse) EXPECT_EQ(g.slots, 2u) << g.name;
  const PreparedBlock b = prepare(cpu, f, t);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    EXPECT_EQ(b.slot[r], 0);
    EXPECT_EQ(b.slot[t.rows + r], 1);
  }
}

// The rows of each bin of a binned column (bins then the missing slot), over the training table.
std::vector<std::int64_t> rows_per_bin(const FittedPreparation& f, const Table& t,
                                       const std::string& column) {
  const std::int32_t g = group_index(f, column + "#bins");
  EXPECT_GE(g, 0) << column;
  if (g < 0) return {};
  const PreparedBlock b = prepare(DeviceContext::cpu(), f, t);
  std::vector<std::int64_t> per_bin(f.sparse[static_cast<std::size_t>(g)].slots, 0);
  for (std::int64_t r = 0; r < t.rows; ++r)
    ++per_bin.at(static_cast<std::size_t>(b.slot[g * t.rows + r]));
  return per_bin;
}

bool has_note(const std::vector<std::string>& notes, const std::string& text) {
  return std::any_of(notes.begin(), notes.end(),
                     [&](const std::string& n) { return n.find(text) != std::string::npos; });
}

TEST_F(Preparation, EveryBinHoldsATrainingRowWhateverWasAsked) {
  // 100 rows, 1024 bins asked: at most one bin per value, none empty. "distinct": 100 values;
  // "repeated": 4 values (i^2 mod 12), unevenly repeated, so that quantiles fall between two.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-5.0f, 5.0f);
  std::vector<float> distinct, repeated;
  for (int i = 0; i < 100; ++i) {
    distinct.push_back(uniform(rng));
    repeated.push_back(static_cast<float>((i * i) % 12) * 0.25f);
  }
  Table t;
  t.add_numeric("distinct", distinct);
  t.add_numeric("repeated", repeated);
  PreparationOptions o;
  o.defaults.bins = kMaxBins;
  std::vector<std::string> notes;
  const FittedPreparation f = fit_preparation(profile_of(t), o, &notes);
  for (const std::string column : {"distinct", "repeated"}) {
    const std::vector<std::int64_t> per_bin = rows_per_bin(f, t, column);
    ASSERT_GE(per_bin.size(), 3u) << column;
    EXPECT_EQ(std::count(per_bin.begin(), per_bin.end() - 1, 0), 0) << column << ": empty bins";
    EXPECT_EQ(per_bin.back(), 0) << column;  // no missing value
  }
  EXPECT_EQ(f.numeric[0].bin_edges.size(), 99u);  // 100 distinct values: 100 bins of one row
  std::set<float> values(repeated.begin(), repeated.end());
  EXPECT_LE(f.numeric[1].bin_edges.size() + 1, values.size());
  // The note says why: few rows, and (for "repeated") values that repeat.
  EXPECT_TRUE(has_note(notes, "'distinct': 100 bins of the 1024 asked (it has only 100 values)"))
      << notes.size();
  EXPECT_TRUE(
      has_note(notes, "'repeated': " + std::to_string(f.numeric[1].bin_edges.size() + 1) +
                          " bins of the 1024 asked (it has only 100 values; where they repeat"));

  // As many rows as bins, but values that repeat (40 zeros, 40 ones, 20 twos): the quantiles
  // interpolated between two of them (0.6, 1.2) would open bins of no row. And a sketch compacted
  // to 64 points for 2000 distinct values with 1024 bins asked: its quantiles between two points
  // would open bins holding no point.
  std::vector<float> ties, many;
  for (int i = 0; i < 2000; ++i) many.push_back(static_cast<float>(i) * 0.01f);
  for (int i = 0; i < 100; ++i) ties.push_back(i < 40 ? 0.0f : (i < 80 ? 1.0f : 2.0f));
  Table u, w;
  u.add_numeric("ties", ties);
  w.add_numeric("many", many);
  PreparationOptions o2;
  o2.defaults.bins = 100;
  notes.clear();
  const FittedPreparation g = fit_preparation(profile_of(u), o2, &notes);
  EXPECT_EQ(g.numeric[0].bin_edges, (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(rows_per_bin(g, u, "ties"), (std::vector<std::int64_t>{40, 40, 20, 0}));
  EXPECT_TRUE(has_note(
      notes,
      "'ties': 3 bins of the 100 asked (where its values repeat, quantiles coincide; a bin "
      "between neighbouring values would hold no row)"));
  o2.defaults.bins = kMaxBins;
  notes.clear();
  const FittedPreparation h = fit_preparation(profile_of(w, 64), o2, &notes);
  const std::vector<std::int64_t> per_bin = rows_per_bin(h, w, "many");
  ASSERT_GE(per_bin.size(), 3u);
  EXPECT_EQ(std::count(per_bin.begin(), per_bin.end() - 1, 0), 0) << "many: empty bins";
  // At most one edge per sketch point above the minimum.
  EXPECT_LE(h.numeric[0].bin_edges.size(), 63u);
  EXPECT_TRUE(has_note(
      notes,
      "a bin between neighbouring points of its 64-point quantile sketch could hold no row"));
}

TEST_F(Preparation, BinEdgesOfManyRowsAreTheSketchQuantiles) {
  // Many more rows than bins: the edges are the sketch's i/bins quantiles, as ever (a model's
  // bins do not move with this rule).
  std::vector<float> x;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (int i = 0; i < 20000; ++i) x.push_back(std::round(normal(rng) * 100.0f) / 100.0f);
  Table t;
  t.add_numeric("x", x);
  PreparationOptions o;
  o.defaults.bins = 32;
  const DataProfile p = profile_of(t, 1024);
  const FittedPreparation f = fit_preparation(p, o);
  std::vector<float> want;
  for (int i = 1; i < 32; ++i)
    want.push_back(static_cast<float>(p.columns[0].numeric.sketch.quantile(i / 32.0)));
  EXPECT_EQ(f.numeric[0].bin_edges, want);
}

// ---------------------------------------------------------------------------------------------
// Bad input

TEST_F(Preparation, BadOptionsAreInputErrorsNamingTheColumn) {
  const Table t = cross_table();
  const DataProfile p = profile_of(t);
  PreparationOptions o;
  o.label = "y";
  o.crosses = {{"age", "nosuch"}};
  expect_input_error([&] { fit_preparation(p, o); }, {"nosuch", "age*nosuch"});
  o.crosses = {{"y", "age"}};
  expect_input_error([&] { fit_preparation(p, o); }, {"'y'", "label"});
  o.crosses = {{"city", "city"}};
  expect_input_error([&] { fit_preparation(p, o); }, {"city*city"});
  o.crosses.clear();

  PreparationOptions missing_label;
  missing_label.label = "target";
  expect_input_error([&] { fit_preparation(p, missing_label); }, {"'target'", "age", "device"});

  PreparationOptions unknown;
  unknown.per_column["agee"] = {};
  expect_input_error([&] { fit_preparation(p, unknown); }, {"'agee'", "age", "income", "city"});

  PreparationOptions categorical;
  categorical.per_column["city"].scale = ScaleKind::robust;
  expect_input_error([&] { fit_preparation(p, categorical); }, {"'city'", "categorical"});

  PreparationOptions quantiles;
  quantiles.defaults.clip = ClipKind::quantile;
  quantiles.defaults.clip_lo_quantile = 0.9;
  quantiles.defaults.clip_hi_quantile = 0.1;
  expect_input_error([&] { fit_preparation(p, quantiles); }, {"quantile"});

  PreparationOptions buckets;
  buckets.hash_buckets = 0;
  expect_input_error([&] { fit_preparation(p, buckets); }, {"bucket"});

  PreparationOptions one_bin;
  one_bin.per_column["age"].bins = 1;
  expect_input_error([&] { fit_preparation(p, one_bin); }, {"'age'", "bins"});
  one_bin.per_column["age"].bins = kMaxBins + 1;
  expect_input_error([&] { fit_preparation(p, one_bin); }, {"'age'", "bins"});

  // Crosses of bins: of a column without bins, a categorical one, the label, a dropped one or none;
  // with a numeric column or with themselves.
  PreparationOptions bins = o;
  bins.per_column["income"].bins = 4;
  bins.crosses = {{"age#bins", "city"}};
  expect_input_error([&] { fit_preparation(p, bins); }, {"age#bins*city", "'age'", "--bins age="});
  bins.crosses = {{"city#bins", "device"}};
  expect_input_error([&] { fit_preparation(p, bins); }, {"city#bins*device", "'city'", "categorical"});
  bins.crosses = {{"income#bins", "y#bins"}};
  expect_input_error([&] { fit_preparation(p, bins); }, {"'y'", "label"});
  bins.crosses = {{"nosuch#bins", "city"}};
  expect_input_error([&] { fit_preparation(p, bins); }, {"unknown column 'nosuch#bins'"});
  bins.crosses = {{"income#bins", "age"}};
  expect_input_error([&] { fit_preparation(p, bins); }, {"income#bins*age", "numeric column 'age'"});
  bins.crosses = {{"income", "income#bins"}};
  expect_input_error([&] { fit_preparation(p, bins); }, {"income*income#bins", "numeric column 'income'"});
  bins.crosses = {{"income#bins", "income#bins"}};
  expect_input_error([&] { fit_preparation(p, bins); }, {"income#bins*income#bins", "themselves"});
  bins.crosses = {{"income#bins", "city"}};
  bins.exclude = {"income"};
  bins.per_column.erase("income");
  expect_input_error([&] { fit_preparation(p, bins); }, {"'income'", "not a feature"});
}

TEST_F(Preparation, BindingRefusesMissingOrRetypedColumns) {
  const Table t = cross_table();
  PreparationOptions o;
  o.label = "y";
  const FittedPreparation f = fit_preparation(profile_of(t), o);

  std::vector<ColumnInfo> without_income = t.columns;
  without_income.erase(without_income.begin() + 1);
  expect_input_error([&] { bind_preparation(f, without_income); }, {"'income'"});

  std::vector<ColumnInfo> retyped = t.columns;
  retyped[3].type = ColumnType::numeric;  // city as numbers
  expect_input_error([&] { bind_preparation(f, retyped); }, {"'city'", "categorical", "numeric"});

  std::vector<ColumnInfo> retyped_numeric = t.columns;
  retyped_numeric[0].type = ColumnType::categorical;
  expect_input_error([&] { bind_preparation(f, retyped_numeric); }, {"'age'"});

  // The label may be absent at scoring time.
  std::vector<ColumnInfo> no_label = t.columns;
  no_label.pop_back();
  EXPECT_EQ(bind_preparation(f, no_label).label_input, -1);
  EXPECT_EQ(bind_preparation(f, t.columns).label_input, 5);
}

}  // namespace
}  // namespace lathe
