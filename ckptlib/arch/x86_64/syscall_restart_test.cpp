// SPDX-License-Identifier: Apache-2.0
// Tests of the interrupted-syscall rewind rules.
#include "arch/x86_64/syscall_restart.hpp"

#include <sys/syscall.h>

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

TEST(SyscallRestart, RelativeSleepWithRemRestartsWithTheRemainingTime) {
  auto ns = blocked(SYS_nanosleep, kErestartRestartBlock);
  ns.rdi = 0x7000;  // req
  ns.rsi = 0x7010;  // rem (the kernel wrote the remaining time there)
  EXPECT_TRUE(rewind_for_image(ns));
  EXPECT_EQ(ns.rdi, 0x7010u) << "the request must be read from rem";
  EXPECT_EQ(ns.rsi, 0x7010u);
  EXPECT_EQ(ns.rax, static_cast<uint64_t>(SYS_nanosleep));

  auto cns = blocked(SYS_clock_nanosleep, kErestartRestartBlock);
  cns.rdi = 1;  // CLOCK_MONOTONIC
  cns.rsi = 0;  // relative
  cns.rdx = 0x7000;
  cns.r10 = 0x7010;
  EXPECT_TRUE(rewind_for_image(cns));
  EXPECT_EQ(cns.rdx, 0x7010u);
  EXPECT_EQ(cns.rdi, 1u);
}

TEST(SyscallRestart, SleepWithoutRemOrAbsoluteKeepsItsArguments) {
  auto usleep_like = blocked(SYS_clock_nanosleep, kErestartRestartBlock);
  usleep_like.rdx = 0x7000;
  usleep_like.r10 = 0;  // no rem: full interval again
  EXPECT_TRUE(rewind_for_image(usleep_like));
  EXPECT_EQ(usleep_like.rdx, 0x7000u);

  auto abs = blocked(SYS_clock_nanosleep, kErestartNoHand);
  abs.rsi = 1;  // TIMER_ABSTIME
  abs.rdx = 0x7000;
  abs.r10 = 0x7010;
  EXPECT_TRUE(rewind_for_image(abs));
  EXPECT_EQ(abs.rdx, 0x7000u) << "an absolute deadline stays the program's own";

  auto live = blocked(SYS_nanosleep, kErestartRestartBlock);
  live.rdi = 0x7000;
  live.rsi = 0x7010;
  EXPECT_TRUE(rewind_like_kernel(live));
  EXPECT_EQ(live.rdi, 0x7000u) << "the live thread keeps its restart_block deadline";
}

TEST(SyscallRestart, WaitsEndedWithEintrByTheStopRunAgain) {
  for (uint64_t nr : {SYS_epoll_wait, SYS_epoll_pwait, SYS_rt_sigtimedwait, SYS_semtimedop}) {
    auto img = blocked(nr, kEintr);
    EXPECT_TRUE(in_interrupted_wait(img));
    EXPECT_TRUE(rewind_for_image(img));
    EXPECT_EQ(img.rax, nr);
    EXPECT_EQ(img.rip, 0x401000u);
    auto live = blocked(nr, kEintr);
    EXPECT_TRUE(rewind_like_kernel(live));
    EXPECT_EQ(live.rax, nr) << "re-executed, not restart_syscall";
    EXPECT_EQ(live.orig_rax, ~0ull);
  }
  auto rd = blocked(SYS_read, kEintr);  // a read's EINTR came from a real handler: keep it
  EXPECT_FALSE(in_interrupted_wait(rd));
  EXPECT_FALSE(rewind_for_image(rd));
}

TEST(SyscallRestart, NamesTheCallBehindRestartSyscall) {
  // glibc 2.36 clock_nanosleep: mov $0xe6,%eax; syscall
  EXPECT_EQ(restarted_call_from_code({0xb8, 0xe6, 0x00, 0x00, 0x00, 0x0f, 0x05}), uint64_t{SYS_clock_nanosleep});
  EXPECT_EQ(restarted_call_from_code({0xb8, 0x07, 0x00, 0x00, 0x00, 0x0f, 0x05}), uint64_t{SYS_poll});
  EXPECT_EQ(restarted_call_from_code({0xb8, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x05}), 0u) << "read is not restarted this way";
  EXPECT_EQ(restarted_call_from_code({0x90, 0x89, 0xc8, 0x90, 0x90, 0x0f, 0x05}), 0u) << "no mov $imm, %eax";
  EXPECT_EQ(restarted_call_from_code({0xb8, 0xe6, 0x00, 0x00, 0x00, 0xcd, 0x80}), 0u) << "not a syscall instruction";
}

TEST(SyscallRestart, LeavesOtherStatesAlone) {
  auto r = blocked(0, 4);  // -EINTR of read: a handler ran, the program sees it
  EXPECT_FALSE(rewind_for_image(r));
  user_regs_struct user{};
  user.orig_rax = ~0ull;
  user.rax = static_cast<uint64_t>(-512);  // user code holding -512 in rax, not in a syscall
  EXPECT_FALSE(rewind_for_image(user));
  EXPECT_EQ(user.rax, static_cast<uint64_t>(-512));
}

}  // namespace
}  // namespace ferry::arch
