#!/usr/bin/env bash
# The .deb packages on a clean Debian 12 (issue 16): makes them with CPack from a build folder,
# installs them with apt in a minimal bookworm chroot (their dependencies come from Debian's
# archive), runs `lowbit --version` and `lowbit run --max-images 20` as a non-root user from
# /tmp, builds examples/load_run_eval.cpp against the installed lowbit-dev through
# find_package(lowbit) and through pkg-config and runs it, then purges both packages and checks
# that their files are gone.
#
#   tools/deb_check.sh [BUILD_DIR]        (default: build; run as root)
#
# Needs root (chroot, mounts), mmdebstrap and network access to deb.debian.org. The chroot's
# base (mmdebstrap --variant=apt bookworm, a 160 MB tarball) is cached in
# ${LOWBIT_CACHE_DIR:-~/.cache/lowbit}/debian12-apt.tar; each run unpacks it into a temporary
# folder and downloads the packages lowbit needs (about 270 MB). Not run by CI or CTest.
set -euo pipefail

fail() {
    echo "deb_check: $*" >&2
    exit 1
}

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(realpath "${1:-$REPO/build}")
CACHE=${LOWBIT_CACHE_DIR:-$HOME/.cache/lowbit}
BASE=$CACHE/debian12-apt.tar

[[ $(id -u) == 0 ]] || fail "needs root (chroot and mounts)"
command -v mmdebstrap >/dev/null || fail "mmdebstrap is not installed (apt-get install mmdebstrap)"
[[ -f $BUILD/CPackConfig.cmake ]] || fail "$BUILD is not a configured CMake build folder"

WORK=$(mktemp -d /tmp/lowbit-deb-check.XXXXXX)
ROOT=$WORK/root
MOUNTS=()
cleanup() {
    local m
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        m=${MOUNTS[i]}
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

step() { echo "== $*" >&2; }

step "packages (cpack -G DEB in $BUILD)"
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$WORK/debs" >/dev/null
shopt -s nullglob
debs=("$WORK"/debs/*.deb)
((${#debs[@]} == 2)) || fail "expected 2 packages, got: ${debs[*]}"
for d in "${debs[@]}"; do echo "   $(basename "$d")" >&2; done

if [[ ! -f $BASE ]]; then
    step "Debian 12 base into $BASE (mmdebstrap, once)"
    mkdir -p "$CACHE"
    mmdebstrap --variant=apt --format=tar bookworm "$BASE.tmp" >&2
    mv "$BASE.tmp" "$BASE"
fi

step "chroot $ROOT"
mkdir -p "$ROOT"
tar -xf "$BASE" -C "$ROOT"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
for m in proc dev sys; do
    case $m in
        proc) mount -t proc proc "$ROOT/proc" ;;
        *) mount --rbind "/$m" "$ROOT/$m" && mount --make-rslave "$ROOT/$m" ;;
    esac
    MOUNTS+=("$ROOT/$m")
done
mkdir -p "$ROOT/opt/debs" "$ROOT/opt/example"
cp "${debs[@]}" "$ROOT/opt/debs/"
cp "$REPO/examples/CMakeLists.txt" "$REPO/examples/load_run_eval.cpp" "$ROOT/opt/example/"
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
as_user() { in_root su -s /bin/bash -l tester -c "cd /tmp && $1"; }

step "apt install the packages (dependencies from Debian 12) and the example's build tools"
in_root apt-get update -q >/dev/null
in_chroot=()  # the packages' paths inside the chroot (a glob would expand on the host)
for d in "${debs[@]}"; do in_chroot+=("/opt/debs/$(basename "$d")"); done
in_root apt-get install -y -q --no-install-recommends "${in_chroot[@]}" >/dev/null
in_root dpkg -s lowbit lowbit-dev >/dev/null || fail "the packages did not install"
in_root apt-get install -y -q --no-install-recommends cmake make g++ pkg-config >/dev/null
in_root useradd -m tester

step "lowbit --version; lowbit run --max-images 20 (user tester, in /tmp)"
as_user "lowbit --version"
as_user "lowbit run --max-images 20 --root /tmp/run >/tmp/run.log 2>&1 || { tail -30 /tmp/run.log; exit 1; }"
as_user "ls /tmp/run/summary.md >/dev/null && tail -5 /tmp/run.log"

ASSETS=/usr/share/lowbit/assets
EX_ARGS="$ASSETS/shapes-yolov10m-w0p1875-raw.onnx $ASSETS/val/instances_val.json $ASSETS/val/images 10"
check_example() {
    as_user "$1 $EX_ARGS >/tmp/ex.out && cat /tmp/ex.out"
    as_user "grep -q 'images 10' /tmp/ex.out && grep -Eq '^mAP50-95 (0\.[3-9]|1\.0*$)' /tmp/ex.out" ||
        fail "example $1: unexpected output"
}
step "examples/ with find_package(lowbit)"
as_user "cmake -S /opt/example -B /tmp/ex-cmake -DCMAKE_BUILD_TYPE=Release >/dev/null && \
    cmake --build /tmp/ex-cmake >/dev/null"
check_example /tmp/ex-cmake/load_run_eval
step "examples/ with pkg-config"
as_user "g++ -std=c++20 -O1 /opt/example/load_run_eval.cpp \$(pkg-config --cflags --libs lowbit) \
    -o /tmp/ex-pc"
check_example /tmp/ex-pc

step "apt purge"
in_root dpkg -L lowbit lowbit-dev | sort -u >"$WORK/files"
in_root apt-get purge -y -q lowbit lowbit-dev >/dev/null
while read -r f; do
    # Folders Debian itself owns (/usr/bin, ...) stay; every file and lowbit's own folders go.
    if [[ -e $ROOT$f && ! (-d $ROOT$f && $f != *lowbit*) ]]; then
        fail "$f is still there after the purge"
    fi
done <"$WORK/files"
if in_root dpkg -s lowbit >/dev/null 2>&1; then fail "lowbit is still installed"; fi
echo "deb_check: OK (Debian 12 chroot: install, lowbit run, example via find_package and pkg-config, purge)"
