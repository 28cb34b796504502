#!/usr/bin/env bash
# The whole project's GPU check, run on a GPU host from a bundle made by scripts/pack_gpu.sh:
#   source .gpu/env.sh && gpu_check.sh [OUT_DIR] [PHASES]
# PHASES: "1" (correctness), "2" (timings) or "12" (both, the default); "3" (profiles) only when
# asked for. One device call may run 600 s and a session has 15 minutes of device time, start-up
# included: each phase is sized to end in about 6 minutes at worst (most steps end well before
# their timeouts), so run "1" and "2" as two calls when in doubt, then "3" if time is left. Each
# phase's logs are copied to OUT_DIR as soon as it ends, so a call cut short still brings back what
# ran.
#
# Phase 1: the GPU tests alone; then, concurrently, the GPU tests under compute-sanitizer. memcheck
# and initcheck run every GPU test with the suites that have not yet run on a device first;
# racecheck and synccheck (shared memory and barriers) run those suites only. The CPU tests are
# CI's (they need ../shared/data, which the device tool does not carry). Few OpenMP threads per
# process: 16 threads in each of 5 processes on 16 cores made OpenMP's barriers crawl on the first
# H200 run.
# Then the lathe command itself on both devices (bench/gpu_cli_check.sh, about a minute).
# Phase 2 (alone, for timing): the GPU benchmarks with their ceilings; `lathe bench train` on a
# table of a few GB, with parallel mode's worker sweep in the same call; the PyTorch baseline
# (torch_logreg.py) on the same shape; `lathe bench` end to end.
# Both the dense path of linear models over numeric features (dense_exact_step_kernel,
# dense_local_sgd_round_kernel: new since e636106) and the general kernels (LATHE_CUDA_DENSE_STEP=off)
# are tested in phase 1 and timed in phase 2.
# Phase 3 (about 2 minutes): Nsight Compute on one launch of each step kernel, both paths, for where
# a step's time goes (ncu --clock-control none; the summary keeps each kernel's duration, issue
# and memory throughput, and top stall reasons; the full reports are in logs-phase3.tgz).
# Prints a short summary table last; OUT_DIR/summary.md grows as steps end.
set -uo pipefail
final=${1:-${OUT:-/tmp/lathe-gpu-check}}
phases=${2:-${LATHE_CHECK_PHASES:-12}}
out=$(mktemp -d /tmp/lathe-gpu-check.XXXXXX)
rows=${LATHE_CHECK_ROWS:-20000000}
features=${LATHE_CHECK_FEATURES:-24}
batch=${LATHE_CHECK_BATCH:-1024}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out" "$final"
summary="$final/summary.md"
row() { printf '| %-28s | %-12s | %s\n' "$1" "$2" "$3" >> "$summary"; }
counts() { grep -E '^\[  (PASSED|FAILED)  \] [0-9]+|^\[  SKIPPED \] [0-9]+' "$1" | tr '\n' ' ' | cut -c1-110; }
failed() { grep -E '^\[  FAILED  \] [A-Za-z]' "$1" | sed 's/^\[  FAILED  \] //; s/ (.*//' | sort -u | tr '\n' ' ' | cut -c1-400; }
# Copies this phase's logs next to the summary (the device tool returns at most 8 files).
save_logs() { tar czf "$final/logs-phase$1.tgz" -C "$out" . 2>/dev/null; }
if [[ ! -s $summary ]]; then
  printf '| %-28s | %-12s | %s\n' step verdict detail >> "$summary"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader > "$out/gpu.txt" 2>&1
lathe info > "$out/info.txt" 2>&1
row "gpu" "" "$(head -c 100 "$out/gpu.txt" | tr -d '\n')"
cs=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
start=$(date +%s)

if [[ $phases == *1* ]]; then
  timeout -k 5 90 lathe_tests --gtest_filter='GPU*' > "$out/gpu_tests.txt" 2>&1
  rc=$?; row "GPU tests" "rc=$rc" "$(counts "$out/gpu_tests.txt")"
  [[ $rc != 0 ]] && row "GPU tests failed" "" "$(failed "$out/gpu_tests.txt")"
  row "GPU tests seconds" "$(( $(date +%s) - start ))" ""
  # The per-step gather (windows too large to gather whole) and the copy stream's release wait
  # that streamed training depends on: forced on the model, streamed and refit suites, and on plain
  # SGD's catch-up of lazy penalties (it reads the gathered batch's slots before the forward pass).
  LATHE_CUDA_GATHER_EPOCH=never timeout -k 5 60 lathe_tests \
    --gtest_filter='GPU/StreamedOnDevice.*:GPU/ModelOnDevice.*Planned*:GPU/ModelOnDevice.*Sparse*:GPU/ModelOnDevice.SameInputs*:GPU/RefitOnDevice.*Categorical*:GPU/ModelOnDevice.LazySgd*:GPU/CudaReviewOnDevice.LazySgd*' \
    > "$out/gpu_tests_step_gather.txt" 2>&1
  rc=$?; row "GPU tests, per-step gather" "rc=$rc" "$(counts "$out/gpu_tests_step_gather.txt")"
  [[ $rc != 0 ]] && row "  per-step gather failed" "" "$(failed "$out/gpu_tests_step_gather.txt")"
  # The general kernels on the dense-only models too (the dense path takes them by default).
  LATHE_CUDA_DENSE_STEP=off timeout -k 5 60 lathe_tests \
    --gtest_filter='GPU/ModelOnDevice.MatchesTheCpu*:GPU/ModelOnDevice.*Planned*:GPU/ModelOnDevice.EpochPermutation*:GPU/LocalSgdOnDevice.*:GPU/StreamedOnDevice.*NumericColumnsAlone*:GPU/RefitOnDevice.*Numeric*' \
    > "$out/gpu_tests_general.txt" 2>&1
  rc=$?; row "GPU tests, general kernels" "rc=$rc" "$(counts "$out/gpu_tests_general.txt")"
  [[ $rc != 0 ]] && row "  general kernels failed" "" "$(failed "$out/gpu_tests_general.txt")"
  # The lathe command's workflow with --device cuda against --device cpu (train with the refit,
  # eval, score; bench/gpu_cli_check.sh): one row per case.
  timeout -k 5 150 "$here/gpu_cli_check.sh" "$out/cli" > "$out/cli_check.txt" 2>&1
  rc=$?; row "CLI cuda against cpu" "rc=$rc" "bench/gpu_cli_check.sh; logs in cli/"
  while read -r name verdict detail; do row "  $name" "$verdict" "$detail"; done < <(grep -E '^[a-z_]+ (ok|check|FAIL) ' "$out/cli_check.txt")
  # Never run on a device before this check's first run after session 6 (e636106..): the copy
  # stream's double buffer, streamed training, regression predictions, the scorer's GPU path, the
  # refit's second binding of a trained model (train --refit: RefitOnDevice, about 400 steps over
  # 100 small epochs on the device).
  fresh='GPU/StreamedOnDevice.*:GPU/ScorerDeviceTest.*:GPUModel.*:GPU/ModelOnDevice.*:GPU/CudaReviewOnDevice.*:GPU/ProgressOnDevice.*:GPU/RefitOnDevice.*'
  local_sgd='GPU/LocalSgdOnDevice.*'
  # gtest runs tests in registration order whatever the filter says, so the fresh suites run in a
  # process of their own first; memcheck and initcheck then go on to the other GPU tests until the
  # phase's deadline. racecheck and synccheck (shared memory and barriers) run the fresh suites
  # without the long step-by-step sweep (its kernels run in the other tests too), then local SGD.
  san_deadline=$(( $(date +%s) + 150 ))
  declare -A p_san
  for tool in memcheck initcheck racecheck synccheck; do
    [[ -z $cs ]] && continue
    (
      log="$out/sanitizer_$tool.txt"
      # The rebinding test queues some 12k launches, and a sanitizer's serialized run hides the race
      # it looks for anyway: left to the plain GPU run.
      first="$fresh:-*Rebinding*"
      rest="GPU*:-$fresh"
      if [[ $tool == racecheck || $tool == synccheck ]]; then
        # The refit's suite runs the step kernels the other suites do, on a second binding: a stale
        # or short buffer there is memcheck's and initcheck's to find, not theirs.
        first="$fresh:-*StepByStep*:*Rebinding*:*RefitOnDevice*"
        # Then local SGD's kernel, whose per-worker touched flags are new since e636106 too (in a
        # second process, so that the fresh suites come first), without the 50k-row acceptance run.
        rest="$local_sgd:-*ValidationLogloss*"
      fi
      # timeout signals its whole process group, so the sanitizer's target dies with it.
      OMP_NUM_THREADS=3 timeout -k 5 $(( san_deadline - $(date +%s) )) "$cs" --tool "$tool" --error-exitcode 99 \
        lathe_tests --gtest_filter="$first" > "$log" 2>&1
      rc=$?
      left=$(( san_deadline - $(date +%s) ))
      if [[ $rc == 0 && $left -gt 10 ]]; then
        echo "=== then: $rest ===" >> "$log"
        OMP_NUM_THREADS=3 timeout -k 5 "$left" "$cs" --tool "$tool" --error-exitcode 99 \
          lathe_tests --gtest_filter="$rest" >> "$log" 2>&1
        rc=$?
      fi
      exit $rc
    ) &
    p_san[$tool]=$!
  done
  for tool in memcheck initcheck racecheck synccheck; do
    if [[ -z $cs ]]; then row "sanitizer $tool" "absent" "compute-sanitizer not found"; continue; fi
    wait "${p_san[$tool]}"; rc=$?
    row "sanitizer $tool" "rc=$rc" "$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer_$tool.txt" | tr '\n' ' ' | cut -c1-90) $(counts "$out/sanitizer_$tool.txt" | cut -c1-60)"
    [[ $rc != 0 && $rc != 124 && $rc != 137 ]] && row "  $tool failed" "" "$(failed "$out/sanitizer_$tool.txt")"
  done
  row "phase 1 seconds" "$(( $(date +%s) - start ))" ""
  nvidia-smi --query-compute-apps=pid,process_name --format=csv,noheader > "$out/leftover.txt" 2>&1
  row "GPU processes left" "$(grep -c . "$out/leftover.txt")" "$(head -c 80 "$out/leftover.txt" | tr '\n' ' ')"
  save_logs 1
fi

if [[ $phases == *2* ]]; then
  timeout -k 5 60 lathe_bench --benchmark_filter='BM_GPU_' --benchmark_format=json \
    --benchmark_out="$out/bench.json" --benchmark_min_time=0.05 > "$out/bench.txt" 2>&1
  row "benchmarks" "rc=$?" "bench.json"
  # The default worker count (0: one per SM) and 2, 4 and 8 per SM (132 SMs on an H200), on the
  # same table in one call: throughput against the loss an epoch reaches, to choose the default.
  timeout -k 5 120 lathe bench train --device cuda --rows "$rows" --features "$features" --batch "$batch" \
    --epochs 3 --workers 0,264,528,1056 --json > "$out/bench_train.json" 2> "$out/bench_train.txt"
  row "lathe bench train" "rc=$?" "$rows x $features, batch $batch, workers 0,264,528,1056"
  # The same table on the general kernels (LATHE_CUDA_DENSE_STEP=off): what the dense path gains.
  LATHE_CUDA_DENSE_STEP=off timeout -k 5 90 lathe bench train --device cuda --rows "$rows" --features "$features" \
    --batch "$batch" --epochs 3 --json > "$out/bench_train_general.json" 2> "$out/bench_train_general.txt"
  row "lathe bench train, general" "rc=$?" "LATHE_CUDA_DENSE_STEP=off, default workers"
  timeout -k 5 50 env -u LD_LIBRARY_PATH python3 "$here/torch_logreg.py" --rows "$rows" --features "$features" \
    --batch "$batch" --epochs 1 > "$out/torch_logreg.json" 2> "$out/torch_logreg.txt"
  row "pytorch baseline" "rc=$?" "torch_logreg.py, 1 epoch"
  timeout -k 5 60 lathe bench --device cuda --rows 4000000 --features 28 --json > "$out/bench_stages.json" \
    2> "$out/bench_stages.txt"
  row "lathe bench (stages)" "rc=$?" "4M x 28: read, decode, h2d, prepare, train, evaluate, score"
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
lathe, torch = load("bench_train.json"), load("torch_logreg.json")
general = load("bench_train_general.json")
if general:
    e, p = general["exact"], general["parallel"]
    print(f"| general kernels: exact       | {e['epoch_seconds']:.4f} s     | step {e['step_microseconds']:.2f} us, {e['fraction_of_ceiling']:.3f} of device copy, loss {e.get('last_train_loss', float('nan')):.6f}")
    print(f"| general kernels: parallel    | {p['epoch_seconds']:.4f} s     | {p['fraction_of_ceiling']:.3f} of device copy, loss {p.get('last_train_loss', float('nan')):.6f}")
if lathe:
    e, p = lathe["exact"], lathe["parallel"]
    print(f"| lathe exact epoch            | {e['epoch_seconds']:.4f} s     | {e['rows_per_second']:.3g} rows/s, step {e['step_microseconds']:.2f} us, {e['fraction_of_ceiling']:.3f} of device copy")
    if "exact_single_launches" in lathe:
        x = lathe["exact_single_launches"]
        print(f"| lathe exact, no graph        | {x['epoch_seconds']:.4f} s     | step {x['step_microseconds']:.2f} us")
    print(f"| lathe exact last loss        | {e.get('last_train_loss', float('nan')):.6f}   |")
    for q in lathe.get("parallel_by_workers", [p]):
        w = q.get("workers", 0) or "default"
        print(f"| lathe parallel, {str(w):<7} w   | {q['epoch_seconds']:.4f} s     | {q['rows_per_second']:.3g} rows/s, {q['fraction_of_ceiling']:.3f} of device copy, loss {q.get('last_train_loss', float('nan')):.6f}")
if torch:
    for v in ("eager", "graph"):
        t = torch[v]
        ratio = f", {t['epoch_seconds'] / lathe['exact']['epoch_seconds']:.1f} x lathe exact" if lathe else ""
        print(f"| torch {v:<6} epoch           | {t['epoch_seconds']:.4f} s     | step {t['step_microseconds']:.2f} us{ratio}")
stages = load("bench_stages.json")
if stages:
    for key, st in stages.get("stages", {}).items():
        frac = st.get("fraction_of_ceiling")
        gbps = st.get("gbps")
        detail = st.get("note") or f"{gbps or 0:.2f} GB/s, {'-' if frac is None else f'{frac:.3f}'} of {st.get('ceiling', '')}"
        print(f"| stage {key[:22]:<22} | {st.get('seconds') or 0:.4f} s     | {detail}")
PY
  fi
  save_logs 2
fi

if [[ $phases == *3* ]]; then
  ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
  if [[ -z $ncu ]]; then
    row "ncu" "absent" "Nsight Compute not found"
  else
    sections="--section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis"
    # kernel name regex, LATHE_CUDA_DENSE_STEP, launches to skip (past the first epoch's warm-up)
    for spec in "dense_exact_step:on:200" "dense_local_sgd_round:on:2" "exact_step_kernel:off:200" "local_sgd_round_kernel:off:2"; do
      IFS=: read -r kernel path skip <<< "$spec"
      log="$out/ncu_${kernel}.txt"
      LATHE_CUDA_DENSE_STEP=$path timeout -k 5 60 "$ncu" --clock-control none --kernel-name "regex:$kernel" \
        --launch-skip "$skip" --launch-count 1 $sections \
        lathe bench train --device cuda --rows 2000000 --features "$features" --batch "$batch" --epochs 2 \
        > "$log" 2>&1
      rc=$?
      duration=$(grep -m1 -E '^ +Duration ' "$log" | awk '{print $(NF-1), $NF}')
      sm=$(grep -m1 -E '^ +Compute \(SM\) Throughput ' "$log" | awk '{print $NF}')
      mem=$(grep -m1 -E '^ +Memory Throughput ' "$log" | awk '{print $NF}')
      row "ncu $kernel" "rc=$rc" "duration $duration; SM $sm %; memory $mem %"
      grep -E 'Stall|stall' "$log" | head -3 | cut -c1-200 > "$out/ncu_${kernel}_stalls.txt"
      [[ -s "$out/ncu_${kernel}_stalls.txt" ]] && row "  stalls" "" "$(tr '\n' ' ' < "$out/ncu_${kernel}_stalls.txt" | tr -s ' ' | cut -c1-300)"
    done
  fi
  save_logs 3
fi
echo
cat "$summary"
