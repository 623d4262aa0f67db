// SPDX-License-Identifier: Apache-2.0
// Supervisor: what `ferry launch` and `ferry restart` run while their process lives. It is the
// process's parent, serves the job's control socket (checkpoint requests from `ferry
// checkpoint` and from ferry_checkpoint() inside the program), forwards termination signals,
// and returns the process's exit status. Single-threaded Boost.Asio loop; a checkpoint runs
// to completion inside its handler.
// A *rank supervisor* (`ferry rank-launch` / `ferry rank-restore`, started by ferry-agent for
// one rank of a coordinator job) is the same loop with RankOptions: its own control socket,
// no job.json writes (the coordinator owns the record), and the round phases
// (freeze/dump/resume/stop/abort) instead of one-shot checkpoints.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

#include "ferry/common/result.hpp"
#include "job_store.hpp"

namespace ferry::restore {
class LazyPages;
}

namespace ferry::cli {

struct RankOptions {
  uint32_t rank = 0;
  std::string control_path;  // the control socket; its lock is control_path + ".lock"
  // Read end of the agent's liveness pipe (-1: none). EOF means the agent is gone: a rank
  // frozen for a round that can no longer finish is resumed (and runs on unmanaged).
  int agent_fd = -1;
};

class Supervisor {
public:
  Supervisor(const store::JobStore& store, store::JobRecord job,
             std::optional<RankOptions> rank = std::nullopt);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Binds the control socket (replacing a stale one) and blocks forwarded signals. Call
  // before creating the process; the process must then unblock signals itself (see
  // original_sigmask()).
  Result<void> listen();
  const void* original_sigmask() const;

  // Serves until `pid` (a child of this process) exits. Returns what the command should
  // exit with: the process's status, 128+signal, or kExitStopped after checkpoint --stop.
  // `program` is the process to checkpoint, signal and record in the job (default: pid);
  // with a PID namespace, pid is ferry init (which relays the program's status) and program
  // the job's main process (its pid in our namespace).
  int run(pid_t pid, pid_t program = -1);

  // `ferry restart --lazy`: pages are still being placed by `lazy`'s server thread. A
  // checkpoint waits until they are all placed (its snapshot forks the program and reads its
  // memory); when the fill failed after the program resumed (a corrupt chunk: the job was
  // killed), run() says so and returns kExitInternal (70, after the point of no return).
  void set_lazy(restore::LazyPages* lazy);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::cli
