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
#   dom0-hvm.cpio.gz what an HVM domU needs in dom0, appended to dom0.cpio.gz
#                    only when the demo runs one (xen-demo.py, configs/xen/hvm.cfg):
#                    Xen's device model (bookworm's qemu-system-xen) and its
#                    libraries, hvmloader, SeaBIOS, mtools, and the domU's
#                    boot disk hvm-disk.img (MBR + a FAT partition with
#                    syslinux, Debian's kernel and domU.cpio.gz)
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
# The HVM extension: the device model, the firmware, the boot disk's tools
# and every library package they need (libc6 is the host's).  The candidate
# versions: bookworm's, not bookworm-backports' (priority 100).
DM_PKGS="$(deb_lib_closure qemu-system-xen seabios syslinux syslinux-common mtools | grep -vx libc6) qemu-system-data"
deb_fetch $DM_PKGS
# Debian's headers for the same kernel, to build dom0's module for extended
# PML's posted path (xen-pml/dom0/epml_dom0.c, issue 15).
kver_pkg=${kpkg#linux-image-}
KH_PKGS="linux-headers-$kver_pkg linux-headers-${kver_pkg%-amd64}-common linux-kbuild-$(echo "$kver_pkg" | cut -d. -f1,2)"
deb_fetch $KH_PKGS
KMOD_SRC="$REPO/xen-pml/dom0/epml_dom0.c $REPO/include/epml-dom0.h"

stamp=$( { deb_files $PKGS "$kpkg" $DM_PKGS $KH_PKGS; cat "$0" "$REPO/guest-tests/lib/debs.sh" "$HERE/dom0-init" \
	"$HERE/domU-init" "$HERE/swapio.awk" "$REPO"/configs/xen/*.cfg "$WSS_TOUCH" ${XEN_EPML:+"$XEN_EPML"} $KMOD_SRC; } | sha256sum | cut -c1-64)
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
# epml_dom0.ko, built out of tree against the unpacked headers (their
# Makefile names /usr/src: pointed at the unpacked copy) in a fixed
# directory, so the module's bytes do not depend on a temporary path.
kh=$CACHE/khdr
deb_unpack "$kh" $KH_PKGS
sed -i "s|^include /usr/src/|include $kh/usr/src/|" "$kh/usr/src/linux-headers-$kver/Makefile"
kb=$CACHE/epml-dom0-build
rm -rf "$kb" && mkdir -p "$kb"
cp "$REPO/xen-pml/dom0/epml_dom0.c" "$kb/"
printf 'obj-m := epml_dom0.o\nccflags-y := -I%s/include\n' "$REPO" > "$kb/Kbuild"
make -s -C "$kh/usr/src/linux-headers-$kver" M="$kb" modules >&2 ||
	die "building xen-pml/dom0/epml_dom0.ko against linux-headers-$kver failed"
strip --strip-debug -o "$d/lib/modules/epml_dom0.ko" "$kb/epml_dom0.ko"
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

# The HVM extension (an archive of its own, appended to dom0's when the
# domU is HVM, so that the PVH runs' dom0 stays as small as it was).  Its
# packages are unpacked apart, and its binaries' libraries come from them
# first (the same versions of Xen's libraries as dom0's).
DMROOT=$CACHE/xenroot-dm
deb_unpack "$DMROOT" $DM_PKGS
h=$stage/dom0-hvm
mkdir -p "$h/usr/bin" "$h/boot" "$h/usr/lib/xen-$XENV/boot" "$h/usr/share/seabios"
( ROOT=$DMROOT LIBS="$DMROOT/usr/lib/x86_64-linux-gnu:$DMROOT/lib/x86_64-linux-gnu"
  install_elf "$h" "$DMROOT/usr/libexec/xen-qemu-system-i386" /usr/libexec/xen-qemu-system-i386
  # mtools: dom0 writes the domU's kernel command line into its boot disk.
  install_elf "$h" "$DMROOT/usr/bin/mtools" /usr/bin/mtools )
for b in mcopy mtype; do ln -s mtools "$h/usr/bin/$b"; done
# mtools converts FAT names to code page 850 with iconv: glibc's module for
# it (the host's: same release) and a gconv-modules naming only it.
gc=/usr/lib/x86_64-linux-gnu/gconv
install -D -m 0644 "$gc/IBM850.so" "$h$gc/IBM850.so"
printf 'alias\tCP850//\tIBM850//\nalias\t850//\tIBM850//\nmodule\tIBM850//\tINTERNAL\tIBM850\t1\nmodule\tINTERNAL\tIBM850//\tIBM850\t1\n' \
	> "$h$gc/gconv-modules"
# hvmloader (Xen's HVM firmware, from xen-utils) loads SeaBIOS, which libxl
# hands it from the path Debian's libxl was built with.
cp "$ROOT/usr/lib/xen-$XENV/boot/hvmloader" "$h/usr/lib/xen-$XENV/boot/"
cp "$DMROOT/usr/share/seabios/bios-256k.bin" "$h/usr/share/seabios/"
# The device model reads a keymap even for `-vnc none` (libxl always gives
# it a VNC display option): only the default one.
install -D -m 0644 "$DMROOT/usr/share/qemu/keymaps/en-us" "$h/usr/share/qemu/keymaps/en-us"
# Files dom0's archive already has, identical, need not come twice.
(cd "$h" && find . -type f) | while read -r f; do
	! cmp -s "$h/$f" "$d/$f" || rm -f "$h/$f"
done
# The boot disk: an MBR (syslinux's boot code, one active FAT16 partition
# at 1 MiB) and a FAT file system made and filled with mtools (no loop
# mount), syslinux installed into it.  dom0's /init rewrites syslinux.cfg's
# APPEND line with the workload (dom0-init, hvm_cmdline).  Reproducible:
# a fixed serial number, every time stamp at SOURCE_DATE_EPOCH.
hvm_disk() {
	local out=$1 fat=$stage/hvm-fat.img kb mib
	kb=$(( ( $(stat -c %s "$ROOT/boot/vmlinuz-$kver") + $(stat -c %s "$OUT/domU.cpio.gz") ) / 1024 ))
	mib=$(( kb / 1024 + 4 ))
	rm -f "$fat"
	truncate -s "${mib}M" "$fat"
	cat > "$stage/syslinux.cfg" <<-EOF2
	DEFAULT linux
	PROMPT 0
	TIMEOUT 0
	LABEL linux
	  KERNEL /vmlinuz
	  INITRD /initrd.gz
	  APPEND console=hvc0 quiet
	EOF2
	cp "$ROOT/boot/vmlinuz-$kver" "$stage/vmlinuz"
	cp "$OUT/domU.cpio.gz" "$stage/initrd.gz"
	touch -d @315532800 "$stage/syslinux.cfg" "$stage/vmlinuz" "$stage/initrd.gz"
	( export PATH="$DMROOT/usr/bin:$PATH" MTOOLS_SKIP_CHECK=1 SOURCE_DATE_EPOCH=315532800
	  mformat -i "$fat" -N 51504d4c -v QPMLHVM -H 2048 -h 64 -s 32 -t $(( mib * 1024 * 1024 / 512 / 64 / 32 )) :: &&
	  mcopy -m -i "$fat" "$stage/syslinux.cfg" "$stage/vmlinuz" "$stage/initrd.gz" :: &&
	  "$DMROOT/usr/bin/syslinux" --install "$fat" ) >/dev/null || die "making the HVM boot disk failed"
	python3 - "$DMROOT/usr/lib/syslinux/mbr/mbr.bin" "$fat" "$out" <<-'PY'
	import struct, sys
	code = open(sys.argv[1], 'rb').read()[:440]
	fat = open(sys.argv[2], 'rb').read()
	start, count = 2048, len(fat) // 512
	# One partition: active, FAT16 (LBA), CHS fields at their "use LBA" values.
	entry = struct.pack('<B3sB3sII', 0x80, b'\xfe\xff\xff', 0x0e, b'\xfe\xff\xff', start, count)
	mbr = code.ljust(440, b'\0') + b'QPML' + b'\0\0' + entry + b'\0' * 48 + b'\x55\xaa'
	with open(sys.argv[3], 'wb') as f:
	    f.write(mbr.ljust(start * 512, b'\0') + fat)
	PY
}
hvm_disk "$h/boot/hvm-disk.img"
cpio_pack "$h" "$OUT/dom0-hvm.cpio.gz"

echo "$stamp" > "$OUT/stamp"
echo "xen-image: $OUT (Xen $XENV, kernel $kver, dom0.cpio.gz $(($(stat -c %s "$OUT/dom0.cpio.gz") / 1024)) KiB, HVM extension dom0-hvm.cpio.gz $(($(stat -c %s "$OUT/dom0-hvm.cpio.gz") / 1024)) KiB)" >&2
