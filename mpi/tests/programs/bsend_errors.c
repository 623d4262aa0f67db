/* SPDX-License-Identifier: Apache-2.0
 * MPI_Bsend's buffer accounting: a Bsend that fits the attached buffer is delivered (data
 * checked); after Buffer_detach and a new attach, a Bsend larger than the buffer returns
 * MPI_ERR_BUFFER under MPI_ERRORS_RETURN. Nothing but MPI_Finalize follows the failed Bsend:
 * Open MPI 4.1 itself hangs in the next barrier or communicator creation after one. */
#include <mpi.h>
#include <stdio.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  static char small[1024];
  static int big[4096], out[16], in[16];
  int next = (rank + 1) % size, prev = (rank + size - 1) % size;
  MPI_Buffer_attach(small, sizeof small);
  for (int k = 0; k < 16; k++) out[k] = rank * 100 + k;
  MPI_Bsend(out, 16, MPI_INT, next, 1, MPI_COMM_WORLD);
  MPI_Recv(in, 16, MPI_INT, prev, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  void *detached;
  int detached_size;
  MPI_Buffer_detach(&detached, &detached_size);
  int ok = in[0] == prev * 100 && in[15] == prev * 100 + 15 && detached == (void *)small && detached_size == (int)sizeof small;
  MPI_Buffer_attach(small, sizeof small);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rc = MPI_Bsend(big, 4096, MPI_INT, next, 2, MPI_COMM_WORLD);
  printf("rank %d bsend %s, oversized bsend %s\n", rank, ok ? "ok" : "bad", rc == MPI_ERR_BUFFER ? "MPI_ERR_BUFFER" : "another code");
  printf("rank %d %s\n", rank, ok && rc == MPI_ERR_BUFFER ? "PASS" : "FAILED");
  fflush(stdout);
  MPI_Finalize();
  return 0;
}
