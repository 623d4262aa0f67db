#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checkpoint/restart of an unmodified Open MPI program under `ferry mpirun` (issue 5 section 4).

One run of the test program (mpi/tests/programs/ckpt_mix.c: a ring with ANY_SOURCE receives and
blocks in flight, nonblocking exchanges with receives pending across compute phases, Allreduce
on the world and Allreduce + Bcast on a Comm_split sub-communicator, ranks blocked in Recv or in
collectives at most moments):

  1. reference: the program under plain mpirun;
  2. `ferry mpirun`, checkpointed --checkpoints times at random moments once it has printed
     its first lines (the job continues after each), then either checkpointed with --stop
     (--end stop) or checkpointed and killed with SIGKILL (every process of the job's tree);
  3. `ferry mpirun --restart JOB` (with --restart-options: another placement) runs it to the end.

Pass: every checkpoint committed, the restart exits 0, every rank printed PASS, and the lines of
both runs (a line printed twice after a kill is the same line) are exactly the reference's; with
--stop, the two runs' lines together are the reference's as a multiset.
Exit 0 pass, 1 fail, 77 skip."""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from process_tree import kill_tree  # noqa: E402

TIMEOUT = 300


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", required=True)
    ap.add_argument("--program", required=True)
    ap.add_argument("--np", type=int, default=4)
    ap.add_argument("--steps", type=int, default=400)  # >= 4 s: outlives the checkpoints under load
    ap.add_argument("--step-us", type=int, default=10000)
    ap.add_argument("--checkpoints", type=int, default=2)
    ap.add_argument("--end", choices=["kill", "stop"], default="kill")
    ap.add_argument("--restart-options", default="")
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    mpirun = shutil.which(os.environ.get("MPIRUN", "mpirun"))
    if not mpirun:
        print("SKIP: mpirun not found (install openmpi-bin)")
        return 77
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    if os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    store = tempfile.mkdtemp(prefix="ferry-mpi-ckpt-")
    env["FERRY_HOME"] = store
    prog = [a.program, str(a.steps), str(a.step_us)]
    opts = ["--oversubscribe", "-np", str(a.np)]
    log = [f"seed {seed}"]

    def fail(why, *texts):
        print(f"FAIL: {why} ({', '.join(log)})")
        for t in texts:
            print(t)
        return 1

    try:
        t0 = time.monotonic()
        ref = subprocess.run([mpirun] + opts + prog, capture_output=True, text=True, env=env, timeout=TIMEOUT)
        ref_seconds = time.monotonic() - t0
        # The random pauses before the checkpoints add up to at most half the uninterrupted
        # run (the job under ferry is never faster), so no seed and no machine can see the job
        # end before its last checkpoint.
        longest = min(0.8, max(0.1, ref_seconds / 2 / (a.checkpoints + 1)))
        log.append(f"plain run {ref_seconds:.1f} s, pauses <= {longest:.2f} s")
        if ref.returncode != 0:
            return fail(f"the reference run exited with {ref.returncode}", ref.stdout, ref.stderr)
        want = sorted(ref.stdout.splitlines())

        out1 = open(os.path.join(store, "run1.out"), "w+")
        err1 = open(os.path.join(store, "run1.err"), "w+")
        job = subprocess.Popen([a.ferry, "mpirun", "--name", "t"] + opts + ["--"] + prog, stdout=out1, stderr=err1,
                               env=env, start_new_session=True)
        try:
            deadline = time.time() + TIMEOUT
            while time.time() < deadline and job.poll() is None:
                with open(out1.name) as f:
                    if sum(1 for _ in f) >= a.np * 3:
                        break
                time.sleep(0.05)
            ends = ["--stop"] if a.end == "stop" else [None]
            for i in range(a.checkpoints + 1):
                time.sleep(rng.uniform(0.05, longest))
                extra = ends[0] if i == a.checkpoints and ends[0] else None
                ck = subprocess.run([a.ferry, "checkpoint", "t"] + ([extra] if extra else []), capture_output=True,
                                    text=True, env=env, timeout=TIMEOUT)
                with open(out1.name) as f:
                    lines = sum(1 for _ in f)
                log.append(f"checkpoint {i + 1} after {lines} lines: {ck.returncode}")
                if ck.returncode != 0:
                    return fail(f"checkpoint {i + 1} failed with {ck.returncode}", ck.stderr,
                                open(err1.name).read())
            if a.end == "kill":
                kill_tree(job)
            rc1 = job.wait(timeout=TIMEOUT)
        finally:
            if job.poll() is None:
                kill_tree(job)
                job.wait()
        if a.end == "stop" and rc1 != 75:
            return fail(f"ferry mpirun exited with {rc1} after checkpoint --stop, want 75", open(err1.name).read())

        restart = subprocess.run([a.ferry, "mpirun", "--restart", "t"] + a.restart_options.split(),
                                 capture_output=True, text=True, env=env, timeout=TIMEOUT)
        if restart.returncode != 0:
            return fail(f"the restart exited with {restart.returncode}", restart.stdout, restart.stderr)
        first = open(out1.name).read().splitlines()
        got = first + restart.stdout.splitlines()
        passes = sum(1 for l in restart.stdout.splitlines() if l.endswith(" PASS"))
        if passes != a.np:
            return fail(f"{passes} of {a.np} ranks printed PASS after the restart", restart.stdout, restart.stderr)
        if a.end == "stop":
            if sorted(got) != want:
                missing = sorted(set(want) - set(got))[:5]
                extra = sorted(set(got) - set(want))[:5]
                return fail(f"output differs: missing {missing}, unexpected {extra}")
        elif sorted(set(got)) != sorted(set(want)):
            missing = sorted(set(want) - set(got))[:5]
            extra = sorted(set(got) - set(want))[:5]
            return fail(f"output differs: missing {missing}, unexpected {extra}")
        print(f"PASS: {len(want)} lines equal to the uninterrupted run; {len(first)} before the "
              f"{'stop' if a.end == 'stop' else 'kill'}, {len(restart.stdout.splitlines())} after the restart "
              f"({', '.join(log)})")
        return 0
    finally:
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
