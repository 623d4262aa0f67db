#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# End-to-end test of the cluster daemons: a real ferry-coordinator and two real ferry-agents
# (nodes n1, n2) on localhost, a temporary store, state dir and secrets. A 4-rank job over
# both agents is checkpointed, its ranks killed, and restarted entirely on n2; `ferry wait`
# reports the outcome and every rank's output equals an uninterrupted run's. Then: exit
# status 3, a signal, a restart whose image was deleted, unauthenticated and other-user
# requests, kill -9 of the coordinator after a commit.
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

FERRY = COORD = AGENT = WORKLOAD = None
TIMEOUT = 90


class Cluster:
    """Coordinator + agents n1, n2 in a temp dir; every process is killed by pid at the end."""

    def __init__(self, root):
        self.root = root
        self.store = os.path.join(root, "store")
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
        return dict(os.environ, FERRY_COORDINATOR="127.0.0.1:%d" % self.port, FERRY_SECRET_FILE=path,
                    FERRY_HOME=self.store)

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
        """Host pids of the job's application processes (the workload binary, FERRY_JOB=job)."""
        out = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                if os.readlink("/proc/%s/exe" % d) != os.path.realpath(WORKLOAD):
                    continue
                with open("/proc/%s/environ" % d, "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            kv = dict(e.decode(errors="replace").split("=", 1) for e in env if b"=" in e)
            if kv.get("FERRY_JOB") == job:
                out[int(kv["FERRY_RANK"])] = int(d)
        return out

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
    env = dict(os.environ, FERRY_RANK=str(rank), FERRY_NTASKS="4")
    return subprocess.run([WORKLOAD, *args], env=env, capture_output=True, text=True, timeout=TIMEOUT).stdout


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
        body = struct.pack("<IHHQBIqQI", 0x59525246, 1, 0x0209, 1, 0, 0, 0, 0, 0) + payload
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
