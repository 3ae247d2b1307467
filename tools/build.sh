#!/usr/bin/env bash
# Configures and builds lowbit into build/ (Release, -march=native: LOWBIT_NATIVE is off by
# default in CMake so that a plain configure is portable; the tools build is for this machine).
# Extra arguments go to cmake --build.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLOWBIT_NATIVE=ON >/dev/null
cmake --build build -j"$(nproc)" "$@"
