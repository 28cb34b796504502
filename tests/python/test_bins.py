"""Quantile bins (`--bins`) end to end through the `lathe` command: what they buy an fm on a planted
curved effect, where the edges fall, the model format, every command that reads a binned model,
the option's syntax and errors, crosses of bins (`--cross x#bins*city`), `--config`, checkpoints and
`--resume`, and the devices."""
import json
import os
import unittest

import h5py
import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from lathe_run import ImportedFramesCase, attempt, checked, import_frame

EFFECT = {"a": 1.0, "b": -1.0, "c": 2.0, "d": 0.5}  # the categorical effect the curve is multiplied by


def curve(x):
    """A step function with a bend: flat, up, down, up again (no slope fits it)."""
    steps = np.select([x < 2.5, x < 5.0, x < 7.5], [0.0, 2.0, -1.0], 3.0)
    return steps + 0.1 * (x - 5.0) ** 2


def planted(rows, seed):
    """y = curve(x) * EFFECT[city] + 0.3 x2 + N(0, 0.2): the label is a curved function of x times
    a categorical effect; x2 is a plain linear column."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, rows)
    x2 = rng.normal(0, 1, rows)
    city = rng.choice(list(EFFECT), rows)
    y = curve(x) * np.vectorize(EFFECT.get)(city) + 0.3 * x2 + rng.normal(0, 0.2, rows)
    return pd.DataFrame({"x": x, "x2": x2, "city": city, "y": y})


def model_text(model, name):
    """A text of the model file: a fixed-length attribute, or (over 32 KiB) a one-element dataset."""
    with h5py.File(model, "r") as f:
        value = f.attrs[name] if name in f.attrs else f[name][0]
    return value.decode() if isinstance(value, bytes) else str(value)


def preparation(model):
    return json.loads(model_text(model, "preparation"))


def model_arrays(model):
    with h5py.File(model, "r") as f:
        return {k: f[k][:] for k in ("weights", "bias", "factors") if k in f}


class BinsTest(ImportedFramesCase):
    prefix = "lathe-bins-"

    @classmethod
    def frames(cls):
        return planted(4000, 1), planted(1000, 2)

    def fit(self, out, *flags, data=None):
        """`lathe train` a regression on y (CPU, seeded); returns the model path and the summary."""
        model = self.path(out)
        proc = checked("train", data or self.train, "--label", "y", "--task", "regression", "--out", model,
                       "--device", "cpu", "--quiet", "--seed", "3", *flags)
        return model, json.loads(proc.stdout.strip().splitlines()[-1])

    def scores(self, model, data, name):
        out = self.path(name)
        checked("score", model, data, "--out", out, "--device", "cpu", "--quiet")
        return pd.read_csv(out)

    def evaluate(self, model, data):
        return json.loads(checked("eval", model, data, "--json", "--device", "cpu", "--quiet").stdout)

    # ------------------------------------------------------------------------------------------
    # What bins buy

    def test_bins_let_an_fm_fit_a_curved_effect_per_category(self):
        flags = ["--model", "fm", "--epochs", "40", "--valid-fraction", "0", "--patience", "0"]
        plain, _ = self.fit("fm.h5", *flags)
        binned, _ = self.fit("fm-bins.h5", *flags, "--bins", "16")
        rmse_plain = self.evaluate(plain, self.test)["rmse"]
        rmse_binned = self.evaluate(binned, self.test)["rmse"]
        print(f"\nfm test RMSE: {rmse_plain:.3f} without bins, {rmse_binned:.3f} with --bins 16")
        # Without bins the fm has a slope of x per city, which cannot follow the steps (RMSE about
        # the curve's spread); with 16 bins crossed with the city it is close to the noise (0.2).
        self.assertLess(rmse_binned, 0.5 * rmse_plain, (rmse_binned, rmse_plain))
        self.assertLess(rmse_binned, 0.6, (rmse_binned, rmse_plain))
        self.assertGreater(rmse_plain, 1.0, (rmse_binned, rmse_plain))

    # ------------------------------------------------------------------------------------------
    # Where the edges fall, the slots, the format

    def test_edges_are_the_training_quartiles_and_the_format_is_2(self):
        model, _ = self.fit("linear-bins4.h5", "--bins", "x=4", "--valid-fraction", "0", "--epochs", "5")
        prep = preparation(model)
        self.assertEqual(prep["format_version"], 2)
        numeric = {n["name"]: n for n in prep["numeric"]}
        self.assertTrue(numeric["x"]["binned"])
        self.assertNotIn("bin_edges", numeric["x2"])  # x2=default, no bins
        self.assertFalse(numeric["x2"].get("binned", False))
        edges = np.array(numeric["x"]["bin_edges"])
        self.assertEqual(len(edges), 3)
        x = self.train_df["x"].to_numpy()
        # Equal-count bins: each edge is the training quartile, within the sketch's rank error
        # (about 1.5/1024 of the rows) and float32's rounding.
        np.testing.assert_allclose(edges, np.quantile(x, [0.25, 0.5, 0.75]), atol=0.05)
        np.testing.assert_allclose([np.mean(x < e) for e in edges], [0.25, 0.5, 0.75], atol=0.003)
        bins = [g for g in prep["sparse"] if g["kind"] == "bins"]
        self.assertEqual([(g["name"], g["slots"]) for g in bins], [("x#bins", 5)])  # 4 bins + missing
        # The weights: dense x, x2, then the one-hot of city, then x's 5 bin slots.
        city_slots = next(g["slots"] for g in prep["sparse"] if g["name"] == "city")
        self.assertEqual(model_arrays(model)["weights"].shape, (1, 2 + city_slots + 5))

    def test_a_model_without_bins_stays_format_1(self):
        model, _ = self.fit("linear-plain.h5", "--epochs", "2")
        prep = preparation(model)
        self.assertEqual(prep["format_version"], 1)
        self.assertFalse(any("binned" in n or "bin_edges" in n for n in prep["numeric"]))
        self.assertFalse(any(g["kind"] == "bins" for g in prep["sparse"]))
        # --bins 0 is no bins, and so is a per-column 0.
        model, _ = self.fit("linear-zero.h5", "--epochs", "2", "--bins", "0,x=0")
        self.assertEqual(preparation(model)["format_version"], 1)

    def test_scores_follow_the_bin_of_each_raw_value(self):
        # A linear model on x alone, 4 bins: score = mean + std * (bias + w_x * prep(x) + w[slot(x)]),
        # recomputed here from the model file, on values inside, on and outside the training
        # range, NaN (its own slot) and the edges themselves (a value on an edge is in the bin above).
        df = self.train_df[["x", "y"]]
        data = import_frame(df, self.dir, "x-only-data")
        model, _ = self.fit("x-only.h5", "--bins", "4", "--epochs", "5", data=data)
        prep = preparation(model)
        n = prep["numeric"][0]
        edges = np.array(n["bin_edges"], dtype=np.float32)
        weights = model_arrays(model)["weights"][0]
        bias = model_arrays(model)["bias"][0]
        mean = float(model_text(model, "target_mean"))
        std = float(model_text(model, "target_std"))
        self.assertEqual(weights.shape, (1 + 5,))
        probe = np.concatenate([[-1e6, -5.0, 0.0, 10.0, 50.0, 1e6, np.nan, np.nan],
                                edges, np.nextafter(edges, np.float32(-np.inf)), np.linspace(0, 10, 41)])
        new = import_frame(pd.DataFrame({"x": probe}), self.dir, "probe")
        # Not probe.csv, the file probe.h5 was imported from: scores never replace it.
        got = self.scores(model, new, "probe_scores.csv")["prediction"].to_numpy()
        x = probe.astype(np.float32)
        filled = np.where(np.isnan(x), np.float32(n["fill"]), x)
        prepared = (filled.astype(np.float64) - n["center"]) * n["inv_scale"]
        slot = np.where(np.isnan(x), len(edges) + 1, np.searchsorted(edges, x, side="right"))
        self.assertEqual(sorted(set(slot[~np.isnan(x)])), [0, 1, 2, 3])
        want = mean + std * (bias + weights[0] * prepared + weights[1 + slot])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3 * std)
        # The bins carry the curve: their weights differ by much more than noise.
        self.assertGreater(np.ptp(weights[1:5]), 0.1)

    # ------------------------------------------------------------------------------------------
    # Every command on a binned model

    def binned_fm(self):
        if not hasattr(type(self), "_binned_fm"):
            model, _ = self.fit("shared-fm-bins.h5", "--model", "fm", "--bins", "16", "--epochs", "10")
            type(self)._binned_fm = model
        return type(self)._binned_fm

    def test_score_eval_drift_report_on_a_binned_model(self):
        model = self.binned_fm()
        # New data with NaN in the binned columns and values far outside the training range.
        odd = self.test_df.copy()
        odd.loc[::7, "x"] = np.nan
        odd.loc[1::11, "x2"] = np.nan
        odd.loc[2::13, "x"] = -30.0
        odd.loc[3::13, "x"] = 1e5
        odd.loc[4::17, "x2"] = 40.0
        odd_path = import_frame(odd, self.dir, "odd")
        for data, name in [(self.test, "test"), (odd_path, "odd")]:
            first = self.scores(model, data, name + "-1.csv")
            second = self.scores(model, data, name + "-2.csv")
            self.assertEqual(len(first), len(odd))
            self.assertTrue(np.isfinite(first["prediction"]).all(), name)
            pd.testing.assert_frame_equal(first, second)  # the same model scores the same
            metrics = self.evaluate(model, data)
            y, p = (odd if name == "odd" else self.test_df)["y"], first["prediction"]
            self.assertAlmostEqual(metrics["rmse"], np.sqrt(mean_squared_error(y, p)), delta=1e-4 * metrics["rmse"])
            self.assertAlmostEqual(metrics["mae"], mean_absolute_error(y, p), delta=1e-4 * metrics["mae"])
            if "r2" in metrics:
                # (far from 1 on the odd file: x = 1e5 is outside every bin edge but not clipped, so
                # its slope carries it far)
                self.assertAlmostEqual(metrics["r2"], r2_score(y, p), delta=1e-4 * max(1.0, abs(metrics["r2"])))
        # A row's score depends on its own values only: the odd rows that kept x and x2 score as in
        # the clean file, NaN rows as x's missing slot (and its fill) would.
        clean = self.scores(model, self.test, "test-1.csv")["prediction"]
        odd_scores = self.scores(model, odd_path, "odd-1.csv")["prediction"]
        same = (odd["x"] == self.test_df["x"]) & (odd["x2"] == self.test_df["x2"])
        np.testing.assert_array_equal(odd_scores[same], clean[same])
        self.assertFalse(np.allclose(odd_scores[~same], clean[~same]))

        # Drift: the test split is no drift; the odd file is (x's missing rate and range).
        proc = attempt("drift", model, self.test, "--json", "--device", "cpu", "--quiet")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        report = json.loads(proc.stdout)
        self.assertEqual(sorted(f["name"] for f in report["features"]), ["city", "x", "x2"])
        proc = attempt("drift", model, odd_path, "--json", "--device", "cpu", "--quiet")
        self.assertEqual(proc.returncode, 3, proc.stderr)
        x = next(f for f in json.loads(proc.stdout)["features"] if f["name"] == "x")
        self.assertEqual(x["status"], "alert")

        # The report, with --eval and --drift, names the bins among the weights.
        html = self.path("report.html")
        checked("report", model, "--eval", self.test, "--drift", odd_path, "--out", html, "--device", "cpu",
                "--quiet")
        with open(html, encoding="utf-8") as f:
            page = f.read()
        self.assertIn("x#bins", page)
        self.assertIn("<svg", page)

        # lathe info (the devices; it reads no model) still answers.
        checked("info")

    # ------------------------------------------------------------------------------------------
    # The option

    def test_per_column_syntax_bins_all_numeric_columns_but_those_set_to_zero(self):
        model, _ = self.fit("all-but-x2.h5", "--bins", "8,x2=0", "--epochs", "2")
        prep = preparation(model)
        binned = {n["name"]: len(n.get("bin_edges", [])) for n in prep["numeric"] if n.get("binned")}
        self.assertEqual(binned, {"x": 7})
        self.assertEqual([g["name"] for g in prep["sparse"] if g["kind"] == "bins"], ["x#bins"])
        # And the other way round: one column only.
        model, _ = self.fit("x2-only.h5", "--bins", "x2=3", "--epochs", "2")
        prep = preparation(model)
        self.assertEqual({n["name"]: len(n["bin_edges"]) for n in prep["numeric"] if n.get("binned")}, {"x2": 2})

    def test_few_distinct_values_give_fewer_bins_with_a_note(self):
        df = self.train_df[["x", "y"]].copy()
        df["x"] = np.floor(df["x"] / 3.4)  # 0, 1, 2: three distinct values
        data = import_frame(df, self.dir, "three-values-data")
        model = self.path("three-values.h5")
        proc = checked("train", data, "--label", "y", "--task", "regression", "--out", model, "--device", "cpu",
                       "--bins", "16", "--epochs", "2")
        self.assertIn("bins of the 16 asked", proc.stderr)
        edges = preparation(model)["numeric"][0]["bin_edges"]
        self.assertEqual(edges, [1.0, 2.0])

    def test_more_bins_than_rows_leave_no_bin_empty(self):
        # 100 training rows, 1024 bins asked: at most one bin per row, each holding a training row
        # (the sketch's quantiles between two values would open bins of no row), with a note that
        # says why. "x" has 100 distinct values, "r" 10 values repeated unevenly.
        rng = np.random.default_rng(5)
        r = rng.permutation(np.repeat(np.arange(10), np.arange(19, 0, -2)))  # 19 zeros, 17 ones, ... one 9
        df = pd.DataFrame({"x": rng.uniform(0, 10, 100), "r": r, "y": rng.normal(size=100)})
        data = import_frame(df, self.dir, "hundred-rows")
        model = self.path("hundred-rows-model.h5")
        proc = checked("train", data, "--label", "y", "--task", "regression", "--out", model, "--device", "cpu",
                       "--bins", "1024", "--valid-fraction", "0", "--epochs", "1")
        numeric = {n["name"]: n for n in preparation(model)["numeric"]}
        for name in ("x", "r"):
            edges = np.array(numeric[name]["bin_edges"], dtype=np.float32)
            values = df[name].to_numpy(np.float32)
            rows = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
            self.assertEqual(int((rows == 0).sum()), 0, (name, rows))
        self.assertEqual(len(numeric["x"]["bin_edges"]), 99)
        self.assertEqual(len(numeric["r"]["bin_edges"]), 9)
        self.assertIn("column 'x': 100 bins of the 1024 asked (it has only 100 values)", proc.stderr)
        self.assertIn("column 'r': 10 bins of the 1024 asked (it has only 100 values; where they repeat, quantiles "
                      "coincide", proc.stderr)
        # `lathe prepare` fits the same bins: its x#bins column takes every slot, x's once each.
        out = self.path("hundred-rows-prepared.h5")
        checked("prepare", data, out, "--label", "y", "--bins", "1024", "--quiet")
        with h5py.File(out, "r") as f:
            for name, distinct in (("x", 100), ("r", 10)):
                slots = f[name + "#bins"][:]
                self.assertEqual(sorted(set(slots)), list(range(distinct)), name)

    def assert_refused(self, flags, code, *words):
        model = self.path("refused.h5")
        proc = attempt("train", self.train, "--label", "y", "--task", "regression", "--out", model, "--device",
                       "cpu", "--quiet", *flags)
        self.assertEqual(proc.returncode, code, (flags, proc.stderr))
        self.assertIn("lathe: error:", proc.stderr)
        for word in words:
            self.assertIn(word, proc.stderr, flags)
        self.assertFalse(os.path.exists(model), flags)
        self.assertFalse([n for n in os.listdir(self.dir) if ".tmp" in n])

    def test_bad_values_are_usage_errors_naming_the_item(self):
        for value in ["1", "-3", "abc", "5000", "x=1", "x=abc", "2.5", "x=", "=4"]:
            self.assert_refused(["--bins", value], 2, "--bins", value)
        self.assert_refused(["--bins", "8,16"], 2, "--bins", "two defaults")
        self.assert_refused(["--bins", "x=4,x=8"], 2, "--bins", "given twice")

    def test_bins_on_a_categorical_label_or_absent_column_is_an_error_naming_it(self):
        self.assert_refused(["--bins", "city=4"], 1, "'city'", "categorical")
        self.assert_refused(["--bins", "nope=4"], 1, "'nope'")
        self.assert_refused(["--bins", "y=4"], 1, "'y'", "label")
        self.assert_refused(["--bins", "x=4", "--drop", "x"], 1, "'x'", "not a feature")

    def test_a_column_named_like_a_columns_bins_is_an_error_naming_both(self):
        df = self.train_df[["x", "y"]].copy()
        df["x#bins"] = np.where(df["x"] > 0, "hi", "lo")
        data = import_frame(df, self.dir, "clash-data")
        model = self.path("clash.h5")
        proc = attempt("train", data, "--label", "y", "--task", "regression", "--out", model, "--device", "cpu",
                       "--quiet", "--bins", "x=4")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("'x'", proc.stderr)
        self.assertIn("'x#bins'", proc.stderr)
        self.assertFalse(os.path.exists(model))

    def test_a_retraining_names_why_earlier_bins_were_not_carried(self):
        parent, _ = self.fit("parent-of-notes.h5", "--bins", "x=4,x2=4", "--epochs", "2")
        model = self.path("child-of-notes.h5")
        proc = checked("train", self.train, "--label", "y", "--task", "regression", "--out", model, "--device",
                       "cpu", "--seed", "3", "--epochs", "1", "--init-model", parent, "--refit-prep",
                       "--bins", "x=4", "--drop", "x2")
        self.assertIn("quantile bins of 'x2' were not carried: no longer a numeric feature here", proc.stderr)
        self.assertNotIn("'x2' were not carried: this run does not bin them", proc.stderr)
        model = self.path("child-of-notes-2.h5")
        proc = checked("train", self.train, "--label", "y", "--task", "regression", "--out", model, "--device",
                       "cpu", "--seed", "3", "--epochs", "1", "--init-model", parent, "--refit-prep",
                       "--bins", "x=4")
        self.assertIn("quantile bins of 'x2' were not carried: this run does not bin them (--bins)", proc.stderr)

    def test_prepare_from_and_init_model_refuse_bins_as_a_fitting_option(self):
        model, _ = self.fit("for-prepare.h5", "--bins", "4", "--epochs", "2")
        out = self.path("prepared.h5")
        proc = attempt("prepare", self.test, out, "--from", model, "--bins", "4", "--quiet")
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--bins", proc.stderr)
        self.assertFalse(os.path.exists(out))

    def test_config_key_bins_works_like_the_flag(self):
        config = self.path("bins.toml")
        with open(config, "w") as f:
            f.write('task = "regression"\nlabel = "y"\nbins = 16\nepochs = 3\nseed = 3\n')
        by_config = self.path("by-config.h5")
        checked("train", self.train, "--config", config, "--out", by_config, "--device", "cpu", "--quiet")
        by_flag, _ = self.fit("by-flag.h5", "--bins", "16", "--epochs", "3")
        self.assertEqual(preparation(by_config), preparation(by_flag))
        a, b = model_arrays(by_config), model_arrays(by_flag)
        self.assertEqual(a["weights"].tobytes(), b["weights"].tobytes())
        # A string with per-column items works too, and a bad value names the key and the file.
        with open(config, "w") as f:
            f.write('task = "regression"\nlabel = "y"\nbins = "8,x2=0"\nepochs = 1\n')
        checked("train", self.train, "--config", config, "--out", self.path("by-config-2.h5"), "--device", "cpu",
                "--quiet")
        self.assertEqual([n["name"] for n in preparation(self.path("by-config-2.h5"))["numeric"] if n.get("binned")],
                         ["x"])
        with open(config, "w") as f:
            f.write('task = "regression"\nlabel = "y"\nbins = 1\n')
        proc = attempt("train", self.train, "--config", config, "--out", self.path("bad-config.h5"), "--quiet")
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("bins", proc.stderr)
        self.assertFalse(os.path.exists(self.path("bad-config.h5")))

    # ------------------------------------------------------------------------------------------
    # Crossing bins (--cross x#bins*city): the pair (bin of the raw x, city) hashed as a categorical
    # cross would hash it

    def test_bins_crossed_with_the_category_let_a_linear_model_fit_a_curve_per_category(self):
        flags = ["--epochs", "20", "--valid-fraction", "0", "--patience", "0", "--bins", "x=16"]
        binned, _ = self.fit("linear-bins-only.h5", *flags)
        crossed, _ = self.fit("linear-bins-crossed.h5", *flags, "--cross", "x#bins*city")
        rmse_binned = self.evaluate(binned, self.test)["rmse"]
        rmse_crossed = self.evaluate(crossed, self.test)["rmse"]
        print(f"\nlinear test RMSE: {rmse_binned:.3f} with --bins x=16, {rmse_crossed:.3f} crossed with city")
        # The bins alone give one step function for every city; crossed, a step per bin and city
        # follows curve(x) * EFFECT[city] to within the bins' width (the noise is 0.2).
        self.assertLess(rmse_crossed, 0.45, (rmse_crossed, rmse_binned))
        self.assertGreater(rmse_binned, 1.0, (rmse_crossed, rmse_binned))
        prep = preparation(crossed)
        self.assertEqual(prep["format_version"], 3)
        cross = next(g for g in prep["sparse"] if g["kind"] == "categorical_cross")
        self.assertEqual((cross["name"], cross["a_bins"], cross["slots"]), ("x#bins*city", True, 65536))
        self.assertEqual(prep["numeric"][cross["a"]]["name"], "x")
        self.assertEqual(prep["categorical"][cross["b"]]["name"], "city")

    def crossed_model(self):
        if not hasattr(type(self), "_crossed_model"):
            model, _ = self.fit("shared-crossed.h5", "--model", "fm", "--bins", "x=8,x2=4", "--epochs", "5",
                                "--cross", "x#bins*city,x2#bins*x#bins", "--hash-buckets", "4096")
            type(self)._crossed_model = model
        return type(self)._crossed_model

    def test_a_cross_slot_is_the_pair_of_bin_and_category_and_missing_is_a_bin(self):
        # In the prepared file: every (bin of x, city) pair has one cross code and distinct pairs
        # distinct codes (4096 buckets for 40 pairs: no collision here); a missing x is in x's
        # missing bin, as for x#bins alone, and crosses as that bin: one code per city, none of the
        # present bins'.
        df = self.train_df.copy()
        df.loc[::9, "x"] = np.nan
        data = import_frame(df, self.dir, "crossed-missing-data")
        out = self.path("crossed-missing-prepared.h5")
        checked("prepare", data, out, "--label", "y", "--bins", "x=8", "--cross", "x#bins*city", "--hash-buckets",
                "4096", "--quiet")

        def labels(f, name):
            names = np.array([v.decode() if isinstance(v, bytes) else v for v in f[name].attrs["categories"]])
            return names[f[name][:]]

        with h5py.File(out, "r") as f:
            bins, city, cross = labels(f, "x#bins"), labels(f, "city"), f["x#bins*city"][:]
        missing = df["x"].isna().to_numpy()
        self.assertTrue((bins[missing] == "(missing)").all())
        self.assertFalse((bins[~missing] == "(missing)").any())
        code_of = {}
        for pair, code in zip(zip(bins, city), cross):
            self.assertEqual(code_of.setdefault(pair, code), code, pair)
        self.assertEqual(len(code_of), 9 * 4)  # 8 bins and the missing one, 4 cities
        self.assertEqual(len(set(code_of.values())), len(code_of))

    def test_score_eval_prepare_and_retrain_with_crossed_bins(self):
        model = self.crossed_model()
        first = self.scores(model, self.test, "crossed-1.csv")
        pd.testing.assert_frame_equal(first, self.scores(model, self.test, "crossed-2.csv"))
        metrics = self.evaluate(model, self.test)
        self.assertAlmostEqual(metrics["rmse"], np.sqrt(mean_squared_error(self.test_df["y"], first["prediction"])),
                               delta=1e-4 * metrics["rmse"])
        # `lathe prepare` writes each cross as bucket codes; --from applies the same preparation
        # to other rows, the test split prepared both ways gives the same codes.
        prepared = self.path("crossed-prepared.h5")
        checked("prepare", self.train, prepared, "--label", "y", "--bins", "x=8,x2=4", "--cross",
                "x#bins*city,x2#bins*x#bins", "--hash-buckets", "4096", "--quiet")
        with h5py.File(prepared, "r") as f:
            self.assertIn("x#bins*city", f)
            self.assertIn("x2#bins*x#bins", f)
            codes = f["x#bins*city"][:]
            self.assertGreater(len(set(codes)), 8)
            self.assertEqual(json.loads(f.attrs["lathe_preparation"])["format_version"], 3)
        from_prepared = self.path("crossed-test-from-prepared.h5")
        from_model = self.path("crossed-test-from-model.h5")
        checked("prepare", self.test, from_prepared, "--from", prepared, "--quiet")
        checked("prepare", self.test, from_model, "--from", model, "--quiet")
        with h5py.File(from_prepared, "r") as a, h5py.File(from_model, "r") as b:
            # The model's preparation was fitted on its training rows (80%), the file's on all:
            # other edges, the same kind of column.
            self.assertEqual(len(a["x#bins*city"]), len(self.test_df))
            self.assertEqual(len(b["x#bins*city"]), len(self.test_df))
        # A model trained on the prepared file scores data prepared by it.
        on_prepared = self.path("crossed-on-prepared.h5")
        checked("train", prepared, "--label", "y", "--task", "regression", "--out", on_prepared, "--device", "cpu",
                "--quiet", "--epochs", "2")
        checked("score", on_prepared, from_prepared, "--out", self.path("crossed-on-prepared.csv"), "--device",
                "cpu", "--quiet")
        # Retraining refits the bins on other rows (other edges): the cross's weights move pair by
        # pair, each new bin taking the earlier bin of its middle, as the bins' own weights do.
        child = self.path("crossed-child.h5")
        proc = checked("train", self.test, "--label", "y", "--task", "regression", "--out", child, "--device",
                       "cpu", "--seed", "3", "--epochs", "1", "--model", "fm", "--init-model", model,
                       "--refit-prep", "--bins", "x=8,x2=4", "--cross", "x#bins*city,x2#bins*x#bins",
                       "--hash-buckets", "4096")
        self.assertIn("cross x#bins*city (4096 buckets) were moved to this run's refitted bins pair by pair",
                      proc.stderr)
        self.assertIn("cross x2#bins*x#bins (4096 buckets) were moved to this run's refitted bins", proc.stderr)
        self.assertIn("pairs of bins and categories both preparations know", proc.stderr)
        # Kept as it is (no --refit-prep), the preparation and its crosses carry over unchanged.
        kept = self.path("crossed-kept.h5")
        checked("train", self.test, "--label", "y", "--task", "regression", "--out", kept, "--device", "cpu",
                "--quiet", "--epochs", "1", "--model", "fm", "--init-model", model)
        self.assertEqual(preparation(kept), preparation(model))

    def test_a_cross_whose_sides_changed_kind_starts_at_zero_with_a_note(self):
        # The same cross name, other sides: x's bins in the earlier model, a categorical column
        # named 'x#bins' in the new data (which has no x).
        parent, _ = self.fit("kind-parent.h5", "--bins", "x=4", "--cross", "x#bins*city", "--epochs", "1")
        df = self.train_df[["x2", "city", "y"]].copy()
        df["x#bins"] = np.where(self.train_df["x"] > 5, "hi", "lo")
        data = import_frame(df, self.dir, "kind-data")
        proc = checked("train", data, "--label", "y", "--task", "regression", "--out", self.path("kind-child.h5"),
                       "--device", "cpu", "--seed", "3", "--epochs", "1", "--cross", "x#bins*city", "--init-model",
                       parent, "--refit-prep")
        self.assertIn("the weights of its cross x#bins*city were not carried: its sides are other columns in this "
                      "run", proc.stderr)

    def test_bad_crosses_of_bins_are_errors_naming_them(self):
        self.assert_refused(["--cross", "x#bins*city"], 1, "'x'", "--bins x=")
        self.assert_refused(["--bins", "x=4", "--cross", "city#bins*x2"], 1, "'city'", "categorical")
        self.assert_refused(["--bins", "x=4", "--cross", "x#bins*x2"], 1, "x#bins*x2", "numeric column 'x2'")
        self.assert_refused(["--bins", "x=4", "--cross", "x#bins*x#bins"], 1, "x#bins*x#bins", "themselves")
        self.assert_refused(["--bins", "x=4", "--cross", "y#bins*city"], 1, "'y'", "label")

    # ------------------------------------------------------------------------------------------
    # Checkpoints, devices

    def test_resume_with_bins_gives_the_weights_of_an_uninterrupted_run(self):
        pattern = self.path("ck-{epoch}.h5")
        flags = ["--model", "fm", "--bins", "8", "--epochs", "4", "--patience", "0", "--optimizer", "adam",
                 "--schedule", "cosine"]
        whole, summary_whole = self.fit("whole.h5", *flags, "--checkpoint-every", "2", "--checkpoint", pattern)
        self.assertEqual(summary_whole["epochs_run"], 4)
        resumed, summary = self.fit("resumed.h5", *flags, "--resume", self.path("ck-2.h5"))
        self.assertEqual(summary["epochs_run"], 4)
        a, b = model_arrays(whole), model_arrays(resumed)
        for key in ("weights", "bias", "factors"):
            self.assertEqual(a[key].tobytes(), b[key].tobytes(), key)
        self.assertEqual(preparation(whole), preparation(resumed))
        # A checkpoint's preparation must match: other bins are refused, naming the checkpoint.
        proc = attempt("train", self.train, "--label", "y", "--task", "regression", "--out", self.path("r2.h5"),
                       "--device", "cpu", "--quiet", "--seed", "3", *[f if f != "8" else "4" for f in flags],
                       "--resume", self.path("ck-2.h5"))
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("ck-2.h5", proc.stderr)

    def test_cpu_and_default_device_agree(self):
        flags = ["--model", "fm", "--bins", "16", "--epochs", "3"]
        cpu, _ = self.fit("cpu.h5", *flags)
        default = self.path("default.h5")
        checked("train", self.train, "--label", "y", "--task", "regression", "--out", default, "--quiet",
                "--seed", "3", *flags)
        self.assertEqual(preparation(cpu), preparation(default))
        a, b = model_arrays(cpu), model_arrays(default)
        for key in ("weights", "bias", "factors"):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5, err_msg=key)
        s_cpu = self.scores(cpu, self.test, "s-cpu.csv")["prediction"]
        out = self.path("s-default.csv")
        checked("score", default, self.test, "--out", out, "--quiet")
        np.testing.assert_allclose(pd.read_csv(out)["prediction"], s_cpu, rtol=1e-4, atol=1e-4)


if __name__ == "__main__":
    unittest.main()
