// SPDX-License-Identifier: Apache-2.0
// One rank's side of a job checkpoint, run by every proxy at once (checkpoint.cpp has the
// algorithm). The proxies talk among themselves over `ctl`, their own duplicate of
// MPI_COMM_WORLD, through the real library, which lives until the checkpoint ends.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <functional>
#include <string>

#include "rank_link.hpp"
#include "server.hpp"

namespace ferry::mpi::proxy {

// What rank 0 sends every other proxy on `ctl` (tag kOrderTag).
struct Order {
  std::int32_t kind = 0;  // kOrderCheckpoint
  std::int32_t pad = 0;
  std::uint64_t generation = 0;
  char dir[3072] = {};  // the generation's partial directory (absolute)
};
inline constexpr std::int32_t kOrderCheckpoint = 1;
inline constexpr int kOrderTag = 7301;

enum class Decision : std::int32_t { resume = 1, stop = 2, abort = 3 };

class Checkpointer {
 public:
  // `pump` advances the application's active call and posts its reply when it completes.
  Checkpointer(Server& server, RankSupervisor& supervisor, FrontLink* front, MPI_Comm ctl,
               std::function<void()> pump);

  // Rank 0: asks every other proxy to take part (Order over ctl).
  void broadcast(const Order& order);
  // Every rank: drain, freeze, dump into DIR/rank-<R>, report, and apply the decision that
  // rank 0 gets from the front end. Returns it.
  Decision run(const Order& order);

 private:
  Decision dump_and_decide(const Order& order);  // steps 3 and 4
  void wait(MPI_Request& req, bool pump);
  void progress_all();

  Server& server_;
  RankSupervisor& supervisor_;
  FrontLink* front_;
  MPI_Comm ctl_;
  int rank_ = 0, size_ = 0;
  std::function<void()> pump_;
};

}  // namespace ferry::mpi::proxy
