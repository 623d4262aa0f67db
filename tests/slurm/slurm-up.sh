#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# slurm-up.sh: a single-machine Slurm 22.05 (Debian 12 packages) for ferry's Slurm tests:
# munged, slurmctld and N simulated nodes (slurmd -N nodeK on ports 6818.., all loopback),
# with ferry's prolog/epilog (slurm/ferry-{prolog,epilog}.sh) installed, all configured in
# /etc/ferry-slurm-ci/slurm.conf (clients: SLURM_CONF=/etc/ferry-slurm-ci/slurm.conf). No
# systemd needed.
# Every daemon it starts is listed (name + pid file) in /run/ferry-slurm-ci/owned, and
# slurm-down.sh stops exactly those, by pid. Idempotent: a second run with the same config
# only checks. Exits 0 when every node is idle; otherwise prints the reason, exits non-zero.
# Settings: FERRY_SLURM_NODES (3), FERRY_SLURM_CPUS (2), FERRY_SLURM_GRACE (30),
# FERRY_SLURM_CRED_EXPIRE (5), FERRY_SLURM_CTLD_PORT (6917), FERRY_SLURM_SLURMD_PORT (6918).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE=/run/ferry-slurm-ci
# Our own configuration file (SLURM_CONF for the clients, -f for the daemons): a Slurm of the
# machine's own (/etc/slurm/slurm.conf, ports 6817/6818) is left alone.
CONF_DIR=/etc/ferry-slurm-ci
export SLURM_CONF=$CONF_DIR/slurm.conf
OWNED=$STATE/owned
NODES=${FERRY_SLURM_NODES:-3}
CPUS=${FERRY_SLURM_CPUS:-2}
GRACE=${FERRY_SLURM_GRACE:-30}
CRED=${FERRY_SLURM_CRED_EXPIRE:-5}
CTLD_PORT=${FERRY_SLURM_CTLD_PORT:-6917}
SD_PORT=${FERRY_SLURM_SLURMD_PORT:-6918}
MEM=1024
t0=$(date +%s)
log() { echo "[slurm-up +$(( $(date +%s) - t0 ))s] $*"; }
die() { echo "slurm-up: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts daemons)"

# ---- packages (the init scripts must not start daemons with the package's config)
missing=()
for p in slurmctld slurmd slurm-client munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null ||
    die "${missing[*]} not installed, and no apt-get here to install them (Debian packages slurmctld slurmd slurm-client munge)"
  log "installing ${missing[*]}"
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d; own_policy=1; fi
  rc=0
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}"; } > /tmp/ferry-slurm-apt.log 2>&1 || rc=$?
  [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || { tail -5 /tmp/ferry-slurm-apt.log >&2; die "apt-get install ${missing[*]} failed ($rc)"; }
fi
for c in munged munge unmunge slurmctld slurmd sinfo scontrol sbatch; do
  command -v "$c" >/dev/null || die "$c not found after the install"
done

alive() { # alive PIDFILE NAME: a live (not zombie) process NAME has the pid in PIDFILE
  local pid; [ -r "$1" ] || return 1; pid=$(tr -dc 0-9 < "$1") || return 1
  [ -n "$pid" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$2" ] &&
    ! grep -q '^State:[[:space:]]*Z' /proc/"$pid"/status 2>/dev/null
}
own() { mkdir -p "$STATE"; grep -qxF "$1 $2" "$OWNED" 2>/dev/null || echo "$1 $2" >> "$OWNED"; }
until_ok() { local end=$(( $(date +%s) + $1 )); shift
  until "$@"; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.2; done; }

# ---- configuration and hooks
mkdir -p "$CONF_DIR" "$STATE" /var/spool/ferry-slurm/ctld /var/log/ferry-slurm
install -m 755 "$REPO/slurm/ferry-prolog.sh" "$CONF_DIR/ferry-prolog.sh"
install -m 755 "$REPO/slurm/ferry-epilog.sh" "$CONF_DIR/ferry-epilog.sh"
# The hooks' settings (FERRY_SLURM_CONF; the machine's /etc/ferry/slurm.conf is left alone):
# Prolog/Epilog are wrappers that point the hooks at $CONF_DIR/ferry-hooks.conf, which also
# sources $CONF_DIR/job.d/<jobid>.conf: settings for one job only (a test submits the job
# --hold, writes the file, then releases it), so cases running side by side do not see them.
mkdir -p "$CONF_DIR/job.d"
cat > "$CONF_DIR/ferry-hooks.conf.new" <<CONFEOF
# Rendered by tests/slurm/slurm-up.sh: settings of ferry's hooks on the CI Slurm.
FERRY_SLURM_HOOK_LOG=/var/log/ferry-slurm/hooks.log
_ferry_job_conf=$CONF_DIR/job.d/\${SLURM_JOB_ID:-none}.conf
[ -r "\$_ferry_job_conf" ] && . "\$_ferry_job_conf"
CONFEOF
mv "$CONF_DIR/ferry-hooks.conf.new" "$CONF_DIR/ferry-hooks.conf"
for h in prolog epilog; do
  printf '#!/bin/sh\n# tests/slurm/slurm-up.sh: ferry-%s.sh with the CI settings\nFERRY_SLURM_CONF=%s/ferry-hooks.conf exec %s/ferry-%s.sh\n' \
    "$h" "$CONF_DIR" "$CONF_DIR" "$h" > "$CONF_DIR/$h.new"
  chmod 755 "$CONF_DIR/$h.new"; mv "$CONF_DIR/$h.new" "$CONF_DIR/$h"
done
for i in $(seq 1 "$NODES"); do mkdir -p /var/spool/ferry-slurm/node$i /var/tmp/ferry-slurm/node$i; done
conf=$(sed -e "s/@CRED_EXPIRE@/$CRED/; s/@CTLD_PORT@/$CTLD_PORT/; s/@SLURMD_PORT@/$SD_PORT/g" \
           -e "s/@LAST_PORT@/$(( SD_PORT + NODES - 1 ))/; s/@NODES@/$NODES/; s/@CPUS@/$CPUS/" \
           -e "s/@MEM@/$MEM/; s/@GRACE@/$GRACE/" \
           -e "s|@PROLOG@|$CONF_DIR/prolog|; s|@EPILOG@|$CONF_DIR/epilog|" \
           "$HERE/slurm.conf.in")
sha=$(echo "$conf" | sha256sum | cut -d' ' -f1)
running=0
alive "$STATE/slurmctld.pid" slurmctld && running=1
if [ "$running" = 1 ] && [ "$(cat "$STATE/conf.sha" 2>/dev/null)" != "$sha" ]; then
  log "configuration changed: restarting our daemons"
  FERRY_SLURM_KEEP_MUNGE=1 "$HERE/slurm-down.sh"
fi
cmp -s <(echo "$conf") "$SLURM_CONF" 2>/dev/null || echo "$conf" > "$SLURM_CONF"

# ---- munge
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok; then
  mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
  [ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=128 count=1 status=none
  chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
  chmod 700 /etc/munge; chmod 400 /etc/munge/munge.key; chmod 755 /run/munge
  alive /run/munge/munged.pid munged && die "munged runs but does not answer (see /var/log/munge/munged.log)"
  rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged
  own munged /run/munge/munged.pid
  until_ok 20 munge_ok || die "munged did not come up (see /var/log/munge/munged.log)"
fi

# ---- slurmctld, slurmd per node
if ! alive "$STATE/slurmctld.pid" slurmctld; then
  log "starting slurmctld"
  slurmctld -c -f "$SLURM_CONF"
  own slurmctld "$STATE/slurmctld.pid"
fi
echo "$sha" > "$STATE/conf.sha"
until_ok 30 sh -c 'scontrol ping 2>/dev/null | grep -q UP' ||
  { tail -5 /var/log/ferry-slurm/slurmctld.log >&2; die "slurmctld does not answer"; }
for i in $(seq 1 "$NODES"); do
  if ! alive "$STATE/slurmd-node$i.pid" slurmd; then
    slurmd -N "node$i" -f "$SLURM_CONF"
    own slurmd "$STATE/slurmd-node$i.pid"
  fi
done
ready() { local s; s=$(sinfo -h -N -o '%N %t' 2>/dev/null | sort -u) || return 1
  [ "$(echo "$s" | grep -c .)" -eq "$NODES" ] && ! echo "$s" | grep -qvE ' (idle|mix|alloc)$'; }
if ! until_ok 30 ready; then
  scontrol update NodeName=ALL State=RESUME 2>/dev/null || true
  until_ok 30 ready || { sinfo -N >&2; die "nodes not idle after 60 s"; }
fi
log "Slurm is up: $NODES nodes"
