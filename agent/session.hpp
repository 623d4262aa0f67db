// SPDX-License-Identifier: Apache-2.0
// The agent's handlers of coordinator requests, on one single-threaded io_context:
//   LAUNCH_RANKS  -> one rank supervisor (`ferry rank-launch`) per rank -> LAUNCH_RESULT once
//                    every rank reported "launch ok PID" or failed
//   ROUND_STEP    -> per rank, the phase's control line to its supervisor (asynchronous, with
//                    the phase deadline); prepare (rank directories) and commit are answered
//                    here -> ROUND_REPLY with one RankResult per rank
//   RESTORE_RANKS -> one `ferry rank-restore` per rank; its status lines give the phase
//                    (validate, restore) and result -> RESTORE_RESULT; if any rank of the
//                    restart failed on this node, the ones restored here are stopped
//   a supervisor's exit (its pidfd) -> RANK_EXITED (exit status or signal)
//   LAUNCH_MPI, and ROUND_STEP of such a job -> MpiLaunchers (mpi_launcher.hpp: the head node
//                    of an MPI job runs mpirun and speaks to rank 0's proxy)
// Nothing here waits: a dump runs in the rank's own supervisor process while this loop keeps
// heartbeating. Ownership: Session owns the NodeState and one Watch per live supervisor.
#pragma once

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it (C++20)
#include <boost/asio.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "coordinator_link.hpp"
#include "mpi_launcher.hpp"
#include "node_state.hpp"
#include "rank_control.hpp"
#include "rank_spawn.hpp"

namespace ferry::agent {

struct SessionConfig {
  std::string node;
  std::string store;  // absolute path of the shared store
  std::string ferry;  // absolute path of the `ferry` binary
  std::chrono::milliseconds default_deadline{120000};  // a ROUND_STEP with deadline_ms == 0
};

class Session {
public:
  Session(boost::asio::io_context& io, SessionConfig cfg, LinkConfig link);
  ~Session();
  void start();
  void stop();

private:
  struct Watch;
  void on_request(std::uint64_t epoch, std::uint64_t id, proto::AnyMessage msg);
  void on_launch(std::uint64_t epoch, std::uint64_t id, const proto::LaunchRanks& m);
  void on_round_step(std::uint64_t epoch, std::uint64_t id, const proto::RoundStep& m);
  void on_restore(std::uint64_t epoch, std::uint64_t id, const proto::RestoreRanks& m);

  // Spawns spec for rank; on_final gets the launch/validate/restore outcome exactly once.
  Result<void> start_supervisor(const std::shared_ptr<RankProc>& rank, const SpawnSpec& spec,
                                std::function<void(const StatusLine&)> on_final);
  void read_status(const std::shared_ptr<Watch>& w);
  void final_status(const std::shared_ptr<Watch>& w, const StatusLine& s);
  void wait_exit(const std::shared_ptr<Watch>& w);
  void supervisor_exited(const std::shared_ptr<Watch>& w, int wait_status);

  boost::asio::io_context& io_;
  SessionConfig cfg_;
  StorePaths paths_;
  NodeState state_;
  CoordinatorLink link_;
  MpiLaunchers mpi_;  // MPI jobs whose launcher runs here (LAUNCH_MPI)
  std::map<pid_t, std::shared_ptr<Watch>> watches_;  // by supervisor pid
  // Liveness pipe: every rank supervisor holds the read end (fd 5), only this process the
  // write end; when the agent dies they see EOF and resume a rank they hold frozen.
  UniqueFd alive_r_, alive_w_;
};

}  // namespace ferry::agent
