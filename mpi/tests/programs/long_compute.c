/* SPDX-License-Identifier: Apache-2.0
 * A rank that computes for a long time without any MPI call (issue 5 section 6: a rank stuck
 * outside MPI for longer than a checkpoint's timeout must still be checkpointable).
 * Every step: a ring exchange (Sendrecv) and an Allreduce of a running checksum, then a short
 * sleep; at step COMPUTE_STEP, rank COMPUTE_RANK prints "rank R computing", spins on the CPU
 * for COMPUTE_S seconds (no MPI call; the others wait for it in Sendrecv/Allreduce), then
 * prints "rank R computed". Each rank prints one line per step with its checksum, and
 * "rank R PASS" at the end; the output does not depend on timing.
 * Usage: long_compute [STEPS] [COMPUTE_STEP] [COMPUTE_RANK] [COMPUTE_S] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  setvbuf(stdout, NULL, _IOLBF, 0);
  int steps = argc > 1 ? atoi(argv[1]) : 40;
  int compute_step = argc > 2 ? atoi(argv[2]) : 10;
  int compute_rank = argc > 3 ? atoi(argv[3]) : 1;
  double compute_s = argc > 4 ? atof(argv[4]) : 8.0;
  int next = (rank + 1) % size, prev = (rank + size - 1) % size;
  unsigned long long sum = (unsigned long long)rank + 1;
  for (int step = 0; step < steps; step++) {
    if (step == compute_step && rank == compute_rank) {
      printf("rank %d computing\n", rank);
      volatile unsigned long long x = 1;
      double t0 = now();
      while (now() - t0 < compute_s)
        for (int k = 0; k < 100000; k++) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      printf("rank %d computed\n", rank);
    }
    unsigned long long out = sum * 31 + (unsigned long long)step, in = 0, total = 0;
    MPI_Sendrecv(&out, 1, MPI_UNSIGNED_LONG_LONG, next, step, &in, 1, MPI_UNSIGNED_LONG_LONG, prev, step,
                 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    sum = sum * 1099511628211ULL ^ in;
    MPI_Allreduce(&sum, &total, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    sum ^= total;
    printf("step %d rank %d sum %llu\n", step, rank, sum);
    usleep(20000);
  }
  printf("rank %d PASS\n", rank);
  MPI_Finalize();
  return 0;
}
