"""CSV files as spreadsheets, databases and BI tools export them, through `lathe import` and
`lathe train`: what a user is told where a quirk of the export changes what Lathe reads.

- amounts written with formatting ("$1,234", "1,234.50", "12.5%", "(45.00)", "3,14") are text to
  Lathe, as to pandas.read_csv without thousands= and decimal=: the column is imported as
  categorical, and a note names it, the first such value and how to write it (before, a column of
  currency amounts became one label per amount without a word, and a half-formatted one got advice,
  --na-values or --skip-bad-rows, that would lose those values), or, for thousands separators and
  decimal commas, the --thousands and --decimal options that read them;
- --decimal and --thousands read numbers as pandas.read_csv's decimal= and thousands= do ("1.234,50"
  with --decimal , --thousands ., "1,234.50" with --thousands ,), separators only between digit
  groups (pandas reads "3.14" with thousands='.' as 314; Lathe takes it for no number);
- a column of dates is imported as categorical with a note saying so;
- a UTF-16 file (Excel's "Unicode Text") is named as UTF-16, with the iconv command that converts
  it (before, the error advised converting from Latin-1);
- a label spelled in several letter cases ("Yes", "yes", "YES") is named as such when a binary task
  finds more than two classes, and noted when a multiclass task trains them apart;
- a categorical feature with a label per row (an id, a timestamp, amounts read as text) is noted
  when training, with --drop (before, only `lathe score`'s unknown labels hinted at it); so is a
  numeric one of distinct whole numbers that nearly fill a run (a row number, a customer number),
  which was scaled and learned from without a word, and no column of the shared data sets or of
  `lathe synth` is;
- a new export that spells a feature's labels otherwise than the training data ("TRUE" for "True",
  "yes " for "yes") is still scored with them unknown, and `lathe score`, `eval` and `drift` say
  which training label each one is (before, the note said only "labels not seen in training").
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import h5py
import numpy as np
import pandas as pd

from lathe_run import attempt, run

ROWS = 1000


class MessyCsv(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lathe-messy-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write_csv(self, name, df, **to_csv):
        path = self.path(name)
        df.to_csv(path, index=False, **to_csv)
        return path

    def amounts(self):
        return np.random.default_rng(7).normal(1000.0, 400.0, ROWS)

    def test_formatted_amounts_are_named_with_how_to_write_them(self):
        x = self.amounts()
        df = pd.DataFrame({
            "currency": [f"${v:,.0f}" for v in x],
            "euro": [f"\u20ac{v:.0f}" for v in x],
            "percent": [f"{v / 20:.1f}%" for v in x],
            # Half plain (below 1000), half with a thousands separator: the note used to advise
            # --na-values '1,050.29' or --skip-bad-rows, which would drop half the amounts.
            "thousands": [f"{v:,.2f}" for v in x],
            "negatives": [f"({1000 - v:.2f})" if v < 1000 else f"{v - 1000:.2f}" for v in x],
            "decimal_comma": [f"{v:.2f}".replace(".", ",") for v in x],
            "plain": x.round(2),
            "city": np.random.default_rng(1).choice(["Oslo", "Lima", "Pune"], ROWS),
            # Dates and version numbers group no digits in threes: not amounts.
            "day": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(ROWS) % 300, unit="D"),
            "version": [f"1.{i % 7}.{i % 3}" for i in range(ROWS)],
        })
        df["day"] = df["day"].dt.strftime("%d.%m.%Y")
        csv = self.write_csv("amounts.csv", df)
        proc = run("import", csv, self.path("amounts.h5"))
        self.assertIn("(1 numeric, 9 categorical)", proc.stdout)
        # Notes of one kind are printed two in full, then as one line naming the other columns.
        notes = [line for line in proc.stderr.splitlines() if line.startswith("lathe import: note:")]
        full = [n for n in notes if "written with formatting" in n]
        self.assertEqual(len(full), 4, notes)
        self.assertIn(f"column 'currency' was imported as categorical: 100.00% of its {ROWS} non-missing "
                      f"values are numbers, but {ROWS} of them are written with formatting (the first "
                      f"'{df['currency'][0]}' on line 2): ",
                      full[0])
        for note in full[:2]:
            self.assertIn("write such values as plain numbers", note)
        self.assertNotIn("--na-values", proc.stderr)
        self.assertNotIn("--skip-bad-rows", proc.stderr)
        self.assertIn("lathe import: note: the same note for 2 more: percent, negatives", notes)
        self.assertIn("column 'euro'", full[1])
        # Thousands separators alone, and decimal commas, are read with the option named.
        self.assertIn("column 'thousands'", full[2])
        self.assertTrue(full[2].endswith("to read them as numbers, import with --thousands ','"), full[2])
        self.assertIn("column 'decimal_comma'", full[3])
        self.assertTrue(full[3].endswith("to read them as numbers, import with --decimal ','"), full[3])
        for name in ("city", "version"):
            self.assertFalse([n for n in notes if f"column '{name}'" in n], notes)
        # Dates ("23.10.2024") group no digits in threes: not amounts, but dates.
        [day] = [n for n in notes if "column 'day'" in n]
        self.assertIn("a label per date", day)

    def test_one_formatted_amount_is_said_in_the_singular(self):
        path = self.path("one_amount.csv")
        with open(path, "w") as f:
            f.write("a,y\n1,0\n2,1\n$3.00,0\n4,1\n")
        proc = run("import", path, self.path("one_amount.h5"))
        self.assertIn("non-missing values are numbers, but 1 of them is written with formatting (the first '$3.00' "
                      "on line 4)", proc.stderr)

    def test_forced_numeric_formatted_value_says_what_it_is_written_with_in_one_sentence(self):
        # QA: the error listed every kind of formatting, then "(the column is --numeric) (pass
        # --skip-bad-rows to skip such rows)": three asides in a row, the last dropping every row of a
        # column of amounts. It names the formatting found, and --skip-bad-rows no more.
        for amount, written_with in [("$1,234", "a currency sign and thousands separators"),
                                     ("12.5%", "a percent sign"), ("(45.00)", "parentheses for a negative")]:
            with self.subTest(amount=amount):
                df = pd.DataFrame({"amount": ["12.5", amount, "7"], "y": [0, 1, 0]})
                proc = attempt("import", self.write_csv("forced.csv", df), self.path("forced.h5"),
                               "--numeric", "amount")
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertIn(f"line 3, column 'amount' (--numeric): '{amount}' is not a number: it is written with "
                              f"{written_with}, which Lathe reads as text; write such values as plain numbers "
                              f"(1234.5, -45, 0.125)\n", proc.stderr)
                self.assertNotIn("--skip-bad-rows", proc.stderr)
        # A value that is no number in any format still suggests skipping its row.
        df = pd.DataFrame({"amount": ["12.5", "n/a?", "7"], "y": [0, 1, 0]})
        proc = attempt("import", self.write_csv("forced.csv", df), self.path("forced.h5"), "--numeric", "amount")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("line 3, column 'amount': 'n/a?' is not a number (the column is --numeric) (pass "
                      "--skip-bad-rows to skip such rows)", proc.stderr)

    def european_frame(self):
        """Amounts as a German or French spreadsheet writes them, and the same numbers."""
        rng = np.random.default_rng(11)
        amount = rng.lognormal(7.0, 2.0, ROWS).round(2) * rng.choice([-1, 1], ROWS)
        rate = rng.normal(0.0, 3.0, ROWS).round(3)
        count = rng.integers(0, 5_000_000, ROWS)
        text = {
            "amount": [f"{v:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".") for v in amount],
            "rate": [f"{v:.3f}".replace(".", ",") for v in rate],
            "count": [f"{v:,}".replace(",", ".") for v in count],
            "tiny": [f"{v:.2e}".replace(".", ",") for v in rate / 1000],
            "plan": rng.choice(["Basis 1,5", "Pro 2.0", "Max"], ROWS),
        }
        df = pd.DataFrame(text)
        df.loc[3, "amount"] = ""  # missing
        df.loc[5, "rate"] = "NA"
        return df

    def import_and_compare(self, csv, lathe_flags, read_csv):
        """Imports CSV with the flags and checks that each numeric column holds pandas.read_csv's
        values (with `read_csv`'s options), as float32; returns pandas' frame and the file."""
        out = csv.replace(".csv", ".h5")
        run("import", csv, out, "--quiet", *lathe_flags)
        expected = pd.read_csv(csv, **read_csv)
        with h5py.File(out, "r") as f:
            for name in expected.columns:
                if expected[name].dtype == object or str(expected[name].dtype) in ("str", "string"):
                    self.assertEqual(f[name].dtype, np.int32, name)  # categorical codes
                    continue
                self.assertEqual(f[name].dtype.kind, "f", name)
                np.testing.assert_array_equal(f[name][:].astype(np.float32),
                                              expected[name].to_numpy(np.float64).astype(np.float32), name)
        return expected, out

    def test_decimal_comma_and_thousands_dots_read_as_pandas_reads_them(self):
        csv = self.write_csv("eu.csv", self.european_frame(), sep=";")
        expected, out = self.import_and_compare(
            csv, ["--delimiter", ";", "--decimal", ",", "--thousands", "."],
            dict(sep=";", decimal=",", thousands="."))
        for name in ("amount", "rate", "count", "tiny"):
            self.assertTrue(pd.api.types.is_numeric_dtype(expected[name]), name)
        self.assertEqual(int(expected["amount"].isna().sum()), 1)
        # Text keeps its spelling: the labels are the values as written.
        info = run("inspect", out, "--json")
        self.assertIn('"Basis 1,5"', info.stdout)
        self.assertIn('"Pro 2.0"', info.stdout)

    def test_thousands_separators_read_as_pandas_reads_them(self):
        rng = np.random.default_rng(12)
        x = rng.lognormal(8.0, 2.5, ROWS).round(2)
        df = pd.DataFrame({"amount": [f"{v:,.2f}" for v in x], "y": rng.integers(0, 2, ROWS)})
        # Quoted, as the comma separating thousands is also the delimiter.
        csv = self.write_csv("us.csv", df)
        self.import_and_compare(csv, ["--thousands", ","], dict(thousands=","))
        # India's lakhs and crores, Swiss apostrophes, French spaces ('space' names one too).
        df = pd.DataFrame({"amount": ["12,34,567.5", "1,00,000", "999", "1,234"], "y": [1, 2, 3, 4]})
        self.import_and_compare(self.write_csv("in.csv", df), ["--thousands", ","], dict(thousands=","))
        df = pd.DataFrame({"amount": ["1'234'567.5", "-12'345", "7.25"], "y": [1, 2, 3]})
        self.import_and_compare(self.write_csv("ch.csv", df), ["--thousands", "'"], dict(thousands="'"))
        df = pd.DataFrame({"amount": ["1 234 567,5", "-12 345", "7,25"], "y": [1, 2, 3]})
        for spelled in (" ", "space"):
            self.import_and_compare(self.write_csv("fr.csv", df, sep=";"),
                                    ["--delimiter", ";", "--decimal", ",", "--thousands", spelled],
                                    dict(sep=";", decimal=",", thousands=" "))
        # French spreadsheets group with a no-break space (U+00A0) or a narrow one (U+202F), which
        # pandas does not read as ' ': `space` reads them too (compared with them made plain).
        df = pd.DataFrame({"amount": ["1\u00a0234\u00a0567,5", "-12\u202f345", "7,25"], "y": [1, 2, 3]})
        csv = self.write_csv("fr_nbsp.csv", df, sep=";")
        out = self.path("fr_nbsp.h5")
        run("import", csv, out, "--quiet", "--delimiter", ";", "--decimal", ",", "--thousands", "space")
        with h5py.File(out, "r") as f:
            np.testing.assert_array_equal(f["amount"][:], [1234567.5, -12345.0, 7.25])
        proc = run("import", csv, self.path("fr_nbsp_given.h5"), "--delimiter", ";", "--thousands", "\u00a0",
                   check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--thousands: a no-break space (U+00A0) is two or three bytes of UTF-8: pass --thousands space",
                      proc.stderr)

    def test_a_decimal_comma_that_is_the_delimiter_is_read_inside_quotes(self):
        # A comma-separated export from a decimal-comma locale (a spreadsheet's) quotes such numbers.
        rng = np.random.default_rng(13)
        df = pd.DataFrame({"rate": rng.normal(0.0, 3.0, ROWS).round(3), "count": rng.integers(0, 100, ROWS),
                           "y": rng.integers(0, 2, ROWS)})
        csv = self.path("sheet.csv")
        df.to_csv(csv, index=False, decimal=",")
        with open(csv) as f:
            self.assertIn('"', f.read())
        expected, _ = self.import_and_compare(csv, ["--decimal", ","], dict(decimal=","))
        self.assertTrue(pd.api.types.is_float_dtype(expected["rate"]))
        # A ';'-separated file imported with --decimal , alone: its rows are told the delimiter.
        proc = attempt("import", self.write_csv("eu.csv", self.european_frame(), sep=";"), self.path("x.h5"),
                       "--decimal", ",")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("pass --delimiter ';'", proc.stderr)
        self.assertFalse(os.path.exists(self.path("x.h5")))

    def test_number_format_options_that_cannot_work_are_usage_errors(self):
        csv = self.write_csv("eu.csv", self.european_frame(), sep=";")
        for flags, message in [
            (["--delimiter", ";", "--decimal", ",", "--thousands", ","], "--decimal and --thousands are both ','"),
            (["--delimiter", ";", "--decimal", ",,"], "--decimal must be one character"),
            (["--delimiter", ";", "--thousands", "e"], "--thousands cannot be 'e'"),
        ]:
            proc = attempt("import", csv, self.path("x.h5"), *flags)
            self.assertEqual(proc.returncode, 2, (flags, proc.stderr))
            self.assertIn(message, proc.stderr)
            self.assertFalse(os.path.exists(self.path("x.h5")))

    def test_numbers_in_another_format_are_not_numbers(self):
        # pandas reads "3.14" and "0.125" with thousands='.' as 314 and 125: Lathe takes a
        # separator only between groups of three digits (the first not starting with 0).
        df = pd.DataFrame({"rate": ["3,5", "3.14", "0.125", "1.234,5"], "y": [1, 2, 3, 4]})
        csv = self.write_csv("mixed.csv", df, sep=";")
        flags = ["--delimiter", ";", "--decimal", ",", "--thousands", "."]
        proc = attempt("import", csv, self.path("mixed.h5"), *flags, "--numeric", "rate")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("line 3, column 'rate': '3.14' is not a number (a plain number, but not one with "
                      "--decimal ',' --thousands '.'", proc.stderr)
        proc = run("import", csv, self.path("mixed.h5"), *flags)
        self.assertIn("(1 numeric, 1 categorical)", proc.stdout)
        self.assertIn("column 'rate' was imported as categorical, though 100.00% of its 4 non-missing values "
                      "are numbers, 2 of them written plainly (the first '3.14' on line 3), not numbers with "
                      "--decimal ',' --thousands '.', which apply to every column (as pandas' decimal= and "
                      "thousands=): write all of the file's numbers in one format", proc.stderr)

    def test_a_file_of_plain_numbers_imported_with_decimal_is_told_to_import_without_it(self):
        # QA: "not numbers with --decimal ,, which apply ..." read as a typo, and where no number of
        # the file is written with the decimal comma the remedy is to drop the option.
        df = pd.DataFrame({"carat": ["0.76", "1.5", "0.3"], "price": [2518, 3584, 990], "cut": ["a", "b", "a"]})
        csv = self.write_csv("semi_dot.csv", df, sep=";")
        proc = run("import", csv, self.path("semi_dot.h5"), "--delimiter", ";", "--decimal", ",")
        self.assertIn("lathe import: note: column 'carat' was imported as categorical, though 100.00% of its 3 "
                      "non-missing values are numbers, 3 of them written plainly (the first '0.76' on line 2), not "
                      "numbers with --decimal ',', which apply to every column (as pandas' decimal= and thousands=): "
                      "no number in the file needs them, so import without --decimal ','\n", proc.stderr)

    def test_formatted_number_notes_name_the_options_that_read_them(self):
        eu = self.write_csv("eu.csv", self.european_frame(), sep=";")
        proc = run("import", eu, self.path("eu.h5"), "--delimiter", ";")
        notes = [line for line in proc.stderr.splitlines() if line.startswith("lathe import: note:")]
        [amount] = [n for n in notes if "column 'amount'" in n]
        self.assertTrue(amount.endswith("to read them as numbers, import with --decimal ',' --thousands '.'"), amount)
        [rate] = [n for n in notes if "column 'rate'" in n]
        self.assertTrue(rate.endswith("to read them as numbers, import with --decimal ','"), rate)
        # "1,234" alone: a thousands separator or a decimal comma; both are named.
        df = pd.DataFrame({"amount": ["1,234", "5,678", "2,500"], "y": [1, 2, 3]})
        proc = attempt("import", self.write_csv("amb.csv", df), self.path("amb.h5"), "--numeric", "amount")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("'1,234' is not a number: it is written with a thousands separator or a decimal comma; "
                      "to read such values as numbers, import with --thousands ',' ('1,234' is then 1234) or "
                      "with --decimal ',' ('1,234' is then 1.234), whichever they are written with\n", proc.stderr)

    def test_a_column_of_dates_is_noted(self):
        days = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(ROWS) % 300, unit="D")
        df = pd.DataFrame({
            "iso": days.strftime("%Y-%m-%d"),
            "us": days.strftime("%m/%d/%Y"),
            "stamp": days.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "code": [f"{i % 97}-{i % 13}-X" for i in range(ROWS)],
            "y": np.arange(ROWS) % 2,
        })
        df.loc[4, "iso"] = None
        proc = run("import", self.write_csv("dates.csv", df), self.path("dates.h5"))
        notes = [line for line in proc.stderr.splitlines() if line.startswith("lathe import: note:")]
        self.assertIn(f"lathe import: note: column 'iso' was imported as categorical, a label per date: its "
                      f"{ROWS - 1} non-missing values look like dates (the first '2024-01-01' on line 2), and "
                      f"Lathe has no date type; pass --drop 'iso' when training", proc.stderr)
        self.assertIn("'us'", "\n".join(notes))
        self.assertIn("'stamp'", "\n".join(notes))
        self.assertNotIn("'code'", "\n".join(notes))

    def test_utf16_file_is_named_as_utf16(self):
        df = pd.DataFrame({"a": [1.5, 2.5], "b": ["x", "y"]})
        csv = self.write_csv("excel.csv", df, encoding="utf-16")
        proc = attempt("import", csv, self.path("excel.h5"))
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("excel.csv: is UTF-16 text (it starts with a UTF-16 byte order mark)", proc.stderr)
        self.assertIn("iconv -f UTF-16 -t UTF-8", proc.stderr)
        self.assertNotIn("latin1", proc.stderr)
        self.assertFalse(os.path.exists(self.path("excel.h5")))
        # UTF-32, either byte order: its little-endian mark starts as UTF-16's does (iconv -f UTF-16 garbles it).
        for encoding in ("utf-32", "utf-32-be"):
            with self.subTest(encoding=encoding):
                wide = self.path("wide.csv")
                with open(wide, "wb") as f:
                    f.write(("\ufeff" if encoding.endswith("be") else "").encode(encoding) +
                            "a,b\n1.5,x\n".encode(encoding))
                proc = attempt("import", wide, self.path("wide.h5"))
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertIn("wide.csv: is UTF-32 text (it starts with a UTF-32 byte order mark)", proc.stderr)
                self.assertIn("iconv -f UTF-32 -t UTF-8", proc.stderr)
                self.assertFalse(os.path.exists(self.path("wide.h5")))

    def test_a_windows_1252_file_is_told_the_iconv_command_that_keeps_its_euro_signs(self):
        # QA: a ';' file from Excel in a German locale (Windows-1252: 'ü' 0xFC, '€' 0x80) was told to
        # convert "from Latin-1" (iconv -f latin1), which turns '€' into the control character U+0080;
        # and the message quoted the value's raw 0xFC, so stderr was not UTF-8 (a script reading it
        # as text failed with UnicodeDecodeError, as attempt() here would): the byte is written \xFC.
        csv = self.path("excel_de.csv")
        with open(csv, "wb") as f:
            f.write("kunde;betrag\nMüller;12,50 €\nSchmidt;1.234,00 €\n".encode("cp1252"))
        proc = attempt("import", csv, self.path("de.h5"), "--delimiter", ";")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("line 2, column 'kunde': 'M\\xFCller' is not UTF-8 text (byte 0xFC at position 2)", proc.stderr)
        self.assertIn("iconv -f cp1252 -t utf-8 in.csv > out.csv", proc.stderr)
        self.assertNotIn("latin1", proc.stderr)
        # The command it gives keeps the euro sign: the amounts are then named as formatted numbers.
        converted = self.path("excel_de_utf8.csv")
        with open(converted, "wb") as out:
            subprocess.run(["iconv", "-f", "cp1252", "-t", "utf-8", csv], stdout=out, check=True)
        proc = run("import", converted, self.path("de.h5"), "--delimiter", ";", "--decimal", ",", "--thousands", ".")
        self.assertIn("'12,50 €'", proc.stderr)

    def test_a_file_separated_by_another_delimiter_is_told_to_pass_it(self):
        # QA: a ';' file imported without --delimiter failed "line 2: has 3 fields, the header has 1
        # (pass --skip-bad-rows ...)": skipping would drop every row.
        for name, text, hint in (
                ("semicolon.csv", "amount;rate;n\n1.234,50;3,14;1\n999,00;2,5;2\n",
                 "(the header holds ';': is the file separated by it? pass --delimiter ';')"),
                ("tabs.csv", "a\tb\n1\t2\n3,4\t5\n",
                 "(the header holds a tab: is the file separated by tabs? pass --delimiter tab)")):
            with self.subTest(name=name):
                csv = self.path(name)
                with open(csv, "w") as f:
                    f.write(text)
                proc = run("import", csv, self.path("out.h5"), check=False)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertIn(hint, proc.stderr)
                self.assertNotIn("--skip-bad-rows", proc.stderr)
        # A ragged row of a file whose header holds no other delimiter: as before.
        csv = self.path("ragged.csv")
        with open(csv, "w") as f:
            f.write("a,b\n1,2\n3\n")
        proc = run("import", csv, self.path("out.h5"), check=False)
        self.assertIn("line 3: has 1 field, the header has 2 (pass --skip-bad-rows to skip such rows)", proc.stderr)

    def test_a_comma_separated_file_read_with_another_delimiter_is_told_so(self):
        # Sanitizer pass (s29): the header check looked for tabs, ';' and '|' only, so a pandas CSV
        # imported with --delimiter ';' or tab (diamonds.csv: 53940 rows) became one column of text
        # without a word, and a row holding that delimiter failed advising --skip-bad-rows.
        for flag, delimiter in ((";", ";"), ("tab", "\t")):
            with self.subTest(delimiter=flag):
                csv = self.path("comma.csv")
                with open(csv, "w") as f:
                    f.write(f"carat,cut,price\n0.23,Ideal,326\n0.21,Pre{delimiter}mium,326\n")
                proc = run("import", csv, self.path("out.h5"), "--delimiter", flag, check=False)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertIn("line 3: has 2 fields, the header has 1 (the header holds ',': is the file separated "
                              "by it? pass --delimiter ',')", proc.stderr)
                self.assertNotIn("--skip-bad-rows", proc.stderr)
                proc = run("import", csv, self.path("out.h5"), "--delimiter", flag, "--skip-bad-rows")
                self.assertIn("the header is one column that holds 2 ','s: a file delimited by ','? --delimiter ',' "
                              "reads its columns", proc.stderr)
                # Read with its own delimiter: nothing said of it.
                proc = run("import", csv, self.path("out.h5"))
                self.assertNotIn("the header is one column", proc.stderr)
        # Every row bad under --skip-bad-rows (a ';' file read with the default ','): that error names the
        # delimiter too (it named the first bad row only).
        csv = self.path("semi.csv")
        with open(csv, "w") as f:
            f.write("carat;cut;price\n" + "".join(f"0,{i};Ideal,x;326\n" for i in range(1, 5)))
        proc = run("import", csv, self.path("semi.h5"), "--skip-bad-rows", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("all 4 rows are bad and were skipped", proc.stderr)
        self.assertIn("pass --delimiter ';'", proc.stderr)
        self.assertFalse(os.path.exists(self.path("semi.h5")))

    def labels_in_several_cases(self):
        rng = np.random.default_rng(3)
        x = rng.normal(size=ROWS)
        positive = x + rng.normal(scale=0.5, size=ROWS) > 0
        spellings = {True: ["Yes", "yes ", "YES"], False: ["No", "no", " NO"]}
        churn = [spellings[bool(p)][i % 3] for i, p in enumerate(positive)]
        df = pd.DataFrame({"x": x.round(4), "churn": churn})
        run("import", self.write_csv("churn.csv", df), self.path("churn.h5"), "--quiet")
        return self.path("churn.h5")

    def test_binary_label_in_several_letter_cases_is_named(self):
        data = self.labels_in_several_cases()
        proc = attempt("train", data, "--label", "churn", "--task", "binary", "--out", self.path("m.h5"), "--quiet")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("label 'churn': 6 classes for a binary task, though 'NO', 'No', 'no' and 'YES', 'Yes', "
                      "'yes' differ only in letter case", proc.stderr)
        self.assertIn("write each class one way in the data", proc.stderr)

    def test_multiclass_label_in_several_letter_cases_is_noted(self):
        data = self.labels_in_several_cases()
        proc = run("train", data, "--label", "churn", "--task", "multiclass", "--out", self.path("m.h5"),
                   "--epochs", "2")
        self.assertIn("train: note: label 'churn': the classes 'NO', 'No', 'no' and 'YES', 'Yes', 'yes' differ "
                      "only in letter case and are trained as different classes", proc.stderr)

    def test_id_like_categorical_feature_is_noted_when_training(self):
        rng = np.random.default_rng(5)
        x = rng.normal(size=ROWS)
        df = pd.DataFrame({
            "customer": [f"C{100000 + i}" for i in range(ROWS)],
            "plan": rng.choice(["basic", "pro"], ROWS),
            "x": x.round(4),
            "y": (x > 0).astype(int),
        })
        data = self.path("ids.h5")
        run("import", self.write_csv("ids.csv", df), data, "--quiet")
        proc = run("train", data, "--label", "y", "--task", "binary", "--out", self.path("m.h5"), "--epochs", "2")
        [note] = [line for line in proc.stderr.splitlines() if "categorical column 'customer'" in line]
        self.assertIn("training rows hold a label seen in no other row", note)
        self.assertIn("--drop it", note)
        self.assertNotIn("'plan'", proc.stderr)
        dropped = run("train", data, "--label", "y", "--task", "binary", "--drop", "customer", "--out",
                      self.path("m2.h5"), "--epochs", "2")
        self.assertNotIn("seen in no other row", dropped.stderr)

    def test_id_like_integer_feature_is_noted_when_training(self):
        # QA: customer numbers 1000..1049 were scaled and learned from as a quantity without a word,
        # where a string id gets a note.
        rng = np.random.default_rng(6)
        for rows, first, note_part in [(50, 1000, "distinct whole numbers from 1000 to 1049"),
                                       (5000, 1, "whole numbers that fill the run from 1 to 5000 evenly")]:
            with self.subTest(rows=rows):
                x = rng.normal(size=rows)
                df = pd.DataFrame({"customer_no": np.arange(first, first + rows), "x": x.round(4),
                                   "visits": rng.integers(0, 20, rows), "y": (x > 0).astype(int)})
                data = self.path(f"numbers{rows}.h5")
                run("import", self.write_csv(f"numbers{rows}.csv", df.sample(frac=1, random_state=1)), data,
                    "--quiet")
                proc = run("train", data, "--label", "y", "--task", "binary", "--out", self.path("m.h5"),
                           "--epochs", "1")
                [note] = [line for line in proc.stderr.splitlines() if "column 'customer_no'" in line]
                self.assertIn(note_part, note)
                self.assertIn("as a row number or an id is, and it is learned from as a quantity: an id? --drop it "
                              "(`lathe score --id customer_no` still copies it beside the scores)", note)
                self.assertNotIn("'visits'", proc.stderr)
                self.assertNotIn("'x'", proc.stderr)
                dropped = run("train", data, "--label", "y", "--task", "binary", "--drop", "customer_no", "--out",
                              self.path("m2.h5"), "--epochs", "1")
                self.assertNotIn("as a row number or an id", dropped.stderr)

    def test_no_column_of_the_shared_data_or_of_synth_is_noted_as_an_id(self):
        # The id-like integer note must not fire on real features: telco's tenure and total_charges,
        # diamonds' (price: 53940 rows of integers), penguins' (body mass in grams), synth's.
        shared = os.environ.get("LATHE_SHARED_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data"))
        cases = [("telco_churn", "churn", "binary"), ("diamonds", "price", "regression"),
                 ("penguins", "species", "multiclass")]
        for name, label, task in cases:
            data = self.path(name + ".h5")
            run("import", os.path.join(shared, name + ".csv"), data, "--quiet")
            for extra in ([], ["--valid-fraction", "0"]):
                proc = run("train", data, "--label", label, "--task", task, "--out", self.path("m.h5"), "--epochs",
                           "1", *extra)
                self.assertNotIn("as a row number or an id", proc.stderr, (name, extra))
        # The first 40 rows of telco (tenure 1..72 there, of few repeats).
        small = self.write_csv("telco40.csv", pd.read_csv(os.path.join(shared, "telco_churn.csv")).head(40))
        run("import", small, self.path("telco40.h5"), "--quiet")
        proc = run("train", self.path("telco40.h5"), "--label", "churn", "--task", "binary", "--out",
                   self.path("m.h5"), "--epochs", "1", "--valid-fraction", "0")
        self.assertNotIn("as a row number or an id", proc.stderr)
        for task in ("binary", "regression", "multiclass"):
            data = self.path(f"synth_{task}.h5")
            made = run("synth", "--task", task, "--rows", 3000, "--features", 6, "--categorical", 2, "--missing-rate",
                       0, "--out", data, "--quiet")
            label = made.stdout.split("label '")[1].split("'")[0]
            proc = run("train", data, "--label", label, "--task", task, "--out", self.path("m.h5"), "--epochs", "1")
            self.assertNotIn("as a row number or an id", proc.stderr, task)

    def paid_frame(self, rows, seed, spelling):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=rows)
        paid = rng.random(rows) < 0.5
        return pd.DataFrame({
            "x": x.round(4),
            "paid": [spelling[bool(p)] for p in paid],
            "plan": rng.choice(["basic", "pro"], rows),
            "y": (x + 2 * paid + rng.logistic(size=rows) > 1).astype(int),
        })

    def test_labels_spelled_otherwise_than_in_training_are_named_by_score_eval_and_drift(self):
        # QA: trained on True/False, an export of TRUE/FALSE was scored with every row of the
        # column in the unknown slot and a note that said only "N values with labels not seen in
        # training". The labels are still matched exactly (folding case would change existing
        # models' predictions); the note says which are training labels spelled otherwise.
        train = self.path("train.h5")
        run("import", self.write_csv("train.csv", self.paid_frame(ROWS, 1, {True: "True", False: "False"})),
            train, "--quiet")
        new_df = self.paid_frame(500, 2, {True: "TRUE", False: "FALSE"})
        new = self.path("new.h5")
        run("import", self.write_csv("new.csv", new_df), new, "--quiet")
        upper, lower = int((new_df["paid"] == "TRUE").sum()), int((new_df["paid"] == "FALSE").sum())
        model = self.path("m.h5")
        run("train", train, "--label", "y", "--task", "binary", "--epochs", "3", "--out", model, "--quiet")
        pairs = [f"'TRUE' ({upper} rows) is 'True' in training, apart from letter case",
                 f"'FALSE' ({lower} rows) is 'False' in training, apart from letter case"]
        advice = "labels are matched exactly; write them as in training"

        proc = run("score", model, new, "--out", self.path("s.csv"), "--device", "cpu")
        [note] = [line for line in proc.stderr.splitlines() if "column 'paid'" in line]
        self.assertIn("column 'paid': 500 values with labels not seen in training", note)
        for text in pairs + [advice]:
            self.assertIn(text, note)
        summary = json.loads(proc.stdout)
        self.assertEqual(summary["unknown_categories"], {"paid": 500})  # still unknown: matched exactly

        proc = run("eval", model, new, "--device", "cpu")
        [note] = [line for line in proc.stderr.splitlines() if "column 'paid'" in line]
        self.assertTrue(note.startswith("eval: note: column 'paid': 500 values"), note)
        for text in pairs + [advice]:
            self.assertIn(text, note)

        proc = run("drift", model, new, "--device", "cpu", check=False)
        self.assertIn(proc.returncode, (0, 3), proc.stderr)
        [note] = [line for line in proc.stdout.splitlines() if line.startswith("note: column 'paid'")]
        for text in pairs + [advice]:
            self.assertIn(text, note)

        # Labels that are no training label spelled otherwise get the note as it was.
        other = self.path("other.h5")
        run("import", self.write_csv("other.csv", self.paid_frame(300, 3, {True: "True", False: "unknown"})),
            other, "--quiet")
        for command in (["score", model, other, "--out", self.path("o.csv")], ["eval", model, other]):
            proc = run(*command, "--device", "cpu")
            self.assertIn("column 'paid'", proc.stderr)
            self.assertNotIn("in training, apart from", proc.stderr)
        self.assertNotIn("in training, apart from", run("drift", model, other, "--device", "cpu", check=False).stdout)

    def test_labels_with_spaces_around_them_are_named_by_score(self):
        # `lathe import` trims spaces; an HDF5 file written by h5py keeps them ("yes ").
        def write(name, df):
            path = self.path(name)
            with h5py.File(path, "w") as f:
                f["x"] = df["x"].to_numpy()
                f.create_dataset("paid", data=df["paid"].tolist(), dtype=h5py.string_dtype())
                f["y"] = df["y"].to_numpy().astype(np.float64)
            return path
        train = write("train.h5", self.paid_frame(ROWS, 1, {True: "yes", False: "no"}))
        new_df = self.paid_frame(400, 2, {True: "yes ", False: "No"})
        new = write("new.h5", new_df)
        model = self.path("m.h5")
        run("train", train, "--label", "y", "--task", "binary", "--epochs", "2", "--out", model, "--quiet")
        proc = run("score", model, new, "--out", self.path("s.csv"), "--device", "cpu")
        spaced, cased = int((new_df["paid"] == "yes ").sum()), int((new_df["paid"] == "No").sum())
        self.assertIn(f"'yes ' ({spaced} rows) is 'yes' in training, apart from surrounding spaces", proc.stderr)
        self.assertIn(f"'No' ({cased} rows) is 'no' in training, apart from letter case", proc.stderr)


if __name__ == "__main__":
    unittest.main()
