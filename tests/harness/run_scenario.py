#!/usr/bin/env python3
# The one generic driver for the zdtm-style scenario tests: runs tests/scenarios/<name>/ (a
# workload plus its scenario.toml) uninterrupted for the reference output, then under
# `ferry launch` with the toml's actions, and compares. Stdlib only. See tests/README.md.
# SPDX-License-Identifier: Apache-2.0
"""Run one scenario and print PASS, FAIL (with the reason and a diff) or SKIP.

Exit status: 0 pass, 1 output or exit status differs from the uninterrupted run, 2 another
check failed (a ferry command's status or message, a timeout, a leftover process), 3 the
scenario or the harness is broken (bad toml, workload missing or failing on its own), 77 skip.

Actions (one string each in `actions`, run in order):
  wait-ready                 wait for the workload's SCENARIO_READY file (setup done)
  wait-file NAME             wait for NAME (relative to the workload's cwd) to exist
  sleep S | sleep-random A B sleep S seconds | a seeded random time in [A, B]
  checkpoint                 `ferry checkpoint JOB`: must exit 0 and print the committed generation
  checkpoint-stop            same with --stop: must exit 0, then the job must end with status 75
  checkpoint-fails           must exit with checkpoint_fail_status (69), name the cause
                             (checkpoint_fail_message) and add no generation; the program must
                             go on making progress
  kill                       SIGKILL the program (a node failure); its ferry command must end
  crash-during-checkpoint A B  start `ferry checkpoint`, SIGKILL the job's ferry process A..B s
                             later, then the program; the client must not hang, and every
                             committed generation must validate
  restart [ARGS]             `ferry restart JOB ARGS` in the background; waits until the restored
                             program makes progress (or ends): its marker file or its stdout
                             grows, or it uses CPU time (see wait_progress)
  restart-refused [ARGS]     `ferry restart` must exit refuse_status with refuse_message on
                             stderr, leave the stdout and marker files untouched, start nothing
  restart-expect N [ARGS]    `ferry restart` must exit N, touching nothing (e.g. 66: not found)
  wait-exit [FILE | --replace OLD NEW]
                             wait for the job to end; its stdout file must equal the
                             uninterrupted run's (or FILE in the scenario folder, or the
                             uninterrupted run's with the one line OLD replaced by NEW), and
                             its exit status the uninterrupted status
  tamper corrupt-image [G]   flip bytes inside the memory data of generation G's image (newest)
  tamper truncate-image [G]  cut generation G's image to half its size
  tamper change-library      change one byte of the scenario's library copy (size/mtime kept)
  tamper restore-library     undo change-library
  inspect [G]                `ferry inspect IMAGE` and `--json` must succeed
ARGS may use @K for the K-th generation committed during this run (e.g. `--generation @1`).

Shorthand: "repeat N: A; B; C" stands for N copies of the actions A, B, C in turn (e.g.
"repeat 4: sleep-random 0.1 0.5; checkpoint; kill; restart"). The driver counts checkpoints
at the end ("10 checkpoints (max ...)").

Hold: under ferry, a workload built with scenario.h waits at exit, its output written, until
"wait-exit" (toml `hold = false` turns this off). So a fast machine or an unlucky seed cannot
end the job before the last checkpoint or kill; checkpoints that find the job held are counted
("N of them after the work had ended": lengthen the workload). Without the hold the driver
refuses (BROKEN) a workload whose uninterrupted run is shorter than 1.3x the longest time the
actions may need it alive (every sleep at its maximum, plus 0.4 s per checkpoint): before
any action with reference = "first", else once the reference run has ended.
"""

import argparse
import ctypes
import difflib
import hashlib
import json
import os
import random
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tomllib

from process_tree import all_pids, children_map, descendants, read_stat, stat_fields

EXIT_PASS, EXIT_MISMATCH, EXIT_FAIL, EXIT_BROKEN, EXIT_SKIP = 0, 1, 2, 3, 77
STATUS_STOPPED = 75          # ferry launch: the job was stopped by `checkpoint --stop`
KILL_GRACE = 30.0            # seconds a ferry command may take to notice its program died
PROGRESS_WAIT = 30.0         # seconds a restored program may take to show progress
CPU_POLL = 0.1               # seconds between samples of the program's CPU time
KNOWN_KEYS = {"description", "args", "actions", "expect", "timeout", "env", "library",
              "refuse_status", "refuse_message", "checkpoint_fail_status",
              "checkpoint_fail_message", "self_checkpoint", "dlopen", "requires",
              "sources_from", "stdout", "compile_flags", "reference", "hold"}
EXPECTS = {"pass", "checkpoint-fails", "restart-refused"}
# Seed of the xorshift block that workloads place in memory (tests/harness/scenario.h) so
# that `tamper corrupt-image` can find their data inside an image.
CORRUPT_SEED = 0x9E3779B97F4A7C15


class Failure(Exception):
    """A check failed; code is the driver's exit status."""

    def __init__(self, message, code=EXIT_FAIL, diff=None):
        super().__init__(message)
        self.code = code
        self.diff = diff


def xorshift_bytes(seed, nbytes):
    out = bytearray()
    x = seed
    mask = (1 << 64) - 1
    while len(out) < nbytes:
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        out += struct.pack("<Q", x)
    return bytes(out[:nbytes])


def read_cpu_ticks(pid):
    """utime + stime of pid's whole thread group in clock ticks, or None when it is gone."""
    rest = stat_fields(pid)
    return None if rest is None else int(rest[11]) + int(rest[12])   # fields 14 and 15 of proc(5)


def is_live(pid):
    st = read_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def kill_pid(pid, sig=signal.SIGKILL):
    """kill(2) that tolerates a process which has already gone (and been reaped)."""
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def file_digest(path):
    if not os.path.exists(path):
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return (os.path.getsize(path), h.hexdigest())


def normalise_status(rc):
    """Popen returncode -> shell-style status (a signal becomes 128+sig, as ferry reports)."""
    return 128 - rc if rc is not None and rc < 0 else rc


def expand_actions(actions, path):
    """The toml's action strings -> argv lists, with "repeat N: A; B" unrolled."""
    out = []
    for a in actions:
        m = re.fullmatch(r"\s*repeat\s+(\d+)\s*:(.*)", a, re.S)
        if not m:
            out.append(shlex.split(a))
            continue
        body = [shlex.split(part) for part in m.group(2).split(";") if part.strip()]
        if not body or int(m.group(1)) < 1:
            raise Failure(f"{path}: {a!r}: repeat needs a count >= 1 and actions", EXIT_BROKEN)
        if any(b[0] in ("repeat", "wait-exit") for b in body):
            raise Failure(f"{path}: {a!r}: repeat cannot hold repeat or wait-exit", EXIT_BROKEN)
        out.extend(list(b) for _ in range(int(m.group(1))) for b in body)
    return out


class Scenario:
    def __init__(self, folder):
        self.folder = os.path.abspath(folder)
        self.name = os.path.basename(self.folder.rstrip("/"))
        path = os.path.join(self.folder, "scenario.toml")
        try:
            with open(path, "rb") as f:
                t = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise Failure(f"cannot read {path}: {e}", EXIT_BROKEN)
        unknown = set(t) - KNOWN_KEYS
        if unknown:
            raise Failure(f"{path}: unknown keys {sorted(unknown)}", EXIT_BROKEN)
        self.description = t.get("description", "")
        self.args = [str(a) for a in t.get("args", [])]
        self.actions = expand_actions(t.get("actions", []), path)
        self.expect = t.get("expect", "pass")
        self.timeout = float(t.get("timeout", 60))
        self.env = {k: str(v) for k, v in t.get("env", {}).items()}
        self.library = t.get("library")
        self.refuse_status = int(t.get("refuse_status", 65))
        self.refuse_message = t.get("refuse_message", ".")
        self.ckfail_status = int(t.get("checkpoint_fail_status", 69))
        self.ckfail_message = t.get("checkpoint_fail_message", ".")
        self.requires = list(t.get("requires", []))
        self.source_name = t.get("sources_from", self.name)
        self.stdout = t.get("stdout", "file")
        # hold: the workload's main process waits at exit until "wait-exit" (scenario.h); off
        # for trees of exec'd workloads, where each program would hold, and for programs we
        # did not write, which must simply be long enough (the driver checks that)
        self.hold = bool(t.get("hold", True))
        # "parallel": the uninterrupted run goes on while ferry runs the job (it only costs
        # wall time when the workload mostly sleeps); "first": before it (CPU-bound or
        # timing-sensitive workloads, where the two would slow or disturb each other)
        self.reference = t.get("reference", "parallel")
        if self.reference not in ("parallel", "first"):
            raise Failure(f"{path}: reference must be parallel or first", EXIT_BROKEN)
        if self.stdout not in ("file", "pipe"):
            raise Failure(f"{path}: stdout must be file or pipe", EXIT_BROKEN)
        if self.expect not in EXPECTS:
            raise Failure(f"{path}: expect must be one of {sorted(EXPECTS)}", EXIT_BROKEN)
        verbs = [a[0] for a in self.actions if a]
        if not verbs or verbs[-1] != "wait-exit":
            raise Failure(f"{path}: actions must end with wait-exit", EXIT_BROKEN)
        if self.stdout == "pipe" and {"kill", "crash-during-checkpoint"} & set(verbs):
            # output written after a checkpoint has left through the pipe and would be printed
            # again by the restarted program: only checkpoint-stop gives a defined output
            raise Failure(f"{path}: stdout = \"pipe\" allows checkpoint-stop, not kill",
                          EXIT_BROKEN)
        self.alive_budget = self.compute_alive_budget()
        needed = {"checkpoint-fails": "checkpoint-fails", "restart-refused": "restart-refused"}
        if self.expect in needed and needed[self.expect] not in verbs:
            raise Failure(f"{path}: expect={self.expect} needs a {needed[self.expect]} action",
                          EXIT_BROKEN)


    # Seconds of the job's own running time a checkpoint may take on a slow machine (the
    # program runs on while its image is written in the background).
    CHECKPOINT_ALLOWANCE = 0.4
    NEEDS_RUNNING = ("checkpoint", "checkpoint-stop", "checkpoint-fails",
                     "crash-during-checkpoint", "kill")

    def compute_alive_budget(self):
        """The longest the job must keep running, in its own time, for every action that
        needs it alive: the sleeps while it runs plus an allowance per checkpoint, up to the
        last action that needs it. A workload whose uninterrupted run is not well above this
        ends early on a fast machine or an unlucky seed: the driver refuses it at once."""
        budget, upto, running = 0.0, 0.0, True
        for a in self.actions:
            verb = a[0]
            if verb == "sleep" and running:
                budget += float(a[1])
            elif verb == "sleep-random" and running:
                budget += float(a[2])
            elif verb in ("checkpoint", "checkpoint-fails", "crash-during-checkpoint"):
                budget += self.CHECKPOINT_ALLOWANCE
            elif verb in ("kill", "checkpoint-stop"):
                running = False
            elif verb in ("restart",):
                running = True
            if verb in self.NEEDS_RUNNING:
                upto = budget
        return upto


class Driver:
    # without the hold, the uninterrupted run must last this many times the actions' budget
    MARGIN = 1.3

    def __init__(self, opts, scn):
        self.opts = opts
        self.scn = scn
        self.ferry = os.path.abspath(opts.ferry)
        self.rng = random.Random(opts.seed)
        self.t0 = time.monotonic()
        self.deadline = None
        self.tmp = tempfile.mkdtemp(prefix=f"ferry-scn-{scn.name}-")
        self.tag = os.path.basename(self.tmp)
        self.popens = []             # every Popen we started, to wait for them
        self.fg = None               # the ferry launch/restart command now running the job
        self.pump = None             # stdout = "pipe": thread copying fg's stdout to the file
        self.fg_kind = None
        self.fg_status = None
        self.fg_count = 0
        self.job_id = None
        self.job_name = f"scn-{scn.name}"
        self.launch_pid = None
        self.generations = []        # (number, path) in commit order
        self.checkpoint_times = []
        self.restart_times = []
        self.notes = []
        self.lib_original = None
        self.hold_file = os.path.join(self.tmp, "job.hold")
        self.held_file = os.path.join(self.tmp, "job.held")
        self.held_checkpoints = 0    # checkpoints that found the job held, its work done
        self.workload = self.find_workload()

    # ----- logging and time -------------------------------------------------------------
    def log(self, msg):
        print(f"[{time.monotonic() - self.t0:7.2f}s] {msg}", flush=True)

    def remaining(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Failure(f"scenario timeout ({self.scn.timeout:.0f} s) exceeded")
        return left

    def wait_until(self, what, pred, limit=None, poll=0.01):
        end = time.monotonic() + (limit if limit is not None else self.remaining())
        while True:
            r = pred()
            if r:
                return r
            if time.monotonic() > min(end, self.deadline):
                raise Failure(f"timed out waiting for {what}")
            time.sleep(poll)

    # ----- setup ------------------------------------------------------------------------
    def find_workload(self):
        for base in (os.path.join(self.opts.build_dir, self.scn.name),
                     os.path.join(self.opts.build_dir, "tests", "scenarios", self.scn.name)):
            exe = os.path.join(base, "workload")
            if os.access(exe, os.X_OK):
                self.build_sub = base
                return exe
        raise Failure(f"workload binary for {self.scn.name} not found under "
                      f"{self.opts.build_dir} (build the tests first)", EXIT_BROKEN)

    def check_requires(self):
        with open("/proc/cpuinfo") as f:
            flags = set()
            for line in f:
                if line.startswith("flags"):
                    flags.update(line.split(":", 1)[1].split())
        for req in self.scn.requires:
            if req == "root":
                if os.geteuid() != 0:
                    return "needs root"
            elif req not in flags:
                return f"CPU lacks {req}"
        return None

    def make_env(self, run):
        env = dict(os.environ)
        env.update(self.scn.env)
        env["SCENARIO_READY"] = os.path.join(self.tmp, f"{run}.ready")
        env["SCENARIO_MARKER"] = os.path.join(self.tmp, f"{run}.marker")
        env["SCENARIO_TAG"] = f"{self.tag}-{run}"
        if run == "job" and self.scn.hold:
            env["SCENARIO_HOLD"] = self.hold_file
            env["SCENARIO_HELD"] = self.held_file
        env["FERRY_HOME"] = os.path.join(self.tmp, "store")
        if self.scn.library:
            # the reference run has its own copy: `tamper change-library` edits the job's
            env["LD_LIBRARY_PATH"] = os.path.join(self.tmp, "ref-lib" if run == "ref" else "lib")
        return env

    def install_library(self):
        if not self.scn.library:
            return
        src = os.path.join(self.build_sub, self.scn.library)
        if not os.path.exists(src):
            raise Failure(f"library {src} not built", EXIT_BROKEN)
        os.makedirs(os.path.join(self.tmp, "lib"))
        os.makedirs(os.path.join(self.tmp, "ref-lib"))
        self.lib_copy = os.path.join(self.tmp, "lib", self.scn.library)
        shutil.copy2(src, self.lib_copy)
        shutil.copy2(src, os.path.join(self.tmp, "ref-lib", self.scn.library))

    # ----- the uninterrupted reference run ----------------------------------------------
    # The workload runs under a tiny subreaper (REF_WRAPPER) so that processes it leaves
    # behind are reparented there, never to the driver: the driver's own checks for leftover
    # processes and its search for the job's program then simply skip the wrapper's tree.
    REF_WRAPPER = (
        "import ctypes, os, signal, sys\n"
        "ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)\n"          # PR_SET_CHILD_SUBREAPER
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.execv(sys.argv[1], sys.argv[1:])\n"
        "while True:\n"
        "    w, st = os.waitpid(-1, 0)\n"
        "    if w == pid:\n"
        "        break\n"
        "try:\n"
        "    left = open(f'/proc/self/task/{os.getpid()}/children').read().split()\n"
        "except OSError:\n"
        "    left = []\n"
        "for c in left:\n"
        "    os.kill(int(c), signal.SIGKILL)\n"
        "for c in left:\n"
        "    os.waitpid(int(c), 0)\n"
        "if os.WIFSIGNALED(st):\n"
        "    signal.signal(os.WTERMSIG(st), signal.SIG_DFL)\n"
        "    os.kill(os.getpid(), os.WTERMSIG(st))\n"
        "sys.exit(os.WEXITSTATUS(st))\n")

    def start_reference(self):
        work = os.path.join(self.tmp, "ref-work")
        os.makedirs(work)
        self.ref_paths = (os.path.join(self.tmp, "ref.stdout"), os.path.join(self.tmp, "ref.stderr"))
        self.ref_env = self.make_env("ref")
        self.log(f"uninterrupted run ({self.scn.reference}): {self.workload} "
                 f"{' '.join(self.scn.args)}")
        self.ref_t0 = time.monotonic()
        with open(self.ref_paths[0], "wb") as fo, open(self.ref_paths[1], "wb") as fe:
            self.ref_proc = self.spawn([sys.executable, "-c", self.REF_WRAPPER, self.workload] +
                                       self.scn.args, stdout=fo, stderr=fe, cwd=work,
                                       env=self.ref_env)
        self.ref_done = False

    def ref_tree(self):
        """The reference run's wrapper and everything below it, while it runs."""
        p = getattr(self, "ref_proc", None)
        if p is None or p.poll() is not None:
            return set()
        return {p.pid} | set(descendants(p.pid))

    @property
    def ref_status(self):
        self.finish_reference()
        return self._ref_status

    @property
    def ref_stdout(self):
        self.finish_reference()
        return self._ref_stdout

    def finish_reference(self):
        """Waits for the reference run (bounded by the timeout) and checks it."""
        if self.ref_done:
            return
        self.ref_done = True
        out, err = self.ref_paths
        try:
            rc = self.ref_proc.wait(timeout=max(1.0, self.ref_t0 + self.scn.timeout -
                                                time.monotonic()))
        except subprocess.TimeoutExpired:
            raise Failure("the uninterrupted run did not finish within the timeout",
                          EXIT_BROKEN)
        env = self.ref_env
        self._ref_status = normalise_status(rc)
        self.ref_seconds = time.monotonic() - self.ref_t0
        with open(out, "rb") as f:
            self._ref_stdout = f.read()
        self.log(f"uninterrupted run: status {self._ref_status}, {len(self._ref_stdout)} bytes "
                 f"of stdout, {self.ref_seconds:.2f} s")
        if self._ref_status != 0:
            raise Failure(f"the workload fails on its own (status {self._ref_status}): "
                          f"{open(err, errors='replace').read()[-2000:]}", EXIT_BROKEN)
        if not os.path.exists(env["SCENARIO_READY"]):
            raise Failure("the workload never created its SCENARIO_READY file", EXIT_BROKEN)
        budget = self.scn.alive_budget
        if self.scn.hold or not budget:
            return
        self.log(f"actions need the job alive for up to {budget:.2f} s of its run "
                 f"({self.ref_seconds / budget:.1f}x that)")
        if self.ref_seconds < self.MARGIN * budget:
            raise Failure(f"the workload is too short for its actions: its uninterrupted run "
                          f"takes {self.ref_seconds:.2f} s, the actions need it alive for up to "
                          f"{budget:.2f} s and {self.MARGIN}x that is required (a faster machine "
                          "or another seed would see it end first)", EXIT_BROKEN)
        self.reap_orphans()

    # ----- processes --------------------------------------------------------------------
    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **kw)
        self.popens.append(p)
        return p

    def reap_orphans(self):
        """We are a child subreaper: collect orphans (not our Popens) that have exited."""
        mine = {p.pid for p in self.popens}
        me = os.getpid()
        for pid in all_pids():
            st = read_stat(pid)
            if st and st[1] == me and pid not in mine and st[0] == "Z":
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass

    def live_descendants(self, with_reference=False):
        """Live processes below the driver (the job's), without the reference run's unless
        asked (cleanup)."""
        self.reap_orphans()
        mine = {p.pid: p for p in self.popens}
        skip = set() if with_reference else self.ref_tree()
        out = []
        for pid in descendants(os.getpid()):
            if not is_live(pid) or pid in skip:
                continue
            if pid in mine and mine[pid].poll() is not None:
                continue
            out.append(pid)
        return out

    def fg_alive(self):
        return self.fg is not None and self.fg.poll() is None

    def fg_files(self, n=None):
        n = self.fg_count if n is None else n
        return (os.path.join(self.tmp, f"cmd-{n}.stdout"),
                os.path.join(self.tmp, f"cmd-{n}.stderr"))

    def tail(self, path, limit=3000):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return "(missing)"
        text = data[-limit:].decode(errors="replace").rstrip()
        return text if text else "(empty)"

    def start_fg(self, kind, argv, cwd):
        self.fg_count += 1
        out_path, err_path = self.fg_files()
        if kind == "launch":
            out_path = self.job_stdout
        self.log(f"start: {' '.join(shlex.quote(a) for a in argv)}")
        if self.scn.stdout == "pipe":
            # the job's output is what comes out of the pipes of launch and every restart
            if kind == "launch":
                open(self.job_stdout, "wb").close()
            with open(err_path, "wb") as fe:
                self.fg = self.spawn(argv, stdout=subprocess.PIPE, stderr=fe, cwd=cwd,
                                     env=self.env)
            self.pump = threading.Thread(target=self.copy_pipe, daemon=True,
                                         args=(self.fg.stdout, self.job_stdout))
            self.pump.start()
        else:
            with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
                self.fg = self.spawn(argv, stdout=fo, stderr=fe, cwd=cwd, env=self.env)
        self.fg_kind = kind
        self.fg_status = None

    @staticmethod
    def copy_pipe(pipe, path):
        with open(path, "ab") as f:
            for chunk in iter(lambda: pipe.read1(65536), b""):
                f.write(chunk)
                f.flush()
        pipe.close()

    def wait_fg(self, limit, what):
        try:
            rc = self.fg.wait(timeout=min(limit, self.remaining()))
        except subprocess.TimeoutExpired:
            raise Failure(f"`ferry {self.fg_kind}` did not end {what} "
                          f"(waited {limit:.0f} s); its stderr: {self.tail(self.fg_files()[1])}")
        if self.pump is not None:
            self.pump.join(timeout=10)
            if self.pump.is_alive():
                raise Failure(f"the stdout pipe of `ferry {self.fg_kind}` stays open after it "
                              f"ended: {self.describe_procs()}")
            self.pump = None
        self.fg_status = normalise_status(rc)
        return self.fg_status

    def job_json(self):
        if not self.job_id:
            return None
        path = os.path.join(self.store, "jobs", self.job_id, "job.json")
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def workload_pid(self):
        """The process now running the job's program (a descendant of this driver)."""
        mine = set(self.live_descendants())
        j = self.job_json()
        jp = int(j["pid"]) if j and str(j.get("pid", "")).isdigit() else None
        if jp in mine:
            return jp
        if self.fg_kind == "launch" and self.launch_pid in mine:
            return self.launch_pid
        real = os.path.realpath(self.workload)
        for pid in sorted(mine):
            try:
                if os.path.realpath(f"/proc/{pid}/exe") == real:
                    note = f"job.json pid {jp} is not the running program; found it as {pid}"
                    if note not in self.notes:
                        self.notes.append(note)
                        self.log("note: " + note)
                    return pid
            except OSError:
                pass
        return None

    # ----- store helpers ----------------------------------------------------------------
    def gen_dirs(self):
        if not self.job_id:
            return []
        base = os.path.join(self.store, "jobs", self.job_id)
        try:
            return sorted(d for d in os.listdir(base) if d.startswith("gen-"))
        except OSError:
            return []

    def image_of(self, gen_ref=None):
        if not self.generations:
            raise Failure("no generation was committed in this run", EXIT_BROKEN)
        if gen_ref is None:
            num = self.generations[-1][0]
        else:
            num = int(self.subst(gen_ref))
        path = os.path.join(self.store, "jobs", self.job_id, f"gen-{num:06d}", "rank-0.h5")
        for n, p in self.generations:
            if n == num and os.path.isfile(p):
                path = p
            elif n == num and os.path.isdir(p):
                path = os.path.join(p, "rank-0.h5")
        if not os.path.isfile(path):
            raise Failure(f"image of generation {num} not found at {path}")
        return path

    def subst(self, arg):
        """@K -> number of the K-th generation committed in this run."""
        m = re.fullmatch(r"@(\d+)", arg)
        if not m:
            return arg
        k = int(m.group(1))
        if k < 1 or k > len(self.generations):
            raise Failure(f"@{k}: only {len(self.generations)} generations committed",
                          EXIT_BROKEN)
        return str(self.generations[k - 1][0])

    # ----- observations used by several actions ----------------------------------------
    def marker_size(self):
        try:
            return os.path.getsize(self.marker)
        except OSError:
            return 0

    def stdout_size(self):
        try:
            return os.path.getsize(self.job_stdout)
        except OSError:
            return 0

    def program_cpu(self):
        """(pid, CPU ticks of it and every process below it) of the program the job record
        names as running, when that process is alive below us; else None. A restart records
        the restored program only once it is rebuilt, so the restore's own work (remote
        system calls run in the child) is not counted."""
        j = self.job_json()
        if not j or j.get("state") != "running" or not str(j.get("pid", "")).isdigit():
            return None
        pid = int(j["pid"])
        children = children_map()
        if pid not in descendants(os.getpid(), children) or not is_live(pid):
            return None
        return pid, sum(read_cpu_ticks(p) or 0 for p in [pid] + descendants(pid, children))

    def wait_progress(self, what, limit=PROGRESS_WAIT):
        """Wait until the program shows progress; returns how ("marker", "stdout", "cpu"), or
        None when the job ended first. Progress: the marker file grows (scn_tick), the job's
        stdout file grows, or the running program's processes use CPU time (a program that
        does not call scn_tick, e.g. zstd, computing). Files may shrink first: a restart
        truncates them back to their checkpoint size."""
        low, low_out = self.marker_size(), self.stdout_size()
        end = time.monotonic() + limit
        cpu_first, next_cpu = None, time.monotonic()
        while True:
            size, out = self.marker_size(), self.stdout_size()
            if size > low:
                return "marker"
            if out > low_out:
                return "stdout"
            low, low_out = min(low, size), min(low_out, out)
            now = time.monotonic()
            if now >= next_cpu:
                next_cpu = now + CPU_POLL
                cpu = self.program_cpu()
                if cpu is not None and (cpu_first is None or cpu[0] != cpu_first[0]):
                    cpu_first = cpu
                elif cpu is not None and cpu[1] > cpu_first[1]:
                    return "cpu"
            if not self.fg_alive():
                return None
            if now > min(end, self.deadline):
                cpu_note = (f", CPU time of process {cpu_first[0]} stays at {cpu_first[1]} ticks"
                            if cpu_first else ", no running program recorded in job.json")
                raise Failure(f"timed out waiting for {what} (the program shows no progress: "
                              f"marker file stays at {size} bytes, stdout at {out} bytes"
                              f"{cpu_note})")
            time.sleep(0.01)

    def expected_output(self, args):
        """wait-exit's arguments -> (expected bytes, label)."""
        if not args:
            return self.ref_stdout, "uninterrupted run"
        if args[0] == "--replace":
            if len(args) != 3:
                raise Failure("wait-exit --replace takes OLD-LINE NEW-LINE", EXIT_BROKEN)
            old, new = args[1].encode() + b"\n", args[2].encode() + b"\n"
            lines = self.ref_stdout.splitlines(keepends=True)
            if lines.count(old) != 1:
                raise Failure(f"wait-exit --replace: {args[1]!r} occurs {lines.count(old)} "
                              "times in the uninterrupted output, not once", EXIT_BROKEN)
            return b"".join(new if line == old else line for line in lines), \
                f"uninterrupted run with {args[1]!r} -> {args[2]!r}"
        if len(args) != 1:
            raise Failure(f"wait-exit: unexpected arguments {args}", EXIT_BROKEN)
        with open(os.path.join(self.scn.folder, args[0]), "rb") as f:
            return f.read(), args[0]

    def compare_output(self, args):
        with open(self.job_stdout, "rb") as f:
            got = f.read()
        want, label = self.expected_output(args)
        if got != want:
            diff = list(difflib.unified_diff(
                want.decode(errors="replace").splitlines(),
                got.decode(errors="replace").splitlines(),
                fromfile=f"expected ({label})", tofile="under ferry", lineterm="", n=2))
            if not diff:
                diff = [f"(same lines, different bytes: {len(want)} expected, {len(got)} got)"]
            if len(diff) > 80:
                diff = diff[:80] + [f"... ({len(diff) - 80} more diff lines)"]
            raise Failure(f"stdout differs from the {label} ({len(got)} bytes vs "
                          f"{len(want)})", EXIT_MISMATCH, diff)
        return len(got)

    # ----- actions ----------------------------------------------------------------------
    def run_ferry(self, args, what):
        argv = [self.ferry] + args
        t = time.monotonic()
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                               env=self.env, cwd=self.tmp, timeout=self.remaining())
        except subprocess.TimeoutExpired:
            raise Failure(f"`{' '.join(argv[1:])}` did not finish within the scenario timeout")
        dt = time.monotonic() - t
        out = p.stdout.decode(errors="replace")
        err = p.stderr.decode(errors="replace")
        self.log(f"{what}: `ferry {' '.join(args)}` -> {p.returncode} in {dt:.2f} s"
                 + (f"\n    stdout: {out.strip()[:600]}" if out.strip() else "")
                 + (f"\n    stderr: {err.strip()[-1500:]}" if err.strip() else ""))
        return p.returncode, out, err, dt

    def do_launch(self):
        argv = [self.ferry, "launch", "--store", self.store, "--name", self.job_name, "--",
                self.workload] + self.scn.args
        self.start_fg("launch", argv, cwd=self.workdir)
        err_path = self.fg_files()[1]
        rx = re.compile(r"ferry: job (\S+) launched \(pid (\d+)\)")

        def launched():
            try:
                with open(err_path, errors="replace") as f:
                    m = rx.search(f.read())
            except OSError:
                m = None
            if m:
                return m
            if not self.fg_alive():
                raise Failure(f"`ferry launch` ended with status "
                              f"{normalise_status(self.fg.returncode)} before printing its job "
                              f"line; stderr: {self.tail(err_path)}")
            return None

        m = self.wait_until("the `ferry: job ID launched (pid P)` line", launched)
        self.job_id, self.launch_pid = m.group(1), int(m.group(2))
        self.log(f"job {self.job_id} launched, program pid {self.launch_pid}")
        j = self.job_json()
        if j is None:
            self.wait_until(f"{self.store}/jobs/{self.job_id}/job.json",
                            lambda: self.job_json() is not None, limit=10)
            j = self.job_json()
        for key in ("id", "name", "pid"):
            if key not in j:
                raise Failure(f"job.json lacks \"{key}\": {j}")

    def act_wait_ready(self, args):
        path = self.env["SCENARIO_READY"]

        def ready():
            if os.path.exists(path):
                return True
            if not self.fg_alive():
                raise Failure(f"the job ended (status {normalise_status(self.fg.returncode)}) "
                              f"before it was ready; stderr: {self.tail(self.fg_files()[1])}")
            return False
        self.wait_until("the workload to be ready", ready)

    def act_wait_file(self, args):
        path = os.path.join(self.workdir, args[0])
        self.wait_until(f"file {args[0]}", lambda: os.path.exists(path))

    def act_sleep(self, args):
        time.sleep(min(float(args[0]), self.remaining()))

    def act_sleep_random(self, args):
        s = self.rng.uniform(float(args[0]), float(args[1]))
        self.log(f"sleep {s:.3f} s")
        time.sleep(min(s, self.remaining()))

    def require_running(self, verb):
        if not self.fg_alive():
            raise Failure(f"cannot {verb}: the job already ended (status "
                          f"{normalise_status(self.fg.returncode) if self.fg else None}); the "
                          "scenario's workload is too short for its actions", EXIT_BROKEN)

    def committed(self, out, what):
        m = re.search(r"generation (\d+) committed: (\S.*)", out)
        if not m:
            raise Failure(f"{what} printed no `generation N committed: PATH` line: {out!r}")
        num, path = int(m.group(1)), m.group(2).strip()
        if not os.path.exists(path):
            raise Failure(f"{what} reports {path}, which does not exist")
        gen_dir = path if os.path.isdir(path) else os.path.dirname(path)
        if not os.path.exists(os.path.join(gen_dir, "MANIFEST.json")):
            raise Failure(f"generation {num} has no MANIFEST.json in {gen_dir}")
        if self.generations and num <= max(n for n, _ in self.generations):
            raise Failure(f"generation {num} is not newer than {self.generations[-1][0]}")
        self.generations.append((num, path))
        if os.path.exists(self.held_file):
            self.held_checkpoints += 1
            self.log(f"generation {num} was taken while the job was held, its work done "
                     "(the workload is short for this moment)")
        return num

    def act_checkpoint(self, args):
        # args are passed to `ferry checkpoint` (e.g. --incremental, --keep 2)
        self.require_running("checkpoint")
        rc, out, err, dt = self.run_ferry(["checkpoint", "--store", self.store,
                                           self.job_name] + list(args), "checkpoint")
        if rc != 0:
            raise Failure(f"`ferry checkpoint` exited {rc}: {err.strip()[-1500:]}")
        num = self.committed(out, "checkpoint")
        self.checkpoint_times.append(dt)
        if not self.fg_alive() and self.fg_status is None:
            st = self.wait_fg(1, "")
            if st != self.ref_status:
                raise Failure(f"the program died during or after checkpoint {num}: "
                              f"`ferry {self.fg_kind}` status {st}; stderr: "
                              f"{self.tail(self.fg_files()[1])}")

    def act_checkpoint_stop(self, args):
        self.require_running("checkpoint --stop")
        rc, out, err, dt = self.run_ferry(["checkpoint", "--store", self.store,
                                           self.job_name, "--stop"], "checkpoint --stop")
        if rc != 0:
            raise Failure(f"`ferry checkpoint --stop` exited {rc}: {err.strip()[-1500:]}")
        self.committed(out, "checkpoint --stop")
        self.checkpoint_times.append(dt)
        st = self.wait_fg(KILL_GRACE, "after checkpoint --stop")
        if self.fg_kind == "launch" and st != STATUS_STOPPED:
            raise Failure(f"`ferry launch` exited {st} after checkpoint --stop, expected "
                          f"{STATUS_STOPPED}")
        self.log(f"`ferry {self.fg_kind}` ended with status {st} after --stop")
        self.check_no_leftovers("after checkpoint --stop")

    def act_checkpoint_fails(self, args):
        self.require_running("checkpoint")
        before = self.gen_dirs()
        rc, out, err, dt = self.run_ferry(["checkpoint", "--store", self.store,
                                           self.job_name], "checkpoint (must fail)")
        if rc != self.scn.ckfail_status:
            raise Failure(f"`ferry checkpoint` exited {rc}, expected "
                          f"{self.scn.ckfail_status}; stdout {out!r} stderr {err!r}")
        if not re.search(self.scn.ckfail_message, err, re.I):
            raise Failure(f"`ferry checkpoint` stderr does not name the cause "
                          f"(/{self.scn.ckfail_message}/): {err!r}")
        after = self.gen_dirs()
        if after != before:
            raise Failure(f"a failed checkpoint changed the generations: {before} -> {after}")
        if not self.wait_progress("the program to go on after the failed checkpoint", 10):
            if self.fg_status is None:
                self.wait_fg(1, "")
            if normalise_status(self.fg.returncode) != self.ref_status:
                raise Failure(f"the program died after the failed checkpoint: status "
                              f"{normalise_status(self.fg.returncode)}")

    def act_crash_during_checkpoint(self, args):
        """SIGKILL the job's ferry process (the supervisor that captures) while a checkpoint
        runs: the previous generations must stay restorable, a new one is committed whole or
        not at all, and the `ferry checkpoint` client must not hang."""
        self.require_running("checkpoint")
        before = set(self.gen_dirs())
        pid = self.workload_pid()
        delay = self.rng.uniform(float(args[0]), float(args[1]))
        n = len(self.checkpoint_times) + len(self.restart_times) + 1
        out_path = os.path.join(self.tmp, f"crash-{n}.stdout")
        err_path = os.path.join(self.tmp, f"crash-{n}.stderr")
        with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
            client = self.spawn([self.ferry, "checkpoint", "--store", self.store, self.job_name],
                                stdout=fo, stderr=fe, cwd=self.tmp, env=self.env)
        # the capture has begun once its generation directory exists (or it is already over)
        started = self.wait_until("the checkpoint to start writing",
                                  lambda: (set(self.gen_dirs()) - before) or
                                  client.poll() is not None, limit=30, poll=0.001)
        if client.poll() is not None and client.returncode != 0:
            raise Failure(f"`ferry checkpoint` failed ({client.returncode}) before the crash "
                          f"could be injected: {self.tail(err_path)}")
        time.sleep(delay)
        self.log(f"kill -9 `ferry {self.fg_kind}` (pid {self.fg.pid}) {delay:.3f} s after "
                 f"{sorted(started) if isinstance(started, set) else 'the commit'} appeared")
        kill_pid(self.fg.pid)
        self.wait_fg(KILL_GRACE, "after SIGKILL")
        try:
            rc = client.wait(timeout=min(KILL_GRACE, self.remaining()))
        except subprocess.TimeoutExpired:
            raise Failure("`ferry checkpoint` hangs after the job's supervisor was killed; "
                          f"stderr: {self.tail(err_path)}")
        self.log(f"`ferry checkpoint` -> {rc}; stdout: {self.tail(out_path, 300)}; stderr: "
                 f"{self.tail(err_path, 600)}")
        # the program outlives its supervisor (it is ours now, as subreaper): a node failure
        left = pid if pid is not None and is_live(pid) else self.workload_pid()
        if left is not None:
            self.log(f"kill -9 {left} (the program, orphaned)")
            kill_pid(left)
            self.wait_until(f"process {left} to be gone", lambda: not is_live(left), limit=10)
        self.check_no_leftovers("after the crash")
        new = sorted(set(self.gen_dirs()) - before)
        base = os.path.join(self.store, "jobs", self.job_id)
        # committed = renamed to gen-N with its manifest; a gen-N.partial may hold a manifest
        # already (the crash came between writing it and the rename): not committed
        def is_committed(d):
            return re.fullmatch(r"gen-\d+", d) is not None and \
                os.path.exists(os.path.join(base, d, "MANIFEST.json"))
        for d in sorted(self.gen_dirs()):
            if not is_committed(d):
                continue
            image = os.path.join(base, d, "rank-0.h5")
            rc2, _, err, _ = self.run_ferry(["inspect", "--store", self.store, image],
                                            f"inspect {d}")
            if rc2 != 0:
                raise Failure(f"after the crash, committed generation {d} does not validate: "
                              f"{err.strip()[-800:]}")
            if d in new:
                num = int(d.split("-")[1])
                self.generations.append((num, os.path.join(base, d)))
        committed_new = [d for d in new if is_committed(d)]
        self.log(f"new generation directories: {new or 'none'}; committed: "
                 f"{committed_new or 'none'}")
        if rc == 0 and not committed_new:
            raise Failure("`ferry checkpoint` exited 0 but no new generation is committed")

    def act_kill(self, args):
        self.require_running("kill")
        pid = self.workload_pid()
        if pid is None:
            raise Failure("cannot find the program's process to kill (job.json pid and the "
                          f"processes below the driver: {self.describe_procs()})")
        self.log(f"kill -9 {pid} ({cmdline(pid)})")
        kill_pid(pid)
        st = self.wait_fg(KILL_GRACE, f"after its program {pid} was killed")
        self.log(f"`ferry {self.fg_kind}` ended with status {st}")
        if st != 137:
            raise Failure(f"`ferry {self.fg_kind}` exited {st} after SIGKILL of its program, "
                          "expected 137 (128+SIGKILL)")
        self.wait_until(f"process {pid} to be gone", lambda: not is_live(pid), limit=10)
        self.check_no_leftovers("after kill")

    def restart_argv(self, args):
        return [self.ferry, "restart", "--store", self.store, self.job_name] + \
            [self.subst(a) for a in args]

    def act_restart(self, args):
        if self.fg_alive():
            raise Failure("restart while the job still runs: fix the scenario", EXIT_BROKEN)
        t = time.monotonic()
        if os.path.exists(self.held_file):
            os.unlink(self.held_file)   # the restarted program has its work to finish again
        if self.scn.hold:
            open(self.hold_file, "w").close()   # again, after an earlier wait-exit
        self.start_fg("restart", self.restart_argv(args), cwd=self.tmp)
        running = self.wait_progress("the restarted program to run")
        dt = time.monotonic() - t
        self.restart_times.append(dt)
        if running:
            self.log(f"restarted program is running after {dt:.2f} s (pid "
                     f"{self.workload_pid()}; progress seen: {running})")
        else:
            st = self.wait_fg(1, "")
            self.log(f"`ferry restart` ended with status {st} before showing progress")
            if st != self.ref_status:
                raise Failure(f"`ferry restart` exited {st}; stderr: "
                              f"{self.tail(self.fg_files()[1])}")

    def refused(self, args, status, message):
        if self.fg_alive():
            raise Failure("restart while the job still runs: fix the scenario", EXIT_BROKEN)
        before = (file_digest(self.job_stdout), file_digest(self.marker))
        rc, out, err, dt = self.run_ferry(self.restart_argv(args)[1:], "restart (must refuse)")
        if rc != status:
            raise Failure(f"`ferry restart` exited {rc}, expected {status}; stderr: "
                          f"{err.strip()[-1500:]!r}")
        if not err.strip() or not re.search(message, err, re.I):
            raise Failure(f"`ferry restart` stderr does not name the problem (/{message}/): "
                          f"{err!r}")
        time.sleep(0.3)
        after = (file_digest(self.job_stdout), file_digest(self.marker))
        if after[0] != before[0]:
            raise Failure("the refused restart changed the job's stdout file "
                          f"({before[0][0] if before[0] else None} -> "
                          f"{after[0][0] if after[0] else None} bytes): something was restored")
        if after[1] != before[1]:
            raise Failure("the refused restart ran part of the program (its marker file "
                          "changed)")
        self.check_no_leftovers("after the refused restart")

    def act_restart_refused(self, args):
        self.refused(args, self.scn.refuse_status, self.scn.refuse_message)

    def act_restart_expect(self, args):
        self.refused(args[1:], int(args[0]), ".")

    def act_wait_exit(self, args):
        if self.fg is None:
            raise Failure("wait-exit without a launch or restart", EXIT_BROKEN)
        if os.path.exists(self.hold_file):
            os.unlink(self.hold_file)   # the job may end now
        st = self.fg_status if self.fg_status is not None else \
            self.wait_fg(self.remaining(), "before the scenario timeout")
        self.log(f"`ferry {self.fg_kind}` ended with status {st}")
        n = self.compare_output(args)
        if st != self.ref_status:
            raise Failure(f"exit status {st} differs from the uninterrupted run's "
                          f"{self.ref_status}; stderr: {self.tail(self.fg_files()[1])}",
                          EXIT_MISMATCH)
        self.log(f"stdout ({n} bytes) and status {st} match")
        self.check_no_leftovers("after the job ended")

    def act_tamper(self, args):
        what = args[0]
        if what == "corrupt-image":
            path = self.image_of(args[1] if len(args) > 1 else None)
            with open(path, "r+b") as f:
                data = f.read()
                probe = xorshift_bytes(CORRUPT_SEED, 4096)[1024:1088]
                at = data.find(probe)
                how = "inside the workload's xorshift block"
                if at < 0:
                    at = int(len(data) * 0.6)
                    how = "at 60% of the file (memory data not found verbatim)"
                f.seek(at)
                f.write(bytes(b ^ 0xA5 for b in data[at:at + 16]))
            self.log(f"corrupted 16 bytes of {path} at offset {at}, {how}")
        elif what == "truncate-image":
            path = self.image_of(args[1] if len(args) > 1 else None)
            size = os.path.getsize(path)
            os.truncate(path, size // 2)
            self.log(f"truncated {path} from {size} to {size // 2} bytes")
        elif what in ("change-library", "restore-library"):
            if not self.scn.library:
                raise Failure("tamper change-library needs `library` in the toml", EXIT_BROKEN)
            st = os.stat(self.lib_copy)
            with open(self.lib_copy, "r+b") as f:
                at = st.st_size // 2
                f.seek(at)
                b = f.read(1)[0]
                if what == "change-library":
                    self.lib_original = (at, b)
                    nb = b ^ 0x01
                else:
                    at, nb = self.lib_original
                f.seek(at)
                f.write(bytes([nb]))
            os.utime(self.lib_copy, ns=(st.st_atime_ns, st.st_mtime_ns))
            self.log(f"{what}: byte at offset {at} of {self.lib_copy} is now {nb:#04x} "
                     "(size and mtime unchanged)")
        else:
            raise Failure(f"unknown tamper {what}", EXIT_BROKEN)

    def act_inspect(self, args):
        path = self.image_of(args[0] if args else None)
        rc, out, err, _ = self.run_ferry(["inspect", "--store", self.store, path], "inspect")
        if rc != 0:
            raise Failure(f"`ferry inspect {path}` exited {rc}: {err.strip()[-1500:]}")
        rc, out, err, _ = self.run_ferry(["inspect", "--store", self.store, "--json", path],
                                         "inspect --json")
        if rc != 0:
            raise Failure(f"`ferry inspect --json` exited {rc}: {err.strip()[-1500:]}")
        try:
            json.loads(out)
        except ValueError as e:
            raise Failure(f"`ferry inspect --json` output is not JSON: {e}")

    # ----- leftovers and cleanup --------------------------------------------------------
    def describe_procs(self):
        return ", ".join(f"{p} [{cmdline(p)[:80]}]" for p in self.live_descendants()) or "none"

    def check_no_leftovers(self, when):
        """Once the job has ended, nothing ferry started may keep running."""
        if self.fg_alive():
            return
        try:
            self.wait_until("leftover processes to end", lambda: not self.live_descendants(),
                            limit=3, poll=0.05)
        except Failure:
            raise Failure(f"processes left running {when}: {self.describe_procs()}")

    def cleanup(self):
        for _ in range(20):
            left = self.live_descendants(with_reference=True)
            if not left:
                break
            for pid in left:
                kill_pid(pid)
            time.sleep(0.05)
        for p in self.popens:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.log(f"warning: process {p.pid} did not end")
        self.reap_orphans()
        for name in os.listdir("/dev/shm"):
            if name.startswith(self.tag):
                try:
                    os.unlink(os.path.join("/dev/shm", name))
                except OSError:
                    pass
        if self.opts.keep:
            self.log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ----- main -------------------------------------------------------------------------
    def run(self):
        self.log(f"scenario {self.scn.name}: {self.scn.description}")
        self.log(f"seed {self.opts.seed} (rerun with --seed {self.opts.seed})")
        skip = self.check_requires()
        if skip:
            print(f"SKIP {self.scn.name}: {skip}", flush=True)
            return EXIT_SKIP
        self.install_library()
        self.start_reference()
        if self.scn.reference == "first":
            self.finish_reference()
        self.deadline = time.monotonic() + self.scn.timeout
        self.store = os.path.join(self.tmp, "store")
        self.workdir = os.path.join(self.tmp, "work")
        os.makedirs(self.workdir)
        self.job_stdout = os.path.join(self.tmp, "job.stdout")
        self.env = self.make_env("job")
        self.marker = self.env["SCENARIO_MARKER"]
        if self.scn.hold:
            open(self.hold_file, "w").close()
        if not os.access(self.ferry, os.X_OK):
            raise Failure(f"ferry binary {self.ferry} not found (is the CLI built?)", EXIT_FAIL)
        self.do_launch()
        for action in self.scn.actions:
            verb, args = action[0], action[1:]
            fn = getattr(self, "act_" + verb.replace("-", "_"), None)
            if fn is None:
                raise Failure(f"unknown action {verb!r}", EXIT_BROKEN)
            self.log(f"action: {' '.join(action)}")
            fn(args)
        return EXIT_PASS


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ferry", required=True, help="path of the ferry CLI")
    ap.add_argument("--build-dir", required=True,
                    help="folder holding <scenario>/workload (tests' build folder)")
    ap.add_argument("--seed", type=int, default=None,
                    help="seed of the random moments (default: $SCENARIO_SEED, else random)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("scenario")
    opts = ap.parse_args()
    opts.build_dir = os.path.abspath(opts.build_dir)
    if opts.seed is None and os.environ.get("SCENARIO_SEED", "").isdigit():
        opts.seed = int(os.environ["SCENARIO_SEED"])
    if opts.seed is None:
        opts.seed = int.from_bytes(os.urandom(4), "little")
    # Become a child subreaper so that every process ferry starts stays below us, however
    # it forks, and can be found, ended and reaped by PID.
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    name = os.path.basename(os.path.abspath(opts.scenario))
    driver = None
    try:
        scn = Scenario(opts.scenario)
        driver = Driver(opts, scn)
        code = driver.run()
        if code == EXIT_PASS:
            extra = ""
            if driver.checkpoint_times:
                extra += f", {len(driver.checkpoint_times)} checkpoints (max " \
                         f"{max(driver.checkpoint_times):.2f} s)"
            if driver.held_checkpoints:
                extra += f", {driver.held_checkpoints} of them after the work had ended"
            if driver.restart_times:
                extra += f", {len(driver.restart_times)} restarts (max " \
                         f"{max(driver.restart_times):.2f} s)"
            print(f"PASS {name} (seed {opts.seed}{extra})", flush=True)
    except Failure as f:
        code = f.code
        kind = {EXIT_MISMATCH: "FAIL", EXIT_FAIL: "FAIL", EXIT_BROKEN: "BROKEN"}[code]
        print(f"{kind} {name} (seed {opts.seed}): {f}", flush=True)
        if f.diff:
            print("\n".join(f.diff), flush=True)
        if driver is not None and driver.notes:
            print("notes: " + "; ".join(driver.notes), flush=True)
    except Exception:  # a harness bug must not look like a test result (exit 1)
        import traceback
        traceback.print_exc()
        print(f"BROKEN {name}: internal error in the driver", flush=True)
        code = EXIT_BROKEN
    finally:
        if driver is not None:
            driver.cleanup()
    return code


if __name__ == "__main__":
    sys.exit(main())
