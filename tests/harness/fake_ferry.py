#!/usr/bin/env python3
# A stand-in for the ferry CLI, used only by the driver self-test (selftest.py): it follows the
# command-line contract (job line, job.json, generation lines, exit statuses 75/137/66) but a
# "restart" simply runs the program again from the start with its stdout file truncated, which
# reproduces the output of a deterministic workload. It tests the driver, not ferry.
# SPDX-License-Identifier: Apache-2.0
import json
import os
import signal
import subprocess
import sys


def store_of(args):
    store = os.environ.get("FERRY_HOME", os.path.expanduser("~/.ferry"))
    rest = []
    i = 0
    while i < len(args):
        if args[i] == "--store":
            store = args[i + 1]
            i += 2
        else:
            rest.append(args[i])
            i += 1
    return store, rest


def find_job(store, ref):
    base = os.path.join(store, "jobs")
    for d in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        with open(os.path.join(base, d, "job.json")) as f:
            j = json.load(f)
        if ref in (j["id"], j["name"]):
            return os.path.join(base, d), j
    print(f"fake ferry: job {ref} not found", file=sys.stderr)
    sys.exit(66)


def save(job_dir, j):
    with open(os.path.join(job_dir, "job.json.tmp"), "w") as f:
        json.dump(j, f)
    os.rename(os.path.join(job_dir, "job.json.tmp"), os.path.join(job_dir, "job.json"))


def run(job_dir, j, stdout):
    p = subprocess.Popen(j["argv"], cwd=j["cwd"], env=j["env"], stdout=stdout)
    j["pid"] = p.pid
    j["state"] = "running"
    save(job_dir, j)
    return p


def finish(job_dir, p):
    rc = p.wait()
    if os.path.exists(os.path.join(job_dir, "stopped")):
        os.unlink(os.path.join(job_dir, "stopped"))
        return 75
    return 128 - rc if rc < 0 else rc


def main():
    if len(sys.argv) < 2:
        return 64
    cmd = sys.argv[1]
    store, args = store_of(sys.argv[2:])
    if cmd == "launch":
        name = None
        if args[0] == "--name":
            name, args = args[1], args[2:]
        argv = args[1:]  # after "--"
        job_id = f"fake{os.getpid()}"
        job_dir = os.path.join(store, "jobs", job_id)
        os.makedirs(job_dir)
        j = {"id": job_id, "name": name or job_id, "argv": argv, "cwd": os.getcwd(),
             "env": dict(os.environ), "stdout": os.readlink("/proc/self/fd/1"), "gens": 0}
        p = run(job_dir, j, None)
        print(f"ferry: job {job_id} launched (pid {p.pid})", file=sys.stderr, flush=True)
        return finish(job_dir, p)
    if cmd == "checkpoint":
        job_dir, j = find_job(store, args[0])
        j["gens"] += 1
        gen = os.path.join(job_dir, f"gen-{j['gens']:06d}")
        os.makedirs(gen)
        open(os.path.join(gen, "rank-0.h5"), "wb").close()
        with open(os.path.join(gen, "MANIFEST.json"), "w") as f:
            json.dump({"generation": j["gens"]}, f)
        save(job_dir, j)
        if "--stop" in args:
            open(os.path.join(job_dir, "stopped"), "w").close()
            os.kill(j["pid"], signal.SIGKILL)
        print(f"generation {j['gens']} committed: {gen}/rank-0.h5")
        return 0
    if cmd == "restart":
        job_dir, j = find_job(store, args[0])
        if "--generation" in args:
            g = int(args[args.index("--generation") + 1])
            if not os.path.isdir(os.path.join(job_dir, f"gen-{g:06d}")):
                print(f"fake ferry: job {args[0]} has no generation {g}", file=sys.stderr)
                return 66
        with open(j["stdout"], "wb") as out:
            p = run(job_dir, j, out)
        return finish(job_dir, p)
    print(f"fake ferry: {cmd} is not implemented", file=sys.stderr)
    return 70


if __name__ == "__main__":
    sys.exit(main())
