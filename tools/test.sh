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
root=$PWD
# Every report also goes to a file, so that a finding in a lowbit process that a Python test
# expected to fail (and whose exit status it therefore accepts) still fails the suite below.
logs=$root/build-asan/sanitizer-logs
rm -rf "$logs"
mkdir -p "$logs"
# ASan and UBSan stop at the first finding (halt_on_error; UBSan is also built with
# -fno-sanitize-recover); LeakSanitizer runs at exit. The suppressions cover only libraries
# outside this repository; each says why in tools/lsan.supp.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:check_initialization_order=1:log_path=$logs/asan:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan:${UBSAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$root/tools/lsan.supp:${LSAN_OPTIONS:-}"
status=0
(cd build-asan && ctest --output-on-failure -j"$(nproc)" "$@") || status=$?
if compgen -G "$logs/*" >/dev/null; then
  echo "test.sh: sanitizer reports:" >&2
  for f in "$logs"/*; do
    echo "==> $f" >&2
    cat "$f" >&2
  done
  status=1
fi
exit $status
