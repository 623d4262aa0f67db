// SPDX-License-Identifier: Apache-2.0
// One rank's side of a job checkpoint, run by every proxy at once (checkpoint.cpp has the
// algorithm). The proxies talk among themselves over `ctl`, their own duplicate of
// MPI_COMM_WORLD, through the real library, which lives until the checkpoint ends. Only
// point-to-point messages between rank 0 and each other proxy are used, never a collective: a
// round that does not complete in time is given up by every proxy on its own, and a message of
// a given-up round is recognised (by its round number) and dropped whenever it arrives.
#pragma once

#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rank_link.hpp"
#include "server.hpp"

namespace ferry::mpi::proxy {

// A checkpoint order: from the front end to rank 0 ("checkpoint GEN DIR TIMEOUT_MS ROUND"),
// then from rank 0 to every other proxy over `ctl`.
struct Order {
  std::uint64_t round = 0;       // the front end's round number (replies carry it)
  std::uint64_t generation = 0;
  std::int64_t timeout_ms = 0;   // the whole round's bound
  std::string dir;               // the generation's partial directory (absolute)
};

enum class Decision : std::int32_t { resume = 1, stop = 2, abort = 3 };

class Checkpointer {
 public:
  // `pump` advances the application's active call and posts its reply when it completes.
  Checkpointer(Server& server, RankSupervisor& supervisor, FrontLink* front, MPI_Comm ctl,
               std::function<void()> pump);

  // Every rank but 0: true and `order` filled when rank 0's order of a new round is waiting
  // (messages of rounds that are over are dropped). Also completes earlier control sends.
  bool poll_order(Order& order);
  // Rank 0: true and `order` filled when the front end sent an order that it has not cancelled
  // already (a late rank 0 never starts a round the front end gave up).
  bool poll_front(Order& order);
  // Every rank: drain, freeze, dump into DIR/rank-<R>, report, and apply the decision that
  // rank 0 gets from the front end (rank 0 first sends the order to every other proxy).
  // Returns it; Decision::abort also when the round was given up (its deadline passed,
  // rank 0 gave it up, or the front end cancelled it): the application then simply continues.
  Decision run(const Order& order);
  // At the end: frees the control sends still pending (their receivers are gone or finishing).
  void release_sends();

 private:
  struct Message {
    std::int32_t kind = 0;
    std::int32_t phase = 0;
    std::uint64_t round = 0;
    std::int64_t a = 0, b = 0, c = 0;
    std::string payload;
    int source = 0;
  };
  enum class Outcome { ok, aborted, timed_out };

  Decision run_steps(const Order& order);
  Decision dump_and_decide(const Order& order);  // steps 3 and 4
  void send(int dest, int tag, const Message& m);
  bool receive(int source, int tag, Message& m);
  void reap_sends();
  void progress_all();
  bool past_deadline() const { return std::chrono::steady_clock::now() >= deadline_; }
  // Rank 0: collects this round's report of `phase` (drain: of `iteration`) from every other
  // rank into got[rank]; false at the deadline or when the front end cancels the round.
  bool gather(int phase, std::int64_t iteration, std::vector<Message>& got, bool pump);
  // Every other rank: the next message of this round from rank 0 (kind `kind`); false when
  // the round ends without it (abort from rank 0 or the local deadline: outcome_ says which).
  bool await(int kind, Message& m, bool pump);
  // Every other rank: consumes waiting messages from rank 0; true when this round was aborted.
  bool abort_pending();
  // Rank 0: gives the round up in `phase`, naming the ranks that did not answer.
  Decision give_up(int phase, const std::vector<int>& missing, const std::string& frozen_dir);
  // Every rank: leaves a round that did not complete (thaws the application if it was frozen).
  Decision leave(const std::string& frozen_dir, bool dumped);
  void test_hang(int phase) const;
  std::string control(const std::string& line) const;

  Server& server_;
  RankSupervisor& supervisor_;
  FrontLink* front_;
  MPI_Comm ctl_;
  int rank_ = 0, size_ = 0;
  std::function<void()> pump_;
  std::uint64_t round_ = 0;
  std::int64_t timeout_ms_ = 0;
  std::chrono::steady_clock::time_point deadline_{};
  Outcome outcome_ = Outcome::ok;
  std::vector<std::pair<MPI_Request, std::shared_ptr<std::vector<char>>>> sends_;
};

}  // namespace ferry::mpi::proxy
