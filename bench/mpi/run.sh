#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# MPI benchmark: `ferry mpirun` against plain `mpirun`, in the same run, as ratios.
# 8-byte ping-pong latency, 1 MiB ping-pong bandwidth, 8-byte MPI_Allreduce, and a compute-bound
# kernel (100 blocks of ~1 ms of work, an Allreduce after each); 2 ranks.
# Each configuration runs REPS times, interleaved; the first table shows the median over runs of
# the per-run median batch, the second the best batch of all runs (mpi_bench.c prints both).
#
#   bash bench/mpi/run.sh [BUILD_DIR]      (default build/release; needs ferry, ferry-mpi-proxy built)
# Environment: REPS (3), MPIRUN_OPTS (extra mpirun options for both, e.g. "--bind-to none").
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-$here/../../build/release}
ferry=$build/cli/ferry
reps=${REPS:-3}
if ! command -v mpicc >/dev/null || ! command -v mpirun >/dev/null; then
  echo "bench/mpi: SKIP: mpicc/mpirun not found (install openmpi-bin libopenmpi-dev)"
  exit 0
fi
if [[ ! -x $build/mpi/ferry-mpi-proxy ]]; then
  echo "bench/mpi: no $build/mpi/ferry-mpi-proxy; build it first (cmake --build $build --target ferry-mpi-proxy)" >&2
  exit 1
fi
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export FERRY_HOME=$work/store   # the ferry jobs of this run, removed with it
mpicc -O2 -o "$work/mpi_bench" "$here/mpi_bench.c"
read -r -a opts <<<"--oversubscribe -np 2 ${MPIRUN_OPTS:-}"

echo "# $(date -u +%FT%TZ) $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg), $(mpirun --version | head -1)"
for r in $(seq "$reps"); do
  timeout 600 mpirun "${opts[@]}" "$work/mpi_bench" | sed 's/^/plain /' >>"$work/results"
  timeout 600 "$ferry" mpirun --name "bench-$r" "${opts[@]}" -- "$work/mpi_bench" 2>/dev/null | sed 's/^/ferry /' >>"$work/results"
done

python3 - "$work/results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    who, metric, _, median, _, best, unit = line.split()
    entry = runs.setdefault((metric, unit), {}).setdefault(who, {"median": [], "best": []})
    entry["median"].append(float(median))
    entry["best"].append(float(best))
print(f"{'metric':<16} {'plain mpirun':>14} {'ferry mpirun':>14} {'ferry/plain':>12}   (median batch, median of runs)")
for (metric, unit), by in runs.items():
    p, f = statistics.median(by["plain"]["median"]), statistics.median(by["ferry"]["median"])
    print(f"{metric:<16} {p:>10.3f} {unit:<4}{f:>10.3f} {unit:<4}{f / p:>11.2f}x")
print(f"{'metric':<16} {'plain mpirun':>14} {'ferry mpirun':>14} {'ferry/plain':>12}   (best batch of all runs)")
for (metric, unit), by in runs.items():
    pick = max if unit == "MB/s" else min
    p, f = pick(by["plain"]["best"]), pick(by["ferry"]["best"])
    print(f"{metric:<16} {p:>10.3f} {unit:<4}{f:>10.3f} {unit:<4}{f / p:>11.2f}x")
PY
