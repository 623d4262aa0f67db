/* SPDX-License-Identifier: Apache-2.0
 * The last rank dies of SIGSEGV after MPI_Init while the others wait in a receive from it:
 * mpirun must end the job and report the signal exactly as for the plain program (status 139). */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size, x;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == size - 1) raise(SIGSEGV);
  MPI_Recv(&x, 1, MPI_INT, size - 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  printf("rank %d FAIL: the receive completed\n", rank);
  MPI_Finalize();
  return 1;
}
