#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# ferry's Slurm Prolog (slurmd, as root, on every node of a job; docs/slurm-admin.md).
# Idempotent and quick; it never fails the job: a problem is logged and the job runs
# (a ferry job then reports it itself), because a failing Prolog drains the node.
#   1. /run/ferry-slurm (mode 1777): the node-local directory where `ferry slurm-run` leaves
#      one file per job naming its outcome file, for the epilog.
#   2. Cluster jobs only (FERRY_AGENT_COORDINATOR set in /etc/ferry/slurm.conf): make sure
#      this node's ferry-agent runs (pid file /run/ferry-slurm/agent-<node>.pid; started in
#      the background, under a flock so that prologs running at once start one, if the pid
#      file names no live ferry-agent). It outlives the job; stop it by that pid.
#      Jobs run with `ferry launch` on one node need nothing.
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
  node=${SLURMD_NODENAME:-$(hostname -s)}
  pidf=$DIR/agent-$node.pid
  # One check-and-start at a time on this node (jobs starting together run prologs at once).
  (
    flock -w 10 9 || { log "ferry-agent: could not lock $pidf.lock in 10 s (held, or no flock): not checked"; exit 0; }
    pid=$(cat "$pidf" 2>/dev/null | tr -dc 0-9)
    if [ -n "$pid" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = ferry-agent ]; then
      exit 0  # running
    fi
    agent=${FERRY_AGENT_PATH:-$(command -v ferry-agent)}
    if [ -x "$agent" ] && [ -n "${FERRY_AGENT_STORE:-}" ]; then
      # setsid + nohup: the agent must outlive this hook and not be tracked as part of the job.
      # FERRY_AGENT_OPTIONS: further options, split on blanks (e.g. --log-dir DIR --ferry PATH).
      # shellcheck disable=SC2086
      setsid nohup "$agent" --coordinator "$FERRY_AGENT_COORDINATOR" --node "$node" \
        --store "$FERRY_AGENT_STORE" ${FERRY_AGENT_SECRET:+--cluster-secret "$FERRY_AGENT_SECRET"} \
        ${FERRY_AGENT_OPTIONS:-} </dev/null >>"$LOG" 2>&1 9>&- &
      echo $! > "$pidf"
      # slurmd kills what is left of the prolog's process group when the prolog ends: wait
      # (at most 5 s) until the agent has left it (setsid and nohup done: comm is ferry-agent).
      # Under load the prolog could otherwise end before setsid ran, and the agent died unseen.
      for _ in $(seq 1 100); do
        [ "$(cat /proc/$!/comm 2>/dev/null)" = ferry-agent ] && break
        kill -0 $! 2>/dev/null || break
        sleep 0.05
      done
      log "started ferry-agent (pid $!) for coordinator $FERRY_AGENT_COORDINATOR"
    else
      log "ferry-agent not started: set FERRY_AGENT_PATH (or PATH) and FERRY_AGENT_STORE in $CONF"
    fi
  ) 9>"$pidf.lock"
fi
exit 0
