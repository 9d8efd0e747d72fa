#!/usr/bin/env bash
# Builds kubesh as one self-contained Linux binary: the C library (glibc)
# linked in (`-C target-feature=+crt-static`, a static-pie executable that
# needs no shared library, only the kernel) and the Mozilla TLS roots built
# in (feature `bundled-roots`), so that the same file runs on any x86_64 or
# aarch64 distribution, in a container with nothing else in it, or in a
# browser sandbox's VM. Builds for this machine's architecture (the release
# workflow runs it on an amd64 and an arm64 machine).
#
#   scripts/build-static.sh [--profile release|dev]
#
# Prints the binary's path as its last line. The build goes to
# ${CARGO_TARGET_DIR:-target}/static, beside the ordinary build, which it
# leaves alone.
#
# Name resolution in a static glibc: glibc's own `files` and `dns` sources
# (/etc/hosts, /etc/resolv.conf) are built in and work everywhere; other
# sources /etc/nsswitch.conf may list (mdns, resolve, sss, ldap) are shared
# libraries a static glibc loads only from the glibc version it was built
# with, so a cluster's name must be in /etc/hosts or DNS, or its kubeconfig
# give an address. kubesh needs nothing else of the system's: it finds its
# files by $HOME and the XDG variables (the password database only where
# HOME is unset, through the built-in `files` source).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="${2:?--profile needs release or dev}"; shift 2 ;;
        --profile=*) profile="${1#--profile=}"; shift ;;
        -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-static.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

host=$(rustc -vV | sed -n 's/^host: //p')
case "$host" in
    x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu) ;;
    *)
        echo "build-static.sh: builds on Linux x86_64 or aarch64 with glibc; this toolchain is $host" >&2
        exit 2
        ;;
esac

# glibc's static archives come with its development package.
libc_a=$(${CC:-cc} -print-file-name=libc.a 2>/dev/null || true)
if [ ! -f "$libc_a" ]; then
    echo "build-static.sh: glibc's static library (libc.a) is not installed; install libc6-dev (Debian, Ubuntu) or glibc-static (Fedora, RHEL)" >&2
    exit 3
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/static"
# With --target, RUSTFLAGS reach the binary only, not build scripts.
# getrandom: the getrandom() of the glibc linked in; its default looks
# the function up with dlsym, which a static binary cannot, and falls back
# to /dev/urandom, which an empty root filesystem has not.
export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\""
cargo build --profile "$profile" --target "$host" --features bundled-roots --bin kubesh >&2

case "$profile" in
    dev) dir=debug ;;
    *) dir="$profile" ;;
esac
binary="$CARGO_TARGET_DIR/$host/$dir/kubesh"

# A dynamic executable names its loader; the static one names none.
if readelf -l "$binary" 2>/dev/null | grep -q 'program interpreter'; then
    echo "build-static.sh: $binary still asks for a dynamic loader; it is not self-contained" >&2
    exit 1
fi
echo "$binary"
