// SPDX-License-Identifier: Apache-2.0
// MPI jobs on their head node (docs/mpi.md "Through the coordinator"). MPI_Init needs the
// real launcher to start every rank together, so the coordinator asks one agent, the one of
// rank 0's node, to run it (LAUNCH_MPI): `mpirun ... ferry-mpi-proxy [--restore DIR] --
// PROGRAM` as the job's user, stdout/stderr appended to STORE/jobs/<id>/mpirun.out/.err. This
// agent then holds the link to rank 0's proxy that `ferry mpirun` holds when it runs alone
// (a TCP listener on 127.0.0.1, FERRY_MPI_FRONT + a random FERRY_MPI_TOKEN exported with -x;
// rank 0 says "hello TOKEN NTASKS" once every proxy passed MPI_Init), and turns the
// coordinator's round phases into that link's lines (the proxies keep their own collective
// algorithm among themselves, mpi/proxy/checkpoint.cpp):
//
//   prepare  rank 0's proxy connected; gen-N.partial/rank-R/ for every rank, owned by the user
//   quiesce  "checkpoint GEN DIR TIMEOUT_MS ROUND": every proxy stops serving calls, they agree
//            on collectives, drain, freeze and dump; rank 0 answers "dumped ROUND FAILED IMAGE
//            MEMORY [rank K: WHY]" (a failure names its rank), "timeout ROUND PHASE MS RANKS"
//            (the ranks that did not answer) or "failed ROUND WHY" (rank 0)
//   dump     the images are already written and fsynced: ok, the bytes of the quiesce answer
//   commit   nothing (the coordinator has written the job manifest and renamed the directory)
//   resume / stop  "resume|stop ROUND", answered by "done ROUND"
//   abort    "abort ROUND" after a dumped answer (the proxies thaw and delete their rank
//            directories), "cancel ROUND" before it
//   stop with round_id 0 (end the job): SIGTERM to the launcher
//
// The launch is answered (LAUNCH_RESULT, or RESTORE_RESULT for a restart: every rank ok) when
// rank 0's proxy connects, or when the launcher ends first. When the launcher ends, the
// proxies' outcome events (STORE/jobs/<id>/mpi-runs/<R>/rank-K.event, one line "TIME_NS NODE
// KIND VALUE [REASON]", mpi/proxy/main.cpp) become one MPI_RUN_ENDED, earliest first, with the
// launcher's status; the coordinator folds it into the job's record.
#pragma once

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it (C++20)
#include <boost/asio.hpp>
#include <map>
#include <memory>
#include <string>

#include "coordinator_link.hpp"
#include "rank_spawn.hpp"

namespace ferry::agent {

// argv with the head agent's exports inserted after argv[0] (-x FERRY_MPI_FRONT ...).
std::vector<std::string> launcher_argv(const std::vector<std::string>& argv);

class MpiLaunchers {
public:
  MpiLaunchers(boost::asio::io_context& io, CoordinatorLink& link, std::string node, StorePaths paths);
  ~MpiLaunchers();

  void launch(std::uint64_t epoch, std::uint64_t id, const proto::LaunchMpi& m);
  // True when this node runs (or ran) the launcher of `job`: its ROUND_STEPs come here.
  bool owns(const std::string& job) const { return runs_.count(job) > 0; }
  void round_step(std::uint64_t epoch, std::uint64_t id, const proto::RoundStep& m);
  void stop();

private:
  struct Run;
  void accept(const std::shared_ptr<Run>& run);
  void read_hello(const std::shared_ptr<Run>& run, std::shared_ptr<boost::asio::ip::tcp::socket> s);
  void read_lines(const std::shared_ptr<Run>& run);
  void on_line(const std::shared_ptr<Run>& run, const std::string& line);
  void send_line(const std::shared_ptr<Run>& run, const std::string& line);
  // cb(line) once: the next line of the current round, or "" at the deadline / when the
  // launcher or rank 0's link is gone.
  void await_line(const std::shared_ptr<Run>& run, std::chrono::milliseconds within,
                  std::function<void(const std::string&)> cb);
  void wait_launcher(const std::shared_ptr<Run>& run);
  void launcher_ended(const std::shared_ptr<Run>& run, int wait_status);

  boost::asio::io_context& io_;
  CoordinatorLink& link_;
  std::string node_;
  StorePaths paths_;
  std::map<std::string, std::shared_ptr<Run>> runs_;  // by job id; the newest run of each job
};

}  // namespace ferry::agent
