// SPDX-License-Identifier: Apache-2.0
// MemorySnapshot: a copy-on-write copy of a frozen process's private memory, so the process can
// run on while its pages are written (issue 7, application pause).
//
// Algorithm:
//   take:    with PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL set on the frozen leader, inject
//            clone(flags 0, exit_signal 0) into it through the vDSO syscall gadget. The kernel
//            copies the address space copy-on-write: the child's private pages are the
//            process's pages at this moment, whatever the process writes later. The child is
//            auto-attached (stopped before it runs a single instruction; it inherits EXITKILL,
//            so it dies with us) and never runs: it is only read (process_vm_readv,
//            /proc/PID/pagemap). The leader's options go back to normal. exit_signal 0 means the
//            process gets no SIGCHLD, and wait()/waitpid() without __WALL/__WCLONE never see it.
//            Not snapshotted by fork, hence copied while the process is still frozen (capture
//            does that): MAP_SHARED memory, MADV_DONTFORK and MADV_WIPEONFORK regions.
//   discard: SIGKILL the child and collect its exit as tracer. It is still the process's
//            child (a zombie with exit_signal 0 that nobody reaps), so wait4(child, __WALL |
//            WNOHANG) is injected into the process: through its leader if it is still frozen,
//            else by seizing the leader thread alone for the one call (a pause of that thread
//            of about a millisecond; the other threads run on; a leader caught inside an rseq
//            critical section goes on at its abort handler, as after capture's own calls).
#pragma once

#include <sys/types.h>

#include <optional>

#include "capture.hpp"
#include "ferry/common/result.hpp"
#include "ptrace/tracee.hpp"

namespace ferry::capture {

class MemorySnapshot {
public:
  // Forks the snapshot from frozen's leader. Fails (the process still frozen and unharmed)
  // when the kernel refuses the fork (memory, pids limit): the caller then reads the frozen
  // process itself.
  static Result<MemorySnapshot> take(FrozenProcess& frozen);

  MemorySnapshot(MemorySnapshot&&) noexcept = default;
  MemorySnapshot& operator=(MemorySnapshot&&) = delete;
  MemorySnapshot(const MemorySnapshot&) = delete;
  MemorySnapshot& operator=(const MemorySnapshot&) = delete;
  ~MemorySnapshot();  // discard(nullptr) if not done

  pid_t pid() const noexcept { return child_ ? child_->tid() : -1; }
  // The child under ptrace (for /proc/PID/mem reads of pages process_vm_readv cannot read).
  const ptrace::Tracee& tracee() const { return *child_; }

  // Sends the child SIGKILL (it dies as soon as it is scheduled; discard() collects it).
  void kill() noexcept;
  // Kills and reaps the child (see the top of this file). `still_frozen` is the process when
  // it is still frozen (its leader runs the wait4), nullptr once it was resumed. Best effort
  // towards the process: if it exited meanwhile there is nothing left to reap.
  Result<void> discard(FrozenProcess* still_frozen);

private:
  MemorySnapshot(pid_t app, pid_t ns_child, ptrace::Tracee child)
      : app_(app), ns_child_(ns_child), child_(std::move(child)) {}
  pid_t app_ = -1;
  pid_t ns_child_ = -1;  // the child's id in the process's PID namespace (for its wait4)
  std::optional<ptrace::Tracee> child_;
};

}  // namespace ferry::capture
