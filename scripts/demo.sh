#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The demo: run examples/heat uninterrupted, then under `ferry launch`; checkpoint it mid-run,
# kill it with SIGKILL, `ferry restart` it, and check that its output equals the
# uninterrupted run's byte for byte. Then the same for an MPI job (examples/heat_mpi, 4 ranks
# under `ferry mpirun`), killed with every process of it and restarted with `ferry restart`.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== 0. install dependencies and build (build/release; log in /tmp/ferry-demo-build.log)"
if ! bash scripts/build.sh > /tmp/ferry-demo-build.log 2>&1; then
  tail -30 /tmp/ferry-demo-build.log
  echo "DEMO FAILED: the build failed (whole log: /tmp/ferry-demo-build.log)"
  exit 1
fi
ferry=$PWD/build/release/cli/ferry
heat=$PWD/build/release/examples/heat
work=$(mktemp -d /tmp/ferry-demo.XXXXXX)
export FERRY_HOME=$work/store
launch_pid=
# Every process below PID (the job's processes, found by PID, never by name).
descendants() { local c; for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do echo "$c"; descendants "$c"; done; }
cleanup() {
  [[ -n $launch_pid ]] && kill -9 "$launch_pid" $(descendants "$launch_pid") 2>/dev/null || true
  [[ -n ${job_pid:-} ]] && kill -9 "$job_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== 1. uninterrupted run"
/usr/bin/time -f "   %e s" "$heat" > "$work/expected.txt"
cat "$work/expected.txt" | sed 's/^/   /' | tail -3

echo "== 2. the same program under ferry (stdout to a file)"
# The program's stderr goes to a file of its own: on restart ferry truncates a file the program
# was writing back to its size at the checkpoint (docs/user-guide.md "Files the program was
# writing"), which would cut this script's own output if it were redirected to a file.
"$ferry" launch --name demo -- "$heat" > "$work/out.txt" 2> "$work/launch.err" &
launch_pid=$!
for _ in $(seq 1 100); do [[ -s $work/out.txt ]] && break; sleep 0.05; done
sed 's/^/   /' "$work/launch.err"
sleep 1
echo "== 3. checkpoint while it runs ($(wc -l < "$work/out.txt") lines printed so far)"
"$ferry" checkpoint demo
sleep 0.5
job_pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$FERRY_HOME/jobs/1/job.json")
echo "== 4. kill -9 the job (pid $job_pid) after $(wc -l < "$work/out.txt") lines"
kill -9 "$job_pid"
wait "$launch_pid" || echo "   ferry launch exited with status $? (137 = killed by SIGKILL)"
launch_pid=
echo "== 5. inspect the image"
"$ferry" inspect demo > "$work/inspect.txt"
sed -n '1,3p;/^regions/,/^threads/p' "$work/inspect.txt" | head -20 | sed 's/^/   /'
echo "== 6. restart from the checkpoint"
"$ferry" restart demo > /dev/null 2> "$work/restart.err" || { cat "$work/restart.err"; echo "DEMO FAILED: restart"; exit 1; }
grep -v '^$' "$work/restart.err" | sed 's/^/   /' || true
echo "== 7. compare"
if cmp -s "$work/expected.txt" "$work/out.txt"; then
  tail -3 "$work/out.txt" | sed 's/^/   /'
  echo "   the restarted run's output equals the uninterrupted run's ($(wc -l < "$work/out.txt") lines)"
else
  diff "$work/expected.txt" "$work/out.txt" | head -20
  echo "DEMO FAILED: outputs differ"
  exit 1
fi

# Part 2: an MPI job (4 ranks of examples/heat_mpi, an unmodified Open MPI program).
heat_mpi=$PWD/build/release/examples/heat_mpi
if ! command -v mpirun > /dev/null || [[ ! -x $heat_mpi ]]; then
  echo "== 8-12. MPI part skipped: mpirun or examples/heat_mpi missing (install openmpi-bin libopenmpi-dev)"
  echo "DEMO PASSED (single process only)"
  exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1   # the demo runs as root
echo "== 8. MPI: uninterrupted run, mpirun -np 4 heat_mpi"
/usr/bin/time -f "   %e s" mpirun --oversubscribe -np 4 "$heat_mpi" 512 20000 > "$work/mpi-expected.txt"
tail -1 "$work/mpi-expected.txt" | sed 's/^/   /'
echo "== 9. the same job under ferry mpirun"
"$ferry" mpirun --name demo-mpi --oversubscribe -np 4 -- "$heat_mpi" 512 20000 > "$work/mpi-out.txt" &
launch_pid=$!
for _ in $(seq 1 600); do [[ $(wc -l < "$work/mpi-out.txt") -ge 3 ]] && break; sleep 0.1; done
echo "== 10. checkpoint all 4 ranks while they exchange halos ($(wc -l < "$work/mpi-out.txt") lines printed so far)"
"$ferry" checkpoint demo-mpi
sleep 1
job_pids="$launch_pid $(descendants "$launch_pid")"
echo "== 11. kill -9 every process of the job (mpirun, proxies, ranks: $(echo $job_pids | wc -w) processes) after $(wc -l < "$work/mpi-out.txt") lines"
kill -9 $job_pids 2>/dev/null || true
wait "$launch_pid" || echo "   ferry mpirun exited with status $?"
launch_pid=
echo "== 12. ferry restart demo-mpi (new mpirun, new MPI_Init; each rank's memory from the image)"
"$ferry" restart demo-mpi >> "$work/mpi-out.txt"
"$ferry" wait demo-mpi | sed 's/^/   ferry wait: /'
# MPI output goes through mpirun's pipes, which ferry cannot roll back: the lines printed between
# the checkpoint and the kill are printed again by the restarted job (docs/mpi.md, "Limits").
if python3 - "$work/mpi-expected.txt" "$work/mpi-out.txt" <<'PY'
import sys
want = open(sys.argv[1]).read().splitlines()
got = open(sys.argv[2]).read().splitlines()
seen = []
for line in got:
    if line not in seen:
        seen.append(line)
repeated = len(got) - len(seen)
print(f"   {len(got)} lines, {repeated} printed again after the restart (those between the checkpoint and the kill)")
sys.exit(0 if seen == want else 1)
PY
then
  tail -2 "$work/mpi-out.txt" | sed 's/^/   /'
  echo "   every line of the uninterrupted MPI run, in order, same final heat and checksum"
  echo "DEMO PASSED: both restarted jobs produced exactly the uninterrupted runs' results"
else
  diff "$work/mpi-expected.txt" "$work/mpi-out.txt" | head -20
  echo "DEMO FAILED: the MPI job's output differs"
  exit 1
fi
