#!/usr/bin/env bash
# The whole project's GPU check, run on a GPU host from a bundle made by scripts/pack_gpu.sh:
#   source .gpu/env.sh && gpu_check.sh [OUT_DIR]
# Phase 1 (correctness only): the GPU tests alone, then concurrently the CPU tests and the GPU
# tests under compute-sanitizer (memcheck, racecheck, synccheck, initcheck), each with a few
# OpenMP threads (16 threads in each of 5 processes on 16 cores made OpenMP's barriers crawl, and
# every step ran out of time, on the first H200 run). Leftover processes are killed before phase 2
# (alone, for timing): the GPU benchmarks with their ceilings, `lathe bench train` on a table of a
# few GB, the PyTorch baseline (torch_logreg.py) on the same shape, `lathe bench` end to end, and
# last a sweep of parallel mode's worker count on the same table. Writes every log into
# OUT/logs.tgz (the device tool returns at most 8 files) and prints a short summary table last.
# Every step has a time limit so the whole check ends inside one device call.
set -uo pipefail
final=${1:-${OUT:-/tmp/lathe-gpu-check}}
out=$(mktemp -d /tmp/lathe-gpu-check.XXXXXX)
rows=${LATHE_CHECK_ROWS:-20000000}
features=${LATHE_CHECK_FEATURES:-24}
batch=${LATHE_CHECK_BATCH:-1024}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out" "$final"
# The summary grows in $final as steps end, so it comes back even if the call runs out of time.
summary="$final/summary.md"
row() { printf '| %-28s | %-12s | %s\n' "$1" "$2" "$3" >> "$summary"; }
counts() { grep -E '^\[  (PASSED|FAILED)  \] [0-9]+|^\[  SKIPPED \] [0-9]+' "$1" | tr '\n' ' ' | cut -c1-110; }
: > "$summary"
printf '| %-28s | %-12s | %s\n' step verdict detail >> "$summary"

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader > "$out/gpu.txt" 2>&1
lathe info > "$out/info.txt" 2>&1
row "gpu" "" "$(head -c 100 "$out/gpu.txt" | tr -d '\n')"
cs=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
start=$(date +%s)

# Phase 1: correctness (nothing here is timed).
timeout 100 lathe_tests --gtest_filter='GPU*' > "$out/gpu_tests.txt" 2>&1
rc=$?; row "GPU tests" "rc=$rc" "$(counts "$out/gpu_tests.txt")"
row "GPU tests seconds" "$(( $(date +%s) - start ))" ""
OMP_NUM_THREADS=4 timeout 140 lathe_tests --gtest_filter='-GPU*' > "$out/cpu_tests.txt" 2>&1 &
p_cpu=$!
declare -A p_san
for tool in memcheck racecheck synccheck initcheck; do
  [[ -z $cs ]] && continue
  # racecheck and synccheck (shared memory and barriers) skip the two long sweeps: every kernel
  # they launch runs in the other GPU tests too.
  filter='GPU*'
  [[ $tool == racecheck || $tool == synccheck ]] && filter='GPU*:-*StepByStep*:*MatchesCpuOverAwkwardSizes*'
  OMP_NUM_THREADS=2 timeout -k 5 140 "$cs" --tool "$tool" --error-exitcode 99 lathe_tests --gtest_filter="$filter" \
    > "$out/sanitizer_$tool.txt" 2>&1 &
  p_san[$tool]=$!
done
wait $p_cpu; rc=$?; row "CPU tests on GPU host" "rc=$rc" "$(counts "$out/cpu_tests.txt")"
for tool in memcheck racecheck synccheck initcheck; do
  if [[ -z $cs ]]; then row "sanitizer $tool" "absent" "compute-sanitizer not found"; continue; fi
  wait "${p_san[$tool]}"; rc=$?
  row "sanitizer $tool" "rc=$rc" "$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer_$tool.txt" | head -1) $(counts "$out/sanitizer_$tool.txt" | cut -c1-60)"
done
row "phase 1 seconds" "$(( $(date +%s) - start ))" ""
pkill -9 -f lathe_tests 2>/dev/null; pkill -9 -f compute-sanitizer 2>/dev/null; sleep 1
nvidia-smi --query-compute-apps=pid,process_name --format=csv,noheader > "$out/leftover.txt" 2>&1
row "GPU processes left" "$(grep -c . "$out/leftover.txt")" "$(head -c 80 "$out/leftover.txt" | tr '\n' ' ')"

# Phase 2: timings, one at a time.
timeout 120 lathe_bench --benchmark_filter='BM_GPU_' --benchmark_format=json \
  --benchmark_out="$out/bench.json" --benchmark_min_time=0.05 > "$out/bench.txt" 2>&1
row "benchmarks" "rc=$?" "bench.json"
timeout 120 lathe bench train --device cuda --rows "$rows" --features "$features" --batch "$batch" \
  --epochs 3 --json > "$out/bench_train.json" 2> "$out/bench_train.txt"
row "lathe bench train" "rc=$?" "$rows x $features, batch $batch"
timeout 80 env -u LD_LIBRARY_PATH python3 "$here/torch_logreg.py" --rows "$rows" --features "$features" --batch "$batch" \
  --epochs 3 > "$out/torch_logreg.json" 2> "$out/torch_logreg.txt"
row "pytorch baseline" "rc=$?" "torch_logreg.py"
timeout 90 lathe bench --device cuda --rows 4000000 --features 28 --json > "$out/bench_stages.json" 2> "$out/bench_stages.txt"
row "lathe bench (stages)" "rc=$?" "4M x 28: read, decode, h2d, prepare, train, evaluate, score"
# Last, so that it cannot crowd out the above: parallel mode at 2, 4 and 8 workers per SM (132 SMs
# on an H200; the default is one per SM, in bench_train.json), throughput against the loss an
# epoch reaches, to choose the default.
timeout 150 lathe bench train --device cuda --rows "$rows" --features "$features" --batch "$batch" \
  --epochs 3 --workers 264,528,1056 --json > "$out/bench_workers.json" 2> "$out/bench_workers.txt"
row "parallel-mode worker sweep" "rc=$?" "264, 528, 1056 workers"
row "total seconds" "$(( $(date +%s) - start ))" ""

if command -v python3 >/dev/null; then
  env -u LD_LIBRARY_PATH python3 - "$out" >> "$summary" <<'PY'
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
lathe, torch, sweep = load("bench_train.json"), load("torch_logreg.json"), load("bench_workers.json")
if lathe:
    e, p = lathe["exact"], lathe["parallel"]
    print(f"| lathe exact epoch            | {e['epoch_seconds']:.4f} s     | {e['rows_per_second']:.3g} rows/s, step {e['step_microseconds']:.2f} us, {e['fraction_of_ceiling']:.3f} of device copy")
    if "exact_single_launches" in lathe:
        x = lathe["exact_single_launches"]
        print(f"| lathe exact, no graph        | {x['epoch_seconds']:.4f} s     | step {x['step_microseconds']:.2f} us")
    print(f"| lathe exact last loss        | {e.get('last_train_loss', float('nan')):.6f}   |")
    for q in lathe.get("parallel_by_workers", [p]) + (sweep or {}).get("parallel_by_workers", []):
        w = q.get("workers", 0) or "default"
        print(f"| lathe parallel, {str(w):<7} w   | {q['epoch_seconds']:.4f} s     | {q['rows_per_second']:.3g} rows/s, {q['fraction_of_ceiling']:.3f} of device copy, loss {q.get('last_train_loss', float('nan')):.6f}")
if torch:
    for v in ("eager", "graph"):
        t = torch[v]
        ratio = f", {t['epoch_seconds'] / lathe['exact']['epoch_seconds']:.1f} x lathe exact" if lathe else ""
        print(f"| torch {v:<6} epoch           | {t['epoch_seconds']:.4f} s     | step {t['step_microseconds']:.2f} us{ratio}")
PY
fi
tar czf "$final/logs.tgz" -C "$out" .
echo
cat "$summary"
