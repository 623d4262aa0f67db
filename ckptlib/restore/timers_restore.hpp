// SPDX-License-Identifier: Apache-2.0
// Post-PONR step, after every thread exists and before the final detach: itimers, POSIX
// timers (same ids) and the pending signals of the image, by remote calls in the child.
#pragma once

#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/model.hpp"
#include "ptrace/tracee.hpp"
#include "restore/child_builder.hpp"

namespace ferry::restore {

// b drives the leader; others[i] is image thread i+1 (create_threads order), each stopped with
// its final state loaded (RemoteCalls keeps that state). All signals stay blocked meanwhile,
// so timer signals and re-queued signals wait until the final detach unblocks them.
//   itimers: setitimer(which, remaining value, interval).
//   POSIX timers: prctl(PR_TIMER_CREATE_RESTORE_IDS) then timer_create with the image id
//     (Linux >= 6.16); on older kernels ids are allocated sequentially from 0 in a fresh
//     process, so timers are created in id order and fillers for the gaps deleted. Clock,
//     notify mode, signal, sigev_value and target thread as recorded; re-armed relative with
//     the remaining time (0 remaining on an armed periodic timer: one interval). Overruns
//     are not restored.
//   Pending signals: by remote calls in the leader, the shared queue with rt_sigqueueinfo and
//     each thread's with rt_tgsigqueueinfo(tgid, its live tid), in queue order, with
//     the recorded siginfo (si_code, si_value, si_pid... kept: the sender is the process
//     itself, for which the kernel accepts any si_code).
Result<void> restore_timers_and_signals(ChildBuilder& b, const image::ProcessImage& img,
                                        std::vector<ptrace::Tracee>& others);

}  // namespace ferry::restore
