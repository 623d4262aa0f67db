// SPDX-License-Identifier: Apache-2.0
// Error handlers on communicators: MPI_ERRORS_ARE_FATAL (the default: an erroneous call ends the
// job with "ferry: MPI_X: ...") and MPI_ERRORS_RETURN (the call returns the error code instead,
// state.hpp: comm_error). The handler is a field of the communicator's upper-half record, so a
// checkpoint keeps it; new communicators inherit their parent's. User-defined handlers
// (MPI_Comm_create_errhandler) are not supported.
#include "state.hpp"

using namespace ferry::mpi;

extern "C" {
extern __attribute__((visibility("default"))) unsigned char ompi_mpi_errors_are_fatal[];
extern __attribute__((visibility("default"))) unsigned char ompi_mpi_errors_return[];
extern __attribute__((visibility("default"))) unsigned char ompi_mpi_errhandler_null[];
}

FERRY_MPI_FUNCTION(int, Comm_set_errhandler, (MPI_Comm comm, MPI_Errhandler errhandler)) {
  const char* fn = "MPI_Comm_set_errhandler";
  CommRecord* c = comm_arg(fn, comm);
  void* handler = static_cast<void*>(errhandler);
  if (handler == static_cast<void*>(ompi_mpi_errors_return)) {
    c->errhandler = handler;
  } else if (handler == static_cast<void*>(ompi_mpi_errors_are_fatal)) {
    c->errhandler = nullptr;
  } else {
    fatal(fn, "only MPI_ERRORS_RETURN and MPI_ERRORS_ARE_FATAL are supported", 69);
  }
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Comm_get_errhandler, (MPI_Comm comm, MPI_Errhandler* errhandler)) {
  CommRecord* c = comm_arg("MPI_Comm_get_errhandler", comm);
  *errhandler = reinterpret_cast<MPI_Errhandler>(c->errhandler != nullptr ? ompi_mpi_errors_return
                                                                          : ompi_mpi_errors_are_fatal);
  return MPI_SUCCESS;
}

// Freeing a predefined handler is allowed and does nothing.
FERRY_MPI_FUNCTION(int, Errhandler_free, (MPI_Errhandler* errhandler)) {
  void* handler = static_cast<void*>(*errhandler);
  if (handler != static_cast<void*>(ompi_mpi_errors_return) && handler != static_cast<void*>(ompi_mpi_errors_are_fatal))
    fatal("MPI_Errhandler_free", "invalid error handler (MPI_ERR_ARG)");
  *errhandler = reinterpret_cast<MPI_Errhandler>(ompi_mpi_errhandler_null);
  return MPI_SUCCESS;
}
