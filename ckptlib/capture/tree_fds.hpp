// SPDX-License-Identifier: Apache-2.0
// The fds of a frozen process tree seen as a whole: which open file descriptions its processes
// share (with the parent, with another process, within one process) and which pipes and FIFOs
// run between them, with the bytes buffered in each. freeze_tree computes it once for the
// tree and hands each FrozenProcess its TreeFdPlan; capture() writes that into the image.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/model.hpp"

namespace ferry::capture {

// A pipe whose record this process's image holds, with its buffered bytes (read without
// consuming them while the whole tree is frozen).
struct CapturedPipe {
  image::Pipe pipe;             // blob is set by capture() when the bytes are streamed
  std::vector<std::byte> data;  // pipe.bytes bytes, in order
};

// What the analysis decided for one process of the tree.
struct TreeFdPlan {
  std::vector<image::PipeEnd> pipe_ends;               // sorted by fd
  std::vector<CapturedPipe> pipes;                     // pipes this image holds
  std::vector<image::SharedFd> shared_fds;             // sorted by fd; not those with the parent
  std::vector<std::pair<int32_t, int32_t>> parent_fds; // {fd, parent_fd}: the parent's description
};

struct TreeFdMember {
  pid_t pid = 0;     // in our namespace
  pid_t ns_pid = 0;  // in the job's namespace (what images record)
  int parent = -1;   // index of the parent (-1: the root)
};

// Algorithm:
//   1. every fd of every member: readlink, stat through /proc/PID/fd/N, fdinfo flags.
//   2. pipes and FIFOs, grouped by (dev, ino). One held by the root at fd 0-2 whose read and
//      write ends are not both in the tree is the job's own stdin/stdout ("external"): every
//      holder must have it at the same fd 0-2 as the root's same description (inherited at
//      restart), anywhere else is refused. Every other pipe is the tree's own ("internal"):
//      no process outside the tree may hold it (scan of /proc/*/fd, refused otherwise); its
//      holders' fds are grouped into open file descriptions by kcmp(KCMP_FILE); the first
//      holder (tree order) keeps its record; its bytes are read with tee(2) from a fd the
//      checkpointer opens on it (/proc/PID/fd/N) into a scratch pipe of the same capacity,
//      so the pipe keeps them. Packet-mode (O_DIRECT) pipes and deleted FIFOs are refused.
//   3. every other fd, compared (kcmp) only with fds of the same target: a socket or tty
//      below 3 must be the root's fd of the same number; an anon inode (eventfd, epoll, ...)
//      shared with any other fd is refused; a path shared with the parent becomes a
//      parent_fds pair, else with the earliest fd of the tree holding it (another process or
//      an earlier fd of the same process) a SharedFd.
// Refusals are errc::unsupported naming the pid and fd. members[0] is the root; parents come
// before their children.
Result<std::vector<TreeFdPlan>> plan_tree_fds(const std::vector<TreeFdMember>& members);

}  // namespace ferry::capture
