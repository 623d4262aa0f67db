#!/usr/bin/env python3
# A stand-in for the ferry CLI used only by the driver self-test: `launch` runs the program as
# the contract says (job line on stderr, job.json in the store, the program's exit status);
# every other command fails. It lets the driver's plumbing be tested without ferry.
# SPDX-License-Identifier: Apache-2.0
import json
import os
import subprocess
import sys


def main():
    args = sys.argv[1:]
    if not args or args[0] != "launch":
        print(f"fake ferry: {' '.join(args[:1])} is not implemented", file=sys.stderr)
        return 70
    store = os.environ.get("FERRY_HOME", os.path.expanduser("~/.ferry"))
    name = None
    i = 1
    while args[i] != "--":
        if args[i] == "--store":
            store, i = args[i + 1], i + 2
        elif args[i] == "--name":
            name, i = args[i + 1], i + 2
        else:
            print(f"fake ferry: unknown option {args[i]}", file=sys.stderr)
            return 64
    program = args[i + 1:]
    job_id = f"fake{os.getpid()}"
    p = subprocess.Popen(program)
    os.makedirs(os.path.join(store, "jobs", job_id))
    with open(os.path.join(store, "jobs", job_id, "job.json"), "w") as f:
        json.dump({"id": job_id, "name": name or job_id, "pid": p.pid}, f)
    print(f"ferry: job {job_id} launched (pid {p.pid})", file=sys.stderr, flush=True)
    rc = p.wait()
    return 128 - rc if rc < 0 else rc


if __name__ == "__main__":
    sys.exit(main())
