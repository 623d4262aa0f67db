/* SPDX-License-Identifier: Apache-2.0
 * Ring exchanges with checked data: blocking Send/Recv with MPI_ANY_SOURCE and MPI_ANY_TAG
 * (status fields, MPI_Get_count), Sendrecv, Isend/Irecv completed by Waitall, Wait and Test, a
 * message to MPI_PROC_NULL. Every rank prints its own lines, prefixed by its rank. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int fails = 0;
#define CHECK(cond, ...)                          \
  do {                                            \
    if (!(cond)) {                                \
      printf("rank %d FAIL: ", rank);             \
      printf(__VA_ARGS__);                        \
      printf("\n");                               \
      fails++;                                    \
    }                                             \
  } while (0)

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int next = (rank + 1) % size, prev = (rank + size - 1) % size;

  /* 1. blocking ring, receive from ANY_SOURCE/ANY_TAG: the sender's rank and a tag per round */
  long token[4];
  for (int round = 0; round < 20; round++) {
    if (rank == 0) {
      for (int k = 0; k < 4; k++) token[k] = round * 1000 + k;
      MPI_Send(token, 4, MPI_LONG, next, 100 + round, MPI_COMM_WORLD);
    }
    long got[8];
    MPI_Status st;
    MPI_Recv(got, 8, MPI_LONG, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
    int n = -1;
    MPI_Get_count(&st, MPI_LONG, &n);
    CHECK(st.MPI_SOURCE == prev, "round %d source %d", round, st.MPI_SOURCE);
    CHECK(st.MPI_TAG == 100 + round, "round %d tag %d", round, st.MPI_TAG);
    CHECK(n == 4, "round %d count %d", round, n);
    for (int k = 0; k < 4; k++) CHECK(got[k] == round * 1000 + k, "round %d value %ld", round, got[k]);
    if (rank != 0) MPI_Send(got, 4, MPI_LONG, next, 100 + round, MPI_COMM_WORLD);
  }
  printf("rank %d ring ok\n", rank);

  /* 2. Sendrecv shift by one, doubles */
  double out[16], in[16];
  for (int k = 0; k < 16; k++) out[k] = rank * 100.0 + k * 0.5;
  MPI_Status st;
  MPI_Sendrecv(out, 16, MPI_DOUBLE, next, 7, in, 16, MPI_DOUBLE, prev, 7, MPI_COMM_WORLD, &st);
  for (int k = 0; k < 16; k++) CHECK(in[k] == prev * 100.0 + k * 0.5, "sendrecv %d", k);
  CHECK(st.MPI_SOURCE == prev && st.MPI_TAG == 7, "sendrecv status");
  printf("rank %d sendrecv sum %.1f\n", rank, in[0] + in[15]);

  /* 3. nonblocking: post receives from both neighbours first, then sends; Waitall */
  int from_prev[3] = {-1, -1, -1}, from_next[3] = {-1, -1, -1}, mine[3] = {rank, rank * rank, -rank};
  MPI_Request reqs[4];
  MPI_Status sts[4];
  MPI_Irecv(from_prev, 3, MPI_INT, prev, 1, MPI_COMM_WORLD, &reqs[0]);
  MPI_Irecv(from_next, 3, MPI_INT, next, 2, MPI_COMM_WORLD, &reqs[1]);
  MPI_Isend(mine, 3, MPI_INT, next, 1, MPI_COMM_WORLD, &reqs[2]);
  MPI_Isend(mine, 3, MPI_INT, prev, 2, MPI_COMM_WORLD, &reqs[3]);
  MPI_Waitall(4, reqs, sts);
  CHECK(from_prev[1] == prev * prev && from_next[2] == -next, "waitall data");
  CHECK(sts[0].MPI_SOURCE == prev && sts[1].MPI_SOURCE == next, "waitall sources");
  CHECK(reqs[0] == MPI_REQUEST_NULL && reqs[3] == MPI_REQUEST_NULL, "requests reset to NULL");
  printf("rank %d waitall %d %d\n", rank, from_prev[1], from_next[2]);

  /* 4. Irecv from ANY_SOURCE completed by Test polling, and by Wait */
  char msg[32] = {0};
  MPI_Request r;
  MPI_Irecv(msg, 32, MPI_CHAR, MPI_ANY_SOURCE, 9, MPI_COMM_WORLD, &r);
  char hello[32];
  snprintf(hello, sizeof hello, "hello from %d", rank);
  MPI_Send(hello, 32, MPI_CHAR, next, 9, MPI_COMM_WORLD);
  int flag = 0;
  long polls = 0;
  while (!flag) {
    MPI_Test(&r, &flag, &st);
    polls++;
  }
  char want[32];
  snprintf(want, sizeof want, "hello from %d", prev);
  for (int k = 0; k < 32; k++) CHECK(msg[k] == want[k], "test data at %d", k);
  CHECK(st.MPI_SOURCE == prev && r == MPI_REQUEST_NULL, "test status");
  printf("rank %d got '%s'\n", rank, msg);
  MPI_Wait(&r, &st); /* waiting on MPI_REQUEST_NULL returns an empty status */
  CHECK(st.MPI_SOURCE == MPI_ANY_SOURCE && st.MPI_TAG == MPI_ANY_TAG, "empty status");

  /* 5. PROC_NULL: returns at once, status source PROC_NULL, count 0 */
  MPI_Send(out, 4, MPI_DOUBLE, MPI_PROC_NULL, 0, MPI_COMM_WORLD);
  MPI_Recv(in, 4, MPI_DOUBLE, MPI_PROC_NULL, 0, MPI_COMM_WORLD, &st);
  int n = -1;
  MPI_Get_count(&st, MPI_DOUBLE, &n);
  CHECK(st.MPI_SOURCE == MPI_PROC_NULL && n == 0, "proc_null status %d %d", st.MPI_SOURCE, n);

  /* 6. a short message into a long buffer: the rest stays untouched */
  int buf[8] = {9, 9, 9, 9, 9, 9, 9, 9}, two[2] = {rank, rank};
  MPI_Sendrecv(two, 2, MPI_INT, next, 5, buf, 8, MPI_INT, prev, 5, MPI_COMM_WORLD, &st);
  MPI_Get_count(&st, MPI_INT, &n);
  CHECK(n == 2 && buf[0] == prev && buf[2] == 9 && buf[7] == 9, "partial receive");

  MPI_Barrier(MPI_COMM_WORLD);
  printf("rank %d %s\n", rank, fails ? "FAILED" : "PASS");
  MPI_Finalize();
  return fails ? 1 : 0;
}
