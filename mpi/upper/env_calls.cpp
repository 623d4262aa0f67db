// SPDX-License-Identifier: Apache-2.0
// MPI environment calls: start-up (connect to the lower half, check the datatype table against
// the real library), shutdown, abort, clocks and the processor name.
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "state.hpp"

using namespace ferry::mpi;

namespace {

int start(const char* fn, int required, int* provided) {
  UpperHalf& u = upper();
  if (u.initialized) fatal(fn, "MPI_Init called twice");
  std::string why;
  u.lower = connect_lower_half(&why);
  if (!u.lower) fatal(fn, why.c_str());
  WorldInfo world;
  if (u.lower->hello(required, world) != MPI_SUCCESS) fatal(fn, "the lower half refused to start");
  u.initialized = true;
  for (std::size_t i = 0; i < predefined_type_count() && i < world.datatype_sizes.size(); ++i) {
    const DatatypeRecord* t = predefined_type(i);
    if (t->size != world.datatype_sizes[i].first || t->extent != world.datatype_sizes[i].second) {
      char why_text[160];
      std::snprintf(why_text, sizeof why_text,
                    "%s has size %d extent %ld in the real library, %d/%ld in ferry's table",
                    predefined_type_name(i), world.datatype_sizes[i].first,
                    world.datatype_sizes[i].second, t->size, static_cast<long>(t->extent));
      fatal(fn, why_text);
    }
  }
  CommRecord* w = world_record();
  w->rank = world.rank;
  w->size = world.size;
  CommRecord* self = self_comm_record();
  self->rank = 0;
  self->size = 1;
  null_comm_record()->is_null = 1;
  // One proxy thread serves one application thread at a time: up to SERIALIZED.
  u.thread_level = required < MPI_THREAD_SERIALIZED ? required : MPI_THREAD_SERIALIZED;
  if (provided != nullptr) *provided = u.thread_level;
  return MPI_SUCCESS;
}

}  // namespace

FERRY_MPI_FUNCTION(int, Init, (int*, char***)) { return start("MPI_Init", MPI_THREAD_SINGLE, nullptr); }

FERRY_MPI_FUNCTION(int, Init_thread, (int*, char***, int required, int* provided)) {
  return start("MPI_Init_thread", required, provided);
}

FERRY_MPI_FUNCTION(int, Query_thread, (int* provided)) {
  *provided = upper().thread_level;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Finalize, ()) {
  LowerHalf& lower = lower_for("MPI_Finalize");
  // FERRY_MPI_REPORT_COUNTERS=1: one line per rank on stderr with the traffic totals (tests).
  if (const char* report = std::getenv("FERRY_MPI_REPORT_COUNTERS"); report != nullptr && *report == '1') {
    const UpperHalf& u = upper();
    std::fprintf(stderr, "ferry: rank %d counters sent %llu received %llu collectives %llu live comms %zu requests %zu\n",
                 world_record()->rank, static_cast<unsigned long long>(u.totals.sent),
                 static_cast<unsigned long long>(u.totals.received),
                 static_cast<unsigned long long>(u.totals.collectives), u.live_comms.size(),
                 u.live_requests.size());
  }
  check("MPI_Finalize", lower.finalize());
  upper().finalized = true;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Initialized, (int* flag)) {
  *flag = upper().initialized ? 1 : 0;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Finalized, (int* flag)) {
  *flag = upper().finalized ? 1 : 0;
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Abort, (MPI_Comm comm, int code)) {
  LowerHalf& lower = lower_for("MPI_Abort");
  lower.abort(comm_arg("MPI_Abort", comm)->lh, code);
  return MPI_ERR_INTERN;  // not reached: abort() ends the job
}

// The application's own clock: no round trip, and across a restart it continues in the job's
// time namespace like every other CLOCK_MONOTONIC reading of the process.
FERRY_MPI_FUNCTION(double, Wtime, ()) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

FERRY_MPI_FUNCTION(double, Wtick, ()) { return 1e-9; }

FERRY_MPI_FUNCTION(int, Get_processor_name, (char* name, int* resultlen)) {
  std::string text;
  check("MPI_Get_processor_name", lower_for("MPI_Get_processor_name").processor_name(text));
  if (text.size() >= MPI_MAX_PROCESSOR_NAME) text.resize(MPI_MAX_PROCESSOR_NAME - 1);
  std::memcpy(name, text.c_str(), text.size() + 1);
  *resultlen = static_cast<int>(text.size());
  return MPI_SUCCESS;
}

FERRY_MPI_FUNCTION(int, Get_version, (int* version, int* subversion)) {
  *version = 3;
  *subversion = 1;
  return MPI_SUCCESS;
}
