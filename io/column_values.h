// A table's columns read whole by name, for what `lathe train`, `lathe eval` and `lathe drift` read
// beside the prepared features (the label, the sample weights), with the checks of the weights and
// the words their messages name a value and a row in.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/table_reader.h"
#include "runtime/row_mask.h"

namespace lathe {

// A float as messages write it: 6 significant digits ("0.5", "1.23457e+06").
std::string number_label(float v);

// "row 5" for row 4 (rows counted from 0, messages count from 1).
std::string row_text(std::int64_t row);

// The index of column `name`; InputError naming `flag`, the file and the columns, then `hint`, when
// it has none.
std::int32_t column_index(const TableReader& reader, const std::string& name,
                          const std::string& flag, const std::string& hint = {});

// Every row's value of some columns, in one streamed pass.
std::vector<std::vector<float>> read_columns(TableReader& reader,
                                             const std::vector<std::int32_t>& columns);

// The column of `reader` holding sample weights, found by name (InputError naming `flag` and the
// columns otherwise) and checked to be numeric and not `label`.
std::int32_t weight_column_index(const TableReader& reader, const std::string& weight,
                                 const std::string& label, const std::string& flag = "--weight");

// Sample weights read from `file`'s column `column`: every row `keep` holds (all rows without one)
// must have a finite weight of at least 0, else InputError naming the file, the column and the
// first bad row. `rows_text` ("the 80 validation rows"), when given, names rows whose weights must
// not sum to 0, since metrics weighted by them would have no value.
void check_sample_weights(const std::vector<float>& weights, const RowMask* keep,
                          const std::string& file, const std::string& column,
                          const std::string& rows_text = "");

}  // namespace lathe
