# SPDX-License-Identifier: Apache-2.0
"""A process and everything below it, found through /proc by parent pid (never by name): what
the MPI test drivers kill to simulate a lost job (mpirun, proxies, rank supervisors, ranks)."""
import os
import signal


def descendants(pid):
    """Every process below `pid`, children before grandchildren."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def kill_tree(proc):
    """SIGKILL to the subprocess `proc` and every process below it."""
    for p in [proc.pid] + descendants(proc.pid):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
