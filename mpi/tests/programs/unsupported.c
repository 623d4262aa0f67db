/* SPDX-License-Identifier: Apache-2.0
 * Calls MPI_Alltoall, which ferry does not support yet: the job must end with
 * "ferry: MPI_Alltoall is not supported" (and never run it silently wrong). */
#include <mpi.h>
#include <stdio.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, in[64], out[64];
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  for (int k = 0; k < 64; k++) in[k] = k;
  MPI_Alltoall(in, 1, MPI_INT, out, 1, MPI_INT, MPI_COMM_WORLD);
  printf("rank %d alltoall returned\n", rank);
  MPI_Finalize();
  return 0;
}
