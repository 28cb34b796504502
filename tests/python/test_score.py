"""`lathe score` end to end: predictions consistent with `lathe eval` (metrics recomputed from the
scored output with scikit-learn), the output contract (columns, types, --id), h5 and CSV agreeing,
several inputs with bad ones among them, the schema check before any output, and `lathe bench score`."""
import glob
import json
import os
import shutil
import tempfile
import unittest

import h5py
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, roc_auc_score

from lathe_run import SHARED, run


def text(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def read_columnar(path):
    """A Lathe columnar file as a DataFrame, categorical columns as their labels (None = missing)."""
    with h5py.File(path) as f:
        names = text(f.attrs["lathe_columns"])
        out = {}
        for name in names:
            values = f[name][:]
            if "categories" in f[name].attrs:
                labels = text(f[name].attrs["categories"])
                out[name] = [labels[c] if c >= 0 else None for c in values]
            else:
                out[name] = values
        return pd.DataFrame(out, columns=names), {n: f[n].dtype for n in names}


def write_columnar(path, columns):
    """Writes Lathe's columnar layout with h5py: columns is a list of (name, values, labels or None)."""
    with h5py.File(path, "w") as f:
        for name, values, labels in columns:
            d = f.create_dataset(name, data=values, chunks=True)
            if labels is not None:
                d.attrs["categories"] = labels
        f.attrs["lathe_columns"] = [name for name, _, _ in columns]


class ScoreTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="lathe-score-class-")
        cls.telco = os.path.join(cls.base, "telco.h5")
        run("import", os.path.join(SHARED, "telco_churn.csv"), cls.telco, "--quiet")
        cls.telco_model = os.path.join(cls.base, "telco_model.h5")
        run("train", cls.telco, "--label", "churn", "--task", "binary", "--epochs", "4", "--device", "cpu",
            "--out", cls.telco_model, "--quiet")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.base, ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lathe-score-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def score(self, model, *inputs_and_flags, check=True):
        proc = run("score", model, *inputs_and_flags, "--device", "cpu", check=check)
        summary = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else None
        return proc, summary

    def evaluate(self, model, data):
        return json.loads(run("eval", model, data, "--json", "--device", "cpu").stdout)

    def telco_columns(self):
        """The telco table as (name, values, labels) columns, as `lathe import` stored it."""
        with h5py.File(self.telco) as f:
            names = text(f.attrs["lathe_columns"])
            return [(n, f[n][:], text(f[n].attrs["categories"]) if "categories" in f[n].attrs else None)
                    for n in names]

    def test_binary_scores_reproduce_eval_metrics(self):
        out = self.path("telco_scored.h5")
        _, summary = self.score(self.telco_model, self.telco, "--out", out, "--quiet")
        self.assertEqual(summary["rows"], 7043)
        self.assertEqual(summary["failed"], 0)
        scored, dtypes = read_columnar(out)
        self.assertEqual(list(scored.columns), ["probability", "predicted_class"])
        self.assertEqual(dtypes["probability"], np.float32)
        with h5py.File(self.telco_model) as f:
            classes = text(f.attrs["classes"])
        with h5py.File(out) as f:
            self.assertEqual(text(f["predicted_class"].attrs["categories"]), classes)
        truth = pd.read_csv(os.path.join(SHARED, "telco_churn.csv"))["churn"]
        y = (truth == classes[1]).astype(int).values
        p = scored["probability"].values.astype(np.float64)
        metrics = self.evaluate(self.telco_model, self.telco)
        self.assertAlmostEqual(roc_auc_score(y, p), metrics["auc"], delta=1e-6)
        self.assertAlmostEqual(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)), metrics["logloss"], delta=1e-4)
        self.assertAlmostEqual(accuracy_score(truth, scored["predicted_class"]), metrics["accuracy"], delta=1e-9)
        # predicted_class is the positive class exactly when P(positive) > 0.5
        self.assertTrue(((p > 0.5) == (scored["predicted_class"] == classes[1])).all())
        # `lathe eval` keeps its top-level metrics and adds the training run's validation metrics.
        for key in ["logloss", "accuracy", "auc", "pr_auc"]:
            self.assertIn(key, metrics)
            self.assertIn(key, metrics["training_valid"])
        self.assertGreater(metrics["training"]["valid_rows"], 1000)

    def test_id_passes_through_and_csv_agrees_with_h5(self):
        df = pd.read_csv(os.path.join(SHARED, "telco_churn.csv"))
        rows = len(df)
        customer = [f"C-{i:05d},x" if i % 7 == 0 else f"C-{i:05d}" for i in range(rows)]  # commas get quoted
        account = np.arange(rows, dtype=np.int64) * 1000003 + 9_000_000_000  # beyond float32's exact integers
        df.insert(0, "account", account)
        df.insert(0, "customer", customer)
        csv = self.path("with_ids.csv")
        df.to_csv(csv, index=False)
        data = self.path("with_ids.h5")
        run("import", csv, data, "--categorical", "customer", "--quiet")
        h5_out, csv_out = self.path("ids.h5"), self.path("ids.csv")
        self.score(self.telco_model, data, "--out", h5_out, "--id", "customer", "--quiet")
        self.score(self.telco_model, data, "--out", csv_out, "--id", "customer", "--quiet")  # format from the extension
        h5_scored, _ = read_columnar(h5_out)
        csv_scored = pd.read_csv(csv_out, keep_default_na=False)
        self.assertEqual(list(h5_scored.columns), ["customer", "probability", "predicted_class"])
        self.assertEqual(list(csv_scored.columns), ["customer", "probability", "predicted_class"])
        self.assertEqual(list(h5_scored["customer"]), customer)
        self.assertEqual(list(csv_scored["customer"]), customer)
        # The note on columns the model does not read leaves out the one passed through.
        proc, _ = self.score(self.telco_model, data, "--out", h5_out, "--id", "customer")
        ignored = [line for line in proc.stderr.splitlines() if "not used by the model" in line]
        self.assertEqual(len(ignored), 1, proc.stderr)
        self.assertIn("'account'", ignored[0])
        self.assertNotIn("'customer'", ignored[0])
        # %.9g in the CSV reads back as the same float32 as the h5 value.
        np.testing.assert_array_equal(csv_scored["probability"].values.astype(np.float32), h5_scored["probability"].values)
        self.assertEqual(list(csv_scored["predicted_class"]), list(h5_scored["predicted_class"]))
        # Scores equal those of the table without the id columns.
        plain = self.path("plain.h5")
        self.score(self.telco_model, self.telco, "--out", plain, "--quiet")
        np.testing.assert_array_equal(read_columnar(plain)[0]["probability"].values, h5_scored["probability"].values)
        # A numeric id passes through exactly, in h5 (float64) and CSV (integer text).
        self.score(self.telco_model, data, "--out", h5_out, "--id", "account", "--quiet")
        self.score(self.telco_model, data, "--out", csv_out, "--id", "account", "--format", "csv", "--quiet")
        h5_scored, dtypes = read_columnar(h5_out)
        self.assertEqual(dtypes["account"], np.float64)
        np.testing.assert_array_equal(h5_scored["account"].values.astype(np.int64), account)
        csv_scored = pd.read_csv(csv_out)
        np.testing.assert_array_equal(csv_scored["account"].values, account)

    def test_integer_ids_from_a_csv_are_written_in_full_and_exactly(self):
        # Round float64 ids (1e12, 1e5) used to come out as 1e+12 and 1e+05 in CSV, and ids beyond 2^53
        # were rounded at import; now `lathe import` stores the latter as int64 and both pass through
        # as the source's text, in CSV and in h5.
        df = pd.read_csv(os.path.join(SHARED, "telco_churn.csv"))
        rows = len(df)
        row_id = 10**12 + np.arange(rows, dtype=np.int64)
        row_id[7] = 100000
        big_id = [9007199254740993, 9007199254740995, 1234567890123456789, 100000, 5] + \
                 [2**62 + 3 * i for i in range(rows - 5)]
        df.insert(0, "row_id", row_id)
        df.insert(0, "big_id", big_id)
        csv = self.path("ids.csv")
        df.to_csv(csv, index=False)
        data = self.path("ids.h5")
        imported = run("import", csv, data, "--quiet")
        self.assertNotIn("note", imported.stderr)
        self.assertIn("1 of them int64", imported.stdout)
        with h5py.File(data) as f:
            self.assertEqual(f["big_id"].dtype, np.int64)
            self.assertEqual(f["row_id"].dtype, np.float64)  # float64 holds these exactly: as before
            self.assertEqual(list(f["big_id"][:]), big_id)
        source = pd.read_csv(csv, dtype=str)
        for id_column in ("row_id", "big_id"):
            with self.subTest(id=id_column):
                csv_out, h5_out = self.path(id_column + ".csv"), self.path(id_column + ".h5")
                self.score(self.telco_model, data, "--out", csv_out, "--id", id_column, "--quiet")
                self.score(self.telco_model, data, "--out", h5_out, "--id", id_column, "--quiet")
                scored = pd.read_csv(csv_out, dtype=str)
                self.assertEqual(list(scored[id_column]), list(source[id_column]))  # joins on the text
                self.assertEqual(scored[id_column][0 if id_column == "row_id" else 3],
                                 "1000000000000" if id_column == "row_id" else "100000")
                h5_scored, dtypes = read_columnar(h5_out)
                self.assertEqual(dtypes[id_column], np.int64 if id_column == "big_id" else np.float64)
                self.assertEqual([int(v) for v in h5_scored[id_column]], [int(v) for v in source[id_column]])

    def test_multiclass_and_regression_columns(self):
        penguins = self.path("penguins.h5")
        run("import", os.path.join(SHARED, "penguins.csv"), penguins, "--quiet")
        model = self.path("penguins_model.h5")
        run("train", penguins, "--label", "species", "--task", "multiclass", "--epochs", "30", "--batch", "32",
            "--device", "cpu", "--out", model, "--quiet")
        out = self.path("penguins_scored.csv")
        _, summary = self.score(model, penguins, "--out", out, "--quiet")
        scored = pd.read_csv(out)
        classes = ["Adelie", "Chinstrap", "Gentoo"]
        self.assertEqual(list(scored.columns), [f"probability_{c}" for c in classes] + ["predicted_class"])
        probabilities = scored[[f"probability_{c}" for c in classes]].values
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(np.array(classes)[probabilities.argmax(axis=1)], scored["predicted_class"].values)
        truth = pd.read_csv(os.path.join(SHARED, "penguins.csv"))["species"]
        metrics = self.evaluate(model, penguins)
        self.assertAlmostEqual(accuracy_score(truth, scored["predicted_class"]), metrics["accuracy"], delta=1e-9)
        # penguins has missing measurements: imputed and counted
        self.assertGreater(sum(summary["imputed"].values()), 0)

        diamonds = self.path("diamonds.h5")
        run("import", os.path.join(SHARED, "diamonds.csv"), diamonds, "--quiet")
        model = self.path("diamonds_model.h5")
        run("train", diamonds, "--label", "price", "--task", "regression", "--epochs", "3", "--device", "cpu",
            "--out", model, "--quiet")
        out = self.path("diamonds_scored.h5")
        self.score(model, diamonds, "--out", out, "--block-rows", "5000", "--quiet")
        scored, dtypes = read_columnar(out)
        self.assertEqual(list(scored.columns), ["prediction"])
        price = pd.read_csv(os.path.join(SHARED, "diamonds.csv"))["price"].values
        rmse = np.sqrt(mean_squared_error(price, scored["prediction"].values.astype(np.float64)))
        metrics = self.evaluate(model, diamonds)
        self.assertAlmostEqual(rmse, metrics["rmse"], delta=1e-6 * metrics["rmse"])

    def test_a_class_label_with_a_slash_scores_to_hdf5_and_csv(self):
        # HDF5 reads '/' in a dataset name as a path: probability_a/b could not be written, so a
        # model with such a class could be trained but not scored to HDF5.
        rng = np.random.default_rng(3)
        x = rng.normal(size=600)
        # "a%2Fb" is a label too: written %25 for its '%', it keeps a column apart from "a/b"'s.
        label = np.where(x < -0.3, "a/b", np.where(x < 0.1, "c", np.where(x < 0.5, "a%2Fb", "d/e/f")))
        csv = self.path("slash.csv")
        pd.DataFrame({"x": x, "y": label}).to_csv(csv, index=False)
        data = self.path("slash.h5")
        run("import", csv, data, "--quiet")
        model = self.path("slash_model.h5")
        run("train", data, "--label", "y", "--task", "multiclass", "--device", "cpu", "--out", model, "--quiet")
        h5_out, csv_out = self.path("slash_scored.h5"), self.path("slash_scored.csv")
        self.score(model, data, "--out", h5_out, "--quiet")
        self.score(model, data, "--out", csv_out, "--quiet")
        scored_h5, _ = read_columnar(h5_out)
        scored_csv = pd.read_csv(csv_out)
        self.assertEqual(list(scored_csv.columns), ["probability_a%2Fb", "probability_a/b", "probability_c",
                                                    "probability_d/e/f", "predicted_class"])
        self.assertEqual(list(scored_h5.columns), ["probability_a%252Fb", "probability_a%2Fb", "probability_c",
                                                   "probability_d%2Fe%2Ff", "predicted_class"])
        np.testing.assert_allclose(scored_h5["probability_a%2Fb"].values, scored_csv["probability_a/b"].values, atol=1e-6)
        self.assertEqual(list(scored_h5["predicted_class"]), list(scored_csv["predicted_class"]))
        self.assertIn("d/e/f", set(scored_csv["predicted_class"]))

    def test_several_inputs_score_the_good_ones_and_fail_at_the_end(self):
        columns = self.telco_columns()
        good_a, good_b = self.path("a.h5"), self.path("b.h5")
        shutil.copy(self.telco, good_a)
        write_columnar(good_b, [(n, v[:500], l) for n, v, l in columns])
        missing_column = self.path("no_tenure.h5")
        write_columnar(missing_column, [(n, v, l) for n, v, l in columns if n != "tenure"])
        not_hdf5 = self.path("garbage.h5")
        with open(not_hdf5, "w") as f:
            f.write("not an HDF5 file\n")
        infinite = self.path("infinite.h5")
        bad = [(n, v.copy(), l) for n, v, l in columns]
        charges = next(v for n, v, l in bad if n == "monthly_charges")
        charges[6000] = np.inf
        write_columnar(infinite, bad)
        out = self.path("scored")
        proc, summary = self.score(self.telco_model, good_a, missing_column, not_hdf5, infinite, good_b, "--out", out,
                                   "--block-rows", "1024", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertEqual(sorted(os.listdir(out)), ["a.h5", "b.h5"])
        self.assertEqual(read_columnar(os.path.join(out, "b.h5"))[0].shape[0], 500)
        self.assertIn("no_tenure.h5", proc.stderr)
        self.assertIn("'tenure'", proc.stderr)
        self.assertIn("garbage.h5", proc.stderr)
        self.assertIn("infinite.h5", proc.stderr)
        self.assertIn("'monthly_charges'", proc.stderr)
        self.assertIn("row 6001", proc.stderr)
        self.assertEqual(summary["failed"], 3)
        self.assertEqual(summary["rows"], 7043 + 500)
        self.assertEqual([f["input"] for f in summary["files"]], [good_a, missing_column, not_hdf5, infinite, good_b])

    def test_several_inputs_into_a_name_with_a_file_extension_is_noted(self):
        # `--out scores.csv` with a glob that matched two files makes a folder `scores.csv` of HDF5
        # files (README): said, since whoever wrote it meant one file.
        small_a, small_b = self.path("a.h5"), self.path("b.h5")
        write_columnar(small_a, [(n, v[:50], l) for n, v, l in self.telco_columns()])
        shutil.copy(small_a, small_b)
        out = self.path("scores.csv")
        proc, summary = self.score(self.telco_model, small_a, small_b, "--out", out)
        self.assertTrue(os.path.isdir(out))
        self.assertEqual(sorted(os.listdir(out)), ["a.h5", "b.h5"])
        note = f"--out {out} is named as a file, but with 2 inputs it is a folder: created, with one output per input"
        self.assertIn("note: " + note, proc.stderr)
        self.assertTrue(any(n.startswith(note) for n in summary["notes"]), summary)
        # A folder without a file's extension is what several inputs take: no note.
        proc, summary = self.score(self.telco_model, small_a, small_b, "--out", self.path("scores"))
        self.assertNotIn("is named as a file", proc.stderr)

    def test_an_output_name_that_is_neither_h5_nor_csv_is_noted(self):
        # --out x.txt without --format is written as HDF5 (the documented default): a note says so.
        small = self.path("small.h5")
        write_columnar(small, [(n, v[:50], l) for n, v, l in self.telco_columns()])
        for name in ["scores.txt", "scores"]:
            out = self.path(name)
            proc, summary = self.score(self.telco_model, small, "--out", out)
            with open(out, "rb") as f:
                self.assertEqual(f.read(8), b"\x89HDF\r\n\x1a\n", name)
            self.assertIn("note: --out " + out + " is written as HDF5", proc.stderr)
            self.assertIn("--format csv", proc.stderr)
            self.assertTrue(any("written as HDF5" in n for n in summary["notes"]), summary)
            # --quiet keeps stderr quiet; the JSON still has the note.
            proc, summary = self.score(self.telco_model, small, "--out", out, "--quiet")
            self.assertEqual(proc.stderr, "")
            self.assertTrue(any("written as HDF5" in n for n in summary["notes"]), summary)
        # No note when the name or --format says what is written.
        for name, flags in [("s.h5", []), ("s.hdf5", []), ("s.hdf", []), ("s.csv", []), ("s.txt", ["--format", "h5"]),
                            ("t.txt", ["--format", "csv"])]:
            proc, summary = self.score(self.telco_model, small, "--out", self.path(name), *flags)
            self.assertNotIn("written as HDF5", proc.stderr, name)
            self.assertFalse([n for n in summary["notes"] if "written as HDF5" in n], name)

    def test_the_format_follows_the_extension_in_any_case(self):
        # --out scores.CSV (a name made on Windows) was written as HDF5, with a note.
        small = self.path("small.h5")
        write_columnar(small, [(n, v[:50], l) for n, v, l in self.telco_columns()])
        for name, csv in [("s.CSV", True), ("s.Csv", True), ("s.H5", False), ("s.HDF5", False), ("s.Hdf", False)]:
            with self.subTest(name=name):
                out = self.path(name)
                proc, summary = self.score(self.telco_model, small, "--out", out)
                self.assertEqual(summary["format"], "csv" if csv else "h5")
                with open(out, "rb") as f:
                    head = f.read(8)
                if csv:
                    self.assertEqual(len(pd.read_csv(out)), 50)
                else:
                    self.assertEqual(head, b"\x89HDF\r\n\x1a\n")
                self.assertNotIn("written as HDF5", proc.stderr)
                self.assertFalse([n for n in summary["notes"] if "written as HDF5" in n], name)

    def test_a_format_that_contradicts_the_extension_is_noted(self):
        # --out s.csv --format h5 wrote HDF5 into a file named .csv (and s.h5 --format csv CSV into
        # .h5) without a word: pandas.read_csv on it fails. The format is obeyed, with a note.
        small = self.path("small.h5")
        write_columnar(small, [(n, v[:50], l) for n, v, l in self.telco_columns()])
        for name, fmt, written in [("s.csv", "h5", "HDF5"), ("s.CSV", "h5", "HDF5"), ("s.h5", "csv", "CSV"),
                                   ("s.hdf5", "csv", "CSV")]:
            with self.subTest(name=name, format=fmt):
                out = self.path(name)
                proc, summary = self.score(self.telco_model, small, "--out", out, "--format", fmt)
                with open(out, "rb") as f:
                    self.assertEqual(f.read(8) == b"\x89HDF\r\n\x1a\n", fmt == "h5")
                note = f"--out {out} is written as {written} (--format {fmt}), although its name ends in"
                self.assertIn("note: " + note, proc.stderr)
                self.assertTrue(any(note in n for n in summary["notes"]), summary)
        for name, fmt in [("t.h5", "h5"), ("t.csv", "csv"), ("t.txt", "csv")]:
            proc, summary = self.score(self.telco_model, small, "--out", self.path(name), "--format", fmt)
            self.assertNotIn("although its name ends in", proc.stderr, name)

    def test_an_output_folder_never_replaces_a_file_that_holds_no_scores(self):
        # `lathe import a.csv a.h5` then `lathe score M a.h5 b.h5 --out . --format csv` put the scores
        # in place of a.csv and b.csv, the raw data, without a word. Refused before anything is
        # written; scores of an earlier run in that folder are still replaced.
        data = pd.DataFrame({n: (v[:40] if l is None else [l[c] if c >= 0 else None for c in v[:40]])
                             for n, v, l in self.telco_columns()})
        raw = {}
        for name in ["a", "b"]:
            data.to_csv(self.path(name + ".csv"), index=False)
            run("import", self.path(name + ".csv"), self.path(name + ".h5"), "--quiet")
            with open(self.path(name + ".csv"), "rb") as f:
                raw[name] = f.read()
        inputs = [self.path("a.h5"), self.path("b.h5")]
        for flags in [["--format", "csv"], ["--format", "csv", "--id", "tenure"]]:
            proc, _ = self.score(self.telco_model, *inputs, "--out", self.dir, *flags, check=False)
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertIn(f"the output of {inputs[0]} would replace {os.path.join(self.dir, 'a.csv')}", proc.stderr)
            self.assertIn("give --out another folder", proc.stderr)
            for name in ["a", "b"]:
                with open(self.path(name + ".csv"), "rb") as f:
                    self.assertEqual(f.read(), raw[name], name)
        # One input into an existing folder takes its name there too.
        proc, _ = self.score(self.telco_model, inputs[0], "--out", self.dir, "--format", "csv", check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        # An HDF5 output over a table of data (other.hdf5 -> other.h5 beside a table other.h5).
        shutil.copy(self.path("a.h5"), self.path("other.hdf5"))
        shutil.copy(self.path("a.h5"), self.path("other.h5"))
        folder = self.path("scores")
        os.mkdir(folder)
        shutil.copy(self.path("a.h5"), os.path.join(folder, "other.h5"))
        proc, _ = self.score(self.telco_model, self.path("other.hdf5"), "--out", folder, check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("another file of that name", proc.stderr)
        # Earlier scores, CSV (any --id) or HDF5, are replaced as before.
        os.remove(os.path.join(folder, "other.h5"))
        for flags in [[], ["--format", "csv", "--id", "tenure"], ["--format", "csv"]]:
            proc, summary = self.score(self.telco_model, *inputs, "--out", folder, *flags)
            self.assertEqual(summary["failed"], 0)
            self.score(self.telco_model, *inputs, "--out", folder, *flags)
        self.assertEqual(len(pd.read_csv(os.path.join(folder, "a.csv"))), 40)
        # Scores of the other format at an output's name (HDF5 scores named a.csv) are refused, as
        # for an output named in full; an empty file (nothing to lose) is replaced.
        shutil.copy(os.path.join(folder, "a.h5"), os.path.join(folder, "a.csv"))
        proc, _ = self.score(self.telco_model, *inputs, "--out", folder, "--format", "csv", check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(f"would replace {os.path.join(folder, 'a.csv')}, which holds scores written as HDF5, not in "
                      "--format csv; it is left as it is", proc.stderr)
        open(os.path.join(folder, "a.csv"), "w").close()
        self.score(self.telco_model, *inputs, "--out", folder, "--format", "csv")
        self.assertEqual(len(pd.read_csv(os.path.join(folder, "a.csv"))), 40)

    def test_an_output_file_never_replaces_the_file_its_input_was_made_from(self):
        # `lathe import a.csv a.h5`, then `lathe score M a.h5 --out a.csv` put the scores in place of
        # the raw CSV (an output folder was refused so, 547d706; a file named in full was not), and
        # `--out` a model file replaced the model. Refused before anything is scored; a file of
        # scores is still replaced.
        data = pd.DataFrame({n: (v[:40] if l is None else [l[c] if c >= 0 else None for c in v[:40]])
                             for n, v, l in self.telco_columns()})
        data.to_csv(self.path("a.csv"), index=False)
        run("import", self.path("a.csv"), self.path("a.h5"), "--quiet")
        run("prepare", self.path("a.h5"), self.path("p.h5"), "--from", self.telco_model, "--quiet")
        with open(self.path("a.csv"), "rb") as f:
            raw = f.read()
        for spelling, flags in [(self.path("a.csv"), []), (self.path("a.csv"), ["--id", "tenure"]),
                                (os.path.join(self.dir, ".", "a.csv"), ["--format", "csv"])]:
            proc, _ = self.score(self.telco_model, self.path("a.h5"), "--out", spelling, *flags, check=False)
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertIn(f"--out {spelling} is {self.path('a.csv')}, the file {self.path('a.h5')} was imported "
                          "from; write the scores elsewhere", proc.stderr)
            with open(self.path("a.csv"), "rb") as f:
                self.assertEqual(f.read(), raw)
        # Scores of a prepared file over the file it was prepared from.
        with open(self.path("a.h5"), "rb") as f:
            table = f.read()
        proc, _ = self.score(self.telco_model, self.path("p.h5"), "--out", self.path("a.h5"), check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(f"the file {self.path('p.h5')} was prepared from", proc.stderr)
        with open(self.path("a.h5"), "rb") as f:
            self.assertEqual(f.read(), table)
        # Another model file is no output either (exit 1: the file is what it is).
        shutil.copy(self.telco_model, self.path("old_model.h5"))
        proc, _ = self.score(self.telco_model, self.path("a.h5"), "--out", self.path("old_model.h5"), check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("is a model file written by `lathe train`, which the scores would replace", proc.stderr)
        # Earlier scores, CSV or HDF5, are replaced as before; so is a CSV of another name.
        for name in ["s.csv", "s.h5", "s.csv", "s.h5"]:
            _, summary = self.score(self.telco_model, self.path("a.h5"), "--out", self.path(name), "--quiet")
            self.assertEqual(summary["failed"], 0)

    def test_data_given_as_the_model_says_the_model_comes_first(self):
        # `lathe score DATA.h5 MODEL.h5` said "not a Lathe model file (no lathe_model_format_version)",
        # where a model given as data says what goes where.
        proc, _ = self.score(self.telco, self.telco_model, "--out", self.path("s.csv"), check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn(f"{self.telco}: is a table of data, not a model file written by `lathe train`", proc.stderr)
        self.assertIn("`lathe score MODEL.h5 DATA.h5`", proc.stderr)
        self.assertFalse(os.path.exists(self.path("s.csv")))
        # A file of scores given as the model names the model it was scored with.
        scores = self.path("scores.h5")
        self.score(self.telco_model, self.telco, "--out", scores)
        for command in [["score", scores, self.telco, "--out", self.path("t.csv")], ["eval", scores, self.telco],
                        ["drift", scores, self.telco], ["export", scores, "--onnx", self.path("m.onnx")]]:
            proc = run(*command, check=False)
            self.assertEqual(proc.returncode, 1, command)
            self.assertIn(f"{scores}: holds the scores `lathe score` wrote with the model {self.telco_model}, "
                          "not a model file", proc.stderr)
        # Another HDF5 file that is no model still says what a model is.
        other = self.path("plain.h5")
        with h5py.File(other, "w") as f:
            f["x"] = np.arange(3.0)
        proc = run("eval", other, self.telco, check=False)
        self.assertIn(f"{other}: not a Lathe model file (no lathe_model_format_version); a model is the --out of "
                      "`lathe train`", proc.stderr)

    def test_an_output_given_as_the_last_argument_is_named_without_out(self):
        # `lathe import IN OUT` and `lathe prepare IN OUT` take their output last; `lathe score M D
        # s.csv` said only "--out is required", with s.csv read as a second table.
        for last in [self.path("s.csv"), self.path("new.h5"), self.telco_csv_copy()]:
            with self.subTest(last=last):
                proc = run("score", self.telco_model, self.telco, last, check=False)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertEqual(proc.stderr.strip(), f"lathe: error: --out is required ({last}, the last data argument, "
                                 f"is read as a table to score; if it is the output, give --out {last}); see "
                                 "`lathe score --help`")
        # One input, or a last input that is an existing table: nothing to point at.
        for args in [[self.telco], [self.telco, self.telco]]:
            proc = run("score", self.telco_model, *args, check=False)
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertEqual(proc.stderr.strip(), "lathe: error: --out is required; see `lathe score --help`")
        self.assertFalse(os.path.exists(self.path("s.csv")))

    def telco_csv_copy(self):
        """An existing CSV file (an earlier scores file, say) in the test's folder."""
        path = self.path("earlier.csv")
        with open(path, "w") as f:
            f.write("probability,predicted_class\n0.5,Yes\n")
        return path

    def test_eval_of_rows_without_the_label_points_to_score(self):
        # The month to be scored has no label: eval named the missing column only.
        df = pd.read_csv(os.path.join(SHARED, "telco_churn.csv")).drop(columns=["churn"]).head(50)
        csv = self.path("month.csv")
        df.to_csv(csv, index=False)
        month = self.path("month.h5")
        run("import", csv, month, "--quiet")
        proc = run("eval", self.telco_model, month, check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(f"the model's label: {month} has no column 'churn'", proc.stderr)
        self.assertIn(f"(eval measures the model against the label; `lathe score {self.telco_model} {month} "
                      "--out FILE` predicts rows without one)", proc.stderr)

    def test_missing_column_errors_before_any_output(self):
        columns = self.telco_columns()
        data = self.path("no_contract.h5")
        write_columnar(data, [(n, v, l) for n, v, l in columns if n != "contract"])
        out = self.path("out.h5")
        self.score(self.telco_model, self.telco, "--out", out)  # earlier scores: a file score may replace
        with open(out, "rb") as f:
            earlier = f.read()
        proc, _ = self.score(self.telco_model, data, "--out", out, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("'contract'", proc.stderr)
        self.assertEqual(proc.stdout, "")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), earlier)
        self.assertEqual(sorted(os.listdir(self.dir)), ["no_contract.h5", "out.h5"])  # no temporary left
        # A changed type is refused the same way, naming the column.
        retyped = self.path("retyped.h5")
        write_columnar(retyped, [(n, (v.astype(np.int32) if n == "tenure" else v),
                                  ([f"t{i}" for i in range(100)] if n == "tenure" else l)) for n, v, l in columns])
        proc, _ = self.score(self.telco_model, retyped, "--out", self.path("retyped_out.h5"), check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("'tenure'", proc.stderr)
        self.assertFalse(glob.glob(self.path("retyped_out*")))
        self.assertFalse(glob.glob(self.path(".retyped_out*")))

    def test_a_file_of_scores_given_as_data_is_named_so(self):
        # Review: scoring `lathe score`'s own output said only that an input column is missing.
        scores = self.path("scores.h5")
        self.score(self.telco_model, self.telco, "--out", scores)
        for data in (scores, self.path("scores.csv.h5")):
            if data != scores:  # a CSV of scores with an id, imported
                csv = self.path("scores.csv")
                self.score(self.telco_model, self.telco, "--out", csv, "--id", "tenure")
                run("import", csv, data, "--quiet")
            proc, _ = self.score(self.telco_model, data, "--out", self.path("again.csv"), check=False)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn("these are the columns `lathe score` writes: is this a file of scores? give the data it "
                          "scored", proc.stderr)
        proc, _ = self.score(self.telco_model, self.path("no_such.h5"), "--out", self.path("x.csv"), check=False)
        self.assertNotIn("file of scores", proc.stderr)

    def test_column_order_labels_extra_columns_and_imputation(self):
        columns = self.telco_columns()
        baseline = self.path("baseline.h5")
        self.score(self.telco_model, self.telco, "--out", baseline, "--quiet")
        expected = read_columnar(baseline)[0]
        # Columns reversed, every categorical column's labels listed in reverse (other codes), an
        # extra column, and no label column.
        shuffled = [("extra_col", np.arange(len(columns[0][1]), dtype=np.float64), None)]
        for n, v, l in reversed(columns):
            if n == "churn":
                continue
            if l is not None:
                v = np.where(v >= 0, len(l) - 1 - v, -1).astype(np.int32)
                l = list(reversed(l))
            shuffled.append((n, v, l))
        data = self.path("shuffled.h5")
        write_columnar(data, shuffled)
        out = self.path("shuffled_scored.h5")
        _, summary = self.score(self.telco_model, data, "--out", out, "--quiet")
        got = read_columnar(out)[0]
        np.testing.assert_array_equal(got["probability"].values, expected["probability"].values)
        self.assertEqual(list(got["predicted_class"]), list(expected["predicted_class"]))
        self.assertTrue(any("extra_col" in note for note in summary["notes"]), summary["notes"])
        self.assertEqual(summary["imputed"], {"total_charges": 11})  # telco's 11 blank total_charges
        # Missing values in a column that had none in training: imputed as trained, counted, noted.
        holes = [(n, (np.where(np.arange(len(v)) % 10 == 0, np.nan, v) if n == "tenure" else v), l)
                 for n, v, l in columns]
        data = self.path("holes.h5")
        write_columnar(data, holes)
        proc, summary = self.score(self.telco_model, data, "--out", self.path("holes_scored.csv"))
        self.assertEqual(summary["imputed"], {"tenure": 705, "total_charges": 11})
        self.assertEqual(summary["files"][0]["imputed"], {"tenure": 705, "total_charges": 11})
        self.assertTrue(any("tenure" in note and "no missing values in training" in note for note in summary["notes"]))
        self.assertIn("rows/s", proc.stderr)

    def test_missing_categorical_values_are_counted_and_noted(self):
        # `contract` had no missing value in training: a missing one takes the missing-value slot,
        # and the summary counts it per column.
        columns = [(n, (np.where(np.arange(len(v)) % 100 == 0, -1, v).astype(np.int32) if n == "contract" else v), l)
                   for n, v, l in self.telco_columns()]
        data = self.path("missing_contract.h5")
        write_columnar(data, columns)
        proc, summary = self.score(self.telco_model, data, "--out", self.path("scored.h5"))
        self.assertEqual(summary["missing_categories"], {"contract": 71})
        self.assertEqual(summary["files"][0]["missing_categories"], {"contract": 71})
        self.assertTrue(any("contract" in note and "no missing values in training" in note for note in summary["notes"]),
                        summary["notes"])

    def test_new_labels_are_named_in_the_note(self):
        # QA: `lathe eval` and `lathe drift` named a few labels the model never saw ("such as 'Four
        # year'"); `lathe score`, where new data first arrives, gave only their count.
        columns = []
        for n, v, l in self.telco_columns():
            if n == "contract":
                l = l + ["Four year", "Five year"]
                v = np.where(np.arange(len(v)) % 50 == 0, len(l) - 2, np.where(np.arange(len(v)) % 50 == 1, len(l) - 1, v))
                v = v.astype(np.int32)
            columns.append((n, v, l))
        data = self.path("new_contracts.h5")
        write_columnar(data, columns)
        proc, summary = self.score(self.telco_model, data, "--out", self.path("scored.h5"))
        self.assertEqual(summary["unknown_categories"], {"contract": 282})
        note = next(note for note in summary["files"][0]["notes"] if "contract" in note)
        self.assertEqual(note, "column 'contract': 282 values with labels not seen in training, or too rare there to "
                               "have a slot (--min-category-count), were scored as unknown (such as 'Four year', "
                               "'Five year')")
        self.assertIn(f"score: {data}: note: {note}\n", proc.stderr)
        # Worded as eval words it.
        evaluated = run("eval", self.telco_model, data, "--device", "cpu")
        self.assertIn("eval: note: " + note, evaluated.stderr)

    def test_an_empty_input_gets_an_empty_output(self):
        # A batch job over an empty partition: the output exists, with the model's columns and no row.
        data = self.path("empty.h5")
        write_columnar(data, [(n, v[:0], l) for n, v, l in self.telco_columns()])
        for name in ["empty_scored.h5", "empty_scored.csv"]:
            out = self.path(name)
            _, summary = self.score(self.telco_model, data, "--out", out, "--id", "tenure", "--quiet")
            self.assertEqual(summary["rows"], 0)
            if name.endswith(".csv"):
                with open(out) as f:
                    self.assertEqual(f.read().strip(), "tenure,probability,predicted_class")
            else:
                with h5py.File(out) as f:
                    self.assertEqual(f["probability"].shape, (0,))
                    self.assertEqual(f["predicted_class"].shape, (0,))
        # A header-only CSV imports every column as numeric: scored all the same (no value
        # contradicts the model's types).
        header_only = self.path("header_only.csv")
        with open(header_only, "w") as f:
            f.write(",".join(n for n, _, _ in self.telco_columns()) + "\n")
        imported = self.path("header_only.h5")
        run("import", header_only, imported, "--quiet")
        _, summary = self.score(self.telco_model, imported, "--out", self.path("header_only_scored.csv"), "--quiet")
        self.assertEqual(summary["rows"], 0)
        # Evaluating it is still an error: there is nothing to measure.
        proc = run("eval", self.telco_model, data, "--device", "cpu", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("zero rows", proc.stderr)

    def test_an_empty_partitions_id_has_the_type_of_the_others(self):
        # A header-only CSV imports every column as float64: its output's id was float64 beside
        # the other partitions' categorical codes (or int64), and the outputs did not concatenate.
        # Among several inputs an empty one writes its id as the first input with rows holds it.
        df = pd.read_csv(os.path.join(SHARED, "telco_churn.csv")).iloc[:300]
        df.insert(0, "sid", [f"c{i:05d}" for i in range(len(df))])
        df.insert(1, "rid", np.arange(len(df), dtype=np.int64) + 2**60)  # int64: past float64's integers
        paths = {}
        for name, frame in (("a", df.iloc[:200]), ("empty", df.iloc[:0]), ("b", df.iloc[200:])):
            csv = self.path(name + ".csv")
            frame.to_csv(csv, index=False)
            paths[name] = self.path(name + ".h5")
            run("import", csv, paths[name], "--quiet")
        for id_column in ("sid", "rid"):
            out = self.path("scored_" + id_column)
            _, summary = self.score(self.telco_model, paths["empty"], paths["a"], paths["b"], "--id", id_column,
                                    "--format", "h5", "--out", out, "--quiet")
            self.assertEqual(summary["rows"], 300)
            layouts = {}
            for name in ("empty", "a", "b"):
                with h5py.File(os.path.join(out, name + ".h5")) as f:
                    layouts[name] = (f[id_column].dtype, "categories" in f[id_column].attrs)
            self.assertEqual(layouts["empty"], layouts["a"], (id_column, layouts))
            self.assertEqual(layouts["b"], layouts["a"], (id_column, layouts))
            frames = [read_columnar(os.path.join(out, name + ".h5"))[0] for name in ("a", "empty", "b")]
            joined = pd.concat(frames, ignore_index=True)
            self.assertEqual(len(joined), 300)
            self.assertEqual([str(v) for v in joined[id_column]], [str(v) for v in df[id_column]])
        # One input alone keeps its own type: there is no other to match.
        _, summary = self.score(self.telco_model, paths["empty"], "--id", "sid", "--out", self.path("alone.h5"),
                                "--quiet")
        self.assertEqual(summary["rows"], 0)

    def test_a_raw_data_model_refuses_a_file_of_another_preparation(self):
        # A file written by `lathe prepare` holds centered, scaled values: a model trained on raw
        # data would prepare them a second time.
        prepared = self.path("prepared.h5")
        run("prepare", self.telco, prepared, "--label", "churn", "--missing-indicators", "--quiet")
        out = self.path("scored.csv")
        proc, _ = self.score(self.telco_model, prepared, "--out", out, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("was written by `lathe prepare`", proc.stderr)
        self.assertIn("trained on raw data", proc.stderr)
        # It names the raw file the prepared one came from, not the prepared file again.
        raw = os.path.basename(self.telco)
        self.assertIn(f"(prepared from {raw})", proc.stderr)
        self.assertIn(f"give it the raw data ({raw})", proc.stderr)
        self.assertFalse(os.path.exists(out))
        proc = run("eval", self.telco_model, prepared, "--device", "cpu", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("was written by `lathe prepare`", proc.stderr)

    def test_ids_pass_through_prepared_data(self):
        # The batch-scoring flow on prepared data: `lathe prepare --drop ID` keeps the id column
        # unchanged in the prepared file (a passthrough column, never a feature), `lathe prepare
        # --from MODEL` keeps it for the new rows, and `lathe score --id ID` writes it beside the
        # scores exactly, as from a raw file: no join by row order.
        df = pd.read_csv(os.path.join(SHARED, "telco_churn.csv")).iloc[:3000]
        rng = np.random.default_rng(11)
        df.insert(0, "customer_id", rng.permutation(2**62 + np.arange(len(df), dtype=np.int64) * 7919))
        df.insert(1, "customer_code", ["C-%05d" % i for i in rng.permutation(len(df))])
        train_df, new_df = df.iloc[:2400], df.iloc[2400:].drop(columns=["churn"])
        train_csv, new_csv = self.path("train.csv"), self.path("new.csv")
        train_df.to_csv(train_csv, index=False)
        new_df.to_csv(new_csv, index=False)
        raw, new = self.path("raw.h5"), self.path("new.h5")
        run("import", train_csv, raw, "--quiet")
        run("import", new_csv, new, "--quiet")
        prepared, model, new_prepared = self.path("p.h5"), self.path("m.h5"), self.path("new_p.h5")
        run("prepare", raw, prepared, "--label", "churn", "--drop", "customer_id,customer_code", "--device", "cpu",
            "--quiet")
        run("train", prepared, "--label", "churn", "--task", "binary", "--epochs", "3", "--device", "cpu",
            "--out", model, "--quiet")
        run("prepare", new, new_prepared, "--from", model, "--device", "cpu", "--quiet")
        source = pd.read_csv(new_csv, dtype=str)
        for id_column in ("customer_id", "customer_code"):
            with self.subTest(id=id_column):
                csv_out, h5_out = self.path(id_column + ".csv"), self.path(id_column + ".h5")
                self.score(model, new_prepared, "--out", csv_out, "--id", id_column, "--quiet")
                self.score(model, new_prepared, "--out", h5_out, "--id", id_column, "--quiet")
                scored = pd.read_csv(csv_out, dtype=str)
                self.assertEqual(list(scored.columns[:1]), [id_column])
                self.assertEqual(list(scored[id_column]), list(source[id_column]))  # in order, exactly
                h5_scored, dtypes = read_columnar(h5_out)
                if id_column == "customer_id":
                    self.assertEqual(dtypes[id_column], np.int64)
                self.assertEqual(list(h5_scored[id_column]), list(new_df[id_column]))
        # The ids change nothing else: the scores are those of the prepared rows without an id.
        plain = self.path("plain.h5")
        self.score(model, new_prepared, "--out", plain, "--quiet")
        np.testing.assert_array_equal(read_columnar(plain)[0]["probability"],
                                      read_columnar(self.path("customer_id.h5"))[0]["probability"])
        # The ids are passthrough columns of both prepared files, and not inputs of the model.
        with h5py.File(prepared) as p, h5py.File(new_prepared) as t, h5py.File(model) as m:
            for f in (p, t):
                self.assertEqual(text(f.attrs["lathe_passthrough"]), ["customer_id", "customer_code"])
                self.assertEqual(f["customer_id"].dtype, np.int64)
            self.assertEqual(list(t["customer_id"][:]), list(new_df["customer_id"]))
            schema = [c["name"] for c in json.loads(m.attrs["input_schema"])]
            self.assertNotIn("customer_id", schema)
            self.assertNotIn("customer_code", schema)
        # An id that neither file holds is still an error naming the file and the column.
        out = self.path("none.csv")
        proc, _ = self.score(model, new_prepared, "--out", out, "--id", "account", "--quiet", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("new_p.h5: --id: no column 'account'", proc.stderr)
        self.assertFalse(os.path.exists(out))

    def test_bench_score_json(self):
        proc = run("bench", "score", "--rows", "20000", "--features", "6", "--block-rows", "4096", "--device", "cpu",
                   "--json")
        result = json.loads(proc.stdout)
        self.assertEqual(result["rows"], 20000)
        self.assertEqual(result["columns"], 7)
        for stage in ["raw_read", "score"]:
            self.assertGreater(result[stage]["rows_per_second"], 0)
            self.assertGreater(result[stage]["gbps"], 0)
        self.assertAlmostEqual(result["fraction_of_raw_read"],
                               result["raw_read"]["seconds"] / result["score"]["seconds"], places=9)
        self.assertEqual(result["cache"], "hot")
        # --cold: the input is evicted from the page cache before each timed pass.
        proc = run("bench", "score", "--rows", "20000", "--features", "6", "--device", "cpu", "--cold", "--json")
        cold = json.loads(proc.stdout)
        self.assertEqual(cold["cache"], "cold")
        self.assertGreater(cold["score"]["rows_per_second"], 0)
        # `bench train` still works beside it.
        proc = run("bench", "train", "--rows", "5000", "--features", "4", "--epochs", "2", "--device", "cpu", "--json")
        self.assertIn("exact", json.loads(proc.stdout))


class HugeBlockRowsTest(unittest.TestCase):
    # --block-rows near the int64 limit reads as a block of every row: it sized each dataset's chunk
    # cache from the value asked (HDF5: "memory allocation failed for chunk", exit 1).
    def test_block_rows_near_the_int64_limit(self):
        with tempfile.TemporaryDirectory() as d:
            data, model = os.path.join(d, "t.h5"), os.path.join(d, "m.h5")
            run("synth", "--rows", "1000", "--features", "4", "--task", "binary", "--out", data, "--quiet")
            huge = ["--block-rows", "9223372036854775807", "--quiet", "--device", "cpu"]
            run("train", data, "--label", "label", "--task", "binary", "--out", model, "--epochs", "2", *huge)
            run("score", model, data, "--out", os.path.join(d, "a.h5"), *huge)
            run("score", model, data, "--out", os.path.join(d, "b.h5"), "--quiet", "--device", "cpu")
            with h5py.File(os.path.join(d, "a.h5")) as a, h5py.File(os.path.join(d, "b.h5")) as b:
                self.assertEqual(sorted(a.keys()), sorted(b.keys()))
                for k in a.keys():
                    if isinstance(a[k], h5py.Dataset):
                        np.testing.assert_array_equal(a[k][()], b[k][()])


if __name__ == "__main__":
    unittest.main()
