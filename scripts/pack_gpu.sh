#!/usr/bin/env bash
# Builds Lathe for an H100/H200 (sm_90) in build-gpu/ and packs lathe, the tests, the benchmarks and
# bench/gpu_check.sh with their shared libraries into .gpu/ (ignored by git) for the device tool:
#   run: source .gpu/env.sh && gpu_check.sh $OUT [PHASES]      (carry: .gpu; PHASES 1, 2 or 12)
# The device tool carries at most 64 MiB: the size is printed last, with a warning near the limit.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/cuda/bin:$PATH"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DLATHE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
cmake --build build-gpu -j"$(nproc)"
rm -rf .gpu
../shared/gpu-host/pack.sh .gpu build-gpu/lathe build-gpu/tests/lathe_tests build-gpu/bench/lathe_bench \
  bench/gpu_check.sh bench/gpu_cli_check.sh bench/torch_logreg.py
du -sh .gpu
size_mib=$(( $(du -sk .gpu | cut -f1) / 1024 ))
if (( size_mib > 60 )); then
  echo "warning: .gpu holds ${size_mib} MiB, near the 64 MiB the device tool carries" >&2
fi
