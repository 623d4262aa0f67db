// SPDX-License-Identifier: Apache-2.0
// Fortran bindings: derived datatypes and user-defined reduction operations (fortran.hpp
// explains the conversions). INTEGER(KIND=MPI_ADDRESS_KIND) arguments are 8 bytes, the size of
// MPI_Aint, and pass as they are; arrays of datatypes are converted element by element.
//
// User ops: a Fortran reduction function is called as f(invec, inoutvec, len, datatype) with
// an INTEGER datatype, while ferry's C MPI_Op_create takes a C function that receives an
// MPI_Datatype*. MPI_Op_create therefore gives the C side one of kOpSlots trampolines; each
// knows its slot, which holds the Fortran function, and converts the datatype before calling it.
// The slots live in the application's memory, so they survive a checkpoint with the op.
#include <array>
#include <cstdio>
#include <utility>
#include <vector>

#include "fortran.hpp"

using namespace ferry::fortran;

namespace {

// `t` by reference: it is read after the call that is the argument before it has set it.
void new_type(F* out, int rc, const MPI_Datatype& t, F* ierr) {
  set_ierr(ierr, rc);
  *out = to_f(FERRY_F_DATATYPE, t);
}

}  // namespace

FERRY_FORTRAN(void, type_contiguous, (F* count, F* old, F* out, F* ierr)) {
  MPI_Datatype t = nullptr;
  new_type(out, PMPI_Type_contiguous(*count, type(old), &t), t, ierr);
}

FERRY_FORTRAN(void, type_vector, (F* count, F* blocklen, F* stride, F* old, F* out, F* ierr)) {
  MPI_Datatype t = nullptr;
  new_type(out, PMPI_Type_vector(*count, *blocklen, *stride, type(old), &t), t, ierr);
}

// MPI-1's MPI_TYPE_HVECTOR takes an INTEGER stride in bytes; MPI_TYPE_CREATE_HVECTOR an address.
FERRY_FORTRAN(void, type_hvector, (F* count, F* blocklen, F* stride, F* old, F* out, F* ierr)) {
  MPI_Datatype t = nullptr;
  new_type(out, PMPI_Type_create_hvector(*count, *blocklen, *stride, type(old), &t), t, ierr);
}

FERRY_FORTRAN(void, type_create_hvector, (F* count, F* blocklen, MPI_Aint* stride, F* old, F* out, F* ierr)) {
  MPI_Datatype t = nullptr;
  new_type(out, PMPI_Type_create_hvector(*count, *blocklen, *stride, type(old), &t), t, ierr);
}

FERRY_FORTRAN(void, type_indexed, (F* count, F* blocklens, F* displs, F* old, F* out, F* ierr)) {
  MPI_Datatype t = nullptr;
  new_type(out, PMPI_Type_indexed(*count, blocklens, displs, type(old), &t), t, ierr);
}

FERRY_FORTRAN(void, type_create_hindexed, (F* count, F* blocklens, MPI_Aint* displs, F* old, F* out, F* ierr)) {
  MPI_Datatype t = nullptr;
  new_type(out, PMPI_Type_create_hindexed(*count, blocklens, displs, type(old), &t), t, ierr);
}

FERRY_FORTRAN(void, type_create_indexed_block, (F* count, F* blocklen, F* displs, F* old, F* out, F* ierr)) {
  MPI_Datatype t = nullptr;
  new_type(out, PMPI_Type_create_indexed_block(*count, *blocklen, displs, type(old), &t), t, ierr);
}

FERRY_FORTRAN(void, type_create_struct, (F* count, F* blocklens, MPI_Aint* displs, F* types, F* out, F* ierr)) {
  std::vector<MPI_Datatype> c(static_cast<std::size_t>(*count > 0 ? *count : 0));
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = type(&types[i]);
  MPI_Datatype t = nullptr;
  new_type(out, PMPI_Type_create_struct(*count, blocklens, displs, c.data(), &t), t, ierr);
}

FERRY_FORTRAN(void, type_create_subarray, (F* ndims, F* sizes, F* subsizes, F* starts, F* order, F* old, F* out,
                                           F* ierr)) {
  MPI_Datatype t = nullptr;
  // MPI_ORDER_C (0) and MPI_ORDER_FORTRAN (1) have the same values in Fortran and C.
  new_type(out, PMPI_Type_create_subarray(*ndims, sizes, subsizes, starts, *order, type(old), &t), t, ierr);
}

FERRY_FORTRAN(void, type_create_resized, (F* old, MPI_Aint* lb, MPI_Aint* extent, F* out, F* ierr)) {
  MPI_Datatype t = nullptr;
  new_type(out, PMPI_Type_create_resized(type(old), *lb, *extent, &t), t, ierr);
}

FERRY_FORTRAN(void, type_dup, (F* old, F* out, F* ierr)) {
  MPI_Datatype t = nullptr;
  new_type(out, PMPI_Type_dup(type(old), &t), t, ierr);
}

FERRY_FORTRAN(void, type_commit, (F* t, F* ierr)) {
  MPI_Datatype h = type(t);
  set_ierr(ierr, PMPI_Type_commit(&h));
}

FERRY_FORTRAN(void, type_free, (F* t, F* ierr)) {
  MPI_Datatype h = type(t);
  set_ierr(ierr, PMPI_Type_free(&h));
  update_handle(FERRY_F_DATATYPE, t, h);
}

FERRY_FORTRAN(void, type_size, (F* t, F* size, F* ierr)) {
  int s = 0;
  set_ierr(ierr, PMPI_Type_size(type(t), &s));
  *size = s;
}

FERRY_FORTRAN(void, type_get_extent, (F* t, MPI_Aint* lb, MPI_Aint* extent, F* ierr)) {
  set_ierr(ierr, PMPI_Type_get_extent(type(t), lb, extent));
}

// ---- user-defined operations ----------------------------------------------------------------

namespace {

using FortranUserFunction = void(void* in, void* inout, F* len, F* datatype);

constexpr std::size_t kOpSlots = 64;

struct OpSlot {
  FortranUserFunction* fn = nullptr;
  F op = -1;  // the Fortran integer of the op using the slot
};
std::array<OpSlot, kOpSlots> op_slots;

template <std::size_t K>
void trampoline(void* in, void* inout, int* len, MPI_Datatype* dt) {
  F fdt = to_f(FERRY_F_DATATYPE, *dt);
  op_slots[K].fn(in, inout, len, &fdt);
}

template <std::size_t... K>
constexpr std::array<MPI_User_function*, kOpSlots> make_trampolines(std::index_sequence<K...>) {
  return {&trampoline<K>...};
}
constexpr std::array<MPI_User_function*, kOpSlots> trampolines = make_trampolines(std::make_index_sequence<kOpSlots>{});

}  // namespace

FERRY_FORTRAN(void, op_create, (FortranUserFunction * fn, F* commute, F* out, F* ierr)) {
  std::size_t k = 0;
  while (k < kOpSlots && op_slots[k].fn != nullptr) ++k;
  if (k == kOpSlots) {
    std::fprintf(stderr, "ferry: MPI_Op_create: more than %zu user-defined operations from Fortran at once\n",
                 kOpSlots);
    std::fflush(stderr);
    F world = 0;
    PMPI_Abort(comm(&world), 69);
    return;
  }
  MPI_Op o = nullptr;
  int rc = PMPI_Op_create(trampolines[k], logical(commute) ? 1 : 0, &o);
  set_ierr(ierr, rc);
  *out = to_f(FERRY_F_OP, o);
  if (rc == MPI_SUCCESS) op_slots[k] = {fn, *out};
}

FERRY_FORTRAN(void, op_free, (F* o, F* ierr)) {
  F before = *o;
  MPI_Op h = op(o);
  set_ierr(ierr, PMPI_Op_free(&h));
  update_handle(FERRY_F_OP, o, h);
  if (*o != before) {
    for (OpSlot& s : op_slots) {
      if (s.op == before) s = {};
    }
  }
}
