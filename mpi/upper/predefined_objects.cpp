// SPDX-License-Identifier: Apache-2.0
// The data objects of libmpi.so.40 that mpi.h declares (openmpi-abi.md §2.1): same names, same
// sizes, initialised (.data) so that the copy relocations of a PIE application carry our records
// into its copies. Each object starts with the upper-half record of that predefined handle; the
// rest of the object is padding. Never bind these locally: the library's own accesses must go
// through the GOT to the executable's copy.
#include "mpi/abi/predefined.def"
#include "state.hpp"

namespace ferry::mpi {
namespace {

template <class Record, std::size_t Size>
struct Object {
  Record record;
  unsigned char pad[Size - sizeof(Record)];
};

enum : LhId {
#define FERRY_TYPE_ID(name, size, extent) kType_##name,
  FERRY_MPI_DATATYPE_LIST(FERRY_TYPE_ID)
#undef FERRY_TYPE_ID
};
enum : LhId {
#define FERRY_OP_ID(name) kOp_##name,
  FERRY_MPI_OP_LIST(FERRY_OP_ID)
#undef FERRY_OP_ID
};
enum : LhId {
#define FERRY_COMM_ID(name) kComm_##name,
  FERRY_MPI_COMM_LIST(FERRY_COMM_ID)
#undef FERRY_COMM_ID
};

}  // namespace

using CommObject = Object<CommRecord, FERRY_OMPI_COMM_OBJECT_SIZE>;
using TypeObject = Object<DatatypeRecord, FERRY_OMPI_DATATYPE_OBJECT_SIZE>;
using OpObject = Object<OpRecord, FERRY_OMPI_OP_OBJECT_SIZE>;
template <std::size_t Size>
using PlainObject = Object<PlainRecord, Size>;

}  // namespace ferry::mpi

using namespace ferry::mpi;

#define FERRY_PLAIN(kind) {{kLiveMagic, Kind::kind}}

extern "C" {

#define FERRY_DEFINE_COMM(name) \
  FERRY_EXPORT CommObject ompi_mpi_comm_##name = {{{kLiveMagic, Kind::comm}, kComm_##name, 0, 0, 0, 0, nullptr, {}}, {}};
FERRY_MPI_COMM_LIST(FERRY_DEFINE_COMM)
#undef FERRY_DEFINE_COMM

#define FERRY_DEFINE_TYPE(name, size, extent) \
  FERRY_EXPORT TypeObject ompi_mpi_##name = {{{kLiveMagic, Kind::datatype}, kType_##name, size, extent}, {}};
FERRY_MPI_DATATYPE_LIST(FERRY_DEFINE_TYPE)
#undef FERRY_DEFINE_TYPE

#define FERRY_DEFINE_OP(name) \
  FERRY_EXPORT OpObject ompi_mpi_op_##name = {{{kLiveMagic, Kind::op}, kOp_##name}, {}};
FERRY_MPI_OP_LIST(FERRY_DEFINE_OP)
#undef FERRY_DEFINE_OP

FERRY_EXPORT PlainObject<FERRY_OMPI_GROUP_OBJECT_SIZE> ompi_mpi_group_empty = {FERRY_PLAIN(group), {}};
FERRY_EXPORT PlainObject<FERRY_OMPI_GROUP_OBJECT_SIZE> ompi_mpi_group_null = {FERRY_PLAIN(group), {}};
FERRY_EXPORT PlainObject<FERRY_OMPI_REQUEST_OBJECT_SIZE> ompi_request_null = {FERRY_PLAIN(request), {}};
FERRY_EXPORT PlainObject<FERRY_OMPI_MESSAGE_OBJECT_SIZE> ompi_message_null = {FERRY_PLAIN(message), {}};
FERRY_EXPORT PlainObject<FERRY_OMPI_MESSAGE_OBJECT_SIZE> ompi_message_no_proc = {FERRY_PLAIN(message), {}};
FERRY_EXPORT PlainObject<FERRY_OMPI_ERRHANDLER_OBJECT_SIZE> ompi_mpi_errhandler_null = {FERRY_PLAIN(errhandler), {}};
FERRY_EXPORT PlainObject<FERRY_OMPI_ERRHANDLER_OBJECT_SIZE> ompi_mpi_errors_are_fatal = {FERRY_PLAIN(errhandler), {}};
FERRY_EXPORT PlainObject<FERRY_OMPI_ERRHANDLER_OBJECT_SIZE> ompi_mpi_errors_return = {FERRY_PLAIN(errhandler), {}};
FERRY_EXPORT PlainObject<FERRY_OMPI_WIN_OBJECT_SIZE> ompi_mpi_win_null = {FERRY_PLAIN(win), {}};
FERRY_EXPORT PlainObject<FERRY_OMPI_FILE_OBJECT_SIZE> ompi_mpi_file_null = {FERRY_PLAIN(file), {}};
FERRY_EXPORT PlainObject<FERRY_OMPI_INFO_OBJECT_SIZE> ompi_mpi_info_null = {FERRY_PLAIN(info), {}};
FERRY_EXPORT PlainObject<FERRY_OMPI_INFO_OBJECT_SIZE> ompi_mpi_info_env = {FERRY_PLAIN(info), {}};
FERRY_EXPORT MPI_Fint* MPI_F_STATUS_IGNORE = nullptr;
FERRY_EXPORT MPI_Fint* MPI_F_STATUSES_IGNORE = nullptr;

}  // extern "C"

namespace ferry::mpi {

static_assert(sizeof(CommObject) == FERRY_OMPI_COMM_OBJECT_SIZE);
static_assert(sizeof(TypeObject) == FERRY_OMPI_DATATYPE_OBJECT_SIZE);
static_assert(sizeof(OpObject) == FERRY_OMPI_OP_OBJECT_SIZE);

CommRecord* world_record() { return &ompi_mpi_comm_world.record; }
CommRecord* self_comm_record() { return &ompi_mpi_comm_self.record; }
CommRecord* null_comm_record() { return &ompi_mpi_comm_null.record; }
PlainRecord* null_request_record() { return &ompi_request_null.record; }

// The upper half's size table, in predefined.def order (checked against the real library).
std::size_t predefined_type_count() {
  return 0
#define FERRY_COUNT(name, size, extent) +1
         FERRY_MPI_DATATYPE_LIST(FERRY_COUNT)
#undef FERRY_COUNT
      ;
}
const DatatypeRecord* predefined_type(std::size_t index) {
  static const DatatypeRecord* const table[] = {
#define FERRY_ADDR(name, size, extent) &ompi_mpi_##name.record,
      FERRY_MPI_DATATYPE_LIST(FERRY_ADDR)
#undef FERRY_ADDR
  };
  return table[index];
}
const char* predefined_type_name(std::size_t index) {
  static const char* const names[] = {
#define FERRY_NAME(name, size, extent) "MPI type ompi_mpi_" #name,
      FERRY_MPI_DATATYPE_LIST(FERRY_NAME)
#undef FERRY_NAME
  };
  return names[index];
}

}  // namespace ferry::mpi
