// SPDX-License-Identifier: Apache-2.0
// The checkpoint round state machine (see checkpoint_round.hpp and protocol/PROTOCOL.md).
//
// Algorithm:
//   Each phase sends one ROUND_STEP to every participating agent, arms one timer and waits
//   until every agent has replied. Replies are matched on (job, generation, round_id, phase,
//   node); anything else - a reply to an earlier phase, a second reply from a node, another
//   round's reply - is counted and ignored, so late or duplicated frames can never advance
//   or abort a round. Timer ids grow per phase, so a stale timer is ignored the same way.
//
//   prepare -> quiesce -> dump: all ok -> CommitManifest (the coordinator's own I/O).
//   Before the manifest commit succeeds, the first failure (non-zero rank code, a rank
//   missing from a reply, a timeout, a lost agent, a failed manifest write) aborts: ABORT is
//   sent to every agent not lost, and once they all answered (or finish_timeout passed) the
//   partial generation is discarded and the round finishes uncommitted, naming phase, node,
//   rank. The manifest rename is the point of no return: from `committing` on, errors are
//   collected in later_errors and the round still finishes committed, because every image
//   was already durable when the dump phase ended. (An agent lost while the manifest is
//   being written therefore does not abort.)
//   commit -> resume|stop -> finished(committed).
#include "checkpoint_round.hpp"

#include <algorithm>

#include "ferry/proto/status.hpp"

namespace ferry::coord {

using proto::RoundPhase;

std::string RoundFailure::message() const {
  std::string m = std::string(proto::name(phase)) + " failed on node " + node;
  if (rank) m += " rank " + std::to_string(*rank);
  m += ": " + reason;
  if (code && reason.find(code.message()) == std::string::npos) m += " (" + code.message() + ")";
  return m;
}

std::string_view name(RoundState s) {
  switch (s) {
    case RoundState::idle: return "idle";
    case RoundState::prepare: return "prepare";
    case RoundState::quiesce: return "quiesce";
    case RoundState::dump: return "dump";
    case RoundState::committing: return "committing";
    case RoundState::commit: return "commit";
    case RoundState::finishing: return "finishing";
    case RoundState::aborting: return "aborting";
    case RoundState::finished: return "finished";
  }
  return "unknown";
}

CheckpointRound::CheckpointRound(RoundConfig cfg) : cfg_(std::move(cfg)) {
  outcome_.generation = cfg_.generation;
}

const RoundNode* CheckpointRound::find_node(std::string_view node) const {
  for (const auto& n : cfg_.nodes)
    if (n.node == node) return &n;
  return nullptr;
}

std::chrono::milliseconds CheckpointRound::timeout_for(RoundPhase p) const {
  switch (p) {
    case RoundPhase::prepare: return cfg_.prepare_timeout;
    case RoundPhase::quiesce: return cfg_.quiesce_timeout;
    case RoundPhase::dump: return cfg_.dump_timeout;
    default: return cfg_.finish_timeout;
  }
}

void CheckpointRound::send_phase(RoundPhase p, Actions& out) {
  phase_ = p;
  waiting_.clear();
  auto deadline = timeout_for(p);
  for (const auto& n : cfg_.nodes) {
    if (lost_.count(n.node)) continue;
    waiting_.insert(n.node);
    proto::RoundStep step{.job = cfg_.job,
                          .generation = cfg_.generation,
                          .round_id = cfg_.round_id,
                          .phase = p,
                          .ranks = n.ranks,
                          .generation_dir = cfg_.generation_dir,
                          .deadline_ms = static_cast<std::uint32_t>(deadline.count()),
                          .round_timeout_ms = p == RoundPhase::quiesce ? cfg_.round_timeout_ms : 0};
    out.push_back(SendStep{n.node, std::move(step)});
  }
  out.push_back(StartTimer{++timer_id_, deadline});
}

Actions CheckpointRound::start() {
  Actions out;
  if (state_ != RoundState::idle) return out;
  if (cfg_.nodes.empty()) {
    enter_abort({RoundPhase::prepare, "coordinator", std::nullopt,
                 make_error_code(proto::perr::bad_state), "the job has no nodes"},
                out);
    return out;
  }
  for (const auto& n : cfg_.nodes) {
    if (!lost_.count(n.node)) continue;
    enter_abort({RoundPhase::prepare, n.node,
                 n.ranks.empty() ? std::nullopt : std::optional<std::uint32_t>(n.ranks.front()),
                 make_error_code(proto::perr::agent_lost), "agent lost before the round started"},
                out);
    return out;
  }
  state_ = RoundState::prepare;
  send_phase(RoundPhase::prepare, out);
  return out;
}

void CheckpointRound::advance(Actions& out) {
  // Called when waiting_ became empty in the current state.
  switch (state_) {
    case RoundState::prepare:
      state_ = RoundState::quiesce;
      send_phase(RoundPhase::quiesce, out);
      break;
    case RoundState::quiesce:
      state_ = RoundState::dump;
      send_phase(RoundPhase::dump, out);
      break;
    case RoundState::dump: {
      state_ = RoundState::committing;
      ++timer_id_;  // no timer while the coordinator itself writes the manifest
      std::sort(outcome_.ranks.begin(), outcome_.ranks.end(),
                [](const RankStats& a, const RankStats& b) { return a.rank < b.rank; });
      out.push_back(CommitManifest{cfg_.job, cfg_.generation, cfg_.generation_dir,
                                   outcome_.ranks, outcome_.bytes});
      break;
    }
    case RoundState::commit:
      state_ = RoundState::finishing;
      send_phase(cfg_.mode == RoundMode::stop ? RoundPhase::stop : RoundPhase::resume, out);
      break;
    case RoundState::finishing:
    case RoundState::aborting:
      finish(out);
      break;
    default:
      break;
  }
  // Every remaining participant may be lost: the new phase then has nobody to wait for.
  if ((state_ == RoundState::quiesce || state_ == RoundState::dump ||
       state_ == RoundState::finishing) &&
      waiting_.empty())
    advance(out);
}

void CheckpointRound::enter_abort(RoundFailure f, Actions& out) {
  outcome_.failure = std::move(f);
  outcome_.committed = false;
  state_ = RoundState::aborting;
  send_phase(RoundPhase::abort, out);
  if (waiting_.empty()) finish(out);
}

void CheckpointRound::finish(Actions& out) {
  if (state_ == RoundState::aborting)
    out.push_back(DiscardGeneration{cfg_.job, cfg_.generation, cfg_.generation_dir});
  state_ = RoundState::finished;
  waiting_.clear();
  ++timer_id_;
  out.push_back(RoundFinished{outcome_});
}

Actions CheckpointRound::on_reply(std::string_view node, const proto::RoundReply& reply) {
  Actions out;
  const RoundNode* n = find_node(node);
  bool active = state_ != RoundState::idle && state_ != RoundState::finished &&
                state_ != RoundState::committing;
  if (!active || n == nullptr || reply.job != cfg_.job || reply.generation != cfg_.generation ||
      reply.round_id != cfg_.round_id || reply.phase != phase_ || !waiting_.count(node)) {
    ++ignored_;
    return out;
  }
  waiting_.erase(waiting_.find(node));

  // Check the reply covers exactly this node's ranks; take the first failure in rank order.
  std::optional<RoundFailure> failure;
  auto node_of = [&](std::uint32_t rank) {
    auto it = cfg_.rank_nodes.find(rank);
    return it != cfg_.rank_nodes.end() ? it->second : n->node;
  };
  for (std::uint32_t rank : n->ranks) {
    auto it = std::find_if(reply.results.begin(), reply.results.end(),
                           [&](const proto::RankResult& r) { return r.rank == rank; });
    if (it == reply.results.end()) {
      failure = RoundFailure{phase_, n->node, rank, make_error_code(errc::protocol),
                             "rank missing from the agent's reply"};
      break;
    }
    if (it->code != proto::kWireOk) {
      failure = RoundFailure{phase_, node_of(rank), rank, proto::from_wire(it->code),
                             it->message.empty() ? proto::from_wire(it->code).message() : it->message};
      break;
    }
    if (phase_ == RoundPhase::dump) {
      outcome_.ranks.push_back(RankStats{rank, node_of(rank), it->bytes, it->duration_ns});
      outcome_.bytes += it->bytes;
    }
  }
  if (!failure && reply.results.size() != n->ranks.size())
    failure = RoundFailure{phase_, n->node, std::nullopt, make_error_code(errc::protocol),
                           "reply lists ranks this node does not run"};

  if (failure) {
    if (after_commit() || state_ == RoundState::aborting) {
      outcome_.later_errors.push_back(std::move(*failure));
    } else {
      enter_abort(std::move(*failure), out);
      return out;
    }
  }
  if (waiting_.empty()) advance(out);
  return out;
}

Actions CheckpointRound::on_timeout(std::uint64_t timer_id) {
  Actions out;
  if (timer_id != timer_id_ || waiting_.empty() || finished()) return out;
  // Name the first silent node in configuration order, and list the others.
  const RoundNode* first = nullptr;
  std::string others;
  for (const auto& n : cfg_.nodes) {
    if (!waiting_.count(n.node)) continue;
    if (!first) first = &n;
    else others += (others.empty() ? "" : ", ") + n.node;
  }
  std::string reason = "no reply to " + std::string(proto::name(phase_)) + " within " +
                       std::to_string(timeout_for(phase_).count()) + " ms";
  if (!others.empty()) reason += " (also silent: " + others + ")";
  RoundFailure f{phase_, first->node,
                 first->ranks.empty() ? std::nullopt : std::optional<std::uint32_t>(first->ranks.front()),
                 make_error_code(proto::perr::timeout), reason};
  if (after_commit() || state_ == RoundState::aborting) {
    // Give up on the silent agents: the generation's fate is already decided.
    for (const auto& n : cfg_.nodes)
      if (waiting_.count(n.node))
        outcome_.later_errors.push_back(RoundFailure{phase_, n.node, std::nullopt,
                                                     make_error_code(proto::perr::timeout), reason});
    waiting_.clear();
    advance(out);
    return out;
  }
  enter_abort(std::move(f), out);
  return out;
}

Actions CheckpointRound::on_agent_lost(std::string_view node, std::string why) {
  Actions out;
  const RoundNode* n = find_node(node);
  if (n == nullptr) {
    // Not a node the steps go to: a node where ranks of the round run (MPI).
    std::optional<std::uint32_t> rank;
    for (const auto& [r, rn] : cfg_.rank_nodes)
      if (rn == node) {
        rank = r;
        break;
      }
    if (!rank || lost_.count(node) || finished() || state_ == RoundState::idle) return out;
    lost_.insert(std::string(node));
    if (after_commit() || state_ == RoundState::aborting) return out;  // the images are durable / already aborting
    enter_abort(RoundFailure{phase_, std::string(node), rank, make_error_code(proto::perr::agent_lost), std::move(why)},
                out);
    return out;
  }
  if (lost_.count(node) || finished()) return out;
  lost_.insert(n->node);
  bool was_waiting = waiting_.erase(n->node) > 0;
  RoundFailure f{state_ == RoundState::committing ? RoundPhase::commit : phase_, n->node,
                 n->ranks.empty() ? std::nullopt : std::optional<std::uint32_t>(n->ranks.front()),
                 make_error_code(proto::perr::agent_lost), std::move(why)};
  if (state_ == RoundState::idle) return out;  // start() aborts naming it
  if (after_commit() || state_ == RoundState::aborting) {
    outcome_.later_errors.push_back(std::move(f));
    if (was_waiting && waiting_.empty()) advance(out);
    return out;
  }
  enter_abort(std::move(f), out);
  return out;
}

Actions CheckpointRound::on_commit_done(const Result<void>& result) {
  Actions out;
  if (state_ != RoundState::committing) return out;
  if (!result) {
    enter_abort(RoundFailure{RoundPhase::commit, "coordinator", std::nullopt, result.error().code(),
                             result.error().message()},
                out);
    return out;
  }
  outcome_.committed = true;
  state_ = RoundState::commit;
  send_phase(RoundPhase::commit, out);
  if (waiting_.empty()) advance(out);
  return out;
}

Actions CheckpointRound::cancel(std::string reason) {
  Actions out;
  if (state_ == RoundState::idle || state_ == RoundState::prepare ||
      state_ == RoundState::quiesce || state_ == RoundState::dump) {
    enter_abort(RoundFailure{state_ == RoundState::idle ? RoundPhase::prepare : phase_,
                             "coordinator", std::nullopt, make_error_code(proto::perr::bad_state),
                             std::move(reason)},
                out);
  }
  return out;
}

}  // namespace ferry::coord
