#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Exact pids and tids for a non-root user: `ferry launch` puts the job's PID namespace in a
# user namespace of the user's own (ckptlib/launch/user_namespace.hpp), so a restart gives
# back the same ids. As `nobody` (setpriv, when run as root; else as the calling user):
# ids_workload prints its pid/ppid/tids/uid/capabilities and holds a recursive and an
# error-checking mutex across a checkpoint, a kill -9 and a restart, and its output must equal
# an uninterrupted run's; files it creates belong to the user. As root: no user namespace
# (today's behaviour), and with user namespaces disabled (user.max_user_namespaces = 0 in a
# namespace of the test's own) the job runs with a warning naming why, and new ids.
# Run: test_unprivileged.py --ferry PATH --workload PATH [unittest args]
import argparse
import ctypes
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

FERRY = WORKLOAD = None
TIMEOUT = 60
ITERS, SLEEP_MS = "30", "50"   # ~1.5 s of run after the setup
CLONE_NEWUSER = 0x10000000


def read_text(path):
    with open(path) as f:
        return f.read()


def wait_for(pred, timeout=20, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = pred()
        if r:
            return r
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def user_prefix():
    """(argv prefix that runs a command as an unprivileged user, its uid, its gid)."""
    if os.geteuid() != 0:
        return [], os.geteuid(), os.getegid()
    pw = pwd.getpwnam("nobody")
    return (["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"],
            pw.pw_uid, pw.pw_gid)


def why_not_runnable():
    """None, or why this machine cannot run the unprivileged test."""
    prefix, _, _ = user_prefix()
    if prefix and not shutil.which("setpriv"):
        return "setpriv (util-linux) is missing"
    r = subprocess.run(prefix + [FERRY, "--help"], capture_output=True, timeout=TIMEOUT)
    if r.returncode != 0 and r.returncode != 64:
        return f"the unprivileged user cannot run {FERRY} (status {r.returncode}: {r.stderr[:200]!r})"
    r = subprocess.run(prefix + ["unshare", "--user", "--pid", "--fork", "true"], capture_output=True,
                       text=True, timeout=TIMEOUT)
    if r.returncode != 0:
        return "user namespaces are not available to an unprivileged user here: " + r.stderr.strip()
    return None


class Job:
    """One job of ferry commands run as `prefix` with a private store in `dir`."""

    def __init__(self, test, prefix, name):
        self.t = test
        self.prefix = prefix
        self.dir = os.path.join(test.dir, name)
        os.mkdir(self.dir)
        if test.uid is not None and os.geteuid() == 0:
            os.chown(self.dir, test.uid, test.gid)
        self.store = os.path.join(self.dir, "store")
        self.ready = os.path.join(self.dir, "ready")
        self.out = os.path.join(self.dir, "out.txt")
        self.env = dict(os.environ, FERRY_HOME=self.store, READY_FILE=self.ready)
        self.procs = []
        # the job's stdout file: a restarted program reopens it as the user
        open(self.out, "w").close()
        if test.uid is not None and os.geteuid() == 0:
            os.chown(self.out, test.uid, test.gid)

    def cmd(self, *args):
        return self.prefix + [FERRY, *args]

    def launch(self, *extra):
        with open(self.out, "r+") as out:
            p = subprocess.Popen(self.cmd("launch", "--name", "ids", "--", WORKLOAD, *extra), env=self.env,
                                 cwd=self.dir, stdout=out, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def ferry(self, *args, prefix=None):
        return subprocess.run((self.prefix if prefix is None else prefix) + [FERRY, *args], env=self.env,
                              cwd=self.dir, capture_output=True, text=True, timeout=TIMEOUT)

    def record(self):
        jobs = os.path.join(self.store, "jobs")
        for j in os.listdir(jobs):
            with open(os.path.join(jobs, j, "job.json")) as f:
                return json.load(f)

    def wait_running(self):
        def running():
            try:
                rec = self.record()
                return rec if rec.get("state") == "running" and rec.get("pid") else None
            except (OSError, ValueError, TypeError):
                return None
        wait_for(lambda: os.path.exists(self.ready), what="the workload to be ready")
        return wait_for(running, what="the job record to say running")

    def finish(self, p):
        try:
            rc = p.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
        err = p.stderr.read()
        p.stderr.close()
        return rc, err

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
            if p.stderr and not p.stderr.closed:
                p.stderr.close()


class UnprivilegedTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ferry-unpriv-")
        os.chmod(self.dir, 0o755)
        self.prefix, self.uid, self.gid = user_prefix()
        self.jobs = []

    def tearDown(self):
        for j in self.jobs:
            j.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def job(self, name, prefix=None):
        j = Job(self, self.prefix if prefix is None else prefix, name)
        self.jobs.append(j)
        return j

    def uninterrupted(self, name):
        j = self.job(name)
        p = j.launch(ITERS, SLEEP_MS)
        rc, err = j.finish(p)
        self.assertEqual(rc, 0, err)
        return j, read_text(j.out), err

    def test_same_ids_after_restart_as_unprivileged_user(self):
        why = why_not_runnable()
        if why:
            print(f"SKIP test_same_ids_after_restart_as_unprivileged_user: {why}", flush=True)
            self.skipTest(why)
        ref_job, expected, err = self.uninterrupted("ref")
        self.assertNotIn("warning", err)
        lines = expected.splitlines()
        self.assertRegex(lines[0], r"^pid 2 ppid 1 tid 2 workers 3 4$", expected)
        self.assertEqual(lines[1], f"uid {self.uid} euid {self.uid} gid {self.gid} egid {self.gid}")
        self.assertEqual(lines[2].split(), ["start", "CapEff:", "0000000000000000"])
        # the program sees only its own uid mapped (the host's uid_map is "0 0 4294967295")
        self.assertEqual(lines[3].split(), ["uid_map", str(self.uid), str(self.uid), "1"])
        self.assertIn("recursive unlock: ok, ok; error-checking relock: Resource deadlock avoided, unlock: ok",
                      expected)

        j = self.job("cycle")
        p = j.launch(ITERS, SLEEP_MS)
        rec = j.wait_running()
        time.sleep(0.3)
        r = j.ferry("checkpoint", "ids")
        self.assertEqual(r.returncode, 0, r.stderr)
        os.kill(int(rec["pid"]), signal.SIGKILL)  # a node failure; the pid is the host's
        rc, err = j.finish(p)
        self.assertEqual(rc, 128 + signal.SIGKILL, err)
        r = j.ferry("restart", "ids")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("warning", r.stderr)
        got = read_text(j.out)
        self.assertEqual(got, expected, "the restarted job's output differs from an uninterrupted run's")
        for name in ("start.txt", "end.txt"):  # end.txt: created after the restart
            st = os.stat(os.path.join(j.dir, name))
            self.assertEqual((st.st_uid, st.st_gid), (self.uid, self.gid), name)

    def test_root_gets_no_user_namespace(self):
        if os.geteuid() != 0:
            self.skipTest("needs root")
        j = self.job("root", prefix=[])
        p = j.launch("2", "1")
        rc, err = j.finish(p)
        self.assertEqual(rc, 0, err)
        out = read_text(j.out)
        self.assertRegex(out, r"^pid 2 ppid 1 tid 2 ")
        self.assertIn("uid_map 0 0 4294967295", " ".join(out.split()))  # the initial user namespace

    def test_disabled_user_namespaces_fall_back_with_a_warning(self):
        """In a user namespace of ours with user.max_user_namespaces = 0 (the sysctl is per
        namespace), an unprivileged ferry cannot create one: the job runs with new ids and a
        warning naming the sysctl, at launch and at restart."""
        if os.geteuid() != 0:
            self.skipTest("needs root to build a user namespace with user namespaces disabled")
        j = self.job("nouserns")
        self.prefix = []
        launch = LimitedUserns(self, j, ["launch", "--name", "ids", "--", WORKLOAD, ITERS, SLEEP_MS])
        rec = j.wait_running()
        r = j.ferry("checkpoint", "ids", "--stop", prefix=[])  # root may act on any job
        self.assertEqual(r.returncode, 0, r.stderr)
        rc, err = launch.finish()
        self.assertEqual(rc, 75, err)
        self.assertRegex(err, r"warning: job \d+ runs without its own PID namespace.*"
                              r"user\.max_user_namespaces = 0")
        first = read_text(j.out).splitlines()[0]
        self.assertNotRegex(first, r"^pid 2 ", "without a PID namespace the program has a host pid")
        self.assertNotEqual(int(rec["pid"]), 0)
        restart = LimitedUserns(self, j, ["restart", "ids"])
        rc, err = restart.finish()
        self.assertEqual(rc, 0, err)
        self.assertRegex(err, r"warning: job \d+ restarts without its own PID namespace.*"
                              r"user\.max_user_namespaces = 0")
        self.assertIn("done", read_text(j.out))


class LimitedUserns:
    """Runs `ferry ARGS` as nobody inside a user namespace (made by us, root) that maps root
    and nobody and has user.max_user_namespaces = 0: a user namespace of ferry's own fails
    there with ENOSPC, as on a machine where they are disabled."""

    def __init__(self, test, job, args):
        libc = ctypes.CDLL(None, use_errno=True)
        pw = pwd.getpwnam("nobody")
        to_parent, from_child = os.pipe()
        to_child, from_parent = os.pipe()
        out = os.open(job.out, os.O_WRONLY | os.O_APPEND)
        self.err_path = os.path.join(job.dir, f"{args[0]}.err")
        err = os.open(self.err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.fchown(err, pw.pw_uid, pw.pw_gid)  # a restarted program reopens its stderr file
        pid = os.fork()
        if pid == 0:  # child: only raw calls, then exec
            try:
                os.close(to_parent)
                os.close(from_parent)
                if libc.unshare(CLONE_NEWUSER) != 0:
                    os._exit(90)
                os.write(from_child, b"u")
                if os.read(to_child, 1) != b"m":
                    os._exit(91)
                with open("/proc/sys/user/max_user_namespaces", "w") as f:
                    f.write("0\n")
                os.setgroups([])
                os.setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid)
                os.setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid)
                os.dup2(out, 1)
                os.dup2(err, 2)
                os.chdir(job.dir)
                os.execve(FERRY, [FERRY, *args], job.env)
            except BaseException:
                pass
            os._exit(92)
        os.close(from_child)
        os.close(to_child)
        os.close(out)
        os.close(err)
        self.pid = pid
        self.test = test
        test.assertEqual(os.read(to_parent, 1), b"u", "the child could not create a user namespace")
        for f in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{f}", "w") as m:
                m.write(f"0 0 1\n{pw.pw_uid} {pw.pw_uid} 1\n")
        os.write(from_parent, b"m")
        os.close(from_parent)
        os.close(to_parent)

    def finish(self):
        end = time.monotonic() + TIMEOUT
        while time.monotonic() < end:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                return os.waitstatus_to_exitcode(st), read_text(self.err_path)
            time.sleep(0.02)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError("ferry did not end in time: " + read_text(self.err_path))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", required=True)
    ap.add_argument("--workload", required=True)
    a, rest = ap.parse_known_args()
    FERRY, WORKLOAD = os.path.abspath(a.ferry), os.path.abspath(a.workload)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
