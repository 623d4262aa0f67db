// SPDX-License-Identifier: Apache-2.0
// User-defined reduction operations (user_ops.hpp). Not implemented yet: no user op can be
// created (MPI_Op_create is still an unsupported stub).
#include "user_ops.hpp"

#include "state.hpp"

namespace ferry::mpi {

bool is_user_op(const OpRecord* /*op*/) { return false; }

int user_reduce(const char* fn, ReduceKind, const void*, void*, int, const int*, const DatatypeRecord*,
                const OpRecord*, int, CommRecord*) {
  fatal(fn, "user-defined operations are not supported", 69);
}

}  // namespace ferry::mpi
