/* SPDX-License-Identifier: Apache-2.0
 * A long-running MPI program for checkpoint/restart tests. Every step mixes, with checked data:
 *   ring   a token passed around with blocking Send and Recv(MPI_ANY_SOURCE, MPI_ANY_TAG),
 *          while each rank also has an Isend of a 4 KiB block to its neighbour in flight during
 *          a compute phase (messages on the network at most moments);
 *   nb     Irecv from both neighbours posted before a compute phase, Isend after it, Waitall
 *          (receives pending across the compute phase);
 *          (the token on a Comm_dup of MPI_COMM_WORLD);
 *   coll   Allreduce on MPI_COMM_WORLD, and Allreduce + Bcast on a Comm_split sub-communicator
 *          (ranks of one parity) made once at the start;
 * with rank-dependent compute times, so that at any moment some ranks wait in MPI_Recv or in a
 * collective while others compute. Each rank prints one line per step with a running checksum
 * of everything it received; the last line is "rank R PASS" when every check held.
 * Usage: ckpt_mix [STEPS] [STEP_US] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int rank, size, fails;
#define CHECK(cond, ...)                   \
  do {                                     \
    if (!(cond)) {                         \
      printf("rank %d FAIL: ", rank);      \
      printf(__VA_ARGS__);                 \
      printf("\n");                        \
      fails++;                             \
    }                                      \
  } while (0)

static unsigned long long mix(unsigned long long h, long v) {
  h ^= (unsigned long long)v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int steps = argc > 1 ? atoi(argv[1]) : 60;
  int step_us = argc > 2 ? atoi(argv[2]) : 20000;
  int next = (rank + 1) % size, prev = (rank + size - 1) % size;
  MPI_Comm half, ringc; /* the token travels alone on its own communicator (ANY_TAG) */
  MPI_Comm_dup(MPI_COMM_WORLD, &ringc);
  MPI_Comm_split(MPI_COMM_WORLD, rank % 2, -rank, &half);
  int hrank, hsize;
  MPI_Comm_rank(half, &hrank);
  MPI_Comm_size(half, &hsize);
  unsigned long long sum = 0;
  static long block[512], inblock[512];

  for (int step = 0; step < steps; step++) {
    /* ring with a block in flight */
    for (int k = 0; k < 512; k++) block[k] = (long)rank * 1000003L + step * 7 + k;
    MPI_Request bs;
    MPI_Isend(block, 512, MPI_LONG, next, 1000 + step, MPI_COMM_WORLD, &bs);
    long token[2];
    if (rank == 0) {
      token[0] = step;
      token[1] = 0;
      usleep(step_us);
      MPI_Send(token, 2, MPI_LONG, next, step, ringc);
      MPI_Status st;
      MPI_Recv(token, 2, MPI_LONG, MPI_ANY_SOURCE, MPI_ANY_TAG, ringc, &st);
      CHECK(st.MPI_SOURCE == prev && st.MPI_TAG == step && token[0] == step, "token back step %d", step);
    } else {
      MPI_Status st;
      MPI_Recv(token, 2, MPI_LONG, MPI_ANY_SOURCE, MPI_ANY_TAG, ringc, &st);
      CHECK(st.MPI_SOURCE == prev && st.MPI_TAG == step && token[0] == step, "token step %d", step);
      token[1] += rank;
      usleep(step_us / (rank + 1));
      MPI_Send(token, 2, MPI_LONG, next, step, ringc);
    }
    sum = mix(sum, token[1]);
    MPI_Status bst;
    MPI_Recv(inblock, 512, MPI_LONG, prev, 1000 + step, MPI_COMM_WORLD, &bst);
    for (int k = 0; k < 512; k += 97) CHECK(inblock[k] == (long)prev * 1000003L + step * 7 + k, "block %d", k);
    sum = mix(sum, inblock[511]);
    MPI_Wait(&bs, MPI_STATUS_IGNORE);

    /* nonblocking exchange with receives pending across a compute phase */
    int from_prev = -1, from_next = -1, mine = rank * 100 + step;
    MPI_Request rq[4];
    MPI_Irecv(&from_prev, 1, MPI_INT, prev, 5, MPI_COMM_WORLD, &rq[0]);
    MPI_Irecv(&from_next, 1, MPI_INT, next, 6, MPI_COMM_WORLD, &rq[1]);
    usleep(step_us / 2 * ((rank + step) % 3));
    MPI_Isend(&mine, 1, MPI_INT, next, 5, MPI_COMM_WORLD, &rq[2]);
    MPI_Isend(&mine, 1, MPI_INT, prev, 6, MPI_COMM_WORLD, &rq[3]);
    MPI_Waitall(4, rq, MPI_STATUSES_IGNORE);
    CHECK(from_prev == prev * 100 + step && from_next == next * 100 + step, "nb step %d", step);
    sum = mix(sum, from_prev + from_next);

    /* collectives on the world and on the sub-communicator */
    double v = rank + step * 0.5, total = 0;
    MPI_Allreduce(&v, &total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    CHECK(total == size * (size - 1) / 2.0 + size * step * 0.5, "allreduce step %d", step);
    long hv = rank, hsum = 0;
    MPI_Allreduce(&hv, &hsum, 1, MPI_LONG, MPI_SUM, half);
    long root_val = hrank == 0 ? rank * 10 + step : -1;
    MPI_Bcast(&root_val, 1, MPI_LONG, 0, half);
    sum = mix(mix(sum, (long)total), hsum * 1000 + root_val);
    printf("rank %d step %d sum %016llx\n", rank, step, sum);
    fflush(stdout);
  }
  MPI_Comm_free(&half);
  MPI_Comm_free(&ringc);
  MPI_Barrier(MPI_COMM_WORLD);
  printf("rank %d %s\n", rank, fails ? "FAILED" : "PASS");
  MPI_Finalize();
  return fails ? 1 : 0;
}
