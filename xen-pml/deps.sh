#!/bin/bash
# Install what a fresh Debian 12 machine lacks to build xen-pml's hypervisor.
#
# Idempotent: when everything is present it only checks and returns.  Needs
# root (apt-get) the first time.
#
#  - Xen's source comes from bookworm's `xen` source package (the version
#    of the binary packages the Xen stack uses is in bookworm-security):
#    add deb-src entries for bookworm, bookworm-updates and
#    bookworm-security in a file of our own.
#  - Building only the hypervisor (make -C xen) needs a C toolchain,
#    python3, flex and bison (Kconfig), and ccache.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PML_TOOL="xen-pml deps"
. "$REPO/scripts/build-lib.sh"     # missing_packages

LIST=/etc/apt/sources.list.d/xen-pml-src.sources
PKGS=(build-essential ccache python3 flex bison dpkg-dev xz-utils gzip file curl)

mapfile -t missing < <(missing_packages "${PKGS[@]}")
src_ok=0
grep -qs 'bookworm-security' "$LIST" && src_ok=1

if [ ${#missing[@]} -eq 0 ] && [ $src_ok = 1 ]; then
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	echo "xen-pml deps: need root to install: ${missing[*]}${missing[*]:+ }$([ $src_ok = 1 ] || echo "bookworm deb-src")" >&2
	exit 1
fi

if [ $src_ok = 0 ]; then
	cat > "$LIST" <<'SRC'
# Added by xen-pml/deps.sh: the source of Debian's Xen (package `xen`),
# pinned in xen-pml/upstream.conf.  Source only: nothing is installed.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

apt_install "${missing[@]}"
