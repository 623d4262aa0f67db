// SPDX-License-Identifier: Apache-2.0
// restore_event_fds (see event_fds_restore.hpp).
//
// Algorithm: fds are created at the lowest free number, moved (F_DUPFD) above every fd number
// the image uses, and only then dup3'd to their own number, so a fresh fd never lands on a
// number another event fd still has to take. All epoll instances exist before the first
// EPOLL_CTL_ADD, so nested epoll sets and any order of fds work.
#include "restore/event_fds_restore.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>

#include <algorithm>
#include <cstring>

namespace ferry::restore {

namespace {

using image::EventFd;
using image::EventFdKind;

constexpr int64_t kNs = 1000000000;
constexpr uint64_t kTfdTimerAbstime = 1;        // TFD_TIMER_ABSTIME
// linux/timerfd.h (clashes with <fcntl.h>): _IOW('T', 0, __u64), needs CONFIG_CHECKPOINT_RESTORE
constexpr uint64_t kTfdIocSetTicks = _IOW('T', 0, uint64_t);
constexpr uint64_t kTfdCloexec = O_CLOEXEC, kTfdNonblock = O_NONBLOCK;

std::string name_of(const EventFd& e) {
  switch (e.kind) {
    case EventFdKind::eventfd: return "eventfd";
    case EventFdKind::timerfd: return "timerfd";
    case EventFdKind::signalfd: return "signalfd";
    case EventFdKind::epoll: return "epoll";
  }
  return "event fd";
}

void put_ts(std::byte* p, int64_t ns) {
  int64_t sec = ns / kNs, nsec = ns % kNs;
  std::memcpy(p, &sec, 8);
  std::memcpy(p + 8, &nsec, 8);
}

// Creates the object; returns its child fd (anywhere).
Result<uint64_t> create(ChildBuilder& b, const image::ProcessImage& img, const EventFd& e,
                        const std::string& what) {
  const uint64_t nonblock = (e.flags & O_NONBLOCK) ? kTfdNonblock : 0;
  switch (e.kind) {
    case EventFdKind::eventfd: {
      uint64_t flags = nonblock | (e.mode ? 1u /* EFD_SEMAPHORE */ : 0u);
      FERRY_TRY(fd, b.call(what + ": eventfd2", SYS_eventfd2, {0, flags}));
      if (e.count != 0) {
        uint64_t v = e.count;
        FERRY_TRY(at, b.put(std::as_bytes(std::span(&v, 1))));
        FERRY_TRY_VOID(b.call(what + ": write its count", SYS_write, {fd, at, 8}));
      }
      return fd;
    }
    case EventFdKind::timerfd: {
      FERRY_TRY(fd, b.call(what + ": timerfd_create", SYS_timerfd_create,
                           {static_cast<uint64_t>(e.clockid), nonblock}));
      int64_t value = e.value_ns, interval = e.interval_ns;
      uint64_t flags = 0;
      if (value == 0 && interval != 0) value = interval;  // expired, unread: next period
      const bool realtime = e.clockid == CLOCK_REALTIME || e.clockid == CLOCK_REALTIME_ALARM;
      if (value != 0 && (e.mode & kTfdTimerAbstime) && realtime && img.clocks) {
        value += img.clocks->realtime_ns;  // the same wall-clock deadline as before
        flags = e.mode;                    // ABSTIME, and CANCEL_ON_SET if it had it
      }
      if (value != 0) {
        std::byte its[32];
        put_ts(its, interval);
        put_ts(its + 16, value);
        FERRY_TRY(at, b.put(its));
        FERRY_TRY_VOID(b.call(what + ": timerfd_settime", SYS_timerfd_settime, {fd, flags, at, 0}));
      }
      if (e.count != 0) {
        uint64_t ticks = e.count;
        FERRY_TRY(at, b.put(std::as_bytes(std::span(&ticks, 1))));
        FERRY_TRY_VOID(b.call(what + ": set its ticks", SYS_ioctl, {fd, kTfdIocSetTicks, at}));
      }
      return fd;
    }
    case EventFdKind::signalfd: {
      uint64_t mask = e.sigmask;
      FERRY_TRY(at, b.put(std::as_bytes(std::span(&mask, 1))));
      return b.call(what + ": signalfd4", SYS_signalfd4, {~0ull, at, 8, nonblock});
    }
    case EventFdKind::epoll:
      return b.call(what + ": epoll_create1", SYS_epoll_create1, {0});
  }
  return fail(errc::unsupported, what + ": unknown kind");
}

}  // namespace

Result<void> restore_event_fds(ChildBuilder& b, const image::ProcessImage& img) {
  if (img.event_fds.empty()) return {};
  int top = 2;
  for (const auto& f : img.fds) top = std::max(top, f.fd);
  for (const auto& e : img.event_fds) top = std::max(top, e.fd);
  // Non-epoll fds first, then epoll instances; each parked above `top`, then placed.
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& e : img.event_fds) {
      if ((e.kind == EventFdKind::epoll) != (pass == 1)) continue;
      const std::string what = "restore fd " + std::to_string(e.fd) + " (" + name_of(e) + ")";
      FERRY_TRY(fd, create(b, img, e, what));
      FERRY_TRY(parked, b.call(what + ": move above fd " + std::to_string(top), SYS_fcntl,
                               {fd, F_DUPFD_CLOEXEC, static_cast<uint64_t>(top + 1)}));
      FERRY_TRY_VOID(b.call(what + ": close", SYS_close, {fd}));
      FERRY_TRY_VOID(b.call(what + ": dup3 to its number", SYS_dup3,
                            {parked, static_cast<uint64_t>(e.fd), e.cloexec ? uint64_t{kTfdCloexec} : 0}));
      FERRY_TRY_VOID(b.call(what + ": close", SYS_close, {parked}));
      // F_SETFL carries O_NONBLOCK for epoll (epoll_create1 has no such flag).
      if (e.kind == EventFdKind::epoll && (e.flags & O_NONBLOCK))
        FERRY_TRY_VOID(b.call(what + ": set O_NONBLOCK", SYS_fcntl,
                              {static_cast<uint64_t>(e.fd), F_SETFL, uint64_t{O_NONBLOCK}}));
    }
  }
  for (const auto& t : img.epoll_targets) {
    const std::string what = "restore epoll fd " + std::to_string(t.epfd) + ": add fd " + std::to_string(t.fd);
    std::byte ev[12];  // struct epoll_event is packed on x86-64: u32 events, u64 data
    std::memcpy(ev, &t.events, 4);
    std::memcpy(ev + 4, &t.data, 8);
    FERRY_TRY(at, b.put(ev));
    FERRY_TRY_VOID(b.call(what, SYS_epoll_ctl, {static_cast<uint64_t>(t.epfd), 1 /* EPOLL_CTL_ADD */,
                                                static_cast<uint64_t>(t.fd), at}));
  }
  return {};
}

}  // namespace ferry::restore
