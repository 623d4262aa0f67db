// SPDX-License-Identifier: Apache-2.0
// Collectives. Each one bumps its communicator's collective sequence number before it starts,
// so the drain protocol can bring every member of every communicator to the same number.
// Buffers go through buffers.hpp (a derived datatype's data is packed into a contiguous buffer of
// a predefined type; a block of `count` elements is then a block of the packed count). Reductions
// with a user-defined operation go to user_reduce() (user_ops.hpp), which runs the operation in
// the application.
#include "buffers.hpp"
#include "state.hpp"
#include "user_ops.hpp"

using namespace ferry::mpi;

FERRY_MPI_FUNCTION(int, Barrier, (MPI_Comm comm)) {
  const char* fn = "MPI_Barrier";
  CommRecord* c = comm_arg(fn, comm);
  count_collective(c);
  check(fn, lower_for(fn).barrier(c->lh));
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Bcast, (void* buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm)) {
  const char* fn = "MPI_Bcast";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  if (int rc = check_root(fn, c, root); rc != MPI_SUCCESS) return rc;
  count_collective(c);
  RecvBuffer b = recv_buffer(buffer, count, t, /*fill=*/true);
  check(fn, lower_for(fn).bcast(b.span, b.count, b.type, root, c->lh));
  b.finish(b.span.bytes);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Reduce, (const void* sendbuf, void* recvbuf, int count, MPI_Datatype datatype,
                                 MPI_Op op, int root, MPI_Comm comm)) {
  const char* fn = "MPI_Reduce";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  OpRecord* o = op_arg(fn, op);
  if (int rc = check_root(fn, c, root); rc != MPI_SUCCESS) return rc;
  bool i_am_root = c->rank == root;
  const void* in = sendbuf == MPI_IN_PLACE ? nullptr : sendbuf;
  if (in == nullptr && !i_am_root) fatal(fn, "MPI_IN_PLACE off the root (MPI_ERR_BUFFER)");
  // user_reduce counts its collective itself.
  if (is_user_op(o)) return user_reduce(fn, ReduceKind::reduce, in, recvbuf, count, nullptr, t, o, root, c);
  count_collective(c);
  if (!i_am_root) {  // the output is not significant here: only its size (the input's) travels
    SendBuffer sb = send_buffer(in, count, t);
    check(fn, lower_for(fn).reduce(sb.span.data, {nullptr, sb.span.bytes}, sb.count, sb.type, o->lh, root, c->lh,
                                   false));
    return MPI_SUCCESS;
  }
  RecvBuffer rb = recv_buffer(recvbuf, count, t, /*fill=*/in == nullptr);
  SendBuffer sb = in == nullptr ? SendBuffer{} : send_buffer(in, count, t);
  check(fn, lower_for(fn).reduce(in == nullptr ? nullptr : sb.span.data, rb.span, rb.count, rb.type, o->lh, root,
                                 c->lh, true));
  rb.finish(rb.span.bytes);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Allreduce, (const void* sendbuf, void* recvbuf, int count, MPI_Datatype datatype,
                                    MPI_Op op, MPI_Comm comm)) {
  const char* fn = "MPI_Allreduce";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  OpRecord* o = op_arg(fn, op);
  const void* in = sendbuf == MPI_IN_PLACE ? nullptr : sendbuf;
  if (is_user_op(o)) return user_reduce(fn, ReduceKind::allreduce, in, recvbuf, count, nullptr, t, o, 0, c);
  count_collective(c);
  RecvBuffer rb = recv_buffer(recvbuf, count, t, /*fill=*/in == nullptr);
  SendBuffer sb = in == nullptr ? SendBuffer{} : send_buffer(in, count, t);
  check(fn, lower_for(fn).allreduce(in == nullptr ? nullptr : sb.span.data, rb.span, rb.count, rb.type, o->lh,
                                    c->lh));
  rb.finish(rb.span.bytes);
  return MPI_SUCCESS;
}

namespace {

// Gather, Scatter, Allgather, Alltoall: which buffers matter on this rank, and their spans.
// `send_times`/`recv_times`: how many blocks of count elements the buffer holds (comm size for
// a root's gather receive or scatter send, and for allgather/alltoall).
int gather_like(const char* fn, GatherKind kind, const void* sendbuf, int sendcount, MPI_Datatype sendtype,
                void* recvbuf, int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm) {
  CommRecord* c = comm_arg(fn, comm);
  bool rooted = kind == GatherKind::gather || kind == GatherKind::scatter;
  if (rooted) {
    if (int rc = check_root(fn, c, root); rc != MPI_SUCCESS) return rc;
  }
  bool i_am_root = !rooted || c->rank == root;
  std::size_t n = static_cast<std::size_t>(c->size);
  CollectiveBuffers b;
  SendBuffer sb;
  RecvBuffer rb;
  bool send_matters = kind != GatherKind::scatter || i_am_root;
  bool recv_matters = kind != GatherKind::gather || i_am_root;
  if (send_matters && sendbuf == MPI_IN_PLACE) {
    if (!i_am_root || kind == GatherKind::scatter) fatal(fn, "MPI_IN_PLACE as the send buffer here (MPI_ERR_BUFFER)");
    b.in_place = true;
  } else if (send_matters) {
    DatatypeRecord* t = type_arg(fn, sendtype);
    int blocks = (kind == GatherKind::scatter || kind == GatherKind::alltoall) ? static_cast<int>(n) : 1;
    sb = send_buffer(sendbuf, sendcount * blocks, t);
    b.send = sb.span;
    b.send_count = sb.count / blocks;
    b.send_type = sb.type;
  }
  if (recv_matters && recvbuf == MPI_IN_PLACE) {
    if (kind != GatherKind::scatter || !i_am_root) fatal(fn, "MPI_IN_PLACE as the receive buffer here (MPI_ERR_BUFFER)");
    b.in_place = true;
  } else if (recv_matters) {
    DatatypeRecord* t = type_arg(fn, recvtype);
    int blocks = kind == GatherKind::scatter ? 1 : static_cast<int>(n);
    // In place, the receive buffer also carries input (a gather root's block, allgather/alltoall).
    rb = recv_buffer(recvbuf, recvcount * blocks, t, /*fill=*/b.in_place);
    b.recv = rb.span;
    b.recv_count = rb.count / blocks;
    b.recv_type = rb.type;
  }
  // In place, allgather/alltoall take their input from the receive buffer.
  if (b.in_place && (kind == GatherKind::allgather || kind == GatherKind::alltoall) && b.recv.data == nullptr) {
    fatal(fn, "MPI_IN_PLACE without a receive buffer (MPI_ERR_BUFFER)");
  }
  count_collective(c);
  check(fn, lower_for(fn).gather_like(kind, b, root, c->lh));
  if (b.recv.data != nullptr) rb.finish(rb.span.bytes);
  return MPI_SUCCESS;
}

}  // namespace

FERRY_MPI_FUNCTION(int, Gather, (const void* sendbuf, int sendcount, MPI_Datatype sendtype, void* recvbuf,
                                 int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm)) {
  return gather_like("MPI_Gather", GatherKind::gather, sendbuf, sendcount, sendtype, recvbuf, recvcount,
                     recvtype, root, comm);
}

FERRY_MPI_FUNCTION(int, Scatter, (const void* sendbuf, int sendcount, MPI_Datatype sendtype, void* recvbuf,
                                  int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm)) {
  return gather_like("MPI_Scatter", GatherKind::scatter, sendbuf, sendcount, sendtype, recvbuf, recvcount,
                     recvtype, root, comm);
}

FERRY_MPI_FUNCTION(int, Allgather, (const void* sendbuf, int sendcount, MPI_Datatype sendtype, void* recvbuf,
                                    int recvcount, MPI_Datatype recvtype, MPI_Comm comm)) {
  return gather_like("MPI_Allgather", GatherKind::allgather, sendbuf, sendcount, sendtype, recvbuf, recvcount,
                     recvtype, 0, comm);
}

FERRY_MPI_FUNCTION(int, Alltoall, (const void* sendbuf, int sendcount, MPI_Datatype sendtype, void* recvbuf,
                                   int recvcount, MPI_Datatype recvtype, MPI_Comm comm)) {
  return gather_like("MPI_Alltoall", GatherKind::alltoall, sendbuf, sendcount, sendtype, recvbuf, recvcount,
                     recvtype, 0, comm);
}
