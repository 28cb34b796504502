#!/usr/bin/env bash
# The whole project's GPU check, run on a GPU host from a bundle made by scripts/pack_gpu.sh:
#   source .gpu/env.sh && gpu_check.sh [OUT_DIR]
# Phase 1 (concurrently, correctness only): the GPU tests, the CPU tests, and the GPU tests under
# compute-sanitizer (memcheck, racecheck, synccheck, initcheck). Phase 2 (alone, for timing): the
# GPU benchmarks with their ceilings, `lathe bench train` on a table of a few GB, and the PyTorch
# baseline (torch_logreg.py) on the same shape. Prints a short summary table last. Every step has
# a time limit so the whole check ends inside one device call.
set -uo pipefail
out=${1:-${OUT:-/tmp/lathe-gpu-check}}
rows=${LATHE_CHECK_ROWS:-20000000}
features=${LATHE_CHECK_FEATURES:-24}
batch=${LATHE_CHECK_BATCH:-1024}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
row() { printf '| %-28s | %-12s | %s\n' "$1" "$2" "$3" >> "$out/summary.md"; }
counts() { grep -E '^\[  (PASSED|FAILED)  \] [0-9]+|^\[  SKIPPED \] [0-9]+' "$1" | tr '\n' ' ' | cut -c1-110; }
: > "$out/summary.md"
printf '| %-28s | %-12s | %s\n' step verdict detail >> "$out/summary.md"

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader > "$out/gpu.txt" 2>&1
lathe info > "$out/info.txt" 2>&1
row "gpu" "" "$(head -c 100 "$out/gpu.txt" | tr -d '\n')"
cs=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
start=$(date +%s)

# Phase 1: correctness, in parallel (nothing here is timed).
timeout 170 lathe_tests --gtest_filter='GPU*' > "$out/gpu_tests.txt" 2>&1 &
p_gpu=$!
timeout 170 lathe_tests --gtest_filter='-GPU*' > "$out/cpu_tests.txt" 2>&1 &
p_cpu=$!
declare -A p_san
for tool in memcheck racecheck synccheck initcheck; do
  [[ -z $cs ]] && continue
  timeout 170 "$cs" --tool "$tool" --error-exitcode 99 lathe_tests --gtest_filter='GPU*' \
    > "$out/sanitizer_$tool.txt" 2>&1 &
  p_san[$tool]=$!
done
wait $p_gpu; rc=$?; row "GPU tests" "rc=$rc" "$(counts "$out/gpu_tests.txt")"
wait $p_cpu; rc=$?; row "CPU tests on GPU host" "rc=$rc" "$(counts "$out/cpu_tests.txt")"
for tool in memcheck racecheck synccheck initcheck; do
  if [[ -z $cs ]]; then row "sanitizer $tool" "absent" "compute-sanitizer not found"; continue; fi
  wait "${p_san[$tool]}"; rc=$?
  row "sanitizer $tool" "rc=$rc" "$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer_$tool.txt" | head -1) $(counts "$out/sanitizer_$tool.txt" | cut -c1-60)"
done
row "phase 1 seconds" "$(( $(date +%s) - start ))" ""

# Phase 2: timings, one at a time.
timeout 100 lathe_bench --benchmark_filter='GPU|Ceiling' --benchmark_format=json \
  --benchmark_out="$out/bench.json" --benchmark_min_time=0.1 > "$out/bench.txt" 2>&1
row "benchmarks" "rc=$?" "bench.json"
timeout 150 lathe bench train --device cuda --rows "$rows" --features "$features" --batch "$batch" \
  --epochs 3 --json > "$out/bench_train.json" 2> "$out/bench_train.txt"
row "lathe bench train" "rc=$?" "$rows x $features, batch $batch"
timeout 120 env -u LD_LIBRARY_PATH python3 "$here/torch_logreg.py" --rows "$rows" --features "$features" --batch "$batch" \
  --epochs 3 > "$out/torch_logreg.json" 2> "$out/torch_logreg.txt"
row "pytorch baseline" "rc=$?" "torch_logreg.py"
row "total seconds" "$(( $(date +%s) - start ))" ""

if command -v python3 >/dev/null; then
  env -u LD_LIBRARY_PATH python3 - "$out" >> "$out/summary.md" <<'PY'
import json, os, re, sys
out = sys.argv[1]
def load(name):
    try:
        return json.load(open(os.path.join(out, name)))
    except Exception:
        return None
bench = load("bench.json")
if bench:
    runs = [x for x in bench["benchmarks"] if "error_message" not in x]
    base = lambda n: n.split("/")[0]
    args = lambda n: "/".join(p for p in n.split("/")[1:] if re.fullmatch(r"\d+", p))
    copy = {args(x["name"]): x.get("bytes_per_second", 0) for x in runs if base(x["name"]) == "BM_GPU_DeviceCopyCeiling"}
    for x in runs:
        name, gbs = x["name"], x.get("bytes_per_second", 0) / 1e9
        if not base(name).startswith("BM_GPU_"):
            continue
        if base(name).endswith("Ceiling"):
            print(f"| {name[:28]:<28} | {gbs:7.1f} GB/s | ceiling")
            continue
        c = copy.get(args(name))
        extra = f"{gbs * 1e9 / c:.2f} x device copy" if c and gbs else f"{x.get('real_time', 0):.1f} {x.get('time_unit', '')}"
        print(f"| {name[:28]:<28} | {gbs:7.1f} GB/s | {extra}")
lathe, torch = load("bench_train.json"), load("torch_logreg.json")
if lathe:
    e, p = lathe["exact"], lathe["parallel"]
    print(f"| lathe exact epoch            | {e['epoch_seconds']:.4f} s     | {e['rows_per_second']:.3g} rows/s, step {e['step_microseconds']:.2f} us, {e['fraction_of_ceiling']:.3f} of device copy")
    print(f"| lathe parallel epoch         | {p['epoch_seconds']:.4f} s     | {p['rows_per_second']:.3g} rows/s, {p['fraction_of_ceiling']:.3f} of device copy")
if torch:
    for v in ("eager", "graph"):
        t = torch[v]
        ratio = f", {t['epoch_seconds'] / lathe['exact']['epoch_seconds']:.1f} x lathe exact" if lathe else ""
        print(f"| torch {v:<6} epoch           | {t['epoch_seconds']:.4f} s     | step {t['step_microseconds']:.2f} us{ratio}")
PY
fi
echo
cat "$out/summary.md"
