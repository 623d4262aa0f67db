// SPDX-License-Identifier: Apache-2.0
// The fds a process tree shares across its processes, rebuilt before the point of no return:
// pipes and FIFOs between processes (one pipe object, one open file description per recorded
// description, bytes refilled), descriptions shared other than with the parent (SharedFd), and
// exited children not yet reaped (zombies). Internal to ckptlib/restore; used by tree_restore.cpp.
#pragma once

#include <sys/types.h>

#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/image_io.hpp"
#include "ptrace/tracee.hpp"
#include "restore/child_builder.hpp"
#include "restore/restore.hpp"

namespace ferry::restore::detail {

// One process of the tree being restored.
struct TreeSlot {
  image::ImageSource* src = nullptr;
  pid_t image_pid = 0;          // its id in the job's namespace (TreeProcess::pid)
  ChildBuilder* b = nullptr;    // set once the process exists
  pid_t live_pid = -1;          // in our namespace
};

// Before anything is created: every pipe end names a pipe recorded in exactly one image of the
// tree, every FIFO still exists as a FIFO, every SharedFd names a process restored no later
// than its own and a fd that process has, no zombie id is also a live process's.
// errc::image_corrupt / file_changed naming the process and fd.
Result<void> check_tree_fds(const std::vector<TreeSlot>& slots);

// Algorithm (every process exists, none has run pre-PONR yet):
//   for each Pipe record, in the process whose image holds it (the creator): a holder fd
//   (pipe2, or open(fifo, O_RDWR|O_NONBLOCK)), F_SETPIPE_SZ to the recorded capacity, the
//   buffered bytes written from here through /proc/PID/fd/N; then one open file description per
//   recorded description: open("/proc/self/fd/HOLDER", access mode | O_NONBLOCK) and F_SETFL to
//   the recorded status flags; every PipeEnd, in any process, gets its description at its fd:
//   dup3 in the creator, pidfd_open(creator) + pidfd_getfd + dup3 elsewhere. Holders and other
//   temporaries sit above every fd number of the image and are closed at the end.
Result<void> restore_pipes(std::vector<TreeSlot>& slots, const RestoreOptions& opt);

// After pre-PONR of slots[i] (and of every earlier slot): each SharedFd of its image gets the
// source's open file description (dup3 within the process, pidfd_getfd from another one).
Result<void> take_tree_shared_fds(std::vector<TreeSlot>& slots, size_t i);

// A child just created (traced, stopped; `t` and `b` drive it) that must become the zombie
// `z`: its parent's SIGCHLD already set to SIG_DFL by the caller. Makes it end with z.status
// (exit_group(code), or its own kill(SIGNAL) with the default action and RLIMIT_CORE 0),
// detaches it, and waits (bounded) until it is a zombie. The caller then drops the SIGCHLD
// this queued on the parent (drop_sigchld).
Result<void> exit_as_zombie(ptrace::Tracee& t, ChildBuilder& b, const image::Zombie& z);
// In a process with every signal blocked: SIG_DFL for SIGCHLD (a SIG_IGN parent would reap
// the zombie at once), and, after the zombie exists, dequeue the SIGCHLD its exit queued.
Result<void> default_sigchld(ChildBuilder& parent);
Result<void> drop_sigchld(ChildBuilder& parent);

// Id of live process `pid` (our namespace) in its own innermost PID namespace.
Result<pid_t> innermost_pid(pid_t pid);

}  // namespace ferry::restore::detail
