#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The demo: run examples/heat uninterrupted, then under `ferry launch`; checkpoint it mid-run,
# kill it with SIGKILL, `ferry restart` it, and check that its output equals the
# uninterrupted run's byte for byte.
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
cleanup() {
  [[ -n $launch_pid ]] && kill -9 "$launch_pid" 2>/dev/null || true
  [[ -n ${job_pid:-} ]] && kill -9 "$job_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== 1. uninterrupted run"
/usr/bin/time -f "   %e s" "$heat" > "$work/expected.txt"
cat "$work/expected.txt" | sed 's/^/   /' | tail -3

echo "== 2. the same program under ferry (stdout to a file)"
"$ferry" launch --name demo -- "$heat" > "$work/out.txt" &
launch_pid=$!
for _ in $(seq 1 100); do [[ -s $work/out.txt ]] && break; sleep 0.05; done
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
"$ferry" restart demo > /dev/null
echo "== 7. compare"
if cmp -s "$work/expected.txt" "$work/out.txt"; then
  tail -3 "$work/out.txt" | sed 's/^/   /'
  echo "DEMO PASSED: the restarted run's output equals the uninterrupted run's ($(wc -l < "$work/out.txt") lines)"
else
  diff "$work/expected.txt" "$work/out.txt" | head -20
  echo "DEMO FAILED: outputs differ"
  exit 1
fi
