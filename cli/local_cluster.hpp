// SPDX-License-Identifier: Apache-2.0
// The embedded default: with no coordinator configured, `ferry launch --ntasks N`, `ferry
// wait` and the commands on a job launched that way use a coordinator and one agent (node
// "local") that the CLI starts itself, under the ferry home:
//
//   HOME/local/lock              flock: shared by every CLI using them (for its whole life),
//                                exclusive to start them or (the coordinator) to exit idle
//   HOME/local/coordinator.addr  127.0.0.1:PORT once listening (removed at the idle exit)
//   HOME/local/cluster.secret    the daemons' shared secret (0600, created on first use)
//   HOME/local/state/            the coordinator's state.db, coordinator.log, agent.out
//   HOME/jobs/ID/                the job store, as for every other job
//
// The coordinator runs detached (its own session), starts the agent as its child, and exits
// (taking the agent with it) after $FERRY_IDLE_EXIT_S seconds (default 60) with no job
// running and no `ferry` command holding the lock. Jobs launched this way record
// "coordinator": "local" in job.json, so later commands find (or start) them again.
#pragma once

#include <string>

#include "ferry/common/result.hpp"

namespace ferry::cli {

inline constexpr const char* kLocalCoordinator = "local";
inline constexpr const char* kLocalNode = "local";
inline constexpr unsigned kDefaultIdleExitS = 60;

// The ferry home whose embedded daemons "local" means (default: store::default_root()).
void set_local_home(const std::string& home);
const std::string& local_home();

// HOST:PORT of the running embedded coordinator of local_home(), starting it and its agent
// if needed; returns once the agent is registered. Holds the shared lock until exit.
Result<std::string> local_coordinator();

}  // namespace ferry::cli
