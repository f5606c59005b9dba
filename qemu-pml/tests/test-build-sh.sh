#!/bin/bash
# TAP: qemu-pml/build.sh refuses what it must refuse, loudly.
#  - a patch that does not apply stops `prepare` with a message naming it;
#  - an upstream source whose VERSION is not the pinned series is refused;
#  - the real series applies to the pinned source;
#  - a patch in patches/<series>/ replaces the one of the same name, and
#    one there that the series does not name is refused;
#  - an unknown QEMU_PML_UPSTREAM, and a build directory holding another
#    upstream's build, are refused;
#  - each other upstream-<name>.conf's series (with its replacements)
#    applies to its source, when that source is already downloaded.
# Works on copies of qemu-pml/ in a scratch directory; needs the source
# package already downloaded (./qpml build does that).
set -u
HERE=$(cd "$(dirname "$0")/.." && pwd)
REPO=$(dirname "$HERE")
CACHE=${QEMU_PML_CACHE:-$HOME/.cache/qemu-pml}
. "$REPO/guest-tests/lib/tap.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fake_repo() {
	mkdir -p "$1"
	cp -r "$HERE" "$1/qemu-pml"
	ln -s "$REPO/target-i386-pml" "$1/target-i386-pml"
	ln -s "$REPO/include" "$1/include"
}

# 1. A broken patch appended to the series.
fake_repo "$tmp/r1"
cat > "$tmp/r1/qemu-pml/patches/9999-broken.patch" <<'P'
Why: this patch is meant not to apply.

--- a/VERSION
+++ b/VERSION
@@ -1 +1 @@
-1.2.3-no-such-version
+4.5.6
P
echo 9999-broken.patch >> "$tmp/r1/qemu-pml/patches/series"
out=$(QEMU_PML_BUILD="$tmp/r1/_build" "$tmp/r1/qemu-pml/build.sh" prepare 2>&1); rc=$?
ok $([ $rc -ne 0 ] && echo 0 || echo 1) "prepare fails when a patch does not apply (rc=$rc)"
echo "$out" | grep -q "patch 9999-broken.patch does not apply"; ok $? "the error names the patch"

# 2. The pinned series applies cleanly.
fake_repo "$tmp/r2"
out=$(QEMU_PML_BUILD="$tmp/r2/_build" "$tmp/r2/qemu-pml/build.sh" prepare 2>&1); rc=$?
ok $rc "the real patch series applies to the pinned source"
nseries=$(grep -cv '^#' "$HERE/patches/series")
echo "$out" | grep -q "applied $nseries patches"; ok $? "all $nseries patches reported applied"
[ -L "$tmp/r2/_build/qemu-src/target/i386/pml" ]; ok $? "overlay symlink target/i386/pml is in place"
pinned=$(. "$HERE/upstream.conf" && echo "$QEMU_DEB_VERSION")
[ "$(cat "$tmp/r2/_build/.qemu-pml-upstream" 2>/dev/null)" = "$pinned" ]; ok $? "the build directory records its upstream ($pinned)"

# 3. An upstream version outside the pinned series is refused at unpack.
fake_repo "$tmp/r3"
sed -i 's/^QEMU_UPSTREAM_SERIES=.*/QEMU_UPSTREAM_SERIES=9.9/' "$tmp/r3/qemu-pml/upstream.conf"
mkdir -p "$tmp/cache"
ln -s "$CACHE/dl" "$tmp/cache/dl"
out=$(QEMU_PML_CACHE="$tmp/cache" QEMU_PML_BUILD="$tmp/r3/_build" "$tmp/r3/qemu-pml/build.sh" prepare 2>&1); rc=$?
ok $([ $rc -ne 0 ] && echo 0 || echo 1) "prepare fails on an upstream version outside the series (rc=$rc)"
echo "$out" | grep -q "the patch series is written for 9.9.x"; ok $? "the error says which version was expected"

# 4. A replacement in patches/<series>/ is taken instead of patches/<name>.
series=$(. "$HERE/upstream.conf" && echo "$QEMU_UPSTREAM_SERIES")
first=$(grep -v '^#' "$HERE/patches/series" | head -n1)
fake_repo "$tmp/r4"
mkdir -p "$tmp/r4/qemu-pml/patches/$series"
cp "$tmp/r1/qemu-pml/patches/9999-broken.patch" "$tmp/r4/qemu-pml/patches/$series/$first"
out=$(QEMU_PML_BUILD="$tmp/r4/_build" "$tmp/r4/qemu-pml/build.sh" prepare 2>&1); rc=$?
ok $([ $rc -ne 0 ] && echo 0 || echo 1) "prepare applies patches/$series/$first instead of patches/$first (rc=$rc)"
echo "$out" | grep -q "rebase qemu-pml/patches/$series/$first"; ok $? "the error names the replacement"

# 5. A replacement the series does not name is refused.
fake_repo "$tmp/r5"
mkdir -p "$tmp/r5/qemu-pml/patches/$series"
cp "$tmp/r1/qemu-pml/patches/9999-broken.patch" "$tmp/r5/qemu-pml/patches/$series/"
out=$(QEMU_PML_BUILD="$tmp/r5/_build" "$tmp/r5/qemu-pml/build.sh" prepare 2>&1); rc=$?
ok $([ $rc -ne 0 ] && echo 0 || echo 1) "prepare fails on a replacement for no patch of the series (rc=$rc)"
echo "$out" | grep -q "patches/$series/9999-broken.patch replaces no patch"; ok $? "the error names the stray replacement"

# 6. An unknown upstream name is refused.
out=$(QEMU_PML_UPSTREAM=no-such QEMU_PML_BUILD="$tmp/r6/_build" "$HERE/build.sh" prepare 2>&1); rc=$?
ok $([ $rc -ne 0 ] && echo 0 || echo 1) "QEMU_PML_UPSTREAM=no-such is refused (rc=$rc)"
echo "$out" | grep -q "no qemu-pml/upstream-no-such.conf"; ok $? "the error names the missing upstream file"

# 7. A build directory of another upstream is refused, not mixed.
mkdir -p "$tmp/r7/_build"
echo "1:9.9.9+ds-1" > "$tmp/r7/_build/.qemu-pml-upstream"
out=$(QEMU_PML_BUILD="$tmp/r7/_build" "$HERE/build.sh" prepare 2>&1); rc=$?
ok $([ $rc -ne 0 ] && echo 0 || echo 1) "prepare refuses a build directory of another upstream (rc=$rc)"
echo "$out" | grep -q "holds a build of QEMU 1:9.9.9+ds-1"; ok $? "the error says which upstream the directory holds"
[ ! -e "$tmp/r7/_build/qemu-src" ]; ok $? "nothing was prepared in it"

# 8. Every other upstream's series applies to it (skipped unless its source
#    was downloaded, e.g. by QEMU_PML_UPSTREAM=10.2 ./qpml build).
for conf in "$HERE"/upstream-*.conf; do
	[ -f "$conf" ] || continue
	name=$(basename "$conf" .conf); name=${name#upstream-}
	dsc=$(. "$conf" && echo "$CACHE/dl/${QEMU_DEB_SOURCE}_${QEMU_DEB_VERSION#*:}.dsc")
	if [ ! -f "$dsc" ]; then
		echo "ok $((n + 1)) - # SKIP upstream $name: $(basename "$dsc") not downloaded"; n=$((n + 1))
		continue
	fi
	out=$(QEMU_PML_UPSTREAM=$name QEMU_PML_BUILD="$tmp/u-$name/_build" "$HERE/build.sh" prepare 2>&1); rc=$?
	ok $rc "the series applies to upstream $name ($(. "$conf" && echo "$QEMU_DEB_VERSION"))"
	nrep=$(find "$HERE/patches/$(. "$conf" && echo "$QEMU_UPSTREAM_SERIES")" -maxdepth 1 -type f 2>/dev/null | wc -l)
	echo "$out" | grep -q "applied $nseries patches"; ok $? "upstream $name: all $nseries patches reported applied ($nrep replaced)"
done

echo "1..$n"
[ $failed = 0 ]
