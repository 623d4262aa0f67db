// SPDX-License-Identifier: Apache-2.0
// Tracee and RemoteCalls: seizing one thread, register/XSAVE/memory access and remote system
// calls through a `syscall` gadget (see tracee.hpp).
//
// Algorithm (remote system call):
//   1. The thread sits in a ptrace-stop (the PTRACE_INTERRUPT stop after seize, or the
//      syscall-exit stop of the previous remote call).
//   2. SETREGSET: rip = gadget (a `syscall` instruction in [vdso]), rax = nr, args in
//      rdi rsi rdx r10 r8 r9, orig_rax = -1 (so the kernel applies no restart logic to the
//      interrupted syscall the thread may have been blocked in).
//   3. PTRACE_SYSCALL -> syscall-entry stop (SIGTRAP|0x80 thanks to PTRACE_O_TRACESYSGOOD);
//      PTRACE_SYSCALL -> syscall-exit stop; rax is the result.
//   4. Any other stop on the way is handled, never lost: a signal-delivery-stop (only SIGSTOP
//      and other unblockable/synchronous signals can get through the all-blocked mask that
//      RemoteCalls installs) is suppressed and recorded, and re-queued with tgkill() before the
//      thread is detached; group stops / extra interrupt stops are simply resumed.
//   5. RemoteCalls::finish puts back the saved registers, first applying the rewind the kernel
//      would have done (arch::rewind_like_kernel): once the thread is in a syscall-exit stop the
//      kernel no longer restarts the syscall it was blocked in, so without this a read()
//      interrupted by the checkpoint would return -512 to the program.
#include "ptrace/tracee.hpp"

#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "arch/x86_64/syscall_restart.hpp"
#include "ferry/common/unique_fd.hpp"

namespace ferry::ptrace {

namespace {

// Bound on stops handled while waiting for one expected stop: a thread that keeps producing
// signal stops (e.g. a SIGSTOP storm) makes the operation fail instead of looping forever.
constexpr int kMaxStopsPerWait = 256;

long raw_ptrace(long req, pid_t tid, uint64_t addr, uint64_t data) {
  return ::ptrace(static_cast<enum __ptrace_request>(req), tid, reinterpret_cast<void*>(addr),
                  reinterpret_cast<void*>(data));
}

std::string ctx(const char* what, pid_t tid) {
  return std::string(what) + " tid " + std::to_string(tid);
}

Error gone(pid_t tid) {
  return Error(errc::process_gone, "thread " + std::to_string(tid) + " exited while traced");
}

}  // namespace

Result<Tracee> Tracee::seize(pid_t tid, bool exit_kill) {
  long opts = PTRACE_O_TRACESYSGOOD | (exit_kill ? PTRACE_O_EXITKILL : 0);
  if (raw_ptrace(PTRACE_SEIZE, tid, 0, static_cast<uint64_t>(opts)) != 0) {
    if (errno == ESRCH) return fail(errc::process_gone, "seize tid " + std::to_string(tid) + ": no such thread");
    return fail_errno(ctx("ptrace(PTRACE_SEIZE)", tid));
  }
  Tracee t(tid);
  if (raw_ptrace(PTRACE_INTERRUPT, tid, 0, 0) != 0) {
    int err = errno;
    if (err == ESRCH) {
      t.release();
      return fail(gone(tid));
    }
    return fail_errno(ctx("ptrace(PTRACE_INTERRUPT)", tid), err);
  }
  FERRY_TRY_VOID(t.wait_stop(false));
  return t;
}

Result<Tracee> Tracee::adopt(pid_t tid) {
  Tracee t(tid);
  FERRY_TRY_VOID(t.wait_stop(false));
  return t;
}

Tracee::Tracee(Tracee&& o) noexcept
    : tid_(std::exchange(o.tid_, -1)),
      deferred_signals_(std::move(o.deferred_signals_)),
      cloned_(std::move(o.cloned_)) {}

Tracee& Tracee::operator=(Tracee&& o) noexcept {
  if (this != &o) {
    if (tid_ >= 0) (void)detach();
    tid_ = std::exchange(o.tid_, -1);
    deferred_signals_ = std::move(o.deferred_signals_);
    cloned_ = std::move(o.cloned_);
  }
  return *this;
}

Tracee::~Tracee() {
  if (tid_ >= 0) (void)detach();
}

Result<void> Tracee::detach() {
  if (tid_ < 0) return {};
  pid_t tid = std::exchange(tid_, -1);
  // Re-queue signals that were dequeued while we held the thread; they are delivered normally
  // once it runs untraced. (Their siginfo, e.g. the sender pid, is not preserved.)
  pid_t tgid = tgid_of(tid);
  for (int sig : deferred_signals_) ::syscall(SYS_tgkill, tgid, tid, sig);
  deferred_signals_.clear();
  if (raw_ptrace(PTRACE_DETACH, tid, 0, 0) != 0) {
    if (errno == ESRCH) return fail(gone(tid));
    return fail_errno(ctx("ptrace(PTRACE_DETACH)", tid));
  }
  return {};
}

pid_t Tracee::tgid_of(pid_t tid) {
  std::ifstream in("/proc/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Tgid:", 0) == 0) return static_cast<pid_t>(std::stol(line.substr(5)));
  }
  return tid;
}

Result<void> Tracee::resume_for(bool syscall_stop) {
  long req = syscall_stop ? PTRACE_SYSCALL : PTRACE_CONT;
  if (raw_ptrace(req, tid_, 0, 0) != 0) {
    if (errno == ESRCH) return fail(gone(tid_));
    return fail_errno(ctx(syscall_stop ? "ptrace(PTRACE_SYSCALL)" : "ptrace(PTRACE_CONT)", tid_));
  }
  return {};
}

Result<int> Tracee::next_stop() {
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(tid_, &status, __WALL);
    if (r < 0) {
      if (errno == EINTR) continue;
      return fail_errno(ctx("waitpid", tid_));
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      pid_t tid = tid_;
      tid_ = -1;
      return fail(gone(tid));
    }
    if (WIFSTOPPED(status)) return status;
  }
}

Result<void> Tracee::wait_stop(bool syscall_stop) {
  for (int i = 0; i < kMaxStopsPerWait; ++i) {
    FERRY_TRY(status, next_stop());
    int sig = WSTOPSIG(status);
    int event = status >> 16;
    if (event == PTRACE_EVENT_CLONE || event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK) {
      unsigned long child = 0;
      if (raw_ptrace(PTRACE_GETEVENTMSG, tid_, 0, reinterpret_cast<uint64_t>(&child)) == 0)
        cloned_.push_back(static_cast<pid_t>(child));
    }
    if (syscall_stop) {
      if (sig == (SIGTRAP | 0x80)) return {};
      if (event == 0) deferred_signals_.push_back(sig);  // signal-delivery-stop: suppress
      FERRY_TRY_VOID(resume_for(true));
      continue;
    }
    if (event == PTRACE_EVENT_STOP) return {};  // interrupt stop or group stop
    if (event == 0 && sig != (SIGTRAP | 0x80)) deferred_signals_.push_back(sig);
    // Not the stop we want: the interrupt is still pending, ask again and let it run to it.
    if (raw_ptrace(PTRACE_INTERRUPT, tid_, 0, 0) != 0 && errno != ESRCH)
      return fail_errno(ctx("ptrace(PTRACE_INTERRUPT)", tid_));
    FERRY_TRY_VOID(resume_for(false));
  }
  return fail(errc::busy, "wait for ptrace stop of tid " + std::to_string(tid_) +
                              ": too many other stops (signal storm?)");
}

Result<user_regs_struct> Tracee::get_regs() const {
  user_regs_struct regs{};
  iovec iov{&regs, sizeof regs};
  if (raw_ptrace(PTRACE_GETREGSET, tid_, NT_PRSTATUS, reinterpret_cast<uint64_t>(&iov)) != 0)
    return fail_errno(ctx("ptrace(PTRACE_GETREGSET NT_PRSTATUS)", tid_));
  if (iov.iov_len != sizeof regs)
    return fail(errc::unsupported, ctx("get registers", tid_) + ": unexpected NT_PRSTATUS size " +
                                       std::to_string(iov.iov_len) + " (not a 64-bit thread?)");
  return regs;
}

Result<void> Tracee::set_regs(const user_regs_struct& regs) {
  user_regs_struct copy = regs;
  iovec iov{&copy, sizeof copy};
  if (raw_ptrace(PTRACE_SETREGSET, tid_, NT_PRSTATUS, reinterpret_cast<uint64_t>(&iov)) != 0)
    return fail_errno(ctx("ptrace(PTRACE_SETREGSET NT_PRSTATUS)", tid_));
  return {};
}

Result<std::vector<uint8_t>> Tracee::get_xstate() const {
  // Large enough for any XSAVE layout (AMX tiles included); the kernel shrinks iov_len.
  std::vector<uint8_t> buf(64 * 1024);
  iovec iov{buf.data(), buf.size()};
  if (raw_ptrace(PTRACE_GETREGSET, tid_, NT_X86_XSTATE, reinterpret_cast<uint64_t>(&iov)) != 0)
    return fail_errno(ctx("ptrace(PTRACE_GETREGSET NT_X86_XSTATE)", tid_));
  buf.resize(iov.iov_len);
  return buf;
}

Result<void> Tracee::set_xstate(std::span<const uint8_t> xsave) {
  std::vector<uint8_t> copy(xsave.begin(), xsave.end());
  iovec iov{copy.data(), copy.size()};
  if (raw_ptrace(PTRACE_SETREGSET, tid_, NT_X86_XSTATE, reinterpret_cast<uint64_t>(&iov)) != 0)
    return fail_errno(ctx("ptrace(PTRACE_SETREGSET NT_X86_XSTATE)", tid_));
  return {};
}

Result<uint64_t> Tracee::get_sigmask() const {
  uint64_t mask = 0;
  if (raw_ptrace(PTRACE_GETSIGMASK, tid_, sizeof mask, reinterpret_cast<uint64_t>(&mask)) != 0)
    return fail_errno(ctx("ptrace(PTRACE_GETSIGMASK)", tid_));
  return mask;
}

Result<void> Tracee::set_sigmask(uint64_t mask) {
  if (raw_ptrace(PTRACE_SETSIGMASK, tid_, sizeof mask, reinterpret_cast<uint64_t>(&mask)) != 0)
    return fail_errno(ctx("ptrace(PTRACE_SETSIGMASK)", tid_));
  return {};
}

Result<RseqConfig> Tracee::get_rseq() const {
  __ptrace_rseq_configuration conf{};
  if (raw_ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid_, sizeof conf,
                 reinterpret_cast<uint64_t>(&conf)) < 0)
    return fail_errno(ctx("ptrace(PTRACE_GET_RSEQ_CONFIGURATION)", tid_));
  return RseqConfig{conf.rseq_abi_pointer, conf.rseq_abi_size, conf.signature, conf.flags};
}

Result<void> Tracee::set_options(long options) {
  options |= PTRACE_O_TRACESYSGOOD;
  if (raw_ptrace(PTRACE_SETOPTIONS, tid_, 0, static_cast<uint64_t>(options)) != 0)
    return fail_errno(ctx("ptrace(PTRACE_SETOPTIONS)", tid_));
  return {};
}

Result<int64_t> Tracee::syscall(uint64_t gadget, long nr, std::initializer_list<uint64_t> args) {
  if (args.size() > 6) return fail(errc::protocol, "remote syscall: more than 6 arguments");
  FERRY_TRY(regs, get_regs());
  uint64_t a[6] = {};
  size_t i = 0;
  for (uint64_t v : args) a[i++] = v;
  regs.rip = gadget;
  regs.rax = static_cast<uint64_t>(nr);
  regs.orig_rax = ~0ull;
  regs.rdi = a[0];
  regs.rsi = a[1];
  regs.rdx = a[2];
  regs.r10 = a[3];
  regs.r8 = a[4];
  regs.r9 = a[5];
  FERRY_TRY_VOID(set_regs(regs));
  std::string what = "remote syscall " + std::to_string(nr) + " in tid " + std::to_string(tid_);
  FERRY_TRY_VOID(resume_for(true));
  if (auto r = wait_stop(true); !r) return fail(r.error().wrap(what));
  FERRY_TRY(entry, get_regs());
  if (entry.orig_rax != static_cast<uint64_t>(nr) || entry.rip != gadget + 2)
    return fail(errc::protocol, what + ": stopped at an unexpected syscall entry (orig_rax " +
                                    std::to_string(static_cast<int64_t>(entry.orig_rax)) + ")");
  FERRY_TRY_VOID(resume_for(true));
  if (auto r = wait_stop(true); !r) return fail(r.error().wrap(what));
  FERRY_TRY(out, get_regs());
  return static_cast<int64_t>(out.rax);
}

Result<user_regs_struct> Tracee::run_to_breakpoint(const user_regs_struct& regs, uint64_t trap_rip) {
  FERRY_TRY_VOID(set_regs(regs));
  const std::string what = "remote code in tid " + std::to_string(tid_);
  FERRY_TRY_VOID(resume_for(false));
  for (int i = 0; i < kMaxStopsPerWait; ++i) {
    FERRY_TRY(status, next_stop());
    const int sig = WSTOPSIG(status);
    const int event = status >> 16;
    if (event == 0 && sig == SIGTRAP) {  // the int3 (forced: it gets through the blocked mask)
      FERRY_TRY(now, get_regs());
      if (now.rip != trap_rip)
        return fail(errc::protocol, what + ": trapped at an unexpected address (rip " + std::to_string(now.rip) + ")");
      return now;
    }
    if (event == 0) deferred_signals_.push_back(sig);  // signal-delivery-stop: suppress
    FERRY_TRY_VOID(resume_for(false));
  }
  return fail(errc::busy, what + ": too many other stops (signal storm?)");
}

Result<void> Tracee::read_memory(uint64_t addr, std::span<std::byte> out) const {
  size_t done = 0;
  while (done < out.size()) {
    iovec local{out.data() + done, out.size() - done};
    iovec remote{reinterpret_cast<void*>(addr + done), out.size() - done};
    ssize_t n = ::process_vm_readv(tid_, &local, 1, &remote, 1, 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      int err = n < 0 ? errno : EFAULT;
      // Some special mappings (e.g. [vdso]) read fine through /proc/PID/mem only.
      UniqueFd mem(::open(("/proc/" + std::to_string(tid_) + "/mem").c_str(), O_RDONLY | O_CLOEXEC));
      ssize_t m = mem ? ::pread(mem.get(), out.data() + done, out.size() - done,
                                static_cast<off_t>(addr + done))
                      : -1;
      if (m <= 0) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "read memory at 0x%llx", static_cast<unsigned long long>(addr + done));
        return fail_errno(ctx(buf, tid_), err);
      }
      done += static_cast<size_t>(m);
      continue;
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Result<void> Tracee::write_memory(uint64_t addr, std::span<const std::byte> in) const {
  size_t done = 0;
  while (done < in.size()) {
    iovec local{const_cast<std::byte*>(in.data() + done), in.size() - done};
    iovec remote{reinterpret_cast<void*>(addr + done), in.size() - done};
    ssize_t n = ::process_vm_writev(tid_, &local, 1, &remote, 1, 0);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    int err = n < 0 ? errno : EFAULT;
    char buf[64];
    std::snprintf(buf, sizeof buf, "write memory at 0x%llx", static_cast<unsigned long long>(addr + done));
    if (err != EFAULT) return fail_errno(ctx(buf, tid_), err);
    // Read-only pages (text): /proc/PID/mem writes with FOLL_FORCE.
    UniqueFd mem(::open(("/proc/" + std::to_string(tid_) + "/mem").c_str(), O_WRONLY | O_CLOEXEC));
    if (!mem) return fail_errno(ctx("open /proc/PID/mem of", tid_));
    ssize_t m = ::pwrite(mem.get(), in.data() + done, in.size() - done, static_cast<off_t>(addr + done));
    if (m <= 0) return fail_errno(ctx(buf, tid_), m < 0 ? errno : EFAULT);
    done += static_cast<size_t>(m);
  }
  return {};
}

// ---- RemoteCalls ----

Result<RemoteCalls> RemoteCalls::begin(Tracee& t, uint64_t gadget) {
  FERRY_TRY(regs, t.get_regs());
  FERRY_TRY(mask, t.get_sigmask());
  FERRY_TRY_VOID(t.set_sigmask(~0ull));
  return RemoteCalls(t, gadget, regs, mask);
}

RemoteCalls::RemoteCalls(RemoteCalls&& o) noexcept
    : t_(o.t_), gadget_(o.gadget_), saved_(o.saved_), mask_(o.mask_), done_(o.done_) {
  o.done_ = true;
}

RemoteCalls::~RemoteCalls() {
  if (!done_) (void)finish();
}

Result<int64_t> RemoteCalls::call(long nr, std::initializer_list<uint64_t> args) {
  if (done_) return fail(errc::protocol, "remote syscall after RemoteCalls::finish");
  return t_->syscall(gadget_, nr, args);
}

Result<void> RemoteCalls::finish() {
  if (done_) return {};
  done_ = true;
  if (t_->tid() < 0) return fail(errc::process_gone, "restore registers: thread is gone");
  user_regs_struct regs = saved_;
  arch::rewind_like_kernel(regs);
  FERRY_TRY_VOID(t_->set_regs(regs));
  FERRY_TRY_VOID(t_->set_sigmask(mask_));
  return {};
}

// ---- gadget ----

Result<uint64_t> find_vdso_syscall_gadget(pid_t pid) {
  std::string maps_path = "/proc/" + std::to_string(pid) + "/maps";
  std::ifstream in(maps_path);
  if (!in) return fail_errno("open " + maps_path);
  std::string line;
  uint64_t start = 0, end = 0;
  while (std::getline(in, line)) {
    if (line.size() < 6 || line.compare(line.size() - 6, 6, "[vdso]") != 0) continue;
    unsigned long long s = 0, e = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx", &s, &e) == 2) {
      start = s;
      end = e;
    }
    break;
  }
  if (start == 0 || end <= start)
    return fail(errc::unsupported, "find syscall gadget in process " + std::to_string(pid) + ": no [vdso] mapping");
  std::vector<std::byte> bytes(end - start);
  // Tracee is not needed for reading; use the same path as read_memory.
  iovec local{bytes.data(), bytes.size()};
  iovec remote{reinterpret_cast<void*>(start), bytes.size()};
  ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (n != static_cast<ssize_t>(bytes.size())) {
    UniqueFd mem(::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC));
    if (!mem) return fail_errno("open /proc/" + std::to_string(pid) + "/mem");
    if (::pread(mem.get(), bytes.data(), bytes.size(), static_cast<off_t>(start)) !=
        static_cast<ssize_t>(bytes.size()))
      return fail_errno("read [vdso] of process " + std::to_string(pid));
  }
  for (size_t i = 0; i + 1 < bytes.size(); ++i) {
    if (bytes[i] == std::byte{0x0f} && bytes[i + 1] == std::byte{0x05}) return start + i;
  }
  return fail(errc::unsupported, "find syscall gadget in process " + std::to_string(pid) +
                                     ": no syscall instruction in [vdso]");
}

}  // namespace ferry::ptrace
