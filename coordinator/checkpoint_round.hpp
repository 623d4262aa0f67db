// SPDX-License-Identifier: Apache-2.0
// The coordinator's checkpoint round as a sans-I/O state machine: events in (agent replies,
// timeouts, lost agents, the manifest commit's result), actions out (messages to send, timers,
// commit/discard the generation, finished). The Asio shell executes actions; tests drive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include "ferry/common/result.hpp"
#include "ferry/proto/messages.hpp"

namespace ferry::coord {

// The ranks of the job on one agent.
struct RoundNode {
  std::string node;
  std::vector<std::uint32_t> ranks;
};

enum class RoundMode { resume, stop };

struct RoundConfig {
  std::string job;
  std::uint64_t generation = 0;
  std::uint64_t round_id = 0;
  std::string generation_dir;   // gen-NNNNNN.partial in the shared store
  std::vector<RoundNode> nodes; // order decides which node a timeout names first
  // Where each rank runs when that is not the node its steps go to (an MPI job's steps all go
  // to its head node): the manifest and failures name these nodes.
  std::map<std::uint32_t, std::string> rank_nodes;
  RoundMode mode = RoundMode::resume;
  // Per-phase deadlines. Dump is long: it writes every image. The rest are control steps.
  std::chrono::milliseconds prepare_timeout{10'000};
  std::chrono::milliseconds quiesce_timeout{30'000};
  std::chrono::milliseconds dump_timeout{30 * 60'000};
  std::chrono::milliseconds finish_timeout{30'000};  // commit, resume, stop and abort
  // MPI jobs: the user's bound for the proxies' round (`ferry checkpoint --timeout`), sent with
  // the quiesce step (RoundStep::round_timeout_ms); 0: the head agent derives it.
  std::uint32_t round_timeout_ms = 0;
};

// Why a round failed: the phase, the node and (where one is to blame) the rank.
struct RoundFailure {
  proto::RoundPhase phase = proto::RoundPhase::prepare;
  std::string node;                  // "coordinator" for a failed manifest commit
  std::optional<std::uint32_t> rank;
  std::error_code code;
  std::string reason;
  // "dump failed on node n2 rank 3: write pages: No space left on device"
  std::string message() const;
  Error to_error() const { return Error(code, message()); }
};

struct RankStats {
  std::uint32_t rank = 0;
  std::string node;
  std::uint64_t bytes = 0;
  std::uint64_t dump_ns = 0;
};

struct RoundOutcome {
  bool committed = false;
  std::uint64_t generation = 0;
  std::uint64_t bytes = 0;
  std::vector<RankStats> ranks;               // filled from dump replies
  std::optional<RoundFailure> failure;        // why the round aborted (committed == false)
  std::vector<RoundFailure> later_errors;     // after commit, or while aborting
};

// ---- actions ----
struct SendStep {  // send step to node (a ROUND_STEP frame)
  std::string node;
  proto::RoundStep step;
};
struct StartTimer {  // call on_timeout(timer_id) after `after`; older timers become stale
  std::uint64_t timer_id = 0;
  std::chrono::milliseconds after{0};
};
struct CommitManifest {  // write MANIFEST, rename partial -> final, fsync; then on_commit_done()
  std::string job;
  std::uint64_t generation = 0;
  std::string generation_dir;
  std::vector<RankStats> ranks;
  std::uint64_t bytes = 0;
};
struct DiscardGeneration {  // remove the partial directory (best effort)
  std::string job;
  std::uint64_t generation = 0;
  std::string generation_dir;
};
struct RoundFinished {
  RoundOutcome outcome;
};
using RoundAction = std::variant<SendStep, StartTimer, CommitManifest, DiscardGeneration, RoundFinished>;
using Actions = std::vector<RoundAction>;

enum class RoundState { idle, prepare, quiesce, dump, committing, commit, finishing, aborting, finished };
std::string_view name(RoundState s);

class CheckpointRound {
public:
  explicit CheckpointRound(RoundConfig cfg);

  [[nodiscard]] Actions start();
  [[nodiscard]] Actions on_reply(std::string_view node, const proto::RoundReply& reply);
  [[nodiscard]] Actions on_timeout(std::uint64_t timer_id);
  // The agent of `node` is lost. A node that only runs ranks (RoundConfig::rank_nodes, an MPI
  // job's non-head node) aborts the round too, naming it and its first rank: its ranks may be
  // gone with it, and the checkpoint would otherwise wait for them until its timeout.
  [[nodiscard]] Actions on_agent_lost(std::string_view node, std::string why = "agent lost");
  [[nodiscard]] Actions on_commit_done(const Result<void>& result);
  // Abort from outside (coordinator shutting down, job deleted). Ignored once committing.
  [[nodiscard]] Actions cancel(std::string reason);

  RoundState state() const noexcept { return state_; }
  bool finished() const noexcept { return state_ == RoundState::finished; }
  const RoundOutcome& outcome() const noexcept { return outcome_; }
  const RoundConfig& config() const noexcept { return cfg_; }
  // Replies dropped as late, duplicate, foreign or from an unknown node (for logs/tests).
  std::size_t ignored_replies() const noexcept { return ignored_; }

private:
  const RoundNode* find_node(std::string_view node) const;
  std::chrono::milliseconds timeout_for(proto::RoundPhase p) const;
  void send_phase(proto::RoundPhase p, Actions& out);
  void advance(Actions& out);
  void enter_abort(RoundFailure f, Actions& out);
  void finish(Actions& out);
  bool after_commit() const {
    return state_ == RoundState::committing || state_ == RoundState::commit ||
           state_ == RoundState::finishing;
  }

  RoundConfig cfg_;
  RoundState state_ = RoundState::idle;
  proto::RoundPhase phase_ = proto::RoundPhase::prepare;  // of the steps in flight
  std::set<std::string, std::less<>> waiting_;            // nodes yet to reply to phase_
  std::set<std::string, std::less<>> lost_;
  std::uint64_t timer_id_ = 0;
  std::size_t ignored_ = 0;
  RoundOutcome outcome_;
};

}  // namespace ferry::coord
