// SPDX-License-Identifier: Apache-2.0
// A C++ program built with Debian's mpicxx (which links Open MPI's C++ bindings, libmpi_cxx):
// the deprecated MPI:: bindings and the C API side by side, with checked data. Each rank prints
// its results; the last line is "rank R PASS" when every check held.
#include <mpi.h>

#include <cstdio>
#include <numeric>
#include <vector>

int main(int argc, char** argv) {
  MPI::Init(argc, argv);
  const int rank = MPI::COMM_WORLD.Get_rank();
  const int size = MPI::COMM_WORLD.Get_size();
  int fails = 0;
  int c_rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &c_rank);
  if (c_rank != rank) ++fails;

  // Ring with the C++ bindings.
  std::vector<double> out(256), in(256);
  std::iota(out.begin(), out.end(), 1000.0 * rank);
  const int next = (rank + 1) % size, prev = (rank + size - 1) % size;
  MPI::COMM_WORLD.Sendrecv(out.data(), 256, MPI::DOUBLE, next, 7, in.data(), 256, MPI::DOUBLE, prev, 7);
  for (int k = 0; k < 256; ++k)
    if (in[k] != 1000.0 * prev + k) ++fails;

  // Collectives: C++ bindings and C API give the same sums.
  long mine = rank + 1, total = 0, c_total = 0;
  MPI::COMM_WORLD.Allreduce(&mine, &total, 1, MPI::LONG, MPI::SUM);
  MPI_Allreduce(&mine, &c_total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (total != static_cast<long>(size) * (size + 1) / 2 || c_total != total) ++fails;
  int root_value = rank == 0 ? 4242 : 0;
  MPI::COMM_WORLD.Bcast(&root_value, 1, MPI::INT, 0);
  if (root_value != 4242) ++fails;

  // A sub-communicator made with the C++ bindings.
  MPI::Intracomm half = MPI::COMM_WORLD.Split(rank % 2, rank);
  int one = 1, half_size = 0;
  half.Allreduce(&one, &half_size, 1, MPI::INT, MPI::SUM);
  if (half_size != half.Get_size() || half.Get_rank() != rank / 2) ++fails;
  half.Free();

  std::printf("rank %d of %d: ring %g..%g total %ld bcast %d\n", rank, size, in[0], in[255], total, root_value);
  std::printf("rank %d %s\n", rank, fails == 0 ? "PASS" : "FAIL");
  MPI::Finalize();
  return 0;
}
