// SPDX-License-Identifier: Apache-2.0
// Classification of a process's open file descriptors into image::FdRecord, with refusals.
//
// Algorithm: for every fd in /proc/PID/fd: readlink (the kind for sockets, pipes and anon
// inodes), stat through the link (mode, identity, rdev), fdinfo (flags, pos). Decide:
//   a fd on one of the tree's own pipes or FIFOs (TreeFdPlan::pipe_ends): skipped here, it is
//     a PipeEnd record (tree_fds.cpp decided, and refused what it cannot rebuild)
//   socket / pipe / FIFO / tty:   fd 0-2 -> inherit; above -> refuse
//   anon_inode:[eventfd|timerfd|signalfd|eventpoll]: skipped here, event_fds.cpp records them;
//   other anon inodes (inotify, pidfd, userfaultfd, ...): refuse
//   char device:                  null/zero/random/urandom -> devnull (fd 0-2 /dev/null -> inherit);
//                                 other devices -> refuse
//   directory -> directory; regular: memfd -> memfd + blob, unlinked -> deleted + blob,
//                                    otherwise regular (path, flags, offset, identity)
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "capture_internal.hpp"
#include "event_fds.hpp"
#include "proc/fds.hpp"

namespace ferry::capture::detail {

namespace {

bool starts_with(const std::string& s, std::string_view p) { return s.rfind(p, 0) == 0; }

bool is_tty_rdev(dev_t rdev) {
  unsigned maj = major(rdev);
  return maj == 4 || maj == 5 || (maj >= 136 && maj <= 143);  // tty*, tty/console/ptmx, pts
}

bool is_benign_dev(dev_t rdev) {
  // mem driver minors: 3 null, 5 zero, 8 random, 9 urandom (drivers/char/mem.c)
  if (major(rdev) != 1) return false;
  unsigned m = minor(rdev);
  return m == 3 || m == 5 || m == 8 || m == 9;
}

int64_t mtime_ns(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

std::string strip_deleted(const std::string& s) {
  constexpr std::string_view kDel = " (deleted)";
  if (s.size() > kDel.size() && s.compare(s.size() - kDel.size(), kDel.size(), kDel) == 0)
    return s.substr(0, s.size() - kDel.size());
  return s;
}

}  // namespace

int32_t BlobTable::add(uint64_t dev, uint64_t ino, BlobPlan plan) {
  auto key = std::make_pair(dev, ino);
  if (auto it = index_.find(key); it != index_.end()) return it->second;
  int32_t id = static_cast<int32_t>(blobs_.size());
  blobs_.push_back(std::move(plan));
  index_.emplace(key, id);
  return id;
}

Result<std::vector<image::FdRecord>> plan_fds(pid_t pid, BlobTable& blobs, const TreeFdPlan& tree) {
  const std::string who = "process " + std::to_string(pid);
  FERRY_TRY(links, proc::list_fds(pid));
  std::vector<image::FdRecord> out;
  for (const auto& link : links) {
    const int fd = link.fd;
    bool pipe_end = false;
    for (const auto& e : tree.pipe_ends) pipe_end = pipe_end || e.fd == fd;
    if (pipe_end) continue;
    const std::string fd_path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
    auto refuse = [&](const std::string& kind) {
      return fail(errc::unsupported, "checkpoint " + who + ": fd " + std::to_string(fd) + " is " +
                                         kind + " (" + link.target + "), which is not supported yet");
    };
    if (starts_with(link.target, "anon_inode:")) {
      std::string k = link.target.substr(11);
      if (!k.empty() && k.front() == '[') k = k.substr(1, k.size() - 2);
      if (is_event_fd_kind(k)) continue;  // plan_event_fds()
      return refuse(k == "eventpoll" ? "an epoll instance" : "an anonymous inode of kind " + k);
    }
    if (starts_with(link.target, "socket:")) {
      if (fd <= 2) {
        out.push_back({.fd = fd, .kind = image::FdKind::inherit});
        continue;
      }
      return refuse("a socket");
    }
    struct stat st {};
    if (::stat(fd_path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // closed meanwhile (cannot happen while frozen)
      return fail_errno("stat fd " + std::to_string(fd) + " of " + who);
    }
    auto info = proc::read_fdinfo(pid, fd);
    if (!info) return fail(info.error());

    image::FdRecord rec;
    rec.fd = fd;
    rec.flags = info->flags;
    rec.cloexec = (info->flags & O_CLOEXEC) != 0;
    rec.offset = info->pos;
    rec.mode = st.st_mode;
    rec.file.path = strip_deleted(link.target);
    rec.file.dev = st.st_dev;
    rec.file.ino = st.st_ino;
    rec.file.size = static_cast<uint64_t>(st.st_size);
    rec.file.mtime_ns = mtime_ns(st);

    if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
      if (fd <= 2) {
        rec.kind = image::FdKind::inherit;
        out.push_back(rec);
        continue;
      }
      return refuse(S_ISFIFO(st.st_mode) ? "a pipe or FIFO" : "a socket");
    }
    if (S_ISCHR(st.st_mode)) {
      bool devnull = major(st.st_rdev) == 1 && minor(st.st_rdev) == 3;
      if (fd <= 2 && (devnull || is_tty_rdev(st.st_rdev))) {
        rec.kind = image::FdKind::inherit;
      } else if (is_tty_rdev(st.st_rdev)) {
        return refuse("a terminal");
      } else if (is_benign_dev(st.st_rdev)) {
        rec.kind = image::FdKind::devnull;
      } else {
        return refuse("a device");
      }
      out.push_back(rec);
      continue;
    }
    if (S_ISBLK(st.st_mode)) return refuse("a block device");
    if (S_ISDIR(st.st_mode)) {
      rec.kind = image::FdKind::directory;
      out.push_back(rec);
      continue;
    }
    if (!S_ISREG(st.st_mode)) return refuse("an unknown kind of file");
    if (starts_with(link.target, "/memfd:")) {
      rec.kind = image::FdKind::memfd;
      rec.blob = blobs.add(st.st_dev, st.st_ino,
                           {fd_path, rec.file.size, rec.file.path.substr(1)});  // "memfd:NAME"
    } else if (st.st_nlink == 0) {
      rec.kind = image::FdKind::deleted;
      rec.blob = blobs.add(st.st_dev, st.st_ino, {fd_path, rec.file.size, "fd " + std::to_string(fd)});
    } else {
      rec.kind = image::FdKind::regular;
    }
    out.push_back(rec);
  }
  return out;
}

Result<std::vector<image::Pipe>> stream_pipes(const TreeFdPlan& tree, image::ImageSink& sink) {
  std::vector<image::Pipe> out;
  for (const auto& p : tree.pipes) {
    image::Pipe rec = p.pipe;
    if (!p.data.empty()) {
      FERRY_TRY(id, sink.begin_blob(p.data.size(), "pipe:[" + std::to_string(rec.id) + "]"));
      FERRY_TRY_VOID(sink.append_blob_data(id, p.data));
      rec.blob = static_cast<int32_t>(id);
    }
    out.push_back(std::move(rec));
  }
  return out;
}

}  // namespace ferry::capture::detail
