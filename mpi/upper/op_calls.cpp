// SPDX-License-Identifier: Apache-2.0
// User-defined reduction operations (MPI_Op_create/free/commutative). An op is a heap OpRecord in
// the application's memory holding the application's function; it never exists in the lower half
// (user_ops.hpp runs the reduction in the application), so a restart has nothing to replay.
#include "state.hpp"

using namespace ferry::mpi;

// MPI_OP_NULL is the address of this exported object (predefined_objects.cpp), whose record
// comes first; declared here by its record only (through the GOT: the executable's copy).
extern "C" FERRY_EXPORT OpRecord ompi_mpi_op_null;

namespace {

MPI_Op null_op() { return reinterpret_cast<MPI_Op>(&ompi_mpi_op_null); }

}  // namespace

FERRY_MPI_FUNCTION(int, Op_create, (void (*function)(void*, void*, int*, MPI_Datatype*), int commute, MPI_Op* op)) {
  if (function == nullptr) fatal("MPI_Op_create", "no function (MPI_ERR_ARG)");
  auto* r = new OpRecord{{kLiveMagic, Kind::op}, kLhNone, reinterpret_cast<void*>(function), commute != 0};
  *op = reinterpret_cast<MPI_Op>(r);
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Op_free, (MPI_Op * op)) {
  const char* fn = "MPI_Op_free";
  OpRecord* r = op_arg(fn, *op);
  if (r->user_fn == nullptr) fatal(fn, "a predefined operation cannot be freed (MPI_ERR_OP)");
  r->header.magic = 0;
  delete r;
  *op = null_op();
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Op_commutative, (MPI_Op op, int* commute)) {
  OpRecord* r = op_arg("MPI_Op_commutative", op);
  *commute = r->user_fn == nullptr ? 1 : (r->commute ? 1 : 0);
  return MPI_SUCCESS;
}
