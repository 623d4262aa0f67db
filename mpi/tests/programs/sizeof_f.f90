! SPDX-License-Identifier: Apache-2.0
! MPI_Sizeof from `use mpi` (the only reason such a program links libmpi_usempi_ignore_tkr.so.40):
! sizes of scalars and arrays of every intrinsic kind Open MPI's module covers, next to an
! Allreduce so the program also needs libmpi_mpifh.so.40. Prints the sizes and "rank R PASS".
program sizeof_f
  use mpi
  use iso_fortran_env, only: int8, int16, int32, int64, real32, real64, real128
  implicit none
  integer :: ierr, rank, s(12), total
  integer(int8) :: i1(3)
  integer(int16) :: i2
  integer(int32) :: i4(2, 2)
  integer(int64) :: i8
  real(real32) :: r4
  real(real64) :: r8(5)
  real(real128) :: r16
  complex(real32) :: c8
  complex(real64) :: c16
  complex(real128) :: c32
  logical :: l
  character :: ch(4)
  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Sizeof(i1, s(1), ierr)
  call MPI_Sizeof(i2, s(2), ierr)
  call MPI_Sizeof(i4, s(3), ierr)
  call MPI_Sizeof(i8, s(4), ierr)
  call MPI_Sizeof(r4, s(5), ierr)
  call MPI_Sizeof(r8, s(6), ierr)
  call MPI_Sizeof(r16, s(7), ierr)
  call MPI_Sizeof(c8, s(8), ierr)
  call MPI_Sizeof(c16, s(9), ierr)
  call MPI_Sizeof(c32, s(10), ierr)
  call MPI_Sizeof(l, s(11), ierr)
  call MPI_Sizeof(ch, s(12), ierr)
  total = sum(s)
  call MPI_Allreduce(MPI_IN_PLACE, total, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD, ierr)
  write (*, '(a,i0,a,12(1x,i0))') 'rank ', rank, ' sizes', s
  if (all(s == (/ 1, 2, 4, 8, 4, 8, 16, 8, 16, 32, 4, 1 /)) .and. ierr == MPI_SUCCESS) then
    write (*, '(a,i0,a)') 'rank ', rank, ' PASS'
  else
    write (*, '(a,i0,a)') 'rank ', rank, ' FAILED'
  end if
  call MPI_Finalize(ierr)
end program sizeof_f
