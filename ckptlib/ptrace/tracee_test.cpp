// SPDX-License-Identifier: Apache-2.0
// Tracee tests on real forked children: remote syscalls leave registers and mask unchanged,
// a thread blocked in read() keeps working after remote calls, signals are not lost.
#include "ptrace/tracee.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>

namespace ferry::ptrace {
namespace {

// A child process that is always killed and reaped by PID when the test ends.
struct Child {
  pid_t pid = -1;
  ~Child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

// Reads one byte with a 5 s bound; -1 on timeout or error.
int read_byte(int fd, int timeout_ms = 5000) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return -1;
  unsigned char c;
  return ::read(fd, &c, 1) == 1 ? c : -1;
}

volatile sig_atomic_t g_spin = 1;
int g_notify_fd = -1;
void on_usr2(int) {
  char c = 'S';
  (void)!::write(g_notify_fd, &c, 1);
}

// Child: blocks SIGUSR1 (so its mask is not trivial), reports ready, spins in user space.
pid_t spawn_spinner(int ready_w, int notify_w) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    g_notify_fd = notify_w;
    struct sigaction sa {};
    sa.sa_handler = on_usr2;
    ::sigaction(SIGUSR2, &sa, nullptr);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    char c = 'R';
    (void)!::write(ready_w, &c, 1);
    while (g_spin) {
    }
    ::_exit(0);
  }
  return pid;
}

TEST(Tracee, SeizeMissingThreadIsProcessGone) {
  auto t = Tracee::seize(999999);
  ASSERT_FALSE(t);
  EXPECT_TRUE(t.error().is(errc::process_gone)) << t.error().message();
}

TEST(Tracee, RemoteCallsLeaveRegistersAndMaskUnchanged) {
  int ready[2], notify[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(notify), 0);
  Child child{spawn_spinner(ready[1], notify[1])};
  ASSERT_GT(child.pid, 0);
  ASSERT_EQ(read_byte(ready[0]), 'R');

  auto gadget = find_vdso_syscall_gadget(child.pid);
  ASSERT_TRUE(gadget) << gadget.error().message();
  auto t = Tracee::seize(child.pid);
  ASSERT_TRUE(t) << t.error().message();
  auto before = t->get_regs();
  ASSERT_TRUE(before);
  auto mask_before = t->get_sigmask();
  ASSERT_TRUE(mask_before);
  EXPECT_TRUE(*mask_before & (1ull << (SIGUSR1 - 1)));
  auto xs_before = t->get_xstate();
  ASSERT_TRUE(xs_before) << xs_before.error().message();
  EXPECT_GE(xs_before->size(), 576u);

  {
    auto rc = RemoteCalls::begin(*t, *gadget);
    ASSERT_TRUE(rc) << rc.error().message();
    auto pid = rc->call(SYS_getpid);
    ASSERT_TRUE(pid) << pid.error().message();
    EXPECT_EQ(*pid, child.pid);
    auto addr = rc->call(SYS_mmap, {0, 4096, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0});
    ASSERT_TRUE(addr) << addr.error().message();
    ASSERT_GT(*addr, 0) << "mmap failed in child: " << -*addr;
    const char msg[] = "hello tracee";
    ASSERT_TRUE(t->write_memory(static_cast<uint64_t>(*addr),
                                std::as_bytes(std::span(msg, sizeof msg))));
    char back[sizeof msg] = {};
    ASSERT_TRUE(t->read_memory(static_cast<uint64_t>(*addr),
                               std::as_writable_bytes(std::span(back, sizeof back))));
    EXPECT_STREQ(back, msg);
    auto un = rc->call(SYS_munmap, {static_cast<uint64_t>(*addr), 4096});
    ASSERT_TRUE(un);
    EXPECT_EQ(*un, 0);
    auto bad = rc->call(SYS_close, {~0ull});
    ASSERT_TRUE(bad);
    EXPECT_EQ(*bad, -EBADF);
    ASSERT_TRUE(rc->finish());
  }
  auto after = t->get_regs();
  ASSERT_TRUE(after);
  EXPECT_EQ(std::memcmp(&*before, &*after, sizeof *after), 0);
  auto mask_after = t->get_sigmask();
  ASSERT_TRUE(mask_after);
  EXPECT_EQ(*mask_after, *mask_before);
  auto xs_after = t->get_xstate();
  ASSERT_TRUE(xs_after);
  EXPECT_EQ(*xs_after, *xs_before);

  ASSERT_TRUE(t->detach());
  // Still alive and still handles signals.
  ASSERT_EQ(::kill(child.pid, SIGUSR2), 0);
  EXPECT_EQ(read_byte(notify[0]), 'S');
  EXPECT_EQ(::waitpid(child.pid, nullptr, WNOHANG), 0);
  for (int fd : {ready[0], ready[1], notify[0], notify[1]}) ::close(fd);
}

TEST(Tracee, SignalSentWhileHeldIsDeliveredAfterDetach) {
  int ready[2], notify[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(notify), 0);
  Child child{spawn_spinner(ready[1], notify[1])};
  ASSERT_EQ(read_byte(ready[0]), 'R');
  auto gadget = find_vdso_syscall_gadget(child.pid);
  ASSERT_TRUE(gadget);
  auto t = Tracee::seize(child.pid);
  ASSERT_TRUE(t) << t.error().message();
  {
    auto rc = RemoteCalls::begin(*t, *gadget);
    ASSERT_TRUE(rc);
    ASSERT_EQ(::kill(child.pid, SIGUSR2), 0);  // blocked by RemoteCalls: stays pending
    auto pid = rc->call(SYS_getpid);
    ASSERT_TRUE(pid) << pid.error().message();
    EXPECT_EQ(*pid, child.pid);
  }
  ASSERT_TRUE(t->detach());
  EXPECT_EQ(read_byte(notify[0]), 'S');
  for (int fd : {ready[0], ready[1], notify[0], notify[1]}) ::close(fd);
}

TEST(Tracee, ThreadBlockedInReadContinuesAfterRemoteCalls) {
  int in[2], out[2];
  ASSERT_EQ(::pipe(in), 0);
  ASSERT_EQ(::pipe(out), 0);
  Child child;
  child.pid = ::fork();
  if (child.pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    unsigned char c = 0;
    ssize_t n = ::read(in[0], &c, 1);  // blocks until the test writes
    c = static_cast<unsigned char>(n == 1 ? c + 1 : 'E');
    (void)!::write(out[1], &c, 1);
    ::_exit(n == 1 ? 0 : 3);
  }
  ASSERT_GT(child.pid, 0);
  // Wait (bounded) until the child sleeps in read().
  for (int i = 0; i < 500; ++i) {
    char path[64], state = 0;
    std::snprintf(path, sizeof path, "/proc/%d/stat", child.pid);
    if (FILE* f = std::fopen(path, "r")) {
      if (std::fscanf(f, "%*d (%*[^)]) %c", &state) != 1) state = 0;
      std::fclose(f);
    }
    if (state == 'S') break;
    ::usleep(10000);
  }
  auto gadget = find_vdso_syscall_gadget(child.pid);
  ASSERT_TRUE(gadget);
  auto t = Tracee::seize(child.pid);
  ASSERT_TRUE(t) << t.error().message();
  auto regs = t->get_regs();
  ASSERT_TRUE(regs);
  EXPECT_EQ(regs->orig_rax, 0u);  // SYS_read
  EXPECT_EQ(static_cast<int64_t>(regs->rax), -512);
  {
    auto rc = RemoteCalls::begin(*t, *gadget);
    ASSERT_TRUE(rc);
    auto pid = rc->call(SYS_getpid);
    ASSERT_TRUE(pid);
    EXPECT_EQ(*pid, child.pid);
    ASSERT_TRUE(rc->finish());
  }
  ASSERT_TRUE(t->detach());
  unsigned char c = 'A';
  ASSERT_EQ(::write(in[1], &c, 1), 1);
  EXPECT_EQ(read_byte(out[0]), 'B');
  int status = 0;
  ASSERT_EQ(::waitpid(child.pid, &status, 0), child.pid);
  child.pid = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
}

}  // namespace
}  // namespace ferry::ptrace
