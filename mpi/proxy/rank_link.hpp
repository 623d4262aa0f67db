// SPDX-License-Identifier: Apache-2.0
// The proxy's two outside links when it runs under `ferry mpirun`:
// - RankSupervisor: the application runs under a *rank supervisor*, `ferry rank-launch` (or
//   `ferry rank-restore` after a restart), the proxy's child, which puts it in its own PID
//   namespace and freezes/dumps/resumes/stops it on request over its control socket (the
//   phases of cli/supervisor.cpp). The proxy reads the supervisor's status line for the
//   application's pid, and the supervisor exits with the application's status.
// - FrontLink (rank 0 only): a TCP connection to `ferry mpirun`, which sends checkpoint orders
//   and the commit decision ("checkpoint GEN DIR", then "resume" | "stop" | "abort"), and gets
//   the outcome of each phase as one line.
#pragma once

#include <sys/types.h>

#include <deque>
#include <functional>
#include <string>
#include <vector>

namespace ferry::mpi::proxy {

class RankSupervisor {
 public:
  // `ferry rank-launch ... -- argv` (dir empty) or `ferry rank-restore ... --dir DIR`. `env` is
  // the application's environment, `keep_fd` a descriptor the supervisor must inherit.
  bool start(const std::string& ferry, const std::string& store, const std::string& job, int rank,
             const std::vector<std::string>& argv, const std::string& restore_dir,
             const std::vector<std::string>& env, std::string* why);
  pid_t child() const { return child_; }
  pid_t app() const { return app_; }
  // Sends one control line ("freeze", "dump GEN DIR", "resume", "stop", "abort DIR") and
  // returns the reply line ("ok ..." or "error CODE MESSAGE"); waits at most `timeout_ms`
  // (negative: no bound) for it, then returns "error 0 ... did not answer within S s".
  std::string control(const std::string& line, long timeout_ms = -1) const;

 private:
  std::string socket_;
  pid_t child_ = -1;
  pid_t app_ = -1;
};

class FrontLink {
 public:
  // Connects to FERRY_MPI_FRONT ("HOST:PORT") and introduces itself: "hello TOKEN WORLD_SIZE"
  // (the token from FERRY_MPI_TOKEN).
  bool connect_from_env(int world_size, std::string* why);
  bool connected() const { return fd_ >= 0; }
  // The oldest complete line from the front end if one is there (non-blocking); empty otherwise.
  std::string poll_line();
  // Removes and returns the oldest line already received (non-blocking) for which `match` is
  // true, leaving the others queued in order; empty if there is none.
  std::string take_line(const std::function<bool(const std::string&)>& match);
  void send_line(const std::string& line);

 private:
  void pull();  // reads what has arrived into lines_ (non-blocking)
  int fd_ = -1;
  std::string pending_;
  std::deque<std::string> lines_;
};

}  // namespace ferry::mpi::proxy
