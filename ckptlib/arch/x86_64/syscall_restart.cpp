// SPDX-License-Identifier: Apache-2.0
// Interrupted-syscall rewind rules (see syscall_restart.hpp).
#include "arch/x86_64/syscall_restart.hpp"

namespace ferry::arch {

namespace {
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
}  // namespace

bool in_restartable_syscall(const user_regs_struct& regs) noexcept {
  return restart_code(regs) != 0;
}

bool rewind_for_image(user_regs_struct& regs) noexcept {
  if (restart_code(regs) == 0) return false;
  regs.rax = regs.orig_rax;
  regs.rip -= kSyscallInsnLen;
  regs.orig_rax = ~0ull;
  return true;
}

bool rewind_like_kernel(user_regs_struct& regs) noexcept {
  int64_t code = restart_code(regs);
  if (code == 0) return false;
  regs.rax = code == kErestartRestartBlock ? kNrRestartSyscall : regs.orig_rax;
  regs.rip -= kSyscallInsnLen;
  regs.orig_rax = ~0ull;
  return true;
}

}  // namespace ferry::arch
