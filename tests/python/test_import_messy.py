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
  when training, with --drop (before, only `lathe score`'s unknown labels hinted at it);
- a new export that spells a feature's labels otherwise than the training data ("TRUE" for "True",
  "yes " for "yes") is still scored with them unknown, and `lathe score`, `eval` and `drift` say
  which training label each one is (before, the note said only "labels not seen in training").
"""
import json
import os
import shutil
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
