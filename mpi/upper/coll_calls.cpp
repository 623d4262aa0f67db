// SPDX-License-Identifier: Apache-2.0
// Collectives. Each one bumps its communicator's collective sequence number before it starts,
// so the drain protocol can bring every member of every communicator to the same number.
#include "state.hpp"

using namespace ferry::mpi;

FERRY_MPI_FUNCTION(int, Barrier, (MPI_Comm comm)) {
  const char* fn = "MPI_Barrier";
  CommRecord* c = comm_arg(fn, comm);
  ++c->traffic.collectives;
  check(fn, lower_for(fn).barrier(c->lh));
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Bcast, (void* buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm)) {
  const char* fn = "MPI_Bcast";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  ++c->traffic.collectives;
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
  ++c->traffic.collectives;
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
  ++c->traffic.collectives;
  check(fn, lower_for(fn).allreduce(in, {recvbuf, span_bytes(t, count)}, count, t->lh, o->lh, c->lh));
  return MPI_SUCCESS;
}
