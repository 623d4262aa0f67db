// SPDX-License-Identifier: Apache-2.0
// `ferry wait JOB|RESTART_ID [--json] [--timeout S]`: block until the outcome of a job's newest
// run (launch or restart attempt), or of a coordinator restart, is final and exit so that a
// script can tell a failed restart from the application's own status (contract:
// protocol/PROTOCOL.md "ferry wait"; the same JSON and exit statuses for every kind of job).
#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <stdexcept>

#include "commands.hpp"
#include "coordinator_client.hpp"
#include "job_store.hpp"
#include "local_cluster.hpp"
#include "mpi_job.hpp"
#include "exit_status.hpp"
#include "options.hpp"
#include "restart_outcome.hpp"
#include "wait_outcome.hpp"

namespace ferry::cli {

int wait_for_record(CoordinatorClient& client, std::uint64_t restart_id, bool json, std::uint32_t timeout_ms) {
  auto r = client.call<proto::Wait, proto::WaitReply>(proto::Wait{restart_id, timeout_ms});
  if (!r) return unreachable(client.address(), r.error());
  bool timed_out = r->code == static_cast<std::uint16_t>(proto::perr::timeout);
  if (r->code != proto::kWireOk && !timed_out) {
    complain("wait " + std::to_string(restart_id) + ": " + r->message);
    return exit_for_reply(r->code, r->message);
  }
  if (json) std::cout << coord::wait_json(r->record) << std::endl;
  std::string line = coord::wait_stderr_line(r->record, timed_out);
  if (!line.empty()) std::cerr << line << "\n";
  return coord::wait_exit_status(r->record, timed_out);
}

namespace {

// The newest run of a local job (`ferry launch` / `ferry restart` on this machine), from its
// record in the store.
proto::RestartRecordWire local_record(const store::JobRecord& job) {
  proto::RestartRecordWire r;
  r.restart_id = job.run;
  r.job = job.id;
  if (!job.restart_failure.empty()) {
    r.outcome = proto::Outcome::restart_failed;
    r.phase = job.restart_failure_phase == "validate" ? proto::RestartPhase::validate : proto::RestartPhase::restore;
    r.reason = job.restart_failure;
    return r;
  }
  bool ended = job.state == "exited" || job.state == "stopped" || job.state == "failed";
  if (!ended && store::supervisor_alive(job)) return r;  // running (or being launched/restored)
  if (!ended) {
    // Its `ferry launch`/`ferry restart` is gone without recording the end: it was killed,
    // and the program with it (it runs in that command's PID namespace).
    r.outcome = proto::Outcome::signaled;
    r.signal = SIGKILL;
    r.reason = "the job's ferry " + std::string(job.run > 1 ? "restart" : "launch") +
               " (pid " + std::to_string(job.supervisor_pid) + ") ended without recording the outcome";
    return r;
  }
  int status = job.exit_status < 0 ? 0 : job.exit_status;
  if (job.state == "stopped") {
    r.outcome = proto::Outcome::exited;
    r.exit_status = status;
    r.reason = "stopped after a checkpoint; 'ferry restart " + job.id + "' resumes it";
  } else if (status > 128 && status < 128 + 65) {
    // 128+N: the program was killed by signal N (as the shell reports it)
    r.outcome = proto::Outcome::signaled;
    r.signal = status - 128;
  } else {
    r.outcome = proto::Outcome::exited;
    r.exit_status = status;
  }
  return r;
}

int wait_local(const store::JobStore& store, const store::JobRecord& job, bool json, double timeout_s) {
  return wait_until_final(
      [&] {
        auto now = store.find(job.id);
        return local_record(now ? *now : job);
      },
      json, timeout_s);
}

}  // namespace

int cmd_wait(const Args& args) {
  po::options_description opts("ferry wait RESTART_ID|MPI_JOB [--json] [--timeout S] [--coordinator HOST:PORT] [--store DIR]");
  opts.add_options()("help,h", "show this help")("json", "print the record as JSON on stdout")(
      "timeout", po::value<double>(), "give up after S seconds (exit 124, outcome still running)")(
      "coordinator", po::value<std::string>(), "coordinator address (default: $FERRY_COORDINATOR)")(
      "store", po::value<std::string>(), "job store (local and MPI jobs)")(
      "restart-id", "ID is a coordinator's restart id, even where a job of the store has that id")(
      "id", po::value<std::string>(), "a job's id or name (its newest run), or a coordinator's restart id");
  po::positional_options_description pos;
  pos.add("id", 1);
  po::variables_map vm;
  if (!parse("wait", args, opts, pos, vm)) return kExitUsage;
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  auto arg = opt<std::string>(vm, "id");
  if (!arg) {
    complain("wait: no restart id given");
    return kExitUsage;
  }
  // Restart records live in a coordinator: the configured one, else the embedded one.
  auto address = coordinator_for(opt<std::string>(vm, "coordinator"), "", "").value_or(kLocalCoordinator);
  double timeout = opt<double>(vm, "timeout").value_or(0);
  if (timeout < 0) {
    complain("wait: --timeout must not be negative");
    return kExitUsage;
  }
  // A job of the local store (an MPI job, or one of ferry launch/restart)? Cluster jobs (run
  // by a coordinator) are waited for by restart id.
  std::string root = store::default_root(opt<std::string>(vm, "store"));
  if (!vm.count("restart-id") && ::access((root + "/jobs").c_str(), F_OK) == 0) {
    if (auto store = store::JobStore::open(root)) {
      if (auto job = store->find(*arg)) {
        if (job->uid != ::getuid() && ::getuid() != 0) {
          complain("wait: job " + job->id + " belongs to uid " + std::to_string(job->uid));
          return kExitPermission;
        }
        if (mpi_job::is_mpi_job(*store, job->id)) return mpi_job::wait(*store, *job, vm.count("json") > 0, timeout);
        if (job->coordinator.empty()) return wait_local(*store, *job, vm.count("json") > 0, timeout);
      }
    }
  }
  std::uint64_t restart_id = 0;
  try {
    std::size_t used = 0;
    restart_id = std::stoull(*arg, &used);
    if (used != arg->size()) throw std::invalid_argument(*arg);
  } catch (...) {
    complain("wait: " + *arg + " is neither a restart id nor a job of the store " + root);
    return kExitNotFound;
  }
  auto id = &restart_id;
  auto client = CoordinatorClient::connect(address);
  if (!client) return unreachable(address, client.error());
  auto ms = static_cast<std::uint32_t>(timeout * 1000);
  if (timeout > 0 && ms == 0) ms = 1;
  return wait_for_record(*client, *id, vm.count("json") > 0, ms);
}

}  // namespace ferry::cli
