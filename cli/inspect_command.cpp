// `lathe inspect FILE [--json]`: the layout, rows, storage (with the path each dataset is read by),
// and per column its name, type, missing count and min/mean/max/std (numeric) or category count and
// the labels with their counts (categorical: the text shows the 10 most frequent, the JSON all);
// with --head N, the first N rows as read.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cli/commands.h"
#include "cli/output_paths.h"
#include "cli/text_width.h"
#include "io/table_reader.h"
#include "io/table_summary.h"
#include "runtime/device_context.h"
#include "runtime/metrics.h"

namespace lathe::cli {

namespace {

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string out;
  for (auto d : shape) out += (out.empty() ? "" : " x ") + std::to_string(d);
  return out;
}

// A statistic or a head value in the JSON as Lathe's JSON outputs write metrics: an infinite one as
// "inf" or "-inf" (JSON has no infinity, and null is a missing value in `head` and an undefined
// statistic, such as the mean of inf and -inf).
nlohmann::json json_number(double v) { return metric_json<nlohmann::json>(v); }

// The mean and the population standard deviation of a column's values as numpy gives them where one
// is infinite (the profile's shifted sums are then NaN, and its variance may read as 0, which would
// describe the column as constant): the mean is that infinity (NaN with both signs), the spread NaN.
double column_mean(const ColumnStats& s) {
  if (std::isinf(s.min) && std::isinf(s.max)) return s.min < 0 && s.max > 0 ? std::nan("") : s.max;
  if (std::isinf(s.min)) return s.min;
  return std::isinf(s.max) ? s.max : s.mean;
}
double column_std(const ColumnStats& s) {
  return std::isfinite(s.min) && std::isfinite(s.max) ? std::sqrt(variance(s)) : std::nan("");
}

// The labels listed per categorical column in the text output, most frequent first.
constexpr std::size_t kLabelsShown = 10;

std::string general(double v) {
  // A column with infinite values of both signs has no mean: "nan", not the platform's "-nan".
  if (std::isnan(v)) return "nan";
  std::ostringstream s;
  s << std::setprecision(6) << v;
  return s.str();
}

std::string label_text(const std::string& label) { return label.empty() ? "\"\"" : label; }

// The first rows of a table as the reader gives them, each value as a user would write it: a
// label for a categorical column, an integer column's integers in full, a float64 column's
// numbers exactly (the shortest text that reads back), others as float32; missing is nullopt.
using HeadValue = std::optional<nlohmann::json>;

std::vector<std::vector<HeadValue>> read_head(TableReader& reader, std::int64_t rows) {
  const auto& cols = reader.columns();
  const auto ncols = static_cast<std::int64_t>(cols.size());
  std::vector<float> block(static_cast<std::size_t>(rows * ncols));
  reader.read_block(0, rows, block);
  std::vector<std::vector<HeadValue>> head(static_cast<std::size_t>(rows), std::vector<HeadValue>(cols.size()));
  for (std::int64_t c = 0; c < ncols; ++c) {
    const ColumnInfo& info = cols[static_cast<std::size_t>(c)];
    const float* v = block.data() + c * rows;
    const std::optional<ExactType> exact = reader.exact_type(c);
    std::vector<double> doubles;
    std::vector<std::int64_t> signed_values;
    std::vector<std::uint64_t> unsigned_values;
    if (info.type == ColumnType::numeric && exact == ExactType::float64) {
      doubles.resize(static_cast<std::size_t>(rows));
      reader.read_column_as(c, 0, rows, ExactType::float64, doubles.data());
    } else if (info.type == ColumnType::numeric && exact == ExactType::int64) {
      signed_values.resize(static_cast<std::size_t>(rows));
      reader.read_column_as(c, 0, rows, ExactType::int64, signed_values.data());
    } else if (info.type == ColumnType::numeric && exact == ExactType::uint64) {
      unsigned_values.resize(static_cast<std::size_t>(rows));
      reader.read_column_as(c, 0, rows, ExactType::uint64, unsigned_values.data());
    }
    for (std::int64_t r = 0; r < rows; ++r) {
      HeadValue& out = head[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)];
      const auto i = static_cast<std::size_t>(r);
      if (!signed_values.empty()) {
        out = signed_values[i];
      } else if (!unsigned_values.empty()) {
        out = unsigned_values[i];
      } else if (std::isnan(v[r])) {
        continue;  // missing
      } else if (info.type == ColumnType::categorical) {
        const auto code = static_cast<std::size_t>(v[r]);
        if (code < info.categories.size()) out = info.categories[code];
      } else {
        out = doubles.empty() ? static_cast<double>(v[r]) : doubles[i];
      }
    }
  }
  return head;
}

// A head value as text: a number of a float64 column as the shortest text that reads back as that
// double, another column's as the shortest that reads back as its float32 (the value read).
std::string head_text(const HeadValue& value, bool float64) {
  if (!value) return "NaN";
  if (value->is_string()) return value->get<std::string>();
  if (value->is_number_float()) {
    const double d = value->get<double>();
    if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
    // Plain digits from 1e-4 to 1e16 (a timestamp as 1700000000, not 1.7e+09), else the shorter.
    const auto format = std::fabs(d) >= 1e-4 && std::fabs(d) < 1e16 ? std::chars_format::fixed : std::chars_format::general;
    char buffer[400];
    const auto end = float64 ? std::to_chars(buffer, buffer + sizeof buffer, d, format).ptr
                             : std::to_chars(buffer, buffer + sizeof buffer, static_cast<float>(d), format).ptr;
    return std::string(buffer, end);
  }
  return value->dump();
}

struct InspectArgs {
  std::string file, device = "auto", group, matrix = "X", label = "y";
  bool json = false, quiet = false;
  std::int64_t head = 0;
};

// `text` (nlohmann's dump with an indent of 2) with every line after the first indented by
// `indent` more spaces: a value dumped alone, written where it nests.
void write_nested(std::ostream& out, const std::string& text, int indent) {
  const std::string pad(static_cast<std::size_t>(indent), ' ');
  std::size_t from = 0;
  for (std::size_t at = text.find('\n'); at != std::string::npos; at = text.find('\n', from)) {
    out.write(text.data() + from, static_cast<std::streamsize>(at + 1 - from));
    out << pad;
    from = at + 1;
  }
  out.write(text.data() + from, static_cast<std::streamsize>(text.size() - from));
}

// A categorical column's "category_counts" array, every label with its rows, most frequent first
// (ties in code order), as nlohmann's dump with an indent of 2 writes it at `indent`, one label at
// a time: a document of millions of labels (a high-cardinality file's ids) took 1.8 GB and 30 s
// built whole and then copied twice, and takes the labels' own size this way.
void write_category_counts(std::ostream& out, const std::vector<std::string>& labels,
                           const std::vector<std::int64_t>& counts, int indent) {
  const std::vector<std::size_t> order = categories_by_count(counts);
  if (order.empty()) {
    out << "[]";
    return;
  }
  const std::string item(static_cast<std::size_t>(indent + 2), ' '),
      key(static_cast<std::size_t>(indent + 4), ' ');
  out << "[\n";
  for (std::size_t k = 0; k < order.size(); ++k) {
    const std::size_t i = order[k];
    out << item << "{\n"
        << key << "\"count\": " << counts[i] << ",\n"
        << key << "\"label\": " << nlohmann::json(labels[i]).dump() << "\n"
        << item << (k + 1 < order.size() ? "},\n" : "}\n");
  }
  out << std::string(static_cast<std::size_t>(indent), ' ') << "]";
}

// `lathe inspect --json`: the document nlohmann's dump with an indent of 2 gives, its keys sorted
// but `head` last (its rows keep the table's column order), written a part at a time.
void write_json(std::ostream& out, const InspectArgs& args, const DeviceContext& ctx,
                const TableReader& reader, const TableSummary& summary,
                const std::vector<std::vector<HeadValue>>& head) {
  const auto& cols = reader.columns();
  // A column's labels go where this placeholder is, the value of its key (which sorts before any
  // other string in the column: "categories" is a number).
  const std::string placeholder = "@category_counts@";
  const std::string placeholder_dumped = nlohmann::json(placeholder).dump();
  out << "{\n  \"columns\": ";
  if (cols.empty()) out << "[]";
  for (std::size_t c = 0; c < cols.size(); ++c) {
    const ColumnStats& s = summary.stats[c];
    nlohmann::json col = {{"name", cols[c].name},
                          {"type", column_type_name(cols[c].type)},
                          {"dtype", cols[c].dtype},
                          {"count", s.count},
                          {"missing", s.missing}};
    const bool streamed_labels = cols[c].type == ColumnType::categorical && !summary.uncounted[c];
    if (cols[c].type == ColumnType::categorical) {
      col["categories"] = cols[c].categories.size();
      // null: not counted (more labels than exact codes)
      col["category_counts"] =
          streamed_labels ? nlohmann::json(placeholder) : nlohmann::json(nullptr);
      if (summary.invalid_codes[c] > 0) col["invalid_codes"] = summary.invalid_codes[c];
    } else {
      col["min"] = s.count ? json_number(s.min) : nullptr;
      col["mean"] = s.count ? json_number(column_mean(s)) : nullptr;
      col["max"] = s.count ? json_number(s.max) : nullptr;
      col["std"] = s.count ? json_number(column_std(s)) : nullptr;
    }
    out << (c == 0 ? "[\n    " : ",\n    ");
    const std::string text = col.dump(2);
    const std::size_t at = streamed_labels ? text.find(placeholder_dumped) : std::string::npos;
    if (at == std::string::npos) {
      write_nested(out, text, 4);
    } else {
      write_nested(out, text.substr(0, at), 4);
      write_category_counts(out, cols[c].categories, summary.category_counts[c], 6);
      write_nested(out, text.substr(at + placeholder_dumped.size()), 4);
    }
    if (c + 1 == cols.size()) out << "\n  ]";
  }
  out << ",\n  \"device\": " << nlohmann::json(ctx.description()).dump();
  out << ",\n  \"file\": " << nlohmann::json(args.file).dump();
  out << ",\n  \"layout\": " << nlohmann::json(layout_name(reader.layout())).dump();
  out << ",\n  \"rows\": " << reader.rows();
  nlohmann::json storage = nlohmann::json::array();
  for (const auto& st : reader.storage()) {
    storage.push_back({{"dataset", st.dataset},
                       {"dtype", st.dtype},
                       {"byte_order", st.byte_order},
                       {"shape", st.shape},
                       {"chunk", st.chunk},
                       {"filters", st.filters},
                       {"read_path", st.read_path}});
  }
  out << ",\n  \"storage\": ";
  write_nested(out, storage.dump(2), 2);
  if (args.head > 0) {
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (const auto& row : head) {
      nlohmann::ordered_json values = nlohmann::ordered_json::object();
      for (std::size_t c = 0; c < cols.size(); ++c) {
        const HeadValue& value = row[c];
        values[cols[c].name] =
            !value ? nlohmann::ordered_json(nullptr)
            : value->is_number_float()
                ? nlohmann::ordered_json::parse(json_number(value->get<double>()).dump())
                : nlohmann::ordered_json::parse(value->dump());
      }
      rows.push_back(std::move(values));
    }
    out << ",\n  \"head\": ";
    write_nested(out, rows.dump(2), 2);
  }
  out << "\n}\n";
}

// Whether the table was read from a dataset named `name` (the last part of its HDF5 path).
bool reads_dataset(const TableReader& reader, const std::string& name) {
  return std::any_of(reader.storage().begin(), reader.storage().end(), [&](const DatasetStorage& s) {
    return s.dataset == name || s.dataset.ends_with("/" + name);
  });
}

// --matrix and --label name the datasets of a matrix layout. The reader falls back to a file's only
// 2-D dataset and treats the label as optional, so a name given that the file lacks would describe
// another matrix, or the matrix without its label, and say nothing: it is an error naming what the
// file holds instead. (A --group that names the matrix dataset itself takes the place of --matrix.)
void check_matrix_options(const CLI::App& cmd, const InspectArgs& args, const TableReader& reader) {
  const bool matrix_given = cmd.count("--matrix") > 0, label_given = cmd.count("--label") > 0;
  if (!matrix_given && !label_given) return;
  if (reader.layout() != Layout::matrix) {
    throw InputError(args.file + ": --" + std::string(matrix_given ? "matrix" : "label") +
                     " names a dataset of the matrix layout, but the table read is in the " +
                     layout_name(reader.layout()) + " layout");
  }
  std::string read;
  for (const DatasetStorage& s : reader.storage()) read += (read.empty() ? "" : ", ") + s.dataset;
  const bool group_names_matrix = !args.group.empty() && reads_dataset(reader, args.group);
  if (matrix_given && !group_names_matrix && !reads_dataset(reader, args.matrix)) {
    throw InputError(args.file + ": --matrix " + args.matrix + ": no such 2-D dataset (the matrix read: " + read + ")");
  }
  if (label_given && !reads_dataset(reader, args.label)) {
    throw InputError(args.file + ": --label " + args.label + ": no such label dataset beside the matrix (read: " + read +
                     ")");
  }
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Describe an HDF5 table: layout, rows, columns, statistics");
  using Args = InspectArgs;
  auto args = std::make_shared<Args>();
  cmd->add_option("file", args->file, "HDF5 file (matrix, columnar or pandas layout)")->required();
  cmd->add_flag("--json", args->json, "Print JSON");
  cmd->add_flag("--quiet", args->quiet, "No notes on stderr");
  add_whole_number_option(cmd, "--head", args->head, "Also show the first N rows as read (default 0: none)")
      ->check(at_least(0));
  cmd->add_option("--group", args->group, "Group (columnar), pandas key, or matrix dataset to read")
      ->check(non_empty("a group, pandas key or dataset name"));
  cmd->add_option("--matrix", args->matrix, "Name of the 2-D dataset of the matrix layout")
      ->default_val("X")
      ->check(non_empty("a dataset name"));
  cmd->add_option("--label", args->label, "Name of the label dataset of the matrix layout")
      ->default_val("y")
      ->check(non_empty("a dataset name"));
  add_device_option(cmd, args->device);
  cmd->callback([args, cmd] {
    refuse_empty_paths(*cmd, {"file"});
    const DeviceContext ctx = DeviceContext::select(args->device);
    TableReadOptions options;
    options.group = args->group;
    options.matrix_dataset = args->matrix;
    options.label_dataset = args->label;
    options.allow_empty = true;  // an empty partition is described, not refused
    TableReader reader(args->file, options);
    check_matrix_options(*cmd, *args, reader);
    const TableSummary summary = summarize_table(ctx, reader);
    const auto& cols = reader.columns();
    const auto head = read_head(reader, std::min(args->head, reader.rows()));

    if (args->json) {
      write_json(std::cout, *args, ctx, reader, summary, head);
      return;
    }

    std::cout << "file:     " << args->file << "\n";
    std::cout << "layout:   " << layout_name(reader.layout()) << "\n";
    std::cout << "rows:     " << reader.rows() << "\n";
    std::cout << "columns:  " << cols.size() << "\n";
    std::cout << "device:   " << ctx.description() << "\n";
    // Datasets stored alike are listed once (a columnar file has one dataset per column).
    std::cout << "storage:\n";
    std::vector<std::pair<std::string, std::vector<std::string>>> groups;  // description, datasets
    for (const auto& st : reader.storage()) {
      const std::string shape = st.shape.size() > 1 ? shape_text(st.shape) + ", " : "";
      const std::string description =
          st.dtype + (st.byte_order == "none" ? std::string() : " (" + st.byte_order + "-endian)") + ", " + shape +
          (st.chunk.empty() ? "contiguous" : "chunks of " + shape_text(st.chunk)) +
          (st.filters.empty() ? "" : ", filters " + join(st.filters, "+")) +
          "; read: " + st.read_path;
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const auto& g) { return g.first == description; });
      if (it == groups.end()) {
        groups.push_back({description, {st.dataset}});
      } else {
        it->second.push_back(st.dataset);
      }
    }
    for (const auto& [description, datasets] : groups) {
      const std::string who = datasets.size() == 1
                                  ? datasets.front()
                                  : std::to_string(datasets.size()) + " datasets (" +
                                        datasets.front() + ", ...)";
      std::cout << "  " << who << ": " << description << "\n";
    }
    // Padded by terminal cells, not bytes: names in CJK or with combining marks stay in line.
    std::size_t width = 4;
    for (const auto& c : cols) width = std::max(width, display_width(c.name));
    std::cout << "\n  " << pad_right("name", width) << "  " << std::left
              << std::setw(12) << "type" << std::setw(9) << "dtype" << std::right << std::setw(10)
              << "missing" << std::setw(14) << "min" << std::setw(14) << "mean" << std::setw(14)
              << "max" << std::setw(14) << "std" << "\n";
    for (std::size_t c = 0; c < cols.size(); ++c) {
      const ColumnStats& s = summary.stats[c];
      std::cout << "  " << pad_right(cols[c].name, width) << "  " << std::left
                << std::setw(12) << column_type_name(cols[c].type) << std::setw(9) << cols[c].dtype
                << std::right << std::setw(10) << s.missing;
      if (cols[c].type == ColumnType::categorical) {
        std::cout << "  " << cols[c].categories.size() << " categories";
      } else if (s.count == 0) {
        std::cout << std::setw(14) << "-" << std::setw(14) << "-" << std::setw(14) << "-" << std::setw(14) << "-";
      } else {
        std::cout << std::setw(14) << general(s.min) << std::setw(14) << general(column_mean(s)) << std::setw(14)
                  << general(s.max) << std::setw(14) << general(column_std(s));
      }
      std::cout << "\n";
    }

    // The labels of each categorical column with their rows and share of all rows.
    bool header = false;
    for (std::size_t c = 0; c < cols.size(); ++c) {
      if (cols[c].type != ColumnType::categorical) continue;
      if (!header) {
        std::cout << "\ncategories (most frequent first; rows, share of all rows):\n";
        header = true;
      }
      const std::vector<std::int64_t>& counts = summary.category_counts[c];
      const std::vector<std::size_t> order = categories_by_count(counts);
      const std::size_t shown = std::min(order.size(), kLabelsShown);
      std::cout << "  " << cols[c].name << ": " << counts.size() << (counts.size() == 1 ? " label" : " labels");
      if (summary.stats[c].missing > 0) std::cout << ", " << summary.stats[c].missing << " missing";
      if (summary.invalid_codes[c] > 0) {
        std::cout << ", " << summary.invalid_codes[c] << (summary.invalid_codes[c] == 1 ? " row" : " rows")
                  << " with a code that names no label";
      }
      if (summary.uncounted[c]) {
        std::cout << "; rows per label not counted (more than " << kMaxExactCategoryLabels
                  << " labels of strings: an id, no feature)\n";
        continue;
      }
      std::cout << "\n";
      std::size_t label_width = 5;
      for (std::size_t k = 0; k < shown; ++k) {
        label_width = std::max(label_width, display_width(label_text(cols[c].categories[order[k]])));
      }
      const double rows = static_cast<double>(reader.rows());
      for (std::size_t k = 0; k < shown; ++k) {
        const std::size_t i = order[k];
        std::ostringstream pct;
        pct << std::fixed << std::setprecision(2) << (rows > 0 ? 100.0 * static_cast<double>(counts[i]) / rows : 0.0)
            << "%";
        std::cout << "    " << pad_right(label_text(cols[c].categories[i]), label_width) << std::right
                  << std::setw(12) << counts[i] << std::setw(9) << pct.str() << "\n";
      }
      if (order.size() > shown) std::cout << "    ... and " << order.size() - shown << " more\n";
    }

    // The first rows, a column each, right-aligned by terminal cells.
    if (!head.empty()) {
      std::cout << "\nfirst " << head.size() << (head.size() == 1 ? " row" : " rows") << ":\n";
      std::vector<std::vector<std::string>> cells(head.size() + 1, std::vector<std::string>(cols.size()));
      std::vector<std::size_t> widths(cols.size(), 0);
      for (std::size_t c = 0; c < cols.size(); ++c) {
        cells[0][c] = cols[c].name;
        const bool float64 = reader.exact_type(static_cast<std::int64_t>(c)) == ExactType::float64;
        for (std::size_t r = 0; r < head.size(); ++r)
          cells[r + 1][c] = head_text(head[r][c], float64);
        for (const auto& row : cells) widths[c] = std::max(widths[c], display_width(row[c]));
      }
      for (const auto& row : cells) {
        std::cout << " ";
        for (std::size_t c = 0; c < cols.size(); ++c)
          std::cout << " " << pad_left(row[c], widths[c]);
        std::cout << "\n";
      }
    }
  });
}

}  // namespace lathe::cli
