// SPDX-License-Identifier: Apache-2.0
// The outcome of one restart, computed from agent reports (sans-I/O), and the two views of
// it that `ferry wait` gives: the --json object and the process exit status. The contract is
// documented in protocol/PROTOCOL.md ("ferry wait").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ferry/proto/messages.hpp"

namespace ferry::coord {

// Exit statuses of `ferry wait` that are not the application's own (PROTOCOL.md).
inline constexpr int kWaitRestartFailed = 86;  // outcome restart_failed (+ "ferry:" line on stderr)
inline constexpr int kWaitTimedOut = 124;      // --timeout passed; outcome still running (as timeout(1))
inline constexpr int kWaitSignalBase = 128;    // signaled: 128 + signal, as a shell reports it

// Folds the events of one restart into its outcome. Rules (first final outcome wins, it
// never changes afterwards):
//  - before every rank runs: a rank failing, or its agent lost -> restart_failed naming the
//    phase, rank, node and reason;
//  - once every rank has exited (or was lost with its agent): signaled if any rank was
//    killed by a signal (the first such report; a lost agent counts as SIGKILL of its ranks),
//    else exited with the first non-zero status reported, else 0.
class RestartOutcome {
public:
  // placement: rank -> node for every rank of the job.
  RestartOutcome(std::uint64_t restart_id, std::string job, std::map<std::uint32_t, std::string> placement);

  void on_phase(proto::RestartPhase phase);  // progress of the restart as a whole
  void on_rank_running(std::uint32_t rank);
  void on_rank_failed(std::uint32_t rank, proto::RestartPhase phase, std::string reason);
  void on_rank_exited(std::uint32_t rank, std::optional<std::int32_t> exit_status,
                      std::optional<std::int32_t> signal);
  void on_agent_lost(const std::string& node);
  // An MPI incarnation ends all at once (its launcher's end): the record folded from the
  // proxies' events (mpi_jobs.hpp) becomes final, unless the outcome already was.
  void finish_with(const proto::RestartRecordWire& record);

  bool final() const noexcept { return record_.outcome != proto::Outcome::running; }
  // Every rank started (some may have ended since: ranks_ended()).
  bool all_running() const noexcept { return running_.size() == placement_.size(); }
  std::size_t ranks_ended() const noexcept { return ended_; }
  const proto::RestartRecordWire& record() const noexcept { return record_; }

private:
  void fail(std::uint32_t rank, proto::RestartPhase phase, std::string reason);
  void maybe_finish();

  std::map<std::uint32_t, std::string> placement_;
  proto::RestartPhase phase_ = proto::RestartPhase::place;
  std::map<std::uint32_t, bool> running_;  // rank -> still running
  std::size_t ended_ = 0;
  std::optional<std::pair<std::uint32_t, std::int32_t>> first_signal_;  // rank, signal
  std::optional<std::pair<std::uint32_t, std::int32_t>> first_nonzero_; // rank, status
  std::optional<std::string> signal_reason_;
  proto::RestartRecordWire record_;
};

// {"restart_id":..,"job":..,"outcome":..,"exit_status":..,"signal":..,"phase":..,"rank":..,
//  "node":..,"reason":..} with null for what does not apply; keys always present, this order.
std::string wait_json(const proto::RestartRecordWire& r);
// The exit status of `ferry wait` for a record (timed_out: the wait's --timeout passed).
int wait_exit_status(const proto::RestartRecordWire& r, bool timed_out);
// The stderr line for restart_failed / timeout ("" otherwise), starting with "ferry: ".
std::string wait_stderr_line(const proto::RestartRecordWire& r, bool timed_out);

}  // namespace ferry::coord
