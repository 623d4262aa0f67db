/* SPDX-License-Identifier: Apache-2.0
 * Gather, Scatter, Allgather and Alltoall from every root, with and without MPI_IN_PLACE; a ring
 * of Ssend; Probe and Iprobe with MPI_ANY_SOURCE/ANY_TAG sizing the receive by MPI_Get_count.
 * All data checked; rank-prefixed output. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

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
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int *all = malloc(sizeof(int) * 3 * size), mine[3];

  for (int root = 0; root < size; root++) {
    for (int k = 0; k < 3; k++) mine[k] = rank * 10 + k;
    for (int k = 0; k < 3 * size; k++) all[k] = -1;
    if (rank == root && root % 2 == 1) { /* in place: the root's block is already there */
      for (int k = 0; k < 3; k++) all[3 * root + k] = mine[k];
      MPI_Gather(MPI_IN_PLACE, 3, MPI_INT, all, 3, MPI_INT, root, MPI_COMM_WORLD);
    } else {
      MPI_Gather(mine, 3, MPI_INT, all, 3, MPI_INT, root, MPI_COMM_WORLD);
    }
    if (rank == root)
      for (int k = 0; k < 3 * size; k++) CHECK(all[k] == (k / 3) * 10 + k % 3, "gather root %d [%d]=%d", root, k, all[k]);

    for (int k = 0; k < 3 * size; k++) all[k] = rank == root ? 1000 * root + k : -1;
    for (int k = 0; k < 3; k++) mine[k] = -1;
    if (rank == root && root % 2 == 1) {
      MPI_Scatter(all, 3, MPI_INT, MPI_IN_PLACE, 3, MPI_INT, root, MPI_COMM_WORLD);
      for (int k = 0; k < 3; k++) mine[k] = all[3 * root + k];
    } else {
      MPI_Scatter(all, 3, MPI_INT, mine, 3, MPI_INT, root, MPI_COMM_WORLD);
    }
    for (int k = 0; k < 3; k++) CHECK(mine[k] == 1000 * root + 3 * rank + k, "scatter root %d", root);
  }
  printf("rank %d gather/scatter ok\n", rank);

  double d = rank * 1.5, *ds = malloc(sizeof(double) * size);
  MPI_Allgather(&d, 1, MPI_DOUBLE, ds, 1, MPI_DOUBLE, MPI_COMM_WORLD);
  for (int r = 0; r < size; r++) CHECK(ds[r] == r * 1.5, "allgather %d", r);
  for (int r = 0; r < size; r++) ds[r] = r == rank ? -rank : 0;
  MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, ds, 1, MPI_DOUBLE, MPI_COMM_WORLD);
  double dsum = 0;
  for (int r = 0; r < size; r++) dsum += ds[r];
  printf("rank %d allgather in place sum %.1f\n", rank, dsum);

  long *out = malloc(sizeof(long) * 2 * size), *in = malloc(sizeof(long) * 2 * size);
  for (int r = 0; r < size; r++) out[2 * r] = rank * 100 + r, out[2 * r + 1] = -(rank * 100 + r);
  MPI_Alltoall(out, 2, MPI_LONG, in, 2, MPI_LONG, MPI_COMM_WORLD);
  for (int r = 0; r < size; r++) CHECK(in[2 * r] == r * 100 + rank && in[2 * r + 1] == -(r * 100 + rank), "alltoall from %d", r);
  MPI_Alltoall(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, in, 2, MPI_LONG, MPI_COMM_WORLD);
  for (int r = 0; r < size; r++) CHECK(in[2 * r] == rank * 100 + r, "alltoall in place from %d", r);
  printf("rank %d alltoall ok\n", rank);

  int next = (rank + 1) % size, prev = (rank + size - 1) % size, token = rank, got = -1;
  if (rank % 2 == 0) {
    MPI_Ssend(&token, 1, MPI_INT, next, 4, MPI_COMM_WORLD);
    MPI_Recv(&got, 1, MPI_INT, prev, 4, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  } else {
    MPI_Recv(&got, 1, MPI_INT, prev, 4, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    MPI_Ssend(&token, 1, MPI_INT, next, 4, MPI_COMM_WORLD);
  }
  CHECK(got == prev, "ssend ring got %d", got);

  /* a message of unknown length: probe, size the buffer, receive */
  int len = 5 + rank;
  char *msg = malloc(len);
  for (int k = 0; k < len; k++) msg[k] = 'a' + rank;
  MPI_Request r;
  MPI_Isend(msg, len, MPI_CHAR, next, 20 + rank, MPI_COMM_WORLD, &r);
  MPI_Status st;
  int flag = 0;
  while (!flag) MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
  int n = 0;
  MPI_Get_count(&st, MPI_CHAR, &n);
  CHECK(st.MPI_SOURCE == prev && st.MPI_TAG == 20 + prev && n == 5 + prev, "iprobe %d %d %d", st.MPI_SOURCE, st.MPI_TAG, n);
  MPI_Probe(prev, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
  MPI_Get_count(&st, MPI_CHAR, &n);
  char *buf = malloc(n);
  MPI_Recv(buf, n, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, &st);
  CHECK(buf[0] == 'a' + prev && buf[n - 1] == 'a' + prev, "probed message");
  MPI_Wait(&r, MPI_STATUS_IGNORE);
  printf("rank %d probed %d bytes from %d\n", rank, n, st.MPI_SOURCE);

  MPI_Barrier(MPI_COMM_WORLD);
  printf("rank %d %s\n", rank, fails ? "FAILED" : "PASS");
  MPI_Finalize();
  return fails ? 1 : 0;
}
