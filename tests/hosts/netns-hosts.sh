#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Simulated "hosts" for tests: network namespaces joined by a bridge on a private subnet
# (shared/reference/env.md, "Ranks on separate hosts via network namespaces").
#
#   netns-hosts.sh up   PREFIX N   create PREFIX-head (bridge at 10.77.0.254/24) and PREFIX-h1 ..
#                                  PREFIX-hN (10.77.0.1 .. 10.77.0.N), each joined to the bridge
#                                  by a veth pair; prints "PREFIX-hI 10.77.0.I hI" per host
#   netns-hosts.sh down PREFIX N   SIGKILL every process left in those namespaces (by PID, from
#                                  `ip netns pids`) and delete them; idempotent, never fails
#   netns-hosts.sh exec PREFIX NS_SUFFIX HOSTNAME -- CMD...
#                                  run CMD in PREFIX-NS_SUFFIX with its own UTS namespace and
#                                  hostname HOSTNAME (e.g. `exec p head head -- mpirun ...`)
#
# The subnet exists only inside the namespaces (the root namespace is untouched, no interface
# is ever created there), so concurrent topologies with other prefixes do not interfere. The
# filesystem, /dev/shm and the PID namespace stay shared: this models separate networks and
# hostnames, not separate kernels. Needs root and iproute2. Used by mpi/tests/test_mpi_hosts.py
# and by the Slurm tests across simulated nodes; rsh-agent.sh is the matching ssh replacement.
set -eu

cmd=${1:-}
prefix=${2:-}
[ -n "$cmd" ] && [ -n "$prefix" ] || { echo "usage: $0 up|down|exec PREFIX ..." >&2; exit 64; }

case "$cmd" in
up)
  n=${3:?N}
  ip netns add "$prefix-head"
  ip -n "$prefix-head" link set lo up
  ip -n "$prefix-head" link add br0 type bridge
  ip -n "$prefix-head" addr add 10.77.0.254/24 dev br0
  ip -n "$prefix-head" link set br0 up
  i=1
  while [ "$i" -le "$n" ]; do
    ns="$prefix-h$i"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # The pair is created inside the host namespace; its peer goes straight to the head.
    ip -n "$ns" link add eth0 type veth peer name "vh$i" netns "$prefix-head"
    ip -n "$ns" addr add "10.77.0.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$prefix-head" link set "vh$i" master br0
    ip -n "$prefix-head" link set "vh$i" up
    echo "$ns 10.77.0.$i h$i"
    i=$((i + 1))
  done
  # Wait (bounded, 5 s) until every host's link is up (no ping on this machine; the bridge has
  # no STP, so it forwards as soon as its ports are up).
  i=1
  while [ "$i" -le "$n" ]; do
    tries=0
    until ip -n "$prefix-h$i" -o link show eth0 | grep -q "state UP"; do
      tries=$((tries + 1))
      [ "$tries" -lt 50 ] || { echo "netns-hosts.sh: the link of host h$i is not up" >&2; exit 1; }
      sleep 0.1
    done
    i=$((i + 1))
  done
  ;;
down)
  n=${3:?N}
  set +e
  for ns in "$prefix-head" $(i=1; while [ "$i" -le "$n" ]; do echo "$prefix-h$i"; i=$((i + 1)); done); do
    ip netns list 2>/dev/null | grep -q "^$ns\b" || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    ip netns delete "$ns" 2>/dev/null
  done
  exit 0
  ;;
exec)
  suffix=${3:?NS_SUFFIX}
  name=${4:?HOSTNAME}
  shift 4
  [ "${1:-}" = "--" ] && shift
  exec ip netns exec "$prefix-$suffix" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$name" "$@"
  ;;
*)
  echo "usage: $0 up|down|exec PREFIX ..." >&2
  exit 64
  ;;
esac
