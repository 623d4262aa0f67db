#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# End-to-end test of the cluster daemons: a real ferry-coordinator and two real ferry-agents
# (nodes n1, n2) on localhost, a temporary store, state dir and secrets. A 4-rank job over
# both agents is checkpointed, its ranks killed, and restarted entirely on n2; `ferry wait`
# reports the outcome and every rank's output equals an uninterrupted run's. Then: exit
# status 3, a signal, a restart whose image was deleted, unauthenticated and other-user
# requests, kill -9 of the coordinator after a commit. Failure paths: a node (its agent and
# every process below it) killed during the dump, the coordinator killed during the dump, a
# full store (small tmpfs) during a checkpoint, a corrupted job manifest at restart.
# Run: test_cluster.py --ferry PATH --coordinator PATH --agent PATH --workload PATH
import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from process_tree import descendants, job_ranks  # noqa: E402

FERRY = COORD = AGENT = WORKLOAD = None
TIMEOUT = 90


class Cluster:
    """Coordinator + agents n1, n2 in a temp dir; every process is killed by pid at the end."""

    def __init__(self, root, store=None):
        self.root = root
        self.store = store or os.path.join(root, "store")
        self.state = os.path.join(root, "state")
        self.secrets = os.path.join(root, "usersecrets")
        os.makedirs(self.secrets, 0o711)
        self.cluster_secret = os.path.join(root, "cluster.secret")
        with open(self.cluster_secret, "w") as f:
            f.write(os.urandom(32).hex())
        os.chmod(self.cluster_secret, 0o600)
        self.procs = {}
        self.logs = []
        self.port = None
        self.start_coordinator()
        for n in ("n1", "n2"):
            self.start_agent(n)
        self.wait_nodes(["n1", "n2"])

    def log(self, name):
        f = open(os.path.join(self.root, name), "a")
        self.logs.append(f)
        return f

    def start_coordinator(self):
        port = self.port or 0
        p = subprocess.Popen([COORD, "--listen", "127.0.0.1:%d" % port, "--state", self.state, "--store", self.store,
                              "--cluster-secret", self.cluster_secret, "--user-secrets", self.secrets,
                              "--heartbeat-ms", "300", "--lost-after-ms", "2000", "--step-timeout-s", "10",
                              "--dump-timeout-s", "60"],
                             stdout=subprocess.PIPE, stderr=self.log("coord.err"), text=True)
        line = p.stdout.readline()
        assert line.startswith("listening"), line
        self.port = int(line.split(":")[-1])
        self.procs["coordinator"] = p

    def start_agent(self, node):
        self.procs[node] = subprocess.Popen(
            [AGENT, "--coordinator", "127.0.0.1:%d" % self.port, "--node", node, "--store", self.store,
             "--cluster-secret", self.cluster_secret, "--ferry", FERRY],
            stdout=subprocess.DEVNULL, stderr=self.log("agent-%s.err" % node))

    def env(self, uid=0):
        path = os.path.join(self.secrets, str(uid))
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(os.urandom(32).hex())
            os.chmod(path, 0o600)
            os.chown(path, uid, -1)
        # FERRY_AUTH=hmac: these tests exercise the secret-file scheme even where munged runs.
        return dict(os.environ, FERRY_COORDINATOR="127.0.0.1:%d" % self.port, FERRY_SECRET_FILE=path,
                    FERRY_HOME=self.store, FERRY_AUTH="hmac")

    def ferry(self, *args, uid=0, timeout=TIMEOUT):
        kw = {}
        if uid:
            kw["user"] = uid
        return subprocess.run([FERRY, *args], env=self.env(uid), capture_output=True, text=True, timeout=timeout, **kw)

    def status(self, job=None):
        r = self.ferry("status", "--json", *([job] if job else []))
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def wait_nodes(self, nodes, alive=True, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            st = self.status()
            seen = {n["node"]: n["alive"] for n in st["nodes"]}
            if all(seen.get(n) == alive for n in nodes):
                return
            time.sleep(0.2)
        raise AssertionError("nodes %s not alive=%s" % (nodes, alive))

    def rank_pids(self, job):
        """Host pids of the job's application processes (the workload binary, FERRY_JOB=job,
        FERRY_HOME=this cluster's store)."""
        return job_ranks(WORKLOAD, lambda env: env.get("FERRY_JOB") == job and env.get("FERRY_HOME") == self.store)

    def kill_node(self, node):
        """A node failure: kill -9 its agent and every process below it (rank supervisors, ranks)."""
        p = self.procs[node]
        # The agent first: killed after its ranks, a busy agent could still report their
        # deaths as ordinary exits (seen under load), which a lost node never does.
        victims = [p.pid] + descendants(p.pid)
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait(timeout=10)

    def kill_coordinator(self):
        p = self.procs["coordinator"]
        p.kill()
        p.wait(timeout=10)
        p.stdout.close()

    def output(self, job, rank):
        with open(os.path.join(self.store, "jobs", job, "rank-%d.out" % rank)) as f:
            return f.read()

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
            if p.stdout:
                p.stdout.close()
        for f in self.logs:
            f.close()


def reference_output(rank, args):
    # The output does not depend on the sleep between iterations: run the reference without it.
    args = list(args[:2]) + ["0"] + list(args[3:])
    env = dict(os.environ, FERRY_RANK=str(rank), FERRY_NTASKS="4")
    return subprocess.run([WORKLOAD, *args], env=env, capture_output=True, text=True, timeout=TIMEOUT).stdout


def partial_images(store, job, gen):
    """Image bytes written so far into gen-N.partial (0 if it does not exist)."""
    d = os.path.join(store, "jobs", job, "gen-%06d.partial" % gen)
    total = 0
    for dirpath, _, files in os.walk(d):
        for f in files:
            if f.endswith(".h5"):
                try:
                    total += os.path.getsize(os.path.join(dirpath, f))
                except OSError:
                    pass
    return total


class ClusterTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ferry-cluster-")
        os.chmod(self.dir, 0o711)
        self.c = Cluster(self.dir)
        self.jobs = []

    def tearDown(self):
        for job in self.jobs:
            for pid in self.c.rank_pids(job).values():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.c.stop()
        if os.environ.get("FERRY_TEST_KEEP"):
            print("kept", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def launch(self, *args, ntasks=4):
        r = self.c.ferry("launch", "--nodes", "n1,n2", "--ntasks", str(ntasks), "--detach", "--", WORKLOAD, *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        job = r.stdout.strip()
        self.jobs.append(job)
        end = time.time() + 20
        while len(self.c.rank_pids(job)) < ntasks and time.time() < end:
            time.sleep(0.05)
        self.assertEqual(len(self.c.rank_pids(job)), ntasks)
        return job

    def launch_record(self, job):
        return self.c.status(job)["jobs"][0]["restarts"][0]["restart_id"]

    def kill_ranks(self, job, sig=signal.SIGKILL):
        for pid in self.c.rank_pids(job).values():
            os.kill(pid, sig)

    def wait_json(self, rid, timeout=None):
        args = ["wait", str(rid), "--json"] + (["--timeout", str(timeout)] if timeout else [])
        r = self.c.ferry(*args)
        return r.returncode, json.loads(r.stdout), r.stderr

    def test_checkpoint_kill_restart_on_other_agent(self):
        args = ["4", "80", "40"]
        job = self.launch(*args)
        time.sleep(0.5)
        r = self.c.ferry("checkpoint", job)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("generation 1 committed", r.stdout)
        with open(os.path.join(self.c.store, "jobs", job, "gen-000001", "MANIFEST.json")) as f:
            manifest = json.load(f)
        self.assertEqual(manifest["kind"], "job")
        self.assertEqual(sorted(x["node"] for x in manifest["ranks"]), ["n1", "n1", "n2", "n2"])
        self.kill_ranks(job)
        code, rec, _ = self.wait_json(self.launch_record(job))
        self.assertEqual((code, rec["outcome"], rec["signal"]), (137, "signaled", 9))
        r = self.c.ferry("restart", job, "--nodes", "n2", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        rec = json.loads(r.stdout)
        self.assertEqual((rec["outcome"], rec["exit_status"]), ("exited", 0))
        for rank in range(4):
            self.assertEqual(self.c.output(job, rank), reference_output(rank, args), "rank %d" % rank)
        st = self.c.status(job)["jobs"][0]
        self.assertEqual(st["nodes"], ["n2"])
        self.assertEqual([g["generation"] for g in st["generations"]], [1])

    def test_wait_exit_status_3(self):
        r = self.c.ferry("launch", "--nodes", "n1,n2", "--ntasks", "4", "--json", "--", WORKLOAD, "1", "3", "10", "3")
        self.assertEqual(r.returncode, 3, r.stderr)
        rec = json.loads(r.stdout)
        self.assertEqual((rec["outcome"], rec["exit_status"], rec["rank"], rec["signal"]), ("exited", 3, 1, None))
        self.assertNotIn("ferry: restart", r.stderr)

    def test_wait_signal(self):
        job = self.launch("1", "400", "50")
        rid = self.launch_record(job)
        code, rec, err = self.wait_json(rid, timeout=0.3)
        self.assertEqual((code, rec["outcome"]), (124, "running"))
        self.assertIn("still running at the timeout", err)
        self.kill_ranks(job, signal.SIGTERM)
        code, rec, _ = self.wait_json(rid)
        self.assertEqual((code, rec["outcome"], rec["signal"], rec["exit_status"]), (143, "signaled", 15, None))

    def test_restart_fails_when_an_image_was_deleted(self):
        job = self.launch("2", "400", "20")
        r = self.c.ferry("checkpoint", job, "--stop")
        self.assertEqual(r.returncode, 0, r.stderr)
        os.unlink(os.path.join(self.c.store, "jobs", job, "gen-000001", "rank-2", "rank-2.h5"))
        r = self.c.ferry("restart", job, "--detach")
        self.assertEqual(r.returncode, 0, r.stderr)
        code, rec, err = self.wait_json(int(r.stdout))
        self.assertEqual(code, 86)
        self.assertEqual((rec["outcome"], rec["phase"], rec["rank"], rec["node"]), ("restart_failed", "validate", 2, "n1"))
        self.assertIn("failed in validate on node n1 rank 2", err)

    def test_unauthenticated_and_other_user_refused(self):
        job = self.launch("1", "400", "20")
        # A STATUS frame with no credential (auth scheme none): refused, connection closed.
        payload = struct.pack("<I", len(job)) + job.encode()
        body = struct.pack("<IHHQBIqQI", 0x59525246, 2, 0x0209, 1, 0, 0, 0, 0, 0) + payload  # protocol version 2
        with socket.create_connection(("127.0.0.1", self.c.port), timeout=10) as s:
            s.sendall(struct.pack("<I", len(body)) + body)
            reply = s.recv(4096)
            self.assertEqual(struct.unpack_from("<H", reply, 45)[0], 100)  # STATUS_REPLY code auth_failed
        # Garbage: only that connection closes.
        with socket.create_connection(("127.0.0.1", self.c.port), timeout=10) as s:
            s.sendall(b"\xff" * 64)
            self.assertEqual(s.recv(16), b"")
        nobody = pwd.getpwnam("nobody").pw_uid
        r = self.c.ferry("checkpoint", job, uid=nobody)
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn("belongs to uid 0", r.stderr)
        self.assertEqual(self.c.status(job)["jobs"][0]["generations"], [])
        self.assertEqual(self.c.ferry("checkpoint", job).returncode, 0)

    def gen_dirs(self, job):
        return sorted(d for d in os.listdir(os.path.join(self.c.store, "jobs", job)) if d.startswith("gen-"))

    def checkpoint_in_background(self, job):
        return subprocess.Popen([FERRY, "checkpoint", job], env=self.c.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def wait_until_dumping(self, job, gen, ckpt):
        """Returns once gen-N.partial holds image bytes while the round is still uncommitted."""
        end = time.time() + 30
        while time.time() < end and ckpt.poll() is None:
            if partial_images(self.c.store, job, gen) > 0:
                return
            time.sleep(0.005)
        self.fail("never saw the dump of generation %d in progress (checkpoint: %s)" % (gen, ckpt.poll()))

    def test_node_lost_during_dump(self):
        # 48 MiB ranks: the dump takes long enough to kill a node in the middle of it; 300
        # iterations (6 s): the ranks of n2 would still run long after the node is lost.
        args = ["48", "300", "20"]
        job = self.launch(*args)
        r = self.c.ferry("checkpoint", job)
        self.assertEqual(r.returncode, 0, r.stderr)
        rid = self.launch_record(job)
        ckpt = self.checkpoint_in_background(job)
        self.wait_until_dumping(job, 2, ckpt)
        self.c.kill_node("n1")
        out, err = ckpt.communicate(timeout=TIMEOUT)
        self.assertNotEqual(ckpt.returncode, 0, out)
        self.assertIn("phase dump", err)
        self.assertRegex(err, r"node n1, rank [02]\b")
        # The job is half dead: its surviving ranks (n2) are stopped and its record says why.
        code, rec, _ = self.wait_json(rid, timeout=30)
        self.assertEqual((code, rec["outcome"], rec["signal"], rec["node"], rec["reason"]),
                         (137, "signaled", 9, "n1", "agent lost"))
        self.assertIn(rec["rank"], (0, 2))
        self.assertEqual(self.c.rank_pids(job), {})
        for rank in (1, 3):
            self.assertFalse(self.c.output(job, rank).endswith("rank %d done\n" % rank),
                             "rank %d of n2 was stopped, not left to finish" % rank)
        self.assertEqual(self.gen_dirs(job), ["gen-000001"])
        # The older generation restarts on the node that remains and finishes correctly.
        r = self.c.ferry("restart", job, "--nodes", "n2", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["outcome"], "exited")
        for rank in range(4):
            self.assertEqual(self.c.output(job, rank), reference_output(rank, args), "rank %d" % rank)

    def test_coordinator_kill_during_dump(self):
        args = ["48", "150", "20"]
        job = self.launch(*args)
        rid = self.launch_record(job)
        pids = self.c.rank_pids(job)
        ckpt = self.checkpoint_in_background(job)
        self.wait_until_dumping(job, 1, ckpt)
        self.c.kill_coordinator()
        ckpt.communicate(timeout=TIMEOUT)
        self.assertNotEqual(ckpt.returncode, 0)
        # Really mid-round: the generation was never committed.
        self.assertNotIn("gen-000001", self.gen_dirs(job))
        self.c.start_coordinator()
        self.c.wait_nodes(["n1", "n2"])
        # At start-up the round is aborted: the partial generation is removed, nothing is
        # committed, and the ranks resume (same processes) and finish with the right output.
        end = time.time() + 20
        while self.gen_dirs(job) and time.time() < end:
            time.sleep(0.1)
        self.assertEqual(self.gen_dirs(job), [])
        self.assertEqual(self.c.status(job)["jobs"][0]["generations"], [])
        self.assertEqual(self.c.rank_pids(job), pids)
        r = self.c.ferry("checkpoint", job)
        self.assertEqual(r.returncode, 0, r.stderr)
        code, rec, _ = self.wait_json(rid)
        self.assertEqual((code, rec["outcome"]), (0, "exited"))
        for rank in range(4):
            self.assertEqual(self.c.output(job, rank), reference_output(rank, args), "rank %d" % rank)

    def test_corrupted_job_manifest_refused_at_restart(self):
        job = self.launch("2", "400", "20")
        r = self.c.ferry("checkpoint", job, "--stop")
        self.assertEqual(r.returncode, 0, r.stderr)
        manifest = os.path.join(self.c.store, "jobs", job, "gen-000001", "MANIFEST.json")
        with open(manifest, "r+") as f:
            f.seek(40)
            f.write("#garbage#")
        outputs = [self.c.output(job, rank) for rank in range(4)]
        r = self.c.ferry("restart", job, "--json")
        self.assertEqual(r.returncode, 86, r.stderr)
        rec = json.loads(r.stdout)
        self.assertEqual((rec["outcome"], rec["phase"]), ("restart_failed", "validate"))
        self.assertIn(manifest, rec["reason"])
        self.assertIn("corrupt", rec["reason"])
        self.assertIn("failed in validate", r.stderr)
        # Nothing was started: no rank process, outputs untouched.
        time.sleep(0.5)
        self.assertEqual(self.c.rank_pids(job), {})
        self.assertEqual([self.c.output(job, rank) for rank in range(4)], outputs)

    def test_coordinator_kill_after_commit(self):
        job = self.launch("2", "120", "40")
        r = self.c.ferry("checkpoint", job)
        self.assertEqual(r.returncode, 0, r.stderr)
        rid = self.launch_record(job)
        self.c.procs["coordinator"].kill()
        self.c.procs["coordinator"].wait()
        self.c.procs["coordinator"].stdout.close()
        self.c.start_coordinator()
        self.c.wait_nodes(["n1", "n2"])
        st = self.c.status(job)["jobs"][0]
        self.assertEqual([g["generation"] for g in st["generations"]], [1])
        self.assertEqual(self.c.ferry("checkpoint", job).returncode, 0)
        code, rec, _ = self.wait_json(rid)
        self.assertEqual((code, rec["outcome"]), (0, "exited"))


class FullStoreTest(unittest.TestCase):
    """The store on a small tmpfs: a checkpoint that does not fit fails cleanly."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ferry-cluster-")
        os.chmod(self.dir, 0o711)
        self.mnt = os.path.join(self.dir, "small")
        os.mkdir(self.mnt)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m,mode=0711", "tmpfs", self.mnt]).returncode != 0:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.skipTest("cannot mount a tmpfs here")
        self.c = Cluster(self.dir, store=os.path.join(self.mnt, "store"))
        self.job = None

    def tearDown(self):
        if self.job:
            for pid in self.c.rank_pids(self.job).values():
                os.kill(pid, signal.SIGKILL)
        self.c.stop()
        subprocess.run(["umount", "-l", self.mnt])
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_full_store_during_checkpoint(self):
        args = ["4", "200", "20"]
        r = self.c.ferry("launch", "--nodes", "n1,n2", "--ntasks", "4", "--detach", "--", WORKLOAD, *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        job = self.job = r.stdout.strip()
        time.sleep(0.5)
        r = self.c.ferry("checkpoint", job)
        self.assertEqual(r.returncode, 0, r.stderr)
        # Leave less room than one more generation needs (4 ranks x 4 MiB).
        st = os.statvfs(self.mnt)
        with open(os.path.join(self.mnt, "filler"), "wb") as f:
            f.truncate(max(0, st.f_bavail * st.f_frsize - 6 * 1024 * 1024))
            os.posix_fallocate(f.fileno(), 0, f.seek(0, 2))
        pids = self.c.rank_pids(job)
        r = self.c.ferry("checkpoint", job)
        self.assertEqual(r.returncode, 74, r.stdout + r.stderr)
        self.assertIn("No space left on device", r.stderr)
        self.assertIn("phase dump", r.stderr)
        gens = sorted(d for d in os.listdir(os.path.join(self.c.store, "jobs", job)) if d.startswith("gen-"))
        self.assertEqual(gens, ["gen-000001"])
        self.assertEqual([g["generation"] for g in self.c.status(job)["jobs"][0]["generations"]], [1])
        # The job keeps running (same processes) and ends normally.
        self.assertEqual(self.c.rank_pids(job), pids)
        os.unlink(os.path.join(self.mnt, "filler"))
        rid = self.c.status(job)["jobs"][0]["restarts"][0]["restart_id"]
        r = self.c.ferry("wait", str(rid), "--json")
        self.assertEqual((r.returncode, json.loads(r.stdout)["outcome"]), (0, "exited"))
        for rank in range(4):
            self.assertEqual(self.c.output(job, rank), reference_output(rank, args), "rank %d" % rank)
        # The previous generation is still valid: it restarts and gives the same output.
        r = self.c.ferry("restart", job, "--generation", "1", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        for rank in range(4):
            self.assertEqual(self.c.output(job, rank), reference_output(rank, args), "rank %d" % rank)


def munged_running():
    try:
        return subprocess.run(["munge", "-n"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class MungeTest(unittest.TestCase):
    """Scheme 1 (PROTOCOL.md): with munged running, the CLI signs with MUNGE and the
    coordinator needs no user secret to know who asks."""

    def setUp(self):
        if not munged_running():
            print("\nMungeTest skipped: munged is not running (or the munge command is missing)", file=sys.stderr)
            self.skipTest("munged is not running")
        self.dir = tempfile.mkdtemp(prefix="ferry-cluster-")
        os.chmod(self.dir, 0o711)
        self.c = Cluster(self.dir)
        self.job = None
        # No user secret anywhere from here on: only MUNGE can authenticate the CLI.
        for f in os.listdir(self.c.secrets):
            os.unlink(os.path.join(self.c.secrets, f))
        self.nosecret = os.path.join(self.dir, "nosecret")
        self.env = dict(os.environ, FERRY_COORDINATOR="127.0.0.1:%d" % self.c.port, FERRY_HOME=self.c.store,
                        FERRY_SECRET_FILE=os.path.join(self.nosecret, "secret"))
        self.env.pop("FERRY_AUTH", None)

    def tearDown(self):
        if self.job:
            for pid in self.c.rank_pids(self.job).values():
                os.kill(pid, signal.SIGKILL)
        self.c.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def ferry(self, *args, **kw):
        return subprocess.run([FERRY, *args], env=self.env, capture_output=True, text=True, timeout=TIMEOUT, **kw)

    def test_requests_signed_with_munge(self):
        r = self.ferry("launch", "--nodes", "n1,n2", "--ntasks", "4", "--detach", "--", WORKLOAD, "1", "400", "20")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.job = r.stdout.strip()
        end = time.time() + 20
        while len(self.c.rank_pids(self.job)) < 4 and time.time() < end:
            time.sleep(0.05)
        time.sleep(0.3)  # every rank reported running to the coordinator
        r = self.ferry("checkpoint", self.job)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(self.nosecret), "the CLI used a secret file, not MUNGE")
        self.assertEqual(os.listdir(self.c.secrets), [])
        # Another user: MUNGE proves the uid, the job is not theirs.
        r = self.ferry("checkpoint", self.job, user=pwd.getpwnam("nobody").pw_uid)
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn("belongs to uid 0", r.stderr)
        # A forged MUNGE credential (scheme 1) is refused and closes only that connection.
        payload = struct.pack("<I", len(self.job)) + self.job.encode()
        cred = b"MUNGE:AwQDAAAforged:"
        body = struct.pack("<IHHQBIqQI", 0x59525246, 2, 0x0209, 1, 1, 0, time.time_ns(), 7, len(cred)) + cred + payload
        with socket.create_connection(("127.0.0.1", self.c.port), timeout=10) as s:
            s.sendall(struct.pack("<I", len(body)) + body)
            reply = s.recv(4096)
            self.assertEqual(struct.unpack_from("<H", reply, 45)[0], 100)  # auth_failed
        st = self.ferry("status", "--json", self.job)
        self.assertEqual(st.returncode, 0, st.stderr)
        self.assertEqual([g["generation"] for g in json.loads(st.stdout)["jobs"][0]["generations"]], [1])
        # The secret-file scheme still works beside it (FERRY_AUTH=hmac) once a secret exists.
        self.assertEqual(self.c.ferry("status").returncode, 0)


def main():
    global FERRY, COORD, AGENT, WORKLOAD
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", required=True)
    ap.add_argument("--coordinator", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--workload", required=True)
    args, rest = ap.parse_known_args()
    FERRY, COORD, AGENT, WORKLOAD = (os.path.abspath(p) for p in (args.ferry, args.coordinator, args.agent, args.workload))
    if os.geteuid() != 0:
        print("test_cluster: needs root (agents start ranks as the job's user)")
        return 77
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    sys.exit(main())
