// SPDX-License-Identifier: Apache-2.0
// Request records and their completion (requests.hpp).
#include "requests.hpp"

namespace ferry::mpi {

bool is_null_request(MPI_Request request) {
  return reinterpret_cast<void*>(request) == static_cast<void*>(null_request_record());
}

MPI_Request null_request() { return reinterpret_cast<MPI_Request>(null_request_record()); }

RequestRecord* request_arg(const char* fn, MPI_Request request) {
  auto* r = as_record<RequestRecord>(request, Kind::request);
  if (r == nullptr || is_null_request(request)) fatal(fn, "invalid request (MPI_ERR_REQUEST)");
  return r;
}

RequestRecord* new_request(CommRecord* comm, DatatypeRecord* type, bool receive, RecvBuffer* staged) {
  auto* r = new RequestRecord{};
  r->header = {kLiveMagic, Kind::request};
  r->lh = kLhNone;
  r->receive = receive;
  r->comm = comm;
  r->type = type;
  r->staged = staged;
  if (staged != nullptr) {
    r->buffer = staged->span.data;
    r->bytes = staged->span.bytes;
    r->count = staged->count;
  }
  upper().live_requests.insert(r);
  return r;
}

void release_request(RequestRecord* r) {
  upper().live_requests.erase(r);
  r->header.magic = 0;
  delete r->staged;
  delete r;
}

int complete_request(const char* fn, MPI_Request* request, MPI_Status* status, int* done) {
  if (is_null_request(*request)) {
    set_empty_status(status);
    if (done != nullptr) *done = 1;
    return MPI_SUCCESS;
  }
  RequestRecord* r = request_arg(fn, *request);
  LowerHalf& lower = lower_for(fn);
  LhStatus st;
  MutSpan into = r->staged != nullptr ? r->staged->span : MutSpan{};
  if (done == nullptr) {
    check(fn, lower.wait(r->lh, into, st));
  } else {
    bool finished = false;
    check(fn, lower.test(r->lh, into, finished, st));
    *done = finished ? 1 : 0;
    if (!finished) return MPI_SUCCESS;
  }
  if (r->staged != nullptr && !st.cancelled) r->staged->finish(r->collective ? r->staged->span.bytes : st.bytes);
  if (r->receive) {
    if (!st.cancelled) count_received(r->comm, st.source);
    set_status(status, st);
  } else {
    set_empty_status(status);
    if (status != MPI_STATUS_IGNORE) status->MPI_ERROR = st.error;
  }
  release_request(r);
  *request = null_request();
  return MPI_SUCCESS;
}

}  // namespace ferry::mpi
