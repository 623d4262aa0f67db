// SPDX-License-Identifier: Apache-2.0
// FrozenProcess: seize + interrupt every thread of a process, resume or kill them all.
//
// Algorithm (freeze):
//   1. refuse a thread id, a process traced by someone else, or a dead main thread (zombie
//      leader with live threads: nothing could resume it);
//   2. seize + interrupt + wait the leader, then list /proc/PID/task and do the same for every
//      thread not yet seen; repeat the listing until a round finds no new thread. A thread can
//      only be created by a running thread, so once a listing shows nothing new every thread
//      is in a ptrace-stop and the set is final. Threads that exit on the way (ESRCH at seize,
//      an exit status while waiting for the stop) are dropped. Rounds are bounded (a process
//      creating threads faster than we stop them makes freeze fail with errc::busy).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "capture.hpp"
#include "proc/task.hpp"

namespace ferry::capture {

namespace {

constexpr int kMaxFreezeRounds = 64;
// Bound on waiting for the exit of one killed thread (it is already in a ptrace-stop, so it
// dies as soon as it is scheduled).
constexpr auto kReapLimit = std::chrono::seconds(10);

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Error gone_or(const Error& e, pid_t pid) {
  if (e.code() == std::error_code(ENOENT, std::system_category()) ||
      e.code() == std::error_code(ESRCH, std::system_category()))
    return Error(errc::process_gone, "freeze process " + std::to_string(pid) + ": no such process");
  return e.wrap("freeze process " + std::to_string(pid));
}

// Collects the exit of a killed, traced thread as its tracer (bounded).
void collect_exit(pid_t tid) {
  auto end = std::chrono::steady_clock::now() + kReapLimit;
  while (std::chrono::steady_clock::now() < end) {
    int st = 0;
    pid_t r = ::waitpid(tid, &st, __WALL | WNOHANG);
    if (r == tid && (WIFEXITED(st) || WIFSIGNALED(st))) return;
    if (r < 0 && errno != EINTR) return;  // ECHILD: already collected or not ours
    if (r == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

Result<FrozenProcess> FrozenProcess::freeze(pid_t pid) {
  const std::string who = "process " + std::to_string(pid);
  auto status = proc::read_status(pid);
  if (!status) return fail(gone_or(status.error(), pid));
  if (status->tgid != pid)
    return fail(errc::unsupported, "freeze " + who + ": it is a thread of process " + std::to_string(status->tgid));
  if (status->tracer_pid != 0)
    return fail(errc::unsupported, "freeze " + who + ": it is already traced by process " +
                                       std::to_string(status->tracer_pid));
  auto st = proc::read_stat(pid);
  if (!st) return fail(gone_or(st.error(), pid));
  if (st->state == 'Z' && status->threads > 1)
    return fail(errc::unsupported, "freeze " + who + ": its main thread has exited while " +
                                       std::to_string(status->threads - 1) +
                                       " other threads run; such processes are not supported");

  std::vector<ptrace::Tracee> held;
  auto leader = ptrace::Tracee::seize(pid);
  if (!leader) return fail(leader.error().wrap("freeze " + who));
  int64_t at = now_ns();
  held.push_back(std::move(*leader));
  std::set<pid_t> seen = {pid};
  for (int round = 0;; ++round) {
    if (round == kMaxFreezeRounds)
      return fail(errc::busy, "freeze " + who + ": new threads kept appearing after " +
                                  std::to_string(kMaxFreezeRounds) + " rounds");
    auto tids = proc::list_threads(pid);
    if (!tids) return fail(gone_or(tids.error(), pid));  // ~Tracee detaches what we hold
    bool fresh = false;
    for (pid_t tid : *tids) {
      if (!seen.insert(tid).second) continue;
      fresh = true;
      auto t = ptrace::Tracee::seize(tid);
      if (!t) {
        if (t.error().is(errc::process_gone)) continue;  // the thread exited meanwhile
        return fail(t.error().wrap("freeze thread " + std::to_string(tid) + " of " + who));
      }
      held.push_back(std::move(*t));
    }
    if (!fresh) break;
  }
  std::sort(held.begin() + 1, held.end(),
            [](const ptrace::Tracee& a, const ptrace::Tracee& b) { return a.tid() < b.tid(); });
  return FrozenProcess(pid, status->ppid, std::move(held), at);
}

FrozenProcess::~FrozenProcess() {
  if (frozen()) (void)resume();
}

Result<void> FrozenProcess::resume() {
  Result<void> first;
  for (auto& t : threads_) {
    if (t.tid() < 0) continue;
    pid_t tid = t.tid();
    if (auto r = t.detach(); !r && first)
      first = fail(r.error().wrap("resume thread " + std::to_string(tid) + " of process " + std::to_string(pid_)));
  }
  return first;
}

Result<void> FrozenProcess::kill() {
  if (!frozen()) return {};
  int err = ::kill(pid_, SIGKILL) == 0 ? 0 : errno;
  std::vector<pid_t> others;
  for (size_t i = 1; i < threads_.size(); ++i) {
    if (threads_[i].tid() >= 0) others.push_back(threads_[i].tid());
    threads_[i].release();
  }
  threads_.front().release();
  if (err != 0) {
    if (err == ESRCH) return {};
    return fail_errno("kill process " + std::to_string(pid_), err);
  }
  // A traced thread that dies stays a zombie until its tracer collects it, and the leader
  // is not reported to the parent before every other thread is gone.
  for (pid_t tid : others) collect_exit(tid);
  // As tracer (but not parent) we must collect the leader's exit too so the real parent is
  // notified and can reap it; as the parent we leave the reaping to our own code.
  if (parent_ != ::getpid()) collect_exit(pid_);
  return {};
}

Result<void> FrozenProcess::write_memory(uint64_t addr, std::span<const std::byte> bytes) {
  if (!frozen())
    return fail(errc::process_gone, "write memory of process " + std::to_string(pid_) + ": not frozen");
  return threads_.front().write_memory(addr, bytes);
}

}  // namespace ferry::capture
