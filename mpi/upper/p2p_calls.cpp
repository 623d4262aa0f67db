// SPDX-License-Identifier: Apache-2.0
// Point-to-point calls. Each one counts its messages on the communicator's TrafficCounters: a
// send when it is posted (dest != MPI_PROC_NULL), a receive when it completes with a real source.
// Nonblocking requests are upper-half RequestRecords (requests.hpp); MPI_REQUEST_NULL is
// &ompi_request_null. Application buffers reach the lower half through buffers.hpp: a receive's
// data is in the application's buffer after RecvBuffer::finish (an Irecv keeps its RecvBuffer in
// its request until Wait/Test).
#include "buffers.hpp"
#include "requests.hpp"
#include "state.hpp"

using namespace ferry::mpi;

FERRY_MPI_FUNCTION(int, Send, (const void* buf, int count, MPI_Datatype datatype, int dest, int tag,
                               MPI_Comm comm)) {
  const char* fn = "MPI_Send";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  if (int rc = check_p2p(fn, c, count, dest, tag, false); rc != MPI_SUCCESS) return rc;
  SendBuffer b = send_buffer(buf, count, t);
  check(fn, lower_for(fn).send(b.span, b.count, b.type, dest, tag, c->lh));
  count_sent(c, dest);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Recv, (void* buf, int count, MPI_Datatype datatype, int source, int tag,
                               MPI_Comm comm, MPI_Status* status)) {
  const char* fn = "MPI_Recv";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  if (int rc = check_p2p(fn, c, count, source, tag, true); rc != MPI_SUCCESS) return rc;
  LhStatus st;
  RecvBuffer b = recv_buffer(buf, count, t);
  check(fn, lower_for(fn).recv(b.span, b.count, b.type, source, tag, c->lh, st));
  b.finish(st.bytes);
  count_received(c, st.source);
  set_status(status, st);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Sendrecv, (const void* sendbuf, int sendcount, MPI_Datatype sendtype, int dest,
                                   int sendtag, void* recvbuf, int recvcount, MPI_Datatype recvtype,
                                   int source, int recvtag, MPI_Comm comm, MPI_Status* status)) {
  const char* fn = "MPI_Sendrecv";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* st_type = type_arg(fn, sendtype);
  DatatypeRecord* rt_type = type_arg(fn, recvtype);
  if (int rc = check_p2p(fn, c, sendcount, dest, sendtag, false); rc != MPI_SUCCESS) return rc;
  if (int rc = check_p2p(fn, c, recvcount, source, recvtag, true); rc != MPI_SUCCESS) return rc;
  LhStatus st;
  SendBuffer sb = send_buffer(sendbuf, sendcount, st_type);
  RecvBuffer rb = recv_buffer(recvbuf, recvcount, rt_type);
  check(fn, lower_for(fn).sendrecv(sb.span, sb.count, sb.type, dest, sendtag, rb.span, rb.count, rb.type, source,
                                   recvtag, c->lh, st));
  rb.finish(st.bytes);
  count_sent(c, dest);
  count_received(c, st.source);
  set_status(status, st);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Isend, (const void* buf, int count, MPI_Datatype datatype, int dest, int tag,
                                MPI_Comm comm, MPI_Request* request)) {
  const char* fn = "MPI_Isend";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  if (int rc = check_p2p(fn, c, count, dest, tag, false); rc != MPI_SUCCESS) return rc;
  // The lower half copies the payload at once: the packed copy is not needed after this call.
  SendBuffer b = send_buffer(buf, count, t);
  RequestRecord* r = new_request(c, t, false, nullptr);
  r->peer = dest;
  r->tag = tag;
  check(fn, lower_for(fn).isend(b.span, b.count, b.type, dest, tag, c->lh, r->lh));
  count_sent(c, dest);
  *request = reinterpret_cast<MPI_Request>(r);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Irecv, (void* buf, int count, MPI_Datatype datatype, int source, int tag,
                                MPI_Comm comm, MPI_Request* request)) {
  const char* fn = "MPI_Irecv";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  if (int rc = check_p2p(fn, c, count, source, tag, true); rc != MPI_SUCCESS) return rc;
  RequestRecord* r = new_request(c, t, true, new RecvBuffer(recv_buffer(buf, count, t)));
  r->peer = source;
  r->tag = tag;
  check(fn, lower_for(fn).irecv(r->staged->span, r->staged->count, r->staged->type, source, tag, c->lh, r->lh));
  *request = reinterpret_cast<MPI_Request>(r);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Wait, (MPI_Request* request, MPI_Status* status)) {
  return complete_request("MPI_Wait", request, status, nullptr);
}

FERRY_MPI_FUNCTION(int, Test, (MPI_Request* request, int* flag, MPI_Status* status)) {
  return complete_request("MPI_Test", request, status, flag);
}

// Completing the requests one after another is a valid MPI_Waitall: every request was already
// posted, so progress on the others continues while the lower half waits on one.
FERRY_MPI_FUNCTION(int, Waitall, (int count, MPI_Request requests[], MPI_Status statuses[])) {
  for (int i = 0; i < count; ++i) {
    complete_request("MPI_Waitall", &requests[i], statuses == MPI_STATUSES_IGNORE ? MPI_STATUS_IGNORE : &statuses[i],
           nullptr);
  }
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Get_count, (const MPI_Status* status, MPI_Datatype datatype, int* count)) {
  DatatypeRecord* t = type_arg("MPI_Get_count", datatype);
  if (t->size == 0) {
    *count = status->_ucount == 0 ? 0 : MPI_UNDEFINED;
  } else if (status->_ucount % static_cast<std::size_t>(t->size) != 0) {
    *count = MPI_UNDEFINED;
  } else {
    *count = static_cast<int>(status->_ucount / static_cast<std::size_t>(t->size));
  }
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Ssend, (const void* buf, int count, MPI_Datatype datatype, int dest, int tag,
                                MPI_Comm comm)) {
  const char* fn = "MPI_Ssend";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  if (int rc = check_p2p(fn, c, count, dest, tag, false); rc != MPI_SUCCESS) return rc;
  SendBuffer b = send_buffer(buf, count, t);
  check(fn, lower_for(fn).ssend(b.span, b.count, b.type, dest, tag, c->lh));
  count_sent(c, dest);
  return MPI_SUCCESS;
}

// Probing matches a message without receiving it: nothing is counted.
FERRY_MPI_FUNCTION(int, Probe, (int source, int tag, MPI_Comm comm, MPI_Status* status)) {
  const char* fn = "MPI_Probe";
  CommRecord* c = comm_arg(fn, comm);
  bool found = false;
  LhStatus st;
  check(fn, lower_for(fn).probe(source, tag, c->lh, true, found, st));
  set_status(status, st);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Iprobe, (int source, int tag, MPI_Comm comm, int* flag, MPI_Status* status)) {
  const char* fn = "MPI_Iprobe";
  CommRecord* c = comm_arg(fn, comm);
  bool found = false;
  LhStatus st;
  check(fn, lower_for(fn).probe(source, tag, c->lh, false, found, st));
  *flag = found ? 1 : 0;
  if (found) set_status(status, st);
  return MPI_SUCCESS;
}
