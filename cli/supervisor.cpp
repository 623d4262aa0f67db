// SPDX-License-Identifier: Apache-2.0
// The supervisor loop: control socket sessions, child exit via pidfd, signal forwarding via
// signalfd. Control protocol (one request line per connection, replies are lines):
//   "checkpoint [stop] [incremental] [full] [keep=K]\n"
//                                         -> "ok GEN DIR MEMORY_BYTES IMAGE_BYTES PAUSE_S TOTAL_S\n"
//                                            or "error STATUS MESSAGE\n"
//   "self TID ADDR\n" (from libferry)     -> "accepted\n"; the checkpoint starts when the
//                                            client has closed; the result goes to ADDR
// The phases of a coordinator round (rank supervisors; the job stays frozen between them):
//   "freeze\n"                 -> "ok PROCESSES\n"      every process of the tree stopped
//   "dump GEN DIR\n"           -> "ok IMAGE_BYTES MEMORY_BYTES DURATION_NS\n"  images and
//                                 MANIFEST.json in DIR (created if missing), all fsynced
//   "resume\n"                 -> "ok\n"                 (also when nothing is frozen)
//   "stop\n"                   -> "ok\n"                 every process killed; exit status 75
//   "abort [DIR]\n"            -> "ok\n"                 resume if frozen, remove DIR
// Phase errors are "error CODE MESSAGE\n" with CODE a protocol status (protocol/status.hpp),
// where checkpoint errors carry an exit status. A rank supervisor refuses "checkpoint" and
// "self": its job's generations are committed by the coordinator.
// Only the job's owner and root may connect (SO_PEERCRED).
#include "supervisor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "exit_status.hpp"
#include "ferry/common/fs.hpp"
#include "ferry/proto/status.hpp"
#include "restore/lazy_pages.hpp"
#include "take_checkpoint.hpp"

namespace ferry::cli {

namespace asio = boost::asio;
using local_stream = asio::local::stream_protocol;

namespace {

const int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT};

std::string format_double(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

std::string phase_error(const Error& e) {
  return "error " + std::to_string(proto::to_wire(e.code())) + " " + e.message();
}

}  // namespace

struct Supervisor::Impl {
  const store::JobStore& store;
  store::JobRecord job;
  std::optional<RankOptions> rank;  // set: a rank supervisor of a coordinator job
  std::optional<FrozenJob> frozen;  // between "freeze" and "resume"/"stop"/"abort"
  asio::io_context io;
  local_stream::acceptor acceptor{io};
  asio::posix::stream_descriptor pidfd{io};
  asio::posix::stream_descriptor sigfd{io};
  asio::posix::stream_descriptor agent_alive{io};  // rank supervisors: the agent's liveness pipe
  sigset_t old_mask{};
  pid_t pid = -1;    // the job's program: checkpointed, signalled, recorded
  pid_t child = -1;  // our child, waited for: the program itself or ferry init
  bool stopped_after_checkpoint = false;
  uint64_t stopped_generation = 0;
  int exit_code = kExitInternal;
  bool busy = false;
  int lock_fd = -1;  // flock on supervisor.lock, held for the supervisor's life
  restore::LazyPages* lazy = nullptr;  // ferry restart --lazy

  Impl(const store::JobStore& s, store::JobRecord j, std::optional<RankOptions> r)
      : store(s), job(std::move(j)), rank(std::move(r)) {}

  std::string control_path() const { return rank ? rank->control_path : store.control_socket(job.id); }
  std::string lock_path() const {
    return rank ? rank->control_path + ".lock" : store.job_dir(job.id) + "/supervisor.lock";
  }
  std::string who() const { return "job " + job.id + (rank ? " rank " + std::to_string(rank->rank) : ""); }

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, local_stream::socket sock) {
      if (ec) return;  // acceptor closed
      on_connection(std::make_shared<local_stream::socket>(std::move(sock)));
      accept();
    });
  }

  static void reply(const std::shared_ptr<local_stream::socket>& sock, const std::string& line) {
    boost::system::error_code ec;
    asio::write(*sock, asio::buffer(line), ec);  // the peer may be gone; nothing to do then
  }

  void on_connection(std::shared_ptr<local_stream::socket> sock) {
    struct ucred cred {};
    socklen_t len = sizeof cred;
    if (::getsockopt(sock->native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (cred.uid != 0 && cred.uid != ::getuid())) {
      reply(sock, "error " + std::to_string(kExitPermission) + " job " + job.id + " belongs to another user\n");
      return;
    }
    auto buf = std::make_shared<asio::streambuf>(4096);
    asio::async_read_until(*sock, *buf, '\n', [this, sock, buf](boost::system::error_code ec, size_t) {
      if (ec) return;
      std::istream in(buf.get());
      std::string line;
      std::getline(in, line);
      on_request(sock, line);
    });
  }

  void on_request(const std::shared_ptr<local_stream::socket>& sock, const std::string& line) {
    std::istringstream words(line);
    std::string verb;
    words >> verb;
    if (verb == "freeze" || verb == "dump" || verb == "resume" || verb == "stop" || verb == "abort") {
      reply(sock, phase(verb, words) + "\n");
    } else if (rank && (verb == "checkpoint" || verb == "self")) {
      reply(sock, "error " + std::to_string(kExitUnsupported) + " " + who() +
                      " is part of a coordinator job: checkpoint it with 'ferry checkpoint " + job.id + "'\n");
    } else if (verb == "checkpoint") {
      CheckpointRequest req;
      for (std::string arg; words >> arg;) {
        req.stop |= arg == "stop";
        req.incremental |= arg == "incremental";
        req.full |= arg == "full";
        if (arg.rfind("keep=", 0) == 0) req.keep = static_cast<uint32_t>(std::strtoul(arg.c_str() + 5, nullptr, 10));
      }
      reply(sock, checkpoint(req) + "\n");
    } else if (verb == "self") {
      long tid = 0;
      unsigned long long addr = 0;
      words >> tid >> addr;
      if (!words || addr == 0) {
        reply(sock, "error " + std::to_string(kExitUsage) + " malformed self request\n");
        return;
      }
      reply(sock, "accepted\n");
      // Wait for the client's close so no socket is open in the process when it is frozen.
      auto byte = std::make_shared<char>();
      asio::async_read(*sock, asio::buffer(byte.get(), 1), [this, sock, byte, addr](boost::system::error_code, size_t) {
        CheckpointRequest req;
        req.self_flag_addr = addr;
        std::string result = checkpoint(req);
        if (result.rfind("error", 0) == 0) std::cerr << "ferry: self-checkpoint of job " << job.id << " failed: " << result.substr(6) << "\n";
      });
    } else {
      reply(sock, "error " + std::to_string(kExitUsage) + " unknown request '" + verb + "'\n");
    }
  }

  // One phase of a coordinator round (see the protocol at the top of this file).
  std::string phase(const std::string& verb, std::istringstream& words) {
    if (verb == "freeze") {
      if (frozen) return "ok " + std::to_string(frozen->tree.size());
      if (pid <= 0) return phase_error(Error(errc::process_gone, who() + " has no running process"));
      if (busy) return phase_error(Error(errc::busy, "a checkpoint of " + who() + " is in progress"));
      auto f = freeze_job(pid);
      if (!f) return phase_error(f.error().wrap("freeze " + who()));
      frozen.emplace(std::move(*f));
      return "ok " + std::to_string(frozen->tree.size());
    }
    if (verb == "dump") {
      uint64_t gen = 0;
      std::string dir;
      words >> gen;
      std::getline(words >> std::ws, dir);
      if (!gen || dir.empty() || dir[0] != '/')
        return phase_error(Error(errc::protocol, "dump: expected 'dump GENERATION /ABSOLUTE/DIR'"));
      if (!frozen)
        return phase_error(Error(proto::perr::bad_state, "dump " + who() + ": not frozen (send freeze first)"));
      if (auto r = fs::make_dirs(dir, 0700); !r) return phase_error(r.error().wrap("dump " + who()));
      DumpSpec spec;
      spec.dir = dir;
      spec.job = job.id;
      spec.rank = rank ? rank->rank : 0;
      spec.generation = gen;
      auto d = dump_frozen(*frozen, spec);
      if (!d) return phase_error(d.error().wrap("dump " + who() + " generation " + std::to_string(gen)));
      return "ok " + std::to_string(d->image_bytes) + " " + std::to_string(d->memory_bytes) + " " +
             std::to_string(static_cast<uint64_t>(d->seconds * 1e9));
    }
    if (verb == "resume") {
      if (!frozen) return "ok";
      auto r = resume_frozen(*frozen);
      frozen.reset();
      return r ? "ok" : phase_error(r.error().wrap("resume " + who()));
    }
    if (verb == "stop") {
      stopped_after_checkpoint = true;
      if (frozen) {
        auto r = kill_frozen(*frozen);
        frozen.reset();
        if (!r) return phase_error(r.error().wrap("stop " + who()));
      } else if (pid > 0) {
        ::kill(pid, SIGKILL);  // init then ends the rest of the job's PID namespace
      }
      return "ok";
    }
    // abort [DIR]: idempotent; whatever is frozen continues, this rank's partial files go.
    std::string dir;
    std::getline(words >> std::ws, dir);
    Result<void> resumed;
    if (frozen) {
      resumed = resume_frozen(*frozen);
      frozen.reset();
    }
    if (!dir.empty() && dir[0] == '/') {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
    return resumed ? "ok" : phase_error(resumed.error().wrap("abort: resume " + who()));
  }

  std::string checkpoint(const CheckpointRequest& req) {
    if (pid <= 0) return "error " + std::to_string(kExitNotFound) + " job " + job.id + " has no running process";
    if (busy || frozen) return "error " + std::to_string(kExitBusy) + " a checkpoint of job " + job.id + " is in progress";
    busy = true;
    if (lazy && lazy->active()) {  // every page placed before the snapshot forks
      std::cerr << "ferry: the checkpoint of " << who() << " waits until the lazy restore has placed every page\n";
      (void)lazy->wait();
    }
    auto out = take_checkpoint(store, job, pid, req);
    busy = false;
    if (!out) {
      return "error " + std::to_string(exit_status_for(out.error())) + " " + out.error().message();
    }
    if (out->stopped) {
      stopped_after_checkpoint = true;
      stopped_generation = out->generation;
    }
    return "ok " + std::to_string(out->generation) + " " + out->dir + " " + std::to_string(out->memory_bytes) +
           " " + std::to_string(out->image_bytes) + " " + format_double(out->pause_s) + " " +
           format_double(out->total_s);
  }

  void wait_child() {
    pidfd.async_wait(asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
      if (ec) return;
      int status = 0;
      pid_t r = ::waitpid(child, &status, WNOHANG);
      if (r == 0) return wait_child();
      if (r < 0) {
        exit_code = kExitInternal;
      } else if (WIFEXITED(status)) {
        exit_code = WEXITSTATUS(status);
      } else if (WIFSIGNALED(status)) {
        exit_code = 128 + WTERMSIG(status);
      }
      if (stopped_after_checkpoint) exit_code = kExitStopped;
      if (lazy) {
        if (lazy->active()) (void)lazy->wait();  // the fill ends with the program (ESRCH)
        if (auto f = lazy->failure()) {
          std::cerr << "ferry: restart of " << who() << " failed after the point of no return (lazy restore, "
                    << "the program was killed): " << f->message() << "\n";
          exit_code = kExitInternal;
        }
      }
      io.stop();
    });
  }

  void watch_agent() {
    agent_alive.async_wait(asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
      if (ec) return;
      char byte;
      if (::read(agent_alive.native_handle(), &byte, 1) > 0) return watch_agent();  // not EOF
      boost::system::error_code ignored;
      agent_alive.close(ignored);
      if (frozen) {  // the round that froze it cannot finish: let the rank continue
        (void)resume_frozen(*frozen);
        frozen.reset();
      }
    });
  }

  void wait_signals() {
    sigfd.async_wait(asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
      if (ec) return;
      signalfd_siginfo si{};
      while (::read(sigfd.native_handle(), &si, sizeof si) == sizeof si) {
        int sig = static_cast<int>(si.ssi_signo);
        // A terminal's ^C / ^\ already reached the process (same process group); forward
        // only signals sent to the supervisor by a process (kill, Slurm, a batch system).
        bool from_terminal = (sig == SIGINT || sig == SIGQUIT) && si.ssi_code == SI_KERNEL;
        if (!from_terminal && pid > 0) ::kill(pid, sig);
      }
      wait_signals();
    });
  }
};

Supervisor::Supervisor(const store::JobStore& store, store::JobRecord job, std::optional<RankOptions> rank)
    : impl_(std::make_unique<Impl>(store, std::move(job), std::move(rank))) {}

Supervisor::~Supervisor() {
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
  if (impl_->lock_fd >= 0) {
    ::unlink(impl_->control_path().c_str());
    ::close(impl_->lock_fd);
  }
}

const void* Supervisor::original_sigmask() const { return &impl_->old_mask; }

Result<void> Supervisor::listen() {
  // One supervisor per job, for as long as it lives: a second `ferry restart` of a job that
  // is being restarted or runs fails here (the lock goes away with this process).
  std::string lock_path = impl_->lock_path();
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) return fail_errno("open " + lock_path);
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(lock_fd);
    if (err == EWOULDBLOCK) return fail(errc::busy, impl_->who() + " is already running or being restarted");
    return fail_errno("lock " + lock_path, err);
  }
  impl_->lock_fd = lock_fd;
  std::string path = impl_->control_path();
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    return fail(errc::protocol, "control socket path " + path + " is longer than " +
                                    std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                                    " bytes; use a shorter --store or FERRY_HOME");
  ::unlink(path.c_str());  // stale from a supervisor that was killed
  boost::system::error_code ec;
  impl_->acceptor.open(local_stream(), ec);
  if (!ec) impl_->acceptor.bind(local_stream::endpoint(path), ec);
  if (!ec) impl_->acceptor.listen(16, ec);
  if (ec) return fail(Error(std::error_code(ec.value(), std::system_category()), "listen on " + path));
  ::chmod(path.c_str(), 0600);
  // Asio does not open sockets close-on-exec; the job must not inherit our listener.
  ::fcntl(impl_->acceptor.native_handle(), F_SETFD, FD_CLOEXEC);

  sigset_t set;
  sigemptyset(&set);
  for (int s : kForwarded) sigaddset(&set, s);
  sigprocmask(SIG_BLOCK, &set, &impl_->old_mask);
  int sfd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) return fail_errno("signalfd");
  impl_->sigfd.assign(sfd);
  return {};
}

void Supervisor::set_lazy(restore::LazyPages* lazy) { impl_->lazy = lazy; }

int Supervisor::run(pid_t pid, pid_t program) {
  auto& s = *impl_;
  s.child = pid;
  s.pid = program > 0 ? program : pid;
  int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pfd < 0) {
    std::perror("ferry: pidfd_open");
    return kExitInternal;
  }
  s.pidfd.assign(pfd);
  s.job.pid = s.pid;
  s.job.supervisor_pid = ::getpid();
  s.job.state = "running";
  if (s.job.run == 0) s.job.run = 1;  // the launch (cmd_restart numbers its attempts)
  s.job.restart_failure.clear();
  s.job.restart_failure_phase.clear();
  s.job.exit_status = -1;
  if (!s.rank)
    if (auto r = s.store.save(s.job); !r) std::cerr << "ferry: " << r.error().message() << "\n";
  s.accept();
  s.wait_child();
  s.wait_signals();
  if (s.rank && s.rank->agent_fd >= 0) {
    ::fcntl(s.rank->agent_fd, F_SETFD, FD_CLOEXEC);
    s.agent_alive.assign(s.rank->agent_fd);
    s.watch_agent();
  }
  s.io.run();
  s.frozen.reset();
  if (s.rank) return s.exit_code;
  s.job.state = s.stopped_after_checkpoint ? "stopped" : "exited";
  s.job.exit_status = s.exit_code;
  s.job.supervisor_pid = 0;
  if (auto r = s.store.save(s.job); !r) std::cerr << "ferry: " << r.error().message() << "\n";
  if (s.stopped_after_checkpoint)
    std::cerr << "ferry: job " << s.job.id << " stopped after checkpoint generation " << s.stopped_generation
              << "; resume it with 'ferry restart " << (s.job.name.empty() ? s.job.id : s.job.name) << "'\n";
  return s.exit_code;
}

}  // namespace ferry::cli
