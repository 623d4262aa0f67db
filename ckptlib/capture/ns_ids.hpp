// SPDX-License-Identifier: Apache-2.0
// PID-namespace views of a task: the ids a process sees for itself (getpid/gettid inside its
// own, innermost PID namespace), read from the NSpid line of /proc/PID/task/TID/status.
// Images store these ids, because a restore recreates them (clone3 set_tid) in a fresh
// namespace; ferry itself keeps using the ids of its own namespace to address tasks.
#pragma once

#include <sys/types.h>

#include <string_view>
#include <vector>

#include "ferry/common/result.hpp"

namespace ferry::capture {

// The NSpid values of a status file's text, outermost first ("NSpid:\t4242\t2" -> {4242, 2}).
// A kernel without the line (before 4.1) yields {}.
std::vector<pid_t> parse_nspid(std::string_view status_text);

// The id task `tid` of process `pid` has in its innermost PID namespace (tid and pid are ids
// in the caller's namespace). Equal to tid when the task lives in the caller's namespace.
Result<pid_t> innermost_id(pid_t pid, pid_t tid);

// A process's place in the job's process tree, as ids of its innermost PID namespace (the last
// value of NSpid / NSpgid / NSsid; 0 when the group or session lies outside that namespace).
struct TreeIds {
  pid_t pid = 0, ppid = 0, pgid = 0, sid = 0;
};
std::vector<pid_t> parse_ns_line(std::string_view status_text, std::string_view key);
Result<TreeIds> tree_ids(pid_t pid);

}  // namespace ferry::capture
