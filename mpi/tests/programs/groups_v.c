/* SPDX-License-Identifier: Apache-2.0
 * Groups, Comm_create, v-collectives and scans, long-running for checkpoint/restart tests, with
 * checked data.
 *   setup  Comm_group, Group_size/rank, Group_incl (even world ranks), Group_excl (the odd ones),
 *          Group_translate_ranks, Group_compare (IDENT, SIMILAR, UNEQUAL), Comm_create of the
 *          even and of the odd group (each rank is in one), Comm_group of the result, Comm_dup,
 *          Comm_compare (IDENT, CONGRUENT, UNEQUAL), Group_free;
 *   step   on the sub-communicator: Gatherv and Scatterv (rotating root, r+1 elements from rank
 *          r), Allgatherv, Alltoallv (counts depend on both ranks), Reduce_scatter (member i gets
 *          i+1 elements), Scan, Exscan; on MPI_COMM_WORLD: Reduce_scatter_block, Scan (MPI_MAX),
 *          Allgatherv with MPI_IN_PLACE; rank-dependent compute times.
 * One line per step with a checksum; "rank R PASS" at the end. Usage: groups_v [STEPS] [STEP_US] */
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

#define MAXN 64
static int val(int from, int step, int k) { return from * 10000 + step * 10 + k; }

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int steps = argc > 1 ? atoi(argv[1]) : 60;
  int step_us = argc > 2 ? atoi(argv[2]) : 10000;

  MPI_Group world, evens, odds, reversed, mine, sub_group;
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  int gs, gr;
  MPI_Group_size(world, &gs);
  MPI_Group_rank(world, &gr);
  CHECK(gs == size && gr == rank, "world group");
  int ne = (size + 1) / 2, list[MAXN], rev[MAXN], out[MAXN], idx[MAXN];
  for (int i = 0; i < ne; i++) list[i] = 2 * i;
  for (int i = 0; i < size; i++) rev[i] = size - 1 - i;
  MPI_Group_incl(world, ne, list, &evens);
  MPI_Group_excl(world, ne, list, &odds);
  MPI_Group_incl(world, size, rev, &reversed);
  for (int i = 0; i < ne; i++) idx[i] = i;
  MPI_Group_translate_ranks(evens, ne, idx, world, out);
  for (int i = 0; i < ne; i++) CHECK(out[i] == 2 * i, "translate %d", i);
  MPI_Group_translate_ranks(world, 1, &rank, odds, out);
  CHECK(out[0] == (rank % 2 ? rank / 2 : MPI_UNDEFINED), "translate into odds");
  int c1, c2, c3;
  MPI_Group_compare(world, world, &c1);
  MPI_Group_compare(world, reversed, &c2);
  MPI_Group_compare(evens, odds, &c3);
  CHECK(c1 == MPI_IDENT && c2 == MPI_SIMILAR && c3 == MPI_UNEQUAL, "group_compare %d %d %d", c1, c2, c3);
  MPI_Comm ecomm, ocomm, sub, subdup;
  MPI_Comm_create(MPI_COMM_WORLD, evens, &ecomm);
  MPI_Comm_create(MPI_COMM_WORLD, odds, &ocomm);
  CHECK((rank % 2 == 0) == (ecomm != MPI_COMM_NULL) && (rank % 2 == 1) == (ocomm != MPI_COMM_NULL), "comm_create");
  sub = rank % 2 == 0 ? ecomm : ocomm;
  mine = rank % 2 == 0 ? evens : odds;
  MPI_Comm_group(sub, &sub_group);
  MPI_Group_compare(sub_group, mine, &c1);
  CHECK(c1 == MPI_IDENT, "comm_group of the created communicator");
  MPI_Comm_dup(sub, &subdup);
  MPI_Comm_compare(sub, sub, &c1);
  MPI_Comm_compare(sub, subdup, &c2);
  MPI_Comm_compare(sub, MPI_COMM_WORLD, &c3);
  CHECK(c1 == MPI_IDENT && c2 == MPI_CONGRUENT && c3 == MPI_UNEQUAL, "comm_compare %d %d %d", c1, c2, c3);
  MPI_Group_free(&sub_group);
  MPI_Group_free(&reversed);
  MPI_Group_free(&world);
  CHECK(world == MPI_GROUP_NULL, "group_free");
  int r, s;
  MPI_Comm_rank(sub, &r);
  MPI_Comm_size(sub, &s);
  printf("rank %d sub %d of %d\n", rank, r, s);

  unsigned long long sum = 0;
  int sendv[MAXN * MAXN], recvv[MAXN * MAXN], counts[MAXN], displs[MAXN], scounts[MAXN], sdispls[MAXN];
  for (int step = 0; step < steps; step++) {
    usleep(step_us / (rank + 1));
    int root = step % s, total = 0;
    for (int i = 0; i < s; i++) {
      counts[i] = i + 1;
      displs[i] = total + i; /* a gap of i elements before each block */
      total += counts[i] + i;
    }
    /* Gatherv */
    for (int k = 0; k < r + 1; k++) sendv[k] = val(r, step, k);
    for (int k = 0; k < total; k++) recvv[k] = -7;
    MPI_Gatherv(sendv, r + 1, MPI_INT, recvv, counts, displs, MPI_INT, root, subdup);
    if (r == root)
      for (int i = 0; i < s; i++)
        for (int k = 0; k < counts[i]; k++) CHECK(recvv[displs[i] + k] == val(i, step, k), "gatherv %d %d", i, k);
    if (r == root && displs[s - 1] > counts[s - 2] + displs[s - 2]) CHECK(recvv[displs[s - 1] - 1] == -7, "gatherv gap");
    long acc = r == root ? recvv[displs[s - 1]] : 0;
    /* Scatterv */
    for (int i = 0; i < s; i++)
      for (int k = 0; k < counts[i]; k++) sendv[displs[i] + k] = val(i, step, k) + 1;
    for (int k = 0; k < r + 1; k++) recvv[k] = -1;
    MPI_Scatterv(sendv, counts, displs, MPI_INT, recvv, r + 1, MPI_INT, root, sub);
    for (int k = 0; k < r + 1; k++) CHECK(recvv[k] == val(r, step, k) + 1, "scatterv %d", k);
    acc += recvv[r];
    /* Allgatherv */
    for (int k = 0; k < r + 1; k++) sendv[k] = val(r, step, k) + 2;
    MPI_Allgatherv(sendv, r + 1, MPI_INT, recvv, counts, displs, MPI_INT, sub);
    for (int i = 0; i < s; i++)
      for (int k = 0; k < counts[i]; k++) CHECK(recvv[displs[i] + k] == val(i, step, k) + 2, "allgatherv %d %d", i, k);
    acc += recvv[displs[s - 1]];
    /* Alltoallv: to member j, (r + j) % 3 + 1 elements */
    int stotal = 0, rtotal = 0, rcounts[MAXN], rdispls[MAXN];
    for (int j = 0; j < s; j++) {
      scounts[j] = (r + j) % 3 + 1;
      sdispls[j] = stotal;
      for (int k = 0; k < scounts[j]; k++) sendv[stotal + k] = val(r, step, j * 10 + k);
      stotal += scounts[j];
      rcounts[j] = (j + r) % 3 + 1;
      rdispls[j] = rtotal;
      rtotal += rcounts[j];
    }
    MPI_Alltoallv(sendv, scounts, sdispls, MPI_INT, recvv, rcounts, rdispls, MPI_INT, sub);
    for (int j = 0; j < s; j++)
      for (int k = 0; k < rcounts[j]; k++) CHECK(recvv[rdispls[j] + k] == val(j, step, r * 10 + k), "alltoallv %d %d", j, k);
    acc += recvv[rtotal - 1];
    /* Reduce_scatter: member i gets i+1 elements */
    int rs_total = 0;
    for (int i = 0; i < s; i++) rs_total += i + 1;
    long rs_in[MAXN * 2], rs_out[MAXN];
    for (int k = 0; k < rs_total; k++) rs_in[k] = r + k + step;
    MPI_Reduce_scatter(rs_in, rs_out, counts, MPI_LONG, MPI_SUM, sub);
    int first = r * (r + 1) / 2;
    for (int k = 0; k < r + 1; k++) CHECK(rs_out[k] == (long)s * (first + k + step) + s * (s - 1) / 2, "reduce_scatter %d", k);
    acc += rs_out[r];
    /* Scan, Exscan */
    long sv = r + 1 + step, scan = 0, exscan = -5;
    MPI_Scan(&sv, &scan, 1, MPI_LONG, MPI_SUM, sub);
    MPI_Exscan(&sv, &exscan, 1, MPI_LONG, MPI_SUM, sub);
    CHECK(scan == (long)(r + 1) * (r + 2) / 2 + (long)(r + 1) * step, "scan");
    if (r > 0) CHECK(exscan == scan - sv, "exscan");
    acc += scan * 7 + (r > 0 ? exscan : 0);
    /* on the world: Reduce_scatter_block, Scan with MAX, Allgatherv in place */
    int rb_in[MAXN * 2], rb_out[2];
    for (int k = 0; k < 2 * size; k++) rb_in[k] = rank * k + step;
    MPI_Reduce_scatter_block(rb_in, rb_out, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    for (int k = 0; k < 2; k++) CHECK(rb_out[k] == (2 * rank + k) * size * (size - 1) / 2 + size * step, "reduce_scatter_block");
    int mx = (rank * 5 + step) % size, mscan;
    MPI_Scan(&mx, &mscan, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    int want = 0;
    for (int i = 0; i <= rank; i++) want = (i * 5 + step) % size > want ? (i * 5 + step) % size : want;
    CHECK(mscan == want, "scan max");
    int wc[MAXN], wd[MAXN];
    for (int i = 0; i < size; i++) {
      wc[i] = 1;
      wd[i] = i;
    }
    recvv[rank] = val(rank, step, 3);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, recvv, wc, wd, MPI_INT, MPI_COMM_WORLD);
    for (int i = 0; i < size; i++) CHECK(recvv[i] == val(i, step, 3), "allgatherv in place %d", i);
    acc += rb_out[1] + mscan + recvv[size - 1];
    sum = mix(sum, acc);
    printf("rank %d step %d sum %016llx\n", rank, step, sum);
    fflush(stdout);
  }
  MPI_Group_free(&evens);
  MPI_Group_free(&odds);
  MPI_Comm_free(&subdup);
  MPI_Comm_free(&sub);
  MPI_Barrier(MPI_COMM_WORLD);
  printf("rank %d %s\n", rank, fails ? "FAILED" : "PASS");
  MPI_Finalize();
  return fails ? 1 : 0;
}
