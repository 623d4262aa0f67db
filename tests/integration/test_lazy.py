#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Integration tests of `ferry restart --lazy` outcomes a scenario cannot express: a corrupt
# chunk found after the program resumed kills it and the restart exits 70 "after the point of
# no return" (the eager restart of the same image refuses it with 65 before anything runs);
# the ferry process serving the faults dies while pages are still missing: the program is
# killed with it instead of running on with zero pages.
# Run: test_lazy.py --ferry PATH --workload PATH (tests/scenarios/lazy_restore/workload.c)
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

FERRY = WORKLOAD = None
TIMEOUT = 120


def wait_for(cond, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class LazyTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ferry-lazy-")
        self.store = os.path.join(self.dir, "store")
        self.env = dict(os.environ, FERRY_HOME=self.store, SCENARIO_READY=os.path.join(self.dir, "ready"),
                        SCENARIO_MARKER=os.path.join(self.dir, "marker"))
        self.procs, self.pids = [], []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
            if p.stderr:
                p.stderr.close()
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def job(self):
        with open(os.path.join(self.store, "jobs", "1", "job.json")) as f:
            return json.load(f)

    def ferry(self, *args):
        return subprocess.run([FERRY, *args], env=self.env, capture_output=True, text=True, timeout=TIMEOUT)

    # Launches WORKLOAD with args, checkpoints it once, kills it; returns the image path.
    def checkpointed(self, *args):
        with open(os.path.join(self.dir, "out"), "w") as out:
            p = subprocess.Popen([FERRY, "launch", "--name", "lz", "--", WORKLOAD, *args], env=self.env,
                                 stdout=out, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        self.assertTrue(wait_for(lambda: os.path.exists(self.env["SCENARIO_READY"]), 60), "workload not ready")
        self.assertTrue(wait_for(lambda: self.job().get("state") == "running", 20))
        r = self.ferry("checkpoint", "lz")
        self.assertEqual(r.returncode, 0, r.stderr)
        os.kill(self.job()["pid"], signal.SIGKILL)
        p.wait(timeout=30)
        gen = os.path.join(self.store, "jobs", "1", "gen-000001")
        return os.path.join(gen, sorted(f for f in os.listdir(gen) if f.endswith(".h5"))[0])

    def test_corrupt_chunk_after_resume_kills_with_70(self):
        image = self.checkpointed("256", "100000", "4", "0")
        size = os.path.getsize(image)
        with open(image, "r+b") as f:  # in the page data, far from the first chunks
            f.seek(size * 3 // 4)
            data = bytearray(f.read(64))
            f.seek(size * 3 // 4)
            f.write(bytes(b ^ 0x5A for b in data))
        t0 = time.time()
        r = self.ferry("restart", "lz", "--lazy")
        self.assertEqual(r.returncode, 70, r.stderr)
        self.assertRegex(r.stderr, r"restarted from generation 1")  # the program did run
        self.assertRegex(r.stderr, r"after the point of no return")
        self.assertRegex(r.stderr, r"(?i)checksum|corrupt")
        self.assertLess(time.time() - t0, 60)
        # The eager restart refuses the same image before anything runs.
        r = self.ferry("restart", "lz")
        self.assertEqual(r.returncode, 65, r.stderr)

    def test_server_death_kills_program(self):
        # The program idles 60 s (restart or not) touching only its stack: the rest of its
        # pages arrive only by the streamer.
        self.checkpointed("512", "10", "2", "0", "-60")
        p = subprocess.Popen([FERRY, "restart", "lz", "--lazy"], env=self.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        line = ""
        while "restarted from generation" not in line:
            line = p.stderr.readline()
            self.assertTrue(line, "ferry restart ended before the program resumed")
        self.assertTrue(wait_for(lambda: self.job().get("state") == "running", 10))
        pid = self.job()["pid"]
        self.pids.append(pid)
        # Once it ticks, the pages its idle loop needs (stack, TLS) are back: with the rest
        # turned into zero pages it would idle on for a minute, not crash.
        marker = self.env["SCENARIO_MARKER"]
        ticks = os.path.getsize(marker)
        self.assertTrue(wait_for(lambda: os.path.getsize(marker) >= ticks + 2, 10), "the restored program does not run")
        os.kill(p.pid, signal.SIGKILL)  # pages are still streaming in (512 MiB)
        p.wait(timeout=10)
        self.assertTrue(wait_for(lambda: not alive(pid), 10),
                        "the program runs on after the process serving its page faults died")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", required=True)
    ap.add_argument("--workload", required=True)
    a, rest = ap.parse_known_args()
    FERRY, WORKLOAD = a.ferry, a.workload
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
