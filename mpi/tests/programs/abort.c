/* SPDX-License-Identifier: Apache-2.0
 * The last rank calls MPI_Abort(MPI_COMM_WORLD, 3) while the others wait in a receive that never
 * completes: mpirun must end the whole job with status 3. */
#include <mpi.h>
#include <stdio.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size, x;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == size - 1) {
    printf("rank %d aborting\n", rank);
    fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, 3);
  }
  MPI_Recv(&x, 1, MPI_INT, size - 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  printf("rank %d FAIL: the receive completed\n", rank);
  MPI_Finalize();
  return 1;
}
