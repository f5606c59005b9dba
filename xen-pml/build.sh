#!/bin/bash
# Obtain, patch and build xen-pml: Debian's Xen hypervisor plus our patch
# series (extended-PML support, docs/xen-pml.md).  Only the hypervisor is
# built; dom0's tools stay Debian's binary packages.
#
#   xen-pml/build.sh [fetch|prepare|config|build|all|path]   (default: all)
#
# 1. fetch:   Debian's `xen` source package, version pinned in
#             upstream.conf, downloaded once into $QEMU_PML_CACHE/xen-dl
#             (apt-get source; if that fails, the files named by the .dsc
#             from the Debian archive pool).
# 2. prepare: unpack it once into $QEMU_PML_CACHE/xen-src (dpkg-source
#             verifies checksums and applies Debian's own patches), check
#             the upstream version, then make the working tree
#             $QEMU_PML_BUILD/xen-pml/src: a hard-linked copy of the
#             pristine tree, our overlay (overlay.list: the Xen files that
#             are wholly ours, symlinked to this repository, as
#             qemu-pml/build.sh does for target-i386-pml) and our series
#             (patches/series: hooks into Xen's own files).  A patch that
#             does not apply stops here, naming itself.
# 3. config:  Debian's hypervisor configuration, /boot/xen-*.config of the
#             binary package named in upstream.conf (the cached .deb of
#             guest-tests/lib/debs.sh), + `make olddefconfig`.
# 4. build:   `make -C xen` out of tree in $QEMU_PML_BUILD/xen-pml/obj,
#             through ccache, nice -n 10, -j2; the multiboot ELF `xen/xen`
#             is copied to $QEMU_PML_BUILD/xen-pml/xen (what QEMU's -kernel
#             loads; Debian ships the same file gzipped as
#             /boot/xen-4.17-amd64.gz).
#
# Nothing is rebuilt unless an input changed: upstream.conf, the series,
# the patches, the overlay files, the configuration or this script (a hash
# of all of them is stored in $QEMU_PML_BUILD/xen-pml/stamp).
#
# Environment: QEMU_PML_CACHE (default ~/.cache/qemu-pml),
#              QEMU_PML_BUILD (default <repo>/_build),
#              XEN_PML_JOBS (default 2).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
. "$HERE/upstream.conf"
PML_TOOL=xen-pml
# CACHE; say, die, link_overlay, apply_patch, ccache_env, ...
. "$REPO/scripts/build-lib.sh"
BUILD=${QEMU_PML_BUILD:-$REPO/_build}/xen-pml
JOBS=${XEN_PML_JOBS:-2}
DL=$CACHE/xen-dl
DSC=$DL/${XEN_DEB_SOURCE}_${XEN_DEB_VERSION}.dsc
PRISTINE=$CACHE/xen-src/xen-$XEN_DEB_VERSION
TREE=$BUILD/src
OBJ=$BUILD/obj
OUT=$BUILD/xen

# deb_fetch, deb_files: the Xen stack's cache of Debian binary packages.
. "$REPO/guest-tests/lib/debs.sh"

# The patch names of the series, in order.
series() {
	list_entries "$HERE/patches/series"
}

deps() {
	"$HERE/deps.sh" || die "missing build dependencies: run xen-pml/deps.sh as root (or ./qpml deps)"
}

do_fetch() {
	[ -f "$DSC" ] && return 0
	deps
	say "downloading $XEN_DEB_SOURCE=$XEN_DEB_VERSION ($XEN_DEB_SUITE)"
	if ! apt_source_download "$DL" "$XEN_DEB_SOURCE=$XEN_DEB_VERSION" || [ ! -f "$DSC" ]; then
		say "apt-get source failed: trying the Debian archive pool"
		fetch_pool || die "cannot download $XEN_DEB_SOURCE=$XEN_DEB_VERSION: is the deb-src entry for $XEN_DEB_SUITE there (xen-pml/deps.sh), and does the archive still carry this version (see upstream.conf)?"
	fi
	[ -f "$DSC" ] || die "download finished but $DSC is missing"
}

# The .dsc and the files it names, straight from the pool (the same place
# apt-get source would fetch them from).
fetch_pool() {
	local dir f tmp=$DL/.pool.tmp
	dir=$(apt-cache showsrc "$XEN_DEB_SOURCE=$XEN_DEB_VERSION" 2>/dev/null | sed -n 's/^Directory: //p' | head -n1)
	[ -n "$dir" ] || dir=pool/main/${XEN_DEB_SOURCE:0:1}/$XEN_DEB_SOURCE
	rm -rf "$tmp" && mkdir -p "$tmp"
	for base in http://deb.debian.org/debian http://deb.debian.org/debian-security; do
		curl -fsS -o "$tmp/$(basename "$DSC")" "$base/$dir/$(basename "$DSC")" 2>/dev/null || continue
		for f in $(sed -n '/^Files:/,/^[^ ]/s/^ [0-9a-f]\{32\} [0-9]* //p' "$tmp/$(basename "$DSC")"); do
			curl -fsS -o "$tmp/$f" "$base/$dir/$f" || return 1
		done
		mv "$tmp"/* "$DL/" && rmdir "$tmp"
		return 0
	done
	return 1
}

do_unpack() {
	[ -f "$PRISTINE/.xen-pml-pristine" ] && return 0
	do_fetch
	say "unpacking $(basename "$DSC") (with Debian's patches)"
	rm -rf "$PRISTINE" "$PRISTINE.tmp"
	mkdir -p "$(dirname "$PRISTINE")"
	dpkg-source -q -x "$DSC" "$PRISTINE.tmp" >/dev/null 2>&1 ||
		die "dpkg-source -x $DSC failed (corrupt download? remove $DL and retry)"
	local v
	v=$(sed -n 's/^export XEN_VERSION *= *//p; s/^export XEN_SUBVERSION *= *//p' "$PRISTINE.tmp/xen/Makefile" | paste -sd.)
	[ "$v" = "$XEN_UPSTREAM_SERIES" ] || {
		rm -rf "$PRISTINE.tmp"
		die "upstream Xen is $v, the patch series is written for $XEN_UPSTREAM_SERIES"
	}
	echo "$XEN_DEB_VERSION" > "$PRISTINE.tmp/.xen-pml-pristine"
	mv "$PRISTINE.tmp" "$PRISTINE"
	# dpkg-source leaves a copy of the tarball beside the tree: $DL has it.
	rm -f "$(dirname "$PRISTINE")"/*.orig.tar.*
}

# The overlay: "<repository path> <tree path>" per line.
overlay() {
	list_entries "$HERE/overlay.list"
}

# Everything that decides the layout of the prepared tree.  The overlay
# files are symlinks, so their content is not in here (build_stamp has it).
tree_stamp() {
	{
		echo "$XEN_DEB_VERSION" "$REPO"
		cat "$HERE/overlay.list" "$HERE/patches/series"
		series | while read -r p; do cat "$HERE/patches/$p" 2>/dev/null || echo "missing $p"; done
	} | sha256sum | cut -c1-64
}

do_prepare() {
	do_unpack
	local stamp
	stamp=$(tree_stamp)
	stamp_current "$TREE/.xen-pml-stamp" "$stamp" && return 0
	say "preparing $TREE"
	# Files the previous series changed: they get a fresh copy below, so
	# that make sees them as new even where they are pristine again.
	local old=()
	[ -f "$TREE/.xen-pml-patched" ] && mapfile -t old < "$TREE/.xen-pml-patched"
	rm -rf "$TREE"
	mkdir -p "$BUILD"
	# Hard links: cheap, and unchanged files keep their mtime, so an
	# incremental build recompiles only what the patches touch.  patch(1)
	# writes a new file, so the pristine copy is never changed through a
	# link; the build is out of tree (obj/) and never writes here.
	cp -al "$PRISTINE" "$TREE"
	rm -f "$TREE/.xen-pml-pristine"

	local p n=0 f
	local -a touched=()
	link_overlay "$HERE/overlay.list" "$TREE" Xen
	touched=("${OVERLAY_LINKED[@]}")
	while read -r p; do
		n=$((n + 1))
		apply_patch "$TREE" "$HERE/patches/$p" "Xen $XEN_DEB_VERSION"
		mapfile -t -O "${#touched[@]}" touched < <(patched_files "$HERE/patches/$p")
	done < <(series)
	for f in "${old[@]}"; do
		[ -f "$TREE/$f" ] && [ "$TREE/$f" -ef "$PRISTINE/$f" ] &&
			cp --remove-destination "$PRISTINE/$f" "$TREE/$f"
	done
	printf '%s\n' "${touched[@]}" | sort -u > "$TREE/.xen-pml-patched"
	# Xen's banner shows this as its changeset (tools/scmversion), instead
	# of asking git, which would find this repository's commit.
	echo "xen-pml series ${stamp:0:12} ($n patches)" > "$TREE/.scmversion"
	say "linked $(overlay | wc -l) overlay files, applied $n patches"
	echo "$stamp" > "$TREE/.xen-pml-stamp"
}

# Debian's hypervisor configuration, from the binary package the Xen
# stack uses (downloaded into $QEMU_PML_CACHE/debs like its other packages).
CONFIG=$BUILD/debian.config
do_debconfig() {
	deb_fetch "$XEN_DEB_HYPERVISOR"
	local deb tmp
	deb=$(deb_files "$XEN_DEB_HYPERVISOR" | head -n1)
	if [ -f "$CONFIG" ] && [ "$(cat "$CONFIG.from" 2>/dev/null)" = "$(basename "$deb")" ]; then
		return 0
	fi
	tmp=$(mktemp -d)
	dpkg-deb -x "$deb" "$tmp"
	local c
	c=$(ls "$tmp"/boot/xen-*.config 2>/dev/null | head -n1)
	[ -n "$c" ] || { rm -rf "$tmp"; die "$(basename "$deb") has no /boot/xen-*.config"; }
	mkdir -p "$BUILD"
	cp "$c" "$CONFIG"
	basename "$deb" > "$CONFIG.from"
	rm -rf "$tmp"
}

# make's arguments.  Debian's build (debian/rules) passes the same target
# architecture and prefix maps; the Debian version and a fixed build date
# (the changelog's) feed the banner of Debian's patch 0003, so the image is
# reproducible and ccache hits survive across runs.
make_args() {
	local date
	date=$(dpkg-parsechangelog -l "$TREE/debian/changelog" -STimestamp)
	MAKE_ARGS=(
		-C "$TREE/xen" O="$OBJ"
		XEN_TARGET_ARCH=x86_64 XEN_COMPILE_ARCH=x86_64
		CC=/usr/lib/ccache/gcc HOSTCC=/usr/lib/ccache/gcc
		EXTRA_CFLAGS_XEN_CORE="-ffile-prefix-map=$TREE=. -fdebug-prefix-map=$TREE=."
		XEN_BUILD_DATE="$(LC_ALL=C date -u -d "@$date")"
		XEN_BUILD_TIME="$(LC_ALL=C date -u -d "@$date" +%T)"
		XEN_BUILD_HOST=qemu-pml XEN_WHOAMI=xen-pml XEN_DOMAIN=qemu-pml
		DEB_VERSION="$XEN_DEB_VERSION+xen-pml"
		DEB_MAINTAINER="qemu-pml <qemu-pml@localhost>"
	)
}

xen_build_env() {
	ccache_env "$BUILD"
	# Debian's build guards against downloads at build time; so do we.
	export WGET=/bin/false GIT=/bin/false
	unset CFLAGS CXXFLAGS CPPFLAGS LDFLAGS
}

do_config() {
	do_prepare
	do_debconfig
	make_args
	xen_build_env
	# Different make arguments (this script changed): start the object tree
	# afresh.  Same arguments: make's own dependencies are enough.
	local args
	args=$(printf '%s\n' "${MAKE_ARGS[@]}" | sha256sum | cut -c1-64)
	if [ "$(cat "$OBJ/.xen-pml-args" 2>/dev/null)" != "$args" ]; then
		rm -rf "$OBJ"
	fi
	mkdir -p "$OBJ"
	echo "$args" > "$OBJ/.xen-pml-args"
	if ! cmp -s "$CONFIG" "$OBJ/.xen-pml-debian.config"; then
		say "configuring from $(cat "$CONFIG.from") (make olddefconfig)"
		cp "$CONFIG" "$OBJ/.config"
		make "${MAKE_ARGS[@]}" olddefconfig > "$OBJ/config.log" 2>&1 || {
			tail -n 30 "$OBJ/config.log" >&2
			die "make olddefconfig failed (full log: $OBJ/config.log)"
		}
		cp "$CONFIG" "$OBJ/.xen-pml-debian.config"
	fi
}

build_stamp() {
	{
		tree_stamp
		overlay | while read -r src dst; do cat "$REPO/$src" 2>/dev/null || echo "missing $src"; done
		cat "$0" "$REPO/scripts/build-lib.sh" "$HERE/upstream.conf"
		deb_files "$XEN_DEB_HYPERVISOR" 2>/dev/null | head -n1 | xargs -r basename
		cat "$CONFIG" 2>/dev/null || true
	} | sha256sum | cut -c1-64
}

do_build() {
	# Fast path: every input unchanged and the image is there.
	if [ -f "$OUT" ] && [ -f "$CONFIG" ] && [ "$(cat "$BUILD/stamp" 2>/dev/null)" = "$(build_stamp)" ] &&
		[ "$(cat "$CONFIG.from")" = "$(deb_files "$XEN_DEB_HYPERVISOR" 2>/dev/null | head -n1 | xargs -r basename)" ]; then
		say "$OUT is up to date"
		return 0
	fi
	deps
	do_config
	say "building the hypervisor (make -C xen -j$JOBS, nice 10; log: $OBJ/make.log)"
	# The version gap, where it is built (docs/xen-pml.md, "The pinned version").
	say "note: this is Debian's Xen source $XEN_DEB_VERSION ($XEN_DEB_SUITE); the stack's binary Xen is 4.17.7+13 (bookworm-security, 33 security advisories later), whose source is not downloadable here"
	local t0=$SECONDS
	nice -n 10 make "${MAKE_ARGS[@]}" -j"$JOBS" > "$OBJ/make.log" 2>&1 || {
		grep -E -B2 -A12 'error:|Error [0-9]' "$OBJ/make.log" | head -n 80 >&2
		die "build failed (full log: $OBJ/make.log)"
	}
	# Our patches build warning-free.
	local f
	while read -r f; do
		case "$f" in *.c|*.h|*.S)
			if grep -F "$f" "$OBJ/make.log" | grep -q 'warning:'; then
				grep -F "$f" "$OBJ/make.log" | grep 'warning:' >&2
				die "warnings in a file our patches change (above): fix them"
			fi ;;
		esac
	done < "$TREE/.xen-pml-patched"
	[ -f "$OBJ/xen" ] || die "the build left no $OBJ/xen"
	file -b "$OBJ/xen" | grep -q '^ELF 32-bit' ||
		die "$OBJ/xen is not the 32-bit multiboot ELF QEMU's -kernel loads: $(file -b "$OBJ/xen")"
	cp "$OBJ/xen" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
	cp "$OBJ/.config" "$BUILD/xen.config"
	build_stamp > "$BUILD/stamp"
	say "$OUT (Xen $XEN_DEB_VERSION + $(series | wc -l) patches, $(($(stat -c %s "$OUT") / 1024)) KiB) in $((SECONDS - t0)) s"
}

case "${1:-all}" in
fetch) do_fetch ;;
prepare) do_prepare ;;
config) do_config ;;
build|all) do_build ;;
path) echo "$OUT" ;;
*) die "unknown step '$1' (fetch|prepare|config|build|path)" ;;
esac
