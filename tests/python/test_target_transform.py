"""`lathe train --target-transform none|log|log1p` (regression): the model fits t(label), standardized,
and every prediction (score, eval, drift, report, early stopping) is exp / expm1 of the fit, in the
label's units; the model file's target_transform attribute carries it (absent: none)."""
import json
import os
import shutil
import unittest

import h5py
import numpy as np
import pandas as pd
from sklearn.metrics import mean_squared_error

from lathe_run import ImportedFramesCase, attempt, checked, import_frame

FEATURES = ["x1", "x2", "x3", "x4"]
WEIGHTS = np.array([0.8, -0.5, 0.3, 0.6])


def log_linear(rows, seed):
    """y = exp(1 + x.w + noise): a skewed positive target (prices), linear on the log scale."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES)))
    df = pd.DataFrame(x, columns=FEATURES)
    df["y"] = np.exp(1.0 + x @ WEIGHTS + rng.normal(scale=0.2, size=rows))
    return df


def model_text(model, name):
    with h5py.File(model, "r") as f:
        if name not in f.attrs:
            return None
        value = f.attrs[name]
    return value.decode() if isinstance(value, bytes) else str(value)


def downgrade_to_format_2(path):
    """Format 2 has no attribute digest, so a test may edit the attributes as an older Lathe wrote
    them (or as damage would)."""
    with h5py.File(path, "r+") as f:
        del f["attribute_digest"]
        f.attrs["lathe_model_format_version"] = np.int64(2)


class TargetTransformTest(ImportedFramesCase):
    prefix = "lathe-target-transform-"

    @classmethod
    def frames(cls):
        return log_linear(4000, 1), log_linear(1000, 2)

    def train_args(self, out, *flags, data=None):
        return ("train", data or self.train, "--label", "y", "--task", "regression", "--out", self.path(out),
                "--device", "cpu", "--quiet", "--seed", "3", *flags)

    def fit(self, out, *flags, data=None):
        checked(*self.train_args(out, *flags, data=data))
        return self.path(out)

    def scores(self, model, data, name):
        out = self.path(name)
        checked("score", model, data, "--out", out, "--device", "cpu", "--quiet")
        return pd.read_csv(out)["prediction"].to_numpy()

    def evaluate(self, model, data):
        return json.loads(checked("eval", model, data, "--json", "--device", "cpu", "--quiet").stdout)

    def log_model(self):
        if not hasattr(type(self), "_log_model"):
            type(self)._log_model = self.fit("log.h5", "--target-transform", "log", "--epochs", "20")
        return type(self)._log_model

    def test_log_fits_a_log_linear_target_better_than_none(self):
        plain = self.fit("none.h5", "--epochs", "20")
        rmse_none = self.evaluate(plain, self.test)["rmse"]
        rmse_log = self.evaluate(self.log_model(), self.test)["rmse"]
        self.assertLess(rmse_log, 0.75 * rmse_none, (rmse_log, rmse_none))
        self.assertEqual(model_text(self.log_model(), "target_transform"), "log")
        self.assertEqual(model_text(plain, "target_transform"), "none")
        # A transformed model is format 5, which an older lathe refuses instead of predicting
        # log(y); without a transform the file keeps the format older readers take.
        with h5py.File(self.log_model(), "r") as f:
            self.assertEqual(int(f.attrs["lathe_model_format_version"]), 5)
        with h5py.File(plain, "r") as f:
            self.assertLessEqual(int(f.attrs["lathe_model_format_version"]), 4)

    def test_score_is_exp_of_the_standardized_linear_fit(self):
        model = self.log_model()
        with h5py.File(model, "r") as f:
            w = f["weights"][()].astype(np.float64)[0]
            b = float(f["bias"][()][0])
        prep = json.loads(model_text(model, "preparation"))
        mean, std = float(model_text(model, "target_mean")), float(model_text(model, "target_std"))
        # target_mean is of log(y), not of y.
        self.assertAlmostEqual(mean, np.log(self.train_df["y"]).mean(), delta=0.1)
        self.assertEqual(prep["dense_names"], FEATURES)
        x = self.test_df[FEATURES].to_numpy(dtype=np.float32).astype(np.float64)
        # Clipped by default on the log scale (to the 0.1% and 99.9% training quantiles), then scaled.
        for i, n in enumerate(prep["numeric"]):
            self.assertLess(n["clip_lo"], np.quantile(self.train_df[FEATURES[i]], 0.01), n)
            self.assertGreater(n["clip_hi"], np.quantile(self.train_df[FEATURES[i]], 0.99), n)
        prepared = np.stack([(np.clip(x[:, i], n["clip_lo"], n["clip_hi"]) - n["center"]) * n["inv_scale"]
                             for i, n in enumerate(prep["numeric"])], axis=1)
        want = np.exp(mean + std * (prepared @ w + b))
        got = self.scores(model, self.test, "log-scores.csv")
        np.testing.assert_allclose(got, want, rtol=1e-5)
        # `lathe eval` scores the same predictions against the label, as sklearn does.
        rmse = np.sqrt(mean_squared_error(self.test_df["y"], got))
        self.assertAlmostEqual(self.evaluate(model, self.test)["rmse"], rmse, delta=1e-4 * rmse)

    def test_log1p_takes_zero_labels_and_log_names_the_row(self):
        rng = np.random.default_rng(5)
        df = log_linear(3000, 6)
        df["y"] = np.floor(df["y"] * rng.uniform(0, 1, size=len(df)))  # counts, many zeros
        self.assertGreater((df["y"] == 0).sum(), 100)
        data = import_frame(df, self.dir, "counts")
        model = self.fit("log1p.h5", "--target-transform", "log1p", "--epochs", "10", data=data)
        self.assertEqual(model_text(model, "target_transform"), "log1p")
        got = self.scores(model, data, "log1p-scores.csv")
        self.assertTrue(np.all(np.isfinite(got)) and np.all(got > -1), got.min())
        first_zero = int(np.flatnonzero(df["y"].to_numpy() == 0)[0])
        proc = attempt(*self.train_args("log-on-zeros.h5", "--target-transform", "log", data=data))
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(f"row {first_zero + 1} has label 0", proc.stderr)
        self.assertIn("--target-transform log", proc.stderr)
        self.assertFalse(os.path.exists(self.path("log-on-zeros.h5")))

    def test_labels_outside_the_domain_are_errors_naming_row_and_value(self):
        df = self.train_df.copy()
        df.loc[7, "y"] = -2.5
        data = import_frame(df, self.dir, "negative")
        for transform, value in (("log", "-2.5"), ("log1p", "-2.5")):
            proc = attempt(*self.train_args("bad.h5", "--target-transform", transform, data=data))
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn("row 8 has label " + value, proc.stderr)
            self.assertIn("--target-transform " + transform, proc.stderr)
            self.assertIn("negative.h5", proc.stderr)
            self.assertFalse(os.path.exists(self.path("bad.h5")))
        # A value just past the domain's bound is written as it is (6 digits wrote -1.0000001 as "-1").
        df.loc[7, "y"] = -1.0000001
        near = import_frame(df, self.dir, "near")
        proc = attempt(*self.train_args("bad.h5", "--target-transform", "log1p", data=near))
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("row 8 has label -1.0000001, outside the domain", proc.stderr)
        # A --valid file's labels are checked too.
        proc = attempt(*self.train_args("bad.h5", "--target-transform", "log", "--valid", data))
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("row 8 has label -2.5", proc.stderr)
        self.assertFalse(os.path.exists(self.path("bad.h5")))

    def test_classification_with_the_option_is_a_usage_error(self):
        df = self.train_df.copy()
        df["y"] = np.where(df["y"] > df["y"].median(), "high", "low")
        data = import_frame(df, self.dir, "classes")
        for task in ("binary", "multiclass"):
            proc = attempt("train", data, "--label", "y", "--task", task, "--out", self.path("c.h5"), "--device",
                           "cpu", "--quiet", "--target-transform", "log")
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertIn("--target-transform", proc.stderr)
            self.assertFalse(os.path.exists(self.path("c.h5")))
        proc = attempt(*self.train_args("u.h5", "--target-transform", "sqrt"))
        self.assertEqual(proc.returncode, 2, proc.stderr)

    def test_init_model_keeps_its_transform_and_refuses_another(self):
        old = self.log_model()
        kept = self.fit("retrained.h5", "--init-model", old, "--epochs", "2")
        self.assertEqual(model_text(kept, "target_transform"), "log")
        self.assertLess(self.evaluate(kept, self.test)["rmse"], 1.2 * self.evaluate(old, self.test)["rmse"])
        self.fit("retrained-same.h5", "--init-model", old, "--epochs", "1", "--target-transform", "log")
        proc = attempt(*self.train_args("retrained-none.h5", "--init-model", old, "--epochs", "1",
                                        "--target-transform", "none"))
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("log.h5", proc.stderr)
        self.assertIn("--target-transform log", proc.stderr)
        self.assertIn("this run's is none", proc.stderr)
        self.assertFalse(os.path.exists(self.path("retrained-none.h5")))
        # A model without a transform retrained with one: refused too.
        plain = self.fit("plain-for-init.h5", "--epochs", "2")
        proc = attempt(*self.train_args("r.h5", "--init-model", plain, "--target-transform", "log1p"))
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("--target-transform none", proc.stderr)

    def test_resume_compares_the_transform(self):
        ck = self.path("ck.h5")
        self.fit("resumable.h5", "--target-transform", "log", "--epochs", "3", "--checkpoint-every", "1",
                 "--checkpoint", ck)
        self.assertEqual(model_text(ck, "target_transform"), "log")
        proc = attempt(*self.train_args("resumed-none.h5", "--epochs", "3", "--resume", ck))
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("--target-transform differs (checkpoint: log; now: none)", proc.stderr)
        resumed = self.fit("resumed.h5", "--epochs", "3", "--resume", ck, "--target-transform", "log")
        np.testing.assert_array_equal(self.scores(resumed, self.test, "resumed.csv"),
                                      self.scores(self.path("resumable.h5"), self.test, "resumable.csv"))

    def test_a_model_without_the_attribute_scores_as_none_and_an_unknown_one_is_refused(self):
        model = self.fit("plain.h5", "--epochs", "3")
        self.assertEqual(model_text(model, "target_transform"), "none")
        want = self.scores(model, self.test, "plain.csv")
        old = self.path("old.h5")
        shutil.copy(model, old)
        downgrade_to_format_2(old)
        with h5py.File(old, "r+") as f:
            del f.attrs["target_transform"]
        np.testing.assert_array_equal(self.scores(old, self.test, "old.csv"), want)
        self.evaluate(old, self.test)
        unknown = self.path("unknown.h5")
        shutil.copy(model, unknown)
        downgrade_to_format_2(unknown)
        with h5py.File(unknown, "r+") as f:
            f.attrs["target_transform"] = np.bytes_("sqrt")
        proc = attempt("score", unknown, self.test, "--out", self.path("u.csv"), "--device", "cpu", "--quiet")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("unknown.h5", proc.stderr)
        self.assertIn("sqrt", proc.stderr)

    def test_log_scale_clips_the_numeric_columns_unless_clip_is_given(self):
        # A slope on the log scale extrapolates exponentially: by default the numeric columns are
        # clipped to their 0.1% and 99.9% training quantiles, with a note; --clip decides otherwise.
        proc = checked(*self.train_args("clipped.h5", "--target-transform", "log", "--epochs", "2"))
        self.assertIn("train: note: --target-transform log: numeric columns are clipped to their 0.1% and 99.9% "
                      "training quantiles (--clip quantile:0.001:0.999)", proc.stderr)

        def bounds(model):
            prep = json.loads(model_text(model, "preparation"))
            return [(n["clip_lo"], n["clip_hi"]) for n in prep["numeric"]]

        # A retraining that refits the preparation keeps the earlier model's transform, and its clipping.
        proc = checked(*self.train_args("clipped-child.h5", "--epochs", "1", "--init-model", self.path("clipped.h5"),
                                        "--refit-prep"))
        self.assertIn("clipped.h5's --target-transform log: numeric columns are clipped to their 0.1% and 99.9% "
                      "training quantiles", proc.stderr)
        self.assertEqual([lo is None for lo, _ in bounds(self.path("clipped-child.h5"))], [False] * len(FEATURES))
        for (lo, hi), name in zip(bounds(self.path("clipped.h5")), FEATURES):
            values = self.train_df[name]
            # Between the 0.01% and 1% quantiles (the sketch is approximate), and far from the 1% ones.
            self.assertTrue(values.quantile(0.0001) <= lo < values.quantile(0.01), (name, lo))
            self.assertTrue(values.quantile(0.99) < hi <= values.quantile(0.9999), (name, hi))
        for flags, expected in ((("--target-transform", "log", "--clip", "none"), None),
                                (("--target-transform", "log1p", "--clip", "std:2"), "std"),
                                ((), None)):
            proc = checked(*self.train_args("other.h5", "--epochs", "2", *flags))
            self.assertNotIn("numeric columns are clipped", proc.stderr)
            got = bounds(self.path("other.h5"))
            if expected is None:
                self.assertEqual(got, [(None, None)] * len(FEATURES), flags)
            else:  # mean +- 2 standard deviations
                for (lo, hi), name in zip(got, FEATURES):
                    values = self.train_df[name]
                    self.assertAlmostEqual(hi - lo, 4 * values.std(), delta=0.1, msg=(name, lo, hi))

    def test_drift_report_and_overflow(self):
        model = self.log_model()
        drift = json.loads(checked("drift", model, self.test, "--json", "--device", "cpu", "--quiet").stdout)
        # The prediction shift and the metric drop compare predictions in the label's units (log(y)
        # of these labels is negative for a tenth of them; y never is).
        self.assertTrue(drift["prediction"]["available"])
        self.assertGreater(min(drift["prediction"]["edges"]), 0)
        rmse = self.evaluate(model, self.test)["rmse"]
        self.assertAlmostEqual(drift["metric_drop"]["new"], rmse, delta=1e-4 * rmse)
        report = self.path("report.html")
        checked("report", model, "--eval", self.test, "--out", report, "--quiet")
        with open(report) as f:
            html = f.read()
        self.assertIn("log(label)", html)
        self.assertIn("--target-transform log", html)
        # A score beyond exp's range: +inf on one side (0 on the other), counted and noted. Only an
        # unclipped column lets a value reach it.
        model = self.fit("unclipped.h5", "--target-transform", "log", "--epochs", "20", "--clip", "none")
        far = self.test_df.head(5).copy()
        far.loc[0, "x1"] = 1e6
        far.loc[1, "x1"] = -1e6
        data = import_frame(far, self.dir, "far")
        # Not far.csv, the file far.h5 was imported from: scores never replace it.
        proc = checked("score", model, data, "--out", self.path("far_scores.csv"), "--device", "cpu", "--quiet")
        got = pd.read_csv(self.path("far_scores.csv"))["prediction"].to_numpy()
        self.assertEqual(sorted([np.isinf(got[0]), np.isinf(got[1])]), [False, True], got)
        self.assertEqual(min(got[0], got[1]), 0.0, got)
        self.assertTrue(np.all(np.isfinite(got[2:])), got)
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        self.assertEqual(summary["infinite_predictions"], 1)
        self.assertEqual(summary["files"][0]["infinite_predictions"], 1)
        self.assertTrue(any("1 prediction is infinite" in n for n in summary["notes"]), summary["notes"])
        # `lathe eval` counts them as score does, with a note naming the cause, and the metrics take
        # the prediction as it is: rmse and mae inf, r2 -inf; "inf" and "-inf" in the JSON (which
        # has no infinity, and whose null is an undefined metric), as in the text.
        proc = checked("eval", model, data, "--json", "--device", "cpu")
        metrics = json.loads(proc.stdout)
        self.assertEqual(metrics["infinite_predictions"], 1)
        self.assertEqual([metrics[k] for k in ("rmse", "mae", "r2")], ["inf", "inf", "-inf"])
        self.assertEqual([float(metrics[k]) for k in ("rmse", "r2")], [np.inf, -np.inf])
        self.assertIn("eval: note: 1 prediction is infinite", proc.stderr)
        self.assertIn("exp's range (--target-transform)", proc.stderr)
        self.assertIn("The metrics take it as it is: mae inf, r2 -inf, rmse inf", proc.stderr)
        proc = checked("eval", model, data, "--device", "cpu")
        self.assertRegex(proc.stdout, r"rmse +inf")
        self.assertRegex(proc.stdout, r"r2 +-inf")
        self.assertIn("1 prediction is infinite", proc.stderr)
        self.assertNotIn("infinite", checked("eval", model, data, "--device", "cpu", "--quiet").stderr)
        # A row of weight 0 does not count, whatever its prediction: the metrics are those of the
        # other rows (0 * inf would make them NaN), and the note says why.
        weighted = far.copy()
        weighted["w"] = 1.0
        weighted.loc[np.isinf(got), "w"] = 0.0
        wdata = import_frame(weighted, self.dir, "far-weighted")
        proc = checked("eval", model, wdata, "--weight", "w", "--json", "--device", "cpu")
        metrics = json.loads(proc.stdout)
        self.assertEqual(metrics["infinite_predictions"], 1)
        finite = ~np.isinf(got)
        want = np.sqrt(mean_squared_error(far["y"][finite], got[finite]))
        self.assertAlmostEqual(metrics["rmse"], want, delta=1e-5 * want)
        self.assertIn("Its weight is 0: the metrics do not count it", proc.stderr)
        # Without such a row the count is 0.
        self.assertEqual(self.evaluate(model, self.test)["infinite_predictions"], 0)


if __name__ == "__main__":
    unittest.main()
