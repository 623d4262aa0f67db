! SPDX-License-Identifier: Apache-2.0
! Every Fortran entry point of ferry's bindings for issue 5's coverage list, with checked data
! (`use mpi`): environment queries; Ssend, Rsend, Bsend with Buffer_attach/detach,
! Sendrecv_replace, Issend, Waitany, Waitsome, Testall, Testany, Request_free, Cancel of a
! receive with Test_cancelled, Probe with ANY_TAG, Get_count/Get_elements; Gatherv, Scatterv,
! Allgatherv, Alltoallv, Reduce_scatter(_block), Scan, Exscan, Ibarrier, Ibcast, Iallreduce;
! a user-defined op written in Fortran (Op_create/Op_free); Comm_group, Group_incl/excl/
! translate_ranks/size/rank/free, Comm_create, Comm_compare, Comm_set_errhandler; Dims_create,
! Cart_create/coords/rank/shift/sub/get; Type_contiguous/vector/create_hvector/indexed/
! create_struct/create_subarray/create_resized/commit/free/size/get_extent.
! One line per group with the values checked; "rank R PASS" at the end. Needs >= 2 ranks.
! Usage: coverage_f [SECTION...] (env p2p coll op groups cart types; default all).
module coverage_ops
  implicit none
contains
  ! inout(i) = max(in(i), inout(i)) * 1 + min(...) : a sum written out, to check the callback
  subroutine my_sum(invec, inoutvec, len, datatype)
    integer :: len, datatype
    integer :: invec(len), inoutvec(len)
    integer :: i
    do i = 1, len
      inoutvec(i) = invec(i) + inoutvec(i)
    end do
  end subroutine my_sum
end module coverage_ops

program coverage_f
  use mpi
  use coverage_ops
  implicit none
  integer :: ierr, rank, nprocs, nxt, prv, fails, i, j, k, n, idx, outcount
  integer :: st(MPI_STATUS_SIZE), sts(MPI_STATUS_SIZE, 4), req(4), indices(4)
  integer :: a(64), b(64), counts(64), displs(64), rcounts(64), rdispls(64)
  integer :: prov, ver, subver, namelen, cmp, myop, provided
  integer :: world_group, even_group, odd_group, even_comm, gsize, grank, ranks1(64), ranks2(64)
  integer :: dims(2), coords(2), cart, row, src, dst, cart_rank, ndims, cdims(2), ccoords(2)
  integer :: tcontig, tvec, thvec, tidx, tstruct, tsub, tres, tsize, blens(2), idispls(2), types(2)
  integer(kind=MPI_ADDRESS_KIND) :: lb, extent, adispls(2), stride
  integer :: bsendbuf(256), bsize
  integer :: grid(4, 4), sub(2, 2)
  logical :: flag, periods(2), remain(2), lval
  double precision :: t0, tick
  character(len=MPI_MAX_PROCESSOR_NAME) :: pname
  fails = 0

  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Comm_size(MPI_COMM_WORLD, nprocs, ierr)
  nxt = mod(rank + 1, nprocs)
  prv = mod(rank + nprocs - 1, nprocs)

  ! ---- environment
  if (want('env')) then
  call MPI_Initialized(flag, ierr)
  call check(flag, 'initialized')
  call MPI_Query_thread(prov, ierr)
  call check(prov == MPI_THREAD_SINGLE, 'query_thread')
  call MPI_Get_version(ver, subver, ierr)
  call check(ver == 3 .and. subver == 1, 'version')
  call MPI_Get_processor_name(pname, namelen, ierr)
  call check(namelen > 0 .and. len_trim(pname) == namelen, 'processor name')
  t0 = MPI_Wtime()
  tick = MPI_Wtick()
  ! (Open MPI's first MPI_Wtime is 0: its clock starts at the first call)
  call check(t0 >= 0 .and. MPI_Wtime() >= t0 .and. tick > 0 .and. tick < 1, 'wtime/wtick')
  write (*, '(a,i0,a,i0,a,i0)') 'rank ', rank, ' env version ', ver, '.', subver

  end if

  ! ---- point to point
  if (want('p2p')) then
  a(1:4) = rank * 10 + (/ 1, 2, 3, 4 /)
  if (mod(rank, 2) == 0 .and. rank + 1 < nprocs) then
    call MPI_Ssend(a, 4, MPI_INTEGER, rank + 1, 11, MPI_COMM_WORLD, ierr)
  else if (mod(rank, 2) == 1) then
    call MPI_Probe(rank - 1, MPI_ANY_TAG, MPI_COMM_WORLD, st, ierr)
    call MPI_Get_count(st, MPI_INTEGER, n, ierr)
    call MPI_Get_elements(st, MPI_INTEGER, k, ierr)
    call check(st(MPI_TAG) == 11 .and. n == 4 .and. k == 4, 'probe any_tag/get_count/get_elements')
    call MPI_Recv(b, 4, MPI_INTEGER, rank - 1, 11, MPI_COMM_WORLD, st, ierr)
    call check(all(b(1:4) == (rank - 1) * 10 + (/ 1, 2, 3, 4 /)), 'ssend data')
  end if
  ! Rsend: the receive is posted before the barrier
  call MPI_Irecv(b, 1, MPI_INTEGER, prv, 12, MPI_COMM_WORLD, req(1), ierr)
  call MPI_Barrier(MPI_COMM_WORLD, ierr)
  call MPI_Rsend(rank, 1, MPI_INTEGER, nxt, 12, MPI_COMM_WORLD, ierr)
  call MPI_Wait(req(1), st, ierr)
  call check(b(1) == prv .and. req(1) == MPI_REQUEST_NULL, 'rsend')
  ! Bsend with an attached buffer
  call MPI_Buffer_attach(bsendbuf, 256 * 4, ierr)
  call MPI_Bsend(rank + 100, 1, MPI_INTEGER, nxt, 13, MPI_COMM_WORLD, ierr)
  call MPI_Recv(b, 1, MPI_INTEGER, prv, 13, MPI_COMM_WORLD, MPI_STATUS_IGNORE, ierr)
  call MPI_Buffer_detach(bsendbuf, bsize, ierr)
  call check(b(1) == prv + 100 .and. bsize == 256 * 4, 'bsend/buffer_detach')
  ! Sendrecv_replace around the ring
  a(1) = rank
  call MPI_Sendrecv_replace(a, 1, MPI_INTEGER, nxt, 14, prv, 14, MPI_COMM_WORLD, st, ierr)
  call check(a(1) == prv .and. st(MPI_SOURCE) == prv, 'sendrecv_replace')
  ! Issend + Irecv, completed with Waitany then Waitsome
  a(2) = rank * 7
  call MPI_Irecv(b(1), 1, MPI_INTEGER, prv, 15, MPI_COMM_WORLD, req(1), ierr)
  call MPI_Irecv(b(2), 1, MPI_INTEGER, nxt, 16, MPI_COMM_WORLD, req(2), ierr)
  call MPI_Issend(a(2), 1, MPI_INTEGER, nxt, 15, MPI_COMM_WORLD, req(3), ierr)
  call MPI_Isend(a(2), 1, MPI_INTEGER, prv, 16, MPI_COMM_WORLD, req(4), ierr)
  call MPI_Waitany(4, req, idx, st, ierr)
  call check(idx >= 1 .and. idx <= 4 .and. req(idx) == MPI_REQUEST_NULL, 'waitany index')
  n = 1
  do while (n < 4)
    call MPI_Waitsome(4, req, outcount, indices, sts, ierr)
    if (outcount == MPI_UNDEFINED) exit
    do k = 1, outcount
      call check(req(indices(k)) == MPI_REQUEST_NULL, 'waitsome index')
    end do
    n = n + outcount
  end do
  call check(n == 4 .and. b(1) == prv * 7 .and. b(2) == nxt * 7, 'issend/waitany/waitsome')
  ! Testall / Testany
  call MPI_Irecv(b(1), 1, MPI_INTEGER, prv, 17, MPI_COMM_WORLD, req(1), ierr)
  call MPI_Isend(rank, 1, MPI_INTEGER, nxt, 17, MPI_COMM_WORLD, req(2), ierr)
  flag = .false.
  do while (.not. flag)
    call MPI_Testall(2, req, flag, MPI_STATUSES_IGNORE, ierr)
  end do
  call check(b(1) == prv .and. all(req(1:2) == MPI_REQUEST_NULL), 'testall')
  call MPI_Irecv(b(1), 1, MPI_INTEGER, prv, 18, MPI_COMM_WORLD, req(1), ierr)
  call MPI_Send(rank, 1, MPI_INTEGER, nxt, 18, MPI_COMM_WORLD, ierr)
  flag = .false.
  do while (.not. flag)
    call MPI_Testany(1, req, idx, flag, st, ierr)
  end do
  call check(idx == 1 .and. b(1) == prv .and. st(MPI_TAG) == 18, 'testany')
  ! Request_free of a send; Cancel of a receive that never matches
  call MPI_Isend(rank, 1, MPI_INTEGER, nxt, 19, MPI_COMM_WORLD, req(1), ierr)
  call MPI_Request_free(req(1), ierr)
  call check(req(1) == MPI_REQUEST_NULL, 'request_free')
  call MPI_Recv(b(1), 1, MPI_INTEGER, prv, 19, MPI_COMM_WORLD, MPI_STATUS_IGNORE, ierr)
  call MPI_Irecv(b(2), 1, MPI_INTEGER, prv, 999, MPI_COMM_WORLD, req(1), ierr)
  call MPI_Cancel(req(1), ierr)
  call MPI_Wait(req(1), st, ierr)
  call MPI_Test_cancelled(st, lval, ierr)
  call check(lval .and. b(1) == prv, 'cancel/test_cancelled')
  write (*, '(a,i0,a)') 'rank ', rank, ' p2p checked'

  end if

  ! ---- collectives
  if (want('coll')) then
  do i = 1, nprocs
    counts(i) = i
    displs(i) = i * (i - 1) / 2
  end do
  n = nprocs * (nprocs + 1) / 2
  a(1:rank + 1) = rank
  call MPI_Gatherv(a, rank + 1, MPI_INTEGER, b, counts, displs, MPI_INTEGER, 0, MPI_COMM_WORLD, ierr)
  if (rank == 0) then
    do i = 1, nprocs
      call check(all(b(displs(i) + 1:displs(i) + i) == i - 1), 'gatherv')
    end do
  end if
  do i = 1, n
    b(i) = i
  end do
  a = -1
  call MPI_Scatterv(b, counts, displs, MPI_INTEGER, a, rank + 1, MPI_INTEGER, 0, MPI_COMM_WORLD, ierr)
  call check(all(a(1:rank + 1) == (/ (displs(rank + 1) + i, i = 1, rank + 1) /)), 'scatterv')
  a(1:rank + 1) = rank
  b = -1
  call MPI_Allgatherv(a, rank + 1, MPI_INTEGER, b, counts, displs, MPI_INTEGER, MPI_COMM_WORLD, ierr)
  do i = 1, nprocs
    call check(all(b(displs(i) + 1:displs(i) + i) == i - 1), 'allgatherv')
  end do
  ! Alltoallv: rank r sends j+1 copies of r*100+j to rank j
  k = 0
  do j = 1, nprocs
    counts(j) = j
    displs(j) = k
    a(k + 1:k + j) = rank * 100 + j - 1
    k = k + j
    rcounts(j) = rank + 1
    rdispls(j) = (j - 1) * (rank + 1)
  end do
  call MPI_Alltoallv(a, counts, displs, MPI_INTEGER, b, rcounts, rdispls, MPI_INTEGER, MPI_COMM_WORLD, ierr)
  do j = 1, nprocs
    call check(all(b(rdispls(j) + 1:rdispls(j) + rank + 1) == (j - 1) * 100 + rank), 'alltoallv')
  end do
  do i = 1, nprocs
    a(i) = rank + i
    rcounts(i) = 1
  end do
  call MPI_Reduce_scatter(a, b, rcounts, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD, ierr)
  call check(b(1) == n - nprocs + nprocs * (rank + 1), 'reduce_scatter')
  call MPI_Reduce_scatter_block(a, b, 1, MPI_INTEGER, MPI_MAX, MPI_COMM_WORLD, ierr)
  call check(b(1) == nprocs - 1 + rank + 1, 'reduce_scatter_block')
  call MPI_Scan(rank + 1, b, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD, ierr)
  call check(b(1) == (rank + 1) * (rank + 2) / 2, 'scan')
  b(1) = -5
  call MPI_Exscan(rank + 1, b, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD, ierr)
  if (rank > 0) call check(b(1) == rank * (rank + 1) / 2, 'exscan')
  call MPI_Ibarrier(MPI_COMM_WORLD, req(1), ierr)
  b(1) = -1
  if (rank == 0) b(1) = 77
  call MPI_Ibcast(b, 1, MPI_INTEGER, 0, MPI_COMM_WORLD, req(2), ierr)
  a(1) = rank
  call MPI_Iallreduce(a, b(2), 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD, req(3), ierr)
  call MPI_Waitall(3, req, sts, ierr)
  call check(b(1) == 77 .and. b(2) == nprocs * (nprocs - 1) / 2, 'ibarrier/ibcast/iallreduce')
  write (*, '(a,i0,a,i0)') 'rank ', rank, ' collectives checked, scan ', (rank + 1) * (rank + 2) / 2
  end if

  ! a user-defined op written in Fortran
  if (want('op')) then
  call MPI_Op_create(my_sum, .true., myop, ierr)
  a(1:3) = (/ rank, 2 * rank, 1 /)
  call MPI_Allreduce(a, b, 3, MPI_INTEGER, myop, MPI_COMM_WORLD, ierr)
  call check(all(b(1:3) == (/ nprocs * (nprocs - 1) / 2, nprocs * (nprocs - 1), nprocs /)), 'user op')
  call MPI_Op_free(myop, ierr)
  call check(myop == MPI_OP_NULL, 'op_free')
  write (*, '(a,i0,a,3(1x,i0))') 'rank ', rank, ' user op', b(1:3)

  end if

  ! ---- groups and communicators
  if (want('groups')) then
  call MPI_Comm_group(MPI_COMM_WORLD, world_group, ierr)
  k = 0
  do i = 0, nprocs - 1, 2
    k = k + 1
    ranks1(k) = i
  end do
  call MPI_Group_incl(world_group, k, ranks1, even_group, ierr)
  call MPI_Group_excl(world_group, k, ranks1, odd_group, ierr)
  call MPI_Group_size(even_group, gsize, ierr)
  call MPI_Group_rank(even_group, grank, ierr)
  call check(gsize == k, 'group_size')
  if (mod(rank, 2) == 0) then
    call check(grank == rank / 2, 'group_rank')
  else
    call check(grank == MPI_UNDEFINED, 'group_rank undefined')
  end if
  call MPI_Group_translate_ranks(even_group, k, (/ (i, i = 0, k - 1) /), world_group, ranks2, ierr)
  call check(all(ranks2(1:k) == ranks1(1:k)), 'translate_ranks')
  call MPI_Comm_create(MPI_COMM_WORLD, even_group, even_comm, ierr)
  if (mod(rank, 2) == 0) then
    call MPI_Comm_compare(MPI_COMM_WORLD, even_comm, cmp, ierr)
    if (nprocs > 1) call check(cmp == MPI_UNEQUAL, 'comm_compare unequal')
    call MPI_Allreduce(rank, b, 1, MPI_INTEGER, MPI_SUM, even_comm, ierr)
    call check(b(1) == sum(ranks1(1:k)), 'allreduce on comm_create')
    call MPI_Comm_free(even_comm, ierr)
  else
    call check(even_comm == MPI_COMM_NULL, 'comm_create null')
  end if
  call MPI_Comm_compare(MPI_COMM_WORLD, MPI_COMM_WORLD, cmp, ierr)
  call check(cmp == MPI_IDENT, 'comm_compare ident')
  call MPI_Group_free(even_group, ierr)
  call MPI_Group_free(odd_group, ierr)
  call MPI_Group_free(world_group, ierr)
  call check(even_group == MPI_GROUP_NULL, 'group_free')
  call MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN, ierr)
  call check(ierr == MPI_SUCCESS, 'comm_set_errhandler')
  write (*, '(a,i0,a,i0)') 'rank ', rank, ' groups checked, even group size ', gsize

  end if

  ! ---- Cartesian topology
  if (want('cart')) then
  dims = 0
  call MPI_Dims_create(nprocs, 2, dims, ierr)
  call check(dims(1) * dims(2) == nprocs .and. dims(1) >= dims(2), 'dims_create')
  periods = (/ .true., .false. /)
  call MPI_Cart_create(MPI_COMM_WORLD, 2, dims, periods, .false., cart, ierr)
  call MPI_Cart_coords(cart, rank, 2, coords, ierr)
  call MPI_Cart_rank(cart, coords, cart_rank, ierr)
  call check(cart_rank == rank .and. coords(1) == rank / dims(2) .and. coords(2) == mod(rank, dims(2)), 'cart_coords/rank')
  call MPI_Cart_shift(cart, 0, 1, src, dst, ierr)
  call check(dst == mod(coords(1) + 1, dims(1)) * dims(2) + coords(2), 'cart_shift periodic')
  call MPI_Cart_shift(cart, 1, 1, src, dst, ierr)
  if (coords(2) == dims(2) - 1) call check(dst == MPI_PROC_NULL, 'cart_shift edge')
  call MPI_Cartdim_get(cart, ndims, ierr)
  call MPI_Cart_get(cart, 2, cdims, periods, ccoords, ierr)
  call check(ndims == 2 .and. all(cdims == dims) .and. periods(1) .and. .not. periods(2) .and. &
             all(ccoords == coords), 'cart_get')
  remain = (/ .false., .true. /)
  call MPI_Cart_sub(cart, remain, row, ierr)
  call MPI_Allreduce(1, n, 1, MPI_INTEGER, MPI_SUM, row, ierr)
  call check(n == dims(2), 'cart_sub')
  call MPI_Comm_free(row, ierr)
  call MPI_Comm_free(cart, ierr)
  write (*, '(a,i0,a,i0,a,i0,a,i0,a,i0)') 'rank ', rank, ' cart ', dims(1), 'x', dims(2), ' at ', coords(1), ',', coords(2)

  end if

  ! ---- derived datatypes (rank 0 sends to rank 1; every rank checks sizes/extents)
  if (want('types')) then
  call MPI_Type_contiguous(3, MPI_INTEGER, tcontig, ierr)
  call MPI_Type_vector(4, 1, 4, MPI_INTEGER, tvec, ierr)  ! a row of a 4x4 column-major grid
  stride = 16
  call MPI_Type_create_hvector(2, 1, stride, MPI_INTEGER, thvec, ierr)
  blens = (/ 2, 1 /)
  idispls = (/ 0, 5 /)
  call MPI_Type_indexed(2, blens, idispls, MPI_INTEGER, tidx, ierr)
  blens = (/ 1, 1 /)
  adispls = (/ 0_MPI_ADDRESS_KIND, 8_MPI_ADDRESS_KIND /)
  types = (/ MPI_INTEGER, MPI_DOUBLE_PRECISION /)
  call MPI_Type_create_struct(2, blens, adispls, types, tstruct, ierr)
  call MPI_Type_create_subarray(2, (/ 4, 4 /), (/ 2, 2 /), (/ 1, 1 /), MPI_ORDER_FORTRAN, MPI_INTEGER, tsub, ierr)
  lb = 0
  extent = 32
  call MPI_Type_create_resized(tcontig, lb, extent, tres, ierr)
  do k = 1, 1
    call MPI_Type_commit(tcontig, ierr)
    call MPI_Type_commit(tvec, ierr)
    call MPI_Type_commit(thvec, ierr)
    call MPI_Type_commit(tidx, ierr)
    call MPI_Type_commit(tstruct, ierr)
    call MPI_Type_commit(tsub, ierr)
    call MPI_Type_commit(tres, ierr)
  end do
  call MPI_Type_size(tstruct, tsize, ierr)
  call MPI_Type_get_extent(tstruct, lb, extent, ierr)
  call check(tsize == 12 .and. lb == 0 .and. extent == 16, 'struct size/extent')
  call MPI_Type_get_extent(tres, lb, extent, ierr)
  call MPI_Type_size(tres, tsize, ierr)
  call check(tsize == 12 .and. extent == 32, 'resized size/extent')
  call MPI_Type_size(tvec, tsize, ierr)
  call MPI_Type_get_extent(tvec, lb, extent, ierr)
  call check(tsize == 16 .and. extent == 13 * 4, 'vector size/extent')
  do j = 1, 4
    do i = 1, 4
      grid(i, j) = 10 * i + j
    end do
  end do
  if (rank == 0) then
    call MPI_Send(grid(2, 1), 1, tvec, 1, 20, MPI_COMM_WORLD, ierr)
    call MPI_Send(grid, 1, tsub, 1, 21, MPI_COMM_WORLD, ierr)
    call MPI_Send(grid, 2, tidx, 1, 22, MPI_COMM_WORLD, ierr)
    call MPI_Send(grid, 1, thvec, 1, 23, MPI_COMM_WORLD, ierr)
    call MPI_Send(grid, 2, tres, 1, 24, MPI_COMM_WORLD, ierr)
  else if (rank == 1) then
    call MPI_Recv(a, 4, MPI_INTEGER, 0, 20, MPI_COMM_WORLD, st, ierr)
    call check(all(a(1:4) == (/ 21, 22, 23, 24 /)), 'vector data')
    sub = 0
    call MPI_Recv(sub, 4, MPI_INTEGER, 0, 21, MPI_COMM_WORLD, st, ierr)
    call check(all(reshape(sub, (/ 4 /)) == (/ 22, 32, 23, 33 /)), 'subarray data')
    call MPI_Recv(a, 6, MPI_INTEGER, 0, 22, MPI_COMM_WORLD, st, ierr)
    ! tidx picks elements 0,1,5 of the column-major grid; its extent is 6 elements
    call check(all(a(1:6) == (/ 11, 21, 22, 32, 42, 43 /)), 'indexed data')
    call MPI_Recv(a, 2, MPI_INTEGER, 0, 23, MPI_COMM_WORLD, st, ierr)
    call check(all(a(1:2) == (/ 11, 12 /)), 'hvector data')
    call MPI_Recv(a, 6, MPI_INTEGER, 0, 24, MPI_COMM_WORLD, st, ierr)
    call check(all(a(1:6) == (/ 11, 21, 31, 13, 23, 33 /)), 'resized data')
  end if
  call MPI_Type_free(tcontig, ierr)
  call MPI_Type_free(tvec, ierr)
  call MPI_Type_free(thvec, ierr)
  call MPI_Type_free(tidx, ierr)
  call MPI_Type_free(tstruct, ierr)
  call MPI_Type_free(tsub, ierr)
  call MPI_Type_free(tres, ierr)
  call check(tsub == MPI_DATATYPE_NULL, 'type_free')
  write (*, '(a,i0,a)') 'rank ', rank, ' datatypes checked'

  end if

  call MPI_Barrier(MPI_COMM_WORLD, ierr)
  if (fails == 0) then
    write (*, '(a,i0,a)') 'rank ', rank, ' PASS'
  else
    write (*, '(a,i0,a,i0,a)') 'rank ', rank, ' FAILED (', fails, ' checks)'
  end if
  call MPI_Finalize(ierr)
  call MPI_Finalized(flag, ierr)
  if (.not. flag) write (*, '(a,i0,a)') 'rank ', rank, ' FAIL: finalized'

contains

  ! The sections named on the command line (env p2p coll op groups cart types); all without one.
  logical function want(section)
    character(*), intent(in) :: section
    character(len=16) :: arg
    integer :: i
    want = command_argument_count() == 0
    do i = 1, command_argument_count()
      call get_command_argument(i, arg)
      if (trim(arg) == section) want = .true.
    end do
  end function want

  subroutine check(cond, what)
    logical, intent(in) :: cond
    character(*), intent(in) :: what
    if (.not. cond) then
      fails = fails + 1
      write (*, '(a,i0,a,a)') 'rank ', rank, ' FAIL: ', what
    end if
  end subroutine check

end program coverage_f
