#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MPI jobs driven by the coordinator and the per-node agents (issue 5 section 4, docs/mpi.md
"Through the coordinator").

Two simulated hosts h1, h2 (network namespaces, tests/hosts/netns-hosts.sh), a ferry-agent in
each (node h1 / h2, --mpi-host 10.77.0.1 / .2) and a ferry-coordinator in the head namespace
(10.77.0.254); every `ferry` command runs in the head namespace with FERRY_COORDINATOR set, so
`ferry mpirun` submits the job to the coordinator, whose head agent (rank 0's node) runs
mpirun. The program is mpi/tests/programs/ckpt_mix.c.

  1. reference: ckpt_mix under plain mpirun (4 ranks, this host);
  2. `ferry mpirun --nodes h1,h2 -np 4` (2+2), checkpointed --checkpoints times at random moments
     (each must commit), then every process of the job killed with SIGKILL;
  3. `ferry restart JOB --nodes h1:1,h2:3` (1+3), killed again after a random time;
  4. `ferry restart JOB --nodes h1` (4+0) runs to the end: exit 0, record exited 0.
  Pass: ranks ran where asked (the hostname each proxy recorded in the run's directory), every rank printed PASS, and the
  lines of all runs (mpirun.out in the job directory) are exactly the reference's.
  5. crash.c with 3 ranks on h1,h2: rank 2 (on h2) dies of SIGSEGV: `ferry mpirun` exits 139 and
     its record is signaled 11, rank 2, node h2; abort.c: exited 3, reason MPI_Abort, rank 2.
  6. rank 2's proxy stopped (SIGSTOP from outside, then by itself inside a collective that every
     other proxy, rank 0's too, is in): each time `ferry checkpoint --timeout 5` fails in 5-9 s
     (the coordinator's step timeout is 30 s) naming rank 2 and node h2 and commits nothing; after SIGCONT a checkpoint commits and the job's output == the uninterrupted
     run's;
  7. a restart whose rank 3 image is corrupt: restart_failed (86) naming rank 3 and its node;
  8. node h2 lost (lost_node_case, --only lost): only its agent, in the middle of a checkpoint,
     and while a job runs; then the head's agent (h1, mpirun's parent) killed -9: the job ends
     with it and the record names node h1.
The namespaces and every process in them are removed at the end (by PID), also on failure.
Exit 0 pass, 1 fail, 77 skip (not root, no `ip netns`, no mpirun)."""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
from process_tree import descendants  # noqa: E402

HOSTS = os.path.join(HERE, "..", "hosts")
NETNS = os.path.abspath(os.path.join(HOSTS, "netns-hosts.sh"))
RSH = os.path.abspath(os.path.join(HOSTS, "rsh-agent.sh"))
TIMEOUT = 300


def skip_reason():
    if os.geteuid() != 0:
        return "needs root (ip netns)"
    if not shutil.which("ip") or subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        return "'ip netns' is not available"
    if not shutil.which(os.environ.get("MPIRUN", "mpirun")):
        return "mpirun not found (install openmpi-bin)"
    if not shutil.which("unshare"):
        return "unshare not found"
    return None


class Cluster:
    def __init__(self, a, prefix, root):
        self.a, self.prefix, self.root = a, prefix, root
        self.store = os.path.join(root, "store")
        self.procs = []
        secret = os.path.join(root, "cluster.secret")
        with open(secret, "w") as f:
            f.write(os.urandom(32).hex())
        os.chmod(secret, 0o600)
        users = os.path.join(root, "usersecrets")
        os.makedirs(users, 0o711)
        with open(os.path.join(users, "0"), "w") as f:
            f.write(os.urandom(32).hex())
        os.chmod(os.path.join(users, "0"), 0o600)
        self.coord_args = ["--state", os.path.join(root, "state"), "--store", self.store, "--cluster-secret", secret,
                           "--user-secrets", users, "--heartbeat-ms", "300", "--lost-after-ms", "3000",
                           "--step-timeout-s", "30", "--node-down-after-s", "8"]
        self.coord = None
        self.start_coordinator("10.77.0.254:0")
        self.secret = secret
        self.agents = {}
        for i in (1, 2):
            self.start_agent(f"h{i}")
        self.env = dict(os.environ, FERRY_COORDINATOR=self.address, FERRY_SECRET_FILE=os.path.join(users, "0"),
                        FERRY_HOME=self.store, FERRY_AUTH="hmac", OMPI_ALLOW_RUN_AS_ROOT="1",
                        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", FERRY_HOSTS_PREFIX=prefix)
        self.env.pop("LD_LIBRARY_PATH", None)
        self.mca = ["--mca", "plm_rsh_agent", RSH, "--mca", "oob_tcp_if_include", "10.77.0.0/24",
                    "--mca", "btl_tcp_if_include", "10.77.0.0/24"]
        end = time.time() + 20
        while time.time() < end:
            st = self.status()
            if isinstance(st, dict) and sorted(n["node"] for n in st["nodes"] if n["alive"]) == ["h1", "h2"]:
                return
            time.sleep(0.2)
        raise AssertionError(f"agents did not register: {st}")

    def start_coordinator(self, listen):
        n = sum(1 for p in os.listdir(self.root) if p.startswith("coord"))
        self.coord = self.spawn("head", "head", [self.a.coordinator, "--listen", listen] + self.coord_args,
                                "coord" if n == 0 else f"coord{n}", stdout=subprocess.PIPE)
        line = self.coord.stdout.readline()
        assert line.startswith("listening"), f"coordinator printed {line!r}"
        self.address = line.split()[-1]

    def start_agent(self, node):
        n = sum(1 for p in os.listdir(self.root) if p.startswith(f"agent-{node}"))
        self.agents[node] = self.spawn(
            node, node, [self.a.agent, "--coordinator", self.address, "--node", node, "--store", self.store,
                         "--cluster-secret", self.secret, "--ferry", self.a.ferry, "--mpi-host",
                         f"10.77.0.{node[1:]}"], f"agent-{node}" if n == 0 else f"agent-{node}.{n}")

    def kill_agent(self, node):
        """kill -9 of node's agent (and of the netns wrapper it runs under); not of the job's processes
        there, which descend from mpirun on the head node, not from this agent."""
        p = self.agents[node]
        for v in descendants(p.pid) + [p.pid]:
            try:
                os.kill(v, 9)
            except ProcessLookupError:
                pass
        p.wait(timeout=10)

    def agent_pid(self, node):
        """The ferry-agent process of `node` itself (under its netns wrapper, which execs it)."""
        p = self.agents[node]
        for pid in [p.pid] + descendants(p.pid):
            try:
                if os.path.basename(os.readlink(f"/proc/{pid}/exe")) == "ferry-agent":
                    return pid
            except OSError:
                continue
        return None

    def kill_node(self, node):
        """The loss of `node`: kill -9 of its agent and of every process of the job on it (mpirun's
        descendants in that host's network namespace: orted, the proxies, the ranks)."""
        ns = netns_of(self.agents[node].pid)
        pid = self.launcher_pid()
        victims = [v for v in (descendants(pid) if pid else []) if netns_of(v) == ns]
        self.kill_agent(node)
        for v in victims:
            try:
                os.kill(v, 9)
            except ProcessLookupError:
                pass
        return len(victims)

    def kill_coordinator(self):
        """kill -9 of the coordinator (and of the netns wrapper it runs under)."""
        for v in descendants(self.coord.pid) + [self.coord.pid]:
            try:
                os.kill(v, 9)
            except ProcessLookupError:
                pass
        self.coord.wait(timeout=10)
        self.coord.stdout.close()

    def wait_agents(self, timeout=20):
        end = time.time() + timeout
        st = None
        while time.time() < end:
            st = self.status()
            if isinstance(st, dict) and sorted(n["node"] for n in st["nodes"] if n["alive"]) == ["h1", "h2"]:
                return True
            time.sleep(0.2)
        return False

    def spawn(self, ns, host, cmd, log, stdout=None):
        err = open(os.path.join(self.root, log + ".err"), "w")
        p = subprocess.Popen([NETNS, "exec", self.prefix, ns, host, "--"] + cmd, stdout=stdout or subprocess.DEVNULL,
                             stderr=err, text=True)
        self.procs.append(p)
        return p

    def ferry_cmd(self, *args):
        return [NETNS, "exec", self.prefix, "head", "head", "--", self.a.ferry, *args]

    def ferry(self, *args, timeout=TIMEOUT):
        return subprocess.run(self.ferry_cmd(*args), env=self.env, capture_output=True, text=True, timeout=timeout)

    def start(self, args, name):
        err = open(os.path.join(self.root, name + ".err"), "w+")
        p = subprocess.Popen(self.ferry_cmd(*args), env=self.env, stdout=subprocess.PIPE, stderr=err, text=True)
        self.procs.append(p)
        return p, err.name

    def status(self, job=None):
        r = self.ferry("status", "--json", *([job] if job else []), timeout=60)
        try:
            return json.loads(r.stdout)
        except ValueError:
            return f"no status ({r.returncode}: {r.stderr.strip()})"

    def job_info(self, job):
        st = self.status(job)
        return st["jobs"][0] if isinstance(st, dict) and st.get("jobs") else {}

    def launcher_pid(self):
        """The mpirun the head agent runs (its child)."""
        for agent in self.agents.values():
            for pid in descendants(agent.pid):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        argv0 = f.read().split(b"\0")[0].decode()
                except OSError:
                    continue
                if os.path.basename(argv0) in ("mpirun", "orterun", "mpiexec"):
                    return pid
        return None

    def proxy_of(self, rank):
        """The ferry-mpi-proxy of MPI_COMM_WORLD rank `rank` (a descendant of mpirun)."""
        pid = self.launcher_pid()
        for p in descendants(pid) if pid else []:
            try:
                if os.path.basename(os.readlink(f"/proc/{p}/exe")) != "ferry-mpi-proxy":
                    continue
                with open(f"/proc/{p}/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
                return p
        return None

    def kill_job(self):
        """SIGKILL of mpirun and everything below it (the proxies, orted on h2, the ranks)."""
        pid = self.launcher_pid()
        if pid is None:
            return False
        victims = descendants(pid) + [pid]
        for v in victims:
            try:
                os.kill(v, 9)
            except ProcessLookupError:
                pass
        return True

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                for v in descendants(p.pid) + [p.pid]:
                    try:
                        os.kill(v, 9)
                    except ProcessLookupError:
                        pass
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass


def proc_state(pid):
    """The state letter of process `pid` (T: stopped), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def netns_of(pid):
    """The network namespace of process `pid` (which simulated host it runs on), None if it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def record_of(stdout):
    recs = [json.loads(l) for l in stdout.splitlines() if l.startswith("{")]
    return recs[-1] if recs else None


def lost_node_case(c, a, prog, want, root, log):
    """Node h2 of a 2+2 MPI job lost (docs/mpi.md "Failures", "Through the coordinator"):
    (c) only h2's agent killed -9: the job keeps running (its ranks on h2 do not depend on that
        agent), a checkpoint commits while the agent is away, the agent comes back;
    (b) h2 lost in the middle of a checkpoint (rank 2's proxy stopped in the drain, then h2's agent
        and the job's processes there killed -9): the checkpoint fails promptly naming node h2,
        no generation is committed, `ferry wait` names node h2, and `ferry restart --nodes h1`
        (4+0) continues from the previous generation with the uninterrupted output;
    (a) h2 lost while a job runs (one checkpoint taken before): `ferry wait` ends in bounded time
        naming node h2, and the restart 4+0 from that checkpoint ends with the uninterrupted output.
    Returns None or (why, text)."""
    t0 = time.time()

    def launch(name, env=None):
        if env:
            c.env.update(env)
        r = c.ferry("mpirun", "--name", name, "--nodes", "h1,h2", "--detach", "--oversubscribe", *c.mca,
                    *sum((["-x", k] for k in (env or {})), []), "-np", "4", "--", *prog)
        for k in env or {}:
            del c.env[k]
        if r.returncode != 0:
            return None, f"{name}: ferry mpirun --detach exited {r.returncode}: {r.stderr}"
        deadline = time.time() + 120
        while time.time() < deadline:
            info = c.job_info(name)
            out = os.path.join(c.store, "jobs", info.get("job", "?"), "mpirun.out")
            # Running, and its first lines out (the ranks' stdout is a pipe, block-buffered: a
            # checkpoint before the first flush is restarted with step 0 still to print).
            if info.get("restarts") and info["restarts"][-1]["phase"] == "resume" and c.proxy_of(3) and \
                    os.path.exists(out) and os.path.getsize(out) > 400:
                return info, None
            time.sleep(0.2)
        return None, f"{name}: the job did not start ({c.job_info(name)})"

    def gens(info):
        d = os.path.join(c.store, "jobs", info["job"])
        return sorted(g for g in os.listdir(d) if g.startswith("gen-"))

    def wait_record(rid, what, within, node="h2"):
        t = time.time()
        w = c.ferry("wait", str(rid), "--json", "--timeout", str(within + 30))
        took = time.time() - t
        rec = json.loads(w.stdout or "{}")
        if rec.get("outcome") in (None, "running") or rec.get("node") != node or \
                node not in (rec.get("reason") or "") or took > within:
            return None, f"{what}: ferry wait gave {w.returncode} {rec} after {took:.1f} s, want an end naming node " \
                         f"{node} (node and reason) within {within} s"
        return rec, None

    def restart_h1(name, info, what):
        d = os.path.join(c.store, "jobs", info["job"])
        since = os.path.getsize(os.path.join(d, "mpirun.out"))
        r = c.ferry("restart", name, "--nodes", "h1", "--json")
        rec = record_of(r.stdout)
        with open(os.path.join(d, "mpirun.out")) as f:
            f.seek(since)
            seg = f.read().splitlines()
        if r.returncode != 0 or not rec or rec["outcome"] != "exited" or rec["exit_status"] != 0:
            return f"{what}: restart --nodes h1 exited {r.returncode} with {rec}: {r.stderr}"
        if not seg or any(" step 0 " in l for l in seg):
            return f"{what}: the restart printed {len(seg)} lines, some of step 0 (not restored?)"
        got = open(os.path.join(d, "mpirun.out")).read().splitlines()
        if sorted(set(got)) != sorted(set(want)) or sum(1 for l in got if l.endswith(" PASS")) != 4:
            return f"{what}: output differs: missing {sorted(set(want) - set(got))[:5]}, " \
                   f"unexpected {sorted(set(got) - set(want))[:5]}"
        return None

    def launch_checkpointed(name, what):
        """A 2+2 job launched and checkpointed once: (info, restart id, None) or (None, None, bad)."""
        info, bad = launch(name)
        if bad:
            return None, None, bad
        ck = c.ferry("checkpoint", name)
        if ck.returncode != 0:
            return None, None, f"{what}: the checkpoint of {name} failed ({ck.returncode}): {ck.stderr}"
        return info, info["restarts"][-1]["restart_id"], None

    def agent_back_then_restart(node, name, info, what):
        """`node`'s agent started again, then the job restarted 4+0 on h1: None or why not."""
        c.start_agent(node)
        if not c.wait_agents():
            return f"{what}: {node}'s agent did not register again"
        return restart_h1(name, info, what)

    trigger = os.path.join(root, "hang-rank-2-in-drain")
    info, bad = launch("lost", {"FERRY_TEST_CHECKPOINT_HANG": "2:drain:" + trigger})
    if bad:
        return bad, ""
    rid = info["restarts"][-1]["restart_id"]
    ck = c.ferry("checkpoint", "lost")
    if ck.returncode != 0:
        return f"lost: the first checkpoint failed ({ck.returncode})", ck.stderr

    # (c) Only h2's agent dies: the job goes on (a checkpoint commits) until the node counts as
    # down (--node-down-after-s 8 without the agent): then it ends, naming node h2.
    mpirun_pid, proxy3 = c.launcher_pid(), c.proxy_of(3)
    c.kill_agent("h2")
    t_away = time.time()
    time.sleep(1.5)  # the coordinator saw the connection close
    st = c.status()
    alive = sorted(n["node"] for n in st["nodes"] if n["alive"]) if isinstance(st, dict) else st
    info = c.job_info("lost")
    if alive != ["h1"] or info.get("state") != "running" or c.launcher_pid() != mpirun_pid or \
            proc_state(proxy3) in (None, "Z"):
        return (f"agent lost: after h2's agent was killed the nodes alive are {alive}, the job is "
                f"{info.get('state')}, mpirun {c.launcher_pid()} (was {mpirun_pid}), rank 3's proxy "
                f"{proc_state(proxy3)}; want h1 only, job running, same mpirun and proxy"), ""
    ck = c.ferry("checkpoint", "lost")
    if ck.returncode != 0 or gens(info) != ["gen-000001", "gen-000002"]:
        return f"agent lost: the checkpoint with h2's agent away exited {ck.returncode}, generations {gens(info)}", \
            ck.stderr
    rec, bad = wait_record(rid, "agent lost", 20)
    if bad:
        return bad, ""
    down_after = time.time() - t_away
    if not 7.5 <= down_after <= 15 or "not back within 8 s" not in rec["reason"] or c.launcher_pid() is not None:
        return (f"agent lost: the job ended {down_after:.1f} s after h2's agent (want 8-15 s) with {rec} "
                f"(mpirun {c.launcher_pid()})"), ""
    why_c = rec["reason"][:160]
    c.start_agent("h2")
    if not c.wait_agents():
        return "agent lost: h2's agent did not register again", ""
    log.append(f"agent h2 lost: job ran on, checkpoint committed, ended after {down_after:.1f} s, "
               f"{time.time() - t0:.1f} s")
    # The restart 2+2 from generation 2 (FERRY_TEST_CHECKPOINT_HANG is in its environment again).
    r = c.ferry("restart", "lost", "--nodes", "h1,h2", "--detach")
    if r.returncode != 0:
        return f"agent lost: restart 2+2 exited {r.returncode}", r.stderr
    rid = int(r.stdout.split()[0])
    deadline = time.time() + 60
    while time.time() < deadline:
        info = c.job_info("lost")
        if info.get("restarts") and info["restarts"][-1]["phase"] == "resume" and c.proxy_of(2):
            break
        time.sleep(0.2)
    time.sleep(1.0)

    # (b) Node h2 lost in the middle of a checkpoint.
    open(trigger, "w").close()
    proxy2 = c.proxy_of(2)
    ckp = subprocess.Popen(c.ferry_cmd("checkpoint", "lost"), env=c.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    end = time.time() + 20
    while time.time() < end and proc_state(proxy2) != "T":
        time.sleep(0.05)
    if proc_state(proxy2) != "T":
        ckp.kill()
        return "lost mid-checkpoint: rank 2's proxy did not stop itself in the drain", ckp.communicate()[1]
    time.sleep(0.5)
    t1 = time.time()
    killed = c.kill_node("h2")
    try:
        out, err = ckp.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        ckp.kill()
        return "lost mid-checkpoint: ferry checkpoint did not end 60 s after node h2 was lost", ""
    took = time.time() - t1
    if ckp.returncode == 0 or "node h2" not in err or took > 15:
        return (f"lost mid-checkpoint: ferry checkpoint exited {ckp.returncode} {took:.1f} s after h2 was lost "
                f"({killed} processes there), want a failure naming node h2 within 15 s"), out + err
    if gens(info) != ["gen-000001", "gen-000002"]:
        return f"lost mid-checkpoint: generations {gens(info)}, want gen-000001 and gen-000002 only", err
    why_b = err.strip().splitlines()[-1][:220]
    rec, bad = wait_record(rid, "lost mid-checkpoint", 15)
    if bad:
        return bad, ""
    why_b_rec = rec["reason"][:160]
    c.start_agent("h2")
    if not c.wait_agents():
        return "lost mid-checkpoint: h2's agent did not register again", ""
    bad = restart_h1("lost", info, "lost mid-checkpoint")
    if bad:
        return bad, ""
    log.append(f"h2 lost mid-checkpoint: failed in {took:.1f} s, {time.time() - t0:.1f} s")

    # (a) Node h2 lost while a job runs.
    info, rid, bad = launch_checkpointed("lost-a", "node lost")
    if bad:
        return bad, ""
    time.sleep(0.5)
    t2 = time.time()
    c.kill_node("h2")
    rec, bad = wait_record(rid, "node lost", 20)
    if bad:
        return bad, ""
    took_a = time.time() - t2
    bad = agent_back_then_restart("h2", "lost-a", info, "node lost")
    if bad:
        return bad, ""
    log.append(f"h2 lost while running: ferry wait ended in {took_a:.1f} s, {time.time() - t0:.1f} s")

    # (d) The head's agent (h1: mpirun's parent) killed -9 while a job runs: mpirun ends with it
    # (nothing could checkpoint or report on the job any more), every rank with mpirun, and the
    # record names node h1 once the agent is not back within --node-down-after-s (8 s).
    info, rid, bad = launch_checkpointed("lost-d", "head agent lost")
    if bad:
        return bad, ""
    mpirun_pid = c.launcher_pid()
    job_pids = [mpirun_pid] + descendants(mpirun_pid)
    agent = c.agent_pid("h1")
    time.sleep(0.5)
    t3 = time.time()
    os.kill(agent, 9)  # the agent only: mpirun and the ranks are left to what ferry does
    end = time.time() + 30
    while time.time() < end and any(proc_state(p) not in (None, "Z") for p in job_pids):
        time.sleep(0.2)
    left = [p for p in job_pids if proc_state(p) not in (None, "Z")]
    if left:
        return (f"head agent lost: {len(left)} of the job's {len(job_pids)} processes (mpirun {mpirun_pid}) still "
                f"run 30 s after the head's agent was killed"), ""
    gone_in = time.time() - t3
    rec_d, bad = wait_record(rid, "head agent lost", 25, node="h1")
    if bad:
        return bad, ""
    took_d = time.time() - t3
    if not 7.5 <= took_d or rec_d["outcome"] != "signaled":
        return f"head agent lost: record {rec_d} {took_d:.1f} s after, want signaled after the 8 s node-down time", ""
    try:
        c.agents["h1"].wait(timeout=10)
    except subprocess.TimeoutExpired:
        return "head agent lost: h1's agent wrapper did not end after the agent was killed", ""
    bad = agent_back_then_restart("h1", "lost-d", info, "head agent lost")
    if bad:
        return bad, ""
    log.append(f"head agent lost: job gone in {gone_in:.1f} s, record in {took_d:.1f} s")
    print(f"head agent (h1) lost: mpirun and every rank gone {gone_in:.1f} s after, ferry wait ended {took_d:.1f} s "
          f"after ({rec_d['outcome']} rank {rec_d['rank']} node {rec_d['node']}: {rec_d['reason'][:120]!r}), "
          f"restart 4+0 == uninterrupted")
    print(f"node h2 lost: only its agent: the job ran on and a checkpoint committed, ended {down_after:.1f} s "
          f"after ({why_c!r}); in the middle of a "
          f"checkpoint: failed in {took:.1f} s, no generation, record {why_b_rec!r}, restart 4+0 == uninterrupted; "
          f"while the job ran: ferry wait ended {took_a:.1f} s after ({rec['outcome']} rank {rec['rank']} "
          f"node {rec['node']}), restart 4+0 == uninterrupted; {time.time() - t0:.1f} s\n  {why_b}")
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", required=True)
    ap.add_argument("--coordinator", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--programs", required=True, help="directory of the mpi/tests programs (ckpt_mix, crash, abort)")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--step-us", type=int, default=10000)
    ap.add_argument("--checkpoints", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--only", choices=["hung", "coord-restart", "lost"], help="run only this case (repeat runs of it)")
    a = ap.parse_args()
    why = skip_reason()
    if why:
        print(f"SKIP: {why}")
        return 77
    for k in ("ferry", "coordinator", "agent", "programs"):
        setattr(a, k, os.path.abspath(getattr(a, k)))
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    prefix = f"fmc{os.getpid()}{rng.randrange(1000):03d}"
    root = tempfile.mkdtemp(prefix="ferry-mpi-cluster-")
    log = [f"seed {seed}", f"dir {root}"]
    c = None

    def fail(why, *texts):
        print(f"FAIL: {why} ({', '.join(log)})")
        for t in texts:
            print(t)
        for name in sorted(n for n in os.listdir(root) if n.startswith("coord") and n.endswith(".err")) + \
                ["agent-h1.err", "agent-h2.err"]:
            p = os.path.join(root, name)
            if os.path.exists(p):
                print(f"--- {name}\n" + open(p).read()[-3000:])
        return 1

    try:
        up = subprocess.run([NETNS, "up", prefix, "2"], capture_output=True, text=True, timeout=60)
        if up.returncode != 0:
            return fail(f"cannot create the simulated hosts: {up.stderr.strip()}")
        try:
            c = Cluster(a, prefix, root)
        except AssertionError as e:
            return fail(f"the daemons did not start: {e!r}")
        prog = [os.path.join(a.programs, "ckpt_mix"), str(a.steps), str(a.step_us)]
        mpirun = shutil.which(os.environ.get("MPIRUN", "mpirun"))
        ref = subprocess.run([mpirun, "--oversubscribe", "-np", "4"] + prog, capture_output=True, text=True,
                             env=c.env, timeout=TIMEOUT)
        if ref.returncode != 0:
            return fail(f"the reference run exited with {ref.returncode}", ref.stdout, ref.stderr)
        want = sorted(ref.stdout.splitlines())
        t0 = time.time()

        def rank_hosts():
            """Where each rank's proxy ran in the newest run (its rank-R.host: the host's name)."""
            info = c.job_info("t")
            if not info.get("restarts"):
                return None
            d = os.path.join(c.store, "jobs", info["job"], "mpi-runs", str(info["restarts"][-1]["restart_id"]))
            out = []
            for r in range(4):
                try:
                    out.append(open(os.path.join(d, f"rank-{r}.host")).read().strip())
                except OSError:
                    out.append(None)
            return out

        def out_path():
            return os.path.join(c.store, "jobs", c.job_info("t")["job"], "mpirun.out")

        def continued(since, what):
            """A restarted run continues from its checkpoint: no rank starts again at step 0."""
            with open(out_path()) as f:
                f.seek(since)
                seg = f.read().splitlines()
            zero = [l for l in seg if " step 0 " in l]
            if not seg or zero:
                return f"{what}: the restarted run printed {len(seg)} lines, {len(zero)} of step 0 (not restored?)"
            return None

        def run_until_killed(args, name, checkpoints, want_nodes, what):
            job, err = c.start(args, name)
            deadline = time.time() + TIMEOUT
            while time.time() < deadline and job.poll() is None:
                restarts = c.job_info("t").get("restarts", [])
                if restarts and restarts[-1]["outcome"] == "running" and all(rank_hosts()):
                    break
                time.sleep(0.2)
            # The ranks print (a restored one once its restore is done), then run a little more.
            path = out_path()
            start = os.path.getsize(path) if os.path.exists(path) else 0
            while time.time() < deadline and job.poll() is None:
                if os.path.exists(path) and os.path.getsize(path) - start > 400:
                    break
                time.sleep(0.1)
            if job.poll() is not None:
                return f"{what}: the job ended early ({job.returncode})", open(err).read()
            time.sleep(rng.uniform(0.5, 1.5))
            for i in range(checkpoints):
                time.sleep(rng.uniform(0.2, 1.5))
                ck = c.ferry("checkpoint", "t")
                log.append(f"{what} checkpoint {i + 1}: {ck.returncode}")
                if ck.returncode != 0:
                    return f"{what}: checkpoint {i + 1} failed with {ck.returncode}", ck.stderr + open(err).read()
            if rank_hosts() != want_nodes:
                return f"{what}: ranks ran on {rank_hosts()}, want {want_nodes}", open(err).read()
            if job.poll() is not None:
                return f"{what}: the job ended ({job.returncode}) before the kill; lengthen --steps", open(err).read()
            if not c.kill_job():
                return f"{what}: mpirun of the job not found", open(err).read()
            try:
                job.wait(timeout=60)
            except subprocess.TimeoutExpired:
                return f"{what}: the ferry command did not end after the job was killed", open(err).read()
            rec = c.job_info("t").get("restarts", [{}])[-1]
            if rec.get("outcome") != "signaled" or rec.get("signal") != 9:
                return f"{what}: after kill -9 the record is {rec}, want signaled 9", open(err).read()
            return None, None

        if a.only is None:
            bad, text = run_until_killed(["mpirun", "--name", "t", "--nodes", "h1,h2", "--oversubscribe"] + c.mca +
                                         ["-np", "4", "--"] + prog, "run1", a.checkpoints, ["h1", "h1", "h2", "h2"], "2+2")
            if bad:
                return fail(bad, text)
            since = os.path.getsize(out_path())
            bad, text = run_until_killed(["restart", "t", "--nodes", "h1:1,h2:3"], "run2", 0, ["h1", "h2", "h2", "h2"],
                                         "1+3")
            bad = bad or continued(since, "1+3")
            if bad:
                return fail(bad, text)
            since = os.path.getsize(out_path())
            last = c.ferry("restart", "t", "--nodes", "h1", "--json")
            rec = record_of(last.stdout)
            if last.returncode != 0 or not rec or rec["outcome"] != "exited" or rec["exit_status"] != 0:
                return fail(f"the 4+0 restart exited {last.returncode} with record {rec}, want exited 0", last.stderr)
            bad = continued(since, "4+0")
            if bad:
                return fail(bad)
            if rank_hosts() != ["h1"] * 4:
                return fail(f"4+0: ranks ran on {rank_hosts()}, want h1 x4")
            jobdir = os.path.join(c.store, "jobs", rec["job"])
            got = open(os.path.join(jobdir, "mpirun.out")).read().splitlines()
            passes = sum(1 for l in got if l.endswith(" PASS"))
            if passes != 4:
                return fail(f"{passes} ranks printed PASS, want 4 (after the last restart)")
            if sorted(set(got)) != sorted(set(want)):
                return fail(f"output differs: missing {sorted(set(want) - set(got))[:5]}, "
                            f"unexpected {sorted(set(got) - set(want))[:5]}")
            print(f"2+2 -> 1+3 -> 4+0 through the coordinator: {len(want)} lines equal to the uninterrupted run "
                  f"({len(got)} printed), {time.time() - t0:.1f} s")

            # A rank crash and an MPI_Abort are the application's outcome, naming rank and node.
            for prog_name, want_rc, want_rec in (
                    ("crash", 139, {"outcome": "signaled", "signal": 11, "rank": 2, "node": "h2", "exit_status": None}),
                    ("abort", 3, {"outcome": "exited", "exit_status": 3, "rank": 2, "node": "h2", "reason": "MPI_Abort"})):
                r = c.ferry("mpirun", "--name", prog_name, "--nodes", "h1,h2", "--json", "--oversubscribe", *c.mca,
                            "-np", "3", "--", os.path.join(a.programs, prog_name))
                rec = record_of(r.stdout)
                if r.returncode != want_rc or not rec or any(rec.get(k) != v for k, v in want_rec.items()):
                    return fail(f"{prog_name}: ferry mpirun exited {r.returncode} with record {rec}, want {want_rc} "
                                f"and {want_rec}", r.stderr)
                w = c.ferry("wait", str(rec["restart_id"]), "--json")
                if w.returncode != want_rc or json.loads(w.stdout or "{}") != rec:
                    return fail(f"{prog_name}: ferry wait exited {w.returncode}: {w.stdout}, want {want_rc} {rec}", w.stderr)
            print("crash: signaled 11 rank 2 node h2 (139); MPI_Abort: exited 3 rank 2 node h2 (3)")

        # The coordinator killed (-9) while an MPI job runs and started again on the same state:
        # it takes the job back (the head agent re-registers with its mpirun still running);
        # status, a checkpoint, the record of the job killed afterwards (`ferry wait`) and a
        # restart from that checkpoint all work, and the output equals the uninterrupted run's.
        if a.only in (None, "coord-restart"):
            t2 = time.time()
            r = c.ferry("mpirun", "--name", "cr", "--nodes", "h1,h2", "--detach", "--oversubscribe", *c.mca,
                        "-np", "4", "--", *prog)
            if r.returncode != 0:
                return fail(f"coordinator restart: ferry mpirun --detach exited {r.returncode}", r.stderr)
            deadline = time.time() + 120
            info = {}
            while time.time() < deadline:
                info = c.job_info("cr")
                if info.get("restarts") and info["restarts"][-1]["phase"] == "resume" and c.proxy_of(3):
                    break
                time.sleep(0.2)
            cr_dir = os.path.join(c.store, "jobs", info.get("job", "?"))
            rid = info.get("restarts", [{}])[-1].get("restart_id")
            time.sleep(rng.uniform(0.5, 1.5))
            mpirun_pid = c.launcher_pid()
            c.kill_coordinator()
            time.sleep(1.0)
            c.start_coordinator(c.address)
            if not c.wait_agents():
                return fail("coordinator restart: the agents did not register again with the new coordinator")
            info = c.job_info("cr")
            if info.get("state") != "running" or c.launcher_pid() != mpirun_pid:
                return fail(f"coordinator restart: after it the job is {info.get('state')} (mpirun pid "
                            f"{c.launcher_pid()}, was {mpirun_pid}), want running, same mpirun")
            ck = c.ferry("checkpoint", "cr")
            if ck.returncode != 0:
                return fail(f"coordinator restart: the checkpoint after it exited {ck.returncode}", ck.stderr)
            if not c.kill_job():
                return fail("coordinator restart: mpirun of the job not found")
            w = c.ferry("wait", str(rid), "--json")
            rec = json.loads(w.stdout or "{}")
            if rec.get("outcome") != "signaled" or rec.get("signal") != 9:
                return fail(f"coordinator restart: ferry wait after kill -9 gave {w.returncode} {rec}, want signaled 9",
                            w.stderr)
            gens = sorted(g for g in os.listdir(cr_dir) if g.startswith("gen-"))
            if gens != ["gen-000001"]:
                return fail(f"coordinator restart: generations {gens}, want gen-000001")
            since = os.path.getsize(os.path.join(cr_dir, "mpirun.out"))
            r = c.ferry("restart", "cr", "--nodes", "h1,h2", "--json")
            rec = record_of(r.stdout)
            with open(os.path.join(cr_dir, "mpirun.out")) as f:
                f.seek(since)
                seg = f.read().splitlines()
            if not seg or any(" step 0 " in l for l in seg):
                return fail(f"coordinator restart: the restart printed {len(seg)} lines, some of step 0 (not restored "
                            f"from the checkpoint taken after the coordinator restart?)")
            if r.returncode != 0 or not rec or rec["outcome"] != "exited":
                return fail(f"coordinator restart: the restart exited {r.returncode} with {rec}", r.stderr)
            got_cr = open(os.path.join(cr_dir, "mpirun.out")).read().splitlines()
            if sorted(set(got_cr)) != sorted(set(want)) or sum(1 for l in got_cr if l.endswith(" PASS")) != 4:
                return fail(f"coordinator restart: output differs: missing {sorted(set(want) - set(got_cr))[:5]}, "
                            f"unexpected {sorted(set(got_cr) - set(want))[:5]}")
            print(f"coordinator kill -9 + start while the MPI job ran: taken back (same mpirun), checkpoint "
                  f"committed, kill -9 recorded signaled 9, restart == uninterrupted, {time.time() - t2:.1f} s")

        if a.only in (None, "hung"):
            # A hung proxy: the checkpoint is given up naming the rank and its node, no generation is
            # committed, the job continues; after SIGCONT a checkpoint commits and the job ends as
            # the uninterrupted run. Twice: rank 2's proxy stopped from outside at a random moment,
            # then stopped by itself inside a collective (FERRY_TEST_STOP_IN_COLLECTIVE: its barrier
            # done, every other proxy inside the real collective waiting for rank 2, rank 0's too).
            prog_h = [os.path.join(a.programs, "ckpt_mix"), "1000", str(a.step_us)]
            ref_h = subprocess.run([mpirun, "--oversubscribe", "-np", "4"] + prog_h, capture_output=True, text=True,
                                   env=c.env, timeout=TIMEOUT)
            trigger = os.path.join(root, "stop-rank-2")
            c.env["FERRY_TEST_STOP_IN_COLLECTIVE"] = "2:" + trigger
            job, err = c.start(["mpirun", "--name", "hung", "--nodes", "h1,h2", "--oversubscribe"] + c.mca +
                               ["-x", "FERRY_TEST_STOP_IN_COLLECTIVE", "-np", "4", "--"] + prog_h, "hung")
            del c.env["FERRY_TEST_STOP_IN_COLLECTIVE"]
            deadline = time.time() + TIMEOUT
            while time.time() < deadline and job.poll() is None:
                info = c.job_info("hung")
                if info.get("restarts") and info["restarts"][-1]["phase"] == "resume" and c.proxy_of(2):
                    break
                time.sleep(0.2)
            hung_dir = os.path.join(c.store, "jobs", c.job_info("hung").get("job", "?"))
            ck = c.ferry("checkpoint", "hung")
            if ck.returncode != 0:
                return fail(f"hung: the first checkpoint failed ({ck.returncode})", ck.stderr, open(err).read())
            # Every proxy has applied the first round's decision (rank 0 confirms only its own).
            time.sleep(1.0)
            proxy = c.proxy_of(2)
            tooks = []
            for how in ("SIGSTOP", "stopped inside a collective"):
                if how == "SIGSTOP":
                    os.kill(proxy, 19)
                else:
                    open(trigger, "w").close()
                    end = time.time() + 20
                    while time.time() < end and proc_state(proxy) != "T":
                        time.sleep(0.05)
                    if proc_state(proxy) != "T":
                        return fail("hung: rank 2's proxy did not stop itself in a collective", open(err).read())
                t1 = time.time()
                ck = c.ferry("checkpoint", "hung", "--timeout", "5")
                took = time.time() - t1
                gens = sorted(g for g in os.listdir(hung_dir) if g.startswith("gen-"))
                os.kill(proxy, 18)  # SIGCONT
                # --timeout 5 goes coordinator -> head agent -> the proxies: rank 0 gives the round up
                # after 5 s naming the rank that did not answer (the step timeout is 30 s).
                if ck.returncode == 0 or "rank 2" not in ck.stderr or "node h2" not in ck.stderr or not 4.5 <= took <= 9:
                    return fail(f"hung ({how}): `ferry checkpoint --timeout 5` with rank 2's proxy stopped exited "
                                f"{ck.returncode} after {took:.1f} s, want a failure naming rank 2 on node h2 in 5-9 s",
                                ck.stdout + ck.stderr)
                if gens != ["gen-000001"]:
                    return fail(f"hung ({how}): generations after the given-up checkpoint: {gens}, want gen-000001 only")
                if job.poll() is not None:
                    return fail(f"hung ({how}): the job ended ({job.returncode}) after the given-up checkpoint",
                                open(err).read())
                tooks.append(f"{how} {took:.1f} s")
                why = ck.stderr.strip().splitlines()[-1][:200] if ck.stderr.strip() else ""
            ck = c.ferry("checkpoint", "hung")
            if ck.returncode != 0:
                return fail(f"hung: the checkpoint after SIGCONT failed ({ck.returncode})", ck.stderr)
            out, _ = job.communicate(timeout=TIMEOUT)
            got_h = open(os.path.join(hung_dir, "mpirun.out")).read().splitlines()
            if job.returncode != 0 or sorted(got_h) != sorted(ref_h.stdout.splitlines()):
                return fail(f"hung: the job exited {job.returncode}; output equal: "
                            f"{sorted(got_h) == sorted(ref_h.stdout.splitlines())}", open(err).read())
            print(f"hung proxy: checkpoint --timeout 5 given up naming rank 2 on h2 ({', '.join(tooks)}), no "
                  f"generation; then a checkpoint commits and the job ends with the uninterrupted output\n  {why}")

        if a.only in (None, "lost"):
            bad = lost_node_case(c, a, prog, want, root, log)
            if bad:
                return fail(*bad)

        if a.only is None:
            # A corrupt image: the restart fails in the rank's restore, naming rank and node.
            img = os.path.join(jobdir, sorted(g for g in os.listdir(jobdir) if g.startswith("gen-"))[-1], "rank-3",
                               "rank-3.h5")
            with open(img, "r+b") as f:
                f.seek(os.path.getsize(img) // 2)
                f.write(os.urandom(4096))
            r = c.ferry("restart", "t", "--nodes", "h1:2,h2:2", "--json")
            rec = record_of(r.stdout)
            if r.returncode != 86 or not rec or rec["outcome"] != "restart_failed" or rec["rank"] != 3 or \
                    rec["node"] != "h2" or "failed in" not in r.stderr:
                return fail(f"corrupt image: restart exited {r.returncode} with {rec}, want 86 restart_failed rank 3 "
                            f"node h2", r.stderr)
            print(f"corrupt rank 3 image: restart_failed in {rec['phase']} on node h2 rank 3: {rec['reason'][:80]}")
        print(f"PASS ({', '.join(log)})")
        return 0
    finally:
        if c:
            c.close()
        subprocess.run([NETNS, "down", prefix, "2"], capture_output=True, timeout=60)


if __name__ == "__main__":
    sys.exit(main())
