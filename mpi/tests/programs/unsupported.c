/* SPDX-License-Identifier: Apache-2.0
 * Calls MPI_Comm_get_parent (dynamic processes), which ferry does not support: the job must end
 * with "ferry: MPI_Comm_get_parent is not supported" (and never run on silently wrong). */
#include <mpi.h>
#include <stdio.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm parent;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_get_parent(&parent);
  printf("rank %d has %s parent\n", rank, parent == MPI_COMM_NULL ? "no" : "a");
  MPI_Finalize();
  return 0;
}
