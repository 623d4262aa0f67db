// SPDX-License-Identifier: Apache-2.0
// MPI workload of the Slurm tests: STEPS steps; each rank updates 1 MiB of its own memory,
// then an MPI_Allreduce combines the ranks' accumulators; rank 0 prints "step N" each step
// and "result X" at the end. The result depends on every step of every rank.
//   mpi_workload STEPS SLEEP_MS
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  long steps = argc > 1 ? atol(argv[1]) : 10, sleep_ms = argc > 2 ? atol(argv[2]) : 0;
  enum { kWords = 1 << 17 };
  uint64_t* mem = malloc(sizeof(uint64_t) * kWords);
  for (size_t i = 0; i < kWords; ++i) mem[i] = i + (uint64_t)rank;
  setvbuf(stdout, NULL, _IOLBF, 0);
  uint64_t acc = 1;
  for (long s = 0; s < steps; ++s) {
    uint64_t local = 0;
    for (size_t i = 0; i < kWords; i += 5) {
      mem[i] = mix(mem[i] + acc + (uint64_t)s);
      local += mem[i];
    }
    uint64_t sum = 0;
    MPI_Allreduce(&local, &sum, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    acc = mix(acc ^ sum);
    if (rank == 0) printf("step %ld\n", s);
    struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
  }
  if (rank == 0) printf("result %016llx\n", (unsigned long long)acc);
  MPI_Finalize();
  return 0;
}
