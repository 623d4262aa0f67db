#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# slurm-down.sh: stops what tests/slurm/slurm-up.sh started, by the pid files it listed in
# /run/ferry-slurm-ci/owned (never by process name; /proc/PID/comm is checked before each
# signal): jobs are cancelled first, then slurmd, slurmctld and munged get TERM (KILL after
# 20 s). FERRY_SLURM_KEEP_MUNGE=1 leaves munged running.
set -uo pipefail
STATE=/run/ferry-slurm-ci
OWNED=$STATE/owned
export SLURM_CONF=/etc/ferry-slurm-ci/slurm.conf
log() { echo "[slurm-down] $*"; }
[ -s "$OWNED" ] || { log "nothing to stop"; exit 0; }
live() { [ "$(cat /proc/"$1"/comm 2>/dev/null)" = "$2" ] && ! grep -q '^State:[[:space:]]*Z' /proc/"$1"/status 2>/dev/null; }
if grep -q '^slurmctld ' "$OWNED"; then
  jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
  if [ -n "${jobs// }" ]; then
    log "cancelling jobs $jobs"
    scancel $jobs 2>/dev/null || true
    for _ in $(seq 1 100); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
  fi
fi
for name in slurmd slurmctld munged; do
  [ "$name" = munged ] && [ "${FERRY_SLURM_KEEP_MUNGE:-0}" = 1 ] && continue
  while read -r n pf; do
    [ "$n" = "$name" ] || continue
    pid=$(tr -dc 0-9 < "$pf" 2>/dev/null)
    if [ -n "$pid" ] && live "$pid" "$name"; then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 1 100); do live "$pid" "$name" || break; sleep 0.2; done
      live "$pid" "$name" && { log "$name $pid: SIGKILL"; kill -KILL "$pid" 2>/dev/null; }
    fi
    rm -f "$pf"
  done < "$OWNED"
  grep -v "^$name " "$OWNED" > "$OWNED.tmp"; mv "$OWNED.tmp" "$OWNED"
done
[ -s "$OWNED" ] || rm -f "$OWNED" "$STATE/conf.sha"
log "done"
