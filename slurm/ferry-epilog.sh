#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# ferry's Slurm Epilog (slurmd, as root, on every node of a job; docs/slurm-admin.md).
# Jobs that do not use ferry: nothing to do (no /run/ferry-slurm/<job> file), exit 0.
# A job whose step was `ferry slurm-run` left /run/ferry-slurm/<job> naming its outcome file
# (<store>/slurm/<name>.outcome). If the run ended without a final line (its last line says
# launched/restarting: ferry slurm-run itself was killed, node trouble), the epilog appends
# what `scontrol show job` says (JobState, Reason, ExitCode). It cannot change the job's
# Comment any more (slurmctld answers "Job has already finished" to updates from the slurmd
# Epilog, measured with 22.05), so the Comment keeps ferry's last word. Slurm's own
# SLURM_JOB_EXIT_CODE* variables read 0:0 on cancel, timeout and requeue and are not used. Then it removes the node-local file.
# Never blocks for long: every command that may wait on something else (scontrol on
# slurmctld, reads/appends on the shared store, which may hang on NFS) runs under
# `timeout FERRY_SLURM_HOOK_TIMEOUT` (10 s each, at most 4 of them); always exits 0 (a failing
# Epilog drains the node).
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
CONF=${FERRY_SLURM_CONF:-/etc/ferry/slurm.conf}
[ -r "$CONF" ] && . "$CONF"
DIR=${FERRY_SLURM_NODE_DIR:-/run/ferry-slurm}
LOG=${FERRY_SLURM_HOOK_LOG:-/var/log/ferry-slurm-hooks.log}
T=${FERRY_SLURM_HOOK_TIMEOUT:-10}
case "$T" in ''|*[!0-9]*) T=10 ;; esac
job=${SLURM_JOB_ID:-}
case "$job" in ''|*[!0-9_]*) exit 0 ;; esac
ptr=$DIR/$job
[ -f "$ptr" ] || exit 0
out=$(head -n1 "$ptr" 2>/dev/null)  # node-local
rm -f "$ptr"
case "$out" in /*.outcome) ;; *) exit 0 ;; esac
# On the shared store: a regular file of the job's own user (the pointer is written by the
# job, we run as root), stat and read under the timeout.
owner=$(timeout "$T" stat -L -c '%F %u' "$out" 2>/dev/null)
[ "$owner" = "regular file ${SLURM_JOB_UID:-x}" ] || [ "$owner" = "regular empty file ${SLURM_JOB_UID:-x}" ] || exit 0
last=$(timeout "$T" tail -n1 "$out" 2>/dev/null)
case "$last" in
  *": launched"*|*": restarting from"*|*"launched afresh"*|*"SIGTERM"*)
    info=$(timeout "$T" scontrol show job "$job" 2>/dev/null | tr ' ' '\n' |
           grep -E '^(JobState|Reason|ExitCode|Restarts)=' | tr '\n' ' ')
    line="$(date +%FT%T) epilog on ${SLURMD_NODENAME:-?}: the run ended without a ferry outcome (no checkpoint taken): ${info:-scontrol gave nothing}"
    timeout "$T" sh -c 'echo "$1" >> "$2"' epilog "$line" "$out" 2>/dev/null
    echo "$(date +%FT%T) epilog job $job: $line" >> "$LOG" 2>/dev/null
    ;;
esac
exit 0
