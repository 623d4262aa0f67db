/* SPDX-License-Identifier: Apache-2.0
 * MPI micro-benchmark for 2 ranks: 8-byte ping-pong latency (half round trip), 1 MiB ping-pong
 * bandwidth, 8-byte MPI_Allreduce time, and a compute-bound kernel (a fixed amount of floating
 * point work per rank, one 8-byte Allreduce every ~1 ms of work, the way a solver checks its
 * residual). Each is measured in NB batches; the median and the best batch are printed, which
 * resists noise from other tenants on a shared machine.
 * Output lines (rank 0): "<metric> median <v> best <v> <unit>".
 * usage: mpi_bench [latency_iters] [bandwidth_iters] [allreduce_iters] [compute_blocks] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NB 15

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void report(const char *metric, double *v, int higher_is_better, const char *unit) {
  qsort(v, NB, sizeof *v, cmp);
  printf("%s median %.3f best %.3f %s\n", metric, v[NB / 2], higher_is_better ? v[NB - 1] : v[0], unit);
}

/* ~1 ms of dependent floating point work on one core (a damped recurrence the compiler cannot
 * vectorise away). */
static double work(double x) {
  for (int i = 0; i < 400000; i++) x = x * 0.9999999 + 1e-7;
  return x;
}

static void pingpong(int rank, char *buf, int bytes, long iters) {
  for (long i = 0; i < iters; i++) {
    if (rank == 0) {
      MPI_Send(buf, bytes, MPI_BYTE, 1, 1, MPI_COMM_WORLD);
      MPI_Recv(buf, bytes, MPI_BYTE, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else {
      MPI_Recv(buf, bytes, MPI_BYTE, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(buf, bytes, MPI_BYTE, 0, 1, MPI_COMM_WORLD);
    }
  }
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size != 2) {
    if (rank == 0) fprintf(stderr, "mpi_bench: needs exactly 2 ranks\n");
    MPI_Abort(MPI_COMM_WORLD, 64);
  }
  long lat_iters = argc > 1 ? atol(argv[1]) : 20000;
  long bw_iters = argc > 2 ? atol(argv[2]) : 300;
  long ar_iters = argc > 3 ? atol(argv[3]) : 20000;
  long compute_blocks = argc > 4 ? atol(argv[4]) : 1500;
  const int big = 1 << 20;
  char *buf = malloc(big);
  memset(buf, rank, big);
  double v[NB];

  pingpong(rank, buf, 8, 500);
  for (int b = 0; b < NB; b++) {
    long n = lat_iters / NB;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    pingpong(rank, buf, 8, n);
    v[b] = (MPI_Wtime() - t0) / n / 2 * 1e6;
  }
  if (rank == 0) report("latency_8B", v, 0, "us");

  /* the 1 MiB payload bounces unchanged: check it at the end (a fast wrong answer is no answer) */
  if (rank == 0)
    for (int k = 0; k < big; k++) buf[k] = (char)(k * 31 + 7);
  pingpong(rank, buf, big, 10);
  for (int b = 0; b < NB; b++) {
    long n = bw_iters / NB > 0 ? bw_iters / NB : 1;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    pingpong(rank, buf, big, n);
    v[b] = 2.0 * big * n / (MPI_Wtime() - t0) / 1e6;
  }
  for (int k = 0; k < big; k++) {
    if (buf[k] != (char)(k * 31 + 7)) {
      fprintf(stderr, "mpi_bench: rank %d: 1 MiB payload corrupted at byte %d\n", rank, k);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
  }
  if (rank == 0) report("bandwidth_1MiB", v, 1, "MB/s");

  double x = rank, y = 0;
  for (int i = 0; i < 500; i++) MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  for (int b = 0; b < NB; b++) {
    long n = ar_iters / NB;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (long i = 0; i < n; i++) MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    v[b] = (MPI_Wtime() - t0) / n * 1e6;
  }
  if (rank == 0) report("allreduce_8B", v, 0, "us");
  if (y != 1.0 && rank == 0) printf("allreduce result wrong: %f\n", y);

  double acc = 1.0 + rank, sum = 0;
  for (int b = 0; b < NB; b++) {
    long n = compute_blocks / NB > 0 ? compute_blocks / NB : 1;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (long i = 0; i < n; i++) {
      acc = work(acc);
      MPI_Allreduce(&acc, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
    v[b] = (MPI_Wtime() - t0) * 1e3;
  }
  if (rank == 0) report("compute_100blk", v, 0, "ms");
  if (sum <= 0 && rank == 0) printf("compute result wrong: %f\n", sum);
  free(buf);
  MPI_Finalize();
  return 0;
}
