// SPDX-License-Identifier: Apache-2.0
// PTRACE_PEEKSIGINFO over the shared queue and every thread's queue (see pending_signals.hpp).
#include "pending_signals.hpp"

#include <signal.h>
#include <sys/ptrace.h>  // struct __ptrace_peeksiginfo_args, PTRACE_PEEKSIGINFO_SHARED
#include <unistd.h>

#include <cstring>
#include <string>

#include "ns_ids.hpp"

namespace ferry::capture {

namespace {

constexpr size_t kSiginfo = 128;
constexpr uint32_t kBatch = 32;

Result<void> peek_queue(pid_t tid, bool shared, int32_t stored_tid,
                        std::vector<image::PendingSignal>& out) {
  std::vector<uint8_t> buf(kBatch * kSiginfo);
  for (uint64_t off = 0;; ) {
    struct __ptrace_peeksiginfo_args args {};
    args.off = off;
    args.flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0;
    args.nr = kBatch;
    long n = ::ptrace(PTRACE_PEEKSIGINFO, tid, &args, buf.data());
    if (n < 0)
      return fail_errno(std::string("ptrace(PTRACE_PEEKSIGINFO") + (shared ? ", shared" : "") +
                        ") of thread " + std::to_string(tid));
    for (long i = 0; i < n; ++i) {
      image::PendingSignal p;
      p.tid = stored_tid;
      std::memcpy(p.siginfo.data(), buf.data() + i * kSiginfo, kSiginfo);
      std::memcpy(&p.signo, p.siginfo.data(), 4);
      std::memcpy(&p.code, p.siginfo.data() + 8, 4);
      if (p.signo == SIGKILL || p.signo == SIGSTOP) continue;
      out.push_back(p);
    }
    if (n < static_cast<long>(kBatch)) return {};
    off += static_cast<uint64_t>(n);
  }
}

}  // namespace

Result<std::vector<image::PendingSignal>> capture_pending_signals(
    const std::vector<ptrace::Tracee>& threads, pid_t pid) {
  std::vector<image::PendingSignal> out;
  if (threads.empty()) return out;
  const std::string who = "process " + std::to_string(pid);
  if (auto r = peek_queue(threads.front().tid(), true, 0, out); !r)
    return fail(r.error().wrap("checkpoint pending signals of " + who));
  for (const auto& t : threads) {
    FERRY_TRY(ns_tid, innermost_id(pid, t.tid()));
    if (auto r = peek_queue(t.tid(), false, ns_tid, out); !r)
      return fail(r.error().wrap("checkpoint pending signals of " + who));
    for (int sig : t.deferred_signals()) {
      if (sig == SIGKILL || sig == SIGSTOP) continue;
      image::PendingSignal p;
      p.tid = ns_tid;
      p.signo = sig;
      p.code = SI_TKILL;
      std::memcpy(p.siginfo.data(), &p.signo, 4);
      std::memcpy(p.siginfo.data() + 8, &p.code, 4);
      out.push_back(p);
    }
  }
  return out;
}

}  // namespace ferry::capture
