#!/bin/bash
# TAP: qemu-pml/build.sh refuses what it must refuse, loudly.
#  - a patch that does not apply stops `prepare` with a message naming it;
#  - an upstream source whose VERSION is not the pinned series is refused;
#  - the real series applies to the pinned source.
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

# 3. An upstream version outside the pinned series is refused at unpack.
fake_repo "$tmp/r3"
sed -i 's/^QEMU_UPSTREAM_SERIES=.*/QEMU_UPSTREAM_SERIES=9.9/' "$tmp/r3/qemu-pml/upstream.conf"
mkdir -p "$tmp/cache"
ln -s "$CACHE/dl" "$tmp/cache/dl"
out=$(QEMU_PML_CACHE="$tmp/cache" QEMU_PML_BUILD="$tmp/r3/_build" "$tmp/r3/qemu-pml/build.sh" prepare 2>&1); rc=$?
ok $([ $rc -ne 0 ] && echo 0 || echo 1) "prepare fails on an upstream version outside the series (rc=$rc)"
echo "$out" | grep -q "the patch series is written for 9.9.x"; ok $? "the error says which version was expected"

echo "1..$n"
[ $failed = 0 ]
