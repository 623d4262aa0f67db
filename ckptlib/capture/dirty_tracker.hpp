// SPDX-License-Identifier: Apache-2.0
// DirtyTracker: which private pages of a process were written since its previous checkpoint,
// for incremental checkpoints (issue 7 §3). Soft-dirty is not available on the target kernels;
// this uses userfaultfd asynchronous write-protect and PAGEMAP_SCAN (kernel 6.7+).
//
// Algorithm:
//   create:  the userfaultfd must belong to the process's mm, so it is created *in the process*:
//            userfaultfd(O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY) is injected into the
//            frozen leader (ptrace RemoteCalls through the vDSO syscall gadget), the fd is
//            copied into ferry with pidfd_getfd(2) and the process's copy is closed again (the
//            process's fd table is left as it was: nothing of this is in its image). Ferry
//            holds the only fd from then on; the tracker lives as long as the job's supervisor
//            (a restart starts with none: its first checkpoint is full). UFFDIO_API enables
//            WP_ASYNC (the kernel itself clears the write-protect bit on the first write: no
//            message, no handler thread, the program never blocks) and WP_UNPOPULATED (pages
//            never touched count as protected, so their first write is seen too). Every
//            userfaultfd ioctl acts on the mm of the fd, so ferry calls them itself.
//   arm:     (process frozen) every private writable VMA not registered yet (not found by the
//            harvest of the same freeze; without one, smaps VmFlags lacks "uw") is registered UFFDIO_REGISTER_MODE_WP and write-protected whole
//            (UFFDIO_WRITEPROTECT). A VMA the kernel refuses stays untracked.
//   harvest: (process frozen) for every private VMA of /proc/PID/maps, PAGEMAP_SCAN with
//            PAGE_IS_WRITTEN | WP_MATCHING | CHECK_WPASYNC lists the pages written since the
//            previous harvest/arm and write-protects them again in the same walk; a VMA not
//            registered (EPERM with PM_SCAN_CHECK_WPASYNC) is untracked. (smaps would say
//            which are, but reading it walks every page table entry: 20 ms per GiB here.)
//            Registered VMAs are "tracked" (their unlisted pages are unchanged since then);
//            VMAs created, moved or grown into since (munmap + mmap gives a VMA without "uw")
//            are not, and are written whole. A page zapped and re-read (MADV_DONTNEED) reads as
//            written (it maps the zero page without the protect bit), and a page zapped and
//            not touched again is not present: capture stores neither from an older generation.
// Limits: a process that uses userfaultfd write-protect itself would be confused with ours
// ("uw" is not per-context); mremap without UFFD_FEATURE_EVENT_REMAP keeps the registration,
// and the kernel (6.13+) clears the protect bit of moved pages, so they read as written.
#pragma once

#include <sys/types.h>

#include <set>
#include <vector>

#include "capture.hpp"
#include "ferry/common/result.hpp"
#include "ferry/common/unique_fd.hpp"
#include "proc/pagemap_scan.hpp"

namespace ferry::capture {

struct DirtySet {
  std::vector<proc::AddrRange> tracked;  // VMAs registered since the last harvest/arm, sorted
  std::vector<proc::AddrRange> written;  // pages written in them since then, sorted
};

class DirtyTracker {
public:
  // Errors: errc::unsupported when the kernel lacks WP_ASYNC or PAGEMAP_SCAN.
  static Result<DirtyTracker> create(FrozenProcess& frozen);

  pid_t pid() const noexcept { return pid_; }
  // Both with the process frozen (see the top of this file).
  Result<DirtySet> harvest();
  Result<size_t> arm();  // returns how many VMAs it registered

private:
  DirtyTracker(pid_t pid, UniqueFd uffd, UniqueFd pagemap)
      : pid_(pid), uffd_(std::move(uffd)), pagemap_(std::move(pagemap)) {}
  pid_t pid_ = -1;
  UniqueFd uffd_;
  UniqueFd pagemap_;
  // Starts of the VMAs the last harvest() found registered; arm() right after it (same
  // freeze) uses them instead of reading smaps.
  std::set<uint64_t> registered_;
  bool harvested_ = false;
};

}  // namespace ferry::capture
