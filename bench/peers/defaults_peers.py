#!/usr/bin/env python3
"""Lathe's defaults against a scikit-learn linear pipeline (and XGBoost's defaults) on the shared datasets
(issue 4's "defaults a careful user would pick"), over several seeded splits.

    bench/peers/defaults_peers.py [--lathe build/lathe] [--data ../shared/data] [--seeds 5] [--json OUT]

For each dataset (telco_churn: binary, label churn; diamonds: regression, label price; penguins:
multiclass, label species) and each seed, the rows are shuffled with that seed and split 80/20 once.
On the same 80% and scored on the same 20%:

  sklearn        SimpleImputer + StandardScaler on the numeric columns, OneHotEncoder on the others,
                 then LogisticRegression(max_iter=5000) or Ridge(alpha=1e-3): every training row, fitted
                 to convergence
  lathe          `lathe train` with no options beyond label and task: 20% of the training rows held out
                 for early stopping (patience 20, --stop-margin 0.05), the best epoch kept
  lathe-all-rows `lathe train --valid-fraction 0 --patience 0`: every training row, the whole schedule,
                 the last epoch kept (what the scikit-learn fit is the counterpart of)
  lathe-bins     `lathe train --bins 32`: the defaults plus 32 quantile bins of every numeric column (a
                 step function beside each slope)
  lathe-fm       `lathe train --model fm`: a factorization machine at its defaults
  lathe-fm-bins  `lathe train --model fm --bins 32`: the fm crosses the bins with the other features
  xgboost        XGBRegressor / XGBClassifier(tree_method="hist", enable_categorical=True), its defaults
                 otherwise, the string columns as pandas categoricals (the training split's labels): not
                 a linear model, the gap a tree ensemble finds; left out, with a note, when xgboost is
                 not importable

It prints one table per dataset: each seed's test metric (binary: AUC and log-loss; regression: RMSE;
multiclass: log-loss and accuracy) and the mean over seeds, with each peer's mean minus scikit-learn's.
The test metrics are `lathe eval`'s (checked against sklearn.metrics by the tests and by run_peers.py). Progress goes to stderr.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_peers import REPO_ROOT, log, machine_facts, markdown_table, print_build_facts, run_checked  # noqa: E402

DATASETS = [  # file, label, task, the metrics reported (lathe eval's names), the first of which decides
    ("telco_churn.csv", "churn", "binary", ["auc", "logloss"]),
    ("diamonds.csv", "price", "regression", ["rmse"]),
    ("penguins.csv", "species", "multiclass", ["logloss", "accuracy"]),
]
VARIANTS = [("lathe", []), ("lathe-all-rows", ["--valid-fraction", "0", "--patience", "0"]),
            ("lathe-bins", ["--bins", "32"]), ("lathe-fm", ["--model", "fm"]),
            ("lathe-fm-bins", ["--model", "fm", "--bins", "32"])]


def xgboost_available():
    try:
        import xgboost  # noqa: F401
    except ImportError:
        return False
    return True


def sklearn_metrics(task, train, test, label):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    import pandas as pd
    X, Xt = train.drop(columns=label), test.drop(columns=label)
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    categorical = [c for c in X.columns if c not in numeric]
    pre = ColumnTransformer([("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
                             ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                                   OneHotEncoder(handle_unknown="ignore")), categorical)])
    if task == "regression":
        pipe = make_pipeline(pre, Ridge(alpha=1e-3)).fit(X, train[label])
        return {"rmse": float(np.sqrt(mean_squared_error(test[label], pipe.predict(Xt))))}
    pipe = make_pipeline(pre, LogisticRegression(max_iter=5000)).fit(X, train[label])
    p = pipe.predict_proba(Xt)
    if task == "binary":  # Lathe's positive class is the second label in sorted order, as here
        return {"auc": float(roc_auc_score(test[label] == pipe.classes_[1], p[:, 1])),
                "logloss": float(log_loss(test[label], p, labels=pipe.classes_))}
    return {"logloss": float(log_loss(test[label], p, labels=pipe.classes_)),
            "accuracy": float(accuracy_score(test[label], pipe.classes_[p.argmax(axis=1)]))}


def xgboost_metrics(task, train, test, label):
    """XGBoost at its defaults (hist trees, native categorical splits), on the same split and metrics."""
    import xgboost
    from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, roc_auc_score
    import pandas as pd
    X, Xt = train.drop(columns=label).copy(), test.drop(columns=label).copy()
    for c in X.columns:
        if not pd.api.types.is_numeric_dtype(X[c]):
            categories = sorted(X[c].dropna().unique())  # a test label unseen in training is missing
            X[c] = pd.Categorical(X[c], categories=categories)
            Xt[c] = pd.Categorical(Xt[c], categories=categories)
    common = {"tree_method": "hist", "enable_categorical": True, "n_jobs": os.cpu_count(), "random_state": 0}
    if task == "regression":
        model = xgboost.XGBRegressor(**common).fit(X, train[label])
        return {"rmse": float(np.sqrt(mean_squared_error(test[label], model.predict(Xt))))}
    classes = np.array(sorted(train[label].unique()))  # sorted, as Lathe's and scikit-learn's classes
    model = xgboost.XGBClassifier(**common).fit(X, np.searchsorted(classes, train[label]))
    p = model.predict_proba(Xt)
    if task == "binary":
        return {"auc": float(roc_auc_score(test[label] == classes[1], p[:, 1])),
                "logloss": float(log_loss(test[label], p, labels=classes))}
    return {"logloss": float(log_loss(test[label], p, labels=classes)),
            "accuracy": float(accuracy_score(test[label], classes[p.argmax(axis=1)]))}


def lathe_metrics(lathe, work, task, label, extra):
    model = os.path.join(work, "model.h5")
    summary = json.loads(run_checked([lathe, "train", os.path.join(work, "train.h5"), "--label", label, "--task", task,
                                      "--out", model, "--quiet"] + extra, "lathe train").stdout)
    evaluation = json.loads(run_checked([lathe, "eval", model, os.path.join(work, "test.h5"), "--json", "--quiet"],
                                        "lathe eval").stdout)
    return evaluation, summary


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lathe", default=os.path.join(REPO_ROOT, "build", "lathe"))
    p.add_argument("--data", default=os.environ.get("LATHE_SHARED_DATA", os.path.join(REPO_ROOT, "..", "shared", "data")))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--json", help="also write the figures as JSON here")
    args = p.parse_args()
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    import pandas as pd  # here, not at the top: --help works without pandas
    facts = machine_facts(args.lathe)
    with_xgboost = xgboost_available()
    if not with_xgboost:
        log("xgboost is not importable: the xgboost peer is left out (pip install xgboost)")
    results = []
    with tempfile.TemporaryDirectory(prefix="lathe-defaults-") as work:
        for file, label, task, names in DATASETS:
            df = pd.read_csv(os.path.join(args.data, file))
            for seed in range(args.seeds):
                order = np.random.default_rng(seed).permutation(len(df))
                cut = int(0.8 * len(df))
                train, test = df.iloc[order[:cut]], df.iloc[order[cut:]]
                for name, part in (("train", train), ("test", test)):
                    part.to_csv(os.path.join(work, name + ".csv"), index=False)
                    run_checked([args.lathe, "import", os.path.join(work, name + ".csv"),
                                 os.path.join(work, name + ".h5"), "--quiet"], "lathe import")
                log(f"{file} seed {seed}: scikit-learn")
                row = {"dataset": file, "seed": seed, "sklearn": sklearn_metrics(task, train, test, label)}
                if with_xgboost:
                    log(f"{file} seed {seed}: xgboost")
                    row["xgboost"] = xgboost_metrics(task, train, test, label)
                for variant, extra in VARIANTS:
                    log(f"{file} seed {seed}: {variant}")
                    evaluation, summary = lathe_metrics(args.lathe, work, task, label, extra)
                    row[variant] = {m: float(evaluation[m]) for m in names}
                    row[variant + "_epochs"] = [summary["best_epoch"], summary["epochs_run"], summary["max_epochs"]]
                results.append(row)

    out = sys.stdout
    print(f"date: {facts['date']}  host: {facts['host']}  cpu: {facts['cpu']} ({facts['cores']} cores)", file=out)
    print_build_facts(facts, out)
    if with_xgboost:
        import xgboost
        print(f"xgboost {xgboost.__version__}: XGBRegressor/XGBClassifier(tree_method='hist', "
              "enable_categorical=True), defaults otherwise", file=out)
    else:
        print("xgboost: not importable, left out", file=out)
    peers = ["sklearn"] + [v for v, _ in VARIANTS] + (["xgboost"] if with_xgboost else [])
    for file, label, task, names in DATASETS:
        rows = [r for r in results if r["dataset"] == file]
        print(f"\n{file} ({task}, label {label}): test {', '.join(names)} on the 20% of each seed's split", file=out)
        header = ["seed"] + [f"{peer} {m}" for peer in peers for m in names] + \
                 [f"{v} best/run/max epochs" for v, _ in VARIANTS]
        table = [[r["seed"]] + [f"{r[peer][m]:.4f}" for peer in peers for m in names] +
                 ["/".join(map(str, r[v + "_epochs"])) for v, _ in VARIANTS] for r in rows]
        mean = {peer: {m: float(np.mean([r[peer][m] for r in rows])) for m in names} for peer in peers}
        table.append(["mean"] + [f"{mean[peer][m]:.4f}" for peer in peers for m in names] + ["" for _ in VARIANTS])
        table.append(["- sklearn"] + ["" for _ in names] +
                     [f"{mean[peer][m] - mean['sklearn'][m]:+.4f}" for peer in peers[1:] for m in names] +
                     ["" for _ in VARIANTS])
        markdown_table(header, table, out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": facts, "variants": {v: extra for v, extra in VARIANTS}, "xgboost": with_xgboost,
                       "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
