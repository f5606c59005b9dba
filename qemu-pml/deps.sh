#!/bin/bash
# Install what a fresh Debian 12 machine lacks to build and test qemu-pml.
#
# Idempotent: when every package is already present it only checks and
# returns.  Needs root (apt-get) the first time.
#
#  - Debian 12's meson is 1.0.1; QEMU 10.0 wants >= 1.5: take meson from
#    bookworm-backports.
#  - QEMU's source comes from Debian's `qemu` source package: trixie's
#    (qemu-pml/upstream.conf, the default) or sid's (upstream-10.2.conf,
#    QEMU_PML_UPSTREAM=10.2).  Add deb-src entries for both suites (source
#    only: no trixie or sid binaries get installed).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PML_TOOL="qemu-pml deps"
. "$REPO/scripts/build-lib.sh"     # missing_packages

PKGS=(
	build-essential ccache pkg-config ninja-build python3-venv flex bison
	libglib2.0-dev zlib1g-dev libpixman-1-dev libfdt-dev libslirp-dev
	dpkg-dev xz-utils cpio gzip
	seabios ipxe-qemu qemu-system-data
)
BACKPORTS_PKGS=(meson)

mapfile -t missing < <(missing_packages "${PKGS[@]}")
meson_ok=0
if command -v meson >/dev/null 2>&1; then
	v=$(meson --version)
	[ "$(printf '%s\n1.5.0\n' "$v" | sort -V | head -n1)" = 1.5.0 ] && meson_ok=1
fi
src_ok=0
grep -qs '^Suites: trixie sid$' /etc/apt/sources.list.d/qemu-pml-src.sources && src_ok=1

if [ ${#missing[@]} -eq 0 ] && [ $meson_ok = 1 ] && [ $src_ok = 1 ]; then
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	echo "deps: need root to install: ${missing[*]} meson>=1.5 trixie/sid deb-src" >&2
	exit 1
fi

cat > /etc/apt/sources.list.d/qemu-pml-src.sources <<'SRC'
# Added by qemu-pml/deps.sh: upstream QEMU source (trixie, sid) and
# meson >= 1.5 (bookworm-backports).  Nothing is installed from trixie or sid.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC

apt_install "${PKGS[@]}"
apt-get install -y -q --no-install-recommends -t bookworm-backports "${BACKPORTS_PKGS[@]}"
meson --version
