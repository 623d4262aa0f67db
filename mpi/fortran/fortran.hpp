// SPDX-License-Identifier: Apache-2.0
// What every Fortran entry point of ferry's libmpi_mpifh.so.40 shares. gfortran passes every
// argument by reference (a CHARACTER argument adds its length, a size_t, after the others); an
// entry point converts INTEGER handles to the upper half's C handles (handle_f2c.hpp), Fortran
// sentinels (addresses of the mpi_fortran_*_ common blocks) to C's, LOGICALs and 1-based
// indices, calls the C PMPI_ function of ferry's libmpi.so.40 and stores ierror. A call the C
// side does not implement ends the job there with "ferry: MPI_X is not supported".
#pragma once

#include <cstddef>
#include <cstring>

#include "mpi/abi/ompi41_abi.h"
#include "mpi/fortran/aliases.h"
#include "mpi/upper/handle_f2c.hpp"

#define FERRY_F_EXPORT __attribute__((visibility("default")))

// Defines ompi_<name>_f (Open MPI's strong name) and every spelling Open MPI exports for it
// (mpi_send_, MPI_SEND, pmpi_send__...), all strong: they replace the weak stubs of
// mpifh_stubs.c.
#define FERRY_FORTRAN(ret, name, params)                   \
  extern "C" FERRY_F_EXPORT ret ompi_##name##_f params;    \
  FERRY_F_ALIASES_##name(ret, params)                      \
  extern "C" FERRY_F_EXPORT ret ompi_##name##_f params

using F = MPI_Fint;

// The sentinels (sentinels.cpp). Every mpif.h / `use mpi` executable defines these common blocks
// itself and its definitions take precedence, so the addresses compared are the executable's.
extern "C" {
extern MPI_Fint mpi_fortran_bottom_;
extern MPI_Fint mpi_fortran_in_place_;
extern MPI_Fint mpi_fortran_status_ignore_[6];
extern MPI_Fint mpi_fortran_statuses_ignore_[6];
extern MPI_Fint mpi_fortran_errcodes_ignore_;
extern MPI_Fint mpi_fortran_unweighted_;
extern MPI_Fint mpi_fortran_weights_empty_;
extern char mpi_fortran_argv_null_;
extern char mpi_fortran_argvs_null_;
}

namespace ferry::fortran {

inline constexpr F kRequestNull = 0;
inline constexpr int kStatusInts = 6;  // MPI_STATUS_SIZE
static_assert(sizeof(MPI_Status) == kStatusInts * sizeof(F));

// A choice buffer: MPI_BOTTOM and MPI_IN_PLACE become C's.
inline void* buf(const void* p) {
  if (p == &mpi_fortran_bottom_) return MPI_BOTTOM;
  if (p == &mpi_fortran_in_place_) return MPI_IN_PLACE;
  return const_cast<void*>(p);
}

inline MPI_Comm comm(const F* f) { return static_cast<MPI_Comm>(ferry_mpi_handle_f2c(FERRY_F_COMM, *f)); }
inline MPI_Datatype type(const F* f) { return static_cast<MPI_Datatype>(ferry_mpi_handle_f2c(FERRY_F_DATATYPE, *f)); }
inline MPI_Op op(const F* f) { return static_cast<MPI_Op>(ferry_mpi_handle_f2c(FERRY_F_OP, *f)); }
inline MPI_Group group(const F* f) { return static_cast<MPI_Group>(ferry_mpi_handle_f2c(FERRY_F_GROUP, *f)); }
inline MPI_Request request(const F* f) { return static_cast<MPI_Request>(ferry_mpi_handle_f2c(FERRY_F_REQUEST, *f)); }
inline MPI_Errhandler errhandler(const F* f) {
  return static_cast<MPI_Errhandler>(ferry_mpi_handle_f2c(FERRY_F_ERRHANDLER, *f));
}
inline F to_f(int handle_class, const void* c) { return ferry_mpi_handle_c2f(handle_class, c); }

// After a call that may have completed or freed the object *f named (C handle now `after`):
// a handle that became the null handle releases its integer and becomes the null integer.
inline void update_handle(int handle_class, F* f, const void* after) {
  F now = to_f(handle_class, after);
  if (now != *f) ferry_mpi_handle_forget(handle_class, *f);
  *f = now;
}

inline bool logical(const F* f) { return *f != 0; }
inline F logical(int c) { return c != 0 ? 1 : 0; }  // gfortran's .TRUE. is 1

inline void set_ierr(F* ierr, int rc) {
  if (ierr != nullptr) *ierr = rc;
}

// A status argument: C gets a local status (the Fortran array may be only 4-byte aligned),
// or MPI_STATUS_IGNORE; store() copies it back.
class Status {
 public:
  explicit Status(F* f) : f_(f == mpi_fortran_status_ignore_ ? nullptr : f) {}
  MPI_Status* c() { return f_ == nullptr ? MPI_STATUS_IGNORE : &c_; }
  void store() {
    if (f_ != nullptr) std::memcpy(f_, &c_, sizeof c_);
  }

 private:
  F* f_;
  MPI_Status c_{};
};

// The Fortran status a C status is read from (Get_count, Test_cancelled).
inline MPI_Status status_in(const F* f) {
  MPI_Status s;
  std::memcpy(&s, f, sizeof s);
  return s;
}

}  // namespace ferry::fortran

// The C functions of ferry's libmpi.so.40 the bindings call (Open MPI 4.1's signatures).
extern "C" {
typedef void MPI_User_function(void*, void*, int*, MPI_Datatype*);
int PMPI_Init(int*, char***);
int PMPI_Init_thread(int*, char***, int, int*);
int PMPI_Finalize(void);
int PMPI_Initialized(int*);
int PMPI_Finalized(int*);
int PMPI_Query_thread(int*);
int PMPI_Abort(MPI_Comm, int);
double PMPI_Wtime(void);
double PMPI_Wtick(void);
int PMPI_Get_processor_name(char*, int*);
int PMPI_Get_version(int*, int*);
int PMPI_Comm_rank(MPI_Comm, int*);
int PMPI_Comm_size(MPI_Comm, int*);

int PMPI_Send(const void*, int, MPI_Datatype, int, int, MPI_Comm);
int PMPI_Ssend(const void*, int, MPI_Datatype, int, int, MPI_Comm);
int PMPI_Rsend(const void*, int, MPI_Datatype, int, int, MPI_Comm);
int PMPI_Bsend(const void*, int, MPI_Datatype, int, int, MPI_Comm);
int PMPI_Recv(void*, int, MPI_Datatype, int, int, MPI_Comm, MPI_Status*);
int PMPI_Sendrecv(const void*, int, MPI_Datatype, int, int, void*, int, MPI_Datatype, int, int, MPI_Comm,
                  MPI_Status*);
int PMPI_Sendrecv_replace(void*, int, MPI_Datatype, int, int, int, int, MPI_Comm, MPI_Status*);
int PMPI_Isend(const void*, int, MPI_Datatype, int, int, MPI_Comm, MPI_Request*);
int PMPI_Issend(const void*, int, MPI_Datatype, int, int, MPI_Comm, MPI_Request*);
int PMPI_Irsend(const void*, int, MPI_Datatype, int, int, MPI_Comm, MPI_Request*);
int PMPI_Ibsend(const void*, int, MPI_Datatype, int, int, MPI_Comm, MPI_Request*);
int PMPI_Irecv(void*, int, MPI_Datatype, int, int, MPI_Comm, MPI_Request*);
int PMPI_Wait(MPI_Request*, MPI_Status*);
int PMPI_Waitall(int, MPI_Request*, MPI_Status*);
int PMPI_Waitany(int, MPI_Request*, int*, MPI_Status*);
int PMPI_Waitsome(int, MPI_Request*, int*, int*, MPI_Status*);
int PMPI_Test(MPI_Request*, int*, MPI_Status*);
int PMPI_Testall(int, MPI_Request*, int*, MPI_Status*);
int PMPI_Testany(int, MPI_Request*, int*, int*, MPI_Status*);
int PMPI_Testsome(int, MPI_Request*, int*, int*, MPI_Status*);
int PMPI_Request_free(MPI_Request*);
int PMPI_Cancel(MPI_Request*);
int PMPI_Test_cancelled(const MPI_Status*, int*);
int PMPI_Probe(int, int, MPI_Comm, MPI_Status*);
int PMPI_Iprobe(int, int, MPI_Comm, int*, MPI_Status*);
int PMPI_Get_count(const MPI_Status*, MPI_Datatype, int*);
int PMPI_Get_elements(const MPI_Status*, MPI_Datatype, int*);
int PMPI_Buffer_attach(void*, int);
int PMPI_Buffer_detach(void*, int*);

int PMPI_Barrier(MPI_Comm);
int PMPI_Bcast(void*, int, MPI_Datatype, int, MPI_Comm);
int PMPI_Reduce(const void*, void*, int, MPI_Datatype, MPI_Op, int, MPI_Comm);
int PMPI_Allreduce(const void*, void*, int, MPI_Datatype, MPI_Op, MPI_Comm);
int PMPI_Gather(const void*, int, MPI_Datatype, void*, int, MPI_Datatype, int, MPI_Comm);
int PMPI_Gatherv(const void*, int, MPI_Datatype, void*, const int*, const int*, MPI_Datatype, int, MPI_Comm);
int PMPI_Scatter(const void*, int, MPI_Datatype, void*, int, MPI_Datatype, int, MPI_Comm);
int PMPI_Scatterv(const void*, const int*, const int*, MPI_Datatype, void*, int, MPI_Datatype, int, MPI_Comm);
int PMPI_Allgather(const void*, int, MPI_Datatype, void*, int, MPI_Datatype, MPI_Comm);
int PMPI_Allgatherv(const void*, int, MPI_Datatype, void*, const int*, const int*, MPI_Datatype, MPI_Comm);
int PMPI_Alltoall(const void*, int, MPI_Datatype, void*, int, MPI_Datatype, MPI_Comm);
int PMPI_Alltoallv(const void*, const int*, const int*, MPI_Datatype, void*, const int*, const int*, MPI_Datatype,
                   MPI_Comm);
int PMPI_Reduce_scatter(const void*, void*, const int*, MPI_Datatype, MPI_Op, MPI_Comm);
int PMPI_Reduce_scatter_block(const void*, void*, int, MPI_Datatype, MPI_Op, MPI_Comm);
int PMPI_Scan(const void*, void*, int, MPI_Datatype, MPI_Op, MPI_Comm);
int PMPI_Exscan(const void*, void*, int, MPI_Datatype, MPI_Op, MPI_Comm);
int PMPI_Ibarrier(MPI_Comm, MPI_Request*);
int PMPI_Ibcast(void*, int, MPI_Datatype, int, MPI_Comm, MPI_Request*);
int PMPI_Iallreduce(const void*, void*, int, MPI_Datatype, MPI_Op, MPI_Comm, MPI_Request*);

int PMPI_Comm_dup(MPI_Comm, MPI_Comm*);
int PMPI_Comm_split(MPI_Comm, int, int, MPI_Comm*);
int PMPI_Comm_create(MPI_Comm, MPI_Group, MPI_Comm*);
int PMPI_Comm_free(MPI_Comm*);
int PMPI_Comm_compare(MPI_Comm, MPI_Comm, int*);
int PMPI_Comm_group(MPI_Comm, MPI_Group*);
int PMPI_Comm_set_errhandler(MPI_Comm, MPI_Errhandler);
int PMPI_Group_incl(MPI_Group, int, const int*, MPI_Group*);
int PMPI_Group_excl(MPI_Group, int, const int*, MPI_Group*);
int PMPI_Group_translate_ranks(MPI_Group, int, const int*, MPI_Group, int*);
int PMPI_Group_free(MPI_Group*);
int PMPI_Group_size(MPI_Group, int*);
int PMPI_Group_rank(MPI_Group, int*);

int PMPI_Cart_create(MPI_Comm, int, const int*, const int*, int, MPI_Comm*);
int PMPI_Cart_coords(MPI_Comm, int, int, int*);
int PMPI_Cart_rank(MPI_Comm, const int*, int*);
int PMPI_Cart_shift(MPI_Comm, int, int, int*, int*);
int PMPI_Cart_sub(MPI_Comm, const int*, MPI_Comm*);
int PMPI_Cart_get(MPI_Comm, int, int*, int*, int*);
int PMPI_Cartdim_get(MPI_Comm, int*);
int PMPI_Dims_create(int, int, int*);

int PMPI_Type_contiguous(int, MPI_Datatype, MPI_Datatype*);
int PMPI_Type_vector(int, int, int, MPI_Datatype, MPI_Datatype*);
int PMPI_Type_create_hvector(int, int, MPI_Aint, MPI_Datatype, MPI_Datatype*);
int PMPI_Type_indexed(int, const int*, const int*, MPI_Datatype, MPI_Datatype*);
int PMPI_Type_create_hindexed(int, const int*, const MPI_Aint*, MPI_Datatype, MPI_Datatype*);
int PMPI_Type_create_indexed_block(int, int, const int*, MPI_Datatype, MPI_Datatype*);
int PMPI_Type_create_struct(int, const int*, const MPI_Aint*, const MPI_Datatype*, MPI_Datatype*);
int PMPI_Type_create_subarray(int, const int*, const int*, const int*, int, MPI_Datatype, MPI_Datatype*);
int PMPI_Type_create_resized(MPI_Datatype, MPI_Aint, MPI_Aint, MPI_Datatype*);
int PMPI_Type_dup(MPI_Datatype, MPI_Datatype*);
int PMPI_Type_commit(MPI_Datatype*);
int PMPI_Type_free(MPI_Datatype*);
int PMPI_Type_size(MPI_Datatype, int*);
int PMPI_Type_get_extent(MPI_Datatype, MPI_Aint*, MPI_Aint*);
int PMPI_Op_create(MPI_User_function*, int, MPI_Op*);
int PMPI_Op_free(MPI_Op*);
}
