// SPDX-License-Identifier: Apache-2.0
// A job's process tree frozen as a whole: every process of it stopped before any is captured,
// with its ids in the job's PID namespace and the fds it shares with its parent after fork.
#pragma once

#include <sys/types.h>

#include <utility>
#include <vector>

#include "capture.hpp"
#include "ferry/common/result.hpp"
#include "ns_ids.hpp"

namespace ferry::capture {

struct TreeMember {
  FrozenProcess frozen;
  TreeIds ids;      // pid/ppid/pgid/sid in the job's PID namespace
  int parent = -1;  // index of the parent in the tree (-1: the root)
  // {fd, parent_fd}: the same open file description as the parent's parent_fd (one offset).
  // Other sharing and pipes: frozen.tree_fds().
  std::vector<std::pair<int32_t, int32_t>> shared_fds;
};

// Freezes `root` and all its descendants (parents before children, children by pid; exited
// children not yet reaped are left to capture() of their parent) and checks what a restore
// could not rebuild: a child sharing its parent's address space (vfork) or fd table, a
// socket/tty at fd 0-2 that is not the root's own, a pipe or FIFO also open outside the tree,
// or an event fd shared between processes (plan_tree_fds). Each member's FrozenProcess gets
// its TreeFdPlan. Refusals are errc::unsupported naming the pid and fd; everything frozen is
// resumed on any failure.
Result<std::vector<TreeMember>> freeze_tree(pid_t root);

}  // namespace ferry::capture
