#!/usr/bin/env bash
# Configures and builds Lathe in build/ (Release; CUDA when nvcc is found). Extra arguments go to
# CMake's configure step, e.g. -DLATHE_CUDA=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -d /usr/local/cuda/bin ]] && export PATH="/usr/local/cuda/bin:$PATH"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)"
