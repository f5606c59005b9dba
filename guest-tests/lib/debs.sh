# Debian packages for the guest images, sourced by the image builders.
#
# Packages are downloaded once into $DEBS (apt-get download: no system
# install, the host's apt sources and keys) and unpacked where a builder
# asks; nothing here changes the host.

CACHE=${QEMU_PML_CACHE:-$HOME/.cache/qemu-pml}
DEBS=$CACHE/debs

# deb_fetch PACKAGE...: download each package's .deb unless one is cached.
deb_fetch() {
	local p
	mkdir -p "$DEBS"
	for p in "$@"; do
		ls "$DEBS/${p}_"*.deb >/dev/null 2>&1 && continue
		(cd "$DEBS" && apt-get download -q "$p" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) ||
			die "apt-get download $p failed"
		ls "$DEBS/${p}_"*.deb >/dev/null 2>&1 || die "apt-get download $p left no .deb"
	done
}

# deb_files PACKAGE...: the cached .deb of each package.
deb_files() {
	local p
	for p in "$@"; do
		ls "$DEBS/${p}_"*.deb
	done
}

# deb_kernel_package: the versioned kernel package linux-image-amd64 points
# to (the cached one if any, so a cached image stays valid offline).
deb_kernel_package() {
	local k
	k=$( (ls "$DEBS"/linux-image-[0-9]*.deb 2>/dev/null || true) | head -n1 | xargs -r -n1 basename | cut -d_ -f1)
	if [ -z "$k" ]; then
		k=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
		[ -n "$k" ] || die "cannot resolve linux-image-amd64 (apt-get update?)"
	fi
	echo "$k"
}

# deb_unpack DIR PACKAGE...: a fresh DIR holding the packages' files.
deb_unpack() {
	local dir=$1 d
	shift
	rm -rf "$dir" && mkdir -p "$dir"
	for d in $(deb_files "$@"); do
		dpkg-deb -x "$d" "$dir"
	done
}

# cpio_pack DIR OUT: a reproducible gzipped newc archive of DIR (sorted
# names, root-owned, every time stamp at the epoch).
cpio_pack() {
	find "$1" -exec touch -h -d @0 {} +
	(cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -9n) > "$2"
}
