// SPDX-License-Identifier: Apache-2.0
// The interrupted-system-call rules of x86-64: what a thread stopped inside a syscall must look
// like when it resumes, both for the live thread and for the copy stored in an image.
//
// A thread stopped (ptrace, group stop) inside a blocking syscall shows rax = -ERESTART*,
// orig_rax = syscall number and rip just past the 2-byte `syscall` (0f 05). The kernel decides
// what happens on the way back to user space (arch/x86/kernel/signal.c); see
// /work/shared/reference/restore-facts.md §3.
//
// Measured on this kernel (6.18) with PTRACE_SEIZE + PTRACE_INTERRUPT of a blocked thread:
//   nanosleep / clock_nanosleep (relative)  rax = -516, the remaining time already copied to
//                                            the caller's `rem` (do_nanosleep -> nanosleep_copyout)
//   clock_nanosleep TIMER_ABSTIME            rax = -514 (-ERESTARTNOHAND)
//   poll with a timeout, timed futex wait    rax = -516 (the deadline lives in restart_block only)
//   epoll_wait, rt_sigtimedwait              rax = -EINTR: the interrupt ends them as a signal
//                                            would, although no signal is delivered
#pragma once

#include <sys/user.h>

#include <array>
#include <cstdint>

namespace ferry::arch {

// Kernel-internal restart codes (include/linux/errno.h); user space never sees them.
inline constexpr int64_t kErestartSys = 512;
inline constexpr int64_t kErestartNoIntr = 513;
inline constexpr int64_t kErestartNoHand = 514;
inline constexpr int64_t kErestartRestartBlock = 516;
inline constexpr int64_t kEintr = 4;
inline constexpr uint64_t kNrRestartSyscall = 219;  // __NR_restart_syscall
inline constexpr uint64_t kSyscallInsnLen = 2;       // 0f 05

// True if regs describe a thread interrupted inside a syscall that the kernel would restart.
bool in_restartable_syscall(const user_regs_struct& regs) noexcept;

// True if regs describe a thread that a ptrace stop pulled out of a wait the kernel never
// restarts (epoll_wait, epoll_pwait, epoll_pwait2, rt_sigtimedwait, semop, semtimedop,
// io_getevents, io_pgetevents), so it is about to return -EINTR that no signal caused. These
// calls have done nothing when they fail with EINTR, so running them again is the same as the
// stop having come just before the call (also when a real signal arrived at that moment: it
// is then delivered before the call runs again).
bool in_interrupted_wait(const user_regs_struct& regs) noexcept;

// Rule for the IMAGE copy: every -512/-513/-514/-516, and the -EINTR of in_interrupted_wait,
// becomes rax = orig_rax, rip -= 2, orig_rax = -1, so the restored thread re-executes the
// syscall (orig_rax = -1 keeps the kernel from doing a second restart pass when the registers
// are loaded). -516 cannot use the kernel's restart_block (per-task kernel state, not
// dumpable), so the arguments decide what the re-executed call does:
//  - a RELATIVE nanosleep / clock_nanosleep given a `rem` pointer restarts with the remaining
//    time: the kernel copied it to *rem when the stop interrupted the sleep, so the request
//    argument is pointed at rem (rdi for nanosleep, rdx for clock_nanosleep). Only that
//    argument register changes; it is caller-saved, and glibc does not read it after the call.
//  - without `rem` (usleep) the remaining time is nowhere user space can read it: the sleep
//    restarts with its FULL interval. So do poll/epoll_wait/rt_sigtimedwait/FUTEX_WAIT
//    timeouts (relative by their API). ppoll, pselect and select wrote the remaining time
//    back into their timeout argument, so they restart with it. Absolute sleeps and waits
//    (TIMER_ABSTIME, FUTEX_WAIT_BITSET: glibc's timed mutex/condvar/semaphore waits) keep
//    their deadline; the restored job's time namespace keeps MONOTONIC continuous.
//  - a re-executed FUTEX_WAIT whose word changed meanwhile returns EAGAIN (glibc copes).
// Returns true if regs were changed.
bool rewind_for_image(user_regs_struct& regs) noexcept;

// The 7 bytes before the return address of a thread in a system call.
using CodeBeforeSyscall = std::array<uint8_t, 7>;

// A thread found in restart_syscall (orig_rax 219) is re-running, through the kernel's
// restart_block, a sleep or wait interrupted earlier (by a checkpoint the job survived: the
// live rule below sends it there, or by SIGSTOP/SIGCONT); its argument registers are still
// the original call's, but the call's number is gone. A restored thread has no restart_block
// (restart_syscall would return EINTR), so the image must name the call: it is recognised
// from `mov $NR, %eax; syscall` (b8 NR32 0f 05) right before the return address, the code of
// glibc's wrappers of clock_nanosleep, nanosleep and poll. Returns NR if it is one of the
// calls restarted this way (nanosleep, clock_nanosleep, poll, futex), else 0: such a thread is
// then stored in restart_syscall and its call fails with EINTR after a restore.
uint64_t restarted_call_from_code(const CodeBeforeSyscall& code) noexcept;

// Rule for the LIVE thread after ferry changed its registers (remote syscalls): emulates what
// the kernel does for a stop with no handler run, because once the thread sits in a
// syscall-exit stop the kernel will not apply it itself. -512/-513/-514: rax = orig_rax,
// rip -= 2; -516: rax = __NR_restart_syscall, rip -= 2 (the task's restart_block is intact:
// ferry's remote syscalls do not touch it, so sleeps and timeouts keep their deadline). The
// -EINTR of in_interrupted_wait is rewound too (rax = orig_rax, rip -= 2: a full timeout
// again), so a checkpoint never makes epoll_wait fail with EINTR. orig_rax = -1. Returns true
// if regs changed.
bool rewind_like_kernel(user_regs_struct& regs) noexcept;

}  // namespace ferry::arch
