#!/usr/bin/env python3
"""Adam against plain SGD on wide dense data: the measurements behind `lathe train`'s default optimizer
(sgd over 64 or more dense features with few training rows each; kWideDenseMinFeatures,
kWideDenseRowsPerFeature and kWideDenseRowsPerFeatureFm in io/train_table.cpp).

    bench/peers/wide_dense_peers.py [--lathe build/lathe] [--work DIR] [--shapes 1600x200,8000x1000]
                                    [--tasks regression,binary,multiclass] [--models linear,fm]
                                    [--seeds 3] [--informative 30] [--pairs 0] [--json OUT]

For each shape ROWSxFEATURES (ROWS the training file's rows, the test file a quarter as many: an 80/20
split), task and seed, it draws N(0, 1) float features of which --informative are in the label:

  regression  y = x·beta + N(0, 2^2), beta ~ N(0, 1)
  binary      y ~ Bernoulli(sigmoid(x·beta)), beta ~ N(0, 0.4^2)
  multiclass  y = argmax over 4 classes of x·B_c + N(0, 1), B ~ N(0, 0.3^2)

and with --pairs P each score also has P planted products x_a x_b of distinct informative features,
their weights drawn as the linear ones (what an fm can fit and a linear model cannot). It
writes train.csv and test.csv, imports them with `lathe import`, and trains each model (linear, fm) with
`--optimizer adam` and `--optimizer sgd` (Lathe's defaults otherwise: 20% of the training rows held out
to choose the epoch, then the refit where `auto` makes one), scored on test.csv with `lathe eval --json`:
test RMSE for regression, log-loss for the classifiers (lower is better). The default's choice is that
of `lathe train` without --optimizer (one epoch is enough to learn it: the summary's `optimizer`); its
metric is that optimizer's. The scikit-learn reference, on the same split: StandardScaler + RidgeCV
(alphas 10^-3..10^4, 15) or LogisticRegressionCV (Cs 10^-4..10^2, 13, 3 folds, log-loss scoring).

One table (stdout): shape, the training rows a feature that the rule compares (Lathe's training rows
after the holdout, over the features), task, model, the means over seeds of adam, sgd, their difference,
the default's choice and scikit-learn. Progress goes to stderr. Every lathe command runs with the
environment given (run it under `nice` on a shared machine).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
METRIC = {"regression": "rmse", "binary": "logloss", "multiclass": "logloss"}
CLASSES = 4


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_checked(command, what):
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {lines[-1] if lines else 'no message'}\n"
                           f"command: {' '.join(command)}")
    return done


def draw(task, rows, features, informative, pairs, seed):
    """x (rows x features, float32) and the label of `task`, from one seeded generator."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    used = rng.choice(features, informative, replace=False)
    # The planted products: pairs of distinct informative features (none without --pairs).
    planted = [rng.choice(used, 2, replace=False) for _ in range(pairs)]
    products = np.stack([x[:, a] * x[:, b] for a, b in planted], axis=1) if pairs else np.zeros((rows, 0))
    if task == "regression":
        score = x[:, used] @ rng.normal(size=informative) + products @ rng.normal(size=pairs)
        return x, score + rng.normal(scale=2.0, size=rows)
    if task == "binary":
        score = x[:, used] @ rng.normal(scale=0.4, size=informative) + products @ rng.normal(scale=0.4, size=pairs)
        return x, (rng.random(rows) < 1 / (1 + np.exp(-score))).astype(np.int64)
    scores = (x[:, used] @ rng.normal(scale=0.3, size=(informative, CLASSES)) +
              products @ rng.normal(scale=0.3, size=(pairs, CLASSES)) + rng.normal(size=(rows, CLASSES)))
    return x, np.array([f"c{k}" for k in scores.argmax(axis=1)])


def sklearn_metric(task, x, y, xt, yt):
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.metrics import log_loss, mean_squared_error
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    warnings.simplefilter("ignore", FutureWarning)  # LogisticRegressionCV's notes on its coming defaults
    if task == "regression":
        pipe = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 4, 15))).fit(x, y)
        return float(np.sqrt(mean_squared_error(yt, pipe.predict(xt))))
    pipe = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=np.logspace(-4, 2, 13), cv=3, scoring="neg_log_loss",
                                                                max_iter=3000)).fit(x, y)
    return float(log_loss(yt, pipe.predict_proba(xt), labels=pipe.classes_))


def lathe_train(lathe, work, task, extra):
    model = os.path.join(work, "model.h5")
    done = run_checked([lathe, "train", os.path.join(work, "train.h5"), "--label", "y", "--task", task, "--out", model,
                        "--device", "cpu", "--quiet"] + extra, "lathe train")
    return model, json.loads(done.stdout.strip().splitlines()[-1])


def lathe_metric(lathe, work, task, extra):
    model, summary = lathe_train(lathe, work, task, extra)
    evaluation = json.loads(run_checked([lathe, "eval", model, os.path.join(work, "test.h5"), "--json", "--quiet"],
                                        "lathe eval").stdout)
    return float(evaluation[METRIC[task]]), summary


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lathe", default=os.path.join(REPO_ROOT, "build", "lathe"))
    p.add_argument("--work", help="folder for the tables and models (kept; default a temporary one)")
    p.add_argument("--shapes", default="1920x1500,1600x200,1600x400,3200x200,8000x1000,4000x500,8000x300,8000x250,"
                                       "4000x100,8000x100")
    p.add_argument("--tasks", default="regression,binary,multiclass")
    p.add_argument("--models", default="linear,fm")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--informative", type=int, default=30)
    p.add_argument("--pairs", type=int, default=0, help="planted products of informative pairs in the label")
    p.add_argument("--json", help="also write every seed's figures as JSON here")
    args = p.parse_args()
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    tasks, models = args.tasks.split(","), args.models.split(",")
    if args.seeds < 1 or any(t not in METRIC for t in tasks) or any(m not in ("linear", "fm") for m in models):
        p.error("--seeds must be at least 1, --tasks regression/binary/multiclass, --models linear/fm")
    import pandas as pd  # here, not at the top: --help works without pandas
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                            text=True).stdout.strip()
    version = run_checked([args.lathe, "--version"], "lathe --version").stdout.strip()
    results = []
    with tempfile.TemporaryDirectory(prefix="lathe-wide-") as scratch:
        work = args.work or scratch
        os.makedirs(work, exist_ok=True)
        for rows, features in shapes:
            for task in tasks:
                for seed in range(args.seeds):
                    test_rows = rows // 4
                    x, y = draw(task, rows + test_rows, features, args.informative, args.pairs, seed)
                    for name, part in (("train", slice(0, rows)), ("test", slice(rows, None))):
                        df = pd.DataFrame(x[part], columns=[f"f{i}" for i in range(features)])
                        df["y"] = y[part]
                        df.to_csv(os.path.join(work, name + ".csv"), index=False, float_format="%.6g")
                        run_checked([args.lathe, "import", os.path.join(work, name + ".csv"),
                                     os.path.join(work, name + ".h5"), "--quiet"], "lathe import")
                    log(f"{rows}x{features} {task} seed {seed}: scikit-learn")
                    reference = sklearn_metric(task, x[:rows], y[:rows], x[rows:], y[rows:])
                    for model in models:
                        row = {"rows": rows, "features": features, "task": task, "model": model, "seed": seed,
                               "sklearn": reference}
                        for optimizer in ("adam", "sgd"):
                            log(f"{rows}x{features} {task} seed {seed}: {model} {optimizer}")
                            row[optimizer], summary = lathe_metric(args.lathe, work, task,
                                                                   ["--model", model, "--optimizer", optimizer])
                            row[optimizer + "_epochs"] = [summary.get("best_epoch"), summary.get("epochs_run"),
                                                          summary.get("max_epochs")]
                        if seed == 0:  # the choice depends on the shape only
                            _, summary = lathe_train(args.lathe, work, task, ["--model", model, "--epochs", "1"])
                            row["default"] = summary["optimizer"]
                            row["train_rows"] = summary["train_rows"]
                        results.append(row)

    print(f"lathe: {args.lathe} ({version}), commit {commit}; seeds 0..{args.seeds - 1}, {args.informative} "
          f"informative features, {args.pairs} planted pairs; test RMSE (regression) or log-loss (binary, "
          "multiclass), means over seeds")
    header = ["train rows x features", "rows/feature", "task", "model", "adam", "sgd", "sgd - adam", "default",
              "sklearn", "adam best/run epochs (seed 0)", "sgd best/run epochs (seed 0)"]
    table = []
    for rows, features in shapes:
        for task in tasks:
            for model in models:
                cell = [r for r in results if (r["rows"], r["features"], r["task"], r["model"]) == (rows, features,
                                                                                                    task, model)]
                first = cell[0]
                mean = {k: float(np.mean([r[k] for r in cell])) for k in ("adam", "sgd", "sklearn")}
                table.append([f"{rows} x {features}", f"{first['train_rows'] / features:.1f}", task, model,
                              f"{mean['adam']:.4f}", f"{mean['sgd']:.4f}", f"{mean['sgd'] - mean['adam']:+.4f}",
                              first["default"], f"{mean['sklearn']:.4f}",
                              "/".join(str(v) for v in first["adam_epochs"][:2]),
                              "/".join(str(v) for v in first["sgd_epochs"][:2])])
    widths = [max(len(str(v)) for v in column) for column in zip(header, *table)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("| " + " | ".join("-" * w for w in widths) + " |")
    for line in table:
        print("| " + " | ".join(str(v).ljust(w) for v, w in zip(line, widths)) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"lathe": args.lathe, "version": version, "commit": commit, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
