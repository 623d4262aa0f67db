// SPDX-License-Identifier: Apache-2.0
// restore_process: orchestration of a restore driven from outside by ptrace. The steps live in
// child_builder.cpp (regions, pages), files_restore.cpp (fds) and ponr.cpp (PONR and after).
//
// Algorithm:
//   0. validate_for_restore (unless the caller already did): every check that can fail.
//   1. Plan (address_plan.cpp) against our own /proc/self/maps, which the child inherits: a
//      free 2-page gadget G (page 0 `syscall; int3` RX, page 1 scratch RW) outside the image's
//      regions and our layout; for each region its final address if that range is free in
//      our layout, else a staging spot free in both; a parking spot for the vDSO if needed.
//   2. fork(). The child (raw async-signal-safe calls only) blocks all signals, asks for
//      SIGKILL on parent death, maps G with MAP_FIXED_NOREPLACE, writes the gadget, reports
//      one status byte on a pipe, closes every fd >= 3 (close_range) and sits in pause().
//      The parent reads the status, waits for EOF (close_range done) and PTRACE_SEIZEs it
//      (exit-kill on). A watchdog thread SIGKILLs the child if the whole restore overruns
//      opt.timeout, which also unblocks any ptrace wait: nothing here can hang.
//      (Not SIGSTOP as first designed: a group stop survives PTRACE_DETACH, since
//      __ptrace_unlink re-arms it, and the SIGCONT needed to end it would stay queued for
//      the restored program.)
//   3. Pre-PONR, by remote syscalls through G (ChildBuilder): all signals blocked; the
//      inherited rseq registration dropped (the kernel would write into memory we unmap);
//      RLIMIT_NOFILE soft raised to hard; regions built writable at their planned
//      addresses; page bytes copied (page_filler.cpp: read in storage order kCopyBatch at a
//      time while a second thread places them, UFFDIO_COPY into private anonymous regions,
//      process_vm_writev elsewhere; dense anonymous regions advised MADV_HUGEPAGE first
//      with opt.huge_pages); with opt.checksums_while_filling every chunk was checked as it
//      was read and the unread ones are checked now (verify_unread); fds reopened
//      at their numbers (regular, deleted, memfd, directory, /dev/*; writable regular
//      files truncated back to their checkpoint size); dispositions of all 64 signals,
//      umask, cwd, comm, personality; the image's XSAVE and registers are loaded once as a
//      trial, so the kernel refuses a bad register set before anything is torn down.
//      Any failure: SIGKILL the child, reap it, return the step's error unchanged.
//   4. PONR (ponr.cpp): munmap everything but G, the live vDSO triple and the built regions;
//      mremap the triple onto the image's addresses (via the parking spot if they
//      overlap); mremap staged regions home; mprotect to final protections; PR_SET_MM_MAP
//      (brk, arg/env, auxv with AT_SYSINFO_EHDR = image vdso; exe best effort);
//      sigaltstack, robust list, tid address, rseq; soft rlimits; the self-checkpoint flag.
//   5. Threads 1..n-1 (threads_restore.cpp): clone3 in the leader (set_tid = image tid with
//      opt.same_tids), each adopted through PTRACE_O_TRACECLONE, given its sigaltstack,
//      robust list, tid address and rseq by remote calls in itself, then its final XSAVE,
//      registers and mask; it stays stopped.
//   6. munmap(G) is the last remote syscall; at its syscall-exit stop set the leader's XSAVE
//      (padded to the kernel's size, xstate_bv unchanged), registers (orig_rax = -1) and
//      signal mask; disarm the watchdog; PTRACE_DETACH every thread, the leader last. Each
//      returns to user space at its checkpointed rip. Any failure in 4-6: SIGKILL the whole
//      thread group, collect every traced thread, reap, errc::restore_failed.
//   With opt.spawner (launch::PidNamespace) step 2's child is created by the spawner (in a
//   fresh PID namespace with the image's pid) and planned against the spawner's layout.
#include "restore/restore.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "arch/x86_64/regs.hpp"
#include "ferry/common/unique_fd.hpp"
#include "restore/address_plan.hpp"
#include "restore/child_builder.hpp"
#include "restore/event_fds_restore.hpp"
#include "restore/lazy_pages.hpp"
#include "restore/restore_internal.hpp"
#include "restore/steps.hpp"
#include "restore/time_namespace.hpp"
#include "restore/timers_restore.hpp"

namespace ferry::restore {

namespace {

constexpr int kBootstrapTimeoutMs = 10000;

}  // namespace

// The forked child before it is seized. Async-signal-safe raw system calls only: the
// parent may be multi-threaded (HDF5, logging) and its locks may be held.
[[noreturn]] void bootstrap_restore_child(int status_fd, uint64_t gadget, uint64_t page, pid_t parent) {
  uint64_t all = ~uint64_t{0};
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, nullptr, 8);
  ::syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (::syscall(SYS_getppid) != parent) ::syscall(SYS_exit_group, 127);
  long at = ::syscall(SYS_mmap, gadget, kGadgetPages * page, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  unsigned char status = 0;
  if (at != static_cast<long>(gadget)) {
    status = static_cast<unsigned char>(at == -1 ? errno : EEXIST);
  } else {
    volatile unsigned char* code = reinterpret_cast<unsigned char*>(gadget);
    code[0] = 0x0f;  // syscall
    code[1] = 0x05;
    code[2] = 0xcc;  // int3: a stray return to user space traps instead of running on
    if (::syscall(SYS_mprotect, gadget, page, PROT_READ | PROT_EXEC) != 0)
      status = static_cast<unsigned char>(errno);
  }
  ::syscall(SYS_write, status_fd, &status, 1);
  if (status != 0) ::syscall(SYS_exit_group, 127);
  ::syscall(SYS_close_range, 3, ~0U, 0);  // also closes status_fd: the parent sees EOF
  for (;;) ::syscall(SYS_pause);
}

namespace detail {

// Waits for fd to become readable; false on timeout.
bool wait_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

// SIGKILL and reap, bounded: a killed child goes away promptly (a ptrace wait in Tracee
// may already have reaped it, then waitpid says ECHILD).
void kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  for (int i = 0; i < 1000; ++i) {
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG | __WALL);
    if (r == pid || (r < 0 && errno != EINTR)) return;
    ::usleep(10000);
  }
}

// Kills a restore child that may have several traced threads: SIGKILL the group, collect
// each traced thread's exit (a traced zombie thread holds back the leader's), then the leader.
void kill_all(pid_t pid, std::vector<ptrace::Tracee>& threads) {
  ::kill(pid, SIGKILL);
  for (auto& t : threads) {
    pid_t tid = t.tid();
    t.release();
    if (tid < 0) continue;
    for (int i = 0; i < 1000; ++i) {
      int st = 0;
      pid_t r = ::waitpid(tid, &st, WNOHANG | __WALL);
      if (r == tid || (r < 0 && errno != EINTR)) break;
      ::usleep(10000);
    }
  }
  kill_and_reap(pid);
}

Result<pid_t> spawn_child(uint64_t gadget, uint64_t page) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return fail_errno("create bootstrap pipe");
  UniqueFd rd(p[0]), wr(p[1]);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork restore child");
  if (pid == 0) bootstrap_restore_child(wr.get(), gadget, page, parent);
  wr.reset();
  auto bail = [&](Error e) -> Result<pid_t> {
    kill_and_reap(pid);
    return fail(std::move(e));
  };
  unsigned char status = 0;
  if (!wait_readable(rd.get(), kBootstrapTimeoutMs) || ::read(rd.get(), &status, 1) != 1)
    return bail(Error(errc::restore_failed, "start restore child " + std::to_string(pid) + ": no status"));
  if (status != 0)
    return bail(Error::from_errno("map restore gadget at " + hex(gadget) + " in the child", status));
  char dummy;
  if (!wait_readable(rd.get(), kBootstrapTimeoutMs) || ::read(rd.get(), &dummy, 1) != 0)
    return bail(Error(errc::restore_failed, "start restore child " + std::to_string(pid) + ": fds not closed"));
  return pid;
}

Result<void> pre_ponr(ChildBuilder& b, image::ImageSource& src, const AddressPlan& plan, uint64_t page,
                      const RestoreOptions& opt) {
  const auto& img = src.image();
  auto& t = b.tracee();
  FERRY_TRY_VOID(t.set_sigmask(~0ull));
  // Park the stack pointer in the scratch page: the child's own stack goes away at the PONR,
  // and sigaltstack() refuses (EPERM) while sp lies on the stack being installed.
  FERRY_TRY(regs, t.get_regs());
  user_regs_struct own = regs;
  own.rsp = plan.gadget + kGadgetPages * page - 64;
  FERRY_TRY_VOID(t.set_regs(own));
  // fork() kept our rseq registration; the kernel writes to it on return to user space,
  // and the memory goes away at the PONR.
  FERRY_TRY(rseq, t.get_rseq());
  if (rseq.addr != 0)
    FERRY_TRY_VOID(b.call("unregister inherited rseq", SYS_rseq, {rseq.addr, rseq.len, 1, rseq.sig}));
  // Room for every fd number of the image, and temporaries above them.
  struct rlimit nofile {};
  if (::prlimit(b.pid(), RLIMIT_NOFILE, nullptr, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    if (::prlimit(b.pid(), RLIMIT_NOFILE, &nofile, nullptr) != 0) return fail_errno("raise fd limit of the child");
  }
  int max_fd = 2;
  for (const auto& f : img.fds) max_fd = std::max(max_fd, f.fd);
  b.set_temp_base(max_fd + 1);

  FERRY_TRY_VOID(build_regions(b, src, plan, opt));
  FERRY_TRY_VOID(write_pages(b, src, plan, page, opt));
  const bool lazy = opt.lazy && opt.lazy->lazy();
  // Chunks were checked as they were read; the rest now, before any file is touched (lazy:
  // by the server thread once every page is placed, lazy_pages.cpp).
  if (opt.verify_checksums && opt.checksums_while_filling && !lazy) {
    if (auto r = src.verify_unread(); !r) return fail(r.error().wrap("check image checksums"));
  }
  FERRY_TRY_VOID(restore_fds(b, src, opt));
  FERRY_TRY_VOID(restore_event_fds(b, img));  // eventfd/timerfd/signalfd/epoll, after all fds
  FERRY_TRY_VOID(restore_process_attrs(b, img));
  // Lazy: the server thread takes the image over (no other use of it on this thread from
  // here) and serves the faults of the remote calls that follow (the kernel's accesses to
  // registered memory wait for it too).
  if (lazy) FERRY_TRY_VOID(opt.lazy->start());

  // Trial load of every thread's final CPU state into the leader: the kernel checks XSAVE
  // headers and segment/base values now, while a refusal still leaves nothing behind. The
  // leader's own state goes last (it is loaded for real at the end; the remote calls that
  // follow overwrite only rip/rax/args and the FPU state is not touched by system calls).
  FERRY_TRY(host, t.get_xstate());
  for (size_t i = img.threads.size(); i-- > 0;) {
    const auto& th = img.threads[i];
    const std::string who = " of thread " + std::to_string(th.tid);
    FERRY_TRY(xs, xstate_for_host(th.xsave, host));
    if (auto r = t.set_xstate(xs); !r) return fail(r.error().wrap("load XSAVE state" + who));
    user_regs_struct want = arch::from_array(th.regs);
    want.orig_rax = ~0ull;
    if (auto r = t.set_regs(want); !r) return fail(r.error().wrap("load registers" + who));
  }
  FERRY_TRY_VOID(t.set_regs(own));
  return {};
}

}  // namespace detail

using namespace detail;

Result<pid_t> restore_process(image::ImageSource& src, const RestoreOptions& opt) {
  if (opt.validate) FERRY_TRY_VOID(validate_for_restore(src, opt));
  const auto& img = src.image();
  if (img.threads.empty()) return fail(errc::image_corrupt, "restore: the image has no thread");
  // Pipes, zombie children and shared descriptions are rebuilt by the tree restore (a tree
  // of one process here).
  if (!img.pipes.empty() || !img.pipe_ends.empty() || !img.zombies.empty() || !img.shared_fds.empty()) {
    RestoreOptions tree_opt = opt;
    tree_opt.validate = false;
    if (tree_opt.lazy) {
      tree_opt.lazy->refuse("a process with pipes, zombie children or shared descriptions is restored eagerly");
      tree_opt.lazy = nullptr;
    }
    return restore_tree({TreeProcess{&src, img.threads[0].tid, 0, 0, 0, {}}}, tree_opt);
  }
  uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  // The child starts with the layout of whoever forks it: us, or the spawner's process.
  FERRY_TRY(maps, read_maps(opt.spawner ? opt.spawner->layout_pid() : 0));
  FERRY_TRY(plan, plan_addresses(img.regions, maps, page));
  if (opt.log) opt.log("restore: gadget at " + hex(plan.gadget));

  // Without a spawner our fork lands in the job's time namespace (time_namespace.cpp); a
  // spawner's process must have been created after prepare_time_namespace (cmd_restart.cpp).
  if (!opt.spawner) FERRY_TRY_VOID(prepare_time_namespace(img, opt.log));
  Result<pid_t> spawned = opt.spawner ? opt.spawner->spawn(img.threads[0].tid, plan.gadget, page)
                                      : spawn_child(plan.gadget, page);
  if (!spawned) return fail(spawned.error());
  const pid_t pid = *spawned;
  Watchdog dog(pid, opt.timeout);
  auto timed_out = [&](Error e) {
    if (dog.disarm())
      return Error(e.code(), "restore timed out after " + std::to_string(opt.timeout.count()) +
                                 " s (" + e.message() + ")");
    return e;
  };

  auto seized = ptrace::Tracee::seize(pid, /*exit_kill=*/true);
  if (!seized) {
    kill_and_reap(pid);
    return fail(timed_out(seized.error().wrap("seize restore child " + std::to_string(pid))));
  }
  ptrace::Tracee& t = *seized;
  ChildBuilder b(t, plan.gadget, page);

  if (auto r = pre_ponr(b, src, plan, page, opt); !r) {
    t.release();
    kill_and_reap(pid);
    return fail(timed_out(r.error().wrap("restore")));
  }
  if (opt.before_ponr) {
    if (auto r = opt.before_ponr(); !r) {
      t.release();
      kill_and_reap(pid);
      return fail(timed_out(r.error()));
    }
  }
  if (opt.log) opt.log("restore: pre-PONR steps done");
  std::vector<ptrace::Tracee> others;  // threads 1..n-1, once created
  auto post = [&]() -> Result<void> {
    FERRY_TRY_VOID(tear_down_and_place(b, img, plan, page, opt));
    const bool drop_caps = opt.spawner && opt.spawner->spawned_child_drops_capabilities();
    FERRY_TRY_VOID(create_threads(b, img, opt.same_tids, others, drop_caps));
    FERRY_TRY_VOID(restore_timers_and_signals(b, img, others));  // timers_restore.cpp
    if (drop_caps) FERRY_TRY_VOID(drop_capabilities(b));
    if (opt.log && img.threads.size() > 1)
      opt.log("restore: created " + std::to_string(others.size()) + " more threads");
    FERRY_TRY_VOID(finish_thread(b, img, plan.gadget, page));
    return {};
  }();
  auto abort_all = [&](const std::string& why) {
    t.release();
    kill_all(pid, others);
    return fail(errc::restore_failed, why);
  };
  if (!post) {
    Error e = timed_out(post.error());
    return abort_all("restore (after the point of no return, process killed): " + e.message());
  }
  if (dog.disarm())
    return abort_all("restore timed out after " + std::to_string(opt.timeout.count()) + " s");
  // Every thread has its final state: let them all go (the leader last).
  for (auto& o : others) {
    pid_t tid = o.tid();
    if (auto r = o.detach(); !r)
      return abort_all("restore: detach thread " + std::to_string(tid) + ": " + r.error().message());
  }
  if (auto r = t.detach(); !r) return abort_all("restore: " + r.error().message());
  if (opt.lazy) opt.lazy->program_resumed();
  if (opt.log) opt.log("restore: process " + std::to_string(pid) + " running");
  return pid;
}

}  // namespace ferry::restore
