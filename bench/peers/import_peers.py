#!/usr/bin/env python3
"""CSV to HDF5: `lathe import` against what users write today (pandas.read_csv, then h5py).

    bench/peers/import_peers.py [--rows 1000000] [--numeric 24] [--categorical 4] [--runs 3]
                                [--lathe build/lathe] [--work DIR] [--json OUT]

Writes one seeded CSV (--numeric float columns printed with 7 significant digits, a few missing;
--categorical text columns of 3 to 200 labels; a 0/1 label column), then times, --runs times each
in turn, with the file in the page cache:

  lathe-plain     lathe import --compression 0                       (uncompressed columns)
  pandas-plain    pandas.read_csv (C engine) + h5py, one uncompressed dataset per column
  lathe-deflate   lathe import (its default: shuffle + deflate level 4, chunks of 65536 rows)
  pandas-deflate  pandas.read_csv + h5py with the same filters and chunks
  pyarrow-plain   pyarrow.csv.read_csv (multi-threaded) + h5py, when pyarrow is installed

Text columns become integer codes plus their labels in every peer, as Lathe stores them. The table
gives the median of the runs and each peer's time as a ratio to the Lathe run of the same kind
(> 1: the peer is slower). Before timing, Lathe's numbers are checked against pandas' own parse
(float_precision="round_trip": correctly rounded, as Lathe's from_chars) bit for bit, and its
categories label for label. Progress on stderr, the table on stdout.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHUNK_ROWS = 65536


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def write_csv(path, rows, numeric, categorical, seed=11):
    rng = np.random.default_rng(seed)
    columns = {}
    for j in range(numeric):
        values = rng.normal(0.0, 10.0 ** rng.integers(-2, 4), rows)
        values[rng.random(rows) < 0.01] = np.nan
        columns[f"x{j:02d}"] = values
    for j in range(categorical):
        labels = np.array([f"cat{j}_{k}" for k in range(int(3 + 197 * j / max(1, categorical - 1)))])
        columns[f"c{j}"] = labels[rng.integers(0, len(labels), rows)]
    columns["y"] = rng.integers(0, 2, rows)
    import pandas as pd  # in the functions that use it, not at the top: --help works without pandas
    pd.DataFrame(columns).to_csv(path, index=False, float_format="%.7g")


def pandas_to_h5(frame, out, deflate):
    import pandas as pd
    kwargs = {"chunks": (CHUNK_ROWS,), "shuffle": True, "compression": "gzip",
              "compression_opts": 4} if deflate else {}
    with h5py.File(out, "w") as f:
        for name in frame.columns:
            column = frame[name]
            if not pd.api.types.is_numeric_dtype(column):
                codes, labels = pd.factorize(column, sort=True)
                d = f.create_dataset(name, data=codes.astype(np.int32), **kwargs)
                d.attrs["categories"] = list(labels)
            else:
                f.create_dataset(name, data=column.to_numpy(dtype=np.float64), **kwargs)


def run_pandas(csv, out, deflate):
    import pandas as pd
    pandas_to_h5(pd.read_csv(csv), out, deflate)


def run_pyarrow(csv, out):
    import pyarrow.csv
    pandas_to_h5(pyarrow.csv.read_csv(csv).to_pandas(), out, False)


def run_lathe(lathe, csv, out, deflate):
    args = [lathe, "import", csv, out, "--quiet"] + ([] if deflate else ["--compression", "0"])
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"lathe import failed: {proc.stderr}")


def check_lathe_against_pandas(csv, lathe_out):
    import pandas as pd
    frame = pd.read_csv(csv, float_precision="round_trip")
    with h5py.File(lathe_out, "r") as f:
        for name in frame.columns:
            got = f[name][:]
            if not pd.api.types.is_numeric_dtype(frame[name]):
                labels = [x.decode() if isinstance(x, bytes) else x for x in f[name].attrs["categories"]]
                decoded = np.array(labels, dtype=object)[got]
                if not (decoded == frame[name].to_numpy()).all():
                    raise SystemExit(f"column {name}: lathe's categories differ from pandas'")
            else:
                want = frame[name].to_numpy(dtype=np.float64)
                same_missing = np.array_equal(np.isnan(got), np.isnan(want))
                present = ~np.isnan(want)
                if got.dtype != np.float64 or not same_missing or \
                        not np.array_equal(got[present].view(np.uint64), want[present].view(np.uint64)):
                    raise SystemExit(f"column {name}: lathe's numbers differ from pandas' round-trip parse")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--numeric", type=int, default=24)
    parser.add_argument("--categorical", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lathe", default=os.path.join(REPO_ROOT, "build", "lathe"))
    parser.add_argument("--work")
    parser.add_argument("--json")
    args = parser.parse_args()

    work = args.work or tempfile.mkdtemp(prefix="lathe_import_peers_")
    os.makedirs(work, exist_ok=True)
    csv = os.path.join(work, "table.csv")
    if not os.path.exists(csv):
        log(f"writing {csv} ({args.rows} rows)")
        write_csv(csv, args.rows, args.numeric, args.categorical)
    size = os.path.getsize(csv)
    with open(csv, "rb") as f:  # into the page cache
        while f.read(1 << 24):
            pass

    run_lathe(args.lathe, csv, os.path.join(work, "check.h5"), True)
    check_lathe_against_pandas(csv, os.path.join(work, "check.h5"))
    log("lathe's values equal pandas' round-trip parse")

    peers = {
        "lathe-plain": lambda out: run_lathe(args.lathe, csv, out, False),
        "pandas-plain": lambda out: run_pandas(csv, out, False),
        "lathe-deflate": lambda out: run_lathe(args.lathe, csv, out, True),
        "pandas-deflate": lambda out: run_pandas(csv, out, True),
    }
    try:
        import pyarrow.csv  # noqa: F401
        peers["pyarrow-plain"] = lambda out: run_pyarrow(csv, out)
    except ImportError:
        log("pyarrow is not installed: its row is left out")
    times = {name: [] for name in peers}
    for run in range(args.runs):
        for name, fn in peers.items():
            out = os.path.join(work, f"{name}.h5")
            start = time.perf_counter()
            fn(out)
            times[name].append(time.perf_counter() - start)
            log(f"run {run + 1}: {name} {times[name][-1]:.3f} s")

    reference = {"plain": "lathe-plain", "deflate": "lathe-deflate"}
    rows = []
    for name, t in times.items():
        seconds = statistics.median(t)
        kind = name.split("-")[1]
        ref = statistics.median(times[reference[kind]])
        rows.append({"peer": name, "seconds": seconds, "mb_per_s": size / seconds / 1e6,
                     "output_mb": os.path.getsize(os.path.join(work, f"{name}.h5")) / 1e6,
                     "vs_lathe": seconds / ref, "runs": t})
    print(f"CSV: {size / 1e6:.1f} MB, {args.rows} rows x {args.numeric + args.categorical + 1} columns; "
          f"{os.cpu_count()} cores; median of {args.runs} runs")
    print("| peer | seconds | CSV MB/s | output MB | time / Lathe's |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['peer']} | {r['seconds']:.3f} | {r['mb_per_s']:.0f} | {r['output_mb']:.1f} | {r['vs_lathe']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": args.rows, "csv_bytes": size, "machine": platform.node(),
                       "cores": os.cpu_count(), "peers": rows}, f, indent=2)


if __name__ == "__main__":
    main()
