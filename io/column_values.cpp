#include "io/column_values.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "runtime/error.h"
#include "runtime/message_names.h"
#include "runtime/name_lists.h"

namespace lathe {

std::string number_label(float v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

std::string row_text(std::int64_t row) { return "row " + std::to_string(row + 1); }

std::int32_t column_index(const TableReader& reader, const std::string& name,
                          const std::string& flag, const std::string& hint) {
  const auto& cols = reader.columns();
  for (std::size_t i = 0; i < cols.size(); ++i) {
    if (cols[i].name == name) return static_cast<std::int32_t>(i);
  }
  std::vector<std::string> names;
  for (const auto& c : cols) names.push_back(c.name);
  throw InputError(flag + ": " + reader.path().string() + " has no column '" + name + "'" +
                   did_you_mean(name, names) + "; columns: " + name_list(names) + hint);
}

std::vector<std::vector<float>> read_columns(TableReader& reader,
                                             const std::vector<std::int32_t>& columns) {
  const std::int64_t ncols = static_cast<std::int64_t>(reader.columns().size());
  std::vector<std::vector<float>> out(columns.size(),
                                      std::vector<float>(static_cast<std::size_t>(reader.rows())));
  const std::vector<std::int64_t> wanted(columns.begin(), columns.end());
  std::vector<float> block;
  for (std::int64_t first = 0; first < reader.rows(); first += reader.block_rows()) {
    const std::int64_t n = std::min(reader.block_rows(), reader.rows() - first);
    block.resize(static_cast<std::size_t>(n * ncols));
    reader.read_block_columns(first, n, wanted, block);
    for (std::size_t k = 0; k < columns.size(); ++k) {
      std::copy_n(block.data() + columns[k] * n, n, out[k].data() + first);
    }
  }
  return out;
}

std::int32_t weight_column_index(const TableReader& reader, const std::string& weight,
                                 const std::string& label, const std::string& flag) {
  const std::int32_t col = column_index(reader, weight, flag);
  if (weight == label)
    throw UsageError("--weight '" + weight + "' is the label; a sample weight is another column");
  if (reader.columns()[col].type == ColumnType::categorical) {
    throw InputError(reader.path().string() + ": --weight '" + weight +
                     "' is a categorical column; a sample weight must be numeric");
  }
  return col;
}

void check_sample_weights(const std::vector<float>& weights, const RowMask* keep,
                          const std::string& file, const std::string& column,
                          const std::string& rows_text) {
  double total = 0;
  for (std::int64_t r = 0; r < static_cast<std::int64_t>(weights.size()); ++r) {
    if (keep && !keep->test(r)) continue;
    const float w = weights[static_cast<std::size_t>(r)];
    if (!(std::isfinite(w) && w >= 0)) {
      throw InputError(file + ": weight '" + column + "': " + row_text(r) +
                       " has a missing, negative or infinite weight (" + number_label(w) + ")");
    }
    total += w;
  }
  if (!rows_text.empty() && !(total > 0)) {
    throw InputError(file + ": weight '" + column + "': the weights of " + rows_text +
                     " sum to 0, so there is nothing to weigh (every weight is 0)");
  }
}

}  // namespace lathe
