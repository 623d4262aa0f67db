// SPDX-License-Identifier: Apache-2.0
// Tests of the interrupted-syscall rewind rules.
#include "arch/x86_64/syscall_restart.hpp"

#include <gtest/gtest.h>

namespace ferry::arch {
namespace {

user_regs_struct blocked(uint64_t nr, int64_t code) {
  user_regs_struct r{};
  r.orig_rax = nr;
  r.rax = static_cast<uint64_t>(-code);
  r.rip = 0x401002;
  return r;
}

TEST(SyscallRestart, ImageRuleRewindsAllRestartCodes) {
  for (int64_t code : {kErestartSys, kErestartNoIntr, kErestartNoHand, kErestartRestartBlock}) {
    auto r = blocked(35, code);
    EXPECT_TRUE(in_restartable_syscall(r));
    EXPECT_TRUE(rewind_for_image(r));
    EXPECT_EQ(r.rax, 35u);
    EXPECT_EQ(r.rip, 0x401000u);
    EXPECT_EQ(r.orig_rax, ~0ull);
    EXPECT_FALSE(rewind_for_image(r)) << "second rewind must be a no-op";
  }
}

TEST(SyscallRestart, KernelRuleUsesRestartSyscallFor516) {
  auto r = blocked(35, kErestartRestartBlock);
  EXPECT_TRUE(rewind_like_kernel(r));
  EXPECT_EQ(r.rax, kNrRestartSyscall);
  EXPECT_EQ(r.rip, 0x401000u);
  auto p = blocked(0, kErestartSys);
  EXPECT_TRUE(rewind_like_kernel(p));
  EXPECT_EQ(p.rax, 0u);
}

TEST(SyscallRestart, LeavesOtherStatesAlone) {
  auto r = blocked(0, 4);  // -EINTR
  EXPECT_FALSE(rewind_for_image(r));
  user_regs_struct user{};
  user.orig_rax = ~0ull;
  user.rax = static_cast<uint64_t>(-512);  // user code holding -512 in rax, not in a syscall
  EXPECT_FALSE(rewind_for_image(user));
  EXPECT_EQ(user.rax, static_cast<uint64_t>(-512));
}

}  // namespace
}  // namespace ferry::arch
