#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs one MPI test program under plain mpirun and through ferry's proxies
(ferry-mpirun-plain), and judges the pair:

  same-output  both succeed, every rank printed PASS, and the sorted output lines are equal
  maps         through the proxies, the only MPI libraries mapped in the application are ferry's
               (libmpi.so.40, and libmpi_mpifh.so.40 for a Fortran program), and it holds no socket and runs one thread; under plain mpirun,
               Open MPI's library, sockets and threads are there (so the check can fail)
  abort        both end with the same status, 3 (MPI_Abort(MPI_COMM_WORLD, 3))
  crash        both end with the same status, 139 (a rank killed by SIGSEGV)
  counters     through the proxies only, with FERRY_MPI_REPORT_COUNTERS=1: every rank reports
               the traffic totals given by --expect, no live communicator or request is left,
               and the job's sent and received message counts balance
  unsupported  plain succeeds; through the proxies the job fails with "ferry: MPI_X is not
               supported" on stderr

Exit 0 pass, 1 fail, 77 skip (no mpirun)."""
import argparse
import os
import shutil
import signal
import subprocess
import sys

TIMEOUT = 240


def run(cmd, env):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return 124, out, err + f"\n(timed out after {TIMEOUT} s)"
    return proc.returncode, out, err


def fail(why, runs):
    print(f"FAIL: {why}")
    for name, (rc, out, err) in runs.items():
        print(f"--- {name}: status {rc}\n--- stdout:\n{out}--- stderr:\n{err}")
    return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--launcher", required=True, help="ferry-mpirun-plain")
    ap.add_argument("--upper-dir", required=True)
    ap.add_argument("--np", type=int, default=2)
    ap.add_argument("--check", required=True, choices=["same-output", "maps", "abort", "crash", "counters", "unsupported"])
    ap.add_argument("--expect", default="", help="counters: e.g. 'sent 25 received 25 collectives 1'")
    ap.add_argument("program", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    program = [p for p in a.program if p != "--"]
    mpirun = shutil.which(os.environ.get("MPIRUN", "mpirun"))
    if not mpirun:
        print("SKIP: mpirun not found (install openmpi-bin)")
        return 77
    env = dict(os.environ)
    if os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    env.pop("LD_LIBRARY_PATH", None)
    opts = ["--oversubscribe", "-np", str(a.np)]
    if a.check == "counters":
        env["FERRY_MPI_REPORT_COUNTERS"] = "1"
        ferry = run([a.launcher] + opts + ["-x", "FERRY_MPI_REPORT_COUNTERS", "--"] + program, env)
        runs = {"through ferry-mpi-proxy": ferry}
        if ferry[0] != 0:
            return fail(f"the job exited with {ferry[0]}", runs)
        lines = [l.split(" counters ", 1)[1] for l in ferry[2].splitlines() if " counters " in l]
        if len(lines) != a.np:
            return fail(f"{len(lines)} of {a.np} ranks reported counters", runs)
        sent = received = 0
        for line in lines:
            words = line.split()
            sent += int(words[words.index("sent") + 1])
            received += int(words[words.index("received") + 1])
            if not line.startswith(a.expect) or not line.endswith("live comms 0 requests 0"):
                return fail(f"counters '{line}', want '{a.expect} ... live comms 0 requests 0'", runs)
        if sent != received:
            return fail(f"the job sent {sent} messages and received {received}", runs)
        print(f"PASS: every rank: {a.expect}; job total {sent} sent = {received} received")
        return 0
    plain = run([mpirun] + opts + program, env)
    ferry = run([a.launcher] + opts + ["--"] + program, env)
    runs = {"plain mpirun": plain, "through ferry-mpi-proxy": ferry}

    if a.check == "same-output":
        for name, (rc, out, _) in runs.items():
            if rc != 0:
                return fail(f"{name} exited with {rc}", runs)
            passes = sum(1 for line in out.splitlines() if line.endswith(" PASS"))
            if passes != a.np:
                return fail(f"{name}: {passes} of {a.np} ranks printed PASS", runs)
        if sorted(plain[1].splitlines()) != sorted(ferry[1].splitlines()):
            return fail("outputs differ", runs)
        print(f"PASS: {len(ferry[1].splitlines())} output lines equal, {a.np} ranks")
        return 0

    if a.check == "maps":
        upper = os.path.realpath(a.upper_dir)
        if plain[0] != 0 or ferry[0] != 0:
            return fail("a run failed", runs)
        real = [l for l in plain[1].splitlines() if " maps " in l]
        if not any("libmpi.so.40" in l and not l.split(" maps ")[1].startswith(upper) for l in real):
            return fail("the check cannot fail: plain mpirun shows no real libmpi", runs)
        mapped = [l.split(" maps ", 1)[1] for l in ferry[1].splitlines() if " maps " in l]
        foreign = [p for p in mapped if not os.path.realpath(p).startswith(upper + "/")]
        if foreign:
            return fail(f"the application maps MPI files that are not ferry's: {sorted(set(foreign))}", runs)
        def counts(out, word):
            return [int(l.split(f" {word} ")[1].split()[0]) for l in out.splitlines() if f" {word} " in l]
        if counts(ferry[1], "sockets") != [0] * a.np or counts(ferry[1], "threads") != [1] * a.np:
            return fail("the application holds sockets or extra threads through the proxies", runs)
        if not all(n > 0 for n in counts(plain[1], "sockets")) or not all(n > 1 for n in counts(plain[1], "threads")):
            return fail("the check cannot fail: plain ranks show no sockets/threads", runs)
        ours = [p for p in mapped if p.endswith("libmpi.so.40")]
        if len(ours) < a.np:
            return fail("ferry's libmpi.so.40 is not mapped in every rank", runs)
        dynamic = subprocess.run(["readelf", "-dW", program[0]], capture_output=True, text=True).stdout
        if "libmpi_mpifh.so.40" in dynamic:
            # Fortran: ferry's libmpi_mpifh.so.40 serves the calls, and the sentinels it compares
            # against (MPI_IN_PLACE...) are the executable's own common blocks.
            if sum(1 for p in mapped if p.endswith("libmpi_mpifh.so.40")) < a.np:
                return fail("ferry's libmpi_mpifh.so.40 is not mapped in every rank", runs)
            syms = subprocess.run(["nm", "-D", program[0]], capture_output=True, text=True).stdout
            if not any(l.split()[-2:] == ["B", "mpi_fortran_in_place_"] for l in syms.splitlines()):
                return fail("the Fortran test program does not define the mpi_fortran_in_place_ common block", runs)
        else:
            # The program must reach predefined handles through copy relocations (default PIE), the
            # case where the handle is the address of the executable's copy of ferry's object.
            relocs = subprocess.run(["readelf", "-rW", program[0]], capture_output=True, text=True).stdout
            if "R_X86_64_COPY" not in relocs or "ompi_mpi_comm_world" not in relocs:
                return fail("the test program has no copy relocation of ompi_mpi_comm_world", runs)
        print(f"PASS: only {sorted(set(ours))} mapped, no socket, one thread; plain mpirun maps "
              f"{len(set(real))} MPI files, sockets {counts(plain[1], 'sockets')}, threads {counts(plain[1], 'threads')}")
        return 0

    if a.check in ("abort", "crash"):
        want = 3 if a.check == "abort" else 128 + signal.SIGSEGV
        if plain[0] != want or ferry[0] != want:
            return fail(f"statuses {plain[0]} (plain) and {ferry[0]} (ferry), want {want}", runs)
        print(f"PASS: both jobs ended with status {want}")
        return 0

    # unsupported
    if plain[0] != 0:
        return fail("the program fails under plain mpirun", runs)
    if ferry[0] == 0 or "is not supported" not in ferry[2]:
        return fail("the unsupported call did not end the job with a message", runs)
    line = next(l for l in ferry[2].splitlines() if "is not supported" in l)
    print(f"PASS: status {ferry[0]}, '{line.strip()}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
