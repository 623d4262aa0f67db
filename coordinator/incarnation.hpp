// SPDX-License-Identifier: Apache-2.0
// One incarnation of a job: the ranks started by a launch (generation 0) or by a restart,
// and the record `ferry wait` reports for it. Wraps RestartOutcome (the folding rules) and
// keeps the StateDb row in step: every event that changes the record is persisted before
// the coordinator acts on it, so a coordinator restart finds the same record.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ferry/proto/messages.hpp"
#include "restart_outcome.hpp"
#include "state_db.hpp"

namespace ferry::coord {

// The wire form of a stored record (what WAIT and STATUS return).
proto::RestartRecordWire to_wire(const RestartRow& row);

class Incarnation {
public:
  // row: the record as created (or as reloaded after a coordinator restart).
  Incarnation(StateDb& db, const RestartRow& row, std::map<std::uint32_t, std::string> placement);

  std::uint64_t id() const noexcept { return id_; }
  std::uint64_t generation() const noexcept { return generation_; }
  bool is_launch() const noexcept { return generation_ == 0; }
  const std::string& job() const noexcept { return job_; }
  const std::map<std::uint32_t, std::string>& placement() const noexcept { return placement_; }
  std::set<std::string> nodes() const;
  std::vector<std::uint32_t> ranks_on(const std::string& node) const;

  bool final() const noexcept { return outcome_.final(); }
  bool all_running() const noexcept { return outcome_.all_running(); }
  std::size_t ranks_ended() const noexcept { return outcome_.ranks_ended(); }
  const proto::RestartRecordWire& record() const noexcept { return outcome_.record(); }

  // Events. Each returns true when the outcome became final by it (the caller then ends
  // the job's round, answers waiters, ...). Persisting errors are logged, not fatal.
  bool on_phase(proto::RestartPhase phase);
  bool on_rank_running(std::uint32_t rank);
  bool on_rank_failed(std::uint32_t rank, proto::RestartPhase phase, const std::string& reason);
  bool on_rank_exited(std::uint32_t rank, std::optional<std::int32_t> exit_status,
                      std::optional<std::int32_t> signal, std::int64_t time_ns);
  bool on_agent_lost(const std::string& node);
  // An MPI incarnation's launcher ended: `record` (mpi_jobs.hpp fold_mpi_run) is the outcome.
  bool on_mpi_run_ended(const proto::RestartRecordWire& record);
  // Replays the rank exits stored before a coordinator restart (every rank had started).
  bool replay_exits(const std::vector<RankExitRow>& exits);

private:
  bool persist_if_final(bool was_final);

  StateDb& db_;
  std::uint64_t id_;
  std::string job_;
  std::uint64_t generation_;
  std::map<std::uint32_t, std::string> placement_;
  RestartOutcome outcome_;
  std::optional<proto::RestartPhase> stored_phase_;
};

}  // namespace ferry::coord
