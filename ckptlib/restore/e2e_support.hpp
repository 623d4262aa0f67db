// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the end-to-end tests of this folder (*_e2e_test.cpp): bounded waits for
// the processes they start, and reading a target's output file.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

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

}  // namespace ferry::restore::e2e
