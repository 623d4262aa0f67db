// SPDX-License-Identifier: Apache-2.0
// Fortran bindings: collectives (fortran.hpp explains the conversions; MPI_IN_PLACE and
// MPI_BOTTOM arrive as the addresses of the executable's common blocks and become C's).
// Count and displacement arrays are INTEGER arrays, passed as they are.
#include "fortran.hpp"

using namespace ferry::fortran;

FERRY_FORTRAN(void, barrier, (F* c, F* ierr)) { set_ierr(ierr, PMPI_Barrier(comm(c))); }

FERRY_FORTRAN(void, bcast, (void* b, F* count, F* t, F* root, F* c, F* ierr)) {
  set_ierr(ierr, PMPI_Bcast(buf(b), *count, type(t), *root, comm(c)));
}

FERRY_FORTRAN(void, reduce, (void* sb, void* rb, F* count, F* t, F* o, F* root, F* c, F* ierr)) {
  set_ierr(ierr, PMPI_Reduce(buf(sb), buf(rb), *count, type(t), op(o), *root, comm(c)));
}

FERRY_FORTRAN(void, allreduce, (void* sb, void* rb, F* count, F* t, F* o, F* c, F* ierr)) {
  set_ierr(ierr, PMPI_Allreduce(buf(sb), buf(rb), *count, type(t), op(o), comm(c)));
}

#define FERRY_F_SCAN(name, cfn)                                                          \
  FERRY_FORTRAN(void, name, (void* sb, void* rb, F* count, F* t, F* o, F* c, F* ierr)) { \
    set_ierr(ierr, cfn(buf(sb), buf(rb), *count, type(t), op(o), comm(c)));              \
  }
FERRY_F_SCAN(scan, PMPI_Scan)
FERRY_F_SCAN(exscan, PMPI_Exscan)
FERRY_F_SCAN(reduce_scatter_block, PMPI_Reduce_scatter_block)
#undef FERRY_F_SCAN

FERRY_FORTRAN(void, reduce_scatter, (void* sb, void* rb, F* rcounts, F* t, F* o, F* c, F* ierr)) {
  set_ierr(ierr, PMPI_Reduce_scatter(buf(sb), buf(rb), rcounts, type(t), op(o), comm(c)));
}

#define FERRY_F_ROOTED(name, cfn)                                                                       \
  FERRY_FORTRAN(void, name, (void* sb, F* scount, F* stype, void* rb, F* rcount, F* rtype, F* root, F* c, \
                             F* ierr)) {                                                                \
    set_ierr(ierr, cfn(buf(sb), *scount, type(stype), buf(rb), *rcount, type(rtype), *root, comm(c)));  \
  }
FERRY_F_ROOTED(gather, PMPI_Gather)
FERRY_F_ROOTED(scatter, PMPI_Scatter)
#undef FERRY_F_ROOTED

#define FERRY_F_ALLTO(name, cfn)                                                                          \
  FERRY_FORTRAN(void, name, (void* sb, F* scount, F* stype, void* rb, F* rcount, F* rtype, F* c, F* ierr)) { \
    set_ierr(ierr, cfn(buf(sb), *scount, type(stype), buf(rb), *rcount, type(rtype), comm(c)));           \
  }
FERRY_F_ALLTO(allgather, PMPI_Allgather)
FERRY_F_ALLTO(alltoall, PMPI_Alltoall)
#undef FERRY_F_ALLTO

FERRY_FORTRAN(void, gatherv, (void* sb, F* scount, F* stype, void* rb, F* rcounts, F* displs, F* rtype, F* root,
                              F* c, F* ierr)) {
  set_ierr(ierr, PMPI_Gatherv(buf(sb), *scount, type(stype), buf(rb), rcounts, displs, type(rtype), *root, comm(c)));
}

FERRY_FORTRAN(void, scatterv, (void* sb, F* scounts, F* displs, F* stype, void* rb, F* rcount, F* rtype, F* root,
                               F* c, F* ierr)) {
  set_ierr(ierr, PMPI_Scatterv(buf(sb), scounts, displs, type(stype), buf(rb), *rcount, type(rtype), *root, comm(c)));
}

FERRY_FORTRAN(void, allgatherv, (void* sb, F* scount, F* stype, void* rb, F* rcounts, F* displs, F* rtype, F* c,
                                 F* ierr)) {
  set_ierr(ierr, PMPI_Allgatherv(buf(sb), *scount, type(stype), buf(rb), rcounts, displs, type(rtype), comm(c)));
}

FERRY_FORTRAN(void, alltoallv, (void* sb, F* scounts, F* sdispls, F* stype, void* rb, F* rcounts, F* rdispls,
                                F* rtype, F* c, F* ierr)) {
  set_ierr(ierr, PMPI_Alltoallv(buf(sb), scounts, sdispls, type(stype), buf(rb), rcounts, rdispls, type(rtype),
                                comm(c)));
}

FERRY_FORTRAN(void, ibarrier, (F* c, F* req, F* ierr)) {
  MPI_Request r = nullptr;
  set_ierr(ierr, PMPI_Ibarrier(comm(c), &r));
  *req = to_f(FERRY_F_REQUEST, r);
}

FERRY_FORTRAN(void, ibcast, (void* b, F* count, F* t, F* root, F* c, F* req, F* ierr)) {
  MPI_Request r = nullptr;
  set_ierr(ierr, PMPI_Ibcast(buf(b), *count, type(t), *root, comm(c), &r));
  *req = to_f(FERRY_F_REQUEST, r);
}

FERRY_FORTRAN(void, iallreduce, (void* sb, void* rb, F* count, F* t, F* o, F* c, F* req, F* ierr)) {
  MPI_Request r = nullptr;
  set_ierr(ierr, PMPI_Iallreduce(buf(sb), buf(rb), *count, type(t), op(o), comm(c), &r));
  *req = to_f(FERRY_F_REQUEST, r);
}
