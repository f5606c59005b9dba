#!/bin/bash
# Run one of our bare-metal guests under Bochs 2.7 (Debian's bochs, built
# with VMX, EPT A/D and PML) and under this build of qemu-pml, and print
# both wall times.  The guest boots from a GRUB rescue ISO in Bochs (about
# 2 s of fixed cost) and with -kernel in QEMU.  Every console line is
# timestamped on arrival, so a guest that brackets its workloads with
# "INFO: phase <name> begin" / "... end" lines (bench-vmx does) gets a
# per-workload table: wall time under each emulator, the ratio, and each
# workload's share of the guest's time.  qemu-pml runs twice, just before
# and just after Bochs, and its figures are the mean of the two: a host
# whose speed drifts during Bochs's minute weighs on both sides alike.
# With --baseline QEMU, another build (an older commit's, say) runs the
# same way, outside qemu-pml's two runs, and each phase also gets its
# time and ratio under that build and the speed-up from it to this one:
# before and after a change, and Bochs, from one run.
#
#   bench/bochs.sh [--baseline QEMU] [GUEST]   (default bench-vmx; after ./qpml build)
#   bench/bochs.sh --baseline /usr/bin/qemu-system-x86_64 bench-l1   (upstream QEMU too)
#
# Needs (installs as root): bochs bochsbios bochs-x vgabios xvfb xauth
# grub-pc-bin grub-common xorriso mtools.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${QEMU_PML_BUILD:-$PWD/_build}
base=
if [ "${1:-}" = --baseline ]; then
	base=${2:-}
	[ -n "$base" ] && [ -x "$base" ] && [ ! -d "$base" ] ||
		{ echo "bochs.sh: --baseline '$base': not an executable file" >&2; exit 2; }
	shift 2
fi
guest=${1:-bench-vmx}
# The guest's manifest line: "name" or "name=elf" (another guest's ELF
# under other arguments), then a timeout and QEMU's extra arguments.
line=$(awk -v g="$guest" '$1 == g || index($1, g "=") == 1 { print; exit }' \
	bench/bench.list guest-tests/tests.list)
[ -n "$line" ] || { echo "bochs.sh: no guest '$guest' in bench/bench.list or guest-tests/tests.list" >&2; exit 2; }
name=${line%% *}
elf=$B/ours/guest-tests/${name#*=}.elf
args=$(echo "$line" | awk '{ for (i = 3; i <= NF; i++) printf "%s ", $i }')
# A one-word -append goes on GRUB's multiboot line for Bochs too.
cmdline=$(echo "$args" | awk '{ for (i = 1; i < NF; i++) if ($i == "-append") print $(i + 1) }')
[ -f "$elf" ] || { echo "bochs.sh: $elf not built (./qpml build)" >&2; exit 1; }
pkgs="bochs bochsbios bochs-x vgabios xvfb xauth grub-pc-bin grub-common xorriso mtools"
if ! dpkg-query -W $pkgs >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pkgs >/dev/null
fi

w=$(mktemp -d)
# Prefix each line read from stdin with the host time of its arrival.
stamp() {
	python3 -u -c 'import sys, time
r = sys.stdin.buffer.raw
while True:
    line = r.readline()
    if not line:
        break
    sys.stdout.buffer.write(b"%.3f " % time.time() + line)
    sys.stdout.flush()'
}
export -f stamp
bochs_pid=
stop_bochs() {
	[ -z "$bochs_pid" ] || kill -- -"$bochs_pid" 2>/dev/null || true
	pkill -f -- "-f $w/bochsrc" 2>/dev/null || true	# setsid may have forked
}
trap 'stop_bochs; rm -rf "$w"' EXIT
mkdir -p "$w/iso/boot/grub"
cp "$elf" "$w/iso/boot/guest.elf"
printf 'set timeout=0\nset default=0\nmenuentry guest {\n  multiboot /boot/guest.elf %s\n  boot\n}\n' \
	"$cmdline" > "$w/iso/boot/grub/grub.cfg"
grub-mkrescue -o "$w/guest.iso" "$w/iso" >/dev/null 2>&1
cat > "$w/bochsrc" <<RC
megs: 256
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/bochs/VGABIOS-lgpl-latest
cpu: model=corei7_skylake_x, count=1, ips=200000000, reset_on_triple_fault=0
ata0-master: type=cdrom, path=$w/guest.iso, status=inserted
boot: cdrom
display_library: x
port_e9_hack: enabled=1
log: $w/bochs.log
panic: action=fatal
info: action=ignore
debug: action=ignore
RC

# run_qemu NAME [BINARY]: the guest under qemu-pml (or BINARY), console to
# $w/NAME.con, wall seconds to $w/NAME.s.
run_qemu() {
	local t0
	t0=$(date +%s.%N)
	{ "${2:-$B/qemu-system-x86_64}" -M pc -nodefaults -display none -no-reboot -accel tcg \
		-kernel "$elf" -debugcon stdio -serial none \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 $args 2>/dev/null || true; } |
		stamp > "$w/$1.con"
	echo "$(date +%s.%N) - $t0" | bc > "$w/$1.s"
}
[ -z "$base" ] || run_qemu base-before "$base"
run_qemu qemu-before

# Debian's Bochs starts in its debugger: "c" continues.
start=$(date +%s.%N)
setsid bash -c '(sleep 1; printf "c\n"; sleep 3600) |
	timeout 1800 xvfb-run -a stdbuf -o0 bochs -q -f "$1/bochsrc" 2>&1 | stamp > "$1/bochs.out"' _ "$w" \
	</dev/null >/dev/null 2>&1 &
bochs_pid=$!
until grep -aq 'END: ' "$w/bochs.out" 2>/dev/null; do
	sleep 0.2
	if ! kill -0 "$bochs_pid" 2>/dev/null && ! grep -aq 'END: ' "$w/bochs.out"; then
		echo "bochs.sh: Bochs stopped without END" >&2; tail -n 20 "$w/bochs.out" >&2; exit 1
	fi
done
bochs_s=$(echo "$(date +%s.%N) - $start" | bc)
stop_bochs
grep -a -o -E '(INFO|FAIL|END): .*' "$w/bochs.out" | sed 's/^/bochs: /'

run_qemu qemu-after
[ -z "$base" ] || run_qemu base-after "$base"
grep -a -o -E '(INFO|FAIL|END): .*' "$w/qemu-after.con" | sed 's/^/qemu-pml: /'
# mean A B: the mean of two wall times.
mean() { echo "scale=3; ($1 + $2) / 2" | bc; }
qa=$(cat "$w/qemu-before.s") qb=$(cat "$w/qemu-after.s")
qemu_s=$(mean "$qa" "$qb")
echo "wall: bochs ${bochs_s} s, qemu-pml ${qemu_s} s (runs before and after Bochs: $qa, $qb s), ratio $(echo "scale=1; $bochs_s / $qemu_s" | bc)x"
if [ -n "$base" ]; then
	grep -a -o -E '(FAIL|END): .*' "$w/base-after.con" | sed 's/^/baseline: /'
	ba=$(cat "$w/base-before.s") bb=$(cat "$w/base-after.s")
	base_s=$(mean "$ba" "$bb")
	echo "wall: baseline $base ${base_s} s (runs: $ba, $bb s), ratio $(echo "scale=1; $bochs_s / $base_s" | bc)x; speed-up to qemu-pml $(echo "scale=2; $base_s / $qemu_s" | bc)x"
fi
# Per workload, from the timestamped phase lines.
python3 - "$w/bochs.out" "$w/qemu-before.con" "$w/qemu-after.con" "$bochs_s" "$qemu_s" \
	${base:+"$w/base-before.con" "$w/base-after.con"} <<'PY'
import re, sys
def phases(path):
    t, out, order = {}, {}, []
    for line in open(path, "rb"):
        m = re.match(rb"([0-9.]+) .*INFO: phase (\S+) (begin|end)", line)
        if not m:
            continue
        when, name, what = float(m.group(1)), m.group(2).decode(), m.group(3)
        if what == b"begin":
            t[name] = when
            order.append(name)
        elif name in t:
            out[name] = when - t.pop(name)
    return out, order
def mean(x, y):
    return {n: (x[n] + y[n]) / 2 for n in x if n in y}
b, order = phases(sys.argv[1])
q1, _ = phases(sys.argv[2])
q2, _ = phases(sys.argv[3])
q = mean(q1, q2)
bt, qt = float(sys.argv[4]), float(sys.argv[5])
base = {}
if len(sys.argv) > 7:
    base = mean(phases(sys.argv[6])[0], phases(sys.argv[7])[0])
if order:
    print("per workload:  %-14s %9s %9s %7s  %-38s  %s" % ("phase", "bochs s", "qemu s", "ratio",
          "share of guest time (bochs / qemu-pml)", "qemu before / after"))
for n in order:
    if n not in b or n not in q:
        continue
    runs = "%.3f / %.3f" % (q1[n], q2[n])
    if n in base:
        runs += "   baseline %.3f s, %s, speed-up %.2fx" % (
            base[n], "%.1fx" % (b[n] / base[n]) if b[n] >= 0.01 and base[n] else "-",
            base[n] / q[n] if q[n] else float("inf"))
    if b[n] < 0.01:
        print("per workload:  %-14s %9s %9.3f %7s  %-38s  %s" % (n, "-", q[n], "-",
              "(the guest skipped it under Bochs)", runs))
    else:
        print("per workload:  %-14s %9.2f %9.3f %6.1fx  %-38s  %s" % (
            n, b[n], q[n], b[n] / q[n] if q[n] else float("inf"),
            "%4.1f%% / %4.1f%%" % (100 * b[n] / bt, 100 * q[n] / qt), runs))
PY
