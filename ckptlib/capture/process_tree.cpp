// SPDX-License-Identifier: Apache-2.0
// freeze_tree: freeze a whole process tree, then check the fds shared between its processes.
//
// Algorithm:
//   1. freeze the root; then, breadth first, for each frozen process list its children
//      (/proc/PID/task/*/children) and freeze each one. A frozen process creates no new
//      child, so once its list is read it is final; a child that exits meanwhile leaves a
//      zombie (its parent is stopped and cannot reap it), which is refused. Nothing is
//      captured before the whole tree is stopped, so the images are of one instant.
//      A child sharing its parent's address space (vfork, posix_spawn, CLONE_VM) or fd table
//      (CLONE_FILES), per kcmp(KCMP_VM / KCMP_FILES), is refused.
//   2. ids (NSpid, NSpgid, NSsid, parent) of every process, from /proc/PID/status.
//   3. shared fds, with kcmp(KCMP_FILE) against the fds of the other processes:
//      - a pipe/socket/tty at fd 0-2 must be the root's fd of the same number (what the
//        whole tree inherited from the launch; a restore hands it down the same way);
//      - a path (regular file, directory, device) shared with the parent is recorded as
//        {fd, parent_fd}; shared with any other process it is refused;
//      - an anon inode (eventfd, epoll, ...) shared with any other process is refused.
#include "process_tree.hpp"

#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "proc/fds.hpp"
#include "proc/task.hpp"

namespace ferry::capture {

namespace {

constexpr size_t kMaxTreeSize = 1024;

bool same_file(pid_t a, int fa, pid_t b, int fb) {
  return ::syscall(SYS_kcmp, a, b, KCMP_FILE, fa, fb) == 0;
}

bool starts_with(const std::string& s, std::string_view p) { return s.rfind(p, 0) == 0; }

bool is_stream_kind(const std::string& target) {
  return starts_with(target, "pipe:") || starts_with(target, "socket:") || starts_with(target, "/dev/pts/") ||
         starts_with(target, "/dev/tty") || target == "/dev/console";
}

std::string who(pid_t pid, int fd) { return "fd " + std::to_string(fd) + " of process " + std::to_string(pid); }

Result<void> check_fds(std::vector<TreeMember>& tree) {
  std::vector<std::vector<proc::FdLink>> fds;
  for (auto& m : tree) {
    FERRY_TRY(l, proc::list_fds(m.frozen.pid()));
    fds.push_back(std::move(l));
  }
  const pid_t root = tree.front().frozen.pid();
  for (size_t i = 1; i < tree.size(); ++i) {
    const pid_t pid = tree[i].frozen.pid();
    const size_t par = static_cast<size_t>(tree[i].parent);
    for (const auto& f : fds[i]) {
      if (is_stream_kind(f.target)) {
        if (f.fd > 2) continue;  // plan_fds refuses these with its own message
        bool from_root = false;
        for (const auto& r : fds[0])
          if (r.fd == f.fd && same_file(pid, f.fd, root, r.fd)) from_root = true;
        if (!from_root)
          return fail(errc::unsupported, "checkpoint " + who(pid, f.fd) + ": " + f.target +
                                             " is not the job's own fd " + std::to_string(f.fd) +
                                             "; pipes and sockets between processes are not supported yet");
        continue;
      }
      bool anon = !starts_with(f.target, "/");
      bool with_parent = false;
      if (!anon) {
        for (const auto& p : fds[par]) {
          if (same_file(pid, f.fd, tree[par].frozen.pid(), p.fd)) {
            tree[i].shared_fds.emplace_back(f.fd, p.fd);
            with_parent = true;
            break;
          }
        }
        if (with_parent) continue;
      }
      for (size_t j = 0; j < tree.size(); ++j) {
        if (j == i) continue;
        for (const auto& o : fds[j]) {
          if (is_stream_kind(o.target) || !same_file(pid, f.fd, tree[j].frozen.pid(), o.fd)) continue;
          return fail(errc::unsupported, "checkpoint " + who(pid, f.fd) + " (" + f.target +
                                             "): it is the same open file as " + who(tree[j].frozen.pid(), o.fd) +
                                             "; sharing it " + (anon ? "between processes" : "other than with the parent") +
                                             " is not supported yet");
        }
      }
    }
  }
  return {};
}

}  // namespace

Result<std::vector<TreeMember>> freeze_tree(pid_t root) {
  std::vector<TreeMember> tree;
  tree.reserve(16);
  {
    FERRY_TRY(f, FrozenProcess::freeze(root));
    tree.push_back(TreeMember{std::move(f), {}, -1, {}});
  }
  for (size_t i = 0; i < tree.size(); ++i) {
    const pid_t pid = tree[i].frozen.pid();
    FERRY_TRY(children, proc::read_children(pid));
    std::sort(children.begin(), children.end());
    for (pid_t c : children) {
      if (tree.size() >= kMaxTreeSize)
        return fail(errc::unsupported, "checkpoint process " + std::to_string(root) + ": more than " +
                                           std::to_string(kMaxTreeSize) + " processes");
      auto st = proc::read_stat(c);
      if (!st) return fail(st.error().wrap("checkpoint child " + std::to_string(c) + " of process " + std::to_string(pid)));
      if (st->state == 'Z' || st->state == 'X')
        return fail(errc::unsupported, "checkpoint child process " + std::to_string(c) + " of process " +
                                           std::to_string(pid) + ": it has exited and is not reaped yet; "
                                           "exit statuses still to be reaped are not supported yet");
      auto f = FrozenProcess::freeze(c);
      if (!f) return fail(f.error().wrap("checkpoint child of process " + std::to_string(pid)));
      // vfork (posix_spawn) or clone(CLONE_VM/CLONE_FILES) children share kernel objects with
      // their parent that separate processes cannot get back.
      if (::syscall(SYS_kcmp, pid, c, KCMP_VM, 0, 0) == 0)
        return fail(errc::unsupported, "checkpoint child process " + std::to_string(c) + " of process " +
                                           std::to_string(pid) + ": it shares its parent's address space "
                                           "(vfork/posix_spawn or CLONE_VM); not supported");
      if (::syscall(SYS_kcmp, pid, c, KCMP_FILES, 0, 0) == 0)
        return fail(errc::unsupported, "checkpoint child process " + std::to_string(c) + " of process " +
                                           std::to_string(pid) + ": it shares its parent's fd table "
                                           "(CLONE_FILES); not supported");
      tree.push_back(TreeMember{std::move(*f), {}, static_cast<int>(i), {}});
    }
  }
  for (auto& m : tree) {
    auto ids = tree_ids(m.frozen.pid());
    if (!ids) return fail(ids.error().wrap("checkpoint process " + std::to_string(m.frozen.pid())));
    m.ids = *ids;
  }
  FERRY_TRY_VOID(check_fds(tree));
  return tree;
}

}  // namespace ferry::capture
