// SPDX-License-Identifier: Apache-2.0
// Open MPI's Fortran sentinels (MPI_BOTTOM, MPI_IN_PLACE, MPI_STATUS_IGNORE...) are common
// blocks: every mpif.h / `use mpi` executable defines them in its own .bss and exports them, and
// the library recognises an argument by comparing its address with the symbol's. These
// definitions (sizes as in libmpi_usempi_ignore_tkr.so.40) only serve a program that does not
// define them; the bindings reach the symbols through the GOT, so they compare against the
// executable's copy whenever there is one. Never give them hidden visibility.
#include "fortran.hpp"

extern "C" {
FERRY_F_EXPORT MPI_Fint mpi_fortran_bottom_ = 0;
FERRY_F_EXPORT MPI_Fint mpi_fortran_in_place_ = 0;
FERRY_F_EXPORT MPI_Fint mpi_fortran_status_ignore_[6] = {};
FERRY_F_EXPORT MPI_Fint mpi_fortran_statuses_ignore_[6] = {};
FERRY_F_EXPORT MPI_Fint mpi_fortran_errcodes_ignore_ = 0;
FERRY_F_EXPORT MPI_Fint mpi_fortran_unweighted_ = 0;
FERRY_F_EXPORT MPI_Fint mpi_fortran_weights_empty_ = 0;
FERRY_F_EXPORT char mpi_fortran_argv_null_ = 0;
FERRY_F_EXPORT char mpi_fortran_argvs_null_ = 0;
}
