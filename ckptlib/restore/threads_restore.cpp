// SPDX-License-Identifier: Apache-2.0
// Threads of the restored process (after the point of no return): per-thread kernel state,
// the final CPU state of a thread, and the creation of every thread but the leader.
//
// Algorithm (create_threads, run once the address space is final and before the gadget is
// unmapped):
//   1. PTRACE_SETOPTIONS on the leader adds PTRACE_O_TRACECLONE: a thread it creates is
//      attached to us from its first instruction (and inherits EXITKILL).
//   2. For image thread i >= 1: the leader runs clone3 through the gadget with
//      CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM, no stack (the new thread executes nothing
//      but the gadget's syscall until its final registers are set), and set_tid = {tid_i}
//      when same_tids (the id is per PID namespace: the restored process's own one). The
//      PTRACE_EVENT_CLONE stop met on the way gives the new thread's id in OUR namespace.
//      Signals are all blocked in the leader, so the thread starts with all of them blocked.
//   3. The new thread is adopted (its initial PTRACE_EVENT_STOP) and runs, through the same
//      gadget, sigaltstack, set_robust_list, set_tid_address (glibc's pthread_join waits for
//      the kernel to clear that word) and rseq (a clone with CLONE_VM has no registration).
//   4. Its XSAVE area, registers (fs_base = its TLS; orig_rax = -1: no restart pass; a thread
//      that was blocked in a futex wait, read, join... was stored rewound, so it re-executes
//      that syscall) and signal mask are loaded; it stays in its syscall-exit stop until the
//      caller detaches every thread at once.
#include <linux/sched.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include <cstring>

#include "arch/x86_64/regs.hpp"
#include "restore/steps.hpp"

namespace ferry::restore {

namespace {

struct CloneArgs {  // struct clone_args, version 2 (include/uapi/linux/sched.h), 88 bytes
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
  uint64_t set_tid, set_tid_size, cgroup;
};
static_assert(sizeof(CloneArgs) == 88);

struct KernelStack {  // stack_t
  uint64_t sp;
  int32_t flags;
  int32_t pad;
  uint64_t size;
};

// Scratch-page offsets of the clone3 arguments (tear_down_and_place is done with the page).
constexpr uint64_t kCloneArgsOff = 512;
constexpr uint64_t kSetTidOff = kCloneArgsOff + 128;
constexpr uint64_t kCapsOff = kSetTidOff + 64;

constexpr uint64_t kThreadCloneFlags =
    CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;

template <typename T>
std::span<const std::byte> bytes_of(const T& v) {
  return {reinterpret_cast<const std::byte*>(&v), sizeof v};
}

}  // namespace

Result<void> restore_thread_kernel_state(ChildBuilder& b, const image::Thread& t) {
  KernelStack ss{t.altstack_sp, t.altstack_flags, 0, t.altstack_size};
  if (t.altstack_flags & SS_DISABLE) ss = {0, SS_DISABLE, 0, 0};
  FERRY_TRY(ssp, b.put(bytes_of(ss)));
  FERRY_TRY_VOID(b.call("set alternate signal stack " + hex(t.altstack_sp), SYS_sigaltstack, {ssp, 0}));
  if (t.robust_list != 0)
    FERRY_TRY_VOID(b.call("set robust list " + hex(t.robust_list), SYS_set_robust_list,
                          {t.robust_list, t.robust_list_len}));
  FERRY_TRY_VOID(b.call("set tid address " + hex(t.clear_tid_addr), SYS_set_tid_address, {t.clear_tid_addr}));
  if (t.rseq_addr != 0)
    FERRY_TRY_VOID(b.call("register rseq at " + hex(t.rseq_addr), SYS_rseq,
                          {t.rseq_addr, t.rseq_len, 0, t.rseq_sig}));
  return {};
}

Result<void> load_final_state(ptrace::Tracee& tr, const image::Thread& t) {
  FERRY_TRY(host, tr.get_xstate());
  FERRY_TRY(xs, xstate_for_host(t.xsave, host));
  if (auto r = tr.set_xstate(xs); !r) return fail(r.error().wrap("set XSAVE state"));
  user_regs_struct regs = arch::from_array(t.regs);
  regs.orig_rax = ~0ull;  // no restart pass: the image's registers are final
  if (auto r = tr.set_regs(regs); !r) return fail(r.error().wrap("set registers"));
  if (auto r = tr.set_sigmask(t.sigmask); !r) return fail(r.error().wrap("set signal mask"));
  return {};
}

Result<void> drop_capabilities(ChildBuilder& b) {
  struct {
    uint32_t version = 0x20080522;  // _LINUX_CAPABILITY_VERSION_3
    int32_t pid = 0;
    uint32_t sets[6] = {};  // {effective, permitted, inheritable} x 2 words, all empty
  } caps;
  FERRY_TRY(at, b.put(bytes_of(caps), kCapsOff));
  FERRY_TRY_VOID(b.call("drop capabilities (capset)", SYS_capset, {at, at + 8}));
  return {};
}

Result<void> create_threads(ChildBuilder& b, const image::ProcessImage& img, bool same_tids,
                            std::vector<ptrace::Tracee>& out, bool drop_caps) {
  if (img.threads.size() < 2) return {};
  auto& leader = b.tracee();
  FERRY_TRY_VOID(leader.set_options(PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE));
  for (size_t i = 1; i < img.threads.size(); ++i) {
    const auto& th = img.threads[i];
    const std::string what = "thread " + std::to_string(th.tid);
    pid_t want = th.tid;
    FERRY_TRY(set_tid_at, b.put(bytes_of(want), kSetTidOff));
    CloneArgs args{};
    args.flags = kThreadCloneFlags;
    if (same_tids) {
      args.set_tid = set_tid_at;
      args.set_tid_size = 1;
    }
    FERRY_TRY(args_at, b.put(bytes_of(args), kCloneArgsOff));
    auto got = b.call("create " + what + " (clone3" + (same_tids ? " set_tid" : "") + ")", SYS_clone3,
                      {args_at, sizeof args});
    auto cloned = leader.take_cloned();
    // Whatever happened, adopt what was created so the caller can kill and collect it.
    for (pid_t c : cloned) {
      auto t = ptrace::Tracee::adopt(c);
      if (!t) return fail(t.error().wrap("attach new " + what));
      out.push_back(std::move(*t));
    }
    if (!got) return fail(got.error());
    if (cloned.size() != 1)
      return fail(errc::restore_failed, "create " + what + ": no clone event from the leader");
    if (same_tids && static_cast<pid_t>(*got) != want)
      return fail(errc::restore_failed, "create " + what + ": the kernel gave id " + std::to_string(*got));
    ChildBuilder tb(out.back(), b.gadget(), b.scratch_size());
    if (auto r = restore_thread_kernel_state(tb, th); !r) return fail(r.error().wrap(what));
    if (drop_caps)
      if (auto r = drop_capabilities(tb); !r) return fail(r.error().wrap(what));
    if (auto r = load_final_state(out.back(), th); !r) return fail(r.error().wrap(what));
  }
  return {};
}

}  // namespace ferry::restore
