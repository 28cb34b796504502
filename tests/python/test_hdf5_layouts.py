"""HDF5 files as users have them: pandas' format="table" (blocks and data columns, strings,
categoricals), h5py structured arrays (compound datasets, array fields, bools, variable-length
strings), and string columns in the columnar layout. The oracle is the same frame written as CSV and
imported with `lathe import`: a model trained on the import scores every other file of the same rows
to the same predictions, and `lathe inspect --json` gives the same column statistics."""
import json
import os
import shutil
import tempfile
import unittest

import h5py
import numpy as np
import pandas as pd

from lathe_run import attempt, checked, import_frame

ROWS = 70_000  # more than one 65536-row block


def make_frame(rows, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(rows)
    x[rng.random(rows) < 0.05] = np.nan
    city = rng.choice(["Zürich", "東京", "Lyon", "a b"], rows).astype(object)
    city[rng.random(rows) < 0.03] = None
    plan = pd.Categorical(rng.choice(["basic", "pro", "max"], rows))
    plan[rng.random(rows) < 0.02] = np.nan
    count = rng.integers(-50, 50, rows)
    ratio = rng.random(rows).astype(np.float32)
    logit = np.nan_to_num(x) + 0.02 * count - 1.0 * (city == "Lyon") + 0.8 * (plan == "pro")
    y = (logit + rng.logistic(size=rows) > 0).astype(np.int64)
    return pd.DataFrame({"x": x, "count": count, "ratio": ratio, "city": city, "plan": plan, "y": y})


def inspect(path, *flags):
    return json.loads(checked("inspect", path, "--json", *flags).stdout)


def scores(model, data, folder, name, *flags):
    out = os.path.join(folder, name + ".csv")
    checked("score", model, data, "--out", out, "--format", "csv", "--quiet", *flags)
    return pd.read_csv(out)


def column_stats(report):
    """Per column, what inspect says of it, category counts as a dict (label order is the file's)."""
    stats = {}
    for c in report["columns"]:
        c = dict(c)
        if "category_counts" in c:
            c["category_counts"] = {e["label"]: e["count"] for e in c["category_counts"]}
        for key in ("dtype", "dataset", "read_path"):
            c.pop(key, None)
        stats[c["name"]] = c
    return stats


class Hdf5LayoutsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lathe_layouts_")
        cls.frame = make_frame(ROWS)
        cls.imported = import_frame(cls.frame, cls.tmp, "imported")
        cls.model = os.path.join(cls.tmp, "m.h5")
        checked("train", cls.imported, "--label", "y", "--task", "binary", "--out", cls.model, "--epochs", "3",
                "--quiet")
        cls.reference = scores(cls.model, cls.imported, cls.tmp, "reference")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def assert_same_as_import(self, path, *flags):
        got = scores(self.model, path, self.tmp, os.path.basename(path) + "_scores", *flags)
        pd.testing.assert_frame_equal(got, self.reference, check_exact=True)
        mine = column_stats(inspect(path, *flags))
        oracle = column_stats(inspect(self.imported))
        self.assertEqual(mine.keys(), oracle.keys())
        for name in oracle:
            for key, value in oracle[name].items():
                if isinstance(value, float):
                    self.assertAlmostEqual(mine[name][key], value, places=4, msg=f"{name}.{key}")
                else:
                    self.assertEqual(mine[name][key], value, msg=f"{name}.{key}")

    def test_pandas_table_format_blocks(self):
        path = os.path.join(self.tmp, "table.h5")
        self.frame.to_hdf(path, key="df", format="table")
        report = inspect(path)
        self.assertEqual(report["layout"], "pandas table")
        types = {c["name"]: c["type"] for c in report["columns"]}
        self.assertEqual(types["city"], "categorical")
        self.assertEqual(types["plan"], "categorical")
        self.assertEqual([c["name"] for c in report["columns"]], list(self.frame.columns))
        self.assert_same_as_import(path)

    def test_inspect_head_shows_the_rows_as_pandas_reads_them(self):
        path = os.path.join(self.tmp, "table_head.h5")
        self.frame.to_hdf(path, key="df", format="table")
        report = inspect(path, "--head", "40")  # holds missing numbers, labels and categories
        expected = pd.read_hdf(path).head(40)
        self.assertEqual(len(report["head"]), 40)
        self.assertEqual(list(report["head"][0]), list(self.frame.columns))  # in the table's order
        self.assertTrue(expected.isna().any().any())
        for got, (_, row) in zip(report["head"], expected.iterrows()):
            for name, value in row.items():
                want = None if pd.isna(value) else value
                if isinstance(want, np.floating) and name == "ratio":
                    want = float(np.float32(want))  # float32 values, exactly
                self.assertEqual(got[name], want, name)
        text = checked("inspect", path, "--head", "3", "--quiet").stdout
        self.assertIn("first 3 rows:", text)
        self.assertEqual(len(text.split("first 3 rows:")[1].strip().splitlines()), 4)  # header and 3 rows
        self.assertEqual(attempt("inspect", path, "--head", "-1").returncode, 2)
        # The text shows what --json does: float64 values exactly, float32 ones as read, in plain
        # digits where they are not tiny or huge.
        exact = os.path.join(self.tmp, "exact_head.h5")
        with h5py.File(exact, "w") as f:
            f["t"] = np.array([1700000000.37, 1700000000.0, 123456.789012345, 1e-300])
            f["r"] = np.array([0.1, 1.0 / 3.0, 2.5e7, 7.0], dtype=np.float32)
        rows = checked("inspect", exact, "--head", "4", "--quiet").stdout.split("first 4 rows:")[1].split()
        self.assertEqual(rows[:2], ["r", "t"])  # h5py lists datasets by name
        self.assertEqual(rows[2:], ["0.1", "1700000000.37", "0.33333334", "1700000000", "25000000",
                                    "123456.789012345", "7", "1e-300"])

    def test_pandas_table_format_data_columns_and_a_chosen_key(self):
        path = os.path.join(self.tmp, "table_dc.h5")
        self.frame.to_hdf(path, key="train", format="table", data_columns=True)
        self.frame.head(10).to_hdf(path, key="other", format="table")
        proc = attempt("inspect", path)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("--group", proc.stderr)
        self.assert_same_as_import(path, "--group", "train")

    def test_pandas_table_training_gives_the_model_of_the_import(self):
        path = os.path.join(self.tmp, "table_train.h5")
        self.frame.to_hdf(path, key="df", format="table")
        model = os.path.join(self.tmp, "m_table.h5")
        checked("train", path, "--label", "y", "--task", "binary", "--out", model, "--epochs", "3", "--quiet")
        got = scores(model, self.imported, self.tmp, "from_table_model")
        pd.testing.assert_frame_equal(got, self.reference, check_exact=True)

    def test_h5py_structured_array_and_string_columns(self):
        f = self.frame
        text = h5py.string_dtype()
        record = np.dtype([("x", "<f8"), ("count", ">i4"), ("ratio", "<f4"), ("city", text),
                           ("plan", "S5"), ("y", "u1")])
        data = np.empty(len(f), dtype=record)
        data["x"], data["count"], data["ratio"], data["y"] = f.x, f["count"], f.ratio, f.y
        data["city"] = ["" if pd.isna(c) else c for c in f.city]
        data["plan"] = [p.encode() if isinstance(p, str) else b"" for p in f.plan.astype(object)]
        path = os.path.join(self.tmp, "struct.h5")
        with h5py.File(path, "w") as h:
            h.create_dataset("table", data=data, chunks=(4096,), compression="gzip")
        self.assertEqual(inspect(path)["layout"], "table")
        self.assert_same_as_import(path)

        columns = os.path.join(self.tmp, "columns.h5")
        with h5py.File(columns, "w") as h:
            for name in ("x", "count", "ratio", "y"):
                h[name] = f[name].to_numpy()
            h["city"] = np.array(data["city"], dtype=text)
            h.create_dataset("plan", data=data["plan"], chunks=(1000,))
        self.assertEqual(inspect(columns)["layout"], "columnar")
        self.assert_same_as_import(columns)

    def test_big_endian_fields_and_fixed_strings_of_records_read_directly(self):
        f = self.frame
        record = np.dtype([("x", ">f8"), ("count", ">i4"), ("ratio", ">f4"), ("city", "S8"), ("plan", "S5"),
                           ("y", ">i8")])
        data = np.empty(len(f), dtype=record)
        data["x"], data["count"], data["ratio"], data["y"] = f.x, f["count"], f.ratio, f.y
        data["city"] = [b"" if pd.isna(c) else c.encode() for c in f.city]
        data["plan"] = [p.encode() if isinstance(p, str) else b"" for p in f.plan.astype(object)]
        path = os.path.join(self.tmp, "struct_be.h5")
        with h5py.File(path, "w") as h:
            h.create_dataset("table", data=data, chunks=(4096,), compression="gzip", shuffle=True)
        self.assertEqual([s["read_path"] for s in inspect(path)["storage"]], ["raw chunks, parallel inflate"])
        self.assert_same_as_import(path)

    def test_array_and_big_endian_fields_give_h5pys_values(self):
        rng = np.random.default_rng(11)
        n = 5000
        record = np.dtype([("m", ">f4", (2, 3)), ("w", ">f8", (2,)), ("h", ">f2"), ("ok", "?"), ("tag", "S3", (2,)),
                           ("k", ">i2")])
        data = np.zeros(n, dtype=record)
        data["m"] = rng.standard_normal((n, 2, 3)).astype(np.float32)
        data["m"][rng.random((n, 2, 3)) < 0.01] = np.nan
        data["w"] = rng.standard_normal((n, 2)) * 1e30
        data["h"] = rng.standard_normal(n).astype(np.float16)
        data["ok"] = rng.random(n) < 0.3
        data["tag"] = rng.choice([b"ab", b"c", b"", b"xyz"], (n, 2))
        data["k"] = rng.integers(-30000, 30000, n)
        storages = {"contiguous": ({}, "pread (contiguous)"),
                    "chunked": ({"chunks": (777,)}, "raw chunks"),  # a partial chunk at the end
                    "deflated": ({"chunks": (1000,), "compression": "gzip", "shuffle": True},
                                 "raw chunks, parallel inflate")}
        for name, (options, read_path) in storages.items():
            path = os.path.join(self.tmp, f"arrays_be_{name}.h5")
            with h5py.File(path, "w") as h:
                h.create_dataset("t", data=data, **options)
            report = inspect(path, "--head", str(n))
            self.assertEqual([s["read_path"] for s in report["storage"]], [read_path], name)
            names = [f"m_{i}" for i in range(6)] + ["w_0", "w_1", "h", "ok", "tag_0", "tag_1", "k"]
            self.assertEqual([c["name"] for c in report["columns"]], names)
            m = data["m"].reshape(n, 6)
            for r, row in enumerate(report["head"]):
                for i in range(6):
                    want = None if np.isnan(m[r, i]) else float(m[r, i])
                    self.assertEqual(row.get(f"m_{i}"), want, f"{name} row {r} m_{i}")
                self.assertEqual(row["h"], float(data["h"][r]), f"{name} row {r}")
                self.assertEqual(row["ok"], float(data["ok"][r]), f"{name} row {r}")
                for i in range(2):
                    tag = data["tag"][r, i].decode()
                    self.assertEqual(row.get(f"tag_{i}"), tag or None, f"{name} row {r} tag_{i}")
            columns = {c["name"]: c for c in report["columns"]}
            for i in range(2):  # float64 elements become float32 (the statistics see those)
                w = data["w"][:, i].astype(np.float32)
                self.assertEqual(columns[f"w_{i}"]["min"], float(w.min()), name)
                self.assertEqual(columns[f"w_{i}"]["max"], float(w.max()), name)
            self.assertEqual(columns["k"]["min"], float(data["k"].min()), name)
            self.assertEqual(columns["k"]["max"], float(data["k"].max()), name)

    def test_array_fields_and_bools_of_a_structured_array(self):
        record = np.dtype([("v", "<f4", (3,)), ("ok", "?"), ("tag", "S2")])
        data = np.zeros(5, dtype=record)
        data["v"] = np.arange(15, dtype=np.float32).reshape(5, 3)
        data["ok"] = [True, False, True, True, False]
        data["tag"] = [b"a", b"b", b"", b"a", b"b"]
        path = os.path.join(self.tmp, "arrays.h5")
        with h5py.File(path, "w") as h:
            h["records"] = data
        report = inspect(path)
        columns = {c["name"]: c for c in report["columns"]}
        self.assertEqual(list(columns), ["v_0", "v_1", "v_2", "ok", "tag"])
        self.assertEqual(columns["v_1"]["mean"], 7.0)
        self.assertEqual(columns["ok"]["dtype"], "bool")
        self.assertEqual(columns["ok"]["mean"], 0.6)
        self.assertEqual(columns["tag"]["missing"], 1)
        self.assertEqual({e["label"]: e["count"] for e in columns["tag"]["category_counts"]}, {"a": 2, "b": 2})

    def test_a_matrix_whose_label_is_strings(self):
        rng = np.random.default_rng(3)
        features = rng.standard_normal((3000, 4)).astype(np.float32)
        dog = features[:, 0] + features[:, 1] + rng.logistic(size=3000) > 0
        metrics = {}
        for name, label in (("strings", np.where(dog, b"dog", b"cat")), ("codes", dog.astype(np.int8)),
                            ("column", np.where(dog, "dog", "cat").astype(object).reshape(-1, 1))):
            path = os.path.join(self.tmp, f"xy_{name}.h5")
            with h5py.File(path, "w") as h:
                h["X"] = features
                h.create_dataset("y", data=label, dtype=h5py.string_dtype() if label.dtype == object else None)
            model = os.path.join(self.tmp, f"m_xy_{name}.h5")
            checked("train", path, "--label", "y", "--task", "binary", "--out", model, "--quiet")
            metrics[name] = json.loads(checked("eval", model, path, "--json", "--quiet").stdout)
        self.assertEqual(inspect(os.path.join(self.tmp, "xy_strings.h5"))["columns"][-1]["type"], "categorical")
        # "dog" is the positive class (the second label in sorted order), as the code 1 is.
        for key in ("auc", "logloss", "accuracy"):
            self.assertEqual(metrics["strings"][key], metrics["codes"][key], key)
            self.assertEqual(metrics["column"][key], metrics["codes"][key], key)  # n x 1, variable length

    def test_a_matrix_whose_label_weight_and_id_are_other_datasets(self):
        # X with `target`, `w` and `key` beside it: --label, --weight and --id name them, in train,
        # eval, score and drift. They were not read (only a label named `y` was).
        rng = np.random.default_rng(4)
        features = rng.standard_normal((3000, 3)).astype(np.float32)
        target = (features[:, 0] - features[:, 2] + rng.logistic(size=3000) > 0).astype(np.int32)
        weight = rng.uniform(0.5, 2.0, 3000).astype(np.float32)
        path = os.path.join(self.tmp, "x_target.h5")
        with h5py.File(path, "w") as h:
            h["X"] = features
            h["target"] = target
            h["w"] = weight
            h["key"] = np.arange(3000, dtype=np.int64) + 10**12
        model = os.path.join(self.tmp, "m_x_target.h5")
        summary = json.loads(checked("train", path, "--label", "target", "--weight", "w", "--task", "binary",
                                     "--out", model, "--quiet").stdout)
        self.assertGreater(summary["valid"]["auc"], 0.75)
        evaluated = json.loads(checked("eval", model, path, "--json", "--quiet").stdout)
        self.assertGreater(evaluated["auc"], 0.75)
        scored = scores(model, path, self.tmp, "x_target", "--id", "key")
        self.assertEqual(list(scored["key"][:3]), [10**12, 10**12 + 1, 10**12 + 2])
        drift = attempt("drift", model, path, "--json")
        self.assertEqual(drift.returncode, 0, drift.stderr)
        # The features are the matrix's columns only.
        self.assertEqual([c["name"] for c in inspect(path)["columns"]], ["f0", "f1", "f2"])

    def test_ids_and_passthrough_columns_stay_exact_in_every_layout(self):
        frame = pd.DataFrame({"id": [10**12, 10**12 + 1, 10**12 + 2],
                              "u": np.array([2**63 + 7, 2**63 + 8, 5], dtype=np.uint64),
                              "f": [156057767.25, 1.5, 99999999.8467], "x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 0.5]})
        def records(path):
            with h5py.File(path, "w") as h:
                h["t"] = frame.to_records(index=False)

        writers = {
            "table": lambda path: frame.to_hdf(path, key="df", format="table"),
            "fixed": lambda path: frame.to_hdf(path, key="df", format="fixed"),
            "records": records,
        }
        for name, write in writers.items():
            path = os.path.join(self.tmp, f"ids_{name}.h5")
            write(path)
            model = os.path.join(self.tmp, f"ids_{name}_m.h5")
            checked("train", path, "--label", "y", "--task", "regression", "--drop", "id,u,f", "--out", model,
                    "--valid-fraction", "0", "--quiet")
            for column in ("id", "u", "f"):
                out = os.path.join(self.tmp, f"ids_{name}_{column}.csv")
                checked("score", model, path, "--out", out, "--id", column, "--quiet")
                got = pd.read_csv(out, dtype={column: str})[column].tolist()
                self.assertEqual(got, [str(v) for v in frame[column]], f"{name} --id {column}")
            prepared = os.path.join(self.tmp, f"ids_{name}_p.h5")
            checked("prepare", path, prepared, "--label", "y", "--drop", "id,u,f", "--quiet")
            with h5py.File(prepared) as h:
                for column in ("id", "u", "f", "y"):
                    self.assertEqual(h[column].dtype, frame[column].dtype, f"{name} prepare {column}")
                    self.assertEqual(h[column][:].tolist(), frame[column].tolist(), f"{name} prepare {column}")

    def test_string_ids_pass_through_as_text_in_every_layout(self):
        # An id of strings the model does not take is read block by block as text: never turned
        # into category codes (which float32 rounds past 2^24, giving a row its neighbour's id) nor
        # collected into labels when the file is opened. It comes out as the strings it was, "" for
        # a missing one, in CSV and as a string dataset in HDF5, whatever the layout.
        rows = 70_000  # more than one block
        rng = np.random.default_rng(5)
        ids = np.array([f"c-{i:07d}" for i in range(rows)], dtype=object)
        ids[3] = "Zürich,\"quoted\""
        ids[7] = ""
        frame = pd.DataFrame({"id": ids, "town": rng.choice(["a", "b", "c"], rows).astype(object),
                              "x": rng.standard_normal(rows)})
        frame["y"] = (frame["x"] + (frame["town"] == "b") + rng.logistic(size=rows) > 0).astype(np.int64)
        fixed = [("id", "S32"), ("town", "S4"), ("x", "<f8"), ("y", "<i8")]
        vlen = [("id", h5py.string_dtype()), ("town", "S4"), ("x", "<f8"), ("y", "<i8")]

        def columnar(string_type):
            def write(path):
                with h5py.File(path, "w") as h:
                    for name in ("id", "town"):
                        values = frame[name].tolist()
                        h.create_dataset(name, data=[v.encode() for v in values] if string_type == "S" else values,
                                         dtype=h5py.string_dtype() if string_type == "vlen" else "S32", chunks=(4096,))
                    h["x"], h["y"] = frame["x"].to_numpy(), frame["y"].to_numpy()
            return write

        def records(dtype):
            def write(path):
                data = np.zeros(rows, dtype=dtype)
                for name in ("id", "town"):
                    data[name] = [v.encode() for v in frame[name]] if dtype[0][1] == "S32" or name == "town" \
                        else frame[name].tolist()
                data["x"], data["y"] = frame["x"], frame["y"]
                with h5py.File(path, "w") as h:
                    h["t"] = data
            return write

        writers = {
            "columnar vlen": columnar("vlen"), "columnar fixed": columnar("S"),
            "records fixed": records(fixed), "records vlen": records(vlen),
            # pandas keeps both string columns in one field of the table (a block): the id shares it
            # with the model's town; as a data column it has a field of its own.
            "pandas table": lambda path: frame.to_hdf(path, key="df", format="table"),
            "pandas table, data columns": lambda path: frame.to_hdf(path, key="df", format="table",
                                                                    data_columns=["id"]),
        }
        expected = [v if v else None for v in ids]
        reference = None
        for name, write in writers.items():
            path = os.path.join(self.tmp, "text_ids_" + name.replace(" ", "_").replace(",", "") + ".h5")
            write(path)
            model = os.path.join(self.tmp, "text_ids_m.h5")
            checked("train", path, "--label", "y", "--task", "binary", "--drop", "id", "--out", model,
                    "--valid-fraction", "0", "--epochs", "2", "--quiet")
            csv_out = os.path.join(self.tmp, "text_ids.csv")
            h5_out = os.path.join(self.tmp, "text_ids_out.h5")
            checked("score", model, path, "--out", csv_out, "--id", "id", "--quiet")
            checked("score", model, path, "--out", h5_out, "--id", "id", "--quiet")
            got = pd.read_csv(csv_out, dtype={"id": str}, keep_default_na=False)
            self.assertEqual([v if v else None for v in got["id"]], expected, name)
            with h5py.File(h5_out) as h:
                self.assertEqual(h["id"].dtype.kind, "O", name)  # a string dataset, not codes
                self.assertNotIn("categories", h["id"].attrs, name)
                self.assertEqual([v if v else None for v in h["id"].asstr()[:]], expected, name)
                np.testing.assert_allclose(h["probability"][:], got["probability"], rtol=1e-6, err_msg=name)
            # The same model scores the rows alike in every layout.
            if reference is None:
                reference = got["probability"].to_numpy()
            np.testing.assert_allclose(got["probability"], reference, rtol=1e-6, err_msg=name)
            # `lathe prepare --drop id` passes the id through as text too, and scoring the prepared
            # rows with a model trained on them passes it on.
            prepared = os.path.join(self.tmp, "text_ids_p.h5")
            checked("prepare", path, prepared, "--label", "y", "--drop", "id", "--quiet")
            with h5py.File(prepared) as h:
                self.assertEqual(h["id"].dtype.kind, "O", name)
                self.assertEqual([v if v else None for v in h["id"].asstr()[:]], expected, name)
            prepared_model = os.path.join(self.tmp, "text_ids_pm.h5")
            checked("train", prepared, "--label", "y", "--task", "binary", "--out", prepared_model,
                    "--valid-fraction", "0", "--epochs", "1", "--quiet")
            checked("score", prepared_model, prepared, "--out", csv_out, "--id", "id", "--quiet")
            got = pd.read_csv(csv_out, dtype={"id": str}, keep_default_na=False)
            self.assertEqual([v if v else None for v in got["id"]], expected, name)

    def test_a_text_id_that_is_not_utf8_is_named_with_its_row_and_never_read_when_dropped(self):
        ids = np.array([b"a1", b"b2", b"c\xff3", b"d4"] * 50, dtype="S8")
        x = np.linspace(0.0, 1.0, 200)
        path = os.path.join(self.tmp, "bad_text_id.h5")
        with h5py.File(path, "w") as h:
            h["id"], h["x"], h["y"] = ids, x, (x > 0.5).astype(np.int64)
        model = os.path.join(self.tmp, "bad_text_id_m.h5")
        # Dropped, the id is never read: its bytes do not matter.
        checked("train", path, "--label", "y", "--task", "binary", "--drop", "id", "--out", model, "--quiet")
        out = os.path.join(self.tmp, "bad_text_id.csv")
        proc = attempt("score", model, path, "--out", out, "--id", "id", "--quiet")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("column 'id', row 3", proc.stderr)
        self.assertIn("not UTF-8", proc.stderr)
        self.assertFalse(os.path.exists(out))

    def test_an_id_field_whose_name_holds_a_slash_scores_to_hdf5(self):
        data = np.zeros(50, dtype=[("ref/id", "<i8"), ("x", "<f4"), ("y", "<f4")])
        data["ref/id"] = np.arange(50) + 10**15
        data["x"] = np.linspace(0, 1, 50)
        data["y"] = 2 * data["x"]
        path = os.path.join(self.tmp, "slash_id.h5")
        with h5py.File(path, "w") as h:
            h["t"] = data
        model = os.path.join(self.tmp, "slash_id_m.h5")
        checked("train", path, "--label", "y", "--task", "regression", "--drop", "ref/id", "--out", model, "--quiet")
        out = os.path.join(self.tmp, "slash_id_scores.h5")
        checked("score", model, path, "--out", out, "--id", "ref/id", "--quiet")
        with h5py.File(out) as h:
            self.assertEqual(h["ref%2Fid"][:].tolist(), data["ref/id"].tolist())

    def test_multiindex_levels_are_the_index_and_two_dimensional_fields_are_columns(self):
        frame = pd.DataFrame({"x": np.arange(6.0)})
        frame.index = pd.MultiIndex.from_arrays([np.arange(6), np.arange(6) % 3], names=["row_id", "g"])
        path = os.path.join(self.tmp, "multiindex.h5")
        frame.to_hdf(path, key="df", format="table")
        self.assertEqual([c["name"] for c in inspect(path)["columns"]], list(pd.read_hdf(path).columns))

        data = np.zeros(4, dtype=[("m", "<f4", (2, 3)), ("k", "<i2")])
        data["m"] = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
        path = os.path.join(self.tmp, "matrix_field.h5")
        with h5py.File(path, "w") as h:
            h["t"] = data
        columns = {c["name"]: c for c in inspect(path)["columns"]}
        self.assertEqual(list(columns), [f"m_{i}" for i in range(6)] + ["k"])
        for i in range(6):  # element i of the 2 x 3 field, in row-major order
            self.assertEqual(columns[f"m_{i}"]["mean"], float(data["m"].reshape(4, 6)[:, i].mean()))

    def test_what_cannot_be_read_is_named(self):
        dates = self.frame.head(100).assign(when=pd.date_range("2026-01-01", periods=100, freq="h"))
        path = os.path.join(self.tmp, "dates.h5")
        dates.to_hdf(path, key="df", format="table")
        proc = attempt("inspect", path)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("when", proc.stderr)
        self.assertIn("dates or times", proc.stderr)

        nested = np.zeros(3, dtype=[("a", "<f8"), ("inner", [("p", "<i4"), ("q", "<i4")])])
        path = os.path.join(self.tmp, "nested.h5")
        with h5py.File(path, "w") as h:
            h["t"] = nested
        proc = attempt("inspect", path)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("'inner'", proc.stderr)

        two = os.path.join(self.tmp, "two.h5")
        with h5py.File(two, "w") as h:
            h["first"] = np.zeros(3, dtype=[("a", "<f8")])
            h["second"] = np.ones(4, dtype=[("b", "<f8")])
        proc = attempt("inspect", two)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("--group", proc.stderr)
        self.assertEqual(inspect(two, "--group", "second")["rows"], 4)

        nested = os.path.join(self.tmp, "nested_key.h5")
        self.frame.head(5).to_hdf(nested, key="runs/today", format="table")
        proc = attempt("inspect", nested)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("--group runs/today", proc.stderr)
        self.assertEqual(inspect(nested, "--group", "runs/today")["rows"], 5)

    def test_bytes_past_the_end_of_allocation_are_refused_as_hdf5_refuses_them(self):
        # A damaged superblock whose end of allocation (EOA) lies before a dataset's bytes: HDF5
        # refuses to read them, whatever the file's size. Lathe's direct reads (heap ids and
        # collections, contiguous data by pread) must not read them either.
        # With a userblock too: HDF5 then counts the EOA from the start of the file, the addresses
        # from the end of the userblock.
        for userblock in (0, 512):
            self.check_bytes_past_the_end_of_allocation(userblock)

    def check_bytes_past_the_end_of_allocation(self, userblock):
        path = os.path.join(self.tmp, f"eoa_{userblock}.h5")
        with h5py.File(path, "w", libver="earliest", userblock_size=userblock) as h:
            h["x"] = np.arange(1000, dtype=np.float32)
            h["y"] = (np.arange(1000) % 2).astype(np.int32)
            h["c"] = np.array([f"label{i % 7}" for i in range(1000)], dtype=h5py.string_dtype())
        with h5py.File(path, "r") as h:
            y_offset = h["y"].id.get_offset()  # from the start of the file
        pristine = bytearray(open(path, "rb").read())
        self.assertEqual(pristine[userblock + 8], 0, "superblock version 0: the EOA is at its byte 40")
        at = userblock + 40
        self.assertEqual(int.from_bytes(pristine[at:at + 8], "little"), len(pristine))
        heap = pristine.find(b"GCOL")
        self.assertGreater(heap, y_offset)
        # First only the end of the global heap lies past the EOA (by less than a userblock), then
        # the label column's numbers as well.
        for eoa, dataset in ((len(pristine) - 100, "'/c'"), (y_offset + 100, "'/y'")):
            damaged = bytearray(pristine)
            damaged[at:at + 8] = int(eoa).to_bytes(8, "little")
            broken = os.path.join(self.tmp, f"eoa_{userblock}_{eoa}.h5")
            with open(broken, "wb") as out:
                out.write(damaged)
            with self.assertRaises((OSError, KeyError)):  # h5py's newer HDF5 may refuse at the open
                with h5py.File(broken, "r") as h:
                    h["c"][:] if dataset == "'/c'" else h["y"][:]
            for command in (["inspect", broken], ["train", broken, "--label", "y", "--task", "binary", "--out",
                                                  os.path.join(self.tmp, "eoa_model.h5"), "--quiet"]):
                proc = attempt(*command)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertIn(broken, proc.stderr)
                self.assertIn("EOA", proc.stderr.upper())
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "eoa_model.h5")))


if __name__ == "__main__":
    unittest.main()
