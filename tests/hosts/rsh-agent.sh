#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# ssh replacement for simulated hosts (netns-hosts.sh): `rsh-agent.sh HOST CMD...` runs CMD
# in the host's network namespace with its own hostname. HOST is 10.77.0.I or hI; the prefix
# of the namespaces comes from $FERRY_HOSTS_PREFIX. For Open MPI:
#   FERRY_HOSTS_PREFIX=p mpirun --mca plm_rsh_agent tests/hosts/rsh-agent.sh \
#       --mca oob_tcp_if_include 10.77.0.0/24 --mca btl_tcp_if_include 10.77.0.0/24 \
#       --host 10.77.0.1:2,10.77.0.2:2 ...
# (mpirun itself running in PREFIX-head: netns-hosts.sh exec PREFIX head head -- mpirun ...).
# Options an ssh client would take (-x, -o X, -p N ...) before HOST are ignored.
set -eu
: "${FERRY_HOSTS_PREFIX:?set FERRY_HOSTS_PREFIX to the netns-hosts.sh prefix}"
while [ $# -gt 0 ]; do
  case "$1" in
    -o|-p|-l|-i) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
host=${1:?HOST}
shift
case "$host" in
  10.77.0.*) i=${host##*.} ;;
  h[0-9]*) i=${host#h} ;;
  *) echo "rsh-agent.sh: unknown simulated host $host" >&2; exit 255 ;;
esac
# Like ssh, the remote command is one shell string.
exec ip netns exec "$FERRY_HOSTS_PREFIX-h$i" unshare --uts sh -c "hostname h$i; $*"
