"""`lathe export MODEL.h5 --onnx OUT.onnx` end to end.

Trains small models on the shared datasets (binary telco churn with categoricals and missing values,
regression diamonds, multiclass penguins; linear and factorization machines; numeric x numeric,
categorical x categorical and numeric x categorical crosses), exports each, runs the graph in
onnxruntime on the imported rows and compares with Lathe's own predictions (`lathe score`) and with
an independent numpy re-implementation of the model file (read with h5py): within the README's
bounds (1e-5 relative, plus 1e-7 absolute for a probability, vs `lathe score`; 1e-6 relative vs
numpy). A categorical cross is stored per slot pair, so the file does not grow with --hash-buckets.
Quantile bins (--bins, per column COL=N), alone and crossed (--cross COL#bins*other), are scored on
probe rows that reach every slot: values on each edge and the floats either side of it, missing
values, values far out and +-inf.
Also: the file passes onnx.checker (full check), IR version 8, opsets within what libonnx 1.12
checks, and a damaged, absent or unexportable model gives a non-zero exit naming it and no file.
"""
import json
import os
import shutil
import tempfile
import unittest

import h5py
import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd

from label_hashes import MISSING_LABEL_HASH, UNKNOWN_LABEL_HASH, cross_bucket, label_hash, mix64
from lathe_run import SHARED, run

# onnxruntime vs `lathe score` (the README's promise): 1e-5 relative for every output, plus 1e-7
# absolute for a probability. A regression prediction is target_mean + target_std * score, which
# cancels to near zero on some rows; Lathe (Model::predict_regression) sums the score and undoes the
# standardization in double and rounds once, as the graph does, so such a row keeps float's relative
# precision (no absolute floor). (With the score summed in float, diamonds' rows near zero differed
# by up to 3e-3 relative.) A linear classifier's score is summed in float by Lathe, as training
# does, and in double by the graph: the logit's absolute rounding error e shows as relative error ~e
# of a probability near 0 (QA: p = 1.78e-12 off by 3.2e-5 relative, a logit of -27 off by 3e-5),
# hence the absolute term. A factorization machine's classification score is summed in double by Lathe
# too (models/model_formulas.h: predicted_scores): its pairwise term 0.5 ((sum v x)^2 - sum (v x)^2)
# cancels where one value lies hundreds of standard deviations out, and summed in float it was off
# by up to 1e-2 relative on such rows (test_fm_*_with_values_far_out).
RTOL = 1e-5
PROBABILITY_ATOL = 1e-7
# onnxruntime vs the numpy reference: both sum in double and round the output to float once.
# onnxruntime's Sigmoid in double is off by up to ~1e-16 absolute near 0 (a logit of -30 gives
# 9.348e-14 for 9.358e-14, one below -37 gives 0), which a linear model shows on rows hundreds of
# standard deviations out (test_linear_binary_with_values_far_out), hence 2^-52 absolute for a
# probability. (Far below `lathe score`'s bound's 1e-7.)
RTOL_REFERENCE = 1e-6
REFERENCE_PROBABILITY_ATOL = 2.0**-52

# telco_churn's categorical columns, named on import where a few rows could leave a type open.
TELCO_CATEGORICAL = ["multiple_lines", "internet_service", "online_security", "online_backup", "device_protection",
                     "tech_support", "streaming_tv", "streaming_movies", "contract", "payment_method"]

# ---- An independent reference: the model file read with h5py, the formulas in numpy ----------


def attr_str(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def read_model(path):
    with h5py.File(path, "r") as f:
        a = f.attrs
        model = {
            "task": attr_str(a["task"]),
            "kind": attr_str(a["model_kind"]),
            "classes": [attr_str(c) for c in np.atleast_1d(a["classes"])] if "classes" in a else [],
            "target_mean": float(a["target_mean"]),
            "target_std": float(a["target_std"]),
            # Absent in files written before --target-transform: none.
            "target_transform": attr_str(a["target_transform"]) if "target_transform" in a else "none",
            "prep": json.loads(attr_str(a["preparation"])),
            "weights": f["weights"][()].astype(np.float64),
            "bias": f["bias"][()].astype(np.float64),
            "factors": f["factors"][()].astype(np.float64) if "factors" in f else None,
        }
    return model


def read_table(path):
    """The columns of a columnar file as Lathe reads them: numeric float32 (NaN missing),
    categorical labels as str ("" missing)."""
    cols = {}
    with h5py.File(path, "r") as f:
        names = [attr_str(n) for n in f.attrs["lathe_columns"]]
        for name in names:
            d = f[name]
            if "categories" in d.attrs:
                labels = np.array([attr_str(c) for c in d.attrs["categories"]] + [""], dtype=object)
                codes = d[()].astype(np.int64)
                cols[name] = labels[np.where(codes < 0, len(labels) - 1, codes)]
            else:
                cols[name] = d[()].astype(np.float32)
    return cols


def bin_label_hash(lo, hi):
    """kernels/prepare_formulas.h: bin_label_hash, the label hash a bin [lo, hi) crosses with: the
    two float32 edges' bits (-0 as 0) mixed."""
    bits = [int(np.array(np.float32(v) + np.float32(0.0), dtype=np.float32).view(np.uint32)) for v in (lo, hi)]
    return mix64(0x62696E6C6162656C ^ ((bits[0] << 32) | bits[1]))


def bin_hashes(edges):
    """The label hash of each bin of `edges` (the first open below, the last above), then the
    missing bin's: what a cross of the bins (--cross COL#bins*other) combines."""
    bounds = [-np.inf] + [float(e) for e in edges] + [np.inf]
    return [bin_label_hash(bounds[i], bounds[i + 1]) for i in range(len(edges) + 1)] + [MISSING_LABEL_HASH]


def bin_slots(edges, x):
    """kernels/prepare_formulas.h: bin_slot, in float32: the number of edges at or below x (a value
    on an edge is in the bin above, -inf in bin 0, +inf in the last), len(edges) + 1 when missing."""
    edges = np.asarray(edges, dtype=np.float32)
    x = np.asarray(x, dtype=np.float32)
    return np.where(np.isnan(x), len(edges) + 1, np.searchsorted(edges, x, side="right")).astype(np.int64)


def reference_predictions(model, cols):
    """kernels/prepare_formulas.h and models/model_formulas.h in numpy (scores in double)."""
    prep = model["prep"]
    n = len(next(iter(cols.values())))
    prepared, missing = [], []
    for e in prep["numeric"]:
        x = cols[e["name"]].astype(np.float64)
        nan = np.isnan(x)
        v = np.where(nan, float(np.float32(e["fill"] or 0.0)), x)
        if e["clip_lo"] is not None:
            v = np.maximum(v, float(np.float32(e["clip_lo"])))
        if e["clip_hi"] is not None:
            v = np.minimum(v, float(np.float32(e["clip_hi"])))
        prepared.append(((v - e["center"]) * e["inv_scale"]).astype(np.float32))
        missing.append(nan.astype(np.float32))
    dense = list(prepared) + [missing[i] for i in prep["indicators"]]
    dense += [prepared[i] * prepared[j] for i, j in prep["numeric_crosses"]]
    slots, hashes, widths = [], [], []
    for c in prep["categorical"]:
        assert not c["hashed"]
        vocab = {label: i for i, label in enumerate(c["vocabulary"])}
        k = len(vocab)
        slots.append(np.array([k if s == "" else vocab.get(s, k + 1) for s in cols[c["name"]]], dtype=np.int64))
        hashes.append([label_hash(s) for s in c["vocabulary"]] + [MISSING_LABEL_HASH, UNKNOWN_LABEL_HASH])
        widths.append(k + 2)
    D = len(dense)
    X = np.stack(dense, axis=1).astype(np.float64) if D else np.zeros((n, 0))
    W, b, V = model["weights"], model["bias"], model["factors"]
    O = W.shape[0]
    active = []  # (expanded index [n], value [n]) per sparse group
    offset = D
    for g in prep["sparse"]:
        if g["kind"] == "one_hot":
            active.append((offset + slots[g["a"]], np.ones(n)))
        elif g["kind"] == "categorical_cross":
            # A side is a categorical column, or (a_bins / b_bins) a binned numeric column's bins.
            sides = []
            for side in ("a", "b"):
                if g.get(side + "_bins", False):
                    e = prep["numeric"][g[side]]
                    sides.append((bin_hashes(e["bin_edges"]), bin_slots(e["bin_edges"], cols[e["name"]])))
                else:
                    sides.append((hashes[g[side]], slots[g[side]]))
            (ha, sa), (hb, sb) = sides
            table = np.array([[cross_bucket(x, y, prep["hash_buckets"]) for y in hb] for x in ha], dtype=np.int64)
            active.append((offset + table[sa, sb], np.ones(n)))
        elif g["kind"] == "bins":  # of the raw value, before imputation and clipping
            e = prep["numeric"][g["a"]]
            active.append((offset + bin_slots(e["bin_edges"], cols[e["name"]]), np.ones(n)))
        else:
            assert g["kind"] == "slope", g["kind"]
            active.append((offset + slots[g["b"]], prepared[g["a"]].astype(np.float64)))
        offset += g["slots"]
    assert offset == W.shape[1], (offset, W.shape)
    scores = X @ W[:, :D].T + b
    for idx, val in active:
        scores += W[:, idx].T * val[:, None]
    if model["kind"] == "fm":
        for o in range(O):
            terms = [X[:, i:i + 1] * V[o, i][None, :] for i in range(D)]
            terms += [V[o, idx] * val[:, None] for idx, val in active]
            t = np.stack(terms, axis=0)  # [active, n, K]
            # Each feature times the sum of those before it (fm_pairwise): no square to cancel.
            before = np.concatenate([np.zeros_like(t[:1]), np.cumsum(t, axis=0)[:-1]], axis=0)
            scores[:, o] += (t * before).sum(axis=(0, 2))
    task = model["task"]
    if task == "regression":
        fitted = scores[:, 0] * model["target_std"] + model["target_mean"]
        inverse = {"none": lambda v: v, "log": np.exp, "log1p": np.expm1}[model["target_transform"]]
        return {"prediction": inverse(fitted).astype(np.float32)}
    if task == "binary":
        with np.errstate(over="ignore"):  # exp(-s) = inf for s < -709: p = 0, as it should
            p = (1.0 / (1.0 + np.exp(-scores[:, 0]))).astype(np.float32)
        return {"probability": p, "predicted_class": np.array(model["classes"], dtype=object)[(p > 0.5).astype(int)]}
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    p = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return {"probabilities": p, "predicted_class": np.array(model["classes"], dtype=object)[p.argmax(axis=1)]}


# ---- The tests -------------------------------------------------------------------------------

class ExportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="lathe-export-")
        cls.data = {}
        for name in ["telco_churn", "diamonds", "penguins"]:
            out = os.path.join(cls.dir, name + ".h5")
            run("import", os.path.join(SHARED, name + ".csv"), out, "--quiet")
            cls.data[name] = out

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def train(self, data, out, *flags):
        model = self.path(out)
        epochs = [] if "--epochs" in flags else ["--epochs", "4"]
        run("train", self.data[data], "--out", model, "--device", "cpu", "--quiet", *epochs, *flags)
        return model

    def export(self, model, name):
        out = self.path(name)
        run("export", model, "--onnx", out)
        self.assertTrue(os.path.exists(out))
        return out

    def lathe_score(self, model, data, name):
        out = self.path(name)
        run("score", model, data, "--out", out, "--format", "csv", "--device", "cpu", "--quiet")
        return pd.read_csv(out, dtype={"predicted_class": str}, keep_default_na=False)

    def onnx_outputs(self, onnx_path, cols):
        session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        feeds = {}
        for i in session.get_inputs():
            v = cols[i.name]
            if i.type == "tensor(string)":
                feeds[i.name] = np.asarray(v, dtype=object).reshape(-1, 1)
            else:
                self.assertEqual(i.type, "tensor(float)", i.name)
                feeds[i.name] = np.asarray(v, dtype=np.float32).reshape(-1, 1)
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, feeds)))

    def assert_close(self, actual, expected, what, rtol=RTOL, atol=0.0):
        """|actual - expected| <= rtol * |expected| + atol, elementwise."""
        actual = np.asarray(actual, dtype=np.float64)
        expected = np.asarray(expected, dtype=np.float64)
        self.assertEqual(actual.shape, expected.shape, what)
        self.assertTrue(np.all(np.isfinite(actual)), what)
        excess = np.abs(actual - expected) / (rtol * np.abs(expected) + atol + 1e-300)
        worst = int(np.argmax(excess))
        self.assertLessEqual(excess.max(), 1.0,
                             f"{what}: error {abs(actual.flat[worst] - expected.flat[worst]):.3g} at {worst} is "
                             f"{excess.max():.3g} x the bound (rtol {rtol}, atol {atol}): "
                             f"{actual.flat[worst]} vs {expected.flat[worst]}")

    def assert_probabilities_close(self, actual, expected, what):
        """The README's bound for onnxruntime vs `lathe score` probabilities."""
        self.assert_close(actual, expected, what, atol=PROBABILITY_ATOL)

    def assert_classes(self, got, want, probability, what):
        """Predicted classes agree except where the probabilities tie within the tolerance."""
        got, want = np.asarray(got, dtype=object), np.asarray(want, dtype=object)
        differ = got != want
        if probability.ndim == 1:
            ambiguous = np.abs(probability - 0.5) <= RTOL
        else:
            top = np.sort(probability, axis=1)
            ambiguous = top[:, -1] - top[:, -2] <= RTOL
        self.assertFalse(np.any(differ & ~ambiguous), f"{what}: {int(differ.sum())} predicted classes differ")

    def check_model(self, data, model_name, *flags):
        """Trains, exports, checks the file and compares onnxruntime with lathe score and numpy."""
        model = self.train(data, model_name + ".h5", *flags)
        onnx_path = self.export(model, model_name + ".onnx")
        self.check_onnx_file(onnx_path)
        self.check_scores(model, onnx_path, self.data[data], model_name)
        return model, onnx_path

    def check_scores(self, model, onnx_path, data_path, model_name):
        """onnxruntime on the rows of `data_path` vs `lathe score` and the numpy reference."""
        cols = read_table(data_path)
        got = self.onnx_outputs(onnx_path, cols)
        info = read_model(model)
        reference = reference_predictions(info, cols)
        scored = self.lathe_score(model, data_path, model_name + "_" + os.path.basename(data_path) + ".csv")
        task, classes = info["task"], info["classes"]
        if task == "regression":
            self.assertEqual(set(got), {"prediction"})
            self.assert_close(got["prediction"], scored["prediction"], model_name + " vs lathe score")
            self.assert_close(got["prediction"], reference["prediction"], model_name + " vs numpy",
                              rtol=RTOL_REFERENCE)
        elif task == "binary":
            self.assertEqual(set(got), {"probability", "predicted_class"})
            self.assert_probabilities_close(got["probability"], scored["probability"], model_name + " vs lathe score")
            self.assert_close(got["probability"], reference["probability"], model_name + " vs numpy",
                              rtol=RTOL_REFERENCE, atol=REFERENCE_PROBABILITY_ATOL)
            self.assert_classes(got["predicted_class"], scored["predicted_class"], got["probability"], model_name)
            self.assert_classes(got["predicted_class"], reference["predicted_class"], got["probability"], model_name)
        else:
            self.assertEqual(set(got), {"probabilities", "predicted_class"})
            self.assertEqual(got["probabilities"].shape, (len(scored), len(classes)))
            lathe_p = scored[[f"probability_{c}" for c in classes]].to_numpy()
            self.assert_probabilities_close(got["probabilities"], lathe_p, model_name + " vs lathe score")
            self.assert_close(got["probabilities"], reference["probabilities"], model_name + " vs numpy",
                              rtol=RTOL_REFERENCE, atol=REFERENCE_PROBABILITY_ATOL)
            self.assert_classes(got["predicted_class"], scored["predicted_class"], got["probabilities"], model_name)
            self.assert_classes(got["predicted_class"], reference["predicted_class"], got["probabilities"],
                                model_name)

    def check_onnx_file(self, onnx_path):
        m = onnx.load(onnx_path)
        onnx.checker.check_model(m, full_check=True)
        self.assertEqual(m.ir_version, 8)
        opsets = {o.domain: o.version for o in m.opset_import}
        self.assertLessEqual(opsets.get("", opsets.get("ai.onnx", 0)), 17)
        self.assertLessEqual(opsets.get("ai.onnx.ml", 0), 3)
        self.assertTrue(set(opsets) <= {"", "ai.onnx", "ai.onnx.ml"}, opsets)

    # -- models --

    def test_binary_telco_linear_with_missing_values(self):
        # total_charges has missing values; indicators, clipping and per-column imputation on top.
        self.check_model("telco_churn", "telco_linear", "--label", "churn", "--task", "binary",
                         "--missing-indicators", "--clip", "quantile:0.05:0.95", "--impute", "mean,tenure=median",
                         "--scale", "standard,monthly_charges=minmax,total_charges=robust")

    def test_binary_telco_fm_with_all_cross_kinds(self):
        model, onnx_path = self.check_model(
            "telco_churn", "telco_fm", "--label", "churn", "--task", "binary", "--model", "fm", "--factors", "4",
            "--cross", "tenure*monthly_charges,contract*payment_method,total_charges*internet_service",
            "--hash-buckets", "64")
        kinds = {g["kind"] for g in read_model(model)["prep"]["sparse"]}
        self.assertEqual(kinds, {"one_hot", "categorical_cross", "slope"})
        self.assertEqual(len(read_model(model)["prep"]["numeric_crosses"]), 1)

    def test_regression_diamonds_linear_cross_all(self):
        self.check_model("diamonds", "diamonds_linear", "--label", "price", "--task", "regression", "--cross", "all")

    def test_regression_diamonds_fm(self):
        self.check_model("diamonds", "diamonds_fm", "--label", "price", "--task", "regression", "--model", "fm",
                         "--factors", "3", "--cross", "carat*cut,color*clarity", "--clip", "std:3")

    def test_regression_diamonds_with_target_transforms(self):
        # The graph takes exp (log) or exp - 1 (log1p) of the de-standardized score in double.
        model, onnx_path = self.check_model("diamonds", "diamonds_log", "--label", "price", "--task", "regression",
                                            "--bins", "8", "--target-transform", "log")
        self.assertEqual(read_model(model)["target_transform"], "log")
        ops = [n.op_type for n in onnx.load(onnx_path).graph.node]
        self.assertIn("Exp", ops)
        model, onnx_path = self.check_model("diamonds", "diamonds_log1p_fm", "--label", "price", "--task",
                                            "regression", "--model", "fm", "--factors", "3",
                                            "--target-transform", "log1p")
        self.assertEqual(read_model(model)["target_transform"], "log1p")
        self.assertIn("Exp", [n.op_type for n in onnx.load(onnx_path).graph.node])

    def test_log1p_predictions_near_zero(self):
        """exp(v) - 1 keeps 1e-16 / |v| of v's digits: at predictions of 1e-12 the graph was 1.2%
        off `lathe score`'s expm1 (QA); near zero it takes the series."""
        train, score = self.path("tiny_train.h5"), self.path("tiny_score.h5")
        rng = np.random.default_rng(9)
        x = rng.normal(size=(3000, 2))
        df = pd.DataFrame(x, columns=["a", "b"])
        df["y"] = 1e-12 * np.exp(0.5 * x[:, 0] + 0.05 * rng.normal(size=len(df)))
        for table, path in [(df[:2500], train), (df[2500:], score)]:
            table.to_csv(path[:-3] + ".csv", index=False)
            run("import", path[:-3] + ".csv", path, "--quiet")
        self.data["tiny"] = train
        model = self.train("tiny", "tiny_log1p.h5", "--label", "y", "--task", "regression",
                           "--target-transform", "log1p")
        self.check_scores(model, self.export(model, "tiny_log1p.onnx"), score, "tiny_log1p")

    def test_multiclass_penguins_linear(self):
        # penguins has missing numeric and categorical values (sex).
        self.check_model("penguins", "penguins_linear", "--label", "species", "--task", "multiclass",
                         "--epochs", "10", "--missing-indicators")

    def test_multiclass_penguins_fm(self):
        self.check_model("penguins", "penguins_fm", "--label", "species", "--task", "multiclass", "--model", "fm",
                         "--factors", "2", "--cross", "island*sex,bill_length_mm*island")

    def telco_new_rows(self):
        """Rows Lathe never saw (imported once): blank numbers, blank and unseen labels, also both in
        one categorical cross (rows 10-14: contract blank, payment_method unseen)."""
        data = self.path("telco_new_rows.h5")
        if os.path.exists(data):
            return data
        df = pd.read_csv(os.path.join(SHARED, "telco_churn.csv")).head(40).drop(columns="churn")
        df = df.astype({"contract": object, "payment_method": object, "internet_service": object})
        df.loc[0:9, "tenure"] = np.nan
        df.loc[5:14, "contract"] = np.nan
        df.loc[10:19, "payment_method"] = "Carrier pigeon"
        df.loc[20:24, "internet_service"] = "5G"
        df.loc[25:29, "monthly_charges"] = 1e6  # far outside the training range
        csv = self.path("telco_new.csv")
        df.to_csv(csv, index=False)
        run("import", csv, data, "--quiet", "--categorical", ",".join(TELCO_CATEGORICAL))
        cols = read_table(data)
        self.assertEqual(cols["payment_method"][10], "Carrier pigeon")
        self.assertEqual(cols["contract"][5], "")
        self.assertEqual(cols["internet_service"][20], "5G")
        return data

    def penguins_new_rows(self):
        """Penguins with blank and unseen islands and sexes (rows 4-7 both), imported once."""
        data = self.path("penguins_new_rows.h5")
        if os.path.exists(data):
            return data
        df = pd.read_csv(os.path.join(SHARED, "penguins.csv")).iloc[::10].reset_index(drop=True)
        df = df.drop(columns="species").astype({"island": object, "sex": object})
        df.loc[0:5, "island"] = np.nan
        df.loc[4:11, "sex"] = "unknown sex"
        df.loc[12:15, "island"] = "Atlantis"
        df.loc[14:19, "sex"] = np.nan
        df.loc[20:21, "bill_length_mm"] = np.nan
        csv = self.path("penguins_new.csv")
        df.to_csv(csv, index=False)
        run("import", csv, data, "--quiet", "--categorical", "island,sex")
        cols = read_table(data)
        self.assertEqual(cols["island"][12], "Atlantis")
        self.assertEqual(cols["sex"][4], "unknown sex")
        self.assertEqual(cols["island"][4], "")
        return data

    def test_missing_and_unseen_values_in_a_new_file(self):
        """Rows Lathe never saw: blank numbers, blank and unseen labels, scored by both."""
        model = self.train("telco_churn", "telco_new.h5", "--label", "churn", "--task", "binary",
                           "--cross", "contract*payment_method,tenure*contract")
        onnx_path = self.export(model, "telco_new.onnx")
        self.check_scores(model, onnx_path, self.telco_new_rows(), "telco_new")

    # -- categorical crosses with many hash buckets --

    def assert_small_cross_tables(self, model, onnx_path):
        """No initializer grows with --hash-buckets: the sparse tables hold one row per one-hot or
        slope slot and one per categorical slot pair (vocabulary + missing + unknown slots of each
        side), and no pair -> bucket table is left."""
        info = read_model(model)
        prep = info["prep"]
        widths = [len(c["vocabulary"]) + 2 for c in prep["categorical"]]
        rows = sum(widths[g["a"]] * widths[g["b"]] if g["kind"] == "categorical_cross" else g["slots"]
                   for g in prep["sparse"])
        self.assertLess(rows * 100, prep["hash_buckets"])
        outputs = info["weights"].shape[0]
        factors = info["factors"].shape[-1] if info["kind"] == "fm" else 1
        m = onnx.load(onnx_path)
        sizes = {t.name: (list(t.dims), int(np.prod(t.dims))) for t in m.graph.initializer}
        self.assertIn([rows, outputs], [d for n, (d, _) in sizes.items() if "sparse_weights" in n])
        largest = max(sizes, key=lambda n: sizes[n][1])
        self.assertLessEqual(sizes[largest][1], rows * outputs * factors, f"{largest}: {sizes[largest]}")
        self.assertFalse(any("cross_table" in n for n in sizes), sorted(sizes))
        self.assertLess(os.path.getsize(onnx_path), 100_000)

    def test_cross_with_many_hash_buckets_is_stored_per_slot_pair(self):
        """Two categorical crosses hashed into 2^22 buckets each: before, the graph held the whole
        double table (2 x 2^22 x 8 bytes = 64 MiB); now one weight per slot pair."""
        buckets = 1 << 22
        model, onnx_path = self.check_model(
            "telco_churn", "telco_wide", "--label", "churn", "--task", "binary",
            "--cross", "contract*payment_method,internet_service*contract", "--hash-buckets", str(buckets))
        self.assert_small_cross_tables(model, onnx_path)
        self.check_scores(model, onnx_path, self.telco_new_rows(), "telco_wide")

    def test_multiclass_fm_cross_with_many_hash_buckets(self):
        """Weights and factors of every output, per slot pair: island x sex in 2^20 buckets."""
        buckets = 1 << 20
        model, onnx_path = self.check_model(
            "penguins", "penguins_wide_fm", "--label", "species", "--task", "multiclass", "--model", "fm",
            "--factors", "3", "--cross", "island*sex,bill_length_mm*island", "--hash-buckets", str(buckets))
        self.assert_small_cross_tables(model, onnx_path)
        self.check_scores(model, onnx_path, self.penguins_new_rows(), "penguins_wide_fm")

    def test_cross_with_fewer_buckets_than_slot_pairs(self):
        """Where the slot pairs outnumber the buckets and a row holds many values (3 outputs x
        (1 + 4 factors)), the graph keeps the bucket rows and a pair -> bucket table."""
        model, onnx_path = self.check_model(
            "penguins", "penguins_narrow_fm", "--label", "species", "--task", "multiclass", "--model", "fm",
            "--factors", "4", "--cross", "island*sex", "--hash-buckets", "2")
        names = [t.name for t in onnx.load(onnx_path).graph.initializer]
        self.assertTrue(any("cross_table" in n for n in names), names)
        self.check_scores(model, onnx_path, self.penguins_new_rows(), "penguins_narrow_fm")

    # -- values hundreds of standard deviations out, without --clip --

    def far_out_tables(self):
        """A synthetic training table (6 numbers, one categorical; binary, multiclass and
        regression labels) with 3 rows hundreds of standard deviations out, and a table to score
        (imported once) in which every row holds one value 100 to 500 standard deviations out."""
        train, score = self.path("far_out_train.h5"), self.path("far_out_score.h5")
        if os.path.exists(score):
            return train, score
        rng = np.random.default_rng(5)

        def frame(x):
            df = pd.DataFrame(x, columns=[f"x{i}" for i in range(6)])
            df["c"] = rng.choice(["a", "b", "c"], size=len(df))
            return df

        x = rng.normal(size=(4000, 6))
        df = frame(x)
        logit = x[:, 0] - 0.8 * x[:, 1] + 0.7 * x[:, 2] * x[:, 3] - 0.5 * x[:, 4] * x[:, 0]
        df["y"] = (rng.random(len(df)) < 1 / (1 + np.exp(-logit))).astype(int)
        df["k"] = np.digitize(logit, [-1, 1])
        df["t"] = logit + 0.1 * rng.normal(size=len(df))
        df.loc[:2, "x2"] = [400.0, -350.0, 420.0]
        x = rng.normal(size=(3000, 6))
        x[np.arange(len(x)), rng.integers(0, 6, size=len(x))] = rng.uniform(100, 500, size=len(x)) * rng.choice(
            [-1, 1], size=len(x))
        new = frame(x)
        for table, path in [(df, train), (new, score)]:
            table.to_csv(path[:-3] + ".csv", index=False)
            run("import", path[:-3] + ".csv", path, "--quiet", "--categorical", "c")
        self.assertGreater(np.abs(read_table(score)["x3"]).max(), 400)
        return train, score

    def check_far_out(self, name, task, label, kind):
        train, score = self.far_out_tables()
        self.data["far_out"] = train
        drop = ",".join(c for c in ["y", "k", "t"] if c != label)
        factors = ["--factors", "4"] if kind == "fm" else []
        model = self.train("far_out", name + ".h5", "--label", label, "--task", task, "--model", kind,
                           "--drop", drop, "--epochs", "5", *factors)
        onnx_path = self.export(model, name + ".onnx")
        self.check_scores(model, onnx_path, score, name)

    def test_fm_binary_with_values_far_out(self):
        """The fm's pairwise term 0.5 ((sum v x)^2 - sum (v x)^2) cancels where one x is huge:
        summed in float (before), `lathe score` was 1e-2 relative off the graph on such rows."""
        self.check_far_out("far_out_fm_binary", "binary", "y", "fm")

    def test_fm_multiclass_with_values_far_out(self):
        self.check_far_out("far_out_fm_multiclass", "multiclass", "k", "fm")

    def test_fm_regression_with_values_far_out(self):
        self.check_far_out("far_out_fm_regression", "regression", "t", "fm")

    def huge_values_table(self):
        """far_out's training columns with rows to score whose one value is 1e10 to 3e38 (a
        corrupt value, no --clip): products of features of every size."""
        path = self.path("huge_values.h5")
        if not os.path.exists(path):
            rng = np.random.default_rng(6)
            x = rng.normal(size=(200, 6))
            at = rng.integers(0, 6, size=len(x))
            x[np.arange(len(x)), at] = rng.choice([1e10, 1e20, 1e30, 3e38], size=len(x)) * rng.choice([-1, 1], size=len(x))
            df = pd.DataFrame(x, columns=[f"x{i}" for i in range(6)])
            df["c"] = rng.choice(["a", "b", "c"], size=len(df))
            df.to_csv(path[:-3] + ".csv", index=False)
            run("import", path[:-3] + ".csv", path, "--quiet", "--categorical", "c")
        return path

    def test_fm_with_huge_values_agrees_with_the_pairs(self):
        """The textbook 0.5 ((sum v x)^2 - sum (v x)^2) cancels to 0 or garbage even in double
        where one x is 1e20 (QA: a probability of 0 where the pairs give 1, NaN probabilities);
        `lathe score`, the graph and the reference all sum each feature times those before it."""
        train, _ = self.far_out_tables()
        self.data["far_out"] = train
        huge = self.huge_values_table()
        for name, task, label in [("huge_fm_binary", "binary", "y"), ("huge_fm_multiclass", "multiclass", "k")]:
            drop = ",".join(c for c in ["y", "k", "t"] if c != label)
            model = self.train("far_out", name + ".h5", "--label", label, "--task", task, "--model", "fm",
                               "--drop", drop, "--epochs", "3", "--factors", "4")
            self.check_scores(model, self.export(model, name + ".onnx"), huge, name)

    def test_linear_binary_with_values_far_out(self):
        """A linear classifier sums in float (no cancellation): within the bound all the same."""
        self.check_far_out("far_out_linear_binary", "binary", "y", "linear")

    # -- quantile bins (--bins): a one-hot of the raw value's bin, beside the prepared value --

    def binned(self, model):
        """{column: float32 edges} of the model's bins groups, in group order; checks the slots."""
        prep = read_model(model)["prep"]
        out = {}
        for g in prep["sparse"]:
            if g["kind"] == "bins":
                e = prep["numeric"][g["a"]]
                self.assertEqual(g["name"], e["name"] + "#bins")
                self.assertEqual(g["slots"], len(e["bin_edges"]) + 2, g["name"])
                out[e["name"]] = np.asarray(e["bin_edges"], dtype=np.float32)
        return out

    def bin_probe_rows(self, model, source, name, label, categorical, infinite):
        """A table (imported once per name) of `source`'s rows whose binned columns cycle through
        probes: every edge, the floats just below and above it, a missing value, values far beyond
        the training range (and +-inf with `infinite`: only a clipped column keeps a finite prepared
        value); each binned column starts its cycle elsewhere, so rows mix them. Checks that the
        probes reach every slot of every bins group."""
        edges = self.binned(model)
        self.assertTrue(edges, "no bins groups")
        df = pd.read_csv(source).drop(columns=label)
        probes = {}
        for column, e in edges.items():
            if len(e) == 0:  # a constant column's value (0 for an all-missing one): one bin
                p = [np.float32(np.nan_to_num(df[column].median()))]
            else:
                p = []
            for v in e:
                p += [v, np.nextafter(v, np.float32(-np.inf)), np.nextafter(v, np.float32(np.inf))]
            p += [np.float32(np.nan), np.float32(-1e6), np.float32(1e6)]
            if infinite:
                p += [np.float32(-np.inf), np.float32(np.inf)]
            probes[column] = np.array(p, dtype=np.float32)
        rows = 3 * max(len(p) for p in probes.values())
        df = df.iloc[np.arange(rows) % len(df)].reset_index(drop=True)
        for k, (column, p) in enumerate(probes.items()):
            # float64 of a float32 is exact, and its shortest repr reads back as the same float.
            df[column] = p[(np.arange(rows) + 5 * k) % len(p)].astype(np.float64)
        flags = ["--categorical", ",".join(categorical)] if categorical else []
        data = self.path(name + ".h5")
        if not os.path.exists(data):
            csv = self.path(name + ".csv")
            df.to_csv(csv, index=False)
            run("import", csv, data, "--quiet", *flags)
        cols = read_table(data)
        for column, e in edges.items():
            np.testing.assert_array_equal(cols[column], df[column].to_numpy(np.float32), column)
            reached = set(bin_slots(e, cols[column]).tolist())
            self.assertEqual(reached, set(range(len(e) + 2)), column)
        return data

    def test_bins_linear_binary(self):
        """telco, every numeric column binned (0/1 columns into 2 bins, total_charges with missing
        values in training), clipped so that +-inf probes keep finite prepared values."""
        model, onnx_path = self.check_model("telco_churn", "telco_bins_linear", "--label", "churn", "--task", "binary",
                                            "--bins", "8", "--clip", "std:3", "--missing-indicators")
        edges = self.binned(model)
        self.assertEqual(len(edges["tenure"]), 7)
        self.assertEqual(len(edges["female"]), 1)
        probe = self.bin_probe_rows(model, os.path.join(SHARED, "telco_churn.csv"), "telco_bins_probe", "churn",
                                    TELCO_CATEGORICAL, infinite=True)
        self.check_scores(model, onnx_path, probe, "telco_bins_linear_probe")
        self.check_scores(model, onnx_path, self.telco_new_rows(), "telco_bins_linear_new")

    def test_bins_fm_regression(self):
        """diamonds, fm, bins beside every kind of cross (groups: one-hots, bins, crosses, slopes)."""
        model, onnx_path = self.check_model(
            "diamonds", "diamonds_bins_fm", "--label", "price", "--task", "regression", "--model", "fm",
            "--factors", "3", "--bins", "10", "--cross", "carat*depth,color*clarity,carat*cut",
            "--clip", "quantile:0.01:0.99")
        kinds = [g["kind"] for g in read_model(model)["prep"]["sparse"]]
        self.assertEqual(kinds, sorted(kinds, key=["one_hot", "bins", "categorical_cross", "slope"].index))
        self.assertEqual(set(kinds), {"one_hot", "bins", "categorical_cross", "slope"})
        probe = self.bin_probe_rows(model, os.path.join(SHARED, "diamonds.csv"), "diamonds_bins_probe", "price",
                                    ["cut", "color", "clarity"], infinite=True)
        self.check_scores(model, onnx_path, probe, "diamonds_bins_fm_probe")

    def check_bins_multiclass(self, name, *flags):
        """penguins (missing numbers in training) with every numeric column in 5 bins, unclipped:
        the probes hold no infinity."""
        model, onnx_path = self.check_model("penguins", name, "--label", "species", "--task", "multiclass",
                                            "--epochs", "10", "--bins", "5", *flags)
        self.assertEqual(len(self.binned(model)), 4)
        probe = self.bin_probe_rows(model, os.path.join(SHARED, "penguins.csv"), "penguins_bins_probe", "species",
                                    ["island", "sex"], infinite=False)
        self.check_scores(model, onnx_path, probe, name + "_probe")
        self.check_scores(model, onnx_path, self.penguins_new_rows(), name + "_new")

    def test_bins_multiclass_linear(self):
        self.check_bins_multiclass("penguins_bins_linear", "--missing-indicators")

    def test_bins_multiclass_fm(self):
        self.check_bins_multiclass("penguins_bins_fm", "--model", "fm", "--factors", "2",
                                   "--cross", "island*sex,bill_length_mm*island")

    def test_bins_of_a_constant_column(self):
        """A constant and an all-missing column (no edge: one bin plus missing, 2 slots) and a 0/1
        column (one edge) beside a continuous one with missing values, for each task's link."""
        rng = np.random.default_rng(11)
        x = rng.normal(size=3000)
        df = pd.DataFrame({"x": x, "k": 7.0, "m": np.nan, "b": rng.integers(0, 2, size=len(x)).astype(float)})
        df.loc[rng.random(len(x)) < 0.1, "x"] = np.nan
        logit = np.nan_to_num(x) + df["b"]
        df["y"] = (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(int)
        df["k3"] = np.digitize(logit, [-0.5, 0.8])
        df["t"] = np.abs(logit) + 0.1 * rng.normal(size=len(x))
        csv = self.path("constant_bins.csv")
        df.to_csv(csv, index=False)
        run("import", csv, self.path("constant_bins.h5"), "--quiet")
        self.data["constant_bins"] = self.path("constant_bins.h5")
        for task, label, kind in [("binary", "y", "linear"), ("multiclass", "k3", "fm"), ("regression", "t", "fm")]:
            with self.subTest(task=task):
                name = f"constant_bins_{task}"
                drop = ",".join(c for c in ["y", "k3", "t"] if c != label)
                factors = ["--factors", "2"] if kind == "fm" else []
                model, onnx_path = self.check_model("constant_bins", name, "--label", label, "--task", task,
                                                    "--model", kind, "--drop", drop, "--bins", "4", *factors)
                edges = self.binned(model)
                self.assertEqual(len(edges["k"]), 0)
                self.assertEqual(len(edges["m"]), 0)
                self.assertEqual(len(edges["b"]), 1)
                probe = self.bin_probe_rows(model, csv, name + "_probe", ["y", "k3", "t"], [], infinite=False)
                self.check_scores(model, onnx_path, probe, name + "_probe")

    def test_bins_per_column(self):
        """--bins COL=N: only tenure is binned (an fm classifier, with a slope on tenure too)."""
        model, onnx_path = self.check_model("telco_churn", "telco_bins_tenure", "--label", "churn", "--task", "binary",
                                            "--model", "fm", "--factors", "3", "--bins", "tenure=6",
                                            "--cross", "tenure*contract")
        edges = self.binned(model)
        self.assertEqual(list(edges), ["tenure"])
        self.assertEqual(len(edges["tenure"]), 5)
        probe = self.bin_probe_rows(model, os.path.join(SHARED, "telco_churn.csv"), "telco_bins_tenure_probe",
                                    "churn", TELCO_CATEGORICAL, infinite=False)
        self.check_scores(model, onnx_path, probe, "telco_bins_tenure_probe")
        self.check_scores(model, onnx_path, self.telco_new_rows(), "telco_bins_tenure_new")

    def test_bins_crossed_with_a_category_and_with_bins(self):
        """--cross COL#bins*other: diamonds, an fm with carat's bins crossed with color and with
        depth's bins (both sides bins), on probe rows that reach every bin of both, missing and
        +-inf included; then a linear classifier of telco with tenure's bins crossed with contract,
        its pairs stored per slot pair."""
        model, onnx_path = self.check_model(
            "diamonds", "diamonds_bins_crossed", "--label", "price", "--task", "regression", "--model", "fm",
            "--factors", "3", "--bins", "carat=8,depth=5", "--cross", "carat#bins*color,carat#bins*depth#bins",
            "--clip", "quantile:0.01:0.99")
        prep = read_model(model)["prep"]
        self.assertEqual(prep["format_version"], 3)
        crosses = {g["name"]: g for g in prep["sparse"] if g["kind"] == "categorical_cross"}
        self.assertEqual(sorted(crosses), ["carat#bins*color", "carat#bins*depth#bins"])
        self.assertTrue(crosses["carat#bins*color"]["a_bins"])
        self.assertNotIn("b_bins", crosses["carat#bins*color"])
        self.assertTrue(crosses["carat#bins*depth#bins"]["b_bins"])
        probe = self.bin_probe_rows(model, os.path.join(SHARED, "diamonds.csv"), "diamonds_bins_crossed_probe",
                                    "price", ["cut", "color", "clarity"], infinite=True)
        self.check_scores(model, onnx_path, probe, "diamonds_bins_crossed_probe")

        model, onnx_path = self.check_model("telco_churn", "telco_bins_crossed", "--label", "churn", "--task",
                                            "binary", "--bins", "tenure=6", "--cross", "tenure#bins*contract")
        probe = self.bin_probe_rows(model, os.path.join(SHARED, "telco_churn.csv"), "telco_bins_crossed_probe",
                                    "churn", TELCO_CATEGORICAL, infinite=False)
        self.check_scores(model, onnx_path, probe, "telco_bins_crossed_probe")
        self.check_scores(model, onnx_path, self.telco_new_rows(), "telco_bins_crossed_new")

    # -- files and errors --

    def test_absent_model_fails_without_output(self):
        out = self.path("absent.onnx")
        missing = self.path("no_such_model.h5")
        proc = run("export", missing, "--onnx", out, check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("no_such_model.h5", proc.stderr)
        self.assertFalse(os.path.exists(out))

    def test_damaged_model_fails_and_keeps_earlier_file(self):
        model = self.train("penguins", "penguins_damaged_src.h5", "--label", "species", "--task", "multiclass")
        damaged = self.path("damaged_model.h5")
        with open(model, "rb") as f:
            blob = bytearray(f.read())
        with open(damaged, "wb") as f:
            f.write(blob[: len(blob) // 2])  # truncated
        out = self.path("damaged.onnx")
        proc = run("export", damaged, "--onnx", out, check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("damaged_model.h5", proc.stderr)
        self.assertFalse(os.path.exists(out))
        # An earlier output (a graph: export replaces no other kind of file) survives a failed export,
        # and no temporary file is left beside it.
        run("export", model, "--onnx", out)
        with open(out, "rb") as f:
            earlier = f.read()
        proc = run("export", damaged, "--onnx", out, check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("damaged_model.h5", proc.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), earlier)
        self.assertEqual([n for n in os.listdir(self.dir) if ".tmp-" in n], [])

    def test_hashed_categorical_is_refused_by_name(self):
        model = self.train("penguins", "penguins_hashed.h5", "--label", "species", "--task", "multiclass",
                           "--max-categories", "2", "--category-buckets", "8")
        out = self.path("hashed.onnx")
        proc = run("export", model, "--onnx", out, check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("island", proc.stderr)  # three islands > --max-categories 2
        self.assertIn("hashed", proc.stderr)
        self.assertFalse(os.path.exists(out))


    def test_input_named_like_an_output_is_refused_by_name(self):
        # ONNX names each value once: a column `probability` (a stacked model's score, say) cannot
        # be an input beside the binary graph's output of that name.
        df = pd.read_csv(os.path.join(SHARED, "telco_churn.csv")).rename(columns={"tenure": "probability"})
        csv = self.path("telco_probability.csv")
        df.to_csv(csv, index=False)
        self.data["telco_probability"] = self.path("telco_probability.h5")
        run("import", csv, self.data["telco_probability"], "--quiet")
        model = self.train("telco_probability", "telco_probability_model.h5", "--label", "churn",
                           "--task", "binary", "--epochs", "1")
        out = self.path("telco_probability.onnx")
        proc = run("export", model, "--onnx", out, check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("the input column 'probability' would collide with a name the graph uses", proc.stderr)
        self.assertFalse(os.path.exists(out))

if __name__ == "__main__":
    unittest.main()
