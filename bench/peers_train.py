#!/usr/bin/env python3
"""Lathe against scikit-learn's SGDClassifier on the same synthetic binary task and epochs (CPU).

    bench/peers_train.py [--lathe build/lathe] [--rows 1000000] [--features 32] [--epochs 5]

Generates data with `lathe synth` (numeric features only), splits it into train and test files,
times `lathe train` (whole command: read, profile, prepare, train) against StandardScaler +
SGDClassifier(loss="log_loss") fitted on the same rows for the same number of epochs (timing the
fit only, data already in memory), and reports test AUC of both; then per epoch: Lathe's median
epoch from its metrics log against SGDClassifier's fit time divided by the epochs. Speeds are ratios measured in the
same run.
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import h5py
import numpy as np


def write_columnar(path, columns, names, label, label_categories):
    with h5py.File(path, "w") as f:
        for name, values in zip(names, columns):
            f.create_dataset(name, data=values, chunks=(min(65536, len(values)),))
        d = f.create_dataset("label", data=label.astype(np.int32), chunks=(min(65536, len(label)),))
        d.attrs["categories"] = label_categories
        f.attrs["lathe_columns"] = list(names) + ["label"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lathe", default="build/lathe")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=256)
    args = p.parse_args()
    # scikit-learn (the peer) is imported once the arguments are read: --help works without it.
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler
    with tempfile.TemporaryDirectory() as tmp:
        full = os.path.join(tmp, "full.h5")
        subprocess.run([args.lathe, "synth", "--task", "binary", "--rows", str(2 * args.rows), "--features",
                        str(args.features), "--seed", "11", "--out", full, "--quiet", "--compression", "0"],
                       check=True, capture_output=True)
        with h5py.File(full) as f:
            names = [f"f{j}" for j in range(args.features)]
            X = np.stack([f[n][:] for n in names], axis=1).astype(np.float32)
            y = f["label"][:]
            cats = [c.decode() if isinstance(c, bytes) else c for c in f["label"].attrs["categories"]]
        Xtr, Xte, ytr, yte = X[: args.rows], X[args.rows:], y[: args.rows], y[args.rows:]
        train, test = os.path.join(tmp, "train.h5"), os.path.join(tmp, "test.h5")
        write_columnar(train, Xtr.T, names, ytr, cats)
        write_columnar(test, Xte.T, names, yte, cats)

        model = os.path.join(tmp, "m.h5")
        log = os.path.join(tmp, "epochs.jsonl")
        t0 = time.perf_counter()
        subprocess.run([args.lathe, "train", train, "--label", "label", "--task", "binary", "--out", model,
                        "--device", "cpu", "--epochs", str(args.epochs), "--batch", str(args.batch),
                        "--valid-fraction", "0", "--patience", "0", "--quiet", "--metrics-log", log],
                       check=True, capture_output=True, text=True)
        lathe_seconds = time.perf_counter() - t0
        with open(log) as f:
            epoch_seconds = sorted(json.loads(line)["seconds"] for line in f if line.strip())
        lathe_epoch = epoch_seconds[len(epoch_seconds) // 2]  # the median epoch
        ev = json.loads(subprocess.run([args.lathe, "eval", model, test, "--json", "--device", "cpu"], check=True,
                                       capture_output=True, text=True).stdout)

        t0 = time.perf_counter()
        scaler = StandardScaler().fit(Xtr)
        Xs = scaler.transform(Xtr)
        t1 = time.perf_counter()
        clf = SGDClassifier(loss="log_loss", max_iter=args.epochs, tol=None, random_state=0, alpha=1e-5)
        clf.fit(Xs, ytr)
        sk_seconds = time.perf_counter() - t0
        sk_epoch = (time.perf_counter() - t1) / args.epochs  # SGD passes only, scaling excluded
        sk_auc = roc_auc_score(yte, clf.predict_proba(scaler.transform(Xte))[:, 1])

    print(f"| rows {args.rows:,} x {args.features} features, {args.epochs} epochs | seconds | test AUC |")
    print("| --- | --- | --- |")
    print(f"| lathe train (CPU, whole command, batch {args.batch}) | {lathe_seconds:.2f} | {ev['auc']:.4f} |")
    print(f"| scikit-learn SGDClassifier (fit only) | {sk_seconds:.2f} | {sk_auc:.4f} |")
    print(f"| speed ratio (scikit-learn time / lathe time) | {sk_seconds / lathe_seconds:.2f} | |")
    print()
    print("| per epoch | seconds |")
    print("| --- | --- |")
    print(f"| lathe (median epoch of --metrics-log) | {lathe_epoch:.4f} |")
    print(f"| scikit-learn SGDClassifier (fit time / epochs, scaling excluded) | {sk_epoch:.4f} |")
    print(f"| speed ratio per epoch (scikit-learn / lathe; goal 2) | {sk_epoch / lathe_epoch:.2f} |")


if __name__ == "__main__":
    main()
