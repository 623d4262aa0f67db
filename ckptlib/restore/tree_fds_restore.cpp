// SPDX-License-Identifier: Apache-2.0
// Pipes, shared open file descriptions and zombies of a restored process tree (algorithms in
// tree_fds_restore.hpp). Remote calls through each process's ChildBuilder; the buffered pipe
// bytes are written from here, in bounded batches, through /proc/PID/fd/N.
#include "restore/tree_fds_restore.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "ferry/common/unique_fd.hpp"

namespace ferry::restore::detail {

namespace {

std::string proc_name(const TreeSlot& s) { return "process " + std::to_string(s.image_pid); }

// Status flags F_SETFL can give a pipe's open file description back.
constexpr uint32_t kPipeSettableFlags = O_NONBLOCK | O_APPEND | O_NOATIME;

int max_fd_of(const image::ProcessImage& img) {
  int m = 2;
  for (const auto& f : img.fds) m = std::max(m, f.fd);
  for (const auto& e : img.pipe_ends) m = std::max(m, e.fd);
  for (const auto& e : img.event_fds) m = std::max(m, e.fd);
  return m;
}

// dup3(from, to) keeping `cloexec`; `from` stays open. from == to only fixes FD_CLOEXEC.
Result<void> place(ChildBuilder& b, int from, int to, bool cloexec, const std::string& what) {
  if (from == to) {
    FERRY_TRY_VOID(b.call("set close-on-exec of " + what, SYS_fcntl,
                          {static_cast<uint64_t>(to), F_SETFD, cloexec ? uint64_t{FD_CLOEXEC} : 0}));
    return {};
  }
  FERRY_TRY_VOID(b.call("dup3 " + what, SYS_dup3,
                        {static_cast<uint64_t>(from), static_cast<uint64_t>(to), cloexec ? uint64_t{O_CLOEXEC} : 0}));
  return {};
}

// fd `from_fd` of process `from` copied into `into` at `to` (same open file description).
Result<void> pull(ChildBuilder& into, int pidfd, int from_fd, int to, bool cloexec, const std::string& what) {
  FERRY_TRY(got, into.call("pidfd_getfd " + what, SYS_pidfd_getfd, {static_cast<uint64_t>(pidfd),
                                                                      static_cast<uint64_t>(from_fd), 0}));
  const int g = static_cast<int>(got);
  auto r = place(into, g, to, cloexec, what);
  if (g != to) (void)into.close(g);
  return r;
}

// A parked pidfd in `in` for process `of` (cached per pair).
Result<int> pidfd_in(std::map<std::pair<size_t, size_t>, int>& cache, std::vector<TreeSlot>& slots, size_t in,
                     size_t of) {
  if (auto it = cache.find({in, of}); it != cache.end()) return it->second;
  FERRY_TRY(ns, innermost_pid(slots[of].live_pid));
  const std::string what = "pidfd_open of " + proc_name(slots[of]) + " in " + proc_name(slots[in]);
  FERRY_TRY(fd, slots[in].b->call(what, SYS_pidfd_open, {static_cast<uint64_t>(ns), 0}));
  FERRY_TRY(parked, slots[in].b->park(static_cast<int>(fd), what));
  cache[{in, of}] = parked;
  return parked;
}

// Writes the pipe's buffered bytes from its blob into the pipe behind child fd `fd`.
Result<void> refill(image::ImageSource& src, const image::Pipe& p, pid_t live, int fd, const std::string& what) {
  if (p.bytes == 0) return {};
  std::string path = "/proc/" + std::to_string(live) + "/fd/" + std::to_string(fd);
  UniqueFd out(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (!out) return fail_errno("refill " + what + ": open " + path);
  std::vector<std::byte> buf(static_cast<size_t>(std::min<uint64_t>(p.bytes, kCopyBatch)));
  for (uint64_t off = 0; off < p.bytes;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(p.bytes - off, buf.size()));
    std::span<std::byte> chunk(buf.data(), n);
    if (auto r = src.read_blob(static_cast<uint32_t>(p.blob), off, chunk); !r) return fail(r.error().wrap("refill " + what));
    size_t done = 0;
    while (done < n) {
      ssize_t w = ::write(out.get(), chunk.data() + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return fail_errno("refill " + what + " (" + std::to_string(off + done) + " of " +
                                        std::to_string(p.bytes) + " bytes written)", w < 0 ? errno : EIO);
      done += static_cast<size_t>(w);
    }
    off += n;
  }
  return {};
}

}  // namespace

Result<pid_t> innermost_pid(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("NSpid:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    pid_t v = 0, last = 0;
    while (fields >> v) last = v;
    if (last > 0) return last;
  }
  if (!in.is_open()) return fail(errc::process_gone, "read the pid of process " + std::to_string(pid));
  return pid;
}

Result<void> check_tree_fds(const std::vector<TreeSlot>& slots) {
  std::map<uint64_t, size_t> owner;
  for (size_t i = 0; i < slots.size(); ++i) {
    const auto& img = slots[i].src->image();
    for (const auto& p : img.pipes) {
      if (!owner.emplace(p.id, i).second)
        return fail(errc::image_corrupt, "restore " + proc_name(slots[i]) + ": pipe:[" + std::to_string(p.id) +
                                             "] is recorded by two processes of the tree");
      if (!p.fifo_path.empty()) {
        struct stat st {};
        if (::stat(p.fifo_path.c_str(), &st) != 0 || !S_ISFIFO(st.st_mode))
          return fail(errc::file_changed, "restore " + proc_name(slots[i]) + ": the FIFO " + p.fifo_path +
                                              " is gone or no longer a FIFO");
      }
    }
  }
  std::set<pid_t> pids;
  for (const auto& s : slots) pids.insert(s.image_pid);
  for (size_t i = 0; i < slots.size(); ++i) {
    const auto& img = slots[i].src->image();
    for (const auto& e : img.pipe_ends)
      if (!owner.count(e.pipe))
        return fail(errc::image_corrupt, "restore " + proc_name(slots[i]) + ": fd " + std::to_string(e.fd) +
                                             " is on pipe:[" + std::to_string(e.pipe) +
                                             "], which no image of the generation records");
    for (const auto& sf : img.shared_fds) {
      size_t j = 0;
      while (j < slots.size() && slots[j].image_pid != sf.pid) ++j;
      bool ok = j <= i;
      if (ok) {
        ok = false;
        for (const auto& f : slots[j].src->image().fds) ok = ok || f.fd == sf.source_fd;
      }
      if (!ok)
        return fail(errc::image_corrupt, "restore " + proc_name(slots[i]) + ": fd " + std::to_string(sf.fd) +
                                             " shares fd " + std::to_string(sf.source_fd) + " of process " +
                                             std::to_string(sf.pid) + ", which is not restored before it");
    }
    for (const auto& z : img.zombies)
      if (pids.count(z.pid))
        return fail(errc::image_corrupt, "restore " + proc_name(slots[i]) + ": zombie child " + std::to_string(z.pid) +
                                             " is also a live process of the tree");
  }
  return {};
}

Result<void> restore_pipes(std::vector<TreeSlot>& slots, const RestoreOptions& opt) {
  bool any = false;
  for (const auto& s : slots) any = any || !s.src->image().pipes.empty();
  if (!any) return {};
  for (auto& s : slots) s.b->set_temp_base(max_fd_of(s.src->image()) + 1);
  std::map<std::pair<size_t, size_t>, int> pidfds;
  size_t count = 0;
  auto body = [&]() -> Result<void> {
    for (size_t k = 0; k < slots.size(); ++k) {
      ChildBuilder& b = *slots[k].b;
      for (const auto& p : slots[k].src->image().pipes) {
        const std::string what = "pipe:[" + std::to_string(p.id) + "] in " + proc_name(slots[k]);
        int holder = -1, holder_w = -1;
        if (p.fifo_path.empty()) {
          FERRY_TRY(at, b.put(std::span<const std::byte>{}, 0));
          FERRY_TRY_VOID(b.call("pipe2 for " + what, SYS_pipe2, {at, O_CLOEXEC}));
          int fds[2];
          FERRY_TRY_VOID(b.tracee().read_memory(at, std::as_writable_bytes(std::span(fds))));
          FERRY_TRY(r, b.park(fds[0], what));
          FERRY_TRY(w, b.park(fds[1], what));
          holder = r;
          holder_w = w;
        } else {
          FERRY_TRY(fd, b.open(p.fifo_path, O_RDWR | O_NONBLOCK));
          FERRY_TRY(h, b.park(fd, what));
          holder = holder_w = h;
        }
        FERRY_TRY(size, b.call("F_SETPIPE_SZ " + std::to_string(p.capacity) + " for " + what, SYS_fcntl,
                               {static_cast<uint64_t>(holder), F_SETPIPE_SZ, p.capacity}));
        if (size < p.capacity)
          return fail(errc::restore_failed, "restore " + what + ": capacity " + std::to_string(size) + " < " +
                                                std::to_string(p.capacity));
        FERRY_TRY_VOID(refill(*slots[k].src, p, slots[k].live_pid, holder_w, what));
        // One open file description per recorded description, then every fd on it.
        std::map<uint32_t, int> descs;
        for (size_t m = 0; m < slots.size(); ++m) {
          for (const auto& e : slots[m].src->image().pipe_ends) {
            if (e.pipe != p.id) continue;
            const std::string end = "fd " + std::to_string(e.fd) + " of " + proc_name(slots[m]) + " on " + what;
            auto it = descs.find(e.desc);
            if (it == descs.end()) {
              FERRY_TRY(fd, b.open("/proc/self/fd/" + std::to_string(holder), static_cast<int>(e.flags & O_ACCMODE) | O_NONBLOCK));
              FERRY_TRY(d, b.park(fd, end));
              FERRY_TRY_VOID(b.call("F_SETFL for " + end, SYS_fcntl,
                                    {static_cast<uint64_t>(d), F_SETFL, e.flags & kPipeSettableFlags}));
              it = descs.emplace(e.desc, d).first;
            }
            if (m == k) {
              FERRY_TRY_VOID(place(b, it->second, e.fd, e.cloexec, end));
            } else {
              FERRY_TRY(pidfd, pidfd_in(pidfds, slots, m, k));
              FERRY_TRY_VOID(pull(*slots[m].b, pidfd, it->second, e.fd, e.cloexec, end));
            }
          }
        }
        ++count;
      }
    }
    return {};
  }();
  for (auto& s : slots) {
    auto c = s.b->close_temps();
    if (body && !c) return fail(c.error().wrap("close temporary fds"));
  }
  if (!body) return body;
  if (opt.log) opt.log("restore: recreated " + std::to_string(count) + " pipes between processes");
  return {};
}

Result<void> take_tree_shared_fds(std::vector<TreeSlot>& slots, size_t i) {
  const auto& img = slots[i].src->image();
  if (img.shared_fds.empty()) return {};
  ChildBuilder& b = *slots[i].b;
  std::map<std::pair<size_t, size_t>, int> pidfds;
  auto body = [&]() -> Result<void> {
    for (const auto& sf : img.shared_fds) {
      size_t j = 0;
      while (j < slots.size() && slots[j].image_pid != sf.pid) ++j;
      bool cloexec = false;
      for (const auto& f : img.fds)
        if (f.fd == sf.fd) cloexec = f.cloexec;
      const std::string what = "fd " + std::to_string(sf.fd) + " of " + proc_name(slots[i]) + " (fd " +
                               std::to_string(sf.source_fd) + " of process " + std::to_string(sf.pid) + ")";
      if (j == i) {
        FERRY_TRY_VOID(place(b, sf.source_fd, sf.fd, cloexec, what));
        continue;
      }
      FERRY_TRY(pidfd, pidfd_in(pidfds, slots, i, j));
      FERRY_TRY_VOID(pull(b, pidfd, sf.source_fd, sf.fd, cloexec, what));
    }
    return {};
  }();
  auto c = b.close_temps();
  if (!body) return body;
  if (!c) return fail(c.error().wrap("close temporary fds"));
  return {};
}

Result<void> default_sigchld(ChildBuilder& parent) {
  uint64_t act[4] = {0, 0, 0, 0};  // struct kernel_sigaction: SIG_DFL, no flags
  FERRY_TRY(at, parent.put(std::as_bytes(std::span(act))));
  FERRY_TRY_VOID(parent.call("SIGCHLD to SIG_DFL", SYS_rt_sigaction, {SIGCHLD, at, 0, 8}));
  return {};
}

Result<void> drop_sigchld(ChildBuilder& parent) {
  uint64_t set = uint64_t{1} << (SIGCHLD - 1);
  struct timespec zero {};
  FERRY_TRY(set_at, parent.put(std::as_bytes(std::span(&set, 1)), 0));
  FERRY_TRY(ts_at, parent.put(std::as_bytes(std::span(&zero, 1)), 64));
  auto r = parent.call("take the SIGCHLD of a recreated zombie", SYS_rt_sigtimedwait, {set_at, 0, ts_at, 8});
  if (!r && r.error().code() != std::error_code(EAGAIN, std::system_category())) return fail(r.error());
  return {};
}

Result<void> exit_as_zombie(ptrace::Tracee& t, ChildBuilder& b, const image::Zombie& z) {
  const std::string who = "zombie child " + std::to_string(z.pid);
  const pid_t live = b.pid();
  FERRY_TRY(regs, t.get_regs());
  regs.rip = b.gadget();
  regs.orig_rax = ~0ull;
  if (WIFSIGNALED(z.status)) {
    const int sig = WTERMSIG(z.status);
    // No core file (the wait status then lacks WCOREDUMP), the default action, unblocked.
    struct rlimit none {0, 0};
    if (::prlimit(live, RLIMIT_CORE, &none, nullptr) != 0) return fail_errno("no core dump for " + who);
    uint64_t act[4] = {0, 0, 0, 0};
    FERRY_TRY(at, b.put(std::as_bytes(std::span(act))));
    FERRY_TRY_VOID(b.call("default action of signal " + std::to_string(sig) + " in " + who, SYS_rt_sigaction,
                          {static_cast<uint64_t>(sig), at, 0, 8}));
    FERRY_TRY(self, b.call("getpid in " + who, SYS_getpid));
    FERRY_TRY_VOID(t.set_sigmask(~(uint64_t{1} << (sig - 1))));
    regs.rax = SYS_kill;
    regs.rdi = self;
    regs.rsi = static_cast<uint64_t>(sig);
  } else {
    regs.rax = SYS_exit_group;
    regs.rdi = static_cast<uint64_t>(WEXITSTATUS(z.status));
  }
  FERRY_TRY_VOID(t.set_regs(regs));
  FERRY_TRY_VOID(t.detach());
  // It is our child's child: wait for it to show as a zombie (bounded; it only runs one call).
  for (int i = 0; i < 1000; ++i) {
    std::ifstream in("/proc/" + std::to_string(live) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t at = text.rfind(')');
    if (at != std::string::npos && at + 2 < text.size() && text[at + 2] == 'Z') return {};
    ::usleep(5000);
  }
  return fail(errc::restore_failed, "recreate " + who + ": it did not exit");
}

}  // namespace ferry::restore::detail
