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
# names, root-owned, every time stamp at the epoch, inode numbers given in
# order by --reproducible: byte for byte the same from the same files).
cpio_pack() {
	find "$1" -exec touch -h -d @0 {} +
	(cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --reproducible --quiet -R 0:0 | gzip -9n) > "$2"
}

# install_elf DIR SRC DEST: a dynamic binary and the libraries it needs into
# DIR, the libraries from $LIBS (a search path into the unpacked packages
# under $ROOT, whose prefix is dropped) first, else from the host.
install_elf() {
	local dir=$1 src=$2 dest=$3 lib
	[ "$src" -ef "$dir$dest" ] || install -D -m 0755 "$src" "$dir$dest"
	LD_LIBRARY_PATH=$LIBS ldd "$src" | grep -q 'not found' &&
		die "$(basename "$src"): $(LD_LIBRARY_PATH=$LIBS ldd "$src" | grep 'not found' | tr -s ' \t' ' ')"
	for lib in $(LD_LIBRARY_PATH=$LIBS ldd "$src" | awk '/=> \// {print $3} /^\t\// {print $1}'); do
		local to=${lib#"$ROOT"}
		[ "${lib#"$dir"}" = "$lib" ] || continue
		[ -e "$dir$to" ] || install -D -m 0755 "$(readlink -f "$lib")" "$dir$to"
	done
}

# deb_lib_closure PACKAGE...: the packages named and the shared-library
# packages (lib*) they depend on, transitively through library packages
# only: what their programs need to run, without maintainer-script helpers
# (adduser, perl, debconf) a package manager would pull in.
deb_lib_closure() {
	local todo="$*" seen=" " p d
	while [ -n "$todo" ]; do
		set -- $todo
		p=$1
		shift
		todo="$*"
		case "$seen" in *" $p "*) continue ;; esac
		seen="$seen$p "
		echo "$p"
		for d in $(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
				--no-replaces --no-enhances "$p" 2>/dev/null |
				sed -n 's/^ *|\{0,1\}\(Pre\)\{0,1\}Depends: \([a-z0-9][a-z0-9.+-]*\).*/\2/p'); do
			case "$d" in lib*) todo="$todo $d" ;; esac
		done
	done
}
