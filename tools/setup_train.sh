#!/usr/bin/env bash
# Creates .venv-train, the Python environment used only by the fixture tools
# (tools/export_fixtures.py, tools/train_fixture.py). Tests and CI never use it.
#
# It layers a pinned Ultralytics 8.3.x (the last series whose raw head tensor
# /model.23/Concat_3_output_0 is the per-level [box | cls] concat; 8.4.x renamed it) on Debian's
# torch 1.13 stack. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's system interpreter: the apt python3-* packages below only exist for it.
SYS_PYTHON=/usr/bin/python3
APT_PACKAGES=(
  python3-venv python3-pip
  python3-torch python3-torchvision python3-opencv python3-numpy python3-pandas python3-scipy
  python3-matplotlib python3-yaml python3-psutil python3-pil python3-requests python3-tqdm
  python3-onnx
)
# Installed with --no-deps so that pip never replaces Debian's torch/numpy/opencv/onnx.
# polars and ultralytics-thop are Ultralytics dependencies that Debian 12 does not package.
# polars 1.33 is the last release shipped as one wheel (later ones split off a runtime package).
PIP_NODEPS=(
  "ultralytics==8.3.253"
  "ultralytics-thop==2.0.18"
  "polars==1.33.1"
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup_train: missing Debian packages: ${missing[*]}" >&2
    echo "setup_train: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup_train: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Another process may hold the dpkg lock for a while; wait for it instead of failing.
  for _ in $(seq 1 40); do
    if apt-get update -qq && apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    then break; fi
    echo "setup_train: apt busy, retrying in 15 s" >&2
    sleep 15
  done
fi

stamp=".venv-train/.lowbit-setup-$(printf '%s\n' "${PIP_NODEPS[@]}" | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "setup_train: creating .venv-train with ${PIP_NODEPS[*]}" >&2
  [ -x .venv-train/bin/python ] || "$SYS_PYTHON" -m venv --system-site-packages .venv-train
  .venv-train/bin/python -m pip install -q --disable-pip-version-check --no-deps \
    "${PIP_NODEPS[@]}" >&2
  touch "$stamp"
fi

# Fails loudly if the stack does not import.
YOLO_CONFIG_DIR="${YOLO_CONFIG_DIR:-$PWD/.venv-train/yolo-config}" .venv-train/bin/python - <<'EOF'
import torch, torchvision, cv2, onnx, ultralytics
print("setup_train: torch", torch.__version__, "torchvision", torchvision.__version__,
      "cv2", cv2.__version__, "onnx", onnx.__version__, "ultralytics", ultralytics.__version__)
EOF
