#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""ferry on a real Slurm (tests/slurm/README.md). Each case submits real sbatch jobs whose
step is `exec ferry slurm-run -- workload STEPS SLEEP_MS` and checks what a user and an admin
see: the job's final state and exit code (`scontrol show job`), its output (every step once,
the result equal to an uninterrupted run), the outcome file ferry keeps in the shared store
and the job's Comment.

  test_slurm.py --work DIR setup        start Slurm (tests/slurm/slurm-up.sh); if it cannot
                                        start, DIR/unavailable says why and the cases skip
  test_slurm.py --work DIR cleanup      stop every daemon setup started (slurm-down.sh)
  test_slurm.py --work DIR --ferry F --workload W CASE
      CASE: timelimit | preempt | restart_fails | exit3 | mpi
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# slurm-up.sh's own configuration (the jobs inherit it through sbatch's environment).
os.environ["SLURM_CONF"] = "/etc/ferry-slurm-ci/slurm.conf"
SKIP = 77


class Failed(Exception):
    pass


def sh(*cmd, check=True, timeout=60):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise Failed(f"{' '.join(cmd)} -> {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def job_info(job):
    out = sh("scontrol", "-o", "show", "job", str(job), check=False)
    info = dict(m.groups() for m in re.finditer(r"(\w+)=(\S*)", out))
    c = re.search(r"\bComment=(.*?)(?= \w+=|$)", out.strip())
    if c:
        info["Comment"] = c.group(1).strip()
    return info


def wait_for(what, pred, timeout):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(1)
    raise Failed(f"timed out after {timeout} s waiting for {what}")


FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}


def wait_final(job, timeout):
    return wait_for(f"job {job} to end", lambda: (lambda i: i if i.get("JobState") in FINAL else None)(
        job_info(job)), timeout)


class Ctx:
    def __init__(self, a):
        self.work = os.path.abspath(a.work)
        self.ferry = a.ferry
        self.workload = a.workload
        self.mpi_workload = a.mpi_workload
        self.store = os.path.join(self.work, "store")  # every simulated node sees it

    def script(self, name, body, sbatch_opts):
        path = os.path.join(self.work, name + ".sbatch")
        out = os.path.join(self.work, name + ".out")
        if os.path.exists(out):
            os.unlink(out)
        lines = ["#!/bin/bash", f"#SBATCH -J {name}", f"#SBATCH -o {out}", "#SBATCH --open-mode=append"]
        lines += [f"#SBATCH {o}" for o in sbatch_opts]
        lines += [f"export FERRY_SLURM_STORE={self.store}", body, ""]
        with open(path, "w") as f:
            f.write("\n".join(lines))
        return path, out

    def submit(self, path, *extra):
        return int(sh("sbatch", "--parsable", *extra, path).strip().split(";")[0])

    def outcome(self, job):
        p = os.path.join(self.store, "slurm", f"slurm-ferryci-{job}.outcome")
        return open(p).read() if os.path.exists(p) else ""

    def reference(self, steps):
        r = subprocess.run([self.workload, str(steps), "0"], capture_output=True, text=True, check=True)
        return r.stdout.strip().splitlines()[-1]

    def steps_seen(self, out):
        try:
            return len(re.findall(r"^step \d+$", open(out).read(), re.M))
        except FileNotFoundError:
            return 0


def check_output(ctx, out, steps):
    text = open(out).read()
    got = re.findall(r"^step (\d+)$", text, re.M)
    if [int(s) for s in got] != list(range(steps)):
        dup = sorted({s for s in got if got.count(s) > 1})
        raise Failed(f"{out}: steps not 0..{steps - 1} exactly once ({len(got)} lines; repeated: {dup[:5]})")
    results = re.findall(r"^result \S+$", text, re.M)
    want = ctx.reference(steps)
    if results != [want]:
        raise Failed(f"{out}: result lines {results}, uninterrupted run: {want}")
    print(f"output: steps 0..{steps - 1} once each, {want} == uninterrupted run")


def expect(cond, msg):
    if not cond:
        raise Failed(msg)
    print("ok:", msg)


def case_timelimit(ctx):
    steps = 80  # 0.5 s each: 40 s of work in a 1-minute job whose USR1 comes 15-27 s in
    path, out = ctx.script("timelimit", f"exec {ctx.ferry} slurm-run -- {ctx.workload} {steps} 500",
                           ["--time=1", "--signal=B:USR1@30", "--requeue"])
    t0 = time.time()
    job = ctx.submit(path, "--exclude=node2,node3")  # run 0 on node1
    # Once requeued (Restarts=1, pending), keep the rerun off node1: restarted on another node.
    wait_for("the first requeue", lambda: int(job_info(job).get("Restarts", 0)) >= 1, 90)
    sh("scontrol", "update", f"JobId={job}", "ExcNodeList=node1", check=False)
    info = wait_final(job, 180)
    print(f"job {job}: {info.get('JobState')} ExitCode={info.get('ExitCode')} Restarts={info.get('Restarts')} "
          f"in {time.time() - t0:.0f} s; outcome:\n{ctx.outcome(job)}")
    expect(info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", "job completed with exit code 0:0")
    oc = ctx.outcome(job)
    expect(re.search(r"run 0 on node1: checkpointed generation \d+ on SIGUSR1; requeued", oc),
           "run 0 on node1 checkpointed on the time-limit signal and requeued")
    expect(re.search(r"run [1-9]\d* on node[23]: restarting from", oc), "a rerun restarted on node2 or node3")
    expect(re.search(r"program exited 0$", oc.strip()), "last outcome: program exited 0")
    expect(info.get("Comment") == "ferry: program exited 0", f"Comment: {info.get('Comment')!r}")
    check_output(ctx, out, steps)


def case_preempt(ctx):
    steps = 50
    path, out = ctx.script("preempt", f"exec {ctx.ferry} slurm-run -- {ctx.workload} {steps} 400",
                           ["-p debug", "-n 2", "--time=10", "--signal=B:USR1@10", "--requeue"])
    job = ctx.submit(path, "-w", "node2")
    wait_for("10 steps of the low-priority job", lambda: ctx.steps_seen(out) >= 10, 60)
    hpath, _ = ctx.script("preempt-high", "sleep 2", ["-p high", "-n 2", "--time=2"])
    high = ctx.submit(hpath, "-w", "node2")
    hinfo = wait_final(high, 120)
    expect(hinfo["JobState"] == "COMPLETED", f"the high-priority job {high} ran and completed")
    info = wait_final(job, 180)
    print(f"job {job}: {info.get('JobState')} ExitCode={info.get('ExitCode')} Restarts={info.get('Restarts')}; "
          f"outcome:\n{ctx.outcome(job)}")
    expect(info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", "preempted job completed with 0:0")
    expect(int(info.get("Restarts", 0)) >= 1, "it was requeued")
    expect(re.search(r"checkpointed generation \d+ on SIGUSR1", ctx.outcome(job)),
           "checkpointed on the preemption signal")
    check_output(ctx, out, steps)


def case_restart_fails(ctx):
    path, out = ctx.script(
        "restart_fails", f"export FERRY_SLURM_MAX_RESTART_FAILURES=2\n"
        f"exec {ctx.ferry} slurm-run -- {ctx.workload} 400 250", ["--time=10", "--signal=B:USR1@60", "--requeue"])
    job = ctx.submit(path, "-w", "node3")
    wait_for("5 steps", lambda: ctx.steps_seen(out) >= 5, 60)
    sh("scancel", "--batch", "--signal=USR1", str(job))  # what the time-limit signal does, now
    wait_for("the requeue", lambda: (lambda i: int(i.get("Restarts", 0)) >= 1 and i.get("JobState") == "PENDING")(
        job_info(job)), 60)
    jobdir = os.path.realpath(os.path.join(ctx.store, "names", f"slurm-ferryci-{job}"))
    removed = 0
    for root, _, files in os.walk(jobdir):
        for f in files:
            if f.endswith(".h5"):
                os.unlink(os.path.join(root, f))
                removed += 1
    expect(removed > 0, f"removed {removed} image file(s) of {jobdir} before the rerun")
    sh("scontrol", "update", f"JobId={job}", "StartTime=now", check=False)

    def release_if_waiting():  # skip cred_expire between the reruns too
        i = job_info(job)
        if i.get("JobState") == "PENDING":
            sh("scontrol", "update", f"JobId={job}", "StartTime=now", check=False)
        return i if i.get("JobState") in FINAL else None

    info = wait_for(f"job {job} to end", release_if_waiting, 120)
    print(f"job {job}: {info.get('JobState')} ExitCode={info.get('ExitCode')} Restarts={info.get('Restarts')}; "
          f"outcome:\n{ctx.outcome(job)}")
    expect(info["JobState"] == "FAILED" and info["ExitCode"] == "86:0", "job FAILED with exit code 86 (restart failed)")
    oc = ctx.outcome(job)
    expect(re.search(r"run 1 .*restart failed \(exited \d+, failure 1 of 2\): ferry: .*; requeued", oc),
           "run 1: restart failed, reason recorded, requeued")
    expect(re.search(r"run 2 .*restart failed \(exited \d+, failure 2 of 2\): ferry: .*; given up, not requeued", oc),
           "run 2: given up after 2 failures")
    expect("restart failed" in info.get("Comment", ""), f"Comment says so: {info.get('Comment', '')!r}")
    time.sleep(8)  # longer than cred_expire: a requeue would show by now
    again = job_info(job)
    expect(again.get("JobState") == "FAILED" and again.get("Restarts") == "2", "not requeued again")
    expect("result" not in open(out).read(), "never started afresh")


def case_exit3(ctx):
    path, out = ctx.script("exit3", f"exec {ctx.ferry} slurm-run -- /bin/sh -c 'echo working; exit 3'",
                           ["--time=2", "--signal=B:USR1@30", "--requeue"])
    job = ctx.submit(path)
    plain, _ = ctx.script("plain", "echo not a ferry job", ["--time=1"])
    pjob = ctx.submit(plain)
    info = wait_final(job, 60)
    print(f"job {job}: {info.get('JobState')} ExitCode={info.get('ExitCode')}; outcome:\n{ctx.outcome(job)}")
    expect(info["JobState"] == "FAILED" and info["ExitCode"] == "3:0", "job FAILED with exit code 3:0")
    expect(ctx.outcome(job).strip().endswith("program exited 3"), "outcome: program exited 3")
    expect(info.get("Comment") == "ferry: program exited 3", f"Comment: {info.get('Comment')!r}")
    expect("working" in open(out).read(), "the program's output is in the job's output file")
    pinfo = wait_final(pjob, 60)
    expect(pinfo["JobState"] == "COMPLETED", "a job that does not use ferry is untouched by the hooks")
    time.sleep(1)
    states = sh("sinfo", "-h", "-N", "-o", "%N %t")
    expect(not re.search(r"drain|down|fail", states), f"no node drained by the hooks ({states.split()})")


def case_killed(ctx):
    # `ferry slurm-run` itself is killed (SIGKILL to the batch shell, as the OOM killer
    # would) before any checkpoint: no outcome from ferry, so the epilog records what Slurm
    # says. (A plain scancel sends TERM first: ferry then records "program exited 143".)
    path, out = ctx.script("killed", f"exec {ctx.ferry} slurm-run -- {ctx.workload} 400 250",
                           ["--time=5", "--signal=B:USR1@60", "--requeue"])
    job = ctx.submit(path)
    wait_for("3 steps", lambda: ctx.steps_seen(out) >= 3, 60)
    sh("scancel", "--batch", "-s", "KILL", str(job))
    info = wait_final(job, 60)
    time.sleep(2)  # the epilog runs as the job ends
    info = job_info(job)
    oc = ctx.outcome(job).strip()
    print(f"job {job}: {info.get('JobState')} ExitCode={info.get('ExitCode')}; outcome:\n{oc}")
    expect(re.search(r"epilog on node\d: the run ended without a ferry outcome \(no checkpoint taken\): "
                     r"JobState=\S+ Reason=\S+ .*ExitCode=", oc.splitlines()[-1]),
           "the epilog appended the job's end to the outcome")
    expect(info.get("Comment") == "ferry: launched", f"Comment keeps ferry's last word: {info.get('Comment')!r}")
    expect(not os.path.exists(f"/run/ferry-slurm/{job}"), "the node-local file is gone")


def case_mpi(ctx):
    log = subprocess.run(["git", "-C", os.path.join(HERE, "..", ".."), "log", "--oneline", "-1", "--",
                          "cli/cmd_mpirun.cpp"], capture_output=True, text=True).stdout.strip()
    if not log and os.environ.get("FERRY_SLURM_TEST_MPI") != "1":
        print("SKIP mpi: `ferry mpirun` is not committed yet (cli/cmd_mpirun.cpp); "
              "FERRY_SLURM_TEST_MPI=1 runs the case against a working tree that has it")
        return SKIP
    if not ctx.mpi_workload or not os.path.exists(ctx.mpi_workload):
        print("SKIP mpi: no MPI workload (mpicc or ferry-mpi-proxy not built: install openmpi-bin libopenmpi-dev)")
        return SKIP
    steps = 80
    mpi_env = "export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,tcp\n"
    path, out = ctx.script(
        "mpi", mpi_env + f"exec {ctx.ferry} slurm-run --mpirun --mpirun-arg=-np --mpirun-arg=2 -- "
        f"{ctx.mpi_workload} {steps} 500", ["-n 2", "--time=1", "--signal=B:USR1@30", "--requeue"])
    t0 = time.time()
    job = ctx.submit(path, "--exclude=node2,node3")
    wait_for("the first requeue", lambda: int(job_info(job).get("Restarts", 0)) >= 1, 90)
    sh("scontrol", "update", f"JobId={job}", "ExcNodeList=node1", check=False)
    info = wait_final(job, 240)
    print(f"job {job}: {info.get('JobState')} ExitCode={info.get('ExitCode')} Restarts={info.get('Restarts')} "
          f"in {time.time() - t0:.0f} s; outcome:\n{ctx.outcome(job)}")
    expect(info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", "MPI job completed with exit code 0:0")
    oc = ctx.outcome(job)
    expect(re.search(r"run 0 on node1: checkpointed generation \d+ on SIGUSR1; requeued", oc),
           "run 0 on node1 checkpointed on the time-limit signal and requeued")
    expect(re.search(r"run [1-9]\d* on node[23]: restarting from", oc), "a rerun restarted on node2 or node3")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_btl="self,tcp")
    ref = subprocess.run(["mpirun", "-np", "2", ctx.mpi_workload, str(steps), "0"], capture_output=True,
                         text=True, env=env, timeout=120).stdout.strip().splitlines()[-1]
    text = open(out).read()
    got = [int(x) for x in re.findall(r"^step (\d+)$", text, re.M)]
    expect(got == list(range(steps)), f"steps 0..{steps - 1} once each ({len(got)} lines)")
    expect(re.findall(r"^result \S+$", text, re.M) == [ref], f"result == uninterrupted mpirun -np 2 ({ref})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--ferry")
    ap.add_argument("--workload")
    ap.add_argument("--mpi-workload", default="")
    ap.add_argument("what")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    unavailable = os.path.join(a.work, "unavailable")
    if a.what == "setup":
        if os.path.exists(unavailable):
            os.unlink(unavailable)
        # slurmctld starts with empty state (job ids from 1): old stores would collide.
        shutil.rmtree(os.path.join(a.work, "store"), ignore_errors=True)
        if os.geteuid() != 0:
            open(unavailable, "w").write("not root: Slurm and munge need root to start\n")
        else:
            r = subprocess.run([os.path.join(HERE, "slurm-up.sh")], capture_output=True, text=True, timeout=600)
            print(r.stdout + r.stderr)
            if r.returncode != 0:
                open(unavailable, "w").write(f"slurm-up.sh failed ({r.returncode}): {r.stderr.strip()[-500:]}\n")
        if os.path.exists(unavailable):
            print("Slurm unavailable:", open(unavailable).read())
        return 0
    if a.what == "cleanup":
        r = subprocess.run([os.path.join(HERE, "slurm-down.sh")], capture_output=True, text=True, timeout=120)
        print(r.stdout + r.stderr)
        return r.returncode
    if os.path.exists(unavailable):
        print(f"SKIP {a.what}: Slurm could not start here: {open(unavailable).read().strip()}")
        return SKIP
    if shutil.which("sbatch") is None:
        print(f"SKIP {a.what}: sbatch not found")
        return SKIP
    ctx = Ctx(a)
    os.makedirs(ctx.store, exist_ok=True)
    os.chmod(a.work, 0o755)
    try:
        rc = globals()["case_" + a.what](ctx)
        if rc == SKIP:
            return SKIP
        print(f"PASS {a.what}")
        return 0
    except Failed as e:
        print(f"FAIL {a.what}: {e}")
        for j in sh("squeue", "-h", "-o", "%i %j", check=False).splitlines():
            if j.split()[1:] and j.split()[1].startswith(a.what):
                sh("scancel", j.split()[0], check=False)
        out = os.path.join(ctx.work, a.what + ".out")
        if os.path.exists(out):
            print(f"--- tail of {out}\n" + "".join(open(out).readlines()[-20:]))
        for f in ("slurmctld.log",):
            p = os.path.join("/var/log/ferry-slurm", f)
            if os.path.exists(p):
                print(f"--- tail of {p}\n" + "".join(open(p).readlines()[-15:]))
        return 1


if __name__ == "__main__":
    sys.exit(main())
