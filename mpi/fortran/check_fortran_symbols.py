#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks ferry's Fortran libraries against Open MPI's (test mpi.fortran.symbols):

  * every symbol Open MPI's libmpi_mpifh.so.40 / libmpi_usempi_ignore_tkr.so.40 exports is
    exported by ferry's library of the same name (a stub or an implementation);
  * names Open MPI aliases to one function (mpi_send_, MPI_SEND, pmpi_send__...) are one function
    in ferry's too: an implemented call is never half-implemented, one spelling left on a stub;
  * the 9 mpi_fortran_*_ sentinels are exported (the bindings compare against them);
  * ferry's libraries need no Open MPI library (only ferry's libmpi.so.40 and the C/C++ runtime).

usage: check_fortran_symbols.py FERRY_UPPER_DIR [--libdir DIR]
Exit 0 pass, 1 fail, 77 skip."""
import argparse
import os
import subprocess
import sys

LIBS = ["libmpi_mpifh.so.40", "libmpi_usempi_ignore_tkr.so.40"]
ALLOWED_NEEDED = {"libmpi.so.40", "libstdc++.so.6", "libgcc_s.so.1", "libc.so.6", "libm.so.6"}
SENTINELS = ["bottom", "in_place", "status_ignore", "statuses_ignore", "errcodes_ignore", "argv_null",
             "argvs_null", "unweighted", "weights_empty"]


def exported(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True, capture_output=True, text=True).stdout
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            table[parts[2]] = (parts[0], parts[1])
    return table


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("upper_dir")
    ap.add_argument("--libdir", default="/usr/lib/x86_64-linux-gnu")
    a = ap.parse_args()
    problems = []
    summary = []
    for name in LIBS:
        real_path = os.path.join(a.libdir, name)
        if not os.path.exists(real_path):
            print(f"SKIP: {real_path} not found (install libopenmpi3)")
            return 77
        ours_path = os.path.join(a.upper_dir, name)
        if not os.path.exists(ours_path):
            problems.append(f"{ours_path} is missing")
            continue
        real, ours = exported(real_path), exported(ours_path)
        missing = sorted(set(real) - set(ours))
        if missing:
            problems.append(f"{name}: {len(missing)} symbols of Open MPI's are missing, e.g. {missing[:5]}")
        groups = {}
        for sym, (addr, kind) in real.items():
            if kind in "TW":
                groups.setdefault(addr, []).append(sym)
        implemented = 0
        for syms in groups.values():
            addrs = {ours[s][0] for s in syms if s in ours}
            if len(addrs) > 1:
                problems.append(f"{name}: {sorted(syms)[:4]}... are aliases in Open MPI but not in ferry's library")
            if any(ours.get(s, ("", ""))[1] == "T" for s in syms):
                implemented += 1
        for s in SENTINELS:
            if f"mpi_fortran_{s}_" not in ours:
                problems.append(f"{name}: sentinel mpi_fortran_{s}_ is not exported")
        dyn = subprocess.run(["readelf", "-dW", ours_path], check=True, capture_output=True, text=True).stdout
        needed = {l.split("[")[1].rstrip("]") for l in dyn.splitlines() if "(NEEDED)" in l}
        if needed - ALLOWED_NEEDED:
            problems.append(f"{name} needs {sorted(needed - ALLOWED_NEEDED)}")
        summary.append(f"{name}: {len(real)} symbols of Open MPI's present, {implemented} of {len(groups)} "
                       f"entry points implemented, the rest end the job as not supported")
    if problems:
        print("FAIL:\n  " + "\n  ".join(problems))
        return 1
    print("PASS: " + "; ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
