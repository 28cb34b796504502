"""`lathe prepare` against scikit-learn and pandas on the same data.

Each test writes a CSV, imports it with `lathe import`, prepares it, reads the output with h5py and
compares with the scikit-learn transformer (or pandas operation) that users would otherwise run.
Outputs are float32, so comparisons are to float32 precision.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import h5py
import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import MinMaxScaler, PolynomialFeatures, RobustScaler, StandardScaler

from lathe_run import LATHE, SHARED, import_frame, run  # noqa: F401




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
        return import_frame(df, self.dir, name)

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

    def test_cross_all_beside_named_crosses(self):
        # `all` in a list adds every numeric pair to the crosses named; a pair named as well
        # (income*age is age*income) is kept once.
        df = frame()
        df["city"] = np.where(df["visits"] > 3, "north", "south")
        with self.prepare(self.imported(df), "--scale", "none", "--cross", "all,income*age,age*city") as out:
            numeric = ["age", "income", "score", "visits"]
            pairs = [f"{a}*{b}" for i, a in enumerate(numeric) for b in numeric[i + 1:]]
            self.assertEqual([k for k in out.keys() if "*" in k], pairs + ["age*city"])
            x = self.as_float32(df[numeric])
            self.assertClose(out["income*score"][:], x["income"] * x["score"], rtol=1e-6)

    def test_clipping(self):
        df = frame()
        with self.prepare(self.imported(df), "--scale", "none", "--clip", "std:2,visits=none") as out:
            x = self.as_float32(df)
            for c in ["age", "income", "score"]:
                lo, hi = x[c].mean() - 2 * x[c].std(ddof=0), x[c].mean() + 2 * x[c].std(ddof=0)
                self.assertClose(out[c][:], x[c].clip(lo, hi), rtol=1e-5, msg=c)
            self.assertClose(out["visits"][:], x["visits"])

    @staticmethod
    def outliers(rows, seed, missing=0.0):
        # x ~ N(0, 1) with 0.5% of the rows 1000 times further out: what --clip is for.
        rng = np.random.default_rng(seed)
        x = rng.normal(0, 1, rows)
        far = rng.choice(rows, rows // 200, replace=False)
        x[far] *= 1000
        if missing:
            x[rng.uniform(0, 1, rows) < missing] = np.nan
        return x

    def test_clip_then_standard_scale_matches_clip_impute_scale_in_sklearn(self):
        # At most 1024 values: the quantile sketch is exact, so the clipped mean (the fill) and the
        # clipped mean and std (the scaler) are those of np.clip -> SimpleImputer -> StandardScaler
        # fitted on the clipped observed values, to float32 precision.
        df = pd.DataFrame({"q": self.outliers(1000, 11, missing=0.1), "s": self.outliers(1000, 12, missing=0.1)})
        with self.prepare(self.imported(df), "--clip", "quantile:0.01:0.99,s=std:2", "--impute", "mean") as out:
            x = self.as_float32(df)
            numeric = {e["name"]: e for e in json.loads(out.attrs["lathe_preparation"])["numeric"]}
            observed = x["q"].dropna()
            bounds = {"q": (np.quantile(observed, 0.01), np.quantile(observed, 0.99)),
                      "s": (x["s"].mean() - 2 * x["s"].std(ddof=0), x["s"].mean() + 2 * x["s"].std(ddof=0))}
            for c in ["q", "s"]:
                lo, hi = (float(np.float32(b)) for b in bounds[c])
                self.assertAlmostEqual(numeric[c]["clip_lo"], lo, delta=1e-6 * abs(lo), msg=c)
                self.assertAlmostEqual(numeric[c]["clip_hi"], hi, delta=1e-6 * abs(hi), msg=c)
                lo, hi = float(np.float32(numeric[c]["clip_lo"])), float(np.float32(numeric[c]["clip_hi"]))
                clipped = np.clip(x[[c]].to_numpy(), lo, hi)
                imputer = SimpleImputer(strategy="mean")
                scaler = StandardScaler().fit(clipped)  # ignores the missing values
                expected = scaler.transform(imputer.fit_transform(clipped))[:, 0]
                self.assertClose(out[c][:], expected, rtol=1e-5, atol=1e-5, msg=c)
                prepared = out[c][:][~np.isnan(x[c].to_numpy())].astype(np.float64)
                self.assertAlmostEqual(prepared.mean(), 0.0, delta=1e-5, msg=c)
                self.assertAlmostEqual(prepared.std(), 1.0, delta=1e-5, msg=c)
                raw = StandardScaler().fit(x[[c]]).scale_[0]
                self.assertLess(scaler.scale_[0], raw / 10, msg=c)  # the outliers dominate the raw std

    def test_clip_iqr_clips_to_tukeys_fences_where_the_quantiles_lie_among_the_outliers(self):
        # 8% of the values 1000 times further out, more than the 1% and 99% quantiles can cut off:
        # --clip iqr[:K] clips to the quartiles -+ K interquartile ranges (default 1.5), then fills
        # and scales as np.clip -> SimpleImputer -> StandardScaler; a column whose quartiles are one
        # value is left unclipped rather than made constant, with a note where it has other values
        # (a count mostly 0), without one for a flag (two values: nothing to clip).
        rng = np.random.default_rng(21)
        far = rng.normal(0, 1, 1000)
        far[rng.choice(1000, 80, replace=False)] *= 1000
        far[rng.uniform(0, 1, 1000) < 0.05] = np.nan
        df = pd.DataFrame({"q": far, "k": far.copy(), "flag": (np.arange(1000) % 10 == 0).astype(float),
                           "count": (np.arange(1000) % 10 == 0) * (1 + np.arange(1000) % 7).astype(float)})
        data, out_path = self.imported(df), self.path("iqr.h5")
        proc = run("prepare", data, out_path, "--clip", "iqr,k=iqr:3", "--device", "cpu")
        self.assertIn("note: column 'count': its quartiles are one value (0), so --clip iqr would make it constant: "
                      "left unclipped", proc.stderr)
        self.assertNotIn("column 'flag'", proc.stderr)
        with h5py.File(out_path, "r") as out:
            x = self.as_float32(df)
            numeric = {e["name"]: e for e in json.loads(out.attrs["lathe_preparation"])["numeric"]}
            for c in ["flag", "count"]:
                self.assertIsNone(numeric[c]["clip_lo"])
                self.assertIsNone(numeric[c]["clip_hi"])
            for c, k in [("q", 1.5), ("k", 3.0)]:
                q25, q75 = np.quantile(x[c].dropna(), [0.25, 0.75])
                lo, hi = float(np.float32(q25 - k * (q75 - q25))), float(np.float32(q75 + k * (q75 - q25)))
                self.assertAlmostEqual(numeric[c]["clip_lo"], lo, delta=1e-6 * abs(lo), msg=c)
                self.assertAlmostEqual(numeric[c]["clip_hi"], hi, delta=1e-6 * abs(hi), msg=c)
                clipped = np.clip(x[[c]].to_numpy(), np.float32(numeric[c]["clip_lo"]), np.float32(numeric[c]["clip_hi"]))
                scaler = StandardScaler().fit(clipped)  # ignores the missing values
                expected = scaler.transform(SimpleImputer(strategy="mean").fit_transform(clipped))[:, 0]
                self.assertClose(out[c][:], expected, rtol=1e-5, atol=1e-5, msg=c)
                self.assertLess(scaler.scale_[0], 2, msg=c)  # the bulk's spread, not the outliers'
            q99 = np.quantile(x["q"].dropna(), 0.99)
            self.assertGreater(q99, 100)  # where --clip quantile would clip: among the outliers
        for bad in ["iqr:0", "iqr:-1", "iqr:abc", "iqr:1:2", "q=iqr:inf"]:
            proc = run("prepare", data, self.path("bad.h5"), "--clip", bad, "--quiet", check=False)
            self.assertEqual(proc.returncode, 2, (bad, proc.stderr))
            self.assertIn(f"--clip: '{bad}'", proc.stderr)

    def test_a_clip_kind_given_per_column_without_its_parameters_takes_their_defaults(self):
        # A COL=KIND item starts from the default item's settings; `x=quantile` and `x=std` used to
        # keep the default item's LO:HI and K (5%/95%, 1 standard deviation) where --help says
        # 0.01:0.99 and 3, unlike `x=constant`, which fills with 0 after a default of constant:5.
        rng = np.random.default_rng(23)
        df = pd.DataFrame({"x": rng.normal(2, 3, 1000), "z": rng.normal(0, 1, 1000)})
        data = self.imported(df)
        x = self.as_float32(df)["x"]
        q25, q75 = np.quantile(x, [0.25, 0.75])
        for clip, lo, hi in [("quantile:0.05:0.95,x=quantile", np.quantile(x, 0.01), np.quantile(x, 0.99)),
                             ("std:1,x=std", x.mean() - 3 * x.std(ddof=0), x.mean() + 3 * x.std(ddof=0)),
                             ("iqr:3,x=iqr", q25 - 1.5 * (q75 - q25), q75 + 1.5 * (q75 - q25))]:
            with self.subTest(clip=clip), self.prepare(data, "--clip", clip) as out:
                numeric = {e["name"]: e for e in json.loads(out.attrs["lathe_preparation"])["numeric"]}
                self.assertAlmostEqual(numeric["x"]["clip_lo"], float(np.float32(lo)), delta=1e-5 * abs(lo))
                self.assertAlmostEqual(numeric["x"]["clip_hi"], float(np.float32(hi)), delta=1e-5 * abs(hi))

    def test_clip_then_standard_scale_of_a_large_column_has_std_one(self):
        # The QA case: 5000 rows, 25 of them x1000, more than the sketch's 1024 points. The bounds come
        # from the profile (std:3's lie among the 25 outliers, where the sketch knows the clipped
        # std only to several percent); the clipped moments from a pass over the clipped columns,
        # so the fill and the scaler are np.clip -> SimpleImputer -> StandardScaler's to float32
        # precision, with missing values too.
        df = pd.DataFrame({"x": self.outliers(5000, 2), "y": self.outliers(5000, 3, missing=0.05)})
        for clip in ["quantile:0.01:0.99", "std:3"]:
            with self.prepare(self.imported(df), "--clip", clip, name=clip.replace(":", "_")) as out:
                x = self.as_float32(df)
                numeric = {e["name"]: e for e in json.loads(out.attrs["lathe_preparation"])["numeric"]}
                for c in ["x", "y"]:
                    lo, hi = float(np.float32(numeric[c]["clip_lo"])), float(np.float32(numeric[c]["clip_hi"]))
                    clipped = np.clip(x[[c]].to_numpy(), lo, hi)
                    self.assertGreater(np.sum((clipped != x[[c]].to_numpy()) & ~np.isnan(clipped)), 0, msg=(clip, c))
                    imputer = SimpleImputer(strategy="mean").fit(clipped)
                    scaler = StandardScaler().fit(clipped)  # ignores the missing values
                    expected = scaler.transform(imputer.transform(clipped))[:, 0]
                    self.assertClose(out[c][:], expected, rtol=1e-5, atol=1e-5, msg=(clip, c))
                    observed = out[c][:][~np.isnan(x[c].to_numpy())].astype(np.float64)
                    self.assertAlmostEqual(observed.mean(), 0.0, delta=1e-5, msg=(clip, c))
                    self.assertAlmostEqual(observed.std(), 1.0, delta=1e-5, msg=(clip, c))

    def test_a_column_constant_only_in_float32_says_so(self):
        # int64 ids 2^40 + 0..999 all read as 2^40: the constant column's note gives float32's spacing.
        df = pd.DataFrame({"i": (2 ** 40 + np.arange(1000)).astype(np.int64), "x": np.arange(1000.0)})
        proc = run("prepare", self.imported(df), self.path("ids_p.h5"), "--device", "cpu")
        note = next(line for line in proc.stderr.splitlines() if "column 'i'" in line)
        self.assertIn("a constant column becomes 0", note)
        self.assertIn("spacing near 1.09951163e+12 is 131072", note)
        self.assertFalse([line for line in proc.stderr.splitlines() if "column 'x'" in line and "spacing" in line])

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

    def test_dedup_compares_values_as_stored_not_as_float32(self):
        # Ids past 2^24 and 2^40 one apart, and timestamps 50 s apart near 1.7e9, are equal once
        # rounded to float32; pandas (and --dedup) tell them apart. Rows 4 and 7 are true copies.
        df = pd.DataFrame({
            "customer_id": [20000000, 20000001, 20000003, 20000000, 20000001,
                            2**40, 2**40 + 1, 2**40],
            "ts": [1.7e9, 1.7e9, 1.7e9, 1.7e9 + 50, 1.7e9, 1.7e9, 1.7e9, 1.7e9],
            "amount": [5.0] * 8,
            "price": [10.0] * 8,
        })
        h5 = self.imported(df)
        expected = df.drop_duplicates(keep="first")
        self.assertEqual(len(expected), 6)
        out = self.path("out.h5")
        stdout = run("prepare", h5, out, "--device", "cpu", "--label", "price",
                     "--drop", "customer_id", "--dedup", "--block-rows", "2").stdout
        self.assertIn("(2 duplicate rows removed", stdout)
        with h5py.File(out, "r") as f:
            np.testing.assert_array_equal(f["customer_id"][:], expected["customer_id"])
            np.testing.assert_array_equal(f["price"][:], expected["price"])

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

    def test_drop_leaves_columns_out(self):
        df = frame(200)
        df["id"] = np.arange(200) + 10**12
        df["when"] = ["2024-01-%02d" % (i % 28 + 1) for i in range(200)]
        df["y"] = (df["score"] > 0).astype(int)
        h5 = self.imported(df)
        with self.prepare(h5, "--label", "y", name="all") as everything, \
                self.prepare(h5, "--label", "y", "--drop", "id, when", name="dropped") as out:
            self.assertIn("id", everything)
            # Not features: passed through unchanged, after the prepared columns and the label.
            self.assertEqual(list(out.attrs["lathe_columns"]), ["age", "income", "score", "visits", "y", "id", "when"])
            self.assertEqual(list(out.attrs["lathe_passthrough"]), ["id", "when"])
            self.assertNotIn("lathe_passthrough", everything.attrs)
            np.testing.assert_array_equal(out["id"][:], df["id"].to_numpy())
            self.assertEqual([labels_of(out["when"])[k] for k in out["when"][:]], list(df["when"]))
            preparation = json.loads(out.attrs["lathe_preparation"])
            names = [c["name"] for c in preparation["numeric"] + preparation["categorical"]]
            self.assertEqual(sorted(names), ["age", "income", "score", "visits"])
            for c in ["age", "income", "score", "visits", "y"]:  # the rest as without --drop
                np.testing.assert_array_equal(out[c][:], everything[c][:])
            dropped = self.path("dropped.h5")
        # Errors: an unknown column (named, exit 1 as for --weight), the label, a cross or a
        # per-column option naming a dropped column, and --drop with --from (which fits nothing).
        bad = self.path("bad.h5")
        for flags, code, needle in [(["--drop", "idd"], 1, "column 'idd' given to --drop does not exist"),
                                    (["--label", "y", "--drop", "y"], 2, "--drop: 'y' is the label"),
                                    (["--drop", "id", "--cross", "age*id"], 1, "cross 'age*id': column 'id' is not a feature"),
                                    (["--drop", "id", "--scale", "id=minmax"], 1, "column 'id': it is not a feature"),
                                    (["--from", dropped, "--drop", "id"], 2, "--drop fits a preparation")]:
            with self.subTest(flags=flags):
                proc = run("prepare", h5, bad, "--quiet", *flags, check=False)
                self.assertEqual(proc.returncode, code, proc.stderr)
                self.assertIn(needle, proc.stderr)
                self.assertFalse(os.path.exists(bad))

    def test_a_block_of_prepared_rows_larger_than_the_memory_is_refused(self):
        # --cross all of 2500 numeric columns: 3.1M crosses, 12.5 MB a prepared row. A block of rows
        # as large as 1.5x this machine's memory (so the test holds on any machine) used to be
        # allocated until std::bad_alloc; it is refused before, naming the crosses.
        features = 2500
        row_bytes = 4 * (features + features * (features - 1) // 2)
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        rows = min(65536, int(1.5 * physical / row_bytes) + 1)
        data = self.path("wide.h5")
        run("synth", "--task", "regression", "--rows", str(rows), "--features", str(features), "--out", data, "--quiet")
        out = self.path("wide_prepared.h5")
        proc = run("prepare", data, out, "--label", "target", "--cross", "all", "--device", "cpu", "--quiet", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("GB of memory, more than this machine's", proc.stderr)
        self.assertIn("3123750 of them numeric crosses", proc.stderr)
        self.assertFalse(os.path.exists(out))


    def test_slot_labels_larger_than_the_memory_are_refused(self):
        # `lathe prepare` writes a label per slot ("bucket_N" per hashed bucket): --hash-buckets of
        # 2e9 grew to 23 GB before the kernel killed the run, leaving its temporary file. Buckets
        # worth 1.5x this machine's memory at 64 bytes a label are refused before, naming them.
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        buckets = min(2**31 - 3, int(1.5 * physical / 64) + 1)
        rng = np.random.default_rng(2)
        df = pd.DataFrame({"a": rng.choice(["x", "y", "z"], 300), "b": rng.choice(["u", "v"], 300),
                           "y": rng.normal(size=300)})
        data = import_frame(df, self.dir, "buckets")
        out = self.path("buckets_prepared.h5")
        proc = run("prepare", data, out, "--label", "y", "--cross", "a*b", "--hash-buckets", str(buckets),
                   "--device", "cpu", "--quiet", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("GB of the prepared file's slot labels (one a slot)", proc.stderr)
        self.assertIn(f"hold {buckets} hashed buckets", proc.stderr)
        self.assertEqual([n for n in os.listdir(self.dir) if "buckets_prepared" in n], [])

    def test_a_numeric_column_almost_entirely_missing_is_noted(self):
        # QA: a column with values on a handful of rows (3% here) was filled from them without a
        # word. prepare and train name it with its missing share, suggesting --drop or
        # --missing-indicators; a column that is often but not almost always missing is not noted.
        rng = np.random.default_rng(11)
        df = frame(rows=1000, missing=0.3)
        df["survey"] = np.where(np.arange(1000) % 100 < 3, rng.normal(size=1000).round(2), np.nan)
        df["y"] = rng.integers(0, 2, 1000)
        data = self.imported(df, "sparse")
        proc = run("prepare", data, self.path("p.h5"), "--label", "y", "--device", "cpu")
        [note] = [line for line in proc.stderr.splitlines() if "'survey'" in line]
        self.assertIn("prepare: note: column 'survey': 970 of its 1000 training rows (97%) are missing, filled "
                      "from the 30 values of the others: --drop it, or add --missing-indicators if its being "
                      "missing is informative", note)
        self.assertNotIn("are missing, filled from", proc.stderr.replace(note, ""))
        proc = run("prepare", data, self.path("p2.h5"), "--label", "y", "--missing-indicators", "--device", "cpu")
        self.assertIn("--drop it unless its missing indicator is informative", proc.stderr)
        proc = run("train", data, "--label", "y", "--task", "binary", "--epochs", "1", "--out", self.path("m.h5"),
                   "--device", "cpu")
        self.assertRegex(proc.stderr, r"train: note: column 'survey': \d+ of its \d+ training rows \(9\d(\.\d)?%\) "
                                      r"are missing")
        dropped = run("train", data, "--label", "y", "--task", "binary", "--epochs", "1", "--drop", "survey",
                      "--out", self.path("m2.h5"), "--device", "cpu")
        self.assertNotIn("are missing, filled from", dropped.stderr)

    def test_a_constant_fill_is_named_in_the_notes_on_missing_and_clipped_columns(self):
        # QA: with --impute constant:V the mostly-missing note said the column was "filled from the
        # 30 values of the others"; and a constant outside the clip bounds (a marker such as -100)
        # was clipped to the bound, like the clipped outliers, without a word.
        rng = np.random.default_rng(11)
        df = frame(rows=1000)
        df["survey"] = np.where(np.arange(1000) % 100 < 3, rng.normal(5, 2, 1000).round(2), np.nan)
        df["y"] = rng.integers(0, 2, 1000)
        data = self.imported(df, "constant")
        proc = run("prepare", data, self.path("p.h5"), "--label", "y", "--impute", "mean,survey=constant:-100",
                   "--clip", "iqr", "--scale", "none", "--device", "cpu")
        self.assertIn("prepare: note: column 'survey': 970 of its 1000 training rows (97%) are missing, filled "
                      "with the constant -100, beside the 30 values of the others: --drop it", proc.stderr)
        match = re.search(r"prepare: note: column 'survey': --impute constant:-100 lies below its clip bounds "
                          r"\[(-?[0-9.]+), [0-9.]+\], so its 970 missing rows take (-?[0-9.]+), as the values "
                          r"clipped there do \(missing values are filled, then clipped\)", proc.stderr)
        self.assertIsNotNone(match, proc.stderr)
        self.assertEqual(match.group(1), match.group(2))
        with h5py.File(self.path("p.h5"), "r") as f:
            filled = f["survey"][:][df["survey"].isna().to_numpy()]
        self.assertClose(filled, np.full(970, float(match.group(1))), rtol=1e-5, atol=1e-5)
        # A constant within the bounds, or an unclipped column, gets no such note.
        for flags in (["--impute", "survey=constant:5", "--clip", "iqr"], ["--impute", "survey=constant:-100"]):
            proc = run("prepare", data, self.path("p2.h5"), "--label", "y", "--device", "cpu", *flags)
            self.assertNotIn("clip bounds", proc.stderr)

    def test_the_mostly_missing_note_is_quiet_on_the_shared_datasets_and_synth(self):
        synth = self.path("synth.h5")
        run("synth", "--task", "binary", "--rows", "5000", "--features", "8", "--out", synth, "--quiet")
        inputs = [synth] + [import_frame(pd.read_csv(os.path.join(SHARED, name + ".csv")), self.dir, name)
                            for name in ("diamonds", "telco_churn", "penguins")]
        for data in inputs:
            with self.subTest(data=os.path.basename(data)):
                proc = run("prepare", data, self.path("p.h5"), "--device", "cpu")
                self.assertNotIn("are missing, filled from", proc.stderr)

    def test_cross_names_a_column_holding_a_star_or_a_hash_with_a_backslash(self):
        # QA: `--cross` split at every '*', so a column named "a*b" could not be crossed, nor a
        # column whose name ends in "#bins" be named as a column. `\*` and `\#` escape them, as
        # `\,` escapes a comma, on the command line and in a --config array; messages show the
        # cross as the option takes it.
        rng = np.random.default_rng(4)
        rows = 400
        df = pd.DataFrame({"size*color": rng.choice(["s*red", "l*blue"], rows), "city": rng.choice(["x", "y"], rows),
                           "tag#bins": rng.choice(["p", "q", "r"], rows), "age": rng.normal(40, 9, rows).round(1),
                           "y": rng.integers(0, 2, rows)})
        data = self.imported(df, "stars")
        with self.prepare(data, "--label", "y", "--cross", "size\\*color*city,tag\\#bins*city") as f:
            self.assertIn("size*color*city", f)
            self.assertIn("tag#bins*city", f)
        config = self.path("train.toml")
        with open(config, "w") as out:
            out.write('cross = ["size\\\\*color*city"]\n')
        run("train", data, "--label", "y", "--task", "binary", "--epochs", "1", "--config", config,
            "--out", self.path("m.h5"), "--device", "cpu", "--quiet")
        proc = run("prepare", data, self.path("bad.h5"), "--label", "y", "--cross", "size*color*city", check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--cross: 'size*color*city': expected COLUMN*COLUMN (a '*' in a column's name is written \\*)",
                      proc.stderr)
        proc = run("prepare", data, self.path("bad.h5"), "--label", "y", "--cross", "size\\*colour*city", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("cross 'size\\*colour*city': unknown column 'size*colour'", proc.stderr)
        # The near name and the columns are offered as --cross takes them.
        self.assertIn("(did you mean 'size*color'? in --cross, write it as 'size\\*color')", proc.stderr)
        self.assertIn("columns: size\\*color", proc.stderr)
        # `\#` names a column only: "age#bins" escaped is no column's bins.
        proc = run("prepare", data, self.path("bad.h5"), "--label", "y", "--bins", "age=4", "--cross",
                   "age\\#bins*city", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("cross 'age\\#bins*city': unknown column 'age#bins'", proc.stderr)
        with self.prepare(data, "--label", "y", "--bins", "age=4", "--cross", "age#bins*city", name="bins") as f:
            self.assertIn("age#bins*city", f)

    def test_the_bins_of_a_column_named_like_bins_cross_with_its_hash_escaped(self):
        # QA: any escaped '#' made a side a column's name, so the bins of a numeric column named
        # "flipper#bins" (binned with --bins 'flipper#bins=4'), written `flipper\#bins#bins`, were
        # taken for a column "flipper#bins#bins", unknown. Only the '#' of the trailing "#bins" says so.
        rng = np.random.default_rng(6)
        rows = 400
        df = pd.DataFrame({"flipper#bins": rng.normal(200, 14, rows).round(1), "sex": rng.choice(["f", "m"], rows),
                           "y": rng.integers(0, 2, rows)})
        data = self.imported(df, "hashbins")
        with self.prepare(data, "--label", "y", "--bins", "flipper#bins=4", "--cross",
                          "flipper\\#bins#bins*sex", name="hashbins_out") as f:
            self.assertIn("flipper#bins#bins*sex", f)
        # The column itself, escaped or not, still crosses as a column (a per-category slope).
        with self.prepare(data, "--label", "y", "--cross", "flipper\\#bins*sex", name="hashcol_out") as f:
            self.assertIn("flipper#bins*sex", f)

    def test_a_cross_split_at_an_unescaped_comma_is_told_to_escape_it(self):
        # QA: `--cross 'mass, g*sex'` (a column "mass, g") was split at its comma, and the error
        # for the item 'mass' named only the escape of a '*', not the comma's.
        rng = np.random.default_rng(8)
        rows = 200
        df = pd.DataFrame({"mass, g": rng.normal(4000, 600, rows).round(0), "sex": rng.choice(["f", "m"], rows),
                           "y": rng.integers(0, 2, rows)})
        data = self.imported(df, "comma")
        for cross, message in [
            ("mass, g*sex", "--cross: 'mass': expected COLUMN*COLUMN (if the ',' between it and 'g*sex' is in a "
                            "column's name, write it \\,; a '*' in a column's name is written \\*)"),
            ("sex*mass, g", "--cross: 'g': expected COLUMN*COLUMN (if the ',' between 'sex*mass' and it is in a "
                            "column's name, write it \\,; a '*' in a column's name is written \\*)"),
        ]:
            with self.subTest(cross=cross):
                proc = run("prepare", data, self.path("bad.h5"), "--label", "y", "--cross", cross, check=False)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(message, proc.stderr)
        # Escaped, it is the column.
        with self.prepare(data, "--label", "y", "--cross", "mass\\, g*sex", name="comma_out") as f:
            self.assertIn("mass, g*sex", f)
        # An item with no neighbour to join keeps the '*' hint alone.
        proc = run("prepare", data, self.path("bad.h5"), "--label", "y", "--cross", "sex", check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--cross: 'sex': expected COLUMN*COLUMN (a '*' in a column's name is written \\*)", proc.stderr)


def labels_of(dataset):
    return [s.decode() if isinstance(s, bytes) else s for s in dataset.attrs["categories"]]


class PrepareFromTest(unittest.TestCase):
    """`lathe prepare NEW OUT --from PREPARED|MODEL` applies a fitted preparation without refitting;
    a model trained on prepared data records it and refuses data not prepared that way; the label
    passes through `lathe prepare` in its own type."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lathe-prepare-from-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def imported(self, df, name):
        return import_frame(df, self.dir, name)

    def split(self, rows=600, seed=3):
        """A training frame and a drifted test frame (other means, a label unseen in training)."""
        rng = np.random.default_rng(seed)
        def make(n, shift):
            df = frame(n, seed=seed + int(shift * 10), missing=0.1)
            df["age"] += shift * 20
            df["city"] = rng.choice(["Oslo", "Lima", "Pune"] if shift == 0 else ["Oslo", "Lima", "Kyiv"], n)
            df["price"] = 3.0 * df["score"].fillna(0) + 0.001 * df["income"].fillna(0) + rng.normal(0, 0.1, n)
            return df
        return make(rows, 0.0), make(rows // 4, 1.0)

    def test_from_applies_the_fitted_preparation_without_refitting(self):
        train_df, test_df = self.split()
        train, test = self.imported(train_df, "train"), self.imported(test_df, "test")
        prepared = self.path("p.h5")
        run("prepare", train, prepared, "--label", "price", "--impute", "median", "--scale", "standard,income=robust",
            "--missing-indicators", "--cross", "age*score", "--device", "cpu", "--quiet")
        out = self.path("t.h5")
        proc = run("prepare", test, out, "--from", prepared, "--device", "cpu", "--quiet")
        self.assertIn("with the preparation of", proc.stdout)
        self.assertIn("not refitted", proc.stdout)
        numeric = ["age", "income", "score", "visits"]
        x_train = self.as_float32(train_df[numeric])
        x_test = self.as_float32(test_df[numeric])
        median = SimpleImputer(strategy="median").fit(x_train)
        with h5py.File(out) as t, h5py.File(prepared) as p:
            # The training file's text, verbatim: the same fitted preparation, the same fingerprint.
            self.assertEqual(t.attrs["lathe_preparation"], p.attrs["lathe_preparation"])
            self.assertEqual(t.attrs["lathe_prepared_from"], "p.h5")
            self.assertEqual(t.attrs["lathe_source"], "test.h5")
            self.assertEqual(list(t.attrs["lathe_columns"]), list(p.attrs["lathe_columns"]))
            # Imputed with the training medians, scaled with the training statistics.
            filled_test = pd.DataFrame(median.transform(x_test), columns=numeric)
            for c in ["age", "score", "visits"]:
                scaler = StandardScaler().fit(x_train[[c]].dropna())
                self.assertClose(t[c][:], scaler.transform(filled_test[[c]])[:, 0], rtol=1e-5, atol=1e-5, msg=c)
            robust = RobustScaler().fit(x_train[["income"]].dropna())
            self.assertClose(t["income"][:], robust.transform(filled_test[["income"]])[:, 0], rtol=2e-3, atol=2e-3)
            self.assertEqual(list(t["age_missing"][:]), list(x_test["age"].isna().astype(float)))
            self.assertClose(t["age*score"][:], t["age"][:] * t["score"][:], rtol=1e-5, atol=1e-5)
            # The drifted test rows keep the training centering: their mean age is far from 0.
            self.assertGreater(float(np.mean(t["age"][:])), 1.0)
            # Categorical slots of the training vocabulary; a city never seen there is "(unknown)".
            self.assertEqual(labels_of(t["city"]), labels_of(p["city"]))
            got = [labels_of(t["city"])[k] for k in t["city"][:]]
            self.assertEqual(got, [c if c != "Kyiv" else "(unknown)" for c in test_df["city"]])
            self.assertEqual(t["price"].dtype, np.float64)
            np.testing.assert_array_equal(t["price"][:], test_df["price"].to_numpy())

        # A model's stored preparation gives the same file: for a model trained on p.h5, that of p.h5.
        model = self.path("m.h5")
        run("train", prepared, "--label", "price", "--task", "regression", "--epochs", "3", "--device", "cpu",
            "--out", model, "--quiet")
        again = self.path("t2.h5")
        proc = run("prepare", test, again, "--from", model, "--device", "cpu", "--quiet")
        self.assertIn("stored in the model", proc.stdout)
        with h5py.File(out) as a, h5py.File(again) as b:
            self.assertEqual(a.attrs["lathe_preparation"], b.attrs["lathe_preparation"])
            for name in a.attrs["lathe_columns"]:
                np.testing.assert_array_equal(a[name][:], b[name][:], err_msg=name)

        # Without a label column in NEW (scoring data): no label is written.
        no_label = self.imported(test_df.drop(columns=["price"]), "nolabel")
        bare = self.path("bare.h5")
        run("prepare", no_label, bare, "--from", prepared, "--device", "cpu", "--quiet")
        with h5py.File(bare) as f:
            self.assertNotIn("price", f)

    @staticmethod
    def as_float32(df):
        return df.astype(np.float32).astype(np.float64)

    def assertClose(self, actual, expected, rtol=2e-6, atol=2e-6, msg=None):
        np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                                   rtol=rtol, atol=atol, err_msg=msg or "")

    def test_a_stored_bucket_count_beyond_what_fitting_allows_is_refused(self):
        # A damaged (or hand-edited) preparation of 2^32 - 1 buckets, its groups' slots matching:
        # `prepare --from` allocated what it said until the memory ran out.
        rng = np.random.default_rng(6)
        df = pd.DataFrame({"a": rng.choice(["x", "y", "z"], 200), "b": rng.choice(["u", "v"], 200),
                           "y": rng.normal(size=200)})
        data = self.imported(df, "buckets_from")
        prepared = self.path("buckets_from_prepared.h5")
        run("prepare", data, prepared, "--label", "y", "--cross", "a*b", "--device", "cpu", "--quiet")
        for edit in ("hash_buckets", "column", "vocabulary"):
            with h5py.File(prepared, "r+") as f:
                preparation = json.loads(f.attrs["lathe_preparation"])
                if edit == "hash_buckets":
                    preparation["hash_buckets"] = 2**32 - 1
                    for g in preparation["sparse"]:
                        if g["kind"] == "categorical_cross":
                            g["slots"] = 2**32 - 1
                elif edit == "vocabulary":
                    column = next(c for c in preparation["categorical"] if c["name"] == "a")
                    column["hashed"], column["vocabulary"] = False, ["z", "x", "y"]
                else:
                    preparation["hash_buckets"] = 65536
                    for g in preparation["sparse"]:
                        if g["kind"] == "categorical_cross":
                            g["slots"] = 65536
                    column = next(c for c in preparation["categorical"] if c["name"] == "a")
                    column["hashed"], column["buckets"], column["vocabulary"] = True, 2**32 - 3, []
                    next(g for g in preparation["sparse"] if g["name"] == "a")["slots"] = 2**32 - 1
                f.attrs["lathe_preparation"] = json.dumps(preparation)
            out = self.path("buckets_from_out.h5")
            proc = run("prepare", data, out, "--from", prepared, "--device", "cpu", "--quiet", check=False)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            expected = {"hash_buckets": "hash_buckets 4294967295", "column": "column a has 4294967293 buckets",
                        "vocabulary": "the vocabulary of column a is not sorted and unique"}[edit]
            self.assertIn(f"{prepared}: the stored preparation is inconsistent: {expected}", proc.stderr)
            self.assertFalse(os.path.exists(out))

    def test_from_with_fitting_options_is_a_usage_error(self):
        train_df, test_df = self.split(rows=200)
        train, test = self.imported(train_df, "train"), self.imported(test_df, "test")
        prepared = self.path("p.h5")
        run("prepare", train, prepared, "--label", "price", "--quiet")
        out = self.path("o.h5")
        for flags in (["--impute", "median"], ["--scale", "none"], ["--clip", "std"], ["--cross", "age*score"],
                      ["--missing-indicators"], ["--hash-buckets", "16"], ["--max-categories", "5"],
                      ["--category-buckets", "8"]):
            proc = run("prepare", test, out, "--from", prepared, "--quiet", *flags, check=False)
            self.assertEqual(proc.returncode, 2, (flags, proc.stderr))
            self.assertIn(flags[0], proc.stderr)
            self.assertIn("--from", proc.stderr)
            self.assertFalse(os.path.exists(out), flags)
        # --label may repeat the stored label, not name another.
        run("prepare", test, out, "--from", prepared, "--label", "price", "--quiet")
        os.remove(out)
        proc = run("prepare", test, out, "--from", prepared, "--label", "age", "--quiet", check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("'price'", proc.stderr)
        # --from names a file without a fitted preparation, or none at all.
        for source, needle in [(train, "holds no fitted preparation"), (self.path("none.h5"), "no such file")]:
            proc = run("prepare", test, out, "--from", source, "--quiet", check=False)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn("--from " + source, proc.stderr)
            self.assertIn(needle, proc.stderr)
            self.assertFalse(os.path.exists(out))
        proc = run("prepare", test, prepared, "--from", prepared, "--quiet", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("--from", proc.stderr)

    def test_from_names_the_file_and_column_that_do_not_fit(self):
        train_df, test_df = self.split(rows=200)
        train = self.imported(train_df, "train")
        prepared = self.path("p.h5")
        run("prepare", train, prepared, "--label", "price", "--quiet")
        clipped = self.path("pc.h5")
        run("prepare", train, clipped, "--label", "price", "--clip", "std", "--quiet")
        out = self.path("o.h5")
        missing = self.imported(test_df.drop(columns=["income"]), "missing")
        retyped_df = test_df.copy()
        retyped_df["city"] = np.arange(len(retyped_df), dtype=float)
        retyped = self.imported(retyped_df, "retyped")
        infinite_df = test_df.copy()
        infinite_df["score"] = infinite_df["score"].astype(object)
        infinite_df.loc[6, "score"] = "-inf"
        infinite = self.imported(infinite_df, "infinite")
        for data, needles in [(missing, ["missing.h5", "'income'", "p.h5", "is missing"]),
                              (retyped, ["retyped.h5", "'city'", "categorical", "p.h5"]),
                              (infinite, ["infinite.h5", "'score'", "row 7", "-inf"])]:
            proc = run("prepare", data, out, "--from", prepared, "--quiet", check=False)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            for needle in needles:
                self.assertIn(needle, proc.stderr)
            self.assertFalse(os.path.exists(out))
        # A column clipped to finite bounds puts an infinite value on its bound.
        run("prepare", infinite, out, "--from", clipped, "--quiet")
        with h5py.File(out) as f:
            self.assertTrue(np.all(np.isfinite(f["score"][:])))
        # A file already prepared with this preparation is not prepared twice.
        twice = self.path("twice.h5")
        proc = run("prepare", out, twice, "--from", clipped, "--quiet", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("already prepared", proc.stderr)

    def test_the_label_keeps_its_stored_type(self):
        rows = 64
        rng = np.random.default_rng(1)
        x = rng.normal(size=rows)
        labels = {
            "f64": np.arange(rows) * 100003.0 + 123456789.25,   # float32 would round these
            "i64": np.arange(rows, dtype=np.int64) + 2**53 + 1,  # beyond float64's integers
            "u64": np.arange(rows, dtype=np.uint64) + np.uint64(2**63 + 7),
            "i32": np.arange(rows, dtype=np.int32) + 2**24 + 1,  # beyond float32's integers
            "f32": (x * 3).astype(np.float32),
        }
        expected_type = {"f64": np.float64, "i64": np.int64, "u64": np.uint64, "i32": np.int64, "f32": np.float32}
        for name, y in labels.items():
            data = self.path(name + ".h5")
            with h5py.File(data, "w") as f:
                f.create_dataset("x", data=x, chunks=True)
                f.create_dataset("y", data=y, chunks=True)
                f.attrs["lathe_columns"] = ["x", "y"]
            out = self.path(name + "_p.h5")
            run("prepare", data, out, "--label", "y", "--quiet")
            again = self.path(name + "_q.h5")
            run("prepare", data, again, "--from", out, "--quiet")
            for path in (out, again):
                with h5py.File(path) as f:
                    self.assertEqual(f["y"].dtype, expected_type[name], (name, path))
                    np.testing.assert_array_equal(f["y"][:], y, err_msg=name)

        # A pandas frame (the label in a 2-D block beside other float64 columns) and the matrix layout.
        y = labels["f64"]
        df = pd.DataFrame({"a": x, "price": y, "b": x * 2})
        pandas_file = self.path("frame.h5")
        df.to_hdf(pandas_file, key="df", format="fixed")
        out = self.path("frame_p.h5")
        run("prepare", pandas_file, out, "--label", "price", "--quiet")
        with h5py.File(out) as f:
            self.assertEqual(f["price"].dtype, np.float64)
            np.testing.assert_array_equal(f["price"][:], y)
        matrix = self.path("matrix.h5")
        with h5py.File(matrix, "w") as f:
            f.create_dataset("X", data=np.stack([x, y], axis=1))
            f.create_dataset("y", data=y)
        for label in ("y", "f1"):
            out = self.path("matrix_" + label + ".h5")
            run("prepare", matrix, out, "--label", label, "--quiet")
            with h5py.File(out) as f:
                self.assertEqual(f[label].dtype, np.float64, label)
                np.testing.assert_array_equal(f[label][:], y, err_msg=label)


class PassthroughTest(unittest.TestCase):
    """`lathe prepare --drop COLS` writes the dropped columns unchanged as passthrough columns (listed in
    the root attribute lathe_passthrough), outside the fitted preparation and its fingerprint; `--from`
    passes them through again; `lathe train` never uses them as features."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lathe-passthrough-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def frame(self, rows, seed):
        rng = np.random.default_rng(seed)
        df = frame(rows, seed=seed, missing=0.05)
        df.insert(0, "customer_id", rng.permutation(np.arange(rows, dtype=np.int64) * 3 + 2**53 + 1))
        df.insert(1, "code", ["K%06d" % i for i in rng.permutation(rows)])
        df["city"] = rng.choice(["Oslo", "Lima", "Pune"], rows)
        df["y"] = (df["score"].fillna(0) + rng.normal(0, 1, rows) > 0).astype(int)
        return df

    def test_dropped_columns_pass_through_unchanged_in_their_type(self):
        rows = 300
        rng = np.random.default_rng(2)
        x = rng.normal(size=rows)
        columns = {
            "i64": np.arange(rows, dtype=np.int64) + 2**53 + 1,  # beyond float64's integers
            "u64": np.arange(rows, dtype=np.uint64) + np.uint64(2**63 + 7),
            "f64": np.arange(rows) * 100003.0 + 123456789.25,    # float32 would round these
            "f32": (x * 3).astype(np.float32),
            "i32": np.arange(rows, dtype=np.int32) + 2**24 + 1,  # beyond float32's integers: as int64
        }
        expected_type = {"i64": np.int64, "u64": np.uint64, "f64": np.float64, "f32": np.float32, "i32": np.int64}
        data = self.path("types.h5")
        with h5py.File(data, "w") as f:
            f.create_dataset("x", data=x, chunks=True)
            for name, values in columns.items():
                f.create_dataset(name, data=values, chunks=True)
            codes = f.create_dataset("tag", data=np.array([i % 3 - 1 for i in range(rows)], dtype=np.int32))
            codes.attrs["categories"] = ["a", "b"]
            f.attrs["lathe_columns"] = ["x", *columns, "tag"]
        out = self.path("types_p.h5")
        run("prepare", data, out, "--drop", ",".join([*columns, "tag"]), "--quiet")
        with h5py.File(out) as f:
            self.assertEqual(list(f.attrs["lathe_passthrough"]), [*columns, "tag"])
            for name, values in columns.items():
                self.assertEqual(f[name].dtype, expected_type[name], name)
                np.testing.assert_array_equal(f[name][:], values, err_msg=name)
            self.assertEqual(labels_of(f["tag"]), ["a", "b"])
            np.testing.assert_array_equal(f["tag"][:], [i % 3 - 1 for i in range(rows)])
            self.assertEqual([c["name"] for c in json.loads(f.attrs["lathe_preparation"])["numeric"]], ["x"])

        # The other layouts prepare reads: a pandas frame (ids in their own int64 block, beside float64
        # columns) and the matrix layout (a column of X).
        df = pd.DataFrame({"customer_id": columns["i64"], "a": x, "b": x * 2})
        pandas_file = self.path("frame.h5")
        df.to_hdf(pandas_file, key="df", format="fixed")
        out = self.path("frame_p.h5")
        run("prepare", pandas_file, out, "--drop", "customer_id", "--quiet")
        with h5py.File(out) as f:
            self.assertEqual(f["customer_id"].dtype, np.int64)
            np.testing.assert_array_equal(f["customer_id"][:], columns["i64"])
        matrix = self.path("matrix.h5")
        with h5py.File(matrix, "w") as f:
            f.create_dataset("X", data=np.stack([x, columns["f64"]], axis=1))
        out = self.path("matrix_p.h5")
        run("prepare", matrix, out, "--drop", "f1", "--quiet")
        with h5py.File(out) as f:
            self.assertEqual(f["f1"].dtype, np.float64)
            np.testing.assert_array_equal(f["f1"][:], columns["f64"])

    def test_the_fingerprint_is_that_of_the_data_without_them(self):
        # The fitted preparation (its text, so its fingerprint) is the one fitted on the data without
        # the dropped columns: models and prepared files from before still match.
        df = self.frame(400, seed=4)
        with_ids = import_frame(df, self.dir, "with_ids")
        without = import_frame(df.drop(columns=["customer_id", "code"]), self.dir, "without")
        flags = ["--label", "y", "--missing-indicators", "--cross", "age*income", "--dedup", "--quiet"]
        run("prepare", with_ids, self.path("a.h5"), "--drop", "customer_id,code", *flags)
        run("prepare", without, self.path("b.h5"), *flags)
        with h5py.File(self.path("a.h5")) as a, h5py.File(self.path("b.h5")) as b:
            self.assertEqual(a.attrs["lathe_preparation"], b.attrs["lathe_preparation"])
            for name in b.attrs["lathe_columns"]:
                np.testing.assert_array_equal(a[name][:], b[name][:], err_msg=name)
            self.assertEqual(list(a.attrs["lathe_columns"]), [*b.attrs["lathe_columns"], "customer_id", "code"])
        # A passthrough column named like a prepared feature is refused, naming the file and column.
        clash = df.rename(columns={"code": "age_missing"})
        clash_file = import_frame(clash, self.dir, "clash")
        out = self.path("clash_p.h5")
        proc = run("prepare", clash_file, out, "--drop", "age_missing", "--missing-indicators", "--quiet", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("clash.h5: column 'age_missing'", proc.stderr)
        self.assertFalse(os.path.exists(out))

    def test_training_never_uses_them_and_from_passes_them_through(self):
        df = self.frame(600, seed=6)
        raw = import_frame(df.iloc[:450], self.dir, "raw")
        new_df = df.iloc[450:].drop(columns=["y"]).assign(extra=1.0)
        new = import_frame(new_df, self.dir, "new")
        prepared = self.path("p.h5")
        run("prepare", raw, prepared, "--label", "y", "--drop", "customer_id,code", "--quiet")
        train = ["--label", "y", "--task", "binary", "--epochs", "3", "--device", "cpu", "--quiet"]
        model = self.path("m.h5")
        run("train", prepared, *train, "--out", model)
        # As if dropped: the same model as with --drop given again (which is no error), and neither
        # column is in its preparation, input schema or drift profile.
        again = self.path("m_drop.h5")
        run("train", prepared, *train, "--out", again, "--drop", "customer_id,code")
        with h5py.File(model) as m, h5py.File(again) as d:
            np.testing.assert_array_equal(m["weights"][:], d["weights"][:])
            preparation = json.loads(m.attrs["preparation"])
            features = [c["name"] for c in preparation["numeric"] + preparation["categorical"]]
            self.assertEqual(sorted(features), ["age", "city", "income", "score", "visits"])
            schema = [c["name"] for c in json.loads(m.attrs["input_schema"])]
            self.assertEqual(schema, ["age", "income", "score", "visits", "city", "y"])
            profiled = [c["name"] for c in json.loads(m["profile"].attrs["columns"])]
            self.assertEqual(profiled, ["age", "income", "score", "visits", "city", "y"])
            self.assertEqual(json.loads(m.attrs["trained_on_prepared"])["passthrough"], ["customer_id", "code"])

        # --from the prepared file or the model: the ids pass through (and are not named as unused).
        for source in (prepared, model):
            with self.subTest(source=source):
                out = self.path("new_p.h5")
                proc = run("prepare", new, out, "--from", source, "--device", "cpu")
                self.assertIn("not written: 'extra'", proc.stderr)
                self.assertNotIn("customer_id", proc.stderr)
                with h5py.File(out) as f, h5py.File(prepared) as p:
                    self.assertEqual(f.attrs["lathe_preparation"], p.attrs["lathe_preparation"])
                    self.assertEqual(list(f.attrs["lathe_passthrough"]), ["customer_id", "code"])
                    np.testing.assert_array_equal(f["customer_id"][:], new_df["customer_id"].to_numpy())
                    self.assertEqual([labels_of(f["code"])[k] for k in f["code"][:]], list(new_df["code"]))
                    self.assertNotIn("extra", f)
                os.remove(out)
        # NEW without them is prepared as before, with no passthrough column.
        bare = import_frame(new_df.drop(columns=["customer_id", "code"]), self.dir, "bare")
        run("prepare", bare, self.path("bare_p.h5"), "--from", model, "--quiet")
        with h5py.File(self.path("bare_p.h5")) as f:
            self.assertNotIn("lathe_passthrough", f.attrs)
            self.assertNotIn("customer_id", f)
        # A --valid file prepared --from the training file, and eval, drift and report on prepared
        # data: the ids are extra columns, not inputs.
        valid = self.path("valid_p.h5")
        run("prepare", import_frame(df.iloc[450:], self.dir, "valid"), valid, "--from", prepared, "--quiet")
        run("train", prepared, *train, "--out", self.path("m_valid.h5"), "--valid", valid)
        run("eval", model, valid, "--device", "cpu", "--quiet")
        proc = run("drift", model, valid, "--device", "cpu", "--quiet", check=False)
        self.assertIn(proc.returncode, (0, 3), proc.stderr)
        run("report", model, "--eval", valid, "--drift", valid, "--out", self.path("r.html"), "--device", "cpu",
            "--quiet")
        # A model trained on raw data with --drop passes its dropped columns through too.
        raw_model = self.path("raw_m.h5")
        run("train", raw, *train, "--out", raw_model, "--drop", "customer_id, code")
        out = self.path("own.h5")
        run("prepare", new, out, "--from", raw_model, "--quiet")
        with h5py.File(out) as f:
            self.assertEqual(list(f.attrs["lathe_passthrough"]), ["customer_id", "code"])
            np.testing.assert_array_equal(f["customer_id"][:], new_df["customer_id"].to_numpy())


class TrainedOnPreparedTest(unittest.TestCase):
    """A model trained on `lathe prepare` output records it, and score, eval, drift and report refuse
    data that does not carry that preparation, naming the `lathe prepare --from` command to run."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="lathe-trained-on-prepared-")
        diamonds = pd.read_csv(os.path.join(SHARED, "diamonds.csv")).sample(n=5000, random_state=0)
        train_df, test_df = diamonds.iloc[:4000], diamonds.iloc[4000:]
        cls.train = cls.imported(train_df, "train")
        cls.test = cls.imported(test_df, "test")
        cls.prepared = cls.path("p.h5")
        run("prepare", cls.train, cls.prepared, "--label", "price", "--device", "cpu", "--quiet")
        cls.model = cls.path("m.h5")
        run("train", cls.prepared, "--label", "price", "--task", "regression", "--epochs", "4", "--device", "cpu",
            "--out", cls.model, "--quiet")
        cls.test_prepared = cls.path("tp.h5")
        run("prepare", cls.test, cls.test_prepared, "--from", cls.prepared, "--device", "cpu", "--quiet")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    @classmethod
    def imported(cls, df, name):
        return import_frame(df, cls.dir, name)

    def commands(self, data):
        out = self.path("out")
        for leftover in (out + ".csv", out + ".html"):
            if os.path.exists(leftover):
                os.remove(leftover)
        return [("score", ["score", self.model, data, "--out", out + ".csv"]),
                ("eval", ["eval", self.model, data]),
                ("drift", ["drift", self.model, data]),
                ("report", ["report", self.model, "--eval", data, "--out", out + ".html"]),
                ("report --drift", ["report", self.model, "--drift", data, "--out", out + ".html"])]

    def test_a_hashed_column_prepared_then_trained_is_not_hashed_again(self):
        # The prepared file holds a hashed column's buckets as labels: training on it keeps them as
        # they are (not hashed again into other buckets), so the model predicts what `lathe train
        # OPTS` on the raw file does; an fm takes the rate of an fm with a hashed column.
        rng = np.random.default_rng(4)
        n = 6000
        # With a numeric x categorical cross too: a slope per device, held in the prepared file as x's
        # values under the name "x*dev", made again from x and dev.
        df = pd.DataFrame({"user": [f"u{i}" for i in rng.integers(0, 3000, n)], "x": rng.normal(size=n),
                           "dev": rng.choice(["ios", "android", "web"], n)})
        df["y"] = (df["x"] * (df["dev"] == "ios") + (df["user"].str.len() % 2) + rng.normal(size=n) > 0.5).astype(int)
        raw = self.imported(df, "hashed_raw")
        opts = ["--label", "y", "--max-categories", "100", "--cross", "x*dev"]
        prepared = self.path("hashed_prepared.h5")
        run("prepare", raw, prepared, *opts, "--device", "cpu", "--quiet")
        fit = ["--task", "binary", "--valid-fraction", "0", "--epochs", "2", "--device", "cpu", "--quiet"]
        run("train", prepared, *opts[:-2], *fit, "--out", self.path("on_prepared.h5"))
        run("train", raw, *opts, *fit, "--out", self.path("on_raw.h5"))
        run("score", self.path("on_prepared.h5"), prepared, "--out", self.path("sp.h5"), "--quiet")
        run("score", self.path("on_raw.h5"), raw, "--out", self.path("sr.h5"), "--quiet")
        with h5py.File(self.path("sp.h5")) as a, h5py.File(self.path("sr.h5")) as b:
            np.testing.assert_array_equal(a["probability"][:], b["probability"][:])
        proc = run("train", prepared, "--label", "y", "--task", "binary", "--model", "fm", "--epochs", "1",
                   "--out", self.path("fm.h5"), "--device", "cpu")
        self.assertIn("--lr 0.003: the default rate of an fm with a hashed categorical column", proc.stderr)

    def test_training_on_a_prepared_file_does_not_scale_it_again(self):
        # `lathe prepare OPTS` + `lathe train` trains on the features `lathe train OPTS` does: the
        # prepared values are not standardized a second time unless --scale is given.
        prepared = self.path("minmax.h5")
        run("prepare", self.train, prepared, "--label", "price", "--scale", "minmax", "--device", "cpu", "--quiet")
        # Every row trains (no validation split), so both fit their preparation on the same rows.
        common = ["--label", "price", "--task", "regression", "--epochs", "3", "--valid-fraction", "0",
                  "--device", "cpu", "--quiet"]
        two_steps, one_step, rescaled = self.path("two.h5"), self.path("one.h5"), self.path("again.h5")
        run("train", prepared, *common, "--out", two_steps)
        run("train", self.train, *common, "--scale", "minmax", "--out", one_step)
        run("train", prepared, *common, "--scale", "standard", "--out", rescaled)
        with h5py.File(two_steps) as f, h5py.File(rescaled) as g:
            numeric = json.loads(f.attrs["preparation"])["numeric"]
            self.assertTrue(numeric)
            for n in numeric:
                self.assertEqual((n["center"], n["inv_scale"]), (0.0, 1.0), n["name"])
            self.assertTrue(any(n["inv_scale"] != 1.0 for n in json.loads(g.attrs["preparation"])["numeric"]))
        test_prepared = self.path("minmax_test.h5")
        run("prepare", self.test, test_prepared, "--from", prepared, "--device", "cpu", "--quiet")
        a, b = self.path("a.h5"), self.path("b.h5")
        run("score", two_steps, test_prepared, "--out", a, "--device", "cpu", "--quiet")
        run("score", one_step, self.test, "--out", b, "--device", "cpu", "--quiet")
        with h5py.File(a) as fa, h5py.File(b) as fb:
            np.testing.assert_allclose(fa["prediction"][:], fb["prediction"][:], rtol=1e-5, atol=1e-3)

    def test_the_model_records_the_prepared_file(self):
        with h5py.File(self.model) as f, h5py.File(self.prepared) as p:
            record = json.loads(f.attrs["trained_on_prepared"])
            self.assertEqual(record["source"], "p.h5")
            self.assertEqual(record["preparation"], p.attrs["lathe_preparation"])
            self.assertEqual(len(record["fingerprint"]), 16)
        # A model trained on raw data has no such attribute.
        raw_model = self.path("raw.h5")
        run("train", self.train, "--label", "price", "--task", "regression", "--epochs", "2", "--device", "cpu",
            "--out", raw_model, "--quiet")
        with h5py.File(raw_model) as f:
            self.assertNotIn("trained_on_prepared", f.attrs)

    def test_raw_data_is_refused_by_every_command_that_scores(self):
        for name, args in self.commands(self.test):
            proc = run(*args, "--device", "cpu", "--quiet", check=False)
            self.assertEqual(proc.returncode, 1, (name, proc.stderr))
            self.assertIn("m.h5 was trained on data prepared by `lathe prepare` (p.h5)", proc.stderr, name)
            self.assertIn("test.h5 is not prepared that way", proc.stderr, name)
            self.assertIn("lathe prepare " + self.test + " PREPARED.h5 --from " + self.model, proc.stderr, name)
            self.assertFalse(os.path.exists(self.path("out.csv")), name)
            self.assertFalse(os.path.exists(self.path("out.html")), name)

    def test_data_prepared_another_way_is_refused(self):
        refit = self.path("refit.h5")
        run("prepare", self.test, refit, "--label", "price", "--device", "cpu", "--quiet")
        for name, args in self.commands(refit):
            proc = run(*args, "--device", "cpu", "--quiet", check=False)
            self.assertEqual(proc.returncode, 1, (name, proc.stderr))
            self.assertIn("another fitted preparation", proc.stderr, name)
            self.assertIn("--from " + self.model, proc.stderr, name)

    def test_data_prepared_the_same_way_is_accepted(self):
        for name, args in self.commands(self.test_prepared):
            proc = run(*args, "--device", "cpu", "--quiet", check=False)
            self.assertIn(proc.returncode, (0, 3), (name, proc.stderr))  # drift may find drift
        proc = run("eval", self.model, self.test_prepared, "--json", "--device", "cpu", "--quiet")
        self.assertGreater(json.loads(proc.stdout)["r2"], 0.5)

    def test_a_raw_model_refuses_its_own_preparation_applied_twice(self):
        raw_model = self.path("raw2.h5")
        run("train", self.train, "--label", "price", "--task", "regression", "--epochs", "2", "--device", "cpu",
            "--out", raw_model, "--quiet")
        own = self.path("own.h5")
        run("prepare", self.test, own, "--from", raw_model, "--device", "cpu", "--quiet")
        proc = run("eval", raw_model, own, "--device", "cpu", "--quiet", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("already applied", proc.stderr)
        self.assertIn("give it the raw data", proc.stderr)
        run("eval", raw_model, self.test, "--device", "cpu", "--quiet")

    def test_training_checks_the_validation_file_and_the_init_model(self):
        out = self.path("x.h5")
        proc = run("train", self.prepared, "--label", "price", "--task", "regression", "--epochs", "1",
                   "--device", "cpu", "--out", out, "--valid", self.test, "--quiet", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("--valid " + self.test, proc.stderr)
        self.assertIn("--from " + self.prepared, proc.stderr)
        self.assertFalse(os.path.exists(out))
        run("train", self.prepared, "--label", "price", "--task", "regression", "--epochs", "1", "--device", "cpu",
            "--out", out, "--valid", self.test_prepared, "--quiet")
        # Retraining keeps the earlier preparation: the new data must be prepared as its data was.
        proc = run("train", self.train, "--label", "price", "--task", "regression", "--epochs", "1", "--device", "cpu",
                   "--out", self.path("y.h5"), "--init-model", self.model, "--quiet", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("--init-model " + self.model, proc.stderr)
        self.assertIn("--from " + self.model, proc.stderr)
        # --refit-prep cannot carry weights across raw and prepared data either way: OLD's weights
        # are of features of other values (it converted them as if both were raw, silently wrong).
        raw_model = self.path("raw_parent.h5")
        run("train", self.train, "--label", "price", "--task", "regression", "--epochs", "1", "--device", "cpu",
            "--out", raw_model, "--quiet")
        for data, parent in [(self.train, self.model), (self.prepared, raw_model)]:
            proc = run("train", data, "--label", "price", "--task", "regression", "--epochs", "1", "--device", "cpu",
                       "--out", self.path("z.h5"), "--init-model", parent, "--refit-prep", "--quiet", check=False)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn("--refit-prep cannot carry its weights", proc.stderr)
            self.assertFalse(os.path.exists(self.path("z.h5")))
        run("train", self.test_prepared, "--label", "price", "--task", "regression", "--epochs", "1", "--device", "cpu",
            "--out", self.path("y.h5"), "--init-model", self.model, "--quiet")
        with h5py.File(self.path("y.h5")) as f:
            self.assertEqual(json.loads(f.attrs["trained_on_prepared"])["source"], "tp.h5")


def bin_label_range(label):
    """The [lo, hi) of a bins column's label "[lo, hi)" as floats (-inf and inf at the ends)."""
    assert label.startswith("[") and label.endswith(")"), label
    lo, hi = label[1:-1].split(", ")
    return float(lo), float(hi)


def bin_labels(edges):
    """The labels `lathe prepare` gives bins of these inner edges (float32 shortest decimals: the
    edges below are short decimals, which numpy's repr writes as C++'s to_chars does)."""
    text = ["-inf"] + [np.format_float_positional(np.float32(e), trim="-") for e in edges] + ["inf"]
    return [f"[{lo}, {hi})" for lo, hi in zip(text[:-1], text[1:])] + ["(missing)"]


class BinsTest(unittest.TestCase):
    """Quantile bins (--bins) in prepared files: a categorical "x#bins" column labelled by the bins'
    ranges of raw values; `lathe prepare --from` writes the same bins; training on the file takes
    them as categories and trains as `lathe train --bins` does on the raw data; --bins on a prepared
    file does not bin its binned columns again; --init-model --refit-prep moves the bins' weights."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="lathe-bins-")
        diamonds = pd.read_csv(os.path.join(SHARED, "diamonds.csv")).sample(n=4000, random_state=1)
        cls.train_df, cls.test_df = diamonds.iloc[:3000].copy(), diamonds.iloc[3000:].copy()
        cls.train_df.loc[cls.train_df.index[::7], "carat"] = np.nan  # a missing slot with rows
        cls.train = import_frame(cls.train_df, cls.dir, "train")
        cls.test = import_frame(cls.test_df, cls.dir, "test")
        cls.prepared = cls.path("p.h5")
        # Bins of every numeric column but depth, which a later test bins on the prepared file.
        run("prepare", cls.train, cls.prepared, "--label", "price", "--bins", "4,carat=5,depth=0", "--device", "cpu",
            "--quiet")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    def numeric_of(self, preparation_text):
        return {n["name"]: n for n in json.loads(preparation_text)["numeric"]}

    def check_bins_column(self, prepared, raw_df, column):
        """The bins column of `column` in `prepared`: its labels name the stored edges' ranges, and each
        row's label is the range that holds its raw value ("(missing)" for a missing one)."""
        with h5py.File(prepared) as f:
            edges = self.numeric_of(f.attrs["lathe_preparation"])[column]["bin_edges"]
            labels = labels_of(f[column + "#bins"])
            codes = f[column + "#bins"][:]
        self.assertEqual(labels, bin_labels(edges), column)
        values = raw_df[column].to_numpy(dtype=np.float32)
        for v, code in zip(values, codes):
            if np.isnan(v):
                self.assertEqual(labels[code], "(missing)")
                continue
            lo, hi = bin_label_range(labels[code])
            self.assertTrue(np.float32(lo) <= v < np.float32(hi), (column, v, labels[code]))
        return labels, codes

    def test_bins_are_categories_named_by_their_ranges(self):
        labels, codes = self.check_bins_column(self.prepared, self.train_df, "carat")
        self.assertEqual(len(labels), 5 + 1)
        self.assertTrue(labels[0].startswith("[-inf, ") and labels[-2].endswith(", inf)"), labels)
        self.assertEqual(sorted(set(codes)), list(range(6)))  # every bin and the missing slot has rows
        self.check_bins_column(self.prepared, self.train_df, "table")
        with h5py.File(self.prepared) as f:
            self.assertNotIn("depth#bins", f)
            self.assertEqual(f["carat"].dtype, np.float32)  # the prepared value beside its bins

    def test_prepare_from_a_prepared_file_or_a_model_writes_the_same_bins(self):
        applied = self.path("tp.h5")
        run("prepare", self.test, applied, "--from", self.prepared, "--device", "cpu", "--quiet")
        with h5py.File(applied) as t, h5py.File(self.prepared) as p:
            self.assertEqual(labels_of(t["carat#bins"]), labels_of(p["carat#bins"]))
        self.check_bins_column(applied, self.test_df, "carat")
        # A model trained on raw data with --bins: its preparation's bins.
        model = self.path("raw_binned.h5")
        run("train", self.train, "--label", "price", "--task", "regression", "--bins", "3", "--epochs", "1",
            "--device", "cpu", "--out", model, "--quiet")
        from_model = self.path("fm.h5")
        run("prepare", self.test, from_model, "--from", model, "--device", "cpu", "--quiet")
        labels, _ = self.check_bins_column(from_model, self.test_df, "x")
        with h5py.File(model) as m:
            self.assertEqual(len(self.numeric_of(m.attrs["preparation"])["x"]["bin_edges"]), 2)
        self.assertEqual(len(labels), 3 + 1)

    def test_prepared_bins_train_as_the_raw_data_does(self):
        # `lathe prepare --bins` + `lathe train` predicts what `lathe train --bins` does: the bins'
        # categories are a one-hot of the same bins (rows in the same slots, none in the others).
        common = ["--label", "price", "--task", "regression", "--epochs", "3", "--valid-fraction", "0",
                  "--device", "cpu", "--quiet"]
        two_steps, one_step = self.path("two.h5"), self.path("one.h5")
        run("train", self.prepared, *common, "--out", two_steps)
        run("train", self.train, *common, "--bins", "4,carat=5,depth=0", "--out", one_step)
        with h5py.File(two_steps) as f:
            groups = {g["name"]: g["kind"] for g in json.loads(f.attrs["preparation"])["sparse"]}
        self.assertEqual(groups["carat#bins"], "one_hot")
        self.assertNotIn("bins", groups.values())
        test_prepared = self.path("tp2.h5")
        run("prepare", self.test, test_prepared, "--from", self.prepared, "--device", "cpu", "--quiet")
        a, b = self.path("a.h5"), self.path("b.h5")
        run("score", two_steps, test_prepared, "--out", a, "--device", "cpu", "--quiet")
        run("score", one_step, self.test, "--out", b, "--device", "cpu", "--quiet")
        with h5py.File(a) as fa, h5py.File(b) as fb:
            np.testing.assert_allclose(fa["prediction"][:], fb["prediction"][:], rtol=1e-5, atol=1e-3)

    def test_bins_given_again_on_a_prepared_file(self):
        # Its binned columns are not binned again (a second "carat#bins"); depth, unbinned there, is.
        out = self.path("again.h5")
        proc = run("train", self.prepared, "--label", "price", "--task", "regression", "--bins", "4", "--epochs",
                   "1", "--device", "cpu", "--out", out)
        self.assertIn("'carat', 'table', 'x', 'y', 'z' are binned already in " + self.prepared, proc.stderr)
        with h5py.File(out) as f:
            sparse = json.loads(f.attrs["preparation"])["sparse"]
        self.assertEqual([g["name"] for g in sparse if g["kind"] == "bins"], ["depth#bins"])
        self.assertEqual(len([g for g in sparse if g["name"] == "carat#bins"]), 1)
        # `lathe prepare` of the prepared file alike: one column of each name.
        reprepared = self.path("reprepared.h5")
        proc = run("prepare", self.prepared, reprepared, "--label", "price", "--bins", "4", "--device", "cpu")
        self.assertIn("binned already", proc.stdout + proc.stderr)
        with h5py.File(reprepared) as f:
            columns = list(f.attrs["lathe_columns"])
        self.assertEqual(len(columns), len(set(columns)))
        self.assertIn("depth#bins", columns)
        # A bins column holds categories: a numeric option on it is refused, naming the column to set.
        proc = run("train", self.prepared, "--label", "price", "--task", "regression", "--bins", "carat#bins=4",
                   "--device", "cpu", "--out", self.path("no.h5"), "--quiet", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("'carat#bins': it holds the quantile bins of column 'carat'", proc.stderr)
        self.assertFalse(os.path.exists(self.path("no.h5")))

    def test_retraining_moves_the_bins_weights(self):
        # --refit-prep on other rows refits the edges: the bins' weights move bin by bin, with a note;
        # a column binned only now starts from zero, one binned only before is left behind.
        common = ["--label", "price", "--task", "regression", "--model", "fm", "--factors", "3", "--epochs", "2",
                  "--device", "cpu"]
        parent = self.path("parent.h5")
        run("train", self.train, *common, "--bins", "4,depth=0", "--out", parent, "--quiet")
        proc = run("train", self.test, *common, "--bins", "4,carat=0", "--init-model", parent, "--refit-prep",
                   "--out", self.path("child.h5"))
        self.assertIn("the weights of the quantile bins of 'carat' were not carried", proc.stderr)
        self.assertIn("it did not bin 'depth'", proc.stderr)
        self.assertIn("each bin took the weights of the earlier bin that holds its middle", proc.stderr)
        # Kept (no --refit-prep): the same bins, carried as they are, no note about them.
        proc = run("train", self.test, *common, "--init-model", parent, "--out", self.path("kept.h5"))
        # (Every line but the one naming the starting model, whose folder's name holds "bins".)
        self.assertNotIn("bins", "".join(line for line in proc.stderr.splitlines(True)
                                         if not line.startswith("starting model (--init-model")))
        with h5py.File(parent) as p, h5py.File(self.path("kept.h5")) as k:
            self.assertEqual(p.attrs["preparation"], k.attrs["preparation"])

if __name__ == "__main__":
    unittest.main()
