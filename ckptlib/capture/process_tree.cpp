// SPDX-License-Identifier: Apache-2.0
// freeze_tree: freeze a whole process tree, then check the fds shared between its processes.
//
// Algorithm:
//   1. freeze the root; then, breadth first, for each frozen process list its children
//      (/proc/PID/task/*/children) and freeze each one. A frozen process creates no new
//      child, so once its list is read it is final. A child that has exited (or exits while
//      being frozen) is a zombie its stopped parent cannot reap: it is not a member, capture()
//      records it in its parent's image. Nothing is captured before the whole tree is
//      stopped, so the images are of one instant.
//      A child sharing its parent's address space (vfork, posix_spawn, CLONE_VM) or fd table
//      (CLONE_FILES), per kcmp(KCMP_VM / KCMP_FILES), is refused.
//   2. ids (NSpid, NSpgid, NSsid, parent) of every process, from /proc/PID/status.
//   3. the fds of the whole tree (plan_tree_fds, tree_fds.hpp): descriptions shared with the
//      parent become TreeMember::shared_fds (the manifest's pairs); pipes between processes,
//      their buffered bytes, and descriptions shared otherwise go to each FrozenProcess's
//      TreeFdPlan, which capture() writes into the image.
#include "process_tree.hpp"

#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "proc/fds.hpp"
#include "proc/task.hpp"
#include "tree_fds.hpp"
#include "zombies.hpp"

namespace ferry::capture {

namespace {

constexpr size_t kMaxTreeSize = 1024;

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
      if (is_unreaped_zombie(c)) continue;  // recorded by capture() of its parent
      auto f = FrozenProcess::freeze(c);
      if (!f && is_unreaped_zombie(c)) continue;  // exited meanwhile
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
  std::vector<TreeFdMember> fd_members;
  for (auto& m : tree) fd_members.push_back({m.frozen.pid(), m.ids.pid, m.parent});
  FERRY_TRY(plans, plan_tree_fds(fd_members));
  for (size_t i = 0; i < tree.size(); ++i) {
    tree[i].shared_fds = plans[i].parent_fds;
    tree[i].frozen.set_tree_fds(std::make_shared<const TreeFdPlan>(std::move(plans[i])));
  }
  return tree;
}

}  // namespace ferry::capture
