// SPDX-License-Identifier: Apache-2.0
// Capture of queued, not yet delivered signals (process-shared queue and each thread's own)
// with PTRACE_PEEKSIGINFO: the queues are only read, the process keeps them.
#pragma once

#include <sys/types.h>

#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/model.hpp"
#include "ptrace/tracee.hpp"

namespace ferry::capture {

// threads[0] is the leader (its PTRACE_PEEKSIGINFO_SHARED view is the shared queue); tids are
// stored as the process sees them (innermost PID namespace), 0 for the shared queue. Signals a
// Tracee had to take out of a queue while the process was being frozen (deferred_signals(),
// re-sent on resume) are added per thread as SI_TKILL signals, since their siginfo is gone.
// SIGKILL and SIGSTOP are never recorded.
Result<std::vector<image::PendingSignal>> capture_pending_signals(
    const std::vector<ptrace::Tracee>& threads, pid_t pid);

}  // namespace ferry::capture
