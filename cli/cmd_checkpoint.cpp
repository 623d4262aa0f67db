// SPDX-License-Identifier: Apache-2.0
// `ferry checkpoint JOB [--stop]`: ask the job's supervisor for a new generation and report
// it. Exit 0 only when the generation is committed and durable. An MPI job's round is bounded
// (`--timeout S`, else $FERRY_MPI_CHECKPOINT_TIMEOUT_S, else ferry mpirun's default of 120 s):
// a round that does not complete in time is given up and the job continues (docs/mpi.md).
// Through a coordinator, --timeout goes with the CHECKPOINT (without it: the coordinator's step
// timeouts bound the round).
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>

#include "cluster_commands.hpp"
#include "commands.hpp"
#include "coordinator_client.hpp"
#include "exit_status.hpp"
#include "ferry/common/unique_fd.hpp"
#include "job_store.hpp"
#include "options.hpp"

namespace ferry::cli {

namespace {

// Sends one request line and returns the reply line, waiting at most `timeout_ms` for it
// (negative: no bound).
Result<std::string> request(const std::string& socket_path, const std::string& line, long long timeout_ms = -1) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return fail_errno("connect to " + socket_path);
  std::string req = line + "\n";
  if (::write(fd.get(), req.data(), req.size()) != static_cast<ssize_t>(req.size())) return fail_errno("send request");
  std::string reply;
  char buf[4096];
  for (;;) {
    if (timeout_ms >= 0) {
      pollfd p{fd.get(), POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(timeout_ms));
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) return fail(errc::protocol, "no reply within " + std::to_string(timeout_ms / 1000) + " s");
    }
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read reply");
    if (n == 0) break;
    reply.append(buf, static_cast<size_t>(n));
    if (reply.find('\n') != std::string::npos) break;
  }
  if (reply.empty()) return fail(errc::protocol, "the supervisor closed the connection without a reply");
  return reply.substr(0, reply.find('\n'));
}

}  // namespace

int cmd_checkpoint(const Args& args) {
  po::options_description opts("ferry checkpoint [--store DIR] JOB [--stop] [--incremental|--full] [--keep K] [--timeout S]");
  opts.add_options()("help,h", "show this help")("store", po::value<std::string>(), "job store directory")(
      "stop", "end the job once the generation is committed")(
      "incremental", "store only the pages written since the previous generation (the first one is full)")(
      "full", "store every page even when tracking could make it incremental")(
      "keep", po::value<uint32_t>(), "then keep only the newest K generations (and those they need)")(
      "timeout", po::value<double>(),
      "MPI jobs: give the round up after S seconds (default $FERRY_MPI_CHECKPOINT_TIMEOUT_S, else 120); the job continues")(
      "job", po::value<std::string>(), "job id or name")(
      "coordinator", po::value<std::string>(), "coordinator HOST:PORT (default: the job's, or $FERRY_COORDINATOR)");
  po::positional_options_description pos;
  pos.add("job", 1);
  po::variables_map vm;
  if (!parse("checkpoint", args, opts, pos, vm)) return kExitUsage;
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  auto job_arg = opt<std::string>(vm, "job");
  if (!job_arg) {
    complain("checkpoint: no job given");
    return kExitUsage;
  }
  auto timeout = opt<double>(vm, "timeout");
  if (timeout && !(*timeout > 0)) {
    complain("checkpoint: --timeout needs a positive number of seconds");
    return kExitUsage;
  }
  if (auto address = coordinator_for(opt<std::string>(vm, "coordinator"),
                                     store::default_root(opt<std::string>(vm, "store")), *job_arg))
    return cluster_checkpoint(*address, *job_arg, vm.count("stop") > 0,
                              timeout ? static_cast<std::uint32_t>(std::min(*timeout, 4.0e6) * 1000) : 0);
  auto store = store::JobStore::open(store::default_root(opt<std::string>(vm, "store")));
  if (!store) {
    complain("checkpoint: " + store.error().message());
    return exit_status_for(store.error());
  }
  auto job = store->find(*job_arg);
  if (!job) {
    complain("checkpoint: " + job.error().message());
    return exit_status_for(job.error());
  }
  if (job->uid != ::getuid() && ::getuid() != 0) {
    complain("checkpoint: job " + job->id + " belongs to uid " + std::to_string(job->uid));
    return kExitPermission;
  }
  // A job being launched or restarted has no live supervisor in its record for a moment:
  // wait for it (bounded) rather than failing a checkpoint asked for right after a restart.
  for (int i = 0; i < 50 && !(job->state == "running" && store::supervisor_alive(*job)); ++i) {
    if (job->state == "exited" || job->state == "stopped" || job->state == "failed") break;
    ::usleep(100 * 1000);
    if (auto again = store->find(job->id)) *job = *again;
  }
  if (job->state != "running" || !store::supervisor_alive(*job)) {
    complain("checkpoint: job " + job->id + " is not running (state: " + job->state + ")");
    return kExitNotFound;
  }
  // An MPI job (`ferry mpirun`): its round is bounded; the reply comes within that bound plus
  // ferry mpirun's margins (rank 0's decision, the others' late margin).
  bool mpi = ::access((store->job_dir(job->id) + "/mpi.json").c_str(), F_OK) == 0;
  long long reply_timeout_ms = -1;
  std::string line = "checkpoint";
  if (vm.count("stop")) line += " stop";
  if (!mpi && timeout) {
    complain("checkpoint: --timeout applies to MPI jobs (ferry mpirun); job " + job->id + " is not one");
    return kExitUsage;
  }
  if (mpi) {
    double s = timeout.value_or(0);
    if (!timeout)
      if (const char* env = std::getenv("FERRY_MPI_CHECKPOINT_TIMEOUT_S"); env != nullptr && *env != '\0')
        s = std::strtod(env, nullptr);
    if (s > 0) {
      line += " timeout=" + std::to_string(static_cast<long long>(s * 1000));
      reply_timeout_ms = static_cast<long long>(s * 1000) + 120'000;
    }
  }
  if (vm.count("incremental")) line += " incremental";
  if (vm.count("full")) line += " full";
  if (auto k = opt<uint32_t>(vm, "keep")) line += " keep=" + std::to_string(*k);
  auto reply = request(store->control_socket(job->id), line, reply_timeout_ms);
  if (!reply) {
    if (reply.error().context().rfind("connect", 0) == 0) {
      complain("checkpoint job " + job->id + ": its supervisor (pid " + std::to_string(job->supervisor_pid) +
               ") does not answer: " + reply.error().message());
      return kExitNotFound;
    }
    if (reply.error().message().find("no reply within") != std::string::npos) {
      complain("checkpoint job " + job->id + ": ferry mpirun (pid " + std::to_string(job->supervisor_pid) + ") gave " +
               reply.error().message() + "; no generation was committed by this request unless 'ferry inspect " +
               job->id + "' shows it");
      return kExitInternal;
    }
    complain("checkpoint job " + job->id + ": the supervisor (pid " + std::to_string(job->supervisor_pid) +
             ") ended before replying (" + reply.error().message() +
             "); no generation was committed by this request unless 'ferry inspect " + job->id + "' shows it");
    return kExitInternal;
  }
  std::istringstream in(*reply);
  std::string status;
  in >> status;
  if (status == "ok") {
    uint64_t gen = 0, mem = 0, img = 0;
    std::string dir;
    double pause = 0, total = 0;
    in >> gen >> dir >> mem >> img >> pause >> total;
    // An MPI job's front end adds "ranks N nodes A,B,...": its ranks and their nodes.
    std::string word, nodes;
    unsigned ranks = 0;
    if (in >> word && word == "ranks" && in >> ranks >> word && word == "nodes") in >> nodes;
    std::string where;
    if (ranks > 0) {
      std::vector<std::string> distinct;
      std::istringstream list(nodes);
      for (std::string n; std::getline(list, n, ',');)
        if (std::find(distinct.begin(), distinct.end(), n) == distinct.end()) distinct.push_back(n);
      where = ", " + std::to_string(ranks) + " ranks on " + std::to_string(distinct.size()) + " node" +
              (distinct.size() == 1 ? "" : "s") + " (" + nodes + ")";
    }
    std::cout << "generation " << gen << " committed: " << dir << "\n";
    std::cerr << "ferry: job " << job->id << where << ": " << (mem >> 20) << " MiB of memory, image " << (img >> 20)
              << " MiB, process paused " << pause << " s, committed in " << total << " s"
              << (vm.count("stop") ? "; job stopped" : "") << "\n";
    return 0;
  }
  int code = kExitInternal;
  in >> code;
  std::string message;
  std::getline(in, message);
  if (!message.empty() && message[0] == ' ') message.erase(0, 1);
  complain(message);
  return code;
}

}  // namespace ferry::cli
