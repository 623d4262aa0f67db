// SPDX-License-Identifier: Apache-2.0
// The Asio shell around one CheckpointRound: it executes the state machine's actions —
// ROUND_STEP frames to agents, the phase timer, the manifest commit (GenerationStore +
// StateDb) and the discard of an aborted generation — and feeds the results back as events.
// It holds no round logic of its own. Owned by the coordinator's job entry; on_finished runs
// once, and the owner may destroy the driver only after that call returned (post it).
#pragma once

#include "session.hpp"  // includes Asio the Boost 1.74 way (see there)
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "agent_registry.hpp"
#include "checkpoint_round.hpp"
#include "generation_store.hpp"
#include "state_db.hpp"

namespace ferry::coord {

// What every round needs from the coordinator.
struct RoundServices {
  boost::asio::io_context& io;
  AgentRegistry& agents;
  GenerationStore& store;
  StateDb& db;
  std::function<proto::Bytes(const proto::RoundStep&)> encode_step;  // signed frame
};

class RoundDriver {
public:
  using OnFinished = std::function<void(const RoundOutcome&)>;
  RoundDriver(RoundServices svc, JobRow job, RoundConfig cfg, OnFinished on_finished);
  ~RoundDriver();
  RoundDriver(const RoundDriver&) = delete;
  RoundDriver& operator=(const RoundDriver&) = delete;

  void start();
  void on_reply(const std::string& node, const proto::RoundReply& reply);
  void on_agent_lost(const std::string& node, const std::string& why = "agent lost");
  void cancel(const std::string& reason);

  const CheckpointRound& round() const noexcept { return round_; }
  std::chrono::steady_clock::time_point started() const noexcept { return started_; }
  // Nodes that have not yet answered the dump step (for the progress line).
  const std::set<std::string>& dumping() const noexcept { return dumping_; }

private:
  void execute(Actions actions);
  void commit_manifest(const CommitManifest& c, Actions& out);

  RoundServices svc_;
  JobRow job_;
  CheckpointRound round_;
  OnFinished on_finished_;
  boost::asio::steady_timer timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::chrono::steady_clock::time_point started_;
  std::int64_t started_ns_ = 0;
  std::set<std::string> dumping_;
};

}  // namespace ferry::coord
