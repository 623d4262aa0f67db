// SPDX-License-Identifier: Apache-2.0
// The proxy's call server: runs each channel::Call against the real Open MPI library and fills
// the channel::Reply. Owns the real handles behind the lower-half ids it gives out, and the state
// a checkpoint must carry over: messages drained from the network, completed requests, and the
// per-communicator collective counts.
//
// No call ever blocks inside the real library for a reason the proxy cannot see end: the
// application's call in progress (at most one, the channel serialises them) is an `Active`
// operation that the proxy's loop advances with MPI_Test/MPI_Iprobe, so the loop keeps answering
// checkpoint requests while the application waits. Blocking point-to-point calls are their
// nonblocking forms. Every collective (and communicator creation/free, and MPI_Finalize) starts
// with an MPI_Ibarrier on its communicator; only once that barrier completes (every member has
// called the collective, so every member is committed to it) does the proxy start the real
// collective, which then cannot wait for a rank that is still computing. The real collective is
// its nonblocking form (MPI_Iallreduce...), advanced by MPI_Test like the rest: a member whose
// proxy is stopped inside it (SIGSTOP, a hung node) cannot hold the other proxies inside the
// library, so rank 0 still answers its front end and names the rank that does not answer.
// Only communicator creation (MPI_Comm_dup/split) stays a blocking call. A checkpoint
// therefore finds each communicator's collective either not started by some member (the barrier
// is pending everywhere it was entered, and is simply re-issued after a restart) or entered by
// every member (the proxies finish it before the dump) - never half done (checkpoint.cpp).
//
// Drained messages (received during a checkpoint's drain, or restored) are matched before the
// network by every receive and probe, in arrival order, so MPI's non-overtaking order holds.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "app_memory.hpp"
#include "mpi/channel/channel.hpp"

namespace ferry::mpi::proxy {

struct CommEntry {
  MPI_Comm real = MPI_COMM_NULL;  // MPI_COMM_NULL: a free slot
  std::uint64_t key = 0;          // the same on every member (derived from parent, sequence, color)
  std::uint64_t entered = 0;      // collectives the application started on it
  std::vector<int> world_ranks;   // members in rank order
  // A duplicate of `real` that carries only the barriers every collective starts with. The real
  // collectives alone go on `real`, in collective-number order: a nonblocking collective's barrier
  // and its real operation are started at different times, and MPI matches the collectives of one
  // communicator by the order each process starts them, so barriers must not be among them.
  MPI_Comm barriers = MPI_COMM_NULL;
};

struct Drained {
  std::uint32_t comm = 0;
  int source = 0;
  int tag = 0;
  std::vector<char> packed;  // received as MPI_PACKED; unpacked with the receiver's datatype
};

// A nonblocking operation: a send, a receive, or a nonblocking collective (`coll` != 0: its
// channel::Op). A nonblocking collective is collective number `seq` on its communicator; it
// starts (stage 0) with an MPI_Ibarrier like every collective, and only once that completed does
// the proxy start the real nonblocking collective (stage 1), after every earlier one of the same
// communicator, so the real operations are started in the same order on every member.
struct RequestEntry {
  bool live = false;
  bool receive = false;
  bool done = false;  // completed (during a drain, or from a drained message); result held here
  bool orphan = false;  // freed by the application (MPI_Request_free): dropped once complete
  MPI_Request real = MPI_REQUEST_NULL;
  std::vector<char> buffer;  // send: the payload copy; receive/ibcast/iallreduce: the result
  std::vector<char> input;   // iallreduce: the input
  std::uint32_t type = 0, comm = 0;
  int count = 0, peer = 0, tag = 0;
  std::uint64_t order = 0;  // posting order (re-posting after a restart keeps it)
  channel::WireStatus status{};
  std::uint32_t coll = 0;   // channel::Op of a nonblocking collective, 0 for point-to-point
  int stage = 0;            // nonblocking collective: 0 barrier pending, 1 real operation started
  int root = 0;
  std::uint32_t op = 0;
  std::uint64_t seq = 0;    // its collective number on the communicator
};

// Per communicator key: how many collectives a member entered; what a checkpoint agrees on.
using EnteredCount = std::pair<std::uint64_t, std::uint64_t>;

class Server {
 public:
  explicit Server(channel::Layout* layout);
  void set_app(pid_t app) { memory_.set_app(app); }

  // The application posted `call` (number `seq`). Returns true when it completed at once
  // (`reply` filled); else it is the active operation, advanced by progress().
  bool start(std::uint32_t seq, const channel::Call& call, channel::Reply& reply);
  // Advances the active operation; true when it completed (`reply` filled).
  bool progress(channel::Reply& reply);
  bool busy() const { return active_.busy; }
  std::uint32_t active_seq() const { return active_.seq; }
  // True after MPI_Finalize was served (the application is done with MPI).
  bool finalized() const { return finalized_; }
  // True once the application has entered MPI_Finalize (its world barrier is pending or done).
  bool finishing() const { return finishing_; }

  // ---- checkpoint support (checkpoint.cpp) ----
  // Tests every outstanding request; completed ones keep their result for the application.
  void progress_requests();
  // Receives every message waiting unmatched on a live communicator into the drained queue.
  void drain_network();
  std::int64_t sent() const { return sent_; }
  std::int64_t received() const { return received_; }
  // The collective counts of live communicators (world and user ones) and freed ones.
  std::vector<EnteredCount> entered_counts() const;
  // Members' world ranks of live communicator `key` (empty if this rank has none).
  const CommEntry* comm_by_key(std::uint64_t key) const;
  std::vector<std::uint64_t> live_keys() const;
  // True when nothing of this rank still needs the network: no send outstanding and no active
  // collective that every member entered (`target`: the minimum entered count per key).
  bool settled(const std::vector<EnteredCount>& targets) const;

  // The state a restart needs (see checkpoint.cpp for the file format).
  std::string serialize() const;
  // Restores it into a fresh lower half: communicators rebuilt from world ranks (same ids),
  // pending receives re-posted in their order, completed requests and drained messages kept.
  bool restore(const std::string& bytes, std::string* why);

 private:
  struct Active {
    // collective: the barrier completed and the real collective runs as its nonblocking form
    // (req[1]); `finish` writes its result back into the application once it completes.
    enum class Stage { barrier, collective, send, recv, sendrecv, probe, wait, wait_some };
    bool busy = false;
    std::uint32_t seq = 0;
    channel::Call call{};
    Stage stage = Stage::barrier;
    MPI_Request req[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    bool send_done = false;
    bool recv_done = false;
    void* landing = nullptr;
    MPI_Status st{};
    channel::Reply prepared{};  // sendrecv: the receive's result while the send finishes
    std::vector<std::uint32_t> ids;  // wait_some: the request ids
    int mode = 0;
    std::function<int()> finish;     // collective: write-back, returns the call's rc
  };
  // run_collective()'s result when the real collective was started and is now in flight.
  static constexpr int kPending = -1;
  // Starts the nonblocking form `start` of a collective (it fills active_.req[1]); on success
  // the active call waits for it (kPending) and `finish` runs at its completion.
  int begin_collective(int rc, std::function<int()> finish);

  MPI_Comm comm(std::uint32_t id) const;
  MPI_Datatype type(std::uint32_t id) const;
  MPI_Op op(std::uint32_t id) const;
  std::uint32_t add_comm(MPI_Comm c, std::uint64_t key);
  // MPI_Comm_dup of the entry's communicator into `barriers` (collective over its members).
  static bool make_barrier_comm(CommEntry& e);
  void describe_new_comm(MPI_Comm c, std::uint32_t id, channel::Reply& reply);
  std::vector<int> world_ranks_of(MPI_Comm c) const;
  std::uint32_t add_request(RequestEntry r);
  int deliver_request(std::uint32_t id, const channel::BufRef& into, channel::Reply& reply);
  void note_request_done(RequestEntry& r, const MPI_Status& st);
  // Moves a request on (tests it; a nonblocking collective also goes from its barrier to its real
  // operation); true when it is complete.
  bool advance(RequestEntry& r);
  void advance_collectives();
  // Starts the real operation of nonblocking collectives of communicator `comm` numbered below
  // `before` whose barrier is pending (it completes: a later collective's barrier did), in order.
  void flush_collectives(std::uint32_t comm, std::uint64_t before);
  void begin_real(RequestEntry& r);
  void release(std::uint32_t id);
  void reap_orphans();
  bool scan_ids(channel::Reply& reply);
  int v_collective(const channel::Call& call);
  int reduce_more(const channel::Call& call);

  // Drained queue: the first message matching (comm, source, tag), or end().
  std::deque<Drained>::iterator match_drained(std::uint32_t comm, int source, int tag);
  // Unpacks a drained message into a receive buffer; fills status and written.
  int take_drained(std::deque<Drained>::iterator it, void* out, std::size_t out_bytes, int count,
                   std::uint32_t type_id, channel::Reply& reply);

  bool start_collective(const channel::Call& call);
  static void test_stop_in_collective();
  int run_collective(const channel::Call& call, channel::Reply& reply);
  int hello(channel::Reply& reply);
  int gather_like(const channel::Call& call);
  int comms(const channel::Call& call, channel::Reply& reply);
  bool finish_recv(channel::Reply& reply, const channel::BufRef& ref, std::uint32_t type_id);

  channel::Layout* layout_;
  AppMemory memory_;
  std::vector<MPI_Datatype> types_;
  std::vector<MPI_Op> ops_;
  std::vector<CommEntry> comms_;            // index = lower-half id
  std::vector<RequestEntry> requests_;      // index = lower-half id
  std::vector<EnteredCount> freed_;         // communicators freed: key, final entered count
  std::deque<Drained> drained_;
  std::int64_t sent_ = 0, received_ = 0;
  std::uint64_t next_order_ = 1;
  int collectives_live_ = 0;  // live nonblocking-collective entries (advanced by every progress())
  Active active_;
  bool finalized_ = false;
  bool finishing_ = false;
  // A Sendrecv whose send had completed when the checkpoint was taken: when the restarted
  // application posts this call number again, only its receive is redone.
  std::uint32_t skip_send_seq_ = 0;
  std::vector<char> scratch_[3];
};

std::uint64_t mix_key(std::uint64_t a, std::uint64_t b);

}  // namespace ferry::mpi::proxy
