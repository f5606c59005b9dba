#!/bin/bash
# TAP: xen-pml/build.sh refuses what it must refuse, loudly, and does no
# work when nothing changed.
#  - a patch that does not apply stops `prepare` with a message naming it;
#  - a Xen source whose version is not the pinned series is refused;
#  - the real series applies to the pinned source;
#  - overlay files are linked, and a patch may not change one;
#  - with the image built (./qpml test builds it first), a second run only
#    checks its inputs.
# Works on copies of xen-pml/ in a scratch directory; needs the source
# package already downloaded (xen-pml/build.sh does that).
set -u
HERE=$(cd "$(dirname "$0")/.." && pwd)
REPO=$(dirname "$HERE")
. "$REPO/guest-tests/lib/tap.sh"

PML_TOOL=test-build-sh
. "$REPO/scripts/build-lib.sh"     # CACHE, scratch_dir, fake_repo_of
scratch_dir
fake_repo() { fake_repo_of "$1" xen-pml guest-tests/lib include; }

# 1. A broken patch appended to the series.
fake_repo "$tmp/r1"
cat > "$tmp/r1/xen-pml/patches/9999-broken.patch" <<'P'
Why: this patch is meant not to apply.

--- a/xen/Makefile
+++ b/xen/Makefile
@@ -1 +1 @@
-no such line in Xen's Makefile
+nor this one
P
echo 9999-broken.patch >> "$tmp/r1/xen-pml/patches/series"
out=$(QEMU_PML_BUILD="$tmp/r1/_build" "$tmp/r1/xen-pml/build.sh" prepare 2>&1); rc=$?
ok "$([ $rc -ne 0 ] && echo 0 || echo 1)" "prepare fails when a patch does not apply (rc=$rc)"
echo "$out" | grep -q "patch 9999-broken.patch does not apply"; ok $? "the error names the patch"

# 2. The pinned series applies cleanly.
fake_repo "$tmp/r2"
out=$(QEMU_PML_BUILD="$tmp/r2/_build" "$tmp/r2/xen-pml/build.sh" prepare 2>&1); rc=$?
ok $rc "the real patch series applies to the pinned source"
nseries=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$HERE/patches/series" | wc -l)
echo "$out" | grep -q "applied $nseries patches"; ok $? "all $nseries patches reported applied"

# 3. An upstream version outside the pinned series is refused at unpack.
fake_repo "$tmp/r3"
sed -i 's/^XEN_UPSTREAM_SERIES=.*/XEN_UPSTREAM_SERIES=9.9/' "$tmp/r3/xen-pml/upstream.conf"
mkdir -p "$tmp/cache"
ln -s "$CACHE/xen-dl" "$tmp/cache/xen-dl"
out=$(QEMU_PML_CACHE="$tmp/cache" QEMU_PML_BUILD="$tmp/r3/_build" "$tmp/r3/xen-pml/build.sh" prepare 2>&1); rc=$?
ok "$([ $rc -ne 0 ] && echo 0 || echo 1)" "prepare fails on an upstream version outside the series (rc=$rc)"
echo "$out" | grep -q "the patch series is written for 9.9"; ok $? "the error says which version was expected"

# 4. The overlay: its files are symlinks into the repository, and a patch
#    that would change one (patch(1) would replace the link) is refused.
src=$tmp/r2/_build/xen-pml/src
f=xen/arch/x86/mm/wss-sample.c
[ -L "$src/$f" ] && [ "$(readlink "$src/$f")" = "$tmp/r2/xen-pml/overlay/$f" ]
ok $? "overlay files are symlinks into the repository ($f)"
fake_repo "$tmp/r4"
cat > "$tmp/r4/xen-pml/patches/9999-overlay.patch" <<'P'
Why: this patch changes an overlay file.

--- a/xen/arch/x86/mm/wss-sample.c
+++ b/xen/arch/x86/mm/wss-sample.c
@@ -1 +1 @@
-x
+y
P
echo 9999-overlay.patch >> "$tmp/r4/xen-pml/patches/series"
out=$(QEMU_PML_BUILD="$tmp/r4/_build" "$tmp/r4/xen-pml/build.sh" prepare 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "9999-overlay.patch changes xen/arch/x86/mm/wss-sample.c, an overlay file"
ok $? "a patch that changes an overlay file is refused, named (rc=$rc)"

# 5. Nothing changed: the real build directory is left alone, in seconds.
if [ -f "${QEMU_PML_BUILD:-$REPO/_build}/xen-pml/stamp" ]; then
	t0=$(date +%s%N)
	out=$("$HERE/build.sh" 2>&1); rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	ok $rc "a second build.sh run succeeds"
	echo "$out" | grep -q "is up to date" && [ $ms -lt 10000 ]
	ok $? "a second build.sh run only checks its inputs (${ms} ms)"
fi

echo "1..$n"
[ $failed = 0 ]
