// SPDX-License-Identifier: Apache-2.0
// Pieces of restore_process that restore_tree (tree_restore.cpp) reuses: the watchdog, the
// bootstrap child, the pre-PONR steps and the kill-and-collect helpers. Internal to ckptlib/restore.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/image_io.hpp"
#include "restore/address_plan.hpp"
#include "restore/child_builder.hpp"
#include "restore/restore.hpp"

namespace ferry::restore::detail {

// Kills the child if restore takes longer than allowed. The child is not reaped until we
// waitpid() it, so its pid cannot be reused while the watchdog may fire.
class Watchdog {
public:
  Watchdog(pid_t pid, std::chrono::seconds timeout)
      : thread_([this, pid, timeout] {
          std::unique_lock lk(mu_);
          if (!cv_.wait_for(lk, timeout, [this] { return done_; })) {
            ::kill(pid, SIGKILL);
            fired_ = true;
          }
        }) {}
  ~Watchdog() { disarm(); }
  // Returns true if the watchdog fired before it was disarmed.
  bool disarm() {
    {
      std::lock_guard lk(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    return fired_;
  }

private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  bool fired_ = false;
  std::thread thread_;
};


bool wait_readable(int fd, int timeout_ms);
// SIGKILL and reap (or collect as tracer), bounded.
void kill_and_reap(pid_t pid);
// SIGKILL a process whose other threads are traced: collect each, then the leader.
void kill_all(pid_t pid, std::vector<ptrace::Tracee>& threads);
// fork() + bootstrap_restore_child; returns the child's pid once it closed its fds.
Result<pid_t> spawn_child(uint64_t gadget, uint64_t page);
// Step 3 of restore_process: regions, pages, fds, attributes, trial register load.
Result<void> pre_ponr(ChildBuilder& b, image::ImageSource& src, const AddressPlan& plan, uint64_t page,
                      const RestoreOptions& opt);

}  // namespace ferry::restore::detail
