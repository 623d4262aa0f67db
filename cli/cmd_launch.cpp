// SPDX-License-Identifier: Apache-2.0
// `ferry launch`: create a job, start PROGRAM under the supervisor (as PID 2 of the job's own
// PID namespace, below ferry init), exit with its status. The program inherits stdin/stdout/stderr and gets FERRY_CONTROL (the control
// socket, for ferry_checkpoint()) and FERRY_JOB in its environment.
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "cluster_commands.hpp"
#include "commands.hpp"
#include "coordinator_client.hpp"
#include "exit_status.hpp"
#include "job_store.hpp"
#include "launch/pid_namespace.hpp"
#include "local_cluster.hpp"
#include "options.hpp"
#include "supervisor.hpp"

namespace ferry::cli {

int cmd_launch(const Args& all) {
  auto [ours, program] = split_at_dashdash(all);
  po::options_description opts("ferry launch [--store DIR] [--name NAME] -- PROGRAM [ARGS...]");
  opts.add_options()("help,h", "show this help")("store", po::value<std::string>(), "job store directory")(
      "name", po::value<std::string>(), "a name for the job, usable instead of its id")(
      "keep-fd", po::value<std::vector<int>>()->composing(),
      "pass this inherited descriptor (> 2) to the program; others are closed")(
      "nodes", po::value<std::string>(), "cluster job: run on these nodes (n1,n2; default: every agent)")(
      "ntasks", po::value<std::uint32_t>(), "cluster job: this many ranks (FERRY_RANK 0..N-1)")(
      "interval", po::value<std::string>(), "cluster job: checkpoint every INTERVAL (30s, 10m, 2h)")(
      "keep", po::value<std::uint32_t>(), "cluster job: keep the newest K generations")(
      "detach", "cluster job: print the job id and return")(
      "json", "cluster job: print the final record as JSON (as ferry wait --json)")(
      "coordinator", po::value<std::string>(), "cluster job: coordinator HOST:PORT (default: $FERRY_COORDINATOR)");
  po::positional_options_description pos;
  po::variables_map vm;
  if (!parse("launch", ours, opts, pos, vm)) return kExitUsage;
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  if (program.empty()) {
    complain("launch: no program given (ferry launch [OPTIONS] -- PROGRAM [ARGS...])");
    return kExitUsage;
  }

  bool cluster = vm.count("nodes") || vm.count("ntasks") || vm.count("interval") || vm.count("keep") ||
                 vm.count("detach") || vm.count("coordinator");
  // A configured coordinator (flag, $FERRY_COORDINATOR, config file) takes every launch;
  // without one, a cluster launch (--ntasks, --nodes, ...) uses the embedded daemons of the
  // ferry home and a plain one keeps the single-process supervisor below.
  auto address = coordinator_for(opt<std::string>(vm, "coordinator"),
                                 store::default_root(opt<std::string>(vm, "store")), "");
  if (cluster || address) {
    if (!address) address = kLocalCoordinator;
    ClusterLaunch l;
    l.address = *address;
    l.name = opt<std::string>(vm, "name").value_or("");
    l.argv = program;
    if (vm.count("nodes")) l.nodes = split_nodes(vm["nodes"].as<std::string>());
    l.ntasks = opt<std::uint32_t>(vm, "ntasks").value_or(0);
    if (vm.count("interval")) {
      auto s = parse_duration_s(vm["interval"].as<std::string>());
      if (!s) {
        complain("launch: --interval '" + vm["interval"].as<std::string>() + "' is not a duration (30s, 10m, 2h)");
        return kExitUsage;
      }
      l.interval_s = *s;
    }
    l.keep = opt<std::uint32_t>(vm, "keep").value_or(0);
    l.detach = vm.count("detach") > 0;
    l.json = vm.count("json") > 0;
    return cluster_launch(l);
  }

  auto store = store::JobStore::open(store::default_root(opt<std::string>(vm, "store")));
  if (!store) {
    complain("launch: " + store.error().message());
    return exit_status_for(store.error());
  }
  auto job = store->create_job(opt<std::string>(vm, "name").value_or(""), program);
  if (!job) {
    complain("launch: " + job.error().message());
    return exit_status_for(job.error());
  }
  Supervisor sup(*store, *job);
  if (auto r = sup.listen(); !r) {
    complain("launch job " + job->id + ": " + r.error().message());
    return exit_status_for(r.error());
  }

  // exec errors travel back through a close-on-exec pipe.
  int errpipe[2];
  if (::pipe2(errpipe, O_CLOEXEC) != 0) {
    complain(std::string("launch: pipe: ") + std::strerror(errno));
    return kExitSystem;
  }
  std::vector<char*> argv;
  for (auto& a : program) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::string control = store->control_socket(job->id);
  const sigset_t* old_mask = static_cast<const sigset_t*>(sup.original_sigmask());

  // Descriptors inherited from whoever started ferry (a CI runner's pipes, a shell's
  // sockets) are closed unless asked for: the program gets 0-2 and --keep-fd ones.
  std::vector<int> keep = vm.count("keep-fd") ? vm["keep-fd"].as<std::vector<int>>() : std::vector<int>{};
  std::sort(keep.begin(), keep.end());
  keep.push_back(errpipe[1]);

  // The job gets its own PID namespace with ferry init as PID 1 and the program as PID 2, so a
  // restart can give it the same pid and tids (ckptlib/launch/README.md); a non-root user's
  // is owned by a user namespace of ours. Where none can be had (user namespaces disabled),
  // the program is our direct child, with a warning: a restart gives it new ids.
  launch::ExecSpec spec;
  spec.argv = program;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    if (kv.rfind("FERRY_CONTROL=", 0) != 0 && kv.rfind("FERRY_JOB=", 0) != 0) spec.env.emplace_back(kv);
  }
  spec.env.push_back("FERRY_CONTROL=" + control);
  spec.env.push_back("FERRY_JOB=" + job->id);
  spec.keep_fds = keep;
  spec.sigmask = *old_mask;
  spec.exec_error_fd = errpipe[1];
  auto ns = launch::PidNamespace::create(&spec);
  if (!ns && !ns.error().is(errc::unsupported)) {
    complain("launch job " + job->id + ": " + ns.error().message());
    return exit_status_for(ns.error());
  }
  if (!ns)
    complain("warning: job " + job->id + " runs without its own PID namespace, so a restart gives it new " +
             "process and thread ids (" + ns.error().message() + ")");
  pid_t pid = ns ? (*ns)->init_pid() : ::fork();
  if (pid < 0) {
    complain(std::string("launch: fork: ") + std::strerror(errno));
    return kExitSystem;
  }
  if (pid == 0) {
    ::close(errpipe[0]);
    ::sigprocmask(SIG_SETMASK, old_mask, nullptr);
    unsigned first = 3;
    for (int k : keep) {
      if (k < 3 || static_cast<unsigned>(k) < first) continue;
      if (static_cast<unsigned>(k) > first) ::close_range(first, static_cast<unsigned>(k) - 1, 0);
      first = static_cast<unsigned>(k) + 1;
    }
    ::close_range(first, ~0U, 0);
    ::setenv("FERRY_CONTROL", control.c_str(), 1);
    ::setenv("FERRY_JOB", job->id.c_str(), 1);
    ::execvp(argv[0], argv.data());
    int err = errno;
    (void)!::write(errpipe[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(errpipe[1]);
  int child_errno = 0;
  ssize_t n;
  do n = ::read(errpipe[0], &child_errno, sizeof child_errno);
  while (n < 0 && errno == EINTR);
  ::close(errpipe[0]);
  if (n == sizeof child_errno) {
    complain("launch: cannot run " + program[0] + ": " + std::strerror(child_errno));
    if (ns) (*ns)->release();
    sup.run(pid);  // reap it and record the job as ended
    return 127;
  }
  pid_t program_pid = ns ? (*ns)->main_pid() : pid;
  std::cerr << "ferry: job " << job->id << " launched (pid " << program_pid << ")"
            << (job->name.empty() ? "" : " as '" + job->name + "'") << "\n";
  if (ns) (*ns)->release();  // the supervisor waits for init from now on
  return sup.run(pid, program_pid);
}

}  // namespace ferry::cli
