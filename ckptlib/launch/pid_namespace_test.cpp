// SPDX-License-Identifier: Apache-2.0
// PidNamespace: ferry init relays exit statuses; a multi-threaded program launched as PID 2
// is captured, killed, and restored in a fresh namespace with the same pid, ppid and tids
// (restore/testdata/threads_target.c checks pthread_kill, kill(getpid()), its recursive
// mutex and every thread's gettid() itself).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "capture/capture.hpp"
#include "ferry/image/memory_image.hpp"
#include "launch/pid_namespace.hpp"

extern char** environ;

namespace ferry::launch {
namespace {

// Waits for init for at most `ms` and releases it; kills it on timeout. Status or -1.
int wait_init(PidNamespace& ns, int ms) {
  pid_t pid = ns.init_pid();
  for (int waited = 0; waited < ms; waited += 10) {
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      ns.release();
      return st;
    }
    if (r < 0) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;  // the destructor kills and reaps it
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ExecSpec spec_for(std::vector<std::string> argv) {
  ExecSpec s;
  s.argv = std::move(argv);
  for (char** e = environ; *e; ++e) s.env.emplace_back(*e);
  sigemptyset(&s.sigmask);
  return s;
}

std::unique_ptr<PidNamespace> make(const ExecSpec* spec) {
  auto ns = PidNamespace::create(spec);
  EXPECT_TRUE(ns) << ns.error().message();
  return ns ? std::move(*ns) : nullptr;
}

TEST(PidNamespace, InitRelaysExitCodeAndSignal) {
  auto spec = spec_for({"/bin/sh", "-c", "test $$ = 2 && exit 3; exit 9"});
  auto ns = make(&spec);
  ASSERT_TRUE(ns);
  int st = wait_init(*ns, 10000);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 3) << "the program is PID 2 and its exit code comes back";

  auto sleeper = spec_for({"/bin/sleep", "30"});
  auto ns2 = make(&sleeper);
  ASSERT_TRUE(ns2);
  ASSERT_GT(ns2->main_pid(), 0);
  ASSERT_EQ(::kill(ns2->main_pid(), SIGKILL), 0);  // kill -9 from the host works
  st = wait_init(*ns2, 10000);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 128 + SIGKILL);

  auto sleeper2 = spec_for({"/bin/sleep", "30"});
  auto ns3 = make(&sleeper2);
  ASSERT_TRUE(ns3);
  ASSERT_EQ(::kill(ns3->init_pid(), SIGTERM), 0);  // forwarded to the program
  st = wait_init(*ns3, 10000);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 128 + SIGTERM);
}

TEST(PidNamespace, ThreadsKeepTheirIdsAcrossRestore) {
  char tmpl[] = "/tmp/ferry-pidns-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl, out = dir + "/out.txt";
  auto cleanup = [&] { (void)std::system(("rm -rf '" + dir + "'").c_str()); };

  auto spec = spec_for({FERRY_THREADS_TARGET, out, "exact"});
  auto ns = make(&spec);
  ASSERT_TRUE(ns);
  for (int i = 0; i < 1000 && slurp(out).find('\n') == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::string before = slurp(out);
  ASSERT_EQ(before.rfind("before pid=2 ppid=1 main=2 ", 0), 0u) << before;

  image::MemoryImage img;
  {
    auto frozen = capture::FrozenProcess::freeze(ns->main_pid());
    ASSERT_TRUE(frozen) << frozen.error().message();
    auto cap = capture::capture(*frozen, {}, img);
    ASSERT_TRUE(cap) << cap.error().message();
    ASSERT_TRUE(frozen->kill());
  }
  int st = wait_init(*ns, 10000);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGKILL) << st;
  ASSERT_EQ(img.image().threads.size(), 7u);
  EXPECT_EQ(img.image().threads[0].tid, 2) << "images record the ids the job sees";

  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("restore round " + std::to_string(round));
    auto fresh = make(nullptr);
    ASSERT_TRUE(fresh);
    restore::RestoreOptions opt;
    opt.timeout = std::chrono::seconds(60);
    opt.spawner = fresh.get();
    opt.same_tids = true;
    auto pid = restore::restore_process(img, opt);
    ASSERT_TRUE(pid) << pid.error().message();
    EXPECT_EQ(*pid, fresh->main_pid());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_EQ(::kill(*pid, SIGUSR1), 0);
    st = wait_init(*fresh, 20000);
    ASSERT_NE(st, -1) << "restored process did not finish";
    ASSERT_TRUE(WIFEXITED(st)) << st;
    EXPECT_EQ(WEXITSTATUS(st), 0) << "exit codes: see restore/testdata/threads_target.c";
    std::string data = slurp(out);
    ASSERT_EQ(data.substr(0, before.size()), before);
    std::string after = data.substr(before.size());
    EXPECT_EQ(after, "after" + before.substr(6)) << "ids differ after restore:\n" << data;
  }
  cleanup();
}

}  // namespace
}  // namespace ferry::launch
