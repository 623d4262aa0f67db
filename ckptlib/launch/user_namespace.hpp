// SPDX-License-Identifier: Apache-2.0
// The user namespace that lets an unprivileged user own the job's PID (and time) namespace:
// inside it ferry init holds CAP_CHECKPOINT_RESTORE/CAP_SYS_ADMIN, which clone3(set_tid)
// needs, while the job's uid and gid stay the user's own (a one-line identity map each, which
// the kernel lets anyone write for their own ids: no setuid helper).
#pragma once

#include <sys/types.h>

#include <string>

#include "ferry/common/result.hpp"

namespace ferry::launch {

// True when this process may create a PID namespace and choose pids in it by itself
// (CAP_SYS_ADMIN in its effective set, as root has): no user namespace is made then.
bool can_own_pid_namespace();

// Writes the identity maps of the user namespace of `child` (created by us with
// CLONE_NEWUSER): uid_map "EUID EUID 1", setgroups "deny" (required before an unprivileged
// gid_map), gid_map "EGID EGID 1".
[[nodiscard]] Result<void> map_own_ids(pid_t child);

// Why clone(CLONE_NEWUSER) failed with `err`, naming the sysctl or the limit that refused it
// ("user.max_user_namespaces is 0", "kernel.unprivileged_userns_clone is 0", ...).
std::string user_namespace_refusal(int err);

}  // namespace ferry::launch
