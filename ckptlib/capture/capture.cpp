// SPDX-License-Identifier: Apache-2.0
// capture(): the order of a checkpoint of one frozen process (see capture.hpp).
//
// Algorithm:
//   1. checks that can refuse, with no side effect: tracer, child processes, ABI of every
//      thread (cs selector and ELF class of /proc/PID/exe), every open fd (plan_fds)
//   2. per thread (leader first), from its PTRACE_INTERRUPT stop: its id in the job's PID
//      namespace (NSpid), NT_PRSTATUS (the STORED copy gets the interrupted-syscall rewind,
//      arch::rewind_for_image: a thread blocked in a futex wait, read, join... re-executes
//      it at restore), NT_X86_XSTATE (raw ptrace buffer: bytes 464.. hold XCR0, not
//      _fpx_sw_bytes), signal mask, rseq, robust list; a thread inside an rseq critical
//      section is stored (and, after step 3, left) at the section's abort_ip (threads_fixups.hpp)
//   3. remote syscalls (all signals blocked), in the leader: mmap a scratch area,
//      rt_sigaction(sig, NULL, scratch) for 1..64 (a loop written into the scratch area and
//      run to its int3: one ptrace stop), brk(0); in EACH thread (per-thread kernel
//      state): sigaltstack(NULL, slot), prctl(PR_GET_TID_ADDRESS, slot); the leader reads the
//      area, munmaps it; every thread gets its registers and mask back. This runs BEFORE
//      /proc/PID/maps is read so the scratch area never appears in the image.
//   4. maps + smaps -> memory plan (refusals of unsupported mappings; file hashes)
//   5. process attributes (exe, argv, cwd, umask, personality, rlimits, mm fields, auxv)
//   6. only now write: blobs and buffered pipe bytes, the metadata of the image
//   7. with opts.snapshot: the pages a fork() does not snapshot (shared memory, MADV_DONTFORK,
//      MADV_WIPEONFORK), then the copy-on-write snapshot (snapshot.hpp); capture_state() ends
//      here and the caller may resume the process
//   8. capture_pages(): the (remaining) pages, from the snapshot or the still frozen process;
//      the snapshot is killed (its exit tears its memory down meanwhile), sink.finish(image),
//      then the snapshot is reaped
//   Pipes, shared descriptions (tree_fds.hpp) and exited children not yet reaped
//   (zombies.hpp) join step 1; buffered pipe bytes, read there, are written in step 6.
//   Timers, event fds, pending signals (timers.cpp, event_fds.cpp, pending_signals.cpp): their
//   /proc reading and refusals join step 1; clocks, itimers and timer times are remote calls
//   at the end of step 3; the signal queues are peeked right after.
#include "capture.hpp"

#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "arch/x86_64/regs.hpp"
#include "arch/x86_64/syscall_restart.hpp"
#include "arch/x86_64/xsave.hpp"
#include "capture_internal.hpp"
#include "event_fds.hpp"
#include "pending_signals.hpp"
#include "threads_fixups.hpp"
#include "timers.hpp"
#include "tree_fds.hpp"
#include "zombies.hpp"
#include "ferry/common/fs.hpp"
#include "ferry/common/hash.hpp"
#include "ferry/common/unique_fd.hpp"
#include "ns_ids.hpp"
#include "proc/task.hpp"
#include "snapshot.hpp"

#ifndef FERRY_VERSION
#define FERRY_VERSION "unknown"
#endif

namespace ferry::capture {

namespace {

// Scratch area layout for the injected calls (one or more pages, mapped by the leader and
// visible to every thread since they share the address space).
constexpr uint64_t kSigactOff = 0;        // 65 x struct kernel sigaction (32 bytes), index = signo
constexpr uint64_t kKSigactionSize = 32;  // handler, flags, restorer, mask
constexpr uint64_t kThreadsOff = 65 * kKSigactionSize;  // per-thread slots from here
constexpr uint64_t kSlotSize = 32;        // stack_t (24 bytes) + clear_tid address (u64)

// rt_sigaction(sig, NULL, rbx + 32 * sig, 8) for sig = r12 .. 64, then int3: the 64 queries
// of step 3 in one ptrace stop instead of 128 (12-17 ms of the pause on the project VM).
// Assembled from:  1: mov eax, 13; mov rdi, r12; xor esi, esi; mov rdx, r12; shl rdx, 5;
// add rdx, rbx; mov r10d, 8; syscall; inc r12; cmp r12, 65; jne 1b; int3
constexpr unsigned char kSigactionLoop[] = {
    0xb8, 0x0d, 0x00, 0x00, 0x00, 0x4c, 0x89, 0xe7, 0x31, 0xf6, 0x4c, 0x89, 0xe2, 0x48, 0xc1, 0xe2, 0x05, 0x48, 0x01,
    0xda, 0x41, 0xba, 0x08, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x49, 0xff, 0xc4, 0x49, 0x83, 0xfc, 0x41, 0x75, 0xdb, 0xcc};
static_assert(kKSigactionSize == 32, "the loop's shl 5");
constexpr uint64_t kSlotTidAddr = 24;

struct ThreadInjected {
  uint64_t altstack_sp = 0, altstack_size = 0;
  int32_t altstack_flags = 0;
  uint64_t clear_tid_addr = 0;
};

struct Injected {
  std::vector<image::SignalAction> signals;
  std::vector<ThreadInjected> threads;  // in FrozenProcess::threads() order
  uint64_t brk = 0;
};

uint64_t load_u64(const std::vector<std::byte>& b, uint64_t off) {
  uint64_t v;
  std::memcpy(&v, b.data() + off, 8);
  return v;
}

bool is_err(int64_t r) { return r < 0 && r > -4096; }

// With FERRY_WRITE_TRACE: the milliseconds each step of capture_state took (the process is
// frozen through all of them), printed as one line.
class StepTrace {
public:
  StepTrace() {
    const char* e = std::getenv("FERRY_WRITE_TRACE");
    on_ = e && *e && std::strcmp(e, "0") != 0;
  }
  void lap(const char* step) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    char b[64];
    std::snprintf(b, sizeof b, " %s %.1f", step, std::chrono::duration<double, std::milli>(now - t_).count());
    text_ += b;
    t_ = now;
  }
  void print(pid_t pid) const {
    if (on_) std::fprintf(stderr, "ferry capture pid %d, frozen (ms):%s\n", pid, text_.c_str());
  }

private:
  bool on_ = false;
  std::chrono::steady_clock::time_point t_ = std::chrono::steady_clock::now();
  std::string text_;
};

// sigaltstack(NULL, slot) and prctl(PR_GET_TID_ADDRESS, slot+24) in one thread: both are
// per-thread kernel state, so they run in that thread (the only injections not in the leader).
Result<void> inject_thread_calls(ptrace::RemoteCalls& rc, pid_t tid, uint64_t slot) {
  auto remote_fail = [&](const char* call, int64_t r) {
    return Error::from_errno(std::string("remote ") + call + " in thread " + std::to_string(tid),
                             static_cast<int>(-r));
  };
  FERRY_TRY(alt, rc.call(SYS_sigaltstack, {0, slot}));
  if (is_err(alt)) return fail(remote_fail("sigaltstack", alt));
  FERRY_TRY(tid_r, rc.call(SYS_prctl, {PR_GET_TID_ADDRESS, slot + kSlotTidAddr}));
  if (is_err(tid_r)) return fail(remote_fail("prctl(PR_GET_TID_ADDRESS)", tid_r));
  return {};
}

Result<Injected> inject(std::vector<ptrace::Tracee>& threads, pid_t pid, uint64_t page_size) {
  const std::string who = "process " + std::to_string(pid);
  ptrace::Tracee& t = threads.front();
  FERRY_TRY(gadget, ptrace::find_vdso_syscall_gadget(pid));
  FERRY_TRY(rc, ptrace::RemoteCalls::begin(t, gadget));
  auto remote_fail = [&](const char* call, int64_t r) {
    return Error::from_errno(std::string("remote ") + call + " in " + who, static_cast<int>(-r));
  };
  const uint64_t code_off = (kThreadsOff + threads.size() * kSlotSize + 63) / 64 * 64;
  const uint64_t need = code_off + sizeof kSigactionLoop;
  const uint64_t scratch_len = (need + page_size - 1) / page_size * page_size;
  // Executable for the query loop; where W+X mappings are refused, plain, and one remote
  // call per signal.
  bool loop = true;
  auto scratch_r = rc.call(SYS_mmap, {0, scratch_len, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                                      ~0ull, 0});
  if (scratch_r && is_err(*scratch_r)) {
    loop = false;
    scratch_r = rc.call(SYS_mmap, {0, scratch_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0});
  }
  if (!scratch_r) return fail(scratch_r.error());
  if (is_err(*scratch_r)) return fail(remote_fail("mmap", *scratch_r));
  const uint64_t scratch = static_cast<uint64_t>(*scratch_r);

  auto body = [&]() -> Result<Injected> {
    Injected out;
    if (loop) {
      FERRY_TRY_VOID(t.write_memory(scratch + code_off, std::as_bytes(std::span(kSigactionLoop))));
      FERRY_TRY(regs, t.get_regs());
      regs.rip = scratch + code_off;
      regs.orig_rax = ~0ull;  // no restart logic for a syscall the thread was blocked in
      regs.rbx = scratch + kSigactOff;
      regs.r12 = 1;
      FERRY_TRY(end, t.run_to_breakpoint(regs, scratch + code_off + sizeof kSigactionLoop));
      // rax: the last call's result (signal 64); the others cannot fail with a NULL action.
      if (is_err(static_cast<int64_t>(end.rax))) return fail(remote_fail("rt_sigaction", static_cast<int64_t>(end.rax)));
    } else {
      for (int sig = 1; sig <= 64; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        FERRY_TRY(r, rc.call(SYS_rt_sigaction, {static_cast<uint64_t>(sig), 0,
                                                scratch + kSigactOff + static_cast<uint64_t>(sig) * kKSigactionSize, 8}));
        if (is_err(r)) {
          if (sig == 32 || sig == 33) continue;  // reserved by glibc; tolerated
          return fail(remote_fail("rt_sigaction", r));
        }
      }
    }
    FERRY_TRY(brk, rc.call(SYS_brk, {0}));
    out.brk = static_cast<uint64_t>(brk);
    FERRY_TRY_VOID(inject_thread_calls(rc, t.tid(), scratch + kThreadsOff));
    for (size_t i = 1; i < threads.size(); ++i) {
      FERRY_TRY(trc, ptrace::RemoteCalls::begin(threads[i], gadget));
      auto r = inject_thread_calls(trc, threads[i].tid(), scratch + kThreadsOff + i * kSlotSize);
      auto fin = trc.finish();
      if (!r) return fail(r.error());
      if (!fin) return fail(fin.error());
    }

    std::vector<std::byte> page(scratch_len);
    FERRY_TRY_VOID(t.read_memory(scratch, page));
    for (int sig = 1; sig <= 64; ++sig) {
      if (sig == SIGKILL || sig == SIGSTOP) continue;
      uint64_t o = kSigactOff + static_cast<uint64_t>(sig) * kKSigactionSize;
      image::SignalAction a;
      a.signo = sig;
      a.handler = load_u64(page, o);
      a.flags = load_u64(page, o + 8);
      a.restorer = load_u64(page, o + 16);
      a.mask = load_u64(page, o + 24);
      out.signals.push_back(a);
    }
    for (size_t i = 0; i < threads.size(); ++i) {
      const uint64_t slot = kThreadsOff + i * kSlotSize;
      ThreadInjected ti;
      ti.altstack_sp = load_u64(page, slot);
      int32_t flags;
      std::memcpy(&flags, page.data() + slot + 8, 4);
      ti.altstack_flags = flags;
      ti.altstack_size = load_u64(page, slot + 16);
      ti.clear_tid_addr = load_u64(page, slot + kSlotTidAddr);
      out.threads.push_back(ti);
    }
    return out;
  };
  auto result = body();
  // Always unmap the scratch area and put registers and mask back, even after a failure.
  auto un = rc.call(SYS_munmap, {scratch, scratch_len});
  auto fin = rc.finish();
  if (!result) return result;
  if (!un) return fail(un.error());
  if (is_err(*un)) return fail(remote_fail("munmap", *un));
  if (!fin) return fail(fin.error());
  return result;
}

// One thread's state readable by ptrace alone (before any injection): registers with the
// stored rewind, XSAVE, signal mask, rseq configuration, robust list. tid is the thread's id
// in the job's own PID namespace (what the image records and a restore recreates).
Result<image::Thread> thread_state(const ptrace::Tracee& t, pid_t pid) {
  image::Thread th;
  FERRY_TRY(ns_tid, innermost_id(pid, t.tid()));
  th.tid = ns_tid;
  FERRY_TRY(regs, t.get_regs());
  user_regs_struct stored = regs;
  name_restarted_call(t, stored);  // restart_syscall -> the call it restarts (threads_fixups.hpp)
  arch::rewind_for_image(stored);
  th.regs = arch::to_array(stored);
  FERRY_TRY(xsave, t.get_xstate());
  th.xsave = std::move(xsave);
  FERRY_TRY(mask, t.get_sigmask());
  th.sigmask = mask;
  FERRY_TRY(rseq, t.get_rseq());
  th.rseq_addr = rseq.addr;
  th.rseq_len = rseq.len;
  th.rseq_sig = rseq.sig;
  uint64_t head = 0;
  size_t len = 0;
  if (::syscall(SYS_get_robust_list, t.tid(), &head, &len) != 0)
    return fail_errno("get_robust_list of thread " + std::to_string(t.tid()) + " of process " + std::to_string(pid));
  th.robust_list = head;
  th.robust_list_len = len;
  return th;
}

// Refuses i386 and x32 executables (ELF class / machine of /proc/PID/exe).
Result<void> check_abi(pid_t pid, const user_regs_struct& regs) {
  const std::string who = "process " + std::to_string(pid);
  if (regs.cs != arch::kUserCs64)
    return fail(errc::unsupported, "checkpoint " + who + ": it runs 32-bit code (cs=" +
                                       std::to_string(regs.cs) + "); only x86_64 processes are supported");
  UniqueFd fd(::open(("/proc/" + std::to_string(pid) + "/exe").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return {};  // exe not readable: the cs check above already covers i386
  unsigned char h[EI_NIDENT + 4] = {};
  if (::pread(fd.get(), h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) return {};
  if (std::memcmp(h, ELFMAG, SELFMAG) != 0) return {};
  uint16_t machine;
  std::memcpy(&machine, h + 18, 2);
  if (h[EI_CLASS] == ELFCLASS32)
    return fail(errc::unsupported, "checkpoint " + who + ": it is a " +
                                       std::string(machine == EM_X86_64 ? "x32" : "32-bit (i386)") +
                                       " program; only x86_64 processes are supported");
  return {};
}

Result<image::ProcessInfo> process_info(pid_t pid, const proc::Stat& st, const proc::Status& status,
                                        uint64_t brk) {
  const std::string base = "/proc/" + std::to_string(pid);
  image::ProcessInfo pi;
  FERRY_TRY(exe, proc::read_link(base + "/exe"));
  pi.exe = exe;
  constexpr std::string_view kDel = " (deleted)";
  if (pi.exe.size() > kDel.size() && pi.exe.compare(pi.exe.size() - kDel.size(), kDel.size(), kDel) == 0)
    pi.exe.resize(pi.exe.size() - kDel.size());
  FERRY_TRY(argv, proc::read_cmdline(pid));
  pi.argv = argv;
  pi.comm = st.comm;
  FERRY_TRY(cwd, proc::read_link(base + "/cwd"));
  pi.cwd = cwd;
  pi.umask = status.umask;
  FERRY_TRY(pers, fs::read_file(base + "/personality"));
  pi.personality = static_cast<uint32_t>(std::stoul(pers, nullptr, 16));
  FERRY_TRY(limits, proc::read_rlimits(pid));
  for (const auto& l : limits) pi.rlimits.push_back({l.resource, l.soft, l.hard});
  pi.start_code = st.start_code;
  pi.end_code = st.end_code;
  pi.start_data = st.start_data;
  pi.end_data = st.end_data;
  pi.start_brk = st.start_brk;
  pi.brk = brk;
  pi.start_stack = st.start_stack;
  pi.arg_start = st.arg_start;
  pi.arg_end = st.arg_end;
  pi.env_start = st.env_start;
  pi.env_end = st.env_end;
  FERRY_TRY(auxv, proc::read_auxv(pid));
  pi.auxv = auxv;
  return pi;
}

}  // namespace

struct PendingCapture::State {
  pid_t pid = -1;
  std::string who;
  image::ImageSink* sink = nullptr;
  uint64_t page_size = 4096;
  detail::MemoryPlan plan;
  image::ProcessImage img;              // all but the page runs (the sink fills them)
  std::optional<MemorySnapshot> snap;
  bool pause_pages_done = false;        // the fork_skips regions were streamed while frozen
  std::shared_ptr<const IncrementalBasis> inc;  // an incremental checkpoint's basis
  std::vector<image::PageRef> refs;     // pages referred to earlier generations
};

PendingCapture::PendingCapture(std::unique_ptr<State> s) : s_(std::move(s)) {}
PendingCapture::PendingCapture(PendingCapture&&) noexcept = default;
PendingCapture& PendingCapture::operator=(PendingCapture&&) noexcept = default;
PendingCapture::~PendingCapture() = default;
bool PendingCapture::from_snapshot() const noexcept { return s_ && s_->snap.has_value(); }

Result<image::ProcessImage> capture(FrozenProcess& frozen, const CaptureOptions& opts,
                                    image::ImageSink& sink) {
  CaptureOptions o = opts;
  o.snapshot = false;
  FERRY_TRY(pending, capture_state(frozen, o, sink));
  return capture_pages(pending, &frozen);
}

Result<image::ProcessImage> capture_pages(PendingCapture& pending, FrozenProcess* still_frozen) {
  auto& st = *pending.s_;
  Result<void> r;
  if (st.snap) {
    r = detail::stream_pages(st.snap->tracee(), st.snap->pid(), st.plan, st.page_size, *st.sink,
                             detail::PageSelect::forked, st.inc.get(), &st.refs);
  } else if (!still_frozen) {
    r = fail(errc::process_gone, "the process was resumed before its pages were saved");
  } else {
    r = detail::stream_pages(still_frozen->leader(), st.pid, st.plan, st.page_size, *st.sink,
                             st.pause_pages_done ? detail::PageSelect::forked : detail::PageSelect::all,
                             st.inc.get(), &st.refs);
  }
  if (!r) return fail(r.error().wrap("save memory of " + st.who));
  // The snapshot's memory is torn down by its own exit while the image is finished and synced.
  if (st.snap) st.snap->kill();
  if (st.inc && !st.refs.empty()) {
    // Keep only the bases referred to, renumbered in the order of the basis.
    std::sort(st.refs.begin(), st.refs.end(), [](const image::PageRef& a, const image::PageRef& b) { return a.addr < b.addr; });
    std::vector<int64_t> renumber(st.inc->bases.size(), -1);
    for (auto& ref : st.refs) {
      if (renumber[ref.base] < 0) renumber[ref.base] = 0;
    }
    for (size_t i = 0; i < renumber.size(); ++i)
      if (renumber[i] == 0) {
        renumber[i] = static_cast<int64_t>(st.img.bases.size());
        st.img.bases.push_back(st.inc->bases[i]);
      }
    for (auto& ref : st.refs) ref.base = static_cast<uint32_t>(renumber[ref.base]);
    st.img.page_refs = std::move(st.refs);
  }
  auto f = st.sink->finish(st.img);
  if (st.snap) {
    if (auto d = st.snap->discard(still_frozen); !d && f) return fail(d.error().wrap("checkpoint " + st.who));
    st.snap.reset();
  }
  if (!f) return fail(f.error().wrap("finish image of " + st.who));
  return std::move(st.img);
}

Result<PendingCapture> capture_state(FrozenProcess& frozen, const CaptureOptions& opts,
                                     image::ImageSink& sink) {
  const pid_t pid = frozen.pid();
  const std::string who = "process " + std::to_string(pid);
  ptrace::Tracee& t = frozen.leader();
  if (frozen.threads().empty() || t.tid() < 0) return fail(errc::process_gone, "checkpoint " + who + ": not frozen");
  const uint64_t page_size = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));

  StepTrace trace;
  // 1. Refusals, no side effects.
  FERRY_TRY(status, proc::read_status(pid));
  if (status.tracer_pid != ::getpid())
    return fail(errc::unsupported, "checkpoint " + who + ": it is traced by process " +
                                       std::to_string(status.tracer_pid));
  FERRY_TRY(all_children, proc::read_children(pid));
  std::vector<pid_t> children;  // live ones; exited ones not yet reaped are recorded (zombies.hpp)
  std::vector<image::Zombie> zombies;
  for (pid_t c : all_children) {
    if (!is_unreaped_zombie(c)) {
      children.push_back(c);
      continue;
    }
    auto z = read_zombie(c);
    if (!z) return fail(z.error().wrap("checkpoint " + who));
    zombies.push_back(*z);
  }
  std::sort(zombies.begin(), zombies.end(), [](const auto& a, const auto& b) { return a.pid < b.pid; });
  if (!children.empty() && !opts.allow_children) {
    std::string list;
    for (pid_t c : children) list += (list.empty() ? "" : ", ") + std::to_string(c);
    return fail(errc::unsupported, "checkpoint " + who + ": it has child processes (" + list +
                                       "); processes with children are not supported yet");
  }
  auto& threads = frozen.threads();
  for (const auto& th : threads) {
    if (th.tid() < 0) return fail(errc::process_gone, "checkpoint " + who + ": a thread is no longer frozen");
    FERRY_TRY(regs, th.get_regs());
    FERRY_TRY_VOID(check_abi(pid, regs));
  }
  // Shared descriptions and pipes: from freeze_tree, or this process seen by itself.
  std::shared_ptr<const TreeFdPlan> own_plan;
  const TreeFdPlan* tree_fds = frozen.tree_fds();
  if (!tree_fds) {
    FERRY_TRY(ns_pid, innermost_id(pid, pid));
    FERRY_TRY(plans, plan_tree_fds({{pid, ns_pid, -1}}));
    own_plan = std::make_shared<const TreeFdPlan>(std::move(plans.front()));
    tree_fds = own_plan.get();
  }
  detail::BlobTable blobs;
  FERRY_TRY(fds, detail::plan_fds(pid, blobs, *tree_fds));
  FERRY_TRY(event_fds, plan_event_fds(pid));
  FERRY_TRY(planned_timers, plan_timers(pid));

  trace.lap("checks");
  // 2. Per-thread state, from the interrupt stops and before any injection.
  std::vector<image::Thread> saved;
  std::vector<uint64_t> rseq_aborts;  // per thread: abort_ip of the rseq section it is in, or 0
  for (const auto& th : threads) {
    auto s = thread_state(th, pid);
    if (!s) return fail(s.error().wrap("checkpoint thread " + std::to_string(th.tid()) + " of " + who));
    uint64_t abort_ip = rseq_abort_ip(th, arch::from_array(s->regs), s->rseq_addr, s->rseq_sig);
    if (abort_ip != 0) s->regs[arch::kRip] = abort_ip;  // threads_fixups.hpp
    rseq_aborts.push_back(abort_ip);
    saved.push_back(std::move(*s));
  }

  trace.lap("threads");
  // 3. Remote syscalls (scratch area unmapped before maps is read).
  FERRY_TRY(inj, inject(threads, pid, page_size));
  // Returning from those calls cleared rseq_cs: a live thread that was inside a critical
  // section goes to its abort handler now, as the kernel would have sent it.
  for (size_t i = 0; i < threads.size(); ++i) {
    if (rseq_aborts[i] == 0) continue;
    FERRY_TRY(live, threads[i].get_regs());
    live.rip = rseq_aborts[i];
    FERRY_TRY_VOID(threads[i].set_regs(live));
  }
  for (size_t i = 0; i < saved.size(); ++i) {
    saved[i].altstack_sp = inj.threads[i].altstack_sp;
    saved[i].altstack_size = inj.threads[i].altstack_size;
    saved[i].altstack_flags = inj.threads[i].altstack_flags;
    saved[i].clear_tid_addr = inj.threads[i].clear_tid_addr;
  }
  FERRY_TRY(timers, capture_timers(t, pid, page_size, std::move(planned_timers)));
  FERRY_TRY(pending, capture_pending_signals(threads, pid));

  trace.lap("remote-calls");
  // 4. Memory plan.
  FERRY_TRY(maps, proc::read_maps(pid));
  FERRY_TRY(smaps, proc::read_smaps(pid));
  trace.lap("maps+smaps");
  FERRY_TRY(plan, detail::plan_memory(pid, maps, smaps, blobs));
  trace.lap("plan");

  // 5. Process attributes.
  FERRY_TRY(st, proc::read_stat(pid));
  FERRY_TRY(info, process_info(pid, st, status, inj.brk));

  std::string vdso_hash;
  if (plan.vdso_end > plan.vdso_start) {
    std::vector<std::byte> vdso(plan.vdso_end - plan.vdso_start);
    FERRY_TRY_VOID(t.read_memory(plan.vdso_start, vdso));
    vdso_hash = hash::xxh3_128_hex(vdso);
  }

  // 6. Write what must come from the frozen process itself: saved file contents, pipe bytes.
  auto blob_ids = detail::stream_blobs(pid, blobs, sink);
  if (!blob_ids) return fail(blob_ids.error().wrap("save file contents of " + who));
  auto pipes = detail::stream_pipes(*tree_fds, sink);
  if (!pipes) return fail(pipes.error().wrap("save buffered pipe bytes of " + who));

  auto state = std::make_unique<PendingCapture::State>();
  state->pid = pid;
  state->who = who;
  state->sink = &sink;
  state->inc = opts.incremental;
  state->page_size = page_size;
  image::ProcessImage& img = state->img;
  img.process = std::move(info);
  for (auto& rp : plan.regions) {
    if (rp.region.blob >= 0) rp.region.blob = (*blob_ids)[static_cast<size_t>(rp.region.blob)];
    img.regions.push_back(rp.region);
  }
  img.mapped_files = plan.mapped_files;
  img.signals = std::move(inj.signals);
  for (auto& f : fds) {
    if (f.blob >= 0) f.blob = (*blob_ids)[static_cast<size_t>(f.blob)];
  }
  img.fds = std::move(fds);
  if (opts.self_flag_addr) img.self_checkpoint = image::SelfCheckpoint{*opts.self_flag_addr};
  img.clocks = timers.clocks;
  img.itimers = std::move(timers.itimers);
  img.posix_timers = std::move(timers.posix_timers);
  img.event_fds = std::move(event_fds.fds);
  img.epoll_targets = std::move(event_fds.targets);
  img.pending_signals = std::move(pending);
  img.pipes = std::move(*pipes);
  img.pipe_ends = tree_fds->pipe_ends;
  img.shared_fds = tree_fds->shared_fds;
  img.zombies = std::move(zombies);

  auto& h = img.header;
  h.schema_version = image::kSchemaVersion;
  h.abi = "x86_64";
  h.xfeatures = 0;
  for (const auto& th : saved) h.xfeatures |= arch::xstate_bv(th.xsave);
  h.cpu_xcr0 = arch::host_xcr0();
  h.xsave_size = static_cast<uint32_t>(saved.front().xsave.size());
  h.page_size = static_cast<uint32_t>(page_size);
  if (struct utsname u {}; ::uname(&u) == 0) {
    h.kernel = u.release;
    h.host = u.nodename;
  }
  h.job = opts.job;
  h.rank = opts.rank;
  h.generation = opts.generation;
  h.time_ns = frozen.frozen_at_ns();
  h.pid = pid;
  h.ferry_version = FERRY_VERSION;
  h.vdso_hash = std::move(vdso_hash);
  img.threads = std::move(saved);

  h.record_kinds = image::kRecMemory | image::kRecThreads | image::kRecSignals;
  if (!img.fds.empty()) h.record_kinds |= image::kRecFiles;
  if (!img.mapped_files.empty()) h.record_kinds |= image::kRecMappedFiles;
  if (!blobs.blobs().empty()) h.record_kinds |= image::kRecBlobs;
  if (img.self_checkpoint) h.record_kinds |= image::kRecSelfCheckpoint;
  h.record_kinds |= image::kRecClocks;
  if (!img.itimers.empty() || !img.posix_timers.empty()) h.record_kinds |= image::kRecTimers;
  if (!img.event_fds.empty()) h.record_kinds |= image::kRecEventFds;
  if (!img.pending_signals.empty()) h.record_kinds |= image::kRecPendingSignals;
  if (!img.pipes.empty() || !img.pipe_ends.empty()) h.record_kinds |= image::kRecPipes;
  if (!img.zombies.empty()) h.record_kinds |= image::kRecZombies;
  if (!img.shared_fds.empty()) h.record_kinds |= image::kRecSharedFds;

  state->plan = std::move(plan);
  // 7. With a snapshot: the pages a fork does not copy now, then the fork. Without one (or if
  // the fork fails) capture_pages() reads the frozen process.
  if (opts.snapshot) {
    if (auto r = detail::stream_pages(t, pid, state->plan, page_size, sink, detail::PageSelect::fork_skips,
                                      state->inc.get(), &state->refs); !r)
      return fail(r.error().wrap("save shared memory of " + who));
    state->pause_pages_done = true;
    trace.lap("attributes+metadata");
    if (auto snap = MemorySnapshot::take(frozen)) state->snap.emplace(std::move(*snap));
    trace.lap("fork");
  } else {
    trace.lap("attributes+metadata");
  }
  if (opts.before_resume) {
    opts.before_resume();
    trace.lap("before-resume");
  }
  trace.print(pid);
  return PendingCapture(std::move(state));
}

}  // namespace ferry::capture
