#!/bin/bash
# Obtain, patch and build the qemu-pml emulator.
#
#   qemu-pml/build.sh [fetch|prepare|configure|build|qtests|all]   (default: all)
#
# 1. fetch:     Debian's `qemu` source package, version pinned in
#               upstream.conf, downloaded once into $QEMU_PML_CACHE/dl.
# 2. prepare:   unpack it once into $QEMU_PML_CACHE/src (dpkg-source
#               verifies checksums), check the upstream version, then make
#               the working tree $QEMU_PML_BUILD/qemu-src: a hard-linked copy
#               of the pristine tree, our overlay (overlay.list: symlinks to
#               this repository, so edits need no re-prepare) and our patch
#               series (patches/series).  A patch that does not apply stops
#               here, naming itself.  When patches/<series>/ exists for the
#               selected upstream's series (e.g. patches/10.2/), a patch of
#               that name there replaces the one in patches/.
# 3. configure: x86_64-softmmu only, through ccache.
# 4. build:     qemu-system-x86_64 (and the firmware directory for -L).
# 5. qtests:    the upstream qtests the suite runs.
#
# Environment: QEMU_PML_CACHE (default ~/.cache/qemu-pml),
#              QEMU_PML_BUILD (default <repo>/_build),
#              QEMU_PML_UPSTREAM (default: upstream.conf; "10.2" selects
#              upstream-10.2.conf).  A build directory holds one upstream:
#              building another one in it is refused; give each upstream
#              its own QEMU_PML_BUILD.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
PML_TOOL=qemu-pml
# CACHE; say, die, link_overlay, apply_patch, ccache_env, ...
. "$REPO/scripts/build-lib.sh"

# The selected upstream: upstream.conf unless QEMU_PML_UPSTREAM names
# another upstream-<name>.conf (or the default's own series).
UPSTREAM_CONF=$HERE/upstream.conf
if [ -n "${QEMU_PML_UPSTREAM:-}" ]; then
	case "$QEMU_PML_UPSTREAM" in
	*[!0-9A-Za-z.+_-]*) die "QEMU_PML_UPSTREAM='$QEMU_PML_UPSTREAM': expected a name such as 10.2" ;;
	esac
	if [ -f "$HERE/upstream-$QEMU_PML_UPSTREAM.conf" ]; then
		UPSTREAM_CONF=$HERE/upstream-$QEMU_PML_UPSTREAM.conf
	elif [ "$(. "$HERE/upstream.conf" && echo "$QEMU_UPSTREAM_SERIES")" != "$QEMU_PML_UPSTREAM" ]; then
		known=$(cd "$HERE" && ls upstream-*.conf 2>/dev/null | sed 's/^upstream-\(.*\)\.conf$/\1/' | paste -sd' ')
		die "QEMU_PML_UPSTREAM=$QEMU_PML_UPSTREAM: no qemu-pml/upstream-$QEMU_PML_UPSTREAM.conf (known: ${known:-none}; unset it for upstream.conf)"
	fi
fi
. "$UPSTREAM_CONF"
for v in QEMU_DEB_SOURCE QEMU_DEB_VERSION QEMU_DEB_SUITE QEMU_UPSTREAM_SERIES; do
	[ -n "${!v:-}" ] || die "$UPSTREAM_CONF does not set $v"
done
# Replacements for patches that the selected series needed rebased.
PATCH_OVERRIDE=$HERE/patches/$QEMU_UPSTREAM_SERIES
[ -d "$PATCH_OVERRIDE" ] || PATCH_OVERRIDE=
BUILD=${QEMU_PML_BUILD:-$REPO/_build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
UPVER=${QEMU_DEB_VERSION#*:}          # 10.0.13+ds-0+deb13u1
UPVER=${UPVER%%-*}                    # 10.0.13+ds
PRISTINE=$CACHE/src/qemu-$UPVER
TREE=$BUILD/qemu-src
OBJ=$BUILD/qemu
FW=$OBJ/qemu-bundle/usr/local/share/qemu

# The upstream qtests the suite runs: its manifest's qtest/<name> entries.
QTESTS=()
[ ! -f "$REPO/guest-tests/tests.list" ] ||
	mapfile -t QTESTS < <(sed -n 's|^qtest/\([A-Za-z0-9_-]*\)[[:space:]].*|\1|p' "$REPO/guest-tests/tests.list")

# The file to apply for series entry $1.
patch_path() {
	if [ -n "$PATCH_OVERRIDE" ] && [ -f "$PATCH_OVERRIDE/$1" ]; then
		echo "$PATCH_OVERRIDE/$1"
	else
		echo "$HERE/patches/$1"
	fi
}

series() {
	list_entries "$HERE/patches/series"
}

# A build directory holds the objects of one upstream.  Builds made before
# the marker existed were all of upstream.conf's version.
check_build_dir() {
	local mark=$BUILD/.qemu-pml-upstream have
	if [ -f "$mark" ]; then
		have=$(cat "$mark")
	elif [ -e "$TREE" ] || [ -e "$OBJ" ]; then
		have=$(. "$HERE/upstream.conf" && echo "$QEMU_DEB_VERSION")
	else
		mkdir -p "$BUILD"
		echo "$QEMU_DEB_VERSION" > "$mark"
		return 0
	fi
	[ "$have" = "$QEMU_DEB_VERSION" ] ||
		die "$BUILD holds a build of QEMU $have, not of the selected $QEMU_DEB_VERSION ($(basename "$UPSTREAM_CONF")): set QEMU_PML_BUILD to a directory of its own (e.g. QEMU_PML_BUILD=$REPO/_build-$QEMU_UPSTREAM_SERIES), or remove $BUILD"
	[ -f "$mark" ] || echo "$QEMU_DEB_VERSION" > "$mark"
}

do_fetch() {
	local dsc=$CACHE/dl/${QEMU_DEB_SOURCE}_${QEMU_DEB_VERSION#*:}.dsc
	[ -f "$dsc" ] && return 0
	"$HERE/deps.sh"
	say "downloading $QEMU_DEB_SOURCE=$QEMU_DEB_VERSION ($QEMU_DEB_SUITE)"
	apt_source_download "$CACHE/dl" "$QEMU_DEB_SOURCE=$QEMU_DEB_VERSION" ||
		die "apt-get source $QEMU_DEB_SOURCE=$QEMU_DEB_VERSION failed: is the deb-src entry for $QEMU_DEB_SUITE there (qemu-pml/deps.sh), and does the archive still carry this version (see upstream.conf)?"
	[ -f "$dsc" ] || die "download finished but $dsc is missing"
}

do_unpack() {
	[ -f "$PRISTINE/.qemu-pml-pristine" ] && return 0
	do_fetch
	local dsc=$CACHE/dl/${QEMU_DEB_SOURCE}_${QEMU_DEB_VERSION#*:}.dsc
	say "unpacking $(basename "$dsc")"
	rm -rf "$PRISTINE" "$PRISTINE.tmp"
	mkdir -p "$CACHE/src"
	dpkg-source -q -x "$dsc" "$PRISTINE.tmp" >/dev/null || die "dpkg-source -x $dsc failed"
	local v
	v=$(cat "$PRISTINE.tmp/VERSION")
	case "$v" in
	"$QEMU_UPSTREAM_SERIES".*) ;;
	*) rm -rf "$PRISTINE.tmp"
	   die "upstream VERSION is $v, the patch series is written for $QEMU_UPSTREAM_SERIES.x" ;;
	esac
	echo "$QEMU_DEB_VERSION" > "$PRISTINE.tmp/.qemu-pml-pristine"
	mv "$PRISTINE.tmp" "$PRISTINE"
}

# Everything that decides the content of the prepared tree.
tree_stamp() {
	{
		echo "$QEMU_DEB_VERSION" "$REPO"
		cat "$HERE/overlay.list" "$HERE/patches/series"
		series | while read -r p; do cat "$(patch_path "$p")"; done
	} | sha256sum | cut -d' ' -f1
}

do_prepare() {
	check_build_dir
	do_unpack
	local stamp
	stamp=$(tree_stamp)
	stamp_current "$TREE/.qemu-pml-stamp" "$stamp" && return 0
	say "preparing $TREE"
	rm -rf "$TREE"
	mkdir -p "$BUILD"
	# Hard links: cheap, and unchanged files keep their mtime, so ninja
	# rebuilds only what the overlay and patches touch.  patch(1) writes
	# a new file, so the pristine copy is never modified through a link.
	cp -al "$PRISTINE" "$TREE"
	rm -f "$TREE/.qemu-pml-pristine"

	link_overlay "$HERE/overlay.list" "$TREE" QEMU
	local p n=0 f
	if [ -n "$PATCH_OVERRIDE" ]; then
		for f in "$PATCH_OVERRIDE"/*; do
			[ -e "$f" ] || continue
			series | grep -qxF "$(basename "$f")" ||
				die "${PATCH_OVERRIDE#"$REPO"/}/$(basename "$f") replaces no patch named in patches/series"
		done
	fi
	while read -r p; do
		n=$((n + 1))
		[ -f "$HERE/patches/$p" ] || die "patches/series names $p, which does not exist"
		apply_patch "$TREE" "$(patch_path "$p")" "QEMU $QEMU_DEB_VERSION"
	done < <(series)
	say "applied $n patches${PATCH_OVERRIDE:+ ($(find "$PATCH_OVERRIDE" -maxdepth 1 -type f | wc -l) from ${PATCH_OVERRIDE#"$REPO"/})}"
	echo "$stamp" > "$TREE/.qemu-pml-stamp"
}

CONFIGURE_ARGS=(
	--target-list=x86_64-softmmu
	--without-default-features
	--enable-tcg --enable-pixman --enable-slirp --enable-fdt=system
	--disable-docs --disable-install-blobs --disable-download
	--disable-werror
	# TCG plugins: the independent working-set truth (truth/wss-truth.c,
	# docs/ground-truth.md) is a plugin.  No plugin is loaded by default.
	--enable-plugins
	# Without it every QOM cast (X86_CPU(cs), ...) looks the type up:
	# object_dynamic_cast_assert() was 1% of the nested Xen demo's profile
	# (issue 19).  A wrong cast is then a bug that crashes later instead
	# of at the cast; the casts are unchanged upstream code.
	--disable-qom-cast-debug
	--cc=/usr/lib/ccache/gcc
	--python=/usr/bin/python3
)

do_configure() {
	do_prepare
	local want
	want=$(printf '%s\n' "${CONFIGURE_ARGS[@]}" "$(cat "$TREE/.qemu-pml-stamp")" | sha256sum | cut -d' ' -f1)
	if [ -f "$OBJ/build.ninja" ] && [ "$(cat "$OBJ/.qemu-pml-configured" 2>/dev/null)" = "$want" ]; then
		return 0
	fi
	if [ -f "$OBJ/build.ninja" ] && [ "$(cut -c1-64 "$OBJ/.qemu-pml-args" 2>/dev/null)" = \
		"$(printf '%s\n' "${CONFIGURE_ARGS[@]}" | sha256sum | cut -c1-64)" ]; then
		# Same options, new tree content: meson regenerates by itself.
		echo "$want" > "$OBJ/.qemu-pml-configured"
		return 0
	fi
	say "configuring in $OBJ"
	rm -rf "$OBJ"
	mkdir -p "$OBJ"
	(cd "$OBJ" && "$TREE/configure" "${CONFIGURE_ARGS[@]}" > configure.log 2>&1) || {
		tail -n 30 "$OBJ/configure.log" >&2
		die "configure failed (full log: $OBJ/configure.log)"
	}
	printf '%s\n' "${CONFIGURE_ARGS[@]}" | sha256sum | cut -c1-64 > "$OBJ/.qemu-pml-args"
	echo "$want" > "$OBJ/.qemu-pml-configured"
}

do_firmware() {
	# Debian strips firmware from the source; take it from the binary
	# packages seabios, ipxe-qemu and qemu-system-data, and put it where a
	# QEMU run from its build directory looks first (qemu-bundle), so
	# neither our runners nor upstream's qtests need -L.
	mkdir -p "$FW"
	local d f
	for d in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
		[ -d "$d" ] || die "firmware directory $d missing: run qemu-pml/deps.sh"
		for f in "$d"/*; do
			[ -e "$FW/$(basename "$f")" ] || ln -s "$f" "$FW/$(basename "$f")"
		done
	done
	[ -e "$FW/bios-256k.bin" ] || die "no bios-256k.bin in $FW"
}

do_build() {
	"$HERE/deps.sh"
	do_configure
	ccache_env "$REPO"
	say "building qemu-system-x86_64"
	ninja -C "$OBJ" qemu-system-x86_64 "$@" >"$OBJ/ninja.log" 2>&1 || {
		grep -E -B2 -A12 'error:|FAILED' "$OBJ/ninja.log" | head -n 80 >&2
		die "build failed (full log: $OBJ/ninja.log)"
	}
	# Our own code builds warning-free (upstream's flags, no -Werror).
	if grep -E '(target/i386/pml/|pml/[a-z-]+\.(h|c\.inc):).*warning:' "$OBJ/ninja.log" >&2; then
		die "warnings in target-i386-pml/ (above): fix them"
	fi
	do_firmware
	ln -sf "$OBJ/qemu-system-x86_64" "$BUILD/qemu-system-x86_64"
}

do_qtests() {
	[ ${#QTESTS[@]} -gt 0 ] || die "guest-tests/tests.list names no qtest/<name>"
	do_build "${QTESTS[@]/#/tests/qtest/}"
}

case "${1:-all}" in
fetch) do_fetch ;;
prepare) do_prepare ;;
configure) do_configure ;;
build|all) do_build ;;
qtests) do_qtests ;;
path) echo "$BUILD/qemu-system-x86_64" ;;
*) die "unknown step '$1' (fetch|prepare|configure|build|qtests|path)" ;;
esac
