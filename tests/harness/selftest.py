#!/usr/bin/env python3
# Self-test of run_scenario.py (ctest scenario.driver_selftest): with a fake ferry, the driver
# must PASS a scenario whose expected output is right (also through checkpoint, kill and
# restart actions, some written with the `repeat N:` shorthand) and FAIL (status 1, with a diff
# naming the differing line) one whose expected output is deliberately wrong; a malformed
# repeat is BROKEN (status 3). A restarted program that never calls scn_tick() shows its
# progress by its CPU time (PASS, "progress seen: cpu"); one that neither ticks, prints nor
# computes after its restart makes the driver FAIL (status 2) naming the lack of progress. A
# workload shorter than its actions passes when held at exit (scenario.h) and is BROKEN (3)
# without the hold.
# SPDX-License-Identifier: Apache-2.0
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run(build_dir, scenario):
    folder = scenario if os.path.isabs(scenario) else os.path.join(HERE, "selftest", scenario)
    argv = [sys.executable, os.path.join(HERE, "run_scenario.py"), "--ferry",
            os.path.join(HERE, "fake_ferry.py"), "--build-dir", build_dir, "--seed", "1",
            folder]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    print(f"--- {scenario}: status {p.returncode}\n{p.stdout}{p.stderr}")
    return p.returncode, p.stdout


def scratch_scenario(tmp, case, toml):
    """A scenario folder named `echo` (so the driver uses the echo workload) under tmp/case."""
    folder = os.path.join(tmp, case, "echo")
    os.makedirs(folder)
    with open(os.path.join(folder, "scenario.toml"), "w") as f:
        f.write(toml)
    return folder


def main():
    build_dir = sys.argv[1]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        # ~1.8 s of CPU and no scn_tick(): progress after the restart is CPU time only
        rc, out = run(build_dir, scratch_scenario(tmp, "cpu", """
expect = "pass"
args = ["12", "150000", "cpu"]
timeout = 40
actions = ["wait-ready", "sleep-random 0.2 0.4", "checkpoint", "kill", "restart", "wait-exit"]
"""))
        if rc != 0 or "progress seen: cpu" not in out:
            failures.append(f"a restarted program that only computes (no scn_tick) gave {rc}, "
                            "want PASS with 'progress seen: cpu'")
        # stuck after the restart: no tick, no output, no CPU time
        rc, out = run(build_dir, scratch_scenario(tmp, "stuck", """
expect = "pass"
args = ["8", "100000", "stuck"]
timeout = 8
actions = ["wait-ready", "sleep 0.2", "checkpoint", "kill", "restart", "wait-exit"]
"""))
        if rc != 2 or "shows no progress" not in out:
            failures.append(f"a restarted program that shows no progress gave {rc}, want 2 "
                            "(FAIL naming it)")
    with tempfile.TemporaryDirectory() as tmp:
        # a workload far shorter than its actions (~30 ms vs 1.5 s): held at its exit until
        # wait-exit, it passes and the late checkpoint is counted as taken after the work
        short = """
expect = "pass"
args = ["3", "10000"]
timeout = 30
actions = ["wait-ready", "sleep 1.5", "checkpoint", "wait-exit"]
"""
        rc, out = run(build_dir, scratch_scenario(tmp, "held", short))
        if rc != 0 or "1 of them after the work had ended" not in out:
            failures.append(f"a short workload with the hold gave {rc}, want PASS counting the "
                            "checkpoint taken after its work")
        # the same without the hold: BROKEN, naming the workload as too short
        rc, out = run(build_dir, scratch_scenario(tmp, "unheld", "hold = false\n" + short))
        if rc != 3 or "too short for its actions" not in out:
            failures.append(f"a short workload without the hold gave {rc}, want 3 (BROKEN, too short)")
    rc, out = run(build_dir, "echo")
    if rc != 0 or "PASS echo" not in out:
        failures.append("the driver did not PASS a scenario with the right expected output")
    rc, out = run(build_dir, "echo_cycles")
    if rc != 0 or "PASS echo_cycles" not in out:
        failures.append("the driver did not PASS checkpoint/kill/restart cycles with the fake")
    elif "4 checkpoints" not in out:
        failures.append("`repeat 2:` did not run its checkpoints twice (want 4 checkpoints)")
    with tempfile.TemporaryDirectory() as tmp:
        bad = os.path.join(tmp, "echo_bad_repeat")
        os.makedirs(bad)
        with open(os.path.join(bad, "scenario.toml"), "w") as f:
            f.write('expect = "pass"\nactions = ["repeat 0: checkpoint", "wait-exit"]\n')
        rc, out = run(build_dir, bad)
        if rc != 3 or "repeat needs a count" not in out:
            failures.append(f"a malformed repeat gave {rc} (want 3, BROKEN naming it)")
    rc, out = run(build_dir, "echo_wrong")
    if rc != 1 or "FAIL echo_wrong" not in out:
        failures.append(f"the driver returned {rc} (want 1 and FAIL) for a wrong expected output")
    if "-line five" not in out or "+line 5" not in out:
        failures.append("the driver's diff does not show the differing line")
    for f in failures:
        print("SELFTEST FAILURE: " + f)
    print("selftest: " + ("FAIL" if failures else "PASS"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
