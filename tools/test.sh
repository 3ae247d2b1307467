#!/usr/bin/env bash
# The whole test suite: setup, build, then every C++ and Python test through CTest.
#   tools/test.sh --sanitize [ARGS...]   the same suite on the ASan + UBSan build in build-asan/
#                                        (tools/build.sh --sanitize); the Python tests then run
#                                        that build's lowbit binary. Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != --sanitize ]; then
  tools/build.sh
  cd build
  exec ctest --output-on-failure -j"$(nproc)" "$@"
fi
shift
tools/build.sh --sanitize
# ASan and UBSan stop at the first finding (halt_on_error; UBSan is also built with
# -fno-sanitize-recover) and exit non-zero with the report on stderr; LeakSanitizer runs at exit.
# (No log_path: GCC 12's runtime drops UBSan reports when ASan's log_path is set.) The
# suppressions cover only libraries outside this repository; each says why in tools/lsan.supp.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:check_initialization_order=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$PWD/tools/lsan.supp:${LSAN_OPTIONS:-}"
cd build-asan
exec ctest --output-on-failure -j"$(nproc)" "$@"
