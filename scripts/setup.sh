#!/usr/bin/env bash
# Installs what Lathe needs to build and test: Debian packages (with apt-get, when run as root;
# chromium renders the page `lathe report` writes, in its test) and
# the Python packages the tests use as oracles (h5py, pandas, PyTables; onnx and onnxruntime to
# check and run the graphs `lathe export` writes). Without root it prints
# exactly what to install and stops. Safe to run again: it installs only what is missing.
set -euo pipefail

debs=(build-essential cmake pkg-config libhdf5-dev hdf5-tools zlib1g-dev libdeflate-dev libgtest-dev libgmock-dev
      libbenchmark-dev libcli11-dev nlohmann-json3-dev libtomlplusplus-dev libonnx-dev libprotobuf-dev
      python3 python3-pip chromium)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages; run:" >&2
    echo "  sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

python=${PYTHON:-python3}
if ! "$python" -c "import h5py, pandas, tables, numpy, sklearn, onnx, onnxruntime" 2>/dev/null; then
  echo "setup: installing the Python test oracles (h5py, pandas, tables, onnx, onnxruntime) with pip" >&2
  "$python" -m pip install -q h5py pandas tables numpy scikit-learn onnx onnxruntime 2>/dev/null ||
    "$python" -m pip install -q --break-system-packages h5py pandas tables numpy scikit-learn onnx onnxruntime || {
      echo "setup: could not install the Python test oracles; run: $python -m pip install h5py pandas tables numpy scikit-learn onnx onnxruntime" >&2
      exit 1
    }
fi

if [[ -x /usr/local/cuda/bin/nvcc ]] || command -v nvcc >/dev/null; then
  echo "setup: CUDA toolkit found: the CUDA backend will be built" >&2
else
  echo "setup: no CUDA toolkit (nvcc): building the CPU backend only" >&2
fi
