// SPDX-License-Identifier: Apache-2.0
// Pre-PONR step: recreates the image's eventfd, timerfd, signalfd and epoll fds in the restore
// child at their numbers, after every other fd exists (restore_fds), then fills the epoll sets.
#pragma once

#include "ferry/common/result.hpp"
#include "ferry/image/model.hpp"
#include "restore/child_builder.hpp"

namespace ferry::restore {

// eventfd: counter and EFD_SEMAPHORE; timerfd: clock, remaining time and interval (re-armed
// relative to now; a TFD_TIMER_ABSTIME timer on a REALTIME clock keeps its absolute wall-clock
// deadline, so it fires at once if that passed during the downtime), then its unread ticks
// (TFD_IOC_SET_TICKS, after settime, which zeroes them); signalfd: mask; epoll: created
// empty, then EPOLL_CTL_ADD of every target with its events and data. O_NONBLOCK and
// close-on-exec as recorded. A periodic timerfd that had expired unread (remaining 0) is
// re-armed one interval ahead.
Result<void> restore_event_fds(ChildBuilder& b, const image::ProcessImage& img);

}  // namespace ferry::restore
