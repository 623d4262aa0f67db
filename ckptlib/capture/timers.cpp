// SPDX-License-Identifier: Apache-2.0
// Clocks, itimers and POSIX timers of a frozen process (see timers.hpp).
//
// Algorithm: /proc/PID/timers gives each timer's id, signal, sigev_value, notify mode and
// clock (but not its times). In the leader, with all signals blocked by RemoteCalls: mmap a
// scratch area; clock_gettime(REALTIME|MONOTONIC|BOOTTIME) first (closest to the freeze);
// getitimer(0..2); timer_gettime(id) for each timer; read the area back; munmap. Times are
// remaining times, so a restore re-arms relative to its own "now".
#include "timers.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include <charconv>
#include <cstring>
#include <string>

#include "ferry/common/fs.hpp"
#include "proc/text.hpp"
#include "ns_ids.hpp"

namespace ferry::capture {

namespace {

bool is_err(int64_t r) { return r < 0 && r > -4096; }

using proc::parse_num;
using proc::trim;

// Layout of the scratch area.
constexpr uint64_t kClocksOff = 0;     // 3 x struct timespec (16)
constexpr uint64_t kItimersOff = 48;   // 3 x struct itimerval (32)
constexpr uint64_t kTimersOff = 144;   // n x struct itimerspec (32)

int64_t ts_ns(const std::byte* p) {
  int64_t sec, nsec;
  std::memcpy(&sec, p, 8);
  std::memcpy(&nsec, p + 8, 8);
  return sec * 1000000000 + nsec;
}
int64_t tv_ns(const std::byte* p) {
  int64_t sec, usec;
  std::memcpy(&sec, p, 8);
  std::memcpy(&usec, p + 8, 8);
  return sec * 1000000000 + usec * 1000;
}

}  // namespace

Result<std::vector<ProcTimer>> parse_proc_timers(std::string_view text) {
  std::vector<ProcTimer> out;
  proc::Field f;
  while (proc::next_field(text, f)) {
    std::string_view line = f.line, key = f.key, val = trim(f.value);
    bool ok = true;
    if (key == "ID") {
      out.emplace_back();
      ok = parse_num(val, out.back().id, 10);
    } else if (out.empty()) {
      ok = false;
    } else if (key == "signal") {
      size_t slash = val.find('/');
      ok = slash != std::string_view::npos && parse_num(val.substr(0, slash), out.back().signo, 10) &&
           parse_num(val.substr(slash + 1), out.back().sigval, 16);
    } else if (key == "notify") {
      size_t slash = val.find('/'), dot = val.find('.');
      ok = slash != std::string_view::npos && dot != std::string_view::npos;
      if (ok) {
        std::string_view mode = val.substr(0, slash), scope = val.substr(slash + 1, dot - slash - 1);
        if (mode == "signal") out.back().notify = scope == "tid" ? SIGEV_THREAD_ID : SIGEV_SIGNAL;
        else if (mode == "none") out.back().notify = SIGEV_NONE;
        else if (mode == "thread") out.back().notify = SIGEV_THREAD_ID;
        else ok = false;
        ok = ok && parse_num(val.substr(dot + 1), out.back().target, 10);
      }
    } else if (key == "ClockID") {
      ok = parse_num(val, out.back().clockid, 10);
    }
    if (!ok) return fail(errc::protocol, "parse timers line '" + std::string(line) + "'");
  }
  return out;
}

Result<std::vector<image::PosixTimer>> plan_timers(pid_t pid) {
  const std::string who = "process " + std::to_string(pid);
  std::string path = "/proc/" + std::to_string(pid) + "/timers";
  FERRY_TRY(text, fs::read_file(path));
  auto parsed = parse_proc_timers(text);
  if (!parsed) return fail(parsed.error().wrap(path));
  std::vector<image::PosixTimer> out;
  for (const auto& p : *parsed) {
    // Negative clock ids are CPU-time clocks of a given pid/tid (clock_getcpuclockid); only
    // the process's own (pid 0 encoded) could be recreated, and glibc never makes those here.
    if (p.clockid < 0 || p.clockid > CLOCK_TAI)
      return fail(errc::unsupported, "checkpoint " + who + ": POSIX timer " + std::to_string(p.id) +
                                         " uses clock " + std::to_string(p.clockid) +
                                         " (a CPU-time or unknown clock), which is not supported");
    image::PosixTimer t;
    t.id = p.id;
    t.clockid = p.clockid;
    t.notify = p.notify;
    t.signo = p.signo;
    t.sigval = p.sigval;
    if (p.notify == SIGEV_THREAD_ID) {
      auto ns_tid = innermost_id(pid, p.target);
      if (!ns_tid)
        return fail(errc::unsupported, "checkpoint " + who + ": POSIX timer " + std::to_string(p.id) +
                                           " signals thread " + std::to_string(p.target) +
                                           ", which is not a thread of the process");
      t.notify_tid = *ns_tid;
    }
    out.push_back(t);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

Result<TimerState> capture_timers(ptrace::Tracee& leader, pid_t pid, uint64_t page_size,
                                  std::vector<image::PosixTimer> planned) {
  const std::string who = "process " + std::to_string(pid);
  FERRY_TRY(gadget, ptrace::find_vdso_syscall_gadget(pid));
  FERRY_TRY(rc, ptrace::RemoteCalls::begin(leader, gadget));
  auto remote_fail = [&](const std::string& call, int64_t r) {
    return Error::from_errno("remote " + call + " in " + who, static_cast<int>(-r));
  };
  const uint64_t need = kTimersOff + planned.size() * 32;
  const uint64_t len = (need + page_size - 1) / page_size * page_size;
  FERRY_TRY(scratch_r, rc.call(SYS_mmap, {0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0}));
  if (is_err(scratch_r)) return fail(remote_fail("mmap", scratch_r));
  const uint64_t scratch = static_cast<uint64_t>(scratch_r);

  auto body = [&]() -> Result<TimerState> {
    const clockid_t clocks[3] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME};
    for (int i = 0; i < 3; ++i) {
      FERRY_TRY(r, rc.call(SYS_clock_gettime, {static_cast<uint64_t>(clocks[i]), scratch + kClocksOff + 16u * i}));
      if (is_err(r)) return fail(remote_fail("clock_gettime", r));
    }
    for (int w = 0; w < 3; ++w) {
      FERRY_TRY(r, rc.call(SYS_getitimer, {static_cast<uint64_t>(w), scratch + kItimersOff + 32u * w}));
      if (is_err(r)) return fail(remote_fail("getitimer(" + std::to_string(w) + ")", r));
    }
    for (size_t i = 0; i < planned.size(); ++i) {
      FERRY_TRY(r, rc.call(SYS_timer_gettime, {static_cast<uint64_t>(planned[i].id), scratch + kTimersOff + 32 * i}));
      if (is_err(r)) return fail(remote_fail("timer_gettime(" + std::to_string(planned[i].id) + ")", r));
    }
    std::vector<std::byte> buf(need);
    FERRY_TRY_VOID(leader.read_memory(scratch, buf));
    TimerState st;
    st.clocks.realtime_ns = ts_ns(buf.data() + kClocksOff);
    st.clocks.monotonic_ns = ts_ns(buf.data() + kClocksOff + 16);
    st.clocks.boottime_ns = ts_ns(buf.data() + kClocksOff + 32);
    for (int w = 0; w < 3; ++w) {
      // struct itimerval: it_interval, then it_value
      const std::byte* p = buf.data() + kItimersOff + 32 * w;
      image::Itimer it{w, tv_ns(p + 16), tv_ns(p)};
      if (it.value_ns != 0 || it.interval_ns != 0) st.itimers.push_back(it);
    }
    for (size_t i = 0; i < planned.size(); ++i) {
      // struct itimerspec: it_interval, then it_value
      const std::byte* p = buf.data() + kTimersOff + 32 * i;
      planned[i].interval_ns = ts_ns(p);
      planned[i].value_ns = ts_ns(p + 16);
    }
    st.posix_timers = std::move(planned);
    return st;
  };
  auto result = body();
  auto un = rc.call(SYS_munmap, {scratch, len});
  auto fin = rc.finish();
  if (!result) return result;
  if (!un) return fail(un.error());
  if (is_err(*un)) return fail(remote_fail("munmap", *un));
  if (!fin) return fail(fin.error());
  return result;
}

}  // namespace ferry::capture
