#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""mpi.fortran.bindings.*: runs a Fortran MPI program twice under plain mpirun, first with
Open MPI's own Fortran library, then with ferry's libmpi_mpifh.so.40 on top of Open MPI's C
library (reference_shim.c supplies the handle conversions), and requires: both succeed, every
rank printed PASS, the sorted outputs are equal, and every rank of the second run went through
ferry's bindings (the shim reports its conversions). This checks the Fortran layer against Open
MPI's semantics for every call the program makes, independently of the upper half.

usage: run_bindings_test.py --fortran-lib LIBMPI_MPIFH --shim SHIM.so --np N -- PROGRAM
Exit 0 pass, 1 fail, 77 skip."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

TIMEOUT = 240


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fortran-lib", required=True)
    ap.add_argument("--shim", required=True)
    ap.add_argument("--np", type=int, default=2)
    ap.add_argument("--libdir", default="/usr/lib/x86_64-linux-gnu")
    ap.add_argument("program", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    program = [p for p in a.program if p != "--"]
    mpirun = shutil.which("mpirun")
    if not mpirun:
        print("SKIP: mpirun not found (install openmpi-bin)")
        return 77
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    env.pop("LD_PRELOAD", None)
    if os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    opts = ["--oversubscribe", "-np", str(a.np)]
    with tempfile.TemporaryDirectory(prefix="ferry-fbind-") as libs:
        # ferry's Fortran library, Open MPI's C library (found before the RUNPATH to ferry's).
        os.symlink(os.path.realpath(a.fortran_lib), os.path.join(libs, "libmpi_mpifh.so.40"))
        os.symlink(os.path.join(a.libdir, "libmpi.so.40"), os.path.join(libs, "libmpi.so.40"))
        runs = {}
        for name, extra in (("Open MPI's Fortran", []),
                            ("ferry's Fortran over Open MPI's C",
                             ["-x", f"LD_LIBRARY_PATH={libs}", "-x", f"LD_PRELOAD={os.path.realpath(a.shim)}"])):
            p = subprocess.run([mpirun] + opts + extra + program, capture_output=True, text=True, env=env,
                               timeout=TIMEOUT)
            runs[name] = p

        def fail(why):
            print(f"FAIL: {why}")
            for name, p in runs.items():
                print(f"--- {name}: status {p.returncode}\n--- stdout:\n{p.stdout}--- stderr:\n{p.stderr}")
            return 1

        for name, p in runs.items():
            if p.returncode != 0:
                return fail(f"{name} exited with {p.returncode}")
            passes = sum(1 for l in p.stdout.splitlines() if l.endswith(" PASS"))
            if passes != a.np:
                return fail(f"{name}: {passes} of {a.np} ranks printed PASS")
        plain, ours = runs.values()
        if sorted(plain.stdout.splitlines()) != sorted(ours.stdout.splitlines()):
            return fail("outputs differ")
        served = [l for l in ours.stderr.splitlines() if l.startswith("ferry-reference-shim:")]
        if len(served) != a.np:
            return fail(f"{len(served)} of {a.np} ranks went through ferry's bindings")
        print(f"PASS: {len(plain.stdout.splitlines())} output lines equal; {served[0]}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
