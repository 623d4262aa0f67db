/* SPDX-License-Identifier: Apache-2.0
 * Nonblocking point-to-point and collectives, long-running for checkpoint/restart tests, with
 * checked data. Every step:
 *   any    Irecv from both neighbours posted before a compute phase, then Issend/Isend, all four
 *          completed with Waitany (receives pending across the compute phase);
 *   some   two Irecv + two Isend completed with Waitsome until MPI_UNDEFINED;
 *   test   Irecv + Isend polled with Testall, then Irecv + Isend polled with Testany;
 *   free   an Isend freed at once with Request_free, received with a blocking Recv;
 *   cancel an Irecv nobody sends to, Cancel, Wait, Test_cancelled (and the buffer untouched);
 *   nbc    Ibcast (rotating root), Iallreduce and Ibarrier posted (odd ranks after a compute phase,
 *          so at a checkpoint some ranks have often entered them and others not), then a
 *          rank-dependent compute phase, Waitall;
 *          an Iallreduce with MPI_IN_PLACE on a Comm_dup, completed with Test polling.
 * One line per step with a checksum; "rank R PASS" at the end. Usage: nb_mix [STEPS] [STEP_US] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int rank, size, fails;
#define CHECK(cond, ...)              \
  do {                                \
    if (!(cond)) {                    \
      printf("rank %d FAIL: ", rank); \
      printf(__VA_ARGS__);            \
      printf("\n");                   \
      fails++;                        \
    }                                 \
  } while (0)

static unsigned long long mix(unsigned long long h, long v) {
  return h ^ ((unsigned long long)v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int steps = argc > 1 ? atoi(argv[1]) : 60;
  int step_us = argc > 2 ? atoi(argv[2]) : 10000;
  int next = (rank + 1) % size, prev = (rank + size - 1) % size;
  MPI_Comm dup;
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);
  unsigned long long sum = 0;

  for (int step = 0; step < steps; step++) {
    /* any */
    int from_prev = -1, from_next = -1, mine = rank * 100 + step;
    MPI_Request rq[4];
    MPI_Irecv(&from_prev, 1, MPI_INT, prev, 1, MPI_COMM_WORLD, &rq[0]);
    MPI_Irecv(&from_next, 1, MPI_INT, next, 2, MPI_COMM_WORLD, &rq[1]);
    usleep(step_us / 2 * ((rank + step) % 3));
    MPI_Issend(&mine, 1, MPI_INT, next, 1, MPI_COMM_WORLD, &rq[2]);
    MPI_Isend(&mine, 1, MPI_INT, prev, 2, MPI_COMM_WORLD, &rq[3]);
    int seen = 0;
    for (int k = 0; k < 4; k++) {
      int idx;
      MPI_Status st;
      MPI_Waitany(4, rq, &idx, &st);
      CHECK(idx >= 0 && idx < 4 && !(seen & (1 << idx)) && rq[idx] == MPI_REQUEST_NULL, "waitany index %d", idx);
      seen |= 1 << idx;
      if (idx == 0) CHECK(st.MPI_SOURCE == prev && st.MPI_TAG == 1, "waitany status");
    }
    int idx;
    MPI_Waitany(4, rq, &idx, MPI_STATUS_IGNORE);
    CHECK(idx == MPI_UNDEFINED, "waitany on null requests");
    CHECK(from_prev == prev * 100 + step && from_next == next * 100 + step, "any step %d", step);

    /* some */
    long a[2] = {-1, -1}, out[2] = {rank * 1000L + step, rank * 1000L + step + 1};
    MPI_Request sq[4];
    MPI_Irecv(&a[0], 1, MPI_LONG, prev, 3, MPI_COMM_WORLD, &sq[0]);
    MPI_Irecv(&a[1], 1, MPI_LONG, next, 4, MPI_COMM_WORLD, &sq[1]);
    MPI_Isend(&out[0], 1, MPI_LONG, next, 3, MPI_COMM_WORLD, &sq[2]);
    MPI_Isend(&out[1], 1, MPI_LONG, prev, 4, MPI_COMM_WORLD, &sq[3]);
    int total = 0;
    for (;;) {
      int n, where[4];
      MPI_Status sts[4];
      MPI_Waitsome(4, sq, &n, where, sts);
      if (n == MPI_UNDEFINED) break;
      total += n;
    }
    CHECK(total == 4 && a[0] == prev * 1000L + step && a[1] == next * 1000L + step + 1, "some step %d", step);

    /* test */
    double t = -1, tout = rank + step * 0.25;
    MPI_Request tq[2];
    MPI_Irecv(&t, 1, MPI_DOUBLE, prev, 5, MPI_COMM_WORLD, &tq[0]);
    MPI_Isend(&tout, 1, MPI_DOUBLE, next, 5, MPI_COMM_WORLD, &tq[1]);
    int flag = 0, polls = 0;
    while (!flag) {
      MPI_Testall(2, tq, &flag, MPI_STATUSES_IGNORE);
      if (!flag) usleep(200);
      polls++;
    }
    CHECK(t == prev + step * 0.25 && tq[0] == MPI_REQUEST_NULL && tq[1] == MPI_REQUEST_NULL, "testall step %d", step);
    MPI_Irecv(&t, 1, MPI_DOUBLE, next, 6, MPI_COMM_WORLD, &tq[0]);
    MPI_Isend(&tout, 1, MPI_DOUBLE, prev, 6, MPI_COMM_WORLD, &tq[1]);
    int got = 0;
    while (got < 2) {
      MPI_Testany(2, tq, &idx, &flag, MPI_STATUS_IGNORE);
      if (flag && idx != MPI_UNDEFINED) got++;
      else usleep(200);
    }
    CHECK(t == next + step * 0.25, "testany step %d", step);

    /* free */
    int fout = rank * 3 + step, fin = -1;
    MPI_Request fr;
    MPI_Isend(&fout, 1, MPI_INT, next, 7, MPI_COMM_WORLD, &fr);
    MPI_Request_free(&fr);
    CHECK(fr == MPI_REQUEST_NULL, "request_free");
    MPI_Recv(&fin, 1, MPI_INT, prev, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    CHECK(fin == prev * 3 + step, "free step %d", step);

    /* cancel */
    int never = 12345;
    MPI_Request cr;
    MPI_Status cst;
    MPI_Irecv(&never, 1, MPI_INT, prev, 999, MPI_COMM_WORLD, &cr);
    MPI_Cancel(&cr);
    MPI_Wait(&cr, &cst);
    int cancelled = 0;
    MPI_Test_cancelled(&cst, &cancelled);
    CHECK(cancelled && never == 12345, "cancel step %d", step);

    /* nbc: odd ranks post later, so a checkpoint often finds them entered by some ranks only */
    usleep(step_us * (rank % 2));
    int root = step % size;
    long bval = rank == root ? 777L * step + root : -1;
    double red = rank + step, redsum = 0;
    MPI_Request nq[3];
    MPI_Ibcast(&bval, 1, MPI_LONG, root, MPI_COMM_WORLD, &nq[0]);
    MPI_Iallreduce(&red, &redsum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &nq[1]);
    MPI_Ibarrier(MPI_COMM_WORLD, &nq[2]);
    usleep(step_us / (rank + 1));
    MPI_Waitall(3, nq, MPI_STATUSES_IGNORE);
    CHECK(bval == 777L * step + root, "ibcast step %d", step);
    CHECK(redsum == size * (size - 1) / 2.0 + size * step, "iallreduce step %d", step);
    long inplace[2] = {rank, step};
    MPI_Request ir;
    MPI_Iallreduce(MPI_IN_PLACE, inplace, 2, MPI_LONG, MPI_MAX, dup, &ir);
    usleep(step_us / (size - rank));
    flag = 0;
    while (!flag) {
      MPI_Test(&ir, &flag, MPI_STATUS_IGNORE);
      if (!flag) usleep(200);
    }
    CHECK(inplace[0] == size - 1 && inplace[1] == step, "iallreduce in place step %d", step);

    sum = mix(mix(mix(mix(sum, from_prev + from_next), a[0] + a[1]), (long)(t * 4) + fin), bval + (long)redsum + inplace[0]);
    printf("rank %d step %d sum %016llx\n", rank, step, sum);
    fflush(stdout);
  }
  MPI_Comm_free(&dup);
  MPI_Barrier(MPI_COMM_WORLD);
  printf("rank %d %s\n", rank, fails ? "FAILED" : "PASS");
  MPI_Finalize();
  return fails ? 1 : 0;
}
