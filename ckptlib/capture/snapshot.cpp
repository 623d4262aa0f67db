// SPDX-License-Identifier: Apache-2.0
// MemorySnapshot: fork-based copy-on-write snapshot of a frozen process (algorithm in
// snapshot.hpp).
#include "snapshot.hpp"

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "threads_fixups.hpp"

namespace ferry::capture {

namespace {

// Collects the exit of a killed traced process as its tracer (bounded: it is in a
// ptrace-stop, so it dies as soon as it is scheduled).
void collect_traced_exit(pid_t pid) {
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < end) {
    int st = 0;
    pid_t r = ::waitpid(pid, &st, __WALL | WNOHANG);
    if (r == pid && (WIFEXITED(st) || WIFSIGNALED(st))) return;
    if (r < 0 && errno != EINTR) return;
    if (r == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

// wait4(child, NULL, __WALL | WNOHANG, NULL) run by `t` (a thread of the child's parent).
Result<void> remote_reap(ptrace::Tracee& t, pid_t owner, pid_t child) {
  FERRY_TRY(gadget, ptrace::find_vdso_syscall_gadget(owner));
  FERRY_TRY(rc, ptrace::RemoteCalls::begin(t, gadget));
  auto r = rc.call(SYS_wait4, {static_cast<uint64_t>(child), 0, __WALL | WNOHANG, 0});
  auto fin = rc.finish();
  if (!r) return fail(r.error());
  if (!fin) return fail(fin.error());
  return {};
}

}  // namespace

Result<MemorySnapshot> MemorySnapshot::take(FrozenProcess& frozen) {
  const pid_t pid = frozen.pid();
  const std::string who = "snapshot of process " + std::to_string(pid);
  ptrace::Tracee& leader = frozen.leader();
  FERRY_TRY(gadget, ptrace::find_vdso_syscall_gadget(pid));
  FERRY_TRY_VOID(leader.set_options(PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL));
  (void)leader.take_cloned();
  Result<int64_t> r = [&]() -> Result<int64_t> {
    FERRY_TRY(rc, ptrace::RemoteCalls::begin(leader, gadget));
    auto c = rc.call(SYS_clone, {0, 0, 0, 0, 0});  // no flags, exit_signal 0: fork, no SIGCHLD
    auto fin = rc.finish();
    if (!c) return fail(c.error());
    if (!fin) return fail(fin.error());
    return *c;
  }();
  auto cloned = leader.take_cloned();
  // Back to the options of a plain freeze: the process must not die with us.
  auto reset = leader.set_options(0);
  std::optional<ptrace::Tracee> child;
  if (!cloned.empty()) {
    auto a = ptrace::Tracee::adopt(cloned.front());
    if (a) child.emplace(std::move(*a));
  }
  // clone() returned the child's id in the process's own PID namespace (what its wait4
  // takes); `cloned` holds it in ours.
  const pid_t ns_child = r && *r > 0 ? static_cast<pid_t>(*r) : -1;
  auto undo = [&](Error e) -> Result<MemorySnapshot> {
    for (pid_t c : cloned) {
      ::kill(c, SIGKILL);
      if (child && child->tid() == c) child->release();
      collect_traced_exit(c);
    }
    if (ns_child > 0) (void)remote_reap(leader, pid, ns_child);
    return fail(e.wrap(who));
  };
  if (!r) return undo(r.error());
  if (*r < 0) return undo(Error::from_errno("remote clone", static_cast<int>(-*r)));
  if (!reset) return undo(reset.error());
  if (!child || cloned.size() != 1)
    return undo(Error(errc::process_gone, "the forked copy was not attached"));
  return MemorySnapshot(pid, ns_child, std::move(*child));
}

MemorySnapshot::~MemorySnapshot() {
  if (child_ && child_->tid() >= 0) (void)discard(nullptr);
}

void MemorySnapshot::kill() noexcept {
  if (child_ && child_->tid() >= 0) ::kill(child_->tid(), SIGKILL);
}

Result<void> MemorySnapshot::discard(FrozenProcess* still_frozen) {
  if (!child_ || child_->tid() < 0) return {};
  const pid_t c = child_->tid();
  const auto t0 = std::chrono::steady_clock::now();
  // Never detach: the copy would run the process's code a second time.
  ::kill(c, SIGKILL);
  child_->release();
  collect_traced_exit(c);
  if (const char* e = std::getenv("FERRY_WRITE_TRACE"); e && *e && std::strcmp(e, "0") != 0)
    std::fprintf(stderr, "ferry snapshot %d of %d: killed and collected in %.3f s\n", c, app_,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (still_frozen) return remote_reap(still_frozen->leader(), app_, ns_child_);
  auto t = ptrace::Tracee::seize(app_);
  if (!t) return {};  // the process exited (its zombie child went to init) or is traced
  // Returning from the injected call clears the thread's rseq_cs (as for capture's calls): a
  // leader caught inside an rseq critical section must go on at its abort handler.
  uint64_t abort_ip = 0;
  if (auto regs = t->get_regs(); regs)
    if (auto rseq = t->get_rseq(); rseq && rseq->addr != 0)
      abort_ip = rseq_abort_ip(*t, *regs, rseq->addr, rseq->sig);
  auto r = remote_reap(*t, app_, ns_child_);
  if (abort_ip != 0)
    if (auto live = t->get_regs(); live) {
      live->rip = abort_ip;
      (void)t->set_regs(*live);
    }
  auto d = t->detach();
  if (!r) return fail(r.error().wrap("reap the snapshot of process " + std::to_string(app_)));
  if (!d) return fail(d.error());
  return {};
}

}  // namespace ferry::capture
