// SPDX-License-Identifier: Apache-2.0
// Fortran handles: MPI_<Class>_c2f / MPI_<Class>_f2c and the integers ferry's Fortran bindings
// (mpi/fortran/) hand to the application. As in Open MPI, a Fortran handle is an index into a
// per-class table of C handles: predefined handles have the fixed small integers of Open MPI's
// mpif-handles.h (MPI_COMM_WORLD 0, MPI_INTEGER 7, MPI_SUM 3...), an object the application
// creates gets the lowest free index above them the first time it is converted, and keeps it
// until the bindings release it (the object was freed). The tables live in the application's
// memory like the records they point at, so a checkpoint keeps them and nothing is rebound at a
// restart. One application thread calls MPI at a time (at most MPI_THREAD_SERIALIZED): no lock.
#include "handle_f2c.hpp"

#include <cstring>
#include <functional>
#include <queue>
#include <unordered_map>
#include <vector>

#include "mpi/abi/predefined.def"
#include "state.hpp"

// The exported objects of predefined_objects.cpp, by address only (each starts with its record).
extern "C" {
#define FERRY_DECLARE(name) extern unsigned char name[];
FERRY_DECLARE(ompi_mpi_op_null) FERRY_DECLARE(ompi_mpi_op_max) FERRY_DECLARE(ompi_mpi_op_min)
FERRY_DECLARE(ompi_mpi_op_sum) FERRY_DECLARE(ompi_mpi_op_prod) FERRY_DECLARE(ompi_mpi_op_land)
FERRY_DECLARE(ompi_mpi_op_band) FERRY_DECLARE(ompi_mpi_op_lor) FERRY_DECLARE(ompi_mpi_op_bor)
FERRY_DECLARE(ompi_mpi_op_lxor) FERRY_DECLARE(ompi_mpi_op_bxor) FERRY_DECLARE(ompi_mpi_op_maxloc)
FERRY_DECLARE(ompi_mpi_op_minloc) FERRY_DECLARE(ompi_mpi_op_replace) FERRY_DECLARE(ompi_mpi_op_no_op)
FERRY_DECLARE(ompi_mpi_group_null) FERRY_DECLARE(ompi_mpi_group_empty)
FERRY_DECLARE(ompi_request_null)
FERRY_DECLARE(ompi_mpi_errhandler_null) FERRY_DECLARE(ompi_mpi_errors_are_fatal)
FERRY_DECLARE(ompi_mpi_errors_return)
FERRY_DECLARE(ompi_message_null) FERRY_DECLARE(ompi_message_no_proc)
FERRY_DECLARE(ompi_mpi_win_null) FERRY_DECLARE(ompi_mpi_file_null)
FERRY_DECLARE(ompi_mpi_info_null) FERRY_DECLARE(ompi_mpi_info_env)
#undef FERRY_DECLARE
}

namespace ferry::mpi {
namespace {

// Fortran value -> predefined datatype (mpif-handles.h; 73 is MPI_LONG_DOUBLE_COMPLEX's, which
// mpif.h does not name, measured with MPI_Type_c2f against the real library).
#define FERRY_FORTRAN_DATATYPES(X)                                                                \
  X(0, datatype_null) X(1, byte) X(2, packed) X(3, ub) X(4, lb) X(5, character) X(6, logical)     \
  X(7, integer) X(8, integer1) X(9, integer2) X(10, integer4) X(11, integer8) X(12, integer16)    \
  X(13, real) X(14, real4) X(15, real8) X(16, real16) X(17, dblprec) X(18, cplex)                 \
  X(19, complex8) X(20, complex16) X(21, complex32) X(22, dblcplex) X(23, 2real) X(24, 2dblprec)  \
  X(25, 2integer) X(26, 2cplex) X(27, 2dblcplex) X(28, real2) X(29, logical1) X(30, logical2)     \
  X(31, logical4) X(32, logical8) X(33, wchar) X(34, char) X(35, unsigned_char)                   \
  X(36, signed_char) X(37, short) X(38, unsigned_short) X(39, int) X(40, unsigned) X(41, long)    \
  X(42, unsigned_long) X(43, long_long_int) X(44, unsigned_long_long) X(45, float) X(46, double)  \
  X(47, long_double) X(48, float_int) X(49, double_int) X(50, longdbl_int) X(51, long_int)        \
  X(52, 2int) X(53, short_int) X(54, cxx_bool) X(55, cxx_cplex) X(56, cxx_dblcplex)              \
  X(57, cxx_ldblcplex) X(58, int8_t) X(59, uint8_t) X(60, int16_t) X(61, uint16_t)               \
  X(62, int32_t) X(63, uint32_t) X(64, int64_t) X(65, uint64_t) X(66, aint) X(67, offset)        \
  X(68, c_bool) X(69, c_float_complex) X(70, c_double_complex) X(71, c_long_double_complex)      \
  X(72, count) X(73, ldblcplex)

enum : std::size_t {
#define FERRY_TYPE_POSITION(name, size, extent) kPosition_##name,
  FERRY_MPI_DATATYPE_LIST(FERRY_TYPE_POSITION)
#undef FERRY_TYPE_POSITION
};

class HandleTable {
 public:
  explicit HandleTable(std::vector<const void*> predefined) : first_free_(static_cast<int>(predefined.size())) {
    for (const void* h : predefined) add(h);
  }

  int to_fortran(const void* handle) {
    if (handle == nullptr) return -1;
    if (auto it = by_handle_.find(handle); it != by_handle_.end()) return it->second;
    if (!free_.empty()) {
      int index = free_.top();
      free_.pop();
      by_index_[static_cast<std::size_t>(index)] = handle;
      by_handle_[handle] = index;
      return index;
    }
    return add(handle);
  }

  void* to_c(int value) const {
    if (value < 0 || static_cast<std::size_t>(value) >= by_index_.size()) return nullptr;
    return const_cast<void*>(by_index_[static_cast<std::size_t>(value)]);
  }

  void forget(int value) {
    if (value < first_free_ || static_cast<std::size_t>(value) >= by_index_.size()) return;
    const void*& slot = by_index_[static_cast<std::size_t>(value)];
    if (slot == nullptr) return;
    by_handle_.erase(slot);
    slot = nullptr;
    free_.push(value);
  }

 private:
  int add(const void* handle) {
    by_index_.push_back(handle);
    int index = static_cast<int>(by_index_.size() - 1);
    by_handle_.emplace(handle, index);
    return index;
  }

  int first_free_;  // predefined handles below this are never released
  std::vector<const void*> by_index_;
  std::unordered_map<const void*, int> by_handle_;
  std::priority_queue<int, std::vector<int>, std::greater<>> free_;  // lowest index reused first
};

std::vector<const void*> predefined_datatypes() {
  std::vector<const void*> out;
#define FERRY_FORTRAN_TYPE(value, name) out.push_back(predefined_type(kPosition_##name));
  FERRY_FORTRAN_DATATYPES(FERRY_FORTRAN_TYPE)
#undef FERRY_FORTRAN_TYPE
  return out;
}

HandleTable* table(int handle_class) {
  // Built on first use, in the order Open MPI numbers them.
  static HandleTable comms({world_record(), self_comm_record(), null_comm_record()});
  static HandleTable types(predefined_datatypes());
  static HandleTable ops({ompi_mpi_op_null, ompi_mpi_op_max, ompi_mpi_op_min, ompi_mpi_op_sum,
                          ompi_mpi_op_prod, ompi_mpi_op_land, ompi_mpi_op_band, ompi_mpi_op_lor,
                          ompi_mpi_op_bor, ompi_mpi_op_lxor, ompi_mpi_op_bxor, ompi_mpi_op_maxloc,
                          ompi_mpi_op_minloc, ompi_mpi_op_replace, ompi_mpi_op_no_op});
  static HandleTable requests({ompi_request_null});
  static HandleTable groups({ompi_mpi_group_null, ompi_mpi_group_empty});
  static HandleTable errhandlers({ompi_mpi_errhandler_null, ompi_mpi_errors_are_fatal, ompi_mpi_errors_return});
  static HandleTable messages({ompi_message_null, ompi_message_no_proc});
  static HandleTable wins({ompi_mpi_win_null});
  static HandleTable files({ompi_mpi_file_null});
  static HandleTable infos({ompi_mpi_info_null, ompi_mpi_info_env});
  switch (handle_class) {
    case FERRY_F_COMM: return &comms;
    case FERRY_F_DATATYPE: return &types;
    case FERRY_F_OP: return &ops;
    case FERRY_F_REQUEST: return &requests;
    case FERRY_F_GROUP: return &groups;
    case FERRY_F_ERRHANDLER: return &errhandlers;
    case FERRY_F_MESSAGE: return &messages;
    case FERRY_F_WIN: return &wins;
    case FERRY_F_FILE: return &files;
    case FERRY_F_INFO: return &infos;
    default: return nullptr;
  }
}

static_assert(FERRY_F_COMM == static_cast<int>(Kind::comm) && FERRY_F_INFO == static_cast<int>(Kind::info));

}  // namespace
}  // namespace ferry::mpi

using ferry::mpi::table;

extern "C" FERRY_EXPORT int ferry_mpi_handle_c2f(int handle_class, const void* handle) {
  auto* t = table(handle_class);
  return t == nullptr ? -1 : t->to_fortran(handle);
}

extern "C" FERRY_EXPORT void* ferry_mpi_handle_f2c(int handle_class, int value) {
  auto* t = table(handle_class);
  return t == nullptr ? nullptr : t->to_c(value);
}

extern "C" FERRY_EXPORT void ferry_mpi_handle_forget(int handle_class, int value) {
  if (auto* t = table(handle_class)) t->forget(value);
}

#define FERRY_C2F_F2C(Class, type, handle_class)                                         \
  FERRY_MPI_FUNCTION(MPI_Fint, Class##_c2f, (type handle)) {                             \
    return ferry_mpi_handle_c2f(handle_class, handle);                                   \
  }                                                                                      \
  FERRY_MPI_FUNCTION(type, Class##_f2c, (MPI_Fint value)) {                              \
    return static_cast<type>(ferry_mpi_handle_f2c(handle_class, value));                 \
  }
FERRY_C2F_F2C(Comm, MPI_Comm, FERRY_F_COMM)
FERRY_C2F_F2C(Type, MPI_Datatype, FERRY_F_DATATYPE)
FERRY_C2F_F2C(Op, MPI_Op, FERRY_F_OP)
FERRY_C2F_F2C(Request, MPI_Request, FERRY_F_REQUEST)
FERRY_C2F_F2C(Group, MPI_Group, FERRY_F_GROUP)
FERRY_C2F_F2C(Errhandler, MPI_Errhandler, FERRY_F_ERRHANDLER)
FERRY_C2F_F2C(Message, MPI_Message, FERRY_F_MESSAGE)
FERRY_C2F_F2C(Win, MPI_Win, FERRY_F_WIN)
FERRY_C2F_F2C(File, MPI_File, FERRY_F_FILE)
FERRY_C2F_F2C(Info, MPI_Info, FERRY_F_INFO)
#undef FERRY_C2F_F2C

// A Fortran status is MPI_STATUS_SIZE (6) INTEGERs with the C struct's layout.
static_assert(sizeof(MPI_Status) == 6 * sizeof(MPI_Fint));
FERRY_MPI_FUNCTION(int, Status_c2f, (const MPI_Status* c, MPI_Fint* f)) {
  std::memcpy(f, c, sizeof *c);
  return MPI_SUCCESS;
}
FERRY_MPI_FUNCTION(int, Status_f2c, (const MPI_Fint* f, MPI_Status* c)) {
  std::memcpy(c, f, sizeof *c);
  return MPI_SUCCESS;
}
