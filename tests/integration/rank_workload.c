/* SPDX-License-Identifier: Apache-2.0 */
/* rank_workload: one rank of the agent/cluster tests. A deterministic computation that depends
 * on FERRY_RANK and FERRY_NTASKS: fills MIB MiB of heap from a rank-seeded generator, then for
 * ITER steps updates it and prints "rank R/N step K sum S" (stdout) and, every 10 steps, a line
 * on stderr; sleeps SLEEP_MS between steps; finally re-checks all memory and prints "rank R
 * done". Output never depends on timing, so a run checkpointed, killed and restored prints
 * exactly what an uninterrupted run prints. Exits 0, rank 1 exits 3 (statuses must pass
 * through). Usage: rank_workload [MIB] [ITER] [SLEEP_MS] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 4;
  int iters = argc > 2 ? atoi(argv[2]) : 60;
  int sleep_ms = argc > 3 ? atoi(argv[3]) : 50;
  const char* r = getenv("FERRY_RANK");
  const char* nt = getenv("FERRY_NTASKS");
  if (!r || !nt) {
    fprintf(stderr, "rank_workload: FERRY_RANK and FERRY_NTASKS must be set\n");
    return 2;
  }
  int rank = atoi(r), ntasks = atoi(nt);
  size_t n = mib * 1024 * 1024 / sizeof(uint64_t);
  uint64_t* a = malloc(n * sizeof *a);
  if (!a) return 3;
  uint64_t x = 88172645463325252ull + (uint64_t)rank * 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    a[i] = x;
  }
  for (int it = 1; it <= iters; ++it) {
    uint64_t s = 0;
    for (size_t i = (size_t)(it + rank) % 256; i < n; i += 256) a[i] = a[i] * 6364136223846793005ull + (uint64_t)it, s += a[i];
    printf("rank %d/%d step %d sum %016llx\n", rank, ntasks, it, (unsigned long long)s);
    fflush(stdout);
    if (it % 10 == 0) fprintf(stderr, "rank %d passed step %d\n", rank, it);
    struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  uint64_t total = 0;
  for (size_t i = 0; i < n; ++i) total ^= a[i] + i;
  printf("rank %d done %016llx\n", rank, (unsigned long long)total);
  return rank == 1 ? 3 : 0;
}
