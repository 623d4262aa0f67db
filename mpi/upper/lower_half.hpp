// SPDX-License-Identifier: Apache-2.0
// The one narrow interface between ferry's MPI layer (upper half) and the real MPI library
// (lower half). Transport 1 reaches the library in a proxy process over shared memory
// (proxy_lower_half.cpp); a later transport calls it in-process (split process) behind the same
// interface.
//
// Rules every transport follows:
// - Handles are lower-half ids (LhId): a predefined communicator, datatype or op is its position
//   in mpi/abi/predefined.def; anything the lower half creates gets an id the lower half chooses.
//   Ids are meaningless after a restart: the upper half rebinds its virtual handles.
// - Buffers are spans of application memory (contiguous: `bytes` = count * extent). The transport
//   moves the bytes; the datatype id and count tell the real library what they are.
// - `in == nullptr` for reduce/allreduce means MPI_IN_PLACE (the data is in `out`).
// - Return values are MPI error codes (MPI_SUCCESS = 0); abort() does not return.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ferry::mpi {

using LhId = std::uint32_t;
inline constexpr LhId kLhNone = 0xffff'ffffu;

struct LhStatus {
  int source = 0;
  int tag = 0;
  int error = 0;
  std::uint64_t bytes = 0;
  bool cancelled = false;  // a receive cancelled by MPI_Cancel (MPI_Test_cancelled)
};

struct Span {
  const void* data = nullptr;
  std::size_t bytes = 0;
};

struct MutSpan {
  void* data = nullptr;
  std::size_t bytes = 0;
};

struct WorldInfo {
  int rank = 0;
  int size = 0;
  int provided = 0;
  // MPI_Type_size / extent of every predefined datatype as the real library sees them, in
  // predefined.def order (checked against the upper half's table at start-up).
  std::vector<std::pair<int, long>> datatype_sizes;
};

struct NewComm {
  LhId id = kLhNone;  // kLhNone: MPI_COMM_NULL (Comm_split with MPI_UNDEFINED)
  int rank = 0;
  int size = 0;
  std::vector<int> world_ranks;  // member i's rank in MPI_COMM_WORLD (rebuilds it at restart)
};

// The data-moving collectives with one send and one receive buffer per rank. Spans are whole
// buffers: e.g. a gather root's receive span is recv_count * extent * comm size.
enum class GatherKind { gather, scatter, allgather, alltoall };
struct CollectiveBuffers {
  Span send;        // data == nullptr: not significant here, or MPI_IN_PLACE when in_place
  int send_count = 0;
  LhId send_type = kLhNone;
  MutSpan recv;     // data == nullptr: not significant here, or MPI_IN_PLACE when in_place
  int recv_count = 0;
  LhId recv_type = kLhNone;
  bool in_place = false;  // with in_place, a non-null recv also carries input (gather root...)
};

// Gatherv, Scatterv, Allgatherv, Alltoallv: `counts` holds 4 * comm size entries, in elements of
// the buffers' types: send counts, send displacements, receive counts, receive displacements
// (zeros where not significant). send_count/recv_count: the single count of gatherv/allgatherv
// (send) and scatterv (receive).
enum class VKind { gatherv, scatterv, allgatherv, alltoallv };
struct VBuffers {
  CollectiveBuffers base;
  std::vector<int> counts;
};

// Reductions beyond reduce/allreduce. `in.data == nullptr`: MPI_IN_PLACE (the input is in `out`,
// which then spans the whole input). reduce_scatter: `recv_counts` (comm size entries);
// reduce_scatter_block: `count` per member; scan/exscan: `count`.
enum class RKind { reduce_scatter, reduce_scatter_block, scan, exscan };

// Modes of wait_some (a wait or test over several requests, served by the lower half so the
// application sleeps while it waits).
enum class WaitMode { wait_any = 0, test_any = 1, test_all = 2 };

class LowerHalf {
 public:
  virtual ~LowerHalf() = default;

  virtual int hello(int required_thread_level, WorldInfo& out) = 0;
  virtual int finalize() = 0;
  [[noreturn]] virtual void abort(LhId comm, int code) = 0;
  virtual int processor_name(std::string& out) = 0;

  virtual int send(Span data, int count, LhId type, int dest, int tag, LhId comm) = 0;
  virtual int ssend(Span data, int count, LhId type, int dest, int tag, LhId comm) = 0;
  // Blocking (MPI_Probe) or not (MPI_Iprobe: `found` tells); status.bytes is the message size.
  virtual int probe(int source, int tag, LhId comm, bool blocking, bool& found, LhStatus& status) = 0;
  virtual int recv(MutSpan data, int count, LhId type, int source, int tag, LhId comm,
                   LhStatus& status) = 0;
  virtual int sendrecv(Span send, int send_count, LhId send_type, int dest, int send_tag,
                       MutSpan recv, int recv_count, LhId recv_type, int source, int recv_tag,
                       LhId comm, LhStatus& status) = 0;
  virtual int isend(Span data, int count, LhId type, int dest, int tag, LhId comm, LhId& request) = 0;
  // `into` is where the message must land; the same span is passed again to wait/test.
  virtual int irecv(MutSpan into, int count, LhId type, int source, int tag, LhId comm,
                    LhId& request) = 0;
  // Completes `request` (its id is dead afterwards); a receive's data lands in `into`.
  virtual int wait(LhId request, MutSpan into, LhStatus& status) = 0;
  virtual int test(LhId request, MutSpan into, bool& done, LhStatus& status) = 0;

  virtual int barrier(LhId comm) = 0;
  virtual int bcast(MutSpan data, int count, LhId type, int root, LhId comm) = 0;
  virtual int reduce(const void* in, MutSpan out, int count, LhId type, LhId op, int root,
                     LhId comm, bool i_am_root) = 0;
  virtual int allreduce(const void* in, MutSpan out, int count, LhId type, LhId op, LhId comm) = 0;
  virtual int gather_like(GatherKind kind, const CollectiveBuffers& buffers, int root, LhId comm) = 0;

  virtual int gatherv_like(VKind kind, const VBuffers& buffers, int root, LhId comm) = 0;
  virtual int reduce_more(RKind kind, Span in, MutSpan out, int count, LhId type, LhId op,
                          const std::vector<int>& recv_counts, LhId comm) = 0;

  // Synchronous-mode Isend.
  virtual int issend(Span data, int count, LhId type, int dest, int tag, LhId comm, LhId& request) = 0;
  // Over `requests` (kLhNone entries are skipped): wait_any blocks until one is complete;
  // test_any/test_all do not block. `index` = the first complete one (-1: none), `complete` =
  // how many are. Completes nothing: the caller then calls wait() on what it takes.
  virtual int wait_some(const std::vector<LhId>& requests, WaitMode mode, int& index, int& complete) = 0;
  // A pending receive: cancelled if it has not matched yet (its wait/test then reports
  // status.cancelled), else it completes normally.
  virtual int cancel(LhId request) = 0;
  // A send request the application freed: the lower half completes it on its own.
  virtual int request_free(LhId request) = 0;
  // Nonblocking collectives. The result of ibcast/iallreduce lands, at wait/test, in the span
  // given there (`out_bytes` long).
  virtual int ibarrier(LhId comm, LhId& request) = 0;
  virtual int ibcast(Span data, int count, LhId type, int root, LhId comm, LhId& request) = 0;
  virtual int iallreduce(Span in, std::size_t out_bytes, int count, LhId type, LhId op, LhId comm,
                         LhId& request) = 0;

  virtual int comm_dup(LhId comm, NewComm& out) = 0;
  virtual int comm_split(LhId comm, int color, int key, NewComm& out) = 0;
  virtual int comm_free(LhId comm) = 0;
};

// The transport named by the environment the proxy gave this process (today: the proxy's
// channel). Returns nullptr and a reason when this process was not started by ferry-mpi-proxy.
std::unique_ptr<LowerHalf> connect_lower_half(std::string* why);

}  // namespace ferry::mpi
