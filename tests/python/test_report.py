"""`lathe report` end to end: the HTML page for binary (fm), regression and multiclass models with
--eval and --drift; the page parses and is well nested, holds the expected inline SVG charts with
plausible content (ROC area from the polyline, AUC as `lathe eval` prints it, calibration bins
recomputed from `lathe score`, weights and interactions from the model file read with h5py,
confusion counts, PSI as `lathe drift` computes it), loads nothing from the network, escapes names
from the data; a model file without the per-epoch history; errors leave no output; and the page
rendered by headless Chromium (the DOM it builds, and a screenshot with the charts' colour)."""
import html as html_lib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import unittest
import zlib
from html.parser import HTMLParser

import h5py
import numpy as np
import pandas as pd

from label_hashes import cross_bucket, slot_hashes
from lathe_run import SHARED, import_frame, run  # noqa: F401

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
SERIES_RGB = (0x25, 0x63, 0xEB)  # svg .series / .bar.positive in the page's CSS
# A column name that would run as a script and add an element if it were not escaped (HDF5 refuses
# a '/' in a column name, so it has no end tag).
EVIL = "<script>alert(\"x\") & <img src=x onerror=alert(1)>"


class Node:
    def __init__(self, tag, attrs, parent=None):
        self.tag, self.attrs, self.parent, self.children, self.text = tag, dict(attrs), parent, [], ""

    def iter(self):
        yield self
        for c in self.children:
            yield from c.iter()

    def find_all(self, tag=None, cls=None):
        return [n for n in self.iter() if (tag is None or n.tag == tag)
                and (cls is None or cls in (n.attrs.get("class") or "").split())]

    def all_text(self):
        return self.text + "".join(c.all_text() for c in self.children)


class TreeBuilder(HTMLParser):
    """A DOM of the page with html.parser; records every end tag that does not close the open element."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", [])
        self.stack = [self.root]
        self.errors = []
        self.ids = {}

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.stack[-1])
        self.stack[-1].children.append(node)
        if node.attrs.get("id"):
            if node.attrs["id"] in self.ids:
                self.errors.append(f"duplicate id {node.attrs['id']}")
            self.ids[node.attrs["id"]] = node
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if self.stack[-1].tag != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1].tag}>")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.stack[-1].text += data


def parse(html):
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    if len(builder.stack) != 1:
        builder.errors.append("unclosed: " + ", ".join(n.tag for n in builder.stack[1:]))
    return builder


def polyline_points(node):
    pts = node.attrs["points"].split()
    return [tuple(map(float, p.split(","))) for p in pts]


def data_points(svg, points):
    """Pixel points of a chart back to data coordinates of a unit square plot (ROC, PR)."""
    frame = svg.find_all("rect", "frame")[0]
    x0, y0 = float(frame.attrs["x"]), float(frame.attrs["y"])
    w, h = float(frame.attrs["width"]), float(frame.attrs["height"])
    return [((px - x0) / w, (y0 + h - py) / h) for px, py in points]


def table_rows(table):
    return [[c.all_text().strip() for c in tr.children if c.tag in ("td", "th")]
            for tr in table.find_all("tr") if tr.find_all("td")]


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError("headless Chromium is needed to check the rendered report: "
                         "apt-get install chromium (scripts/setup.sh installs it)")


def png_pixels(path):
    """(width, height, rows of RGB tuples) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        filt = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if filt == 1:
                line[i] = (line[i] + a) & 255
            elif filt == 2:
                line[i] = (line[i] + b) & 255
            elif filt == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return width, height, bpp, rows


class ReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="lathe-report-")
        telco = pd.read_csv(os.path.join(SHARED, "telco_churn.csv"))
        cls.telco = cls.imported("telco", telco)
        shifted = telco.copy()
        shifted["monthly_charges"] = shifted["monthly_charges"] * 1.6 + 20
        shifted.loc[shifted.index % 3 == 0, "contract"] = "Ten year"
        cls.telco_shifted = cls.imported("telco_shifted", shifted)
        cls.diamonds = cls.imported("diamonds", pd.read_csv(os.path.join(SHARED, "diamonds.csv")))
        cls.penguins = cls.imported("penguins", pd.read_csv(os.path.join(SHARED, "penguins.csv")))

        cls.binary_model, cls.binary_summary = cls.train(cls.telco, "binary.h5", "--label", "churn", "--task", "binary",
                                                         "--model", "fm", "--factors", "4", "--epochs", "6")
        cls.regression_model, _ = cls.train(cls.diamonds, "regression.h5", "--label", "price", "--task", "regression",
                                            "--epochs", "3")
        cls.multiclass_model, _ = cls.train(cls.penguins, "multiclass.h5", "--label", "species", "--task",
                                            "multiclass", "--epochs", "20", "--batch", "32")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    @classmethod
    def imported(cls, name, df):
        return import_frame(df, cls.dir, name)

    @classmethod
    def train(cls, data, out, *flags):
        model = cls.path(out)
        proc = run("train", data, "--out", model, "--device", "cpu", "--quiet", *flags)
        return model, json.loads(proc.stdout.strip().splitlines()[-1])

    def report(self, model, out, *flags):
        html_path = self.path(out)
        run("report", model, "--out", html_path, "--device", "cpu", "--quiet", *flags)
        with open(html_path, encoding="utf-8") as f:
            html = f.read()
        page = parse(html)
        self.assertEqual(page.errors, [], "the page is not well nested")
        self.assert_self_contained(html, page)
        return html, page

    def assert_self_contained(self, html, page):
        self.assertNotRegex(html, r"(?i)https?://")
        self.assertNotRegex(html, r"(?i)<\s*(script|link|img|iframe|object|embed)\b")
        for node in page.root.iter():
            for attr in ("src", "href", "xlink:href", "action"):
                self.assertNotIn(attr, node.attrs, (node.tag, node.attrs))
            self.assertFalse(any(a.startswith("on") for a in node.attrs), node.attrs)

    def eval_json(self, model, data):
        return json.loads(run("eval", model, data, "--json", "--device", "cpu").stdout)

    def svg(self, page, svg_id):
        self.assertIn(svg_id, page.ids, f"no element with id '{svg_id}'")
        node = page.ids[svg_id]
        self.assertEqual(node.tag, "svg")
        return node

    # ---------------------------------------------------------------------------------------------

    def test_binary_fm_report(self):
        html, page = self.report(self.binary_model, "binary.html", "--eval", self.telco, "--drift", self.telco_shifted)
        metrics = self.eval_json(self.binary_model, self.telco)

        # Summary.
        summary = page.ids["summary"].all_text()
        for text in ("binary", "churn", "No", "Yes", "fm", str(self.binary_summary["train_rows"])):
            self.assertIn(text, summary)

        # Learning curves: one point per epoch, from the history stored in the model file.
        epochs = self.binary_summary["epochs_run"]
        with h5py.File(self.binary_model) as f:
            history = json.loads(f.attrs["history"])
            weights = f["weights"][:].astype(np.float64)
            factors = f["factors"][:].astype(np.float64)
        self.assertEqual([e["epoch"] for e in history], list(range(1, epochs + 1)))
        best = history[self.binary_summary["best_epoch"] - 1]
        self.assertAlmostEqual(best["valid"]["logloss"], self.binary_summary["valid"]["logloss"], places=12)
        for chart in ("learning-curve-loss", "learning-curve-metric"):
            svg = self.svg(page, chart)
            self.assertIn("learning-curve", svg.attrs["class"].split())
            self.assertEqual(len(polyline_points(svg.find_all("polyline", "series")[0])), epochs)
        losses = [e["train_loss"] for e in history]
        ys = [y for _, y in polyline_points(self.svg(page, "learning-curve-loss").find_all("polyline", "series")[0])]
        # Pixel y grows downwards: a linear map of the losses with a negative slope.
        self.assertLess(np.corrcoef(ys, losses)[0, 1], -0.999)

        # ROC: the polyline is a curve from (0, 0) to (1, 1), monotone, whose area is the AUC that
        # `lathe eval` prints (the page prints that same number).
        roc = self.svg(page, "roc")
        pts = data_points(roc, polyline_points(roc.find_all("polyline", "series")[0]))
        self.assertGreater(len(pts), 100)
        self.assertAlmostEqual(pts[0][0], 0, delta=0.01)
        self.assertAlmostEqual(pts[0][1], 0, delta=0.01)
        self.assertAlmostEqual(pts[-1][0], 1, delta=0.01)
        self.assertAlmostEqual(pts[-1][1], 1, delta=0.01)
        xs, ys = np.array(pts).T
        self.assertTrue((np.diff(xs) >= -1e-9).all() and (np.diff(ys) >= -1e-9).all())
        area = float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2))
        self.assertAlmostEqual(area, metrics["auc"], delta=0.01)
        printed = page.root.find_all("span", "auc")
        self.assertEqual(len(printed), 1)
        self.assertAlmostEqual(float(printed[0].all_text()), metrics["auc"], delta=1e-5 * metrics["auc"])
        eval_cells = {c.attrs["data-metric"]: float(c.all_text()) for c in page.root.find_all("td", "metric")}
        self.assertEqual(sorted(eval_cells), sorted(k for k in metrics if k in ("logloss", "accuracy", "auc", "pr_auc")))
        for k, v in eval_cells.items():
            self.assertAlmostEqual(v, metrics[k], delta=1e-5 * abs(metrics[k]), msg=k)

        # PR: recall from 0 to 1, precision ending at the positive rate.
        pr = self.svg(page, "pr")
        pts = data_points(pr, polyline_points(pr.find_all("polyline", "series")[0]))
        positive_rate = float((pd.read_csv(os.path.join(SHARED, "telco_churn.csv"))["churn"] == "Yes").mean())
        self.assertAlmostEqual(pts[0][0], 0, delta=0.01)
        self.assertAlmostEqual(pts[-1][0], 1, delta=0.01)
        self.assertAlmostEqual(pts[-1][1], positive_rate, delta=0.01)

        # Calibration: the bins recomputed from the probabilities `lathe score` writes.
        scored = self.path("binary_scores.csv")
        run("score", self.binary_model, self.telco, "--out", scored, "--format", "csv", "--device", "cpu", "--quiet")
        p = pd.read_csv(scored)["probability"].to_numpy(np.float64)
        y = (pd.read_csv(os.path.join(SHARED, "telco_churn.csv"))["churn"] == "Yes").to_numpy()
        bins = np.minimum((p * 10).astype(int), 9)
        rows = table_rows(page.root.find_all("table", "calibration-table")[0])
        self.assertEqual(len(rows), 10)
        for b, row in enumerate(rows):
            n = int((bins == b).sum())
            self.assertEqual(int(row[1]), n, row)
            if n:
                self.assertAlmostEqual(float(row[2]), p[bins == b].mean(), delta=1e-3, msg=row)
                self.assertAlmostEqual(float(row[3]), y[bins == b].mean(), delta=1e-3, msg=row)
        circles = self.svg(page, "calibration").find_all("circle", "bin")
        self.assertEqual(len(circles), int((np.bincount(bins, minlength=10) > 0).sum()))

        # Weights: the 20 largest |weight| of the model file, with their feature names.
        wsvg = self.svg(page, "weights")
        self.assertEqual(len(wsvg.find_all("rect", "bar")), 20)
        table = table_rows(page.root.find_all("table", "weights-table")[0])
        shown = np.array([float(r[2]) for r in table])
        expected = weights[0][np.argsort(-np.abs(weights[0]), kind="stable")[:20]]
        np.testing.assert_allclose(np.sort(np.abs(shown)), np.sort(np.abs(expected)), rtol=1e-4)
        names = [r[1] for r in table]
        self.assertTrue(any("=" in n for n in names), names)  # one-hot slots by column and label
        self.assertTrue(all(n and n != "?" for n in names))

        # FM interactions: each shown value is <v_i, v_j> of some pair, largest magnitude first.
        isvg = self.svg(page, "interactions")
        self.assertEqual(len(isvg.find_all("rect", "bar")), 20)
        v = factors[0]
        dots = v @ v.T
        pair_values = dots[np.triu_indices(len(v), 1)]
        values = [float(r[3]) for r in table_rows(page.root.find_all("table", "interactions-table")[0])]
        self.assertTrue(all(abs(values[i]) >= abs(values[i + 1]) - 1e-9 for i in range(len(values) - 1)))
        for value in values:
            self.assertLess(np.min(np.abs(pair_values - value)), 1e-4 * max(1.0, abs(value)), value)
        self.assertLessEqual(abs(values[0]), np.max(np.abs(pair_values)) * (1 + 1e-5))

        # Drift: the table of `lathe drift` with the status colours.
        proc = run("drift", self.binary_model, self.telco_shifted, "--json", "--device", "cpu", check=False)
        self.assertEqual(proc.returncode, 3, proc.stderr)
        drift = json.loads(proc.stdout)
        self.svg(page, "drift-psi")
        drift_rows = {tr.find_all("td")[0].all_text(): tr for tr in page.ids["drift-table"].find_all("tr")
                      if tr.find_all("td")}
        self.assertEqual(sorted(drift_rows), sorted(f["name"] for f in drift["features"]))
        for f in drift["features"]:
            tr = drift_rows[f["name"]]
            self.assertIn("status-" + f["status"], tr.attrs["class"])
            psi = tr.find_all("td")[2].all_text()
            if f["psi"] is not None:
                self.assertAlmostEqual(float(psi), f["psi"], delta=1e-3 * max(1.0, f["psi"]), msg=f["name"])
        self.assertIn("status-alert", drift_rows["monthly_charges"].attrs["class"])
        self.assertIn("status-alert", drift_rows["contract"].attrs["class"])
        self.assertIn("Ten year", drift_rows["contract"].all_text())
        self.assertEqual(page.ids["drift-status"].all_text(), drift["status"])
        self.assertRegex(html, r"\.status\.alert\s*\{[^}]*background")

    def test_regression_report(self):
        html, page = self.report(self.regression_model, "regression.html", "--eval", self.diamonds)
        metrics = self.eval_json(self.regression_model, self.diamonds)
        svg = self.svg(page, "residuals")
        circles = svg.find_all("g", "points")[0].find_all("circle")
        self.assertEqual(len(circles), 2000)  # sampled from 53940 rows
        px = np.array([float(c.attrs["cx"]) for c in circles])
        py = np.array([float(c.attrs["cy"]) for c in circles])
        # Predicted against actual: a model with r2 ~0.9 puts the points near the diagonal.
        self.assertGreater(metrics["r2"], 0.8)
        self.assertGreater(np.corrcoef(px, -py)[0, 1], 0.9)
        cells = {c.attrs["data-metric"]: float(c.all_text()) for c in page.root.find_all("td", "metric")}
        self.assertAlmostEqual(cells["rmse"], metrics["rmse"], delta=1e-5 * metrics["rmse"])
        for absent in ("roc", "pr", "calibration", "confusion", "interactions", "drift"):
            self.assertNotIn(absent, page.ids)
        self.assertEqual(len(self.svg(page, "weights").find_all("rect", "bar")), 20)
        self.assertIn("carat", page.ids["weights"].all_text())

    def test_infinite_metrics_show_as_eval_prints_them(self):
        # A log-target model on carats far beyond training predicts inf: rmse inf, r2 -inf, as
        # `lathe eval` prints them (the page showed "-", as for a metric that does not apply).
        model, _ = self.train(self.diamonds, "log.h5", "--label", "price", "--task", "regression", "--epochs", "2",
                              "--target-transform", "log", "--clip", "none")
        huge = pd.read_csv(os.path.join(SHARED, "diamonds.csv")).head(500)
        huge["carat"] = 30000.0
        data = self.imported("huge", huge)
        metrics = self.eval_json(model, data)
        self.assertEqual((metrics["rmse"], metrics["r2"]), ("inf", "-inf"))
        _, page = self.report(model, "log.html", "--eval", data)
        cells = {c.attrs["data-metric"]: c.all_text() for c in page.root.find_all("td", "metric")}
        self.assertEqual((cells["rmse"], cells["mae"], cells["r2"]), ("inf", "inf", "-inf"))

    def test_infinite_predictions_leave_the_others_drawn(self):
        # QA: one row of 500 predicted inf (a carat far beyond training, log target, --clip none) and
        # the page said "the predictions are not all finite: no charts", dropping the other 499 points.
        model, _ = self.train(self.diamonds, "log_some.h5", "--label", "price", "--task", "regression", "--epochs",
                              "2", "--target-transform", "log", "--clip", "none")
        rows = pd.read_csv(os.path.join(SHARED, "diamonds.csv")).head(500)
        rows.loc[0, "carat"] = 30000.0
        data = self.imported("one_huge", rows)
        self.assertEqual(self.eval_json(model, data)["infinite_predictions"], 1)
        html, page = self.report(model, "log_some.html", "--eval", data)
        svg = self.svg(page, "residuals")
        self.assertEqual(len(svg.find_all("circle")), 499)
        self.assertEqual(svg.find_all("text", "caption")[0].all_text(), "499 of 500 rows")
        self.assertIn("1 prediction is not finite", page.ids["evaluation"].all_text())
        self.assertNotIn("no charts", html)
        self.assertNotRegex(html, r'\b(x|y|x1|x2|y1|y2|cx|cy|r|width|height|points|viewBox)="[^"]*(?i:nan|inf)')

    def test_multiclass_report(self):
        html, page = self.report(self.multiclass_model, "multiclass.html", "--eval", self.penguins,
                                 "--drift", self.penguins)
        metrics = self.eval_json(self.multiclass_model, self.penguins)
        svg = self.svg(page, "confusion")
        self.assertEqual(len(svg.find_all("rect", "cell")), 9)
        counts = [int(t.all_text()) for t in svg.find_all("text", "count")]
        self.assertEqual(counts, metrics["confusion"])
        self.assertEqual(sum(counts), 344)
        for name in ("Adelie", "Chinstrap", "Gentoo"):
            self.assertIn(name, svg.all_text())
        # Per-class weights name their class, and so does every class's bias.
        self.assertIn("[Gentoo]", self.svg(page, "weights").all_text())
        with h5py.File(self.multiclass_model) as f:
            bias = f["bias"][:].astype(np.float64)
        found = re.search(r"; bias per class: <code>Adelie</code> (\S+), <code>Chinstrap</code> (\S+), "
                          r"<code>Gentoo</code> (\S+)</figcaption>", html)
        self.assertIsNotNone(found, page.ids["weights-section"].find_all("figcaption")[0].all_text())
        np.testing.assert_allclose([float(v) for v in found.groups()], bias, rtol=1e-5)
        self.assertNotIn("first class", html)
        # The status `lathe drift` finds, and no feature drifts (the training rows are 80% of these).
        proc = run("drift", self.multiclass_model, self.penguins, "--json", "--device", "cpu", check=False)
        self.assertEqual(page.ids["drift-status"].all_text(), json.loads(proc.stdout)["status"])
        for tr in page.ids["drift-table"].find_all("tr"):
            if tr.find_all("td"):
                self.assertIn("status-ok", tr.attrs["class"])

    def test_too_many_classes_to_draw_get_a_note_without_a_caption(self):
        # 45 classes: the matrix is not drawn, and the caption that describes it was printed anyway.
        rng = np.random.default_rng(8)
        n = 4500
        y = rng.integers(0, 45, n)
        df = pd.DataFrame({"x": y + rng.normal(size=n), "z": rng.normal(size=n), "y": [f"k{c}" for c in y]})
        data = self.imported("many_classes", df)
        model, _ = self.train(data, "many_classes_model.h5", "--label", "y", "--task", "multiclass", "--epochs", "2")
        html, page = self.report(model, "many_classes.html", "--eval", data)
        self.assertIn("45 classes: too many to draw the confusion matrix", html)
        self.assertNotIn("confusion matrix: rows are the true class", html)
        self.assertNotIn("confusion", page.ids)
        # Penguins' three classes keep their matrix and its caption.
        html, _ = self.report(self.multiclass_model, "three_classes.html", "--eval", self.penguins)
        self.assertIn("confusion matrix: rows are the true class", html)

    def test_names_from_the_data_are_escaped(self):
        rng = np.random.default_rng(5)
        n = 1500
        x = rng.normal(size=n)
        city = rng.choice(["Oslo", "<b>Bergen</b>", "Tromsø & \"Bodø\""], size=n)
        y = np.where(rng.random(n) < 1 / (1 + np.exp(-2 * x - (city == "Oslo"))), "yes", "<no>")
        df = pd.DataFrame({EVIL: x, "city": city, "label": y})
        data = self.imported("evil_data", df)
        model, _ = self.train(data, "evil.h5", "--label", "label", "--task", "binary", "--epochs", "4")
        html, page = self.report(model, "evil.html", "--eval", data, "--drift", data)
        self.assertNotIn("<script", html.lower())
        self.assertNotIn("<b>Bergen", html)
        self.assertIn("&lt;script&gt;", html)
        # The parsed page shows the names as they are, as text.
        self.assertEqual(page.root.find_all("script"), [])
        self.assertEqual(page.root.find_all("b"), [])
        self.assertIn(EVIL, page.ids["weights"].all_text())
        self.assertIn("city=<b>Bergen</b>", page.ids["weights-section"].all_text())
        self.assertIn(EVIL, page.ids["drift-table"].all_text())
        self.assertIn("<no>", page.ids["summary"].all_text())
        self.svg(page, "roc")

    def validation_rows_text(self, html):
        match = re.search(r'<th scope="row">validation rows</th><td>(.*?)</td>', html)
        self.assertIsNotNone(match, "no validation rows in the summary")
        return match.group(1)

    def test_validation_rows_say_held_out_or_from_a_file(self):
        # Held out of the training file (the default --valid-fraction 0.2).
        html, _ = self.report(self.multiclass_model, "held_out.html")
        self.assertRegex(self.validation_rows_text(html),
                         r"^\d+ held out from <code>" + re.escape(html_lib.escape(self.penguins)) + r"</code> \(20%\)$")
        # A file of their own (--valid).
        separate, _ = self.train(self.penguins, "separate_valid.h5", "--label", "species", "--task", "multiclass",
                                 "--epochs", "2", "--valid", self.penguins)
        html, _ = self.report(separate, "separate_valid.html")
        self.assertEqual(self.validation_rows_text(html), "344 from <code>" + html_lib.escape(self.penguins) + "</code>")
        # A model written before valid_fraction was stored: its options tell.
        for model, expected in [(self.multiclass_model, " held out from <code>"), (separate, " from <code>")]:
            old = self.path("old_" + os.path.basename(model))
            shutil.copy(model, old)
            with h5py.File(old, "a") as f:
                metrics = json.loads(f.attrs["metrics"])
                del metrics["valid_fraction"]
                del f.attrs["metrics"]
                f.attrs["metrics"] = json.dumps(metrics)
                del f["attribute_digest"]
                f.attrs["lathe_model_format_version"] = np.int64(2)
            html, _ = self.report(old, "old_" + os.path.basename(model) + ".html")
            text = self.validation_rows_text(html)
            self.assertIn(expected, text)
            if expected == " from <code>":
                self.assertNotIn("held out", text)

    def test_the_optimizer_and_rate_the_run_chose_are_shown_as_eval_gives_them(self):
        # Review: `lathe train` picks adam or sgd and the rate by itself; neither the report (its
        # options list those given) nor `lathe eval --json` said which it used.
        training = json.loads(run("eval", self.multiclass_model, self.penguins, "--json", "--device", "cpu",
                                  "--quiet").stdout)["training"]
        self.assertIn(training["optimizer"], ("adam", "sgd"))
        html, _ = self.report(self.multiclass_model, "optimizer.html")
        match = re.search(r'<th scope="row">optimizer</th><td>(.*?)</td>', html)
        self.assertIsNotNone(match, "no optimizer in the summary")
        self.assertEqual(match.group(1), f"{training['optimizer']}, learning rate {training['lr']:g}, batches of "
                                         f"{training['batch']} rows")

    def test_model_without_history(self):
        old = self.path("no_history.h5")
        shutil.copy(self.multiclass_model, old)
        with h5py.File(old, "a") as f:  # a format 2 file written before the history was stored
            del f.attrs["history"]
            del f["attribute_digest"]
            f.attrs["lathe_model_format_version"] = np.int64(2)
        html, page = self.report(old, "no_history.html")
        self.assertIn("no-history", page.ids)
        self.assertIn("no history stored", page.ids["no-history"].all_text())
        self.assertNotIn("learning-curve-loss", page.ids)
        self.svg(page, "weights")
        for absent in ("evaluation", "drift", "roc", "confusion"):
            self.assertNotIn(absent, page.ids)

    def test_errors_leave_no_output(self):
        out = self.path("missing.html")
        proc = run("report", self.path("missing.h5"), "--out", out, "--device", "cpu", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("missing.h5", proc.stderr)
        self.assertEqual(proc.stdout, "")
        self.assertFalse(os.path.exists(out))
        # A bad --eval file: the earlier report stays as it was, no temporary file is left.
        html, _ = self.report(self.multiclass_model, "kept.html")
        proc = run("report", self.multiclass_model, "--eval", self.path("nope.h5"), "--out", self.path("kept.html"),
                   "--device", "cpu", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("nope.h5", proc.stderr)
        with open(self.path("kept.html"), encoding="utf-8") as f:
            self.assertEqual(f.read(), html)
        self.assertEqual([n for n in os.listdir(self.dir) if ".tmp-" in n], [])
        # --eval data without the model's label.
        nolabel = self.imported("penguins_nolabel", pd.read_csv(os.path.join(SHARED, "penguins.csv")).drop(columns="species"))
        proc = run("report", self.multiclass_model, "--eval", nolabel, "--out", self.path("x.html"), "--device", "cpu",
                   check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("species", proc.stderr)
        self.assertFalse(os.path.exists(self.path("x.html")))

    def test_an_undefined_metric_shows_as_eval_prints_it(self):
        # Rows of one class: auc is undefined, `n/a` in `lathe eval`'s text; the page showed "-".
        churned = self.imported("telco_no_churn", pd.read_csv(os.path.join(SHARED, "telco_churn.csv"))
                                .query("churn == 'No'").head(50))
        metrics = self.eval_json(self.binary_model, churned)
        self.assertIsNone(metrics["auc"])
        html, page = self.report(self.binary_model, "one_class.html", "--eval", churned)
        cells = {c.attrs["data-metric"]: c.all_text() for c in page.root.find_all("td", "metric")}
        self.assertEqual((cells["auc"], cells["pr_auc"]), ("n/a", "0"))
        self.assertIn("only one class in the labels: auc is undefined (it needs both)", html)

    def test_eval_data_without_the_label_names_the_option(self):
        # QA: `lathe report m.h5 --eval month.h5` on rows without the label said "the model's label:
        # month.h5 has no column 'churn'; columns: ..." without naming --eval, where `lathe eval` adds
        # what to run instead.
        unlabeled = self.imported("telco_unlabeled",
                                  pd.read_csv(os.path.join(SHARED, "telco_churn.csv")).drop(columns="churn").head(50))
        out = self.path("unlabeled.html")
        proc = run("report", self.binary_model, "--eval", unlabeled, "--out", out, "--device", "cpu", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(f"lathe: error: the model's label: {unlabeled} has no column 'churn'; columns: ", proc.stderr)
        self.assertIn(f"(--eval measures the model against the label; `--drift {unlabeled}` compares rows without "
                      "one with the training data)", proc.stderr)
        self.assertFalse(os.path.exists(out))

    def test_a_model_given_as_data_names_the_option(self):
        # A model given to --eval or --drift said "the commands that take both name the model first:
        # `lathe score MODEL.h5 DATA.h5`", a hint for positional arguments: now the option and what
        # it takes.
        out = self.path("wrong_kind.html")
        for option, takes in [("--eval", "labeled data to evaluate the model on"),
                              ("--drift", "new data to compare with the model's training data")]:
            proc = run("report", self.binary_model, option, self.multiclass_model, "--out", out, "--device", "cpu",
                       check=False)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn(f"{option} {self.multiclass_model} is a model file written by `lathe train`, not a table of "
                          f"data: {option} takes {takes} (the model is the first argument)", proc.stderr)
            self.assertNotIn("name the model first", proc.stderr)
            self.assertFalse(os.path.exists(out))

    def test_a_refit_of_one_epoch_is_one_epoch(self):
        # QA: "trained again on all 344 training and validation rows for 1 epochs".
        model, summary = self.train(self.penguins, "refit_one.h5", "--label", "species", "--task", "multiclass",
                                    "--epochs", "1", "--refit", "yes")
        self.assertEqual(summary["refit"]["epochs"], 1)
        html, page = self.report(model, "refit_one.html")
        self.assertIn("trained again on all 344 training and validation rows for 1 epoch:", page.ids["summary"].all_text())
        self.assertNotIn("1 epochs", html)

    def test_cross_buckets_are_named_by_their_label_pairs(self):
        # QA: a categorical cross's weights were named by bucket number alone
        # ("a*b#11/16 (cross bucket)"), not by the pairs of labels that fall into it. The oracle is
        # the hash of kernels/prepare_formulas.h (label_hashes.py), over every pair of slots of the
        # two columns (their labels, then <missing> and <unknown>).
        buckets = 16
        rng = np.random.default_rng(7)
        a_labels, b_labels = ["north", "south", "east"], ["red", "blue"]
        df = pd.DataFrame({"a": rng.choice(a_labels, 3000), "b": rng.choice(b_labels, 3000),
                           "x": rng.normal(size=3000)})
        df["y"] = ((df.a == "south") ^ (df.b == "red") ^ (rng.random(3000) < 0.1)).astype(int)
        data = self.imported("crossed.h5", df)
        model, _ = self.train(data, "crossed.h5.model", "--label", "y", "--task", "binary", "--cross", "a*b",
                              "--hash-buckets", str(buckets), "--epochs", "5")
        slots = {"a": sorted(a_labels), "b": sorted(b_labels)}
        hashes = {c: slot_hashes(labels) for c, labels in slots.items()}
        names = {c: [f"{c}={v}" for v in labels] + [f"{c}=<missing>", f"{c}=<unknown>"] for c, labels in slots.items()}
        in_bucket = {}
        for i, ha in enumerate(hashes["a"]):
            for j, hb in enumerate(hashes["b"]):
                bucket = cross_bucket(ha, hb, buckets)
                in_bucket.setdefault(bucket, []).append(f"{names['a'][i]} \u00d7 {names['b'][j]}")
        expected = set()
        for bucket, pairs in in_bucket.items():
            more = len(pairs) - 1
            expected.add(pairs[0] if more == 0 else
                         f"{pairs[0]} (and {more} more pair{'' if more == 1 else 's'} in bucket {bucket}/{buckets})")
        self.assertTrue(any(len(p) > 1 for p in in_bucket.values()), "the oracle's buckets should collide")
        _, page = self.report(model, "crossed.html")
        shown = [n.all_text() for n in page.root.find_all("td", "feature")]
        crossed = [t for t in shown if "\u00d7" in t]
        self.assertTrue(crossed, shown)
        for label in crossed:
            self.assertIn(label, expected)
        # A bucket no pair falls into (shown among the weights of 0) says so.
        for label in shown:
            if "cross bucket" in label:
                bucket = re.fullmatch(r"a\*b#(\d+)/16 \(cross bucket of no label pair\)", label)
                self.assertIsNotNone(bucket, label)
                self.assertNotIn(int(bucket.group(1)), in_bucket)

    def test_a_retrained_models_kept_options_read_as_a_command_line(self):
        # QA: a retrained model's kept_preparation_options (its parent's options) showed as raw JSON,
        # {"cross":["a*b"],"label":["churn"],...}, in the options table.
        parent, _ = self.train(self.penguins, "parent.h5", "--label", "species", "--task", "multiclass",
                               "--epochs", "2", "--cross", "island*sex")
        child, _ = self.train(self.penguins, "child.h5", "--label", "species", "--task", "multiclass",
                              "--epochs", "1", "--init-model", parent)
        _, page = self.report(child, "child.html")
        rows = {tr.find_all("th")[0].all_text(): tr.find_all("td")[0].all_text()
                for tr in page.root.find_all("tr") if tr.find_all("th") and tr.find_all("td")}
        kept = rows["kept_preparation_options"]
        self.assertNotIn("{", kept)
        self.assertIn("--cross island*sex", kept)
        self.assertIn("--label species", kept)
        self.assertIn("--quiet", kept)
        self.assertNotIn("true", kept)

    def test_every_chart_labels_its_value_axis(self):
        # QA: the bar charts (weights, interactions, PSI per feature) had no axis label, where the
        # curves have both.
        _, page = self.report(self.binary_model, "axes.html", "--eval", self.telco, "--drift", self.telco_shifted)
        expected = {"weights": ["weight"], "interactions": ["interaction <v_i, v_j>"], "drift-psi": ["PSI"],
                    "roc": ["false positive rate", "true positive rate"], "pr": ["recall", "precision"]}
        for svg_id, labels in expected.items():
            self.assertEqual([t.all_text() for t in self.svg(page, svg_id).find_all("text", "axis-label")], labels)

    def test_bar_labels_fit_left_of_the_bars_when_rendered(self):
        # QA: the label column of the bar charts was 250 px whatever the labels: an fm's cross
        # buckets ("[Adelie] bill_depth_mm × island*sex#21885/65536 (cross bucket)") and a long column
        # name lost their start beyond the chart's left edge. Chromium lays the page out and a script
        # added to a copy of it measures each label (the page itself has none).
        long_name = "body_mass_in_grams_as_weighed_at_the_field_station_on_the_first_visit_of_the_season"
        penguins = pd.read_csv(os.path.join(SHARED, "penguins.csv")).rename(columns={"body_mass_g": long_name})
        data = self.imported("penguins_long_names", penguins)
        model, _ = self.train(data, "long_names.h5", "--label", "species", "--task", "multiclass", "--model", "fm",
                              "--factors", "4", "--epochs", "5", "--batch", "32", "--cross",
                              f"island*sex,bill_length_mm*{long_name}")
        html, page = self.report(model, "long_names.html", "--drift", data)
        measure = """<pre id="measured"></pre><script>
          const out = [];
          for (const svg of document.querySelectorAll("svg.bars")) {
            const firstBar = Math.min(...[...svg.querySelectorAll("rect.bar")].map(r => r.getBBox().x));
            for (const t of svg.querySelectorAll("text.bar-label")) {
              const b = t.getBBox();
              out.push({chart: svg.id, text: t.textContent, left: b.x, right: b.x + b.width, bars: firstBar});
            }
          }
          document.getElementById("measured").textContent = JSON.stringify(out);
        </script></body>"""
        path = self.path("long_names_measured.html")
        with open(path, "w", encoding="utf-8") as f:
            # The page's Content-Security-Policy forbids scripts: the copy leaves it out.
            f.write(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html).replace("</body>", measure))
        chromium = find_chromium()
        proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               f"--user-data-dir={self.path('chromium-profile-labels')}", "--window-size=1300,1100",
                               "--dump-dom", "file://" + path], capture_output=True, text=True, timeout=180)
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        measured = json.loads(html_lib.unescape(re.search(r'<pre id="measured">(.*?)</pre>', proc.stdout, re.S)[1]))
        self.assertEqual({m["chart"] for m in measured}, {"weights", "interactions", "drift-psi"})
        for m in measured:
            self.assertGreaterEqual(m["left"], 0, m)
            self.assertLessEqual(m["right"], m["bars"], m)
        # A label too long for the widest label column is shortened, and its tooltip keeps it whole.
        for svg_id in ("weights", "interactions", "drift-psi"):
            for t in page.ids[svg_id].find_all("text", "bar-label"):
                titles = t.find_all("title")
                if not t.text.endswith("…"):  # its own text, without the title's
                    self.assertEqual(titles, [])
                    continue
                full = titles[0].all_text()
                self.assertTrue(full.startswith(t.text[:-1]) and len(full) > len(t.text), (full, t.text))
        psi_labels = page.ids["drift-psi"].find_all("text", "bar-label")
        self.assertIn(long_name, [t.find_all("title")[0].all_text() for t in psi_labels if t.find_all("title")])
        self.assertIn("bill_length_mm", [t.text for t in psi_labels])

    def test_rendered_in_headless_chromium(self):
        chromium = find_chromium()
        path = self.path("render.html")
        run("report", self.binary_model, "--eval", self.telco, "--drift", self.telco_shifted, "--out", path,
            "--device", "cpu", "--quiet")
        profile = self.path("chromium-profile")
        common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                  f"--user-data-dir={profile}", "--window-size=1300,1100"]
        proc = subprocess.run([*common, "--dump-dom", "file://" + path], capture_output=True, text=True, timeout=180)
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        dom = parse(proc.stdout)
        for svg_id in ("learning-curve-loss", "learning-curve-metric", "roc", "pr", "calibration", "weights",
                       "interactions", "drift-psi"):
            self.assertIn(svg_id, dom.ids, f"{svg_id} missing from the rendered DOM")
            self.assertEqual(dom.ids[svg_id].tag, "svg")
        self.assertGreater(len(polyline_points(dom.ids["roc"].find_all("polyline", "series")[0])), 100)
        self.assertEqual(dom.root.find_all("script"), [])

        # The screenshot of the top of the page: the learning curves and the ROC curve are drawn in
        # the series colour.
        shot = self.path("render.png")
        proc = subprocess.run([*common, f"--screenshot={shot}", "file://" + path], capture_output=True, text=True,
                              timeout=180)
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        width, height, bpp, rows = png_pixels(shot)
        self.assertEqual((width, height), (1300, 1100))
        series = 0
        for line in rows:
            for i in range(0, len(line), bpp):
                if abs(line[i] - SERIES_RGB[0]) < 12 and abs(line[i + 1] - SERIES_RGB[1]) < 12 and \
                        abs(line[i + 2] - SERIES_RGB[2]) < 12:
                    series += 1
        self.assertGreater(series, 500, "no chart drawn in the series colour")


if __name__ == "__main__":
    unittest.main()
