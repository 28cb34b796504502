"""`lathe drift` end to end: exit codes, the JSON report, PSI and KS against numpy and scipy on the
same bins, the metric drop with labels, and the model file's profile read with h5py."""
import json
import os
import shutil
import tempfile
import unittest

import h5py
import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from lathe_run import SHARED, import_frame, run  # noqa: F401

PSI_FLOOR = 1e-4


def make_frame(rows, seed, shift=0.0, new_city_share=0.0, flip_labels=False):
    """x1 ~ N(shift, 1), x2 ~ N(5, 2) with 5% missing, city in A/B/C (plus D at new_city_share), y."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, 1.0, rows)
    x2 = rng.normal(5.0, 2.0, rows)
    x2[rng.random(rows) < 0.05] = np.nan
    city = rng.choice(["A", "B", "C"], size=rows, p=[0.5, 0.3, 0.2]).astype(object)
    if new_city_share > 0:
        city[rng.random(rows) < new_city_share] = "D"
    effect = np.select([city == "A", city == "B"], [0.5, -0.5], 0.0)
    logit = 2.0 * (x1 - shift) + effect
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    if flip_labels:
        y = 1 - y
    return pd.DataFrame({"x1": x1, "x2": x2, "city": city, "y": y})


def psi(expected, actual):
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_shares(values, edges):
    """Shares of bins (-inf, e1], (e1, e2], ..., (e_last, inf) of the non-missing values, then missing."""
    v = np.asarray(values, dtype=np.float32).astype(np.float64)  # lathe reads float32
    present = v[~np.isnan(v)]
    counts = np.bincount(np.searchsorted(np.asarray(edges), present, side="left"), minlength=len(edges) + 1)
    return np.append(counts / len(v), np.isnan(v).sum() / len(v))


class DriftTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="lathe-drift-")
        cls.frames = {
            "train": make_frame(4000, 1),
            "valid": make_frame(1500, 2),
            "shifted": make_frame(3000, 3, shift=1.0, new_city_share=0.3),
            "flipped": make_frame(1500, 4, flip_labels=True),
        }
        cls.frames["nolabel"] = cls.frames["shifted"].drop(columns="y")
        cls.files = {name: cls.imported(name, df) for name, df in cls.frames.items()}
        cls.model = os.path.join(cls.dir, "model.h5")
        # A separate validation file: every row of train.h5 is a training row, so numpy sees the
        # same rows as the stored profile.
        run("train", cls.files["train"], "--label", "y", "--task", "binary", "--valid", cls.files["valid"],
            "--epochs", "8", "--out", cls.model, "--device", "cpu", "--quiet")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def imported(cls, name, df):
        return import_frame(df, cls.dir, name)

    def drift(self, data, *flags, model=None):
        proc = run("drift", model or self.model, data, "--json", "--device", "cpu", *flags, check=False)
        self.assertIn(proc.returncode, (0, 3), proc.stderr)
        return proc.returncode, json.loads(proc.stdout)

    @staticmethod
    def feature(report, name):
        return next(f for f in report["features"] if f["name"] == name)

    def test_training_rows_summarize_the_predictions_without_a_validation_split(self):
        # No validation rows: the stored summary is of the training rows' predictions, which the
        # CPU trainer holds row-major only (io/train_table.cpp predict_row_major). Scoring the same
        # rows again must give the same distribution.
        model = os.path.join(self.dir, "no_valid.h5")
        run("train", self.files["train"], "--label", "y", "--task", "binary", "--valid-fraction", "0",
            "--epochs", "3", "--out", model, "--device", "cpu", "--quiet")
        code, report = self.drift(self.files["train"], model=model)
        self.assertEqual(code, 0, report)
        self.assertTrue(report["prediction"]["available"])
        self.assertEqual(report["prediction"]["train_rows"], 4000)
        self.assertAlmostEqual(report["prediction"]["psi"], 0.0, places=9)
        # The test can fail: other rows' predictions are another distribution.
        _, shifted = self.drift(self.files["shifted"], model=model)
        self.assertGreater(shifted["prediction"]["psi"], 0.01)

    def test_a_refitted_model_says_its_profile_is_of_the_training_rows(self):
        # QA: a model refitted on 4000 rows (--refit, on the training and validation rows) was said to
        # be "trained on 3200 rows", the rows of its profile.
        model = os.path.join(self.dir, "refitted.h5")
        run("train", self.files["train"], "--label", "y", "--task", "binary", "--valid-fraction", "0.2",
            "--epochs", "3", "--refit", "yes", "--out", model, "--device", "cpu", "--quiet")
        _, report = self.drift(self.files["valid"], model=model)
        self.assertEqual(report["refit_rows"], 4000)
        self.assertLess(report["train_rows"], 4000)
        text = run("drift", model, self.files["valid"], "--device", "cpu", check=False).stdout
        self.assertIn(f"(trained on {report['train_rows']} rows, refitted on all 4000; profiled on the "
                      f"{report['train_rows']})", text)
        _, plain = self.drift(self.files["valid"])
        self.assertIsNone(plain["refit_rows"])
        self.assertNotIn("refitted", run("drift", self.model, self.files["valid"], "--device", "cpu",
                                         check=False).stdout)

    def test_same_data_is_no_drift(self):
        code, report = self.drift(self.files["train"])
        self.assertEqual(code, 0, report)
        self.assertEqual(report["status"], "ok")
        self.assertEqual(sorted(f["name"] for f in report["features"]), ["city", "x1", "x2"])  # not the label
        for f in report["features"]:
            self.assertAlmostEqual(f["psi"], 0.0, places=12, msg=f)
            self.assertEqual(f["status"], "ok")
            self.assertEqual(f["unseen_share"], 0.0)
        self.assertAlmostEqual(self.feature(report, "x1")["ks"], 0.0, places=12)
        self.assertAlmostEqual(self.feature(report, "x2")["missing_rate_train"],
                               self.frames["train"]["x2"].isna().mean(), places=12)

        # The validation rows: the same predictions as stored at training, the same metrics.
        code, report = self.drift(self.files["valid"])
        self.assertEqual(code, 0, report)
        self.assertTrue(report["prediction"]["available"])
        self.assertAlmostEqual(report["prediction"]["psi"], 0.0, places=9)
        self.assertEqual(report["prediction"]["train_rows"], 1500)
        self.assertTrue(report["labels_present"])
        drop = report["metric_drop"]
        self.assertEqual(drop["name"], report["primary_metric"])
        self.assertAlmostEqual(drop["drop"], 0.0, places=4)
        for f in report["features"]:
            self.assertLess(f["psi"], 0.1, f)

    def test_shifted_column_and_new_category_are_drift(self):
        code, report = self.drift(self.files["nolabel"])
        self.assertEqual(code, 3, report)
        self.assertEqual(report["status"], "alert")
        x1, x2, city = (self.feature(report, n) for n in ("x1", "x2", "city"))
        self.assertEqual(x1["status"], "alert")
        self.assertEqual(city["status"], "alert")
        self.assertEqual(x2["status"], "ok")
        self.assertEqual(city["unseen"], ["D"])
        shifted = self.frames["shifted"]
        self.assertAlmostEqual(city["unseen_share"], (shifted["city"] == "D").mean(), places=12)
        self.assertFalse(report["labels_present"])
        self.assertIsNone(report["metric_drop"])
        self.assertTrue(report["prediction"]["available"])
        self.assertGreater(report["prediction"]["psi"], 0.25)  # the shift moves the scores too

        # PSI on the reported bins, from the raw values with numpy; KS with scipy.
        train = self.frames["train"]
        for name in ("x1", "x2"):
            f = self.feature(report, name)
            self.assertEqual(len(f["edges"]), 9)
            expected = numeric_shares(train[name], f["edges"])
            actual = numeric_shares(shifted[name], f["edges"])
            # The edges are the training deciles: about a tenth of the present values per bin.
            np.testing.assert_allclose(expected[:-1] / expected[:-1].sum(), 0.1, atol=0.005)
            self.assertAlmostEqual(f["psi"], psi(expected, actual), delta=0.02 * psi(expected, actual) + 0.003)
            ks = ks_2samp(train[name].dropna().astype(np.float32), shifted[name].dropna().astype(np.float32)).statistic
            self.assertAlmostEqual(f["ks"], ks, delta=0.005)
            self.assertAlmostEqual(f["missing_rate_new"], shifted[name].isna().mean(), places=12)
        # Categorical: the shares of A, B, C, missing and unseen, exactly.
        labels = ["A", "B", "C"]
        expected = [(train["city"] == c).mean() for c in labels] + [0.0, 0.0]
        actual = [(shifted["city"] == c).mean() for c in labels] + [0.0, (shifted["city"] == "D").mean()]
        self.assertAlmostEqual(city["psi"], psi(expected, actual), places=9)

    def test_a_rare_low_value_below_a_point_mass_is_a_bin_of_its_own(self):
        # QA: telco's phone_service is 1 in 90% of the rows: every decile but the first is 1, the
        # edges were [1] alone, and the bin (-inf, 1] held the 0s with the 1s, so that the PSI was 0
        # (status ok) whatever share of 0s the new data had (KS saw it).
        def frame(rows, seed, zero_share):
            rng = np.random.default_rng(seed)
            df = make_frame(rows, seed)
            df["landline"] = (rng.random(rows) >= zero_share).astype(float)
            return df
        train = import_frame(frame(4000, 11, 0.08), self.dir, "landline_train")
        valid = import_frame(frame(1500, 12, 0.08), self.dir, "landline_valid")
        new_df = frame(3000, 13, 0.5)
        new = import_frame(new_df, self.dir, "landline_new")
        model = os.path.join(self.dir, "landline.h5")
        run("train", train, "--label", "y", "--task", "binary", "--valid", valid, "--epochs", "3", "--out", model,
            "--device", "cpu", "--quiet")
        code, report = self.drift(new, model=model)
        landline = self.feature(report, "landline")
        self.assertEqual(landline["edges"], [0.0, 1.0])
        self.assertEqual(landline["bins"], 2)
        train_values = pd.read_csv(os.path.join(self.dir, "landline_train.csv"))["landline"]
        expected = numeric_shares(train_values, landline["edges"])
        actual = numeric_shares(new_df["landline"], landline["edges"])
        self.assertAlmostEqual(landline["psi"], psi(expected, actual), places=9)
        self.assertGreater(landline["psi"], 0.25)
        self.assertEqual(landline["status"], "alert")
        self.assertEqual(code, 3)
        # A column without such a point mass keeps its deciles: 9 edges.
        self.assertEqual(len(self.feature(report, "x1")["edges"]), 9)

    def test_labels_give_the_metric_drop(self):
        code, report = self.drift(self.files["flipped"])
        self.assertEqual(code, 3, report)
        self.assertTrue(report["labels_present"])
        names = {m["name"] for m in report["metrics"]}
        self.assertTrue({"logloss", "auc", "accuracy"} <= names, names)
        auc = next(m for m in report["metrics"] if m["name"] == "auc")
        self.assertGreater(auc["drop"], 0.3)
        self.assertAlmostEqual(auc["drop"], auc["train"] - auc["new"], places=12)
        drop = report["metric_drop"]
        self.assertEqual(drop["status"], "alert")
        self.assertGreater(drop["relative_drop"], 0.1)
        # The features and the predictions did not move: the alert is the metric's.
        for f in report["features"]:
            self.assertNotEqual(f["status"], "alert", f)
        self.assertNotEqual(report["prediction"]["status"], "alert")
        # The same metrics as `lathe eval`.
        evaluated = json.loads(run("eval", self.model, self.files["flipped"], "--json", "--device", "cpu").stdout)
        self.assertAlmostEqual(auc["new"], evaluated["auc"], places=9)
        with h5py.File(self.model, "r") as f:
            stored = json.loads(f.attrs["metrics"])
        self.assertAlmostEqual(auc["train"], stored["valid"]["auc"], places=12)
        self.assertEqual(report["primary_metric"], stored["metric"])

        # Shifted data with labels: the metrics are reported beside the feature drift.
        df = self.frames["shifted"].copy()
        data = self.imported("shifted_labeled", df)
        code, report = self.drift(data)
        self.assertEqual(code, 3)
        self.assertIsNotNone(report["metric_drop"])

    def test_each_metric_gives_its_absolute_floor(self):
        # A drop must also reach an absolute floor to warn or alert (io/drift.h, metric_drop_floor):
        # 0.01 for logloss, auc, pr_auc and accuracy; the JSON gives it beside the relative drop, and
        # the help of the thresholds says so.
        _, report = self.drift(self.files["flipped"])
        for m in report["metrics"]:
            self.assertEqual(m["drop_floor"], 0.01, m)
        self.assertEqual(report["metric_drop"]["drop_floor"], 0.01)
        help_text = " ".join(run("drift", "--help").stdout.split())
        self.assertIn("the drop must also be at least 0.01 in the metric's units (rmse, mae: a hundredth of the "
                      "training label's standard deviation)", help_text)

    def test_thresholds_are_options_and_text_is_the_default(self):
        code, report = self.drift(self.files["nolabel"], "--psi-warn", "50", "--psi-alert", "100")
        self.assertEqual(code, 0, report)
        self.assertEqual(report["status"], "ok")
        proc = run("drift", self.model, self.files["nolabel"], "--device", "cpu", check=False)
        self.assertEqual(proc.returncode, 3, proc.stderr)
        self.assertIn("status: alert", proc.stdout)
        line = next(l for l in proc.stdout.splitlines() if l.strip().startswith("x1 "))
        self.assertIn("alert", line)
        self.assertIn("unseen: D", proc.stdout)
        proc = run("drift", self.model, self.files["nolabel"], "--psi-warn", "0.5", "--psi-alert", "0.2", check=False)
        self.assertEqual(proc.returncode, 2)  # a usage error
        self.assertIn("--psi-warn", proc.stderr)

    def test_a_renamed_column_is_named_with_its_closest_new_name(self):
        # `lathe score` and `eval` say "(did you mean 'X1'?)" for a column renamed upstream; drift
        # said only "missing from the new data".
        renamed = self.imported("renamed", self.frames["train"].rename(columns={"x1": "X1"}))
        code, report = self.drift(renamed)
        self.assertEqual(code, 3)
        self.assertEqual(self.feature(report, "x1")["note"], "missing from the new data; did you mean 'X1'?")
        proc = run("drift", self.model, renamed, "--device", "cpu", check=False)
        self.assertIn("(missing from the new data; did you mean 'X1'?)", proc.stdout)
        # No near name, no hint.
        dropped = self.imported("dropped", self.frames["train"].drop(columns=["x1"]))
        self.assertEqual(self.feature(self.drift(dropped)[1], "x1")["note"], "missing from the new data")

    def test_the_json_says_which_thresholds_judged_it(self):
        # The text printed "PSI warn at 0.1, alert at 0.25"; the JSON a monitoring job stores said
        # nothing of them, so a stored "warn" could not be read without the command line (and a warn
        # given alone moves its alert's default).
        for flags, expected in [([], (0.1, 0.25, 0.05, 0.10)),
                                (["--psi-alert", "0.05"], (0.05, 0.05, 0.05, 0.10)),
                                (["--psi-warn", "0.3", "--metric-alert", "0.2"], (0.3, 0.3, 0.05, 0.2)),
                                (["--psi-warn", "50", "--psi-alert", "100", "--metric-warn", "0.5"],
                                 (50, 100, 0.5, 0.5))]:
            with self.subTest(flags=flags):
                _, report = self.drift(self.files["nolabel"], *flags)
                self.assertEqual(report["thresholds"], dict(zip(["psi_warn", "psi_alert", "metric_warn", "metric_alert"],
                                                                expected)))

    def test_a_small_sample_of_the_training_data_is_noted(self):
        # 69 random training rows (as the QA report's penguin split): two samples of one distribution
        # that small differ by a PSI of about (bins - 1) (1/4000 + 1/69) by chance alone, above half
        # of --psi-warn 0.1 for x1 (10 bins) and x2 (11: a missing bin), below it for city (3 bins).
        small = self.imported("small", self.frames["train"].sample(69, random_state=0))
        code, report = self.drift(small)
        x1, x2, city = (self.feature(report, name) for name in ("x1", "x2", "city"))
        self.assertEqual((x1["bins"], x2["bins"], city["bins"]), (10, 11, 3))
        self.assertAlmostEqual(x1["psi_chance"], 9 * (1 / 4000 + 1 / 69), places=12)
        self.assertAlmostEqual(x2["psi_chance"], 10 * (1 / 4000 + 1 / 69), places=12)
        self.assertAlmostEqual(city["psi_chance"], 2 * (1 / 4000 + 1 / 69), places=12)
        self.assertEqual(report["prediction"]["bins"], 10)
        self.assertAlmostEqual(report["prediction"]["psi_chance"], 9 * (1 / 1500 + 1 / 69), places=12)
        notes = [n for n in report["notes"] if n.startswith("small sample")]
        self.assertEqual(len(notes), 2, report["notes"])  # x1 and x2 alike: one note; the predictions
        self.assertIn("69 rows; with 4000 training rows, the PSI of the features 'x1', 'x2' over 10 to 11 bins is "
                      "about 0.13 to 0.15 by chance alone", notes[0])
        self.assertIn("--psi-warn 0.1", notes[0])
        self.assertIn("compare a larger sample, or raise --psi-warn/--psi-alert", notes[0])
        self.assertIn("with 1500 predictions stored at training, the PSI of the predictions over 10 bins is about 0.14",
                      notes[1])
        # The text output has the notes too.
        proc = run("drift", self.model, small, "--device", "cpu", check=False)
        self.assertIn(proc.returncode, (0, 3), proc.stderr)
        self.assertIn("note: small sample: the new data has 69 rows", proc.stdout)
        # A higher warn threshold, or the whole training file: no such note.
        _, report = self.drift(small, "--psi-warn", "0.4", "--psi-alert", "1")
        self.assertFalse([n for n in report["notes"] if n.startswith("small sample")], report["notes"])
        _, report = self.drift(self.files["train"])
        self.assertFalse([n for n in report["notes"] if n.startswith("small sample")], report["notes"])

    def test_the_predictions_line_counts_the_bins_the_note_counts(self):
        # QA: a model of few distinct predictions (here two: one 0/1 feature) ends its quantile edges
        # at the largest, so the bin above holds no training prediction: the text's predictions line
        # said 3 bins where the small-sample note (and the JSON's bins) said 2, the bins the chance
        # level counts.
        rng = np.random.default_rng(21)
        frames = {}
        for name, rows in [("flag_train", 3000), ("flag_valid", 1000), ("flag_new", 12)]:
            flag = rng.integers(0, 2, rows)
            frames[name] = pd.DataFrame({"flag": flag, "y": (rng.random(rows) < 0.3 + 0.3 * flag).astype(int)})
        files = {name: self.imported(name, df) for name, df in frames.items()}
        model = os.path.join(self.dir, "flag_model.h5")
        run("train", files["flag_train"], "--label", "y", "--task", "binary", "--valid", files["flag_valid"],
            "--epochs", "2", "--out", model, "--device", "cpu", "--quiet")
        _, report = self.drift(files["flag_new"], model=model)
        prediction = report["prediction"]
        self.assertEqual(len(prediction["train_shares"]), 3, prediction)
        self.assertEqual(prediction["bins"], 2, prediction)
        notes = [n for n in report["notes"] if "the PSI of the predictions" in n]
        self.assertEqual(len(notes), 1, report["notes"])
        self.assertIn("over 2 bins", notes[0])
        proc = run("drift", model, files["flag_new"], "--device", "cpu", check=False)
        self.assertIn(proc.returncode, (0, 3), proc.stderr)
        self.assertIn("(2 bins; 1000 rows at training, 12 new)", proc.stdout)

    def test_a_one_row_file_is_one_row_not_1_rows(self):
        # Counts built as N + " rows" said "the new data has 1 rows" (and "(1 rows" in the text
        # report's header, "its 1 rows hold one class" for an undefined auc).
        one = self.imported("one_row", self.frames["train"].iloc[:1])
        _, report = self.drift(one)
        self.assertEqual(report["new_rows"], 1)
        notes = [n for n in report["notes"] if n.startswith("small sample")]
        self.assertTrue(notes, report["notes"])
        self.assertIn("the new data has 1 row;", notes[0])
        proc = run("drift", self.model, one, "--device", "cpu", check=False)
        self.assertIn(proc.returncode, (0, 3), proc.stderr)
        self.assertIn(f"data:  {one} (1 row)", proc.stdout)
        self.assertNotIn("1 rows", proc.stdout + proc.stderr)
        # Two rows are still rows.
        _, report = self.drift(self.imported("two_rows", self.frames["train"].iloc[:2]))
        self.assertIn("the new data has 2 rows;", " ".join(report["notes"]))

    def test_the_penguin_test_split_of_the_qa_report_is_noted_as_small(self):
        # The QA report: an 80/20 split of penguins, the model trained on the 80% (default options),
        # drift on the 69 other rows alerted with no word about the sample's size.
        df = pd.read_csv(os.path.join(SHARED, "penguins.csv"))
        order = np.random.RandomState(0).permutation(len(df))
        cut = int(len(df) * 0.8)
        train = self.imported("penguins_train", df.iloc[order[:cut]])
        test = self.imported("penguins_test", df.iloc[order[cut:]])
        model = os.path.join(self.dir, "penguins_model.h5")
        run("train", train, "--label", "species", "--task", "multiclass", "--out", model, "--device", "cpu", "--quiet")
        _, report = self.drift(test, model=model)
        self.assertEqual(report["new_rows"], 69)
        notes = [n for n in report["notes"] if n.startswith("small sample")]
        self.assertTrue(notes, report["notes"])
        self.assertIn("the new data has 69 rows", notes[0])
        for name in ("bill_length_mm", "body_mass_g"):
            self.assertIn(f"'{name}'", notes[0])
            self.assertGreater(self.feature(report, name)["psi_chance"], 0.05)

    def test_labels_the_model_cannot_use_skip_only_the_metrics(self):
        # A label that was not a class at training (and one that is missing): the features and the
        # predictions are still compared, the metrics are not, and a note says why.
        for name, value, why in [("newclass", 2, "label '2' in row 4 (column 'y') was not a class of the model"),
                                 ("nolabelrow", np.nan, "row 4 has no label (missing)")]:
            frame = self.frames["valid"].copy()
            frame["y"] = frame["y"].astype(float)
            frame.loc[3, "y"] = value
            data = self.imported(name, frame)
            code, report = self.drift(data)
            self.assertEqual(code, 0, report)
            self.assertTrue(report["labels_present"])
            self.assertEqual(report["metrics"], [])
            self.assertEqual(sorted(f["name"] for f in report["features"]), ["city", "x1", "x2"])
            self.assertTrue(report["prediction"]["available"])
            notes = [n for n in report["notes"] if n.startswith("metrics not compared")]
            self.assertEqual(len(notes), 1, report["notes"])
            self.assertIn(why, notes[0])
            self.assertIn(data, notes[0])
            text = run("drift", self.model, data, "--device", "cpu").stdout
            self.assertIn("metrics: not compared (see the note below)", text)
            self.assertIn(why, text)

    def test_a_missing_column_with_labels_present_is_drift_not_an_error(self):
        data = self.imported("nocity", self.frames["valid"].drop(columns="city"))
        code, report = self.drift(data)
        self.assertEqual(code, 3, report)
        self.assertEqual(self.feature(report, "city")["status"], "alert")
        self.assertIn(f"{data}: column 'city' (categorical), an input of the model {self.model}, is missing",
                      report["prediction"]["note"])
        # The rows there were to compare (it said 0 for the model's summary and the new rows alike).
        self.assertFalse(report["prediction"]["available"])
        self.assertEqual(report["prediction"]["new_rows"], len(self.frames["valid"]))
        self.assertGreater(report["prediction"]["train_rows"], 0)
        self.assertEqual(report["metrics"], [])
        self.assertTrue(any(n.startswith("metrics not compared") for n in report["notes"]), report["notes"])

    def test_an_undefined_metric_is_not_compared_and_is_no_drift(self):
        # A model stopped on auc, and labeled new rows of one class (a daily batch without a positive,
        # for a rare event): auc is undefined there, which is no drop. The metrics are skipped with a
        # note naming the metric and why; the status is the features' and the predictions'.
        model = os.path.join(self.dir, "auc_model.h5")
        run("train", self.files["train"], "--label", "y", "--task", "binary", "--valid", self.files["valid"],
            "--metric", "auc", "--epochs", "4", "--out", model, "--device", "cpu", "--quiet")
        frame = self.frames["valid"].copy()  # the validation rows: no feature or prediction drift
        frame["y"] = 0
        data = self.imported("one_class", frame)
        code, report = self.drift(data, model=model)
        self.assertEqual(code, 0, report)
        self.assertEqual(report["status"], "ok")
        self.assertTrue(report["labels_present"])
        self.assertEqual(report["primary_metric"], "auc")
        self.assertIsNone(report["metric_drop"])
        self.assertEqual(report["metrics"], [])
        for f in report["features"]:
            self.assertEqual(f["status"], "ok", f)
        notes = [n for n in report["notes"] if n.startswith("metrics not compared")]
        self.assertEqual(len(notes), 1, report["notes"])
        self.assertIn(f"auc, the model's metric, is undefined on {data}: its 1500 rows hold one class ('0')",
                      notes[0])
        proc = run("drift", model, data, "--device", "cpu", check=False)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("metrics: not compared (see the note below)", proc.stdout)
        self.assertIn("is undefined on", proc.stdout)
        self.assertIn("status: ok", proc.stdout)
        self.assertFalse([l for l in proc.stdout.splitlines() if l.rstrip().endswith("alert")], proc.stdout)

        # The model's metric is logloss (the default): it is compared, auc and pr_auc (undefined
        # on one class) are left out with a note, not listed as alerts.
        negatives = self.imported("negatives", self.frames["valid"][self.frames["valid"]["y"] == 0])
        _, report = self.drift(negatives)
        self.assertEqual(report["primary_metric"], "logloss")
        self.assertEqual({m["name"] for m in report["metrics"]}, {"logloss", "accuracy"})
        self.assertEqual(report["metric_drop"]["name"], "logloss")
        notes = [n for n in report["notes"] if "undefined" in n]
        self.assertEqual(len(notes), 1, report["notes"])
        self.assertIn("auc, pr_auc", notes[0])
        self.assertIn("hold one class ('0')", notes[0])

    def test_a_metric_the_model_stores_as_undefined_is_not_compared(self):
        # Validation rows of one class: the model stores auc as null (and pr_auc as 0, scikit-learn's
        # average precision without positives, which ranks nothing). Drift on rows of both classes
        # cannot compare them: they are left out with a note, not listed as alerts. (When the
        # model's own metric is stored as null, the metrics are skipped: tests/drift_test.cpp.)
        valid = self.frames["valid"].copy()
        valid["y"] = 0
        one_class_valid = self.imported("one_class_valid", valid)
        model = os.path.join(self.dir, "null_auc_model.h5")
        run("train", self.files["train"], "--label", "y", "--task", "binary", "--valid", one_class_valid,
            "--epochs", "2", "--out", model, "--device", "cpu", "--quiet")
        with h5py.File(model, "r") as f:
            stored = json.loads(f.attrs["metrics"])
        self.assertIsNone(stored["valid"]["auc"])
        _, report = self.drift(self.files["valid"], model=model)
        self.assertEqual(report["primary_metric"], "logloss")
        self.assertEqual({m["name"] for m in report["metrics"]}, {"logloss", "accuracy"})
        notes = [n for n in report["notes"] if "undefined" in n]
        self.assertEqual(stored["valid"]["pr_auc"], 0.0)
        self.assertEqual(notes, ["auc, pr_auc are undefined on the model's validation rows (it stores auc as null: as "
                                 "when they held one class): not compared"], report["notes"])

    def test_missing_files_and_format_one_models_are_errors(self):
        missing = os.path.join(self.dir, "nowhere.h5")
        proc = run("drift", self.model, missing, "--device", "cpu", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("nowhere.h5", proc.stderr)
        proc = run("drift", missing, self.files["train"], "--device", "cpu", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("nowhere.h5", proc.stderr)

        old = os.path.join(self.dir, "v1.h5")
        shutil.copy(self.model, old)
        with h5py.File(old, "r+") as f:
            del f["profile"]
            del f["predictions"]
            del f["attribute_digest"]  # format 3's; a format 1 file has none
            f.attrs["lathe_model_format_version"] = np.int64(1)
        json.loads(run("eval", old, self.files["valid"], "--json", "--device", "cpu").stdout)  # still loads
        proc = run("drift", old, self.files["train"], "--device", "cpu", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("format 2", proc.stderr)

    def test_profile_counts_past_2_53_rows_are_refused(self):
        # A format 2 model has no attribute digest, so h5py can rewrite its profile's category counts
        # (with a valid Fletcher32 checksum); drift added a column's counts up in 64-bit integers,
        # and 2^62 + 2^62 overflowed.
        damaged = os.path.join(self.dir, "huge_counts.h5")
        shutil.copy(self.model, damaged)
        with h5py.File(damaged, "r+") as f:
            counts = np.full(f["profile/category_counts"].shape, 2**62, dtype=np.int64)
            del f["profile/category_counts"]
            f.create_dataset("profile/category_counts", data=counts, chunks=counts.shape, fletcher32=True)
            del f["attribute_digest"]
            f.attrs["lathe_model_format_version"] = np.int64(2)
        proc = run("drift", damaged, self.files["train"], "--device", "cpu", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(f"lathe: error: {damaged}: profile: column 'city' has counts that add up to more than 2^53 rows",
                      proc.stderr)

    def test_model_file_profile_reads_with_h5py(self):
        train = self.frames["train"]
        with h5py.File(self.model, "r") as f:
            self.assertEqual(int(f.attrs["lathe_model_format_version"]), 3)
            g = f["profile"]
            self.assertEqual(int(g.attrs["rows"]), len(train))
            columns = json.loads(g.attrs["columns"])
            self.assertEqual([c["name"] for c in columns], ["x1", "x2", "city", "y"])
            for name in ["numeric_stats", "sketch_sizes", "sketch_points", "sketch_weights", "category_counts"]:
                self.assertTrue(g[name].fletcher32, name)
            stats = g["numeric_stats"][()]
            numeric = [c["name"] for c in columns if c["type"] == "numeric"]
            for i, name in enumerate(numeric):
                v = train[name].astype(np.float32).astype(np.float64)
                count, missing, mean, variance, lo, hi = stats[i]
                self.assertEqual(count, v.notna().sum())
                self.assertEqual(missing, v.isna().sum())
                self.assertAlmostEqual(mean, v.mean(), places=9)
                self.assertAlmostEqual(variance, v.var(ddof=0), places=6)
                self.assertEqual(lo, v.min())
                self.assertEqual(hi, v.max())
            sizes = g["sketch_sizes"][()]
            weights = g["sketch_weights"][()]
            points = g["sketch_points"][()]
            start = 0
            for i, size in enumerate(sizes):
                self.assertAlmostEqual(weights[start:start + size].sum(), stats[i][0], places=6)
                self.assertTrue(np.all(np.diff(points[start:start + size]) > 0))
                start += size
            self.assertEqual(start, len(points))
            city = next(c for c in columns if c["name"] == "city")
            counts = dict(zip(city["labels"], g["category_counts"][()][:len(city["labels"])]))
            for label in ["A", "B", "C"]:
                self.assertEqual(counts[label], (train["city"] == label).sum())
            p = f["predictions"]
            self.assertEqual(p.attrs["source"].decode(), "validation")  # fixed-length: bytes in h5py
            self.assertEqual(int(p.attrs["rows"]), 1500)
            self.assertAlmostEqual(p["weights"][()].sum(), 1500, places=6)
            self.assertTrue(np.all((p["points"][()] >= 0) & (p["points"][()] <= 1)))

    def test_multiclass_compares_predicted_class_shares(self):
        data = os.path.join(self.dir, "multi.h5")
        run("synth", "--task", "multiclass", "--classes", "3", "--rows", "3000", "--features", "4", "--seed", "5",
            "--out", data, "--quiet")
        model = os.path.join(self.dir, "multi_model.h5")
        run("train", data, "--label", "label", "--task", "multiclass", "--epochs", "3", "--out", model,
            "--device", "cpu", "--quiet")
        code, report = self.drift(data, model=model)
        self.assertEqual(code, 0, report)
        p = report["prediction"]
        self.assertTrue(p["available"])
        self.assertEqual(len(p["train_shares"]), 3)
        self.assertAlmostEqual(sum(p["train_shares"]), 1.0, places=9)
        self.assertAlmostEqual(p["psi"], psi(p["train_shares"], p["new_shares"]), places=9)
        self.assertLess(p["psi"], 0.1)


def make_weighted_frame(rows, seed):
    """A regression whose noise follows its sample weight w: rows of weight 1 have noise 0.1, rows of
    weight 0.001 noise 5. The rmse weighted by w is a few tenths, the unweighted one about 3.5."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(0.0, 1.0, rows)
    x2 = rng.normal(0.0, 1.0, rows)
    heavy = rng.random(rows) < 0.5
    w = np.where(heavy, 1.0, 0.001)
    y = 2.0 * x1 - x2 + rng.normal(0.0, 1.0, rows) * np.where(heavy, 0.1, 5.0)
    return pd.DataFrame({"x1": x1, "x2": x2, "w": w, "y": y})


class WeightedModelDriftTest(unittest.TestCase):
    """A model trained with --weight w stores validation metrics weighted by w: new rows of the
    training distribution are no drift, their metrics weighted by w as well (by default by their own
    column w, or by --weight), and not compared when they lack the column. An unweighted metric
    against the weighted one was an alert (rmse 5 times the validation one) on rows that had not
    drifted."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="lathe-drift-weight-")
        cls.test_frame = make_weighted_frame(2000, 32)
        cls.train = import_frame(make_weighted_frame(4000, 31), cls.dir, "train")
        cls.test = import_frame(cls.test_frame, cls.dir, "test")
        cls.model = os.path.join(cls.dir, "weighted.h5")
        run("train", cls.train, "--label", "y", "--task", "regression", "--weight", "w", "--epochs", "5",
            "--out", cls.model, "--device", "cpu", "--quiet")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def drift(self, data, *flags, model=None):
        proc = run("drift", model or self.model, data, "--json", "--device", "cpu", *flags, check=False)
        self.assertIn(proc.returncode, (0, 3), proc.stderr)
        return proc.returncode, json.loads(proc.stdout)

    def evaluated_rmse(self, data, *flags):
        return json.loads(run("eval", self.model, data, "--json", "--device", "cpu", *flags).stdout)["rmse"]

    def test_rows_of_the_training_distribution_are_no_drift(self):
        code, report = self.drift(self.test)
        self.assertEqual(code, 0, report)
        self.assertEqual(report["weight"], "w")
        drop = report["metric_drop"]
        self.assertEqual(drop["name"], "rmse")
        self.assertEqual(drop["status"], "ok", drop)
        # The metrics of `lathe eval --weight w`, not the unweighted ones (several times larger).
        self.assertAlmostEqual(drop["new"], self.evaluated_rmse(self.test, "--weight", "w"), places=9)
        self.assertGreater(self.evaluated_rmse(self.test), 3 * drop["new"])
        notes = [n for n in report["notes"] if "weighted by column 'w'" in n]
        self.assertEqual(len(notes), 1, report["notes"])
        self.assertIn("the new rows' metrics are weighted by their column 'w' too", notes[0])
        # The weight column is no feature by design, not a column the model missed.
        self.assertFalse(any("'w' is not among" in n for n in report["notes"]), report["notes"])
        text = run("drift", self.model, self.test, "--device", "cpu").stdout
        self.assertIn("metrics weighted by column 'w'", text)
        self.assertIn("note: " + notes[0], text)
        self.assertIn("status: ok", text)

    def test_weight_names_the_column(self):
        code, report = self.drift(self.test, "--weight", "w")
        self.assertEqual(code, 0, report)
        self.assertEqual(report["weight"], "w")
        self.assertAlmostEqual(report["metric_drop"]["new"], self.evaluated_rmse(self.test, "--weight", "w"),
                               places=9)
        self.assertFalse(any("weighted by column" in n for n in report["notes"]), report["notes"])
        # Another column: equal weights give the unweighted rmse, against the weighted validation one.
        frame = self.test_frame.copy()
        frame["ones"] = 1.0
        data = import_frame(frame, self.dir, "ones")
        code, report = self.drift(data, "--weight", "ones")
        self.assertEqual(code, 3, report)
        self.assertEqual(report["weight"], "ones")
        self.assertAlmostEqual(report["metric_drop"]["new"], self.evaluated_rmse(data), places=9)
        self.assertEqual(report["metric_drop"]["status"], "alert")

    def test_new_data_without_the_weight_column_compares_no_metric(self):
        data = import_frame(self.test_frame.drop(columns="w"), self.dir, "no_w")
        code, report = self.drift(data)
        self.assertEqual(code, 0, report)
        self.assertIsNone(report["weight"])
        self.assertTrue(report["labels_present"])
        self.assertEqual(report["metrics"], [])
        self.assertIsNone(report["metric_drop"])
        notes = [n for n in report["notes"] if n.startswith("metrics not compared")]
        self.assertEqual(len(notes), 1, report["notes"])
        self.assertIn(f"the training validation metrics are weighted by column 'w', which {data} lacks", notes[0])
        self.assertIn("so the metric drop is not computed", notes[0])
        text = run("drift", self.model, data, "--device", "cpu").stdout
        self.assertIn("metrics: not compared (see the note below)", text)
        self.assertIn("which " + data + " lacks", text)

    def test_bad_weights_are_refused_as_eval_refuses_them(self):
        frame = self.test_frame.copy()
        frame.loc[3, "w"] = -1.0
        bad = import_frame(frame, self.dir, "negative_w")
        for flags in ([], ["--weight", "w"]):
            proc = run("drift", self.model, bad, "--device", "cpu", *flags, check=False)
            self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
            self.assertIn(f"{bad}: weight 'w': row 4 has a missing, negative or infinite weight (-1)", proc.stderr)
            self.assertEqual(proc.stdout, "")
        proc = run("eval", self.model, bad, "--weight", "w", "--device", "cpu", check=False)
        self.assertIn(f"{bad}: weight 'w': row 4 has a missing, negative or infinite weight", proc.stderr)
        proc = run("drift", self.model, self.test, "--weight", "v", "--device", "cpu", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(f"--weight: {self.test} has no column 'v'", proc.stderr)
        proc = run("drift", self.model, self.test, "--weight", "y", "--device", "cpu", check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--weight 'y' is the label", proc.stderr)

    def test_a_model_trained_without_weights_is_compared_unweighted(self):
        model = os.path.join(self.dir, "unweighted.h5")
        run("train", self.train, "--label", "y", "--task", "regression", "--drop", "w", "--epochs", "5",
            "--out", model, "--device", "cpu", "--quiet")
        _, report = self.drift(self.test, model=model)
        self.assertIsNone(report["weight"])
        self.assertFalse(any("weighted" in n for n in report["notes"]), report["notes"])
        evaluated = json.loads(run("eval", model, self.test, "--json", "--device", "cpu").stdout)
        self.assertAlmostEqual(report["metric_drop"]["new"], evaluated["rmse"], places=9)

    def test_report_drift_weighs_the_metrics_as_drift_does(self):
        out = os.path.join(self.dir, "report.html")
        pages = []
        for flags in ([], ["--drift-weight", "w"]):
            run("report", self.model, "--drift", self.test, *flags, "--out", out, "--device", "cpu", "--quiet")
            with open(out, encoding="utf-8") as f:
                pages.append(f.read())
            self.assertIn('id="drift-status">ok<', pages[-1])
        # The default says how it weighted; the named column needs no note.
        self.assertIn("metrics are weighted by their column &#39;w&#39; too", pages[0])
        self.assertNotIn("weighted by column", pages[1])
        proc = run("report", self.model, "--drift-weight", "w", "--out", out, "--device", "cpu", check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--drift-weight weights the metrics of the --drift data: give --drift", proc.stderr)


M64 = (1 << 64) - 1


def label_bucket(label, buckets):
    """The bucket of a hashed categorical column's label (kernels/prepare_formulas.h: label_hash, an
    FNV-1a over the label's bytes then SplitMix64's finalizer, modulo the buckets)."""
    h = 0xCBF29CE484222325
    for b in label.encode():
        h ^= b
        h = (h * 0x100000001B3) & M64
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & M64
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & M64
    h ^= h >> 31
    return h % buckets


class HashedColumnDriftTest(unittest.TestCase):
    """A uid-like column of ~110k labels (under 2 rows each) that the model hashes into 1024 buckets:
    its PSI is over the buckets the model uses, not over labels that differ by chance alone (over the
    labels, the training file itself had a PSI of 0.61 against its own training rows: an alert)."""

    ROWS = 200000
    BUCKETS = 1024

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="lathe-drift-hashed-")
        rng = np.random.default_rng(21)
        uid = np.char.add("u", rng.integers(0, 200000, cls.ROWS).astype(str)).astype(object)
        x = rng.normal(0.0, 1.0, cls.ROWS)
        y = (rng.random(cls.ROWS) < 1.0 / (1.0 + np.exp(-x))).astype(int)
        cls.frame = pd.DataFrame({"uid": uid, "x": x, "y": y})
        cls.train = import_frame(cls.frame, cls.dir, "train")
        cls.model = os.path.join(cls.dir, "model.h5")
        # The default validation split: the profile holds 80% of the rows, so most labels' counts in
        # the profile and in the whole file differ (a label has under 2 rows).
        run("train", cls.train, "--label", "y", "--task", "binary", "--max-categories", "1000",
            "--category-buckets", str(cls.BUCKETS), "--epochs", "1", "--out", cls.model, "--device", "cpu",
            "--quiet")
        with h5py.File(cls.model, "r") as f:
            g = f["profile"]
            columns = g.attrs["columns"] if "columns" in g.attrs else g["columns"][()][0]  # format 4: a dataset
            columns = json.loads(columns.decode() if isinstance(columns, bytes) else columns)
            cls.train_rows = int(g.attrs["rows"])
            counts = g["category_counts"][()]
        categorical = [c for c in columns if c["type"] == "categorical"]
        uid_column = categorical[0]
        assert uid_column["name"] == "uid" and len(categorical) == 1, columns
        labels = uid_column["labels"]
        cls.train_counts = {label: int(n) for label, n in zip(labels, counts[:len(labels)]) if n > 0}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def drift(self, data):
        proc = run("drift", self.model, data, "--json", "--device", "cpu", check=False)
        self.assertIn(proc.returncode, (0, 3), proc.stderr)
        return proc.returncode, json.loads(proc.stdout)

    def bucket_psi(self, new_labels):
        """PSI over the buckets (no missing values here) from the stored profile and the new labels."""
        expected = np.zeros(self.BUCKETS)
        for label, n in self.train_counts.items():
            expected[label_bucket(label, self.BUCKETS)] += n
        actual = np.zeros(self.BUCKETS)
        for label, n in pd.Series(new_labels).value_counts().items():
            actual[label_bucket(label, self.BUCKETS)] += n
        return psi(np.append(expected / expected.sum(), 0.0), np.append(actual / actual.sum(), 0.0))

    def test_the_training_file_is_no_drift(self):
        code, report = self.drift(self.train)
        uid = next(f for f in report["features"] if f["name"] == "uid")
        self.assertEqual(code, 0, uid)
        self.assertEqual(report["status"], "ok")
        self.assertEqual(uid["status"], "ok")
        self.assertLess(uid["psi"], 0.02)
        self.assertAlmostEqual(uid["psi"], self.bucket_psi(self.frame["uid"]), places=9)
        # The bins are the buckets (110k labels fill all 1024; no missing bin): the chance level too.
        self.assertEqual(uid["bins"], self.BUCKETS)
        self.assertAlmostEqual(uid["psi_chance"], (self.BUCKETS - 1) * (1 / self.train_rows + 1 / self.ROWS),
                               places=12)
        self.assertFalse([n for n in report["notes"] if n.startswith("small sample")], report["notes"])
        # Unseen: the rows whose label the training rows never had (here: labels only in the
        # validation split), by name; the PSI does not count them apart, as the model puts them in
        # their buckets.
        unseen = ~self.frame["uid"].isin(self.train_counts.keys())
        self.assertGreater(unseen.sum(), 0)
        self.assertAlmostEqual(uid["unseen_share"], unseen.mean(), places=12)
        # The list: at most 100 of them, the most frequent first (a hashed column's new labels can be
        # most of a file's).
        counts = self.frame["uid"][unseen].value_counts()
        self.assertGreater(len(counts), 100)
        self.assertEqual(len(uid["unseen"]), 100)
        listed = [counts[label] for label in uid["unseen"]]
        self.assertEqual(listed, sorted(listed, reverse=True))
        self.assertEqual(listed[0], counts.max())
        self.assertGreaterEqual(min(listed), counts.iloc[100])
        text = run("drift", self.model, self.train, "--device", "cpu").stdout
        line = next(l for l in text.splitlines() if l.strip().startswith("uid "))
        self.assertIn(" ok", line)
        self.assertIn("status: ok", text)

    def test_labels_concentrated_on_a_few_values_are_drift(self):
        rng = np.random.default_rng(22)
        shifted = self.frame.sample(20000, random_state=1).reset_index(drop=True)
        shifted["uid"] = rng.choice(["u1", "u2", "u3", "u4", "u5"], size=len(shifted))
        code, report = self.drift(import_frame(shifted, self.dir, "shifted"))
        self.assertEqual(code, 3, report)
        uid = next(f for f in report["features"] if f["name"] == "uid")
        self.assertEqual(uid["status"], "alert")
        self.assertGreater(uid["psi"], 1.0)
        self.assertAlmostEqual(uid["psi"], self.bucket_psi(shifted["uid"]), places=9)
        self.assertAlmostEqual(uid["unseen_share"], (~shifted["uid"].isin(self.train_counts.keys())).mean(), places=12)
        self.assertEqual(next(f for f in report["features"] if f["name"] == "x")["status"], "ok")

    def test_new_labels_spread_as_in_training_are_unseen_but_no_drift(self):
        # New users (labels the training rows never had), spread over the buckets as in training: the
        # model sees the same bucket shares, so no drift, while unseen_share says they are all new.
        rng = np.random.default_rng(23)
        new = self.frame.sample(50000, random_state=2).reset_index(drop=True)
        new["uid"] = np.char.add("v", rng.integers(0, 100000, len(new)).astype(str)).astype(object)
        code, report = self.drift(import_frame(new, self.dir, "new_users"))
        uid = next(f for f in report["features"] if f["name"] == "uid")
        self.assertEqual(code, 0, uid)
        self.assertEqual(uid["status"], "ok")
        self.assertLess(uid["psi"], 0.05)
        self.assertEqual(uid["unseen_share"], 1.0)
        self.assertEqual(len(uid["unseen"]), 100)  # a hashed column lists the 100 most frequent


if __name__ == "__main__":
    unittest.main()
