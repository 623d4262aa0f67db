// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the end-to-end tests of this folder (*_e2e_test.cpp): the fixture that
// runs one target program in a temporary folder, bounded waits for the processes the tests
// start, and reading a target's output file.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ferry::restore::e2e {

// Waits for pid for at most `ms`; kills and reaps it on timeout. Returns the wait status or -1.
inline int wait_bounded(pid_t pid, int ms) {
  for (int waited = 0; waited < ms; waited += 10) {
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) return st;
    if (r < 0) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return -1;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A test of one target program: dir_ is a fresh temporary folder, out_ the file the target
// writes its verdict to (its first argument); the target is killed and reaped by PID at the
// end unless the test took it (target_ = -1).
class TargetTest : public ::testing::Test {
protected:
  explicit TargetTest(std::string name) : name_(std::move(name)) {}

  void SetUp() override {
    std::string tmpl = "/tmp/ferry-" + name_ + "-e2e-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    out_ = dir_ + "/out.txt";
  }
  void TearDown() override {
    if (target_ > 0) {
      ::kill(target_, SIGKILL);
      ::waitpid(target_, nullptr, 0);
    }
    (void)std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  // Starts `program out_ extra...` with stdout on a pipe and nothing else inherited from the
  // test runner, and waits for its "ready" line.
  void start_target(const char* program, const std::vector<std::string>& extra = {}) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    std::vector<std::string> args{program, out_};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    target_ = ::fork();
    ASSERT_GE(target_, 0);
    if (target_ == 0) {
      ::dup2(p[1], 1);
      ::syscall(SYS_close_range, 3, ~0U, 0);
      ::execv(program, argv.data());
      ::_exit(127);
    }
    ::close(p[1]);
    pollfd pf{p[0], POLLIN, 0};
    ASSERT_EQ(::poll(&pf, 1, 10000), 1) << "target did not get ready";
    char buf[16] = {};
    ASSERT_GT(::read(p[0], buf, sizeof buf - 1), 0);
    ::close(p[0]);
    ASSERT_STREQ(buf, "ready\n");
  }

  std::string name_, dir_, out_;
  pid_t target_ = -1;
};

}  // namespace ferry::restore::e2e
