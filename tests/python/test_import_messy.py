"""CSV files as spreadsheets, databases and BI tools export them, through `lathe import` and
`lathe train`: what a user is told where a quirk of the export changes what Lathe reads.

- amounts written with formatting ("$1,234", "1,234.50", "12.5%", "(45.00)", "3,14") are text to
  Lathe, as to pandas.read_csv without thousands= and decimal=: the column is imported as
  categorical, and a note names it, the first such value and how to write it (before, a column of
  currency amounts became one label per amount without a word, and a half-formatted one got advice,
  --na-values or --skip-bad-rows, that would lose those values);
- a UTF-16 file (Excel's "Unicode Text") is named as UTF-16, with the iconv command that converts
  it (before, the error advised converting from Latin-1);
- a label spelled in several letter cases ("Yes", "yes", "YES") is named as such when a binary task
  finds more than two classes, and noted when a multiclass task trains them apart;
- a categorical feature with a label per row (an id, a timestamp, amounts read as text) is noted
  when training, with --drop (before, only `lathe score`'s unknown labels hinted at it).
"""
import os
import shutil
import tempfile
import unittest

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
        self.assertEqual(len(full), 2, notes)
        self.assertIn(f"column 'currency' was imported as categorical, though 100.00% of its {ROWS} non-missing "
                      f"values are numbers, {ROWS} of them written with formatting (the first "
                      f"'{df['currency'][0]}' on line 2)", full[0])
        for note in full:
            self.assertIn("write such values as plain numbers", note)
        self.assertNotIn("--na-values", proc.stderr)
        self.assertNotIn("--skip-bad-rows", proc.stderr)
        self.assertIn("lathe import: note: the same note for 4 more: percent, thousands, negatives, decimal_comma",
                      notes)
        self.assertIn("column 'euro'", full[1])
        for name in ("city", "day", "version"):
            self.assertFalse([n for n in notes if f"column '{name}'" in n], notes)

    def test_forced_numeric_formatted_value_says_how_to_write_it(self):
        df = pd.DataFrame({"amount": ["12.5", "$1,234", "7"], "y": [0, 1, 0]})
        proc = attempt("import", self.write_csv("forced.csv", df), self.path("forced.h5"), "--numeric", "amount")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("line 3, column 'amount': '$1,234' is not a number (it is written with a currency sign, "
                      "thousands separators", proc.stderr)
        self.assertIn("write such values as plain numbers", proc.stderr)

    def test_utf16_file_is_named_as_utf16(self):
        df = pd.DataFrame({"a": [1.5, 2.5], "b": ["x", "y"]})
        csv = self.write_csv("excel.csv", df, encoding="utf-16")
        proc = attempt("import", csv, self.path("excel.h5"))
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("excel.csv: is UTF-16 text (it starts with a UTF-16 byte order mark)", proc.stderr)
        self.assertIn("iconv -f UTF-16 -t UTF-8", proc.stderr)
        self.assertNotIn("latin1", proc.stderr)
        self.assertFalse(os.path.exists(self.path("excel.h5")))

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


if __name__ == "__main__":
    unittest.main()
