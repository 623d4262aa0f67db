// SPDX-License-Identifier: Apache-2.0
// What every generated stub (unsupported_stubs.c) calls: the job ends, naming the call.
#include <cstdio>

#include "state.hpp"

extern "C" [[noreturn]] FERRY_EXPORT void ferry_mpi_unsupported(const char* name) {
  char message[160];
  std::snprintf(message, sizeof message, "%s is not supported", name);
  ferry::mpi::end_job(message, 69);
}
