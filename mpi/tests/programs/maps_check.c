/* SPDX-License-Identifier: Apache-2.0
 * Prints every file mapped into this process that belongs to an MPI implementation or its
 * runtime (libmpi, Open MPI's libopen-*, PMIx, hwloc, libevent, MCA components), after MPI_Init
 * and an Allreduce. Under ferry-mpi-proxy the only one must be ferry's libmpi.so.40. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, x = 1, y = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Allreduce(&x, &y, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[4096], last[4096] = "";
  const char *marks[] = {"libmpi", "libopen-", "pmix", "hwloc", "libevent", "openmpi", "mca_", "ucx"};
  while (maps && fgets(line, sizeof line, maps)) {
    char *path = strchr(line, '/');
    if (!path) continue;
    path[strcspn(path, "\n")] = 0;
    for (size_t m = 0; m < sizeof marks / sizeof *marks; m++) {
      if (strstr(path, marks[m]) && strcmp(path, last) != 0) {
        printf("rank %d maps %s\n", rank, path);
        snprintf(last, sizeof last, "%s", path);
        break;
      }
    }
  }
  if (maps) fclose(maps);
  printf("rank %d sum %d\n", rank, y);
  MPI_Finalize();
  return 0;
}
