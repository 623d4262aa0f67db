// SPDX-License-Identifier: Apache-2.0
// Reductions with user-defined operations (MPI_Op_create). The user's function lives in the
// application, so it must run there, never in the lower half: a reduction with a user op is a
// data-moving collective of the lower half (the operands reach the ranks that need them) followed
// by the reduction here, always in rank order, so the result is the same in every run.
// Every reduction entry point asks is_user_op() first and hands user ops to user_reduce().
#pragma once

#include "records.hpp"

namespace ferry::mpi {

enum class ReduceKind { reduce, allreduce, scan, exscan, reduce_scatter, reduce_scatter_block };

bool is_user_op(const OpRecord* op);

// `in` is nullptr for MPI_IN_PLACE. `recv_counts` is for reduce_scatter (one per member),
// `count` for every other kind (reduce_scatter_block: per member). `root` for reduce only.
int user_reduce(const char* fn, ReduceKind kind, const void* in, void* out, int count,
                const int* recv_counts, const DatatypeRecord* type, const OpRecord* op, int root,
                CommRecord* comm);

// Tests only (datatype_test.cpp): replaces the lower half's data-moving collective that brings
// the packed operands (MPI_BYTE blocks) together; nullptr restores it.
using MoveOperands = int (*)(GatherKind kind, const CollectiveBuffers& buffers, int root, CommRecord* comm);
void set_move_operands_for_test(MoveOperands move);

}  // namespace ferry::mpi
