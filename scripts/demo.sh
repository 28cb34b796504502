#!/usr/bin/env bash
# Sets up, builds, and runs Lathe's workflow demo on data it brings (the shared public CSVs) or
# generates itself (`lathe synth`). Work files go to demo-output/ (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
lathe=build/lathe
out=${1:-demo-output}
mkdir -p "$out"
data=../shared/data
say() { printf '\n== %s\n' "$*"; }

say "1. The machine: which device Lathe computes on"
$lathe info

say "2. Collect: import a CSV to HDF5 (types inferred, missing values kept)"
if [[ -f $data/telco_churn.csv ]]; then
  $lathe import "$data/telco_churn.csv" "$out/telco.h5"
  $lathe inspect "$out/telco.h5"
else
  echo "(no $data/telco_churn.csv here; skipping the real-data import)"
fi

say "2b. Collect from pandas: a DataFrame saved with to_hdf(format=\"table\") is read as it is (strings too)"
if [[ -f $data/penguins.csv ]]; then
  python3 -c "import pandas as pd, sys; pd.read_csv(sys.argv[1]).to_hdf(sys.argv[2], key='penguins', format='table', mode='w')" \
    "$data/penguins.csv" "$out/penguins-pandas.h5"
  $lathe inspect "$out/penguins-pandas.h5" --quiet --head 4 > "$out/penguins-pandas.txt"
  sed -n '1,16p;/^first/,$p' "$out/penguins-pandas.txt"
  $lathe train "$out/penguins-pandas.h5" --label species --task multiclass --out "$out/penguins-model.h5" --quiet > /dev/null
  $lathe eval "$out/penguins-model.h5" "$out/penguins-pandas.h5" --quiet
else
  echo "(no $data/penguins.csv here; skipping the pandas example)"
fi

say "3. Collect at scale: a synthetic binary task with categoricals, missing values and duplicates"
$lathe synth --task binary --rows 200000 --features 12 --categorical 3 --missing-rate 0.02 \
  --duplicate-rate 0.01 --seed 7 --out "$out/synth.h5"
$lathe inspect "$out/synth.h5"

say "4. The same generator, matrix layout (X and y), inspected as JSON"
$lathe synth --task regression --rows 50000 --features 8 --layout matrix --seed 7 --out "$out/synth-matrix.h5" --quiet
# Written whole, then shortened: `| head` could end lathe by SIGPIPE mid-write under pipefail.
$lathe inspect "$out/synth-matrix.h5" --json > "$out/synth-matrix.json"
head -40 "$out/synth-matrix.json"

say "5. Prepare: deduplicate, impute, clip, scale, one-hot by label, cross features (on the device)"
$lathe prepare "$out/synth.h5" "$out/synth-prepared.h5" --label label --dedup --impute median \
  --missing-indicators --clip quantile:0.001:0.999 --scale robust --cross "f0*f1,c0*c1,f2*c0" --quiet
$lathe inspect "$out/synth-prepared.h5" > "$out/synth-prepared.txt"
head -24 "$out/synth-prepared.txt"
if [[ -f $out/telco.h5 ]]; then
  $lathe prepare "$out/telco.h5" "$out/telco-prepared.h5" --label churn --cross all --quiet
fi

say "6. Train and evaluate: a churn model on the telco data, a factorization machine on the synthetic task"
if [[ -f $out/telco.h5 ]]; then
  $lathe train "$out/telco.h5" --label churn --task binary --out "$out/churn-model.h5" --quiet
  $lathe eval "$out/churn-model.h5" "$out/telco.h5"
fi
$lathe train "$out/synth.h5" --label label --task binary --model fm --factors 8 --epochs 5 \
  --out "$out/synth-fm.h5" --metrics-log "$out/synth-fm.jsonl"
$lathe eval "$out/synth-fm.h5" "$out/synth.h5" --json

say "7. Deploy: batch scoring to CSV and HDF5, and the whole pipeline as one ONNX graph"
$lathe score "$out/synth-fm.h5" "$out/synth.h5" --out "$out/synth-scores.csv" --format csv
head -4 "$out/synth-scores.csv"
$lathe score "$out/synth-fm.h5" "$out/synth.h5" --out "$out/synth-scores.h5" --format h5 --quiet
$lathe inspect "$out/synth-scores.h5" --head 3
if [[ -f $out/churn-model.h5 ]]; then
  $lathe export "$out/churn-model.h5" --onnx "$out/churn-model.onnx"
  ls -l "$out/churn-model.onnx"
fi

say "8. Monitor: drift of new data against the training profile, then retrain from the old model"
# The same task a month later: the same generator, but a broken upstream job leaves 15% missing.
$lathe synth --task binary --rows 50000 --features 12 --categorical 3 --missing-rate 0.15 \
  --seed 7 --out "$out/synth-new.h5" --quiet
set +e
$lathe drift "$out/synth-fm.h5" "$out/synth-new.h5"
echo "(lathe drift exit code $?: 0 no drift, 3 drift found)"
set -e
$lathe train "$out/synth-new.h5" --label label --task binary --model fm --factors 8 --epochs 2 \
  --init-model "$out/synth-fm.h5" --out "$out/synth-fm-retrained.h5" --quiet
$lathe eval "$out/synth-fm-retrained.h5" "$out/synth-new.h5"

say "9. Throughput: training on this machine beside its own copy ceiling"
$lathe bench train --rows 200000 --features 16 --epochs 2 2>/dev/null

echo "demo files are in $out/"
