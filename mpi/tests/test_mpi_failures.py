#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Failures of MPI jobs and their exit records (issue 5 section 6), one --case per run:

  crash    a rank dies of SIGSEGV (crash.c, 3 ranks), and a rank of a *restarted* job is killed
           by SIGSEGV: `ferry mpirun` / `ferry restart` exit 139 and `ferry wait JOB --json` says
           signaled 11 naming that rank and its node - never restart_failed.
  abort    a rank calls MPI_Abort(MPI_COMM_WORLD, 3) (abort.c): exit 3, record exited 3, rank,
           node, reason "MPI_Abort".
  restore  after checkpoint --stop, rank 2's image is truncated: `ferry restart` exits 86 with
           "ferry: restart R of job J failed in PHASE on node N rank 2: ..." and the record
           says restart_failed, rank 2, the node; then rank 1's mpi-lower.state is removed:
           restart_failed in validate, rank 1. Nothing of the generation is lost: with the
           two files put back, `ferry restart` finishes and the output equals an uninterrupted
           run's.
  lost     a rank's proxy is stopped, a checkpoint is asked for (the drain cannot complete),
           and the proxy is killed (a node lost mid-drain): `ferry checkpoint` fails naming the
           abandoned generation and the one that stays newest, no partial directory is left,
           the record is not restart_failed, and `ferry restart` from the previous generation
           finishes with the uninterrupted run's output.
  double_restart  generations taken in *restarted* runs restart (a Slurm job requeued twice):
           launch 4 ranks of ckpt_mix, checkpoint, kill -9; then 3 times: `ferry restart`,
           checkpoint as soon as the restarted job is up (before its applications have
           re-attached to their new proxies), kill -9; the last restart finishes and the output
           equals an uninterrupted run's. Before the fix the image of such a checkpoint carried
           the restarted proxy's `moved` record, which the next restart's applications followed
           to that killed proxy ("cannot attach to the restarted MPI proxy's channel").

  hung_proxy  a checkpoint that cannot complete is given up and the job continues (issue 5
           section 6): rank 2's proxy of a 4-rank ckpt_mix job is stopped (SIGSTOP) after a
           first checkpoint; `ferry checkpoint --timeout 5` fails within 4.5-12 s naming the
           agreement, rank 2 and its node, generation 2 is not committed and no partial
           directory is left; after SIGCONT a checkpoint succeeds and the job finishes with the
           uninterrupted run's output. A second job does the same, then kill -9 and `ferry
           restart` from the generation taken after the SIGCONT: the uninterrupted output.
  hung_phases  the same in the other phases, with FERRY_TEST_CHECKPOINT_HANG (a proxy stops
           itself when it enters a phase): rank 0 in the agreement (`ferry mpirun` gets no
           answer and names rank 0), rank 2 in the drain (the others have drained messages,
           which they keep), rank 2 before its freeze (the others were frozen and dumped and
           are thawed); each checkpoint fails naming the phase and rank, SIGCONT, and finally
           a checkpoint succeeds, kill -9, restart: the uninterrupted output.
           Last, rank 3's rank supervisor (`ferry rank-launch`) is stopped: its proxy's freeze
           request gets no answer; the checkpoint fails naming the freeze and dump and rank 3.
  compute  a rank computing for 8 s without any MPI call (long_compute.c) is checkpointed with
           --timeout 5 while it computes (its proxy drains on its behalf); kill -9 before it
           ends the computation, restart: the uninterrupted output.

Exit 0 pass, 1 fail, 77 skip (no mpirun)."""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "harness"))
from process_tree import descendants, kill_tree  # noqa: E402

TIMEOUT = 240


def rank_process(root_pid, exe, rank):
    """The pid below root_pid whose executable is `exe` and whose environment says world rank `rank`."""
    for p in descendants(root_pid):
        try:
            if os.path.realpath(f"/proc/{p}/exe") != os.path.realpath(exe):
                continue
            with open(f"/proc/{p}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
            return p
    return None


class Case:
    def __init__(self, a):
        self.a = a
        self.store = tempfile.mkdtemp(prefix="ferry-mpi-fail-")
        self.env = dict(os.environ)
        self.env.pop("LD_LIBRARY_PATH", None)
        if os.geteuid() == 0:
            self.env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        self.env["FERRY_HOME"] = self.store
        self.procs = []
        self.node = socket.gethostname()

    def ferry(self, *args, timeout=TIMEOUT):
        return subprocess.run([self.a.ferry] + list(args), capture_output=True, text=True, env=self.env,
                              timeout=timeout)

    def record(self, job):
        w = self.ferry("wait", job, "--json", timeout=60)
        try:
            return w.returncode, json.loads(w.stdout), w.stderr
        except ValueError:
            return w.returncode, None, w.stderr

    def start(self, args, name):
        out = open(os.path.join(self.store, name + ".out"), "w+")
        err = open(os.path.join(self.store, name + ".err"), "w+")
        p = subprocess.Popen([self.a.ferry] + args, stdout=out, stderr=err, env=self.env, start_new_session=True)
        self.procs.append(p)
        return p, out.name, err.name

    def wait_lines(self, proc, path, n):
        deadline = time.time() + TIMEOUT
        while time.time() < deadline and proc.poll() is None:
            with open(path) as f:
                if sum(1 for _ in f) >= n:
                    return True
            time.sleep(0.05)
        return False

    def reference(self, np, prog):
        ref = subprocess.run([shutil.which(os.environ.get("MPIRUN", "mpirun")), "--oversubscribe", "-np", str(np)]
                             + prog, capture_output=True, text=True, env=self.env, timeout=TIMEOUT)
        return ref.returncode, sorted(set(ref.stdout.splitlines()))

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                kill_tree(p)
                p.wait()
        shutil.rmtree(self.store, ignore_errors=True)


def expect_record(rec, **want):
    if rec is None:
        return "no JSON record"
    keys = ["restart_id", "job", "outcome", "exit_status", "signal", "phase", "rank", "node", "reason"]
    if list(rec.keys()) != keys:
        return f"record keys {list(rec.keys())}, want {keys}"
    for k, v in want.items():
        if callable(v):
            if not v(rec[k]):
                return f"record {k} = {rec[k]!r} is wrong ({rec})"
        elif rec[k] != v:
            return f"record {k} = {rec[k]!r}, want {v!r} ({rec})"
    return None


def case_crash(c):
    r = c.ferry("mpirun", "--name", "c", "--oversubscribe", "-np", "3", "--", c.a.programs + "/crash")
    if r.returncode != 139:
        return f"ferry mpirun of crash exited {r.returncode}, want 139\n{r.stderr}"
    rc, rec, err = c.record("c")
    bad = expect_record(rec, outcome="signaled", signal=11, rank=2, node=c.node, exit_status=None, phase=None)
    if bad or rc != 139 or "ferry:" in err:
        return f"crash: {bad or f'ferry wait exited {rc}, stderr {err!r}'}"
    # A rank of a restarted job crashes: the application's outcome, not a restart failure.
    prog = [c.a.programs + "/ckpt_mix", "400", "10000"]
    job, out, err1 = c.start(["mpirun", "--name", "m", "--oversubscribe", "-np", "4", "--"] + prog, "m1")
    if not c.wait_lines(job, out, 8):
        return "ckpt_mix printed nothing\n" + open(err1).read()
    ck = c.ferry("checkpoint", "m", "--stop")
    if ck.returncode != 0:
        return f"checkpoint --stop failed: {ck.stderr}"
    job.wait(timeout=TIMEOUT)
    again, out2, err2 = c.start(["restart", "m", "--json"], "m2")
    deadline = time.time() + 60
    victim = None
    while time.time() < deadline and again.poll() is None and victim is None:
        victim = rank_process(again.pid, prog[0], 1)
        time.sleep(0.1)
    if victim is None:
        return "the restarted rank 1 was not found\n" + open(err2).read()
    time.sleep(0.5)
    os.kill(victim, signal.SIGSEGV)
    rc2 = again.wait(timeout=TIMEOUT)
    if rc2 != 139:
        return f"ferry restart exited {rc2} after rank 1 crashed, want 139\n" + open(err2).read()
    rc, rec, err = c.record("m")
    bad = expect_record(rec, outcome="signaled", signal=11, rank=1, node=c.node, restart_id=2)
    if bad or rc != 139 or "ferry:" in err:
        return f"crash after restart: {bad or f'ferry wait exited {rc}, stderr {err!r}'}"
    return None


def case_abort(c):
    r = c.ferry("mpirun", "--name", "a", "--oversubscribe", "-np", "3", "--", c.a.programs + "/abort")
    if r.returncode != 3:
        return f"ferry mpirun of abort exited {r.returncode}, want 3\n{r.stderr}"
    rc, rec, err = c.record("a")
    bad = expect_record(rec, outcome="exited", exit_status=3, rank=2, node=c.node, signal=None, reason="MPI_Abort")
    if bad or rc != 3 or "ferry:" in err:
        return f"abort: {bad or f'ferry wait exited {rc}, stderr {err!r}'}"
    return None


def stopped_job(c, prog, np):
    job, out, err = c.start(["mpirun", "--name", "t", "--oversubscribe", "-np", str(np), "--"] + prog, "run1")
    if not c.wait_lines(job, out, np * 2):
        return None, "the job printed nothing\n" + open(err).read()
    time.sleep(0.5)
    ck = c.ferry("checkpoint", "t", "--stop")
    if ck.returncode != 0:
        return None, f"checkpoint --stop failed with {ck.returncode}: {ck.stderr}"
    job.wait(timeout=TIMEOUT)
    return out, None


def finish_and_compare(c, want, first_out, what):
    r = c.ferry("restart", "t")
    if r.returncode != 0:
        return f"{what}: the restart exited {r.returncode}\n{r.stderr}"
    got = open(first_out).read().splitlines() + r.stdout.splitlines()
    if sorted(set(got)) != want:
        return f"{what}: output differs: missing {sorted(set(want) - set(got))[:5]}, unexpected {sorted(set(got) - set(want))[:5]}"
    rc, rec, _ = c.record("t")
    return expect_record(rec, outcome="exited", exit_status=0)


def case_restore(c):
    prog = [c.a.programs + "/ckpt_mix", "200", "10000"]
    ok, want = c.reference(4, prog)
    if ok != 0:
        return "the reference run failed"
    first_out, bad = stopped_job(c, prog, 4)
    if bad:
        return bad
    gen = os.path.join(c.store, "jobs", "1", "gen-000001")
    image = os.path.join(gen, "rank-2", "rank-2.h5")
    state = os.path.join(gen, "rank-1", "mpi-lower.state")
    listing = sorted(os.listdir(gen))
    saved_image = open(image, "rb").read()
    saved_state = open(state, "rb").read()
    with open(image, "r+b") as f:  # a truncated image (a flipped byte may land in unused space)
        f.truncate(len(saved_image) // 2)
    r = c.ferry("restart", "t")
    line = f" on node {c.node} rank 2: "
    if r.returncode != 86 or line not in r.stderr or "ferry: restart 2 of job 1 failed in " not in r.stderr:
        return f"corrupt image: ferry restart exited {r.returncode}, want 86 and 'failed in PHASE{line}'\n{r.stderr}"
    rc, rec, err = c.record("t")
    bad = expect_record(rec, outcome="restart_failed", phase=lambda p: p in ("validate", "restore"), rank=2,
                        node=c.node, exit_status=None, signal=None, reason=lambda s: bool(s) and "rank-2.h5" in s)
    if bad or rc != 86 or line not in err:
        return f"corrupt image: {bad or f'ferry wait exited {rc}, stderr {err!r}'}"
    with open(image, "wb") as f:
        f.write(saved_image)
    os.unlink(state)
    r = c.ferry("restart", "t")
    rc, rec, err = c.record("t")
    bad = expect_record(rec, outcome="restart_failed", phase="validate", rank=1, node=c.node,
                        reason=lambda s: bool(s) and "mpi-lower.state" in s)
    if r.returncode != 86 or bad or rc != 86:
        return f"missing mpi-lower.state: ferry restart exited {r.returncode}; {bad}\n{r.stderr}"
    with open(state, "wb") as f:
        f.write(saved_state)
    if sorted(os.listdir(gen)) != listing or [g for g in os.listdir(os.path.dirname(gen)) if g.startswith("gen-")] != ["gen-000001"]:
        return f"the failed restarts changed the store: {sorted(os.listdir(os.path.dirname(gen)))}"
    return finish_and_compare(c, want, first_out, "after the failed restarts")


def case_lost(c):
    prog = [c.a.programs + "/ckpt_mix", "300", "10000"]
    ok, want = c.reference(4, prog)
    if ok != 0:
        return "the reference run failed"
    job, out, err = c.start(["mpirun", "--name", "t", "--oversubscribe", "-np", "4", "--"] + prog, "run1")
    if not c.wait_lines(job, out, 8):
        return "the job printed nothing\n" + open(err).read()
    ck = c.ferry("checkpoint", "t")
    if ck.returncode != 0:
        return f"the first checkpoint failed: {ck.stderr}"
    proxy = rank_process(job.pid, c.a.proxy, 2)
    if proxy is None:
        return "rank 2's proxy was not found"
    os.kill(proxy, signal.SIGSTOP)
    pending = subprocess.Popen([c.a.ferry, "checkpoint", "t"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=c.env)
    c.procs.append(pending)
    time.sleep(1.5)
    os.kill(proxy, signal.SIGKILL)  # the node is lost in the middle of the drain
    _, ck_err = pending.communicate(timeout=TIMEOUT)
    if pending.returncode == 0 or "generation 2 not committed" not in ck_err or "generation 1 stays the newest" not in ck_err:
        return f"the checkpoint with a lost rank exited {pending.returncode}: {ck_err!r}"
    job.wait(timeout=TIMEOUT)
    jobdir = os.path.join(c.store, "jobs", "1")
    gens = sorted(g for g in os.listdir(jobdir) if g.startswith("gen-"))
    if gens != ["gen-000001"]:
        return f"generations after the abandoned checkpoint: {gens}"
    rc, rec, err = c.record("t")
    if rec is None or rec["outcome"] == "restart_failed" or "ferry: restart" in err:
        return f"the lost rank is reported as {rec} / {err!r}"
    return finish_and_compare(c, want, out, "restart from generation 1")


def case_double_restart(c):
    # Each restored proxy sets `moved` 400 ms after the restore (as a loaded node may schedule
    # it): a stale record in the image is then always seen first.
    c.env["FERRY_TEST_ANNOUNCE_DELAY_MS"] = "400"
    prog = [c.a.programs + "/ckpt_mix", "400", "10000"]
    ok, want = c.reference(4, prog)
    if ok != 0:
        return "the reference run failed"
    job, out, err = c.start(["mpirun", "--name", "t", "--oversubscribe", "-np", "4", "--"] + prog, "run1")
    if not c.wait_lines(job, out, 8):
        return "the job printed nothing\n" + open(err).read()
    ck = c.ferry("checkpoint", "t")
    if ck.returncode != 0:
        return f"the first checkpoint failed: {ck.stderr}"
    kill_tree(job)
    job.wait()
    outs = [out]
    for run in range(2, 5):
        job, out, err = c.start(["restart", "t"], f"run{run}")
        outs.append(out)
        deadline = time.time() + TIMEOUT
        while "mpirun pid" not in open(err).read():
            if job.poll() is not None or time.time() > deadline:
                return f"restart {run} did not start (exit {job.poll()}):\n{open(err).read()}"
            time.sleep(0.02)
        ck = c.ferry("checkpoint", "t")
        if ck.returncode != 0:
            return f"the checkpoint of run {run} failed: {ck.stderr}"
        kill_tree(job)
        job.wait()
    r = c.ferry("restart", "t")
    if r.returncode != 0:
        return f"the restart of generation 4 (taken in run 4, a restarted run) exited {r.returncode}\n{r.stderr}"
    got = r.stdout.splitlines()
    for path in outs:
        got += open(path).read().splitlines()
    if sorted(set(got)) != want:
        return f"output differs: missing {sorted(set(want) - set(got))[:5]}, unexpected {sorted(set(got) - set(want))[:5]}"
    rc, rec, _ = c.record("t")
    return expect_record(rec, outcome="exited", exit_status=0, restart_id=5)


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def rank_launch_child_of(pid, parent):
    """True when `pid` is a `ferry rank-launch` whose parent is `parent` (a rank's supervisor)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return ppid == parent and b"\0rank-launch\0" in f.read()
    except (OSError, ValueError):
        return False


def compare(want, paths, extra=""):
    got = extra.splitlines()
    for path in paths:
        got += open(path).read().splitlines()
    if sorted(set(got)) != want:
        return f"output differs: missing {sorted(set(want) - set(got))[:5]}, unexpected {sorted(set(got) - set(want))[:5]}"
    return None


def failed_checkpoint(c, job, timeout, phase_words, rank, lo=4.5, hi=12.0):
    """`ferry checkpoint --timeout T` must fail within [lo, hi] s naming the phase and rank."""
    t0 = time.time()
    ck = c.ferry("checkpoint", job, "--timeout", str(timeout))
    took = time.time() - t0
    err = ck.stderr
    if ck.returncode == 0:
        return f"the checkpoint with a hung rank {rank} succeeded: {ck.stdout} {err}"
    if not lo <= took <= hi:
        return f"the checkpoint with a hung rank {rank} failed after {took:.1f} s, want {lo}-{hi} s: {err!r}"
    for words in [phase_words, f"rank {rank} (node {c.node})", "not committed", "the job continues"]:
        if words not in err:
            return f"the failed checkpoint does not say {words!r}: {err!r}"
    print(f"  checkpoint failed after {took:.1f} s: {err.strip()}")
    return None


def generations(c):
    jobdir = os.path.join(c.store, "jobs", "1")
    return sorted(g for g in os.listdir(jobdir) if g.startswith("gen-"))


def case_hung_proxy(c):
    prog = [c.a.programs + "/ckpt_mix", "300", "10000"]
    ok, want = c.reference(4, prog)
    if ok != 0:
        return "the reference run failed"
    for name, end in (("t", "finish"), ("u", "kill")):
        job, out, err = c.start(["mpirun", "--name", name, "--oversubscribe", "-np", "4", "--"] + prog, name + "1")
        if not c.wait_lines(job, out, 8):
            return "the job printed nothing\n" + open(err).read()
        ck = c.ferry("checkpoint", name)
        if ck.returncode != 0:
            return f"the first checkpoint failed: {ck.stderr}"
        proxy = rank_process(job.pid, c.a.proxy, 2)
        if proxy is None:
            return "rank 2's proxy was not found"
        os.kill(proxy, signal.SIGSTOP)
        time.sleep(0.5)
        bad = failed_checkpoint(c, name, 5, "the collective agreement did not complete within 5 s", 2)
        if bad:
            return f"{name}: {bad}"
        jobdir = os.path.join(c.store, "jobs", "1" if name == "t" else "2")
        gens = sorted(g for g in os.listdir(jobdir) if g.startswith("gen-"))
        if gens != ["gen-000001"]:
            return f"{name}: generations after the given-up checkpoint: {gens} (want gen-000001 only, no partial)"
        if job.poll() is not None:
            return f"{name}: the job ended ({job.returncode}) after the given-up checkpoint\n" + open(err).read()
        os.kill(proxy, signal.SIGCONT)
        ck = c.ferry("checkpoint", name, "--timeout", "60")
        if ck.returncode != 0 or "generation 2 committed" not in ck.stdout:
            return f"{name}: the checkpoint after SIGCONT failed ({ck.returncode}): {ck.stdout} {ck.stderr}"
        if end == "finish":
            rc = job.wait(timeout=TIMEOUT)
            if rc != 0:
                return f"the job exited {rc} after the given-up checkpoint\n" + open(err).read()
            bad = compare(want, [out])
            if bad:
                return f"the job that continued after the given-up checkpoint: {bad}"
        else:
            if job.poll() is not None:
                return "the job ended before the kill; make it longer"
            kill_tree(job)
            job.wait()
            r = c.ferry("restart", name)
            if r.returncode != 0:
                return f"the restart from generation 2 exited {r.returncode}\n{r.stderr}"
            bad = compare(want, [out], r.stdout)
            if bad:
                return f"restart from the generation after SIGCONT: {bad}"
    return None


def case_hung_phases(c):
    prog = [c.a.programs + "/ckpt_mix", "300", "10000"]
    ok, want = c.reference(4, prog)
    if ok != 0:
        return "the reference run failed"
    c.env["FERRY_TEST_CHECKPOINT_HANG"] = "0:agreement,2:drain,2:dump"
    job, out, err = c.start(["mpirun", "--name", "t", "--oversubscribe", "-np", "4", "--"] + prog, "run1")
    if not c.wait_lines(job, out, 8):
        return "the job printed nothing\n" + open(err).read()
    steps = [(0, "no answer from the proxy of rank 0 (node %s) within 5 s" % c.node, 7.0, 12.0),
             (2, "the drain did not complete within 5 s", 4.5, 10.0),
             (2, "the freeze and dump did not complete within 5 s", 4.5, 10.0)]
    for rank, words, lo, hi in steps:
        proxy = rank_process(job.pid, c.a.proxy, rank)
        if proxy is None:
            return f"rank {rank}'s proxy was not found"
        bad = failed_checkpoint(c, "t", 5, words, rank, lo, hi)
        if bad:
            return bad
        if proc_state(proxy) != "T":
            return f"rank {rank}'s proxy did not stop itself (state {proc_state(proxy)})"
        if generations(c) != []:
            return f"generations after the given-up checkpoint: {generations(c)} (want none, no partial)"
        if job.poll() is not None:
            return f"the job ended ({job.returncode}) after the given-up checkpoint\n" + open(err).read()
        os.kill(proxy, signal.SIGCONT)
    # A rank supervisor that never answers (its proxy's freeze request is bounded too).
    proxy = rank_process(job.pid, c.a.proxy, 3)
    supervisor = next((p for p in descendants(proxy or 0) if rank_launch_child_of(p, proxy)), None)
    if supervisor is None:
        return "rank 3's rank supervisor was not found"
    os.kill(supervisor, signal.SIGSTOP)
    bad = failed_checkpoint(c, "t", 5, "the freeze and dump did not complete within 5 s", 3)
    os.kill(supervisor, signal.SIGCONT)
    if bad:
        return f"stopped rank supervisor: {bad}"
    if generations(c) != [] or job.poll() is not None:
        return f"after the stopped rank supervisor: generations {generations(c)}, job {job.poll()}"
    ck = c.ferry("checkpoint", "t", "--timeout", "60")
    if ck.returncode != 0 or "generation 1 committed" not in ck.stdout:
        return f"the checkpoint after the hung ones failed ({ck.returncode}): {ck.stdout} {ck.stderr}"
    if job.poll() is not None:
        return "the job ended before the kill; make it longer"
    kill_tree(job)
    job.wait()
    r = c.ferry("restart", "t")
    if r.returncode != 0:
        return f"the restart from generation 1 exited {r.returncode}\n{r.stderr}"
    return compare(want, [out], r.stdout)


def case_compute(c):
    prog = [c.a.programs + "/long_compute", "40", "10", "1", "8"]
    ok, want = c.reference(4, prog)
    if ok != 0:
        return "the reference run failed"
    job, out, err = c.start(["mpirun", "--name", "t", "--oversubscribe", "-np", "4", "--"] + prog, "run1")
    deadline = time.time() + TIMEOUT
    while "rank 1 computing" not in open(out).read():
        if job.poll() is not None or time.time() > deadline:
            return "rank 1 never started computing\n" + open(err).read()
        time.sleep(0.05)
    began = time.time()
    time.sleep(1.0)
    ck = c.ferry("checkpoint", "t", "--timeout", "5")
    took = time.time() - began
    if ck.returncode != 0:
        return f"the checkpoint of a rank computing outside MPI failed ({ck.returncode}): {ck.stderr}"
    print(f"  checkpoint returned {took:.1f} s into rank 1's 8 s computation: {ck.stderr.strip()}")
    kill_tree(job)
    job.wait()
    r = c.ferry("restart", "t")
    if r.returncode != 0:
        return f"the restart exited {r.returncode}\n{r.stderr}"
    # The restored rank 1 ends the computation it was frozen in: the image was taken inside it.
    if "rank 1 computed" not in r.stdout.splitlines() or "rank 1 computing" in r.stdout.splitlines():
        return f"the generation was not taken while rank 1 computed (restarted output: {r.stdout.splitlines()[:3]})"
    return compare(want, [out], r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", required=True)
    ap.add_argument("--proxy", required=True, help="ferry-mpi-proxy (to find a rank's proxy)")
    ap.add_argument("--programs", required=True, help="directory of the built test programs")
    ap.add_argument("--case", required=True, choices=["crash", "abort", "restore", "lost", "double_restart", "hung_proxy",
                                                      "hung_phases", "compute"])
    a = ap.parse_args()
    if not shutil.which(os.environ.get("MPIRUN", "mpirun")):
        print("SKIP: mpirun not found (install openmpi-bin)")
        return 77
    c = Case(a)
    t0 = time.time()
    try:
        bad = {"crash": case_crash, "abort": case_abort, "restore": case_restore, "lost": case_lost,
               "double_restart": case_double_restart, "hung_proxy": case_hung_proxy, "hung_phases": case_hung_phases,
               "compute": case_compute}[a.case](c)
    finally:
        c.cleanup()
    if bad:
        print(f"FAIL: {bad}")
        return 1
    print(f"PASS: {a.case} ({time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
