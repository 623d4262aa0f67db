# SPDX-License-Identifier: Apache-2.0
"""A process and everything below it, found through /proc by parent pid (never by name): what
the MPI test drivers kill to simulate a lost job (mpirun, proxies, rank supervisors, ranks),
and what the scenario driver (run_scenario.py) watches and cleans up below itself."""
import os
import signal


def stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (the first is the state, field 3 of
    proc(5)), or None when the process does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    return data[data.rindex(")") + 2:].split()


def read_stat(pid):
    """(state, ppid) of pid, or None when it does not exist."""
    rest = stat_fields(pid)
    return None if rest is None else (rest[0], int(rest[1]))


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def children_map():
    """{ppid: [pid, ...]} of every process now (one pass over /proc)."""
    children = {}
    for pid in all_pids():
        st = read_stat(pid)
        if st:
            children.setdefault(st[1], []).append(pid)
    return children


def descendants(root, children=None):
    """Every process below `root` by parent links, children before their own children. Pass
    one children_map() to ask several questions of the same moment."""
    if children is None:
        children = children_map()
    out, todo = [], [root]
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


def job_ranks(exe, environ_matches):
    """{rank: pid} of the running ranks of one job: processes whose executable is `exe` and
    whose environment (a dict) satisfies `environ_matches` (e.g. FERRY_JOB and FERRY_HOME of the
    caller's own store: other tests run the same workload with the same job ids, and must not be
    touched). A checkpoint's copy-on-write snapshot is a child of its rank with the same program
    and environment while it is torn down: a rank is a candidate whose parent is not another."""
    exe = os.path.realpath(exe)
    candidates = {}
    for pid in all_pids():
        try:
            if os.readlink(f"/proc/{pid}/exe") != exe:
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                raw = f.read().split(b"\0")
        except OSError:
            continue
        env = dict(e.decode(errors="replace").split("=", 1) for e in raw if b"=" in e)
        if "FERRY_RANK" in env and environ_matches(env):
            candidates[pid] = int(env["FERRY_RANK"])
    out = {}
    for pid, rank in candidates.items():
        st = read_stat(pid)
        if st and st[1] not in candidates:
            out[rank] = pid
    return out
