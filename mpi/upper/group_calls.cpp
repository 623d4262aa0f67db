// SPDX-License-Identifier: Apache-2.0
// Groups, and the communicator calls built on them (Comm_group, Comm_compare, Comm_create).
// A group is a list of world ranks in the upper half only (GroupRecord): MPI_Group_* calls never
// reach the lower half, and a restart has nothing to rebuild for them. Comm_create is a lower-half
// split of the parent: the group's members take colour 0 keyed by their rank in the group, the
// others MPI_UNDEFINED (so every member of the parent takes part, as MPI requires); it counts as
// one collective on the parent.
#include <algorithm>
#include <vector>

#include "state.hpp"

using namespace ferry::mpi;

extern "C" {
// The predefined group objects (predefined_objects.cpp); only their addresses are used here.
extern __attribute__((visibility("default"))) unsigned char ompi_mpi_group_null[];
extern __attribute__((visibility("default"))) unsigned char ompi_mpi_group_empty[];
}

namespace {

constexpr int kIdent = 0, kCongruent = 1, kSimilar = 2, kUnequal = 3;  // MPI_IDENT...

GroupRecord* group_arg(const char* fn, MPI_Group group) {
  auto* g = as_record<GroupRecord>(group, Kind::group);
  if (g == nullptr || static_cast<void*>(group) == static_cast<void*>(ompi_mpi_group_null))
    fatal(fn, "invalid group (MPI_ERR_GROUP)");
  return g;
}

MPI_Group make_group(const std::vector<std::int32_t>& ranks) {
  if (ranks.empty()) return reinterpret_cast<MPI_Group>(ompi_mpi_group_empty);
  auto* g = new GroupRecord{{kLiveMagic, Kind::group}, static_cast<std::int32_t>(ranks.size()), 1,
                            new std::int32_t[ranks.size()]};
  std::copy(ranks.begin(), ranks.end(), g->world_ranks);
  return reinterpret_cast<MPI_Group>(g);
}

std::vector<std::int32_t> members(const GroupRecord* g) {
  return g->size == 0 ? std::vector<std::int32_t>{} : std::vector<std::int32_t>(g->world_ranks, g->world_ranks + g->size);
}

std::vector<std::int32_t> comm_members(const CommRecord* c) {
  std::vector<std::int32_t> out;
  for (int r = 0; r < c->size; ++r) out.push_back(world_rank_in(c, r));
  return out;
}

int position_of(const std::vector<std::int32_t>& list, int world) {
  auto it = std::find(list.begin(), list.end(), world);
  return it == list.end() ? MPI_UNDEFINED : static_cast<int>(it - list.begin());
}

int compare_lists(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b) {
  if (a == b) return kIdent;
  std::vector<std::int32_t> sa = a, sb = b;
  std::sort(sa.begin(), sa.end());
  std::sort(sb.begin(), sb.end());
  return sa == sb ? kSimilar : kUnequal;
}

}  // namespace

FERRY_MPI_FUNCTION(int, Comm_group, (MPI_Comm comm, MPI_Group* group)) {
  lower_for("MPI_Comm_group");
  *group = make_group(comm_members(comm_arg("MPI_Comm_group", comm)));
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Group_size, (MPI_Group group, int* size)) {
  *size = group_arg("MPI_Group_size", group)->size;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Group_rank, (MPI_Group group, int* rank)) {
  lower_for("MPI_Group_rank");
  *rank = position_of(members(group_arg("MPI_Group_rank", group)), world_record()->rank);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Group_free, (MPI_Group* group)) {
  GroupRecord* g = group_arg("MPI_Group_free", *group);
  if (g->heap) {
    g->header.magic = 0;
    delete[] g->world_ranks;
    delete g;
  }
  *group = reinterpret_cast<MPI_Group>(ompi_mpi_group_null);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Group_incl, (MPI_Group group, int n, const int ranks[], MPI_Group* newgroup)) {
  const char* fn = "MPI_Group_incl";
  std::vector<std::int32_t> from = members(group_arg(fn, group)), out;
  if (n < 0 || n > static_cast<int>(from.size())) fatal(fn, "invalid count (MPI_ERR_ARG)");
  for (int i = 0; i < n; ++i) {
    if (ranks[i] < 0 || ranks[i] >= static_cast<int>(from.size())) fatal(fn, "rank out of the group (MPI_ERR_RANK)");
    if (position_of(out, from[static_cast<std::size_t>(ranks[i])]) != MPI_UNDEFINED) fatal(fn, "a rank twice (MPI_ERR_RANK)");
    out.push_back(from[static_cast<std::size_t>(ranks[i])]);
  }
  *newgroup = make_group(out);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Group_excl, (MPI_Group group, int n, const int ranks[], MPI_Group* newgroup)) {
  const char* fn = "MPI_Group_excl";
  std::vector<std::int32_t> from = members(group_arg(fn, group)), out;
  std::vector<bool> drop(from.size(), false);
  if (n < 0 || n > static_cast<int>(from.size())) fatal(fn, "invalid count (MPI_ERR_ARG)");
  for (int i = 0; i < n; ++i) {
    if (ranks[i] < 0 || ranks[i] >= static_cast<int>(from.size())) fatal(fn, "rank out of the group (MPI_ERR_RANK)");
    drop[static_cast<std::size_t>(ranks[i])] = true;
  }
  for (std::size_t i = 0; i < from.size(); ++i)
    if (!drop[i]) out.push_back(from[i]);
  *newgroup = make_group(out);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Group_translate_ranks, (MPI_Group group1, int n, const int ranks1[], MPI_Group group2,
                                                int ranks2[])) {
  const char* fn = "MPI_Group_translate_ranks";
  std::vector<std::int32_t> a = members(group_arg(fn, group1)), b = members(group_arg(fn, group2));
  for (int i = 0; i < n; ++i) {
    if (ranks1[i] == MPI_PROC_NULL) {
      ranks2[i] = MPI_PROC_NULL;
      continue;
    }
    if (ranks1[i] < 0 || ranks1[i] >= static_cast<int>(a.size())) fatal(fn, "rank out of the group (MPI_ERR_RANK)");
    ranks2[i] = position_of(b, a[static_cast<std::size_t>(ranks1[i])]);
  }
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Group_compare, (MPI_Group group1, MPI_Group group2, int* result)) {
  const char* fn = "MPI_Group_compare";
  *result = compare_lists(members(group_arg(fn, group1)), members(group_arg(fn, group2)));
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Comm_compare, (MPI_Comm comm1, MPI_Comm comm2, int* result)) {
  const char* fn = "MPI_Comm_compare";
  lower_for(fn);
  CommRecord* a = comm_arg(fn, comm1);
  CommRecord* b = comm_arg(fn, comm2);
  if (a == b) {
    *result = kIdent;
    return MPI_SUCCESS;
  }
  int same = compare_lists(comm_members(a), comm_members(b));
  *result = same == kIdent ? kCongruent : same;  // different contexts: at best congruent
  return MPI_SUCCESS;
}

// ferry makes intracommunicators only (MPI_Intercomm_create is not supported); the C++ bindings
// ask this of every communicator they wrap.
FERRY_MPI_FUNCTION(int, Comm_test_inter, (MPI_Comm comm, int* flag)) {
  comm_arg("MPI_Comm_test_inter", comm);
  *flag = 0;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Comm_create, (MPI_Comm comm, MPI_Group group, MPI_Comm* newcomm)) {
  const char* fn = "MPI_Comm_create";
  CommRecord* parent = comm_arg(fn, comm);
  GroupRecord* g = group_arg(fn, group);
  std::vector<std::int32_t> in_group = members(g), in_parent = comm_members(parent);
  for (std::int32_t w : in_group)
    if (position_of(in_parent, w) == MPI_UNDEFINED) fatal(fn, "the group is not a subgroup of the communicator (MPI_ERR_GROUP)");
  int mine = position_of(in_group, world_record()->rank);
  count_collective(parent);
  NewComm made;
  check(fn, lower_for(fn).comm_split(parent->lh, mine == MPI_UNDEFINED ? MPI_UNDEFINED : 0,
                                     mine == MPI_UNDEFINED ? 0 : mine, made));
  ReplayEntry entry;
  entry.kind = ReplayKind::comm_create;
  entry.inputs[0] = parent;
  entry.arrays.assign(in_group.begin(), in_group.end());
  ReplayEntry& logged = upper().log.append(entry);
  *newcomm = make_comm(made, logged.seq, parent);
  logged.result = *newcomm;
  return MPI_SUCCESS;
}
