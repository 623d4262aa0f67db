// SPDX-License-Identifier: Apache-2.0
// What Open MPI's deprecated C++ bindings (libmpi_cxx.so.40, which `mpicxx` links into every
// C++ program, even one that calls only the C API) need from libmpi.so.40 beyond the MPI_*
// functions: a few of Open MPI's internal symbols. The real libmpi_cxx.so.40 then loads over
// ferry's upper half (it holds no MPI state of its own: its MPI:: objects wrap the C handles,
// and its calls go to ferry's MPI_* functions), like `use mpi_f08` programs run on Open MPI's own
// libmpi_usempif08.so.40. It also loads libopen-pal.so.40, which nothing initialises.
//
// The data objects only have to exist (sizes as in Open MPI 4.1). The functions serve features
// of the C++ bindings ferry does not implement (C++ attribute keyvals, error handlers and user
// ops, data representations): they end the job naming the feature, never misbehave silently.
#include <cstdint>

#include "state.hpp"

extern "C" {
[[noreturn]] void ferry_mpi_unsupported(const char* name);

FERRY_EXPORT int ompi_errcode_intern_lastused = 0;
FERRY_EXPORT alignas(16) unsigned char ompi_errcodes_intern[0x78] = {};
FERRY_EXPORT alignas(16) unsigned char ompi_registered_datareps[0x40] = {};
// MPI::ERRORS_THROW_EXCEPTIONS: not a live errhandler record here, so setting it is refused.
FERRY_EXPORT alignas(64) unsigned char ompi_mpi_errors_throw_exceptions[0x400] = {};

FERRY_EXPORT int ompi_attr_create_keyval(...) {
  ferry_mpi_unsupported("MPI::Comm::Create_keyval (C++ attribute keyvals)");
}
FERRY_EXPORT void* ompi_errhandler_create(...) {
  ferry_mpi_unsupported("MPI::Comm::Create_errhandler (C++ error handlers)");
}
FERRY_EXPORT int ompi_errhandler_invoke(...) {
  ferry_mpi_unsupported("a C++ error handler");
}
FERRY_EXPORT void ompi_op_set_cxx_callback(...) {
  ferry_mpi_unsupported("MPI::Op::Init (C++ user-defined operations)");
}
}
