#!/bin/bash
# A one-node Slurm cluster on this machine, from Debian's packages
# (slurm-wlm, munge): for trying `./qpml experiment sweep --executor slurm`
# without a cluster, and for its test.
#
#   experiments/slurm-local.sh start DIR    munged, slurmctld, slurmd; prints
#                                           the SLURM_CONF line to export
#   experiments/slurm-local.sh stop DIR     stops them (what start started)
#
# Everything lives in DIR: its own munge key and socket, slurm.conf, state,
# logs and pid files, and ports picked free; nothing under /etc is used,
# so a machine's own Slurm (if any) is not touched.  Needs root (munged
# and slurmd as root, as a test machine allows).
set -euo pipefail

die() { printf 'slurm-local: error: %s\n' "$*" >&2; exit 1; }

[ $# = 2 ] || die "usage: $0 start|stop DIR"
cmd=$1
DIR=$(mkdir -p "$2" && cd "$2" && pwd)

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop() {
	local p pid
	for p in slurmd slurmctld munged; do
		pid=$(cat "$DIR/$p.pid" 2>/dev/null) || continue
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
		rm -f "$DIR/$p.pid"
	done
	return 0
}

start() {
	local b
	for b in munged mungekey slurmctld slurmd sbatch sinfo; do
		command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] ||
			die "$b missing: install slurm-wlm and munge (experiments/deps.sh)"
	done
	[ "$(id -u)" = 0 ] || die "needs root (munged, slurmd)"
	stop
	mkdir -p "$DIR/state" "$DIR/spool" "$DIR/munge"
	chmod 700 "$DIR/munge"
	[ -f "$DIR/munge/munge.key" ] || /usr/sbin/mungekey --create --keyfile="$DIR/munge/munge.key" >/dev/null 2>&1 ||
		dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
	chmod 600 "$DIR/munge/munge.key"
	/usr/sbin/munged --force --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
		--pid-file="$DIR/munged.pid" --log-file="$DIR/munged.log" --seed-file="$DIR/munge/seed" ||
		die "munged did not start ($DIR/munged.log)"
	local host cpus mem
	host=$(hostname -s)
	cpus=$(nproc)
	mem=$(($(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) / 1024 - 512))
	cat > "$DIR/slurm.conf" <<EOF
# Written by experiments/slurm-local.sh: one node, this machine.
ClusterName=qpml-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=qpml Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
	export SLURM_CONF=$DIR/slurm.conf
	/usr/sbin/slurmctld -i || die "slurmctld did not start ($DIR/slurmctld.log)"
	/usr/sbin/slurmd || die "slurmd did not start ($DIR/slurmd.log)"
	local i
	for i in $(seq 100); do
		if sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
			echo "export SLURM_CONF=$DIR/slurm.conf"
			return 0
		fi
		sleep 0.2
	done
	tail -n 20 "$DIR/slurmctld.log" "$DIR/slurmd.log" >&2 || true
	die "the node did not come up within 20 s"
}

case "$cmd" in
start) start ;;
stop) stop ;;
*) die "usage: $0 start|stop DIR" ;;
esac
