! SPDX-License-Identifier: Apache-2.0
! ckpt_f.f90 written with `use mpi_f08` (derived-type handles, type(MPI_Status), optional ierror,
! a TYPE(C_PTR) user function): served by Open MPI's own libmpi_usempif08.so.40, a thin layer
! over the ompi_*_f entry points that ferry's libmpi_mpifh.so.40 exports. Every step, with
! checked data:
!   ring   a token around a Comm_dup of MPI_COMM_WORLD with blocking Send and
!          Recv(MPI_ANY_SOURCE, MPI_ANY_TAG), while a 4 KiB block to the next rank is in flight
!          (Isend) during a compute phase;
!   halo   Irecv from both neighbours posted before a compute phase, Isend after it, Waitall
!          (MPI_STATUSES_IGNORE): receives pending across the compute phase;
!   coll   Allreduce with MPI_IN_PLACE (DOUBLE PRECISION, MPI_SUM) on the world, Reduce with
!          MPI_IN_PLACE at the root, Gather with MPI_IN_PLACE at the root, Allreduce + Bcast on
!          a Comm_split sub-communicator made once at the start;
!   user   an Allreduce with a reduction function written in Fortran (MPI_Op_create, made once)
!          and a row of a 4x4 grid sent around the ring as a derived type (MPI_Type_vector);
! with rank-dependent compute times, so at most moments some ranks wait in MPI calls while
! others compute. One line per step with a running checksum; "rank R PASS" at the end.
! Usage: ckpt_f08 [STEPS] [STEP_US]
module ckpt_f08_ops
  use mpi_f08
  use iso_c_binding, only: c_ptr, c_f_pointer
  implicit none
contains
  ! inout = in + inout, element by element (a sum the test can check)
  subroutine add_ints(invec, inoutvec, len, datatype)
    type(c_ptr), value :: invec, inoutvec
    integer :: len
    type(MPI_Datatype) :: datatype
    integer, pointer :: a(:), b(:)
    call c_f_pointer(invec, a, (/ len /))
    call c_f_pointer(inoutvec, b, (/ len /))
    b = a + b
  end subroutine add_ints
end module ckpt_f08_ops

program ckpt_f08
  use mpi_f08
  use ckpt_f08_ops
  use iso_c_binding, only: c_int
  implicit none
  interface
    integer(c_int) function usleep(us) bind(C, name='usleep')
      import :: c_int
      integer(c_int), value :: us
    end function usleep
  end interface
  integer :: ierr, rank, nprocs, nxt, prv, steps, step_us, step, k, fails, rc
  integer :: hrank, hsize
  type(MPI_Comm) :: ringc, half
  type(MPI_Request) :: bs, rq(4)
  type(MPI_Status) :: st
  integer :: token(2), from_prev, from_next, mine, root_val, gathered(64)
  integer(kind=8) :: block(512), inblock(512), hv, hsum
  integer(kind=8) :: sum
  double precision :: total
  character(len=32) :: arg
  type(MPI_Op) :: addop
  type(MPI_Datatype) :: rowtype
  integer :: grid(4, 4), row(4), pair(2)

  fails = 0
  call MPI_Init()
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Comm_size(MPI_COMM_WORLD, nprocs, ierr)
  steps = 20
  step_us = 2000
  if (command_argument_count() >= 1) then
    call get_command_argument(1, arg)
    read (arg, *) steps
  end if
  if (command_argument_count() >= 2) then
    call get_command_argument(2, arg)
    read (arg, *) step_us
  end if
  nxt = mod(rank + 1, nprocs)
  prv = mod(rank + nprocs - 1, nprocs)
  call MPI_Comm_dup(MPI_COMM_WORLD, ringc, ierr)
  call MPI_Comm_split(MPI_COMM_WORLD, mod(rank, 2), -rank, half, ierr)
  call MPI_Comm_rank(half, hrank, ierr)
  call MPI_Comm_size(half, hsize, ierr)
  call MPI_Op_create(add_ints, .true., addop, ierr)
  call MPI_Type_vector(4, 1, 4, MPI_INTEGER, rowtype, ierr)
  call MPI_Type_commit(rowtype, ierr)
  sum = 0

  do step = 0, steps - 1
    ! ring with a block in flight
    do k = 1, 512
      block(k) = int(rank, 8) * 1000003_8 + step * 7 + k
    end do
    call MPI_Isend(block, 512, MPI_INTEGER8, nxt, 1000 + step, MPI_COMM_WORLD, bs, ierr)
    if (rank == 0) then
      token = (/ step, 0 /)
      rc = usleep(int(step_us, c_int))
      call MPI_Send(token, 2, MPI_INTEGER, nxt, step, ringc, ierr)
      call MPI_Recv(token, 2, MPI_INTEGER, MPI_ANY_SOURCE, MPI_ANY_TAG, ringc, st, ierr)
    else
      call MPI_Recv(token, 2, MPI_INTEGER, MPI_ANY_SOURCE, MPI_ANY_TAG, ringc, st, ierr)
      token(2) = token(2) + rank
      rc = usleep(int(step_us / (rank + 1), c_int))
      call MPI_Send(token, 2, MPI_INTEGER, nxt, step, ringc, ierr)
    end if
    call check(st%MPI_SOURCE == prv .and. st%MPI_TAG == step .and. token(1) == step, 'token')
    sum = mix(sum, int(token(2), 8))
    call MPI_Recv(inblock, 512, MPI_INTEGER8, prv, 1000 + step, MPI_COMM_WORLD, st, ierr)
    do k = 1, 512, 97
      call check(inblock(k) == int(prv, 8) * 1000003_8 + step * 7 + k, 'block')
    end do
    sum = mix(sum, inblock(512))
    call MPI_Wait(bs, MPI_STATUS_IGNORE, ierr)
    call check(bs == MPI_REQUEST_NULL, 'request null after Wait')

    ! halo with receives pending across a compute phase
    from_prev = -1
    from_next = -1
    mine = rank * 100 + step
    call MPI_Irecv(from_prev, 1, MPI_INTEGER, prv, 5, MPI_COMM_WORLD, rq(1), ierr)
    call MPI_Irecv(from_next, 1, MPI_INTEGER, nxt, 6, MPI_COMM_WORLD, rq(2), ierr)
    rc = usleep(int(step_us / 2 * mod(rank + step, 3), c_int))
    call MPI_Isend(mine, 1, MPI_INTEGER, nxt, 5, MPI_COMM_WORLD, rq(3), ierr)
    call MPI_Isend(mine, 1, MPI_INTEGER, prv, 6, MPI_COMM_WORLD, rq(4), ierr)
    call MPI_Waitall(4, rq, MPI_STATUSES_IGNORE, ierr)
    call check(from_prev == prv * 100 + step .and. from_next == nxt * 100 + step, 'halo')
    sum = mix(sum, int(from_prev + from_next, 8))

    ! collectives on the world and on the sub-communicator
    total = rank + step * 0.5d0
    call MPI_Allreduce(MPI_IN_PLACE, total, 1, MPI_DOUBLE_PRECISION, MPI_SUM, MPI_COMM_WORLD, ierr)
    call check(total == nprocs * (nprocs - 1) / 2.0d0 + nprocs * step * 0.5d0, 'allreduce')
    hv = rank
    call MPI_Allreduce(hv, hsum, 1, MPI_INTEGER8, MPI_SUM, half, ierr)
    root_val = -1
    if (hrank == 0) root_val = rank * 10 + step
    call MPI_Bcast(root_val, 1, MPI_INTEGER, 0, half, ierr)
    gathered(rank + 1) = rank + step
    if (rank == 0) then
      call MPI_Gather(MPI_IN_PLACE, 1, MPI_INTEGER, gathered, 1, MPI_INTEGER, 0, MPI_COMM_WORLD, ierr)
      do k = 1, nprocs
        call check(gathered(k) == k - 1 + step, 'gather')
      end do
      mine = step
      call MPI_Reduce(MPI_IN_PLACE, mine, 1, MPI_INTEGER, MPI_MAX, 0, MPI_COMM_WORLD, ierr)
      call check(mine == nprocs - 1 + step, 'reduce')
    else
      call MPI_Gather(gathered(rank + 1), 1, MPI_INTEGER, gathered, 1, MPI_INTEGER, 0, MPI_COMM_WORLD, ierr)
      mine = rank + step
      call MPI_Reduce(mine, k, 1, MPI_INTEGER, MPI_MAX, 0, MPI_COMM_WORLD, ierr)
    end if
    sum = mix(mix(sum, int(total, 8)), hsum * 1000 + root_val)

    ! a Fortran user op and a derived type
    pair = (/ rank + step, 1 /)
    call MPI_Allreduce(MPI_IN_PLACE, pair, 2, MPI_INTEGER, addop, MPI_COMM_WORLD, ierr)
    call check(pair(1) == nprocs * (nprocs - 1) / 2 + nprocs * step .and. pair(2) == nprocs, 'user op')
    do k = 1, 4
      grid(:, k) = rank * 1000 + step * 10 + k + (/ 0, 100, 200, 300 /)
    end do
    call MPI_Sendrecv(grid(3, 1), 1, rowtype, nxt, 7, row, 4, MPI_INTEGER, prv, 7, MPI_COMM_WORLD, st, ierr)
    call check(all(row == prv * 1000 + step * 10 + 200 + (/ 1, 2, 3, 4 /)), 'row type')
    sum = mix(mix(sum, int(pair(1), 8)), int(row(4), 8))
    write (*, '(a,i0,a,i0,a,z16.16)') 'rank ', rank, ' step ', step, ' sum ', sum
    flush (6)
  end do
  call MPI_Op_free(addop, ierr)
  call MPI_Type_free(rowtype, ierr)
  call MPI_Comm_free(half, ierr)
  call MPI_Comm_free(ringc, ierr)
  call check(half == MPI_COMM_NULL .and. ringc == MPI_COMM_NULL, 'comm_free')
  call MPI_Barrier(MPI_COMM_WORLD, ierr)
  if (fails == 0) then
    write (*, '(a,i0,a)') 'rank ', rank, ' PASS'
  else
    write (*, '(a,i0,a,i0,a)') 'rank ', rank, ' FAILED (', fails, ' checks)'
  end if
  call MPI_Finalize(ierr)

contains

  subroutine check(cond, what)
    logical, intent(in) :: cond
    character(*), intent(in) :: what
    if (.not. cond) then
      fails = fails + 1
      write (*, '(a,i0,a,a,a,i0)') 'rank ', rank, ' FAIL: ', what, ' step ', step
    end if
  end subroutine check

  integer(kind=8) function mix(h, v)
    integer(kind=8), intent(in) :: h, v
    mix = ieor(h, v + 40503_8 + ishft(h, 6) + ishft(h, -2))
  end function mix

end program ckpt_f08
