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
. "$REPO/guest-tests/lib/tap.sh"

PML_TOOL=test-build-sh
. "$REPO/scripts/build-lib.sh"     # CACHE, scratch_dir, fake_repo_of
scratch_dir
fake_repo() { fake_repo_of "$1" qemu-pml target-i386-pml include guest-tests/tests.list; }

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

# 8. Every other upstream's series applies to it (its source downloaded
#    into the cache first if it is not there: a download of about 40 MB).
for conf in "$HERE"/upstream-*.conf; do
	[ -f "$conf" ] || continue
	name=$(basename "$conf" .conf); name=${name#upstream-}
	out=$(QEMU_PML_UPSTREAM=$name QEMU_PML_BUILD="$tmp/u-$name/_build" "$HERE/build.sh" fetch 2>&1); rc=$?
	ok $rc "upstream $name's source is in the cache or downloads${out:+ ($(echo "$out" | tail -n1))}"
	out=$(QEMU_PML_UPSTREAM=$name QEMU_PML_BUILD="$tmp/u-$name/_build" "$HERE/build.sh" prepare 2>&1); rc=$?
	ok $rc "the series applies to upstream $name ($(. "$conf" && echo "$QEMU_DEB_VERSION"))"
	nrep=$(find "$HERE/patches/$(. "$conf" && echo "$QEMU_UPSTREAM_SERIES")" -maxdepth 1 -type f 2>/dev/null | wc -l)
	echo "$out" | grep -q "applied $nseries patches"; ok $? "upstream $name: all $nseries patches reported applied ($nrep replaced)"
done

echo "1..$n"
[ $failed = 0 ]
