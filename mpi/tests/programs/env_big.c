/* SPDX-License-Identifier: Apache-2.0
 * Environment calls and large messages: Init_thread, Initialized/Finalized, Query_thread, Wtime,
 * Get_processor_name; then 8 MiB Send/Recv, Bcast and Allreduce (larger than the channel's data
 * area, so they take the cross-memory-attach path) with checksums. It first closes every
 * descriptor above 2, as some daemons-style programs do (ferry must still find its channel).
 * Rank-prefixed output. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int fails = 0;
#define CHECK(cond, ...)              \
  do {                                \
    if (!(cond)) {                    \
      printf("rank %d FAIL: ", rank); \
      printf(__VA_ARGS__);            \
      printf("\n");                   \
      fails++;                        \
    }                                 \
  } while (0)

int main(int argc, char **argv) {
  int rank = -1, flag = -1, provided = -1;
  for (int fd = 3; fd < 1024; fd++) close(fd);
  MPI_Initialized(&flag);
  if (flag != 0) printf("FAIL: initialized before MPI_Init\n");
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int size;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Initialized(&flag);
  CHECK(flag == 1, "initialized");
  CHECK(provided == MPI_THREAD_FUNNELED, "provided %d", provided);
  int q = -1;
  MPI_Query_thread(&q);
  CHECK(q == provided, "query_thread");
  double t0 = MPI_Wtime();
  char name[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  MPI_Get_processor_name(name, &len);
  CHECK(len > 0 && name[len] == '\0', "processor name");
  printf("rank %d thread level %d, processor name length ok %d\n", rank, provided, len > 0);

  /* 1 MiB each way in one Sendrecv: both buffers fit in the channel's data area (staged in shm) */
  {
    const int m = (1 << 20) / (int)sizeof(int);
    int *sbuf = malloc(m * sizeof(int)), *rbuf = malloc(m * sizeof(int));
    int next = (rank + 1) % size, prev = (rank + size - 1) % size;
    for (int k = 0; k < m; k++) sbuf[k] = rank * 7 + k, rbuf[k] = -1;
    MPI_Sendrecv(sbuf, m, MPI_INT, next, 12, rbuf, m, MPI_INT, prev, 12, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    long wrong = 0;
    for (int k = 0; k < m; k++) wrong += rbuf[k] != prev * 7 + k;
    CHECK(wrong == 0, "1 MiB sendrecv %ld wrong", wrong);
    free(sbuf);
    free(rbuf);
  }

  const size_t n = (8u << 20) / sizeof(long);
  long *big = malloc(n * sizeof(long));
  for (size_t k = 0; k < n; k++) big[k] = rank == 0 ? (long)(k * 3 + 1) : -1;
  if (size > 1) {
    if (rank == 0) MPI_Send(big, (int)n, MPI_LONG, 1, 11, MPI_COMM_WORLD);
    if (rank == 1) {
      MPI_Status st;
      MPI_Recv(big, (int)n, MPI_LONG, 0, 11, MPI_COMM_WORLD, &st);
      int c = 0;
      MPI_Get_count(&st, MPI_LONG, &c);
      CHECK(c == (int)n, "big count %d", c);
      long bad = 0;
      for (size_t k = 0; k < n; k++) bad += big[k] != (long)(k * 3 + 1);
      CHECK(bad == 0, "big recv %ld wrong", bad);
    }
  }
  for (size_t k = 0; k < n; k++) big[k] = rank == size - 1 ? (long)k ^ 0x5a5a : 0;
  MPI_Bcast(big, (int)n, MPI_LONG, size - 1, MPI_COMM_WORLD);
  long bad = 0;
  for (size_t k = 0; k < n; k++) bad += big[k] != ((long)k ^ 0x5a5a);
  CHECK(bad == 0, "big bcast %ld wrong", bad);
  for (size_t k = 0; k < n; k++) big[k] = (long)k + rank;
  MPI_Allreduce(MPI_IN_PLACE, big, (int)n, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  bad = 0;
  for (size_t k = 0; k < n; k++) bad += big[k] != (long)k * size + (long)size * (size - 1) / 2;
  CHECK(bad == 0, "big allreduce %ld wrong", bad);
  printf("rank %d big messages checked\n", rank);
  free(big);

  double t1 = MPI_Wtime();
  CHECK(t1 >= t0 && MPI_Wtick() > 0, "wtime");
  MPI_Finalized(&flag);
  CHECK(flag == 0, "finalized too early");
  printf("rank %d %s\n", rank, fails ? "FAILED" : "PASS");
  MPI_Finalize();
  MPI_Finalized(&flag);
  if (flag != 1) printf("rank %d FAIL: not finalized\n", rank);
  return fails ? 1 : 0;
}
