! SPDX-License-Identifier: Apache-2.0
! Fortran (include 'mpif.h') test of ferry's Fortran bindings, with checked data:
!   ring   a token around MPI_COMM_WORLD with Send and Recv(MPI_ANY_SOURCE, MPI_ANY_TAG),
!          status(MPI_SOURCE), status(MPI_TAG), Get_count;
!   halo   Irecv from both neighbours, Isend to both, Waitall (with statuses), then a
!          Sendrecv, Probe and Iprobe+Recv;
!   colls  Allreduce (MPI_IN_PLACE, MPI_INTEGER/MPI_SUM, MPI_DOUBLE_PRECISION/MPI_MAX,
!          MPI_LOGICAL/MPI_LAND), Reduce with MPI_IN_PLACE at the root, Bcast, Gather with
!          MPI_IN_PLACE at the root, Scatter, Allgather, Alltoall, Barrier;
!   comms  Comm_split by parity with a reversed key, Allreduce on it, Comm_dup, Comm_free.
! Prints one line per check group and "rank R PASS" at the end.
program ring_f
  implicit none
  include 'mpif.h'
  integer :: ierr, rank, nprocs, nxt, prv, i, fails, count, half, hrank, hsize, dup
  integer :: token(2), st(MPI_STATUS_SIZE), sts(MPI_STATUS_SIZE, 4), req(4)
  integer :: left, right, mine, ival, ivals(64), sums
  integer :: flag_i
  double precision :: dval
  logical :: lval, flag
  fails = 0

  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Comm_size(MPI_COMM_WORLD, nprocs, ierr)
  nxt = mod(rank + 1, nprocs)
  prv = mod(rank + nprocs - 1, nprocs)

  ! ring
  do i = 1, 5
    if (rank == 0) then
      token = (/ i, 0 /)
      call MPI_Send(token, 2, MPI_INTEGER, nxt, 100 + i, MPI_COMM_WORLD, ierr)
      call MPI_Recv(token, 2, MPI_INTEGER, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, st, ierr)
    else
      call MPI_Recv(token, 2, MPI_INTEGER, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, st, ierr)
      token(2) = token(2) + rank
      call MPI_Send(token, 2, MPI_INTEGER, nxt, 100 + i, MPI_COMM_WORLD, ierr)
    end if
    call MPI_Get_count(st, MPI_INTEGER, count, ierr)
    call check(st(MPI_SOURCE) == prv .and. st(MPI_TAG) == 100 + i .and. count == 2 .and. token(1) == i, 'ring')
  end do
  if (rank == 0) call check(token(2) == nprocs * (nprocs - 1) / 2, 'ring sum')
  ! (rank 0's ANY_TAG receive must not see the next phase's messages)
  call MPI_Barrier(MPI_COMM_WORLD, ierr)
  write (*, '(a,i0,a,i0)') 'rank ', rank, ' ring token ', token(2)

  ! halo
  left = -1
  right = -1
  mine = 1000 * rank + 7
  call MPI_Irecv(left, 1, MPI_INTEGER, prv, 1, MPI_COMM_WORLD, req(1), ierr)
  call MPI_Irecv(right, 1, MPI_INTEGER, nxt, 2, MPI_COMM_WORLD, req(2), ierr)
  call MPI_Isend(mine, 1, MPI_INTEGER, nxt, 1, MPI_COMM_WORLD, req(3), ierr)
  call MPI_Isend(mine, 1, MPI_INTEGER, prv, 2, MPI_COMM_WORLD, req(4), ierr)
  call MPI_Waitall(4, req, sts, ierr)
  call check(all(req == MPI_REQUEST_NULL), 'requests null after Waitall')
  call check(left == 1000 * prv + 7 .and. right == 1000 * nxt + 7, 'halo data')
  call check(sts(MPI_SOURCE, 1) == prv .and. sts(MPI_TAG, 2) == 2, 'halo statuses')
  ival = -1
  call MPI_Sendrecv(mine, 1, MPI_INTEGER, nxt, 3, ival, 1, MPI_INTEGER, MPI_ANY_SOURCE, 3, &
                    MPI_COMM_WORLD, st, ierr)
  call check(ival == 1000 * prv + 7 .and. st(MPI_SOURCE) == prv, 'sendrecv')
  call MPI_Send(mine, 1, MPI_INTEGER, nxt, 4, MPI_COMM_WORLD, ierr)
  call MPI_Probe(MPI_ANY_SOURCE, 4, MPI_COMM_WORLD, st, ierr)
  call MPI_Get_count(st, MPI_INTEGER, count, ierr)
  call check(st(MPI_SOURCE) == prv .and. count == 1, 'probe')
  call MPI_Recv(ival, 1, MPI_INTEGER, st(MPI_SOURCE), 4, MPI_COMM_WORLD, MPI_STATUS_IGNORE, ierr)
  call MPI_Isend(mine, 1, MPI_INTEGER, prv, 5, MPI_COMM_WORLD, req(1), ierr)
  flag = .false.
  do while (.not. flag)
    call MPI_Iprobe(nxt, 5, MPI_COMM_WORLD, flag, st, ierr)
  end do
  call MPI_Recv(ival, 1, MPI_INTEGER, nxt, 5, MPI_COMM_WORLD, MPI_STATUS_IGNORE, ierr)
  call check(ival == 1000 * nxt + 7, 'iprobe')
  flag_i = 0
  flag = .false.
  do while (.not. flag)
    call MPI_Test(req(1), flag, MPI_STATUS_IGNORE, ierr)
  end do
  call check(req(1) == MPI_REQUEST_NULL, 'request null after Test')
  write (*, '(a,i0,a,i0,1x,i0)') 'rank ', rank, ' halo ', left, right

  ! collectives
  ival = rank + 1
  call MPI_Allreduce(MPI_IN_PLACE, ival, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD, ierr)
  call check(ival == nprocs * (nprocs + 1) / 2, 'allreduce in place')
  dval = 0.5d0 * rank
  call MPI_Allreduce(MPI_IN_PLACE, dval, 1, MPI_DOUBLE_PRECISION, MPI_MAX, MPI_COMM_WORLD, ierr)
  call check(dval == 0.5d0 * (nprocs - 1), 'allreduce max')
  lval = rank >= 0
  call MPI_Allreduce(MPI_IN_PLACE, lval, 1, MPI_LOGICAL, MPI_LAND, MPI_COMM_WORLD, ierr)
  call check(lval, 'allreduce land')
  sums = rank * 10
  if (rank == 0) then
    call MPI_Reduce(MPI_IN_PLACE, sums, 1, MPI_INTEGER, MPI_SUM, 0, MPI_COMM_WORLD, ierr)
    call check(sums == 10 * nprocs * (nprocs - 1) / 2, 'reduce in place')
  else
    call MPI_Reduce(sums, ival, 1, MPI_INTEGER, MPI_SUM, 0, MPI_COMM_WORLD, ierr)
  end if
  ival = -1
  if (rank == 0) ival = 4242
  call MPI_Bcast(ival, 1, MPI_INTEGER, 0, MPI_COMM_WORLD, ierr)
  call check(ival == 4242, 'bcast')
  ivals = -1
  ivals(rank + 1) = rank * rank
  if (rank == 0) then
    call MPI_Gather(MPI_IN_PLACE, 1, MPI_INTEGER, ivals, 1, MPI_INTEGER, 0, MPI_COMM_WORLD, ierr)
    do i = 1, nprocs
      call check(ivals(i) == (i - 1) * (i - 1), 'gather in place')
    end do
  else
    call MPI_Gather(ivals(rank + 1), 1, MPI_INTEGER, ivals, 1, MPI_INTEGER, 0, MPI_COMM_WORLD, ierr)
  end if
  do i = 1, nprocs
    ivals(i) = 100 * i
  end do
  call MPI_Scatter(ivals, 1, MPI_INTEGER, ival, 1, MPI_INTEGER, 0, MPI_COMM_WORLD, ierr)
  call check(ival == 100 * (rank + 1), 'scatter')
  call MPI_Allgather(rank, 1, MPI_INTEGER, ivals, 1, MPI_INTEGER, MPI_COMM_WORLD, ierr)
  do i = 1, nprocs
    call check(ivals(i) == i - 1, 'allgather')
  end do
  do i = 1, nprocs
    ivals(i) = rank * 100 + (i - 1)
  end do
  call MPI_Alltoall(MPI_IN_PLACE, 1, MPI_INTEGER, ivals, 1, MPI_INTEGER, MPI_COMM_WORLD, ierr)
  do i = 1, nprocs
    call check(ivals(i) == (i - 1) * 100 + rank, 'alltoall in place')
  end do
  call MPI_Barrier(MPI_COMM_WORLD, ierr)
  write (*, '(a,i0,a,i0)') 'rank ', rank, ' collectives ', sums * merge(1, 0, rank == 0)

  ! communicators
  call MPI_Comm_split(MPI_COMM_WORLD, mod(rank, 2), -rank, half, ierr)
  call MPI_Comm_rank(half, hrank, ierr)
  call MPI_Comm_size(half, hsize, ierr)
  call check(half /= MPI_COMM_NULL .and. half /= MPI_COMM_WORLD, 'split handle')
  ival = rank
  call MPI_Allreduce(MPI_IN_PLACE, ival, 1, MPI_INTEGER, MPI_SUM, half, ierr)
  call MPI_Comm_dup(half, dup, ierr)
  call check(dup /= half, 'dup handle')
  count = -1
  if (hrank == 0) count = rank
  call MPI_Bcast(count, 1, MPI_INTEGER, 0, dup, ierr)
  call check(count == nprocs - 1 - mod(nprocs - 1 - mod(rank, 2), 2), 'bcast on dup: highest rank of the parity')
  call MPI_Comm_free(dup, ierr)
  call check(dup == MPI_COMM_NULL, 'comm_free sets MPI_COMM_NULL')
  call MPI_Comm_free(half, ierr)
  write (*, '(a,i0,a,i0,a,i0,a,i0)') 'rank ', rank, ' half ', hrank, ' of ', hsize, ' sum ', ival

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
      write (*, '(a,i0,a,a)') 'rank ', rank, ' FAIL: ', what
    end if
  end subroutine check

end program ring_f
