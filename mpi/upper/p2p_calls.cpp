// SPDX-License-Identifier: Apache-2.0
// Point-to-point calls. Each one counts its messages on the communicator's TrafficCounters: a
// send when it is posted (dest != MPI_PROC_NULL), a receive when it completes with a real source.
// Nonblocking requests are upper-half RequestRecords; MPI_REQUEST_NULL is &ompi_request_null.
#include "state.hpp"

using namespace ferry::mpi;

namespace {

bool is_null_request(MPI_Request request) {
  return reinterpret_cast<void*>(request) == static_cast<void*>(null_request_record());
}

RequestRecord* request_arg(const char* fn, MPI_Request request) {
  auto* r = as_record<RequestRecord>(request, Kind::request);
  if (r == nullptr) fatal(fn, "invalid request (MPI_ERR_REQUEST)");
  return r;
}

// Completes `*request` (blocking when `done` is null) and frees its record.
int finish(const char* fn, MPI_Request* request, MPI_Status* status, int* done) {
  if (is_null_request(*request)) {
    set_empty_status(status);
    if (done != nullptr) *done = 1;
    return MPI_SUCCESS;
  }
  RequestRecord* r = request_arg(fn, *request);
  LowerHalf& lower = lower_for(fn);
  LhStatus st;
  MutSpan into = r->receive ? MutSpan{r->buffer, r->bytes} : MutSpan{};
  if (done == nullptr) {
    check(fn, lower.wait(r->lh, into, st));
  } else {
    bool finished = false;
    check(fn, lower.test(r->lh, into, finished, st));
    *done = finished ? 1 : 0;
    if (!finished) return MPI_SUCCESS;
  }
  if (r->receive) {
    count_received(r->comm, st.source);
    set_status(status, st);
  } else {
    set_empty_status(status);
    if (status != MPI_STATUS_IGNORE) status->MPI_ERROR = st.error;
  }
  upper().live_requests.erase(r);
  r->header.magic = 0;
  delete r;
  *request = reinterpret_cast<MPI_Request>(null_request_record());
  return MPI_SUCCESS;
}

}  // namespace

FERRY_MPI_FUNCTION(int, Send, (const void* buf, int count, MPI_Datatype datatype, int dest, int tag,
                               MPI_Comm comm)) {
  const char* fn = "MPI_Send";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  check(fn, lower_for(fn).send({buf, span_bytes(t, count)}, count, t->lh, dest, tag, c->lh));
  count_sent(c, dest);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Recv, (void* buf, int count, MPI_Datatype datatype, int source, int tag,
                               MPI_Comm comm, MPI_Status* status)) {
  const char* fn = "MPI_Recv";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  LhStatus st;
  check(fn, lower_for(fn).recv({buf, span_bytes(t, count)}, count, t->lh, source, tag, c->lh, st));
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
  LhStatus st;
  check(fn, lower_for(fn).sendrecv({sendbuf, span_bytes(st_type, sendcount)}, sendcount, st_type->lh,
                                   dest, sendtag, {recvbuf, span_bytes(rt_type, recvcount)}, recvcount,
                                   rt_type->lh, source, recvtag, c->lh, st));
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
  auto* r = new RequestRecord{{kLiveMagic, Kind::request}, kLhNone, false, c, t,
                              const_cast<void*>(buf), span_bytes(t, count), count, dest, tag};
  check(fn, lower_for(fn).isend({buf, r->bytes}, count, t->lh, dest, tag, c->lh, r->lh));
  upper().live_requests.insert(r);
  count_sent(c, dest);
  *request = reinterpret_cast<MPI_Request>(r);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Irecv, (void* buf, int count, MPI_Datatype datatype, int source, int tag,
                                MPI_Comm comm, MPI_Request* request)) {
  const char* fn = "MPI_Irecv";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  auto* r = new RequestRecord{{kLiveMagic, Kind::request}, kLhNone, true, c, t, buf,
                              span_bytes(t, count), count, source, tag};
  check(fn, lower_for(fn).irecv({buf, r->bytes}, count, t->lh, source, tag, c->lh, r->lh));
  upper().live_requests.insert(r);
  *request = reinterpret_cast<MPI_Request>(r);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Wait, (MPI_Request* request, MPI_Status* status)) {
  return finish("MPI_Wait", request, status, nullptr);
}

FERRY_MPI_FUNCTION(int, Test, (MPI_Request* request, int* flag, MPI_Status* status)) {
  return finish("MPI_Test", request, status, flag);
}

// Completing the requests one after another is a valid MPI_Waitall: every request was already
// posted, so progress on the others continues while the lower half waits on one.
FERRY_MPI_FUNCTION(int, Waitall, (int count, MPI_Request requests[], MPI_Status statuses[])) {
  for (int i = 0; i < count; ++i) {
    finish("MPI_Waitall", &requests[i], statuses == MPI_STATUSES_IGNORE ? MPI_STATUS_IGNORE : &statuses[i],
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
  check(fn, lower_for(fn).ssend({buf, span_bytes(t, count)}, count, t->lh, dest, tag, c->lh));
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
