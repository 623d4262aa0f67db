#!/usr/bin/env bash
# Multi-rank benchmark (issue 7 §5): do N processes on one node checkpoint (and restart) in
# parallel at N times the single-process rate, up to the number of cores? Per memory size M
# and run, in the same run and in this order:
#   single   one `ferry launch` of memhog M MiB, `ferry checkpoint`, then memhog exits and
#            `ferry restart` brings it back (timed until it runs, and until it re-read and
#            verified all of its memory);
#   launches N separate `ferry launch` jobs of M MiB, N `ferry checkpoint` started at once
#            (timed until the last ends), N `ferry restart` at once;
#   ntasks   one `ferry launch --ntasks N` job (N ranks through the local coordinator and agent
#            that ferry starts itself, in a private ferry home), `ferry checkpoint JOB` (one
#            round: every rank), `ferry restart JOB`;
#   dd       dd conv=fsync of N*M MiB: the disk's durable write rate for the same bytes.
# Rates are N*M MiB over the wall time. The target for the aggregate is single rate x
# min(N, cores), capped by the dd rate when the disk is slower (then the disk is the limit).
# Every memhog verifies its memory hash after the restart; a wrong hash fails the run.
# See bench/README.md.
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/multirank.sh [--sizes 256,1024] [--ntasks 2,4] [--runs 3] [--modes launches,ntasks]
                          [--store DIR] [--ferry PATH] [--build-dir DIR]
  --sizes      MiB of memory per process (default 256,1024)
  --ntasks     numbers of processes checkpointed at once (default 2,4)
  --runs       runs per size, medians are shown (default 3)
  --modes      launches = N separate `ferry launch` jobs; ntasks = one `ferry launch --ntasks N`
               job through the local coordinator/agent (default both)
  --store      parent folder on the disk to measure (default /var/tmp); a private folder is
               created there and removed
  --ferry      the ferry CLI (default BUILD/cli/ferry); --build-dir: the build holding bench/memhog
EOF
}

SIZES=256,1024
NTASKS=2,4
RUNS=3
MODES=launches,ntasks
STORE_PARENT=/var/tmp
FERRY=""
BUILD=""
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
while [ $# -gt 0 ]; do
  case "$1" in
    --ntasks) NTASKS=$2; shift 2 ;;
    --modes) MODES=$2; shift 2 ;;
    *) bench_common_arg "$@"; shift "$BENCH_SHIFT" ;;
  esac
done
bench_find_build memhog
MEMHOG=$BUILD/bench/memhog
bench_work_dir "$STORE_PARENT" ferry-multirank
CORES=$(nproc)
# The local coordinator/agent of `--ntasks` jobs: private to this run, and gone soon when idle.
export FERRY_IDLE_EXIT_S=2
unset FERRY_COORDINATOR

# fail MESSAGE BASE: prints MESSAGE and the ends of BASE's *.err files, kills (by PID) what still
# runs of this measurement (every process naming BASE) and returns 1
fail() {
  echo "bench: $1" >&2
  local f p
  for f in $(find "$2" -name '*.err' 2>/dev/null); do [ -s "$f" ] && sed "s|^|  ${f#"$2"/}: |" "$f" | tail -5 >&2; done
  for p in $(pids_naming "$2"); do kill -KILL "$p" 2>/dev/null || true; done
  return 1
}

# all_exist NAME DIR...: waits until every DIR/NAME exists (600 s at most)
all_exist() { local n=$1 d; shift; for d in "$@"; do wait_for exists "$d/$n" 600 || return 1; done; }
all_gone() { local n=$1 d; shift; for d in "$@"; do wait_for gone "$d/$n" 600 || return 1; done; }
all_ok() { local d v; for d in "$@"; do read -r v _ <"$d/verified" || return 1; [ "$v" = OK ] || return 1; done; }

# cpu_ticks PID...: utime + stime of these processes (all their threads), in clock ticks
cpu_ticks() { local p t=0 v; for p in "$@"; do v=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0); t=$((t + ${v:-0})); done; echo "$t"; }
TICK=$(getconf CLK_TCK)
cpu_secs() { awk -v a="$1" -v b="$2" -v k="$TICK" 'BEGIN { printf "%.3f", (b - a) / k }'; }

# timed_verify CTL...: after the caller started the restart command(s) at $T0, prints
# "RUN_S VERIFIED_S": until every memhog took its verify request, and until all verified.
timed_verify() {
  local t_run=0 t_ver=0 d t
  all_gone verify-request "$@" || return 1
  all_exist verified "$@" || return 1
  for d in "$@"; do
    t=$(taken_ns "$d"); [ "$t" -gt "$t_run" ] && t_run=$t
    t=$(verified_ns "$d"); [ "$t" -gt "$t_ver" ] && t_ver=$t
  done
  all_ok "$@" || { echo "bench: restored memory has a WRONG checksum" >&2; return 1; }
  echo "$(secs "$T0" "$t_run") $(secs "$T0" "$t_ver")"
}

# separate_jobs KIND N SIZE RUN: N `ferry launch` jobs, each in its own session (setsid) as
# the ranks of an --ntasks job are: with autogroup scheduling the kernel shares CPU time by
# session, so N jobs started from this shell would otherwise share one process's share (KIND single, N=1: the baseline; or
# launches), checkpointed at once, then restarted at once; appends "KIND SIZE N CKPT_S RUN_S
# VERIFIED_S" to $RES
separate_jobs() {
  local kind=$1 n=$2 size=$3 tag=$1-$2-$3-$4 base=$WORK/$1-$2-$3-$4 i
  local ctls=() homes=() lpids=() cpids=() rpids=()
  for i in $(seq 1 "$n"); do
    ctls+=("$base/ctl-$i"); homes+=("$base/store-$i"); mkdir -p "$base/ctl-$i"
    setsid "$FERRY" launch --store "$base/store-$i" --name bench -- "$MEMHOG" "$size" "$base/ctl-$i" random \
      >"$base/ctl-$i/launch.out" 2>"$base/ctl-$i/launch.err" &
    lpids+=($!); PIDS+=($!)
  done
  all_exist ready "${ctls[@]}" || { fail "$tag: memhog never got ready" "$base"; return 1; }
  for i in "${homes[@]}"; do   # the supervisor saved the job as running: it takes checkpoints
    wait_for exists "$i/jobs/1/job.json" 60 || true
    local _k; for _k in $(seq 1 500); do [ "$(job_host_pid "$i/jobs/1/job.json" running)" -gt 1 ] && break; sleep 0.02; done
  done
  sync
  local c0; c0=$(cpu_ticks "${lpids[@]}")   # the supervisors (`ferry launch`) do the work
  T0=$(now_ns)
  for i in $(seq 0 $((n - 1))); do
    "$FERRY" checkpoint --store "${homes[$i]}" bench >"${ctls[$i]}/ckpt.out" 2>"${ctls[$i]}/ckpt.err" &
    cpids+=($!); PIDS+=($!)
  done
  local ok=1 p
  for p in "${cpids[@]}"; do wait "$p" || ok=0; done
  local ckpt_s; ckpt_s=$(secs "$T0" "$(now_ns)")
  local cpu_s; cpu_s=$(cpu_secs "$c0" "$(cpu_ticks "${lpids[@]}")")
  [ "$ok" = 1 ] || { fail "$tag: ferry checkpoint failed" "$base"; return 1; }
  for i in "${ctls[@]}"; do touch "$i/exit-request"; done
  for p in "${lpids[@]}"; do stop_pid "$p" 60; done
  for i in "${ctls[@]}"; do rm -f "$i/verified" "$i/taken"; touch "$i/verify-request"; done
  T0=$(now_ns)
  for i in $(seq 0 $((n - 1))); do
    setsid "$FERRY" restart --store "${homes[$i]}" bench >"${ctls[$i]}/restart.out" 2>"${ctls[$i]}/restart.err" &
    rpids+=($!); PIDS+=($!)
  done
  local times; times=$(timed_verify "${ctls[@]}") || { fail "$tag: restart failed" "$base"; return 1; }
  for i in "${ctls[@]}"; do touch "$i/exit-request"; done
  for p in "${rpids[@]}"; do stop_pid "$p" 60; done
  rm -rf "$base"
  echo "$kind $size $n $ckpt_s $times $cpu_s" >>"$RES"
}

# rank_job N SIZE RUN: one `ferry launch --ntasks N` job in a private ferry home; appends
# "ntasks SIZE N CKPT_S RUN_S VERIFIED_S" to $RES
rank_job() {
  local n=$1 size=$2 tag=ntasks-$1-$2-$3 base=$WORK/ntasks-$1-$2-$3 r
  local ctls=()
  mkdir -p "$base/ctl"
  for r in $(seq 0 $((n - 1))); do ctls+=("$base/ctl/rank-$r"); done
  FERRY_HOME=$base/home HOME=$base "$FERRY" launch --ntasks "$n" -- "$MEMHOG" "$size" "$base/ctl/rank-%r" random \
    >"$base/ctl/launch.out" 2>"$base/ctl/launch.err" &
  local lpid=$!; PIDS+=("$lpid")
  all_exist ready "${ctls[@]}" || { fail "$tag: the ranks never got ready" "$base"; return 1; }
  sync
  # the rank supervisors (`ferry rank-launch`, started by the agent) do the work
  local sups=() p
  for p in $(pids_naming "$base/home"); do
    case "$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline")" in *" rank-launch "*) sups+=("$p") ;; esac
  done
  local c0; c0=$(cpu_ticks "${sups[@]}")
  T0=$(now_ns)
  FERRY_HOME=$base/home HOME=$base "$FERRY" checkpoint 1 >"$base/ctl/ckpt.out" 2>"$base/ctl/ckpt.err" \
    || { fail "$tag: ferry checkpoint failed" "$base"; return 1; }
  local ckpt_s; ckpt_s=$(secs "$T0" "$(now_ns)")
  local cpu_s; cpu_s=$(cpu_secs "$c0" "$(cpu_ticks "${sups[@]}")")
  for r in "${ctls[@]}"; do touch "$r/exit-request"; done
  stop_pid "$lpid" 60
  for r in "${ctls[@]}"; do rm -f "$r/verified" "$r/taken"; touch "$r/verify-request"; done
  T0=$(now_ns)
  FERRY_HOME=$base/home HOME=$base "$FERRY" restart 1 >"$base/ctl/restart.out" 2>"$base/ctl/restart.err" &
  local rpid=$!; PIDS+=("$rpid")
  local times; times=$(timed_verify "${ctls[@]}") || { fail "$tag: restart failed" "$base"; return 1; }
  for r in "${ctls[@]}"; do touch "$r/exit-request"; done
  stop_pid "$rpid" 60
  # the job's coordinator and agent exit by themselves when idle; do not leave them to it
  for p in $(pids_naming "$base/home"); do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$base"
  echo "ntasks $size $n $ckpt_s $times $cpu_s" >>"$RES"
}

echo "ferry multi-rank benchmark: $(date -u '+%Y-%m-%d %H:%M UTC'), $CORES CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ferry: $FERRY"
echo "store: $WORK ($(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }')), $RUNS runs, medians"
echo

# results: lines "KIND SIZE N CKPT_S RUN_S VERIFIED_S" (KIND single|launches|ntasks) and "dd SIZE N S"
RES=$WORK/results
: >"$RES"
loads=""
for size in ${SIZES//,/ }; do
  for run in $(seq 1 "$RUNS"); do
    loads+=" $(cut -d' ' -f1 /proc/loadavg)"
    echo "size $size MiB run $run/$RUNS: single ..." >&2
    separate_jobs single 1 "$size" "$run" || true
    for n in ${NTASKS//,/ }; do
      for mode in ${MODES//,/ }; do
        echo "size $size MiB run $run/$RUNS: $mode N=$n ..." >&2
        case "$mode" in
          launches) separate_jobs launches "$n" "$size" "$run" || true ;;
          ntasks) rank_job "$n" "$size" "$run" || true ;;
          *) echo "bench: unknown mode $mode" >&2; exit 64 ;;
        esac
      done
      echo "dd $size $n $(dd_run $((n * size)) "$WORK")" >>"$RES"
    done
  done
done

# col KIND SIZE N COLUMN: median of that column over the runs
col() { awk -v k="$1" -v s="$2" -v n="$3" -v c="$4" '$1 == k && $2 == s && $3 == n { printf "%s ", $c }' "$RES" | median; }
per_gib() { awk -v c="$1" -v m="$2" 'BEGIN { if (c != "-" && m > 0) printf "%.2f", c * 1024 / m; else print "-" }'; }
count() { awk -v k="$1" -v s="$2" -v n="$3" '$1 == k && $2 == s && $3 == n' "$RES" | wc -l; }

echo "checkpoint (rates: N*MiB over the wall time until every checkpoint is committed)"
echo "   MiB  N mode     |  ckpt s  GB/s | single s  GB/s |  dd s  GB/s | target GB/s limit |  ratio | cpu s/GiB  cores | runs ok"
echo "-------------------+---------------+----------------+-------------+-------------------+--------+-----------------+--------"
for size in ${SIZES//,/ }; do
  s_ckpt=$(col single "$size" 1 4); s_rate=$(gbps "$size" "$s_ckpt")
  s_cpu=$(col single "$size" 1 7)
  printf '%6s %2s %-8s | %7s %5s | %8s %5s | %5s %5s | %6s %-5s      | %6s | %9s %6s | %s/%s\n' \
    "$size" 1 single "$s_ckpt" "$s_rate" "" "" "" "" "" "" "" "$(per_gib "$s_cpu" "$size")" "$(ratio "$s_cpu" "$s_ckpt")" \
    "$(count single "$size" 1)" "$RUNS"
  for n in ${NTASKS//,/ }; do
    total=$((n * size)); dd_s=$(col dd "$size" "$n" 4); dd_rate=$(gbps "$total" "$dd_s")
    cores_target=$(awk -v r="$s_rate" -v n="$n" -v c="$CORES" 'BEGIN { printf "%.2f", r * (n < c ? n : c) }')
    read -r target limit < <(awk -v t="$cores_target" -v d="$dd_rate" 'BEGIN { if (d != "-" && d + 0 < t + 0) print d, "disk"; else print t, "cores" }')
    for mode in ${MODES//,/ }; do
      c=$(col "$mode" "$size" "$n" 4)
      if [ "$c" = - ]; then printf '%6s %2s %-8s | FAILED (see messages above)\n' "$size" "$n" "$mode"; continue; fi
      rate=$(gbps "$total" "$c")
      cpu=$(col "$mode" "$size" "$n" 7)
      printf '%6s %2s %-8s | %7s %5s | %8s %5s | %5s %5s | %6s %-5s      | %6s | %9s %6s | %s/%s\n' \
        "$size" "$n" "$mode" "$c" "$rate" "$s_ckpt" "$s_rate" "$dd_s" "$dd_rate" "$target" "$limit" \
        "$(ratio "$rate" "$target")" "$(per_gib "$cpu" "$total")" "$(ratio "$cpu" "$c")" "$(count "$mode" "$size" "$n")" "$RUNS"
    done
  done
done
echo
echo "restart (N restarts at once; run: until every process runs again, verified: until every one"
echo "re-read all of its memory and its hash was right; rates on the run time)"
echo "   MiB  N mode     |  run s  GB/s  verified s | single run s  GB/s  verified s | target GB/s |  ratio"
echo "-------------------+--------------------------+--------------------------------+-------------+-------"
for size in ${SIZES//,/ }; do
  s_run=$(col single "$size" 1 5); s_ver=$(col single "$size" 1 6); s_rate=$(gbps "$size" "$s_run")
  for n in ${NTASKS//,/ }; do
    total=$((n * size))
    target=$(awk -v r="$s_rate" -v n="$n" -v c="$CORES" 'BEGIN { printf "%.2f", r * (n < c ? n : c) }')
    for mode in ${MODES//,/ }; do
      run_s=$(col "$mode" "$size" "$n" 5)
      [ "$run_s" = - ] && continue
      rate=$(gbps "$total" "$run_s")
      printf '%6s %2s %-8s | %6s %5s %10s | %12s %5s %10s | %11s | %6s\n' \
        "$size" "$n" "$mode" "$run_s" "$rate" "$(col "$mode" "$size" "$n" 6)" "$s_run" "$s_rate" "$s_ver" "$target" "$(ratio "$rate" "$target")"
    done
  done
done
echo
echo "load average at the start of each run:$loads; now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "target = single GB/s x min(N, $CORES cores), or the dd rate of the same bytes if lower (limit: disk)"
echo "cpu s/GiB: CPU time (user + system, all threads) of the processes that write the images (the"
echo "  jobs' supervisors) during the checkpoint, per GiB; cores: that CPU time / the wall time. The"
echo "  kernel's background writeback and the other helpers' load are not in it."
