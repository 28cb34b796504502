#!/usr/bin/env python3
"""Lathe against its peers: one synthetic binary task, one train/test split, the same epochs.

    bench/peers/run_peers.py [--rows 1000000] [--epochs 5] [--lathe build/lathe] [--work DIR]
                             [--skip PEER ...] [--json OUT]

Generates --rows rows (28 numeric features; a logit of linear terms plus a few planted pairwise
products plus noise; seeded), splits them once (the last --test-fraction of the rows is the test
set), writes both splits as Lathe's columnar HDF5 and keeps the numpy arrays for the peers. Then
fits, on the same training rows and scores on the same test rows:

  lathe-linear-{cpu,cuda}   lathe train (logistic)                       reference of the linear peers
  lathe-cross-{cpu,cuda}    lathe train --cross all (every pair)         reference of the crossed peers
  lathe-fm-{cpu,cuda}       lathe train --model fm --factors 8
  sklearn-sgd               StandardScaler + SGDClassifier(log_loss, max_iter=E, tol=None)
  sklearn-poly-sgd          PolynomialFeatures(2, interaction_only) + StandardScaler + SGDClassifier
  sklearn-logreg            StandardScaler + LogisticRegression(lbfgs, max_iter=100)
  vw-linear                 Vowpal Wabbit --loss_function logistic --passes E (from its cache)
  vw-q                      the same with -q ff (every pair of the one namespace)
  xgboost                   XGBClassifier(tree_method=hist, 100 trees, depth 6, nthread=all cores)

The cuda runs happen only when `nvidia-smi` answers. --skip takes a peer name or a part of one
between dashes (`--skip vw`, `--skip cuda`, `--skip lathe-fm`). Test AUC and log-loss come from
sklearn.metrics for the peers and from `lathe eval --json` for Lathe (checked here against
sklearn.metrics on `lathe score`'s probabilities). Progress goes to stderr, the table to stdout;
--json writes the same figures with stable keys. See bench/peers/README.md for what each time means.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

FEATURES = 28
LATHE_BATCH = 256
LATHE_FM_FACTORS = 8
SGD_ALPHA = 1e-4  # scikit-learn's default: the peers run at their defaults, as Lathe does
LOGREG_MAX_ITER = 100
XGB_TREES = 100
XGB_DEPTH = 6
XGB_LEARNING_RATE = 0.3

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Every peer, in the order of the table. kind: linear or crossed; the reference of a row is the
# Lathe CPU run of its kind (XGBoost, which finds interactions itself, against Lathe crossed).
LATHE_KINDS = [("linear", "linear", []), ("cross", "crossed", ["--cross", "all"]),
               ("fm", "crossed", ["--model", "fm", "--factors", str(LATHE_FM_FACTORS)])]
PEERS = ([f"lathe-{name}-{device}" for device in ("cpu", "cuda") for name, _, _ in LATHE_KINDS] +
         ["sklearn-sgd", "sklearn-poly-sgd", "sklearn-logreg", "vw-linear", "vw-q", "xgboost"])
REFERENCE = {"linear": "lathe-linear-cpu", "crossed": "lathe-cross-cpu"}


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def write_json(path, figures):
    """Writes a run's figures (a dict with stable keys) to `path` as indented JSON."""
    with open(path, "w") as f:
        json.dump(figures, f, indent=2)
        f.write("\n")
    log(f"wrote {path}")


def skipped(peer, skips):
    parts = peer.split("-")
    for s in skips:
        n = len(s.split("-"))
        if any("-".join(parts[i:i + n]) == s for i in range(len(parts) - n + 1)):
            return True
    return False


# ---------------------------------------------------------------------------------------------- data

def make_data(rows, seed):
    """28 numeric columns x_j = mean_j + scale_j * z_j with z ~ N(0, 1); label ~ Bernoulli(sigmoid(
    intercept + z.w + sum_k c_k z_a z_b + N(0, 0.5))). Returns X (float32), y (0/1 float32), truth."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(-5.0, 5.0, FEATURES)
    scales = np.exp(rng.uniform(np.log(0.1), np.log(20.0), FEATURES))
    weights = rng.normal(0.0, 0.4, FEATURES)
    weights[rng.choice(FEATURES, 8, replace=False)] = 0.0  # some features carry nothing
    pairs = [tuple(int(v) for v in rng.choice(FEATURES, 2, replace=False)) for _ in range(6)]
    products = rng.choice([-1.0, 1.0], len(pairs)) * rng.uniform(0.5, 1.0, len(pairs))
    intercept = -0.2
    X = np.empty((rows, FEATURES), np.float32)
    y = np.empty(rows, np.float32)
    block = 1 << 20
    for start in range(0, rows, block):
        n = min(block, rows - start)
        z = rng.standard_normal((n, FEATURES))
        logit = intercept + z @ weights + rng.normal(0.0, 0.5, n)
        for (a, b), c in zip(pairs, products):
            logit += c * z[:, a] * z[:, b]
        y[start:start + n] = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
        X[start:start + n] = means + scales * z
    truth = {"intercept": intercept, "weights": weights.round(4).tolist(),
             "pairs": [[a, b, round(float(c), 4)] for (a, b), c in zip(pairs, products)],
             "logit_noise_sd": 0.5, "means": means.round(4).tolist(), "scales": scales.round(4).tolist()}
    return X, y, truth


def feature_names():
    return [f"f{j:02d}" for j in range(FEATURES)]


def write_columnar(path, X, y):
    """Lathe's columnar layout: one 1-D float32 dataset per column in the root group, the column order
    in its `lathe_columns` attribute, the label `y` a numeric 0/1 column."""
    names = feature_names()
    chunk = (min(65536, len(y)),)
    with h5py.File(path, "w") as f:
        for j, name in enumerate(names):
            f.create_dataset(name, data=np.ascontiguousarray(X[:, j]), chunks=chunk)
        f.create_dataset("y", data=y, chunks=chunk)
        f.attrs["lathe_columns"] = names + ["y"]


def write_vw(path, X, y, mean, std):
    """VW text: `1 |f 0:v0 1:v1 ...` with labels -1/+1, all features in the one namespace f, each
    standardized with the training rows' mean and standard deviation (as every other peer's pipeline
    does: VW's normalized updates adapt to a feature's scale but do not center it)."""
    head = "%s |f " + " ".join(f"{j}:%.7g" for j in range(FEATURES)) + "\n"
    with open(path, "w") as f:
        block = 65536
        for start in range(0, len(y), block):
            labels = np.where(y[start:start + block] > 0.5, "1", "-1")
            rows = ((X[start:start + block] - mean) / std).tolist()
            f.write("".join(head % (label, *row) for label, row in zip(labels, rows)))


# ---------------------------------------------------------------------------------------------- peers

def metrics(y_true, probability):
    from sklearn.metrics import log_loss, roc_auc_score
    return float(roc_auc_score(y_true, probability)), float(log_loss(y_true, probability, labels=[0, 1]))


def available_memory():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def run_checked(command, what, env=None):
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {lines[-1] if lines else 'no message'}\n"
                           f"command: {' '.join(command)}\n{done.stderr[-2000:]}")
    return done


def run_lathe(args, work, name, extra, device, train, test, yte):
    model = os.path.join(work, f"lathe_{name}_{device}.h5")
    metrics_log = os.path.join(work, f"lathe_{name}_{device}.jsonl")
    command = [args.lathe, "train", train, "--label", "y", "--task", "binary", "--out", model,
               "--epochs", str(args.epochs), "--batch", str(LATHE_BATCH), "--valid-fraction", "0",
               "--patience", "0", "--device", device, "--metrics-log", metrics_log, "--quiet"] + extra
    env = dict(os.environ)
    if args.lathe_threads:
        env["OMP_NUM_THREADS"] = str(args.lathe_threads)
    t0 = time.perf_counter()
    run_checked(command, "lathe train", env)
    fit = time.perf_counter() - t0
    with open(metrics_log) as f:
        epochs = [json.loads(line)["seconds"] for line in f if line.strip()]
    evaluation = json.loads(run_checked([args.lathe, "eval", model, test, "--json", "--device", device],
                                        "lathe eval", env).stdout)
    # The same probabilities through sklearn.metrics, so Lathe's figures are known to be the peers'.
    scores = os.path.join(work, f"lathe_{name}_{device}_scores.h5")
    run_checked([args.lathe, "score", model, test, "--out", scores, "--device", device, "--quiet"], "lathe score", env)
    with h5py.File(scores) as f:
        check_auc, check_logloss = metrics(yte, f["probability"][:].astype(np.float64))
    os.remove(scores)
    return {"fit_seconds": fit, "epoch_seconds": float(np.median(epochs)), "epoch_seconds_all": epochs,
            "train_seconds_sum_of_epochs": float(sum(epochs)),
            "test_auc": float(evaluation["auc"]), "test_logloss": float(evaluation["logloss"]),
            "sklearn_check_auc": check_auc, "sklearn_check_logloss": check_logloss,
            "command": " ".join(["lathe"] + command[1:]).replace(work + os.sep, "")}


def run_sgd(args, Xtr, ytr, Xte, yte, poly):
    from sklearn.linear_model import SGDClassifier
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler
    if poly:  # the expanded float32 matrices of both splits must fit in the memory left
        need = (len(ytr) + len(yte)) * (FEATURES + FEATURES * (FEATURES - 1) // 2) * 4 * 1.2
        if need > 0.8 * available_memory():
            raise RuntimeError(f"left out: the expansion needs ~{need / 2**30:.1f} GiB, "
                               f"{available_memory() / 2**30:.1f} GiB available")
    t0 = time.perf_counter()
    expand = PolynomialFeatures(degree=2, interaction_only=True, include_bias=False) if poly else None
    Xp = expand.fit_transform(Xtr) if poly else Xtr
    scaler = StandardScaler(copy=not poly).fit(Xp)
    Xs = scaler.transform(Xp)
    t1 = time.perf_counter()
    clf = SGDClassifier(loss="log_loss", max_iter=args.epochs, tol=None, alpha=SGD_ALPHA, random_state=0)
    import warnings
    with warnings.catch_warnings():  # max_iter reached is the point, not a problem
        warnings.simplefilter("ignore")
        clf.fit(Xs, ytr)
    t2 = time.perf_counter()
    del Xs, Xp
    Xtest = scaler.transform(expand.transform(Xte) if poly else Xte)
    auc, logloss = metrics(yte, clf.predict_proba(Xtest)[:, 1])
    return {"fit_seconds": t2 - t0, "epoch_seconds": (t2 - t1) / args.epochs, "transform_seconds": t1 - t0,
            "features_after_expansion": int(Xtest.shape[1]), "test_auc": auc, "test_logloss": logloss}


def run_logreg(args, Xtr, ytr, Xte, yte):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    import warnings
    t0 = time.perf_counter()
    scaler = StandardScaler().fit(Xtr)
    Xs = scaler.transform(Xtr)
    clf = LogisticRegression(solver="lbfgs", max_iter=LOGREG_MAX_ITER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(Xs, ytr)
    fit = time.perf_counter() - t0
    auc, logloss = metrics(yte, clf.predict_proba(scaler.transform(Xte))[:, 1])
    return {"fit_seconds": fit, "epoch_seconds": None, "iterations": int(clf.n_iter_[0]),
            "test_auc": auc, "test_logloss": logloss}


def vw(arguments):
    return [sys.executable, "-m", "vowpalwabbit"] + arguments


def prepare_vw(work, Xtr, ytr, Xte, yte):
    """Writes the VW text files and parses the training file into VW's cache once (a --noop run), so
    the training runs below time their passes over the cache; both preparations are reported."""
    train_txt, test_txt = os.path.join(work, "train.vw"), os.path.join(work, "test.vw")
    t0 = time.perf_counter()
    mean, std = Xtr.mean(axis=0, dtype=np.float64), Xtr.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    write_vw(train_txt, Xtr, ytr, mean, std)
    t1 = time.perf_counter()
    write_vw(test_txt, Xte, yte, mean, std)
    t2 = time.perf_counter()
    run_checked(vw(["-d", train_txt, "-c", "-k", "--noop", "--quiet"]), "vw cache")
    t3 = time.perf_counter()
    t4 = time.perf_counter()
    run_checked([sys.executable, "-c", "import vowpalwabbit"], "python -c 'import vowpalwabbit'")
    startup = time.perf_counter() - t4
    return {"train_txt": train_txt, "test_txt": test_txt, "write_train_text_seconds": t1 - t0,
            "write_test_text_seconds": t2 - t1, "parse_text_to_cache_seconds": t3 - t2,
            "text_bytes": os.path.getsize(train_txt), "cache_bytes": os.path.getsize(train_txt + ".cache"),
            "python_startup_seconds": startup}


def run_vw(args, work, files, quadratic, yte):
    name = "q" if quadratic else "linear"
    model, predictions = os.path.join(work, f"vw_{name}.model"), os.path.join(work, f"vw_{name}.preds")
    # -c without -k: the cache written by prepare_vw is read (no text parsing in the timed run).
    command = ["-d", files["train_txt"], "-c", "--passes", str(args.epochs), "--holdout_off",
               "--loss_function", "logistic", "-f", model, "--quiet"] + (["-q", "ff"] if quadratic else [])
    t0 = time.perf_counter()
    run_checked(vw(command), "vw train")
    fit = time.perf_counter() - t0
    run_checked(vw(["-d", files["test_txt"], "-t", "-i", model, "-p", predictions, "--link", "logistic",
                    "--quiet"]), "vw predict")
    probability = np.loadtxt(predictions, usecols=0, ndmin=1)
    if len(probability) != len(yte):
        raise RuntimeError(f"vw wrote {len(probability)} predictions for {len(yte)} test rows")
    auc, logloss = metrics(yte, probability)
    return {"fit_seconds": fit, "epoch_seconds": fit / args.epochs, "test_auc": auc, "test_logloss": logloss,
            "command": "vw " + " ".join(command).replace(work + os.sep, ""),
            "write_train_text_seconds": files["write_train_text_seconds"],
            "parse_text_to_cache_seconds": files["parse_text_to_cache_seconds"],
            "fit_plus_parse_seconds": fit + files["parse_text_to_cache_seconds"],
            "python_startup_seconds": files["python_startup_seconds"]}


def run_xgboost(args, Xtr, ytr, Xte, yte):
    from xgboost import XGBClassifier
    threads = os.cpu_count()
    clf = XGBClassifier(tree_method="hist", n_estimators=XGB_TREES, max_depth=XGB_DEPTH,
                        learning_rate=XGB_LEARNING_RATE, n_jobs=threads, objective="binary:logistic",
                        random_state=0)
    t0 = time.perf_counter()
    clf.fit(Xtr, ytr)
    fit = time.perf_counter() - t0
    auc, logloss = metrics(yte, clf.predict_proba(Xte)[:, 1])
    return {"fit_seconds": fit, "epoch_seconds": None, "seconds_per_tree": fit / XGB_TREES, "threads": threads,
            "test_auc": auc, "test_logloss": logloss}


# ---------------------------------------------------------------------------------------------- report

def gpu_name():
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return names[0] if done.returncode == 0 and names else None


def machine_facts(lathe):
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True).stdout.strip() or None
    except OSError:
        commit = None
    try:  # the binary may have been built from another tree than HEAD: say what it is and when it was built
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=REPO_ROOT).returncode == 1
        version = subprocess.run([lathe, "--version"], capture_output=True, text=True).stdout.strip() or None
    except OSError:
        dirty, version = None, None
    built = datetime.datetime.fromtimestamp(os.path.getmtime(lathe), datetime.timezone.utc)
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    versions = {}
    for module in ("numpy", "sklearn", "xgboost", "vowpalwabbit", "h5py"):
        try:
            versions[module] = __import__(module).__version__
        except Exception:  # a missing peer is reported where it runs
            versions[module] = None
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "host": platform.node(), "cpu": cpu, "cores": os.cpu_count(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "gpu": gpu_name(), "commit": commit, "uncommitted_changes": dirty, "lathe": lathe,
            "lathe_version": version, "lathe_built": built.strftime("%Y-%m-%d %H:%M:%S UTC"), "versions": versions}


def fmt(value, spec, empty="-"):
    return empty if value is None else format(value, spec)


def markdown_table(header, rows, out):
    """A Markdown table, each column as wide as its widest cell."""
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |", file=out)
    print("| " + " | ".join("-" * w for w in widths) + " |", file=out)
    for row in rows:
        print("| " + " | ".join(str(x).ljust(w) for x, w in zip(row, widths)) + " |", file=out)


def print_peer_table(results, out):
    """The peers side by side: times, rows/s, test metrics and the ratios to each peer's reference."""
    header = ["peer", "kind", "fit s", "epoch s", "rows/s", "test AUC", "test logloss", "reference",
              "fit / ref", "epoch / ref"]
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["peer"], r["kind"], "failed", "-", "-", "-", "-", r["reference"] or "-", "-", "-"])
            continue
        rows.append([r["peer"], r["kind"], fmt(r["fit_seconds"], ".2f"), fmt(r["epoch_seconds"], ".3f"),
                     fmt(r["rows_per_second"], ".3g"), fmt(r["test_auc"], ".4f"), fmt(r["test_logloss"], ".4f"),
                     r["reference"] or "-", fmt(r["fit_ratio"], ".2f"), fmt(r["epoch_ratio"], ".2f")])
    markdown_table(header, rows, out)


def print_build_facts(facts, out):
    """The commit, the lathe binary and the peers' versions: the lines both peers scripts print."""
    print(f"commit: {facts['commit']}{' (with uncommitted changes)' if facts['uncommitted_changes'] else ''}  "
          f"lathe: {facts['lathe']} ({facts['lathe_version']}, built {facts['lathe_built']})", file=out)
    print("versions: " + "  ".join(f"{k} {v}" for k, v in facts["versions"].items()), file=out)


def print_checks_and_failures(runs, out):
    """How far `lathe eval`'s figures are from sklearn.metrics on `lathe score`'s probabilities (the Lathe
    runs that made that check), then each run that failed."""
    checks = [r for r in runs if r["peer"].startswith("lathe-") and "error" not in r
              and r.get("sklearn_check_auc") is not None]
    if checks:
        worst = max(max(abs(r["test_auc"] - r["sklearn_check_auc"]), abs(r["test_logloss"] - r["sklearn_check_logloss"]))
                    for r in checks)
        print(f"lathe eval's AUC and log-loss against sklearn.metrics on `lathe score`'s probabilities: largest "
              f"difference {worst:.1e}.", file=out)
    for r in runs:
        if "error" in r:
            print(f"{r['peer']} failed: {r['error'].splitlines()[0]}", file=out)


def print_table(facts, config, results):
    out = sys.stdout
    print(f"# Lathe against its peers — {facts['date']}", file=out)
    print(f"machine: {facts['host']}, {facts['cores']} cores ({facts['cpu']}), {facts['memory_gib']} GiB, "
          f"GPU: {facts['gpu'] or 'none'}, load average at start {facts['load_average_at_start']}", file=out)
    print_build_facts(facts, out)
    print(f"data: {config['rows']:,} rows ({config['train_rows']:,} train, {config['test_rows']:,} test), "
          f"{config['features']} numeric features, {len(config['truth']['pairs'])} planted pairwise products, "
          f"seed {config['seed']}, positives {config['positive_rate']:.3f}; epochs {config['epochs']}; lathe threads "
          f"{config['lathe_threads'] or 'default (all cores)'}", file=out)
    print("", file=out)
    print_peer_table(results, out)
    print("", file=out)
    by_peer = {r["peer"]: r for r in results}
    print("fit s: lathe = the whole `lathe train` command (read HDF5, profile, prepare, all epochs); sklearn = "
          "transform + scaler + fit on arrays in memory; vw = the training command over its cache (text parsing "
          "excluded, see below); xgboost = fit() on arrays in memory.", file=out)
    print("epoch s: lathe = median epoch of --metrics-log; sklearn SGD = SGD fit / epochs (transform and scaler "
          "excluded); vw = fit s / passes. rows/s = train rows / epoch s, or train rows / fit s where no epoch "
          "applies (logreg, xgboost). fit / ref and epoch / ref = the peer's seconds over the reference's "
          "(above 1: the reference, a Lathe CPU run, is faster).", file=out)
    vw_row = by_peer.get("vw-linear") or by_peer.get("vw-q")
    if vw_row and "error" not in vw_row:
        print(f"vw preparation, not in fit s: standardizing and writing the training text {vw_row['write_train_text_seconds']:.2f} s, "
              f"parsing it into the cache (--noop) {vw_row['parse_text_to_cache_seconds']:.2f} s; each vw command "
              f"also carries Python's start-up (~{vw_row['python_startup_seconds']:.2f} s, not subtracted).", file=out)
    print_checks_and_failures(results, out)


# ---------------------------------------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="rows generated, train and test together")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lathe", default=os.path.join(REPO_ROOT, "build", "lathe"))
    p.add_argument("--work", help="working folder (kept); default a temporary one, removed at the end")
    p.add_argument("--skip", action="append", default=[], help="leave out a peer (repeatable); see the list")
    p.add_argument("--json", help="write the figures here as JSON")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--lathe-threads", type=int,
                   help="OMP_NUM_THREADS for the lathe commands (default: unset, Lathe uses every core)")
    args = p.parse_args()
    args.lathe = os.path.abspath(args.lathe)
    if not os.access(args.lathe, os.X_OK):
        p.error(f"no lathe executable at {args.lathe} (build it or pass --lathe)")
    for s in args.skip:
        if not any(skipped(peer, [s]) for peer in PEERS):
            p.error(f"--skip {s}: no such peer; peers: {', '.join(PEERS)}")

    facts = machine_facts(args.lathe)
    devices = ["cpu"] + (["cuda"] if facts["gpu"] else [])
    if not facts["gpu"]:
        log("nvidia-smi does not answer: the Lathe cuda runs are left out")
    work = args.work or tempfile.mkdtemp(prefix="lathe_peers_")
    os.makedirs(work, exist_ok=True)
    try:
        log(f"generating {args.rows:,} rows x {FEATURES} features (seed {args.seed})")
        X, y, truth = make_data(args.rows, args.seed)
        n_test = int(round(args.rows * args.test_fraction))
        n_train = args.rows - n_test
        Xtr, Xte, ytr, yte = X[:n_train], X[n_train:], y[:n_train], y[n_train:]  # rows are i.i.d.
        train, test = os.path.join(work, "train.h5"), os.path.join(work, "test.h5")
        t0 = time.perf_counter()
        write_columnar(train, Xtr, ytr)
        write_columnar(test, Xte, yte)
        log(f"wrote {train} and {test} in {time.perf_counter() - t0:.1f} s")
        config = {"rows": args.rows, "train_rows": n_train, "test_rows": n_test, "features": FEATURES,
                  "epochs": args.epochs, "seed": args.seed, "positive_rate": float(y.mean()), "truth": truth,
                  "skipped": args.skip, "devices": devices,
                  "lathe_threads": args.lathe_threads}

        results = []

        def record(peer, kind, run, settings):
            reference = REFERENCE[kind] if peer != REFERENCE[kind] else None
            entry = {"peer": peer, "kind": kind, "reference": reference, "settings": settings}
            if skipped(peer, args.skip):
                log(f"{peer}: skipped")
                return
            log(f"{peer}: running")
            try:
                entry.update(run())
            except Exception as e:  # one failing peer leaves the others' figures standing
                entry["error"] = str(e)
                log(f"{peer}: FAILED: {e}")
                results.append(entry)
                return
            per = entry["epoch_seconds"] or entry["fit_seconds"]
            entry["rows_per_second"] = n_train / per if per else None
            log(f"{peer}: fit {entry['fit_seconds']:.2f} s, AUC {entry['test_auc']:.4f}, "
                f"log-loss {entry['test_logloss']:.4f}")
            results.append(entry)

        for device in devices:
            for name, kind, extra in LATHE_KINDS:
                settings = (f"lathe train --device {device} --epochs {args.epochs} --batch {LATHE_BATCH} "
                            f"--valid-fraction 0 --patience 0 {' '.join(extra)} (adam, lr 0.01 with cosine decay, l2 1e-5, "
                            "standard scaling: Lathe's defaults)").replace("  ", " ")
                record(f"lathe-{name}-{device}", kind,
                       lambda name=name, extra=extra, device=device:
                       run_lathe(args, work, name, extra, device, train, test, yte), settings)

        record("sklearn-sgd", "linear", lambda: run_sgd(args, Xtr, ytr, Xte, yte, poly=False),
               f"StandardScaler + SGDClassifier(loss='log_loss', max_iter={args.epochs}, tol=None, "
               f"alpha={SGD_ALPHA}, random_state=0)")
        record("sklearn-poly-sgd", "crossed", lambda: run_sgd(args, Xtr, ytr, Xte, yte, poly=True),
               "PolynomialFeatures(degree=2, interaction_only=True, include_bias=False) + StandardScaler + "
               f"SGDClassifier(loss='log_loss', max_iter={args.epochs}, tol=None, alpha={SGD_ALPHA}, random_state=0)")
        record("sklearn-logreg", "linear", lambda: run_logreg(args, Xtr, ytr, Xte, yte),
               f"StandardScaler + LogisticRegression(solver='lbfgs', max_iter={LOGREG_MAX_ITER}, C=1.0)")
        if not (skipped("vw-linear", args.skip) and skipped("vw-q", args.skip)):
            log("vw: writing the text files and the cache")
            try:
                files = prepare_vw(work, Xtr, ytr, Xte, yte)
            except Exception as e:
                files = {"error": str(e)}
            for quadratic, peer in ((False, "vw-linear"), (True, "vw-q")):
                def run(quadratic=quadratic):
                    if "error" in files:
                        raise RuntimeError(files["error"])
                    return run_vw(args, work, files, quadratic, yte)
                record(peer, "crossed" if quadratic else "linear", run,
                       f"vw -c --passes {args.epochs} --holdout_off --loss_function logistic"
                       + (" -q ff" if quadratic else "") + " (one namespace f; default -b 18, -l 0.5, adaptive, "
                       "normalized, invariant updates)")
        record("xgboost", "crossed", lambda: run_xgboost(args, Xtr, ytr, Xte, yte),
               f"XGBClassifier(tree_method='hist', n_estimators={XGB_TREES}, max_depth={XGB_DEPTH}, "
               f"learning_rate={XGB_LEARNING_RATE}, n_jobs={os.cpu_count()}) on the CPU")

        by_peer = {r["peer"]: r for r in results if "error" not in r}
        for r in results:
            ref = by_peer.get(r["reference"]) if r["reference"] else None
            ok = ref is not None and "error" not in r
            r["fit_ratio"] = r["fit_seconds"] / ref["fit_seconds"] if ok else None
            r["epoch_ratio"] = (r["epoch_seconds"] / ref["epoch_seconds"]
                                if ok and r.get("epoch_seconds") and ref.get("epoch_seconds") else None)
            if r["reference"] and ref is None:
                r["reference"] += " (not run)"

        print_table(facts, config, results)
        if args.json:
            write_json(args.json, {"machine": facts, "config": config, "results": results})
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
