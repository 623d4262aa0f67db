// SPDX-License-Identifier: Apache-2.0
// The embedded ("local") coordinator's two extras, used when the `ferry` CLI starts a
// coordinator itself because none is configured (docs/user-guide.md "Embedded default"):
//  - it starts this machine's agent as its own child (and the agent dies with it:
//    PR_SET_PDEATHSIG), so the CLI has one process to start;
//  - it exits by itself once idle: no job running and no `ferry` command alive for
//    --idle-exit-s seconds.
//
// "No `ferry` command alive" is a lock, not a guess from connections: every CLI that uses
// the local coordinator holds a shared flock on FERRY_HOME/local/lock for as long as it
// runs (taken before it even connects), so the coordinator can exit only when it gets the
// lock exclusively. It keeps that exclusive lock while it removes its address file and
// exits, so a CLI arriving meanwhile waits and then starts a fresh coordinator instead of
// talking to a dying one.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "session.hpp"  // Asio, included the Boost 1.74 way

namespace ferry::coord {

// Starts argv[0] with argv as a child that receives SIGTERM when this process dies. Its
// stdin is /dev/null; stdout/stderr go to log_path (appended). Returns its pid or -1.
pid_t spawn_child(const std::vector<std::string>& argv, const std::string& log_path);

class IdleExit {
public:
  // busy(): true while a job runs (or a round, a WAIT, a RESTART is pending). lock_path:
  // the clients' lock; address_file: removed on exit; on_exit: stops the io_context.
  IdleExit(boost::asio::io_context& io, std::chrono::seconds idle_after, std::string lock_path,
           std::string address_file, std::function<bool()> busy, std::function<void()> on_exit);
  void start();

private:
  void check();

  boost::asio::steady_timer timer_;
  std::chrono::seconds idle_after_;
  std::string lock_path_;
  std::string address_file_;
  std::function<bool()> busy_;
  std::function<void()> on_exit_;
  std::chrono::steady_clock::time_point idle_since_;
  int held_lock_ = -1;  // the exclusive lock, held from the decision to exit until the end
};

}  // namespace ferry::coord
