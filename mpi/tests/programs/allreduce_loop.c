/* SPDX-License-Identifier: Apache-2.0
 * Reductions with checked data: Allreduce in a loop with the predefined ops (SUM, PROD, MIN,
 * MAX, LAND, BOR, BXOR, MAXLOC, MINLOC) on int, long, double, unsigned char and pair types, with
 * and without MPI_IN_PLACE; Reduce to every root in turn, with MPI_IN_PLACE at the root. Prints
 * the results (identical on every rank) from each rank. */
#include <mpi.h>
#include <stdio.h>

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
  int iterations = argc > 1 ? 0 : 200;
  if (argc > 1) sscanf(argv[1], "%d", &iterations);

  double total = 0;
  long isum = 0;
  for (int it = 0; it < iterations; it++) {
    double x[3] = {rank + it * 0.25, (double)(rank * it), 1.0 / (rank + 1)}, y[3];
    MPI_Allreduce(x, y, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    double want0 = 0;
    for (int r = 0; r < size; r++) want0 += r + it * 0.25;
    CHECK(y[0] == want0, "it %d sum %f want %f", it, y[0], want0);
    total += y[0] + y[1] + y[2];
    long v[2] = {rank * 3 + it, -(long)rank}, w[2];
    MPI_Allreduce(v, w, 2, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);
    CHECK(w[0] == (size - 1) * 3 + it && w[1] == 0, "it %d max", it);
    int in_place[4] = {rank, rank + it, 1, rank == it % size};
    MPI_Allreduce(MPI_IN_PLACE, in_place, 4, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    CHECK(in_place[0] == 0 && in_place[1] == it && in_place[2] == 1 && in_place[3] == (size == 1),
          "it %d in-place min %d %d %d %d", it, in_place[0], in_place[1], in_place[2], in_place[3]);
    isum += w[0] + in_place[1];
  }
  printf("rank %d allreduce loop total %.6f isum %ld\n", rank, total, isum);

  int prod_in = rank + 1, prod = 0;
  MPI_Allreduce(&prod_in, &prod, 1, MPI_INT, MPI_PROD, MPI_COMM_WORLD);
  int land_in = rank < size, land = 0, bor_in = 1 << rank, bor = 0, bxor = 0;
  MPI_Allreduce(&land_in, &land, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  MPI_Allreduce(&bor_in, &bor, 1, MPI_INT, MPI_BOR, MPI_COMM_WORLD);
  MPI_Allreduce(&bor_in, &bxor, 1, MPI_INT, MPI_BXOR, MPI_COMM_WORLD);
  unsigned char bytes_in[5] = {1, 2, 3, (unsigned char)rank, 200}, bytes[5];
  MPI_Allreduce(bytes_in, bytes, 5, MPI_UNSIGNED_CHAR, MPI_MAX, MPI_COMM_WORLD);
  printf("rank %d prod %d land %d bor %d bxor %d bytes %d %d\n", rank, prod, land, bor, bxor, bytes[3], bytes[4]);

  struct { double v; int i; } dl_in = {rank == 1 ? 99.5 : rank * 1.5, rank}, dl_out, dl_min;
  MPI_Allreduce(&dl_in, &dl_out, 1, MPI_DOUBLE_INT, MPI_MAXLOC, MPI_COMM_WORLD);
  MPI_Allreduce(&dl_in, &dl_min, 1, MPI_DOUBLE_INT, MPI_MINLOC, MPI_COMM_WORLD);
  int pair_in[2] = {10 - rank, rank}, pair[2];
  MPI_Allreduce(pair_in, pair, 1, MPI_2INT, MPI_MINLOC, MPI_COMM_WORLD);
  printf("rank %d maxloc %.1f@%d minloc %.1f@%d 2int %d@%d\n", rank, dl_out.v, dl_out.i, dl_min.v,
         dl_min.i, pair[0], pair[1]);

  for (int root = 0; root < size; root++) {
    long mine[2] = {rank + 1, (rank + 1) * 10}, out[2] = {-1, -1};
    MPI_Reduce(mine, out, 2, MPI_LONG, MPI_SUM, root, MPI_COMM_WORLD);
    long want = (long)size * (size + 1) / 2;
    if (rank == root) CHECK(out[0] == want && out[1] == want * 10, "reduce root %d", root);
    else CHECK(out[0] == -1, "reduce wrote off the root");
    float f = (float)rank;
    if (rank == root) MPI_Reduce(MPI_IN_PLACE, &f, 1, MPI_FLOAT, MPI_MAX, root, MPI_COMM_WORLD);
    else MPI_Reduce(&f, NULL, 1, MPI_FLOAT, MPI_MAX, root, MPI_COMM_WORLD);
    if (rank == root) CHECK(f == size - 1, "reduce in place root %d got %f", root, f);
  }
  printf("rank %d reduce ok\n", rank);
  printf("rank %d %s\n", rank, fails ? "FAILED" : "PASS");
  MPI_Finalize();
  return fails ? 1 : 0;
}
