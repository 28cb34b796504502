#!/usr/bin/env bash
# The `lathe` command's workflow on the GPU against the CPU reference, for bench/gpu_check.sh's
# phase 1: the gtest suites check the backends piece by piece, this checks what a user runs. Small
# synthetic tables, each trained, evaluated and scored with --device cuda and --device cpu:
#   gpu_cli_check.sh WORK_DIR SUMMARY_ROW_COMMAND
# Prints one line per case: "case verdict detail". Verdict "ok" needs
#   - both trainings to exit 0 and to agree on whether they refitted (io/train_table.cpp, --refit);
#   - the GPU's model evaluated (`lathe eval --json`) on each device: every metric within 1e-5
#     relative (the metrics on the device against the CPU's);
#   - the GPU's model scored on each device: predictions within 1e-5 relative;
#   - the CPU's and the GPU's models scored on the CPU: predictions within 1e-3 relative (exact
#     mode, and parallel mode with the same --workers or one batch an epoch: the same steps in
#     float, summed in another order). Where the two runs chose different best epochs (two epochs
#     nearly tied), the models may differ more: verdict "check", with the figures.
# Never run on a device yet (written in session 28 with the refit, whose second binding of a
# training set to the GPU model is new since the last GPU run).
set -uo pipefail
work=${1:?work dir}
mkdir -p "$work"
cd "$work" || exit 1

synth() { lathe synth --quiet "$@" > /dev/null 2>> synth.txt; }
synth --task binary --rows 60000 --features 10 --categorical 3 --missing-rate 0.02 --seed 1 --out bin.h5
synth --task multiclass --classes 4 --rows 40000 --features 8 --categorical 2 --seed 3 --out multi.h5
synth --task regression --rows 60000 --features 12 --seed 4 --out reg.h5

# name | file | label | task | train options
cases=(
  "binary_linear|bin.h5|label|binary|"
  "binary_fm_refit|bin.h5|label|binary|--model fm --refit yes"
  "binary_balanced_bins|bin.h5|label|binary|--class-weight balanced --bins 8 --cross c0*c1"
  "multiclass_linear|multi.h5|label|multiclass|"
  "regression_dense|reg.h5|target|regression|"
  "regression_streamed|reg.h5|target|regression|--stream --window-rows 16384"
  # Plain SGD's lazy penalties (caught up before a step reads a slot and at each epoch's end), and
  # a numeric cross: the CPU model multiplies it out of its row-major rows (numeric_cross), the GPU
  # reads it from the column-major rows the preparation filled.
  "binary_sgd_penalties|bin.h5|label|binary|--optimizer sgd --l1 1e-5 --l2 1e-3 --epochs 4 --cross f0*f1"
  # Local SGD, the same workers on both devices, one average an epoch (--sync-every past them).
  "binary_parallel_sgd|bin.h5|label|binary|--mode parallel --workers 4 --sync-every 9223372036854775807 --optimizer sgd --l2 1e-3 --epochs 3"
  # A batch above the rows in parallel mode: one step an epoch (the GPU's scratch was sized by it).
  "multiclass_parallel_one_batch|multi.h5|label|multiclass|--mode parallel --batch 9223372036854775807 --epochs 3"
)
for spec in "${cases[@]}"; do
  IFS='|' read -r name file label task options <<< "$spec"
  for device in cpu cuda; do
    # shellcheck disable=SC2086  # options are words
    timeout -k 5 60 lathe train "$file" --label "$label" --task "$task" --out "m_${name}_$device.h5" \
      --device "$device" --quiet $options > "train_${name}_$device.json" 2> "train_${name}_$device.txt"
    echo $? > "train_${name}_$device.rc"
  done
  # The GPU's model evaluated and scored on each device; the CPU's model scored on the CPU.
  for device in cpu cuda; do
    timeout -k 5 30 lathe eval "m_${name}_cuda.h5" "$file" --json --device "$device" \
      > "eval_${name}_$device.json" 2> "eval_${name}_$device.txt"
    timeout -k 5 30 lathe score "m_${name}_cuda.h5" "$file" --out "score_${name}_$device.csv" \
      --device "$device" --quiet > /dev/null 2> "score_${name}_$device.txt"
  done
  timeout -k 5 30 lathe score "m_${name}_cpu.h5" "$file" --out "score_${name}_cpu_model.csv" \
    --device cpu --quiet > /dev/null 2> "score_${name}_cpu_model.txt"
done

env -u LD_LIBRARY_PATH python3 - "${cases[@]}" <<'PY'
import csv, json, math, sys

def load(path):
    try:
        return json.load(open(path))
    except Exception:
        return None

def rc(path):
    try:
        return int(open(path).read().strip())
    except Exception:
        return -1

def rel(a, b):
    if not (math.isfinite(a) and math.isfinite(b)):
        return 0.0 if a == b else float("inf")
    return abs(a - b) / max(abs(a), abs(b), 1e-6)

def compare_scores(path_a, path_b):
    """The largest difference of the numbers, relative to the larger of the two or to the column's
    mean magnitude (a regression's predictions near 0), and the share of other fields that differ."""
    try:
        with open(path_a) as a, open(path_b) as b:
            ra, rb = list(csv.reader(a)), list(csv.reader(b))
    except OSError:
        return None, None
    if len(ra) != len(rb) or len(ra) < 2 or ra[0] != rb[0]:
        return None, None
    numeric = [all(_is_number(r[c]) for r in ra[1:]) for c in range(len(ra[0]))]
    scale = [sum(abs(float(r[c])) for r in ra[1:]) / (len(ra) - 1) if numeric[c] else 0.0 for c in range(len(ra[0]))]
    worst, labels, other = 0.0, 0, 0
    for x, y in zip(ra[1:], rb[1:]):
        for c, (u, v) in enumerate(zip(x, y)):
            if numeric[c] and _is_number(v):
                a, b = float(u), float(v)
                d = abs(a - b) / max(abs(a), abs(b), scale[c], 1e-12) if math.isfinite(a) and math.isfinite(b) \
                    else (0.0 if a == b else float("inf"))
                worst = max(worst, d)
            else:
                labels += 1
                other += u != v
    return worst, other / max(labels, 1)

def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False

failed = False
for spec in sys.argv[1:]:
    name = spec.split("|")[0]
    problems, info = [], []
    rcs = {d: rc(f"train_{name}_{d}.rc") for d in ("cpu", "cuda")}
    if any(rcs.values()):
        print(f"{name} FAIL train exit codes cpu {rcs['cpu']}, cuda {rcs['cuda']}")
        failed = True
        continue
    runs = {d: load(f"train_{name}_{d}.json") or {} for d in ("cpu", "cuda")}
    refits = {d: bool(runs[d].get("refit")) for d in runs}
    if refits["cpu"] != refits["cuda"]:
        problems.append(f"refit cpu {refits['cpu']} cuda {refits['cuda']}")
    best = {d: runs[d].get("best_epoch") for d in runs}
    evals = {d: load(f"eval_{name}_{d}.json") for d in ("cpu", "cuda")}
    if not all(evals.values()):
        problems.append("eval failed")
    else:
        worst = 0.0
        for key, value in evals["cpu"].items():
            other = evals["cuda"].get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(other, (int, float)):
                d = rel(float(value), float(other))
                worst = max(worst, d)
                if d > 1e-5:
                    problems.append(f"eval {key} cpu {value:.7g} cuda {other:.7g}")
        info.append(f"eval on devices {worst:.1e}")
    worst, labels = compare_scores(f"score_{name}_cuda.csv", f"score_{name}_cpu.csv")
    if worst is None:
        problems.append("score failed")
    else:
        info.append(f"score on devices {worst:.1e}")
        if worst > 1e-5 or labels > 0.001:
            problems.append(f"the GPU model's predictions on the two devices differ by {worst:.1e}, classes {labels:.2%}")
    worst, labels = compare_scores(f"score_{name}_cpu_model.csv", f"score_{name}_cpu.csv")
    check = False
    if worst is None:
        problems.append("score of the CPU's model failed")
    else:
        info.append(f"models {worst:.1e}" + (f", classes {labels:.2%}" if labels else ""))
        if worst > 1e-3:
            if best["cpu"] != best["cuda"]:
                check = True
            else:
                problems.append(f"the CPU's and the GPU's models differ by {worst:.1e}")
    if best["cpu"] != best["cuda"]:
        info.append(f"best epoch cpu {best['cpu']} cuda {best['cuda']}")
    verdict = "FAIL" if problems else "check" if check else "ok"
    failed |= bool(problems)
    print(f"{name} {verdict} {'; '.join(problems + info)}"[:300])
sys.exit(1 if failed else 0)
PY
