// SPDX-License-Identifier: Apache-2.0
// The rest of point-to-point: Rsend (a standard send: a ready-mode send may always be one),
// Issend, Bsend with its buffer accounting, Sendrecv_replace, Waitany/Waitsome/Testall/Testany,
// Request_free, Cancel of a receive, Test_cancelled.
//
// Bsend: the lower half copies every send's payload at once, so the attached buffer never holds
// data; it is only accounted as MPI specifies: each Bsend reserves its packed size plus
// MPI_BSEND_OVERHEAD until its send completes (reaped at the next Bsend or at Buffer_detach),
// and a Bsend that does not fit fails with MPI_ERR_BUFFER. Its request is an ordinary lower-half
// send, so the checkpoint's drain completes it like any other.
// Waiting on several requests is served by the lower half (wait_some): the application sleeps,
// the proxy tests them; the ones found complete are then completed one by one (complete_request).
#include <sched.h>

#include <cstring>
#include <vector>

#include "buffers.hpp"
#include "requests.hpp"
#include "state.hpp"

using namespace ferry::mpi;

namespace {

constexpr int kBsendOverhead = 128;  // MPI_BSEND_OVERHEAD of Open MPI 4.1

struct BsendBuffer {
  void* data = nullptr;
  int size = 0;
  int used = 0;
  struct Pending {
    MPI_Request request;
    int reserved;
  };
  std::vector<Pending> pending;
};

BsendBuffer& bsend_buffer() {
  static BsendBuffer b;
  return b;
}

// Frees the reservations of buffered sends that completed.
void reap_bsends(const char* fn, bool wait) {
  BsendBuffer& b = bsend_buffer();
  for (std::size_t i = 0; i < b.pending.size();) {
    int done = 0;
    complete_request(fn, &b.pending[i].request, MPI_STATUS_IGNORE, wait ? nullptr : &done);
    if (wait || done) {
      b.used -= b.pending[i].reserved;
      b.pending.erase(b.pending.begin() + static_cast<long>(i));
    } else {
      ++i;
    }
  }
}

int post_isend(const char* fn, bool synchronous, const void* buf, int count, MPI_Datatype datatype, int dest,
               int tag, MPI_Comm comm, MPI_Request* request) {
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  if (int rc = check_p2p(fn, c, count, dest, tag, false); rc != MPI_SUCCESS) return rc;
  SendBuffer b = send_buffer(buf, count, t);
  RequestRecord* r = new_request(c, t, false, nullptr);
  r->peer = dest;
  r->tag = tag;
  LowerHalf& lower = lower_for(fn);
  check(fn, synchronous ? lower.issend(b.span, b.count, b.type, dest, tag, c->lh, r->lh)
                        : lower.isend(b.span, b.count, b.type, dest, tag, c->lh, r->lh));
  count_sent(c, dest);
  *request = reinterpret_cast<MPI_Request>(r);
  return MPI_SUCCESS;
}

std::vector<LhId> lower_ids(const char* fn, int count, const MPI_Request requests[], bool& any_active) {
  std::vector<LhId> ids(static_cast<std::size_t>(count), kLhNone);
  any_active = false;
  for (int i = 0; i < count; ++i) {
    if (is_null_request(requests[i])) continue;
    ids[static_cast<std::size_t>(i)] = request_arg(fn, requests[i])->lh;
    any_active = true;
  }
  return ids;
}

MPI_Status* status_at(MPI_Status statuses[], int i) {
  return statuses == MPI_STATUSES_IGNORE ? MPI_STATUS_IGNORE : &statuses[i];
}

}  // namespace

FERRY_MPI_FUNCTION(int, Rsend, (const void* buf, int count, MPI_Datatype datatype, int dest, int tag,
                                MPI_Comm comm)) {
  const char* fn = "MPI_Rsend";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  if (int rc = check_p2p(fn, c, count, dest, tag, false); rc != MPI_SUCCESS) return rc;
  SendBuffer b = send_buffer(buf, count, t);
  check(fn, lower_for(fn).send(b.span, b.count, b.type, dest, tag, c->lh));
  count_sent(c, dest);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Issend, (const void* buf, int count, MPI_Datatype datatype, int dest, int tag,
                                 MPI_Comm comm, MPI_Request* request)) {
  return post_isend("MPI_Issend", true, buf, count, datatype, dest, tag, comm, request);
}

FERRY_MPI_FUNCTION(int, Buffer_attach, (void* buffer, int size)) {
  const char* fn = "MPI_Buffer_attach";
  lower_for(fn);
  BsendBuffer& b = bsend_buffer();
  if (b.data != nullptr) fatal(fn, "a buffer is already attached (MPI_ERR_BUFFER)");
  if (size < 0) fatal(fn, "negative size (MPI_ERR_ARG)");
  b.data = buffer;
  b.size = size;
  b.used = 0;
  return MPI_SUCCESS;
}

// Waits for every buffered send to complete, as MPI requires.
FERRY_MPI_FUNCTION(int, Buffer_detach, (void* buffer_addr, int* size)) {
  const char* fn = "MPI_Buffer_detach";
  lower_for(fn);
  BsendBuffer& b = bsend_buffer();
  reap_bsends(fn, true);
  std::memcpy(buffer_addr, &b.data, sizeof b.data);  // buffer_addr is a void** passed as void*
  *size = b.size;
  b = BsendBuffer{};
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Bsend, (const void* buf, int count, MPI_Datatype datatype, int dest, int tag,
                                MPI_Comm comm)) {
  const char* fn = "MPI_Bsend";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  if (int rc = check_p2p(fn, c, count, dest, tag, false); rc != MPI_SUCCESS) return rc;
  BsendBuffer& b = bsend_buffer();
  reap_bsends(fn, false);
  long need = static_cast<long>(count) * t->size + kBsendOverhead;
  if (b.data == nullptr || b.used + need > b.size)
    return comm_error(fn, c, MPI_ERR_BUFFER, "the attached buffer is too small for this message (MPI_ERR_BUFFER)");
  MPI_Request request;
  post_isend(fn, false, buf, count, datatype, dest, tag, comm, &request);
  as_record<RequestRecord>(request, Kind::request)->bsend = true;
  b.used += static_cast<int>(need);
  b.pending.push_back({request, static_cast<int>(need)});
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Sendrecv_replace, (void* buf, int count, MPI_Datatype datatype, int dest, int sendtag,
                                           int source, int recvtag, MPI_Comm comm, MPI_Status* status)) {
  const char* fn = "MPI_Sendrecv_replace";
  CommRecord* c = comm_arg(fn, comm);
  DatatypeRecord* t = type_arg(fn, datatype);
  if (int rc = check_p2p(fn, c, count, dest, sendtag, false); rc != MPI_SUCCESS) return rc;
  if (int rc = check_p2p(fn, c, count, source, recvtag, true); rc != MPI_SUCCESS) return rc;
  RecvBuffer rb = recv_buffer(buf, count, t, /*fill=*/true);
  // The outgoing data is a copy: the receive overwrites the buffer.
  std::vector<std::byte> out(static_cast<const std::byte*>(rb.span.data),
                             static_cast<const std::byte*>(rb.span.data) + rb.span.bytes);
  LhStatus st;
  check(fn, lower_for(fn).sendrecv({out.data(), out.size()}, rb.count, rb.type, dest, sendtag, rb.span, rb.count,
                                   rb.type, source, recvtag, c->lh, st));
  rb.finish(st.bytes);
  count_sent(c, dest);
  count_received(c, st.source);
  set_status(status, st);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Waitany, (int count, MPI_Request requests[], int* index, MPI_Status* status)) {
  const char* fn = "MPI_Waitany";
  bool any = false;
  std::vector<LhId> ids = lower_ids(fn, count, requests, any);
  if (!any) {
    *index = MPI_UNDEFINED;
    set_empty_status(status);
    return MPI_SUCCESS;
  }
  int first = -1, complete = 0;
  check(fn, lower_for(fn).wait_some(ids, WaitMode::wait_any, first, complete));
  *index = first;
  return complete_request(fn, &requests[first], status, nullptr);
}

FERRY_MPI_FUNCTION(int, Testany, (int count, MPI_Request requests[], int* index, int* flag, MPI_Status* status)) {
  const char* fn = "MPI_Testany";
  bool any = false;
  std::vector<LhId> ids = lower_ids(fn, count, requests, any);
  *index = MPI_UNDEFINED;
  if (!any) {
    *flag = 1;
    set_empty_status(status);
    return MPI_SUCCESS;
  }
  int first = -1, complete = 0;
  check(fn, lower_for(fn).wait_some(ids, WaitMode::test_any, first, complete));
  *flag = first >= 0 ? 1 : 0;
  if (first < 0) return MPI_SUCCESS;
  *index = first;
  return complete_request(fn, &requests[first], status, nullptr);
}

FERRY_MPI_FUNCTION(int, Waitsome, (int incount, MPI_Request requests[], int* outcount, int indices[],
                                   MPI_Status statuses[])) {
  const char* fn = "MPI_Waitsome";
  bool any = false;
  std::vector<LhId> ids = lower_ids(fn, incount, requests, any);
  if (!any) {
    *outcount = MPI_UNDEFINED;
    return MPI_SUCCESS;
  }
  int first = -1, complete = 0;
  check(fn, lower_for(fn).wait_some(ids, WaitMode::wait_any, first, complete));
  int n = 0;
  indices[n] = first;
  complete_request(fn, &requests[first], status_at(statuses, n), nullptr);
  ++n;
  for (int i = first + 1; i < incount; ++i) {
    if (is_null_request(requests[i])) continue;
    int done = 0;
    complete_request(fn, &requests[i], status_at(statuses, n), &done);
    if (done) indices[n++] = i;
  }
  *outcount = n;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Testsome, (int incount, MPI_Request requests[], int* outcount, int indices[],
                                   MPI_Status statuses[])) {
  const char* fn = "MPI_Testsome";
  bool any = false;
  lower_ids(fn, incount, requests, any);
  if (!any) {
    *outcount = MPI_UNDEFINED;
    return MPI_SUCCESS;
  }
  int n = 0;
  for (int i = 0; i < incount; ++i) {
    if (is_null_request(requests[i])) continue;
    int done = 0;
    complete_request(fn, &requests[i], status_at(statuses, n), &done);
    if (done) indices[n++] = i;
  }
  *outcount = n;
  return MPI_SUCCESS;
}

// All or nothing: the lower half says whether every request is complete before any is taken.
FERRY_MPI_FUNCTION(int, Testall, (int count, MPI_Request requests[], int* flag, MPI_Status statuses[])) {
  const char* fn = "MPI_Testall";
  bool any = false;
  std::vector<LhId> ids = lower_ids(fn, count, requests, any);
  int active = 0;
  for (LhId id : ids) active += id != kLhNone;
  if (any) {
    int first = -1, complete = 0;
    check(fn, lower_for(fn).wait_some(ids, WaitMode::test_all, first, complete));
    if (complete < active) {
      *flag = 0;
      return MPI_SUCCESS;
    }
  }
  for (int i = 0; i < count; ++i) complete_request(fn, &requests[i], status_at(statuses, i), nullptr);
  *flag = 1;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Request_free, (MPI_Request* request)) {
  const char* fn = "MPI_Request_free";
  if (is_null_request(*request)) fatal(fn, "MPI_REQUEST_NULL (MPI_ERR_REQUEST)");
  RequestRecord* r = request_arg(fn, *request);
  if (r->receive || r->collective || r->bsend)
    fatal(fn, "freeing a pending receive or collective request is not supported", 69);
  check(fn, lower_for(fn).request_free(r->lh));
  release_request(r);
  *request = null_request();
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Cancel, (MPI_Request* request)) {
  const char* fn = "MPI_Cancel";
  if (is_null_request(*request)) fatal(fn, "MPI_REQUEST_NULL (MPI_ERR_REQUEST)");
  RequestRecord* r = request_arg(fn, *request);
  if (!r->receive) fatal(fn, "cancelling a send or a collective is not supported", 69);
  check(fn, lower_for(fn).cancel(r->lh));
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Test_cancelled, (const MPI_Status* status, int* flag)) {
  *flag = status->_cancelled != 0 ? 1 : 0;
  return MPI_SUCCESS;
}
