#!/usr/bin/env bash
# Checkpoint/restart benchmark: for each size and workload, `ferry checkpoint` and `ferry
# restart` of a process holding N MiB of memory (memhog: incompressible words, or an HPC-like
# array of smooth doubles with zero blocks), next to baselines measured in the same run (dd
# conv=fsync to the same disk, reading the image, MADV_POPULATE_WRITE, memcpy,
# process_vm_readv). See bench/README.md.
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/run.sh [--sizes 256,1024,4096] [--workloads random,hpc] [--store DIR] [--runs N]
                    [--ferry PATH] [--build-dir DIR] [--cold]
  --sizes      MiB of memory per measurement (default 256,1024,4096)
  --workloads  memhog workloads (default random,hpc): random = incompressible words,
               hpc = smooth doubles with 12.5 % zero pages
  --store      folder on the disk to measure; a private subfolder is created and removed
               (default: a new folder under /var/tmp)
  --runs       runs per size, the median is shown (default 3 up to 1024 MiB, 1 above)
  --ferry      the ferry CLI (default BUILD/cli/ferry)
  --build-dir  build folder holding bench/{memhog,membw,populate} (default: build/release,
               else the first build/*/ that has them)
  --cold       drop the page cache (sync; echo 3 > /proc/sys/vm/drop_caches) before each
               restart: affects the whole machine
EOF
}

SIZES=256,1024,4096
WORKLOADS=random,hpc
STORE_PARENT=/var/tmp
RUNS=""
FERRY=""
BUILD=""
COLD=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) SIZES=$2; shift 2 ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --store) STORE_PARENT=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --ferry) FERRY=$2; shift 2 ;;
    --build-dir) BUILD=$2; shift 2 ;;
    --cold) COLD=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown argument $1" >&2; usage >&2; exit 64 ;;
  esac
done

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_find_build memhog membw populate
MEMHOG=$BUILD/bench/memhog
MEMBW=$BUILD/bench/membw
POPULATE=$BUILD/bench/populate
bench_work_dir "$STORE_PARENT" ferry-bench

fail_run() { echo "bench: size $1 run $2: $3" >&2; for f in "$4"/*.err; do [ -s "$f" ] && sed "s|^|  $(basename "$f"): |" "$f" | tail -5 >&2; done; return 1; }

# one_run SIZE WORKLOAD RUN: appends "ckpt verify_inplace restart_run restart_verified
# image_bytes image_read" to $WORK/results-SIZE-WORKLOAD
one_run() {
  local size=$1 wl=$2 run=$3 ctl=$WORK/ctl-$1-$2-$3 home=$WORK/store-$1-$2-$3
  mkdir -p "$ctl"
  "$FERRY" launch --store "$home" --name bench -- "$MEMHOG" "$size" "$ctl" "$wl" \
    >"$ctl/launch.out" 2>"$ctl/launch.err" &
  local lpid=$!; PIDS+=("$lpid")
  wait_for exists "$ctl/ready" 900 || { stop_pid "$lpid" 0; fail_run "$size/$wl" "$run" "memhog never got ready" "$ctl"; return 1; }
  # memhog's own getpid() is its pid inside the job's PID namespace; kill needs the host pid,
  # which the job record holds once the supervisor has saved it.
  local mpid=0 _
  for _ in $(seq 1 500); do
    mpid=$(job_host_pid "$home/jobs/1/job.json" running)
    [ "${mpid:-0}" -gt 1 ] && break
    sleep 0.02
  done

  # baseline for the restart figure: verifying the checksum in the original process
  local t0 t1
  touch "$ctl/verify-request"
  wait_for exists "$ctl/verified" 600 || { stop_pid "$lpid" 0; fail_run "$size/$wl" "$run" "no in-place verification" "$ctl"; return 1; }
  local verify_s; verify_s=$(secs "$(taken_ns "$ctl")" "$(verified_ns "$ctl")"); rm -f "$ctl/verified" "$ctl/taken"

  sync   # earlier dirty pages are not the checkpoint's to write
  t0=$(now_ns)
  if ! "$FERRY" checkpoint --store "$home" bench >"$ctl/ckpt.out" 2>"$ctl/ckpt.err"; then
    stop_pid "$lpid" 0; fail_run "$size/$wl" "$run" "ferry checkpoint failed" "$ctl"; return 1
  fi
  t1=$(now_ns); local ckpt_s; ckpt_s=$(secs "$t0" "$t1")
  # the program's pause as ferry reports it ("process paused X s")
  local pause_s; pause_s=$(sed -n 's/.*process paused \([0-9.]*\) s.*/\1/p' "$ctl/ckpt.err" | head -1)
  local image_bytes; image_bytes=$(du -sb "$home/jobs" | awk '{ print $1 }')
  # baseline for the restart figure: reading the image files, in the page cache as the restart
  # will find them (the checkpoint wrote them with O_DIRECT: a first cat reads the disk and
  # fills the cache, the second is timed; with --cold both read the disk)
  if [ "$COLD" = 1 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; else cat "$home"/jobs/1/gen-*/*.h5 >/dev/null; fi
  t0=$(now_ns); cat "$home"/jobs/1/gen-*/*.h5 >/dev/null; t1=$(now_ns)
  local read_s; read_s=$(secs "$t0" "$t1")

  if [ "${mpid:-0}" -gt 1 ]; then kill -KILL "$mpid" 2>/dev/null || true; fi
  stop_pid "$lpid" 30
  if [ "$COLD" = 1 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi

  rm -f "$ctl/verified" "$ctl/taken"
  touch "$ctl/verify-request"
  t0=$(now_ns)
  "$FERRY" restart --store "$home" bench >"$ctl/restart.out" 2>"$ctl/restart.err" &
  local rpid=$!; PIDS+=("$rpid")
  if ! wait_for gone "$ctl/verify-request" 900; then
    stop_pid "$rpid" 0; fail_run "$size/$wl" "$run" "the restarted memhog never ran" "$ctl"; return 1
  fi
  if ! wait_for exists "$ctl/verified" 900; then
    stop_pid "$rpid" 0; fail_run "$size/$wl" "$run" "the restarted memhog never verified" "$ctl"; return 1
  fi
  local t_run; t_run=$(taken_ns "$ctl"); t1=$(verified_ns "$ctl")
  local verdict rmpid; read -r verdict rmpid _ <"$ctl/verified"
  # memhog reports its pid inside the job's PID namespace; the host pid is in the job record.
  local hostpid; hostpid=$(job_host_pid "$home/jobs/1/job.json")
  touch "$ctl/exit-request"
  stop_pid "$rpid" 60
  if [ "${hostpid:-0}" -gt 1 ] && kill -0 "$hostpid" 2>/dev/null; then kill -KILL "$hostpid" 2>/dev/null || true; fi
  if [ "$verdict" != OK ]; then fail_run "$size/$wl" "$run" "restored memory has a WRONG checksum" "$ctl"; return 1; fi
  echo "$ckpt_s $verify_s $(secs "$t0" "$t_run") $(secs "$t0" "$t1") $image_bytes $read_s ${pause_s:--1}" >>"$WORK/results-$size-$wl"
  rm -rf "$home"
}

# full_pause SIZE WORKLOAD: appends the pause of one checkpoint taken without a snapshot
# (FERRY_CHECKPOINT_SNAPSHOT=0: the program stopped for the whole write, the old behaviour) to
# $WORK/fullpause-SIZE-WORKLOAD
full_pause() {
  local size=$1 wl=$2 ctl=$WORK/ctl-$1-$2-full home=$WORK/store-$1-$2-full
  mkdir -p "$ctl"
  FERRY_CHECKPOINT_SNAPSHOT=0 "$FERRY" launch --store "$home" --name bench -- "$MEMHOG" "$size" "$ctl" "$wl" \
    >"$ctl/launch.out" 2>"$ctl/launch.err" &
  local lpid=$!; PIDS+=("$lpid")
  wait_for exists "$ctl/ready" 900 || { stop_pid "$lpid" 0; return 1; }
  sync
  if "$FERRY" checkpoint --store "$home" bench >"$ctl/ckpt.out" 2>"$ctl/ckpt.err"; then
    sed -n 's/.*process paused \([0-9.]*\) s.*/\1/p' "$ctl/ckpt.err" | head -1 >>"$WORK/fullpause-$size-$wl"
  fi
  touch "$ctl/exit-request"
  stop_pid "$lpid" 60
  rm -rf "$home"
}

echo "ferry benchmark: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ferry: $FERRY"
echo "store: $WORK ($(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }'))$([ "$COLD" = 1 ] && echo ', cold page cache before restarts')"

max_size=$(echo "$SIZES" | tr ',' '\n' | sort -g | tail -1)
bw_size=$(( max_size < 1024 ? max_size : 1024 ))
read -r memcpy_line < <("$MEMBW" "$bw_size" 5)
memcpy_gbps=$(echo "$memcpy_line" | sed -n 's/.*memcpy_gbps=\([0-9.]*\).*/\1/p')
pvr_gbps=$(echo "$memcpy_line" | sed -n 's/.*pvr_gbps=\([0-9.]*\).*/\1/p')
echo "baselines ($bw_size MiB, median of 5): memcpy $memcpy_gbps GB/s, process_vm_readv $pvr_gbps GB/s"
echo

rows=()
for size in ${SIZES//,/ }; do
  runs=${RUNS:-$([ "$size" -le 1024 ] && echo 3 || echo 1)}
  dd_times=""; pop_times=""; pass_times=""; thp_times=""
  for run in $(seq 1 "$runs"); do
    dd_times+=" $(dd_run "$size" "$WORK")"
    read -r pop_line < <("$POPULATE" "$size")
    pop_times+=" $(echo "$pop_line" | sed -n 's/.*populate_s=\([0-9.]*\).*/\1/p')"
    pass_times+=" $(echo "$pop_line" | sed -n 's/.*first_pass_s=\([0-9.]*\).*/\1/p')"
    thp_times+=" $(echo "$pop_line" | sed -n 's/.*populate_thp_s=\([0-9.]*\).*/\1/p')"
    for wl in ${WORKLOADS//,/ }; do
      echo "size $size MiB $wl run $run/$runs ..." >&2
      one_run "$size" "$wl" "$run" || true
      if [ "$run" = 1 ]; then full_pause "$size" "$wl" || true; fi
    done
  done
  dd_s=$(echo "$dd_times" | median); pop_s=$(echo "$pop_times" | median)
  pass_s=$(echo "$pass_times" | median); thp_s=$(echo "$thp_times" | median)
  for wl in ${WORKLOADS//,/ }; do
    res=$WORK/results-$size-$wl
    if [ ! -s "$res" ]; then
      rows+=("$(printf '%6s %-6s | %-40s | %6s' "$size" "$wl" "FAILED (see messages above)" "$dd_s")")
      continue
    fi
    ok_runs=$(wc -l <"$res")
    col() { awk -v c="$1" '{ printf "%s ", $c }' "$res" | median; }
    firstpass() { awk '{ printf "%.3f ", $4 - $3 }' "$res" | median; }
    ckpt_s=$(col 1); verify_s=$(col 2); run_s=$(col 3); restart_s=$(col 4); img=$(col 5); read_s=$(col 6)
    pause_s=$(col 7); full_s=$(head -1 "$WORK/fullpause-$size-$wl" 2>/dev/null || true); full_s=${full_s:--}
    fp_s=$(firstpass)
    rows+=("$(printf '%6s %-6s | %7s %6s %5s | %6s %6s %5s | %5s | %6s %6s %6s %6s | %6s %5s | %6s %6s %5s | %7s | %s/%s' \
      "$size" "$wl" "$ckpt_s" "$(gbps "$size" "$ckpt_s")" "$(ratio "$ckpt_s" "$dd_s")" \
      "$pause_s" "$full_s" "$(ratio "$pause_s" "$full_s")" \
      "$(ratio "$img" "$(( size * 1048576 ))")" \
      "$dd_s" "$read_s" "$pop_s" "$thp_s" \
      "$run_s" "$(ratio "$run_s" "$(awk -v a="$read_s" -v b="$pop_s" 'BEGIN { print a + b }')")" \
      "$fp_s" "$verify_s" "$(ratio "$fp_s" "$verify_s")" "$restart_s" "$ok_runs" "$runs")")
  done
  rows+=("$(printf '%6s %-6s   (no ferry) MADV_POPULATE_WRITE %s s, then a first user pass over it %s s (%sx the original memhog'"'"'s pass)' \
    "$size" "" "$pop_s" "$pass_s" "$(ratio "$pass_s" "$(awk '{ printf "%s ", $2 }' "$WORK"/results-"$size"-* 2>/dev/null | median)")")")
done

echo "   MiB wkload |  ckpt s   GB/s   /dd | pause  full  /full | img/  |   dd s  read s  pop s thppop |  run s  /r+p  | 1stpass  orig  ratio | verified | runs ok"
echo "              |                      |   s      s         |  mem  |                             |               |                      |    s     |"
echo "--------------+----------------------+---------------------+-------+-----------------------------+---------------+----------------------+----------+--------"
for r in "${rows[@]}"; do echo "$r"; done
echo
echo "ckpt: \`ferry checkpoint\` wall time (committed and durable); /dd: ckpt time / dd time"
echo "pause: how long the program was stopped (ferry's report; copy-on-write snapshot); full: the pause"
echo "  of one checkpoint of the same memory without snapshot (FERRY_CHECKPOINT_SNAPSHOT=0, whole write)"
echo "dd: dd if=/dev/zero bs=1M count=MiB conv=fsync to the store's disk; img/mem: image bytes / memory bytes"
echo "read: cat of the image files (page cache as the restart finds it); pop: MADV_POPULATE_WRITE of"
echo "  MiB fresh 4 KiB pages; thppop: the same in 2 MiB pages (bench/populate.c)"
echo "run: \`ferry restart\` start -> restored memhog runs; /r+p: run / (read + pop), the issue's restore target"
echo "1stpass: the restored memhog's first pass over its memory (verified - run); orig: the same pass in"
echo "  the original process; ratio: 1stpass / orig"
echo "verified: restart start -> the first pass is done and the checksum was OK (the restart time)"
echo "GB/s = MiB * 2^20 / s / 1e9; reference: memcpy $memcpy_gbps GB/s, process_vm_readv $pvr_gbps GB/s"
