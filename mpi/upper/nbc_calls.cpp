// SPDX-License-Identifier: Apache-2.0
// Nonblocking collectives: Ibarrier, Ibcast, Iallreduce. Each is a request (requests.hpp) whose
// data the lower half holds until Wait/Test, where it lands in the request's staged RecvBuffer.
// They count as a collective on their communicator when posted, like the blocking ones: the
// proxy starts each with its own barrier, so a checkpoint finds it either entered by every member
// (the drain completes it) or not (it stays pending in the lower half's state, and a restarted
// proxy posts it again, as it re-posts pending receives).
#include "buffers.hpp"
#include "requests.hpp"
#include "state.hpp"
#include "user_ops.hpp"

using namespace ferry::mpi;

FERRY_MPI_FUNCTION(int, Ibarrier, (MPI_Comm comm, MPI_Request* request)) {
  const char* fn = "MPI_Ibarrier";
  CommRecord* c = comm_arg(fn, comm);
  count_collective(c);
  RequestRecord* r = new_request(c, nullptr, false, nullptr);
  r->collective = true;
  check(fn, lower_for(fn).ibarrier(c->lh, r->lh));
  *request = reinterpret_cast<MPI_Request>(r);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Ibcast, (void* buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm,
                                 MPI_Request* request)) {
  const char* fn = "MPI_Ibcast";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  if (int rc = check_root(fn, c, root); rc != MPI_SUCCESS) return rc;
  count_collective(c);
  auto* staged = new RecvBuffer(recv_buffer(buffer, count, t, /*fill=*/true));
  RequestRecord* r = new_request(c, t, false, staged);
  r->collective = true;
  check(fn, lower_for(fn).ibcast({staged->span.data, staged->span.bytes}, staged->count, staged->type, root, c->lh,
                                 r->lh));
  *request = reinterpret_cast<MPI_Request>(r);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Iallreduce, (const void* sendbuf, void* recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
                                     MPI_Comm comm, MPI_Request* request)) {
  const char* fn = "MPI_Iallreduce";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  OpRecord* o = op_arg(fn, op);
  if (is_user_op(o)) fatal(fn, "a nonblocking reduction with a user-defined operation is not supported", 69);
  bool in_place = sendbuf == MPI_IN_PLACE;
  count_collective(c);
  auto* staged = new RecvBuffer(recv_buffer(recvbuf, count, t, /*fill=*/in_place));
  SendBuffer sb = in_place ? SendBuffer{} : send_buffer(sendbuf, count, t);
  Span in = in_place ? Span{staged->span.data, staged->span.bytes} : sb.span;
  RequestRecord* r = new_request(c, t, false, staged);
  r->collective = true;
  check(fn, lower_for(fn).iallreduce(in, staged->span.bytes, staged->count, staged->type, o->lh, c->lh, r->lh));
  *request = reinterpret_cast<MPI_Request>(r);
  return MPI_SUCCESS;
}
