// SPDX-License-Identifier: Apache-2.0
// Children that have exited and are not yet reaped by their (frozen) parent: they are not
// captured as processes; the parent's image records each one's id and wait status, and a
// restore recreates a child with that id that exits the same way before the parent runs.
#pragma once

#include <sys/types.h>

#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/image/model.hpp"

namespace ferry::capture {

// True when pid (our namespace) is an exited process not yet reaped. A thread-group leader
// that exited while other threads still run also shows state Z; that is a live process.
bool is_unreaped_zombie(pid_t pid);

// The zombie's ids in its own (the job's) PID namespace and its wait status: the exit_code
// field (52) of /proc/PID/stat, which is exactly what waitpid() will report.
Result<image::Zombie> read_zombie(pid_t pid);

}  // namespace ferry::capture
