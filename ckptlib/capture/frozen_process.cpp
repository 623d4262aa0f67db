// SPDX-License-Identifier: Apache-2.0
// FrozenProcess: seize + interrupt the (single) thread of a process, resume or kill it.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "capture.hpp"
#include "proc/task.hpp"

namespace ferry::capture {

namespace {
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
  auto threads = proc::list_threads(pid);
  if (!threads) return fail(gone_or(threads.error(), pid));
  auto refuse_threads = [&](size_t n) {
    return fail(errc::unsupported, who + " has " + std::to_string(n) +
                                       " threads; multi-threaded processes are not supported yet");
  };
  if (threads->size() > 1) return refuse_threads(threads->size());

  auto t = ptrace::Tracee::seize(pid);
  if (!t) return fail(t.error().wrap("freeze " + who));
  int64_t at = now_ns();
  // Re-check: a thread may have been created between the listing and the stop.
  threads = proc::list_threads(pid);
  if (!threads) return fail(gone_or(threads.error(), pid));
  if (threads->size() > 1) return refuse_threads(threads->size());  // ~Tracee detaches
  return FrozenProcess(pid, status->ppid, std::move(*t), at);
}

FrozenProcess::~FrozenProcess() {
  if (leader_ && leader_->tid() >= 0) (void)resume();
}

Result<void> FrozenProcess::resume() {
  if (!leader_ || leader_->tid() < 0) return {};
  if (auto r = leader_->detach(); !r) return fail(r.error().wrap("resume process " + std::to_string(pid_)));
  return {};
}

Result<void> FrozenProcess::kill() {
  if (!leader_ || leader_->tid() < 0) return {};
  if (::kill(pid_, SIGKILL) != 0) {
    int err = errno;
    leader_->release();
    if (err == ESRCH) return {};
    return fail_errno("kill process " + std::to_string(pid_), err);
  }
  leader_->release();
  // As tracer (but not parent) we must collect the exit so the real parent is notified and
  // can reap; as the parent we leave the reaping to our own code.
  if (parent_ != ::getpid()) {
    for (int i = 0; i < 1000; ++i) {
      int st = 0;
      pid_t r = ::waitpid(pid_, &st, __WALL);
      if (r == pid_ && (WIFEXITED(st) || WIFSIGNALED(st))) break;
      if (r < 0 && errno != EINTR) break;  // ECHILD: already released
    }
  }
  return {};
}

Result<void> FrozenProcess::write_memory(uint64_t addr, std::span<const std::byte> bytes) {
  if (!leader_ || leader_->tid() < 0)
    return fail(errc::process_gone, "write memory of process " + std::to_string(pid_) + ": not frozen");
  return leader_->write_memory(addr, bytes);
}

}  // namespace ferry::capture
