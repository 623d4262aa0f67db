// SPDX-License-Identifier: Apache-2.0
// Virtual handles. Every MPI handle the application holds is the address of one of these
// records: a predefined handle is the address of the exported object (ompi_mpi_comm_world...)
// and its record lives inside that object; a handle the application created points at a record
// on the heap. Records live in the application's memory, so a checkpoint of the process keeps
// them and the handles stay valid after a restart; only `lh` (the lower half's id for the real
// object) is rebound then. Predefined records are statically initialised: the dynamic linker
// copies them into the executable's copy-relocated objects before any code runs.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lower_half.hpp"

namespace ferry::mpi {

struct RecvBuffer;    // buffers.hpp
struct CartTopology;  // topo_calls.cpp

enum class Kind : std::uint32_t {
  comm = 1,
  datatype,
  op,
  request,
  group,
  errhandler,
  message,
  win,
  file,
  info,
};

inline constexpr std::uint32_t kLiveMagic = 0x4652'4543u;  // "FREC"

struct RecordHeader {
  std::uint32_t magic;
  Kind kind;
};

// Per-communicator traffic counters: the drain protocol compares global sent and received
// message counts, and brings every communicator's collective sequence number to the same value.
struct TrafficCounters {
  std::uint64_t sent;         // point-to-point messages posted (Send, Isend, Sendrecv)
  std::uint64_t received;     // point-to-point messages completed (Recv, Wait/Test of Irecv)
  std::uint64_t collectives;  // collectives started (Barrier, Bcast, Reduce, Allreduce, Dup, Split)
};

struct CommRecord {
  RecordHeader header;
  LhId lh;
  std::int32_t rank;
  std::int32_t size;
  std::uint32_t is_null;
  std::uint32_t created_by;  // replay log sequence number of the call that made it; 0: predefined
  std::int32_t* world_ranks;  // owned, `size` entries; nullptr for the predefined communicators
  TrafficCounters traffic;
  CartTopology* cart;         // owned; a Cartesian communicator's topology (topo_calls.cpp)
  const void* errhandler;     // MPI_ERRORS_RETURN or nullptr (MPI_ERRORS_ARE_FATAL, the default)
};

// A group is a list of world ranks; groups exist only in the upper half (a restart has nothing
// to rebuild). MPI_GROUP_EMPTY (a predefined, zero-filled object) reads as size 0.
struct GroupRecord {
  RecordHeader header;
  std::int32_t size;
  std::int32_t heap;           // 1 for a group the application made (freed by MPI_Group_free)
  std::int32_t* world_ranks;   // owned, `size` entries
};

struct TypeMap;  // datatype_map.hpp

// A predefined datatype has `map == nullptr` and its lower-half id; a derived one (heap) has
// lh == kLhNone (it never exists in the lower half: buffers.hpp packs its data) and its map.
struct DatatypeRecord {
  RecordHeader header;
  LhId lh;
  std::int32_t size;    // MPI_Type_size
  std::int64_t extent;  // bytes one element spans in a contiguous buffer
  TypeMap* map = nullptr;  // derived datatypes only (datatype_map.hpp)
};

// A predefined op has its lower-half id; a user-defined one (MPI_Op_create, heap) has
// lh == kLhNone and the application's function, run by user_ops.hpp in the application.
struct OpRecord {
  RecordHeader header;
  LhId lh;
  void* user_fn = nullptr;  // MPI_User_function*
  bool commute = false;
};

// An outstanding nonblocking operation. The lower half keeps what a restart needs to re-post it
// (the proxy's RequestEntry); the upper half keeps where its data goes: `staged` (owned) is the
// receive buffer (buffers.hpp) the lower half writes at completion, for a receive and for a
// nonblocking collective that returns data; RecvBuffer::finish() runs then.
struct RequestRecord {
  RecordHeader header;
  LhId lh;
  bool receive;       // a point-to-point receive (counted when it completes from a real source)
  CommRecord* comm;
  DatatypeRecord* type;
  void* buffer;
  std::size_t bytes;
  std::int32_t count;
  std::int32_t peer;
  std::int32_t tag;
  RecvBuffer* staged;  // owned; nullptr for a send or Ibarrier
  bool collective;     // Ibarrier/Ibcast/Iallreduce
  bool bsend;          // the request of an MPI_Bsend (buffered-send accounting: p2p_more_calls.cpp)
};

// Handles of kinds the layer does not implement yet only need to be recognisable.
struct PlainRecord {
  RecordHeader header;
};

template <class Record>
Record* as_record(const void* handle, Kind kind) {
  auto* r = static_cast<Record*>(const_cast<void*>(handle));
  if (r == nullptr || r->header.magic != kLiveMagic || r->header.kind != kind) return nullptr;
  return r;
}

}  // namespace ferry::mpi
