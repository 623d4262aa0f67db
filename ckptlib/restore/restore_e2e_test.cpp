// SPDX-License-Identifier: Apache-2.0
// End to end: run testdata/restore_target.c, capture it into a MemoryImage, kill it, restore
// it (twice, from the same image) and check its exit status and output file prove that
// memory, ymm8, the file offset, the vDSO and signal handlers came back.
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
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

#include "capture/capture.hpp"
#include "ferry/image/memory_image.hpp"
#include "restore/e2e_support.hpp"
#include "restore/restore.hpp"

namespace ferry::restore {
namespace {

void* const kFixedBlock = reinterpret_cast<void*>(0x300000000000ull);  // see restore_target.c

using e2e::slurp;
using e2e::wait_bounded;

class RestoreE2E : public e2e::TargetTest {
protected:
  RestoreE2E() : TargetTest("restore") {}
  void start_target() { TargetTest::start_target(FERRY_RESTORE_TARGET); }
};

TEST_F(RestoreE2E, MemoryRegistersFileOffsetAndHandlersComeBack) {
  start_target();
  image::MemoryImage img;
  {
    auto frozen = capture::FrozenProcess::freeze(target_);
    ASSERT_TRUE(frozen) << frozen.error().message();
    capture::CaptureOptions copt;
    copt.job = "e2e";
    auto cap = capture::capture(*frozen, copt, img);
    ASSERT_TRUE(cap) << cap.error().message();
    ASSERT_TRUE(frozen->kill());
  }
  ASSERT_NE(wait_bounded(target_, 5000), -1);
  target_ = -1;
  ASSERT_EQ(slurp(out_).size(), 6u);

  RestoreOptions opt;
  opt.timeout = std::chrono::seconds(60);
  opt.log = [](const std::string& s) { std::cerr << s << "\n"; };
  {
    // A failing before_ponr refuses the restore with its own error before the point of no
    // return: the restored program never runs (its output file stays as it was).
    RestoreOptions refused = opt;
    int calls = 0;
    refused.before_ponr = [&calls]() -> Result<void> {
      ++calls;
      return fail(errc::permission, "job record not written");
    };
    auto pid = restore_process(img, refused);
    ASSERT_FALSE(pid);
    EXPECT_EQ(calls, 1);
    EXPECT_TRUE(pid.error().is(errc::permission)) << pid.error().message();
    EXPECT_NE(pid.error().message().find("job record not written"), std::string::npos) << pid.error().message();
    EXPECT_EQ(slurp(out_).size(), 6u);
  }
  int ponr_calls = 0;
  opt.before_ponr = [&ponr_calls]() -> Result<void> {
    ++ponr_calls;
    return {};
  };
  void* block = nullptr;
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("restore round " + std::to_string(round));
    if (round == 1) {
      // Occupy the target's fixed block in our own layout: restore must build that region
      // at a staging address and mremap it home at the point of no return.
      block = ::mmap(kFixedBlock, 1 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      ASSERT_EQ(block, kFixedBlock);
    }
    auto pid = restore_process(img, opt);
    ASSERT_TRUE(pid) << pid.error().message();
    target_ = *pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_EQ(::kill(*pid, SIGUSR1), 0);
    int st = wait_bounded(*pid, 20000);
    target_ = -1;
    ASSERT_NE(st, -1) << "restored process did not finish";
    ASSERT_TRUE(WIFEXITED(st)) << "killed by signal " << (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    EXPECT_EQ(WEXITSTATUS(st), 0) << "exit codes: see testdata/restore_target.c";
    std::string data = slurp(out_);
    ASSERT_EQ(data.size(), 1006u);  // the second round first truncates back to 6 bytes
    EXPECT_EQ(ponr_calls, round + 1);
    EXPECT_EQ(data.substr(0, 6), "hello\n");
    EXPECT_EQ(data.substr(1000), "world\n");
  }
  if (block) ::munmap(block, 1 << 20);
}

TEST_F(RestoreE2E, FailureAfterPonrKillsTheProcess) {
  start_target();
  image::MemoryImage img;
  {
    auto frozen = capture::FrozenProcess::freeze(target_);
    ASSERT_TRUE(frozen) << frozen.error().message();
    auto cap = capture::capture(*frozen, {}, img);
    ASSERT_TRUE(cap) << cap.error().message();
    ASSERT_TRUE(frozen->kill());
  }
  ASSERT_NE(wait_bounded(target_, 5000), -1);
  target_ = -1;
  // A misaligned rseq area is refused by the kernel only after the point of no return.
  auto& t = img.mutable_image().threads[0];
  t.rseq_addr = 0x300000000003;
  t.rseq_len = 32;
  RestoreOptions opt;
  opt.timeout = std::chrono::seconds(60);
  auto pid = restore_process(img, opt);
  ASSERT_FALSE(pid);
  EXPECT_TRUE(pid.error().is(errc::restore_failed)) << pid.error().message();
  EXPECT_NE(pid.error().message().find("rseq"), std::string::npos) << pid.error().message();
  std::cerr << "refused as expected: " << pid.error().message() << "\n";
  int st = 0;
  EXPECT_EQ(::waitpid(-1, &st, WNOHANG), -1);  // killed and reaped
  EXPECT_EQ(errno, ECHILD);
}

TEST_F(RestoreE2E, FailureBeforePonrLeavesNoProcess) {
  start_target();
  image::MemoryImage img;
  {
    auto frozen = capture::FrozenProcess::freeze(target_);
    ASSERT_TRUE(frozen) << frozen.error().message();
    auto cap = capture::capture(*frozen, {}, img);
    ASSERT_TRUE(cap) << cap.error().message();
    ASSERT_TRUE(frozen->kill());
  }
  ASSERT_NE(wait_bounded(target_, 5000), -1);
  target_ = -1;
  // The open file disappears: without validation, reopening it fails in the child.
  ::unlink(out_.c_str());
  RestoreOptions opt;
  opt.validate = false;
  opt.timeout = std::chrono::seconds(60);
  auto pid = restore_process(img, opt);
  ASSERT_FALSE(pid);
  EXPECT_NE(pid.error().message().find(out_), std::string::npos) << pid.error().message();
  EXPECT_FALSE(pid.error().is(errc::restore_failed)) << pid.error().message();
  int st = 0;
  EXPECT_EQ(::waitpid(-1, &st, WNOHANG), -1);  // no child left behind
  EXPECT_EQ(errno, ECHILD);
  // And with validation the same image is refused up front.
  opt.validate = true;
  auto again = restore_process(img, opt);
  ASSERT_FALSE(again);
  EXPECT_TRUE(again.error().is(errc::file_changed)) << again.error().message();
}

}  // namespace
}  // namespace ferry::restore
