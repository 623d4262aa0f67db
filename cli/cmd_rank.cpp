// SPDX-License-Identifier: Apache-2.0
// Hidden subcommands that ferry-agent runs, one process per rank of a coordinator job (the
// *rank supervisor*; see cli/supervisor.hpp and agent/README.md):
//   ferry rank-launch  --store S --job ID --rank R --control SOCK [--status-fd N] [--agent-fd N] -- PROGRAM ARGS
//   ferry rank-restore --store S --job ID --rank R --control SOCK [--status-fd N] [--agent-fd N] --dir GEN/rank-R
// --agent-fd: the agent's liveness pipe; at EOF (the agent died) a frozen rank is resumed.
// Both start the rank's program in its own PID namespace (like `ferry launch` / `ferry
// restart`), serve the control socket SOCK (round phases), and exit with the program's status
// (75 after a "stop"). stdin/stdout/stderr and the environment (FERRY_RANK, FERRY_NTASKS,
// FERRY_JOB) are the agent's choice and are passed to the program unchanged.
// Status lines on --status-fd, one per phase, before the rank runs (then the fd is closed):
//   launch:  "launch ok PID" | "launch error CODE MESSAGE"
//   restore: "validate ok" | "validate error CODE MESSAGE", then "restore ok PID" | "restore error CODE MESSAGE"
// CODE is a protocol status (protocol/status.hpp), PID the program's pid in our namespace.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <vector>

#include "commands.hpp"
#include "exit_status.hpp"
#include "ferry/image/reader.hpp"
#include "ferry/proto/status.hpp"
#include "job_store.hpp"
#include "launch/pid_namespace.hpp"
#include "manifest.hpp"
#include "options.hpp"
#include "restore/restore.hpp"
#include "restore/time_namespace.hpp"
#include "supervisor.hpp"

namespace ferry::cli {
namespace {

// The status channel to the agent (a pipe); every line is written whole or not at all.
class StatusFd {
public:
  explicit StatusFd(int fd) : fd_(fd) {
    if (fd_ >= 0) ::fcntl(fd_, F_SETFD, FD_CLOEXEC);
  }
  ~StatusFd() { close(); }
  void line(const std::string& text) {
    if (fd_ < 0) return;
    std::string l = text;
    for (char& c : l)
      if (c == '\n') c = ' ';
    l += '\n';
    (void)!::write(fd_, l.data(), l.size());
  }
  void error(const char* phase, const Error& e) {
    line(std::string(phase) + " error " + std::to_string(proto::to_wire(e.code())) + " " + e.message());
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

private:
  int fd_;
};

struct RankArgs {
  std::string store, job, control, dir;
  uint32_t rank = 0;
  int status_fd = -1;
  int agent_fd = -1;
  Args program;
};

bool parse_rank_args(const char* command, const Args& all, bool want_program, RankArgs& out) {
  auto [ours, program] = split_at_dashdash(all);
  po::options_description opts(std::string("ferry ") + command + " (started by ferry-agent)");
  opts.add_options()("store", po::value<std::string>()->required(), "job store directory")(
      "job", po::value<std::string>()->required(), "job id")("rank", po::value<uint32_t>()->required(), "rank")(
      "control", po::value<std::string>()->required(), "control socket path")(
      "status-fd", po::value<int>()->default_value(-1), "descriptor for phase status lines")(
      "agent-fd", po::value<int>()->default_value(-1), "read end of the agent's liveness pipe")(
      "dir", po::value<std::string>(), "rank directory of the generation to restore");
  po::positional_options_description pos;
  po::variables_map vm;
  if (!parse(command, ours, opts, pos, vm)) return false;
  out.store = vm["store"].as<std::string>();
  out.job = vm["job"].as<std::string>();
  out.rank = vm["rank"].as<uint32_t>();
  out.control = vm["control"].as<std::string>();
  out.status_fd = vm["status-fd"].as<int>();
  out.agent_fd = vm["agent-fd"].as<int>();
  // Not open (an agent without the pipe): no watch, rather than adopting an unrelated fd later.
  if (out.agent_fd >= 0 && ::fcntl(out.agent_fd, F_SETFD, FD_CLOEXEC) != 0) out.agent_fd = -1;
  if (out.status_fd >= 0 && ::fcntl(out.status_fd, F_GETFD) < 0) out.status_fd = -1;
  out.dir = opt<std::string>(vm, "dir").value_or("");
  out.program = program;
  if (want_program && program.empty()) {
    complain(std::string(command) + ": no program given");
    return false;
  }
  if (!want_program && out.dir.empty()) {
    complain(std::string(command) + ": no --dir given");
    return false;
  }
  return true;
}

store::JobRecord rank_record(const RankArgs& a) {
  store::JobRecord job;
  job.id = a.job;
  job.uid = ::getuid();
  job.argv = a.program;
  return job;
}

}  // namespace

int cmd_rank_launch(const Args& args) {
  RankArgs a;
  if (!parse_rank_args("rank-launch", args, true, a)) return kExitUsage;
  StatusFd status(a.status_fd);
  auto refuse = [&](const Error& e) {
    status.error("launch", e);
    complain("rank-launch job " + a.job + " rank " + std::to_string(a.rank) + ": " + e.message());
    return exit_status_for(e);
  };
  auto store = store::JobStore::open(a.store);
  if (!store) return refuse(store.error());
  Supervisor sup(*store, rank_record(a), RankOptions{a.rank, a.control, a.agent_fd});
  if (auto r = sup.listen(); !r) return refuse(r.error());

  int errpipe[2];
  if (::pipe2(errpipe, O_CLOEXEC) != 0) return refuse(Error::from_errno("pipe"));
  launch::ExecSpec spec;
  spec.argv = a.program;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    if (kv.rfind("FERRY_CONTROL=", 0) != 0) spec.env.emplace_back(kv);
  }
  spec.env.push_back("FERRY_CONTROL=" + a.control);
  spec.keep_fds = {errpipe[1]};
  spec.sigmask = *static_cast<const sigset_t*>(sup.original_sigmask());
  spec.exec_error_fd = errpipe[1];
  auto ns = launch::PidNamespace::create(&spec);
  ::close(errpipe[1]);
  if (!ns) {
    ::close(errpipe[0]);
    return refuse(ns.error().wrap("create the rank's PID namespace"));
  }
  int child_errno = 0;
  ssize_t n;
  do n = ::read(errpipe[0], &child_errno, sizeof child_errno);
  while (n < 0 && errno == EINTR);
  ::close(errpipe[0]);
  if (n == sizeof child_errno) {
    status.error("launch", Error::from_errno("cannot run " + a.program[0], child_errno));
    status.close();
    (*ns)->release();
    sup.run((*ns)->init_pid());  // reap init
    return 127;
  }
  pid_t program_pid = (*ns)->main_pid();
  status.line("launch ok " + std::to_string(program_pid));
  status.close();
  (*ns)->release();  // the supervisor waits for init from now on
  return sup.run((*ns)->init_pid(), program_pid);
}

int cmd_rank_restore(const Args& args) {
  RankArgs a;
  if (!parse_rank_args("rank-restore", args, false, a)) return kExitUsage;
  StatusFd status(a.status_fd);
  const char* phase = "validate";
  auto refuse = [&](const Error& e) {
    status.error(phase, e);
    complain("rank-restore job " + a.job + " rank " + std::to_string(a.rank) + " from " + a.dir + " (" + phase +
             "): " + e.message());
    return exit_status_for(e);
  };
  auto store = store::JobStore::open(a.store);
  if (!store) return refuse(store.error());

  // Validate: every image of the rank's manifest, before anything is created.
  auto manifest = store::read_manifest(a.dir);
  if (!manifest) return refuse(manifest.error());
  if (manifest->images.empty()) return refuse(Error(errc::image_corrupt, "manifest of " + a.dir + " lists no image"));
  restore::RestoreOptions ropts;
  ropts.checksums_while_filling = manifest->images.size() == 1;  // see cmd_restart.cpp
  std::vector<std::unique_ptr<image::ImageReader>> readers;
  for (const auto& mi : manifest->images) {
    auto r = image::ImageReader::open(a.dir + "/" + mi.file);
    if (!r) return refuse(r.error());
    if (auto v = restore::validate_for_restore(**r, ropts); !v) return refuse(v.error().wrap(mi.file));
    readers.push_back(std::move(*r));
  }
  std::vector<restore::TreeProcess> tree;
  if (readers.size() > 1)
    for (size_t i = 0; i < readers.size(); ++i) {
      const auto& mi = manifest->images[i];
      tree.push_back({readers[i].get(), mi.pid, mi.ppid, mi.pgid, mi.sid, mi.shared_fds});
    }
  status.line("validate ok");

  // Restore, in a fresh PID namespace (same pids and tids) and time namespace.
  phase = "restore";
  Supervisor sup(*store, rank_record(a), RankOptions{a.rank, a.control, a.agent_fd});
  if (auto r = sup.listen(); !r) return refuse(r.error());
  ropts.validate = false;
  if (auto t = restore::prepare_time_namespace(readers.front()->image()); !t) return refuse(t.error());
  auto ns = launch::PidNamespace::create(nullptr);
  if (!ns) return refuse(ns.error().wrap("create the rank's PID namespace"));
  ropts.spawner = ns->get();
  ropts.same_tids = true;
  auto pid = tree.empty() ? restore::restore_process(*readers.front(), ropts) : restore::restore_tree(tree, ropts);
  if (!pid) return refuse(pid.error());  // ~PidNamespace ends init and the namespace
  tree.clear();
  readers.clear();  // release the image files while the rank runs
  status.line("restore ok " + std::to_string(*pid));
  status.close();
  (*ns)->release();
  return sup.run((*ns)->init_pid(), *pid);
}

}  // namespace ferry::cli
