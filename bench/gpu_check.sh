#!/usr/bin/env bash
# The whole project's GPU check, run on a GPU host from a bundle made by scripts/pack_gpu.sh:
#   source .gpu/env.sh && gpu_check.sh [OUT_DIR]
# Runs the GPU tests, the same tests under compute-sanitizer (memcheck, racecheck, synccheck,
# initcheck), the benchmarks, and prints a short summary table last. Each step has a time limit.
set -uo pipefail
out=${1:-${OUT:-/tmp/lathe-gpu-check}}
mkdir -p "$out"
row() { printf '| %-28s | %-10s | %s\n' "$1" "$2" "$3" >> "$out/summary.md"; }
: > "$out/summary.md"
printf '| %-28s | %-10s | %s\n' step verdict detail >> "$out/summary.md"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/gpu.txt" 2>&1
lathe info > "$out/info.txt" 2>&1
row "gpu" "$(head -c 60 "$out/gpu.txt" | tr -d '\n')" "$(grep -m1 'GPU 0' "$out/info.txt" | cut -c1-80)"

timeout 300 lathe_tests --gtest_filter='GPU*' > "$out/gpu_tests.txt" 2>&1
rc=$?
row "GPU tests" "rc=$rc" "$(grep -E '^\[  (PASSED|FAILED)  \] [0-9]+|^\[  SKIPPED \] [0-9]+' "$out/gpu_tests.txt" | tr '\n' ' ' | cut -c1-120)"

timeout 300 lathe_tests --gtest_filter='-GPU*' > "$out/cpu_tests.txt" 2>&1
rc=$?
row "CPU tests on GPU host" "rc=$rc" "$(grep -E '^\[  (PASSED|FAILED)  \] [0-9]+|^\[  SKIPPED \] [0-9]+' "$out/cpu_tests.txt" | tr '\n' ' ' | cut -c1-120)"

cs=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
for tool in memcheck racecheck synccheck initcheck; do
  if [[ -z $cs ]]; then row "sanitizer $tool" "absent" "compute-sanitizer not found"; continue; fi
  timeout 300 "$cs" --tool "$tool" --error-exitcode 99 lathe_tests --gtest_filter='GPU*' \
    > "$out/sanitizer_$tool.txt" 2>&1
  rc=$?
  row "sanitizer $tool" "rc=$rc" "$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer_$tool.txt" | head -1)"
done

timeout 300 lathe_bench --benchmark_format=json --benchmark_out="$out/bench.json" \
  --benchmark_min_time=0.2 > "$out/bench.txt" 2>&1
rc=$?
row "benchmarks" "rc=$rc" "$out/bench.json"
if command -v python3 >/dev/null && [[ -s $out/bench.json ]]; then
  python3 - "$out/bench.json" >> "$out/summary.md" <<'PY'
import json, re, sys
runs = [x for x in json.load(open(sys.argv[1]))["benchmarks"] if "error_message" not in x]
def args(name):
    return "/".join(p for p in name.split("/")[1:] if re.fullmatch(r"\d+", p))
ceilings = {}
for x in runs:
    base = x["name"].split("/")[0]
    if base.endswith("Ceiling"):
        ceilings[(base, args(x["name"]))] = x.get("bytes_per_second", 0)
for x in runs:
    base = x["name"].split("/")[0]
    gbs = x.get("bytes_per_second", 0) / 1e9
    if base.endswith("Ceiling"):
        print(f"| {x['name'][:28]:<28} | {gbs:7.2f} GB/s | ceiling")
        continue
    ceiling = "BM_GPU_DeviceCopyCeiling" if base.startswith("BM_GPU_") else "BM_MemcpyCeiling"
    c = ceilings.get((ceiling, args(x["name"])))
    ratio = f"{gbs * 1e9 / c:.2f} x {ceiling[3:]}" if c else "no ceiling of that size"
    print(f"| {x['name'][:28]:<28} | {gbs:7.2f} GB/s | {ratio}")
PY
fi
echo
cat "$out/summary.md"
