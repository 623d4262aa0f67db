// SPDX-License-Identifier: Apache-2.0
// The shared-memory channel between one application process (upper half) and its proxy (the
// rank's real MPI process): the memory layout, the call/reply records, and the doorbells.
//
// Algorithm: one call at a time (the upper half serialises its threads). The upper half writes
// `call`, then bumps `request.seq`; the proxy waits for that value, runs the call against the
// real MPI library, writes `reply`, bumps `response.seq`. A waiter spins a bounded number of
// PAUSE iterations, then yields a few times, then sleeps in FUTEX_WAIT after announcing itself
// in `sleeping`; a poster calls FUTEX_WAKE only when the peer announced it sleeps (measured in
// shared/reference/lowerhalf/shmring.c: ~90 ns a round trip when both sides have a core,
// 4-150 us when one side has to be woken).
//
//   +-----------+----------+------------------+----------+--------------+-------------------+
//   | Header    | request  | Call (256 B)     | response | Reply        | data (kDataBytes) |
//   | magic,... | doorbell |                  | doorbell |              | payloads          |
//   +-----------+----------+------------------+----------+--------------+-------------------+
//
// Payloads: a buffer argument is described by a BufRef. `shm` means it was staged in the data
// area at `at` (offset); `app` means it stays in the application's memory at address `at` and
// the proxy moves it with process_vm_readv/process_vm_writev (cross-memory attach: the proxy is
// the application's parent). Buffers that fit in the data area are staged there; larger ones
// use cross-memory attach. Both sides are built from this one header: the layout is not a wire
// format and is versioned by kVersion only.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ferry::mpi::channel {

inline constexpr std::uint64_t kMagic = 0x4950'4d59'5252'4546ULL;  // "FERRYMPI"
inline constexpr std::uint32_t kVersion = 3;
// Large enough for the 1 MiB messages that dominate bandwidth-bound codes (in and out of one
// Sendrecv); pages are only touched up to the largest payload actually staged.
inline constexpr std::size_t kDataBytes = 4u << 20;
// Environment variable through which the proxy hands the channel to the application:
// "<proxy pid>:<fd>". The memfd is inherited at <fd>; if the application closed it before
// MPI_Init, the upper half opens /proc/<proxy pid>/fd/<fd> instead (same user).
inline constexpr const char* kChannelEnv = "FERRY_MPI_CHANNEL";

// Argument slots per call (h = lower-half ids, i = integers, buf = buffers; "->" is the reply):
//   hello       i0 required thread level -> i0 world rank, i1 world size, i2 provided;
//               data area: {int32 size, int32 pad, int64 extent} per predefined datatype
//   finalize    -
//   abort       h0 comm, i0 error code (does not return)
//   processor_name -> i0 length; data area: the name
//   send/isend  buf0 data (in), i0 count, h0 type, i1 dest, i2 tag, h1 comm -> (isend) h0 request
//   recv        buf0 data (out), i0 count, h0 type, i1 source, i2 tag, h1 comm -> status, written
//   sendrecv    buf0/i0/h0/i1/i2 as send; buf1 (out), i3 count, h2 type, i4 source, i5 tag; h1 comm
//   irecv       buf0.bytes span of the receive buffer (nothing staged), i0/h0/i1/i2/h1 as recv -> h0
//   wait/test   h0 request, buf0 where a receive's data goes -> (test) i0 done, status, written
//   barrier     h1 comm
//   bcast       buf0 data (in at the root, out elsewhere), i0 count, h0 type, i1 root, h1 comm
//   reduce/allreduce buf0 input (none: MPI_IN_PLACE), buf1 output (in-out when in place; none off
//               the root for reduce), i0 count, h0 type, h2 op, i1 root, h1 comm
//   comm_dup    h1 comm -> h0 new id, i0 rank, i1 size; data area: members' world ranks
//   comm_split  h1 comm, i0 color, i1 key -> as comm_dup (h0 = 0xffffffff: MPI_COMM_NULL)
//   comm_free   h1 comm
//   ssend       as send
//   probe       i1 source, i2 tag, h1 comm, i0 blocking -> i0 found, status
//   gather/scatter/allgather/alltoall  buf0 send (in), i0 count, h0 type; buf1 receive (out, or
//               in-out with i6); i3 count, h2 type; i1 root; h1 comm; i6 in place: a `none`
//               buffer is then MPI_IN_PLACE (else not significant: NULL)
//   gatherv/scatterv/allgatherv/alltoallv  as gather, plus buf2 int32 counts (4 * i7: send counts,
//               send displacements, receive counts, receive displacements), i7 comm size
//   reduce_scatter/reduce_scatter_block/scan/exscan  buf0 input (none: in place), buf1 output
//               (in-out), buf2 int32 receive counts (reduce_scatter, i7 entries), i0 count, h0 type,
//               h2 op, h1 comm, i7 comm size
//   issend      as isend
//   wait_some   buf0 u32 request ids (0xffffffff: skip), i0 n, i1 mode (0 wait any, 1 test any,
//               2 test all) -> i0 first complete index (-1 none), i1 how many are complete
//   cancel/request_free  h0 request
//   ibarrier    h1 comm -> h0 request
//   ibcast      buf0 data (whole buffer, in), i0 count, h0 type, i1 root, h1 comm -> h0 request
//   iallreduce  buf0 input, buf1.bytes output size (nothing staged), i0 count, h0 type, h2 op,
//               h1 comm -> h0 request
enum class Op : std::uint32_t {
  hello = 1,
  finalize,
  abort,
  processor_name,
  send,
  recv,
  sendrecv,
  isend,
  irecv,
  wait,
  test,
  barrier,
  bcast,
  reduce,
  allreduce,
  comm_dup,
  comm_split,
  comm_free,
  ssend,
  probe,
  gather,
  scatter,
  allgather,
  alltoall,
  gatherv,
  scatterv,
  allgatherv,
  alltoallv,
  reduce_scatter,
  reduce_scatter_block,
  scan,
  exscan,
  issend,
  wait_some,
  cancel,
  request_free,
  ibarrier,
  ibcast,
  iallreduce,
};

enum class Where : std::uint32_t { none = 0, shm = 1, app = 2 };

struct BufRef {
  std::uint64_t at = 0;     // offset in the data area (shm) or address in the application (app)
  std::uint64_t bytes = 0;  // span in bytes
  Where where = Where::none;
  std::uint32_t pad = 0;
};

// Argument slots are named per call in calls.md-style comments at each use; `h` holds
// lower-half ids (comm, datatype, op, request), `i` small integers (count, peer, tag, root...).
struct Call {
  Op op{};
  std::int32_t pad = 0;
  std::int32_t i[10] = {};
  std::uint32_t h[6] = {};
  BufRef buf[3] = {};
};

struct WireStatus {
  std::int32_t source = 0;
  std::int32_t tag = 0;
  std::int32_t error = 0;
  std::int32_t cancelled = 0;  // a receive cancelled by MPI_Cancel
  std::uint64_t bytes = 0;
};

struct Reply {
  std::int32_t rc = 0;
  std::int32_t i[7] = {};
  std::uint32_t h[2] = {};
  WireStatus status{};
  std::uint64_t written = 0;  // bytes of the receive buffer the call filled (recv, wait, test)
};

struct alignas(64) Doorbell {
  alignas(64) std::atomic<std::uint32_t> seq{0};
  alignas(64) std::atomic<std::uint32_t> sleeping{0};
};

// proxy_pid/proxy_start identify the serving proxy (host pid and its start time, field 22 of
// /proc/PID/stat): the upper half's liveness check, valid from inside a PID namespace too.
// `moved` (with relay_*) is written by a *new* proxy into a restored application's copy of an
// old channel: the upper half then attaches to /proc/<relay_pid>/fd/<relay_fd> and re-posts the
// call it was waiting on (see upper/proxy_lower_half.cpp and proxy/restart.cpp).
struct Header {
  std::uint64_t magic = 0;
  std::uint32_t version = 0;
  std::int32_t proxy_pid = 0;
  std::uint64_t data_bytes = 0;
  std::uint64_t proxy_start = 0;
  std::int32_t relay_pid = 0;
  std::int32_t relay_fd = -1;
  std::atomic<std::uint32_t> moved{0};
  std::uint32_t pad = 0;
};

struct alignas(4096) Layout {
  Header header;
  Doorbell request;
  alignas(64) Call call;
  Doorbell response;
  alignas(64) Reply reply;
  alignas(4096) unsigned char data[1];  // kDataBytes in the mapping
};

inline constexpr std::size_t kMappingBytes = offsetof(Layout, data) + kDataBytes;

// How long to spin, then to yield the CPU in a loop, before sleeping in FUTEX_WAIT. Spinning
// only pays when the two ends run on different cores; when they share one (mpirun binds a rank,
// and so its proxy and application, to one core by default) every spin or yield delays the very
// peer being waited for. Measured here, 2 ranks bound to one core each, 8-byte ping-pong:
// sleep at once 12-15 us, spin 2000 then sleep 90 us, spin/yield ~ms. So the default is to sleep
// at once unless this rank may use at least 2 cores and the node has 2 cores per local rank
// (then spin 2000 iterations). FERRY_MPI_SPIN (iterations) and FERRY_MPI_YIELD_US override.
struct WaitPolicy {
  std::uint32_t spins = 0;
  std::uint32_t yield_us = 0;
  static WaitPolicy from_env();
};

// Waits until bell.seq == want. `still_alive` is polled each time a futex sleep times out
// (100 ms); when it returns false the wait gives up and returns false.
template <class StillAlive>
bool wait_for(Doorbell& bell, std::uint32_t want, const WaitPolicy& policy, StillAlive&& still_alive);
void post(Doorbell& bell, std::uint32_t value);

// Proxy side: a new memfd-backed mapping, initialised. Returns nullptr with errno set on failure.
Layout* create(int* fd_out);
// Start time of process `pid` (field 22 of /proc/PID/stat, clock ticks since boot), 0 if gone.
std::uint64_t process_start_time(int pid);
// Application side: maps the memfd inherited from the proxy and checks magic/version.
// Returns nullptr and a reason on failure.
Layout* attach(int fd, std::string* why);
void detach(Layout* layout);

// ---- implementation of the templates ----------------------------------------------------------
bool futex_wait_100ms(std::atomic<std::uint32_t>& word, std::uint32_t seen);
// Sleeps while word == seen, at most `ns`; false on timeout.
bool futex_wait_for(std::atomic<std::uint32_t>& word, std::uint32_t seen, std::uint64_t ns);
void futex_wake_one(std::atomic<std::uint32_t>& word);
void cpu_relax_yield();
std::uint64_t monotonic_ns();

template <class StillAlive>
bool wait_for(Doorbell& bell, std::uint32_t want, const WaitPolicy& policy, StillAlive&& still_alive) {
  for (std::uint32_t n = 0; n < policy.spins; ++n) {
    if (bell.seq.load(std::memory_order_acquire) == want) return true;
    __builtin_ia32_pause();
  }
  if (policy.yield_us != 0) {
    const std::uint64_t until = monotonic_ns() + std::uint64_t{policy.yield_us} * 1000;
    for (std::uint32_t n = 1;; ++n) {
      if (bell.seq.load(std::memory_order_acquire) == want) return true;
      cpu_relax_yield();
      if (n % 16 == 0 && monotonic_ns() > until) break;
    }
  }
  for (;;) {
    std::uint32_t seen = bell.seq.load(std::memory_order_acquire);
    if (seen == want) return true;
    bell.sleeping.store(1, std::memory_order_seq_cst);
    seen = bell.seq.load(std::memory_order_seq_cst);
    if (seen == want) {
      bell.sleeping.store(0, std::memory_order_relaxed);
      return true;
    }
    bool woken = futex_wait_100ms(bell.seq, seen);
    bell.sleeping.store(0, std::memory_order_relaxed);
    if (!woken && !still_alive()) return false;
  }
}

}  // namespace ferry::mpi::channel
