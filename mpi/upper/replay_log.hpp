// SPDX-License-Identifier: Apache-2.0
// The replay log: the calls that created MPI objects the application still holds, in order, so
// that a restart with a fresh lower half can make them again and rebind the virtual handles.
//
// How each kind comes back at restart (the checkpoint part implements the replay):
// - communicators: rebuilt from their members' world ranks (CommRecord::world_ranks) with
//   MPI_Comm_create_group on MPI_COMM_WORLD, so a freed parent does not matter; the log entry
//   keeps the order of creation and the parent for topologies.
// - groups: from world ranks the same way.
// - datatypes, ops, Cartesian topologies: re-run from the entry's arguments, in order; an entry
//   whose result was freed (and that no live object was derived from) is dropped.
// Only the kinds in use today (comm_dup, comm_split, comm_free) are appended so far; the others
// are the record types the coverage of issue 5 needs.
#pragma once

#include <cstdint>
#include <vector>

namespace ferry::mpi {

enum class ReplayKind : std::uint16_t {
  comm_dup = 1,
  comm_split,
  comm_create,
  comm_free,
  group_incl,
  group_excl,
  group_free,
  type_contiguous,
  type_vector,
  type_hvector,
  type_indexed,
  type_create_struct,
  type_create_subarray,
  type_create_resized,
  type_commit,
  type_free,
  op_create,
  op_free,
  cart_create,
  cart_sub,
  comm_set_errhandler,
};

struct ReplayEntry {
  std::uint32_t seq = 0;      // 1, 2, ... in call order
  ReplayKind kind{};
  const void* result = nullptr;  // the virtual handle the call produced (or freed)
  const void* inputs[2] = {};    // virtual handles it used (parent comm, old type, group...)
  std::int64_t args[6] = {};     // scalar arguments (color, key, count, stride, commute...)
  std::vector<std::int64_t> arrays;  // array arguments, concatenated (dims, blocklengths...)
  const void* callback = nullptr;    // user function (op_create): valid in the restored process
};

class ReplayLog {
 public:
  // The stored entry; valid until the next append.
  ReplayEntry& append(ReplayEntry entry) {
    entry.seq = next_seq_++;
    entries_.push_back(std::move(entry));
    return entries_.back();
  }
  const std::vector<ReplayEntry>& entries() const { return entries_; }

 private:
  std::uint32_t next_seq_ = 1;
  std::vector<ReplayEntry> entries_;
};

}  // namespace ferry::mpi
