#!/bin/bash
# Install what ./qpml experiment needs beyond the build: matplotlib for
# its plots (report), and Slurm with munge for --executor slurm (and for
# its test, which starts a one-node cluster: experiments/slurm-local.sh).
# Idempotent; needs root the first time.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PML_TOOL="experiments deps"
. "$REPO/scripts/build-lib.sh"     # missing_packages, apt_install

PKGS=(python3-matplotlib slurm-wlm munge)
mapfile -t missing < <(missing_packages "${PKGS[@]}")
[ ${#missing[@]} -gt 0 ] || exit 0
if [ "$(id -u)" != 0 ]; then
	echo "experiments deps: need root to install: ${missing[*]}" >&2
	exit 1
fi
apt_install "${missing[@]}"
