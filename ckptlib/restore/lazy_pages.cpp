// SPDX-License-Identifier: Apache-2.0
// Lazy restore of private anonymous memory (README.md, "Lazy restore").
// Algorithm:
//   1. write_pages (page_filler.cpp) calls open_lazy: a userfaultfd is created in the child
//      by a remote call, WITHOUT UFFD_USER_MODE_ONLY (so the kernel's own accesses, e.g. a
//      read() into a missing buffer or the rseq area update, also wait for us instead of
//      failing with EFAULT; needs CAP_SYS_PTRACE, else the restore is eager), O_NONBLOCK, taken
//      over by pidfd_getfd, with EVENT_FORK|EVENT_REMAP|EVENT_REMOVE|EVENT_UNMAP. Every
//      private anonymous region built at its final address (not staged, not in huge pages)
//      is registered MISSING; its page pieces go to the lazy list (storage order), the rest
//      is filled eagerly as usual.
//   2. pre_ponr calls start() after the last use of the image on the restoring thread (the
//      fds); it first fetches the pages at each thread's stack pointer and TLS base (the
//      program faults on them at once) while the restore finishes; until restore_process has
//      let the program go (program_resumed), the server then only
//      serves faults (the remaining remote calls may touch registered memory), so it does not
//      take the CPU from the restore. A guard process holds a pipe and a pidfd of the process
//      to kill (the job's init): EOF without the "done" byte (we died) -> SIGKILL, so the
//      program never runs on with missing pages (closing the userfaultfd would turn them
//      into zero pages). The guard is a clone(CLONE_VM) child on a small stack of its own,
//      making raw system calls only (no errno: it shares memory, TLS included, with the
//      restoring thread): a fork() made every page of ferry copy-on-write, and the server's
//      first writes to its buffers then cost a copy and a TLB shootdown per page (the first
//      faults after the program resumed waited 40-70 ms). The address space lives on with
//      the guard if ferry dies. Then the server thread starts, taking over the restoring
//      thread's read buffers (ImageSource::take_thread_read_buffers); the program runs once the
//      restore returns.
//   3. The server thread alone uses the image from now on (HDF5 is not thread-safe). Per
//      step: read every pending message of every userfaultfd (non-blocking): a page fault is
//      queued; FORK adds a target (the child's userfaultfd, with a copy of the parent's
//      mapping); REMOVE/UNMAP cut the range out of the target's mapping (a later fault there
//      gets a zero page: the program dropped it); REMAP moves it. Queued faults are served:
//      the faulting page's piece (its write, cut to its storage chunk and to the mapping
//      segment) is read and placed with UFFDIO_COPY, holes get UFFDIO_ZEROPAGE. Then the
//      next batch (kLazyBatch, ending on a chunk boundary) of the lazy list is read with
//      read_pages_v and placed in every target, skipping what a fault already placed there.
//      EEXIST = already there (skip the page), EAGAIN = a mapping change is pending (read
//      messages, retry), ESRCH = that process is gone.
//   4. Every chunk read is checked against its XXH3 (read_pages); after the last batch the
//      chunks never read are checked (verify_unread). A failure kills the job (pidfd of init)
//      BEFORE the userfaultfds are closed and is kept for failure(): the supervisor exits 70
//      ("after the point of no return"). Success: close every userfaultfd (lazy mode ends),
//      tell the guard, report the figures.
#include "restore/lazy_pages.hpp"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <thread>
#include <vector>

#include "arch/x86_64/regs.hpp"
#include "ferry/common/huge_buffer.hpp"
#include "ferry/common/unique_fd.hpp"
#include "restore/address_plan.hpp"
#include "restore/child_builder.hpp"
#include "restore/lazy_internal.hpp"

namespace ferry::restore {

using image::RegionKind;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kLazyBatch = size_t{4} << 20;  // one chunk: short fault latency between batches
constexpr size_t kMaxPieces = 1024;
constexpr size_t kGuardStack = size_t{64} << 10;

// A system call that leaves errno alone (the guard shares the restoring thread's TLS).
long guard_syscall(long nr, long a1, long a2 = 0, long a3 = 0, long a4 = 0) {
  long ret;
  register long r10 asm("r10") = a4;
  asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10) : "rcx", "r11", "memory");
  return ret;
}

// The guard (see the top): waits for the "done" byte; EOF means ferry died -> SIGKILL the job.
int guard_main(void* arg) {
  const auto a = reinterpret_cast<uint64_t>(arg);
  const long rd = static_cast<long>(a & 0xfffff), wr = static_cast<long>((a >> 20) & 0xfffff),
             kfd = static_cast<long>(a >> 40);
  guard_syscall(SYS_close, wr);
  char c = 0;
  long n;
  do n = guard_syscall(SYS_read, rd, reinterpret_cast<long>(&c), 1);
  while (n == -EINTR);
  if (n <= 0) guard_syscall(SYS_pidfd_send_signal, kfd, SIGKILL, 0, 0);
  guard_syscall(SYS_exit_group, 0);
  return 0;
}
constexpr size_t kFaultBuffer = size_t{8} << 20;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

// One address space being filled: the program, or a child it forked while pages were missing.
struct LazyTarget {
  UniqueFd fd;
  std::vector<LazySeg> segs;                 // still lazy, by child address
  std::map<uint64_t, uint64_t> served;       // image [start, end) placed by faults
  bool dead = false;
};

struct LazyState {
  std::deque<LazyTarget> targets;  // [0] the program
  std::vector<LazyWrite> writes;   // storage order
  std::vector<size_t> by_image;    // indices of writes by image address
  image::ImageSource* src = nullptr;
  uint64_t page = 4096;
  UniqueFd kill_pidfd;
  pid_t guard = -1;
  UniqueFd guard_wr;
  void* guard_stack = nullptr;
  std::thread server;
  std::atomic<bool> stop{false};
  std::function<void(const std::string&)> report;
  Clock::time_point resumed = Clock::now();
  std::atomic<bool> resumed_set{false};  // the program runs: start streaming
  HugeBuffer batch, fault_buf;  // huge pages where possible
  std::deque<std::pair<size_t, uint64_t>> faults;  // {target, page address}
  std::vector<uint64_t> hot;  // pages every thread touches first (stack top, TLS): fetched at once
  bool serving = false;
  uint64_t bytes = 0, fault_bytes = 0, faults_served = 0, zero_pages = 0, forks = 0;

  bool all_dead() const {
    return std::all_of(targets.begin(), targets.end(), [](const LazyTarget& t) { return t.dead; });
  }

  enum class Copy { done, again, dead };

  Copy copy(LazyTarget& t, uint64_t dst, const std::byte* from, uint64_t len, uint64_t* placed) {
    while (len > 0) {
      uffdio_copy c{};
      c.dst = dst;
      c.src = reinterpret_cast<uint64_t>(from);
      c.len = len;
      int r = ::ioctl(t.fd.get(), UFFDIO_COPY, &c);
      if (r == 0) {
        *placed += len;
        return Copy::done;
      }
      int e = errno;
      uint64_t step = 0;
      if (c.copy > 0) {
        step = static_cast<uint64_t>(c.copy);
        *placed += step;
      } else if (e == EEXIST) {
        step = page;  // the program (or a fault) has it already
      } else if (e == EAGAIN) {
        return Copy::again;
      } else if (e == ESRCH) {
        t.dead = true;
        return Copy::dead;
      } else {
        return Copy::done;  // ENOENT/EFAULT: not mapped (registered) there any more
      }
      dst += step;
      from += step;
      len -= std::min(len, step);
    }
    return Copy::done;
  }

  // Cuts [s, e) out of a target's lazy mapping.
  static void cut(LazyTarget& t, uint64_t s, uint64_t e) {
    std::vector<LazySeg> out;
    for (const auto& g : t.segs) {
      uint64_t gs = g.child, ge = g.child + g.len;
      if (ge <= s || gs >= e) {
        out.push_back(g);
        continue;
      }
      if (gs < s) out.push_back({gs, s - gs, g.image});
      if (ge > e) out.push_back({e, ge - e, g.image + (e - gs)});
    }
    t.segs.swap(out);
  }

  static void move(LazyTarget& t, uint64_t from, uint64_t to, uint64_t len) {
    std::vector<LazySeg> moved;
    for (const auto& g : t.segs) {
      uint64_t lo = std::max(g.child, from), hi = std::min(g.child + g.len, from + len);
      if (lo < hi) moved.push_back({lo - from + to, hi - lo, g.image + (lo - g.child)});
    }
    cut(t, from, from + len);
    cut(t, to, to + len);
    t.segs.insert(t.segs.end(), moved.begin(), moved.end());
    std::sort(t.segs.begin(), t.segs.end(), [](const LazySeg& a, const LazySeg& b) { return a.child < b.child; });
  }

  // Reads every pending message of every target; faults are queued.
  void read_messages() {
    for (size_t i = 0; i < targets.size(); ++i) {
      for (;;) {
        if (targets[i].dead) break;
        uffd_msg m[16];
        ssize_t n = ::read(targets[i].fd.get(), m, sizeof m);
        if (n <= 0) break;  // EAGAIN: nothing pending
        for (ssize_t k = 0; k < n / static_cast<ssize_t>(sizeof(uffd_msg)); ++k) {
          LazyTarget& t = targets[i];
          switch (m[k].event) {
            case UFFD_EVENT_PAGEFAULT:
              faults.push_back({i, m[k].arg.pagefault.address & ~(page - 1)});
              break;
            case UFFD_EVENT_FORK: {
              LazyTarget child;
              child.fd = UniqueFd(static_cast<int>(m[k].arg.fork.ufd));
              ::fcntl(child.fd.get(), F_SETFL, O_NONBLOCK);
              child.segs = t.segs;
              child.served = t.served;
              targets.push_back(std::move(child));
              ++forks;
              break;
            }
            case UFFD_EVENT_REMAP:
              move(t, m[k].arg.remap.from, m[k].arg.remap.to, m[k].arg.remap.len);
              break;
            case UFFD_EVENT_REMOVE:
            case UFFD_EVENT_UNMAP:
              cut(t, m[k].arg.remove.start, m[k].arg.remove.end);
              break;
            default:
              break;
          }
        }
      }
    }
  }

  void zero_page(LazyTarget& t, uint64_t addr) {
    for (int tries = 0; tries < 1000; ++tries) {
      uffdio_zeropage z{};
      z.range = {addr, page};
      if (::ioctl(t.fd.get(), UFFDIO_ZEROPAGE, &z) == 0 || errno != EAGAIN) break;
      read_messages();
    }
    ++zero_pages;
  }

  // The write holding image address a, or nullptr.
  const LazyWrite* write_at(uint64_t a) const {
    auto it = std::upper_bound(by_image.begin(), by_image.end(), a,
                               [&](uint64_t x, size_t i) { return x < writes[i].image; });
    if (it == by_image.begin()) return nullptr;
    const LazyWrite& w = writes[*std::prev(it)];
    return a < w.image + w.len ? &w : nullptr;
  }

  Result<void> serve_fault(size_t ti, uint64_t addr) {
    for (int tries = 0; tries < 1000; ++tries) {
      LazyTarget& t = targets[ti];
      if (t.dead) return {};
      auto g = std::find_if(t.segs.begin(), t.segs.end(),
                            [&](const LazySeg& s) { return addr >= s.child && addr < s.child + s.len; });
      const LazyWrite* w = g == t.segs.end() ? nullptr : write_at(g->image + (addr - g->child));
      if (!w) {  // a hole, or a range the program dropped or remapped from elsewhere
        zero_page(t, addr);
      } else {
        const uint64_t ia = g->image + (addr - g->child);
        const uint64_t off = w->pos.offset + (ia - w->image);
        uint64_t lo = ia, hi = ia + page;
        if (w->pos.chunk > 0) {
          lo = ia - (off % w->pos.chunk);
          hi = lo + w->pos.chunk;
        }
        lo = std::max({lo, w->image, g->image});
        hi = std::min({hi, w->image + w->len, g->image + g->len, lo + kFaultBuffer});
        if (ia >= hi) lo = ia, hi = ia + page;
        if (auto r = src->read_pages(lo, std::span<std::byte>(fault_buf.data(), static_cast<size_t>(hi - lo))); !r)
          return fail(r.error().wrap("read pages of " + hex(lo) + " for a page fault"));
        uint64_t placed = 0;
        Copy c = copy(t, g->child + (lo - g->image), fault_buf.data(), hi - lo, &placed);
        fault_bytes += placed;
        bytes += placed;
        if (c == Copy::again) {
          read_messages();
          continue;  // the mapping may have changed: look it up again
        }
        if (c == Copy::done) t.served[lo] = hi;
      }
      uffdio_range wake{addr, page};
      (void)::ioctl(targets[ti].fd.get(), UFFDIO_WAKE, &wake);
      ++faults_served;
      return {};
    }
    return {};
  }

  Result<void> handle_events() {
    read_messages();
    if (serving) return {};
    serving = true;
    Result<void> r;
    while (r && !faults.empty()) {
      auto [ti, addr] = faults.front();
      faults.pop_front();
      r = serve_fault(ti, addr);
    }
    serving = false;
    return r;
  }

  // Places image bytes [pa, pa+n) (in `data`) into every live target, except where a fault
  // placed them already.
  Result<void> place(uint64_t pa, const std::byte* data, uint64_t n) {
    for (int rounds = 0;; ++rounds) {
      bool again = false;
      for (size_t ti = 0; ti < targets.size() && !again; ++ti) {
        LazyTarget& t = targets[ti];
        if (t.dead) continue;
        for (size_t gi = 0; gi < t.segs.size() && !again; ++gi) {
          const LazySeg g = t.segs[gi];
          uint64_t lo = std::max(g.image, pa), hi = std::min(g.image + g.len, pa + n);
          // Skip the parts a fault served (its map holds few entries: at most one per chunk).
          for (uint64_t at = lo; at < hi && !again;) {
            uint64_t end = hi;
            auto it = t.served.upper_bound(at);
            if (it != t.served.begin() && std::prev(it)->second > at) {
              at = std::min(hi, std::prev(it)->second);
              continue;
            }
            if (it != t.served.end()) end = std::min(end, it->first);
            uint64_t placed = 0;
            Copy c = copy(t, g.child + (at - g.image), data + (at - pa), end - at, &placed);
            bytes += placed;
            if (c == Copy::again) again = true;
            if (c == Copy::dead) break;
            at = end;
          }
        }
      }
      if (!again) return {};
      FERRY_TRY_VOID(handle_events());
      if (rounds > 100000) return fail(errc::restore_failed, "lazy restore: UFFDIO_COPY keeps failing with EAGAIN");
    }
  }

  // Streams the lazy list in batches, serving faults between them.
  Result<void> stream() {
    std::vector<image::PageRead> reads;
    struct Piece {
      uint64_t image, len;
      size_t at;
    };
    std::vector<Piece> pieces;
    size_t wi = 0;
    uint64_t w_off = 0;
    // The threads' stack tops and TLS first, while the restore still runs: the program
    // would fault on them at once. Then, until the program runs, only serve faults (the
    // restore's remote calls): the stream would take the CPU from the restore itself.
    for (uint64_t a : hot) faults.push_back({0, a});
    FERRY_TRY_VOID(handle_events());
    // Meanwhile touch the batch buffer, then the fault buffer, a slice per wait: in 4 KiB
    // pages (no huge pages here) a first write to a fresh page costs a hypervisor fault on the
    // project VM (~15 ms per 4 MiB), which would delay the first faults after the resume. In slices, so a fault
    // of the restore's own remote calls is still served at once.
    constexpr size_t kSlice = size_t{256} << 10;
    size_t warmed = 0;
    while (!resumed_set.load() && !stop.load() && !all_dead()) {
      std::vector<pollfd> fds;
      for (const auto& t : targets)
        if (!t.dead) fds.push_back({t.fd.get(), POLLIN, 0});
      (void)::poll(fds.data(), fds.size(), warmed < kLazyBatch + kFaultBuffer ? 0 : 2);
      FERRY_TRY_VOID(handle_events());
      if (warmed < kLazyBatch + kFaultBuffer) {
        std::byte* at = warmed < kLazyBatch ? batch.data() + warmed : fault_buf.data() + (warmed - kLazyBatch);
        std::memset(at, 0, kSlice);
        warmed += kSlice;
      }
    }
    while (wi < writes.size()) {
      if (stop.load() || all_dead()) return {};
      FERRY_TRY_VOID(handle_events());
      reads.clear();
      pieces.clear();
      size_t used = 0;
      while (wi < writes.size() && used < kLazyBatch && pieces.size() < kMaxPieces) {
        const LazyWrite& w = writes[wi];
        const uint64_t left = w.len - w_off, space = kLazyBatch - used;
        uint64_t take = std::min(left, space);
        bool ends = false;
        const uint64_t off = w.pos.offset + w_off, chunk = w.pos.chunk;
        if (chunk > 0 && chunk <= kLazyBatch) {
          uint64_t boundary = (off + take) / chunk * chunk;
          if (boundary > off && space - (boundary - off) < chunk) {
            take = boundary - off;
            ends = true;
          } else if (take < left && used > 0) {
            break;
          }
        }
        reads.push_back({w.image + w_off, std::span<std::byte>(batch.data() + used, static_cast<size_t>(take))});
        pieces.push_back({w.image + w_off, take, used});
        used += static_cast<size_t>(take);
        w_off += take;
        if (w_off == w.len) {
          ++wi;
          w_off = 0;
        }
        if (ends) break;
      }
      if (auto r = src->read_pages_v(reads); !r) return fail(r.error().wrap("read pages from " + hex(reads.front().addr)));
      for (const auto& p : pieces) FERRY_TRY_VOID(place(p.image, batch.data() + p.at, p.len));
    }
    FERRY_TRY_VOID(handle_events());
    if (!all_dead() && !stop.load())
      if (auto r = src->verify_unread(); !r) return fail(r.error().wrap("check image checksums"));
    return {};
  }

  void kill_job() {
    if (kill_pidfd) ::syscall(SYS_pidfd_send_signal, kill_pidfd.get(), SIGKILL, nullptr, 0);
  }

  void end_guard() {
    if (guard <= 0) return;
    char done = 1;
    if (guard_wr) (void)!::write(guard_wr.get(), &done, 1);
    guard_wr.reset();
    int st = 0;
    while (::waitpid(guard, &st, 0) < 0 && errno == EINTR) {
    }
    guard = -1;
    if (guard_stack) ::munmap(guard_stack, kGuardStack);
    guard_stack = nullptr;
  }
};

Result<void> LazyPages::open(ChildBuilder& b, image::ImageSource& src, const AddressPlan& plan,
                             const std::vector<size_t>& huge, uint64_t page) {
  const auto& img = src.image();
  auto remote = b.call("userfaultfd in the child (lazy restore)", SYS_userfaultfd, {O_CLOEXEC | O_NONBLOCK});
  if (!remote) return fail(remote.error());
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, b.pid(), 0)));
  UniqueFd fd;
  if (pidfd) fd = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), static_cast<int>(*remote), 0)));
  (void)b.close(static_cast<int>(*remote));
  if (!fd) return fail_errno("take over the child's userfaultfd");
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |
                 UFFD_FEATURE_EVENT_UNMAP;
  if (::ioctl(fd.get(), UFFDIO_API, &api) != 0) return fail_errno("userfaultfd API with fork/remap/remove/unmap events");
  if (!st_) st_ = std::make_unique<LazyState>();
  auto& st = st_;
  st->src = &src;
  st->page = page;
  LazyTarget t;
  const uint64_t need = (uint64_t{1} << _UFFDIO_COPY) | (uint64_t{1} << _UFFDIO_ZEROPAGE) | (uint64_t{1} << _UFFDIO_WAKE);
  for (size_t i = 0; i < img.regions.size(); ++i) {
    const auto& r = img.regions[i];
    if (r.kind != RegionKind::anon_private && r.kind != RegionKind::heap && r.kind != RegionKind::stack) continue;
    if (plan.build_addr[i] == 0 || plan.staged[i] || plan.build_addr[i] != r.start) continue;
    if (std::find(huge.begin(), huge.end(), i) != huge.end()) continue;
    uffdio_register reg{};
    reg.range = {r.start, r.end - r.start};
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (::ioctl(fd.get(), UFFDIO_REGISTER, &reg) != 0) continue;  // filled eagerly
    if ((reg.ioctls & need) != need) {
      uffdio_range u{r.start, r.end - r.start};
      (void)::ioctl(fd.get(), UFFDIO_UNREGISTER, &u);
      continue;
    }
    t.segs.push_back({r.start, r.end - r.start, r.start});
  }
  if (t.segs.empty()) return fail(errc::unsupported, "no private anonymous region can be filled lazily");
  std::sort(t.segs.begin(), t.segs.end(), [](const LazySeg& a, const LazySeg& c) { return a.child < c.child; });
  for (const auto& th : img.threads) {
    const user_regs_struct r = arch::from_array(th.regs);
    for (uint64_t a : {r.rsp, r.rsp - page, r.fs_base})
      for (const auto& g : t.segs)
        if (a >= g.child && a < g.child + g.len) st->hot.push_back(a & ~(page - 1));
  }
  t.fd = std::move(fd);
  st->targets.push_back(std::move(t));
  opened_ = true;
  return {};
}

bool LazyPages::covers(uint64_t child_addr) const {
  for (const auto& g : st_->targets.front().segs)
    if (child_addr >= g.child && child_addr < g.child + g.len) return true;
  return false;
}

void LazyPages::add(const LazyWrite& w) { st_->writes.push_back(w); }

LazyPages::LazyPages() = default;

LazyPages::~LazyPages() {
  if (!st_) return;
  if (st_->server.joinable()) {
    if (active()) st_->kill_job();  // pages still missing: the program must not run on
    st_->stop = true;
    st_->server.join();
  }
  st_->end_guard();
}

Result<void> LazyPages::kill_on_failure(pid_t pid) {
  if (!st_) st_ = std::make_unique<LazyState>();
  st_->kill_pidfd = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!st_->kill_pidfd) return fail_errno("pidfd_open " + std::to_string(pid));
  return {};
}

void LazyPages::set_report(std::function<void(const std::string&)> report) {
  if (!st_) st_ = std::make_unique<LazyState>();
  st_->report = std::move(report);
}

bool LazyPages::lazy() const noexcept { return opened_; }
const std::string& LazyPages::why_not() const noexcept { return why_not_; }

bool LazyPages::active() const {
  std::lock_guard lk(mu_);
  return running_;
}

Result<void> LazyPages::wait() {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return !running_; });
  if (failure_) return fail(*failure_);
  return {};
}

std::optional<Error> LazyPages::failure() const {
  std::lock_guard lk(mu_);
  return failure_;
}

Result<void> LazyPages::start() {
  auto& s = *st_;
  s.by_image.resize(s.writes.size());
  for (size_t i = 0; i < s.writes.size(); ++i) s.by_image[i] = i;
  std::sort(s.by_image.begin(), s.by_image.end(),
            [&](size_t a, size_t c) { return s.writes[a].image < s.writes[c].image; });
  s.batch = HugeBuffer(kLazyBatch);
  s.fault_buf = HugeBuffer(kFaultBuffer);
  if (s.batch.empty() || s.fault_buf.empty()) return fail_errno("allocate lazy restore buffers", ENOMEM);
  if (s.kill_pidfd) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return fail_errno("create lazy restore guard pipe");
    UniqueFd rd(p[0]), wr(p[1]);
    void* stack = ::mmap(nullptr, kGuardStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return fail_errno("allocate the lazy restore guard's stack");
    // The three fds, packed into the argument: nothing of the parent's memory is read later.
    const uint64_t arg = static_cast<uint64_t>(p[0]) | static_cast<uint64_t>(p[1]) << 20 |
                         static_cast<uint64_t>(s.kill_pidfd.get()) << 40;
    pid_t g = ::clone(guard_main, static_cast<char*>(stack) + kGuardStack, CLONE_VM | SIGCHLD,
                      reinterpret_cast<void*>(arg));
    if (g < 0) {
      int e = errno;
      ::munmap(stack, kGuardStack);
      return fail_errno("start lazy restore guard", e);
    }
    s.guard = g;
    s.guard_stack = stack;
    s.guard_wr = std::move(wr);
  }
  {
    std::lock_guard lk(mu_);
    running_ = true;
  }
  // The restoring thread has read its last page: the server takes over its read buffers (warm,
  // and holding the chunk of the eager pages just read, which the first faults often need).
  s.server = std::thread([this, buffers = s.src->take_thread_read_buffers()]() mutable {
    st_->src->adopt_thread_read_buffers(std::move(buffers));
    serve();
  });
  return {};
}

void LazyPages::program_resumed() {
  if (!st_) return;
  std::lock_guard lk(mu_);  // the server reads these once it sees resumed_set
  st_->resumed = Clock::now();
  st_->resumed_set = true;
}

void LazyPages::serve() {
  auto& s = *st_;
  Result<void> r = s.stream();
  if (!r) s.kill_job();  // before the userfaultfds close: no zero page may reach the program
  bool program_gone = s.all_dead();
  for (auto& t : s.targets) t.fd.reset();  // lazy mode ends: unregistered
  s.end_guard();
  double after;
  {
    std::lock_guard lk(mu_);
    after = s.resumed_set ? seconds_since(s.resumed) : 0;
  }
  if (s.report) {
    char line[512];
    if (!r)
      std::snprintf(line, sizeof line, "lazy restore failed %.3f s after the program resumed, program killed: %s",
                    after, r.error().message().c_str());
    else
      std::snprintf(line, sizeof line,
                    "lazy restore: %.1f MiB placed%s %.3f s after the program resumed (%llu faults served with "
                    "%.1f MiB, %llu zero pages, %llu forks followed)",
                    static_cast<double>(s.bytes) / (1 << 20), program_gone ? " until the program ended," : ",",
                    after, static_cast<unsigned long long>(s.faults_served),
                    static_cast<double>(s.fault_bytes) / (1 << 20), static_cast<unsigned long long>(s.zero_pages),
                    static_cast<unsigned long long>(s.forks));
    s.report(line);
  }
  {
    std::lock_guard lk(mu_);
    if (!r) failure_ = r.error();
    running_ = false;
  }
  cv_.notify_all();
}

}  // namespace ferry::restore
