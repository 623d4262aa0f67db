// SPDX-License-Identifier: Apache-2.0
// prepare_time_namespace (see time_namespace.hpp; restore-facts §6.5).
//
// Algorithm: offsets are relative to the host's (initial namespace's) clocks, so "now" is our
// clock minus our own namespace's offsets (read once, before our first unshare, from
// /proc/self/timens_offsets, which until then describes our own namespace). offset =
// checkpoint clock - host now. unshare(CLONE_NEWTIME) only changes time_for_children of the
// calling task; the offsets are written before any task enters it (afterwards: EACCES).
#include "restore/time_namespace.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <sstream>

#include "ferry/common/fs.hpp"
#include "ferry/common/unique_fd.hpp"

namespace ferry::restore {

namespace {

constexpr int64_t kNs = 1000000000;

int64_t clock_ns(clockid_t c) {
  timespec ts{};
  ::clock_gettime(c, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kNs + ts.tv_nsec;
}

struct OwnOffsets {
  int64_t monotonic = 0, boottime = 0;
};

// Our own namespace's offsets, read before we ever unshare (cached for the process).
OwnOffsets own_offsets() {
  static std::once_flag once;
  static OwnOffsets own;
  std::call_once(once, [] {
    auto text = fs::read_file("/proc/self/timens_offsets");
    if (!text) return;
    std::istringstream in(*text);
    std::string name;
    long long sec = 0, nsec = 0;
    while (in >> name >> sec >> nsec) {
      int64_t v = static_cast<int64_t>(sec) * kNs + nsec;
      if (name == "monotonic" || name == "1") own.monotonic = v;
      if (name == "boottime" || name == "7") own.boottime = v;
    }
  });
  return own;
}

std::string secs(int64_t ns) {
  char b[48];
  std::snprintf(b, sizeof b, "%.3f s", static_cast<double>(ns) / 1e9);
  return b;
}

}  // namespace

std::string timens_offset_line(const char* clock, int64_t offset_ns) {
  int64_t sec = offset_ns / kNs, nsec = offset_ns % kNs;
  if (nsec < 0) {
    nsec += kNs;
    sec -= 1;
  }
  return std::string(clock) + " " + std::to_string(sec) + " " + std::to_string(nsec) + "\n";
}

std::string TimeOffsets::text() const {
  return timens_offset_line("monotonic", monotonic_ns) + timens_offset_line("boottime", boottime_ns);
}

std::optional<TimeOffsets> time_offsets_for(const image::ProcessImage& img) {
  if (!img.clocks) return std::nullopt;
  const OwnOffsets own = own_offsets();
  return TimeOffsets{img.clocks->monotonic_ns - (clock_ns(CLOCK_MONOTONIC) - own.monotonic),
                     img.clocks->boottime_ns - (clock_ns(CLOCK_BOOTTIME) - own.boottime)};
}

Result<void> check_without_time_namespace(const TimeOffsets& off, const Error& why,
                                          const std::function<void(const std::string&)>& log) {
  // Without a namespace the job sees our clocks: fine unless they are behind its own.
  if (off.monotonic_ns > 0 || off.boottime_ns > 0)
    return fail(errc::unsupported, why.message() + "; without a time namespace CLOCK_MONOTONIC would go back by " +
                                       secs(off.monotonic_ns) + " and CLOCK_BOOTTIME by " + secs(off.boottime_ns));
  if (log)
    log("restore: no time namespace (" + why.message() + "); monotonic clocks jump forward by " +
        secs(-off.monotonic_ns));
  return {};
}

Result<bool> prepare_time_namespace(const image::ProcessImage& img,
                                    const std::function<void(const std::string&)>& log) {
  if (!img.clocks) return false;
  if (::syscall(SYS_gettid) != ::getpid())
    return fail(errc::protocol, "create time namespace: must be called by the main thread");
  const TimeOffsets off = *time_offsets_for(img);
  const int64_t mono_off = off.monotonic_ns, boot_off = off.boottime_ns;

  auto refused = [&](const Error& e) -> Result<bool> {
    FERRY_TRY_VOID(check_without_time_namespace(off, e, log));
    return false;
  };
  if (::unshare(CLONE_NEWTIME) != 0)
    return refused(Error::from_errno("create time namespace (unshare CLONE_NEWTIME)"));
  std::string text = off.text();
  UniqueFd fd(::open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC));
  if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    Error e = Error::from_errno("write /proc/self/timens_offsets");
    // Our children would land in a namespace with zero offsets: leave it for a fresh one
    // only where possible; in any case report what happened.
    return refused(e);
  }
  if (log)
    log("restore: time namespace offsets monotonic " + secs(mono_off) + ", boottime " + secs(boot_off));
  return true;
}

}  // namespace ferry::restore
