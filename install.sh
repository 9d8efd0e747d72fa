#!/bin/sh
# Installs kubesh: downloads the static binary for this machine's
# architecture (amd64 or arm64) from a kubesh release, checks its SHA-256
# against the release's SHA256SUMS, and installs it as PREFIX/bin/kubesh.
#
#   curl -fsSL RELEASE_URL/install.sh | sh
#   sh install.sh [--prefix DIR] [--from URL] [--arch amd64|arm64]
#
#   --prefix DIR   install into DIR/bin (default /usr/local; also KUBESH_PREFIX)
#   --from URL     the release: a directory (https:// or file://) holding
#                  kubesh-linux-amd64, kubesh-linux-arm64 and SHA256SUMS
#                  (default: the release this script came with; also
#                  KUBESH_RELEASE_URL)
#   --arch ARCH    the binary to install instead of this machine's
#
# Nothing is installed unless the checksum matches.
set -eu

# Set by the release workflow to the release this script is published with.
release_url_default=""

from="${KUBESH_RELEASE_URL:-$release_url_default}"
prefix="${KUBESH_PREFIX:-/usr/local}"
arch=""

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
        --prefix=*) prefix="${1#--prefix=}"; shift ;;
        --from) from="${2:?--from needs a URL}"; shift 2 ;;
        --from=*) from="${1#--from=}"; shift ;;
        --arch) arch="${2:?--arch needs amd64 or arm64}"; shift 2 ;;
        --arch=*) arch="${1#--arch=}"; shift ;;
        -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (--prefix DIR, --from URL, --arch ARCH)" ;;
    esac
done

[ -n "$from" ] || die "no release to install from: give --from URL, the directory holding kubesh-linux-ARCH and SHA256SUMS"
from="${from%/}"

if [ -z "$arch" ]; then
    [ "$(uname -s)" = Linux ] || die "kubesh's binaries are for Linux; this is $(uname -s)"
    machine="$(uname -m)"
    case "$machine" in
        x86_64 | amd64) arch=amd64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *) die "no kubesh binary for $machine (there are amd64 and arm64); build it from source: cargo install --path ." ;;
    esac
fi
case "$arch" in
    amd64 | arm64) ;;
    *) die "--arch $arch: there are amd64 and arm64" ;;
esac
asset="kubesh-linux-$arch"

# Downloads $1 into the file $2: file:// by copying, else with curl or wget.
fetch() {
    case "$1" in
        file://*)
            cp "${1#file://}" "$2" 2>/dev/null || die "cannot read ${1#file://}"
            ;;
        *)
            if command -v curl >/dev/null 2>&1; then
                curl -fsSL --retry 3 --connect-timeout 20 --max-time 300 -o "$2" "$1" ||
                    die "cannot download $1"
            elif command -v wget >/dev/null 2>&1; then
                wget -q --tries=3 --timeout=60 -O "$2" "$1" || die "cannot download $1"
            else
                die "neither curl nor wget is installed to download $1"
            fi
            ;;
    esac
}

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d ' ' -f 1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d ' ' -f 1
    else
        die "neither sha256sum nor shasum is installed to check the download"
    fi
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT INT TERM

say "downloading $asset from $from"
fetch "$from/$asset" "$tmp/$asset"
fetch "$from/SHA256SUMS" "$tmp/SHA256SUMS"

expected="$(awk -v name="$asset" '$2 == name || $2 == "*" name { print $1; exit }' "$tmp/SHA256SUMS")"
[ -n "$expected" ] || die "SHA256SUMS of $from has no line for $asset; nothing was installed"
actual="$(sha256 "$tmp/$asset")"
if [ "$actual" != "$expected" ]; then
    die "$asset does not match its checksum (SHA-256 $actual, SHA256SUMS says $expected); nothing was installed. Download again; if it keeps failing, the file was altered on the way or in the release"
fi

mkdir -p "$prefix/bin" || die "cannot create $prefix/bin (run as root, or give --prefix \$HOME/.local)"
# Into place by rename, so a running kubesh is not overwritten in place.
cp "$tmp/$asset" "$prefix/bin/.kubesh.new" || die "cannot write into $prefix/bin (run as root, or give --prefix \$HOME/.local)"
chmod 0755 "$prefix/bin/.kubesh.new"
mv -f "$prefix/bin/.kubesh.new" "$prefix/bin/kubesh"
say "installed $prefix/bin/kubesh: $("$prefix/bin/kubesh" --version)"
