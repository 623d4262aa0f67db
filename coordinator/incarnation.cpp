// SPDX-License-Identifier: Apache-2.0
// Incarnation: RestartOutcome + its StateDb row (see incarnation.hpp).
#include "incarnation.hpp"

#include "ferry/proto/auth.hpp"
#include "log.hpp"

namespace ferry::coord {

proto::RestartRecordWire to_wire(const RestartRow& row) {
  proto::RestartRecordWire w;
  w.restart_id = row.restart_id;
  w.job = row.job;
  w.outcome = row.outcome;
  w.exit_status = row.exit_status;
  w.signal = row.signal;
  w.phase = row.phase;
  w.rank = row.rank;
  w.node = row.node;
  w.reason = row.reason;
  return w;
}

Incarnation::Incarnation(StateDb& db, const RestartRow& row, std::map<std::uint32_t, std::string> placement)
    : db_(db),
      id_(row.restart_id),
      job_(row.job),
      generation_(row.generation),
      placement_(placement),
      outcome_(row.restart_id, row.job, std::move(placement)),
      stored_phase_(row.phase) {
  if (row.phase) outcome_.on_phase(*row.phase);
}

std::set<std::string> Incarnation::nodes() const {
  std::set<std::string> out;
  for (const auto& [rank, node] : placement_) out.insert(node);
  return out;
}

std::vector<std::uint32_t> Incarnation::ranks_on(const std::string& node) const {
  std::vector<std::uint32_t> out;
  for (const auto& [rank, n] : placement_)
    if (n == node) out.push_back(rank);
  return out;
}

bool Incarnation::persist_if_final(bool was_final) {
  const auto& r = outcome_.record();
  if (!final()) {
    if (r.phase != stored_phase_ && r.phase) {
      if (auto s = db_.set_restart_phase(id_, *r.phase); !s)
        log(Severity::error, "coord.restart", {job_, "", {}, {}}, "store restart phase: " + s.error().message());
      stored_phase_ = r.phase;
    }
    return false;
  }
  if (was_final) return false;
  RestartRow row;
  row.restart_id = id_;
  row.job = job_;
  row.generation = generation_;
  row.outcome = r.outcome;
  row.exit_status = r.exit_status;
  row.signal = r.signal;
  row.phase = r.phase;
  row.rank = r.rank;
  row.node = r.node;
  row.reason = r.reason;
  row.ended_ns = proto::realtime_ns();
  if (auto s = db_.finish_restart(row); !s)
    log(Severity::error, "coord.restart", {job_, "", {}, {}}, "store outcome of restart " + std::to_string(id_) + ": " + s.error().message());
  return true;
}

bool Incarnation::on_phase(proto::RestartPhase phase) {
  bool was = final();
  outcome_.on_phase(phase);
  return persist_if_final(was);
}

bool Incarnation::on_rank_running(std::uint32_t rank) {
  bool was = final();
  outcome_.on_rank_running(rank);
  return persist_if_final(was);
}

bool Incarnation::on_rank_failed(std::uint32_t rank, proto::RestartPhase phase, const std::string& reason) {
  bool was = final();
  outcome_.on_rank_failed(rank, phase, reason);
  return persist_if_final(was);
}

bool Incarnation::on_rank_exited(std::uint32_t rank, std::optional<std::int32_t> exit_status,
                                 std::optional<std::int32_t> signal, std::int64_t time_ns) {
  bool was = final();
  auto it = placement_.find(rank);
  if (it != placement_.end()) {
    RankExitRow e{rank, it->second, exit_status, signal, time_ns};
    if (auto s = db_.record_rank_exit(id_, e); !s)
      log(Severity::error, "coord.restart", {job_, it->second, rank, {}}, "store rank exit: " + s.error().message());
  }
  outcome_.on_rank_exited(rank, exit_status, signal);
  return persist_if_final(was);
}

bool Incarnation::on_agent_lost(const std::string& node) {
  bool was = final();
  outcome_.on_agent_lost(node);
  return persist_if_final(was);
}

bool Incarnation::on_mpi_run_ended(const proto::RestartRecordWire& record) {
  bool was = final();
  outcome_.finish_with(record);
  return persist_if_final(was);
}

bool Incarnation::replay_exits(const std::vector<RankExitRow>& exits) {
  for (const auto& [rank, node] : placement_) outcome_.on_rank_running(rank);
  for (const auto& e : exits) outcome_.on_rank_exited(e.rank, e.exit_status, e.signal);
  return persist_if_final(false);
}

}  // namespace ferry::coord
