// SPDX-License-Identifier: Apache-2.0
// The interrupted-system-call rules of x86-64: what a thread stopped inside a syscall must look
// like when it resumes, both for the live thread and for the copy stored in an image.
//
// A thread stopped (ptrace, group stop) inside a blocking syscall shows rax = -ERESTART*,
// orig_rax = syscall number and rip just past the 2-byte `syscall` (0f 05). The kernel decides
// what happens on the way back to user space (arch/x86/kernel/signal.c); see
// /work/shared/reference/restore-facts.md §3.
#pragma once

#include <sys/user.h>

#include <cstdint>

namespace ferry::arch {

// Kernel-internal restart codes (include/linux/errno.h); user space never sees them.
inline constexpr int64_t kErestartSys = 512;
inline constexpr int64_t kErestartNoIntr = 513;
inline constexpr int64_t kErestartNoHand = 514;
inline constexpr int64_t kErestartRestartBlock = 516;
inline constexpr uint64_t kNrRestartSyscall = 219;  // __NR_restart_syscall
inline constexpr uint64_t kSyscallInsnLen = 2;       // 0f 05

// True if regs describe a thread interrupted inside a syscall that the kernel would restart.
bool in_restartable_syscall(const user_regs_struct& regs) noexcept;

// Rule for the IMAGE copy: every -512/-513/-514/-516 becomes rax = orig_rax, rip -= 2,
// orig_rax = -1, so the restored thread re-executes the syscall with its original arguments
// (still in rdi, rsi, rdx, r10, r8, r9). orig_rax = -1 keeps the kernel from doing a second
// restart pass when the registers are loaded. Consequences, by design:
//  - -516 (ERESTART_RESTARTBLOCK: nanosleep, timed futex, poll with timeout) cannot use the
//    kernel's restart_block (per-task kernel state, not dumpable), so a RELATIVE sleep or
//    timeout restarts with its FULL original interval; absolute sleeps are unaffected.
//  - a re-executed FUTEX_WAIT whose word changed meanwhile returns EAGAIN (glibc copes).
// Returns true if regs were changed.
bool rewind_for_image(user_regs_struct& regs) noexcept;

// Rule for the LIVE thread after ferry changed its registers (remote syscalls): emulates what
// the kernel does for a stop with no handler run, because once the thread sits in a
// syscall-exit stop the kernel will not apply it itself. -512/-513/-514: rax = orig_rax,
// rip -= 2; -516: rax = __NR_restart_syscall, rip -= 2 (the task's restart_block is intact:
// ferry's remote syscalls do not touch it). orig_rax = -1. Returns true if regs changed.
bool rewind_like_kernel(user_regs_struct& regs) noexcept;

}  // namespace ferry::arch
