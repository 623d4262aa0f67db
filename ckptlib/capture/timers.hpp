// SPDX-License-Identifier: Apache-2.0
// Capture of a process's clocks, itimers and POSIX timers: /proc/PID/timers is read with the
// other refusals (plan_timers), the times by remote calls in the frozen leader (capture_timers).
#pragma once

#include <sys/types.h>

#include <string_view>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/model.hpp"
#include "ptrace/tracee.hpp"

namespace ferry::capture {

// One entry of /proc/PID/timers (kernel/time/posix-timers.c timers_show): id, signal and
// sigev_value, notify ("signal/pid.N", "signal/tid.N" = SIGEV_THREAD_ID, "none/pid.N"), clock.
struct ProcTimer {
  int32_t id = 0;
  int32_t signo = 0;
  uint64_t sigval = 0;
  int32_t notify = 0;   // SIGEV_SIGNAL, SIGEV_NONE or SIGEV_THREAD_ID
  pid_t target = 0;     // pid/tid as /proc shows it (our PID namespace)
  int32_t clockid = 0;
};
Result<std::vector<ProcTimer>> parse_proc_timers(std::string_view text);

// Reads /proc/PID/timers; timers are returned as image records without times (the notify
// thread translated to its id in the process's own PID namespace). Refuses a clock ferry
// cannot recreate (CPU-time clocks of other processes/threads).
Result<std::vector<image::PosixTimer>> plan_timers(pid_t pid);

struct TimerState {
  image::Clocks clocks;
  std::vector<image::Itimer> itimers;          // armed ones only
  std::vector<image::PosixTimer> posix_timers;  // with remaining value and interval
};

// Remote calls in the frozen leader (its registers and mask are put back): clock_gettime of
// REALTIME, MONOTONIC and BOOTTIME (the process's view, time namespace included), getitimer
// x3, timer_gettime of every planned timer. Maps and unmaps its own scratch area, so it must
// run before /proc/PID/maps is read.
Result<TimerState> capture_timers(ptrace::Tracee& leader, pid_t pid, uint64_t page_size,
                                  std::vector<image::PosixTimer> planned);

}  // namespace ferry::capture
