// `lathe import` end to end through the library: CSV text written to a temporary folder, imported,
// read back with TableReader.
#include "io/csv_import.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "io/csv_reader.h"
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

TEST(CsvImport, MissingEmptyAndHeaderOnlyFilesAreErrorsNamingTheFile) {
  test::TemporaryDirectory dir;
  const auto out = dir.file("o.h5");
  std::string message =
      input_error_of([&] { import_csv(dir.file("absent.csv"), out, quiet_options()); });
  EXPECT_NE(message.find("absent.csv"), std::string::npos) << message;
  message = input_error_of([&] { import_csv(dir.write("empty.csv", ""), out, quiet_options()); });
  EXPECT_NE(message.find("empty.csv"), std::string::npos) << message;
  EXPECT_NE(message.find("empty"), std::string::npos) << message;
  message = input_error_of([&] { import_csv(dir.write("h.csv", "a,b\n"), out, quiet_options()); });
  EXPECT_NE(message.find("h.csv"), std::string::npos) << message;
  EXPECT_NE(message.find("no rows"), std::string::npos) << message;
  message = input_error_of([&] { import_csv(dir.write("h2.csv", "a,b"), out, quiet_options()); });
  EXPECT_NE(message.find("no rows"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(out));
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

}  // namespace
}  // namespace lathe
