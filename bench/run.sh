#!/bin/bash
# Run the benchmark guests (bench/bench.list) on the built emulator and
# print their figures.  Usage: bench/run.sh   (after ./qpml build)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${QEMU_PML_BUILD:-$PWD/_build}
out=$(guest-tests/runner.py --qemu "$B/qemu-system-x86_64" --guest-dir "$B/ours/guest-tests" \
	--manifest bench/bench.list -v 2>&1) || { echo "$out" | tail -n 30; exit 1; }
echo "$out" | sed -n 's/^ *[a-z-]*: INFO: bench /bench: /p'
