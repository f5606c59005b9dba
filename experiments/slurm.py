"""The Slurm executor of `./qpml experiment sweep --executor slurm`.

A campaign becomes one job array: a job directory (on a file system every
node sees) holds tasks.json, the runs in order, and job.sh, which runs
`experiment.py task JOBDIR $SLURM_ARRAY_TASK_ID`.  Each task measures one
run in a temporary directory of its own (its own QMP socket, no TCP
ports) and leaves, in JOBDIR/task-<K>/: results.json (xen-demo.py's
figures), console.log, output.txt (xen-demo.py's report) and exit (its
status).  The submitter waits for the array to leave the queue, then
stores every task's results in the database and names the tasks that
failed, with the end of their logs; `experiment collect JOBDIR` does the
same again later (a task already stored is not stored twice).
"""
import json
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class SlurmError(Exception):
    pass


def write_job(jobdir, runs, qemu, image_dir, file_text, path, name, sbatch_args):
    os.makedirs(jobdir, exist_ok=True)
    tasks = []
    for k, (index, (point, exp, rep, seed)) in enumerate(runs):
        os.makedirs(os.path.join(jobdir, "task-%d" % k), exist_ok=True)
        tasks.append({"task": k, "index": index, "point": point, "experiment": exp,
                      "repetition": rep, "seed": seed})
    with open(os.path.join(jobdir, "tasks.json"), "w") as f:
        json.dump({"qemu": os.path.abspath(qemu), "image_dir": os.path.abspath(image_dir),
                   "file": path, "file_text": file_text, "tasks": tasks}, f, indent=1)
    script = os.path.join(jobdir, "job.sh")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                "# Written by ./qpml experiment sweep --executor slurm: one run a task.\n"
                "#SBATCH --job-name=qpml-%s\n"
                "#SBATCH --array=0-%d\n"
                "#SBATCH --output=%s/task-%%a/slurm.out\n"
                "%s"
                "exec %s %s task %s \"$SLURM_ARRAY_TASK_ID\"\n"
                % (name[:40], len(tasks) - 1, jobdir,
                   "".join("#SBATCH %s\n" % a for a in sbatch_args),
                   shlex.quote(sys.executable), shlex.quote(os.path.join(HERE, "experiment.py")),
                   shlex.quote(jobdir)))
    os.chmod(script, 0o755)
    return script


def submit(script):
    try:
        p = subprocess.run(["sbatch", "--parsable", script], capture_output=True, text=True,
                           timeout=120)
    except FileNotFoundError:
        raise SlurmError("sbatch not found: is Slurm's client installed (slurm-wlm or "
                         "slurm-client) and SLURM_CONF set?")
    if p.returncode != 0:
        raise SlurmError("sbatch refused the job: %s" % (p.stderr.strip() or p.stdout.strip()))
    return p.stdout.strip().split(";")[0]


def finished(jobdir, ntasks):
    return sum(os.path.exists(os.path.join(jobdir, "task-%d" % k, "exit")) for k in range(ntasks))


def wait(jobid, jobdir, ntasks, say, poll=5.0):
    """Until no task of the array is queued or running."""
    last = None
    while True:
        p = subprocess.run(["squeue", "-h", "-j", jobid, "-o", "%i %t"], capture_output=True,
                           text=True, timeout=120)
        if p.returncode != 0 and "Invalid job id" not in p.stderr:
            raise SlurmError("squeue failed: %s" % p.stderr.strip())
        states = [l.split()[1] for l in p.stdout.splitlines() if l.strip()]
        done = finished(jobdir, ntasks)
        line = "slurm: job %s: %d/%d tasks finished, %d running, %d pending" % (
            jobid, done, ntasks, states.count("R"), states.count("PD"))
        if line != last:
            say(line)
            last = line
        if not states:
            return
        time.sleep(poll)


def run_task(jobdir, k, demo_argv):
    """In a job: task @k's run; its files in jobdir/task-k/."""
    with open(os.path.join(jobdir, "tasks.json")) as f:
        job = json.load(f)
    t = job["tasks"][k]
    tdir = os.path.join(jobdir, "task-%d" % k)
    argv = demo_argv(t["experiment"], t["seed"], job["qemu"], job["image_dir"], tdir)
    with open(os.path.join(tdir, "output.txt"), "w") as out:
        rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT).returncode
    with open(os.path.join(tdir, "exit"), "w") as f:
        f.write("%d\n" % rc)
    return rc


def collect(jobdir, db, resultsdb, say):
    """Store every finished task not stored yet; (passed, failed, missing,
    the run ids of every stored task)."""
    with open(os.path.join(jobdir, "tasks.json")) as f:
        job = json.load(f)
    passed = failed = missing = 0
    rids = []
    for t in job["tasks"]:
        tdir = os.path.join(jobdir, "task-%d" % t["task"])
        res_path = os.path.join(tdir, "results.json")
        stored = os.path.join(tdir, "stored")
        if os.path.exists(stored):
            with open(stored) as f:
                rid, ok = (int(x) for x in f.read().split())
            rids.append(rid)
            passed += ok
            failed += 1 - ok
            continue
        if not os.path.exists(res_path):
            missing += 1
            say("slurm: task %d (run %d) left no results; the end of its logs:" % (
                t["task"], t["index"]))
            for name in ("slurm.out", "output.txt"):
                tail_file(os.path.join(tdir, name), say)
            continue
        with open(res_path) as f:
            res = json.load(f)
        try:
            with open(os.path.join(tdir, "argv.json")) as f:
                argv = json.load(f)
        except (OSError, ValueError):
            argv = []
        rid = resultsdb.store(db, t["experiment"], job["file_text"], job["file"],
                              t["repetition"], t["seed"], argv, res, t["point"])
        ok = 1 if res["pass"] else 0
        with open(stored, "w") as f:
            f.write("%d %d\n" % (rid, ok))
        say(resultsdb.summary(db, rid))
        if not ok:
            say("slurm: task %d (run %d) failed; the end of its report:" % (t["task"], t["index"]))
            tail_file(os.path.join(tdir, "output.txt"), say)
        rids.append(rid)
        passed += ok
        failed += 1 - ok
    return passed, failed, missing, rids


def tail_file(path, say, n=40):
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()[-n:]
    except OSError:
        say("  (no %s)" % os.path.basename(path))
        return
    for l in lines:
        say("  | " + l)
