# Shell functions shared by the two upstream trees' scripts: qemu-pml/ and
# xen-pml/ (build.sh, deps.sh, tests/test-build-sh.sh).  Sourced, never run.
#
# Both trees do the same things to a Debian source package: download it,
# unpack it once, make a hard-linked working copy, link our own files in
# (overlay.list), apply a patch series that must apply exactly, and build
# through a shared ccache.  What differs (version checks, configure/make,
# the stamps) stays in each build.sh.
#
# The sourcing script sets PML_TOOL (the prefix of its messages) first.

: "${PML_TOOL:?set PML_TOOL before sourcing scripts/build-lib.sh}"
# Downloads, unpacked sources and ccache, shared by every clone.
CACHE=${QEMU_PML_CACHE:-$HOME/.cache/qemu-pml}

say() { printf '%s: %s\n' "$PML_TOOL" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PML_TOOL" "$*" >&2; exit 1; }

# The entries of a list file (series, overlay.list): comments and blank
# lines dropped, surrounding blanks trimmed.
list_entries() {
	sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$1"
}

# apt_source_download DIR PACKAGE=VERSION: the source package's files into
# DIR (a deb-src entry for its suite must exist).  Returns apt-get's status.
apt_source_download() {
	mkdir -p "$1"
	(cd "$1" && apt-get source -q --download-only "$2" 2>&1 |
		grep -v '^W: Download is performed unsandboxed' >&2; exit "${PIPESTATUS[0]}")
}

# link_overlay LIST TREE WHAT: each "<repository path> <tree path>" line of
# LIST becomes a symlink in TREE to this repository's file, so editing our
# files needs no re-prepare.  A missing source or a name that already
# exists upstream (WHAT: "QEMU", "Xen") stops here.  The tree paths are
# left in the array OVERLAY_LINKED.
link_overlay() {
	local src dst
	OVERLAY_LINKED=()
	while read -r src dst; do
		[ -e "$REPO/$src" ] || die "overlay.list: $src does not exist"
		[ ! -e "$2/$dst" ] || die "overlay.list: $dst already exists in $3"
		ln -s "$REPO/$src" "$2/$dst"
		OVERLAY_LINKED+=("$dst")
	done < <(list_entries "$1")
}

# The files a patch changes (its "+++ b/..." lines).
patched_files() {
	sed -n 's|^+++ [^/]*/\([^[:space:]]*\).*|\1|p' "$1" | grep -v '^dev/null$' || true
}

# apply_patch TREE PATCH UPSTREAM: apply PATCH (-p1) to TREE, all or nothing.
# A patch that does not apply exactly stops with patch(1)'s complaint and
# a message naming it and UPSTREAM (e.g. "QEMU 10.0.13"); one that would
# change an overlay file (a symlink into this repository) is refused.
apply_patch() {
	local f name=${2##*/} path=${2#"$REPO"/}
	[ -f "$2" ] || die "the series names $path, which does not exist"
	for f in $(patched_files "$2"); do
		[ ! -L "$1/$f" ] || die "patch $name changes $f, an overlay file (overlay.list): edit that file instead"
	done
	if ! patch -d "$1" -p1 -s -N --dry-run -i "$2" >/dev/null 2>&1; then
		patch -d "$1" -p1 -N --dry-run -i "$2" >&2 || true
		die "patch $name does not apply to $3: rebase $path"
	fi
	patch -d "$1" -p1 -s -N --no-backup-if-mismatch -i "$2" || die "patch $name failed"
}

# ccache_env BASEDIR: compile through the shared cache; BASEDIR makes hits
# survive clones at other paths.
ccache_env() {
	export CCACHE_BASEDIR=$1 CCACHE_NOHASHDIR=1
	export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache}
	export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
}

# stamp_current FILE STAMP: FILE (a prepared tree's stamp) holds STAMP.
stamp_current() {
	[ -f "$1" ] && [ "$(cat "$1")" = "$2" ]
}

# apt_install PKG...: the packages from the configured suites (root).
apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	[ $# -eq 0 ] || apt-get install -y -q --no-install-recommends "$@"
}

# missing_packages PKG...: the ones dpkg does not have installed, one a line.
missing_packages() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
	done
}

# scratch_dir (tests): $tmp, a directory removed when the script exits.
scratch_dir() {
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
}

# fake_repo_of DEST DIR [LINK...] (tests): a scratch repository holding a copy
# of this repository's DIR (to be broken on purpose), symlinks to the
# LINKs, and this library.
fake_repo_of() {
	local d=$1 l
	mkdir -p "$d/scripts"
	cp -r "$REPO/$2" "$d/$2"
	ln -s "$REPO/scripts/build-lib.sh" "$d/scripts/build-lib.sh"
	shift 2
	for l in "$@"; do
		mkdir -p "$(dirname "$d/$l")"
		ln -s "$REPO/$l" "$d/$l"
	done
}
