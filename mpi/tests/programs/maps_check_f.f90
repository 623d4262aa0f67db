! SPDX-License-Identifier: Apache-2.0
! The Fortran twin of maps_check.c (include 'mpif.h'): after MPI_Init and an Allreduce with
! MPI_IN_PLACE, prints every mapped file that belongs to an MPI implementation or its runtime
! (libmpi*, libopen-*, PMIx, hwloc, libevent, MCA components), then the sockets it holds and the
! threads it runs. Through ferry-mpi-proxy the only MPI files must be ferry's (libmpi.so.40 and
! libmpi_mpifh.so.40 from ferry-mpi-upper/), with no socket and one thread.
program maps_check_f
  use iso_c_binding, only: c_char, c_int, c_size_t, c_ssize_t => c_long, c_null_char
  implicit none
  include 'mpif.h'
  interface
    integer(c_ssize_t) function readlink(path, buf, size) bind(C, name='readlink')
      import :: c_char, c_size_t, c_ssize_t
      character(kind=c_char), intent(in) :: path(*)
      character(kind=c_char), intent(out) :: buf(*)
      integer(c_size_t), value :: size
    end function readlink
  end interface
  character(len=4096) :: line, last
  character(len=16), parameter :: marks(8) = [character(len=16) :: 'libmpi', 'libopen-', 'pmix', &
                                              'hwloc', 'libevent', 'openmpi', 'mca_', 'ucx']
  character(kind=c_char) :: target(256)
  character(len=64) :: link
  integer :: ierr, rank, x, u, ios, slash, m, fd, sockets, threads
  integer(c_ssize_t) :: n

  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  x = 1
  call MPI_Allreduce(MPI_IN_PLACE, x, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD, ierr)
  last = ''
  open (newunit=u, file='/proc/self/maps', action='read', iostat=ios)
  do while (ios == 0)
    read (u, '(a)', iostat=ios) line
    if (ios /= 0) exit
    slash = index(line, '/')
    if (slash == 0) cycle
    do m = 1, size(marks)
      if (index(line(slash:), trim(marks(m))) > 0 .and. line(slash:) /= last) then
        write (*, '(a,i0,a,a)') 'rank ', rank, ' maps ', trim(line(slash:))
        last = line(slash:)
        exit
      end if
    end do
  end do
  close (u)
  sockets = 0
  do fd = 0, 1023
    write (link, '(a,i0,a)') '/proc/self/fd/', fd, c_null_char
    n = readlink(link, target, 255_c_size_t)
    if (n >= 7) then
      if (all(target(1:7) == ['s', 'o', 'c', 'k', 'e', 't', ':'])) sockets = sockets + 1
    end if
  end do
  threads = 0
  open (newunit=u, file='/proc/self/status', action='read', iostat=ios)
  do while (ios == 0)
    read (u, '(a)', iostat=ios) line
    if (ios /= 0) exit
    if (line(1:8) == 'Threads:') read (line(9:), *) threads
  end do
  close (u)
  write (*, '(a,i0,a,i0,a,i0)') 'rank ', rank, ' sockets ', sockets, ' threads ', threads
  write (*, '(a,i0,a,i0)') 'rank ', rank, ' sum ', x
  call MPI_Finalize(ierr)
end program maps_check_f
