// SPDX-License-Identifier: Apache-2.0
// Tracee: one thread held under ptrace(PTRACE_SEIZE), with the operations capture and restore
// need: registers, XSAVE, signal mask, rseq configuration, memory access and remote system
// calls. Owns the attachment: the destructor detaches (the thread continues) unless detach()
// or release() was called. Not thread-safe; a Tracee is used by the thread that seized it.
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <utility>
#include <vector>

#include "ferry/common/result.hpp"

namespace ferry::ptrace {

struct RseqConfig {
  uint64_t addr = 0;
  uint32_t len = 0;
  uint32_t sig = 0;
  uint32_t flags = 0;
};

class Tracee {
public:
  // PTRACE_SEIZE (options PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL if exit_kill) then
  // PTRACE_INTERRUPT, and waits until the thread is in a ptrace-stop. Fails with
  // errc::process_gone if it exits meanwhile. The thread's pending signals stay pending.
  static Result<Tracee> seize(pid_t tid, bool exit_kill = false);
  // Takes over a thread that is already traced by the caller because a traced thread created
  // it with PTRACE_O_TRACECLONE in effect (see cloned()); waits for its initial
  // PTRACE_EVENT_STOP. The thread inherited its creator's ptrace options.
  static Result<Tracee> adopt(pid_t tid);

  Tracee(Tracee&& o) noexcept;
  Tracee& operator=(Tracee&& o) noexcept;
  Tracee(const Tracee&) = delete;
  Tracee& operator=(const Tracee&) = delete;
  ~Tracee();

  pid_t tid() const noexcept { return tid_; }

  // PTRACE_DETACH: the thread continues (with any registers set meanwhile).
  Result<void> detach();
  // Forget the attachment without detaching (the thread was killed, or ownership moves on).
  void release() noexcept { tid_ = -1; }

  Result<user_regs_struct> get_regs() const;              // NT_PRSTATUS
  Result<void> set_regs(const user_regs_struct& regs);
  Result<std::vector<uint8_t>> get_xstate() const;        // NT_X86_XSTATE, standard format
  Result<void> set_xstate(std::span<const uint8_t> xsave);
  Result<uint64_t> get_sigmask() const;                   // PTRACE_GETSIGMASK
  Result<void> set_sigmask(uint64_t mask);
  Result<RseqConfig> get_rseq() const;                    // PTRACE_GET_RSEQ_CONFIGURATION
  // PTRACE_SETOPTIONS; PTRACE_O_TRACESYSGOOD is always added (syscall() depends on it).
  Result<void> set_options(long options);

  // Thread ids (in the caller's PID namespace) of threads this thread created with
  // PTRACE_O_TRACECLONE set, as reported by PTRACE_EVENT_CLONE stops met while waiting in
  // syscall(); take_cloned() hands them over once.
  std::vector<pid_t> take_cloned() noexcept { return std::exchange(cloned_, {}); }

  // Runs one system call inside the tracee: sets rip = gadget (the address of a two-byte
  // `syscall` instruction mapped executable in the tracee), rax = nr and the arguments, then
  // resumes with PTRACE_SYSCALL to the syscall-entry stop and again to the syscall-exit stop,
  // and returns the raw result (a negative errno on failure). Registers are NOT restored:
  // the caller saves get_regs() first and puts them back when done (see RemoteCalls). Signals
  // that arrive meanwhile are held pending (the caller blocks them with set_sigmask(~0)).
  Result<int64_t> syscall(uint64_t gadget, long nr, std::initializer_list<uint64_t> args = {});

  // Runs code the caller wrote into the tracee (executable memory) with `regs`, to the int3
  // that ends it: returns the registers at that trap, whose rip must be `trap_rip` (just past
  // the int3). One stop for a loop of system calls where syscall() makes two per call. Other
  // stops on the way are handled as in syscall(). Registers are NOT restored (RemoteCalls).
  Result<user_regs_struct> run_to_breakpoint(const user_regs_struct& regs, uint64_t trap_rip);

  // Memory of the tracee's process. read/write use process_vm_readv/writev; write_memory
  // falls back to /proc/PID/mem (which may write read-only pages) when that fails with EFAULT.
  Result<void> read_memory(uint64_t addr, std::span<std::byte> out) const;
  Result<void> write_memory(uint64_t addr, std::span<const std::byte> in) const;

  // Signals dequeued by signal-delivery-stops while held (suppressed, not lost): detach()
  // re-queues them with tgkill before letting the thread go.
  const std::vector<int>& deferred_signals() const noexcept { return deferred_signals_; }

private:
  explicit Tracee(pid_t tid) noexcept : tid_(tid) {}
  // Waits for the next syscall stop (syscall_stop) or PTRACE_EVENT_STOP (!syscall_stop),
  // deferring signal-delivery-stops met on the way.
  Result<void> wait_stop(bool syscall_stop);
  // The thread's next ptrace-stop (its wait status); fails if it exited meanwhile.
  Result<int> next_stop();
  Result<void> resume_for(bool syscall_stop);
  static pid_t tgid_of(pid_t tid);
  pid_t tid_ = -1;
  std::vector<int> deferred_signals_;
  std::vector<pid_t> cloned_;
};

// Saves the tracee's registers and signal mask, blocks all signals, and restores both when
// finished (or destroyed), so a sequence of remote system calls leaves no trace in the thread.
class RemoteCalls {
public:
  static Result<RemoteCalls> begin(Tracee& t, uint64_t gadget);
  RemoteCalls(RemoteCalls&&) noexcept;
  RemoteCalls& operator=(RemoteCalls&&) = delete;
  ~RemoteCalls();
  Result<int64_t> call(long nr, std::initializer_list<uint64_t> args = {});
  Result<void> finish();  // restore registers and mask now

private:
  RemoteCalls(Tracee& t, uint64_t gadget, user_regs_struct saved, uint64_t mask)
      : t_(&t), gadget_(gadget), saved_(saved), mask_(mask) {}
  Tracee* t_;
  uint64_t gadget_;
  user_regs_struct saved_;
  uint64_t mask_;
  bool done_ = false;
};

// Finds the address of a `syscall` instruction (0f 05) inside the [vdso] of process pid,
// usable as the gadget for Tracee::syscall in any process of this kernel.
Result<uint64_t> find_vdso_syscall_gadget(pid_t pid);

}  // namespace ferry::ptrace
