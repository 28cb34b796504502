"""End-to-end tests of the `lathe` command on files written by real clients (h5py, pandas).

Run by ctest (tests/CMakeLists.txt) with LATHE pointing at the binary and LATHE_SHARED_DATA at the
shared public datasets. Every test drives the command as a user would and checks its output, its
exit code, and that no partial file is left behind.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
import unittest

import h5py
import numpy as np
import pandas as pd

from lathe_run import LATHE, SHARED, import_frame, run  # noqa: F401




def inspect_json(path, *extra):
    return json.loads(run("inspect", path, "--json", "--device", "cpu", *extra).stdout)


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lathe-cli-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def assertFails(self, args, *needles):
        proc = run(*args, check=False)
        self.assertNotEqual(proc.returncode, 0, f"expected failure: {args}\n{proc.stdout}")
        self.assertLess(proc.returncode, 128, f"crashed: {proc.stderr}")
        for needle in needles:
            self.assertIn(needle, proc.stderr)
        self.assertIn("lathe: error:", proc.stderr)
        return proc

    def usage_error(self, args, *needles):
        """A usage error: one `lathe: error:` line naming `needles`, exit 2."""
        proc = self.assertFails(args, *needles)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertTrue(proc.stderr.startswith("lathe: error: "), proc.stderr)
        return proc

    @classmethod
    def share_binary_model(cls, prefix, df, epochs):
        """For a class's tests: df as cls.csv, imported as cls.data, and a binary model of its label y
        trained for `epochs` as cls.model, in cls.shared_dir (removed by tearDownClass)."""
        cls.shared_dir = tempfile.mkdtemp(prefix=prefix)
        cls.csv = os.path.join(cls.shared_dir, "d.csv")
        df.to_csv(cls.csv, index=False)
        cls.data = os.path.join(cls.shared_dir, "d.h5")
        run("import", cls.csv, cls.data, "--quiet")
        cls.model = os.path.join(cls.shared_dir, "m.h5")
        run("train", cls.data, "--label", "y", "--task", "binary", "--epochs", str(epochs), "--out", cls.model,
            "--device", "cpu", "--quiet")

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "shared_dir"):
            shutil.rmtree(cls.shared_dir, ignore_errors=True)


class TelcoTest(TempDirTest):
    def test_import_and_inspect_telco(self):
        out = self.path("telco.h5")
        run("import", os.path.join(SHARED, "telco_churn.csv"), out)
        info = inspect_json(out)
        self.assertEqual(info["layout"], "columnar")
        self.assertEqual(info["rows"], 7043)
        self.assertEqual(len(info["columns"]), 20)
        cols = {c["name"]: c for c in info["columns"]}
        self.assertEqual(cols["total_charges"]["type"], "numeric")
        self.assertEqual(cols["total_charges"]["missing"], 11)
        self.assertEqual(cols["churn"]["type"], "categorical")
        self.assertEqual(cols["churn"]["categories"], 2)
        # The same numbers pandas computes from the CSV.
        df = pd.read_csv(os.path.join(SHARED, "telco_churn.csv"))
        for name in ["tenure", "monthly_charges", "total_charges"]:
            self.assertAlmostEqual(cols[name]["mean"], df[name].mean(), delta=1e-6 * abs(df[name].mean()))
            self.assertAlmostEqual(cols[name]["min"], df[name].min(), places=3)
            self.assertAlmostEqual(cols[name]["max"], df[name].max(), places=3)
        # The labels and their counts, as pandas counts them.
        counts = df["contract"].value_counts()
        self.assertEqual(cols["contract"]["category_counts"],
                         [{"label": label, "count": int(n)} for label, n in counts.items()])
        # The human-readable form says the same.
        text = run("inspect", out, "--device", "cpu").stdout
        self.assertIn("rows:     7043", text)
        self.assertRegex(text, r"\n    No +5174 +73\.46%\n    Yes +1869 +26\.54%\n")

    def test_inspect_lists_category_labels_with_counts_and_the_std(self):
        # 15 labels with counts 15..1 (label k15 most frequent), 2 missing, and a numeric column.
        labels = [f"k{k:02d}" for k in range(1, 16) for _ in range(k)]
        df = pd.DataFrame({"code": labels + ["", ""], "x": np.arange(len(labels) + 2, dtype=np.float64)})
        csv = self.path("labels.csv")
        df.to_csv(csv, index=False)
        out = self.path("labels.h5")
        run("import", csv, out, "--categorical", "code", "--quiet")
        info = inspect_json(out)
        code = next(c for c in info["columns"] if c["name"] == "code")
        self.assertEqual(code["categories"], 15)  # the existing keys stay
        self.assertEqual(code["missing"], 2)
        # Every label with its count, most frequent first.
        self.assertEqual(code["category_counts"], [{"label": f"k{k:02d}", "count": k} for k in range(15, 0, -1)])
        text = run("inspect", out, "--device", "cpu").stdout
        self.assertIn("code: 15 labels, 2 missing", text)
        lines = text.splitlines()
        first = lines.index("  code: 15 labels, 2 missing")
        shown = lines[first + 1:first + 12]
        self.assertEqual([line.split()[0] for line in shown[:10]], [f"k{k:02d}" for k in range(15, 5, -1)])
        self.assertEqual(shown[0].split()[1:], ["15", f"{100 * 15 / len(df):.2f}%"])
        self.assertEqual(shown[10].strip(), "... and 5 more")
        # The std the JSON has, in the text too.
        x = next(c for c in info["columns"] if c["name"] == "x")
        self.assertAlmostEqual(x["std"], df["x"].std(ddof=0), places=9)
        header = next(line for line in lines if line.strip().startswith("name"))
        self.assertEqual(header.split()[-1], "std")
        row = next(line for line in lines if line.strip().startswith("x "))
        self.assertAlmostEqual(float(row.split()[-1]), df["x"].std(ddof=0), delta=1e-4 * df["x"].std())

    def test_import_diamonds_and_penguins(self):
        for name, rows, cols in [("diamonds", 53940, 10), ("penguins", 344, 7)]:
            out = self.path(name + ".h5")
            run("import", os.path.join(SHARED, name + ".csv"), out)
            info = inspect_json(out)
            self.assertEqual(info["rows"], rows)
            self.assertEqual(len(info["columns"]), cols)
            df = pd.read_csv(os.path.join(SHARED, name + ".csv"))
            for c in info["columns"]:
                self.assertEqual(c["missing"], int(df[c["name"]].isna().sum()), c["name"])


# pandas' default NA tokens (pandas._libs.parsers.STR_NA_VALUES) but the empty field.
PANDAS_NA_TOKENS = ["#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
                    "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]


class ImportMissingValuesTest(TempDirTest):
    """`lathe import` reads missing values as pandas.read_csv does: its default NA tokens, --na-values
    as na_values, --no-default-na as keep_default_na=False (with the empty field still missing)."""

    def setUp(self):
        super().setUp()
        # Each token (and the empty field, and two more) in a row of its own in every column but `id`:
        # `x` otherwise numbers, `color` words, `quoted` words in quotes; then rows of values.
        lines = ["id,x,color,quoted"]
        for i, token in enumerate([""] + PANDAS_NA_TOKENS + ["?", "-999"]):
            lines.append(f'{i},{token},{token},"{token}"')
        for i in range(30):
            lines.append(f"{100 + i},{i * 0.5 - 3},{'ab'[i % 2]},{'xyz'[i % 3]}")
        self.csv = self.path("na.csv")
        with open(self.csv, "w", newline="") as f:
            f.write("\n".join(lines) + "\n")
        # The same with lone-CR line ends, which `lathe import` reads on one thread (CsvReader).
        self.csv_cr = self.path("na_cr.csv")
        with open(self.csv_cr, "w", newline="") as f:
            f.write("\r".join(lines) + "\r")

    def assert_like_pandas(self, lathe_args, pandas_args, what):
        df = pd.read_csv(self.csv, **pandas_args)
        infos = []
        for csv in [self.csv, self.csv_cr]:
            out = self.path("na.h5")
            run("import", csv, out, "--quiet", *lathe_args)
            infos.append(inspect_json(out))
            os.remove(out)
        info = infos[0]
        self.assertEqual(infos[1]["columns"], info["columns"], f"{what}: the serial path differs")
        self.assertEqual(info["rows"], len(df), what)
        for c in info["columns"]:
            name = c["name"]
            where = f"{what}, column {name}"
            self.assertEqual(c["missing"], int(df[name].isna().sum()), where)
            if pd.api.types.is_numeric_dtype(df[name]):
                self.assertEqual(c["type"], "numeric", where)
                self.assertAlmostEqual(c["mean"], df[name].mean(), places=9, msg=where)
            else:
                self.assertEqual(c["type"], "categorical", where)
                counts = {e["label"]: e["count"] for e in c["category_counts"]}
                self.assertEqual(counts, {str(k): int(n) for k, n in df[name].value_counts().items()}, where)

    def test_missing_values_as_pandas_reads_them(self):
        try:  # the tokens are this pandas' own
            from pandas._libs.parsers import STR_NA_VALUES
            self.assertEqual(sorted(STR_NA_VALUES), sorted([""] + PANDAS_NA_TOKENS))
        except ImportError:
            pass
        self.assert_like_pandas([], {}, "defaults")
        self.assert_like_pandas(["--na-values", "?", "--na-values=-999"], {"na_values": ["?", "-999"]},
                                "--na-values")
        self.assert_like_pandas(["--na-values", "?,-999"], {"na_values": ["?", "-999"]}, "--na-values, a list")
        # pandas keeps an empty field as text without keep_default_na; Lathe never does.
        self.assert_like_pandas(["--no-default-na", "--na-values", "?"],
                                {"keep_default_na": False, "na_values": ["?", ""]}, "--no-default-na")
        # With the defaults and both tokens, x is numeric.
        out = self.path("x.h5")
        run("import", self.csv, out, "--quiet", "--na-values", "?,-999")
        x = next(c for c in inspect_json(out)["columns"] if c["name"] == "x")
        self.assertEqual((x["type"], x["missing"]), ("numeric", len(PANDAS_NA_TOKENS) + 3))

    def test_bad_na_values_are_usage_errors(self):
        out = self.path("bad.h5")
        for args, needle in [
            (["--na-values", ""], "the token '' is empty"),
            (["--na-values", "?,,-999"], "the token '' is empty"),
            (["--na-values", "?,"], "the token '' is empty"),
            (["--na-values", "  "], "the token '  ' is empty"),
            (["--na-values", 'say "x"'], "the token 'say \"x\"' holds a quote"),
            (["--na-values", "a\nb"], "the token 'a\\x0Ab' holds a line break"),
            (["--delimiter", ";", "--na-values", "a;b"], "the token 'a;b' holds the delimiter ';'"),
        ]:
            proc = run("import", self.csv, out, *args, check=False)
            self.assertEqual(proc.returncode, 2, f"{args}: {proc.stderr}")
            self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
            self.assertTrue(proc.stderr.startswith("lathe: error: --na-values: " + needle), proc.stderr)
            self.assertFalse(os.path.exists(out))


class ImportLikePandasTest(TempDirTest):
    """More of `lathe import` against pandas.read_csv: --na-values numbers matched by value in numeric
    columns, lines of spaces skipped as blank, a header-only file read as an empty frame. Each file is
    also written with lone-CR line ends, which Lathe reads on one thread (CsvReader)."""

    def write_both(self, name, lines):
        paths = [self.path(name + ".csv"), self.path(name + "_cr.csv")]
        for path, end in zip(paths, ["\n", "\r"]):
            with open(path, "w", newline="") as f:
                f.write(end.join(lines) + end)
        return paths

    def imported(self, csv, *args):
        out = self.path("out.h5")
        if os.path.exists(out):
            os.remove(out)
        proc = run("import", csv, out, "--quiet", *args)
        with h5py.File(out, "r") as f:
            return proc, {name: f[name][:] for name in f.attrs["lathe_columns"]}

    def test_na_values_that_are_numbers_match_equal_numbers(self):
        lines = ["a,b,c", "-999.0,1,-999.0", "-999,2,x", "3,3,-9.99e2", "-9.99e2,4,-999", " -999.00 ,5,y"]
        df = pd.read_csv(self.write_both("m", lines)[0], na_values=["-999"])
        for csv in self.write_both("m", lines):
            for extra in [[], ["--numeric", "a"]]:
                _, cols = self.imported(csv, "--na-values=-999", *extra)
                np.testing.assert_array_equal(cols["a"], df["a"].to_numpy(), err_msg=f"{csv} {extra}")
                np.testing.assert_array_equal(cols["b"], df["b"].to_numpy())
                # c is categorical: only the texts -999 and -999.0 are missing, as in pandas
                np.testing.assert_array_equal(cols["c"] == -1, df["c"].isna().to_numpy())
        self.assertEqual(int(df["a"].isna().sum()), 4)
        self.assertEqual(int(df["c"].isna().sum()), 2)

    def test_lines_of_spaces_and_tabs_are_blank(self):
        lines = ["a,b", "1,2", "", "  ", "3,4", " \t ", "5,6", "\t"]
        for csv in self.write_both("blank", lines):
            df = pd.read_csv(csv)
            _, cols = self.imported(csv)
            np.testing.assert_array_equal(cols["a"], df["a"].to_numpy(), err_msg=csv)
            np.testing.assert_array_equal(cols["b"], df["b"].to_numpy(), err_msg=csv)
        ragged = self.path("ragged.csv")
        with open(ragged, "w") as f:
            f.write("a,b\n1,2\n  \n3\n")
        self.assertFails(["import", ragged, self.path("r.h5")], "line 4: has 1 field")
        self.assertFalse(os.path.exists(self.path("r.h5")))

    def test_a_column_name_holding_a_comma_is_named_with_an_escaped_comma(self):
        # A header "price, usd": --categorical and --numeric take it as lathe train's lists do, \, for its
        # comma (CLI11's splitting had cut it into 'price\' and 'usd', whatever its spelling).
        csv = self.path("comma.csv")
        with open(csv, "w") as f:
            f.write('"price, usd",code,y\n1.5,10,1\n2.5,20,0\n3.5,30,1\n')
        for flags in (["--categorical", "price\\, usd,code"], ["--categorical", "price\\, usd", "--categorical", "code"]):
            with self.subTest(flags=flags):
                _, cols = self.imported(csv, *flags)
                info = inspect_json(self.path("out.h5"))
                types = {c["name"]: c["type"] for c in info["columns"]}
                self.assertEqual(types, {"price, usd": "categorical", "code": "categorical", "y": "numeric"})
        _, cols = self.imported(csv, "--numeric", "y,price\\, usd")
        np.testing.assert_array_equal(cols["price, usd"], [1.5, 2.5, 3.5])
        # A name the header lacks: the near one offered as the list takes it, and the columns listed so.
        proc = self.assertFails(["import", csv, self.path("x.h5"), "--categorical", "price usd"],
                                "(did you mean 'price, usd'? in a list of columns, write it as 'price\\, usd'); "
                                "columns: price\\, usd, code, y")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.usage_error(["import", csv, self.path("x.h5"), "--categorical", "price\\, usd", "--numeric",
                          "price\\, usd"], "the column 'price, usd' is named by both --categorical and --numeric")

    def test_header_only_file_imports_as_zero_rows_that_score(self):
        rng = np.random.default_rng(5)
        full = pd.DataFrame({"a": rng.normal(size=200), "k": rng.choice(["lo", "hi"], 200),
                             "y": rng.choice(["no", "yes"], 200)})
        train_csv, train_h5, model = self.path("full.csv"), self.path("full.h5"), self.path("m.h5")
        full.to_csv(train_csv, index=False)
        run("import", train_csv, train_h5, "--quiet")
        run("train", train_h5, "--task", "binary", "--label", "y", "--epochs", "2", "--out", model,
            "--device", "cpu", "--quiet")
        for csv in self.write_both("empty", ["a,k,y"]):
            self.assertEqual(list(pd.read_csv(csv).columns), ["a", "k", "y"])
            proc, cols = self.imported(csv)
            self.assertIn("imported 0 rows x 3 columns (3 numeric, 0 categorical)", proc.stdout)
            self.assertIn("lathe import: note: the file has a header but no rows", proc.stderr)
            self.assertEqual({n: (c.dtype, c.shape) for n, c in cols.items()},
                             {n: (np.dtype("float64"), (0,)) for n in "aky"})
            empty_h5, scores = self.path("empty.h5"), self.path("scores.csv")
            run("import", csv, empty_h5, "--quiet", "--categorical", "k,y")
            run("score", model, empty_h5, "--out", scores, "--device", "cpu", "--quiet")
            out = pd.read_csv(scores)
            self.assertEqual(len(out), 0)
            self.assertEqual(list(out.columns), ["probability", "predicted_class"])
            # inspect describes it; prepare --from the model gives an empty prepared file, its
            # columns those of the model's preparation (the header-only columns numeric as imported).
            self.assertIn("rows:     0", run("inspect", empty_h5, "--quiet").stdout)
            plain_h5, prepared = self.path("plain.h5"), self.path("prepared.h5")
            run("import", csv, plain_h5, "--quiet")
            run("prepare", plain_h5, prepared, "--from", model, "--quiet")
            with h5py.File(prepared) as f:
                self.assertTrue(all(f[name].shape == (0,) for name in f.keys() if isinstance(f[name], h5py.Dataset)))
            full_prepared = self.path("full_prepared.h5")
            run("prepare", train_h5, full_prepared, "--from", model, "--quiet")
            with h5py.File(prepared) as f, h5py.File(full_prepared) as g:
                self.assertEqual(sorted(f.keys()), sorted(g.keys()))


def numeric_frame(rows=5000, seed=3):
    """A frame with several dtypes, missing values, and very different scales."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "small": rng.normal(0, 1e-3, rows),
        "big": rng.normal(1e6, 10, rows),
        "count": rng.integers(-50, 50, rows).astype(np.int32),
        "wide": rng.integers(0, 2**40, rows).astype(np.int64),
        "narrow": rng.integers(0, 200, rows).astype(np.uint8),
        "ratio": rng.uniform(0, 1, rows).astype(np.float32),
        "flag": rng.uniform(0, 1, rows) < 0.3,
    })
    df.loc[rng.uniform(0, 1, rows) < 0.05, "small"] = np.nan
    df.loc[rng.uniform(0, 1, rows) < 0.10, "ratio"] = np.nan
    return df


class ThreeLayoutsTest(TempDirTest):
    """The same data written as a matrix (h5py), columnar (h5py and `lathe import`) and pandas
    fixed frame inspects the same: names, counts, missing, min, mean, max."""

    def write_all(self, df):
        paths = {}
        # matrix, by h5py: X float64, big-endian and chunked to exercise conversion, names attribute.
        p = self.path("matrix.h5")
        with h5py.File(p, "w") as f:
            x = f.create_dataset("X", data=df.astype(np.float64).values.astype(">f8"), chunks=(1000, df.shape[1]),
                                 compression="gzip", shuffle=True)
            x.attrs["feature_names"] = list(df.columns)
        paths["matrix"] = p
        # columnar, by h5py: one 1-D dataset per column in its own dtype (bool as h5py's enum).
        p = self.path("columns.h5")
        with h5py.File(p, "w") as f:
            for c in df.columns:
                f.create_dataset(c, data=df[c].values, chunks=True, compression="gzip")
            f.attrs["lathe_columns"] = list(df.columns)
        paths["columnar-h5py"] = p
        # pandas fixed format, compressed.
        p = self.path("pandas.h5")
        df.to_hdf(p, key="df", format="fixed", complib="zlib", complevel=4)
        paths["pandas"] = p
        # CSV through `lathe import`.
        csv = self.path("data.csv")
        df.assign(flag=df["flag"].astype(int)).to_csv(csv, index=False)
        p = self.path("imported.h5")
        run("import", csv, p)
        paths["columnar-import"] = p
        return paths

    def test_layouts_inspect_the_same(self):
        df = numeric_frame()
        paths = self.write_all(df)
        infos = {k: inspect_json(p) for k, p in paths.items()}
        self.assertEqual(infos["matrix"]["layout"], "matrix")
        self.assertEqual(infos["columnar-h5py"]["layout"], "columnar")
        self.assertEqual(infos["columnar-import"]["layout"], "columnar")
        self.assertEqual(infos["pandas"]["layout"], "pandas")
        ref = infos["pandas"]
        for kind, info in infos.items():
            self.assertEqual(info["rows"], len(df), kind)
            self.assertEqual([c["name"] for c in info["columns"]], list(df.columns), kind)
            for a, b in zip(info["columns"], ref["columns"]):
                self.assertEqual(a["type"], "numeric", (kind, a["name"]))
                self.assertEqual(a["missing"], b["missing"], (kind, a["name"]))
                self.assertEqual(a["count"], b["count"], (kind, a["name"]))
                for stat in ["min", "mean", "max"]:
                    tol = 1e-6 * max(1.0, abs(b[stat]))
                    self.assertAlmostEqual(a[stat], b[stat], delta=tol, msg=(kind, a["name"], stat))
        # And they match what pandas itself computes (values are read as float32).
        for c in ref["columns"]:
            col = df[c["name"]].astype(np.float64)
            self.assertEqual(c["missing"], int(col.isna().sum()), c["name"])
            self.assertAlmostEqual(c["mean"], float(col.astype(np.float32).astype(np.float64).mean()),
                                   delta=1e-6 * max(1.0, abs(col.mean())))

    def test_pandas_string_columns_are_refused_by_name(self):
        df = pd.DataFrame({"a": [1.0, 2.0], "city": ["Oslo", "Lima"], "b": [3, 4]})
        p = self.path("strings.h5")
        df.to_hdf(p, key="df", format="fixed")
        self.assertFails(["inspect", p], p, "city")

    def test_pandas_dates_and_times_are_refused_by_name_in_both_formats(self):
        # The fixed format stores them as int64 blocks marked only by attributes (value_type, and tz
        # for a time zone): read as numbers, they would be microseconds since 1970.
        df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "when": pd.date_range("2020", periods=3, freq="h"),
                           "took": pd.to_timedelta([1, 2, 3], unit="s"),
                           "zoned": pd.date_range("2020", periods=3, tz="UTC"),
                           "local": pd.date_range("2020", periods=3, tz="Europe/Paris")})
        for fmt in ["fixed", "table"]:
            p = self.path(f"dates_{fmt}.h5")
            df.to_hdf(p, key="df", format=fmt)
            self.assertFails(["inspect", p], p, "hold dates or times", "when (datetime64", "took (timedelta64",
                             "zoned (datetime64", "local (datetime64")
            self.assertFails(["inspect", p, "--head", "2"], p, "hold dates or times")
            numbers = self.path(f"numbers_{fmt}.h5")  # the same frame less its dates and times
            df[["x"]].to_hdf(numbers, key="df", format=fmt)
            self.assertEqual(inspect_json(numbers)["rows"], 3)

    def test_an_empty_pandas_fixed_frame_has_zero_rows(self):
        # pandas writes each empty block as a 1-element placeholder with the true shape in an
        # attribute: read as 0 rows, as an empty frame of 1-D columns is.
        empty = {"a": np.array([], "f8"), "b": np.array([], "i8"), "c": np.array([], "i8"), "f": np.array([], bool)}
        fixed = self.path("empty_fixed.h5")
        pd.DataFrame(empty).to_hdf(fixed, key="df", format="fixed")
        self.assertEqual(len(pd.read_hdf(fixed)), 0)
        columns = self.path("empty_columns.h5")
        with h5py.File(columns, "w") as f:
            for name, values in empty.items():
                f[name] = values
        for p in [fixed, columns]:
            report = inspect_json(p)
            self.assertEqual(report["rows"], 0, p)
            self.assertEqual({c["name"]: c["dtype"] for c in report["columns"]},
                             {"a": "float64", "b": "int64", "c": "int64", "f": "bool"}, p)
        # Scoring an empty partition gives an empty output, with the ids as pandas typed them.
        rng = np.random.default_rng(1)
        train = pd.DataFrame({"a": rng.normal(size=200), "b": rng.integers(0, 9, 200), "c": np.arange(200),
                              "f": rng.random(200) < 0.5, "y": rng.integers(0, 2, 200)})
        data, model = self.path("train.h5"), self.path("m.h5")
        train.to_hdf(data, key="df", format="fixed")
        run("train", data, "--label", "y", "--task", "binary", "--epochs", "1", "--drop", "c", "--out", model,
            "--device", "cpu", "--quiet")
        for p in [fixed, columns]:
            out = self.path(os.path.basename(p) + "_scored.h5")
            run("score", model, p, "--out", out, "--id", "c", "--device", "cpu", "--quiet")
            with h5py.File(out) as f:
                self.assertEqual(f["probability"].shape, (0,), p)
                self.assertEqual((f["c"].shape, f["c"].dtype), ((0,), np.int64), p)

    def test_duplicate_feature_names_of_a_matrix_are_refused(self):
        # As in every other layout: two columns of one name cannot both be kept.
        for where in ["dataset", "file"]:
            p = self.path(f"dupnames_{where}.h5")
            with h5py.File(p, "w") as f:
                f["X"] = np.array([[1.0, 10.0, 100.0], [2.0, 20.0, 200.0], [3.0, 35.0, 300.0]])
                (f["X"] if where == "dataset" else f).attrs["feature_names"] = ["a", "a", "b"]
            self.assertFails(["inspect", p], p, "feature_names", "two columns are named 'a'")
            self.assertFails(["prepare", p, self.path("prepared.h5"), "--scale", "none"], p,
                             "two columns are named 'a'")
            self.assertFalse(os.path.exists(self.path("prepared.h5")))


class BadInputTest(TempDirTest):
    def test_missing_file(self):
        self.assertFails(["inspect", self.path("nope.h5")], "nope.h5", "no such file")

    def test_empty_file(self):
        p = self.path("empty.h5")
        open(p, "w").close()
        self.assertFails(["inspect", p], "empty.h5", "empty")

    def test_not_hdf5(self):
        p = self.path("text.h5")
        with open(p, "w") as f:
            f.write("a,b\n1,2\n")
        self.assertFails(["inspect", p], "text.h5", "not an HDF5 file")

    def test_truncated_hdf5(self):
        p = self.path("trunc.h5")
        with h5py.File(p, "w") as f:
            f.create_dataset("X", data=np.random.default_rng(0).normal(size=(20000, 8)))
        size = os.path.getsize(p)
        with open(p, "r+b") as f:
            f.truncate(size // 2)
        self.assertFails(["inspect", p], "trunc.h5")

    def test_wrong_rank(self):
        p = self.path("rank3.h5")
        with h5py.File(p, "w") as f:
            f.create_dataset("X", data=np.zeros((4, 3, 2)))
        self.assertFails(["inspect", p], "rank3.h5", "/X", "rank 3")

    def test_label_length_differs_from_rows(self):
        p = self.path("label.h5")
        with h5py.File(p, "w") as f:
            f.create_dataset("X", data=np.zeros((10, 3)))
            f.create_dataset("y", data=np.zeros(9))
        self.assertFails(["inspect", p], "label.h5", "/y", "9")

    def test_zero_rows(self):
        # Described by inspect (an empty partition is a table); nothing can be fitted on it.
        p = self.path("zero.h5")
        with h5py.File(p, "w") as f:
            f.create_dataset("X", data=np.zeros((0, 3)))
        self.assertEqual(json.loads(run("inspect", p, "--json", "--quiet").stdout)["rows"], 0)
        self.assertFails(["prepare", p, self.path("zero_p.h5")], "zero.h5", "zero rows")
        self.assertFalse(os.path.exists(self.path("zero_p.h5")))

    def test_unsupported_dtype(self):
        p = self.path("strings.h5")
        with h5py.File(p, "w") as f:
            f.create_dataset("X", data=np.array([[b"a", b"b"], [b"c", b"d"]]))
        self.assertFails(["inspect", p], "strings.h5", "/X", "string")
        p = self.path("complex.h5")
        with h5py.File(p, "w") as f:
            f.create_dataset("X", data=np.zeros((3, 2), dtype=np.complex64))
        self.assertFails(["inspect", p], "complex.h5", "/X")

    def test_ragged_csv_names_the_line_and_leaves_no_output(self):
        csv = self.path("ragged.csv")
        with open(csv, "w") as f:
            f.write("a,b,c\n1,2,3\n4,5\n6,7,8\n")
        out = self.path("out.h5")
        self.assertFails(["import", csv, out], "ragged.csv", "line 3")
        self.assertFalse(os.path.exists(out))
        self.assertEqual([n for n in os.listdir(self.dir) if n != "ragged.csv"], [])
        # An earlier output at that path (a table: import replaces no other kind of file) is left
        # intact.
        run("synth", "--task", "binary", "--rows", 10, "--features", 2, "--out", out, "--quiet")
        with open(out, "rb") as f:
            earlier = f.read()
        self.assertFails(["import", csv, out], "line 3")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), earlier)
        # With --skip-bad-rows the rest is imported and the skip reported.
        proc = run("import", csv, out, "--skip-bad-rows")
        self.assertIn("3", proc.stderr)
        self.assertEqual(inspect_json(out)["rows"], 2)

    def test_device_flag(self):
        self.assertFails(["inspect", "x.h5", "--device", "tpu"], "--device")


class UsageErrorTest(TempDirTest):
    """Usage errors (the command line itself is wrong) are one `lathe: error:` line and exit 2;
    errors about the data and files exit 1. Messages read as the value was given."""

    @classmethod
    def setUpClass(cls):
        rng = np.random.default_rng(5)
        rows = 400
        x = rng.normal(0, 1, rows)
        df = pd.DataFrame({"x": x, "city": rng.choice(["A", "B", "C"], rows),
                           "y": np.where(x + rng.normal(0, 0.5, rows) > 0, "Yes", "No")})
        cls.share_binary_model("lathe-usage-", df, epochs=2)

    def train_args(self, *extra):
        return ["train", self.data, "--label", "y", "--task", "binary", "--out", self.path("x.h5"),
                "--device", "cpu", "--quiet", *extra]

    def test_unknown_command_lists_the_commands(self):
        proc = self.usage_error(["frobnicate"], "unknown command 'frobnicate'")
        for command in ["import", "train", "eval", "score", "drift", "report"]:
            self.assertIn(command, proc.stderr)
        self.assertNotIn("A subcommand is required", proc.stderr)
        self.usage_error(["evl", self.model, self.data], "unknown command 'evl'", "did you mean 'eval'")
        self.usage_error([], "a command is required")

    def test_misspelled_option_names_the_closest(self):
        self.usage_error(self.train_args("--epoch", "3"), "unknown option --epoch", "lathe train", "--epochs")
        self.usage_error(["score", self.model, self.data, "--out", self.path("o.csv"), "--ids", "x"],
                         "unknown option --ids", "--id")
        self.assertFalse(os.path.exists(self.path("x.h5")))

    def test_range_errors_are_readable(self):
        for args, needles in [
            (["score", self.model, self.data, "--out", self.path("o.csv"), "--block-rows", "0"],
             ["--block-rows", "at least 1", "(got 0)"]),
            (["drift", self.model, self.data, "--psi-warn", "-1"], ["--psi-warn", "at least 0", "(got -1)"]),
            (["report", self.model, "--out", self.path("r.html"), "--psi-alert", "-0.5"], ["--psi-alert", "(got -0.5)"]),
            (self.train_args("--checkpoint-every", "-2"), ["--checkpoint-every", "(got -2)"]),
            (["import", self.csv, self.path("i.h5"), "--chunk-rows", "0"], ["--chunk-rows", "at least 1"]),
        ]:
            proc = self.usage_error(args, *needles)
            self.assertNotIn("0.000000", proc.stderr)
            self.assertNotIn("179769313486", proc.stderr)
            self.assertNotIn("not in range", proc.stderr)

    def test_lathe_checks_print_values_as_given_and_name_the_flag(self):
        for flag, value in [("--patience", "-1"), ("--warmup", "-5"), ("--decay", "-1"), ("--l2", "-1"),
                            ("--clip-grad", "-1"), ("--l1", "-0.5")]:
            proc = self.usage_error(self.train_args(flag, value), flag, f"(got {value})")
            self.assertNotIn(".000000", proc.stderr)
            for internal in ["clip_norm", "optimizer:"]:
                self.assertNotIn(internal, proc.stderr)
        self.assertFalse(os.path.exists(self.path("x.h5")))

    def test_usage_errors_exit_2_and_data_errors_exit_1(self):
        out = self.path("x.h5")
        base = ["train", self.data, "--device", "cpu", "--quiet"]
        self.usage_error(base + ["--label", "y", "--out", out], "--task")
        self.usage_error(base + ["--task", "binary", "--out", out], "--label")
        self.usage_error(base + ["--task", "binary", "--label", "y"], "--out")
        # --label is checked with --task and --out, before a device is chosen (no note of it on a
        # machine without a GPU) or a file read, and may come from --config like them.
        proc = self.usage_error(["train", self.data, "--task", "binary", "--out", out],
                                "--label is required (on the command line or in --config)")
        self.assertNotIn("GPU", proc.stderr)
        self.usage_error(base + ["--task", "binar", "--label", "y", "--out", out], "--task")
        self.usage_error(base + ["--task", "binary", "--label", "y", "--out", out, "--impute", "sometimes"], "--impute")
        self.usage_error(["score", self.model, self.data, "--out", self.path("o.csv"), "--format", "parquet"],
                         "--format", "parquet")
        self.usage_error(["score", self.model, self.data, "--out", self.path("o.h5"), "--compression", "11"],
                         "--compression", "at most 9")
        self.usage_error(["prepare", self.data, self.path("p.h5"), "--compression", "12"], "--compression", "at most 9")
        self.usage_error(["import", self.csv, self.path("i.h5"), "--compression", "10"], "--compression", "at most 9")
        # Options that contradict each other, before the file is read.
        self.usage_error(["import", self.csv, self.path("i.h5"), "--categorical", "a,b", "--numeric", "b"],
                         "'b' is named by both --categorical and --numeric")
        self.usage_error(["import", self.csv, self.path("i.h5"), "--delimiter", '"'], "--delimiter", "a quote")
        self.usage_error(["synth", "--task", "binary", "--rows", "10", "--features", "2", "--out", self.path("s.h5"),
                          "--compression", "12", "--quiet"], "--compression")
        self.usage_error(base + ["--task", "regression", "--label", "x", "--out", out, "--class-weight", "balanced"],
                         "--class-weight")
        self.usage_error(["eval", self.model, self.data, "--device", "tpu"], "--device")
        self.usage_error(["drift", self.model, self.data, "--psi-warn", "0.5", "--psi-alert", "0.2"], "--psi-warn")
        for name in ["x.h5", "o.csv", "o.h5", "p.h5", "i.h5", "s.h5"]:
            self.assertFalse(os.path.exists(self.path(name)), name)
        # About the data or files: 1.
        proc = self.assertFails(["train", self.path("absent.h5"), "--label", "y", "--task", "binary", "--out", out,
                                 "--device", "cpu", "--quiet"], "absent.h5")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        proc = self.assertFails(["train", self.data, "--label", "nosuch", "--task", "binary", "--out", out,
                                 "--device", "cpu", "--quiet"], "nosuch")
        self.assertEqual(proc.returncode, 1, proc.stderr)

    def test_config_values_checked_after_parsing_name_the_file_and_the_key(self):
        # Checks made once the --config file is applied (the ranges lathe train checks itself, a
        # --positive that is not a label) name the file and the key, as the file's own checks do;
        # the same value on the command line reads as before, and so does a command-line value
        # beside a config file that does not set it.
        config = self.path("run.toml")
        for line, message, code in [
            ("lr = nan", "--lr must be a finite number above 0 (got nan)", 2),
            ("patience = -1", "--patience must be a finite number of at least 0 (got -1)", 2),
            ("memory-budget-mb = inf", "--memory-budget-mb must be a finite number above 0 (got inf)", 2),
            ("positive = true", "--positive: 'true' is not a label of 'y'", 1),
        ]:
            with self.subTest(line=line):
                with open(config, "w") as f:
                    f.write(line + "\n")
                key = line.split(" = ")[0]
                proc = self.assertFails(self.train_args("--config", config, "--epochs", "1"),
                                        f"--config: {config}: key '{key}': {message}")
                self.assertEqual(proc.returncode, code, proc.stderr)
                self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
                flag, value = line.split(" = ")
                proc = self.assertFails(self.train_args(f"--{flag}", value, "--epochs", "1"), message)
                self.assertEqual(proc.returncode, code, proc.stderr)
                self.assertNotIn("--config", proc.stderr)
        with open(config, "w") as f:
            f.write("epochs = 1\n")
        proc = self.usage_error(self.train_args("--config", config, "--lr", "nan"),
                                "--lr must be a finite number above 0 (got nan)")
        self.assertNotIn("run.toml", proc.stderr)
        self.assertFalse(os.path.exists(self.path("x.h5")))

    def test_config_help_says_relative_paths_are_from_the_current_directory(self):
        # A contract (QA 14): out, valid, checkpoint and the other paths in a config file are taken
        # from the current directory, not the file's folder, as on the command line.
        help_text = " ".join(run("train", "--help").stdout.split())
        self.assertIn("relative paths in it are taken from the current directory, as on the command line", help_text)

    def test_a_checkpoint_interval_past_the_last_epoch_is_noted(self):
        # --checkpoint-every 10 with --epochs 2 wrote nothing and said nothing.
        out = self.path("x.h5")
        proc = run(*self.train_args("--epochs", "2", "--checkpoint-every", "10"))
        self.assertIn("train: note: --checkpoint-every 10 writes no checkpoint: it exceeds --epochs 2, the run's last "
                      "epoch", proc.stderr)
        self.assertFalse(os.path.exists(self.path("x.checkpoint.h5")))
        # From a config file, said so.
        config = self.path("run.toml")
        with open(config, "w") as f:
            f.write("checkpoint-every = 5\nepochs = 3\n")
        proc = run(*self.train_args("--config", config))
        self.assertIn(f"--checkpoint-every 5 (in --config {config}) writes no checkpoint: it exceeds --epochs 3 (in "
                      f"--config {config}), the run's last epoch", proc.stderr)
        # Reached: no note, and the checkpoint is written.
        proc = run(*self.train_args("--epochs", "2", "--checkpoint-every", "2"))
        self.assertNotIn("checkpoint", proc.stderr)
        self.assertTrue(os.path.exists(self.path("x.checkpoint.h5")))
        os.remove(self.path("x.checkpoint.h5"))
        # Without --epochs the default for a small training set is known once it is read: said after
        # training when the run ended before the first checkpoint epoch.
        proc = run(*self.train_args("--checkpoint-every", "150"))
        self.assertIn("train: note: --checkpoint-every 150 wrote no checkpoint: the run ended at epoch ", proc.stderr)
        self.assertFalse(os.path.exists(self.path("x.checkpoint.h5")))
        self.assertTrue(os.path.exists(out))

    def test_a_preparation_setting_given_twice_or_an_infinite_k_is_a_usage_error(self):
        # Which of two settings was meant is not for the parser to guess (the last one used to win
        # silently); an infinite K was refused only once the data was read, with exit 1.
        for flag, value, needles in [
            ("--clip", "std:2,x=std:1,x=none", ["--clip", "column 'x' is given twice", "'x=std:1'", "'x=none'"]),
            ("--impute", "mean,x=median,x=constant:5", ["--impute", "column 'x' is given twice"]),
            ("--scale", "standard,minmax", ["--scale", "two defaults", "'standard'", "'minmax'"]),
            ("--clip", "std:inf", ["--clip", "'std:inf'", "positive and finite"]),
        ]:
            self.usage_error(self.train_args(flag, value), *needles)
            self.usage_error(["prepare", self.data, self.path("p.h5"), flag, value, "--quiet"], *needles)
        self.assertFalse(os.path.exists(self.path("x.h5")))
        self.assertFalse(os.path.exists(self.path("p.h5")))
        # One setting per column, beside a default, stays fine.
        run(*self.train_args("--clip", "std:2,x=quantile", "--impute", "median,x=mean", "--epochs", "1"))

    def test_csv_where_hdf5_is_expected_says_how_to_convert_it(self):
        hint = f"convert it with `lathe import {self.csv} {self.data}`"
        for args in [
            ["train", self.csv, "--label", "y", "--task", "binary", "--out", self.path("x.h5"), "--device", "cpu"],
            ["score", self.model, self.csv, "--out", self.path("o.csv"), "--device", "cpu"],
            ["eval", self.model, self.csv, "--device", "cpu"],
            ["drift", self.model, self.csv, "--device", "cpu"],
            ["inspect", self.csv, "--device", "cpu"],
            ["prepare", self.csv, self.path("p.h5"), "--device", "cpu"],
            ["report", self.model, "--eval", self.csv, "--out", self.path("r.html"), "--device", "cpu"],
        ]:
            proc = self.assertFails(args, f"{self.csv}: not an HDF5 file", "looks like a CSV file", hint)
            self.assertEqual(proc.returncode, 1, proc.stderr)
        # The arguments swapped: the CSV given as the model.
        self.assertFails(["score", self.csv, self.data, "--out", self.path("o.csv"), "--device", "cpu"],
                         "looks like a CSV file, not a model")
        # An empty file, data or model, is said to be empty: not told to be imported, nor to be no HDF5.
        empty_csv, empty_model = self.path("empty.csv"), self.path("empty.h5")
        for path in (empty_csv, empty_model):
            open(path, "wb").close()
        for args, path in [
            (["train", empty_csv, "--label", "y", "--task", "binary", "--out", self.path("x.h5"), "--device", "cpu"],
             empty_csv),
            (["eval", empty_model, self.data, "--device", "cpu"], empty_model),
            (["score", self.model, empty_csv, "--out", self.path("o.csv"), "--device", "cpu"], empty_csv),
        ]:
            proc = self.assertFails(args, f"{path}: file is empty")
            self.assertNotIn("CSV", proc.stderr)
            self.assertNotIn("not an HDF5", proc.stderr)
        # A file that is neither: no hint.
        junk = self.path("junk.h5")
        with open(junk, "wb") as f:
            f.write(bytes(range(256)) * 4)
        proc = self.assertFails(["inspect", junk], "not an HDF5 file")
        self.assertNotIn("CSV", proc.stderr)
        # A file of tab-separated values: the command names its delimiter.
        tsv = self.path("data.txt")
        with open(tsv, "w") as f:
            f.write("x\ty\n1\t0\n2\t1\n")
        self.assertFails(["inspect", tsv], f"convert it with `lathe import {tsv} {self.path('data.h5')} --delimiter tab`")
        # The other way round: HDF5 given to import, which reads CSV.
        proc = self.assertFails(["import", self.data, self.path("again.h5")], f"{self.data}: is an HDF5 file, not CSV")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertNotIn("UTF-8", proc.stderr)

    def test_quiet_silences_the_cpu_fallback_note(self):
        note = "no usable GPU"
        for args in [["eval", self.model, self.data],
                     ["drift", self.model, self.data],
                     ["inspect", self.data],
                     ["score", self.model, self.data, "--out", self.path("s.h5")],
                     ["report", self.model, "--out", self.path("r.html")],
                     ["prepare", self.data, self.path("p.h5"), "--label", "y"],
                     ["train", self.data, "--label", "y", "--task", "binary", "--epochs", "1", "--out",
                      self.path("t.h5")]]:
            loud = run(*args, check=False)
            self.assertIn(loud.returncode, (0, 3), loud.stderr)
            quiet = run(*args, "--quiet", check=False)
            self.assertIn(quiet.returncode, (0, 3), quiet.stderr)
            self.assertNotIn(note, quiet.stderr, args)
            info = json.loads(run("info", "--json").stdout)
            if not info["cuda_usable"]:
                self.assertIn(note, loud.stderr, args)  # the note is there to silence
        # `quiet = true` in a --config file silences it too.
        config = self.path("run.toml")
        with open(config, "w") as f:
            f.write('task = "binary"\nlabel = "y"\nepochs = 1\nquiet = true\n')
        proc = run("train", self.data, "--config", config, "--out", self.path("c.h5"))
        self.assertNotIn(note, proc.stderr)
        self.assertEqual(proc.stderr, "")


class CommandLineSlipsTest(TempDirTest):
    """Slips a command line makes that read as something else: an empty value (an unset shell
    variable), another tool's spelling of an option. Each is a usage error (exit 2, one line) that
    names the option or argument, made before any work (no note of the device, no file written)."""

    @classmethod
    def setUpClass(cls):
        rng = np.random.default_rng(8)
        rows = 300
        x = rng.normal(0, 1, rows)
        df = pd.DataFrame({"x": x, "city": rng.choice(["A", "B"], rows), "w": rng.uniform(0.5, 1.5, rows),
                           "y": np.where(x + rng.normal(0, 0.5, rows) > 0, "Yes", "No")})
        cls.share_binary_model("lathe-slips-", df, epochs=1)

    def train_args(self, *extra):
        return ["train", self.data, "--label", "y", "--task", "binary", "--out", self.path("x.h5"),
                "--device", "cpu", "--quiet", "--epochs", "1", *extra]

    def assertNothingWritten(self):
        self.assertEqual(os.listdir(self.dir), [])

    def test_an_empty_name_or_choice_is_a_usage_error_naming_the_option(self):
        # Each read as the option left out (exit 0): `--label ""` on inspect as the dataset "y",
        # `--impute ""` as the default mean, `--drop ""` as no columns, `--format ""` as the
        # format the name says, `--group ""` as the default group.
        prepare = ["prepare", self.data, self.path("p.h5"), "--device", "cpu", "--quiet"]
        score = ["score", self.model, self.data, "--out", self.path("s.csv"), "--device", "cpu", "--quiet"]
        cases = [(self.train_args(flag, ""), flag) for flag in ["--cross", "--drop", "--positive", "--weight", "--group"]]
        cases.append((["train", self.data, "--label", "", "--task", "binary", "--out", self.path("x.h5")], "--label"))
        cases += [(prepare + [flag, ""], flag) for flag in ["--label", "--cross", "--drop", "--group"]]
        cases += [
            (score + ["--id", ""], "--id"),
            (score + ["--format", ""], "--format"),
            (score + ["--group", ""], "--group"),
            (["eval", self.model, self.data, "--device", "cpu", "--weight", ""], "--weight"),
            (["eval", self.model, self.data, "--device", "cpu", "--group", ""], "--group"),
            (["drift", self.model, self.data, "--device", "cpu", "--weight", ""], "--weight"),
            (["report", self.model, "--out", self.path("r.html"), "--drift", self.data, "--drift-weight", "",
              "--device", "cpu"], "--drift-weight"),
            (["inspect", self.data, "--device", "cpu", "--label", ""], "--label"),
            (["inspect", self.data, "--device", "cpu", "--matrix", ""], "--matrix"),
            (["inspect", self.data, "--device", "cpu", "--group", ""], "--group"),
            (["import", self.csv, self.path("i.h5"), "--categorical", ""], "--categorical"),
            (["import", self.csv, self.path("i.h5"), "--numeric", ""], "--numeric"),
        ]
        for args, flag in cases:
            with self.subTest(args=args):
                self.usage_error(args, flag + ": is empty (an unset shell variable?): give ")
        # A list with an empty item: the item was left out unsaid.
        for args, flag in [(self.train_args("--drop", "x,,city"), "--drop"),
                           (prepare + ["--cross", "x*city,"], "--cross"),
                           (["import", self.csv, self.path("i.h5"), "--categorical", "city, ,y"], "--categorical")]:
            with self.subTest(args=args):
                self.usage_error(args, flag + ": '", "' has an empty item: give ")
        # --metric lists the task's metrics.
        self.usage_error(self.train_args("--metric", ""), "--metric: '' is not a metric of a binary task (", "auc")
        self.assertNothingWritten()

    def test_an_empty_preparation_setting_lists_the_choices(self):
        # `--impute ""` and the others exited 0 with the default setting.
        for flag, choices in [("--impute", "mean, median or constant[:VALUE]"),
                              ("--scale", "standard, minmax, robust or none"),
                              ("--clip", "none, quantile[:LO:HI], std[:K] or iqr[:K]"),
                              ("--bins", "0 (none) or a whole number of bins from 2 to ")]:
            for value, needle in [("", f"{flag}: is empty (an unset shell variable?): give {choices}"),
                                  ("x=" + ("mean" if flag == "--impute" else "none" if flag != "--bins" else "0") + ",,",
                                   f"has an empty item: give {choices}")]:
                with self.subTest(flag=flag, value=value):
                    self.usage_error(self.train_args(flag, value), needle)
                    self.usage_error(["prepare", self.data, self.path("p.h5"), "--device", "cpu", flag, value], needle)
        self.assertNothingWritten()

    def test_a_config_files_empty_list_is_no_columns_and_an_empty_name_is_refused(self):
        config = self.path("run.toml")
        # `drop = []` and `cross = []` clear the lists, as leaving the keys out does.
        with open(config, "w") as f:
            f.write("drop = []\ncross = []\n")
        run(*self.train_args("--config", config))
        self.assertTrue(os.path.exists(self.path("x.h5")))
        os.remove(self.path("x.h5"))
        for line, needle in [
            ('drop = [""]', "key 'drop': the array holds an empty name"),
            ('drop = ["x", " "]', "key 'drop': the array holds an empty name"),
            ('cross = [""]', "key 'cross': the array holds an empty name"),
            # An empty string in a file is no unset shell variable: the message says what to give.
            ('drop = ""', "key 'drop': an empty string ('') gives no value; give names, or [] for none"),
            ('weight = ""', "key 'weight': an empty string ('') gives no value; leave the key out"),
            ('impute = " "', "key 'impute': an empty string (' ') gives no value; leave the key out"),
            ("impute = []", "key 'impute': an empty array gives no value"),
            ("epochs = []", "key 'epochs': an empty array gives no value"),
        ]:
            with self.subTest(line=line):
                with open(config, "w") as f:
                    f.write(line + "\n")
                proc = self.usage_error(self.train_args("--config", config), f"--config: {config}: {needle}")
                self.assertNotIn("shell variable", proc.stderr)
                self.assertFalse(os.path.exists(self.path("x.h5")))

    def test_an_empty_path_argument_is_a_usage_error_naming_it(self):
        # An empty input path failed as "no such file" (exit 1), some after reading the model.
        out = self.path("o.h5")
        for args, name in [
            (["eval", "", self.data], "the model argument"),
            (["eval", self.model, ""], "the data argument"),
            (["score", self.model, "", "--out", out], "the data argument"),
            (["score", "", self.data, "--out", out], "the model argument"),
            (["score", self.model, self.data, "", "--out", self.dir], "the data argument"),
            (["inspect", ""], "the file argument"),
            (["drift", self.model, ""], "the data argument"),
            (["drift", "", self.data], "the model argument"),
            (["report", "", "--out", self.path("r.html")], "the model argument"),
            (["export", "", "--onnx", self.path("x.onnx")], "the model argument"),
            (["import", "", out], "the csv argument"),
            (["prepare", "", out], "the in argument"),
            (["train", "", "--label", "y", "--task", "binary", "--out", out], "the data argument"),
        ]:
            with self.subTest(args=args):
                proc = self.usage_error(args, f"{name} is empty (an unset shell variable?): give a file path")
                self.assertNotIn("GPU", proc.stderr)
        self.assertNothingWritten()

    def test_a_misspelled_device_is_a_usage_error_before_any_file_is_read(self):
        # `--device gpu` (or an unset variable's "") failed only after the model was loaded, and
        # named no file that was missing first.
        missing = self.path("missing.h5")
        out = self.path("o.h5")
        for args in [["eval", missing, missing], ["score", missing, missing, "--out", out], ["drift", missing, missing],
                     ["report", missing, "--out", self.path("r.html")], ["inspect", missing],
                     ["prepare", missing, out], ["train", missing, "--label", "y", "--task", "binary", "--out", out]]:
            for device, needle in [("gpu", "--device: 'gpu' is not auto, cpu, cuda or cuda:N"),
                                   ("cuda:x", "--device: 'cuda:x' is not auto, cpu, cuda or cuda:N"),
                                   ("", "--device: is empty (an unset shell variable?): give auto, cpu, cuda or cuda:N")]:
                with self.subTest(command=args[0], device=device):
                    proc = self.usage_error(args + ["--device", device], needle)
                    self.assertNotIn("missing.h5", proc.stderr)
        self.assertNothingWritten()

    def test_other_tools_spellings_of_an_option_are_suggested(self):
        for typed, ours in [("--batch-size", "--batch"), ("--batch_size", "--batch"), ("--learning-rate", "--lr"),
                            ("--learning_rate", "--lr"), ("--eta", "--lr"), ("--n-epochs", "--epochs"),
                            ("--max-iter", "--epochs"), ("--num_epochs", "--epochs"), ("--random-state", "--seed"),
                            ("--random_state", "--seed"), ("--valid_fraction", "--valid-fraction"),
                            ("--min_category_count", "--min-category-count"), ("-o", "--out")]:
            with self.subTest(typed=typed):
                self.usage_error(self.train_args(typed, "3"), f"unknown option {typed} for `lathe train` "
                                 f"(did you mean {ours}?)")
        self.usage_error(["score", self.model, self.data, "-o", self.path("s.csv")],
                         "unknown option -o for `lathe score` (did you mean --out?)")
        for typed in ["--sep", "--delim"]:
            self.usage_error(["import", self.csv, self.path("i.h5"), typed, ";"],
                             f"unknown option {typed} for `lathe import` (did you mean --delimiter?)")
        # Only an option the command has: eval has no --batch, train no --delimiter.
        proc = self.usage_error(["eval", self.model, self.data, "--batch-size", "3"], "unknown option --batch-size")
        self.assertNotIn("did you mean", proc.stderr)
        proc = self.usage_error(self.train_args("--sep", ";"), "unknown option --sep")
        self.assertNotIn("--delimiter", proc.stderr)
        # A config file's keys too.
        config = self.path("run.toml")
        with open(config, "w") as f:
            f.write("batch_size = 32\n")
        self.usage_error(self.train_args("--config", config), "key 'batch_size' is not an option of lathe train "
                         "(did you mean 'batch'?)")
        # A config naming another: --config is an option of lathe train, just not of a config file.
        with open(config, "w") as f:
            f.write('config = "other.toml"\n')
        self.usage_error(self.train_args("--config", config), "key 'config': a config file holds the options of one "
                         "run, not --config (a config names no other config; give the options here)")
        os.remove(config)
        self.assertNothingWritten()


class ModelInputMessagesTest(TempDirTest):
    """`lathe eval`, `drift` and `report` name the data file and the model file when a column the
    model reads is missing or retyped, as `lathe score` does; a label that was not a class at
    training is named with the model's classes."""

    @classmethod
    def setUpClass(cls):
        cls.shared_dir = tempfile.mkdtemp(prefix="lathe-inputs-")
        rng = np.random.default_rng(8)
        rows = 300
        x = rng.normal(0, 1, rows)
        cls.frame = pd.DataFrame({"x": x, "contract": rng.choice(["Month", "Year"], rows),
                                  "churn": np.where(x > 0, "Yes", "No")})
        cls.data = cls.imported("train", cls.frame)
        cls.model = os.path.join(cls.shared_dir, "m.h5")
        run("train", cls.data, "--label", "churn", "--task", "binary", "--epochs", "2", "--out", cls.model,
            "--device", "cpu", "--quiet")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.shared_dir, ignore_errors=True)

    @classmethod
    def imported(cls, name, df):
        return import_frame(df, cls.shared_dir, name)

    def commands(self, data):
        return [["eval", self.model, data], ["report", self.model, "--eval", data, "--out", self.path("r.html")],
                ["score", self.model, data, "--out", self.path("s.h5")]]

    def test_missing_and_retyped_columns_name_the_data_and_the_model(self):
        nocontract = self.imported("nocontract", self.frame.drop(columns="contract"))
        retyped = self.imported("retyped", self.frame.assign(x=["v%d" % i for i in range(len(self.frame))]))
        for data, message in [
                (nocontract, f"{nocontract}: column 'contract' (categorical), an input of the model {self.model}, "
                             "is missing"),
                (retyped, f"{retyped}: column 'x' is categorical but was numeric when the model {self.model} was "
                          "trained")]:
            for args in self.commands(data):
                proc = self.assertFails(args + ["--device", "cpu", "--quiet"], message)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertNotIn("needed by the preparation", proc.stderr)
            # Drift reports it as drift (exit 3) and says the same in its predictions note.
            proc = run("drift", self.model, data, "--json", "--device", "cpu", "--quiet", check=False)
            self.assertEqual(proc.returncode, 3, proc.stderr)
            report = json.loads(proc.stdout)
            self.assertIn(message, report["prediction"]["note"])
            self.assertTrue(any(n.startswith("metrics not compared") for n in report["notes"]), report["notes"])
        self.assertFalse(os.path.exists(self.path("r.html")))
        self.assertFalse(os.path.exists(self.path("s.h5")))

    def test_a_label_that_was_not_a_class_is_named(self):
        frame = self.frame.copy()
        frame.loc[3, "churn"] = "Maybe"
        data = self.imported("newlabel", frame)
        for args in self.commands(data)[:2]:
            proc = self.assertFails(args + ["--device", "cpu", "--quiet"],
                                    f"{data}: label 'Maybe' in row 4 (column 'churn') was not a class of the model "
                                    f"{self.model} (No, Yes)")
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertNotIn("missing, infinite or unknown", proc.stderr)
        # A missing label is named as missing.
        frame.loc[3, "churn"] = np.nan
        data = self.imported("nolabel_row", frame)
        self.assertFails(["eval", self.model, data, "--device", "cpu", "--quiet"], "row 4 has no label (missing)")

    def test_a_label_that_is_a_class_in_other_letter_case_is_named_as_such(self):
        # QA: a CRM export of new rows wrote 'no' where training had 'No'; eval said only that 'no'
        # was not a class of the model (No, Yes), though train names such spellings.
        frame = self.frame.copy()
        frame.loc[3, "churn"] = "no"
        frame.loc[5, "churn"] = "YES "
        data = self.imported("lowercase_label", frame)
        for args in self.commands(data)[:2]:
            proc = self.assertFails(args + ["--device", "cpu", "--quiet"],
                                    f"{data}: label 'no' in row 4 (column 'churn') was not a class of the model "
                                    f"{self.model} (No, Yes): it is the class 'No' apart from letter case, and "
                                    "classes are matched exactly; write them as in training")
            self.assertEqual(proc.returncode, 1, proc.stderr)
        proc = run("drift", self.model, data, "--json", "--device", "cpu", "--quiet", check=False)
        notes = json.loads(proc.stdout)["notes"]
        self.assertTrue(any("it is the class 'No' apart from letter case" in n for n in notes), notes)


def h5_contents(path):
    """Every dataset's values and every attribute of an HDF5 file, by name: equal for files with the
    same contents (HDF5 stamps object headers with the time, so the bytes differ run to run)."""
    contents = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            attrs = {k: np.asarray(v).tolist() for k, v in obj.attrs.items()}
            values = obj[()].tolist() if isinstance(obj, h5py.Dataset) else None
            contents[name] = (values, attrs)
        visit("/", f)
        f.visititems(visit)
    return contents


class WholeNumberOptionsTest(TempDirTest):
    """Every integer option reads its value as a decimal whole number: leading zeros are decimal
    ("010" is ten, not octal eight), "0x10", "1e1", "10.0", " 10" and "" are refused naming the
    option, an unsigned option refuses a negative value, and a value outside the option's type is
    refused rather than wrapped or clamped. Usage errors: exit 2."""

    @classmethod
    def setUpClass(cls):
        rng = np.random.default_rng(8)
        rows = 300
        x = rng.normal(0, 1, rows)
        df = pd.DataFrame({"x": x, "z": rng.normal(0, 1, rows), "city": rng.choice(["A", "B", "C"], rows),
                           "shop": rng.choice(["s", "t"], rows),
                           "y": np.where(x + rng.normal(0, 0.5, rows) > 0, "Yes", "No")})
        cls.share_binary_model("lathe-whole-", df, epochs=1)

    def synth_args(self, *extra, rows="100", features="2", out="s.h5"):
        return ["synth", "--task", "binary", "--rows", rows, "--features", features, "--out", self.path(out),
                "--quiet", *extra]

    def train_args(self, *extra):
        return ["train", self.data, "--label", "y", "--task", "binary", "--out", self.path("t.h5"), "--device", "cpu",
                "--quiet", *extra]

    # The arguments each command needs besides the option under test (integer options given here
    # are small, so that a command that wrongly accepts the value tested still ends quickly).
    def base_args(self):
        return {
            "import": ([self.csv, self.path("i.h5")], {}),
            "synth": ([], {"--task": "binary", "--rows": "100", "--features": "2", "--out": self.path("s.h5")}),
            "prepare": ([self.data, self.path("p.h5")], {"--label": "y", "--device": "cpu"}),
            "train": ([self.data], {"--label": "y", "--task": "binary", "--out": self.path("t.h5"), "--epochs": "1",
                                    "--device": "cpu"}),
            "score": ([self.model, self.data], {"--out": self.path("o.h5"), "--device": "cpu"}),
            "inspect": ([self.data], {"--device": "cpu"}),
            "bench": ([], {"--rows": "100", "--features": "2", "--device": "cpu"}),
            "bench train": ([], {"--rows": "100", "--features": "2", "--epochs": "1", "--device": "cpu"}),
            "bench score": ([], {"--rows": "100", "--features": "2", "--device": "cpu"}),
        }

    def integer_options(self):
        """{command: [(option, "INT" or "UINT")]} for every command and subcommand, from --help."""
        commands = []
        for usage in [["--help"], ["bench", "--help"]]:
            prefix = usage[:-1]
            listing = run(*usage).stdout.split("Subcommands:", 1)[1]
            commands += [" ".join(prefix + [m]) for m in re.findall(r"^  ([a-z]+) ", listing, re.M)]
        options = {}
        for command in commands:
            text = run(*command.split(), "--help").stdout
            options[command] = re.findall(r"^\s+(?:-\w,)?(--[\w-]+) (U?INT)\b", text, re.M)
        return options

    def test_leading_zeros_are_decimal(self):
        out = self.path("s.h5")
        run(*self.synth_args("--chunk-rows", "04", rows="010", features="03"))
        info = inspect_json(out)
        self.assertEqual(info["rows"], 10)
        self.assertEqual(len(info["columns"]), 4)  # three features and the label
        with h5py.File(out, "r") as f:
            self.assertEqual(f["f0"].chunks, (4,))
        imported = self.path("i.h5")
        run("import", self.csv, imported, "--chunk-rows", "010", "--quiet")
        with h5py.File(imported, "r") as f:
            self.assertEqual(f["x"].chunks, (10,))
        summary = json.loads(run(*self.train_args("--batch", "010", "--epochs", "03", "--patience", "010")).stdout)
        self.assertEqual(summary["batch"], 10)
        self.assertEqual(summary["max_epochs"], 3)
        prepared = self.path("p.h5")
        run("prepare", self.data, prepared, "--label", "y", "--cross", "all", "--hash-buckets", "0100000",
            "--device", "cpu", "--quiet")
        with h5py.File(prepared, "r") as f:
            self.assertEqual(json.loads(f.attrs["lathe_preparation"])["hash_buckets"], 100000)
        bench = json.loads(run("bench", "train", "--rows", "1000", "--features", "2", "--epochs", "1",
                               "--workers", "010,02", "--json", "--device", "cpu").stdout)
        self.assertEqual([r["workers"] for r in bench["parallel_by_workers"]], [10, 2])
        # A value from --config is read the same way.
        config = self.path("run.toml")
        with open(config, "w") as f:
            f.write('task = "binary"\nlabel = "y"\nepochs = 2\nbatch = "010"\n')
        summary = json.loads(run("train", self.data, "--config", config, "--out", self.path("c.h5"), "--device",
                                 "cpu", "--quiet").stdout)
        self.assertEqual((summary["batch"], summary["max_epochs"]), (10, 2))

    def test_a_seed_with_a_leading_zero_is_the_same_seed(self):
        run(*self.synth_args("--seed", "08", out="s08.h5"))
        run(*self.synth_args("--seed", "8", out="s8.h5"))
        run(*self.synth_args("--seed", "10", out="s10.h5"))
        run(*self.synth_args("--seed", "010", out="s010.h5"))
        self.assertEqual(h5_contents(self.path("s08.h5")), h5_contents(self.path("s8.h5")))
        self.assertEqual(h5_contents(self.path("s010.h5")), h5_contents(self.path("s10.h5")))
        self.assertNotEqual(h5_contents(self.path("s8.h5")), h5_contents(self.path("s10.h5")))

    def test_values_that_are_not_decimal_whole_numbers_are_usage_errors(self):
        for args, option, value in [
            (self.synth_args(rows="0x10"), "--rows", "0x10"),
            (self.synth_args(rows="10.0"), "--rows", "10.0"),
            (self.synth_args(rows=" 10"), "--rows", " 10"),
            (self.synth_args(rows=""), "--rows", ""),
            (self.synth_args("--seed", "0x8"), "--seed", "0x8"),
            (self.train_args("--epochs", "1e1"), "--epochs", "1e1"),
            (self.train_args("--batch", "0x10"), "--batch", "0x10"),
            (["prepare", self.data, self.path("p.h5"), "--hash-buckets", "0x100"], "--hash-buckets", "0x100"),
            (["score", self.model, self.data, "--out", self.path("o.h5"), "--block-rows", "0x10"], "--block-rows",
             "0x10"),
            (["import", self.csv, self.path("i.h5"), "--chunk-rows", "0x10"], "--chunk-rows", "0x10"),
            (["bench", "train", "--rows", "100", "--features", "2", "--epochs", "1", "--workers", "1,0x2",
              "--device", "cpu"], "--workers", "0x2"),
        ]:
            self.usage_error(args, f"{option}: '{value}' is not a whole number")
        config = self.path("run.toml")
        with open(config, "w") as f:
            f.write('task = "binary"\nlabel = "y"\nepochs = "0x10"\n')
        self.usage_error(["train", self.data, "--config", config, "--out", self.path("t.h5"), "--device", "cpu",
                          "--quiet"], "key 'epochs'", "--epochs: '0x10' is not a whole number")
        for name in ["s.h5", "t.h5", "p.h5", "o.h5", "i.h5"]:
            self.assertFalse(os.path.exists(self.path(name)), name)

    def test_negative_and_out_of_range_values_are_refused_not_wrapped(self):
        for args, needles in [
            (self.synth_args("--seed", "-1"), ["--seed: must be at least 0 (got -1)"]),
            (self.train_args("--seed", "-1"), ["--seed: must be at least 0 (got -1)"]),
            (["prepare", self.data, self.path("p.h5"), "--hash-buckets", "-1"], ["--hash-buckets", "(got -1)"]),
            (self.synth_args("--seed", "18446744073709551616"),
             ["--seed: must be at most 18446744073709551615 (got 18446744073709551616)"]),
            (self.synth_args(features="99999999999"), ["--features: must be at most 2147483647"]),
            (self.train_args("--warmup", "99999999999999999999"), ["--warmup: must be at most 9223372036854775807"]),
        ]:
            self.usage_error(args, *needles)
        for name in ["s.h5", "t.h5", "p.h5"]:
            self.assertFalse(os.path.exists(self.path(name)), name)

    def test_every_integer_option_of_every_command_is_read_in_decimal(self):
        options = self.integer_options()
        self.assertIn(("--rows", "INT"), options["synth"])
        self.assertIn(("--seed", "UINT"), options["train"])
        self.assertIn(("--workers", "INT"), options["bench train"])
        base = self.base_args()
        for command, found in options.items():
            if not found:
                continue
            self.assertIn(command, base, f"`lathe {command}` has integer options {found}: give it base arguments here")
            positional, named = base[command]
            for option, kind in found:
                given = [word for name, value in named.items() if name != option for word in (name, value)]
                args = [*command.split(), *positional, *given]
                self.usage_error(args + [option, "0x10"], f"{option}: '0x10' is not a whole number")
                self.usage_error(args + [option, "1e1"], f"{option}: '1e1' is not a whole number")
                if kind == "UINT":
                    self.usage_error(args + [option, "-1"], f"{option}: must be at least 0 (got -1)")


class SynthTest(TempDirTest):
    def test_synth_then_inspect(self):
        for layout in ["columnar", "matrix"]:
            p = self.path(f"synth-{layout}.h5")
            run("synth", "--task", "multiclass", "--classes", "4", "--rows", "5000", "--features", "6",
                "--categorical", "2", "--missing-rate", "0.05", "--seed", "9", "--layout", layout,
                "--out", p, "--quiet")
            info = inspect_json(p)
            self.assertEqual(info["layout"], layout)
            self.assertEqual(info["rows"], 5000)
            self.assertEqual(len(info["columns"]), 9)
            missing = sum(c["missing"] for c in info["columns"][:8])
            self.assertGreater(missing, 0.03 * 5000 * 8)
            self.assertLess(missing, 0.07 * 5000 * 8)


class BenchTest(unittest.TestCase):
    def test_bench_train_json(self):
        proc = run("bench", "train", "--rows", "20000", "--features", "8", "--epochs", "2", "--json",
                   "--device", "cpu")
        out = json.loads(proc.stdout)
        self.assertIn("cpu", out["device"])
        self.assertEqual((out["rows"], out["features"]), (20000, 8))
        self.assertGreater(out["batch"], 0)
        self.assertEqual(out["ceiling_bytes"], 20000 * 9 * 4)
        self.assertIn("memcpy", out["ceiling_source"])
        for key in ["ceiling_seconds", "ceiling_gbps"]:
            self.assertGreater(out[key], 0, key)
        for mode in ["exact", "parallel"]:
            for key in ["epoch_seconds", "rows_per_second", "fraction_of_ceiling"]:
                self.assertGreater(out[mode][key], 0, f"{mode}.{key}")
        self.assertGreater(out["exact"]["step_microseconds"], 0)
        self.assertEqual(out["exact"]["steps"], -(-20000 // out["batch"]))
        self.assertIn("epoch", proc.stderr)  # progress goes to stderr, not into the JSON


class InfoTest(unittest.TestCase):
    def test_info_json(self):
        info = json.loads(run("info", "--json").stdout)
        self.assertIn("cuda_usable", info)
        self.assertGreaterEqual(info["cpu_threads"], 1)
        if not info["cuda_usable"]:
            self.assertTrue(info["cuda_unusable_reason"])
            proc = run("inspect", "x.h5", "--device", "cuda", check=False)
            self.assertNotEqual(proc.returncode, 0)
            self.assertIn("CUDA is not usable", proc.stderr)


class MatrixInGroupTest(TempDirTest):
    """`--group G` where G holds a 2-D X reads the matrix layout inside G, with G's own label y."""

    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(3)
        self.data = self.path("mat.h5")
        with h5py.File(self.data, "w") as f:
            f["X"] = rng.normal(size=(100, 2))
            f["y"] = rng.normal(size=100)
            f["sub/X"] = rng.normal(size=(10, 2))
            f["sub/y"] = np.arange(10, dtype=np.float64)

    def test_inspect_and_train_a_matrix_inside_a_group(self):
        info = inspect_json(self.data, "--group", "sub")
        self.assertEqual(info["layout"], "matrix")
        self.assertEqual(info["rows"], 10)
        self.assertEqual([c["name"] for c in info["columns"]], ["f0", "f1", "y"])
        self.assertAlmostEqual(info["columns"][2]["mean"], 4.5)
        self.assertEqual(inspect_json(self.data, "--group", "sub/X")["columns"], info["columns"])
        model = self.path("m.h5")
        run("train", self.data, "--group", "sub", "--label", "y", "--task", "regression", "--epochs", "2",
            "--out", model, "--device", "cpu", "--quiet")
        self.assertTrue(os.path.exists(model))

    def test_inspect_matrix_options_name_datasets_the_file_has(self):
        """`inspect --matrix M --label L` read M and L or fail naming them: the reader's fallback to a
        file's only 2-D dataset, and its optional label, must not describe another matrix or drop the
        label without a word."""
        self.assertEqual([c["name"] for c in inspect_json(self.data, "--matrix", "X", "--label", "y")["columns"]],
                         ["f0", "f1", "y"])
        for flag in ["--matrix", "--label"]:
            proc = self.assertFails(["inspect", self.data, flag, "nosuch", "--device", "cpu", "--quiet"],
                                    f"{flag} nosuch", "/X")
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertEqual(proc.stdout, "")
        # A label not named y is read when --label names it (h5py's data/target, say).
        other = self.path("named.h5")
        with h5py.File(other, "w") as f:
            f["data"] = np.arange(12, dtype=np.float32).reshape(4, 3)
            f["target"] = np.arange(4, dtype=np.float32)
        info = inspect_json(other, "--matrix", "data", "--label", "target")
        self.assertEqual([c["name"] for c in info["columns"]], ["f0", "f1", "f2", "target"])
        # A table in another layout has no matrix to name.
        columnar = self.path("columnar.h5")
        run("synth", "--task", "regression", "--rows", "20", "--features", "2", "--out", columnar, "--quiet")
        self.assertFails(["inspect", columnar, "--label", "y", "--device", "cpu", "--quiet"], "--label", "columnar")



def cells(text):
    """The terminal cells `text` takes: 2 for East Asian Wide and Fullwidth, 0 for combining marks."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


class EvalRefitNoteTest(TempDirTest):
    def test_a_refit_of_one_epoch_is_one_epoch(self):
        # QA: "(training validation: the best epoch's, before the model was trained again on all 344
        # training and validation rows for 1 epochs)".
        data = self.path("penguins.h5")
        run("import", os.path.join(SHARED, "penguins.csv"), data, "--quiet")
        model = self.path("m.h5")
        run("train", data, "--label", "species", "--task", "multiclass", "--epochs", "1", "--refit", "yes", "--out",
            model, "--device", "cpu", "--quiet")
        text = run("eval", model, data, "--device", "cpu", "--quiet").stdout
        self.assertIn("before the model was trained again on all 344 training and validation rows for 1 epoch)", text)


class EvalImputedNoteTest(TempDirTest):
    def test_missing_values_where_training_had_none_are_noted_and_counted(self):
        # QA: `lathe score` noted a column that had no missing values in training and now has some
        # (imputed with the training fill value); `lathe eval` on the same rows said nothing.
        rng = np.random.default_rng(11)
        df = pd.DataFrame({"x": rng.normal(size=400), "z": rng.normal(size=400)})
        df["y"] = (df.x + 0.3 * rng.normal(size=400) > 0).astype(int)
        df.loc[::10, "z"] = np.nan  # missing in training too: counted, not noted
        data = import_frame(df, self.dir, "train.h5")
        model = self.path("m.h5")
        run("train", data, "--label", "y", "--task", "binary", "--epochs", "2", "--out", model, "--device", "cpu",
            "--quiet")
        new = df.copy()
        new.loc[:6, "x"] = np.nan
        new_data = import_frame(new, self.dir, "new.h5")
        proc = run("eval", model, new_data, "--device", "cpu")
        self.assertIn("eval: note: column 'x' had no missing values in training; 7 missing values were imputed with "
                      "the training fill value", proc.stderr)
        self.assertNotIn("column 'z' had no missing", proc.stderr)
        scored = run("score", model, new_data, "--out", self.path("s.h5"), "--device", "cpu")
        self.assertIn("column 'x' had no missing values in training; 7 missing values were imputed", scored.stderr)
        result = json.loads(run("eval", model, new_data, "--json", "--device", "cpu").stdout)
        self.assertEqual(result["imputed"], {"x": 7, "z": int(new.z.isna().sum())})

    def test_missing_categories_where_training_had_none_are_noted_and_counted(self):
        # Review: `lathe score` noted and counted missing values of a categorical column that had
        # none in training (scored with its missing-value slot); `lathe eval` said nothing.
        rng = np.random.default_rng(12)
        df = pd.DataFrame({"x": rng.normal(size=400), "c": rng.choice(["a", "b"], 400),
                           "d": rng.choice(["u", "v"], 400)})
        df["y"] = (df.x + (df.c == "a") + 0.3 * rng.normal(size=400) > 0.5).astype(int)
        df.loc[::10, "d"] = None  # missing in training too: counted, not noted
        data = import_frame(df, self.dir, "train.h5")
        model = self.path("m.h5")
        run("train", data, "--label", "y", "--task", "binary", "--epochs", "2", "--out", model, "--device", "cpu",
            "--quiet")
        new = df.copy()
        new.loc[:4, "c"] = None
        new_data = import_frame(new, self.dir, "new.h5")
        note = "column 'c' had no missing values in training; 5 missing values were scored with its missing-value slot"
        proc = run("eval", model, new_data, "--device", "cpu")
        self.assertIn("eval: note: " + note, proc.stderr)
        self.assertNotIn("column 'd' had no missing", proc.stderr)
        self.assertIn(note, run("score", model, new_data, "--out", self.path("s.h5"), "--device", "cpu").stderr)
        result = json.loads(run("eval", model, new_data, "--json", "--device", "cpu").stdout)
        self.assertEqual(result["missing_categories"], {"c": 5, "d": int(new.d.isna().sum())})
        self.assertEqual(result["imputed"], {})


class TextTableWidthTest(TempDirTest):
    """Text tables pad names and labels by terminal cells, not bytes: a CJK name (3 bytes, 2 cells a
    character) or one with a combining mark keeps the columns after it in line."""

    @classmethod
    def setUpClass(cls):
        rng = np.random.default_rng(5)
        rows = 300
        x = rng.normal(size=rows)
        df = pd.DataFrame({
            "年齢": x,
            "Cafe\u0301": rng.normal(size=rows),  # e and a combining acute: 5 cells, 6 bytes
            "x": rng.normal(size=rows),
            "地域": rng.choice(["東京都", "大阪", "Osaka"], size=rows),
            "種類": np.where(x > 0.5, "はい", np.where(x < -0.5, "いいえ", "x")),
        })
        cls.shared_dir = tempfile.mkdtemp(prefix="lathe-width-")
        cls.data = import_frame(df, cls.shared_dir, "d", "--categorical", "地域,種類")
        cls.model = os.path.join(cls.shared_dir, "m.h5")
        run("train", cls.data, "--label", "種類", "--task", "multiclass", "--epochs", "3", "--out", cls.model,
            "--device", "cpu", "--quiet")

    def assertInLine(self, lines, token_pattern, left_aligned=False):
        """Each line's first match of token_pattern ends (starts, for a left-aligned column) at the same
        terminal cell."""
        def cell(line):
            m = re.search(token_pattern, line)
            return cells(line[:m.start() if left_aligned else m.end()])
        at = {line: cell(line) for line in lines}
        self.assertEqual(len(set(at.values())), 1, "\n".join(f"{c:3d} {line}" for line, c in at.items()))

    def test_inspect_aligns_names_and_labels(self):
        text = run("inspect", self.data, "--device", "cpu").stdout
        lines = text.splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("name"))
        table = lines[start:start + 6]
        self.assertEqual([line.split()[0] for line in table[1:]], ["年齢", "Cafe\u0301", "x", "地域", "種類"])
        self.assertInLine(table, r"\b(type|numeric|categorical)\b", left_aligned=True)
        self.assertInLine(table, r"\b(dtype|float64|int32|uint8|int8|int16)\b", left_aligned=True)
        self.assertInLine(table, r"\b(missing|0)\b")
        first = lines.index(next(line for line in lines if line.startswith("  地域:")))
        labels = lines[first + 1:first + 4]
        self.assertEqual(sorted(line.split()[0] for line in labels), ["Osaka", "大阪", "東京都"])
        self.assertInLine(labels, r"%$")

    def test_drift_aligns_feature_names(self):
        text = run("drift", self.model, self.data, "--device", "cpu", check=False).stdout
        lines = text.splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("feature"))
        table = lines[start:start + 5]
        self.assertEqual([line.split()[0] for line in table[1:]], ["年齢", "Cafe\u0301", "x", "地域"])
        self.assertInLine(table, r"\b(type|numeric|categorical)\b")
        self.assertInLine(table, r"\b(status|ok|warn|alert)\b")

    def test_eval_aligns_class_labels_of_the_confusion_matrix(self):
        text = run("eval", self.model, self.data, "--device", "cpu").stdout
        lines = text.splitlines()
        start = lines.index("  confusion (rows: true class, columns: predicted)")
        header, matrix = lines[start + 1], lines[start + 2:start + 5]
        self.assertEqual(sorted(line.split()[0] for line in matrix), ["x", "いいえ", "はい"])
        self.assertInLine(matrix, r"\S(?= +\d+ +\d+ +\d+$)")  # the label's end
        # The predicted classes head their columns, in the rows' order, each column right-aligned
        # under its label's last cell.
        self.assertEqual(header.split(), [line.split()[0] for line in matrix])
        def ends(line, skip):  # the terminal cell where each token after the first `skip` ends
            return [cells(line[:m.end()]) for m in re.finditer(r"\S+", line)][skip:]
        for line in matrix:
            self.assertEqual(ends(line, 1), ends(header, 0), "\n".join([header, *matrix]))


class OneRowRegressionTest(TempDirTest):
    """r2 of one row is undefined (NaN), as scikit-learn's r2_score ("not well-defined with less than
    two samples"), not the 1 or 0 of a constant label: null in `lathe eval --json`, no drop in
    `lathe drift`, and when it is a run's --metric on a one-row --valid file, every epoch runs."""

    def test_r2_of_one_row_is_undefined_everywhere(self):
        synth = self.path("d.h5")
        run("synth", "--task", "regression", "--rows", "400", "--features", "3", "--out", synth, "--quiet")
        train, one = self.path("train.h5"), self.path("one.h5")
        with h5py.File(synth, "r") as f:
            for path, rows in ((train, slice(0, 399)), (one, slice(399, 400))):
                with h5py.File(path, "w") as g:
                    for k, v in f.attrs.items():
                        if k != "lathe_synth_truth":
                            g.attrs[k] = v
                    for name in f:
                        g.create_dataset(name, data=f[name][rows])
        model = self.path("m.h5")
        run("train", train, "--label", "target", "--task", "regression", "--metric", "r2", "--epochs", "3",
            "--out", model, "--device", "cpu", "--quiet")
        ev = json.loads(run("eval", model, one, "--json", "--device", "cpu").stdout)
        self.assertIsNone(ev["r2"], ev)
        self.assertGreater(ev["rmse"], 0)
        self.assertIsInstance(ev["training_valid"]["r2"], float)

        proc = run("drift", model, one, "--json", "--device", "cpu", check=False)
        report = json.loads(proc.stdout)
        self.assertEqual(report["primary_metric"], "r2")
        self.assertEqual(report["metrics"], [])
        self.assertIsNone(report["metric_drop"])
        self.assertIn(f"metrics not compared: r2, the model's metric, is undefined on {one}: it has a single row "
                      "(r2 needs two or more); undefined is no drop", "\n".join(report["notes"]))

        # A one-row --valid file: r2 is undefined at every epoch; every epoch runs, the last is kept,
        # and the model stores r2 as null.
        one_valid = self.path("m_one_valid.h5")
        proc = run("train", train, "--label", "target", "--task", "regression", "--metric", "r2", "--epochs", "3",
                   "--patience", "1", "--valid", one, "--out", one_valid, "--device", "cpu")
        summary = json.loads(proc.stdout)
        self.assertEqual(summary["epochs_run"], 3, summary)
        self.assertEqual(summary["best_epoch"], 3, summary)
        self.assertIsNone(summary["valid"]["r2"], summary)
        self.assertIn("the validation metric r2 is undefined on the validation rows", proc.stderr)
        with h5py.File(one_valid, "r") as f:
            self.assertIsNone(json.loads(f.attrs["metrics"])["valid"]["r2"])
        # Drift against it on two or more rows: r2 stored as null is no drop.
        report = json.loads(run("drift", one_valid, train, "--json", "--device", "cpu", check=False).stdout)
        self.assertNotIn("r2", [m["name"] for m in report["metrics"]])
        self.assertTrue(any("undefined on the model's validation rows (it stores null: as when they were a single "
                            "row)" in n for n in report["notes"]), report["notes"])


class InspectJsonOfManyLabelsTest(TempDirTest):
    def test_the_labels_are_written_one_at_a_time(self):
        # A column of 500,000 distinct ids: `inspect --json` built the whole document (every label
        # with its count) and copied it twice before writing it, 494 MB resident; it writes each
        # column's labels one at a time now (57 MB), the same bytes.
        rows = 500000
        path = self.path("ids.h5")
        with h5py.File(path, "w") as f:
            f.create_dataset("id", data=np.array(["user%07d" % i for i in range(rows)], dtype=object),
                             dtype=h5py.string_dtype())
            f.create_dataset("x", data=np.arange(rows, dtype=np.float32))
        measure = ("import resource, subprocess, sys; "
                   "out = subprocess.run(sys.argv[2:], check=True, capture_output=True, text=True).stdout; "
                   "open(sys.argv[1], 'w').write(out); "
                   "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        proc = subprocess.run([sys.executable, "-c", measure, path + ".json", LATHE, "inspect", path, "--json", "--head",
                               "2"],
                              capture_output=True, text=True, timeout=600)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        peak_mb = int(proc.stdout.split()[-1]) / 1024
        self.assertLess(peak_mb, 200, f"peak {peak_mb:.0f} MB")
        with open(path + ".json") as f:
            doc = json.load(f)
        self.assertEqual(list(doc), ["columns", "device", "file", "layout", "rows", "storage", "head"])
        ids = next(c for c in doc["columns"] if c["name"] == "id")
        self.assertEqual(ids["categories"], rows)
        self.assertEqual(len(ids["category_counts"]), rows)
        self.assertEqual(ids["category_counts"][0], {"count": 1, "label": "user0000000"})
        self.assertEqual(ids["category_counts"][-1], {"count": 1, "label": "user0499999"})
        self.assertEqual(doc["head"][1]["id"], "user0000001")


class WideImportTest(TempDirTest):
    def peak_rss_mb_of_import(self, csv, out, *options):
        """The peak RSS of `lathe import csv out OPTIONS` alone: measured in a child Python whose only
        child is lathe."""
        measure = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
                   "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        proc = subprocess.run([sys.executable, "-c", measure, LATHE, "import", csv, out, "--quiet", *options],
                              capture_output=True, text=True, timeout=600)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return int(proc.stdout.split()[-1]) / 1024

    def test_a_short_wide_tables_datasets_are_not_all_held_open(self):
        # 20 rows x 10,000 numeric columns: every column's HDF5 dataset was held open for the whole
        # write (some 20 KB each: its chunk cache, B-tree, property lists), with compression or
        # without, and each chunk index node had room for 64 chunks (2 KB in the file). Measured
        # (/usr/bin/time, two runs): 272,644 and 280,980 KB and a 26.5 MB file (20x the CSV)
        # before, 270,628 and 266,480 KB with --compression 0; 95,340 and 91,504 KB and a 6.7 MB
        # file (5x) after, 86,288 and 90,680 KB with --compression 0.
        rows, columns = 20, 10000
        values = np.random.default_rng(7).normal(size=(rows, columns)).round(3)
        csv = self.path("wide.csv")
        pd.DataFrame(values, columns=[f"c{i}" for i in range(columns)]).to_csv(csv, index=False)
        for compression in ("4", "0"):
            with self.subTest(compression=compression):
                out = self.path(f"wide{compression}.h5")
                peak_mb = self.peak_rss_mb_of_import(csv, out, "--compression", compression)
                self.assertLess(peak_mb, 160, f"peak RSS {peak_mb:.0f} MB")
                self.assertLess(os.path.getsize(out), 8 * os.path.getsize(csv))
                with h5py.File(out) as f:
                    self.assertEqual(len(f.keys()), columns)
                    for i in (0, 1234, columns - 1):
                        np.testing.assert_array_equal(f[f"c{i}"][:], values[:, i])

    def test_a_short_wide_tables_blocks_hold_its_rows_only(self):
        # 20 rows x 10,000 numeric columns: the import's blocks had room for 3,355 rows a column
        # whatever the table's rows (256 MB of 8-byte values, all touched); they hold its 20 now.
        # Peak RSS: 533 MB before, 273 MB after (the rest: HDF5's open datasets, some 20 KB each,
        # closed between writes since: see the test above).
        rows, columns = 20, 10000
        values = np.random.default_rng(7).normal(size=(rows, columns)).round(3)
        csv, out = self.path("wide.csv"), self.path("wide.h5")
        pd.DataFrame(values, columns=[f"c{i}" for i in range(columns)]).to_csv(csv, index=False)
        # The peak of the import alone: measured in a child Python whose only child is lathe.
        measure = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
                   "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        proc = subprocess.run([sys.executable, "-c", measure, LATHE, "import", csv, out, "--quiet"],
                              capture_output=True, text=True, timeout=600)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        peak_mb = int(proc.stdout.split()[-1]) / 1024
        self.assertLess(peak_mb, 400, f"peak RSS {peak_mb:.0f} MB")
        with h5py.File(out) as f:
            self.assertEqual(len(f.keys()), columns)
            for i in (0, 1234, columns - 1):
                np.testing.assert_array_equal(f[f"c{i}"][:], values[:, i])


if __name__ == "__main__":
    unittest.main()


class OpenMpWaitTest(unittest.TestCase):
    """`lathe` bounds how long its OpenMP threads spin (GOMP_SPINCOUNT, set before libgomp starts by
    running itself again) unless the user chose: `lathe info` says which holds."""

    def info(self, **env_vars):
        env = {k: v for k, v in os.environ.items()
               if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "LATHE_SET_GOMP_SPINCOUNT")}
        env.update(env_vars)
        proc = subprocess.run([LATHE, "info", "--json"], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout)["openmp_wait"]

    def test_spinning_is_bounded_unless_the_user_chose(self):
        self.assertEqual(self.info(), "GOMP_SPINCOUNT=10000 (set by lathe)")
        self.assertEqual(self.info(OMP_WAIT_POLICY="active"), "OMP_WAIT_POLICY=active")
        self.assertEqual(self.info(GOMP_SPINCOUNT="300000"), "GOMP_SPINCOUNT=300000")

    def test_the_run_again_keeps_the_arguments_and_standard_input(self):
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
        with tempfile.TemporaryDirectory(prefix="lathe-omp-") as d:
            csv = os.path.join(d, "a b.csv")
            with open(csv, "w") as f:
                f.write("x,y\n1,2\n3,4\n")
            out = os.path.join(d, "out é.h5")
            proc = subprocess.run([LATHE, "import", csv, out, "--quiet"], capture_output=True, text=True, env=env,
                                  timeout=60)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            with h5py.File(out) as f:
                self.assertEqual(list(f["x"][()]), [1, 3])
