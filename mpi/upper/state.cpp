// SPDX-License-Identifier: Apache-2.0
// Process-wide upper-half state and the argument helpers shared by the MPI_* entry points.
// Nothing here may allocate in a signal handler or throw: these run inside the application.
#include "state.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace ferry::mpi {

UpperHalf& upper() {
  static UpperHalf state;
  return state;
}

void fatal(const char* fn, const char* why, int code) {
  char message[512];
  std::snprintf(message, sizeof message, "%s: %s", fn, why);
  end_job(message, code);
}

void end_job(const char* message, int code) {
  std::fprintf(stderr, "ferry: %s\n", message);
  std::fflush(stderr);
  UpperHalf& u = upper();
  if (u.lower && u.initialized && !u.finalized) u.lower->abort(world_record()->lh, code);
  _exit(code);
}

LowerHalf& lower_for(const char* fn) {
  UpperHalf& u = upper();
  if (!u.initialized) fatal(fn, "called before MPI_Init");
  if (u.finalized) fatal(fn, "called after MPI_Finalize");
  return *u.lower;
}

CommRecord* comm_arg(const char* fn, MPI_Comm comm) {
  auto* r = as_record<CommRecord>(comm, Kind::comm);
  if (r == nullptr) fatal(fn, "invalid communicator (MPI_ERR_COMM)");
  if (r == null_comm_record()) fatal(fn, "MPI_COMM_NULL passed as a communicator (MPI_ERR_COMM)");
  return r;
}

DatatypeRecord* type_arg(const char* fn, MPI_Datatype type) {
  auto* r = as_record<DatatypeRecord>(type, Kind::datatype);
  if (r == nullptr) fatal(fn, "invalid datatype (MPI_ERR_TYPE)");
  if (r->size <= 0 && r->extent <= 0) fatal(fn, "a datatype without size (MPI_ERR_TYPE)");
  return r;
}

OpRecord* op_arg(const char* fn, MPI_Op op) {
  auto* r = as_record<OpRecord>(op, Kind::op);
  if (r == nullptr || r->lh == 0) fatal(fn, "invalid reduction operation (MPI_ERR_OP)");
  return r;
}

std::size_t span_bytes(const DatatypeRecord* type, int count) {
  if (count < 0) return 0;
  return static_cast<std::size_t>(count) * static_cast<std::size_t>(type->extent);
}

std::size_t received_span(const DatatypeRecord* type, std::uint64_t packed_bytes) {
  if (type->size <= 0) return 0;
  return static_cast<std::size_t>(packed_bytes / static_cast<std::uint64_t>(type->size)) *
         static_cast<std::size_t>(type->extent);
}

void set_status(MPI_Status* status, const LhStatus& st) {
  if (status == MPI_STATUS_IGNORE) return;
  status->MPI_SOURCE = st.source;
  status->MPI_TAG = st.tag;
  status->MPI_ERROR = st.error;
  status->_cancelled = st.cancelled ? 1 : 0;
  status->_ucount = st.bytes;
}

void set_empty_status(MPI_Status* status) {
  if (status == MPI_STATUS_IGNORE) return;
  status->MPI_SOURCE = MPI_ANY_SOURCE;
  status->MPI_TAG = MPI_ANY_TAG;
  status->MPI_ERROR = MPI_SUCCESS;
  status->_cancelled = 0;
  status->_ucount = 0;
}

void count_sent(CommRecord* comm, int dest) {
  if (dest == MPI_PROC_NULL) return;
  ++comm->traffic.sent;
  ++upper().totals.sent;
}

void count_received(CommRecord* comm, int source) {
  if (source == MPI_PROC_NULL) return;
  ++comm->traffic.received;
  ++upper().totals.received;
}

void count_collective(CommRecord* comm) {
  ++comm->traffic.collectives;
  ++upper().totals.collectives;
}

int check(const char* fn, int rc) {
  if (rc != MPI_SUCCESS) {
    char why[64];
    std::snprintf(why, sizeof why, "the lower half failed (MPI error %d)", rc);
    fatal(fn, why);
  }
  return rc;
}

int comm_error(const char* fn, const CommRecord* comm, int code, const char* why) {
  if (comm != nullptr && comm->errhandler != nullptr) return code;
  fatal(fn, why);
}

int check_p2p(const char* fn, const CommRecord* comm, int count, int peer, int tag, bool receive) {
  if (count < 0) return comm_error(fn, comm, MPI_ERR_COUNT, "negative count (MPI_ERR_COUNT)");
  bool peer_ok = peer == MPI_PROC_NULL || (peer >= 0 && peer < comm->size) || (receive && peer == MPI_ANY_SOURCE);
  if (!peer_ok) return comm_error(fn, comm, MPI_ERR_RANK, "invalid rank (MPI_ERR_RANK)");
  if (tag < 0 && !(receive && tag == MPI_ANY_TAG)) return comm_error(fn, comm, MPI_ERR_TAG, "invalid tag (MPI_ERR_TAG)");
  return MPI_SUCCESS;
}

int check_root(const char* fn, const CommRecord* comm, int root) {
  if (root < 0 || root >= comm->size) return comm_error(fn, comm, MPI_ERR_ROOT, "invalid root (MPI_ERR_ROOT)");
  return MPI_SUCCESS;
}

int world_rank_in(const CommRecord* comm, int rank) {
  if (comm->world_ranks != nullptr) return comm->world_ranks[rank];
  if (comm == self_comm_record()) return world_record()->rank;
  return rank;  // MPI_COMM_WORLD
}

}  // namespace ferry::mpi
