// SPDX-License-Identifier: Apache-2.0
// The upper half's process-wide state (one per application process) and the helpers every
// MPI_* entry point uses: handle lookup that fails loudly, and fatal errors that end the job.
#pragma once

#include <memory>
#include <unordered_set>

#include "lower_half.hpp"
#include "mpi/abi/ompi41_abi.h"
#include "records.hpp"
#include "replay_log.hpp"

#define FERRY_EXPORT __attribute__((visibility("default")))

// Defines PMPI_<name> with the given body and MPI_<name> as an alias of it (an application or a
// profiling tool may call either). Stronger than the generated "not supported" stubs, which are weak.
#define FERRY_MPI_FUNCTION(ret, name, params) \
  extern "C" FERRY_EXPORT ret MPI_##name params __attribute__((alias("PMPI_" #name))); \
  extern "C" FERRY_EXPORT ret PMPI_##name params

namespace ferry::mpi {

struct UpperHalf {
  std::unique_ptr<LowerHalf> lower;
  bool initialized = false;
  bool finalized = false;
  int thread_level = MPI_THREAD_SINGLE;
  ReplayLog log;
  // Sums over every communicator, freed ones included: the drain compares the job's total sent
  // and received messages.
  TrafficCounters totals{};
  // Every live heap record, so the drain and a restart can reach them without the application's
  // handles: communicators (to rebind) and outstanding requests (to complete or re-post).
  std::unordered_set<CommRecord*> live_comms;
  std::unordered_set<RequestRecord*> live_requests;
};

// Message and collective counting (records.hpp: TrafficCounters), on the communicator and in
// UpperHalf::totals. Sends to and receives from MPI_PROC_NULL are not messages.
void count_sent(CommRecord* comm, int dest);
void count_received(CommRecord* comm, int source);
void count_collective(CommRecord* comm);

UpperHalf& upper();

// Prints "ferry: MPI_<fn>: <why>" and ends the whole job (MPI_Abort through the lower half when
// it is up, else exit). Exit status 69 for "not supported", 70 for internal failures.
[[noreturn]] void fatal(const char* fn, const char* why, int code = 70);
// Prints "ferry: <message>" and ends the job the same way.
[[noreturn]] void end_job(const char* message, int code);
// The lower half, after checking MPI_Init was called and MPI_Finalize was not.
LowerHalf& lower_for(const char* fn);

CommRecord* comm_arg(const char* fn, MPI_Comm comm);          // live, not MPI_COMM_NULL
DatatypeRecord* type_arg(const char* fn, MPI_Datatype type);  // live, not MPI_DATATYPE_NULL
OpRecord* op_arg(const char* fn, MPI_Op op);
std::size_t span_bytes(const DatatypeRecord* type, int count);
// Memory span of `packed_bytes` received bytes of `type` (what a receive may write).
std::size_t received_span(const DatatypeRecord* type, std::uint64_t packed_bytes);
void set_status(MPI_Status* status, const LhStatus& st);
void set_empty_status(MPI_Status* status);
int check(const char* fn, int rc);  // fatal unless MPI_SUCCESS

// An erroneous call on `comm`: with MPI_ERRORS_RETURN set on it (MPI_Comm_set_errhandler) the
// entry point returns `code`; else the job ends as with fatal().
int comm_error(const char* fn, const CommRecord* comm, int code, const char* why);
// Argument checks that report through comm_error (MPI_SUCCESS when fine): a peer rank
// (MPI_PROC_NULL always, MPI_ANY_SOURCE for receives), a count, a tag (MPI_ANY_TAG for
// receives), a root.
int check_p2p(const char* fn, const CommRecord* comm, int count, int peer, int tag, bool receive);
int check_root(const char* fn, const CommRecord* comm, int root);
// World rank of member `rank` of `comm`.
int world_rank_in(const CommRecord* comm, int rank);
// A new heap communicator record for what the lower half made (MPI_COMM_NULL for kLhNone); it
// inherits `parent`'s error handler. Defined in comm_calls.cpp.
MPI_Comm make_comm(const NewComm& made, std::uint32_t log_seq, const CommRecord* parent);
void free_cart(CartTopology* cart);  // topo_calls.cpp (nullptr: nothing)

CommRecord* world_record();
CommRecord* null_comm_record();
CommRecord* self_comm_record();
PlainRecord* null_request_record();
std::size_t predefined_type_count();
const DatatypeRecord* predefined_type(std::size_t index);
const char* predefined_type_name(std::size_t index);

}  // namespace ferry::mpi
