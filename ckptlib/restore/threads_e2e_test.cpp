// SPDX-License-Identifier: Apache-2.0
// End to end with threads: run testdata/threads_target.c (threads parked in a condvar wait, a
// pipe read, a pthread_join of a thread in nanosleep, one spinning, one holding a ymm value;
// main holds a recursive mutex), capture it into a MemoryImage, kill it, restore it and
// check it finishes cleanly. Without a PID namespace the threads get new ids.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "arch/x86_64/regs.hpp"
#include "capture/capture.hpp"
#include "ferry/image/memory_image.hpp"
#include "restore/e2e_support.hpp"
#include "restore/restore.hpp"

namespace ferry::restore {
namespace {

using e2e::slurp;
using e2e::wait_bounded;

class ThreadsE2E : public e2e::TargetTest {
protected:
  ThreadsE2E() : TargetTest("threads") {}
  void start_target(const char* mode) { TargetTest::start_target(FERRY_THREADS_TARGET, {mode}); }

  // Freezes, captures and kills the target.
  void capture_and_kill(image::MemoryImage& img, size_t want_threads) {
    {
      auto frozen = capture::FrozenProcess::freeze(target_);
      ASSERT_TRUE(frozen) << frozen.error().message();
      EXPECT_EQ(frozen->threads().size(), want_threads);
      capture::CaptureOptions copt;
      copt.job = "threads-e2e";
      auto cap = capture::capture(*frozen, copt, img);
      ASSERT_TRUE(cap) << cap.error().message();
      ASSERT_TRUE(frozen->kill());
    }
    ASSERT_NE(wait_bounded(target_, 5000), -1);
    target_ = -1;
  }
};

constexpr size_t kTargetThreads = 7;  // main + A B C D E F

TEST_F(ThreadsE2E, CaptureRecordsEveryThread) {
  start_target("fresh");
  image::MemoryImage img;
  capture_and_kill(img, kTargetThreads);
  const auto& threads = img.image().threads;
  ASSERT_EQ(threads.size(), kTargetThreads);
  for (size_t i = 0; i < threads.size(); ++i) {
    SCOPED_TRACE("thread " + std::to_string(threads[i].tid));
    EXPECT_NE(threads[i].clear_tid_addr, 0u);  // glibc: &pd->tid of every thread
    EXPECT_NE(threads[i].robust_list, 0u);
    EXPECT_EQ(threads[i].xsave.size(), img.image().header.xsave_size);
    if (i > 0) {
      EXPECT_NE(threads[i].regs[arch::kFsBase], threads[0].regs[arch::kFsBase]) << "fs_base is per thread";
    }
  }
}

TEST_F(ThreadsE2E, RestoreWithNewThreadIds) {
  start_target("fresh");
  image::MemoryImage img;
  capture_and_kill(img, kTargetThreads);
  std::string before = slurp(out_);
  RestoreOptions opt;
  opt.timeout = std::chrono::seconds(60);
  opt.log = [](const std::string& s) { std::cerr << s << "\n"; };
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("restore round " + std::to_string(round));
    auto pid = restore_process(img, opt);
    ASSERT_TRUE(pid) << pid.error().message();
    target_ = *pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_EQ(::kill(*pid, SIGUSR1), 0);
    int st = wait_bounded(*pid, 20000);
    target_ = -1;
    ASSERT_NE(st, -1) << "restored process did not finish";
    ASSERT_TRUE(WIFEXITED(st)) << "killed by signal " << (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    EXPECT_EQ(WEXITSTATUS(st), 0) << "exit codes: see testdata/threads_target.c";
    std::string data = slurp(out_);
    EXPECT_EQ(data.substr(0, before.size()), before);
    EXPECT_NE(data.find("\nafter pid="), std::string::npos) << data;
  }
}

}  // namespace
}  // namespace ferry::restore
