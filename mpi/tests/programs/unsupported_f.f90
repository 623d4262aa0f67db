! SPDX-License-Identifier: Apache-2.0
! A Fortran program (`use mpi`) calling an MPI function ferry does not implement
! (MPI_Comm_set_name): under plain mpirun it succeeds; under ferry the job must end with
! "ferry: MPI_Comm_set_name is not supported" (status 69), never misbehave silently.
program unsupported_f
  use mpi
  implicit none
  integer :: ierr, rank
  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Comm_set_name(MPI_COMM_WORLD, 'world', ierr)
  write (*, '(a,i0,a)') 'rank ', rank, ' named the world'
  call MPI_Finalize(ierr)
end program unsupported_f
