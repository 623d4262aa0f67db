// SPDX-License-Identifier: Apache-2.0
// Collectives. Each one bumps its communicator's collective sequence number before it starts,
// so the drain protocol can bring every member of every communicator to the same number.
#include "state.hpp"

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
  count_collective(c);
  check(fn, lower_for(fn).bcast({buffer, span_bytes(t, count)}, count, t->lh, root, c->lh));
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Reduce, (const void* sendbuf, void* recvbuf, int count, MPI_Datatype datatype,
                                 MPI_Op op, int root, MPI_Comm comm)) {
  const char* fn = "MPI_Reduce";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  OpRecord* o = op_arg(fn, op);
  bool i_am_root = c->rank == root;
  const void* in = sendbuf == MPI_IN_PLACE ? nullptr : sendbuf;
  if (in == nullptr && !i_am_root) fatal(fn, "MPI_IN_PLACE off the root (MPI_ERR_BUFFER)");
  count_collective(c);
  check(fn, lower_for(fn).reduce(in, {recvbuf, span_bytes(t, count)}, count, t->lh, o->lh, root, c->lh,
                                 i_am_root));
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Allreduce, (const void* sendbuf, void* recvbuf, int count, MPI_Datatype datatype,
                                    MPI_Op op, MPI_Comm comm)) {
  const char* fn = "MPI_Allreduce";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  OpRecord* o = op_arg(fn, op);
  const void* in = sendbuf == MPI_IN_PLACE ? nullptr : sendbuf;
  count_collective(c);
  check(fn, lower_for(fn).allreduce(in, {recvbuf, span_bytes(t, count)}, count, t->lh, o->lh, c->lh));
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
  bool i_am_root = !rooted || c->rank == root;
  std::size_t n = static_cast<std::size_t>(c->size);
  CollectiveBuffers b;
  bool send_matters = kind != GatherKind::scatter || i_am_root;
  bool recv_matters = kind != GatherKind::gather || i_am_root;
  if (send_matters && sendbuf == MPI_IN_PLACE) {
    if (!i_am_root || kind == GatherKind::scatter) fatal(fn, "MPI_IN_PLACE as the send buffer here (MPI_ERR_BUFFER)");
    b.in_place = true;
  } else if (send_matters) {
    DatatypeRecord* t = type_arg(fn, sendtype);
    std::size_t blocks = (kind == GatherKind::scatter || kind == GatherKind::alltoall) ? n : 1;
    b.send = {sendbuf, span_bytes(t, sendcount) * blocks};
    b.send_count = sendcount;
    b.send_type = t->lh;
  }
  if (recv_matters && recvbuf == MPI_IN_PLACE) {
    if (kind != GatherKind::scatter || !i_am_root) fatal(fn, "MPI_IN_PLACE as the receive buffer here (MPI_ERR_BUFFER)");
    b.in_place = true;
  } else if (recv_matters) {
    DatatypeRecord* t = type_arg(fn, recvtype);
    std::size_t blocks = kind == GatherKind::scatter ? 1 : n;
    b.recv = {recvbuf, span_bytes(t, recvcount) * blocks};
    b.recv_count = recvcount;
    b.recv_type = t->lh;
  }
  // In place, allgather/alltoall take their input from the receive buffer.
  if (b.in_place && (kind == GatherKind::allgather || kind == GatherKind::alltoall) && b.recv.data == nullptr) {
    fatal(fn, "MPI_IN_PLACE without a receive buffer (MPI_ERR_BUFFER)");
  }
  count_collective(c);
  check(fn, lower_for(fn).gather_like(kind, b, root, c->lh));
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
