#!/usr/bin/env bash
# Fuzzes the readers of files users download (ONNX incl. external data, NPY, COCO ground truth
# and detections JSON, ranges files, run step records, image lists) with libFuzzer + ASan +
# UBSan: tests/fuzz/fuzz_<target>.cpp, built with clang into build-fuzz/.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]   run each target SECONDS (default 60); all by default
#   JOBS=N tools/fuzz.sh 600              N targets at a time (default 1)
#
# The corpus of each target grows in build-fuzz/corpus/<target>/ from the seeds in
# tests/fuzz/seeds/<target>/ (made from the bundled assets by tests/fuzz/make_seeds.py) plus,
# for onnx, the node-test models of Debian's libonnx-testdata. A crash, leak, sanitizer report or
# timeout leaves its input in build-fuzz/artifacts/<target>/ and makes the script exit 1; the
# last line per target is "fuzz <target>: <execs> execs, <n> crashes". Exit 77 (CTest: skipped)
# when clang with libFuzzer is not installed (Debian: clang, libclang-rt-14-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(onnx npy coco ranges run_record image_list)
jobs=${JOBS:-1}

CXX=${FUZZ_CXX:-clang++}
CC=${FUZZ_CC:-clang}
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' \
  >"$probe/p.cpp"
if ! command -v "$CXX" >/dev/null ||
   ! "$CXX" -fsanitize=fuzzer,address "$probe/p.cpp" -o "$probe/p" 2>/dev/null; then
  echo "fuzz: $CXX with libFuzzer not found (Debian: apt-get install clang libclang-rt-14-dev); skipped" >&2
  exit 77
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ ! -f build-fuzz/CMakeCache.txt ]; then
  cmake -S . -B build-fuzz -DLOWBIT_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_C_COMPILER="$CC" "${launcher[@]}" >/dev/null
fi
cmake --build build-fuzz -j"$(nproc)" >/dev/null

run_one() {
  local t=$1 secs=$2
  local corpus=build-fuzz/corpus/$t art=build-fuzz/artifacts/$t log=build-fuzz/logs/$t.log
  mkdir -p "$corpus" "$art" build-fuzz/logs
  local seeds=(tests/fuzz/seeds/"$t")
  if [ "$t" = onnx ] && [ -d /usr/share/libonnx-testdata/data/node ]; then
    mkdir -p build-fuzz/seeds-onnx
    # A few dozen node-test models (small, every attribute kind), once.
    if [ -z "$(ls -A build-fuzz/seeds-onnx)" ]; then
      find /usr/share/libonnx-testdata/data/node -name model.onnx -size -4k | sort | awk 'NR % 20 == 1' |
        while read -r m; do cp "$m" "build-fuzz/seeds-onnx/$(basename "$(dirname "$m")").onnx"; done
    fi
    seeds+=(build-fuzz/seeds-onnx)
  fi
  [ "$t" = image_list ] && mkdir -p build-fuzz/seeds-list && cp assets/calib/calib100.txt build-fuzz/seeds-list/ &&
    seeds+=(build-fuzz/seeds-list)
  local rc=0
  # -rss_limit_mb / -malloc_limit_mb: a reader that allocates what a header claims is a finding.
  ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}" \
  build-fuzz/tests/fuzz/fuzz_"$t" "$corpus" "${seeds[@]}" -max_total_time="$secs" -timeout=20 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$art/" >"$log" 2>&1 || rc=$?
  local execs crashes
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crashes=$(find "$art" -type f | wc -l)
  echo "fuzz $t: ${execs:-0} execs, $crashes crashes (rc $rc, log $log)"
  [ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ]
}
export -f run_one

printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c "run_one {} $secs"
