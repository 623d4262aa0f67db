/* SPDX-License-Identifier: Apache-2.0
 * Prints every file mapped into this process that belongs to an MPI implementation or its
 * runtime (libmpi, Open MPI's libopen-*, PMIx, hwloc, libevent, MCA components), after MPI_Init
 * and an Allreduce, then how many sockets it holds and how many threads it runs. Under
 * ferry-mpi-proxy the only MPI file must be ferry's libmpi.so.40, with no socket and one thread
 * (Open MPI's own ranks hold PMIx sockets and run 3 threads): what the single-process
 * checkpoint machinery can take. */
#include <dirent.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
  int sockets = 0;
  DIR *fds = opendir("/proc/self/fd");
  struct dirent *e;
  while (fds && (e = readdir(fds))) {
    char link[300], target[256];
    snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n > 0) {
      target[n] = 0;
      sockets += strncmp(target, "socket:", 7) == 0;
    }
  }
  if (fds) closedir(fds);
  int threads = 0;
  FILE *status = fopen("/proc/self/status", "r");
  while (status && fgets(line, sizeof line, status)) sscanf(line, "Threads: %d", &threads);
  if (status) fclose(status);
  printf("rank %d sockets %d threads %d\n", rank, sockets, threads);
  printf("rank %d sum %d\n", rank, y);
  MPI_Finalize();
  return 0;
}
