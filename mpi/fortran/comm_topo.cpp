// SPDX-License-Identifier: Apache-2.0
// Fortran bindings: communicators, groups, error handlers and Cartesian topologies
// (fortran.hpp explains the conversions). A new communicator or group gets its Fortran integer
// here; freeing one releases it and sets the variable to the null handle's integer. LOGICAL
// arrays (periods, remain_dims) are converted element by element.
#include <vector>

#include "fortran.hpp"

using namespace ferry::fortran;

namespace {

std::vector<int> ints_of_logicals(const F* f, int n) {
  std::vector<int> out(static_cast<std::size_t>(n > 0 ? n : 0));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = logical(&f[i]) ? 1 : 0;
  return out;
}

}  // namespace

FERRY_FORTRAN(void, comm_dup, (F* c, F* newcomm, F* ierr)) {
  MPI_Comm n = nullptr;
  set_ierr(ierr, PMPI_Comm_dup(comm(c), &n));
  *newcomm = to_f(FERRY_F_COMM, n);
}

FERRY_FORTRAN(void, comm_split, (F* c, F* color, F* key, F* newcomm, F* ierr)) {
  MPI_Comm n = nullptr;
  set_ierr(ierr, PMPI_Comm_split(comm(c), *color, *key, &n));
  *newcomm = to_f(FERRY_F_COMM, n);
}

FERRY_FORTRAN(void, comm_create, (F* c, F* g, F* newcomm, F* ierr)) {
  MPI_Comm n = nullptr;
  set_ierr(ierr, PMPI_Comm_create(comm(c), group(g), &n));
  *newcomm = to_f(FERRY_F_COMM, n);
}

FERRY_FORTRAN(void, comm_free, (F* c, F* ierr)) {
  MPI_Comm h = comm(c);
  set_ierr(ierr, PMPI_Comm_free(&h));
  update_handle(FERRY_F_COMM, c, h);
}

FERRY_FORTRAN(void, comm_compare, (F* c1, F* c2, F* result, F* ierr)) {
  int r = 0;
  set_ierr(ierr, PMPI_Comm_compare(comm(c1), comm(c2), &r));
  *result = r;
}

FERRY_FORTRAN(void, comm_group, (F* c, F* g, F* ierr)) {
  MPI_Group n = nullptr;
  set_ierr(ierr, PMPI_Comm_group(comm(c), &n));
  *g = to_f(FERRY_F_GROUP, n);
}

FERRY_FORTRAN(void, comm_set_errhandler, (F* c, F* e, F* ierr)) {
  set_ierr(ierr, PMPI_Comm_set_errhandler(comm(c), errhandler(e)));
}

FERRY_FORTRAN(void, group_incl, (F* g, F* n, F* ranks, F* newgroup, F* ierr)) {
  MPI_Group out = nullptr;
  set_ierr(ierr, PMPI_Group_incl(group(g), *n, ranks, &out));
  *newgroup = to_f(FERRY_F_GROUP, out);
}

FERRY_FORTRAN(void, group_excl, (F* g, F* n, F* ranks, F* newgroup, F* ierr)) {
  MPI_Group out = nullptr;
  set_ierr(ierr, PMPI_Group_excl(group(g), *n, ranks, &out));
  *newgroup = to_f(FERRY_F_GROUP, out);
}

FERRY_FORTRAN(void, group_translate_ranks, (F* g1, F* n, F* ranks1, F* g2, F* ranks2, F* ierr)) {
  set_ierr(ierr, PMPI_Group_translate_ranks(group(g1), *n, ranks1, group(g2), ranks2));
}

FERRY_FORTRAN(void, group_free, (F* g, F* ierr)) {
  MPI_Group h = group(g);
  set_ierr(ierr, PMPI_Group_free(&h));
  update_handle(FERRY_F_GROUP, g, h);
}

FERRY_FORTRAN(void, group_size, (F* g, F* size, F* ierr)) {
  int s = 0;
  set_ierr(ierr, PMPI_Group_size(group(g), &s));
  *size = s;
}

FERRY_FORTRAN(void, group_rank, (F* g, F* rank, F* ierr)) {
  int r = 0;
  set_ierr(ierr, PMPI_Group_rank(group(g), &r));
  *rank = r;
}

FERRY_FORTRAN(void, cart_create, (F* c, F* ndims, F* dims, F* periods, F* reorder, F* newcomm, F* ierr)) {
  std::vector<int> p = ints_of_logicals(periods, *ndims);
  MPI_Comm n = nullptr;
  set_ierr(ierr, PMPI_Cart_create(comm(c), *ndims, dims, p.data(), logical(reorder) ? 1 : 0, &n));
  *newcomm = to_f(FERRY_F_COMM, n);
}

FERRY_FORTRAN(void, cart_coords, (F* c, F* rank, F* maxdims, F* coords, F* ierr)) {
  set_ierr(ierr, PMPI_Cart_coords(comm(c), *rank, *maxdims, coords));
}

FERRY_FORTRAN(void, cart_rank, (F* c, F* coords, F* rank, F* ierr)) {
  int r = 0;
  set_ierr(ierr, PMPI_Cart_rank(comm(c), coords, &r));
  *rank = r;
}

FERRY_FORTRAN(void, cart_shift, (F* c, F* direction, F* disp, F* source, F* dest, F* ierr)) {
  int s = 0, d = 0;
  set_ierr(ierr, PMPI_Cart_shift(comm(c), *direction, *disp, &s, &d));
  *source = s;
  *dest = d;
}

FERRY_FORTRAN(void, cart_sub, (F* c, F* remain_dims, F* newcomm, F* ierr)) {
  int ndims = 0;
  PMPI_Cartdim_get(comm(c), &ndims);
  std::vector<int> remain = ints_of_logicals(remain_dims, ndims);
  MPI_Comm n = nullptr;
  set_ierr(ierr, PMPI_Cart_sub(comm(c), remain.data(), &n));
  *newcomm = to_f(FERRY_F_COMM, n);
}

FERRY_FORTRAN(void, cart_get, (F* c, F* maxdims, F* dims, F* periods, F* coords, F* ierr)) {
  std::vector<int> p(static_cast<std::size_t>(*maxdims > 0 ? *maxdims : 0));
  set_ierr(ierr, PMPI_Cart_get(comm(c), *maxdims, dims, p.data(), coords));
  for (std::size_t i = 0; i < p.size(); ++i) periods[i] = logical(p[i]);
}

FERRY_FORTRAN(void, cartdim_get, (F* c, F* ndims, F* ierr)) {
  int n = 0;
  set_ierr(ierr, PMPI_Cartdim_get(comm(c), &n));
  *ndims = n;
}

FERRY_FORTRAN(void, dims_create, (F* nnodes, F* ndims, F* dims, F* ierr)) {
  set_ierr(ierr, PMPI_Dims_create(*nnodes, *ndims, dims));
}
