#!/usr/bin/env python3
"""Lathe against its peers on categorical data: hashed crosses of categorical columns, one split.

    bench/peers/categorical_peers.py [--rows 1000000] [--epochs 5] [--lathe build/lathe] [--work DIR]
                                     [--skip PEER ...] [--json OUT] [--sweep-buckets 14,18,22]

Generates --rows rows of a binary task with 4 categorical columns (c0 and c1 with 200 labels each,
c2 with 1000, c3 with 50; labels such as "a17") and 6 numeric ones; the logit is linear numeric
terms + one effect per label of each categorical column + a planted effect for every (c0, c1) pair
of labels (a 200 x 200 table of N(0, 0.8): the pairs carry signal that no main effect explains) +
noise; seeded. Splits once (the last --test-fraction of the rows is the test set), writes both splits
as Lathe's columnar HDF5 with the categorical columns as int32 codes and their labels (checked with
`lathe inspect`), and fits, on the same training rows and the same epochs, scoring the same test rows:

  lathe-linear        lathe train (logistic; categorical slots)           reference of the linear peers
  lathe-cross         lathe train --cross c0*c1 --hash-buckets 2^18       reference of the crossed peers
  lathe-fm            lathe train --model fm --factors 8 (no explicit cross)
  sklearn-sgd         OneHotEncoder + StandardScaler (numeric) + SGDClassifier(log_loss), sparse
  sklearn-sgd-cross   the same plus FeatureHasher(2^18) of the "c0=..|c1=.." pair
  vw-linear           Vowpal Wabbit, one namespace per categorical column, --loss_function logistic -b 18
  vw-q                the same with -q ab (the c0 x c1 namespaces)
  xgboost             XGBClassifier(hist, 100 trees, depth 6, enable_categorical, pandas category dtype)

and, as a second table, lathe-cross at --sweep-buckets (log2 of --hash-buckets; default 14, 18, 22):
time per epoch and test AUC against the size of the hashed table (with lazy updates a step touches
only its batch's slots, so the epoch time should barely depend on it). --skip takes a peer's name or
its family (`lathe`, `sklearn`, `vw`, `xgboost`); `--skip lathe-buckets` leaves out the sweep.
Progress goes to stderr, the tables to stdout; --json writes the same figures with stable keys. See
bench/peers/README.md ("Categorical data") for what each time means.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Generic helpers of the numeric comparison: the machine header, metrics, checked commands, vw's command.
from run_peers import (REPO_ROOT, fmt, log, machine_facts, markdown_table, metrics, print_build_facts,  # noqa: E402
                       print_checks_and_failures, print_peer_table, run_checked, vw, write_json)

# name, labels, VW namespace (its first letter is what -q pairs), label prefix
CATEGORICAL = [("c0", 200, "a"), ("c1", 200, "b"), ("c2", 1000, "c"), ("c3", 50, "d")]
NUMERIC = 6
NUMERIC_NAMESPACE = "n"
LABEL_EFFECT_SD = 0.5
PAIR_EFFECT_SD = 0.8
LOGIT_NOISE_SD = 0.5
INTERCEPT = -0.3

LATHE_BATCH = 256
LATHE_FM_FACTORS = 8
CROSS = "c0*c1"
CROSS_BUCKETS_LOG2 = 18
VW_BITS = 18
SGD_ALPHA = 1e-4  # scikit-learn's default
HASHER_FEATURES_LOG2 = 18
XGB_TREES = 100
XGB_DEPTH = 6
XGB_LEARNING_RATE = 0.3

LATHE_RUNS = [("lathe-linear", "linear", []),
              ("lathe-cross", "crossed", ["--cross", CROSS, "--hash-buckets", str(2 ** CROSS_BUCKETS_LOG2)]),
              ("lathe-fm", "crossed", ["--model", "fm", "--factors", str(LATHE_FM_FACTORS)])]
PEERS = [name for name, _, _ in LATHE_RUNS] + ["sklearn-sgd", "sklearn-sgd-cross", "vw-linear", "vw-q", "xgboost"]
SWEEP = "lathe-buckets"
REFERENCE = {"linear": "lathe-linear", "crossed": "lathe-cross"}


def skipped(peer, skips):
    return any(peer == s or peer.split("-")[0] == s for s in skips)


# ---------------------------------------------------------------------------------------------- data

def column_labels(prefix, count):
    return [f"{prefix}{k}" for k in range(count)]


def make_data(rows, seed):
    """4 categorical columns (codes), 6 numeric ones and the 0/1 label, plus the ground truth.

    c0 and c1 are uniform over their 200 labels (so each of the 40,000 pairs has ~rows/40,000 rows);
    c2 and c3 are skewed (probability of label k proportional to 1 / (k + 20)). The logit is
    INTERCEPT + z.w + sum_j effect_j[c_j] + pair[c0, c1] + N(0, LOGIT_NOISE_SD), with x = mean + scale * z
    for the numeric columns, effect_j ~ N(0, LABEL_EFFECT_SD) per label and pair ~ N(0, PAIR_EFFECT_SD)."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(-5.0, 5.0, NUMERIC)
    scales = np.exp(rng.uniform(np.log(0.1), np.log(20.0), NUMERIC))
    weights = rng.normal(0.0, 0.4, NUMERIC)
    frequencies, effects = [], []
    for name, count, _ in CATEGORICAL:
        p = np.ones(count) if name in ("c0", "c1") else 1.0 / (np.arange(count) + 20.0)
        frequencies.append(p / p.sum())
        effects.append(rng.normal(0.0, LABEL_EFFECT_SD, count))
    pair = rng.normal(0.0, PAIR_EFFECT_SD, (CATEGORICAL[0][1], CATEGORICAL[1][1]))
    codes = np.empty((rows, len(CATEGORICAL)), np.int32)
    X = np.empty((rows, NUMERIC), np.float32)
    y = np.empty(rows, np.float32)
    logit_clean = np.empty(rows, np.float64)  # the true logit without the noise: the Bayes-optimal ranking
    pair_term = np.empty(rows, np.float64)
    block = 1 << 20
    for start in range(0, rows, block):
        n = min(block, rows - start)
        z = rng.standard_normal((n, NUMERIC))
        logit = INTERCEPT + z @ weights
        for j, (p, e) in enumerate(zip(frequencies, effects)):
            c = rng.choice(len(p), n, p=p).astype(np.int32)
            codes[start:start + n, j] = c
            logit += e[c]
        pt = pair[codes[start:start + n, 0], codes[start:start + n, 1]]
        logit += pt
        logit_clean[start:start + n] = logit
        pair_term[start:start + n] = pt
        logit = logit + rng.normal(0.0, LOGIT_NOISE_SD, n)
        y[start:start + n] = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
        X[start:start + n] = means + scales * z
    truth = {"intercept": INTERCEPT, "numeric_weights": weights.round(4).tolist(), "means": means.round(4).tolist(),
             "scales": scales.round(4).tolist(), "label_effect_sd": LABEL_EFFECT_SD, "pair_effect_sd": PAIR_EFFECT_SD,
             "logit_noise_sd": LOGIT_NOISE_SD,
             "labels": {name: count for name, count, _ in CATEGORICAL},
             "frequencies": {"c0": "uniform", "c1": "uniform", "c2": "1/(k+20)", "c3": "1/(k+20)"}}
    return codes, X, y, logit_clean, pair_term, truth


def numeric_names():
    return [f"x{j}" for j in range(NUMERIC)]


def write_columnar(path, codes, X, y):
    """Lathe's columnar layout: categorical columns as int32 codes with their labels in a `categories`
    attribute, numeric columns as float32, the label `y` a numeric 0/1 column, the order in the root
    group's `lathe_columns` attribute."""
    chunk = (min(65536, len(y)),)
    names = []
    with h5py.File(path, "w") as f:
        for j, (name, count, namespace) in enumerate(CATEGORICAL):
            d = f.create_dataset(name, data=np.ascontiguousarray(codes[:, j]), chunks=chunk)
            d.attrs["categories"] = column_labels(namespace, count)
            names.append(name)
        for j, name in enumerate(numeric_names()):
            f.create_dataset(name, data=np.ascontiguousarray(X[:, j]), chunks=chunk)
            names.append(name)
        f.create_dataset("y", data=y, chunks=chunk)
        f.attrs["lathe_columns"] = names + ["y"]


def check_columnar(lathe, path):
    """`lathe inspect --json`: every categorical column must come out categorical with its labels."""
    report = json.loads(run_checked([lathe, "inspect", path, "--json"], "lathe inspect").stdout)
    types = {c["name"]: (c["type"], c.get("categories")) for c in report["columns"]}
    for name, count, _ in CATEGORICAL:
        if types.get(name, (None,))[0] != "categorical" or types[name][1] != count:
            raise RuntimeError(f"lathe inspect {path}: column {name} is {types.get(name)}, "
                               f"expected categorical with {count} labels")
    for name in numeric_names() + ["y"]:
        if types.get(name, (None,))[0] != "numeric":
            raise RuntimeError(f"lathe inspect {path}: column {name} is {types.get(name)}, expected numeric")
    return {name: {"type": t, "categories": k} for name, (t, k) in types.items()}


def write_vw(path, codes, X, y, mean, std):
    """VW text, one namespace per categorical column (a, b, c, d: the label itself is the feature, e.g.
    `|a a17`) and one for the numeric columns (n), standardized with the training rows' mean and
    deviation as the other pipelines do; labels -1/+1."""
    labels = [np.array(column_labels(ns, count)) for _, count, ns in CATEGORICAL]
    head = ("%s " + " ".join(f"|{ns} %s" for _, _, ns in CATEGORICAL) + f" |{NUMERIC_NAMESPACE} "
            + " ".join(f"{j}:%.7g" for j in range(NUMERIC)) + "\n")
    with open(path, "w") as f:
        block = 65536
        for start in range(0, len(y), block):
            stop = min(start + block, len(y))
            target = np.where(y[start:stop] > 0.5, "1", "-1")
            cats = [labels[j][codes[start:stop, j]] for j in range(len(CATEGORICAL))]
            nums = ((X[start:stop] - mean) / std).tolist()
            f.write("".join(head % (t, *cs, *row) for t, cs, row in zip(target, zip(*cats), nums)))


# ---------------------------------------------------------------------------------------------- peers

def run_lathe(args, work, name, extra, train, test, yte, score_check=True):
    model = os.path.join(work, f"{name}.h5")
    metrics_log = os.path.join(work, f"{name}.jsonl")
    command = [args.lathe, "train", train, "--label", "y", "--task", "binary", "--out", model,
               "--epochs", str(args.epochs), "--batch", str(LATHE_BATCH), "--valid-fraction", "0",
               "--patience", "0", "--device", "cpu", "--metrics-log", metrics_log, "--quiet"] + extra
    env = dict(os.environ)
    if args.lathe_threads:
        env["OMP_NUM_THREADS"] = str(args.lathe_threads)
    t0 = time.perf_counter()
    run_checked(command, "lathe train", env)
    fit = time.perf_counter() - t0
    with open(metrics_log) as f:
        epochs = [json.loads(line)["seconds"] for line in f if line.strip()]
    evaluation = json.loads(run_checked([args.lathe, "eval", model, test, "--json", "--device", "cpu"],
                                        "lathe eval", env).stdout)
    check_auc = check_logloss = None
    if score_check:  # the same probabilities through sklearn.metrics, so Lathe's figures are the peers'
        scores = os.path.join(work, f"{name}_scores.h5")
        run_checked([args.lathe, "score", model, test, "--out", scores, "--device", "cpu", "--quiet"],
                    "lathe score", env)
        with h5py.File(scores) as f:
            check_auc, check_logloss = metrics(yte, f["probability"][:].astype(np.float64))
        os.remove(scores)
    model_bytes = os.path.getsize(model)
    os.remove(model)
    return {"fit_seconds": fit, "epoch_seconds": float(np.median(epochs)), "epoch_seconds_all": epochs,
            "train_seconds_sum_of_epochs": float(sum(epochs)), "model_bytes": model_bytes,
            "test_auc": float(evaluation["auc"]), "test_logloss": float(evaluation["logloss"]),
            "sklearn_check_auc": check_auc, "sklearn_check_logloss": check_logloss,
            "command": " ".join(["lathe"] + command[1:]).replace(work + os.sep, "")}


def pair_strings(codes):
    c0 = np.array(column_labels(CATEGORICAL[0][2], CATEGORICAL[0][1]), dtype=object)[codes[:, 0]]
    c1 = np.array(column_labels(CATEGORICAL[1][2], CATEGORICAL[1][1]), dtype=object)[codes[:, 1]]
    return [[f"c0={a}|c1={b}"] for a, b in zip(c0, c1)]


def sgd_design(codes, X, encoder, scaler, hasher, fit):
    """Sparse CSR: one-hot of the categorical codes, the standardized numeric columns, and with a hasher
    the hashed c0 x c1 pair."""
    import scipy.sparse as sp
    onehot = encoder.fit_transform(codes) if fit else encoder.transform(codes)
    numeric = scaler.fit_transform(X) if fit else scaler.transform(X)
    blocks = [onehot, sp.csr_matrix(numeric.astype(np.float64))]
    if hasher is not None:
        blocks.append(hasher.transform(pair_strings(codes)))
    return sp.hstack(blocks, format="csr", dtype=np.float64)


def run_sgd(args, codes_tr, Xtr, ytr, codes_te, Xte, yte, cross):
    from sklearn.feature_extraction import FeatureHasher
    from sklearn.linear_model import SGDClassifier
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=True, dtype=np.float64)
    scaler = StandardScaler()
    hasher = FeatureHasher(n_features=2 ** HASHER_FEATURES_LOG2, input_type="string") if cross else None
    t0 = time.perf_counter()
    design = sgd_design(codes_tr, Xtr, encoder, scaler, hasher, fit=True)
    t1 = time.perf_counter()
    clf = SGDClassifier(loss="log_loss", max_iter=args.epochs, tol=None, alpha=SGD_ALPHA, random_state=0)
    with warnings.catch_warnings():  # max_iter reached is the point, not a problem
        warnings.simplefilter("ignore")
        clf.fit(design, ytr)
    t2 = time.perf_counter()
    columns, nonzeros = design.shape[1], design.nnz
    del design
    auc, logloss = metrics(yte, clf.predict_proba(sgd_design(codes_te, Xte, encoder, scaler, hasher, fit=False))[:, 1])
    return {"fit_seconds": t2 - t0, "epoch_seconds": (t2 - t1) / args.epochs, "transform_seconds": t1 - t0,
            "columns": int(columns), "train_nonzeros": int(nonzeros), "test_auc": auc, "test_logloss": logloss}


def prepare_vw(work, codes_tr, Xtr, ytr, codes_te, Xte, yte):
    """Writes the VW text files and parses the training file into VW's cache once (a --noop run with the
    same -b), so that the training runs time their passes over the cache; both are reported."""
    train_txt, test_txt = os.path.join(work, "train.vw"), os.path.join(work, "test.vw")
    t0 = time.perf_counter()
    mean, std = Xtr.mean(axis=0, dtype=np.float64), Xtr.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    write_vw(train_txt, codes_tr, Xtr, ytr, mean, std)
    t1 = time.perf_counter()
    write_vw(test_txt, codes_te, Xte, yte, mean, std)
    t2 = time.perf_counter()
    run_checked(vw(["-d", train_txt, "-c", "-k", "--noop", "-b", str(VW_BITS), "--quiet"]), "vw cache")
    t3 = time.perf_counter()
    run_checked([sys.executable, "-c", "import vowpalwabbit"], "python -c 'import vowpalwabbit'")
    startup = time.perf_counter() - t3
    return {"train_txt": train_txt, "test_txt": test_txt, "write_train_text_seconds": t1 - t0,
            "write_test_text_seconds": t2 - t1, "parse_text_to_cache_seconds": t3 - t2,
            "text_bytes": os.path.getsize(train_txt), "cache_bytes": os.path.getsize(train_txt + ".cache"),
            "python_startup_seconds": startup}


def run_vw(args, work, files, quadratic, yte):
    name = "q" if quadratic else "linear"
    model, predictions = os.path.join(work, f"vw_{name}.model"), os.path.join(work, f"vw_{name}.preds")
    pairs = CATEGORICAL[0][2] + CATEGORICAL[1][2]  # "ab": the namespaces of c0 and c1
    # -c without -k: the cache written by prepare_vw is read (no text parsing in the timed run).
    command = (["-d", files["train_txt"], "-c", "--passes", str(args.epochs), "--holdout_off",
                "--loss_function", "logistic", "-b", str(VW_BITS), "-f", model, "--quiet"]
               + (["-q", pairs] if quadratic else []))
    t0 = time.perf_counter()
    run_checked(vw(command), "vw train")
    fit = time.perf_counter() - t0
    run_checked(vw(["-d", files["test_txt"], "-t", "-i", model, "-p", predictions, "--link", "logistic",
                    "--quiet"]), "vw predict")
    probability = np.loadtxt(predictions, usecols=0, ndmin=1)
    if len(probability) != len(yte):
        raise RuntimeError(f"vw wrote {len(probability)} predictions for {len(yte)} test rows")
    auc, logloss = metrics(yte, probability)
    for path in (model, predictions):
        os.remove(path)
    return {"fit_seconds": fit, "epoch_seconds": fit / args.epochs, "test_auc": auc, "test_logloss": logloss,
            "command": "vw " + " ".join(command).replace(work + os.sep, ""),
            "write_train_text_seconds": files["write_train_text_seconds"],
            "parse_text_to_cache_seconds": files["parse_text_to_cache_seconds"],
            "fit_plus_parse_seconds": fit + files["parse_text_to_cache_seconds"],
            "python_startup_seconds": files["python_startup_seconds"]}


def xgb_frame(codes, X):
    import pandas as pd
    frame = {}
    for j, (name, count, namespace) in enumerate(CATEGORICAL):
        frame[name] = pd.Categorical.from_codes(codes[:, j], categories=column_labels(namespace, count))
    for j, name in enumerate(numeric_names()):
        frame[name] = X[:, j]
    return pd.DataFrame(frame)


def run_xgboost(args, codes_tr, Xtr, ytr, codes_te, Xte, yte):
    from xgboost import XGBClassifier
    threads = os.cpu_count()
    train_frame, test_frame = xgb_frame(codes_tr, Xtr), xgb_frame(codes_te, Xte)
    clf = XGBClassifier(tree_method="hist", n_estimators=XGB_TREES, max_depth=XGB_DEPTH,
                        learning_rate=XGB_LEARNING_RATE, n_jobs=threads, objective="binary:logistic",
                        enable_categorical=True, random_state=0)
    t0 = time.perf_counter()
    clf.fit(train_frame, ytr)
    fit = time.perf_counter() - t0
    auc, logloss = metrics(yte, clf.predict_proba(test_frame)[:, 1])
    return {"fit_seconds": fit, "epoch_seconds": None, "seconds_per_tree": fit / XGB_TREES, "threads": threads,
            "max_cat_to_onehot": clf.get_xgb_params().get("max_cat_to_onehot"),
            "test_auc": auc, "test_logloss": logloss}


# ---------------------------------------------------------------------------------------------- report

def print_tables(facts, config, results, sweep):
    out = sys.stdout
    print(f"# Lathe against its peers on categorical data — {facts['date']}", file=out)
    print(f"machine: {facts['host']}, {facts['cores']} cores ({facts['cpu']}), {facts['memory_gib']} GiB, "
          f"GPU: {facts['gpu'] or 'none'} (CPU runs only), load average at start {facts['load_average_at_start']}, "
          f"at end {config['load_average_at_end']}", file=out)
    print_build_facts(facts, out)
    cats = ", ".join(f"{name} {count}" for name, count, _ in CATEGORICAL)
    print(f"data: {config['rows']:,} rows ({config['train_rows']:,} train, {config['test_rows']:,} test), "
          f"categorical columns with their labels: {cats}; {NUMERIC} numeric columns; a planted effect per "
          f"(c0, c1) pair (N(0, {PAIR_EFFECT_SD}), {config['train_pairs_seen']:,} pairs in the training rows); "
          f"seed {config['seed']}, positives {config['positive_rate']:.3f}; epochs {config['epochs']}; lathe threads "
          f"{config['lathe_threads'] or 'default (all cores)'}", file=out)
    print(f"ceiling on the test rows: the true logit without its noise (the Bayes-optimal ranking) has AUC "
          f"{config['oracle_test_auc']:.4f}; without the pair term, AUC {config['oracle_no_pair_test_auc']:.4f} "
          f"(about what a model without the c0 x c1 cross can reach)", file=out)
    print("", file=out)
    print_peer_table(results, out)
    print("", file=out)
    by_peer = {r["peer"]: r for r in results}
    print("fit s: lathe = the whole `lathe train` command (read HDF5, profile, prepare, all epochs, write the "
          "model); sklearn = one-hot + scaler (+ hasher) + SGD fit on arrays in memory; vw = the training command "
          "over its cache (text parsing excluded, see below); xgboost = fit() on a pandas frame in memory.", file=out)
    print("epoch s: lathe = median epoch of --metrics-log; sklearn = SGD fit / epochs (encoding excluded); "
          "vw = fit s / passes. rows/s = train rows / epoch s, or / fit s for xgboost. fit / ref and epoch / ref = "
          "the peer's seconds over its reference's (above 1: the reference, a Lathe run, is faster); linear peers "
          "against lathe-linear, crossed ones (and xgboost) against lathe-cross.", file=out)
    vw_row = by_peer.get("vw-linear") or by_peer.get("vw-q")
    if vw_row and "error" not in vw_row:
        print(f"vw preparation, not in fit s: writing the training text {vw_row['write_train_text_seconds']:.2f} s, "
              f"parsing it into the cache (--noop) {vw_row['parse_text_to_cache_seconds']:.2f} s; each vw command "
              f"also carries Python's start-up (~{vw_row['python_startup_seconds']:.2f} s, not subtracted).", file=out)
    sk_row = by_peer.get("sklearn-sgd-cross") or by_peer.get("sklearn-sgd")
    if sk_row and "error" not in sk_row:
        print(f"sklearn encoding, in fit s: {sk_row['peer']} {sk_row['transform_seconds']:.2f} s "
              f"({sk_row['columns']:,} sparse columns).", file=out)
    print_checks_and_failures(results + sweep, out)
    if not sweep:
        return
    print("", file=out)
    print(f"## lathe-cross against the size of the hashed table (--cross {CROSS} --hash-buckets B)", file=out)
    print("", file=out)
    header = ["buckets", "runs", "fit s", "epoch s", "epoch s (min)", f"epoch / 2^{CROSS_BUCKETS_LOG2}", "test AUC",
              "test logloss", "pairs sharing a bucket", "model MB"]
    rows = []
    for r in sweep:
        if "error" in r:
            rows.append([f"2^{r['buckets_log2']}", "failed"] + ["-"] * 8)
            continue
        rows.append([f"2^{r['buckets_log2']}", len(r["runs"]), fmt(r["fit_seconds"], ".2f"), fmt(r["epoch_seconds"], ".3f"),
                     fmt(r["epoch_seconds_min"], ".3f"), fmt(r.get("epoch_ratio"), ".2f"),
                     fmt(r["test_auc"], ".4f"), fmt(r["test_logloss"], ".4f"),
                     fmt(r["expected_pairs_sharing_a_bucket"], ".1%"), fmt(r["model_bytes"] / 1e6, ".1f")])
    markdown_table(header, rows, out)
    print("", file=out)
    print(f"Each size runs {config['sweep_runs']} times, the sizes taken in turn (so that a change of the machine's load "
          "falls on all of them); fit s = the median run, epoch s = the median of the runs' median epochs, epoch s (min) "
          f"= the fastest epoch of any run; epoch / 2^{CROSS_BUCKETS_LOG2} = epoch s over that of 2^{CROSS_BUCKETS_LOG2} "
          "buckets. Test AUC and log-loss: the first run (the runs agree to "
          f"{config['sweep_largest_auc_difference']:.1e} in AUC). Pairs sharing a bucket: the expected share of the "
          f"{config['train_pairs_seen']:,} (c0, c1) pairs of the training rows that share their bucket with another "
          "pair under a uniform hash, 1 - (1 - 1/B)^(pairs - 1).", file=out)


# ---------------------------------------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="rows generated, train and test together")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lathe", default=os.path.join(REPO_ROOT, "build", "lathe"))
    p.add_argument("--work", help="working folder (kept); default a temporary one, removed at the end")
    p.add_argument("--skip", action="append", default=[],
                   help="leave out a peer or a family (lathe, sklearn, vw, xgboost; lathe-buckets: the sweep)")
    p.add_argument("--json", help="write the figures here as JSON")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--sweep-buckets", default="14,18,22",
                   help="log2 of --hash-buckets for the lathe-cross sweep, comma separated (default 14,18,22)")
    p.add_argument("--sweep-runs", type=int, default=3, help="runs of each size in the sweep (default 3)")
    p.add_argument("--lathe-threads", type=int,
                   help="OMP_NUM_THREADS for the lathe commands (default: unset, Lathe uses every core)")
    args = p.parse_args()
    args.lathe = os.path.abspath(args.lathe)
    if not os.access(args.lathe, os.X_OK):
        p.error(f"no lathe executable at {args.lathe} (build it or pass --lathe)")
    families = {peer.split("-")[0] for peer in PEERS}
    for s in args.skip:
        if s not in PEERS + [SWEEP] and s not in families:
            p.error(f"--skip {s}: no such peer; peers: {', '.join(PEERS + [SWEEP])}; families: {', '.join(sorted(families))}")
    try:
        sweep_bits = [int(b) for b in args.sweep_buckets.split(",") if b.strip()]
    except ValueError:
        p.error(f"--sweep-buckets {args.sweep_buckets}: expected a comma-separated list of integers")
    if args.sweep_runs < 1:
        p.error("--sweep-runs must be at least 1")
    if any(b < 4 or b > 30 for b in sweep_bits):
        p.error("--sweep-buckets: each log2 must be between 4 and 30")

    facts = machine_facts(args.lathe)
    try:  # the full hash (run_peers prints the short one)
        facts["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                         text=True).stdout.strip() or facts["commit"]
    except OSError:
        pass
    try:
        import pandas
        facts["versions"]["pandas"] = pandas.__version__
    except ImportError:
        facts["versions"]["pandas"] = None
    work = args.work or tempfile.mkdtemp(prefix="lathe_catpeers_")
    os.makedirs(work, exist_ok=True)
    try:
        log(f"generating {args.rows:,} rows: {len(CATEGORICAL)} categorical + {NUMERIC} numeric columns (seed {args.seed})")
        codes, X, y, logit_clean, pair_term, truth = make_data(args.rows, args.seed)
        n_test = int(round(args.rows * args.test_fraction))
        n_train = args.rows - n_test
        codes_tr, codes_te = codes[:n_train], codes[n_train:]  # rows are i.i.d.: the last rows are the test set
        Xtr, Xte, ytr, yte = X[:n_train], X[n_train:], y[:n_train], y[n_train:]
        train, test = os.path.join(work, "train.h5"), os.path.join(work, "test.h5")
        t0 = time.perf_counter()
        write_columnar(train, codes_tr, Xtr, ytr)
        write_columnar(test, codes_te, Xte, yte)
        log(f"wrote {train} and {test} in {time.perf_counter() - t0:.1f} s")
        inspected = check_columnar(args.lathe, train)
        check_columnar(args.lathe, test)
        log("lathe inspect: " + ", ".join(f"{n} {v['type']}" + (f" ({v['categories']} labels)" if v["categories"] else "")
                                          for n, v in inspected.items()))
        pairs_seen = len(np.unique(codes_tr[:, 0].astype(np.int64) * CATEGORICAL[1][1] + codes_tr[:, 1]))
        from sklearn.metrics import roc_auc_score
        config = {"rows": args.rows, "train_rows": n_train, "test_rows": n_test,
                  "categorical": {name: count for name, count, _ in CATEGORICAL}, "numeric": NUMERIC,
                  "epochs": args.epochs, "seed": args.seed, "positive_rate": float(y.mean()), "truth": truth,
                  "train_pairs_seen": int(pairs_seen), "skipped": args.skip, "lathe_threads": args.lathe_threads,
                  "oracle_test_auc": float(roc_auc_score(yte, logit_clean[n_train:])),
                  "oracle_no_pair_test_auc": float(roc_auc_score(yte, (logit_clean - pair_term)[n_train:])),
                  "inspect": inspected}
        del logit_clean, pair_term

        results = []

        def record(peer, kind, run, settings, into=results, **extra):
            reference = REFERENCE.get(kind) if kind and peer != REFERENCE.get(kind) else None
            entry = {"peer": peer, "kind": kind, "reference": reference, "settings": settings, **extra}
            log(f"{peer}: running")
            try:
                entry.update(run())
            except Exception as e:  # one failing peer leaves the others' figures standing
                entry["error"] = str(e)
                log(f"{peer}: FAILED: {e}")
                into.append(entry)
                return entry
            per = entry["epoch_seconds"] or entry["fit_seconds"]
            entry["rows_per_second"] = n_train / per if per else None
            log(f"{peer}: fit {entry['fit_seconds']:.2f} s, epoch {fmt(entry['epoch_seconds'], '.3f')} s, "
                f"AUC {entry['test_auc']:.4f}, log-loss {entry['test_logloss']:.4f}")
            into.append(entry)
            return entry

        def wanted(peer):
            if skipped(peer, args.skip):
                log(f"{peer}: skipped")
                return False
            return True

        for name, kind, extra in LATHE_RUNS:
            if wanted(name):
                settings = (f"lathe train --device cpu --epochs {args.epochs} --batch {LATHE_BATCH} --valid-fraction 0 "
                            f"--patience 0 {' '.join(extra)} (adam, lr 0.01 with cosine decay, l2 1e-5, standard "
                            "scaling, lazy updates of the sparse slots: Lathe's defaults)").replace("  ", " ")
                record(name, kind, lambda name=name, extra=extra: run_lathe(args, work, name, extra, train, test, yte),
                       settings)
        for cross, peer in ((False, "sklearn-sgd"), (True, "sklearn-sgd-cross")):
            if wanted(peer):
                record(peer, "crossed" if cross else "linear",
                       lambda cross=cross: run_sgd(args, codes_tr, Xtr, ytr, codes_te, Xte, yte, cross),
                       "OneHotEncoder(handle_unknown='ignore', sparse_output=True) + StandardScaler (numeric) "
                       + (f"+ FeatureHasher(n_features=2^{HASHER_FEATURES_LOG2}, input_type='string') of "
                          "'c0=..|c1=..' " if cross else "")
                       + f"+ SGDClassifier(loss='log_loss', max_iter={args.epochs}, tol=None, alpha={SGD_ALPHA}, "
                       "random_state=0), CSR throughout")
        vw_peers = [peer for peer in ("vw-linear", "vw-q") if wanted(peer)]
        if vw_peers:
            log("vw: writing the text files and the cache")
            try:
                files = prepare_vw(work, codes_tr, Xtr, ytr, codes_te, Xte, yte)
            except Exception as e:
                files = {"error": str(e)}
            for peer in vw_peers:
                quadratic = peer == "vw-q"

                def run(quadratic=quadratic):
                    if "error" in files:
                        raise RuntimeError(files["error"])
                    return run_vw(args, work, files, quadratic, yte)
                record(peer, "crossed" if quadratic else "linear", run,
                       f"vw -c --passes {args.epochs} --holdout_off --loss_function logistic -b {VW_BITS}"
                       + (" -q ab" if quadratic else "") + " (namespaces a, b, c, d: c0..c3, n: numeric, "
                       "standardized; default -l 0.5, adaptive, normalized, invariant updates)")
        if wanted("xgboost"):
            record("xgboost", "crossed", lambda: run_xgboost(args, codes_tr, Xtr, ytr, codes_te, Xte, yte),
                   f"XGBClassifier(tree_method='hist', n_estimators={XGB_TREES}, max_depth={XGB_DEPTH}, "
                   f"learning_rate={XGB_LEARNING_RATE}, enable_categorical=True, n_jobs={os.cpu_count()}) on a "
                   "pandas frame with category columns")

        by_peer = {r["peer"]: r for r in results if "error" not in r}
        for r in results:
            ref = by_peer.get(r["reference"]) if r["reference"] else None
            ok = ref is not None and "error" not in r
            r["fit_ratio"] = r["fit_seconds"] / ref["fit_seconds"] if ok else None
            r["epoch_ratio"] = (r["epoch_seconds"] / ref["epoch_seconds"]
                                if ok and r.get("epoch_seconds") and ref.get("epoch_seconds") else None)
            if r["reference"] and ref is None:
                r["reference"] += " (not run)"

        sweep = []
        if sweep_bits and wanted(SWEEP):
            runs = {bits: [] for bits in sweep_bits}
            for round_ in range(args.sweep_runs):  # the sizes in turn, so that a change of load hits them all
                for bits in sweep_bits:
                    extra = ["--cross", CROSS, "--hash-buckets", str(2 ** bits)]
                    record(f"lathe-cross-2^{bits}", None,
                           lambda extra=extra, bits=bits, first=round_ == 0:
                           run_lathe(args, work, f"lathe-cross-b{bits}", extra, train, test, yte, score_check=first),
                           f"as lathe-cross with --hash-buckets {2 ** bits} (run {round_ + 1})", into=runs[bits])
            auc_spread = 0.0
            for bits in sweep_bits:
                done = [r for r in runs[bits] if "error" not in r]
                entry = {"peer": f"lathe-cross-2^{bits}", "buckets_log2": bits, "hash_buckets": 2 ** bits,
                         "settings": f"as lathe-cross with --hash-buckets {2 ** bits}",
                         "expected_pairs_sharing_a_bucket": 1.0 - (1.0 - 2.0 ** -bits) ** (pairs_seen - 1),
                         "runs": runs[bits]}
                if not done:
                    entry["error"] = runs[bits][0]["error"] if runs[bits] else "not run"
                    sweep.append(entry)
                    continue
                first = done[0]
                auc_spread = max([auc_spread] + [abs(r["test_auc"] - first["test_auc"]) for r in done])
                entry.update({"fit_seconds": float(np.median([r["fit_seconds"] for r in done])),
                              "epoch_seconds": float(np.median([r["epoch_seconds"] for r in done])),
                              "epoch_seconds_min": float(min(min(r["epoch_seconds_all"]) for r in done)),
                              "test_auc": first["test_auc"], "test_logloss": first["test_logloss"],
                              "sklearn_check_auc": first["sklearn_check_auc"],
                              "sklearn_check_logloss": first["sklearn_check_logloss"],
                              "model_bytes": first["model_bytes"]})
                sweep.append(entry)
            base = next((r for r in sweep if r["buckets_log2"] == CROSS_BUCKETS_LOG2 and "error" not in r), None)
            for r in sweep:
                r["epoch_ratio"] = (r["epoch_seconds"] / base["epoch_seconds"] if base and "error" not in r else None)
            config["sweep_runs"] = args.sweep_runs
            config["sweep_largest_auc_difference"] = auc_spread

        config["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
        print_tables(facts, config, results, sweep)
        if args.json:
            write_json(args.json, {"machine": facts, "config": config, "results": results, "bucket_sweep": sweep})
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
