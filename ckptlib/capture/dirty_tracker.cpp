// SPDX-License-Identifier: Apache-2.0
// DirtyTracker: userfaultfd WP_ASYNC + PAGEMAP_SCAN dirty-page tracking (algorithm in
// dirty_tracker.hpp).
#include "dirty_tracker.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "proc/maps.hpp"
#include "proc/uffd_wp_uapi.hpp"
#include "threads_fixups.hpp"

namespace ferry::capture {

namespace {
// Kernel-provided mappings: never registered, never written by the program.
bool untrackable(const proc::MapEntry& m) {
  return m.special == proc::Special::vdso || m.special == proc::Special::vvar ||
         m.special == proc::Special::vvar_vclock || m.special == proc::Special::vsyscall;
}
}  // namespace

Result<DirtyTracker> DirtyTracker::create(FrozenProcess& frozen) {
  const pid_t pid = frozen.pid();
  const std::string who = "dirty tracking of process " + std::to_string(pid);
  FERRY_TRY(gadget, ptrace::find_vdso_syscall_gadget(pid));
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) return fail_errno("pidfd_open for " + who);
  UniqueFd uffd;
  // Returning from an injected call clears the thread's rseq_cs: a leader caught inside an rseq
  // critical section goes on at its abort handler (as after capture's own calls, and before
  // capture reads its registers).
  ptrace::Tracee& leader = frozen.leader();
  uint64_t abort_ip = 0;
  if (auto regs = leader.get_regs(); regs)
    if (auto rseq = leader.get_rseq(); rseq && rseq->addr != 0)
      abort_ip = rseq_abort_ip(leader, *regs, rseq->addr, rseq->sig);
  {
    FERRY_TRY(rc, ptrace::RemoteCalls::begin(leader, gadget));
    auto fd = rc.call(SYS_userfaultfd, {O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY});
    if (fd && *fd >= 0) {
      uffd = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), static_cast<int>(*fd), 0)));
      (void)rc.call(SYS_close, {static_cast<uint64_t>(*fd)});
    }
    auto fin = rc.finish();
    if (abort_ip != 0)
      if (auto live = leader.get_regs(); live) {
        live->rip = abort_ip;
        (void)leader.set_regs(*live);
      }
    if (!fd) return fail(fd.error().wrap(who));
    if (!fin) return fail(fin.error().wrap(who));
    if (*fd < 0) return fail(Error::from_errno("userfaultfd in the process", static_cast<int>(-*fd)).wrap(who));
    if (!uffd) return fail_errno("pidfd_getfd for " + who);
  }
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
  if (::ioctl(uffd.get(), UFFDIO_API, &api) != 0)
    return fail(errc::unsupported, who + ": this kernel has no userfaultfd WP_ASYNC (" + std::strerror(errno) + ")");
  UniqueFd pagemap(::open(("/proc/" + std::to_string(pid) + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC));
  if (!pagemap) return fail_errno("open pagemap for " + who);
  return DirtyTracker(pid, std::move(uffd), std::move(pagemap));
}

Result<DirtySet> DirtyTracker::harvest() {
  // /proc/PID/maps, not smaps: smaps walks every page table entry of the process (20 ms per
  // GiB here, inside the pause). A VMA not registered with our userfaultfd in WP_ASYNC mode
  // answers PAGEMAP_SCAN with EPERM (PM_SCAN_CHECK_WPASYNC) at once.
  FERRY_TRY(maps, proc::read_maps(pid_));
  DirtySet out;
  registered_.clear();
  for (const auto& m : maps) {
    if (m.shared || untrackable(m)) continue;
    auto w = proc::scan_written(pagemap_.get(), m.start, m.end, /*rearm=*/true);
    if (!w) {
      if (w.error().code().value() == ENOTTY || w.error().code().value() == EINVAL)
        return fail(errc::unsupported, "PAGEMAP_SCAN of process " + std::to_string(pid_) + ": " + w.error().message());
      continue;  // not registered, or not ours (EPERM: not WP_ASYNC): untracked, written whole
    }
    out.tracked.push_back({m.start, m.end});
    out.written.insert(out.written.end(), w->begin(), w->end());
    registered_.insert(m.start);
  }
  harvested_ = true;
  return out;
}

Result<size_t> DirtyTracker::arm() {
  FERRY_TRY(maps, proc::read_maps(pid_));
  std::set<uint64_t> registered;
  if (harvested_) {
    // harvest() just found them (same freeze: the VMAs have not changed since).
    registered = std::move(registered_);
    harvested_ = false;
  } else {
    FERRY_TRY(smaps, proc::read_smaps(pid_));
    for (const auto& s : smaps)
      if (s.uffd_wp) registered.insert(s.start);
  }
  size_t armed = 0;
  for (const auto& m : maps) {
    if (m.shared || !m.write || untrackable(m)) continue;
    if (registered.count(m.start)) continue;
    uffdio_register reg{};
    reg.range = {m.start, m.end - m.start};
    reg.mode = UFFDIO_REGISTER_MODE_WP;
    if (::ioctl(uffd_.get(), UFFDIO_REGISTER, &reg) != 0) continue;
    uffdio_writeprotect wp{};
    wp.range = {m.start, m.end - m.start};
    wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
    if (::ioctl(uffd_.get(), UFFDIO_WRITEPROTECT, &wp) != 0) {
      uffdio_range un{m.start, m.end - m.start};
      (void)::ioctl(uffd_.get(), UFFDIO_UNREGISTER, &un);
      continue;
    }
    ++armed;
  }
  return armed;
}

}  // namespace ferry::capture
