#!/usr/bin/env bash
# Incremental checkpoint benchmark (issue 7 §3): memhog holding SIZE MiB of incompressible
# words; a full checkpoint (`--incremental`, the first of a chain), then CHAIN times: memhog
# rewrites 10 % of its pages, `ferry checkpoint --incremental`; then `--full` of the same state.
# Prints, against the full checkpoints of the same run: bytes written by each incremental one
# (its generation directory) and its time; then restarts the end of the chain and the full
# generation of the same state and prints both restore times (start to the program running
# again) and that each verified its memory hash. See bench/README.md.
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail

SIZE=1024
CHAIN=10
RESTORES=3
STORE_PARENT=/var/tmp
BUILD=""
FERRY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --size) SIZE=$2; shift 2 ;;
    --chain) CHAIN=$2; shift 2 ;;
    --restores) RESTORES=$2; shift 2 ;;
    --store) STORE_PARENT=$2; shift 2 ;;
    --build-dir) BUILD=$2; shift 2 ;;
    --ferry) FERRY=$2; shift 2 ;;
    -h|--help) echo "usage: bench/incremental.sh [--size MIB] [--chain N] [--restores N] [--store DIR] [--build-dir DIR] [--ferry PATH]"; exit 0 ;;
    *) echo "bench: unknown argument $1" >&2; exit 64 ;;
  esac
done
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_find_build memhog
MEMHOG=$BUILD/bench/memhog
bench_work_dir "$STORE_PARENT" ferry-incr-bench
HOME_STORE=$WORK/store
CTL=$WORK/ctl
mkdir -p "$CTL"
host_pid() { job_host_pid "$HOME_STORE/jobs/1/job.json"; }
gen_bytes() { du -sb "$HOME_STORE/jobs/1/gen-$(printf %06d "$1")" | awk '{ print $1 }'; }

# checkpoint ARGS...: prints "GEN SECONDS"
checkpoint() {
  sync
  local t0 t1 out
  t0=$(now_ns)
  out=$("$FERRY" checkpoint --store "$HOME_STORE" bench "$@" 2>"$WORK/ckpt.err") || { cat "$WORK/ckpt.err" >&2; exit 1; }
  t1=$(now_ns)
  echo "$(echo "$out" | sed -n 's/^generation \([0-9]*\) committed.*/\1/p') $(secs "$t0" "$t1")"
}

"$FERRY" launch --store "$HOME_STORE" --name bench -- "$MEMHOG" "$SIZE" "$CTL" random >"$WORK/launch.out" 2>"$WORK/launch.err" &
LPID=$!; PIDS+=("$LPID")
wait_for exists "$CTL/ready" 900 || { echo "bench: memhog never got ready" >&2; exit 1; }
sleep 0.5

read -r g_full t_full < <(checkpoint --incremental)
b_full=$(gen_bytes "$g_full")
echo "full checkpoint (generation $g_full): $b_full bytes, $t_full s"
inc_t=() inc_b=()
g_last=$g_full
for i in $(seq 1 "$CHAIN"); do
  touch "$CTL/change-request"
  wait_for exists "$CTL/changed" 600 || { echo "bench: memhog did not change its pages" >&2; exit 1; }
  rm -f "$CTL/changed"
  read -r g t < <(checkpoint --incremental)
  b=$(gen_bytes "$g")
  inc_t+=("$t"); inc_b+=("$b"); g_last=$g
  echo "incremental $i (generation $g, 10 % of pages changed): $b bytes ($(ratio "$b" "$b_full" 3) of full), $t s ($(ratio "$t" "$t_full" 3) of full)"
done
read -r g_full2 t_full2 < <(checkpoint --full)
b_full2=$(gen_bytes "$g_full2")
echo "full checkpoint of the same state (generation $g_full2): $b_full2 bytes, $t_full2 s"
t_full_med=$(echo "$t_full $t_full2" | median)
t_inc_med=$(echo "${inc_t[*]}" | median)
b_inc_med=$(echo "${inc_b[*]}" | median)
echo "SUMMARY incremental/full: bytes $(ratio "$b_inc_med" "$b_full" 3) (target <= 0.12), time $(ratio "$t_inc_med" "$t_full_med" 3) (target <= 0.20); medians: incremental $b_inc_med bytes $t_inc_med s, full $b_full bytes $t_full_med s"

hp=$(host_pid); [ "${hp:-0}" -gt 1 ] && kill -KILL "$hp" 2>/dev/null || true
wait "$LPID" 2>/dev/null || true

# restore_time GEN: prints "SECONDS VERDICT"
restore_time() {
  rm -f "$CTL/verified" "$CTL/taken"
  touch "$CTL/verify-request"
  local t0 t1
  t0=$(now_ns)
  "$FERRY" restart --store "$HOME_STORE" bench --generation "$1" >"$WORK/restart.out" 2>"$WORK/restart.err" &
  local rpid=$!; PIDS+=("$rpid")
  wait_for gone "$CTL/verify-request" 900 || { cat "$WORK/restart.err" >&2; echo "bench: restart of generation $1 never ran" >&2; exit 1; }
  wait_for exists "$CTL/verified" 900 || { echo "bench: restarted memhog never verified" >&2; exit 1; }
  t1=$(taken_ns "$CTL")
  local verdict; read -r verdict _ <"$CTL/verified"
  touch "$CTL/exit-request"
  wait "$rpid" 2>/dev/null || true
  echo "$(secs "$t0" "$t1") $verdict"
}
cat "$HOME_STORE"/jobs/1/gen-*/*.h5 >/dev/null  # both restores find the images in the page cache
# RESTORES alternating pairs (full first, then chain), medians: the machine is shared.
rc_all=() rf_all=() verdicts=""
for i in $(seq 1 "$RESTORES"); do
  read -r r v < <(restore_time "$g_full2"); rf_all+=("$r"); verdicts+=" $v"
  read -r r v < <(restore_time "$g_last"); rc_all+=("$r"); verdicts+=" $v"
  echo "restore pair $i: full generation $g_full2 ${rf_all[-1]} s, chain end generation $g_last ${rc_all[-1]} s"
done
r_chain=$(echo "${rc_all[*]}" | median)
r_full=$(echo "${rf_all[*]}" | median)
echo "restore from the end of the chain (generation $g_last, $CHAIN incremental on a full one): median $r_chain s"
echo "restore from the full generation $g_full2 of the same state: median $r_full s; memory verified:$verdicts"
echo "SUMMARY restore chain/full: $(ratio "$r_chain" "$r_full" 3) (target <= 1.0)"
! echo "$verdicts" | grep -qv '^\( OK\)*$'
