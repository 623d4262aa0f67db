#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Integration tests of the `ferry` command line on real processes: exit statuses, errors for
# bad input, --stop, kill -9 of the supervisor during a checkpoint, a full disk, another
# user's job. Run: test_cli.py --ferry PATH --counter PATH [unittest args]
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

FERRY = COUNTER = None
TIMEOUT = 60


def read_json(path):
    with open(path) as f:
        return json.load(f)


def read_text(path):
    with open(path) as f:
        return f.read()


def wait_file(path, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            return True
        time.sleep(0.02)
    return False


class CliTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ferry-cli-")
        self.store = os.path.join(self.dir, "store")
        self.env = dict(os.environ, FERRY_HOME=self.store)
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
            if p.stderr:
                p.stderr.close()
        for pid in self.extra_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def extra_pids(self):
        pids = []
        jobs = os.path.join(self.store, "jobs")
        if os.path.isdir(jobs):
            for j in os.listdir(jobs):
                try:
                    rec = read_json(os.path.join(jobs, j, "job.json"))
                    if rec.get("state") == "running" and rec.get("pid"):
                        pids.append(rec["pid"])
                except (OSError, ValueError):
                    pass
        return pids

    def ferry(self, *args, **kw):
        return subprocess.run([FERRY, *args], env=self.env, capture_output=True, text=True,
                              timeout=kw.get("timeout", TIMEOUT))

    def launch(self, *prog, out=None, name=None, ready=True):
        env = dict(self.env)
        self.ready = os.path.join(self.dir, f"ready-{len(self.procs)}")
        env["READY_FILE"] = self.ready
        cmd = [FERRY, "launch"] + (["--name", name] if name else []) + ["--", *prog]
        p = subprocess.Popen(cmd, env=env, stdout=out or subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        if ready:
            self.assertTrue(wait_file(self.ready), "workload did not get ready")
            jobs = os.listdir(os.path.join(self.store, "jobs"))
            self.wait_running(str(max(int(j) for j in jobs if j.isdigit())))
        return p

    def wait_running(self, jid, timeout=20):
        """The job record names the running program (it is saved just after the fork)."""
        end = time.time() + timeout
        while time.time() < end:
            try:
                rec = self.job(jid)
                if rec.get("state") == "running" and rec.get("pid"):
                    return rec
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        self.fail("job %s never recorded as running" % jid)

    def job(self, jid="1"):
        return read_json(os.path.join(self.store, "jobs", jid, "job.json"))

    def uninterrupted(self, *args):
        return subprocess.run([COUNTER, *args], capture_output=True, text=True, timeout=TIMEOUT).stdout

    # --- exit statuses -----------------------------------------------------------------
    def test_launch_passes_exit_status_and_signal_through(self):
        self.assertEqual(self.ferry("launch", "--", "sh", "-c", "exit 3").returncode, 3)
        self.assertEqual(self.ferry("launch", "--", "sh", "-c", "kill -TERM $$").returncode, 128 + 15)
        r = self.ferry("launch", "--", "/nonexistent/program")
        self.assertEqual(r.returncode, 127)
        self.assertIn("/nonexistent/program", r.stderr)

    def test_unknown_job_is_named(self):
        for cmd in ("checkpoint", "restart", "inspect"):
            r = self.ferry(cmd, "no-such-job")
            self.assertEqual(r.returncode, 66, cmd + ": " + r.stderr)
            self.assertIn("no-such-job", r.stderr)

    def test_usage_errors(self):
        self.assertEqual(self.ferry("launch").returncode, 64)
        self.assertEqual(self.ferry("frobnicate").returncode, 64)

    # --- stop and restart ----------------------------------------------------------------
    def test_stop_then_restart_gives_uninterrupted_output(self):
        args = ["8", "40", "30"]
        expected = self.uninterrupted(*args)
        out_path = os.path.join(self.dir, "out.txt")
        with open(out_path, "w") as out:
            p = self.launch(COUNTER, *args, out=out, name="c1")
            time.sleep(0.3)
            r = self.ferry("checkpoint", "c1", "--stop")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"generation 1 committed: ")
            self.assertEqual(p.wait(timeout=TIMEOUT), 75)
            self.assertIn("stopped after checkpoint generation 1", p.stderr.read())
            p.stderr.close()
        r = self.ferry("restart", "c1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(read_text(out_path), expected)
        self.assertEqual(self.job()["state"], "exited")

    def test_restart_of_running_job_is_refused(self):
        p = self.launch(COUNTER, "4", "400", "20")
        r = self.ferry("checkpoint", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ferry("restart", "1")
        self.assertEqual(r.returncode, 73)
        self.assertIn("still running", r.stderr)
        self.assertIsNone(p.poll())

    def test_generation_not_found(self):
        p = self.launch(COUNTER, "4", "400", "20")
        self.assertEqual(self.ferry("checkpoint", "1", "--stop").returncode, 0)
        p.wait(timeout=TIMEOUT)
        r = self.ferry("restart", "1", "--generation", "7")
        self.assertEqual(r.returncode, 66)
        self.assertIn("generation 7", r.stderr)

    # --- ferry wait on a local job: a failed restart vs the application's own end --------
    def wait_json(self, job, *extra):
        r = self.ferry("wait", job, "--json", *extra)
        try:
            return r.returncode, json.loads(r.stdout), r.stderr
        except ValueError:
            self.fail(f"ferry wait {job}: not JSON: {r.stdout!r} {r.stderr!r} ({r.returncode})")

    def test_wait_tells_failed_restart_from_application_status(self):
        # the application's own status, also for a job that ended long ago
        self.assertEqual(self.ferry("launch", "--name", "three", "--", "sh", "-c", "exit 3").returncode, 3)
        rc, rec, _ = self.wait_json("three")
        self.assertEqual((rc, rec["outcome"], rec["exit_status"], rec["restart_id"]), (3, "exited", 3, 1))
        # still running: 124 at the timeout, outcome running
        args = ["4", "400", "20"]
        expected = self.uninterrupted(*args)
        out_path = os.path.join(self.dir, "out.txt")
        with open(out_path, "w") as out:
            p = self.launch(COUNTER, *args, out=out, name="w")
            rc, rec, err = self.wait_json("w", "--timeout", "0.2")
            self.assertEqual((rc, rec["outcome"]), (124, "running"), err)
            self.assertEqual(self.ferry("checkpoint", "w").returncode, 0)
            # the launching command is killed: the program dies with it (its PID namespace)
            p.kill()
            p.wait(timeout=TIMEOUT)
        rc, rec, _ = self.wait_json("w")
        self.assertEqual((rc, rec["outcome"], rec["signal"]), (128 + 9, "signaled", 9))
        self.assertIn("ended without recording", rec["reason"])
        st = self.ferry("status", "w")
        self.assertIn("lost", st.stdout)
        # a restart from a truncated image is refused: restart_failed (86), phase validate
        image = os.path.join(self.store, "jobs", "2", "gen-000001", "rank-0.h5")
        saved = image + ".saved"
        shutil.copyfile(image, saved)
        os.truncate(image, os.path.getsize(image) // 2)
        r = self.ferry("restart", "w")
        self.assertEqual(r.returncode, 65, r.stderr)
        rc, rec, err = self.wait_json("w")
        self.assertEqual((rc, rec["outcome"], rec["phase"], rec["restart_id"]), (86, "restart_failed", "validate", 2))
        self.assertIn("truncated", rec["reason"])
        self.assertIn("failed in validate", err)
        self.assertIn("restart attempt 2 failed", self.ferry("status", "w").stdout)
        # the image repaired, the next restart runs the job to its end: the application's status
        os.replace(saved, image)
        r = self.ferry("restart", "w")
        self.assertEqual(r.returncode, 0, r.stderr)
        rc, rec, _ = self.wait_json("w")
        self.assertEqual((rc, rec["outcome"], rec["exit_status"], rec["restart_id"]), (0, "exited", 0, 3))
        self.assertEqual(read_text(out_path), expected)
        # an unknown job is named
        r = self.ferry("wait", "no-such-job")
        self.assertEqual(r.returncode, 66)
        self.assertIn("no-such-job", r.stderr)

    # --- failures during a checkpoint ----------------------------------------------------
    def test_kill_supervisor_during_checkpoint_keeps_previous_generation(self):
        args = ["512", "60", "20"]
        expected = self.uninterrupted(*args)
        out_path = os.path.join(self.dir, "out.txt")
        with open(out_path, "w") as out:
            p = self.launch(COUNTER, *args, out=out)
            self.assertEqual(self.ferry("checkpoint", "1").returncode, 0)
            job_pid = self.job()["pid"]
            c = subprocess.Popen([FERRY, "checkpoint", "1"], env=self.env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            # Wait until generation 2 is being written, then kill the supervisor.
            partial = os.path.join(self.store, "jobs", "1", "gen-000002.partial")
            self.assertTrue(wait_file(partial, 20))
            time.sleep(0.05)
            p.kill()
            p.wait(timeout=10)
            c.wait(timeout=TIMEOUT)
            os.kill(job_pid, signal.SIGKILL)
        gens = sorted(d for d in os.listdir(os.path.join(self.store, "jobs", "1")) if d.startswith("gen-"))
        self.assertIn("gen-000001", gens)
        self.assertNotIn("gen-000002", gens)
        time.sleep(0.2)
        r = self.ferry("restart", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(read_text(out_path), expected)

    def test_full_disk_fails_cleanly_and_job_keeps_running(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to mount a small tmpfs")
        mnt = os.path.join(self.dir, "small")
        os.mkdir(mnt)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt]).returncode != 0:
            self.skipTest("cannot mount tmpfs here")
        try:
            self.store = os.path.join(mnt, "store")
            self.env["FERRY_HOME"] = self.store
            args = ["64", "60", "20"]
            expected = self.uninterrupted(*args)
            out_path = os.path.join(self.dir, "out.txt")
            with open(out_path, "w") as out:
                p = self.launch(COUNTER, *args, out=out)
                r = self.ferry("checkpoint", "1")
                self.assertEqual(r.returncode, 74, r.stdout + r.stderr)
                self.assertIn("No space left on device", r.stderr)
                self.assertEqual([d for d in os.listdir(os.path.join(self.store, "jobs", "1")) if d.startswith("gen-")], [])
                self.assertEqual(p.wait(timeout=TIMEOUT), 0)
            self.assertEqual(read_text(out_path), expected)
        finally:
            for p in self.procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            subprocess.run(["umount", "-l", mnt])

    def test_traced_process_is_refused_and_keeps_running(self):
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_DETACH, WALL = 0x4206, 0x4207, 17, 0x40000000
        args = ["4", "60", "20"]
        expected = self.uninterrupted(*args)
        out_path = os.path.join(self.dir, "out.txt")
        with open(out_path, "w") as out:
            p = self.launch(COUNTER, *args, out=out)
            pid = self.job()["pid"]
            self.assertEqual(libc.ptrace(PTRACE_SEIZE, pid, None, None), 0, os.strerror(ctypes.get_errno()))
            try:
                r = self.ferry("checkpoint", "1")
                self.assertEqual(r.returncode, 69, r.stderr)
                self.assertIn("traced by process %d" % os.getpid(), r.stderr)
            finally:
                # A tracer must stop its tracee before it can detach.
                libc.ptrace(PTRACE_INTERRUPT, pid, None, None)
                os.waitpid(pid, WALL)
                libc.ptrace(PTRACE_DETACH, pid, None, None)
            self.assertEqual(p.wait(timeout=TIMEOUT), 0)
        self.assertEqual(read_text(out_path), expected)
        self.assertEqual(os.listdir(os.path.join(self.store, "jobs", "1")).count("gen-000001"), 0)

    def test_corrupt_manifest_is_refused(self):
        p = self.launch(COUNTER, "4", "400", "20")
        self.assertEqual(self.ferry("checkpoint", "1", "--stop").returncode, 0)
        p.wait(timeout=TIMEOUT)
        with open(os.path.join(self.store, "jobs", "1", "gen-000001", "MANIFEST.json"), "w") as f:
            f.write("{ not json")
        r = self.ferry("restart", "1")
        self.assertEqual(r.returncode, 65)
        self.assertIn("MANIFEST.json", r.stderr)

    def test_other_users_job_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run a command as another uid")
        p = self.launch(COUNTER, "4", "400", "20")
        os.chmod(self.dir, 0o755)
        r = subprocess.run(["setpriv", "--reuid=1234", "--regid=1234", "--clear-groups", FERRY, "checkpoint", "1"],
                           env=self.env, capture_output=True, text=True, timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Permission denied", r.stderr)
        self.assertIsNone(p.poll())


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", required=True)
    ap.add_argument("--counter", required=True)
    a, rest = ap.parse_known_args()
    FERRY, COUNTER = os.path.abspath(a.ferry), os.path.abspath(a.counter)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
