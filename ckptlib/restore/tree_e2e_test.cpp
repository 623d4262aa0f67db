// SPDX-License-Identifier: Apache-2.0
// End to end with a process tree: run testdata/tree_target.c (a parent in waitpid, a child in
// its own process group, one shared open file description), freeze and capture the whole tree,
// kill it, restore it with restore_tree and check that the child is the restored parent's
// child again (its exit status reaches the parent), leads its group, and that the shared offset
// holds (no line overwrites another). Without a PID namespace the root gets a new pid; the child
// gets its old one (set_tid in our namespace, as root).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "capture/capture.hpp"
#include "capture/process_tree.hpp"
#include "ferry/common/fs.hpp"
#include "ferry/image/memory_image.hpp"
#include "restore/e2e_support.hpp"
#include "restore/restore.hpp"

namespace ferry::restore {
namespace {

// Waits for our child pid for at most `ms`; kills and reaps it on timeout. Wait status or -1.
using e2e::slurp;
using e2e::wait_bounded;

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  auto kids = fs::read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  if (!kids) return out;
  std::istringstream ks(*kids);
  for (pid_t k; ks >> k;) out.push_back(k);
  return out;
}

class TreeE2E : public e2e::TargetTest {
protected:
  TreeE2E() : TargetTest("tree") {}
  void SetUp() override {
    // Orphans of the killed tree come to us, so we reap them (and free their pids) by PID.
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    TargetTest::SetUp();
  }
  void TearDown() override {
    if (target_ > 0)
      for (pid_t k : children_of(target_)) ::kill(k, SIGKILL);
    TargetTest::TearDown();
  }
  void start_target() { TargetTest::start_target(FERRY_TREE_TARGET); }
};

TEST_F(TreeE2E, TreeIsRestoredWithParentLinkGroupAndSharedOffset) {
  start_target();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // parent reaches waitpid
  std::vector<std::unique_ptr<image::MemoryImage>> images;
  std::vector<TreeProcess> members;
  pid_t old_child = -1;
  {
    auto tree = capture::freeze_tree(target_);
    ASSERT_TRUE(tree) << tree.error().message();
    ASSERT_EQ(tree->size(), 2u);
    const auto& child = (*tree)[1];
    old_child = child.frozen.pid();
    EXPECT_EQ(child.parent, 0);
    EXPECT_EQ(child.ids.ppid, target_);
    EXPECT_EQ(child.ids.pgid, child.ids.pid);
    // fd 3 is shared with the parent (fds 0-2 too when they are files, e.g. /dev/null).
    EXPECT_NE(std::find(child.shared_fds.begin(), child.shared_fds.end(), std::pair<int32_t, int32_t>{3, 3}),
              child.shared_fds.end());
    for (auto& m : *tree) {
      images.push_back(std::make_unique<image::MemoryImage>());
      capture::CaptureOptions copt;
      copt.job = "tree-e2e";
      copt.allow_children = true;
      auto cap = capture::capture(m.frozen, copt, *images.back());
      ASSERT_TRUE(cap) << cap.error().message();
      members.push_back({images.back().get(), m.ids.pid, m.ids.ppid, m.ids.pgid, m.ids.sid, m.shared_fds});
    }
    for (size_t i = tree->size(); i-- > 0;) ASSERT_TRUE((*tree)[i].frozen.kill());
  }
  ASSERT_NE(wait_bounded(target_, 5000), -1);
  target_ = -1;
  ASSERT_NE(wait_bounded(old_child, 5000), -1);  // reparented to us (subreaper)
  EXPECT_EQ(slurp(out_), "child up\n");

  RestoreOptions opt;
  opt.timeout = std::chrono::seconds(60);
  // The parent waits for its child by pid: the child gets its old pid back (clone3 set_tid in
  // our namespace; root only, and the pid was freed just above). The root itself is our fork.
  opt.same_tids = true;
  opt.log = [](const std::string& s) { std::cerr << s << "\n"; };
  auto pid = restore_tree(members, opt);
  ASSERT_TRUE(pid) << pid.error().message();
  target_ = *pid;
  auto kids = children_of(target_);
  ASSERT_EQ(kids.size(), 1u) << "the child is the restored parent's child";
  EXPECT_EQ(::getpgid(kids[0]), kids[0]) << "the child leads its own process group";
  ASSERT_EQ(::kill(kids[0], SIGUSR1), 0);
  int st = wait_bounded(target_, 20000);
  target_ = -1;
  ASSERT_NE(st, -1) << "restored tree did not finish";
  ASSERT_TRUE(WIFEXITED(st)) << "killed by signal " << (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_EQ(slurp(out_), "child up\nchild done, leads its group: yes\nparent: child exit 7\n");
}

TEST_F(TreeE2E, RefusalResumesTheWholeTree) {
  // A child traced by someone else (here: us) cannot be frozen; freeze_tree fails naming it and
  // the root it had already frozen runs on untraced.
  start_target();
  auto kids = children_of(target_);
  ASSERT_EQ(kids.size(), 1u);
  auto frozen_child = capture::FrozenProcess::freeze(kids[0]);
  ASSERT_TRUE(frozen_child) << frozen_child.error().message();
  auto tree = capture::freeze_tree(target_);
  ASSERT_FALSE(tree);
  EXPECT_TRUE(tree.error().is(errc::unsupported)) << tree.error().message();
  EXPECT_NE(tree.error().message().find(std::to_string(kids[0])), std::string::npos) << tree.error().message();
  auto status = fs::read_file("/proc/" + std::to_string(target_) + "/status");
  ASSERT_TRUE(status);
  EXPECT_NE(status->find("TracerPid:\t0\n"), std::string::npos) << *status;
  ASSERT_TRUE(frozen_child->resume());
  ::kill(kids[0], SIGKILL);  // the root reaps it and exits
  int st = wait_bounded(target_, 10000);
  target_ = -1;
  ASSERT_NE(st, -1);
}

}  // namespace
}  // namespace ferry::restore
