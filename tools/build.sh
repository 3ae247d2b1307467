#!/usr/bin/env bash
# Configures and builds lowbit into build/ (Release, -march=native: LOWBIT_NATIVE is off by
# default in CMake so that a plain configure is portable; the tools build is for this machine).
# Extra arguments go to cmake --build.
#   tools/build.sh --sanitize [ARGS...]   the same into build-asan/, every target instrumented with
#                                         AddressSanitizer + UBSan (LOWBIT_SANITIZE=ON), with -O2 -g
#                                         (RelWithDebInfo) so that reports name file and line
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
cmake_args=(-DCMAKE_BUILD_TYPE=Release)
if [ "${1:-}" = --sanitize ]; then
  shift
  dir=build-asan
  cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOWBIT_SANITIZE=ON)
fi
tools/setup.sh
cmake -S . -B "$dir" "${cmake_args[@]}" -DLOWBIT_NATIVE=ON >/dev/null
cmake --build "$dir" -j"$(nproc)" "$@"
