// SPDX-License-Identifier: Apache-2.0
// Interrupted-syscall rewind rules (see syscall_restart.hpp).
#include "arch/x86_64/syscall_restart.hpp"

#include <sys/syscall.h>

namespace ferry::arch {

namespace {

constexpr uint64_t kTimerAbstime = 1;  // TIMER_ABSTIME, clock_nanosleep's flags (rsi)

int64_t restart_code(const user_regs_struct& regs) noexcept {
  if (static_cast<int64_t>(regs.orig_rax) < 0) return 0;
  int64_t rax = static_cast<int64_t>(regs.rax);
  switch (-rax) {
    case kErestartSys:
    case kErestartNoIntr:
    case kErestartNoHand:
    case kErestartRestartBlock:
      return -rax;
    default:
      return 0;
  }
}

bool is_never_restarted_wait(uint64_t nr) noexcept {
  switch (nr) {
    case SYS_epoll_wait:
    case SYS_epoll_pwait:
    case SYS_epoll_pwait2:
    case SYS_rt_sigtimedwait:
    case SYS_semop:
    case SYS_semtimedop:
    case SYS_io_getevents:
    case SYS_io_pgetevents:
      return true;
    default:
      return false;
  }
}

// A relative sleep given a rem pointer: re-issue it with *rem (the kernel's copy of the
// remaining time) as its request.
void sleep_from_remaining(user_regs_struct& regs) noexcept {
  if (regs.orig_rax == SYS_nanosleep && regs.rsi != 0) {
    regs.rdi = regs.rsi;
  } else if (regs.orig_rax == SYS_clock_nanosleep && (regs.rsi & kTimerAbstime) == 0 && regs.r10 != 0) {
    regs.rdx = regs.r10;
  }
}

}  // namespace

bool in_restartable_syscall(const user_regs_struct& regs) noexcept {
  return restart_code(regs) != 0;
}

bool in_interrupted_wait(const user_regs_struct& regs) noexcept {
  return static_cast<int64_t>(regs.orig_rax) >= 0 && static_cast<int64_t>(regs.rax) == -kEintr &&
         is_never_restarted_wait(regs.orig_rax);
}

bool rewind_for_image(user_regs_struct& regs) noexcept {
  int64_t code = restart_code(regs);
  if (code == 0 && !in_interrupted_wait(regs)) return false;
  if (code == kErestartRestartBlock) sleep_from_remaining(regs);
  regs.rax = regs.orig_rax;
  regs.rip -= kSyscallInsnLen;
  regs.orig_rax = ~0ull;
  return true;
}

uint64_t restarted_call_from_code(const CodeBeforeSyscall& code) noexcept {
  if (code[0] != 0xb8 || code[5] != 0x0f || code[6] != 0x05) return 0;
  uint64_t nr = code[1] | (uint64_t{code[2]} << 8) | (uint64_t{code[3]} << 16) | (uint64_t{code[4]} << 24);
  switch (nr) {
    case SYS_nanosleep:
    case SYS_clock_nanosleep:
    case SYS_poll:
    case SYS_futex:
      return nr;
    default:
      return 0;
  }
}

bool rewind_like_kernel(user_regs_struct& regs) noexcept {
  int64_t code = restart_code(regs);
  if (code == 0 && !in_interrupted_wait(regs)) return false;
  regs.rax = code == kErestartRestartBlock ? kNrRestartSyscall : regs.orig_rax;
  regs.rip -= kSyscallInsnLen;
  regs.orig_rax = ~0ull;
  return true;
}

}  // namespace ferry::arch
