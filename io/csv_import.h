// `lathe import`: CSV to Lathe's columnar HDF5 layout, streaming in constant memory.
//
// The file is read once or twice (three times in rare cases, below), never held in memory whole:
//   pass 1  reads the header and every record, infers each column's type, collects the labels of
//           categorical columns, counts rows and finds every error, before any output exists;
//   pass 2  appends blocks of rows to a ColumnarWriter on a temporary file, which is renamed to
//           the output path only when complete. A failed import leaves nothing at the output path
//           and never touches an earlier file there.
// Pass 2 parses the file again, unless pass 1 could hold its values (Holding, below).
// Holding: on the parallel path (Reading), pass 1 also parses each segment's values as pass 2 would
//   and holds them, up to CsvImportOptions::held_values_bytes in all: a column's numbers while its
//   segment has shown only numbers (and missing values) in it, else its labels as indices into
//   the segment's own labels (mapped to the sorted codes once all labels are known). When every
//   row to be written was held, and every column as its type needs (no segment mixing numbers and
//   labels in a categorical column), pass 2 writes the held values without reading the file again;
//   otherwise (a larger file, such columns, an int64 column, a mostly numeric column with bad
//   values) it frees them and reads the file again. The output and the report are the same either
//   way.
// Skipped rows (skip_bad_rows): a ragged row, then a row with a non-number in a --numeric column
//   (named as the first such column), are skipped by every pass before any of their other values
//   is looked at: their labels are no categories, their values count for no type. A non-number in
//   a column inferred mostly numeric (see Types) skips its row in pass 2, whose labels are then
//   collected again from the rows kept.
//
// The CSV dialect is RFC 4180 (see io/csv_reader.h): quoted fields, CRLF, a UTF-8 BOM. Header
// names have their quotes and surrounding whitespace removed; empty or duplicate names are errors.
// Field values have surrounding spaces and tabs removed. Line numbers in messages are the file's
// 1-based physical lines (the header is line 1). Lines holding only spaces and tabs are blank and
// skipped, as in pandas (see io/csv_reader.h). A file with a header and no rows (an empty
// partition) is imported as 0 rows with a note: every column numeric (float64) unless
// `categorical` names it (then with no labels).
//
// Missing values: an empty field and, as in pandas.read_csv, pandas' default NA tokens
//   (pandas._libs.parsers.STR_NA_VALUES): #N/A, #N/A N/A, #NA, -1.#IND, -1.#QNAN, -NaN, -nan,
//   1.#IND, 1.#QNAN, <NA>, N/A, NA, NULL, NaN, None, n/a, nan, null; plus the tokens of
//   CsvImportOptions::na_values (`--na-values`). With keep_default_na false (`--no-default-na`)
//   only the empty field and na_values are missing; pandas would then keep an empty field as text,
//   and spellings of NaN that std::from_chars reads (nan, -nan, NAN) stay numbers, NaN, as NAN
//   always was. Fields and tokens are compared trimmed (below), byte for byte, a token whose value
//   is an integer adding its plain spellings (-9.99e2 adds -999 and -999.0, as pandas does in every
//   column); and, as pandas compares them, a number of a numeric column (float64 or int64) is
//   missing when it equals a token that is a number (-999 makes -999.0 and -9.99e2 missing; such
//   values count as numbers when types are inferred, and as missing values when int64 is
//   decided). A missing value is
//   stored as NaN in a numeric column and code -1 in a categorical one, never as a label.
// Types: a column is numeric (stored float64) when every non-missing value parses whole as a
//   number (std::from_chars, with an optional leading '+'); otherwise categorical (stored int32
//   codes, code i being the i-th label in byte-wise sorted order). A column that looks numeric
//   with a few bad values (at least 100 non-missing values, at least 99% of them numbers) is taken
//   as numeric, and its bad values are errors. `categorical` and `numeric` force a column's type.
//   A column imported as categorical although at least half of its non-missing values are numbers
//   gets a note (CsvImportReport::notes) naming it, the share and its first non-number.
// Number format: with a decimal mark other than '.' or a thousands separator (decimal, thousands),
//   a value is a number when it is one in that format (io/csv_import.cpp, write_plain_decimal):
//   an optional sign, an integer part, the decimal mark and a fraction, an optional exponent
//   ("-1.234,5e3" with ',' and '.'); a thousands separator only between the integer part's digit
//   groups, in threes ("1.234.567") or in twos before the last three ("12,34,567"), the first not
//   starting with 0 ("0.125" is none; pandas reads these, and "3.14", "1.2.3", as 125, 314, 123). It is then
//   read as the plain number (and its integer facts, below, are those of the plain number); a value
//   holding '.', the decimal mark or the separator otherwise ("3.14" with the decimal ',', as in
//   pandas) is no number. Values holding none of them (integers, inf, nan) read as before. Labels
//   of categorical columns are the values as written.
// Exact integers: a numeric column whose every number is an integer written without a fraction or
//   exponent ("-12", "+7", "0042") that fits int64, at least one of them beyond 2^53 in magnitude
//   (which float64 would round), and that has no missing value, is stored as int64, each value
//   parsed exactly (std::from_chars). Such a column with missing values (int64 has none) stays
//   float64 with a note saying its values beyond 2^53 were rounded, as does a column of integers
//   beyond the int64 range; `--categorical` keeps them exact as text. Every other numeric column is
//   float64, as before. The decision uses pass 1's tally of every row it kept, so it is the same
//   on both reading paths.
// Reading: data (the records after the header) without a lone CR (a '\r' not followed by '\n';
//   CRLF is fine) is read by all threads (OpenMP) in segments of a few MiB that start after a '\n',
//   a batch of segments at a time (io/csv_segment.h); each batch's results are combined in file
//   order, so types, labels, row order, line numbers, the first error and the skipped-row examples
//   are exactly those of reading the file front to back. Quoted fields are split in segments too,
//   speculatively: each segment assumes a record starts at its first byte, and the combining checks
//   that it starts exactly where the records before it ended. Where a quoted field with a line break
//   runs from one segment into the next, that record is read whole (from the bytes already read,
//   then the file) and parsed on its own, and a segment that started inside it is parsed again from
//   where it ends (found on one thread, splitting records only; the parsing is again on all threads);
//   the next batch starts there, so no byte is read twice. An unclosed quote is found so too, with
//   CsvReader's message and line. A lone CR (anywhere, quoted or not) is checked for by each
//   segment as pass 1 reads it: at the first batch that finds one, pass 1 starts over on one thread
//   with CsvReader, which then reads every pass. The header is always read with CsvReader.
// Memory: one block of rows, one batch of segments with their parsed values (a few MiB per thread)
//   and the records that run past their segments (as long as CsvReader's longest record),
//   the labels of categorical columns, the values pass 1 holds (at most held_values_bytes, 1 GiB
//   by default; pass 1 stops holding as soon as the data read so far shows that its values would
//   need more), and at most 1024 distinct integers per column while every number it has shown is
//   an integer (the codes a categorical column often holds); a column that
//   turns out categorical after outgrowing that limit, or after showing another number, gets its
//   labels from a third pass over the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lathe {

struct CsvImportOptions {
  std::vector<std::string> categorical;  // columns forced categorical (numbers become labels)
  std::vector<std::string> numeric;      // columns forced numeric (a non-number is an error)
  bool skip_bad_rows = false;            // skip (and count) ragged or unparseable rows
  // Missing values (see above): tokens missing besides the default ones, each trimmed, then
  // non-empty and without the delimiter, a quote or a line break (na_value_problem).
  std::vector<std::string> na_values;
  bool keep_default_na = true;  // false: only the empty field and na_values are missing
  char delimiter = ',';
  // How numbers are written, as pandas.read_csv's decimal= and thousands= (see Number format):
  // the decimal mark, and the thousands separator (0: none).
  char decimal = '.';
  char thousands = 0;
  std::int64_t chunk_rows = 65536;  // longest HDF5 chunk, and rows per appended block; chunks are
                                    // shorter for a wide table, no longer than the table, and as
                                    // even as that allows (1M rows: 16 chunks of 62500)
  int deflate_level = 4;            // 0..9; 0 = no compression
  bool progress = true;             // progress on stderr for files over 64 MiB
  // How the data is read (see above); the result is the same either way, tests compare the two.
  bool parallel = true;            // false: always on one thread with CsvReader
  std::int64_t segment_bytes = 0;  // bytes per segment of the parallel path; 0 = automatic
  // Bytes of parsed values pass 1 may hold (see Holding); 0 = none (pass 2 always reads the file
  // again); negative = automatic: 1 GiB, at most a quarter of physical memory.
  std::int64_t held_values_bytes = -1;
};

struct CsvImportReport {
  std::int64_t rows = 0;                      // rows written
  std::int64_t skipped_rows = 0;              // with skip_bad_rows
  std::vector<std::string> skipped_examples;  // the first few reasons, each naming its line
  std::int64_t columns = 0;
  std::int64_t numeric_columns = 0;
  std::int64_t categorical_columns = 0;
  bool read_in_segments = false;  // the data had no lone CR and was read by all threads (see Reading)
  // Pass 2 wrote the values pass 1 held, not reading the file again (see Holding).
  bool read_once = false;
  std::int64_t int64_columns = 0;   // numeric columns stored as int64 (see Exact integers)
  // Notes for the user (`lathe import` prints them on stderr), one line each, in column order:
  // integers beyond 2^53 that had to be rounded, a mostly-numeric column taken as categorical.
  std::vector<std::string> notes;
};

// Why `token` cannot be a token of CsvImportOptions::na_values for a file with `delimiter`, or
// nothing when it can: after trimming spaces and tabs it must be non-empty (an empty field is
// always missing) and hold no delimiter, quote or line break (a field holds one only when quoted:
// such a token is a mistake, as two tokens not separated by commas). The reason names the token.
std::optional<std::string> na_value_problem(std::string_view token, char delimiter);

// Why `decimal` and `thousands` (0: none) cannot be CsvImportOptions' number format, or nothing
// when they can: neither may be a digit, a sign, 'e' or 'E', a quote or a line break, and they
// differ. Either may be the delimiter, as pandas allows: such numbers are read inside quotes
// ("1,234.50", "3,14" in a comma-separated file). The reason names the options as `lathe import`
// spells them.
std::optional<std::string> number_format_problem(char decimal, char thousands);

// Imports `csv` into `out` (written under a temporary name, renamed when complete). Throws
// InputError naming the file, and the line (and column) of the first bad row unless
// skip_bad_rows: a missing or empty file (no header), bad header names, a row with the wrong
// number of fields, a value that is not a number in a numeric column, an unclosed quote; and
// (naming no file) bad options.
CsvImportReport import_csv(const std::filesystem::path& csv, const std::filesystem::path& out,
                           const CsvImportOptions& options);

}  // namespace lathe
