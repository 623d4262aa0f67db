// SPDX-License-Identifier: Apache-2.0
// Where a frozen thread must resume, for what the registers alone do not tell: an rseq
// critical section it was inside (arch/x86_64/rseq_fixup.hpp), and the system call behind a
// restart_syscall (arch/x86_64/syscall_restart.hpp). Both read the thread's memory through
// ptrace BEFORE any remote call runs in it: returning from such a call clears rseq_cs.
#pragma once

#include <sys/user.h>

#include <cstdint>

#include "ptrace/tracee.hpp"

namespace ferry::capture {

// The abort_ip a thread frozen at regs must resume at, or 0 when it is not inside an rseq
// critical section (no registration, no descriptor, ip outside, a syscall in progress, or a
// descriptor the kernel would refuse). Memory that cannot be read counts as "no section".
uint64_t rseq_abort_ip(const ptrace::Tracee& t, const user_regs_struct& regs, uint64_t rseq_addr,
                       uint32_t rseq_sig);

// A thread stopped in restart_syscall (a sleep or poll the kernel already restarted once: a
// checkpoint the job survived, a SIGSTOP/SIGCONT) gets orig_rax = the call it restarts when
// the code before its syscall instruction names it (arch::restarted_call_from_code), so the
// image re-executes that call (with its remaining time) instead of a restart_syscall that a
// fresh thread would answer with EINTR. Returns true if regs changed.
bool name_restarted_call(const ptrace::Tracee& t, user_regs_struct& regs);

}  // namespace ferry::capture
