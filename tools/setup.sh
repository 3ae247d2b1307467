#!/usr/bin/env bash
# Installs what lowbit needs to build and test on Debian 12: the Debian -dev packages (when run
# as root and any is missing) and a Python venv (.venv) with the test-only peers from PyPI.
# Idempotent: a second run only checks. Python is never needed to *run* lowbit.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake pkg-config git
  libprotobuf-dev protobuf-compiler libonnx-dev libonnx-testdata
  libdnnl-dev
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev
  libgtest-dev libbenchmark-dev
  clang libclang-rt-14-dev libomp-dev
  python3 python3-venv python3-pip
  slurm-wlm munge
)
# Pinned so that cross-check results do not move under us.
PIP_PACKAGES=(
  "numpy==2.2.6"
  "onnx==1.23.2"
  "onnxruntime==1.32.0"
  "pycocotools==2.0.11"
  "opencv-python-headless==4.12.0.88"
  "pytest==9.2.0"
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

stamp=".venv/.lowbit-setup-$(printf '%s\n' "${PIP_PACKAGES[@]}" | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "setup: creating .venv with ${PIP_PACKAGES[*]}" >&2
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}" >&2
  touch "$stamp"
fi
