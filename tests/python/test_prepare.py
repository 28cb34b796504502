"""`lathe prepare` against scikit-learn and pandas on the same data.

Each test writes a CSV, imports it with `lathe import`, prepares it, reads the output with h5py and
compares with the scikit-learn transformer (or pandas operation) that users would otherwise run.
Outputs are float32, so comparisons are to float32 precision.
"""
import os
import shutil
import subprocess
import tempfile
import unittest

import h5py
import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import MinMaxScaler, PolynomialFeatures, RobustScaler, StandardScaler

from lathe_run import SHARED, LATHE, run  # noqa: F401




def frame(rows=1000, seed=5, missing=0.0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "age": rng.normal(40, 12, rows).round(1),
        "income": rng.lognormal(10, 1, rows).round(2),
        "score": rng.uniform(-5, 5, rows),
        "visits": rng.poisson(3, rows).astype(float),
    })
    if missing:
        for c in ["age", "income", "score"]:
            df.loc[rng.uniform(0, 1, rows) < missing, c] = np.nan
    return df


class PrepareTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lathe-prepare-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def imported(self, df, name="in"):
        csv = self.path(name + ".csv")
        df.to_csv(csv, index=False)
        h5 = self.path(name + ".h5")
        run("import", csv, h5, "--quiet")
        return h5

    def prepare(self, h5, *flags, name="out"):
        out = self.path(name + ".h5")
        run("prepare", h5, out, "--device", "cpu", "--quiet", *flags)
        return h5py.File(out, "r")

    def assertClose(self, actual, expected, rtol=2e-6, atol=2e-6, msg=None):
        np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                                   rtol=rtol, atol=atol, err_msg=msg or "")

    @staticmethod
    def as_float32(df):
        # Lathe reads every value as float32: compare with the same inputs.
        return df.astype(np.float32).astype(np.float64)

    def test_standard_scaler(self):
        df = frame()
        with self.prepare(self.imported(df), "--scale", "standard") as out:
            expected = StandardScaler().fit_transform(self.as_float32(df))
            for j, c in enumerate(df.columns):
                self.assertClose(out[c][:], expected[:, j], msg=c)

    def test_minmax_scaler(self):
        df = frame()
        with self.prepare(self.imported(df), "--scale", "minmax") as out:
            expected = MinMaxScaler().fit_transform(self.as_float32(df))
            for j, c in enumerate(df.columns):
                self.assertClose(out[c][:], expected[:, j], msg=c)

    def test_robust_scaler(self):
        df = frame()
        with self.prepare(self.imported(df), "--scale", "robust") as out:
            expected = RobustScaler().fit_transform(self.as_float32(df))
            for j, c in enumerate(df.columns):
                self.assertClose(out[c][:], expected[:, j], rtol=1e-4, atol=1e-4, msg=c)

    def test_simple_imputer_with_indicators(self):
        df = frame(missing=0.1)
        for strategy in ["mean", "median"]:
            with self.prepare(self.imported(df), "--impute", strategy, "--scale", "none",
                              "--missing-indicators", name=strategy) as out:
                imputer = SimpleImputer(strategy=strategy, add_indicator=True)
                expected = imputer.fit_transform(self.as_float32(df))
                for j, c in enumerate(df.columns):
                    self.assertClose(out[c][:], expected[:, j], rtol=1e-4, atol=1e-4, msg=(strategy, c))
                for k, j in enumerate(imputer.indicator_.features_):
                    name = df.columns[j] + "_missing"
                    self.assertIn(name, out)
                    self.assertClose(out[name][:], expected[:, len(df.columns) + k], msg=name)
                self.assertNotIn("visits_missing", out)  # no missing values, no indicator

    def test_constant_imputation_per_column(self):
        df = frame(missing=0.2)
        with self.prepare(self.imported(df), "--impute", "mean,age=constant:-1,score=median", "--scale", "none") as out:
            x = self.as_float32(df)
            self.assertClose(out["age"][:], x["age"].fillna(-1))
            self.assertClose(out["income"][:], x["income"].fillna(x["income"].mean()), rtol=1e-5)
            self.assertClose(out["score"][:], x["score"].fillna(x["score"].median()), rtol=1e-4, atol=1e-4)

    def test_interaction_crosses_match_polynomial_features(self):
        df = frame()
        with self.prepare(self.imported(df), "--scale", "standard", "--cross", "all") as out:
            scaled = StandardScaler().fit_transform(self.as_float32(df))
            poly = PolynomialFeatures(degree=2, interaction_only=True, include_bias=False)
            expected = poly.fit_transform(scaled)
            names = poly.get_feature_names_out(list(df.columns))
            for j, name in enumerate(names):
                lathe_name = name.replace(" ", "*")
                self.assertIn(lathe_name, out, lathe_name)
                self.assertClose(out[lathe_name][:], expected[:, j], rtol=1e-5, atol=1e-5, msg=lathe_name)

    def test_clipping(self):
        df = frame()
        with self.prepare(self.imported(df), "--scale", "none", "--clip", "std:2,visits=none") as out:
            x = self.as_float32(df)
            for c in ["age", "income", "score"]:
                lo, hi = x[c].mean() - 2 * x[c].std(ddof=0), x[c].mean() + 2 * x[c].std(ddof=0)
                self.assertClose(out[c][:], x[c].clip(lo, hi), rtol=1e-5, msg=c)
            self.assertClose(out["visits"][:], x["visits"])

    def test_centering_is_exact_for_large_offsets(self):
        rng = np.random.default_rng(1)
        df = pd.DataFrame({"ts": 1e6 + rng.normal(0, 1, 5000), "other": rng.normal(0, 1, 5000)})
        with self.prepare(self.imported(df), "--scale", "standard") as out:
            x = df["ts"].astype(np.float32).astype(np.float64)
            expected = (x - x.mean()) / x.std(ddof=0)  # float64 reference on the float32 inputs
            err = np.max(np.abs(out["ts"][:] - expected))
            # float32 rounding of values of magnitude ~3 is ~2.4e-7; a float32 subtraction would be
            # off by ~0.06 (the float32 spacing at 1e6).
            self.assertLess(err, 1e-6)

    def test_dedup_matches_pandas_drop_duplicates(self):
        rng = np.random.default_rng(2)
        base = pd.DataFrame({
            "a": rng.integers(0, 5, 600).astype(float),
            "b": rng.integers(0, 3, 600).astype(float),
            "c": rng.choice(["x", "y", "z"], 600),
        })
        base.loc[rng.uniform(0, 1, 600) < 0.1, "a"] = np.nan  # missing equals missing
        # Plant exact copies of early rows far later, across many 64-row blocks.
        copies = base.iloc[rng.integers(0, 600, 300)]
        df = pd.concat([base, copies], ignore_index=True)
        with self.prepare(self.imported(df), "--dedup", "--block-rows", "64", "--scale", "none",
                          "--impute", "constant:-9") as out:
            expected = df.drop_duplicates(keep="first")
            self.assertEqual(len(out["a"]), len(expected))
            self.assertClose(out["a"][:], expected["a"].fillna(-9))
            self.assertClose(out["b"][:], expected["b"])
            labels = [s.decode() if isinstance(s, bytes) else s for s in out["c"].attrs["categories"]]
            self.assertEqual([labels[k] for k in out["c"][:]], list(expected["c"]))

    def test_categorical_slots_keep_labels_and_label_passes_through(self):
        df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "city": ["Oslo", "Lima", None, "Oslo"],
                           "churn": ["no", "yes", "no", "yes"]})
        with self.prepare(self.imported(df), "--label", "churn") as out:
            labels = [s.decode() if isinstance(s, bytes) else s for s in out["city"].attrs["categories"]]
            got = [labels[k] for k in out["city"][:]]
            self.assertEqual(got[0], "Oslo")
            self.assertEqual(got[1], "Lima")
            self.assertEqual(got[3], "Oslo")
            self.assertIn(got[2], ("(missing)",))
            self.assertIn("churn", out)
            churn = [s.decode() if isinstance(s, bytes) else s for s in out["churn"].attrs["categories"]]
            self.assertEqual([churn[k] for k in out["churn"][:]], ["no", "yes", "no", "yes"])
            self.assertNotIn("churn_missing", out)

    def test_constant_and_all_missing_columns_stay_finite(self):
        df = pd.DataFrame({"const": [5.0] * 50, "empty": [np.nan] * 50, "x": np.arange(50.0)})
        for scale in ["standard", "minmax", "robust"]:
            with self.prepare(self.imported(df), "--scale", scale, name=scale) as out:
                for c in df.columns:
                    self.assertTrue(np.all(np.isfinite(out[c][:])), (scale, c))

    def test_bad_input_is_named(self):
        df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "city": ["a", "b", "a"]})
        h5 = self.imported(df)
        out = self.path("bad.h5")
        for flags, needle in [(["--label", "nope"], "nope"),
                              (["--cross", "x*nope"], "nope"),
                              (["--impute", "city=median"], "city"),
                              (["--scale", "fancy"], "fancy"),
                              (["--cross", "x"], "x")]:
            proc = run("prepare", h5, out, "--quiet", *flags, check=False)
            self.assertNotEqual(proc.returncode, 0, flags)
            self.assertIn(needle, proc.stderr, flags)
            self.assertFalse(os.path.exists(out), flags)


if __name__ == "__main__":
    unittest.main()
