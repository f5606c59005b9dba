#!/bin/bash
# Run the benchmark guests (bench/bench.list) on the built emulator and
# print their figures.  Usage: bench/run.sh [CPU-PROPERTIES]   (after
# ./qpml build); CPU-PROPERTIES are appended to each guest's -cpu model,
# e.g. bench/run.sh x-vmx-tlb-keep=off for the exits without VPID as they
# were before patch 0049.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${QEMU_PML_BUILD:-$PWD/_build}
manifest=bench/bench.list
if [ $# -gt 0 ]; then
	case $1 in
	*[!A-Za-z0-9_.,=+-]*|"") echo "bench/run.sh: bad CPU properties '$1'" >&2; exit 2 ;;
	esac
	manifest=$(mktemp -t qpml-bench-XXXXXX.list)
	trap 'rm -f "$manifest"' EXIT
	sed -E "s/(-cpu [^ ]+)/\\1,$1/" bench/bench.list > "$manifest"
fi
out=$(guest-tests/runner.py --qemu "$B/qemu-system-x86_64" --guest-dir "$B/ours/guest-tests" \
	--manifest "$manifest" -v 2>&1) || { echo "$out" | tail -n 30; exit 1; }
# Each figure under its guest's name (bench-vmx, bench-l1).
echo "$out" | sed -n 's/^ *\([a-z0-9-]*\): INFO: bench /\1: /p'
