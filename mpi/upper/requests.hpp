// SPDX-License-Identifier: Apache-2.0
// Nonblocking requests in the upper half: the RequestRecord behind an MPI_Request handle, and
// its completion. Completing a request asks the lower half for its result (wait blocks, test
// does not), lands a receive's (or a nonblocking collective's) data in its staged RecvBuffer,
// runs RecvBuffer::finish, counts a received message, fills the status and frees the record.
// Every MPI_Wait*/MPI_Test* entry point goes through complete_request().
#pragma once

#include "buffers.hpp"
#include "state.hpp"

namespace ferry::mpi {

bool is_null_request(MPI_Request request);
MPI_Request null_request();
RequestRecord* request_arg(const char* fn, MPI_Request request);  // live, not MPI_REQUEST_NULL

// A new live record (listed in UpperHalf::live_requests); `staged` is taken over.
RequestRecord* new_request(CommRecord* comm, DatatypeRecord* type, bool receive, RecvBuffer* staged);
// Frees the record and its staged buffer (no lower-half call).
void release_request(RequestRecord* r);

// Completes `*request` (blocking when `done` is null; else a test that sets *done) and sets it
// to MPI_REQUEST_NULL. A null request completes at once with an empty status.
int complete_request(const char* fn, MPI_Request* request, MPI_Status* status, int* done);

}  // namespace ferry::mpi
