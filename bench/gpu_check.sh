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
# Successful runs in run order; a file's benchmarks are registered, and so run, together.
runs = [x for x in json.load(open(sys.argv[1]))["benchmarks"] if "error_message" not in x]
def base(name):
    return name.split("/")[0]
def args(name):
    return "/".join(p for p in name.split("/")[1:] if re.fullmatch(r"\d+", p))
ceilings = [(i, base(x["name"]), args(x["name"]), x.get("bytes_per_second", 0))
            for i, x in enumerate(runs) if base(x["name"]).endswith("Ceiling")]
# The ceiling a benchmark is read against, (index, name, args, bytes/s) or None. A BM_GPU_...
# benchmark: BM_GPU_DeviceCopyCeiling of the same numeric arguments. Any other: a ...MemcpyCeiling
# of the same numeric arguments, preferring one of the same prefix (BM_ProfileMemcpyCeiling for
# BM_ProfileBlockCpu), then the nearest one run before it (its own file's), then any.
def ceiling_for(i, name):
    b, a = base(name), args(name)
    if b.startswith("BM_GPU_"):
        return next((c for c in ceilings if c[1] == "BM_GPU_DeviceCopyCeiling" and c[2] == a), None)
    def rank(c):
        stem = c[1][len("BM_"):-len("MemcpyCeiling")]
        same_prefix = stem != "" and b[len("BM_"):].startswith(stem)
        return (not same_prefix, c[0] > i, abs(i - c[0]))
    found = [c for c in ceilings if c[1].endswith("MemcpyCeiling") and c[2] == a]
    return min(found, key=rank, default=None)
for i, x in enumerate(runs):
    gbs = x.get("bytes_per_second", 0) / 1e9
    if base(x["name"]).endswith("Ceiling"):
        print(f"| {x['name'][:28]:<28} | {gbs:7.2f} GB/s | ceiling")
        continue
    c = ceiling_for(i, x["name"])
    ratio = f"{gbs * 1e9 / c[3]:.2f} x {c[1][3:]}" if c and c[3] else "no ceiling of that size"
    print(f"| {x['name'][:28]:<28} | {gbs:7.2f} GB/s | {ratio}")
PY
fi
echo
cat "$out/summary.md"
