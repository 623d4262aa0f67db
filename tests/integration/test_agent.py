#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Agent-level tests: a real ferry-agent against a tiny fake coordinator written here (the wire
# format of protocol/PROTOCOL.md, HMAC-SHA256 with a temp cluster secret). The fake sends
# LAUNCH_RANKS for 2 ranks, a whole round (prepare/quiesce/dump/commit/resume), checks the
# per-rank images validate (`ferry inspect`), kills the ranks, sends RESTORE_RANKS and checks
# each rank's final stdout/stderr equal an uninterrupted run's; a round aborted after quiesce
# (the ranks resume, partial files go, outputs still exact); frames that are unsigned, wrongly
# signed or malformed (connection dropped, the agent re-registers, nothing is launched).
# Run: test_agent.py --agent PATH --ferry PATH --workload PATH [unittest args]
import argparse
import hashlib
import hmac
import os
import queue
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

AGENT = FERRY = WORKLOAD = None
MAGIC, VERSION = 0x59525246, 2
T = dict(ack=0x0001, agent_register=0x0101, agent_register_reply=0x0102, heartbeat=0x0103,
         launch_ranks=0x0110, launch_result=0x0111, round_step=0x0120, round_reply=0x0121,
         restore_ranks=0x0130, restore_result=0x0131, rank_exited=0x0140)
NAMES = {v: k for k, v in T.items()}
PHASE = dict(prepare=1, quiesce=2, dump=3, commit=4, resume=5, stop=6, abort=7)
HB_MS = 200
# MiB, steps, ms per step: about 5 s per rank (FERRY_AGENT_TEST_MIB: bigger ranks, to measure)
WORKLOAD_ARGS = [os.environ.get("FERRY_AGENT_TEST_MIB", "4"), "120", "40"]


# ---- wire format ----------------------------------------------------------------------------
class W:
    def __init__(self):
        self.b = bytearray()

    def u8(self, v): self.b += struct.pack("<B", v); return self
    def u16(self, v): self.b += struct.pack("<H", v); return self
    def u32(self, v): self.b += struct.pack("<I", v); return self
    def u64(self, v): self.b += struct.pack("<Q", v); return self
    def i32(self, v): self.b += struct.pack("<i", v); return self
    def i64(self, v): self.b += struct.pack("<q", v); return self

    def str(self, s):
        s = s.encode() if isinstance(s, str) else s
        self.u32(len(s)); self.b += s; return self

    def list(self, xs, put):
        self.u32(len(xs))
        for x in xs:
            put(x)
        return self


class R:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.p)[0]
        self.p += struct.calcsize(fmt)
        return v

    def u8(self): return self.take("<B")
    def u16(self): return self.take("<H")
    def u32(self): return self.take("<I")
    def u64(self): return self.take("<Q")
    def i32(self): return self.take("<i")
    def i64(self): return self.take("<q")

    def str(self):
        n = self.u32(); s = self.b[self.p:self.p + n]; self.p += n
        return s.decode()

    def list(self, get): return [get() for _ in range(self.u32())]
    def opt(self, get): return get() if self.u8() else None


def signing_input(mtype, rid, scheme, uid, issued, nonce, payload):
    return (b"ferry-auth-v1" + struct.pack("<HHQBIqQ", VERSION, mtype, rid, scheme, uid, issued, nonce) + payload)


def frame(mtype, rid, payload, secret, scheme=2):
    issued, nonce = time.time_ns(), secrets.randbits(64)
    cred = hmac.new(secret, signing_input(mtype, rid, scheme, 0, issued, nonce, payload), hashlib.sha256).digest() \
        if secret is not None else b""
    body = W().u32(MAGIC).u16(VERSION).u16(mtype).u64(rid).u8(scheme if secret is not None else 0).u32(0) \
        .i64(issued).u64(nonce).str(cred).b + payload
    return struct.pack("<I", len(body)) + bytes(body)


DECODERS = {
    "agent_register": lambda r: dict(node=r.str(), hostname=r.str(), cpus=r.u32(), agent_pid=r.i32(), build=r.str()),
    "heartbeat": lambda r: dict(session_id=r.u64(), seq=r.u64(), live_ranks=r.u32()),
    "launch_result": lambda r: dict(job=r.str(), ranks=r.list(
        lambda: dict(rank=r.u32(), pid=r.i32(), code=r.u16(), message=r.str()))),
    "round_reply": lambda r: dict(job=r.str(), generation=r.u64(), round_id=r.u64(), phase=r.u8(), results=r.list(
        lambda: dict(rank=r.u32(), code=r.u16(), message=r.str(), bytes=r.u64(), duration_ns=r.u64()))),
    "restore_result": lambda r: dict(job=r.str(), restart_id=r.u64(), ranks=r.list(
        lambda: dict(rank=r.u32(), pid=r.i32(), code=r.u16(), phase=r.u8(), message=r.str()))),
    "rank_exited": lambda r: dict(job=r.str(), restart_id=r.u64(), rank=r.u32(), pid=r.i32(),
                                  exit_status=r.opt(r.i32), signal=r.opt(r.i32), time_ns=r.i64()),
    "ack": lambda r: dict(code=r.u16(), message=r.str()),
}


class FakeCoordinator:
    """Accepts agent connections; answers AGENT_REGISTER and HEARTBEAT (and acks RANK_EXITED)
    itself; every other frame goes to self.inbox as (type name, request id, fields)."""

    def __init__(self, secret):
        self.secret = secret
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.conn = None
        self.lock = threading.Lock()
        self.inbox = queue.Queue()
        self.registrations = []
        self.heartbeats = []  # arrival times
        self.bad_auth = []
        self.next_id = 1
        self.stopped = False
        self.ack_exits = True     # False: RANK_EXITED is received but not acknowledged
        self.forget_agent = False  # True: the next HEARTBEAT is answered not_registered (101)
        self.connections = 0
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while not self.stopped:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            with self.lock:
                old, self.conn = self.conn, c
                self.connections += 1
            if old:
                old.close()
            threading.Thread(target=self.read_loop, args=(c,), daemon=True).start()

    def recv_exact(self, c, n):
        b = b""
        while len(b) < n:
            chunk = c.recv(n - len(b))
            if not chunk:
                raise EOFError
            b += chunk
        return b

    def read_loop(self, c):
        try:
            while True:
                n = struct.unpack("<I", self.recv_exact(c, 4))[0]
                body = self.recv_exact(c, n)
                r = R(body)
                magic, ver, mtype, rid = r.u32(), r.u16(), r.u16(), r.u64()
                scheme, uid, issued, nonce = r.u8(), r.u32(), r.i64(), r.u64()
                n = r.u32()
                cred = r.b[r.p:r.p + n]
                r.p += n
                payload = bytes(body[r.p:])
                want = hmac.new(self.secret, signing_input(mtype, rid, scheme, uid, issued, nonce, payload),
                                hashlib.sha256).digest()
                if magic != MAGIC or ver != VERSION or scheme != 2 or not hmac.compare_digest(want, bytes(cred)):
                    self.bad_auth.append(NAMES.get(mtype))
                    continue
                name = NAMES[mtype]
                fields = DECODERS[name](R(payload)) if name in DECODERS else {}
                if name == "agent_register":
                    self.registrations.append(fields)
                    # Replies go unsigned (scheme none), as the real coordinator sends them.
                    self.send_on(c, "agent_register_reply", rid,
                                 W().u16(0).str("").u64(len(self.registrations)).u32(HB_MS).u32(10 * HB_MS).b,
                                 secret=None)
                elif name == "heartbeat":
                    self.heartbeats.append(time.monotonic())
                    code, self.forget_agent = (101 if self.forget_agent else 0), False
                    self.send_on(c, "ack", rid, W().u16(code).str("").b, secret=None)
                else:
                    if name == "rank_exited" and self.ack_exits:
                        self.send_on(c, "ack", rid, W().u16(0).str("").b, secret=None)
                    self.inbox.put((name, rid, fields))
        except (EOFError, OSError):
            return

    def send_on(self, c, name, rid, payload, secret="ours"):
        data = frame(T[name], rid, bytes(payload), self.secret if secret == "ours" else secret)
        with self.lock:
            try:
                c.sendall(data)
            except OSError:
                pass

    def request(self, name, payload, secret="ours"):
        rid = self.next_id
        self.next_id += 1
        self.send_on(self.conn, name, rid, payload, secret)
        return rid

    def send_raw(self, data):
        with self.lock:
            self.conn.sendall(data)

    def expect(self, name, timeout=60, rid=None):
        """The next message of this type (others of other types are kept)."""
        end = time.time() + timeout
        kept = []
        try:
            while True:
                left = end - time.time()
                if left <= 0:
                    raise AssertionError(f"no {name} within {timeout} s (got {kept})")
                try:
                    m = self.inbox.get(timeout=left)
                except queue.Empty:
                    continue
                if m[0] == name and (rid is None or m[1] == rid):
                    return m[2]
                kept.append(m)
        finally:
            for m in kept:
                self.inbox.put(m)

    def drop_connection(self):
        with self.lock:
            self.conn.shutdown(socket.SHUT_RDWR)

    def close(self):
        self.stopped = True
        self.srv.close()
        if self.conn:
            self.conn.close()


def _launch(job, ranks, ntasks, argv, cwd, env):
    w = W().str(job).u32(0).u32(0).u32(ntasks)
    w.list(ranks, w.u32).list(argv, w.str).str(cwd).list(env, w.str)
    return w.b


def round_step(job, gen, round_id, phase, ranks, gen_dir, deadline_ms=60000, round_timeout_ms=0):
    w = W().str(job).u64(gen).u64(round_id).u8(PHASE[phase])
    w.list(ranks, w.u32).str(gen_dir).u32(deadline_ms).u32(round_timeout_ms)
    return w.b


def restore_ranks(job, gen, restart_id, ntasks, gen_dir, ranks):
    w = W().str(job).u64(gen).u64(restart_id).u32(0).u32(0).u32(ntasks).str(gen_dir)
    w.list(ranks, w.u32)
    return w.b


def read(path):
    with open(path) as f:
        return f.read()


class AgentTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The uninterrupted reference: each rank run directly, start to finish.
        cls.reference = {}
        for rank in (0, 1):
            p = subprocess.run([WORKLOAD, *WORKLOAD_ARGS], capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, FERRY_RANK=str(rank), FERRY_NTASKS="2"))
            cls.reference[rank] = (p.stdout, p.stderr, p.returncode)
        assert cls.reference[0][0] != cls.reference[1][0]

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ferry-agent-")
        self.store = os.path.join(self.dir, "store")
        os.makedirs(os.path.join(self.store, "jobs"))
        self.secret = secrets.token_hex(32).encode()
        self.secret_file = os.path.join(self.dir, "cluster.secret")
        with open(self.secret_file, "wb") as f:
            f.write(self.secret + b"\n")
        os.chmod(self.secret_file, 0o600)
        self.coord = FakeCoordinator(self.secret)
        self.agent_err = open(os.path.join(self.dir, "agent.stderr"), "w+")
        self.agent = subprocess.Popen(
            [AGENT, "--coordinator", f"127.0.0.1:{self.coord.port}", "--node", "n1", "--store", self.store,
             "--cluster-secret", self.secret_file, "--ferry", FERRY, "--debug"],
            stdout=subprocess.DEVNULL, stderr=self.agent_err)
        self.pids = []
        self.wait_for(lambda: self.coord.registrations, "agent registration")
        self.assertEqual(self.coord.registrations[0]["node"], "n1")
        self.assertEqual(self.coord.registrations[0]["agent_pid"], self.agent.pid)

    def tearDown(self):
        for pid in self.pids + self.rank_pids_in_store():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        alive = self.agent.poll() is None or getattr(self, "agent_killed", False)
        if self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
            self.agent.wait(timeout=20)
        self.coord.close()
        self.agent_err.close()
        if os.environ.get("FERRY_KEEP_TEST_DIR"):
            print(f"kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.assertTrue(alive, "ferry-agent died during the test")

    def rank_pids_in_store(self):
        """Rank supervisors still alive (their pids from the agent's log lines)."""
        pids = []
        log = os.path.join(self.store, "logs", "agent-n1.log")
        if os.path.exists(log):
            for line in read(log).splitlines():
                if "started rank supervisor pid " in line:
                    pid = int(line.split("started rank supervisor pid ")[1].split(":")[0])
                    try:  # only if that pid is still one of ours (pids are reused)
                        with open(f"/proc/{pid}/cmdline", "rb") as f:
                            cmdline = f.read()
                        if b"rank-" in cmdline and self.store.encode() in cmdline:
                            pids.append(pid)
                    except OSError:
                        pass
        return pids

    def wait_for(self, cond, what, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            if cond():
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")

    def launch(self, job, ranks=(0, 1), args=None):
        os.makedirs(os.path.join(self.store, "jobs", job), exist_ok=True)
        rid = self.coord.request("launch_ranks", _launch(job, list(ranks), 2, [WORKLOAD, *(args or WORKLOAD_ARGS)],
                                                        self.dir, ["PATH=/usr/bin:/bin"]))
        res = self.coord.expect("launch_result", rid=rid)
        self.assertEqual(res["job"], job)
        self.assertEqual([r["rank"] for r in res["ranks"]], list(ranks))
        for r in res["ranks"]:
            self.assertEqual(r["code"], 0, r["message"])
            self.assertGreater(r["pid"], 0)
            self.pids.append(r["pid"])
        return {r["rank"]: r["pid"] for r in res["ranks"]}

    def step(self, job, gen, round_id, phase, gen_dir, ranks=(0, 1), expect_ok=True):
        rid = self.coord.request("round_step", round_step(job, gen, round_id, phase, list(ranks), gen_dir))
        rep = self.coord.expect("round_reply", rid=rid)
        self.assertEqual((rep["job"], rep["generation"], rep["round_id"], rep["phase"]), (job, gen, round_id, PHASE[phase]))
        self.assertEqual([r["rank"] for r in rep["results"]], list(ranks))
        if expect_ok:
            for r in rep["results"]:
                self.assertEqual(r["code"], 0, f"{phase} rank {r['rank']}: {r['message']}")
        return rep["results"]

    def exits(self, job, n, restart_id):
        got = {}
        while len(got) < n:
            m = self.coord.expect("rank_exited", timeout=90)
            self.assertEqual((m["job"], m["restart_id"]), (job, restart_id), m)
            got[m["rank"]] = m
        return got

    def outputs(self, job, rank):
        base = os.path.join(self.store, "jobs", job, f"rank-{rank}")
        return read(base + ".out"), read(base + ".err")

    def assert_outputs_exact(self, job, exits):
        for rank in (0, 1):
            out, err = self.outputs(job, rank)
            ref_out, ref_err, ref_status = self.reference[rank]
            self.assertEqual(out, ref_out, f"rank {rank} stdout differs from the uninterrupted run")
            self.assertEqual(err, ref_err, f"rank {rank} stderr differs from the uninterrupted run")
            self.assertEqual(exits[rank]["exit_status"], ref_status, exits[rank])
            self.assertIsNone(exits[rank]["signal"])

    def wait_steps(self, job, steps):
        """Until every rank has printed `steps` step lines (its memory is filled by then)."""
        def ready():
            for rank in (0, 1):
                try:
                    if self.outputs(job, rank)[0].count(" step ") < steps:
                        return False
                except OSError:
                    return False
            return True
        self.wait_for(ready, f"{steps} steps of job {job}", timeout=120)

    def test_round_kill_restore(self):
        job = "1"
        pids = self.launch(job)
        self.wait_steps(job, 10)
        partial = os.path.join(self.store, "jobs", job, "gen-000001.partial")
        self.step(job, 1, 11, "prepare", partial)
        hb_before = len(self.coord.heartbeats)
        self.step(job, 1, 11, "quiesce", partial)
        t0 = time.monotonic()
        dumped = self.step(job, 1, 11, "dump", partial)
        dump_s = time.monotonic() - t0
        for r in dumped:
            self.assertGreater(r["bytes"], int(WORKLOAD_ARGS[0]) << 20)  # at least the heap
        committed = os.path.join(self.store, "jobs", job, "gen-000001")
        os.rename(partial, committed)  # what the coordinator does after writing the job manifest
        self.step(job, 1, 11, "commit", committed)
        self.step(job, 1, 11, "resume", "")
        print(f"round: dump of 2 ranks {dump_s:.2f} s, {sum(r['bytes'] for r in dumped)} bytes; "
              f"{len(self.coord.heartbeats) - hb_before} heartbeats meanwhile", file=sys.stderr)
        # Heartbeats never stalled (the loop never blocks on a dump).
        gaps = [b - a for a, b in zip(self.coord.heartbeats, self.coord.heartbeats[1:])]
        self.assertLess(max(gaps), 5 * HB_MS / 1000, f"heartbeat gap {max(gaps):.2f} s")
        for rank in (0, 1):
            image = os.path.join(committed, f"rank-{rank}", f"rank-{rank}.h5")
            p = subprocess.run([FERRY, "inspect", image], capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertTrue(os.path.exists(os.path.join(committed, f"rank-{rank}", "MANIFEST.json")))
        # Let the ranks run past the checkpoint, then kill them.
        time.sleep(1.0)
        for pid in pids.values():
            os.kill(pid, signal.SIGKILL)
        killed = self.exits(job, 2, 0)
        for rank in (0, 1):
            self.assertEqual(killed[rank]["signal"], 9, killed[rank])
            self.assertEqual(killed[rank]["pid"], pids[rank])
        rid = self.coord.request("restore_ranks", restore_ranks(job, 1, 5, 2, committed, [0, 1]))
        res = self.coord.expect("restore_result", rid=rid)
        self.assertEqual(res["restart_id"], 5)
        for r in res["ranks"]:
            self.assertEqual(r["code"], 0, r["message"])
            self.pids.append(r["pid"])
        self.assert_outputs_exact(job, self.exits(job, 2, 5))
        self.assertEqual(self.coord.bad_auth, [])

    def test_round_with_stop_then_restore(self):
        """The migration path (`ferry checkpoint --stop`): commit, then STOP; restore elsewhere."""
        job = "4"
        self.launch(job)
        self.wait_steps(job, 10)
        partial = os.path.join(self.store, "jobs", job, "gen-000001.partial")
        for phase in ("prepare", "quiesce", "dump"):
            self.step(job, 1, 41, phase, partial)
        committed = os.path.join(self.store, "jobs", job, "gen-000001")
        os.rename(partial, committed)
        self.step(job, 1, 41, "commit", committed)
        self.step(job, 1, 41, "stop", "")
        stopped = self.exits(job, 2, 0)
        for rank in (0, 1):
            self.assertEqual(stopped[rank]["exit_status"], 75, stopped[rank])  # stopped after checkpoint
        rid = self.coord.request("restore_ranks", restore_ranks(job, 1, 7, 2, committed, [0, 1]))
        for r in self.coord.expect("restore_result", rid=rid)["ranks"]:
            self.assertEqual(r["code"], 0, r["message"])
        self.assert_outputs_exact(job, self.exits(job, 2, 7))

    def test_reregister_and_resend_unacknowledged_exits(self):
        self.coord.forget_agent = True  # the coordinator "restarted" and forgot the session
        self.wait_for(lambda: len(self.coord.registrations) >= 2, "re-registration after not_registered")
        self.assertEqual(self.coord.connections, 1, "not_registered must not need a new connection")
        job = "5"
        self.coord.ack_exits = False
        self.launch(job, ranks=(0,))
        first = self.coord.expect("rank_exited", timeout=90)
        self.assertEqual((first["job"], first["rank"], first["exit_status"]), (job, 0, 0))
        regs = len(self.coord.registrations)
        self.coord.ack_exits = True
        self.coord.drop_connection()
        self.wait_for(lambda: len(self.coord.registrations) > regs, "reconnection")
        again = self.coord.expect("rank_exited", timeout=30)
        self.assertEqual(again, first, "the unacknowledged RANK_EXITED must be sent again")
        with self.assertRaises(AssertionError):  # acknowledged now: not a third time
            self.coord.expect("rank_exited", timeout=1)

    def test_agent_killed_while_ranks_are_frozen(self):
        """kill -9 of the agent mid-round: its frozen ranks must not stay frozen forever."""
        job = "6"
        self.launch(job)
        self.wait_steps(job, 10)
        partial = os.path.join(self.store, "jobs", job, "gen-000001.partial")
        self.step(job, 1, 61, "prepare", partial)
        self.step(job, 1, 61, "quiesce", partial)
        frozen_at = [self.outputs(job, r)[0] for r in (0, 1)]
        time.sleep(0.5)
        self.assertEqual([self.outputs(job, r)[0] for r in (0, 1)], frozen_at, "ranks ran while frozen")
        self.agent_killed = True
        self.agent.kill()
        self.agent.wait(timeout=10)
        # The supervisors see the agent's liveness pipe close, resume, and the ranks finish.
        self.wait_for(lambda: all(f"rank {r} done" in self.outputs(job, r)[0] for r in (0, 1)),
                      "ranks to finish after the agent died", timeout=90)
        for rank in (0, 1):
            self.assertEqual(self.outputs(job, rank), self.reference[rank][:2])

    def test_many_rounds_leak_nothing(self):
        """Rounds in a row: the agent's and the rank supervisors' open fds and memory stay flat."""
        job = "8"
        pids = self.launch(job, args=["4", "3000", "20"])
        self.wait_steps(job, 5)
        supervisors = [int(open(f"/proc/{pid}/status").read().split("PPid:")[1].split()[0]) for pid in pids.values()]
        # pids are the programs (PID 2 of their namespace); their parent is ferry init, whose
        # parent is the rank supervisor.
        supervisors = [int(open(f"/proc/{pid}/status").read().split("PPid:")[1].split()[0]) for pid in supervisors]

        def usage(pid):
            rss = int(open(f"/proc/{pid}/status").read().split("VmRSS:")[1].split()[0])
            return len(os.listdir(f"/proc/{pid}/fd")), rss

        # Resident memory moves in steps of the capture's 4 MiB chunk buffers as malloc keeps or
        # returns them (seen: 25 -> 29 -> 33 MiB and back), so compare the peak of rounds 10-20
        # with the peak of the last 10: a leak grows the later peak. (The agent's only growth is its replay guard: nonces of the last
        # 5 minutes, ~60 B each.) Open fds must not change at all.
        rounds, samples = 60, {}
        for n in range(1, rounds + 1):
            partial = os.path.join(self.store, "jobs", job, f"gen-{n:06d}.partial")
            for phase in ("prepare", "quiesce", "dump"):
                self.step(job, n, 800 + n, phase, partial)
            # Alternate the two endings of a round: abort (files removed) and resume.
            self.step(job, n, 800 + n, "abort" if n % 2 else "resume", partial if n % 2 else "")
            shutil.rmtree(partial, ignore_errors=True)
            samples[n] = [usage(p) for p in [self.agent.pid, *supervisors]]
        early = [max(samples[n][i][1] for n in range(10, 21)) for i in range(3)]
        late = [max(samples[n][i][1] for n in range(rounds - 10, rounds + 1)) for i in range(3)]
        for i, who in enumerate(["agent", "rank 0 supervisor", "rank 1 supervisor"]):
            self.assertEqual(samples[rounds][i][0], samples[10][i][0], f"{who}: open fds changed")
            # Two chunk buffers of slack (the step seen between runs); a per-round leak of an
            # image buffer would grow it by 160 MiB over the 40 rounds between the windows.
            self.assertLess(late[i] - early[i], 9 * 1024, f"{who}: RSS peak grew {early[i]} -> {late[i]} KiB")
        print(f"{rounds} rounds: fds {[f for f, _ in samples[rounds]]}, RSS peak KiB rounds 10-20 {early} "
              f"-> last 10 {late} (agent, supervisors)", file=sys.stderr)

    def test_abort_after_quiesce(self):
        job = "2"
        self.launch(job)
        self.wait_steps(job, 10)
        partial = os.path.join(self.store, "jobs", job, "gen-000001.partial")
        self.step(job, 1, 21, "prepare", partial)
        self.assertTrue(os.path.isdir(os.path.join(partial, "rank-1")))
        self.step(job, 1, 21, "quiesce", partial)
        time.sleep(0.3)
        self.step(job, 1, 21, "abort", partial)
        self.assertFalse(os.path.exists(os.path.join(partial, "rank-0")))
        self.assertFalse(os.path.exists(os.path.join(partial, "rank-1")))
        self.assert_outputs_exact(job, self.exits(job, 2, 0))

    def test_unknown_rank_and_restore_failure_are_reported(self):
        res = self.step("9", 1, 31, "quiesce", "", ranks=(0,), expect_ok=False)
        self.assertEqual(res[0]["code"], 8, res)  # errc::not_found
        self.assertIn("does not run on node n1", res[0]["message"])
        os.makedirs(os.path.join(self.store, "jobs", "9"))
        rid = self.coord.request("restore_ranks", restore_ranks("9", 1, 6, 1, os.path.join(self.store, "jobs", "9",
                                                                                             "gen-000001"), [0]))
        r = self.coord.expect("restore_result", rid=rid)["ranks"][0]
        self.assertNotEqual(r["code"], 0)
        self.assertEqual(r["phase"], 2, r)  # validate
        self.assertIn("manifest", r["message"])

    def test_bad_frames_drop_the_connection_only(self):
        regs = len(self.coord.registrations)
        os.makedirs(os.path.join(self.store, "jobs", "3"))
        payload = _launch("3", [0], 1, [WORKLOAD, *WORKLOAD_ARGS], self.dir, [])
        self.coord.request("launch_ranks", payload, secret=b"not the cluster secret at all!!")
        self.wait_for(lambda: len(self.coord.registrations) > regs, "re-registration after a forged frame")
        regs = len(self.coord.registrations)
        self.coord.request("launch_ranks", payload, secret=None)  # unsigned
        self.wait_for(lambda: len(self.coord.registrations) > regs, "re-registration after an unsigned frame")
        regs = len(self.coord.registrations)
        self.coord.send_raw(struct.pack("<I", 40) + b"\xff" * 40)  # not a ferry frame
        self.wait_for(lambda: len(self.coord.registrations) > regs, "re-registration after garbage")
        time.sleep(0.5)
        self.assertFalse(os.path.exists(os.path.join(self.store, "jobs", "3", "rank-0.out")), "a refused frame ran")
        with self.assertRaises(AssertionError):
            self.coord.expect("launch_result", timeout=0.5)
        self.assertIn("refused", read(os.path.join(self.dir, "agent.stderr")))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--ferry", required=True)
    ap.add_argument("--workload", required=True)
    args, rest = ap.parse_known_args()
    AGENT, FERRY, WORKLOAD = (os.path.abspath(p) for p in (args.agent, args.ferry, args.workload))
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
