// SPDX-License-Identifier: Apache-2.0
// Capture of one stopped process into an image: FrozenProcess holds the process still under
// ptrace; capture() reads everything ferry records (memory, registers, signals, files, process
// attributes) and streams it into an image::ImageSink. The process is never modified except for
// a scratch page that is mapped and unmapped again, and it continues unharmed on resume().
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/image_io.hpp"
#include "ferry/image/model.hpp"
#include "proc/pagemap_scan.hpp"
#include "ptrace/tracee.hpp"

namespace ferry::capture {

struct TreeFdPlan;  // tree_fds.hpp

// A process with every thread in a ptrace-stop (see threads.cpp for how all of them are
// caught). Lifetime: the destructor resumes the process unless resume() or kill() was called.
// Not thread-safe.
class FrozenProcess {
public:
  // Refuses (errc::unsupported) a process traced by someone else; errc::process_gone if it
  // does not exist or exits meanwhile. Threads that exit while the process is being frozen
  // are simply not part of it.
  static Result<FrozenProcess> freeze(pid_t pid);

  FrozenProcess(FrozenProcess&&) noexcept = default;
  FrozenProcess& operator=(FrozenProcess&&) = delete;
  FrozenProcess(const FrozenProcess&) = delete;
  FrozenProcess& operator=(const FrozenProcess&) = delete;
  ~FrozenProcess();

  pid_t pid() const noexcept { return pid_; }
  int64_t frozen_at_ns() const noexcept { return frozen_at_ns_; }

  // Detaches every thread: the process continues where it was (an interrupted blocking
  // syscall restarts).
  Result<void> resume();
  // SIGKILL while stopped. Does not reap the process: its parent does. The exits of the
  // traced threads are collected as tracer (of the leader too, when the caller is not the
  // parent), so the parent can reap it.
  Result<void> kill();
  // Writes into the process's memory (e.g. the self-checkpoint flag word).
  Result<void> write_memory(uint64_t addr, std::span<const std::byte> bytes);

  // What freeze_tree decided about this process's fds seen with the whole tree (shared
  // descriptions, pipes and their bytes); nullptr when frozen alone (capture() then looks at
  // this process by itself).
  const TreeFdPlan* tree_fds() const noexcept { return tree_fds_.get(); }
  void set_tree_fds(std::shared_ptr<const TreeFdPlan> plan) noexcept { tree_fds_ = std::move(plan); }

  // The thread-group leader, for capture. Valid until resume()/kill().
  ptrace::Tracee& leader() noexcept { return threads_.front(); }
  // Every thread, the leader first, then by thread id. Valid until resume()/kill().
  std::vector<ptrace::Tracee>& threads() noexcept { return threads_; }

private:
  FrozenProcess(pid_t pid, pid_t parent, std::vector<ptrace::Tracee> threads, int64_t at)
      : pid_(pid), parent_(parent), frozen_at_ns_(at), threads_(std::move(threads)) {}
  bool frozen() const noexcept { return !threads_.empty() && threads_.front().tid() >= 0; }
  pid_t pid_ = -1;
  pid_t parent_ = -1;
  int64_t frozen_at_ns_ = 0;
  std::vector<ptrace::Tracee> threads_;
  std::shared_ptr<const TreeFdPlan> tree_fds_;
};

// An incremental checkpoint (issue 7 §3, dirty_tracker.hpp): the pages of `tracked` regions
// that are present, not `written` and held by the previous generation are not stored again but
// referred to (image::PageRef) in the image that holds them; every other page is stored.
struct IncrementalBasis {
  std::vector<image::BaseImage> bases;   // images holding the previous generation's pages
  std::vector<image::PageRef> sources;   // sorted by addr: every page the previous generation
                                         //   has, each inside one page run of its base's image
  std::vector<proc::AddrRange> tracked;  // VMAs whose writes since the previous checkpoint are
  std::vector<proc::AddrRange> written;  //   all listed in `written` (both sorted)
};

struct CaptureOptions {
  std::string job;
  uint32_t rank = 0;
  uint64_t generation = 0;
  std::optional<uint64_t> self_flag_addr;  // a ferry_checkpoint() call is waiting on this word
  // The caller freezes and captures the process's children too (a process tree, see
  // cli/take_checkpoint.cpp); otherwise a process with children is refused.
  bool allow_children = false;
  // capture_state() forks a copy-on-write snapshot (snapshot.hpp) so the process can be
  // resumed before its private pages are written.
  bool snapshot = false;
  // Not null: write an incremental image on top of this basis.
  std::shared_ptr<const IncrementalBasis> incremental;
  // Called once at the end of capture_state(), the process still frozen and its snapshot
  // taken: where the caller harvests dirty pages (into `incremental`'s tracked and written,
  // read only by capture_pages) and write-protects them again. Changing the process's page
  // tables before its remote calls made the first of them wait 10-15 ms here (the first
  // switch to the process after a bulk page-table change is that slow on this VM).
  std::function<void()> before_resume;
};

// Hashes the files process `pid` maps privately into the cache capture_state() uses (keyed by
// device, inode, size and mtime: a file changed since is hashed again then). Called before
// the process is frozen, so a first checkpoint does not read libraries during the pause.
// Best effort: a file that cannot be read is left to capture_state(), which reports it.
void prehash_mapped_files(pid_t pid);

// A capture split in two: capture_state() while the process is frozen, then capture_pages().
class PendingCapture {
public:
  struct State;
  explicit PendingCapture(std::unique_ptr<State> s);
  PendingCapture(PendingCapture&&) noexcept;
  PendingCapture& operator=(PendingCapture&&) noexcept;
  ~PendingCapture();  // discards a snapshot not used
  // The private pages will be read from a snapshot: the process may be resumed now.
  bool from_snapshot() const noexcept;

private:
  friend Result<image::ProcessImage> capture_pages(PendingCapture&, FrozenProcess*);
  std::unique_ptr<State> s_;
};

// Everything but the private page bytes, from the frozen process: the same refusals and
// records as capture(), blob and pipe bytes, and (opts.snapshot) the pages a fork does not
// snapshot, then the snapshot itself. Without opts.snapshot, or when the fork fails,
// from_snapshot() is false and capture_pages() needs the process still frozen.
Result<PendingCapture> capture_state(FrozenProcess& frozen, const CaptureOptions& opts,
                                     image::ImageSink& sink);
// Streams the remaining pages (from the snapshot, or from `still_frozen`), calls
// sink.finish(image), discards the snapshot and returns the image. still_frozen: the
// process if it was not resumed meanwhile, else nullptr.
Result<image::ProcessImage> capture_pages(PendingCapture& pending, FrozenProcess* still_frozen);

// Fills a complete image::ProcessImage, streams page and blob bytes into sink, calls
// sink.finish(image) and returns the image. Everything ferry cannot checkpoint yet (child
// processes other than exited ones not yet reaped (recorded as zombies), a foreign tracer,
// sockets and ttys above fd 2, pipes/FIFOs open outside the job, inotify and other anon
// inodes except eventfd/timerfd/signalfd/epoll, epoll sets watching a closed fd, devices other than null/zero/random/urandom, 32-bit or
// x32 processes, SysV shm, mappings of deleted files) is refused with errc::unsupported BEFORE
// anything is written to the sink or injected into the process. On any error the process is
// still frozen and unharmed; the caller resumes it (or lets the destructor do so).
// capture() = capture_state() + capture_pages() with the process frozen throughout.
Result<image::ProcessImage> capture(FrozenProcess& frozen, const CaptureOptions& opts,
                                    image::ImageSink& sink);

}  // namespace ferry::capture
