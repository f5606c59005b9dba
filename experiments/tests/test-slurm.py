#!/usr/bin/python3
"""TAP: ./qpml experiment sweep --executor slurm, on a real one-node Slurm.

Starts munged, slurmctld and slurmd from Debian's packages with
experiments/slurm-local.sh (a configuration of their own in a scratch
directory, ports picked free), submits a two-task job array of short
experiments (one extended-PML window each; the second on a CPU model QEMU
does not know, so it fails), and checks that both tasks ran as Slurm
tasks, that the passing one and the failing one are both stored, that the
failure is reported with its log, that collecting again stores nothing
twice, and that the cluster is stopped afterwards.

Usage: test-slurm.py QEMU IMAGE_DIR
"""
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
EXP_DIR = os.path.dirname(HERE)
REPO = os.path.dirname(EXP_DIR)
sys.path.insert(0, os.path.join(REPO, "guest-tests"))
from tap import done, ok  # noqa: E402

TOOL = os.path.join(EXP_DIR, "experiment.py")
CLUSTER = os.path.join(EXP_DIR, "slurm-local.sh")
qemu, image_dir = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp(prefix="qpml-test-slurm-")
cluster = os.path.join(tmp, "cluster")

EXPERIMENT = """name = "slurm-smoke"
[machine]
hypervisor = "xen-pml"
cpu = ["Skylake-Server,+vmx", "no-such-cpu-model"]
timeout_s = 600
[domu]
kind = "pvh"
[workload]
wss_touch = "--loops 0 rw50:8M:seq:1x"
[measure]
estimators = ["epml"]
truths = []
window_s = 2
windows = 1
"""


def daemons():
    """Pids of the cluster's daemons still alive."""
    alive = []
    for name in ("munged", "slurmctld", "slurmd"):
        try:
            pid = int(open(os.path.join(cluster, name + ".pid")).read())
            os.kill(pid, 0)
            alive.append("%s(%d)" % (name, pid))
        except (OSError, ValueError):
            pass
    return alive


p = subprocess.run([CLUSTER, "start", cluster], capture_output=True, text=True, timeout=120)
up = p.returncode == 0 and "SLURM_CONF=" in p.stdout
ok(up, "a one-node Slurm starts (munged, slurmctld, slurmd)%s"
   % ("" if up else ": " + (p.stderr or p.stdout).strip()[-300:]))
env = dict(os.environ, SLURM_CONF=os.path.join(cluster, "slurm.conf"))
try:
    if up:
        s = subprocess.run(["sinfo", "-h", "-o", "%P %t %c"], capture_output=True, text=True,
                           env=env, timeout=60)
        ok(re.search(r"^qpml\* idle \d+$", s.stdout, re.M), "sinfo shows the partition idle (%s)"
           % s.stdout.strip())
        exp = os.path.join(tmp, "smoke.toml")
        with open(exp, "w") as f:
            f.write(EXPERIMENT)
        db = os.path.join(tmp, "r.sqlite")
        jobdir = os.path.join(tmp, "job")
        r = subprocess.run([sys.executable, TOOL, "sweep", exp, "--executor", "slurm",
                            "--qemu", qemu, "--image-dir", image_dir, "--db", db,
                            "--slurm-dir", jobdir, "--sbatch-args=--cpus-per-task=1"],
                           capture_output=True, text=True, env=env, timeout=1800)
        out = r.stdout + r.stderr
        for line in out.splitlines():
            print("# " + line)
        ok(re.search(r"2 runs submitted as Slurm job array \d+", out),
           "the sweep is submitted as one two-task job array")
        outs = [os.path.join(jobdir, "task-%d" % k, "slurm.out") for k in (0, 1)]
        ok(all(os.path.exists(o) for o in outs), "each task ran under Slurm (its slurm.out exists)")
        ok(r.returncode == 1 and "1 passed, 1 failed, 0 left no results" in out,
           "one task passed, the other failed, and the sweep says so (rc=%d)" % r.returncode)
        ok(re.search(r"task 1 \(run 2\) failed; the end of its report:", out)
           and "no-such-cpu-model" in out, "the failed task is named, with the end of its log")
        c = sqlite3.connect(db)
        rows = c.execute("SELECT sweep_point, pass FROM runs ORDER BY id").fetchall()
        ok(sorted(rows) == [('{"machine.cpu": "Skylake-Server,+vmx"}', 1),
                            ('{"machine.cpu": "no-such-cpu-model"}', 0)],
           "both runs are stored with their grid point and outcome (%s)" % rows)
        win = c.execute("SELECT count(*) FROM estimates e JOIN runs r ON r.id = e.run_id"
                        " WHERE r.pass = 1 AND e.estimator = 'epml'").fetchone()[0]
        ok(win == 1, "the passing task's window is stored (%d)" % win)
        c.close()
        r2 = subprocess.run([sys.executable, TOOL, "collect", jobdir, "--db", db],
                            capture_output=True, text=True, env=env, timeout=120)
        n = sqlite3.connect(db).execute("SELECT count(*) FROM runs").fetchone()[0]
        ok(n == 2 and "1 passed, 1 failed, 0 left no results" in r2.stdout,
           "collecting again stores nothing twice (%d runs)" % n)
finally:
    subprocess.run([CLUSTER, "stop", cluster], capture_output=True, timeout=120)
alive = daemons()
ok(not alive, "the cluster is stopped afterwards%s" % (": still running " + " ".join(alive)
                                                        if alive else ""))
shutil.rmtree(tmp, ignore_errors=True)
done()
