// SPDX-License-Identifier: Apache-2.0
// Capture of eventfd, timerfd, signalfd and epoll fds: everything is read from
// /proc/PID/fdinfo (no injection), so this runs with the other refusals before anything else.
#pragma once

#include <sys/types.h>

#include <string_view>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/model.hpp"

namespace ferry::capture {

struct EventFdPlan {
  std::vector<image::EventFd> fds;            // sorted by fd
  std::vector<image::EpollTarget> targets;    // grouped by epoll fd
};

// The anon_inode kinds (the text between brackets of "anon_inode:[eventfd]") ferry captures:
// eventfd, timerfd, signalfd, eventpoll. plan_fds() leaves these fds to plan_event_fds().
bool is_event_fd_kind(std::string_view anon_kind) noexcept;

// Parses one fdinfo text of an fd of `anon_kind` into `out` (fd and kind already set) and, for
// epoll, appends its "tfd:" lines to `targets` (with the inode the kernel printed in `inos`).
Result<void> parse_event_fdinfo(std::string_view anon_kind, std::string_view text,
                                image::EventFd& out, std::vector<image::EpollTarget>& targets,
                                std::vector<uint64_t>& inos);

// Every event fd of process pid. Refuses (errc::unsupported, naming process and fds) an epoll
// set watching a file that is no longer open at the fd number it was added with (closed or
// replaced since), because it could not be re-added at restore.
Result<EventFdPlan> plan_event_fds(pid_t pid);

}  // namespace ferry::capture
