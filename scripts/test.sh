#!/usr/bin/env bash
# The test command: set up, build, and run every test with ctest. GPU tests (label `gpu`) skip with
# a message where no GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)"
