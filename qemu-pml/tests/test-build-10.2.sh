#!/bin/bash
# Compile, under QEMU 10.2 (qemu-pml/upstream-10.2.conf), every upstream C
# file the patch series touches and every file of target-i386-pml/.  ./qpml
# builds and runs 10.0; test-build-sh.sh only checks that the series
# applies to 10.2, and a variant that applies can still fail to compile (a
# hunk lost while rebasing, a type 10.2 renamed).  Links nothing and runs
# nothing.  TAP.
#   qemu-pml/tests/test-build-10.2.sh [BUILD-DIR]  (default _build/qemu-10.2)
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
dir=${1:-${QEMU_PML_BUILD:-$repo/_build}/qemu-10.2}
n=0
fail=0
ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		fail=1
	fi
}

log=$(mktemp -t qpml-10.2-XXXXXX.log)
trap 'rm -f "$log"' EXIT

QEMU_PML_UPSTREAM=10.2 QEMU_PML_BUILD=$dir qemu-pml/build.sh configure >"$log" 2>&1
rc=$?
ok $rc "the series applies to 10.2 and the tree configures (build directory $dir)"
[ $rc = 0 ] || { sed 's/^/# /' "$log" | tail -n 20; echo "1..$n"; exit 1; }

# Upstream C files the patches (10.0 and 10.2 variants) touch, as ninja
# names their objects: the path with '/' turned into '_'.
names=$(grep -h '^+++ b/' qemu-pml/patches/*.patch qemu-pml/patches/10.2/*.patch |
	sed -n 's|^+++ b/\(.*\.c\)$|\1|p' | sort -u | tr '/' '_')
want=()
while read -r t; do
	obj=${t%%:*}
	base=${obj##*/}
	case $base in
	target_i386_pml_*.c.o) want+=("$obj") ;;
	*.c.o) grep -qxF "${base%.o}" <<<"$names" && want+=("$obj") ;;
	esac
done < <(ninja -C "$dir/qemu" -t targets all 2>/dev/null | grep -E '\.c\.o: ')
ours=$(printf '%s\n' "${want[@]}" | grep -c 'target_i386_pml_')
ok $((${#want[@]} > ours && ours > 0 ? 0 : 1)) \
	"objects to compile: ${#want[@]}, of which $ours of target-i386-pml/"

nice ninja -C "$dir/qemu" -k 0 "${want[@]}" >"$log" 2>&1
rc=$?
ok $rc "they compile under 10.2"
[ $rc = 0 ] || grep -E -A3 'error:' "$log" | head -n 30 | sed 's/^/# /'

# Warnings in what the patches and our files wrote (upstream's own are not
# ours to judge): a file of ours, or a line a patch added.
warn=$(grep -E '(target/i386/pml/|pml/[a-z-]+\.(h|c\.inc):).*warning:' "$log")
ok $([ -z "$warn" ] && echo 0 || echo 1) "no warnings in target-i386-pml/"
[ -z "$warn" ] || echo "$warn" | head -n 10 | sed 's/^/# /'

echo "1..$n"
exit $fail
