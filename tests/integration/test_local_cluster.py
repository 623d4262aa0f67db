#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The embedded default (cli/local_cluster.hpp): with no coordinator configured, `ferry launch
# --ntasks 3 -- PROG` starts a local ferry-coordinator and its agent itself, under the ferry
# home. Checkpoint, kill -9 of the ranks, restart and wait all go through those same daemons
# (reused, never a second pair); once nothing runs and no command is alive they exit by
# themselves after FERRY_IDLE_EXIT_S (2 s here), and a later `ferry wait` starts them again
# and still knows the record.
# Run: test_local_cluster.py --ferry PATH --workload PATH
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from process_tree import job_ranks  # noqa: E402

FERRY = WORKLOAD = None
TIMEOUT = 90
IDLE_S = 2


class LocalClusterTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ferry-local-")
        self.home = os.path.join(self.dir, "ferry-home")
        self.env = {k: v for k, v in os.environ.items() if k not in ("FERRY_COORDINATOR", "FERRY_SECRET_FILE")}
        self.env.update(FERRY_HOME=self.home, HOME=os.path.join(self.dir, "user"), FERRY_IDLE_EXIT_S=str(IDLE_S))
        os.mkdir(self.env["HOME"])

    def tearDown(self):
        for pid in self.daemons() + list(self.rank_pids().values()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def ferry(self, *args, timeout=TIMEOUT):
        return subprocess.run([FERRY, *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def daemons(self):
        """Pids of the ferry-coordinator / ferry-agent processes serving this test's home."""
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            name = os.path.basename(argv[0]).decode(errors="replace")
            if name in ("ferry-coordinator", "ferry-agent") and any(self.home.encode() in a for a in argv):
                out.append(int(d))
        return sorted(out)

    def rank_pids(self):
        return job_ranks(WORKLOAD, lambda env: env.get("FERRY_JOB") == "1" and self.home in env.get("FERRY_HOME", ""))

    def reference(self, rank, args):
        env = dict(os.environ, FERRY_RANK=str(rank), FERRY_NTASKS="3")
        return subprocess.run([WORKLOAD, args[0], args[1], "0"], env=env, capture_output=True, text=True,
                              timeout=TIMEOUT).stdout

    def output(self, rank):
        with open(os.path.join(self.home, "jobs", "1", "rank-%d.out" % rank)) as f:
            return f.read()

    def test_launch_checkpoint_kill_restart_then_idle_exit(self):
        self.assertEqual(self.daemons(), [])
        args = ["8", "150", "20"]
        launch = subprocess.Popen([FERRY, "launch", "--ntasks", "3", "--", WORKLOAD, *args], env=self.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        end = time.time() + 30
        while len(self.rank_pids()) < 3 and time.time() < end and launch.poll() is None:
            time.sleep(0.05)
        self.assertEqual(sorted(self.rank_pids()), [0, 1, 2])
        daemons = self.daemons()
        self.assertEqual(len(daemons), 2, "one coordinator and one agent")
        local = os.path.join(self.home, "local")
        self.assertEqual(os.stat(os.path.join(local, "cluster.secret")).st_mode & 0o777, 0o600)
        with open(os.path.join(self.home, "jobs", "1", "job.json")) as f:
            self.assertEqual(json.load(f)["coordinator"], "local")

        r = self.ferry("checkpoint", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("generation 1 committed", r.stdout)
        for pid in self.rank_pids().values():
            os.kill(pid, signal.SIGKILL)
        _, err = launch.communicate(timeout=TIMEOUT)
        self.assertEqual(launch.returncode, 137, err)

        r = self.ferry("restart", "1", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        rec = json.loads(r.stdout)
        self.assertEqual((rec["outcome"], rec["exit_status"]), ("exited", 0))
        for rank in range(3):
            self.assertEqual(self.output(rank), self.reference(rank, args), "rank %d" % rank)
        r = self.ferry("wait", str(rec["restart_id"]), "--json")
        self.assertEqual((r.returncode, json.loads(r.stdout)["outcome"]), (0, "exited"), r.stderr)
        # Every command used the same two daemons.
        self.assertEqual(self.daemons(), daemons)

        # Idle: nothing runs and no command is alive -> both exit within a few idle periods.
        end = time.time() + IDLE_S + 10
        while self.daemons() and time.time() < end:
            time.sleep(0.2)
        self.assertEqual(self.daemons(), [], "the daemons did not exit when idle")
        self.assertFalse(os.path.exists(os.path.join(local, "coordinator.addr")))

        # A later command starts them again; the record survived in the state database.
        r = self.ferry("wait", str(rec["restart_id"]), "--json")
        self.assertEqual((r.returncode, json.loads(r.stdout)["outcome"]), (0, "exited"), r.stderr)
        self.assertEqual(len(self.daemons()), 2)

        # The ferry home removed under them: nothing can reach them any more, so they exit.
        shutil.rmtree(self.home)
        end = time.time() + IDLE_S + 10
        while self.daemons() and time.time() < end:
            time.sleep(0.2)
        self.assertEqual(self.daemons(), [], "the daemons outlived the removal of their ferry home")


def main():
    global FERRY, WORKLOAD
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", required=True)
    ap.add_argument("--workload", required=True)
    args, rest = ap.parse_known_args()
    FERRY, WORKLOAD = os.path.abspath(args.ferry), os.path.abspath(args.workload)
    if os.geteuid() != 0:
        print("test_local_cluster: needs root (the agent starts ranks as the job's user)")
        return 77
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    sys.exit(main())
