// SPDX-License-Identifier: Apache-2.0
// STATUS: the jobs a user may see (generations with time, size and duration; restart
// records; a progress description of a running checkpoint) and the nodes, from the StateDb
// and the coordinator's live state.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "agent_registry.hpp"
#include "ferry/proto/messages.hpp"
#include "round_driver.hpp"
#include "state_db.hpp"

namespace ferry::coord {

struct StatusInputs {
  StateDb& db;
  const AgentRegistry& agents;
  std::map<std::string, const RoundDriver*> rounds;  // job -> its round in flight
};

// job empty: every job uid may see (all for uid 0). JobInfo.state of a job with a round in
// flight reads "checkpointing gen N: PHASE, W of ~T bytes written, R/s, waiting for NODES".
proto::StatusReply build_status(StatusInputs& in, const std::string& job, std::uint32_t uid);

}  // namespace ferry::coord
