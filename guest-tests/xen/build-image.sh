#!/bin/bash
# Build the nested Xen stack's images from Debian packages:
#   xen              Xen 4.17's hypervisor as the ELF that -kernel loads
#   vmlinux          Debian's kernel, uncompressed (dom0 and domU; Xen and
#                    libxl then skip an xz decompression under TCG)
#   dom0.cpio.gz     busybox + xl, xenstored, xenconsoled and their
#                    libraries, the Xen modules, /etc/xen/*.cfg from
#                    configs/xen/, the domU's kernel and initramfs, and
#                    xen-epml (dom0's extended-PML tool, xen-pml/tools)
#   domU.cpio.gz     busybox + the wss-touch workload + xen-blkfront (swap)
#
# For a domU that swaps (xen-demo.py --swap), dom0 also gets the block
# backend (xen-blkback, the brd RAM disk) and what Xen's block hotplug
# script runs on (bash, util-linux's flock).
#
#   guest-tests/xen/build-image.sh WSS_TOUCH [OUTDIR [XEN_EPML]]  (default _build/xen)
#
# Packages are downloaded once into $QEMU_PML_CACHE/debs (no system
# install); the images are rebuilt only when a package, a script, a config
# or the workload binary changes.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WSS_TOUCH=${1:?usage: build-image.sh WSS_TOUCH [OUTDIR]}
OUT=${2:-${QEMU_PML_BUILD:-$REPO/_build}/xen}
XEN_EPML=${3:-}
XENV=4.17

die() { printf 'xen-image: error: %s\n' "$*" >&2; exit 1; }
. "$REPO/guest-tests/lib/debs.sh"
ROOT=$CACHE/xenroot
[ -x "$WSS_TOUCH" ] || die "no workload binary $WSS_TOUCH (./qpml build)"
[ -z "$XEN_EPML" ] || [ -x "$XEN_EPML" ] || die "no dom0 tool $XEN_EPML (./qpml build)"

# What the images are made of.  Libraries the host (Debian base) already
# has are taken from the host: same release.
PKGS="xen-hypervisor-$XENV-amd64 xen-utils-$XENV xen-utils-common libxenmisc$XENV
 libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenstore4 libxentoollog1
 libxendevicemodel1 libxenhypfs1 libxentoolcore1 libyajl2 libncurses6 xenstore-utils busybox-static
 bash util-linux"
kpkg=$(deb_kernel_package)
deb_fetch $PKGS "$kpkg"

stamp=$( { deb_files $PKGS "$kpkg"; cat "$0" "$REPO/guest-tests/lib/debs.sh" "$HERE/dom0-init" \
	"$HERE/domU-init" "$HERE/swapio.awk" "$REPO"/configs/xen/*.cfg "$WSS_TOUCH" ${XEN_EPML:+"$XEN_EPML"}; } | sha256sum | cut -c1-64)
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$stamp" ]; then
	exit 0
fi
echo "xen-image: building $OUT" >&2
deb_unpack "$ROOT" $PKGS "$kpkg"
kver=$(ls "$ROOT"/boot/vmlinuz-* | sed -n '1s|.*/vmlinuz-||p')
mkdir -p "$OUT"
rm -f "$OUT/stamp"

# Xen: a gzipped 32-bit multiboot ELF.
zcat "$ROOT/boot/xen-$XENV-amd64.gz" > "$OUT/xen"
# The kernel: the bzImage's xz payload is the ELF vmlinux.
python3 - "$ROOT/boot/vmlinuz-$kver" "$OUT/vmlinux" <<'PY'
import lzma, sys
data = open(sys.argv[1], 'rb').read()
at = data.find(b'\xfd7zXZ\x00')
if at < 0:
    sys.exit("xen-image: no xz payload in " + sys.argv[1])
elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[at:])
if elf[:4] != b'\x7fELF':
    sys.exit("xen-image: the xz payload is not an ELF")
open(sys.argv[2], 'wb').write(elf)
PY
echo "$kver" > "$OUT/kernel-version"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# busybox_root DIR: busybox with every applet linked.
busybox_root() {
	local a
	mkdir -p "$1"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,etc,root,var}
	cp "$ROOT/bin/busybox" "$1/bin/busybox"
	for a in $("$ROOT/bin/busybox" --list); do
		[ -e "$1/bin/$a" ] || ln -s busybox "$1/bin/$a"
	done
}

# Libraries from the unpacked packages first, else from the host.
LIBS="$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/lib/x86_64-linux-gnu:$ROOT/usr/lib/xen-$XENV/lib/x86_64-linux-gnu"

# The domU.
u=$stage/domU
busybox_root "$u"
install -m 0755 "$WSS_TOUCH" "$u/bin/wss-touch"
install -m 0755 "$HERE/domU-init" "$u/init"
# The block frontend, for swap on a Xen virtual disk (xvdb).
mkdir -p "$u/lib/modules"
cp "$ROOT/lib/modules/$kver/kernel/drivers/block/xen-blkfront.ko" "$u/lib/modules/" ||
	die "module xen-blkfront missing from $kpkg"
cpio_pack "$u" "$OUT/domU.cpio.gz"

# dom0.
d=$stage/dom0
busybox_root "$d"
xb=/usr/lib/xen-$XENV/bin
for b in xl xenstored xenconsoled xenconsole xen-init-dom0 libxl-save-helper; do
	install_elf "$d" "$ROOT$xb/$b" "$xb/$b"
	ln -sf "$xb/$b" "$d/usr/sbin/$b"
done
# (list, exists, rm: for the block hotplug script)
for b in xenstore-read xenstore-write xenstore-ls xenstore-list xenstore-exists xenstore-rm; do
	install_elf "$d" "$ROOT/usr/bin/$b" "/usr/bin/$b"
done
# glibc loads libgcc_s when a thread is cancelled; ldd does not list it.
install -D -m 0644 /lib/x86_64-linux-gnu/libgcc_s.so.1 "$d/lib/x86_64-linux-gnu/libgcc_s.so.1"
mkdir -p "$d/lib/modules" "$d/etc/xen" "$d/var/lib/xen" "$d/var/log/xen" "$d/boot"
for m in xen-privcmd xenfs/xenfs xen-evtchn xen-gntdev xen-gntalloc; do
	cp "$ROOT/lib/modules/$kver/kernel/drivers/xen/$m.ko" "$d/lib/modules/" ||
		die "module $m missing from $kpkg"
done
# The block backend and a RAM disk for the domU's swap device
# (xen-demo.py --swap; docs/estimators.md).
for m in block/xen-blkback/xen-blkback block/brd; do
	cp "$ROOT/lib/modules/$kver/kernel/drivers/$m.ko" "$d/lib/modules/" ||
		die "module $m missing from $kpkg"
done
# Xen's block hotplug script (libxl runs it for every disk) is bash and
# takes its lock with flock.
install_elf "$d" "$ROOT/bin/bash" /bin/bash
install_elf "$d" "$ROOT/usr/bin/flock" /usr/bin/flock
cp -a "$ROOT/etc/xen/scripts" "$d/etc/xen/"
cp "$ROOT/etc/xen/xl.conf" "$d/etc/xen/"
cp "$REPO"/configs/xen/*.cfg "$d/etc/xen/"
ln -s /run "$d/var/run"
install -m 0755 "$HERE/dom0-init" "$d/init"
install -D -m 0644 "$HERE/swapio.awk" "$d/usr/share/qpml/swapio.awk"
[ -z "$XEN_EPML" ] || install -m 0755 "$XEN_EPML" "$d/usr/sbin/xen-epml"
cp "$OUT/vmlinux" "$d/boot/domU-vmlinux"
cp "$OUT/domU.cpio.gz" "$d/boot/domU.cpio.gz"
cpio_pack "$d" "$OUT/dom0.cpio.gz"

echo "$stamp" > "$OUT/stamp"
echo "xen-image: $OUT (Xen $XENV, kernel $kver, dom0.cpio.gz $(($(stat -c %s "$OUT/dom0.cpio.gz") / 1024)) KiB)" >&2
