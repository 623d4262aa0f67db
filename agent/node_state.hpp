// SPDX-License-Identifier: Apache-2.0
// What this node runs: for each job, its ranks here, each with its rank supervisor (pid,
// control socket), the program's pid, the incarnation (0: launched; else the restart id) and
// where it is in its life. Plain bookkeeping, no I/O (unit-tested); the watchers of each
// supervisor (status pipe, pidfd) live in session.cpp beside it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry::agent {

enum class RankState {
  starting,  // supervisor spawned, status line not yet seen
  running,   // the program runs (launch ok / restore ok)
  failed,    // the supervisor reported (or died with) a launch/validate/restore error
  exited,    // the supervisor exited after the program ran
};

struct RankProc {
  std::string job;
  std::uint32_t rank = 0;
  std::uint64_t restart_id = 0;  // 0: started by LAUNCH_RANKS
  std::uint32_t uid = 0, gid = 0;
  pid_t supervisor = -1;
  pid_t program = -1;
  std::string control;           // the supervisor's control socket
  RankState state = RankState::starting;
  bool report_exit = true;       // false: killed because its restart failed on this node
};

class NodeState {
public:
  // Adds (or replaces an exited/failed) rank; returns nullptr if the rank is already live here.
  std::shared_ptr<RankProc> add(RankProc rank);
  std::shared_ptr<RankProc> find(const std::string& job, std::uint32_t rank) const;
  // The ranks of a job on this node (any state).
  std::vector<std::shared_ptr<RankProc>> ranks_of(const std::string& job) const;
  void remove(const std::string& job, std::uint32_t rank);
  // Ranks whose program runs (heartbeat live_ranks).
  std::uint32_t live_ranks() const;

private:
  std::map<std::string, std::map<std::uint32_t, std::shared_ptr<RankProc>>> jobs_;
};

bool is_live(RankState s);

// A rank supervisor's wait status -> RANK_EXITED's exit_status / signal. The supervisor exits
// with the program's status, 128+N when signal N killed it (ferry init relays it that way), 75
// after a "stop" phase; a supervisor itself killed by signal N reports signal N.
struct ExitReport {
  std::optional<std::int32_t> exit_status;
  std::optional<std::int32_t> signal;
};
ExitReport exit_report(int wait_status);

}  // namespace ferry::agent
