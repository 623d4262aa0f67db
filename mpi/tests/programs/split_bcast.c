/* SPDX-License-Identifier: Apache-2.0
 * Sub-communicators with checked data: Comm_split by parity (key reverses the order), Bcast on
 * the halves and on the world from every root, Comm_dup (traffic on the copy does not mix with
 * the original), Allreduce/Barrier/Sendrecv inside the halves, Comm_split with MPI_UNDEFINED,
 * Comm_free. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

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

  MPI_Comm half;
  MPI_Comm_split(MPI_COMM_WORLD, rank % 2, -rank, &half);
  int hrank, hsize;
  MPI_Comm_rank(half, &hrank);
  MPI_Comm_size(half, &hsize);
  int members = 0;
  for (int r = 0; r < size; r++) members += (r % 2 == rank % 2);
  CHECK(hsize == members, "half size %d", hsize);
  int higher = 0;
  for (int r = rank + 1; r < size; r++) higher += (r % 2 == rank % 2);
  CHECK(hrank == higher, "half rank %d want %d (key reverses order)", hrank, higher);
  printf("rank %d half %d rank %d of %d\n", rank, rank % 2, hrank, hsize);

  for (int root = 0; root < hsize; root++) {
    double data[64];
    for (int k = 0; k < 64; k++) data[k] = (hrank == root) ? (rank % 2) * 1000 + root * 10 + k : -1;
    MPI_Bcast(data, 64, MPI_DOUBLE, root, half);
    for (int k = 0; k < 64; k++) CHECK(data[k] == (rank % 2) * 1000 + root * 10 + k, "half bcast root %d", root);
  }
  char text[40];
  for (int root = 0; root < size; root++) {
    if (rank == root) snprintf(text, sizeof text, "world bcast from %d", root);
    else memset(text, 0, sizeof text);
    MPI_Bcast(text, sizeof text, MPI_CHAR, root, MPI_COMM_WORLD);
    char want[40];
    snprintf(want, sizeof want, "world bcast from %d", root);
    CHECK(strcmp(text, want) == 0, "world bcast '%s'", text);
  }

  int hsum = 0, one = rank;
  MPI_Allreduce(&one, &hsum, 1, MPI_INT, MPI_SUM, half);
  printf("rank %d half sum %d\n", rank, hsum);
  MPI_Barrier(half);

  MPI_Comm copy;
  MPI_Comm_dup(half, &copy);
  int crank;
  MPI_Comm_rank(copy, &crank);
  CHECK(crank == hrank, "dup rank");
  /* same tag on both communicators: each receive must get its own communicator's message */
  int next = (hrank + 1) % hsize, prev = (hrank + hsize - 1) % hsize;
  int a = 100 + rank, b = 200 + rank, ga = -1, gb = -1;
  MPI_Request reqs[2];
  MPI_Irecv(&gb, 1, MPI_INT, prev, 3, copy, &reqs[0]);
  MPI_Irecv(&ga, 1, MPI_INT, prev, 3, half, &reqs[1]);
  MPI_Send(&a, 1, MPI_INT, next, 3, half);
  MPI_Send(&b, 1, MPI_INT, next, 3, copy);
  MPI_Waitall(2, reqs, MPI_STATUSES_IGNORE);
  CHECK(ga >= 100 && ga < 200 && gb >= 200, "communicators kept apart: %d %d", ga, gb);
  printf("rank %d dup exchange %d %d\n", rank, ga, gb);
  MPI_Comm_free(&copy);
  CHECK(copy == MPI_COMM_NULL, "freed comm is NULL");

  MPI_Comm only_zero;
  MPI_Comm_split(MPI_COMM_WORLD, rank == 0 ? 0 : MPI_UNDEFINED, 0, &only_zero);
  CHECK((rank == 0) == (only_zero != MPI_COMM_NULL), "split undefined");
  if (only_zero != MPI_COMM_NULL) {
    int s;
    MPI_Comm_size(only_zero, &s);
    CHECK(s == 1, "size of the rank-0 comm");
    MPI_Comm_free(&only_zero);
  }
  MPI_Comm_free(&half);
  MPI_Barrier(MPI_COMM_WORLD);
  printf("rank %d %s\n", rank, fails ? "FAILED" : "PASS");
  MPI_Finalize();
  return fails ? 1 : 0;
}
