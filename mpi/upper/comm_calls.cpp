// SPDX-License-Identifier: Apache-2.0
// Communicator calls. A new communicator is a heap CommRecord holding its rank, size and its
// members' world ranks (what a restart needs to rebuild it), plus a replay-log entry.
// Dup and Split are collective on the parent and bump its collective sequence number.
#include <algorithm>

#include "state.hpp"

using namespace ferry::mpi;

MPI_Comm ferry::mpi::make_comm(const NewComm& made, std::uint32_t log_seq, const CommRecord* parent) {
  if (made.id == kLhNone) return reinterpret_cast<MPI_Comm>(null_comm_record());
  auto* ranks = new std::int32_t[static_cast<std::size_t>(made.size)];
  std::copy(made.world_ranks.begin(), made.world_ranks.end(), ranks);
  auto* r = new CommRecord{{kLiveMagic, Kind::comm}, made.id, made.rank, made.size, 0, log_seq, ranks, {}};
  r->errhandler = parent->errhandler;
  upper().live_comms.insert(r);
  return reinterpret_cast<MPI_Comm>(r);
}


FERRY_MPI_FUNCTION(int, Comm_rank, (MPI_Comm comm, int* rank)) {
  lower_for("MPI_Comm_rank");
  *rank = comm_arg("MPI_Comm_rank", comm)->rank;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Comm_size, (MPI_Comm comm, int* size)) {
  lower_for("MPI_Comm_size");
  *size = comm_arg("MPI_Comm_size", comm)->size;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Comm_dup, (MPI_Comm comm, MPI_Comm* newcomm)) {
  const char* fn = "MPI_Comm_dup";
  CommRecord* parent = comm_arg(fn, comm);
  count_collective(parent);
  NewComm made;
  check(fn, lower_for(fn).comm_dup(parent->lh, made));
  ReplayEntry entry;
  entry.kind = ReplayKind::comm_dup;
  entry.inputs[0] = parent;
  ReplayEntry& logged = upper().log.append(entry);
  *newcomm = make_comm(made, logged.seq, parent);
  logged.result = *newcomm;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Comm_split, (MPI_Comm comm, int color, int key, MPI_Comm* newcomm)) {
  const char* fn = "MPI_Comm_split";
  CommRecord* parent = comm_arg(fn, comm);
  count_collective(parent);
  NewComm made;
  check(fn, lower_for(fn).comm_split(parent->lh, color, key, made));
  ReplayEntry entry;
  entry.kind = ReplayKind::comm_split;
  entry.inputs[0] = parent;
  entry.args[0] = color;
  entry.args[1] = key;
  ReplayEntry& logged = upper().log.append(entry);
  *newcomm = make_comm(made, logged.seq, parent);
  logged.result = *newcomm;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Comm_free, (MPI_Comm* comm)) {
  const char* fn = "MPI_Comm_free";
  CommRecord* c = comm_arg(fn, *comm);
  if (c->created_by == 0) fatal(fn, "a predefined communicator cannot be freed (MPI_ERR_COMM)");
  check(fn, lower_for(fn).comm_free(c->lh));
  ReplayEntry entry;
  entry.kind = ReplayKind::comm_free;
  entry.result = c;
  upper().log.append(entry);
  upper().live_comms.erase(c);
  c->header.magic = 0;
  delete[] c->world_ranks;
  free_cart(c->cart);
  delete c;
  *comm = reinterpret_cast<MPI_Comm>(null_comm_record());
  return MPI_SUCCESS;
}
