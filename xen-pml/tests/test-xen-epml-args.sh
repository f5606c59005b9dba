#!/bin/bash
# TAP: dom0's xen-epml refuses bad arguments with a usage message (exit 2)
# and, outside dom0, says clearly what is missing (exit 1), before any
# hypercall.  The working paths run in dom0 in xen/test-xen-pml.
set -u
B=${QEMU_PML_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/_build}
T=$B/ours/xen-pml/tools/xen-epml
. "$(cd "$(dirname "$0")/../.." && pwd)/guest-tests/lib/tap.sh"

# expect RC PATTERN ARGS...: exit status RC and PATTERN in the output.
expect() {
	local rc=$1 pat=$2 out got
	shift 2
	out=$("$T" "$@" 2>&1)
	got=$?
	[ "$got" = "$rc" ] && echo "$out" | grep -q -- "$pat"
	ok $? "xen-epml $* -> exit $rc, '$pat' (got $got: $(echo "$out" | head -n1))"
}

[ -x "$T" ]; ok $? "xen-epml is built ($T)"
expect 2 "usage: xen-epml enable DOMID"
expect 2 "bad domain id 'x'" wss x
expect 2 "bad domain id '99999'" info 99999
expect 2 "unknown command 'frob'" frob 1
expect 2 "bad buffer size (KiB) '4096'" enable 1 --buf-kib 4096
expect 2 "bad interval '0'" wss 1 --interval 0 --windows 2
expect 2 "bad window count 'many'" wss 1 --interval 1 --windows many
expect 2 "usage:" info 1 extra-argument
expect 1 "buf-kib must be 4 KiB times a power of two" enable 1 --buf-kib 12
expect 1 "leave nothing to log" enable 1 --no-reads --no-writes
expect 1 "/dev/xen/privcmd: No such file" info 1
expect 1 "do not go with it" enable 1 --dom0-drain --posted 0
expect 1 "do not go with it" enable 1 --dom0-drain --notify-cpu 1
expect 1 "/dev/xen/privcmd: No such file" enable 1 --dom0-drain
expect 1 "--interval S and --windows N are required" pml-wss 1
expect 1 "--interval S and --windows N are required" sample-wss 1 --samples 10
expect 2 "bad sample size '70000'" sample-wss 1 --interval 1 --windows 1 --samples 70000
expect 2 "bad seed 'abc'" sample-wss 1 --interval 1 --windows 1 --seed abc
expect 1 "--samples must be at least 1" sample-wss 1 --interval 1 --windows 1 --samples 0
expect 1 "/dev/xen/privcmd: No such file" sample-wss 1 --interval 1 --windows 1
expect 1 "--io-marker: cannot open /nonexistent/trace_marker: No such file" \
	wss 1 --interval 1 --windows 1 --io-marker /nonexistent/trace_marker
echo "1..$n"
[ $failed = 0 ]
