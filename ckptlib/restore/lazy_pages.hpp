// SPDX-License-Identifier: Apache-2.0
// LazyPages: lazy restore of private anonymous memory (README.md, "Lazy restore"). The
// restored program runs as soon as its non-memory state is back; a thread of the restoring
// process serves its page faults on a userfaultfd (UFFDIO_COPY of the faulting page's chunk
// piece) and streams every other page in behind, in storage order, then closes the
// userfaultfd. Use: set RestoreOptions::lazy to an object that outlives the program's lazy
// period (the restoring process must stay alive: if it dies first, a guard process kills the
// program, see kill_on_failure); restore_process prepares and starts it.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/image_io.hpp"

namespace ferry::restore {

struct LazyState;  // lazy_pages.cpp
struct LazyWrite;  // lazy_internal.hpp
class ChildBuilder;
struct AddressPlan;

class LazyPages {
public:
  LazyPages();
  // Stops the server. If pages are still missing while the program lives, the program
  // (kill_on_failure's process) is killed first: it must never see a zero page for data.
  ~LazyPages();
  LazyPages(const LazyPages&) = delete;
  LazyPages& operator=(const LazyPages&) = delete;

  // The process to SIGKILL if the fill fails or this process dies while pages are missing
  // (the job's PID-namespace init: that ends every process of the job). Call before the restore.
  Result<void> kill_on_failure(pid_t pid);
  // Progress/result lines from the server thread (e.g. "lazy restore: 1024 MiB placed ...").
  void set_report(std::function<void(const std::string&)> report);

  // True once restore_process handed the program's memory to the server (false: the restore
  // filled everything eagerly, e.g. userfaultfd not allowed here; why_not() says why).
  bool lazy() const noexcept;
  const std::string& why_not() const noexcept;
  // True while pages are still missing.
  bool active() const;
  // Blocks until every page is placed (or the fill failed, or the program ended). Returns the
  // failure: a corrupt chunk or a read error after the program resumed (it was killed then).
  Result<void> wait();
  // The failure, once the fill has ended with one.
  std::optional<Error> failure() const;

  // Internal to ckptlib/restore: write_pages hands over the state, pre_ponr starts the
  // server (after the last use of the image on the restoring thread), restore_process says
  // when the program runs.
  // open: the child's userfaultfd, regions registered (fails: restore eagerly); covers: a
  // child address is in a registered region; add: one piece for the lazy list (storage order).
  Result<void> open(ChildBuilder& b, image::ImageSource& src, const AddressPlan& plan,
                    const std::vector<size_t>& huge, uint64_t page);
  bool covers(uint64_t child_addr) const;
  void add(const LazyWrite& w);
  void refuse(std::string why) { why_not_ = std::move(why); }
  Result<void> start();
  void program_resumed();

private:
  void serve();
  std::unique_ptr<LazyState> st_;
  std::string why_not_;
  bool opened_ = false;  // open() succeeded: the program's memory is lazy
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool running_ = false;
  std::optional<Error> failure_;
};

}  // namespace ferry::restore
