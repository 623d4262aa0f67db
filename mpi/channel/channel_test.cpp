// SPDX-License-Identifier: Apache-2.0
// The channel between two real processes: a forked "proxy" attaches the memfd, answers calls
// through the doorbells (with the spin, yield and futex-sleep policies), and a waiter notices a
// peer that died instead of hanging.
#include "mpi/channel/channel.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

namespace ferry::mpi::channel {
namespace {

struct Pair {
  Layout* app = nullptr;
  pid_t server = -1;
};

// Forks a server that attaches by fd and, for `calls` calls, replies rc = i[0] + i[1] and copies
// the staged data area bytes reversed.
Pair start_server(int calls, WaitPolicy policy) {
  int fd = -1;
  Layout* layout = create(&fd);
  EXPECT_NE(layout, nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    std::string why;
    Layout* mine = attach(fd, &why);
    if (mine == nullptr) _exit(2);
    for (int n = 1; n <= calls; ++n) {
      if (!wait_for(mine->request, static_cast<std::uint32_t>(n), policy, [] { return getppid() != 1; })) _exit(3);
      mine->reply.rc = mine->call.i[0] + mine->call.i[1];
      std::size_t bytes = mine->call.buf[0].bytes;
      for (std::size_t k = 0; k < bytes; ++k) mine->data[bytes + k] = mine->data[bytes - 1 - k];
      post(mine->response, static_cast<std::uint32_t>(n));
    }
    _exit(0);
  }
  close(fd);
  return {layout, pid};
}

void run_calls(WaitPolicy policy) {
  const int calls = 2000;
  Pair p = start_server(calls, policy);
  for (int n = 1; n <= calls; ++n) {
    p.app->call.i[0] = n;
    p.app->call.i[1] = 7;
    const char text[] = "ferry";
    std::memcpy(p.app->data, text, 5);
    p.app->call.buf[0] = BufRef{0, 5, Where::shm, 0};
    post(p.app->request, static_cast<std::uint32_t>(n));
    ASSERT_TRUE(wait_for(p.app->response, static_cast<std::uint32_t>(n), policy, [] { return true; }));
    ASSERT_EQ(p.app->reply.rc, n + 7);
    ASSERT_EQ(std::memcmp(p.app->data + 5, "yrref", 5), 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(p.server, &status, 0), p.server);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  detach(p.app);
}

TEST(Channel, CallsRoundTripSleepingAtOnce) { run_calls(WaitPolicy{0, 0}); }
TEST(Channel, CallsRoundTripSpinningFirst) { run_calls(WaitPolicy{2000, 0}); }
TEST(Channel, CallsRoundTripYieldingFirst) { run_calls(WaitPolicy{0, 50}); }

TEST(Channel, WaiterNoticesADeadPeer) {
  Pair p = start_server(1, WaitPolicy{});
  kill(p.server, SIGKILL);
  int status = 0;
  waitpid(p.server, &status, 0);
  post(p.app->request, 1);
  pid_t dead = p.server;
  bool ok = wait_for(p.app->response, 1, WaitPolicy{}, [dead] { return kill(dead, 0) == 0; });
  EXPECT_FALSE(ok);
  detach(p.app);
}

TEST(Channel, AttachRefusesAForeignMapping) {
  int fd = memfd_create("not-a-channel", 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(kMappingBytes)), 0);
  std::string why;
  EXPECT_EQ(attach(fd, &why), nullptr);
  EXPECT_NE(why.find("another version"), std::string::npos) << why;
  close(fd);
}

}  // namespace
}  // namespace ferry::mpi::channel
