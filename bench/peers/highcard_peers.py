#!/usr/bin/env python3
"""Lathe against Vowpal Wabbit on Criteo-like high-cardinality data: whole commands, wall clock and peak RSS.

    bench/peers/highcard_peers.py [--rows 2000000] [--seed 7] [--epochs 1] [--lathe build/lathe] [--work DIR]
                                  [--keep-data] [--skip PEER ...] [--with vw-lrq] [--json OUT]

Generates --rows rows of a Criteo-like binary task (the generator of the session-14 study, ported
unchanged: the same --rows and --seed give the same data): 13 lognormal numeric columns I1..I13
(float32, some missing as NaN), 26 categorical columns C1..C26 of variable-length UTF-8 strings
(Zipf-like label frequencies, 3 to 2M labels per column), an int32 label y (~25% positives) from a
logistic model with per-label effects, numeric effects and two planted interactions. The last
--test-fraction of the rows is the test set. Both splits are written as Lathe's columnar HDF5 (one
dataset per column at the root, the strings as h5py.string_dtype()) and, from those files, as VW
text (`1 |n I1:v ... |c 01xxxxxxxx 02xxxxxxxx ...`, NaN omitted); writing them is preparation, not
timed, and is skipped when --work already holds the files of the same rows, seed and test fraction
(a stamp file says so). Then each peer runs as whole commands, each timed by wall clock, with the
peak RSS of the command's process (os.wait4, the command started by a bare Python launcher):

  lathe-linear   lathe train train.h5 --label y --task binary --epochs E ... ; lathe score   reference
  lathe-fm       the same with --model fm (Lathe's defaults choose the lr of an fm with hashed columns)
  vw-linear      python -m vowpalwabbit -d train.vw --loss_function logistic -b 22 --passes E -f model;
                 -t -i model -d test.vw -p preds --link logistic
  vw-lrq         the same with --lrq cc4 --lrqdropout (rank-4 low-rank quadratic of the namespace c with
                 itself); left out unless --with vw-lrq (over 10 times slower than vw-linear)

Test AUC and log-loss come from sklearn.metrics on each peer's test probabilities (`lathe score`'s
`probability`, VW's predictions). --skip takes a peer's name or its family (`lathe`, `vw`). Progress
goes to stderr, the table to stdout; --json writes the same figures with stable keys. See
bench/peers/README.md ("High-cardinality data") for what each time includes.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Generic helpers of the numeric comparison: the machine header, metrics, checked commands, vw's command.
from run_peers import (REPO_ROOT, fmt, log, machine_facts, markdown_table, metrics, print_build_facts,  # noqa: E402
                       run_checked, vw, write_json)

# ---------------------------------------------------------------------------------------------- the generator
# Ported from the session-14 study's gen_criteo.py: keep the model and the order of the random draws
# as they are, so that a seed and a row count give the data (and the figures) of that study.

# (labels, zipf exponent, number of frequent labels carrying an effect, effect sd)
CATS = [
    (3, 0.5, 3, 0.3), (4, 0.5, 4, 0.0), (8, 1.0, 8, 0.0), (12, 1.0, 0, 0.0), (30, 1.0, 30, 0.3),
    (100, 1.1, 0, 0.0), (300, 1.1, 300, 0.3), (1000, 1.1, 0, 0.0), (3000, 1.1, 0, 0.0), (10000, 1.1, 2000, 0.4),
    (25000, 1.05, 0, 0.0), (50000, 1.05, 10000, 0.5), (100000, 1.0, 20000, 0.5), (150000, 1.0, 0, 0.0),
    (200000, 0.95, 30000, 0.5), (300000, 0.95, 0, 0.0), (500000, 0.9, 50000, 0.4), (800000, 0.9, 0, 0.0),
    (1000000, 0.8, 0, 0.0), (1500000, 0.6, 0, 0.0), (2000000, 0.3, 0, 0.0), (2000000, 0.2, 0, 0.0),
    (20, 0.8, 0, 0.0), (60, 0.9, 0, 0.0), (5000, 1.2, 0, 0.0), (400000, 1.0, 40000, 0.4),
]
NUM_SIGMA = [0.5, 1.0, 1.5, 2.0, 1.0, 0.8, 2.5, 1.2, 0.6, 1.8, 1.0, 2.0, 0.7]
NUM_MISSING = [0.0, 0.3, 0.0, 0.1, 0.0, 0.4, 0.0, 0.05, 0.0, 0.2, 0.0, 0.6, 0.0]
NUM_EFFECT = [0.5, -0.4, 0.3, 0.0, 0.25, 0.0, -0.2, 0.0, 0.15, 0.0, 0.0, 0.1, 0.0]
NUMERIC_COLUMNS = [f"I{j + 1}" for j in range(len(NUM_SIGMA))]
CATEGORICAL_COLUMNS = [f"C{j + 1}" for j in range(len(CATS))]
POSITIVE_RATE = 0.25
DATA_FORMAT = 1  # bump when the files written change (the stamp then no longer matches)

VW_BITS = 22
VW_LRQ = ["--lrq", "cc4", "--lrqdropout"]  # dropout: the way VW's lrq demo runs it

PEERS = ["lathe-linear", "lathe-fm", "vw-linear", "vw-lrq"]
OPT_IN = {"vw-lrq"}  # run only with --with
REFERENCE = "lathe-linear"
# Every result has these keys (None where a peer failed or the key is not its: lathe_train_summary is Lathe's).
RESULT_KEYS = ["fit_seconds", "fit_peak_rss_bytes", "test_seconds", "test_peak_rss_bytes", "test_auc", "test_logloss",
               "model_bytes", "train_command", "test_command", "lathe_train_summary", "fit_ratio", "error"]


def zipf_codes(rng, n, k, a):
    p = (np.arange(1, k + 1, dtype=np.float64)) ** (-a)
    p /= p.sum()
    return np.searchsorted(np.cumsum(p), rng.random(n), side="right").clip(0, k - 1)


def generate_criteo(rows, seed, test_fraction, train_path, test_path):
    """Writes the two splits as columnar HDF5 (I1..I13 float32, C1..C26 variable-length strings, y int32,
    one contiguous dataset per column at the root) and returns facts about them: the positive rate, the
    labels seen per column and the test AUC and log-loss of the true probabilities (the Bayes ceiling).

    Numeric column j: g ~ N(0, 1), x = exp(NUM_SIGMA[j] g) (lognormal), NaN with probability
    NUM_MISSING[j]; it adds NUM_EFFECT[j] g to the logit. Categorical column j: codes drawn with
    probability proportional to rank^-a over its k labels, the first `neff` (the frequent ones) with an
    effect N(0, sd); each label's name is the column number and a random hex number (`07000001a3`), so
    a name says nothing about its frequency and names never repeat across columns. Plus 0.6 g1 g2 (I1 x
    I2 on the log scale) and a full-rank N(0, 0.8) table over the (C1, C2) pairs; the intercept is set by
    bisection for 25% positives; y ~ Bernoulli(sigmoid(logit))."""
    rng = np.random.default_rng(seed)
    n = rows
    ntest = int(n * test_fraction)
    ntrain = n - ntest
    t0 = time.time()
    labels_seen = {}
    with h5py.File(train_path, "w") as ftr, h5py.File(test_path, "w") as fte:
        logit = np.zeros(n)
        z = {}
        for j, (sigma, miss, eff) in enumerate(zip(NUM_SIGMA, NUM_MISSING, NUM_EFFECT)):
            g = rng.standard_normal(n)
            x = np.exp(sigma * g).astype(np.float32)
            logit += eff * g
            z[j] = g
            m = rng.random(n) < miss
            x[m] = np.nan
            ftr.create_dataset(f"I{j + 1}", data=x[:ntrain])
            fte.create_dataset(f"I{j + 1}", data=x[ntrain:])
        logit += 0.6 * z[0] * z[1]  # planted numeric interaction I1*I2 (on the log scale)
        del z
        sdt = h5py.string_dtype()
        codes_c1 = codes_c2 = None
        for j, (k, expo, neff, sd) in enumerate(CATS):
            codes = zipf_codes(rng, n, k, expo)
            if neff and sd:
                w = np.zeros(k)
                w[:neff] = rng.normal(0, sd, neff)
                logit += w[codes]
            if j == 0:
                codes_c1 = codes
            if j == 1:
                codes_c2 = codes
            perm = rng.permutation(k)  # label names unrelated to frequency rank
            names = np.array([f"{j + 1:02d}{v:08x}" for v in perm], dtype=object)
            s = names[codes]
            ftr.create_dataset(f"C{j + 1}", data=s[:ntrain], dtype=sdt)
            fte.create_dataset(f"C{j + 1}", data=s[ntrain:], dtype=sdt)
            del s, names
            labels_seen[f"C{j + 1}"] = {"labels": k, "seen_in_train": int(len(np.unique(codes[:ntrain])))}
            log(f"C{j + 1}: {k:,} labels, {labels_seen[f'C{j + 1}']['seen_in_train']:,} seen in train, "
                f"{time.time() - t0:.0f} s")
        inter = rng.normal(0, 0.8, (CATS[0][0], CATS[1][0]))  # planted C1 x C2 interaction
        logit += inter[codes_c1, codes_c2]
        lo, hi = -20.0, 20.0
        for _ in range(60):
            b = (lo + hi) / 2
            if np.mean(1 / (1 + np.exp(-(logit + b)))) > POSITIVE_RATE:
                hi = b
            else:
                lo = b
        prob = 1 / (1 + np.exp(-(logit + b)))
        y = (rng.random(n) < prob).astype(np.int32)
        ftr.create_dataset("y", data=y[:ntrain])
        fte.create_dataset("y", data=y[ntrain:])
    bayes_auc, bayes_logloss = metrics(y[ntrain:], prob[ntrain:])
    return {"train_rows": ntrain, "test_rows": ntest, "positive_rate": float(y.mean()),
            "intercept": float(b), "bayes_test_auc": bayes_auc, "bayes_test_logloss": bayes_logloss,
            "categorical": labels_seen}


def write_vw(h5_path, vw_path, block=65536):
    """VW text from a columnar file: `1 |n I1:0.53 I3:2.1 ... |c 0100000002 02000001 ...`, label 1/-1,
    the numeric columns by name with their raw values (NaN omitted), the 26 labels as the features of
    the one namespace c (a label's name begins with its column number, so the columns' labels never
    coincide)."""
    with h5py.File(h5_path) as f, open(vw_path, "w") as out:
        rows = len(f["y"])
        for start in range(0, rows, block):
            stop = min(start + block, rows)
            y = f["y"][start:stop]
            numeric = [f[name][start:stop].astype(np.float64).tolist() for name in NUMERIC_COLUMNS]
            cats = [f[name].asstr()[start:stop] for name in CATEGORICAL_COLUMNS]
            lines = []
            for i in range(stop - start):
                num = " ".join(f"{name}:{col[i]:.7g}" for name, col in zip(NUMERIC_COLUMNS, numeric)
                               if col[i] == col[i])
                lines.append(f"{'1' if y[i] > 0 else '-1'} |n {num} |c {' '.join(c[i] for c in cats)}\n")
            out.write("".join(lines))


def prepare_data(args, work):
    """The HDF5 and VW files in `work`, written unless a stamp there says they are those of the same rows,
    seed and test fraction. Returns the paths, the generator's facts and the preparation times."""
    paths = {k: os.path.join(work, v) for k, v in
             (("train", "train.h5"), ("test", "test.h5"), ("train_vw", "train.vw"), ("test_vw", "test.vw"))}
    stamp_path = os.path.join(work, "highcard_stamp.json")
    want = {"rows": args.rows, "seed": args.seed, "test_fraction": args.test_fraction, "format": DATA_FORMAT}
    try:
        with open(stamp_path) as f:
            stamp = json.load(f)
        if stamp.get("key") == want and all(os.path.exists(p) for p in paths.values()):
            log(f"reusing the data in {work} (stamp {stamp_path})")
            return paths, stamp["facts"], dict(stamp["preparation"], reused=True)
    except (OSError, ValueError, KeyError):
        pass
    if os.path.exists(stamp_path):
        os.remove(stamp_path)
    log(f"generating {args.rows:,} rows: {len(NUMERIC_COLUMNS)} numeric + {len(CATEGORICAL_COLUMNS)} string "
        f"columns (seed {args.seed})")
    t0 = time.perf_counter()
    facts = generate_criteo(args.rows, args.seed, args.test_fraction, paths["train"], paths["test"])
    t1 = time.perf_counter()
    log(f"wrote {paths['train']} and {paths['test']} in {t1 - t0:.1f} s; writing the VW text")
    write_vw(paths["train"], paths["train_vw"])
    write_vw(paths["test"], paths["test_vw"])
    t2 = time.perf_counter()
    log(f"wrote {paths['train_vw']} and {paths['test_vw']} in {t2 - t1:.1f} s")
    preparation = {"generate_and_write_hdf5_seconds": t1 - t0, "write_vw_text_seconds": t2 - t1,
                   "bytes": {k: os.path.getsize(p) for k, p in paths.items()}}
    with open(stamp_path, "w") as f:
        json.dump({"key": want, "facts": facts, "preparation": preparation}, f, indent=2)
    return paths, facts, dict(preparation, reused=False)


# ---------------------------------------------------------------------------------------------- peers

# The measured command is started by a bare Python process (no imports beyond os and sys), not by this
# one: Linux counts in a process's ru_maxrss the resident set of the memory it replaced at exec (with
# fork or vfork alike, the parent's), so a child of this script, which holds the data's arrays and
# numpy, sklearn and h5py, would report at least this script's peak. The launcher's own few MB are the
# floor of the figure (measured once with `true` and reported).
LAUNCHER = """import os, sys, time
t0 = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - t0
with open(sys.argv[1], "w") as f:
    f.write("%d %r %d" % (os.waitstatus_to_exitcode(status), seconds, usage.ru_maxrss))
"""


def run_measured(command, what, env=None):
    """Runs a command to its end; returns (wall seconds, peak RSS in bytes, stdout). The launcher (above)
    spawns the command, times it from spawn to exit and takes its ru_maxrss from os.wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".measure") as measure:
        subprocess.run([sys.executable, "-S", "-c", LAUNCHER, measure.name] + list(command), stdout=out, stderr=err,
                       env=env, check=False)
        text = measure.read().split()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if len(text) != 3:
        raise RuntimeError(f"{what}: could not start {command[0]}\n{stderr[-2000:]}")
    returncode, seconds, maxrss_kib = int(text[0]), float(text[1]), int(text[2])
    if returncode != 0:
        lines = [line for line in stderr.splitlines() if line.strip()]
        raise RuntimeError(f"{what} failed (exit {returncode}): {lines[-1] if lines else 'no message'}\n"
                           f"command: {' '.join(command)}\n{stderr[-2000:]}")
    return seconds, maxrss_kib * 1024, stdout


def shown(command, work):
    return " ".join(command).replace(work + os.sep, "")


def lathe_train_command(args, model, train, extra):
    return ([args.lathe, "train", train, "--label", "y", "--task", "binary", "--out", model,
             "--epochs", str(args.epochs), "--valid-fraction", "0", "--patience", "0", "--device", args.device,
             "--quiet"] + extra)


def run_lathe(args, work, name, extra, paths, yte):
    model, scores = os.path.join(work, f"{name}.h5"), os.path.join(work, f"{name}_scores.h5")
    train_command = lathe_train_command(args, model, paths["train"], extra)
    score_command = [args.lathe, "score", model, paths["test"], "--out", scores, "--device", args.device, "--quiet"]
    try:
        fit, fit_rss, summary = run_measured(train_command, "lathe train")
        test, test_rss, _ = run_measured(score_command, "lathe score")
        with h5py.File(scores) as f:
            probability = f["probability"][:].astype(np.float64)
        model_bytes = os.path.getsize(model)
    finally:
        for path in (model, scores):
            if os.path.exists(path):
                os.remove(path)
    if len(probability) != len(yte):
        raise RuntimeError(f"lathe score wrote {len(probability)} probabilities for {len(yte)} test rows")
    auc, logloss = metrics(yte, probability)
    try:
        summary = json.loads(summary)
    except ValueError:
        summary = None
    return {"fit_seconds": fit, "fit_peak_rss_bytes": fit_rss, "test_seconds": test, "test_peak_rss_bytes": test_rss,
            "test_auc": auc, "test_logloss": logloss, "model_bytes": model_bytes,
            "train_command": "lathe" + shown(train_command, work)[len(args.lathe):],
            "test_command": "lathe" + shown(score_command, work)[len(args.lathe):],
            "lathe_train_summary": summary}


def vw_train_command(args, model, train_vw, extra):
    # One pass reads the text once (no cache); more passes need the cache (-c; -k: rebuild it from the text
    # in this command, so parsing is timed as it is for one pass) and the holdout off (Lathe: --valid-fraction 0).
    passes = ["--passes", str(args.epochs)] + (["-c", "-k", "--holdout_off"] if args.epochs > 1 else [])
    return (["-d", train_vw, "--loss_function", "logistic", "-b", str(VW_BITS)] + passes
            + ["-f", model, "--quiet"] + extra)


def run_vw(args, work, name, extra, paths, yte):
    model, predictions = os.path.join(work, f"{name}.model"), os.path.join(work, f"{name}.preds")
    train_command = vw(vw_train_command(args, model, paths["train_vw"], extra))
    test_command = vw(["-d", paths["test_vw"], "-t", "-i", model, "-p", predictions, "--link", "logistic", "--quiet"])
    try:
        fit, fit_rss, _ = run_measured(train_command, "vw train")
        test, test_rss, _ = run_measured(test_command, "vw predict")
        probability = np.loadtxt(predictions, usecols=0, ndmin=1)
        model_bytes = os.path.getsize(model)
    finally:
        for path in (model, predictions, paths["train_vw"] + ".cache"):
            if os.path.exists(path):
                os.remove(path)
    if len(probability) != len(yte):
        raise RuntimeError(f"vw wrote {len(probability)} predictions for {len(yte)} test rows")
    auc, logloss = metrics(yte, probability)
    strip = len(sys.executable) + 1
    return {"fit_seconds": fit, "fit_peak_rss_bytes": fit_rss, "test_seconds": test, "test_peak_rss_bytes": test_rss,
            "test_auc": auc, "test_logloss": logloss, "model_bytes": model_bytes,
            "train_command": "python " + shown(train_command, work)[strip:],
            "test_command": "python " + shown(test_command, work)[strip:]}


def python_startup_seconds():
    """What `python -m vowpalwabbit` pays before VW starts: the interpreter and the import."""
    t0 = time.perf_counter()
    run_checked([sys.executable, "-c", "import vowpalwabbit"], "python -c 'import vowpalwabbit'")
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- report

def print_table(facts, config, results):
    out = sys.stdout
    print(f"# Lathe against Vowpal Wabbit on high-cardinality data — {facts['date']}", file=out)
    print(f"machine: {facts['host']}, {facts['cores']} cores ({facts['cpu']}), {facts['memory_gib']} GiB, "
          f"GPU: {facts['gpu'] or 'none'} (lathe --device {config['lathe_device']}), load average at start "
          f"{facts['load_average_at_start']}, at end {config['load_average_at_end']}", file=out)
    print_build_facts(facts, out)
    data = config["data"]
    big = sum(1 for c in data["categorical"].values() if c["labels"] > 10000)
    print(f"data: {config['rows']:,} rows ({data['train_rows']:,} train, {data['test_rows']:,} test), "
          f"{len(NUMERIC_COLUMNS)} lognormal numeric columns (some NaN), {len(CATEGORICAL_COLUMNS)} string columns "
          f"(3 to 2,000,000 labels, {big} with more than 10,000; "
          f"{sum(c['seen_in_train'] for c in data['categorical'].values()):,} labels seen in the training rows), "
          f"seed {config['seed']}, positives {data['positive_rate']:.3f}; epochs {config['epochs']}", file=out)
    print(f"ceiling: the true probabilities on the test rows have AUC {data['bayes_test_auc']:.4f}, log-loss "
          f"{data['bayes_test_logloss']:.4f}", file=out)
    print("", file=out)
    header = ["peer", "fit s", "test s", "peak RSS MB", "test AUC", "test logloss", "fit / lathe-linear"]
    rows = []
    for r in results:
        if r["error"]:
            rows.append([r["peer"], "failed"] + ["-"] * 5)
            continue
        rows.append([r["peer"], fmt(r["fit_seconds"], ".2f"), fmt(r["test_seconds"], ".2f"),
                     fmt(r["fit_peak_rss_bytes"] / 1e6, ".0f"), fmt(r["test_auc"], ".4f"),
                     fmt(r["test_logloss"], ".4f"), fmt(r["fit_ratio"], ".2f")])
    markdown_table(header, rows, out)
    print("", file=out)
    print("fit s: the wall time of the whole training command — lathe train from the HDF5 file (start, read, "
          "profile, prepare, every epoch, write the model); python -m vowpalwabbit from the text file (start, "
          "import, parse, every pass, write the model). test s: the whole scoring command (lathe score from the "
          "HDF5 test file to its HDF5 output; vw -t from the test text to its predictions file). peak RSS: the "
          "training command's, ru_maxrss from os.wait4 (started by a bare Python launcher: `true` reads "
          f"{config['peak_rss_floor_bytes'] / 1e6:.0f} MB). fit / lathe-linear above 1: Lathe is faster.", file=out)
    prep = config["preparation"]
    print(f"not timed: generating the data and writing the HDF5 files ({prep['generate_and_write_hdf5_seconds']:.1f} s), "
          f"writing the VW text ({prep['write_vw_text_seconds']:.1f} s; train.vw {prep['bytes']['train_vw'] / 1e6:.0f} MB "
          f"against train.h5 {prep['bytes']['train'] / 1e6:.0f} MB)"
          + (", reused from an earlier run" if prep["reused"] else "")
          + (f"; each vw command carries Python's start-up and import (~{config['python_startup_seconds']:.2f} s, "
             "not subtracted)" if config.get("python_startup_seconds") else "") + ".", file=out)
    for r in results:
        if r["error"]:
            print(f"{r['peer']} failed: {r['error'].splitlines()[0]}", file=out)


# ---------------------------------------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=2_000_000, help="rows generated, train and test together")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--epochs", type=int, default=1, help="Lathe's --epochs and VW's --passes (default 1)")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--lathe", default=os.path.join(REPO_ROOT, "build", "lathe"))
    p.add_argument("--device", default="cpu", help="lathe's --device (default cpu, as VW)")
    p.add_argument("--work", help="working folder, kept with its data (reused by a later run of the same rows, "
                                  "seed and test fraction); default a temporary one, removed at the end")
    p.add_argument("--keep-data", action="store_true", help="keep the temporary working folder (without --work)")
    p.add_argument("--skip", nargs="+", action="extend", default=[], metavar="PEER",
                   help="leave out peers or families (lathe, vw)")
    p.add_argument("--with", dest="with_", nargs="+", action="extend", default=[], metavar="PEER",
                   help=f"add peers left out by default ({', '.join(sorted(OPT_IN))})")
    p.add_argument("--json", help="write the figures here as JSON")
    args = p.parse_args()
    args.lathe = os.path.abspath(args.lathe)
    if not os.access(args.lathe, os.X_OK):
        p.error(f"no lathe executable at {args.lathe} (build it or pass --lathe)")
    if args.epochs < 1:
        p.error("--epochs must be at least 1")
    if not 0 < args.test_fraction < 1 or int(args.rows * args.test_fraction) < 1:
        p.error("--test-fraction must leave rows in both splits")
    families = {peer.split("-")[0] for peer in PEERS}
    for s in args.skip:
        if s not in PEERS and s not in families:
            p.error(f"--skip {s}: no such peer; peers: {', '.join(PEERS)}; families: {', '.join(sorted(families))}")
    for s in args.with_:
        if s not in OPT_IN:
            p.error(f"--with {s}: only {', '.join(sorted(OPT_IN))} is left out by default")

    def wanted(peer):
        if peer in OPT_IN and peer not in args.with_:
            return False
        return not any(peer == s or peer.split("-")[0] == s for s in args.skip)

    facts = machine_facts(args.lathe)
    try:  # the full hash (run_peers prints the short one)
        facts["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                         text=True).stdout.strip() or facts["commit"]
    except OSError:
        pass
    work = os.path.abspath(args.work) if args.work else tempfile.mkdtemp(prefix="lathe_highcard_")
    os.makedirs(work, exist_ok=True)
    try:
        paths, data, preparation = prepare_data(args, work)
        with h5py.File(paths["test"]) as f:
            yte = f["y"][:]
        config = {"rows": args.rows, "seed": args.seed, "epochs": args.epochs, "test_fraction": args.test_fraction,
                  "lathe_device": args.device, "vw_bits": VW_BITS, "data": data, "preparation": preparation,
                  "skipped": args.skip, "with": args.with_,
                  "peers_run": [peer for peer in PEERS if wanted(peer)]}
        runs = [("lathe-linear", lambda: run_lathe(args, work, "lathe-linear", [], paths, yte),
                 "lathe train --valid-fraction 0 --patience 0 (Adam, lr 0.01 with a cosine decay, l2 1e-5, "
                 "batch 256, standard scaling, mean imputation; string columns of more than --max-categories "
                 "10000 labels hashed into per-column buckets: Lathe's defaults)"),
                ("lathe-fm", lambda: run_lathe(args, work, "lathe-fm", ["--model", "fm"], paths, yte),
                 "as lathe-linear with --model fm (8 factors; lr 0.003 by default with hashed columns)"),
                ("vw-linear", lambda: run_vw(args, work, "vw-linear", [], paths, yte),
                 f"--loss_function logistic -b {VW_BITS} (-l 0.5, adaptive, normalized, invariant updates: "
                 "VW's defaults); numeric values raw"),
                ("vw-lrq", lambda: run_vw(args, work, "vw-lrq", VW_LRQ, paths, yte),
                 f"as vw-linear with {' '.join(VW_LRQ)} (rank-4 low-rank quadratic of namespace c with itself)")]
        config["peak_rss_floor_bytes"] = run_measured(["true"], "true")[1]  # the launcher's share of every figure
        results = []
        for peer, run, settings in runs:
            if not wanted(peer):
                log(f"{peer}: left out")
                continue
            entry = {"peer": peer, "settings": settings, **{key: None for key in RESULT_KEYS}}
            log(f"{peer}: running")
            try:
                entry.update(run())
                log(f"{peer}: fit {entry['fit_seconds']:.2f} s, test {entry['test_seconds']:.2f} s, peak RSS "
                    f"{entry['fit_peak_rss_bytes'] / 1e6:.0f} MB, AUC {entry['test_auc']:.4f}, "
                    f"log-loss {entry['test_logloss']:.4f}")
            except Exception as e:  # one failing peer leaves the others' figures standing
                entry["error"] = str(e)
                log(f"{peer}: FAILED: {e}")
            results.append(entry)
        if any(r["peer"].startswith("vw-") for r in results):
            config["python_startup_seconds"] = python_startup_seconds()
        reference = next((r for r in results if r["peer"] == REFERENCE and not r["error"]), None)
        for r in results:
            r["fit_ratio"] = (r["fit_seconds"] / reference["fit_seconds"]
                              if reference is not None and not r["error"] else None)
        config["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
        print_table(facts, config, results)
        if args.json:
            write_json(args.json, {"machine": facts, "config": config, "results": results})
    finally:
        if not args.work and not args.keep_data:
            shutil.rmtree(work, ignore_errors=True)
        elif not args.work:
            log(f"kept {work}")


if __name__ == "__main__":
    main()
