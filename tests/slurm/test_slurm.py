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
      CASE: timelimit | preempt | restart_fails | exit3 | killed | mpi | mpi_multinode | agent | hooks
      (hooks runs the hook scripts directly and needs no Slurm)
"""
import argparse
import json
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
        self.agent = a.agent
        self.coordinator = a.coordinator
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


def ferry_wait(ctx, job):
    """`ferry wait --json` on the Slurm job's ferry job, as a batch manager would ask."""
    w = subprocess.run([ctx.ferry, "wait", "--store", ctx.store, f"slurm-ferryci-{job}", "--json", "--timeout", "10"],
                       capture_output=True, text=True, timeout=30)
    print(f"ferry wait: {w.returncode} {w.stdout.strip()[:400]} {w.stderr.strip()[:300]}")
    try:
        return w.returncode, json.loads(w.stdout)
    except ValueError:
        raise Failed(f"ferry wait printed no JSON: {w.stdout!r} {w.stderr!r} ({w.returncode})")


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
    rc, rec = ferry_wait(ctx, job)
    expect(rc == 0 and rec["outcome"] == "exited" and rec["exit_status"] == 0 and rec["restart_id"] >= 2,
           "ferry wait: the restarted run's program exited 0 (exit 0)")
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
    # Releasing a requeued job early skips slurmctld's cred_expire wait; not in the second of the
    # requeue itself: slurmd compares credential times in whole seconds and kills a run whose
    # credential is as old as the revocation ("Job credential revoked", seen once in CI).
    pending_since = {"t": time.time()}
    time.sleep(1.2)
    sh("scontrol", "update", f"JobId={job}", "StartTime=now", check=False)

    def release_if_waiting():  # skip cred_expire between the reruns too
        i = job_info(job)
        if i.get("JobState") != "PENDING":
            pending_since["t"] = None
        elif pending_since["t"] is None:
            pending_since["t"] = time.time()
        elif time.time() - pending_since["t"] >= 1.2:
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
    rc, rec = ferry_wait(ctx, job)
    expect(rc == 86 and rec["outcome"] == "restart_failed" and rec["phase"] == "validate" and rec["reason"],
           "ferry wait: restart_failed in validate with the reason (exit 86)")
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
    rc, rec = ferry_wait(ctx, job)
    expect(rc == 3 and rec["outcome"] == "exited" and rec["exit_status"] == 3,
           "ferry wait: the application's own status 3 (exit 3), not a restart failure")
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


def mpi_ready(ctx, case):
    """None when the MPI cases can run, else the SKIP reason."""
    log = subprocess.run(["git", "-C", os.path.join(HERE, "..", ".."), "log", "--oneline", "-1", "--",
                          "cli/cmd_mpirun.cpp"], capture_output=True, text=True).stdout.strip()
    if not log and os.environ.get("FERRY_SLURM_TEST_MPI") != "1":
        return (f"SKIP {case}: `ferry mpirun` is not committed yet (cli/cmd_mpirun.cpp); "
                "FERRY_SLURM_TEST_MPI=1 runs the case against a working tree that has it")
    if not ctx.mpi_workload or not os.path.exists(ctx.mpi_workload):
        return f"SKIP {case}: no MPI workload (mpicc or ferry-mpi-proxy not built: install openmpi-bin libopenmpi-dev)"
    return None


MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           # simulated nodes share one host: the shared-memory BTL crashes between them
           "OMPI_MCA_btl": "self,tcp"}


def mpi_reference(ctx, np, steps):
    r = subprocess.run(["mpirun", "--oversubscribe", "-np", str(np), ctx.mpi_workload, str(steps), "0"],
                       capture_output=True, text=True, env=dict(os.environ, **MPI_ENV), timeout=120)
    return r.stdout.strip().splitlines()[-1]


def hostnames(nodelist):
    return sh("scontrol", "show", "hostnames", nodelist).split()


def case_mpi_multinode(ctx):
    # One MPI job over two simulated nodes (sbatch -N2 -n4: 2 ranks per node). mpirun runs
    # in the batch step and starts an orted on each node of the allocation through Slurm
    # (Open MPI's plm/slurm: `srun ... orted`), which is what spans the nodes here.
    # Run 0 gets two of the three nodes; once requeued, its batch host is excluded
    # (ExcNodeList), so the rerun gets the other pair and every rank moves to another node.
    why = mpi_ready(ctx, "mpi_multinode")
    if why:
        print(why)
        return SKIP
    steps = 80
    env = "".join(f"export {k}={v}\n" for k, v in MPI_ENV.items())
    path, out = ctx.script(
        "mpi_multinode", env + "echo \"run ${SLURM_RESTART_COUNT:-0} nodes $SLURM_JOB_NODELIST\"\n"
        f"exec {ctx.ferry} slurm-run --mpirun --mpirun-arg=-np --mpirun-arg=4 "
        f"--mpirun-arg=--display-map -- {ctx.mpi_workload} {steps} 500",
        ["-N 2", "-n 4", "--ntasks-per-node=2", "--time=1", "--signal=B:USR1@30", "--requeue"])
    t0 = time.time()
    job = ctx.submit(path)
    wait_for("the first requeue", lambda: int(job_info(job).get("Restarts", 0)) >= 1, 240)
    first = re.search(r"^run 0 nodes (\S+)$", open(out).read(), re.M)
    expect(first, f"run 0 ran on {first.group(1) if first else '?'}")
    nodes0 = hostnames(first.group(1))
    sh("scontrol", "update", f"JobId={job}", f"ExcNodeList={nodes0[0]}", check=False)
    info = wait_final(job, 240)
    oc = ctx.outcome(job)
    print(f"job {job}: {info.get('JobState')} ExitCode={info.get('ExitCode')} Restarts={info.get('Restarts')} "
          f"in {time.time() - t0:.0f} s; outcome:\n{oc}")
    text = open(out).read()
    runs = [(int(r), hostnames(n)) for r, n in re.findall(r"^run (\d+) nodes (\S+)$", text, re.M)]
    print("runs:", runs)
    expect(info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", "MPI job completed with exit code 0:0")
    others = sorted(set(["node1", "node2", "node3"]) - {nodes0[0]})
    expect(len(nodes0) == 2 and len(runs) >= 2 and all(n == others for _, n in runs[1:]),
           f"run 0 on {nodes0}, every rerun on {others}")
    # Open MPI's map (--display-map): each run placed 2 ranks on each of its two nodes.
    maps = re.findall(r"Data for node: (\S+)\s+Num slots: \d+\s+Max slots: \d+\s+Num procs: (\d+)", text)
    print("mpirun maps (node, procs):", maps)
    want = [(n, "2") for _, ns in runs for n in ns]
    expect(maps == want, "every run placed 2 ranks on each of its nodes (ranks 0,1 on the first)")
    expect(re.search(rf"run 0 on {nodes0[0]}: checkpointed generation \d+ on SIGUSR1; requeued", oc),
           f"run 0 (batch host {nodes0[0]}) checkpointed on the time-limit signal and requeued")
    expect(re.search(rf"run [1-9]\d* on {others[0]}: restarting from", oc), f"a rerun (batch host {others[0]}) restarted")
    gens = [int(g) for g in re.findall(r"checkpointed generation (\d+) on SIGUSR1", oc)]
    expect(gens == list(range(1, len(gens) + 1)), f"each run's checkpoint is a new generation: {gens}")
    # The job's run records (ferry wait on the MPI job): the last run's ranks exited 0.
    rc, rec = ferry_wait(ctx, job)
    expect(rc == 0 and rec["outcome"] == "exited", "ferry wait on the job: exit 0, outcome exited")
    ref = mpi_reference(ctx, 4, steps)
    got = [int(x) for x in re.findall(r"^step (\d+)$", text, re.M)]
    expect(got == list(range(steps)), f"steps 0..{steps - 1} once each ({len(got)} lines)")
    expect(re.findall(r"^result \S+$", text, re.M) == [ref], f"result == uninterrupted mpirun -np 4 ({ref})")


CI_CONF_DIR = "/etc/ferry-slurm-ci"  # slurm-up.sh: job.d/<jobid>.conf = hook settings for one job
HOOK_LOG = "/var/log/ferry-slurm/hooks.log"


def submit_with_hook_conf(ctx, path, conf, *extra):
    """Submit held, give the job its own hook settings, release: the prolog sees them."""
    job = ctx.submit(path, "--hold", *extra)
    f = os.path.join(CI_CONF_DIR, "job.d", f"{job}.conf")
    with open(f + ".new", "w") as fh:
        fh.write(conf)
    os.replace(f + ".new", f)
    sh("scontrol", "release", str(job))
    return job, f


def proc_comm(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return ""


def agents_for(port):
    """Pids of the ferry-agent processes that talk to the coordinator on PORT."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit() and proc_comm(d) == "ferry-agent":
            try:
                argv = open(f"/proc/{d}/cmdline").read().split("\0")
            except OSError:
                continue
            if f"127.0.0.1:{port}" in argv:
                found.append(int(d))
    return found


def case_agent(ctx):
    # The prolog's agent start for cluster jobs (FERRY_AGENT_COORDINATOR): a test coordinator
    # with its own port, state and store under the work dir; the hook settings are given to
    # this case's jobs only (job.d/<jobid>.conf), so the other cases' jobs never start an agent.
    if not (ctx.agent and os.path.exists(ctx.agent) and ctx.coordinator and os.path.exists(ctx.coordinator)):
        print("SKIP agent: ferry-agent or ferry-coordinator not built")
        return SKIP
    node = "node1"
    root = os.path.join(ctx.work, "agent")
    shutil.rmtree(root, ignore_errors=True)
    store, state, secrets = (os.path.join(root, d) for d in ("store", "state", "usersecrets"))
    for d in (store, state, secrets):
        os.makedirs(d)
    os.chmod(secrets, 0o711)
    cluster_secret = os.path.join(root, "cluster.secret")
    user_secret = os.path.join(secrets, "0")
    for f in (cluster_secret, user_secret):
        with open(f, "w") as fh:
            fh.write(os.urandom(32).hex())
        os.chmod(f, 0o600)
    pidf = f"/run/ferry-slurm/agent-{node}.pid"
    coord = subprocess.Popen([ctx.coordinator, "--listen", "127.0.0.1:0", "--state", state, "--store", store,
                              "--cluster-secret", cluster_secret, "--user-secrets", secrets,
                              "--heartbeat-ms", "300", "--lost-after-ms", "2000"],
                             stdout=subprocess.PIPE, stderr=open(os.path.join(root, "coordinator.err"), "w"), text=True)
    confs, agent_pid, port = [], None, None
    try:
        line = coord.stdout.readline()
        if not line.startswith("listening"):
            raise Failed(f"ferry-coordinator did not start: {line!r}")
        port = int(line.split(":")[-1])
        print(f"coordinator pid {coord.pid} on 127.0.0.1:{port}")
        env = dict(os.environ, FERRY_COORDINATOR=f"127.0.0.1:{port}", FERRY_SECRET_FILE=user_secret,
                   FERRY_HOME=store, FERRY_AUTH="hmac")

        def nodes():
            r = subprocess.run([ctx.ferry, "status", "--json"], env=env, capture_output=True, text=True, timeout=20)
            if r.returncode != 0:
                raise Failed(f"ferry status via the coordinator: {r.returncode} {r.stderr.strip()}")
            return {n["node"]: n["alive"] for n in __import__("json").loads(r.stdout)["nodes"]}

        expect(node not in nodes(), f"{node} is not registered before any job")
        conf = (f"FERRY_AGENT_COORDINATOR=127.0.0.1:{port}\nFERRY_AGENT_PATH={ctx.agent}\n"
                f"FERRY_AGENT_STORE={store}\nFERRY_AGENT_SECRET={cluster_secret}\n"
                f"FERRY_AGENT_OPTIONS='--ferry {ctx.ferry} --log-dir {root}'\n")
        before = open(HOOK_LOG).read().count("started ferry-agent") if os.path.exists(HOOK_LOG) else 0
        path, out = ctx.script("agent", "echo job on $SLURMD_NODENAME; sleep 3", ["--time=1", "-n 1"])
        job, f = submit_with_hook_conf(ctx, path, conf, "-w", node)
        confs.append(f)
        info = wait_final(job, 180)  # node1 may be busy with other cases under ctest -j2
        expect(info["JobState"] == "COMPLETED", f"job {job} on {node} completed")
        agent_pid = int(open(pidf).read().strip()) if os.path.exists(pidf) else None
        expect(agent_pid and proc_comm(agent_pid) == "ferry-agent",
               f"the prolog started {node}'s ferry-agent (pid file {pidf}: {agent_pid})")
        wait_for(f"{node} registered with the coordinator", lambda: nodes().get(node) is True, 20)
        print(f"ok: ferry status via the coordinator lists {node} alive")
        time.sleep(2)
        expect(proc_comm(agent_pid) == "ferry-agent" and nodes().get(node) is True,
               "the agent survived the job's end and is still registered")
        job2, f2 = submit_with_hook_conf(ctx, path, conf, "-w", node)
        confs.append(f2)
        info2 = wait_final(job2, 180)
        expect(info2["JobState"] == "COMPLETED", f"second job {job2} on {node} completed")
        now = int(open(pidf).read().strip())
        expect(now == agent_pid and agents_for(port) == [agent_pid],
               f"the second job's prolog kept the running agent (pid {now}, agents {agents_for(port)})")
        started = open(HOOK_LOG).read().count("started ferry-agent") - before
        expect(started == 1, f"the hook log has one 'started ferry-agent' for the two jobs ({started})")
        os.kill(agent_pid, 15)
        wait_for(f"agent pid {agent_pid} to end", lambda: proc_comm(agent_pid) != "ferry-agent", 20)
        wait_for(f"{node} not alive at the coordinator", lambda: nodes().get(node) is not True, 20)
        print(f"ok: the agent stopped by pid {agent_pid}; the coordinator sees {node} gone")
        agent_pid = None
    finally:
        for pid in set(agents_for(port) if port else []) | ({agent_pid} if agent_pid else set()):
            if proc_comm(pid) == "ferry-agent":
                os.kill(pid, 9)
        if os.path.exists(pidf):
            os.unlink(pidf)
        for f in confs:
            if os.path.exists(f):
                os.unlink(f)
        coord.kill()
        coord.wait()


def case_hooks(ctx):
    # The hooks run directly (no Slurm needed), as slurmd would run them: the epilog is safe
    # for jobs that do not use ferry and bounded when scontrol or the store hang.
    root = os.path.join(ctx.work, "hooks")
    shutil.rmtree(root, ignore_errors=True)
    nodedir, fake = os.path.join(root, "run"), os.path.join(root, "bin")
    os.makedirs(nodedir)
    os.makedirs(fake)
    with open(os.path.join(fake, "scontrol"), "w") as fh:  # slurmctld not answering
        fh.write("#!/bin/sh\nsleep 60\n")
    os.chmod(os.path.join(fake, "scontrol"), 0o755)
    conf = os.path.join(root, "hooks.conf")
    with open(conf, "w") as fh:
        fh.write(f"PATH={fake}:$PATH\nFERRY_SLURM_NODE_DIR={nodedir}\nFERRY_SLURM_HOOK_LOG={root}/hooks.log\n"
                 "FERRY_SLURM_HOOK_TIMEOUT=2\n")
    repo = os.path.join(HERE, "..", "..", "slurm")

    def run(hook, job, **env):
        e = {"FERRY_SLURM_CONF": conf, "SLURM_JOB_ID": str(job), "SLURMD_NODENAME": "nodeX",
             "SLURM_JOB_UID": str(os.getuid()), **env}
        t = time.time()
        try:
            r = subprocess.run([os.path.join(repo, f"ferry-{hook}.sh")], env=e, capture_output=True, text=True,
                               timeout=30)
        except subprocess.TimeoutExpired:
            raise Failed(f"ferry-{hook}.sh for job {job!r} still runs after 30 s")
        return r.returncode, time.time() - t

    rc, dt = run("prolog", 11)
    expect(rc == 0 and os.stat(nodedir).st_mode & 0o7777 == 0o1777, f"prolog: exit 0, node dir mode 1777 ({dt:.1f} s)")
    rc, dt = run("epilog", 11)
    expect(rc == 0 and dt < 1, f"epilog of a job that does not use ferry: exit 0 in {dt:.2f} s")
    rc, dt = run("epilog", "", SLURM_JOB_ID="")
    expect(rc == 0, "epilog without SLURM_JOB_ID: exit 0")
    outcome = os.path.join(root, "slurm-ferryci-12.outcome")
    with open(outcome, "w") as fh:
        fh.write("2026-01-01T00:00:00 run 0 on nodeX: launched\n")
    with open(os.path.join(nodedir, "12"), "w") as fh:
        fh.write(outcome + "\n")
    rc, dt = run("epilog", 12)
    last = open(outcome).read().splitlines()[-1]
    expect(rc == 0 and dt < 10, f"epilog with scontrol hanging: exit 0 after {dt:.1f} s (timeout 2 s per call)")
    expect("the run ended without a ferry outcome" in last and "scontrol gave nothing" in last,
           f"it still recorded the run's end: {last!r}")
    expect(not os.path.exists(os.path.join(nodedir, "12")), "and removed the node-local file")
    with open(os.path.join(nodedir, "13"), "w") as fh:  # a pointer to something not an outcome
        fh.write("/etc/passwd\n")
    before = open("/etc/passwd").read()
    rc, dt = run("epilog", 13)
    expect(rc == 0 and open("/etc/passwd").read() == before and not os.path.exists(os.path.join(nodedir, "13")),
           "a pointer that does not name an outcome file is ignored and removed")
    with open(os.path.join(nodedir, "14"), "w") as fh:  # the job's user does not own the file
        fh.write(outcome + "\n")
    with open(outcome, "a") as fh:  # a last line the epilog would complete
        fh.write("2026-01-01T00:00:01 run 1 on nodeX: launched\n")
    size = os.path.getsize(outcome)
    rc, dt = run("epilog", 14, SLURM_JOB_UID="4242")
    expect(rc == 0 and os.path.getsize(outcome) == size, "an outcome file of another user is left alone")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--ferry")
    ap.add_argument("--workload")
    ap.add_argument("--mpi-workload", default="")
    ap.add_argument("--agent", default="")
    ap.add_argument("--coordinator", default="")
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
    if a.what == "hooks":  # no Slurm needed
        try:
            case_hooks(Ctx(a))
            print("PASS hooks")
            return 0
        except Failed as e:
            print(f"FAIL hooks: {e}")
            return 1
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
