#!/bin/bash
# A package workload for the demo domU: Debian packages and a script, made
# into an archive that rides on dom0's initramfs.
#
#   guest-tests/xen/build-workload.sh OUTDIR SCRIPT [PACKAGE...]
#
# OUTDIR/dom0-extra.cpio.gz holds one file, /boot/domU-workload.cpio.gz:
# the packages' files (documentation left out), the shared libraries
# their programs load (from the library packages they depend on,
# deb_lib_closure, else from the host: same release), and SCRIPT as
# /etc/qpml/workload.  xen-demo.py appends the archive to dom0.cpio.gz
# (Linux unpacks concatenated archives); dom0-init appends the inner one
# to the domU's ramdisk, and the domU's /init runs the script instead of
# wss-touch.  Packages are downloaded once into $QEMU_PML_CACHE/debs;
# OUTDIR is rebuilt only when a package, SCRIPT or this builder changes.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${1:?usage: build-workload.sh OUTDIR SCRIPT [PACKAGE...]}
SCRIPT=${2:?usage: build-workload.sh OUTDIR SCRIPT [PACKAGE...]}
shift 2

die() { printf 'xen-workload: error: %s\n' "$*" >&2; exit 1; }
. "$REPO/guest-tests/lib/debs.sh"
[ -f "$SCRIPT" ] || die "no workload script $SCRIPT"

for p in "$@"; do
	apt-cache show "$p" >/dev/null 2>&1 || die "no Debian package '$p' (apt-cache show $p; apt-get update?)"
done
PKGS=$( [ $# = 0 ] || deb_lib_closure "$@")
[ -z "$PKGS" ] || deb_fetch $PKGS

stamp=$( { [ -z "$PKGS" ] || deb_files $PKGS; echo "named: $*"; cat "$0" "$REPO/guest-tests/lib/debs.sh" "$SCRIPT"; } |
	sha256sum | cut -c1-64)
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$stamp" ]; then
	exit 0
fi
mkdir -p "$OUT"
rm -f "$OUT/stamp"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
ROOT=$stage/unpacked
w=$stage/domU
LIBS="$w/usr/lib/x86_64-linux-gnu:$w/lib/x86_64-linux-gnu:$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/lib/x86_64-linux-gnu"
[ -z "$PKGS" ] && mkdir -p "$ROOT" || deb_unpack "$ROOT" $PKGS

# The named packages' files, as they are (symlinks kept).
mkdir -p "$w/etc/qpml" "$w/root" "$w/tmp" "$w/var/lib" "$w/var/log" "$w/run"
for p in "$@"; do
	dpkg-deb -x "$(deb_files "$p")" "$w"
done
rm -rf "$w/usr/share/doc" "$w/usr/share/man" "$w/usr/share/info" "$w/usr/share/lintian" \
	"$w/usr/share/bash-completion"
# Each program and library among them, with what it loads.
n=0
while IFS= read -r f; do
	[ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] &&
		LD_LIBRARY_PATH=$LIBS ldd "$f" >/dev/null 2>&1 || continue
	install_elf "$w" "$f" "${f#"$w"}"
	n=$((n + 1))
done < <(find "$w" -type f | LC_ALL=C sort)
install -m 0755 "$SCRIPT" "$w/etc/qpml/workload"

x=$stage/dom0
mkdir -p "$x/boot"
cpio_pack "$w" "$x/boot/domU-workload.cpio.gz"
cpio_pack "$x" "$OUT/dom0-extra.cpio.gz"
echo "$stamp" > "$OUT/stamp"
echo "xen-workload: $OUT (${*:-no packages}: $n dynamic ELF files;" \
	"domU archive $(($(stat -c %s "$x/boot/domU-workload.cpio.gz") / 1024)) KiB)" >&2
