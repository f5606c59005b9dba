#!/bin/bash
# Build the Linux test image: Debian's kernel (linux-image-amd64) and a tiny
# busybox initramfs whose /init is guest-tests/linux/init, with KVM's modules
# and kvm-smoke (a minimal VMM, guest-tests/linux/kvm-smoke.c).
#
#   guest-tests/linux/build-image.sh [OUTDIR]   (default <repo>/_build/linux)
#
# Debian packages are downloaded once into $QEMU_PML_CACHE/debs (apt-get
# download, no system install) and extracted there; the image is rebuilt
# only when the kernel version, busybox or init changes.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${1:-${QEMU_PML_BUILD:-$REPO/_build}/linux}

die() { printf 'linux-image: error: %s\n' "$*" >&2; exit 1; }
. "$REPO/guest-tests/lib/debs.sh"
ROOT=$CACHE/debroot

kpkg=$(deb_kernel_package)
deb_fetch "$kpkg" busybox-static

stamp=$( { ls "$DEBS/${kpkg}_"*.deb "$DEBS"/busybox-static_*.deb; cat "$HERE/init" "$HERE/kvm-smoke.c"; } | sha256sum | cut -c1-64)
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$stamp" ]; then
	exit 0
fi

deb_unpack "$ROOT" "$kpkg" busybox-static

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
# A minimal VMM, so KVM runs a nested guest of its own (guest-tests/linux/kvm-smoke.c).
${CC:-gcc} -static -O2 -Wall -Werror -o "$stage/bin/kvm-smoke" "$HERE/kvm-smoke.c" ||
	die "cannot build kvm-smoke (needs gcc and libc6-dev)"
for a in sh mount cat grep sed head tr poweroff sleep echo uname insmod dmesg ls timeout; do
	ln -s busybox "$stage/bin/$a"
done
install -m 0755 "$HERE/init" "$stage/init"
cpio_pack "$stage" "$OUT/initramfs.cpio.gz"
echo "$stamp" > "$OUT/stamp"
echo "linux-image: $OUT (kernel $(cat "$OUT/kernel-version"))" >&2
