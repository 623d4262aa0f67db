/* SPDX-License-Identifier: Apache-2.0
 * Test only (mpi.fortran.bindings.*): lets ferry's libmpi_mpifh.so.40 run on top of Open MPI's
 * own C library, so the Fortran layer's conversions (handles, sentinels, statuses, LOGICALs,
 * 1-based indices, user-op trampolines, arrays of handles) are checked against Open MPI's
 * semantics for every call, whether or not ferry's upper half implements the C call yet.
 * Preloaded; provides what the bindings take from ferry's libmpi.so.40 besides the PMPI_*
 * functions: the handle conversions (Open MPI's own f2c/c2f, which release an integer when the
 * object is freed, so forget is a no-op) and the "not supported" exit. At exit it reports how many
 * conversions it served, which shows the bindings were ferry's. */
#include <mpi.h>
#include <stdio.h>
#include <unistd.h>

static unsigned long conversions;

int ferry_mpi_handle_c2f(int handle_class, const void *h) {
  ++conversions;
  if (h == NULL) return -1;
  switch (handle_class) {
    case 1: return MPI_Comm_c2f((MPI_Comm)h);
    case 2: return MPI_Type_c2f((MPI_Datatype)h);
    case 3: return MPI_Op_c2f((MPI_Op)h);
    case 4: return MPI_Request_c2f((MPI_Request)h);
    case 5: return MPI_Group_c2f((MPI_Group)h);
    case 6: return MPI_Errhandler_c2f((MPI_Errhandler)h);
    case 7: return MPI_Message_c2f((MPI_Message)h);
    case 8: return MPI_Win_c2f((MPI_Win)h);
    case 9: return MPI_File_c2f((MPI_File)h);
    case 10: return MPI_Info_c2f((MPI_Info)h);
    default: return -1;
  }
}

void *ferry_mpi_handle_f2c(int handle_class, int v) {
  ++conversions;
  switch (handle_class) {
    case 1: return MPI_Comm_f2c(v);
    case 2: return MPI_Type_f2c(v);
    case 3: return MPI_Op_f2c(v);
    case 4: return MPI_Request_f2c(v);
    case 5: return MPI_Group_f2c(v);
    case 6: return MPI_Errhandler_f2c(v);
    case 7: return MPI_Message_f2c(v);
    case 8: return MPI_Win_f2c(v);
    case 9: return MPI_File_f2c(v);
    case 10: return MPI_Info_f2c(v);
    default: return NULL;
  }
}

void ferry_mpi_handle_forget(int handle_class, int v) {
  (void)handle_class;
  (void)v;
}

void ferry_mpi_unsupported(const char *name) {
  fprintf(stderr, "ferry: %s is not supported\n", name);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 69);
  _exit(69);
}

__attribute__((destructor)) static void report(void) {
  if (conversions > 0) fprintf(stderr, "ferry-reference-shim: %lu handle conversions\n", conversions);
}
