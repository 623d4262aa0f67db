// SPDX-License-Identifier: Apache-2.0
// Restart outcome folding and the `ferry wait` views (JSON, exit status, stderr line).
#include "restart_outcome.hpp"

#include <nlohmann/json.hpp>

namespace ferry::coord {

RestartOutcome::RestartOutcome(std::uint64_t restart_id, std::string job,
                               std::map<std::uint32_t, std::string> placement)
    : placement_(std::move(placement)) {
  record_.restart_id = restart_id;
  record_.job = std::move(job);
  record_.phase = phase_;
}

void RestartOutcome::on_phase(proto::RestartPhase phase) {
  if (final()) return;
  phase_ = phase;
  record_.phase = phase;
}

void RestartOutcome::fail(std::uint32_t rank, proto::RestartPhase phase, std::string reason) {
  record_.outcome = proto::Outcome::restart_failed;
  record_.phase = phase;
  record_.rank = rank;
  auto it = placement_.find(rank);
  record_.node = it == placement_.end() ? std::optional<std::string>() : it->second;
  record_.reason = std::move(reason);
  record_.exit_status.reset();
  record_.signal.reset();
}

void RestartOutcome::on_rank_running(std::uint32_t rank) {
  if (final() || !placement_.count(rank) || running_.count(rank)) return;
  running_[rank] = true;
  if (all_running()) on_phase(proto::RestartPhase::resume);
}

void RestartOutcome::on_rank_failed(std::uint32_t rank, proto::RestartPhase phase, std::string reason) {
  if (final() || !placement_.count(rank)) return;
  if (all_running()) return;  // a running job's ranks end through on_rank_exited
  fail(rank, phase, std::move(reason));
}

void RestartOutcome::on_rank_exited(std::uint32_t rank, std::optional<std::int32_t> exit_status,
                                    std::optional<std::int32_t> signal) {
  if (final() || !placement_.count(rank)) return;
  auto it = running_.find(rank);
  if (it != running_.end() && !it->second) return;  // duplicate report
  if (it == running_.end()) running_[rank] = true;  // exit raced ahead of the restore report
  running_[rank] = false;
  ++ended_;
  if (signal && !first_signal_) first_signal_ = {rank, *signal};
  if (!signal && exit_status && *exit_status != 0 && !first_nonzero_) first_nonzero_ = {rank, *exit_status};
  maybe_finish();
}

void RestartOutcome::finish_with(const proto::RestartRecordWire& record) {
  if (final() || record.outcome == proto::Outcome::running) return;
  auto id = record_.restart_id;
  record_ = record;
  record_.restart_id = id;
  for (auto& [rank, running] : running_) running = false;
  ended_ = placement_.size();
}

void RestartOutcome::on_agent_lost(const std::string& node) {
  if (final()) return;
  if (!all_running()) {
    for (const auto& [rank, n] : placement_)
      if (n == node) {
        fail(rank, phase_, "agent lost");
        return;
      }
    return;
  }
  for (const auto& [rank, n] : placement_) {
    if (n != node || !running_[rank]) continue;
    running_[rank] = false;
    ++ended_;
    if (!first_signal_) {
      first_signal_ = {rank, 9};
      signal_reason_ = "agent lost";
    }
  }
  maybe_finish();
}

void RestartOutcome::maybe_finish() {
  if (ended_ < placement_.size()) return;
  record_.phase.reset();
  if (first_signal_) {
    record_.outcome = proto::Outcome::signaled;
    record_.rank = first_signal_->first;
    record_.signal = first_signal_->second;
    record_.node = placement_[first_signal_->first];
    record_.reason = signal_reason_;
    record_.exit_status.reset();
  } else {
    record_.outcome = proto::Outcome::exited;
    record_.exit_status = first_nonzero_ ? first_nonzero_->second : 0;
    if (first_nonzero_) {
      record_.rank = first_nonzero_->first;
      record_.node = placement_[first_nonzero_->first];
    }
    record_.signal.reset();
  }
}

std::string wait_json(const proto::RestartRecordWire& r) {
  nlohmann::ordered_json j;
  auto opt = [](const auto& o) { return o ? nlohmann::ordered_json(*o) : nlohmann::ordered_json(nullptr); };
  j["restart_id"] = r.restart_id;
  j["job"] = r.job;
  j["outcome"] = std::string(proto::name(r.outcome));
  j["exit_status"] = opt(r.exit_status);
  j["signal"] = opt(r.signal);
  j["phase"] = r.phase ? nlohmann::ordered_json(std::string(proto::name(*r.phase))) : nlohmann::ordered_json(nullptr);
  j["rank"] = opt(r.rank);
  j["node"] = opt(r.node);
  j["reason"] = opt(r.reason);
  return j.dump();
}

int wait_exit_status(const proto::RestartRecordWire& r, bool /*timed_out*/) {
  switch (r.outcome) {
    case proto::Outcome::exited: return r.exit_status ? (*r.exit_status & 0xff) : 0;
    case proto::Outcome::signaled: return kWaitSignalBase + (r.signal ? *r.signal : 0);
    case proto::Outcome::restart_failed: return kWaitRestartFailed;
    case proto::Outcome::running: return kWaitTimedOut;  // wait returns early only at a timeout
  }
  return kWaitRestartFailed;
}

std::string wait_stderr_line(const proto::RestartRecordWire& r, bool timed_out) {
  if (r.outcome == proto::Outcome::restart_failed) {
    std::string s = "ferry: restart " + std::to_string(r.restart_id) + " of job " + r.job + " failed";
    if (r.phase) s += " in " + std::string(proto::name(*r.phase));
    if (r.node) s += " on node " + *r.node;
    if (r.rank) s += " rank " + std::to_string(*r.rank);
    if (r.reason) s += ": " + *r.reason;
    return s;
  }
  if (r.outcome == proto::Outcome::running && timed_out)
    return "ferry: restart " + std::to_string(r.restart_id) + " of job " + r.job +
           " still running at the timeout";
  return "";
}

}  // namespace ferry::coord
