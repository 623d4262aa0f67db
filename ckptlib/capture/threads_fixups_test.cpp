// SPDX-License-Identifier: Apache-2.0
// Tests of the resume-point fix-ups on live children: a thread spinning inside an rseq
// critical section, and a sleep the kernel already restarted once (restart_syscall).
#include "threads_fixups.hpp"

#include <signal.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <thread>

#include "arch/x86_64/rseq_fixup.hpp"
#include "capture.hpp"

// The critical section's descriptor, emitted once by spin_in_rseq_section (the same address
// in the forked child).
extern "C" const ferry::arch::RseqCs ferry_test_rseq_cs;

namespace ferry::capture {
namespace {

// Arms rseq_cs and spins forever inside the section; the abort handler re-arms and spins on.
[[noreturn]] __attribute__((noinline)) void spin_in_rseq_section() {
  auto* rs = reinterpret_cast<struct rseq*>(static_cast<char*>(__builtin_thread_pointer()) + __rseq_offset);
  __asm__ volatile(
      ".pushsection .data.rel.ro, \"aw\"\n\t"
      ".balign 32\n\t"
      ".globl ferry_test_rseq_cs\n\t"
      "ferry_test_rseq_cs:\n\t"
      ".long 0x0, 0x0\n\t"
      ".quad 1f, (2f - 1f), 4f\n\t"
      ".popsection\n\t"
      "0:\n\t"
      "leaq ferry_test_rseq_cs(%%rip), %%rax\n\t"
      "movq %%rax, 8(%0)\n\t"
      "1:\n\t"
      "jmp 1b\n\t"
      "2:\n\t"
      ".long 0x53053053\n\t"
      "4:\n\t"
      "jmp 0b\n\t"
      :
      : "r"(rs)
      : "rax", "memory");
  __builtin_unreachable();
}

// A forked child, SIGKILLed and reaped whatever way the test ends (a leaked child would keep
// ctest's output pipe open).
struct Child {
  explicit Child(void (*body)()) : pid(::fork()) {
    if (pid == 0) {
      body();
      ::_exit(0);
    }
  }
  ~Child() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
  }
  pid_t pid;
};

// Freezes pid once it is where `ready` says (the child may still be starting on a loaded
// machine); bounded.
Result<FrozenProcess> freeze_when(pid_t pid, bool (*ready)(const user_regs_struct&)) {
  for (int attempt = 0;; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto f = FrozenProcess::freeze(pid);
    if (!f) return f;
    auto regs = f->leader().get_regs();
    if (!regs) return fail(regs.error());
    if (ready(*regs) || attempt == 100) return f;
    (void)f->resume();
  }
}

TEST(ThreadsFixups, ThreadInsideAnRseqSectionResumesAtItsAbortHandler) {
  if (__rseq_size == 0) GTEST_SKIP() << "glibc did not register rseq";
  Child child([] { spin_in_rseq_section(); });
  ASSERT_GT(child.pid, 0);
  auto frozen = freeze_when(child.pid, [](const user_regs_struct& r) {
    return r.rip - ferry_test_rseq_cs.start_ip < ferry_test_rseq_cs.post_commit_offset;
  });
  ASSERT_TRUE(frozen) << frozen.error().message();
  auto& t = frozen->leader();
  auto regs = t.get_regs();
  auto rseq = t.get_rseq();
  ASSERT_TRUE(regs && rseq);
  ASSERT_NE(rseq->addr, 0u);
  const auto& cs = ferry_test_rseq_cs;
  ASSERT_LT(regs->rip - cs.start_ip, cs.post_commit_offset) << "the child should spin in its section";
  EXPECT_EQ(rseq_abort_ip(t, *regs, rseq->addr, rseq->sig), cs.abort_ip);
  EXPECT_EQ(rseq_abort_ip(t, *regs, rseq->addr, rseq->sig ^ 1), 0u) << "signature mismatch: kernel would refuse";
  auto outside = *regs;
  outside.rip = cs.abort_ip;
  EXPECT_EQ(rseq_abort_ip(t, outside, rseq->addr, rseq->sig), 0u);
  EXPECT_EQ(rseq_abort_ip(t, *regs, 0, rseq->sig), 0u) << "no registration";
}

TEST(ThreadsFixups, RestartSyscallIsNamedFromTheCallersCode) {
  Child child([] {
    struct timespec req = {30, 0}, rem = {0, 0};
    ::clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);
  });
  ASSERT_GT(child.pid, 0);
  const pid_t pid = child.pid;
  {
    // A first freeze and resume: the kernel restarts the sleep through restart_syscall.
    auto first = freeze_when(pid, [](const user_regs_struct& r) { return r.orig_rax == SYS_clock_nanosleep; });
    ASSERT_TRUE(first) << first.error().message();
    auto r1 = first->leader().get_regs();
    ASSERT_TRUE(r1);
    EXPECT_EQ(r1->orig_rax, static_cast<uint64_t>(SYS_clock_nanosleep));
    ASSERT_TRUE(first->resume());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto frozen = FrozenProcess::freeze(pid);
  ASSERT_TRUE(frozen) << frozen.error().message();
  auto regs = frozen->leader().get_regs();
  ASSERT_TRUE(regs);
  ASSERT_EQ(regs->orig_rax, 219u) << "expected the restarted sleep (restart_syscall)";
  auto named = *regs;
  EXPECT_TRUE(name_restarted_call(frozen->leader(), named));
  EXPECT_EQ(named.orig_rax, static_cast<uint64_t>(SYS_clock_nanosleep));
  EXPECT_EQ(named.rdx, regs->rdx) << "arguments untouched";
  auto again = named;
  EXPECT_FALSE(name_restarted_call(frozen->leader(), again)) << "only restart_syscall is renamed";
}

}  // namespace
}  // namespace ferry::capture
