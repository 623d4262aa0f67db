#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# ferry's Slurm Prolog (slurmd, as root, on every node of a job; docs/slurm-admin.md).
# Idempotent and quick; it never fails the job: a problem is logged and the job runs
# (a ferry job then reports it itself), because a failing Prolog drains the node.
#   1. /run/ferry-slurm (mode 1777): the node-local directory where `ferry slurm-run` leaves
#      one file per job naming its outcome file, for the epilog.
#   2. Cluster jobs only (FERRY_AGENT_COORDINATOR set in /etc/ferry/slurm.conf): make sure
#      this node's ferry-agent runs (pid file /run/ferry-slurm/agent.pid; started in the
#      background if it is not alive). Jobs run with `ferry launch` on one node need nothing.
# Slurm runs hooks with no PATH: set one. Settings: /etc/ferry/slurm.conf (shell syntax).
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
CONF=${FERRY_SLURM_CONF:-/etc/ferry/slurm.conf}
[ -r "$CONF" ] && . "$CONF"
DIR=${FERRY_SLURM_NODE_DIR:-/run/ferry-slurm}
LOG=${FERRY_SLURM_HOOK_LOG:-/var/log/ferry-slurm-hooks.log}
log() { echo "$(date +%FT%T) prolog job ${SLURM_JOB_ID:-?} node ${SLURMD_NODENAME:-?}: $*" >> "$LOG" 2>/dev/null; }

mkdir -p "$DIR" 2>/dev/null && chmod 1777 "$DIR" 2>/dev/null || log "cannot create $DIR"

if [ -n "${FERRY_AGENT_COORDINATOR:-}" ]; then
  pidf=$DIR/agent-${SLURMD_NODENAME:-node}.pid
  pid=$(cat "$pidf" 2>/dev/null | tr -dc 0-9)
  if [ -n "$pid" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = ferry-agent ]; then
    :  # running
  else
    agent=${FERRY_AGENT_PATH:-$(command -v ferry-agent)}
    if [ -x "$agent" ] && [ -n "${FERRY_AGENT_STORE:-}" ]; then
      # setsid + nohup: the agent must outlive this hook and not be tracked as part of the job.
      setsid nohup "$agent" --coordinator "$FERRY_AGENT_COORDINATOR" \
        --node "${SLURMD_NODENAME:-$(hostname -s)}" --store "$FERRY_AGENT_STORE" \
        </dev/null >>"$LOG" 2>&1 &
      echo $! > "$pidf"
      log "started ferry-agent (pid $!)"
    else
      log "ferry-agent not started: set FERRY_AGENT_PATH (or PATH) and FERRY_AGENT_STORE in $CONF"
    fi
  fi
fi
exit 0
