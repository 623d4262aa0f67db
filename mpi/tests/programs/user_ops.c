/* SPDX-License-Identifier: Apache-2.0
 * User-defined reduction operations (MPI_Op_create/free) with checked data (issue 5 coverage):
 *   matmul   a non-commutative product of 2x2 matrices mod P, on a derived type (contiguous of 4
 *            MPI_LONG) and on MPI_INT (4 ints per matrix: the function sees the count in ints);
 *   csum     a commutative complex sum on a struct with a gap between re and im (the gap of the
 *            output must stay untouched);
 * in Allreduce (with and without MPI_IN_PLACE), Reduce (rotating root, MPI_IN_PLACE at the root),
 * Scan, Exscan (in place), Reduce_scatter_block and Reduce_scatter (in place, unequal counts);
 * the argument "basic" leaves out the last four.
 * Every result is checked against a local computation in rank order (x0 op x1 op ... op xn-1),
 * and the function checks it receives the application's datatype handle. One line per step with
 * a checksum; the last line is "rank R PASS".
 * Usage: user_ops [STEPS] [STEP_US] [basic] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define P 1000003L
static int rank, size, fails, bad_handle;
static MPI_Datatype mat_t, cplx_t;
#define CHECK(cond, ...)              \
  do {                                \
    if (!(cond)) {                    \
      printf("rank %d FAIL: ", rank); \
      printf(__VA_ARGS__);            \
      printf("\n");                   \
      fails++;                        \
    }                                 \
  } while (0)

static unsigned long long hash = 14695981039346656037ULL;
static void mix(long v) { hash = (hash ^ (unsigned long long)v) * 0x100000001b3ULL; }

/* c = a * b (2x2, row major, mod P) */
static void mul(const long *a, const long *b, long *c) {
  long r[4];
  r[0] = (a[0] * b[0] + a[1] * b[2]) % P;
  r[1] = (a[0] * b[1] + a[1] * b[3]) % P;
  r[2] = (a[2] * b[0] + a[3] * b[2]) % P;
  r[3] = (a[2] * b[1] + a[3] * b[3]) % P;
  memcpy(c, r, sizeof r);
}

static void matmul_long(void *in, void *inout, int *len, MPI_Datatype *dt) {
  if (*dt != mat_t) bad_handle++;
  long *a = in, *b = inout;
  for (int k = 0; k < *len; k++) mul(a + 4 * k, b + 4 * k, b + 4 * k);
}

static void matmul_int(void *in, void *inout, int *len, MPI_Datatype *dt) {
  if (*dt != MPI_INT) bad_handle++;
  int *a = in, *b = inout;
  for (int k = 0; k + 3 < *len; k += 4) {
    long x[4], y[4];
    for (int i = 0; i < 4; i++) x[i] = a[k + i], y[i] = b[k + i];
    mul(x, y, y);
    for (int i = 0; i < 4; i++) b[k + i] = (int)y[i];
  }
}

struct cplx {
  double re;
  int gap; /* not part of the datatype */
  double im;
};

static void csum(void *in, void *inout, int *len, MPI_Datatype *dt) {
  if (*dt != cplx_t) bad_handle++;
  struct cplx *a = in, *b = inout;
  for (int k = 0; k < *len; k++) b[k].re += a[k].re, b[k].im += a[k].im;
}

#define NM 3 /* matrices per operand */
#define NC 2 /* complex numbers per operand */

static void matrices_of(int r, int step, int block, long *m) {
  for (int k = 0; k < NM; k++)
    for (int i = 0; i < 4; i++) m[4 * k + i] = (r * 31 + step * 7 + k * 5 + i * 3 + block * 11 + 1) % 97 + (i == 1 ? r : 0);
}

static void complex_of(int r, int step, struct cplx *c) {
  for (int k = 0; k < NC; k++) c[k].re = r * 2 + step + k, c[k].im = r * r - step * k, c[k].gap = -5;
}

/* The rank-order product of ranks first..last's operands (block `block`). */
static void expected_product(int first, int last, int step, int block, long *out) {
  long m[4 * NM];
  matrices_of(last, step, block, out);
  for (int r = last - 1; r >= first; r--) {
    matrices_of(r, step, block, m);
    for (int k = 0; k < NM; k++) mul(m + 4 * k, out + 4 * k, out + 4 * k);
  }
}

/* The first `n` matrices of the rank-order product. */
static void check_product_n(const char *what, const long *got, int n, int first, int last, int step, int block) {
  long want[4 * NM];
  expected_product(first, last, step, block, want);
  for (int i = 0; i < 4 * n; i++) CHECK(got[i] == want[i], "%s: element %d is %ld, want %ld", what, i, got[i], want[i]);
  for (int i = 0; i < 4 * n; i++) mix(got[i]);
}

static void check_product(const char *what, const long *got, int first, int last, int step, int block) {
  check_product_n(what, got, NM, first, last, step, block);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int steps = argc > 1 ? atoi(argv[1]) : 4;
  int step_us = argc > 2 ? atoi(argv[2]) : 0;
  int all = !(argc > 3 && strcmp(argv[3], "basic") == 0);

  MPI_Type_contiguous(4, MPI_LONG, &mat_t);
  MPI_Type_commit(&mat_t);
  int bl[2] = {1, 1};
  MPI_Aint dis[2] = {0, 16};
  MPI_Datatype ty[2] = {MPI_DOUBLE, MPI_DOUBLE}, raw;
  MPI_Type_create_struct(2, bl, dis, ty, &raw);
  MPI_Type_create_resized(raw, 0, sizeof(struct cplx), &cplx_t);
  MPI_Type_free(&raw);
  MPI_Type_commit(&cplx_t);
  MPI_Op matmul_op, matmul_int_op, csum_op;
  MPI_Op_create(matmul_long, 0, &matmul_op);
  MPI_Op_create(matmul_int, 0, &matmul_int_op);
  MPI_Op_create(csum, 1, &csum_op);

  for (int step = 0; step < steps; step++) {
    long mine[4 * NM], out[4 * NM];
    matrices_of(rank, step, 0, mine);
    /* Allreduce on the derived type, then in place. */
    MPI_Allreduce(mine, out, NM, mat_t, matmul_op, MPI_COMM_WORLD);
    check_product("allreduce", out, 0, size - 1, step, 0);
    memcpy(out, mine, sizeof out);
    MPI_Allreduce(MPI_IN_PLACE, out, NM, mat_t, matmul_op, MPI_COMM_WORLD);
    check_product("allreduce in place", out, 0, size - 1, step, 0);
    /* The same on MPI_INT (4 ints per matrix). */
    int imine[4 * NM], iout[4 * NM];
    for (int i = 0; i < 4 * NM; i++) imine[i] = (int)mine[i];
    MPI_Allreduce(imine, iout, 4 * NM, MPI_INT, matmul_int_op, MPI_COMM_WORLD);
    for (int i = 0; i < 4 * NM; i++) out[i] = iout[i];
    check_product("allreduce MPI_INT", out, 0, size - 1, step, 0);
    /* Reduce to a rotating root; in place at the root every other step. */
    int root = step % size;
    long rout[4 * NM];
    for (int i = 0; i < 4 * NM; i++) rout[i] = -9;
    if (rank == root && step % 2 == 1) {
      memcpy(rout, mine, sizeof rout);
      MPI_Reduce(MPI_IN_PLACE, rout, NM, mat_t, matmul_op, root, MPI_COMM_WORLD);
    } else {
      MPI_Reduce(mine, rout, NM, mat_t, matmul_op, root, MPI_COMM_WORLD);
    }
    if (rank == root) check_product("reduce", rout, 0, size - 1, step, 0);
    else for (int i = 0; i < 4 * NM; i++) CHECK(rout[i] == -9, "reduce touched a non-root's buffer");
    /* Complex sums on a struct with a gap. */
    struct cplx c[NC], cs[NC];
    complex_of(rank, step, c);
    for (int k = 0; k < NC; k++) cs[k].re = cs[k].im = -1, cs[k].gap = 4242;
    MPI_Allreduce(c, cs, NC, cplx_t, csum_op, MPI_COMM_WORLD);
    for (int k = 0; k < NC; k++) {
      double re = 0, im = 0;
      for (int r = 0; r < size; r++) re += r * 2 + step + k, im += r * r - step * k;
      CHECK(cs[k].re == re && cs[k].im == im && cs[k].gap == 4242, "complex sum %d: %g %g gap %d", k, cs[k].re,
            cs[k].im, cs[k].gap);
      mix((long)cs[k].re);
      mix((long)cs[k].im);
    }
    if (all) {
      MPI_Scan(mine, out, NM, mat_t, matmul_op, MPI_COMM_WORLD);
      check_product("scan", out, 0, rank, step, 0);
      memcpy(out, mine, sizeof out);
      MPI_Exscan(MPI_IN_PLACE, out, NM, mat_t, matmul_op, MPI_COMM_WORLD);
      if (rank > 0) check_product("exscan", out, 0, rank - 1, step, 0);
      /* Reduce_scatter_block: rank r's block b is matrices_of(r, step, b). */
      long *vec = malloc(sizeof(long) * 4 * NM * size);
      for (int b = 0; b < size; b++) matrices_of(rank, step, b, vec + 4 * NM * b);
      MPI_Reduce_scatter_block(vec, out, NM, mat_t, matmul_op, MPI_COMM_WORLD);
      check_product("reduce_scatter_block", out, 0, size - 1, step, rank);
      /* Reduce_scatter in place with unequal counts: rank b gets 1 + (b + step) % NM matrices, the
       * first ones of every rank's block b. */
      int *counts = malloc(sizeof(int) * size);
      int at = 0;
      for (int b = 0; b < size; b++) {
        counts[b] = 1 + (b + step) % NM;
        long m[4 * NM];
        matrices_of(rank, step, b, m);
        memcpy(vec + 4 * at, m, sizeof(long) * 4 * counts[b]);
        at += counts[b];
      }
      MPI_Reduce_scatter(MPI_IN_PLACE, vec, counts, mat_t, matmul_op, MPI_COMM_WORLD);
      check_product_n("reduce_scatter", vec, counts[rank], 0, size - 1, step, rank);
      free(counts);
      free(vec);
    }
    CHECK(bad_handle == 0, "the op function got another datatype handle (%d times)", bad_handle);
    printf("rank %d step %d sum %016llx\n", rank, step, hash);
    fflush(stdout);
    if (step_us > 0) usleep(step_us);
  }
  MPI_Op_free(&matmul_op);
  MPI_Op_free(&matmul_int_op);
  MPI_Op_free(&csum_op);
  CHECK(csum_op == MPI_OP_NULL, "Op_free sets MPI_OP_NULL");
  MPI_Type_free(&mat_t);
  MPI_Type_free(&cplx_t);
  printf("rank %d %s\n", rank, fails ? "FAILED" : "PASS");
  MPI_Finalize();
  return fails ? 1 : 0;
}
