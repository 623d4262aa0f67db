/* SPDX-License-Identifier: Apache-2.0 */
/* heat_mpi: the MPI demo workload. The 2-D heat equation on an N x N plate with a hot top
 * edge, split into horizontal bands, one per rank. Every step each rank exchanges its edge
 * rows with its neighbours (MPI_Sendrecv, MPI_PROC_NULL at the plate's edges); every REPORT
 * steps the ranks combine the total heat (MPI_Allreduce of doubles) and an exact checksum of
 * the plate's bits (MPI_Allreduce of uint64 with XOR), and rank 0 prints one line.
 * Deterministic for a given number of ranks: every run prints the same lines.
 * Usage: heat_mpi [N=512] [STEPS=6000] */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t mix(uint64_t h, double x) {
  uint64_t b;
  memcpy(&b, &x, sizeof b);
  h ^= b + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int n = argc > 1 ? atoi(argv[1]) : 512;
  int steps = argc > 2 ? atoi(argv[2]) : 6000;
  int report = steps / 12 > 0 ? steps / 12 : 1;
  /* Rows [first, first + rows) are this rank's, plus one halo row above and below. */
  int first = (int)((long)n * rank / size);
  int rows = (int)((long)n * (rank + 1) / size) - first;
  size_t band = (size_t)(rows + 2) * n;
  double* u = calloc(band, sizeof *u);
  double* v = calloc(band, sizeof *v);
  if (!u || !v) {
    fprintf(stderr, "heat_mpi: calloc failed\n");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  if (first == 0)
    for (int j = 0; j < n; ++j) u[(size_t)n + j] = v[(size_t)n + j] = 100.0; /* hot top edge */
  int up = rank > 0 ? rank - 1 : MPI_PROC_NULL;
  int down = rank < size - 1 ? rank + 1 : MPI_PROC_NULL;
  const double k = 0.24;
  for (int s = 1; s <= steps; ++s) {
    MPI_Sendrecv(u + n, n, MPI_DOUBLE, up, 0, u + (size_t)(rows + 1) * n, n, MPI_DOUBLE, down, 0,
                 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    MPI_Sendrecv(u + (size_t)rows * n, n, MPI_DOUBLE, down, 1, u, n, MPI_DOUBLE, up, 1, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
    for (int r = 1; r <= rows; ++r) {
      int i = first + r - 1; /* global row */
      if (i == 0 || i == n - 1) continue;
      for (int j = 1; j < n - 1; ++j) {
        size_t c = (size_t)r * n + j;
        v[c] = u[c] + k * (u[c - n] + u[c + n] + u[c - 1] + u[c + 1] - 4.0 * u[c]);
      }
    }
    double* t = u;
    u = v;
    v = t;
    if (s % report == 0 || s == steps) {
      double heat = 0.0;
      uint64_t sum = 0;
      for (int r = 1; r <= rows; ++r)
        for (int j = 0; j < n; ++j) {
          heat += u[(size_t)r * n + j];
          sum = mix(sum, u[(size_t)r * n + j]);
        }
      double total;
      uint64_t check;
      MPI_Allreduce(&heat, &total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
      MPI_Allreduce(&sum, &check, 1, MPI_UINT64_T, MPI_BXOR, MPI_COMM_WORLD);
      if (rank == 0) {
        printf("step %5d  heat %.9e  checksum %016llx\n", s, total, (unsigned long long)check);
        fflush(stdout);
      }
    }
  }
  free(u);
  free(v);
  MPI_Finalize();
  return 0;
}
