#!/bin/bash
# Build the Linux test image: Debian's kernel (linux-image-amd64) and a tiny
# busybox initramfs whose /init is guest-tests/linux/init.
#
#   guest-tests/linux/build-image.sh [OUTDIR]   (default <repo>/_build/linux)
#
# Debian packages are downloaded once into $QEMU_PML_CACHE/debs (apt-get
# download, no system install) and extracted there; the image is rebuilt
# only when the kernel version, busybox or init changes.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${QEMU_PML_CACHE:-$HOME/.cache/qemu-pml}
OUT=${1:-${QEMU_PML_BUILD:-$REPO/_build}/linux}
DEBS=$CACHE/debs
ROOT=$CACHE/debroot

die() { printf 'linux-image: error: %s\n' "$*" >&2; exit 1; }

# fetch PACKAGE...: download each package's .deb unless one is cached.
fetch() {
	local p
	mkdir -p "$DEBS"
	for p in "$@"; do
		ls "$DEBS/${p}_"*.deb >/dev/null 2>&1 && continue
		(cd "$DEBS" && apt-get download -q "$p" 2>&1 | grep -v '^W: Download is performed unsandboxed') ||
			die "apt-get download $p failed"
		ls "$DEBS/${p}_"*.deb >/dev/null 2>&1 || die "apt-get download $p left no .deb"
	done
}

# The versioned kernel package that linux-image-amd64 points to.
kpkg=$( (ls "$DEBS"/linux-image-[0-9]*.deb 2>/dev/null || true) | head -n1 | xargs -r -n1 basename | cut -d_ -f1)
if [ -z "$kpkg" ]; then
	kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
	[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 (apt-get update?)"
fi
fetch "$kpkg" busybox-static

stamp=$( { ls "$DEBS/${kpkg}_"*.deb "$DEBS"/busybox-static_*.deb; cat "$HERE/init"; } | sha256sum | cut -c1-64)
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$stamp" ]; then
	exit 0
fi

rm -rf "$ROOT" && mkdir -p "$ROOT"
for d in "$DEBS/${kpkg}_"*.deb "$DEBS"/busybox-static_*.deb; do
	dpkg-deb -x "$d" "$ROOT"
done

mkdir -p "$OUT"
cp "$ROOT"/boot/vmlinuz-* "$OUT/vmlinuz"
ls "$ROOT"/boot/vmlinuz-* | sed 's|.*/vmlinuz-||' > "$OUT/kernel-version"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,dev,proc,sys,tmp,etc}
cp "$ROOT/bin/busybox" "$stage/bin/busybox"
# KVM, so the guest kernel can try VT-x on the emulated CPU.
kver=$(cat "$OUT/kernel-version")
mkdir -p "$stage/lib/modules"
for m in virt/lib/irqbypass.ko arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-intel.ko; do
	cp "$ROOT/lib/modules/$kver/kernel/$m" "$stage/lib/modules/" ||
		die "kernel module $m missing from $kpkg"
done
for a in sh mount cat grep sed head tr poweroff sleep echo uname insmod dmesg ls; do
	ln -s busybox "$stage/bin/$a"
done
install -m 0755 "$HERE/init" "$stage/init"
(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -9n) > "$OUT/initramfs.cpio.gz"
echo "$stamp" > "$OUT/stamp"
echo "linux-image: $OUT (kernel $(cat "$OUT/kernel-version"))" >&2
