# Shared helpers of the bench scripts (run.sh, incremental.sh, multirank.sh, lazy.sh), sourced,
# not run: their common options, finding the build, a private work folder whose processes are all ended by PID at exit, timing
# and number formatting, medians, waiting for memhog's control files, the dd baseline.
# SPDX-License-Identifier: Apache-2.0

BENCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# bench_common_arg ARGS...: the options the scripts share, at the front of ARGS: --sizes,
# --runs, --store (sets STORE_PARENT), --ferry, --build-dir (sets BUILD), -h/--help (the
# caller's usage, exit 0); anything else is an unknown argument (usage on stderr, exit 64).
# Sets BENCH_SHIFT to the number of words used: `bench_common_arg "$@"; shift "$BENCH_SHIFT"`.
bench_common_arg() {
  BENCH_SHIFT=2
  case "$1" in
    --sizes) SIZES=${2:-} ;;
    --runs) RUNS=${2:-} ;;
    --store) STORE_PARENT=${2:-} ;;
    --ferry) FERRY=${2:-} ;;
    --build-dir) BUILD=${2:-} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown argument $1" >&2; usage >&2; exit 64 ;;
  esac
  [ $# -ge 2 ] || { echo "bench: $1 needs a value" >&2; usage >&2; exit 64; }
}

# bench_find_build PROG...: sets BUILD (if empty) to build/release, else the first build/*/ that
# holds bench/PROG for every PROG, as an absolute path; sets FERRY (if empty) to BUILD/cli/ferry.
# Exits 66 when a program is missing.
bench_find_build() {
  local d p ok
  if [ -z "${BUILD:-}" ]; then
    for d in "$BENCH_REPO/build/release" "$BENCH_REPO"/build/*; do
      ok=1
      for p in "$@"; do [ -x "$d/bench/$p" ] || ok=0; done
      [ -n "${FERRY:-}" ] || [ -x "$d/cli/ferry" ] || ok=0
      if [ "$ok" = 1 ]; then BUILD=$d; break; fi
    done
  fi
  [ -n "${BUILD:-}" ] && [ -d "$BUILD" ] && BUILD=$(cd "$BUILD" && pwd)
  [ -n "${FERRY:-}" ] || FERRY=${BUILD:-}/cli/ferry
  case "$FERRY" in /*) ;; *) FERRY=$PWD/$FERRY ;; esac
  for p in "$@"; do
    [ -x "${BUILD:-}/bench/$p" ] || { echo "bench: ${BUILD:-(no build)}/bench/$p not found or not executable (build first)" >&2; exit 66; }
  done
  [ -x "$FERRY" ] || { echo "bench: $FERRY not found or not executable (build first)" >&2; exit 66; }
}

# bench_work_dir PARENT PREFIX: creates WORK (a new folder under PARENT) and PIDS (processes
# this script started); at exit every process in PIDS, then every other process whose command
# line names WORK (the jobs' programs, supervisors, a local coordinator and agent), is killed by
# PID, and WORK is removed.
bench_work_dir() {
  mkdir -p "$1"
  WORK=$(mktemp -d "$1/$2.XXXXXX")
  PIDS=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# pids_naming TEXT: pids of the processes (not this shell) whose command line contains TEXT
pids_naming() {
  local d cmd
  for d in /proc/[0-9]*; do
    [ "${d#/proc/}" = "$$" ] && continue
    cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
    case "$cmd" in *"$1"*) echo "${d#/proc/}" ;; esac
  done
}

bench_cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
    wait "$p" 2>/dev/null || true
  done
  for p in $(pids_naming "$WORK"); do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}

now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
# gbps MIB SECONDS: MiB * 2^20 / s / 1e9
gbps() { awk -v mib="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.2f", mib * 1048576 / s / 1e9; else print "-" }'; }
# ratio A B [DECIMALS]
ratio() { awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN { if (b > 0) printf "%." d "f", a / b; else print "-" }'; }
# median: of the numbers on stdin (space or newline separated); "-" when none
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
  if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
  else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# wait_for exists|gone PATH TIMEOUT_S: 1 on timeout
wait_for() {
  local kind=$1 path=$2 limit=$(( $(date +%s) + $3 ))
  while :; do
    if [ "$kind" = exists ] && [ -e "$path" ]; then return 0; fi
    if [ "$kind" = gone ] && [ ! -e "$path" ]; then return 0; fi
    [ "$(date +%s)" -lt "$limit" ] || return 1
    sleep 0.02
  done
}

# memhog's own times (CLOCK_REALTIME ns, comparable with now_ns): when it took its verify request
# (CTL/taken) and when its pass ended (third field of CTL/verified). Polling every 2 ms forked a
# `sleep` 500 times a second on 2 cores, which slowed the restart being timed.
taken_ns() { cat "$1/taken"; }
verified_ns() { local _v _p ns; read -r _v _p ns <"$1/verified"; echo "$ns"; }

# stop_pid PID TIMEOUT_S: wait for PID (a child of this shell) to end; SIGKILL it after TIMEOUT_S
stop_pid() {
  local pid=$1 limit=$(( $(date +%s) + $2 ))
  while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$limit" ]; do sleep 0.01; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# job_host_pid JOB_JSON [running]: the job's program pid on the host (memhog's getpid() is its
# pid in the job's PID namespace); with "running", 0 until the supervisor recorded the job as
# running. 0 when unknown.
job_host_pid() {
  python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))
print(r.get("pid", 0) if len(sys.argv) < 3 or r.get("state") == "running" else 0)' "$@" 2>/dev/null || echo 0
}

# dd_run MIB FOLDER: seconds of dd if=/dev/zero bs=1M count=MIB conv=fsync into FOLDER
dd_run() {
  local t0 t1
  t0=$(now_ns)
  dd if=/dev/zero of="$2/dd.tmp" bs=1M count="$1" conv=fsync status=none
  t1=$(now_ns)
  rm -f "$2/dd.tmp"
  secs "$t0" "$t1"
}
