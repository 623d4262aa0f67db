// SPDX-License-Identifier: Apache-2.0
// The polling loop behind `ferry wait` for jobs whose records live in the store (local jobs
// and MPI jobs): re-read the newest run's record until it is final or the timeout passes,
// then print it (--json) and exit as the `ferry wait` contract says (protocol/PROTOCOL.md).
#pragma once

#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include "restart_outcome.hpp"

namespace ferry::cli {

// current() returns the run's record as it is now; timeout_s <= 0 waits without limit.
template <typename CurrentRecord>
int wait_until_final(CurrentRecord current, bool json, double timeout_s) {
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    proto::RestartRecordWire r = current();
    bool timed_out = false;
    if (r.outcome == proto::Outcome::running) {
      if (timeout_s <= 0 || std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      timed_out = true;
    }
    if (json) std::cout << coord::wait_json(r) << std::endl;
    std::string line = coord::wait_stderr_line(r, timed_out);
    if (!line.empty()) std::cerr << line << "\n";
    return coord::wait_exit_status(r, timed_out);
  }
}

}  // namespace ferry::cli
