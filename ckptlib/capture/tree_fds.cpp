// SPDX-License-Identifier: Apache-2.0
// plan_tree_fds: shared open file descriptions and pipes of a frozen process tree (the
// algorithm is in tree_fds.hpp). Reads /proc and the pipes' buffers; changes nothing.
#include "tree_fds.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "ferry/common/unique_fd.hpp"
#include "proc/fds.hpp"

namespace ferry::capture {

namespace {

bool starts_with(const std::string& s, std::string_view p) { return s.rfind(p, 0) == 0; }

bool same_file(pid_t a, int fa, pid_t b, int fb) {
  if (a == b && fa == fb) return true;
  return ::syscall(SYS_kcmp, a, b, KCMP_FILE, fa, fb) == 0;
}

std::string who(pid_t pid, int fd) { return "fd " + std::to_string(fd) + " of process " + std::to_string(pid); }

struct FdInfoRow {
  size_t member = 0;
  int fd = -1;
  std::string target;
  bool stat_ok = false;
  struct stat st {};
  uint32_t flags = 0;
};

bool is_pipe_like(const FdInfoRow& r) {
  if (starts_with(r.target, "pipe:")) return true;
  return r.stat_ok && S_ISFIFO(r.st.st_mode) && starts_with(r.target, "/");
}

bool is_stream_kind(const std::string& target) {
  return starts_with(target, "socket:") || starts_with(target, "/dev/pts/") ||
         starts_with(target, "/dev/tty") || target == "/dev/console";
}

// Processes outside the tree that hold the pipe (anonymous: by "pipe:[ino]"; FIFO: by path).
Result<void> check_no_outside_holder(const std::set<pid_t>& tree, const std::string& target,
                                     pid_t example_pid, int example_fd) {
  DIR* d = ::opendir("/proc");
  if (!d) return fail_errno("list /proc");
  const pid_t self = ::getpid();
  std::string found;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == self || tree.count(static_cast<pid_t>(pid))) continue;
    auto links = proc::list_fds(static_cast<pid_t>(pid));
    if (!links) continue;  // gone, or not ours to look at
    for (const auto& l : *links)
      if (l.target == target) {
        found = "fd " + std::to_string(l.fd) + " of process " + std::to_string(pid);
        break;
      }
    if (!found.empty()) break;
  }
  ::closedir(d);
  if (!found.empty())
    return fail(errc::unsupported, "checkpoint " + who(example_pid, example_fd) + ": " + target +
                                       " is also open in " + found +
                                       ", outside the job's process tree; pipes to other processes are not supported");
  return {};
}

// The buffered bytes of the pipe behind /proc/PID/fd/FD, without consuming them: tee(2) from
// a new reader of the same pipe into a scratch pipe of the same capacity, then read that.
Result<CapturedPipe> read_pipe(pid_t pid, int fd, uint64_t id, const std::string& fifo_path) {
  const std::string what = "read the buffered bytes of " + who(pid, fd);
  std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  UniqueFd in(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!in) return fail_errno(what + ": open " + path);
  CapturedPipe out;
  out.pipe.id = id;
  out.pipe.fifo_path = fifo_path;
  int cap = ::fcntl(in.get(), F_GETPIPE_SZ);
  if (cap <= 0) return fail_errno(what + ": F_GETPIPE_SZ");
  out.pipe.capacity = static_cast<uint32_t>(cap);
  int avail = 0;
  if (::ioctl(in.get(), FIONREAD, &avail) != 0) return fail_errno(what + ": FIONREAD");
  if (avail <= 0) return out;
  int p[2];
  if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return fail_errno(what + ": scratch pipe");
  UniqueFd rd(p[0]), wr(p[1]);
  if (::fcntl(wr.get(), F_SETPIPE_SZ, cap) < cap) return fail_errno(what + ": size the scratch pipe to " + std::to_string(cap));
  ssize_t n = ::tee(in.get(), wr.get(), static_cast<size_t>(avail), SPLICE_F_NONBLOCK);
  if (n < 0) return fail_errno(what + ": tee");
  if (n != avail)
    return fail(errc::unsupported, what + ": tee copied " + std::to_string(n) + " of " + std::to_string(avail) + " bytes");
  out.data.resize(static_cast<size_t>(n));
  size_t got = 0;
  while (got < out.data.size()) {
    ssize_t r = ::read(rd.get(), out.data.data() + got, out.data.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return fail_errno(what + ": read the scratch pipe", r < 0 ? errno : EIO);
    got += static_cast<size_t>(r);
  }
  out.pipe.bytes = out.data.size();
  return out;
}

Result<void> plan_pipes(const std::vector<TreeFdMember>& members, const std::vector<FdInfoRow>& rows,
                        std::vector<TreeFdPlan>& plans) {
  // Group pipe fds by object, in tree order.
  std::vector<std::pair<dev_t, ino_t>> order;
  std::map<std::pair<dev_t, ino_t>, std::vector<const FdInfoRow*>> groups;
  for (const auto& r : rows) {
    if (!is_pipe_like(r)) continue;
    if (!r.stat_ok)
      return fail(errc::unsupported, "checkpoint " + who(members[r.member].pid, r.fd) + ": cannot stat " + r.target);
    auto key = std::make_pair(r.st.st_dev, r.st.st_ino);
    if (!groups.count(key)) order.push_back(key);
    groups[key].push_back(&r);
  }
  std::set<pid_t> tree;
  for (const auto& m : members) tree.insert(m.pid);
  const pid_t root = members.front().pid;
  for (const auto& key : order) {
    const auto& holders = groups[key];
    const FdInfoRow& first = *holders.front();
    bool readers = false, writers = false;
    const FdInfoRow* root_std = nullptr;
    for (const auto* h : holders) {
      uint32_t acc = h->flags & O_ACCMODE;
      readers = readers || acc != O_WRONLY;
      writers = writers || acc != O_RDONLY;
      if (h->member == 0 && h->fd <= 2 && !root_std) root_std = h;
    }
    if (root_std && !(readers && writers)) {
      // The job's own stdin/stdout/stderr: inherited from the restarting command.
      for (const auto* h : holders) {
        pid_t pid = members[h->member].pid;
        bool ok = h->fd <= 2 && same_file(pid, h->fd, root, h->fd);
        if (!ok)
          return fail(errc::unsupported, "checkpoint " + who(pid, h->fd) + ": " + h->target +
                                             " is the job's own fd " + std::to_string(root_std->fd) +
                                             " (from outside the job); only fds 0-2 inherited from the job's own "
                                             "0-2 can hold it");
      }
      continue;
    }
    const pid_t owner_pid = members[first.member].pid;
    const bool fifo = !starts_with(first.target, "pipe:");
    std::string fifo_path;
    if (fifo) {
      if (first.target.size() > 10 && first.target.compare(first.target.size() - 10, 10, " (deleted)") == 0)
        return fail(errc::unsupported, "checkpoint " + who(owner_pid, first.fd) + ": " + first.target +
                                           " is a FIFO that was deleted; not supported");
      fifo_path = first.target;
    }
    for (const auto* h : holders)
      if (h->flags & O_DIRECT)
        return fail(errc::unsupported, "checkpoint " + who(members[h->member].pid, h->fd) + ": " + h->target +
                                           " is a packet-mode (O_DIRECT) pipe; not supported");
    FERRY_TRY_VOID(check_no_outside_holder(tree, first.target, owner_pid, first.fd));
    // Open file descriptions: kcmp against one representative of each description so far.
    std::vector<const FdInfoRow*> descs;
    const uint64_t id = static_cast<uint64_t>(key.second);
    for (const auto* h : holders) {
      pid_t pid = members[h->member].pid;
      uint32_t d = 0;
      while (d < descs.size() && !same_file(pid, h->fd, members[descs[d]->member].pid, descs[d]->fd)) ++d;
      if (d == descs.size()) descs.push_back(h);
      image::PipeEnd e;
      e.fd = h->fd;
      e.pipe = id;
      e.desc = d;
      e.flags = h->flags & ~static_cast<uint32_t>(O_CLOEXEC);
      e.cloexec = (h->flags & O_CLOEXEC) != 0;
      plans[h->member].pipe_ends.push_back(e);
    }
    auto captured = read_pipe(owner_pid, first.fd, id, fifo_path);
    if (!captured) return fail(captured.error().wrap("checkpoint"));
    plans[first.member].pipes.push_back(std::move(*captured));
  }
  for (auto& p : plans)
    std::sort(p.pipe_ends.begin(), p.pipe_ends.end(), [](const auto& a, const auto& b) { return a.fd < b.fd; });
  return {};
}

Result<void> plan_shared(const std::vector<TreeFdMember>& members, const std::vector<FdInfoRow>& rows,
                         std::vector<TreeFdPlan>& plans) {
  const pid_t root = members.front().pid;
  std::map<std::string, std::vector<const FdInfoRow*>> by_target;  // earlier fds, tree order
  for (const auto& r : rows) {
    if (is_pipe_like(r)) continue;
    const pid_t pid = members[r.member].pid;
    auto& same = by_target[r.target];
    if (is_stream_kind(r.target)) {
      // Sockets and terminals: only the job's own fds 0-2 (plan_fds refuses them above 2).
      if (r.member != 0 && r.fd <= 2 && !same_file(pid, r.fd, root, r.fd))
        return fail(errc::unsupported, "checkpoint " + who(pid, r.fd) + ": " + r.target + " is not the job's own fd " +
                                           std::to_string(r.fd) + "; sockets and terminals between processes are not supported");
      same.push_back(&r);
      continue;
    }
    const bool anon = !starts_with(r.target, "/");
    const int parent = members[r.member].parent;
    const FdInfoRow* source = nullptr;
    const FdInfoRow* parent_source = nullptr;
    for (const auto* o : same) {
      if (anon && o->member == r.member) continue;  // a dup within the process: event_fds.cpp
      if (!same_file(pid, r.fd, members[o->member].pid, o->fd)) continue;
      if (anon)
        return fail(errc::unsupported, "checkpoint " + who(pid, r.fd) + " (" + r.target + "): it is the same open file as " +
                                           who(members[o->member].pid, o->fd) + "; sharing it is not supported yet");
      if (!source) source = o;
      if (parent >= 0 && static_cast<int>(o->member) == parent && !parent_source) parent_source = o;
    }
    same.push_back(&r);
    // The job's own /dev/null or device at 0-2 comes from the restarting command: only the
    // parent's same fd is taken over (as before), never another number.
    const bool std_dev = r.fd <= 2 && r.stat_ok && S_ISCHR(r.st.st_mode);
    if (std_dev && !(parent_source && parent_source->fd == r.fd)) continue;
    if (parent_source) {
      plans[r.member].parent_fds.emplace_back(r.fd, parent_source->fd);
    } else if (source) {
      plans[r.member].shared_fds.push_back({r.fd, members[source->member].ns_pid, source->fd});
    }
  }
  return {};
}

}  // namespace

Result<std::vector<TreeFdPlan>> plan_tree_fds(const std::vector<TreeFdMember>& members) {
  std::vector<FdInfoRow> rows;
  for (size_t i = 0; i < members.size(); ++i) {
    const pid_t pid = members[i].pid;
    FERRY_TRY(links, proc::list_fds(pid));
    for (auto& l : links) {
      FdInfoRow r;
      r.member = i;
      r.fd = l.fd;
      r.target = std::move(l.target);
      std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(r.fd);
      r.stat_ok = ::stat(path.c_str(), &r.st) == 0;
      if (auto info = proc::read_fdinfo(pid, r.fd); info) r.flags = info->flags;
      rows.push_back(std::move(r));
    }
  }
  std::vector<TreeFdPlan> plans(members.size());
  FERRY_TRY_VOID(plan_pipes(members, rows, plans));
  FERRY_TRY_VOID(plan_shared(members, rows, plans));
  return plans;
}

}  // namespace ferry::capture
