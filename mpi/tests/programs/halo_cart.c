/* SPDX-License-Identifier: Apache-2.0
 * A Cartesian halo exchange, long-running for checkpoint/restart tests, with checked data:
 *   setup  MPI_ERRORS_RETURN on MPI_COMM_WORLD (a send to an invalid rank returns MPI_ERR_RANK),
 *          Comm_get_errhandler (a Bsend larger than the attached buffer is not tried: after one,
 *          Open MPI 4.1 hangs in the next barrier or communicator creation);
 *          Dims_create, Cart_create (periodic in dimension 0 only), Topo_test, Cartdim_get,
 *          Cart_get, Cart_coords, Cart_rank, Cart_shift, Cart_sub (rows and columns),
 *          Comm_compare;
 *   step   halo exchange in both dimensions with Sendrecv_replace (values checked against the
 *          neighbour's formula; MPI_PROC_NULL at the non-periodic edges), Bsend to the next rank
 *          with an attached buffer, Rsend after the receive is posted (Irecv, Barrier), Allreduce
 *          on the row and Bcast on the column sub-communicators;
 * with rank-dependent compute times. One line per step with a checksum; "rank R PASS" at the end.
 * Usage: halo_cart [STEPS] [STEP_US] */
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

#define HALO 8
static double halo_value(int from, int step, int dir, int k) { return from * 1000.0 + step * 10.0 + dir * 100000.0 + k; }

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int steps = argc > 1 ? atoi(argv[1]) : 60;
  int step_us = argc > 2 ? atoi(argv[2]) : 10000;
  int next = (rank + 1) % size, prev = (rank + size - 1) % size;

  /* error handlers */
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Errhandler eh;
  MPI_Comm_get_errhandler(MPI_COMM_WORLD, &eh);
  CHECK(eh == MPI_ERRORS_RETURN, "get_errhandler");
  int dummy = 0;
  int rc = MPI_Send(&dummy, 1, MPI_INT, size + 3, 0, MPI_COMM_WORLD);
  CHECK(rc == MPI_ERR_RANK, "send to an invalid rank returned %d", rc);
  int bsize = 4 * (16 * (int)sizeof(int) + MPI_BSEND_OVERHEAD);
  char *bbuf = malloc(bsize);
  MPI_Buffer_attach(bbuf, bsize);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
  printf("rank %d errors: rank %s handler %s\n", rank, rc == MPI_ERR_RANK ? "ok" : "bad", eh == MPI_ERRORS_RETURN ? "ok" : "bad");

  /* topology */
  int dims[2] = {0, 0}, periods[2] = {1, 0};
  MPI_Dims_create(size, 2, dims);
  MPI_Comm cart, row, col;
  MPI_Cart_create(MPI_COMM_WORLD, 2, dims, periods, 0, &cart);
  int topo, nd, crank, coords[2], gd[2], gp[2], gc[2];
  MPI_Topo_test(cart, &topo);
  CHECK(topo == MPI_CART, "topo_test");
  MPI_Cartdim_get(cart, &nd);
  CHECK(nd == 2, "cartdim");
  MPI_Comm_rank(cart, &crank);
  MPI_Cart_coords(cart, crank, 2, coords);
  int back;
  MPI_Cart_rank(cart, coords, &back);
  CHECK(back == crank, "cart_rank");
  MPI_Cart_get(cart, 2, gd, gp, gc);
  CHECK(gd[0] == dims[0] && gd[1] == dims[1] && gp[0] == 1 && gp[1] == 0 && gc[0] == coords[0] && gc[1] == coords[1], "cart_get");
  int src[2], dst[2];
  MPI_Cart_shift(cart, 0, 1, &src[0], &dst[0]);
  MPI_Cart_shift(cart, 1, 1, &src[1], &dst[1]);
  int keep_row[2] = {0, 1}, keep_col[2] = {1, 0};
  MPI_Cart_sub(cart, keep_row, &row);
  MPI_Cart_sub(cart, keep_col, &col);
  int rrank, rsize, ccrank, csize, cmp;
  MPI_Comm_rank(row, &rrank);
  MPI_Comm_size(row, &rsize);
  MPI_Comm_rank(col, &ccrank);
  MPI_Comm_size(col, &csize);
  CHECK(rsize == dims[1] && csize == dims[0] && rrank == coords[1] && ccrank == coords[0], "cart_sub");
  MPI_Comm_compare(cart, MPI_COMM_WORLD, &cmp);
  printf("rank %d cart %dx%d at (%d,%d) up %d down %d left %d right %d compare %d\n", rank, dims[0], dims[1], coords[0],
         coords[1], src[0], dst[0], src[1], dst[1], cmp);

  double u[HALO];
  for (int k = 0; k < HALO; k++) u[k] = crank + k;
  unsigned long long sum = 0;
  for (int step = 0; step < steps; step++) {
    usleep(step_us / (rank + 1));
    /* halo exchange, both dimensions */
    for (int dir = 0; dir < 2; dir++) {
      double h[HALO];
      for (int k = 0; k < HALO; k++) h[k] = halo_value(crank, step, dir, k);
      MPI_Status st;
      MPI_Sendrecv_replace(h, HALO, MPI_DOUBLE, dst[dir], 10 + dir, src[dir], 10 + dir, cart, &st);
      if (src[dir] == MPI_PROC_NULL) {
        CHECK(h[3] == halo_value(crank, step, dir, 3) && st.MPI_SOURCE == MPI_PROC_NULL, "edge halo step %d", step);
      } else {
        for (int k = 0; k < HALO; k++)
          CHECK(h[k] == halo_value(src[dir], step, dir, k), "halo dir %d step %d k %d", dir, step, k);
        CHECK(st.MPI_SOURCE == src[dir], "halo source");
        for (int k = 0; k < HALO; k++) u[k] = 0.5 * u[k] + 0.001 * h[k];
      }
    }
    /* buffered send around the ring */
    int out[16], in[16];
    for (int k = 0; k < 16; k++) out[k] = rank * 31 + step + k;
    MPI_Bsend(out, 16, MPI_INT, next, 20, MPI_COMM_WORLD);
    MPI_Recv(in, 16, MPI_INT, prev, 20, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    CHECK(in[15] == prev * 31 + step + 15 && in[0] == prev * 31 + step, "bsend step %d", step);
    /* ready send: the receive is posted before anyone sends */
    long rin = -1, rout = rank * 7L + step;
    MPI_Request rr;
    MPI_Irecv(&rin, 1, MPI_LONG, prev, 30, MPI_COMM_WORLD, &rr);
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Rsend(&rout, 1, MPI_LONG, next, 30, MPI_COMM_WORLD);
    MPI_Wait(&rr, MPI_STATUS_IGNORE);
    CHECK(rin == prev * 7L + step, "rsend step %d", step);
    /* sub-communicators */
    long rv = crank, rsum = 0;
    MPI_Allreduce(&rv, &rsum, 1, MPI_LONG, MPI_SUM, row);
    long expect = 0;
    for (int j = 0; j < dims[1]; j++) expect += coords[0] * dims[1] + j;
    CHECK(rsum == expect, "row allreduce step %d", step);
    long cv = ccrank == step % csize ? 1000L * coords[1] + step : -1;
    MPI_Bcast(&cv, 1, MPI_LONG, step % csize, col);
    CHECK(cv == 1000L * coords[1] + step, "col bcast step %d", step);
    sum = mix(mix(mix(sum, (long)(u[0] * 1000) + (long)(u[HALO - 1] * 1000)), in[7] + rin), rsum * 100000 + cv);
    printf("rank %d step %d sum %016llx\n", rank, step, sum);
    fflush(stdout);
  }
  void *detached;
  int dsize;
  MPI_Buffer_detach(&detached, &dsize);
  CHECK(detached == bbuf && dsize == bsize, "buffer_detach");
  free(bbuf);
  MPI_Comm_free(&row);
  MPI_Comm_free(&col);
  MPI_Comm_free(&cart);
  MPI_Barrier(MPI_COMM_WORLD);
  printf("rank %d %s\n", rank, fails ? "FAILED" : "PASS");
  MPI_Finalize();
  return fails ? 1 : 0;
}
