#!/usr/bin/env bash
# The whole test suite: setup, build, then every C++ and Python test through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
