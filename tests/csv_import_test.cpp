// `lathe import` end to end through the library: CSV text written to a temporary folder, imported,
// read back with TableReader.
#include "io/csv_import.h"

#include <gtest/gtest.h>

#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "io/csv_reader.h"
#include "io/hdf5_handle.h"
#include "io/table_reader.h"
#include "runtime/error.h"
#include "tests/temp_dir.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The whole table, column-major as TableReader gives it.
struct Table {
  std::vector<ColumnInfo> columns;
  std::int64_t rows = 0;
  std::vector<float> values;

  std::size_t index(const std::string& name) const {
    for (std::size_t c = 0; c < columns.size(); ++c) {
      if (columns[c].name == name) return c;
    }
    ADD_FAILURE() << "no column " << name;
    return 0;
  }
  float at(const std::string& name, std::int64_t row) const {
    return values[index(name) * static_cast<std::size_t>(rows) + static_cast<std::size_t>(row)];
  }
  const ColumnInfo& column(const std::string& name) const { return columns[index(name)]; }
  std::int64_t missing(const std::string& name) const {
    std::int64_t n = 0;
    for (std::int64_t r = 0; r < rows; ++r) n += std::isnan(at(name, r)) ? 1 : 0;
    return n;
  }
  // The label of a categorical value, "" when missing.
  std::string label(const std::string& name, std::int64_t row) const {
    const float code = at(name, row);
    if (std::isnan(code)) return "";
    return column(name).categories.at(static_cast<std::size_t>(code));
  }
};

Table read_table(const fs::path& path) {
  TableReader reader(path);
  Table t;
  t.columns = reader.columns();
  t.rows = reader.rows();
  t.values.resize(static_cast<std::size_t>(t.rows) * t.columns.size());
  reader.read_block(0, t.rows, t.values);
  return t;
}

// Runs `fn`, expects an InputError, returns its message.
template <typename Fn>
std::string input_error_of(Fn&& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InputError thrown";
  return "";
}

CsvImportOptions quiet_options() {
  CsvImportOptions options;
  options.progress = false;
  return options;
}

TEST(CsvImport, InfersTypesValuesAndMissing) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("t.csv",
                             "id,price,color,score\n"
                             "1,2.5,red,+3\n"
                             "2,NA,blue,-1e3\n"
                             "3, 7 ,,NaN\n"
                             "4,N/A,red, null\n"
                             "5,1e-2,NULL,None\n"
                             "6,,green,nan\n");
  const auto out = dir.file("t.h5");
  const CsvImportReport report = import_csv(csv, out, quiet_options());
  EXPECT_EQ(report.rows, 6);
  EXPECT_EQ(report.columns, 4);
  EXPECT_EQ(report.numeric_columns, 3);
  EXPECT_EQ(report.categorical_columns, 1);
  EXPECT_EQ(report.skipped_rows, 0);

  const Table t = read_table(out);
  ASSERT_EQ(t.rows, 6);
  ASSERT_EQ(t.columns.size(), 4u);
  EXPECT_EQ(t.columns[0].name, "id");
  EXPECT_EQ(t.columns[3].name, "score");
  EXPECT_EQ(t.column("price").type, ColumnType::numeric);
  EXPECT_EQ(t.column("price").dtype, "float64");
  EXPECT_EQ(t.column("color").type, ColumnType::categorical);
  EXPECT_EQ(t.column("color").categories, (std::vector<std::string>{"blue", "green", "red"}));
  EXPECT_FLOAT_EQ(t.at("price", 0), 2.5f);
  EXPECT_FLOAT_EQ(t.at("price", 2), 7.0f);
  EXPECT_FLOAT_EQ(t.at("price", 4), 0.01f);
  EXPECT_EQ(t.missing("price"), 3);
  EXPECT_FLOAT_EQ(t.at("score", 0), 3.0f);
  EXPECT_FLOAT_EQ(t.at("score", 1), -1000.0f);
  EXPECT_EQ(t.missing("score"), 4);
  EXPECT_EQ(t.label("color", 0), "red");
  EXPECT_EQ(t.label("color", 1), "blue");
  EXPECT_EQ(t.label("color", 5), "green");
  EXPECT_EQ(t.missing("color"), 2);
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"t.csv", "t.h5"}));  // no temporary left
}

TEST(CsvImport, AllMissingColumnIsNumeric) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("t.csv", "a,b\n1,\n2,NA\n");
  import_csv(csv, dir.file("t.h5"), quiet_options());
  const Table t = read_table(dir.file("t.h5"));
  EXPECT_EQ(t.column("b").type, ColumnType::numeric);
  EXPECT_EQ(t.missing("b"), 2);
}

// pandas' default NA tokens (pandas._libs.parsers.STR_NA_VALUES, checked with pandas 3.1), the
// empty field first.
const std::vector<std::string> kPandasNaTokens = {
    "",     "#N/A", "#N/A N/A", "#NA",  "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A",  "NA",       "NULL", "NaN",     "None",     "n/a",  "nan",  "null"};

// Row i of the first tokens.size() rows holds tokens[i] in every column but `id` (quoted in
// `color`, between spaces in `rating`), three more rows values: `x` numbers, `color` labels that
// pass 1 collects, `rating` decimals and a word, whose labels come from the label pass.
std::string table_of_tokens(const std::vector<std::string>& tokens) {
  std::string text = "id,x,color,rating\n";
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    text += std::to_string(i) + "," + tokens[i] + ",\"" + tokens[i] + "\", " + tokens[i] + " \n";
  }
  return text + "100,2.5,red,1.5\n101,-1,blue,x\n102,1e3,red,2.25\n";
}

// Imports `csv` on the serial path and on the parallel path (segments of 64 bytes, so several),
// and checks that every token row of table_of_tokens is missing in every column.
void expect_tokens_missing(const fs::path& csv, const fs::path& out, std::size_t tokens,
                           CsvImportOptions options, const std::string& what) {
  for (const bool parallel : {false, true}) {
    const std::string where = what + (parallel ? ", parallel" : ", serial");
    options.progress = false;
    options.parallel = parallel;
    options.segment_bytes = parallel ? 64 : 0;
    const CsvImportReport report = import_csv(csv, out, options);
    EXPECT_EQ(report.read_in_segments, parallel) << where;
    EXPECT_EQ(report.rows, static_cast<std::int64_t>(tokens) + 3) << where;
    const Table t = read_table(out);
    ASSERT_EQ(t.column("x").type, ColumnType::numeric) << where;
    EXPECT_EQ(t.missing("x"), static_cast<std::int64_t>(tokens)) << where;
    EXPECT_FLOAT_EQ(t.at("x", static_cast<std::int64_t>(tokens)), 2.5f) << where;
    EXPECT_FLOAT_EQ(t.at("x", static_cast<std::int64_t>(tokens) + 2), 1000.0f) << where;
    EXPECT_EQ(t.column("color").categories, (std::vector<std::string>{"blue", "red"})) << where;
    EXPECT_EQ(t.missing("color"), static_cast<std::int64_t>(tokens)) << where;
    EXPECT_EQ(t.column("rating").categories, (std::vector<std::string>{"1.5", "2.25", "x"}))
        << where;
    EXPECT_EQ(t.missing("rating"), static_cast<std::int64_t>(tokens)) << where;
    EXPECT_EQ(t.label("rating", static_cast<std::int64_t>(tokens) + 1), "x") << where;
  }
}

TEST(CsvImport, PandasDefaultNaTokensAreMissingInEveryColumnOnBothPaths) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("na.csv", table_of_tokens(kPandasNaTokens));
  expect_tokens_missing(csv, dir.file("na.h5"), kPandasNaTokens.size(), {}, "inferred");
  CsvImportOptions options;
  options.numeric = {"x"};
  expect_tokens_missing(csv, dir.file("na.h5"), kPandasNaTokens.size(), options, "--numeric x");
  options = {};
  options.categorical = {"color", "rating"};
  expect_tokens_missing(csv, dir.file("na.h5"), kPandasNaTokens.size(), options, "--categorical");
  // One token at a time, in a column of numbers: still a number column.
  for (const std::string& token : kPandasNaTokens) {
    const auto one = dir.write("one.csv", "v,w\n1,a\n" + token + ",b\n2,c\n");
    import_csv(one, dir.file("one.h5"), quiet_options());
    const Table t = read_table(dir.file("one.h5"));
    EXPECT_EQ(t.column("v").type, ColumnType::numeric) << token;
    EXPECT_EQ(t.missing("v"), 1) << token;
  }
}

TEST(CsvImport, NaValuesAddMissingTokens) {
  test::TemporaryDirectory dir;
  const std::string long_token(70, 'm');  // longer than the token lengths tracked one by one
  const std::vector<std::string> tokens = {"-999", "?", "missing", long_token, "NA", ""};
  const auto csv = dir.write("na.csv", table_of_tokens(tokens));
  CsvImportOptions options;
  options.na_values = {"-999", " ? ", "missing", long_token};
  expect_tokens_missing(csv, dir.file("na.h5"), tokens.size(), options, "na_values");
  options.numeric = {"x"};
  expect_tokens_missing(csv, dir.file("na.h5"), tokens.size(), options, "na_values, --numeric x");
  options.numeric.clear();
  // Only whole values: -9999, a 71-byte value and "missing?" are values, and the defaults stay.
  const auto more = dir.write("more.csv", "a,b\n-9999,missing?\n-999,NA\n1," + long_token + "m\n");
  for (const bool parallel : {false, true}) {
    options.parallel = parallel;
    options.segment_bytes = parallel ? 8 : 0;
    import_csv(more, dir.file("more.h5"), options);
    const Table t = read_table(dir.file("more.h5"));
    EXPECT_EQ(t.missing("a"), 1);
    EXPECT_FLOAT_EQ(t.at("a", 0), -9999.0f);
    EXPECT_EQ(t.column("b").categories, (std::vector<std::string>{"missing?", long_token + "m"}));
    EXPECT_EQ(t.missing("b"), 1);
  }
}

TEST(CsvImport, NaValuesInAnInt64ColumnOfASkippedRowAreMissing) {
  // A row with a non-number in a --numeric column is skipped before its other values are looked
  // at: the token in the exact integer column before it counts for nothing, and both passes name
  // the --numeric column.
  test::TemporaryDirectory dir;
  const auto csv = dir.write("ids.csv",
                             "id,n\n"
                             "9007199254740993,1\n"
                             "?,bad\n"
                             "9007199254740995,2\n");
  for (const bool parallel : {false, true}) {
    CsvImportOptions options = quiet_options();
    options.na_values = {"?"};
    options.numeric = {"n"};
    options.skip_bad_rows = true;
    options.parallel = parallel;
    const CsvImportReport report = import_csv(csv, dir.file("ids.h5"), options);
    EXPECT_EQ(report.rows, 2);
    EXPECT_EQ(report.int64_columns, 1);
    EXPECT_EQ(report.skipped_examples,
              (std::vector<std::string>{
                  "line 3, column 'n': 'bad' is not a number (the column is --numeric)"}));
  }
}

TEST(CsvImport, NaValuesThatAreNumbersMatchEqualNumbersOfNumericColumns) {
  // As pandas: -999 makes -999.0 and -9.99e2 missing in a numeric column (float64, --numeric, or
  // int64, which such a value then turns to float64 with a note); in a categorical column only the
  // text and the token's plain integer spellings match; a token that is not a number matches only
  // its text.
  test::TemporaryDirectory dir;
  const auto csv = dir.write("m.csv",
                             "a,b,c,id\n"
                             "-999.0,-999.0,x,9007199254740993\n"
                             "-999,-999,-999,-0999\n"
                             "3,+3,-9.99e2,9007199254740995\n"
                             "-9.99e2,-9.99e2,-999.0,7\n"
                             "-998.9,?,?,8\n");
  for (const bool parallel : {false, true}) {
    for (const bool forced : {false, true}) {
      const std::string where = std::string(parallel ? "parallel" : "serial") +
                                (forced ? ", --numeric b" : "");
      CsvImportOptions options = quiet_options();
      options.na_values = {" -999 ", "?", "x1"};
      if (forced) options.numeric = {"b"};
      options.parallel = parallel;
      options.segment_bytes = parallel ? 8 : 0;
      const CsvImportReport report = import_csv(csv, dir.file("m.h5"), options);
      EXPECT_EQ(report.read_in_segments, parallel) << where;
      EXPECT_EQ(report.int64_columns, 0) << where;
      ASSERT_EQ(report.notes.size(), 2u) << where;  // and c's: categorical, though mostly numbers
      EXPECT_NE(report.notes[1].find("column 'id' holds integers beyond 2^53"), std::string::npos)
          << report.notes[1];
      EXPECT_NE(report.notes[1].find("1 missing value,"), std::string::npos) << report.notes[1];
      const Table t = read_table(dir.file("m.h5"));
      EXPECT_EQ(t.column("a").type, ColumnType::numeric) << where;
      EXPECT_EQ(t.missing("a"), 3) << where;
      EXPECT_FLOAT_EQ(t.at("a", 2), 3.0f) << where;
      EXPECT_FLOAT_EQ(t.at("a", 4), -998.9f) << where;
      EXPECT_EQ(t.missing("b"), 4) << where;
      EXPECT_FLOAT_EQ(t.at("b", 2), 3.0f) << where;
      // The token's plain spellings -999 and -999.0 are missing text, as pandas has them.
      EXPECT_EQ(t.column("c").categories, (std::vector<std::string>{"-9.99e2", "x"})) << where;
      EXPECT_EQ(t.missing("c"), 3) << where;
      EXPECT_EQ(t.column("id").dtype, "float64") << where;
      EXPECT_EQ(t.missing("id"), 1) << where;
      EXPECT_TRUE(std::isnan(t.at("id", 1))) << where;
    }
  }
  // Without the value match the int64 column stays exact; a token equal to no value changes nothing.
  const auto ids = dir.write("ids.csv", "id\n9007199254740993\n-0999\n");
  CsvImportOptions options = quiet_options();
  options.na_values = {"-999.5"};
  EXPECT_EQ(import_csv(ids, dir.file("ids.h5"), options).int64_columns, 1);
  // A token written as a float adds the integer's spellings as text.
  const auto words = dir.write("w.csv", "w\n-999\n-999.0\n-999.00\nx\n");
  options.na_values = {"-9.99e2"};
  import_csv(words, dir.file("w.h5"), options);
  EXPECT_EQ(read_table(dir.file("w.h5")).column("w").categories,
            (std::vector<std::string>{"-999.00", "x"}));
}

TEST(CsvImport, NoDefaultNaLeavesOnlyTheEmptyFieldAndNaValuesMissing) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("na.csv",
                             "a,b,c\n"
                             "1,NA,1\n"
                             ",x,?\n"
                             "3,#N/A,\n"
                             "4,None,2\n");
  for (const bool parallel : {false, true}) {
    CsvImportOptions options = quiet_options();
    options.keep_default_na = false;
    options.na_values = {"?"};
    options.parallel = parallel;
    options.segment_bytes = parallel ? 8 : 0;
    const CsvImportReport report = import_csv(csv, dir.file("na.h5"), options);
    EXPECT_EQ(report.read_in_segments, parallel);
    const Table t = read_table(dir.file("na.h5"));
    EXPECT_EQ(t.missing("a"), 1);
    EXPECT_EQ(t.column("b").categories, (std::vector<std::string>{"#N/A", "NA", "None", "x"}));
    EXPECT_EQ(t.missing("b"), 0);
    EXPECT_EQ(t.label("b", 0), "NA");
    EXPECT_EQ(t.column("c").type, ColumnType::numeric);
    EXPECT_EQ(t.missing("c"), 2);
  }
  // NA in a column of numbers: a label (few values), a bad value of a mostly numeric column, or
  // an error in a --numeric column; with the defaults, missing.
  const auto few = dir.write("few.csv", "v\n1\nNA\n2\n");
  CsvImportOptions options = quiet_options();
  options.keep_default_na = false;
  import_csv(few, dir.file("few.h5"), options);
  EXPECT_EQ(read_table(dir.file("few.h5")).column("v").categories,
            (std::vector<std::string>{"1", "2", "NA"}));
  options.numeric = {"v"};
  std::string message = input_error_of([&] { import_csv(few, dir.file("few.h5"), options); });
  EXPECT_NE(message.find("line 3, column 'v': 'NA' is not a number"), std::string::npos) << message;
  std::string text = "v\n";
  for (int i = 0; i < 200; ++i) text += (i == 150 ? std::string("NA") : std::to_string(i)) + "\n";
  const auto many = dir.write("many.csv", text);
  for (const bool parallel : {false, true}) {
    options = quiet_options();
    options.keep_default_na = false;
    options.parallel = parallel;
    message = input_error_of([&] { import_csv(many, dir.file("many.h5"), options); });
    EXPECT_NE(message.find("line 152, column 'v': 'NA' is not a number, though 99.50%"),
              std::string::npos)
        << message;
    EXPECT_FALSE(fs::exists(dir.file("many.h5")));
    options.keep_default_na = true;
    import_csv(many, dir.file("many.h5"), options);
    EXPECT_EQ(read_table(dir.file("many.h5")).missing("v"), 1);
    fs::remove(dir.file("many.h5"));
  }
}

TEST(CsvImport, BadNaValuesAreErrorsNamingTheToken) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("t.csv", "a;b\n1;2\n");
  for (const auto& [token, reason] : std::vector<std::pair<std::string, std::string>>{
           {"", "the token '' is empty"},
           {" \t", "the token ' \\x09' is empty"},
           {"a;b", "the token 'a;b' holds the delimiter ';'"},
           {"say \"x\"", "the token 'say \"x\"' holds a quote"},
           {"a\nb", "the token 'a\\x0Ab' holds a line break"},
           {"a\r", "the token 'a\\x0D' holds a line break"}}) {
    EXPECT_EQ(na_value_problem(token, ';').value_or("").rfind(reason, 0), 0u) << token;
    CsvImportOptions options = quiet_options();
    options.delimiter = ';';
    options.na_values = {"ok", token};
    const std::string message = input_error_of([&] { import_csv(csv, dir.file("t.h5"), options); });
    EXPECT_EQ(message.rfind("missing values (na_values): " + reason, 0), 0u) << message;
    EXPECT_FALSE(fs::exists(dir.file("t.h5")));
  }
  // A comma is the delimiter only of a comma-separated file.
  EXPECT_EQ(na_value_problem("a,b", ';'), std::nullopt);
  EXPECT_NE(na_value_problem("a,b", ','), std::nullopt);
  EXPECT_EQ(na_value_problem(" #N/A N/A ", ','), std::nullopt);
}

TEST(CsvImport, QuotedFieldsWithDelimitersLineBreaksAndQuotes) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("q.csv",
                             "\"name\",\"note\",\"x\"\n"
                             "\"a, b\",\"line one\nline two\",1\n"
                             "\"say \"\"hi\"\"\",\"\",2\n"
                             "plain,\"\"\"\",\"3\"\n");
  const auto out = dir.file("q.h5");
  EXPECT_EQ(import_csv(csv, out, quiet_options()).rows, 3);
  const Table t = read_table(out);
  EXPECT_EQ(t.columns[0].name, "name");
  EXPECT_EQ(t.label("name", 0), "a, b");
  EXPECT_EQ(t.label("name", 1), "say \"hi\"");
  EXPECT_EQ(t.label("name", 2), "plain");
  EXPECT_EQ(t.label("note", 0), "line one\nline two");
  EXPECT_EQ(t.label("note", 1), "");  // "" is an empty field: missing
  EXPECT_EQ(t.label("note", 2), "\"");
  EXPECT_EQ(t.column("x").type, ColumnType::numeric);
  EXPECT_FLOAT_EQ(t.at("x", 2), 3.0f);
}

TEST(CsvImport, LineNumbersArePhysicalLinesAfterMultilineFieldsAndBlankLines) {
  test::TemporaryDirectory dir;
  // Line 1 header, lines 2-4 one record, line 5 blank, line 6 a good row, line 7 ragged.
  const auto csv = dir.write("m.csv", "a,b\n\"x\n\ny\",1\n\nz,2\nw\n");
  const std::string message =
      input_error_of([&] { import_csv(csv, dir.file("m.h5"), quiet_options()); });
  EXPECT_NE(message.find("line 7"), std::string::npos) << message;
  EXPECT_NE(message.find("1 field"), std::string::npos) << message;
}

TEST(CsvImport, LinesOfSpacesAndTabsAreBlankOnBothPaths) {
  // As pandas' skip_blank_lines: skipped, and line numbers still count them.
  test::TemporaryDirectory dir;
  const auto csv = dir.write("b.csv", "a,b\n1,2\n\n  \n3,4\n \t \r\n5,6\n\t\n  7,8\n  ");
  const auto ragged = dir.write("r.csv", "a,b\n1,2\n  \n\t\n3\n");
  for (const bool parallel : {false, true}) {
    CsvImportOptions options = quiet_options();
    options.parallel = parallel;
    options.segment_bytes = parallel ? 8 : 0;
    const CsvImportReport report = import_csv(csv, dir.file("b.h5"), options);
    EXPECT_EQ(report.read_in_segments, parallel);
    EXPECT_EQ(report.rows, 4);
    const Table t = read_table(dir.file("b.h5"));
    EXPECT_EQ(t.missing("a"), 0);
    EXPECT_FLOAT_EQ(t.at("a", 2), 5.0f);
    EXPECT_FLOAT_EQ(t.at("a", 3), 7.0f);
    const std::string message = input_error_of([&] { import_csv(ragged, dir.file("r.h5"), options); });
    EXPECT_NE(message.find("line 5: has 1 field"), std::string::npos) << message;
  }
}

TEST(CsvImport, CrlfBomAndNoTrailingNewline) {
  test::TemporaryDirectory dir;
  const auto csv =
      dir.write("w.csv", "\xEF\xBB\xBF\"k\",\"v\"\r\n\"a\",1.5\r\nb,\"x\r\ny\"\r\nc,2");
  const auto out = dir.file("w.h5");
  EXPECT_EQ(import_csv(csv, out, quiet_options()).rows, 3);
  const Table t = read_table(out);
  EXPECT_EQ(t.columns[0].name, "k");  // no BOM in the name
  EXPECT_EQ(t.column("v").type, ColumnType::categorical);
  EXPECT_EQ(t.column("k").categories, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(t.label("v", 1), "x\r\ny");
  EXPECT_EQ(t.label("v", 2), "2");
}

// A file that holds a byte order mark and nothing else (or blank lines after it) is empty, as a
// file of no bytes is; it was read past the mark's end and said the header had no name.
TEST(CsvImport, AByteOrderMarkAloneIsAnEmptyFile) {
  test::TemporaryDirectory dir;
  for (const std::string text : {"\xEF\xBB\xBF", "\xEF\xBB\xBF\n", "\xEF\xBB\xBF\r\n\n", ""}) {
    const auto csv = dir.write("bom.csv", text);
    const std::string message =
        input_error_of([&] { import_csv(csv, dir.file("bom.h5"), quiet_options()); });
    EXPECT_NE(message.find("bom.csv: is empty (no header, no rows)"), std::string::npos) << message;
    EXPECT_FALSE(std::filesystem::exists(dir.file("bom.h5")));
  }
}

TEST(CsvImport, CrlfNumericColumnHasNoStrayCarriageReturn) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("n.csv", "a,b\r\n1,2\r\n3,4\r\n");
  const auto out = dir.file("n.h5");
  import_csv(csv, out, quiet_options());
  const Table t = read_table(out);
  EXPECT_EQ(t.column("b").type, ColumnType::numeric);
  EXPECT_FLOAT_EQ(t.at("b", 1), 4.0f);
}

TEST(CsvImport, RaggedRowFailsNamingTheLineAndLeavesNoOutput) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("r.csv", "a,b,c\n1,2,3\n4,5,6\n7,8\n9,10,11\n");
  const auto out = dir.file("r.h5");
  const std::string message = input_error_of([&] { import_csv(csv, out, quiet_options()); });
  EXPECT_NE(message.find("r.csv"), std::string::npos) << message;
  EXPECT_NE(message.find("line 4"), std::string::npos) << message;
  EXPECT_NE(message.find("2 fields"), std::string::npos) << message;
  EXPECT_NE(message.find("header has 3"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"r.csv"}));
}

TEST(CsvImport, FailedImportLeavesAnEarlierOutputUntouched) {
  test::TemporaryDirectory dir;
  const auto out = dir.write("keep.h5", "an earlier file");
  const auto csv = dir.write("r.csv", "a,b\n1,2\n3\n");
  input_error_of([&] { import_csv(csv, out, quiet_options()); });
  EXPECT_EQ(read_bytes(out), "an earlier file");
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"keep.h5", "r.csv"}));
  // And a good import replaces it.
  const auto good = dir.write("g.csv", "a,b\n1,2\n");
  import_csv(good, out, quiet_options());
  EXPECT_EQ(read_table(out).rows, 1);
}

TEST(CsvImport, ForcedNumericColumnWithATextValueFailsNamingLineColumnAndValue) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("b.csv", "a,b\n1,2\n3,four\n5,6\n");
  CsvImportOptions options = quiet_options();
  options.numeric = {"b"};
  const std::string message = input_error_of([&] { import_csv(csv, dir.file("b.h5"), options); });
  EXPECT_NE(message.find("line 3"), std::string::npos) << message;
  EXPECT_NE(message.find("'b'"), std::string::npos) << message;
  EXPECT_NE(message.find("'four'"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(dir.file("b.h5")));
}

TEST(CsvImport, MostlyNumericColumnWithABadValueFailsSuggestingCategorical) {
  test::TemporaryDirectory dir;
  std::string text = "x,y\n";
  for (int i = 0; i < 300; ++i) {
    text +=
        std::to_string(i) + "," + (i == 150 ? std::string("12.5.1") : std::to_string(i * 2)) + "\n";
  }
  const auto csv = dir.write("h.csv", text);
  const std::string message =
      input_error_of([&] { import_csv(csv, dir.file("h.h5"), quiet_options()); });
  EXPECT_NE(message.find("line 152"), std::string::npos) << message;
  EXPECT_NE(message.find("'y'"), std::string::npos) << message;
  EXPECT_NE(message.find("'12.5.1'"), std::string::npos) << message;
  EXPECT_NE(message.find("--categorical"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(dir.file("h.h5")));

  // Forced categorical, the same column imports, numbers as labels.
  CsvImportOptions options = quiet_options();
  options.categorical = {"y"};
  EXPECT_EQ(import_csv(csv, dir.file("h.h5"), options).rows, 300);
  const Table t = read_table(dir.file("h.h5"));
  EXPECT_EQ(t.column("y").type, ColumnType::categorical);
  EXPECT_EQ(t.label("y", 150), "12.5.1");
  EXPECT_EQ(t.label("y", 3), "6");
}

TEST(CsvImport, FewValuesWithATextValueAreCategorical) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("c.csv", "size\n1\n2\n3+\n2\n");
  import_csv(csv, dir.file("c.h5"), quiet_options());
  const Table t = read_table(dir.file("c.h5"));
  EXPECT_EQ(t.column("size").type, ColumnType::categorical);
  EXPECT_EQ(t.column("size").categories, (std::vector<std::string>{"1", "2", "3+"}));
  EXPECT_EQ(t.label("size", 0), "1");
  EXPECT_EQ(t.label("size", 3), "2");
}

TEST(CsvImport, DecimalNumbersWithATextValueAreCategoricalWithEveryLabel) {
  // Decimals are not kept as possible labels in pass 1 (only integers are): the labels of such a
  // column come from the third pass, the same whichever path reads the file.
  test::TemporaryDirectory dir;
  const auto csv = dir.write("c.csv", "rating,n\n1.5,1\n2.25,2\nnone yet,3\n1.5,4\n-0.5,5\n");
  for (const bool parallel : {false, true}) {
    CsvImportOptions options = quiet_options();
    options.parallel = parallel;
    import_csv(csv, dir.file("c.h5"), options);
    const Table t = read_table(dir.file("c.h5"));
    EXPECT_EQ(t.column("rating").type, ColumnType::categorical);
    EXPECT_EQ(t.column("rating").categories, (std::vector<std::string>{"-0.5", "1.5", "2.25", "none yet"}));
    EXPECT_EQ(t.label("rating", 3), "1.5");
    EXPECT_EQ(t.column("n").type, ColumnType::numeric);
  }
}

TEST(CsvImport, ChunksAreEvenAndNoLongerThanTheTable) {
  // 1000 rows with chunks of at most 300: four chunks of 250, not three of 300 and a fourth that
  // stores 200 rows of fill value; 1000 rows with at most 65536: one chunk of 1000.
  test::TemporaryDirectory dir;
  std::string text = "x,y\n";
  for (int i = 0; i < 1000; ++i) text += std::to_string(i) + "," + std::to_string(i % 7) + "\n";
  const auto csv = dir.write("c.csv", text);
  for (const auto& [longest, expected] : {std::pair<std::int64_t, hsize_t>{300, 250}, {65536, 1000}}) {
    CsvImportOptions options = quiet_options();
    options.chunk_rows = longest;
    import_csv(csv, dir.file("c.h5"), options);
    h5::H5Handle file = h5::file_handle(H5Fopen(dir.file("c.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    h5::H5Handle dataset = h5::dataset_handle(H5Dopen2(file.get(), "x", H5P_DEFAULT));
    h5::H5Handle dcpl = h5::plist_handle(H5Dget_create_plist(dataset.get()));
    hsize_t chunk = 0;
    ASSERT_EQ(H5Pget_chunk(dcpl.get(), 1, &chunk), 1);
    EXPECT_EQ(chunk, expected) << "longest " << longest;
  }
}

TEST(CsvImport, SkipBadRowsCountsAndReportsThem) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("s.csv",
                             "a,b,c\n"
                             "1,2,x\n"
                             "3,4\n"  // line 3: ragged
                             "5,6,y\n"
                             "7,eight,z\n"     // line 5: not a number in forced numeric b
                             "9,10,w,extra\n"  // line 6: ragged
                             "11,12,only\n");  // `only` must not become a category of a skipped row
  CsvImportOptions options = quiet_options();
  options.numeric = {"b"};
  options.skip_bad_rows = true;
  const auto out = dir.file("s.h5");
  const CsvImportReport report = import_csv(csv, out, options);
  EXPECT_EQ(report.rows, 3);
  EXPECT_EQ(report.skipped_rows, 3);
  ASSERT_EQ(report.skipped_examples.size(), 3u);
  EXPECT_NE(report.skipped_examples[0].find("line 3"), std::string::npos);
  EXPECT_NE(report.skipped_examples[1].find("line 5"), std::string::npos);
  EXPECT_NE(report.skipped_examples[1].find("'eight'"), std::string::npos);
  EXPECT_NE(report.skipped_examples[2].find("line 6"), std::string::npos);
  const Table t = read_table(out);
  EXPECT_EQ(t.rows, 3);
  EXPECT_FLOAT_EQ(t.at("a", 2), 11.0f);
  EXPECT_FLOAT_EQ(t.at("b", 1), 6.0f);
  EXPECT_EQ(t.column("c").categories, (std::vector<std::string>{"only", "x", "y"}));
}

TEST(CsvImport, SkipBadRowsDropsBadValuesOfAMostlyNumericColumnAndTheirLabels) {
  test::TemporaryDirectory dir;
  std::string text = "v,tag\n";
  for (int i = 0; i < 200; ++i) {
    text += (i == 10 ? std::string("oops") : std::to_string(i)) + "," +
            (i == 10 ? "only_in_bad_row" : (i % 2 ? "odd" : "even")) + "\n";
  }
  const auto csv = dir.write("m.csv", text);
  CsvImportOptions options = quiet_options();
  options.skip_bad_rows = true;
  const CsvImportReport report = import_csv(csv, dir.file("m.h5"), options);
  EXPECT_EQ(report.rows, 199);
  EXPECT_EQ(report.skipped_rows, 1);
  ASSERT_EQ(report.skipped_examples.size(), 1u);
  EXPECT_NE(report.skipped_examples[0].find("line 12"), std::string::npos);
  const Table t = read_table(dir.file("m.h5"));
  EXPECT_EQ(t.column("v").type, ColumnType::numeric);
  EXPECT_EQ(t.column("tag").categories, (std::vector<std::string>{"even", "odd"}));
  EXPECT_FLOAT_EQ(t.at("v", 10), 11.0f);
}

TEST(CsvImport, SkipBadRowsLabelOnlyInARowSkippedForANumericColumnIsNoCategory) {
  // The categorical column comes before the --numeric one: pass 2 once looked its label up before
  // finding the non-number, and, pass 1 having collected no label from the skipped row, failed
  // with "the file changed while it was being imported". The row contributes nothing, on every
  // path: serial, in segments, held by pass 1 or read again.
  test::TemporaryDirectory dir;
  const auto csv = dir.write("l.csv",
                             "tag,n,kind\n"
                             "x,1,a\n"
                             "only,bad,only_kind\n"  // line 3: its labels must not be categories
                             "y,2,b\n");
  for (const bool parallel : {false, true}) {
    for (const std::int64_t held : {std::int64_t{-1}, std::int64_t{0}}) {
      CsvImportOptions options = quiet_options();
      options.numeric = {"n"};
      options.skip_bad_rows = true;
      options.parallel = parallel;
      options.held_values_bytes = held;
      const std::string where = std::string(parallel ? "parallel" : "serial") +
                                (held == 0 ? ", read again" : "");
      const CsvImportReport report = import_csv(csv, dir.file("l.h5"), options);
      EXPECT_EQ(report.rows, 2) << where;
      EXPECT_EQ(report.read_once, parallel && held != 0) << where;
      EXPECT_EQ(report.skipped_examples,
                (std::vector<std::string>{
                    "line 3, column 'n': 'bad' is not a number (the column is --numeric)"}))
          << where;
      const Table t = read_table(dir.file("l.h5"));
      EXPECT_EQ(t.column("tag").categories, (std::vector<std::string>{"x", "y"})) << where;
      EXPECT_EQ(t.column("kind").categories, (std::vector<std::string>{"a", "b"})) << where;
      EXPECT_EQ(t.label("tag", 1), "y") << where;
      EXPECT_FLOAT_EQ(t.at("n", 1), 2.0f) << where;
    }
  }
}

TEST(CsvImport, SkipBadRowsLabelOnlyInARowSkippedForAMostlyNumericColumnIsNoCategory) {
  // As above, for a column taken as numeric with a few bad values: pass 1 keeps their rows (the
  // type is not known yet) and the label pass collects labels again from the rows pass 2 keeps;
  // pass 2 once looked up the label before the later column's bad value, and failed the same way.
  test::TemporaryDirectory dir;
  std::string text = "tag,v\n";
  for (int i = 0; i < 200; ++i) {
    text += (i == 10 ? std::string("only_in_bad_row") : (i % 2 ? "odd" : "even")) + "," +
            (i == 10 ? std::string("oops") : std::to_string(i)) + "\n";
  }
  const auto csv = dir.write("m.csv", text);
  for (const bool parallel : {false, true}) {
    CsvImportOptions options = quiet_options();
    options.skip_bad_rows = true;
    options.parallel = parallel;
    const CsvImportReport report = import_csv(csv, dir.file("m.h5"), options);
    EXPECT_EQ(report.rows, 199) << parallel;
    EXPECT_EQ(report.skipped_examples,
              (std::vector<std::string>{"line 12, column 'v': 'oops' is not a number"}))
        << parallel;
    const Table t = read_table(dir.file("m.h5"));
    EXPECT_EQ(t.column("tag").categories, (std::vector<std::string>{"even", "odd"})) << parallel;
    EXPECT_EQ(t.column("v").type, ColumnType::numeric) << parallel;
    EXPECT_FLOAT_EQ(t.at("v", 10), 11.0f) << parallel;
  }
}

TEST(CsvImport, SkipBadRowsWithEveryRowBadIsAnError) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("e.csv", "a,b\n1\n2\n");
  CsvImportOptions options = quiet_options();
  options.skip_bad_rows = true;
  const std::string message = input_error_of([&] { import_csv(csv, dir.file("e.h5"), options); });
  EXPECT_NE(message.find("line 2"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(dir.file("e.h5")));
}

TEST(CsvImport, ForcedCategoricalSortsNumberLabelsBytewise) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("f.csv", "zip,n\n10,1\n9,2\n10,3\n,4\n");
  CsvImportOptions options = quiet_options();
  options.categorical = {"zip"};
  const CsvImportReport report = import_csv(csv, dir.file("f.h5"), options);
  EXPECT_EQ(report.categorical_columns, 1);
  const Table t = read_table(dir.file("f.h5"));
  EXPECT_EQ(t.column("zip").type, ColumnType::categorical);
  EXPECT_EQ(t.column("zip").categories, (std::vector<std::string>{"10", "9"}));
  EXPECT_EQ(t.label("zip", 1), "9");
  EXPECT_EQ(t.missing("zip"), 1);
}

TEST(CsvImport, ForcedColumnsMustExistAndNotConflict) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("f.csv", "a,b\n1,2\n");
  CsvImportOptions options = quiet_options();
  options.categorical = {"nope"};
  EXPECT_NE(input_error_of([&] { import_csv(csv, dir.file("f.h5"), options); }).find("'nope'"),
            std::string::npos);
  options.categorical = {"a"};
  options.numeric = {"a"};
  EXPECT_NE(input_error_of([&] { import_csv(csv, dir.file("f.h5"), options); }).find("'a'"),
            std::string::npos);
}

TEST(CsvImport, ManyDistinctNumbersBeforeTheFirstTextStillGetEveryLabel) {
  // More distinct numbers than pass 1 keeps for a numeric-looking column, then enough text to
  // make it categorical: the labels come from an extra pass.
  test::TemporaryDirectory dir;
  std::string text = "k\n";
  for (int i = 0; i < 3000; ++i) text += std::to_string(i) + "\n";
  for (int i = 0; i < 100; ++i) text += "t" + std::to_string(i) + "\n";
  const auto csv = dir.write("k.csv", text);
  EXPECT_EQ(import_csv(csv, dir.file("k.h5"), quiet_options()).rows, 3100);
  const Table t = read_table(dir.file("k.h5"));
  EXPECT_EQ(t.column("k").type, ColumnType::categorical);
  EXPECT_EQ(t.column("k").categories.size(), 3100u);
  for (const int r : {0, 1, 999, 1500, 2999, 3000, 3099}) {
    EXPECT_EQ(t.label("k", r), r < 3000 ? std::to_string(r) : "t" + std::to_string(r - 3000));
  }
}

TEST(CsvImport, BlocksShorterThanTheTableAndRecordsAcrossReadBuffers) {
  // Over 1 MiB so records straddle the reader's buffer; chunks of 7 rows so blocks do too.
  test::TemporaryDirectory dir;
  std::string text = "i,label,x\n";
  const int rows = 40000;
  for (int i = 0; i < rows; ++i) {
    text += std::to_string(i) + ",\"q" + std::to_string(i % 13) + ", \"\"quoted\"\"\n\"," +
            std::to_string(i) + ".25\n";
  }
  ASSERT_GT(text.size(), std::size_t{1} << 20);
  const auto csv = dir.write("big.csv", text);
  CsvImportOptions options = quiet_options();
  options.chunk_rows = 7;
  options.deflate_level = 0;
  EXPECT_EQ(import_csv(csv, dir.file("big.h5"), options).rows, rows);
  const Table t = read_table(dir.file("big.h5"));
  ASSERT_EQ(t.rows, rows);
  EXPECT_EQ(t.column("label").categories.size(), 13u);
  for (std::int64_t r = 0; r < rows; r += 997) {
    EXPECT_FLOAT_EQ(t.at("i", r), static_cast<float>(r));
    EXPECT_FLOAT_EQ(t.at("x", r), static_cast<float>(r) + 0.25f);
    EXPECT_EQ(t.label("label", r), "q" + std::to_string(r % 13) + ", \"quoted\"\n");
  }
}

TEST(CsvImport, OtherDelimiter) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("t.tsv", "a\tb\n1,5\tx y\n");
  CsvImportOptions options = quiet_options();
  options.delimiter = '\t';
  import_csv(csv, dir.file("t.h5"), options);
  const Table t = read_table(dir.file("t.h5"));
  EXPECT_EQ(t.label("a", 0), "1,5");
  EXPECT_EQ(t.label("b", 0), "x y");
}

TEST(CsvImport, MissingAndEmptyFilesAreErrorsNamingTheFile) {
  test::TemporaryDirectory dir;
  const auto out = dir.file("o.h5");
  std::string message =
      input_error_of([&] { import_csv(dir.file("absent.csv"), out, quiet_options()); });
  EXPECT_NE(message.find("absent.csv"), std::string::npos) << message;
  message = input_error_of([&] { import_csv(dir.write("empty.csv", ""), out, quiet_options()); });
  EXPECT_NE(message.find("empty.csv"), std::string::npos) << message;
  EXPECT_NE(message.find("empty"), std::string::npos) << message;
  message = input_error_of([&] { import_csv(dir.write("blank.csv", "\n \t\n"), out, quiet_options()); });
  EXPECT_NE(message.find("empty"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(out));
}

TEST(CsvImport, HeaderOnlyFileIsZeroRowsOfNumericColumnsOnBothPaths) {
  // An empty partition, as pandas reads it: every column float64 unless --categorical names it.
  test::TemporaryDirectory dir;
  const std::vector<std::string> texts = {"a,b,c\n", "a,b,c", "a,b,c\r\n\n  \n\t\n"};
  for (std::size_t k = 0; k < texts.size(); ++k) {
    const auto csv = dir.write("h.csv", texts[k]);
    for (const bool parallel : {false, true}) {
      for (const bool forced : {false, true}) {
        CsvImportOptions options = quiet_options();
        options.parallel = parallel;
        options.segment_bytes = parallel ? 1 : 0;
        if (forced) {
          options.categorical = {"b"};
          options.numeric = {"c"};
        }
        const std::string where = "file " + std::to_string(k) + (parallel ? ", parallel" : ", serial") +
                                  (forced ? ", forced" : "");
        const CsvImportReport report = import_csv(csv, dir.file("h.h5"), options);
        EXPECT_EQ(report.rows, 0) << where;
        EXPECT_EQ(report.columns, 3) << where;
        EXPECT_EQ(report.categorical_columns, forced ? 1 : 0) << where;
        ASSERT_EQ(report.notes.size(), 1u) << where;
        EXPECT_NE(report.notes[0].find("header but no rows"), std::string::npos) << where;
        const TableReader reader(dir.file("h.h5"), TableReadOptions{.allow_empty = true});
        EXPECT_EQ(reader.rows(), 0) << where;
        ASSERT_EQ(reader.columns().size(), 3u) << where;
        for (const ColumnInfo& column : reader.columns()) {
          const bool categorical = forced && column.name == "b";
          EXPECT_EQ(column.type, categorical ? ColumnType::categorical : ColumnType::numeric)
              << where << " " << column.name;
          EXPECT_EQ(column.dtype, categorical ? "int32" : "float64") << where << " " << column.name;
          EXPECT_TRUE(column.categories.empty()) << where << " " << column.name;
        }
      }
    }
  }
  // Rows that are all bad are still an error.
  CsvImportOptions options = quiet_options();
  options.skip_bad_rows = true;
  const std::string message = input_error_of(
      [&] { import_csv(dir.write("bad.csv", "a,b\n1\n"), dir.file("bad.h5"), options); });
  EXPECT_NE(message.find("all 1 rows are bad"), std::string::npos) << message;
}

TEST(CsvImport, BadHeaderNamesAreErrorsNamingThem) {
  test::TemporaryDirectory dir;
  const auto out = dir.file("o.h5");
  std::string message = input_error_of(
      [&] { import_csv(dir.write("d.csv", "a,\"b\",b\n1,2,3\n"), out, quiet_options()); });
  EXPECT_NE(message.find("'b'"), std::string::npos) << message;
  EXPECT_NE(message.find("twice"), std::string::npos) << message;
  message = input_error_of(
      [&] { import_csv(dir.write("e.csv", "a,,c\n1,2,3\n"), out, quiet_options()); });
  EXPECT_NE(message.find("column 2"), std::string::npos) << message;
  EXPECT_NE(message.find("no name"), std::string::npos) << message;
}

TEST(CsvImport, UnclosedQuoteIsAnErrorNamingWhereItOpened) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("u.csv", "a,b\n1,2\n3,\"open\n4,5\n");
  const std::string message =
      input_error_of([&] { import_csv(csv, dir.file("u.h5"), quiet_options()); });
  EXPECT_NE(message.find("line 3"), std::string::npos) << message;
  EXPECT_NE(message.find("never closed"), std::string::npos) << message;
}

TEST(CsvReader, SplitsRecordsAndKeepsTheirFirstLine) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("r.csv", "a,\"b\nc\"\r\n\r\nd,\"e\"\"\"f\n,\n");
  CsvReader reader(csv, ',');
  CsvRecord record;
  ASSERT_TRUE(reader.next(record));
  EXPECT_EQ(record.first_line, 1);
  EXPECT_EQ(record.fields, (std::vector<std::string_view>{"a", "b\nc"}));
  ASSERT_TRUE(reader.next(record));
  EXPECT_EQ(record.first_line, 4);
  EXPECT_EQ(record.fields, (std::vector<std::string_view>{"d", "e\"f"}));
  ASSERT_TRUE(reader.next(record));
  EXPECT_EQ(record.first_line, 5);
  EXPECT_EQ(record.fields, (std::vector<std::string_view>{"", ""}));
  EXPECT_FALSE(reader.next(record));
}

TEST(CsvReader, CountsALoneCrInsideQuotesAsALineBreakAsOutsideThem) {
  test::TemporaryDirectory dir;
  // The same records with lone-CR, CRLF and LF line ends: the record after the quoted line break
  // starts on physical line 4 in each (a lone CR inside quotes was not counted: line 3).
  for (const std::string end : {"\r", "\r\n", "\n"}) {
    const auto csv = dir.write("q.csv", "a,b" + end + "1,\"x" + end + "y\"" + end + "4" + end);
    CsvReader reader(csv, ',');
    CsvRecord record;
    ASSERT_TRUE(reader.next(record));
    ASSERT_TRUE(reader.next(record));
    EXPECT_EQ(record.first_line, 2);
    ASSERT_TRUE(reader.next(record));
    EXPECT_EQ(record.first_line, 4) << testing::PrintToString(end);
    EXPECT_EQ(record.fields, (std::vector<std::string_view>{"4"}));
  }
  // A '\r' inside quotes that ends the 1 MiB read buffer: one line break whether the next buffer
  // starts with its '\n' (a CRLF split between them) or not (a lone CR).
  for (const std::string next : {"y", "\ny"}) {
    std::string text = "a,b\r1,\"";
    text.append((std::size_t{1} << 20) - 1 - text.size(), 'x');
    text += "\r" + next + "\"\r4\r";
    CsvReader reader(dir.write("b.csv", text), ',');
    CsvRecord record;
    ASSERT_TRUE(reader.next(record));
    ASSERT_TRUE(reader.next(record));
    ASSERT_TRUE(reader.next(record));
    EXPECT_EQ(record.first_line, 4) << testing::PrintToString(next);
    EXPECT_EQ(record.fields, (std::vector<std::string_view>{"4"}));
  }
}

// ---- The parallel path (data read in segments) against the serial one (CsvReader) ----

// Everything an import writes that a reader can see, one entry per column: name, type, stored type,
// categories and the dataset's bytes as stored (float64, int64 or int32), plus the root's attributes.
std::vector<std::string> stored_content(const fs::path& path) {
  std::vector<std::string> content;
  const TableReader reader(path, TableReadOptions{.allow_empty = true});
  h5::H5Handle file = h5::file_handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file) {
    ADD_FAILURE() << "cannot open " << path;
    return content;
  }
  for (const char* attribute : {"lathe_columns", "lathe_source", "lathe_layout"}) {
    std::string joined = std::string(attribute) + "=";
    for (const std::string& v : h5::read_string_attribute(file.get(), attribute, path.string())) {
      joined += v + "|";
    }
    content.push_back(joined);
  }
  for (const ColumnInfo& column : reader.columns()) {
    std::string entry = column.name + " " + column_type_name(column.type) + " " + column.dtype + " [";
    for (const std::string& label : column.categories) entry += label + "|";
    entry += "] ";
    h5::H5Handle dataset =
        h5::dataset_handle(H5Dopen2(file.get(), column.dataset.c_str(), H5P_DEFAULT));
    if (!dataset) {
      ADD_FAILURE() << "no dataset " << column.dataset;
      continue;
    }
    const bool codes = column.type == ColumnType::categorical;
    const bool integers = column.dtype == "int64";  // exact integers: read as such, not as doubles
    const std::size_t element = codes ? sizeof(std::int32_t) : sizeof(double);
    const hid_t memory_type = codes ? H5T_NATIVE_INT32 : integers ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE;
    std::string bytes(static_cast<std::size_t>(reader.rows()) * element, '\0');
    if (!bytes.empty() &&
        H5Dread(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()) < 0) {
      ADD_FAILURE() << "cannot read " << column.dataset;
    }
    content.push_back(entry + bytes);
  }
  return content;
}

// What one import did: its report and stored content, or its error message.
struct ImportOutcome {
  std::string error;
  CsvImportReport report;
  std::vector<std::string> content;
};

// What a run of random files came to, so a test can require that they exercised every outcome.
struct OutcomeTally {
  int imported = 0, failed = 0, skipped = 0, numeric_columns = 0, categorical_columns = 0;
  void add(const ImportOutcome& outcome) {
    ++(outcome.error.empty() ? imported : failed);
    skipped += outcome.report.skipped_rows > 0 ? 1 : 0;
    numeric_columns += static_cast<int>(outcome.report.numeric_columns);
    categorical_columns += static_cast<int>(outcome.report.categorical_columns);
  }
  // More than these of each: the files exercised both outcomes, skipping and both column types.
  void expect_more_than(int min_imported, int min_failed, int min_skipped, int min_numeric,
                        int min_categorical) const {
    EXPECT_GT(imported, min_imported);
    EXPECT_GT(failed, min_failed);
    EXPECT_GT(skipped, min_skipped);
    EXPECT_GT(numeric_columns, min_numeric);
    EXPECT_GT(categorical_columns, min_categorical);
  }
};

ImportOutcome import_outcome(const fs::path& csv, const fs::path& out, const CsvImportOptions& options) {
  ImportOutcome outcome;
  try {
    outcome.report = import_csv(csv, out, options);
    outcome.content = stored_content(out);
    fs::remove(out);
  } catch (const InputError& e) {
    outcome.error = e.what();
  }
  return outcome;
}

// Requires `got` to be `want`'s report (notes and skipped rows included) and stored bytes; `where`
// names the comparison in failures.
void expect_same_import(const ImportOutcome& got, const ImportOutcome& want, const std::string& where) {
  EXPECT_EQ(got.report.rows, want.report.rows) << where;
  EXPECT_EQ(got.report.skipped_rows, want.report.skipped_rows) << where;
  EXPECT_EQ(got.report.skipped_examples, want.report.skipped_examples) << where;
  EXPECT_EQ(got.report.numeric_columns, want.report.numeric_columns) << where;
  EXPECT_EQ(got.report.categorical_columns, want.report.categorical_columns) << where;
  EXPECT_EQ(got.report.int64_columns, want.report.int64_columns) << where;
  EXPECT_EQ(got.report.notes, want.report.notes) << where;
  EXPECT_EQ(got.content.size(), want.content.size()) << where;
  if (got.content.size() != want.content.size()) return;
  for (std::size_t i = 0; i < want.content.size(); ++i) {
    // Not EXPECT_EQ: the entries hold binary data.
    EXPECT_TRUE(got.content[i] == want.content[i])
        << where << ": entry " << i << " differs: " << want.content[i].substr(0, 80);
  }
}

// Imports `text` on the serial path and on the parallel path with segments of several sizes (down
// to 1 byte, so records start, end and break across every kind of boundary, and the file spans many
// batches), and requires the same report (notes included), stored bytes and error message; a file that imports must
// have taken the parallel path exactly when `in_segments` (it is false for data holding a lone CR).
// Returns the serial outcome.
ImportOutcome expect_same_both_ways(const std::string& text, CsvImportOptions options,
                                    const std::string& what, bool in_segments = true,
                                    const std::vector<std::int64_t>& segment_sizes = {1, 7, 64, 1000, 0}) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("p.csv", text);
  options.progress = false;
  options.parallel = false;
  const ImportOutcome serial = import_outcome(csv, dir.file("serial.h5"), options);
  EXPECT_FALSE(serial.report.read_in_segments) << what;
  options.parallel = true;
  for (const std::int64_t segment_bytes : segment_sizes) {
    options.segment_bytes = segment_bytes;
    const ImportOutcome parallel = import_outcome(csv, dir.file("parallel.h5"), options);
    const std::string where = what + ", segments of " + std::to_string(segment_bytes) + " bytes";
    EXPECT_EQ(parallel.error, serial.error) << where;
    if (!serial.error.empty() || !parallel.error.empty()) continue;
    EXPECT_EQ(parallel.report.read_in_segments, in_segments) << where;
    expect_same_import(parallel, serial, where);
  }
  return serial;
}

CsvImportOptions options_with(bool skip_bad_rows, std::vector<std::string> categorical = {},
                              std::vector<std::string> numeric = {}) {
  CsvImportOptions options;
  options.skip_bad_rows = skip_bad_rows;
  options.categorical = std::move(categorical);
  options.numeric = std::move(numeric);
  return options;
}

TEST(CsvImportParallel, BlankLinesCrlfBomAndNoFinalNewline) {
  for (const bool skip : {false, true}) {
    const CsvImportOptions o = options_with(skip);
    expect_same_both_ways("a,b,c\n1,x,2\n\n\n3,y,4\n\n5,,6\n\n", o, "blank lines");
    expect_same_both_ways("a,b,c\n\n\n1,x,2\n3,y,4", o, "blank lines first, no final newline");
    expect_same_both_ways("a,b\r\n1,x\r\n\r\n2,y\r\n3,\r\n,z\r\n", o, "CRLF");
    expect_same_both_ways("a,b\r\n1,x\n2,y\r\n\n\r\n3,z", o, "CRLF and LF mixed");
    expect_same_both_ways("\xEF\xBB\xBF" "a,b\r\n1,2\r\n3,4", o, "BOM");
    expect_same_both_ways("\xEF\xBB\xBF" "a,b\n" "\xEF\xBB\xBF" "1,2\n3,4\n", o, "BOM-like bytes later");
    expect_same_both_ways("\"a\",\"b c\"\n1,2\n3,4\n", o, "quoted header, plain data");
    expect_same_both_ways("a,b\r1,2\n3,4\n", o, "header ended by a lone CR, plain data");
    expect_same_both_ways("\n\na,b\n1,2\n", o, "blank lines before the header");
    expect_same_both_ways("a,b\n1,2\n\n", o, "one row");
  }
}

TEST(CsvImportParallel, LinesOfSpacesAndTabs) {
  for (const bool skip : {false, true}) {
    const CsvImportOptions o = options_with(skip);
    expect_same_both_ways("a,b\n1,2\n  \n\t\t\n3,4\n \t\r\n5,6\n", o, "blank lines of spaces");
    expect_same_both_ways("  \n\ta,b\n 1 ,2\n\t3,4\n   ", o, "before the header, at the end");
    expect_same_both_ways("a,b\n1,2\n  \n7\n\t\n8,9\n", o, "ragged row after them");
    expect_same_both_ways("a,b\n  \"x,y\",1\n  \n\"p\n  \n\",2\n", o, "quotes after spaces");
    expect_same_both_ways("a\n1\n  \n2\n", o, "one column");
    expect_same_both_ways(std::string("a,b\n") + std::string(300, ' ') + "\n1,2\n" +
                              std::string(300, '\t') + "3,4\n",
                          o, "long runs of spaces");
    CsvImportOptions tab = o;
    tab.delimiter = '\t';
    const ImportOutcome tsv =
        expect_same_both_ways("a\tb\n1\t2\n  \n\t\n3\t4\n", tab, "a tab-separated file");
    EXPECT_EQ(tsv.report.rows, 3);  // the line of spaces is blank, the tab is a row of two fields
    CsvImportOptions space = o;
    space.delimiter = ' ';
    const ImportOutcome ssv =
        expect_same_both_ways("a b\n1 2\n\t\n \n3 4\n", space, "a space-separated file");
    EXPECT_EQ(ssv.report.rows, 3);
  }
}

TEST(CsvImportParallel, MissingValuesNumbersAndCategories) {
  const std::string text =
      "id,price,color,score,mixed\n"
      "1,2.5,red,+3,1.\n"
      "2,NA,blue,-1e3,.5\n"
      "3, 7 ,,NaN,-.5e-3\n"
      "4,N/A,red, null,1e\n"
      "5,1e-2,NULL,None,inf\n"
      "6,,green,nan,0x10\n"
      "7,\t8\t,Red,1e999,+.5\n"
      "8,1E+2,blue,-1e-999,+-1\n"
      "9,-0,green,00012,-\n";
  for (const bool skip : {false, true}) {
    expect_same_both_ways(text, options_with(skip), "values");
    expect_same_both_ways(text, options_with(skip, {"price", "mixed"}), "--categorical");
    expect_same_both_ways(text, options_with(skip, {}, {"score"}), "--numeric");
    expect_same_both_ways(text, options_with(skip, {}, {"mixed"}), "--numeric, bad values");
  }
}

TEST(CsvImportParallel, NaTokensNaValuesAndNoDefaultNa) {
  // Every default token, na_values tokens and values that only look like them, in numeric and
  // categorical columns, quoted and spaced: the same both ways under each option.
  std::vector<std::string> tokens = kPandasNaTokens;
  for (const char* token : {"?", "-999", "x"}) tokens.push_back(token);
  std::vector<std::string> values = tokens;
  for (const char* value : {"-9999", "??", "NA?", "#N/A N", "1.#INDX"}) values.push_back(value);
  std::string text = "id,num,cat,quoted\n";
  for (std::size_t i = 0; i < 3 * values.size(); ++i) {
    const bool token = i % 3 == 0;
    const std::string num = token ? tokens[i / 3 % tokens.size()] : std::to_string(i) + ".5";
    const std::string cat = token ? values[i / 3] : std::string(i % 2 ? "a" : "b");
    text += std::to_string(i) + "," + num + "," + cat + ",\" " + values[i % values.size()] + "\"\n";
  }
  const std::vector<std::int64_t> segment_sizes = {13, 256, 0};
  for (const bool defaults : {true, false}) {
    for (const std::vector<std::string>& na_values :
         {std::vector<std::string>{}, std::vector<std::string>{"?", "-999", "x"}}) {
      CsvImportOptions options;
      options.keep_default_na = defaults;
      options.na_values = na_values;
      const std::string what = std::string(defaults ? "defaults" : "no defaults") + ", " +
                               std::to_string(na_values.size()) + " na_values";
      const ImportOutcome serial = expect_same_both_ways(text, options, what, true, segment_sizes);
      // With the defaults and the three tokens, every token of `num` is missing.
      EXPECT_EQ(serial.report.numeric_columns, defaults && !na_values.empty() ? 2 : 1) << what;
      options.numeric = {"num"};
      const ImportOutcome numeric =
          expect_same_both_ways(text, options, what + ", --numeric", true, segment_sizes);
      EXPECT_EQ(numeric.error.empty(), defaults && !na_values.empty()) << what << numeric.error;
      options.skip_bad_rows = true;
      expect_same_both_ways(text, options, what + ", --numeric --skip-bad-rows", true,
                            segment_sizes);
      options.numeric.clear();
      options.categorical = {"num"};
      expect_same_both_ways(text, options, what + ", --categorical", true, segment_sizes);
    }
  }
}

TEST(CsvImportParallel, NaValuesThatAreNumbers) {
  const std::string text =
      "a,b,c,id\n"
      "-999.0,-999.0,x,9007199254740993\n"
      "-999,-999,-999,-0999\n"
      "3,+3,-9.99e2,9007199254740995\n"
      "-9.99e2,-9.99e2,-999.0,7\n"
      "inf,1e400,0,8\n"
      "-0,0.0,-0,9\n";
  for (const bool skip : {false, true}) {
    for (const std::vector<std::string>& tokens : std::vector<std::vector<std::string>>{
             {"-999"}, {"-9.99e2", "0"}, {"inf", "-999"}, {"+7"}}) {
      CsvImportOptions o = options_with(skip);
      o.na_values = tokens;
      expect_same_both_ways(text, o, "na_values " + tokens[0]);
      o.numeric = {"b", "id"};
      expect_same_both_ways(text, o, "na_values " + tokens[0] + ", --numeric");
    }
  }
}

TEST(CsvImportParallel, NumberSpellingsDecideTypesAsFromChars) {
  // Pass 1 checks the plain decimal notation itself and leaves the rest to from_chars; either way
  // a column is numeric exactly when from_chars (after an optional '+') reads every value whole.
  for (const std::string number : {"1.", ".5", "-.5e-3", "+.5", "1E+2", "00012", "1e999", "-1e-999",
                                   "-0", "+7", "inf", "-infinity", "1.5e0", "9007199254740993"}) {
    test::TemporaryDirectory dir;
    const auto csv = dir.write("n.csv", "v\n1\n" + number + "\n");
    import_csv(csv, dir.file("n.h5"), quiet_options());
    const Table t = read_table(dir.file("n.h5"));
    EXPECT_EQ(t.column("v").type, ColumnType::numeric) << number;
    const std::string digits = number[0] == '+' ? number.substr(1) : number;
    EXPECT_EQ(t.at("v", 1), static_cast<float>(std::strtod(digits.c_str(), nullptr))) << number;
    expect_same_both_ways("v\n1\n" + number + "\n", quiet_options(), number);
  }
  for (const std::string text : {"1e", "1e+", "+-1", "-", ".", "1.2.3", "0x10", "--1", "1_0", "e5",
                                 "+", ".e1", "1e5.", "1,5", "1 2", "+inf+"}) {
    test::TemporaryDirectory dir;
    CsvImportOptions options = quiet_options();
    options.delimiter = ';';
    const auto csv = dir.write("t.csv", "v\n1\n" + text + "\n");
    import_csv(csv, dir.file("t.h5"), options);
    EXPECT_EQ(read_table(dir.file("t.h5")).column("v").type, ColumnType::categorical) << text;
    expect_same_both_ways("v\n1\n" + text + "\n", options, text);
  }
}

TEST(CsvImportParallel, NumberLikeCategoricalColumnsWithManyDistinctValues) {
  // k: 3000 distinct numbers then text (labels from a third pass); z: text first then many
  // numbers; n: many numbers, all numeric; small: few codes.
  std::string text = "k,z,n,small\n";
  for (int i = 0; i < 3100; ++i) {
    text += (i < 3000 ? std::to_string(i) : "t" + std::to_string(i)) + "," +
            (i < 5 ? "word" + std::to_string(i) : std::to_string(i * 7)) + "," +
            std::to_string(i) + ".5," + std::to_string(i % 4) + "\n";
  }
  expect_same_both_ways(text, options_with(false), "many distinct");
  expect_same_both_ways(text, options_with(false, {"small", "n"}), "many distinct, forced");
}

TEST(CsvImportParallel, ExactlyTheDistinctNumberLimit) {
  // 1024 distinct numbers stay complete, 1025 do not: either side of the limit, split in segments.
  for (const int distinct : {1023, 1024, 1025}) {
    std::string text = "k\n";
    for (int i = 0; i < distinct; ++i) text += std::to_string(i) + "\n";
    for (int i = 0; i < distinct; ++i) text += std::to_string(distinct - 1 - i) + "\n";
    text += "text\n";
    expect_same_both_ways(text, options_with(false), std::to_string(distinct) + " distinct");
  }
}

TEST(CsvImportParallel, MostlyNumericColumnsWithBadValues) {
  std::string text = "x,y,tag\n";
  for (int i = 0; i < 500; ++i) {
    const bool bad = i == 150 || i == 320 || i == 321;
    text += std::to_string(i) + "," + (bad ? "bad" + std::to_string(i) : std::to_string(i * 2)) +
            "," + (bad ? "only_bad" : (i % 2 ? "odd" : "even")) + "\n";
  }
  const ImportOutcome failed = expect_same_both_ways(text, options_with(false), "mostly numeric");
  EXPECT_NE(failed.error.find("line 152"), std::string::npos) << failed.error;
  const ImportOutcome skipped = expect_same_both_ways(text, options_with(true), "mostly numeric, skip");
  EXPECT_EQ(skipped.report.skipped_rows, 3);
  expect_same_both_ways(text, options_with(false, {"y"}), "mostly numeric, forced categorical");
}

TEST(CsvImportParallel, RaggedRowsFailOrAreSkippedWithTheSameExamples) {
  std::string text = "a,b,c\n";
  for (int i = 0; i < 400; ++i) {
    if (i % 37 == 5) {
      text += std::to_string(i) + "," + std::to_string(i) + "\n";  // ragged
    } else if (i % 53 == 7) {
      text += std::to_string(i) + ",x,y,z\n";  // ragged
    } else if (i % 61 == 9) {
      text += std::to_string(i) + ",oops,t\n";  // a text in forced-numeric b
    } else {
      text += std::to_string(i) + "," + std::to_string(i % 9) + ",c" + std::to_string(i % 3) + "\n";
    }
  }
  const ImportOutcome failed = expect_same_both_ways(text, options_with(false), "ragged");
  EXPECT_NE(failed.error.find("line 7:"), std::string::npos) << failed.error;
  const ImportOutcome skipped = expect_same_both_ways(text, options_with(true, {}, {"b"}), "ragged, skip");
  EXPECT_GT(skipped.report.skipped_rows, 5);
  EXPECT_EQ(skipped.report.skipped_examples.size(), 5u);
  expect_same_both_ways(text, options_with(false, {}, {"b"}), "ragged and --numeric");
  expect_same_both_ways("a,b\n1\n2\n", options_with(true), "every row bad");
  for (const std::string text : {"a,b\n", "a,b", "a,b\n\n\r\n\n", "a,b\n \n\t\r\n"}) {
    const ImportOutcome empty = expect_same_both_ways(text, options_with(false, {"b"}), "header only");
    EXPECT_EQ(empty.error, "");
    EXPECT_EQ(empty.report.rows, 0);
    EXPECT_EQ(empty.report.categorical_columns, 1);
  }
}

TEST(CsvImportParallel, BadUtf8InACategoricalValueFailsOnTheSameLine) {
  std::string text = "n,label\n";
  for (int i = 0; i < 300; ++i) {
    text += std::to_string(i) + "," + (i == 211 ? std::string("caf\xE9") : "v" + std::to_string(i % 5)) + "\n";
  }
  for (const bool skip : {false, true}) {
    const ImportOutcome failed = expect_same_both_ways(text, options_with(skip), "bad UTF-8");
    EXPECT_NE(failed.error.find("line 213"), std::string::npos) << failed.error;
    expect_same_both_ways(text, options_with(skip, {"label"}), "bad UTF-8, forced");
  }
}

TEST(CsvImportParallel, LineNumbersAfterLongRunsOfShortLines) {
  // Line breaks in the same place of many consecutive 16-byte steps (lines of 1, 2, 4, 8 and 16
  // bytes), then a ragged row: its line number must still be right.
  for (const std::string line : {"\n", "1\n", "1,2\n", "1234,67\n", "1234567,1234567\n"}) {
    std::string text = line.find(',') == std::string::npos ? "a\n1\n" : "a,b\n1,2\n";
    for (int i = 0; i < 6000; ++i) text += line;
    text += "1,2,3\n";
    const ImportOutcome outcome = expect_same_both_ways(
        text, options_with(false), "lines of " + std::to_string(line.size()), true, {0, 4096});
    EXPECT_NE(outcome.error.find("line 6003:"), std::string::npos) << outcome.error;
  }
}

TEST(CsvImportParallel, TabDelimiterAndTrimming) {
  CsvImportOptions options;
  options.delimiter = '\t';
  expect_same_both_ways("a\tb\n 1,5 \t x y \n2\t\t\n\n3\tz\r\n", options, "tabs");
}

TEST(CsvImportParallel, RandomFilesImportTheSameBothWays) {
  // Seeded random files from awkward pieces: numbers of every spelling, text, missing values, UTF-8
  // and (rarely) bad UTF-8, ragged rows, blank lines, CRLF, no final newline.
  const std::vector<std::string> pieces = {"1", "-2.5", "3e2", "+4", ".5", "7.", "NA", "", " ",
                                           "None", "x", "y", "inf", "1e", "12", "-0", "\xC3\xA9",
                                           "0x1", " 9 "};
  std::mt19937 rng(12345);
  OutcomeTally tally;
  for (int file = 0; file < 40; ++file) {
    const int columns = 1 + static_cast<int>(rng() % 4);
    const int rows = 1 + static_cast<int>(rng() % 300);
    std::string text;
    for (int c = 0; c < columns; ++c) text += (c ? "," : "") + std::string("c") + std::to_string(c);
    text += rng() % 2 ? "\r\n" : "\n";
    // Each column prefers a few pieces, so that some columns come out numeric.
    std::vector<std::size_t> preferred;
    for (int c = 0; c < columns; ++c) preferred.push_back(rng() % 6);
    for (int r = 0; r < rows; ++r) {
      if (rng() % 25 == 0) text += rng() % 2 ? "\n" : "\r\n";  // blank line
      const int fields = rng() % 40 == 0 ? columns + 1 - 2 * static_cast<int>(rng() % 2) : columns;
      for (int c = 0; c < fields; ++c) {
        if (c) text += ",";
        const std::size_t at = static_cast<std::size_t>(c % columns);
        text += rng() % 10 < 8 ? std::to_string(static_cast<int>(rng() % 50) - 10 + static_cast<int>(preferred[at]))
                               : pieces[rng() % pieces.size()];
        if (rng() % 3000 == 0) text += "\xFF";  // not UTF-8: an error even when skipping
      }
      if (r + 1 < rows || rng() % 2) text += rng() % 3 == 0 ? "\r\n" : "\n";
    }
    const std::string what = "random file " + std::to_string(file);
    tally.add(expect_same_both_ways(text, options_with(false), what));
    tally.add(expect_same_both_ways(text, options_with(true), what + ", skip"));
    tally.add(expect_same_both_ways(text, options_with(true, {}, {"c0"}), what + ", skip, --numeric c0"));
  }
  // The files exercise both outcomes and both column types.
  tally.expect_more_than(20, 20, 10, 20, 20);
}

// A file over 1 MiB imported serially and in segments of 4 KiB and of the default size (many
// batches): the same `rows` and content (chunk size is not part of the content).
void expect_large_file_same_in_segments(const std::string& text, std::int64_t rows) {
  ASSERT_GT(text.size(), std::size_t{1} << 20);
  test::TemporaryDirectory dir;
  const auto csv = dir.write("big.csv", text);
  CsvImportOptions options = quiet_options();
  options.parallel = false;
  const ImportOutcome serial = import_outcome(csv, dir.file("s.h5"), options);
  ASSERT_TRUE(serial.error.empty()) << serial.error;
  EXPECT_EQ(serial.report.rows, rows);
  options.parallel = true;
  for (const std::int64_t segment_bytes : {4096, 0}) {
    options.segment_bytes = segment_bytes;
    options.chunk_rows = 1000;
    const ImportOutcome parallel = import_outcome(csv, dir.file("p.h5"), options);
    EXPECT_TRUE(parallel.report.read_in_segments) << segment_bytes;
    EXPECT_EQ(parallel.report.rows, rows) << segment_bytes;
    EXPECT_TRUE(parallel.content == serial.content) << segment_bytes;
  }
}

TEST(CsvImportParallel, LargerThanManyBatchesWithDefaultSegments) {
  // Over 1 MiB with a segment size of 4 KiB: many batches, records across every boundary.
  std::string text = "i,x,label\n";
  for (int i = 0; i < 60000; ++i) {
    text += std::to_string(i) + "," + std::to_string(i) + ".125,l" + std::to_string(i % 17) +
            (i % 3 ? "\n" : "\r\n");
  }
  expect_large_file_same_in_segments(text, 60000);
}

TEST(CsvImportParallel, LoneCrTakesTheSerialPathAndImportsRight) {
  test::TemporaryDirectory dir;
  CsvImportOptions options = quiet_options();
  options.segment_bytes = 8;
  // A lone CR ends a record for CsvReader: "1,2\r3,4" is two rows.
  CsvImportReport report =
      import_csv(dir.write("cr.csv", "a,b\n1,2\r3,4\n5,6\n"), dir.file("cr.h5"), options);
  EXPECT_FALSE(report.read_in_segments);
  EXPECT_EQ(report.rows, 3);
  Table t = read_table(dir.file("cr.h5"));
  EXPECT_FLOAT_EQ(t.at("a", 1), 3.0f);
  EXPECT_FLOAT_EQ(t.at("b", 2), 6.0f);
  // A CR that ends the file is lone too.
  report = import_csv(dir.write("end.csv", "a,b\n1,2\n3,4\r"), dir.file("end.h5"), options);
  EXPECT_FALSE(report.read_in_segments);
  EXPECT_EQ(report.rows, 2);
  // So is one inside a quoted field (data there for CsvReader; the segments do not tell).
  report = import_csv(dir.write("qcr.csv", "a,b\n1,\"x\ry\"\n3,4\n"), dir.file("qcr.h5"), options);
  EXPECT_FALSE(report.read_in_segments);
  EXPECT_EQ(read_table(dir.file("qcr.h5")).label("b", 0), "x\ry");

  // A lone CR far into the file (after many batches of 8-byte segments, quoted records across
  // them): pass 1 starts over on the serial path.
  std::string late = "name,x\n";
  for (int i = 0; i < 200; ++i) {
    late += (i % 7 ? "n" + std::to_string(i % 3) : "\"q,\n" + std::to_string(i % 3) + "\"") + "," +
            std::to_string(i) + "\n";
  }
  late += "a,7\r8,9\n";
  expect_same_both_ways(late, quiet_options(), "lone CR late", false);
  // One in a record that runs past its segment, beyond the batch.
  std::string spanning = "a,b\n1,\"";
  for (int i = 0; i < 3000; ++i) spanning += "x\n";
  spanning += "\"\r2,3\n4,5\n";
  expect_same_both_ways(spanning, quiet_options(), "lone CR after a long quoted field", false);

  // A lone CR or a quote at every offset of the data's first 16-byte steps (the check looks at 16
  // bytes at a time), in one segment of the default size: never missed, and quotes read in segments.
  for (std::size_t offset = 0; offset < 40; ++offset) {
    std::string data;
    while (data.size() < offset) data += data.size() % 3 == 2 ? '\n' : '1';
    for (const char* odd : {"\r", "\""}) {
      std::string text = "a\n" + data + odd + "5\n";
      for (int i = 0; i < 20; ++i) text += "7\r\n";
      const bool quote = odd[0] == '"';
      expect_same_both_ways(text, options_with(true),
                            (quote ? "a quote" : "a lone CR") + std::string(" at offset ") +
                                std::to_string(offset),
                            quote);
    }
  }

  // An error before the first lone CR is reported as the serial path reports it.
  std::string bad_then_cr = "a,b\n1,2\n3\n";
  for (int i = 0; i < 50; ++i) bad_then_cr += std::to_string(i) + ",1\n";
  bad_then_cr += "q,2\r";
  const std::string message = input_error_of(
      [&] { import_csv(dir.write("bq.csv", bad_then_cr), dir.file("bq.h5"), options); });
  EXPECT_NE(message.find("line 3: has 1 field"), std::string::npos) << message;
  expect_same_both_ways(bad_then_cr, quiet_options(), "error, then a lone CR", false);
  expect_same_both_ways("a,b\n1,2\r3,4\n", options_with(true), "lone CR", false);
}

TEST(CsvImportParallel, QuotedDataIsReadInSegments) {
  for (const bool skip : {false, true}) {
    const CsvImportOptions o = options_with(skip);
    expect_same_both_ways("\"name\",\"note\",\"x\"\n\"a, b\",\"c\",\"1\"\n\"d\",\"e,f,g\",2\n", o,
                          "quoted header and fields, quoted delimiters");
    expect_same_both_ways("a,b\n\"say \"\"hi\"\"\",\"\"\"\"\n\"\"\"\"\"\",\"x\"\"\"\n\"\",\"\"\"\"\"\"\"\"\n", o,
                          "doubled quotes");
    expect_same_both_ways("a,b\n1,\"x\ny\"\n2,\"\n\n\"\n3,\"z\n\"\n", o, "quoted LF line breaks");
    expect_same_both_ways("a,b\r\n1,\"x\r\ny\"\r\n2,\"\r\n\r\n\"\r\n3,\"z\"\r\n\"w\r\n\",4", o,
                          "quoted CRLF line breaks");
    expect_same_both_ways("a,b\n5'11\",x\"y\nab\"c\"d,\"\n", o, "quotes inside unquoted fields");
    expect_same_both_ways("a,b\n\"ab\"cd,\"x\" y\n\"q\"\"r\"s\"t,\"1\"2\n\"a\" ,\" 3 \"\n", o,
                          "bytes after a closing quote");
    expect_same_both_ways("a,b\n\"NA\",\"1\"\n\" NA \",\"NaN\"\n\"\",\"null\"\n\"x\",\" 2 \"\n", o,
                          "quoted missing values and numbers");
    expect_same_both_ways("a,b\n1,\"x\"\n\n\n\"2\",\"y\n\n\"\n\n", o, "quoted fields and blank lines");
    expect_same_both_ways("a,b\n1,\"x\"\n2,\"y\"", o, "quoted field ends the file");
    expect_same_both_ways("a,b\n1,\"x\n2,y\n", o, "unclosed quote at the end");
    expect_same_both_ways("a,b\n1,x\n2,\"", o, "a lone quote ends the file");
    expect_same_both_ways("a,b\n1,\"a\"\"", o, "unclosed after a doubled quote");
    expect_same_both_ways("a,b\n1,\"x\n\n\"y\n3,4\n", o, "unclosed after a closed quoted field");
    expect_same_both_ways("a,b\n1,\"\"\"\n2,3\n4,\"5\"\n", o, "quoted quote then a line break");
    expect_same_both_ways("a,b\n1,\"\n2,\"\n\"3\n\",4\n", o, "quoted line breaks that look like records");
    expect_same_both_ways("a,b,c\n1,\"x\ny\",2,3\n4,5\n6,\"z\n\",7\n", o, "ragged rows with quoted line breaks");
    expect_same_both_ways("\"a\nb\",\"c\"\"d\"\n\"1\n2\",3\n", o, "quoted header with a line break");
    // Every record's second line is a lone quote: a segment that starts there parses quoted what is
    // not and never falls in step again (its records start at the true ones' second lines), so its
    // last record is open exactly where the true one is not, and the other way round.
    for (const std::string line_break : {"\n", "\r\n"}) {
      std::string inverted = "a,b" + line_break;
      for (int i = 0; i < 400; ++i) {
        inverted += std::to_string(i) + ",\"" + line_break + "\"" + (i % 3 ? "" : "x") + line_break;
      }
      expect_same_both_ways(inverted, o, "speculation never in step");
    }
  }
  CsvImportOptions tabs = options_with(false);
  tabs.delimiter = '\t';
  expect_same_both_ways("a\tb\n\"x\ty\"\t\"1\"\n\"p\nq\"\t2\n", tabs, "quoted tabs");

  // The unclosed quote's error names the line it opened on, as CsvReader does.
  const ImportOutcome unclosed =
      expect_same_both_ways("a,b\n1,2\n3,\"open\n4,5\n6,7\n", options_with(true), "unclosed, skip");
  EXPECT_NE(unclosed.error.find("line 3: a quoted field opens here and is never closed"),
            std::string::npos)
      << unclosed.error;
  // Not every quoted field with a line break is a record across segments, but the text that spans
  // many of them is: a quoted field of 600 lines, then rows.
  std::string long_field = "id,text,x\n1,\"start";
  for (int i = 0; i < 600; ++i) long_field += i % 2 ? "\r\nline,\"\"" : "\nl" + std::to_string(i);
  long_field += "\",1.5\n";
  for (int i = 0; i < 100; ++i) long_field += std::to_string(i) + ",\"t" + std::to_string(i % 4) + "\",2\n";
  long_field += "x,y\n";  // ragged, on a known line
  for (const bool skip : {false, true}) {
    const ImportOutcome outcome = expect_same_both_ways(long_field, options_with(skip), "a long quoted field");
    if (!skip) EXPECT_NE(outcome.error.find("line 703:"), std::string::npos) << outcome.error;
  }
  // The same field never closed: the error names line 2 after reading to the end.
  expect_same_both_ways(long_field.substr(0, long_field.find("\",1.5")), options_with(false),
                        "a long unclosed quoted field");
}

TEST(CsvImportParallel, RandomQuotedFilesImportTheSameBothWays) {
  // Seeded random files in the style of quoting exports: strings quoted (some with delimiters,
  // doubled quotes, LF and CRLF line breaks, bytes after the closing quote), numbers quoted or not,
  // quotes inside unquoted fields, ragged rows, blank lines, and rarely an unclosed quote.
  const std::vector<std::string> quoted = {"a", "b,c", "say \"\"hi\"\"", "x\ny", "p\r\nq", "", "NA",
                                           "1.5", " 2 ", "\n", "\"\"", "long\n\n\ntext, too"};
  const std::vector<std::string> plain = {"1", "-2.5", "NA", "", "x", "5'11\"", "a\"b", "3e2"};
  std::mt19937 rng(2024);
  OutcomeTally tally;
  for (int file = 0; file < 40; ++file) {
    const int columns = 1 + static_cast<int>(rng() % 4);
    const int rows = 1 + static_cast<int>(rng() % 200);
    const bool crlf = rng() % 2;
    std::string text;
    for (int c = 0; c < columns; ++c) text += (c ? ",\"c" : "\"c") + std::to_string(c) + "\"";
    text += crlf ? "\r\n" : "\n";
    std::vector<bool> text_column;
    for (int c = 0; c < columns; ++c) text_column.push_back(rng() % 2);
    for (int r = 0; r < rows; ++r) {
      if (rng() % 30 == 0) text += crlf ? "\r\n" : "\n";  // blank line
      const int fields = rng() % 40 == 0 ? columns + 1 - 2 * static_cast<int>(rng() % 2) : columns;
      for (int c = 0; c < fields; ++c) {
        if (c) text += ",";
        const std::size_t at = static_cast<std::size_t>(c % columns);
        if (text_column[at] && rng() % 5 != 0) {
          text += "\"" + quoted[rng() % quoted.size()] + "\"";
          if (rng() % 50 == 0) text += "tail";  // bytes after the closing quote
        } else if (rng() % 40 != 0) {
          const std::string number = std::to_string(static_cast<int>(rng() % 50) - 10);
          text += rng() % 2 ? "\"" + number + "\"" : number;
        } else {
          text += plain[rng() % plain.size()];
        }
      }
      if (r + 1 < rows || rng() % 2) text += crlf && rng() % 4 ? "\r\n" : "\n";
    }
    if (rng() % 8 == 0) text += "1,\"never closed\n2,3\n";
    const std::string what = "random quoted file " + std::to_string(file);
    tally.add(expect_same_both_ways(text, options_with(false), what));
    tally.add(expect_same_both_ways(text, options_with(true), what + ", skip"));
  }
  tally.expect_more_than(20, 10, 5, 10, 20);
}

TEST(CsvImportParallel, QuotedLineBreaksAcrossManyBatches) {
  // Over 1 MiB of records with quoted line breaks, segments of 4 KiB and of the default size: many
  // segments start inside a record, and many records run past a segment and a batch.
  std::string text = "i,note,x\n";
  for (int i = 0; i < 40000; ++i) {
    text += std::to_string(i) + ",\"note " + std::to_string(i % 11) + (i % 5 == 0 ? "\nsecond, line\"\"\n" : "") +
            "\"," + std::to_string(i) + ".5" + (i % 3 ? "\n" : "\r\n");
    if (i % 4999 == 0) {  // a field of 20 KiB of lines: past several 4 KiB segments
      text += "-1,\"";
      for (int k = 0; k < 2000; ++k) text += "long line\n";
      text += "\",0\n";
    }
  }
  expect_large_file_same_in_segments(text, 40000 + 9);  // 9 long fields among them
}

// Rows of an id, an unquoted field of `lengths[i % lengths.size()]` bytes, a quoted field with line
// breaks and a number: a record with a quoted line break that runs past its segment after a long
// unquoted field.
std::string long_fields_then_quoted_lines(const std::vector<std::size_t>& lengths, int rows,
                                          const std::string& line_break) {
  std::string text = "id,a,b,c" + line_break;
  for (int i = 0; i < rows; ++i) {
    text += std::to_string(i) + "," + std::string(lengths[static_cast<std::size_t>(i) % lengths.size()], 'x') +
            ",\"line1" + line_break + "line2,with comma" + line_break + "line3\"," + std::to_string(2 * i) +
            line_break;
  }
  return text;
}

TEST(CsvImportParallel, LongUnquotedFieldsBeforeQuotedLineBreaks) {
  // Fields of 5 KiB in segments of 1 KiB (and others): many segments lie inside a record's first
  // line, and its quoted line breaks run past the segment it starts in.
  const CsvImportOptions o = options_with(false, {"a", "b"});
  for (const std::string line_break : {"\n", "\r\n"}) {
    const std::string text = long_fields_then_quoted_lines({10, 5000, 9000, 1023, 1024}, 120, line_break);
    const ImportOutcome serial = expect_same_both_ways(text, o, "long fields, then quoted lines", true,
                                                       {1000, 1024, 4096, 0});
    EXPECT_EQ(serial.report.rows, 120);
  }
}

TEST(CsvImportParallel, RecordsLongerThanAnyPieceBeforeTheirFirstQuote) {
  // More than 64 KiB (the step in which a record running past its segment is read on) before the
  // record's first quote: the record's first piece holds no quote, and the record goes on past it.
  const CsvImportOptions o = options_with(false, {"a", "b"});
  for (const std::string line_break : {"\n", "\r\n"}) {
    const std::string text =
        long_fields_then_quoted_lines({10, 70000, 130000, 65536, 200000}, 12, line_break);
    const ImportOutcome serial =
        expect_same_both_ways(text, o, "fields longer than a piece, then quoted lines", true, {1024, 65536, 0});
    EXPECT_EQ(serial.report.rows, 12);
    // The same, ending in a quoted field that is never closed: the error names where it opened.
    const std::string unclosed = text + "12," + std::string(100000, 'y') + ",\"open" + line_break + "13,14" +
                                 line_break;
    const ImportOutcome error = expect_same_both_ways(unclosed, o, "a long record never closed", true,
                                                      {1024, 0});
    EXPECT_NE(error.error.find("line " + std::to_string(2 + 12 * 3) + ": a quoted field opens here"),
              std::string::npos)
        << error.error;
  }
}

TEST(CsvImportParallel, NegativeSegmentBytesIsAnError) {
  test::TemporaryDirectory dir;
  CsvImportOptions options = quiet_options();
  options.segment_bytes = -1;
  const std::string message = input_error_of(
      [&] { import_csv(dir.write("a.csv", "a\n1\n"), dir.file("a.h5"), options); });
  EXPECT_NE(message.find("segment bytes"), std::string::npos) << message;
}

// The real dataset the project ships beside the repository; CI always has it, so its absence is a
// failure, not a skip.
fs::path shared_data_file(const std::string& name) {
  if (const char* dir = std::getenv("LATHE_SHARED_DATA"); dir && *dir) return fs::path(dir) / name;
  // tests/csv_import_test.cpp -> the repository root -> its sibling shared/data.
  return fs::path(__FILE__).parent_path().parent_path().parent_path() / "shared" / "data" / name;
}

TEST(CsvImport, TelcoChurnDataset) {
  const fs::path csv = shared_data_file("telco_churn.csv");
  ASSERT_TRUE(fs::exists(csv)) << csv << " is missing (set LATHE_SHARED_DATA to its folder)";
  test::TemporaryDirectory dir;
  const auto out = dir.file("telco.h5");
  const CsvImportReport report = import_csv(csv, out, quiet_options());
  EXPECT_EQ(report.rows, 7043);
  EXPECT_EQ(report.columns, 20);
  EXPECT_TRUE(report.read_in_segments);  // every string is quoted
  const Table t = read_table(out);
  ASSERT_EQ(t.rows, 7043);
  ASSERT_EQ(t.columns.size(), 20u);
  EXPECT_EQ(t.column("total_charges").type, ColumnType::numeric);
  EXPECT_EQ(t.missing("total_charges"), 11);
  EXPECT_EQ(t.column("churn").type, ColumnType::categorical);
  EXPECT_EQ(t.column("churn").categories, (std::vector<std::string>{"No", "Yes"}));
  EXPECT_EQ(t.missing("churn"), 0);
  EXPECT_FLOAT_EQ(t.at("total_charges", 1), 1889.5f);
}

TEST(CsvImportParallel, SharedDatasetsImportTheSameBothWays) {
  // Exports of R's write.csv, every string quoted: read in segments, to the same content.
  for (const std::string name : {"diamonds.csv", "penguins.csv", "telco_churn.csv"}) {
    const fs::path csv = shared_data_file(name);
    ASSERT_TRUE(fs::exists(csv)) << csv << " is missing (set LATHE_SHARED_DATA to its folder)";
    for (const bool skip : {false, true}) {
      expect_same_both_ways(read_bytes(csv), options_with(skip), name, true, {4096, 0});
    }
  }
}


// ---- Integers beyond 2^53 (int64) and the notes ----

// A column's values converted to int64 by HDF5, and its stored dtype as TableReader names it.
std::vector<std::int64_t> read_int64(const fs::path& path, const std::string& name, std::string* dtype = nullptr) {
  const TableReader reader(path);
  for (const ColumnInfo& column : reader.columns()) {
    if (column.name == name && dtype) *dtype = column.dtype;
  }
  std::vector<std::int64_t> values(static_cast<std::size_t>(reader.rows()));
  h5::H5Handle file = h5::file_handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  h5::H5Handle dataset = h5::dataset_handle(H5Dopen2(file.get(), name.c_str(), H5P_DEFAULT));
  EXPECT_GE(H5Dread(dataset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0) << name;
  return values;
}

std::string dtype_of(const fs::path& path, const std::string& name) {
  const TableReader reader(path);
  for (const ColumnInfo& column : reader.columns()) {
    if (column.name == name) return column.dtype;
  }
  ADD_FAILURE() << "no column " << name;
  return "";
}

// The notes that mention `fragment`.
std::vector<std::string> notes_with(const CsvImportReport& report, const std::string& fragment) {
  std::vector<std::string> found;
  for (const std::string& note : report.notes) {
    if (note.find(fragment) != std::string::npos) found.push_back(note);
  }
  return found;
}

TEST(CsvImport, IntegersBeyond2To53AreStoredExactlyAsInt64) {
  // The QA file's ids (float64 rounds the first three), the int64 limits, a '+', leading zeros.
  test::TemporaryDirectory dir;
  const auto csv = dir.write("ids.csv",
                             "id,x,small\n"
                             "9007199254740993,0.5,1\n"
                             "9007199254740995,1.5,2\n"
                             "1234567890123456789,2.5,3\n"
                             "100000,3.5,4\n"
                             "5, 4.5 ,5\n"
                             "-9223372036854775808,5.5,6\n"
                             "+9223372036854775807,6.5,7\n"
                             "-0009007199254740993,7.5,9007199254740992\n");
  const std::vector<std::int64_t> want = {9007199254740993,
                                          9007199254740995,
                                          1234567890123456789,
                                          100000,
                                          5,
                                          std::numeric_limits<std::int64_t>::min(),
                                          std::numeric_limits<std::int64_t>::max(),
                                          -9007199254740993};
  for (const bool parallel : {false, true}) {
    CsvImportOptions options = quiet_options();
    options.parallel = parallel;
    options.segment_bytes = parallel ? 16 : 0;
    const auto out = dir.file("ids.h5");
    const CsvImportReport report = import_csv(csv, out, options);
    EXPECT_EQ(report.rows, 8);
    EXPECT_EQ(report.numeric_columns, 3);
    EXPECT_EQ(report.int64_columns, 1);
    EXPECT_TRUE(report.notes.empty()) << testing::PrintToString(report.notes);
    std::string dtype;
    EXPECT_EQ(read_int64(out, "id", &dtype), want);
    EXPECT_EQ(dtype, "int64");
    // 2^53 itself is a float64 value: that column stays float64, as do decimals.
    EXPECT_EQ(dtype_of(out, "small"), "float64");
    EXPECT_EQ(dtype_of(out, "x"), "float64");
    // Read as float like any integer column (what training and scoring see).
    const Table t = read_table(out);
    EXPECT_EQ(t.column("id").type, ColumnType::numeric);
    EXPECT_EQ(t.at("id", 3), 100000.0f);
    EXPECT_EQ(t.at("id", 4), 5.0f);
  }
  // Forced numeric, the same; forced categorical keeps the text.
  CsvImportOptions options = quiet_options();
  options.numeric = {"id"};
  import_csv(csv, dir.file("numeric.h5"), options);
  EXPECT_EQ(read_int64(dir.file("numeric.h5"), "id"), want);
  EXPECT_EQ(dtype_of(dir.file("numeric.h5"), "id"), "int64");
  options = quiet_options();
  options.categorical = {"id"};
  import_csv(csv, dir.file("categorical.h5"), options);
  EXPECT_EQ(read_table(dir.file("categorical.h5")).label("id", 0), "9007199254740993");
}

TEST(CsvImport, ColumnsThatFloat64HoldsOrThatAreNotAllIntegersStayFloat64) {
  // Stored bytes of ordinary columns must not change: only integer text beyond 2^53 becomes int64.
  test::TemporaryDirectory dir;
  const auto csv = dir.write("f.csv",
                             "limit,decimal,exponent,fraction,float_first,inf\n"
                             "9007199254740992,9007199254740993,9007199254740993,9007199254740993,0.5,9007199254740993\n"
                             "-9007199254740992,1.5,1e17,9007199254740993.0,9007199254740993,inf\n"
                             "12,3,4,5,6,7\n");
  const auto out = dir.file("f.h5");
  const CsvImportReport report = import_csv(csv, out, quiet_options());
  EXPECT_EQ(report.int64_columns, 0);
  // No note about integers; the infinity has its own.
  ASSERT_EQ(report.notes.size(), 1u) << testing::PrintToString(report.notes);
  EXPECT_EQ(report.notes[0].rfind("column 'inf' holds 1 infinite value", 0), 0u) << report.notes[0];
  for (const std::string name : {"limit", "decimal", "exponent", "fraction", "float_first", "inf"}) {
    EXPECT_EQ(dtype_of(out, name), "float64") << name;
  }
}

TEST(CsvImport, IntegersBeyond2To53WithMissingValuesStayFloat64WithANote) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("m.csv", "id,x\n5,1\n9007199254740993,2\nNA,3\n1234567890123456789,4\n,5\n");
  for (const bool parallel : {false, true}) {
    CsvImportOptions options = quiet_options();
    options.parallel = parallel;
    const auto out = dir.file("m.h5");
    const CsvImportReport report = import_csv(csv, out, options);
    EXPECT_EQ(report.int64_columns, 0);
    EXPECT_EQ(dtype_of(out, "id"), "float64");
    EXPECT_TRUE(std::isnan(read_table(out).at("id", 2)));
    ASSERT_EQ(report.notes.size(), 1u);
    const std::string& note = report.notes[0];
    for (const char* fragment : {"column 'id'", "2^53", "line 3", "'9007199254740993'", "2 missing values",
                                 "rounded", "9007199254740992", "--categorical 'id'", "exact"}) {
      EXPECT_NE(note.find(fragment), std::string::npos) << fragment << " not in: " << note;
    }
  }
}

TEST(CsvImport, IntegersBeyondTheInt64RangeStayFloat64WithANote) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("u.csv", "id\n1\n9223372036854775808\n18446744073709551615\n");
  const CsvImportReport report = import_csv(csv, dir.file("u.h5"), quiet_options());
  EXPECT_EQ(dtype_of(dir.file("u.h5"), "id"), "float64");
  ASSERT_EQ(notes_with(report, "column 'id'").size(), 1u);
  const std::string note = notes_with(report, "column 'id'")[0];
  EXPECT_NE(note.find("int64 range"), std::string::npos) << note;
  EXPECT_NE(note.find("--categorical 'id'"), std::string::npos) << note;
}

TEST(CsvImport, MostlyNumericColumnTakenAsCategoricalGetsANote) {
  // The QA case: a numeric column with "unknown" in 30 of 1409 rows (97.87% numbers) is categorical
  // by the rule (below 99%), which stays; a note now says so. So does one bad value in 19 rows.
  test::TemporaryDirectory dir;
  std::string text = "tenure,mostly_text,forced,plan\n";
  for (int i = 0; i < 1409; ++i) {
    const bool unknown = i % 47 == 9;  // 30 rows, the first on line 11
    text += (unknown ? std::string("unknown") : std::to_string(i % 72)) + "," +
            (i % 3 == 0 ? std::to_string(i) : "t" + std::to_string(i % 5)) + "," + std::to_string(i % 4) +
            (i == 7 ? "x" : "") + "," + (i % 2 ? "a" : "b") + "\n";
  }
  const auto csv = dir.write("bt.csv", text);
  CsvImportOptions options = quiet_options();
  options.categorical = {"forced"};
  const CsvImportReport report = import_csv(csv, dir.file("bt.h5"), options);
  EXPECT_EQ(report.categorical_columns, 4);
  ASSERT_EQ(report.notes.size(), 1u) << testing::PrintToString(report.notes);  // not the other columns
  const std::string& note = report.notes[0];
  for (const char* fragment : {"column 'tenure'", "categorical", "97.87%", "1409", "30 are not", "'unknown'",
                               "line 11", "--numeric 'tenure' --skip-bad-rows", "clean"}) {
    EXPECT_NE(note.find(fragment), std::string::npos) << fragment << " not in: " << note;
  }
  // What the note suggests imports the column as numbers.
  options.numeric = {"tenure"};
  options.skip_bad_rows = true;
  const CsvImportReport skipped = import_csv(csv, dir.file("bt2.h5"), options);
  EXPECT_EQ(skipped.skipped_rows, 30);
  EXPECT_EQ(read_table(dir.file("bt2.h5")).column("tenure").type, ColumnType::numeric);

  // One bad value in 19 rows (too few values for the error): categorical with a note.
  std::string small = "tenure\n";
  for (int i = 0; i < 19; ++i) small += (i == 4 ? std::string("12x") : std::to_string(i)) + "\n";
  const CsvImportReport few = import_csv(dir.write("small.csv", small), dir.file("small.h5"), quiet_options());
  ASSERT_EQ(few.notes.size(), 1u);
  EXPECT_NE(few.notes[0].find("94.73%"), std::string::npos) << few.notes[0];
  EXPECT_NE(few.notes[0].find("'12x' on line 6"), std::string::npos) << few.notes[0];
  // Half numbers still gets one, fewer do not.
  EXPECT_EQ(import_csv(dir.write("half.csv", "v\n1\na\n"), dir.file("half.h5"), quiet_options()).notes.size(), 1u);
  EXPECT_TRUE(import_csv(dir.write("less.csv", "v\n1\na\nb\n"), dir.file("less.h5"), quiet_options()).notes.empty());
}

TEST(CsvImportParallel, WideIntegerColumnsTheSameBothWays) {
  // Columns of integers beyond 2^53 among others, with bad rows and missing values, split across
  // segments: the same int64 decision, values, notes and skipped rows on both paths.
  std::string text = "id,mostly,withna,decimal,forced,tag\n";
  for (int i = 0; i < 400; ++i) {
    const std::int64_t big = std::int64_t{1} << 60;
    text += std::to_string(big + i * 1000003) + "," +
            (i == 123 ? std::string("oops") : std::to_string(-big - i)) + "," +
            (i == 250 ? std::string("NA") : std::to_string(big + 1 + i)) + "," +
            (i == 399 ? std::string("1.5") : std::to_string(big + i)) + "," +
            (i == 77 ? std::string("bad") : std::to_string(i)) + "," + (i % 3 ? "a" : "b") + "\n";
  }
  // A missing value in the id column of a row that pass 1 skipped for the forced column's bad value.
  text += ",1,2,3,nope,a\n";
  for (const bool skip : {false, true}) {
    const ImportOutcome outcome = expect_same_both_ways(text, options_with(skip, {}, {"forced"}), "wide integers");
    if (!skip) {
      EXPECT_NE(outcome.error.find("line 79"), std::string::npos) << outcome.error;
      continue;
    }
    ASSERT_TRUE(outcome.error.empty()) << outcome.error;
    EXPECT_EQ(outcome.report.skipped_rows, 3);  // the two bad values and the last row
    EXPECT_EQ(outcome.report.int64_columns, 2);  // id and mostly
    EXPECT_EQ(notes_with(outcome.report, "column 'withna'").size(), 1u);
    EXPECT_TRUE(notes_with(outcome.report, "column 'decimal'").empty());
  }
  // The values themselves, on the parallel path.
  test::TemporaryDirectory dir;
  const auto csv = dir.write("w.csv", text);
  CsvImportOptions options = options_with(true, {}, {"forced"});
  options.progress = false;
  options.segment_bytes = 64;
  const auto out = dir.file("w.h5");
  import_csv(csv, out, options);
  std::string dtype;
  const std::vector<std::int64_t> ids = read_int64(out, "id", &dtype);
  EXPECT_EQ(dtype, "int64");
  ASSERT_EQ(ids.size(), 398u);
  EXPECT_EQ(ids[0], std::int64_t{1} << 60);
  EXPECT_EQ(ids[76], (std::int64_t{1} << 60) + 76 * 1000003);
  EXPECT_EQ(ids[77], (std::int64_t{1} << 60) + 78 * 1000003);  // row 77 skipped
  EXPECT_EQ(ids[123], (std::int64_t{1} << 60) + 125 * 1000003);  // and row 123
  EXPECT_EQ(ids[397], (std::int64_t{1} << 60) + 399 * 1000003);
  EXPECT_EQ(dtype_of(out, "mostly"), "int64");
  EXPECT_EQ(dtype_of(out, "withna"), "float64");
}

// ---- Infinite values ----

TEST(CsvImportParallel, InfiniteValuesGetANoteWithTheirCountAndFirstLineBothWays) {
  // inf, Infinity, 1e400 and a float64 number beyond float32's range (Lathe reads float32) are
  // infinite to every command after the import: one note per column says how many and where the
  // first is. A skipped row's value is not counted; a finite column gets no note.
  std::string text = "a,b,c,d\n";
  for (int i = 0; i < 300; ++i) {
    std::string b = std::to_string(i) + ".5";
    if (i == 40) b = "inf";
    if (i == 90) b = "-Infinity";
    if (i == 150) b = "1e400";
    if (i == 200) b = "-4e38";
    if (i == 250) b = "+INF";
    text += std::to_string(i) + "," + b + "," + (i == 250 ? "bad" : std::to_string(i % 7)) + "," +
            (i == 10 ? "3.4e38" : "1") + "\n";
  }
  const ImportOutcome kept = expect_same_both_ways(text, options_with(false, {}, {"c"}), "infinite values");
  EXPECT_NE(kept.error.find("line 252"), std::string::npos) << kept.error;  // c's bad value, not skipped
  const ImportOutcome outcome = expect_same_both_ways(text, options_with(true, {}, {"c"}), "infinite values");
  ASSERT_TRUE(outcome.error.empty()) << outcome.error;
  ASSERT_EQ(outcome.report.notes.size(), 1u) << testing::PrintToString(outcome.report.notes);
  const std::string& note = outcome.report.notes[0];
  for (const char* fragment : {"column 'b' holds 4 infinite values", "the first 'inf' on line 42", "float32",
                               "--clip"}) {
    EXPECT_NE(note.find(fragment), std::string::npos) << fragment << " not in: " << note;
  }
  // One of them, singular; a file without any has no note.
  test::TemporaryDirectory dir;
  const CsvImportReport one = import_csv(dir.write("one.csv", "x,y\n1,2\n-inf,3\n"), dir.file("one.h5"), quiet_options());
  ASSERT_EQ(one.notes.size(), 1u);
  EXPECT_NE(one.notes[0].find("column 'x' holds 1 infinite value (the first '-inf' on line 3"), std::string::npos)
      << one.notes[0];
  EXPECT_TRUE(import_csv(dir.write("none.csv", "x\n1\n3.4e38\n"), dir.file("none.h5"), quiet_options()).notes.empty());
}

// Imports `text` on the parallel path holding pass 1's values (with segments of several sizes, down
// to 1 byte, so that held parts start and end at every kind of boundary), and without holding them
// (held_values_bytes 0: pass 2 reads the file again, as before holding existed), and requires the
// same report, stored bytes and error message; every import that holds must have written the held
// values exactly when `read_once`. Returns the outcome of the import that never holds.
ImportOutcome expect_same_held_or_read_again(const std::string& text, CsvImportOptions options,
                                             const std::string& what, bool read_once,
                                             const std::vector<std::int64_t>& segment_sizes = {
                                                 1, 7, 64, 1000, 0}) {
  test::TemporaryDirectory dir;
  const auto csv = dir.write("h.csv", text);
  options.progress = false;
  options.parallel = true;
  options.held_values_bytes = 0;
  options.segment_bytes = 64;
  const ImportOutcome again = import_outcome(csv, dir.file("again.h5"), options);
  EXPECT_FALSE(again.report.read_once) << what;
  options.held_values_bytes = -1;
  for (const std::int64_t segment_bytes : segment_sizes) {
    options.segment_bytes = segment_bytes;
    const ImportOutcome held = import_outcome(csv, dir.file("held.h5"), options);
    const std::string where =
        what + ", held, segments of " + std::to_string(segment_bytes) + " bytes";
    EXPECT_EQ(held.error, again.error) << where;
    if (!again.error.empty() || !held.error.empty()) continue;
    EXPECT_TRUE(held.report.read_in_segments) << where;
    EXPECT_EQ(held.report.read_once, read_once) << where;
    expect_same_import(held, again, where);
  }
  return again;
}

TEST(CsvImportHeld, NumbersMissingValuesAndLabelsAreWrittenWithoutReadingAgain) {
  // Labels arrive in an order unlike their sorted one, and each segment meets them in its own
  // order (its own indices), so the codes are remapped; columns missing in whole segments hold
  // only missing values, as numbers (m) and as labels (t).
  const char* labels[] = {"zeta", "alpha", "mid", "Beta", "alpha2"};
  std::string text = "x,c,m,t,y\n";
  for (int i = 0; i < 600; ++i) {
    const std::string label = labels[(i * 7 + i / 50) % 5];
    text += std::to_string(i) + ".25," + (i % 11 == 0 ? "NA" : label) + "," +
            (i < 300 ? "" : std::to_string(i % 13)) + "," +
            (i >= 100 && i < 400 ? "" : "w" + std::to_string(i % 3)) + "," + (i % 2 ? "1" : "0") +
            "\n";
  }
  expect_same_held_or_read_again(text, options_with(false), "labels out of order", true);
  expect_same_both_ways(text, options_with(false), "labels out of order");

  // Read back on its own: every row's label and number as written in the file.
  test::TemporaryDirectory dir;
  CsvImportOptions options = quiet_options();
  options.segment_bytes = 100;
  const CsvImportReport report = import_csv(dir.write("l.csv", text), dir.file("l.h5"), options);
  EXPECT_TRUE(report.read_once);
  const Table t = read_table(dir.file("l.h5"));
  ASSERT_EQ(t.rows, 600);
  EXPECT_EQ(t.column("c").categories,
            (std::vector<std::string>{"Beta", "alpha", "alpha2", "mid", "zeta"}));
  for (int i = 0; i < 600; ++i) {
    EXPECT_EQ(t.label("c", i), i % 11 == 0 ? "" : labels[(i * 7 + i / 50) % 5]) << i;
    EXPECT_EQ(t.at("x", i), static_cast<float>(i + 0.25)) << i;
    EXPECT_EQ(std::isnan(t.at("m", i)), i < 300) << i;
    EXPECT_EQ(t.label("t", i), i >= 100 && i < 400 ? "" : "w" + std::to_string(i % 3)) << i;
  }
}

TEST(CsvImportHeld, ColumnWhoseTypeChangesLateIsReadAgain) {
  // n holds numbers up to its last rows, then text: categorical, with labels for its numbers,
  // which no segment held as labels. k is categorical from a text value in its first segments,
  // then numbers only; u has text first and numbers after, within each segment.
  std::string text = "n,k,u\n";
  for (int i = 0; i < 500; ++i) {
    text += (i >= 490 ? "late" + std::to_string(i) : std::to_string(i % 40) + ".5") + "," +
            (i < 10 ? "text" + std::to_string(i) : std::to_string(i % 9)) + "," +
            (i % 50 == 0 ? "u" : std::to_string(i % 5)) + "\n";
  }
  const ImportOutcome outcome =
      expect_same_held_or_read_again(text, options_with(false), "late type change", false);
  ASSERT_TRUE(outcome.error.empty()) << outcome.error;
  EXPECT_EQ(outcome.report.categorical_columns, 3);
  expect_same_both_ways(text, options_with(false), "late type change");
  // A type change is local to its column: a file without one holds every value.
  std::string numbers_only = "n,k\n";
  for (int i = 0; i < 500; ++i)
    numbers_only += std::to_string(i) + ".5,k" + std::to_string(i % 9) + "\n";
  expect_same_held_or_read_again(numbers_only, options_with(false), "no type change", true);
}

TEST(CsvImportHeld, MostlyNumericColumnsAreReadAgainAndForcedNumericSkipsAreHeld) {
  std::string text = "x,y,tag\n";
  for (int i = 0; i < 500; ++i) {
    const bool bad = i == 150 || i == 320;
    text += std::to_string(i) + "," + (bad ? "bad" + std::to_string(i) : std::to_string(i * 2)) +
            "," + (i % 2 ? "odd" : "even") + "\n";
  }
  const ImportOutcome failed =
      expect_same_held_or_read_again(text, options_with(false), "mostly numeric", false);
  EXPECT_NE(failed.error.find("line 152"), std::string::npos) << failed.error;
  const ImportOutcome skipped =
      expect_same_held_or_read_again(text, options_with(true), "mostly numeric, skip", false);
  EXPECT_EQ(skipped.report.skipped_rows, 2);
  // Both passes skip a row for a --numeric column first, with the same reason: held.
  const ImportOutcome forced = expect_same_held_or_read_again(text, options_with(true, {}, {"y"}),
                                                              "forced numeric, skip", true);
  EXPECT_EQ(forced.report.skipped_rows, 2);
}

TEST(CsvImportHeld, RaggedRowsSkippedAndValuesPandasTakesAsMissing) {
  // Skipped ragged rows (the same reasons in both passes), na_values numbers, infinite values and
  // a forced categorical column of numbers: all held, all written as pass 2 writes them.
  std::string text = "a,b,c\n";
  for (int i = 0; i < 400; ++i) {
    std::string b = std::to_string(i % 17) + ".125";
    if (i % 23 == 0) b = "-999";
    if (i == 77) b = "-9.99e2";
    if (i == 100) b = "inf";
    if (i == 200) b = "1e39";
    text += std::to_string(i) + "," + b + "," + std::to_string(i % 6) +
            (i % 97 == 5 ? ",extra" : "") + "\n";
  }
  CsvImportOptions options = options_with(true, {"c"});
  options.na_values = {"-999"};
  const ImportOutcome outcome =
      expect_same_held_or_read_again(text, options, "ragged, na_values", true);
  ASSERT_TRUE(outcome.error.empty()) << outcome.error;
  EXPECT_EQ(outcome.report.skipped_rows, 5);
  ASSERT_EQ(outcome.report.notes.size(), 1u) << testing::PrintToString(outcome.report.notes);
  EXPECT_NE(outcome.report.notes[0].find(
                "column 'b' holds 2 infinite values (the first 'inf' on line 102"),
            std::string::npos)
      << outcome.report.notes[0];
  expect_same_both_ways(text, options, "ragged, na_values");
  options.skip_bad_rows = false;
  expect_same_held_or_read_again(text, options, "ragged, failing", true);
}

TEST(CsvImportHeld, QuotedRecordsAcrossSegmentsAreHeldOnce) {
  // Quoted fields with line breaks run across segment boundaries: a segment started inside one is
  // parsed again (its first parse's held values are dropped) and the record is held on its own.
  std::string text = "id,note,v\n";
  for (int i = 0; i < 300; ++i) {
    const std::string note = i % 4 == 0   ? "\"line one\nline, two\""
                             : i % 4 == 1 ? "\"say \"\"hi\"\"\""
                                          : "plain" + std::to_string(i % 3);
    text += std::to_string(i) + "," + note + "," + std::to_string(i * 3) + ".5\n";
  }
  const ImportOutcome outcome =
      expect_same_held_or_read_again(text, options_with(false), "quoted", true);
  ASSERT_TRUE(outcome.error.empty()) << outcome.error;
  EXPECT_EQ(outcome.report.rows, 300);
  expect_same_both_ways(text, options_with(false), "quoted");
}

TEST(CsvImportHeld, ValuesBeyondTheLimitAreReadAgain) {
  // Over the limit, holding stops and pass 2 reads the file again: the same output, read twice.
  std::string text = "x,c\n";
  for (int i = 0; i < 2000; ++i) text += std::to_string(i) + ".5,c" + std::to_string(i % 5) + "\n";
  test::TemporaryDirectory dir;
  const auto csv = dir.write("limit.csv", text);
  CsvImportOptions options = quiet_options();
  options.segment_bytes = 1000;
  const ImportOutcome held = import_outcome(csv, dir.file("held.h5"), options);
  ASSERT_TRUE(held.error.empty()) << held.error;
  EXPECT_TRUE(held.report.read_once);
  for (const std::int64_t limit : {std::int64_t{1}, std::int64_t{4096}, std::int64_t{20000}}) {
    options.held_values_bytes = limit;
    const ImportOutcome limited = import_outcome(csv, dir.file("limited.h5"), options);
    ASSERT_TRUE(limited.error.empty()) << limited.error;
    EXPECT_FALSE(limited.report.read_once) << limit;
    EXPECT_TRUE(limited.content == held.content) << limit;
  }
  options.held_values_bytes = 1 << 20;  // enough for all
  EXPECT_TRUE(import_outcome(csv, dir.file("enough.h5"), options).report.read_once);
}

TEST(CsvImportHeld, RandomFilesImportTheSameHeldOrReadAgain) {
  std::mt19937 rng(20240607);
  // Column d is text, missing or empty; a skipping file has a few ragged rows.
  const char* words[] = {"red", "Green", "blue", "NA", "", "x y"};
  for (int file = 0; file < 12; ++file) {
    std::string text = "a,b,c,d\n";
    const int rows = 50 + static_cast<int>(rng() % 300);
    for (int r = 0; r < rows; ++r) {
      text += std::to_string(static_cast<int>(rng() % 1000) - 500) + "." +
              std::to_string(rng() % 100) + ",";
      text += std::string(words[rng() % 3]) + ",";
      text += (rng() % 10 == 0 ? std::string("") : std::to_string(rng() % 50)) + ",";
      text +=
          std::string(words[rng() % 6]) + (file % 2 == 1 && rng() % 40 == 0 ? ",extra" : "") + "\n";
    }
    expect_same_held_or_read_again(text, options_with(file % 2 == 1),
                                   "random file " + std::to_string(file), true, {1, 64, 0});
  }
}

// Rows skipped for a --numeric column, with labels found nowhere else, wherever they fall: right
// after the header, last, in runs, alone in a segment, holding a quoted line break or a byte that
// is not UTF-8 (no label of a skipped row is checked), in a --categorical column. The same output
// serial and in segments, held by pass 1 or read again.
TEST(CsvImportParallel, RowsSkippedForANumericColumnContributeNoLabels) {
  std::string text = "tag,forced,n,flag\n";
  for (int i = 0; i < 400; ++i) {
    const bool bad = i == 0 || i == 399 || (i >= 200 && i < 205) || i % 97 == 13;
    std::string tag = "t" + std::to_string(i % 4);
    if (bad) {
      tag = i % 3 == 0   ? "\"bad\nline " + std::to_string(i) + "\""
            : i % 3 == 1 ? "caf\xE9" + std::to_string(i)
                         : "bad" + std::to_string(i);
    }
    text += tag + "," + (bad ? "bad_forced" + std::to_string(i) : std::to_string(i % 7)) + "," +
            (bad ? std::string("oops") : std::to_string(i) + ".5") + "," + (i % 2 ? "yes" : "no") +
            "\n";
  }
  const CsvImportOptions options = options_with(true, {"forced"}, {"n"});
  const ImportOutcome outcome = expect_same_both_ways(text, options, "skipped for --numeric");
  ASSERT_TRUE(outcome.error.empty()) << outcome.error;
  EXPECT_EQ(outcome.report.rows, 400 - 2 - 5 - 4);
  EXPECT_EQ(outcome.report.skipped_rows, 2 + 5 + 4);
  ASSERT_FALSE(outcome.report.skipped_examples.empty());
  EXPECT_EQ(outcome.report.skipped_examples[0],
            "line 2, column 'n': 'oops' is not a number (the column is --numeric)");
  expect_same_held_or_read_again(text, options, "skipped for --numeric", true);
  test::TemporaryDirectory dir;
  CsvImportOptions quiet = options;
  quiet.progress = false;
  import_csv(dir.write("s.csv", text), dir.file("s.h5"), quiet);
  const Table t = read_table(dir.file("s.h5"));
  EXPECT_EQ(t.column("tag").categories, (std::vector<std::string>{"t0", "t1", "t2", "t3"}));
  std::vector<std::string> forced;
  for (int k = 0; k < 7; ++k) forced.push_back(std::to_string(k));
  EXPECT_EQ(t.column("forced").categories, forced);
  // Every row bad: the same error on every path, naming the first.
  const ImportOutcome all_bad = expect_same_both_ways(
      "tag,n\n\"a\nb\",x\nc,y\n", options_with(true, {}, {"n"}), "every row bad");
  EXPECT_NE(all_bad.error.find("all 2 rows are bad and were skipped; the first: line 2, column "
                               "'n': 'x' is not a number"),
            std::string::npos)
      << all_bad.error;
}


// Seeded random files of rows skipped for a --numeric column (n) and for a mostly numeric one (m,
// in odd files), with labels (tag, quoted line breaks among them) and category codes (k) that only
// skipped rows hold, and ragged rows; the columns in a different order in each file. Every way of
// reading gives the same output; pass 1's values are held exactly when no row is skipped for m.
TEST(CsvImportParallel, RandomFilesWithSkippedRowsImportTheSameEveryWay) {
  std::mt19937 rng(20261129);
  for (int file = 0; file < 8; ++file) {
    std::vector<std::string> names = {"tag", "n", "m", "k"};
    std::shuffle(names.begin(), names.end(), rng);
    std::string text;
    for (std::size_t c = 0; c < names.size(); ++c) text += (c ? "," : "") + names[c];
    text += "\n";
    const int rows = 150 + static_cast<int>(rng() % 250);
    const int m_bad_row = file % 2 == 1 ? static_cast<int>(rng() % static_cast<unsigned>(rows)) : -1;
    for (int r = 0; r < rows; ++r) {
      const bool n_bad = r != m_bad_row && rng() % 12 == 0;
      const bool skipped = n_bad || r == m_bad_row;
      std::string tag = "t" + std::to_string(rng() % 5);
      if (skipped && rng() % 2 == 0) tag = "only_skipped" + std::to_string(r);
      if (rng() % 15 == 0) tag = "\"" + tag + "\nnext line, " + std::to_string(rng() % 3) + "\"";
      std::string k = std::to_string(rng() % 6);
      if (skipped && rng() % 3 == 0) k = "code" + std::to_string(r);
      std::string n = n_bad ? "oops" + std::to_string(r) : std::to_string(rng() % 1000) + ".25";
      if (!n_bad && rng() % 20 == 0) n = "NA";
      std::string m = r == m_bad_row ? std::string("bad") : std::to_string(rng() % 100);
      std::vector<std::string> fields;
      for (const std::string& name : names) {
        fields.push_back(name == "tag" ? tag : name == "n" ? n : name == "m" ? m : k);
      }
      if (r != m_bad_row && rng() % 60 == 0) fields.pop_back();  // ragged
      for (std::size_t c = 0; c < fields.size(); ++c) text += (c ? "," : "") + fields[c];
      text += "\n";
    }
    const std::string what = "random skipping file " + std::to_string(file);
    const CsvImportOptions options = options_with(true, {}, {"n"});
    const ImportOutcome serial = expect_same_both_ways(text, options, what, true, {1, 64, 0});
    ASSERT_TRUE(serial.error.empty()) << what << ": " << serial.error;
    EXPECT_GT(serial.report.skipped_rows, 0) << what;
    expect_same_held_or_read_again(text, options, what, m_bad_row < 0, {1, 64, 0});
    for (const std::string& entry : serial.content) {
      const std::string labels = entry.substr(0, entry.find("] "));  // before the stored bytes
      EXPECT_EQ(labels.find("only_skipped"), std::string::npos) << what << ": " << labels;
      EXPECT_EQ(labels.find("code"), std::string::npos) << what << ": " << labels;
    }
  }
}


// ---- Number formats: decimal commas and thousands separators (CsvImportOptions::decimal) ----

CsvImportOptions european_options() {
  CsvImportOptions options = quiet_options();
  options.delimiter = ';';
  options.decimal = ',';
  options.thousands = '.';
  return options;
}

TEST(CsvImportNumberFormat, ReadsDecimalCommasAndThousandsSeparatorsOnBothPaths) {
  const std::string text =
      "amount;rate;id;code;plan\n"
      "1.234,50;3,14;9.007.199.254.740.993;7;Basis 1,5\n"
      "-999,0;,5;12;8;Pro 2.0\n"
      "1.000.000;-1,5e3;-9.007.199.254.740.995;9;Basis 1,5\n"
      ";5,;+1.234;10;\n";
  test::TemporaryDirectory dir;
  const auto out = dir.file("eu.h5");
  CsvImportOptions options = european_options();
  options.na_values = {"-999"};  // a number: matches -999,0 by value, as pandas
  import_csv(dir.write("eu.csv", text), out, options);
  const Table t = read_table(out);
  EXPECT_EQ(t.at("amount", 0), 1234.5f);
  EXPECT_TRUE(std::isnan(t.at("amount", 1)));
  EXPECT_EQ(t.at("amount", 2), 1e6f);
  EXPECT_TRUE(std::isnan(t.at("amount", 3)));
  EXPECT_EQ(t.at("rate", 0), 3.14f);
  EXPECT_EQ(t.at("rate", 1), 0.5f);
  EXPECT_EQ(t.at("rate", 2), -1500.0f);
  EXPECT_EQ(t.at("rate", 3), 5.0f);
  // Integers beyond 2^53 written with separators are kept exact, as int64.
  std::string dtype;
  EXPECT_EQ(read_int64(out, "id", &dtype),
            (std::vector<std::int64_t>{9007199254740993, 12, -9007199254740995, 1234}));
  EXPECT_EQ(dtype, "int64");
  EXPECT_EQ(t.column("code").type, ColumnType::numeric);
  // Labels keep their spelling.
  EXPECT_EQ(t.column("plan").type, ColumnType::categorical);
  EXPECT_EQ(t.label("plan", 0), "Basis 1,5");
  EXPECT_EQ(t.label("plan", 1), "Pro 2.0");
  expect_same_both_ways(text, options, "european");
  options.numeric = {"rate"};
  expect_same_both_ways(text, options, "european, --numeric");
}

TEST(CsvImportNumberFormat, SeparatorsOnlyBetweenDigitGroups) {
  // Read as pandas reads them: groups of three, or India's twos before the last three.
  for (const auto& [text, number] : std::vector<std::pair<std::string, float>>{
           {"1.234", 1234.0f}, {"12.345.678,9", 12345678.9f}, {"12.34.567", 1234567.0f}, {"-1.234", -1234.0f},
           {"1234,5", 1234.5f}, {"1e3", 1000.0f}, {"inf", INFINITY}}) {
    test::TemporaryDirectory dir;
    import_csv(dir.write("n.csv", "v\n1\n" + text + "\n"), dir.file("n.h5"), european_options());
    const Table t = read_table(dir.file("n.h5"));
    ASSERT_EQ(t.column("v").type, ColumnType::numeric) << text;
    EXPECT_EQ(t.at("v", 1), number) << text;
  }
  // pandas reads these (as 314, 125, 123, 1234, 1234567, 1.5); Lathe takes them for another format.
  for (const std::string text : {"3.14", "0.125", "1.2.3", "1..234", "1234.567", "1.,5", "1.234,5.6",
                                 "1,234.5", ",", ".1,5"}) {
    test::TemporaryDirectory dir;
    const std::string csv = "v\n1\n" + text + "\n";
    import_csv(dir.write("t.csv", csv), dir.file("t.h5"), european_options());
    EXPECT_EQ(read_table(dir.file("t.h5")).column("v").type, ColumnType::categorical) << text;
    expect_same_both_ways(csv, european_options(), text);
  }
}

TEST(CsvImportNumberFormat, ImpossibleFormatsAreErrors) {
  EXPECT_EQ(number_format_problem('.', 0), std::nullopt);
  EXPECT_EQ(number_format_problem('.', ','),
            std::nullopt);  // "1,234.5" quoted in a comma-separated file
  EXPECT_EQ(number_format_problem(',', 0),
            std::nullopt);  // "3,14" quoted in a comma-separated file
  EXPECT_NE(number_format_problem(',', ','), std::nullopt);
  for (const char bad : {'1', '-', '+', 'e', 'E', '"', '\n'}) {
    EXPECT_NE(number_format_problem(bad, 0), std::nullopt) << bad;
    EXPECT_NE(number_format_problem(',', bad), std::nullopt) << bad;
  }
}

// A spreadsheet's comma-separated export in a decimal-comma locale quotes the numbers that hold
// the mark, as pandas reads them with sep=',' and decimal=','; an unquoted one is two fields, and
// the bad row's error says why.
TEST(CsvImportNumberFormat, ADecimalMarkThatIsTheDelimiterIsReadInsideQuotes) {
  test::TemporaryDirectory dir;
  CsvImportOptions options = quiet_options();
  options.decimal = ',';
  import_csv(dir.write("sheet.csv", "a,b\n\"3,14\",2\n-7,\"1,5e3\"\n\"0,5\",\n"),
             dir.file("sheet.h5"), options);
  const Table table = read_table(dir.file("sheet.h5"));
  ASSERT_EQ(table.column("a").type, ColumnType::numeric);
  ASSERT_EQ(table.column("b").type, ColumnType::numeric);
  EXPECT_EQ(table.at("a", 0), 3.14f);
  EXPECT_EQ(table.at("a", 1), -7.0f);
  EXPECT_EQ(table.at("a", 2), 0.5f);
  EXPECT_EQ(table.at("b", 0), 2.0f);
  EXPECT_EQ(table.at("b", 1), 1500.0f);
  EXPECT_TRUE(std::isnan(table.at("b", 2)));

  const std::string what = input_error_of([&] {
    import_csv(dir.write("unquoted.csv", "a,b\n\"3,14\",2\n3,14,2\n"), dir.file("unquoted.h5"),
               options);
  });
  EXPECT_NE(what.find("line 3: has 3 fields, the header has 2 (--decimal ',' is also the "
                      "delimiter, so a number "
                      "written with it must be quoted, \"3,14\": unquoted it is two fields)"),
            std::string::npos)
      << what;
  EXPECT_FALSE(std::filesystem::exists(dir.file("unquoted.h5")));
}

}  // namespace
}  // namespace lathe
