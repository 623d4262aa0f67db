/* SPDX-License-Identifier: Apache-2.0 */
/* cluster_workload: one rank of the cluster integration test. A deterministic computation
 * that depends on FERRY_RANK: fills MIB MiB with a rank-seeded pattern, then for ITER
 * iterations updates a strided slice, prints "rank R iter N sum S" and sleeps SLEEP_MS;
 * finally prints "rank R done" and exits with EXIT (default 0). Its output is identical in
 * an uninterrupted run and in a run checkpointed, killed and restarted anywhere.
 * Usage: cluster_workload MIB ITER SLEEP_MS [EXIT] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 4;
  int iters = argc > 2 ? atoi(argv[2]) : 50;
  int sleep_ms = argc > 3 ? atoi(argv[3]) : 50;
  int code = argc > 4 ? atoi(argv[4]) : 0;
  const char* r = getenv("FERRY_RANK");
  const char* nt = getenv("FERRY_NTASKS");
  int rank = r ? atoi(r) : -1;
  size_t n = mib * 1024 * 1024 / sizeof(uint64_t);
  uint64_t* a = malloc(n * sizeof *a);
  if (!a) return 2;
  uint64_t x = 88172645463325252ull + (uint64_t)rank * 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    a[i] = x;
  }
  printf("rank %d of %s start\n", rank, nt ? nt : "?");
  fflush(stdout);
  for (int it = 1; it <= iters; ++it) {
    uint64_t s = 0;
    for (size_t i = (size_t)(it + rank) % 256; i < n; i += 256) a[i] = a[i] * 6364136223846793005ull + (uint64_t)it, s += a[i];
    printf("rank %d iter %d sum %016llx\n", rank, it, (unsigned long long)s);
    fflush(stdout);
    struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  printf("rank %d done\n", rank);
  fflush(stdout);
  return rank == 1 ? code : 0;
}
