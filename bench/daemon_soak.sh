#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Soak test of the cluster daemons: a real ferry-coordinator and two ferry-agents (n1, n2) on
# localhost, a 4-rank job (2 per agent), then N consecutive checkpoints (default 100; --keep 2
# so the store stays small). After a warm-up of W checkpoints (default 10) the open
# descriptors of the coordinator and of each agent are recorded; at the end they must be
# exactly the same, and each daemon's RSS may not have grown by more than RSS_SLACK_KIB
# (default 4096 KiB) since the warm-up. Prints the figures; exits 1 on a leak.
#   bench/daemon_soak.sh BUILD_DIR [N] [W]        (as root: agents start ranks as the job's user)
set -euo pipefail

build=$(cd "${1:?usage: daemon_soak.sh BUILD_DIR [N] [WARMUP]}" && pwd)
n=${2:-100}
warm=${3:-10}
slack_kib=${RSS_SLACK_KIB:-4096}
ferry=$build/cli/ferry
coordinator=$build/coordinator/ferry-coordinator
agent=$build/agent/ferry-agent
workload=$build/tests/integration/cluster_workload
for b in "$ferry" "$coordinator" "$agent" "$workload"; do
  [[ -x $b ]] || { echo "daemon_soak: $b missing (build it first)" >&2; exit 2; }
done
[[ $(id -u) == 0 ]] || { echo "daemon_soak: needs root"; exit 77; }

dir=$(mktemp -d /tmp/ferry-soak.XXXXXX)
chmod 711 "$dir"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # Ranks still running (the job did not stop): by pid, found through their environment.
  for e in /proc/[0-9]*/environ; do
    p=${e#/proc/}; p=${p%/environ}
    [[ $(readlink "/proc/$p/exe" 2>/dev/null) == "$workload" ]] || continue
    tr '\0' '\n' < "$e" 2>/dev/null | grep -qx "FERRY_HOME=$dir/store" && kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/cluster.secret"
chmod 600 "$dir/cluster.secret"
mkdir -m 711 "$dir/users"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/users/0"
chmod 600 "$dir/users/0"

coproc COORD { exec "$coordinator" --listen 127.0.0.1:0 --state "$dir/state" --store "$dir/store" \
  --cluster-secret "$dir/cluster.secret" --user-secrets "$dir/users" --heartbeat-ms 500 \
  --lost-after-ms 5000 2>"$dir/coordinator.err"; }
coord_pid=$COORD_PID
pids+=("$coord_pid")
read -r -t 20 line <&"${COORD[0]}" || { echo "daemon_soak: coordinator did not start" >&2; cat "$dir/coordinator.err" >&2; exit 1; }
port=${line##*:}
for node in n1 n2; do
  "$agent" --coordinator "127.0.0.1:$port" --node "$node" --store "$dir/store" \
    --cluster-secret "$dir/cluster.secret" --ferry "$ferry" >/dev/null 2>"$dir/agent-$node.err" &
  pids+=("$!")
done
agent_pids=("${pids[1]}" "${pids[2]}")

export FERRY_COORDINATOR=127.0.0.1:$port FERRY_SECRET_FILE=$dir/users/0 FERRY_HOME=$dir/store
for _ in $(seq 100); do
  st=$("$ferry" status --json 2>/dev/null || true)
  [[ $st == *'"node":"n1","alive":true'* && $st == *'"node":"n2","alive":true'* ]] && break
  sleep 0.1
done
# 1 MiB ranks that run until stopped (1e6 iterations of 20 ms).
job=$("$ferry" launch --nodes n1,n2 --ntasks 4 --keep 2 --detach -- "$workload" 1 1000000 20)
sleep 0.5

fds() { ls "/proc/$1/fd" | wc -l; }
# Measured 0.3 s after a checkpoint returned: the CLI's connection is closed by then.
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
daemons=("$coord_pid" "${agent_pids[@]}")
names=(coordinator agent-n1 agent-n2)
declare -a fd0 rss0
start=$(date +%s.%N)
for i in $(seq 1 "$n"); do
  if ! out=$("$ferry" checkpoint "$job" 2>&1); then
    echo "daemon_soak: checkpoint $i failed: $out" >&2
    for f in "$dir"/coordinator.err "$dir"/agent-*.err "$dir"/store/jobs/"$job"/rank-*.err; do
      [[ -f $f ]] && { echo "--- tail of $f" >&2; tail -n 15 "$f" >&2; }
    done
    exit 1
  fi
  if (( i == warm )); then
    sleep 0.3
    for k in 0 1 2; do fd0[k]=$(fds "${daemons[k]}"); rss0[k]=$(rss "${daemons[k]}"); done
  fi
done
end=$(date +%s.%N)
sleep 0.3
declare -a fd1 rss1
for k in 0 1 2; do fd1[k]=$(fds "${daemons[k]}"); rss1[k]=$(rss "${daemons[k]}"); done
"$ferry" checkpoint "$job" --stop >/dev/null

status=0
printf '%d checkpoints of a 4-rank job over 2 agents in %.1f s (%.0f ms each)\n' "$n" \
  "$(echo "$end - $start" | bc)" "$(echo "($end - $start) * 1000 / $n" | bc)"
printf '%-12s %10s %10s %14s %14s\n' daemon "fds@$warm" "fds@$n" "rss@$warm KiB" "rss@$n KiB"
for k in 0 1 2; do
  f1=${fd1[k]}; r1=${rss1[k]}
  printf '%-12s %10d %10d %14d %14d\n' "${names[k]}" "${fd0[k]}" "$f1" "${rss0[k]}" "$r1"
  if (( f1 != fd0[k] )); then echo "daemon_soak: ${names[k]} open fds changed: ${fd0[k]} -> $f1" >&2; status=1; fi
  if (( r1 - rss0[k] > slack_kib )); then
    echo "daemon_soak: ${names[k]} RSS grew by $(( r1 - rss0[k] )) KiB (> $slack_kib)" >&2; status=1
  fi
done
gens=$(ls "$dir/store/jobs/$job" | grep -c '^gen-' || true)
echo "generations kept on disk: $gens (--keep 2)"
(( gens <= 3 )) || { echo "daemon_soak: retention left $gens generations" >&2; status=1; }
exit $status
