#!/usr/bin/env bash
# Lazy restore benchmark: for each size, one checkpoint of memhog (bench/memhog.c), then from
# the same image in the same run an eager `ferry restart` and a `ferry restart --lazy`, each
# timed from the command's start until the program runs again (memhog removes its
# verify-request file: the restored program's first action) and until it has verified every
# word of its memory (DIR/verified). The lazy line adds ferry's own report: when the last page
# was placed, counted from the program's resumption, and how many faults it served.
# See bench/README.md, "Lazy restore".
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/lazy.sh [--sizes 1024,4096] [--workload random|hpc] [--store DIR] [--runs N]
                     [--ferry PATH] [--build-dir DIR]
  --sizes      MiB of memory per measurement (default 1024,4096)
  --workload   memhog workload (default random: incompressible words)
  --store      folder on the disk to use (default: a new folder under /var/tmp)
  --runs       restart pairs per size (default 2)
USAGE
}

SIZES=1024,4096
WL=random
STORE_PARENT=/var/tmp
RUNS=2
FERRY=""
BUILD=""
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
while [ $# -gt 0 ]; do
  case "$1" in
    --workload) WL=$2; shift 2 ;;
    *) bench_common_arg "$@"; shift "$BENCH_SHIFT" ;;
  esac
done
bench_find_build memhog
MEMHOG=$BUILD/bench/memhog
bench_work_dir "$STORE_PARENT" ferry-lazy-bench

# restart_once HOME CTL MODE: prints "to_run to_verified" (s) for one restart (MODE: eager|lazy)
restart_once() {
  local home=$1 ctl=$2 mode=$3 t0 t_run t1 flag=()
  [ "$mode" = lazy ] && flag=(--lazy)
  rm -f "$ctl/verified" "$ctl/taken"
  touch "$ctl/verify-request"
  t0=$(now_ns)
  "$FERRY" restart --store "$home" bench "${flag[@]}" >"$ctl/restart-$mode.out" 2>"$ctl/restart-$mode.err" &
  local rpid=$!; PIDS+=("$rpid")
  wait_for gone "$ctl/verify-request" 900 || { echo "bench: $mode restart never ran" >&2; cat "$ctl/restart-$mode.err" >&2; return 1; }
  wait_for exists "$ctl/verified" 900 || { echo "bench: $mode restart never verified" >&2; return 1; }
  t_run=$(taken_ns "$ctl")
  t1=$(verified_ns "$ctl")
  local verdict; read -r verdict _ <"$ctl/verified"
  touch "$ctl/exit-request"
  stop_pid "$rpid" 60
  [ "$verdict" = OK ] || { echo "bench: $mode restart: restored memory has a WRONG checksum" >&2; return 1; }
  echo "$(secs "$t0" "$t_run") $(secs "$t0" "$t1")"
}

printf '%-6s %-4s %-6s %10s %14s %18s\n' MiB run mode "run (s)" "verified (s)" "all placed (s)"
for size in ${SIZES//,/ }; do
  ctl=$WORK/ctl-$size home=$WORK/store-$size
  mkdir -p "$ctl"
  "$FERRY" launch --store "$home" --name bench -- "$MEMHOG" "$size" "$ctl" "$WL" >"$ctl/launch.out" 2>"$ctl/launch.err" &
  lpid=$!; PIDS+=("$lpid")
  wait_for exists "$ctl/ready" 900 || { echo "bench: memhog never got ready" >&2; exit 1; }
  "$FERRY" checkpoint --store "$home" bench >"$ctl/ckpt.out" 2>"$ctl/ckpt.err" || { cat "$ctl/ckpt.err" >&2; exit 1; }
  mpid=$(job_host_pid "$home/jobs/1/job.json" running)
  [ "${mpid:-0}" -gt 1 ] && kill -KILL "$mpid" 2>/dev/null || true
  stop_pid "$lpid" 30
  cat "$home"/jobs/1/gen-*/*.h5 >/dev/null  # both restarts read the image from the page cache
  for run in $(seq 1 "$RUNS"); do
    for mode in eager lazy; do
      read -r to_run to_verified < <(restart_once "$home" "$ctl" "$mode")
      placed=-
      if [ "$mode" = lazy ]; then
        placed=$(sed -n 's/.*placed[^0-9]* \([0-9.]*\) s after the program resumed.*/\1/p' "$ctl/restart-lazy.err" | tail -1)
        grep -q "lazy restore: " "$ctl/restart-lazy.err" || { echo "bench: the restart was not lazy:" >&2; cat "$ctl/restart-lazy.err" >&2; exit 1; }
      fi
      printf '%-6s %-4s %-6s %10s %14s %18s\n' "$size" "$run" "$mode" "$to_run" "$to_verified" "${placed:--}"
    done
  done
  rm -rf "$home"
done
