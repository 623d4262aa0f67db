// SPDX-License-Identifier: Apache-2.0
// PidNamespace and ferry init (see pid_namespace.hpp).
//
// Algorithm:
//   create: socketpair(SEQPACKET) ctl; clone3(CLONE_NEWPID, exit_signal SIGCHLD) -> the child
//     is PID 1 of a new namespace and runs init_main(). Without CAP_SYS_ADMIN the clone also
//     has CLONE_NEWUSER (the new user namespace owns the PID namespace; init gets every
//     capability in it), and we write init's uid_map/setgroups/gid_map (our own ids only,
//     user_namespace.cpp) and then send init a "go": until then init waits, so nothing runs
//     with unmapped ids. We wait (bounded) for init's first reply, then find the main
//     process's pid in our namespace through /proc/INIT/task/INIT/children and the NSpid
//     line of each child.
//   init_main (raw system calls only: it is a fork of a possibly multi-threaded process):
//     block every signal; with a user namespace wait for "go", and at a restart (time
//     offsets given) unshare(CLONE_NEWTIME) and write /proc/self/timens_offsets, so that
//     init's later children start in the job's time namespace (a failure is reported in the
//     first reply, not fatal); with a program, clone a child (PID 2) that sets the program's
//     signal mask, closes the fds it must not keep and execs (errno to exec_error_fd on
//     failure); unmap the creator's heap (heap_to_drop: no copy-on-write sharing with the
//     restorer or supervisor, whose writes would fault); reply {0, pid, time errno}; close
//     every fd but 0-2 and ctl; signalfd for every signal;
//     loop on poll(signalfd, ctl):
//       SIGCHLD      reap every exited child (wait4 WNOHANG); the main one ends init with
//                    its status (exit code, or 128+signal: PID 1 cannot re-raise a signal
//                    on itself, and ferry reports both the same way);
//       other        forward to the main process (PID 1 gets no signal it has no handler
//                    for, so without this `kill -TERM INIT` would do nothing);
//       ctl request  spawn {pid, gadget, page}: pipe; clone3(set_tid = {pid}) whose child
//                    runs restore::bootstrap_restore_child(pipe, gadget, page, 1); wait for
//                    its status byte and EOF (bounded); reply {errno, pid}; on success it is
//                    the main process;
//       ctl EOF      the creator is gone: keep reaping and relaying.
//   Choice: init creates the restore child (rather than the restorer doing setns + clone3),
//   because only then is init its parent: getppid() is 1 as at launch, init reaps it and
//   relays its exit status, exactly as for a launched program.
#include "launch/pid_namespace.hpp"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <tuple>
#include <utility>

#include "capture/ns_ids.hpp"
#include "launch/user_namespace.hpp"
#include "ferry/common/fs.hpp"
#include "proc/maps.hpp"
#include "proc/task.hpp"

namespace ferry::launch {

namespace {

constexpr int kReplyTimeoutMs = 15000;  // init answers within this (it never blocks long)
constexpr int kBootstrapTimeoutMs = 10000;

struct Request {
  int32_t op;  // kSpawn
  int32_t pid;
  uint64_t gadget;
  uint64_t page;
};
struct Reply {
  int32_t err;         // 0 or an errno
  int32_t pid;         // in the namespace
  int32_t time_err = 0;  // first reply: 0, or why the time namespace could not be made
};
constexpr int32_t kSpawn = 1;
constexpr int32_t kGo = 2;  // the creator has written the user namespace's id maps

struct CloneArgs {  // struct clone_args, version 2 (include/uapi/linux/sched.h)
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
  uint64_t set_tid, set_tid_size, cgroup;
};
static_assert(sizeof(CloneArgs) == 88);

// Everything init needs, prepared before the clone (init allocates nothing).
struct InitPlan {
  int ctl = -1;
  bool has_program = false;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const int* keep = nullptr;  // sorted
  size_t nkeep = 0;
  sigset_t mask{};
  int errfd = -1;
  bool wait_for_go = false;           // user namespace: wait for kGo before anything else
  const char* time_offsets = nullptr;  // make a time namespace with these offsets
  size_t time_offsets_len = 0;
  // The creator's heap, which init unmaps once it has started the program (none: 0, 0).
  uint64_t heap_start = 0, heap_end = 0;
};

// The [heap] of this process, for init to drop: the clone shares every page of it with us,
// so each later write of ours to one (a restore's tables, a supervisor's checkpoints) would
// pay a copy-on-write fault and a TLB shootdown, and a restore child cloned from init would
// inherit it too. Init uses only its stack, its TLS and the plan (on our stack): {0, 0} when
// any of those lies in the heap.
std::pair<uint64_t, uint64_t> heap_to_drop(const InitPlan& plan) {
  auto maps = proc::read_maps(::getpid());
  if (!maps) return {0, 0};
  uint64_t start = 0, end = 0;  // one or more mappings (madvise splits it)
  for (const auto& m : *maps) {
    if (m.special != proc::Special::heap) continue;
    if (end == 0) start = m.start;
    end = m.end;
  }
  int local = 0;
  for (const void* p : {static_cast<const void*>(&plan), static_cast<const void*>(&local),
                        static_cast<const void*>(__builtin_thread_pointer())}) {
    const auto a = reinterpret_cast<uint64_t>(p);
    if (a >= start && a < end) return {0, 0};
  }
  return {start, end};
}

long raw_clone3(CloneArgs& a) { return ::syscall(SYS_clone3, &a, sizeof a); }

void block_all() {
  uint64_t all = ~uint64_t{0};
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, nullptr, 8);
}

int status_code(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 255;
}

bool poll_in(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

void send_reply(int ctl, int32_t err, int32_t pid, int32_t time_err = 0) {
  Reply r{err, pid, time_err};
  if (ctl >= 0) (void)::send(ctl, &r, sizeof r, MSG_NOSIGNAL);
}

// The program, in init's namespace (its pid there is 2 when it is the first child).
[[noreturn]] void exec_program(const InitPlan& p) {
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &p.mask, nullptr, 8);
  unsigned first = 3;
  for (size_t i = 0; i < p.nkeep; ++i) {
    int k = p.keep[i];
    if (k < 3 || static_cast<unsigned>(k) < first) continue;
    if (static_cast<unsigned>(k) > first) ::syscall(SYS_close_range, first, static_cast<unsigned>(k) - 1, 0);
    first = static_cast<unsigned>(k) + 1;
  }
  ::syscall(SYS_close_range, first, ~0U, 0);  // keeps errfd when it was listed in keep
  ::execvpe(p.argv[0], p.argv, p.envp);
  int err = errno;
  if (p.errfd >= 0) (void)!::write(p.errfd, &err, sizeof err);
  ::syscall(SYS_exit_group, 127);
  __builtin_unreachable();
}

// Handles one spawn request; returns the new main pid or 0.
pid_t init_spawn(int ctl, const Request& rq) {
  int pfd[2];
  if (::pipe2(pfd, O_CLOEXEC) != 0) {
    send_reply(ctl, errno, 0);
    return 0;
  }
  pid_t want = rq.pid;
  CloneArgs a{};
  a.exit_signal = SIGCHLD;
  a.set_tid = reinterpret_cast<uint64_t>(&want);
  a.set_tid_size = 1;
  long c = raw_clone3(a);
  if (c == 0) {
    ::close(pfd[0]);
    restore::bootstrap_restore_child(pfd[1], rq.gadget, rq.page, 1);
  }
  int err = c < 0 ? errno : 0;
  ::close(pfd[1]);
  if (err == 0) {
    unsigned char status = 0;
    char dummy;
    if (!poll_in(pfd[0], kBootstrapTimeoutMs) || ::read(pfd[0], &status, 1) != 1)
      err = ETIMEDOUT;
    else if (status != 0)
      err = status;
    else if (!poll_in(pfd[0], kBootstrapTimeoutMs) || ::read(pfd[0], &dummy, 1) != 0)
      err = ETIMEDOUT;
    if (err != 0) ::kill(static_cast<pid_t>(c), SIGKILL);  // reaped with the next SIGCHLD
  }
  ::close(pfd[0]);
  send_reply(ctl, err, err == 0 ? static_cast<int32_t>(c) : 0);
  return err == 0 ? static_cast<pid_t>(c) : 0;
}

// The job's time namespace for init's children-to-be; 0 or an errno.
int make_time_namespace(const InitPlan& p) {
  if (::syscall(SYS_unshare, CLONE_NEWTIME) != 0) return errno;
  int fd = ::open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n = ::write(fd, p.time_offsets, p.time_offsets_len);
  int err = n == static_cast<ssize_t>(p.time_offsets_len) ? 0 : (n < 0 ? errno : EIO);
  ::close(fd);
  return err;
}

[[noreturn]] void init_main(const InitPlan& p) {
  block_all();
  ::prctl(PR_SET_NAME, "ferry-init", 0, 0, 0);
  int ctl = p.ctl;
  pid_t main_pid = 0;
  if (p.wait_for_go) {
    Request go{};
    if (!poll_in(ctl, kReplyTimeoutMs) || ::recv(ctl, &go, sizeof go, 0) != static_cast<ssize_t>(sizeof go) ||
        go.op != kGo)
      ::syscall(SYS_exit_group, 127);  // the creator could not map our ids, or is gone
  }
  int time_err = p.time_offsets ? make_time_namespace(p) : 0;
  if (p.has_program) {
    CloneArgs a{};
    a.exit_signal = SIGCHLD;
    long c = raw_clone3(a);
    if (c == 0) exec_program(p);
    if (c < 0) {
      send_reply(ctl, errno, 0);
      ::syscall(SYS_exit_group, 127);
    }
    main_pid = static_cast<pid_t>(c);
    if (p.errfd >= 0) ::close(p.errfd);
  }
  // Before the reply: a restorer reads init's layout once create() returned.
  if (p.heap_end > p.heap_start) ::syscall(SYS_munmap, p.heap_start, p.heap_end - p.heap_start);
  send_reply(ctl, 0, main_pid, time_err);
  // Nothing of the creator's stays open in init but the std streams and ctl.
  if (ctl > 3) ::syscall(SYS_close_range, 3, static_cast<unsigned>(ctl) - 1, 0);
  ::syscall(SYS_close_range, static_cast<unsigned>(ctl) + 1, ~0U, 0);
  sigset_t all;
  sigfillset(&all);
  int sfd = ::signalfd(-1, &all, SFD_CLOEXEC);
  if (sfd < 0) ::syscall(SYS_exit_group, 127);
  for (;;) {
    pollfd fds[2] = {{sfd, POLLIN, 0}, {ctl, POLLIN, 0}};
    int r = ::poll(fds, ctl >= 0 ? 2 : 1, -1);
    if (r < 0) continue;
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si;
      if (::read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        int sig = static_cast<int>(si.ssi_signo);
        if (sig == SIGCHLD) {
          for (;;) {
            int st = 0;
            pid_t w = ::wait4(-1, &st, WNOHANG | __WALL, nullptr);
            if (w <= 0) break;
            if (w == main_pid) ::syscall(SYS_exit_group, status_code(st));
          }
        } else if (main_pid > 0) {
          ::kill(main_pid, sig);
        }
      }
    }
    if (ctl >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      Request rq{};
      ssize_t n = ::recv(ctl, &rq, sizeof rq, 0);
      if (n <= 0) {
        ::close(ctl);  // the creator is gone; the job goes on
        ctl = -1;
      } else if (n == static_cast<ssize_t>(sizeof rq) && rq.op == kSpawn && main_pid == 0) {
        main_pid = init_spawn(ctl, rq);
      } else {
        send_reply(ctl, EINVAL, 0);
      }
    }
  }
}

Result<Reply> read_reply(int ctl, const std::string& what) {
  if (!poll_in(ctl, kReplyTimeoutMs)) return fail(errc::restore_failed, what + ": ferry init did not answer");
  Reply r{};
  ssize_t n = ::recv(ctl, &r, sizeof r, 0);
  if (n != static_cast<ssize_t>(sizeof r)) return fail(errc::restore_failed, what + ": ferry init is gone");
  return r;
}

}  // namespace

Result<std::unique_ptr<PidNamespace>> PidNamespace::create(const ExecSpec* program, const NamespaceOptions& opts) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return fail_errno("create PID namespace: socketpair");
  InitPlan plan;
  plan.ctl = sv[1];
  std::vector<char*> argv, envp;
  std::vector<int> keep;
  if (program) {
    if (program->argv.empty()) return fail(errc::protocol, "create PID namespace: no program");
    for (const auto& a : program->argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const auto& e : program->env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    keep = program->keep_fds;
    std::sort(keep.begin(), keep.end());
    plan.has_program = true;
    plan.argv = argv.data();
    plan.envp = envp.data();
    plan.keep = keep.data();
    plan.nkeep = keep.size();
    plan.mask = program->sigmask;
    plan.errfd = program->exec_error_fd;
  }
  const bool user_ns = !can_own_pid_namespace();
  if (user_ns) {
    plan.wait_for_go = true;
    if (!opts.time_offsets.empty()) {
      plan.time_offsets = opts.time_offsets.data();
      plan.time_offsets_len = opts.time_offsets.size();
    }
  }
  std::tie(plan.heap_start, plan.heap_end) = heap_to_drop(plan);
  CloneArgs a{};
  a.flags = CLONE_NEWPID | (user_ns ? CLONE_NEWUSER : 0);
  a.exit_signal = SIGCHLD;
  long c = raw_clone3(a);
  if (c == 0) init_main(plan);
  int err = errno;
  ::close(sv[1]);
  if (c < 0) {
    ::close(sv[0]);
    if (user_ns)
      return fail(errc::unsupported, "create a user namespace for the job's PID namespace (clone3 CLONE_NEWUSER): " +
                                         user_namespace_refusal(err));
    if (err == EPERM) return fail(errc::unsupported, "create PID namespace: clone3(CLONE_NEWPID): " + std::string(std::strerror(err)));
    return fail_errno("create PID namespace: clone3(CLONE_NEWPID)", err);
  }
  std::unique_ptr<PidNamespace> ns(new PidNamespace(static_cast<pid_t>(c), sv[0], user_ns));
  const std::string what = "start ferry init " + std::to_string(c);
  if (user_ns) {
    // ~PidNamespace kills init on the way out; init never ran anything of the job's.
    if (auto m = map_own_ids(ns->init_pid_); !m)
      return fail(errc::unsupported, "map our uid/gid into the job's user namespace: " + m.error().message());
    Request go{kGo, 0, 0, 0};
    if (::send(sv[0], &go, sizeof go, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof go))
      return fail_errno(what + ": send go");
  }
  FERRY_TRY(r, read_reply(sv[0], what));
  if (r.err != 0) return fail_errno(what + ": start the program", r.err);
  if (r.time_err != 0)
    ns->time_error_ = Error::from_errno("create the job's time namespace in its user namespace", r.time_err).message();
  if (program) {
    // A program that ends at once (exec failed, or `true`) may already be reaped by init:
    // then it has no host pid any more, and init is about to exit with its status.
    auto host = ns->host_pid_of(r.pid);
    if (!host && !host.error().is(errc::process_gone)) return fail(host.error());
    ns->main_pid_ = host ? *host : -1;
  }
  return ns;
}

PidNamespace::~PidNamespace() {
  if (ctl_ >= 0) ::close(ctl_);
  if (released_ || init_pid_ <= 0) return;
  ::kill(init_pid_, SIGKILL);
  for (int i = 0; i < 1000; ++i) {
    int st = 0;
    pid_t r = ::waitpid(init_pid_, &st, WNOHANG);
    if (r == init_pid_ || (r < 0 && errno != EINTR)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Result<pid_t> PidNamespace::host_pid_of(pid_t ns_pid) const {
  const std::string path = "/proc/" + std::to_string(init_pid_) + "/task/" + std::to_string(init_pid_) + "/children";
  FERRY_TRY(text, fs::read_file(path));
  for (pid_t c : proc::parse_children(text)) {
    auto id = capture::innermost_id(c, c);
    if (id && *id == ns_pid) return c;
  }
  return fail(errc::process_gone, "find process " + std::to_string(ns_pid) + " of the namespace of ferry init " +
                                      std::to_string(init_pid_) + ": not a child of init");
}

Result<pid_t> PidNamespace::spawn(pid_t pid, uint64_t gadget, uint64_t page) {
  const std::string what = "create process " + std::to_string(pid) + " in the namespace of ferry init " +
                           std::to_string(init_pid_);
  if (ctl_ < 0) return fail(errc::restore_failed, what + ": init is gone");
  Request rq{kSpawn, pid, gadget, page};
  if (::send(ctl_, &rq, sizeof rq, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof rq)) return fail_errno(what);
  FERRY_TRY(r, read_reply(ctl_, what));
  if (r.err != 0) return fail_errno(what + " (clone3 set_tid)", r.err);
  FERRY_TRY(host, host_pid_of(r.pid));
  main_pid_ = host;
  return host;
}

}  // namespace ferry::launch
