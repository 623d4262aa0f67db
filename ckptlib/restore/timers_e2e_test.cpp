// SPDX-License-Identifier: Apache-2.0
// End to end: testdata/timers_target.c (itimer, POSIX timers, eventfd, timerfd, signalfd,
// epoll, a queued signal) is captured into a MemoryImage mid-run, killed and restored (in a
// time namespace); the restored process checks rates, clock continuity and state itself.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "capture/capture.hpp"
#include "ferry/image/memory_image.hpp"
#include "restore/e2e_support.hpp"
#include "restore/restore.hpp"
#include "restore/time_namespace.hpp"

namespace ferry::restore {
namespace {

using e2e::slurp;
using e2e::wait_bounded;

class TimersE2E : public e2e::TargetTest {
protected:
  TimersE2E() : TargetTest("timers") {}
  void start_target() { TargetTest::start_target(FERRY_TIMERS_TARGET); }
};

TEST(TimeNamespace, OffsetLines) {
  EXPECT_EQ(timens_offset_line("monotonic", 1500000000), "monotonic 1 500000000\n");
  EXPECT_EQ(timens_offset_line("boottime", -4750000000), "boottime -5 250000000\n");
  EXPECT_EQ(timens_offset_line("monotonic", -1000000000), "monotonic -1 0\n");
}

TEST_F(TimersE2E, TimersEventFdsAndQueuedSignalsSurviveRestore) {
  start_target();
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  image::MemoryImage img;
  {
    auto frozen = capture::FrozenProcess::freeze(target_);
    ASSERT_TRUE(frozen) << frozen.error().message();
    capture::CaptureOptions copt;
    copt.job = "timers-e2e";
    auto cap = capture::capture(*frozen, copt, img);
    ASSERT_TRUE(cap) << cap.error().message();
    ASSERT_TRUE(frozen->kill());
  }
  ASSERT_NE(wait_bounded(target_, 5000), -1);
  target_ = -1;

  const auto& im = img.image();
  ASSERT_TRUE(im.clocks.has_value());
  EXPECT_GT(im.clocks->monotonic_ns, 0);
  ASSERT_EQ(im.itimers.size(), 1u);
  EXPECT_EQ(im.itimers[0].interval_ns, 20000000);
  ASSERT_EQ(im.posix_timers.size(), 2u);
  EXPECT_EQ(im.posix_timers[0].id, 0);
  EXPECT_EQ(im.posix_timers[1].id, 2);
  EXPECT_EQ(im.posix_timers[1].interval_ns, 10000000);
  ASSERT_EQ(im.event_fds.size(), 4u);
  EXPECT_EQ(im.epoll_targets.size(), 3u);
  bool rt = false, usr2 = false;
  for (const auto& p : im.pending_signals) {
    if (p.signo == SIGRTMIN + 3 && p.code == SI_QUEUE) rt = true;
    if (p.signo == SIGUSR2) usr2 = true;
  }
  EXPECT_TRUE(rt && usr2) << im.pending_signals.size() << " pending signals";

  // Let the clocks move on, so a restore without the time namespace would show a jump.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  RestoreOptions opt;
  opt.timeout = std::chrono::seconds(60);
  opt.log = [](const std::string& s) { std::cerr << s << "\n"; };
  auto pid = restore_process(img, opt);
  ASSERT_TRUE(pid) << pid.error().message();
  target_ = *pid;
  int st = wait_bounded(target_, 20000);
  target_ = -1;
  ASSERT_NE(st, -1) << "restored process did not finish";
  std::string out = slurp(out_);
  ASSERT_EQ(out.rfind("ok max_step_ms=", 0), 0u) << out;
  // The 1.5 s spent dead are hidden by the time namespace; what remains is capture + restore.
  EXPECT_LT(std::stol(out.substr(15)), 1000) << out;
  ASSERT_TRUE(WIFEXITED(st)) << "status " << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
}

}  // namespace
}  // namespace ferry::restore
