// SPDX-License-Identifier: Apache-2.0
// restore_timers_and_signals (see timers_restore.hpp).
//
// Algorithm: 1. every thread's id as the process sees it (remote gettid in each thread; the
// image ids may have been reassigned without same_tids) -> map image tid -> live tid.
// 2. setitimer for each armed itimer. 3. POSIX timers in id order: with restore-ids mode,
// write the wanted id into the timer_t slot and timer_create; without, create and delete
// fillers until the kernel hands out the wanted id; then timer_settime. 4. re-queue
// signals, all by calls in the leader (see the comment at the re-queue).
#include "restore/timers_restore.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cstring>
#include <map>

namespace ferry::restore {

namespace {

constexpr int64_t kNs = 1000000000;
constexpr int kPrTimerCreateRestoreIds = 77;  // PR_TIMER_CREATE_RESTORE_IDS (Linux 6.16)
constexpr int kRestoreIdsOff = 0, kRestoreIdsOn = 1;

void put_ts(std::byte* p, int64_t ns, bool usec) {
  int64_t sec = ns / kNs, sub = ns % kNs;
  if (usec) sub /= 1000;
  std::memcpy(p, &sec, 8);
  std::memcpy(p + 8, &sub, 8);
}

bool is_err(int64_t r) { return r < 0 && r > -4096; }

// A remote call in another thread of the child.
Result<int64_t> call_in(ptrace::Tracee& t, uint64_t gadget, long nr, std::initializer_list<uint64_t> args) {
  FERRY_TRY(rc, ptrace::RemoteCalls::begin(t, gadget));
  auto r = rc.call(nr, args);
  auto fin = rc.finish();
  if (!r) return r;
  if (!fin) return fail(fin.error());
  return r;
}

Result<void> restore_posix_timers(ChildBuilder& b, const image::ProcessImage& img,
                                  const std::map<int32_t, int32_t>& live_tid) {
  if (img.posix_timers.empty()) return {};
  auto restore_ids = b.call("enable timer id restore", SYS_prctl,
                            {kPrTimerCreateRestoreIds, kRestoreIdsOn, 0, 0, 0});
  const bool exact = restore_ids.has_value();
  for (const auto& t : img.posix_timers) {
    const std::string what = "restore POSIX timer " + std::to_string(t.id);
    // struct sigevent: sigev_value (8), sigev_signo (4), sigev_notify (4), _tid (4), padding
    std::byte sev[64] = {};
    int32_t tid = 0;
    if (t.notify == SIGEV_THREAD_ID) {
      auto it = live_tid.find(t.notify_tid);
      if (it == live_tid.end())
        return fail(errc::image_corrupt, what + ": it signals thread " + std::to_string(t.notify_tid) +
                                             ", which is not in the image");
      tid = it->second;
    }
    std::memcpy(sev, &t.sigval, 8);
    std::memcpy(sev + 8, &t.signo, 4);
    std::memcpy(sev + 12, &t.notify, 4);
    std::memcpy(sev + 16, &tid, 4);
    FERRY_TRY(sev_at, b.put(sev, 0));
    const uint64_t id_at = sev_at + 64;
    int32_t id = exact ? t.id : -1;
    FERRY_TRY_VOID(b.put(std::as_bytes(std::span(&id, 1)), 64));
    for (int attempts = 0;; ++attempts) {
      FERRY_TRY_VOID(b.call(what + ": timer_create", SYS_timer_create,
                            {static_cast<uint64_t>(t.clockid), sev_at, id_at}));
      int32_t got = -1;
      FERRY_TRY_VOID(b.tracee().read_memory(id_at, std::as_writable_bytes(std::span(&got, 1))));
      if (got == t.id) break;
      if (exact || got > t.id || attempts > 65536)
        return fail(errc::restore_failed, what + ": the kernel gave id " + std::to_string(got));
      // A filler: the kernel allocates ids in order; drop it once the wanted id is ours.
      FERRY_TRY_VOID(b.call(what + ": delete filler timer", SYS_timer_delete, {static_cast<uint64_t>(got)}));
    }
    int64_t value = t.value_ns;
    if (value == 0 && t.interval_ns != 0) value = t.interval_ns;
    if (value != 0) {
      std::byte its[32];
      put_ts(its, t.interval_ns, false);
      put_ts(its + 16, value, false);
      FERRY_TRY(its_at, b.put(its, 128));
      FERRY_TRY_VOID(b.call(what + ": timer_settime", SYS_timer_settime,
                            {static_cast<uint64_t>(t.id), 0, its_at, 0}));
    }
  }
  if (exact)
    (void)b.call("disable timer id restore", SYS_prctl, {kPrTimerCreateRestoreIds, kRestoreIdsOff, 0, 0, 0});
  return {};
}

}  // namespace

Result<void> restore_timers_and_signals(ChildBuilder& b, const image::ProcessImage& img,
                                        std::vector<ptrace::Tracee>& others) {
  // 1. live ids, and which tracee runs each thread (to send a thread its own signals)
  std::map<int32_t, int32_t> live_tid;
  std::map<int32_t, ptrace::Tracee*> tracee_of;  // image tid -> thread (absent: the leader)
  FERRY_TRY(tgid, b.call("getpid", SYS_getpid));
  FERRY_TRY(leader_tid, b.call("gettid", SYS_gettid));
  live_tid[img.threads[0].tid] = static_cast<int32_t>(leader_tid);
  for (size_t i = 0; i < others.size() && i + 1 < img.threads.size(); ++i) {
    FERRY_TRY(r, call_in(others[i], b.gadget(), SYS_gettid, {}));
    if (is_err(r)) return fail(Error::from_errno("gettid in thread " + std::to_string(others[i].tid()), static_cast<int>(-r)));
    live_tid[img.threads[i + 1].tid] = static_cast<int32_t>(r);
    tracee_of[img.threads[i + 1].tid] = &others[i];
  }
  // 2. itimers
  for (const auto& it : img.itimers) {
    std::byte itv[32];  // struct itimerval: it_interval, it_value
    put_ts(itv, it.interval_ns, true);
    int64_t value = it.value_ns;
    if (value == 0 && it.interval_ns != 0) value = it.interval_ns;
    put_ts(itv + 16, value, true);
    FERRY_TRY(at, b.put(itv));
    FERRY_TRY_VOID(b.call("restore itimer " + std::to_string(it.which) + ": setitimer", SYS_setitimer,
                          {static_cast<uint64_t>(it.which), at, 0}));
  }
  // 3. POSIX timers
  FERRY_TRY_VOID(restore_posix_timers(b, img, live_tid));
  // 4. pending signals
  for (const auto& p : img.pending_signals) {
    const std::string what = "re-queue pending signal " + std::to_string(p.signo) +
                             (p.tid == 0 ? std::string(" of the process") : " of thread " + std::to_string(p.tid));
    FERRY_TRY(at, b.put(std::as_bytes(std::span(p.siginfo)), 256));
    // The kernel accepts any si_code (SI_USER, SI_TKILL, ...) only when the caller is the
    // target itself: rt_sigqueueinfo(tgid) from the leader (tid == tgid), and
    // rt_tgsigqueueinfo(tgid, tid) from thread tid.
    if (p.tid == 0) {
      FERRY_TRY_VOID(b.call(what, SYS_rt_sigqueueinfo, {tgid, static_cast<uint64_t>(p.signo), at}));
      continue;
    }
    auto t = live_tid.find(p.tid);
    if (t == live_tid.end()) return fail(errc::image_corrupt, what + ": no such thread in the image");
    const std::initializer_list<uint64_t> args = {tgid, static_cast<uint64_t>(t->second),
                                                  static_cast<uint64_t>(p.signo), at};
    auto thread = tracee_of.find(p.tid);
    if (thread == tracee_of.end()) {
      FERRY_TRY_VOID(b.call(what, SYS_rt_tgsigqueueinfo, args));
      continue;
    }
    FERRY_TRY(r, call_in(*thread->second, b.gadget(), SYS_rt_tgsigqueueinfo, args));
    if (is_err(r)) return fail(Error::from_errno(what, static_cast<int>(-r)));
  }
  return {};
}

}  // namespace ferry::restore
